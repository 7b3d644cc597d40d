//! Argument helpers shared by the examples.
#![allow(dead_code)]

/// The value after `--name` on the command line, if any.
pub fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// The embeddings named by `--input FILE.npy`, or the built-in
/// hierarchical mixture (50k × 128); returns `(data, dim, description)`.
pub fn load_data(args: &[String]) -> Result<(Vec<f32>, usize, String), semid::Error> {
    match arg(args, "--input") {
        Some(path) => {
            let (data, dim) = semid::npy::read_npy(&path)?;
            Ok((data, dim, path))
        }
        None => {
            let cfg = semid::synthetic::MixtureConfig::default();
            let data = semid::synthetic::hierarchical_mixture(&cfg);
            let src = format!(
                "built-in hierarchical mixture ({} topics x {} sub-topics, seed {})",
                cfg.topics, cfg.subtopics, cfg.seed
            );
            Ok((data, cfg.dim, src))
        }
    }
}
