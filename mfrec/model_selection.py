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
import time
from typing import List, Optional, Sequence

import numpy as np

from ._parallel import check_n_jobs, fold_tasks, run, summary, threads_per_fit
from ._progress import check_progress
from ._scoring import check_metrics, check_threshold, greater_is_better, parse_metric
from ._splits import KFold, PredefinedFolds, ratings_of, train_test_split
from .model import Model
from .ratings import as_rng

__all__ = ["train_test_split", "KFold", "PredefinedFolds", "cross_validate", "GridSearch",
           "RandomSearch", "uniform", "log_uniform"]


def _check_cv(cv):
    if isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
        return KFold(int(cv), shuffle=True, seed=0)
    if not (hasattr(cv, "split") and hasattr(cv, "fold_names")):
        raise TypeError(f"cv must be an int, KFold or PredefinedFolds, got {cv!r}")
    return cv


def _check_model(model):
    if not isinstance(model, Model):
        raise TypeError(f"model must be a mfrec.Model, got {type(model).__name__}")


def cross_validate(model, data, cv=5, metrics: Sequence[str] = ("rmse", "mae"), *,
                   n_jobs: int = 1, threshold: float = 4.0, fit_params: Optional[dict] = None,
                   return_models: bool = False, verbose: bool = False,
                   progress: bool = False) -> dict:
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
    progress : bool
        A progress bar over the folds (tqdm, ``mfrec[progress]``).

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
    ratings, cv, metrics = ratings_of(data), _check_cv(cv), check_metrics(metrics)
    n_jobs, threshold = check_n_jobs(n_jobs), check_threshold(threshold)
    progress = check_progress(progress)
    folds = list(zip(cv.fold_names, cv.split(ratings)))
    params = model.get_params()
    params["n_threads"] = threads_per_fit(params, n_jobs, len(folds))
    tasks = fold_tasks(model, params, folds, metrics, threshold, dict(fit_params or {}),
                       keep_models=return_models)
    rows = run(tasks, n_jobs, verbose, "cross_validate", progress)
    mean, std = summary(rows, metrics)
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
                 verbose: bool = False, progress: bool = False):
        _check_model(model)
        self.model, self.cv = model, _check_cv(cv)
        parse_metric(metric)
        self.metric = metric
        shown = check_metrics(metrics) if metrics is not None else [metric]
        self.metrics = shown if metric in shown else [metric] + shown
        self.n_jobs, self.refit = check_n_jobs(n_jobs), bool(refit)
        self.threshold, self.verbose = check_threshold(threshold), verbose
        self.progress = check_progress(progress)
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
        ratings = ratings_of(data)
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
            params["n_threads"] = threads_per_fit(params, self.n_jobs, n_tasks)
            tasks += fold_tasks(self.model, params, folds, self.metrics, self.threshold,
                                fit_params, prefix=f"candidate {j + 1} ")
        t0 = time.perf_counter()
        rows = run(tasks, self.n_jobs, self.verbose, type(self).__name__, self.progress)
        self.results = []
        for j, c in enumerate(candidates):
            mean, std = summary(rows[j * len(folds):(j + 1) * len(folds)], self.metrics)
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
    progress : bool
        A progress bar over the (candidate, fold) fits (tqdm,
        ``mfrec[progress]``).

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
                 threshold: float = 4.0, verbose: bool = False, progress: bool = False):
        super().__init__(model, cv, metric, metrics, n_jobs, refit, threshold, verbose,
                         progress)
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
    cv, metric, metrics, n_jobs, refit, threshold, verbose, progress
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
                 seed: Optional[int] = None, verbose: bool = False, progress: bool = False):
        super().__init__(model, cv, metric, metrics, n_jobs, refit, threshold, verbose,
                         progress)
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
