//! Product quantization (PQ) and optimized product quantization (OPQ): the
//! embedding is cut into `M` equal sub-spaces, each with its own `k`-code
//! k-means, so an ID is `M` tokens (RPG's OPQ IDs use 16–64, ActionPiece
//! 4 × 256). OPQ first rotates the embeddings by a learned orthogonal
//! matrix, alternating as FAISS's `OPQMatrix` does: fix the rotation and
//! train the sub-space codebooks, then fix the codes and set the rotation
//! to the orthogonal Procrustes solution.

use super::kmeans::{
    CpuSteps, Init, KMeansConfig, fit_rows, lloyd, training_rows, validate_codebook,
};
use super::{Quantizer, expect_len};
use crate::data::{Codes, Embeddings};
use crate::error::{Error, Result, invalid};
use crate::format::{ModelKind, invalid_payload, sealed::Payload, to_invalid};
use crate::kernels::{
    AssignScratch, BLOCK_ROWS, CentroidSet, cross_products, dots_packed, pack_panels_into,
    symmetric_eigen, transpose_into,
};
use crate::par::{Par, for_each_block};
use crate::rng::Rng;

/// Product-quantizer settings.
///
/// ```
/// use semid::quantize::PqConfig;
/// let pq = PqConfig::pq(16, 256);
/// assert_eq!((pq.m, pq.k, pq.opq_iterations), (16, 256, 0));
/// let opq = PqConfig::opq(4, 256).seed(7);
/// assert!(opq.opq_iterations > 0 && opq.validate().is_ok());
/// ```
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PqConfig {
    /// Sub-spaces `M`, the tokens per ID (1..=1024). It must divide the
    /// embedding width; a width it does not divide is an error at fit time
    /// (there is no padding).
    pub m: usize,
    /// Codes per sub-space (1..=65536, at most the number of rows).
    pub k: usize,
    /// Rotation / codebook alternations of OPQ; 0 trains plain PQ. Each
    /// alternation trains the codebooks on the rotated rows (the first from
    /// scratch with `kmeans.max_iter` iterations, later ones from the last
    /// codebooks with `opq_kmeans_iterations`), encodes, and replaces the
    /// rotation by the orthogonal matrix that best maps the rows onto their
    /// reconstructions. FAISS's `OPQMatrix` runs 50 with 4 k-means
    /// iterations each.
    pub opq_iterations: usize,
    /// Lloyd iterations of the codebooks in every OPQ alternation after the
    /// first (FAISS: 4).
    pub opq_kmeans_iterations: usize,
    /// OPQ stops alternating once an alternation lowers the training MSE by
    /// at most `opq_tol` × the previous alternation's, and trains the final
    /// codebooks on the rotation it has ([`PqConfig::OPQ_TOL`]; 0 runs all
    /// `opq_iterations`, as FAISS does).
    #[cfg_attr(feature = "serde", serde(default = "PqConfig::opq_tol_default"))]
    pub opq_tol: f64,
    /// The k-means settings of every sub-space (sub-space `j` uses seed
    /// `kmeans.seed + j`); its own `k` is not read. The training sample is
    /// `k × kmeans.max_points_per_centroid` rows (FAISS: 256 per centroid).
    pub kmeans: KMeansConfig,
}

impl PqConfig {
    /// Plain PQ: `m` sub-spaces of `k` codes, no rotation.
    #[must_use]
    pub fn pq(m: usize, k: usize) -> Self {
        PqConfig {
            m,
            k,
            opq_iterations: 0,
            opq_kmeans_iterations: 4,
            opq_tol: Self::OPQ_TOL,
            kmeans: Self::sub_defaults(k),
        }
    }

    /// OPQ: `m` sub-spaces of `k` codes after a learned rotation, with
    /// [`PqConfig::OPQ_ITERATIONS`] alternations.
    #[must_use]
    pub fn opq(m: usize, k: usize) -> Self {
        PqConfig {
            opq_iterations: Self::OPQ_ITERATIONS,
            ..PqConfig::pq(m, k)
        }
    }

    /// The default k-means of each sub-space: FAISS `ProductQuantizer`'s
    /// (`Init::Random`, 25 iterations), with `tol` 1e-4. Sub-spaces are
    /// narrow (`d/M`, 12–96 wide), where semid's progressive start gains
    /// 0.3% of MSE for 2–3× the fit time (`docs/quantizers.md`).
    #[must_use]
    pub fn sub_defaults(k: usize) -> KMeansConfig {
        KMeansConfig::new(k).init(Init::Random).max_iter(25)
    }

    /// OPQ's most alternations, FAISS `OPQMatrix`'s 50. On
    /// `pypi_text_16k` with 16 × 256, 20 alternations left the error at
    /// 0.3524, above FAISS's 0.3484; 50 give 0.3418 (`docs/quantizers.md`).
    pub const OPQ_ITERATIONS: usize = 50;

    /// OPQ's default [`PqConfig::opq_tol`]: stop when an alternation gains
    /// less than 0.1% of the training MSE. On `pypi_text_16k` this stops 4 ×
    /// 256 after about half of the 50 alternations and 16 × 256 after about
    /// two thirds, both below FAISS's error after its 50
    /// (`docs/quantizers.md`).
    pub const OPQ_TOL: f64 = 1e-3;

