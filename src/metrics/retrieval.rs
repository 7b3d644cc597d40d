//! Retrieval metrics: Recall, Precision, NDCG, MRR and Hit at K.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result, invalid};
use crate::par::Par;
use crate::par::for_each_block2;

/// A retrieval metric with its cut-off `K` (≥ 1).
///
/// Rank `i` is the 1-based position in a query's ranking; an item is
/// *relevant* when its grade is ≥ [`EvalOptions::relevance_level`]
/// (default 1). Unjudged items have grade 0.
///
/// - `Recall(k)`: relevant items in the top `k` / relevant items judged
///   (0 when the query has none).
/// - `Precision(k)`: relevant items in the top `k` / `k` (trec_eval's
///   `P_k`: a shorter ranking still divides by `k`).
/// - `Ndcg(k)`: `DCG@k / IDCG@k` with linear gains (the grade) and
///   `1/log2(i + 1)` discounts, as trec_eval's `ndcg_cut_k` and ranx's
///   `ndcg`; IDCG takes the query's judged grades sorted descending; 0 when
///   IDCG is 0.
/// - `Mrr(k)`: `1 / rank` of the first relevant item within the top `k`,
///   else 0.
/// - `Hit(k)`: 1 if a relevant item is in the top `k`, else 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Recall@K.
    Recall(usize),
    /// Precision@K.
    Precision(usize),
    /// NDCG@K (linear gain).
    Ndcg(usize),
    /// MRR@K (reciprocal rank, cut at K).
    Mrr(usize),
    /// Hit@K (success@K).
    Hit(usize),
}

impl Metric {
    /// The cut-off `K`.
    #[must_use]
    pub fn k(self) -> usize {
        match self {
            Metric::Recall(k)
            | Metric::Precision(k)
            | Metric::Ndcg(k)
            | Metric::Mrr(k)
            | Metric::Hit(k) => k,
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, k) = match *self {
            Metric::Recall(k) => ("recall", k),
            Metric::Precision(k) => ("precision", k),
            Metric::Ndcg(k) => ("ndcg", k),
            Metric::Mrr(k) => ("mrr", k),
            Metric::Hit(k) => ("hit", k),
        };
        write!(f, "{name}@{k}")
    }
}

impl FromStr for Metric {
    type Err = Error;
    /// Parses `recall@10`, `precision@5` (or `p@5`), `ndcg@10`, `mrr@10`,
    /// `hit@10`, case-insensitive.
    fn from_str(s: &str) -> Result<Metric> {
        let bad = || {
            invalid(
                "metric",
                format!("`{s}` is not one of recall@K, precision@K, ndcg@K, mrr@K, hit@K"),
            )
        };
        let (name, k) = s.split_once('@').ok_or_else(bad)?;
        let k: usize = k.trim().parse().map_err(|_| bad())?;
        if k == 0 {
            return Err(invalid("metric", format!("`{s}` has K = 0; K must be ≥ 1")));
        }
        Ok(match name.trim().to_ascii_lowercase().as_str() {
            "recall" => Metric::Recall(k),
            "precision" | "p" => Metric::Precision(k),
            "ndcg" => Metric::Ndcg(k),
            "mrr" => Metric::Mrr(k),
            "hit" | "success" => Metric::Hit(k),
            _ => return Err(bad()),
        })
    }
}

/// Graded judgments of a set of queries: for each query, `(item, grade)`
/// pairs (grade 0 = judged not relevant).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Qrels {
    offsets: Vec<usize>,
    items: Vec<u32>,
    grades: Vec<u32>,
}

impl Qrels {
    /// No queries yet.
    #[must_use]
    pub fn new() -> Qrels {
        Qrels {
            offsets: vec![0],
            ..Default::default()
        }
    }

    /// Appends one query's judgments. Errors on an item judged twice.
    pub fn push_query(&mut self, judged: &[(u32, u32)]) -> Result<()> {
        let start = self.items.len();
        let mut v = judged.to_vec();
        v.sort_unstable_by_key(|&(it, _)| it);
        if let Some(w) = v.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(Error::DuplicateItem { item: w[0].0 });
        }
        self.items.extend(v.iter().map(|p| p.0));
        self.grades.extend(v.iter().map(|p| p.1));
        debug_assert_eq!(self.offsets.last(), Some(&start));
        self.offsets.push(self.items.len());
        Ok(())
    }

    /// Judgments from per-query `(item, grade)` lists.
    pub fn from_lists<L: AsRef<[(u32, u32)]>>(lists: &[L]) -> Result<Qrels> {
        let mut q = Qrels::new();
        for l in lists {
            q.push_query(l.as_ref())?;
        }
        Ok(q)
    }

    /// Binary judgments: every listed item has grade 1.
    pub fn from_relevant<L: AsRef<[u32]>>(lists: &[L]) -> Result<Qrels> {
        let mut q = Qrels::new();
        let mut buf = Vec::new();
        for l in lists {
            buf.clear();
            buf.extend(l.as_ref().iter().map(|&it| (it, 1)));
            q.push_query(&buf)?;
        }
        Ok(q)
    }

    /// Number of queries.
    #[must_use]
    pub fn n_queries(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    fn query(&self, q: usize) -> (&[u32], &[u32]) {
        let (lo, hi) = (self.offsets[q], self.offsets[q + 1]);
        (&self.items[lo..hi], &self.grades[lo..hi])
    }
}

