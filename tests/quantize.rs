//! k-means and RQ-KMeans behaviour: properties, determinism, bad input.

mod common;

use common::{mixture, with_threads};
use half::{bf16, f16};
use semid::{
    Assignment, Codes, Embeddings, EncodeSearch, Error, Init, KMeans, KMeansConfig, Par, Quantizer,
    RqKMeans, RqKMeansConfig, stats,
};

#[test]
fn kmeans_inertia_never_rises() {
    let data = mixture(3000, 16, 1);
    let x = Embeddings::new(&data, 16).unwrap();
    for init in [Init::PROGRESSIVE_DIM, Init::KMeansPlusPlus, Init::Random] {
        let cfg = KMeansConfig::new(32)
            .max_iter(30)
            .tol(0.0)
            .init(init)
            .seed(3);
        let (_, r) = KMeans::fit(&cfg, x).unwrap();
        assert!(r.iterations == 30 || r.converged);
        assert_eq!(
            r.empty_cluster_repairs, 0,
            "test data should not need repairs"
        );
        for w in r.inertia_history.windows(2) {
            assert!(
                w[1] <= w[0] * (1.0 + 1e-6),
                "inertia rose: {} -> {}",
                w[0],
                w[1]
            );
        }
        assert!(r.inertia_history.last().unwrap() < &r.inertia_history[0]);
        assert_eq!(r.cluster_sizes.iter().sum::<usize>(), 3000);
    }
}

#[test]
fn kmeans_converges_and_reports() {
    let data = mixture(2000, 8, 2);
    let x = Embeddings::new(&data, 8).unwrap();
    let (km, r) = KMeans::fit(&KMeansConfig::new(10).max_iter(200).tol(1e-6), x).unwrap();
    assert!(r.converged);
    assert!(r.iterations < 200);
    assert_eq!(km.k(), 10);
    // The final assignment's inertia equals the sum of per-row distances to
    // the model's nearest centroids at most (means can only lower it).
    let (_, dists) = km.assign(x, Par::Seq).unwrap();
    let total: f64 = dists.iter().map(|&d| d as f64).sum();
    assert!(total <= r.inertia * (1.0 + 1e-5));
}

#[test]
fn kmeans_recovers_separated_clusters() {
    // 4 well-separated blobs: every blob must map to exactly one cluster.
    let mut data = Vec::new();
    for i in 0..400 {
        let c = (i % 4) as f32 * 100.0;
        data.extend_from_slice(&[c + (i % 7) as f32 * 0.1, -c + (i % 5) as f32 * 0.1]);
    }
    let x = Embeddings::new(&data, 2).unwrap();
    let (km, _) = KMeans::fit(&KMeansConfig::new(4).seed(9), x).unwrap();
    let (labels, _) = km.assign(x, Par::Seq).unwrap();
    for b in 0..4 {
        let l = labels[b];
        assert!((b..400).step_by(4).all(|i| labels[i] == l));
    }
    let mut distinct = labels[..4].to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 4);
}

#[test]
fn empty_clusters_are_repaired() {
    // 6 distinct points repeated, k = 6, random init may pick duplicates.
    let pts = [
        0.0f32, 0.0, 1.0, 0.0, 0.0, 1.0, 5.0, 5.0, 9.0, 1.0, -4.0, 3.0,
    ];
    let data: Vec<f32> = (0..50).flat_map(|_| pts.iter().copied()).collect();
    let x = Embeddings::new(&data, 2).unwrap();
    let mut repaired = 0;
    for seed in 0..20 {
        let cfg = KMeansConfig::new(6)
            .init(Init::Random)
            .seed(seed)
            .max_iter(50);
        let (km, r) = KMeans::fit(&cfg, x).unwrap();
        repaired += r.empty_cluster_repairs;
        let (_, d) = km.assign(x, Par::Seq).unwrap();
        let inertia: f32 = d.iter().sum();
        assert!(
            inertia < 1e-3,
            "seed {seed}: all 6 points must become centroids, inertia {inertia}"
        );
    }
    assert!(
        repaired > 0,
        "random init over duplicated points must hit an empty cluster"
    );
}

