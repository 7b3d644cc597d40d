//! Generative retrieval without a trained model: RQ-KMeans semantic IDs, a
//! trie of valid IDs, and trie-constrained beam search scored by codebook
//! distances, compared with exact kNN and HNSW on held-out queries.
//!
//! ```text
//! cargo run --release --example retrieval                     # built-in data
//! cargo run --release --features ann --example retrieval      # + HNSW row
//! cargo run --release --example retrieval -- --input emb.npy [--queries 1000] [--noise 0.2]
//! ```
//! Queries are noisy copies of catalog items (noise norm `--noise` × the
//! mean item norm). Recall@10 is measured against each query's exact 10
//! nearest items.
use std::time::Instant;

use semid::ann::ExactKnn;
use semid::decode::{BeamSearch, CodebookScorer, ScoreMetric};
use semid::hits::Hits;
use semid::metrics::{EvalOptions, Metric, Qrels, Rankings, evaluate};
use semid::sid::{CollisionPolicy, SidMap, Trie};
use semid::{Embeddings, Par, Quantizer, RqKMeans, RqKMeansConfig};

mod common;
use common::{Args, Flag, INPUT, load_data};

const BATCH: usize = 32;
const K: usize = 10;

/// Noisy copies of `n_q` catalog items (deterministic).
fn make_queries(data: &[f32], d: usize, n_q: usize, noise: f32, seed: u64) -> Vec<f32> {
    let n = data.len() / d;
    let mut s = seed | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mean_norm = data
        .chunks_exact(d)
        .take(1000)
        .map(|r| r.iter().map(|v| v * v).sum::<f32>().sqrt())
        .sum::<f32>()
        / n.min(1000) as f32;
    let sigma = noise * mean_norm / (d as f32).sqrt();
    let mut out = Vec::with_capacity(n_q * d);
    for _ in 0..n_q {
        let i = (next() % n as u64) as usize;
        for &v in &data[i * d..(i + 1) * d] {
            // Box–Muller from two uniforms in (0, 1].
            let u1 = ((next() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
            let u2 = (next() >> 11) as f64 / (1u64 << 53) as f64;
            let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            out.push(v + sigma * z as f32);
        }
    }
    out
}

fn recall(hits: &Hits, truth: &Qrels) -> Result<f64, semid::Error> {
    let e = evaluate(
        &Rankings::from(hits),
        truth,
        &[Metric::Recall(K)],
        &EvalOptions::default(),
    )?;
    Ok(e.mean[0])
}

fn row(name: &str, r: f64, qps: f64, note: &str) {
    println!("{name:<28} {:>9.3} {qps:>12.0}  {note}", r);
}

/// SID retrieval of every query (batches of 32 spread over rayon's
/// threads, one `BeamSearch` per batch): the top `take` items of the beam,
/// optionally re-ranked by exact distance to the item embeddings in `rerank`.
fn sid_search(
    rq: &RqKMeans,
    trie: &Trie,
    queries: &[f32],
    d: usize,
    beam: usize,
    take: usize,
    rerank: Option<&[f32]>,
) -> Result<Vec<Vec<u32>>, semid::Error> {
    use rayon::prelude::*;
    let batches: Vec<Result<Vec<Vec<u32>>, semid::Error>> = queries
        .par_chunks(BATCH * d)
        .map(|qb| {
            let n = qb.len() / d;
            let mut bs = BeamSearch::new(beam, take)?;
            let mut scorer = CodebookScorer::new(rq, Embeddings::new(qb, d)?, ScoreMetric::L2)?;
            let hits = bs.search(trie, &mut scorer, n)?;
            let mut out = Vec::with_capacity(n);
            for (j, qv) in qb.chunks_exact(d).enumerate() {
                let items = hits.query(j).items;
                let Some(data) = rerank else {
                    out.push(items.to_vec());
                    continue;
                };
                let mut c: Vec<(f32, u32)> = items
                    .iter()
                    .map(|&it| {
                        let xv = &data[it as usize * d..(it as usize + 1) * d];
                        (xv.iter().zip(qv).map(|(a, b)| (a - b) * (a - b)).sum(), it)
                    })
                    .collect();
                c.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                out.push(c.iter().take(K).map(|p| p.1).collect());
            }
            Ok(out)
        })
        .collect();
    let mut lists = Vec::with_capacity(queries.len() / d);
    for b in batches {
        lists.extend(b?);
    }
    Ok(lists)
}

const ABOUT: &str = "generative retrieval by codebook distances vs exact kNN and HNSW";

const FLAGS: &[Flag] = &[
    INPUT,
    ("--queries", true, "1000", "held-out queries"),
    (
        "--noise",
        true,
        "0.2",
        "query noise, times the mean item norm",
    ),
];

fn main() -> std::process::ExitCode {
    common::run("retrieval", body)
}

fn body() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse_or_exit("retrieval", ABOUT, FLAGS);
    let n_q: usize = args.num("--queries")?;
    let noise: f32 = args.num("--noise")?;
    let (data, d, source) = load_data(&args)?;
    let x = Embeddings::new(&data, d)?;
    println!("data     {} x {d} from {source}", x.rows());
    println!("queries  {n_q} noisy copies of items (noise {noise} x mean norm)");
    println!("threads  {}", Par::default().threads());

    let t = Instant::now();
    let (rq, _) = RqKMeans::fit(&RqKMeansConfig::new(3, 256).seed(42), x)?;
    let codes = rq.encode(x)?;
    let (map, rep) = SidMap::build(&codes, &rq.codebook_sizes(), CollisionPolicy::AppendSuffix)?;
    let trie = Trie::build(&map)?;
    let st = trie.stats();
    println!(
        "SIDs     RQ-KMeans 3 x 256 + suffix: {} IDs, largest bucket {}, trie {:.1} KiB ({:.2} s)",
        st.ids,
        rep.max_bucket,
        (st.structure_bytes + st.item_bytes) as f64 / 1024.0,
        t.elapsed().as_secs_f64()
    );

    let queries = make_queries(&data, d, n_q, noise, 7);
    let q = Embeddings::new(&queries, d)?;

    // Ground truth: exact 10 nearest items.
    let exact = ExactKnn::new(x)?;
    let t = Instant::now();
    let truth_hits = exact.search(q, K, Par::default())?;
    let exact_qps = n_q as f64 / t.elapsed().as_secs_f64();
    let truth = Qrels::from_relevant(&truth_hits.to_lists())?;

    println!();
    println!("{:<28} {:>9} {:>12}", "method", "Recall@10", "queries/s");
    row("exact kNN (GEMM)", 1.0, exact_qps, "ground truth");

    for (beam, take, rerank) in [
        (10, K, false),
        (20, K, false),
        (50, K, false),
        (50, 500, true),
    ] {
        let t = Instant::now();
        let lists = sid_search(
            &rq,
            &trie,
            &queries,
            d,
            beam,
            take,
            rerank.then_some(&data[..]),
        )?;
        let qps = n_q as f64 / t.elapsed().as_secs_f64();
        let r = evaluate(
            &Rankings::from_lists(&lists),
            &truth,
            &[Metric::Recall(K)],
            &EvalOptions::default(),
        )?
        .mean[0];
        let (name, note) = if rerank {
            (
                format!("SID beam {beam} + exact rerank"),
                format!("{take} candidates re-ranked"),
            )
        } else {
            (format!("SID beam {beam}"), "trie-constrained".to_string())
        };
        row(&name, r, qps, &note);
    }

    #[cfg(feature = "ann")]
    {
        use semid::ann::{Hnsw, HnswConfig};
        let t = Instant::now();
        let h = Hnsw::build(
            x,
            &HnswConfig {
                parallel: true,
                ..Default::default()
            },
        )?;
        let build_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let hits = h.search(q, K, Par::default())?;
        let qps = n_q as f64 / t.elapsed().as_secs_f64();
        row(
            "HNSW (hnsw_rs, M 16, ef 64)",
            recall(&hits, &truth)?,
            qps,
            &format!("build {build_s:.1} s, search 1 thread"),
        );
    }
    #[cfg(not(feature = "ann"))]
    {
        let _ = recall;
        println!("{:<28} (run with --features ann)", "HNSW");
    }
    Ok(())
}
