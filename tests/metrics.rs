//! Retrieval metrics against pytrec_eval / ranx / the plain reference on
//! the golden case (tests/data/metrics_case), plus conventions and bad
//! input.

use std::collections::{HashMap, HashSet};

use semid::Error;
use semid::metrics::trec::{QuerySet, TextQrels, TextRun, TieBreak, evaluate_text};
use semid::metrics::{EmptyQueries, EvalOptions, Metric, Qrels, Rankings, evaluate};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/metrics_case/");

struct Reference {
    /// (source, query or "-", metric) → value.
    values: HashMap<(String, String, String), f64>,
    tied: HashSet<String>,
}

fn reference() -> Reference {
    let text = std::fs::read_to_string(format!("{DIR}reference.tsv")).unwrap();
    let mut values = HashMap::new();
    let mut tied = HashSet::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f[0] {
            "tied" => {
                tied.insert(f[2].to_string());
            }
            _ => {
                values.insert(
                    (f[1].to_string(), f[2].to_string(), f[3].to_string()),
                    f[4].parse::<f64>().unwrap(),
                );
            }
        }
    }
    Reference { values, tied }
}

fn metrics() -> Vec<Metric> {
    [
        "recall@5",
        "recall@10",
        "recall@20",
        "ndcg@5",
        "ndcg@10",
        "ndcg@20",
        "mrr@10",
        "hit@10",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect()
}

fn load() -> (TextRun, TextQrels) {
    let run = TextRun::parse(&std::fs::read_to_string(format!("{DIR}run.tsv")).unwrap()).unwrap();
    let qrels =
        TextQrels::parse(&std::fs::read_to_string(format!("{DIR}qrels.tsv")).unwrap()).unwrap();
    (run, qrels)
}

/// Checks means and (when `per_query_source` is given) every per-query value.
fn check(mean_source: &str, per_query_source: Option<&str>, tb: TieBreak, qs: QuerySet) {
    let r = reference();
    let (run, qrels) = load();
    let ms = metrics();
    let e = evaluate_text(&run, &qrels, &ms, tb, qs, &EvalOptions::default()).unwrap();
    for m in &ms {
        let want = r.values[&(mean_source.to_string(), "-".to_string(), m.to_string())];
        let got = e.eval.mean_of(*m).unwrap();
        assert!(
            (got - want).abs() < 1e-9,
            "{mean_source} mean {m}: {got} vs {want}"
        );
        if let Some(src) = per_query_source {
            for q in &e.queries {
                let key = (src.to_string(), q.clone(), m.to_string());
                let want = r.values[&key];
                let got = e.value(q, *m).unwrap();
                assert!((got - want).abs() < 1e-9, "{src} {q} {m}: {got} vs {want}");
            }
        }
    }
}

#[test]
fn matches_pytrec_eval_on_queries_in_both() {
    // pytrec_eval evaluates queries present in run and qrels; trec_eval
    // breaks score ties by item ID descending.
    let (run, qrels) = load();
    let e = evaluate_text(
        &run,
        &qrels,
        &metrics(),
        TieBreak::ItemDesc,
        QuerySet::Both,
        &EvalOptions::default(),
    )
    .unwrap();
    assert_eq!(e.queries.len(), 51);
    check(
        "pytrec_eval",
        Some("pytrec_eval"),
        TieBreak::ItemDesc,
        QuerySet::Both,
    );
}

#[test]
fn matches_the_reference_on_all_qrels_queries() {
    check(
        "ref_trec_all",
        Some("ref_trec"),
        TieBreak::ItemDesc,
        QuerySet::Qrels,
    );
    check(
        "ref_id_asc_all",
        Some("ref_id_asc"),
        TieBreak::ItemAsc,
        QuerySet::Qrels,
    );
}

#[test]
fn matches_ranx_where_ranx_is_well_defined() {
    // ranx orders score ties by an unstable argsort (an implementation
    // accident), so compare on the queries without ties; its query set is
    // every qrels query.
    let r = reference();
    let (run, qrels) = load();
    let ms = metrics();
    let e = evaluate_text(
        &run,
        &qrels,
        &ms,
        TieBreak::ItemDesc,
        QuerySet::Qrels,
        &EvalOptions::default(),
    )
    .unwrap();
    assert_eq!(e.queries.len(), 56);
    let mut compared = 0;
    for q in e.queries.iter().filter(|q| !r.tied.contains(*q)) {
        for m in &ms {
            let want = r.values[&("ranx".to_string(), q.clone(), m.to_string())];
            let got = e.value(q, *m).unwrap();
            assert!((got - want).abs() < 1e-9, "ranx {q} {m}: {got} vs {want}");
            compared += 1;
        }
    }
    assert!(compared >= 17 * 8, "{compared}");
}

#[test]
fn conventions_and_bad_input() {
    let opts = EvalOptions::default();
    // Query 0: relevant 3 (grade 2) and 5 (grade 1); query 1: no relevant;
    // query 2: missing from the run (empty ranking).
    let qrels =
        Qrels::from_lists(&[vec![(3, 2), (5, 1), (8, 0)], vec![(4, 0)], vec![(1, 1)]]).unwrap();
    let run = Rankings::from_lists(&[vec![8, 3, 9, 5], vec![4], vec![]]);
    let ms = [
        Metric::Recall(2),
        Metric::Precision(2),
        Metric::Precision(10),
        Metric::Ndcg(4),
        Metric::Mrr(1),
        Metric::Mrr(4),
        Metric::Hit(1),
    ];
    let e = evaluate(&run, &qrels, &ms, &opts).unwrap();
    let v = |q, m| e.value(q, m).unwrap();
    assert_eq!(v(0, Metric::Recall(2)), 0.5);
    assert_eq!(v(0, Metric::Precision(2)), 0.5);
    assert_eq!(v(0, Metric::Precision(10)), 0.2);
    let dcg = 2.0 / 3f64.log2() + 1.0 / 5f64.log2();
    let idcg = 2.0 + 1.0 / 3f64.log2();
    assert!((v(0, Metric::Ndcg(4)) - dcg / idcg).abs() < 1e-15);
    assert_eq!(v(0, Metric::Mrr(1)), 0.0);
    assert_eq!(v(0, Metric::Mrr(4)), 0.5);
    assert_eq!(v(0, Metric::Hit(1)), 0.0);
    for m in ms {
        assert_eq!(v(1, m), 0.0);
        assert_eq!(v(2, m), 0.0);
    }
    assert_eq!(e.n_included, 3);
    let skip = EvalOptions {
        empty_queries: EmptyQueries::Skip,
        ..opts
    };
    let e2 = evaluate(&run, &qrels, &ms, &skip).unwrap();
    assert_eq!(e2.included, vec![true, false, true]);
    assert_eq!(e2.mean_of(Metric::Mrr(4)), Some(0.25));
    // Relevance level 2: only item 3 counts.
    let lvl2 = EvalOptions {
        relevance_level: 2,
        ..opts
    };
    let e3 = evaluate(&run, &qrels, &[Metric::Recall(2)], &lvl2).unwrap();
    assert_eq!(e3.value(0, Metric::Recall(2)), Some(1.0));
    // Thread count does not change anything.
    let seq = EvalOptions {
        par: semid::Par::Seq,
        ..opts
    };
    assert_eq!(evaluate(&run, &qrels, &ms, &seq).unwrap(), e);

    // Bad input.
    assert!(matches!(
        evaluate(&run, &qrels, &[], &opts),
        Err(Error::Empty { .. })
    ));
    assert!(evaluate(&run, &qrels, &[Metric::Recall(0)], &opts).is_err());
    let short = Rankings::from_lists(&[vec![1u32]]);
    assert!(matches!(
        evaluate(&short, &qrels, &ms, &opts),
        Err(Error::Shape { .. })
    ));
    let dup = Rankings::from_lists(&[vec![3, 3], vec![], vec![]]);
    assert!(matches!(
        evaluate(&dup, &qrels, &ms, &opts),
        Err(Error::DuplicateItem { item: 3 })
    ));
    // An unjudged repeat changes nothing and is allowed.
    let rep = Rankings::from_lists(&[vec![9, 9, 3], vec![], vec![]]);
    assert!(evaluate(&rep, &qrels, &ms, &opts).is_ok());
    assert!(Qrels::from_lists(&[vec![(1, 1), (1, 2)]]).is_err());
    assert!("ndcg@0".parse::<Metric>().is_err());
    assert!("foo@3".parse::<Metric>().is_err());
    assert_eq!("P@5".parse::<Metric>().unwrap(), Metric::Precision(5));
    assert!(TextRun::parse("q1 d1").is_err());
    assert!(TextRun::parse("q1 d1 nan").is_err());
    assert!(TextRun::parse("q1 d1 1.0\nq1 d1 2.0").is_err());
    assert!(TextQrels::parse("q1 d1 -1").is_err());
    // TREC six-column run and four-column qrels parse.
    let run = TextRun::parse("q1 Q0 d1 1 2.5 tag\nq1 Q0 d2 2 1.5 tag\n").unwrap();
    let qrels = TextQrels::parse("q1 0 d2 1\n").unwrap();
    let e = evaluate_text(
        &run,
        &qrels,
        &[Metric::Mrr(10)],
        TieBreak::ItemDesc,
        QuerySet::Qrels,
        &opts,
    )
    .unwrap();
    assert_eq!(e.value("q1", Metric::Mrr(10)), Some(0.5));
}

#[test]
fn triples_equal_the_parsed_files() {
    // The dict-of-dicts entry points (used by the Python package) give the
    // same evaluation as the text files they were read from.
    let (run, qrels) = load();
    let split = |line: &str| -> (String, String, String) {
        let f: Vec<&str> = line.split_whitespace().collect();
        (f[0].to_string(), f[1].to_string(), f[2].to_string())
    };
    let run_text = std::fs::read_to_string(format!("{DIR}run.tsv")).unwrap();
    let qrels_text = std::fs::read_to_string(format!("{DIR}qrels.tsv")).unwrap();
    let run2 = TextRun::from_triples(run_text.lines().map(split).map(|(q, i, s)| {
        let s: f64 = s.parse().unwrap();
        (q, i, s)
    }))
    .unwrap();
    let qrels2 = TextQrels::from_triples(qrels_text.lines().map(split).map(|(q, i, g)| {
        let g: u32 = g.parse().unwrap();
        (q, i, g)
    }));
    let ms = metrics();
    let opts = EvalOptions::default();
    for qs in [QuerySet::Both, QuerySet::Qrels] {
        let a = evaluate_text(&run, &qrels, &ms, TieBreak::ItemDesc, qs, &opts).unwrap();
        let b = evaluate_text(&run2, &qrels2, &ms, TieBreak::ItemDesc, qs, &opts).unwrap();
        assert_eq!(a, b);
    }
    assert!(TextRun::from_triples([("q", "d", f64::NAN)]).is_err());
    assert!(TextRun::from_triples([("q", "d", 1.0), ("q", "d", 2.0)]).is_err());
    // A later judgment of the same item wins.
    let q = TextQrels::from_triples([("q", "d", 1), ("q", "d", 0)]);
    let r = TextRun::from_triples([("q", "d", 1.0)]).unwrap();
    let e = evaluate_text(
        &r,
        &q,
        &[Metric::Recall(1)],
        TieBreak::ItemDesc,
        QuerySet::Both,
        &opts,
    )
    .unwrap();
    assert_eq!(e.value("q", Metric::Recall(1)), Some(0.0));
}
