//! AVX2 + FMA: tiles of up to 6 rows × two 8-wide panels; each output is
//! one fused multiply-add chain over `d`, as on AVX-512.

use super::{Best, Epilogue, Gemm, LANES, NR, Tile, for_each_x86_tile};
use std::arch::x86_64::*;

/// Rows per micro-tile (6 × 2 accumulators + 2 panel registers + 1
/// broadcast fit the 16 AVX2 registers).
const MR: usize = 6;

/// One `M × NR` tile: rows from `x`, `d` apart; `panel` is `d × NR`,
/// its first column `col0`. `Store` writes to `out`, `k` apart, `cols`
/// per row; `Argmin` updates `best` for rows `row0..row0 + M`.
///
/// # Safety
/// AVX2 and FMA enabled (only inlined into [`run`]); `x` holds `M` rows
/// of `d`, `panel` `d · NR` floats; for `Store`, `out` holds `M` rows of
/// `k ≥ cols`; for `Argmin`, `best` covers the rows and `col0 + NR`
/// columns of `h`.
#[inline(always)]
unsafe fn tile<const M: usize>(tl: Tile, best: &mut Best<'_>) {
    // SAFETY: every pointer offset stays inside the extents the caller
    // guarantees; unaligned loads and stores are used throughout.
    unsafe {
        let mut lo = [_mm256_setzero_ps(); M];
        let mut hi = [_mm256_setzero_ps(); M];
        for t in 0..tl.d {
            let b0 = _mm256_loadu_ps(tl.panel.add(t * NR));
            let b1 = _mm256_loadu_ps(tl.panel.add(t * NR + 8));
            for r in 0..M {
                let a = _mm256_broadcast_ss(&*tl.x.add(r * tl.d + t));
                lo[r] = _mm256_fmadd_ps(a, b0, lo[r]);
                hi[r] = _mm256_fmadd_ps(a, b1, hi[r]);
            }
        }
        let s = _mm256_set1_ps(tl.alpha);
        for r in 0..M {
            let (v0, v1) = (_mm256_mul_ps(lo[r], s), _mm256_mul_ps(hi[r], s));
            match tl.epi {
                Epilogue::Store => {
                    let o = tl.out.add(r * tl.k);
                    if tl.cols == NR {
                        _mm256_storeu_ps(o, v0);
                        _mm256_storeu_ps(o.add(8), v1);
                    } else {
                        let mut v = [0f32; NR];
                        _mm256_storeu_ps(v.as_mut_ptr(), v0);
                        _mm256_storeu_ps(v.as_mut_ptr().add(8), v1);
                        std::ptr::copy_nonoverlapping(v.as_ptr(), o, tl.cols);
                    }
                }
                Epilogue::Argmin => {
                    // Lanes 0..8 of the row's minima track columns
                    // col0 + l and col0 + 8 + l, in that order.
                    let bv = best.vals.as_mut_ptr().add((tl.row0 + r) * LANES);
                    let bi = best.idx.as_mut_ptr().add((tl.row0 + r) * LANES) as *mut f32;
                    let mut mv = _mm256_loadu_ps(bv);
                    let mut mi = _mm256_loadu_ps(bi);
                    for (half, v) in [v0, v1].into_iter().enumerate() {
                        let c = tl.col0 + 8 * half;
                        let val = _mm256_add_ps(v, _mm256_loadu_ps(best.h.as_ptr().add(c)));
                        let lt = _mm256_cmp_ps::<_CMP_LT_OQ>(val, mv);
                        let ids = _mm256_add_epi32(
                            _mm256_set1_epi32(c as i32),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                        );
                        mv = _mm256_blendv_ps(mv, val, lt);
                        mi = _mm256_blendv_ps(mi, _mm256_castsi256_ps(ids), lt);
                    }
                    _mm256_storeu_ps(bv, mv);
                    _mm256_storeu_ps(bi, mi);
                }
            }
        }
    }
}

/// The tile loop on AVX2 + FMA.
///
/// # Safety
/// The CPU supports AVX2 and FMA; `g` was checked by [`Gemm::new`]; for
/// `Store`, `out` is `rows·k`; for `Argmin`, `best` covers `rows` rows and
/// `h` `⌈k/NR⌉·NR` columns.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn run(g: &Gemm<'_>, epi: Epilogue, out: &mut [f32], best: &mut Best<'_>) {
    for_each_x86_tile(g, (MR, 1), epi, out, |t, m, _| {
        // SAFETY: the tile lies inside `g`, `out` and `best` (from
        // for_each_x86_tile and the caller's extents).
        unsafe { by_height!(m, |H| tile::<H>(t, best), [6, 5, 4, 3, 2; 1]) }
    });
}
