//! A `SemanticIndex` of N items from synthetic codes (issue 26's catalog
//! scale): build from codes, memory, save, open in place (memory-mapped,
//! both checks), load, codebook-scored search, inserting batches of new
//! items (pending beside the compacted index), searching with them
//! pending, and compacting. One JSON line.
//!
//! ```text
//! cargo run --release --example bench_index_scale -- [--items 1000000] [--levels 3] [--k 256]
//!     [--dim 32] [--insert 10000] [--queries 10000] [--seed 3] [--file PATH] [--keep]
//! cargo run --release --example bench_index_scale -- --open PATH [--load] [--queries 10000]
//! ```
//! `--open PATH` only opens a saved index (`--load`: loads it), in a fresh
//! process, and reports
//! the time, the growth of the resident set once open and once searched
//! (a mapped file's pages count when touched), and the search time.
//! Codes are uniform over `k^levels` (IDs get a suffix where they collide);
//! the quantizer is an RQ-KMeans with seeded random codebooks of width
//! `--dim`, so search and insert run the real paths. Memory is the growth
//! of the process's resident set (`/proc/self/status`, Linux) while the
//! index is built and held, beside the trie's own count; `peak_rss_mb` is
//! the process's high-water mark.
use std::time::Instant;

use semid::decode::BeamSearch;
use semid::hits::Hits;
use semid::sid::CollisionPolicy;
use semid::{Codes, Embeddings, ModelFile, Par, RqKMeans, SemanticIndex, SharedIndex};

mod common;
use common::{Args, Flag};

const ABOUT: &str =
    "a SemanticIndex from N synthetic codes: build, memory, save, load, search, insert";

const FLAGS: &[Flag] = &[
    ("--items", true, "1000000", "items (synthetic codes)"),
    ("--levels", true, "3", "code levels"),
    ("--k", true, "256", "codes per level"),
    ("--dim", true, "32", "quantizer width"),
    ("--insert", true, "10000", "new items inserted at the end"),
    ("--queries", true, "10000", "codebook-scored queries"),
    ("--seed", true, "3", "seed"),
    (
        "--file",
        true,
        "",
        "where to save the index (default: the temp dir)",
    ),
    ("--keep", false, "", "keep the saved file"),
    (
        "--load",
        false,
        "",
        "with --open: load the file (read and fully checked) instead",
    ),
    (
        "--open",
        true,
        "",
        "only open this saved index and search it",
    ),
];

fn main() -> std::process::ExitCode {
    common::run("bench_index_scale", body)
}

/// A field of `/proc/self/status` in MB (`VmRSS`, `VmHWM`); 0 elsewhere.
fn status_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Seeded floats in [-0.5, 0.5).
fn floats(len: usize, seed: u64) -> Vec<f32> {
    semid::synthetic::integers(len, 1 << 20, seed)
        .into_iter()
        .map(|v| v as f32 / (1 << 20) as f32 - 0.5)
        .collect()
}

/// Codebook-scored queries in batches of 64: µs per query, and hits.
fn search(
    index: &SemanticIndex,
    queries: &[f32],
    bs: &mut BeamSearch,
) -> Result<(f64, usize), semid::Error> {
    let dim = semid::Quantizer::dim(index.quantizer());
    let mut hits = Hits::new();
    let n = queries.len() / dim;
    let t = Instant::now();
    let mut found = 0usize;
    for b in queries.chunks(64 * dim) {
        index.search_embeddings_into(Embeddings::new(b, dim)?, bs, &mut hits)?;
        found += (0..b.len() / dim)
            .map(|q| hits.query(q).items.len())
            .sum::<usize>();
    }
    Ok((t.elapsed().as_secs_f64() * 1e6 / n.max(1) as f64, found))
}

