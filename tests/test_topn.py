"""Top-N lists (csrc/core/topn.c through Model): recommend, recommend_all,
similar_items/users, fold-in, against plain NumPy references."""
import numpy as np
import pytest

import mfrec
from mfrec import _core
from references import full_scores, rank, reference_recommend

SCORE_TOL = 1e-5


def check_list(model, ids, scores, ref_ids, ref_scores):
    np.testing.assert_array_equal(ids, ref_ids)
    assert scores.dtype == np.float32 and ids.dtype == np.int64
    assert np.max(np.abs(scores - ref_scores), initial=0.0) <= SCORE_TOL


@pytest.fixture(scope="module")
def data():
    """Ratings with raw ids that are not 0..n-1 (ids shifted and spread)."""
    lr = mfrec.make_low_rank(n_users=300, n_items=700, rank=4, density=0.05, seed=3)
    r = lr.ratings
    return mfrec.Ratings(r.user * 3 + 100, r.item * 7 + 5, r.rating)


def random_model(data, biases=True, k=8, seed=0):
    """A fitted model whose arrays are then replaced by random values."""
    model = mfrec.Model("sgd", factors=k, epochs=1, biases=biases, seed=seed).fit(data)
    rng = np.random.default_rng(seed)
    model.user_factors = rng.standard_normal(model.user_factors.shape).astype(np.float32)
    model.item_factors = rng.standard_normal(model.item_factors.shape).astype(np.float32)
    if biases:
        model.user_bias = rng.standard_normal(len(model.user_ids)).astype(np.float32)
        model.item_bias = rng.standard_normal(len(model.item_ids)).astype(np.float32)
        model.global_mean = 3.5
    return model


# ---- recommend equals the reference -------------------------------------------

@pytest.mark.parametrize("biases", [True, False])
@pytest.mark.parametrize("seed", [0, 1])
def test_recommend_matches_numpy_reference(data, biases, seed):
    model = random_model(data, biases=biases, seed=seed)
    users = model.user_ids[::7]
    S = full_scores(model)
    for n in (1, 10, 50):
        ids, scores = model.recommend(users, n=n)
        assert ids.shape == scores.shape == (len(users), n)
        for row, u in enumerate(users):
            check_list(model, ids[row], scores[row], *reference_recommend(model, u, n, S=S))
    u = model.user_ids[5]
    ids, scores = model.recommend(u, n=10, exclude_seen=False)
    check_list(model, ids, scores, *reference_recommend(model, u, 10, exclude_seen=False))


def test_recommend_all_matches_reference_over_several_blocks_and_tiles():
    # 1500 users -> 8 blocks of 192; 5000 items -> tiles of 1365 items
    lr = mfrec.make_low_rank(n_users=1500, n_items=5000, rank=3, density=0.004, seed=5)
    model = mfrec.Model("sgd", factors=6, epochs=2, seed=1).fit(lr.ratings)
    ids, scores = model.recommend_all(12, n_threads=2)
    S = full_scores(model)
    for u in range(0, len(model.user_ids), 37):
        s = S[u].copy()
        s[model.seen_indices[model.seen_indptr[u]:model.seen_indptr[u + 1]]] = -np.inf
        top = rank(s, 12)
        check_list(model, ids[u], scores[u], model.item_ids[top], s[top])


def test_lists_do_not_depend_on_the_thread_count():
    lr = mfrec.make_low_rank(n_users=1200, n_items=900, rank=3, density=0.02, seed=2)
    model = mfrec.Model("sgd", factors=10, epochs=2, seed=0).fit(lr.ratings)
    ids1, s1 = model.recommend_all(10, n_threads=1)
    for t in (2, 3):
        ids, s = model.recommend_all(10, n_threads=t)
        np.testing.assert_array_equal(ids, ids1)
        np.testing.assert_array_equal(s, s1)
    a1 = model.similar_items(model.item_ids[:100], 5, n_threads=1)
    a3 = model.similar_items(model.item_ids[:100], 5, n_threads=3)
    np.testing.assert_array_equal(a1[0], a3[0])
    np.testing.assert_array_equal(a1[1], a3[1])


