"""The Model every algorithm shares: ids, the fitting loop, prediction, files.

Thread rule: ``fit`` trains on a private core model and swaps the finished
state in under the model's lock; ``predict``/``recommend`` take the same
lock, so a reader sees either the old model or the new one, never a
half-updated one.
"""
from __future__ import annotations

import os
import threading
import time
import warnings
from typing import Any, Callable, List, Optional, Tuple

import numpy as np

from . import _core, _modelfile
from ._modelfile import CORE_ARRAYS
from .algorithms import Algorithm, Features, TrainData, check_threads, get_algorithm
from .ratings import Ratings, as_ids, as_ratings, unmasked

__all__ = ["Model"]



def index_of(raw: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Contiguous int32 index of each raw id in the sorted `ids`; -1 if absent."""
    pos = np.searchsorted(ids, raw)
    pos = np.minimum(pos, len(ids) - 1)
    found = ids[pos] == raw if len(ids) else np.zeros(len(raw), bool)
    return np.where(found, pos, -1).astype(np.int32)


def core_state(core, copy: bool = True) -> dict:
    """The arrays and the mean of a core model: copies (a snapshot), or the
    arrays themselves where no kernel writes into them."""
    state = {name: getattr(core, name) for name in CORE_ARRAYS}
    state = {k: v if v is None or not copy else v.copy() for k, v in state.items()}
    state["global_mean"] = core.global_mean
    return state


def set_core_state(core, state: dict) -> None:
    for name in CORE_ARRAYS:
        setattr(core, name, state[name])
    core.global_mean = state["global_mean"]


def fit_state(core, solver) -> tuple:
    """A snapshot of a fit in progress: the core model and the solver's
    extra arrays (e.g. feature factors), so that both are restored together."""
    arrays = core_state(core, copy=solver.writes_in_place)
    return arrays, {k: v.copy() for k, v in solver.extra_arrays().items()}


def set_fit_state(core, solver, state: tuple) -> None:
    set_core_state(core, state[0])
    solver.load_extra_arrays(state[1])


class Model(_core.Model):
    """A matrix-factorization recommender.

    Parameters
    ----------
    algorithm : {"sgd", ...}
        The fitting method; ``mfrec.algorithms.ALGORITHMS`` lists them.
    **params
        The algorithm's parameters (see ``Model.defaults(algorithm)``), e.g.
        for "sgd": factors=100, learning_rate=0.005, regularization=0.02,
        biases=True, init="normal", init_scale=0.1, epochs=20,
        feature_combine="mean", seed=None, n_threads=1.

    Attributes
    ----------
    user_ids, item_ids : after fit, the raw ids known to the model (rated in training,
        or given side features), sorted (index i of
        ``user_factors`` is user ``user_ids[i]``).
    user_factors, item_factors, user_bias, item_bias, global_mean (with
        side features: the effective rows, free parts plus features')
    history : one dict per iteration (``pandas.DataFrame(model.history)``).
    best_iteration_ : the iteration kept (early stopping restores it).
    seed_ : the seed used (drawn at random when seed=None).
    """

    # Fitted attributes: None until fit (methods call _check_fitted first).
    user_ids: Optional[np.ndarray]
    item_ids: Optional[np.ndarray]
    history: List[dict]
    best_iteration_: Optional[int]
    seed_: Optional[int]
    rating_range_: Optional[Tuple[float, ...]]
    rating_mean_: Optional[float]
    _solver: Optional[Algorithm]

    def __init__(self, algorithm: str = "sgd", **params):
        full = _checked_params(algorithm, params)
        self.__dict__.update(algorithm=algorithm, _params=full)
        self._lock = threading.RLock()
        self._fit_lock = threading.RLock()  # held by fit; set_params waits for it
        self._solver = None
        # the algorithm and parameters the fitted state comes from
        self._fitted_algorithm: Optional[str] = None
        self._fitted_params: dict = {}
        self.user_ids = self.item_ids = None
        self.history = []
        self.best_iteration_ = None
        self.seed_ = None
        self.rating_range_ = None
        self.rating_mean_ = None

    # ---- parameters, scikit-learn style -------------------------------------

    @staticmethod
    def defaults(algorithm: str) -> dict:
        """The parameters of `algorithm` with their default values."""
        return dict(get_algorithm(algorithm).defaults)

    def get_params(self) -> dict:
        return {"algorithm": self.algorithm, **self._params}

    def set_params(self, **params) -> "Model":
        """Set parameters, as scikit-learn does: they are checked together
        (nothing changes if one is invalid) and take effect at the next
        fit; a fitted model keeps its fitted state until then, and
        predicts, recommends and saves as fitted (``save`` writes the
        parameters the arrays were fitted with). Waits for a fit running in
        another thread to finish. Assigning a parameter as an attribute
        (``model.epochs = 5``) is the same as ``set_params(epochs=5)``.
        A new `algorithm` starts from that algorithm's defaults."""
        with self._fit_lock, self._lock:
            algorithm = params.pop("algorithm", self.algorithm)
            merged = {**self._params, **params} if algorithm == self.algorithm else params
            full = _checked_params(algorithm, merged)
            self.__dict__.update(algorithm=algorithm, _params=full)
        return self

    def __setattr__(self, name, value):
        params = self.__dict__.get("_params")
        if params is not None and (name in params or name == "algorithm"):
            self.set_params(**{name: value})
        else:
            super().__setattr__(name, value)

    def __getattr__(self, name):
        params = self.__dict__.get("_params")
        if params is not None and name in params:
            return params[name]
        solver = self.__dict__.get("_solver")
        if solver is not None and name in solver.fitted_attributes:
            return getattr(solver, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __repr__(self):
        shown = ", ".join(f"{k}={v!r}" for k, v in self._params.items()
                          if v != get_algorithm(self.algorithm).defaults[k])
        return f"Model({self.algorithm!r}{', ' if shown else ''}{shown})"

    @property
    def is_fitted(self) -> bool:
        return self.user_ids is not None

    def _check_fitted(self):
        if not self.is_fitted:
            raise RuntimeError("this model is not fitted yet: call fit first")

    @property
    def n_users(self) -> int:
        self._check_fitted()
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        self._check_fitted()
        return len(self.item_ids)

    # ---- fitting -----------------------------------------------------------

    def fit(self, users, items=None, ratings=None, *, item_features=None,
            item_feature_ids=None, user_features=None, user_feature_ids=None,
            validation=None, early_stopping: Optional[int] = None,
            callback: Optional[Callable[["Model", dict], Optional[bool]]] = None,
            verbose: bool = False) -> "Model":
        """Fit on rating triplets (raw ids of any int64 values).

        Parameters
        ----------
        users, items, ratings : 1-D arrays of the same length, or a single
            :class:`mfrec.Ratings` as `users`.
        item_features : optional (algorithms that use side features, e.g.
            "sgd"). A matrix with one row per item and one column per
            feature (dense, or any scipy.sparse matrix), e.g. the genre flags
            ``data.genres``; row j belongs to raw item id
            ``item_feature_ids[j]``. An item's factors (and bias) become its
            free ones plus the combination of its features' (see the
            algorithm's ``feature_combine``). Items that appear only here,
            never in the ratings, are known to the model through their
            features alone (cold start); rated items without a row have no
            features.
        item_feature_ids : the raw item id of each row of item_features
            (unique), required with it.
        user_features, user_feature_ids : the same for users.
        validation : (users, items, ratings) or Ratings, optional. Scored
            after every iteration (``valid_rmse`` in history).
        early_stopping : int, optional. Stop when the validation RMSE has not
            improved for this many iterations, and restore the best factors.
        callback : callable(model, row), optional. Called after each
            iteration with the history row; returning False stops training.
        verbose : print each history row.

        Ctrl-C stops training cleanly: the model keeps its last complete
        iteration (the best one with early stopping) and a warning says so.
        Fits of one model in several threads run one after the other.
        """
        with self._fit_lock:
            return self._fit(users, items, ratings, item_features, item_feature_ids,
                             user_features, user_feature_ids, validation, early_stopping,
                             callback, verbose)

    def _fit(self, users, items, ratings, item_features, item_feature_ids, user_features,
             user_feature_ids, validation, early_stopping, callback, verbose):
        algorithm, params = self.algorithm, dict(self._params)
        users, items, ratings = _triplets(users, items, ratings, "fit")
        if len(users) == 0:
            raise ValueError("fit: no ratings given (empty arrays)")
        if early_stopping is not None:
            if isinstance(early_stopping, bool) or not isinstance(early_stopping, (int, np.integer)) \
                    or early_stopping < 1:
                raise ValueError(f"early_stopping must be an integer >= 1, got {early_stopping!r}")
            if validation is None:
                raise ValueError("early_stopping needs validation data")
        if callback is not None and not callable(callback):
            raise TypeError("callback must be callable")

        solver = get_algorithm(algorithm)(dict(params))
        if early_stopping is not None and solver.stops_early is not True:
            raise ValueError(f"early_stopping: algorithm {algorithm!r} does not stop early "
                             f"({solver.stops_early})")
        user_side = _read_features(user_features, user_feature_ids, "user")
        item_side = _read_features(item_features, item_feature_ids, "item")
        if (user_side or item_side) and not solver.uses_features:
            raise ValueError(f"algorithm {algorithm!r} does not use side features "
                             "(user_features / item_features)")
        for side, features in (("user", user_side), ("item", item_side)):
            if features is not None:
                solver.check_features(side, features[4])
        user_ids, uidx = _known_ids(users, user_side)
        item_ids, iidx = _known_ids(items, item_side)
        train = TrainData(uidx, iidx, ratings, len(user_ids), len(item_ids),
                          _features_by_index(user_side, user_ids),
                          _features_by_index(item_side, item_ids), params["n_threads"])
        solver.check_data(train)
        try:
            seen = train.by_user
        except ValueError:  # the only failure left: a repeated (user, item) pair
            raise ValueError(f"fit: users and items: {_duplicates(users, items)}") from None
        valid = None
        if validation is not None:
            vu, vi, vr = _triplets(*_unpack(validation), "validation")
            if len(vu) == 0:
                raise ValueError("validation: no ratings given (empty arrays)")
            valid = (index_of(vu, user_ids), index_of(vi, item_ids), vr)

        seed = params["seed"]
        seed = int(np.random.SeedSequence().entropy % 2**63) if seed is None else int(seed)
        work = _core.Model()
        work.global_mean = float(np.mean(ratings, dtype=np.float64))
        rating_range = (float(ratings.min()), float(ratings.max()))
        rating_mean = work.global_mean
        history, best = [], None
        n_iter = params.get(solver.iterations_param, 1) if solver.iterations_param else 1
        clip_range = rating_range if solver.clip_predictions else None

        def record(iteration, loss, seconds):
            row = {"epoch": iteration + 1}
            if loss is not None:
                row["train_loss"] = loss
            row["train_rmse"] = solver.train_rmse(work, train, params["n_threads"])
            if not np.isfinite(row["train_rmse"]):  # finite factors whose products overflow
                raise FloatingPointError(
                    f"fit diverged at iteration {iteration + 1}: the predictions are no "
                    "longer finite; use a smaller learning_rate or a larger regularization")
            if valid is not None:
                pred = _unknown_to_mean(
                    solver.predictions(work, valid[0], valid[1], params["n_threads"]),
                    valid[0], valid[1], work, solver, rating_mean)
                pred = _clip(pred, clip_range)
                row["valid_rmse"], row["valid_mae"] = _core.rmse_mae(pred, valid[2])
            row["seconds"] = seconds
            history.append(row)
            if verbose:
                print("  ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                                for k, v in row.items()), flush=True)
            return row

        # (rows of history, state, best, best_state) after the last complete
        # iteration, assigned at once so that Ctrl-C never sees it half-updated
        checkpoint = None
        try:
            if solver.iterations_param is None:
                t0 = time.perf_counter()
                solver.solve(work, train, seed)
                record(0, None, time.perf_counter() - t0)
                best = (0, None)
            else:
                solver.start(work, train, seed)
                stale = 0
                for it in range(n_iter):
                    t0 = time.perf_counter()
                    loss = solver.step(work, train, it)
                    row = record(it, loss, time.perf_counter() - t0)
                    state = fit_state(work, solver)
                    score = row.get("valid_rmse")
                    if best is None or (score is not None and score < best[1]):
                        best, best_state, stale = (it, score), state, 0
                    else:
                        stale += 1
                    checkpoint = (len(history), state, best, best_state)
                    if callback is not None and callback(self, dict(row)) is False:
                        break
                    if early_stopping is not None and stale >= early_stopping:
                        break
                if early_stopping is not None:
                    set_fit_state(work, solver, best_state)
                else:
                    best = (len(history) - 1, None)
        except KeyboardInterrupt:
            if checkpoint is None:
                raise
            rows, state, best, best_state = checkpoint
            del history[rows:]
            if early_stopping is not None:
                state = best_state
            else:
                best = (rows - 1, None)
            set_fit_state(work, solver, state)
            warnings.warn(f"fit interrupted after {len(history)} iteration(s); the model "
                          f"keeps iteration {best[0] + 1}", RuntimeWarning, stacklevel=2)

        solver.finish(work, best[0] + 1)
        with self._lock:
            set_core_state(self, core_state(work, copy=False))  # the setters copy
            self.seen_indptr, self.seen_indices = seen[0], seen[1]
            self.user_ids, self.item_ids = user_ids, item_ids
            self.history = history
            self.best_iteration_ = best[0] + 1
            self.seed_ = seed
            self.rating_range_ = rating_range
            self.rating_mean_ = rating_mean
            self._solver = solver
            self._fitted_algorithm, self._fitted_params = algorithm, params
        return self

    # ---- prediction --------------------------------------------------------

    def predict(self, users, items, clip: Optional[bool] = None, n_threads: int = 1,
                return_std: bool = False):
        """Predicted ratings for pairs of raw ids (float32).

        Ids not seen in training fall back to the baseline: the global mean
        plus whichever bias is known (the item's for an unknown user, and so
        on). An explicit-rating model without biases predicts the mean
        training rating for them (as Surprise does). `clip` (default: on
        for explicit-rating algorithms) limits predictions to the range of
        the training ratings. n_threads: 0 (all cores) to 256.
        return_std ("bayes" models): also return the predictive standard
        deviation of each rating (float64), as (predictions, std).
        """
        self._check_fitted()
        users, items = as_ids(users, "users"), as_ids(items, "items")
        if len(users) != len(items):
            raise ValueError(f"users and items must have the same length "
                             f"({len(users)} != {len(items)})")
        check_threads(n_threads)
        if clip is None:
            clip = self._solver.clip_predictions if self._solver else True
        with self._lock:
            uidx, iidx = index_of(users, self.user_ids), index_of(items, self.item_ids)
            out = _unknown_to_mean(self._predict(uidx, iidx, n_threads), uidx, iidx,
                                   self, self._solver, self.rating_mean_)
            out = _clip(self._solver.transform(self, uidx, iidx, out),
                        self.rating_range_ if clip else None)
            if return_std:
                return out, self._solver.predict_std(self, uidx, iidx)
            return out

    def predict_interval(self, users, items, level: float = 0.9):
        """(low, high): the central interval of the predictive distribution
        holding `level` of it, for each pair ("bayes" models: Gaussian, from
        the posterior mean and :meth:`predict`'s std; ordinal ones: rating
        levels), clipped to the rating range as predictions are."""
        if isinstance(level, bool) or not isinstance(level, (int, float, np.floating)) \
                or not 0 < level < 1:
            raise ValueError(f"level must be a number in (0, 1), got {level!r}")
        self._check_fitted()
        users, items = as_ids(users, "users"), as_ids(items, "items")
        if len(users) != len(items):
            raise ValueError(f"users and items must have the same length "
                             f"({len(users)} != {len(items)})")
        with self._lock:
            uidx, iidx = index_of(users, self.user_ids), index_of(items, self.item_ids)
            low, high = self._solver.predict_interval(self, uidx, iidx, float(level))
            clip = self.rating_range_ if self._solver.clip_predictions else None
            return _clip(low, clip), _clip(high, clip)

    def score(self, users, items=None, ratings=None) -> dict:
        """RMSE and MAE of the predictions on rating triplets."""
        users, items, ratings = _triplets(users, items, ratings, "score")
        if len(users) == 0:
            raise ValueError("score: no ratings given (empty arrays)")
        rmse, mae = _core.rmse_mae(self.predict(users, items), ratings)
        return {"rmse": rmse, "mae": mae}

    # ---- top-N -------------------------------------------------------------
    #
    # Every algorithm ranks through the same C engine (csrc/core/topn.c): scores
    # are predictions, mu + b_u + b_i + p_u . q_i, ties go to the lower item
    # index (the earlier id in item_ids), and lists come back as raw ids.

    def recommend(self, users, n: int = 10, exclude_seen: bool = True, items=None,
                  exclude=None, n_threads: Optional[int] = None):
        """The n items with the highest predicted score for one user or a batch.

        Parameters
        ----------
        users : a raw user id, or a 1-D array of them (KeyError for an id
            not seen in training).
        n : list length (>= 1).
        exclude_seen : skip each user's training items.
        items : raw item ids, optional: rank only these candidates.
        exclude : raw item ids, optional: never recommend these.
        n_threads : default: the model's n_threads.

        Returns
        -------
        (ids, scores): for one user, 1-D arrays (int64 raw item ids, float32
        scores) best first; they are SHORTER than n when fewer than n items
        are left after the exclusions. For a batch, 2-D arrays with one row
        per user and min(n, number of candidate items) columns; rows with
        fewer items left are padded at the end with id -1 and score NaN (a
        NaN score marks padding). Ties in score go to the item that comes
        first in ``item_ids`` (the lower id).
        """
        single = np.ndim(users) == 0
        n = _check_n(n)
        with self._lock:
            uidx = self._indices(users, "users")
            pool = self._pool(items, exclude)
            width = min(n, len(self.item_ids) if pool is None else len(pool))
            lists = _core.recommend(self, uidx, max(width, 1), exclude_seen=bool(exclude_seen),
                                    pool=pool, n_threads=self._threads(n_threads))
            return _raw_lists(lists, width, self.item_ids, single)

    def recommend_all(self, n: int = 10, exclude_seen: bool = True, items=None, exclude=None,
                      n_threads: Optional[int] = None):
        """:meth:`recommend` for every user of the model: 2-D (ids, scores),
        row r for user ``user_ids[r]``, padded with -1 / NaN as there."""
        n = _check_n(n)
        with self._lock:
            self._check_fitted()
            pool = self._pool(items, exclude)
            width = min(n, len(self.item_ids) if pool is None else len(pool))
            lists = _core.recommend(self, None, max(width, 1), exclude_seen=bool(exclude_seen),
                                    pool=pool, n_threads=self._threads(n_threads))
            return _raw_lists(lists, width, self.item_ids, False)

    def similar_items(self, item, n: int = 10, items=None, n_threads: Optional[int] = None):
        """The n items whose factors have the highest cosine similarity with
        those of `item` (one raw id or a 1-D array), the item itself left out;
        `items` (raw ids), optional, restricts the candidates (say, to items
        with enough ratings for their factors to mean something). Returns
        (ids, scores) shaped as :meth:`recommend`. An item whose factors are
        all zero has cosine 0 with every item."""
        return self._similar(item, n, items, n_threads, "item")

    def similar_users(self, user, n: int = 10, users=None, n_threads: Optional[int] = None):
        """As :meth:`similar_items`, for users (raw user ids returned)."""
        return self._similar(user, n, users, n_threads, "user")

    def fold_in(self, items, ratings, regularization: Optional[float] = None):
        """Factors of a new user from their ratings, without retraining.

        Solves the ridge regression of the ratings on the fixed item factors
        (in C, Cholesky in double precision):
        ``min sum (r - mu - b_i - b - x . q_i)^2 + lambda (|x|^2 + b^2)``,
        with the bias b only when the model has biases. ("wals" models solve
        their own weighted least squares for the user instead, the unobserved
        items included, as one ALS half-step row.)

        Parameters
        ----------
        items, ratings : the items the user rated (raw ids known to the
            model, each once) and the ratings.
        regularization : lambda (> 0). Default: the algorithm's choice, for
            SGD its ``regularization`` times the number of ratings (the L2
            penalty its per-rating updates apply to a user).

        Returns
        -------
        (factors, bias): float32 array (k,), and a float (None for a model
        without biases).
        """
        with self._lock:
            iidx, r = self._new_user_ratings(items, ratings)
            lam = self._fold_in_lambda(regularization, len(r))
            x, b = self._solver.fold_in(self, iidx, r, lam)
            return x, (b if self.user_bias is not None else None)

    def recommend_new_user(self, items, ratings, n: int = 10,
                           regularization: Optional[float] = None):
        """Top-n for a user who is not in the model: :meth:`fold_in` their
        ratings, then rank every item they did not rate. Returns 1-D (ids,
        scores) as :meth:`recommend` for one user (shorter than n if fewer
        items are left)."""
        n = _check_n(n)
        with self._lock:
            iidx, r = self._new_user_ratings(items, ratings)
            x, b = self._solver.fold_in(self, iidx, r,
                                        self._fold_in_lambda(regularization, len(r)))
            width = min(n, len(self.item_ids))
            lists = _core.recommend_vector(self, x, b, np.sort(iidx), None, width)
            return _raw_lists(lists, width, self.item_ids, True)

    def _threads(self, n_threads):
        n_threads = self._params.get("n_threads", 1) if n_threads is None else n_threads
        check_threads(n_threads)
        return int(n_threads)

    def _indices(self, raw, name, kind="user"):
        """int32 indices of known raw ids; KeyError naming the unknown ones."""
        self._check_fitted()
        ids = self.user_ids if kind == "user" else self.item_ids
        raw = as_ids(raw, name)
        idx = index_of(raw, ids)
        if (idx < 0).any():
            unknown = np.unique(raw[idx < 0])
            shown = ", ".join(str(u) for u in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
            raise KeyError(f"{name}: {len(unknown)} {kind} id(s) not seen in training: {shown}")
        return idx

    def _pool(self, items, exclude):
        """Candidate item indices (ascending) from items/exclude, or None."""
        if items is None and exclude is None:
            return None
        pool = (np.arange(len(self.item_ids), dtype=np.int32) if items is None
                else self._candidates(items, "items", "item"))
        if exclude is not None:
            pool = np.setdiff1d(pool, self._indices(exclude, "exclude", "item"),
                                assume_unique=True)
        return pool.astype(np.int32)

    def _candidates(self, raw, name, kind):
        """Sorted unique indices of known raw ids (KeyError otherwise)."""
        return np.unique(self._indices(raw, name, kind)).astype(np.int32)

    def _similar(self, query, n, candidates, n_threads, kind):
        single = np.ndim(query) == 0
        n = _check_n(n)
        with self._lock:
            qidx = self._indices(query, kind, kind)
            factors, ids = ((self.user_factors, self.user_ids) if kind == "user"
                            else (self.item_factors, self.item_ids))
            pool = None if candidates is None else self._candidates(candidates, kind + "s", kind)
            width = min(n, len(ids) - 1 if pool is None else len(pool))
            lists = _core.similar(factors, qidx, max(width, 1), pool=pool,
                                  n_threads=self._threads(n_threads))
            return _raw_lists(lists, width, ids, single)

    def _new_user_ratings(self, items, ratings):
        items, ratings = as_ids(items, "items"), as_ratings(ratings)
        if len(items) != len(ratings):
            raise ValueError(f"items and ratings must have the same length "
                             f"({len(items)} != {len(ratings)})")
        if len(items) == 0:
            raise ValueError("a new user needs at least one rating (items and ratings are empty)")
        iidx = self._indices(items, "items", "item")
        if len(np.unique(iidx)) != len(iidx):
            raise ValueError("items: each item may be rated only once")
        return iidx, ratings

    def _fold_in_lambda(self, regularization, n_ratings):
        if regularization is None:
            lam = self._solver.fold_in_regularization(n_ratings)
            if not lam > 0:
                raise ValueError(f"this {self._fitted_algorithm!r} model was trained without "
                                 "regularization: pass regularization > 0 to fold in a user")
            return float(lam)
        if isinstance(regularization, bool) or not isinstance(regularization, (int, float, np.number)) \
                or not np.isfinite(regularization) or regularization <= 0:
            raise ValueError(f"regularization must be a finite number > 0, got {regularization!r}")
        return float(regularization)

    # ---- files -------------------------------------------------------------

    def save(self, path) -> "str":
        """Write the fitted model to one .npz file (no pickle); return its name.

        `path` (str, bytes or os.PathLike) gets ".npz" added unless it ends
        so; ValueError if it names no file (empty, or ending in a folder
        separator). The file is written beside the target under a temporary
        name (``.{name}.{pid}.{random}.tmp``) and renamed, so a crash
        mid-save leaves any previous file intact; a later save to the same
        target removes the temporary files of writers no longer running.
        The file's mode is what open() would give (0o666 less the umask).
        The factor count written is the arrays' (see :meth:`set_params`).
        """
        with self._lock:
            self._check_fitted()
            params = dict(self._fitted_params)
            header = {
                "format": _modelfile.FORMAT, "version": _modelfile.VERSION,
                "algorithm": self._fitted_algorithm, "params": params,
                "global_mean": self.global_mean, "rating_range": self.rating_range_,
                "rating_mean": self.rating_mean_,
                "history": self.history, "best_iteration": self.best_iteration_,
                "seed": self.seed_,
            }
            arrays = {"user_ids": self.user_ids, "item_ids": self.item_ids,
                      "seen_indptr": self.seen_indptr, "seen_indices": self.seen_indices}
            for name in CORE_ARRAYS:
                if getattr(self, name) is not None:
                    arrays[name] = getattr(self, name)
            for name, a in self._solver.extra_arrays().items():
                arrays["extra_" + name] = a
        return _modelfile.write(path, header, arrays)

    @classmethod
    def load(cls, path) -> "Model":
        """Read a model written by :meth:`save`; ValueError naming the file if
        it is not a valid mfrec model (corrupt, truncated, inconsistent, or
        not a regular file). Errors opening it (missing, no access) propagate
        as they are."""
        if not isinstance(path, (str, bytes, os.PathLike)):
            raise TypeError(f"path must be a file name (str or os.PathLike), got {path!r}")

        def accept(header):
            try:
                _checked_params(header["algorithm"], header["params"])
            except (TypeError, ValueError) as e:
                raise ValueError(f"bad algorithm or parameters ({e})") from None
            return get_algorithm(header["algorithm"])

        header, arrays = _modelfile.read(path, accept)
        model = cls(header["algorithm"], **header["params"])
        solver = get_algorithm(model.algorithm)(dict(model._params))
        extra = {k[len("extra_"):]: v for k, v in arrays.items() if k.startswith("extra_")}
        try:
            solver.load_extra_arrays(extra)
        except (KeyError, ValueError, TypeError) as e:
            raise _modelfile.bad_file(_modelfile.shown(path), f"algorithm data: {e}") from None
        for name in CORE_ARRAYS:
            setattr(model, name, arrays.get(name))
        model.global_mean = header["global_mean"]
        model.seen_indptr, model.seen_indices = arrays["seen_indptr"], arrays["seen_indices"]
        model.user_ids, model.item_ids = arrays["user_ids"], arrays["item_ids"]
        model.rating_range_ = tuple(header["rating_range"])
        model.rating_mean_ = header.get("rating_mean")  # absent from files of mfrec 0.1.0
        model.history = header.get("history", [])
        model.best_iteration_ = header.get("best_iteration")
        model.seed_ = header.get("seed")
        model._solver = solver
        model._fitted_algorithm, model._fitted_params = model.algorithm, dict(model._params)
        return model


# ---- helpers -----------------------------------------------------------------

def _checked_params(algorithm, params: dict) -> dict:
    """The full, checked parameters of `algorithm` (its defaults filled in)."""
    cls = get_algorithm(algorithm)
    unknown = sorted(set(params) - set(cls.defaults))
    if unknown:
        raise TypeError(f"unknown parameter(s) {unknown} for algorithm {algorithm!r}; "
                        f"it takes {sorted(cls.defaults)}")
    full = {**cls.defaults, **params}
    cls.check_params(full)
    return full


def _unpack(data) -> Tuple[Any, Any, Any]:
    if isinstance(data, Ratings):
        return data.user, data.item, data.rating
    try:
        u, i, r = data
    except (TypeError, ValueError):
        raise TypeError("validation must be a Ratings or a (users, items, ratings) tuple") from None
    return u, i, r


def _triplets(users, items, ratings, where):
    """Checked (int64 users, int64 items, float32 ratings) from arrays or a Ratings."""
    if isinstance(users, Ratings) and items is None and ratings is None:
        users, items, ratings = users.user, users.item, users.rating
    if items is None or ratings is None:
        raise TypeError(f"{where}: give users, items and ratings (or one Ratings)")
    u, i = as_ids(users, f"{where}: users"), as_ids(items, f"{where}: items")
    r = as_ratings(ratings, f"{where}: ratings")
    if not len(u) == len(i) == len(r):
        raise ValueError(f"{where}: users, items and ratings must have the same length "
                         f"({len(u)}, {len(i)}, {len(r)})")
    return u, i, r


def _read_features(matrix, ids, side: str):
    """(sorted unique raw ids, COO rows/cols/weights in that id order,
    n_features) from a dense or scipy.sparse matrix with one row per id;
    None when no features are given."""
    name, ids_name = f"{side}_features", f"{side}_feature_ids"
    if matrix is None:
        if ids is not None:
            raise ValueError(f"{ids_name} given without {name}")
        return None
    if ids is None:
        raise ValueError(f"{name} needs {ids_name}: the raw {side} id of each row")
    ids = as_ids(ids, ids_name)
    if hasattr(matrix, "tocoo") and not isinstance(matrix, np.ndarray):  # scipy.sparse
        coo = matrix.tocsr(copy=True)
        coo.sum_duplicates()
        coo = coo.tocoo()
        shape, rows, cols, weights = coo.shape, coo.row, coo.col, np.asarray(coo.data)
    else:
        dense = np.asarray(unmasked(matrix, name))
        if dense.ndim != 2:
            raise ValueError(f"{name} must be a 2-D matrix (rows x features), got shape "
                             f"{dense.shape}")
        shape = dense.shape
        rows, cols = np.nonzero(dense)
        weights = dense[rows, cols]
    if shape[0] != len(ids):
        raise ValueError(f"{name} has {shape[0]} rows but {ids_name} has {len(ids)} ids: "
                         "give one id per row")
    if shape[1] < 1:
        raise ValueError(f"{name} has no columns (features)")
    weights = as_ratings(weights, f"{name} values")
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    if np.any(sorted_ids[1:] == sorted_ids[:-1]):
        dup = sorted_ids[1:][sorted_ids[1:] == sorted_ids[:-1]][0]
        raise ValueError(f"{ids_name} lists id {dup} twice")
    rank = np.empty(len(ids), np.int64)
    rank[order] = np.arange(len(ids))
    return sorted_ids, rank[rows], cols.astype(np.int32), weights, int(shape[1])


def _known_ids(raw: np.ndarray, side) -> tuple:
    """The model's ids (those rated, plus those with features) and the
    contiguous index of each rating's id. Ids that are small non-negative
    numbers (most datasets number them 1, 2, ...) go through a table of
    present ids instead of a sort: 20M ratings map in a tenth of the time."""
    known = raw if side is None else np.concatenate([raw, side[0]])
    if len(known) and known.min() >= 0 and known.max() < 2 * len(known) + 1024:
        present = np.zeros(int(known.max()) + 1, bool)
        present[known] = True
        position = np.cumsum(present, dtype=np.int64) - 1
        return np.flatnonzero(present).astype(np.int64), position[raw].astype(np.int32)
    ids = np.unique(known)
    return ids, index_of(raw, ids)


def _features_by_index(side, ids: np.ndarray) -> Optional[Features]:
    """The features as CSR rows in the model's index order."""
    if side is None:
        return None
    feature_ids, rows, cols, weights, n_features = side
    rows = index_of(feature_ids, ids)[rows]
    indptr, indices, values = _core.build_csr(rows, cols, weights, len(ids), n_features)
    return Features(indptr, indices, values, n_features)


def _duplicates(users, items) -> str:
    """Describe the (user, item) pairs that occur more than once."""
    pairs, counts = np.unique(np.stack([users, items], axis=1), axis=0, return_counts=True)
    dup = pairs[counts > 1]
    return (f"{len(dup)} (user, item) pair(s) occur more than once, e.g. user {dup[0, 0]} "
            f"and item {dup[0, 1]} ({counts[counts > 1][0]} times); keep one rating per pair")


def _unknown_to_mean(pred: np.ndarray, uidx, iidx, core, solver, rating_mean) -> np.ndarray:
    """An explicit-rating model without biases predicts the mean training
    rating for a pair with an unknown id (the core's baseline, its global
    mean, is 0 there); other models keep the core's baseline."""
    if (core.user_bias is None and solver is not None and solver.clip_predictions
            and rating_mean is not None):
        pred[(uidx < 0) | (iidx < 0)] = rating_mean
    return pred


def _clip(pred: np.ndarray, rating_range) -> np.ndarray:
    if rating_range is None:
        return pred
    return np.clip(pred, rating_range[0], rating_range[1], out=pred)


def _raw_lists(lists, width, ids, single):
    """Core lists (indices, scores, counts) as raw ids, `width` columns;
    one user's list is cut to its valid entries."""
    idx, scores, counts = lists
    idx, scores = idx[:, :width], scores[:, :width]
    raw = np.where(idx >= 0, ids[np.maximum(idx, 0)], -1)
    if single:
        return raw[0, :counts[0]], scores[0, :counts[0]]
    return raw, scores


def _check_n(n):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    return int(n)
