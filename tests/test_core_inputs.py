"""The C entry points of mfrec._core, called directly with arbitrary input.

mfrec.Model checks its input before the core sees it; these tests make sure
the binding itself never crashes, never writes out of bounds (the sanitizer
run executes them too) and never returns a wrong answer when it accepts
its input: each call works and agrees with NumPy, or raises a documented
exception (OverflowError too: the private functions take C ints) naming
the argument or the function; inputs are never modified. They run a quarter
of the public entry points' cases (CORE_CASES).
"""
import warnings

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from mfrec import _core
from strategies import CORE_CASES, any_array, call, snapshot, unchanged

C_ERRORS = ["users", "items", "ratings", "predict", "sgd_epoch", "rows", "cols", "values",
            "build_csr", "n_rows", "n_cols", "predictions", "truth", "rmse_mae", "out",
            "init_factors", "user_factors", "item_factors", "user_bias", "item_bias",
            "global_mean", "model", "seed", "epoch", "n_threads", "learning_rate",
            "regularization", "kind", "scale", "stream", "integer", "argument"]

int32_ok = {"int8", "int16", "int32", "uint8", "uint16", "bool"}  # safe casts to int32
float32_ok = {"int8", "int16", "uint8", "uint16", "float16", "float32", "bool"}


def safe_as(x, ok, dtype):
    """x converted the way the binding does, or None: arrays by safe casts
    only, sequences element by element (as NumPy builds arrays of a dtype)."""
    if isinstance(x, list):
        try:  # an overflow warns, which the test run turns into an error
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                a = np.array(x, dtype=dtype)
        except (TypeError, ValueError, OverflowError, RuntimeWarning):
            return None
    else:
        a = np.asarray(x)
        if a.dtype.name not in ok:
            return None
    return a.astype(dtype) if a.ndim == 1 else None


@st.composite
def factor_model(draw):
    """A _core.Model with factor arrays of drawn shapes: mostly consistent,
    sometimes not (mismatched k or bias lengths, k = 0, empty, NaN)."""
    nu, ni, k = draw(st.integers(0, 4)), draw(st.integers(0, 4)), draw(st.integers(0, 3))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    bad = draw(st.sampled_from([None] * 6 + ["k", "bias_len", "one_bias", "nan"]))
    P = rng.normal(size=(nu, k)).astype(np.float32)
    Q = rng.normal(size=(ni, k + (bad == "k"))).astype(np.float32)
    m = _core.Model()
    m.user_factors, m.item_factors = P, Q
    if draw(st.booleans()) or bad in ("bias_len", "one_bias"):
        m.user_bias = rng.normal(size=nu + (bad == "bias_len")).astype(np.float32)
        if bad != "one_bias":
            m.item_bias = rng.normal(size=ni).astype(np.float32)
    if bad == "nan" and nu and k:
        P[0, 0] = np.nan
    m.global_mean = float(rng.normal())
    return m, bad


def reference(m, u, i):
    out = np.full(len(u), m.global_mean)
    for t, (a, b) in enumerate(zip(u, i)):
        if m.user_bias is not None:
            out[t] += (m.user_bias[a] if a >= 0 else 0) + (m.item_bias[b] if b >= 0 else 0)
        if a >= 0 and b >= 0:
            out[t] += m.user_factors[a].astype(float) @ m.item_factors[b]
    return out


@given(factor_model(), any_array(small=(-2, 4)), any_array(small=(-2, 4)),
       st.integers(-1, 300))
@CORE_CASES
def test_predict(model, users, items, n_threads):
    m, bad = model
    out, err = call(m._predict, C_ERRORS, users, items, n_threads)
    u, i = safe_as(users, int32_ok, np.int32), safe_as(items, int32_ok, np.int32)
    valid = bad not in ("k", "bias_len", "one_bias") and m.user_factors.shape[1] > 0 and \
        u is not None and i is not None and len(u) == len(i) and \
        ((u >= -1) & (u < m.user_factors.shape[0])).all() and \
        ((i >= -1) & (i < m.item_factors.shape[0])).all()
    assert (err is None) == valid, err
    if valid:
        np.testing.assert_allclose(out, reference(m, u, i), rtol=1e-5, atol=1e-5)


@given(factor_model(), st.integers(0, 6).flatmap(lambda n: st.tuples(
    any_array(n, small=(-1, 4)), any_array(n, small=(-1, 4)), any_array(n, small=(0, 5)))),
    st.floats(-1, 1), st.floats(0, 1), st.booleans(), st.integers(0, 2**64 - 1),
    st.integers(-1, 3), st.integers(-1, 3))
@CORE_CASES
def test_sgd_epoch(model, triplet, lr, reg, biases, seed, epoch, n_threads):
    m, bad = model
    before = {name: None if getattr(m, name) is None else getattr(m, name).copy()
              for name in ("user_factors", "item_factors", "user_bias", "item_bias")}
    loss, err = call(_core.sgd_epoch, C_ERRORS, m, *triplet, learning_rate=lr,
                     regularization=reg, biases=biases, seed=seed, epoch=epoch,
                     n_threads=n_threads)
    if err is None:
        assert np.isfinite(loss) and loss >= 0
        for name in ("user_factors", "item_factors"):
            assert np.isfinite(getattr(m, name)).all()
    elif not isinstance(err, FloatingPointError):  # rejected: the model is untouched
        for name, a in before.items():
            np.testing.assert_array_equal(getattr(m, name), a)


