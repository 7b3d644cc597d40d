//! Runs and qrels as text, with string query and item IDs, evaluated the
//! way trec_eval / pytrec_eval or ranx do.

use std::collections::{BTreeMap, HashMap};

use super::retrieval::{EvalOptions, Evaluation, Metric, Qrels, Rankings, evaluate};
use crate::error::{Error, Result, invalid};

/// How scores that tie are ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TieBreak {
    /// Score descending, then item ID descending as a byte string: what
    /// trec_eval (and so pytrec_eval) does.
    #[default]
    ItemDesc,
    /// Score descending, then item ID ascending as a byte string.
    ItemAsc,
}

/// Which queries are evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum QuerySet {
    /// Every query of the qrels; one missing from the run scores 0 (ranx
    /// with `make_comparable=True`). Run-only queries are dropped.
    #[default]
    Qrels,
    /// Only queries present in both the run and the qrels (pytrec_eval).
    Both,
}

/// A parsed run: per query, `(item, score)` pairs.
#[derive(Clone, Debug, Default)]
pub struct TextRun {
    queries: BTreeMap<String, Vec<(String, f64)>>,
}

/// Parsed judgments: per query, `(item, grade)` pairs.
#[derive(Clone, Debug, Default)]
pub struct TextQrels {
    queries: BTreeMap<String, Vec<(String, u32)>>,
}

fn fields(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

impl TextRun {
    /// Parses whitespace-separated lines `query item score` or TREC's
    /// `query Q0 item rank score tag`. Blank lines and `#` comments are
    /// skipped. Errors name the line: wrong field count, a score that is not
    /// a finite number, an item listed twice for a query.
    pub fn parse(text: &str) -> Result<TextRun> {
        let mut queries: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let f = fields(line);
            if f.is_empty() || f[0].starts_with('#') {
                continue;
            }
            let (q, item, score) = match f.len() {
                3 => (f[0], f[1], f[2]),
                6 => (f[0], f[2], f[4]),
                n => return Err(line_err(i, format!("{n} fields; expected 3 or 6"))),
            };
            let s: f64 = score
                .parse()
                .ok()
                .filter(|s: &f64| s.is_finite())
                .ok_or_else(|| line_err(i, format!("score `{score}` is not a finite number")))?;
            queries
                .entry(q.to_string())
                .or_default()
                .push((item.to_string(), s));
        }
        TextRun::checked(queries)
    }

    /// A run from `(query, item, score)` triples (a dict of dicts in
    /// pytrec_eval's shape, flattened). Errors: a score that is not finite,
    /// an item listed twice for a query.
    pub fn from_triples<Q, I>(triples: impl IntoIterator<Item = (Q, I, f64)>) -> Result<TextRun>
    where
        Q: Into<String>,
        I: Into<String>,
    {
        let mut queries: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
        for (q, item, s) in triples {
            let (q, item) = (q.into(), item.into());
            if !s.is_finite() {
                return Err(invalid(
                    "run",
                    format!("query {q} item {item}: score {s} is not finite"),
                ));
            }
            queries.entry(q).or_default().push((item, s));
        }
        TextRun::checked(queries)
    }

    fn checked(queries: BTreeMap<String, Vec<(String, f64)>>) -> Result<TextRun> {
        for (q, v) in &queries {
            let mut names: Vec<&str> = v.iter().map(|p| p.0.as_str()).collect();
            names.sort_unstable();
            if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
                return Err(invalid(
                    "run",
                    format!("query {q} lists item {} twice", w[0]),
                ));
            }
        }
        Ok(TextRun { queries })
    }

    /// Number of queries.
    #[must_use]
    pub fn n_queries(&self) -> usize {
        self.queries.len()
    }

    /// Items in the longest query's list: the cut-off at which MRR@K is
    /// trec_eval's `recip_rank` (the reciprocal rank over the whole list).
    #[must_use]
    pub fn longest_list(&self) -> usize {
        self.queries.values().map(Vec::len).max().unwrap_or(0)
    }
}

