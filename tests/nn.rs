//! Every backward pass of `semid::nn` against central finite differences,
//! and the optimizers against their update formulas.
#![allow(clippy::needless_range_loop)] // finite-difference loops index several buffers

mod common;

use semid::Error;
use semid::nn::{
    Activation, Linear, Mlp, MlpCache, Optimizer, OptimizerConfig, mse_loss, shuffled,
};

fn values(n: usize, seed: u64) -> Vec<f32> {
    semid::synthetic::uniform(n, -1.0, 1.0, seed)
}

fn close(a: f64, b: f64, what: &str) {
    let tol = 2e-2 * a.abs().max(b.abs()).max(1e-2);
    assert!((a - b).abs() <= tol, "{what}: analytic {a} vs numeric {b}");
}

/// Loss of an MLP on (x, target), in f64.
fn mlp_loss(m: &Mlp, x: &[f32], t: &[f32]) -> f64 {
    let mut y = Vec::new();
    m.infer(x, &mut y).unwrap();
    let mut g = Vec::new();
    mse_loss(&y, t, &mut g).unwrap()
}

#[test]
fn mlp_gradients_match_finite_differences() {
    for act in [Activation::Relu, Activation::Silu] {
        let mut m = Mlp::new(&[5, 7, 6, 3], act, 11).unwrap();
        let n = 9;
        let x = values(n * 5, 1);
        let t = values(n * 3, 2);
        let mut cache = MlpCache::default();
        let mut y = Vec::new();
        m.forward(&x, &mut y, &mut cache).unwrap();
        let mut dy = Vec::new();
        let loss = mse_loss(&y, &t, &mut dy).unwrap();
        assert!(
            (loss - mlp_loss(&m, &x, &t)).abs() < 1e-9,
            "forward and infer agree"
        );
        let mut grads = m.zero_grads();
        let mut dx = Vec::new();
        m.backward(&dy, &mut cache, &mut grads, Some(&mut dx))
            .unwrap();
        let analytic: Vec<Vec<f32>> = grads.tensors().cloned().collect();
        let eps = 1e-2f32;
        // Parameters: every 3rd entry of every tensor.
        let n_tensors = analytic.len();
        for ti in 0..n_tensors {
            for pi in (0..analytic[ti].len()).step_by(3) {
                let orig = m.params_mut().nth(ti).unwrap()[pi];
                m.params_mut().nth(ti).unwrap()[pi] = orig + eps;
                let lp = mlp_loss(&m, &x, &t);
                m.params_mut().nth(ti).unwrap()[pi] = orig - eps;
                let lm = mlp_loss(&m, &x, &t);
                m.params_mut().nth(ti).unwrap()[pi] = orig;
                close(
                    analytic[ti][pi] as f64,
                    (lp - lm) / (2.0 * eps as f64),
                    &format!("{act:?} tensor {ti} param {pi}"),
                );
            }
        }
        // Inputs.
        for i in (0..x.len()).step_by(2) {
            let mut xp = x.clone();
            xp[i] += eps;
            let mut xm = x.clone();
            xm[i] -= eps;
            let num = (mlp_loss(&m, &xp, &t) - mlp_loss(&m, &xm, &t)) / (2.0 * eps as f64);
            close(dx[i] as f64, num, &format!("{act:?} input {i}"));
        }
    }
}