#[test]
fn balanced_mode_gives_equal_sizes() {
    let data = mixture(1003, 12, 4);
    let x = Embeddings::new(&data, 12).unwrap();
    for k in [1, 7, 10, 64] {
        let cfg = KMeansConfig::new(k)
            .assignment(Assignment::Balanced)
            .max_points_per_centroid(None)
            .max_iter(8)
            .seed(1);
        let (_, r) = KMeans::fit(&cfg, x).unwrap();
        let (lo, hi) = (1003 / k, 1003_usize.div_ceil(k));
        assert!(
            r.cluster_sizes.iter().all(|&s| s == lo || s == hi),
            "k={k}: {:?}",
            r.cluster_sizes
        );
        assert_eq!(r.cluster_sizes.iter().sum::<usize>(), 1003);
    }
    let cfg = KMeansConfig::new(10).max_iter(8).seed(1);
    let (_, plain) = KMeans::fit(&cfg, x).unwrap();
    let spread = |s: &[usize]| s.iter().max().unwrap() - s.iter().min().unwrap();
    assert!(
        spread(&plain.cluster_sizes) > 1,
        "mixture data is not naturally balanced"
    );
}

#[test]
fn max_points_per_centroid_caps_training() {
    let data = mixture(5000, 8, 5);
    let x = Embeddings::new(&data, 8).unwrap();
    let (_, r) = KMeans::fit(&KMeansConfig::new(10).max_points_per_centroid(Some(40)), x).unwrap();
    assert_eq!(r.n_train, 400);
    let (_, r) = KMeans::fit(&KMeansConfig::new(10).max_points_per_centroid(None), x).unwrap();
    assert_eq!(r.n_train, 5000);
}

#[test]
fn k_equal_n_and_k_one() {
    let data = mixture(20, 4, 6);
    let x = Embeddings::new(&data, 4).unwrap();
    let (km, r) = KMeans::fit(&KMeansConfig::new(20), x).unwrap();
    assert!(r.inertia < 1e-6);
    assert_eq!(km.k(), 20);
    let (km, _) = KMeans::fit(&KMeansConfig::new(1), x).unwrap();
    let mean: Vec<f32> = (0..4)
        .map(|j| data.iter().skip(j).step_by(4).sum::<f32>() / 20.0)
        .collect();
    for (a, b) in km.centroids().iter().zip(&mean) {
        assert!((a - b).abs() < 1e-5);
    }
}

