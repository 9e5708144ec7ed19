"""NMF: one epoch against a NumPy reference, the objective never increases,
factors stay non-negative, planted recovery, MovieLens accuracy, bad input."""
import numpy as np
import pytest

import mfrec
from mfrec import _core

REG, BREG = 0.1, 5.0


def problem(rng, m=40, n=30, k=3, density=0.4, biases=False):
    """Ratings by user and by item, and a core model with non-negative
    factors (and biases if asked)."""
    u, i = np.nonzero(rng.random((m, n)) < density)
    r = (1 + 4 * rng.random(len(u))).astype(np.float32)
    by_user = _core.build_csr(u.astype(np.int32), i.astype(np.int32), r, m, n)
    by_item = _core.build_csr(i.astype(np.int32), u.astype(np.int32), r, n, m)
    core = _core.Model()
    core.user_factors = rng.random((m, k)).astype(np.float32)
    core.item_factors = rng.random((n, k)).astype(np.float32)
    if biases:
        core.global_mean = float(r.mean())
        core.user_bias = rng.normal(0, 0.2, m).astype(np.float32)
        core.item_bias = rng.normal(0, 0.2, n).astype(np.float32)
    return (u, i, r.astype(np.float64)), by_user, by_item, core


def reference_epoch(u, i, r, P, Q, mu, bu, bi, reg, breg, biases):
    """The epoch of csrc/core/nmf.c, written plainly in float64."""
    P, Q = P.astype(np.float64), Q.astype(np.float64)
    m, n = len(P), len(Q)
    cu, ci = np.bincount(u, minlength=m), np.bincount(i, minlength=n)
    if biases:
        bu = bu.astype(np.float64)
        bi = bi.astype(np.float64)
        pq = np.sum(P[u] * Q[i], 1)
        bu = np.bincount(u, r - mu - bi[i] - pq, m) / (cu + breg)
        bi = np.bincount(i, r - mu - bu[u] - pq, n) / (ci + breg)
    base = mu + bu[u] + bi[i] if bu is not None else np.zeros(len(r))
    t = r - base
    tp, tn = np.maximum(t, 0), np.maximum(-t, 0)

    def update(X, Y, rows, cols, counts):
        w = np.sum(X[rows] * Y[cols], 1) + tn
        num = np.stack([np.bincount(rows, tp * Y[cols, f], len(X)) for f in range(X.shape[1])], 1)
        den = np.stack([np.bincount(rows, w * Y[cols, f], len(X)) for f in range(X.shape[1])], 1)
        den += reg * counts[:, None] * X
        return np.where(den > 0, X * num / np.where(den > 0, den, 1), X)

    P = update(P, Q, u, i, cu)
    Q = update(Q, P, i, u, ci)
    e = r - base - np.sum(P[u] * Q[i], 1)
    obj = e @ e + reg * (cu @ np.sum(P * P, 1) + ci @ np.sum(Q * Q, 1))
    if biases:
        obj += breg * (bu @ bu + bi @ bi)
    return P, Q, bu, bi, obj


