"""The fitting methods behind ``Model(algorithm)``.

Each algorithm is a subclass of :class:`Algorithm` registered under its name.
It declares its parameters with their defaults, checks them, and fills the
core model (a ``_core.Model``: factors, biases, global mean) either one
iteration at a time (``start`` + ``step``) or in closed form (``solve``).
Everything else -- id mapping, the iteration loop, early stopping, history,
prediction, top-N, save/load -- is shared by ``mfrec.model`` and the modules
it stands on (``_ids``, ``_training``, ``_predictions``, ``_modelfile``).
"""
from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass
from functools import cached_property
from typing import Dict, Optional, Type

import numpy as np

from .. import _core

__all__ = ["Algorithm", "Features", "TrainData", "get_algorithm", "register", "ALGORITHMS",
           "check_threads"]

ALGORITHMS: Dict[str, Type["Algorithm"]] = {}

INIT_KINDS = {"uniform": 0, "normal": 1}


def register(cls):
    ALGORITHMS[cls.name] = cls
    return cls


def get_algorithm(name) -> Type["Algorithm"]:
    if not isinstance(name, str) or name not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {sorted(ALGORITHMS)}, got {name!r}")
    return ALGORITHMS[name]


@dataclass(frozen=True)
class Features:
    """Side features of the model's users or items: row r of the CSR
    (indptr int64, indices int32, weights float32) holds the features of
    index r, n_features columns."""

    indptr: np.ndarray
    indices: np.ndarray
    weights: np.ndarray
    n_features: int

    def combined(self, how: str) -> "Features":
        """The weights for a "sum" of feature vectors (as given) or a
        "mean" (each row divided by its sum of absolute weights)."""
        if how == "sum":
            return self
        n_rows = len(self.indptr) - 1
        rows = np.repeat(np.arange(n_rows), np.diff(self.indptr))
        row_sum = np.bincount(rows, weights=np.abs(self.weights), minlength=n_rows)
        weights = self.weights / np.where(row_sum > 0, row_sum, 1.0)[rows]
        return Features(self.indptr, self.indices, weights.astype(np.float32), self.n_features)


class TrainData:
    """Training ratings as contiguous indices (int32) and float32 values,
    with the CSR by user and by item built on first use (by item: the one
    by user transposed, with n_threads). Users and items may include some
    without ratings, known only from their side features (user_features /
    item_features: Features or None)."""

    def __init__(self, users, items, ratings, n_users, n_items, user_features=None,
                 item_features=None, n_threads=1):
        # read-only (sealed) copies, which the kernels read without copying
        # them again; arrays sealed already are kept as they are
        self.users, self.items = _core.sealed_indices(users), _core.sealed_indices(items)
        self.ratings = ratings
        self.n_users, self.n_items = n_users, n_items
        self.user_features, self.item_features = user_features, item_features
        self.n_threads = n_threads

    def __len__(self):
        return len(self.ratings)

    @cached_property
    def by_user(self):
        """(indptr, item indices, ratings) of each user, items ascending."""
        return _core.build_csr(self.users, self.items, self.ratings, self.n_users, self.n_items)

    @cached_property
    def by_item(self):
        """(indptr, user indices, ratings) of each item, users ascending."""
        return _core.transpose_csr(self.by_user, self.n_items, self.n_threads)

    def keep_seen(self):
        """(indptr, item indices) of each user, the CSR by user's (or the
        pattern alone, built if the fit dropped the CSR), all else freed:
        the model copies only these."""
        seen = self.by_user[:2] if "by_user" in self.__dict__ else _core.build_csr(
            self.users, self.items, None, self.n_users, self.n_items, keep_values=False)[:2]
        self.drop_indices()
        self.drop_csrs()
        return seen

    def drop_indices(self) -> None:
        """Free the rating triplets' index arrays (users, items) for a fit
        that reads only the CSRs it has built (the CSR by item is built from
        the one by user): peak memory."""
        self.users = self.items = None

    def drop_unit_values(self) -> None:
        """With every rating 1 (binary data), the CSRs keep no values (None:
        ones), for kernels that take them so (als_half_step)."""
        r = self.ratings  # min and max: no array of a bool per rating (peak memory)
        if len(r) == 0 or (r.min() == 1 and r.max() == 1):
            indptr, indices, _ = self.by_user
            self.__dict__.pop("by_item", None)
            self.by_user = (indptr, indices, None)

    def drop_csrs(self) -> None:
        """Free the CSRs (built again if read again), e.g. while a fit that
        does not read them runs, or once the model keeps its own copy."""
        self.__dict__.pop("by_user", None)
        self.__dict__.pop("by_item", None)


# ---- parameter checks shared by the algorithms -----------------------------

INT_MAX = 2**31 - 1   # the kernels' C int