#[test]
fn bad_input_is_a_typed_error() {
    let data = mixture(50, 4, 7);
    let x = Embeddings::new(&data, 4).unwrap();
    let err = |cfg: KMeansConfig| KMeans::fit(&cfg, x).unwrap_err();
    assert!(matches!(
        err(KMeansConfig::new(0)),
        Error::InvalidConfig { field: "k", .. }
    ));
    assert!(matches!(
        err(KMeansConfig::new(51)),
        Error::InvalidConfig { field: "k", .. }
    ));
    assert!(matches!(
        err(KMeansConfig::new(70_000)),
        Error::InvalidConfig { field: "k", .. }
    ));
    assert!(matches!(
        err(KMeansConfig::new(4).max_iter(0)),
        Error::InvalidConfig {
            field: "max_iter",
            ..
        }
    ));
    for init in [
        Init::ProgressiveDim {
            steps: 0,
            iters: 10,
        },
        Init::ProgressiveDim {
            steps: 65,
            iters: 10,
        },
        Init::ProgressiveDim {
            steps: 10,
            iters: 0,
        },
    ] {
        assert!(matches!(
            err(KMeansConfig::new(4).init(init)),
            Error::InvalidConfig { field: "init", .. }
        ));
    }
    assert!(matches!(
        err(KMeansConfig::new(4).tol(f64::NAN)),
        Error::InvalidConfig { field: "tol", .. }
    ));
    assert!(matches!(
        err(KMeansConfig::new(4).tol(-1.0)),
        Error::InvalidConfig { field: "tol", .. }
    ));
    assert!(matches!(
        err(KMeansConfig::new(4).max_points_per_centroid(Some(0))),
        Error::InvalidConfig {
            field: "max_points_per_centroid",
            ..
        }
    ));
    let rq_err = |cfg: RqKMeansConfig| RqKMeans::fit(&cfg, x).unwrap_err();
    assert!(matches!(
        rq_err(RqKMeansConfig::new(2, 4).refine_rounds(1001)),
        Error::InvalidConfig {
            field: "refine_rounds",
            ..
        }
    ));
    assert!(matches!(
        rq_err(RqKMeansConfig::new(0, 4)),
        Error::InvalidConfig {
            field: "levels",
            ..
        }
    ));
    assert!(matches!(
        rq_err(RqKMeansConfig::new(2, 60)),
        Error::InvalidConfig { field: "k", .. }
    ));

    // NaN / Inf anywhere: the row is reported.
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut d2 = data.clone();
        d2[37 * 4 + 2] = bad;
        let x2 = Embeddings::new(&d2, 4).unwrap();
        let h2: Vec<half::f16> = d2.iter().map(|&v| half::f16::from_f32(v)).collect();
        let b2: Vec<half::bf16> = d2.iter().map(|&v| half::bf16::from_f32(v)).collect();
        for r in [
            // Default training cap (sampling): the bad row is found all the same.
            KMeans::fit(&KMeansConfig::new(4).max_points_per_centroid(Some(2)), x2).map(|_| ()),
            KMeans::fit(&KMeansConfig::new(4), Embeddings::from_f16(&h2, 4).unwrap()).map(|_| ()),
            KMeans::fit(
                &KMeansConfig::new(4),
                Embeddings::from_bf16(&b2, 4).unwrap(),
            )
            .map(|_| ()),
            KMeans::fit(&KMeansConfig::new(4).max_points_per_centroid(None), x2).map(|_| ()),
            RqKMeans::fit(
                &RqKMeansConfig::new(2, 4)
                    .kmeans(KMeansConfig::new(4).max_points_per_centroid(None)),
                x2,
            )
            .map(|_| ()),
        ] {
            assert!(
                matches!(
                    r,
                    Err(Error::NonFinite {
                        row: 37,
                        col: 2,
                        ..
                    })
                ),
                "{r:?}"
            );
        }
        let (rq, _) = RqKMeans::fit(&RqKMeansConfig::new(2, 4), x).unwrap();
        assert!(matches!(
            rq.encode(x2),
            Err(Error::NonFinite {
                row: 37,
                col: 2,
                ..
            })
        ));
    }

    // Dimension mismatch, wrong buffer sizes, out-of-range tokens.
    let (rq, _) = RqKMeans::fit(&RqKMeansConfig::new(2, 4), x).unwrap();
    let x3 = Embeddings::new(&data[..48], 3).unwrap();
    assert!(matches!(
        rq.encode(x3),
        Err(Error::Shape {
            expected: 4,
            got: 3,
            ..
        })
    ));
    let mut small = vec![0u16; 5];
    assert!(matches!(
        rq.encode_into(x, &mut small, Par::Seq),
        Err(Error::Shape { .. })
    ));
    let bad_codes = Codes::new(vec![0, 1, 2, 4], 2).unwrap();
    assert!(matches!(
        rq.decode(&bad_codes),
        Err(Error::TokenOutOfRange {
            row: 1,
            level: 1,
            token: 4,
            codebook_size: 4
        })
    ));
    let three = Codes::new(vec![0, 1, 2], 3).unwrap();
    assert!(matches!(rq.decode(&three), Err(Error::Shape { .. })));
    let mut out = vec![0u16; 100];
    assert!(matches!(
        rq.encode_search_into(x, EncodeSearch::Beam(0), &mut out, Par::Seq),
        Err(Error::InvalidConfig {
            field: "search",
            ..
        })
    ));
}

