//! k-means: progressive-dimension, k-means++ or random initialisation,
//! Lloyd iterations with GEMM assignment, empty-cluster repair, FAISS-style
//! training subsample, balanced mode.
//!
//! - [`config`]: [`KMeansConfig`], [`Init`], [`Assignment`], [`KMeansReport`];
//! - [`progressive`]: the progressive-dimension initialisation (with its PCA);
//! - [`lloyd`]: seeding and Lloyd iterations on training rows;
//! - [`balanced`]: the balanced assignment step;
//! - [`steps`]: [`LloydSteps`], the assignment and centroid means a fit
//!   runs on the CPU or on a device;
//! - this file: the fitted [`KMeans`] model, its model file, and the helpers
//!   RQ-KMeans shares.

mod balanced;
mod config;
mod lloyd;
mod progressive;
mod steps;

pub use config::{Assignment, Init, KMeansConfig, KMeansReport};
pub(crate) use lloyd::lloyd;
use lloyd::{gather_rows, seed_pp};
pub(crate) use steps::assign_checked;
#[cfg(feature = "cuda")]
pub(crate) use steps::shapes;
pub use steps::{CpuSteps, Labels, LloydSteps, centroid_sum_chunk};

use super::{Quantizer, expect_len};
use crate::data::{Codes, Embeddings, FiniteRows, check_vocab};
use crate::error::{Error, Result};
use crate::format::{ModelKind, sealed::Payload, stored_usize, to_invalid};
use crate::kernels::{AssignPath, AssignScratch, BLOCK_ROWS, CentroidSet, assign_block};
use crate::par::{Par, for_each_block, for_each_block2};
use crate::rng::Rng;

/// A fitted k-means model: `k` centroids of dimension `d`.
///
/// As a [`Quantizer`] it has one level: the code of a row is its nearest
/// centroid.
///
/// ```
/// use semid::{Embeddings, KMeans, KMeansConfig, Quantizer};
/// let data: Vec<f32> = (0..400).map(|i| (i % 40) as f32).collect();
/// let x = Embeddings::new(&data, 4)?;
/// let (km, report) = KMeans::fit(&KMeansConfig::new(5).seed(1), x)?;
/// assert_eq!(km.k(), 5);
/// assert!(report.inertia.is_finite());
/// let codes = km.encode(x)?;
/// assert_eq!(codes.rows(), 100);
/// # Ok::<(), semid::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct KMeans {
    dim: usize,
    k: usize,
    centroids: Vec<f32>,
}

impl KMeans {
    /// Fits k-means to `x` (`n × d`). Errors on an invalid config, `k > n`,
    /// or non-finite data.
    pub fn fit(config: &KMeansConfig, x: Embeddings<'_>) -> Result<(KMeans, KMeansReport)> {
        KMeans::fit_with_steps(config, x, &mut CpuSteps::new(config.par))
    }

    /// [`KMeans::fit`] with the assignment and centroid means of every
    /// Lloyd iteration done by `steps` (e.g. `semid::gpu::DeviceSteps` with
    /// the `cuda` feature); sampling, initialisation and repairs stay on the
    /// CPU. Steps that compute the CPU's labels and means give the CPU's
    /// model bit for bit.
    ///
    /// Errors as [`KMeans::fit`], plus any error of `steps`.
    pub fn fit_with_steps(
        config: &KMeansConfig,
        x: Embeddings<'_>,
        steps: &mut dyn LloydSteps,
    ) -> Result<(KMeans, KMeansReport)> {
        config.validate()?;
        config.check_rows(x.rows())?;
        let mut rng = Rng::new(config.seed, 0);
        let train = training_rows(x, config.train_size(x.rows()), &mut rng)?;
        let (centroids, report) = fit_rows(config, train.as_slice(), x.dim(), &mut rng, steps)?;
        Ok((
            KMeans {
                dim: x.dim(),
                k: config.k,
                centroids,
            },
            report,
        ))
    }

    /// Builds a model from centroids (`k × dim`, row-major), checking shape
    /// and finiteness.
    pub fn from_centroids(centroids: Vec<f32>, dim: usize) -> Result<KMeans> {
        let k = validate_codebook("centroids", &centroids, dim)?;
        Ok(KMeans { dim, k, centroids })
    }

    /// Number of centroids.
    #[must_use]
    pub fn k(&self) -> usize {
        self.k
    }

    /// Centroids, `k × d` row-major.
    #[must_use]
    pub fn centroids(&self) -> &[f32] {
        &self.centroids
    }

    /// Nearest centroid and squared distance for every row of `x`.
    pub fn assign(&self, x: Embeddings<'_>, par: Par) -> Result<(Vec<u32>, Vec<f32>)> {
        x.expect_dim(self.dim)?;
        let n = x.rows();
        let (mut labels, mut dists) = (vec![0u32; n], vec![0f32; n]);
        let c = CentroidSet::new(&self.centroids, self.dim);
        assign_embeddings(x, &c, &mut labels, &mut dists, par)?;
        Ok((labels, dists))
    }
}

