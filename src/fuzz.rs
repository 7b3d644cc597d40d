//! The fuzz targets' bodies (feature `fuzz`; not part of the API).
//!
//! The targets in `fuzz/` call these, and `tests/fuzz_regressions.rs`
//! replays saved inputs through exactly the same code:
//! `cargo test --features fuzz --test fuzz_regressions`.

use crate::format::{ModelFile, ModelKind, frame};

/// The `model_file` fuzz target: the first byte picks a kind, the rest
/// is framed as its payload; the raw bytes are tried too. Must never
/// panic.
pub fn model_file(data: &[u8]) {
    use crate::Quantizer;
    let Some((&sel, payload)) = data.split_first() else {
        return;
    };
    // The high bit frames the payload as format version 2 (Sinkhorn maps).
    let version = if sel & 0x80 != 0 { 2 } else { 1 };
    let kind = match (sel & 0x7f) % 7 {
        0 => ModelKind::KMeans,
        1 => ModelKind::RqKMeans,
        2 => ModelKind::SidMap,
        3 => ModelKind::Trie,
        4 => ModelKind::RqVae,
        5 => ModelKind::FsqAutoencoder,
        _ => ModelKind::ProductQuantizer,
    };
    let framed = crate::format::frame_version(kind, version, payload);
    if let Ok(m) = crate::KMeans::from_bytes(&framed) {
        let _ = m.codebook_sizes();
    }
    if let Ok(m) = crate::RqKMeans::from_bytes(&framed) {
        let _ = m.codebook_sizes();
    }
    if let Ok(m) = crate::sid::SidMap::from_bytes(&framed) {
        let _ = m.stats();
        if let Ok(t) = crate::sid::Trie::build(&m) {
            walk_all(&t);
        }
    }
    if let Ok(t) = crate::sid::Trie::from_bytes(&framed) {
        assert!(t.validate().is_ok());
        walk_all(&t);
    }
    if let Ok(m) = crate::quantize::RqVae::from_bytes(&framed) {
        let _ = m.codebook_sizes();
    }
    if let Ok(m) = crate::quantize::FsqAutoencoder::from_bytes(&framed) {
        // Finite but huge weights may overflow: errors are fine, panics
        // are not.
        let x = vec![0.5f32; m.dim()];
        if let Ok(e) = crate::Embeddings::new(&x, m.dim())
            && let Ok(codes) = m.encode(e)
        {
            let _ = m.decode(&codes);
        }
    }
    if let Ok(m) = crate::quantize::ProductQuantizer::from_bytes(&framed) {
        let x = vec![0.5f32; m.dim()];
        if let Ok(e) = crate::Embeddings::new(&x, m.dim())
            && let Ok(codes) = m.encode(e)
        {
            let _ = m.decode(&codes);
        }
    }
    let _ = crate::RqKMeans::from_bytes(data);
    let _ = crate::KMeans::from_bytes(data);
    let _ = crate::sid::Trie::from_bytes(data);
}

