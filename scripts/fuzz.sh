#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS each (default 60):
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Targets (fuzz/fuzz_targets/, checks in tests/check/):
#   parse_id      SessionId::parse_bytes vs a plain reference parser
#   registry_ops  registry operation sequences vs the reference model
#   c_abi         the C ABI fed arbitrary bytes, lengths and NULLs
#
# Each target starts from the checked-in seeds (fuzz/corpus/<target>/,
# read only; replayed on stable by `cargo test --test fuzz_corpus`) and
# writes what it finds to fuzz/runs/<target>/ (gitignored, kept between
# runs). A crash fails the script; its input is in fuzz/artifacts/<target>/
# (reproduce: cargo +nightly fuzz run <target> <file>). Prints executions
# and corpus size per target.
#
# Needs the nightly toolchain and cargo-fuzz; a missing one is an error
# naming what to install.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SECS=${1:-60}
shift || true
case "$SECS" in '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2; exit 2 ;; esac

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "error: the nightly Rust toolchain is missing: rustup toolchain install nightly" >&2
  exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "error: cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
  exit 1
fi

cd fuzz
if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
[ ${#targets[@]} -gt 0 ] || { echo "error: no fuzz targets found in fuzz/" >&2; exit 1; }

echo "==> building ${#targets[@]} fuzz targets (release, debug assertions on)"
cargo +nightly fuzz build --debug-assertions

failed=()
summary=()
for t in "${targets[@]}"; do
  runs="$ROOT/fuzz/runs/$t"
  seeds="$ROOT/fuzz/corpus/$t"
  log="$ROOT/fuzz/runs/$t.log"
  mkdir -p "$runs"
  [ -d "$seeds" ] || { echo "error: no seed corpus $seeds" >&2; exit 1; }
  echo "==> fuzz $t for ${SECS}s"
  rc=0
  # New inputs go to the first corpus directory ($runs); the seeds are
  # only read. -timeout: an input that runs for 10 s is a hang.
  cargo +nightly fuzz run --debug-assertions "$t" "$runs" "$seeds" -- \
    -max_total_time="$SECS" -timeout=10 -print_final_stats=1 >"$log" 2>&1 || rc=$?
  execs=$(grep -a -E '^stat::number_of_executed_units:' "$log" | awk '{print $2}' | tail -n 1)
  corp=$(grep -a -oE 'corp: [0-9]+/[0-9]+[a-zA-Z]*' "$log" | tail -n 1 | sed 's/corp: //')
  files=$(find "$runs" -type f | wc -l)
  line="$t: ${execs:-?} executions, corpus ${corp:-?} (units/bytes), $files new files in fuzz/runs/$t"
  if [ "$rc" -ne 0 ]; then
    tail -n 40 "$log" >&2
    line="$line -- FAILED (exit $rc; see $log and fuzz/artifacts/$t/)"
    failed+=("$t")
  fi
  echo "$line"
  summary+=("$line")
done

echo
echo "fuzz summary (${SECS}s per target):"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "error: fuzz targets failed: ${failed[*]}" >&2
  exit 1
fi
