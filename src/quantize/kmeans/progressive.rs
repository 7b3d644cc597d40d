//! Progressive-dimension k-means initialisation ([`Init::ProgressiveDim`]),
//! after FAISS's `ProgressiveDimClustering`.
//!
//! [`Init::ProgressiveDim`]: super::config::Init::ProgressiveDim

use super::config::KMeansConfig;
use super::lloyd::{gather_rows, lloyd};
use super::steps::LloydSteps;
use crate::error::Result;
use crate::kernels::{cross_products, dots_packed, pack_panels_into, symmetric_eigen};
use crate::par::{Par, for_each_block};
use crate::rng::Rng;

/// Rows the covariance is estimated from (a seeded sample beyond this). The
/// axes only order the dimensions the early steps see, so a sample is
/// enough; it keeps the `s × d × d` product near 2.4 GFLOP at `d = 384`.
const PCA_ROWS: usize = 8192;

/// Training rows per centroid the reduced-dimension steps use (a seeded
/// sample beyond this; the final full-dimension iterations use every
/// training row). Each reduced step costs `O(m·k)` besides its products, so
/// on 65 536 training rows (k = 256 × 256 per centroid) these steps took
/// half of the fit; on 64 per centroid the final MSE on 200k × 256 synthetic
/// data and on `pypi_text_16k` stayed within seed noise.
const STEP_POINTS_PER_CENTROID: usize = 64;

/// Rows per block when rotating the training set.
const ROTATE_BLOCK: usize = 256;

/// Initial centroids (`k × d`) for `x` (`m × d`, finite, `m ≥ k`).
pub(crate) fn init(
    cfg: &KMeansConfig,
    x: &[f32],
    d: usize,
    n_steps: usize,
    iters: usize,
    rng: &mut Rng,
    steps: &mut dyn LloydSteps,
) -> Result<Vec<f32>> {
    let m = x.len() / d;
    let k = cfg.k;
    // The reduced dimensions, strictly increasing and below d.
    let mut dims: Vec<usize> = Vec::new();
    for s in 1..n_steps {
        let di = (d as f64).powf(s as f64 / n_steps as f64).floor() as usize;
        let di = di.clamp(1, d);
        if di < d && dims.last().is_none_or(|&p| di > p) {
            dims.push(di);
        }
    }
    // Always start on the first axis alone, from quantiles (see below).
    if d > 1 && dims.first() != Some(&1) {
        dims.insert(0, 1);
    }
    let Some(&top) = dims.last() else {
        // d = 1: the quantile start is the whole initialisation.
        return Ok(quantiles(x, k));
    };

    let mean = column_means(x, d);
    let basis = principal_axes(x, d, &mean, rng, cfg.par);
    let cap = k.saturating_mul(STEP_POINTS_PER_CENTROID);
    let sample;
    let xs = if m > cap {
        sample = gather_rows(x, d, &rng.sample_indices(m, cap));
        &sample[..]
    } else {
        x
    };
    let y = rotate(xs, d, &mean, &basis[..top * d], top, cfg.par);

    let mut cents: Vec<f32> = Vec::new();
    let mut prev = 0;
    let mut sub = Vec::new();
    for &di in &dims {
        sub.clear();
        sub.extend(y.chunks_exact(top).flat_map(|r| r[..di].iter().copied()));
        let start = if prev == 0 {
            quantiles(&sub, k)
        } else {
            let mut c = vec![0f32; k * di];
            for (dst, src) in c.chunks_exact_mut(di).zip(cents.chunks_exact(prev)) {
                dst[..prev].copy_from_slice(src);
            }
            c
        };
        cents = lloyd(cfg, &sub, di, start, iters, rng, steps)?.0;
        prev = di;
    }

    // Back to the input space: c = mean + c_rot · B[..prev].
    let mut bt = vec![0f32; d * prev];
    for (t, b) in basis.chunks_exact(d).take(prev).enumerate() {
        for (u, &v) in b.iter().enumerate() {
            bt[u * prev + t] = v;
        }
    }
    let mut packed = Vec::new();
    pack_panels_into(&bt, prev, &mut packed);
    let mut out = vec![0f32; k * d];
    dots_packed(&cents, prev, &packed, d, 1.0, &mut out);
    for row in out.chunks_exact_mut(d) {
        for (o, &mu) in row.iter_mut().zip(&mean) {
            *o += mu;
        }
    }
    Ok(out)
}

