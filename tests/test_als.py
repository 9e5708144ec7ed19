"""The ALS family: the half-step kernel against dense NumPy normal equations,
the exact objective, thread independence, MovieLens accuracy, bad input."""

import numpy as np
import pytest

import mfrec
from mfrec import _core

# ---- a plain NumPy reference of the half-step ------------------------------


def small_problem(rng, n_rows=40, n_cols=30, k=5, density=0.3, empty_row=3):
    mask = rng.random((n_rows, n_cols)) < density
    mask[empty_row] = False  # a row with nothing observed
    values = np.where(mask, rng.integers(1, 6, (n_rows, n_cols)), 0).astype(np.float32)
    rows, cols = np.nonzero(mask)
    csr = _core.build_csr(rows.astype(np.int32), cols.astype(np.int32), values[rows, cols],
                          n_rows, n_cols)
    Y = rng.normal(0, 0.5, (n_cols, k)).astype(np.float32)
    return mask, values, csr, Y


def dense_weights_targets(mask, values, w0, alpha, binary, row_weights, col_weights,
                          offset, y_bias):
    """W (every entry's weight) and T (every entry's target) as dense arrays:
    the kernel's model written out over the full matrix."""
    n_rows, n_cols = mask.shape
    rw = np.ones(n_rows) if row_weights is None else row_weights.astype(float)
    cw = np.ones(n_cols) if col_weights is None else col_weights.astype(float)
    conf = np.outer(rw, cw) * (1.0 + alpha * values)
    pref = (values > 0).astype(float) if binary else values.astype(float)
    ob = 0.0 if y_bias is None else y_bias[None, :].astype(float)
    W = np.where(mask, conf, w0)
    T = np.where(mask, pref - offset - ob, 0.0)
    return W, T


def reference_half_step(mask, values, Y, lam, w0=0.0, alpha=0.0, binary=False,
                        row_weights=None, col_weights=None, scale=False, offset=0.0,
                        y_bias=None):
    """Each row: numpy.linalg.solve of (Yd^T diag(W_i) Yd + lambda_i I) x = Yd^T diag(W_i) T_i
    with the weights of ALL entries (w0 on the unobserved ones)."""
    W, T = dense_weights_targets(mask, values, w0, alpha, binary, row_weights, col_weights,
                                 offset, y_bias)
    Yd = Y.astype(float)
    if y_bias is not None:
        Yd = np.hstack([Yd, np.ones((len(Yd), 1))])
    X = np.zeros((mask.shape[0], Yd.shape[1]))
    for i in range(mask.shape[0]):
        n_obs = mask[i].sum()
        if n_obs == 0 and w0 == 0:
            continue  # nothing to fit: the kernel returns 0
        li = lam * n_obs if scale else lam
        A = (Yd * W[i][:, None]).T @ Yd + li * np.eye(Yd.shape[1])
        X[i] = np.linalg.solve(A, (Yd * W[i][:, None]).T @ T[i])
    return X


def reference_loss(mask, values, X, Y, lam, w0=0.0, alpha=0.0, binary=False,
                   row_weights=None, col_weights=None, scale=False, offset=0.0, y_bias=None):
    """(data, reg) of the rows at X: sum of W (T - X Y^T)^2 over all entries, and
    sum lambda_i |x_i|^2."""
    W, T = dense_weights_targets(mask, values, w0, alpha, binary, row_weights, col_weights,
                                 offset, y_bias)
    Yd = Y.astype(float) if y_bias is None else np.hstack([Y, np.ones((len(Y), 1))])
    data = float((W * (T - X.astype(float) @ Yd.T) ** 2).sum())
    lam_i = lam * mask.sum(1) if scale else np.full(len(X), lam)
    reg = float((lam_i * (X.astype(float) ** 2).sum(1)).sum())
    return data, reg


def reference_sse(mask, values, X, Y, offset=0.0, y_bias=None, x_bias=None):
    """Sum over the observed entries of (value - prediction)^2, unweighted,
    with the prediction offset + y_bias_j + x_bias_i + x_i.y_j in float64."""
    pred = offset + X.astype(float) @ Y.astype(float).T
    if y_bias is not None:
        pred = pred + y_bias[None, :] + x_bias[:, None]
    return float((mask * (values - pred) ** 2).sum())


MODES = {
    "explicit": dict(lam=0.5),
    "explicit-scaled": dict(lam=0.05, scale=True),
    "weighted": dict(lam=0.5, w0=0.1),
    "weighted-w0>1": dict(lam=0.1, w0=2.0),
    "weighted-row-col": dict(lam=0.3, w0=0.2, row_weights=True, col_weights=True),
    "implicit": dict(lam=0.5, w0=1.0, alpha=2.0, binary=True),
    "implicit-weights": dict(lam=0.5, w0=1.0, alpha=2.0, binary=True, row_weights=True),
}


def mode_arguments(mode, rng, n_rows, n_cols):
    m = dict(MODES[mode])
    if m.pop("row_weights", False):
        m["row_weights"] = rng.uniform(0.5, 2.0, n_rows).astype(np.float32)
    if m.pop("col_weights", False):
        m["col_weights"] = rng.uniform(0.5, 2.0, n_cols).astype(np.float32)
    return m


