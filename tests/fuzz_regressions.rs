//! Replays every input under `fuzz/regressions/` through the fuzz targets'
//! code paths, in the normal test suite.

use semid::io::__fuzz::model_file;

#[test]
fn replay_model_file_regressions() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/model_file");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz/regressions/model_file exists") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            continue;
        }
        model_file(&std::fs::read(&path).unwrap());
        n += 1;
    }
    assert!(n > 0, "no regression inputs found in {}", dir.display());
}
