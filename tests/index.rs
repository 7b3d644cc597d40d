//! `SemanticIndex` and `AnyQuantizer`: one artifact for quantizer, IDs and
//! trie; any quantizer kind behind one type.

mod common;

use common::{check_model_file, frame, mixture, with_threads};
use semid::SemanticIndex;
use semid::decode::{BeamSearch, TableScorer};
use semid::format::ModelKind;
use semid::hits::Hits;
use semid::quantize::{AnyQuantizer, Fsq, ResidualFsq};
use semid::sid::{CollisionPolicy, SidMap};
use semid::{
    Embeddings, Error, FormatError, KMeans, KMeansConfig, ModelFile, Par, Quantizer, RqKMeans,
    RqKMeansConfig,
};

const D: usize = 16;

fn rq_index(n: usize, policy: CollisionPolicy) -> (Vec<f32>, SemanticIndex) {
    let data = mixture(n, D, 3);
    let x = Embeddings::new(&data, D).unwrap();
    let (index, _, report) =
        SemanticIndex::fit::<RqKMeans>(&RqKMeansConfig::new(2, 16).seed(5), x, policy, Par::Seq)
            .unwrap();
    assert_eq!(report.items, n);
    (data, index)
}

#[test]
fn built_index_matches_its_parts() {
    let (data, index) = rq_index(1500, CollisionPolicy::AppendSuffix);
    let x = Embeddings::new(&data, D).unwrap();
    assert_eq!(index.len(), 1500);
    let codes = index.encode(x, Par::Seq).unwrap();
    assert_eq!(codes, index.quantizer().encode(x).unwrap());
    // The same map and trie as building them by hand.
    let (map, _) = SidMap::build(
        &codes,
        &index.quantizer().codebook_sizes(),
        CollisionPolicy::AppendSuffix,
    )
    .unwrap();
    assert_eq!(index.map(), &map);
    for item in 0..1500u32 {
        let id = index.id_of(item).unwrap();
        assert_eq!(&id[..2], codes.row(item as usize));
        assert!(index.trie().contains(id));
    }
    assert_eq!(index.id_of(1500), None);
}

#[test]
fn codebook_search_finds_the_query_item() {
    let (data, index) = rq_index(1500, CollisionPolicy::AppendSuffix);
    let x = Embeddings::new(&data, D).unwrap();
    let mut search = BeamSearch::new(16, 10).unwrap();
    let mut hits = Hits::new();
    index
        .search_embeddings_into(x.slice(0, 200).unwrap(), &mut search, &mut hits)
        .unwrap();
    assert_eq!(hits.n_queries(), 200);
    let found = (0..200)
        .filter(|&q| hits.query(q).items.contains(&(q as u32)))
        .count();
    // An item's own code is the best-scoring ID for it unless it shares
    // the code with more than 9 others.
    assert!(found >= 190, "only {found} of 200 items found themselves");
    for q in 0..200 {
        for &item in hits.query(q).items {
            assert!(index.trie().contains(index.id_of(item).unwrap()));
        }
    }
}

#[test]
fn search_takes_any_scorer_and_emits_only_valid_ids() {
    let (_, index) = rq_index(800, CollisionPolicy::AppendSuffix);
    let vocab = index.trie().codebook_sizes().to_vec();
    // Two queries, scores favouring token 0 everywhere for query 0 and the
    // last token for query 1.
    let mut table = Vec::new();
    for q in 0..2 {
        for &v in &vocab {
            for t in 0..v {
                table.push(if q == 0 { -(t as f32) } else { t as f32 });
            }
        }
    }
    let mut scorer = TableScorer::new(2, &vocab, table).unwrap();
    let mut hits = Hits::new();
    index
        .search_into(
            &mut scorer,
            2,
            &mut BeamSearch::new(8, 5).unwrap(),
            &mut hits,
        )
        .unwrap();
    assert_eq!(hits.n_queries(), 2);
    for q in 0..2 {
        assert_eq!(hits.query(q).items.len(), 5);
        for &item in hits.query(q).items {
            assert!(index.id_of(item).is_some());
        }
    }
}

