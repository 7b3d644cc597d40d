//! End-to-end generative recommendation: item embeddings → semantic IDs →
//! a transformer trained on users' SID sequences → trie-constrained beam
//! search → Recall/NDCG on held-out interactions, beside popularity,
//! last-item kNN and a SASRec-style model of the same size.
//!
//! ```text
//! cargo run --release --example genrec                    # built-in data
//! cargo run --release --example genrec -- --inter u.inter --item-emb items.npy --item-ids items.txt
//!
//! Built-in data:  [--items 1000] [--users 4000] [--switch 0.2] [--content-order]
//! Semantic IDs:   [--codes 256] (RQ-KMeans 3 levels of this many codes, plus a suffix)
//! Both models:    [--epochs 12] [--lr 3e-3] (linear decay) [--dropout 0] [--d 64] [--layers 2]
//!                 [--max-history 20] [--no-content] (no item-embedding input) [--seed 1]
//! Generative:     [--beam 20] [--masked] (plain token softmax in training and plain
//!                 masked scores in decoding, instead of both renormalised over valid IDs)
//! New items:      [--new-items 0] (hold this many items out of the catalog and the
//!                 training data, insert them after training, rank them for the users
//!                 whose last item is one of them)
//! Output:         [--json] (one JSON line per method after the table)
//! ```
//!
//! Protocol (TIGER/P5): leave-one-out per user (last item test,
//! second-to-last validation), histories capped at `--max-history` items,
//! full ranking over the catalog; the epoch is picked on validation
//! NDCG@10 (of up to 500 users) and reported on test. See docs/GENREC.md.

use std::time::{Duration, Instant};

use candle_core::D;
use semid::decode::{BeamSearch, Beams, Scorer};
use semid::hits::NO_ITEM;
use semid::metrics::{EvalOptions, Metric, Qrels, Rankings, evaluate};
use semid::seq::{
    Example, ItemIds, LeaveOneOut, SequenceConfig, Sequences, read_interactions,
    synthetic_sequences,
};
use semid::sid::CollisionPolicy;
use semid::synthetic::{MixtureConfig, hierarchical_mixture};
use semid::{Embeddings, Par, RqKMeans, RqKMeansConfig, SemanticIndex};

#[path = "../common/mod.rs"]
mod common;
mod model;

use common::arg;
use model::{Cache, Decoder, Shape, Trainer};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// The valid-ID training mask: (batch token windows, batch item windows,
/// vocabulary size) → additive mask (0 or −∞) per position and token.
type MaskFn<'a> = &'a dyn Fn(&[&[u32]], &[&[u32]], usize) -> Vec<f32>;

/// Users decoded together in one batched beam search.
const USERS_PER_SEARCH: usize = 32;

const METRICS: [Metric; 4] = [
    Metric::Recall(5),
    Metric::Recall(10),
    Metric::Ndcg(5),
    Metric::Ndcg(10),
];

/// One table row.
struct Row {
    method: String,
    values: [f64; 4],
    train_s: f64,
    users_per_s: f64,
    invalid_ids: usize,
    note: String,
}

