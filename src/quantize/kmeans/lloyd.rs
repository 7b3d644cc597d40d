//! Seeding (k-means++, on a sample) and Lloyd iterations on training rows.

use super::balanced::balanced_assign;
use super::config::{Assignment, KMeansConfig, KMeansReport};
use super::steps::{Labels, LloydSteps, assign_checked};
use crate::error::Result;
use crate::kernels::{CentroidSet, Simd};
use crate::par::{Par, for_each_block};
use crate::rng::Rng;

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

/// `max_iter` Lloyd iterations (fewer on convergence) from `centroids`,
/// assigning and averaging through `steps` (balanced assignment always runs
/// here, on the CPU).
pub(crate) fn lloyd(
    cfg: &KMeansConfig,
    x: &[f32],
    d: usize,
    mut centroids: Vec<f32>,
    max_iter: usize,
    rng: &mut Rng,
    steps: &mut dyn LloydSteps,
) -> Result<(Vec<f32>, KMeansReport)> {
    let m = x.len() / d;
    let k = cfg.k;
    let mut labels = vec![0u32; m];
    let mut dists = vec![0f32; m];
    let mut history = Vec::with_capacity(max_iter);
    let mut converged = false;
    let mut repairs = 0;
    let mut iterations = 0;
    steps.begin(x, d)?;
    for it in 0..max_iter {
        iterations = it + 1;
        let checked = match cfg.assignment {
            Assignment::Nearest => {
                assign_checked(steps, x, d, &centroids, &mut labels, &mut dists)?
            }
            Assignment::Balanced => {
                let c = CentroidSet::new(&centroids, d);
                balanced_assign(x, &c, &mut labels, &mut dists, cfg.par);
                Labels::trusted(&labels, k)
            }
        };
        let inertia: f64 = dists.iter().map(|&v| v as f64).sum();
        if let Some(&prev) = history.last() {
            let prev: f64 = prev;
            if prev - inertia <= cfg.tol * prev {
                converged = true;
            }
        }
        history.push(inertia);
        steps.update(x, d, checked, &mut centroids)?;
        let mut sizes = vec![0usize; k];
        for &l in checked.as_slice() {
            sizes[l as usize] += 1;
        }
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
    Ok((centroids, report))
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
    for t in 1..=k {
        let c = &centroids[(t - 1) * d..t * d];
        for_each_block(
            par,
            m,
            4096,
            &mut dmin,
            1,
            || (),
            |_, row0, dm| {
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