#[test]
fn insert_keeps_existing_ids_and_is_atomic() {
    let data = mixture(1200, D, 9);
    let (head, tail) = data.split_at(1000 * D);
    let x = Embeddings::new(head, D).unwrap();
    let (mut index, _, _) = SemanticIndex::fit::<RqKMeans>(
        &RqKMeansConfig::new(2, 16).seed(1),
        x,
        CollisionPolicy::AppendSuffix,
        Par::Seq,
    )
    .unwrap();
    let before: Vec<Vec<u16>> = (0..1000u32)
        .map(|i| index.id_of(i).unwrap().to_vec())
        .collect();
    let new_items: Vec<u32> = (1000..1200).collect();
    let r = index
        .insert(&new_items, Embeddings::new(tail, D).unwrap(), Par::Seq)
        .unwrap();
    assert_eq!((r.added, r.items), (200, 1200));
    for (i, id) in before.iter().enumerate() {
        assert_eq!(index.id_of(i as u32).unwrap(), &id[..]);
    }
    for &i in &new_items {
        assert!(index.trie().contains(index.id_of(i).unwrap()));
    }
    // Already present: an error, and nothing changes.
    let snapshot = index.clone();
    let again = index.insert(&[5], Embeddings::new(&tail[..D], D).unwrap(), Par::Seq);
    assert!(
        matches!(again, Err(Error::DuplicateItem { .. })),
        "{again:?}"
    );
    assert_eq!(index, snapshot);
    // Wrong shapes.
    assert!(matches!(
        index.insert(
            &[2000, 2001],
            Embeddings::new(&tail[..D], D).unwrap(),
            Par::Seq
        ),
        Err(Error::Shape { .. })
    ));
    assert!(
        index
            .insert(&[2000], Embeddings::new(&tail[..8], 8).unwrap(), Par::Seq)
            .is_err()
    );
    assert_eq!(index, snapshot);
}

#[test]
fn reassign_policy_needs_rq_kmeans() {
    let (_, index) = rq_index(1000, CollisionPolicy::ReassignLastLevel { capacity: 8 });
    let ids: std::collections::HashMap<&[u16], usize> =
        (0..1000u32).fold(Default::default(), |mut h, i| {
            *h.entry(index.id_of(i).unwrap()).or_default() += 1;
            h
        });
    assert!(ids.values().all(|&n| n <= 8));

    let fsq = Fsq::new(&[4, 4]).unwrap();
    let z: Vec<f32> = (0..200)
        .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
        .collect();
    let r = SemanticIndex::build(
        fsq.clone(),
        Embeddings::new(&z, 2).unwrap(),
        CollisionPolicy::ReassignLastLevel { capacity: 1 },
        Par::Seq,
    );
    assert!(
        matches!(
            r,
            Err(Error::InvalidConfig {
                field: "policy",
                ..
            })
        ),
        "{r:?}"
    );
    // Codebook scoring needs RQ-KMeans too; the error says what to do.
    let (index, _) = SemanticIndex::build(
        fsq,
        Embeddings::new(&z, 2).unwrap(),
        CollisionPolicy::AppendSuffix,
        Par::Seq,
    )
    .unwrap();
    let e = index
        .search_embeddings_into(
            Embeddings::new(&z[..2], 2).unwrap(),
            &mut BeamSearch::new(4, 2).unwrap(),
            &mut Hits::new(),
        )
        .unwrap_err();
    assert!(e.to_string().contains("pass a Scorer"), "{e}");
}

#[test]
fn index_files_round_trip_and_refuse_damage() {
    let (data, index) = rq_index(600, CollisionPolicy::AppendSuffix);
    let other = index.map().to_bytes().unwrap();
    check_model_file(&index, 97, &other);
    // Loaded, it searches the same.
    let back = SemanticIndex::from_bytes(&index.to_bytes().unwrap()).unwrap();
    let q = Embeddings::new(&data[..20 * D], D).unwrap();
    let (mut h1, mut h2) = (Hits::new(), Hits::new());
    let mut s = BeamSearch::new(8, 5).unwrap();
    index.search_embeddings_into(q, &mut s, &mut h1).unwrap();
    back.search_embeddings_into(q, &mut s, &mut h2).unwrap();
    assert_eq!(h1, h2);
}

/// bincode's encoding of the index payload: two length-prefixed byte runs.
fn index_payload(q: &[u8], map: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    for part in [q, map] {
        p.extend_from_slice(&(part.len() as u64).to_le_bytes());
        p.extend_from_slice(part);
    }
    p
}

