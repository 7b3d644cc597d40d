//! The one matrix product of assignment and scoring, `alpha · X · Cᵀ`, with
//! memory the caller can see.
//!
//! Why not faer here: faer's x86-64 GEMM keeps a thread-local packing buffer
//! of twice the L3 size the CPU reports (one CI machine reports 260 MiB, so
//! 545 MB per thread), allocated the first time each thread multiplies. Its
//! size depends on the machine and *which* rayon worker ran first, which
//! made memory bounds unpredictable. This kernel packs `C` once per call
//! site into panels of [`NR`] rows (`⌈k/NR⌉·NR × d` floats, owned by the
//! caller) and needs no other scratch.
//!
//! Every output element is the sequential fused sum over `d` of one row and
//! one centroid, so it does not depend on the block height, the row's
//! position in the block, or the thread that computed it.

use wide::f32x8;

/// Centroids per packed panel (two 8-lane registers).
pub(crate) const NR: usize = 16;
/// Rows per micro-tile (6 × 2 accumulators + 2 panel registers + 1 broadcast
/// fit the 16 AVX2 registers).
const MR: usize = 6;

/// `c` (`k × d`, row-major) packed into panels: panel `p` holds, for each
/// coordinate `t`, the `t`-th values of centroids `p·NR .. p·NR + NR` (zero
/// past `k`).
pub(crate) fn pack_panels(c: &[f32], d: usize) -> Vec<f32> {
    let mut out = Vec::new();
    pack_panels_into(c, d, &mut out);
    out
}

/// [`pack_panels`] into a reused buffer.
pub(crate) fn pack_panels_into(c: &[f32], d: usize, out: &mut Vec<f32>) {
    let k = c.len() / d;
    out.clear();
    out.resize(k.div_ceil(NR) * NR * d, 0.0);
    for (j, row) in c.chunks_exact(d).enumerate() {
        let base = (j / NR) * NR * d + j % NR;
        for (t, &v) in row.iter().enumerate() {
            out[base + t * NR] = v;
        }
    }
}

/// `out[r·k + j] = alpha · x_r · c_j` for the rows of `x` (`rows × d`), with
/// `c` given as [`pack_panels`] of `k` rows; `out` holds `rows × k`.
pub(crate) fn dots_packed(
    x: &[f32],
    d: usize,
    packed: &[f32],
    k: usize,
    alpha: f32,
    out: &mut [f32],
) {
    let rows = x.len() / d;
    assert!(
        packed.len() == k.div_ceil(NR) * NR * d && out.len() == rows * k,
        "dots_packed: inconsistent lengths"
    );
    if rows == 0 || k == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: AVX-512F was detected; the lengths were checked above.
        #[allow(unsafe_code)]
        unsafe {
            avx512::dots(x, d, packed, k, alpha, out)
        };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if super::Simd::detect() == super::Simd::Avx2Fma {
        // SAFETY: AVX2 and FMA were detected; the lengths were checked above.
        #[allow(unsafe_code)]
        unsafe {
            avx2::dots(x, d, packed, k, alpha, out)
        };
        return;
    }
    portable_dots(x, d, packed, k, alpha, out);
}

/// Calls `tile(m, row0, panel, cols)` for every micro-tile, panel-major so a
/// panel stays in L1 while the block's rows stream past it.
#[inline(always)]
fn for_each_tile(rows: usize, k: usize, mut tile: impl FnMut(usize, usize, usize, usize)) {
    for p in 0..k.div_ceil(NR) {
        let cols = NR.min(k - p * NR);
        let mut i = 0;
        while i < rows {
            let m = MR.min(rows - i);
            tile(m, i, p, cols);
            i += m;
        }
    }
}

fn portable_dots(x: &[f32], d: usize, packed: &[f32], k: usize, alpha: f32, out: &mut [f32]) {
    let rows = x.len() / d;
    for_each_tile(rows, k, |m, i, p, cols| {
        let panel = &packed[p * NR * d..(p + 1) * NR * d];
        let mut lo = [f32x8::ZERO; MR];
        let mut hi = [f32x8::ZERO; MR];
        for (t, b) in panel.chunks_exact(NR).enumerate() {
            let b0 = f32x8::new(b[..8].try_into().expect("8 lanes"));
            let b1 = f32x8::new(b[8..].try_into().expect("8 lanes"));
            for r in 0..m {
                let a = f32x8::splat(x[(i + r) * d + t]);
                lo[r] = a.mul_add(b0, lo[r]);
                hi[r] = a.mul_add(b1, hi[r]);
            }
        }
        let s = f32x8::splat(alpha);
        for r in 0..m {
            let mut v = [0f32; NR];
            v[..8].copy_from_slice(&(lo[r] * s).to_array());
            v[8..].copy_from_slice(&(hi[r] * s).to_array());
            let o = (i + r) * k + p * NR;
            out[o..o + cols].copy_from_slice(&v[..cols]);
        }
    });
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
    use super::{MR, NR, for_each_tile};
    use std::arch::x86_64::*;

    /// One `m × NR` tile (`m ≤ MR`): rows from `x`, `d` apart; `panel` is
    /// `d × NR`; results go to `out`, `k` apart, `cols` of them per row.
    ///
    /// # Safety
    /// AVX2 and FMA enabled (it is only inlined into [`dots`]); `x` holds
    /// `M` rows of `d`, `panel` `d · NR` floats, `out` `M` rows of `k ≥ cols`.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile<const M: usize>(
        x: *const f32,
        d: usize,
        panel: *const f32,
        out: *mut f32,
        k: usize,
        cols: usize,
        alpha: f32,
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
                let o = out.add(r * k);
                let (v0, v1) = (_mm256_mul_ps(lo[r], s), _mm256_mul_ps(hi[r], s));
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
        }
    }

    /// [`super::dots_packed`] on AVX2 + FMA.
    ///
    /// # Safety
    /// The CPU supports AVX2 and FMA, and the lengths are consistent
    /// (`packed`: `⌈k/NR⌉·NR·d`, `out`: `rows·k`).
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dots(
        x: &[f32],
        d: usize,
        packed: &[f32],
        k: usize,
        alpha: f32,
        out: &mut [f32],
    ) {
        let rows = x.len() / d;
        let (xp, pp, op) = (x.as_ptr(), packed.as_ptr(), out.as_mut_ptr());
        for_each_tile(rows, k, |m, i, p, cols| {
            // SAFETY: rows i..i+m exist in x and out, panel p exists in
            // packed and p·NR + cols ≤ k (from for_each_tile).
            unsafe {
                let (xi, pan, o) = (xp.add(i * d), pp.add(p * NR * d), op.add(i * k + p * NR));
                match m {
                    6 => tile::<6>(xi, d, pan, o, k, cols, alpha),
                    5 => tile::<5>(xi, d, pan, o, k, cols, alpha),
                    4 => tile::<4>(xi, d, pan, o, k, cols, alpha),
                    3 => tile::<3>(xi, d, pan, o, k, cols, alpha),
                    2 => tile::<2>(xi, d, pan, o, k, cols, alpha),
                    _ => tile::<1>(xi, d, pan, o, k, cols, alpha),
                }
            }
        });
        debug_assert_eq!(MR, 6);
    }
}

