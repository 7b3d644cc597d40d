//! Every tokenizer at its default settings on one set of embeddings, one
//! table: reconstruction MSE, per-level utilization and perplexity,
//! collision rate, largest bucket, Gini, fit time and encode speed.
//!
//! ```text
//! cargo run --release --example tokenizers                         # built-in data
//! cargo run --release --example tokenizers -- --input emb.npy [--sample 1700] [--seed 42] [--skip-nn]
//! ```
//!
//! Rows:
//! - `k-means k=1000`: one codebook with the FSQ autoencoder's code count;
//! - `RQ-KMeans 3x256`, `RQ-VAE 3x256`: semantic IDs of 3 tokens;
//! - `RQ-KMeans 3x256, Sinkhorn IDs` / `reassign cap 1`: the same
//!   codebooks, with each item's last token chosen by
//!   `CollisionPolicy::SINKHORN` (LC-Rec) or capacity-1 reassignment (its
//!   fit time includes the policy's); the rows are the IDs' first 3 tokens,
//!   before any suffix;
//! - `RQ-KMeans [512,256,128]`: a codebook size per level;
//! - `RQ-VAE 3x256, warm start`: `RqVae::fit_warm` from the RQ-KMeans fit
//!   (its fit time included);
//! - `PQ 16x256`, `OPQ 4x256`: product quantization (RPG's long IDs) and
//!   OPQ with a learned rotation (ActionPiece's 4 × 256);
//! - `residual FSQ [8,5,5,5]x3 (PCA-4)`: vector-quantize-pytorch's
//!   `ResidualFSQ` has no projection of its own; here the rows are centred
//!   and projected on their 4 principal axes (each scaled so ±3σ maps to
//!   ±1), which shows what residual FSQ does without a learned projection;
//! - `FSQ AE [8,5,5,5]`: RecGPT-style FSQ autoencoder (1 000 codes).
//!
//! MSE is the mean over rows of `‖x − x̂‖²` (summed over dimensions, as
//! FAISS's peer script reports it). `--sample N` fits and measures on a
//! seeded sample of N rows (small catalogs: MovieLens, Amazon Beauty).
use std::time::Instant;

use semid::quantize::{
    FsqAutoencoder, FsqAutoencoderConfig, PqConfig, ProductQuantizer, ResidualFsq, RqVae,
    RqVaeConfig,
};
use semid::sid::{CollisionPolicy, SidMap};
use semid::{
    Codes, Embeddings, KMeans, KMeansConfig, Quantizer, RqKMeans, RqKMeansConfig, kernels, stats,
};

mod common;
use common::{Args, Flag, INPUT, load_data};

/// One table line.
struct Line {
    name: String,
    mse: f64,
    codes: Codes,
    sizes: Vec<usize>,
    fit_s: f64,
    encode_vps: f64,
}

const ABOUT: &str = "every tokenizer on the same embeddings: quality, collisions, neighbours";

const FLAGS: &[Flag] = &[
    INPUT,
    ("--seed", true, "42", "seed"),
    ("--sample", true, "", "use this many rows"),
    ("--skip-nn", false, "", "skip the neighbour figures"),
];

fn main() -> std::process::ExitCode {
    common::run("tokenizers", body)
}

