//! SidMap collision policies, insertion, the trie against a BTreeMap
//! reference, and their model files.

mod common;

use std::collections::BTreeMap;

use proptest::prelude::*;
use semid::ModelFile;
use semid::quantize::LastLevelDistances;
use semid::sid::{CollisionPolicy, SidMap, Trie};
use semid::{Codes, Embeddings, Error, Quantizer, RqKMeans, RqKMeansConfig};

fn codes(rows: &[&[u16]]) -> Codes {
    Codes::new(rows.concat(), rows[0].len()).unwrap()
}

#[test]
fn append_suffix_numbers_collisions_in_catalog_order() {
    let c = codes(&[&[1, 2], &[3, 0], &[1, 2], &[1, 2], &[3, 1]]);
    let (m, r) = SidMap::build(&c, &[4, 4], CollisionPolicy::AppendSuffix).unwrap();
    assert_eq!(m.id_len(), 3);
    assert_eq!(m.id_of(0), Some(&[1, 2, 0][..]));
    assert_eq!(m.id_of(2), Some(&[1, 2, 1][..]));
    assert_eq!(m.id_of(3), Some(&[1, 2, 2][..]));
    assert_eq!(m.id_of(1), Some(&[3, 0, 0][..]));
    assert_eq!(m.codebook_sizes(), vec![4, 4, 3]);
    assert_eq!(r.max_bucket, 3);
    assert_eq!(r.max_items_per_id, 1);
    assert_eq!(r.unique_ids, 5);
    assert_eq!(r.collision_rate, 0.0);
    // 5 items: the 3 of code (1, 2) share it (stats::code_quality's rate).
    assert_eq!(r.code_collision_rate, Some(3.0 / 5.0));
    let q = semid::stats::code_quality(&c, &[4, 4]).unwrap();
    assert_eq!(r.code_collision_rate, Some(q.collision_rate));
    assert_eq!(m.items_of(&[1, 2, 2]), vec![3]);
}

#[test]
fn allow_shared_keeps_collisions() {
    let c = codes(&[&[1, 2], &[3, 0], &[1, 2]]);
    let (m, r) = SidMap::build(&c, &[4, 4], CollisionPolicy::AllowShared).unwrap();
    assert_eq!(m.id_len(), 2);
    assert_eq!(m.items_of(&[1, 2]), vec![0, 2]);
    assert_eq!(r.max_items_per_id, 2);
    assert_eq!(r.unique_ids, 2);
    assert!((r.collision_rate - 2.0 / 3.0).abs() < 1e-12);
    assert_eq!(r.code_collision_rate, Some(r.collision_rate));
    let t = Trie::build(&m).unwrap();
    assert_eq!(t.items(t.walk(&[1, 2]).unwrap()), &[0, 2]);
}

#[test]
fn insertion_equals_building_at_once() {
    let data = common::mixture(3000, 16, 5);
    let x = Embeddings::new(&data, 16).unwrap();
    let (rq, _) = RqKMeans::fit(&RqKMeansConfig::new(2, 16).seed(1), x).unwrap();
    let all = rq.encode(x).unwrap();
    for policy in [CollisionPolicy::AppendSuffix, CollisionPolicy::AllowShared] {
        let (whole, _) = SidMap::build(&all, &rq.codebook_sizes(), policy).unwrap();
        let first = Codes::new(all.as_slice()[..2000 * 2].to_vec(), 2).unwrap();
        let rest = Codes::new(all.as_slice()[2000 * 2..].to_vec(), 2).unwrap();
        let (mut m, _) = SidMap::build(&first, &rq.codebook_sizes(), policy).unwrap();
        let before: Vec<u16> = ids(&m);
        let items: Vec<u32> = (2000..3000).collect();
        let r = m.insert(&items, &rest).unwrap();
        assert_eq!(r.added, 1000);
        assert_eq!(r.items, 3000);
        assert_eq!(
            &ids(&m)[..before.len()],
            &before[..],
            "existing IDs changed"
        );
        assert_eq!(ids(&m), ids(&whole));
        assert_eq!(m.stats(), whole.stats());
        let (ta, tb) = (Trie::build(&m).unwrap(), Trie::build(&whole).unwrap());
        assert_eq!(ta.stats(), tb.stats());
        for i in 0..3000u32 {
            let s = ta.walk(m.id_of(i).unwrap()).unwrap();
            assert!(ta.items(s).contains(&i));
        }
    }
}

