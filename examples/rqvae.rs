//! Train an RQ-VAE (TIGER's architecture, Adam 1e-3; `--adagrad 0.4` for
//! TIGER's optimizer) and compare it with
//! RQ-KMeans 3 × 256 on the same data.
//!
//! ```text
//! cargo run --release --example rqvae                      # built-in data
//! cargo run --release --example rqvae -- --input emb.npy [--epochs 20] [--adam 1e-3 | --adagrad 0.4] [--rotation]
//!     [--latent N] [--warm] [--sinkhorn 0.003]
//! ```
//!
//! `--warm` starts from the RQ-KMeans fit (`RqVae::fit_warm`: residual
//! networks at the identity, RQ-KMeans' codebooks; the latent is then the
//! data's width). `--sinkhorn EPS` assigns the last level's codes by
//! Sinkhorn over each training batch (LC-Rec's `sk_epsilons`, 0 elsewhere).
use std::time::Instant;

use semid::nn::OptimizerConfig;
use semid::quantize::{RqVae, RqVaeConfig};
use semid::{Embeddings, Quantizer, RqKMeans, RqKMeansConfig, stats};

mod common;
use common::{Args, Flag, INPUT, load_data};

const ABOUT: &str = "train an RQ-VAE and compare it with RQ-KMeans 3 x 256";

const FLAGS: &[Flag] = &[
    INPUT,
    ("--epochs", true, "20", "epochs"),
    ("--adam", true, "", "Adam learning rate (default 1e-3)"),
    ("--adagrad", true, "", "Adagrad learning rate (TIGER: 0.4)"),
    ("--rotation", false, "", "rotation trick"),
    ("--latent", true, "", "latent width (default 32)"),
    (
        "--sinkhorn",
        true,
        "",
        "Sinkhorn ε at the last level during training (LC-Rec: 0.003)",
    ),
    (
        "--warm",
        false,
        "",
        "warm start from the RQ-KMeans fit (latent = d)",
    ),
];

fn main() -> std::process::ExitCode {
    common::run("rqvae", body)
}

fn body() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse_or_exit("rqvae", ABOUT, FLAGS);
    let (data, d, source) = load_data(&args)?;
    let x = Embeddings::new(&data, d)?;
    let mut cfg = RqVaeConfig::default().seed(42);
    cfg.epochs = args.num("--epochs")?;
    if let Some(lr) = args.get("--adam") {
        cfg.optimizer = OptimizerConfig::adam(lr.parse()?);
    }
    if let Some(lr) = args.get("--adagrad") {
        cfg.optimizer = OptimizerConfig::adagrad(lr.parse()?);
    }
    cfg.rotation_trick = args.on("--rotation");
    if let Some(l) = args.opt("--latent")? {
        cfg.latent = l;
    }
    if let Some(eps) = args.opt::<f64>("--sinkhorn")? {
        cfg.sinkhorn_epsilons = vec![0.0; cfg.levels];
        cfg.sinkhorn_epsilons[cfg.levels - 1] = eps;
    }
    let warm = args.on("--warm");
    if warm {
        cfg.latent = d;
    }
    println!("data     {} x {d} from {source}", x.rows());
    let t = Instant::now();
    let (rq, _) = RqKMeans::fit(&RqKMeansConfig::new(3, 256).seed(42), x)?;
    let rq_s = t.elapsed().as_secs_f64();
    println!(
        "RQ-VAE   {d} -> {:?} -> {} , {} x {}, {:?}, batch {}, {}",
        cfg.hidden,
        cfg.latent,
        cfg.levels,
        cfg.k,
        cfg.optimizer,
        cfg.batch_size,
        if cfg.rotation_trick {
            "rotation trick"
        } else {
            "straight-through"
        }
    );
    if warm {
        println!("warm start from the RQ-KMeans fit (residual networks at the identity)");
    }
    if !cfg.sinkhorn_epsilons.is_empty() {
        println!(
            "Sinkhorn during training: ε per level {:?}, {} iterations",
            cfg.sinkhorn_epsilons, cfg.sinkhorn_iterations
        );
    }
    println!(
        "epoch  recon MSE   vq loss   utilization (per level)      perplexity           resets  coll."
    );
    let t = Instant::now();
    let report = |r: &semid::quantize::EpochReport| {
        println!(
            "{:>5}  {:>9.5}  {:>8.5}  {:<27}  {:<19}  {:>6}  {:.3}",
            r.epoch,
            r.recon_loss,
            r.vq_loss,
            r.utilization
                .iter()
                .map(|u| format!("{:.1}%", 100.0 * u))
                .collect::<Vec<_>>()
                .join(" "),
            r.perplexity
                .iter()
                .map(|p| format!("{p:.0}"))
                .collect::<Vec<_>>()
                .join(" "),
            r.dead_resets,
            r.collision_rate
        );
    };
    let (vae, reports) = if warm {
        RqVae::fit_warm_with_callback(&cfg, x, &rq, report)?
    } else {
        RqVae::fit_with_callback(&cfg, x, report)?
    };
    let train_s = t.elapsed().as_secs_f64();
    let codes = vae.encode(x)?;
    let recon = vae.decode(&codes)?;
    let mse = stats::mse(x, &recon)?;
    let q = stats::code_quality(&codes, &vae.codebook_sizes())?;
    println!(
        "RQ-VAE     train {train_s:.1} s ({:.0} vectors/s), MSE {mse:.5}, utilization {}, collision rate {:.3}",
        (x.rows() * reports.len()) as f64 / train_s,
        q.levels
            .iter()
            .map(|l| format!("{:.1}%", 100.0 * l.stats.utilization))
            .collect::<Vec<_>>()
            .join(" "),
        q.collision_rate
    );
    let rc = rq.encode(x)?;
    let rmse = stats::mse(x, &rq.decode(&rc)?)?;
    let rqq = stats::code_quality(&rc, &rq.codebook_sizes())?;
    println!(
        "RQ-KMeans  fit {rq_s:.1} s, MSE {rmse:.5}, collision rate {:.3}",
        rqq.collision_rate
    );
    println!("RQ-VAE / RQ-KMeans MSE: {:.3}", mse / rmse);
    Ok(())
}