def kernel_kwargs(m):
    return dict(regularization=m["lam"], unobserved_weight=m.get("w0", 0.0),
                alpha=m.get("alpha", 0.0), binary=m.get("binary", False),
                scale_regularization=m.get("scale", False),
                row_weights=m.get("row_weights"), col_weights=m.get("col_weights"))


def row_relative_error(X, ref, floor=1e-12):
    """Each row's error relative to its norm (at least `floor`)."""
    return np.linalg.norm(X - ref, axis=1) / np.maximum(np.linalg.norm(ref, axis=1), floor)


@pytest.mark.parametrize("mode", sorted(MODES))
def test_half_step_matches_dense_solve(mode, rng):
    mask, values, csr, Y = small_problem(rng)
    m = mode_arguments(mode, rng, *mask.shape)
    ref = reference_half_step(mask, values, Y, **m)
    X = rng.normal(0, 0.1, (mask.shape[0], Y.shape[1])).astype(np.float32)
    stats = _core.als_half_step(*csr, Y, X, **kernel_kwargs(m))
    assert row_relative_error(X, ref).max() < 1e-4
    # the reported objective terms are those of the new rows, computed densely
    data, reg = reference_loss(mask, values, X, Y, **m)
    assert stats["data"] == pytest.approx(data, rel=1e-5)
    assert stats["reg"] == pytest.approx(reg, rel=1e-5)
    # and the plain squared errors on the raw values (not weights or 1[v > 0])
    assert stats["sse"] == pytest.approx(reference_sse(mask, values, X, Y), rel=1e-5)
    assert _core.als_half_step(*csr, Y, X.copy(), loss=False, **kernel_kwargs(m))["sse"] == 0


@pytest.mark.parametrize("mode", ["weighted-row-col", "implicit"])
def test_half_step_on_the_rows_a_block_needs(mode, rng):
    """A block's share of a half-step: Y holds only the rows its indices
    name (renumbered), the whole side's Gram matrix comes as gram=, and
    the rows solve as against the whole Y (to the Gram's rounding)."""
    mask, values, csr, Y = small_problem(rng)
    m = mode_arguments(mode, rng, *mask.shape)
    indptr, indices, vals = csr
    rows = slice(0, 5)  # the block: the first rows
    block = indptr[:6].copy(), indices[:indptr[5]], vals[:indptr[5]]
    needed = np.unique(block[1])
    assert len(needed) < len(Y)  # it names only some of the columns
    local = np.searchsorted(needed, block[1]).astype(np.int32)
    ref = reference_half_step(mask[rows], values[rows], Y, **{
        **m, "row_weights": None if m.get("row_weights") is None else m["row_weights"][rows]})
    kw = kernel_kwargs(m)
    kw["row_weights"] = None if kw["row_weights"] is None else kw["row_weights"][rows]
    kw["col_weights"] = None if kw["col_weights"] is None else kw["col_weights"][needed]
    gram = (Y.astype(np.float64).T @ Y).astype(np.float32)
    X = np.zeros((5, Y.shape[1]), np.float32)
    _core.als_half_step(block[0], local, block[2], Y[needed], X, gram=gram, **kw)
    assert row_relative_error(X, ref).max() < 1e-4
    without = np.zeros_like(X)  # the Gram of Y[needed] alone is another problem
    _core.als_half_step(block[0], local, block[2], Y[needed], without, **kw)
    assert row_relative_error(without, ref).max() > 1e-3
    with pytest.raises(ValueError, match="gram must be"):
        _core.als_half_step(block[0], local, block[2], Y[needed], X, gram=gram[:2], **kw)
    with pytest.raises(ValueError, match="finite"):
        _core.als_half_step(block[0], local, block[2], Y[needed], X, gram=gram * np.inf, **kw)


def test_half_step_with_biases_matches_dense_solve(rng):
    mask, values, csr, Y = small_problem(rng)
    y_bias = rng.normal(0, 0.3, Y.shape[0]).astype(np.float32)
    X = np.zeros((mask.shape[0], Y.shape[1]), np.float32)
    x_bias = np.zeros(mask.shape[0], np.float32)
    stats = _core.als_half_step(*csr, Y, X, x_bias=x_bias, y_bias=y_bias, offset=3.0,
                                regularization=0.3)
    ref = reference_half_step(mask, values, Y, 0.3, offset=3.0, y_bias=y_bias)
    got = np.hstack([X, x_bias[:, None]])
    assert row_relative_error(got, ref).max() < 1e-4
    data, reg = reference_loss(mask, values, got, Y, 0.3, offset=3.0, y_bias=y_bias)
    assert stats["data"] == pytest.approx(data, rel=1e-5)
    assert stats["reg"] == pytest.approx(reg, rel=1e-5)
    sse = reference_sse(mask, values, X, Y, offset=3.0, y_bias=y_bias, x_bias=x_bias)
    assert stats["sse"] == pytest.approx(sse, rel=1e-5)


