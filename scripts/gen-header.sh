#!/usr/bin/env bash
# Regenerates include/mcp_session_core.h with the pinned cbindgen.
# With --check, fails (exit 1) if the checked-in header is stale.
set -euo pipefail
cd "$(dirname "$0")/.."
CBINDGEN_VERSION=0.29.2
if ! command -v cbindgen >/dev/null 2>&1; then
  echo "error: cbindgen not found; install it with: cargo install cbindgen --version $CBINDGEN_VERSION --locked" >&2
  exit 1
fi
have=$(cbindgen --version | awk '{print $2}')
if [ "$have" != "$CBINDGEN_VERSION" ]; then
  echo "error: cbindgen $have found, $CBINDGEN_VERSION required: cargo install cbindgen --version $CBINDGEN_VERSION --locked --force" >&2
  exit 1
fi
out=include/mcp_session_core.h
if [ "${1:-}" = "--check" ]; then
  tmp=$(mktemp)
  trap 'rm -f "$tmp"' EXIT
  cbindgen --quiet --config cbindgen.toml --crate mcp-session-core --output "$tmp"
  if ! diff -u "$out" "$tmp"; then
    echo "error: $out is stale; run scripts/gen-header.sh and commit it" >&2
    exit 1
  fi
  echo "header: $out is up to date"
else
  cbindgen --quiet --config cbindgen.toml --crate mcp-session-core --output "$out"
  echo "wrote $out"
fi
