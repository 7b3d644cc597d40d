#!/usr/bin/env python3
"""Constrained beam search in HuggingFace generate: semid's
SidLogitsProcessor against prefix_allowed_tokens_fn over a GENRE-style dict
trie, same model, same prompts, same run. Prints one JSON line.

usage: hf_constrained.py [DATA.npy | --random-sids N] [--levels 3]
         [--codebook 256] [--beams 20] [--batch 32] [--history 20]
         [--runs 5] [--threads 2] [--seed 0]

DATA.npy (n x d, float16/32): items are encoded with semid RQ-KMeans
(levels x codebook) and made unique with TIGER's suffix token; --random-sids
N draws N random IDs instead. Token ids: 0 pad, 1 bos, 2 eos, then each
level's codes in turn. The model is a randomly initialised GPT-2 (seeded):
the constraint's cost does not depend on the weights. Queries are prompts of
[bos] + the IDs of --history random items.

Reported per variant (none, dict trie, semid): median seconds of one batched
generate() (variants interleaved, after a warm-up), ms per query, the
constraint's overhead per query measured two ways: the difference of whole
generate() times (noisy: the model dominates), and the time spent inside the
constraint's logits processor (HF's PrefixConstrainedLogitsProcessor around
the dict-trie function, which is what prefix_allowed_tokens_fn builds, and
semid's SidLogitsProcessor); whether the two constrained variants return
identical sequences; and the fraction of valid IDs.
"""
import argparse
import json
import os
import platform
import statistics
import time

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import transformers  # noqa: E402

import semid  # noqa: E402
from semid.hf import SidLogitsProcessor  # noqa: E402

