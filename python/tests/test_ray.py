"""examples/python/ray_encode.py on a local Ray: codes equal single-process
encoding bit for bit, whatever the batching. Skips without ray or pyarrow
(python/run_integration.sh installs them)."""

import pathlib
import sys

import numpy as np
import pytest

pytest.importorskip("pyarrow", reason="pyarrow is not installed (see python/run_integration.sh)")
pytest.importorskip("ray", reason="ray is not installed (see python/run_integration.sh)")

import semid  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "examples" / "python"))
import ray_encode  # noqa: E402
import spark_encode  # noqa: E402

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def ray():
    r = ray_encode.start(2)
    yield r
    r.shutdown()


@pytest.mark.parametrize("layout", ["list", "packed"])
def test_ray_codes_equal_single_process(ray, mixture, tmp_path, layout):
    x = mixture
    q, _ = semid.RqKMeans.fit(x, levels=3, k=32, seed=0)
    # Items in a shuffled order, not 0..n: the codes must follow the items.
    items = np.random.default_rng(1).permutation(len(x)).astype(np.int64) * 5
    emb = tmp_path / "emb.parquet"
    spark_encode.write_embeddings(str(emb), x, items)
    out = tmp_path / "codes"
    n = ray_encode.encode_parquet(str(emb), q.to_bytes(), str(out), workers=2, batch=437,
                                  layout=layout)
    assert n == len(x)
    got_items, codes = spark_encode.read_codes(str(out), q.levels)
    order = np.argsort(items)
    assert np.array_equal(got_items, items[order])
    assert np.array_equal(codes, q.encode(x)[order])


def test_packed_codes_round_trip():
    codes = np.array([[0, 1, 65535], [7, 0, 3]], np.uint16)
    assert np.array_equal(spark_encode.unpack_codes(spark_encode.pack_codes(codes), 3), codes)
    with pytest.raises(ValueError, match="at most 4"):
        spark_encode.pack_codes(np.zeros((1, 5), np.uint16))
