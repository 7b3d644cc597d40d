//! Balanced last-level assignment by Sinkhorn-Knopp, as LC-Rec and
//! MiniOneRec give items unique IDs.
//!
//! [`Sinkhorn::assign`] is LC-Rec's `sinkhorn_algorithm` after its
//! `center_distance_for_constraint`, step for step:
//!
//! 1. the `B × K` squared distances are rescaled in f32 about their
//!    midpoint `m = (max + min) / 2`, divided by `max − m + 1e-5` (so into
//!    `[−1, 1]`), and cast to f64;
//! 2. `Q = exp(−d / ε)`, divided by its total;
//! 3. `iterations` times: every row scaled to sum `1/B`, then every column
//!    to sum `1/K`;
//! 4. each row's token is the argmax of its row of `Q` (the first one where
//!    values tie exactly, as numpy's and torch's argmax).
//!
//! [`resolve_collisions`] is the loop of LC-Rec's `generate_indices.py`:
//! items are encoded greedily, then, up to `rounds` times while two items
//! share a code, each group of items sharing a code gets new last-level
//! tokens from [`Sinkhorn::assign`] over the group's last-level distances.
//! What still collides after the last round is left for the caller's
//! collision policy (a suffix token).
//!
//! Sums run in row and column order in f64; `tests/data/sinkhorn/` holds
//! the numpy twin of LC-Rec's code and its outputs, which these functions
//! match token for token.
//!
//! On small groups (`B` much below `K`, which is what collisions are) and
//! LC-Rec's `ε = 0.003`, `Q` ends with every row holding exact ties: each
//! column's mass sits on the row nearest to it, and every column a row wins
//! sums to the same `1/K`. The argmax is then the *lowest-numbered*
//! codeword among those the row is nearer to than the rest of its group,
//! not its nearest one. That is LC-Rec's behaviour, reproduced here; a
//! larger `ε` (0.05–0.5) breaks the ties by distance.

use crate::error::{Error, Result, invalid};

/// Sinkhorn-Knopp settings: the entropy weight `ε` and the number of
/// row/column normalisation rounds.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Sinkhorn {
    epsilon: f64,
    iterations: usize,
}

impl Sinkhorn {
    /// LC-Rec's and MiniOneRec's settings: `ε = 0.003`, 50 iterations.
    pub const LC_REC: Sinkhorn = Sinkhorn {
        epsilon: 0.003,
        iterations: 50,
    };

    /// Smallest `ε`: `exp(1/ε)` must stay finite in f64 (`1/ε ≤ 700`).
    pub const MIN_EPSILON: f64 = 1.0 / 700.0;

    /// Settings with entropy weight `epsilon` and `iterations` rounds.
    ///
    /// Errors: `epsilon` not finite or below [`Sinkhorn::MIN_EPSILON`]
    /// (below it `exp(−d/ε)` overflows f64 and the plan is NaN, which
    /// LC-Rec prints a warning for and uses anyway); 0 iterations.
    pub fn new(epsilon: f64, iterations: usize) -> Result<Sinkhorn> {
        if !epsilon.is_finite() || epsilon < Self::MIN_EPSILON {
            return Err(invalid(
                "epsilon",
                format!(
                    "is {epsilon}; it must be finite and at least 1/700 ≈ 0.00143 (exp(1/ε) overflows below it); LC-Rec uses 0.003"
                ),
            ));
        }
        if iterations == 0 {
            return Err(invalid("iterations", "is 0; at least 1 (LC-Rec uses 50)"));
        }
        Ok(Sinkhorn {
            epsilon,
            iterations,
        })
    }

    /// The entropy weight `ε`.
    #[must_use]
    pub fn epsilon(&self) -> f64 {
        self.epsilon
    }

    /// The normalisation rounds.
    #[must_use]
    pub fn iterations(&self) -> usize {
        self.iterations
    }

    /// The transport plan `Q` (`B × K`, row-major) of the distances `dist`
    /// (`B × K`, row-major), multiplied by `B` at the end as LC-Rec does
    /// (every column then sums to `B/K`; the rows sum to about 1).
    ///
    /// Errors: `k` of 0, `dist` not whole rows of `k`, a non-finite
    /// distance, or a plan that is not finite.
    pub fn plan(&self, dist: &[f32], k: usize) -> Result<Vec<f64>> {
        if k == 0 || dist.is_empty() || !dist.len().is_multiple_of(k) {
            return Err(Error::Shape {
                what: "distances (rows of k values)",
                expected: dist.len().div_ceil(k.max(1)).max(1) * k.max(1),
                got: dist.len(),
            });
        }
        crate::data::check_finite("distances", dist, k, 0)?;
        let b = dist.len() / k;
        // Centre and scale in f32, as the reference does before `.double()`.
        let (mut mx, mut mn) = (f32::NEG_INFINITY, f32::INFINITY);
        for &v in dist {
            mx = mx.max(v);
            mn = mn.min(v);
        }
        let middle = (mx + mn) / 2.0;
        let amplitude = mx - middle + 1e-5;
        let mut q: Vec<f64> = dist
            .iter()
            .map(|&v| (-(((v - middle) / amplitude) as f64) / self.epsilon).exp())
            .collect();
        let total: f64 = q.iter().sum();
        for v in &mut q {
            *v /= total;
        }
        let mut col = vec![0f64; k];
        for _ in 0..self.iterations {
            for row in q.chunks_exact_mut(k) {
                let s: f64 = row.iter().sum();
                for v in row.iter_mut() {
                    *v /= s;
                    *v /= b as f64;
                }
            }
            col.fill(0.0);
            for row in q.chunks_exact(k) {
                for (c, &v) in col.iter_mut().zip(row) {
                    *c += v;
                }
            }
            for row in q.chunks_exact_mut(k) {
                for (v, &c) in row.iter_mut().zip(&col) {
                    *v /= c;
                    *v /= k as f64;
                }
            }
        }
        for v in &mut q {
            *v *= b as f64;
        }
        if let Some(i) = q.iter().position(|v| !v.is_finite()) {
            return Err(invalid(
                "epsilon",
                format!(
                    "{}: the plan is not finite at row {}, column {} (a distance far from the rest underflows); raise ε",
                    self.epsilon,
                    i / k,
                    i % k
                ),
            ));
        }
        Ok(q)
    }

