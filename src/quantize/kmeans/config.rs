//! k-means settings and what a fit reports.

use crate::error::{Result, invalid};
use crate::par::Par;

/// How initial centroids are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Init {
    /// FAISS's progressive-dimension clustering (`ProgressiveDimClustering`,
    /// what `faiss.ResidualQuantizer` trains each level with), the default.
    /// The training rows are rotated onto their principal axes; k-means then
    /// runs `iters` Lloyd iterations in the first `⌊d^(s/steps)⌋` axes for
    /// `s = 1 .. steps − 1`, each step starting from the previous step's
    /// centroids padded with zeros (the first from `k` random rows). The
    /// result, rotated back, starts the usual `max_iter` iterations in all
    /// `d` dimensions.
    ///
    /// Why it is the default: on real text embeddings, k-means++ seeding on
    /// *residuals* picks outlying rows, and most rows then crowd into a few
    /// clusters (perplexity 35 of 256 at level 3 on `pypi_text_16k`).
    /// Clustering first along the directions of largest spread gives
    /// near-uniform use of every level (see `docs/quantizers.md`). Extra cost:
    /// one `d × d` covariance and eigendecomposition per fit, one rotation of
    /// the training rows, and about `iters × Σ dᵢ / d` full-dimension
    /// iterations (≈ 12 for `d = 384` with the defaults).
    ProgressiveDim {
        /// Number of dimension steps, the last being all `d` (FAISS: 10).
        steps: usize,
        /// Lloyd iterations in each reduced dimension (FAISS: 10).
        iters: usize,
    },
    /// k-means++ (Arthur & Vassilvitskii): each new centroid is a training
    /// point drawn with probability ∝ its squared distance to the nearest
    /// chosen one. Seeding runs on a seeded sample of at most `32·k` training
    /// points (cost `k` passes over that sample, which stays in cache); Lloyd
    /// iterations then use the whole training set. semid's default before
    /// 0.2; good on a first level, poor on residuals (see above).
    KMeansPlusPlus,
    /// `k` distinct training points drawn uniformly (FAISS `Kmeans`'s
    /// default).
    Random,
}

impl Default for Init {
    fn default() -> Self {
        Init::PROGRESSIVE_DIM
    }
}

impl Init {
    /// [`Init::ProgressiveDim`] with FAISS's settings (10 steps × 10
    /// iterations): `Init::default()`.
    pub const PROGRESSIVE_DIM: Init = Init::ProgressiveDim {
        steps: 10,
        iters: 10,
    };
}

/// How training points are assigned to centroids in each Lloyd iteration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Assignment {
    /// Each point to its nearest centroid (standard Lloyd).
    #[default]
    Nearest,
    /// Equal-size clusters (OneRec's balanced k-means): every cluster gets
    /// ⌊m/k⌋ or ⌈m/k⌉ of the `m` training points. Points are placed greedily
    /// in order of increasing distance, each to its nearest cluster that still
    /// has room. Costs about `m·log m` on top of the GEMM; encoding afterwards
    /// is always nearest-centroid, so codes of new data are close to, not
    /// exactly, balanced.
    Balanced,
}

/// k-means configuration. `Default` is k = 256, FAISS-like settings.
///
/// ```
/// use semid::KMeansConfig;
/// let cfg = KMeansConfig::new(64).max_iter(10).seed(7);
/// assert!(cfg.validate().is_ok());
/// ```
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct KMeansConfig {
    /// Number of clusters (1..=65536, and at most the number of rows).
    pub k: usize,
    /// Maximum Lloyd iterations (assignment + update), at least 1.
    pub max_iter: usize,
    /// Stop when the inertia falls by less than `tol × previous` in one
    /// iteration. With 0 it stops only at a fixed point (inertia no longer
    /// falls).
    pub tol: f64,
    /// Initialisation.
    pub init: Init,
    /// Train on at most `k × this` points, sampled with the seed (FAISS uses
    /// 256). `None` trains on every row.
    pub max_points_per_centroid: Option<usize>,
    /// Nearest or balanced assignment during training.
    pub assignment: Assignment,
    /// Seed for sampling and initialisation.
    pub seed: u64,
    /// Parallelism.
    pub par: Par,
}

