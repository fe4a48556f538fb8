//! No code: this package only runs the core's integration tests
//! (`../tests/*.rs`) under AddressSanitizer; see `Cargo.toml` and
//! `scripts/asan.sh`.
