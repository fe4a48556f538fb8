#!/usr/bin/env bash
# Installs what the test command (scripts/test.sh) needs and a fresh Debian
# or Ubuntu machine lacks: the C toolchain and valgrind, Go, Node.js and npm,
# redis-server, rustfmt and clippy, cbindgen (the pinned version), the
# nightly toolchain and cargo-fuzz. Every step checks first, so a machine
# that has everything is done in about a second, and nothing is upgraded
# behind your back. scripts/test.sh runs it first; .ci/run runs
# scripts/test.sh. npm packages are installed by the steps that use them
# (`npm ci` in ffi/node and tests/ts-client).
#
# Usage: scripts/install-tools.sh [--check]   (--check: list what is
# missing and exit 1 if anything is, install nothing)
set -euo pipefail
cd "$(dirname "$0")/.."

CBINDGEN_VERSION=0.29.2
check_only=false
[ "${1:-}" = "--check" ] && check_only=true

missing=()
have() { command -v "$1" >/dev/null 2>&1; }

# Debian packages, by the command each provides.
apt_pkgs=()
for pair in gcc:gcc g++:g++ valgrind:valgrind go:golang-go node:nodejs npm:npm \
  redis-server:redis-server redis-cli:redis-tools; do
  have "${pair%%:*}" || apt_pkgs+=("${pair#*:}")
done
if [ ${#apt_pkgs[@]} -gt 0 ]; then
  missing+=("apt: ${apt_pkgs[*]}")
fi

have cargo || { echo "error: cargo not found: install Rust with rustup (https://rustup.rs/)" >&2; exit 1; }
have rustup || { echo "error: rustup not found: install Rust with rustup (https://rustup.rs/)" >&2; exit 1; }

components=()
cargo fmt --version >/dev/null 2>&1 || components+=(rustfmt)
cargo clippy --version >/dev/null 2>&1 || components+=(clippy)
[ ${#components[@]} -gt 0 ] && missing+=("rustup components: ${components[*]}")

cbindgen_ok=true
[ "$(cbindgen --version 2>/dev/null | awk '{print $2}')" = "$CBINDGEN_VERSION" ] || {
  cbindgen_ok=false
  missing+=("cbindgen $CBINDGEN_VERSION")
}
nightly_ok=true
rustup run nightly rustc --version >/dev/null 2>&1 || { nightly_ok=false; missing+=("nightly toolchain"); }
fuzz_ok=true
cargo +nightly fuzz --version >/dev/null 2>&1 || { fuzz_ok=false; missing+=("cargo-fuzz"); }

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-tools: everything is installed"
  exit 0
fi
if $check_only; then
  printf 'missing: %s\n' "${missing[@]}"
  exit 1
fi
printf 'install-tools: installing %s\n' "${missing[@]}"

if [ ${#apt_pkgs[@]} -gt 0 ]; then
  have apt-get || { echo "error: no apt-get; install by hand: ${apt_pkgs[*]}" >&2; exit 1; }
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    have sudo || { echo "error: not root and no sudo; install: ${apt_pkgs[*]}" >&2; exit 1; }
    sudo=(sudo)
  fi
  # Fleet-mode tests start their own redis-server on a free loopback port;
  # the service Debian starts on 6379 is never used.
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_pkgs[@]}"
fi
[ ${#components[@]} -gt 0 ] && rustup component add "${components[@]}"
$cbindgen_ok || cargo install cbindgen --version "$CBINDGEN_VERSION" --locked --force
# Fuzzing and AddressSanitizer (scripts/fuzz.sh, scripts/asan.sh) run on
# the nightly toolchain with cargo-fuzz.
$nightly_ok || rustup toolchain install nightly --profile minimal
$fuzz_ok || cargo install cargo-fuzz --locked
echo "install-tools: done"
