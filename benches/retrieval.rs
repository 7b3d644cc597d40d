//! Trie build and walk, constrained vs. unconstrained beam search, and
//! retrieval metrics, at the shapes of the retrieval issue's targets.
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use semid::decode::{BeamSearch, TableScorer, Unconstrained};
use semid::hits::Hits;
use semid::metrics::{EvalOptions, Metric, Qrels, Rankings, evaluate};
use semid::sid::Trie;

/// Endless seeded integers below `below` (the crate's generator, in
/// chunks).
fn stream(seed: u64, below: u32) -> impl FnMut() -> u32 {
    let (mut buf, mut at, mut round) = (Vec::new(), 0, 0);
    move || {
        if at == buf.len() {
            buf = semid::synthetic::integers(1 << 16, below, seed.wrapping_add(round));
            (at, round) = (0, round + 1);
        }
        at += 1;
        buf[at - 1]
    }
}

fn random_ids(n: usize, len: usize, vocab: u32, seed: u64) -> Vec<u16> {
    semid::synthetic::integers(n * len, vocab, seed)
        .into_iter()
        .map(|t| t as u16)
        .collect()
}

fn trie(c: &mut Criterion) {
    let n = 1_000_000;
    let ids = random_ids(n, 4, 256, 0x5eed);
    let t = Trie::from_ids(&ids, 4, &[256; 4]).unwrap();
    let s = t.stats();
    eprintln!(
        "trie 1M x 4 (256): {} IDs, structure {:.2} B/ID, items {:.2} B/ID, total {:.2} B/ID, nodes {:?}",
        s.ids,
        s.structure_bytes as f64 / n as f64,
        s.item_bytes as f64 / n as f64,
        (s.structure_bytes + s.item_bytes) as f64 / n as f64,
        s.nodes_per_depth
    );
    let mut g = c.benchmark_group("trie_1M_x4_v256");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("build", |b| {
        b.iter(|| Trie::from_ids(black_box(&ids), 4, &[256; 4]).unwrap())
    });
    // Walk 100k stored IDs: allowed() + step() at each of the 4 levels.
    let walks = 100_000;
    g.throughput(Throughput::Elements(walks as u64 * 4));
    g.bench_function("allowed_plus_step", |b| {
        b.iter(|| {
            let mut acc = 0usize;
            for id in ids[..walks * 4].chunks_exact(4) {
                let mut st = t.start();
                for &tok in id {
                    acc += t.allowed(st).len();
                    st = t.step(st, tok).unwrap();
                }
                acc += st.node as usize;
            }
            black_box(acc)
        })
    });
    // The same walks in ID order (neighbouring walks share cache lines, as
    // the beams of one query do).
    let mut sorted: Vec<&[u16]> = ids[..walks * 4].chunks_exact(4).collect();
    sorted.sort_unstable();
    g.bench_function("allowed_plus_step_sorted", |b| {
        b.iter(|| {
            let mut acc = 0usize;
            for id in &sorted {
                let mut st = t.start();
                for &tok in id.iter() {
                    acc += t.allowed(st).len();
                    st = t.step(st, tok).unwrap();
                }
                acc += st.node as usize;
            }
            black_box(acc)
        })
    });
    g.finish();
}

fn beam(c: &mut Criterion) {
    let (n, nq, beam) = (200_000, 32, 20);
    let ids = random_ids(n, 3, 256, 0xbea);
    let t = Trie::from_ids(&ids, 3, &[256; 3]).unwrap();
    let un = Unconstrained::new(&[256; 3]).unwrap();
    let table: Vec<f32> = semid::synthetic::integers(nq * 3 * 256, 10_000, 7)
        .into_iter()
        .map(|v| -(v as f32) / 1000.0)
        .collect();
    let mut scorer = TableScorer::new(nq, &[256; 3], table).unwrap();
    let mut bs = BeamSearch::new(beam, 10).unwrap();
    let mut hits = Hits::new();
    let mut g = c.benchmark_group("beam_32q_b20_3x256_200k");
    g.throughput(Throughput::Elements(nq as u64));
    g.bench_function("trie", |b| {
        b.iter(|| bs.search_into(&t, &mut scorer, nq, &mut hits).unwrap())
    });
    g.bench_function("unconstrained", |b| {
        b.iter(|| bs.search_into(&un, &mut scorer, nq, &mut hits).unwrap())
    });
    g.finish();
}

fn metrics(c: &mut Criterion) {
    let (nq, len) = (100_000, 100);
    let mut next = stream(11, 1_000_000);
    let lists: Vec<Vec<u32>> = (0..nq)
        .map(|_| {
            let mut v: Vec<u32> = (0..len).map(|_| next()).collect();
            v.sort_unstable();
            v.dedup();
            v
        })
        .collect();
    // 5 judged items per query, 2 of them usually retrieved.
    let judged: Vec<Vec<(u32, u32)>> = lists
        .iter()
        .map(|l| {
            let mut j = vec![(l[3], 2), (l[40], 1)];
            for _ in 0..3 {
                j.push((1_000_000 + next(), 1 + next() % 3));
            }
            j.sort_unstable();
            j.dedup_by_key(|p| p.0);
            j
        })
        .collect();
    let run = Rankings::from_lists(&lists);
    let qrels = Qrels::from_lists(&judged).unwrap();
    let ms: Vec<Metric> = [
        "recall@5",
        "recall@10",
        "recall@20",
        "ndcg@5",
        "ndcg@10",
        "ndcg@20",
        "mrr@10",
        "hit@10",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    let mut g = c.benchmark_group("metrics_100k_x100");
    g.sample_size(10);
    g.throughput(Throughput::Elements(nq as u64));
    for (name, par) in [
        ("1_thread", semid::Par::Seq),
        ("all_threads", semid::Par::default()),
    ] {
        let opts = EvalOptions {
            par,
            ..Default::default()
        };
        g.bench_function(name, |b| {
            b.iter(|| evaluate(black_box(&run), &qrels, &ms, &opts).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, trie, beam, metrics);
criterion_main!(benches);