def test_ties_go_to_the_lower_item_id(data):
    """Small integer factors and biases make many exactly equal scores."""
    model = random_model(data, k=3, seed=4)
    rng = np.random.default_rng(9)
    model.user_factors = rng.integers(-1, 2, model.user_factors.shape).astype(np.float32)
    model.item_factors = rng.integers(-1, 2, model.item_factors.shape).astype(np.float32)
    model.user_bias = np.zeros(len(model.user_ids), np.float32)
    model.item_bias = rng.integers(0, 3, len(model.item_ids)).astype(np.float32)
    model.global_mean = 1.0
    ids, scores = model.recommend(model.user_ids, n=25)
    S = full_scores(model)
    n_tied = 0
    for row, u in enumerate(model.user_ids):
        ref_ids, ref_scores = reference_recommend(model, u, 25, S=S)
        np.testing.assert_array_equal(ids[row], ref_ids)
        np.testing.assert_array_equal(scores[row], ref_scores)
        n_tied += np.sum(np.diff(scores[row]) == 0)
    assert n_tied > 1000  # the case is really about ties
    # within equal scores the ids ascend
    same = np.diff(scores, axis=1) == 0
    assert np.all(np.diff(ids, axis=1)[same] > 0)


def test_candidates_and_exclusions(data):
    model = random_model(data, seed=2)
    rng = np.random.default_rng(0)
    items = rng.choice(model.item_ids, 120, replace=False)
    exclude = rng.choice(model.item_ids, 200, replace=False)
    S = full_scores(model)
    for u in model.user_ids[:40:3]:
        for kw in ({"items": items}, {"exclude": exclude}, {"items": items, "exclude": exclude}):
            ids, scores = model.recommend(u, n=15, **kw)
            check_list(model, ids, scores, *reference_recommend(model, u, 15, S=S, **kw))
            if "items" in kw:
                assert np.isin(ids, kw["items"]).all()
            if "exclude" in kw:
                assert not np.isin(ids, kw["exclude"]).any()
    # duplicates in the candidate list do not matter
    u = model.user_ids[0]
    a = model.recommend(u, 5, items=np.r_[items, items])
    b = model.recommend(u, 5, items=items)
    np.testing.assert_array_equal(a[0], b[0])


def test_fewer_items_left_than_n(data):
    model = random_model(data, seed=1)
    u = model.user_ids[3]
    seen = model.seen_indptr[4] - model.seen_indptr[3]
    left = len(model.item_ids) - seen
    # one user: a shorter list
    ids, scores = model.recommend(u, n=len(model.item_ids))
    assert len(ids) == len(scores) == left
    check_list(model, ids, scores, *reference_recommend(model, u, left))
    # three candidates only, one of them already rated
    rated = model.item_ids[model.seen_indices[model.seen_indptr[3]]]
    unrated = np.setdiff1d(model.item_ids, model.item_ids[
        model.seen_indices[model.seen_indptr[3]:model.seen_indptr[4]]])[:2]
    cands = np.r_[rated, unrated]
    ids, scores = model.recommend(u, n=10, items=cands)
    assert sorted(ids) == sorted(unrated)
    # a batch: width min(n, candidates), padding -1 / NaN at the end of short rows
    ids, scores = model.recommend(model.user_ids[2:5], n=10, items=cands)
    assert ids.shape == (3, 3)
    assert ids[1, 2] == -1 and np.isnan(scores[1, 2])
    valid = ids >= 0
    assert np.all(np.isnan(scores) == ~valid)
    # nothing left at all
    ids, scores = model.recommend(u, n=5, items=cands, exclude=cands)
    assert ids.shape == scores.shape == (0,)
    ids, scores = model.recommend(model.user_ids[:4], n=5, items=cands, exclude=cands)
    assert ids.shape == (4, 0)


# ---- similar items and users ----------------------------------------------------

