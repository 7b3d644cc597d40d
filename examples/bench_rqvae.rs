//! RQ-VAE training-step throughput, the workload of
//! `../shared/peers/torch_rqvae.py` (TIGER shape d → 512 → 256 → 128 → 32,
//! 3 × 256 codes, Adam 1e-3, batch 1024): prints one JSON line.
//!
//! A step here is the whole training loop body (gather the batch, forward,
//! backward, gradient reduction, Adam, usage bookkeeping, dead-code reset).
//! It is measured as the difference between fitting `1 + E` epochs and 1
//! epoch on the same data, divided by the extra steps, so the one-off
//! k-means initialisation is left out as the peer leaves it out.
//!
//! ```text
//! cargo run --release --example make_data -- --n 20000 --dim 384 --out bench-data/d384.npy
//! cargo run --release --example bench_rqvae -- --input bench-data/d384.npy [--threads 2] [--steps 20]
//! ```
use std::time::Instant;

use semid::quantize::{RqVae, RqVaeConfig};
use semid::{Embeddings, Par};

mod common;
use common::{Args, Flag, INPUT, load_data};

const ABOUT: &str = "RQ-VAE training-step throughput on TIGER's shape, one JSON line";

const FLAGS: &[Flag] = &[
    INPUT,
    ("--threads", true, "2", "threads"),
    ("--steps", true, "20", "measured steps"),
    ("--batch", true, "1024", "batch size"),
    ("--reps", true, "3", "repetitions (best kept)"),
];

fn main() -> std::process::ExitCode {
    common::run("bench_rqvae", body)
}

fn body() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse_or_exit("bench_rqvae", ABOUT, FLAGS);
    let (data, d, source) = load_data(&args)?;
    let threads: usize = args.num("--threads")?;
    let steps: usize = args.num("--steps")?;
    let batch: usize = args.num("--batch")?;
    let reps: usize = args.num("--reps")?;
    // `steps` batches make one epoch.
    let n = steps * batch;
    let rows = data.len() / d;
    let sample: Vec<f32> = (0..n)
        .flat_map(|i| data[(i % rows) * d..(i % rows + 1) * d].iter().copied())
        .collect();
    let x = Embeddings::new(&sample, d)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let mut cfg = RqVaeConfig::default().seed(0).par(Par::Rayon(threads));
    cfg.batch_size = batch;
    cfg.dead_code_steps = 20;
    let mut per_step = Vec::new();
    let mut final_loss = 0.0;
    for _ in 0..reps {
        let time = |epochs: usize| -> Result<(f64, f64), semid::Error> {
            let t = Instant::now();
            let (_, rep) = pool.install(|| RqVae::fit(&cfg.clone().epochs(epochs), x))?;
            let last = rep.last().map_or(0.0, |r| r.recon_loss + r.vq_loss);
            Ok((t.elapsed().as_secs_f64(), last))
        };
        let (t1, _) = time(1)?;
        let (t3, loss) = time(3)?;
        per_step.push((t3 - t1) / (2 * steps) as f64);
        final_loss = loss;
    }
    per_step.sort_by(f64::total_cmp);
    let step_s = per_step[per_step.len() / 2];
    println!(
        "{{\"tool\": \"semid RQ-VAE train step (TIGER shape)\", \"source\": \"{}\", \"d\": {d}, \"batch\": {batch}, \"threads\": {threads}, \"step_s_median\": {step_s:.5}, \"train_vps\": {:.1}, \"final_loss\": {final_loss:.6}}}",
        source.replace('"', "'"),
        batch as f64 / step_s
    );
    Ok(())
}
