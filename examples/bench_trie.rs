//! The trie peer benchmark (`../shared/peers/trie_ref.py`) on semid's trie:
//! N random D-token SIDs (codebook K, duplicates removed), then 100k
//! "next allowed tokens" lookups for prefixes of length 1..D−1 (90% real
//! prefixes, 10% random token strings). Prints one JSON line.
//!
//! ```text
//! cargo run --release --example bench_trie -- [--n-sids 1000000] [--depth 4] [--codebook 256]
//!     [--n-prefixes 100000] [--seed 0] [--write-keys keys.npy]
//! ```
//! `--write-keys` saves the deduplicated keys so the Python peers can run
//! on exactly the same set (`trie_ref.py --codes keys.npy`).
use std::hint::black_box;
use std::time::Instant;

use semid::sid::Trie;

mod common;
use common::{Args, Flag};

const ABOUT: &str = "trie build and next-token lookups on random SIDs, one JSON line";

const FLAGS: &[Flag] = &[
    (
        "--n-sids",
        true,
        "1000000",
        "random SIDs (duplicates removed)",
    ),
    ("--depth", true, "4", "tokens per SID"),
    ("--codebook", true, "256", "codes per level"),
    ("--n-prefixes", true, "100000", "lookups"),
    ("--seed", true, "0", "seed"),
    (
        "--write-keys",
        true,
        "",
        "save the deduplicated keys to this .npy",
    ),
];

fn main() -> std::process::ExitCode {
    common::run("bench_trie", body)
}

fn body() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse_or_exit("bench_trie", ABOUT, FLAGS);
    let n: usize = args.num("--n-sids")?;
    let depth: usize = args.num("--depth")?;
    let k: u64 = args.num("--codebook")?;
    let m: usize = args.num("--n-prefixes")?;
    let seed: u64 = args.num("--seed")?;
    // Random keys, deduplicated (as the peer does).
    let tokens = semid::synthetic::integers(n * depth, k as u32, seed);
    let mut keys: Vec<Vec<u16>> = tokens
        .chunks_exact(depth)
        .map(|c| c.iter().map(|&t| t as u16).collect())
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let flat: Vec<u16> = keys.concat();
    if let Some(p) = args.get("--write-keys") {
        let f: Vec<f32> = flat.iter().map(|&t| t as f32).collect();
        semid::npy::write_npy(p, &f, depth)?;
    }
    // An endless seeded stream for the shuffle and the queries.
    let (mut buf, mut at, mut round) = (Vec::new(), 0usize, 1u64);
    let mut next = move || -> u64 {
        if at == buf.len() {
            buf = semid::synthetic::integers(1 << 16, u32::MAX, seed.wrapping_add(round));
            (at, round) = (0, round + 1);
        }
        at += 1;
        buf[at - 1] as u64
    };
    // Shuffle rows so the build pays for its sort, as from encoder output.
    let mut rows: Vec<usize> = (0..keys.len()).collect();
    for i in (1..rows.len()).rev() {
        rows.swap(i, (next() % (i as u64 + 1)) as usize);
    }
    let shuffled: Vec<u16> = rows.iter().flat_map(|&r| keys[r].iter().copied()).collect();
    let vocab = vec![k as usize; depth];
    let t = Instant::now();
    let trie = Trie::from_ids(&shuffled, depth, &vocab)?;
    let build_s = t.elapsed().as_secs_f64();
    let st = trie.stats();

    // Queries.
    let prefixes: Vec<Vec<u16>> = (0..m)
        .map(|_| {
            let len = 1 + (next() % (depth as u64 - 1)) as usize;
            if next() % 10 == 0 {
                (0..len).map(|_| (next() % k) as u16).collect()
            } else {
                keys[(next() % keys.len() as u64) as usize][..len].to_vec()
            }
        })
        .collect();
    let t = Instant::now();
    let mut total = 0usize;
    for p in &prefixes {
        if let Some(s) = trie.walk(black_box(p)) {
            total += trie.allowed(s).len();
        }
    }
    let lookup_s = t.elapsed().as_secs_f64();
    let steps: usize = prefixes.iter().map(Vec::len).sum();
    println!(
        "{{\"structure\":\"semid_trie\",\"n_keys\":{},\"depth\":{depth},\"codebook\":{k},\"n_prefixes\":{m},\"build_s\":{build_s:.4},\"structure_bytes\":{},\"item_bytes\":{},\"bytes_per_key\":{:.2},\"lookup_s\":{lookup_s:.4},\"lookups_per_s\":{:.0},\"ns_per_lookup\":{:.1},\"ns_per_step\":{:.1},\"answer_total\":{total}}}",
        st.ids,
        st.structure_bytes,
        st.item_bytes,
        (st.structure_bytes + st.item_bytes) as f64 / st.ids as f64,
        m as f64 / lookup_s,
        lookup_s * 1e9 / m as f64,
        lookup_s * 1e9 / (steps + m) as f64,
    );
    Ok(())
}