    #[cfg(feature = "serde")]
    fn opq_tol_default() -> f64 {
        Self::OPQ_TOL
    }

    /// Seed of the sub-space k-means and of the starting rotation.
    #[must_use]
    pub fn seed(mut self, v: u64) -> Self {
        self.kmeans.seed = v;
        self
    }

    /// Parallelism (results do not depend on it).
    #[must_use]
    pub fn par(mut self, v: Par) -> Self {
        self.kmeans.par = v;
        self
    }

    /// Checks every field that does not depend on the data.
    pub fn validate(&self) -> Result<()> {
        if self.m == 0 || self.m > 1024 {
            return Err(invalid(
                "m",
                format!("is {}; use 1..=1024 sub-spaces", self.m),
            ));
        }
        if self.opq_iterations > 0 && self.opq_kmeans_iterations == 0 {
            return Err(invalid(
                "opq_kmeans_iterations",
                "is 0; OPQ needs at least 1 k-means iteration per alternation",
            ));
        }
        if !self.opq_tol.is_finite() || self.opq_tol < 0.0 {
            return Err(invalid(
                "opq_tol",
                format!("is {}; it must be finite and >= 0", self.opq_tol),
            ));
        }
        if self.opq_iterations > 10_000 {
            return Err(invalid(
                "opq_iterations",
                format!("is {}; at most 10000", self.opq_iterations),
            ));
        }
        self.sub_kmeans().validate()
    }

    fn sub_kmeans(&self) -> KMeansConfig {
        KMeansConfig {
            k: self.k,
            ..self.kmeans.clone()
        }
    }
}

/// A fitted product quantizer: an optional `d × d` rotation, then `M`
/// codebooks of `k × d/M`.
///
/// ```
/// use semid::quantize::{PqConfig, ProductQuantizer};
/// use semid::{Embeddings, Quantizer, synthetic};
/// let data = synthetic::hierarchical_mixture(&synthetic::MixtureConfig {
///     n: 2000, dim: 16, ..Default::default() });
/// let x = Embeddings::new(&data, 16)?;
/// let (pq, _) = ProductQuantizer::fit(&PqConfig::opq(4, 16).seed(1), x)?;
/// let codes = pq.encode(x)?;
/// assert_eq!((codes.rows(), codes.levels()), (2000, 4));
/// assert!(pq.rotation().is_some());
/// # Ok::<(), semid::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ProductQuantizer {
    dim: usize,
    m: usize,
    k: usize,
    /// `d × d` row-major, orthogonal: the rotated row is `y = R x`.
    rotation: Option<Vec<f32>>,
    /// `m × k × (d/m)`, row-major.
    codebooks: Vec<f32>,
}

/// What a [`ProductQuantizer`] fit did.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PqReport {
    /// Rows in the training sample.
    pub n_train: usize,
    /// Training MSE (summed over dimensions) after each OPQ alternation
    /// (empty for plain PQ).
    pub opq_mse: Vec<f64>,
    /// Training MSE of the final model.
    pub mse: f64,
}

impl ProductQuantizer {
    /// Fits `config.m` sub-space codebooks (and, for OPQ, a rotation) to
    /// `x` (`n × d`).
    ///
    /// Errors: an invalid config, `m` not dividing `d`, `k > n`, non-finite
    /// data.
    pub fn fit(config: &PqConfig, x: Embeddings<'_>) -> Result<(ProductQuantizer, PqReport)> {
        config.validate()?;
        let d = x.dim();
        let m = config.m;
        if !d.is_multiple_of(m) || m > d {
            let divisors: Vec<usize> = (1..=d).filter(|v| d.is_multiple_of(*v)).collect();
            return Err(invalid(
                "m",
                format!(
                    "is {m}, which does not divide the embedding width {d}; use one of {divisors:?} (semid does not pad)"
                ),
            ));
        }
        let km = config.sub_kmeans();
        km.check_rows(x.rows())?;
        let mut rng = Rng::new(km.seed, 0);
        let train = training_rows(x, km.train_size(x.rows()), &mut rng)?;
        let rows = train.as_slice();
        let n = rows.len() / d;
        let par = km.par;
        let mut model = ProductQuantizer {
            dim: d,
            m,
            k: config.k,
            rotation: None,
            codebooks: Vec::new(),
        };
        let mut opq_mse = Vec::new();
        if config.opq_iterations == 0 {
            model.codebooks = train_codebooks(config, rows, d, None, None)?;
        } else {
            let mut rot = random_rotation(d, &mut Rng::new(km.seed, 31));
            let mut y = vec![0f32; rows.len()];
            let mut recon = vec![0f32; rows.len()];
            let mut codes = vec![0u16; n * m];
            let mut books: Option<Vec<f32>> = None;
            for it in 0..config.opq_iterations {
                rotate(rows, d, &rot, &mut y, par);
                let iters = if it == 0 {
                    None
                } else {
                    Some(config.opq_kmeans_iterations)
                };
                let cb = train_codebooks(config, &y, d, books.as_deref(), iters)?;
                model.codebooks = cb;
                model.encode_rotated(&model.sets(), &y, &mut codes, par);
                model.decode_rotated(&codes, &mut recon);
                let err = sq_err(&y, &recon, d);
                let stalled = opq_mse
                    .last()
                    .is_some_and(|&prev: &f64| prev - err <= config.opq_tol * prev);
                opq_mse.push(err);
                if stalled {
                    // Keep this alternation's rotation and codebooks.
                    books = Some(std::mem::take(&mut model.codebooks));
                    break;
                }
                let cross = if m <= CODE_SUM_MAX_M {
                    code_cross(rows, &codes, &model.codebooks, m, config.k, d, par)
                } else {
                    cross_products(rows, &recon, d, par)
                };
                rot = procrustes(cross, d, par);
                books = Some(std::mem::take(&mut model.codebooks));
            }
            // The codebooks of the final rotation.
            rotate(rows, d, &rot, &mut y, par);
            model.codebooks = train_codebooks(
                config,
                &y,
                d,
                books.as_deref(),
                Some(config.kmeans.max_iter),
            )?;
            model.rotation = Some(rot);
        }
        let mut codes = vec![0u16; n * m];
        let mut recon = vec![0f32; rows.len()];
        let mse = match &model.rotation {
            Some(rot) => {
                let mut y = vec![0f32; rows.len()];
                rotate(rows, d, rot, &mut y, par);
                model.encode_rotated(&model.sets(), &y, &mut codes, par);
                model.decode_rotated(&codes, &mut recon);
                sq_err(&y, &recon, d)
            }
            None => {
                model.encode_rotated(&model.sets(), rows, &mut codes, par);
                model.decode_rotated(&codes, &mut recon);
                sq_err(rows, &recon, d)
            }
        };
        Ok((
            model,
            PqReport {
                n_train: n,
                opq_mse,
                mse,
            },
        ))
    }

