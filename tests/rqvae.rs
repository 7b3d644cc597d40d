//! RQ-VAE training: learns without collapse on small data, same seed ⇒
//! same model whatever the thread count, typed errors.

mod common;

use semid::ModelFile;
use semid::nn::{Activation, Linear, Mlp, OptimizerConfig};
use semid::quantize::{RqVae, RqVaeConfig};
use semid::{Embeddings, Error, Quantizer, RqKMeans, RqKMeansConfig};

fn small() -> RqVaeConfig {
    RqVaeConfig {
        hidden: vec![32, 16],
        latent: 8,
        levels: 2,
        k: 16,
        batch_size: 600, // three gradient shards (256, 256, 88)
        epochs: 16,
        min_steps: 0,
        optimizer: OptimizerConfig::adam(3e-3),
        dead_code_steps: 10,
        ..RqVaeConfig::default()
    }
    .seed(5)
}

#[test]
fn trains_reconstructs_and_is_deterministic() {
    let data = common::mixture(3000, 16, 21);
    let x = Embeddings::new(&data, 16).unwrap();
    let mut epochs = 0;
    let (m, reports) = common::with_threads(1, || {
        RqVae::fit_with_callback(&small(), x, |_| epochs += 1).unwrap()
    });
    assert_eq!(epochs, 16);
    assert_eq!(reports.len(), 16);
    let (first, last) = (&reports[0], &reports[15]);
    assert!(
        last.recon_loss < 0.7 * first.recon_loss,
        "{} → {}",
        first.recon_loss,
        last.recon_loss
    );
    let codes = m.encode(x).unwrap();
    assert_eq!(codes.levels(), 2);
    let q = semid::stats::code_quality(&codes, &m.codebook_sizes()).unwrap();
    for l in &q.levels {
        assert!(
            l.stats.utilization >= 0.8,
            "level utilization {}",
            l.stats.utilization
        );
    }
    let recon = m.decode(&codes).unwrap();
    assert_eq!(recon.len(), data.len());
    assert!(recon.iter().all(|v| v.is_finite()));
    // Same seed, two threads: the same model, reports and codes.
    let (m2, r2) = common::with_threads(2, || RqVae::fit(&small(), x).unwrap());
    assert_eq!(m2, m);
    assert_eq!(r2, reports);
    assert_eq!(m2.encode(x).unwrap(), codes);
    // Another seed, another model.
    let (m3, _) = RqVae::fit(&small().seed(6), x).unwrap();
    assert_ne!(m3, m);
}

#[test]
fn bad_input_is_a_typed_error() {
    let data = common::mixture(600, 16, 3);
    let x = Embeddings::new(&data, 16).unwrap();
    let bad = |f: fn(&mut RqVaeConfig)| {
        let mut c = small();
        f(&mut c);
        RqVae::fit(&c, x).unwrap_err()
    };
    assert!(matches!(
        bad(|c| c.hidden = vec![32, 0]),
        Error::InvalidConfig { .. }
    ));
    assert!(matches!(bad(|c| c.latent = 0), Error::InvalidConfig { .. }));
    // Absurd widths are refused before any allocation.
    assert!(matches!(
        bad(|c| c.hidden = vec![usize::MAX / 2]),
        Error::InvalidConfig { .. }
    ));
    assert!(matches!(
        bad(|c| c.hidden = vec![1 << 40]),
        Error::InvalidConfig { .. }
    ));
    assert!(matches!(bad(|c| c.k = 1), Error::InvalidConfig { .. }));
    assert!(matches!(
        bad(|c| c.beta = f32::NAN),
        Error::InvalidConfig { .. }
    ));
    assert!(matches!(bad(|c| c.epochs = 0), Error::InvalidConfig { .. }));
    assert!(matches!(
        bad(|c| c.batch_size = 8),
        Error::InvalidConfig { .. }
    ));
    assert!(matches!(
        bad(|c| c.optimizer = OptimizerConfig::adam(0.0)),
        Error::InvalidConfig { field: "lr", .. }
    ));
    assert!(matches!(
        bad(|c| c.optimizer = OptimizerConfig::adam(f32::NAN)),
        Error::InvalidConfig { field: "lr", .. }
    ));
    // k > n.
    let tiny = Embeddings::new(&data[..10 * 16], 16).unwrap();
    assert!(RqVae::fit(&small(), tiny).is_err());
    // NaN in the data.
    let mut nan = data.clone();
    nan[5 * 16 + 3] = f32::NAN;
    assert!(matches!(
        RqVae::fit(&small(), Embeddings::new(&nan, 16).unwrap()),
        Err(Error::NonFinite { row: 5, col: 3, .. })
    ));
    // Divergence stops with the epoch and step.
    let mut c = small();
    c.optimizer = OptimizerConfig::adam(1e12);
    c.batch_size = 256; // several steps in epoch 0
    let e = RqVae::fit(&c, x).unwrap_err();
    assert!(e.to_string().contains("epoch 0, step"), "{e}");
    // Inputs are standardised before training, so the scale of the data
    // does not matter: 1e30 × the data trains to the same loss, scaled.
    let huge: Vec<f32> = data.iter().map(|v| v * 1e30).collect();
    let hx = Embeddings::new(&huge, 16).unwrap();
    let (hm, hr) = RqVae::fit(&small(), hx).unwrap();
    let (_, r) = RqVae::fit(&small(), x).unwrap();
    let (a, b) = (hr.last().unwrap(), r.last().unwrap());
    assert!(
        (a.recon_loss / 1e60 - b.recon_loss).abs() <= 0.05 * b.recon_loss,
        "{} vs {}",
        a.recon_loss,
        b.recon_loss
    );
    assert_eq!(hm.encode(hx).unwrap().rows(), hx.rows());
    // Encoding data of another dimension.
    let (m, _) = RqVae::fit(&small().epochs(1), x).unwrap();
    let other = vec![0f32; 8];
    assert!(m.encode(Embeddings::new(&other, 8).unwrap()).is_err());
}

