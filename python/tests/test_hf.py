"""semid.hf.SidLogitsProcessor inside HuggingFace generate: the same
sequences as prefix_allowed_tokens_fn over a dict trie, and only valid IDs.
Skips when torch or transformers is absent (python/run_integration.sh
installs them)."""

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (see python/run_integration.sh)")
transformers = pytest.importorskip(
    "transformers", reason="transformers is not installed (see python/run_integration.sh)"
)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import semid  # noqa: E402
from semid.hf import SidLogitsProcessor  # noqa: E402

pytestmark = pytest.mark.hf
BOS, EOS, NSPECIAL = 1, 2, 3


def setup(seed=0, n_items=300, k=8):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_items, 16)).astype(np.float32)
    q, _ = semid.RqKMeans.fit(x, levels=2, k=k, seed=seed)
    index, _ = semid.SemanticIndex.build(q, x)  # depth 3: 2 levels + suffix
    trie = index.trie
    offsets = list(NSPECIAL + np.concatenate([[0], np.cumsum(trie.codebook_sizes)[:-1]]))
    vocab = NSPECIAL + sum(trie.codebook_sizes)
    _, ids = index.ids()
    tokens = ids.astype(np.int64) + np.array(offsets)
    torch.manual_seed(seed)
    cfg = transformers.GPT2Config(vocab_size=vocab, n_positions=64, n_embd=32, n_layer=2,
                                  n_head=2, bos_token_id=BOS, eos_token_id=EOS,
                                  pad_token_id=0)
    model = transformers.GPT2LMHeadModel(cfg).eval()
    return index, trie, offsets, vocab, tokens, model


def dict_trie(tokens):
    root = {}
    for row in tokens:
        node = root
        for t in row:
            node = node.setdefault(int(t), {})
    return root


def generate(model, prompts, depth, beams, **kw):
    with torch.no_grad():
        out = model.generate(prompts, num_beams=beams, num_return_sequences=beams,
                             max_new_tokens=depth, min_new_tokens=depth, do_sample=False,
                             early_stopping=True, pad_token_id=0, **kw)
    return out[:, prompts.shape[1]:]


@pytest.mark.parametrize("beams", [4, 10])
def test_same_sequences_as_a_dict_trie_and_only_valid_ids(beams):
    index, trie, offsets, vocab, tokens, model = setup()
    rng = np.random.default_rng(1)
    hist = tokens[rng.integers(0, len(tokens), (6, 3))].reshape(6, -1)
    prompts = torch.tensor(np.concatenate([np.full((6, 1), BOS), hist], axis=1))
    p = prompts.shape[1]
    root = dict_trie(tokens)

    def allowed(batch_id, sent):
        node = root
        for t in sent[p:].tolist():
            node = node[t]
        return list(node)

    depth = trie.id_len
    a = generate(model, prompts, depth, beams, prefix_allowed_tokens_fn=allowed)
    proc = SidLogitsProcessor(index, vocab, offsets=offsets, prompt_length=p)
    b = generate(model, prompts, depth, beams,
                 logits_processor=transformers.LogitsProcessorList([proc]))
    assert torch.equal(a, b)
    valid = {tuple(r) for r in tokens.tolist()}
    assert all(tuple(r) in valid for r in b.tolist())
    # Without a constraint the random model emits invalid IDs: the test
    # would notice a processor that does nothing.
    free = generate(model, prompts, depth, beams)
    assert not all(tuple(r) in valid for r in free.tolist())


def test_mask_path_equals_in_place_path():
    index, trie, offsets, vocab, tokens, model = setup()
    proc = SidLogitsProcessor(trie, vocab, offsets=offsets, prompt_length=1)
    ids = torch.tensor([[BOS, int(tokens[0, 0])], [BOS, int(tokens[5, 0])], [BOS, 0]])
    scores = torch.randn(3, vocab + 4)
    a = proc(ids, scores.clone())
    b = proc(ids, scores.clone().to(torch.float64)).to(torch.float32)
    assert torch.equal(torch.isinf(a), torch.isinf(b))
    assert torch.equal(a[torch.isfinite(a)], b[torch.isfinite(b)])
    # Row 2 starts with a token that is no level-0 code: nothing allowed.
    assert torch.isinf(a[2]).all()
