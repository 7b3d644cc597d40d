//! Batched nearest-centroid assignment.

use std::borrow::Cow;

use super::gemm::{ArgminScratch, NR, argmin_packed, dots_packed, pack_panels};
use super::{Simd, row_norms_into, scalar};
use crate::data::check_finite;
use crate::error::{Error, Result};
use crate::par::{Par, for_each_block2};

/// Rows per block in batched kernels. Fixed (not derived from the thread
/// count) so results do not depend on parallelism.
pub(crate) const BLOCK_ROWS: usize = 256;

/// Which kernel [`nearest_on`] uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AssignPath {
    /// One scalar distance per (row, centroid): the oracle.
    Scalar,
    /// One SIMD distance per (row, centroid).
    Simd,
    /// Blocked matrix product `‖x‖² − 2 x·c + ‖c‖²` (the default): the
    /// crate's own packed kernel, no scratch beyond the packed centroids.
    #[default]
    Gemm,
}

/// Centroids (`k × d`, row-major) with their squared norms and a packed
/// copy for the matrix-product kernel (`⌈k/16⌉·16 × d` floats: the only
/// memory assignment needs beyond each block's `rows × k` products).
#[derive(Clone, Debug)]
pub(crate) struct CentroidSet<'a> {
    pub(crate) data: Cow<'a, [f32]>,
    pub(crate) k: usize,
    pub(crate) d: usize,
    pub(crate) norms: Vec<f32>,
    packed: Vec<f32>,
    /// `norms` padded with `+∞` to whole panels (the fused argmin reads
    /// whole panels).
    norms_padded: Vec<f32>,
}

/// Per-thread scratch of [`assign_block`].
pub(crate) type AssignScratch = ArgminScratch;

impl<'a> CentroidSet<'a> {
    pub(crate) fn new(data: &'a [f32], d: usize) -> Self {
        Self::of(Cow::Borrowed(data), d)
    }

    /// A set that owns its centroids, for a model to keep.
    pub(crate) fn owned(data: Vec<f32>, d: usize) -> CentroidSet<'static> {
        CentroidSet::of(Cow::Owned(data), d)
    }

    fn of(data: Cow<'a, [f32]>, d: usize) -> Self {
        let k = data.len() / d;
        let mut norms = vec![0.0; k];
        row_norms_into(&data, d, &mut norms);
        let packed = pack_panels(&data, d);
        let mut norms_padded = norms.clone();
        norms_padded.resize(k.div_ceil(NR) * NR, f32::INFINITY);
        CentroidSet {
            data,
            k,
            d,
            norms,
            packed,
            norms_padded,
        }
    }

    /// For every row `r` of `x`: the nearest centroid (ties → lowest index)
    /// and `‖c_j‖² − 2 x_r·c_j` (the squared distance minus `‖x_r‖²`),
    /// without a `rows × k` product buffer on AVX2/AVX-512.
    pub(crate) fn nearest_into(
        &self,
        x: &[f32],
        labels: &mut [u32],
        vals: &mut [f32],
        scratch: &mut AssignScratch,
    ) {
        argmin_packed(
            x,
            self.d,
            &self.packed,
            self.k,
            &self.norms_padded,
            -2.0,
            labels,
            vals,
            scratch,
        );
    }

    /// `out[r * k + j] = alpha · x_r · c_j` for the rows of `x`
    /// (single-threaded); `out` is resized to `rows × k`.
    pub(crate) fn scaled_dots(&self, x: &[f32], alpha: f32, out: &mut Vec<f32>) {
        let rows = x.len() / self.d;
        out.resize(rows * self.k, 0.0);
        dots_packed(
            x,
            self.d,
            &self.packed,
            self.k,
            alpha,
            &mut out[..rows * self.k],
        );
    }
}

/// `out[r * k + j] = −2 x_r · c_j` for the rows of `x` (single-threaded).
pub(crate) fn neg2_dots(x: &[f32], c: &CentroidSet<'_>, out: &mut Vec<f32>) {
    c.scaled_dots(x, -2.0, out);
}