fn golden_model() -> RqVae {
    // 3 → 2 → 2 encoder, 2 → 3 decoder, 2 levels × 2 codes; fixed values.
    let lin = |i: usize, o: usize, base: f32| Linear {
        inputs: i,
        outputs: o,
        weight: (0..i * o).map(|j| base + 0.125 * j as f32).collect(),
        bias: (0..o).map(|j| -0.25 * j as f32).collect(),
    };
    let enc = Mlp {
        layers: vec![lin(3, 2, -0.5), lin(2, 2, 0.25)],
        activation: Activation::Relu,
    };
    let dec = Mlp {
        layers: vec![lin(2, 3, 0.5)],
        activation: Activation::Relu,
    };
    let cb = vec![0.0, 0.0, 1.0, 1.0, 0.5, -0.5, -0.25, 0.25];
    RqVae::from_parts(enc, dec, cb, 2, 2).unwrap()
}

/// Golden v1 RQ-VAE file: loads unchanged forever and this build writes the
/// same bytes. Regenerate only with a format bump (`SEMID_WRITE_GOLDEN=1`).
#[test]
fn model_files_round_trip_golden_and_corruption() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/rqvae_v1.semid");
    let g = golden_model();
    if std::env::var_os("SEMID_WRITE_GOLDEN").is_some() {
        g.save(&path).unwrap();
    }
    assert_eq!(std::fs::read(&path).unwrap(), g.to_bytes().unwrap());
    assert_eq!(RqVae::load(&path).unwrap(), g);
    let x = [1.0f32, 2.0, 3.0, -1.0, 0.5, 0.0];
    let codes = g.encode(Embeddings::new(&x, 3).unwrap()).unwrap();
    assert_eq!(g.decode(&codes).unwrap().len(), 6);
    // A trained model round-trips with identical codes.
    let data = common::mixture(800, 16, 4);
    let xe = Embeddings::new(&data, 16).unwrap();
    let (m, _) = RqVae::fit(&small().epochs(2), xe).unwrap();
    let bytes = m.to_bytes().unwrap();
    let back = RqVae::from_bytes(&bytes).unwrap();
    assert_eq!(back, m);
    assert_eq!(back.encode(xe).unwrap(), m.encode(xe).unwrap());
    for cut in (0..bytes.len()).step_by(97) {
        assert!(RqVae::from_bytes(&bytes[..cut]).is_err());
    }
    for pos in (0..bytes.len()).step_by(89) {
        let mut b = bytes.clone();
        b[pos] ^= 0x04;
        assert!(RqVae::from_bytes(&b).is_err());
    }
    // Parts that do not chain are refused.
    let (enc, dec) = g.networks();
    assert!(RqVae::from_parts(enc.clone(), enc.clone(), vec![0.0; 8], 2, 2).is_err());
    assert!(RqVae::from_parts(enc.clone(), dec.clone(), vec![0.0; 7], 2, 2).is_err());
    assert!(RqVae::from_parts(enc.clone(), dec.clone(), vec![f32::NAN; 8], 2, 2).is_err());
    let mut short = enc.clone();
    short.layers[0].weight.pop();
    assert!(RqVae::from_parts(short, dec.clone(), vec![0.0; 8], 2, 2).is_err());
    let empty = Mlp {
        layers: vec![],
        activation: Activation::Relu,
    };
    assert!(RqVae::from_parts(empty, dec.clone(), vec![0.0; 8], 2, 2).is_err());
}

