//! Dense baselines: exact kNN against a scalar brute force; HNSW recall and
//! input checks (feature `ann`).

mod common;

use semid::ann::ExactKnn;
use semid::{Embeddings, Error, Par};

fn brute(items: &[f32], q: &[f32], d: usize, k: usize) -> Vec<u32> {
    let mut v: Vec<(f64, u32)> = items
        .chunks_exact(d)
        .enumerate()
        .map(|(i, x)| {
            let s: f64 = x.iter().zip(q).map(|(a, b)| ((a - b) as f64).powi(2)).sum();
            (s, i as u32)
        })
        .collect();
    v.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap().then(a.1.cmp(&b.1)));
    v.into_iter().take(k).map(|p| p.1).collect()
}

#[test]
fn exact_knn_matches_brute_force() {
    let d = 24;
    let items = common::mixture(9000, d, 3); // > one 4096-item chunk
    let queries = common::mixture(300, d, 8);
    let idx = ExactKnn::new(Embeddings::new(&items, d).unwrap()).unwrap();
    let q = Embeddings::new(&queries, d).unwrap();
    let h = idx.search(q, 10, Par::default()).unwrap();
    let mut agree = 0;
    for (i, qv) in queries.chunks_exact(d).enumerate() {
        let want = brute(&items, qv, d, 10);
        let got = h.query(i).items;
        agree += got.iter().filter(|x| want.contains(x)).count();
        assert!(h.query(i).scores.windows(2).all(|w| w[0] >= w[1]));
        // Scores are −‖q − x‖².
        let x = &items[got[0] as usize * d..(got[0] as usize + 1) * d];
        let dist: f32 = x.iter().zip(qv).map(|(a, b)| (a - b) * (a - b)).sum();
        assert!((h.query(i).scores[0] + dist).abs() < 1e-3 * dist.max(1.0));
    }
    // GEMM rounding may swap near-equal neighbours only.
    assert!(agree >= 2990, "{agree}/3000");
    // Thread count changes nothing.
    let seq = idx.search(q, 10, Par::Seq).unwrap();
    assert_eq!(seq, h);
}

#[test]
fn exact_knn_ties_and_bad_input() {
    // Duplicate items: the lower index wins.
    let items = [1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0];
    let idx = ExactKnn::new(Embeddings::new(&items, 2).unwrap()).unwrap();
    let q = [0.1f32, 0.1];
    let h = idx
        .search(Embeddings::new(&q, 2).unwrap(), 3, Par::Seq)
        .unwrap();
    assert_eq!(h.query(0).items, &[1, 3, 0]);
    let e = |k| idx.search(Embeddings::new(&q, 2).unwrap(), k, Par::Seq);
    assert!(matches!(e(0), Err(Error::InvalidConfig { .. })));
    assert!(matches!(e(5), Err(Error::InvalidConfig { .. })));
    let q3 = [0.0f32; 3];
    assert!(
        idx.search(Embeddings::new(&q3, 3).unwrap(), 1, Par::Seq)
            .is_err()
    );
    let nan = [f32::NAN, 0.0];
    assert!(matches!(
        idx.search(Embeddings::new(&nan, 2).unwrap(), 1, Par::Seq),
        Err(Error::NonFinite { .. })
    ));
    let bad = [0.0, f32::INFINITY];
    assert!(ExactKnn::new(Embeddings::new(&bad, 2).unwrap()).is_err());
}

#[cfg(feature = "ann")]
#[test]
fn hnsw_recall_and_input_checks() {
    use semid::ann::{Hnsw, HnswConfig};
    let d = 32;
    let items = common::mixture(5000, d, 11);
    let queries = common::mixture(200, d, 12);
    let x = Embeddings::new(&items, d).unwrap();
    let q = Embeddings::new(&queries, d).unwrap();
    let exact = ExactKnn::new(x).unwrap().search(q, 10, Par::Seq).unwrap();
    let h = Hnsw::build(x, &HnswConfig::default()).unwrap();
    let got = h.search(q, 10, Par::default()).unwrap();
    let mut hit = 0;
    for i in 0..200 {
        hit += got
            .query(i)
            .items
            .iter()
            .filter(|it| exact.query(i).items.contains(it))
            .count();
    }
    assert!(
        hit as f64 / 2000.0 > 0.9,
        "HNSW recall@10 {}",
        hit as f64 / 2000.0
    );
    // Sequential build is reproducible.
    let h2 = Hnsw::build(x, &HnswConfig::default()).unwrap();
    assert_eq!(h2.search(q, 10, Par::Seq).unwrap(), got);
    // Inputs that would panic or exit inside hnsw_rs are refused first.
    for m in [0, 1, 257, 1000] {
        let c = HnswConfig {
            m,
            ..Default::default()
        };
        assert!(matches!(
            Hnsw::build(x, &c),
            Err(Error::InvalidConfig { .. })
        ));
    }
    let mut bad = items[..100 * d].to_vec();
    bad[77] = f32::NAN;
    assert!(matches!(
        Hnsw::build(Embeddings::new(&bad, d).unwrap(), &HnswConfig::default()),
        Err(Error::NonFinite { .. })
    ));
    let mut badq = queries[..d].to_vec();
    badq[0] = f32::NAN;
    assert!(
        h.search(Embeddings::new(&badq, d).unwrap(), 5, Par::Seq)
            .is_err()
    );
    assert!(h.search(q, 0, Par::Seq).is_err());
    assert!(h.search(q, 5001, Par::Seq).is_err());
}
