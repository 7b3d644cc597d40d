#!/usr/bin/env python3
"""Golden values for semid::metrics::beyond_accuracy, from a plain numpy twin.

usage: python make_golden.py > golden.txt      (numpy only; version in the output)

Definitions (the same as the Rust doc comments):
- coverage@k: distinct items in the top k of all lists / n_items;
- diversity@k (intra-list diversity): mean over lists with >= 2 items in
  their top k of the mean cosine distance 1 - cos(e_i, e_j) over pairs i < j;
- novelty@k: mean over lists with >= 1 item of the mean self-information
  -log2 p_i of their top-k items, p_i = (count_i + 1) / (sum(count) + n_items);
- gini@k: Gini coefficient of how often each of the n_items items appears
  in the top k of all lists (items never recommended count as 0).
"""
import numpy as np

rng = np.random.default_rng(20261206)
n, d, k = 30, 8, 5
emb = rng.normal(size=(n, d)).astype(np.float32)
pop = rng.integers(0, 50, size=n)
pop[3] = 0
lists = []
for q in range(12):
    m = int(rng.integers(0, 8))
    lists.append([int(x) for x in rng.choice(n, size=m, replace=False)])
lists[0] = []            # an empty list
lists[1] = [7]           # a single item: no pairs
lists[2] = [3, 4, 5]     # item 3 was never interacted with


def coverage():
    seen = {i for l in lists for i in l[:k]}
    return len(seen) / n


def diversity():
    e = emb.astype(np.float64)
    norms = np.linalg.norm(e, axis=1)
    vals = []
    for l in lists:
        top = l[:k]
        if len(top) < 2:
            continue
        pair = [1.0 - e[a] @ e[b] / (norms[a] * norms[b]) for x, a in enumerate(top) for b in top[x + 1:]]
        vals.append(np.mean(pair))
    return float(np.mean(vals))


def novelty():
    p = (pop + 1.0) / (pop.sum() + n)
    vals = [np.mean([-np.log2(p[i]) for i in l[:k]]) for l in lists if len(l[:k]) > 0]
    return float(np.mean(vals))


def gini():
    c = np.zeros(n)
    for l in lists:
        for i in l[:k]:
            c[i] += 1
    c = np.sort(c)
    idx = np.arange(1, n + 1)
    return float(((2 * idx - n - 1) * c).sum() / (n * c.sum()))


print(f"# written by make_golden.py with numpy {np.__version__}")
print(f"n_items {n}")
print(f"dim {d}")
print(f"k {k}")
print("emb " + " ".join(repr(float(x)) for x in emb.reshape(-1)))
print("pop " + " ".join(str(int(x)) for x in pop))
for l in lists:
    print("list " + " ".join(str(i) for i in l))
print(f"coverage {coverage()!r}")
print(f"diversity {diversity()!r}")
print(f"novelty {novelty()!r}")
print(f"gini {gini()!r}")
