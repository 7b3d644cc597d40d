//! Index files of format version 3, opened in place (`SemanticIndex::open`):
//! equal to the saved index under every check, searched the same, grown by
//! inserts, and damaged files refused or, where a structure check cannot
//! see the damage, answered without a panic.

mod common;

use common::mixture;
use semid::decode::BeamSearch;
use semid::hits::Hits;
use semid::sid::CollisionPolicy;
use semid::{
    Check, Embeddings, Error, FormatError, ModelFile, Par, RqKMeans, RqKMeansConfig, SemanticIndex,
};

const D: usize = 8;

/// An index of 0..n under `policy`, then `extra` items numbered from
/// 10 000 in reverse order (so the item lookup is a sorted table, not a
/// dense run), compacted.
fn index(n: usize, extra: usize, policy: CollisionPolicy) -> (Vec<f32>, SemanticIndex) {
    let data = mixture(n + extra, D, 11);
    let x = Embeddings::new(&data, D).unwrap();
    let (rq, _) = semid::Fit::fit(&RqKMeansConfig::new(2, 8).seed(3), x).unwrap();
    let rq: RqKMeans = rq;
    let (mut ix, _) = SemanticIndex::build(rq, x.slice(0, n).unwrap(), policy, Par::Seq).unwrap();
    if extra > 0 {
        let items: Vec<u32> = (0..extra as u32).rev().map(|i| 10_000 + i).collect();
        ix.insert(&items, x.slice(n, n + extra).unwrap(), Par::Seq)
            .unwrap();
        ix.compact().unwrap();
    }
    (data, ix)
}

fn temp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "semid-mapped-{}-{:?}-{name}",
        std::process::id(),
        std::thread::current().id()
    ))
}

fn hits(ix: &SemanticIndex, data: &[f32]) -> Hits {
    let q = Embeddings::new(&data[..40 * D], D).unwrap();
    ix.search_embeddings(q, &mut BeamSearch::new(6, 5).unwrap())
        .unwrap()
}

#[test]
fn an_opened_index_equals_the_saved_one_under_every_check() {
    for policy in [
        CollisionPolicy::AppendSuffix,
        CollisionPolicy::AllowShared,
        CollisionPolicy::ReassignLastLevel { capacity: 64 },
    ] {
        for extra in [0, 150] {
            let (data, ix) = index(700, extra, policy);
            let path = temp("eq.semid");
            ix.save(&path).unwrap();
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(bytes, ix.to_bytes().unwrap());
            assert_eq!(semid::format::inspect(&bytes).unwrap().version, 3);
            let opened = [
                SemanticIndex::open(&path).unwrap(),
                SemanticIndex::open_with(&path, Check::Full).unwrap(),
                SemanticIndex::load(&path).unwrap(),
                SemanticIndex::from_bytes_with(&bytes, Check::Structure).unwrap(),
            ];
            let want = hits(&ix, &data);
            for o in &opened {
                assert_eq!(o, &ix, "{policy:?} {extra}");
                o.verify().unwrap();
                assert_eq!(hits(o, &data), want);
                for (item, id) in ix.map().iter() {
                    assert_eq!(o.id_of(item), Some(id));
                    assert_eq!(o.map().items_of(id), ix.map().items_of(id));
                }
                assert_eq!(o.map().stats(), ix.map().stats());
                assert_eq!(o.trie().stats(), ix.trie().stats());
                // Written again, the same bytes.
                assert_eq!(o.to_bytes().unwrap(), bytes);
            }
            std::fs::remove_file(&path).ok();
        }
    }
}

