"""Splitting ratings, cross-validation and hyper-parameter search.

Folds and search candidates are independent fits, so they run concurrently
on Python threads (``n_jobs``): the C kernels release the GIL. Each fit gets
its share of the model's ``n_threads`` (``max(1, n_threads // n_jobs)``; 0
means every core), so ``n_jobs`` concurrent fits together use the threads
one fit would have used (one each at least) and do not oversubscribe the
cores. A fit's figures do not depend on which
thread ran it: with a fixed ``seed`` a fold gives the same numbers as a
separate ``Model.fit`` with the same parameters and that thread count.
"""
from __future__ import annotations

import itertools
import numbers
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple, cast

import numpy as np

from .metrics import evaluate
from .ratings import Ratings, as_rng

__all__ = ["train_test_split", "KFold", "PredefinedFolds", "cross_validate", "GridSearch",
           "RandomSearch", "uniform", "log_uniform"]


# ---- splits ------------------------------------------------------------------

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
        ratings = _as_ratings(ratings)
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
        ratings = _as_ratings(ratings)
        for name in self.fold_names:
            train, test = self.movielens.fold(name)
            if len(train) + len(test) != len(ratings):
                raise ValueError(f"fold {name} of MovieLens {self.movielens.name} has "
                                 f"{len(train) + len(test)} ratings but the data has "
                                 f"{len(ratings)}: give the dataset's full ratings")
            yield train, test


# ---- metrics -----------------------------------------------------------------

#: metric -> True if greater is better. Ranking metrics take "@k" and come
#: from mfrec.metrics.evaluate (test ratings >= threshold are relevant).
ERROR_METRICS = {"rmse": False, "mae": False}
RANKING_METRICS = {"precision": True, "recall": True, "ndcg": True, "map": True,
                   "hit_rate": True, "coverage": True}


def _parse_metric(name) -> Tuple[str, Optional[int]]:
    """("rmse", None) or ("ndcg", 10) for "ndcg@10"; ValueError if unknown."""
    if not isinstance(name, str):
        raise TypeError(f"a metric name must be a str, got {name!r}")
    base, at, k = name.partition("@")
    if not at and base in ERROR_METRICS:
        return base, None
    if at and base in RANKING_METRICS and k.isdigit() and int(k) >= 1:
        return base, int(k)
    known = sorted(ERROR_METRICS) + [f"{m}@K" for m in sorted(RANKING_METRICS)]
    raise ValueError(f"unknown metric {name!r}; the metrics are {known} (K an integer >= 1)")


def _check_threshold(threshold: float) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) \
            or not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    return float(threshold)


def _check_metrics(metrics) -> List[str]:
    if isinstance(metrics, str):
        metrics = (metrics,)
    metrics = list(metrics)
    if not metrics:
        raise ValueError("metrics must name at least one metric")
    for m in metrics:
        _parse_metric(m)
    if len(set(metrics)) != len(metrics):
        raise ValueError(f"metrics lists a metric twice: {metrics}")
    return metrics


def greater_is_better(metric: str) -> bool:
    base, k = _parse_metric(metric)
    return (RANKING_METRICS if k else ERROR_METRICS)[base]


def score(model, test: Ratings, metrics: Sequence[str],
          threshold: float = 4.0) -> Dict[str, float]:
    """The named metrics of a fitted model on test ratings: one
    mfrec.metrics.evaluate per list length k, model.score for rmse/mae."""
    parsed = {m: _parse_metric(m) for m in metrics}
    found: Dict[Optional[int], dict] = {}
    for base, k in parsed.values():
        if k not in found:
            found[k] = model.score(test) if k is None else \
                evaluate(model, test, k=k, threshold=threshold)
    return {m: float(found[k][base]) for m, (base, k) in parsed.items()}


# ---- running fits concurrently -----------------------------------------------

def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _check_n_jobs(n_jobs: int) -> int:
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) \
            or not (n_jobs >= 1 or n_jobs == -1):
        raise ValueError(f"n_jobs must be an integer >= 1, or -1 for every core; got {n_jobs!r}")
    return _available_cores() if n_jobs == -1 else int(n_jobs)


