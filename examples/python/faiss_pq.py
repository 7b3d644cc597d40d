#!/usr/bin/env python3
"""FAISS ProductQuantizer and OPQMatrix + ProductQuantizer on one .npy file,
one JSON line per configuration: train time, MSE, collision rate, per-level
perplexity.  The side-by-side for semid's `ProductQuantizer`
(`cargo run --release --example bench_pq`); extends the FAISS calls of
../shared/peers/faiss_rq.py (read-only there) to PQ and OPQ.

usage: faiss_pq.py DATA.npy [--m 4,16,32] [--nbits 8] [--threads 2]
                   [--opq-iters 50] [--skip-opq] [--skip-pq]

faiss.ProductQuantizer(d, M, nbits): its defaults (cp.niter 25,
max_points_per_centroid 256, seed 1234). OPQ: faiss.OPQMatrix(d, M) with its
defaults (niter 50, niter_pq 4, niter_pq_0 40, max_train_points 65536, a
random rotation to start), then a ProductQuantizer trained on the rotated
rows, as IndexPreTransform(OPQMatrix, IndexPQ) does. MSE is over all rows in
the input space.
"""
import argparse
import json
import os
import subprocess
import time

import numpy as np


def code_stats(codes, k):
    n, m = codes.shape
    perp = []
    for l in range(m):
        c = np.bincount(codes[:, l], minlength=k)
        p = c[c > 0] / n
        perp.append(round(float(np.exp(-(p * np.log(p)).sum())), 2))
    _, inv, cnt = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
    inv = inv.reshape(-1)
    return {"perplexity_mean": round(float(np.mean(perp)), 2),
            "collision_rate": float((cnt[inv] > 1).mean()),
            "max_items_per_code": int(cnt.max())}


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(l.split(":", 1)[1].strip() for l in out.splitlines()
                    if l.startswith("Model name"))
    except (OSError, StopIteration):
        return "unknown"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--m", default="4,16,32")
    ap.add_argument("--nbits", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--opq-iters", type=int, default=50)
    ap.add_argument("--skip-opq", action="store_true")
    ap.add_argument("--skip-pq", action="store_true")
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    import faiss

    faiss.omp_set_num_threads(a.threads)
    x = np.ascontiguousarray(np.load(a.data).astype(np.float32))
    n, d = x.shape
    k = 1 << a.nbits
    for m in [int(v) for v in a.m.split(",")]:
        for kind in (["pq"] if not a.skip_pq else []) + (["opq"] if not a.skip_opq else []):
            t0 = time.perf_counter()
            if kind == "pq":
                pq = faiss.ProductQuantizer(d, m, a.nbits)
                pq.train(x)
                xr = x
            else:
                opq = faiss.OPQMatrix(d, m)
                opq.niter = a.opq_iters
                opq.train(x)
                xr = opq.apply_py(x)
                pq = faiss.ProductQuantizer(d, m, a.nbits)
                pq.train(xr)
            train_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            codes = pq.compute_codes(xr)
            enc_s = time.perf_counter() - t0
            yh = pq.decode(codes)
            xh = opq.reverse_transform(yh) if kind == "opq" else yh
            mse = float(((x.astype(np.float64) - xh) ** 2).sum(1).mean())
            res = {"peer": f"faiss.{'OPQMatrix+' if kind == 'opq' else ''}ProductQuantizer",
                   "faiss": faiss.__version__, "m": m, "k": k, "n": n, "d": d,
                   "threads": a.threads, "cpu": cpu_model(), "train_s": round(train_s, 3),
                   "encode_vps": round(n / enc_s, 1), "mse": round(mse, 6)}
            if kind == "opq":
                res["opq_iters"] = a.opq_iters
            res.update(code_stats(codes.astype(np.int64), k))
            print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