/// `rotation_trick_backward` against vector-quantize-pytorch's `rotate_to`
/// differentiated by torch autograd (tests/data/rotation, see its README).
#[test]
fn rotation_trick_matches_vector_quantize_pytorch() {
    let text = include_str!("data/rotation/rotation_cases.tsv");
    let vec_of = |s: &str| -> Vec<f32> { s.split(' ').map(|v| v.parse().unwrap()).collect() };
    let norm = |v: &[f32]| v.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
    let mut cases = 0;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 7, "{line}");
        let d: usize = f[1].parse().unwrap();
        let (x, e, g, fwd, want) = (
            vec_of(f[2]),
            vec_of(f[3]),
            vec_of(f[4]),
            vec_of(f[5]),
            vec_of(f[6]),
        );
        assert!([&x, &e, &g, &fwd, &want].iter().all(|v| v.len() == d));
        let mut got = vec![0.0f32; d];
        semid::quantize::rotation_trick_backward(&x, &e, &g, &mut got).unwrap();
        let err: Vec<f32> = got.iter().zip(&want).map(|(a, b)| a - b).collect();
        assert!(
            norm(&err) <= 1e-5 * norm(&want) + 1e-30,
            "case {}: {got:?} vs {want:?}",
            f[0]
        );
        // The reference's forward value is the codeword (semid feeds the
        // codeword itself), except below the 1e-6 norm floor of x.
        if norm(&x) >= 1e-6 {
            let diff: Vec<f32> = fwd.iter().zip(&e).map(|(a, b)| a - b).collect();
            assert!(
                norm(&diff) <= 1e-5 * norm(&e) + 1e-6,
                "case {} forward",
                f[0]
            );
        }
        cases += 1;
    }
    assert_eq!(cases, 29);
    // The gradient is added, and lengths are checked.
    let mut acc = vec![1.0f32; 2];
    semid::quantize::rotation_trick_backward(&[1.0, 0.0], &[1.0, 0.0], &[0.5, -0.5], &mut acc)
        .unwrap();
    assert_eq!(acc, vec![1.5, 0.5]);
    assert!(matches!(
        semid::quantize::rotation_trick_backward(&[1.0, 0.0], &[1.0], &[0.5, -0.5], &mut acc),
        Err(Error::Shape { .. })
    ));
}

#[test]
fn rotation_trick_trains_and_is_deterministic() {
    let data = common::mixture(3000, 16, 22);
    let x = Embeddings::new(&data, 16).unwrap();
    let cfg = small().rotation_trick(true);
    let (m, reports) = common::with_threads(1, || RqVae::fit(&cfg, x).unwrap());
    let (first, last) = (&reports[0], &reports[15]);
    assert!(
        last.recon_loss < 0.7 * first.recon_loss,
        "{} → {}",
        first.recon_loss,
        last.recon_loss
    );
    let (m2, r2) = common::with_threads(2, || RqVae::fit(&cfg, x).unwrap());
    assert_eq!(m2, m);
    assert_eq!(r2, reports);
    // It is a different estimator: another model than the STE's.
    let (m3, _) = RqVae::fit(&small(), x).unwrap();
    assert_ne!(m3, m);
}

#[test]
fn min_steps_lengthens_training_on_small_catalogs() {
    let data = common::mixture(3000, 16, 21);
    let x = Embeddings::new(&data, 16).unwrap();
    // 600-row batches: 5 steps per epoch, so 23 steps need 5 epochs.
    let cfg = RqVaeConfig {
        epochs: 2,
        min_steps: 23,
        ..small()
    };
    let (_, reports) = RqVae::fit(&cfg, x).unwrap();
    assert_eq!(reports.len(), 5);
    // Epochs above what min_steps asks for are kept.
    let cfg = RqVaeConfig {
        epochs: 3,
        min_steps: 5,
        ..small()
    };
    assert_eq!(RqVae::fit(&cfg, x).unwrap().1.len(), 3);
}

