#!/usr/bin/env python3
"""What the Python binding adds to encoding: `Quantizer.encode(x)` from
Python against the same Rust `encode_into` timed inside the extension
(same build, same data, interleaved). Prints one JSON line.

usage: encode_overhead.py [DATA.npy] [--rows 100000] [--dim 256] [--runs 7]

Default data: a seeded Gaussian mixture, rows x dim float32. The model is
RQ-KMeans 3 x 256 fitted on it (greedy encoding).
"""
import argparse
import json
import os
import platform
import statistics
import time

import numpy as np

import semid
from semid import _semid


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data", nargs="?")
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--runs", type=int, default=7)
    a = ap.parse_args()
    if a.data:
        x = np.ascontiguousarray(np.load(a.data))
    else:
        rng = np.random.default_rng(0)
        centers = rng.standard_normal((256, a.dim)).astype(np.float32) * 2
        x = centers[rng.integers(0, 256, a.rows)] + rng.standard_normal((a.rows, a.dim), np.float32)
    q, _ = semid.RqKMeans.fit(x, levels=3, k=256, seed=0)
    res = {"bench": "python_encode_overhead", "rows": x.shape[0], "dim": x.shape[1],
           "model": "rq_kmeans 3x256", "runs": a.runs,
           "machine": f"{platform.machine()} {os.cpu_count()}cpu"}
    for dtype in (np.float32, np.float16):
        xd = np.ascontiguousarray(x, dtype=dtype)
        q.encode(xd)
        _semid._time_encode(q, xd, 1)
        py_t, rust_t = [], []
        for r in range(a.runs):
            for side in (("py", "rust") if r % 2 == 0 else ("rust", "py")):
                if side == "py":
                    t0 = time.perf_counter()
                    q.encode(xd)
                    py_t.append(time.perf_counter() - t0)
                else:
                    rust_t.append(_semid._time_encode(q, xd, 1)[0])
        p, rs = statistics.median(py_t), statistics.median(rust_t)
        name = np.dtype(dtype).name
        res[name] = {"python_s": round(p, 4), "rust_s": round(rs, 4),
                     "python_vectors_per_s": round(len(x) / p),
                     "overhead_pct": round(100 * (p - rs) / rs, 2)}
    print(json.dumps(res))


if __name__ == "__main__":
    main()
