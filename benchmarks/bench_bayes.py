"""Bayesian MF: mfrec's Gibbs sampler against myFM's, in the same run.

    python benchmarks/bench_bayes.py                       # u1..u5, all configurations
    python benchmarks/bench_bayes.py --folds u1 --configs plain both --sweeps 50

Both libraries fit the same model on the same ML-100K folds: rank k, the
same number of sweeps, the same number of kept samples (sweeps - burn_in),
one thread (myFM's sampler is single-threaded), and the same information:

  plain   user and item one-hot (biases and factors)
  user    + the user's rated items, 1/sqrt(count) each (SVD++-style implicit)
  both    + the item's raters likewise ("flipped": implicit on both sides)
  genres  both + the item's genres (normalised to sum 1 per item)
  ordinal genres with the ordered-probit likelihood (myFM's
          MyFMOrderedProbit; the prediction is the expected rating)
  day     genres + the rating's day (timestamp // 86400) as a third group:
          mfrec's context="day", myFM's day one-hot as its own group
  ordinal+day  ordinal + the day

myFM gets each group its own hyperprior (``group_shapes``), its
configuration in its own examples; mfrec's groups are its free rows,
implicit rows and features per side. Test predictions are clipped to
1..5. Printed: test RMSE, MAE, fit seconds (wall clock) and CPU seconds
per fold and configuration, their means, and the ratios myFM / mfrec of
both times (> 1: mfrec faster). The machine's load average is printed with
them: on a loaded machine the wall-clock ratio swings with the load of the
moment, the CPU-time ratio much less.
"""
import argparse
import contextlib
import io
import os
import sys
import time
import types

import numpy as np
import scipy.sparse as sp

import mfrec

CONFIGS = ("plain", "user", "both", "genres", "ordinal", "day", "ordinal+day")
DAY = 86400


def import_myfm():
    """myfm 0.4 imports pkg_resources only for a name it does not use;
    recent setuptools no longer ships it."""
    if "pkg_resources" not in sys.modules:
        try:
            import pkg_resources  # noqa: F401
        except ImportError:
            shim = types.ModuleType("pkg_resources")
            shim.DistributionNotFound, shim.get_distribution = Exception, None
            sys.modules["pkg_resources"] = shim
    try:
        import myfm
    except ImportError:
        return None
    return myfm


def mfrec_fit(config, train, data, args):
    kw = {}
    if config not in ("plain", "user", "both"):
        kw = dict(item_features=data.genres, item_feature_ids=data.item_ids)
    implicit = {"plain": "none", "user": "user"}.get(config, "both")
    day = config.endswith("day")
    model = mfrec.Model("bayes", factors=args.factors, sweeps=args.sweeps,
                        burn_in=args.burn_in, implicit=implicit, seed=args.seed,
                        n_threads=args.threads, context="day" if day else "none",
                        likelihood="ordinal" if config.startswith("ordinal") else "gaussian")
    with timer() as seconds:
        model.fit(train, **kw)
    return seconds, lambda test: model.predict(test.user, test.item,
                                               timestamps=test.timestamp if day else None)


class timer:
    """Wall-clock and CPU seconds of a block: (wall, cpu) after it ends."""

    def __enter__(self):
        self.times = []
        self.t0 = (time.perf_counter(), time.process_time())
        return self.times

    def __exit__(self, *exc):
        self.times += [time.perf_counter() - self.t0[0], time.process_time() - self.t0[1]]


def _blocks(index, n, implicit_csr):
    """A relation block: one-hot of the id, then its implicit row."""
    eye = sp.identity(n, format="csr")
    parts = [eye] if implicit_csr is None else [eye, implicit_csr]
    return sp.hstack(parts, format="csr"), [p.shape[1] for p in parts]


