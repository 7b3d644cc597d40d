//! Product quantization and OPQ (issue 25, item 2): encoding, the learned
//! rotation, long IDs through the trie and beam search, bad input, and the
//! model file.

use std::path::PathBuf;

mod common;

use semid::decode::TableScorer;
use semid::quantize::{PqConfig, ProductQuantizer};
use semid::sid::CollisionPolicy;
use semid::{BeamSearch, Embeddings, Error, ModelFile, Par, Quantizer, SemanticIndex, stats};

fn mixture(n: usize, dim: usize) -> Vec<f32> {
    semid::synthetic::hierarchical_mixture(&semid::synthetic::MixtureConfig {
        n,
        dim,
        topics: 10,
        ..Default::default()
    })
}

#[test]
fn pq_codes_are_each_sub_space_nearest_codeword() {
    let data = mixture(2000, 16);
    let x = Embeddings::new(&data, 16).unwrap();
    let (pq, report) = ProductQuantizer::fit(&PqConfig::pq(4, 16).seed(2), x).unwrap();
    assert_eq!((pq.m(), pq.codebook_sizes()), (4, vec![16; 4]));
    assert!(pq.rotation().is_none());
    let codes = pq.encode(x).unwrap();
    for (r, row) in codes.iter().enumerate().step_by(97) {
        for (j, &t) in row.iter().enumerate() {
            let sub = &data[r * 16 + j * 4..r * 16 + j * 4 + 4];
            let cb = pq.codebook(j);
            let dist = |c: usize| -> f32 {
                sub.iter()
                    .zip(&cb[c * 4..c * 4 + 4])
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum()
            };
            let best = (0..16).map(dist).fold(f32::INFINITY, f32::min);
            assert!(
                dist(t as usize) <= best * (1.0 + 1e-5) + 1e-7,
                "row {r} sub {j}"
            );
        }
    }
    // The report's training error is the model's error on these rows.
    let mse = stats::mse(x, &pq.decode(&codes).unwrap()).unwrap();
    assert!(
        (mse - report.mse).abs() <= 1e-6 * (1.0 + mse),
        "{mse} vs {}",
        report.mse
    );
    // Any thread count, the same model.
    let (seq, _) = ProductQuantizer::fit(&PqConfig::pq(4, 16).seed(2).par(Par::Seq), x).unwrap();
    assert_eq!(seq, pq);
}

#[test]
fn opq_learns_an_orthogonal_rotation_that_lowers_the_error() {
    // Correlated columns: PQ's fixed split cuts across them, OPQ's rotation
    // need not.
    let base = mixture(1500, 8);
    let mut data = Vec::with_capacity(1500 * 16);
    // Column i + 8 follows column i, so each pair straddles two sub-spaces.
    for r in base.chunks_exact(8) {
        data.extend_from_slice(r);
        data.extend((0..8).map(|i| 0.9 * r[i] + 0.1 * r[(i + 3) % 8]));
    }
    let x = Embeddings::new(&data, 16).unwrap();
    let (pq, _) = ProductQuantizer::fit(&PqConfig::pq(4, 8).seed(1), x).unwrap();
    let mut cfg = PqConfig::opq(4, 8).seed(1);
    cfg.opq_iterations = 15;
    cfg.opq_tol = 0.0;
    let (opq, report) = ProductQuantizer::fit(&cfg, x).unwrap();
    let r = opq.rotation().expect("OPQ has a rotation");
    for i in 0..16 {
        for j in 0..16 {
            let s: f32 = (0..16).map(|t| r[i * 16 + t] * r[j * 16 + t]).sum();
            let want = if i == j { 1.0 } else { 0.0 };
            assert!((s - want).abs() < 1e-4, "R Rᵀ[{i}][{j}] = {s}");
        }
    }
    assert_eq!(report.opq_mse.len(), 15);
    let e =
        |q: &ProductQuantizer| stats::mse(x, &q.decode(&q.encode(x).unwrap()).unwrap()).unwrap();
    let (e_pq, e_opq) = (e(&pq), e(&opq));
    assert!(e_opq < e_pq, "OPQ {e_opq} vs PQ {e_pq}");
    // The rotation preserves distances: the rotated-space training error is
    // the input-space error.
    assert!(
        (e_opq - report.mse).abs() <= 1e-4 * e_opq,
        "{e_opq} vs {}",
        report.mse
    );
    let (seq, _) = ProductQuantizer::fit(&cfg.clone().par(Par::Seq), x).unwrap();
    assert_eq!(seq, opq);
    // Early stop: a tolerance no alternation can beat stops after the
    // second, whose rotation the final codebooks use; a looser tolerance
    // runs longer and ends no worse than it.
    for (tol, runs) in [(0.9, 2), (1e-3, 0)] {
        cfg.opq_tol = tol;
        let (q, r) = ProductQuantizer::fit(&cfg, x).unwrap();
        if runs > 0 {
            assert_eq!(r.opq_mse.len(), runs);
        } else {
            assert!(
                r.opq_mse.len() > 2 && r.opq_mse.len() <= 15,
                "{:?}",
                r.opq_mse
            );
            let last = r.opq_mse[r.opq_mse.len() - 1];
            let prev = r.opq_mse[r.opq_mse.len() - 2];
            assert!(r.opq_mse.len() == 15 || prev - last <= 1e-3 * prev);
        }
        assert!(e(&q) < e_pq, "tol {tol}: OPQ {} vs PQ {e_pq}", e(&q));
    }
}