#[test]
fn same_seed_same_codes_whatever_the_thread_count() {
    let data = mixture(6000, 24, 8);
    let x = Embeddings::new(&data, 24).unwrap();
    let run = |par: Par| {
        let km = KMeansConfig::new(32)
            .par(par)
            .seed(11)
            .max_points_per_centroid(Some(100));
        let cfg = RqKMeansConfig::new(3, 32).kmeans(km);
        let (rq, report) = RqKMeans::fit(&cfg, x).unwrap();
        let mut greedy = vec![0u16; 6000 * 3];
        rq.encode_search_into(x, EncodeSearch::Greedy, &mut greedy, par)
            .unwrap();
        let mut beam = vec![0u16; 6000 * 3];
        rq.encode_search_into(x, EncodeSearch::Beam(4), &mut beam, par)
            .unwrap();
        (rq.codebooks().to_vec(), report, greedy, beam)
    };
    let seq = run(Par::Seq);
    let one = with_threads(1, || run(Par::Rayon(0)));
    let two = with_threads(2, || run(Par::Rayon(0)));
    let four = with_threads(4, || run(Par::Rayon(3)));
    for other in [&one, &two, &four] {
        assert!(
            seq.0
                .iter()
                .zip(&other.0)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "codebooks differ"
        );
        assert_eq!(seq.1, other.1);
        assert_eq!(seq.2, other.2);
        assert_eq!(seq.3, other.3);
    }
    // Balanced mode too.
    let bal = |par: Par| {
        let cfg = KMeansConfig::new(16)
            .assignment(Assignment::Balanced)
            .par(par)
            .seed(2);
        KMeans::fit(&cfg, x).unwrap().0
    };
    assert_eq!(bal(Par::Seq), with_threads(2, || bal(Par::Rayon(0))));
}

#[test]
fn rq_levels_reduce_error_and_beam_helps() {
    let data = mixture(4000, 32, 9);
    let x = Embeddings::new(&data, 32).unwrap();
    let (rq, report) = RqKMeans::fit(&RqKMeansConfig::new(3, 32).seed(1), x).unwrap();
    let mses: Vec<f64> = report.levels.iter().map(|l| l.mse).collect();
    assert!(
        mses[0] < report.mean_sq_norm && mses[1] < mses[0] && mses[2] < mses[1],
        "{mses:?}"
    );
    // Greedy encoding of the training data gives the reported final MSE,
    // which refinement never raises above the level-wise fit's.
    let greedy = rq.encode(x).unwrap();
    let mse_g = stats::mse(x, &rq.decode(&greedy).unwrap()).unwrap();
    assert!(
        (mse_g - report.mse).abs() <= 1e-4 * report.mse,
        "{mse_g} vs {}",
        report.mse
    );
    assert!(report.mse <= mses[2], "{} > {}", report.mse, mses[2]);
    // Without refinement, greedy encoding reproduces the fit's residual chain.
    let cfg0 = RqKMeansConfig::new(3, 32).seed(1).refine_rounds(0);
    let (rq0, r0) = RqKMeans::fit(&cfg0, x).unwrap();
    assert_eq!(r0.refine_rounds, 0);
    assert_eq!(r0.levels, report.levels);
    let mse0 = stats::mse(x, &rq0.decode(&rq0.encode(x).unwrap()).unwrap()).unwrap();
    assert!(
        (mse0 - mses[2]).abs() <= 1e-4 * mses[2],
        "{mse0} vs {}",
        mses[2]
    );
    // Beam(1) is greedy; wider beams never do worse on average.
    let mut b1 = vec![0u16; 4000 * 3];
    rq.encode_search_into(x, EncodeSearch::Beam(1), &mut b1, Par::Seq)
        .unwrap();
    assert_eq!(b1, greedy.as_slice());
    let mut prev = mse_g;
    for b in [2, 4, 8] {
        let mut out = vec![0u16; 4000 * 3];
        rq.encode_search_into(x, EncodeSearch::Beam(b), &mut out, Par::Seq)
            .unwrap();
        let codes = Codes::new(out, 3).unwrap();
        let m = stats::mse(x, &rq.decode(&codes).unwrap()).unwrap();
        assert!(m <= prev * (1.0 + 1e-6), "beam {b}: {m} > {prev}");
        prev = m;
    }
    assert!(prev < mse_g, "beam 8 should beat greedy on this data");
    // Each row's beam result is at least as good as its greedy result.
    let rec_g = rq.decode(&greedy).unwrap();
    let mut out = vec![0u16; 4000 * 3];
    rq.encode_search_into(x, EncodeSearch::Beam(8), &mut out, Par::Seq)
        .unwrap();
    let rec_b = rq.decode(&Codes::new(out, 3).unwrap()).unwrap();
    for i in 0..4000 {
        let row = &data[i * 32..(i + 1) * 32];
        let eg = semid::kernels::scalar::l2_sq(row, &rec_g[i * 32..(i + 1) * 32]);
        let eb = semid::kernels::scalar::l2_sq(row, &rec_b[i * 32..(i + 1) * 32]);
        assert!(eb <= eg + 1e-5, "row {i}: beam {eb} > greedy {eg}");
    }
}