fn body() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse_or_exit("tokenizers", ABOUT, FLAGS);
    let (mut data, d, source) = load_data(&args)?;
    let seed: u64 = args.num("--seed")?;
    if let Some(m) = args.get("--sample") {
        data = sample_rows(&data, d, m.parse()?, seed);
    }
    let x = Embeddings::new(&data, d)?;
    let n = x.rows();
    let mean_sq: f64 = data
        .chunks_exact(d)
        .map(|r| kernels::norm_sq(r) as f64)
        .sum::<f64>()
        / n as f64;
    println!("data  {n} x {d} from {source}; mean ||x||^2 = {mean_sq:.4}");
    let skip_nn = args.on("--skip-nn");
    let mut lines = Vec::new();

    // k-means with the FSQ autoencoder's code count.
    let k1 = 1000.min(n);
    let t = Instant::now();
    let (km, _) = KMeans::fit(&KMeansConfig::new(k1).seed(seed), x)?;
    lines.push(measure(
        &format!("k-means k={k1}"),
        &km,
        x,
        t.elapsed().as_secs_f64(),
    )?);

    let t = Instant::now();
    let (rq, _) = RqKMeans::fit(&RqKMeansConfig::new(3, 256).seed(seed), x)?;
    let rq_fit_s = t.elapsed().as_secs_f64();
    lines.push(measure("RQ-KMeans 3x256", &rq, x, rq_fit_s)?);
    // The same codebooks, last level chosen by an ID policy: the first L
    // tokens of each item's ID.
    for (name, policy) in [
        ("RQ-KMeans 3x256, Sinkhorn IDs", CollisionPolicy::SINKHORN),
        (
            "RQ-KMeans 3x256, reassign cap 1",
            CollisionPolicy::ReassignLastLevel { capacity: 1 },
        ),
    ] {
        match policy_line(name, &rq, x, policy, rq_fit_s) {
            Ok(line) => lines.push(line),
            // Reassignment needs room: a prefix holding more items than
            // last-level codes is refused (the built-in mixture has some).
            Err(e) => println!("{name}: skipped: {e}"),
        }
    }

    let t = Instant::now();
    let (rq_sized, _) = RqKMeans::fit(
        &RqKMeansConfig::with_codebook_sizes(&[512, 256, 128]).seed(seed),
        x,
    )?;
    lines.push(measure(
        "RQ-KMeans [512,256,128]",
        &rq_sized,
        x,
        t.elapsed().as_secs_f64(),
    )?);

    // Product quantization: RPG's long IDs and ActionPiece's OPQ 4 × 256
    // (where the width allows the split).
    for (name, cfg) in [
        ("PQ 16x256", PqConfig::pq(16, 256)),
        ("OPQ 4x256", PqConfig::opq(4, 256)),
    ] {
        if !d.is_multiple_of(cfg.m) {
            println!("{name}: skipped: {} does not divide the width {d}", cfg.m);
            continue;
        }
        let t = Instant::now();
        let (pq, _) = ProductQuantizer::fit(&cfg.seed(seed), x)?;
        lines.push(measure(name, &pq, x, t.elapsed().as_secs_f64())?);
    }

    if !skip_nn {
        let t = Instant::now();
        let (vae, _) = RqVae::fit(&RqVaeConfig::default().seed(seed), x)?;
        lines.push(measure("RQ-VAE 3x256", &vae, x, t.elapsed().as_secs_f64())?);
        // Warm-started from the RQ-KMeans fit above (its time is added).
        let t = Instant::now();
        let mut warm = RqVaeConfig::default().seed(seed);
        warm.latent = d;
        let (vae, _) = RqVae::fit_warm(&warm, x, &rq)?;
        lines.push(measure(
            "RQ-VAE 3x256, warm start",
            &vae,
            x,
            rq_fit_s + t.elapsed().as_secs_f64(),
        )?);
    }

    lines.push(residual_fsq_pca(&data, d)?);

    if !skip_nn {
        let t = Instant::now();
        let (ae, _) = FsqAutoencoder::fit(&FsqAutoencoderConfig::default().seed(seed), x)?;
        lines.push(measure(
            "FSQ AE [8,5,5,5]",
            &ae,
            x,
            t.elapsed().as_secs_f64(),
        )?);
    }

    println!();
    println!(
        "{:<34} {:>8} {:>7} {:<22} {:<18} {:>7} {:>6} {:>5} {:>8} {:>11}",
        "tokenizer",
        "MSE",
        "relMSE",
        "utilization/level",
        "perplexity/level",
        "collis.",
        "maxbkt",
        "gini",
        "fit s",
        "encode v/s"
    );
    for l in &lines {
        let q = stats::code_quality(&l.codes, &l.sizes)?;
        let util = q
            .levels
            .iter()
            .map(|v| format!("{:.1}", 100.0 * v.stats.utilization))
            .collect::<Vec<_>>()
            .join("/");
        let perp = q
            .levels
            .iter()
            .map(|v| format!("{:.0}", v.stats.perplexity))
            .collect::<Vec<_>>()
            .join("/");
        println!(
            "{:<34} {:>8.4} {:>7.3} {:<22} {:<18} {:>6.2}% {:>6} {:>5.3} {:>8.2} {:>11.0}",
            l.name,
            l.mse,
            l.mse / mean_sq,
            util,
            perp,
            100.0 * q.collision_rate,
            q.max_items_per_code,
            q.gini,
            l.fit_s,
            l.encode_vps
        );
    }
    println!(
        "\nutilization in %, perplexity = exp(entropy) of each level's tokens; relMSE = MSE / mean ||x||^2"
    );
    Ok(())
}

/// `rq`'s codebooks with IDs from `policy`: each item's first `L` ID
/// tokens are its codes (the policy's time is added to the fit's).
fn policy_line(
    name: &str,
    rq: &RqKMeans,
    x: Embeddings<'_>,
    policy: CollisionPolicy,
    fit_s: f64,
) -> semid::Result<Line> {
    let t = Instant::now();
    let codes = rq.encode(x)?;
    let enc_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let (map, _) = SidMap::build_with_distances(&codes, rq, x, policy)?;
    let policy_s = t.elapsed().as_secs_f64();
    let lv = rq.levels();
    let mut out = Vec::with_capacity(x.rows() * lv);
    for i in 0..x.rows() as u32 {
        let id = map
            .id_of(i)
            .ok_or(semid::Error::Empty { what: "item ID" })?;
        out.extend_from_slice(&id[..lv]);
    }
    let codes = Codes::new(out, lv)?;
    Ok(Line {
        name: name.to_string(),
        mse: stats::mse(x, &rq.decode(&codes)?)?,
        sizes: rq.codebook_sizes(),
        codes,
        fit_s: fit_s + policy_s,
        encode_vps: x.rows() as f64 / enc_s,
    })
}

