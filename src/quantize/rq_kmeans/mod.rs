//! Residual k-means (RQ-KMeans, as in OneRec / MiniOneRec): level `l` is a
//! k-means on the residuals left by levels `0..l`.

mod config;

pub use config::{EncodeSearch, LevelReport, RqKMeansConfig, RqKMeansReport};

use super::kmeans::{
    CpuSteps, LloydSteps, assign_checked, centroid_sum_chunk, fit_rows, training_rows,
    validate_codebook,
};
use super::{Quantizer, expect_len};
use std::sync::OnceLock;

use crate::data::{Codes, Embeddings, FiniteRows, RowBlocks};
use crate::error::{Error, Result, invalid};
use crate::format::{
    ModelKind, decode_payload, encode_file, encode_payload, frame_version, invalid_payload,
    sealed::Codec, split, to_invalid,
};
use crate::kernels::{
    AssignScratch, BLOCK_ROWS, CentroidSet, Simd, TopK, neg2_dots_pub as neg2_dots,
};
use crate::par::{Par, for_each_block, for_each_block2};
use crate::rng::Rng;

/// A fitted residual k-means quantizer: `L` codebooks of `k × d`.
///
/// Fitting draws one training sample (`k × max_points_per_centroid` rows,
/// seeded) and runs k-means level by level on its residuals, so fit memory
/// and time do not grow with `n`.
///
/// ```
/// use semid::{Embeddings, Quantizer, RqKMeans, RqKMeansConfig, synthetic};
/// let data = synthetic::hierarchical_mixture(&synthetic::MixtureConfig {
///     n: 2000, dim: 16, ..Default::default() });
/// let x = Embeddings::new(&data, 16)?;
/// let (rq, report) = RqKMeans::fit(&RqKMeansConfig::new(2, 16).seed(1), x)?;
/// let codes = rq.encode(x)?;
/// assert_eq!((codes.rows(), codes.levels()), (2000, 2));
/// assert!(report.levels[1].mse < report.levels[0].mse);
/// # Ok::<(), semid::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RqKMeans {
    dim: usize,
    /// Codes per level.
    sizes: Vec<usize>,
    levels: usize,
    /// Level after level, each `sizes[l] × dim`, row-major.
    codebooks: Vec<f32>,
    /// The codebooks packed for the kernels, made on first use and kept,
    /// so encoding a few rows or searching a few queries does not repack
    /// them. Reset whenever `codebooks` changes.
    packed: Packed,
}

/// [`RqKMeans`]'s packed codebooks: a cache, not part of the model's value
/// (equal whether filled or not).
#[derive(Clone, Default)]
struct Packed(OnceLock<Vec<CentroidSet<'static>>>);

impl PartialEq for Packed {
    fn eq(&self, _: &Packed) -> bool {
        true
    }
}

impl std::fmt::Debug for Packed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "packed"
        } else {
            "not packed yet"
        })
    }
}

impl RqKMeans {
    /// Fits `config.levels` codebooks to `x` (`n × d`).
    ///
    /// Errors on an invalid config, `k > n`, or non-finite data.
    pub fn fit(config: &RqKMeansConfig, x: Embeddings<'_>) -> Result<(RqKMeans, RqKMeansReport)> {
        RqKMeans::fit_with_steps(config, x, &mut CpuSteps::new(config.kmeans.par))
    }

