#!/usr/bin/env python3
"""Writes residual_fsq_cases.tsv: vector-quantize-pytorch's ResidualFSQ
(default options, no projection) indices and output, plus symmetric FSQ
(preserve_symmetry = True, tanh bound) indices.

usage: python gen_residual_fsq.py > residual_fsq_cases.tsv
(needs torch and vector-quantize-pytorch; the crate's tests read the TSV)
"""
import importlib.metadata
import struct
import torch
from vector_quantize_pytorch import ResidualFSQ, FSQ

torch.manual_seed(0)
hexf = lambda v: struct.pack(">f", float(v)).hex()
print(f"# vector-quantize-pytorch {importlib.metadata.version('vector-quantize-pytorch')}, torch {torch.__version__}")
print("# kind\tlevels\tquantizers\tinput_hex\tindices\toutput_hex")
for levels, nq in (([8, 5, 5, 5], 3), ([7, 5, 5, 5, 5], 2), ([2, 2, 2, 2, 2, 2, 2, 2], 4)):
    rfsq = ResidualFSQ(levels=levels, num_quantizers=nq).eval()
    x = torch.cat([torch.randn(60, len(levels)), torch.randn(20, len(levels)) * 4, torch.rand(20, len(levels)) * 0.2 - 0.1])
    with torch.no_grad():
        out, idx = rfsq(x.unsqueeze(0))
    for r in range(len(x)):
        print("rfsq\t" + ",".join(map(str, levels)) + f"\t{nq}\t" + ",".join(hexf(v) for v in x[r])
              + "\t" + ",".join(str(int(i)) for i in idx[0, r]) + "\t" + ",".join(hexf(v) for v in out[0, r]))
for levels in ([8, 5, 5, 5], [2, 3, 4, 5]):
    fsq = FSQ(levels=levels, preserve_symmetry=True).eval()
    x = torch.cat([torch.randn(80, len(levels)) * 1.5, torch.rand(20, len(levels)) * 0.02 - 0.01])
    with torch.no_grad():
        out, idx = fsq(x.unsqueeze(0))
    for r in range(len(x)):
        print("sym\t" + ",".join(map(str, levels)) + "\t1\t" + ",".join(hexf(v) for v in x[r])
              + f"\t{int(idx[0, r])}\t" + ",".join(hexf(v) for v in out[0, r]))
