#!/usr/bin/env bash
# The end-to-end benchmark: MCP servers under a session flood, side by
# side. Starts each server on a free loopback port, runs the load generator
# (benches/e2e/load: scenarios steady, flood, recovery; RSS from /proc every
# 100 ms) against it, stops it, and writes target/e2e/report.md,
# report.json and e2e.png (target/e2e-smoke/ with --smoke).
#
#   scripts/e2e-bench.sh                      # every server, the issue's sizes (~10 min)
#   scripts/e2e-bench.sh --servers core,rmcp  # a subset
#   scripts/e2e-bench.sh --smoke              # seconds: small sizes, core and rmcp, checked,
#                                             # debug builds (what scripts/test.sh runs)
#
# Servers: core (server/, the mcp_server binary: this crate's registry, FIFO eviction),
# core-idle (the same with --on-full evict-idle: idle-first eviction),
# core-reject (the same with --on-full reject), rmcp (rmcp 3.x
# with its LocalSessionManager, benches/e2e/rmcp_server.rs), ts (the
# TypeScript SDK's stateful pattern, benches/e2e/servers/ts-stateful.mjs),
# ts-core (the same SDK governed by the Node binding,
# ffi/node/examples/mcp-server.mjs), python (the Python SDK's
# StreamableHTTPSessionManager with its defaults, installed with pip into
# target/e2e/venv). Capacity 1000 and idle timeout 5 s where the server has
# them (python: its defaults). Needs: cargo; node and npm (ts, ts-core);
# python3 with venv (python).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"

servers="core,core-idle,core-reject,rmcp,ts,ts-core,python"
smoke=false
while [ $# -gt 0 ]; do
  case "$1" in
    --servers) servers="$2"; shift 2 ;;
    --smoke) smoke=true; shift ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

IDLE_S=5
profile=(--release)
profile_dir=release
if $smoke; then
  profile=()
  profile_dir=debug
  out="$repo/target/e2e-smoke"
  [ "$servers" = "core,core-idle,core-reject,rmcp,ts,ts-core,python" ] && servers="core,rmcp"
  IDLE_S=2
  plan=(--steady-sessions 40 --steady-connections 8 --steady-secs 2 --flood-requests 400
    --flood-connections 16 --victims 3 --recovery-max-secs 15 --check)
else
  out="$repo/target/e2e"
  plan=()