    /// [`RqKMeans::fit`] with every level's Lloyd steps and its final
    /// assignment done by `steps` (e.g. `semid::gpu::DeviceSteps` with the
    /// `cuda` feature). Sampling, initialisation, the residual chain and the
    /// codebook refinement stay on the CPU. Steps that compute the CPU's
    /// labels and means give the CPU's model bit for bit.
    ///
    /// Errors as [`RqKMeans::fit`], plus any error of `steps`.
    pub fn fit_with_steps(
        config: &RqKMeansConfig,
        x: Embeddings<'_>,
        steps: &mut dyn LloydSteps,
    ) -> Result<(RqKMeans, RqKMeansReport)> {
        config.validate()?;
        let sizes = config.level_sizes();
        let k_max = sizes.iter().copied().max().unwrap_or(1);
        // The sample and row check are those of the largest level.
        let km = &config.level_kmeans(k_max);
        km.check_rows(x.rows())?;
        let d = x.dim();
        let mut rng = Rng::new(km.seed, 0);
        let train = training_rows(x, km.train_size(x.rows()), &mut rng)?;
        let mut resid = train.as_slice().to_vec();
        let m = resid.len() / d;
        let mean_sq_norm = mean_sq_rows(&resid, d);
        let mut codebooks = Vec::with_capacity(sizes.iter().sum::<usize>() * d);
        let mut levels = Vec::with_capacity(config.levels);
        let mut labels = vec![0u32; m];
        let mut dists = vec![0f32; m];
        // The training rows' greedy codes: level l's labels are taken with
        // its final codebook, so refinement starts from them.
        let mut codes = vec![0u16; m * config.levels];
        for (l, &k) in sizes.iter().enumerate() {
            let mut lvl_rng = Rng::new(km.seed.wrapping_add(l as u64), 1);
            let (cents, report) =
                fit_rows(&config.level_kmeans(k), &resid, d, &mut lvl_rng, steps)?;
            steps.begin(&resid, d)?;
            assign_checked(steps, &resid, d, &cents, &mut labels, &mut dists)?;
            for (r, &lab) in resid.chunks_exact_mut(d).zip(&labels) {
                let cw = &cents[lab as usize * d..(lab as usize + 1) * d];
                for (a, b) in r.iter_mut().zip(cw) {
                    *a -= b;
                }
            }
            for (c, &lab) in codes.chunks_exact_mut(config.levels).zip(&labels) {
                // A label is below k ≤ 65 536 (validated).
                c[l] = lab as u16;
            }
            let (utilization, perplexity) = usage(&labels, k);
            levels.push(LevelReport {
                kmeans: report,
                mse: mean_sq_rows(&resid, d),
                utilization,
                perplexity,
            });
            codebooks.extend_from_slice(&cents);
        }
        let mut model = RqKMeans {
            dim: d,
            sizes,
            levels: config.levels,
            codebooks,
            packed: Packed::default(),
        };
        let start = (row_sq_err(&resid, d, km.par), codes);
        let (mse, refine_rounds) = model.refine(&train, start, config.refine_rounds, km.par)?;
        Ok((
            model,
            RqKMeansReport {
                levels,
                n_train: m,
                mean_sq_norm,
                mse,
                refine_rounds,
            },
        ))
    }

    /// Training MSE of greedy codes of `train` with the current codebooks,
    /// and those codes.
    fn greedy_mse(&self, train: &FiniteRows<'_>, par: Par) -> Result<(f64, Vec<u16>)> {
        let d = self.dim;
        let x = train.view();
        let mut codes = vec![0u16; x.n_rows() * self.levels];
        self.encode_rows(x, 1, &mut codes, par)?;
        let mut resid = train.as_slice().to_vec();
        for_each_block(
            par,
            codes.len() / self.levels,
            BLOCK_ROWS,
            &mut resid,
            d,
            || (),
            |_, row0, rb| {
                let rows = rb.len() / d;
                let cb = &codes[row0 * self.levels..(row0 + rows) * self.levels];
                for (rec, c) in rb.chunks_exact_mut(d).zip(cb.chunks_exact(self.levels)) {
                    for (l, &t) in c.iter().enumerate() {
                        let cw = &self.codebook(l)[t as usize * d..(t as usize + 1) * d];
                        for (a, b) in rec.iter_mut().zip(cw) {
                            *a -= b;
                        }
                    }
                }
            },
        );
        Ok((row_sq_err(&resid, d, par), codes))
    }

