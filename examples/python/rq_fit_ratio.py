#!/usr/bin/env python3
"""Paired fit-time runs: semid's default RQ-KMeans fit against
faiss.ResidualQuantizer (train_type left at its default, progressive
dimension clustering, greedy) on the same .npy file, alternating the two
so that both see the same machine state.  Prints one JSON line per pair
and a summary with the median ratio and the CPU model.

usage: rq_fit_ratio.py DATA.npy [--levels 3] [--k 256] [--runs 5]
                       [--threads 2] [--bench target/release/examples/bench_rq]
                       [-- extra bench_rq flags]

Needs numpy and faiss-cpu (pip install numpy faiss-cpu); build the bench
first with `cargo build --release --example bench_rq`.
FAISS's side is the same call as ../shared/peers/faiss_rq.py (copied here so
that the repository keeps the comparison it quotes).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return "unknown"
    info = dict(l.split(":", 1) for l in out.splitlines() if ":" in l)
    flags = info.get("Flags", "")
    isa = "avx512f" if "avx512f" in flags else ("avx2" if "avx2" in flags else "")
    return " ".join(
        v.strip() for v in (info.get("Model name", ""), "family " + info.get("CPU family", "").strip(),
                            "model " + info.get("Model", "").strip(), isa) if v.strip())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--levels", type=int, default=3)
    ap.add_argument("--k", type=int, default=256)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bench", default="target/release/examples/bench_rq")
    a, extra = ap.parse_known_args()
    extra = [e for e in extra if e != "--"]
    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    import faiss  # after OMP_NUM_THREADS

    faiss.omp_set_num_threads(a.threads)
    x = np.ascontiguousarray(np.load(a.data).astype(np.float32))
    n, d = x.shape
    nbits = int(np.log2(a.k))
    assert 2 ** nbits == a.k, "--k must be a power of two for FAISS"
    pairs = []
    for r in range(a.runs):
        cmd = [a.bench, "--input", a.data, "--levels", str(a.levels), "--k", str(a.k),
               "--threads", str(a.threads)] + extra
        sem = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        rq = faiss.ResidualQuantizer(d, a.levels, nbits)
        rq.max_beam_size = 1
        t0 = time.perf_counter()
        rq.train(x)
        faiss_s = time.perf_counter() - t0
        codes = rq.compute_codes(x)
        xh = rq.decode(codes)
        faiss_mse = float(((x.astype(np.float64) - xh) ** 2).sum(1).mean())
        c = codes.astype(np.int64)
        packed = np.zeros(n, dtype=np.int64)
        for l in range(a.levels):
            packed = packed * a.k + c[:, l]
        _, inv, cnt = np.unique(packed, return_inverse=True, return_counts=True)
        faiss_coll = float((cnt[inv] > 1).mean())
        p = {"run": r, "semid_fit_s": sem["fit_s"], "faiss_train_s": round(faiss_s, 3),
             "ratio": round(sem["fit_s"] / faiss_s, 3), "semid_mse": sem["mse"],
             "faiss_mse": round(faiss_mse, 6), "semid_collision_rate": sem["collision_rate"],
             "faiss_collision_rate": round(faiss_coll, 6)}
        print(json.dumps(p), flush=True)
        pairs.append(p)
    summary = {"summary": True, "data": a.data, "n": n, "d": d, "levels": a.levels, "k": a.k,
               "threads": a.threads, "cpu": cpu_model(), "runs": a.runs,
               "median_ratio": statistics.median(p["ratio"] for p in pairs),
               "median_semid_fit_s": statistics.median(p["semid_fit_s"] for p in pairs),
               "median_faiss_train_s": statistics.median(p["faiss_train_s"] for p in pairs),
               "extra_flags": extra}
    print(json.dumps(summary))


if __name__ == "__main__":
    sys.exit(main())
