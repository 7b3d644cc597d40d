//! End-to-end generative recommendation: item embeddings → semantic IDs →
//! a transformer trained on users' SID sequences → trie-constrained beam
//! search → Recall/NDCG on held-out interactions, beside popularity,
//! last-item kNN and a SASRec-style model of the same size.
//!
//! ```text
//! cargo run --release --example genrec                    # built-in data
//! cargo run --release --example genrec -- --inter u.inter --item-emb items.npy --item-ids items.txt
//!     [--users 4000 (built-in)] [--epochs 12] [--lr 3e-3] [--beam 20] [--max-history 20] [--d 64] [--seed 1] [--json]
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
    let json = args.iter().any(|a| a == "--json");
    let (emb, dim, seqs, source) = load(&args)?;
    let n_items = emb.len() / dim;
    let split = LeaveOneOut::new(seqs, max_history)?;
    let users = split.sequences().len();
    println!(
        "data  {users} users, {} interactions, {n_items} items x {dim} ({source})",
        split.sequences().n_interactions()
    );

    // Items → semantic IDs.
    let t0 = Instant::now();
    let x = Embeddings::new(&emb, dim)?;
    let k = 256.min(n_items);
    let (index, _, sids) = SemanticIndex::fit::<RqKMeans>(
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
    let tokens = SidTokens::new(&index, &vocab, n_items)?;

    let targets = |ex: &[Example<'_>]| -> Res<Qrels> {
        let rel: Vec<Vec<u32>> = ex.iter().map(|e| vec![e.target]).collect();
        Ok(Qrels::from_relevant(&rel)?)
    };
    let valid: Vec<Example<'_>> = split.valid().take(500).collect();
    let test: Vec<Example<'_>> = split.test().collect();
    let (valid_q, test_q) = (targets(&valid)?, targets(&test)?);
    let score = |lists: &[Vec<u32>], q: &Qrels| -> Res<[f64; 4]> {
        let e = evaluate(
            &Rankings::from_lists(lists),
            q,
            &METRICS,
            &EvalOptions::default(),
        )?;
        Ok(METRICS.map(|m| e.mean_of(m).unwrap_or(0.0)))
    };
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
        values: score(&lists, &test_q)?,
        train_s: elapsed,
        users_per_s: f64::NAN,
        invalid_ids: 0,
        note: String::new(),
    });

    // Nearest items to the last history item's embedding.
    let t0 = Instant::now();
    let lists: Vec<Vec<u32>> = test
        .iter()
        .map(|e| {
            let last = *e.history.last().expect("history holds ≥ 2 items") as usize;
            let q = &emb[last * dim..(last + 1) * dim];
            let mut d: Vec<(f32, u32)> = (0..n_items)
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
        .collect();
    let elapsed = t0.elapsed().as_secs_f64();
    rows.push(Row {
        method: "last-item kNN".into(),
        values: score(&lists, &test_q)?,
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
        layers: 2,
    };
    let gen_train: Vec<Vec<u32>> = windows(&split, max_history)
        .map(|w| tokens.sequence(w))
        .collect();
    let genm = Decoder::new(gen_shape, seed)?;
    let decode =
        |model: &Decoder, ex: &[Example<'_>]| -> Res<(Vec<Vec<u32>>, usize, Duration, Duration)> {
            let mut bs = BeamSearch::new(beam, 10)?;
            let mut scorer = SidScorer {
                model,
                tokens: &tokens,
                history: Vec::new(),
                cache: Vec::new(),
                model_time: Duration::ZERO,
            };
            let (mut lists, mut invalid) = (Vec::with_capacity(ex.len()), 0);
            let t0 = Instant::now();
            for e in ex {
                scorer.history = tokens.sequence(e.history);
                let hits = index.search(&mut bs, &mut scorer, 1)?;
                let items = hits.query(0).items.to_vec();
                invalid += items.iter().filter(|&&i| i == NO_ITEM).count();
                lists.push(items);
            }
            Ok((lists, invalid, t0.elapsed(), scorer.model_time))
        };
    let (gen_train_s, gen_epoch) = train(&genm, &gen_train, (epochs, lr), seed, |m| {
        let (lists, _, _, _) = decode(m, &valid)?;
        Ok(score(&lists, &valid_q)?[3])
    })?;
    let (lists, invalid, total, model_time) = decode(&genm, &test)?;
    let search_time = total.saturating_sub(model_time);
    rows.push(Row {
        method: format!("generative (SID, beam {beam})"),
        values: score(&lists, &test_q)?,
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
    let sas_train: Vec<Vec<u32>> = windows(&split, max_history)
        .map(|w| std::iter::once(bos).chain(w.iter().copied()).collect())
        .collect();
    let sas = Decoder::new(sas_shape, seed)?;
    let rank = |model: &Decoder, ex: &[Example<'_>]| -> Res<(Vec<Vec<u32>>, f64)> {
        let t0 = Instant::now();
        let mut lists = Vec::with_capacity(ex.len());
        for e in ex {
            let ids: Vec<u32> = std::iter::once(bos)
                .chain(e.history.iter().copied())
                .collect();
            let n = ids.len();
            let (x, m) = model.inputs(&[&ids], 0, n)?;
            let logits = model.forward((&x, &m), 0, &mut Vec::new())?;
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
    let (sas_train_s, sas_epoch) = train(&sas, &sas_train, (epochs, lr), seed, |m| {
        Ok(score(&rank(m, &valid)?.0, &valid_q)?[3])
    })?;
    let (lists, secs) = rank(&sas, &test)?;
    rows.push(Row {
        method: "SASRec-style (item ids)".into(),
        values: score(&lists, &test_q)?,
        train_s: sas_train_s,
        users_per_s: test.len() as f64 / secs,
        invalid_ids: 0,
        note: format!("epoch {sas_epoch}"),
    });

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
    let catalog = MixtureConfig {
        n: 3_000,
        dim: 64,
        topics: 40,
        ..MixtureConfig::default()
    };
    let users = arg(args, "--users").map_or(Ok(4_000), |v| v.parse())?;
    let cfg = SequenceConfig {
        users,
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

/// Trains `model` for `epochs` (batches of 32 in a seeded order), scoring
/// every epoch with `validate` (higher is better) and keeping the best.
/// Returns the training seconds (validation excluded) and the best epoch.
fn train(
    model: &Decoder,
    seqs: &[Vec<u32>],
    (epochs, lr): (usize, f64),
    seed: u64,
    mut validate: impl FnMut(&Decoder) -> Res<f64>,
) -> Res<(f64, usize)> {
    let mut trainer = Trainer::new(model, lr)?;
    let (mut best, mut best_epoch, mut snap) = (f64::NEG_INFINITY, 0, model.snapshot()?);
    let mut secs = 0.0;
    for epoch in 0..epochs {
        let t0 = Instant::now();
        let order = shuffled(seqs.len(), seed ^ (epoch as u64 + 1));
        let mut loss = 0.0;
        let mut steps = 0;
        for chunk in order.chunks(32) {
            let batch: Vec<&[u32]> = chunk.iter().map(|&i| seqs[i].as_slice()).collect();
            loss += trainer.step(model, &batch)? as f64;
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
    fn new(index: &SemanticIndex, vocab: &[usize], n_items: usize) -> Res<SidTokens> {
        let mut offsets = Vec::with_capacity(vocab.len());
        let mut acc = 0u32;
        for &v in vocab {
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

/// The generative model as a [`Scorer`] for one user at a time, with a KV
/// cache: the history is encoded once (level 0); each later level reorders
/// the cache by `Beams::parents` and feeds one token per beam.
struct SidScorer<'a> {
    model: &'a Decoder,
    tokens: &'a SidTokens,
    /// The current user's BOS + history tokens (the query side, held by
    /// the scorer, not by `Beams`).
    history: Vec<u32>,
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
        let logits = if level == 0 {
            self.cache.clear();
            let n = self.history.len();
            let (x, m) = self.model.inputs(&[&self.history], 0, n)?;
            let all = self.model.forward((&x, &m), 0, &mut self.cache)?;
            let last = all.narrow(1, n - 1, 1)?;
            // One beam per query at level 0.
            last.broadcast_as((beams.len(), 1, self.model.shape.vocab))?
                .contiguous()?
        } else {
            Decoder::reorder(&mut self.cache, beams.parents)?;
            // Each beam's sequence: the history, then its ID prefix.
            let seqs: Vec<Vec<u32>> = (0..beams.len())
                .map(|b| {
                    let mut s = self.history.clone();
                    let p = beams.prefix(b).iter().zip(&self.tokens.offsets);
                    s.extend(p.map(|(&t, &o)| o + t as u32));
                    s
                })
                .collect();
            let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
            let start = self.history.len() + level - 1;
            let (x, m) = self.model.inputs(&refs, start, 1)?;
            self.model.forward((&x, &m), start, &mut self.cache)?
        };
        let lp = candle_nn::ops::log_softmax(&logits.narrow(2, off, v)?.squeeze(1)?, D::Minus1)?;
        out.extend(lp.flatten_all()?.to_vec1::<f32>()?);
        Ok(())
    }
}
