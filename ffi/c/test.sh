#!/usr/bin/env bash
# The C binding's test entry point; runnable from any directory.
#
#   1. builds the Rust library (cargo build --release --features redis)
#   2. compiles the header alone as C99, C11 and C++ (-Wall -Wextra -Wpedantic -Werror)
#   3. compiles the tests, the example and the bench as C11 with the same
#      flags, linked against the static library libmcp_session_core.a
#   4. runs the API tests, the ABI compatibility test (a program built
#      against the frozen v0.1.0 header), the stress test, the example, a
#      short bench
#   5. runs the API tests and the example under valgrind memcheck: zero
#      errors and nothing definitely lost
#   6. runs the fleet-mode tests (msc_fleet_*) against a redis-server they
#      start themselves on a free loopback port, natively and under
#      valgrind (tests/fleet.supp suppresses one known redis-rs leak)
#
# Build outputs go to ffi/c/build/ (gitignored). A missing tool is an error
# naming what to install. The last line is "C tests: N passed, M failed",
# N counting the API test cases and the stress configurations; the exit
# status is non-zero on any failure.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
BUILD="$HERE/build"
INCLUDE="$REPO/include"

step() { printf '\n==> %s\n' "$*"; }
need() {
  command -v "$1" >/dev/null 2>&1 || {
    echo "error: '$1' not found; $2" >&2
    exit 1
  }
}

need cargo "install Rust with rustup (https://rustup.rs)"
need gcc "install it with: apt-get install gcc"
need g++ "install it with: apt-get install g++"
need valgrind "install it with: apt-get install valgrind"
need redis-server "install it with: apt-get install redis-server"

step "build the Rust library (release, with fleet mode: --features redis)"
# The same feature set as ffi/go and ffi/node build, so the three share one
# release build.
cargo build --release --features redis --manifest-path "$REPO/Cargo.toml"
TARGET_DIR="${CARGO_TARGET_DIR:-${CARGO_BUILD_TARGET_DIR:-$REPO/target}}"
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$PWD/$TARGET_DIR" ;; esac
STATIC_LIB="$TARGET_DIR/release/libmcp_session_core.a"
[ -f "$STATIC_LIB" ] || { echo "error: $STATIC_LIB was not built" >&2; exit 1; }

mkdir -p "$BUILD"
WARN=(-Wall -Wextra -Wpedantic -Werror)
CFLAGS=(-std=c11 "${WARN[@]}" -O2 -g -I"$INCLUDE" -I"$HERE/tests")
# What the Rust standard library needs from the system when linked
# statically (see `cargo rustc -- --print native-static-libs`).
LIBS=("$STATIC_LIB" -lpthread -ldl -lm)

step "the header compiles on its own (C99, C11, C++11, C++17)"
printf '#include "mcp_session_core.h"\n#include "mcp_session_core.h"\nint main(void) { return msc_version() == 0; }\n' >"$BUILD/header_only.c"
printf '#include "mcp_session_core.h"\n#include "mcp_session_core.h"\nint main() { return msc_version() == nullptr; }\n' >"$BUILD/header_only.cpp"
gcc -std=c99 "${WARN[@]}" -Wstrict-prototypes -I"$INCLUDE" -c "$BUILD/header_only.c" -o "$BUILD/header_c99.o"
gcc -std=c11 "${WARN[@]}" -Wstrict-prototypes -I"$INCLUDE" -c "$BUILD/header_only.c" -o "$BUILD/header_c11.o"
g++ -std=c++11 "${WARN[@]}" -I"$INCLUDE" -c "$BUILD/header_only.cpp" -o "$BUILD/header_cxx11.o"
g++ -std=c++17 "${WARN[@]}" -I"$INCLUDE" -c "$BUILD/header_only.cpp" -o "$BUILD/header_cxx17.o"
# ...and links: every symbol it declares is in the library.
g++ -std=c++17 "${WARN[@]}" -I"$INCLUDE" "$BUILD/header_only.cpp" -o "$BUILD/header_cxx" "${LIBS[@]}"
echo "ok"

