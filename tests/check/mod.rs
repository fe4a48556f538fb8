//! Check functions shared by the fuzz targets (`fuzz/fuzz_targets/*.rs`
//! include this module by `#[path]`) and by the stable tests that replay
//! the checked-in corpus (`tests/fuzz_corpus.rs`) and run the proptest
//! (`tests/model_proptest.rs`). One copy of every rule: a fuzz finding
//! replays on stable with the very same check.
//!
//! - [`model`]: the sequential reference model of a `SessionRegistry`.
//! - [`registry_ops`]: operation sequences run against the registry and
//!   the model side by side, with the invariants checked after each step.
//! - [`parse_id`]: `SessionId::parse_bytes` against a plain parser.
//! - [`c_abi`]: the C ABI fed arbitrary bytes, lengths and NULLs.
//! - [`input`]: reading typed values out of fuzz bytes.

// Each including binary uses a part of these modules.
#![allow(dead_code)]

pub mod c_abi;
pub mod input;
pub mod model;
pub mod parse_id;
pub mod registry_ops;
