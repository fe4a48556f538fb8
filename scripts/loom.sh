#!/usr/bin/env bash
# Loom model checks of the admission protocol (loom-tests/tests/admission.rs,
# and with per-principal quotas loom-tests/tests/principals.rs):
# the real src/core/admission.rs, built with `--cfg mcp_session_core_loom`
# (loom's atomics via src/sync.rs), run under every interleaving up to
# LOOM_MAX_PREEMPTIONS preemptions (default 3). Takes about three minutes on
# two cores. Extra arguments go to the test harness, e.g. a test name filter:
#
#   scripts/loom.sh create_evict
#   LOOM_MAX_PREEMPTIONS=2 scripts/loom.sh
#
# A separate target dir keeps these cfg'd builds from invalidating the normal
# ones.
set -euo pipefail
cd "$(dirname "$0")/.."

export RUSTFLAGS="--cfg mcp_session_core_loom -C debug-assertions"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}"
# To see the steps of a failing interleaving, rerun its test alone with
# LOOM_LOG=trace LOOM_LOCATION=1 (and RUST_BACKTRACE=1).

exec cargo test --release -p loom-tests --target-dir target/loom -- --test-threads=2 "$@"
