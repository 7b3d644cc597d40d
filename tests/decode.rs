//! Constrained beam search: exhaustive equivalence, validity, scorers and
//! bad input.

mod common;

use std::collections::BTreeMap;

use proptest::prelude::*;
use semid::decode::{
    BeamSearch, Beams, CodebookScorer, FnScorer, ItemLists, ScoreMetric, Scorer, TableScorer,
    Unconstrained,
};
use semid::hits::{Hits, NO_ITEM};
use semid::sid::{CollisionPolicy, SidMap, Trie};
use semid::{Embeddings, Error, Quantizer, Result, RqKMeans, RqKMeansConfig};

/// A prefix-dependent score with ties and non-finite values.
fn score_of(seed: u64, q: usize, prefix: &[u16], t: u16) -> f32 {
    let h = prefix
        .iter()
        .fold(hash_root(seed, q), |h, &p| hash_step(h, p));
    score_value(seed, hash_step(h, t))
}

/// The hash of an empty prefix of query `q`.
fn hash_root(seed: u64, q: usize) -> u64 {
    seed ^ (q as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// The hash of a prefix extended by `p`.
fn hash_step(h: u64, p: u16) -> u64 {
    let h = (h ^ p as u64).wrapping_mul(0x0100_0000_01b3);
    h ^ (h >> 29)
}

fn score_value(seed: u64, h: u64) -> f32 {
    match h % 23 {
        0 => f32::NAN,
        1 => f32::NEG_INFINITY,
        2 if seed.is_multiple_of(3) => f32::INFINITY,
        _ => ((h >> 8) % 7) as f32 * 0.5 - 1.0, // few distinct values: ties
    }
}

/// [`score_of`] as a model with a per-beam cache computes it: it keeps one
/// state per live beam (the hash of its prefix), reorders the states by
/// `Beams::parents` and extends each by the beam's last token, never
/// reading a whole prefix.
struct CachedScorer {
    seed: u64,
    states: Vec<u64>,
    /// Each beam's prefix as the cache saw it, to check that `parents`
    /// point at the beam each new prefix extends.
    seen: Vec<Vec<u16>>,
}

impl Scorer for CachedScorer {
    fn score(&mut self, beams: &Beams<'_>, out: &mut Vec<f32>) -> Result<()> {
        beams.check()?;
        let (states, seen) = if beams.level == 0 {
            let s = beams
                .queries
                .iter()
                .map(|&q| hash_root(self.seed, q as usize));
            (s.collect(), vec![Vec::new(); beams.len()])
        } else {
            let mut states = Vec::with_capacity(beams.len());
            let mut seen = Vec::with_capacity(beams.len());
            for (b, &p) in beams.parents.iter().enumerate() {
                let prefix = beams.prefix(b);
                let (last, head) = prefix.split_last().expect("level > 0");
                assert_eq!(head, &self.seen[p as usize][..], "beam {b}: wrong parent");
                states.push(hash_step(self.states[p as usize], *last));
                seen.push(prefix.to_vec());
            }
            (states, seen)
        };
        (self.states, self.seen) = (states, seen);
        for &h in &self.states {
            out.extend(
                (0..beams.codebook_size).map(|t| score_value(self.seed, hash_step(h, t as u16))),
            );
        }
        Ok(())
    }
}

/// Exhaustive reference: every ID in `ids` scored, impossible ones dropped,
/// sorted by (score desc, ID asc), expanded to items, first `k`.
fn exhaustive(
    seed: u64,
    q: usize,
    ids: &BTreeMap<Vec<u16>, Vec<u32>>,
    k: usize,
) -> Vec<(u32, f32, Vec<u16>)> {
    let mut scored = Vec::new();
    'ids: for (id, items) in ids {
        let mut total = 0.0f32;
        for l in 0..id.len() {
            total += score_of(seed, q, &id[..l], id[l]);
            if total.is_nan() || total == f32::NEG_INFINITY {
                continue 'ids;
            }
        }
        scored.push((total, id.clone(), items.clone()));
    }
    ranked(scored, k)
}

/// IDs by score (best first, ties by ID), expanded to their items, cut at k.
fn ranked(mut scored: Vec<(f32, Vec<u16>, Vec<u32>)>, k: usize) -> Vec<(u32, f32, Vec<u16>)> {
    scored.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap().then(a.1.cmp(&b.1)));
    let mut out = Vec::new();
    for (s, id, items) in scored {
        for it in items {
            out.push((it, s, id.clone()));
        }
    }
    out.truncate(k);
    out
}

