//! `evaluate`: retrieval metrics over pytrec_eval's dict shapes.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use semid::metrics::trec::{QuerySet, TextQrels, TextRun, TieBreak, evaluate_text};
use semid::metrics::{EvalOptions, Metric};

use crate::OrPy;

/// trec_eval's default cut-offs of a measure family given without one.
const CUTS: [usize; 9] = [5, 10, 15, 20, 30, 100, 200, 500, 1000];
const SUCCESS_CUTS: [usize; 3] = [1, 5, 10];

/// One requested measure: the key it is reported under and what it is.
/// `None` as K means "the whole ranking".
fn parse_measure(name: &str, out: &mut Vec<(String, Metric, bool)>) -> PyResult<()> {
    let bad = || {
        PyValueError::new_err(format!(
            "measure {name:?} is not supported; use pytrec_eval names (recall.10 or recall_10, \
             P_10, ndcg_cut_10, success_10, recip_rank, ndcg, or a family: recall, P, ndcg_cut, \
             success) or semid names (recall@10, precision@10, ndcg@10, mrr@10, hit@10)"
        ))
    };
    if name.contains('@') {
        let m: Metric = name.parse().or_py()?;
        out.push((name.to_string(), m, false));
        return Ok(());
    }
    let (family, cuts): (&str, Option<&str>) = if let Some(rest) = name.strip_prefix("ndcg_cut") {
        ("ndcg_cut", rest.strip_prefix(['.', '_']).or(Some(rest)))
    } else if name == "recip_rank" {
        (name, None)
    } else {
        match name.find(['.', '_']) {
            Some(i) => (&name[..i], Some(&name[i + 1..])),
            None => (name, None),
        }
    };
    let make: fn(usize) -> Metric = match family {
        "recall" => Metric::Recall,
        "P" => Metric::Precision,
        "ndcg_cut" => Metric::Ndcg,
        "success" => Metric::Hit,
        "recip_rank" => {
            out.push(("recip_rank".into(), Metric::Mrr(1), true));
            return Ok(());
        }
        "ndcg" => {
            out.push(("ndcg".into(), Metric::Ndcg(1), true));
            return Ok(());
        }
        _ => return Err(bad()),
    };
    let ks: Vec<usize> = match cuts {
        None | Some("") if family == "success" => SUCCESS_CUTS.to_vec(),
        None | Some("") => CUTS.to_vec(),
        Some(c) => c
            .split(',')
            .map(|k| k.trim().parse::<usize>().ok().filter(|&k| k > 0))
            .collect::<Option<_>>()
            .ok_or_else(bad)?,
    };
    for k in ks {
        out.push((format!("{family}_{k}"), make(k), false));
    }
    Ok(())
}

