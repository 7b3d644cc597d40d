#!/usr/bin/env python3
"""Encode item embeddings into semantic-ID codes on Ray Data with semid.

usage: ray_encode.py --input EMB.parquet --model MODEL.semid --output CODES.parquet
                     [--workers 2] [--batch 8192] [--codes list|packed]
       ray_encode.py --demo [DATA.npy] [--rows N] [--check] [--floor N]

The Parquet layouts are spark_encode.py's (an `item` column and an
`embedding` column: a list of float32 per row, or the float32 values as
bytes; the output has `item` and `codes`, or `sid` packed in one int64).
Every worker is an actor that loads the model once from its bytes and
encodes whole Arrow batches with `Quantizer.encode` (`map_batches`, the GIL
released inside): the codes are bit-identical to one `q.encode` call over
all rows, whatever the batching (`python/tests/test_ray.py`).

--demo writes DATA.npy (default: a seeded Gaussian mixture of --rows rows)
as Parquet, fits RQ-KMeans 3 x 256, encodes it with Ray Data and once in
this process, checks the codes are identical (--check fails otherwise) and
prints one JSON line with rows/s of both; --floor N first runs the same job
N times with zeros in place of the encoder (Ray's own floor).
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import semid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import spark_encode as arrow_io  # noqa: E402  (the Arrow helpers; no Spark needed)


class Encoder:
    """A Ray Data actor: the model is loaded once per worker."""

    def __init__(self, model_bytes: bytes, layout: str = "list", identity: bool = False):
        self.q = semid.Quantizer.from_bytes(model_bytes)
        self.layout = layout
        self.identity = identity

    def __call__(self, batch: pa.Table) -> pa.Table:
        if self.identity:
            codes = np.zeros((batch.num_rows, self.q.levels), np.uint16)
        else:
            x = arrow_io.embeddings_to_numpy(batch.column("embedding"))
            # One thread per actor: Ray runs one actor per core.
            codes = self.q.encode(x, threads=1)
        items = batch.column("item").combine_chunks()
        return pa.Table.from_batches([arrow_io.codes_to_arrow(items, codes, self.layout)])


def start(workers: int):
    """A local Ray whose workers can import this directory's modules."""
    import ray

    path = os.pathsep.join(p for p in [HERE, os.environ.get("PYTHONPATH", "")] if p)
    # One CPU slot per encoding actor, and one more for the Parquet read and
    # write tasks (with only `workers` slots the actors take them all and
    # the read never starts).
    ray.init(num_cpus=workers + 1, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path}}, ignore_reinit_error=True)
    return ray


def encode_dataset(ds, model_bytes, workers=2, batch=8192, layout="list", identity=False):
    """`ds` (columns `item`, `embedding`) with the codes of every row."""
    return ds.map_batches(
        Encoder,
        fn_constructor_args=(model_bytes, layout, identity),
        batch_size=batch,
        batch_format="pyarrow",
        concurrency=workers,
        num_cpus=1,
    )


def encode_parquet(input_path, model_bytes, output_path, workers=2, batch=8192, layout="list",
                   identity=False):
    """Reads `input_path`, encodes every row, writes `output_path`.
    Returns the number of rows written."""
    import ray

    ds = ray.data.read_parquet(input_path, columns=["item", "embedding"])
    out = encode_dataset(ds, model_bytes, workers, batch, layout, identity)
    if os.path.exists(output_path):
        shutil.rmtree(output_path)
    out.write_parquet(output_path)
    return pq.read_table(output_path, columns=["item"]).num_rows


def demo(a):
    x = np.load(a.data).astype(np.float32) if a.data else arrow_io.mixture(a.rows)
    tmp = tempfile.mkdtemp(prefix="semid-ray-")
    try:
        emb_path = os.path.join(tmp, "emb.parquet")
        arrow_io.write_embeddings(emb_path, x, layout=a.layout)
        q, _ = semid.RqKMeans.fit(x, levels=3, k=256, seed=0)
        model_bytes = q.to_bytes()

        # Single process, same steps: read Parquet, encode, write Parquet.
        ref, single = arrow_io.single_process(emb_path, q, os.path.join(tmp, "single.parquet"),
                                              a.codes)

        ray = start(a.workers)
        ray.data.range(4).map_batches(lambda b: b).count()  # workers up before timing
        floor = []
        for _ in range(a.floor):
            f0 = time.perf_counter()
            encode_parquet(emb_path, model_bytes, os.path.join(tmp, "floor"), a.workers, a.batch,
                           a.codes, identity=True)
            floor.append(time.perf_counter() - f0)
        out_path = os.path.join(tmp, "codes")
        s0 = time.perf_counter()
        n = encode_parquet(emb_path, model_bytes, out_path, a.workers, a.batch, a.codes)
        s1 = time.perf_counter()
        ray.shutdown()
        items, codes = arrow_io.read_codes(out_path, q.levels)
        identical = bool(n == len(x) and np.array_equal(items, np.arange(len(x)))
                         and np.array_equal(codes, ref))
        res = {
            "bench": "ray_encode", "ray": ray.__version__, "rows": len(x), "dim": x.shape[1],
            "model": "rq_kmeans 3x256", "workers": a.workers, "layout": a.layout, "codes": a.codes,
            "batch": a.batch, "identical_to_single_process": identical,
            **arrow_io.job_figures("ray", len(x), s1 - s0, floor), **single,
        }
        print(json.dumps(res))
        if a.check and not identical:
            raise SystemExit("codes differ between Ray and single-process encoding")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--input")
    ap.add_argument("--model")
    ap.add_argument("--output")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8192)
    ap.add_argument("--codes", choices=["list", "packed"], default="list")
    ap.add_argument("--demo", action="store_true")
    ap.add_argument("data", nargs="?")
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--floor", type=int, default=0)
    ap.add_argument("--layout", choices=["list", "binary"], default="list")
    a = ap.parse_args()
    if a.demo:
        demo(a)
        return
    if not (a.input and a.model and a.output):
        ap.error("give --input, --model and --output, or --demo")
    with open(a.model, "rb") as f:
        model_bytes = f.read()
    semid.Quantizer.from_bytes(model_bytes)  # fail on the driver, not in every worker
    ray = start(a.workers)
    t0 = time.perf_counter()
    n = encode_parquet(a.input, model_bytes, a.output, a.workers, a.batch, a.codes)
    print(json.dumps({"rows": n, "seconds": round(time.perf_counter() - t0, 3)}))
    ray.shutdown()


if __name__ == "__main__":
    main()