fn flatten(h: &Hits, q: usize) -> Vec<(u32, f32, Vec<u16>)> {
    let v = h.query(q);
    let len = h.id_len();
    (0..v.items.len())
        .map(|i| {
            (
                v.items[i],
                v.scores[i],
                v.ids[i * len..(i + 1) * len].to_vec(),
            )
        })
        .collect()
}

fn same(a: &[(u32, f32, Vec<u16>)], b: &[(u32, f32, Vec<u16>)]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.0 == y.0 && x.1.to_bits() == y.1.to_bits() && x.2 == y.2)
}

/// `log Σ exp` of the finite scores, computed as the search documents it
/// (0 when none is finite).
fn log_sum_exp(scores: &[f32]) -> f32 {
    let finite: Vec<f32> = scores.iter().copied().filter(|s| s.is_finite()).collect();
    let max = finite.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return 0.0;
    }
    let sum: f64 = finite.iter().map(|&s| f64::from(s - max).exp()).sum();
    max + sum.ln() as f32
}

/// [`exhaustive`] with each level's scores renormalised over the tokens
/// that continue some ID of `ids` ([`BeamSearch::renormalize`]).
fn exhaustive_renormalized(
    seed: u64,
    q: usize,
    ids: &BTreeMap<Vec<u16>, Vec<u32>>,
    k: usize,
) -> Vec<(u32, f32, Vec<u16>)> {
    let mut scored = Vec::new();
    'ids: for (id, items) in ids {
        let mut total = 0.0f32;
        for l in 0..id.len() {
            let mut children: Vec<u16> = ids
                .keys()
                .filter(|o| o[..l] == id[..l])
                .map(|o| o[l])
                .collect();
            children.dedup();
            let allowed: Vec<f32> = children
                .iter()
                .map(|&t| score_of(seed, q, &id[..l], t))
                .collect();
            total = (total - log_sum_exp(&allowed)) + score_of(seed, q, &id[..l], id[l]);
            if total.is_nan() || total == f32::NEG_INFINITY {
                continue 'ids;
            }
        }
        scored.push((total, id.clone(), items.clone()));
    }
    ranked(scored, k)
}

/// The trie of the IDs in `raw` (cut into `len`-token rows, tokens mod
/// `vocab`; row i is item i) and each ID's items.
fn trie_of(len: usize, vocab: usize, raw: &[u16]) -> (Trie, BTreeMap<Vec<u16>, Vec<u32>>) {
    let n = raw.len() / len;
    let ids: Vec<u16> = raw[..n * len].iter().map(|&t| t % vocab as u16).collect();
    let trie = Trie::from_ids(&ids, len, &vec![vocab; len]).unwrap();
    let mut r: BTreeMap<Vec<u16>, Vec<u32>> = BTreeMap::new();
    for (i, id) in ids.chunks_exact(len).enumerate() {
        r.entry(id.to_vec()).or_default().push(i as u32);
    }
    (trie, r)
}

