//! SIMD and GEMM kernels agree with the scalar oracle.

use proptest::prelude::*;
use semid::Par;
use semid::kernels::{AssignPath, Simd, nearest_on, scalar};

fn close(a: f32, b: f32, scale: f32) -> bool {
    (a - b).abs() <= 1e-5 * scale.max(1.0)
}

proptest! {
    #[test]
    fn simd_matches_scalar_for_every_remainder(
        v in proptest::collection::vec((-100f32..100.0, -100f32..100.0), 0..130)
    ) {
        let a: Vec<f32> = v.iter().map(|p| p.0).collect();
        let b: Vec<f32> = v.iter().map(|p| p.1).collect();
        let l2 = scalar::l2_sq(&a, &b);
        let dt = scalar::dot(&a, &b);
        let mag: f32 = a.iter().zip(&b).map(|(x, y)| x.abs() * y.abs() + (x - y) * (x - y)).sum();
        for simd in [Simd::Portable, Simd::Avx2Fma, Simd::detect()] {
            prop_assert!(close(simd.l2_sq(&a, &b), l2, mag), "{simd:?} l2 {} vs {}", simd.l2_sq(&a, &b), l2);
            prop_assert!(close(simd.dot(&a, &b), dt, mag), "{simd:?} dot");
        }
    }

    #[test]
    fn gemm_and_simd_assignment_match_oracle(
        d in 1usize..40, k in 1usize..20, n in 1usize..300, seed in 0u64..1000
    ) {
        // Small-integer data: distances are exact in f32, so every path must
        // agree on labels exactly, ties included.
        let ints = |len, s| semid::synthetic::integers(len, 7, s).into_iter().map(|v| v as f32 - 3.0).collect::<Vec<f32>>();
        let x = ints(n * d, seed);
        let mut c = ints(k * d, seed + 5000);
        if k > 2 {
            // A duplicate centroid: ties must go to the lower index.
            let (a, b) = c.split_at_mut(d);
            b[..d].copy_from_slice(a);
        }
        let (mut l0, mut d0) = (vec![0u32; n], vec![0f32; n]);
        nearest_on(AssignPath::Scalar, &x, &c, d, &mut l0, &mut d0, Par::Seq).unwrap();
        for path in [AssignPath::Simd, AssignPath::Gemm] {
            for par in [Par::Seq, Par::Rayon(2)] {
                let (mut l, mut dd) = (vec![0u32; n], vec![0f32; n]);
                nearest_on(path, &x, &c, d, &mut l, &mut dd, par).unwrap();
                prop_assert_eq!(&l, &l0, "{:?} labels", path);
                for (a, b) in dd.iter().zip(&d0) {
                    prop_assert!((a - b).abs() <= 1e-3 * b.max(1.0));
                }
            }
        }
        if k > 2 {
            prop_assert!(l0.iter().all(|&l| l != 1), "duplicate centroid 1 must lose ties to 0");
        }
    }

    #[test]
    fn gemm_assignment_is_near_optimal_on_real_valued_data(
        d in 1usize..70, k in 1usize..40, n in 1usize..100, seed in 0u64..1000
    ) {
        let x = semid::synthetic::uniform(n * d, -0.5, 0.5, seed);
        let c = semid::synthetic::uniform(k * d, -0.5, 0.5, seed + 5000);
        let (mut l0, mut d0) = (vec![0u32; n], vec![0f32; n]);
        nearest_on(AssignPath::Scalar, &x, &c, d, &mut l0, &mut d0, Par::Seq).unwrap();
        let (mut l, mut dd) = (vec![0u32; n], vec![0f32; n]);
        nearest_on(AssignPath::Gemm, &x, &c, d, &mut l, &mut dd, Par::Seq).unwrap();
        for i in 0..n {
            // The GEMM form rounds differently; it may pick another centroid
            // only when the two distances are equal to rounding.
            let row = &x[i * d..(i + 1) * d];
            let picked = scalar::l2_sq(row, &c[l[i] as usize * d..(l[i] as usize + 1) * d]);
            prop_assert!(picked <= d0[i] + 1e-5 * (1.0 + d0[i]) * d as f32);
        }
    }
}

#[test]
fn nearest_rejects_bad_input() {
    use semid::Error;
    use semid::kernels::AssignPath::Gemm;
    let (mut l, mut dd) = (vec![0u32; 2], vec![0f32; 2]);
    let x = [0.0f32; 4];
    assert!(matches!(
        semid::kernels::nearest(&x, &[0.0; 4], 0, Par::Seq),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        semid::kernels::nearest(&x, &[0.0; 3], 2, Par::Seq),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        semid::kernels::nearest_on(Gemm, &x, &[0.0; 4], 2, &mut l[..1], &mut dd, Par::Seq),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        semid::kernels::nearest(&[0.0, f32::NAN, 0.0, 0.0], &[0.0; 4], 2, Par::Seq),
        Err(Error::NonFinite { row: 0, col: 1, .. })
    ));
    assert!(matches!(
        semid::kernels::nearest(&x, &[], 2, Par::Seq),
        Err(Error::Empty { .. })
    ));
}