/// Ranked item lists, one per query, best first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rankings {
    offsets: Vec<usize>,
    items: Vec<u32>,
}

impl Rankings {
    /// No queries yet.
    #[must_use]
    pub fn new() -> Rankings {
        Rankings {
            offsets: vec![0],
            items: Vec::new(),
        }
    }

    /// Appends one query's ranking (best first; may be empty).
    pub fn push_query(&mut self, ranked: &[u32]) {
        self.items.extend_from_slice(ranked);
        self.offsets.push(self.items.len());
    }

    /// Rankings from per-query lists.
    #[must_use]
    pub fn from_lists<L: AsRef<[u32]>>(lists: &[L]) -> Rankings {
        let mut r = Rankings::new();
        for l in lists {
            r.push_query(l.as_ref());
        }
        r
    }

    /// Number of queries.
    #[must_use]
    pub fn n_queries(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Query `q`'s ranking, best first.
    ///
    /// # Panics
    /// If `q >= n_queries()`.
    #[must_use]
    pub fn query(&self, q: usize) -> &[u32] {
        &self.items[self.offsets[q]..self.offsets[q + 1]]
    }
}

impl From<&crate::hits::Hits> for Rankings {
    fn from(h: &crate::hits::Hits) -> Rankings {
        Rankings {
            offsets: h.offsets().to_vec(),
            items: h.items().to_vec(),
        }
    }
}

/// What to do with queries that have no relevant item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EmptyQueries {
    /// Score them 0 and include them in the mean (trec_eval, pytrec_eval,
    /// ranx).
    #[default]
    Zero,
    /// Leave them out of the mean.
    Skip,
}

/// Options of [`evaluate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EvalOptions {
    /// Smallest grade that counts as relevant (trec_eval `-l`), default 1.
    pub relevance_level: u32,
    /// Queries without a relevant item.
    pub empty_queries: EmptyQueries,
    /// Parallelism over queries (results do not depend on it).
    pub par: Par,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            relevance_level: 1,
            empty_queries: EmptyQueries::Zero,
            par: Par::default(),
        }
    }
}

/// Per-query and mean metric values.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// The metrics, in the order asked.
    pub metrics: Vec<Metric>,
    /// Row-major `n_queries × metrics.len()`.
    pub per_query: Vec<f64>,
    /// Whether each query counts in the mean.
    pub included: Vec<bool>,
    /// Mean over the included queries (0 when none is).
    pub mean: Vec<f64>,
    /// Number of included queries.
    pub n_included: usize,
}

impl Evaluation {
    /// Value of `metric` for query `q`, if that metric was evaluated.
    #[must_use]
    pub fn value(&self, q: usize, metric: Metric) -> Option<f64> {
        let m = self.metrics.iter().position(|&x| x == metric)?;
        self.per_query.get(q * self.metrics.len() + m).copied()
    }

    /// Mean of `metric`, if evaluated.
    #[must_use]
    pub fn mean_of(&self, metric: Metric) -> Option<f64> {
        let m = self.metrics.iter().position(|&x| x == metric)?;
        Some(self.mean[m])
    }
}

const EVAL_BLOCK: usize = 1024;

