//! AVX-512: tiles of up to 12 rows × two panels (24 accumulators of the 32
//! registers). Each output is the same fused chain over `d` as on AVX2, so
//! both paths give bit-identical results.

use super::{Best, Epilogue, LANES, NR};
use std::arch::x86_64::*;

const MR: usize = 12;

/// One `M × (NP·NR)` tile: `NP` (1 or 2) adjacent panels starting at
/// column `col0`; epilogues as in the AVX2 tile.
///
/// # Safety
/// AVX-512F enabled (only inlined into [`run`]); `x` holds `M` rows of
/// `d`; `panel` `NP` panels of `d · NR`; for `Store`, `out` `M` rows of
/// `k`, with `(NP − 1)·NR + cols ≤` the columns left in each row; for
/// `Argmin`, `best` covers the rows and `col0 + NP·NR` columns of `h`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<const M: usize, const NP: usize>(
    x: *const f32,
    d: usize,
    panel: *const f32,
    alpha: f32,
    epi: Epilogue,
    out: *mut f32,
    k: usize,
    cols: usize,
    best: &mut Best<'_>,
    row0: usize,
    col0: usize,
) {
    // SAFETY: offsets stay inside the extents the caller guarantees.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); NP]; M];
        for t in 0..d {
            let mut b = [_mm512_setzero_ps(); NP];
            for (q, bq) in b.iter_mut().enumerate() {
                *bq = _mm512_loadu_ps(panel.add(q * NR * d + t * NR));
            }
            for (r, a) in acc.iter_mut().enumerate() {
                let xv = _mm512_set1_ps(*x.add(r * d + t));
                for q in 0..NP {
                    a[q] = _mm512_fmadd_ps(xv, b[q], a[q]);
                }
            }
        }
        let s = _mm512_set1_ps(alpha);
        let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        for (r, a) in acc.iter().enumerate() {
            match epi {
                Epilogue::Store => {
                    for (q, &v) in a.iter().enumerate() {
                        let o = out.add(r * k + q * NR);
                        let v = _mm512_mul_ps(v, s);
                        let c = if q + 1 < NP { NR } else { cols };
                        if c == NR {
                            _mm512_storeu_ps(o, v);
                        } else {
                            _mm512_mask_storeu_ps(o, ((1u32 << c) - 1) as u16, v);
                        }
                    }
                }
                Epilogue::Argmin => {
                    // Lane l of the row's minima tracks columns
                    // col0 + l, col0 + NR + l, ... in that order.
                    let bv = best.vals.as_mut_ptr().add((row0 + r) * LANES);
                    let bi = best.idx.as_mut_ptr().add((row0 + r) * LANES) as *mut i32;
                    let mut mv = _mm512_loadu_ps(bv);
                    let mut mi = _mm512_loadu_si512(bi as *const _);
                    for (q, &v) in a.iter().enumerate() {
                        let c = col0 + q * NR;
                        let val = _mm512_add_ps(
                            _mm512_mul_ps(v, s),
                            _mm512_loadu_ps(best.h.as_ptr().add(c)),
                        );
                        let lt = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(val, mv);
                        let ids = _mm512_add_epi32(_mm512_set1_epi32(c as i32), lanes);
                        mv = _mm512_mask_blend_ps(lt, mv, val);
                        mi = _mm512_mask_blend_epi32(lt, mi, ids);
                    }
                    _mm512_storeu_ps(bv, mv);
                    _mm512_storeu_si512(bi as *mut _, mi);
                }
            }
        }
    }
}

macro_rules! rows {
    ($np:literal, $m:expr, $($a:expr),*) => {
        match $m {
            12 => tile::<12, $np>($($a),*),
            11 => tile::<11, $np>($($a),*),
            10 => tile::<10, $np>($($a),*),
            9 => tile::<9, $np>($($a),*),
            8 => tile::<8, $np>($($a),*),
            7 => tile::<7, $np>($($a),*),
            6 => tile::<6, $np>($($a),*),
            5 => tile::<5, $np>($($a),*),
            4 => tile::<4, $np>($($a),*),
            3 => tile::<3, $np>($($a),*),
            2 => tile::<2, $np>($($a),*),
            _ => tile::<1, $np>($($a),*),
        }
    };
}

/// The tile loop on AVX-512F.
///
/// # Safety
/// The CPU supports AVX-512F; lengths as in the AVX2 `run`.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn run(
    x: &[f32],
    d: usize,
    packed: &[f32],
    k: usize,
    alpha: f32,
    epi: Epilogue,
    out: &mut [f32],
    best: &mut Best<'_>,
) {
    let rows = x.len() / d;
    let (xp, pp, op) = (x.as_ptr(), packed.as_ptr(), out.as_mut_ptr());
    let panels = k.div_ceil(NR);
    let mut p = 0;
    while p < panels {
        let np = if p + 1 < panels { 2 } else { 1 };
        let cols = NR.min(k - (p + np - 1) * NR);
        let mut i = 0;
        while i < rows {
            let m = MR.min(rows - i);
            // SAFETY: rows i..i+m exist in x (and out for Store); panels
            // p..p+np exist in packed; the last one has `cols` valid
            // columns; h covers them for Argmin.
            unsafe {
                let (xi, pan) = (xp.add(i * d), pp.add(p * NR * d));
                let o = if matches!(epi, Epilogue::Store) {
                    op.add(i * k + p * NR)
                } else {
                    op
                };
                let c0 = p * NR;
                if np == 2 {
                    rows!(2, m, xi, d, pan, alpha, epi, o, k, cols, best, i, c0);
                } else {
                    rows!(1, m, xi, d, pan, alpha, epi, o, k, cols, best, i, c0);
                }
            }
            i += m;
        }
        p += np;
    }
}

/// [`super::dots_packed`] on AVX-512F.
///
/// # Safety
/// As [`run`] with `Store`.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn dots(
    x: &[f32],
    d: usize,
    packed: &[f32],
    k: usize,
    alpha: f32,
    out: &mut [f32],
) {
    let mut none = Best {
        h: &[],
        vals: &mut [],
        idx: &mut [],
    };
    // SAFETY: forwarded from the caller.
    unsafe { run(x, d, packed, k, alpha, Epilogue::Store, out, &mut none) }
}
