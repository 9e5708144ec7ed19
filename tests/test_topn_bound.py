"""Top-N lists of big batches (256+ users, 2048+ items: csrc/core/topn.c
orders the items by factor norm and stops a user's scan once no item left
can beat its n-th best):
the same lists as a plain NumPy ranking of every item, on shapes that are
not multiples of the blocks and tiles, with long-tailed item norms (so the
scan does stop early), ties, biases, candidate pools, and users with few or
no unseen items."""
import numpy as np
import pytest

import mfrec
from references import full_scores, rank

SCORE_TOL = 1e-5


def model_of(n_users, n_items, k, biases, seed):
    """A fitted model whose factors are then drawn with long-tailed item
    norms; user 0 has seen every item, user 1 all but 3, the others ~2 %."""
    rng = np.random.default_rng(seed)
    cells = [np.c_[np.zeros(n_items, int), np.arange(n_items)],
             np.c_[np.ones(n_items - 3, int), rng.permutation(n_items)[:n_items - 3]]]
    for u in range(2, n_users):
        cells.append(np.c_[np.full(1 + n_items // 50, u), rng.choice(n_items, 1 + n_items // 50,
                                                                      replace=False)])
    cells = np.vstack(cells)
    model = mfrec.Model("sgd", factors=k, epochs=1, biases=biases, seed=seed)
    model.fit(cells[:, 0] * 5 + 1, cells[:, 1] * 3 + 2, np.ones(len(cells), np.float32))
    model.user_factors = rng.standard_normal((n_users, k)).astype(np.float32)
    Q = rng.standard_normal((n_items, k)) * np.exp(rng.normal(0, 1.5, (n_items, 1)))
    Q[7] = 0.0  # no reach: the bias alone scores it
    model.item_factors = Q.astype(np.float32)
    if biases:
        model.user_bias = rng.standard_normal(n_users).astype(np.float32)
        item_bias = rng.standard_normal(n_items)
        item_bias[7] = 1e4
        model.item_bias = item_bias.astype(np.float32)
        model.global_mean = 3.5
    return model


def reference_lists(model, n, items=None):
    """(ids, scores) of every user: the n best unseen items (of `items`, raw
    ids, when given) by float64 score, ties to the lower id (a stable sort
    of all the scores: references.rank for every row at once)."""
    S = full_scores(model)
    if items is not None:
        S[:, ~np.isin(model.item_ids, items)] = -np.inf
    users = np.repeat(np.arange(len(S)), np.diff(model.seen_indptr))
    S[users, model.seen_indices] = -np.inf
    top = np.argsort(-S, axis=1, kind="stable")[:, :n]
    scores = np.take_along_axis(S, top, 1)
    listed = np.isfinite(scores)
    return np.where(listed, model.item_ids[top], -1), np.where(listed, scores, np.nan)


def check_lists(model, n, items=None, n_threads=2):
    ids, scores = model.recommend_all(n, items=items, n_threads=n_threads)
    ref_ids, ref_scores = reference_lists(model, ids.shape[1], items)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_array_equal(np.isnan(scores), np.isnan(ref_scores))
    assert np.nanmax(np.abs(scores - ref_scores)) <= SCORE_TOL * max(1, np.nanmax(abs(ref_scores)))
    return ids


@pytest.mark.parametrize("n_users,n_items,k,biases", [
    (700, 7001, 2, True), (700, 7001, 7, False), (2600, 2563, 1, False), (2600, 2563, 3, True)])
def test_big_batches_match_the_full_ranking(n_users, n_items, k, biases):
    model = model_of(n_users, n_items, k, biases, seed=k + n_users)
    for n in (1, 10):
        ids = check_lists(model, n)
        assert np.all(ids[0] == -1)                       # everything seen
        assert np.sum(ids[1] >= 0) == min(n, 3)           # 3 unseen items left
    if biases:  # the item without factors (no reach) but the largest bias comes first
        assert np.mean(ids[2:, 0] == model.item_ids[7]) > 0.9


def test_big_batches_with_a_candidate_pool():
    model = model_of(600, 5001, 5, True, seed=3)
    pool = np.random.default_rng(0).choice(model.item_ids, 3000, replace=False)
    check_lists(model, 10, items=pool)


def test_nan_factors_are_never_listed_and_do_not_stop_the_scan():
    model = model_of(500, 2053, 4, False, seed=4)
    Q = model.item_factors.copy()
    Q[11] = np.nan
    model.item_factors = Q
    ids = check_lists(model, 10)
    assert not np.isin(model.item_ids[11], ids)


def test_big_batches_do_not_depend_on_threads_or_on_batching():
    model = model_of(900, 2500, 6, True, seed=5)
    ids1, s1 = model.recommend_all(10, n_threads=1)
    ids3, s3 = model.recommend_all(10, n_threads=3)
    np.testing.assert_array_equal(ids1, ids3)
    np.testing.assert_array_equal(s1, s3)
    # a small batch (targets by index, every tile scored) lists the same
    few, few_s = model.recommend(model.user_ids[100:140], n=10)
    np.testing.assert_array_equal(few, ids1[100:140])
    np.testing.assert_allclose(few_s, s1[100:140], rtol=1e-6)



def test_a_scan_goes_on_while_a_later_item_can_win():
    """Every user along d; 1024 decoys of norm ~2 at 60 degrees to d (score
    ~|x|) come first by norm (whole tiles of them) and fill the lists, then
    20 items along d of norm ~1.05 beat them: a bound any tighter than
    |x| |y| would stop the scans before them."""
    rng = np.random.default_rng(7)
    model = model_of(400, 2100, 4, False, seed=7)
    d, e = np.eye(4)[0], np.eye(4)[1]
    model.user_factors = (rng.uniform(0.5, 2, (400, 1)) * d).astype(np.float32)
    Q = rng.standard_normal((2100, 4)) * 0.1
    Q[:1024] = (2 + rng.uniform(0, 0.01, (1024, 1))) * (0.5 * d + np.sqrt(0.75) * e)
    Q[1024:1044] = (1.05 + rng.uniform(0, 0.01, (20, 1))) * d
    model.item_factors = Q.astype(np.float32)
    ids = check_lists(model, 10)
    assert np.mean(np.isin(ids[2:], model.item_ids[1024:1044])) > 0.9


def test_ties_go_to_the_lower_item_id_in_any_scan_order():
    """Small integer factors and biases: many exactly equal scores (exact in
    float32 too), met in the order of the items' norms, not of their ids."""
    model = model_of(300, 2100, 3, True, seed=8)
    rng = np.random.default_rng(8)
    model.user_factors = rng.integers(-1, 2, (300, 3)).astype(np.float32)
    model.item_factors = (rng.integers(-2, 3, (2100, 3))).astype(np.float32)
    model.user_bias = np.zeros(300, np.float32)
    model.item_bias = rng.integers(0, 3, 2100).astype(np.float32)
    ids, scores = model.recommend_all(25)
    ref_ids, ref_scores = reference_lists(model, 25)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_array_equal(scores, ref_scores)
    assert np.sum(np.diff(scores[2:], axis=1) == 0) > 1000  # the case is really about ties
