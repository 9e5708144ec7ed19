"""Truncated SVD at k=20: mfrec's randomized solver against its dense solver
(LAPACK dgesdd) and scipy.sparse.linalg.svds (ARPACK), timed in the same run,
on MovieLens 100K and on a synthetic 100k x 20k matrix with 5M ratings; and
the peak memory of the randomized fit on the synthetic one.

The matrix is the residual of the baseline fill (what Model("svd") factors).
Times are the best of --repeat runs; every solver gets --threads threads
(OpenMP and BLAS alike). Run: python benchmarks/bench_svd.py [--threads 1]
"""
import argparse
import os
import subprocess
import sys
import time

import numpy as np

import mfrec
from mfrec import _core

K = 20


def best_time(fn, repeat):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def proc_status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def peak_extra_bytes(fn):
    """(result, peak resident memory above the level before the call)."""
    before = proc_status("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the high-water mark to the current RSS
    out = fn()
    return out, proc_status("VmHWM") - before


def residual(users, items, ratings, n_users, n_items, threads):
    """CSRs of the ratings, the baseline fill (f, g) and SciPy's CSR of the
    residual r - f_u - g_i."""
    import scipy.sparse as sp

    by_user = _core.build_csr(users, items, ratings, n_users, n_items)
    by_item = _core.build_csr(items, users, ratings, n_items, n_users)
    mu = float(np.mean(ratings, dtype=np.float64))
    bu, bi = _core.baseline_biases(by_user, by_item, mu, 15.0, 10.0, 10, threads)
    f, g = mu + bu, bi
    indptr, indices, values = by_user
    rows = np.repeat(np.arange(n_users), np.diff(indptr))
    res = sp.csr_matrix((values - f[rows] - g[indices], indices, indptr), (n_users, n_items))
    return by_user, by_item, f, g, res


def svds_desc(res):
    from scipy.sparse.linalg import svds

    s = svds(res, k=K, random_state=0, return_singular_vectors=False)
    return np.sort(s)[::-1]


def compare(name, by_user, by_item, f, g, res, args, dense=True):
    from threadpoolctl import threadpool_limits

    m, n = res.shape
    print(f"\n== {name}: {m} x {n}, {res.nnz} ratings, k={K}, {args.threads} thread(s)")
    rand = lambda: _core.svd_randomized(by_user, by_item, f, g, K, seed=0,  # noqa: E731
                                        n_threads=args.threads)
    t_rand, (s_rand, _, _) = best_time(rand, args.repeat)
    rows = [("mfrec randomized (l=k+20, q=20)", t_rand, s_rand)]
    if dense:
        def dense_fn():
            a = _core.svd_densify(by_user, f, g, n_threads=args.threads)
            return _core.svd_dense(a, K, overwrite_a=True, n_threads=args.threads)

        t_dense, (s_all, _, _) = best_time(dense_fn, args.repeat)
        rows.append(("mfrec dense (dgesdd, all values)", t_dense, s_all[:K]))
    with threadpool_limits(limits=args.threads):
        t_svds, s_svds = best_time(lambda: svds_desc(res), args.repeat)
    rows.append(("scipy.sparse.linalg.svds (ARPACK)", t_svds, s_svds))
    reference = rows[1][2] if dense else s_svds
    print(f"max relative difference of sigma_1..sigma_j from the "
          f"{'dense solver' if dense else 'ARPACK'}'s, j = 10 and 20:")
    print(f"{'solver':36s} {'seconds':>9s} {'x randomized':>13s} {'j=10':>10s} {'j=20':>10s}")
    for label, t, s in rows:
        diff = np.abs(s - reference) / reference
        print(f"{label:36s} {t:9.3f} {t / t_rand:13.2f} {diff[:10].max():10.2e} "
              f"{diff.max():10.2e}")
    if not dense:
        gib = m * n * 8 / 2**30
        print(f"{'mfrec dense':36s} not run: the dense matrix alone needs {gib:.0f} GiB")


def synthetic(seed=0, n_users=100_000, n_items=20_000, nnz=5_000_000, rank=10):
    """Ratings 1..5 from a planted rank-10 model plus noise, at 5M random cells."""
    rng = np.random.default_rng(seed)
    cells = np.unique(rng.integers(0, n_users * n_items, int(nnz * 1.01), dtype=np.int64))
    cells = rng.permutation(cells)[:nnz]
    users, items = (cells // n_items).astype(np.int32), (cells % n_items).astype(np.int32)
    del cells
    P = rng.normal(0, rank ** -0.25, (n_users, rank)).astype(np.float32)
    Q = rng.normal(0, rank ** -0.25, (n_items, rank)).astype(np.float32)
    ratings = np.empty(nnz, np.float32)
    for start in range(0, nnz, 1_000_000):  # in chunks: no nnz x rank temporaries
        sl = slice(start, start + 1_000_000)
        ratings[sl] = 3.5 + np.einsum("ij,ij->i", P[users[sl]], Q[items[sl]])
    ratings += rng.normal(0, 0.5, nnz).astype(np.float32)
    np.clip(np.round(ratings), 1, 5, out=ratings)
    return users, items, ratings, n_users, n_items


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-synthetic", action="store_true")
    ap.add_argument("--memory", action="store_true", help="only the memory figures")
    args = ap.parse_args()
    if args.memory:
        return memory(args)
    print(mfrec.build_info())

    data = mfrec.load_movielens("100k")
    r = data.ratings
    _, u = np.unique(r.user, return_inverse=True)
    _, i = np.unique(r.item, return_inverse=True)
    u, i = u.astype(np.int32), i.astype(np.int32)
    compare("MovieLens 100K", *residual(u, i, r.rating, u.max() + 1, i.max() + 1, args.threads),
            args)
    if args.skip_synthetic:
        return

    users, items, ratings, m, n = synthetic()
    by_user, by_item, f, g, res = residual(users, items, ratings, m, n, args.threads)
    compare("synthetic", by_user, by_item, f, g, res, args, dense=False)

    # memory in a fresh process whose allocator returns freed blocks to the
    # system at once, so that the resident set measures live memory
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    subprocess.run([sys.executable, __file__, "--memory", "--threads", str(args.threads)],
                   env=env, check=True)


def memory(args):
    users, items, ratings, m, n = synthetic()
    by_user, by_item, f, g, res = residual(users, items, ratings, m, n, args.threads)
    del res
    csr_bytes = sum(a.nbytes for a in by_user)
    factor_bytes = (m + n) * K * 8  # U and V, float64
    budget = csr_bytes + factor_bytes
    _, extra = peak_extra_bytes(lambda: _core.svd_randomized(
        by_user, by_item, f, g, K, seed=0, n_threads=args.threads))
    print(f"\npeak memory on the synthetic matrix (the dense one would take "
          f"{m * n * 8 / 2**30:.0f} GiB):")
    print(f"  CSR {csr_bytes / 2**20:.1f} MiB + factors U, V {factor_bytes / 2**20:.1f} MiB "
          f"= {budget / 2**20:.1f} MiB")
    print(f"  randomized SVD call (given both CSRs and the fill): +{extra / 2**20:.1f} MiB "
          f"= {extra / budget:.2f} x")
    del by_user, by_item
    users, items = users.astype(np.int64), items.astype(np.int64)  # raw ids, as a user has them
    model = mfrec.Model("svd", factors=K, fill="baseline", seed=0, n_threads=args.threads)
    t0 = time.perf_counter()
    _, extra = peak_extra_bytes(lambda: model.fit(users, items, ratings))
    print(f"  Model('svd', factors={K}).fit from the triplets: +{extra / 2**20:.1f} MiB "
          f"= {extra / budget:.2f} x (id mapping, both CSRs, fill, SVD, float32 factors; "
          f"{time.perf_counter() - t0:.1f} s, solver {model.solver_used})")

if __name__ == "__main__":
    main()
