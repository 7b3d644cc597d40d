//! Seeded synthetic data that looks like item embeddings.
//!
//! Used by the quickstart, examples, tests and benchmarks so every figure can
//! be reproduced without downloading anything.

use crate::par::{Par, for_each_block};
use crate::rng::Rng;

/// A hierarchical Gaussian mixture: topics, sub-topics, item noise.
#[derive(Clone, Debug, PartialEq)]
pub struct MixtureConfig {
    /// Rows.
    pub n: usize,
    /// Dimension.
    pub dim: usize,
    /// Number of topics (cluster centres, drawn from `N(0, I)`).
    pub topics: usize,
    /// Sub-topics per topic (offsets drawn from `N(0, sub_scale² I)`).
    pub subtopics: usize,
    /// Scale of sub-topic offsets relative to topic spread.
    pub sub_scale: f32,
    /// Per-item noise scale (root-mean-square per dimension).
    pub noise: f32,
    /// Spectral decay: dimension `j` of every generated vector is scaled by
    /// `(j + 1)^(−spectrum_decay)` before normalisation. 0 keeps the mixture
    /// isotropic, whose residuals past the first level are near-orthogonal
    /// random directions with little for deeper levels to model; real
    /// embeddings have decaying spectra (a low effective dimension).
    pub spectrum_decay: f32,
    /// Zipf-like skew of topic popularity: topic `t` has weight
    /// `1 / (t + 1)^skew` (0 = uniform).
    pub skew: f64,
    /// Scale rows to unit L2 norm, like most text/image embeddings.
    pub normalize: bool,
    /// Seed.
    pub seed: u64,
}

impl Default for MixtureConfig {
    /// 50k × 128, 300 topics × 4 sub-topics, decaying noise spectrum, mild
    /// skew, unit-norm rows.
    fn default() -> Self {
        MixtureConfig {
            n: 50_000,
            dim: 128,
            topics: 300,
            subtopics: 4,
            sub_scale: 0.5,
            noise: 0.35,
            spectrum_decay: 0.5,
            skew: 0.5,
            normalize: true,
            seed: 7,
        }
    }
}

/// Generates `cfg.n × cfg.dim` row-major f32 data. Deterministic for a seed,
/// whatever the thread count. `topics` and `subtopics` of 0 are treated as 1.
#[must_use]
pub fn hierarchical_mixture(cfg: &MixtureConfig) -> Vec<f32> {
    let d = cfg.dim;
    let (topics, subs) = (cfg.topics.max(1), cfg.subtopics.max(1));
    let mut rng = Rng::new(cfg.seed, 0);
    let centers: Vec<f32> = (0..topics * d).map(|_| rng.normal() as f32).collect();
    let offsets: Vec<f32> = (0..topics * subs * d)
        .map(|_| rng.normal() as f32 * cfg.sub_scale)
        .collect();
    let pick = TopicPicker::new(cfg);
    let mut out = vec![0f32; cfg.n * d];
    if d == 0 {
        return out;
    }
    let shape: Vec<f32> = (0..d)
        .map(|j| ((j + 1) as f32).powf(-cfg.spectrum_decay))
        .collect();
    for_each_block(
        Par::default(),
        cfg.n,
        1024,
        &mut out,
        d,
        || (),
        |_, row0, rows| {
            for (i, row) in rows.chunks_exact_mut(d).enumerate() {
                let (mut r, t, s) = pick.row(row0 + i);
                let c = &centers[t * d..(t + 1) * d];
                let o = &offsets[(t * subs + s) * d..(t * subs + s + 1) * d];
                for (((v, &cv), &ov), &w) in row.iter_mut().zip(c).zip(o).zip(&shape) {
                    *v = w * (cv + ov + cfg.noise * r.normal() as f32);
                }
                if cfg.normalize {
                    let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
                    if norm > 0.0 {
                        row.iter_mut().for_each(|v| *v /= norm);
                    }
                }
            }
        },
    );
    out
}

/// The (topic, sub-topic) of every row of
/// [`hierarchical_mixture`]`(cfg)`, without generating the rows.
#[must_use]
pub fn mixture_labels(cfg: &MixtureConfig) -> Vec<(u32, u32)> {
    let pick = TopicPicker::new(cfg);
    (0..cfg.n)
        .map(|row| {
            let (_, t, s) = pick.row(row);
            (t as u32, s as u32)
        })
        .collect()
}

/// Draws each row's topic (by popularity) and sub-topic from the row's own
/// random stream.
struct TopicPicker {
    seed: u64,
    subs: usize,
    cum: Vec<f64>,
}

impl TopicPicker {
    fn new(cfg: &MixtureConfig) -> TopicPicker {
        let mut acc = 0.0;
        let cum = (0..cfg.topics.max(1))
            .map(|t| {
                acc += 1.0 / ((t + 1) as f64).powf(cfg.skew);
                acc
            })
            .collect();
        TopicPicker {
            seed: cfg.seed,
            subs: cfg.subtopics.max(1),
            cum,
        }
    }

    /// Row `row`'s stream, after its topic and sub-topic were drawn.
    fn row(&self, row: usize) -> (Rng, usize, usize) {
        let mut r = Rng::new(self.seed, 1 + row as u64);
        let total = self.cum[self.cum.len() - 1];
        let u = r.next_f64() * total;
        let t = self
            .cum
            .partition_point(|&c| c <= u)
            .min(self.cum.len() - 1);
        let s = r.below(self.subs);
        (r, t, s)
    }
}

/// `len` seeded uniform values in `[lo, hi)`, from the crate's own
/// generator (the same stream in every release): the one source of
/// random test, benchmark and example data.
///
/// ```
/// let v = semid::synthetic::uniform(1000, -0.5, 0.5, 7);
/// assert!(v.iter().all(|x| (-0.5..0.5).contains(x)));
/// assert_eq!(v, semid::synthetic::uniform(1000, -0.5, 0.5, 7));
/// ```
#[must_use]
pub fn uniform(len: usize, lo: f32, hi: f32, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed, 7);
    (0..len)
        .map(|_| {
            let v = lo + (hi - lo) * rng.next_f64() as f32;
            // Rounding can land on `hi`; keep the interval half-open.
            if v < hi { v } else { lo }
        })
        .collect()
}

/// `len` seeded integers in `0..below` (`below ≥ 1`), e.g. tokens, or
/// small-integer data whose distances are exact in f32.
#[must_use]
pub fn integers(len: usize, below: u32, seed: u64) -> Vec<u32> {
    let mut rng = Rng::new(seed, 8);
    (0..len)
        .map(|_| rng.below(below.max(1) as usize) as u32)
        .collect()
}
