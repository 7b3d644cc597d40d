//! FSQ autoencoder: learns, is deterministic, round-trips through model
//! files (golden v1), typed errors.

mod common;

use semid::ModelFile;
use semid::nn::{Activation, Linear, Mlp, OptimizerConfig};
use semid::quantize::{Fsq, FsqAutoencoder, FsqAutoencoderConfig, FsqMode};
use semid::{Codes, Embeddings, Error, Par, Quantizer};

fn small() -> FsqAutoencoderConfig {
    FsqAutoencoderConfig {
        levels_per_dim: vec![5, 5, 4],
        hidden: vec![32],
        optimizer: OptimizerConfig::adam(3e-3),
        epochs: 12,
        min_steps: 0,
        batch_size: 128,
        ..FsqAutoencoderConfig::default()
    }
    .seed(3)
}

#[test]
fn trains_and_is_deterministic() {
    let data = common::mixture(3000, 16, 8);
    let x = Embeddings::new(&data, 16).unwrap();
    for mode in [
        FsqMode::Default,
        FsqMode::Symmetric,
        FsqMode::SymmetricHardClamp,
    ] {
        let cfg = FsqAutoencoderConfig { mode, ..small() };
        let mut seen = 0;
        let (m, reports) = common::with_threads(1, || {
            FsqAutoencoder::fit_with_callback(&cfg, x, |_| seen += 1).unwrap()
        });
        assert_eq!(seen, 12);
        let (first, last) = (&reports[0], &reports[11]);
        assert!(
            last.recon_loss < 0.7 * first.recon_loss,
            "{mode:?}: {} → {}",
            first.recon_loss,
            last.recon_loss
        );
        assert!(
            last.utilization[0] > 0.3,
            "{mode:?}: {}",
            last.utilization[0]
        );
        let codes = m.encode(x).unwrap();
        assert_eq!((codes.levels(), m.codebook_sizes()), (1, vec![100]));
        let y = m.decode(&codes).unwrap();
        let mse = semid::stats::mse(x, &y).unwrap();
        let var = semid::stats::mse(x, &vec![0.0; data.len()]).unwrap();
        assert!(mse < 0.5 * var, "{mode:?}: mse {mse} vs {var}");
        let (m2, r2) = common::with_threads(2, || FsqAutoencoder::fit(&cfg, x).unwrap());
        assert_eq!(m2, m);
        assert_eq!(r2, reports);
        let mut seq = vec![0u16; 3000];
        m.encode_into(x, &mut seq, Par::Seq).unwrap();
        assert_eq!(
            common::with_threads(2, || m.encode(x).unwrap()).as_slice(),
            &seq[..]
        );
    }
}

fn golden_model() -> FsqAutoencoder {
    let lin = |i, o, s| Linear::new(i, o, 9, s).unwrap();
    let enc = Mlp {
        layers: vec![lin(3, 4, 1), lin(4, 2, 2)],
        activation: Activation::Silu,
    };
    let dec = Mlp {
        layers: vec![lin(2, 4, 3), lin(4, 3, 4)],
        activation: Activation::Silu,
    };
    FsqAutoencoder::from_parts(
        enc,
        dec,
        Fsq::with_mode(&[2, 3], FsqMode::Symmetric).unwrap(),
    )
    .unwrap()
}

#[test]
fn model_files_round_trip_golden_and_corruption() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/fsq_autoencoder_v1.semid");
    let g = golden_model();
    if std::env::var_os("SEMID_WRITE_GOLDEN").is_some() {
        g.save(&path).unwrap();
    }
    assert_eq!(std::fs::read(&path).unwrap(), g.to_bytes().unwrap());
    assert_eq!(FsqAutoencoder::load(&path).unwrap(), g);
    let data = common::mixture(600, 16, 4);
    let xe = Embeddings::new(&data, 16).unwrap();
    let (m, _) = FsqAutoencoder::fit(&small().epochs(2), xe).unwrap();
    let bytes = m.to_bytes().unwrap();
    let back = FsqAutoencoder::from_bytes(&bytes).unwrap();
    assert_eq!(back, m);
    assert_eq!(back.encode(xe).unwrap(), m.encode(xe).unwrap());
    for cut in (0..bytes.len()).step_by(61) {
        assert!(FsqAutoencoder::from_bytes(&bytes[..cut]).is_err());
    }
    for pos in (0..bytes.len()).step_by(53) {
        let mut b = bytes.clone();
        b[pos] ^= 0x10;
        assert!(FsqAutoencoder::from_bytes(&b).is_err());
    }
    // Another model kind is refused.
    assert!(semid::quantize::RqVae::from_bytes(&bytes).is_err());
    // Parts that do not chain are refused.
    let (enc, dec) = g.networks();
    let fsq = g.fsq().clone();
    assert!(FsqAutoencoder::from_parts(enc.clone(), enc.clone(), fsq.clone()).is_err());
    assert!(
        FsqAutoencoder::from_parts(enc.clone(), dec.clone(), Fsq::new(&[3, 3, 3]).unwrap())
            .is_err()
    );
    let mut nan = dec.clone();
    nan.layers[1].bias[0] = f32::NAN;
    assert!(FsqAutoencoder::from_parts(enc.clone(), nan, fsq).is_err());
}