    /// Builds a model from its parts: `codebooks` of `m × k × (dim/m)`
    /// values and an optional `dim × dim` rotation (row-major, `y = R x`;
    /// checked orthogonal to 1e-3).
    pub fn from_parts(
        dim: usize,
        m: usize,
        codebooks: Vec<f32>,
        rotation: Option<Vec<f32>>,
    ) -> Result<ProductQuantizer> {
        if m == 0 || m > 1024 {
            return Err(invalid("m", format!("is {m}; use 1..=1024 sub-spaces")));
        }
        if dim == 0 || !dim.is_multiple_of(m) {
            return Err(invalid(
                "m",
                format!("is {m}, which does not divide the embedding width {dim}"),
            ));
        }
        let ds = dim / m;
        let rows = validate_codebook("codebooks", &codebooks, ds)?;
        let _ = rows;
        let total = codebooks.len() / ds;
        if !total.is_multiple_of(m) {
            return Err(Error::Shape {
                what: "codebook values (m × k × dim/m)",
                expected: total.div_ceil(m) * m * ds,
                got: codebooks.len(),
            });
        }
        let k = total / m;
        crate::data::check_vocab("k", &[k], 1)?;
        if let Some(r) = &rotation {
            expect_len("rotation values (dim × dim)", dim * dim, r.len())?;
            crate::data::check_finite("rotation", r, dim, 0)?;
            check_orthogonal(r, dim)?;
        }
        Ok(ProductQuantizer {
            dim,
            m,
            k,
            rotation,
            codebooks,
        })
    }

    /// Sub-spaces `M` (tokens per ID).
    #[must_use]
    pub fn m(&self) -> usize {
        self.m
    }

    /// The learned rotation (`d × d` row-major, `y = R x`), for OPQ.
    #[must_use]
    pub fn rotation(&self) -> Option<&[f32]> {
        self.rotation.as_deref()
    }

    /// Sub-space `j`'s codebook (`k × d/M`, row-major).
    ///
    /// # Panics
    /// If `j >= m()`, like slice indexing.
    #[must_use]
    pub fn codebook(&self, j: usize) -> &[f32] {
        let s = self.k * self.dim / self.m;
        &self.codebooks[j * s..(j + 1) * s]
    }

    /// The sub-space codebooks packed for the assignment kernel.
    fn sets(&self) -> Vec<CentroidSet<'_>> {
        let ds = self.dim / self.m;
        (0..self.m)
            .map(|j| CentroidSet::new(self.codebook(j), ds))
            .collect()
    }

    /// Codes of rotated rows `y` (`rows × d`) into `out` (`rows × M`), in
    /// parallel over row blocks, with the packed `sets` of
    /// [`ProductQuantizer::sets`].
    fn encode_rotated(&self, sets: &[CentroidSet<'_>], y: &[f32], out: &mut [u16], par: Par) {
        let (d, m) = (self.dim, self.m);
        let ds = d / m;
        for_each_block(
            par,
            y.len() / d,
            BLOCK_ROWS,
            out,
            m,
            SubScratch::default,
            |s, row0, codes| {
                let rows = codes.len() / m;
                let yb = &y[row0 * d..(row0 + rows) * d];
                s.labels.resize(rows, 0);
                s.vals.resize(rows, 0.0);
                for (j, set) in sets.iter().enumerate() {
                    s.sub.clear();
                    for r in yb.chunks_exact(d) {
                        s.sub.extend_from_slice(&r[j * ds..(j + 1) * ds]);
                    }
                    set.nearest_into(&s.sub, &mut s.labels, &mut s.vals, &mut s.nearest);
                    for (c, &l) in codes.chunks_exact_mut(m).zip(&s.labels) {
                        // A label is below k ≤ 65 536 (validated).
                        c[j] = l as u16;
                    }
                }
            },
        );
    }

    /// Rotated reconstructions of `codes` (`rows × M`, valid) into `out`.
    fn decode_rotated(&self, codes: &[u16], out: &mut [f32]) {
        let (d, m) = (self.dim, self.m);
        let ds = d / m;
        for (o, c) in out.chunks_exact_mut(d).zip(codes.chunks_exact(m)) {
            for (j, &t) in c.iter().enumerate() {
                let cw = &self.codebook(j)[t as usize * ds..(t as usize + 1) * ds];
                o[j * ds..(j + 1) * ds].copy_from_slice(cw);
            }
        }
    }
}