@pytest.mark.parametrize("solver", ["cholesky", "cg"])
def test_half_step_augmented_layout_is_the_same_solve(solver, rng):
    """augmented=True: X and Y as rows (factors, 1), which the kernel reads
    and solves in place without copies; the same rows, biases and sums, bit
    for bit, as the plain layout, and X's column of ones left alone."""
    mask, values, csr, Y = small_problem(rng, k=16)
    X = rng.normal(0, 0.1, (mask.shape[0], 16)).astype(np.float32)
    x_bias, y_bias = (rng.normal(0, 0.3, n).astype(np.float32) for n in (len(X), len(Y)))
    kw = dict(offset=3.0, regularization=0.3, solver=solver, n_threads=2)
    Xa, Ya = (np.hstack([A, np.ones((len(A), 1), np.float32)]) for A in (X, Y))
    xa_bias = x_bias.copy()
    plain = _core.als_half_step(*csr, Y, X, x_bias=x_bias, y_bias=y_bias, **kw)
    aug = _core.als_half_step(*csr, Ya, Xa, x_bias=xa_bias, y_bias=y_bias, augmented=True, **kw)
    assert np.array_equal(Xa[:, :16], X) and np.array_equal(xa_bias, x_bias)
    assert (Xa[:, 16] == 1).all()
    assert {k: plain[k] for k in ("data", "reg", "sse")} == \
        {k: aug[k] for k in ("data", "reg", "sse")}


@pytest.mark.parametrize("k", [5, 16, 37, 64])
@pytest.mark.parametrize("biases", [False, True])
def test_half_step_sse_is_that_of_predict(k, biases, rng):
    """sse sums the squared errors of the very float32 predictions predict
    makes (its rows as items, its columns as users), tails of k mod 16 and
    k < 16 included: only the order of the float64 sum differs."""
    mask, values, csr, Y = small_problem(rng, n_rows=60, n_cols=50, k=k, density=0.4)
    X = np.zeros((mask.shape[0], k), np.float32)
    kw = dict(regularization=0.5)
    if biases:
        kw.update(x_bias=np.zeros(len(X), np.float32), offset=3.0,
                  y_bias=rng.normal(0, 0.3, len(Y)).astype(np.float32))
    stats = _core.als_half_step(*csr, Y, X, **kw)
    m = _core.Model()
    m.user_factors, m.item_factors, m.global_mean = Y, X, kw.get("offset", 0.0)
    if biases:
        m.user_bias, m.item_bias = kw["y_bias"], kw["x_bias"]
    rows, cols = np.nonzero(mask)
    pred = m._predict(cols.astype(np.int32), rows.astype(np.int32))
    err = pred.astype(float) - values[rows, cols]
    assert stats["sse"] == pytest.approx(float(err @ err), rel=1e-12)


@pytest.mark.parametrize("mode", ["explicit", "weighted-w0>1", "implicit"])
def test_cg_converges_to_the_solution_and_never_increases_the_row_objective(mode, rng):
    mask, values, csr, Y = small_problem(rng)
    m = mode_arguments(mode, rng, *mask.shape)
    ref = reference_half_step(mask, values, Y, **m)
    X0 = rng.normal(0, 0.1, (mask.shape[0], Y.shape[1])).astype(np.float32)
    before = sum(reference_loss(mask, values, X0, Y, **m))
    X = X0.copy()
    _core.als_half_step(*csr, Y, X, solver="cg", cg_steps=1, **kernel_kwargs(m))
    assert sum(reference_loss(mask, values, X, Y, **m)) < before
    X = X0.copy()
    _core.als_half_step(*csr, Y, X, solver="cg", cg_steps=4 * Y.shape[1], **kernel_kwargs(m))
    # (the empty row's solution is 0: measure it against the typical row size)
    typical = np.median(np.linalg.norm(ref, axis=1))
    assert row_relative_error(X, ref, floor=typical).max() < 1e-3


def reference_cg(mask, values, Y, X0, steps, lam, w0=0.0, alpha=0.0, binary=False,
                 scale=False):
    """`steps` conjugate-gradient steps on each row's normal equations (as
    reference_half_step forms them), warm-started from X0's row."""
    W, T = dense_weights_targets(mask, values, w0, alpha, binary, None, None, 0.0, None)
    Yd = Y.astype(float)
    X = X0.astype(float)
    for i in range(len(X)):
        li = lam * mask[i].sum() if scale else lam
        A = (Yd * W[i][:, None]).T @ Yd + li * np.eye(Yd.shape[1])
        x = X[i]
        r = (Yd * W[i][:, None]).T @ T[i] - A @ x
        p, rs = r.copy(), r @ r
        for _ in range(steps):
            ap = A @ p
            a = rs / (p @ ap)
            x, r = x + a * p, r - a * ap
            p, rs = r + (r @ r) / rs * p, r @ r
        X[i] = x
    return X


