//! Symmetric eigendecomposition for the PCA of progressive-dimension
//! k-means ([`crate::Init::ProgressiveDim`]).

/// Eigenvalues and eigenvectors of the symmetric `n × n` matrix `v`
/// (row-major): on return row `c` of `v` is the eigenvector of the returned
/// value `c`. The algorithm runs on the transpose of JAMA's `V` (the input
/// is symmetric, so it starts equal), which makes every inner loop walk a
/// row. Householder tridiagonalisation then the implicit QL
/// algorithm (EISPACK `tred2`/`tql2`, as in JAMA), `O(n³)` in f64 with no
/// scratch beyond two vectors. `None` if QL does not converge (it does in a
/// few iterations per value on finite input). semid does not call faer's
/// eigensolver here: its products go through the GEMM whose thread-local
/// buffer is sized from the L3 (645 MB on one of our machines).
///
/// Every sum is written out in a fixed order (the dot products keep eight
/// lanes, added pairwise at the end), and Rust never fuses a multiply and an
/// add on its own, so the AVX-512 and AVX2 builds chosen at run time only
/// widen the loops: every ISA returns the same bits.
pub(crate) fn symmetric_eigen(v: &mut [f64], n: usize) -> Option<Vec<f64>> {
    assert_eq!(v.len(), n * n, "symmetric_eigen: v is not n × n");
    if n == 0 {
        return Some(Vec::new());
    }
    #[cfg(target_arch = "x86_64")]
    {
        let cpu = super::Cpu::get();
        if cpu.avx512f() {
            // SAFETY: the running CPU has AVX-512F.
            #[allow(unsafe_code)]
            return unsafe { eigen_avx512(v, n) };
        }
        if cpu.avx2_fma() {
            // SAFETY: the running CPU has AVX2.
            #[allow(unsafe_code)]
            return unsafe { eigen_avx2(v, n) };
        }
    }
    eigen(v, n)
}

/// [`eigen`] compiled for AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn eigen_avx512(v: &mut [f64], n: usize) -> Option<Vec<f64>> {
    eigen(v, n)
}

/// [`eigen`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn eigen_avx2(v: &mut [f64], n: usize) -> Option<Vec<f64>> {
    eigen(v, n)
}

/// `Σ a[t]·b[t]` over eight lanes (lane `t mod 8`), the lanes added
/// pairwise, then the tail in order.
#[inline(always)]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// The solver itself (see [`symmetric_eigen`]).
#[inline(always)]
fn eigen(v: &mut [f64], n: usize) -> Option<Vec<f64>> {
    let mut d: Vec<f64> = v[(n - 1) * n..].to_vec();
    let mut e = vec![0f64; n];
    // tred2: Householder reduction to tridiagonal form.
    for i in (1..n).rev() {
        let scale: f64 = d[..i].iter().map(|x| x.abs()).sum();
        let mut h = 0.0;
        if scale == 0.0 {
            e[i] = d[i - 1];
            for j in 0..i {
                d[j] = v[j * n + (i - 1)];
                v[j * n + i] = 0.0;
                v[i * n + j] = 0.0;
            }
        } else {
            for dk in &mut d[..i] {
                *dk /= scale;
                h += *dk * *dk;
            }
            let f = d[i - 1];
            let g = if f > 0.0 { -h.sqrt() } else { h.sqrt() };
            e[i] = scale * g;
            h -= f * g;
            d[i - 1] = f - g;
            e[..i].fill(0.0);
            for j in 0..i {
                let f = d[j];
                v[i * n + j] = f;
                let row = &v[j * n + j + 1..j * n + i];
                let g = e[j] + v[j * n + j] * f + dot(row, &d[j + 1..i]);
                for (ek, &vk) in e[j + 1..i].iter_mut().zip(row) {
                    *ek += vk * f;
                }
                e[j] = g;
            }
            let mut f = 0.0;
            for j in 0..i {
                e[j] /= h;
                f += e[j] * d[j];
            }
            let hh = f / (h + h);
            for j in 0..i {
                e[j] -= hh * d[j];
            }
            for j in 0..i {
                let (f, g) = (d[j], e[j]);
                for k in j..i {
                    v[j * n + k] -= f * e[k] + g * d[k];
                }
                d[j] = v[j * n + (i - 1)];
                v[j * n + i] = 0.0;
            }
        }
        d[i] = h;
    }
    // Accumulate the transformations.
    for i in 0..n - 1 {
        v[i * n + (n - 1)] = v[i * n + i];
        v[i * n + i] = 1.0;
        let h = d[i + 1];
        if h != 0.0 {
            for k in 0..=i {
                d[k] = v[(i + 1) * n + k] / h;
            }
            let (head, tail) = v.split_at_mut((i + 1) * n);
            let below = &tail[..=i];
            for row in head.chunks_exact_mut(n) {
                let row = &mut row[..=i];
                let g = dot(below, row);
                for (a, &dk) in row.iter_mut().zip(&d[..=i]) {
                    *a -= g * dk;
                }
            }
        }
        for k in 0..=i {
            v[(i + 1) * n + k] = 0.0;
        }
    }
    for j in 0..n {
        d[j] = v[j * n + (n - 1)];
        v[j * n + (n - 1)] = 0.0;
    }
    v[n * n - 1] = 1.0;
    e[0] = 0.0;

    // tql2: implicit QL on the tridiagonal matrix.
    for i in 1..n {
        e[i - 1] = e[i];
    }
    e[n - 1] = 0.0;
    let (mut f, mut tst1) = (0.0f64, 0.0f64);
    let eps = f64::EPSILON;
    for l in 0..n {
        tst1 = tst1.max(d[l].abs() + e[l].abs());
        let mut m = l;
        while m < n - 1 && e[m].abs() > eps * tst1 {
            m += 1;
        }
        if m > l {
            let mut iter = 0;
            loop {
                iter += 1;
                if iter > 64 {
                    return None;
                }
                let g = d[l];
                let mut p = (d[l + 1] - g) / (2.0 * e[l]);
                let mut r = p.hypot(1.0);
                if p < 0.0 {
                    r = -r;
                }
                d[l] = e[l] / (p + r);
                d[l + 1] = e[l] * (p + r);
                let dl1 = d[l + 1];
                let mut h = g - d[l];
                for di in &mut d[l + 2..] {
                    *di -= h;
                }
                f += h;
                p = d[m];
                let (mut c, mut c2, mut c3) = (1.0f64, 1.0f64, 1.0f64);
                let el1 = e[l + 1];
                let (mut s, mut s2) = (0.0f64, 0.0f64);
                for i in (l..m).rev() {
                    c3 = c2;
                    c2 = c;
                    s2 = s;
                    let g = c * e[i];
                    h = c * p;
                    r = p.hypot(e[i]);
                    e[i + 1] = s * r;
                    s = e[i] / r;
                    c = p / r;
                    p = c * d[i] - s * g;
                    d[i + 1] = h + s * (c * g + s * d[i]);
                    // Columns i and i+1 of V are rows i and i+1 here.
                    let (lo, hi) = v[i * n..(i + 2) * n].split_at_mut(n);
                    for (a, b) in lo.iter_mut().zip(hi.iter_mut()) {
                        let hk = *b;
                        *b = s * *a + c * hk;
                        *a = c * *a - s * hk;
                    }
                }
                p = -s * s2 * c3 * el1 * e[l] / dl1;
                e[l] = s * p;
                d[l] = c * p;
                if !p.is_finite() || !d[l].is_finite() {
                    return None;
                }
                if e[l].abs() <= eps * tst1 {
                    break;
                }
            }
        }
        d[l] += f;
        e[l] = 0.0;
    }
    Some(d)
}