fn main() -> Res<()> {
    keep_freed_memory();
    let args: Vec<String> = std::env::args().collect();
    let num = |name: &str, default: usize| -> Res<usize> {
        Ok(arg(&args, name).map_or(Ok(default), |v| v.parse())?)
    };
    let (epochs, beam, max_history) = (
        num("--epochs", 12)?,
        num("--beam", 20)?,
        num("--max-history", 20)?,
    );
    let (width, seed) = (num("--d", 64)?, num("--seed", 1)? as u64);
    let lr: f64 = arg(&args, "--lr").map_or(Ok(3e-3), |v| v.parse())?;
    let dropout: f32 = arg(&args, "--dropout").map_or(Ok(0.0), |v| v.parse())?;
    let json = args.iter().any(|a| a == "--json");
    let no_content = args.iter().any(|a| a == "--no-content");
    let masked = args.iter().any(|a| a == "--masked");
    let n_new = num("--new-items", 0)?;
    let (emb, dim, seqs, source) = load(&args)?;
    let n_all = emb.len() / dim;
    if n_new >= n_all {
        return Err(format!("--new-items {n_new}: the catalog has only {n_all} items").into());
    }
    // Held-out items take the last ids; the rest is the catalog.
    let (emb, seqs, cold) = hold_out(emb, dim, seqs, n_new, seed)?;
    let n_items = n_all - n_new;
    let split = LeaveOneOut::new(seqs, max_history)?;
    let users = split.sequences().len();
    println!(
        "data  {users} users, {} interactions, {n_items} items x {dim} ({source})",
        split.sequences().n_interactions()
    );

    // Items → semantic IDs.
    let t0 = Instant::now();
    let x = Embeddings::new(&emb[..n_items * dim], dim)?;
    let k = num("--codes", 256)?.min(n_items);
    let (mut index, _, sids) = SemanticIndex::fit::<RqKMeans>(
        &RqKMeansConfig::new(3, k).seed(seed),
        x,
        CollisionPolicy::AppendSuffix,
        Par::default(),
    )?;
    let vocab = index.trie().vocab().to_vec();
    println!(
        "SIDs  RQ-KMeans 3x{k} + suffix: {} tokens per item, vocab {vocab:?}, at most {} items per code, {:.1} s",
        vocab.len(),
        sids.max_bucket,
        t0.elapsed().as_secs_f64()
    );
    // The model's suffix level has room for new items' suffixes.
    let mut model_vocab = vocab.clone();
    *model_vocab.last_mut().ok_or("no levels")? += n_new;
    let tokens = SidTokens::new(&index, &model_vocab, n_items)?;

    let valid: Vec<Example<'_>> = split.valid().take(500).collect();
    let test: Vec<Example<'_>> = split.test().collect();
    let mut rows = Vec::new();

    // Popularity over everything before each test target.
    let t0 = Instant::now();
    let mut counts = vec![0u64; n_items];
    for u in 0..users {
        let s = split.sequences().items(u);
        for &i in &s[..s.len() - 1] {
            counts[i as usize] += 1;
        }
    }
    let mut pop: Vec<u32> = (0..n_items as u32).collect();
    pop.sort_by(|&a, &b| counts[b as usize].cmp(&counts[a as usize]).then(a.cmp(&b)));
    pop.truncate(10);
    let lists = vec![pop; test.len()];
    let elapsed = t0.elapsed().as_secs_f64();
    rows.push(Row {
        method: "popularity".into(),
        values: score(&lists, &test)?,
        train_s: elapsed,
        users_per_s: f64::NAN,
        invalid_ids: 0,
        note: String::new(),
    });

    // Nearest items to the last history item's embedding.
    let t0 = Instant::now();
    let lists = knn(&emb[..n_items * dim], dim, &test);
    let elapsed = t0.elapsed().as_secs_f64();
    rows.push(Row {
        method: "last-item kNN".into(),
        values: score(&lists, &test)?,
        train_s: 0.0,
        users_per_s: test.len() as f64 / elapsed,
        invalid_ids: 0,
        note: String::new(),
    });

    // The generative model over SID tokens.
    let l = vocab.len();
    let gen_shape = Shape {
        vocab: tokens.bos as usize + 1,
        max_len: 1 + (max_history + 1) * l,
        per_item: l,
        d: width,
        heads: 2,
        layers: num("--layers", 2)?,
    };
    let gen_train: Vec<(Vec<u32>, Vec<u32>)> = windows(&split, max_history)
        .map(|w| (tokens.sequence(w), w.to_vec()))
        .collect();
    let content = (!no_content).then_some((emb.as_slice(), dim));
    let genm = Decoder::new(gen_shape, content, seed)?;
    let decode = |model: &Decoder, ex: &[Example<'_>]| {
        decode_users(model, &index, &tokens, ex, beam, masked)
    };
    let trie = index.trie();
    let valid_next = |batch: &[&[u32]], items: &[&[u32]], vocab: usize| {
        let t = batch.iter().map(|s| s.len()).max().unwrap_or(1) - 1;
        let mut out = vec![0f32; batch.len() * t * vocab];
        for (r, (s, its)) in batch.iter().zip(items).enumerate() {
            // Position i predicts token i mod L of item i / L.
            for i in 0..s.len() - 1 {
                let (item, j) = (its[i / l] as usize, i % l);
                let id = &tokens.ids[item * l..item * l + j];
                let row = &mut out[(r * t + i) * vocab..(r * t + i + 1) * vocab];
                row.fill(f32::NEG_INFINITY);
                if let Some(state) = trie.walk(id) {
                    for &tok in trie.allowed(state) {
                        row[tokens.offsets[j] as usize + tok as usize] = 0.0;
                    }
                }
            }
        }
        out
    };
    let gen_mask: Option<MaskFn<'_>> = (!masked).then_some(&valid_next);
    let (gen_train_s, gen_epoch) = train(
        &genm,
        &gen_train,
        (epochs, lr, dropout),
        seed,
        gen_mask,
        |m| {
            let (lists, _, _, _) = decode(m, &valid)?;
            Ok(score(&lists, &valid)?[3])
        },
    )?;
    let (lists, invalid, total, model_time) = decode(&genm, &test)?;
    let search_time = total.saturating_sub(model_time);
    rows.push(Row {
        method: format!("generative (SID, beam {beam})"),
        values: score(&lists, &test)?,
        train_s: gen_train_s,
        users_per_s: test.len() as f64 / total.as_secs_f64(),
        invalid_ids: invalid,
        note: format!(
            "epoch {gen_epoch}; per user: model {:.2} ms, search {:.3} ms ({:.1}%)",
            1e3 * model_time.as_secs_f64() / test.len() as f64,
            1e3 * search_time.as_secs_f64() / test.len() as f64,
            100.0 * search_time.as_secs_f64() / model_time.as_secs_f64()
        ),
    });

    // SASRec-style: the same transformer over item ids, full softmax.
    let sas_shape = Shape {
        vocab: n_items + 1,
        max_len: max_history + 2,
        per_item: 1,
        ..gen_shape
    };
    let bos = n_items as u32;
    let sas_train: Vec<(Vec<u32>, Vec<u32>)> = windows(&split, max_history)
        .map(|w| {
            (
                std::iter::once(bos).chain(w.iter().copied()).collect(),
                w.to_vec(),
            )
        })
        .collect();
    let sas = Decoder::new(sas_shape, content, seed)?;
    let rank = |model: &Decoder, ex: &[Example<'_>]| -> Res<(Vec<Vec<u32>>, f64)> {
        let t0 = Instant::now();
        let mut lists = Vec::with_capacity(ex.len());
        for e in ex {
            let ids: Vec<u32> = std::iter::once(bos)
                .chain(e.history.iter().copied())
                .collect();
            let n = ids.len();
            let inputs = model.inputs(&[&ids], &[e.history], 0, n)?;
            let logits = model.forward(&inputs, 0, &mut Vec::new())?;
            let last: Vec<f32> = logits
                .squeeze(0)?
                .get(n - 1)?
                .narrow(0, 0, n_items)?
                .to_vec1()?;
            let mut top: Vec<u32> = (0..n_items as u32).collect();
            let cmp = |a: &u32, b: &u32| {
                last[*b as usize]
                    .total_cmp(&last[*a as usize])
                    .then(a.cmp(b))
            };
            top.select_nth_unstable_by(9.min(n_items - 1), cmp);
            top.truncate(10);
            top.sort_by(cmp);
            lists.push(top);
        }
        Ok((lists, t0.elapsed().as_secs_f64()))
    };
    let (sas_train_s, sas_epoch) =
        train(&sas, &sas_train, (epochs, lr, dropout), seed, None, |m| {
            Ok(score(&rank(m, &valid)?.0, &valid)?[3])
        })?;
    let (lists, secs) = rank(&sas, &test)?;
    rows.push(Row {
        method: "SASRec-style (item ids)".into(),
        values: score(&lists, &test)?,
        train_s: sas_train_s,
        users_per_s: test.len() as f64 / secs,
        invalid_ids: 0,
        note: format!("epoch {sas_epoch}"),
    });

    if !cold.is_empty() {
        new_items(
            &mut rows,
            (&mut index, &model_vocab),
            (&emb, dim, n_items),
            &cold,
            (&genm, beam, masked, max_history),
        )?;
    }

    println!();
    println!(
        "{:<28} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>8}  note",
        "method", "R@5", "R@10", "N@5", "N@10", "train s", "users/s", "invalid"
    );
    for r in &rows {
        let (m, [r5, r10, n5, n10]) = (&r.method, r.values);
        let (t, u, bad, note) = (r.train_s, r.users_per_s, r.invalid_ids, &r.note);
        println!(
            "{m:<28} {r5:>8.4} {r10:>8.4} {n5:>8.4} {n10:>8.4} {t:>9.1} {u:>9.0} {bad:>8}  {note}"
        );
    }
    if json {
        for r in &rows {
            let (m, [r5, r10, n5, n10]) = (&r.method, r.values);
            let ups = if r.users_per_s.is_finite() {
                format!("{:.1}", r.users_per_s)
            } else {
                "null".into()
            };
            println!(
                "{{\"method\":\"{m}\",\"recall@5\":{r5:.6},\"recall@10\":{r10:.6},\"ndcg@5\":{n5:.6},\"ndcg@10\":{n10:.6},\"train_s\":{:.3},\"users_per_s\":{ups},\"invalid_ids\":{}}}",
                r.train_s, r.invalid_ids
            );
        }
    }
    Ok(())
}

