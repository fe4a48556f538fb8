//! Fuzz target: `SessionId::parse_bytes` against a plain reference parser (differential).
//! The check is `tests/check/parse_id.rs`, shared with the stable corpus
//! replay (`tests/fuzz_corpus.rs`).
#![no_main]

#[path = "../../tests/check/mod.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::parse_id::check(data));
