#!/usr/bin/env python3
"""Paired-bootstrap 95% intervals of NDCG@10 differences between genrec's methods.

usage: bootstrap.py LISTS.jsonl [--against NAME]

LISTS.jsonl is what `genrec --lists LISTS.jsonl` writes. Users are resampled 2,000
times (seed 0), as ../shared/peers/ml100k/summarize.py does. (RecBole's own top-k
dumps are not read yet.)
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
    a = ap.parse_args()
    rows = [json.loads(l) for l in open(a.lists)]
    per = {}
    for r in rows:
        per[r["method"]] = np.array([ndcg10(t, g) for t, g in zip(r["top10"], r["targets"])])
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
