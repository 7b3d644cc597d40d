#!/usr/bin/env python3
"""Level-wise residual k-means with scikit-learn (greedy k-means++, all rows,
20 iterations per level: the semantic-id 0.2.5 recipe). usage: sklearn_rq.py DATA.npy"""
import numpy as np, time, json, sys
from sklearn.cluster import KMeans
import threadpoolctl
x=np.load(sys.argv[1]).astype(np.float32)
n=len(x); r=x.copy(); codes=[]
t=time.perf_counter()
with threadpoolctl.threadpool_limits(2):
    for l in range(3):
        km=KMeans(256, n_init=1, max_iter=20, random_state=1234+l).fit(r)
        c=km.cluster_centers_.astype(np.float32); lab=km.predict(r)
        codes.append(lab); r=r-c[lab]
mse=float((r.astype(np.float64)**2).sum(1).mean())
print(json.dumps({"peer":"sklearn KMeans greedy k-means++ level-wise, all rows, 20 iters","mse":mse,"train_s":round(time.perf_counter()-t,1)}))
