import itertools

import numpy as np
import pytest

import semid


@pytest.fixture(scope="module")
def index(mixture):
    q, _ = semid.RqKMeans.fit(mixture[:2000], levels=2, k=16, seed=0)
    idx, report = semid.SemanticIndex.build(q, mixture[:2000])
    assert report["unique_ids"] == 2000 and report["collision_rate"] == 0.0
    # Before the suffix the quantizer's codes collide (2 x 16 codes for 2000 items).
    assert 0.5 < report["code_collision_rate"] <= 1.0 and report["max_bucket"] > 1
    return idx


def test_ids_are_unique_and_in_the_trie(index):
    items, ids = index.ids()
    assert list(items) == list(range(2000))
    assert len({tuple(r) for r in ids}) == 2000
    trie = index.trie
    assert len(trie) == 2000 and trie.id_len == ids.shape[1]
    for i in (0, 17, 1999):
        assert np.array_equal(index.id_of(i), ids[i])
        assert list(ids[i]) in trie
        assert list(trie.items(list(ids[i]))) == [i]
    assert index.id_of(5000) is None


def test_one_level_scorer_equals_sorting():
    # FSQ over a 5x5x5 grid: one token per item, 125 distinct IDs. With a
    # beam as wide as the trie the search is exact: its top k is the sort
    # of the scorer's table.
    q = semid.Fsq([5, 5, 5])
    vals = np.array([-1.0, -0.5, 0.0, 0.5, 1.0], np.float32)
    grid = np.array(list(itertools.product(range(5), repeat=3)))
    z = np.arctanh(vals[grid] * 0.99).astype(np.float32)
    idx, _ = semid.SemanticIndex.build(q, z, policy="allow_shared")
    tr = idx.trie
    assert tr.id_len == 1 and len(tr) == 125
    nq = 4
    table = np.random.default_rng(0).standard_normal((nq, 125)).astype(np.float32)
    hits = idx.search(lambda beams: table[beams.queries], nq, beam=125, k=7)
    for qi in range(nq):
        order = np.argsort(-table[qi], kind="stable")[:7]
        assert list(hits.items[qi]) == [int(tr.items([int(t)])[0]) for t in order]
        assert np.allclose(hits.scores[qi], table[qi][order])


def test_multi_level_scorer_equals_exhaustive_ranking(index):
    trie = index.trie
    items, ids = index.ids()
    vocab = trie.codebook_sizes
    nq = 3
    rng = np.random.default_rng(1)
    table = [rng.standard_normal((nq, v)).astype(np.float32) for v in vocab]

    def scorer(beams):
        assert beams.prefixes.shape == (len(beams), beams.level)
        assert beams.parents.shape == ((0,) if beams.level == 0 else (len(beams),))
        return table[beams.level][beams.queries]

    hits = index.search(scorer, nq, beam=len(trie), k=10)
    for qi in range(nq):
        total = sum(table[l][qi][ids[:, l]] for l in range(ids.shape[1]))
        order = np.argsort(-total, kind="stable")[:10]
        assert np.allclose(hits.scores[qi], total[order], atol=1e-5)
        assert set(hits.items[qi]) == set(items[order]) or np.allclose(
            np.sort(total[hits.items[qi]]), np.sort(total[order]), atol=1e-5)
    assert hits.to_lists()[0] == list(hits.items[0])


def test_scorer_errors_reach_python(index):
    def raises(beams):
        raise KeyError("model failed")

    with pytest.raises(KeyError, match="model failed"):
        index.search(raises, 2)

    def wrong_shape(beams):
        return np.zeros((len(beams), beams.codebook_size + 1), np.float32)

    with pytest.raises(ValueError, match="expected beams"):
        index.search(wrong_shape, 2)
    with pytest.raises(ValueError):
        index.search(lambda b: None, 2)
    with pytest.raises(ValueError):
        index.search(lambda b: 0, 2, beam=0)


def test_search_embeddings_finds_the_item_itself(index, mixture):
    hits = index.search_embeddings(mixture[:50], beam=20, k=10)
    assert hits.items.shape == (50, 10) and hits.ids.shape == (50, 10, index.trie.id_len)
    found = np.mean([i in hits.items[i] for i in range(50)])
    assert found > 0.5, found


def test_insert_save_load(index, mixture, tmp_path):
    idx = semid.SemanticIndex.from_bytes(index.to_bytes())
    new = mixture[2000:2100]
    r = idx.insert(list(range(2000, 2100)), new)
    assert r["added"] == 100 and len(idx) == 2100
    assert idx.id_of(2050) is not None and list(idx.id_of(2050)) in idx.trie
    with pytest.raises(ValueError):
        idx.insert([2000], new[:1])  # already present
    with pytest.raises(ValueError):
        idx.insert([1, 2], new[:1])
    p = tmp_path / "index.semid"
    idx.save(p)
    back = semid.SemanticIndex.load(p)
    assert len(back) == 2100 and np.array_equal(back.ids()[1], idx.ids()[1])
    # Opened in place (memory-mapped), under both checks: the same index.
    for check in ("structure", "full"):
        opened = semid.SemanticIndex.open(p, check)
        opened.verify()
        assert np.array_equal(opened.ids()[1], idx.ids()[1])
        assert opened.to_bytes() == idx.to_bytes()
    with pytest.raises(ValueError):
        semid.SemanticIndex.open(p, "none")
    with pytest.raises(semid.FormatError):
        (tmp_path / "cut.semid").write_bytes(idx.to_bytes()[:200])
        semid.SemanticIndex.open(tmp_path / "cut.semid")
    with pytest.raises(semid.FormatError):
        semid.SemanticIndex.from_bytes(idx.to_bytes()[:100])
    with pytest.raises(semid.FormatError):
        semid.SemanticIndex.from_bytes(index.quantizer.to_bytes())


def test_policies(mixture):
    q, _ = semid.RqKMeans.fit(mixture[:1000], levels=2, k=8, seed=0)
    idx, r = semid.SemanticIndex.build(q, mixture[:1000], "reassign_last_level", capacity=32)
    assert r["max_items_per_id"] <= 32 and idx.trie.id_len == 2
    with pytest.raises(ValueError):
        semid.SemanticIndex.build(q, mixture[:1000], "nope")
    with pytest.raises(ValueError):
        semid.SemanticIndex.build(semid.Fsq([5, 5]), mixture[:10, :2], "reassign_last_level")


def test_trie_walk():
    ids = np.array([[1, 2], [1, 3], [4, 0], [1, 2]])
    t = semid.Trie.from_ids(ids)
    assert t.codebook_sizes == [5, 4] and len(t) == 3
    assert list(t.allowed([])) == [1, 4]
    assert list(t.allowed([1])) == [2, 3]
    assert list(t.allowed([1, 2])) == [] and list(t.allowed([9])) == []
    assert sorted(t.items([1, 2])) == [0, 3] and sorted(t.items([1])) == [0, 1, 3]
    assert [4, 0] in t and [4, 1] not in t and [-1, 0] not in t
    with pytest.raises(ValueError):
        semid.Trie.from_ids(np.array([[1, -2]]))
    with pytest.raises(ValueError):
        semid.Trie.from_ids(np.array([[1, 7]]), codebook_sizes=[5, 5])
    with pytest.raises(ValueError):
        semid.Trie.from_ids(np.zeros((0, 2), np.int64))