#[test]
fn reassign_makes_ids_unique_and_moves_to_next_nearest() {
    let data = common::mixture(4000, 16, 9);
    let x = Embeddings::new(&data, 16).unwrap();
    let (rq, _) = RqKMeans::fit(&RqKMeansConfig::new(2, 32).seed(3), x).unwrap();
    let c = rq.encode(x).unwrap();
    let policy = CollisionPolicy::ReassignLastLevel { capacity: 16 };
    let mut per_prefix = [0usize; 32];
    c.iter().for_each(|r| per_prefix[r[0] as usize] += 1);
    assert!(per_prefix.iter().all(|&n| n <= 16 * 32), "{per_prefix:?}");
    // Without distances: a clear error.
    assert!(matches!(
        SidMap::build(&c, &rq.codebook_sizes(), policy),
        Err(Error::InvalidConfig { .. })
    ));
    let (m, r) = SidMap::build_with_distances(&c, &rq, x, policy).unwrap();
    assert!(r.max_bucket > 16, "test needs collisions: {r:?}");
    assert!(r.moved > 0);
    // The IDs no longer hold the original codes.
    assert_eq!(r.code_collision_rate, None);
    assert!(r.max_items_per_id <= 16);
    assert_eq!(m.id_len(), 2);
    // Moved items keep their first token and go no closer than their own
    // code; unmoved buckets are untouched.
    let mut dist = vec![0f32; 4000 * 32];
    rq.last_level_distances(x, c.as_slice(), &mut dist).unwrap();
    let mut moved = 0;
    for i in 0..4000usize {
        let (own, new) = (c.row(i), m.id_of(i as u32).unwrap());
        assert_eq!(own[0], new[0]);
        if own[1] != new[1] {
            moved += 1;
            assert!(dist[i * 32 + new[1] as usize] >= dist[i * 32 + own[1] as usize]);
        }
    }
    assert_eq!(moved, r.moved);
    // Incremental insertion under the same policy keeps the bound.
    let extra = common::mixture(500, 16, 77);
    let xe = Embeddings::new(&extra, 16).unwrap();
    let ce = rq.encode(xe).unwrap();
    let mut m2 = m.clone();
    let items: Vec<u32> = (10_000..10_500).collect();
    let r2 = m2.insert_with_distances(&items, &ce, &rq, xe).unwrap();
    assert!(r2.max_items_per_id <= 16);
    assert_eq!(&ids(&m2)[..ids(&m).len()], &ids(&m)[..]);
}

#[test]
fn reassign_reports_a_full_prefix() {
    // Two last-level codes, capacity 1, three items under one prefix.
    let cb = vec![0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0];
    let rq = RqKMeans::from_codebooks(cb, 2, 2).unwrap();
    let x = [1.0, 0.0, 1.0, 0.1, 1.0, 0.2];
    let x = Embeddings::new(&x, 2).unwrap();
    let c = rq.encode(x).unwrap();
    let e = SidMap::build_with_distances(
        &c,
        &rq,
        x,
        CollisionPolicy::ReassignLastLevel { capacity: 1 },
    )
    .unwrap_err();
    assert!(e.to_string().contains("capacity"), "{e}");
    // Capacity 2 fits.
    let (m, r) = SidMap::build_with_distances(
        &c,
        &rq,
        x,
        CollisionPolicy::ReassignLastLevel { capacity: 2 },
    )
    .unwrap();
    assert_eq!(r.max_items_per_id, 2);
    assert_eq!(m.len(), 3);
}

#[test]
fn bad_input_is_a_typed_error() {
    let c = codes(&[&[1, 2], &[3, 0]]);
    let (mut m, _) = SidMap::build(&c, &[4, 4], CollisionPolicy::AppendSuffix).unwrap();
    // Ragged: 3-token codes into a 2-level map.
    let c3 = codes(&[&[1, 2, 3]]);
    assert!(matches!(m.insert(&[9], &c3), Err(Error::Shape { .. })));
    // Token out of range.
    let bad = codes(&[&[1, 4]]);
    assert!(matches!(
        m.insert(&[9], &bad),
        Err(Error::TokenOutOfRange { token: 4, .. })
    ));
    // Duplicate items: present already, or twice in the batch.
    let two = codes(&[&[1, 2], &[1, 2]]);
    assert!(matches!(
        m.insert(&[1, 7], &two),
        Err(Error::DuplicateItem { item: 1 })
    ));
    assert!(matches!(
        m.insert(&[7, 7], &two),
        Err(Error::DuplicateItem { item: 7 })
    ));
    // Items/codes length mismatch.
    assert!(matches!(m.insert(&[7], &two), Err(Error::Shape { .. })));
    // The map is unchanged by failed inserts.
    assert_eq!(m.len(), 2);
    // Bad constructors.
    assert!(SidMap::new(&[], CollisionPolicy::AllowShared).is_err());
    assert!(SidMap::new(&[0], CollisionPolicy::AllowShared).is_err());
    assert!(SidMap::new(&[70_000], CollisionPolicy::AllowShared).is_err());
    assert!(SidMap::new(&[4], CollisionPolicy::ReassignLastLevel { capacity: 0 }).is_err());
    // Trie from bad IDs.
    assert!(Trie::from_ids(&[], 2, &[4, 4]).is_err());
    assert!(Trie::from_ids(&[1, 2, 3], 2, &[4, 4]).is_err());
    assert!(Trie::from_ids(&[1, 5], 2, &[4, 4]).is_err());
    assert!(Trie::from_ids(&[1, 2], 2, &[4]).is_err());
    assert!(Trie::from_ids(&[1, 2], 2, &[4, 0]).is_err());
}

