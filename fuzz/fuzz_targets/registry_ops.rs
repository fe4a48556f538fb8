//! Fuzz target: registry operation sequences against the sequential reference model.
//! The check is `tests/check/registry_ops.rs`, shared with the stable corpus
//! replay (`tests/fuzz_corpus.rs`).
#![no_main]

#[path = "../../tests/check/mod.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::registry_ops::check(data));
