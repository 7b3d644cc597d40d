//! The README's main job: fit RQ-KMeans, encode, report quality and timings.
//!
//! ```text
//! cargo run --release --example quickstart                   # built-in data
//! cargo run --release --example quickstart -- --input emb.npy [--levels 3] [--k 256]
//! ```
use std::time::Instant;

use semid::{Embeddings, EncodeSearch, Par, Quantizer, RqKMeans, RqKMeansConfig, stats};

mod common;
use common::{Args, Flag, INPUT, load_data};

const ABOUT: &str = "fit RQ-KMeans on embeddings, encode them, report quality and timings";

const FLAGS: &[Flag] = &[
    INPUT,
    ("--levels", true, "3", "codes per ID"),
    ("--k", true, "256", "codes per level"),
    ("--seed", true, "42", "seed"),
];

fn main() -> std::process::ExitCode {
    common::run("quickstart", body)
}

fn body() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse_or_exit("quickstart", ABOUT, FLAGS);
    let levels: usize = args.num("--levels")?;
    let k: usize = args.num("--k")?;
    let seed: u64 = args.num("--seed")?;

    let t = Instant::now();
    let (data, dim, source) = load_data(&args)?;
    let x = Embeddings::new(&data, dim)?;
    println!(
        "data     {} x {}  from {source}  ({:.2} s)",
        x.rows(),
        x.dim(),
        t.elapsed().as_secs_f64()
    );
    println!("threads  {}", Par::default().threads());

    let cfg = RqKMeansConfig::new(levels, k).seed(seed);
    let t = Instant::now();
    let (rq, report) = RqKMeans::fit(&cfg, x)?;
    let fit_s = t.elapsed().as_secs_f64();
    println!(
        "fit      RQ-KMeans {levels} x {k} on {} training rows: {fit_s:.2} s",
        report.n_train
    );

    let t = Instant::now();
    let codes = rq.encode(x)?;
    let enc_s = t.elapsed().as_secs_f64();
    let mut beam_codes = vec![0u16; x.rows() * levels];
    let t = Instant::now();
    rq.encode_search_into(x, EncodeSearch::Beam(5), &mut beam_codes, Par::default())?;
    let beam_s = t.elapsed().as_secs_f64();
    let beam_codes = semid::Codes::new(beam_codes, levels)?;

    let q = stats::code_quality(&codes, &rq.codebook_sizes())?;
    let qb = stats::code_quality(&beam_codes, &rq.codebook_sizes())?;
    let mse = stats::mse(x, &rq.decode(&codes)?)?;
    let mse_b = stats::mse(x, &rq.decode(&beam_codes)?)?;
    let base = report.mean_sq_norm;

    println!();
    println!("level  utilization  perplexity  train MSE (rel)");
    for (l, (lq, lr)) in q.levels.iter().zip(&report.levels).enumerate() {
        println!(
            "{l:>5}  {:>10.1}%  {:>10.1}  {:>9.4} ({:.3})",
            100.0 * lq.stats.utilization,
            lq.stats.perplexity,
            lr.mse,
            lr.mse / base
        );
    }
    println!();
    println!("encode      vectors/s   MSE (rel)        collisions  unique codes  max/code  Gini");
    for (name, secs, m, qq) in [("greedy", enc_s, mse, &q), ("beam 5", beam_s, mse_b, &qb)] {
        println!(
            "{name:<10} {:>10.0}   {m:.4} ({:.3})   {:>9.2}%  {:>12}  {:>8}  {:.3}",
            x.rows() as f64 / secs,
            m / base,
            100.0 * qq.collision_rate,
            qq.unique_codes,
            qq.max_items_per_code,
            qq.gini
        );
    }
    Ok(())
}
