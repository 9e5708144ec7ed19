"""How fit costs grow with the data: ratings shaped like MovieLens 25M.

    python benchmarks/bench_scale.py                       # 1M, 5M, 25M; threads 1 and 2
    python benchmarks/bench_scale.py --sizes 2M,5M --threads 2 --algorithms als,wals
    python benchmarks/bench_scale.py --sizes 25M --algorithms topn   # recommend_all(10)

Data: 162,541 users x 59,047 items (MovieLens 25M's shape), long-tailed user
activity and item popularity (bench_als.synthetic), ratings from a planted
rank-8 model with biases and noise, rounded to half stars in [0.5, 5].
Every size draws from the same distributions, seeded, and is cached as .npy
files (raw ids int64, ratings float32: 20 bytes a rating) under --cache.

Each (size, algorithm, threads) fits in a fresh process, k=64: "als"
(explicit, CG), "wals" (implicit feedback on the ratings as ones, CG, the
model bench_als.py fits, beside implicit's AlternatingLeastSquares in the
same process) and "sgd". Figures: seconds per iteration (median of the
history's), the kernels' own seconds per iteration (timed around each
_core kernel call), set-up (from fit's start to its first kernel call: ids,
both CSRs, initial factors) against SciPy's two CSR builds of the same
triplets in the same process, the whole fit against set-up + kernels, and
the peak RSS the fit added against the input's size (fits with
record_train=False: no train RMSE pass, the option for big data). Then the growth of
seconds per iteration between consecutive sizes (x5 is linear for 5M->25M).

"topn" (not among the defaults): recommend_all(10) of the "wals" model of
the size (fitted once with 2 threads, cached beside the data) skipping the
seen items, against implicit's recommend of every user with the same
factors (filter_already_liked_items, num_threads as mfrec's, BLAS on one
thread as implicit asks), each run twice, and whether both list the same
items; its growth between sizes is that of recommend_all's seconds.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

import mfrec
from mfrec import _core

N_USERS, N_ITEMS = 162_541, 59_047
K = 64
ITERATIONS = 3
KERNELS = {"als": "als_half_step", "wals": "als_half_step", "sgd": "sgd_epoch"}
PARAMS = {
    "als": dict(factors=K, solver="cg", iterations=ITERATIONS),
    "sgd": dict(factors=K, epochs=ITERATIONS, learning_rate=0.005),
}


def parse_size(text):
    scale = {"K": 10**3, "M": 10**6}.get(text[-1].upper(), 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def dataset(nnz, cache):
    """(users int64, items int64, ratings float32) of `nnz` ratings, cached."""
    paths = [os.path.join(cache, f"scale-{nnz}-{name}.npy") for name in ("u", "i", "r")]
    if not all(os.path.exists(p) for p in paths):
        from bench_als import synthetic  # the script's folder is on sys.path

        u, i = synthetic(N_USERS, N_ITEMS, nnz, seed=nnz)
        rng = np.random.default_rng(1)  # one planted model for every size
        P, Q = rng.normal(0, 0.35, (N_USERS, 8)), rng.normal(0, 0.35, (N_ITEMS, 8))
        bu, bi = rng.normal(0, 0.4, N_USERS), rng.normal(0, 0.4, N_ITEMS)
        noise = np.random.default_rng(nnz)
        r = np.empty(len(u), np.float32)
        for s in range(0, len(u), 1 << 22):
            uu, ii = u[s:s + (1 << 22)], i[s:s + (1 << 22)]
            x = 3.5 + bu[uu] + bi[ii] + np.einsum("ij,ij->i", P[uu], Q[ii]) \
                + noise.normal(0, 0.5, len(uu))
            r[s:s + len(uu)] = np.clip(np.round(2 * x) / 2, 0.5, 5.0)
        os.makedirs(cache, exist_ok=True)
        for p, a in zip(paths, (u.astype(np.int64), i.astype(np.int64), r)):
            np.save(p, a)
    return tuple(np.load(p) for p in paths)


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def timed_kernel(name, calls):
    """Wrap _core.<name> so that each call's start and seconds land in calls."""
    real = getattr(_core, name)

    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            calls.append((t0, time.perf_counter() - t0))
    setattr(_core, name, wrapper)


def wals_params():
    from bench_als import ALPHA, CG_STEPS, LAMBDA
    return dict(factors=K, alpha=ALPHA - 1.0, unobserved_weight=1.0, regularization=LAMBDA,
                solver="cg", cg_steps=CG_STEPS, iterations=ITERATIONS)