/// A scorer giving `score_of(seed, ..)` to every token.
fn seeded_scorer(seed: u64) -> impl Scorer {
    FnScorer(move |q: usize, p: &[u16], out: &mut [f32]| -> Result<()> {
        for (t, o) in out.iter_mut().enumerate() {
            *o = score_of(seed, q, p, t as u16);
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn renormalized_wide_beam_equals_exhaustive_scoring(
        len in 1usize..4,
        vocab in 1usize..6,
        raw in proptest::collection::vec(0u16..6, 1..120),
        seed in any::<u64>(),
        k in 1usize..40,
    ) {
        prop_assume!(raw.len() >= len);
        let (trie, r) = trie_of(len, vocab, &raw);
        let mut scorer = seeded_scorer(seed);
        let mut bs = BeamSearch::new(r.len(), k).unwrap().renormalize(true);
        prop_assert!(bs.renormalizes());
        let hits = bs.search(&trie, &mut scorer, 2).unwrap();
        for q in 0..2 {
            let want = exhaustive_renormalized(seed, q, &r, k);
            let got = flatten(&hits, q);
            prop_assert!(same(&got, &want), "q{}: got {:?} want {:?}", q, got, want);
        }
    }

    #[test]
    fn wide_beam_equals_exhaustive_scoring(
        len in 1usize..4,
        vocab in 1usize..6,
        raw in proptest::collection::vec(0u16..6, 1..120),
        seed in any::<u64>(),
        k in 1usize..40,
        queries in 1usize..4,
    ) {
        prop_assume!(raw.len() >= len);
        let (trie, r) = trie_of(len, vocab, &raw);
        let mut scorer = seeded_scorer(seed);
        let mut bs = BeamSearch::new(r.len(), k).unwrap();
        let hits = bs.search(&trie, &mut scorer, queries).unwrap();
        prop_assert_eq!(hits.n_queries(), queries);
        for q in 0..queries {
            let want = exhaustive(seed, q, &r, k);
            let got = flatten(&hits, q);
            prop_assert!(same(&got, &want), "q{}: got {:?} want {:?}", q, got, want);
        }
        // Narrow beams: fewer hits maybe, but every one is a valid ID with
        // its own item, and scores do not increase.
        let mut narrow = BeamSearch::new(2, k).unwrap();
        let h2 = narrow.search(&trie, &mut scorer, queries).unwrap();
        for q in 0..queries {
            let v = h2.query(q);
            for i in 0..v.items.len() {
                let id = &v.ids[i * len..(i + 1) * len];
                prop_assert!(r[id].contains(&v.items[i]));
            }
            prop_assert!(v.scores.windows(2).all(|w| w[0] >= w[1]));
        }
        // Unconstrained with a beam covering every sequence is exhaustive
        // over all vocab^len sequences.
        let all = vocab.pow(len as u32);
        let mut every: BTreeMap<Vec<u16>, Vec<u32>> = BTreeMap::new();
        for i in 0..all {
            let mut id = vec![0u16; len];
            let mut x = i;
            for p in (0..len).rev() {
                id[p] = (x % vocab) as u16;
                x /= vocab;
            }
            every.insert(id, vec![NO_ITEM]);
        }
        let un = Unconstrained::new(&vec![vocab; len]).unwrap();
        let mut bu = BeamSearch::new(all, k).unwrap();
        let hu = bu.search(&un, &mut scorer, queries).unwrap();
        for q in 0..queries {
            prop_assert!(same(&flatten(&hu, q), &exhaustive(seed, q, &every, k)));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A scorer that keeps per-beam state and follows `Beams::parents`
    /// decodes exactly what the stateless scorer decodes, at any beam width.
    #[test]
    fn cached_scorer_equals_stateless_scorer(
        len in 1usize..5,
        vocab in 1usize..8,
        raw in proptest::collection::vec(0u16..8, 1..200),
        seed in any::<u64>(),
        beam in 1usize..6,
        queries in 1usize..4,
    ) {
        let n = raw.len() / len;
        prop_assume!(n > 0);
        let ids: Vec<u16> = raw[..n * len].iter().map(|&t| t % vocab as u16).collect();
        let trie = Trie::from_ids(&ids, len, &vec![vocab; len]).unwrap();
        let mut stateless = FnScorer(|q: usize, p: &[u16], out: &mut [f32]| -> Result<()> {
            for (t, o) in out.iter_mut().enumerate() {
                *o = score_of(seed, q, p, t as u16);
            }
            Ok(())
        });
        let mut cached = CachedScorer { seed, states: Vec::new(), seen: Vec::new() };
        let mut bs = BeamSearch::new(beam, 10).unwrap();
        let a = bs.search(&trie, &mut stateless, queries).unwrap();
        let b = bs.search(&trie, &mut cached, queries).unwrap();
        for q in 0..queries {
            prop_assert!(same(&flatten(&a, q), &flatten(&b, q)), "q{}", q);
        }
    }
}

fn small_trie() -> Trie {
    Trie::from_ids(&[0, 1, 1, 0, 1, 1, 2, 2], 2, &[3, 3]).unwrap()
}

#[test]
fn bad_input_is_a_typed_error() {
    assert!(matches!(
        BeamSearch::new(0, 5),
        Err(Error::InvalidConfig { field: "beam", .. })
    ));
    assert!(matches!(
        BeamSearch::new(5, 0),
        Err(Error::InvalidConfig { field: "k", .. })
    ));
    let trie = small_trie();
    let mut table = TableScorer::new(1, &[3, 3], vec![0.0; 6]).unwrap();
    let mut bs = BeamSearch::new(4, 4).unwrap();
    assert!(matches!(
        bs.search(&trie, &mut table, 0),
        Err(Error::Empty { .. })
    ));
    // A table for another number of queries.
    assert!(matches!(
        bs.search(&trie, &mut table, 2),
        Err(Error::Shape { .. })
    ));
    // Scorers writing too few or too many scores.
    struct Wrong(usize);
    impl Scorer for Wrong {
        fn score(&mut self, b: &Beams<'_>, out: &mut Vec<f32>) -> Result<()> {
            out.resize(b.len() * b.codebook_size + self.0 - 1, 0.0);
            Ok(())
        }
    }
    for extra in [0, 2] {
        let e = bs.search(&trie, &mut Wrong(extra), 1).unwrap_err();
        assert!(matches!(e, Error::Shape { .. }), "{e}");
    }
    // A scorer error propagates.
    let mut failing = FnScorer(|_: usize, _: &[u16], _: &mut [f32]| -> Result<()> {
        Err(Error::Empty { what: "model" })
    });
    assert!(bs.search(&trie, &mut failing, 1).is_err());
    // Hand-made beams that disagree with themselves: errors, not panics.
    let mut out = Vec::new();
    let bad_query = Beams {
        level: 1,
        codebook_size: 3,
        n_queries: 1,
        prefixes: &[0],
        queries: &[5],
        parents: &[0],
    };
    assert!(matches!(
        table.score(&bad_query, &mut out),
        Err(Error::Shape { .. })
    ));
    let short_prefix = Beams {
        level: 1,
        codebook_size: 3,
        n_queries: 1,
        prefixes: &[],
        queries: &[0],
        parents: &[0],
    };
    assert!(matches!(
        table.score(&short_prefix, &mut out),
        Err(Error::Shape { .. })
    ));
    let no_parents = Beams {
        level: 1,
        codebook_size: 3,
        n_queries: 1,
        prefixes: &[0],
        queries: &[0],
        parents: &[],
    };
    assert!(matches!(
        table.score(&no_parents, &mut out),
        Err(Error::Shape { .. })
    ));
    let mut f = FnScorer(|_: usize, _: &[u16], _: &mut [f32]| -> Result<()> { Ok(()) });
    assert!(f.score(&short_prefix, &mut out).is_err());
    // Table of the wrong length.
    assert!(TableScorer::new(1, &[3, 3], vec![0.0; 5]).is_err());
    assert!(Unconstrained::new(&[]).is_err());
    assert!(Unconstrained::new(&[0]).is_err());
}

#[test]
fn non_finite_scores_never_panic() {
    let trie = small_trie();
    for v in [f32::NAN, f32::NEG_INFINITY, f32::INFINITY, f32::MAX, -1e30] {
        let mut t = TableScorer::new(2, &[3, 3], vec![v; 12]).unwrap();
        for beam in [1, 3, 1000] {
            let mut bs = BeamSearch::new(beam, 10).unwrap();
            let h = bs.search(&trie, &mut t, 2).unwrap();
            for q in 0..2 {
                let n = h.query(q).items.len();
                if v.is_nan() || v == f32::NEG_INFINITY {
                    assert_eq!(n, 0);
                } else {
                    assert_eq!(n, beam.min(4));
                }
            }
        }
    }
    // A huge beam on a big vocabulary allocates only what is live.
    let un = Unconstrained::new(&[65_536, 2]).unwrap();
    let mut big = FnScorer(|_: usize, _: &[u16], o: &mut [f32]| -> Result<()> {
        o.fill(0.0);
        Ok(())
    });
    let mut bs = BeamSearch::new(1 << 30, 3).unwrap();
    let h = bs.search(&un, &mut big, 1).unwrap();
    assert_eq!(h.query(0).ids, &[0, 0, 0, 1, 1, 0]);
}

#[test]
fn results_are_reused_and_deterministic() {
    let trie = small_trie();
    let table: Vec<f32> = (0..18).map(|i| ((i * 7) % 5) as f32).collect();
    let mut t = TableScorer::new(3, &[3, 3], table).unwrap();
    let mut bs = BeamSearch::new(2, 2).unwrap();
    let a = bs.search(&trie, &mut t, 3).unwrap();
    let mut b = Hits::new();
    bs.search_into(&trie, &mut t, 3, &mut b).unwrap();
    bs.search_into(&trie, &mut t, 3, &mut b).unwrap();
    assert_eq!(a, b);
}

#[test]
fn codebook_scorer_ranks_by_reconstruction_distance() {
    let data = common::mixture(3000, 16, 4);
    let x = Embeddings::new(&data, 16).unwrap();
    let (rq, _) = RqKMeans::fit(&RqKMeansConfig::new(2, 16).seed(2), x).unwrap();
    let codes = rq.encode(x).unwrap();
    let (map, _) =
        SidMap::build(&codes, &rq.codebook_sizes(), CollisionPolicy::AppendSuffix).unwrap();
    let trie = Trie::build(&map).unwrap();
    let recon = rq.decode(&codes).unwrap();
    let queries = common::mixture(20, 16, 99);
    let qe = Embeddings::new(&queries, 16).unwrap();
    let mut scorer = CodebookScorer::new(&rq, qe, ScoreMetric::L2).unwrap();
    let mut bs = BeamSearch::new(trie.len(), 5).unwrap();
    let hits = bs.search(&trie, &mut scorer, 20).unwrap();
    for q in 0..20 {
        let qv = &queries[q * 16..(q + 1) * 16];
        let dist = |i: u32| -> f32 {
            let r = &recon[i as usize * 16..(i as usize + 1) * 16];
            qv.iter().zip(r).map(|(a, b)| (a - b) * (a - b)).sum()
        };
        let best = (0..3000u32).map(dist).fold(f32::INFINITY, f32::min);
        let top = hits.query(q).items[0];
        assert!((dist(top) - best).abs() <= 1e-4 * best.max(1.0), "q{q}");
        // The score is ‖q‖² − ‖q − x̂‖².
        let qn: f32 = qv.iter().map(|v| v * v).sum();
        let s = hits.query(q).scores[0];
        assert!((s - (qn - dist(top))).abs() < 1e-3 * qn.max(1.0));
    }
    // Beam 1, unconstrained, is greedy RQ encoding of the query.
    let un = Unconstrained::new(&rq.codebook_sizes()).unwrap();
    let mut b1 = BeamSearch::new(1, 1).unwrap();
    let h = b1.search(&un, &mut scorer, 20).unwrap();
    let greedy = rq.encode(qe).unwrap();
    let agree = (0..20).filter(|&q| h.query(q).ids == greedy.row(q)).count();
    assert!(agree >= 19, "{agree}/20 agree with greedy encoding");
    // Inner product: the total is q·x̂.
    let mut ip = CodebookScorer::new(&rq, qe, ScoreMetric::InnerProduct).unwrap();
    let hi = bs.search(&trie, &mut ip, 20).unwrap();
    for q in 0..20 {
        let qv = &queries[q * 16..(q + 1) * 16];
        let dot = |i: u32| -> f32 {
            let r = &recon[i as usize * 16..(i as usize + 1) * 16];
            qv.iter().zip(r).map(|(a, b)| a * b).sum()
        };
        let best = (0..3000u32).map(dot).fold(f32::NEG_INFINITY, f32::max);
        let top = hi.query(q).items[0];
        assert!((dot(top) - best).abs() <= 1e-4 * best.abs().max(1.0));
    }
    // Wrong query dimension / NaN query.
    let bad = vec![0.0f32; 8];
    assert!(CodebookScorer::new(&rq, Embeddings::new(&bad, 8).unwrap(), ScoreMetric::L2).is_err());
    let mut nanq = queries[..16].to_vec();
    nanq[3] = f32::NAN;
    assert!(matches!(
        CodebookScorer::new(&rq, Embeddings::new(&nanq, 16).unwrap(), ScoreMetric::L2),
        Err(Error::NonFinite { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// A deny or allow list inside a wide search equals exhaustive scoring
    /// of the allowed items; without lists or cap the filtered path equals
    /// the plain one.
    #[test]
    fn item_filters_equal_exhaustive_scoring_of_allowed_items(
        len in 1usize..4,
        vocab in 1usize..6,
        raw in proptest::collection::vec(0u16..6, 1..120),
        seed in any::<u64>(),
        k in 1usize..40,
        picks in proptest::collection::vec(0u32..40, 0..20),
    ) {
        prop_assume!(raw.len() >= len);
        let (trie, r) = trie_of(len, vocab, &raw);
        let mut scorer = seeded_scorer(seed);
        let lists = vec![picks.clone(), picks.iter().map(|p| p / 2).collect::<Vec<_>>()];
        for deny in [true, false] {
            let f = if deny { ItemLists::deny(&lists) } else { ItemLists::allow(&lists) };
            let mut bs = BeamSearch::new(r.len(), k).unwrap();
            let hits = bs.search_filtered(&trie, &mut scorer, 2, &f).unwrap();
            for (q, list) in lists.iter().enumerate() {
                let kept: BTreeMap<Vec<u16>, Vec<u32>> = r
                    .iter()
                    .map(|(id, items)| {
                        let ok: Vec<u32> = items.iter().copied().filter(|i| list.contains(i) != deny).collect();
                        (id.clone(), ok)
                    })
                    .filter(|(_, items)| !items.is_empty())
                    .collect();
                let want = exhaustive(seed, q, &kept, k);
                let got = flatten(&hits, q);
                prop_assert!(same(&got, &want), "deny {} q{}: got {:?} want {:?}", deny, q, got, want);
            }
        }
        let everything = |_: usize, _: u32| true;
        let mut a = BeamSearch::new(3, k).unwrap();
        let plain = a.search(&trie, &mut scorer, 2).unwrap();
        let mut b = BeamSearch::new(3, k).unwrap().per_prefix(Some(1_000)).unwrap();
        let filtered = b.search_filtered(&trie, &mut scorer, 2, &everything).unwrap();
        for q in 0..2 {
            prop_assert!(same(&flatten(&plain, q), &flatten(&filtered, q)));
        }
    }

    /// With a per-prefix cap no first token has more than `cap` results,
    /// and a wide search equals greedy exhaustive selection under the cap.
    #[test]
    fn per_prefix_cap_limits_results_per_first_token(
        len in 2usize..4,
        vocab in 1usize..6,
        raw in proptest::collection::vec(0u16..6, 1..120),
        seed in any::<u64>(),
        cap in 1usize..4,
    ) {
        prop_assume!(raw.len() >= len);
        let (trie, r) = trie_of(len, vocab, &raw);
        // Unique IDs only, so results are IDs.
        prop_assume!(r.values().all(|v| v.len() == 1));
        let mut scorer = seeded_scorer(seed);
        let k = r.len().min(8);
        let mut bs = BeamSearch::new(r.len() * k, k).unwrap().per_prefix(Some(cap)).unwrap();
        let hits = bs.search(&trie, &mut scorer, 1).unwrap();
        let got = flatten(&hits, 0);
        let mut per_first: BTreeMap<u16, usize> = BTreeMap::new();
        for (_, _, id) in &got {
            *per_first.entry(id[0]).or_default() += 1;
        }
        prop_assert!(per_first.values().all(|&n| n <= cap));
        // Greedy over the exhaustive ranking.
        let mut want = Vec::new();
        let mut seen: BTreeMap<u16, usize> = BTreeMap::new();
        for hit in exhaustive(seed, 0, &r, usize::MAX) {
            let n = seen.entry(hit.2[0]).or_default();
            if *n < cap && want.len() < k {
                *n += 1;
                want.push(hit);
            }
        }
        prop_assert!(same(&got, &want), "got {:?} want {:?}", got, want);
        // A narrow capped beam still respects the cap.
        let mut narrow = BeamSearch::new(3, k).unwrap().per_prefix(Some(cap)).unwrap();
        let h = narrow.search(&trie, &mut scorer, 1).unwrap();
        let mut per: BTreeMap<u16, usize> = BTreeMap::new();
        for (_, _, id) in flatten(&h, 0) {
            *per.entry(id[0]).or_default() += 1;
        }
        prop_assert!(per.values().all(|&n| n <= cap));
    }
}

#[test]
fn item_filter_lists_must_match_the_batch() {
    let trie = small_trie();
    let mut scorer = seeded_scorer(1);
    let f = ItemLists::deny(&[vec![0u32]]);
    assert!(
        BeamSearch::new(2, 2)
            .unwrap()
            .search_filtered(&trie, &mut scorer, 2, &f)
            .is_err()
    );
    assert!(BeamSearch::new(2, 2).unwrap().per_prefix(Some(0)).is_err());
}

/// The search prefetches every beam's trie node and children before it
/// scores a level (a hint that cannot change results), and prefetching any
/// state, even one that is not in the trie, is harmless.
#[test]
fn search_prefetches_every_beam_and_bad_states_are_ignored() {
    use semid::decode::{Allowed, Constraint};
    use semid::sid::State;
    use std::cell::Cell;
    struct Counting<'a> {
        trie: &'a Trie,
        calls: Cell<(usize, usize)>,
    }
    impl Constraint for Counting<'_> {
        fn id_len(&self) -> usize {
            self.trie.id_len()
        }
        fn codebook_size(&self, level: usize) -> usize {
            self.trie.codebook_sizes()[level]
        }
        fn start(&self) -> State {
            self.trie.start()
        }
        fn allowed(&self, s: State) -> Allowed<'_> {
            Allowed::Tokens(self.trie.allowed(s))
        }
        fn child(&self, s: State, i: usize) -> State {
            self.trie.child(s, i).unwrap()
        }
        fn items(&self, s: State) -> &[u32] {
            self.trie.items(s)
        }
        fn prefetch(&self, s: State) {
            self.trie.prefetch(s);
            let (a, b) = self.calls.get();
            self.calls.set((a + 1, b));
        }
        fn prefetch_children(&self, s: State) {
            self.trie.prefetch_children(s);
            let (a, b) = self.calls.get();
            self.calls.set((a, b + 1));
        }
    }
    let ids: Vec<u16> = (0..300u16).flat_map(|i| [i % 7, i % 11, i % 13]).collect();
    let trie = Trie::from_ids(&ids, 3, &[7, 11, 13]).unwrap();
    let table: Vec<f32> = (0..2 * 31).map(|i| -((i * 37 % 17) as f32)).collect();
    let mut scorer = TableScorer::new(2, &[7, 11, 13], table).unwrap();
    let c = Counting {
        trie: &trie,
        calls: Cell::new((0, 0)),
    };
    let mut bs = BeamSearch::new(4, 3).unwrap();
    let got = bs.search(&c, &mut scorer, 2).unwrap();
    assert_eq!(got, bs.search(&trie, &mut scorer, 2).unwrap());
    // Level 0: 2 root beams; levels 1 and 2: at most 4 beams per query.
    let (a, b) = c.calls.get();
    assert_eq!(a, b);
    assert!((2 + 2..=2 + 8 + 8).contains(&a), "{a} prefetches");
    for s in [
        State { depth: 0, node: 0 },
        State { depth: 3, node: 0 },
        State {
            depth: 1,
            node: 9_999,
        },
        State { depth: 99, node: 1 },
        State {
            depth: u32::MAX,
            node: u32::MAX,
        },
    ] {
        trie.prefetch(s);
        trie.prefetch_children(s);
    }
}
