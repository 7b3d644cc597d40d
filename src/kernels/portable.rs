//! Portable SIMD kernels on `wide::f32x8`.
//!
//! `wide` picks its instructions when the crate is compiled: with default
//! target flags on x86-64 this is SSE2 (two 4-lane halves). The run-time
//! dispatched AVX2+FMA kernels in `avx2` serve those users better; this path
//! serves every other target.

use wide::f32x8;

#[inline(always)]
fn load(s: &[f32], i: usize) -> f32x8 {
    let a: [f32; 8] = s[i..i + 8].try_into().expect("8 lanes");
    f32x8::new(a)
}

/// Squared Euclidean distance. Panics if lengths differ.
#[must_use]
pub fn l2_sq(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "l2_sq: slice lengths differ");
    let n = a.len();
    let (mut s0, mut s1) = (f32x8::ZERO, f32x8::ZERO);
    let mut i = 0;
    while i + 16 <= n {
        let d0 = load(a, i) - load(b, i);
        let d1 = load(a, i + 8) - load(b, i + 8);
        s0 = d0.mul_add(d0, s0);
        s1 = d1.mul_add(d1, s1);
        i += 16;
    }
    if i + 8 <= n {
        let d0 = load(a, i) - load(b, i);
        s0 = d0.mul_add(d0, s0);
        i += 8;
    }
    let mut s = (s0 + s1).reduce_add();
    for j in i..n {
        let t = a[j] - b[j];
        s += t * t;
    }
    s
}

/// Dot product. Panics if lengths differ.
#[must_use]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot: slice lengths differ");
    let n = a.len();
    let (mut s0, mut s1) = (f32x8::ZERO, f32x8::ZERO);
    let mut i = 0;
    while i + 16 <= n {
        s0 = load(a, i).mul_add(load(b, i), s0);
        s1 = load(a, i + 8).mul_add(load(b, i + 8), s1);
        i += 16;
    }
    if i + 8 <= n {
        s0 = load(a, i).mul_add(load(b, i), s0);
        i += 8;
    }
    let mut s = (s0 + s1).reduce_add();
    for j in i..n {
        s += a[j] * b[j];
    }
    s
}