@pytest.mark.parametrize("kind", ["item", "user"])
def test_similar_matches_cosine_reference(data, kind):
    model = random_model(data, seed=6)
    F = (model.item_factors if kind == "item" else model.user_factors).astype(np.float64)
    ids_all = model.item_ids if kind == "item" else model.user_ids
    F[4] = 0.0  # a zero vector: cosine 0 with everything
    if kind == "item":
        model.item_factors = F.astype(np.float32)
    else:
        model.user_factors = F.astype(np.float32)
    norms = np.linalg.norm(F, axis=1)
    inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    C = (F @ F.T) * inv[:, None] * inv[None, :]
    method = model.similar_items if kind == "item" else model.similar_users
    queries = ids_all[[0, 4, 17, 33]]
    ids, scores = method(queries, n=12)
    for row, q in enumerate([0, 4, 17, 33]):
        c = C[q].copy()
        c[q] = -np.inf
        top = rank(c, 12)
        check_list(model, ids[row], scores[row], ids_all[top], c[top])
        assert ids_all[q] not in ids[row]
    np.testing.assert_array_equal(scores[1], 0.0)  # the zero vector
    one_ids, one_scores = method(ids_all[17], n=12)
    np.testing.assert_array_equal(one_ids, ids[2])
    # candidates: a subset that holds the query itself, which stays out
    cand = np.r_[17, np.arange(50, 250, 3)]
    ids, scores = method(ids_all[17], 8, ids_all[cand])
    c = np.full(len(ids_all), -np.inf)
    c[cand] = C[17, cand]
    c[17] = -np.inf
    top = rank(c, 8)
    check_list(model, ids, scores, ids_all[top], c[top])
    with pytest.raises(KeyError, match=f"{kind}s: 1 {kind} id"):
        method(ids_all[17], 8, [ids_all[3], 10**9])


def test_similar_items_on_movielens_makes_sense(ml100k):
    """Movies most like a Star Wars film share its audience: the other
    Star Wars films rank near the top for a fitted model."""
    model = mfrec.Model("sgd", factors=50, epochs=20, regularization=0.05, seed=0).fit(
        ml100k.ratings)
    ids, scores = model.similar_items(50, n=10)  # 50: Star Wars (1977)
    titles = list(ml100k.titles_of(ids))
    assert 50 not in ids
    assert {172, 181} & set(ids), titles  # The Empire Strikes Back, Return of the Jedi
    assert np.all(np.diff(scores) <= 0) and scores[0] <= 1.0 + 1e-6


# ---- fold-in ----------------------------------------------------------------------

def ridge_reference(model, items, ratings, lam):
    idx = np.searchsorted(model.item_ids, items)
    Q = model.item_factors[idx].astype(np.float64)
    y = ratings.astype(np.float64) - model.global_mean
    if model.user_bias is not None:
        y -= model.item_bias[idx]
        Q = np.hstack([Q, np.ones((len(idx), 1))])
    z = np.linalg.solve(Q.T @ Q + lam * np.eye(Q.shape[1]), Q.T @ y)
    return (z[:-1], z[-1]) if model.user_bias is not None else (z, None)


@pytest.mark.parametrize("biases", [True, False])
def test_fold_in_equals_ridge_solution_for_a_held_out_user(ml100k, biases):
    r = ml100k.ratings
    held = r.user == 13  # a user with many ratings, left out of training
    model = mfrec.Model("sgd", factors=20, epochs=10, biases=biases, seed=0).fit(r[~held])
    items, ratings = r.item[held], r.rating[held]
    items_known = np.isin(items, model.item_ids)
    items, ratings = items[items_known], ratings[items_known]
    for lam in (0.5, 5.0):
        x, b = model.fold_in(items, ratings, regularization=lam)
        ref_x, ref_b = ridge_reference(model, items, ratings, lam)
        assert np.max(np.abs(x - ref_x)) <= 1e-4
        if biases:
            assert abs(b - ref_b) <= 1e-4
        else:
            assert b is None
    # the default lambda: the model's regularization times the number of ratings
    x, _ = model.fold_in(items, ratings)
    ref_x, _ = ridge_reference(model, items, ratings, 0.02 * len(items))
    assert np.max(np.abs(x - ref_x)) <= 1e-4