#[test]
fn inserts_into_an_opened_index_equal_inserts_into_the_built_one() {
    let (data, mut ix) = index(600, 0, CollisionPolicy::AppendSuffix);
    let path = temp("ins.semid");
    ix.save(&path).unwrap();
    let mut opened = SemanticIndex::open(&path).unwrap();
    let more = Embeddings::new(&data[..50 * D], D).unwrap();
    let items: Vec<u32> = (5_000..5_050).collect();
    let a = ix.insert(&items, more, Par::Seq).unwrap();
    let b = opened.insert(&items, more, Par::Seq).unwrap();
    assert_eq!(a, b);
    assert_eq!(opened, ix);
    assert_eq!(hits(&opened, &data), hits(&ix, &data));
    // An item of the file is refused as a duplicate, and nothing changes.
    let dup = opened.insert(&[3], Embeddings::new(&data[..D], D).unwrap(), Par::Seq);
    assert!(matches!(dup, Err(Error::DuplicateItem { item: 3 })));
    assert_eq!(opened, ix);
    opened.compact().unwrap();
    assert_eq!(opened, ix);
    // Saved over the file it was opened from (a new file renamed into
    // place: the mapping keeps the old bytes), and opened again.
    opened.save(&path).unwrap();
    assert_eq!(opened, ix);
    assert_eq!(SemanticIndex::open(&path).unwrap(), ix);
    std::fs::remove_file(&path).ok();
}

/// Byte ranges of the trie's structure sections and of the rest, read off
/// the layout: sections follow the directory at multiples of 64.
fn flip_everywhere(bytes: &[u8], stride: usize, mut f: impl FnMut(usize, &[u8])) {
    for pos in (0..bytes.len()).step_by(stride) {
        let mut b = bytes.to_vec();
        b[pos] ^= 0x10;
        f(pos, &b);
    }
}

#[test]
fn damage_is_refused_by_the_full_check_and_never_panics_under_the_structure_check() {
    let (data, ix) = index(500, 80, CollisionPolicy::AppendSuffix);
    let bytes = ix.to_bytes().unwrap();
    let n = bytes.len();
    for cut in (0..n).step_by(13).chain(n - 70..n) {
        for check in [Check::Structure, Check::Full] {
            assert!(
                matches!(
                    SemanticIndex::from_bytes_with(&bytes[..cut], check),
                    Err(Error::Format(_))
                ),
                "truncated to {cut}"
            );
        }
    }
    let q = Embeddings::new(&data[..10 * D], D).unwrap();
    let (mut accepted, mut refused) = (0, 0);
    flip_everywhere(&bytes, 7, |pos, b| {
        assert!(
            matches!(
                SemanticIndex::from_bytes_with(b, Check::Full),
                Err(Error::Format(_))
            ),
            "flip at {pos} passed the full check"
        );
        match SemanticIndex::from_bytes_with(b, Check::Structure) {
            Err(Error::Format(_)) => refused += 1,
            Err(e) => panic!("flip at {pos}: {e:?}"),
            Ok(o) => {
                accepted += 1;
                // Whatever the damage, every read answers without a panic,
                // and verify() finds it or the index is sound.
                let _ = o.search_embeddings(q, &mut BeamSearch::new(4, 3).unwrap());
                for item in (0..600).chain(10_000..10_100) {
                    if let Some(id) = o.id_of(item) {
                        let _ = o.map().items_of(id);
                        for (t, v) in id.iter().zip(o.map().codebook_sizes()) {
                            assert!((*t as usize) < v);
                        }
                    }
                }
                let _ = o.map().iter().count();
                let _ = o.map().iter_sorted().count();
                let mut o = o;
                let ins = o.insert(&[99_999], Embeddings::new(&data[..D], D).unwrap(), Par::Seq);
                if o.verify().is_ok() {
                    assert!(ins.is_ok());
                } else {
                    assert!(ins.is_err(), "flip at {pos}: insert into a damaged map");
                }
            }
        }
    });
    // The header, the directory and the trie's structure are checked when
    // opening; the map's arrays and the trie's items are not.
    assert!(
        refused > 0 && accepted > 0,
        "{refused} refused, {accepted} accepted"
    );
}