impl Quantizer for KMeans {
    fn dim(&self) -> usize {
        self.dim
    }
    fn levels(&self) -> usize {
        1
    }
    fn codebook_size(&self, level: usize) -> usize {
        if level == 0 { self.k } else { 0 }
    }
    fn encode_into(&self, x: Embeddings<'_>, out: &mut [u16], par: Par) -> Result<()> {
        x.expect_dim(self.dim)?;
        expect_len("code buffer length (n × 1)", x.rows(), out.len())?;
        // Block by block into `out`: per-thread scratch only, nothing sized by n.
        let c = CentroidSet::new(&self.centroids, self.dim);
        for_each_block(
            par,
            x.rows(),
            BLOCK_ROWS,
            out,
            1,
            || {
                (
                    Vec::new(),
                    AssignScratch::default(),
                    vec![0u32; BLOCK_ROWS],
                    vec![0f32; BLOCK_ROWS],
                )
            },
            |(buf, scratch, labels, dists), row0, o| {
                let rows = o.len();
                let xb = x.block(row0, row0 + rows, buf)?;
                let (l, dd) = (&mut labels[..rows], &mut dists[..rows]);
                assign_block(AssignPath::Gemm, xb, &c, scratch, l, dd);
                for (t, &lab) in o.iter_mut().zip(l.iter()) {
                    *t = lab as u16;
                }
                Ok(())
            },
        )
    }
    fn decode_into(&self, codes: &Codes, out: &mut [f32], _par: Par) -> Result<()> {
        codes.check_tokens(&[self.k])?;
        expect_len("output length (n × d)", codes.rows() * self.dim, out.len())?;
        let d = self.dim;
        for (o, &t) in out.chunks_exact_mut(d).zip(codes.as_slice()) {
            o.copy_from_slice(&self.centroids[t as usize * d..(t as usize + 1) * d]);
        }
        Ok(())
    }
}

super::fit_by_inherent!(KMeans, KMeansConfig, KMeansReport);

/// Checks a `k × dim` codebook: non-empty, `k <= 65536`, finite.
pub(crate) fn validate_codebook(what: &'static str, c: &[f32], dim: usize) -> Result<usize> {
    if dim == 0 {
        return Err(Error::Empty {
            what: "dimension d",
        });
    }
    if c.is_empty() {
        return Err(Error::Empty { what });
    }
    if !c.len().is_multiple_of(dim) {
        return Err(Error::Shape {
            what,
            expected: c.len().div_ceil(dim) * dim,
            got: c.len(),
        });
    }
    let k = c.len() / dim;
    check_vocab("k", &[k], 1)?;
    crate::data::check_finite(what, c, dim, 0)?;
    Ok(k)
}

/// Nearest-centroid assignment of a whole view, block by block.
pub(crate) fn assign_embeddings(
    x: Embeddings<'_>,
    c: &CentroidSet<'_>,
    labels: &mut [u32],
    dists: &mut [f32],
    par: Par,
) -> Result<()> {
    for_each_block2(
        par,
        x.rows(),
        BLOCK_ROWS,
        labels,
        1,
        dists,
        1,
        || (Vec::new(), AssignScratch::default()),
        |(buf, scratch), row0, l, dd| {
            let xb = x.block(row0, row0 + l.len(), buf)?;
            assign_block(AssignPath::Gemm, xb, c, scratch, l, dd);
            Ok(())
        },
    )
}

/// The training rows, checked finite once: borrowed when all rows of f32
/// data are used, else sampled (sorted indices) and converted. Errors if
/// any row of `x` is non-finite, sampled or not.
pub(crate) fn training_rows<'a>(
    x: Embeddings<'a>,
    m: usize,
    rng: &mut Rng,
) -> Result<FiniteRows<'a>> {
    let n = x.rows();
    if m >= n && x.as_f32().is_some() {
        return FiniteRows::check(x, None);
    }
    let idx = rng.sample_indices(n, m);
    FiniteRows::check(x, Some(&idx))
}

/// Initialisation then Lloyd's algorithm on training rows `x` (`m × d`,
/// finite, `m >= k`), its steps done by `steps`.
pub(crate) fn fit_rows(
    cfg: &KMeansConfig,
    x: &[f32],
    d: usize,
    rng: &mut Rng,
    steps: &mut dyn LloydSteps,
) -> Result<(Vec<f32>, KMeansReport)> {
    let m = x.len() / d;
    let k = cfg.k;
    let centroids = match cfg.init {
        Init::KMeansPlusPlus => seed_pp(x, d, k, rng, cfg.par),
        Init::Random => gather_rows(x, d, &rng.sample_indices(m, k)),
        Init::ProgressiveDim {
            steps: n_steps,
            iters,
        } => progressive::init(cfg, x, d, n_steps, iters, rng, steps)?,
    };
    lloyd::lloyd(cfg, x, d, centroids, cfg.max_iter, rng, steps)
}

// ---- model file (format version 1; docs/FORMAT.md) ----

/// [`KMeans`]'s model-file payload.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct KMeansV1 {
    dim: u64,
    centroids: Vec<f32>,
}

impl Payload for KMeans {
    const KIND: ModelKind = ModelKind::KMeans;
    type V = KMeansV1;
    fn to_payload(&self) -> KMeansV1 {
        KMeansV1 {
            dim: self.dim as u64,
            centroids: self.centroids.clone(),
        }
    }
    fn from_payload(p: KMeansV1) -> Result<Self> {
        let dim = stored_usize(p.dim, "dim")?;
        KMeans::from_centroids(p.centroids, dim).map_err(to_invalid)
    }
}