@pytest.mark.parametrize("mode", ["explicit-scaled", "implicit"])
def test_cg_rows_grouped_by_what_fits_in_cache_take_their_own_steps(mode, rng):
    """The kernel solves a block's rows in groups whose gathered factor rows
    fit in cache (1024 entries at k = 64): rows of 1-1400 entries make groups
    of one row and of many, across two blocks. Every row takes exactly its
    own CG steps, and the objective and sse sum every group's rows."""
    k, n_rows, n_cols = 64, 70, 1500
    lengths = rng.choice([1, 30, 200, 700, 1100, 1400], n_rows)
    mask = np.zeros((n_rows, n_cols), bool)
    for row, n in enumerate(lengths):
        mask[row, rng.choice(n_cols, n, replace=False)] = True
    values = np.where(mask, rng.integers(1, 6, mask.shape), 0).astype(np.float32)
    rows, cols = np.nonzero(mask)
    csr = _core.build_csr(rows.astype(np.int32), cols.astype(np.int32), values[rows, cols],
                          n_rows, n_cols)
    Y = rng.normal(0, 0.1, (n_cols, k)).astype(np.float32)
    m = mode_arguments(mode, rng, n_rows, n_cols)
    X0 = rng.normal(0, 0.1, (n_rows, k)).astype(np.float32)
    X = X0.copy()
    stats = _core.als_half_step(*csr, Y, X, solver="cg", cg_steps=3, n_threads=2,
                                **kernel_kwargs(m))
    ref = reference_cg(mask, values, Y, X0, 3, **m)
    assert row_relative_error(X, ref).max() < 1e-4
    data, reg = reference_loss(mask, values, X, Y, **m)
    assert stats["data"] == pytest.approx(data, rel=1e-5)
    assert stats["reg"] == pytest.approx(reg, rel=1e-5)
    assert stats["sse"] == pytest.approx(reference_sse(mask, values, X, Y), rel=1e-5)


def test_half_step_leaves_inputs_alone(rng):
    mask, values, csr, Y = small_problem(rng)
    copies = [a.copy() for a in csr] + [Y.copy()]
    X = np.zeros((mask.shape[0], Y.shape[1]), np.float32)
    _core.als_half_step(*csr, Y, X, unobserved_weight=0.5)
    for a, b in zip(list(csr) + [Y], copies):
        assert np.array_equal(a, b)


def test_gram_path_on_many_rows_matches_numpy(rng):
    """More rows than one Gram block: the blocked ssyrk sum is the Gram."""
    n_rows, n_cols, k = 3, 20000, 4
    Y = rng.normal(0, 0.1, (n_cols, k)).astype(np.float32)
    csr = (np.zeros(n_rows + 1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32))
    X = np.zeros((n_rows, k), np.float32)
    # no observations: x = 0 minimizes w0 x^T G x + lambda |x|^2; the loss is x^T G x = 0
    stats = _core.als_half_step(*csr, Y, X, unobserved_weight=1.0, regularization=1.0)
    assert np.all(X == 0) and stats["data"] == 0
    # one observed entry per row: the solution involves G = Y^T Y
    csr = (np.arange(n_rows + 1, dtype=np.int64), np.arange(n_rows, dtype=np.int32),
           np.full(n_rows, 3.0, np.float32))
    mask = np.zeros((n_rows, n_cols), bool)
    mask[np.arange(n_rows), np.arange(n_rows)] = True
    values = np.where(mask, 3.0, 0.0).astype(np.float32)
    _core.als_half_step(*csr, Y, X, unobserved_weight=0.5, regularization=1.0)
    ref = reference_half_step(mask, values, Y, 1.0, w0=0.5)
    assert row_relative_error(X, ref).max() < 1e-4


# ---- the models ---------------------------------------------------------------


def implicit_100k(data, threshold=4):
    r = data.ratings
    keep = r.rating >= threshold
    return r.user[keep], r.item[keep], np.ones(keep.sum(), np.float32)


MODEL_CASES = {
    "als-biases": ("als", dict(factors=8, regularization=0.1)),
    "als-plain": ("als", dict(factors=8, regularization=0.1, biases=False,
                              scale_regularization=False)),
    "wals": ("wals", dict(factors=8, unobserved_weight=0.05, regularization=0.1)),
    "wals-weights": ("wals", dict(factors=8, unobserved_weight=0.05, regularization=0.1,
                                  row_weights=0.5, col_weights=1.0)),
    "implicit": ("wals", dict(factors=8, alpha=5.0, regularization=0.1)),
}


@pytest.fixture(scope="module")
def ml_small(ml100k):
    """The 200 most active users of MovieLens 100K (ratings and their >= 4 part)."""
    r = ml100k.ratings
    users, counts = np.unique(r.user, return_counts=True)
    keep = np.isin(r.user, users[np.argsort(-counts)[:200]])
    return r[keep]


def case_data(algorithm, ratings):
    if algorithm == "als":
        return ratings.user, ratings.item, ratings.rating
    pos = ratings.rating >= 4
    return ratings.user[pos], ratings.item[pos], np.ones(pos.sum(), np.float32)