def child(nnz, algorithm, threads, cache):
    """One fit in this process; prints its figures as one JSON line."""
    if algorithm == "topn":
        return print(json.dumps(topn_child(nnz, threads, cache)), flush=True)
    u, i, r = dataset(nnz, cache)
    if algorithm == "wals":
        r = np.ones(len(u), np.float32)
    params = wals_params() if algorithm == "wals" else PARAMS[algorithm]
    before = rss_bytes()
    calls = []
    timed_kernel(KERNELS[algorithm], calls)
    model = mfrec.Model(algorithm, n_threads=threads, seed=0, **params)
    t0 = time.perf_counter()
    model.fit(u, i, r, record_train=False)  # big data: no pass for the train RMSE
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out = dict(nnz=len(u), algorithm=algorithm, threads=threads, wall=wall,
               setup=calls[0][0] - t0, kernels=sum(c[1] for c in calls),
               per_iteration=float(np.median([h["seconds"] for h in model.history])),
               kernel_per_iteration=sum(c[1] for c in calls) / ITERATIONS,
               added_rss=peak - before, input_bytes=u.nbytes + i.nbytes + r.nbytes)
    out.update(scipy_setup(u, i, r))
    if algorithm == "wals":
        out["implicit_per_iteration"] = implicit_per_iteration(u, i, threads)
    print(json.dumps(out), flush=True)


def scipy_setup(u, i, r):
    """Seconds of SciPy's CSR and CSC builds from the triplets (ids mapped
    to indices first, as Model.fit maps them; that part timed apart)."""
    import scipy.sparse as sp

    t0 = time.perf_counter()
    (uids, uidx), (iids, iidx) = (np.unique(x, return_inverse=True) for x in (u, i))
    t1 = time.perf_counter()
    shape = (len(uids), len(iids))
    sp.csr_matrix((r, (uidx, iidx)), shape=shape)
    t2 = time.perf_counter()
    sp.csc_matrix((r, (uidx, iidx)), shape=shape)
    return dict(numpy_ids=t1 - t0, scipy_csrs=time.perf_counter() - t1, scipy_csr=t2 - t1)


def implicit_per_iteration(u, i, threads):
    import scipy.sparse as sp
    from bench_als import fit_implicit
    from threadpoolctl import threadpool_limits

    uidx, iidx = (np.unique(x, return_inverse=True)[1].ravel() for x in (u, i))
    csr = sp.csr_matrix((np.ones(len(u), np.float32), (uidx, iidx)))
    with threadpool_limits(1, "blas"):
        return fit_implicit(csr, K, threads, ITERATIONS, True)[3]


def topn_model(nnz, cache):
    """The wals model of `nnz` ratings (as the "wals" child fits it, 2
    threads), cached beside the data: top-N lists come from a fitted
    model's scores, whose spread sets how much of the selection work a
    bound skips."""
    path = os.path.join(cache, f"topn-wals-{nnz}.npz")
    if not os.path.exists(path):
        u, i, _ = dataset(nnz, cache)
        model = mfrec.Model("wals", n_threads=2, seed=0, **wals_params())
        model.fit(u, i, np.ones(len(u), np.float32)).save(path)
    return mfrec.Model.load(path)


def topn_child(nnz, threads, cache):
    """recommend_all(10) skipping seen items against implicit's batch
    recommend of the same factors (filter_already_liked_items), each run
    twice; at 1 thread also what scoring every pair costs: the sgemm calls
    of a full scan (NumPy, blocks of 512 users x tiles of 512 items) alone."""
    import scipy.sparse as sp
    from bench_topn import blocked_gemm, implicit_model
    from threadpoolctl import threadpool_limits

    model = topn_model(nnz, cache)
    P, Q = model.user_factors, model.item_factors
    seen = sp.csr_matrix((np.ones(len(model.seen_indices), np.float32), model.seen_indices,
                          model.seen_indptr), shape=(len(P), len(Q)))
    out = dict(nnz=nnz, algorithm="topn", threads=threads, users=len(P), items=len(Q))
    mine = best_of(lambda: model.recommend_all(10, n_threads=threads)[0])
    als = implicit_model(P, Q, threads)
    with threadpool_limits(1, "blas"):
        theirs = best_of(lambda: als.recommend(np.arange(len(P)), seen, N=10)[0])
        if threads == 1:
            out["sgemm"] = best_of(lambda: blocked_gemm(P, Q))[0]
    mine_idx = np.searchsorted(model.item_ids, mine[1])
    out["same_lists"] = float(np.mean(np.all(np.sort(mine_idx, 1) == np.sort(theirs[1], 1), 1)))
    out.update(per_iteration=mine[0], kernel_per_iteration=mine[0], implicit=theirs[0],
               runs=mine[2], implicit_runs=theirs[2])
    return out


