"""predict_sse: the training RMSE user by user over the CSR (SGD's and NMF's
history), against NumPy and against the pairs predicted in input order;
pairs_sse, the same sum over the triplets."""
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


@pytest.mark.parametrize("k", [3, 37])
def test_pairs_sse_is_the_same_sum_over_triplets(k):
    """pairs_sse (a fit holding no CSR: SGD without negatives) over the
    triplets in their order: the C predictions' squared errors, summed in
    an order no thread count changes (blocks of 65,536 pairs); an index out
    of range is refused, not read."""
    core, (users, items, ratings), by_user = random_case(k, True, nnz=60_000, n_items=900,
                                                           seed=k)
    sse = _core.pairs_sse(core, users, items, ratings)
    err = core._predict(users, items).astype(np.float64) - ratings
    assert sse == pytest.approx(float(np.sum(err * err)), rel=1e-12)
    assert sse == pytest.approx(_core.predict_sse(core, by_user), rel=1e-12)
    assert [_core.pairs_sse(core, users, items, ratings, n_threads=t) for t in (2, 3)] == [sse] * 2
    bad = items.copy()
    bad[-1] = 900
    with pytest.raises(IndexError):
        _core.pairs_sse(core, users, bad, ratings)
    with pytest.raises(ValueError, match="same length"):
        _core.pairs_sse(core, users, items, ratings[:-1])


def test_non_finite_predictions_give_inf_rmse():
    core, data, by_user = random_case(5, True)
    P, Q = core.user_factors.copy(), core.item_factors.copy()
    P[3], Q[:, 0] = 1e30, 1e30  # finite factors whose products overflow float32
    core.user_factors, core.item_factors = P, Q
    train = TrainData(*data, 700, 90)
    assert _core.predict_sse(core, by_user) == math.inf
    assert SGD({}).train_rmse(core, train, 1) == math.inf
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


@pytest.mark.parametrize("algorithm, params", [("sgd", {}), ("sgd", {"biases": False}),
                                               ("nmf", {}), ("nmf", {"biases": True})])
def test_history_is_unchanged(algorithm, params, monkeypatch):
    """The history's train_rmse as the pairs in input order gave it: the
    same float32 predictions, summed in another order (1e-12 covers it)."""
    new = _history(algorithm, monkeypatch, False, **params)
    with monkeypatch.context() as m:
        old = _history(algorithm, m, True, **params)
    np.testing.assert_allclose(new, old, rtol=1e-12)
    assert new[-1] < new[0]


def test_history_with_side_features_is_unchanged(monkeypatch):
    """With features the core model holds the effective rows when scored."""
    new = _history("sgd", monkeypatch, False, features=True)
    with monkeypatch.context() as m:
        old = _history("sgd", m, True, features=True)
    np.testing.assert_allclose(new, old, rtol=1e-12)