def test_fold_in_with_negatives_equals_the_weighted_solution(ml100k):
    """A model trained with negative sampling folds a user in by the
    objective an epoch has in expectation: every unrated item as a rating
    of negative_rating, with weight w = s n / (n_items - n)."""
    r = ml100k.ratings
    held = r.user == 13
    model = mfrec.Model("sgd", factors=20, epochs=5, negatives=2, negative_rating=0.5,
                        regularization=0.03, seed=0).fit(r[~held])
    items, ratings = r.item[held], r.rating[held]
    known = np.isin(items, model.item_ids)
    items, ratings = items[known], ratings[known]
    n, n_items = len(items), len(model.item_ids)
    idx = np.searchsorted(model.item_ids, items)
    weight = np.full(n_items, 2 * n / (n_items - n))
    target = np.full(n_items, 0.5)
    weight[idx], target[idx] = 1.0, ratings
    A = np.hstack([model.item_factors.astype(np.float64), np.ones((n_items, 1))])
    y = target - model.global_mean - model.item_bias.astype(np.float64)
    lam = 0.03 * n * (1 + 2)  # per update: one per rating and per negative
    z = np.linalg.solve(A.T @ (weight[:, None] * A) + lam * np.eye(21), A.T @ (weight * y))
    x, b = model.fold_in(items, ratings)
    assert np.max(np.abs(x - z[:-1])) <= 1e-4 and abs(b - z[-1]) <= 1e-4
    ids, _ = model.recommend_new_user(items, ratings, n=10)
    s = A @ z + model.global_mean + model.item_bias
    s[idx] = -np.inf
    assert set(ids) == set(model.item_ids[np.argsort(-s)[:10]])


def test_fold_in_tells_a_fan_from_a_hater(ml100k):
    """Rating Star Wars and The Empire Strikes Back 5/5 puts Return of the
    Jedi near the top of the list; rating them 1/5 puts it near the end."""
    model = mfrec.Model("sgd", factors=50, epochs=20, regularization=0.05, seed=0).fit(
        ml100k.ratings)
    n = len(model.item_ids)
    fan, _ = model.recommend_new_user([50, 172], [5, 5], n=n)
    hater, _ = model.recommend_new_user([50, 172], [1, 1], n=n)
    assert len(fan) == n - 2 and not {50, 172} & set(fan)
    assert np.flatnonzero(fan == 181)[0] < 100 < 1000 < np.flatnonzero(hater == 181)[0]


@pytest.mark.parametrize("algorithm,params", [("sgd", {"biases": False}), ("sgd", {}),
                                              ("nmf", {}), ("als", {}), ("wals", {})])
@pytest.mark.parametrize("rating", [3e38, -3e38, 1e30])
def test_fold_in_of_extreme_ratings_is_finite_or_refused(data, algorithm, params, rating):
    """Finite ratings near float32's limit: the new user's factors, bias and
    scores are finite, or the call refuses with FloatingPointError naming
    the ratings (a user without biases rating 3e38 used to get infinite
    scores). Ratings of 1e30 fit in float32 everywhere: never refused."""
    if algorithm == "nmf":  # without biases it takes ratings >= 0 only
        data = mfrec.Ratings(data.user, data.item, data.rating - data.rating.min())
    model = mfrec.Model(algorithm, factors=4, seed=0, **params).fit(data)
    items = model.item_ids[:5]
    ratings = np.full(5, rating, np.float32)
    for call in (lambda: model.fold_in(items, ratings),
                 lambda: model.recommend_new_user(items, ratings, n=len(model.item_ids))):
        try:
            first, second = call()
        except FloatingPointError as e:
            assert "ratings" in str(e) and "float32" in str(e)
            assert abs(rating) > 1e30
            continue
        values = second if isinstance(second, np.ndarray) else [first, second or 0.0]
        assert all(np.isfinite(v).all() for v in values)
    if (algorithm, params) == ("sgd", {"biases": False}) and abs(rating) > 1e30:
        with pytest.raises(FloatingPointError, match="ratings"):
            model.recommend_new_user(items, ratings)


# ---- bad input -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def fitted(data):
    return mfrec.Model("sgd", factors=4, epochs=1, seed=0).fit(data)


@pytest.mark.parametrize("n", [0, -3, 2.5, True, "10", None])
def test_bad_n(fitted, n):
    u, i = fitted.user_ids[0], fitted.item_ids[0]
    for call in (lambda: fitted.recommend(u, n=n), lambda: fitted.recommend_all(n),
                 lambda: fitted.similar_items(i, n), lambda: fitted.similar_users(u, n),
                 lambda: fitted.recommend_new_user([i], [4.0], n=n)):
        with pytest.raises(ValueError, match="n must be an integer >= 1"):
            call()