/// `--open PATH`: open a saved index in this fresh process and search it.
fn open_only(
    path: &str,
    load: bool,
    n_queries: usize,
    seed: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let rss0 = status_mb("VmRSS");
    let t = Instant::now();
    let index = if load {
        SemanticIndex::load(path)?
    } else {
        SemanticIndex::open(path)?
    };
    let open_ms = t.elapsed().as_secs_f64() * 1e3;
    let open_rss = status_mb("VmRSS") - rss0;
    let dim = semid::Quantizer::dim(index.quantizer());
    let queries = floats(n_queries * dim, seed ^ 0x9e);
    let mut bs = BeamSearch::new(20, 10)?;
    let (first_us, found) = search(&index, &queries, &mut bs)?;
    let searched_rss = status_mb("VmRSS") - rss0;
    let (again_us, _) = search(&index, &queries, &mut bs)?;
    let file_mb = std::fs::metadata(path)?.len() as f64 / 1e6;
    println!(
        "{{\"open\":\"{path}\",\"how\":\"{}\",\"items\":{},\"file_mb\":{file_mb:.1},\"open_ms\":{open_ms:.1},\"open_rss_mb\":{open_rss:.1},\"queries\":{n_queries},\"search_first_us_per_query\":{first_us:.1},\"search_again_us_per_query\":{again_us:.1},\"hits\":{found},\"searched_rss_mb\":{searched_rss:.1},\"peak_rss_mb\":{:.1},\"cpu\":\"{}\"}}",
        if load { "load" } else { "open" },
        index.len(),
        status_mb("VmHWM"),
        common::cpu_model(),
    );
    Ok(())
}