/// IDs of 32 tokens (plus a suffix) go through the trie and beam search:
/// a scorer that favours one item's tokens at every level finds that item.
#[test]
fn long_pq_ids_search_through_the_trie() {
    let data = mixture(600, 64);
    let x = Embeddings::new(&data, 64).unwrap();
    let (index, _, _) = SemanticIndex::fit::<ProductQuantizer>(
        &PqConfig::pq(32, 8).seed(3),
        x,
        CollisionPolicy::AppendSuffix,
        Par::Seq,
    )
    .unwrap();
    let vocab = index.trie().codebook_sizes();
    assert_eq!(index.trie().id_len(), 33);
    let row: usize = vocab.iter().sum();
    let queries = [0u32, 17, 311, 599];
    let mut table = vec![0f32; queries.len() * row];
    for (q, &item) in queries.iter().enumerate() {
        let id = index.id_of(item).unwrap();
        let mut off = 0;
        for (l, &t) in id.iter().enumerate() {
            table[q * row + off + t as usize] = 1.0;
            off += vocab[l];
        }
    }
    let mut scorer = TableScorer::new(queries.len(), vocab, table).unwrap();
    let mut beam = BeamSearch::new(4, 1).unwrap();
    let hits = index.search(&mut scorer, queries.len(), &mut beam).unwrap();
    for (q, &item) in queries.iter().enumerate() {
        assert_eq!(hits.to_lists()[q], vec![item], "query {q}");
    }
}

#[test]
fn bad_pq_settings_are_typed_errors() {
    let data = mixture(300, 12);
    let x = Embeddings::new(&data, 12).unwrap();
    let field = |c: PqConfig| match ProductQuantizer::fit(&c, x) {
        Err(Error::InvalidConfig { field, reason }) => (field, reason),
        other => panic!("expected InvalidConfig, got {other:?}"),
    };
    let (f, why) = field(PqConfig::pq(5, 8));
    assert_eq!(f, "m");
    assert!(why.contains("[1, 2, 3, 4, 6, 12]"), "{why}");
    assert_eq!(field(PqConfig::pq(0, 8)).0, "m");
    assert_eq!(field(PqConfig::pq(24, 8)).0, "m");
    assert_eq!(field(PqConfig::pq(4, 400)).0, "k");
    assert_eq!(field(PqConfig::pq(4, 70_000)).0, "k");
    let mut c = PqConfig::opq(4, 8);
    c.opq_kmeans_iterations = 0;
    assert_eq!(field(c).0, "opq_kmeans_iterations");
    for bad in [-1e-3, f64::NAN, f64::INFINITY] {
        let mut c = PqConfig::opq(4, 8);
        c.opq_tol = bad;
        assert_eq!(field(c).0, "opq_tol");
    }
    let mut nan = data.clone();
    nan[100] = f32::NAN;
    assert!(matches!(
        ProductQuantizer::fit(&PqConfig::pq(4, 8), Embeddings::new(&nan, 12).unwrap()),
        Err(Error::NonFinite { .. })
    ));
    // Parts that do not fit together.
    assert!(ProductQuantizer::from_parts(12, 5, vec![0.5; 40], None).is_err());
    assert!(ProductQuantizer::from_parts(12, 4, vec![0.5; 4 * 3 * 2], None).is_ok());
    assert!(ProductQuantizer::from_parts(12, 4, vec![0.5; 4 * 3 * 2 + 1], None).is_err());
    let not_orthogonal = vec![0.5f32; 144];
    assert!(ProductQuantizer::from_parts(12, 4, vec![0.5; 24], Some(not_orthogonal)).is_err());
    // Encoding checks the width and finiteness.
    let (pq, _) = ProductQuantizer::fit(&PqConfig::pq(4, 8), x).unwrap();
    assert!(
        pq.encode(Embeddings::new(&data[..300 * 8], 8).unwrap())
            .is_err()
    );
    assert!(pq.encode(Embeddings::new(&nan, 12).unwrap()).is_err());
}

/// The golden file: a small OPQ model. It must load unchanged forever, pass
/// the model-file contract, and this build must write the same bytes.
/// Written once with `SEMID_WRITE_GOLDEN=1`.
#[test]
fn golden_opq_file_loads_forever() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/opq_v1.semid");
    let data = mixture(300, 8);
    let x = Embeddings::new(&data, 8).unwrap();
    if std::env::var_os("SEMID_WRITE_GOLDEN").is_some() {
        let mut c = PqConfig::opq(2, 4).seed(1);
        c.opq_iterations = 3;
        let (q, _) = ProductQuantizer::fit(&c, x).unwrap();
        q.save(&path).unwrap();
    }
    let bytes = std::fs::read(&path).unwrap();
    let h = semid::format::inspect(&bytes).unwrap();
    assert_eq!((h.version, h.kind.name()), (1, "ProductQuantizer"));
    let q = ProductQuantizer::from_bytes(&bytes).unwrap();
    assert_eq!((q.dim(), q.m(), q.codebook_sizes()), (8, 2, vec![4, 4]));
    assert!(q.rotation().is_some());
    assert_eq!(q.to_bytes().unwrap(), bytes);
    let other =
        std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/kmeans_v1.semid"))
            .unwrap();
    common::check_model_file(&q, 7, &other);
    let any = semid::quantize::AnyQuantizer::from_bytes(&bytes).unwrap();
    assert_eq!(any.encode(x).unwrap(), q.encode(x).unwrap());
}