PAD, BOS, EOS, NSPECIAL = 0, 1, 2, 3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data", nargs="?")
    ap.add_argument("--random-sids", type=int, default=0)
    ap.add_argument("--levels", type=int, default=3)
    ap.add_argument("--codebook", type=int, default=256)
    ap.add_argument("--beams", type=int, default=20)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--history", type=int, default=20)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)

    if a.data:
        x = np.load(a.data)
        q, _ = semid.RqKMeans.fit(x, levels=a.levels, k=a.codebook, seed=a.seed)
        index, _ = semid.SemanticIndex.build(q, x)
        trie = index.trie
        _, ids = index.ids()
        label = os.path.basename(a.data)
    else:
        n = a.random_sids or 10000
        ids = np.unique(rng.integers(0, a.codebook, (n, a.levels)), axis=0)
        trie = semid.Trie.from_ids(ids, vocab=[a.codebook] * a.levels)
        label = f"random_{n}_sids"
    depth = trie.id_len
    offsets = NSPECIAL + np.concatenate([[0], np.cumsum(trie.codebook_sizes)[:-1]])
    tok = ids.astype(np.int64) + offsets
    vocab = int(NSPECIAL + sum(trie.codebook_sizes))
    valid = {tuple(r) for r in tok.tolist()}
    t0 = time.perf_counter()
    root = {}
    for row in tok.tolist():
        node = root
        for t in row:
            node = node.setdefault(t, {})
    dict_build_s = time.perf_counter() - t0

    pick = rng.integers(0, len(tok), (a.batch, a.history))
    prompts = np.concatenate([np.full((a.batch, 1), BOS), tok[pick].reshape(a.batch, -1)], 1)
    input_ids = torch.tensor(prompts, dtype=torch.long)
    plen = input_ids.shape[1]
    cfg = transformers.GPT2Config(vocab_size=vocab, n_positions=max(128, plen + depth + 8),
                                  n_embd=64, n_layer=2, n_head=2, bos_token_id=BOS,
                                  eos_token_id=EOS, pad_token_id=PAD)
    model = transformers.GPT2LMHeadModel(cfg).eval()

    stats = {"dict": [0.0, 0], "dict_processor": [0.0, 0], "semid": [0.0, 0]}

    def prefix_fn(batch_id, sent):
        t = time.perf_counter()
        node = root
        for v in sent[plen:].tolist():
            node = node.get(v)
            if node is None:
                break
        out = list(node.keys()) if node else [EOS]
        stats["dict"][0] += time.perf_counter() - t
        stats["dict"][1] += 1
        return out

    proc = SidLogitsProcessor(trie, vocab, offsets=offsets, prompt_length=plen)

    class Timed(transformers.LogitsProcessor):
        def __call__(self, input_ids, scores):
            t = time.perf_counter()
            out = proc(input_ids, scores)
            stats["semid"][0] += time.perf_counter() - t
            stats["semid"][1] += 1
            return out

    kw = dict(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
              num_beams=a.beams, num_return_sequences=a.beams, max_new_tokens=depth,
              min_new_tokens=depth, do_sample=False, early_stopping=True, pad_token_id=PAD,
              eos_token_id=EOS)
    # The dict-trie side runs HF's own PrefixConstrainedLogitsProcessor
    # (what generate(prefix_allowed_tokens_fn=...) builds), timed whole: the
    # Python function and the per-beam masking around it.
    hf_proc = transformers.PrefixConstrainedLogitsProcessor(prefix_fn, a.beams)

    class TimedDict(transformers.LogitsProcessor):
        def __call__(self, input_ids, scores):
            t = time.perf_counter()
            out = hf_proc(input_ids, scores)
            stats["dict_processor"][0] += time.perf_counter() - t
            stats["dict_processor"][1] += 1
            return out

    variants = {
        "none": {},
        "dict": {"logits_processor": transformers.LogitsProcessorList([TimedDict()])},
        "semid": {"logits_processor": transformers.LogitsProcessorList([Timed()])},
    }

    def run(name):
        with torch.no_grad():
            return model.generate(**kw, **variants[name])

    for name in variants:
        run(name)  # warm-up
    for s in stats.values():
        s[0], s[1] = 0.0, 0
    times = {n: [] for n in variants}
    outs = {}
    names = list(variants)
    for r in range(a.runs):
        for name in names[r % 3:] + names[: r % 3]:
            t0 = time.perf_counter()
            outs[name] = run(name)
            times[name].append(time.perf_counter() - t0)
    med = {n: statistics.median(v) for n, v in times.items()}
    B = a.batch
    gen = {n: o[:, plen:plen + depth] for n, o in outs.items()}
    res = {
        "bench": "hf_constrained", "label": label, "n_ids": len(valid), "depth": depth,
        "vocab": vocab, "batch_queries": B, "num_beams": a.beams, "prompt_len": plen,
        "threads": a.threads, "runs": a.runs, "torch": torch.__version__,
        "transformers": transformers.__version__, "dict_trie_build_s": round(dict_build_s, 4),
        "ms_per_query": {n: round(1000 * v / B, 3) for n, v in med.items()},
        "batch_s_all": {n: [round(t, 4) for t in v] for n, v in times.items()},
        "overhead_ms_per_query": {
            n: round(1000 * (med[n] - med["none"]) / B, 3) for n in ("dict", "semid")},
        "constraint_ms_per_query": {
            "dict": round(1000 * stats["dict_processor"][0] / a.runs / B, 4),
            "semid": round(1000 * stats["semid"][0] / a.runs / B, 4)},
        "dict_fn_ms_per_query": round(1000 * stats["dict"][0] / a.runs / B, 4),
        "constraint_calls_per_batch": {
            "dict_fn": stats["dict"][1] / a.runs, "semid": stats["semid"][1] / a.runs},
        "identical_dict_vs_semid": bool(torch.equal(gen["dict"], gen["semid"])),
        "valid_fraction": {
            n: float(np.mean([tuple(g) in valid for g in o.tolist()])) for n, o in gen.items()},
        "machine": f"{platform.machine()} {os.cpu_count()}cpu",
    }
    cb = res["constraint_ms_per_query"]
    res["constraint_ratio_dict_over_semid"] = round(cb["dict"] / max(cb["semid"], 1e-9), 1)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
