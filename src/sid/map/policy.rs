//! What happens when several items get the same code.

use super::SidMap;
use crate::data::{Codes, Embeddings};
use crate::error::{Error, Result, invalid};
use crate::quantize::LastLevelDistances;

/// What to do when several items get the same code.
///
/// Every policy is deterministic: items are taken in catalog order (the
/// order of the `codes` rows), and items already in a map never change ID
/// when new ones are inserted.
///
/// How the published systems handle collisions, for orientation:
/// - **TIGER** appends one token to every code: 0, 1, 2, … over the items
///   sharing the code. That is [`CollisionPolicy::AppendSuffix`].
/// - **GRID** (Snap) also de-duplicates with an appended token, like TIGER.
/// - **MiniOneRec**, following LC-Rec, re-assigns colliding items at the
///   last level by Sinkhorn–Knopp on the last codebook's distances:
///   [`CollisionPolicy::Sinkhorn`]. [`CollisionPolicy::ReassignLastLevel`]
///   is the greedy, capacity-bounded form of that idea (as in FORGE).
/// - Systems that tolerate shared IDs and rank the items under one ID by
///   another signal use [`CollisionPolicy::AllowShared`].
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum CollisionPolicy {
    /// IDs get one extra token: the items sharing a code are numbered 0, 1,
    /// 2, … in catalog order (TIGER). IDs are `L + 1` tokens long and
    /// unique; the suffix vocabulary is the largest bucket size.
    AppendSuffix,
    /// IDs keep `L` tokens; at most `capacity` items share one ID. When a
    /// code is over capacity, the items closest to its last-level codeword
    /// keep it and the others move to their next-nearest last-level codeword
    /// (same first `L − 1` tokens) that still has room. `capacity = 1` makes
    /// IDs unique. Needs the quantizer's last-level distances
    /// ([`SidMap::build_with_distances`], [`SidMap::insert_with_distances`]).
    ReassignLastLevel {
        /// Most items per ID (at least 1).
        capacity: u32,
    },
    /// Keep collisions: one ID maps to every item that has that code.
    AllowShared,
    /// LC-Rec's and MiniOneRec's: up to `rounds` times, every group of the
    /// new items that share a code gets new last-level tokens from
    /// Sinkhorn-Knopp over its last-level distances
    /// ([`resolve_collisions`](crate::sid::resolve_collisions)); then, as
    /// [`CollisionPolicy::AppendSuffix`], a suffix token numbers what still
    /// collides (identical embeddings always do), so IDs are `L + 1` tokens
    /// and unique. Needs last-level distances, as `ReassignLastLevel`.
    /// Items already in the map keep their IDs; new items collide with them
    /// only through the suffix. LC-Rec's settings:
    /// [`CollisionPolicy::SINKHORN`].
    Sinkhorn {
        /// ε and iterations.
        sinkhorn: crate::sid::Sinkhorn,
        /// Most rounds of the loop (LC-Rec: 20).
        rounds: u32,
    },
}

impl CollisionPolicy {
    /// [`CollisionPolicy::Sinkhorn`] with LC-Rec's settings: ε = 0.003, 50
    /// iterations, 20 rounds.
    pub const SINKHORN: CollisionPolicy = CollisionPolicy::Sinkhorn {
        sinkhorn: crate::sid::Sinkhorn::LC_REC,
        rounds: 20,
    };

    /// Whether the policy reads last-level distances
    /// ([`SidMap::build_with_distances`]).
    #[must_use]
    pub fn needs_distances(&self) -> bool {
        matches!(
            self,
            CollisionPolicy::ReassignLastLevel { .. } | CollisionPolicy::Sinkhorn { .. }
        )
    }

    /// Whether IDs carry a suffix token (`L + 1` tokens).
    pub(crate) fn has_suffix(&self) -> bool {
        matches!(
            self,
            CollisionPolicy::AppendSuffix | CollisionPolicy::Sinkhorn { .. }
        )
    }
}

