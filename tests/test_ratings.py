"""Rating triplets, COO -> CSR, RMSE/MAE and the seeded initialisation,
each against a plain NumPy reference."""
import numpy as np
import pytest

import mfrec
from mfrec import _core
from mfrec.ratings import as_ids, as_ratings


# ---- Ratings and the shared input checks ---------------------------------------

def test_ratings_converts_and_indexes():
    r = mfrec.Ratings([3, 1, 2], np.array([7, 8, 9], np.int32), [4, 5, 1], [10, 20, 30])
    assert r.user.dtype == np.int64 and r.item.dtype == np.int64
    assert r.rating.dtype == np.float32 and r.timestamp.dtype == np.int64
    assert len(r) == 3 and repr(r) == "Ratings(3 ratings, 3 users, 3 items)"
    sub = r[np.array([True, False, True])]
    assert list(sub.user) == [3, 2] and list(sub.timestamp) == [10, 30]
    df = r[[2, 0]].to_dataframe()
    assert list(df.columns) == ["user", "item", "rating", "timestamp"]
    assert df["item"].tolist() == [9, 7]


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(user=[1.5, 2.0]), TypeError, "user must hold integer ids"),
    (dict(item=["a", 2]), TypeError, "item must hold integer ids, got an object array of int, str"),
    (dict(user=[True, False]), TypeError, "user must hold integer ids, got dtype bool"),
    (dict(rating=[1.0, np.nan]), ValueError, "ratings must be finite: entry 1"),
    (dict(rating=[1.0]), ValueError, r"same length \(2, 2, 1\)"),
    (dict(timestamp=[1]), ValueError, "timestamp must have one entry per rating"),
    (dict(user=[[1, 2]]), ValueError, "user must be 1-D"),
])
def test_ratings_rejects_bad_input(kwargs, exc, match):
    args = dict(user=[1, 2], item=[3, 4], rating=[1.0, 2.0], timestamp=None)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        mfrec.Ratings(**args)


def test_as_ids_and_as_ratings():
    ids = np.array([5, -3, 2**40], np.int64)
    assert as_ids(ids, "x") is ids  # already int64: no copy
    assert as_ids(np.uint8(7), "x").tolist() == [7]
    assert as_ids(np.array([], float), "x").dtype == np.int64  # empty is fine
    r32 = np.array([4.0, 2.5], np.float32)
    assert as_ratings(r32, "x") is r32  # float32 already: no copy (fit's input)
    assert as_ratings(np.array([True, False])).tolist() == [1.0, 0.0]
    assert as_ratings([1, 2]).dtype == np.float32
    with pytest.raises(ValueError, match="does not fit in float32"):
        as_ratings([1e39])


# ---- COO -> CSR -------------------------------------------------------------------

def csr_reference(rows, cols, vals, n_rows):
    order = np.lexsort((cols, rows))
    indptr = np.r_[0, np.cumsum(np.bincount(rows, minlength=n_rows))]
    return indptr, cols[order], vals[order]


