#!/usr/bin/env bash
# The one test command: everything the project has. README.md and .ci/run
# call exactly this. Its first step installs the tools a fresh Debian
# machine lacks (scripts/install-tools.sh); after that, each step fails
# loudly, and a missing tool is an error that names what to install, never
# a skipped step.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
need() {
  command -v "$1" >/dev/null 2>&1 || { echo "error: '$1' not found: $2" >&2; exit 1; }
}

# One build per run: cargo's incremental caches would double the debug
# target's size on disk for no gain (see [profile.dev] in Cargo.toml).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

step "tools (scripts/install-tools.sh: installs what is missing)"
scripts/install-tools.sh

need cargo "install Rust (rustup) with rustfmt and clippy"
need cbindgen "cargo install cbindgen --version 0.29.2 --locked"
need redis-server "apt-get install redis-server (the fleet-mode tests start their own on a free port)"

step "format"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "C header is up to date"
scripts/gen-header.sh --check

step "Rust tests (unit, integration, doc, README)"
cargo test --workspace --all-features

step "fuzz smoke: every cargo-fuzz target for 30 s (nightly)"
scripts/fuzz.sh 30

step "AddressSanitizer: Rust and C suites (nightly)"
scripts/asan.sh

# In the test profile: the same sources as `cargo bench`, on the debug
# dependencies the Rust tests already built (a release build of the
# benches' dependencies took ~8 minutes of a fresh CI run; this takes
# under one). Running them is scripts' and README's business, not CI's.
step "benches compile (test profile)"
cargo test --workspace --all-features --benches --no-run

step "loom model checks"
scripts/loom.sh

for lang in c go node; do
  step "FFI: $lang"
  "ffi/$lang/test.sh"
done

step "MCP server with the TypeScript SDK's client"
tests/ts-client/test.sh

step "MCP conformance suite (official, both protocol eras)"
tests/conformance/test.sh

step "end-to-end benchmark smoke: core and rmcp servers under a small flood (debug builds, ~1 min)"
scripts/e2e-bench.sh --smoke

echo
echo "all checks passed"