    /// Codebook refinement: with the greedy codes fixed, each level's
    /// codewords become the mean of what the other levels leave of their
    /// rows (levels in order, each using the ones already updated); then the
    /// rows are re-encoded. Stops when the training MSE no longer falls.
    /// Returns the final training MSE and the rounds kept.
    fn refine(
        &mut self,
        rows: &FiniteRows<'_>,
        start: (f64, Vec<u16>),
        rounds: usize,
        par: Par,
    ) -> Result<(f64, usize)> {
        let (d, lv) = (self.dim, self.levels);
        let k_max = self.sizes.iter().copied().max().unwrap_or(1);
        let (mut best, mut codes) = start;
        let train = rows.as_slice();
        let m = train.len() / d;
        // Fixed row chunks (from the shape alone): the sums do not depend on
        // the thread count.
        let chunk = centroid_sum_chunk(m, k_max, d);
        let n_chunks = m.div_ceil(chunk);
        let mut kept = 0;
        for _ in 0..rounds {
            let before = self.codebooks.clone();
            for l in 0..lv {
                let k = self.sizes[l];
                let mut partial = vec![0f64; n_chunks * k * d];
                let mut counts = vec![0usize; n_chunks * k];
                let model = &*self;
                for_each_block2(
                    par,
                    n_chunks,
                    1,
                    &mut partial,
                    k * d,
                    &mut counts,
                    k,
                    || vec![0f32; d],
                    |target, c, sums, cnt| {
                        let rows = c * chunk..((c + 1) * chunk).min(m);
                        let chunk_codes = &codes[rows.start * lv..rows.end * lv];
                        let chunk_rows = &train[rows.start * d..rows.end * d];
                        for (row, cs) in
                            chunk_rows.chunks_exact(d).zip(chunk_codes.chunks_exact(lv))
                        {
                            target.copy_from_slice(row);
                            for (j, &t) in cs.iter().enumerate() {
                                if j == l {
                                    continue;
                                }
                                let cw = &model.codebook(j)[t as usize * d..(t as usize + 1) * d];
                                for (a, b) in target.iter_mut().zip(cw) {
                                    *a -= b;
                                }
                            }
                            let t = cs[l] as usize;
                            cnt[t] += 1;
                            for (s, &v) in sums[t * d..(t + 1) * d].iter_mut().zip(target.iter()) {
                                *s += v as f64;
                            }
                        }
                    },
                );
                let off = self.offset(l);
                for t in 0..k {
                    let n: usize = (0..n_chunks).map(|c| counts[c * k + t]).sum();
                    if n == 0 {
                        continue;
                    }
                    for (u, o) in self.codebooks[off + t * d..off + (t + 1) * d]
                        .iter_mut()
                        .enumerate()
                    {
                        let s: f64 = (0..n_chunks).map(|c| partial[(c * k + t) * d + u]).sum();
                        *o = (s / n as f64) as f32;
                    }
                }
            }
            self.packed = Packed::default();
            let (mse, new_codes) = self.greedy_mse(rows, par)?;
            if mse >= best {
                self.codebooks = before;
                self.packed = Packed::default();
                break;
            }
            best = mse;
            codes = new_codes;
            kept += 1;
        }
        Ok((best, kept))
    }

    /// Builds a model from codebooks (`levels × k × dim`, row-major),
    /// checking shapes and finiteness.
    pub fn from_codebooks(codebooks: Vec<f32>, levels: usize, dim: usize) -> Result<RqKMeans> {
        if levels == 0 {
            return Err(invalid("levels", "is 0; it must be at least 1"));
        }
        if dim == 0 {
            return Err(Error::Empty {
                what: "dimension d",
            });
        }
        if levels > 64 {
            return Err(invalid("levels", format!("is {levels}; at most 64")));
        }
        let total = codebooks.len() / dim;
        if !codebooks.len().is_multiple_of(dim) || !total.is_multiple_of(levels) {
            return Err(Error::Shape {
                what: "codebook values (must be levels × k × dim)",
                expected: codebooks
                    .len()
                    .div_ceil(levels.saturating_mul(dim))
                    .saturating_mul(levels.saturating_mul(dim)),
                got: codebooks.len(),
            });
        }
        let k = total / levels;
        crate::data::check_vocab("k", &[k], 1)?;
        RqKMeans::from_sized_codebooks(codebooks, &vec![k; levels], dim)
    }