/// [`CollisionPolicy::ReassignLastLevel`]'s work on a [`SidMap`].
impl SidMap {
    /// Re-assigns the batch rows of the over-capacity groups (`groups`:
    /// `(start, end, over)` ranges of `order`, rows sorted by code); returns
    /// how many changed token.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn reassign(
        &self,
        order: &[u32],
        groups: &[(usize, usize, bool)],
        codes: &Codes,
        new_ids: &mut [u16],
        capacity: usize,
        q: &dyn LastLevelDistances,
        x: Embeddings<'_>,
    ) -> Result<usize> {
        let levels = self.code_sizes.len();
        let k = self.code_sizes[levels - 1];
        // Contenders, in code order, and their last-level distances.
        let idx: Vec<usize> = groups
            .iter()
            .filter(|g| g.2)
            .flat_map(|g| order[g.0..g.1].iter().map(|&r| r as usize))
            .collect();
        if idx.is_empty() {
            return Ok(0);
        }
        x.check_all_finite()?;
        let xs = x.gather(&idx);
        let xe = Embeddings::new(&xs, x.dim())?;
        let mut cc = Vec::with_capacity(idx.len() * levels);
        for &r in &idx {
            cc.extend_from_slice(codes.row(r));
        }
        let mut dist = vec![0f32; idx.len() * k];
        q.last_level_distances(xe, &cc, &mut dist)?;
        if let Some(p) = dist.iter().position(|v| v.is_nan()) {
            return Err(Error::NonFinite {
                what: "last-level distances",
                row: idx[p / k],
                col: p % k,
            });
        }
        let mut moved = 0;
        let mut occ = vec![0usize; k];
        let mut local: Vec<usize> = Vec::new();
        let mut cand: Vec<u16> = Vec::with_capacity(k);
        // Walk blocks of groups sharing the first L − 1 tokens.
        let (mut gi, mut ci) = (0, 0);
        while gi < groups.len() {
            let pre = &codes.row(order[groups[gi].0] as usize)[..levels - 1];
            let mut ge = gi + 1;
            while ge < groups.len() && &codes.row(order[groups[ge].0] as usize)[..levels - 1] == pre
            {
                ge += 1;
            }
            // Occupancy of each last-level code under this prefix: existing
            // items plus the batch groups within capacity.
            occ.iter_mut().for_each(|o| *o = 0);
            self.count_last_level(pre, &mut occ);
            local.clear();
            for &(s, e, over) in &groups[gi..ge] {
                if over {
                    local.extend(ci..ci + (e - s));
                    ci += e - s;
                } else {
                    occ[codes.row(order[s] as usize)[levels - 1] as usize] += e - s;
                }
            }
            // Closest to their own codeword first.
            let own = |i: usize| dist[i * k + codes.row(idx[i])[levels - 1] as usize];
            local.sort_by(|&a, &b| own(a).total_cmp(&own(b)).then(idx[a].cmp(&idx[b])));
            for &i in &local {
                let row = &dist[i * k..(i + 1) * k];
                cand.clear();
                cand.extend(0..k as u16);
                cand.sort_by(|&a, &b| row[a as usize].total_cmp(&row[b as usize]).then(a.cmp(&b)));
                let Some(&t) = cand.iter().find(|&&t| occ[t as usize] < capacity) else {
                    return Err(invalid(
                        "capacity",
                        format!(
                            "is {capacity}: the {k} last-level codes under prefix {pre:?} are all full; raise capacity or use AppendSuffix"
                        ),
                    ));
                };
                occ[t as usize] += 1;
                let r = idx[i];
                if t != codes.row(r)[levels - 1] {
                    moved += 1;
                    new_ids[r * levels + levels - 1] = t;
                }
            }
            gi = ge;
        }
        Ok(moved)
    }

    /// Existing items whose ID starts with `prefix`.
    pub(super) fn count_prefix(&self, prefix: &[u16]) -> usize {
        [&*self.base, &self.delta]
            .iter()
            .map(|part| {
                let (lo, hi) = part.prefix_range(prefix, self.id_len);
                hi - lo
            })
            .sum()
    }

    /// Adds to `occ[t]` the existing items with ID `prefix ++ [t]`.
    pub(super) fn count_last_level(&self, prefix: &[u16], occ: &mut [usize]) {
        for part in [&*self.base, &self.delta] {
            let (lo, hi) = part.prefix_range(prefix, self.id_len);
            for &r in &part.sorted[lo..hi] {
                // In range in a checked map (inserts verify a mapped one).
                if let Some(&t) = part.id(r, self.id_len).get(prefix.len())
                    && let Some(o) = occ.get_mut(t as usize)
                {
                    *o += 1;
                }
            }
        }
    }
}
