"""Peak memory of fit, per rating: the arrays NumPy allocates (which
tracemalloc sees; the core's own buffers, such as SGD's shuffled order of 4
bytes a rating, it does not). The input is 20 bytes a rating (int64 ids,
float32 ratings); fit used to add 29-33 bytes of arrays to it (a copy of
the ratings, int64 index temporaries, private copies of the index arrays
for each kernel call, both CSRs beside the index arrays). Now the two CSRs
(16 bytes a rating) or the index arrays and one CSR are the most it holds
at once."""
import tracemalloc

import numpy as np
import pytest

import mfrec

BUDGET = 18.0  # bytes a rating: 16 for two CSRs, 2 for the rest (factors, k=2)


@pytest.fixture(scope="module")
def triplets():
    rng = np.random.default_rng(0)
    cells = rng.permutation(np.unique(rng.integers(0, 6000 * 2500, 250_000)))
    ratings = rng.integers(1, 11, len(cells)).astype(np.float32) / 2
    return cells // 2500 + 1, cells % 2500 + 1, ratings


@pytest.mark.parametrize("name, params", [
    ("sgd", dict(epochs=2)),
    ("sgd", dict(epochs=2, n_threads=2)),
    ("als", dict(iterations=2)),
    ("wals", dict(iterations=2)),
    ("wals", dict(iterations=2, alpha=2.0, binary=True)),
])
def test_fit_peak_arrays_per_rating(triplets, name, params):
    users, items, ratings = triplets
    if params.pop("binary", False):
        ratings = np.ones(len(ratings), np.float32)
    model = mfrec.Model(name, factors=2, seed=0, **params)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        model.fit(users, items, ratings)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert peak / len(ratings) <= BUDGET, f"{name}: {peak / len(ratings):.2f} bytes a rating"