    /// Builds a model whose level `l` has `sizes[l]` codes from codebooks
    /// stored level after level (`Σ sizes × dim` values, each level
    /// `sizes[l] × dim` row-major), checking shapes and finiteness.
    ///
    /// ```
    /// use semid::{Quantizer, RqKMeans};
    /// let cb = vec![0.5f32; (4 + 2) * 3];
    /// let rq = RqKMeans::from_sized_codebooks(cb, &[4, 2], 3)?;
    /// assert_eq!(rq.codebook_sizes(), vec![4, 2]);
    /// assert!(RqKMeans::from_sized_codebooks(vec![0.5; 9], &[4, 2], 3).is_err());
    /// # Ok::<(), semid::Error>(())
    /// ```
    pub fn from_sized_codebooks(
        codebooks: Vec<f32>,
        sizes: &[usize],
        dim: usize,
    ) -> Result<RqKMeans> {
        if sizes.is_empty() {
            return Err(invalid(
                "codebook_sizes",
                "is empty; give at least one level",
            ));
        }
        if sizes.len() > 64 {
            return Err(invalid(
                "codebook_sizes",
                format!("has {} levels; at most 64", sizes.len()),
            ));
        }
        crate::data::check_vocab("codebook_sizes", sizes, 1)?;
        if dim == 0 {
            return Err(Error::Empty {
                what: "dimension d",
            });
        }
        let rows: usize = sizes.iter().sum();
        let values = rows
            .checked_mul(dim)
            .ok_or_else(|| invalid("dim", format!("is {dim}; Σ codebook sizes × dim overflows")))?;
        expect_len(
            "codebook values (Σ codebook sizes × dim)",
            values,
            codebooks.len(),
        )?;
        for (l, &k) in sizes.iter().enumerate() {
            let off: usize = sizes[..l].iter().sum::<usize>() * dim;
            validate_codebook("codebooks", &codebooks[off..off + k * dim], dim)?;
        }
        Ok(RqKMeans {
            dim,
            sizes: sizes.to_vec(),
            levels: sizes.len(),
            codebooks,
            packed: Packed::default(),
        })
    }

    /// Every level's codebook packed for the kernels (made once, then
    /// kept).
    pub(crate) fn sets(&self) -> &[CentroidSet<'static>] {
        self.packed.0.get_or_init(|| {
            (0..self.levels)
                .map(|l| CentroidSet::owned(self.codebook(l).to_vec(), self.dim))
                .collect()
        })
    }

    /// Where level `l`'s codebook starts in [`RqKMeans::codebooks`].
    fn offset(&self, l: usize) -> usize {
        self.sizes[..l].iter().sum::<usize>() * self.dim
    }

    /// Level `l`'s codebook (`codebook_size(l) × d`, row-major).
    ///
    /// # Panics
    /// If `l >= levels()`, like slice indexing.
    #[must_use]
    pub fn codebook(&self, l: usize) -> &[f32] {
        let off = self.offset(l);
        &self.codebooks[off..off + self.sizes[l] * self.dim]
    }

    /// All codebooks, level after level, each `codebook_size(l) × d`
    /// row-major.
    #[must_use]
    pub fn codebooks(&self) -> &[f32] {
        &self.codebooks
    }

    /// Encodes with the given search into `out` (`n × L`).
    pub fn encode_search_into(
        &self,
        x: Embeddings<'_>,
        search: EncodeSearch,
        out: &mut [u16],
        par: Par,
    ) -> Result<()> {
        x.expect_dim(self.dim)?;
        expect_len(
            "code buffer length (n × L)",
            x.rows() * self.levels,
            out.len(),
        )?;
        let beam = match search {
            EncodeSearch::Greedy => 1,
            EncodeSearch::Beam(0) => {
                return Err(invalid("search", "Beam(0); the beam width must be >= 1"));
            }
            EncodeSearch::Beam(b) => {
                // No more beams than distinct paths.
                let paths = self.sizes.iter().fold(1usize, |p, &k| p.saturating_mul(k));
                b.min(paths)
            }
        };
        self.encode_rows(x, beam, out, par)
    }

