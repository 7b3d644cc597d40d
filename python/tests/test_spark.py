"""examples/python/spark_encode.py on local Spark: codes equal
single-process encoding bit for bit. Skips without pyspark, pyarrow or Java
(python/run_integration.sh installs them)."""

import pathlib
import shutil
import sys

import numpy as np
import pytest

pytest.importorskip("pyarrow", reason="pyarrow is not installed (see python/run_integration.sh)")
pytest.importorskip("pyspark", reason="pyspark is not installed (see python/run_integration.sh)")
if shutil.which("java") is None:
    pytest.skip("no java on PATH: Spark needs a JVM", allow_module_level=True)

import semid  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "examples" / "python"))
import spark_encode  # noqa: E402

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def spark():
    s = spark_encode.session("local[2]")
    yield s
    s.stop()


def test_spark_codes_equal_single_process(spark, mixture, tmp_path):
    x = mixture
    q, _ = semid.RqKMeans.fit(x, levels=3, k=32, seed=0)
    # Items in a shuffled order, not 0..n: the codes must follow the items.
    items = np.random.default_rng(0).permutation(len(x)).astype(np.int64) * 7
    emb = tmp_path / "emb.parquet"
    spark_encode.write_embeddings(str(emb), x, items)
    out = tmp_path / "codes.parquet"
    n = spark_encode.encode_parquet(spark, str(emb), q.to_bytes(), str(out), partitions=3, batch=500)
    assert n == len(x)
    got_items, codes = spark_encode.read_codes(str(out))
    order = np.argsort(items)
    assert np.array_equal(got_items, items[order])
    assert np.array_equal(codes, q.encode(x)[order])


def test_packed_codes_and_the_identity_floor(spark, mixture, tmp_path):
    x = mixture[:1500]
    q, _ = semid.RqKMeans.fit(x, levels=3, k=16, seed=0)
    emb = tmp_path / "emb.parquet"
    spark_encode.write_embeddings(str(emb), x)
    out = tmp_path / "codes.parquet"
    n = spark_encode.encode_parquet(spark, str(emb), q.to_bytes(), str(out), batch=400,
                                    layout="packed")
    assert n == len(x)
    items, codes = spark_encode.read_codes(str(out), q.levels)
    assert np.array_equal(items, np.arange(len(x))) and np.array_equal(codes, q.encode(x))
    # The floor job writes the same shape with every code 0.
    floor = tmp_path / "floor.parquet"
    spark_encode.encode_parquet(spark, str(emb), q.to_bytes(), str(floor), layout="packed",
                                identity=True)
    items, codes = spark_encode.read_codes(str(floor), q.levels)
    assert len(items) == len(x) and not codes.any()


def test_binary_layout_gives_the_same_codes(spark, mixture, tmp_path):
    x = mixture[:1000]
    q, _ = semid.RqKMeans.fit(x, levels=2, k=16, seed=0)
    emb = tmp_path / "emb.parquet"
    spark_encode.write_embeddings(str(emb), x, layout="binary")
    out = tmp_path / "codes.parquet"
    assert spark_encode.encode_parquet(spark, str(emb), q.to_bytes(), str(out)) == len(x)
    items, codes = spark_encode.read_codes(str(out))
    assert np.array_equal(items, np.arange(len(x))) and np.array_equal(codes, q.encode(x))


def test_embedding_reader_rejects_ragged_rows():
    import pyarrow as pa

    with pytest.raises(ValueError, match="same number"):
        spark_encode.embeddings_to_numpy(pa.array([b"\0" * 8, b"\0" * 4], pa.binary()))
    with pytest.raises(ValueError, match="different lengths"):
        spark_encode.embeddings_to_numpy(pa.array([[1.0, 2.0, 3.0], [4.0]], pa.list_(pa.float32())))
    with pytest.raises(ValueError, match="null"):
        spark_encode.embeddings_to_numpy(pa.array([[1.0], None], pa.list_(pa.float32())))