/// candle allocates a fresh buffer for every tensor. glibc returns large
/// freed blocks to the kernel (`munmap`, heap trimming), so each training
/// step paid for page faults: half the run was system time. Keeping freed
/// memory in the process (as `MALLOC_MMAP_THRESHOLD_` / `_TRIM_THRESHOLD_`
/// / `_TOP_PAD_` would) made training and decoding about 2× faster here.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    const M_TRIM_THRESHOLD: i32 = -1;
    const M_TOP_PAD: i32 = -2;
    const M_MMAP_THRESHOLD: i32 = -3;
    unsafe extern "C" {
        fn mallopt(param: i32, value: i32) -> i32;
    }
    // SAFETY: mallopt only sets allocator parameters; it is called before
    // any other thread starts. A rejected value (return 0) changes nothing.
    unsafe {
        mallopt(M_MMAP_THRESHOLD, 32 << 20);
        mallopt(M_TRIM_THRESHOLD, 512 << 20);
        mallopt(M_TOP_PAD, 64 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}

/// Item embeddings and user sequences: from files, or built in.
fn load(args: &[String]) -> Res<(Vec<f32>, usize, Sequences, String)> {
    if let Some(inter) = arg(args, "--inter") {
        let (emb_path, ids_path) = match (arg(args, "--item-emb"), arg(args, "--item-ids")) {
            (Some(e), Some(i)) => (e, i),
            _ => return Err("--inter needs --item-emb FILE.npy and --item-ids FILE".into()),
        };
        let ids = ItemIds::read(&ids_path)?;
        let (emb, dim) = semid::npy::read_npy(&emb_path)?;
        if emb.len() / dim != ids.len() {
            return Err(format!(
                "{emb_path} has {} rows but {ids_path} lists {} ids",
                emb.len() / dim,
                ids.len()
            )
            .into());
        }
        let (seqs, report) = read_interactions(&inter, &ids)?;
        println!("read  {inter}: {report:?}");
        return Ok((emb, dim, seqs, inter));
    }
    let n: usize = arg(args, "--items").map_or(Ok(1_000), |v| v.parse())?;
    let catalog = MixtureConfig {
        n,
        dim: 64,
        topics: (n / 75).max(1),
        ..MixtureConfig::default()
    };
    let users = arg(args, "--users").map_or(Ok(4_000), |v| v.parse())?;
    let cfg = SequenceConfig {
        users,
        switch: arg(args, "--switch")
            .map_or(Ok(SequenceConfig::default().switch), |v| v.parse())?,
        content_order: args.iter().any(|a| a == "--content-order"),
        ..SequenceConfig::default()
    };
    let seqs = synthetic_sequences(&cfg, &catalog)?;
    let source = format!(
        "built-in: {} topics x {} sub-topics, {} users of {}-{} items",
        catalog.topics, catalog.subtopics, cfg.users, cfg.min_len, cfg.max_len
    );
    Ok((hierarchical_mixture(&catalog), catalog.dim, seqs, source))
}

/// Training windows of every user's training part (all but the last two
/// items): the last `max_history + 1` items, then earlier windows
/// overlapping by one item, so every training target is predicted once
/// from up to `max_history` items.
fn windows(split: &LeaveOneOut, max_history: usize) -> impl Iterator<Item = &[u32]> + '_ {
    let seqs = split.sequences();
    (0..seqs.len()).flat_map(move |u| {
        let s = seqs.items(u);
        let part = &s[..s.len() - 2];
        let mut out = Vec::new();
        let mut end = part.len();
        while end >= 2 {
            let start = end.saturating_sub(max_history + 1);
            out.push(&part[start..end]);
            if start == 0 {
                break;
            }
            end = start + 1;
        }
        out.into_iter().rev()
    })
}

