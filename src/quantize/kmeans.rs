//! k-means: k-means++ or random init, Lloyd iterations with GEMM assignment,
//! empty-cluster repair, FAISS-style training subsample, balanced mode.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::{Fit, Quantizer, expect_len};
use crate::data::{Codes, Embeddings};
use crate::error::{Error, Result, invalid};
use crate::format::{ModelKind, sealed::Payload, stored_usize, to_invalid};
use crate::kernels::{
    AssignPath, AssignScratch, BLOCK_ROWS, CentroidSet, Simd, TopK, assign_block, assign_rows,
};
use crate::par::{Par, for_each_block};
use crate::rng::Rng;

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
        if self.k == 0 || self.k > 1 << 16 {
            return Err(invalid(
                "k",
                format!("is {}; it must be in 1..=65536 (tokens are u16)", self.k),
            ));
        }
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
        config.validate()?;
        config.check_rows(x.rows())?;
        let mut rng = Rng::new(config.seed, 0);
        let train = training_rows(x, config.train_size(x.rows()), &mut rng)?;
        let (centroids, report) = fit_rows(config, &train, x.dim(), &mut rng);
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
        let err = std::sync::Mutex::new(None);
        let mut unit = vec![(); x.rows()];
        for_each_block(
            par,
            x.rows(),
            BLOCK_ROWS,
            out,
            1,
            &mut unit,
            1,
            || {
                (
                    Vec::new(),
                    AssignScratch::default(),
                    vec![0u32; BLOCK_ROWS],
                    vec![0f32; BLOCK_ROWS],
                )
            },
            |(buf, scratch, labels, dists), row0, o, _| {
                let rows = o.len();
                match x.block(row0, row0 + rows, buf) {
                    Ok(xb) => {
                        let (l, dd) = (&mut labels[..rows], &mut dists[..rows]);
                        assign_block(AssignPath::Gemm, xb, &c, scratch, l, dd);
                        for (t, &lab) in o.iter_mut().zip(l.iter()) {
                            *t = lab as u16;
                        }
                    }
                    Err(e) => keep_first_error(&err, row0, e),
                }
            },
        );
        match err.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
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

impl Fit for KMeans {
    type Config = KMeansConfig;
    type Report = KMeansReport;
    fn fit(config: &KMeansConfig, x: Embeddings<'_>) -> Result<(Self, KMeansReport)> {
        KMeans::fit(config, x)
    }
}

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
    if k > 1 << 16 {
        return Err(invalid(
            "k",
            format!("is {k}; at most 65536 (tokens are u16)"),
        ));
    }
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
    let err = std::sync::Mutex::new(None::<(usize, Error)>);
    for_each_block(
        par,
        x.rows(),
        BLOCK_ROWS,
        labels,
        1,
        dists,
        1,
        || (Vec::new(), AssignScratch::default()),
        |(buf, scratch), row0, l, dd| match x.block(row0, row0 + l.len(), buf) {
            Ok(xb) => assign_block(AssignPath::Gemm, xb, c, scratch, l, dd),
            Err(e) => keep_first_error(&err, row0, e),
        },
    );
    match err.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some((_, e)) => Err(e),
        None => Ok(()),
    }
}

/// Keeps the error of the lowest block, so the reported row does not depend
/// on thread timing.
pub(crate) fn keep_first_error(
    slot: &std::sync::Mutex<Option<(usize, Error)>>,
    row0: usize,
    e: Error,
) {
    let mut g = slot.lock().unwrap_or_else(|p| p.into_inner());
    if g.as_ref().is_none_or(|(r, _)| row0 < *r) {
        *g = Some((row0, e));
    }
}

/// The training rows as one f32 buffer: borrowed when all rows of f32 data
/// are used, else sampled (sorted indices) and converted. Errors if any row
/// of `x` is non-finite.
pub(crate) fn training_rows<'a>(
    x: Embeddings<'a>,
    m: usize,
    rng: &mut Rng,
) -> Result<Cow<'a, [f32]>> {
    // Every row is checked, sampled or not, so the error never depends on
    // the sample.
    x.check_all_finite()?;
    let n = x.rows();
    if m >= n
        && let Some(s) = x.as_f32()
    {
        return Ok(Cow::Borrowed(s));
    }
    let idx = rng.sample_indices(n, m);
    Ok(Cow::Owned(x.gather(&idx)))
}

