#!/usr/bin/env bash
# The official MCP TypeScript SDK's client (installed from package-lock.json)
# against the example server, started exactly as the README says:
# `cargo run --release -p mcp-server`. Works from any directory;
# exits non-zero on failure.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

need() {
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "error: '$1' not found in PATH. $2" >&2
    exit 1
  fi
}
need node "Install Node.js 20 or newer (https://nodejs.org/)."
need npm "npm ships with Node.js; install Node.js 20 or newer."
need cargo "Install Rust (https://rustup.rs/)."

node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
  echo "error: Node.js 20 or newer is required (found $(node --version))." >&2
  exit 1
fi

echo "==> cargo build --release -p mcp-server"
cargo build --release -p mcp-server --manifest-path "$repo/Cargo.toml"

echo "==> npm ci"
cd "$here"
npm ci --no-audit --no-fund

logs="$(mktemp -d)"
server_pid=""
extra_pids=()
stop_server() {
  for pid in "${extra_pids[@]}"; do
    { kill -KILL "$pid" && wait "$pid"; } 2>/dev/null || true
  done
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -INT "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$logs"
}
trap stop_server EXIT

echo "==> cargo run --release -p mcp-server -- --port 0"
# `cargo run` replaces itself with the server (exec), so $! is the server.
cargo run --release --quiet --manifest-path "$repo/Cargo.toml" -p mcp-server -- \
  --port 0 >"$logs/stdout" 2>"$logs/stderr" &
server_pid=$!

url=""
for _ in $(seq 3000); do
  url="$(sed -n 's/^listening on \(http:[^ ]*\)$/\1/p' "$logs/stdout" | head -n 1)"
  [ -n "$url" ] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "error: the server exited before listening:" >&2
    cat "$logs/stderr" >&2
    exit 1
  fi
  sleep 0.1
done
if [ -z "$url" ]; then
  echo "error: the server printed no 'listening on' line within 300 s (is another cargo holding the build lock?)" >&2
  cat "$logs/stderr" >&2
  exit 1
fi
echo "    server at $url"

echo "==> node --test client.test.mjs"
status=0
MCP_URL="$url" node --test client.test.mjs || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- server log ---" >&2
  cat "$logs/stderr" >&2
  exit "$status"
fi

# Fairness: per-principal caps behind bearer tokens, a third instance.
echo "==> fairness: --max-sessions 10 --max-sessions-per-principal 3 --bearer-tokens"
token() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
token_a="$(token)"; token_b="$(token)"; token_c="$(token)"
printf '# TOKEN PRINCIPAL\n%s alice\n%s bob\n%s mallory\n' \
  "$token_a" "$token_b" "$token_c" >"$logs/tokens"
"$repo/target/release/mcp_server" --port 0 --max-sessions 10 \
  --max-sessions-per-principal 3 --bearer-tokens "$logs/tokens" \
  >"$logs/fair.stdout" 2>"$logs/fair.stderr" &
extra_pids+=($!)
fair_url=""
for _ in $(seq 300); do
  fair_url="$(sed -n 's/^listening on \(http:[^ ]*\)$/\1/p' "$logs/fair.stdout" | head -n 1)"
  [ -n "$fair_url" ] && break
  sleep 0.1
done
if [ -z "$fair_url" ]; then
  echo "error: the fairness instance did not start:" >&2
  cat "$logs/fair.stderr" >&2
  exit 1
fi
MCP_URL="$fair_url" TOKEN_A="$token_a" TOKEN_B="$token_b" TOKEN_C="$token_c" \
  node --test fairness.test.mjs || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- fairness instance log ---" >&2
  cat "$logs/fair.stderr" >&2
  exit "$status"
fi

# Fleet mode: a private redis-server on a free loopback port (never the
# machine's own Redis), two instances sharing it.
need redis-server "Install it: apt-get install redis-server."
free_port() {
  node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
redis_port="$(free_port)"
mkdir -p "$logs/redis"
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
  --dir "$logs/redis" >"$logs/redis.log" 2>&1 &
extra_pids+=($!)
for _ in $(seq 100); do
  (echo > "/dev/tcp/127.0.0.1/$redis_port") 2>/dev/null && break
  sleep 0.1
done

# The fleet secret both instances share (principals are HMAC-keyed with it).
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$logs/fleet-secret"
start_instance() { # name -> prints its URL
  "$repo/target/release/mcp_server" --port 0 --max-sessions 3 \
    --redis "redis://127.0.0.1:$redis_port/" --redis-secret-file "$logs/fleet-secret" \
    >"$logs/$1.stdout" 2>"$logs/$1.stderr" &
  extra_pids+=($!)
}
wait_url() {
  local u=""
  for _ in $(seq 300); do
    u="$(sed -n 's/^listening on \(http:[^ ]*\)$/\1/p' "$logs/$1.stdout" | head -n 1)"
    [ -n "$u" ] && break
    sleep 0.1
  done
  if [ -z "$u" ]; then
    echo "error: fleet instance $1 did not start:" >&2
    cat "$logs/$1.stderr" >&2
    exit 1
  fi
  echo "$u"
}
start_instance a
start_instance b
url_a="$(wait_url a)"
url_b="$(wait_url b)"
echo "    fleet: $url_a and $url_b on redis port $redis_port"

echo "==> node --test fleet.test.mjs"
MCP_URL_A="$url_a" MCP_URL_B="$url_b" node --test fleet.test.mjs || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- instance a log ---" >&2
  cat "$logs/a.stderr" >&2
  echo "--- instance b log ---" >&2
  cat "$logs/b.stderr" >&2
fi
exit "$status"
