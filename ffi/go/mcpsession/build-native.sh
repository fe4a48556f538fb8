#!/bin/sh
# Builds the Rust static library with cargo and installs it, with the C
# header, inside this Go module: lib/<GOOS>_<GOARCH>/libmcp_session_core.a
# and include/mcp_session_core.h. Run by `go generate` in this directory
# (from a checkout of the mcp-session-core repository; needs cargo and go).
set -eu

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
if [ ! -f "$root/Cargo.toml" ]; then
  echo "error: $root/Cargo.toml not found: run this from a checkout of mcp-session-core" >&2
  exit 1
fi
command -v cargo >/dev/null 2>&1 || {
  echo "error: 'cargo' not found: install Rust (https://rustup.rs/)" >&2
  exit 1
}
target="${CARGO_TARGET_DIR:-$root/target}"
case "$target" in /*) ;; *) target="$root/$target" ;; esac
# With fleet mode (Fleet needs the msc_fleet_* functions); the same
# features as ffi/c and ffi/node build, so they share one release build.
cargo build --release --lib --features redis --manifest-path "$root/Cargo.toml"

platform="$(go env GOOS)_$(go env GOARCH)"
mkdir -p "$here/lib/$platform" "$here/include"
cp "$target/release/libmcp_session_core.a" "$here/lib/$platform/libmcp_session_core.a"
cp "$root/include/mcp_session_core.h" "$here/include/mcp_session_core.h"
echo "installed lib/$platform/libmcp_session_core.a and include/mcp_session_core.h"
