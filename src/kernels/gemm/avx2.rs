//! AVX2 + FMA: tiles of up to 6 rows × two 8-wide panels; each output is
//! one fused multiply-add chain over `d`, as on AVX-512.

use super::{Best, Epilogue, LANES, MR, NR, for_each_tile};
use std::arch::x86_64::*;

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
#[allow(clippy::too_many_arguments)]
unsafe fn tile<const M: usize>(
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
    // SAFETY: every pointer offset stays inside the extents the caller
    // guarantees; unaligned loads and stores are used throughout.
    unsafe {
        let mut lo = [_mm256_setzero_ps(); M];
        let mut hi = [_mm256_setzero_ps(); M];
        for t in 0..d {
            let b0 = _mm256_loadu_ps(panel.add(t * NR));
            let b1 = _mm256_loadu_ps(panel.add(t * NR + 8));
            for r in 0..M {
                let a = _mm256_broadcast_ss(&*x.add(r * d + t));
                lo[r] = _mm256_fmadd_ps(a, b0, lo[r]);
                hi[r] = _mm256_fmadd_ps(a, b1, hi[r]);
            }
        }
        let s = _mm256_set1_ps(alpha);
        for r in 0..M {
            let (v0, v1) = (_mm256_mul_ps(lo[r], s), _mm256_mul_ps(hi[r], s));
            match epi {
                Epilogue::Store => {
                    let o = out.add(r * k);
                    if cols == NR {
                        _mm256_storeu_ps(o, v0);
                        _mm256_storeu_ps(o.add(8), v1);
                    } else {
                        let mut v = [0f32; NR];
                        _mm256_storeu_ps(v.as_mut_ptr(), v0);
                        _mm256_storeu_ps(v.as_mut_ptr().add(8), v1);
                        std::ptr::copy_nonoverlapping(v.as_ptr(), o, cols);
                    }
                }
                Epilogue::Argmin => {
                    // Lanes 0..8 of the row's minima track columns
                    // col0 + l and col0 + 8 + l, in that order.
                    let bv = best.vals.as_mut_ptr().add((row0 + r) * LANES);
                    let bi = best.idx.as_mut_ptr().add((row0 + r) * LANES) as *mut f32;
                    let mut mv = _mm256_loadu_ps(bv);
                    let mut mi = _mm256_loadu_ps(bi);
                    for (half, v) in [v0, v1].into_iter().enumerate() {
                        let c = col0 + 8 * half;
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
/// The CPU supports AVX2 and FMA; `packed` is `⌈k/NR⌉·NR·d`; for
/// `Store`, `out` is `rows·k`; for `Argmin`, `best` covers `rows` rows
/// and `h` `⌈k/NR⌉·NR` columns.
#[target_feature(enable = "avx2,fma")]
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
    for_each_tile(rows, k, |m, i, p, cols| {
        // SAFETY: rows i..i+m exist in x (and out for Store), panel p
        // exists in packed and p·NR + cols ≤ k (from for_each_tile).
        unsafe {
            let (xi, pan) = (xp.add(i * d), pp.add(p * NR * d));
            let o = if matches!(epi, Epilogue::Store) {
                op.add(i * k + p * NR)
            } else {
                op
            };
            let c0 = p * NR;
            match m {
                6 => tile::<6>(xi, d, pan, alpha, epi, o, k, cols, best, i, c0),
                5 => tile::<5>(xi, d, pan, alpha, epi, o, k, cols, best, i, c0),
                4 => tile::<4>(xi, d, pan, alpha, epi, o, k, cols, best, i, c0),
                3 => tile::<3>(xi, d, pan, alpha, epi, o, k, cols, best, i, c0),
                2 => tile::<2>(xi, d, pan, alpha, epi, o, k, cols, best, i, c0),
                _ => tile::<1>(xi, d, pan, alpha, epi, o, k, cols, best, i, c0),
            }
        }
    });
    debug_assert_eq!(MR, 6);
}

/// [`super::dots_packed`] on AVX2 + FMA.
///
/// # Safety
/// As [`run`] with `Store`.
#[target_feature(enable = "avx2,fma")]
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
