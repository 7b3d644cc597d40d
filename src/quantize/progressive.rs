//! Progressive-dimension k-means initialisation ([`Init::ProgressiveDim`]),
//! after FAISS's `ProgressiveDimClustering`.
//!
//! [`Init::ProgressiveDim`]: super::Init::ProgressiveDim

use super::kmeans::{KMeansConfig, gather_rows, lloyd};
use crate::kernels::{dots_packed, pack_panels_into};
use crate::par::for_each_block;
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
    steps: usize,
    iters: usize,
    rng: &mut Rng,
) -> Vec<f32> {
    let m = x.len() / d;
    let k = cfg.k;
    // The reduced dimensions, strictly increasing and below d.
    let mut dims: Vec<usize> = Vec::new();
    for s in 1..steps {
        let di = (d as f64).powf(s as f64 / steps as f64).floor() as usize;
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
        return quantiles(x, k);
    };

    let mean = column_means(x, d);
    let basis = principal_axes(x, d, &mean, rng);
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
        cents = lloyd(cfg, &sub, di, start, iters, rng).0;
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
    out
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
fn principal_axes(x: &[f32], d: usize, mean: &[f32], rng: &mut Rng) -> Vec<f32> {
    let m = x.len() / d;
    let idx: Vec<usize> = if m > PCA_ROWS {
        rng.sample_indices(m, PCA_ROWS)
    } else {
        (0..m).collect()
    };
    let s = idx.len();
    // Centred sample, transposed: d rows of s.
    let mut yt = vec![0f32; d * s];
    for (j, &i) in idx.iter().enumerate() {
        for (t, (&v, &mu)) in x[i * d..(i + 1) * d].iter().zip(mean).enumerate() {
            yt[t * s + j] = v - mu;
        }
    }
    let mut packed = Vec::new();
    pack_panels_into(&yt, s, &mut packed);
    let mut cov = vec![0f32; d * d];
    dots_packed(&yt, s, &packed, d, 1.0 / s as f32, &mut cov);
    drop((yt, packed));

    let identity = || {
        let mut b = vec![0f32; d * d];
        for i in 0..d {
            b[i * d + i] = 1.0;
        }
        b
    };
    // Symmetrise: the two triangles come from separate dot products.
    let mut v = vec![0f64; d * d];
    for i in 0..d {
        for j in 0..d {
            v[i * d + j] = 0.5 * (cov[i * d + j] as f64 + cov[j * d + i] as f64);
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

/// Eigenvalues and eigenvectors of the symmetric `n × n` matrix `v`
/// (row-major): on return row `c` of `v` is the eigenvector of the returned
/// value `c`. The algorithm runs on the transpose of JAMA's `V` (the input
/// is symmetric, so it starts equal), which makes every inner loop walk a
/// row. Householder tridiagonalisation then the implicit QL
/// algorithm (EISPACK `tred2`/`tql2`, as in JAMA), `O(n³)` in f64 with no
/// scratch beyond two vectors. `None` if QL does not converge (it does in a
/// few iterations per value on finite input). semid does not call faer's
/// eigensolver here: its products go through the GEMM whose thread-local
/// buffer is sized from the L3 (645 MB on one of our machines).
fn symmetric_eigen(v: &mut [f64], n: usize) -> Option<Vec<f64>> {
    let mut d: Vec<f64> = v[(n - 1) * n..].to_vec();
    let mut e = vec![0f64; n];
    // tred2: Householder reduction to tridiagonal form.
    for i in (1..n).rev() {
        let scale: f64 = d[..i].iter().map(|x| x.abs()).sum();
        let mut h = 0.0;
        if scale == 0.0 {
            e[i] = d[i - 1];
            for j in 0..i {
                d[j] = v[j * n + (i - 1)];
                v[j * n + i] = 0.0;
                v[i * n + j] = 0.0;
            }
        } else {
            for dk in &mut d[..i] {
                *dk /= scale;
                h += *dk * *dk;
            }
            let f = d[i - 1];
            let g = if f > 0.0 { -h.sqrt() } else { h.sqrt() };
            e[i] = scale * g;
            h -= f * g;
            d[i - 1] = f - g;
            e[..i].fill(0.0);
            for j in 0..i {
                let f = d[j];
                v[i * n + j] = f;
                let mut g = e[j] + v[j * n + j] * f;
                for k in j + 1..i {
                    g += v[j * n + k] * d[k];
                    e[k] += v[j * n + k] * f;
                }
                e[j] = g;
            }
            let mut f = 0.0;
            for j in 0..i {
                e[j] /= h;
                f += e[j] * d[j];
            }
            let hh = f / (h + h);
            for j in 0..i {
                e[j] -= hh * d[j];
            }
            for j in 0..i {
                let (f, g) = (d[j], e[j]);
                for k in j..i {
                    v[j * n + k] -= f * e[k] + g * d[k];
                }
                d[j] = v[j * n + (i - 1)];
                v[j * n + i] = 0.0;
            }
        }
        d[i] = h;
    }
    // Accumulate the transformations.
    for i in 0..n - 1 {
        v[i * n + (n - 1)] = v[i * n + i];
        v[i * n + i] = 1.0;
        let h = d[i + 1];
        if h != 0.0 {
            for k in 0..=i {
                d[k] = v[(i + 1) * n + k] / h;
            }
            for j in 0..=i {
                let mut g = 0.0;
                for k in 0..=i {
                    g += v[(i + 1) * n + k] * v[j * n + k];
                }
                for k in 0..=i {
                    v[j * n + k] -= g * d[k];
                }
            }
        }
        for k in 0..=i {
            v[(i + 1) * n + k] = 0.0;
        }
    }
    for j in 0..n {
        d[j] = v[j * n + (n - 1)];
        v[j * n + (n - 1)] = 0.0;
    }
    v[n * n - 1] = 1.0;
    e[0] = 0.0;

    // tql2: implicit QL on the tridiagonal matrix.
    for i in 1..n {
        e[i - 1] = e[i];
    }
    e[n - 1] = 0.0;
    let (mut f, mut tst1) = (0.0f64, 0.0f64);
    let eps = f64::EPSILON;
    for l in 0..n {
        tst1 = tst1.max(d[l].abs() + e[l].abs());
        let mut m = l;
        while m < n - 1 && e[m].abs() > eps * tst1 {
            m += 1;
        }
        if m > l {
            let mut iter = 0;
            loop {
                iter += 1;
                if iter > 64 {
                    return None;
                }
                let g = d[l];
                let mut p = (d[l + 1] - g) / (2.0 * e[l]);
                let mut r = p.hypot(1.0);
                if p < 0.0 {
                    r = -r;
                }
                d[l] = e[l] / (p + r);
                d[l + 1] = e[l] * (p + r);
                let dl1 = d[l + 1];
                let mut h = g - d[l];
                for di in &mut d[l + 2..] {
                    *di -= h;
                }
                f += h;
                p = d[m];
                let (mut c, mut c2, mut c3) = (1.0f64, 1.0f64, 1.0f64);
                let el1 = e[l + 1];
                let (mut s, mut s2) = (0.0f64, 0.0f64);
                for i in (l..m).rev() {
                    c3 = c2;
                    c2 = c;
                    s2 = s;
                    let g = c * e[i];
                    h = c * p;
                    r = p.hypot(e[i]);
                    e[i + 1] = s * r;
                    s = e[i] / r;
                    c = p / r;
                    p = c * d[i] - s * g;
                    d[i + 1] = h + s * (c * g + s * d[i]);
                    // Columns i and i+1 of V are rows i and i+1 here.
                    let (lo, hi) = v[i * n..(i + 2) * n].split_at_mut(n);
                    for (a, b) in lo.iter_mut().zip(hi.iter_mut()) {
                        let hk = *b;
                        *b = s * *a + c * hk;
                        *a = c * *a - s * hk;
                    }
                }
                p = -s * s2 * c3 * el1 * e[l] / dl1;
                e[l] = s * p;
                d[l] = c * p;
                if !p.is_finite() || !d[l].is_finite() {
                    return None;
                }
                if e[l].abs() <= eps * tst1 {
                    break;
                }
            }
        }
        d[l] += f;
        e[l] = 0.0;
    }
    Some(d)
}

/// `(x − mean) · axesᵀ` for the first `top` axes: `m × top`.
fn rotate(
    x: &[f32],
    d: usize,
    mean: &[f32],
    axes: &[f32],
    top: usize,
    par: crate::Par,
) -> Vec<f32> {
    let m = x.len() / d;
    let mut packed = Vec::new();
    pack_panels_into(axes, d, &mut packed);
    let mut y = vec![0f32; m * top];
    let mut unit = vec![(); m];
    for_each_block(
        par,
        m,
        ROTATE_BLOCK,
        &mut y,
        top,
        &mut unit,
        1,
        Vec::new,
        |centred: &mut Vec<f32>, row0, yb, _| {
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

#[cfg(test)]
mod tests {
    use super::symmetric_eigen;

    #[test]
    fn eigenpairs_reconstruct_the_matrix() {
        let mut st = 5u64;
        for n in [1usize, 2, 3, 7, 40] {
            let mut b = vec![0f64; n * n];
            for v in &mut b {
                st = st
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                *v = (st >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
            }
            // a = b·bᵀ, plus a repeated eigenvalue when n ≥ 3.
            let mut a = vec![0f64; n * n];
            for i in 0..n {
                for j in 0..n {
                    a[i * n + j] = (0..n).map(|t| b[i * n + t] * b[j * n + t]).sum();
                }
            }
            let orig = a.clone();
            let vals = symmetric_eigen(&mut a, n).expect("converges");
            for c in 0..n {
                // A v = λ v, ‖v‖ = 1; v is row c.
                let norm: f64 = (0..n).map(|k| a[c * n + k].powi(2)).sum();
                assert!((norm - 1.0).abs() < 1e-10, "n {n} col {c}: norm {norm}");
                for i in 0..n {
                    let av: f64 = (0..n).map(|k| orig[i * n + k] * a[c * n + k]).sum();
                    assert!(
                        (av - vals[c] * a[c * n + i]).abs() < 1e-9,
                        "n {n} col {c} row {i}"
                    );
                }
            }
        }
        // Zero matrix and identity: no division by zero.
        for diag in [0.0, 1.0] {
            let mut a = vec![0f64; 16];
            for i in 0..4 {
                a[i * 4 + i] = diag;
            }
            let vals = symmetric_eigen(&mut a, 4).unwrap();
            assert!(vals.iter().all(|&v| (v - diag).abs() < 1e-12));
        }
    }
}
