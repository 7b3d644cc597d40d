//! Writes the built-in synthetic embeddings to a `.npy` file, so semid and
//! the peer scripts (FAISS, …) can be measured on the same file.
//!
//! ```text
//! cargo run --release --example make_data -- --n 200000 --dim 256 --out bench-data/mix.npy
//! ```
use semid::synthetic::{MixtureConfig, hierarchical_mixture};

mod common;
use common::{Args, Flag};

const ABOUT: &str = "write the built-in synthetic embeddings to a .npy file";

const FLAGS: &[Flag] = &[
    ("--n", true, "", "rows (default: the built-in size)"),
    ("--dim", true, "", "columns (default: the built-in size)"),
    ("--seed", true, "", "seed (default: the built-in seed)"),
    ("--out", true, "", "output .npy (required)"),
];

fn main() -> std::process::ExitCode {
    common::run("make_data", body)
}

fn body() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse_or_exit("make_data", ABOUT, FLAGS);
    let mut cfg = MixtureConfig::default();
    if let Some(v) = args.get("--n") {
        cfg.n = v.parse()?;
    }
    if let Some(v) = args.get("--dim") {
        cfg.dim = v.parse()?;
    }
    if let Some(v) = args.get("--seed") {
        cfg.seed = v.parse()?;
    }
    let out = args.get("--out").ok_or("--out FILE.npy is required")?;
    if let Some(dir) = std::path::Path::new(&out).parent() {
        std::fs::create_dir_all(dir)?;
    }
    let data = hierarchical_mixture(&cfg);
    semid::npy::write_npy(out, &data, cfg.dim)?;
    println!("wrote {} x {} to {out}", cfg.n, cfg.dim);
    Ok(())
}
