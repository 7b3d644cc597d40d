//! k-means fit, RQ-KMeans fit and encode on the built-in synthetic data.
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use semid::synthetic::{MixtureConfig, hierarchical_mixture};
use semid::{
    Embeddings, EncodeSearch, KMeans, KMeansConfig, Par, Quantizer, RqKMeans, RqKMeansConfig,
};

fn fits(c: &mut Criterion) {
    let cfg = MixtureConfig {
        n: 20_000,
        dim: 128,
        ..Default::default()
    };
    let data = hierarchical_mixture(&cfg);
    let x = Embeddings::new(&data, 128).unwrap();
    let mut g = c.benchmark_group("fit_20kx128");
    g.sample_size(10);
    g.bench_function("kmeans_k256_10it", |b| {
        let km = KMeansConfig::new(256).max_iter(10).tol(0.0).seed(1);
        b.iter(|| KMeans::fit(black_box(&km), x).unwrap())
    });
    g.bench_function("rq_kmeans_3x256_10it", |b| {
        let km = KMeansConfig::new(256).max_iter(10).tol(0.0).seed(1);
        let rq = RqKMeansConfig::new(3, 256).kmeans(km);
        b.iter(|| RqKMeans::fit(black_box(&rq), x).unwrap())
    });
    g.finish();
}

fn encode(c: &mut Criterion) {
    let cfg = MixtureConfig {
        n: 20_000,
        dim: 256,
        ..Default::default()
    };
    let data = hierarchical_mixture(&cfg);
    let x = Embeddings::new(&data, 256).unwrap();
    let km = KMeansConfig::new(256).max_iter(5).seed(1);
    let (rq, _) = RqKMeans::fit(&RqKMeansConfig::new(3, 256).kmeans(km), x).unwrap();
    let mut g = c.benchmark_group("rq_encode_20kx256_3x256");
    g.sample_size(10);
    g.throughput(Throughput::Elements(20_000));
    let mut out = vec![0u16; 20_000 * 3];
    for (name, search, par) in [
        ("greedy_seq", EncodeSearch::Greedy, Par::Seq),
        ("greedy_rayon", EncodeSearch::Greedy, Par::Rayon(0)),
        ("beam5_rayon", EncodeSearch::Beam(5), Par::Rayon(0)),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| rq.encode_search_into(x, search, &mut out, par).unwrap())
        });
    }
    g.finish();
}

/// FSQ [8,5,5,5] on 1M standard-normal-ish vectors (no projection): the
/// issue's target is ≥ 64M vectors/s, 5× vector-quantize-pytorch.
fn fsq(c: &mut Criterion) {
    let n = 1 << 20;
    // Sum of 4 uniforms: roughly normal, spread over the thresholds.
    let u = semid::synthetic::uniform(n * 4 * 4, 0.0, 1.0, 1);
    let z: Vec<f32> = u
        .chunks_exact(4)
        .map(|q| (q.iter().sum::<f32>() - 2.0) * 1.7)
        .collect();
    let fsq = semid::quantize::Fsq::new(&[8, 5, 5, 5]).unwrap();
    let mut out = vec![0u16; n];
    let mut g = c.benchmark_group("fsq_8555_1M");
    g.throughput(Throughput::Elements(n as u64));
    for (name, par) in [("indices_seq", Par::Seq), ("indices_rayon", Par::Rayon(0))] {
        g.bench_function(name, |b| {
            b.iter(|| fsq.indices_into(black_box(&z), &mut out, par).unwrap())
        });
    }
    // Residual FSQ, 3 layers: soft clamp (one tanh per value) + 3 FSQ
    // passes; one token per layer.
    let rfsq = semid::quantize::ResidualFsq::new(&[8, 5, 5, 5], 3).unwrap();
    let x = Embeddings::new(&z, 4).unwrap();
    let mut codes = vec![0u16; n * 3];
    for (name, par) in [
        ("residual3_seq", Par::Seq),
        ("residual3_rayon", Par::Rayon(0)),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| rfsq.encode_into(black_box(x), &mut codes, par).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, fits, encode, fsq);
criterion_main!(benches);
