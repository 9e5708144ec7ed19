"""Splitting ratings: a held-out test set (train_test_split) and folds
(KFold, MovieLens's PredefinedFolds); public from mfrec.model_selection."""
from __future__ import annotations

import numbers
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np

from .ratings import Ratings, as_rng


def ratings_of(data) -> Ratings:
    """The ratings of a Ratings or of a MovieLens dataset."""
    ratings = getattr(data, "ratings", data)  # a MovieLens dataset gives its ratings
    if not isinstance(ratings, Ratings):
        raise TypeError(f"data must be a mfrec.Ratings or a MovieLens dataset, got "
                        f"{type(data).__name__}")
    return ratings


def train_test_split(ratings: Ratings, test_size: float = 0.2, seed: Optional[int] = None,
                     by: str = "random") -> Tuple[Ratings, Ratings]:
    """Split ratings into (train, test).

    Parameters
    ----------
    ratings : Ratings
        The ratings to split.
    test_size : float
        The fraction of ratings that goes to test, in (0, 1).
    seed : int, optional
        Seed of the random draws.
    by : {"random", "user", "time", "user_time"}
        "random": a uniformly random `test_size` fraction of all ratings.
        "user": the same fraction of each user's ratings, drawn at random
        (rounded down, and at least one rating of each user stays in
        train), so every test user is known to the model.
        "time": the most recent `test_size` fraction of all ratings (a
        global cut-off in time, as in deployment: train on the past, test
        on the future; ties in time keep the data's order).
        "user_time": each user's most recent ratings, in the proportions of
        "user". The last two need timestamps.

    Returns
    -------
    train, test : Ratings

    Examples
    --------
    >>> data = mfrec.make_low_rank(n_users=300, n_items=200, rank=3, density=0.2, seed=0)
    >>> train, test = mfrec.train_test_split(data.ratings, test_size=0.2, seed=42)
    >>> len(train), len(test)
    (9600, 2400)
    >>> train, test = mfrec.train_test_split(data.ratings, seed=42, by="user")
    >>> set(test.user) <= set(train.user)     # every test user has training ratings
    True
    """
    if not isinstance(ratings, Ratings):
        raise TypeError("ratings must be a mfrec.Ratings")
    if isinstance(test_size, bool) or not isinstance(test_size, numbers.Real) \
            or not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size!r}")
    byes = ("random", "user", "time", "user_time")
    if by not in byes:
        raise ValueError(f"by must be one of {list(byes)}, got {by!r}")
    n = len(ratings)
    if n < 2:
        raise ValueError("need at least two ratings to split")
    if by in ("time", "user_time") and ratings.timestamp is None:
        raise ValueError(f"by={by!r} needs ratings with timestamps")
    rng = as_rng(seed)
    test = np.zeros(n, bool)
    n_test = min(max(1, int(round(test_size * n))), n - 1)  # neither part empty
    if by == "random":
        test[rng.permutation(n)[:n_test]] = True
    elif by == "time":
        test[np.argsort(ratings.timestamp, kind="stable")[n - n_test:]] = True
    else:
        # Within each user, the ratings that go to test come first: a random
        # order, or the most recent first.
        key = rng.random(n) if by == "user" else -ratings.timestamp
        order = np.lexsort((key, ratings.user))
        users = ratings.user[order]
        starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
        counts = np.diff(np.r_[starts, n])
        rank = np.arange(n) - np.repeat(starts, counts)
        n_test = np.minimum((test_size * counts).astype(np.int64), counts - 1)
        test[order] = rank < np.repeat(n_test, counts)
    return ratings[~test], ratings[test]


class KFold:
    """K folds of the ratings: each rating is in the test part of exactly
    one fold.

    Parameters
    ----------
    n_splits : int
        The number of folds (>= 2).
    shuffle : bool
        Assign ratings to folds at random from `seed`; otherwise folds are
        consecutive runs in the data's order.
    seed : int, optional
        Seed of the shuffle.

    Examples
    --------
    >>> data = mfrec.make_low_rank(n_users=300, n_items=200, rank=3, density=0.2, seed=0)
    >>> folds = mfrec.KFold(n_splits=3, seed=0)
    >>> folds.fold_names
    ['fold1', 'fold2', 'fold3']
    >>> [(len(train), len(test)) for train, test in folds.split(data.ratings)]
    [(8000, 4000), (8000, 4000), (8000, 4000)]
    """

    n_splits: int
    shuffle: bool
    seed: Optional[int]

    def __init__(self, n_splits: int = 5, shuffle: bool = True, seed: Optional[int] = None):
        if isinstance(n_splits, bool) or not isinstance(n_splits, numbers.Integral) \
                or n_splits < 2:
            raise ValueError(f"n_splits must be an integer >= 2, got {n_splits!r}")
        if not isinstance(shuffle, (bool, np.bool_)):
            raise ValueError(f"shuffle must be True or False, got {shuffle!r}")
        self.n_splits, self.shuffle, self.seed = int(n_splits), bool(shuffle), seed

    def __repr__(self):
        return f"KFold(n_splits={self.n_splits}, shuffle={self.shuffle}, seed={self.seed!r})"

    @property
    def fold_names(self) -> List[str]:
        return [f"fold{j + 1}" for j in range(self.n_splits)]

    def split(self, ratings: Ratings) -> Iterator[Tuple[Ratings, Ratings]]:
        ratings = ratings_of(ratings)
        n = len(ratings)
        if n < self.n_splits:
            raise ValueError(f"cannot cut {n} ratings into {self.n_splits} folds")
        order = as_rng(self.seed).permutation(n) if self.shuffle else np.arange(n)
        for part in np.array_split(order, self.n_splits):
            test = np.zeros(n, bool)
            test[part] = True
            yield ratings[~test], ratings[test]


class PredefinedFolds:
    """The published splits of a MovieLens dataset, by name.

    Parameters
    ----------
    movielens : MovieLens
        A dataset from :func:`load_movielens`.
    names : sequence of str
        The folds: for 100K the five disjoint folds u1..u5 (the default),
        or ua, ub.

    Notes
    -----
    `split` checks that the data it is given is that dataset's full set of
    ratings.
    """

    def __init__(self, movielens, names: Sequence[str] = ("u1", "u2", "u3", "u4", "u5")):
        if not hasattr(movielens, "fold") or not hasattr(movielens, "fold_names"):
            raise TypeError("movielens must be a mfrec MovieLens dataset (from load_movielens)")
        names = list(names)
        if not names:
            raise ValueError("names must list at least one fold")
        for name in names:
            if name not in movielens.fold_names:
                raise ValueError(f"fold {name!r} is not one of {movielens.name}'s folds "
                                 f"{list(movielens.fold_names)}")
        self.movielens, self.fold_names = movielens, names

    def __repr__(self):
        return f"PredefinedFolds({self.movielens.name!r}, names={self.fold_names})"

    @property
    def n_splits(self) -> int:
        return len(self.fold_names)

    def split(self, ratings: Ratings) -> Iterator[Tuple[Ratings, Ratings]]:
        ratings = ratings_of(ratings)
        for name in self.fold_names:
            train, test = self.movielens.fold(name)
            if len(train) + len(test) != len(ratings):
                raise ValueError(f"fold {name} of MovieLens {self.movielens.name} has "
                                 f"{len(train) + len(test)} ratings but the data has "
                                 f"{len(ratings)}: give the dataset's full ratings")
            yield train, test
