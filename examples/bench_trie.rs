//! The trie peer benchmark (`../shared/peers/trie_ref.py`) on semid's trie:
//! N random D-token SIDs (codebook K, duplicates removed), then 100k
//! "next allowed tokens" lookups for prefixes of length 1..D−1 (90% real
//! prefixes, 10% random token strings). Prints one JSON line.
//!
//! ```text
//! cargo run --release --example bench_trie -- [--n-sids 1000000] [--depth 4] [--codebook 256]
//!     [--n-prefixes 100000] [--seed 0] [--write-keys keys.npy] [--walks 100000] [--batch 64]
//! ```
//! It then walks `--walks` stored IDs in random order (allowed + step at
//! every level, as a beam search does) one at a time, and `--batch` at a
//! time level by level, without and with `Trie::prefetch` /
//! `Trie::prefetch_children` first (what `BeamSearch` does for its beams):
//! `ns_per_level_*` fields.
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
        "--walks",
        true,
        "100000",
        "stored IDs walked in random order (allowed + step per level)",
    ),
    (
        "--batch",
        true,
        "64",
        "IDs walked together, level by level, with prefetching",
    ),
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

    // Whole stored IDs in random order, as a beam search steps them:
    // allowed + step at every level. One at a time (each level waits for
    // the last), then `--batch` at a time level by level, without and with
    // the prefetch passes the beam search makes.
    let walks: usize = args.num("--walks")?;
    let batch: usize = args.num::<usize>("--batch")?.max(1);
    let picks: Vec<&[u16]> = (0..walks)
        .map(|_| &keys[(next() % keys.len() as u64) as usize][..])
        .collect();
    let t = Instant::now();
    let mut acc = 0usize;
    for id in &picks {
        let mut st = trie.start();
        for &tok in id.iter() {
            acc += trie.allowed(st).len();
            st = trie.step(st, tok).unwrap_or(st);
        }
        acc += st.node as usize;
    }
    let one_ns = t.elapsed().as_secs_f64() * 1e9 / (walks * depth) as f64;
    let mut batched_ns = [0f64; 2];
    for (prefetch, out) in [false, true].into_iter().zip(batched_ns.iter_mut()) {
        let t = Instant::now();
        let mut states = Vec::with_capacity(batch);
        for group in picks.chunks(batch) {
            states.clear();
            states.resize(group.len(), trie.start());
            for level in 0..depth {
                if prefetch {
                    for &s in &states {
                        trie.prefetch(s);
                    }
                    for &s in &states {
                        trie.prefetch_children(s);
                    }
                }
                for (s, id) in states.iter_mut().zip(group) {
                    acc += trie.allowed(*s).len();
                    *s = trie.step(*s, id[level]).unwrap_or(*s);
                }
            }
            acc += states.iter().map(|s| s.node as usize).sum::<usize>();
        }
        *out = t.elapsed().as_secs_f64() * 1e9 / (walks * depth) as f64;
    }
    black_box(acc);
    println!(
        "{{\"structure\":\"semid_trie\",\"n_keys\":{},\"depth\":{depth},\"codebook\":{k},\"n_prefixes\":{m},\"build_s\":{build_s:.4},\"structure_bytes\":{},\"item_bytes\":{},\"bytes_per_key\":{:.2},\"lookup_s\":{lookup_s:.4},\"lookups_per_s\":{:.0},\"ns_per_lookup\":{:.1},\"ns_per_step\":{:.1},\"answer_total\":{total},\"walks\":{walks},\"ns_per_level_random_walk\":{one_ns:.1},\"batch\":{batch},\"ns_per_level_batched\":{:.1},\"ns_per_level_batched_prefetch\":{:.1},\"cpu\":\"{}\"}}",
        st.ids,
        st.structure_bytes,
        st.item_bytes,
        (st.structure_bytes + st.item_bytes) as f64 / st.ids as f64,
        m as f64 / lookup_s,
        lookup_s * 1e9 / m as f64,
        lookup_s * 1e9 / (steps + m) as f64,
        batched_ns[0],
        batched_ns[1],
        common::cpu_model(),
    );
    Ok(())
}
