//! After a warm-up call, beam search allocates nothing: counted with a
//! global allocator (this file holds one test so nothing else allocates
//! meanwhile).

use std::sync::atomic::Ordering::SeqCst;

use semid::decode::{BeamSearch, TableScorer};
use semid::hits::Hits;
use semid::sid::Trie;

#[path = "../examples/common/counting.rs"]
mod counting;
use counting::ALLOCS;

#[global_allocator]
static GLOBAL: counting::Counting = counting::Counting;

#[test]
fn search_does_not_allocate_after_warm_up() {
    // 20k random 3-token IDs over 64 tokens, 16 queries, beam 20.
    let mut s = 12345u64;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let ids: Vec<u16> = (0..20_000 * 3).map(|_| (next() % 64) as u16).collect();
    let trie = Trie::from_ids(&ids, 3, &[64, 64, 64]).unwrap();
    let table: Vec<f32> = (0..16 * 192)
        .map(|_| (next() % 1000) as f32 / 100.0)
        .collect();
    let mut scorer = TableScorer::new(16, &[64, 64, 64], table).unwrap();
    let mut bs = BeamSearch::new(20, 10).unwrap();
    let mut hits = Hits::new();
    bs.search_into(&trie, &mut scorer, 16, &mut hits).unwrap();
    let before = ALLOCS.load(SeqCst);
    for _ in 0..5 {
        bs.search_into(&trie, &mut scorer, 16, &mut hits).unwrap();
    }
    let during = ALLOCS.load(SeqCst) - before;
    assert_eq!(
        during, 0,
        "beam search allocated {during} times after warm-up"
    );
    assert_eq!(hits.n_queries(), 16);
    assert!((0..16).all(|q| hits.query(q).items.len() == 10));
}