#[test]
fn the_structure_check_refuses_damage_to_what_searches_walk() {
    let (_, ix) = index(500, 0, CollisionPolicy::AppendSuffix);
    let bytes = ix.to_bytes().unwrap();
    let whole = SemanticIndex::from_bytes_with(&bytes, Check::Structure).unwrap();
    // The trie's item list is the last section; its structure (tokens and
    // offsets) lies just before it. Every flip from the header up to the
    // items (but for the map's arrays, which come first) is refused.
    let items_bytes = ix.len() * 4;
    let end = bytes.len() - items_bytes;
    let map_end = {
        // The map's arrays: items (4 B), IDs (2 B × id_len), order (4 B),
        // each aligned to 64; they follow the directory.
        let dir_len = u64::from_le_bytes(bytes[32..40].try_into().unwrap()) as usize;
        let mut at = (40 + dir_len).div_ceil(64) * 64;
        for size in [4, 2 * ix.map().id_len(), 4] {
            at = (at + ix.len() * size).div_ceil(64) * 64;
        }
        at
    };
    let dir_end = 40 + u64::from_le_bytes(bytes[32..40].try_into().unwrap()) as usize;
    for pos in (0..dir_end).chain(map_end..end) {
        let mut b = bytes.clone();
        b[pos] ^= 0x04;
        if let Ok(o) = SemanticIndex::from_bytes_with(&b, Check::Structure) {
            // Padding between sections is not read by this check.
            assert_eq!(
                o.trie(),
                whole.trie(),
                "flip at {pos} changed the trie unseen"
            );
        }
    }
}

/// Golden files: a version-1 index (bincode: the quantizer's and the
/// map's files; made with the framing tests/index.rs checks against
/// docs/FORMAT.md) and a version-3 one, both of one small index built
/// here. Version 1 still loads and opens; version 3 is written byte for
/// byte as kept. `SEMID_BLESS=1` writes them anew.
#[test]
fn golden_index_files_load_forever() {
    use semid::format::ModelKind;
    let (_, ix) = index(40, 5, CollisionPolicy::AppendSuffix);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut p = Vec::new();
    for part in [
        ix.quantizer().to_bytes().unwrap(),
        ix.map().to_bytes().unwrap(),
    ] {
        p.extend_from_slice(&(part.len() as u64).to_le_bytes());
        p.extend_from_slice(&part);
    }
    let v1 = common::frame(ModelKind::SemanticIndex, &p);
    let v3 = ix.to_bytes().unwrap();
    if std::env::var_os("SEMID_BLESS").is_some() {
        std::fs::write(dir.join("index_v1.semid"), &v1).unwrap();
        std::fs::write(dir.join("index_v3.semid"), &v3).unwrap();
    }
    assert_eq!(std::fs::read(dir.join("index_v1.semid")).unwrap(), v1);
    assert_eq!(std::fs::read(dir.join("index_v3.semid")).unwrap(), v3);
    for name in ["index_v1.semid", "index_v3.semid"] {
        let path = dir.join(name);
        assert_eq!(SemanticIndex::load(&path).unwrap(), ix, "{name}");
        assert_eq!(SemanticIndex::open(&path).unwrap(), ix, "{name}");
        let v = semid::format::inspect(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(v.kind, ModelKind::SemanticIndex);
    }
    assert!(matches!(
        SemanticIndex::open(temp("missing.semid")),
        Err(Error::Io { .. })
    ));
    // An empty file, and a directory, are refused with a typed error.
    let empty = temp("empty.semid");
    std::fs::write(&empty, b"").unwrap();
    assert!(SemanticIndex::open(&empty).is_err());
    std::fs::remove_file(&empty).ok();
    assert!(SemanticIndex::open(std::env::temp_dir()).is_err());
    assert!(matches!(
        SemanticIndex::from_bytes_with(&v3[..40], Check::Structure),
        Err(Error::Format(FormatError::Truncated { .. }))
    ));
}
