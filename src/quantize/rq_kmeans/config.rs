//! RQ-KMeans settings, encode search and what a fit reports.

use crate::error::{Result, invalid};
use crate::par::Par;
use crate::quantize::kmeans::{Init, KMeansConfig, KMeansReport};

/// How codes are searched at encode time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum EncodeSearch {
    /// Nearest codeword at each level (cost `2·L·k·d` flops per vector).
    #[default]
    Greedy,
    /// Keep the `B` best partial reconstructions per level (FAISS
    /// `ResidualQuantizer::max_beam_size`); `Beam(1)` equals `Greedy`. Cost
    /// about `B×` greedy; lower error, fewer collisions.
    Beam(usize),
}

/// RQ-KMeans configuration.
///
/// ```
/// use semid::{RqKMeansConfig, KMeansConfig};
/// let cfg = RqKMeansConfig::new(3, 256).seed(42);
/// assert_eq!(cfg.k, 256);
/// assert!(cfg.validate().is_ok());
/// ```
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RqKMeansConfig {
    /// Number of levels `L` (tokens per code), at least 1.
    pub levels: usize,
    /// Codes per level (the codebook size), 1..=65536 and at most the
    /// number of training rows. With [`RqKMeansConfig::codebook_sizes`]
    /// set, that list is read instead.
    pub k: usize,
    /// A codebook size per level when they differ, e.g. `[512, 256, 128]`
    /// (semantic-id's `codebook_size` list): `levels` entries, each
    /// 1..=65536 and at most the number of rows. `None` (the default):
    /// every level has `k` codes. The training sample is drawn for the
    /// largest size. A model with unequal sizes is written as model-file
    /// format version 2 (`docs/FORMAT.md`).
    #[cfg_attr(feature = "serde", serde(default))]
    pub codebook_sizes: Option<Vec<usize>>,
    /// The k-means settings of every level (level `l` uses seed
    /// `kmeans.seed + l`); its own `k` is not read: every level has
    /// [`RqKMeansConfig::k`] codes (or its entry of
    /// [`RqKMeansConfig::codebook_sizes`]).
    pub kmeans: KMeansConfig,
    /// Rounds of codebook refinement after the level-by-level fit (default
    /// 1; 0 keeps the level-wise codebooks). A round fixes the training
    /// rows' greedy codes, replaces each level's codewords, in level order,
    /// by the mean of what the other levels leave of their rows, and
    /// re-encodes; a round that does not lower the training MSE is undone
    /// and ends refinement. Cost per round: one greedy encode of the
    /// training rows plus `L` passes over them.
    ///
    /// On `pypi_text_16k` (3 × 256) one round lowers the MSE from 0.4841
    /// to 0.4805–0.4808 and moves the collision rate from 4.29–4.50% to
    /// 4.38–4.57%; three rounds reach 0.4783 but 4.6–4.8% collisions. On
    /// 200k × 256 synthetic data one round: 0.1280 → 0.1215–0.1217.
    pub refine_rounds: usize,
}

impl Default for RqKMeansConfig {
    /// 3 levels × 256 codes, [`RqKMeansConfig::level_defaults`].
    fn default() -> Self {
        RqKMeansConfig::new(3, 256)
    }
}

impl RqKMeansConfig {
    /// `levels` levels of `k` codes each, other settings default.
    #[must_use]
    pub fn new(levels: usize, k: usize) -> Self {
        RqKMeansConfig {
            levels,
            k,
            codebook_sizes: None,
            kmeans: Self::level_defaults(k),
            refine_rounds: 1,
        }
    }

    /// One level per entry of `sizes`, level `l` with `sizes[l]` codes
    /// (`[512, 256, 128]`), other settings default. `k` is set to the
    /// largest size (it is not read while `codebook_sizes` is set).
    ///
    /// ```
    /// use semid::RqKMeansConfig;
    /// let cfg = RqKMeansConfig::with_codebook_sizes(&[512, 256, 128]);
    /// assert_eq!((cfg.levels, cfg.level_sizes()), (3, vec![512, 256, 128]));
    /// assert!(RqKMeansConfig::with_codebook_sizes(&[256, 0]).validate().is_err());
    /// ```
    #[must_use]
    pub fn with_codebook_sizes(sizes: &[usize]) -> Self {
        let k = sizes.iter().copied().max().unwrap_or(0);
        RqKMeansConfig {
            codebook_sizes: Some(sizes.to_vec()),
            ..RqKMeansConfig::new(sizes.len(), k)
        }
    }

