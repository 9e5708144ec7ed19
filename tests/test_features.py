"""Side features (genres) in the SGD model: the kernel against finite
differences and NumPy, the Model's id handling, cold-start items, files,
and bad input."""
import numpy as np
import pytest

import mfrec
from mfrec import _core


# ---- the kernel --------------------------------------------------------------

def _csr(dense):
    rows, cols = np.nonzero(dense)
    indptr = np.r_[0, np.cumsum(np.bincount(rows, minlength=dense.shape[0]))].astype(np.int64)
    return indptr, cols.astype(np.int32), dense[rows, cols].astype(np.float32)


def _setup(rng, biases):
    """A small model with user and item features and random parameters."""
    k, nu, ni, nfu, nfi = 4, 3, 5, 2, 3
    X = np.array([[0.5, 0.0], [0.7, -0.4], [0.0, 0.0]])           # users x user features
    Y = np.array([[1, 0, 0], [0.3, 0.6, 0], [0, 0.2, 0.9], [0, 0, 0], [1, 1, 0.5]])
    theta = {
        "P": rng.normal(0, 0.5, (nu, k)), "Q": rng.normal(0, 0.5, (ni, k)),
        "Z": rng.normal(0, 0.5, (nfu, k)), "W": rng.normal(0, 0.5, (nfi, k)),
    }
    if biases:
        theta.update(bu=rng.normal(0, 0.3, nu), bi=rng.normal(0, 0.3, ni),
                     cu=rng.normal(0, 0.3, nfu), ci=rng.normal(0, 0.3, nfi))
    theta = {k_: v.astype(np.float32) for k_, v in theta.items()}
    return X, Y, theta


def _loss(theta, X, Y, u, i, r, mu, lam):
    """The per-rating objective the SGD step descends (float64)."""
    pe = theta["P"][u] + X[u] @ theta["Z"]
    qe = theta["Q"][i] + Y[i] @ theta["W"]
    pred = pe @ qe
    reg = (theta["P"][u] ** 2).sum() + (theta["Q"][i] ** 2).sum()
    reg += sum((theta["Z"][a] ** 2).sum() for a in np.flatnonzero(X[u]))
    reg += sum((theta["W"][g] ** 2).sum() for g in np.flatnonzero(Y[i]))
    if "bu" in theta:
        pred += mu + theta["bu"][u] + theta["bi"][i] + X[u] @ theta["cu"] + Y[i] @ theta["ci"]
        reg += theta["bu"][u] ** 2 + theta["bi"][i] ** 2
        reg += sum(theta["cu"][a] ** 2 for a in np.flatnonzero(X[u]))
        reg += sum(theta["ci"][g] ** 2 for g in np.flatnonzero(Y[i]))
    return (r - pred) ** 2 + lam * reg


@pytest.mark.parametrize("biases", [True, False])
@pytest.mark.parametrize("u,i", [(1, 2), (0, 4), (2, 3)])
def test_feature_step_is_the_gradient_step(rng, biases, u, i):
    """One rating, one epoch: every parameter moves by -lr/2 times the
    gradient of the per-rating objective, found by finite differences."""
    X, Y, theta = _setup(rng, biases)
    mu, lam, lr, r = 3.5 if biases else 0.0, 0.05, 0.01, 4.0
    free = _core.Model()
    free.user_factors, free.item_factors = theta["P"].copy(), theta["Q"].copy()
    if biases:
        free.user_bias, free.item_bias = theta["bu"].copy(), theta["bi"].copy()
    free.global_mean = mu
    Z, W = theta["Z"].copy(), theta["W"].copy()
    cu = theta["cu"].copy() if biases else None
    ci = theta["ci"].copy() if biases else None
    _core.sgd_epoch_features(
        free, np.array([u], np.int32), np.array([i], np.int32), np.array([r], np.float32),
        user_features=(*_csr(X), Z, cu), item_features=(*_csr(Y), W, ci),
        learning_rate=lr, regularization=lam, biases=biases, seed=0, epoch=0)
    after = {"P": free.user_factors, "Q": free.item_factors, "Z": Z, "W": W}
    if biases:
        after.update(bu=free.user_bias, bi=free.item_bias, cu=cu, ci=ci)

    base = {k: v.astype(np.float64) for k, v in theta.items()}
    h = 1e-6
    for name, value in base.items():
        grad = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            plus = {**base, name: value.copy()}
            minus = {**base, name: value.copy()}
            plus[name][idx] += h
            minus[name][idx] -= h
            grad[idx] = (_loss(plus, X, Y, u, i, r, mu, lam)
                         - _loss(minus, X, Y, u, i, r, mu, lam)) / (2 * h)
        step = (after[name].astype(np.float64) - value) / lr
        np.testing.assert_allclose(step, -0.5 * grad, rtol=1e-3, atol=2e-4, err_msg=name)
    assert np.any(after["W"] != theta["W"]) == bool(np.any(Y[i]))


