"""Golden cases for semid's Sinkhorn assignment: a numpy twin of LC-Rec's
`sinkhorn_algorithm` and `center_distance_for_constraint`
(LC-Rec/index/models/layers.py, vq.py) and of the collision loop of its
`generate_indices.py`.

- `center`: distances rescaled about (max + min) / 2 in float32, divided by
  `max - middle + 1e-5`, then cast to float64 (as `d.double()` after it).
- `sinkhorn`: Q = exp(-d / eps), Q /= Q.sum(); `iters` times: rows to sum
  1/B, then columns to sum 1/K; Q *= B; argmax per row.
- `collision_loop`: up to `rounds` times, while two items share a code,
  every group of items sharing a code gets new last-level tokens from
  Sinkhorn over that group's last-level distances (earlier levels keep
  their tokens: they are argmin, as LC-Rec's get_indices with sk only at the
  last level).

Run: python gen_sinkhorn.py (numpy only). Writes:
- `cases.tsv`: name, B, K, eps, iters, ties (1: some row's best values tie
  exactly and argmax takes the first), the argmax of every row (comma
  list); the distances of case `name` are `name.npy` (float32, B x K).
- `loop_codes.npy` (float32 holding small ints, n x L), `loop_dist.npy`
  (float32, n x K: each row's last-level distances), `loop_out.npy` (the
  codes after the loop), `loop.tsv`: eps, iters, rounds, rounds run.
"""
import numpy as np


def center(d):
    d = d.astype(np.float32)
    mx, mn = d.max(), d.min()
    middle = np.float32((mx + mn) / np.float32(2))
    amplitude = np.float32(mx - middle + np.float32(1e-5))
    assert amplitude > 0
    return ((d - middle) / amplitude).astype(np.float32).astype(np.float64)


def sinkhorn(d, eps, iters):
    q = np.exp(-d / eps)
    b, k = q.shape
    q = q / q.sum()
    for _ in range(iters):
        q = q / q.sum(axis=1, keepdims=True)
        q = q / b
        q = q / q.sum(axis=0, keepdims=True)
        q = q / k
    q = q * b
    return q


def assign(d, eps, iters):
    return np.argmax(sinkhorn(center(d), eps, iters), axis=-1)


def groups(codes):
    by = {}
    for i, c in enumerate(map(tuple, codes)):
        by.setdefault(c, []).append(i)
    return [g for g in by.values() if len(g) > 1]


def collision_loop(codes, dist, eps, iters, rounds):
    codes = codes.copy()
    t = 0
    while t < rounds:
        gs = groups(codes)
        if not gs:
            break
        for g in gs:
            codes[g, -1] = assign(dist[g], eps, iters)
        t += 1
    return codes, t


def main():
    rng = np.random.default_rng(20261207)
    rows = []
    for name, b, k, eps, iters in [
        ("tall", 40, 16, 0.003, 50),
        ("square", 16, 16, 0.05, 50),
        ("many_rows", 64, 8, 0.003, 50),
        ("eps_big", 12, 10, 0.5, 50),
        ("few_iters", 20, 12, 0.003, 3),
        ("small_soft", 3, 8, 0.3, 50),
        # Collision groups as the loop meets them (B much smaller than K):
        # at eps 0.003 each row holds exact ties (every column it wins sums
        # to the same 1/K), and argmax takes the first, as numpy and torch
        # do. `ties` = 1 marks these.
        ("small", 3, 8, 0.003, 50),
        ("group_of_2", 2, 256, 0.003, 50),
        ("group_of_5", 5, 256, 0.003, 50),
    ]:
        # Squared distances of random points to random codewords.
        z = rng.standard_normal((b, 6)).astype(np.float32)
        c = rng.standard_normal((k, 6)).astype(np.float32)
        d = ((z[:, None, :] - c[None, :, :]) ** 2).sum(-1).astype(np.float32)
        np.save(f"{name}.npy", d)
        q = sinkhorn(center(d), eps, iters)
        a = np.argmax(q, axis=-1)
        top2 = np.sort(q, axis=1)[:, -2:]
        ties = int(not np.all(top2[:, 1] > top2[:, 0] * (1 + 1e-9)))
        rows.append(f"{name}\t{b}\t{k}\t{eps!r}\t{iters}\t{ties}\t{','.join(map(str, a))}")
    with open("cases.tsv", "w") as f:
        f.write("# name\tB\tK\teps\titers\tties\targmax per row\n")
        f.write("\n".join(rows) + "\n")

    # The collision loop: 60 items, 2 levels (8 first codes, 16 last ones
    # of which the quantizer used only 3, so codes collide); last-level
    # distances of each item to the 16 last codewords.
    n, k = 60, 16
    codes = np.stack([rng.integers(0, 8, n), rng.integers(0, 3, n)], axis=1)
    z = rng.standard_normal((n, 5)).astype(np.float32)
    c = rng.standard_normal((k, 5)).astype(np.float32)
    dist = ((z[:, None, :] - c[None, :, :]) ** 2).sum(-1).astype(np.float32)
    out, t = collision_loop(codes, dist, 0.003, 50, 20)
    np.save("loop_codes.npy", codes.astype(np.float32))
    np.save("loop_dist.npy", dist)
    np.save("loop_out.npy", out.astype(np.float32))
    with open("loop.tsv", "w") as f:
        f.write("# eps\titers\trounds\trounds_run\tcollided_before\tcollided_after\n")
        before = sum(len(g) for g in groups(codes))
        after = sum(len(g) for g in groups(out))
        f.write(f"0.003\t50\t20\t{t}\t{before}\t{after}\n")
    print("cases:", len(rows), "loop rounds:", t, "collided", before, "->", after)


if __name__ == "__main__":
    main()