/// Initialisation then Lloyd's algorithm on training rows `x` (`m × d`,
/// finite, `m >= k`).
pub(crate) fn fit_rows(
    cfg: &KMeansConfig,
    x: &[f32],
    d: usize,
    rng: &mut Rng,
) -> (Vec<f32>, KMeansReport) {
    let m = x.len() / d;
    let k = cfg.k;
    let centroids = match cfg.init {
        Init::KMeansPlusPlus => seed_pp(x, d, k, rng, cfg.par),
        Init::Random => gather_rows(x, d, &rng.sample_indices(m, k)),
        Init::ProgressiveDim { steps, iters } => {
            super::progressive::init(cfg, x, d, steps, iters, rng)
        }
    };
    lloyd(cfg, x, d, centroids, cfg.max_iter, rng)
}

/// k-means++ seeding on at most `PP_POINTS_PER_CENTROID · k` sampled rows.
pub(crate) fn seed_pp(x: &[f32], d: usize, k: usize, rng: &mut Rng, par: Par) -> Vec<f32> {
    let m = x.len() / d;
    let cap = k.saturating_mul(PP_POINTS_PER_CENTROID);
    if m > cap {
        let idx = rng.sample_indices(m, cap);
        kmeans_pp(&gather_rows(x, d, &idx), d, k, rng, par)
    } else {
        kmeans_pp(x, d, k, rng, par)
    }
}

/// The rows `idx` of `x` (`· × d`), in that order.
pub(crate) fn gather_rows(x: &[f32], d: usize, idx: &[usize]) -> Vec<f32> {
    idx.iter()
        .flat_map(|&i| x[i * d..(i + 1) * d].iter().copied())
        .collect()
}

/// `max_iter` Lloyd iterations (fewer on convergence) from `centroids`.
pub(crate) fn lloyd(
    cfg: &KMeansConfig,
    x: &[f32],
    d: usize,
    mut centroids: Vec<f32>,
    max_iter: usize,
    rng: &mut Rng,
) -> (Vec<f32>, KMeansReport) {
    let m = x.len() / d;
    let k = cfg.k;
    let mut labels = vec![0u32; m];
    let mut dists = vec![0f32; m];
    let mut history = Vec::with_capacity(max_iter);
    let mut converged = false;
    let mut repairs = 0;
    let mut iterations = 0;
    for it in 0..max_iter {
        iterations = it + 1;
        {
            let c = CentroidSet::new(&centroids, d);
            match cfg.assignment {
                Assignment::Nearest => {
                    assign_rows(AssignPath::Gemm, x, &c, &mut labels, &mut dists, cfg.par)
                }
                Assignment::Balanced => balanced_assign(x, &c, &mut labels, &mut dists, cfg.par),
            }
        }
        let inertia: f64 = dists.iter().map(|&v| v as f64).sum();
        if let Some(&prev) = history.last() {
            let prev: f64 = prev;
            if prev - inertia <= cfg.tol * prev {
                converged = true;
            }
        }
        history.push(inertia);
        let mut sizes = update_centroids(x, d, k, &labels, &mut centroids, cfg.par);
        repairs += repair_empty(&mut centroids, &mut sizes, d, rng);
        if converged {
            break;
        }
    }
    // Sizes reported are those of the last assignment (before repair splits).
    let mut last_sizes = vec![0usize; k];
    for &l in &labels {
        last_sizes[l as usize] += 1;
    }
    let report = KMeansReport {
        iterations,
        converged,
        inertia: *history.last().unwrap_or(&0.0),
        inertia_history: history,
        cluster_sizes: last_sizes,
        n_train: m,
        empty_cluster_repairs: repairs,
    };
    (centroids, report)
}

/// Training points per centroid that k-means++ seeding looks at. Seeding
/// makes `k` sequential passes; over a full 65k × 256 training set each pass
/// streams 64 MB from memory (1.2 s per 256-code level on 2 cores), over a
/// `32·k` sample it stays in cache. Measured on 200k × 256 synthetic data,
/// 3 × 256 codes: same or lower final MSE than seeding on every point.
const PP_POINTS_PER_CENTROID: usize = 32;