#[test]
fn linear_and_mse_gradients_match_finite_differences() {
    let l = Linear::new(4, 3, 5, 0).unwrap();
    let x = values(6 * 4, 3);
    let c = values(6 * 3, 4); // loss = Σ c ⊙ y
    let loss = |l: &Linear, x: &[f32]| -> f64 {
        let mut y = Vec::new();
        l.forward(x, &mut y).unwrap();
        y.iter()
            .zip(&c)
            .map(|(a, b)| (*a as f64) * (*b as f64))
            .sum()
    };
    let (mut gw, mut gb, mut dx) = (vec![0f32; 12], vec![0f32; 3], Vec::new());
    l.backward(&x, &c, &mut gw, &mut gb, Some(&mut dx)).unwrap();
    let eps = 1e-2f32;
    for i in 0..12 {
        let (mut a, mut b) = (l.clone(), l.clone());
        a.weight[i] += eps;
        b.weight[i] -= eps;
        close(
            gw[i] as f64,
            (loss(&a, &x) - loss(&b, &x)) / (2.0 * eps as f64),
            "weight",
        );
    }
    for i in 0..3 {
        let (mut a, mut b) = (l.clone(), l.clone());
        a.bias[i] += eps;
        b.bias[i] -= eps;
        close(
            gb[i] as f64,
            (loss(&a, &x) - loss(&b, &x)) / (2.0 * eps as f64),
            "bias",
        );
    }
    for i in 0..x.len() {
        let (mut a, mut b) = (x.clone(), x.clone());
        a[i] += eps;
        b[i] -= eps;
        close(
            dx[i] as f64,
            (loss(&l, &a) - loss(&l, &b)) / (2.0 * eps as f64),
            "input",
        );
    }
    // MSE.
    let p = values(10, 8);
    let t = values(10, 9);
    let mut g = Vec::new();
    mse_loss(&p, &t, &mut g).unwrap();
    for i in 0..10 {
        let (mut a, mut b) = (p.clone(), p.clone());
        a[i] += eps;
        b[i] -= eps;
        let mut tmp = Vec::new();
        let num = (mse_loss(&a, &t, &mut tmp).unwrap() - mse_loss(&b, &t, &mut tmp).unwrap())
            / (2.0 * eps as f64);
        close(g[i] as f64, num, "mse");
    }
}

#[test]
fn optimizers_follow_their_formulas_and_learn() {
    // First Adam step: m̂ = g, v̂ = g², so p −= lr · g / (|g| + eps).
    let mut p = [vec![1.0f32, -2.0, 0.5]];
    let g = [vec![0.3f32, -0.1, 2.0]];
    let mut adam = Optimizer::new(OptimizerConfig::adam(0.01), &[3]).unwrap();
    adam.step(p.iter_mut(), g.iter()).unwrap();
    for (i, &want) in [1.0 - 0.01, -2.0 + 0.01, 0.5 - 0.01].iter().enumerate() {
        assert!((p[0][i] - want).abs() < 1e-6, "adam {i}: {}", p[0][i]);
    }
    // First Adagrad step: p −= lr · g / (|g| + eps).
    let mut q = [vec![1.0f32, -2.0, 0.5]];
    let mut ada = Optimizer::new(OptimizerConfig::adagrad(0.4), &[3]).unwrap();
    ada.step(q.iter_mut(), g.iter()).unwrap();
    for (i, &want) in [1.0 - 0.4, -2.0 + 0.4, 0.5 - 0.4].iter().enumerate() {
        assert!((q[0][i] - want).abs() < 1e-6, "adagrad {i}: {}", q[0][i]);
    }
    // A small regression learns with either optimizer.
    for cfg in [OptimizerConfig::adam(1e-2), OptimizerConfig::adagrad(0.05)] {
        let mut m = Mlp::new(&[3, 16, 1], Activation::Relu, 4).unwrap();
        let x = values(64 * 3, 10);
        let t: Vec<f32> = x
            .chunks_exact(3)
            .map(|r| r[0] - 0.5 * r[1] + r[2] * r[2])
            .collect();
        let sizes: Vec<usize> = m.params_mut().map(|p| p.len()).collect();
        let mut opt = Optimizer::new(cfg, &sizes).unwrap();
        let first = mlp_loss(&m, &x, &t);
        let mut cache = MlpCache::default();
        let (mut y, mut dy) = (Vec::new(), Vec::new());
        let mut grads = m.zero_grads();
        for _ in 0..300 {
            m.forward(&x, &mut y, &mut cache).unwrap();
            mse_loss(&y, &t, &mut dy).unwrap();
            grads.zero();
            m.backward(&dy, &mut cache, &mut grads, None).unwrap();
            opt.step(m.params_mut(), grads.tensors()).unwrap();
        }
        let last = mlp_loss(&m, &x, &t);
        assert!(last < 0.2 * first, "{cfg:?}: {first} → {last}");
    }
}