impl TextQrels {
    /// Parses lines `query item grade` or TREC's `query 0 item grade`.
    /// Grades are non-negative integers. When an item is judged twice for a
    /// query, the later line wins (as in the Python references, which read
    /// qrels into a dict).
    pub fn parse(text: &str) -> Result<TextQrels> {
        let mut queries: BTreeMap<String, Vec<(String, u32)>> = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let f = fields(line);
            if f.is_empty() || f[0].starts_with('#') {
                continue;
            }
            let (q, item, grade) = match f.len() {
                3 => (f[0], f[1], f[2]),
                4 => (f[0], f[2], f[3]),
                n => return Err(line_err(i, format!("{n} fields; expected 3 or 4"))),
            };
            let g: u32 = grade.parse().map_err(|_| {
                line_err(i, format!("grade `{grade}` is not a non-negative integer"))
            })?;
            queries
                .entry(q.to_string())
                .or_default()
                .push((item.to_string(), g));
        }
        Ok(TextQrels::deduplicated(queries))
    }

    /// Judgments from `(query, item, grade)` triples (pytrec_eval's dict of
    /// dicts, flattened). When an item is judged twice for a query, the
    /// later triple wins.
    pub fn from_triples<Q, I>(triples: impl IntoIterator<Item = (Q, I, u32)>) -> TextQrels
    where
        Q: Into<String>,
        I: Into<String>,
    {
        let mut queries: BTreeMap<String, Vec<(String, u32)>> = BTreeMap::new();
        for (q, item, g) in triples {
            queries.entry(q.into()).or_default().push((item.into(), g));
        }
        TextQrels::deduplicated(queries)
    }

    fn deduplicated(mut queries: BTreeMap<String, Vec<(String, u32)>>) -> TextQrels {
        for v in queries.values_mut() {
            // Stable sort, then keep the last judgment of each item.
            v.sort_by(|a, b| a.0.cmp(&b.0));
            let mut out: Vec<(String, u32)> = Vec::with_capacity(v.len());
            for p in v.drain(..) {
                match out.last_mut() {
                    Some(last) if last.0 == p.0 => *last = p,
                    _ => out.push(p),
                }
            }
            *v = out;
        }
        TextQrels { queries }
    }

    /// Number of queries.
    #[must_use]
    pub fn n_queries(&self) -> usize {
        self.queries.len()
    }
}

fn line_err(i: usize, msg: String) -> Error {
    invalid("line", format!("{}: {msg}", i + 1))
}

/// An [`Evaluation`] with the query names of its rows.
#[derive(Clone, Debug, PartialEq)]
pub struct TextEvaluation {
    /// Query of every row of `eval`.
    pub queries: Vec<String>,
    /// The values.
    pub eval: Evaluation,
}

impl TextEvaluation {
    /// Value of `metric` for the query named `q`.
    #[must_use]
    pub fn value(&self, q: &str, metric: Metric) -> Option<f64> {
        let i = self.queries.iter().position(|x| x == q)?;
        self.eval.value(i, metric)
    }
}

/// Ranks each query's items by score with `tie_break`, aligns queries by
/// name per `queries`, and runs [`evaluate`]. Rows come in query-name
/// order.
pub fn evaluate_text(
    run: &TextRun,
    qrels: &TextQrels,
    metrics: &[Metric],
    tie_break: TieBreak,
    queries: QuerySet,
    opts: &EvalOptions,
) -> Result<TextEvaluation> {
    let mut ids: HashMap<&str, u32> = HashMap::new();
    let names: Vec<&String> = qrels
        .queries
        .keys()
        .filter(|q| queries == QuerySet::Qrels || run.queries.contains_key(*q))
        .collect();
    let mut j = Qrels::new();
    let mut r = Rankings::new();
    let mut judged = Vec::new();
    let mut ranked: Vec<(&str, f64)> = Vec::new();
    let mut list = Vec::new();
    for q in &names {
        judged.clear();
        for (it, g) in &qrels.queries[*q] {
            judged.push((intern(&mut ids, it), *g));
        }
        j.push_query(&judged)?;
        ranked.clear();
        if let Some(v) = run.queries.get(*q) {
            ranked.extend(v.iter().map(|(it, s)| (it.as_str(), *s)));
        }
        ranked.sort_by(|a, b| {
            b.1.total_cmp(&a.1).then_with(|| match tie_break {
                TieBreak::ItemDesc => b.0.as_bytes().cmp(a.0.as_bytes()),
                TieBreak::ItemAsc => a.0.as_bytes().cmp(b.0.as_bytes()),
            })
        });
        list.clear();
        list.extend(ranked.iter().map(|(it, _)| intern(&mut ids, it)));
        r.push_query(&list);
    }
    let eval = evaluate(&r, &j, metrics, opts)?;
    Ok(TextEvaluation {
        queries: names.into_iter().cloned().collect(),
        eval,
    })
}

fn intern<'a>(ids: &mut HashMap<&'a str, u32>, s: &'a str) -> u32 {
    let n = ids.len() as u32;
    *ids.entry(s).or_insert(n)
}
