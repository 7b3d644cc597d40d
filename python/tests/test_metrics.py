import json

import pytest

import semid
from conftest import DATA

CASE = DATA / "metrics_case"


def load():
    run, qrels = {}, {}
    for line in (CASE / "run.tsv").read_text().splitlines():
        q, d, s = line.split()
        run.setdefault(q, {})[d] = float(s)
    for line in (CASE / "qrels.tsv").read_text().splitlines():
        q, d, g = line.split()
        qrels.setdefault(q, {})[d] = int(g)
    return run, qrels


# pytrec_eval name -> name in reference.json
NAMES = {
    "recall_5": "recall@5", "recall_10": "recall@10", "recall_20": "recall@20",
    "ndcg_cut_5": "ndcg@5", "ndcg_cut_10": "ndcg@10", "ndcg_cut_20": "ndcg@20",
    "success_10": "hit@10", "mrr@10": "mrr@10",
}


def test_equals_pytrec_eval_on_the_golden_case():
    ref = json.loads((CASE / "reference.json").read_text())
    run, qrels = load()
    measures = ["recall.5,10,20", "ndcg_cut.5,10,20", "success_10", "mrr@10"]
    got = semid.evaluate(run, qrels, measures)
    want = {q: v["pytrec_eval"] for q, v in ref["per_query"].items() if "pytrec_eval" in v}
    assert set(got) == set(q for q in want if q in run and q in qrels)
    assert len(got) == ref["n_queries_both"]
    for q, values in got.items():
        assert set(values) == set(NAMES)
        for key, v in values.items():
            assert v == pytest.approx(want[q][NAMES[key]], abs=1e-12), (q, key)
    means = ref["mean"]["pytrec_eval(queries in run and qrels)"]
    for key, name in NAMES.items():
        m = sum(v[key] for v in got.values()) / len(got)
        assert m == pytest.approx(means[name], abs=1e-12)


def test_all_qrels_queries_match_the_reference():
    ref = json.loads((CASE / "reference.json").read_text())
    run, qrels = load()
    got = semid.evaluate(run, qrels, ["recall@10", "ndcg@10"], queries="qrels")
    assert len(got) == ref["n_queries_qrels"]
    means = ref["mean"]["ref_trec(all qrels queries)"]
    for key in ("recall@10", "ndcg@10"):
        m = sum(v[key] for v in got.values()) / len(got)
        assert m == pytest.approx(means[key], abs=1e-12)


def test_against_pytrec_eval_itself_when_installed():
    pytrec_eval = pytest.importorskip("pytrec_eval", reason="pytrec_eval is not installed")
    run, qrels = load()
    measures = {"recall", "P", "ndcg_cut", "success", "recip_rank", "ndcg"}
    want = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    got = semid.evaluate(run, qrels, measures)
    assert set(got) == set(want)
    for q in want:
        for key, v in got[q].items():
            assert v == pytest.approx(want[q][key], abs=1e-12), (q, key)


def test_measure_names():
    run, qrels = load()
    one = semid.evaluate(run, qrels, "recall_10")
    assert set(next(iter(one.values()))) == {"recall_10"}
    fam = semid.evaluate(run, qrels, ("recall", "success", "ndcg_cut.3,7"))
    keys = set(next(iter(fam.values())))
    assert {"recall_5", "recall_1000", "success_1", "success_5", "success_10",
            "ndcg_cut_3", "ndcg_cut_7"} <= keys
    same = semid.evaluate(run, qrels, ["recall.10", "recall@10"])
    for v in same.values():
        assert v["recall_10"] == v["recall@10"]


def test_bad_input():
    run, qrels = load()
    for bad in (["foo_10"], ["recall_0"], ["recall_x"], [], ["ndcg@0"]):
        with pytest.raises(ValueError):
            semid.evaluate(run, qrels, bad)
    with pytest.raises(ValueError, match="not finite"):
        semid.evaluate({"q": {"d": float("nan")}}, qrels, ["recall_10"])
    with pytest.raises(ValueError, match="grades"):
        semid.evaluate(run, {"q0": {"d": -1}}, ["recall_10"])
    with pytest.raises(ValueError):
        semid.evaluate(run, qrels, ["recall_10"], queries="all")
    with pytest.raises(ValueError):
        semid.evaluate({"q": [1, 2]}, qrels, ["recall_10"])
