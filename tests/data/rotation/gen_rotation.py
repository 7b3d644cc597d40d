#!/usr/bin/env python3
"""Writes rotation_cases.tsv: vector-quantize-pytorch's rotate_to(src, tgt)
forward value and the gradient of <rotate_to(src, tgt), g> w.r.t. src.

usage: python gen_rotation.py > rotation_cases.tsv   (needs torch and
vector-quantize-pytorch; the crate's tests only read the TSV)
"""
import torch
import importlib.metadata
from vector_quantize_pytorch.vector_quantize_pytorch import rotate_to

torch.manual_seed(0)
cases = []
for d in (2, 3, 8, 32):
    for _ in range(6):
        cases.append((torch.randn(d), torch.randn(d) * 2.0, torch.randn(d)))
d = 8
x = torch.randn(d)
cases.append((x.clone(), x.clone(), torch.randn(d)))           # src == tgt: identity
cases.append((x.clone(), -x.clone(), torch.randn(d)))          # opposite: u + q = 0
cases.append((x * 1e-8, torch.randn(d), torch.randn(d)))       # |src| below eps
cases.append((x.clone(), torch.zeros(d), torch.randn(d)))      # zero codeword
cases.append((x * 1e3, torch.randn(d) * 1e-3, torch.randn(d))) # scales far apart
print(f"# vector-quantize-pytorch {importlib.metadata.version('vector-quantize-pytorch')}, torch {torch.__version__}")
print("# case\tdim\tsrc\ttgt\tgrad_out\tforward\tgrad_src  (vectors as space-separated float32 reprs)")
fmt = lambda t: " ".join(repr(float(v)) for v in t)
for i, (src, tgt, g) in enumerate(cases):
    s = src.clone().requires_grad_(True)
    out = rotate_to(s.unsqueeze(0), tgt.unsqueeze(0)).squeeze(0)
    (out * g).sum().backward()
    print(f"{i}\t{len(src)}\t{fmt(src)}\t{fmt(tgt)}\t{fmt(g)}\t{fmt(out.detach())}\t{fmt(s.grad)}")
