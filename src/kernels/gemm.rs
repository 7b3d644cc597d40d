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
    if super::Cpu::get().avx512f() {
        // SAFETY: AVX-512F was detected; the lengths were checked above.
        #[allow(unsafe_code)]
        unsafe {
            avx512::dots(x, d, packed, k, alpha, out)
        };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if super::Cpu::get().avx2_fma() {
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

/// What a tile does with its scaled products `v = alpha · x_r · c_j`.
#[derive(Clone, Copy)]
enum Epilogue {
    /// Write `v` to `out[r · k + j]`.
    Store,
    /// Keep, per row and lane, the lowest `v + h_j` and its `j` (strict
    /// `<`, so the lowest `j` among equal values of a lane).
    Argmin,
}

/// Running per-lane minima of [`argmin_packed`]: `LANES` values and column
/// indices per row.
#[derive(Debug, Default)]
pub(crate) struct ArgminScratch {
    vals: Vec<f32>,
    idx: Vec<u32>,
    dots: Vec<f32>,
}

/// Lanes of the running minima (the widest register used).
const LANES: usize = 16;

/// For every row `r` of `x` (`rows × d`): the lowest `j` with the lowest
/// `alpha · x_r · c_j + h_j` and that value, where `c` is [`pack_panels`]
/// of `k` rows and `h_padded` holds `h` padded with `+∞` to `⌈k/NR⌉·NR`.
///
/// The same values and the same ties as computing the products with
/// [`dots_packed`] then [`super::argmin_sum`], without the `rows × k`
/// buffer (fused into the tile loop on AVX-512 and AVX2).
#[allow(clippy::too_many_arguments)]
pub(crate) fn argmin_packed(
    x: &[f32],
    d: usize,
    packed: &[f32],
    k: usize,
    h_padded: &[f32],
    alpha: f32,
    labels: &mut [u32],
    vals: &mut [f32],
    scratch: &mut ArgminScratch,
) {
    let rows = x.len() / d;
    assert!(
        packed.len() == k.div_ceil(NR) * NR * d
            && h_padded.len() == k.div_ceil(NR) * NR
            && labels.len() == rows
            && vals.len() == rows,
        "argmin_packed: inconsistent lengths"
    );
    if rows == 0 || k == 0 {
        return;
    }
    argmin_on(
        Isa::detect(),
        x,
        d,
        packed,
        k,
        h_padded,
        alpha,
        labels,
        vals,
        scratch,
    );
}

/// The kernel family a call runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Isa {
    #[cfg(target_arch = "x86_64")]
    Avx512,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    Portable,
}

impl Isa {
    fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            let cpu = super::Cpu::get();
            if cpu.avx512f() {
                return Isa::Avx512;
            }
            if cpu.avx2_fma() {
                return Isa::Avx2;
            }
        }
        Isa::Portable
    }
}

/// [`argmin_packed`] on a given kernel family (the caller checked that the
/// CPU has it, and the lengths).
#[allow(clippy::too_many_arguments)]
fn argmin_on(
    isa: Isa,
    x: &[f32],
    d: usize,
    packed: &[f32],
    k: usize,
    h_padded: &[f32],
    alpha: f32,
    labels: &mut [u32],
    vals: &mut [f32],
    scratch: &mut ArgminScratch,
) {
    let rows = x.len() / d;
    if isa == Isa::Portable {
        scratch.dots.resize(rows * k, 0.0);
        portable_dots(x, d, packed, k, alpha, &mut scratch.dots[..rows * k]);
        for (r, (l, v)) in labels.iter_mut().zip(vals.iter_mut()).enumerate() {
            let (j, m) = super::argmin_sum(&scratch.dots[r * k..(r + 1) * k], &h_padded[..k]);
            (*l, *v) = (j as u32, m);
        }
        return;
    }
    scratch.vals.clear();
    scratch.vals.resize(rows * LANES, f32::INFINITY);
    scratch.idx.clear();
    scratch.idx.resize(rows * LANES, u32::MAX);
    #[cfg(target_arch = "x86_64")]
    {
        let mut best = Best {
            h: h_padded,
            vals: &mut scratch.vals,
            idx: &mut scratch.idx,
        };
        // SAFETY: the caller checked the CPU features and the lengths;
        // `best` holds `rows × LANES` entries.
        #[allow(unsafe_code)]
        unsafe {
            if isa == Isa::Avx512 {
                avx512::run(x, d, packed, k, alpha, Epilogue::Argmin, &mut [], &mut best);
            } else {
                avx2::run(x, d, packed, k, alpha, Epilogue::Argmin, &mut [], &mut best);
            }
        }
    }
    for (r, (l, v)) in labels.iter_mut().zip(vals.iter_mut()).enumerate() {
        let bv = &scratch.vals[r * LANES..(r + 1) * LANES];
        let bi = &scratch.idx[r * LANES..(r + 1) * LANES];
        let mut m = f32::INFINITY;
        for &x in bv {
            m = if x < m { x } else { m };
        }
        let mut j = u32::MAX;
        for (&x, &i) in bv.iter().zip(bi) {
            if x == m && i < j {
                j = i;
            }
        }
        // Every value +∞: the scan's answer is column 0.
        (*l, *v) = (if j == u32::MAX { 0 } else { j }, m);
    }
}