#[derive(Default)]
struct SubScratch {
    sub: Vec<f32>,
    labels: Vec<u32>,
    vals: Vec<f32>,
    nearest: AssignScratch,
}

/// The `M` sub-space codebooks of rows `y` (`n × d`): k-means per
/// sub-space, from scratch (`start` = None) or from `start`'s codebooks
/// with `iters` Lloyd iterations.
fn train_codebooks(
    config: &PqConfig,
    y: &[f32],
    d: usize,
    start: Option<&[f32]>,
    iters: Option<usize>,
) -> Result<Vec<f32>> {
    let m = config.m;
    let ds = d / m;
    let km = config.sub_kmeans();
    let mut out = Vec::with_capacity(m * config.k * ds);
    let mut sub = Vec::with_capacity(y.len() / m);
    let mut steps = CpuSteps::new(km.par);
    for j in 0..m {
        sub.clear();
        for r in y.chunks_exact(d) {
            sub.extend_from_slice(&r[j * ds..(j + 1) * ds]);
        }
        let mut rng = Rng::new(km.seed.wrapping_add(j as u64), 2);
        let cents = match start {
            Some(prev) => {
                let s = config.k * ds;
                let init = prev[j * s..(j + 1) * s].to_vec();
                let max_iter = iters.unwrap_or(km.max_iter);
                lloyd(&km, &sub, ds, init, max_iter, &mut rng, &mut steps)?.0
            }
            None => fit_rows(&km, &sub, ds, &mut rng, &mut steps)?.0,
        };
        out.extend_from_slice(&cents);
    }
    Ok(out)
}

/// `y = x Rᵀ` for the rows of `x` (`n × d`), in parallel over row blocks.
fn rotate(x: &[f32], d: usize, rot: &[f32], y: &mut [f32], par: Par) {
    let mut packed = Vec::new();
    pack_panels_into(rot, d, &mut packed);
    for_each_block(
        par,
        x.len() / d,
        BLOCK_ROWS,
        y,
        d,
        || (),
        |_, row0, yb| {
            let rows = yb.len() / d;
            dots_packed(&x[row0 * d..(row0 + rows) * d], d, &packed, d, 1.0, yb);
        },
    );
}

/// `x = y R` (the inverse rotation) for the rows of `y`.
fn unrotate(y: &[f32], d: usize, rot: &[f32], x: &mut [f32], par: Par) {
    rotate(y, d, &transpose(rot, d), x, par);
}

fn transpose(a: &[f32], d: usize) -> Vec<f32> {
    let mut t = Vec::new();
    transpose_into(a, d, d, &mut t);
    t
}

/// Mean over rows of the squared error between `a` and `b` (`n × d`).
fn sq_err(a: &[f32], b: &[f32], d: usize) -> f64 {
    let n = a.len() / d;
    let mut err = 0f64;
    for (ra, rb) in a.chunks_exact(d).zip(b.chunks_exact(d)) {
        err += ra
            .iter()
            .zip(rb)
            .map(|(&u, &v)| ((u - v) as f64) * ((u - v) as f64))
            .sum::<f64>();
    }
    err / n.max(1) as f64
}

/// A seeded random orthogonal `d × d` matrix: Gaussian rows, orthonormalised
/// by modified Gram-Schmidt in f64 (FAISS starts OPQ from a random
/// rotation too).
fn random_rotation(d: usize, rng: &mut Rng) -> Vec<f32> {
    let mut q: Vec<f64> = (0..d * d).map(|_| rng.normal()).collect();
    gram_schmidt(&mut q, d);
    q.iter().map(|&v| v as f32).collect()
}

