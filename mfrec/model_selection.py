"""Splitting ratings for evaluation."""
from __future__ import annotations

import numbers
from typing import Optional, Tuple

import numpy as np

from .ratings import Ratings, as_rng

__all__ = ["train_test_split"]


def train_test_split(ratings: Ratings, test_size: float = 0.2, seed: Optional[int] = None,
                     by: str = "random") -> Tuple[Ratings, Ratings]:
    """Split ratings into (train, test).

    by="random": a uniformly random `test_size` fraction of all ratings.
    by="user": the same fraction of each user's ratings (rounded down, and
    at least one rating of each user stays in train), so every test user
    is known to the model.
    """
    if not isinstance(ratings, Ratings):
        raise TypeError("ratings must be a mfrec.Ratings")
    if isinstance(test_size, bool) or not isinstance(test_size, numbers.Real) \
            or not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size!r}")
    n = len(ratings)
    if n < 2:
        raise ValueError("need at least two ratings to split")
    rng = as_rng(seed)
    if by == "random":
        perm = rng.permutation(n)
        n_test = max(1, int(round(test_size * n)))
        test = np.zeros(n, bool)
        test[perm[:n_test]] = True
    elif by == "user":
        order = np.lexsort((rng.random(n), ratings.user))
        users = ratings.user[order]
        starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
        counts = np.diff(np.r_[starts, n])
        rank = np.arange(n) - np.repeat(starts, counts)
        n_test = np.minimum((test_size * counts).astype(np.int64), counts - 1)
        test = np.zeros(n, bool)
        test[order] = rank < np.repeat(n_test, counts)
    else:
        raise ValueError(f"by must be 'random' or 'user', got {by!r}")
    return ratings[~test], ratings[test]
