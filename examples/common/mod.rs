//! Helpers shared by the examples: the flag parser and the input data.
#![allow(dead_code)]

mod args;
pub mod counting;
pub use args::{Args, Flag, run};

/// The `--input` flag of the examples that read embeddings.
pub const INPUT: Flag = (
    "--input",
    true,
    "",
    "embeddings .npy (default: the built-in mixture)",
);

/// The embeddings named by `--input FILE.npy`, or the built-in
/// hierarchical mixture (50k × 128); returns `(data, dim, description)`.
pub fn load_data(args: &Args) -> Result<(Vec<f32>, usize, String), semid::Error> {
    match args.get("--input") {
        Some(path) => {
            let (data, dim) = semid::npy::read_npy(path)?;
            Ok((data, dim, path.to_string()))
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

/// The CPU's model name, family and model (`/proc/cpuinfo` on Linux, else
/// "unknown"), for the figures a bench prints.
pub fn cpu_model() -> String {
    let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") else {
        return "unknown".to_string();
    };
    let field = |name: &str| {
        info.lines()
            .find(|l| l.split(':').next().map(str::trim) == Some(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().replace('"', "'"))
    };
    match (field("model name"), field("cpu family"), field("model")) {
        (Some(name), Some(fam), Some(model)) => format!("{name} family {fam} model {model}"),
        (Some(name), ..) => name,
        _ => "unknown".to_string(),
    }
}
