"""ALS speed against implicit's AlternatingLeastSquares, timed in the same run.

    python benchmarks/bench_als.py            # ML-100K + synthetic 100k x 10k, 2M
    python benchmarks/bench_als.py --full     # also 1M users x 100k items, 20M

Both libraries fit the same model: Hu-Koren-Volinsky implicit ALS on binary
data with confidence c = 10 on the observed entries (implicit: alpha=10,
c = alpha r; mfrec: c = 1 + alpha r, so alpha=9), weight 1 on the others,
lambda = 0.1 on every factor (unscaled), k factors, conjugate gradient with
3 steps (and Cholesky on ML-100K), the same number of OpenMP threads.
implicit runs with BLAS limited to one thread through threadpoolctl, as its
documentation demands; mfrec limits BLAS inside its own parallel regions.
A last ML-100K line runs both with BLAS left at its default thread count.

Figures: seconds per iteration (best of several fits on the small sets),
implicit / mfrec ratios (> 1: mfrec faster), the objective each reached
(computed the same way for both, from their factors), and for mfrec the
achieved GFLOP/s of the Gram (ssyrk) and of the row solves against the
sgemm peak measured at the start. "step": the median time of one iteration
(both half-steps; implicit's callback, mfrec's history, which includes the
exact objective); "fit": the whole fit divided by the iterations (set-up
included: mfrec's Model.fit maps ids, builds both CSRs, and records the
train RMSE every iteration); "kernel": mfrec's two half-steps alone.
"""
import argparse
import time

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_info, threadpool_limits

import implicit
import mfrec
from mfrec import _core

ALPHA = 10.0  # confidence of an observed entry
LAMBDA = 0.1
CG_STEPS = 3


def sgemm_peak(threads, n=4096):
    """Best GFLOP/s of a float32 n^3 product through NumPy's OpenBLAS."""
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    with threadpool_limits(threads, "blas"):
        best = min(_timed(lambda: a @ b)[0] for _ in range(3))
    return 2.0 * n ** 3 / best / 1e9


def _timed(f):
    t0 = time.perf_counter()
    out = f()
    return time.perf_counter() - t0, out


def ml100k_binary():
    r = mfrec.load_movielens("100k").ratings
    return _contiguous(r.user, r.item)