fi
mkdir -p "$out/runs" "$out/logs"
rm -f "$out"/runs/*.json

need() { command -v "$1" >/dev/null 2>&1 || { echo "error: '$1' not found: $2" >&2; exit 1; }; }
need cargo "install Rust (https://rustup.rs/)"
want() { [[ ",$servers," == *",$1,"* ]]; }

echo "==> build (${profile_dir})"
cargo build "${profile[@]}" -q -p mcp-server
cargo build "${profile[@]}" -q -p mcp-session-core-benches --bin e2e-load --bin e2e-rmcp-server --bin e2e-report
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
case "$target_dir" in /*) ;; *) target_dir="$repo/$target_dir" ;; esac
bin="$target_dir/$profile_dir"

if want ts || want ts-core; then
  need node "install Node.js 20+ (apt-get install nodejs npm)"
  need npm "install npm (apt-get install npm)"
fi
if want ts; then
  (cd benches/e2e/servers && npm ci --no-audit --no-fund --loglevel=error)
fi
if want ts-core; then
  (cd ffi/node && npm ci --no-audit --no-fund --loglevel=error)
  export MCP_SESSION_CORE_LIB="$bin/libmcp_session_core.so"
  cargo build "${profile[@]}" -q --lib
fi
python="$repo/target/e2e/venv/bin/python"
if want python; then
  need python3 "install Python 3.10+ with venv (apt-get install python3-venv)"
  if ! "$python" -c 'import mcp, uvicorn' >/dev/null 2>&1; then
    python3 -m venv "$repo/target/e2e/venv" || { echo "error: python3 -m venv failed: apt-get install python3-venv" >&2; exit 1; }
    "$repo/target/e2e/venv/bin/pip" install -q mcp==2.3.0 uvicorn==0.54.0
  fi
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

server_pid=""
stop_server() {
  [ -n "$server_pid" ] || return 0
  kill -TERM "$server_pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}
trap stop_server EXIT

# run NAME CONFIG STATS_URL_KIND COMMAND...: starts the server, waits for its
# "listening on URL" line, loads it, stops it.
run() {
  local name="$1" config="$2" stats_kind="$3"
  shift 3
  local log="$out/logs/$name"
  "$@" >"$log.out" 2>"$log.err" &
  server_pid=$!
  local url="" stats=""
  for _ in $(seq 300); do
    url="$(sed -n 's/^listening on \(http[^ ]*\).*/\1/p' "$log.out" | head -1)"
    stats="$(sed -n 's/^stats at \(http[^ ]*\).*/\1/p' "$log.out" | head -1)"
    if [ -n "$url" ] && { [ "$stats_kind" != separate ] || [ -n "$stats" ]; }; then break; fi
    kill -0 "$server_pid" 2>/dev/null || { cat "$log.err" >&2; echo "error: $name exited" >&2; exit 1; }
    sleep 0.1
  done
  [ -n "$url" ] || { echo "error: $name did not start (see $log.err)" >&2; exit 1; }
  [ "$stats_kind" = same ] && stats="${url%/mcp}/stats"
  echo "==> $name: $url (pid $server_pid)"
  "$bin/e2e-load" --name "$name" --config "$config" --url "$url" --stats-url "$stats" \
    --pid "$server_pid" --out "$out/runs/$name.json" "${plan[@]}"
  stop_server
}

if want core; then
  run core "mcp_server --max-sessions 1000 --idle-timeout ${IDLE_S}s --rate-limit off (FIFO eviction)" separate \
    "$bin/mcp_server" --port 0 --max-sessions 1000 --idle-timeout "${IDLE_S}s" --rate-limit off
fi
if want core-idle; then
  run core-idle "mcp_server --max-sessions 1000 --on-full evict-idle --idle-timeout ${IDLE_S}s --rate-limit off (idle-first eviction)" separate \
    "$bin/mcp_server" --port 0 --max-sessions 1000 --on-full evict-idle --idle-timeout "${IDLE_S}s" --rate-limit off
fi
if want core-reject; then
  run core-reject "mcp_server --max-sessions 1000 --on-full reject --idle-timeout ${IDLE_S}s --rate-limit off (503 at capacity)" separate \
    "$bin/mcp_server" --port 0 --max-sessions 1000 --on-full reject --idle-timeout "${IDLE_S}s" --rate-limit off
fi
if want rmcp; then
  run rmcp "rmcp 3.x LocalSessionManager, keep_alive ${IDLE_S} s, no cap" same \
    "$bin/e2e-rmcp-server" --port 0 --idle-timeout-ms "$((IDLE_S * 1000))"
fi
if want ts; then
  run ts "TypeScript SDK 1.32.2, stateful map of transports, no cap, no idle timeout" same \
    node benches/e2e/servers/ts-stateful.mjs --port 0
fi
if want ts-core; then
  run ts-core "TypeScript SDK 1.32.2 governed by the Node binding: max 1000, evict (FIFO), idle ${IDLE_S} s" separate \
    node benches/e2e/servers/ts-governed.mjs --port 0 --stats-port 0 --max-sessions 1000 \
    --idle-timeout-ms "$((IDLE_S * 1000))"
fi
if want python; then
  run python "Python SDK mcp 2.3.0 StreamableHTTPSessionManager, defaults: max_sessions 10000 (503), idle 30 min" same \
    "$python" benches/e2e/servers/python_server.py --port "$(free_port)"
fi

echo "==> report"
"$bin/e2e-report" "$out" "$out"/runs/*.json >/dev/null
echo "wrote $out/report.md, report.json, e2e.png"
cat "$out/report.md"
