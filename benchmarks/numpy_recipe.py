"""The NumPy top-N baseline of bench_topn.py, importable with nothing but
NumPy, so that it can also be timed under another interpreter (say one
with NumPy 1.x, whose argpartition is the slow part of the recipe):

    python benchmarks/numpy_recipe.py MODEL.npz REPEAT

prints the best time in ms of the recipe on the arrays bench_topn.py saved
(BLAS threads from the environment, e.g. OPENBLAS_NUM_THREADS).
"""
import sys
import time

import numpy as np


def numpy_topn(scores, n_users, indptr, indices, n, block):
    """Top-n of each user by blocks: scores(b0, b1) gives the block's score
    matrix; mask the training items (CSR indptr/indices), argpartition,
    sort the n."""
    out = np.empty((n_users, n), np.int64)
    for b0 in range(0, n_users, block):
        b1 = min(n_users, b0 + block)
        S = scores(b0, b1)
        lo, hi = indptr[b0], indptr[b1]
        S[np.repeat(np.arange(b1 - b0), np.diff(indptr[b0:b1 + 1])), indices[lo:hi]] = -np.inf
        part = np.argpartition(-S, n - 1, axis=1)[:, :n]
        order = np.argsort(-np.take_along_axis(S, part, 1), axis=1, kind="stable")
        out[b0:b1] = np.take_along_axis(part, order, 1)
    return out


def recipe_scores(P, Q, global_mean, user_bias, item_bias):
    """The issue's recipe: P @ Q.T, then the biases added."""
    mu_bu = np.float32(global_mean) + user_bias
    return lambda b0, b1: P[b0:b1] @ Q.T + mu_bu[b0:b1, None] + item_bias


def best_ms(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * min(times)


def main(path, repeat):
    z = np.load(path)
    P, Q = z["P"], z["Q"]
    scores = recipe_scores(P, Q, z["global_mean"], z["user_bias"], z["item_bias"])
    ms = best_ms(lambda: numpy_topn(scores, len(P), z["indptr"], z["indices"], 10, len(P)),
                 repeat)
    print(f"{ms:.3f} {np.__version__}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