@pytest.mark.parametrize("biases", [False, True])
def test_epoch_matches_numpy(rng, biases):
    (u, i, r), by_user, by_item, core = problem(rng, biases=biases)
    P0, Q0 = core.user_factors.copy(), core.item_factors.copy()
    bu0 = core.user_bias.copy() if biases else None
    bi0 = core.item_bias.copy() if biases else None
    obj = _core.nmf_epoch(core, by_user, by_item, regularization=REG,
                          bias_regularization=BREG, biases=biases)
    P, Q, bu, bi, ref = reference_epoch(u, i, r, P0, Q0, core.global_mean, bu0, bi0,
                                        REG, BREG, biases)
    np.testing.assert_allclose(core.user_factors, P, rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(core.item_factors, Q, rtol=2e-5, atol=1e-6)
    if biases:
        np.testing.assert_allclose(core.user_bias, bu, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(core.item_bias, bi, rtol=1e-5, atol=1e-6)
    assert obj == pytest.approx(ref, rel=1e-5)
    again = _core.nmf_objective(core, by_user, by_item, regularization=REG,
                                bias_regularization=BREG, biases=biases)
    assert again == obj


@pytest.mark.parametrize("biases", [False, True])
def test_objective_never_increases_and_factors_stay_non_negative(rng, biases):
    _, by_user, by_item, core = problem(rng, m=60, n=50, k=4, biases=biases)
    kw = dict(regularization=REG, bias_regularization=BREG, biases=biases)
    objectives = [_core.nmf_objective(core, by_user, by_item, **kw)]
    for _ in range(60):
        objectives.append(_core.nmf_epoch(core, by_user, by_item, **kw))
        assert core.user_factors.min() >= 0 and core.item_factors.min() >= 0
    steps = np.diff(objectives)
    assert np.all(steps <= 1e-6 * np.abs(objectives[1:]))  # float32 factors
    assert objectives[-1] < 0.5 * objectives[0]


def test_thread_count_does_not_change_the_result(rng):
    _, by_user, by_item, one = problem(rng, m=700, n=600, k=5, density=0.05, biases=True)
    two = _core.Model()
    for name in ("user_factors", "item_factors", "user_bias", "item_bias", "global_mean"):
        value = getattr(one, name)
        setattr(two, name, value.copy() if isinstance(value, np.ndarray) else value)
    kw = dict(regularization=REG, bias_regularization=BREG, biases=True)
    for _ in range(3):
        a = _core.nmf_epoch(one, by_user, by_item, n_threads=1, **kw)
        b = _core.nmf_epoch(two, by_user, by_item, n_threads=2, **kw)
    assert a == b
    np.testing.assert_array_equal(one.user_factors, two.user_factors)
    np.testing.assert_array_equal(one.item_factors, two.item_factors)


def non_negative(r):
    """Synthetic ratings shifted to >= 0 (NMF without biases takes no others)."""
    return mfrec.Ratings(r.user, r.item, r.rating - r.rating.min())


def test_model_history_and_non_negative_factors(rng):
    data = mfrec.make_low_rank(n_users=60, n_items=50, rank=3, density=0.3, seed=2)
    model = mfrec.Model("nmf", factors=3, epochs=30, seed=0).fit(non_negative(data.ratings))
    loss = [row["train_loss"] for row in model.history]
    assert len(loss) == 30 and np.all(np.diff(loss) <= 1e-6 * np.abs(loss[1:]))
    assert model.user_factors.min() >= 0 and model.item_factors.min() >= 0
    assert model.global_mean == 0.0 and model.user_bias is None
    biased = mfrec.Model("nmf", factors=3, epochs=5, biases=True, seed=0).fit(data.ratings)
    assert biased.global_mean == pytest.approx(data.ratings.rating.mean(dtype=np.float64))
    assert biased.user_bias.shape == (60,)


def test_planted_non_negative_matrix_is_recovered(rng):
    m, n, k = 120, 100, 3
    P, Q = rng.random((m, k)), rng.random((n, k))
    u, i = np.nonzero(rng.random((m, n)) < 0.4)
    full = P @ Q.T
    observed = rng.random(len(u)) < 0.8
    train = mfrec.Ratings(u[observed], i[observed], full[u, i][observed])
    test = mfrec.Ratings(u[~observed], i[~observed], full[u, i][~observed])
    model = mfrec.Model("nmf", factors=k, regularization=0.0, epochs=400, seed=1).fit(train)
    assert model.score(test)["rmse"] < 0.02 * full.std()


def test_ml100k_folds(ml100k):
    rmse = []
    for fold in ("u1", "u2", "u3", "u4", "u5"):
        train, test = ml100k.fold(fold)
        rmse.append(mfrec.Model("nmf", seed=0).fit(train).score(test)["rmse"])
    assert np.mean(rmse) <= 0.96  # Surprise's NMF: 0.963 (README), 0.9689 measured


@pytest.mark.parametrize("params, match", [
    ({"regularization": -0.1}, "regularization"),
    ({"bias_regularization": np.nan}, "bias_regularization"), ({"biases": 1}, "biases"),
    ({"init_scale": 0.0}, "init_scale"),
])
def test_bad_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        mfrec.Model("nmf", **params)


def test_core_rejects_bad_input(rng):
    _, by_user, by_item, core = problem(rng)
    kw = dict(regularization=REG, bias_regularization=BREG, biases=False)
    negative = core.user_factors.copy()
    negative[3, 1] = -0.5
    core.user_factors = negative
    with pytest.raises(ValueError, match="non-negative"):
        _core.nmf_epoch(core, by_user, by_item, **kw)
    core.user_factors = np.abs(negative)
    with pytest.raises(ValueError, match="transposed"):
        _core.nmf_epoch(core, by_user, (by_item[0], by_item[1], by_item[2] * 2), **kw)
    with pytest.raises(ValueError, match="needs user_bias"):
        _core.nmf_epoch(core, by_user, by_item, regularization=REG, biases=True)
    with pytest.raises(ValueError, match="regularization"):
        _core.nmf_epoch(core, by_user, by_item, regularization=-1.0, biases=False)
    with pytest.raises(ValueError, match="by_user: not a valid CSR"):
        _core.nmf_epoch(core, (by_user[0][::-1].copy(), by_user[1], by_user[2]), by_item, **kw)
    with pytest.raises(TypeError, match="model"):
        _core.nmf_epoch(object(), by_user, by_item, **kw)
    data = mfrec.make_low_rank(n_users=10, n_items=8, rank=2, density=0.6, seed=0)
    rating = data.ratings.rating.copy()
    rating[0] = np.inf
    with pytest.raises(ValueError, match="finite"):
        mfrec.Model("nmf", factors=2).fit(data.ratings.user, data.ratings.item, rating)