def check_int(params, name, low=1, allow_none=False, high=INT_MAX):
    v = params[name]
    if v is None and allow_none:
        return
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not low <= v <= high:
        raise ValueError(f"{name} must be an integer >= {low} and <= {high}, got {v!r}")


def check_threads(n_threads):
    """n_threads: an integer in [0, MAX_THREADS] (0: all cores)."""
    if isinstance(n_threads, bool) or not isinstance(n_threads, numbers.Integral) \
            or not 0 <= n_threads <= _core.MAX_THREADS:
        raise ValueError(f"n_threads must be an integer >= 0 and <= {_core.MAX_THREADS} "
                         f"(0: all cores), got {n_threads!r}")


def check_float(params, name, low=0.0, strict=False):
    """A real number >= low (> low if strict) that survives the float32 of
    the kernels (1e-50 would become 0, 1e300 infinity)."""
    v = params[name]
    ok = isinstance(v, numbers.Real) and not isinstance(v, bool)
    if ok:
        with np.errstate(over="ignore"):
            v32 = np.float32(float(v)) if abs(v) < 1e300 else np.float32(np.inf)
        ok = bool(np.isfinite(v32)) and (v32 > low if strict else v32 >= low)
    if not ok:
        op = ">" if strict else ">="
        raise ValueError(f"{name} must be a finite number {op} {low} (float32 range), "
                         f"got {v!r}")