#[test]
fn inconsistent_index_files_are_rejected() {
    let (_, index) = rq_index(600, CollisionPolicy::AppendSuffix);
    let q = index.quantizer().to_bytes().unwrap();
    let map = index.map().to_bytes().unwrap();
    // The honest payload loads (so the hand-made framing is right).
    let ok = frame(ModelKind::SemanticIndex, &index_payload(&q, &map));
    assert_eq!(SemanticIndex::from_bytes(&ok).unwrap(), index);
    // A quantizer with other codebook sizes than the map's.
    let km = KMeans::from_centroids(vec![0.0; 5 * D], D).unwrap();
    let bad = frame(
        ModelKind::SemanticIndex,
        &index_payload(&km.to_bytes().unwrap(), &map),
    );
    assert!(matches!(
        SemanticIndex::from_bytes(&bad),
        Err(Error::Format(FormatError::Invalid(_)))
    ));
    // Parts swapped, or a map where the quantizer goes.
    for (a, b) in [(&map, &q), (&map, &map), (&q, &q)] {
        let f = frame(ModelKind::SemanticIndex, &index_payload(a, b));
        assert!(matches!(
            SemanticIndex::from_bytes(&f),
            Err(Error::Format(_))
        ));
    }
    // Damaged inner files behind a valid outer checksum.
    let mut q2 = q.clone();
    let last = q2.len() - 1;
    q2[last] ^= 1;
    let f = frame(ModelKind::SemanticIndex, &index_payload(&q2, &map));
    assert!(matches!(
        SemanticIndex::from_bytes(&f),
        Err(Error::Format(_))
    ));
}

#[test]
fn any_quantizer_reads_every_quantizer_kind() {
    let data = mixture(400, D, 2);
    let x = Embeddings::new(&data, D).unwrap();
    let (km, _) = KMeans::fit(&KMeansConfig::new(8).seed(1), x).unwrap();
    let (rq, _) = RqKMeans::fit(&RqKMeansConfig::new(2, 8).seed(1), x).unwrap();
    let models: Vec<AnyQuantizer> = vec![
        km.into(),
        rq.into(),
        Fsq::new(&[8, 5, 5, 5]).unwrap().into(),
        ResidualFsq::new(&[4, 4], 3).unwrap().into(),
    ];
    let not_a_quantizer = SidMap::build(
        &semid::Codes::new(vec![0, 1], 1).unwrap(),
        &[2],
        CollisionPolicy::AllowShared,
    )
    .unwrap()
    .0
    .to_bytes()
    .unwrap();
    for m in &models {
        check_model_file(m, 31, &not_a_quantizer);
        // The file is exactly the held model's own file.
        let bytes = m.to_bytes().unwrap();
        assert_eq!(semid::format::inspect(&bytes).unwrap().kind, m.kind());
    }
    check_model_file(&Fsq::new(&[8, 6, 5]).unwrap(), 1, &not_a_quantizer);
    check_model_file(
        &ResidualFsq::new(&[8, 5, 5, 5], 4).unwrap(),
        1,
        &not_a_quantizer,
    );
}

#[test]
fn same_index_bytes_whatever_the_thread_count() {
    let data = mixture(3000, D, 4);
    let build = |threads: usize| {
        with_threads(threads, || {
            let x = Embeddings::new(&data, D).unwrap();
            SemanticIndex::fit::<RqKMeans>(
                &RqKMeansConfig::new(3, 16).seed(2).par(Par::Rayon(threads)),
                x,
                CollisionPolicy::ReassignLastLevel { capacity: 6 },
                Par::Rayon(threads),
            )
            .unwrap()
            .0
            .to_bytes()
            .unwrap()
        })
    };
    assert_eq!(build(1), build(2));
}

/// The hand-written seed of the `index_file` fuzz target (written from
/// docs/FORMAT.md with Python's struct module) is a valid index: the
/// documented layout is the real one.
#[test]
fn index_written_from_the_format_doc_loads() {
    let seed = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/regressions/index_file/valid_index"),
    )
    .unwrap();
    let index = SemanticIndex::from_bytes(&frame(ModelKind::SemanticIndex, &seed[1..])).unwrap();
    assert_eq!(index.len(), 2);
    assert_eq!(index.id_of(1), Some(&[1u16][..]));
    assert_eq!(index.quantizer().kind(), ModelKind::RqKMeans);
}