/// The warm start from RQ-KMeans begins at RQ-KMeans' codes: with a
/// learning rate too small to move anything, the trained model gives
/// exactly the codes RQ-KMeans gives, through the folded (raw-unit)
/// residual encoder and codebooks, and it round-trips as format version 2.
#[test]
fn warm_start_begins_at_the_rq_kmeans_codes() {
    let data = semid::synthetic::hierarchical_mixture(&semid::synthetic::MixtureConfig {
        n: 1500,
        dim: 16,
        topics: 10,
        ..Default::default()
    });
    let x = Embeddings::new(&data, 16).unwrap();
    let (rq, _) = RqKMeans::fit(&RqKMeansConfig::new(2, 16).seed(4), x).unwrap();
    let mut c = RqVaeConfig::new(2, 16).seed(4);
    c.hidden = vec![24];
    c.latent = 16;
    c.epochs = 1;
    c.min_steps = 0;
    c.batch_size = 256;
    c.dead_code_steps = 0;
    c.optimizer = OptimizerConfig::adam(1e-12);
    let (vae, _) = RqVae::fit_warm(&c, x, &rq).unwrap();
    assert!(vae.is_residual());
    let (a, b) = (rq.encode(x).unwrap(), vae.encode(x).unwrap());
    let same = a.iter().zip(b.iter()).filter(|(p, q)| p == q).count();
    assert!(same >= 1500 * 99 / 100, "{same} of 1500 codes equal");
    // It reconstructs as RQ-KMeans does (both residual networks start at
    // the identity).
    let (m_vae, m_rq) = (
        semid::stats::mse(x, &vae.decode(&b).unwrap()).unwrap(),
        semid::stats::mse(x, &rq.decode(&a).unwrap()).unwrap(),
    );
    assert!((m_vae - m_rq).abs() <= 1e-3 * m_rq, "{m_vae} vs {m_rq}");
    // The folded codebooks are RQ-KMeans' (up to the standardisation's
    // rounding).
    for (u, v) in vae.codebooks().iter().zip(rq.codebooks()) {
        assert!((u - v).abs() <= 1e-4 * (1.0 + v.abs()), "{u} vs {v}");
    }
    let bytes = vae.to_bytes().unwrap();
    assert_eq!(semid::format::inspect(&bytes).unwrap().version, 2);
    let back = RqVae::from_bytes(&bytes).unwrap();
    assert_eq!(back, vae);
    assert_eq!(back.encode(x).unwrap(), b);
    // Trained for real, it still encodes and decodes in range, and its
    // last-level distances agree with its codes.
    c.optimizer = OptimizerConfig::adam(1e-3);
    c.epochs = 3;
    let (vae, reports) = RqVae::fit_warm(&c, x, &rq).unwrap();
    assert!(reports.iter().all(|r| r.recon_loss.is_finite()));
    let codes = vae.encode(x).unwrap();
    let mut d = vec![0f32; 1500 * 16];
    semid::quantize::LastLevelDistances::last_level_distances(&vae, x, codes.as_slice(), &mut d)
        .unwrap();
    for (row, code) in d.chunks_exact(16).zip(codes.iter()) {
        let min = row.iter().copied().fold(f32::INFINITY, f32::min);
        assert!(row[code[1] as usize] <= min * (1.0 + 1e-4) + 1e-6);
    }
}

/// A warm start from a model of other shapes is refused, naming
/// `warm_start` and what to change.
#[test]
fn warm_start_from_other_shapes_is_refused() {
    let data = semid::synthetic::hierarchical_mixture(&semid::synthetic::MixtureConfig {
        n: 600,
        dim: 8,
        ..Default::default()
    });
    let x = Embeddings::new(&data, 8).unwrap();
    let (rq, _) = RqKMeans::fit(&RqKMeansConfig::new(2, 8).seed(1), x).unwrap();
    let base = || {
        let mut c = RqVaeConfig::new(2, 8);
        c.hidden = vec![8];
        c.latent = 8;
        c.epochs = 1;
        c.min_steps = 0;
        c.batch_size = 64;
        c
    };
    let field = |c: RqVaeConfig, x: Embeddings<'_>| match RqVae::fit_warm(&c, x, &rq) {
        Err(semid::Error::InvalidConfig { field, reason }) => (field, reason),
        other => panic!("expected InvalidConfig, got {other:?}"),
    };
    let mut c = base();
    c.latent = 4;
    let (f, why) = field(c, x);
    assert_eq!(f, "warm_start");
    assert!(why.contains("latent = 8"), "{why}");
    let (f, why) = field(base().k(16), x);
    assert_eq!(f, "warm_start");
    assert!(why.contains("[8, 8]"), "{why}");
    let (f, _) = field(base().levels(3), x);
    assert_eq!(f, "warm_start");
    let narrow: Vec<f32> = data.chunks_exact(8).flat_map(|r| r[..4].to_vec()).collect();
    let mut c = base();
    c.latent = 4;
    let (f, why) = field(c, Embeddings::new(&narrow, 4).unwrap());
    assert_eq!(f, "warm_start");
    assert!(why.contains("4 columns"), "{why}");
}