def dense_objective(model, algorithm, params, users, items, ratings):
    """The fitted model's objective computed over the full dense matrix."""
    uidx = np.searchsorted(model.user_ids, users)
    iidx = np.searchsorted(model.item_ids, items)
    n_u, n_i = len(model.user_ids), len(model.item_ids)
    mask = np.zeros((n_u, n_i), bool)
    mask[uidx, iidx] = True
    values = np.zeros((n_u, n_i), np.float32)
    values[uidx, iidx] = ratings
    P, Q = model.user_factors.astype(float), model.item_factors.astype(float)
    pred = P @ Q.T
    lam = params["regularization"]
    n_user, n_item = mask.sum(1), mask.sum(0)
    scale = params.get("scale_regularization", algorithm == "als")
    lu = lam * n_user if scale else np.full(n_u, lam)
    li = lam * n_item if scale else np.full(n_i, lam)
    if algorithm == "als":
        if params.get("biases", True):
            pred += model.global_mean + model.user_bias[:, None] + model.item_bias[None, :]
            reg = (lu * ((P ** 2).sum(1) + model.user_bias ** 2.0)).sum() + \
                (li * ((Q ** 2).sum(1) + model.item_bias ** 2.0)).sum()
        else:
            reg = (lu * (P ** 2).sum(1)).sum() + (li * (Q ** 2).sum(1)).sum()
        return float((mask * (values - pred) ** 2).sum() + reg)
    implicit = params.get("alpha") is not None
    w0 = params.get("unobserved_weight") or (1.0 if implicit else 0.1)
    rw, cw = np.ones(n_u), np.ones(n_i)
    if params.get("row_weights"):
        rw = (n_user / n_user.mean()) ** -params["row_weights"]
    if params.get("col_weights"):
        cw = (n_item / n_item.mean()) ** -params["col_weights"]
    alpha = params.get("alpha") or 0.0
    W = np.where(mask, np.outer(rw, cw) * (1 + alpha * values), w0)
    T = np.where(mask, (values > 0) if implicit else values, 0.0)
    reg = (lu * (P ** 2).sum(1)).sum() + (li * (Q ** 2).sum(1)).sum()
    return float((W * (T - pred) ** 2).sum() + reg)


@pytest.mark.parametrize("case", sorted(MODEL_CASES))
def test_objective_is_exact_and_non_increasing(case, ml_small):
    algorithm, params = MODEL_CASES[case]
    u, i, r = case_data(algorithm, ml_small)
    model = mfrec.Model(algorithm, iterations=8, seed=3, **params).fit(u, i, r)
    loss = np.array([row["train_loss"] for row in model.history])
    # non-increasing: every Cholesky half-step minimizes the objective exactly
    # over one side; the slack is float32 rounding of the factors
    assert np.all(np.diff(loss) <= 1e-6 * loss[1:]), loss
    assert loss[-1] < loss[0]
    assert loss[-1] == pytest.approx(dense_objective(model, algorithm, params, u, i, r),
                                     rel=1e-4)
    assert all(np.isfinite(row["train_rmse"]) for row in model.history)


@pytest.mark.parametrize("case", sorted(MODEL_CASES))
@pytest.mark.parametrize("solver", ["cholesky", "cg"])
def test_same_seed_same_factors_for_any_thread_count(case, solver, ml_small):
    algorithm, params = MODEL_CASES[case]
    u, i, r = case_data(algorithm, ml_small)
    fits = [mfrec.Model(algorithm, iterations=3, seed=7, solver=solver, n_threads=t,
                        **params).fit(u, i, r) for t in (1, 2)]
    for name in ("user_factors", "item_factors", "user_bias", "item_bias"):
        a, b = getattr(fits[0], name), getattr(fits[1], name)
        assert (a is None and b is None) or np.array_equal(a, b), name
    for column in ("train_loss", "train_rmse"):
        assert [h[column] for h in fits[0].history] == [h[column] for h in fits[1].history]


@pytest.mark.parametrize("case", sorted(MODEL_CASES) + ["implicit-counts"])
@pytest.mark.parametrize("solver", ["cholesky", "cg"])
def test_train_rmse_comes_from_the_item_half_step(case, solver, ml_small, monkeypatch):
    """The history's train_rmse is the RMSE of the model's predictions on the
    training ratings (raw values, also for implicit feedback on counts), to
    float32 rounding, and the fit loop predicts nothing to get it."""
    algorithm, params = MODEL_CASES.get(case, ("wals", dict(factors=8, alpha=1.0)))
    u, i, r = case_data(algorithm, ml_small) if case != "implicit-counts" else \
        (ml_small.user, ml_small.item, ml_small.rating)
    predicted = []
    real_predictions = mfrec.algorithms.Algorithm.predictions
    monkeypatch.setattr(mfrec.algorithms.Algorithm, "predictions",
                        lambda self, *a: predicted.append(1) or real_predictions(self, *a))
    model = mfrec.Model(algorithm, iterations=2, seed=5, solver=solver, **params).fit(u, i, r)
    assert predicted == []
    uidx, iidx = np.searchsorted(model.user_ids, u), np.searchsorted(model.item_ids, i)
    pred = model.global_mean + np.einsum("ij,ij->i", model.user_factors[uidx].astype(float),
                                         model.item_factors[iidx].astype(float))
    if model.user_bias is not None:
        pred += model.user_bias[uidx].astype(float) + model.item_bias[iidx]
    want = np.sqrt(np.mean((r - pred) ** 2))
    assert model.history[-1]["train_rmse"] == pytest.approx(want, rel=2e-6)
    # the predict path's own float32 rounding: the same to the last few digits
    core_pred = model._predict(uidx.astype(np.int32), iidx.astype(np.int32))
    assert model.history[-1]["train_rmse"] == pytest.approx(
        _core.rmse_mae(core_pred, r)[0], rel=1e-7)