@given(st.integers(0, 8).flatmap(lambda n: st.tuples(
    any_array(n, small=(-1, 4)), any_array(n, small=(-1, 4)),
    st.one_of(st.none(), any_array(n)))), st.integers(-2, 6), st.integers(-2, 6))
@CORE_CASES
def test_build_csr(triplet, n_rows, n_cols):
    rows, cols, values = triplet
    out, err = call(_core.build_csr, C_ERRORS, rows, cols, values, n_rows, n_cols)
    r, c = safe_as(rows, int32_ok, np.int32), safe_as(cols, int32_ok, np.int32)
    v = None if values is None else safe_as(values, float32_ok, np.float32)
    valid = r is not None and c is not None and (values is None or v is not None) and \
        len(r) == len(c) and (v is None or len(v) == len(r)) and n_rows >= 0 and \
        n_cols >= 0 and ((r >= 0) & (r < n_rows)).all() and ((c >= 0) & (c < n_cols)).all() \
        and len(set(zip(r.tolist(), c.tolist()))) == len(r)
    assert (err is None) == valid, err
    if valid:
        indptr, indices, vals = out
        order = np.lexsort((c, r))
        np.testing.assert_array_equal(indptr, np.r_[0, np.cumsum(np.bincount(r, minlength=n_rows))])
        np.testing.assert_array_equal(indices, c[order])
        np.testing.assert_array_equal(vals, np.ones(len(r)) if v is None else v[order])


@given(st.integers(0, 5).flatmap(lambda n: st.tuples(any_array(n), any_array(n))))
@CORE_CASES
def test_rmse_mae(pair):
    out, err = call(_core.rmse_mae, C_ERRORS, *pair)
    p, t = (safe_as(x, float32_ok, np.float32) for x in pair)
    if p is None or t is None or len(p) != len(t) or len(p) == 0:
        assert err is not None
        return
    with np.errstate(invalid="ignore"):
        e = p.astype(float) - t
    if not np.isfinite(e).all():
        assert isinstance(err, ValueError)
        return
    assert err is None
    np.testing.assert_allclose(out, (np.sqrt(np.mean(e ** 2)), np.mean(np.abs(e))), rtol=1e-9)


@given(st.one_of(any_array(), st.tuples(st.integers(0, 5), st.integers(-1, 4)).map(
    lambda s: np.zeros((s[0], max(s[1], 0)), np.float32))),
    st.integers(-1, 2), st.floats(), st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))
@CORE_CASES
def test_init_factors(out, kind, scale, seed, stream):
    before = snapshot(out)  # the one argument it may write
    try:
        result = _core.init_factors(out, kind, scale, seed, stream)
    except (TypeError, ValueError, OverflowError) as e:
        assert any(name in str(e) for name in C_ERRORS), e
        assert unchanged(before, out)
        return
    assert result is None and out.dtype == np.float32 and out.ndim == 2
    again = np.empty_like(out)
    _core.init_factors(again, kind, scale, seed, stream)
    np.testing.assert_array_equal(out, again)  # deterministic in (seed, stream)
    assert np.isfinite(out).all()
    if kind == 0:
        assert ((out >= 0) & (out <= np.float32(scale))).all()


@given(st.sampled_from(["user_factors", "item_factors", "user_bias", "item_bias",
                        "seen_indptr", "seen_indices"]), any_array())
@CORE_CASES
def test_model_attributes(name, value):
    """Setting the array attributes: converted into the model's own copy,
    read-only to Python, or rejected, naming them."""
    m = _core.Model()
    _, err = call(setattr, [name], m, name, value)
    if err is None and value is not None:
        got = getattr(m, name)
        assert got.flags.c_contiguous and not got.flags.writeable
        want = np.array(value, got.dtype) if isinstance(value, list) else \
            np.asarray(value).astype(got.dtype)
        np.testing.assert_array_equal(got, want)
        if isinstance(value, np.ndarray):
            assert not np.shares_memory(got, value)


# ---- the kernels that take compressed rows, and the top-N kernels ---------------

