//! Distance kernels and batched nearest-centroid assignment.
//!
//! Three paths, one answer:
//! - [`scalar`]: plain loops, always compiled, the oracle in tests;
//! - SIMD: hand-written AVX2+FMA chosen at run time on x86-64 (so default
//!   target flags get it), otherwise the portable `wide` kernels in
//!   [`portable`];
//! - GEMM: [`nearest`] computes `‖x‖² − 2 x·c + ‖c‖²` for a block of rows at
//!   once with the crate's packed matrix-product kernel (AVX2+FMA at run
//!   time, `wide` otherwise), block by block so extra memory is
//!   `block_rows × k` floats per thread plus one packed copy of the
//!   centroids, whatever `n`, the thread count or the CPU's cache sizes.
//!
//! All argmins break exact ties toward the lowest centroid index. The CPU is
//! asked for its features once per process ([`Cpu`]); every path chooses
//! its instructions from that token.

mod assign;
#[cfg(target_arch = "x86_64")]
mod avx2;
mod cpu;
mod eigen;
mod gemm;
pub mod portable;
pub mod scalar;
mod topk;

pub use assign::{AssignPath, nearest, nearest_on};
pub(crate) use assign::{
    AssignScratch, BLOCK_ROWS, CentroidSet, assign_block, assign_rows, neg2_dots as neg2_dots_pub,
};
pub use cpu::Cpu;

pub(crate) use eigen::symmetric_eigen;
pub(crate) use gemm::{cross_products, dots_packed, pack_panels_into, transpose_into};
pub(crate) use topk::TopK;

/// Asks the CPU to bring the cache line holding `p` into its caches, so a
/// later load does not wait for memory (lookups whose addresses are known a
/// while before they are read: the trie states of every beam, batch by
/// batch). A hint only: no effect on results, none on other targets.
#[inline(always)]
pub(crate) fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` needs SSE, which every x86-64 CPU has; a
    // prefetch reads nothing the program sees and never faults, whatever
    // the address.
    #[allow(unsafe_code)]
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// An instruction-set level for the vector kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Simd {
    /// The scalar reference loops.
    Scalar,
    /// `wide::f32x8` with whatever instructions the build targets.
    Portable,
    /// AVX2 + FMA, available only when the running CPU supports it.
    Avx2Fma,
}

impl Simd {
    /// The best level the running CPU supports (from the process-wide
    /// [`Cpu`] token: no feature check per call).
    #[must_use]
    pub fn detect() -> Simd {
        if Cpu::get().avx2_fma() {
            Simd::Avx2Fma
        } else {
            Simd::Portable
        }
    }

    /// Squared L2 distance at this level (falls back to [`Simd::Portable`]
    /// when `Avx2Fma` is asked for on a CPU without it). Panics if lengths differ.
    #[must_use]
    pub fn l2_sq(self, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Simd::Scalar => scalar::l2_sq(a, b),
            Simd::Portable => portable::l2_sq(a, b),
            Simd::Avx2Fma => {
                #[cfg(target_arch = "x86_64")]
                if Simd::detect() == Simd::Avx2Fma {
                    assert_eq!(a.len(), b.len(), "l2_sq: slice lengths differ");
                    // SAFETY: the CPU supports AVX2 and FMA (checked just above) and the
                    // lengths are equal.
                    #[allow(unsafe_code)]
                    return unsafe { avx2::l2_sq(a, b) };
                }
                portable::l2_sq(a, b)
            }
        }
    }

    /// Dot product at this level. Panics if lengths differ.
    #[must_use]
    pub fn dot(self, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Simd::Scalar => scalar::dot(a, b),
            Simd::Portable => portable::dot(a, b),
            Simd::Avx2Fma => {
                #[cfg(target_arch = "x86_64")]
                if Simd::detect() == Simd::Avx2Fma {
                    assert_eq!(a.len(), b.len(), "dot: slice lengths differ");
                    // SAFETY: the CPU supports AVX2 and FMA (checked just above) and the
                    // lengths are equal.
                    #[allow(unsafe_code)]
                    return unsafe { avx2::dot(a, b) };
                }
                portable::dot(a, b)
            }
        }
    }
}

/// Squared Euclidean distance with the best kernel for this CPU.
///
/// Panics if the lengths differ.
///
/// ```
/// assert_eq!(semid::kernels::l2_sq(&[1.0, 2.0], &[1.0, 4.0]), 4.0);
/// ```
#[must_use]
pub fn l2_sq(a: &[f32], b: &[f32]) -> f32 {
    Simd::detect().l2_sq(a, b)
}

/// Dot product with the best kernel for this CPU. Panics if lengths differ.
#[must_use]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    Simd::detect().dot(a, b)
}

/// Squared norm `‖a‖²`.
#[must_use]
pub fn norm_sq(a: &[f32]) -> f32 {
    dot(a, a)
}

/// Squared norms of the rows of `x` (`rows × d`, row-major), into `out`.
pub(crate) fn row_norms_into(x: &[f32], d: usize, out: &mut [f32]) {
    let simd = Simd::detect();
    for (o, r) in out.iter_mut().zip(x.chunks_exact(d)) {
        *o = simd.dot(r, r);
    }
}

/// `argmin_j (g[j] + h[j])` with the lowest index on ties, and its value.
///
/// Two passes, both vectorizable: the minimum over 8 lanes, then the first
/// index whose value equals it (the same float operations, so equality is
/// exact). `g` and `h` must be non-empty and equally long.
#[inline]
pub(crate) fn argmin_sum(g: &[f32], h: &[f32]) -> (usize, f32) {
    debug_assert!(!g.is_empty() && g.len() == h.len());
    let mut acc = [f32::INFINITY; 8];
    let (gc, hc) = (g.chunks_exact(8), h.chunks_exact(8));
    let (gr, hr) = (gc.remainder(), hc.remainder());
    for (a, b) in gc.zip(hc) {
        for l in 0..8 {
            let v = a[l] + b[l];
            acc[l] = if v < acc[l] { v } else { acc[l] };
        }
    }
    let mut m = f32::INFINITY;
    for &v in &acc {
        m = if v < m { v } else { m };
    }
    for (a, b) in gr.iter().zip(hr) {
        let v = a + b;
        m = if v < m { v } else { m };
    }
    let j = g.iter().zip(h).position(|(a, b)| a + b == m).unwrap_or(0);
    (j, m)
}

#[cfg(test)]
mod tests {
    use super::argmin_sum;

    #[test]
    fn argmin_sum_matches_a_scan() {
        let mut rng = crate::rng::Rng::new(1, 0);
        for len in 1..70 {
            for _ in 0..20 {
                // Small integers: many exact ties.
                let mut next = || rng.below(16) as f32 - 8.0;
                let g: Vec<f32> = (0..len).map(|_| next()).collect();
                let h: Vec<f32> = (0..len).map(|_| next()).collect();
                let mut best = (0, f32::INFINITY);
                for j in 0..len {
                    if g[j] + h[j] < best.1 {
                        best = (j, g[j] + h[j]);
                    }
                }
                assert_eq!(argmin_sum(&g, &h), best);
            }
        }
    }
}
