//! The minimum of a neural-network toolkit that RQ-VAE and the FSQ
//! autoencoder need: dense layers, ReLU/SiLU, an MLP, MSE, Adam(W) and
//! Adagrad, seeded initialisation and shuffling. Every backward pass is
//! checked against finite differences in the tests. Not a general
//! framework.
//!
//! Tensors are row-major `f32` slices: a batch of `n` rows of width `d` is
//! `n × d`. GEMMs run through faer on the calling thread, so results do not
//! depend on the thread count.

mod linear;
mod loss;
mod mlp;
mod optim;

pub(crate) use linear::GradMode;
pub use linear::{Activation, Linear};
pub use loss::mse_loss;
pub(crate) use loss::sq_err;
pub use mlp::{Grads, Mlp, MlpCache};
pub(crate) use mlp::{LayerV1, pair_from_v1, pair_to_v1};
pub use optim::{Optimizer, OptimizerConfig};

use crate::rng::Rng;

/// A seeded permutation of `0..n` (Fisher–Yates) for mini-batching.
#[must_use]
pub fn shuffled(n: usize, seed: u64, epoch: u64) -> Vec<u32> {
    let mut rng = Rng::new(seed, 1000 + epoch);
    let mut v: Vec<u32> = (0..n as u32).collect();
    for i in (1..n).rev() {
        v.swap(i, rng.below(i + 1));
    }
    v
}