def physical_memory() -> Optional[int]:
    """Bytes of memory this machine has, or None where it cannot tell."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def check_memory(nbytes: int, what: str) -> None:
    """Refuse, before allocating, what needs more memory than the machine
    has (it would be killed, or fail deep inside, not with a clear error)."""
    total = physical_memory()
    if total is not None and nbytes > total:
        raise ValueError(f"{what} need {nbytes / 1e9:.3g} GB, more than this machine's "
                         f"{total / 1e9:.3g} GB of memory")


def check_choice(params, name, choices):
    try:
        known = params[name] in choices
    except TypeError:  # unhashable
        known = False
    if not known:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {params[name]!r}")


def check_bool(params, name):
    if not isinstance(params[name], (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {params[name]!r}")


class Algorithm:
    """Base of the fitting methods. Subclasses set ``name`` and ``defaults``
    and implement ``start``/``step`` (iterative) or ``solve`` (closed form)."""

    name = ""
    #: parameter -> default; every algorithm has factors, seed and n_threads
    defaults: Dict[str, object] = {}
    #: the parameter that counts iterations, or None for a closed form
    iterations_param: Optional[str] = "epochs"
    #: predictions are clipped to the training rating range by default
    clip_predictions = True
    #: names of fitted attributes or methods of the solver that the Model
    #: exposes as its own (e.g. singular_values, energy)
    fitted_attributes: tuple = ()
    #: the algorithm learns from user_features / item_features
    uses_features = False
    #: its kernels update the core model's arrays in place (False: it only
    #: assigns new ones, so a snapshot of the fit may keep the old arrays
    #: themselves instead of copies)
    writes_in_place = True

    def __init__(self, params: dict):
        self.params = params

    @classmethod
    def check_params(cls, params: dict) -> None:
        check_int(params, "factors", 1)
        check_int(params, "seed", 0, allow_none=True, high=2**64 - 1)
        check_threads(params["n_threads"])
        if cls.iterations_param:
            check_int(params, cls.iterations_param, 1)

    #: True, or why fit(early_stopping=...) does not apply
    stops_early: object = True
    #: bytes of each feature column's vector and bias, per factor
    feature_value_bytes = 4

    def check_features(self, side: str, n_features: int) -> None:
        """Every feature column gets a vector and a bias, used or not (and
        per-column counters): refuse a declared width the machine cannot
        hold before anything is allocated."""
        k = self.params["factors"]
        check_memory(n_features * (self.feature_value_bytes * (k + 1) + 24),
                     f"{side}_features: the vectors of its {n_features} columns (factors={k})")

    def check_data(self, train: TrainData) -> None:
        """Raise ValueError if the data cannot support the parameters."""
        k = self.params["factors"]
        if k > min(train.n_users, train.n_items):
            raise ValueError(f"factors={k} is larger than the rating matrix allows "
                             f"({train.n_users} users x {train.n_items} items)")

    def init_factors(self, core, train, seed, kind="normal", scale=0.1):
        """Random P and Q from (seed, stream 0/1); zero biases if wanted."""
        k = self.params["factors"]
        P = np.empty((train.n_users, k), np.float32)
        Q = np.empty((train.n_items, k), np.float32)
        _core.init_factors(P, INIT_KINDS[kind], scale, seed, 0)
        _core.init_factors(Q, INIT_KINDS[kind], scale, seed, 1)
        core.user_factors, core.item_factors = P, Q

    def start(self, core, train: TrainData, seed: int) -> None:
        raise NotImplementedError

    def step(self, core, train: TrainData, iteration: int) -> Optional[float]:
        """One iteration; returns the training loss it reports, or None."""
        raise NotImplementedError

    def solve(self, core, train: TrainData, seed: int) -> None:
        raise NotImplementedError

    def fold_in_regularization(self, n_ratings: int) -> float:
        """The ridge penalty lambda for folding in a new user with n_ratings
        ratings (Model.fold_in): the per-rating L2 weight the algorithm
        trains with, summed over the ratings, as SGD's updates apply it.
        0 means "none": fold_in then asks for an explicit value."""
        return float(self.params.get("regularization", 0.0)) * n_ratings

    def fold_in(self, model, items, ratings, lam):
        """(factors, bias) of a new user who rated `items` (int32 indices):
        by default the ridge regression of Model.fold_in (_core.fold_in)."""
        return _core.fold_in(model, items, ratings, lam)

    #: what extra_arrays may return, name -> (dtype, shape), the shape's
    #: entries as _modelfile.read describes them (numbers, ranges, "users",
    #: "items", "factors", "rank", ... or None: any): a model file holds no
    #: other arrays, and none of another type or shape
    extra_shapes: Dict[str, tuple] = {}
    #: the factor arrays hold one block of ``factors`` columns per posterior
    #: sample (Bayesian MF's exact low-rank posterior mean), not ``factors``
    stacked_factors = False

    def predictions(self, core, users, items, n_threads):
        """The predictions the fit loop scores after each iteration (float32;
        -1 marks an unknown id): by default those of the core model."""
        return core._predict(users, items, n_threads)

    def train_rmse(self, core, train: TrainData, n_threads: int) -> float:
        """The RMSE of the predictions on the training pairs after a step
        (inf if one is not finite): by default predicted afresh; an
        algorithm whose step met every rating on its way returns its sum."""
        pred = self.predictions(core, train.users, train.items, n_threads)
        if not np.isfinite(pred).all():
            return math.inf
        return _core.rmse_mae(pred, train.ratings)[0]

    def train_rmse_by_user(self, core, train: TrainData, n_threads: int) -> float:
        """train_rmse for algorithms that predict with the core model as it
        is: the same float32 predictions scored user by user over the CSR
        (each user's row read once; cheaper than the pairs' input order).
        Only the double sum's order differs, by a few ulps."""
        sse = _core.predict_sse(core, train.by_user, n_threads)
        return math.sqrt(sse / len(train)) if math.isfinite(sse) else math.inf

    def owns_state(self) -> bool:
        """Whether the steps update arrays of the solver's own, in place,
        which publish copies into the core model (ALS: no copy of a side
        per step); else the core model is the fit's state."""
        return False

    def runs_lean(self) -> bool:
        """Whether a fit without validation or early stopping may keep no
        snapshot of its iterations: Ctrl-C then waits for the iteration
        under way, after which the state (the solver's own, published at
        the end, or the core model's) is a complete fit of that length."""
        return self.owns_state()

    def publish(self, core) -> None:
        """The fit's state into the core model (see owns_state)."""

    def finish(self, core, n_done: int) -> None:
        """After the fit loop, with n_done iterations kept: final touches
        to the core model (Bayesian MF writes its posterior mean)."""

    #: the ratings' timestamps are part of the model (Bayesian MF's context)
    uses_context = False

    def take_timestamps(self, ratings, timestamps, n: int) -> None:
        """fit's `timestamps` (or those of a Ratings): refused unless used."""
        if timestamps is not None:
            raise ValueError(f"timestamps: algorithm {self.name!r} does not use them "
                             "(Model('bayes', context='day') does)")

    def context_index(self, model, timestamps, n):
        """predict's `timestamps` as what transform takes (None: none)."""
        self.take_timestamps(None, timestamps, n)

    def transform(self, model, uidx, iidx, pred, cidx=None):
        """The predictions from the core model's scores (by default those)."""
        return pred

    def predict_std(self, model, uidx, iidx, cidx=None):
        """Predictive standard deviations (algorithms with a posterior)."""
        raise ValueError(f"algorithm {self.name!r} has no predictive distribution: "
                         "return_std and predict_interval need algorithm 'bayes'")

    def predict_interval(self, model, uidx, iidx, level):
        """(low, high) holding `level` of the predictive distribution."""
        return self.predict_std(model, uidx, iidx)

    # Extra fitted arrays an algorithm keeps (saved and loaded with the model).
    def extra_arrays(self) -> Dict[str, np.ndarray]:
        return {}

    def load_extra_arrays(self, arrays: Dict[str, np.ndarray]) -> None:
        pass


from . import sgd  # noqa: E402,F401  (registers)
from . import popular  # noqa: E402,F401  (registers)
from . import svd  # noqa: E402,F401  (registers)
from . import nmf  # noqa: E402,F401  (registers)
from . import als  # noqa: E402,F401  (registers)
from . import bayes  # noqa: E402,F401  (registers)
