#!/usr/bin/env python3
"""faiss.ResidualQuantizer(d, 3, 8), beam 1, with a chosen clustering seed, on 2 threads.
usage: faiss_rq_seed.py DATA.npy SEED (the file must be float32)"""
import numpy as np, faiss, time, sys
faiss.omp_set_num_threads(2)
x=np.load(sys.argv[1])
rq=faiss.ResidualQuantizer(x.shape[1],3,8); rq.max_beam_size=1; rq.cp.seed=int(sys.argv[2])
t=time.perf_counter(); rq.train(x); tr=time.perf_counter()-t
c=rq.compute_codes(x).astype(np.int64); xh=rq.decode(rq.compute_codes(x))
mse=float(((x.astype(np.float64)-xh)**2).sum(1).mean())
packed=c[:,0]*65536+c[:,1]*256+c[:,2]
_,inv,cnt=np.unique(packed,return_inverse=True,return_counts=True)
print("FAISS RQ seed", sys.argv[2], "train_s", round(tr,2), "mse", round(mse,5), "coll%", round(float((cnt[inv]>1).mean())*100,2))
