#!/usr/bin/env bash
# The official MCP conformance suite (@modelcontextprotocol/conformance,
# pinned in package-lock.json) against the example server, one endpoint for
# both protocol eras: the legacy (session) scenarios as a 2025-11-25 client,
# the 2026-07-28 (stateless) ones as a 2026-07-28 client. Every check of
# every scenario must pass. The suite needs Node.js 22: the npm package
# `node` installs it under node_modules (nothing global). Works from any
# directory; bounded (each scenario at most 2 min, typically ~1 s); exits
# non-zero on the first failure.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

need() {
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "error: '$1' not found in PATH. $2" >&2
    exit 1
  fi
}
need npm "Install Node.js 20 or newer (https://nodejs.org/); npm ships with it."
need cargo "Install Rust (https://rustup.rs/)."
need timeout "Install GNU coreutils."

# Scenario spec-version (the era each scenario is run in).
legacy=(server-initialize server-session-lifecycle ping tools-list dns-rebinding-protection)
modern=(input-required-result-request-state input-required-result-tampered-state
  http-header-validation caching tools-list)

echo "==> cargo build --release -p mcp-server"
cargo build --release -p mcp-server --manifest-path "$repo/Cargo.toml"

echo "==> npm ci (the conformance suite and Node.js 22)"
cd "$here"
npm ci --no-audit --no-fund
node22="$here/node_modules/node/bin/node"
if ! [ -x "$node22" ] || ! "$node22" --version | grep -q '^v22\.'; then
  echo "error: npm did not install Node.js 22 into $node22 (the npm package 'node'" \
    "installs it from its preinstall script: allow install scripts for it)." >&2
  exit 1
fi
suite="$here/node_modules/@modelcontextprotocol/conformance/dist/index.js"
[ -f "$suite" ] || { echo "error: $suite missing after npm ci" >&2; exit 1; }
echo "    $("$node22" --version), conformance $("$node22" "$suite" --version)"

logs="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    { kill "$server_pid" && wait "$server_pid"; } 2>/dev/null || true
  fi
  rm -rf "$logs"
}
trap cleanup EXIT

"$repo/target/release/mcp_server" --port 0 >"$logs/stdout" 2>"$logs/stderr" &
server_pid=$!
url=""
for _ in $(seq 100); do
  url="$(sed -n 's/^listening on //p' "$logs/stdout" | head -n 1)"
  [ -n "$url" ] && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$url" ]; then
  echo "error: the example server did not start:" >&2
  cat "$logs/stderr" >&2
  exit 1
fi
echo "==> example server at $url"

run() {
  local version="$1" scenario="$2" out="$logs/$1-$2.txt"
  if ! timeout 120 "$node22" "$suite" server --url "$url" --scenario "$scenario" \
    --spec-version "$version" --timeout 30000 >"$out" 2>&1; then
    echo "FAIL $scenario ($version):" >&2
    cat "$out" >&2
    exit 1
  fi
  # "Passed: N/N, 0 failed": every check ran and passed.
  local summary
  summary="$(grep -E '^Passed: [0-9]+/[0-9]+, 0 failed' "$out" || true)"
  local passed total
  passed="$(sed -E 's#^Passed: ([0-9]+)/.*#\1#' <<<"$summary")"
  total="$(sed -E 's#^Passed: [0-9]+/([0-9]+),.*#\1#' <<<"$summary")"
  if [ -z "$summary" ] || [ "$passed" != "$total" ] || [ "$total" = 0 ]; then
    echo "FAIL $scenario ($version): not every check passed:" >&2
    cat "$out" >&2
    exit 1
  fi
  printf '    ok  %-40s %-11s %s\n' "$scenario" "$version" "$summary"
}

for scenario in "${legacy[@]}"; do run 2025-11-25 "$scenario"; done
for scenario in "${modern[@]}"; do run 2026-07-28 "$scenario"; done
echo "conformance: all scenarios passed"
