//! After a warm-up call, a codebook-scored index search allocates nothing:
//! the scorer borrows the `BeamSearch`'s spare buffers and gives them back.
//! Counted with a global allocator (this file holds one test so nothing
//! else allocates meanwhile).

use std::sync::atomic::Ordering::SeqCst;

use half::f16;
use semid::decode::BeamSearch;
use semid::hits::Hits;
use semid::sid::CollisionPolicy;
use semid::synthetic::{MixtureConfig, hierarchical_mixture};
use semid::{Embeddings, Par, RqKMeans, RqKMeansConfig, SemanticIndex};

#[path = "../examples/common/counting.rs"]
mod counting;
use counting::ALLOCS;

#[global_allocator]
static GLOBAL: counting::Counting = counting::Counting;

#[test]
fn embedding_search_does_not_allocate_after_warm_up() {
    let d = 16;
    let cfg = MixtureConfig {
        n: 4_000,
        dim: d,
        ..Default::default()
    };
    let data = hierarchical_mixture(&cfg);
    let x = Embeddings::new(&data, d).unwrap();
    let (index, _, _) = SemanticIndex::fit::<RqKMeans>(
        &RqKMeansConfig::new(3, 16).seed(3),
        x,
        CollisionPolicy::AppendSuffix,
        Par::Seq,
    )
    .unwrap();
    let half: Vec<f16> = data.iter().map(|&v| f16::from_f32(v)).collect();
    let mut bs = BeamSearch::new(20, 10).unwrap();
    let mut hits = Hits::new();
    // Warm-up: one f32 batch and one f16 batch (which is converted) of 32
    // queries.
    let batch = |i: usize| i * 32..(i + 1) * 32;
    let f32_batch = |i: usize| Embeddings::new(&data[batch(i).start * d..batch(i).end * d], d);
    let f16_batch = |i: usize| Embeddings::from_f16(&half[batch(i).start * d..batch(i).end * d], d);
    index
        .search_embeddings_into(f32_batch(0).unwrap(), &mut bs, &mut hits)
        .unwrap();
    index
        .search_embeddings_into(f16_batch(0).unwrap(), &mut bs, &mut hits)
        .unwrap();
    let (a, b) = (f32_batch(1).unwrap(), f16_batch(2).unwrap());
    let before = ALLOCS.load(SeqCst);
    for _ in 0..5 {
        index.search_embeddings_into(a, &mut bs, &mut hits).unwrap();
        index.search_embeddings_into(b, &mut bs, &mut hits).unwrap();
    }
    let during = ALLOCS.load(SeqCst) - before;
    assert_eq!(
        during, 0,
        "embedding search allocated {during} times after warm-up"
    );
    // The searches found things: every query of the last (f16) batch has
    // 10 hits, and an item retrieved by its own embedding is among them.
    assert!((0..32).all(|q| hits.query(q).items.len() == 10));
    index.search_embeddings_into(a, &mut bs, &mut hits).unwrap();
    let own = (0..32).filter(|&q| hits.query(q).items.contains(&(32 + q as u32)));
    assert!(own.count() >= 24, "items rarely find themselves");
}