/// The `index_file` fuzz target: the first byte picks one of the kinds
/// added with the [`SemanticIndex`](crate::SemanticIndex) (`Fsq`,
/// `ResidualFsq`, `SemanticIndex`), the rest is framed as its payload; the
/// raw bytes are read as every quantizer kind ([`AnyQuantizer`]) and as an
/// index. A `SemanticIndex` payload is two inner files; with the second
/// byte odd the fuzzer's bytes are split in two and each half framed as a
/// quantizer or a map, so it reaches the inner checks. With the first
/// byte's high bit set, the rest edits a valid file of format version 3
/// instead (see `laid_out_index`). Must never panic.
///
/// [`AnyQuantizer`]: crate::quantize::AnyQuantizer
pub fn index_file(data: &[u8]) {
    use crate::Quantizer;
    use crate::SemanticIndex;
    use crate::quantize::{AnyQuantizer, Fsq, ResidualFsq};
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    if sel & 0x80 != 0 {
        laid_out_index(rest);
        return;
    }
    let framed = match sel % 3 {
        0 => frame(ModelKind::Fsq, rest),
        1 => frame(ModelKind::ResidualFsq, rest),
        _ => match rest.split_first() {
            Some((&how, body)) if how % 2 == 1 => {
                let (a, b) = body.split_at(body.len() / 2);
                let qk =
                    [ModelKind::RqKMeans, ModelKind::KMeans, ModelKind::Fsq][how as usize / 2 % 3];
                let (qa, mb) = (frame(qk, a), frame(ModelKind::SidMap, b));
                let mut p = Vec::new();
                for part in [&qa, &mb] {
                    p.extend_from_slice(&(part.len() as u64).to_le_bytes());
                    p.extend_from_slice(part);
                }
                frame(ModelKind::SemanticIndex, &p)
            }
            _ => frame(ModelKind::SemanticIndex, rest),
        },
    };
    if let Ok(f) = Fsq::from_bytes(&framed) {
        let _ = f.codebook_sizes();
    }
    if let Ok(r) = ResidualFsq::from_bytes(&framed) {
        let x = vec![0.25f32; Quantizer::dim(&r)];
        if let Ok(e) = crate::Embeddings::new(&x, Quantizer::dim(&r))
            && let Ok(codes) = r.encode(e)
        {
            let _ = r.decode(&codes);
        }
    }
    if let Ok(ix) = SemanticIndex::from_bytes(&framed) {
        assert!(ix.trie().validate().is_ok());
        walk_all(ix.trie());
        let back = SemanticIndex::from_bytes(&ix.to_bytes().expect("encode"));
        assert!(back.is_ok_and(|b| b == ix), "an index must round-trip");
    }
    let _ = AnyQuantizer::from_bytes(data);
    let _ = SemanticIndex::from_bytes(data);
}

/// The `npy` fuzz target: arbitrary bytes as a `.npy` file, with and
/// without 2-byte voids read as bfloat16. A result must hold
/// `rows × dim` values. Must never panic or allocate beyond the input.
pub fn npy(data: &[u8]) {
    for void2 in [crate::npy::Void2::Refuse, crate::npy::Void2::Bf16] {
        if let Ok((v, dim)) = crate::npy::parse(data, void2) {
            assert!(dim > 0 && v.len() % dim == 0);
        }
    }
}

/// Format version 3 (high bit of the first byte): a valid laid-out index
/// file, edited by the fuzzer's bytes, opened under both checks, then
/// searched, looked up and grown. Byte 0: bit 0 picks the full check,
/// bit 1 truncates to the length in bytes 1–2, bit 2 picks the index with
/// shared IDs; then triples `(offset u16 LE, xor)` edit the file. A file
/// either check accepts must answer every call without a panic; one the
/// full check accepts must also verify and round-trip.
fn laid_out_index(data: &[u8]) {
    use crate::{Check, SemanticIndex};
    let mut b = Bytes(data);
    let how = b.u8();
    let mut file = laid_out_seed(how & 4 != 0).to_vec();
    if how & 2 != 0 {
        let cut = b.u16() as usize;
        file.truncate(cut % (file.len() + 1));
    }
    while b.0.len() >= 3 {
        let at = b.u16() as usize;
        let x = b.u8();
        if !file.is_empty() {
            let n = file.len();
            file[at % n] ^= x;
        }
    }
    let full = how & 1 != 0;
    let check = if full { Check::Full } else { Check::Structure };
    let Ok(mut ix) = SemanticIndex::from_bytes_with(&file, check) else {
        return;
    };
    walk_all(ix.trie());
    let q = [0.25f32; 4];
    if let Ok(e) = crate::Embeddings::new(&q, 2) {
        let _ = ix.search_embeddings(e, &mut crate::BeamSearch::new(4, 3).expect("beam"));
    }
    for item in (0..64).chain(1000..1016) {
        if let Some(id) = ix.id_of(item) {
            let _ = ix.map().items_of(id);
            let sizes = ix.map().codebook_sizes();
            assert!(id.iter().zip(&sizes).all(|(&t, &v)| (t as usize) < v));
        }
    }
    let _ = ix.map().iter().count() + ix.map().iter_sorted().count();
    let verified = ix.verify().is_ok();
    if full {
        assert!(verified, "a fully checked index must verify");
        let back = SemanticIndex::from_bytes(&ix.to_bytes().expect("encode"));
        assert!(back.is_ok_and(|b| b == ix), "an index must round-trip");
    }
    let codes = crate::Codes::new(vec![1, 2], 2).expect("codes");
    let ins = ix.insert_codes(&[5_000], &codes);
    assert!(
        !verified || ins.is_ok(),
        "insert into a sound index: {ins:?}"
    );
    assert!(verified || ins.is_err(), "insert into a damaged index");
}

