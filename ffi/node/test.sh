#!/usr/bin/env bash
# Builds the Rust cdylib, installs the Node package from its lock file,
# type-checks a typed usage file (tsc --noEmit), runs the Node tests, then
# packs the package and this platform's library package (npm pack), installs
# both tarballs into a temporary project offline and runs a program there
# with no MCP_SESSION_CORE_LIB. Works from any directory; exits non-zero on
# failure.
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
need redis-server "Install it with: apt-get install redis-server (test/fleet.test.js starts one)."

node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
  echo "error: Node.js 20 or newer is required (found $(node --version))." >&2
  exit 1
fi

echo "==> cargo build --release --features redis"
# With fleet mode (Fleet); the same features as ffi/c and ffi/go build, so
# the three share one release build.
cargo build --release --features redis --manifest-path "$repo/Cargo.toml"

case "$(uname -s)" in
  Darwin) lib_name=libmcp_session_core.dylib ;;
  MINGW* | MSYS* | CYGWIN*) lib_name=mcp_session_core.dll ;;
  *) lib_name=libmcp_session_core.so ;;
esac
built="${CARGO_TARGET_DIR:-$repo/target}/release/$lib_name"
case "$built" in /*) ;; *) built="$repo/$built" ;; esac
lib="${MCP_SESSION_CORE_LIB:-$built}"
if [ ! -f "$lib" ]; then
  echo "error: the library was not built at $lib" >&2
  exit 1
fi

cd "$here"
echo "==> npm ci"
npm ci --no-audit --no-fund

echo "==> tsc --noEmit (test/types/usage.ts against index.d.ts)"
npx --no-install tsc --noEmit -p test/types

echo "==> node --test (library: $lib)"
MCP_SESSION_CORE_LIB="$lib" node --test test/*.test.js

echo "==> npm pack + install into a temporary project, no MCP_SESSION_CORE_LIB"
node -e '
  const main = require("./package.json");
  if (main.private) throw new Error("package.json: private must be off to publish");
  for (const dep of ["@modelcontextprotocol/sdk", "zod"]) {
    if (main.dependencies?.[dep]) throw new Error(`${dep} belongs in devDependencies (only the example uses it)`);
  }
'
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
node scripts/stage-packages.mjs "$tmp/stage" "$built"
platform_pkg="$(node -e "import('./index.js').then((m) => console.log(m.platformPackageName()))")"
main_tgz="$(cd "$tmp/stage/mcp-session-core" && npm pack --silent --pack-destination "$tmp" .)"
platform_tgz="$(cd "$tmp/stage/${platform_pkg#mcp-session-core-}" && npm pack --silent --pack-destination "$tmp" .)"
mkdir "$tmp/app"
cp test/install/app.mjs "$tmp/app/"
cat >"$tmp/app/package.json" <<JSON
{
  "name": "app",
  "private": true,
  "type": "module",
  "dependencies": {
    "mcp-session-core": "file:../$main_tgz",
    "$platform_pkg": "file:../$platform_tgz"
  }
}
JSON
# --prefer-offline: koffi and its prebuilt package come from npm's cache
# (npm ci above filled it) when their metadata is cached too. The other
# platforms' packages are optional and skipped. From the registry, npm
# installs the matching platform package by itself (optionalDependencies);
# here it is not published, so its tarball is named too.
(cd "$tmp/app" && npm install --prefer-offline --no-audit --no-fund --loglevel=error)
node -e '
  const m = require(process.argv[1]);
  if (m.optionalDependencies?.[process.argv[2]] !== m.version) throw new Error("the packed package must list " + process.argv[2] + "@" + m.version + " in optionalDependencies");
' "$tmp/app/node_modules/mcp-session-core/package.json" "$platform_pkg"
(cd "$tmp/app" && env -u MCP_SESSION_CORE_LIB node app.mjs)
