//! Product quantization (PQ) and OPQ fit and encode figures, one JSON line
//! per configuration, for side-by-side runs with
//! `examples/python/faiss_pq.py` on the same `.npy` file.
//!
//! ```text
//! cargo run --release --example bench_pq -- --input FILE.npy [--m 4,16,32] [--k 256]
//!     [--opq-iters 20] [--skip-pq] [--skip-opq] [--threads 2] [--seed 1234]
//! ```
use std::time::Instant;

use semid::quantize::{PqConfig, ProductQuantizer};
use semid::{Embeddings, Par, Quantizer, stats};

mod common;
use common::{Args, Flag};

const ABOUT: &str =
    "PQ / OPQ fit + encode figures as JSON lines (beside examples/python/faiss_pq.py)";

const FLAGS: &[Flag] = &[
    ("--input", true, "", "embeddings .npy (required)"),
    ("--m", true, "4,16,32", "sub-spaces, comma-separated"),
    ("--k", true, "256", "codes per sub-space"),
    (
        "--opq-iters",
        true,
        "",
        "OPQ alternations (default PqConfig::OPQ_ITERATIONS)",
    ),
    ("--skip-pq", false, "", "only OPQ"),
    ("--skip-opq", false, "", "only PQ"),
    ("--threads", true, "0", "threads (0: all)"),
    ("--seed", true, "1234", "seed"),
    ("--iters", true, "", "Lloyd iterations per sub-space"),
    (
        "--tol",
        true,
        "",
        "relative inertia change that stops Lloyd",
    ),
    ("--init", true, "", "progressive|pp|random"),
    (
        "--pd-iters",
        true,
        "",
        "progressive init: iterations per step",
    ),
];

fn main() -> std::process::ExitCode {
    common::run("bench_pq", body)
}

fn body() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse_or_exit("bench_pq", ABOUT, FLAGS);
    let input = args.get("--input").ok_or("--input FILE.npy is required")?;
    let k: usize = args.num("--k")?;
    let par = Par::Rayon(args.num("--threads")?);
    let seed: u64 = args.num("--seed")?;
    let (data, dim) = semid::npy::read_npy(input)?;
    let x = Embeddings::new(&data, dim)?;
    let n = x.rows();
    let ms: Vec<usize> = args
        .num::<String>("--m")?
        .split(',')
        .map(|v| v.trim().parse())
        .collect::<Result<_, _>>()?;
    let mut kinds = Vec::new();
    if !args.on("--skip-pq") {
        kinds.push("pq");
    }
    if !args.on("--skip-opq") {
        kinds.push("opq");
    }
    for &m in &ms {
        for &kind in &kinds {
            let mut cfg = if kind == "pq" {
                PqConfig::pq(m, k)
            } else {
                PqConfig::opq(m, k)
            }
            .seed(seed)
            .par(par);
            if let Some(v) = args.opt("--iters")? {
                cfg.kmeans.max_iter = v;
            }
            if let Some(v) = args.opt("--tol")? {
                cfg.kmeans.tol = v;
            }
            match args.get("--init") {
                None => {}
                Some("progressive") => {
                    cfg.kmeans.init = semid::Init::ProgressiveDim {
                        steps: 10,
                        iters: args.opt("--pd-iters")?.unwrap_or(10),
                    }
                }
                Some("pp") => cfg.kmeans.init = semid::Init::KMeansPlusPlus,
                Some("random") => cfg.kmeans.init = semid::Init::Random,
                Some(o) => return Err(format!("--init {o}: progressive, pp or random").into()),
            }
            if kind == "opq"
                && let Some(it) = args.opt("--opq-iters")?
            {
                cfg.opq_iterations = it;
            }
            let t = Instant::now();
            let (q, report) = ProductQuantizer::fit(&cfg, x)?;
            let fit_s = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let mut out = vec![0u16; n * m];
            q.encode_into(x, &mut out, par)?;
            let codes = semid::Codes::new(out, m)?;
            let enc_s = t.elapsed().as_secs_f64();
            let mse = stats::mse(x, &q.decode(&codes)?)?;
            let quality = stats::code_quality(&codes, &q.codebook_sizes())?;
            let perp = quality
                .levels
                .iter()
                .map(|l| l.stats.perplexity)
                .sum::<f64>()
                / m as f64;
            println!(
                "{{\"tool\":\"semid\",\"kind\":\"{kind}\",\"m\":{m},\"k\":{k},\"n\":{n},\"d\":{dim},\"opq_iters\":{},\"fit_s\":{fit_s:.3},\"encode_vps\":{:.1},\"mse\":{mse:.6},\"train_mse\":{:.6},\"perplexity_mean\":{perp:.2},\"collision_rate\":{:.6},\"max_items_per_code\":{},\"opq_mse\":[{}]}}",
                cfg.opq_iterations,
                n as f64 / enc_s,
                report.mse,
                quality.collision_rate,
                quality.max_items_per_code,
                report
                    .opq_mse
                    .iter()
                    .map(|v| format!("{v:.5}"))
                    .collect::<Vec<_>>()
                    .join(","),
            );
        }
    }
    Ok(())
}
