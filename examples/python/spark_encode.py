#!/usr/bin/env python3
"""Encode item embeddings into semantic-ID codes on Spark with semid.

usage: spark_encode.py --input EMB.parquet --model MODEL.semid --output CODES.parquet
                       [--master local[2]] [--partitions N] [--batch 8192] [--codes list|packed]
       spark_encode.py --demo [DATA.npy] [--rows N] [--check] [--floor N]

The input Parquet has an `item` column (int64) and an `embedding` column:
a list of float32 per row, all of one length d (Spark 4 cannot read Parquet
float16), or the d float32 values as little-endian bytes (binary), which
Spark moves several times faster. The model file is read
once on the driver and broadcast as bytes; every Arrow batch of every
partition is encoded by `mapInArrow` with `Quantizer.encode` (the GIL is
released inside). The output Parquet has `item` and `codes` (list of int32,
one token per level; Spark has no unsigned 16-bit type).

--demo writes DATA.npy (default: a seeded Gaussian mixture of --rows rows)
as Parquet (--layout list or binary), fits RQ-KMeans 3 x 256 on it, encodes it on local Spark and
once in this process, checks the codes are identical (--check fails loudly
otherwise), and prints one JSON line with rows/s of both.
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


def embeddings_to_numpy(col: pa.Array) -> np.ndarray:
    """An Arrow list column of equal-length float lists as an n x d array
    (no copy for float32 when the column has no nulls)."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if col.null_count:
        raise ValueError("embedding has null rows; drop or fill them first")
    n = len(col)
    if pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type):
        # Raw little-endian float32 bytes per row: one buffer, no per-element
        # conversion in the JVM or in Arrow.
        _, offsets, data = col.buffers()
        off_t = np.int64 if pa.types.is_large_binary(col.type) else np.int32
        off = np.frombuffer(offsets, off_t)[col.offset: col.offset + n + 1]
        if n == 0:
            return np.zeros((0, 1), np.float32)
        width = int(off[1] - off[0])
        if width == 0 or width % 4 or not np.all(np.diff(off) == width):
            raise ValueError("binary embeddings must all hold the same number of float32 values")
        raw = np.frombuffer(data, np.uint8)[off[0]: off[-1]]
        return raw.view("<f4").reshape(n, width // 4)
    if n == 0:
        return np.zeros((0, 1), np.float32)
    lengths = np.diff(col.offsets.to_numpy())
    if lengths[0] == 0 or not np.all(lengths == lengths[0]):
        raise ValueError("embeddings have different lengths (or none)")
    values = col.flatten().to_numpy(zero_copy_only=False)
    if values.dtype not in (np.float32, np.float16):
        values = values.astype(np.float32)
    return values.reshape(n, len(values) // n)


def codes_to_arrow(items: pa.Array, codes: np.ndarray, layout: str = "list") -> pa.RecordBatch:
    """`codes` (n x levels, uint16) as an Arrow batch with `item` and either
    `codes` (layout "list": a list of int32 per row) or `sid` (layout
    "packed": one int64 per row, token l in bits 16 * (levels - 1 - l);
    levels <= 4), which Spark moves and writes without a list per row."""
    n, levels = codes.shape
    if layout == "packed":
        return pa.RecordBatch.from_arrays([items, pa.array(pack_codes(codes), pa.int64())],
                                          names=["item", "sid"])
    flat = pa.array(codes.astype(np.int32).ravel(), pa.int32())
    offsets = pa.array(np.arange(0, (n + 1) * levels, levels, dtype=np.int32), pa.int32())
    lists = pa.ListArray.from_arrays(offsets, flat)
    return pa.RecordBatch.from_arrays([items, lists], names=["item", "codes"])


def pack_codes(codes: np.ndarray) -> np.ndarray:
    """n x levels uint16 codes (levels <= 4) as one int64 per row."""
    n, levels = codes.shape
    if levels > 4:
        raise ValueError(f"packed codes hold at most 4 levels of 16 bits, not {levels}")
    out = np.zeros(n, np.int64)
    for l in range(levels):
        out = (out << 16) | codes[:, l].astype(np.int64)
    return out


def unpack_codes(sid: np.ndarray, levels: int) -> np.ndarray:
    """The inverse of `pack_codes`."""
    sid = np.asarray(sid, np.int64)
    return np.stack([(sid >> (16 * (levels - 1 - l))) & 0xFFFF for l in range(levels)],
                    axis=1).astype(np.uint16)


def encode_parquet(spark, input_path, model_bytes, output_path, partitions=None, batch=8192,
                   layout="list", identity=False):
    """Reads `input_path`, encodes every row with the model in
    `model_bytes`, writes `output_path` (`layout`: see `codes_to_arrow`).
    Returns the number of rows.

    `identity=True` measures Spark's own floor: the same job, the same
    output, but every code is 0 and the embeddings are not read."""
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(batch))
    model = spark.sparkContext.broadcast(model_bytes)
    # The helpers below travel with the job (on a cluster, executors also
    # need semid installed: `pip install semid` in their image).
    spark.sparkContext.addPyFile(os.path.abspath(__file__))

    def encode(batches):
        import semid as s

        q = s.Quantizer.from_bytes(model.value)
        for b in batches:
            if identity:
                codes = np.zeros((b.num_rows, q.levels), np.uint16)
            else:
                x = embeddings_to_numpy(b.column("embedding"))
                # One thread per task: Spark runs one task per core already.
                codes = q.encode(x, threads=1)
            yield codes_to_arrow(b.column("item"), codes, layout)

    df = spark.read.parquet(input_path).select("item", "embedding")
    if partitions:
        df = df.repartition(partitions)
    schema = "item long, sid long" if layout == "packed" else "item long, codes array<int>"
    out = df.mapInArrow(encode, schema)
    out.write.mode("overwrite").parquet(output_path)
    return spark.read.parquet(output_path).count()


def write_embeddings(path, x, items=None, layout="list"):
    """Writes `x` (n x d) with `item` IDs as Parquet; `layout` "list" (a
    list of float32 per row) or "binary" (d little-endian float32 as bytes
    per row, faster to move through Spark)."""
    n, d = x.shape
    items = np.arange(n, dtype=np.int64) if items is None else items
    if layout == "binary":
        raw = np.ascontiguousarray(x, "<f4").view(np.uint8).ravel()
        offsets = pa.array(np.arange(0, (n + 1) * d * 4, d * 4, dtype=np.int32), pa.int32())
        emb = pa.BinaryArray.from_buffers(pa.binary(), n, [None, offsets.buffers()[1],
                                                            pa.py_buffer(raw)])
        pq.write_table(pa.table({"item": items, "embedding": emb}), path, row_group_size=65536)
        return
    values = pa.array(np.ascontiguousarray(x, np.float32).ravel(), pa.float32())
    offsets = pa.array(np.arange(0, (n + 1) * d, d, dtype=np.int32), pa.int32())
    emb = pa.ListArray.from_arrays(offsets, values)
    pq.write_table(pa.table({"item": items, "embedding": emb}), path, row_group_size=65536)


def read_codes(path, levels=None):
    """Items and codes (n x levels, uint16) of an output, sorted by item;
    `levels` is needed for the packed layout."""
    t = pq.read_table(path).sort_by("item")
    if "sid" in t.column_names:
        if levels is None:
            raise ValueError("packed codes need levels=")
        return t.column("item").to_numpy(), unpack_codes(t.column("sid").to_numpy(), levels)
    codes = t.column("codes").combine_chunks()
    n = len(codes)
    flat = codes.flatten().to_numpy()
    return t.column("item").to_numpy(), flat.reshape(n, len(flat) // max(n, 1)).astype(np.uint16)


def session(master):
    from pyspark.sql import SparkSession

    # Workers run this interpreter (the one with semid installed).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

    return (
        SparkSession.builder.master(master)
        .appName("semid-encode")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )


def mixture(rows, dim=128, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((64, dim)).astype(np.float32) * 2
    return centers[rng.integers(0, 64, rows)] + rng.standard_normal((rows, dim)).astype(np.float32)


def single_process(emb_path, q, out_path, layout="list"):
    """The baseline: read the Parquet, encode, write the codes, in this
    process. Returns the codes and the figures (seconds, rows/s)."""
    t0 = time.perf_counter()
    t = pq.read_table(emb_path)
    xs = embeddings_to_numpy(t.column("embedding"))
    t1 = time.perf_counter()
    ref = q.encode(xs)
    t2 = time.perf_counter()
    pq.write_table(pa.Table.from_batches([codes_to_arrow(t.column("item").combine_chunks(), ref,
                                                         layout)]), out_path)
    t3 = time.perf_counter()
    n = len(xs)
    return ref, {
        "single_read_encode_write_s": round(t3 - t0, 3),
        "single_read_encode_write_rows_per_s": round(n / (t3 - t0)),
        "single_encode_only_rows_per_s": round(n / (t2 - t1)),
    }


def job_figures(engine, rows, job_s, floor):
    """The engine's figures: its job, and its identity (floor) runs."""
    res = {f"{engine}_job_s": round(job_s, 3), f"{engine}_rows_per_s": round(rows / job_s)}
    if floor:
        best = min(floor)
        res[f"{engine}_identity_job_s"] = [round(f, 3) for f in floor]
        res[f"{engine}_identity_rows_per_s"] = round(rows / best)
        res["ours_over_floor"] = round(job_s / best - 1, 3)
    return res


def demo(a):
    x = np.load(a.data).astype(np.float32) if a.data else mixture(a.rows)
    tmp = tempfile.mkdtemp(prefix="semid-spark-")
    try:
        emb_path = os.path.join(tmp, "emb.parquet")
        write_embeddings(emb_path, x, layout=a.layout)
        q, _ = semid.RqKMeans.fit(x, levels=3, k=256, seed=0)
        model_bytes = q.to_bytes()

        # Single process, same steps: read Parquet, encode, write Parquet.
        ref, single = single_process(emb_path, q, os.path.join(tmp, "single.parquet"), a.codes)

        spark = session(a.master)
        spark.range(1).count()  # JVM and Python workers up before timing
        floor = []
        for _ in range(a.floor):
            # Spark's own floor: the same job with the encoder replaced by
            # zeros (embeddings not even read on the Python side).
            f0 = time.perf_counter()
            encode_parquet(spark, emb_path, model_bytes, os.path.join(tmp, "floor.parquet"),
                           a.partitions, a.batch, a.codes, identity=True)
            floor.append(time.perf_counter() - f0)
        out_path = os.path.join(tmp, "codes.parquet")
        s0 = time.perf_counter()
        n = encode_parquet(spark, emb_path, model_bytes, out_path, a.partitions, a.batch, a.codes)
        s1 = time.perf_counter()
        spark.stop()
        items, codes = read_codes(out_path, q.levels)
        identical = bool(n == len(x) and np.array_equal(items, np.arange(len(x)))
                         and np.array_equal(codes, ref))
        res = {
            "bench": "spark_encode", "rows": len(x), "dim": x.shape[1], "model": "rq_kmeans 3x256",
            "master": a.master, "layout": a.layout, "codes": a.codes, "partitions": a.partitions,
            "arrow_batch": a.batch,
            "model_bytes": len(model_bytes), "identical_to_single_process": identical,
            **job_figures("spark", len(x), s1 - s0, floor), **single,
        }
        print(json.dumps(res))
        if a.check and not identical:
            raise SystemExit("codes differ between Spark and single-process encoding")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--input")
    ap.add_argument("--model")
    ap.add_argument("--output")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--partitions", type=int, default=None)
    ap.add_argument("--batch", type=int, default=8192)
    ap.add_argument("--demo", action="store_true")
    ap.add_argument("data", nargs="?")
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--layout", choices=["list", "binary"], default="list")
    ap.add_argument("--codes", choices=["list", "packed"], default="list",
                    help="output codes as a list of int32 per row, or one packed int64")
    ap.add_argument("--floor", type=int, default=0,
                    help="--demo: first run the job N times with zeros in place of the encoder")
    a = ap.parse_args()
    if a.demo:
        demo(a)
        return
    if not (a.input and a.model and a.output):
        ap.error("give --input, --model and --output, or --demo")
    with open(a.model, "rb") as f:
        model_bytes = f.read()
    semid.Quantizer.from_bytes(model_bytes)  # fail on the driver, not in every task
    spark = session(a.master)
    t0 = time.perf_counter()
    n = encode_parquet(spark, a.input, model_bytes, a.output, a.partitions, a.batch, a.codes)
    print(json.dumps({"rows": n, "seconds": round(time.perf_counter() - t0, 3)}))
    spark.stop()


if __name__ == "__main__":
    main()
