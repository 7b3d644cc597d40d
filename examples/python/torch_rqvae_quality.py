#!/usr/bin/env python3
"""PyTorch twin of semid's default RQ-VAE recipe, for a quality comparison on
the same data and the same number of steps (not a semid test: the crate's
tests never need Python).

usage: torch_rqvae_quality.py DATA.npy [--steps 500] [--seed 0] [--threads 2]
                              [--no-standardize] [--mean-loss]

Recipe (semid `RqVaeConfig::default()`): encoder d -> 512 -> 256 -> 128 -> 32
(ReLU), decoder mirrored, 3 residual codebooks of 256 x 32, beta 0.25, Adam
lr 1e-3, batch 1024, straight-through estimator; losses per row summed over
dimensions (reconstruction and VQ), averaged over the batch; inputs centred
and scaled so that rows have mean squared norm sqrt(d); codebooks from
k-means (25 Lloyd iterations, random start) on the encoded residuals of
16 x 256 rows; a code unused for 20 steps is re-seeded from a random row of
the current batch's residuals at its level; at least 500 steps.
--mean-loss averages the reconstruction loss over dimensions too (the old
recipe), --no-standardize feeds raw rows.

Prints one JSON line: MSE (mean over rows of ||x - x_hat||^2 in the data's
units), utilization and perplexity per level, collision rate, train seconds.
"""
import argparse, json, time
import numpy as np, torch, torch.nn as nn


def mlp(dims):
    layers = []
    for a, b in zip(dims[:-1], dims[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def kmeans(x, k, iters, g):
    c = x[torch.randperm(len(x), generator=g)[:k]].clone()
    for _ in range(iters):
        a = torch.cdist(x, c).argmin(1)
        for j in range(k):
            m = a == j
            if m.any():
                c[j] = x[m].mean(0)
    return c


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-standardize", action="store_true")
    ap.add_argument("--mean-loss", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    g = torch.Generator().manual_seed(a.seed)
    raw = torch.from_numpy(np.load(a.data).astype(np.float32))
    n, d = raw.shape
    mu = raw.mean(0)
    var = ((raw - mu) ** 2).mean()
    scale = 1.0 if a.no_standardize else float(d ** -0.25 / var.sqrt())
    if a.no_standardize:
        mu = torch.zeros(d)
    x = (raw - mu) * scale
    L, K, B, lat = 3, 256, 1024, 32
    enc, dec = mlp([d, 512, 256, 128, lat]), mlp([lat, 128, 256, 512, d])
    with torch.no_grad():
        r = enc(x[torch.randperm(n, generator=g)[: min(n, 16 * K)]])
        cbs = []
        for _ in range(L):
            c = kmeans(r, K, 25, g)
            cbs.append(c)
            r = r - c[torch.cdist(r, c).argmin(1)]
    cbs = nn.ParameterList([nn.Parameter(c) for c in cbs])
    opt = torch.optim.Adam(list(enc.parameters()) + list(dec.parameters()) + list(cbs.parameters()), lr=1e-3)
    steps_per_epoch = (n + B - 1) // B
    epochs = max(20, (a.steps + steps_per_epoch - 1) // steps_per_epoch)
    last_used = torch.zeros(L, K, dtype=torch.long)
    step = 0
    t0 = time.perf_counter()
    for ep in range(epochs):
        perm = torch.randperm(n, generator=g)
        for i in range(0, n, B):
            xb = x[perm[i : i + B]]
            z = enc(xb); r = z; q = torch.zeros_like(z); vq = 0.0
            resid, idxs = [], []
            for l, c in enumerate(cbs):
                idx = torch.cdist(r.detach(), c.detach()).argmin(1); e = c[idx]
                vq = vq + ((r.detach() - e) ** 2).sum(1).mean() + 0.25 * ((r - e.detach()) ** 2).sum(1).mean()
                resid.append(r.detach()); idxs.append(idx)
                q = q + e; r = r - e.detach()
            zq = z + (q - z).detach()
            err = (dec(zq) - xb) ** 2
            rec = err.mean() if a.mean_loss else err.sum(1).mean()
            loss = rec + vq
            opt.zero_grad(); loss.backward(); opt.step()
            step += 1
            with torch.no_grad():
                for l in range(L):
                    last_used[l, idxs[l]] = step
                    dead = (step - last_used[l]) >= 20
                    if dead.any():
                        rows = torch.randint(len(xb), (int(dead.sum()),), generator=g)
                        cbs[l][dead] = resid[l][rows]
                        last_used[l, dead] = step
    train_s = time.perf_counter() - t0
    with torch.no_grad():
        r = enc(x); q = torch.zeros_like(r); codes = []
        for c in cbs:
            idx = torch.cdist(r, c).argmin(1); codes.append(idx)
            q = q + c[idx]; r = r - c[idx]
        xh = dec(q) / scale + mu
        mse = float(((xh - raw) ** 2).sum(1).mean())
    codes = torch.stack(codes, 1).numpy().astype(np.int64)
    util, perp = [], []
    for l in range(L):
        cnt = np.bincount(codes[:, l], minlength=K); p = cnt[cnt > 0] / n
        util.append(float((cnt > 0).mean())); perp.append(round(float(np.exp(-(p * np.log(p)).sum())), 1))
    packed = codes[:, 0] * K * K + codes[:, 1] * K + codes[:, 2]
    _, inv, cnt = np.unique(packed, return_inverse=True, return_counts=True)
    print(json.dumps({"peer": "torch RQ-VAE (semid default recipe)", "torch": torch.__version__, "n": n, "d": d,
                      "epochs": epochs, "steps": step, "standardize": not a.no_standardize,
                      "recon_loss": "mean" if a.mean_loss else "sum over dims", "mse": round(mse, 5),
                      "utilization": util, "perplexity": perp, "collision_rate": round(float((cnt[inv] > 1).mean()), 4),
                      "train_s": round(train_s, 1)}))


if __name__ == "__main__":
    main()