/// Issue 11, part 5: an item held out of the catalog becomes
/// recommendable after `insert` (new ID, trie rebuilt), with no change to
/// the model: a scorer that favours the held-out item's code prefix
/// returns it once it is inserted, and never before.
#[test]
fn inserted_items_are_recommended_without_retraining() {
    use semid::decode::FnScorer;
    let data = mixture(1500, D, 3);
    let old = Embeddings::new(&data[..1400 * D], D).unwrap();
    let (mut index, _, _) = SemanticIndex::fit::<RqKMeans>(
        &RqKMeansConfig::new(2, 16).seed(5),
        old,
        CollisionPolicy::AppendSuffix,
        Par::Seq,
    )
    .unwrap();
    let held = 1450u32;
    let row = Embeddings::new(&data[held as usize * D..(held as usize + 1) * D], D).unwrap();
    let code = index.encode(row, Par::Seq).unwrap().row(0).to_vec();
    // The "model": log-score 0 on the favoured code's tokens, −1 elsewhere;
    // any suffix is as good as another.
    let mut scorer = FnScorer(
        |_: usize, prefix: &[u16], out: &mut [f32]| -> semid::Result<()> {
            let level = prefix.len();
            for (t, o) in out.iter_mut().enumerate() {
                *o = match code.get(level) {
                    Some(&c) if c as usize != t => -1.0,
                    _ => 0.0,
                };
            }
            Ok(())
        },
    );
    // Items already holding that code rank with it (same score, earlier
    // suffixes): ask for all of them and one more.
    let mates = (0..1400u32)
        .filter(|&i| index.id_of(i).unwrap()[..2] == code[..])
        .count();
    let mut search = BeamSearch::new(mates + 1, mates + 1).unwrap();
    let before = index.search(&mut scorer, 1, &mut search).unwrap();
    assert!(!before.query(0).items.contains(&held));
    let report = index.insert(&[held], row, Par::Seq).unwrap();
    assert_eq!((report.added, report.items), (1, 1401));
    let id = index.id_of(held).unwrap().to_vec();
    assert_eq!(&id[..2], &code[..]);
    let after = index.search(&mut scorer, 1, &mut search).unwrap();
    let hits = after.query(0);
    let at = hits.items.iter().position(|&i| i == held);
    let at = at.expect("the inserted item is recommended");
    assert_eq!(at, mates);
    // Everything ranked above it shares its code (the same best score; ties
    // go by suffix, and the new item's suffix is the bucket's last).
    for i in 0..=at {
        assert_eq!(&hits.ids[i * 3..i * 3 + 2], &code[..], "hit {i}");
        assert_eq!(hits.scores[i], 0.0);
    }
}

/// Searches on several threads while a writer inserts batches through a
/// `SharedIndex`: every search sees one whole version (its hits are items
/// of that version, its trie holds the newest item, and the search repeats
/// exactly), versions only grow, and a failed update leaves the served
/// version in place.
#[test]
fn shared_index_swaps_while_threads_search() {
    use semid::SharedIndex;
    use std::sync::Arc;
    let (n0, batches, per) = (600usize, 8usize, 50usize);
    let data = mixture(n0 + batches * per, D, 3);
    let x = Embeddings::new(&data[..n0 * D], D).unwrap();
    let (index, _, _) = SemanticIndex::fit::<RqKMeans>(
        &RqKMeansConfig::new(2, 16).seed(5),
        x,
        CollisionPolicy::AppendSuffix,
        Par::Seq,
    )
    .unwrap();
    let shared = Arc::new(SharedIndex::new(index));
    let data = Arc::new(data);
    let readers: Vec<_> = (0..3)
        .map(|t| {
            let (shared, data) = (Arc::clone(&shared), Arc::clone(&data));
            std::thread::spawn(move || {
                let mut bs = BeamSearch::new(16, 400).unwrap();
                let mut hits = Hits::new();
                let mut last_len = 0;
                let mut searches = 0;
                while last_len < n0 + batches * per {
                    let index = shared.load();
                    let len = index.len();
                    assert!(len >= last_len, "a version went back: {len} < {last_len}");
                    last_len = len;
                    // The newest item of this version, as its own query.
                    let q = len - 1 - t;
                    let x = Embeddings::new(&data[q * D..(q + 1) * D], D).unwrap();
                    index.search_embeddings_into(x, &mut bs, &mut hits).unwrap();
                    let got = hits.query(0).items;
                    assert!(got.iter().all(|&i| index.id_of(i).is_some()));
                    let id = index.id_of(q as u32).unwrap();
                    let leaf = index.trie().walk(id).unwrap();
                    assert!(index.trie().items(leaf).contains(&(q as u32)));
                    // The same search on the same version, from scratch,
                    // gives the same hits: nothing else changed what this
                    // thread searched.
                    let again = index
                        .search_embeddings(x, &mut BeamSearch::new(16, 400).unwrap())
                        .unwrap();
                    assert_eq!(again.query(0).items, got);
                    searches += 1;
                }
                searches
            })
        })
        .collect();
    for b in 0..batches {
        let lo = n0 + b * per;
        let items: Vec<u32> = (lo as u32..(lo + per) as u32).collect();
        let x = Embeddings::new(&data[lo * D..(lo + per) * D], D).unwrap();
        shared
            .update(|index| index.insert(&items, x, Par::Seq))
            .unwrap();
        // A duplicate item: the update fails and the version stays.
        let before = shared.load();
        let x1 = Embeddings::new(&data[..D], D).unwrap();
        assert!(matches!(
            shared.update(|index| index.insert(&[0], x1, Par::Seq)),
            Err(Error::DuplicateItem { item: 0 })
        ));
        assert!(Arc::ptr_eq(&before, &shared.load()));
    }
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    let last = shared.load();
    assert_eq!(last.len(), n0 + batches * per);
    // `store` swaps a whole index in and hands back the old one.
    let old = shared.store(SemanticIndex::clone(&last));
    assert!(Arc::ptr_eq(&old, &last));
    assert_eq!(*shared.load(), *last);
}

