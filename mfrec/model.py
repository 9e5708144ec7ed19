"""The Model every algorithm shares: the face over ids, parameters, the
training loop, prediction, top-N and files, each of which lives in a module
below (``_ids``, ``_params``, ``_training``, ``_predictions``, ``_state``,
``_modelfile``). The thread rule is in ``_state``.
"""
from __future__ import annotations

import os
from typing import Callable, List, Optional, Tuple

import numpy as np

from . import _core, _modelfile, _state
from ._ids import (duplicates, indices, item_pool, new_user_ratings, pair_indices, triplets,
                   unique_indices)
from ._modelfile import CORE_ARRAYS
from ._persist import file_contents, fitted_attributes, read_model_file
from ._params import changed_params, check_level, checked_params, fold_in_lambda
from ._predictions import check_n, clip_to, raw_lists, unknown_to_mean
from ._state import check_fitted, core_state, reading, set_core_state
from ._training import (Training, check_fit_arguments, check_stops_early, fit_seed,
                        train_data, validation_indices)
from .algorithms import Algorithm, check_threads, get_algorithm
from .ratings import from_any

__all__ = ["Model"]


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
    user_ids, item_ids : ndarray
        After fit, the raw ids known to the model (rated in training, or
        given side features), sorted: row i of ``user_factors`` is user
        ``user_ids[i]``. int64, or str / bytes for string ids.
    user_factors, item_factors : ndarray of float32
        The factor matrices (read-only views; with side features, the
        effective rows: free parts plus the features').
    user_bias, item_bias : ndarray of float32 or None
        The biases, None for models without them.
    global_mean : float
        The global offset of every prediction.
    history : list of dict
        One row per iteration (``pandas.DataFrame(model.history)``).
    best_iteration_ : int
        The iteration kept (early stopping restores it).
    seed_ : int
        The seed used (drawn at random when seed=None).
    metadata : dict
        Notes that ``save`` keeps and ``load`` restores (str keys; str, number, bool or None).
    """

    def __init__(self, algorithm: str = "sgd", **params):
        full = checked_params(algorithm, params)
        self.__dict__.update(algorithm=algorithm, _params=full)
        _state.attach_locks(self)
        # Fitted attributes: None until fit (methods call check_fitted first).
        self._solver: Optional[Algorithm] = None
        # the algorithm and parameters the fitted state comes from
        self._fitted_algorithm: Optional[str] = None
        self._fitted_params: dict = {}
        self.user_ids: Optional[np.ndarray] = None
        self.item_ids: Optional[np.ndarray] = None
        self.history: List[dict] = []
        self.best_iteration_: Optional[int] = None
        self.seed_: Optional[int] = None
        self.rating_range_: Optional[Tuple[float, ...]] = None
        self.rating_mean_: Optional[float] = None
        self.metadata: dict = {}

    # ---- parameters, scikit-learn style -------------------------------------

    @staticmethod
    def defaults(algorithm: str) -> dict:
        """The parameters of `algorithm` with their default values."""
        return dict(get_algorithm(algorithm).defaults)

    def get_params(self) -> dict:
        """The algorithm and its parameters, as scikit-learn's get_params."""
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
        with _state.fitting(self), reading(self):
            algorithm = params.pop("algorithm", self.algorithm)
            merged = {**self._params, **params} if algorithm == self.algorithm else params
            full = checked_params(algorithm, merged)
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
        shown = ", ".join(f"{k}={v!r}" for k, v in changed_params(self.algorithm,
                                                                  self._params).items())
        return f"Model({self.algorithm!r}{', ' if shown else ''}{shown})"

    @property
    def is_fitted(self) -> bool:
        """Whether fit (or load) has given the model its factors."""
        return self.user_ids is not None

    @property
    def n_users(self) -> int:
        """The number of users known to the fitted model."""
        check_fitted(self)
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        """The number of items known to the fitted model."""
        check_fitted(self)
        return len(self.item_ids)

    # ---- fitting -----------------------------------------------------------

    def fit(self, users, items=None, ratings=None, *, user=None, item=None, rating=None,
            user_ids=None, item_ids=None, item_features=None,
            item_feature_ids=None, user_features=None, user_feature_ids=None,
            validation=None, early_stopping: Optional[int] = None,
            callback: Optional[Callable[["Model", dict], Optional[bool]]] = None,
            verbose: bool = False, progress: bool = False, timestamps=None,
            record_train: bool = True) -> "Model":
        """Fit on rating triplets (raw ids: any int64 values, or strings or
        bytes; NumPy str/bytes arrays or object arrays of str or of bytes).

        Parameters
        ----------
        users, items, ratings : array_like, Ratings, table or sparse matrix
            1-D arrays of the same length, or as `users` alone: a
            :class:`mfrec.Ratings`, a pandas or polars DataFrame or a pyarrow
            Table (see :meth:`mfrec.Ratings.from_dataframe`), or a
            scipy.sparse users x items matrix (see
            :meth:`mfrec.Ratings.from_sparse`).
        user, item, rating : str, optional
            Column names of a table (default: guessed).
        user_ids, item_ids : array_like, optional
            The raw id of each row / column of a sparse matrix (default
            0..n-1).
        item_features : array_like or sparse matrix, optional
            For algorithms that use side features (e.g. "sgd"): a matrix
            with one row per item and one column per feature (dense, or any
            scipy.sparse matrix), e.g. the genre flags ``data.genres``; row j
            belongs to raw item id ``item_feature_ids[j]``. An item's factors
            (and bias) become its free ones plus the combination of its
            features' (see the algorithm's ``feature_combine``). Items that
            appear only here, never in the ratings, are known to the model
            through their features alone (cold start); rated items without a
            row have no features.
        item_feature_ids : array_like, optional
            The raw item id of each row of `item_features` (unique),
            required with it.
        user_features, user_feature_ids : optional
            The same for users.
        validation : tuple, Ratings, table or sparse matrix, optional
            (users, items, ratings), or data read as the training data is;
            scored after every iteration (``valid_rmse`` in history).
        early_stopping : int, optional
            Stop when the validation RMSE has not improved for this many
            iterations, and restore the best factors.
        callback : callable, optional
            ``callback(model, row)`` after each iteration with the history
            row; returning False stops training.
        verbose : bool
            Print each history row.
        progress : bool
            Show a progress bar over the iterations (tqdm, ``mfrec[progress]``).
        timestamps : array_like, optional
            Seconds of each rating (default: a Ratings' timestamp), for
            ``Model("bayes", context="day")``.
        record_train : bool
            False: no ``train_rmse`` in history (nor its pass over the ratings, where it takes one).

        Returns
        -------
        Model
            The model itself, fitted.

        Ctrl-C stops training cleanly: the model keeps its last complete iteration (the best one
        with early stopping) and a warning says so ("sgd", "als" and "wals" without validation or
        early stopping first finish the one under way). Fits of one model in threads take turns.
        """
        source = dict(user=user, item=item, rating=rating, user_ids=user_ids, item_ids=item_ids)
        users = from_any(users, items, ratings, "fit", **source)
        validation = from_any(validation, None, None, "validation", **source, strict=False)
        with _state.fitting(self):
            return self._fit(users, items, ratings, (user_features, user_feature_ids),
                             (item_features, item_feature_ids), validation, early_stopping,
                             callback, (verbose, progress, record_train), timestamps)

    def _fit(self, users, items, ratings, user_features, item_features, validation,
             early_stopping, callback, report, timestamps):
        algorithm, params = self.algorithm, dict(self._params)
        source = users
        users, items, ratings = triplets(users, items, ratings, "fit")
        if len(users) == 0:
            raise ValueError("fit: no ratings given (empty arrays)")
        check_fit_arguments(early_stopping, validation, callback, report)
        solver = get_algorithm(algorithm)(dict(params))
        solver.take_timestamps(source, timestamps, len(ratings))
        check_stops_early(solver, early_stopping)
        train, user_ids, item_ids = train_data(solver, users, items, ratings, user_features,
                                               item_features, params["n_threads"])
        try:
            train.by_user  # the fit's first CSR, kept by the model as the items seen
        except ValueError:  # the only failure left: a repeated (user, item) pair
            raise ValueError(f"fit: users and items: {duplicates(users, items)}") from None
        valid = validation_indices(validation, user_ids, item_ids)
        seed = fit_seed(params["seed"])
        work = _core.Model()
        rating_mean = work.global_mean = float(np.mean(ratings, dtype=np.float64))
        rating_range = (float(ratings.min()), float(ratings.max()))
        training = Training(solver, work, train, valid, params["n_threads"], rating_mean,
                            rating_range if solver.clip_predictions else None, report)
        best = training.run(seed, params, early_stopping, callback, self)
        seen = training.finish(best + 1)
        # the arrays themselves, not copies: the setters copy (of the data, only `seen`)
        self._install(core_state(work, copy=False), seen, user_ids, item_ids, solver,
                      params, history=training.history, best_iteration_=best + 1, seed_=seed,
                      rating_range_=rating_range, rating_mean_=rating_mean)
        return self

    def _install(self, core: dict, seen, user_ids, item_ids, solver, params, **fitted):
        """Swap in a fitted state: the core's arrays and mean, the training
        items of each user, the ids, the algorithm and its parameters, and
        the `fitted` attributes (history, best_iteration_, ...)."""
        state = dict(seen_indptr=seen[0], seen_indices=seen[1], user_ids=user_ids,
                     item_ids=item_ids, **fitted, _solver=solver,
                     _fitted_algorithm=solver.name, _fitted_params=params)
        with reading(self):
            set_core_state(self, core)
            for name, value in state.items():
                setattr(self, name, value)

    # ---- prediction --------------------------------------------------------

    def predict(self, users, items, clip: Optional[bool] = None, n_threads: int = 1,
                return_std: bool = False, timestamps=None):
        """Predicted ratings for pairs of raw ids (float32).

        Ids not seen in training fall back to the baseline: the global mean
        plus whichever bias is known (the item's for an unknown user, and so
        on). An explicit-rating model without biases predicts the mean
        training rating for them (as Surprise does). `clip` (default: on
        for explicit-rating algorithms) limits predictions to the range of
        the training ratings. n_threads: 0 (all cores) to 256.
        return_std ("bayes" models): also return the predictive standard
        deviation of each rating (float64), as (predictions, std).
        timestamps ("bayes" with context="day"): each pair's time in seconds
        (none, or a day not seen in fit: the days' prior mean)."""
        check_fitted(self)
        check_threads(n_threads)
        if clip is None:
            clip = self._solver.clip_predictions if self._solver else True
        with reading(self):
            uidx, iidx = pair_indices(users, items, self.user_ids, self.item_ids)
            cidx = self._solver.context_index(self, timestamps, len(uidx))
            out = unknown_to_mean(self._predict(uidx, iidx, n_threads), uidx, iidx,
                                  self, self._solver, self.rating_mean_)
            out = clip_to(self._solver.transform(self, uidx, iidx, out, cidx),
                          self.rating_range_ if clip else None)
            if return_std:
                return out, self._solver.predict_std(self, uidx, iidx, cidx)
            return out

    def predict_interval(self, users, items, level: float = 0.9):
        """(low, high): the central interval of the predictive distribution
        holding `level` of it, for each pair ("bayes" models: Gaussian, from
        the posterior mean and :meth:`predict`'s std; ordinal ones: rating
        levels), clipped to the rating range as predictions are."""
        level = check_level(level)
        check_fitted(self)
        with reading(self):
            uidx, iidx = pair_indices(users, items, self.user_ids, self.item_ids)
            low, high = self._solver.predict_interval(self, uidx, iidx, level)
            limits = self.rating_range_ if self._solver.clip_predictions else None
            return clip_to(low, limits), clip_to(high, limits)

    def score(self, users, items=None, ratings=None) -> dict:
        """RMSE and MAE of the predictions on rating triplets (a Ratings'
        timestamps are used by models with a context)."""
        stamps = getattr(users, "timestamp", None) if getattr(self._solver, "uses_context",
                                                               False) else None
        users, items, ratings = triplets(users, items, ratings, "score")
        if len(users) == 0:
            raise ValueError("score: no ratings given (empty arrays)")
        rmse, mae = _core.rmse_mae(self.predict(users, items, timestamps=stamps), ratings)
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
        users : raw id or array_like
            A raw user id, or a 1-D array of them (KeyError for an id not
            seen in training).
        n : int
            List length (>= 1).
        exclude_seen : bool
            Skip each user's training items.
        items : array_like, optional
            Raw item ids: rank only these candidates.
        exclude : array_like, optional
            Raw item ids never to recommend.
        n_threads : int, optional
            Default: the model's n_threads.

        Returns
        -------
        ids : ndarray
            Raw item ids of the model's kind (int64, str or bytes), best
            first. For one user a 1-D array, SHORTER than n when fewer than
            n items are left after the exclusions; for a batch one row per
            user and min(n, number of candidate items) columns, rows with
            fewer items left padded at the end with id -1 (string ids: "").
            Ties in score go to the item that comes first in ``item_ids``
            (the lower id).
        scores : ndarray of float32
            Their scores, NaN where a row is padded.
        """
        single = np.ndim(users) == 0
        n = check_n(n)
        with reading(self):
            uidx = self._indices(users, "users")
            pool = item_pool(self.item_ids, items, exclude)
            width = min(n, len(self.item_ids) if pool is None else len(pool))
            lists = _core.recommend(self, uidx, max(width, 1), exclude_seen=bool(exclude_seen),
                                    pool=pool, n_threads=_state.threads(self, n_threads))
            return raw_lists(lists, width, self.item_ids, single)

    def recommend_all(self, n: int = 10, exclude_seen: bool = True, items=None, exclude=None,
                      n_threads: Optional[int] = None):
        """:meth:`recommend` for every user of the model: 2-D (ids, scores),
        row r for user ``user_ids[r]``, padded with -1 / NaN as there."""
        n = check_n(n)
        with reading(self):
            check_fitted(self)
            pool = item_pool(self.item_ids, items, exclude)
            width = min(n, len(self.item_ids) if pool is None else len(pool))
            lists = _core.recommend(self, None, max(width, 1), exclude_seen=bool(exclude_seen),
                                    pool=pool, n_threads=_state.threads(self, n_threads))
            return raw_lists(lists, width, self.item_ids, False)

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
        items, ratings : array_like
            The items the user rated (raw ids known to the model, each once)
            and the ratings.
        regularization : float, optional
            Lambda (> 0). Default: the algorithm's choice, for SGD its
            ``regularization`` times the number of ratings (the L2 penalty
            its per-rating updates apply to a user).

        Returns
        -------
        factors : ndarray of float32, shape (k,)
            The new user's factors.
        bias : float or None
            Their bias (None for a model without biases).
        """
        with reading(self):
            check_fitted(self)
            iidx, r = new_user_ratings(items, ratings, self.item_ids)
            lam = fold_in_lambda(self, regularization, len(r))
            x, b = self._solver.fold_in(self, iidx, r, lam)
            return x, (b if self.user_bias is not None else None)

    def recommend_new_user(self, items, ratings, n: int = 10,
                           regularization: Optional[float] = None):
        """Top-n for a user who is not in the model: :meth:`fold_in` their
        ratings, then rank every item they did not rate. Returns 1-D (ids,
        scores) as :meth:`recommend` for one user (shorter than n if fewer
        items are left)."""
        n = check_n(n)
        with reading(self):
            check_fitted(self)
            iidx, r = new_user_ratings(items, ratings, self.item_ids)
            x, b = self._solver.fold_in(self, iidx, r,
                                        fold_in_lambda(self, regularization, len(r)))
            width = min(n, len(self.item_ids))
            lists = _core.recommend_vector(self, x, b, np.sort(iidx), None, width)
            return raw_lists(lists, width, self.item_ids, True)

    def _indices(self, raw, name, kind="user"):
        """int32 indices of known raw ids; KeyError naming the unknown ones."""
        check_fitted(self)
        return indices(raw, self.user_ids if kind == "user" else self.item_ids, name, kind)

    def _similar(self, query, n, candidates, n_threads, kind):
        single = np.ndim(query) == 0
        n = check_n(n)
        with reading(self):
            qidx = self._indices(query, kind, kind)
            factors, ids = ((self.user_factors, self.user_ids) if kind == "user"
                            else (self.item_factors, self.item_ids))
            pool = None if candidates is None else unique_indices(candidates, ids, kind + "s", kind)
            width = min(n, len(ids) - 1 if pool is None else len(pool))
            lists = _core.similar(factors, qidx, max(width, 1), pool=pool,
                                  n_threads=_state.threads(self, n_threads))
            return raw_lists(lists, width, ids, single)

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
        with reading(self):
            check_fitted(self)
            header, arrays = file_contents(self)
        return _modelfile.write(path, header, arrays)

    @classmethod
    def load(cls, path) -> "Model":
        """Read a model written by :meth:`save`; ValueError naming the file if
        it is not a valid mfrec model (corrupt, truncated, inconsistent, or
        not a regular file). Errors opening it (missing, no access) propagate
        as they are."""
        if not isinstance(path, (str, bytes, os.PathLike)):
            raise TypeError(f"path must be a file name (str or os.PathLike), got {path!r}")
        header, arrays, solver = read_model_file(path)
        model = cls(header["algorithm"], **header["params"])
        core = {name: arrays.get(name) for name in CORE_ARRAYS}
        model._install({**core, "global_mean": header["global_mean"]},
                       (arrays["seen_indptr"], arrays["seen_indices"]), arrays["user_ids"],
                       arrays["item_ids"], solver, dict(model._params),
                       **fitted_attributes(header))
        return model
