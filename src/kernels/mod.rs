//! Distance kernels and batched nearest-centroid assignment.
//!
//! Three paths, one answer:
//! - [`scalar`]: plain loops, always compiled, the oracle in tests;
//! - SIMD: hand-written AVX2+FMA chosen at run time on x86-64 (so default
//!   target flags get it), otherwise the portable `wide` kernels in
//!   [`portable`];
//! - GEMM: [`nearest`] computes `‖x‖² − 2 x·c + ‖c‖²` for a block of rows at
//!   once through `faer`'s matrix product, block by block so extra memory is
//!   `block_rows × k` floats per thread whatever `n` is.
//!
//! All argmins break exact ties toward the lowest centroid index.

mod assign;
#[cfg(target_arch = "x86_64")]
mod avx2;
pub mod portable;
pub mod scalar;
mod topk;

pub use assign::{AssignPath, nearest, nearest_with};
pub(crate) use assign::{BLOCK_ROWS, CentroidSet, assign_block, neg2_dots as neg2_dots_pub};
pub(crate) use topk::TopK;

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
    /// The best level the running CPU supports.
    #[must_use]
    pub fn detect() -> Simd {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
            {
                return Simd::Avx2Fma;
            }
        }
        Simd::Portable
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