#[test]
fn beam_equals_exhaustive_search_when_wide_enough() {
    // With beam >= k^(L-1) the search keeps every prefix: it must find the
    // exact best code over all k^L combinations.
    let data = mixture(300, 6, 10);
    let x = Embeddings::new(&data, 6).unwrap();
    let (rq, _) = RqKMeans::fit(&RqKMeansConfig::new(3, 4).seed(3), x).unwrap();
    let mut out = vec![0u16; 300 * 3];
    rq.encode_search_into(x, EncodeSearch::Beam(16), &mut out, Par::Seq)
        .unwrap();
    let all: Vec<u16> = (0..64u16)
        .flat_map(|c| [c / 16, (c / 4) % 4, c % 4])
        .collect();
    let all = Codes::new(all, 3).unwrap();
    let rec = rq.decode(&all).unwrap();
    for i in 0..300 {
        let row = &data[i * 6..(i + 1) * 6];
        let best = (0..64)
            .map(|c| semid::kernels::scalar::l2_sq(row, &rec[c * 6..(c + 1) * 6]))
            .fold(f32::INFINITY, f32::min);
        let got = rq
            .decode(&Codes::new(out[i * 3..i * 3 + 3].to_vec(), 3).unwrap())
            .unwrap();
        let e = semid::kernels::scalar::l2_sq(row, &got);
        assert!(e <= best + 1e-5, "row {i}: {e} > exhaustive {best}");
    }
}

#[test]
fn half_precision_input_matches_f32_of_the_same_values() {
    let data = mixture(3000, 16, 11);
    let h: Vec<f16> = data.iter().map(|&v| f16::from_f32(v)).collect();
    let b: Vec<bf16> = data.iter().map(|&v| bf16::from_f32(v)).collect();
    let h32: Vec<f32> = h.iter().map(|v| v.to_f32()).collect();
    let b32: Vec<f32> = b.iter().map(|v| v.to_f32()).collect();
    let cfg = RqKMeansConfig::new(2, 16).seed(5);
    let (rq_h, _) = RqKMeans::fit(&cfg, Embeddings::from_f16(&h, 16).unwrap()).unwrap();
    let (rq_h32, _) = RqKMeans::fit(&cfg, Embeddings::new(&h32, 16).unwrap()).unwrap();
    assert_eq!(rq_h, rq_h32);
    let xh = Embeddings::from_f16(&h, 16).unwrap();
    assert_eq!(
        rq_h.encode(xh).unwrap(),
        rq_h.encode(Embeddings::new(&h32, 16).unwrap()).unwrap()
    );
    let xb = Embeddings::from_bf16(&b, 16).unwrap();
    assert_eq!(
        rq_h.encode(xb).unwrap(),
        rq_h.encode(Embeddings::new(&b32, 16).unwrap()).unwrap()
    );
    let arr = ndarray::Array2::from_shape_vec((3000, 16), h.clone()).unwrap();
    let xv = Embeddings::try_from(arr.view()).unwrap();
    assert_eq!(rq_h.encode(xv).unwrap(), rq_h.encode(xh).unwrap());
}

