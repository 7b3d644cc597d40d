//! Train an FSQ autoencoder (RecGPT-style FSQ on raw embeddings: MLP
//! projection d → len(levels) → FSQ → MLP back, straight-through
//! estimator), print the per-epoch report, and compare with k-means using
//! the same number of codes.
//!
//! ```text
//! cargo run --release --example fsq                       # built-in data
//! cargo run --release --example fsq -- --input emb.npy [--epochs 20] [--levels 8,5,5,5] [--symmetric]
//! ```
use std::time::Instant;

use semid::quantize::{FsqAutoencoder, FsqAutoencoderConfig, FsqMode};
use semid::{Embeddings, KMeans, KMeansConfig, Quantizer, stats};

mod common;
use common::{Args, Flag, INPUT, load_data};

const ABOUT: &str = "train an FSQ autoencoder and compare it with k-means of as many codes";

const FLAGS: &[Flag] = &[
    INPUT,
    ("--epochs", true, "20", "epochs"),
    ("--levels", true, "", "per-dimension levels, e.g. 8,5,5,5"),
    ("--symmetric", false, "", "symmetric FSQ levels"),
];

fn main() -> std::process::ExitCode {
    common::run("fsq", body)
}

fn body() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse_or_exit("fsq", ABOUT, FLAGS);
    let (data, d, source) = load_data(&args)?;
    let x = Embeddings::new(&data, d)?;
    let mut cfg = FsqAutoencoderConfig::default().seed(42);
    cfg.epochs = args.num("--epochs")?;
    if let Some(l) = args.get("--levels") {
        cfg.levels_per_dim = l
            .split(',')
            .map(str::parse)
            .collect::<Result<Vec<u32>, _>>()?;
    }
    if args.on("--symmetric") {
        cfg.mode = FsqMode::Symmetric;
    }
    println!("data     {} x {d} from {source}", x.rows());
    println!(
        "FSQ AE   {d} -> {:?} -> FSQ {:?} ({:?}), Adam, batch {}",
        cfg.hidden, cfg.levels_per_dim, cfg.mode, cfg.batch_size
    );
    println!("epoch  recon MSE   utilization  perplexity  collisions");
    let t = Instant::now();
    let (ae, reports) = FsqAutoencoder::fit_with_callback(&cfg, x, |r| {
        println!(
            "{:>5}  {:>9.5}  {:>10.1}%  {:>10.0}  {:>10.3}",
            r.epoch,
            r.recon_loss,
            100.0 * r.utilization[0],
            r.perplexity[0],
            r.collision_rate
        );
    })?;
    let train_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let codes = ae.encode(x)?;
    let enc_s = t.elapsed().as_secs_f64();
    let mse = stats::mse(x, &ae.decode(&codes)?)?;
    let q = stats::code_quality(&codes, &ae.codebook_sizes())?;
    let size = ae.codebook_size(0);
    println!(
        "FSQ AE   train {train_s:.1} s ({:.0} vectors/s), encode {:.0} vectors/s, MSE {mse:.5}, utilization {:.1}% of {size}, collision rate {:.3}",
        (x.rows() * reports.len()) as f64 / train_s,
        x.rows() as f64 / enc_s,
        100.0 * q.levels[0].stats.utilization,
        q.collision_rate
    );
    let t = Instant::now();
    let (km, _) = KMeans::fit(&KMeansConfig::new(size).seed(42), x)?;
    let km_s = t.elapsed().as_secs_f64();
    let kc = km.encode(x)?;
    let kmse = stats::mse(x, &km.decode(&kc)?)?;
    let kq = stats::code_quality(&kc, &km.codebook_sizes())?;
    println!(
        "k-means  k = {size}: fit {km_s:.1} s, MSE {kmse:.5}, collision rate {:.3}",
        kq.collision_rate
    );
    println!("FSQ AE / k-means MSE: {:.3}", mse / kmse);
    Ok(())
}
