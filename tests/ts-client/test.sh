#!/usr/bin/env bash
# The official MCP TypeScript SDK's client (installed from package-lock.json)
# against the example server, started exactly as the README says:
# `cargo run --release --example mcp_server`. Works from any directory;
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

echo "==> cargo build --release --example mcp_server"
cargo build --release --example mcp_server --manifest-path "$repo/Cargo.toml"

echo "==> npm ci"
cd "$here"
npm ci --no-audit --no-fund

logs="$(mktemp -d)"
server_pid=""
stop_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -INT "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$logs"
}
trap stop_server EXIT

echo "==> cargo run --release --example mcp_server -- --port 0"
# `cargo run` replaces itself with the server (exec), so $! is the server.
cargo run --release --quiet --manifest-path "$repo/Cargo.toml" --example mcp_server -- \
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
fi
exit "$status"
