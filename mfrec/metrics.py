"""Accuracy and ranking metrics (sums in C, in double precision).

Ranking metrics at k, for a user with R relevant items and hits at ranks
t = 0..k-1 of their list (binary relevance):
  precision = hits / k            recall = hits / R       hit_rate = (hits > 0)
  ndcg = sum_hits 1/log2(t + 2) / sum_{t < min(k, R)} 1/log2(t + 2)
  map  = sum_hits (hits so far) / (t + 1) / min(k, R)        (MAP@k)
Users with no relevant item are left out of the averages (their metrics are
undefined); coverage is the share of the catalogue that appears in at least
one list.
"""
from __future__ import annotations

import numbers
from typing import Optional, Sequence

import numpy as np

from . import _core
from ._ids import index_of, triplets, unpack
from ._state import check_fitted, reading, threads
from .algorithms import check_threads
from .ratings import as_ids, as_ratings, unmasked

__all__ = ["rmse", "mae", "ranking_metrics", "evaluate"]

RANK_COLUMNS = ("precision", "recall", "ndcg", "ap", "hit")


def _pair(predictions, truth):
    p, t = as_ratings(predictions, "predictions"), as_ratings(truth, "truth")
    if len(p) != len(t):
        raise ValueError(f"predictions and truth must have the same length ({len(p)} != {len(t)})")
    if len(p) == 0:
        raise ValueError("no predictions to score (empty arrays)")
    return _core.rmse_mae(p, t)


def rmse(predictions, truth) -> float:
    """Root mean squared error.

    Examples
    --------
    >>> mfrec.metrics.rmse([3.0, 4.0, 5.0], [4.0, 4.0, 5.0])
    0.5773502691896257
    """
    return _pair(predictions, truth)[0]


def mae(predictions, truth) -> float:
    """Mean absolute error.

    Examples
    --------
    >>> mfrec.metrics.mae([3.0, 4.0, 5.0], [4.0, 4.0, 3.0])
    1.0
    """
    return _pair(predictions, truth)[1]


def ranking_metrics(recommended, relevant: Sequence, n_items: int, n_threads: int = 1) -> dict:
    """Precision, recall, NDCG, MAP and hit rate at k, and coverage.

    Parameters
    ----------
    recommended : array of int, users x k
        Item indices in [0, n_items), best first; -1 marks an empty rank.
        k is the number of columns.
    relevant : sequence of arrays
        One array of relevant item labels (ints >= 0, no repeats) per user;
        labels >= n_items count as relevant items no list can hold.
    n_items : int
        The size of the catalogue (coverage's denominator).
    n_threads : int
        OpenMP threads (0: every core).

    Returns
    -------
    dict
        The means over users that have a relevant item ("precision",
        "recall", "ndcg", "map", "hit_rate"; NaN if there is none),
        "coverage", "users" (how many users the means cover) and
        "per_user": a dict of arrays (precision, recall, ndcg, ap, hit),
        NaN for users with no relevant item.

    Examples
    --------
    Two users, lists of k = 2: the first has its relevant item 1 at rank 2,
    the second misses item 3.

    >>> m = mfrec.metrics.ranking_metrics([[0, 1], [2, -1]], [[1], [3]], n_items=4)
    >>> m["precision"], m["recall"], m["hit_rate"], m["coverage"]
    (0.25, 0.5, 0.5, 0.75)
    >>> m["per_user"]["ndcg"]         # 1 / log2(3) for the first user
    array([0.63092975, 0.        ])
    """
    rec = np.asarray(unmasked(recommended, "recommended"))
    if rec.ndim != 2 or not (np.issubdtype(rec.dtype, np.integer) or rec.size == 0) \
            or rec.dtype == bool:
        raise ValueError("recommended must be a 2-D integer array (users x k)")
    if isinstance(n_items, bool) or not isinstance(n_items, numbers.Integral) \
            or not 1 <= n_items < 2**31:
        raise ValueError(f"ranking_metrics: need n_items >= 1 (an integer below 2**31), "
                         f"got {n_items!r}")
    check_threads(n_threads)
    if rec.size and (rec.min() < -1 or rec.max() >= n_items):  # before the int32 cast
        raise IndexError("recommended: an item is outside [-1, n_items)")
    if len(relevant) != rec.shape[0]:
        raise ValueError(f"relevant must hold one array per row of recommended "
                         f"({len(relevant)} != {rec.shape[0]})")
    # labels are indices, not raw ids: integers only
    lists = [as_ids(np.ravel(r), "relevant", strings=False) for r in relevant]
    lengths = np.array([len(r) for r in lists], np.int64)
    labels = np.concatenate(lists) if lists else np.zeros(0, np.int64)
    if len(labels) and (labels.min() < 0 or labels.max() >= 2**31 - 1):
        raise ValueError("relevant labels must be integers in [0, 2**31 - 1)")
    rows = np.repeat(np.arange(len(lists), dtype=np.int32), lengths)
    n_labels = int(labels.max()) + 1 if len(labels) else 1
    try:
        indptr, indices, _ = _core.build_csr(rows, labels.astype(np.int32), None,
                                             len(lists), n_labels)
    except ValueError:
        raise ValueError("relevant: a user's array repeats a label") from None
    rec = rec.astype(np.int32) if rec.size else np.zeros(rec.shape, np.int32)  # no dtype warning
    return _ranking(rec, indptr, indices, n_items, n_threads)