def _threads_per_fit(params: dict, n_jobs: int, n_tasks: int) -> int:
    """A fit's share of the model's n_threads (0 = every core)."""
    total = params.get("n_threads", 1) or _available_cores()
    return max(1, total // max(1, min(n_jobs, n_tasks)))


class _Cancelled(Exception):
    """A task stopped because its search was interrupted or failed."""


def _run(tasks: List[Callable[[threading.Event], dict]], n_jobs: int, verbose: bool,
         label: str) -> List[dict]:
    """Run the tasks on n_jobs threads; results in task order. Progress
    lines name each finished task (its 'label' entry). On an error or
    Ctrl-C (which only the main thread receives) the tasks not started are
    cancelled and the running fits stop after their current iteration: each
    task gets an event, set then, that its fit checks after each iteration."""
    results: List[Optional[dict]] = [None] * len(tasks)
    t0 = time.perf_counter()
    cancel = threading.Event()
    pool = ThreadPoolExecutor(max_workers=max(1, min(n_jobs, len(tasks))))
    try:
        futures = {pool.submit(task, cancel): j for j, task in enumerate(tasks)}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                results[futures[f]] = row = f.result()  # raises the task's error
                if verbose:
                    shown = "  ".join(f"{k}={v:.4f}" for k, v in row["scores"].items())
                    print(f"[{label}] {len(futures) - len(pending)}/{len(tasks)} "
                          f"{row['label']}: {shown}  fit {row['fit_time']:.2f} s  "
                          f"({time.perf_counter() - t0:.1f} s elapsed)", flush=True)
    except BaseException:
        cancel.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return cast(List[dict], results)  # every task filled its entry


def _fit_and_score(model_type, params: dict, train: Ratings, test: Ratings, metrics,
                   threshold: float, fit_params: dict, label: str, keep_model: bool,
                   cancel: threading.Event) -> dict:
    model = model_type(**params)
    user_callback = fit_params.get("callback")

    def callback(fitted, row):
        if cancel.is_set():
            raise _Cancelled(label)
        return None if user_callback is None else user_callback(fitted, row)

    if user_callback is None or callable(user_callback):  # else fit names the error
        fit_params = {**fit_params, "callback": callback}
    t0 = time.perf_counter()
    model.fit(train, **fit_params)
    t1 = time.perf_counter()
    if cancel.is_set():
        raise _Cancelled(label)
    scores = score(model, test, metrics, threshold)
    return {"label": label, "scores": scores, "fit_time": t1 - t0,
            "test_time": time.perf_counter() - t1, "model": model if keep_model else None}


def _as_ratings(data) -> Ratings:
    ratings = getattr(data, "ratings", data)  # a MovieLens dataset gives its ratings
    if not isinstance(ratings, Ratings):
        raise TypeError(f"data must be a mfrec.Ratings or a MovieLens dataset, got "
                        f"{type(data).__name__}")
    return ratings


def _check_cv(cv):
    if isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
        return KFold(int(cv), shuffle=True, seed=0)
    if not (hasattr(cv, "split") and hasattr(cv, "fold_names")):
        raise TypeError(f"cv must be an int, KFold or PredefinedFolds, got {cv!r}")
    return cv


def _check_model(model):
    from .model import Model

    if not isinstance(model, Model):
        raise TypeError(f"model must be a mfrec.Model, got {type(model).__name__}")


def _fold_tasks(model, params, folds, metrics, threshold, fit_params, prefix="",
                keep_models=False):
    """One task per fold, fitting a new model of `params` (n_threads set)."""
    return [lambda cancel, train=train, test=test, name=name: _fit_and_score(
                type(model), params, train, test, metrics, threshold, fit_params, prefix + name,
                keep_models, cancel)
            for name, (train, test) in folds]


def _summary(rows: List[dict], metrics) -> Tuple[dict, dict]:
    """Mean and standard deviation over folds of each metric and time."""
    table = {m: [r["scores"][m] for r in rows] for m in metrics}
    table.update({t: [r[t] for r in rows] for t in ("fit_time", "test_time")})
    mean = {k: float(np.mean(v)) for k, v in table.items()}
    std = {k: float(np.std(v)) for k, v in table.items()}
    return mean, std


def cross_validate(model, data, cv=5, metrics: Sequence[str] = ("rmse", "mae"), *,
                   n_jobs: int = 1, threshold: float = 4.0, fit_params: Optional[dict] = None,
                   return_models: bool = False, verbose: bool = False) -> dict:
    """Fit a copy of `model` on each fold's training part and score it on
    the fold's test part.

    Parameters
    ----------
    model : Model
        An unfitted (or fitted: it is not touched) model; its parameters are
        used. Give it a seed for repeatable figures.
    data : Ratings or MovieLens
        The ratings (of a MovieLens dataset: its ratings).
    cv : KFold, PredefinedFolds or int
        The folds; an int k means ``KFold(k, shuffle=True, seed=0)``.
    metrics : sequence of str
        Names among "rmse", "mae", and the ranking metrics "ndcg@10",
        "precision@10", ... (relevant: test ratings >= threshold).
    n_jobs : int
        Folds fitted at once (threads; -1: one per core). Each fit runs
        with max(1, n_threads // n_jobs) threads.
    threshold : float
        The rating from which a test item is relevant (ranking metrics).
    fit_params : dict, optional
        Extra keyword arguments for every fit (e.g. item_features).
    return_models : bool
        Also return the fitted models.
    verbose : bool
        A progress line as each fold finishes.

    Returns
    -------
    dict
        "folds": one dict per fold (fold name, each metric, fit_time,
        test_time; ``pandas.DataFrame(result["folds"])`` shows them),
        "mean" and "std" over the folds, and "models" if asked.

    Examples
    --------
    Planted rank-3 ratings with noise of standard deviation 0.1:

    >>> data = mfrec.make_low_rank(n_users=300, n_items=200, rank=3, density=0.2, seed=0)
    >>> model = mfrec.Model("als", factors=3, regularization=0.01, seed=0)
    >>> cv = mfrec.cross_validate(model, data.ratings, cv=3, metrics=["rmse", "mae"])
    >>> [row["fold"] for row in cv["folds"]]
    ['fold1', 'fold2', 'fold3']
    >>> round(cv["mean"]["rmse"], 2)
    0.12
    """
    _check_model(model)
    ratings, cv, metrics = _as_ratings(data), _check_cv(cv), _check_metrics(metrics)
    n_jobs, threshold = _check_n_jobs(n_jobs), _check_threshold(threshold)
    folds = list(zip(cv.fold_names, cv.split(ratings)))
    params = model.get_params()
    params["n_threads"] = _threads_per_fit(params, n_jobs, len(folds))
    tasks = _fold_tasks(model, params, folds, metrics, threshold, dict(fit_params or {}),
                        keep_models=return_models)
    rows = _run(tasks, n_jobs, verbose, "cross_validate")
    mean, std = _summary(rows, metrics)
    result = {"folds": [{"fold": r["label"], **r["scores"], "fit_time": r["fit_time"],
                         "test_time": r["test_time"]} for r in rows],
              "mean": mean, "std": std}
    if return_models:
        result["models"] = [r["model"] for r in rows]
    return result


# ---- hyper-parameter search --------------------------------------------------

class uniform:
    """Uniform on [low, high), for :class:`~mfrec.RandomSearch`.

    Examples
    --------
    >>> from mfrec.model_selection import uniform
    >>> uniform(0.0, 0.5).rvs(np.random.default_rng(0)) < 0.5
    True
    """

    def __init__(self, low: float, high: float):
        if not (np.isfinite(low) and np.isfinite(high) and low < high):
            raise ValueError(f"need finite low < high, got {low!r}, {high!r}")
        self.low, self.high = float(low), float(high)

    def rvs(self, random_state: np.random.Generator) -> float:
        return float(random_state.uniform(self.low, self.high))

    def __repr__(self):
        return f"{type(self).__name__}({self.low!r}, {self.high!r})"


class log_uniform(uniform):
    """Log-uniform on [low, high), 0 < low < high: every decade equally likely.

    Examples
    --------
    >>> from mfrec.model_selection import log_uniform
    >>> draws = [log_uniform(1e-3, 1e3).rvs(np.random.default_rng(s)) for s in range(1000)]
    >>> sum(d < 1 for d in draws)          # half of the six decades lie below 1
    484
    """

    def __init__(self, low: float, high: float):
        super().__init__(low, high)
        if not low > 0:
            raise ValueError(f"log_uniform needs low > 0, got {low!r}")

    def rvs(self, random_state: np.random.Generator) -> float:
        return float(np.exp(random_state.uniform(np.log(self.low), np.log(self.high))))


def _plain(value):
    """NumPy scalars as Python numbers (model parameters go into JSON)."""
    return value.item() if isinstance(value, np.generic) else value


class _Search:
    """What GridSearch and RandomSearch share: checking the candidates,
    fitting every (candidate, fold) pair on n_jobs threads, ranking."""

    def __init__(self, model, cv=5, metric: str = "rmse", metrics: Optional[Sequence[str]] = None,
                 n_jobs: int = 1, refit: bool = True, threshold: float = 4.0,
                 verbose: bool = False):
        _check_model(model)
        self.model, self.cv = model, _check_cv(cv)
        _parse_metric(metric)
        self.metric = metric
        shown = _check_metrics(metrics) if metrics is not None else [metric]
        self.metrics = shown if metric in shown else [metric] + shown
        self.n_jobs, self.refit = _check_n_jobs(n_jobs), bool(refit)
        self.threshold, self.verbose = _check_threshold(threshold), verbose
        self.results: List[dict] = []
        self.best_params = self.best_score = self.best_model = self.best_index = None
        self.n_fits = 0
        self.search_time = None

    def _check_param_names(self, names):
        allowed = set(self.model.get_params()) - {"algorithm"}
        for name in names:
            if name not in allowed:
                raise ValueError(f"{name!r} is not a parameter of the {self.model.algorithm!r} "
                                 f"model; it takes {sorted(allowed)}")

    def _candidates(self) -> List[dict]:
        raise NotImplementedError

    def fit(self, data, **fit_params):
        """Cross-validate every candidate on `data` (Ratings or a MovieLens
        dataset); `fit_params` go to every fit (e.g. item_features=...).
        With refit=True, best_model is then fitted on all of `data`."""
        ratings = _as_ratings(data)
        base = self.model.get_params()
        candidates = self._candidates()
        for c in candidates:  # every candidate is a valid model before any fit
            try:
                type(self.model)(**{**base, **c})
            except (TypeError, ValueError) as e:
                raise ValueError(f"candidate {c}: {e}") from None
        folds = list(zip(self.cv.fold_names, self.cv.split(ratings)))
        n_tasks = len(candidates) * len(folds)
        tasks = []
        for j, c in enumerate(candidates):
            params = {**base, **c}
            params["n_threads"] = _threads_per_fit(params, self.n_jobs, n_tasks)
            tasks += _fold_tasks(self.model, params, folds, self.metrics, self.threshold,
                                 fit_params, prefix=f"candidate {j + 1} ")
        t0 = time.perf_counter()
        rows = _run(tasks, self.n_jobs, self.verbose, type(self).__name__)
        self.results = []
        for j, c in enumerate(candidates):
            mean, std = _summary(rows[j * len(folds):(j + 1) * len(folds)], self.metrics)
            row = dict(c)
            for m in self.metrics:
                row[m], row[m + "_std"] = mean[m], std[m]
            row["fit_time"], row["test_time"] = mean["fit_time"], mean["test_time"]
            self.results.append(row)
        sign = -1.0 if greater_is_better(self.metric) else 1.0
        order = sorted(range(len(candidates)), key=lambda j: sign * self.results[j][self.metric])
        for rank, j in enumerate(order, 1):
            self.results[j]["rank"] = rank
        self.best_index = order[0]
        self.best_params = dict(candidates[self.best_index])
        self.best_score = self.results[self.best_index][self.metric]
        self.n_fits = n_tasks
        self.best_model = None
        if self.refit:
            self.best_model = type(self.model)(**{**base, **self.best_params})
            self.best_model.fit(ratings, **fit_params)
        self.search_time = time.perf_counter() - t0
        return self


class GridSearch(_Search):
    """Cross-validated search over every combination of a parameter grid.

    Parameters
    ----------
    model : Model
        The model whose parameters are the starting point.
    param_grid : dict
        {parameter: list of values}; the candidates are all combinations
        (in the grid's order).
    cv, n_jobs, threshold
        As in :func:`cross_validate`; all (candidate, fold) fits share the
        n_jobs threads.
    metric : str
        The metric that chooses (lower is better for rmse/mae, higher for
        ranking metrics).
    metrics : sequence of str, optional
        More metrics to report.
    refit : bool
        Fit best_model on all the data with best_params.
    verbose : bool
        A progress line as each fit finishes.

    Attributes
    ----------
    results : list of dict
        After fit: one row per candidate (its parameters, the mean and std
        of each metric, fit_time, test_time and its rank);
        ``pandas.DataFrame(search.results)`` shows them.
    best_params, best_score, best_index, best_model
        The winning candidate, its score, its row in results, and (with
        refit) the model fitted on all the data.
    n_fits, search_time
        The number of fits and the search's wall time in seconds.

    Examples
    --------
    >>> data = mfrec.make_low_rank(n_users=300, n_items=200, rank=3, density=0.2, seed=0)
    >>> search = mfrec.GridSearch(mfrec.Model("als", factors=3, seed=0),
    ...                           {"regularization": [0.01, 0.1, 1.0]}, cv=3, n_jobs=2)
    >>> search.fit(data.ratings).best_params
    {'regularization': 0.01}
    >>> [row["rank"] for row in search.results]
    [1, 2, 3]
    >>> search.n_fits, search.best_model.is_fitted
    (9, True)
    """

    def __init__(self, model, param_grid: dict, cv=5, metric: str = "rmse",
                 metrics: Optional[Sequence[str]] = None, n_jobs: int = 1, refit: bool = True,
                 threshold: float = 4.0, verbose: bool = False):
        super().__init__(model, cv, metric, metrics, n_jobs, refit, threshold, verbose)
        if not isinstance(param_grid, dict):
            raise TypeError(f"param_grid must be a dict of parameter -> list of values, "
                            f"got {type(param_grid).__name__}")
        if not param_grid:
            raise ValueError("param_grid is empty: give at least one parameter and its values")
        self._check_param_names(param_grid)
        grid = {}
        for name, values in param_grid.items():
            if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__len__"):
                raise TypeError(f"param_grid[{name!r}] must be a list of values, got {values!r}")
            if len(values) == 0:
                raise ValueError(f"param_grid[{name!r}] is empty: give at least one value")
            grid[name] = [_plain(v) for v in values]
        self.param_grid = grid

    def _candidates(self):
        names = list(self.param_grid)
        return [dict(zip(names, combo)) for combo in itertools.product(*self.param_grid.values())]


class RandomSearch(_Search):
    """Cross-validated search over `n_iter` candidates drawn at random.

    Parameters
    ----------
    model : Model
        The model whose parameters are the starting point.
    param_distributions : dict
        {parameter: a list of values (one drawn uniformly) or a
        distribution with an ``rvs(random_state)`` method, such as
        :class:`~mfrec.model_selection.uniform`,
        :class:`~mfrec.model_selection.log_uniform` or a scipy.stats one}.
    n_iter : int
        The number of candidates to draw.
    seed : int, optional
        The seed of the draws.
    cv, metric, metrics, n_jobs, refit, threshold, verbose
        As in :class:`GridSearch`, which also lists the attributes.

    Examples
    --------
    >>> from mfrec.model_selection import log_uniform
    >>> data = mfrec.make_low_rank(n_users=300, n_items=200, rank=3, density=0.2, seed=0)
    >>> search = mfrec.RandomSearch(mfrec.Model("als", factors=3, seed=0),
    ...                             {"regularization": log_uniform(1e-3, 1.0)},
    ...                             n_iter=4, cv=3, seed=0)
    >>> search.fit(data.ratings).best_params["regularization"] < 0.01
    True
    >>> search.best_score < 0.15          # the planted noise is 0.1
    True
    """

    def __init__(self, model, param_distributions: dict, n_iter: int = 10, cv=5,
                 metric: str = "rmse", metrics: Optional[Sequence[str]] = None,
                 n_jobs: int = 1, refit: bool = True, threshold: float = 4.0,
                 seed: Optional[int] = None, verbose: bool = False):
        super().__init__(model, cv, metric, metrics, n_jobs, refit, threshold, verbose)
        if not isinstance(param_distributions, dict):
            raise TypeError("param_distributions must be a dict of parameter -> list of "
                            f"values or distribution, got {type(param_distributions).__name__}")
        if not param_distributions:
            raise ValueError("param_distributions is empty: give at least one parameter")
        self._check_param_names(param_distributions)
        for name, d in param_distributions.items():
            if hasattr(d, "rvs"):
                continue
            if isinstance(d, (str, bytes, dict)) or not hasattr(d, "__len__"):
                raise TypeError(f"param_distributions[{name!r}] must be a list of values or "
                                f"have an rvs(random_state) method, got {d!r}")
            if len(d) == 0:
                raise ValueError(f"param_distributions[{name!r}] is empty")
        if isinstance(n_iter, bool) or not isinstance(n_iter, numbers.Integral) or n_iter < 1:
            raise ValueError(f"n_iter must be an integer >= 1, got {n_iter!r}")
        self.param_distributions, self.n_iter, self.seed = param_distributions, int(n_iter), seed

    def _candidates(self):
        rng = as_rng(self.seed)
        out = []
        for _ in range(self.n_iter):
            c = {}
            for name, d in self.param_distributions.items():
                c[name] = _plain(d.rvs(random_state=rng) if hasattr(d, "rvs")
                                 else d[int(rng.integers(len(d)))])
            out.append(c)
        return out
