"""Peak memory of fit, per rating: the arrays NumPy allocates (which
tracemalloc sees; the core's own buffers, such as SGD's shuffled order of 4
bytes a rating, it does not). The input is 20 bytes a rating (int64 ids,
float32 ratings); fit used to add 29-33 bytes of arrays to it (a copy of
the ratings, int64 index temporaries, private copies of the index arrays
for each kernel call, both CSRs beside the index arrays). Now the two CSRs
(16 bytes a rating) or the index arrays and one CSR are the most it holds
at once. ALS and WALS add their factors once beside the CSRs (they used to
hold three or more copies of a side: the last iteration's, the half-step's
copy and the model's copy of that), so that the peak stays under the
input's size where factors are a tenth of the CSRs, as at 25M ratings."""
import os
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

import mfrec

BUDGET = 18.0  # bytes a rating: 16 for two CSRs, 2 for the rest (factors, k=2)


def fit_peak(model, triplets):
    """Bytes of NumPy arrays that fitting `model` held at most at once."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        model.fit(*triplets)
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


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
    peak = fit_peak(mfrec.Model(name, factors=2, seed=0, **params), (users, items, ratings))
    assert peak / len(ratings) <= BUDGET, f"{name}: {peak / len(ratings):.2f} bytes a rating"


@pytest.mark.parametrize("name, params", [
    ("als", dict()),
    ("als", dict(biases=False, solver="cg", n_threads=2)),
    ("wals", dict(alpha=2.0)),
])
def test_alternating_fit_holds_its_factors_once(triplets, name, params):
    """Beside the two CSRs, an ALS fit (no validation, no early stopping)
    holds its factors once (with a column of ones for the biases), not a
    copy per half-step or per snapshot; the model's own copies come after
    the CSRs are freed."""
    k = 32
    model = mfrec.Model(name, factors=k, iterations=3, seed=0, **params)
    peak = fit_peak(model, triplets)
    n_users, n_items = len(model.user_ids), len(model.item_ids)
    factor_bytes = (n_users + n_items) * k * 4
    extra = (peak - 16 * len(triplets[0])) / factor_bytes
    assert extra <= 1.5, f"{name}: {extra:.2f} times the factors beside the CSRs"


# VmHWM: the peak RSS of this process image (ru_maxrss may start from the
# RSS of the parent that spawned it)
RSS_CHILD = """
import sys
import numpy as np
import mfrec
def peak():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
users, items, ratings = (np.load(f"{sys.argv[1]}/{x}.npy") for x in "uir")
mfrec.Model("als", factors=4, iterations=1, seed=0).fit(users[:5000], items[:5000], ratings[:5000])
before = peak()
model = mfrec.Model("als", factors=64, iterations=2, seed=0).fit(users, items, ratings)
print(peak() - before, len(model.user_ids) + len(model.item_ids))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/status (Linux)")
@pytest.mark.skipif(bool(os.environ.get("MFREC_SANITIZED")),
                    reason="RSS under ASan holds its shadow memory and quarantine")
def test_als_fit_peak_rss(tmp_path, run_env):
    """The peak RSS an ALS fit with biases adds, the core's buffers
    included (tracemalloc does not see them), in a fresh process whose
    largest moment so far is the loaded data (after a tiny fit, which sets
    up BLAS and the allocator): the two CSRs and at most twice the (k + 1)-
    wide factors. It was four times: three copies of a side in the fit and
    the kernel's (k + 1)-wide copies of both sides."""
    rng = np.random.default_rng(0)
    n_users, n_items = 40_000, 4_000
    cells = rng.permutation(np.unique(rng.integers(0, n_users * n_items, 1_050_000)))
    ratings = rng.integers(1, 11, len(cells)).astype(np.float32) / 2
    for name, a in (("u", cells // n_items), ("i", cells % n_items), ("r", ratings)):
        np.save(tmp_path / f"{name}.npy", a)
    out = subprocess.run([sys.executable, "-c", RSS_CHILD, str(tmp_path)], env=run_env,
                         cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    added, rows = map(int, out.split())
    factor_bytes = rows * 65 * 4
    extra = (added - 16 * len(ratings)) / factor_bytes
    assert extra <= 2.0, f"{extra:.2f} times the factors beside the CSRs"