def synthetic(n_users, n_items, nnz, seed=0):
    """Interactions with long-tailed user activity and item popularity
    (Zipf-like, exponent 0.8), no repeated pairs."""
    rng = np.random.default_rng(seed)
    user_w = rng.lognormal(0.0, 1.0, n_users)
    item_w = 1.0 / np.arange(1, n_items + 1) ** 0.8
    keys = np.zeros(0, np.int64)
    while len(keys) < nnz:
        m = int((nnz - len(keys)) * 1.1) + 1000
        u = np.searchsorted(np.cumsum(user_w / user_w.sum()), rng.random(m))
        i = np.searchsorted(np.cumsum(item_w / item_w.sum()), rng.random(m))
        u, i = np.minimum(u, n_users - 1), np.minimum(i, n_items - 1)
        keys = np.unique(np.concatenate([keys, u.astype(np.int64) * n_items + i]))
    keys = rng.permutation(keys)[:nnz]
    return _contiguous(keys // n_items, keys % n_items)


def _contiguous(users, items):
    u = np.unique(users, return_inverse=True)[1].ravel().astype(np.int32)
    i = np.unique(items, return_inverse=True)[1].ravel().astype(np.int32)
    return u, i


def objective(P, Q, u, i):
    """sum_obs ALPHA (1 - p.q)^2 + sum_unobs (p.q)^2 + LAMBDA (|P|^2 + |Q|^2),
    the unobserved part through the Gram matrices, in float64."""
    P64, Q64 = P.astype(np.float64), Q.astype(np.float64)
    total = float(np.sum((P64.T @ P64) * (Q64.T @ Q64)))  # sum over all (p.q)^2
    for s in range(0, len(u), 1 << 20):
        pred = np.einsum("ij,ij->i", P64[u[s:s + (1 << 20)]], Q64[i[s:s + (1 << 20)]])
        total += float(np.sum(ALPHA * (1 - pred) ** 2 - pred ** 2))
    return total + LAMBDA * float(np.sum(P64 ** 2) + np.sum(Q64 ** 2))


def fit_implicit(csr, k, threads, iterations, use_cg):
    """Fit seconds, factors, and the median seconds of one iteration (both
    half-steps, as implicit's callback times them)."""
    model = implicit.cpu.als.AlternatingLeastSquares(
        factors=k, regularization=LAMBDA, alpha=ALPHA, iterations=iterations,
        use_cg=use_cg, num_threads=threads, random_state=0, calculate_training_loss=False)
    steps = []
    seconds, _ = _timed(lambda: model.fit(csr, show_progress=False,
                                          callback=lambda it, elapsed, loss: steps.append(elapsed)))
    return seconds, model.user_factors, model.item_factors, float(np.median(steps))


def fit_mfrec(u, i, k, threads, iterations, solver):
    """Fit seconds, factors, and the median seconds of one iteration's step
    (both half-steps and the exact objective, as the history records it)."""
    model = mfrec.Model("wals", factors=k, alpha=ALPHA - 1.0, unobserved_weight=1.0,
                        regularization=LAMBDA, iterations=iterations, solver=solver,
                        cg_steps=CG_STEPS, n_threads=threads, seed=0)
    seconds, _ = _timed(lambda: model.fit(u, i, np.ones(len(u), np.float32)))
    step = float(np.median([row["seconds"] for row in model.history]))
    return seconds, model.user_factors, model.item_factors, step


def half_step_flops(indptr, d, n_cols, solver):
    """Useful floating-point operations of one half-step: the Gram (ssyrk)
    and the row solves (CG: CG_STEPS + 1 products with the implicit matrix,
    each 2 d^2 + 4 d per entry; Cholesky: d(d+1) per entry for the matrix,
    d^3/3 for the factorization, 2 d per entry and 4 d^2 for b and solves)."""
    n_rows, nnz = len(indptr) - 1, int(indptr[-1])
    gram = n_cols * d * (d + 1)
    if solver == "cg":
        solve = (CG_STEPS + 1) * (n_rows * 2 * d * d + nnz * 4 * d)
    else:
        solve = nnz * (d * (d + 1) + 2 * d) + n_rows * (d ** 3 / 3 + 4 * d * d)
    return gram, solve


def kernel_profile(u, i, k, threads, solver, repeats):
    """Seconds of the two half-steps alone (best of `repeats`), and GFLOP/s
    of their Gram and solve parts."""
    n_u, n_i = int(u.max()) + 1, int(i.max()) + 1
    ones = np.ones(len(u), np.float32)
    by_user = _core.build_csr(u, i, ones, n_u, n_i)
    by_item = _core.build_csr(i, u, ones, n_i, n_u)
    rng = np.random.default_rng(0)
    P = rng.normal(0, 0.1, (n_u, k)).astype(np.float32)
    Q = rng.normal(0, 0.1, (n_i, k)).astype(np.float32)
    kw = dict(regularization=LAMBDA, unobserved_weight=1.0, alpha=ALPHA - 1.0, binary=True,
              solver=solver, cg_steps=CG_STEPS, n_threads=threads, loss=False)
    best = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        s_u = _core.als_half_step(*by_user, Q, P, **kw)
        s_i = _core.als_half_step(*by_item, P, Q, **kw)
        total = time.perf_counter() - t0
        if best is None or total < best[0]:
            best = (total, s_u, s_i)
    total, s_u, s_i = best
    g_u, v_u = half_step_flops(by_user[0], k, n_i, solver)
    g_i, v_i = half_step_flops(by_item[0], k, n_u, solver)
    gram_s = s_u["gram_seconds"] + s_i["gram_seconds"]
    solve_s = s_u["solve_seconds"] + s_i["solve_seconds"]
    return total, (g_u + g_i) / gram_s / 1e9, (v_u + v_i) / solve_s / 1e9


def compare(name, u, i, k, threads, iterations, repeats, solver, peak):
    csr = sp.csr_matrix((np.ones(len(u), np.float32), (u, i)),
                        shape=(int(u.max()) + 1, int(i.max()) + 1))
    with threadpool_limits(1, "blas"):
        imp = min((fit_implicit(csr, k, threads, iterations, solver == "cg")
                   for _ in range(repeats)), key=lambda r: r[0])
    ours = min((fit_mfrec(u, i, k, threads, iterations, solver) for _ in range(repeats)),
               key=lambda r: r[0])
    kernel, gram_gf, solve_gf = kernel_profile(u, i, k, threads, solver, repeats)
    f_imp, f_ours = objective(imp[1], imp[2], u, i), objective(ours[1], ours[2], u, i)
    print(f"{name:<14} k={k:<3} thr={threads} {solver:<8} | s/it implicit/mfrec: step "
          f"{imp[3]:7.4f}/{ours[3]:7.4f} = {imp[3] / ours[3]:4.2f}x, fit {imp[0] / iterations:7.4f}"
          f"/{ours[0] / iterations:7.4f} = {imp[0] / ours[0]:4.2f}x; mfrec kernel {kernel:7.4f} | "
          f"objective implicit {f_imp:.6g} mfrec {f_ours:.6g} | mfrec GFLOP/s gram "
          f"{gram_gf:5.1f} ({100 * gram_gf / peak:.0f}% of sgemm), solve {solve_gf:5.1f} "
          f"({100 * solve_gf / peak:.0f}%)", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true",
                        help="also the 1M x 100k, 20M-interaction synthetic matrix")
    args = parser.parse_args()
    print("mfrec", mfrec.build_info())
    print("implicit", implicit.__version__, "| BLAS libraries:",
          [(x["internal_api"], x.get("architecture"), x["num_threads"])
           for x in threadpool_info() if x["user_api"] == "blas"])
    peak1 = sgemm_peak(1)
    peak2 = sgemm_peak(2)
    print(f"sgemm peak (4096^3, float32): {peak1:.1f} GFLOP/s on 1 thread, {peak2:.1f} on 2")

    u, i = ml100k_binary()
    print(f"\nMovieLens 100K as binary data: {u.max() + 1} x {i.max() + 1}, {len(u)} entries, "
          "15 iterations")
    for k in (64, 128):
        compare("ml-100k", u, i, k, 1, 15, 3, "cg", peak1)
    compare("ml-100k", u, i, 64, 1, 15, 3, "cholesky", peak1)
    compare("ml-100k", u, i, 64, 2, 15, 3, "cg", peak2)
    # BLAS left at its default thread count (no threadpoolctl limit)
    csr = sp.csr_matrix((np.ones(len(u), np.float32), (u, i)))
    imp = fit_implicit(csr, 64, 2, 15, True)
    ours = fit_mfrec(u, i, 64, 2, 15, "cg")
    print(f"ml-100k, BLAS threads left at default, k=64 thr=2 cg | s/it implicit/mfrec: step "
          f"{imp[3]:7.4f}/{ours[3]:7.4f} = {imp[3] / ours[3]:4.2f}x, fit {imp[0] / 15:7.4f}/"
          f"{ours[0] / 15:7.4f} = {imp[0] / ours[0]:4.2f}x", flush=True)

    sizes = [(100_000, 10_000, 2_000_000, 5)]
    if args.full:
        sizes.append((1_000_000, 100_000, 20_000_000, 3))
    for n_users, n_items, nnz, iterations in sizes:
        t, (u, i) = _timed(lambda: synthetic(n_users, n_items, nnz))
        print(f"\nsynthetic {u.max() + 1} x {i.max() + 1}, {len(u)} entries "
              f"(made in {t:.0f} s), {iterations} iterations")
        for k in (64, 128):
            compare(f"synthetic {nnz // 10**6}M", u, i, k, 1, iterations, 1, "cg", peak1)
        compare(f"synthetic {nnz // 10**6}M", u, i, 64, 2, iterations, 1, "cg", peak2)


if __name__ == "__main__":
    main()
