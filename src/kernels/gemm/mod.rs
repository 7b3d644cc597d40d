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
    let g = Gemm::new(x, d, packed, k, alpha);
    assert!(
        out.len() == g.rows() * k,
        "dots_packed: inconsistent lengths"
    );
    if g.rows() > 0 && k > 0 {
        run_on(Isa::detect(), &g, Epilogue::Store, out, &mut Best::none());
    }
}

/// One product `alpha · X · Cᵀ`: `x` holds rows of `d`, `packed` is
/// [`pack_panels`] of `k` centroids.
#[derive(Clone, Copy)]
struct Gemm<'a> {
    x: &'a [f32],
    d: usize,
    packed: &'a [f32],
    k: usize,
    alpha: f32,
}

impl<'a> Gemm<'a> {
    /// Panics unless `packed` holds `⌈k/NR⌉·NR·d` floats (an internal
    /// invariant: every caller packs with [`pack_panels`]).
    fn new(x: &'a [f32], d: usize, packed: &'a [f32], k: usize, alpha: f32) -> Self {
        assert!(
            d > 0 && packed.len() == k.div_ceil(NR) * NR * d,
            "gemm: packed centroids of inconsistent length"
        );
        Gemm {
            x,
            d,
            packed,
            k,
            alpha,
        }
    }

    fn rows(&self) -> usize {
        self.x.len() / self.d
    }

    /// Calls `tile(m, row0, panel, np, cols)` for every micro-tile of at
    /// most `mr` rows and `np_max` adjacent panels (`np` of them from
    /// `panel`, the last with `cols` valid columns), panel-major so that the
    /// panels stay in L1 while the block's rows stream past.
    #[inline(always)]
    fn for_each_tile(
        &self,
        mr: usize,
        np_max: usize,
        mut tile: impl FnMut(usize, usize, usize, usize, usize),
    ) {
        let (rows, panels) = (self.rows(), self.k.div_ceil(NR));
        let mut p = 0;
        while p < panels {
            let np = np_max.min(panels - p);
            let cols = NR.min(self.k - (p + np - 1) * NR);
            let mut i = 0;
            while i < rows {
                let m = mr.min(rows - i);
                tile(m, i, p, np, cols);
                i += m;
            }
            p += np;
        }
    }
}

/// One micro-tile of a [`Gemm`] for the x86 kernels, as pointers into its
/// checked slices.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Tile {
    /// The tile's first row of `x`; rows are `d` apart.
    x: *const f32,
    d: usize,
    /// The tile's first panel; panels are `d · NR` apart.
    panel: *const f32,
    alpha: f32,
    epi: Epilogue,
    /// For `Store`, the tile's first output; rows are `k` apart.
    out: *mut f32,
    k: usize,
    /// Valid columns of the tile's last panel.
    cols: usize,
    /// The tile's first row and column in the whole product.
    row0: usize,
    col0: usize,
}

/// Calls `tile(t, m, np)` for every micro-tile of `g` (as
/// [`Gemm::for_each_tile`] with `(mr, np_max)`); for `Store`, `out` holds
/// `rows × k`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn for_each_x86_tile(
    g: &Gemm<'_>,
    (mr, np_max): (usize, usize),
    epi: Epilogue,
    out: &mut [f32],
    mut tile: impl FnMut(Tile, usize, usize),
) {
    let (xp, pp, op) = (g.x.as_ptr(), g.packed.as_ptr(), out.as_mut_ptr());
    let store = matches!(epi, Epilogue::Store);
    g.for_each_tile(mr, np_max, |m, i, p, np, cols| {
        let t = Tile {
            x: xp.wrapping_add(i * g.d),
            d: g.d,
            panel: pp.wrapping_add(p * NR * g.d),
            alpha: g.alpha,
            epi,
            out: op.wrapping_add(if store { i * g.k + p * NR } else { 0 }),
            k: g.k,
            cols,
            row0: i,
            col0: p * NR,
        };
        tile(t, m, np);
    });
}

/// `match m { 12 => f::<12>(..), .. }`: a tile call with the row count
/// `m` as a const `H`, for the listed heights; the last height also takes
/// every other `m`.
#[cfg(target_arch = "x86_64")]
macro_rules! by_height {
    ($m:expr, |$h:ident| $call:expr, [$($n:literal),+; $last:literal]) => {
        match $m {
            $($n => {
                const $h: usize = $n;
                $call
            })+
            _ => {
                const $h: usize = $last;
                $call
            }
        }
    };
}

/// Runs `g` with `epi` on `isa`, which the CPU has (`Portable` only
/// stores); the caller checked the lengths.
fn run_on(isa: Isa, g: &Gemm<'_>, epi: Epilogue, out: &mut [f32], best: &mut Best<'_>) {
    match isa {
        // SAFETY (both arms): `isa` was detected on this CPU; `Gemm::new`
        // checked `packed`, the caller `out` (Store) or `best` (Argmin).
        #[cfg(target_arch = "x86_64")]
        #[allow(unsafe_code)]
        Isa::Avx512 => unsafe { avx512::run(g, epi, out, best) },
        #[cfg(target_arch = "x86_64")]
        #[allow(unsafe_code)]
        Isa::Avx2 => unsafe { avx2::run(g, epi, out, best) },
        Isa::Portable => {
            debug_assert!(matches!(epi, Epilogue::Store));
            portable_dots(g, out)
        }
    }
}

/// Rows per portable micro-tile.
const MR: usize = 6;