/// `k` starting centroids on one axis: the values at quantiles
/// `(j + ½)/k` of `v`. They follow the density of the data (random rows do
/// too, but can miss a well-separated group), and unlike k-means++ they do not
/// favour outliers, which on residuals leave most rows in a few clusters.
fn quantiles(v: &[f32], k: usize) -> Vec<f32> {
    let mut s = v.to_vec();
    s.sort_unstable_by(f32::total_cmp);
    let m = s.len();
    (0..k)
        .map(|j| s[((2 * j + 1) * m / (2 * k)).min(m - 1)])
        .collect()
}

/// Column means, accumulated in f64 in row order.
fn column_means(x: &[f32], d: usize) -> Vec<f32> {
    let m = x.len() / d;
    let mut acc = vec![0f64; d];
    for r in x.chunks_exact(d) {
        for (a, &v) in acc.iter_mut().zip(r) {
            *a += v as f64;
        }
    }
    acc.iter().map(|&a| (a / m.max(1) as f64) as f32).collect()
}

/// The principal axes of `x` (`d × d`, row `i` the axis of the `i`-th
/// largest variance), from a seeded sample of at most [`PCA_ROWS`] rows.
/// Falls back to the coordinate axes if the eigensolver fails.
fn principal_axes(x: &[f32], d: usize, mean: &[f32], rng: &mut Rng, par: Par) -> Vec<f32> {
    let m = x.len() / d;
    let idx: Vec<usize> = if m > PCA_ROWS {
        rng.sample_indices(m, PCA_ROWS)
    } else {
        (0..m).collect()
    };
    let s = idx.len();
    // The centred sample, then its covariance through the chunked GEMM.
    let mut centred = Vec::with_capacity(s * d);
    for &i in &idx {
        centred.extend(x[i * d..(i + 1) * d].iter().zip(mean).map(|(v, mu)| v - mu));
    }
    let acc = cross_products(&centred, &centred, d, par);
    drop(centred);

    let identity = || {
        let mut b = vec![0f32; d * d];
        for i in 0..d {
            b[i * d + i] = 1.0;
        }
        b
    };
    // Symmetrise: the two triangles come from separate dot products.
    let mut v = vec![0f64; d * d];
    let inv = 1.0 / s as f64;
    for i in 0..d {
        for j in 0..d {
            v[i * d + j] = 0.5 * (acc[i * d + j] + acc[j * d + i]) * inv;
        }
    }
    let vals = match symmetric_eigen(&mut v, d) {
        Some(vals) if vals.iter().all(|v| v.is_finite()) => vals,
        _ => return identity(),
    };
    let mut order: Vec<usize> = (0..d).collect();
    // Largest variance first; ties keep the solver's order.
    order.sort_by(|&a, &b| vals[b].total_cmp(&vals[a]));
    // Eigenvector c is row c of v.
    order
        .iter()
        .flat_map(|&c| v[c * d..(c + 1) * d].iter().map(|&e| e as f32))
        .collect()
}

/// `(x − mean) · axesᵀ` for the first `top` axes: `m × top`.
fn rotate(x: &[f32], d: usize, mean: &[f32], axes: &[f32], top: usize, par: Par) -> Vec<f32> {
    let m = x.len() / d;
    let mut packed = Vec::new();
    pack_panels_into(axes, d, &mut packed);
    let mut y = vec![0f32; m * top];
    for_each_block(
        par,
        m,
        ROTATE_BLOCK,
        &mut y,
        top,
        Vec::new,
        |centred: &mut Vec<f32>, row0, yb| {
            let rows = yb.len() / top;
            centred.clear();
            for r in x[row0 * d..(row0 + rows) * d].chunks_exact(d) {
                centred.extend(r.iter().zip(mean).map(|(v, mu)| v - mu));
            }
            dots_packed(centred, d, &packed, top, 1.0, yb);
        },
    );
    y
}
