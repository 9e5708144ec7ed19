"""Ranking metrics (csrc/core/metrics.c), metrics.evaluate and the popularity
baseline, against plain-Python references."""
import math

import numpy as np
import pytest

import mfrec
from mfrec.metrics import evaluate, ranking_metrics

NAMES = ("precision", "recall", "ndcg", "ap", "hit")


def reference_user(rec, relevant, k):
    """Plain-Python metrics of one list; None without relevant items."""
    rel = set(int(x) for x in relevant)
    if not rel:
        return None
    hits = [int(i) >= 0 and int(i) in rel for i in rec[:k]]
    h = sum(hits)
    dcg = sum(1.0 / math.log2(t + 2) for t, x in enumerate(hits) if x)
    idcg = sum(1.0 / math.log2(t + 2) for t in range(min(k, len(rel))))
    ap, so_far = 0.0, 0
    for t, x in enumerate(hits):
        if x:
            so_far += 1
            ap += so_far / (t + 1)
    return {"precision": h / k, "recall": h / len(rel), "ndcg": dcg / idcg,
            "ap": ap / min(k, len(rel)), "hit": float(h > 0)}


def reference(recommended, relevant, n_items):
    k = recommended.shape[1]
    rows = [reference_user(r, rel, k) for r, rel in zip(recommended, relevant)]
    scored = [r for r in rows if r is not None]
    means = {name: (sum(r[name] for r in scored) / len(scored) if scored else float("nan"))
             for name in NAMES}
    listed = {int(i) for r in recommended for i in r if i >= 0}
    return rows, means, len(listed) / n_items, len(scored)


def random_case(rng, n_users, n_items, k):
    recommended = np.full((n_users, k), -1, np.int64)
    relevant = []
    for u in range(n_users):
        length = rng.integers(0, min(k, n_items) + 1)
        recommended[u, :length] = rng.choice(n_items, length, replace=False)
        if rng.random() < 0.1 and length:  # an empty rank inside the list
            recommended[u, rng.integers(length)] = -1
        n_rel = rng.integers(0, 8) if rng.random() > 0.2 else 0
        rel = rng.choice(n_items + 5, n_rel, replace=False)  # some unknown to the lists
        relevant.append(rel)
    return recommended, relevant


@pytest.mark.parametrize("seed,n_users,n_items,k", [
    (0, 40, 30, 5), (1, 60, 12, 10), (2, 25, 200, 1), (3, 1500, 50, 20), (4, 3, 5, 40)])
def test_ranking_metrics_match_plain_python(seed, n_users, n_items, k):
    rng = np.random.default_rng(seed)
    recommended, relevant = random_case(rng, n_users, n_items, k)
    got = ranking_metrics(recommended, relevant, n_items, n_threads=2)
    rows, means, coverage, n_scored = reference(recommended, relevant, n_items)
    assert any(r is None for r in rows)  # users without relevant items occur
    assert got["users"] == n_scored
    for name, key in zip(NAMES, ("precision", "recall", "ndcg", "map", "hit_rate")):
        assert got[key] == pytest.approx(means[name], rel=1e-12, abs=1e-12)
        per_user = got["per_user"][name]
        for u, r in enumerate(rows):
            if r is None:
                assert np.isnan(per_user[u])
            else:
                assert per_user[u] == pytest.approx(r[name], rel=1e-12, abs=1e-12)
    assert got["coverage"] == pytest.approx(coverage)


def test_ranking_metrics_hand_computed_case():
    # user 0: hits at ranks 0 and 2 of 3, 4 relevant; user 1: nothing relevant
    got = ranking_metrics([[1, 5, 2], [0, 1, 2]], [[1, 2, 3, 4], []], n_items=6)
    assert got["users"] == 1
    assert got["precision"] == pytest.approx(2 / 3)
    assert got["recall"] == pytest.approx(2 / 4)
    assert got["ndcg"] == pytest.approx((1 + 1 / 2) / (1 + 1 / math.log2(3) + 1 / 2))
    assert got["map"] == pytest.approx((1 + 2 / 3) / 3)
    assert got["hit_rate"] == 1.0
    assert got["coverage"] == pytest.approx(4 / 6)


def test_ranking_metrics_with_no_relevant_item_anywhere():
    got = ranking_metrics([[0, 1], [2, -1]], [[], []], n_items=4)
    assert got["users"] == 0 and np.isnan(got["precision"]) and np.isnan(got["ndcg"])
    assert got["coverage"] == 0.75