/// Evaluates `run` against `qrels` (query `i` of one is query `i` of the
/// other). A query missing from the run is an empty ranking (all metrics 0).
/// Items repeated within a ranking are an error when judged (they would be
/// counted twice); unjudged repeats change nothing and are allowed.
///
/// Errors: no metric, a metric with `K = 0`, different query counts, a
/// judged item repeated in a ranking.
///
/// ```
/// use semid::metrics::{EvalOptions, Metric, Qrels, Rankings, evaluate};
/// let run = Rankings::from_lists(&[vec![7, 3, 9], vec![1, 2]]);
/// let qrels = Qrels::from_relevant(&[vec![3], vec![5]])?;
/// let e = evaluate(&run, &qrels, &[Metric::Mrr(10), Metric::Recall(2)], &EvalOptions::default())?;
/// assert_eq!(e.value(0, Metric::Mrr(10)), Some(0.5));
/// assert_eq!(e.mean_of(Metric::Recall(2)), Some(0.5));
/// # Ok::<(), semid::Error>(())
/// ```
pub fn evaluate(
    run: &Rankings,
    qrels: &Qrels,
    metrics: &[Metric],
    opts: &EvalOptions,
) -> Result<Evaluation> {
    if metrics.is_empty() {
        return Err(Error::Empty { what: "metrics" });
    }
    if let Some(m) = metrics.iter().find(|m| m.k() == 0) {
        return Err(invalid("metric", format!("{m:?} has K = 0; K must be ≥ 1")));
    }
    if run.n_queries() != qrels.n_queries() {
        return Err(Error::Shape {
            what: "queries in the run (must match the qrels)",
            expected: qrels.n_queries(),
            got: run.n_queries(),
        });
    }
    let nq = qrels.n_queries();
    let nm = metrics.len();
    let max_k = metrics.iter().map(|m| m.k()).max().unwrap_or(1);
    // 1/log2(i + 2) for 0-based rank i.
    let disc: Vec<f64> = (0..max_k).map(|i| 1.0 / ((i + 2) as f64).log2()).collect();
    let mut per_query = vec![0f64; nq * nm];
    let mut included = vec![true; nq];
    let err = std::sync::Mutex::new(None::<(usize, Error)>);
    for_each_block2(
        opts.par,
        nq,
        EVAL_BLOCK,
        &mut per_query,
        nm,
        &mut included,
        1,
        Scratch::default,
        |s, q0, vals, inc| {
            for (j, (v, inc)) in vals.chunks_exact_mut(nm).zip(inc.iter_mut()).enumerate() {
                let q = q0 + j;
                match one_query(run.query(q), qrels.query(q), metrics, opts, &disc, s) {
                    Ok(has_rel) => {
                        v.copy_from_slice(&s.out);
                        *inc = has_rel || opts.empty_queries == EmptyQueries::Zero;
                    }
                    Err(e) => {
                        let mut g = err.lock().unwrap_or_else(|p| p.into_inner());
                        if g.as_ref().is_none_or(|(qq, _)| q < *qq) {
                            *g = Some((q, e));
                        }
                        return;
                    }
                }
            }
        },
    );
    if let Some((_, e)) = err.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let mut mean = vec![0f64; nm];
    let mut n = 0usize;
    for (v, &inc) in per_query.chunks_exact(nm).zip(&included) {
        if inc {
            n += 1;
            for (m, x) in mean.iter_mut().zip(v) {
                *m += x;
            }
        }
    }
    if n > 0 {
        mean.iter_mut().for_each(|m| *m /= n as f64);
    }
    Ok(Evaluation {
        metrics: metrics.to_vec(),
        per_query,
        included,
        mean,
        n_included: n,
    })
}

#[derive(Default)]
struct Scratch {
    out: Vec<f64>,
    /// Grade of each of the top max_k hits.
    hit_grade: Vec<u32>,
    /// Judged entries already seen in the ranking.
    seen: Vec<bool>,
    ideal: Vec<u32>,
}

/// Computes the metrics of one query into `s.out`; returns whether the query
/// has a relevant item.
fn one_query(
    ranked: &[u32],
    (items, grades): (&[u32], &[u32]),
    metrics: &[Metric],
    opts: &EvalOptions,
    disc: &[f64],
    s: &mut Scratch,
) -> Result<bool> {
    let lvl = opts.relevance_level.max(1);
    let max_k = disc.len();
    let top = &ranked[..ranked.len().min(max_k)];
    s.hit_grade.clear();
    s.seen.clear();
    s.seen.resize(items.len(), false);
    for &it in top {
        let g = match items.binary_search(&it) {
            Ok(p) => {
                if std::mem::replace(&mut s.seen[p], true) {
                    return Err(Error::DuplicateItem { item: it });
                }
                grades[p]
            }
            Err(_) => 0,
        };
        s.hit_grade.push(g);
    }
    let n_rel = grades.iter().filter(|&&g| g >= lvl).count();
    s.out.clear();
    let mut ideal_ready = false;
    for &m in metrics {
        let k = m.k();
        let hits = &s.hit_grade[..s.hit_grade.len().min(k)];
        let v = match m {
            Metric::Recall(_) => {
                if n_rel == 0 {
                    0.0
                } else {
                    hits.iter().filter(|&&g| g >= lvl).count() as f64 / n_rel as f64
                }
            }
            Metric::Precision(_) => hits.iter().filter(|&&g| g >= lvl).count() as f64 / k as f64,
            Metric::Hit(_) => f64::from(u8::from(hits.iter().any(|&g| g >= lvl))),
            Metric::Mrr(_) => hits
                .iter()
                .position(|&g| g >= lvl)
                .map_or(0.0, |p| 1.0 / (p + 1) as f64),
            Metric::Ndcg(_) => {
                if !ideal_ready {
                    s.ideal.clear();
                    s.ideal.extend(grades.iter().copied().filter(|&g| g > 0));
                    s.ideal.sort_unstable_by(|a, b| b.cmp(a));
                    ideal_ready = true;
                }
                let idcg: f64 = s
                    .ideal
                    .iter()
                    .take(k)
                    .zip(disc)
                    .map(|(&g, d)| g as f64 * d)
                    .sum();
                if idcg == 0.0 {
                    0.0
                } else {
                    let dcg: f64 = hits.iter().zip(disc).map(|(&g, d)| g as f64 * d).sum();
                    dcg / idcg
                }
            }
        };
        s.out.push(v);
    }
    Ok(n_rel > 0)
}