@st.composite
def csr_pair(draw):
    """(by_row, by_col, n_rows, n_cols) of random triplets, and sometimes one
    of them damaged: an index pointer, an index, a length, a swap."""
    n_rows, n_cols = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    cells = rng.choice(n_rows * n_cols, size=rng.integers(1, n_rows * n_cols + 1), replace=False)
    r, c = (cells // n_cols).astype(np.int32), (cells % n_cols).astype(np.int32)
    v = rng.uniform(0.5, 5, len(cells)).astype(np.float32)
    by_row = list(_core.build_csr(r, c, v, n_rows, n_cols))
    by_col = list(_core.build_csr(c, r, v, n_cols, n_rows))
    damage = draw(st.sampled_from([None] * 5 + ["indptr", "index", "short", "swap", "nan",
                                                "dtype"]))
    target = draw(st.sampled_from([by_row, by_col]))
    if damage == "indptr":
        target[0] = target[0].copy()
        target[0][draw(st.integers(0, len(target[0]) - 1))] = draw(
            st.sampled_from([-1, 10**6, 2**40]))
    elif damage == "index":
        target[1] = target[1].copy()
        target[1][0] = draw(st.sampled_from([-1, 99, 2**31 - 1]))
    elif damage == "short":
        target[1], target[2] = target[1][:-1], target[2][:-1]
    elif damage == "swap":
        by_row, by_col = by_col, by_row
    elif damage == "nan":
        target[2] = target[2].copy()
        target[2][0] = np.nan
    elif damage == "dtype":
        target[0] = target[0].astype(np.float64)
    return tuple(by_row), tuple(by_col), n_rows, n_cols


KERNEL_ERRORS = (TypeError, ValueError, IndexError, FloatingPointError, OverflowError,
                 RuntimeError)  # RuntimeError: LAPACK reports a failure


def kernel_call(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs), None
    except KERNEL_ERRORS as e:
        return None, e


@given(csr_pair(), st.integers(-1, 6), st.booleans(), st.integers(0, 3), st.integers(0, 2))
@CORE_CASES
def test_csr_kernels(pair, k, add_fill, passes, n_threads):
    """baseline_biases, nmf_epoch/nmf_objective, svd_densify, svd_frobenius2,
    svd_dense and svd_randomized on valid or damaged compressed rows."""
    by_row, by_col, n_rows, n_cols = pair
    row_fill, col_fill = np.ones(n_rows), np.zeros(n_cols)
    dense, err = kernel_call(_core.svd_densify, by_row, row_fill, col_fill, add_fill=add_fill,
                             n_threads=n_threads)
    frob, err2 = kernel_call(_core.svd_frobenius2, by_row, row_fill, col_fill, add_fill=add_fill)
    assert (err is None) == (err2 is None), (err, err2)
    if err is None:
        assert dense.shape == (n_rows, n_cols)
        np.testing.assert_allclose(frob, (dense ** 2).sum(), rtol=1e-9)
    a = dense if dense is not None else np.full((2, 3), np.nan)
    out, err = kernel_call(_core.svd_dense, a, k, n_threads=n_threads)
    if err is None and np.isfinite(a).all():
        np.testing.assert_allclose(out[0], np.linalg.svd(a, compute_uv=False), atol=1e-9)
    kernel_call(_core.svd_randomized, by_row, by_col, row_fill, col_fill, k, add_fill=add_fill,
                oversampling=2, power_iterations=passes, seed=1, n_threads=n_threads)
    kernel_call(_core.baseline_biases, by_row, by_col, 3.0, 1.0, 1.0, passes, n_threads)
    m = _core.Model()
    m.user_factors = np.full((n_rows, max(k, 1)), 0.5, np.float32)
    m.item_factors = np.full((n_cols, max(k, 1)), 0.5, np.float32)
    for fn in (_core.nmf_epoch, _core.nmf_objective):
        out, err = kernel_call(fn, m, by_row, by_col, regularization=0.1,
                               bias_regularization=0.1, biases=False, n_threads=n_threads)
        if err is None:
            assert np.isfinite(out) and (m.user_factors >= 0).all()


@given(factor_model(), any_array(small=(-1, 4)), st.integers(-1, 6), st.booleans(),
       st.one_of(st.none(), any_array(small=(-1, 5))), st.integers(0, 2),
       st.sampled_from([None, "indptr", "index"]))
@CORE_CASES
def test_topn_kernels(model, users, n, exclude_seen, pool, n_threads, damage):
    """recommend, recommend_vector, similar and fold_in on consistent or
    inconsistent models, arbitrary indices, pools and training-item lists."""
    m, bad = model
    nu, ni = m.user_factors.shape[0], m.item_factors.shape[0]
    rng = np.random.default_rng(nu * 7 + ni)
    seen = [np.sort(rng.choice(ni, rng.integers(0, ni + 1), replace=False)) for _ in range(nu)]
    indptr = np.r_[0, np.cumsum([len(s) for s in seen])].astype(np.int64)
    indices = np.concatenate(seen + [np.zeros(0)]).astype(np.int32)
    if damage == "indptr" and nu:
        indptr[-1] += 3
    elif damage == "index" and len(indices):
        indices[0] = ni + 5
    m.seen_indptr, m.seen_indices = indptr, indices
    out, err = kernel_call(_core.recommend, m, users, n, exclude_seen=exclude_seen, pool=pool,
                           n_threads=n_threads)
    if err is None:
        items, scores, counts = out
        assert ((items >= -1) & (items < max(ni, 1))).all()
        assert (counts >= 0).all() and (counts <= items.shape[1]).all()
    k = m.user_factors.shape[1]
    kernel_call(_core.recommend_vector, m, np.ones(k, np.float32), 0.5, users, pool, n)
    kernel_call(_core.similar, m.item_factors, users, n, pool=pool, n_threads=n_threads)
    kernel_call(_core.fold_in, m, users, np.ones(np.size(users), np.float32), 1.0)
