//! AVX-512: tiles of up to 12 rows × two panels (24 accumulators of the 32
//! registers). Each output is the same fused chain over `d` as on AVX2, so
//! both paths give bit-identical results.

use super::{Best, Epilogue, Gemm, LANES, NR, Tile, for_each_x86_tile};
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
unsafe fn tile<const M: usize, const NP: usize>(tl: Tile, best: &mut Best<'_>) {
    // SAFETY: offsets stay inside the extents the caller guarantees.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); NP]; M];
        for t in 0..tl.d {
            let mut b = [_mm512_setzero_ps(); NP];
            for (q, bq) in b.iter_mut().enumerate() {
                *bq = _mm512_loadu_ps(tl.panel.add(q * NR * tl.d + t * NR));
            }
            for (r, a) in acc.iter_mut().enumerate() {
                let xv = _mm512_set1_ps(*tl.x.add(r * tl.d + t));
                for q in 0..NP {
                    a[q] = _mm512_fmadd_ps(xv, b[q], a[q]);
                }
            }
        }
        let s = _mm512_set1_ps(tl.alpha);
        let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        for (r, a) in acc.iter().enumerate() {
            match tl.epi {
                Epilogue::Store => {
                    for (q, &v) in a.iter().enumerate() {
                        let o = tl.out.add(r * tl.k + q * NR);
                        let v = _mm512_mul_ps(v, s);
                        let c = if q + 1 < NP { NR } else { tl.cols };
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
                    let bv = best.vals.as_mut_ptr().add((tl.row0 + r) * LANES);
                    let bi = best.idx.as_mut_ptr().add((tl.row0 + r) * LANES) as *mut i32;
                    let mut mv = _mm512_loadu_ps(bv);
                    let mut mi = _mm512_loadu_si512(bi as *const _);
                    for (q, &v) in a.iter().enumerate() {
                        let c = tl.col0 + q * NR;
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

/// The tile loop on AVX-512F: pairs of panels, one last single panel when
/// their count is odd.
///
/// # Safety
/// The CPU supports AVX-512F; extents as for the AVX2 `run`.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn run(g: &Gemm<'_>, epi: Epilogue, out: &mut [f32], best: &mut Best<'_>) {
    for_each_x86_tile(g, (MR, 2), epi, out, |t, m, np| {
        // SAFETY: the tile lies inside `g`, `out` and `best` (from
        // for_each_x86_tile and the caller's extents).
        unsafe {
            if np == 2 {
                by_height!(m, |H| tile::<H, 2>(t, best), [12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2; 1])
            } else {
                by_height!(m, |H| tile::<H, 1>(t, best), [12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2; 1])
            }
        }
    });
}