def test_features_apply_matches_numpy(rng):
    n, k, nf = 50, 8, 6
    Y = rng.random((n, nf)) * (rng.random((n, nf)) < 0.3)
    V = rng.normal(size=(nf, k)).astype(np.float32)
    c = rng.normal(size=nf).astype(np.float32)
    free = rng.normal(size=(n, k)).astype(np.float32)
    free_bias = rng.normal(size=n).astype(np.float32)
    eff, eff_bias = np.empty_like(free), np.empty_like(free_bias)
    _core.features_apply((*_csr(Y), V, c), free, free_bias, eff, eff_bias)
    Y32 = Y.astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(eff, free + Y32 @ V, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(eff_bias, free_bias + Y32 @ c, rtol=1e-5, atol=1e-5)


def test_features_apply_rejects_bad_indices(rng):
    indptr, indices, weights = _csr(np.eye(3))
    indices[1] = 7
    free = np.zeros((3, 2), np.float32)
    with pytest.raises(IndexError):
        _core.features_apply((indptr, indices, weights, np.zeros((3, 2), np.float32), None),
                             free, None, np.empty_like(free), None)
    with pytest.raises(ValueError, match="indptr"):
        _core.features_apply((indptr[:-1], indices, weights, np.zeros((3, 2), np.float32),
                              None), free, None, np.empty_like(free), None)


# ---- the Model ---------------------------------------------------------------

def _genre_kw(data):
    return {"item_features": data.genres, "item_feature_ids": data.item_ids}


def test_empty_features_leave_the_plain_model(ml100k):
    """Features that add nothing: the same fit as without features."""
    train, test = ml100k.fold("u1")
    params = dict(factors=20, epochs=5, seed=1)
    plain = mfrec.Model("sgd", **params).fit(train)
    ids = np.unique(train.item)
    zero = mfrec.Model("sgd", **params).fit(train, item_features=np.zeros((len(ids), 2)),
                                             item_feature_ids=ids)
    np.testing.assert_allclose(zero.item_factors, plain.item_factors, atol=1e-5)
    np.testing.assert_allclose(zero.predict(test.user, test.item),
                               plain.predict(test.user, test.item), atol=1e-4)


def test_effective_factors_and_cold_items(ml100k):
    """Item rows are free + mean of genre vectors; an item never rated is
    known from its genres alone, and predict uses them."""
    train, _ = ml100k.fold("u1")
    model = mfrec.Model("sgd", factors=20, epochs=5, seed=1).fit(train, **_genre_kw(ml100k))
    assert np.array_equal(model.item_ids, ml100k.item_ids)  # every catalogue movie
    cold = np.setdiff1d(ml100k.item_ids, train.item)
    assert len(cold) > 0
    j = np.searchsorted(model.item_ids, cold)
    g = ml100k.genres[np.searchsorted(ml100k.item_ids, cold)].astype(np.float64)
    y = g / g.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model.item_factors[j], y @ model.item_feature_factors, atol=1e-5)
    np.testing.assert_allclose(model.item_bias[j], y @ model.item_feature_bias, atol=1e-5)
    u = np.full(len(cold), train.user[0])
    ui = np.searchsorted(model.user_ids, train.user[0])
    expect = (model.global_mean + model.user_bias[ui] + model.item_bias[j]
              + model.item_factors[j] @ model.user_factors[ui])
    np.testing.assert_allclose(model.predict(u, cold, clip=False), expect, rtol=1e-5)


def test_sum_and_user_features(ml100k):
    """feature_combine="sum" and user features (here: age decade, one-hot)."""
    train, test = ml100k.fold("u2")
    users = np.unique(ml100k.ratings.user)
    decade = np.eye(8)[users % 8]  # a stand-in user attribute
    model = mfrec.Model("sgd", factors=20, epochs=5, seed=1, feature_combine="sum").fit(
        train, user_features=decade, user_feature_ids=users, **_genre_kw(ml100k))
    assert model.user_feature_factors.shape == (8, 20)
    j = np.searchsorted(model.item_ids, np.setdiff1d(ml100k.item_ids, train.item))
    g = ml100k.genres[np.searchsorted(ml100k.item_ids, model.item_ids[j])].astype(np.float64)
    np.testing.assert_allclose(model.item_factors[j], g @ model.item_feature_factors, atol=1e-5)
    assert model.score(test)["rmse"] < 1.0


