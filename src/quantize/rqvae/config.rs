//! [`RqVaeConfig`](super::RqVaeConfig): TIGER's recipe and semid's defaults.

use crate::error::{Result, invalid};
use crate::nn::{Activation, OptimizerConfig};
use crate::par::Par;

/// RQ-VAE settings.
///
/// `Default` is TIGER's architecture (hidden 512 → 256 → 128, latent 32,
/// 3 × 256 codes, β 0.25, ReLU, batch 1024) trained with Adam(W) lr 1e-3 as
/// GRID and MiniOneRec do. [`RqVaeConfig::tiger`] also takes TIGER's
/// optimizer, Adagrad lr 0.4, which diverged on semid's synthetic data
/// (reconstruction loss 1e7 in the first epoch): prefer the default unless
/// you reproduce TIGER.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RqVaeConfig {
    /// Encoder hidden widths (the decoder mirrors them). TIGER: 512, 256, 128.
    pub hidden: Vec<usize>,
    /// Latent width (codeword dimension). TIGER: 32.
    pub latent: usize,
    /// Residual levels `L`. TIGER: 3.
    pub levels: usize,
    /// Codes per level. TIGER: 256. With
    /// [`RqVaeConfig::codebook_sizes`] set, that list is read instead.
    pub k: usize,
    /// A codebook size per level when they differ, e.g. `[512, 256, 128]`:
    /// `levels` entries, each 2..=65536. `None` (the default): every level
    /// has `k` codes. A model with unequal sizes is written as model-file
    /// format version 2.
    #[cfg_attr(feature = "serde", serde(default))]
    pub codebook_sizes: Option<Vec<usize>>,
    /// Commitment weight β. 0.25.
    pub beta: f32,
    /// Hidden activation.
    pub activation: Activation,
    /// Optimizer for the networks and the codebooks.
    pub optimizer: OptimizerConfig,
    /// Passes over the data (at least; see `min_steps`).
    pub epochs: usize,
    /// Optimizer steps to take at least: training runs
    /// `max(epochs, ⌈min_steps / steps per epoch⌉)` epochs, so a small
    /// catalog still gets a real training run. Default 500; 0 trains
    /// exactly `epochs`. On a 1 700-row catalog 20 epochs are 34 steps and
    /// left 16–60% of the codes used (MSE 2.5× RQ-KMeans); 500 steps (250
    /// epochs, 14 s) use every code at MSE 1.28× RQ-KMeans. A 16k catalog
    /// trains 32 epochs instead of 20 (MSE 1.28× → 1.22×).
    pub min_steps: usize,
    /// Rows per step.
    pub batch_size: usize,
    /// Re-seed a code from current residuals after this many steps without
    /// use (0: never).
    pub dead_code_steps: usize,
    /// Seed of initialisation, k-means and shuffling.
    pub seed: u64,
    /// Gradient estimator through the quantizer: `false` (default) is
    /// TIGER's straight-through estimator on the quantized sum (`∂z =
    /// ∂q`); `true` is the rotation trick (Fifty et al. 2024) as
    /// vector-quantize-pytorch's `ResidualVQ(rotation_trick = True)` applies
    /// it: every level rotates and rescales its input residual onto its
    /// codeword, and the encoder receives the sum of the L rotated
    /// gradients.
    pub rotation_trick: bool,
    /// Sinkhorn-Knopp assignment during training, per level (LC-Rec's
    /// `sk_epsilons`): `ε_l > 0` assigns level `l`'s codes over each
    /// training batch by [`Sinkhorn`](crate::sid::Sinkhorn) with that ε
    /// (distances centred and scaled to [−1, 1], balanced columns, argmax)
    /// instead of the nearest codeword; 0 keeps the nearest. Empty (the
    /// default) is off; otherwise one entry per level. LC-Rec: `[0, 0, 0,
    /// 0.003]` (the last of 4 levels). Encoding after training always takes
    /// the nearest codeword; a collision policy
    /// ([`CollisionPolicy::Sinkhorn`](crate::sid::CollisionPolicy::Sinkhorn))
    /// applies Sinkhorn to the IDs.
    #[cfg_attr(feature = "serde", serde(default))]
    pub sinkhorn_epsilons: Vec<f64>,
    /// Sinkhorn iterations per assignment (LC-Rec's `sk_iters`: 50), read
    /// when an ε is positive.
    #[cfg_attr(feature = "serde", serde(default = "default_sinkhorn_iterations"))]
    pub sinkhorn_iterations: usize,
    /// Threads for training and encoding. Batches are cut into shards of
    /// [`RqVae::SHARD_ROWS`](super::RqVae::SHARD_ROWS) rows whatever the thread count and the shard
    /// gradients are summed in shard order, so a seed gives the same
    /// weights and codes with any `par`.
    pub par: Par,
}

impl RqVaeConfig {
    /// TIGER's RQ-VAE: hidden 512 → 256 → 128, latent 32, 3 × 256 codes,
    /// β 0.25, ReLU, Adagrad lr 0.4, batch 1024. Epochs default to 20
    /// here (TIGER trains 20k epochs on small catalogs; raise it as your
    /// budget allows).
    #[must_use]
    pub fn tiger() -> Self {
        RqVaeConfig {
            hidden: vec![512, 256, 128],
            latent: 32,
            levels: 3,
            k: 256,
            codebook_sizes: None,
            beta: 0.25,
            activation: Activation::Relu,
            optimizer: OptimizerConfig::adagrad(0.4),
            epochs: 20,
            min_steps: 500,
            batch_size: 1024,
            dead_code_steps: 20,
            seed: 0,
            rotation_trick: false,
            sinkhorn_epsilons: Vec::new(),
            sinkhorn_iterations: 50,
            par: Par::default(),
        }
    }