fn portable_dots(g: &Gemm<'_>, out: &mut [f32]) {
    let (x, d, k) = (g.x, g.d, g.k);
    g.for_each_tile(MR, 1, |m, i, p, _, cols| {
        let panel = &g.packed[p * NR * d..(p + 1) * NR * d];
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
        let s = f32x8::splat(g.alpha);
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
    let g = Gemm::new(x, d, packed, k, alpha);
    let rows = g.rows();
    assert!(
        h_padded.len() == k.div_ceil(NR) * NR && labels.len() == rows && vals.len() == rows,
        "argmin_packed: inconsistent lengths"
    );
    if rows > 0 && k > 0 {
        argmin_on(Isa::detect(), &g, h_padded, labels, vals, scratch);
    }
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
fn argmin_on(
    isa: Isa,
    g: &Gemm<'_>,
    h_padded: &[f32],
    labels: &mut [u32],
    vals: &mut [f32],
    scratch: &mut ArgminScratch,
) {
    let (rows, k) = (g.rows(), g.k);
    if isa == Isa::Portable {
        scratch.dots.resize(rows * k, 0.0);
        portable_dots(g, &mut scratch.dots[..rows * k]);
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
    let mut best = Best {
        h: h_padded,
        vals: &mut scratch.vals,
        idx: &mut scratch.idx,
    };
    run_on(isa, g, Epilogue::Argmin, &mut [], &mut best);
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

impl Best<'_> {
    /// No minima (for `Store`).
    fn none() -> Self {
        Best {
            h: &[],
            vals: &mut [],
            idx: &mut [],
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2;

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx512;

/// `dst` (`d × rows`) = the transpose of `src` (`rows × d`), in tiles of
/// 8 × 8 so that reads and writes both stay within a few cache lines.
pub(crate) fn transpose_into(src: &[f32], rows: usize, d: usize, dst: &mut Vec<f32>) {
    const T: usize = 8;
    dst.clear();
    dst.resize(d * rows, 0f32);
    for r0 in (0..rows).step_by(T) {
        let r1 = (r0 + T).min(rows);
        for t0 in (0..d).step_by(T) {
            let t1 = (t0 + T).min(d);
            for r in r0..r1 {
                let row = &src[r * d..(r + 1) * d];
                for t in t0..t1 {
                    dst[t * rows + r] = row[t];
                }
            }
        }
    }
}

/// Rows per chunk of [`cross_products`]: a chunk's transposed rows (`d ×
/// 256` floats, 384 KiB at `d = 384`) stay in L2 while its products are
/// taken.
const CROSS_CHUNK: usize = 256;

/// Most groups of consecutive chunks [`cross_products`] sums separately
/// (one worker each) before adding the groups in order.
const CROSS_GROUPS: usize = 8;

/// `Σ_r a_r b_rᵀ` (`d × d`, row-major, f64) over the rows of `a` and `b`
/// (`n × d` each, row-major). The rows are taken in chunks of
/// [`CROSS_CHUNK`]; each chunk's transposes are packed and multiplied with
/// the crate's GEMM in f32. The chunks form at most [`CROSS_GROUPS`] groups
/// of consecutive chunks (from `n` alone); a worker adds a group's chunk
/// products in order in f64, and the group sums are added in order, so the
/// thread count changes nothing. One worker per group keeps the transposes
/// and packing of a chunk on the thread that multiplies it (splitting each
/// chunk's product over the threads spent most of the time in hand-offs).
/// When `a` and `b` are the same slice, each chunk is transposed once.
pub(crate) fn cross_products(a: &[f32], b: &[f32], d: usize, par: crate::par::Par) -> Vec<f64> {
    debug_assert_eq!(a.len(), b.len());
    let n = a.len() / d.max(1);
    let chunks = n.div_ceil(CROSS_CHUNK).max(1);
    let per = chunks.div_ceil(CROSS_GROUPS.min(chunks));
    let groups = chunks.div_ceil(per);
    let same = std::ptr::eq(a.as_ptr(), b.as_ptr());
    let mut partial = vec![0f64; groups * d * d];
    crate::par::for_each_block(
        par,
        groups,
        1,
        &mut partial,
        d * d,
        || (Vec::new(), Vec::new(), Vec::new(), vec![0f32; d * d]),
        |(at, bt, packed, prod): &mut (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>), g, acc| {
            for c in g * per..((g + 1) * per).min(chunks) {
                let rows = c * CROSS_CHUNK..((c + 1) * CROSS_CHUNK).min(n);
                let cs = rows.len();
                transpose_into(&a[rows.start * d..rows.end * d], cs, d, at);
                let bsrc = if same {
                    &at[..]
                } else {
                    transpose_into(&b[rows.start * d..rows.end * d], cs, d, bt);
                    &bt[..]
                };
                pack_panels_into(bsrc, cs, packed);
                dots_packed(at, cs, packed, d, 1.0, prod);
                for (s, &p) in acc.iter_mut().zip(prod.iter()) {
                    *s += p as f64;
                }
            }
        },
    );
    let (first, rest) = partial.split_at_mut(d * d);
    for g in rest.chunks_exact(d * d) {
        for (s, &p) in first.iter_mut().zip(g) {
            *s += p;
        }
    }
    partial.truncate(d * d);
    partial
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
            let g = Gemm::new(&x, d, &packed, k, -2.0);
            portable_dots(&g, &mut b);
            #[cfg(target_arch = "x86_64")]
            if Isa::detect() != Isa::Portable {
                // The AVX2 path gives the same bits as the dispatched one.
                let mut c = vec![0f32; rows * k];
                run_on(Isa::Avx2, &g, Epilogue::Store, &mut c, &mut Best::none());
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
                argmin_on(isa, &g, &hp, &mut lab, &mut val, &mut sc);
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
