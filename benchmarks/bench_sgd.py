"""One SGD epoch on MovieLens 100K u1.base (80,000 ratings) at k=100, one thread:
mfrec's C core against a plain NumPy per-rating loop and scikit-surprise's SVD,
all timed in this run; then the whole 20-epoch fit of each (mfrec's Model.fit
with its per-epoch history, Surprise's SVD.fit), timed in turns.
Usage: MFREC_DATA=... python benchmarks/bench_sgd.py

The same update everywhere: biased SGD with L2 (Surprise's SVD defaults,
lr 0.005, reg 0.02, N(0, 0.1) initial factors), ratings in a shuffled order.
"""
import argparse
import os
import statistics
import time

import numpy as np

import mfrec
from mfrec import _core

K, LR, REG = 100, 0.005, 0.02
LIBMF_REFERENCE = ("LIBMF 2.x, k=100, 1 thread, on these machines (design/MEASURED.md): "
                   "11 ms/epoch SSE build, 7.5 ms/epoch AVX build")


def core_for(n_users, n_items, seed=0):
    core = _core.Model()
    P = np.empty((n_users, K), np.float32)
    Q = np.empty((n_items, K), np.float32)
    _core.init_factors(P, 1, 0.1, seed, 0)
    _core.init_factors(Q, 1, 0.1, seed, 1)
    core.user_factors, core.item_factors = P, Q
    core.user_bias = np.zeros(n_users, np.float32)
    core.item_bias = np.zeros(n_items, np.float32)
    return core


def time_mfrec(u, i, r, n_users, n_items, epochs, n_threads):
    """Seconds per epoch of the core's SGD: (fastest, median) of `epochs` epochs."""
    core = core_for(n_users, n_items)
    core.global_mean = float(r.mean())
    times = []
    for epoch in range(epochs):
        t0 = time.perf_counter()
        _core.sgd_epoch(core, u, i, r, learning_rate=LR, regularization=REG, biases=True,
                        seed=1, epoch=epoch, n_threads=n_threads)
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def time_numpy(u, i, r, n_users, n_items, subset):
    """Seconds per epoch of a plain per-rating NumPy loop, timed on `subset`
    ratings and scaled to all of them."""
    rng = np.random.default_rng(0)
    P = rng.normal(0, 0.1, (n_users, K)).astype(np.float32)
    Q = rng.normal(0, 0.1, (n_items, K)).astype(np.float32)
    bu, bi = np.zeros(n_users, np.float32), np.zeros(n_items, np.float32)
    mu = np.float32(r.mean())
    order = rng.permutation(len(r))[:subset]
    t0 = time.perf_counter()
    for t in order:
        uu, ii = u[t], i[t]
        e = r[t] - (mu + bu[uu] + bi[ii] + P[uu] @ Q[ii])
        bu[uu] += LR * (e - REG * bu[uu])
        bi[ii] += LR * (e - REG * bi[ii])
        pu = P[uu].copy()
        P[uu] += LR * (e * Q[ii] - REG * pu)
        Q[ii] += LR * (e * pu - REG * Q[ii])
    return (time.perf_counter() - t0) * len(r) / subset


def surprise_trainset(path):
    """Surprise's trainset of the ratings file `path`, or None without Surprise."""
    try:
        import surprise
    except ImportError:
        return None
    return surprise.Dataset.load_from_file(
        path, reader=surprise.Reader("ml-100k")).build_full_trainset()


def surprise_fit(trainset, n_epochs):
    """Seconds of one surprise.SVD fit of n_epochs epochs."""
    import surprise
    algo = surprise.SVD(n_factors=K, n_epochs=n_epochs, lr_all=LR, reg_all=REG,
                        random_state=0)
    t0 = time.perf_counter()
    algo.fit(trainset)
    return time.perf_counter() - t0


def time_fits(train, trainset, repeats, epochs=20):
    """Seconds of a whole `epochs`-epoch fit on one thread: mfrec's with its
    train RMSE in the history, mfrec's without (record_train=False: as
    Surprise's fit, which scores nothing) and Surprise's (None without it),
    the fastest of `repeats` each, taking turns so that all meet the same
    load."""
    times: dict = {"history": [], "lean": [], "surprise": []}
    for _ in range(repeats):
        for kind, record in (("history", True), ("lean", False)):
            model = mfrec.Model("sgd", factors=K, learning_rate=LR, regularization=REG,
                                epochs=epochs, seed=0, n_threads=1)
            t0 = time.perf_counter()
            model.fit(train, record_train=record)
            times[kind].append(time.perf_counter() - t0)
        if trainset is not None:
            times["surprise"].append(surprise_fit(trainset, epochs))
    return {kind: min(t) if t else None for kind, t in times.items()}


