"""Leaks and reference counts over thousands of calls.

Each entry point runs many times on data sized so that leaking one array per
call would add megabytes; resident memory (RSS), the interpreter's count of
allocated blocks and the reference counts of the inputs and of the model's
arrays must not grow. Under the sanitizer (MFREC_SANITIZED) RSS means
nothing (ASan holds freed memory in quarantine) and LeakSanitizer does that
part of the job; the reference counts are still checked.
"""
import gc
import os
import sys
import tempfile

import numpy as np
import pytest

import mfrec
from mfrec import _core

SANITIZED = bool(os.environ.get("MFREC_SANITIZED"))
MiB = 1 << 20


def n(calls):
    """Fewer calls under the sanitizer (ten times slower), where LeakSanitizer
    finds unreachable memory after a single call."""
    return calls // 10 if SANITIZED else calls


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.fixture(scope="module")
def data():
    return mfrec.make_low_rank(200, 150, 8, density=0.07, seed=1).ratings


@pytest.fixture(scope="module")
def model(data):
    return mfrec.Model("sgd", factors=8, epochs=2, seed=1).fit(data)


def grows(fn, calls, warmup=200):
    """(RSS growth in bytes, allocated-block growth) over `calls` calls of fn,
    after `warmup` calls that fill the caches of NumPy and the interpreter."""
    for _ in range(warmup):
        fn()
    gc.collect()
    rss0, blocks0 = rss() if not SANITIZED else 0, sys.getallocatedblocks()
    for _ in range(calls):
        fn()
    gc.collect()
    return (rss() - rss0 if not SANITIZED else 0), sys.getallocatedblocks() - blocks0


def refcounts(*objects):
    return [sys.getrefcount(o) for o in objects]


def model_refcounts(m):
    arrays = [getattr(m, name) for name in ("user_factors", "item_factors", "user_bias",
                                            "item_bias", "seen_indptr", "seen_indices")]
    return refcounts(*(a for a in arrays if a is not None))


needs_proc = pytest.mark.skipif(not os.path.exists("/proc/self/statm"),
                                reason="RSS is read from /proc")


@needs_proc
def test_predict(model):
    """The bar: RSS grows less than 1 MiB over 10,000 predict calls of 1,000
    pairs (a leaked output or index array would be 4-8 MB)."""
    rng = np.random.default_rng(0)
    users = rng.integers(-5, 205, 1000)  # some unknown ids
    items = rng.integers(-5, 155, 1000)
    before = refcounts(users, items) + model_refcounts(model)
    rss_growth, blocks = grows(lambda: model.predict(users, items), n(10_000))
    assert refcounts(users, items) + model_refcounts(model) == before
    assert rss_growth < MiB, f"RSS grew by {rss_growth / MiB:.2f} MiB"
    assert blocks < 100, f"{blocks} more allocated blocks"


@needs_proc
def test_recommend(model):
    """The bar for top-N: RSS grows less than 1 MiB over 10,000 recommend
    calls (a batch of 50 users, lists of 20: leaking the output would be
    8 KB a call), then similar_items, fold_in and recommend_new_user."""
    users = model.user_ids[:50]
    rss_growth, blocks = grows(lambda: model.recommend(users, n=20), n(10_000))
    assert rss_growth < MiB, f"RSS grew by {rss_growth / MiB:.2f} MiB"
    assert blocks < 100, f"{blocks} more allocated blocks"
    items, ratings = model.item_ids[:30], np.linspace(1, 5, 30)
    before = refcounts(users, items, ratings) + model_refcounts(model)

    def others():
        model.recommend(users[0], n=5, items=model.item_ids[::2], exclude=items[:3])
        model.similar_items(items[:10], n=5)
        model.fold_in(items, ratings)
        model.recommend_new_user(items, ratings, n=5)

    rss_growth, blocks = grows(others, n(2000), warmup=50)
    after = refcounts(users, items, ratings) + model_refcounts(model)
    assert after == before
    assert rss_growth < MiB and blocks < 100, (rss_growth, blocks)


def test_core_predict_refcounts(model):
    """The binding's own references: arrays it uses as they are (int32 input
    converts to itself) and the model's arrays it holds while the GIL is
    released are all given back."""
    users = np.arange(model.n_users, dtype=np.int32)
    items = (users % model.n_items).astype(np.int32)
    core = _core.Model()
    for name in ("user_factors", "item_factors", "user_bias", "item_bias"):
        setattr(core, name, getattr(model, name))
    before = refcounts(users, items) + model_refcounts(core)
    _, blocks = grows(lambda: core._predict(users, items, 1), n(5000))
    assert refcounts(users, items) + model_refcounts(core) == before
    assert blocks < 100
    for bad in (users[:-1], np.full_like(users, 10**6)):  # errors give back all too
        before = refcounts(users, items, bad)
        for _ in range(n(1000)):
            with pytest.raises((ValueError, IndexError)):
                core._predict(bad, items, 1)
        assert refcounts(users, items, bad) == before


def test_core_sgd_csr_metrics_refcounts(model, data):
    core = _core.Model()
    core.user_factors = model.user_factors.copy()
    core.item_factors = model.item_factors.copy()
    core.user_bias, core.item_bias = model.user_bias.copy(), model.item_bias.copy()
    u = np.searchsorted(model.user_ids, data.user).astype(np.int32)
    i = np.searchsorted(model.item_ids, data.item).astype(np.int32)
    r = data.rating
    before = refcounts(u, i, r) + model_refcounts(core)

    def calls():
        _core.sgd_epoch(core, u, i, r, learning_rate=0.001, regularization=0.1,
                        biases=True, seed=1, epoch=0, n_threads=1)
        _core.build_csr(u, i, r, model.n_users, model.n_items)
        _core.rmse_mae(r, r)
        _core.init_factors(np.empty((3, 2), np.float32), 1, 0.1, 1, 0)

    _, blocks = grows(calls, n(2000), warmup=50)
    assert refcounts(u, i, r) + model_refcounts(core) == before
    assert blocks < 100


@needs_proc
def test_fit(data):
    """2,000 fits: a leaked factor matrix per fit would be 2 x 6 KB."""
    def fit():
        mfrec.Model("sgd", factors=8, epochs=1, seed=1).fit(data)

    before = refcounts(data.user, data.item, data.rating)
    rss_growth, blocks = grows(fit, n(2000), warmup=100)
    after = refcounts(data.user, data.item, data.rating)  # not inside assert: pytest
    assert after == before                                 # would hold its operands
    assert rss_growth < MiB, f"RSS grew by {rss_growth / MiB:.2f} MiB"
    assert blocks < 200, f"{blocks} more allocated blocks"


@needs_proc
def test_save_load(model):
    """1,000 saves and loads (about 20 KB each)."""
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(dir=shm) as folder:
        path = os.path.join(folder, "m.npz")
        before = model_refcounts(model)
        rss_growth, blocks = grows(lambda: model.save(path), n(1000), warmup=50)
        assert model_refcounts(model) == before
        assert rss_growth < MiB and blocks < 200, (rss_growth, blocks)
        rss_growth, blocks = grows(lambda: mfrec.Model.load(path), n(1000), warmup=50)
        assert rss_growth < MiB and blocks < 200, (rss_growth, blocks)
        with open(path, "wb") as f:
            f.write(b"PK\x03\x04 not a model")
        rss_growth, blocks = grows(lambda: pytest.raises(ValueError, mfrec.Model.load, path),
                                   n(1000), warmup=50)
        assert rss_growth < MiB and blocks < 200, (rss_growth, blocks)
