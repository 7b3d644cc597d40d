//! Figures beyond accuracy of recommendation lists: catalog coverage,
//! intra-list diversity, novelty and the Gini of recommended items.

use crate::data::Embeddings;
use crate::error::{Error, Result};
use crate::metrics::Rankings;

/// Beyond-accuracy figures of the top `k` of every list
/// ([`beyond_accuracy`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BeyondAccuracy {
    /// Distinct items in all top-`k` lists, over the catalog size.
    pub coverage: f64,
    /// Intra-list diversity: mean over lists with ≥ 2 items of the mean
    /// cosine distance `1 − cos(e_i, e_j)` over their pairs (`None`
    /// without embeddings or without such a list).
    pub diversity: Option<f64>,
    /// Mean over non-empty lists of the mean self-information
    /// `−log2 p_i` of their items, `p_i = (count_i + 1) / (Σ count + n)`
    /// (add-one smoothing, so never-seen items are finite): higher means
    /// less popular items.
    pub novelty: f64,
    /// Gini coefficient of how often each catalog item is recommended
    /// (0: every item equally often; near 1: a few items everywhere).
    pub gini: f64,
}

/// Coverage, diversity, novelty and Gini of the top `k` of each list of
/// `rankings` over a catalog of `counts.len()` items, where `counts[i]` is
/// item `i`'s number of training interactions; `embeddings` (one row per
/// item), when given, yields the diversity. Cost: O(Σ k²·d) for the
/// diversity, O(Σ k + n) for the rest.
///
/// Errors: `k == 0`, an empty catalog, an item id outside the catalog,
/// embeddings of another row count.
///
/// ```
/// use semid::metrics::{Rankings, beyond_accuracy};
/// let r = Rankings::from_lists(&[vec![0u32, 1], vec![0, 2]]);
/// let b = beyond_accuracy(&r, 2, &[10, 1, 1, 0], None)?;
/// assert_eq!(b.coverage, 0.75);
/// # Ok::<(), semid::Error>(())
/// ```
pub fn beyond_accuracy(
    rankings: &Rankings,
    k: usize,
    counts: &[u64],
    embeddings: Option<Embeddings<'_>>,
) -> Result<BeyondAccuracy> {
    let n = counts.len();
    if k == 0 {
        return Err(Error::InvalidConfig {
            field: "k",
            reason: "is 0; use the list length to look at (e.g. 10)".into(),
        });
    }
    if n == 0 {
        return Err(Error::Empty {
            what: "item counts (the catalog)",
        });
    }
    if let Some(e) = &embeddings
        && e.rows() != n
    {
        return Err(Error::Shape {
            what: "embedding rows (one per catalog item)",
            expected: n,
            got: e.rows(),
        });
    }
    let total: f64 = counts.iter().map(|&c| c as f64).sum::<f64>() + n as f64;
    let info: Vec<f64> = counts
        .iter()
        .map(|&c| -((c as f64 + 1.0) / total).log2())
        .collect();
    // Unit rows in f64 (a zero row stays zero: distance 1 to all).
    let rows: Option<Vec<Vec<f64>>> = match embeddings {
        Some(e) => {
            let mut buf = Vec::new();
            let all = e.block(0, n, &mut buf)?;
            let d = e.dim();
            Some(
                all.chunks_exact(d)
                    .map(|r| {
                        let norm = r.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
                        r.iter()
                            .map(|&x| if norm > 0.0 { f64::from(x) / norm } else { 0.0 })
                            .collect()
                    })
                    .collect(),
            )
        }
        None => None,
    };
    let mut times = vec![0usize; n];
    let (mut nov_sum, mut nov_lists) = (0.0, 0usize);
    let (mut div_sum, mut div_lists) = (0.0, 0usize);
    for q in 0..rankings.n_queries() {
        let list = rankings.query(q);
        let top = &list[..list.len().min(k)];
        if let Some(&bad) = top.iter().find(|&&i| i as usize >= n) {
            return Err(Error::Shape {
                what: "recommended item id (below the catalog size)",
                expected: n,
                got: bad as usize,
            });
        }
        for &i in top {
            times[i as usize] += 1;
        }
        if !top.is_empty() {
            nov_sum += top.iter().map(|&i| info[i as usize]).sum::<f64>() / top.len() as f64;
            nov_lists += 1;
        }
        if let (Some(rows), true) = (&rows, top.len() >= 2) {
            let mut s = 0.0;
            let mut pairs = 0usize;
            for (x, &a) in top.iter().enumerate() {
                for &b in &top[x + 1..] {
                    let cos: f64 = rows[a as usize]
                        .iter()
                        .zip(&rows[b as usize])
                        .map(|(u, v)| u * v)
                        .sum();
                    s += 1.0 - cos;
                    pairs += 1;
                }
            }
            div_sum += s / pairs as f64;
            div_lists += 1;
        }
    }
    let covered = times.iter().filter(|&&t| t > 0).count();
    Ok(BeyondAccuracy {
        coverage: covered as f64 / n as f64,
        diversity: (div_lists > 0).then(|| div_sum / div_lists as f64),
        novelty: if nov_lists > 0 {
            nov_sum / nov_lists as f64
        } else {
            0.0
        },
        gini: crate::stats::gini(&mut times),
    })
}
