//! RQ-KMeans fit + encode figures as one JSON line, for side-by-side runs
//! with `../shared/peers/faiss_rq.py` on the same `.npy` file.
//!
//! ```text
//! cargo run --release --example bench_rq -- --input FILE.npy --levels 3 --k 256 \
//!     [--beam 1] [--iters 20] [--mppc 256|all] [--threads 2] [--seed 1234] [--init progressive|pp|random]
//!     [--pd-steps 10] [--pd-iters 5] [--tol 1e-3] [--refine 1]
//! ```
//!
//! Every flag left out keeps `RqKMeansConfig::new(levels, k)`'s default, so
//! a run without flags measures the library's default fit.
//!
//! ```text
//! ```
use std::time::Instant;

use semid::{
    Codes, Embeddings, EncodeSearch, Init, Par, Quantizer, RqKMeans, RqKMeansConfig, stats,
};

mod common;
use common::{Args, Flag};

const ABOUT: &str = "RQ-KMeans fit + encode figures as one JSON line (side by side with ../shared/peers/faiss_rq.py)";

const FLAGS: &[Flag] = &[
    ("--input", true, "", "embeddings .npy (required)"),
    ("--levels", true, "3", "codes per ID"),
    ("--k", true, "256", "codes per level"),
    ("--beam", true, "1", "encoding beam"),
    (
        "--iters",
        true,
        "",
        "Lloyd iterations per level (library default: 20)",
    ),
    (
        "--mppc",
        true,
        "256",
        "most points per centroid: a number or all",
    ),
    ("--threads", true, "0", "threads (0: all)"),
    ("--seed", true, "1234", "seed"),
    ("--init", true, "progressive", "progressive|pp|random"),
    (
        "--pd-steps",
        true,
        "",
        "progressive init: steps (default 10)",
    ),
    (
        "--pd-iters",
        true,
        "",
        "progressive init: iterations per step (default 5)",
    ),
    (
        "--tol",
        true,
        "",
        "relative inertia change that stops Lloyd (default 1e-3)",
    ),
    ("--refine", true, "", "refinement rounds (default 1)"),
];

fn main() -> std::process::ExitCode {
    common::run("bench_rq", body)
}

fn body() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse_or_exit("bench_rq", ABOUT, FLAGS);
    let input = args.get("--input").ok_or("--input FILE.npy is required")?;
    let levels: usize = args.num("--levels")?;
    let k: usize = args.num("--k")?;
    let beam: usize = args.num("--beam")?;
    let threads: usize = args.num("--threads")?;
    let seed: u64 = args.num("--seed")?;
    let par = Par::Rayon(threads);
    let mut cfg = RqKMeansConfig::new(levels, k).seed(seed).par(par);
    let km = &mut cfg.kmeans;
    if let Some(v) = args.opt("--iters")? {
        km.max_iter = v;
    }
    if let Some(v) = args.opt("--tol")? {
        km.tol = v;
    }
    km.max_points_per_centroid = match args.get("--mppc") {
        None => km.max_points_per_centroid,
        Some("all") => None,
        Some(v) => Some(v.parse()?),
    };
    km.init = match (args.get("--init"), km.init) {
        (None | Some("progressive"), Init::ProgressiveDim { steps, iters }) => {
            Init::ProgressiveDim {
                steps: args.opt("--pd-steps")?.unwrap_or(steps),
                iters: args.opt("--pd-iters")?.unwrap_or(iters),
            }
        }
        (None | Some("progressive"), _) => Init::PROGRESSIVE_DIM,
        (Some("pp"), _) => Init::KMeansPlusPlus,
        (Some("random"), _) => Init::Random,
        (Some(o), _) => return Err(format!("--init {o}: use progressive, pp or random").into()),
    };
    if let Some(v) = args.opt("--refine")? {
        cfg.refine_rounds = v;
    }

    let (data, dim) = semid::npy::read_npy(input)?;
    let x = Embeddings::new(&data, dim)?;
    let n = x.rows();

    let t = Instant::now();
    let (rq, report) = RqKMeans::fit(&cfg, x)?;
    let fit_s = t.elapsed().as_secs_f64();

    let search = if beam <= 1 {
        EncodeSearch::Greedy
    } else {
        EncodeSearch::Beam(beam)
    };
    let mut out = vec![0u16; n * levels];
    // Warm-up on a slice, then the timed full encode.
    let warm = n.min(4096);
    rq.encode_search_into(
        Embeddings::new(&data[..warm * dim], dim)?,
        search,
        &mut out[..warm * levels],
        par,
    )?;
    let t = Instant::now();
    rq.encode_search_into(x, search, &mut out, par)?;
    let enc_s = t.elapsed().as_secs_f64();
    let codes = Codes::new(out, levels)?;

    let mse = stats::mse(x, &rq.decode(&codes)?)?;
    let q = stats::code_quality(&codes, &rq.codebook_sizes())?;
    let flops = 2.0 * (levels * k * dim * beam.max(1)) as f64 * n as f64;
    let mean_sq: f64 = data
        .chunks_exact(dim)
        .map(|r| r.iter().map(|v| (*v as f64) * (*v as f64)).sum::<f64>())
        .sum::<f64>()
        / n as f64;
    let util: Vec<String> = q
        .levels
        .iter()
        .map(|l| format!("{:.4}", l.stats.utilization))
        .collect();
    let perp: Vec<String> = q
        .levels
        .iter()
        .map(|l| format!("{:.2}", l.stats.perplexity))
        .collect();
    let iters_run: Vec<String> = report
        .levels
        .iter()
        .map(|l| l.kmeans.iterations.to_string())
        .collect();
    println!(
        "{{\"tool\":\"semid\",\"input\":\"{input}\",\"n\":{n},\"d\":{dim},\"levels\":{levels},\"k\":{k},\"beam\":{beam},\"threads\":{},\"n_train\":{},\"iterations\":[{}],\"fit_s\":{fit_s:.3},\"encode_s\":{enc_s:.3},\"encode_vps\":{:.1},\"encode_gflops\":{:.1},\"mse\":{mse:.6},\"rel_mse\":{:.6},\"utilization\":[{}],\"perplexity\":[{}],\"collision_rate\":{:.6},\"n_unique_codes\":{},\"max_items_per_code\":{},\"gini\":{:.4}}}",
        par.threads(),
        report.n_train,
        iters_run.join(","),
        n as f64 / enc_s,
        flops / enc_s / 1e9,
        mse / mean_sq,
        util.join(","),
        perp.join(","),
        q.collision_rate,
        q.unique_codes,
        q.max_items_per_code,
        q.gini
    );
    Ok(())
}
