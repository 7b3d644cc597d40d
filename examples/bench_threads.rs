//! Many threads searching one `SemanticIndex` (issue 26, item 5): for each
//! thread count, `--queries` codebook-scored searches split over the
//! threads, every thread with its own `BeamSearch` and `Hits` and the index
//! shared through a `SharedIndex` (each batch loads the current version).
//! Prints one JSON line per thread count: throughput in total and per
//! thread, and the heap allocations per query after each thread's warm-up
//! batch (a counting global allocator; 0 is the goal).
//!
//! ```text
//! cargo run --release --example bench_threads -- [--items 200000] [--dim 64] [--queries 100000]
//!     [--batch 64] [--beam 20] [--k 10] [--threads 1,2] [--seed 7]
//! ```
//! The catalog is the built-in hierarchical mixture (RQ-KMeans 3 × 256
//! fitted on it, IDs with a suffix); queries are catalog rows with small
//! seeded noise.
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Barrier};
use std::time::Instant;

use semid::decode::BeamSearch;
use semid::hits::Hits;
use semid::sid::CollisionPolicy;
use semid::synthetic::{MixtureConfig, hierarchical_mixture};
use semid::{Embeddings, Par, RqKMeans, RqKMeansConfig, SemanticIndex, SharedIndex};

mod common;
use common::{Args, Flag};

#[global_allocator]
static GLOBAL: common::counting::Counting = common::counting::Counting;

const ABOUT: &str =
    "threads x codebook-scored searches on one shared index, one JSON line per thread count";

const FLAGS: &[Flag] = &[
    ("--items", true, "200000", "catalog items"),
    ("--dim", true, "64", "embedding width"),
    ("--queries", true, "100000", "queries per thread count"),
    ("--batch", true, "64", "queries per search call"),
    ("--beam", true, "20", "beam width"),
    ("--k", true, "10", "items per query"),
    ("--threads", true, "1,2", "thread counts, comma-separated"),
    ("--seed", true, "7", "seed"),
];

fn main() -> std::process::ExitCode {
    common::run("bench_threads", body)
}

fn body() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse_or_exit("bench_threads", ABOUT, FLAGS);
    let n: usize = args.num("--items")?;
    let dim: usize = args.num("--dim")?;
    let n_queries: usize = args.num("--queries")?;
    let batch: usize = args.num("--batch")?;
    let beam: usize = args.num("--beam")?;
    let k: usize = args.num("--k")?;
    let seed: u64 = args.num("--seed")?;
    let threads: Vec<usize> = args
        .num::<String>("--threads")?
        .split(',')
        .map(|t| t.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("--threads: {e}"))?;
    if batch == 0 || threads.contains(&0) {
        return Err("--batch and every --threads value must be at least 1".into());
    }
    let cfg = MixtureConfig {
        n,
        dim,
        seed,
        ..Default::default()
    };
    let data = hierarchical_mixture(&cfg);
    let x = Embeddings::new(&data, dim)?;
    let t = Instant::now();
    let (index, _, ids) = SemanticIndex::fit::<RqKMeans>(
        &RqKMeansConfig::new(3, 256).seed(seed),
        x,
        CollisionPolicy::AppendSuffix,
        Par::default(),
    )?;
    eprintln!(
        "index: {n} items x {dim}, RQ-KMeans 3 x 256 + suffix (largest bucket {}), built in {:.1} s",
        ids.max_bucket,
        t.elapsed().as_secs_f64()
    );
    // Queries: catalog rows plus small noise, from a seeded stream.
    let noise = semid::synthetic::integers(n_queries * dim, 1 << 16, seed ^ 0x5eed);
    let rows = semid::synthetic::integers(n_queries, n as u32, seed ^ 0xa11);
    let mut queries = Vec::with_capacity(n_queries * dim);
    for (q, &r) in rows.iter().enumerate() {
        let src = &data[r as usize * dim..(r as usize + 1) * dim];
        for (j, &v) in src.iter().enumerate() {
            let e = noise[q * dim + j] as f32 / 65_536.0 - 0.5;
            queries.push(v + 0.02 * e);
        }
    }
    let shared = Arc::new(SharedIndex::new(index));
    let queries = Arc::new(queries);
    let cpu = common::cpu_model();
    for &t in &threads {
        let per = n_queries.div_ceil(t);
        let start = Arc::new(Barrier::new(t + 1));
        let done = Arc::new(Barrier::new(t + 1));
        let workers: Vec<_> = (0..t)
            .map(|w| {
                let (shared, queries) = (Arc::clone(&shared), Arc::clone(&queries));
                let (start, done) = (Arc::clone(&start), Arc::clone(&done));
                std::thread::spawn(move || -> Result<usize, semid::Error> {
                    let mut bs = BeamSearch::new(beam, k)?;
                    let mut hits = Hits::new();
                    let lo = (w * per).min(n_queries);
                    let hi = ((w + 1) * per).min(n_queries);
                    // Warm-up: one batch, outside the clock.
                    let warm_hi = (lo + batch).min(hi);
                    if warm_hi > lo {
                        let q = Embeddings::new(&queries[lo * dim..warm_hi * dim], dim)?;
                        shared
                            .load()
                            .search_embeddings_into(q, &mut bs, &mut hits)?;
                    }
                    start.wait();
                    let mut found = 0;
                    for b0 in (lo..hi).step_by(batch) {
                        let b1 = (b0 + batch).min(hi);
                        let q = Embeddings::new(&queries[b0 * dim..b1 * dim], dim)?;
                        shared
                            .load()
                            .search_embeddings_into(q, &mut bs, &mut hits)?;
                        found += (0..b1 - b0)
                            .map(|i| hits.query(i).items.len())
                            .sum::<usize>();
                    }
                    done.wait();
                    Ok(found)
                })
            })
            .collect();
        start.wait();
        let before = common::counting::ALLOCS.load(Relaxed);
        let clock = Instant::now();
        done.wait();
        let secs = clock.elapsed().as_secs_f64();
        let timed_allocs = common::counting::ALLOCS.load(Relaxed) - before;
        let mut found = 0;
        for h in workers {
            found += h.join().map_err(|_| "a search thread panicked")??;
        }
        let qps = n_queries as f64 / secs;
        println!(
            "{{\"threads\":{t},\"queries\":{n_queries},\"batch\":{batch},\"beam\":{beam},\"k\":{k},\"items\":{n},\"dim\":{dim},\"seconds\":{secs:.3},\"queries_per_s\":{qps:.0},\"queries_per_s_per_thread\":{:.0},\"us_per_query_per_thread\":{:.2},\"allocs_per_query\":{:.4},\"hits\":{found},\"cpu\":\"{cpu}\"}}",
            qps / t as f64,
            1e6 * t as f64 / qps,
            timed_allocs as f64 / n_queries as f64,
        );
    }
    Ok(())
}
