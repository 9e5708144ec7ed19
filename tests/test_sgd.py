"""SGD: the C update against its formula and finite differences, then
accuracy on planted low-rank data and on MovieLens 100K."""
import itertools

import numpy as np
import pytest

import mfrec
from mfrec import _core

# The biased, regularized setting the folds test documents (README quotes it).
FOLD_PARAMS = dict(factors=100, learning_rate=0.01, regularization=0.1, biases=True,
                   init="normal", init_scale=0.01, epochs=60)

# The Level-1 document: k=100, no bias, no regularization, rand * 0.01 init.
# Its step is 0.01 * 2 e q; ours is lr * e q, hence lr = 0.02.
LEVEL1_PARAMS = dict(factors=100, learning_rate=0.02, regularization=0.0, biases=False,
                     init="uniform", init_scale=0.01, epochs=60)
LEVEL1_DOCUMENT_BEST = 0.9388


def core_model(P, Q, user_bias=None, item_bias=None, global_mean=0.0):
    core = _core.Model()
    core.user_factors = np.array(P, np.float32)
    core.item_factors = np.array(Q, np.float32)
    core.user_bias = None if user_bias is None else np.array(user_bias, np.float32)
    core.item_bias = None if item_bias is None else np.array(item_bias, np.float32)
    core.global_mean = global_mean
    return core


def sgd_epoch(core, users, items, ratings, lr, reg, biases, n_threads=1, seed=0, epoch=0):
    return _core.sgd_epoch(core, np.asarray(users, np.int32), np.asarray(items, np.int32),
                           np.asarray(ratings, np.float32), learning_rate=lr,
                           regularization=reg, biases=biases, seed=seed, epoch=epoch,
                           n_threads=n_threads)


def reference_step(p, q, bu, bi, mu, r, lr, reg, biases):
    """One update in float64, written plainly (the formula in csrc/core/sgd.c)."""
    pred = p @ q + (mu + bu + bi if biases else 0.0)
    e = r - pred
    p2 = p + lr * (e * q - reg * p)
    q2 = q + lr * (e * p - reg * q)
    if biases:
        bu, bi = bu + lr * (e - reg * bu), bi + lr * (e - reg * bi)
    return p2, q2, bu, bi, e


def loss_one(theta, k, mu, r, reg, biases):
    """Per-rating loss (r - r_hat)^2 + reg (|p|^2 + |q|^2 + bu^2 + bi^2)."""
    p, q, bu, bi = theta[:k], theta[k:2 * k], theta[2 * k], theta[2 * k + 1]
    pred = p @ q + (mu + bu + bi if biases else 0.0)
    penalty = p @ p + q @ q + (bu * bu + bi * bi if biases else 0.0)
    return (r - pred) ** 2 + reg * penalty


CASES = {"plain": dict(reg=0.0, biases=False), "biased_l2": dict(reg=0.05, biases=True)}


def one_rating_case(rng, k=16):
    p = rng.normal(0, 0.3, k).astype(np.float32)
    q = rng.normal(0, 0.3, k).astype(np.float32)
    bu, bi = np.float32(0.2), np.float32(-0.3)
    return p, q, bu, bi, 3.5, 4.0