#[test]
fn model_files_round_trip_and_reject_corruption() {
    let data = common::mixture(2000, 8, 2);
    let x = Embeddings::new(&data, 8).unwrap();
    let (rq, _) = RqKMeans::fit(&RqKMeansConfig::new(2, 8).seed(1), x).unwrap();
    let c = rq.encode(x).unwrap();
    for policy in [
        CollisionPolicy::AppendSuffix,
        CollisionPolicy::AllowShared,
        CollisionPolicy::ReassignLastLevel { capacity: 400 },
    ] {
        let (m, _) = SidMap::build_with_distances(&c, &rq, x, policy).unwrap();
        let bytes = m.to_bytes().unwrap();
        let back = SidMap::from_bytes(&bytes).unwrap();
        assert!(back.iter().eq(m.iter()));
        assert_eq!(back.policy(), policy);
        assert_eq!(back.stats(), m.stats());
        let t = Trie::build(&m).unwrap();
        let tb = t.to_bytes().unwrap();
        let t2 = Trie::from_bytes(&tb).unwrap();
        assert_eq!(t2.stats(), t.stats());
        for i in 0..2000u32 {
            assert!(t2.contains(m.id_of(i).unwrap()));
        }
        // Every truncation and a sample of bit flips fail cleanly.
        for cut in (0..tb.len()).step_by(7) {
            assert!(Trie::from_bytes(&tb[..cut]).is_err());
        }
        for pos in (0..tb.len()).step_by(13) {
            let mut b = tb.clone();
            b[pos] ^= 0x10;
            assert!(Trie::from_bytes(&b).is_err());
        }
        assert!(
            Trie::from_bytes(&bytes).is_err(),
            "a SidMap file is not a trie"
        );
        let dir = std::env::temp_dir().join(format!("semid-sid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("t.semid");
        t.save(&p).unwrap();
        assert_eq!(Trie::load(&p).unwrap().stats(), t.stats());
        m.save(&p).unwrap();
        assert!(SidMap::load(&p).unwrap().iter().eq(m.iter()));
        std::fs::remove_dir_all(&dir).ok();
    }
}

/// Reference: a BTreeMap from ID to items.
fn reference(ids: &[u16], len: usize) -> BTreeMap<Vec<u16>, Vec<u32>> {
    let mut r: BTreeMap<Vec<u16>, Vec<u32>> = BTreeMap::new();
    for (i, id) in ids.chunks_exact(len).enumerate() {
        r.entry(id.to_vec()).or_default().push(i as u32);
    }
    r
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn trie_accepts_exactly_the_inserted_ids(
        len in 1usize..5,
        vocab in 1usize..6,
        raw in proptest::collection::vec(0u16..6, 1..200),
        probes in proptest::collection::vec(0u16..7, 0..60),
    ) {
        let n = raw.len() / len;
        prop_assume!(n > 0);
        let ids: Vec<u16> = raw[..n * len].iter().map(|&t| t % vocab as u16).collect();
        let vocabs = vec![vocab; len];
        let t = Trie::from_ids(&ids, len, &vocabs).unwrap();
        t.validate().unwrap();
        let r = reference(&ids, len);
        prop_assert_eq!(t.len(), r.len());
        // Every inserted ID is accepted with its items (row order).
        for (id, items) in &r {
            let s = t.walk(id).unwrap();
            prop_assert_eq!(t.items(s), &items[..]);
            prop_assert!(t.contains(id));
        }
        // Arbitrary sequences are accepted iff they are IDs; prefixes walk iff
        // some ID starts with them, and `allowed` lists exactly the next tokens.
        for w in probes.chunks(len.max(1)) {
            prop_assert_eq!(t.contains(w), r.contains_key(w));
            for p in 0..=w.len() {
                let pre = &w[..p];
                let next: std::collections::BTreeSet<u16> = r
                    .keys()
                    .filter(|k| k.starts_with(pre))
                    .filter_map(|k| k.get(p).copied())
                    .collect();
                let has = r.keys().any(|k| k.starts_with(pre));
                match t.walk(pre) {
                    None => prop_assert!(!has),
                    Some(s) => {
                        prop_assert!(has);
                        let allowed: Vec<u16> = t.allowed(s).to_vec();
                        prop_assert_eq!(allowed, next.into_iter().collect::<Vec<_>>());
                        let under: Vec<u32> = r
                            .iter()
                            .filter(|(k, _)| k.starts_with(pre))
                            .flat_map(|(_, v)| v.iter().copied())
                            .collect();
                        prop_assert_eq!(t.items_under(s), under);
                        if p < len {
                            prop_assert!(t.items(s).is_empty(), "items() is for complete IDs");
                        }
                    }
                }
            }
        }
        // Leaves enumerate the IDs in order.
        let mut buf = vec![0u16; len];
        for (leaf, id) in r.keys().enumerate() {
            t.id_of_leaf(leaf, &mut buf).unwrap();
            prop_assert_eq!(&buf, id);
        }
        // The file round trip keeps it.
        let back = Trie::from_bytes(&t.to_bytes().unwrap()).unwrap();
        prop_assert_eq!(back.stats(), t.stats());
    }
}

fn golden_map() -> SidMap {
    let c = codes(&[&[1, 2], &[3, 0], &[1, 2], &[0, 3]]);
    let items = [40, 10, 30, 20];
    let mut m = SidMap::new(&[4, 4], CollisionPolicy::AppendSuffix).unwrap();
    m.insert(&items, &c).unwrap();
    m
}

/// Golden v1 SidMap and Trie files: they must load unchanged forever, and
/// this build must write the same bytes. Regenerate only with a format
/// bump: `SEMID_WRITE_GOLDEN=1 cargo test`.
#[test]
fn golden_v1_sid_files_load_forever() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let (mp, tp) = (dir.join("sid_map_v1.semid"), dir.join("trie_v1.semid"));
    let m = golden_map();
    let t = Trie::build(&m).unwrap();
    if std::env::var_os("SEMID_WRITE_GOLDEN").is_some() {
        m.save(&mp).unwrap();
        t.save(&tp).unwrap();
    }
    assert_eq!(std::fs::read(&mp).unwrap(), m.to_bytes().unwrap());
    assert_eq!(std::fs::read(&tp).unwrap(), t.to_bytes().unwrap());
    let m2 = SidMap::load(&mp).unwrap();
    assert_eq!(m2.id_of(30), Some(&[1, 2, 1][..]));
    assert_eq!(m2.items_of(&[0, 3, 0]), vec![20]);
    let t2 = Trie::load(&tp).unwrap();
    assert_eq!(t2.items_under(t2.walk(&[1, 2]).unwrap()), vec![40, 30]);
    assert_eq!(t2.allowed(t2.start()), &[0, 1, 3]);
}

/// Hostile trie payloads: build a valid file, then rewrite parts of its
/// payload through the public framing helper.
#[test]
fn hostile_trie_files_are_rejected() {
    use common::frame;
    use semid::format::ModelKind;
    let t = Trie::from_ids(&[0, 1, 1, 0, 1, 1], 2, &[2, 2]).unwrap();
    let bytes = t.to_bytes().unwrap();
    let payload = &bytes[semid::format::HEADER_LEN..];
    // Each u32 offset is stored fixed-width little-endian; find the depth-1
    // offsets [0, 1, 3] and corrupt them.
    let needle: Vec<u8> = [0u32, 1, 3].iter().flat_map(|v| v.to_le_bytes()).collect();
    let at = payload
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("offsets in payload");
    for (what, vals) in [
        ("not monotone", [0u32, 3, 1]),
        ("out of range", [0, 1, 9]),
        ("empty node", [0, 0, 3]),
        ("bad start", [1, 1, 3]),
    ] {
        let mut p = payload.to_vec();
        for (i, v) in vals.iter().enumerate() {
            p[at + 4 * i..at + 4 * i + 4].copy_from_slice(&v.to_le_bytes());
        }
        let e = Trie::from_bytes(&frame(ModelKind::Trie, &p)).unwrap_err();
        assert!(matches!(e, Error::Format(_)), "{what}: {e}");
    }
}

/// A map's IDs in insertion order, row-major.
fn ids(m: &SidMap) -> Vec<u16> {
    m.iter().flat_map(|(_, id)| id.iter().copied()).collect()
}
