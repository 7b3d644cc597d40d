//! `semid eval`: a TREC run and qrels to metrics, named as pytrec_eval
//! names them.

use std::path::PathBuf;

use clap::Args;
use semid::metrics::trec::{QuerySet, TextQrels, TextRun, TieBreak, evaluate_text};
use semid::metrics::{EvalOptions, Metric};

use crate::error::{Result, data, usage};
use crate::input::existing_file;

/// `semid eval` flags.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// The run: `query Q0 item rank score tag` lines (TREC; `semid search
    /// --format trec` writes them) or `query item score`.
    #[arg(long)]
    run: PathBuf,
    /// Judgments: `query 0 item grade` lines (TREC qrels) or `query item
    /// grade`.
    #[arg(long)]
    qrels: PathBuf,
    /// Metrics, comma-separated, in pytrec_eval's names (`ndcg_cut_10`,
    /// `recall_10`, `P_10`, `success_10`, `recip_rank`) or semid's
    /// (`ndcg@10`, `recall@10`, `precision@10`, `hit@10`, `mrr@10`).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "ndcg_cut_10,recall_10,P_10,recip_rank"
    )]
    metrics: Vec<String>,
    /// Smallest grade that counts as relevant (trec_eval -l).
    #[arg(long, default_value_t = 1)]
    relevance_level: u32,
    /// Average over every query of the qrels, a query missing from the run
    /// scoring 0 (trec_eval -c); default: queries in both, as pytrec_eval.
    #[arg(long)]
    all_qrels: bool,
    /// Print every query's values too.
    #[arg(long)]
    per_query: bool,
    /// Print as JSON (pytrec_eval's dict shape per query, plus "all").
    #[arg(long)]
    json: bool,
}

/// A metric as asked for, with the name it is printed under.
fn parse_metric(s: &str, longest_run: usize) -> Result<(String, Metric)> {
    let s = s.trim();
    let cut = |prefix: &str| {
        s.strip_prefix(prefix)
            .and_then(|k| k.parse::<usize>().ok())
            .filter(|&k| k > 0)
    };
    let m = if s == "recip_rank" {
        // Reciprocal rank over the whole ranked list, as trec_eval.
        Some(Metric::Mrr(longest_run.max(1)))
    } else if let Some(k) = cut("ndcg_cut_") {
        Some(Metric::Ndcg(k))
    } else if let Some(k) = cut("recall_") {
        Some(Metric::Recall(k))
    } else if let Some(k) = cut("P_") {
        Some(Metric::Precision(k))
    } else {
        cut("success_").map(Metric::Hit)
    };
    match m {
        Some(m) => Ok((s.to_string(), m)),
        None => {
            let m: Metric = s.parse().map_err(|_| {
                usage(format!(
                    "unknown metric `{s}`: use ndcg_cut_K, recall_K, P_K, success_K, recip_rank \
                     (pytrec_eval) or ndcg@K, recall@K, precision@K, hit@K, mrr@K"
                ))
            })?;
            Ok((pytrec_name(m), m))
        }
    }
}

/// pytrec_eval's name of a metric (`mrr@K` has none: it keeps semid's).
fn pytrec_name(m: Metric) -> String {
    match m {
        Metric::Ndcg(k) => format!("ndcg_cut_{k}"),
        Metric::Recall(k) => format!("recall_{k}"),
        Metric::Precision(k) => format!("P_{k}"),
        Metric::Hit(k) => format!("success_{k}"),
        m => m.to_string(),
    }
}

fn read(path: &PathBuf, what: &str) -> Result<String> {
    existing_file(path, what)?;
    std::fs::read_to_string(path).map_err(|e| data(format!("{}: {e}", path.display())))
}

/// Runs `semid eval`.
pub fn run(a: &EvalArgs) -> Result<()> {
    let run_text = read(&a.run, "run")?;
    let qrels_text = read(&a.qrels, "qrels")?;
    let run = TextRun::parse(&run_text).map_err(|e| data(format!("{}: {e}", a.run.display())))?;
    let qrels =
        TextQrels::parse(&qrels_text).map_err(|e| data(format!("{}: {e}", a.qrels.display())))?;
    let longest = run.longest_list();
    let named: Vec<(String, Metric)> = a
        .metrics
        .iter()
        .map(|s| parse_metric(s, longest))
        .collect::<Result<_>>()?;
    let metrics: Vec<Metric> = named.iter().map(|(_, m)| *m).collect();
    let opts = EvalOptions {
        relevance_level: a.relevance_level,
        ..EvalOptions::default()
    };
    let queries = if a.all_qrels {
        QuerySet::Qrels
    } else {
        QuerySet::Both
    };
    let ev =
        evaluate_text(&run, &qrels, &metrics, TieBreak::ItemDesc, queries, &opts).map_err(|e| {
            data(format!(
                "{} with {}: {e}",
                a.run.display(),
                a.qrels.display()
            ))
        })?;
    let m = metrics.len();
    if a.json {
        let mut all = serde_json::Map::new();
        for (j, (name, _)) in named.iter().enumerate() {
            all.insert(name.clone(), serde_json::json!(ev.eval.mean[j]));
        }
        let mut v = serde_json::Map::new();
        if a.per_query {
            for (i, q) in ev.queries.iter().enumerate() {
                let mut row = serde_json::Map::new();
                for (j, (name, _)) in named.iter().enumerate() {
                    row.insert(
                        name.clone(),
                        serde_json::json!(ev.eval.per_query[i * m + j]),
                    );
                }
                v.insert(q.clone(), serde_json::Value::Object(row));
            }
        }
        v.insert("all".to_string(), serde_json::Value::Object(all));
        println!("{}", serde_json::to_string_pretty(&v).expect("JSON"));
        return Ok(());
    }
    if a.per_query {
        for (i, q) in ev.queries.iter().enumerate() {
            for (j, (name, _)) in named.iter().enumerate() {
                println!("{name:<16}\t{q}\t{:.4}", ev.eval.per_query[i * m + j]);
            }
        }
    }
    println!("{:<16}\tall\t{}", "num_q", ev.eval.n_included);
    for (j, (name, _)) in named.iter().enumerate() {
        println!("{name:<16}\tall\t{:.4}", ev.eval.mean[j]);
    }
    Ok(())
}