/// AVX-512: tiles of up to 12 rows × two panels (24 accumulators of the 32
/// registers). Each output is the same fused chain over `d` as on AVX2, so
/// both paths give bit-identical results.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx512 {
    use super::NR;
    use std::arch::x86_64::*;

    const MR: usize = 12;

    /// One `M × (NP·NR)` tile: `NP` (1 or 2) adjacent panels.
    ///
    /// # Safety
    /// AVX-512F enabled (only inlined into [`dots`]); `x` holds `M` rows of
    /// `d`; `panel` `NP` panels of `d · NR`; `out` `M` rows of `k`, with
    /// `(NP − 1)·NR + cols ≤` the columns left in each row.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile<const M: usize, const NP: usize>(
        x: *const f32,
        d: usize,
        panel: *const f32,
        out: *mut f32,
        k: usize,
        cols: usize,
        alpha: f32,
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
            for (r, a) in acc.iter().enumerate() {
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

    /// [`super::dots_packed`] on AVX-512F.
    ///
    /// # Safety
    /// The CPU supports AVX-512F, and the lengths are consistent.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn dots(
        x: &[f32],
        d: usize,
        packed: &[f32],
        k: usize,
        alpha: f32,
        out: &mut [f32],
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
                // SAFETY: rows i..i+m exist in x and out; panels p..p+np
                // exist in packed; the last one has `cols` valid columns.
                unsafe {
                    let (xi, pan, o) = (xp.add(i * d), pp.add(p * NR * d), op.add(i * k + p * NR));
                    if np == 2 {
                        rows!(2, m, xi, d, pan, o, k, cols, alpha);
                    } else {
                        rows!(1, m, xi, d, pan, o, k, cols, alpha);
                    }
                }
                i += m;
            }
            p += np;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(x: &[f32], c: &[f32], d: usize, alpha: f32) -> Vec<f32> {
        let mut out = Vec::new();
        for xr in x.chunks_exact(d) {
            for cr in c.chunks_exact(d) {
                let s: f64 = xr.iter().zip(cr).map(|(a, b)| *a as f64 * *b as f64).sum();
                out.push((alpha as f64 * s) as f32);
            }
        }
        out
    }

    #[test]
    fn packed_dots_match_f64_reference_on_ragged_shapes() {
        let mut s = 7u64;
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        };
        for &(rows, k, d) in &[
            (1, 1, 1),
            (5, 17, 3),
            (6, 16, 8),
            (7, 33, 9),
            (13, 5, 64),
            (256, 40, 31),
        ] {
            let x: Vec<f32> = (0..rows * d).map(|_| next()).collect();
            let c: Vec<f32> = (0..k * d).map(|_| next()).collect();
            let want = reference(&x, &c, d, -2.0);
            let packed = pack_panels(&c, d);
            let mut a = vec![0f32; rows * k];
            let mut b = vec![0f32; rows * k];
            dots_packed(&x, d, &packed, k, -2.0, &mut a);
            portable_dots(&x, d, &packed, k, -2.0, &mut b);
            #[cfg(target_arch = "x86_64")]
            if crate::kernels::Simd::detect() == crate::kernels::Simd::Avx2Fma {
                // The AVX2 path gives the same bits as the dispatched one.
                let mut c = vec![0f32; rows * k];
                // SAFETY: AVX2+FMA detected; lengths as above.
                #[allow(unsafe_code)]
                unsafe {
                    avx2::dots(&x, d, &packed, k, -2.0, &mut c)
                };
                assert_eq!(a, c, "{rows}x{k}x{d}: AVX2 and dispatched paths differ");
            }
            for (i, ((&w, &u), &v)) in want.iter().zip(&a).zip(&b).enumerate() {
                let tol = 1e-5 * (d as f32).sqrt() + 1e-6;
                assert!((w - u).abs() <= tol, "{rows}x{k}x{d} [{i}]: {u} vs {w}");
                assert!((w - v).abs() <= tol, "{rows}x{k}x{d} [{i}]: {v} vs {w}");
            }
            // A row's values do not depend on the block it is computed in.
            let mut one = vec![0f32; k];
            dots_packed(&x[(rows - 1) * d..], d, &packed, k, -2.0, &mut one);
            assert_eq!(one, a[(rows - 1) * k..]);
        }
    }
}
