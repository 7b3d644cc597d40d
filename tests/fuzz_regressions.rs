//! Replays every input under `fuzz/regressions/<target>/` through the fuzz
//! targets' code paths, in the normal test suite.

use semid::fuzz::{beam_search, index_file, model_file, npy, trie_build};

fn replay(target: &str, f: fn(&[u8])) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("regression directory exists") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            continue;
        }
        f(&std::fs::read(&path).unwrap());
        n += 1;
    }
    assert!(n > 0, "no regression inputs found in {}", dir.display());
}

#[test]
fn replay_model_file_regressions() {
    replay("model_file", model_file);
}

#[test]
fn replay_trie_build_regressions() {
    replay("trie_build", trie_build);
}

#[test]
fn replay_beam_search_regressions() {
    replay("beam_search", beam_search);
}

#[test]
fn replay_index_file_regressions() {
    replay("index_file", index_file);
}

#[test]
fn replay_npy_regressions() {
    replay("npy", npy);
}
