"""Top-N speed: Model.recommend_all(10) against a NumPy baseline and
implicit's batched recommend, and the scoring's GFLOP/s against this
machine's sgemm peak -- all measured in the same run.

    MFREC_DATA=/path/to/data python benchmarks/bench_topn.py [--threads 1 2]
        [--synthetic-users 200000] [--synthetic-items 50000] [--repeat 5]
        [--other-numpy /path/to/venv-with-numpy-1.x/bin/python]

Two models: MovieLens 100K (943 x 1682) fitted by SGD at k=100, and a
synthetic one at k=64: 200k users x 50k items, 50 random training items per
user (the index of training items comes from a popularity fit; factors and
biases are then drawn at random, which changes nothing in the work). Every
method ranks by mu + b_u + b_i + p_u . q_i and skips the training items;
NumPy, two ways, by blocks of users (one block for MovieLens): the recipe
(P @ Q.T plus the biases, mask, argpartition, sort the n), and the same
with the biases folded into two extra factor columns of the GEMM. implicit
gets the folded factors too. A full scan's GEMM: the sgemm calls that
score every pair (blocks of up to 512 users x tiles of items, 1 MiB of
scores, as mfrec scans small batches) timed alone with NumPy's sgemm on one
thread. Batches of 256 users or more scan the items by decreasing norm and
stop a user's scan once no item left can make its list, so mfrec's call
can take less than that GEMM ("GFLOP/s" counts every pair's products).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

import mfrec
from numpy_recipe import numpy_topn, recipe_scores


def topn_blocking(n_query, n_items):
    """csrc/core/topn.c's block (users) and tile (items) sizes."""
    want = 8 * max(1, -(-n_query // (8 * 512)))
    n_even = max(1, min(want, -(-n_query // 64)))
    block = min(512, max(8, 8 * -(-n_query // (8 * n_even))))
    return block, min(n_items, max(512, (1 << 18) // block))


def best(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), float(np.median(times)), out


def sgemm_peak(threads, repeat):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2048, 2048), dtype=np.float32)
    b = rng.standard_normal((2048, 2048), dtype=np.float32)
    with threadpool_limits(threads, user_api="blas"):
        t = best(lambda: a @ b.T, repeat)[0]
    return 2 * 2048**3 / t / 1e9


def augmented(model):
    """[P, mu + b_u, 1] and [Q, 1, b_i]: one dot product gives the score."""
    P, Q = model.user_factors, model.item_factors
    bu = model.user_bias if model.user_bias is not None else np.zeros(len(P), np.float32)
    bi = model.item_bias if model.item_bias is not None else np.zeros(len(Q), np.float32)
    P1 = np.hstack([P, (bu + np.float32(model.global_mean))[:, None],
                    np.ones((len(P), 1), np.float32)])
    Q1 = np.hstack([Q, np.ones((len(Q), 1), np.float32), bi[:, None]])
    return np.ascontiguousarray(P1), np.ascontiguousarray(Q1)


def folded_scores(P1, Q1):
    """The biases folded into the GEMM (two extra factor columns)."""
    return lambda b0, b1: P1[b0:b1] @ Q1.T


def blocked_gemm(P, Q):
    """The sgemm calls of csrc/core/topn.c's full scan, alone."""
    rows, cols = topn_blocking(len(P), len(Q))
    S = np.empty((rows, cols), np.float32)
    for b0 in range(0, len(P), rows):
        A = P[b0:b0 + rows]
        for j0 in range(0, len(Q), cols):
            B = Q[j0:j0 + cols]
            np.matmul(A, B.T, out=S[:len(A), :len(B)])


def implicit_model(P1, Q1, threads):
    from implicit.cpu.als import AlternatingLeastSquares

    als = AlternatingLeastSquares(factors=P1.shape[1], num_threads=threads, random_state=0)
    als.user_factors, als.item_factors = P1, Q1
    return als


def other_numpy_ms(python, model, threads, repeat):
    """(ms, NumPy version) of the recipe under another interpreter."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.npz")
        np.savez(path, P=model.user_factors, Q=model.item_factors,
                 global_mean=model.global_mean, user_bias=model.user_bias,
                 item_bias=model.item_bias, indptr=model.seen_indptr,
                 indices=model.seen_indices)
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "numpy_recipe.py")
        env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
        out = subprocess.run([python, script, path, str(repeat)], env=env, check=True,
                             capture_output=True, text=True).stdout.split()
    return float(out[0]) / 1e3, out[1]


def run(name, model, threads, repeat, numpy_block, peaks, other_python=None):
    nu, ni, k = len(model.user_ids), len(model.item_ids), model.user_factors.shape[1]
    flops = 2.0 * nu * ni * k
    print(f"\n== {name}: {nu} users x {ni} items, k={k}, "
          f"{len(model.seen_indices)} training items skipped; recommend_all(10) ==")
    P1, Q1 = augmented(model)
    seen = sp.csr_matrix((np.ones(len(model.seen_indices), np.float32), model.seen_indices,
                          model.seen_indptr), shape=(nu, ni))
    ref = model.recommend_all(10, n_threads=1)[0]
    ref_idx = np.searchsorted(model.item_ids, ref)
    with threadpool_limits(1, user_api="blas"):
        t_gemm = best(lambda: blocked_gemm(model.user_factors, model.item_factors), repeat)[0]
    for t in threads:
        t_mf, med_mf, _ = best(lambda: model.recommend_all(10, n_threads=t), repeat)
        with threadpool_limits(t, user_api="blas"):
            recipe = recipe_scores(model.user_factors, model.item_factors, model.global_mean,
                                   model.user_bias, model.item_bias)
            t_rc, _, rc_ids = best(lambda: numpy_topn(recipe, nu, seen.indptr, seen.indices,
                                                      10, numpy_block), repeat)
            t_np, _, np_ids = best(lambda: numpy_topn(folded_scores(P1, Q1), nu, seen.indptr,
                                                      seen.indices, 10, numpy_block), repeat)
        als = implicit_model(P1, Q1, t)
        with threadpool_limits(1, user_api="blas"):
            t_im, _, (im_ids, _) = best(lambda: als.recommend(np.arange(nu), seen, N=10), repeat)
        agree_np = min(np.mean(np.sort(ids, 1) == np.sort(ref_idx, 1)) for ids in (np_ids, rc_ids))
        agree_im = np.mean(np.sort(im_ids, 1) == np.sort(ref_idx, 1))
        gf = flops / t_mf / 1e9
        print(f"threads={t}: mfrec {t_mf * 1e3:9.1f} ms (median {med_mf * 1e3:.1f})  "
              f"numpy recipe {t_rc * 1e3:9.1f} ms  numpy folded {t_np * 1e3:9.1f} ms  "
              f"implicit {t_im * 1e3:9.1f} ms")
        print(f"           -> {t_rc / t_mf:5.1f}x the numpy recipe, {t_np / t_mf:5.1f}x numpy "
              f"with folded biases, {t_im / t_mf:5.1f}x implicit")
        print(f"           scoring incl. selection {gf:6.1f} GFLOP/s = {gf / peaks[t]:5.1%} "
              f"of the sgemm peak ({peaks[t]:.0f}); same lists as numpy {agree_np:.4f}, "
              f"implicit {agree_im:.4f}")
        if other_python:
            t_other, version = other_numpy_ms(other_python, model, t, repeat)
            print(f"           numpy {version} recipe (other interpreter) {t_other * 1e3:.1f} ms "
                  f"-> {t_other / t_mf:5.1f}x")
        if t == 1:
            print(f"           one thread: a full scan's sgemm alone {t_gemm * 1e3:.1f} ms "
                  f"({flops / t_gemm / 1e9:.1f} GFLOP/s); mfrec's whole call "
                  f"{t_mf / t_gemm:.2f} x that")


def synthetic_model(n_users, n_items, k, per_user, seed=0):
    rng = np.random.default_rng(seed)
    cells = np.unique(rng.integers(0, n_items, (n_users, per_user))
                      + np.arange(n_users, dtype=np.int64)[:, None] * n_items)
    users, items = cells // n_items, cells % n_items
    model = mfrec.Model("popular").fit(users, items, np.ones(len(cells), np.float32))
    model.user_factors = rng.standard_normal((len(model.user_ids), k), dtype=np.float32)
    model.item_factors = rng.standard_normal((len(model.item_ids), k), dtype=np.float32)
    model.user_bias = rng.standard_normal(len(model.user_ids), dtype=np.float32)
    model.item_bias = rng.standard_normal(len(model.item_ids), dtype=np.float32)
    model.global_mean = 3.5
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--synthetic-users", type=int, default=200_000)
    ap.add_argument("--synthetic-items", type=int, default=50_000)
    ap.add_argument("--synthetic-repeat", type=int, default=1)
    ap.add_argument("--other-numpy", metavar="PYTHON",
                    help="also time the MovieLens recipe under this interpreter (say a venv "
                         "with numpy<2, whose argpartition the issue's figures reflect)")
    args = ap.parse_args()
    print("build:", mfrec.build_info())
    peaks = {t: sgemm_peak(t, 5) for t in args.threads}
    print("sgemm peak (NumPy, 2048^3, A @ B.T):",
          ", ".join(f"{peaks[t]:.0f} GFLOP/s on {t} thread(s)" for t in args.threads))

    data = mfrec.load_movielens("100k", download=False)
    ml = mfrec.Model("sgd", factors=100, epochs=5, seed=0).fit(data.ratings)
    run("MovieLens 100K", ml, args.threads, args.repeat, len(ml.user_ids), peaks,
        args.other_numpy)

    t0 = time.perf_counter()
    syn = synthetic_model(args.synthetic_users, args.synthetic_items, 64, 50)
    print(f"\n(synthetic model made in {time.perf_counter() - t0:.1f} s)")
    run("synthetic", syn, args.threads, args.synthetic_repeat, 256, peaks)


if __name__ == "__main__":
    main()