def time_surprise(trainset, repeats, extra=10):
    """Seconds per epoch of surprise.SVD on `trainset`: the fit with
    1 + extra epochs minus the fit with 1 (which leaves out its setup),
    divided by extra. Each fit is timed `repeats` times and the fastest kept."""
    if trainset is None:
        return None, None
    import surprise
    one = min(surprise_fit(trainset, 1) for _ in range(repeats))
    more = min(surprise_fit(trainset, 1 + extra) for _ in range(repeats))
    return (more - one) / extra, surprise.__version__


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30, help="mfrec epochs timed")
    parser.add_argument("--numpy-subset", type=int, default=10_000,
                        help="ratings the NumPy loop runs (scaled to the epoch)")
    parser.add_argument("--repeats", type=int, default=5, help="Surprise fits (fastest kept)")
    args = parser.parse_args()

    print("build:", mfrec.build_info())
    data = mfrec.load_movielens("100k")
    train, _ = data.fold("u1")
    user_ids, u = np.unique(train.user, return_inverse=True)
    item_ids, i = np.unique(train.item, return_inverse=True)
    u, i, r = u.astype(np.int32), i.astype(np.int32), train.rating
    nu, ni = len(user_ids), len(item_ids)
    print(f"u1.base: {len(r):,} ratings, {nu} users, {ni} items; k={K}, biased SGD, "
          f"lr={LR}, reg={REG}\n")

    mf1, mf1_median = time_mfrec(u, i, r, nu, ni, args.epochs, 1)
    mf2, mf2_median = time_mfrec(u, i, r, nu, ni, args.epochs, 2)
    npy = time_numpy(u, i, r, nu, ni, args.numpy_subset)
    trainset = surprise_trainset(os.path.join(data.path, "u1.base"))
    sur, sur_version = time_surprise(trainset, args.repeats)
    fits = time_fits(train, trainset, args.repeats)
    fit, lean_fit, sur_fit = fits["history"], fits["lean"], fits["surprise"]

    # fastest runs throughout: the least disturbed by other work on the machine
    print(f"mfrec epoch medians: {mf1_median * 1e3:.2f} ms (1 thread), "
          f"{mf2_median * 1e3:.2f} ms (2 threads)\n")
    rows = [("mfrec epoch, n_threads=1", mf1),
            ("mfrec epoch, n_threads=2", mf2),
            (f"NumPy per-rating loop ({args.numpy_subset:,} ratings, scaled)", npy),
            ("mfrec 20-epoch Model.fit / 20 (with setup, history)", fit / 20),
            ("  the same, record_train=False", lean_fit / 20)]
    if sur is not None:
        rows.append((f"scikit-surprise {sur_version} SVD epoch", sur))
        rows.append(("scikit-surprise SVD 20-epoch fit / 20 (with setup)", sur_fit / 20))
    print(f"{'':52s} {'ms/epoch':>10s} {'time / mfrec 1 thread':>22s}")
    for name, seconds in rows:
        print(f"{name:52s} {seconds * 1e3:10.2f} {seconds / mf1:21.2f}x")
    print()
    print(f"mfrec is {npy / mf1:.0f}x faster than the NumPy loop", end="")
    if sur is None:
        print(" (scikit-surprise not installed: pip install mfrec[bench])")
    else:
        print(f" and {sur / mf1:.1f}x faster than Surprise's SVD epoch;\n"
              f"the whole 20-epoch fit: {fit * 1e3:.0f} ms against Surprise's "
              f"{sur_fit * 1e3:.0f} ms, {sur_fit / fit:.1f}x faster; without the train "
              f"RMSE: {lean_fit * 1e3:.0f} ms, {sur_fit / lean_fit:.1f}x faster")
    print("reference (not run here):", LIBMF_REFERENCE)

if __name__ == "__main__":
    main()
