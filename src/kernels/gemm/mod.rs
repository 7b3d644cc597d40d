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
mod avx2;

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx512;

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