impl Default for KMeansConfig {
    fn default() -> Self {
        KMeansConfig {
            k: 256,
            max_iter: 20,
            tol: 1e-4,
            init: Init::PROGRESSIVE_DIM,
            max_points_per_centroid: Some(256),
            assignment: Assignment::Nearest,
            seed: 0,
            par: Par::default(),
        }
    }
}

impl KMeansConfig {
    /// Default config with `k` clusters.
    #[must_use]
    pub fn new(k: usize) -> Self {
        KMeansConfig {
            k,
            ..Self::default()
        }
    }

    /// Number of clusters.
    #[must_use]
    pub fn k(mut self, v: usize) -> Self {
        self.k = v;
        self
    }

    /// Maximum iterations (default 20); each costs `2·m·k·d` flops.
    #[must_use]
    pub fn max_iter(mut self, v: usize) -> Self {
        self.max_iter = v;
        self
    }

    /// Relative inertia tolerance (default 1e-4).
    #[must_use]
    pub fn tol(mut self, v: f64) -> Self {
        self.tol = v;
        self
    }

    /// Initialisation (default [`Init::PROGRESSIVE_DIM`]).
    #[must_use]
    pub fn init(mut self, v: Init) -> Self {
        self.init = v;
        self
    }

    /// Training-set cap per centroid (default `Some(256)`; `None` uses all
    /// rows, so cost grows with `n`).
    #[must_use]
    pub fn max_points_per_centroid(mut self, v: Option<usize>) -> Self {
        self.max_points_per_centroid = v;
        self
    }

    /// Assignment mode (default nearest).
    #[must_use]
    pub fn assignment(mut self, v: Assignment) -> Self {
        self.assignment = v;
        self
    }

    /// Seed (default 0).
    #[must_use]
    pub fn seed(mut self, v: u64) -> Self {
        self.seed = v;
        self
    }

    /// Parallelism (default [`Par::default`]).
    #[must_use]
    pub fn par(mut self, v: Par) -> Self {
        self.par = v;
        self
    }

    /// Checks every field; `fit` calls this first.
    pub fn validate(&self) -> Result<()> {
        crate::data::check_vocab("k", &[self.k], 1)?;
        if self.max_iter == 0 {
            return Err(invalid("max_iter", "is 0; it must be at least 1"));
        }
        if !self.tol.is_finite() || self.tol < 0.0 {
            return Err(invalid(
                "tol",
                format!("is {}; it must be finite and >= 0", self.tol),
            ));
        }
        if let Init::ProgressiveDim { steps, iters } = self.init {
            if steps == 0 || steps > 64 {
                return Err(invalid(
                    "init",
                    format!("ProgressiveDim steps is {steps}; it must be in 1..=64"),
                ));
            }
            if iters == 0 {
                return Err(invalid(
                    "init",
                    "ProgressiveDim iters is 0; it must be at least 1",
                ));
            }
        }
        if self.max_points_per_centroid == Some(0) {
            return Err(invalid(
                "max_points_per_centroid",
                "is Some(0); use None for no cap or a positive number",
            ));
        }
        Ok(())
    }

    /// Number of training points used for `n` rows.
    pub(crate) fn train_size(&self, n: usize) -> usize {
        match self.max_points_per_centroid {
            Some(c) => n.min(self.k.saturating_mul(c)),
            None => n,
        }
    }

    pub(crate) fn check_rows(&self, n: usize) -> Result<()> {
        if self.k > n {
            return Err(invalid(
                "k",
                format!(
                    "is {} but the data has only {n} rows; k must be <= n",
                    self.k
                ),
            ));
        }
        Ok(())
    }
}

/// What a k-means fit did.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct KMeansReport {
    /// Lloyd iterations run.
    pub iterations: usize,
    /// Whether the relative inertia change fell below `tol`.
    pub converged: bool,
    /// Sum of squared distances at the last assignment step (the returned
    /// centroids are that assignment's means, so their inertia is at most this).
    pub inertia: f64,
    /// Inertia at each assignment step.
    pub inertia_history: Vec<f64>,
    /// Training points per cluster at the last assignment step.
    pub cluster_sizes: Vec<usize>,
    /// Number of training points used.
    pub n_train: usize,
    /// How many times an empty cluster was re-seeded by splitting the largest.
    pub empty_cluster_repairs: usize,
}