/// `from_codes` builds the index `build` builds from the same codes, and
/// refuses codes that do not fit the quantizer and policies that need the
/// embeddings.
#[test]
fn index_from_codes_equals_build_and_checks_its_input() {
    let (data, index) = rq_index(400, CollisionPolicy::AppendSuffix);
    let x = Embeddings::new(&data, D).unwrap();
    let q = index.quantizer().clone();
    let codes = index.encode(x, Par::Seq).unwrap();
    let (again, report) =
        SemanticIndex::from_codes(q.clone(), &codes, CollisionPolicy::AppendSuffix).unwrap();
    assert_eq!(again, index);
    assert_eq!(report.items, 400);
    let short = semid::Codes::new(codes.as_slice()[..400].to_vec(), 1).unwrap();
    assert!(matches!(
        SemanticIndex::from_codes(q.clone(), &short, CollisionPolicy::AppendSuffix),
        Err(Error::Shape { .. })
    ));
    let mut big = codes.as_slice().to_vec();
    big[5] = 16;
    let big = semid::Codes::new(big, 2).unwrap();
    assert!(matches!(
        SemanticIndex::from_codes(q.clone(), &big, CollisionPolicy::AppendSuffix),
        Err(Error::TokenOutOfRange { .. })
    ));
    for policy in [
        CollisionPolicy::ReassignLastLevel { capacity: 1 },
        CollisionPolicy::SINKHORN,
    ] {
        assert!(matches!(
            SemanticIndex::from_codes(q.clone(), &codes, policy),
            Err(Error::InvalidConfig {
                field: "policy",
                ..
            })
        ));
    }
}

/// A quantizer with the given shape whose codebooks do not matter: the
/// incremental-insert tests give codes directly.
fn shaped_quantizer(levels: usize, k: usize) -> RqKMeans {
    let books: Vec<f32> = (0..levels * k).map(|i| i as f32).collect();
    RqKMeans::from_codebooks(books, levels, 1).unwrap()
}