def test_ranking_metrics_do_not_depend_on_threads():
    rng = np.random.default_rng(7)
    recommended, relevant = random_case(rng, 5000, 100, 10)
    a = ranking_metrics(recommended, relevant, 100, n_threads=1)
    b = ranking_metrics(recommended, relevant, 100, n_threads=2)
    for key in ("precision", "recall", "ndcg", "map", "hit_rate", "coverage"):
        assert a[key] == b[key]


def test_ranking_metrics_bad_input():
    with pytest.raises(ValueError, match="repeats a label"):
        ranking_metrics([[0, 1]], [[1, 1]], n_items=3)
    with pytest.raises(ValueError, match="repeats a relevant item"):
        ranking_metrics([[1, 1]], [[1]], n_items=3)
    with pytest.raises(IndexError, match="outside"):
        ranking_metrics([[0, 3]], [[1]], n_items=3)
    with pytest.raises(IndexError, match="outside"):
        ranking_metrics([[0, -2]], [[1]], n_items=3)
    with pytest.raises(ValueError, match="one array per row"):
        ranking_metrics([[0, 1]], [[1], [2]], n_items=3)
    with pytest.raises(ValueError, match="2-D integer array"):
        ranking_metrics([0, 1], [[1]], n_items=3)
    with pytest.raises(ValueError, match="2-D integer array"):
        ranking_metrics([[0.5, 1.0]], [[1]], n_items=3)
    with pytest.raises(ValueError, match="labels must be integers in"):
        ranking_metrics([[0, 1]], [[-1]], n_items=3)
    with pytest.raises(ValueError, match="k >= 1"):
        ranking_metrics(np.zeros((1, 0), int), [[1]], n_items=3)
    with pytest.raises(ValueError, match="n_items >= 1"):
        ranking_metrics([[0]], [[1]], n_items=0)


# ---- evaluate ------------------------------------------------------------------

@pytest.fixture(scope="module")
def split():
    lr = mfrec.make_low_rank(n_users=200, n_items=300, rank=3, density=0.08, seed=11)
    r = lr.ratings
    r = mfrec.Ratings(r.user + 1, r.item + 1, np.clip(np.round(r.rating + 0.5), 1, 5))
    train, test = mfrec.train_test_split(r, test_size=0.25, seed=0)
    # a test user and a test item the model never sees
    extra = mfrec.Ratings([10**6, 10**6, 5, 6], [3, 4, 10**6, 10**6], [5, 4, 5, 5])
    test = mfrec.Ratings(np.r_[test.user, extra.user], np.r_[test.item, extra.item],
                         np.r_[test.rating, extra.rating])
    return train, test


def reference_evaluate(model, test, k, threshold, candidates):
    known = np.isin(test.user, model.user_ids)
    users = np.unique(test.user[known])
    if candidates == "all":
        lists = model.recommend(users, k)[0]
    else:
        lists = []
        for u in users:
            mine = (test.user == u) & np.isin(test.item, model.item_ids)
            items = test.item[mine]
            s = model.predict(np.full(len(items), u), items, clip=False)
            order = np.lexsort((items, -s))[:k]
            lists.append(list(items[order]) + [-1] * (k - len(order)))
        lists = np.array(lists)
    rows = []
    for u, lst in zip(users, lists):
        rel = test.item[(test.user == u) & (test.rating >= threshold)]
        rows.append(reference_user(lst, rel, k))
    scored = [r for r in rows if r is not None]
    out = {name: np.mean([r[name] for r in scored]) for name in NAMES}
    listed = {i for lst in lists for i in lst if i >= 0}
    return out, len(listed) / len(model.item_ids), len(scored)


@pytest.mark.parametrize("algorithm", ["sgd", "popular"])
@pytest.mark.parametrize("candidates", ["all", "test"])
def test_evaluate_matches_reference(split, algorithm, candidates):
    train, test = split
    params = {"factors": 5, "epochs": 5, "seed": 0} if algorithm == "sgd" else {}
    model = mfrec.Model(algorithm, **params).fit(train)
    got = evaluate(model, test, k=7, threshold=4, candidates=candidates)
    ref, coverage, n_scored = reference_evaluate(model, test, 7, 4, candidates)
    assert got["users"] == n_scored
    for name, key in zip(NAMES, ("precision", "recall", "ndcg", "map", "hit_rate")):
        assert got[key] == pytest.approx(ref[name], rel=1e-12)
    assert got["coverage"] == pytest.approx(coverage)
    score = model.score(test)
    assert got["rmse"] == score["rmse"] and got["mae"] == score["mae"]
    assert got["k"] == 7 and got["threshold"] == 4.0


def test_evaluate_accepts_triplets(split):
    train, test = split
    model = mfrec.Model("popular").fit(train)
    a = evaluate(model, test)
    b = evaluate(model, (test.user, test.item, test.rating))
    assert a == b