/// The rotation `R` (orthogonal, `y = R x`) that minimises
/// `Σ ‖R x_r − ŷ_r‖²`, given `c64 = C = Σ x_r ŷ_rᵀ = U Σ Vᵀ`: `Rᵀ = U Vᵀ`,
/// the polar factor `C (CᵀC)^(−1/2)`, from the eigendecomposition of `CᵀC`
/// (f64, semid's solver). The products run in the crate's GEMM. Directions
/// with an eigenvalue at or below [`NULL_EIGENVALUE`] of the largest
/// (rank-deficient data) are completed by [`complete_null_columns`].
fn procrustes(c64: Vec<f64>, d: usize, par: Par) -> Vec<f32> {
    let c: Vec<f32> = c64.iter().map(|&v| v as f32).collect();
    // CᵀC in f64: its small eigenvalues are squares of small singular
    // values, which f32 products lose (the rotation then is not orthogonal).
    // The upper triangle (b ≥ a), then mirrored: the same sums in the same
    // order as the full product, for half the work.
    let mut ctc = vec![0f64; d * d];
    for row in c64.chunks_exact(d) {
        for (a, &ca) in row.iter().enumerate() {
            let out = &mut ctc[a * d + a..(a + 1) * d];
            for (o, &cb) in out.iter_mut().zip(&row[a..]) {
                *o += ca * cb;
            }
        }
    }
    for a in 0..d {
        for b in 0..a {
            ctc[a * d + b] = ctc[b * d + a];
        }
    }
    let mut packed = Vec::new();
    let Some(vals) = symmetric_eigen(&mut ctc, d) else {
        // No decomposition: keep the identity (no rotation learned).
        let mut id = vec![0f32; d * d];
        for i in 0..d {
            id[i * d + i] = 1.0;
        }
        return id;
    };
    let top = vals.iter().copied().fold(0f64, f64::max);
    // Row `col` of `ctc` is eigenvector `col`.
    let v: Vec<f32> = ctc.iter().map(|&e| e as f32).collect();
    // W = C V Λ^(−1/2): entry (a, col) is row a of C dotted with v_col.
    let mut w = vec![0f32; d * d];
    pack_panels_into(&v, d, &mut packed);
    square_product(&c, &packed, d, &mut w, par);
    let kept = |lam: f64| lam > top * NULL_EIGENVALUE;
    for row in w.chunks_exact_mut(d) {
        for (o, &lam) in row.iter_mut().zip(&vals) {
            *o = if kept(lam) {
                (*o as f64 / lam.sqrt()) as f32
            } else {
                0.0
            };
        }
    }
    complete_null_columns(&mut w, &v, &vals, kept, d);
    // Rᵀ = W Vᵀ: entry (a, i) is row a of W dotted with column i of the
    // eigenvector rows.
    let mut rt = vec![0f32; d * d];
    pack_panels_into(&transpose(&v, d), d, &mut packed);
    square_product(&w, &packed, d, &mut rt, par);
    let mut r = transpose(&rt, d);
    // Two Newton–Schulz steps, R ← 1.5 R − 0.5 R Rᵀ R, take the f32
    // rounding out of the orthogonality.
    let mut rrt = vec![0f32; d * d];
    let mut prod = vec![0f32; d * d];
    for _ in 0..2 {
        pack_panels_into(&r, d, &mut packed);
        square_product(&r, &packed, d, &mut rrt, par);
        // (R Rᵀ) R: entry (i, j) is row i of R Rᵀ dotted with column j of R.
        pack_panels_into(&transpose(&r, d), d, &mut packed);
        square_product(&rrt, &packed, d, &mut prod, par);
        for (a, &p) in r.iter_mut().zip(&prod) {
            *a = 1.5 * *a - 0.5 * p;
        }
    }
    // The completed directions are orthonormal up to rounding, which the
    // steps above take out; a whole Gram–Schmidt pass stays as the last
    // resort should a row still be far from unit length.
    pack_panels_into(&r, d, &mut packed);
    square_product(&r, &packed, d, &mut rrt, par);
    let off = rrt
        .chunks_exact(d)
        .enumerate()
        .flat_map(|(i, row)| {
            row.iter()
                .enumerate()
                .map(move |(j, &v)| (v - f32::from(i == j)).abs())
        })
        .fold(0f32, f32::max);
    // f32 rounding leaves ~1e-6; a direction without a singular value
    // leaves whole rows short.
    if off > 1e-3 {
        orthonormalize_rows(&mut r, d);
    }
    r
}

/// Up to this many sub-spaces, OPQ's `Σ x ŷᵀ` comes from per-code sums of
/// the rows ([`code_cross`], `O(n·d·M)` additions); beyond, from the GEMM
/// over the decoded rows (`O(n·d²)`).
const CODE_SUM_MAX_M: usize = 16;

/// Columns of `x` per task in [`code_cross`].
const CODE_SUM_COLS: usize = 32;