@pytest.mark.parametrize("algorithm", ["sgd", "als"])
def test_cold_start_items_beat_the_baseline(ml100k, algorithm):
    """Hide every rating of 10% of the movies: genres predict them better
    than the baseline (global mean + user bias) a model without them has."""
    ratings = ml100k.ratings
    movies = np.unique(ratings.item)
    hidden = np.random.default_rng(0).choice(movies, len(movies) // 10, replace=False)
    cold = np.isin(ratings.item, hidden)
    train, test = ratings[~cold], ratings[cold]
    base = mfrec.Model(algorithm, seed=0).fit(train).score(test)["rmse"]
    genres = mfrec.Model(algorithm, seed=0).fit(train, **_genre_kw(ml100k)).score(test)["rmse"]
    assert genres < base - 0.005, (genres, base)


def test_save_load_keeps_features(ml100k, tmp_path):
    train, test = ml100k.fold("u3")
    model = mfrec.Model("sgd", factors=10, epochs=3, seed=2).fit(train, **_genre_kw(ml100k))
    model.save(tmp_path / "m.npz")
    back = mfrec.Model.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(back.item_feature_factors, model.item_feature_factors)
    np.testing.assert_array_equal(back.item_feature_bias, model.item_feature_bias)
    np.testing.assert_array_equal(back.predict(test.user, test.item),
                                  model.predict(test.user, test.item))


def test_early_stopping_restores_features_with_factors(ml100k):
    """The kept iteration's feature vectors go with its item factors."""
    train, test = ml100k.fold("u4")
    model = mfrec.Model("sgd", factors=20, epochs=40, learning_rate=0.03, regularization=0.0,
                        seed=3).fit(train, validation=test, early_stopping=2,
                                    **_genre_kw(ml100k))
    assert model.best_iteration_ < len(model.history)
    j = np.searchsorted(model.item_ids, np.setdiff1d(ml100k.item_ids, train.item))
    g = ml100k.genres[np.searchsorted(ml100k.item_ids, model.item_ids[j])].astype(np.float64)
    y = g / g.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model.item_factors[j], y @ model.item_feature_factors, atol=1e-5)


# ---- bad input ---------------------------------------------------------------

@pytest.mark.parametrize("features,ids,error,match", [
    (np.ones((5, 3)), np.arange(4), ValueError, "5 rows but item_feature_ids has 4"),
    (np.ones(5), np.arange(5), ValueError, "2-D"),
    (np.ones((5, 0)), np.arange(5), ValueError, "no columns"),
    (np.ones((5, 3)), None, ValueError, "needs item_feature_ids"),
    (None, np.arange(5), ValueError, "given without item_features"),
    (np.ones((3, 2)), np.array([1, 2, 1]), ValueError, "lists id 1 twice"),
    (np.array([[1.0, np.nan]]), np.array([1]), ValueError, "finite"),
    (np.ones((2, 2)), np.array([1.5, 2.5]), TypeError, "integer ids"),
])
def test_bad_features(features, ids, error, match):
    r = mfrec.Ratings(np.array([1, 1, 2]), np.array([1, 2, 1]), np.array([3.0, 4.0, 5.0]))
    with pytest.raises(error, match=match):
        mfrec.Model("sgd", factors=1, epochs=1).fit(r, item_features=features,
                                                    item_feature_ids=ids)


def test_features_need_an_algorithm_that_uses_them(ml100k):
    train, _ = ml100k.fold("u1")
    with pytest.raises(ValueError, match="'popular' does not use side features"):
        mfrec.Model("popular").fit(train, **_genre_kw(ml100k))


def test_bad_feature_combine():
    with pytest.raises(ValueError, match="feature_combine"):
        mfrec.Model("sgd", feature_combine="max")


def test_sparse_features_equal_dense(ml100k):
    sparse = pytest.importorskip("scipy.sparse")
    train, test = ml100k.fold("u5")
    dense = mfrec.Model("sgd", factors=10, epochs=3, seed=4).fit(train, **_genre_kw(ml100k))
    sp = mfrec.Model("sgd", factors=10, epochs=3, seed=4).fit(
        train, item_features=sparse.csr_matrix(ml100k.genres.astype(np.float32)),
        item_feature_ids=ml100k.item_ids)
    np.testing.assert_array_equal(sp.predict(test.user, test.item),
                                  dense.predict(test.user, test.item))