def _ranking(rec, indptr, indices, n_items, n_threads):
    means, per_user = _core.ranking_metrics(rec, indptr, indices, n_items, n_threads)
    means["users"] = means.pop("n_evaluated")
    means["per_user"] = {name: per_user[:, j] for j, name in enumerate(RANK_COLUMNS)}
    return means


def evaluate(model, test, k: int = 10, threshold: float = 4.0, candidates: str = "all",
             n_threads: Optional[int] = None) -> dict:
    """Ranking metrics at k and RMSE/MAE of a fitted model on test ratings.

    A test item is relevant to its user when its rating is >= threshold.
    Every test user known to the model gets a list of k items:
    candidates="all" ranks every item of the model the user did not rate in
    training (the top-N protocol: model.recommend(users, k)); "test" ranks
    only the user's own test items that the model knows (the rated-items
    protocol, which asks whether the model orders a user's items well).
    Relevant items the model does not know count in recall's denominator but
    can never be hit. Users not in the model are skipped; users with no
    relevant item are left out of the averages (see the module docstring).

    Parameters
    ----------
    model : Model
        A fitted model.
    test : Ratings or tuple
        The test ratings, or (users, items, ratings).
    k : int
        The length of the lists.
    threshold : float
        The rating from which a test item is relevant.
    candidates : {"all", "test"}
        What each list ranks (see above).
    n_threads : int, optional
        Default: the model's n_threads.

    Returns
    -------
    dict
        precision, recall, ndcg, map, hit_rate, coverage (at k), rmse and
        mae (over all test ratings, model.score), users (how many users the
        averages cover), k and threshold.

    Examples
    --------
    >>> data = mfrec.make_low_rank(n_users=300, n_items=200, rank=3, density=0.2, seed=0)
    >>> train, test = mfrec.train_test_split(data.ratings, test_size=0.2, seed=42)
    >>> model = mfrec.Model("als", factors=3, regularization=0.01, seed=0).fit(train)
    >>> popular = mfrec.Model("popular").fit(train)
    >>> mine = mfrec.metrics.evaluate(model, test, k=10, threshold=4.0)
    >>> base = mfrec.metrics.evaluate(popular, test, k=10, threshold=4.0)
    >>> sorted(mine)  # doctest: +NORMALIZE_WHITESPACE
    ['coverage', 'hit_rate', 'k', 'mae', 'map', 'ndcg', 'precision', 'recall',
     'rmse', 'threshold', 'users']
    >>> mine["ndcg"] > base["ndcg"]    # the planted model ranks better than popularity
    True
    """
    check_fitted(model)
    users, items, ratings = triplets(*unpack(test), "test")
    if len(users) == 0:
        raise ValueError("test: no ratings given (empty arrays)")
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) \
            or not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    if candidates not in ("all", "test"):
        raise ValueError(f"candidates must be 'all' or 'test', got {candidates!r}")
    order = np.lexsort((items, users))
    u, i = users[order], items[order]  # compared, not subtracted: ids may be strings
    if np.any((u[1:] == u[:-1]) & (i[1:] == i[:-1])):
        raise ValueError("test: a (user, item) pair occurs more than once")
    n_threads = threads(model, n_threads)
    with reading(model):
        n_items = len(model.item_ids)
        uidx = index_of(users, model.user_ids, "test: users")
        iidx = index_of(items, model.item_ids, "test: items")
        known = uidx >= 0
        eval_users = np.unique(uidx[known])
        row = np.searchsorted(eval_users, uidx[known]).astype(np.int32)
        # labels: the model's item index, or n_items + j for the j-th unknown item
        label = iidx[known].astype(np.int64)
        unknown = label < 0
        label[unknown] = n_items + np.unique(items[known][unknown], return_inverse=True)[1]
        rel = ratings[known] >= np.float64(threshold)  # no cast of threshold to float32
        indptr, indices, _ = _core.build_csr(row[rel], label[rel].astype(np.int32), None,
                                             len(eval_users), int(label.max(initial=0)) + 1)
        # Ranks past max(n_items, most relevant items of a user) are padding
        # that changes only precision's denominator: rank that far, rescale.
        depth = min(k, max(n_items, int(np.diff(indptr).max(initial=0))))
        if candidates == "all":
            rec = _core.recommend(model, eval_users, min(k, n_items), exclude_seen=True,
                                  pool=None, n_threads=n_threads)[0]
        else:
            rec = _rank_test_items(model, eval_users, row, iidx[known], depth, n_threads)
        if rec.shape[1] < depth:
            rec = np.pad(rec, ((0, 0), (0, depth - rec.shape[1])), constant_values=-1)
        result = _ranking(rec, indptr, indices, n_items, n_threads)
        result["precision"] *= depth / k
        del result["per_user"]
        result.update(model.score(users, items, ratings))
    result.update(k=int(k), threshold=float(threshold))
    return result


def _rank_test_items(model, eval_users, row, iidx, k, n_threads):
    """Each user's known test items ordered by score (ties: lower index),
    the first k as a (users x k) array padded with -1."""
    ok = iidx >= 0
    row, iidx = row[ok], iidx[ok]
    scores = model._predict(eval_users[row], iidx, n_threads)
    order = np.lexsort((iidx, -scores, row))
    row, iidx = row[order], iidx[order]
    start = np.searchsorted(row, np.arange(len(eval_users)))
    rank = np.arange(len(row)) - start[row]
    rec = np.full((len(eval_users), k), -1, np.int32)
    keep = rank < k
    rec[row[keep], rank[keep]] = iidx[keep]
    return rec