/// `C = Σ_r x_r ŷ_rᵀ` (`d × d`, f64) where `ŷ_r` is the decoding of
/// `codes` (`n × m`) with `books` (`m × k × d/m`): column block `j` of `C`
/// is `S_jᵀ B_j`, with `S_j` (`k × d`) the sums of the rows of `x` by their
/// code in sub-space `j`. Tasks own fixed blocks of [`CODE_SUM_COLS`]
/// columns of `x` (rows of `C`) and add rows in order, so the thread count
/// changes nothing.
fn code_cross(
    x: &[f32],
    codes: &[u16],
    books: &[f32],
    m: usize,
    k: usize,
    d: usize,
    par: Par,
) -> Vec<f64> {
    let ds = d / m;
    let mut c = vec![0f64; d * d];
    for_each_block(
        par,
        d,
        CODE_SUM_COLS,
        &mut c,
        d,
        || (),
        |_, a0, out| {
            let w = out.len() / d;
            // sums[(j·k + code)·w + t]: column a0 + t of the rows with `code`
            // in sub-space j.
            let mut sums = vec![0f64; m * k * w];
            for (row, rc) in x.chunks_exact(d).zip(codes.chunks_exact(m)) {
                let xs = &row[a0..a0 + w];
                for (j, &t) in rc.iter().enumerate() {
                    let s = &mut sums[(j * k + t as usize) * w..(j * k + t as usize + 1) * w];
                    for (a, &v) in s.iter_mut().zip(xs) {
                        *a += v as f64;
                    }
                }
            }
            for j in 0..m {
                let book = &books[j * k * ds..(j + 1) * k * ds];
                for (code, cw) in book.chunks_exact(ds).enumerate() {
                    let s = &sums[(j * k + code) * w..(j * k + code + 1) * w];
                    for (t, &sv) in s.iter().enumerate() {
                        if sv == 0.0 {
                            continue;
                        }
                        let o = &mut out[t * d + j * ds..t * d + (j + 1) * ds];
                        for (ov, &b) in o.iter_mut().zip(cw) {
                            *ov += sv * b as f64;
                        }
                    }
                }
            }
        },
    );
    c
}

/// Eigenvalues of `CᵀC` at or below this fraction of the largest count as
/// missing singular values (a singular value below 1e-5 of the largest):
/// their columns of `C V Λ^(−1/2)` would be mostly f32 rounding.
const NULL_EIGENVALUE: f64 = 1e-10;

/// Fills the columns of `w` (`d × d`, row-major) whose eigenvalue is not
/// `kept` (rank-deficient data: `C` has no singular value there, and any
/// orthonormal completion is an optimal rotation) with unit vectors
/// orthogonal to the kept columns and to each other: each starts from its
/// eigenvector and has the others projected out twice (f64). Costs
/// `O(r·d²)` for `r` missing columns, where a Gram–Schmidt pass over the
/// whole matrix costs `O(d³)`.
fn complete_null_columns(
    w: &mut [f32],
    v: &[f32],
    vals: &[f64],
    kept: impl Fn(f64) -> bool,
    d: usize,
) {
    if vals.iter().all(|&l| kept(l)) {
        return;
    }
    // Row c of `cols` is column c of `w`.
    let mut cols: Vec<f64> = vec![0f64; d * d];
    for (a, row) in w.chunks_exact(d).enumerate() {
        for (c, &x) in row.iter().enumerate() {
            cols[c * d + a] = x as f64;
        }
    }
    let mut done: Vec<usize> = (0..d).filter(|&c| kept(vals[c])).collect();
    let mut axis = 0;
    for c in (0..d).filter(|&c| !kept(vals[c])) {
        let mut q: Vec<f64> = v[c * d..(c + 1) * d].iter().map(|&x| x as f64).collect();
        let mut tries = 0;
        loop {
            for _ in 0..2 {
                for &o in &done {
                    let u = &cols[o * d..(o + 1) * d];
                    let dot: f64 = u.iter().zip(&q).map(|(a, b)| a * b).sum();
                    for (x, &b) in q.iter_mut().zip(u) {
                        *x -= dot * b;
                    }
                }
            }
            let norm = q.iter().map(|x| x * x).sum::<f64>().sqrt();
            if norm > 1e-3 || tries > d {
                for x in &mut q {
                    *x /= norm.max(f64::MIN_POSITIVE);
                }
                break;
            }
            // The eigenvector lies in the kept span: try a coordinate axis.
            q = (0..d).map(|t| f64::from(t == axis % d)).collect();
            axis += 1;
            tries += 1;
        }
        cols[c * d..(c + 1) * d].copy_from_slice(&q);
        done.push(c);
    }
    for (a, row) in w.chunks_exact_mut(d).enumerate() {
        for (c, x) in row.iter_mut().enumerate() {
            *x = cols[c * d + a] as f32;
        }
    }
}

/// `out[i][j] = a_i · b_j` for `d × d` matrices, `b` packed, in parallel
/// over fixed row blocks (each entry one dot: thread-independent).
fn square_product(a: &[f32], b_packed: &[f32], d: usize, out: &mut [f32], par: Par) {
    for_each_block(
        par,
        d,
        48,
        out,
        d,
        || (),
        |_, r0, ob| {
            let rows = ob.len() / d;
            dots_packed(&a[r0 * d..(r0 + rows) * d], d, b_packed, d, 1.0, ob);
        },
    );
}

/// [`gram_schmidt`] on the rows of `r` (`d × d`), in f64.
fn orthonormalize_rows(r: &mut [f32], d: usize) {
    let mut q: Vec<f64> = r.iter().map(|&v| v as f64).collect();
    gram_schmidt(&mut q, d);
    for (o, &v) in r.iter_mut().zip(&q) {
        *o = v as f32;
    }
}