#[test]
fn bad_settings_are_errors_and_shuffles_are_seeded() {
    assert!(Linear::new(0, 3, 1, 0).is_err());
    assert!(Mlp::new(&[4], Activation::Relu, 1).is_err());
    assert!(Mlp::new(&[4, 0, 2], Activation::Relu, 1).is_err());
    for lr in [0.0, -1.0, f32::NAN, f32::INFINITY] {
        assert!(Optimizer::new(OptimizerConfig::adam(lr), &[1]).is_err());
        assert!(Optimizer::new(OptimizerConfig::adagrad(lr), &[1]).is_err());
    }
    let mut opt = Optimizer::new(OptimizerConfig::adam(0.1), &[2]).unwrap();
    let mut p = [vec![0.0f32; 3]];
    assert!(opt.step(p.iter_mut(), [vec![0.0f32; 3]].iter()).is_err());
    // Inconsistent shapes are errors, not panics (the fields are public).
    let l = Linear::new(4, 3, 1, 0).unwrap();
    let mut y = Vec::new();
    assert!(matches!(
        l.forward(&[0.0; 5], &mut y),
        Err(Error::Shape { .. })
    ));
    let mut broken = l.clone();
    broken.weight.pop();
    assert!(broken.forward(&[0.0; 4], &mut y).is_err());
    let (mut gw, mut gb) = (vec![0f32; 12], vec![0f32; 3]);
    assert!(
        l.backward(&[0.0; 4], &[0.0; 2], &mut gw, &mut gb, None)
            .is_err()
    );
    assert!(
        l.backward(&[0.0; 4], &[0.0; 3], &mut gw[..11], &mut gb, None)
            .is_err()
    );
    let m = Mlp::new(&[4, 5, 2], Activation::Relu, 3).unwrap();
    let mut cache = MlpCache::default();
    assert!(
        m.backward(&[0.0; 2], &mut cache, &mut m.zero_grads(), None)
            .is_err()
    );
    m.forward(&[0.0; 8], &mut y, &mut cache).unwrap();
    assert!(
        m.backward(&[0.0; 3], &mut cache, &mut m.zero_grads(), None)
            .is_err()
    );
    let other = Mlp::new(&[4, 2], Activation::Relu, 3).unwrap();
    assert!(
        m.backward(&[0.0; 4], &mut cache, &mut other.zero_grads(), None)
            .is_err()
    );
    let empty = Mlp {
        layers: vec![],
        activation: Activation::Relu,
    };
    assert!(matches!(
        empty.infer(&[0.0; 4], &mut y),
        Err(Error::Empty { .. })
    ));
    let unchained = Mlp {
        layers: vec![
            Linear::new(4, 5, 1, 0).unwrap(),
            Linear::new(3, 2, 1, 1).unwrap(),
        ],
        activation: Activation::Relu,
    };
    assert!(unchained.validate().is_err());
    assert!(mse_loss(&[0.0; 3], &[0.0; 2], &mut Vec::new()).is_err());
    let a = shuffled(100, 7, 0);
    assert_eq!(a, shuffled(100, 7, 0));
    assert_ne!(a, shuffled(100, 7, 1));
    let mut s = a.clone();
    s.sort_unstable();
    assert_eq!(s, (0..100).collect::<Vec<u32>>());
}

#[test]
fn parallel_optimizer_steps_equal_sequential_ones() {
    // Tensors larger than one parallel piece (16 384 values), three steps,
    // both optimizers and AdamW's decay: bit-identical parameters.
    let sizes = [40_000usize, 7, 20_000];
    let adamw = OptimizerConfig::Adam {
        lr: 1e-3,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.01,
    };
    for cfg in [adamw, OptimizerConfig::adagrad(0.1)] {
        let init: Vec<Vec<f32>> = sizes
            .iter()
            .enumerate()
            .map(|(i, &s)| values(s, i as u64))
            .collect();
        let grads: Vec<Vec<Vec<f32>>> = (0..3)
            .map(|step| {
                sizes
                    .iter()
                    .enumerate()
                    .map(|(i, &s)| values(s, 100 + 10 * step + i as u64))
                    .collect()
            })
            .collect();
        let run = |par: Option<semid::Par>| {
            let mut p = init.clone();
            let mut opt = Optimizer::new(cfg, &sizes).unwrap();
            for g in &grads {
                match par {
                    None => opt.step(p.iter_mut(), g.iter()).unwrap(),
                    Some(par) => common::with_threads(2, || {
                        opt.step_par(p.iter_mut(), g.iter(), par).unwrap()
                    }),
                }
            }
            p
        };
        let seq = run(None);
        assert_ne!(seq, init);
        assert_eq!(run(Some(semid::Par::Rayon(2))), seq, "{cfg:?}");
        assert_eq!(run(Some(semid::Par::Rayon(0))), seq, "{cfg:?}");
    }
}
