"""Threads: readers of one fitted model beside a thread that fits another,
and readers of a model that is being fitted again.

The rule (mfrec/model.py): fit trains a private core model and swaps the
finished state in under the model's lock; predict holds the same lock, so a
reader sees the old model or the new one, never a mix.
"""
import ctypes
import threading

import numpy as np
import pytest

import mfrec
from mfrec import _core

N_READERS = 4


@pytest.fixture(scope="module")
def data():
    return mfrec.make_low_rank(300, 200, 5, density=0.1, seed=2).ratings


def run_threads(targets):
    """Start every target at once; re-raise the first error of any."""
    errors, start = [], threading.Barrier(len(targets))

    def wrap(fn):
        def run():
            start.wait()
            try:
                fn()
            except BaseException as e:  # noqa: B902 - reported below
                errors.append(e)
        return run

    threads = [threading.Thread(target=wrap(fn)) for fn in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def batches(model, n, seed):
    rng = np.random.default_rng(seed)
    return [(rng.integers(-3, model.user_ids.max() + 3, 500),
             rng.integers(-3, model.item_ids.max() + 3, 500)) for _ in range(n)]


def test_readers_beside_a_fit(data):
    """Predictions from four threads (one and two OpenMP threads each) on a
    fitted model while a fifth thread fits another: every result equals the
    sequential one, and so does the other model."""
    model = mfrec.Model("sgd", factors=8, epochs=3, seed=1).fit(data)
    work = batches(model, 8, 0)
    expected = [model.predict(u, i) for u, i in work]
    other_params = dict(factors=16, epochs=15, seed=5)
    other_expected = mfrec.Model("sgd", **other_params).fit(data)
    results = [[] for _ in range(N_READERS)]
    fitted = []

    def reader(j):
        def run():
            for _ in range(15):
                results[j].append([model.predict(u, i, n_threads=1 + j % 2) for u, i in work])
        return run

    def fitter():
        fitted.append(mfrec.Model("sgd", **other_params).fit(data))

    run_threads([reader(j) for j in range(N_READERS)] + [fitter])
    for per_thread in results:
        assert len(per_thread) == 15
        for got in per_thread:
            for g, e in zip(got, expected):
                np.testing.assert_array_equal(g, e)
    np.testing.assert_array_equal(fitted[0].user_factors, other_expected.user_factors)
    np.testing.assert_array_equal(fitted[0].item_factors, other_expected.item_factors)


def test_recommend_readers_beside_a_fit(data):
    """recommend, similar_items and predict from four threads (one and two
    OpenMP threads) on one model while another model is fitted: the same
    lists as sequentially."""
    model = mfrec.Model("sgd", factors=8, epochs=3, seed=1).fit(data)
    users = model.user_ids[::3]
    expected = (model.recommend(users, n=15), model.similar_items(model.item_ids[:40], n=10))
    results = [[] for _ in range(N_READERS)]

    def reader(j):
        def run():
            for _ in range(10):
                results[j].append((model.recommend(users, n=15, n_threads=1 + j % 2),
                                   model.similar_items(model.item_ids[:40], n=10,
                                                       n_threads=1 + j % 2)))
        return run

    def fitter():
        mfrec.Model("sgd", factors=16, epochs=15, seed=5).fit(data)

    run_threads([reader(j) for j in range(N_READERS)] + [fitter])
    for per_thread in results:
        assert len(per_thread) == 10
        for got in per_thread:
            for (gi, gs), (ei, es) in zip(got, expected):
                np.testing.assert_array_equal(gi, ei)
                np.testing.assert_array_equal(gs, es)


def test_refit_is_all_or_nothing(data):
    """Readers of a model fitted again (on other data, with other ids) see
    exactly the old predictions or exactly the new ones, never a mix, and
    never an error."""
    params = dict(factors=8, epochs=4, seed=3)
    half = data[data.user < 150]  # fewer users: the id mapping changes too
    old = mfrec.Model("sgd", **params).fit(data)
    new = mfrec.Model("sgd", **params).fit(half)
    users = np.r_[np.arange(0, 300, 7), 10**9]
    items = (users * 31) % 200
    want_old, want_new = old.predict(users, items), new.predict(users, items)
    assert not np.array_equal(want_old, want_new)

    model = mfrec.Model("sgd", **params).fit(data)
    known = np.intersect1d(old.user_ids, new.user_ids)[:20]
    lists_old, lists_new = old.recommend(known, n=10)[0], new.recommend(known, n=10)[0]
    seen, lists, done = [], [], threading.Event()

    def reader():
        while not done.is_set():
            seen.append(model.predict(users, items))
            lists.append(model.recommend(known, n=10)[0])

    def refitter():
        try:
            for _ in range(6):  # back and forth: each swap is one chance to tear
                model.fit(half)
                model.fit(data)
            model.fit(half)
        finally:
            done.set()

    run_threads([reader] * N_READERS + [refitter])
    n_old = sum(np.array_equal(s, want_old) for s in seen)
    n_new = sum(np.array_equal(s, want_new) for s in seen)
    assert n_old + n_new == len(seen), "a reader saw a half-updated model"
    assert n_new >= 1
    assert all(np.array_equal(x, lists_old) or np.array_equal(x, lists_new) for x in lists)
    np.testing.assert_array_equal(model.predict(users, items), want_new)


def openblas_threads():
    """The getter and setter of OpenBLAS's thread count (mfrec/__init__.py
    loads the library globally)."""
    lib = ctypes.CDLL(None)
    return lib.scipy_openblas_get_num_threads, lib.scipy_openblas_set_num_threads


def test_concurrent_calls_restore_blas_threads(data):
    """OpenBLAS's thread count is one setting for the process: calls that
    change it (ALS and top-N run BLAS single-threaded inside OpenMP regions,
    the dense SVD with its own n_threads) share one save and restore, so
    however they overlap the process keeps the count it had."""
    get, set_ = openblas_threads()
    before = get()
    set_(2)
    try:
        model = mfrec.Model("als", factors=4, iterations=1, seed=1).fit(data)
        a = np.random.default_rng(0).standard_normal((60, 40))

        def svd():
            for _ in range(40):
                _core.svd_dense(a, 3, n_threads=3)

        def als():
            for _ in range(10):
                mfrec.Model("als", factors=4, iterations=2, seed=1, n_threads=2).fit(data)

        def top():
            for _ in range(40):
                model.recommend_all(n=5, n_threads=2)

        run_threads([svd, svd, als, top])
        assert get() == 2
    finally:
        set_(before)