/// Encodes (timed), decodes and measures one fitted quantizer.
fn measure(name: &str, q: &dyn Quantizer, x: Embeddings<'_>, fit_s: f64) -> semid::Result<Line> {
    let t = Instant::now();
    let codes = q.encode(x)?;
    let enc_s = t.elapsed().as_secs_f64();
    let xh = q.decode(&codes)?;
    Ok(Line {
        name: name.to_string(),
        mse: stats::mse(x, &xh)?,
        sizes: q.codebook_sizes(),
        codes,
        fit_s,
        encode_vps: x.rows() as f64 / enc_s,
    })
}

/// Residual FSQ on the rows' 4 principal coordinates (top axes by power
/// iteration), each scaled so that ±3σ maps to ±1; reconstruction projects
/// back and adds the mean.
fn residual_fsq_pca(data: &[f32], d: usize) -> semid::Result<Line> {
    const P: usize = 4;
    let n = data.len() / d;
    let t = Instant::now();
    let mut mean = vec![0f64; d];
    for r in data.chunks_exact(d) {
        for (m, &v) in mean.iter_mut().zip(r) {
            *m += v as f64 / n as f64;
        }
    }
    let mean: Vec<f32> = mean.iter().map(|&m| m as f32).collect();
    let centred: Vec<f32> = data
        .chunks_exact(d)
        .flat_map(|r| r.iter().zip(&mean).map(|(v, m)| v - m))
        .collect();
    // Top-P axes by power iteration with deflation (Gram-Schmidt).
    let mut axes: Vec<Vec<f32>> = Vec::new();
    for a in 0..P {
        let mut v: Vec<f32> = (0..d)
            .map(|i| ((i * 7 + a * 13) % 17) as f32 - 8.0)
            .collect();
        for _ in 0..100 {
            let mut w = vec![0f32; d];
            for r in centred.chunks_exact(d) {
                let s = kernels::dot(r, &v);
                for (wi, &ri) in w.iter_mut().zip(r) {
                    *wi += s * ri;
                }
            }
            for u in &axes {
                let s = kernels::dot(&w, u);
                for (wi, &ui) in w.iter_mut().zip(u) {
                    *wi -= s * ui;
                }
            }
            let norm = kernels::norm_sq(&w).sqrt().max(f32::MIN_POSITIVE);
            v = w.iter().map(|wi| wi / norm).collect();
        }
        axes.push(v);
    }
    let mut proj: Vec<f32> = centred
        .chunks_exact(d)
        .flat_map(|r| axes.iter().map(move |u| kernels::dot(r, u)))
        .collect();
    let mut scale = [0f32; P];
    for (j, s) in scale.iter_mut().enumerate() {
        let var: f32 = proj.iter().skip(j).step_by(P).map(|v| v * v).sum::<f32>() / n as f32;
        *s = 3.0 * var.sqrt().max(f32::MIN_POSITIVE);
    }
    for row in proj.chunks_exact_mut(P) {
        for (v, s) in row.iter_mut().zip(&scale) {
            *v /= s;
        }
    }
    let rfsq = ResidualFsq::new(&[8, 5, 5, 5], 3)?;
    let fit_s = t.elapsed().as_secs_f64();
    let px = Embeddings::new(&proj, P)?;
    let t = Instant::now();
    let codes = rfsq.encode(px)?;
    let enc_s = t.elapsed().as_secs_f64();
    let yh = rfsq.decode(&codes)?;
    let mut err = 0f64;
    for (r, y) in data.chunks_exact(d).zip(yh.chunks_exact(P)) {
        let mut xh = mean.clone();
        for ((u, &yv), s) in axes.iter().zip(y).zip(&scale) {
            for (o, &ui) in xh.iter_mut().zip(u) {
                *o += yv * s * ui;
            }
        }
        err += kernels::l2_sq(r, &xh) as f64;
    }
    Ok(Line {
        name: "residual FSQ [8,5,5,5]x3 (PCA-4)".to_string(),
        mse: err / n as f64,
        sizes: rfsq.codebook_sizes(),
        codes,
        fit_s,
        encode_vps: n as f64 / enc_s,
    })
}

/// A seeded sample of `m` rows (sorted, without replacement).
fn sample_rows(data: &[f32], d: usize, m: usize, seed: u64) -> Vec<f32> {
    let n = data.len() / d;
    let m = m.min(n);
    // Partial Fisher-Yates with a splitmix64 stream.
    let mut idx: Vec<usize> = (0..n).collect();
    let mut s = seed ^ 0x9e37_79b9_7f4a_7c15;
    for i in 0..m {
        s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let j = i + (z % (n - i) as u64) as usize;
        idx.swap(i, j);
    }
    let mut pick = idx[..m].to_vec();
    pick.sort_unstable();
    pick.iter()
        .flat_map(|&i| data[i * d..(i + 1) * d].iter().copied())
        .collect()
}
