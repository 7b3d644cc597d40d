//! Statistics of codes and reconstructions: how a set of semantic codes
//! uses its codebooks ([`code_quality`]: utilization, entropy, perplexity per
//! level; collisions; FORGE's Gini) and reconstruction error ([`mse`]).
//! They sit below the quantizers, which report them while they train;
//! [`Quantizer::reconstruction_mse`](crate::quantize::Quantizer::reconstruction_mse)
//! encodes and decodes in blocks, then calls [`mse`].

use crate::data::{Codes, Embeddings};
use crate::error::{Error, Result};
use crate::kernels::Simd;

/// Usage statistics of one histogram of token counts.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct HistogramStats {
    /// Distinct tokens used.
    pub used: usize,
    /// Fraction of the codebook used, `used / codebook_size`.
    pub utilization: f64,
    /// Shannon entropy of the token distribution, in nats.
    pub entropy: f64,
    /// `exp(entropy)`: the effective number of equally used tokens.
    pub perplexity: f64,
}

impl HistogramStats {
    /// Statistics of `counts` (one entry per codebook entry).
    #[must_use]
    pub fn from_counts(counts: &[usize]) -> HistogramStats {
        let total: usize = counts.iter().sum();
        let used = counts.iter().filter(|&&c| c > 0).count();
        let entropy = if total == 0 {
            0.0
        } else {
            let n = total as f64;
            counts
                .iter()
                .filter(|&&c| c > 0)
                .map(|&c| {
                    let p = c as f64 / n;
                    -p * p.ln()
                })
                .sum()
        };
        HistogramStats {
            used,
            utilization: if counts.is_empty() {
                0.0
            } else {
                used as f64 / counts.len() as f64
            },
            entropy,
            perplexity: entropy.exp(),
        }
    }
}

/// Per-level code usage.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LevelQuality {
    /// The level's codebook size.
    pub codebook_size: usize,
    /// Usage of the level's tokens.
    pub stats: HistogramStats,
}

/// Quality figures of a set of codes.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CodeQuality {
    /// Number of items (rows).
    pub items: usize,
    /// One entry per level.
    pub levels: Vec<LevelQuality>,
    /// Distinct full codes.
    pub unique_codes: usize,
    /// Fraction of items whose full code is shared with at least one other
    /// item (FAISS peer script's definition).
    pub collision_rate: f64,
    /// Largest number of items sharing one full code.
    pub max_items_per_code: usize,
    /// Gini coefficient of items per occupied full code (FORGE): 0 when every
    /// occupied code holds the same number of items, towards 1 when a few
    /// codes hold most items.
    pub gini: f64,
}

/// Computes [`CodeQuality`] for `codes` against `codebook_sizes` (one per
/// level). Errors on a level-count mismatch or a token out of range.
///
/// Cost: `O(n·L·log n)` (one sort of the rows).
///
/// ```
/// use semid::{Codes, stats::code_quality};
/// let codes = Codes::new(vec![0, 1, 0, 1, 1, 0], 2)?;
/// let q = code_quality(&codes, &[2, 2])?;
/// assert_eq!(q.unique_codes, 2);
/// assert!((q.collision_rate - 2.0 / 3.0).abs() < 1e-12);
/// # Ok::<(), semid::Error>(())
/// ```
pub fn code_quality(codes: &Codes, codebook_sizes: &[usize]) -> Result<CodeQuality> {
    codes.check_tokens(codebook_sizes)?;
    let n = codes.rows();
    let levels = codebook_sizes
        .iter()
        .enumerate()
        .map(|(l, &k)| {
            let mut h = vec![0usize; k];
            for row in codes.iter() {
                h[row[l] as usize] += 1;
            }
            LevelQuality {
                codebook_size: k,
                stats: HistogramStats::from_counts(&h),
            }
        })
        .collect();
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.sort_unstable_by(|&a, &b| codes.row(a as usize).cmp(codes.row(b as usize)));
    let mut bucket_sizes = Vec::new();
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && codes.row(order[j] as usize) == codes.row(order[i] as usize) {
            j += 1;
        }
        bucket_sizes.push(j - i);
        i = j;
    }
    let collided: usize = bucket_sizes.iter().filter(|&&s| s > 1).sum();
    Ok(CodeQuality {
        items: n,
        levels,
        unique_codes: bucket_sizes.len(),
        collision_rate: if n == 0 {
            0.0
        } else {
            collided as f64 / n as f64
        },
        max_items_per_code: bucket_sizes.iter().copied().max().unwrap_or(0),
        gini: gini(&mut bucket_sizes),
    })
}

/// Gini coefficient of non-negative counts (sorted in place).
pub(crate) fn gini(x: &mut [usize]) -> f64 {
    let m = x.len();
    let total: usize = x.iter().sum();
    if m == 0 || total == 0 {
        return 0.0;
    }
    x.sort_unstable();
    let weighted: f64 = x
        .iter()
        .enumerate()
        .map(|(i, &v)| (2.0 * (i as f64 + 1.0) - m as f64 - 1.0) * v as f64)
        .sum();
    weighted / (m as f64 * total as f64)
}

/// Mean over rows of `‖x_i − x̂_i‖²` (summed over dimensions), with `x_hat`
/// row-major `n × d`.
pub fn mse(x: Embeddings<'_>, x_hat: &[f32]) -> Result<f64> {
    let d = x.dim();
    if x_hat.len() != x.rows() * d {
        return Err(Error::Shape {
            what: "x_hat length (n × d)",
            expected: x.rows() * d,
            got: x_hat.len(),
        });
    }
    let simd = Simd::detect();
    let mut buf = Vec::new();
    let mut total = 0.0f64;
    let step = 4096;
    let mut r = 0;
    while r < x.rows() {
        let end = (r + step).min(x.rows());
        let xb = x.block(r, end, &mut buf)?;
        for (a, b) in xb
            .chunks_exact(d)
            .zip(x_hat[r * d..end * d].chunks_exact(d))
        {
            total += simd.l2_sq(a, b) as f64;
        }
        r = end;
    }
    Ok(total / x.rows() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gini_values() {
        assert_eq!(gini(&mut [3, 3, 3]), 0.0);
        // one of 4 codes holds everything: (m-1)/m
        assert!((gini(&mut [0, 0, 0, 8]) - 0.75).abs() < 1e-12);
    }

    #[test]
    fn quality_of_known_codes() {
        let codes = Codes::new(vec![0, 0, 0, 0, 1, 1, 2, 3], 2).unwrap();
        let q = code_quality(&codes, &[4, 4]).unwrap();
        assert_eq!(q.unique_codes, 3);
        assert_eq!(q.max_items_per_code, 2);
        assert!((q.collision_rate - 0.5).abs() < 1e-12);
        assert_eq!(q.levels[0].stats.used, 3);
        assert!((q.levels[0].stats.utilization - 0.75).abs() < 1e-12);
        let h = -(0.5f64 * 0.5f64.ln() + 2.0 * 0.25 * 0.25f64.ln());
        assert!((q.levels[0].stats.entropy - h).abs() < 1e-12);
        assert!(matches!(
            code_quality(&codes, &[4, 3]),
            Err(Error::TokenOutOfRange {
                row: 3,
                level: 1,
                token: 3,
                ..
            })
        ));
        assert!(matches!(
            code_quality(&codes, &[4]),
            Err(Error::Shape { .. })
        ));
    }
}