/// Top-10 lists of `ex` by trie-constrained beam search over `model`,
/// users with equally long histories batched into one search (no padding).
/// Returns the lists, the count of invalid IDs emitted, the total time and
/// the model's share of it.
fn decode_users(
    model: &Decoder,
    index: &SemanticIndex,
    tokens: &SidTokens,
    ex: &[Example<'_>],
    beam: usize,
    masked: bool,
) -> Res<(Vec<Vec<u32>>, usize, Duration, Duration)> {
    let mut bs = BeamSearch::new(beam, 10)?.renormalize(!masked);
    let mut scorer = SidScorer {
        model,
        tokens,
        histories: Vec::new(),
        items: Vec::new(),
        cache: Vec::new(),
        model_time: Duration::ZERO,
    };
    let mut lists = vec![Vec::new(); ex.len()];
    let mut invalid = 0;
    let t0 = Instant::now();
    let mut order: Vec<usize> = (0..ex.len()).collect();
    order.sort_by_key(|&i| (ex[i].history.len(), i));
    for group in order.chunk_by(|&a, &b| ex[a].history.len() == ex[b].history.len()) {
        for batch in group.chunks(USERS_PER_SEARCH) {
            scorer.histories = batch
                .iter()
                .map(|&i| tokens.sequence(ex[i].history))
                .collect();
            scorer.items = batch.iter().map(|&i| ex[i].history).collect();
            let hits = index.search(&mut bs, &mut scorer, batch.len())?;
            for (q, &i) in batch.iter().enumerate() {
                let items = hits.query(q).items.to_vec();
                invalid += items.iter().filter(|&&i| i == NO_ITEM).count();
                lists[i] = items;
            }
        }
    }
    Ok((lists, invalid, t0.elapsed(), scorer.model_time))
}

/// Recall@5/10 and NDCG@5/10 of `lists` against each example's target.
fn score(lists: &[Vec<u32>], ex: &[Example<'_>]) -> Res<[f64; 4]> {
    let rel: Vec<Vec<u32>> = ex.iter().map(|e| vec![e.target]).collect();
    let e = evaluate(
        &Rankings::from_lists(lists),
        &Qrels::from_relevant(&rel)?,
        &METRICS,
        &EvalOptions::default(),
    )?;
    Ok(METRICS.map(|m| e.mean_of(m).unwrap_or(0.0)))
}

/// The new-item test: inserts the held-out items into `index` (no
/// retraining), then ranks the `cold` users' last items with the trained
/// generative model, and with last-item kNN over the whole catalog.
fn new_items(
    rows: &mut Vec<Row>,
    (index, model_vocab): (&mut SemanticIndex, &[usize]),
    (emb, dim, n_items): (&[f32], usize, usize),
    cold: &Sequences,
    (model, beam, masked, max_history): (&Decoder, usize, bool, usize),
) -> Res<()> {
    let n_all = emb.len() / dim;
    let new: Vec<u32> = (n_items as u32..n_all as u32).collect();
    let report = index.insert(
        &new,
        Embeddings::new(&emb[n_items * dim..], dim)?,
        Par::default(),
    )?;
    let tokens = SidTokens::new(index, model_vocab, n_all)?;
    let ex: Vec<Example<'_>> = (0..cold.len())
        .map(|u| {
            let s = cold.items(u);
            let end = s.len() - 1;
            Example {
                user: u,
                history: &s[end.saturating_sub(max_history)..end],
                target: s[end],
            }
        })
        .collect();
    let (lists, invalid, total, _) = decode_users(model, index, &tokens, &ex, beam, masked)?;
    // With AppendSuffix, a suffix above 0 means the code was taken.
    let shared = new
        .iter()
        .filter(|&&i| {
            index
                .id_of(i)
                .and_then(|id| id.last())
                .is_some_and(|&t| t > 0)
        })
        .count();
    let slots = lists.iter().flatten().count().max(1);
    let to_new = lists
        .iter()
        .flatten()
        .filter(|&&i| i as usize >= n_items)
        .count();
    rows.push(Row {
        method: "generative, new items".into(),
        values: score(&lists, &ex)?,
        train_s: 0.0,
        users_per_s: ex.len() as f64 / total.as_secs_f64(),
        invalid_ids: invalid,
        note: format!(
            "{} users whose test item is new; {} new items inserted ({} IDs shared a code); {:.1}% of top-10 slots are new items",
            ex.len(),
            report.added,
            shared,
            100.0 * to_new as f64 / slots as f64
        ),
    });
    let t0 = Instant::now();
    let lists = knn(emb, dim, &ex);
    rows.push(Row {
        method: "last-item kNN, new items".into(),
        values: score(&lists, &ex)?,
        train_s: 0.0,
        users_per_s: ex.len() as f64 / t0.elapsed().as_secs_f64(),
        invalid_ids: 0,
        note: "whole catalog, new items included".into(),
    });
    Ok(())
}

/// Last-item kNN: for each example, the 10 items of `emb` nearest to its
/// last history item (itself excluded; ties by item id).
fn knn(emb: &[f32], dim: usize, ex: &[Example<'_>]) -> Vec<Vec<u32>> {
    let n = emb.len() / dim;
    ex.iter()
        .map(|e| {
            let last = *e.history.last().expect("history holds ≥ 1 item") as usize;
            let q = &emb[last * dim..(last + 1) * dim];
            let mut d: Vec<(f32, u32)> = (0..n)
                .filter(|&j| j != last)
                .map(|j| {
                    (
                        semid::kernels::l2_sq(q, &emb[j * dim..(j + 1) * dim]),
                        j as u32,
                    )
                })
                .collect();
            let nth = 9.min(d.len() - 1);
            d.select_nth_unstable_by(nth, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            d.truncate(10);
            d.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            d.into_iter().map(|p| p.1).collect()
        })
        .collect()
}

/// Holds `n_new` items (chosen in a seeded order) out of the catalog for
/// the new-item test: they take the last ids, `n - n_new ..`, and their
/// embedding rows move with them. Returns the relabelled embeddings, the
/// sequences without the held-out items (users left with fewer than 3
/// items dropped), and the relabelled full sequences of the users whose
/// last item is held out.
fn hold_out(
    emb: Vec<f32>,
    dim: usize,
    seqs: Sequences,
    n_new: usize,
    seed: u64,
) -> Res<(Vec<f32>, Sequences, Sequences)> {
    if n_new == 0 {
        return Ok((emb, seqs, Sequences::new()));
    }
    let n = emb.len() / dim;
    let mut held = vec![false; n];
    for i in shuffled(n, seed ^ 0x6e65_7769).into_iter().take(n_new) {
        held[i] = true;
    }
    // Kept items first (in their order), then the held-out ones.
    let order: Vec<usize> = (0..n)
        .filter(|&i| !held[i])
        .chain((0..n).filter(|&i| held[i]))
        .collect();
    let mut new_id = vec![0u32; n];
    for (to, &from) in order.iter().enumerate() {
        new_id[from] = to as u32;
    }
    let out: Vec<f32> = order
        .iter()
        .flat_map(|&i| emb[i * dim..(i + 1) * dim].iter().copied())
        .collect();
    let (mut warm, mut cold) = (Sequences::new(), Sequences::new());
    let mut dropped = 0;
    for u in 0..seqs.len() {
        let items: Vec<u32> = seqs.items(u).iter().map(|&i| new_id[i as usize]).collect();
        let kept: Vec<u32> = seqs
            .items(u)
            .iter()
            .filter(|&&i| !held[i as usize])
            .map(|&i| new_id[i as usize])
            .collect();
        if kept.len() >= semid::seq::MIN_INTERACTIONS {
            warm.push(seqs.user(u), &kept);
        } else {
            dropped += 1;
        }
        if items.len() >= 2 && held[*seqs.items(u).last().expect("non-empty") as usize] {
            cold.push(seqs.user(u), &items);
        }
    }
    println!(
        "new   {n_new} items held out of the catalog and the training data ({dropped} users left with < {} items dropped); {} users whose last item is one of them",
        semid::seq::MIN_INTERACTIONS,
        cold.len()
    );
    Ok((out, warm, cold))
}

/// Trains `model` for `epochs` (batches of 32 in a seeded order), scoring
/// every epoch with `validate` (higher is better) and keeping the best.
/// Returns the training seconds (validation excluded) and the best epoch.
fn train(
    model: &Decoder,
    seqs: &[(Vec<u32>, Vec<u32>)],
    (epochs, lr, dropout): (usize, f64, f32),
    seed: u64,
    mask: Option<MaskFn<'_>>,
    mut validate: impl FnMut(&Decoder) -> Res<f64>,
) -> Res<(f64, usize)> {
    let mut trainer = Trainer::new(model, lr, dropout, seed)?;
    let (mut best, mut best_epoch, mut snap) = (f64::NEG_INFINITY, 0, model.snapshot()?);
    let mut secs = 0.0;
    for epoch in 0..epochs {
        let t0 = Instant::now();
        let mut loss = 0.0;
        let mut steps = 0;
        let all = batches(seqs, seed ^ (epoch as u64 + 1));
        let per_epoch = all.len();
        for (b, chunk) in all.into_iter().enumerate() {
            // Linear decay to 0 over the whole run.
            let done = (epoch * per_epoch + b) as f64 / (epochs * per_epoch) as f64;
            trainer.set_lr(lr * (1.0 - done));
            let batch: Vec<&[u32]> = chunk.iter().map(|&i| seqs[i].0.as_slice()).collect();
            let items: Vec<&[u32]> = chunk.iter().map(|&i| seqs[i].1.as_slice()).collect();
            let allowed = mask.as_ref().map(|m| m(&batch, &items, model.shape.vocab));
            loss += trainer.step(model, &batch, &items, allowed)? as f64;
            steps += 1;
        }
        secs += t0.elapsed().as_secs_f64();
        let v = validate(model)?;
        println!(
            "  epoch {epoch:>2}: loss {:.4}, valid NDCG@10 {v:.4}",
            loss / steps as f64
        );
        if v > best {
            (best, best_epoch, snap) = (v, epoch, model.snapshot()?);
        }
    }
    model.restore(&snap)?;
    Ok((secs, best_epoch))
}

/// Batches of 32 sequences in a seeded order: a seeded shuffle, cut into
/// pools of 16 batches whose sequences are sorted by length (less padding),
/// then the batches in a seeded order.
fn batches(seqs: &[(Vec<u32>, Vec<u32>)], seed: u64) -> Vec<Vec<usize>> {
    const BATCH: usize = 32;
    let order = shuffled(seqs.len(), seed);
    let mut out: Vec<Vec<usize>> = Vec::new();
    for pool in order.chunks(BATCH * 16) {
        let mut pool = pool.to_vec();
        pool.sort_by_key(|&i| (seqs[i].0.len(), i));
        out.extend(pool.chunks(BATCH).map(<[usize]>::to_vec));
    }
    let turn = shuffled(out.len(), seed.rotate_left(17));
    turn.into_iter()
        .map(|b| std::mem::take(&mut out[b]))
        .collect()
}

/// `0..n` in a seeded order.
fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let keys = semid::synthetic::integers(n, u32::MAX, seed);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (keys[i], i));
    order
}

/// How items become model tokens: level `l` token `c` is
/// `offsets[l] + c`; one BOS token follows all levels.
struct SidTokens {
    offsets: Vec<u32>,
    vocab: Vec<usize>,
    ids: Vec<u16>,
    bos: u32,
}

impl SidTokens {
    /// `model_vocab`: the model's tokens per level (at least the trie's).
    fn new(index: &SemanticIndex, model_vocab: &[usize], n_items: usize) -> Res<SidTokens> {
        let vocab = index.trie().vocab();
        if vocab.len() != model_vocab.len() || vocab.iter().zip(model_vocab).any(|(v, m)| v > m) {
            return Err(
                format!("ID vocabulary {vocab:?} outgrew the model's {model_vocab:?}").into(),
            );
        }
        let mut offsets = Vec::with_capacity(vocab.len());
        let mut acc = 0u32;
        for &v in model_vocab {
            offsets.push(acc);
            acc += v as u32;
        }
        let mut ids = Vec::with_capacity(n_items * vocab.len());
        for i in 0..n_items as u32 {
            ids.extend_from_slice(index.id_of(i).ok_or("an item without an ID")?);
        }
        Ok(SidTokens {
            offsets,
            vocab: vocab.to_vec(),
            ids,
            bos: acc,
        })
    }

    /// BOS, then every item's ID tokens.
    fn sequence(&self, items: &[u32]) -> Vec<u32> {
        let l = self.vocab.len();
        let mut out = vec![self.bos];
        for &i in items {
            let id = &self.ids[i as usize * l..(i as usize + 1) * l];
            out.extend(id.iter().zip(&self.offsets).map(|(&t, &o)| o + t as u32));
        }
        out
    }
}

/// The generative model as a [`Scorer`] for a batch of users whose
/// histories have the same length, with a KV cache: the histories are
/// encoded once (level 0); each later level reorders the cache by
/// `Beams::parents` and feeds one token per beam.
struct SidScorer<'a> {
    model: &'a Decoder,
    tokens: &'a SidTokens,
    /// Each user's BOS + history tokens, all of one length (the query side,
    /// held by the scorer, not by `Beams`).
    histories: Vec<Vec<u32>>,
    /// Each user's history items (for their content embeddings).
    items: Vec<&'a [u32]>,
    cache: Cache,
    model_time: Duration,
}

impl Scorer for SidScorer<'_> {
    fn score(&mut self, beams: &Beams<'_>, out: &mut Vec<f32>) -> semid::Result<()> {
        let t0 = Instant::now();
        let r = self.step(beams, out);
        self.model_time += t0.elapsed();
        r.map_err(|e| semid::Error::InvalidConfig {
            field: "model",
            reason: e.to_string(),
        })
    }
}