fn body() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse_or_exit("bench_index_scale", ABOUT, FLAGS);
    if let Some(path) = args.get("--open").filter(|p| !p.is_empty()) {
        return open_only(
            path,
            args.on("--load"),
            args.num("--queries")?,
            args.num("--seed")?,
        );
    }
    let n: usize = args.num("--items")?;
    let levels: usize = args.num("--levels")?;
    let k: usize = args.num("--k")?;
    let dim: usize = args.num("--dim")?;
    let n_insert: usize = args.num("--insert")?;
    let n_queries: usize = args.num("--queries")?;
    let seed: u64 = args.num("--seed")?;
    let rq = RqKMeans::from_codebooks(floats(levels * k * dim, seed), levels, dim)?;
    let codes: Vec<u16> = semid::synthetic::integers(n * levels, k as u32, seed ^ 0xc0de)
        .into_iter()
        .map(|t| t as u16)
        .collect();
    let codes = Codes::new(codes, levels)?;
    let rss0 = status_mb("VmRSS");
    let t = Instant::now();
    let (mut index, report) = SemanticIndex::from_codes(rq, &codes, CollisionPolicy::AppendSuffix)?;
    let build_s = t.elapsed().as_secs_f64();
    drop(codes);
    let index_mb = status_mb("VmRSS") - rss0;
    let ts = index.trie().stats();

    let queries = floats(n_queries * dim, seed ^ 0x9e);
    let mut bs = BeamSearch::new(20, 10)?;
    let (search_us, found) = search(&index, &queries, &mut bs)?;

    // A batch of new items (their embeddings are encoded by the index),
    // then a second batch of known codes: both stay pending beside the
    // compacted map and trie unless they pass the compaction threshold.
    let new_x = floats(n_insert * dim, seed ^ 0x1e5);
    let items: Vec<u32> = (n as u32..(n + n_insert) as u32).collect();
    let t = Instant::now();
    if n_insert > 0 {
        index.insert(&items, Embeddings::new(&new_x, dim)?, Par::default())?;
    }
    let insert_ms = t.elapsed().as_secs_f64() * 1e3;
    let more: Vec<u16> = semid::synthetic::integers(n_insert * levels, k as u32, seed ^ 0x2e5)
        .into_iter()
        .map(|t| t as u16)
        .collect();
    let more_items: Vec<u32> = ((n + n_insert) as u32..(n + 2 * n_insert) as u32).collect();
    let t = Instant::now();
    if n_insert > 0 {
        index.insert_codes(&more_items, &Codes::new(more, levels)?)?;
    }
    let insert_codes_ms = t.elapsed().as_secs_f64() * 1e3;
    let pending = index.pending();
    let (search_pending_us, _) = search(&index, &queries, &mut bs)?;
    // Folding the inserts in costs what a rebuild costs.
    let t = Instant::now();
    index.compact()?;
    let compact_s = t.elapsed().as_secs_f64();
    let map_bytes = index.map().heap_bytes() as f64 / index.len() as f64;
    let ts2 = index.trie().stats();
    let total = index.len();

    // A service's insert: copy-on-write through `SharedIndex`. The copy
    // shares the compacted arrays, so it costs the pending inserts only.
    let shared = SharedIndex::new(index);
    let third: Vec<u16> = semid::synthetic::integers(n_insert * levels, k as u32, seed ^ 0x3e5)
        .into_iter()
        .map(|t| t as u16)
        .collect();
    let third_items: Vec<u32> = (total as u32..(total + n_insert) as u32).collect();
    let t = Instant::now();
    if n_insert > 0 {
        shared.update(|ix| ix.insert_codes(&third_items, &Codes::new(third, levels)?))?;
    }
    let shared_update_ms = t.elapsed().as_secs_f64() * 1e3;

    // The final index saved, then opened in place under both checks, and
    // loaded (last, so that the figures above are not those of a process
    // that just freed a loaded copy).
    let index = shared.load();
    let index: &SemanticIndex = &index;
    let path = match args.get("--file").filter(|p| !p.is_empty()) {
        Some(p) => std::path::PathBuf::from(p),
        None => std::env::temp_dir().join(format!("semid-scale-{n}-{}.semid", std::process::id())),
    };
    let t = Instant::now();
    index.save(&path)?;
    let save_s = t.elapsed().as_secs_f64();
    let file_mb = std::fs::metadata(&path)?.len() as f64 / 1e6;
    let rss1 = status_mb("VmRSS");
    let t = Instant::now();
    let opened = SemanticIndex::open(&path)?;
    let open_ms = t.elapsed().as_secs_f64() * 1e3;
    let open_rss = status_mb("VmRSS") - rss1;
    let t = Instant::now();
    let full = SemanticIndex::open_with(&path, semid::Check::Full)?;
    let open_full_s = t.elapsed().as_secs_f64();
    drop(full);
    let t = Instant::now();
    let loaded = SemanticIndex::load(&path)?;
    let load_s = t.elapsed().as_secs_f64();
    let same = opened == *index && loaded == *index;
    drop(loaded);

    let (search_final_us, found_final) = search(index, &queries, &mut bs)?;
    let (search_open_us, found_open) = search(&opened, &queries, &mut bs)?;
    if found_open != found_final {
        return Err(format!(
            "the opened index found {found_open} hits, the built one {found_final}"
        )
        .into());
    }
    drop(opened);
    if !args.on("--keep") {
        std::fs::remove_file(&path)?;
    }

    println!(
        "{{\"items\":{n},\"levels\":{levels},\"k\":{k},\"ids\":{},\"max_bucket\":{},\"build_s\":{build_s:.3},\"index_rss_mb\":{index_mb:.1},\"index_bytes_per_item\":{:.1},\"trie_structure_bytes_per_item\":{:.2},\"trie_item_bytes_per_item\":{:.2},\"file_mb\":{file_mb:.1},\"save_s\":{save_s:.3},\"open_ms\":{open_ms:.1},\"open_rss_mb\":{open_rss:.1},\"open_full_s\":{open_full_s:.3},\"load_s\":{load_s:.3},\"same\":{same},\"search_us_per_query\":{search_us:.1},\"search_final_us_per_query\":{search_final_us:.1},\"search_opened_us_per_query\":{search_open_us:.1},\"hits\":{found},\"insert\":{n_insert},\"insert_ms\":{insert_ms:.1},\"insert_codes_ms\":{insert_codes_ms:.1},\"pending\":{pending},\"search_pending_us_per_query\":{search_pending_us:.1},\"compact_s\":{compact_s:.3},\"shared_update_ms\":{shared_update_ms:.1},\"map_bytes_per_item\":{map_bytes:.2},\"trie_bytes_per_item\":{:.2},\"peak_rss_mb\":{:.1},\"cpu\":\"{}\"}}",
        ts.ids,
        report.max_bucket,
        index_mb * 1e6 / n as f64,
        ts.structure_bytes as f64 / n as f64,
        ts.item_bytes as f64 / n as f64,
        (ts2.structure_bytes + ts2.item_bytes) as f64 / total as f64,
        status_mb("VmHWM"),
        common::cpu_model(),
    );
    Ok(())
}
