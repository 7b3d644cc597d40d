import json
import pickle

import numpy as np
import pytest

import semid
from conftest import DATA


def fitted(x):
    return [
        semid.KMeans.fit(x, k=16, seed=1)[0],
        semid.RqKMeans.fit(x, levels=2, k=16, seed=1)[0],
        semid.RqVae.fit(x, levels=2, k=8, seed=1, epochs=1,
                        config={"hidden": [32], "latent": 8, "min_steps": 20})[0],
        semid.Fsq([8, 5, 5, 5]),
        semid.ResidualFsq([8, 5, 5, 5], 2),
        semid.FsqAutoencoder.fit(x, levels_per_dim=[4, 4], seed=1, epochs=1,
                                 config={"hidden": [16], "min_steps": 20})[0],
    ]


def data_for(q, x):
    return x[:, : q.dim] if q.dim <= x.shape[1] else None


def test_every_quantizer_encodes_decodes_and_round_trips(mixture, tmp_path):
    for q in fitted(mixture):
        assert isinstance(q, semid.Quantizer)
        x = np.ascontiguousarray(data_for(q, mixture))
        codes = q.encode(x)
        assert codes.dtype == np.uint16 and codes.shape == (len(x), q.levels)
        assert codes.flags["C_CONTIGUOUS"] and codes.flags["OWNDATA"] is False
        for level, size in enumerate(q.codebook_sizes):
            assert int(codes[:, level].max()) < size
        back = q.decode(codes)
        assert back.dtype == np.float32 and back.shape == x.shape
        mse = q.reconstruction_mse(x)
        assert mse == pytest.approx(float(((back - x) ** 2).sum(1).mean()), rel=1e-4)
        # Model files, bytes and pickles give the same model and codes.
        path = tmp_path / f"{q.kind}.semid"
        q.save(path)
        for other in (semid.Quantizer.load(path), semid.Quantizer.from_bytes(q.to_bytes()),
                      pickle.loads(pickle.dumps(q))):
            assert type(other) is type(q)
            assert other == q
            assert np.array_equal(other.encode(x), codes)


def test_codes_do_not_depend_on_threads_or_dtype(mixture):
    a, _ = semid.RqKMeans.fit(mixture, levels=2, k=32, seed=3, threads=1)
    b, _ = semid.RqKMeans.fit(mixture, levels=2, k=32, seed=3, threads=2)
    assert a == b
    assert np.array_equal(a.encode(mixture, threads=1), b.encode(mixture, threads=2))
    # float16 is read in place and widened exactly; float64 is converted.
    h = mixture.astype(np.float16)
    assert np.array_equal(a.encode(h), a.encode(h.astype(np.float32)))
    assert np.array_equal(a.encode(mixture.astype(np.float64)), a.encode(mixture))
    # A strided view is copied, not misread.
    wide = np.concatenate([mixture, mixture], axis=1)[:, ::2]
    assert np.array_equal(a.encode(wide), a.encode(np.ascontiguousarray(wide)))


def test_reports_are_plain_dicts(mixture):
    _, r = semid.RqKMeans.fit(mixture, levels=2, k=16, seed=0)
    json.dumps(r)
    assert len(r["levels"]) == 2 and r["mse"] > 0
    assert r["levels"][0]["utilization"] > 0.5
    _, r = semid.KMeans.fit(mixture, k=8, config={"max_iter": 3, "max_points_per_centroid": None})
    assert r["iterations"] <= 3 and sum(r["cluster_sizes"]) == len(mixture)


def test_fsq_matches_vector_quantize_pytorch():
    cases = json.loads((DATA / "fsq" / "fsq_cases.json").read_text())
    for s in cases["sets"]:
        q = semid.Fsq(s["levels"])
        x = np.array([[np.frombuffer(bytes.fromhex(h), ">f4")[0] for h in row]
                      for row in s["inputs_f32_hex"]], dtype=np.float32)
        got = q.encode(x)[:, 0]
        assert np.array_equal(got, np.array(s["expected_indices"])), s["levels"]


def test_bad_input_raises_value_error(mixture):
    q, _ = semid.RqKMeans.fit(mixture, levels=2, k=16, seed=0)
    bad = mixture[:4].copy()
    bad[2, 5] = np.nan
    with pytest.raises(ValueError, match="row 2, column 5"):
        q.encode(bad)
    with pytest.raises(ValueError, match="2-D"):
        q.encode(mixture[0])
    with pytest.raises(ValueError):
        q.encode(mixture[:, :5])
    with pytest.raises(ValueError, match="k must be <= n"):
        semid.KMeans.fit(mixture[:3], k=10)
    with pytest.raises(ValueError):
        semid.KMeans.fit(np.zeros((0, 4), np.float32), k=1)
    with pytest.raises(ValueError, match="unknown field `bogus`"):
        semid.RqKMeans.fit(mixture, config={"kmeans": {"bogus": 1}})
    with pytest.raises(ValueError):
        semid.Fsq([1, 5])
    for codes in ([[0, 16]], [[-1, 0]], [[70000, 0]], [[0.5, 1.0]], [0, 1]):
        with pytest.raises(ValueError):
            q.decode(np.array(codes))
    with pytest.raises(ValueError, match="columns"):
        q.decode(np.zeros((2, 3), np.uint16))