@pytest.mark.parametrize("algorithm, in_place", [("als", False), ("wals", False),
                                                 ("sgd", True)])
def test_fit_snapshots_copy_only_what_kernels_write(algorithm, in_place, ml_small):
    """A snapshot of an ALS fit holds the model's arrays themselves (the
    half-steps solve arrays of the fit's own, which publish copies into the
    model after each step of a fit that keeps snapshots), and they stay as
    they were through the next iteration; SGD writes in place, so its
    snapshot is a copy."""
    from mfrec.algorithms import TrainData, get_algorithm
    from mfrec._training import fit_state

    u, i, r = case_data("als", ml_small)
    (uids, uidx), (iids, iidx) = (np.unique(x, return_inverse=True) for x in (u, i))
    train = TrainData(uidx.astype(np.int32), iidx.astype(np.int32), r, len(uids), len(iids))
    cls = get_algorithm(algorithm)
    solver, work = cls({**cls.defaults, "factors": 4}), _core.Model()
    work.global_mean = float(r.mean())
    solver.start(work, train, 0)
    solver.step(work, train, 0)
    solver.publish(work)
    state = fit_state(work, solver)[0]
    before = {name: state[name].copy() for name in ("user_factors", "item_factors")}
    assert (state["user_factors"] is work.user_factors) == (not in_place)
    solver.step(work, train, 1)
    solver.publish(work)
    for name, a in before.items():
        assert np.array_equal(state[name], a), name
        assert not np.array_equal(getattr(work, name), a), name


def test_explicit_als_movielens_folds(ml100k):
    """u1..u5, the default settings (k=50, lambda=0.12 times each row's
    count, biases, 15 iterations): mean test RMSE <= 0.915."""
    rmse = []
    for fold in ("u1", "u2", "u3", "u4", "u5"):
        train, test = ml100k.fold(fold)
        model = mfrec.Model("als", seed=0).fit(train)
        rmse.append(model.score(test)["rmse"])
    assert np.mean(rmse) <= 0.915, rmse


def test_explicit_als_recovers_a_planted_model():
    data = mfrec.make_low_rank(n_users=300, n_items=200, rank=4, density=0.3, noise=0.1,
                               seed=1)
    train, test = mfrec.train_test_split(data.ratings, test_size=0.2, seed=0)
    model = mfrec.Model("als", factors=4, regularization=0.01, iterations=20, seed=0).fit(train)
    assert model.score(test)["rmse"] < 0.13  # noise 0.1: the planted model is found


def test_cg_reaches_cholesky_accuracy(ml_small):
    u, i, r = case_data("wals", ml_small)
    params = dict(factors=16, alpha=5.0, regularization=0.1, iterations=10, seed=2)
    chol = mfrec.Model("wals", **params).fit(u, i, r)
    cg = mfrec.Model("wals", solver="cg", **params).fit(u, i, r)
    assert cg.history[-1]["train_loss"] == pytest.approx(chol.history[-1]["train_loss"],
                                                         rel=0.01)


def test_weighted_mf_between_observed_only_and_svd(ml_small):
    """w0 = 0 fits the observed ones only and predicts ~1 everywhere; w0 = 1
    is the zero-filled matrix: with lambda ~ 0 its optimum is the rank-k SVD."""
    u, i, r = case_data("wals", ml_small)
    obs = mfrec.Model("wals", factors=8, unobserved_weight=0.0, regularization=0.1,
                      seed=0).fit(u, i, r)
    rng = np.random.default_rng(0)
    any_u = rng.choice(obs.user_ids, 2000)
    any_i = rng.choice(obs.item_ids, 2000)
    assert np.mean(obs.predict(any_u, any_i)) > 0.8

    # s_8 / s_9 = 1.06 here: the error shrinks by about that ratio squared an
    # iteration, so 60 iterations reached 1e-3 from some starts and not others
    # (all within 4e-5 after 100)
    svd = mfrec.Model("wals", factors=8, unobserved_weight=1.0, regularization=1e-4,
                      iterations=100, seed=0).fit(u, i, r)
    uidx = np.searchsorted(svd.user_ids, u)
    iidx = np.searchsorted(svd.item_ids, i)
    A = np.zeros((len(svd.user_ids), len(svd.item_ids)))
    A[uidx, iidx] = 1.0
    U, s, Vt = np.linalg.svd(A, full_matrices=False)
    best = (U[:, :8] * s[:8]) @ Vt[:8]
    got = svd.user_factors.astype(float) @ svd.item_factors.T
    assert np.linalg.norm(got - best) / np.linalg.norm(best) < 1e-3
    assert abs(np.mean(svd.predict(any_u, any_i))) < 0.2  # mostly zeros