/// A small valid version-3 index file (2 levels × 8 codes, 2-D), built
/// once: items 0..48 and 1000..1010 (a sorted lookup table), with a suffix
/// or, for `shared`, shared IDs (leaf item ranges).
fn laid_out_seed(shared: bool) -> &'static [u8] {
    use std::sync::OnceLock;
    static FILES: OnceLock<[Vec<u8>; 2]> = OnceLock::new();
    let files = FILES.get_or_init(|| {
        let make = |policy| {
            let books: Vec<f32> = (0..2 * 8 * 2).map(|i| (i % 7) as f32 * 0.3 - 1.0).collect();
            let rq = crate::RqKMeans::from_codebooks(books, 2, 2).expect("codebooks");
            let codes: Vec<u16> = (0..48u16).flat_map(|i| [i % 5, i * 3 % 8]).collect();
            let codes = crate::Codes::new(codes, 2).expect("codes");
            let (mut ix, _) = crate::SemanticIndex::from_codes(rq, &codes, policy).expect("index");
            let more =
                crate::Codes::new((0..10u16).flat_map(|i| [i % 3, 7]).collect(), 2).expect("codes");
            let items: Vec<u32> = (1000..1010).rev().collect();
            ix.insert_codes(&items, &more).expect("insert");
            ix.to_bytes().expect("encode")
        };
        [
            make(crate::sid::CollisionPolicy::AppendSuffix),
            make(crate::sid::CollisionPolicy::AllowShared),
        ]
    });
    &files[usize::from(shared)]
}

/// Walks every leaf of a valid trie and pokes states around it.
fn walk_all(t: &crate::sid::Trie) {
    let mut id = vec![0u16; t.id_len()];
    for leaf in 0..t.len().min(4096) {
        t.id_of_leaf(leaf, &mut id).expect("leaf in range");
        let s = t.walk(&id).expect("every leaf's ID walks");
        assert!(!t.items(s).is_empty());
        let _ = t.allowed(crate::sid::State {
            depth: s.depth,
            node: s.node.wrapping_add(1),
        });
    }
}

/// Reads bytes as a little stream with defaults past the end.
struct Bytes<'a>(&'a [u8]);
impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
}