fn sinkhorn_config(eps: Vec<f64>) -> RqVaeConfig {
    let mut c = RqVaeConfig::new(2, 16).seed(6);
    c.hidden = vec![24];
    c.latent = 6;
    c.epochs = 3;
    c.min_steps = 0;
    c.batch_size = 400;
    c.sinkhorn_epsilons = eps;
    c
}

/// Sinkhorn during training (LC-Rec's `sk_epsilons`): the last level's
/// codes of each batch are balanced over the codebook, so the training
/// batches use that level more evenly than nearest-code assignment does;
/// the model is the same with any thread count.
#[test]
fn sinkhorn_training_balances_the_last_level() {
    let data = semid::synthetic::hierarchical_mixture(&semid::synthetic::MixtureConfig {
        n: 1600,
        dim: 12,
        topics: 6,
        ..Default::default()
    });
    let x = Embeddings::new(&data, 12).unwrap();
    let (_, plain) = RqVae::fit(&sinkhorn_config(vec![]), x).unwrap();
    let c = sinkhorn_config(vec![0.0, 0.003]);
    let (m, sk) = RqVae::fit(&c, x).unwrap();
    let (p, q) = (plain.last().unwrap(), sk.last().unwrap());
    assert!(
        q.perplexity[1] > p.perplexity[1],
        "last-level perplexity with Sinkhorn {} vs nearest {}",
        q.perplexity[1],
        p.perplexity[1]
    );
    let mut c1 = c.clone();
    c1.par = semid::Par::Seq;
    let (m1, _) = RqVae::fit(&c1, x).unwrap();
    assert_eq!(m1, m);
}

#[test]
fn bad_sinkhorn_settings_are_typed_errors() {
    let data = semid::synthetic::hierarchical_mixture(&semid::synthetic::MixtureConfig {
        n: 400,
        dim: 8,
        ..Default::default()
    });
    let x = Embeddings::new(&data, 8).unwrap();
    let field = |c: RqVaeConfig| match RqVae::fit(&c, x) {
        Err(Error::InvalidConfig { field, .. }) => field,
        other => panic!("expected InvalidConfig, got {other:?}"),
    };
    assert_eq!(field(sinkhorn_config(vec![0.003])), "sinkhorn_epsilons");
    assert_eq!(field(sinkhorn_config(vec![0.0, -1.0])), "sinkhorn_epsilons");
    assert_eq!(
        field(sinkhorn_config(vec![0.0, f64::NAN])),
        "sinkhorn_epsilons"
    );
    let mut c = sinkhorn_config(vec![0.0, 0.003]);
    c.sinkhorn_iterations = 0;
    assert_eq!(field(c), "sinkhorn_iterations");
    // Zero iterations do not matter while every ε is 0.
    let mut c = sinkhorn_config(vec![0.0, 0.0]);
    c.sinkhorn_iterations = 0;
    assert!(RqVae::fit(&c, x).is_ok());
}

/// A hostile level count (from a model file) is refused before any
/// per-level list is made.
#[test]
fn huge_level_counts_are_refused_without_allocating() {
    let enc = Mlp::new(&[4, 2], Activation::Relu, 0).unwrap();
    let dec = Mlp::new(&[2, 4], Activation::Relu, 1).unwrap();
    assert!(RqVae::from_parts(enc.clone(), dec.clone(), vec![], 1 << 60, 2).is_err());
    assert!(RqVae::from_parts(enc, dec, vec![0.5; 8], 2, 2).is_ok());
    assert!(RqKMeans::from_codebooks(vec![], 1 << 60, 2).is_err());
    assert!(RqKMeans::from_codebooks(vec![0.5; 8], 2, 2).is_ok());
}
