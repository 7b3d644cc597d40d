"""VocabConstraint (the core of semid.hf.SidLogitsProcessor) against a
GENRE-style dict trie, with numpy only."""

import numpy as np
import pytest

import semid

OFFSETS = [3, 3 + 6, 3 + 12]
VOCAB = 3 + 18 + 2  # specials, 3 levels of 6 codes, 2 unused tokens
EOS = 2


def dict_trie(ids):
    root = {}
    for row in ids:
        node = root
        for level, c in enumerate(row):
            node = node.setdefault(OFFSETS[level] + int(c), {})
    return root


def reference_allowed(root, generated, depth, eos):
    node = root
    for t in generated[:depth]:
        if t not in node:
            return set()
        node = node[t]
    if len(generated) >= depth:
        return {eos} if eos is not None else None
    return set(node)


@pytest.fixture(scope="module")
def case():
    rng = np.random.default_rng(0)
    ids = np.unique(rng.integers(0, 6, (80, 3)), axis=0)
    return ids, semid.Trie.from_ids(ids, codebook_sizes=[6, 6, 6])


@pytest.mark.parametrize("eos", [None, EOS])
def test_apply_and_mask_equal_the_dict_trie(case, eos):
    ids, trie = case
    c = semid.VocabConstraint(trie, VOCAB, offsets=OFFSETS, eos_token_id=eos)
    root = dict_trie(ids)
    rng = np.random.default_rng(1)
    prompt = 4
    # Without an EOS rows past a whole ID raise (below), so t stays under
    # the ID length there.
    for t in range(0, 5 if eos is not None else 3):
        rows = []
        for _ in range(64):
            if rng.random() < 0.8:
                row = ids[rng.integers(len(ids))]
                gen = [OFFSETS[l] + int(row[l]) for l in range(min(t, 3))] + [EOS] * max(0, t - 3)
            else:
                gen = list(rng.integers(0, VOCAB, t))
            rows.append(list(rng.integers(0, VOCAB, prompt)) + gen)
        input_ids = np.array(rows, dtype=np.int64).reshape(64, prompt + t)
        scores = rng.standard_normal((64, VOCAB + 5)).astype(np.float32)
        before = scores.copy()
        c.apply(input_ids, prompt, scores)
        mask = c.mask(input_ids, prompt)
        assert mask.shape == (64, VOCAB) and mask.dtype == np.bool_
        for r in range(64):
            want = reference_allowed(root, [int(x) for x in input_ids[r, prompt:]], 3, eos)
            # Fail closed: where nothing is allowed, only EOS is (or
            # nothing at all without one: a dead beam).
            if not want:
                want = {eos} if eos is not None else set()
            kept = set(np.flatnonzero(np.isfinite(scores[r])))
            assert kept == want, (t, r)
            assert set(np.flatnonzero(mask[r])) == want
            for tok in want:
                assert scores[r, tok] == before[r, tok]


def test_fails_closed_without_eos(case):
    """MiniOneRec #50: an empty allowed set must not let a row go free."""
    ids, trie = case
    c = semid.VocabConstraint(trie, VOCAB, offsets=OFFSETS)
    valid = [OFFSETS[0] + int(ids[0, 0])]
    dead = np.array([valid, [0]], np.int64)  # row 1: token 0 is no code
    scores = np.zeros((2, VOCAB), np.float32)
    c.apply(dead, 0, scores)
    assert np.isneginf(scores[1]).all() and np.isfinite(scores[0]).any()
    assert not c.mask(dead, 0)[1].any()
    whole = np.array([[OFFSETS[l] + int(ids[0, l]) for l in range(3)]], np.int64)
    with pytest.raises(ValueError, match="row 0 has generated a whole ID.*no eos_token_id"):
        c.apply(whole, 0, scores[:1])
    with pytest.raises(ValueError, match="never leaves a row unconstrained"):
        c.mask(whole, 0)
    # With an EOS, dead and finished rows may only emit it.
    e = semid.VocabConstraint(trie, VOCAB, offsets=OFFSETS, eos_token_id=EOS)
    m = e.mask(np.concatenate([dead[:, :1], whole[:, :1]]), 0)
    assert m[1].sum() == 1 and m[1, EOS]
    m = e.mask(whole, 0)
    assert m.sum() == 1 and m[0, EOS]


def test_token_table_equals_offsets(case):
    ids, trie = case
    table = [[o + c for c in range(6)] for o in OFFSETS]
    a = semid.VocabConstraint(trie, VOCAB, offsets=OFFSETS)
    b = semid.VocabConstraint(trie, VOCAB, token_table=table)
    input_ids = np.array([[0, OFFSETS[0] + int(ids[0, 0])]], np.int64)
    assert np.array_equal(a.mask(input_ids, 1), b.mask(input_ids, 1))
    # A shuffled table maps codes to other tokens.
    perm = [list(reversed(row)) for row in table]
    c = semid.VocabConstraint(trie, VOCAB, token_table=perm)
    m = c.mask(np.zeros((1, 1), np.int64), 1)[0]
    assert set(np.flatnonzero(m)) == {perm[0][int(x)] for x in np.unique(ids[:, 0])}


def test_bad_arguments(case):
    _, trie = case
    with pytest.raises(ValueError, match="exactly one"):
        semid.VocabConstraint(trie, VOCAB)
    with pytest.raises(ValueError, match="exactly one"):
        semid.VocabConstraint(trie, VOCAB, offsets=OFFSETS, token_table=[[0]] * 3)
    with pytest.raises(ValueError, match="levels"):
        semid.VocabConstraint(trie, VOCAB, offsets=OFFSETS[:2])
    with pytest.raises(ValueError, match="outside"):
        semid.VocabConstraint(trie, 10, offsets=OFFSETS)
    with pytest.raises(ValueError, match="both token"):
        semid.VocabConstraint(trie, VOCAB, token_table=[[3] * 6, list(range(6)), list(range(6))])
    with pytest.raises(ValueError, match="outside"):
        semid.VocabConstraint(trie, VOCAB, offsets=OFFSETS, eos_token_id=VOCAB)
    c = semid.VocabConstraint(trie, VOCAB, offsets=OFFSETS)
    with pytest.raises(ValueError, match="prompt_length"):
        c.mask(np.zeros((2, 3), np.int64), 4)
    with pytest.raises(ValueError, match="rows"):
        c.apply(np.zeros((2, 3), np.int64), 3, np.zeros((3, VOCAB), np.float32))
    with pytest.raises(ValueError, match="columns"):
        c.apply(np.zeros((2, 3), np.int64), 3, np.zeros((2, VOCAB - 1), np.float32))
    with pytest.raises((ValueError, TypeError)):
        c.apply(np.zeros((2, 3), np.int64), 3, np.zeros((2, VOCAB), np.float64))