/// k-means++ seeding.
fn kmeans_pp(x: &[f32], d: usize, k: usize, rng: &mut Rng, par: Par) -> Vec<f32> {
    let m = x.len() / d;
    let simd = Simd::detect();
    let mut centroids = Vec::with_capacity(k * d);
    let first = rng.below(m);
    centroids.extend_from_slice(&x[first * d..(first + 1) * d]);
    let mut dmin = vec![f32::INFINITY; m];
    let mut unit = vec![(); m];
    for t in 1..=k {
        let c = &centroids[(t - 1) * d..t * d];
        for_each_block(
            par,
            m,
            4096,
            &mut dmin,
            1,
            &mut unit,
            1,
            || (),
            |_, row0, dm, _| {
                for (i, v) in dm.iter_mut().enumerate() {
                    let r = row0 + i;
                    let dist = simd.l2_sq(&x[r * d..(r + 1) * d], c);
                    if dist < *v {
                        *v = dist;
                    }
                }
            },
        );
        if t == k {
            break;
        }
        let total: f64 = dmin.iter().map(|&v| v as f64).sum();
        let pick = if total > 0.0 {
            let target = rng.next_f64() * total;
            let mut acc = 0.0f64;
            let mut pick = m - 1;
            for (i, &v) in dmin.iter().enumerate() {
                acc += v as f64;
                if acc > target && v > 0.0 {
                    pick = i;
                    break;
                }
            }
            pick
        } else {
            rng.below(m)
        };
        centroids.extend_from_slice(&x[pick * d..(pick + 1) * d]);
    }
    centroids
}

/// Recomputes centroids as member means. Rows are streamed in order into
/// per-chunk f64 partial sums (at most 8 chunks and 64 MiB), then the
/// partials are added in chunk order. Streaming is 1.8× faster than
/// gathering each cluster's rows (65 536 × 256, k = 256: 5.2 vs 9.3 ms on 2
/// threads). The chunking depends only on `(m, k, d)`, so the result does
/// not depend on the thread count. Empty clusters keep their old centroid.
/// Returns cluster sizes.
fn update_centroids(
    x: &[f32],
    d: usize,
    k: usize,
    labels: &[u32],
    centroids: &mut [f32],
    par: Par,
) -> Vec<usize> {
    const PARTIAL_BUDGET: usize = 64 << 20;
    let m = labels.len();
    let max_chunks = (PARTIAL_BUDGET / (k * d * 8).max(1)).clamp(1, 8);
    let chunk = m.div_ceil(max_chunks).max(4096);
    let n_chunks = m.div_ceil(chunk);
    let mut partial = vec![0f64; n_chunks * k * d];
    let mut counts = vec![0usize; n_chunks * k];
    for_each_block(
        par,
        n_chunks,
        1,
        &mut partial,
        k * d,
        &mut counts,
        k,
        || (),
        |_, c, p, cnt| {
            for i in c * chunk..((c + 1) * chunk).min(m) {
                let l = labels[i] as usize;
                cnt[l] += 1;
                for (a, &v) in p[l * d..(l + 1) * d].iter_mut().zip(&x[i * d..(i + 1) * d]) {
                    *a += v as f64;
                }
            }
        },
    );
    let mut sizes = vec![0usize; k];
    for cnt in counts.chunks_exact(k) {
        for (s, &v) in sizes.iter_mut().zip(cnt) {
            *s += v;
        }
    }
    let mut unit = vec![(); k];
    for_each_block(
        par,
        k,
        16,
        centroids,
        d,
        &mut unit,
        1,
        || (),
        |_, j0, cs, _| {
            for (jj, cv) in cs.chunks_exact_mut(d).enumerate() {
                let j = j0 + jj;
                if sizes[j] == 0 {
                    continue;
                }
                let inv = 1.0 / sizes[j] as f64;
                for (t, o) in cv.iter_mut().enumerate() {
                    let sum: f64 = (0..n_chunks).map(|c| partial[(c * k + j) * d + t]).sum();
                    *o = (sum * inv) as f32;
                }
            }
        },
    );
    sizes
}

/// Re-seeds each empty cluster by splitting the largest one: its centroid
/// `c` becomes `c − δ` and the empty one `c + δ`, with a small random-sign
/// `δ`. Returns the number of repairs.
fn repair_empty(centroids: &mut [f32], sizes: &mut [usize], d: usize, rng: &mut Rng) -> usize {
    const EPS: f32 = 1.0 / 1024.0;
    let k = sizes.len();
    let mut repairs = 0;
    for j in 0..k {
        if sizes[j] != 0 {
            continue;
        }
        let mut big = 0;
        for (b, &s) in sizes.iter().enumerate() {
            if s > sizes[big] {
                big = b;
            }
        }
        if sizes[big] < 2 {
            break;
        }
        let cb: Vec<f32> = centroids[big * d..(big + 1) * d].to_vec();
        let rms = (cb.iter().map(|v| v * v).sum::<f32>() / d as f32).sqrt();
        let floor = 1e-3 * rms + 1e-12;
        for (t, &v) in cb.iter().enumerate() {
            let delta = EPS * v.abs().max(floor);
            let s = if rng.next_u64() & 1 == 0 { 1.0 } else { -1.0 };
            centroids[j * d + t] = v + s * delta;
            centroids[big * d + t] = v - s * delta;
        }
        sizes[j] = sizes[big] / 2;
        sizes[big] -= sizes[j];
        repairs += 1;
    }
    repairs
}

