//! RQ-KMeans fit + encode figures as one JSON line, for side-by-side runs
//! with `../shared/peers/faiss_rq.py` on the same `.npy` file.
//!
//! ```text
//! cargo run --release --example bench_rq -- --input FILE.npy --levels 3 --k 256 \
//!     [--beam 1] [--iters 20] [--mppc 256|all] [--threads 2] [--seed 1234] [--init progressive|pp|random]
//!     [--pd-steps 10] [--pd-iters 10] [--tol 0] [--refine 1]
//! ```
use std::time::Instant;

use semid::{
    Codes, Embeddings, EncodeSearch, Init, KMeansConfig, Par, Quantizer, RqKMeans, RqKMeansConfig,
    stats,
};

mod common;
use common::{Args, Flag};

const ABOUT: &str = "RQ-KMeans fit + encode figures as one JSON line (side by side with ../shared/peers/faiss_rq.py)";

const FLAGS: &[Flag] = &[
    ("--input", true, "", "embeddings .npy (required)"),
    ("--levels", true, "3", "codes per ID"),
    ("--k", true, "256", "codes per level"),
    ("--beam", true, "1", "encoding beam"),
    ("--iters", true, "20", "Lloyd iterations per level"),
    (
        "--mppc",
        true,
        "256",
        "most points per centroid: a number or all",
    ),
    ("--threads", true, "0", "threads (0: all)"),
    ("--seed", true, "1234", "seed"),
    ("--init", true, "progressive", "progressive|pp|random"),
    ("--pd-steps", true, "10", "progressive init: steps"),
    (
        "--pd-iters",
        true,
        "10",
        "progressive init: iterations per step",
    ),
    (
        "--tol",
        true,
        "0",
        "relative inertia change that stops Lloyd",
    ),
    ("--refine", true, "1", "refinement rounds"),
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
    let iters: usize = args.num("--iters")?;
    let threads: usize = args.num("--threads")?;
    let seed: u64 = args.num("--seed")?;
    let mppc = match args.get("--mppc") {
        None => Some(256),
        Some("all") => None,
        Some(v) => Some(v.parse()?),
    };
    let init = match args.get("--init") {
        None | Some("progressive") => Init::ProgressiveDim {
            steps: args.num("--pd-steps")?,
            iters: args.num("--pd-iters")?,
        },
        Some("pp") => Init::KMeansPlusPlus,
        Some("random") => Init::Random,
        Some(o) => return Err(format!("--init {o}: use progressive, pp or random").into()),
    };
    let par = Par::Rayon(threads);

    let (data, dim) = semid::npy::read_npy(input)?;
    let x = Embeddings::new(&data, dim)?;
    let n = x.rows();
    let km = KMeansConfig::new(k)
        .max_iter(iters)
        .tol(args.num("--tol")?)
        .init(init)
        .max_points_per_centroid(mppc)
        .seed(seed)
        .par(par);
    let cfg = RqKMeansConfig::new(levels, k)
        .kmeans(km)
        .refine_rounds(args.num("--refine")?);

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
