#!/usr/bin/env bash
# Builds the Rust cdylib, installs the Node package from its lock file and
# runs the Node tests. Works from any directory; exits non-zero on failure.
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
need cargo "Install Rust (https://rustup.rs/) to build the library."

node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
  echo "error: Node.js 20 or newer is required (found $(node --version))." >&2
  exit 1
fi

echo "==> cargo build --release"
cargo build --release --manifest-path "$repo/Cargo.toml"

case "$(uname -s)" in
  Darwin) lib_name=libmcp_session_core.dylib ;;
  MINGW* | MSYS* | CYGWIN*) lib_name=mcp_session_core.dll ;;
  *) lib_name=libmcp_session_core.so ;;
esac
export MCP_SESSION_CORE_LIB="${MCP_SESSION_CORE_LIB:-${CARGO_TARGET_DIR:-$repo/target}/release/$lib_name}"
if [ ! -f "$MCP_SESSION_CORE_LIB" ]; then
  echo "error: the library was not built at $MCP_SESSION_CORE_LIB" >&2
  exit 1
fi

cd "$here"
echo "==> npm ci"
npm ci --no-audit --no-fund

echo "==> node --test (library: $MCP_SESSION_CORE_LIB)"
node --test test/*.test.js