def test_implicit_accepts_binary_and_count_data(ml_small):
    u, i, _ = case_data("wals", ml_small)
    binary = mfrec.Model("wals", factors=8, alpha=10.0, iterations=3, seed=0).fit(
        u, i, np.ones(len(u)))
    counts = mfrec.Model("wals", factors=8, alpha=10.0, iterations=3, seed=0).fit(
        u, i, np.ones(len(u)) * 3)
    assert binary.global_mean == 0 and binary.user_bias is None
    # counts raise the confidence, not the preference: larger alpha*r, same target
    assert not np.allclose(binary.user_factors, counts.user_factors)
    pred = binary.predict(u[:50], i[:50])
    assert pred.max() > 0.5  # not clipped to a rating range, not mean-centred


# ---- bad input --------------------------------------------------------------------

@pytest.mark.parametrize("algorithm, params, match", [
    ("wals", dict(unobserved_weight=-0.1), "unobserved_weight"),
    ("wals", dict(alpha=-1.0), "alpha"),
    ("wals", dict(regularization=-0.5), "regularization"),
    ("als", dict(regularization=-0.5), "regularization"),
    ("als", dict(regularization=float("nan")), "regularization"),
    ("wals", dict(row_weights=-1.0), "row_weights"),
    ("als", dict(solver="lu"), "solver"),
    ("als", dict(cg_steps=0), "cg_steps"),
    ("als", dict(biases="yes"), "biases"),
])
def test_bad_parameters(algorithm, params, match):
    with pytest.raises(ValueError, match=match):
        mfrec.Model(algorithm, **params)


def test_bad_data():
    u, i = np.array([1, 1, 2, 3]), np.array([1, 2, 2, 3])
    with pytest.raises(ValueError, match="ratings >= 0"):
        mfrec.Model("wals", factors=1, alpha=1.0).fit(u, i, np.array([1.0, -1, 1, 1]))
    with pytest.raises(ValueError, match="singular|not positive definite"):
        mfrec.Model("als", factors=3, regularization=0.0).fit(u, i, np.ones(4))


def test_half_step_bad_arguments(rng):
    mask, values, csr, Y = small_problem(rng)
    X = np.zeros((mask.shape[0], Y.shape[1]), np.float32)
    bad = [
        (dict(regularization=-1.0), ValueError, "regularization"),
        (dict(unobserved_weight=-0.5), ValueError, "unobserved_weight"),
        (dict(alpha=-2.0), ValueError, "alpha"),
        (dict(solver="qr"), ValueError, "solver"),
        (dict(solver="cg", cg_steps=0), ValueError, "cg_steps"),
        (dict(x_bias=np.zeros(len(X), np.float32)), ValueError, "y_bias"),
        (dict(x_bias=np.zeros(len(X), np.float32), y_bias=np.zeros(len(Y), np.float32),
              unobserved_weight=0.1), ValueError, "unobserved_weight == 0"),
        (dict(row_weights=np.ones(3, np.float32)), ValueError, "row_weights must have length"),
        (dict(col_weights=-np.ones(len(Y), np.float32)), ValueError, "weights must be >= 0"),
        (dict(alpha=1.0, binary=True), None, None),  # fine: values >= 1
    ]
    for kwargs, exc, match in bad:
        if exc is None:
            _core.als_half_step(*csr, Y, X.copy(), **kwargs)
            continue
        with pytest.raises(exc, match=match):
            _core.als_half_step(*csr, Y, X.copy(), **kwargs)
    indptr, indices, vals = csr
    with pytest.raises(ValueError, match="indptr must have"):
        _core.als_half_step(indptr[:-1], indices, vals, Y, X)
    with pytest.raises(ValueError, match="same number"):
        _core.als_half_step(indptr, indices, vals, Y[:, :2], X)
    with pytest.raises(TypeError, match="X"):
        _core.als_half_step(indptr, indices, vals, Y, X.astype(np.float64))
    with pytest.raises(TypeError, match="X"):
        _core.als_half_step(indptr, indices, vals, Y, X[:, ::2])
    with pytest.raises(IndexError, match="indices"):
        _core.als_half_step(indptr, np.where(indices == 0, len(Y), indices).astype(np.int32),
                            vals, Y, X)
    with pytest.raises(ValueError, match="indptr must start at 0"):
        _core.als_half_step(indptr[::-1].copy(), indices, vals, Y, X)
    with pytest.raises(ValueError, match="confidence"):
        _core.als_half_step(indptr, indices, -vals, Y, X, alpha=1.0)
    with pytest.raises(ValueError, match="finite"):
        _core.als_half_step(indptr, indices, np.where(vals > 4, np.nan, vals), Y, X)
    with pytest.raises(ValueError, match="finite"):
        _core.als_half_step(indptr, indices, vals, Y, np.full_like(X, np.inf), solver="cg")
    Ya, biases = np.hstack([Y, np.ones((len(Y), 1), np.float32)]), dict(
        x_bias=np.zeros(len(X), np.float32), y_bias=np.zeros(len(Y), np.float32))
    Xa = np.zeros((len(X), Ya.shape[1]), np.float32)
    with pytest.raises(ValueError, match="augmented needs x_bias"):
        _core.als_half_step(*csr, Ya, Xa, augmented=True)
    with pytest.raises(ValueError, match="last column must be all 1"):
        _core.als_half_step(*csr, Ya * 2, Xa, augmented=True, **biases)
    with pytest.raises(ValueError, match="k \\+ 1 >= 2 columns"):
        _core.als_half_step(*csr, Ya[:, :1].copy(), Xa[:, :1].copy(), augmented=True, **biases)
    one_entry = (np.array([0, 1], np.int64), np.array([2], np.int32), np.ones(1, np.float32))
    with pytest.raises(ValueError, match="singular|not positive definite"):
        _core.als_half_step(*one_entry, Y, X[:1].copy(), regularization=0.0)