#[test]
fn quantizer_contract_is_object_safe_and_swappable() {
    let data = mixture(1000, 8, 12);
    let x = Embeddings::new(&data, 8).unwrap();
    let models: Vec<Box<dyn Quantizer>> = vec![
        Box::new(KMeans::fit(&KMeansConfig::new(16), x).unwrap().0),
        Box::new(RqKMeans::fit(&RqKMeansConfig::new(2, 16), x).unwrap().0),
    ];
    for q in &models {
        let codes = q.encode(x).unwrap();
        assert_eq!(codes.levels(), q.levels());
        assert_eq!(q.codebook_sizes(), vec![16; q.levels()]);
        assert_eq!(q.codebook_size(q.levels()), 0);
        let rec = q.decode(&codes).unwrap();
        let m = q.reconstruction_mse(x, Par::Seq).unwrap();
        assert!((stats::mse(x, &rec).unwrap() - m).abs() < 1e-9 * m.max(1.0));
    }
}

#[test]
fn degenerate_data_does_not_panic() {
    // All rows identical (k-means++ sees zero distances), all zeros, one row.
    let same = vec![0.25f32; 64 * 4];
    let zeros = vec![0.0f32; 64 * 4];
    for data in [&same, &zeros] {
        let x = Embeddings::new(data, 4).unwrap();
        for assignment in [Assignment::Nearest, Assignment::Balanced] {
            let cfg = KMeansConfig::new(8).assignment(assignment);
            let (km, r) = KMeans::fit(&cfg, x).unwrap();
            // Split centroids of a repair sit ±δ (relative 1/1024) from the point.
            assert!(r.inertia.abs() < 1e-4, "inertia {}", r.inertia);
            assert!(km.centroids().iter().all(|v| v.is_finite()));
        }
        let (rq, _) = RqKMeans::fit(&RqKMeansConfig::new(3, 8), x).unwrap();
        let codes = rq.encode(x).unwrap();
        assert_eq!(codes.rows(), 64);
        let mut out = vec![0u16; 64 * 3];
        rq.encode_search_into(x, EncodeSearch::Beam(1000), &mut out, Par::Seq)
            .unwrap();
    }
    let one = [1.0f32, 2.0, 3.0];
    let x = Embeddings::new(&one, 3).unwrap();
    let (km, _) = KMeans::fit(&KMeansConfig::new(1), x).unwrap();
    assert_eq!(km.centroids(), &one);
    let (rq, _) = RqKMeans::fit(&RqKMeansConfig::new(2, 1), x).unwrap();
    assert_eq!(rq.encode(x).unwrap().as_slice(), &[0, 0]);
}

/// A `LloydSteps` that labels every row `k` (out of range), or fails.
struct FaultySteps {
    fail: bool,
}

impl semid::quantize::LloydSteps for FaultySteps {
    fn begin(&mut self, _x: &[f32], _d: usize) -> semid::Result<()> {
        Ok(())
    }

    fn assign(
        &mut self,
        _x: &[f32],
        d: usize,
        centroids: &[f32],
        labels: &mut [u32],
        dists: &mut [f32],
    ) -> semid::Result<()> {
        if self.fail {
            return Err(semid::Error::Empty { what: "test steps" });
        }
        labels.fill((centroids.len() / d) as u32);
        dists.fill(0.0);
        Ok(())
    }

    fn update(
        &mut self,
        _x: &[f32],
        _d: usize,
        _labels: semid::quantize::Labels<'_>,
        _centroids: &mut [f32],
    ) -> semid::Result<()> {
        Ok(())
    }
}