/// Every prefix of every ID, and some that are not prefixes, walk the same
/// way in both tries: same allowed tokens, same items.
fn same_walks(a: &semid::sid::Trie, b: &semid::sid::Trie, map: &SidMap, probes: &[u16]) {
    assert_eq!(a.len(), b.len());
    let len = map.id_len();
    let mut prefixes: Vec<Vec<u16>> = Vec::new();
    for (_, id) in map.iter() {
        for p in 0..=len {
            prefixes.push(id[..p].to_vec());
        }
    }
    for w in probes.chunks(len) {
        for p in 0..=w.len() {
            prefixes.push(w[..p].to_vec());
        }
    }
    for pre in &prefixes {
        match (a.walk(pre), b.walk(pre)) {
            (None, None) => {}
            (Some(x), Some(y)) => {
                assert_eq!(a.allowed(x), b.allowed(y), "allowed after {pre:?}");
                assert_eq!(a.items(x), b.items(y), "items of {pre:?}");
                assert_eq!(a.items_under(x), b.items_under(y), "items under {pre:?}");
                for i in 0..a.allowed(x).len() {
                    let (cx, cy) = (a.child(x, i).unwrap(), b.child(y, i).unwrap());
                    assert_eq!(a.allowed(cx), b.allowed(cy));
                }
            }
            (x, y) => panic!("{pre:?} walks to {x:?} in one trie and {y:?} in the other"),
        }
    }
    let mut buf = vec![0u16; len];
    let mut ids = std::collections::BTreeSet::new();
    for leaf in 0..a.len() {
        a.id_of_leaf(leaf, &mut buf).unwrap();
        assert!(b.contains(&buf), "leaf {leaf}: {buf:?}");
        ids.insert(buf.clone());
    }
    assert_eq!(ids.len(), b.len(), "leaves name distinct IDs");
}

/// Beam-search hits of both indexes for random score tables.
fn same_hits(a: &SemanticIndex, b: &SemanticIndex, seed: u64) {
    let vocab = a.trie().codebook_sizes().to_vec();
    assert_eq!(&vocab[..], b.trie().codebook_sizes());
    let mut s = seed | 1;
    let mut table = Vec::new();
    for _ in 0..3 {
        for &v in &vocab {
            for _ in 0..v {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                table.push((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5);
            }
        }
    }
    let mut bs = BeamSearch::new(6, 10).unwrap();
    let mut ha = TableScorer::new(3, &vocab, table.clone()).unwrap();
    let mut hb = TableScorer::new(3, &vocab, table).unwrap();
    let x = a.search(&mut ha, 3, &mut bs).unwrap();
    let y = b.search(&mut hb, 3, &mut bs).unwrap();
    for q in 0..3 {
        assert_eq!(x.query(q), y.query(q), "query {q}");
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(96))]

    /// Inserting batch after batch gives the map and the searches of one
    /// build over all items, before and after compaction, and through a
    /// file.
    #[test]
    fn incremental_inserts_equal_a_fresh_build(
        levels in 1usize..4,
        k in 1usize..5,
        shared in proptest::bool::ANY,
        raw in proptest::collection::vec(0u16..5, 1..300),
        cuts in proptest::collection::vec(1usize..40, 1..8),
        probes in proptest::collection::vec(0u16..6, 0..24),
        seed in proptest::num::u64::ANY,
    ) {
        let n = raw.len() / levels;
        proptest::prop_assume!(n > 1);
        let codes: Vec<u16> = raw[..n * levels].iter().map(|&t| t % k as u16).collect();
        let all = semid::Codes::new(codes.clone(), levels).unwrap();
        let policy = if shared { CollisionPolicy::AllowShared } else { CollisionPolicy::AppendSuffix };
        let q = shaped_quantizer(levels, k);
        let (fresh, fresh_report) = SemanticIndex::from_codes(q.clone(), &all, policy).unwrap();
        // The first batch builds; the others are inserted.
        let first = cuts[0].min(n - 1);
        let head = semid::Codes::new(codes[..first * levels].to_vec(), levels).unwrap();
        let (mut index, _) = SemanticIndex::from_codes(q, &head, policy).unwrap();
        let mut at = first;
        let mut report = None;
        for &c in cuts[1..].iter().chain(std::iter::once(&n)) {
            let end = (at + c).min(n);
            if end == at {
                continue;
            }
            let items: Vec<u32> = (at as u32..end as u32).collect();
            let part = semid::Codes::new(codes[at * levels..end * levels].to_vec(), levels).unwrap();
            let before: Vec<Vec<u16>> = (0..at as u32).map(|i| index.id_of(i).unwrap().to_vec()).collect();
            report = Some(index.insert_codes(&items, &part).unwrap());
            for (i, id) in before.iter().enumerate() {
                proptest::prop_assert_eq!(index.id_of(i as u32).unwrap(), &id[..], "an existing ID moved");
            }
            at = end;
        }
        proptest::prop_assert_eq!(at, n);
        let mut report = report.unwrap();
        report.added = fresh_report.added;
        proptest::prop_assert_eq!(report, fresh_report);
        proptest::prop_assert!(index.pending() > 0);
        proptest::prop_assert_eq!(index.map(), fresh.map());
        proptest::prop_assert_eq!(index.map().stats(), fresh.map().stats());
        same_walks(index.trie(), fresh.trie(), fresh.map(), &probes);
        same_hits(&index, &fresh, seed);
        proptest::prop_assert_eq!(&index, &fresh);
        // Saved with inserts pending, loaded compacted.
        let back = SemanticIndex::from_bytes(&index.to_bytes().unwrap()).unwrap();
        proptest::prop_assert_eq!(back.trie().pending(), 0);
        proptest::prop_assert_eq!(&back, &fresh);
        index.compact().unwrap();
        proptest::prop_assert_eq!(index.pending(), 0);
        proptest::prop_assert_eq!(index.trie().pending(), 0);
        same_walks(index.trie(), fresh.trie(), fresh.map(), &probes);
        same_hits(&index, &fresh, seed);
        proptest::prop_assert_eq!(index.trie().stats(), fresh.trie().stats());
    }
}

