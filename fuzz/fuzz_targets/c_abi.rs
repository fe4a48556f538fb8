//! Fuzz target: the C ABI fed arbitrary bytes, lengths and NULLs at every entry point.
//! The check is `tests/check/c_abi.rs`, shared with the stable corpus
//! replay (`tests/fuzz_corpus.rs`).
#![no_main]

#[path = "../../tests/check/mod.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::c_abi::check(data));
