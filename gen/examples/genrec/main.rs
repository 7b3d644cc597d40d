//! End-to-end generative recommendation: item embeddings → semantic IDs →
//! a transformer trained on users' SID sequences → trie-constrained beam
//! search → Recall/NDCG on held-out interactions, beside popularity,
//! last-item kNN and a SASRec model of the same size.
//!
//! ```text
//! cargo run --release -p semid-gen --example genrec                   # built-in data
//! cargo run --release -p semid-gen --example genrec -- --inter u.tsv --item-emb items.npy --item-ids items.txt
//! cargo run --release -p semid-gen --example genrec -- --help         # every flag
//! ```
//!
//! Protocol (TIGER/P5): leave-one-out per user (last item test,
//! second-to-last validation), histories capped at `--max-history` items,
//! full ranking over the catalog; the epoch is picked on validation
//! NDCG@10 and reported on test. See docs/GENREC.md.

use std::time::Instant;

use semid::decode::BeamSearch;
use semid::quantize::{PqConfig, ProductQuantizer};
use semid::seq::{Example, LeaveOneOut, Sequences};
use semid::sid::CollisionPolicy;
use semid::{
    Embeddings, Par, Quantizer, RqKMeans, RqKMeansConfig, RqVae, RqVaeConfig, SemanticIndex,
};
use semid_gen::{
    Arch, Content, EpochReport, ItemModel, ModelConfig, ParallelModel, SidModel, TrainConfig,
    TrainReport,
};

mod args;
mod baselines;
mod data;

use args::Args;
use baselines::{knn, popularity, score};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// One table row.
struct Row {
    method: String,
    values: [f64; 4],
    train_s: f64,
    users_per_s: Option<f64>,
    invalid_ids: usize,
    note: String,
}

fn main() -> std::process::ExitCode {
    keep_freed_memory();
    let args = Args::parse_or_exit("genrec", args::ABOUT, args::FLAGS);
    args::run("genrec", || run(&args))
}

