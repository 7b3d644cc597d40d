#!/usr/bin/env python3
"""Writes the tiny HuggingFace checkpoints semid-gen's tests load, and the
logits PyTorch computes for fixed inputs.

usage: python make_fixtures.py            (writes next to this file)
needs: torch, transformers, safetensors (versions recorded in each expected.json)

Each folder holds config.json + model.safetensors as `save_pretrained`
writes them, and expected.json: the inputs and the logits of
`model(...).logits` in eval mode (float32, no dropout).
"""
import json, os, sys

import torch
import transformers
from transformers import GPT2Config, GPT2LMHeadModel, T5Config, T5ForConditionalGeneration

HERE = os.path.dirname(os.path.abspath(__file__))


def versions():
    return {"torch": torch.__version__, "transformers": transformers.__version__}


def t5(name, **kw):
    torch.manual_seed(7)
    cfg = T5Config(vocab_size=40, d_model=16, d_kv=4, d_ff=32, num_layers=2, num_decoder_layers=3,
                   num_heads=4, relative_attention_num_buckets=8, relative_attention_max_distance=20,
                   dropout_rate=0.1, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, **kw)
    model = T5ForConditionalGeneration(cfg).eval()
    # Non-trivial norms (init leaves them at 1).
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "layer_norm" in n:
                p.uniform_(0.5, 1.5)
    out = os.path.join(HERE, name)
    model.save_pretrained(out, safe_serialization=True)
    # Encoder rows of 24 and 9 tokens (the second padded), decoder rows of 5.
    enc = torch.tensor([[(3 * j + 2) % 40 for j in range(24)], [(5 * j + 1) % 40 for j in range(9)] + [0] * 15])
    mask = torch.tensor([[1] * 24, [1] * 9 + [0] * 15])
    dec = torch.tensor([[0, 5, 7, 9, 11], [0, 30, 2, 17, 39]])
    with torch.no_grad():
        logits = model(input_ids=enc, attention_mask=mask, decoder_input_ids=dec).logits
        reloaded = T5ForConditionalGeneration.from_pretrained(out).eval()
        again = reloaded(input_ids=enc, attention_mask=mask, decoder_input_ids=dec).logits
    assert torch.allclose(logits, again, atol=1e-6), "save/load changed the model"
    json.dump({"input_ids": enc.tolist(), "attention_mask": mask.tolist(), "decoder_input_ids": dec.tolist(),
               "logits": logits.tolist(), "versions": versions(),
               "tie_word_embeddings": kw.get("tie_word_embeddings", True)},
              open(os.path.join(out, "expected.json"), "w"))
    print(name, tuple(logits.shape), sorted(os.listdir(out)))


def t5_v4_untied():
    """A transformers-4 style untied T5 (T5 v1.1 and most TIGER re-implementations):
    its own lm_head.weight, tie_word_embeddings false, no output scaling. transformers 5
    always ties, so the head is untied by hand and the file written with safetensors."""
    from safetensors.torch import save_file
    torch.manual_seed(9)
    cfg = T5Config(vocab_size=40, d_model=16, d_kv=4, d_ff=32, num_layers=2, num_heads=4,
                   relative_attention_num_buckets=8, relative_attention_max_distance=20,
                   feed_forward_proj="relu", tie_word_embeddings=False, decoder_start_token_id=0)
    model = T5ForConditionalGeneration(cfg).eval()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "layer_norm" in n:
                p.uniform_(0.5, 1.5)
        model.lm_head = torch.nn.Linear(16, 40, bias=False)
        model.lm_head.weight.normal_(0.0, 1.0)
    assert model.lm_head.weight.data_ptr() != model.shared.weight.data_ptr()
    assert not model.config.scale_decoder_outputs
    out = os.path.join(HERE, "t5_relu_untied_v4")
    os.makedirs(out, exist_ok=True)
    sd = {k: v.contiguous() for k, v in model.state_dict().items()
          if k not in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight")}
    sd["lm_head.weight"] = model.lm_head.weight.detach().contiguous()
    save_file(sd, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    conf = {k: v for k, v in cfg.to_dict().items() if k not in ("scale_decoder_outputs",)}
    conf["tie_word_embeddings"] = False
    json.dump(conf, open(os.path.join(out, "config.json"), "w"), indent=2)
    enc = torch.tensor([[(3 * j + 2) % 40 for j in range(24)], [(5 * j + 1) % 40 for j in range(9)] + [0] * 15])
    mask = torch.tensor([[1] * 24, [1] * 9 + [0] * 15])
    dec = torch.tensor([[0, 5, 7, 9, 11], [0, 30, 2, 17, 39]])
    with torch.no_grad():
        logits = model(input_ids=enc, attention_mask=mask, decoder_input_ids=dec).logits
    json.dump({"input_ids": enc.tolist(), "attention_mask": mask.tolist(), "decoder_input_ids": dec.tolist(),
               "logits": logits.tolist(), "versions": versions(), "tie_word_embeddings": False},
              open(os.path.join(out, "expected.json"), "w"))
    print("t5_relu_untied_v4", tuple(logits.shape), sorted(os.listdir(out)))


def gpt2():
    torch.manual_seed(11)
    cfg = GPT2Config(vocab_size=40, n_positions=32, n_embd=16, n_layer=2, n_head=4, bos_token_id=38, eos_token_id=39)
    model = GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if ".ln_" in n and n.endswith("weight"):
                p.uniform_(0.5, 1.5)
            elif n.endswith("bias"):
                p.uniform_(-0.1, 0.1)
    out = os.path.join(HERE, "gpt2")
    model.save_pretrained(out, safe_serialization=True)
    ids = torch.tensor([[(7 * j + 3) % 40 for j in range(12)], [(11 * j + 5) % 40 for j in range(12)]])
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    json.dump({"input_ids": ids.tolist(), "logits": logits.tolist(), "versions": versions()},
              open(os.path.join(out, "expected.json"), "w"))
    print("gpt2", tuple(logits.shape), sorted(os.listdir(out)))


def tokens_json(name):
    """The SID <-> token layout semid-gen's HfModel reads: two levels of 5 codes
    at tokens 10..15 and 20..25 of the 40-token vocabulary, EOS 1, PAD 0."""
    json.dump({"table": [list(range(10, 15)), list(range(20, 25))], "vocab_size": 40,
               "specials": {"bos": None, "eos": 1, "pad": 0, "sep": None}},
              open(os.path.join(HERE, name, "tokens.json"), "w"))


if __name__ == "__main__":
    t5("t5_relu_v5", feed_forward_proj="relu", tie_word_embeddings=False)
    t5_v4_untied()
    t5("t5_gated_tied", feed_forward_proj="gated-gelu")
    gpt2()
    tokens_json("t5_gated_tied")
    tokens_json("gpt2")