/// Modified Gram-Schmidt on the rows of `q` (`d × d`, f64), in row order;
/// a row with nothing left after removing the earlier ones is replaced by
/// the first coordinate axis that has.
fn gram_schmidt(q: &mut [f64], d: usize) {
    let mut axis = 0;
    for i in 0..d {
        let mut tries = 0;
        loop {
            for j in 0..i {
                let dot: f64 = (0..d).map(|t| q[i * d + t] * q[j * d + t]).sum();
                for t in 0..d {
                    q[i * d + t] -= dot * q[j * d + t];
                }
            }
            let norm = (0..d)
                .map(|t| q[i * d + t] * q[i * d + t])
                .sum::<f64>()
                .sqrt();
            if norm > 1e-6 || tries > d {
                for t in 0..d {
                    q[i * d + t] /= norm.max(f64::MIN_POSITIVE);
                }
                break;
            }
            // Nothing left of this row: try the next coordinate axis.
            for t in 0..d {
                q[i * d + t] = f64::from(t == axis % d);
            }
            axis += 1;
            tries += 1;
        }
    }
}

/// Errors unless `r` (`d × d`) looks orthogonal: every row has unit norm
/// and four seeded random vectors keep their norms (to 1e-3). `O(d²)`, so
/// a hostile file with a huge `d` is not an `O(d³)` check; a corrupted
/// file fails the checksum before this runs.
fn check_orthogonal(r: &[f32], d: usize) -> Result<()> {
    for (i, row) in r.chunks_exact(d).enumerate() {
        let n: f64 = row.iter().map(|&v| (v as f64) * (v as f64)).sum();
        if (n - 1.0).abs() > 1e-3 {
            return Err(invalid(
                "rotation",
                format!("is not orthogonal: row {i} has squared norm {n:.6}"),
            ));
        }
    }
    let mut rng = Rng::new(0x0b7, 0);
    for probe in 0..4 {
        let v: Vec<f64> = (0..d).map(|_| rng.normal()).collect();
        let nv: f64 = v.iter().map(|a| a * a).sum();
        let nr: f64 = r
            .chunks_exact(d)
            .map(|row| {
                let s: f64 = row.iter().zip(&v).map(|(&a, &b)| a as f64 * b).sum();
                s * s
            })
            .sum();
        if (nr / nv - 1.0).abs() > 1e-3 {
            return Err(invalid(
                "rotation",
                format!(
                    "is not orthogonal: it scales probe {probe}'s squared norm by {:.6}",
                    nr / nv
                ),
            ));
        }
    }
    Ok(())
}

impl Quantizer for ProductQuantizer {
    fn dim(&self) -> usize {
        self.dim
    }
    fn levels(&self) -> usize {
        self.m
    }
    fn codebook_size(&self, level: usize) -> usize {
        if level < self.m { self.k } else { 0 }
    }
    fn encode_into(&self, x: Embeddings<'_>, out: &mut [u16], par: Par) -> Result<()> {
        x.expect_dim(self.dim)?;
        expect_len("code buffer length (n × M)", x.rows() * self.m, out.len())?;
        let d = self.dim;
        let mut buf = Vec::new();
        let mut y = Vec::new();
        // Packed once per call, not per chunk.
        let sets = self.sets();
        // Blocks of rows: read (and checked finite by `block`), rotated,
        // encoded.
        const CHUNK: usize = 16 * BLOCK_ROWS;
        let n = x.rows();
        let mut start = 0;
        while start < n {
            let end = (start + CHUNK).min(n);
            let xb = x.block(start, end, &mut buf)?;
            let out_b = &mut out[start * self.m..end * self.m];
            match &self.rotation {
                Some(rot) => {
                    y.resize(xb.len(), 0.0);
                    rotate(xb, d, rot, &mut y, par);
                    self.encode_rotated(&sets, &y, out_b, par);
                }
                None => self.encode_rotated(&sets, xb, out_b, par),
            }
            start = end;
        }
        Ok(())
    }
    fn decode_into(&self, codes: &Codes, out: &mut [f32], par: Par) -> Result<()> {
        codes.check_tokens(&self.codebook_sizes())?;
        let d = self.dim;
        expect_len("output length (n × d)", codes.rows() * d, out.len())?;
        match &self.rotation {
            None => self.decode_rotated(codes.as_slice(), out),
            Some(rot) => {
                let mut y = vec![0f32; out.len()];
                self.decode_rotated(codes.as_slice(), &mut y);
                unrotate(&y, d, rot, out, par);
            }
        }
        Ok(())
    }
}

super::fit_by_inherent!(ProductQuantizer, PqConfig, PqReport);

// ---- model file (format version 1; docs/FORMAT.md) ----

/// [`ProductQuantizer`]'s model-file payload.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct ProductQuantizerV1 {
    dim: u64,
    m: u64,
    /// `dim × dim` row-major, or empty for plain PQ.
    rotation: Vec<f32>,
    codebooks: Vec<f32>,
}