def test_bad_types_and_shapes(fitted):
    u = fitted.user_ids[0]
    with pytest.raises(TypeError, match="users must hold integer ids"):
        fitted.recommend(1.5)
    with pytest.raises(TypeError, match="items are string ids, but the model's are "
                                        "integer ids"):
        fitted.recommend(u, items=["a"])
    with pytest.raises(ValueError, match="users must be 1-D"):
        fitted.recommend(np.array([[u]]))
    with pytest.raises(ValueError, match="n_threads"):
        fitted.recommend(u, n_threads=-1)


def test_bad_fold_in_input(fitted):
    i = fitted.item_ids[:3]
    with pytest.raises(ValueError, match="at least one rating"):
        fitted.recommend_new_user([], [])
    with pytest.raises(ValueError, match="at least one rating"):
        fitted.fold_in(np.array([], np.int64), np.array([], np.float32))
    with pytest.raises(ValueError, match="same length"):
        fitted.recommend_new_user(i, [4.0, 5.0])
    with pytest.raises(ValueError, match="rated only once"):
        fitted.recommend_new_user([i[0], i[0]], [4.0, 5.0])
    with pytest.raises(ValueError, match="ratings must be finite"):
        fitted.recommend_new_user(i, [4.0, np.nan, 3.0])
    for lam in (0.0, -1.0, np.inf, np.nan, "1"):
        with pytest.raises(ValueError, match="regularization must be a finite number > 0"):
            fitted.fold_in(i, [4.0, 5.0, 3.0], regularization=lam)
    unreg = mfrec.Model("sgd", factors=2, epochs=1, regularization=0.0, seed=0).fit(
        fitted.user_ids.repeat(2)[:10], np.tile(i, 4)[:10], np.ones(10))
    with pytest.raises(ValueError, match="trained without regularization"):
        unreg.fold_in(i[:1], [4.0])
    assert unreg.fold_in(i[:1], [4.0], regularization=1.0)[0].shape == (2,)


def test_core_rejects_bad_arrays(fitted):
    with pytest.raises(IndexError, match="recommend"):
        _core.recommend(fitted, np.array([len(fitted.user_ids)], np.int32), 5,
                        exclude_seen=True, pool=None, n_threads=1)
    with pytest.raises(IndexError):
        _core.recommend(fitted, None, 5, exclude_seen=True,
                        pool=np.array([0, 10**6], np.int32), n_threads=1)
    with pytest.raises(ValueError, match="recommend"):  # pool not ascending
        _core.recommend(fitted, None, 5, exclude_seen=True,
                        pool=np.array([3, 1], np.int32), n_threads=1)
    with pytest.raises(ValueError, match="n must be"):
        _core.recommend(fitted, None, 0, exclude_seen=True, pool=None, n_threads=1)
    with pytest.raises(ValueError, match="x must have the model's 4 factors"):
        _core.recommend_vector(fitted, np.zeros(3, np.float32), 0.0,
                               np.zeros(0, np.int32), None, 5)
    with pytest.raises(ValueError, match="recommend_vector"):  # skip list not ascending
        _core.recommend_vector(fitted, np.zeros(4, np.float32), 0.0,
                               np.array([5, 2], np.int32), None, 5)
    with pytest.raises(IndexError, match="fold_in"):
        _core.fold_in(fitted, np.array([10**6], np.int32), np.ones(1, np.float32), 1.0)
    with pytest.raises(TypeError, match="model"):
        _core.recommend("not a model", None, 5, exclude_seen=True, pool=None, n_threads=1)
    # a corrupted training-item index: unsorted rows are refused, not misread
    broken = mfrec.Model("sgd", factors=2, epochs=1, seed=0).fit(
        [1, 1, 1, 2], [10, 11, 12, 10], [4, 5, 3, 1])
    broken.seen_indices = broken.seen_indices[::-1].copy()
    with pytest.raises(ValueError, match="recommend"):
        broken.recommend(1)
