//! AVX2 + FMA kernels, selected at run time (`is_x86_feature_detected!`), so
//! users on x86-64 get them with default target flags.
#![allow(unsafe_code)]

use std::arch::x86_64::*;

#[inline(always)]
unsafe fn hsum(v: __m256) -> f32 {
    // SAFETY: only called from functions compiled with avx2 enabled.
    unsafe {
        let lo = _mm256_castps256_ps128(v);
        let hi = _mm256_extractf128_ps(v, 1);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }
}

/// `Σ term(a_i, b_i)` over `a.len()` elements: `fma(a, b, acc)` updates
/// one of four 8-lane accumulators per 32 elements (then one per 8), which
/// are summed pairwise; `tail` adds the last `n mod 8` elements in order.
///
/// # Safety
/// AVX2 and FMA enabled (only inlined into the functions below), and
/// `b.len() >= a.len()`.
#[inline(always)]
unsafe fn fold(
    a: &[f32],
    b: &[f32],
    fma: impl Fn(__m256, __m256, __m256) -> __m256,
    tail: impl Fn(f32, f32) -> f32,
) -> f32 {
    let n = a.len();
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    // SAFETY: every load reads 8 floats at an offset i with i + 8 <= n, and
    // both slices hold at least n floats; AVX2/FMA are enabled by the caller.
    unsafe {
        let mut s = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 32 <= n {
            for (u, acc) in s.iter_mut().enumerate() {
                let (x, y) = (pa.add(i + 8 * u), pb.add(i + 8 * u));
                *acc = fma(_mm256_loadu_ps(x), _mm256_loadu_ps(y), *acc);
            }
            i += 32;
        }
        while i + 8 <= n {
            s[0] = fma(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), s[0]);
            i += 8;
        }
        let mut r = hsum(_mm256_add_ps(
            _mm256_add_ps(s[0], s[1]),
            _mm256_add_ps(s[2], s[3]),
        ));
        while i < n {
            r += tail(*pa.add(i), *pb.add(i));
            i += 1;
        }
        r
    }
}

/// Squared L2 distance over `a.len()` elements; `b` must be as long.
///
/// # Safety
/// The CPU must support AVX2 and FMA, and `b.len() >= a.len()`.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn l2_sq(a: &[f32], b: &[f32]) -> f32 {
    let sq = |x: __m256, y: __m256, acc| {
        let d = _mm256_sub_ps(x, y);
        _mm256_fmadd_ps(d, d, acc)
    };
    // SAFETY: forwarded from the caller.
    unsafe { fold(a, b, sq, |x, y| (x - y) * (x - y)) }
}

/// Dot product over `a.len()` elements; `b` must be as long.
///
/// # Safety
/// The CPU must support AVX2 and FMA, and `b.len() >= a.len()`.
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
    // SAFETY: forwarded from the caller.
    unsafe { fold(a, b, |x, y, acc| _mm256_fmadd_ps(x, y, acc), |x, y| x * y) }
}