/// `{query: {item: value}}` as `(query, item, value)` triples; `longest`
/// grows to the largest inner dict.
fn flatten<T>(
    d: &Bound<'_, PyDict>,
    what: &str,
    value: &str,
    longest: &mut usize,
    mut extract: impl FnMut(&str, &str, &Bound<'_, PyAny>) -> PyResult<T>,
) -> PyResult<Vec<(String, String, T)>> {
    let mut out = Vec::new();
    for (q, items) in d.iter() {
        let q: String = q.extract()?;
        let items = items.cast::<PyDict>().map_err(|_| {
            PyValueError::new_err(format!("{what}[{q:?}] must be a dict {{item: {value}}}"))
        })?;
        *longest = (*longest).max(items.len());
        for (it, v) in items.iter() {
            let it: String = it.extract()?;
            let v = extract(&q, &it, &v)?;
            out.push((q.clone(), it, v));
        }
    }
    Ok(out)
}

/// Per-query retrieval metrics, with pytrec_eval's inputs and outputs.
///
/// `run`: {query: {item: score}}; `qrels`: {query: {item: grade}} with
/// grades ≥ 0 (an item is relevant from grade 1). `measures`: pytrec_eval
/// names (`"recall.10"`, `"recall_10"`, `"P_5"`, `"ndcg_cut_10"`,
/// `"success_1"`, `"recip_rank"`, `"ndcg"`, families such as `"recall"`)
/// or semid names (`"recall@10"`, `"ndcg@10"`, `"mrr@10"`, `"hit@10"`).
/// Returns {query: {measure: value}} with pytrec_eval's keys. As in
/// pytrec_eval, score ties rank the larger item ID (as a string) first and
/// only queries in both run and qrels are evaluated; `queries="qrels"`
/// evaluates every qrels query instead (missing ones score 0), and
/// `tie_break="item_asc"` breaks ties the other way.
#[pyfunction]
#[pyo3(signature = (run, qrels, measures, *, queries="both", tie_break="item_desc"))]
fn evaluate<'py>(
    py: Python<'py>,
    run: &Bound<'py, PyDict>,
    qrels: &Bound<'py, PyDict>,
    measures: &Bound<'py, PyAny>,
    queries: &str,
    tie_break: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let qs = match queries {
        "both" => QuerySet::Both,
        "qrels" => QuerySet::Qrels,
        o => {
            return Err(PyValueError::new_err(format!(
                "queries is {o:?}; use \"both\" (pytrec_eval) or \"qrels\""
            )));
        }
    };
    let tb = match tie_break {
        "item_desc" => TieBreak::ItemDesc,
        "item_asc" => TieBreak::ItemAsc,
        o => {
            return Err(PyValueError::new_err(format!(
                "tie_break is {o:?}; use \"item_desc\" (trec_eval) or \"item_asc\""
            )));
        }
    };
    // A set, list or tuple of names, or one name.
    let measures: Vec<String> = if let Ok(one) = measures.extract::<String>() {
        vec![one]
    } else {
        measures
            .try_iter()?
            .map(|m| m.and_then(|m| m.extract::<String>()))
            .collect::<PyResult<_>>()?
    };
    if measures.is_empty() {
        return Err(PyValueError::new_err(
            "measures is empty; ask for at least one",
        ));
    }
    let mut longest = 1usize;
    let triples = flatten(run, "run", "score", &mut longest, |_, _, s| {
        s.extract::<f64>()
    })?;
    let run = TextRun::from_triples(triples).or_py()?;
    let judged = flatten(qrels, "qrels", "grade", &mut longest, |q, it, g| {
        let g: i64 = g.extract()?;
        u32::try_from(g).map_err(|_| {
            PyValueError::new_err(format!(
                "qrels[{q:?}][{it:?}] is {g}; grades must be in 0..2^32 (use 0 for not relevant)"
            ))
        })
    })?;
    let qrels = TextQrels::from_triples(judged);
    let mut wanted = Vec::new();
    for m in &measures {
        parse_measure(m, &mut wanted)?;
    }
    // Measures over the whole ranking cut at the longest list there is.
    let wanted: Vec<(String, Metric)> = wanted
        .into_iter()
        .map(|(key, m, whole)| {
            let m = match (whole, m) {
                (true, Metric::Mrr(_)) => Metric::Mrr(longest),
                (true, Metric::Ndcg(_)) => Metric::Ndcg(longest),
                (_, m) => m,
            };
            (key, m)
        })
        .collect();
    let mut metrics: Vec<Metric> = Vec::new();
    for (_, m) in &wanted {
        if !metrics.contains(m) {
            metrics.push(*m);
        }
    }
    let e = py
        .detach(|| evaluate_text(&run, &qrels, &metrics, tb, qs, &EvalOptions::default()))
        .or_py()?;
    let out = PyDict::new(py);
    for q in &e.queries {
        let d = PyDict::new(py);
        for (key, m) in &wanted {
            let v = e
                .value(q, *m)
                .ok_or_else(|| PyValueError::new_err(format!("no value for {key}")))?;
            d.set_item(key, v)?;
        }
        out.set_item(q, d)?;
    }
    Ok(out)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(evaluate, m)?)
}