@pytest.mark.parametrize("case", sorted(MODEL_CASES))
def test_fold_in_is_the_user_half_step(case, ml_small):
    """A training user folded in from their ratings gets what the model's own
    user half-step gives them on the fitted item factors."""
    algorithm, params = MODEL_CASES[case]
    u, i, r = case_data(algorithm, ml_small)
    model = mfrec.Model(algorithm, iterations=3, seed=0, **params).fit(u, i, r)
    solver = model._solver
    uidx = np.searchsorted(model.user_ids, u).astype(np.int32)
    iidx = np.searchsorted(model.item_ids, i).astype(np.int32)
    csr = _core.build_csr(uidx, iidx, r.astype(np.float32), len(model.user_ids),
                          len(model.item_ids))
    P = model.user_factors.copy()
    bu = None if model.user_bias is None else model.user_bias.copy()
    _core.als_half_step(*csr, model.item_factors, P, x_bias=bu, y_bias=model.item_bias,
                        offset=model.global_mean, row_weights=solver.user_weights,
                        col_weights=solver.item_weights, **solver.kwargs)
    for row in (0, 17, len(model.user_ids) - 1):
        mine = uidx == row
        x, b = model.fold_in(i[mine], r[mine])
        assert row_relative_error(x[None], P[row][None].astype(float)).max() < 1e-4
        if bu is not None:
            assert b == pytest.approx(bu[row], rel=1e-4, abs=1e-5)
        ids, _ = model.recommend_new_user(i[mine], r[mine], n=5)
        assert len(ids) == 5 and not np.isin(ids, i[mine]).any()


@pytest.fixture(scope="module")
def implicit_model():
    data = mfrec.make_low_rank(n_users=40, n_items=30, rank=2, density=0.3, seed=4).ratings
    return mfrec.Model("wals", factors=2, alpha=2.0, iterations=2, seed=0).fit(
        data.user, data.item, np.ones(len(data), np.float32))


@pytest.mark.xfail(strict=True, raises=AssertionError,  # another message
                   reason="implicit fold_in hands the ratings to the half-step "
                   "unchecked: a negative rating gets the kernel's message about indptr, "
                   "weights and confidence, not one that names the ratings as fit's does")
def test_implicit_fold_in_refuses_negative_ratings_by_name(implicit_model):
    with pytest.raises(ValueError, match="ratings >= 0"):
        implicit_model.fold_in(implicit_model.item_ids[:2], [1.0, -1.0])


@pytest.mark.xfail(strict=True, raises=AssertionError,  # another message
                   reason="a rating whose confidence 1 + alpha r leaves float32 "
                   "makes implicit fold_in say 'use regularization > 0' although it is")
def test_implicit_fold_in_names_a_rating_too_large(implicit_model):
    with pytest.raises(ValueError, match="rating"):
        implicit_model.fold_in(implicit_model.item_ids[:1], [1e30])


def test_weighted_beats_popularity_and_svd_on_u1(ml100k):
    """u1 as implicit data (rating >= 4 -> 1): the weighted model with the
    settings weighted_mf.ipynb chooses on a validation split (k=32, w0=0.3,
    lambda=10) ranks better than popularity and the zero-filled SVD at k=32
    (and at k=8, 16, the SVD's best on that split)."""
    from mfrec.metrics import evaluate

    def positives(r):
        keep = r.rating >= 4
        return mfrec.Ratings(r.user[keep], r.item[keep], np.ones(keep.sum(), np.float32))

    train, test = (positives(r) for r in ml100k.fold("u1"))

    def precision(model):
        return evaluate(model.fit(train), test, k=10, threshold=1.0)["precision"]

    weighted = precision(mfrec.Model("wals", factors=32, unobserved_weight=0.3,
                                     regularization=10.0, seed=0))
    popular = precision(mfrec.Model("popular"))
    svd = max(precision(mfrec.Model("svd", factors=k, fill="zero")) for k in (8, 16, 32))
    assert weighted > popular and weighted > svd, (weighted, popular, svd)