def myfm_fit(myfm, config, train, data, args):
    """myFM on relation blocks; returns ((wall, cpu) seconds, predict(users, items))."""
    user_ids, uidx = np.unique(train.user, return_inverse=True)
    item_ids, iidx = np.unique(train.item, return_inverse=True)
    nu, ni = len(user_ids), len(item_ids)
    R = sp.csr_matrix((np.ones(len(uidx)), (uidx, iidx)), shape=(nu, ni))
    norm = lambda m: sp.diags(1.0 / np.sqrt(np.maximum(m.getnnz(axis=1), 1))) @ m  # noqa: E731
    user_imp = norm(R) if config != "plain" else None
    item_imp = norm(R.T.tocsr()) if config in ("both", "genres", "ordinal") else None
    U, ushape = _blocks(uidx, nu, user_imp)
    V, vshape = _blocks(iidx, ni, item_imp)
    if config not in ("plain", "user", "both"):
        rows = np.searchsorted(data.item_ids, item_ids)
        g = data.genres[rows].astype(float)
        g /= np.maximum(g.sum(axis=1, keepdims=True), 1)
        V = sp.hstack([V, sp.csr_matrix(g)], format="csr")
        vshape.append(g.shape[1])

    def rel(u, i):
        return [myfm.RelationBlock(u, U), myfm.RelationBlock(i, V)]

    ordinal = config.startswith("ordinal")
    days = np.unique(train.timestamp // DAY) if config.endswith("day") else np.zeros(0)

    def day_onehot(ratings):  # days not seen in training: no column
        d = ratings.timestamp // DAY if len(days) else np.zeros(len(ratings.rating), int)
        c = np.minimum(np.searchsorted(days, d), max(len(days) - 1, 0))
        known = (days[c] == d) if len(days) else np.zeros(len(d), bool)
        return sp.csr_matrix((np.ones(known.sum()), (np.flatnonzero(known), c[known])),
                             shape=(len(d), len(days)))
    if ordinal:
        fm = myfm.MyFMOrderedProbit(rank=args.factors, random_seed=args.seed)
        y = (train.rating - 1).astype(np.int64)
    else:
        fm = myfm.MyFMRegressor(rank=args.factors, random_seed=args.seed)
        y = train.rating.astype(float)
    shapes = ([len(days)] if len(days) else []) + ushape + vshape
    with timer() as seconds, contextlib.redirect_stderr(io.StringIO()):  # its progress bar
        fm.fit(day_onehot(train), y, X_rel=rel(uidx, iidx), n_iter=args.sweeps,
               n_kept_samples=args.sweeps - args.burn_in, group_shapes=shapes)

    def predict(test):
        users, items = test.user, test.item
        u = np.searchsorted(user_ids, users)
        i = np.searchsorted(item_ids, items)
        # ids unseen in training: myFM has no row for them; use row 0's
        # one-hot, as the others fall back (rare on the u folds)
        u = np.where((u < nu) & (user_ids[np.minimum(u, nu - 1)] == users), u, 0)
        i = np.where((i < ni) & (item_ids[np.minimum(i, ni - 1)] == items), i, 0)
        X = day_onehot(test)
        if ordinal:  # the expected rating
            return fm.predict_proba(X, rel(u, i)) @ np.arange(1, 6)
        return fm.predict(X, rel(u, i))
    return seconds, predict


def scores(predict, test):
    pred = np.clip(predict(test), 1, 5)
    err = pred - test.rating
    return float(np.sqrt(np.mean(err ** 2))), float(np.mean(np.abs(err)))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--folds", nargs="+", default=["u1", "u2", "u3", "u4", "u5"])
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=CONFIGS)
    ap.add_argument("--factors", type=int, default=10)
    ap.add_argument("--sweeps", type=int, default=200)
    ap.add_argument("--burn-in", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    myfm = import_myfm()
    data = mfrec.load_movielens("100k")
    print(f"load average {os.getloadavg()[0]:.2f}; rank {args.factors}, {args.sweeps} sweeps, "
          f"{args.sweeps - args.burn_in} kept, {args.threads} thread(s); myfm "
          f"{getattr(myfm, '__version__', 'not installed')}")
    print(f"{'config':7} {'fold':4}  {'mfrec rmse':>10} {'mae':>6} {'s':>6} {'cpu':>6}  "
          f"{'myfm rmse':>10} {'mae':>6} {'s':>6} {'cpu':>6}  {'ratio s':>7} {'cpu':>5}")
    for config in args.configs:
        rows = []
        for fold in args.folds:
            train, test = data.fold(fold)
            s1, pred = mfrec_fit(config, train, data, args)
            row = [*scores(pred, test), *s1]
            if myfm is not None:
                s2, pred = myfm_fit(myfm, config, train, data, args)
                row += [*scores(pred, test), *s2]
            rows.append(row)
            print_row(config, fold, row)
        print_row(config, "mean", list(np.mean(rows, axis=0)))


def print_row(config, fold, row):
    text = f"{config:7} {fold:4}  {row[0]:10.4f} {row[1]:6.4f} {row[2]:6.2f} {row[3]:6.2f}"
    if len(row) > 4:
        text += (f"  {row[4]:10.4f} {row[5]:6.4f} {row[6]:6.2f} {row[7]:6.2f}  "
                 f"{row[6] / row[2]:7.2f} {row[7] / row[3]:5.2f}")
    print(text, flush=True)


if __name__ == "__main__":
    main()
