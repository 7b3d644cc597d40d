//! Writes the built-in synthetic embeddings to a `.npy` file, so semid and
//! the peer scripts (FAISS, …) can be measured on the same file.
//!
//! ```text
//! cargo run --release --example make_data -- --n 200000 --dim 256 --out bench-data/mix.npy
//! ```
use semid::synthetic::{MixtureConfig, hierarchical_mixture};

mod common;
use common::arg;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let mut cfg = MixtureConfig::default();
    if let Some(v) = arg(&args, "--n") {
        cfg.n = v.parse()?;
    }
    if let Some(v) = arg(&args, "--dim") {
        cfg.dim = v.parse()?;
    }
    if let Some(v) = arg(&args, "--seed") {
        cfg.seed = v.parse()?;
    }
    let out = arg(&args, "--out").ok_or("--out FILE.npy is required")?;
    if let Some(dir) = std::path::Path::new(&out).parent() {
        std::fs::create_dir_all(dir)?;
    }
    let data = hierarchical_mixture(&cfg);
    semid::npy::write_npy(&out, &data, cfg.dim)?;
    println!("wrote {} x {} to {out}", cfg.n, cfg.dim);
    Ok(())
}