    /// The token of every row of `dist` (`B × K`): the argmax of its row of
    /// the plan, the first where values tie. `out` has `B` entries.
    ///
    /// Errors: as [`Sinkhorn::plan`]; `k` above 65 536; `out` of another
    /// length.
    pub fn assign(&self, dist: &[f32], k: usize, out: &mut [u16]) -> Result<()> {
        if k > 1 << 16 {
            return Err(invalid(
                "k",
                format!("is {k}; tokens are u16 (at most 65536)"),
            ));
        }
        let q = self.plan(dist, k)?;
        crate::error::expect_len("tokens (one per row)", q.len() / k, out.len())?;
        for (o, row) in out.iter_mut().zip(q.chunks_exact(k)) {
            let mut best = 0;
            for (j, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = j;
                }
            }
            *o = best as u16;
        }
        Ok(())
    }
}

impl Default for Sinkhorn {
    /// [`Sinkhorn::LC_REC`].
    fn default() -> Self {
        Sinkhorn::LC_REC
    }
}

/// LC-Rec's collision loop on `codes` (`n × levels`, row-major, changed in
/// place): up to `rounds` times, while two rows share a code, every group
/// of rows sharing one gets new last-level tokens from `sinkhorn` over the
/// group's rows of `last_dist` (`n × k`: each row's distances to the `k`
/// last-level codewords). Earlier tokens never change. Returns the rounds
/// run.
///
/// Errors: shapes that do not match, `levels` of 0, and the errors of
/// [`Sinkhorn::assign`].
pub fn resolve_collisions(
    codes: &mut [u16],
    levels: usize,
    last_dist: &[f32],
    k: usize,
    sinkhorn: &Sinkhorn,
    rounds: usize,
) -> Result<usize> {
    let n = codes.len() / levels.max(1);
    crate::error::expect_len("last-level distances (n × k)", n * k, last_dist.len())?;
    resolve_with(codes, levels, k, sinkhorn, rounds, |rows, out| {
        for &r in rows {
            out.extend_from_slice(&last_dist[r * k..(r + 1) * k]);
        }
        Ok(())
    })
}

/// [`resolve_collisions`] with the distances of a group's rows appended to
/// `out` by `dist_of(rows, out)` when the group is met, so that a caller
/// computes them only for the rows that ever collide.
pub(crate) fn resolve_with(
    codes: &mut [u16],
    levels: usize,
    k: usize,
    sinkhorn: &Sinkhorn,
    rounds: usize,
    mut dist_of: impl FnMut(&[usize], &mut Vec<f32>) -> Result<()>,
) -> Result<usize> {
    if levels == 0 || !codes.len().is_multiple_of(levels) {
        return Err(Error::Shape {
            what: "codes (rows of `levels` tokens)",
            expected: codes.len().div_ceil(levels.max(1)) * levels.max(1),
            got: codes.len(),
        });
    }
    let n = codes.len() / levels;
    let mut order: Vec<usize> = (0..n).collect();
    let (mut group_dist, mut tokens) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        // Rows sorted by code, stable from row order, so a group's rows
        // ascend (as LC-Rec lists them).
        for (i, o) in order.iter_mut().enumerate() {
            *o = i;
        }
        order.sort_by(|&a, &b| {
            codes[a * levels..(a + 1) * levels].cmp(&codes[b * levels..(b + 1) * levels])
        });
        let row = |r: usize| &codes[r * levels..(r + 1) * levels];
        let mut groups: Vec<(usize, usize)> = Vec::new();
        let mut s = 0;
        while s < n {
            let e = s + order[s..]
                .iter()
                .take_while(|&&r| row(r) == row(order[s]))
                .count();
            if e - s > 1 {
                groups.push((s, e));
            }
            s = e;
        }
        if groups.is_empty() {
            return Ok(round);
        }
        for (s, e) in groups {
            let members = &order[s..e];
            group_dist.clear();
            dist_of(members, &mut group_dist)?;
            tokens.resize(members.len(), 0);
            sinkhorn.assign(&group_dist, k, &mut tokens)?;
            for (&r, &t) in members.iter().zip(&tokens) {
                codes[r * levels + levels - 1] = t;
            }
        }
    }
    Ok(rounds)
}