def test_evaluate_bad_input(split):
    train, test = split
    model = mfrec.Model("popular").fit(train)
    for k in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="k must be an integer >= 1"):
            evaluate(model, test, k=k)
    for t in (np.nan, "4", None):
        with pytest.raises(ValueError, match="threshold must be a finite number"):
            evaluate(model, test, threshold=t)
    with pytest.raises(ValueError, match="candidates must be 'all' or 'test'"):
        evaluate(model, test, candidates="train")
    dup = mfrec.Ratings(np.r_[test.user[:3], test.user[0]], np.r_[test.item[:3], test.item[0]],
                        np.ones(4))
    with pytest.raises(ValueError, match="occurs more than once"):
        evaluate(model, dup)
    with pytest.raises(ValueError, match="no ratings"):
        evaluate(model, test[:0])
    with pytest.raises(TypeError, match="Ratings or a"):
        evaluate(model, "test")
    with pytest.raises(RuntimeError, match="not fitted"):
        evaluate(mfrec.Model("sgd"), test)


# ---- popularity --------------------------------------------------------------------

def test_popular_ranks_by_number_of_ratings(split):
    train, _ = split
    model = mfrec.Model("popular").fit(train)
    ids, counts = np.unique(train.item, return_counts=True)
    np.testing.assert_array_equal(model.item_ids, ids)
    np.testing.assert_allclose(model.item_bias, counts / len(np.unique(train.user)), rtol=1e-6)
    assert model.item_factors.shape == (len(ids), 1) and not model.item_factors.any()
    for u in np.unique(train.user)[:20]:
        rated = train.item[train.user == u]
        left = ~np.isin(ids, rated)
        order = np.lexsort((ids[left], -counts[left]))[:10]  # ties: lower id first
        got, scores = model.recommend(u, 10)
        np.testing.assert_array_equal(got, ids[left][order])
        np.testing.assert_allclose(scores, counts[left][order] / len(np.unique(train.user)),
                                   rtol=1e-6)
    # predict gives the same popularity score, unclipped
    np.testing.assert_allclose(model.predict(train.user[:5], train.item[:5]),
                               model.item_bias[np.searchsorted(ids, train.item[:5])])
    # a new user gets the most popular items they have not rated
    new, _ = model.recommend_new_user(ids[np.argsort(-counts)[:2]], [5, 5], n=3)
    assert set(new).isdisjoint(ids[np.argsort(-counts)[:2]])


# The SGD setting that ranks (README and notebooks/recommendations.ipynb quote it).
RANKING_PARAMS = dict(negatives=2, factors=100, learning_rate=0.01, regularization=0.1,
                      init_scale=0.01, epochs=60)


def test_movielens_u1_sgd_against_popularity(ml100k):
    """ML-100K u1, threshold 4, k=10 under both protocols.

    Ranking every unrated item (the top-N protocol), SGD with negative
    sampling beats popularity by a wide margin. SGD on the ratings alone
    does not: a model trained to predict ratings is not trained to predict
    which items a user will rate, which is what this protocol rewards
    (Cremonesi et al., RecSys 2010), though it stays far above chance.
    Ranking each user's own test items (the rated-items protocol), the
    rating model orders them better than popularity."""
    train, test = ml100k.fold("u1")
    sgd = mfrec.Model("sgd", seed=0).fit(train)
    ranking = mfrec.Model("sgd", seed=0, **RANKING_PARAMS).fit(train)
    pop = mfrec.Model("popular").fit(train)
    n_all, s_all, p_all = (evaluate(m, test, k=10, threshold=4) for m in (ranking, sgd, pop))
    assert n_all["precision"] > p_all["precision"] + 0.1
    assert n_all["ndcg"] > p_all["ndcg"] + 0.1
    # chance: about 5 relevant test items among ~1550 unrated ones per user
    assert s_all["precision"] > 0.08 and p_all["precision"] > 0.15
    assert s_all["coverage"] > 3 * p_all["coverage"]  # popularity lists barely vary
    assert s_all["rmse"] < 1.0
    s_test, p_test = (evaluate(m, test, k=10, threshold=4, candidates="test") for m in (sgd, pop))
    assert s_test["precision"] > p_test["precision"] + 0.03
    assert s_test["ndcg"] > p_test["ndcg"] + 0.03


def test_relevant_labels_must_be_integers():
    """Labels are item indices: string labels get a TypeError naming them."""
    with pytest.raises(TypeError, match="relevant"):
        mfrec.metrics.ranking_metrics(np.zeros((2, 0), np.int64), [[], np.array(["x"])], 1)