    /// Sinkhorn at each level during training (`None`: the nearest code),
    /// from [`RqVaeConfig::sinkhorn_epsilons`] and
    /// [`RqVaeConfig::sinkhorn_iterations`]; errors as `validate`.
    pub fn level_sinkhorn(&self) -> Result<Vec<Option<crate::sid::Sinkhorn>>> {
        if self.sinkhorn_epsilons.is_empty() {
            return Ok(vec![None; self.levels]);
        }
        if self.sinkhorn_epsilons.len() != self.levels {
            return Err(invalid(
                "sinkhorn_epsilons",
                format!(
                    "has {} entries but levels is {}; give one ε per level (0: nearest code)",
                    self.sinkhorn_epsilons.len(),
                    self.levels
                ),
            ));
        }
        self.sinkhorn_epsilons
            .iter()
            .map(|&e| {
                if e == 0.0 {
                    return Ok(None);
                }
                crate::sid::Sinkhorn::new(e, self.sinkhorn_iterations)
                    .map(Some)
                    .map_err(|err| match err {
                        crate::Error::InvalidConfig { field, reason } => invalid(
                            if field == "iterations" {
                                "sinkhorn_iterations"
                            } else {
                                "sinkhorn_epsilons"
                            },
                            reason,
                        ),
                        other => other,
                    })
            })
            .collect()
    }

    /// [`RqVaeConfig::default`] with `levels` levels of `k` codes.
    #[must_use]
    pub fn new(levels: usize, k: usize) -> Self {
        RqVaeConfig {
            levels,
            k,
            ..RqVaeConfig::default()
        }
    }

    /// A codebook size per level (`[512, 256, 128]`): sets
    /// [`RqVaeConfig::codebook_sizes`] and `levels` to its length.
    ///
    /// ```
    /// use semid::RqVaeConfig;
    /// let cfg = RqVaeConfig::default().codebook_sizes(vec![512, 256, 128]);
    /// assert_eq!((cfg.levels, cfg.level_sizes()), (3, vec![512, 256, 128]));
    /// ```
    #[must_use]
    pub fn codebook_sizes(mut self, sizes: Vec<usize>) -> Self {
        self.levels = sizes.len();
        self.codebook_sizes = Some(sizes);
        self
    }

    /// Each level's codebook size: [`RqVaeConfig::codebook_sizes`] if set,
    /// else `levels` times `k`.
    #[must_use]
    pub fn level_sizes(&self) -> Vec<usize> {
        match &self.codebook_sizes {
            Some(v) => v.clone(),
            None => vec![self.k; self.levels],
        }
    }

    crate::config::setters! {
        /// Sets the encoder hidden widths (the decoder mirrors them).
        hidden: Vec<usize>;
        /// Sets the latent width.
        latent: usize;
        /// Sets the number of residual levels.
        levels: usize;
        /// Sets the codes per level.
        k: usize;
        /// Sets the commitment weight β.
        beta: f32;
        /// Sets the hidden activation.
        activation: Activation;
        /// Sets the optimizer.
        optimizer: OptimizerConfig;
        /// Sets the number of epochs (default 20).
        epochs: usize;
        /// Sets the minimum number of optimizer steps (default 500; 0 for
        /// exactly `epochs`).
        min_steps: usize;
        /// Sets the rows per step.
        batch_size: usize;
        /// Sets the steps without use after which a code is re-seeded (0:
        /// never).
        dead_code_steps: usize;
        /// Sets the seed.
        seed: u64;
        /// Turns the rotation trick on or off.
        rotation_trick: bool;
        /// Sets the threads (results do not depend on them).
        par: Par;
    }

    /// Errors naming the field: zero sizes, k above 65 536, non-finite or
    /// negative β, invalid optimizer settings.
    pub fn validate(&self) -> Result<()> {
        if self.hidden.contains(&0) || self.latent == 0 {
            return Err(invalid(
                "hidden",
                "layer sizes of 0; every layer needs at least 1 unit",
            ));
        }
        if self.levels == 0 {
            return Err(invalid("levels", "is 0; use at least 1"));
        }
        match &self.codebook_sizes {
            None => crate::data::check_vocab("k", &[self.k], 2)?,
            Some(sizes) => crate::data::check_level_sizes("codebook_sizes", sizes, self.levels, 2)?,
        }
        if !(self.beta.is_finite() && self.beta >= 0.0) {
            return Err(invalid(
                "beta",
                format!("is {}; use a finite value ≥ 0", self.beta),
            ));
        }
        if self.epochs == 0 {
            return Err(invalid("epochs", "is 0; train at least one epoch"));
        }
        let k_max = self.level_sizes().into_iter().max().unwrap_or(0);
        if self.batch_size < k_max {
            return Err(invalid(
                "batch_size",
                format!(
                    "is {}; the first batch initialises the codebooks by k-means, so it needs at least as many rows as the largest level's {k_max} codes",
                    self.batch_size
                ),
            ));
        }
        self.level_sinkhorn()?;
        self.optimizer.validate()
    }
}

#[cfg(feature = "serde")]
fn default_sinkhorn_iterations() -> usize {
    50
}

impl Default for RqVaeConfig {
    fn default() -> Self {
        RqVaeConfig {
            optimizer: OptimizerConfig::adam(1e-3),
            ..RqVaeConfig::tiger()
        }
    }
}
