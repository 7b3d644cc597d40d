//! Balanced assignment: every cluster gets ⌊m/k⌋ or ⌈m/k⌉ points.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::kernels::{BLOCK_ROWS, CentroidSet, Simd, TopK};
use crate::par::{Par, for_each_block};

/// Candidates kept per point for balanced assignment before falling back to
/// a full scan.
const BALANCED_CANDIDATES: usize = 16;

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct HeapKey(OrdF32, u32, u32, u32);

#[derive(Clone, Copy, PartialEq)]
struct OrdF32(f32);

impl Eq for OrdF32 {}

impl PartialOrd for OrdF32 {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

impl Ord for OrdF32 {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&o.0)
    }
}

/// Balanced assignment: every cluster gets ⌊m/k⌋ or ⌈m/k⌉ points. Greedy by
/// increasing distance over (point, candidate) pairs; ties by point, then
/// cluster index.
pub(crate) fn balanced_assign(
    x: &[f32],
    c: &CentroidSet<'_>,
    labels: &mut [u32],
    dists: &mut [f32],
    par: Par,
) {
    let (d, k) = (c.d, c.k);
    let m = x.len() / d;
    let cand_n = BALANCED_CANDIDATES.min(k);
    // Top candidates per point, ascending distance.
    let mut cand = vec![(0f32, 0u32); m * cand_n];
    for_each_block(
        par,
        m,
        BLOCK_ROWS,
        &mut cand,
        cand_n,
        || (Vec::new(), TopK::new(cand_n)),
        |(scratch, top), row0, cs| {
            let rows = cs.len() / cand_n;
            let xb = &x[row0 * d..(row0 + rows) * d];
            crate::kernels::neg2_dots_pub(xb, c, scratch);
            let simd = Simd::detect();
            for r in 0..rows {
                let xr = &xb[r * d..(r + 1) * d];
                let xn = simd.dot(xr, xr);
                top.clear();
                for (j, (&g, &nj)) in scratch[r * k..(r + 1) * k].iter().zip(&c.norms).enumerate() {
                    let v = g + nj;
                    if v < top.threshold() {
                        top.push(v, j as u32);
                    }
                }
                for (o, &(v, j)) in cs[r * cand_n..(r + 1) * cand_n].iter_mut().zip(top.items()) {
                    *o = ((v + xn).max(0.0), j);
                }
            }
        },
    );
    let q = m / k;
    let r = m % k;
    let mut size = vec![0usize; k];
    let mut n_big = 0usize;
    let full = |s: usize, n_big: usize| s == q + 1 || (s == q && n_big == r);
    let mut done = vec![false; m];
    let mut heap: BinaryHeap<Reverse<HeapKey>> = (0..m)
        .map(|i| {
            let (v, j) = cand[i * cand_n];
            Reverse(HeapKey(OrdF32(v), i as u32, j, 0))
        })
        .collect();
    let simd = Simd::detect();
    while let Some(Reverse(HeapKey(OrdF32(v), i, j, rank))) = heap.pop() {
        let (iu, ju) = (i as usize, j as usize);
        if done[iu] {
            continue;
        }
        if !full(size[ju], n_big) {
            done[iu] = true;
            labels[iu] = j;
            dists[iu] = v;
            size[ju] += 1;
            if size[ju] == q + 1 {
                n_big += 1;
            }
            continue;
        }
        let next = rank as usize + 1;
        if next < cand_n {
            let (v2, j2) = cand[iu * cand_n + next];
            heap.push(Reverse(HeapKey(OrdF32(v2), i, j2, next as u32)));
        } else {
            // Candidates exhausted: nearest cluster that still has room.
            let xr = &x[iu * d..(iu + 1) * d];
            let mut best = (f32::INFINITY, u32::MAX);
            for (jj, cj) in c.data.chunks_exact(d).enumerate() {
                if full(size[jj], n_big) {
                    continue;
                }
                let dv = simd.l2_sq(xr, cj);
                if dv < best.0 || best.1 == u32::MAX {
                    best = (dv, jj as u32);
                }
            }
            heap.push(Reverse(HeapKey(OrdF32(best.0), i, best.1, cand_n as u32)));
        }
    }
}