impl Payload for ProductQuantizer {
    const KIND: ModelKind = ModelKind::ProductQuantizer;
    type V = ProductQuantizerV1;
    fn to_payload(&self) -> ProductQuantizerV1 {
        ProductQuantizerV1 {
            dim: self.dim as u64,
            m: self.m as u64,
            rotation: self.rotation.clone().unwrap_or_default(),
            codebooks: self.codebooks.clone(),
        }
    }
    fn from_payload(p: ProductQuantizerV1) -> Result<Self> {
        let dim = usize::try_from(p.dim).map_err(|_| invalid_payload("dim does not fit usize"))?;
        let m = usize::try_from(p.m).map_err(|_| invalid_payload("m does not fit usize"))?;
        if dim > 1 << 20 {
            return Err(invalid_payload(format!("dim {dim} is above 2^20")));
        }
        let rotation = (!p.rotation.is_empty()).then_some(p.rotation);
        ProductQuantizer::from_parts(dim, m, p.codebooks, rotation).map_err(to_invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize, d: usize, rank: usize, seed: u64) -> Vec<f32> {
        // Rows in a `rank`-dimensional subspace of R^d (rank-deficient when
        // rank < d): random combinations of `rank` random directions.
        let mut rng = Rng::new(seed, 0);
        let dirs: Vec<f32> = (0..rank * d).map(|_| rng.normal() as f32).collect();
        let mut x = vec![0f32; n * d];
        for row in x.chunks_exact_mut(d) {
            for dir in dirs.chunks_exact(d) {
                let w = rng.normal() as f32;
                for (o, &v) in row.iter_mut().zip(dir) {
                    *o += w * v;
                }
            }
        }
        x
    }

    /// The rows of `m` (`d × d`) are orthonormal to `tol`.
    fn assert_rows_orthonormal(m: &[f32], d: usize, tol: f64) {
        for i in 0..d {
            for j in 0..d {
                let s: f64 = (0..d)
                    .map(|t| m[i * d + t] as f64 * m[j * d + t] as f64)
                    .sum();
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((s - want).abs() < tol, "row {i} · row {j} = {s}");
            }
        }
    }

    #[test]
    fn code_sums_give_the_cross_products_of_the_decoded_rows() {
        let (n, d, m, k) = (3000, 24, 4, 16);
        let x = rows(n, d, d, 1);
        let mut rng = Rng::new(2, 0);
        let codes: Vec<u16> = (0..n * m).map(|_| rng.below(k) as u16).collect();
        let books: Vec<f32> = (0..m * k * (d / m)).map(|_| rng.normal() as f32).collect();
        let ds = d / m;
        let mut yhat = vec![0f32; n * d];
        for (o, c) in yhat.chunks_exact_mut(d).zip(codes.chunks_exact(m)) {
            for (j, &t) in c.iter().enumerate() {
                let b = &books[(j * k + t as usize) * ds..(j * k + t as usize + 1) * ds];
                o[j * ds..(j + 1) * ds].copy_from_slice(b);
            }
        }
        let want = cross_products(&x, &yhat, d, Par::Seq);
        let got = code_cross(&x, &codes, &books, m, k, d, Par::Seq);
        let scale = want.iter().fold(0f64, |a, v| a.max(v.abs()));
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-5 * scale, "{g} vs {w}");
        }
        // Any thread count, the same bits.
        let par = code_cross(&x, &codes, &books, m, k, d, Par::Rayon(3));
        assert!(
            got.iter()
                .zip(&par)
                .all(|(a, b)| a.to_bits() == b.to_bits())
        );
    }

    #[test]
    fn procrustes_completes_missing_directions_without_losing_the_fit() {
        // ŷ = Q x for a random rotation Q, with x of rank 9 in R^12: C has
        // three zero singular values, yet the optimal rotation must map
        // every x onto its ŷ and be orthogonal.
        let (n, d) = (500, 12);
        let x = rows(n, d, 9, 3);
        let q = random_rotation(d, &mut Rng::new(4, 0));
        let mut yhat = vec![0f32; n * d];
        rotate(&x, d, &q, &mut yhat, Par::Seq);
        let r = procrustes(cross_products(&x, &yhat, d, Par::Seq), d, Par::Seq);
        assert_rows_orthonormal(&r, d, 1e-5);
        let mut y = vec![0f32; n * d];
        rotate(&x, d, &r, &mut y, Par::Seq);
        let err = sq_err(&y, &yhat, d);
        let norm = sq_err(&yhat, &vec![0f32; n * d], d);
        assert!(err <= 1e-8 * norm, "residual {err} of {norm}");
    }

    #[test]
    fn missing_columns_are_completed_orthonormally() {
        // Columns 1 and 4 of an orthogonal W are missing (zero eigenvalue);
        // the completion starts from the rows of W itself, which are not
        // orthogonal to the kept columns, and has to project them out.
        let d = 6;
        let q = random_rotation(d, &mut Rng::new(7, 0));
        let mut w = q.clone();
        let vals = [3.0, 0.0, 2.0, 1.0, 0.0, 5.0];
        for row in w.chunks_exact_mut(d) {
            row[1] = 0.0;
            row[4] = 0.0;
        }
        // Eigenvectors (rows of v): the rotation's own rows.
        complete_null_columns(&mut w, &q, &vals, |l| l > 0.0, d);
        assert_rows_orthonormal(&transpose(&w, d), d, 1e-6);
        for a in 0..d {
            for c in [0, 2, 3, 5] {
                assert_eq!(w[a * d + c], q[a * d + c], "kept column {c} moved");
            }
        }
    }
}
