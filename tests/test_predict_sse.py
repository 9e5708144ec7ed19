"""predict_sse: the training RMSE user by user over the CSR (NMF's history,
and SGD's with negatives), against NumPy and against the pairs predicted in
input order; SGD's own train_rmse, from the errors its epochs met."""
import math

import numpy as np
import pytest

import mfrec
from mfrec import _core
from mfrec.algorithms import Algorithm, TrainData
from mfrec.algorithms.nmf import NMF
from mfrec.algorithms.sgd import SGD


def random_case(k, biases, n_users=700, n_items=90, nnz=6000, seed=0):
    """A random model (several blocks of 256 users) and ratings as
    (users, items, ratings) and their CSR by user."""
    rng = np.random.default_rng(seed)
    core = _core.Model()
    core.user_factors = rng.normal(0, 0.5, (n_users, k)).astype(np.float32)
    core.item_factors = rng.normal(0, 0.5, (n_items, k)).astype(np.float32)
    if biases:
        core.user_bias = rng.normal(0, 0.3, n_users).astype(np.float32)
        core.item_bias = rng.normal(0, 0.3, n_items).astype(np.float32)
    core.global_mean = 3.3 if biases else 0.0
    pairs = rng.choice(n_users * n_items, nnz, replace=False)
    users, items = (pairs // n_items).astype(np.int32), (pairs % n_items).astype(np.int32)
    ratings = rng.integers(1, 6, nnz).astype(np.float32)
    return core, (users, items, ratings), _core.build_csr(users, items, ratings, n_users, n_items)


def numpy_sse(core, users, items, ratings):
    """Predictions in float64 rounded to float32, squared errors summed in double."""
    pred = core.global_mean + np.einsum("nk,nk->n", core.user_factors[users].astype(np.float64),
                                        core.item_factors[items].astype(np.float64))
    if core.user_bias is not None:
        pred += core.user_bias[users].astype(np.float64) + core.item_bias[items]
    err = pred.astype(np.float32).astype(np.float64) - ratings
    return float(np.sum(err * err))


@pytest.mark.parametrize("biases", [False, True])
@pytest.mark.parametrize("k", [3, 16, 37])
def test_sse_matches_numpy_and_predict(k, biases):
    core, (users, items, ratings), by_user = random_case(k, biases, seed=k)
    sse = _core.predict_sse(core, by_user)
    # float32 dot products in C against float64 ones: a few float32 ulps per prediction
    assert sse == pytest.approx(numpy_sse(core, users, items, ratings), rel=1e-5)
    # the C predictions themselves: only the order of the double sum differs
    err = core._predict(users, items).astype(np.float64) - ratings
    assert sse == pytest.approx(float(np.sum(err * err)), rel=1e-12)
    old = _core.rmse_mae(core._predict(users, items), ratings)[0]
    assert math.sqrt(sse / len(ratings)) == pytest.approx(old, rel=1e-12)
    same = [_core.predict_sse(core, by_user, n_threads=t) for t in (1, 2, 3)]
    assert same == [sse] * 3  # bit for bit, whatever the threads


@pytest.mark.parametrize("k", [5, 16, 37, 100])
def test_sse_adds_the_predictions_of_predict_bit_for_bit(k):
    """Whether a user's entries go four at a time or one by one, each
    prediction is the float32 that predict returns: the squared errors
    summed in the same order (each block of 256 users in entry order, then
    the blocks) give the same double exactly."""
    core, _, by_user = random_case(k, True, n_users=600, n_items=70, nnz=3000, seed=k)
    indptr, indices, values = by_user
    users = np.repeat(np.arange(600, dtype=np.int32), np.diff(indptr))
    pred = core._predict(users, indices).astype(np.float64)
    blocks = []
    for lo in range(0, 600, 256):
        s = 0.0
        for e in range(indptr[lo], indptr[min(lo + 256, 600)]):
            err = pred[e] - float(values[e])
            s += err * err
        blocks.append(s)
    want = 0.0
    for s in blocks:
        want += s
    assert _core.predict_sse(core, by_user) == want


def test_non_finite_predictions_give_inf_rmse():
    core, data, by_user = random_case(5, True)
    P, Q = core.user_factors.copy(), core.item_factors.copy()
    P[3], Q[:, 0] = 1e30, 1e30  # finite factors whose products overflow float32
    core.user_factors, core.item_factors = P, Q
    train = TrainData(*data, 700, 90)
    assert _core.predict_sse(core, by_user) == math.inf
    assert SGD({"negatives": 1}).train_rmse(core, train, 1) == math.inf
    P[4, 0] = np.nan
    core.user_factors = P
    assert math.isnan(_core.predict_sse(core, by_user, n_threads=2))
    assert NMF({}).train_rmse(core, train, 1) == math.inf


def test_bad_input_is_named():
    core, _, (indptr, indices, values) = random_case(4, False)
    with pytest.raises(TypeError, match="model: expected an mfrec._core.Model"):
        _core.predict_sse(object(), (indptr, indices, values))
    with pytest.raises(TypeError, match="by_user: expected a tuple"):
        _core.predict_sse(core, [indptr, indices, values])
    with pytest.raises(ValueError, match="by_user: 699 rows for a model of 700 users"):
        _core.predict_sse(core, (indptr[:-1], indices[:indptr[-2]], values[:indptr[-2]]))
    bad = indices.copy()
    bad[-1] = 90  # n_items
    with pytest.raises(ValueError, match="by_user: not a valid CSR matrix with 90 columns"):
        _core.predict_sse(core, (indptr, bad, values))
    with pytest.raises(ValueError, match="indices and values must have the same length"):
        _core.predict_sse(core, (indptr, indices, values[:-1]))
    with pytest.raises(ValueError, match="no factors yet"):
        _core.predict_sse(_core.Model(), (indptr, indices, values))


def _history(algorithm, monkeypatch, by_pairs, **params):
    rng = np.random.default_rng(3)
    n = 4000
    pairs = rng.choice(300 * 120, n, replace=False)
    users, items = pairs // 120, pairs % 120
    ratings = rng.integers(1, 6, n).astype(np.float32)
    cls = {"sgd": SGD, "nmf": NMF}[algorithm]
    if by_pairs:  # the default hook: the pairs predicted afresh in input order
        monkeypatch.setattr(cls, "train_rmse", Algorithm.train_rmse)
    features = {"item_features": np.eye(4)[np.arange(120) % 4],
                "item_feature_ids": np.arange(120)} if params.pop("features", False) else {}
    model = mfrec.Model(algorithm, seed=2, factors=8, epochs=4, n_threads=2, **params)
    model.fit(users, items, ratings, **features)
    return [row["train_rmse"] for row in model.history]


@pytest.mark.parametrize("algorithm, params", [
    ("sgd", {"negatives": 1}), ("sgd", {"negatives": 1, "biases": False}),
    ("nmf", {}), ("nmf", {"biases": True})])
def test_history_is_unchanged(algorithm, params, monkeypatch):
    """The history's train_rmse as the pairs in input order gave it: the
    same float32 predictions, summed in another order (1e-12 covers it)."""
    new = _history(algorithm, monkeypatch, False, **params)
    with monkeypatch.context() as m:
        old = _history(algorithm, m, True, **params)
    np.testing.assert_allclose(new, old, rtol=1e-12)
    if "negatives" not in params:  # drawn pairs pull the predictions towards 0
        assert new[-1] < new[0]


def test_history_with_side_features_is_unchanged(monkeypatch):
    """With features the core model holds the effective rows when scored."""
    new = _history("sgd", monkeypatch, False, features=True, negatives=1)
    with monkeypatch.context() as m:
        old = _history("sgd", m, True, features=True, negatives=1)
    np.testing.assert_allclose(new, old, rtol=1e-12)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_sgd_train_rmse_is_the_epochs_own_errors(n_threads):
    """Without negatives SGD's train_rmse is the RMSE of the errors its epoch
    met, each before its rating's step: the loss of the same epoch run on
    the factors the one before left (a model fitted one epoch shorter)."""
    rng = np.random.default_rng(4)
    pairs = rng.choice(300 * 120, 4000, replace=False)
    users, items = pairs // 120, pairs % 120  # every index present: ids are indices
    ratings = rng.integers(1, 6, len(pairs)).astype(np.float32)
    params = dict(seed=2, factors=8, n_threads=n_threads)
    three = mfrec.Model("sgd", epochs=3, **params).fit(users, items, ratings)
    two = mfrec.Model("sgd", epochs=2, **params).fit(users, items, ratings)
    core = _core.Model()
    core.user_factors, core.item_factors = two.user_factors.copy(), two.item_factors.copy()
    core.user_bias, core.item_bias = two.user_bias.copy(), two.item_bias.copy()
    core.global_mean = two.global_mean
    loss = _core.sgd_epoch(core, users.astype(np.int32), items.astype(np.int32), ratings,
                           learning_rate=0.005, regularization=0.02, biases=True,
                           seed=three.seed_, epoch=2, n_threads=n_threads)
    assert three.history[2]["train_rmse"] == math.sqrt(loss)
    np.testing.assert_array_equal(core.user_factors, three.user_factors)
    after = math.sqrt(np.mean((three.predict(users, items, clip=False) - ratings) ** 2))
    assert three.history[2]["train_rmse"] == pytest.approx(after, rel=0.05)