/// Candidates kept per point for balanced assignment before falling back to
/// a full scan.
const BALANCED_CANDIDATES: usize = 16;

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct HeapKey(OrdF32, u32, u32, u32);

#[derive(Clone, Copy, PartialEq)]
struct OrdF32(f32);
impl Eq for OrdF32 {}
impl PartialOrd for OrdF32 {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for OrdF32 {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&o.0)
    }
}

/// Balanced assignment: every cluster gets ⌊m/k⌋ or ⌈m/k⌉ points. Greedy by
/// increasing distance over (point, candidate) pairs; ties by point, then
/// cluster index.
pub(crate) fn balanced_assign(
    x: &[f32],
    c: &CentroidSet<'_>,
    labels: &mut [u32],
    dists: &mut [f32],
    par: Par,
) {
    let (d, k) = (c.d, c.k);
    let m = x.len() / d;
    let cand_n = BALANCED_CANDIDATES.min(k);
    // Top candidates per point, ascending distance.
    let mut cand = vec![(0f32, 0u32); m * cand_n];
    let mut unit = vec![(); m];
    for_each_block(
        par,
        m,
        BLOCK_ROWS,
        &mut cand,
        cand_n,
        &mut unit,
        1,
        || (Vec::new(), TopK::new(cand_n)),
        |(scratch, top), row0, cs, _| {
            let rows = cs.len() / cand_n;
            let xb = &x[row0 * d..(row0 + rows) * d];
            crate::kernels::neg2_dots_pub(xb, c, scratch);
            let simd = Simd::detect();
            for r in 0..rows {
                let xr = &xb[r * d..(r + 1) * d];
                let xn = simd.dot(xr, xr);
                top.clear();
                for (j, (&g, &nj)) in scratch[r * k..(r + 1) * k].iter().zip(&c.norms).enumerate() {
                    let v = g + nj;
                    if v < top.threshold() {
                        top.push(v, j as u32);
                    }
                }
                for (o, &(v, j)) in cs[r * cand_n..(r + 1) * cand_n].iter_mut().zip(top.items()) {
                    *o = ((v + xn).max(0.0), j);
                }
            }
        },
    );
    let q = m / k;
    let r = m % k;
    let mut size = vec![0usize; k];
    let mut n_big = 0usize;
    let full = |s: usize, n_big: usize| s == q + 1 || (s == q && n_big == r);
    let mut done = vec![false; m];
    let mut heap: BinaryHeap<Reverse<HeapKey>> = (0..m)
        .map(|i| {
            let (v, j) = cand[i * cand_n];
            Reverse(HeapKey(OrdF32(v), i as u32, j, 0))
        })
        .collect();
    let simd = Simd::detect();
    while let Some(Reverse(HeapKey(OrdF32(v), i, j, rank))) = heap.pop() {
        let (iu, ju) = (i as usize, j as usize);
        if done[iu] {
            continue;
        }
        if !full(size[ju], n_big) {
            done[iu] = true;
            labels[iu] = j;
            dists[iu] = v;
            size[ju] += 1;
            if size[ju] == q + 1 {
                n_big += 1;
            }
            continue;
        }
        let next = rank as usize + 1;
        if next < cand_n {
            let (v2, j2) = cand[iu * cand_n + next];
            heap.push(Reverse(HeapKey(OrdF32(v2), i, j2, next as u32)));
        } else {
            // Candidates exhausted: nearest cluster that still has room.
            let xr = &x[iu * d..(iu + 1) * d];
            let mut best = (f32::INFINITY, u32::MAX);
            for (jj, cj) in c.data.chunks_exact(d).enumerate() {
                if full(size[jj], n_big) {
                    continue;
                }
                let dv = simd.l2_sq(xr, cj);
                if dv < best.0 || best.1 == u32::MAX {
                    best = (dv, jj as u32);
                }
            }
            heap.push(Reverse(HeapKey(OrdF32(best.0), i, best.1, cand_n as u32)));
        }
    }
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