/// Assigns the rows of one block (single-threaded). `scratch` holds 16
/// running minima per row (or `rows × k` floats without AVX2).
pub(crate) fn assign_block(
    path: AssignPath,
    x: &[f32],
    c: &CentroidSet<'_>,
    scratch: &mut AssignScratch,
    labels: &mut [u32],
    dists: &mut [f32],
) {
    let d = c.d;
    match path {
        AssignPath::Scalar => scalar::nearest(x, &c.data, d, labels, dists),
        AssignPath::Simd => {
            let simd = Simd::detect();
            for ((row, l), dist) in x
                .chunks_exact(d)
                .zip(labels.iter_mut())
                .zip(dists.iter_mut())
            {
                let mut best = (0u32, f32::INFINITY);
                for (j, cj) in c.data.chunks_exact(d).enumerate() {
                    let v = simd.l2_sq(row, cj);
                    if v < best.1 {
                        best = (j as u32, v);
                    }
                }
                *l = best.0;
                *dist = best.1;
            }
        }
        AssignPath::Gemm => {
            c.nearest_into(x, labels, dists, scratch);
            let simd = Simd::detect();
            for (row, dist) in x.chunks_exact(d).zip(dists.iter_mut()) {
                *dist = (*dist + simd.dot(row, row)).max(0.0);
            }
        }
    }
}

/// Nearest centroid of every row of `x` (`n × d`) among `centroids`
/// (`k × d`), both row-major, by squared L2 distance, with the GEMM path:
/// `(labels, dists)`, one per row.
///
/// Ties go to the lowest index; a distance is clamped at 0 (the GEMM form
/// can round a tiny true distance to a small negative). Cost: `2·n·k·d`
/// flops; extra memory `256 × k` floats per thread. [`nearest_on`] writes
/// into buffers the caller owns and picks the kernel.
///
/// ```
/// use semid::{Par, kernels::nearest};
/// let x = [0.0, 0.0, 10.0, 10.0];
/// let c = [9.0, 9.0, 1.0, 0.0];
/// let (labels, dists) = nearest(&x, &c, 2, Par::Seq)?;
/// assert_eq!(labels, [1, 0]);
/// assert_eq!(dists, [1.0, 2.0]);
/// # Ok::<(), semid::Error>(())
/// ```
pub fn nearest(x: &[f32], centroids: &[f32], d: usize, par: Par) -> Result<(Vec<u32>, Vec<f32>)> {
    let n = x.len().checked_div(d).unwrap_or(0);
    let (mut labels, mut dists) = (vec![0u32; n], vec![0f32; n]);
    nearest_on(
        AssignPath::Gemm,
        x,
        centroids,
        d,
        &mut labels,
        &mut dists,
        par,
    )?;
    Ok((labels, dists))
}

/// [`nearest`] into `labels` and `dists` (one per row of `x`), with an
/// explicit kernel path (the oracle for tests, or a baseline for
/// benchmarks).
pub fn nearest_on(
    path: AssignPath,
    x: &[f32],
    centroids: &[f32],
    d: usize,
    labels: &mut [u32],
    dists: &mut [f32],
    par: Par,
) -> Result<()> {
    if d == 0 {
        return Err(Error::Empty {
            what: "dimension d",
        });
    }
    if x.is_empty() {
        return Err(Error::Empty { what: "x" });
    }
    if centroids.is_empty() {
        return Err(Error::Empty { what: "centroids" });
    }
    for (what, len) in [("x length", x.len()), ("centroids length", centroids.len())] {
        if len % d != 0 {
            return Err(Error::Shape {
                what,
                expected: len.div_ceil(d) * d,
                got: len,
            });
        }
    }
    let n = x.len() / d;
    if centroids.len() / d > u32::MAX as usize {
        return Err(Error::Shape {
            what: "number of centroids (at most u32::MAX)",
            expected: u32::MAX as usize,
            got: centroids.len() / d,
        });
    }
    for (what, len) in [
        ("labels length", labels.len()),
        ("dists length", dists.len()),
    ] {
        if len != n {
            return Err(Error::Shape {
                what,
                expected: n,
                got: len,
            });
        }
    }
    check_finite("x", x, d, 0)?;
    check_finite("centroids", centroids, d, 0)?;
    assign_rows(path, x, &CentroidSet::new(centroids, d), labels, dists, par);
    Ok(())
}

/// Nearest-centroid assignment of finite f32 rows (`x`: rows × d), block by
/// block over `par`.
pub(crate) fn assign_rows(
    path: AssignPath,
    x: &[f32],
    c: &CentroidSet<'_>,
    labels: &mut [u32],
    dists: &mut [f32],
    par: Par,
) {
    let d = c.d;
    for_each_block2(
        par,
        x.len() / d,
        BLOCK_ROWS,
        labels,
        1,
        dists,
        1,
        AssignScratch::default,
        |scratch, row0, l, dd| {
            let xb = &x[row0 * d..(row0 + l.len()) * d];
            assign_block(path, xb, c, scratch, l, dd);
        },
    );
}