    /// Each level's codebook size: [`RqKMeansConfig::codebook_sizes`] if
    /// set, else `levels` times `k`.
    #[must_use]
    pub fn level_sizes(&self) -> Vec<usize> {
        match &self.codebook_sizes {
            Some(v) => v.clone(),
            None => vec![self.k; self.levels],
        }
    }

    /// The default k-means settings of each level: [`KMeansConfig::new`]
    /// with `tol` 1e-3 and progressive-dimension steps of 5 iterations
    /// (`Init::ProgressiveDim { steps: 10, iters: 5 }`) instead of 1e-4 and
    /// FAISS's 10.
    ///
    /// Why: the progressive start leaves each level's centroids close to
    /// converged, so more Lloyd iterations gain little. On `pypi_text_16k`
    /// (3 × 256, seeds 11–22, 2-core AMD EPYC Zen 3) the fit takes 1.3 s
    /// instead of 2.4 s (0.41× FAISS `ResidualQuantizer`'s, paired runs), MSE
    /// 0.4847 instead of 0.4798 (FAISS: 0.4850), with 4.58 ± 0.20% of items
    /// sharing a code against 4.61 ± 0.20% (FAISS: 4.45 ± 0.16%); see
    /// `docs/quantizers.md`.
    #[must_use]
    pub fn level_defaults(k: usize) -> KMeansConfig {
        KMeansConfig::new(k).tol(1e-3).init(Init::ProgressiveDim {
            steps: 10,
            iters: 5,
        })
    }

    /// Number of levels.
    #[must_use]
    pub fn levels(mut self, v: usize) -> Self {
        self.levels = v;
        self
    }

    /// Codes per level.
    #[must_use]
    pub fn k(mut self, v: usize) -> Self {
        self.k = v;
        self
    }

    /// Seed (default 0).
    #[must_use]
    pub fn seed(mut self, v: u64) -> Self {
        self.kmeans.seed = v;
        self
    }

    /// Parallelism (default [`Par::default`]).
    #[must_use]
    pub fn par(mut self, v: Par) -> Self {
        self.kmeans.par = v;
        self
    }

    /// Rounds of codebook refinement (default 1; see
    /// [`RqKMeansConfig::refine_rounds`]).
    #[must_use]
    pub fn refine_rounds(mut self, v: usize) -> Self {
        self.refine_rounds = v;
        self
    }

    /// The per-level k-means settings (default
    /// [`RqKMeansConfig::level_defaults`]; its `k` is not read).
    #[must_use]
    pub fn kmeans(mut self, v: KMeansConfig) -> Self {
        self.kmeans = v;
        self
    }

    /// Checks every field; `fit` calls this first.
    pub fn validate(&self) -> Result<()> {
        if self.levels == 0 {
            return Err(invalid("levels", "is 0; it must be at least 1"));
        }
        if self.levels > 64 {
            return Err(invalid("levels", format!("is {}; at most 64", self.levels)));
        }
        if self.refine_rounds > 1000 {
            return Err(invalid(
                "refine_rounds",
                format!("is {}; at most 1000", self.refine_rounds),
            ));
        }
        if let Some(sizes) = &self.codebook_sizes {
            crate::data::check_level_sizes("codebook_sizes", sizes, self.levels, 1)?;
        }
        for k in self.level_sizes() {
            self.level_kmeans(k).validate()?;
        }
        Ok(())
    }

    /// The k-means config of a level with `k` codes: `kmeans` with that
    /// `k`.
    pub(crate) fn level_kmeans(&self, k: usize) -> KMeansConfig {
        KMeansConfig {
            k,
            ..self.kmeans.clone()
        }
    }
}

/// Per-level figures from the fit, measured on the training sample.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LevelReport {
    /// The level's k-means report.
    pub kmeans: KMeansReport,
    /// Mean squared residual norm after this level (reconstruction MSE of
    /// the first `l + 1` levels, summed over dimensions).
    pub mse: f64,
    /// Fraction of this level's codes used by the training sample.
    pub utilization: f64,
    /// `exp(entropy)` of this level's code histogram.
    pub perplexity: f64,
}

/// What an RQ-KMeans fit did.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RqKMeansReport {
    /// One entry per level.
    pub levels: Vec<LevelReport>,
    /// Rows in the training sample (`min(n, k × max_points_per_centroid)`).
    pub n_train: usize,
    /// Mean squared norm of the training rows (MSE of a zero code).
    pub mean_sq_norm: f64,
    /// Training-row MSE of greedy codes with the final codebooks (after
    /// refinement; the last level's `mse` is the level-wise fit's).
    pub mse: f64,
    /// Refinement rounds kept (at most `refine_rounds`).
    pub refine_rounds: usize,
}