    /// Codes of `x`'s rows with a beam of `beam` (1: greedy) into `out`;
    /// `x` and `out` have the right shapes. [`Finite`](crate::data::Finite)
    /// rows are read as they are, [`Embeddings`] checked block by block.
    fn encode_rows<R: RowBlocks>(
        &self,
        x: R,
        beam: usize,
        out: &mut [u16],
        par: Par,
    ) -> Result<()> {
        let sets = self.sets();
        let block = if beam == 1 {
            BLOCK_ROWS
        } else {
            (BLOCK_ROWS / beam).max(8)
        };
        for_each_block(
            par,
            x.n_rows(),
            block,
            out,
            self.levels,
            EncodeScratch::default,
            |s, row0, codes| {
                let rows = codes.len() / self.levels;
                let xb = x.rows_f32(row0, row0 + rows, &mut s.buf)?;
                s.resid.clear();
                s.resid.extend_from_slice(xb);
                if beam == 1 {
                    self.encode_greedy_block(sets, s, codes);
                } else {
                    self.encode_beam_block(sets, beam, s, codes);
                }
                Ok(())
            },
        )
    }

    fn encode_greedy_block(
        &self,
        sets: &[CentroidSet<'_>],
        s: &mut EncodeScratch,
        codes: &mut [u16],
    ) {
        let (d, lv) = (self.dim, self.levels);
        let rows = s.resid.len() / d;
        s.labels.resize(rows, 0);
        s.vals.resize(rows, 0.0);
        for (l, c) in sets.iter().enumerate() {
            c.nearest_into(&s.resid, &mut s.labels, &mut s.vals, &mut s.nearest);
            for (r, row) in s.resid.chunks_exact_mut(d).enumerate() {
                let best = s.labels[r] as usize;
                codes[r * lv + l] = best as u16;
                let cw = &c.data[best * d..(best + 1) * d];
                for (a, b) in row.iter_mut().zip(cw) {
                    *a -= b;
                }
            }
        }
    }

    fn encode_beam_block(
        &self,
        sets: &[CentroidSet<'_>],
        beam: usize,
        s: &mut EncodeScratch,
        codes: &mut [u16],
    ) {
        let (d, lv) = (self.dim, self.levels);
        let rows = s.resid.len() / d;
        let simd = Simd::detect();
        // Beam state per row: `live` beams, residuals, squared error, paths.
        let mut live = 1usize;
        s.err.clear();
        s.err
            .extend(s.resid.chunks_exact(d).map(|r| simd.dot(r, r)));
        s.paths.clear();
        s.paths.resize(rows * lv, 0);
        let mut top = TopK::new(beam);
        for (l, c) in sets.iter().enumerate() {
            let k = c.k;
            neg2_dots(&s.resid, c, &mut s.dots);
            let new_live = beam.min(live * k);
            s.next_resid.resize(rows * new_live * d, 0.0);
            s.next_err.resize(rows * new_live, 0.0);
            s.next_paths.resize(rows * new_live * lv, 0);
            for r in 0..rows {
                top.clear();
                for b in 0..live {
                    let e = s.err[r * live + b];
                    let g = &s.dots[(r * live + b) * k..(r * live + b + 1) * k];
                    for (j, (&gj, &nj)) in g.iter().zip(&c.norms).enumerate() {
                        let v = e + gj + nj;
                        if v < top.threshold() {
                            top.push(v, (b * k + j) as u32);
                        }
                    }
                }
                for (nb, &(_, id)) in top.items().iter().enumerate() {
                    let (b, j) = (id as usize / k, id as usize % k);
                    let src = &s.resid[(r * live + b) * d..(r * live + b + 1) * d];
                    let cw = &c.data[j * d..(j + 1) * d];
                    let dst =
                        &mut s.next_resid[(r * new_live + nb) * d..(r * new_live + nb + 1) * d];
                    for ((o, a), w) in dst.iter_mut().zip(src).zip(cw) {
                        *o = a - w;
                    }
                    s.next_err[r * new_live + nb] = simd.dot(dst, dst);
                    let po = (r * new_live + nb) * lv;
                    let pi = (r * live + b) * lv;
                    s.next_paths[po..po + l].copy_from_slice(&s.paths[pi..pi + l]);
                    s.next_paths[po + l] = j as u16;
                }
            }
            std::mem::swap(&mut s.resid, &mut s.next_resid);
            std::mem::swap(&mut s.err, &mut s.next_err);
            std::mem::swap(&mut s.paths, &mut s.next_paths);
            live = new_live;
        }
        // Beams are sorted by the selection score; pick the lowest exact error
        // (ties: the earlier beam).
        for r in 0..rows {
            let mut best = 0;
            for b in 1..live {
                if s.err[r * live + b] < s.err[r * live + best] {
                    best = b;
                }
            }
            codes[r * lv..(r + 1) * lv]
                .copy_from_slice(&s.paths[(r * live + best) * lv..(r * live + best + 1) * lv]);
        }
    }
}

#[derive(Default)]
struct EncodeScratch {
    buf: Vec<f32>,
    resid: Vec<f32>,
    dots: Vec<f32>,
    labels: Vec<u32>,
    vals: Vec<f32>,
    nearest: AssignScratch,
    err: Vec<f32>,
    paths: Vec<u16>,
    next_resid: Vec<f32>,
    next_err: Vec<f32>,
    next_paths: Vec<u16>,
}

impl Quantizer for RqKMeans {
    fn dim(&self) -> usize {
        self.dim
    }
    fn levels(&self) -> usize {
        self.levels
    }
    fn codebook_size(&self, level: usize) -> usize {
        self.sizes.get(level).copied().unwrap_or(0)
    }
    /// Greedy encoding; see [`RqKMeans::encode_search_into`] for beam search.
    fn encode_into(&self, x: Embeddings<'_>, out: &mut [u16], par: Par) -> Result<()> {
        self.encode_search_into(x, EncodeSearch::Greedy, out, par)
    }
    fn decode_into(&self, codes: &Codes, out: &mut [f32], par: Par) -> Result<()> {
        codes.check_tokens(&self.codebook_sizes())?;
        let d = self.dim;
        expect_len("output length (n × d)", codes.rows() * d, out.len())?;
        for_each_block(
            par,
            codes.rows(),
            BLOCK_ROWS,
            out,
            d,
            || (),
            |_, row0, o| {
                for (r, orow) in o.chunks_exact_mut(d).enumerate() {
                    orow.fill(0.0);
                    for (l, &t) in codes.row(row0 + r).iter().enumerate() {
                        let cw = &self.codebook(l)[t as usize * d..(t as usize + 1) * d];
                        for (a, b) in orow.iter_mut().zip(cw) {
                            *a += b;
                        }
                    }
                }
            },
        );
        Ok(())
    }
}

super::fit_by_inherent!(RqKMeans, RqKMeansConfig, RqKMeansReport);

/// Mean over rows of the squared norm of `resid` (`· × d`), each row summed
/// in f64 and the rows added in order (the same for every thread count).
fn row_sq_err(resid: &[f32], d: usize, par: Par) -> f64 {
    let rows = resid.len() / d;
    let mut per_row = vec![0f64; rows];
    for_each_block(
        par,
        rows,
        BLOCK_ROWS,
        &mut per_row,
        1,
        || (),
        |_, row0, out| {
            for (o, r) in out.iter_mut().zip(resid[row0 * d..].chunks_exact(d)) {
                *o = r.iter().map(|&v| (v as f64) * (v as f64)).sum();
            }
        },
    );
    per_row.iter().sum::<f64>() / rows.max(1) as f64
}

fn mean_sq_rows(x: &[f32], d: usize) -> f64 {
    let simd = Simd::detect();
    let rows = x.len() / d;
    x.chunks_exact(d)
        .map(|r| simd.dot(r, r) as f64)
        .sum::<f64>()
        / rows.max(1) as f64
}

/// (utilization, perplexity) of a label histogram over `k` codes.
fn usage(labels: &[u32], k: usize) -> (f64, f64) {
    let mut h = vec![0usize; k];
    for &l in labels {
        h[l as usize] += 1;
    }
    let s = crate::stats::HistogramStats::from_counts(&h);
    (s.utilization, s.perplexity)
}

impl super::LastLevelDistances for RqKMeans {
    fn last_level_distances(
        &self,
        x: Embeddings<'_>,
        codes: &[u16],
        out: &mut [f32],
    ) -> Result<()> {
        let (n, levels, k) = super::check_last_level(self, x, codes, out)?;
        let d = self.dim;
        let set = CentroidSet::new(self.codebook(levels - 1), d);
        let simd = Simd::detect();
        let (mut buf, mut resid, mut dots) = (Vec::new(), Vec::new(), Vec::new());
        for start in (0..n).step_by(BLOCK_ROWS) {
            let end = (start + BLOCK_ROWS).min(n);
            let xb = x.block(start, end, &mut buf)?;
            resid.clear();
            resid.extend_from_slice(xb);
            for (r, row) in resid.chunks_exact_mut(d).enumerate() {
                let code = &codes[(start + r) * levels..(start + r + 1) * levels];
                for (l, &t) in code[..levels - 1].iter().enumerate() {
                    let cw = &self.codebook(l)[t as usize * d..(t as usize + 1) * d];
                    for (a, b) in row.iter_mut().zip(cw) {
                        *a -= b;
                    }
                }
            }
            neg2_dots(&resid, &set, &mut dots);
            for (r, row) in resid.chunks_exact(d).enumerate() {
                let norm = simd.dot(row, row);
                let o = &mut out[(start + r) * k..(start + r + 1) * k];
                for ((o, &g), &cn) in o.iter_mut().zip(&dots[r * k..(r + 1) * k]).zip(&set.norms) {
                    *o = (norm + g + cn).max(0.0);
                }
            }
        }
        Ok(())
    }
}

// ---- model file (format versions 1 and 2; docs/FORMAT.md) ----

/// [`RqKMeans`]'s model-file payload (format version 1: every level has
/// `k` codes; version 2, [`RqKMeansV2`], holds a size per level).
#[derive(serde::Serialize, serde::Deserialize)]
pub struct RqKMeansV1 {
    dim: u64,
    levels: u64,
    k: u64,
    codebooks: Vec<f32>,
}

/// Version 2 of [`RqKMeans`]'s payload, written only when the levels'
/// codebook sizes differ: the dimension, one size per level, and the
/// codebooks level after level.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct RqKMeansV2 {
    dim: u64,
    sizes: Vec<u64>,
    codebooks: Vec<f32>,
}

impl Codec for RqKMeans {
    fn encode_file(&self) -> Result<Vec<u8>> {
        // The oldest version that holds the model: files of equal sizes
        // stay byte-identical to version 1.
        if self.sizes.iter().all(|&k| k == self.sizes[0]) {
            let v1 = RqKMeansV1 {
                dim: self.dim as u64,
                levels: self.levels as u64,
                k: self.sizes[0] as u64,
                codebooks: self.codebooks.clone(),
            };
            return encode_file(ModelKind::RqKMeans, &v1);
        }
        let v2 = RqKMeansV2 {
            dim: self.dim as u64,
            sizes: self.sizes.iter().map(|&k| k as u64).collect(),
            codebooks: self.codebooks.clone(),
        };
        Ok(frame_version(ModelKind::RqKMeans, 2, &encode_payload(&v2)?))
    }