/// The `trie_build` fuzz target: an ID list from bytes (length 1–4,
/// small or raw vocabularies, repeats), built into a trie and a SidMap
/// and checked against a `BTreeMap`. Must never panic.
pub fn trie_build(data: &[u8]) {
    use std::collections::BTreeMap;
    let mut b = Bytes(data);
    let len = 1 + (b.u8() % 4) as usize;
    let v = b.u8();
    let vocab = if v & 0x80 != 0 {
        65_536
    } else {
        1 + (v % 32) as usize
    };
    let raw = v & 0x40 != 0;
    let mut ids = Vec::new();
    while !b.0.is_empty() && ids.len() < 4 * 4096 {
        let t = b.u16();
        ids.push(if raw { t } else { (t as usize % vocab) as u16 });
    }
    let vocabs = vec![vocab; len];
    let Ok(t) = crate::sid::Trie::from_ids(&ids, len, &vocabs) else {
        return;
    };
    assert!(t.validate().is_ok());
    let mut r: BTreeMap<&[u16], Vec<u32>> = BTreeMap::new();
    for (i, id) in ids.chunks_exact(len).enumerate() {
        r.entry(id).or_default().push(i as u32);
    }
    assert_eq!(t.len(), r.len());
    for (id, items) in &r {
        let s = t.walk(id).expect("inserted ID walks");
        assert_eq!(t.items(s), &items[..]);
    }
    walk_all(&t);
    let back = crate::sid::Trie::from_bytes(&t.to_bytes().expect("encode"));
    assert_eq!(back.expect("round trip").stats(), t.stats());
    if let Ok(codes) = crate::Codes::new(ids.clone(), len) {
        for p in [
            crate::sid::CollisionPolicy::AllowShared,
            crate::sid::CollisionPolicy::AppendSuffix,
        ] {
            if let Ok((m, _)) = crate::sid::SidMap::build(&codes, &vocabs, p) {
                let tm = crate::sid::Trie::build(&m).expect("map builds a trie");
                assert!(tm.validate().is_ok());
                let _ = crate::sid::SidMap::from_bytes(&m.to_bytes().expect("encode"))
                    .expect("map round trip");
            }
        }
    }
}

/// The `beam_search` fuzz target: IDs, beam width (0, small or huge),
/// k, batch size and arbitrary scores (NaN, ±Inf, extremes) from bytes,
/// searched under the trie and unconstrained. Must never panic; every
/// hit must be a valid ID with non-increasing scores.
pub fn beam_search(data: &[u8]) {
    use crate::decode::{BeamSearch, FnScorer, Unconstrained};
    let mut b = Bytes(data);
    let len = 1 + (b.u8() % 3) as usize;
    let vocab = 1 + (b.u8() % 8) as usize;
    let beam = match b.u8() {
        255 => 1 << 30,
        x => x as usize,
    };
    let k = (b.u8() % 65) as usize;
    let nq = (b.u8() % 4) as usize;
    let n_ids = 1 + (b.u8() % 64) as usize;
    let ids: Vec<u16> = (0..n_ids * len)
        .map(|_| (b.u8() as usize % vocab) as u16)
        .collect();
    let pool: Vec<f32> =
        b.0.iter()
            .map(|&x| match x {
                0 => f32::NAN,
                1 => f32::INFINITY,
                2 => f32::NEG_INFINITY,
                3 => f32::MAX,
                4 => -f32::MAX,
                x => (x as f32 - 128.0) / 16.0,
            })
            .collect();
    let Ok(trie) = crate::sid::Trie::from_ids(&ids, len, &vec![vocab; len]) else {
        return;
    };
    let un = Unconstrained::new(&vec![vocab; len]).expect("valid vocab");
    let mut pos = 0usize;
    let mut scorer = FnScorer(|_q: usize, _p: &[u16], out: &mut [f32]| {
        for o in out.iter_mut() {
            *o = if pool.is_empty() {
                0.0
            } else {
                pool[pos % pool.len()]
            };
            pos += 1;
        }
        Ok(())
    });
    let Ok(mut bs) = BeamSearch::new(beam, k) else {
        return;
    };
    if let Ok(h) = bs.search(&trie, &mut scorer, nq) {
        for q in 0..h.n_queries() {
            let v = h.query(q);
            for (i, id) in v.ids.chunks_exact(len).enumerate() {
                let s = trie.walk(id).expect("hits are valid IDs");
                assert!(trie.items(s).contains(&v.items[i]));
            }
            assert!(v.scores.windows(2).all(|w| w[0] >= w[1]));
            assert!(v.items.len() <= k);
        }
    }
    let _ = bs.search(&un, &mut scorer, nq);
}