impl SidScorer<'_> {
    fn step(&mut self, beams: &Beams<'_>, out: &mut Vec<f32>) -> candle_core::Result<()> {
        let level = beams.level;
        let (off, v) = (
            self.tokens.offsets[level] as usize,
            self.tokens.vocab[level],
        );
        let n = self.histories[0].len();
        let logits = if level == 0 {
            // One beam per query at level 0: the last history position.
            self.cache.clear();
            let refs: Vec<&[u32]> = self.histories.iter().map(Vec::as_slice).collect();
            let inputs = self.model.inputs(&refs, &self.items, 0, n)?;
            let all = self.model.forward(&inputs, 0, &mut self.cache)?;
            all.narrow(1, n - 1, 1)?
        } else {
            Decoder::reorder(&mut self.cache, beams.parents)?;
            // Each beam's sequence: its user's history, then its ID prefix.
            let seqs: Vec<Vec<u32>> = (0..beams.len())
                .map(|b| {
                    let mut s = self.histories[beams.queries[b] as usize].clone();
                    let p = beams.prefix(b).iter().zip(&self.tokens.offsets);
                    s.extend(p.map(|(&t, &o)| o + t as u32));
                    s
                })
                .collect();
            let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
            let start = n + level - 1;
            // Target items are incomplete: no content to read.
            let none: Vec<&[u32]> = vec![&[]; refs.len()];
            let inputs = self.model.inputs(&refs, &none, start, 1)?;
            self.model.forward(&inputs, start, &mut self.cache)?
        };
        let lp = candle_nn::ops::log_softmax(&logits.narrow(2, off, v)?.squeeze(1)?, D::Minus1)?;
        out.extend(lp.flatten_all()?.to_vec1::<f32>()?);
        Ok(())
    }
}