step "compile tests, stress, example, bench (gcc -std=c11 ${WARN[*]})"
gcc "${CFLAGS[@]}" "$HERE/tests/test_api.c" -o "$BUILD/test_api" "${LIBS[@]}"
gcc "${CFLAGS[@]}" "$HERE/tests/test_fairness.c" -o "$BUILD/test_fairness" "${LIBS[@]}"
gcc "${CFLAGS[@]}" -pthread "$HERE/tests/stress.c" -o "$BUILD/stress" "${LIBS[@]}"
gcc "${CFLAGS[@]}" -pthread "$HERE/tests/test_fleet.c" -o "$BUILD/test_fleet" "${LIBS[@]}"
gcc "${CFLAGS[@]}" "$HERE/example/server_sim.c" -o "$BUILD/server_sim" "${LIBS[@]}"
# Built against the frozen v0.1.0 header (not include/): an old host, new library.
gcc -std=c11 "${WARN[@]}" -O2 -g -I"$HERE/tests/compat/v0.1.0" -I"$HERE/tests" \
  "$HERE/tests/compat/compat.c" -o "$BUILD/compat" "${LIBS[@]}"
gcc "${CFLAGS[@]}" "$HERE/bench/bench_get.c" -o "$BUILD/bench_get" "${LIBS[@]}"
echo "ok"

passed=0
failed=0
steps_failed=()

# run_counted NAME CMD...: runs a suite that ends with "NAME: P passed, F failed";
# adds P and F to the totals (a crash or missing summary counts as a failure).
run_counted() {
  local name=$1
  shift
  local log="$BUILD/$name.log" rc=0 line p f
  "$@" 2>&1 | tee "$log" || rc=$?
  line=$(grep -E "^$name: [0-9]+ passed, [0-9]+ failed" "$log" | tail -n 1 || true)
  if [ -z "$line" ]; then
    echo "error: $name printed no summary (exit $rc)" >&2
    failed=$((failed + 1))
    steps_failed+=("$name")
    return 0
  fi
  p=$(sed -E 's/^[^:]*: ([0-9]+) passed, ([0-9]+) failed.*/\1/' <<<"$line")
  f=$(sed -E 's/^[^:]*: ([0-9]+) passed, ([0-9]+) failed.*/\2/' <<<"$line")
  passed=$((passed + p))
  failed=$((failed + f))
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    failed=$((failed + 1)) # non-zero exit without a failed case
  fi
  [ "$rc" -eq 0 ] || steps_failed+=("$name")
}

# run_step NAME CMD...: a pass/fail step that is not a test suite.
run_step() {
  local name=$1
  shift
  local rc=0
  "$@" || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "error: $name failed (exit $rc)" >&2
    steps_failed+=("$name")
  fi
}

VALGRIND=(valgrind --tool=memcheck --error-exitcode=1 --leak-check=full
  --errors-for-leak-kinds=definite)

step "API tests"
run_counted test_api "$BUILD/test_api"

step "fairness tests (per-principal caps and rate limits, evict-idle, msc_registry_stat)"
run_counted test_fairness "$BUILD/test_fairness"

step "ABI compatibility: a host built against the v0.1.0 header"
run_counted compat "$BUILD/compat"

step "stress test (8 threads)"
run_counted stress "$BUILD/stress"

step "example: server_sim"
run_step server_sim "$BUILD/server_sim"

step "bench smoke run (bench_get, 200000 calls per case)"
run_step bench_get "$BUILD/bench_get" 200000

step "API tests under valgrind (memcheck, definite leaks are errors)"
run_step "valgrind test_api" "${VALGRIND[@]}" "$BUILD/test_api"

step "example under valgrind"
run_step "valgrind server_sim" "${VALGRIND[@]}" -q "$BUILD/server_sim"

step "fleet mode (msc_fleet_*) against a private redis-server"
run_counted test_fleet "$BUILD/test_fleet"

step "fleet mode under valgrind"
run_step "valgrind test_fleet" "${VALGRIND[@]}" -q --suppressions="$HERE/tests/fleet.supp" "$BUILD/test_fleet"

echo
if [ "${#steps_failed[@]}" -gt 0 ]; then
  echo "failed steps: ${steps_failed[*]}" >&2
  # A failed step that is not a counted case still fails the run.
  [ "$failed" -gt 0 ] || failed=${#steps_failed[@]}
fi
echo "C tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
