#!/usr/bin/env python3
"""Paired-bootstrap 95% intervals of NDCG@10 differences between genrec's methods.

usage: bootstrap.py LISTS.jsonl [--against NAME] [--recbole NAME=TOPK.npz ...]

LISTS.jsonl is what `genrec --lists LISTS.jsonl` writes. Users are resampled 2,000
times (seed 0), as ../shared/peers/ml100k/summarize.py does.

--recbole adds a RecBole run's per-user top-10 lists (the .npz that
../shared/peers/ml100k/run_recbole.py writes under $ML100K_DIR/work/topk/), paired
with genrec's users by user id; every user's target must agree.
"""
import argparse
import json

import numpy as np


def ndcg10(top, target):
    for r, i in enumerate(top[:10]):
        if i == target:
            return 1.0 / np.log2(r + 2)
    return 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lists")
    ap.add_argument("--against", default="SASRec")
    ap.add_argument("--recbole", action="append", default=[], metavar="NAME=TOPK.npz")
    a = ap.parse_args()
    rows = [json.loads(l) for l in open(a.lists)]
    per = {}
    for r in rows:
        per[r["method"]] = np.array([ndcg10(t, g) for t, g in zip(r["top10"], r["targets"])])
    users, targets = rows[0]["users"], rows[0]["targets"]
    for spec in a.recbole:
        name, path = spec.split("=", 1)
        z = np.load(path)
        at = {str(u): i for i, u in enumerate(z["users"])}
        missing = [u for u in users if u not in at]
        if missing:
            raise SystemExit(f"{path}: no lists for users {missing[:5]}")
        idx = [at[u] for u in users]
        if not np.array_equal(z["targets"][idx], np.array(targets)):
            raise SystemExit(f"{path}: targets differ from {a.lists}'s; not the same split")
        top = z["top10"][idx]
        per[name] = np.array([ndcg10(list(t), g) for t, g in zip(top, targets)])
    base = per[a.against]
    rng = np.random.default_rng(0)
    n = len(base)
    idx = rng.integers(0, n, size=(2000, n))
    print(f"| method | N@10 | minus {a.against} | 95% interval |")
    print("|---|---|---|---|")
    for name, v in per.items():
        d = v - base
        boots = d[idx].mean(1)
        lo, hi = np.percentile(boots, [2.5, 97.5])
        print(f"| {name} | {v.mean():.4f} | {d.mean():+.4f} | [{lo:+.4f}, {hi:+.4f}] |")


if __name__ == "__main__":
    main()
