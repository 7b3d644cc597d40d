"""SID text tokens and add_sid_tokens, without torch: a stand-in tokenizer
and model with HuggingFace's method names."""

import numpy as np
import pytest

import semid
from semid.tokens import add_sid_tokens


class FakeTokenizer:
    """Whole-token vocabulary as HF's added tokens behave."""

    def __init__(self, base):
        self.vocab = {t: i for i, t in enumerate(base)}
        self.unk_token_id = self.vocab.get("<unk>")

    def add_tokens(self, tokens):
        n = 0
        for t in tokens:
            if t not in self.vocab:
                self.vocab[t] = len(self.vocab)
                n += 1
        return n

    def convert_tokens_to_ids(self, tokens):
        return [self.vocab.get(t, self.unk_token_id) for t in tokens]

    def __len__(self):
        return len(self.vocab)


class FakeModel:
    def __init__(self):
        self.size = None

    def resize_token_embeddings(self, n):
        self.size = n


def test_text_format_round_trip_and_errors():
    f = semid.TextFormat(4)
    assert f.format([12, 34, 5, 0]) == "<a_12><b_34><c_5><d_0>"
    assert f.parse("<a_12><b_34><c_5><d_0>") == [12, 34, 5, 0]
    assert f.token(1, 7) == "<b_7>" and f.id_len == 4
    with pytest.raises(ValueError, match="beyond the ID length"):
        f.parse("<a_1><b_2><c_3><d_4><e_5>")
    with pytest.raises(ValueError, match="not a number"):
        f.parse("<a_1><b_x><c_3><d_4>")
    with pytest.raises(ValueError):
        semid.TextFormat(0)


def test_add_sid_tokens_feeds_the_constraint():
    rng = np.random.default_rng(0)
    ids = np.unique(rng.integers(0, 6, (50, 3)), axis=0)
    trie = semid.Trie.from_ids(ids, codebook_sizes=[6, 6, 6])
    tok = FakeTokenizer(["<pad>", "<unk>", "</s>", "hello"])
    model = FakeModel()
    table = add_sid_tokens(tok, model, trie)
    assert [len(r) for r in table] == [6, 6, 6]
    assert model.size == len(tok) == 4 + 18
    assert table[0][0] == tok.vocab["<a_0>"] and table[2][5] == tok.vocab["<c_5>"]
    # The table drives the constraint: the first step allows exactly the
    # tokens of the first codes in use.
    c = semid.VocabConstraint(trie, len(tok), token_table=table, eos_token_id=2)
    m = c.mask(np.zeros((1, 0), np.int64), 0)[0]
    assert set(np.flatnonzero(m)) == {table[0][int(x)] for x in np.unique(ids[:, 0])}
    # Adding again finds the same tokens.
    assert add_sid_tokens(tok, None, trie) == table


def test_add_sid_tokens_refuses_tokens_that_do_not_land():
    trie = semid.Trie.from_ids(np.array([[0, 1]]), codebook_sizes=[2, 2])

    class Splitting(FakeTokenizer):
        def add_tokens(self, tokens):
            return 0  # a tokenizer that adds nothing: every token is <unk>

    with pytest.raises(ValueError, match="did not become one distinct token"):
        add_sid_tokens(Splitting(["<unk>"]), None, trie)
    with pytest.raises(ValueError, match="positions"):
        add_sid_tokens(FakeTokenizer(["<unk>"]), None, trie, semid.TextFormat(3))