# ---- ALS ---------------------------------------------------------------------

def _als_objective(model, train, side_rows):
    """The ALS objective of a fitted model with item features, in float64:
    squared errors of the effective model plus every ridge term."""
    s, p = model._solver, model.get_params()
    lam = p["regularization"]
    pred = model.predict(train.user, train.item, clip=False).astype(np.float64)
    total = float(((train.rating - pred) ** 2).sum())
    uidx = np.searchsorted(model.user_ids, train.user)
    iidx = np.searchsorted(model.item_ids, train.item)
    for free, bias, index in ((s.free.user_factors, s.free.user_bias, uidx),
                              (s.free.item_factors, s.free.item_bias, iidx)):
        count = np.bincount(index, minlength=len(free))
        scale = count if p["scale_regularization"] else (count > 0)
        squares = (free.astype(np.float64) ** 2).sum(axis=1)
        if bias is not None:
            squares += bias.astype(np.float64) ** 2
        total += lam * float(scale @ squares)
    occurrences = (side_rows[iidx] != 0).sum(axis=0)
    scale = occurrences if p["scale_regularization"] else (occurrences > 0)
    squares = (model.item_feature_factors.astype(np.float64) ** 2).sum(axis=1)
    if model.item_feature_bias is not None:
        squares += model.item_feature_bias.astype(np.float64) ** 2
    return total + lam * float(scale @ squares)


@pytest.mark.parametrize("params", [
    dict(biases=True, scale_regularization=True),
    dict(biases=False, scale_regularization=False, regularization=5.0, feature_combine="sum"),
])
def test_als_features_descend_the_objective(ml100k, params):
    """Each block is solved exactly, so the objective never rises, and the
    loss reported is the objective of the fitted arrays."""
    train, _ = ml100k.fold("u2")
    model = mfrec.Model("als", factors=10, iterations=6, seed=0, **params).fit(
        train, **_genre_kw(ml100k))
    losses = [row["train_loss"] for row in model.history]
    assert all(b <= a * (1 + 1e-6) for a, b in zip(losses, losses[1:])), losses
    g = ml100k.genres[np.searchsorted(ml100k.item_ids, model.item_ids)].astype(np.float64)
    rows = g if params.get("feature_combine") == "sum" else g / np.maximum(g.sum(1), 1)[:, None]
    assert _als_objective(model, train, rows) == pytest.approx(losses[-1], rel=1e-4)


def test_als_feature_step_solves_its_normal_equations(ml100k):
    """With one feature shared by every item, the iteration's last block is
    that feature's (vector, bias): its gradient is zero at the fit."""
    train, _ = ml100k.fold("u3")
    ids = np.unique(train.item)
    model = mfrec.Model("als", factors=8, iterations=3, seed=0).fit(
        train, item_features=np.ones((len(ids), 1)), item_feature_ids=ids)
    pred = model.predict(train.user, train.item, clip=False).astype(np.float64)
    error = train.rating - pred
    P = model.user_factors[np.searchsorted(model.user_ids, train.user)].astype(np.float64)
    lam = model.regularization * len(train)  # scaled by the ratings it takes part in
    np.testing.assert_allclose(error @ P, lam * model.item_feature_factors[0], rtol=1e-3)
    assert error.sum() == pytest.approx(lam * model.item_feature_bias[0], rel=1e-3)


def test_als_empty_features_leave_the_plain_model(ml100k):
    train, _ = ml100k.fold("u1")
    ids = np.unique(train.item)
    plain = mfrec.Model("als", factors=10, iterations=3, seed=1).fit(train)
    zero = mfrec.Model("als", factors=10, iterations=3, seed=1).fit(
        train, item_features=np.zeros((len(ids), 2)), item_feature_ids=ids)
    np.testing.assert_allclose(zero.item_factors, plain.item_factors, atol=1e-5)
    np.testing.assert_allclose(zero.user_bias, plain.user_bias, atol=1e-5)


def test_wals_has_no_features(ml100k):
    train, _ = ml100k.fold("u1")
    with pytest.raises(ValueError, match="'wals' does not use side features"):
        mfrec.Model("wals").fit(train, **_genre_kw(ml100k))