#[test]
fn inserts_compact_by_themselves_past_the_threshold() {
    use semid::sid::COMPACT_MIN_ITEMS;
    let (levels, k) = (2, 64);
    let q = shaped_quantizer(levels, k);
    let n0 = 10_000usize;
    let code = |i: usize| [(i * 7 % k) as u16, (i * 13 / 3 % k) as u16];
    let head: Vec<u16> = (0..n0).flat_map(code).collect();
    let (mut index, _) = SemanticIndex::from_codes(
        q,
        &semid::Codes::new(head, levels).unwrap(),
        CollisionPolicy::AppendSuffix,
    )
    .unwrap();
    let mut next = n0;
    let batch = 10_000;
    let mut compacted = false;
    while next < n0 + COMPACT_MIN_ITEMS + 2 * batch {
        let items: Vec<u32> = (next as u32..(next + batch) as u32).collect();
        let c: Vec<u16> = (next..next + batch).flat_map(code).collect();
        index
            .insert_codes(&items, &semid::Codes::new(c, levels).unwrap())
            .unwrap();
        next += batch;
        assert!(index.pending() <= COMPACT_MIN_ITEMS);
        assert_eq!(index.pending(), index.trie().pending());
        compacted |= index.pending() == 0;
        for i in (0..next as u32).step_by(997) {
            assert!(index.trie().contains(index.id_of(i).unwrap()));
        }
    }
    assert!(compacted, "the delta never compacted");
    assert_eq!(index.len(), next);
    // A repeated item is refused and changes nothing.
    let before = index.clone();
    let err = index
        .insert_codes(
            &[5, next as u32],
            &semid::Codes::new(vec![0, 0, 1, 1], 2).unwrap(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::DuplicateItem { item: 5 }), "{err}");
    assert_eq!(index, before);
    assert_eq!(index.pending(), before.pending());
}

#[test]
fn pending_inserts_walk_like_a_trie_rebuilt_from_the_map_under_every_policy() {
    let data = mixture(3000, D, 11);
    let x = Embeddings::new(&data, D).unwrap();
    let (rq, _) = RqKMeans::fit(&RqKMeansConfig::new(2, 8).seed(3), x).unwrap();
    for policy in [
        CollisionPolicy::ReassignLastLevel { capacity: 120 },
        CollisionPolicy::SINKHORN,
        CollisionPolicy::AppendSuffix,
        CollisionPolicy::AllowShared,
    ] {
        let (mut index, _) =
            SemanticIndex::build(rq.clone(), x.slice(0, 1000).unwrap(), policy, Par::Seq).unwrap();
        for (lo, hi) in [(1000, 1700), (1700, 1701), (1701, 3000)] {
            let items: Vec<u32> = (lo as u32..hi as u32).collect();
            index
                .insert(&items, x.slice(lo, hi).unwrap(), Par::Seq)
                .unwrap();
        }
        assert_eq!(index.pending(), 2000);
        let rebuilt = semid::sid::Trie::build(index.map()).unwrap();
        same_walks(index.trie(), &rebuilt, index.map(), &[]);
        assert_eq!(index.trie(), &rebuilt, "{policy:?}");
        assert_eq!(index.map().stats(), {
            let back = SemanticIndex::from_bytes(&index.to_bytes().unwrap()).unwrap();
            back.map().stats()
        });
    }
}