#[cfg(test)]
mod tests {
    use super::{eigen, symmetric_eigen};

    #[test]
    fn eigenpairs_reconstruct_the_matrix() {
        let mut rng = crate::rng::Rng::new(5, 0);
        for n in [1usize, 2, 3, 7, 40] {
            let b: Vec<f64> = (0..n * n).map(|_| rng.next_f64() - 0.5).collect();
            // a = b·bᵀ, plus a repeated eigenvalue when n ≥ 3.
            let mut a = vec![0f64; n * n];
            for i in 0..n {
                for j in 0..n {
                    a[i * n + j] = (0..n).map(|t| b[i * n + t] * b[j * n + t]).sum();
                }
            }
            let orig = a.clone();
            let vals = symmetric_eigen(&mut a, n).expect("converges");
            for c in 0..n {
                // A v = λ v, ‖v‖ = 1; v is row c.
                let norm: f64 = (0..n).map(|k| a[c * n + k].powi(2)).sum();
                assert!((norm - 1.0).abs() < 1e-10, "n {n} col {c}: norm {norm}");
                for i in 0..n {
                    let av: f64 = (0..n).map(|k| orig[i * n + k] * a[c * n + k]).sum();
                    assert!(
                        (av - vals[c] * a[c * n + i]).abs() < 1e-9,
                        "n {n} col {c} row {i}"
                    );
                }
            }
        }
        // Zero matrix and identity: no division by zero.
        for diag in [0.0, 1.0] {
            let mut a = vec![0f64; 16];
            for i in 0..4 {
                a[i * 4 + i] = diag;
            }
            let vals = symmetric_eigen(&mut a, 4).unwrap();
            assert!(vals.iter().all(|&v| (v - diag).abs() < 1e-12));
        }
    }

    #[test]
    fn every_isa_returns_the_same_bits() {
        // 61 is not a multiple of the 8 lanes, so the tails run too.
        let n = 61;
        let mut rng = crate::rng::Rng::new(11, 0);
        let b: Vec<f64> = (0..n * n).map(|_| rng.next_f64() - 0.5).collect();
        let mut a = vec![0f64; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] = (0..n).map(|t| b[i * n + t] * b[j * n + t]).sum();
            }
        }
        let mut plain = a.clone();
        let vals_plain = eigen(&mut plain, n).unwrap();
        let vals = symmetric_eigen(&mut a, n).unwrap();
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&vals), bits(&vals_plain));
        assert_eq!(bits(&a), bits(&plain));
        assert_eq!(symmetric_eigen(&mut [], 0), Some(Vec::new()));
    }
}
