//! Replays the checked-in fuzz corpus (`fuzz/corpus/<target>/`) on stable,
//! through the same check functions the fuzz targets run
//! (`tests/check/`): a finding, once minimized and checked in, stays
//! fixed. `scripts/fuzz.sh` runs the targets themselves (nightly).

mod check;

use std::path::PathBuf;

/// `fuzz/corpus/` at the repository root: this test is built by the root
/// package and by `asan/` (scripts/asan.sh), one level down.
fn corpus_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    [
        manifest.join("fuzz/corpus"),
        manifest.join("../fuzz/corpus"),
    ]
    .into_iter()
    .find(|dir| dir.is_dir())
    .unwrap_or_else(|| panic!("no fuzz/corpus/ at or above {}", manifest.display()))
}

/// Runs every file of `fuzz/corpus/<target>/` through `f`; fails if the
/// directory is missing or empty (a corpus that silently vanished would
/// make this test pass without checking anything).
fn replay(target: &str, f: fn(&[u8])) {
    let dir = corpus_root().join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds no corpus file", dir.display());
    for path in &files {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let result = std::panic::catch_unwind(|| f(&data));
        if let Err(panic) = result {
            eprintln!("corpus file {} failed", path.display());
            std::panic::resume_unwind(panic);
        }
    }
    eprintln!("{target}: {} corpus files replayed", files.len());
}

#[test]
fn parse_id_corpus() {
    replay("parse_id", check::parse_id::check);
}

#[test]
fn registry_ops_corpus() {
    replay("registry_ops", check::registry_ops::check);
}

#[test]
fn c_abi_corpus() {
    replay("c_abi", check::c_abi::check);
}