def best_of(fn, repeat=2):
    """(least seconds of `repeat` calls, the last call's result, all seconds)"""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result, times


def report_topn(rows):
    print("recommend_all(10), seen items skipped, against implicit's recommend (same factors):")
    for o in rows:
        line = (f"{o['nnz']:>9} {o['users']} x {o['items']} thr {o['threads']} | mfrec "
                f"{o['per_iteration']:6.2f} s, implicit {o['implicit']:6.2f} s = "
                f"{o['implicit'] / o['per_iteration']:.2f}x mfrec's | same lists "
                f"{o['same_lists']:.4f} | runs {o['runs']} and {o['implicit_runs']}")
        if "sgemm" in o:
            line += f" | a full scan's sgemm alone {o['sgemm']:6.2f} s"
        print(line, flush=True)


def machine():
    info = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    l3 = "/sys/devices/system/cpu/cpu0/cache/index3/size"
    if os.path.exists(l3):
        info["L3"] = open(l3).read().strip()
    info["cores"] = os.cpu_count()
    return info


def report(rows):
    report_topn([o for o in rows if o["algorithm"] == "topn"])
    print(f"{'size':>9} {'algo':<5} thr | s/it  kernel/it | fit = setup + kernels + rest "
          f"(fit / (setup + kernels)) | setup vs SciPy CSR+CSC (ids) | added RSS / input")
    for o in rows:
        if o["algorithm"] == "topn":
            continue
        rest = o["wall"] - o["setup"] - o["kernels"]
        line = (f"{o['nnz']:>9} {o['algorithm']:<5} {o['threads']:>3} | {o['per_iteration']:6.3f} "
                f"{o['kernel_per_iteration']:6.3f} | {o['wall']:6.2f} = {o['setup']:5.2f} + "
                f"{o['kernels']:6.2f} + {rest:5.2f} ({o['wall'] / (o['setup'] + o['kernels']):.3f}) "
                f"| {o['setup']:5.2f} vs {o['scipy_csrs']:5.2f} ({o['numpy_ids']:4.2f}) | "
                f"{o['added_rss'] / 2**20:6.0f} / {o['input_bytes'] / 2**20:5.0f} MiB "
                f"= {o['added_rss'] / o['input_bytes']:.2f}")
        if "implicit_per_iteration" in o:
            line += (f" | implicit s/it {o['implicit_per_iteration']:.3f} = "
                     f"{o['implicit_per_iteration'] / o['per_iteration']:.2f}x mfrec's")
        print(line, flush=True)
    print("\ngrowth of seconds per iteration (kernel's in brackets) between sizes:")
    for o in rows:
        for p in rows:
            if (p["algorithm"], p["threads"]) == (o["algorithm"], o["threads"]) and \
                    p["nnz"] > o["nnz"] and not any(
                        q["nnz"] in range(o["nnz"] + 1, p["nnz"]) and
                        (q["algorithm"], q["threads"]) == (o["algorithm"], o["threads"])
                        for q in rows):
                print(f"  {o['algorithm']:<5} thr={o['threads']} {o['nnz']:>9} -> {p['nnz']:>9} "
                      f"(x{p['nnz'] / o['nnz']:.2f} data): x{p['per_iteration'] / o['per_iteration']:.2f}"
                      f" (x{p['kernel_per_iteration'] / o['kernel_per_iteration']:.2f})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1M,5M,25M")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--algorithms", default="als,wals,sgd")
    parser.add_argument("--cache", default=os.path.expanduser("~/.cache/mfrec/bench_scale"))
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(int(args.child[0]), args.child[1], int(args.child[2]), args.cache)
    print("machine", machine(), "| load average", os.getloadavg())
    print("mfrec", mfrec.build_info())
    rows = []
    for size in args.sizes.split(","):
        nnz = parse_size(size)
        dataset(nnz, args.cache)  # generated once, outside the timed processes
        for algorithm in args.algorithms.split(","):
            for threads in map(int, args.threads.split(",")):
                out = subprocess.run([sys.executable, __file__, "--cache", args.cache, "--child",
                                      str(nnz), algorithm, str(threads)],
                                     check=True, capture_output=True, text=True).stdout
                rows.append(json.loads(out.strip().splitlines()[-1]))
                print("  done", size, algorithm, threads, "| load average", os.getloadavg(),
                      flush=True)
    report(rows)
    print("load average at the end", os.getloadavg())


if __name__ == "__main__":
    main()
