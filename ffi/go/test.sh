#!/usr/bin/env bash
# The Go binding's test suite: builds the Rust static library, then checks
# formatting, vets and runs every Go test (unit, stress, examples) under the
# race detector. Works from any directory.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

command -v go >/dev/null 2>&1 || {
  echo "error: 'go' not found: install Go: apt-get install golang-go" >&2
  exit 1
}
command -v cargo >/dev/null 2>&1 || {
  echo "error: 'cargo' not found: install Rust (rustup)" >&2
  exit 1
}

# Never download a newer toolchain because of go.mod; use the one installed.
export GOTOOLCHAIN=local
# cgo is required (the binding is cgo) and is what -race needs too.
export CGO_ENABLED=1
# The cgo flags link ../../target/release/libmcp_session_core.a: build it
# there even if the caller's environment points cargo elsewhere.
export CARGO_TARGET_DIR="$root/target"

echo "--> cargo build --release (static library)"
cargo build --release --manifest-path "$root/Cargo.toml"

cd "$here"
echo "--> go version: $(go version)"

echo "--> gofmt"
unformatted="$(gofmt -l .)"
if [ -n "$unformatted" ]; then
  echo "error: gofmt would change these files (run gofmt -w .):" >&2
  echo "$unformatted" >&2
  exit 1
fi

echo "--> go vet"
go vet ./...

echo "--> go test"
# The race detector needs cgo and a race runtime for the platform
# (linux/amd64 and linux/arm64 have one, and Debian's Go 1.19 ships it).
# Where go reports it unsupported, run without -race rather than fail.
race=-race
if ! probe="$(go build -race -o /dev/null runtime 2>&1)"; then
  if grep -q "not supported" <<<"$probe"; then
    echo "note: $probe -- running the tests without -race"
    race=
  else
    echo "$probe" >&2
    exit 1
  fi
fi
go test $race -count=1 ./...