@pytest.mark.parametrize("k", [16, 33, 100])  # the step's product: short rows, and in sums of 8
@pytest.mark.parametrize("case", CASES)
def test_one_step_equals_analytic_update(case, k, rng):
    reg, biases = CASES[case]["reg"], CASES[case]["biases"]
    lr = 0.05
    p, q, bu, bi, mu, r = one_rating_case(rng, k)
    core = core_model([p], [q], [bu] if biases else None, [bi] if biases else None,
                      mu if biases else 0.0)
    loss = sgd_epoch(core, [0], [0], [r], lr, reg, biases)
    p2, q2, bu2, bi2, e = reference_step(p.astype(float), q.astype(float), float(bu),
                                         float(bi), mu, r, lr, reg, biases)
    np.testing.assert_allclose(core.user_factors[0], p2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(core.item_factors[0], q2, rtol=1e-5, atol=1e-6)
    if biases:
        np.testing.assert_allclose([core.user_bias[0], core.item_bias[0]], [bu2, bi2],
                                   rtol=1e-5, atol=1e-6)
    assert loss == pytest.approx(e * e, rel=1e-5)  # squared error before the update


@pytest.mark.parametrize("case", CASES)
def test_step_follows_finite_difference_gradient(case, rng):
    """The float32 C step equals -lr/2 times the gradient of the per-rating
    loss (the factor 2 is folded into lr), by central differences in float64."""
    reg, biases = CASES[case]["reg"], CASES[case]["biases"]
    lr, k = 0.02, 16
    p, q, bu, bi, mu, r = one_rating_case(rng, k)
    theta = np.concatenate([p, q, [bu, bi]]).astype(np.float64)
    h = 1e-6
    grad = np.empty_like(theta)
    for j in range(len(theta)):
        up, down = theta.copy(), theta.copy()
        up[j] += h
        down[j] -= h
        grad[j] = (loss_one(up, k, mu, r, reg, biases)
                   - loss_one(down, k, mu, r, reg, biases)) / (2 * h)
    if not biases:
        grad[2 * k:] = 0.0
    core = core_model([p], [q], [bu] if biases else None, [bi] if biases else None,
                      mu if biases else 0.0)
    sgd_epoch(core, [0], [0], [r], lr, reg, biases)
    after = np.concatenate([core.user_factors[0], core.item_factors[0],
                            [core.user_bias[0], core.item_bias[0]] if biases else [bu, bi]])
    step = after.astype(np.float64) - theta
    expected = -lr / 2 * grad
    rel = np.linalg.norm(step - expected) / np.linalg.norm(expected)
    assert rel < 1e-3
    assert step @ grad < 0  # a descent direction


@pytest.mark.parametrize("n_threads", [1, 2])
def test_epoch_of_independent_ratings_matches_numpy(n_threads, rng):
    """Ratings that share no user and no item: the order cannot matter, so a
    whole epoch equals one reference step per rating, with any thread count."""
    n, k, lr, reg = 200, 8, 0.03, 0.02
    P = rng.normal(0, 0.3, (n, k)).astype(np.float32)
    Q = rng.normal(0, 0.3, (n, k)).astype(np.float32)
    bu = rng.normal(0, 0.1, n).astype(np.float32)
    bi = rng.normal(0, 0.1, n).astype(np.float32)
    users, items = np.arange(n), rng.permutation(n)
    r = rng.integers(1, 6, n).astype(np.float32)
    core = core_model(P, Q, bu, bi, 3.0)
    loss = sgd_epoch(core, users, items, r, lr, reg, True, n_threads=n_threads)
    P2, Q2, bu2, bi2 = (a.astype(np.float64) for a in (P, Q, bu, bi))
    errors = []
    for u, i, rating in zip(users, items, r):
        P2[u], Q2[i], bu2[u], bi2[i], e = reference_step(P2[u], Q2[i], bu2[u], bi2[i], 3.0,
                                                         float(rating), lr, reg, True)
        errors.append(e)
    np.testing.assert_allclose(core.user_factors, P2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(core.item_factors, Q2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(core.user_bias, bu2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(core.item_bias, bi2, rtol=1e-5, atol=1e-6)
    assert loss == pytest.approx(np.mean(np.square(errors)), rel=1e-5)


def test_epoch_of_a_million_independent_ratings_visits_each_once(rng):
    """From 2^20 ratings the epoch's order is shuffled by buckets (each in
    cache) rather than by one Fisher-Yates pass, and these 2^21 factor rows
    (32 MiB) are stepped by 17 x 17 blocks on one thread: still every rating
    exactly once, so independent ratings take one reference step each."""
    n, k, lr, reg = (1 << 20) + 3, 4, 0.03, 0.02
    P, Q = (rng.normal(0, 0.3, (n, k)).astype(np.float32) for _ in range(2))
    items = rng.permutation(n)
    r = rng.integers(1, 6, n).astype(np.float32)
    core = core_model(P, Q)
    loss = sgd_epoch(core, np.arange(n), items, r, lr, reg, False)
    P2, Q2 = P.astype(np.float64), Q.astype(np.float64)[items]
    e = r - np.einsum("ij,ij->i", P2, Q2)
    want_p, want_q = P2 + lr * (e[:, None] * Q2 - reg * P2), Q2 + lr * (e[:, None] * P2 - reg * Q2)
    np.testing.assert_allclose(core.user_factors, want_p, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(core.item_factors[items], want_q, rtol=1e-5, atol=1e-6)
    assert loss == pytest.approx(np.mean(e * e), rel=1e-5)


def test_epoch_is_sequential_over_a_shuffled_order(rng):
    """Three ratings of one user: each step starts from the previous one's
    result, in one of the 3! orders (the epoch's shuffle picks which)."""
    k, lr = 6, 0.1
    P = rng.normal(0, 0.5, (1, k))
    Q = rng.normal(0, 0.5, (3, k))
    r = np.array([5.0, 1.0, 3.0])
    core = core_model(P, Q)
    sgd_epoch(core, [0, 0, 0], [0, 1, 2], r, lr, 0.0, False, seed=3)
    P32, Q32 = P.astype(np.float32).astype(float), Q.astype(np.float32).astype(float)
    outcomes = []
    for order in itertools.permutations(range(3)):
        p, Qr = P32[0].copy(), Q32.copy()
        for t in order:
            p, Qr[t], *_ = reference_step(p, Qr[t], 0.0, 0.0, 0.0, r[t], lr, 0.0, False)
        outcomes.append(np.concatenate([p, Qr.ravel()]))
    got = np.concatenate([core.user_factors[0], core.item_factors.ravel()])
    distances = [np.max(np.abs(got - o)) for o in outcomes]
    assert min(distances) < 1e-5
    assert sorted(distances)[1] > 1e-3  # the orders are distinguishable


def test_epoch_steps_in_turn_where_neighbours_share_rows(rng):
    """Five ratings of 3 users and 3 items, k = 40: the step takes the next
    rating's product early when the two share no row, and after the update
    when they do; either way the epoch is the steps in turn over one of the
    5! orders (a product taken from a row before its update would not be)."""
    k, lr, reg = 40, 0.1, 0.05
    P = rng.normal(0, 0.5, (3, k))
    Q = rng.normal(0, 0.5, (3, k))
    users, items = [0, 0, 1, 1, 2], [0, 1, 1, 2, 0]
    r = np.array([5.0, 1.0, 4.0, 2.0, 3.0])
    core = core_model(P, Q, np.zeros(3), np.zeros(3), 3.0)
    sgd_epoch(core, users, items, r, lr, reg, True, seed=5)
    P32, Q32 = P.astype(np.float32).astype(float), Q.astype(np.float32).astype(float)
    distances = []
    for order in itertools.permutations(range(5)):
        Pr, Qr, bu, bi = P32.copy(), Q32.copy(), np.zeros(3), np.zeros(3)
        for t in order:
            u, i = users[t], items[t]
            Pr[u], Qr[i], bu[u], bi[i], _ = reference_step(Pr[u], Qr[i], bu[u], bi[i], 3.0,
                                                           r[t], lr, reg, True)
        got = np.concatenate([core.user_factors.ravel(), core.item_factors.ravel()])
        distances.append(np.max(np.abs(got - np.concatenate([Pr.ravel(), Qr.ravel()]))))
    assert min(distances) < 1e-5


def test_planted_low_rank_recovery():
    sigma = 0.3
    data = mfrec.make_low_rank(1000, 800, rank=5, density=0.1, noise=sigma, seed=0)
    train, test = mfrec.train_test_split(data.ratings, test_size=0.2, seed=0)
    model = mfrec.Model("sgd", factors=5, learning_rate=0.01, regularization=0.02,
                        biases=True, epochs=100, seed=1).fit(train)
    assert model.global_mean == pytest.approx(float(np.mean(train.rating, dtype=np.float64)))
    rmse = model.score(test)["rmse"]
    assert rmse <= 1.5 * sigma
    baseline = np.sqrt(np.mean((test.rating - train.rating.mean()) ** 2))
    assert baseline > 3 * sigma  # the planted structure is what the model learned


def test_level1_movielens_early_stopping(split42):
    train, test = split42
    model = mfrec.Model("sgd", seed=42, n_threads=1, **LEVEL1_PARAMS)
    model.fit(train, validation=test, early_stopping=3)
    valid = np.array([row["valid_rmse"] for row in model.history])
    loss = np.array([row["train_loss"] for row in model.history])
    best = int(np.argmin(valid))
    assert valid[0] > valid[best] + 0.1                  # falls ...
    assert best < len(valid) - 1                         # ... and bottoms out,
    assert len(valid) == best + 1 + 3 < LEVEL1_PARAMS["epochs"]  # stopped by patience 3
    assert np.all(valid[best + 1:] > valid[best])
    assert np.all(np.diff(loss) < 0)                     # training loss keeps falling
    assert model.best_iteration_ == best + 1
    # the best factors are restored: the final model scores the best epoch's RMSE
    assert model.score(test)["rmse"] == pytest.approx(valid[best], rel=1e-12)
    assert abs(valid[best] - LEVEL1_DOCUMENT_BEST) <= 0.02


def test_movielens_folds_biased_regularized(ml100k):
    rmses = []
    for name in ("u1", "u2", "u3", "u4", "u5"):
        train, test = ml100k.fold(name)
        model = mfrec.Model("sgd", seed=0, n_threads=1, **FOLD_PARAMS).fit(train)
        rmses.append(model.score(test)["rmse"])
    assert np.mean(rmses) <= 0.915, rmses
    assert max(rmses) < 0.93, rmses


def test_two_threads_as_accurate_as_one(ml100k):
    """Threads change SGD's order of updates (repeatable for a fixed count:
    test_contract.py), not its accuracy."""
    train, test = ml100k.fold("u1")
    one = mfrec.Model("sgd", seed=0, n_threads=1, **FOLD_PARAMS).fit(train)
    two = mfrec.Model("sgd", seed=0, n_threads=2, **FOLD_PARAMS).fit(train)
    rmse1, rmse2 = one.score(test)["rmse"], two.score(test)["rmse"]
    assert abs(rmse1 - rmse2) < 0.005, (rmse1, rmse2)


@pytest.mark.parametrize("biases", [True, False])
def test_diverging_learning_rate_raises_clearly(ml100k, biases):
    train, _ = ml100k.fold("u1")
    model = mfrec.Model("sgd", factors=20, learning_rate=0.5, epochs=5, seed=0, biases=biases)
    with pytest.raises(FloatingPointError, match=r"diverged at epoch \d+ with learning_rate=0.5"):
        model.fit(train)
    assert not model.is_fitted  # no NaN factors left behind


def test_diverging_refit_keeps_the_previous_fit(ml100k):
    train, test = ml100k.fold("u1")
    model = mfrec.Model("sgd", factors=10, learning_rate=0.05, epochs=3, seed=0).fit(train)
    before = model.user_factors.copy()
    with pytest.raises(FloatingPointError, match="diverged"):
        model.fit(train.user, train.item, train.rating * 100)  # same rate, 100x the scale
    assert np.array_equal(model.user_factors, before)
    assert np.isfinite(model.predict(test.user, test.item)).all()


# ---- the core function's own checks -------------------------------------

def small_core(biases=True):
    return core_model(np.full((2, 3), 0.1), np.full((2, 3), 0.1),
                      [0, 0] if biases else None, [0, 0] if biases else None, 3.0)


@pytest.mark.parametrize("biases", [True, False])
def test_core_sgd_epoch_catches_factors_that_overflow_with_finite_errors(biases):
    """Every error of the epoch is finite (3e8), but e q_i overflows user 1's
    factor 17 to -inf on the epoch's last touch of that row: the scan of the
    factors after the epoch (a bit test of the exponents) must see it."""
    k = 20
    P, Q = np.full((2, k), 1e-30), np.full((2, k), 0.5)
    Q[1, 17] = 3e38
    core = core_model(P, Q, [0, 0] if biases else None, [0, 0] if biases else None, 0.0)
    with pytest.raises(FloatingPointError):
        sgd_epoch(core, [0, 1], [0, 1], [1.0, 1.0], 1.0, 0.0, biases)


@pytest.mark.parametrize("biases", [True, False])
def test_core_sgd_epoch_catches_finite_factors_whose_products_overflow(biases):
    """Row 1's factors (1e20) are finite and the epoch's one rating leaves
    them alone with a finite error, but p_1 . q_1 = 20 * 1e20 * 1e20 is past
    float32's range: the epoch's loss (the errors met before each step)
    cannot see it, so the bound on the predictions after the epoch must:
    |mu| + max |b| + k max |p| max |q|."""
    k = 20
    P, Q = np.full((2, k), 1e-3), np.full((2, k), 1e-3)
    core = core_model(P, Q, [0, 0] if biases else None, [0, 0] if biases else None, 0.0)
    sgd_epoch(core, [0, 1], [0, 1], [1.0, 1.0], 0.1, 0.0, biases)  # healthy: passes
    P[1], Q[1] = 1e20, 1e20
    core = core_model(P, Q, [0, 0] if biases else None, [0, 0] if biases else None, 0.0)
    with pytest.raises(FloatingPointError):
        sgd_epoch(core, [0], [0], [1.0], 0.1, 0.0, biases)


def test_fit_whose_last_epoch_leaves_overflowing_predictions_raises():
    """A fit whose running errors stay finite but whose final factors
    predict -inf for a rating: named as divergence, with or without the
    training RMSE in the history (found by test_properties.test_fit_arrays)."""
    users, items = np.array([1, 2, 0, 21, 5, 4]), np.array([1, 3, 6, 0, 0, 0])
    ratings = np.array([1, 5, 32297, 32767, 3, -32745], np.float32)
    for record_train in (True, False):
        model = mfrec.Model("sgd", factors=1, learning_rate=0.02, epochs=2, seed=0)
        with pytest.raises(FloatingPointError, match="too large for float32 predictions"):
            model.fit(users, items, ratings, record_train=record_train)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(users=[0, 5]), IndexError, "index out of range"),
    (dict(users=[0, -1]), IndexError, "index out of range"),
    (dict(users=[0]), ValueError, "same length"),
    (dict(users=[], items=[], ratings=[]), ValueError, "no ratings"),
    (dict(ratings=[1.0, np.nan]), ValueError, "non-finite"),
    (dict(lr=-0.1), ValueError, "learning_rate > 0"),
    (dict(lr=float("inf")), ValueError, "learning_rate > 0"),
    (dict(reg=-1.0), ValueError, "regularization >= 0"),
])
def test_core_sgd_epoch_rejects_bad_input(kwargs, exc, match):
    args = dict(users=[0, 1], items=[0, 1], ratings=[1.0, 2.0], lr=0.01, reg=0.0)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        sgd_epoch(small_core(), args["users"], args["items"], args["ratings"], args["lr"],
                  args["reg"], True)


def test_core_sgd_epoch_rejects_wrong_types():
    u = np.array([0, 1], np.int32)
    r = np.array([1.0, 2.0], np.float32)
    kw = dict(learning_rate=0.01, regularization=0.0, biases=False, seed=0, epoch=0, n_threads=1)
    with pytest.raises(TypeError, match="users: expected an array convertible to int32"):
        _core.sgd_epoch(small_core(), u.astype(np.int64), u, r, **kw)
    with pytest.raises(TypeError, match="got int"):
        _core.sgd_epoch(3, u, u, r, **kw)
    with pytest.raises(ValueError, match="needs user_bias and item_bias"):
        _core.sgd_epoch(small_core(biases=False), u, u, r, **dict(kw, biases=True))


# ---- negative sampling ---------------------------------------------------------------

def rated_matrix(seed=0, n_users=40, n_items=30):
    """A random 0/1 matrix of rated pairs (40% of them); user 0 rated every item."""
    rated = np.random.default_rng(seed).random((n_users, n_items)) < 0.4
    rated[0] = True
    return rated


def negatives_epoch(entry, core, rated, negatives, negative_rating, **kw):
    users, items = (a.astype(np.int32) for a in np.nonzero(rated))
    ones = np.ones(len(users), np.float32)
    csr = _core.build_csr(users, items, ones, *rated.shape)
    common = dict(learning_rate=kw.pop("lr", 1e-30), regularization=0.0, biases=False,
                  seed=kw.pop("seed", 0), epoch=kw.pop("epoch", 0), negatives=negatives,
                  negative_rating=negative_rating, rated=csr)
    if entry == "sgd_epoch":
        return _core.sgd_epoch(core, users, items, ones, n_threads=kw.pop("n_threads", 1),
                               **common)
    return _core.sgd_epoch_features(core, users, items, ones, user_features=None,
                                    item_features=None, **common)


@pytest.mark.parametrize("entry, n_threads, shape", [
    ("sgd_epoch", 1, (40, 30)), ("sgd_epoch", 2, (40, 30)), ("sgd_epoch_features", 1, (40, 30)),
    ("sgd_epoch", 2, (500, 400)),  # 80,000 ratings: two blocks of draws, on two threads
])
def test_negatives_are_unrated_items_and_as_many_as_asked(entry, n_threads, shape):
    """P = the rated matrix and Q = I make p_u . q_j = 1 on a rated pair and
    0 on an unrated one; the rate is too small to move them. Ratings of 1
    then err by 0, a negative (value 2) drawn from the unrated items by 2,
    one drawn from the rated ones by 1: the epoch's mean squared error tells
    how many negatives there were and whether any was a rated item."""
    rated = rated_matrix(n_users=shape[0], n_items=shape[1])
    nnz, s = int(rated.sum()), 3
    n_negatives = s * (nnz - rated.shape[1])  # user 0 rated everything: none for them
    core = core_model(rated, np.eye(rated.shape[1]))
    loss = negatives_epoch(entry, core, rated, s, 2.0, n_threads=n_threads)
    assert loss == pytest.approx(4.0 * n_negatives / (nnz + n_negatives), rel=1e-12)


def test_negatives_cover_the_unrated_items_uniformly():
    """Which unrated item a draw picks: P[0] = (1, 2, ..., n) and Q = I make
    p_0 . q_j = j + 1, so a negative (value 0) at item j errs by j + 1. Over
    many epochs the negatives' mean squared error approaches the mean of
    (j + 1)^2 over user 0's unrated items."""
    n_items = 30
    rated = np.zeros((2, n_items), bool)
    rated[0, ::3] = True   # user 0 rated items 0, 3, ...; every other item is unrated
    rated[1, :] = True     # user 1 draws nothing
    unrated = np.flatnonzero(~rated[0])
    P = np.zeros((2, n_items), np.float32)
    P[0] = np.arange(1, n_items + 1)  # p_0 . q_j = j + 1 with Q = I
    P[1] = 1.0
    errors = []
    for epoch in range(400):
        core = core_model(P, np.eye(n_items))
        loss = negatives_epoch("sgd_epoch", core, rated, 5, 0.0, epoch=epoch)
        # ratings of user 0 (value 1) err by -j; user 1's by 0: remove them
        rated_sse = float(np.sum((1.0 - P[0, rated[0]]) ** 2))
        n0, n = rated[0].sum(), rated.sum()
        errors.append((loss * (n + 5 * n0) - rated_sse) / (5 * n0))
    # the mean squared value of j + 1 over the unrated items, with a 2% band for 40,000 draws
    expected = np.mean((unrated + 1.0) ** 2)
    assert np.mean(errors) == pytest.approx(expected, rel=0.02)


def test_negatives_change_nothing_when_every_item_is_rated():
    rated = np.ones((6, 5), bool)
    P = np.random.default_rng(1).standard_normal((6, 2))
    Q = np.random.default_rng(2).standard_normal((5, 2))
    a, b = core_model(P, Q), core_model(P, Q)
    la = negatives_epoch("sgd_epoch", a, rated, 0, 0.0, lr=0.05)
    lb = negatives_epoch("sgd_epoch", b, rated, 4, 0.0, lr=0.05)
    assert la == lb
    np.testing.assert_array_equal(a.user_factors, b.user_factors)
    np.testing.assert_array_equal(a.item_factors, b.item_factors)


def test_negatives_are_repeatable_and_vary_with_the_seed(split42):
    train, _ = split42
    fit = lambda seed, t: mfrec.Model("sgd", factors=8, epochs=3, negatives=2, seed=seed,
                                      n_threads=t).fit(train)
    for t in (1, 2):
        np.testing.assert_array_equal(fit(0, t).item_factors, fit(0, t).item_factors)
    assert not np.array_equal(fit(0, 1).item_factors, fit(1, 1).item_factors)


def test_core_negatives_reject_bad_input():
    rated = rated_matrix()
    core = core_model(rated, np.eye(rated.shape[1]))
    users, items = (a.astype(np.int32) for a in np.nonzero(rated))
    ones = np.ones(len(users), np.float32)
    kw = dict(learning_rate=0.01, regularization=0.0, biases=False, seed=0, epoch=0)
    with pytest.raises(ValueError, match="negatives > 0 needs rated"):
        _core.sgd_epoch(core, users, items, ones, negatives=1, **kw)
    with pytest.raises(ValueError, match="negatives >= 0"):
        _core.sgd_epoch(core, users, items, ones, negatives=-1, **kw)
    with pytest.raises(ValueError, match="finite negative_rating"):
        _core.sgd_epoch(core, users, items, ones, negatives=1, negative_rating=np.inf, **kw)
    wrong = _core.build_csr(users, items, ones, rated.shape[0] + 1, rated.shape[1])
    with pytest.raises(ValueError, match="rated: 41 rows for a model of 40 users"):
        _core.sgd_epoch(core, users, items, ones, negatives=1, rated=wrong, **kw)
    with pytest.raises(ValueError, match="rated"):
        _core.sgd_epoch(core, users, items, ones, negatives=1, rated=(1, 2, 3), **kw)