fn run(args: &Args) -> Res<()> {
    let seed: u64 = args.num("--seed")?;
    let model_flag: String = args.num("--model")?;
    let which: Vec<&str> = match model_flag.as_str() {
        "all" => vec!["decoder", "tiger", "rpg", "sasrec"],
        list => list.split(',').collect(),
    };
    if let Some(bad) = which
        .iter()
        .find(|m| !["decoder", "tiger", "rpg", "sasrec"].contains(m))
    {
        return Err(format!(
            "--model {bad:?}: use decoder, tiger, rpg, sasrec (comma-separated) or all"
        )
        .into());
    }
    let model_cfg = ModelConfig {
        arch: Arch::DecoderOnly,
        d: args.num("--d")?,
        heads: args.num("--heads")?,
        layers: args.num("--layers")?,
        d_ff: args.num("--d-ff")?,
        max_history: args.num("--max-history")?,
        renormalize: !args.on("--masked"),
        tied: args.on("--tied"),
        plain: args.on("--plain"),
    };
    let budget: f64 = args.num("--time-budget")?;
    let train_cfg = TrainConfig {
        epochs: args.num("--epochs")?,
        lr: args.num("--lr")?,
        warmup: args.num("--warmup")?,
        weight_decay: args.num("--weight-decay")?,
        dropout: args.num("--dropout")?,
        batch: args.num("--batch")?,
        patience: args.num("--patience")?,
        time_budget: (budget > 0.0).then(|| std::time::Duration::from_secs_f64(budget)),
        stride: args.num("--stride")?,
        seed,
    };
    let (beam, json, quiet) = (args.num("--beam")?, args.on("--json"), args.on("--quiet"));
    let n_new: usize = args.num("--new-items")?;
    let valid_beams = args
        .get("--valid-beams")
        .map(|l| {
            l.split(',')
                .map(|b| {
                    b.parse::<usize>().map_err(|_| {
                        format!("--valid-beams {l:?}: a comma-separated list of beam widths")
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?
        .unwrap_or_default();
    let (emb, dim, seqs, source) = data::load(args)?;
    let n_all = emb.len() / dim;
    if n_new >= n_all {
        return Err(format!("--new-items {n_new}: the catalog has only {n_all} items").into());
    }
    // Held-out items take the last ids; the rest is the catalog.
    let (emb, seqs, cold) = data::hold_out(emb, dim, seqs, n_new, seed)?;
    let n_items = n_all - n_new;
    // Validation and test read at most this many items (the anchors' 20),
    // whatever the model was trained to read.
    let eval_history = args.opt("--eval-history")?.unwrap_or(model_cfg.max_history);
    let split = LeaveOneOut::new(seqs, eval_history)?;
    let users = split.sequences().len();
    println!(
        "data  {users} users, {} interactions, {n_items} items x {dim} ({source})",
        split.sequences().n_interactions()
    );

    // Items → semantic IDs.
    let t0 = Instant::now();
    let x = Embeddings::new(&emb[..n_items * dim], dim)?;
    let k = args.num::<usize>("--codes")?.min(n_items);
    let ids: String = args.num("--ids")?;
    let suffix = CollisionPolicy::AppendSuffix;
    let fit_rq = |cfg: &RqKMeansConfig, policy| {
        SemanticIndex::fit::<RqKMeans>(cfg, x, policy, Par::default()).map(|(i, _, s)| (i, s))
    };
    let (mut index, sids) = match ids.as_str() {
        "rqkmeans" => fit_rq(&RqKMeansConfig::new(3, k).seed(seed), suffix)?,
        "rqkmeans-sinkhorn" => fit_rq(
            &RqKMeansConfig::new(3, k).seed(seed),
            CollisionPolicy::SINKHORN,
        )?,
        "rqkmeans-sizes" => {
            let sizes: Vec<usize> = args
                .num::<String>("--codebook-sizes")?
                .split(',')
                .map(|v| v.trim().parse::<usize>().map(|v| v.min(n_items)))
                .collect::<Result<_, _>>()
                .map_err(|_| "--codebook-sizes: comma-separated sizes, e.g. 512,256,128")?;
            fit_rq(
                &RqKMeansConfig::with_codebook_sizes(&sizes).seed(seed),
                suffix,
            )?
        }
        "rqvae" => SemanticIndex::fit::<RqVae>(
            &RqVaeConfig::new(3, k).seed(seed),
            x,
            suffix,
            Par::default(),
        )
        .map(|(i, _, s)| (i, s))?,
        "rqvae-warm" => {
            let (rq, _) = RqKMeans::fit(&RqKMeansConfig::new(3, k).seed(seed), x)?;
            let mut cfg = RqVaeConfig::new(3, k).seed(seed);
            cfg.latent = dim;
            let (vae, _) = RqVae::fit_warm(&cfg, x, &rq)?;
            SemanticIndex::build(vae, x, suffix, Par::default())?
        }
        "pq" | "opq" => {
            let m: usize = args.num("--ids-m")?;
            let cfg = if ids == "pq" {
                PqConfig::pq(m, k)
            } else {
                PqConfig::opq(m, k)
            };
            SemanticIndex::fit::<ProductQuantizer>(&cfg.seed(seed), x, suffix, Par::default())
                .map(|(i, _, s)| (i, s))?
        }
        other => {
            return Err(format!(
                "--ids {other:?}: use rqkmeans, rqkmeans-sinkhorn, rqkmeans-sizes, rqvae, rqvae-warm, pq or opq"
            )
            .into());
        }
    };
    println!(
        "SIDs  {ids} (k {k}) + suffix: vocab {:?}, at most {} items per code, {:.1} s",
        index.trie().codebook_sizes(),
        sids.max_bucket,
        t0.elapsed().as_secs_f64()
    );

    let n_valid: usize = args.num("--valid-users")?;
    let valid: Vec<Example<'_>> = split
        .valid()
        .take(if n_valid == 0 { usize::MAX } else { n_valid })
        .collect();
    let test: Vec<Example<'_>> = split.test().collect();
    let valid_h: Vec<&[u32]> = valid.iter().map(|e| e.history).collect();
    let test_h: Vec<&[u32]> = test.iter().map(|e| e.history).collect();
    if args.on("--content") && args.on("--no-content") {
        return Err("--content and --no-content contradict each other".into());
    }
    let content = args.on("--content").then_some(Content { rows: &emb, dim });
    let mut rows = Vec::new();

    let t0 = Instant::now();
    let lists = vec![popularity(&split, n_items); test.len()];
    rows.push(Row {
        method: "popularity".into(),
        values: score(&lists, &test)?,
        train_s: t0.elapsed().as_secs_f64(),
        users_per_s: None,
        invalid_ids: 0,
        note: String::new(),
    });

    let t0 = Instant::now();
    let lists = knn(&emb[..n_items * dim], dim, &test);
    rows.push(Row {
        method: "last-item kNN".into(),
        values: score(&lists, &test)?,
        train_s: 0.0,
        users_per_s: Some(test.len() as f64 / t0.elapsed().as_secs_f64()),
        invalid_ids: 0,
        note: String::new(),
    });

    // Validation NDCG@10 of a model's top-10 lists (early stopping).
    let valid_ndcg = |lists: &[Vec<u32>]| -> semid_gen::Result<f64> {
        Ok(score(lists, &valid).map_err(|e| semid_gen::Error::Config {
            field: "validation",
            reason: e.to_string(),
        })?[3])
    };
    let progress = |name: &'static str| {
        move |e: &EpochReport| {
            if !quiet {
                println!(
                    "  {name} epoch {:>2}: loss {:.4}, valid NDCG@10 {:.4}{} ({:.0} s + {:.0} s valid)",
                    e.epoch,
                    e.loss,
                    e.valid,
                    if e.best { " *" } else { "" },
                    e.train_s,
                    e.valid_s
                );
            }
        }
    };
    let note = |r: &TrainReport| {
        format!(
            "best epoch {} of {} ({:?}), valid N@10 {:.4}",
            r.best_epoch,
            r.epochs.len(),
            r.stop,
            r.best_valid
        )
    };

    let mut search = BeamSearch::new(beam, 10)?.renormalize(model_cfg.renormalize);
    // Top-10 lists of every model, for the beyond-accuracy table.
    let mut beyond_rows: Vec<(String, Vec<Vec<u32>>)> = Vec::new();
    let mut genm = None;
    for arch in [Arch::DecoderOnly, Arch::EncoderDecoder] {
        let name = if arch == Arch::DecoderOnly {
            "decoder"
        } else {
            "tiger"
        };
        if !which.contains(&name) {
            continue;
        }
        println!("train generative model ({name}, SIDs, beam {beam})");
        let cfg = ModelConfig {
            arch,
            ..model_cfg.clone()
        };
        let content = if arch == Arch::DecoderOnly {
            content
        } else {
            None
        };
        let m = SidModel::new(&cfg, &index, n_items, n_new, content, seed)?;
        let report = m.train(
            &split,
            index.trie(),
            &train_cfg,
            |m| {
                let (lists, _) = m.recommend(&index, &valid_h, &mut search.clone())?;
                valid_ndcg(&lists)
            },
            progress(name),
        )?;
        for b in &valid_beams {
            let mut s = BeamSearch::new(*b, 10)?.renormalize(model_cfg.renormalize);
            let (lists, _) = m.recommend(&index, &valid_h, &mut s)?;
            println!(
                "  {name} beam {b:>3}: valid NDCG@10 {:.4}",
                score(&lists, &valid)?[3]
            );
        }
        let (lists, st) = m.recommend(&index, &test_h, &mut search)?;
        beyond_rows.push((format!("{name}, beam {beam}"), lists.clone()));
        if arch == Arch::DecoderOnly || !which.contains(&"decoder") {
            // Already-seen items denied, and at most 2 results per first token.
            let seen: Vec<&[u32]> = test
                .iter()
                .map(|e| {
                    let s = split.sequences().items(e.user);
                    &s[..s.len() - 1]
                })
                .collect();
            let deny = semid::decode::ItemLists::deny(&seen);
            let (l, _) = m.recommend_filtered(&index, &test_h, &mut search.clone(), Some(&deny))?;
            beyond_rows.push((format!("{name}, seen items denied"), l));
            let mut capped = search.clone().per_prefix(Some(2))?;
            let (l, _) = m.recommend(&index, &test_h, &mut capped)?;
            beyond_rows.push((format!("{name}, ≤ 2 per first token"), l));
        }
        let search_s = st.total.saturating_sub(st.model).as_secs_f64();
        let per_user = |s: f64| 1e3 * s / test.len() as f64;
        rows.push(Row {
            method: format!("generative {name} (beam {beam})"),
            values: score(&lists, &test)?,
            train_s: report.train_s,
            users_per_s: Some(test.len() as f64 / st.total.as_secs_f64()),
            invalid_ids: st.invalid,
            note: format!(
                "{}; per user: model {:.2} ms, search {:.3} ms ({:.1}%)",
                note(&report),
                per_user(st.model.as_secs_f64()),
                per_user(search_s),
                100.0 * search_s / st.model.as_secs_f64()
            ),
        });
        genm = Some(m);
    }

    if which.contains(&"rpg") {
        let (pm, pk) = (args.num::<usize>("--pq-m")?, args.num::<usize>("--pq-k")?);
        let t0 = Instant::now();
        let rpg_ids: String = args.num("--rpg-ids")?;
        let codes = match rpg_ids.as_str() {
            "pq" => baselines::pq_codes(&emb[..n_items * dim], dim, pm, pk.min(n_items), seed)?,
            "opq" => {
                let cfg = PqConfig::opq(pm, pk.min(n_items)).seed(seed);
                let (q, _) = ProductQuantizer::fit(&cfg, x)?;
                q.encode(x)?.as_slice().to_vec()
            }
            other => return Err(format!("--rpg-ids {other:?}: use pq or opq").into()),
        };
        println!(
            "train RPG-style model ({rpg_ids} IDs {pm}x{}, parallel code prediction; codes {:.1} s)",
            pk.min(n_items),
            t0.elapsed().as_secs_f64()
        );
        let rpg = ParallelModel::new(&model_cfg, &codes, pm, pk.min(n_items), seed)?;
        let report = rpg.train(
            &split,
            &train_cfg,
            |m| valid_ndcg(&m.recommend(&valid_h, 10)?),
            progress("rpg"),
        )?;
        let t0 = Instant::now();
        let lists = rpg.recommend(&test_h, 10)?;
        beyond_rows.push(("RPG-style".into(), lists.clone()));
        rows.push(Row {
            method: format!("RPG-style (PQ {pm}x{pk}, parallel)"),
            values: score(&lists, &test)?,
            train_s: report.train_s,
            users_per_s: Some(test.len() as f64 / t0.elapsed().as_secs_f64()),
            invalid_ids: 0,
            note: note(&report),
        });
    }

    if which.contains(&"sasrec") {
        println!("train SASRec (item ids, full softmax)");
        let sas = ItemModel::new(&model_cfg, n_items, content, seed)?;
        let report = sas.train(
            &split,
            &train_cfg,
            |m| valid_ndcg(&m.recommend(&valid_h, 10)?),
            progress("sasrec"),
        )?;
        let t0 = Instant::now();
        let lists = sas.recommend(&test_h, 10)?;
        beyond_rows.push(("SASRec".into(), lists.clone()));
        rows.push(Row {
            method: "SASRec (item ids)".into(),
            values: score(&lists, &test)?,
            train_s: report.train_s,
            users_per_s: Some(test.len() as f64 / t0.elapsed().as_secs_f64()),
            invalid_ids: 0,
            note: note(&report),
        });
    }

    if let Some(m) = genm.as_mut().filter(|_| !cold.is_empty()) {
        new_items(
            &mut rows,
            (&mut index, m, &mut search),
            (&emb, dim, n_items),
            &cold,
        )?;
    }

    if let Some(path) = args.get("--lists") {
        write_lists(path, &beyond_rows, &test, &split)?;
    }
    if !beyond_rows.is_empty() {
        beyond_table(
            &beyond_rows,
            &test,
            &split,
            (&emb[..n_items * dim], dim),
            json,
        )?;
    }

    println!();
    println!(
        "{:<28} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>8}  note",
        "method", "R@5", "R@10", "N@5", "N@10", "train s", "users/s", "invalid"
    );
    for r in &rows {
        let (m, [r5, r10, n5, n10]) = (&r.method, r.values);
        let (t, bad, note) = (r.train_s, r.invalid_ids, &r.note);
        let u = r.users_per_s.map_or("-".into(), |u| format!("{u:.0}"));
        println!(
            "{m:<28} {r5:>8.4} {r10:>8.4} {n5:>8.4} {n10:>8.4} {t:>9.1} {u:>9} {bad:>8}  {note}"
        );
    }
    if json {
        for r in &rows {
            let (m, [r5, r10, n5, n10]) = (&r.method, r.values);
            let ups = r.users_per_s.map_or("null".into(), |u| format!("{u:.1}"));
            println!(
                "{{\"method\":\"{m}\",\"recall@5\":{r5:.6},\"recall@10\":{r10:.6},\"ndcg@5\":{n5:.6},\"ndcg@10\":{n10:.6},\"train_s\":{:.3},\"users_per_s\":{ups},\"invalid_ids\":{},\"note\":\"{}\"}}",
                r.train_s, r.invalid_ids, r.note
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

/// One JSON line per method: the test users (ids as in the interaction
/// file), their targets (item rows) and the method's top-10 item rows.
fn write_lists(
    path: &str,
    rows: &[(String, Vec<Vec<u32>>)],
    test: &[Example<'_>],
    split: &LeaveOneOut,
) -> Res<()> {
    use std::fmt::Write as _;
    let mut out = String::new();
    let users: Vec<String> = test
        .iter()
        .map(|e| format!("{:?}", split.sequences().user(e.user)))
        .collect();
    let targets: Vec<String> = test.iter().map(|e| e.target.to_string()).collect();
    for (name, lists) in rows {
        let l: Vec<String> = lists.iter().map(|l| format!("{l:?}")).collect();
        writeln!(
            out,
            "{{\"method\":{name:?},\"users\":[{}],\"targets\":[{}],\"top10\":[{}]}}",
            users.join(","),
            targets.join(","),
            l.join(",")
        )?;
    }
    std::fs::write(path, out).map_err(|e| format!("{path}: {e}"))?;
    Ok(())
}

/// Accuracy beside coverage, intra-list diversity, novelty and Gini of
/// each setting's top-10 lists on the test users.
fn beyond_table(
    rows: &[(String, Vec<Vec<u32>>)],
    test: &[Example<'_>],
    split: &LeaveOneOut,
    (emb, dim): (&[f32], usize),
    json: bool,
) -> Res<()> {
    let n_items = emb.len() / dim;
    // Training interactions per item (everything before the validation item).
    let mut counts = vec![0u64; n_items];
    for u in 0..split.sequences().len() {
        let s = split.sequences().items(u);
        for &i in &s[..s.len().saturating_sub(2)] {
            counts[i as usize] += 1;
        }
    }
    println!();
    println!(
        "{:<36} {:>8} {:>8} {:>9} {:>9} {:>8} {:>6}",
        "top-10 of (test users)", "R@10", "N@10", "coverage", "diversity", "novelty", "gini"
    );
    for (name, lists) in rows {
        let acc = score(lists, test)?;
        let b = semid::metrics::beyond_accuracy(
            &semid::metrics::Rankings::from_lists(lists),
            10,
            &counts,
            Some(Embeddings::new(emb, dim)?),
        )?;
        let div = b.diversity.unwrap_or(f64::NAN);
        println!(
            "{name:<36} {:>8.4} {:>8.4} {:>9.4} {div:>9.4} {:>8.3} {:>6.3}",
            acc[1], acc[3], b.coverage, b.novelty, b.gini
        );
        if json {
            println!(
                "{{\"table\":\"beyond\",\"setting\":\"{name}\",\"recall@10\":{:.6},\"ndcg@10\":{:.6},\"coverage@10\":{:.6},\"diversity@10\":{div:.6},\"novelty@10\":{:.6},\"gini@10\":{:.6}}}",
                acc[1], acc[3], b.coverage, b.novelty, b.gini
            );
        }
    }
    Ok(())
}

/// The new-item test: inserts the held-out items into `index` (no
/// retraining), then ranks the `cold` users' last items with the trained
/// generative model, and with last-item kNN over the whole catalog.
fn new_items(
    rows: &mut Vec<Row>,
    (index, model, search): (&mut SemanticIndex, &mut SidModel, &mut BeamSearch),
    (emb, dim, n_items): (&[f32], usize, usize),
    cold: &Sequences,
) -> Res<()> {
    let n_all = emb.len() / dim;
    let new: Vec<u32> = (n_items as u32..n_all as u32).collect();
    let report = index.insert(
        &new,
        Embeddings::new(&emb[n_items * dim..], dim)?,
        Par::default(),
    )?;
    model.sync_ids(index, n_all)?;
    let h = model.config().max_history;
    let ex: Vec<Example<'_>> = (0..cold.len())
        .map(|u| {
            let s = cold.items(u);
            let end = s.len() - 1;
            Example {
                user: u,
                history: &s[end.saturating_sub(h)..end],
                target: s[end],
            }
        })
        .collect();
    let hs: Vec<&[u32]> = ex.iter().map(|e| e.history).collect();
    let (lists, st) = model.recommend(index, &hs, search)?;
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
        users_per_s: Some(ex.len() as f64 / st.total.as_secs_f64()),
        invalid_ids: st.invalid,
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
        users_per_s: Some(ex.len() as f64 / t0.elapsed().as_secs_f64()),
        invalid_ids: 0,
        note: "whole catalog, new items included".into(),
    });
    Ok(())
}
