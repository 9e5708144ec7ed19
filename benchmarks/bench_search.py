"""Speed of the Level-2 tools, timed in one run on MovieLens 100K:

- one SGD epoch on u1.base (k=100, one thread): plain vs with genre features;
- a grid search on u1..u5: n_jobs=2 against n_jobs=1 (wall time), for
  models of n_threads=1 and of n_threads=2 (the folds then share the two
  threads instead of each fit using both).

    MFREC_DATA=../shared/data python benchmarks/bench_search.py
"""
import time

import numpy as np

import mfrec
from mfrec import _core


def epoch_ms(data, features: bool, repeats: int = 60) -> float:
    """Milliseconds of the SGD kernel alone (one thread): the fastest of
    `repeats` epochs in CPU time of this thread, which other work on a
    shared machine does not inflate."""
    train, _ = data.fold("u1")
    kw = {"item_features": data.genres, "item_feature_ids": data.item_ids} if features else {}
    model = mfrec.Model("sgd", factors=100, epochs=1, seed=0, n_threads=1).fit(train, **kw)
    solver = model._solver
    users = np.searchsorted(model.user_ids, train.user).astype(np.int32)
    items = np.searchsorted(model.item_ids, train.item).astype(np.int32)
    args = dict(learning_rate=0.005, regularization=0.02, biases=True, seed=0)
    times = []
    for epoch in range(repeats):
        t0 = time.thread_time()
        if features:
            _core.sgd_epoch_features(solver.free, users, items, train.rating,
                                     user_features=None, item_features=solver.side("item"),
                                     epoch=epoch, **args)
        else:
            _core.sgd_epoch(model, users, items, train.rating, n_threads=1, epoch=epoch, **args)
        times.append(time.thread_time() - t0)
    return 1e3 * min(times)


def search_seconds(data, n_threads: int, n_jobs: int) -> float:
    grid = {"regularization": [0.05, 0.1], "learning_rate": [0.005, 0.01]}
    model = mfrec.Model("sgd", factors=100, epochs=40, seed=0, n_threads=n_threads)
    t0 = time.perf_counter()
    mfrec.GridSearch(model, grid, cv=mfrec.PredefinedFolds(data), n_jobs=n_jobs,
                     refit=False).fit(data)
    return time.perf_counter() - t0


def main():
    print(mfrec.build_info())
    data = mfrec.load_movielens("100k")
    plain, feat = epoch_ms(data, False), epoch_ms(data, True)
    print(f"SGD epoch, u1.base, k=100, 1 thread: plain {plain:.2f} ms, with genres "
          f"{feat:.2f} ms ({feat / plain:.2f}x)")
    for n_threads in (1, 2):
        one = search_seconds(data, n_threads, 1)
        two = search_seconds(data, n_threads, 2)
        print(f"GridSearch 4 candidates x u1..u5, model n_threads={n_threads}: n_jobs=1 "
              f"{one:.2f} s, n_jobs=2 {two:.2f} s, ratio {two / one:.2f}")


if __name__ == "__main__":
    main()