def test_build_csr_matches_numpy(rng):
    n_rows, n_cols, nnz = 50, 40, 600
    cells = rng.choice(n_rows * n_cols, nnz, replace=False)
    rows, cols = (cells // n_cols).astype(np.int32), (cells % n_cols).astype(np.int32)
    vals = rng.normal(size=nnz).astype(np.float32)
    indptr, indices, values = _core.build_csr(rows, cols, vals, n_rows, n_cols)
    ref = csr_reference(rows, cols, vals, n_rows)
    assert indptr.dtype == np.int64 and indices.dtype == np.int32
    for got, want in zip((indptr, indices, values), ref):
        np.testing.assert_array_equal(got, want)
    _, _, ones = _core.build_csr(rows, cols, None, n_rows, n_cols)
    assert np.all(ones == 1.0)


def test_build_csr_long_rows_and_their_duplicates(rng):
    """Rows longer than the insertion sort's (sorted per row by keys), given
    in random order, sorted ones and reversed ones: the NumPy reference; a
    repeated cell deep in a long row is refused."""
    n_cols = 5000
    cols = np.r_[rng.permutation(n_cols)[:3000], np.arange(40), np.arange(40)[::-1]]
    rows = np.repeat(np.array([0, 2, 3], np.int32), [3000, 40, 40])
    vals = rng.normal(size=len(rows)).astype(np.float32)
    order = rng.permutation(len(rows))
    rows, cols, vals = rows[order], cols[order].astype(np.int32), vals[order]
    got = _core.build_csr(rows, cols, vals, 4, n_cols)
    for g, w in zip(got, csr_reference(rows, cols, vals, 4)):
        np.testing.assert_array_equal(g, w)
    dup = cols.copy()
    dup[np.flatnonzero(rows == 0)[:2]] = 7
    with pytest.raises(ValueError, match="duplicate"):
        _core.build_csr(rows, dup, vals, 4, n_cols)


@pytest.mark.parametrize("n_cols", [300, 70_000, 2**31 - 1])
def test_build_csr_sorts_long_rows_by_every_byte_of_the_column(rng, n_cols):
    """Long rows are sorted a byte of the column at a time (one to four
    bytes differ across these widths, and rows share high bytes or not):
    the NumPy reference, values following their columns."""
    lengths = rng.integers(33, min(400, n_cols), 40)
    rows = np.repeat(np.arange(40, dtype=np.int32), lengths)
    cols = np.concatenate([rng.choice(n_cols, n, replace=False) for n in lengths])
    if n_cols > 2**24:  # a row whose columns share their high bytes, too
        cols[:lengths[0]] = 2**24 + rng.choice(300, lengths[0], replace=False)
    cols = cols.astype(np.int32)
    vals = rng.normal(size=len(rows)).astype(np.float32)
    order = rng.permutation(len(rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    got = _core.build_csr(rows, cols, vals, 40, n_cols)
    for g, w in zip(got, csr_reference(rows, cols, vals, 40)):
        np.testing.assert_array_equal(g, w)


def test_csrs_are_sealed_and_may_hold_no_values(rng):
    """build_csr's and transpose_csr's arrays are read-only for good (the
    kernels read them without private copies); keep_values=False builds the
    pattern alone (values None), which transposes to a pattern."""
    rows, cols = skewed_triplets(rng, 200, 60, 1500)
    csr = _core.build_csr(rows, cols, None, 200, 60)
    for a in csr + _core.transpose_csr(csr, 60):
        assert not a.flags.writeable
        with pytest.raises(ValueError):
            a.flags.writeable = True
    pattern = _core.build_csr(rows, cols, None, 200, 60, keep_values=False)
    assert pattern[2] is None
    assert all(p.tobytes() == c.tobytes() for p, c in zip(pattern[:2], csr[:2]))
    t, t_pattern = _core.transpose_csr(csr, 60), _core.transpose_csr(pattern, 60)
    assert t_pattern[2] is None
    assert all(p.tobytes() == c.tobytes() for p, c in zip(t_pattern[:2], t[:2]))
    with pytest.raises(ValueError, match="by_user values"):  # kernels that need values
        _core.predict_sse(mfrec.Model("sgd", factors=2, epochs=1, seed=0).fit(
            rows, cols, np.ones(len(rows), np.float32)), pattern)


def test_build_csr_empty_rows_and_no_entries():
    indptr, indices, values = _core.build_csr(np.array([2], np.int32), np.array([0], np.int32),
                                              None, 4, 1)
    assert indptr.tolist() == [0, 0, 0, 1, 1] and indices.tolist() == [0]
    indptr, indices, _ = _core.build_csr(np.array([], np.int32), np.array([], np.int32),
                                         None, 3, 3)
    assert indptr.tolist() == [0, 0, 0, 0] and len(indices) == 0


@pytest.mark.parametrize("rows, cols, exc, match", [
    ([0, 0], [1, 1], ValueError, "duplicate"),
    ([0, 3], [1, 1], IndexError, "index out of range"),
    ([0, -1], [1, 1], IndexError, "index out of range"),
    ([0], [1, 1], ValueError, "same length"),
])
def test_build_csr_rejects_bad_triplets(rows, cols, exc, match):
    with pytest.raises(exc, match=match):
        _core.build_csr(np.array(rows, np.int32), np.array(cols, np.int32), None, 2, 2)


def test_build_csr_rejects_bad_sizes():
    r = np.array([0], np.int32)
    with pytest.raises(ValueError, match="n_rows must be in"):
        _core.build_csr(r, r, None, -1, 2)
    with pytest.raises(ValueError, match="n_cols must be in"):
        _core.build_csr(r, r, None, 2, 2**31)
    with pytest.raises(TypeError, match="rows: expected an array convertible to int32"):
        _core.build_csr(r.astype(np.float64), r, None, 2, 2)


def skewed_triplets(rng, n_rows, n_cols, nnz):
    """About nnz distinct (row, col) cells, half of them long-tailed on both
    sides (a few long rows and columns), in random order."""
    rows = np.minimum(rng.zipf(1.4, nnz) - 1, n_rows - 1)
    cols = np.minimum(rng.zipf(1.3, nnz) - 1, n_cols - 1)
    cells = np.r_[rows.astype(np.int64) * n_cols + cols, rng.choice(n_rows * n_cols, nnz)]
    cells = rng.permutation(np.unique(cells))
    return (cells // n_cols).astype(np.int32), (cells % n_cols).astype(np.int32)


@pytest.mark.parametrize("n_threads", [1, 2, 3, 7])
def test_transpose_csr_is_the_build_by_column(rng, n_threads):
    """Byte for byte the CSR build_csr makes from the swapped triplets, and
    SciPy's transpose; for any thread count (ranges cut mid-way through
    long rows and columns, empty rows and columns included)."""
    sparse = pytest.importorskip("scipy.sparse")
    n_rows, n_cols = 3000, 700
    rows, cols = skewed_triplets(rng, n_rows - 5, n_cols - 3, 20_000)
    vals = rng.normal(size=len(rows)).astype(np.float32)
    by_row = _core.build_csr(rows, cols, vals, n_rows, n_cols)
    got = _core.transpose_csr(by_row, n_cols, n_threads)
    want = _core.build_csr(cols, rows, vals, n_cols, n_rows)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.tobytes() == w.tobytes()
    ref = sparse.csr_matrix((vals, (rows, cols)), shape=(n_rows, n_cols)).T.tocsr()
    ref.sort_indices()
    np.testing.assert_array_equal(got[0], ref.indptr)
    np.testing.assert_array_equal(got[1], ref.indices)
    np.testing.assert_array_equal(got[2], ref.data)


def test_transpose_csr_small_and_empty():
    by_row = _core.build_csr(np.array([2, 0, 2], np.int32), np.array([0, 1, 1], np.int32),
                             None, 4, 3)
    indptr, indices, values = _core.transpose_csr(by_row, 3, 2)
    assert indptr.tolist() == [0, 1, 3, 3] and indices.tolist() == [2, 0, 2]
    assert values.tolist() == [1.0, 1.0, 1.0]
    empty = (np.zeros(3, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32))
    indptr, indices, _ = _core.transpose_csr(empty, 4)
    assert indptr.tolist() == [0] * 5 and len(indices) == 0


@pytest.mark.parametrize("csr, n_cols, match", [
    (([0, 1], [3], [1.0]), 2, "csr: not a valid CSR matrix with 2 columns"),
    (([0, 2], [1, 0], [1.0, 1.0]), 2, "not a valid CSR"),     # columns not ascending
    (([0, 1], [0], [1.0, 2.0]), 2, "indices and values must have the same length"),
    (([1, 1], [0], [1.0]), 2, "not a valid CSR"),
])
def test_transpose_csr_rejects_bad_csr(csr, n_cols, match):
    csr = (np.array(csr[0], np.int64), np.array(csr[1], np.int32), np.array(csr[2], np.float32))
    with pytest.raises(ValueError, match=match):
        _core.transpose_csr(csr, n_cols)


# ---- RMSE / MAE ----------------------------------------------------------------------

def test_rmse_mae_match_numpy(rng):
    pred = rng.normal(3, 1, 10_001).astype(np.float32)
    truth = rng.integers(1, 6, 10_001).astype(np.float32)
    err = pred.astype(float) - truth
    rmse, mae = _core.rmse_mae(pred, truth)
    assert rmse == pytest.approx(np.sqrt(np.mean(err ** 2)), rel=1e-12)
    assert mae == pytest.approx(np.mean(np.abs(err)), rel=1e-12)
    assert mfrec.metrics.rmse(pred, truth) == rmse and mfrec.metrics.mae(pred, truth) == mae


@pytest.mark.parametrize("pred, truth, exc, match", [
    ([1.0, 2.0], [1.0], ValueError, "same length"),
    ([], [], ValueError, "no predictions"),
    ([np.nan], [1.0], ValueError, "predictions must be finite"),
    (["a"], [1.0], TypeError, "predictions must hold real numbers"),
])
def test_metrics_reject_bad_input(pred, truth, exc, match):
    with pytest.raises(exc, match=match):
        mfrec.metrics.rmse(pred, truth)


# ---- seeded initialisation ------------------------------------------------------------

def init(n, k, kind, scale, seed, stream=0):
    out = np.empty((n, k), np.float32)
    _core.init_factors(out, kind, scale, seed, stream)
    return out


def test_init_factors_distributions():
    u = init(3000, 50, 0, 0.01, 1)
    assert u.min() >= 0.0 and u.max() < 0.01
    assert abs(u.mean() - 0.005) < 1e-4 and abs(u.std() - 0.01 / np.sqrt(12)) < 1e-4
    g = init(3000, 50, 1, 0.1, 1)
    assert abs(g.mean()) < 2e-3 and abs(g.std() - 0.1) < 2e-3


def test_init_factors_seeds_and_streams():
    a = init(2500, 8, 1, 1.0, 42)
    assert np.array_equal(a, init(2500, 8, 1, 1.0, 42))
    assert not np.array_equal(a, init(2500, 8, 1, 1.0, 43))
    assert not np.array_equal(a, init(2500, 8, 1, 1.0, 42, stream=1))
    # rows come in blocks of 1024 with their own stream: a prefix is unchanged
    assert np.array_equal(a[:1024], init(1024, 8, 1, 1.0, 42))
    assert not np.array_equal(a[:1024], a[1024:2048])


def test_init_factors_rejects_bad_arguments():
    with pytest.raises(ValueError, match="invalid argument"):
        _core.init_factors(np.empty((2, 2), np.float32), 7, 1.0, 0, 0)
    with pytest.raises(TypeError, match="writeable C-contiguous 2-D array of float32"):
        _core.init_factors(np.empty((2, 2)), 0, 1.0, 0, 0)
    with pytest.raises(TypeError, match="writeable C-contiguous"):
        _core.init_factors(np.empty((4, 4), np.float32)[:, ::2], 0, 1.0, 0, 0)


def test_init_factors_refuses_normal_scales_that_overflow():
    """A normal draw reaches about 12: scales beyond 1e37 could give -inf."""
    out = np.zeros((64, 2), np.float32)
    with pytest.raises(ValueError, match="invalid argument"):
        _core.init_factors(out, 1, 1.8e38, 0, 0)
    assert not out.any()
    _core.init_factors(out, 1, 1e37, 0, 0)
    assert np.isfinite(out).all() and np.abs(out).max() > 1e36
    _core.init_factors(out, 0, 3e38, 0, 0)  # uniform draws stay below the scale
    assert np.isfinite(out).all()