/// The running minima an [`Epilogue::Argmin`] tile updates.
struct Best<'a> {
    h: &'a [f32],
    vals: &'a mut [f32],
    idx: &'a mut [u32],
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
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
}

/// AVX-512: tiles of up to 12 rows × two panels (24 accumulators of the 32
/// registers). Each output is the same fused chain over `d` as on AVX2, so
/// both paths give bit-identical results.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx512 {
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
        let mut rng = crate::rng::Rng::new(7, 0);
        let mut next = || rng.next_f64() as f32 - 0.5;
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
            // The fused argmin equals products + argmin_sum, value and index.
            let h: Vec<f32> = (0..k).map(|_| next().abs()).collect();
            let mut hp = h.clone();
            hp.resize(k.div_ceil(NR) * NR, f32::INFINITY);
            let (mut lab, mut val) = (vec![0u32; rows], vec![0f32; rows]);
            let mut sc = ArgminScratch::default();
            let mut isas = vec![Isa::Portable];
            #[cfg(target_arch = "x86_64")]
            {
                if Isa::detect() != Isa::Portable {
                    isas.push(Isa::Avx2);
                }
                if Isa::detect() == Isa::Avx512 {
                    isas.push(Isa::Avx512);
                }
            }
            for &isa in &isas {
                argmin_on(
                    isa, &x, d, &packed, k, &hp, -2.0, &mut lab, &mut val, &mut sc,
                );
                // The portable products can differ from the FMA ones in the
                // last bit; each path is compared with its own products.
                let prods = if isa == Isa::Portable { &b } else { &a };
                for r in 0..rows {
                    let (j, m) = crate::kernels::argmin_sum(&prods[r * k..(r + 1) * k], &h);
                    assert_eq!(
                        (lab[r], val[r].to_bits()),
                        (j as u32, m.to_bits()),
                        "{isa:?} row {r}"
                    );
                }
            }
            // Ties go to the lowest index: duplicate every centroid.
            let mut c2 = c.clone();
            c2.extend_from_slice(&c);
            let mut h2 = h.clone();
            h2.extend_from_slice(&h);
            let k2 = 2 * k;
            let p2 = pack_panels(&c2, d);
            h2.resize(k2.div_ceil(NR) * NR, f32::INFINITY);
            argmin_packed(&x, d, &p2, k2, &h2, -2.0, &mut lab, &mut val, &mut sc);
            for r in 0..rows {
                let (j, _) = crate::kernels::argmin_sum(&a[r * k..(r + 1) * k], &h);
                assert_eq!(lab[r], j as u32, "tie row {r}");
            }
            // A row's values do not depend on the block it is computed in.
            let mut one = vec![0f32; k];
            dots_packed(&x[(rows - 1) * d..], d, &packed, k, -2.0, &mut one);
            assert_eq!(one, a[(rows - 1) * k..]);
        }
    }
}