#[test]
fn faulty_lloyd_steps_are_typed_errors_not_panics() {
    use semid::quantize::{Init, KMeans, KMeansConfig, RqKMeans, RqKMeansConfig};
    let data: Vec<f32> = (0..400).map(|i| (i % 37) as f32 * 0.5).collect();
    let x = Embeddings::new(&data, 4).unwrap();
    for init in [Init::Random, Init::PROGRESSIVE_DIM] {
        let cfg = KMeansConfig::new(5).seed(1).init(init);
        match KMeans::fit_with_steps(&cfg, x, &mut FaultySteps { fail: false }) {
            Err(Error::InvalidConfig { field, reason }) => {
                assert_eq!(field, "steps");
                assert!(reason.contains("not below k = 5"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            KMeans::fit_with_steps(&cfg, x, &mut FaultySteps { fail: true }),
            Err(Error::Empty { what: "test steps" })
        ));
    }
    let rq = RqKMeansConfig::new(2, 4).seed(0);
    assert!(matches!(
        RqKMeans::fit_with_steps(&rq, x, &mut FaultySteps { fail: false }),
        Err(Error::InvalidConfig { field: "steps", .. })
    ));
}

#[test]
fn cpu_steps_called_directly_return_typed_errors() {
    use semid::quantize::{CpuSteps, Labels, LloydSteps};
    let mut s = CpuSteps::new(Par::Seq);
    let x = [0f32, 1.0, 2.0, 3.0, 4.0, 5.0];
    let c = [0f32, 1.0, 4.0, 5.0];
    let (mut l, mut dd) = (vec![0u32; 3], vec![0f32; 3]);
    s.assign(&x, 2, &c, &mut l, &mut dd).unwrap();
    assert_eq!(l, vec![0, 0, 1]);
    let mut cc = c;
    s.update(&x, 2, Labels::new(&l, 2).unwrap(), &mut cc)
        .unwrap();
    assert_eq!(cc, [1.0, 2.0, 4.0, 5.0]);
    assert!(matches!(
        s.assign(&x, 0, &c, &mut l, &mut dd),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        s.assign(&x, 4, &c, &mut l, &mut dd),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        s.assign(&x, 2, &[], &mut l, &mut dd),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        s.assign(&x, 2, &c, &mut l[..2], &mut dd),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        s.update(&x, 2, Labels::new(&[0, 1], 2).unwrap(), &mut cc),
        Err(Error::Shape { .. })
    ));
    // Labels are checked once, where they are made ...
    assert!(matches!(
        Labels::new(&[0, 2, 1], 2),
        Err(Error::InvalidConfig {
            field: "labels",
            ..
        })
    ));
    // ... and must be for as many clusters as there are centroids.
    assert!(matches!(
        s.update(&x, 2, Labels::new(&[0, 2, 1], 3).unwrap(), &mut cc),
        Err(Error::Shape { .. })
    ));
}

/// RqKMeans keeps its codebooks packed after first use; refinement changes
/// the codebooks during the fit, so the fitted model must encode exactly as
/// a fresh model built from its codebooks does (a stale pack would not).
#[test]
fn packed_codebooks_follow_refinement() {
    let data = mixture(3000, 16, 9);
    let x = Embeddings::new(&data, 16).unwrap();
    let cfg = RqKMeansConfig::new(3, 32).refine_rounds(3);
    let (rq, report) = RqKMeans::fit(&cfg, x).unwrap();
    assert!(
        report.refine_rounds > 0,
        "test needs a kept refinement round"
    );
    let fresh = RqKMeans::from_codebooks(rq.codebooks().to_vec(), 3, 16).unwrap();
    assert_eq!(rq.encode(x).unwrap(), fresh.encode(x).unwrap());
    assert_eq!(rq, fresh);
    // A clone encodes the same, before and after the original packed.
    assert_eq!(rq.clone().encode(x).unwrap(), rq.encode(x).unwrap());
}
