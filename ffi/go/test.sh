#!/usr/bin/env bash
# The Go binding's test suite: builds the Rust static library into the
# module (go generate), checks formatting, vets and runs every Go test
# (unit, stress, examples) under the race detector, runs BenchmarkGet with
# -cpu 1,2, then builds and runs a program that imports a copy of the module
# from a temporary directory, as a user's program would. Works from any
# directory.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
module="$here/mcpsession"

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
# Nothing here may come from the network.
export GOPROXY=off GOFLAGS=-mod=mod
# cgo is required (the binding is cgo) and is what -race needs too.
export CGO_ENABLED=1

cd "$module"
echo "--> go version: $(go version)"
echo "--> go generate (cargo build --release, library and header into the module)"
go generate ./...

echo "--> the module's header is the repository's"
if ! cmp -s include/mcp_session_core.h "$root/include/mcp_session_core.h"; then
  echo "error: ffi/go/mcpsession/include/mcp_session_core.h differs from include/mcp_session_core.h:" >&2
  echo "       run go generate in ffi/go/mcpsession and commit the header" >&2
  exit 1
fi
if git -C "$root" rev-parse --git-dir >/dev/null 2>&1 &&
  ! git -C "$root" diff --quiet -- ffi/go/mcpsession/include; then
  echo "error: go generate changed ffi/go/mcpsession/include: commit it" >&2
  exit 1
fi

echo "--> gofmt"
unformatted="$(gofmt -l . ../install-check)"
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

echo "--> BenchmarkGet -cpu 1,2"
go test -run '^$' -bench '^BenchmarkGet$' -benchtime 300000x -cpu 1,2 -count 1 .

echo "--> a user's program, against a copy of the module in a temporary directory"
tmp="$(mktemp -d)"
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
cp -R "$module" "$tmp/mcpsession"
rm -f "$tmp/mcpsession/build-native.sh" # a user's copy cannot build with cargo
mkdir "$tmp/app"
cp "$here/install-check/main.go" "$tmp/app/"
cat >"$tmp/app/go.mod" <<MOD
module example.com/app

go 1.19

require github.com/mcp-session-core/mcp-session-core/ffi/go/mcpsession v0.1.0

replace github.com/mcp-session-core/mcp-session-core/ffi/go/mcpsession => ../mcpsession
MOD
(cd "$tmp/app" && go build -o app . && ./app)