#[test]
fn bad_input_is_a_typed_error() {
    let data = common::mixture(400, 16, 3);
    let x = Embeddings::new(&data, 16).unwrap();
    let bad = |f: fn(&mut FsqAutoencoderConfig)| {
        let mut c = small();
        f(&mut c);
        FsqAutoencoder::fit(&c, x).unwrap_err()
    };
    assert!(matches!(
        bad(|c| c.levels_per_dim = vec![]),
        Error::Empty { .. }
    ));
    assert!(matches!(
        bad(|c| c.levels_per_dim = vec![1, 5]),
        Error::InvalidConfig { .. }
    ));
    assert!(matches!(
        bad(|c| c.levels_per_dim = vec![2, 5]),
        Error::InvalidConfig { .. }
    ));
    assert!(matches!(
        bad(|c| c.levels_per_dim = vec![256, 256, 3]),
        Error::InvalidConfig { .. }
    ));
    assert!(matches!(
        bad(|c| c.hidden = vec![0]),
        Error::InvalidConfig { .. }
    ));
    assert!(matches!(bad(|c| c.epochs = 0), Error::InvalidConfig { .. }));
    assert!(matches!(
        bad(|c| c.batch_size = 0),
        Error::InvalidConfig { .. }
    ));
    assert!(matches!(
        bad(|c| c.optimizer = OptimizerConfig::adam(f32::NAN)),
        Error::InvalidConfig { .. }
    ));
    // No rows: refused when the view is made.
    assert!(matches!(Embeddings::new(&[], 16), Err(Error::Empty { .. })));
    let mut nan = data.clone();
    nan[7 * 16 + 2] = f32::INFINITY;
    assert!(matches!(
        FsqAutoencoder::fit(&small(), Embeddings::new(&nan, 16).unwrap()),
        Err(Error::NonFinite { row: 7, col: 2, .. })
    ));
    // Inputs are standardised, so a huge data scale trains like any other;
    // a huge learning rate overflows the weights and stops training.
    let mut c = small();
    c.optimizer = OptimizerConfig::adam(1e38);
    c.hidden = vec![];
    let e = FsqAutoencoder::fit(&c, x).unwrap_err();
    assert!(e.to_string().contains("epoch 0, step"), "{e}");
    let huge: Vec<f32> = data.iter().map(|v| v * 1e30).collect();
    let (_, r) = FsqAutoencoder::fit(&small(), Embeddings::new(&huge, 16).unwrap()).unwrap();
    let (_, r1) = FsqAutoencoder::fit(&small(), x).unwrap();
    let (a, b) = (r.last().unwrap(), r1.last().unwrap());
    assert!(
        (a.recon_loss / 1e60 - b.recon_loss).abs() <= 0.05 * b.recon_loss,
        "{} vs {}",
        a.recon_loss,
        b.recon_loss
    );
    let (m, _) = FsqAutoencoder::fit(&small().epochs(1), x).unwrap();
    assert!(m.encode(Embeddings::new(&data, 8).unwrap()).is_err());
    assert!(matches!(
        m.decode(&Codes::new(vec![100], 1).unwrap()),
        Err(Error::TokenOutOfRange { .. })
    ));
    let mut out = vec![0f32; 3];
    assert!(
        m.decode_into(&Codes::new(vec![1], 1).unwrap(), &mut out, Par::Seq)
            .is_err()
    );
}

#[test]
fn min_steps_lengthens_training_on_small_catalogs() {
    let data = common::mixture(3000, 16, 8);
    let x = Embeddings::new(&data, 16).unwrap();
    // 128-row batches: 24 steps per epoch, so 50 steps need 3 epochs.
    let cfg = FsqAutoencoderConfig {
        epochs: 1,
        min_steps: 50,
        ..small()
    };
    assert_eq!(FsqAutoencoder::fit(&cfg, x).unwrap().1.len(), 3);
}

/// An absurd learning rate overflows the weights within a few steps; both
/// autoencoders report `Error::Diverged` with the epoch and step, never a
/// model of NaNs.
#[test]
fn divergence_is_a_typed_error() {
    let data = common::mixture(600, 16, 4);
    let x = Embeddings::new(&data, 16).unwrap();
    let cfg = FsqAutoencoderConfig {
        optimizer: OptimizerConfig::adam(1e30),
        epochs: 3,
        ..small()
    };
    match FsqAutoencoder::fit(&cfg, x) {
        Err(Error::Diverged { epoch, step, .. }) => assert!(epoch < 3 && step < 5),
        other => panic!("FSQ AE: expected Diverged, got {:?}", other.map(|r| r.1)),
    }
    let cfg = semid::quantize::RqVaeConfig::new(2, 16)
        .hidden(vec![32])
        .optimizer(OptimizerConfig::adam(1e30))
        .epochs(3)
        .batch_size(128)
        .seed(3);
    match semid::quantize::RqVae::fit(&cfg, x) {
        Err(Error::Diverged { epoch, step, .. }) => assert!(epoch < 3 && step < 5),
        other => panic!("RQ-VAE: expected Diverged, got {:?}", other.map(|r| r.1)),
    }
}