    fn decode_file(bytes: &[u8]) -> Result<Self> {
        let (h, payload) = split(bytes)?;
        if h.kind != ModelKind::RqKMeans {
            return Err(crate::error::FormatError::WrongKind {
                expected: ModelKind::RqKMeans.name(),
                found: h.kind.tag(),
            }
            .into());
        }
        if h.version == 1 {
            let p: RqKMeansV1 = decode_payload(payload)?;
            let expect = p
                .levels
                .checked_mul(p.k)
                .and_then(|v| v.checked_mul(p.dim))
                .ok_or_else(|| invalid_payload("levels × k × dim overflows"))?;
            if expect != p.codebooks.len() as u64 {
                return Err(invalid_payload(format!(
                    "codebooks hold {} values, header fields say levels {} × k {} × dim {}",
                    p.codebooks.len(),
                    p.levels,
                    p.k,
                    p.dim
                )));
            }
            return RqKMeans::from_codebooks(p.codebooks, p.levels as usize, p.dim as usize)
                .map_err(to_invalid);
        }
        let p: RqKMeansV2 = decode_payload(payload)?;
        let sizes: Vec<usize> = p
            .sizes
            .iter()
            .map(|&k| usize::try_from(k).unwrap_or(usize::MAX))
            .collect();
        let dim = usize::try_from(p.dim).unwrap_or(usize::MAX);
        RqKMeans::from_sized_codebooks(p.codebooks, &sizes, dim).map_err(to_invalid)
    }
}