def test_damaged_model_files_raise_format_error(mixture, tmp_path):
    q, _ = semid.RqKMeans.fit(mixture, levels=2, k=16, seed=0)
    b = q.to_bytes()
    for bad in (b"", b"garbage", b[: len(b) // 2], b[:-1] + bytes([b[-1] ^ 1]), b + b"\0"):
        with pytest.raises(semid.FormatError):
            semid.Quantizer.from_bytes(bad)
    assert issubclass(semid.FormatError, ValueError)
    # The message names the file and what to check.
    with pytest.raises(OSError, match=r"missing\.semid: .*check the path"):
        semid.Quantizer.load(tmp_path / "missing.semid")


def test_streaming_chunks_equal_one_call(mixture, tmp_path):
    # docs/SCALE.md: a file larger than memory is encoded chunk by chunk
    # from a memory map; codes depend on the row only.
    q, _ = semid.RqKMeans.fit(mixture, levels=3, k=16, seed=0)
    path = tmp_path / "x.npy"
    np.save(path, mixture.astype(np.float16))
    mm = np.load(path, mmap_mode="r")
    chunks = [q.encode(mm[i:i + 700]) for i in range(0, len(mm), 700)]
    assert np.array_equal(np.concatenate(chunks), q.encode(np.asarray(mm)))


def test_a_codebook_size_per_level(mixture, tmp_path):
    q, report = semid.RqKMeans.fit(mixture, codebook_sizes=[32, 16, 8], seed=1)
    assert q.levels == 3 and list(q.codebook_sizes) == [32, 16, 8]
    cbs = q.codebooks
    assert [c.shape for c in cbs] == [(32, mixture.shape[1]), (16, mixture.shape[1]),
                                      (8, mixture.shape[1])]
    codes = q.encode(mixture)
    assert all(int(codes[:, l].max()) < s for l, s in enumerate([32, 16, 8]))
    path = tmp_path / "rq.semid"
    q.save(str(path))
    assert list(semid.Quantizer.load(str(path)).codebook_sizes) == [32, 16, 8]
    vae, _ = semid.RqVae.fit(mixture, codebook_sizes=[16, 8], seed=1, epochs=1,
                             config={"hidden": [32], "latent": 8, "min_steps": 20})
    assert list(vae.codebook_sizes) == [16, 8]
    with pytest.raises(ValueError, match="codebook_sizes"):
        semid.RqKMeans.fit(mixture, codebook_sizes=[16, 0])


def test_rqvae_warm_start_from_rq_kmeans(mixture):
    rq, _ = semid.RqKMeans.fit(mixture, levels=2, k=8, seed=1)
    vae, reports = semid.RqVae.fit(mixture, warm_start=rq, seed=1, epochs=1,
                                   config={"hidden": [32], "min_steps": 20})
    assert vae.levels == 2 and list(vae.codebook_sizes) == [8, 8]
    assert vae.encode(mixture).shape == (len(mixture), 2)
    km, _ = semid.KMeans.fit(mixture, k=8, seed=1)
    with pytest.raises(ValueError, match="RqKMeans"):
        semid.RqVae.fit(mixture, warm_start=km, epochs=1)


def test_product_quantizer_and_opq(mixture, tmp_path):
    x = np.ascontiguousarray(mixture[:, :16])
    pq, report = semid.ProductQuantizer.fit(x, m=4, k=8, seed=1)
    assert pq.levels == 4 and list(pq.codebook_sizes) == [8] * 4 and pq.rotation is None
    opq, _ = semid.ProductQuantizer.fit(x, m=4, k=8, opq=True, seed=1,
                                        config={"opq_iterations": 5})
    r = opq.rotation
    assert r.shape == (16, 16) and np.allclose(r @ r.T, np.eye(16), atol=1e-4)
    path = tmp_path / "opq.semid"
    opq.save(str(path))
    back = semid.Quantizer.load(str(path))
    assert isinstance(back, semid.ProductQuantizer)
    assert (back.encode(x) == opq.encode(x)).all()
    with pytest.raises(ValueError, match="does not divide"):
        semid.ProductQuantizer.fit(x, m=5, k=8)
