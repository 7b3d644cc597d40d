//! Distance kernels and batched assignment: scalar oracle vs SIMD vs GEMM.
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use semid::Par;
use semid::kernels::{AssignPath, Simd, nearest_on, scalar};

fn data(n: usize, seed: u64) -> Vec<f32> {
    semid::synthetic::uniform(n, -0.5, 0.5, seed)
}

fn distances(c: &mut Criterion) {
    let mut g = c.benchmark_group("l2_sq");
    for d in [64usize, 256, 768] {
        let (a, b) = (data(d, 1), data(d, 2));
        g.throughput(Throughput::Elements(d as u64));
        g.bench_with_input(BenchmarkId::new("scalar", d), &d, |bch, _| {
            bch.iter(|| scalar::l2_sq(black_box(&a), black_box(&b)))
        });
        g.bench_with_input(BenchmarkId::new("wide", d), &d, |bch, _| {
            bch.iter(|| Simd::Portable.l2_sq(black_box(&a), black_box(&b)))
        });
        g.bench_with_input(BenchmarkId::new("dispatched", d), &d, |bch, _| {
            bch.iter(|| Simd::detect().l2_sq(black_box(&a), black_box(&b)))
        });
    }
    g.finish();
}

fn assignment(c: &mut Criterion) {
    let (n, k, d) = (4096usize, 256usize, 256usize);
    let x = data(n * d, 3);
    let cents = data(k * d, 4);
    let mut g = c.benchmark_group("nearest_4096x256_k256");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n as u64));
    let paths = [
        ("simd", AssignPath::Simd, Par::Seq),
        ("gemm_seq", AssignPath::Gemm, Par::Seq),
        ("gemm_rayon", AssignPath::Gemm, Par::Rayon(0)),
    ];
    for (name, path, par) in paths {
        g.bench_function(name, |bch| {
            let (mut l, mut dd) = (vec![0u32; n], vec![0f32; n]);
            bch.iter(|| nearest_on(path, &x, &cents, d, &mut l, &mut dd, par).unwrap())
        });
    }
    // The path semid used before its own kernel: faer's GEMM per 256-row
    // block, then an argmin (a same-run baseline for "gemm_seq").
    g.bench_function("faer_gemm_seq_baseline", |bch| {
        use faer::{Accum, MatMut, MatRef, linalg::matmul::matmul};
        let cn: Vec<f32> = cents
            .chunks_exact(d)
            .map(|c| c.iter().map(|v| v * v).sum())
            .collect();
        let mut scratch = vec![0f32; 256 * k];
        let mut l = vec![0u32; n];
        bch.iter(|| {
            for (b, xb) in x.chunks(256 * d).enumerate() {
                let rows = xb.len() / d;
                let dst = MatMut::from_row_major_slice_mut(&mut scratch[..rows * k], rows, k);
                let lhs = MatRef::from_row_major_slice(xb, rows, d);
                let rhs = MatRef::from_row_major_slice(&cents, k, d).transpose();
                matmul(dst, Accum::Replace, lhs, rhs, -2.0f32, faer::Par::Seq);
                for r in 0..rows {
                    let row = &scratch[r * k..(r + 1) * k];
                    let mut best = (0u32, f32::INFINITY);
                    for (j, (&g, &c)) in row.iter().zip(&cn).enumerate() {
                        if g + c < best.1 {
                            best = (j as u32, g + c);
                        }
                    }
                    l[b * 256 + r] = best.0;
                }
            }
            black_box(&l);
        })
    });
    g.bench_function("scalar_oracle_512rows", |bch| {
        let (mut l, mut dd) = (vec![0u32; 512], vec![0f32; 512]);
        bch.iter(|| {
            nearest_on(
                AssignPath::Scalar,
                &x[..512 * d],
                &cents,
                d,
                &mut l,
                &mut dd,
                Par::Seq,
            )
            .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, distances, assignment);
criterion_main!(benches);
