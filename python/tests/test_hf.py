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


def test_add_sid_tokens_then_generate_only_valid_ids():
    """The LLM recipe end to end, with no download: a word-level tokenizer
    and a tiny GPT-2 built here, SID tokens added by add_sid_tokens, and
    constrained beam search; every generated text parses to a valid ID."""
    tokenizers = pytest.importorskip("tokenizers", reason="tokenizers is not installed")
    from semid.hf import add_sid_tokens

    rng = np.random.default_rng(3)
    x = rng.standard_normal((200, 16)).astype(np.float32)
    q, _ = semid.RqKMeans.fit(x, levels=2, k=8, seed=0)
    index, _ = semid.SemanticIndex.build(q, x)
    base = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3}
    tok = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizers.Tokenizer(tokenizers.models.WordLevel(base, unk_token="<unk>")),
        pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>",
    )
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=len(base), n_positions=32, n_embd=32, n_layer=1,
                                  n_head=2, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    model = transformers.GPT2LMHeadModel(cfg).eval()
    table = add_sid_tokens(tok, model, index)
    assert model.get_input_embeddings().weight.shape[0] == len(tok)
    fmt = semid.TextFormat(index.trie.id_len)
    proc = SidLogitsProcessor(index, len(tok), token_table=table, prompt_length=1, eos_token_id=2)
    out = model.generate(
        torch.ones((4, 1), dtype=torch.long), max_new_tokens=index.trie.id_len,
        min_new_tokens=index.trie.id_len, num_beams=8, num_return_sequences=8,
        do_sample=False, logits_processor=transformers.LogitsProcessorList([proc]),
    )
    valid = {tuple(int(t) for t in row) for row in index.ids()[1]}
    for row in out[:, 1:]:
        text = "".join(tok.convert_ids_to_tokens(row.tolist()))
        assert tuple(fmt.parse(text)) in valid, text
