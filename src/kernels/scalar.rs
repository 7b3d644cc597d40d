//! Scalar reference kernels: the oracle for the SIMD and GEMM paths.
//!
//! Plain sequential loops, always compiled, never dispatched to by hot paths.

/// Squared Euclidean distance `Σ (a_i − b_i)²`. Panics if lengths differ.
#[must_use]
pub fn l2_sq(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "l2_sq: slice lengths differ");
    let mut s = 0.0f32;
    for (x, y) in a.iter().zip(b) {
        let t = x - y;
        s += t * t;
    }
    s
}

/// Dot product `Σ a_i b_i`. Panics if lengths differ.
#[must_use]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot: slice lengths differ");
    let mut s = 0.0f32;
    for (x, y) in a.iter().zip(b) {
        s += x * y;
    }
    s
}

/// Nearest centroid of every row of `x` (`n × d`) among `centroids`
/// (`k × d`) by [`l2_sq`]; ties go to the lowest index. Writes labels and
/// squared distances.
pub fn nearest(x: &[f32], centroids: &[f32], d: usize, labels: &mut [u32], dists: &mut [f32]) {
    for ((row, l), dist) in x
        .chunks_exact(d)
        .zip(labels.iter_mut())
        .zip(dists.iter_mut())
    {
        let mut best = (0u32, f32::INFINITY);
        for (j, c) in centroids.chunks_exact(d).enumerate() {
            let v = l2_sq(row, c);
            if v < best.1 {
                best = (j as u32, v);
            }
        }
        *l = best.0;
        *dist = best.1;
    }
}
