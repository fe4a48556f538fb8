#!/usr/bin/env bash
# AddressSanitizer over the Rust tests and the C API tests.
#
#   scripts/asan.sh
#
# 1. Rust: the core's integration tests (tests/semantics.rs, churn.rs,
#    stress.rs, no_alloc.rs, model_proptest.rs, fuzz_corpus.rs), built by
#    the asan/ package on nightly with RUSTFLAGS=-Zsanitizer=address and an
#    explicit --target (so build scripts and proc macros stay
#    uninstrumented). asan/ lists only what those tests need: the root
#    package's dev-dependencies (rmcp, axum, reqwest, redis, criterion...)
#    would all be rebuilt instrumented, many minutes for nothing. Left out:
#    doctests, the rmcp/redis integration tests (network servers, no unsafe
#    code of ours beyond the core), and the library's own unit tests (id
#    parsing and the rate limiter, safe code that the tests above and the
#    fuzz targets, which cargo-fuzz builds with ASan too, exercise).
# 2. C: the static library built the same way, and ffi/c/tests/test_api.c
#    and ffi/c/tests/stress.c compiled with gcc -fsanitize=address and
#    linked against it.
#
# Zero reports expected: any ASan report fails the run (ASan aborts the
# process, exit status non-zero). LeakSanitizer runs too (on by default
# with ASan on Linux).
#
# ThreadSanitizer is left out on purpose: it needs the standard library
# rebuilt with -Zsanitizer=thread (cargo -Zbuild-std, which needs the
# rust-src component), and rust-src cannot be fetched on this machine.
# An uninstrumented std gives false data-race reports on every
# std::sync primitive, so a TSan run without it would prove nothing. The
# concurrency protocol is model-checked with loom instead
# (scripts/loom.sh), and the stress tests run under ASan here.
#
# Build outputs go to target/asan/ (kept apart from the normal builds).
# Needs the nightly toolchain and gcc; a missing one is an error naming
# what to install.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

TRIPLE=x86_64-unknown-linux-gnu
export CARGO_TARGET_DIR="$ROOT/target/asan"
export RUSTFLAGS="-Zsanitizer=address -Cforce-frame-pointers=yes"
export RUSTDOCFLAGS="$RUSTFLAGS"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1:strict_string_checks=1"

step() { printf '\n==> %s\n' "$*"; }

if [ "$(uname -m)-$(uname -s)" != "x86_64-Linux" ]; then
  echo "error: scripts/asan.sh runs on x86_64 Linux ($TRIPLE)" >&2
  exit 1
fi
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "error: the nightly Rust toolchain is missing: rustup toolchain install nightly" >&2
  exit 1
fi
command -v gcc >/dev/null 2>&1 || { echo "error: 'gcc' not found: apt-get install gcc" >&2; exit 1; }

BUILD="$ROOT/ffi/c/build/asan"
mkdir -p "$BUILD"

# expect_report NAME CMD...: the sanitizer must catch a planted heap
# overflow, so that a set-up that silently checks nothing fails here.
expect_report() {
  local name=$1 out rc=0
  shift
  out=$("$@" 2>&1) || rc=$?
  if [ "$rc" -eq 0 ] || ! grep -q 'ERROR: AddressSanitizer: heap-buffer-overflow' <<<"$out"; then
    echo "error: ASan did not catch the planted overflow in $name (exit $rc)" >&2
    exit 1
  fi
  echo "ok: ASan catches a heap overflow in $name"
}

step "the sanitizer is live (planted overflows in Rust and C)"
cat >"$BUILD/canary.rs" <<'RS'
fn main() {
    let v = vec![1u8; 8];
    let p = std::hint::black_box(v.as_ptr());
    // SAFETY: none: a deliberate out-of-bounds read for ASan to catch.
    println!("{}", unsafe { *p.add(8) });
}
RS
rustc +nightly -Zsanitizer=address --target "$TRIPLE" -g "$BUILD/canary.rs" -o "$BUILD/canary_rs"
expect_report "Rust (-Zsanitizer=address)" "$BUILD/canary_rs"
printf '#include <stdlib.h>\nint main(void) { volatile char *p = malloc(8); int r = p[8]; free((void *)p); return r; }\n' >"$BUILD/canary.c"
gcc -fsanitize=address -g "$BUILD/canary.c" -o "$BUILD/canary_c"
expect_report "C (gcc -fsanitize=address)" "$BUILD/canary_c"

step "Rust tests under AddressSanitizer (nightly, $TRIPLE)"
ASAN_CARGO=(cargo +nightly test --manifest-path asan/Cargo.toml --no-fail-fast --target "$TRIPLE")
"${ASAN_CARGO[@]}" --test semantics --test churn --test no_alloc --test model_proptest --test fuzz_corpus --test take --test values
# The stress test's capacity-8 configurations (EvictOldest and Reject, 8
# threads, 1M operations each): the other two take as long again under
# ASan and exercise the same code.
"${ASAN_CARGO[@]}" --test stress -- capacity_8

step "static library under AddressSanitizer"
cargo +nightly build --release --target "$TRIPLE" --lib
LIB="$CARGO_TARGET_DIR/$TRIPLE/release/libmcp_session_core.a"
[ -f "$LIB" ] || { echo "error: $LIB was not built" >&2; exit 1; }

CFLAGS=(-std=c11 -Wall -Wextra -Wpedantic -Werror -O1 -g -fno-omit-frame-pointer
  -fsanitize=address -I"$ROOT/include" -I"$ROOT/ffi/c/tests")
LIBS=("$LIB" -lpthread -ldl -lm)

step "C API tests and stress test under AddressSanitizer (gcc -fsanitize=address)"
gcc "${CFLAGS[@]}" ffi/c/tests/test_api.c -o "$BUILD/test_api" "${LIBS[@]}"
gcc "${CFLAGS[@]}" -pthread ffi/c/tests/stress.c -o "$BUILD/stress" "${LIBS[@]}"
"$BUILD/test_api"
"$BUILD/stress"

echo
echo "ASan: Rust and C suites passed with zero reports"
