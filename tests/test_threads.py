"""Threads: readers of one fitted model beside a thread that fits another,
and readers of a model that is being fitted again.

The rule (mfrec/model.py): fit trains a private core model and swaps the
finished state in under the model's lock; predict holds the same lock, so a
reader sees the old model or the new one, never a mix.
"""
import ctypes
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import mfrec
from mfrec import _core

N_READERS = 4
HOME = os.path.dirname(os.path.dirname(os.path.abspath(mfrec.__file__)))


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


# ---- a model's state cannot change behind a running kernel ---------------------

ARRAYS = ("user_factors", "item_factors", "user_bias", "item_bias", "seen_indptr",
          "seen_indices")

STATE_RACE = """
import sys, threading, time
import numpy as np
import mfrec

data = mfrec.make_low_rank(20000, 2000, 4, density=0.01, seed=0).ratings
m = mfrec.Model("sgd", factors=8, epochs=1, seed=1).fit(data)
good = {name: getattr(m, name).copy() for name in %(arrays)r}
users, items = data.user[:5000], data.item[:5000]
counts = {"refused": 0, "set": 0, "calls": 0, "failed": 0}

def in_place():  # what crashed: a write into the returned array, undone at once
    while time.monotonic() < deadline:
        for name, at, value in (("seen_indptr", 15000, -10**15), ("seen_indices", 9, -10**9),
                                ("item_factors", 9, np.nan)):
            a = getattr(m, name)
            try:
                a.flags.writeable = True
            except ValueError:
                counts["refused"] += 1
            try:
                old = a[at].copy()
                for _ in range(1000 if name == "seen_indptr" else 10):
                    a[at] = value
                    a[at] = old
            except ValueError:
                counts["refused"] += 1

def setters():  # damaged arrays set and taken back: refused by each call
    bad = dict(seen_indptr=good["seen_indptr"].copy(), seen_indices=good["seen_indices"] + 10**6,
               item_factors=np.full_like(good["item_factors"], np.nan))
    bad["seen_indptr"][15000] = -10**15
    while time.monotonic() < deadline:
        for name, value in bad.items():
            setattr(m, name, value)
            setattr(m, name, good[name])
            counts["set"] += 1

def reader(call):
    while time.monotonic() < deadline:
        try:
            call()
        except (ValueError, IndexError):  # a damaged array, refused
            counts["failed"] += 1
        counts["calls"] += 1

calls = [lambda: m.recommend_all(10), lambda: m.predict(users, items),
         lambda: m.similar_items(m.item_ids[:500], 10), lambda: m.recommend(m.user_ids[::7], 5)]
# one writer against one reader at a time: the writer runs whenever the
# reader's kernel releases the GIL
for writer in (in_place, setters):
    for call in calls:
        deadline = time.monotonic() + float(sys.argv[1]) / 8
        threads = [threading.Thread(target=writer), threading.Thread(target=reader, args=(call,))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
same = all(np.array_equal(getattr(m, n), good[n]) for n in good)
print("result", counts["refused"], counts["set"], counts["calls"], same, flush=True)
""" % {"arrays": ARRAYS}


def test_state_cannot_change_under_a_running_call():
    """Writer threads attack a fitted model's arrays (writes into the returned
    arrays, re-enabling their writeable flag, setters with damaged arrays)
    while readers run recommend_all, predict, similar_items and recommend
    with the GIL released. Writing into a model's array used to crash the
    process (the core validated seen_indptr, then read it again after the
    write). Now every in-place write is refused, a damaged array that a
    setter stores fails a call cleanly, and the process lives."""
    env = {**os.environ, "PYTHONPATH": HOME}
    proc = subprocess.run([sys.executable, "-c", STATE_RACE, "3"], cwd=HOME, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    refused, n_set, calls, same = proc.stdout.split()[1:]
    assert int(refused) > 0 and int(n_set) > 0 and int(calls) > 0
    assert same == "True"  # the model ends with the arrays last set


@pytest.mark.parametrize("name", ARRAYS)
def test_model_arrays_are_read_only(data, name):
    """The arrays a model returns are its own and read-only: writes raise,
    and NumPy refuses to make them writeable again; setting one stores a
    copy, so the caller's array stays the caller's."""
    m = mfrec.Model("sgd", factors=3, epochs=1, seed=0).fit(data)
    a = getattr(m, name)
    before = a.copy()
    with pytest.raises(ValueError, match="read-only"):
        a[0] = 7
    with pytest.raises(ValueError):
        a.flags.writeable = True
    with pytest.raises(ValueError):
        a[:].flags.writeable = True  # nor a view of it
    mine = before.copy()
    setattr(m, name, mine)
    mine[0] = 7
    assert np.array_equal(getattr(m, name), before)
    assert not np.shares_memory(getattr(m, name), mine)
