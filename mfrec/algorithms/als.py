"""Alternating least squares on one weighted-least-squares kernel.

Every iteration solves the users with the items fixed, then the items with
the users fixed; both half-steps are ``_core.als_half_step`` (csrc/core/als.c),
which for each row solves

    (w0 Y^T Y + sum_obs (c_ij - w0) y_j y_j^T + lambda_i I) x = sum_obs c_ij t_ij y_j

so that each iteration lowers (with solver="cholesky": minimizes over one
side, then the other) the objective

    sum_obs c_ij (t_ij - u_i.v_j)^2 + w0 sum_unobs (u_i.v_j)^2
        + sum_i lambda_i |u_i|^2 + sum_j lambda_j |v_j|^2.

``"als"`` (explicit ratings): w0 = 0, c = 1, t = r - mu - b_u - b_i; the
biases are extra columns (the user solve has features (q_i, 1) and unknowns
(p_u, b_u), and the reverse), regularized like the factors.
``scale_regularization=True`` (the default) is ALS-WR: lambda_i = lambda *
(the row's number of ratings).

``"wals"`` (weighted MF): t = the observed value, c = 1 (times the optional
row and column weights), and the unobserved entries pull u.v to 0 with
weight w0 = ``unobserved_weight`` (default 0.1). w0 = 0 fits the observed
entries only; w0 = 1 treats every missing entry as a 0 (the zero-filled
matrix, whose unregularized optimum is its truncated SVD). With ``alpha``
given it is implicit feedback (Hu, Koren, Volinsky): the preference is
t = 1[r > 0], the confidence c = 1 + alpha r, and w0 defaults to 1 (binary
data, all r = 1, gives c = 1 + alpha everywhere; implicit's
AlternatingLeastSquares uses c = alpha r, so its alpha is 1 + ours on binary
data). ``row_weights`` / ``col_weights`` = e >= 0 weigh the observed entries
of each user / item by (count / mean count)^-e (None or 0: weight 1).
Predictions are u.v: no global mean, no clipping.

Side features (``"als"``; see features.py): the rows are p_u + sum_a X_ua Z_a
and q_i + sum_g Y_ig W_g, biases likewise, and the objective adds
lambda_f (|W_g|^2 + c_g^2) per feature (lambda_f = lambda times the number of
ratings the feature takes part in, under scale_regularization). An
iteration solves, each exactly with the rest fixed: the users' free rows
(the kernel, on the ratings less the users' feature part), each user
feature in turn (a (k+1) x (k+1) least squares over the ratings it takes
part in), then the same for the items; the objective never rises.

Solvers: "cholesky" solves each row's d x d system exactly; "cg" takes
``cg_steps`` conjugate-gradient steps from the previous factors (faster for
large k or data; each step still lowers the objective). The history's
``train_loss`` is the exact objective after the iteration, its unobserved
term included.
"""
from __future__ import annotations

import math
from typing import Dict, Optional

import numpy as np

from .. import _core
from . import INIT_KINDS, Algorithm, check_bool, check_choice, check_float, check_int, register
from .features import FeatureSolver

SOLVERS = ("cholesky", "cg")


def _check_optional_float(params, name):
    if params[name] is not None:
        check_float(params, name, 0.0)


class _Alternating(Algorithm):
    """The iteration both models share; subclasses set the kernel's mode."""

    iterations_param = "iterations"
    writes_in_place = False  # the core model's arrays: publish assigns new ones
    #: the fit's own factors and biases by side, solved in place (see start)
    factors: Optional[Dict[str, np.ndarray]] = None
    bias: Dict[str, Optional[np.ndarray]] = {}

    @classmethod
    def check_params(cls, params):
        super().check_params(params)
        check_float(params, "regularization", 0.0)
        check_bool(params, "scale_regularization")
        check_choice(params, "solver", SOLVERS)
        check_int(params, "cg_steps", 1)
        check_float(params, "init_scale", 0.0)

    def kernel_mode(self) -> dict:
        """Keyword arguments of als_half_step that define the model."""
        raise NotImplementedError

    def fold_in_regularization(self, n_ratings):
        """lambda_i of a new user with n_ratings ratings, as the user
        half-step applies it."""
        lam = float(self.params["regularization"])
        return lam * n_ratings if self.params["scale_regularization"] else lam

    def side_weights(self, train):
        return self.weights_from_counts(np.diff(train.by_user[0]), np.diff(train.by_item[0]))

    def weights_from_counts(self, user_counts, item_counts):
        """(user weights, item weights) of the kernel from each row's
        number of ratings (None: all 1)."""
        return None, None

    def reads_indices(self, train) -> bool:
        """Whether the fit reads the triplets' indices (train.users/items)
        besides the CSRs; if not, they are freed at set-up."""
        return False

    def half_step_kwargs(self) -> dict:
        """The keyword arguments of every als_half_step of a fit (the
        blocked fit of mfrec.dask passes the same)."""
        p = self.params
        return dict(self.kernel_mode(), regularization=p["regularization"],
                    scale_regularization=p["scale_regularization"], solver=p["solver"],
                    cg_steps=p["cg_steps"], n_threads=p["n_threads"])

    def start(self, core, train, seed):
        """Random item factors, N(0, init_scale^2) from (seed, stream 1) as
        Algorithm.init_factors draws them; the user factors start at 0: the
        first half-step solves them from the items (0 is CG's warm start).
        The half-steps solve the fit's own arrays in place (publish copies
        them into the core model); with biases each row is (factors, 1),
        the layout the kernel solves in, so that no half-step copies a side."""
        p = self.params
        k = p["factors"]
        if not self.reads_indices(train):  # freed before anything else is allocated
            train.by_user  # built from them first
            train.drop_indices()
            train.drop_unit_values()
        Q = np.empty((train.n_items, k), np.float32)
        _core.init_factors(Q, INIT_KINDS["normal"], p["init_scale"], seed, 1)
        P = np.zeros((train.n_users, k), np.float32)
        self.bias = {"user": None, "item": None}
        if p.get("biases"):
            P, Q = (np.hstack([X, np.ones((len(X), 1), np.float32)]) for X in (P, Q))
            self.bias = {"user": np.zeros(len(P), np.float32),
                         "item": np.zeros(len(Q), np.float32)}
        else:
            core.global_mean = 0.0
        self.factors = {"user": P, "item": Q}
        train.by_item  # both CSRs at set-up, none inside the first timed iteration
        self.user_weights, self.item_weights = self.side_weights(train)
        self.sse = None  # the last item half-step's squared errors (train_rmse)
        self.kwargs = self.half_step_kwargs()

    def owns_state(self):
        return self.factors is not None

    def publish(self, core):
        """Copies of the fit's factors (without the column of ones) and
        biases into the core model."""
        if self.factors is None:
            return
        k = self.params["factors"]
        for side in ("user", "item"):
            setattr(core, f"{side}_factors", self.factors[side][:, :k])
            setattr(core, f"{side}_bias", self.bias[side])

    def finish(self, core, n_done):
        """The fit's own arrays freed: the core model holds its state."""
        self.factors, self.bias = None, {}

    def half_step(self, core, by, side, other, row_weights, col_weights, **kwargs):
        """Solve the rows of `side` with `other` fixed, in place (the
        current rows are CG's warm start)."""
        return _core.als_half_step(
            *by, self.factors[other], self.factors[side], x_bias=self.bias[side],
            y_bias=self.bias[other], offset=core.global_mean, row_weights=row_weights,
            col_weights=col_weights, augmented=self.bias[side] is not None,
            **{**self.kwargs, **kwargs})

    def step(self, core, train, iteration):
        """Users, then items; returns the objective at the new factors."""
        try:
            users = self.half_step(core, train.by_user, "user", "item", self.user_weights,
                                   self.item_weights, loss=False)
            items = self.half_step(core, train.by_item, "item", "user", self.item_weights,
                                   self.user_weights)
            self.sse = items["sse"]
        except np.linalg.LinAlgError:  # the core's "not positive definite"
            r = train.ratings
            raise np.linalg.LinAlgError(
                f"{self.name}: iteration {iteration + 1}: a user's or item's least-squares "
                f"system is not positive definite (regularization="
                f"{self.params['regularization']}, ratings from {r.min():g} to {r.max():g}): "
                "use a larger regularization, or rescale ratings so that float32 sums of "
                "their squares stay finite") from None
        return items["data"] + items["reg"] + users["reg"]

    def train_rmse(self, core, train, n_threads):
        """From the item half-step, which scored every rating at the
        iteration's final factors (see csrc/core/als.c for its rounding)."""
        if self.sse is None:
            return super().train_rmse(core, train, n_threads)
        return math.sqrt(self.sse / len(train))


@register
class ALS(FeatureSolver, _Alternating):
    """Explicit ratings: squared error on the observed ratings, L2 on
    factors and biases, lambda optionally scaled by the row's count; side
    features of users and items optional."""

    name = "als"
    defaults = {
        "factors": 50,
        "regularization": 0.12,
        "biases": True,
        "scale_regularization": True,
        "iterations": 15,
        "solver": "cholesky",
        "cg_steps": 3,
        "init_scale": 0.1,
        "feature_combine": "mean",
        "seed": None,
        "n_threads": 1,
    }

    @classmethod
    def check_params(cls, params):
        super().check_params(params)
        check_bool(params, "biases")

    def kernel_mode(self):
        return {"unobserved_weight": 0.0, "alpha": 0.0, "binary": False}

    def reads_indices(self, train):
        """The feature steps read them."""
        return train.user_features is not None or train.item_features is not None

    def start(self, core, train, seed):
        super().start(core, train, seed)
        if self.reads_indices(train):  # the feature steps solve the core model's arrays
            self.publish(core)
            self.factors = None
        if self.start_features(core, train, self.params["biases"]):
            self.occurrences = {side: feature_occurrences(f, train.users if side == "user"
                                                          else train.items)
                                for side, f in self.features.items() if f is not None}

    def step(self, core, train, iteration):
        if self.free is None:
            return super().step(core, train, iteration)
        reg = 0.0
        for side, other, by in (("user", "item", train.by_user), ("item", "user", train.by_item)):
            reg += self.free_half_step(core, side, other, by)
            self.materialize(core, [side])
            if self.features[side] is not None:
                reg += self.feature_steps(core, train, side, other)
                self.materialize(core, [side])
        residual = train.ratings - core._predict(train.users, train.items)
        return float(np.dot(residual, residual)) + reg

    def free_half_step(self, core, side, other, by):
        """Solve the free rows of `side` (those with ratings) with the other
        side's effective rows fixed; returns their regularization term."""
        indptr, indices, values = by
        counts = np.diff(indptr)
        Y, y_bias = getattr(core, f"{other}_factors"), getattr(core, f"{other}_bias")
        free = getattr(self.free, f"{side}_factors")
        free_bias = getattr(self.free, f"{side}_bias")
        if self.features[side] is not None:  # take the rows' feature part off the ratings
            rows = np.repeat(np.arange(len(counts)), counts)
            F = getattr(core, f"{side}_factors") - free
            shift = np.einsum("ij,ij->i", F[rows], Y[indices])
            if free_bias is not None:
                shift += (getattr(core, f"{side}_bias") - free_bias)[rows]
            values = (values - shift).astype(np.float32)
        rated = counts > 0  # rows without ratings keep free parts of zero
        X = np.ascontiguousarray(free[rated])
        x_bias = None if free_bias is None else np.ascontiguousarray(free_bias[rated])
        result = _core.als_half_step(
            np.r_[0, np.cumsum(counts[rated])].astype(np.int64), indices, values, Y, X,
            x_bias=x_bias, y_bias=y_bias, offset=core.global_mean, loss=False, **self.kwargs)
        free = free.copy()  # the model's arrays are read-only: set new ones
        free[rated] = X
        setattr(self.free, f"{side}_factors", free)
        if free_bias is not None:
            free_bias = free_bias.copy()
            free_bias[rated] = x_bias
            setattr(self.free, f"{side}_bias", free_bias)
        return result["reg"]

    def feature_steps(self, core, train, side, other):
        """Solve each feature of `side` in turn (vector and bias) with
        everything else fixed; returns their regularization term.

        Feature g's step is a ridge regression over the ratings j it takes
        part in (weight w_j): w_j (y_j . V_g + c_g) ~ e_j + w_j (y_j . V_g +
        c_g)_old, with y_j the other side's effective row. It is the kernel's
        one-row problem with targets t_j / w_j and column weights w_j^2, so
        the Gram matrix is formed and solved in C with single-threaded BLAS."""
        p = self.params
        ptr, rating, weight = self.occurrences[side]
        other_index = train.items if side == "user" else train.users
        Y = getattr(core, f"{other}_factors")
        V = getattr(self, f"{side}_feature_factors")
        c = getattr(self, f"{side}_feature_bias")
        error = train.ratings - core._predict(train.users, train.items)
        reg = 0.0
        for g in range(len(ptr) - 1):
            J, w = rating[ptr[g]:ptr[g + 1]], weight[ptr[g]:ptr[g + 1]]
            if len(J) == 0:
                continue
            Yg = Y[other_index[J]]
            old = np.einsum("ij,j->i", Yg, V[g]) + (c[g] if c is not None else 0.0)
            target = error[J] + w * old
            x, x_bias = V[g:g + 1].copy(), None if c is None else c[g:g + 1].copy()
            lam = p["regularization"] * (len(J) if p["scale_regularization"] else 1)
            _core.als_half_step(
                np.array([0, len(J)], np.int64), np.arange(len(J), dtype=np.int32),
                (target / w).astype(np.float32), Yg, x, x_bias=x_bias,
                y_bias=None if c is None else np.zeros(len(J), np.float32),
                col_weights=(w * w).astype(np.float32), regularization=lam,
                scale_regularization=False, solver="cholesky", loss=False,
                n_threads=p["n_threads"], **self.kernel_mode())
            V[g], new = x[0], np.einsum("ij,j->i", Yg, x[0])
            if c is not None:
                c[g] = x_bias[0]
                new += x_bias[0]
            error[J] = target - w * new
            reg += lam * (float(x[0].astype(np.float64) @ x[0])
                          + (float(x_bias[0]) ** 2 if c is not None else 0.0))
        return reg


def feature_occurrences(features, index):
    """For each feature, the ratings (positions in the training arrays)
    whose row on this side has it, and the row's weight for it: CSR-like
    (ptr over features, rating positions, weights)."""
    n_rows = len(features.indptr) - 1
    order = np.argsort(index, kind="stable")
    row_ptr = np.r_[0, np.cumsum(np.bincount(index, minlength=n_rows))]
    feat_rows = np.repeat(np.arange(n_rows), np.diff(features.indptr))
    per_entry = row_ptr[feat_rows + 1] - row_ptr[feat_rows]  # ratings of each entry's row
    entry = np.repeat(np.arange(len(feat_rows)), per_entry)
    within = np.arange(len(entry)) - np.repeat(np.cumsum(per_entry) - per_entry, per_entry)
    rating = order[row_ptr[feat_rows[entry]] + within]
    feature = features.indices[entry]
    by_feature = np.argsort(feature, kind="stable")
    ptr = np.r_[0, np.cumsum(np.bincount(feature, minlength=features.n_features))]
    return ptr, rating[by_feature], features.weights[entry][by_feature]


@register
class WALS(_Alternating):
    """Weighted MF (unobserved weight w0) and implicit feedback (alpha)."""

    name = "wals"
    clip_predictions = False
    defaults = {
        "factors": 50,
        "unobserved_weight": None,
        "regularization": 0.1,
        "alpha": None,
        "row_weights": None,
        "col_weights": None,
        "scale_regularization": False,
        "iterations": 15,
        "solver": "cholesky",
        "cg_steps": 3,
        "init_scale": 0.1,
        "seed": None,
        "n_threads": 1,
    }

    @classmethod
    def check_params(cls, params):
        super().check_params(params)
        for name in ("unobserved_weight", "alpha", "row_weights", "col_weights"):
            _check_optional_float(params, name)

    @property
    def implicit(self) -> bool:
        return self.params["alpha"] is not None

    @property
    def w0(self) -> float:
        """The unobserved weight in use: 1 for implicit feedback, 0.1 for
        weighted MF, unless given."""
        w0 = self.params["unobserved_weight"]
        return float(w0) if w0 is not None else (1.0 if self.implicit else 0.1)

    def check_data(self, train):
        super().check_data(train)
        if self.implicit and train.ratings.min() < 0:
            raise ValueError("implicit feedback (alpha given) needs ratings >= 0 "
                             f"(counts or 0/1); found {train.ratings.min()}")

    def kernel_mode(self):
        alpha = self.params["alpha"]
        return {"unobserved_weight": self.w0, "alpha": 0.0 if alpha is None else float(alpha),
                "binary": self.implicit}

    def weights_from_counts(self, user_counts, item_counts):
        p = self.params
        return (count_weights(p["row_weights"], user_counts),
                count_weights(p["col_weights"], item_counts, name="col_weights"))

    def fold_in(self, model, items, ratings, lam):
        """The new user's row of the user half-step: the weighted least
        squares over every item (the unobserved ones with weight w0), with
        lambda_i = lam and the model's weights (the user's from its count)."""
        p = self.params
        order = np.argsort(items)
        user_counts = np.diff(model.seen_indptr)
        item_counts = np.bincount(model.seen_indices, minlength=len(model.item_ids))
        row_weight = None
        if p["row_weights"]:
            row_weight = count_weights(p["row_weights"], np.array([len(items)]),
                                       mean=user_counts.mean())
        x = np.zeros((1, model.item_factors.shape[1]), np.float32)
        try:
            _core.als_half_step(
                np.array([0, len(items)], np.int64), items[order], ratings[order],
                model.item_factors, x, row_weights=row_weight,
                col_weights=count_weights(p["col_weights"], item_counts, name="col_weights"),
                regularization=lam, **self.kernel_mode())
        except FloatingPointError:
            raise FloatingPointError("fold_in: ratings: so extreme that the new user's "
                                     "factors overflow float32") from None
        return x[0], 0.0


def count_weights(exponent, counts, mean=None, name="row_weights"):
    """(count / mean count)^-exponent as float32, or None for exponent 0/None;
    ValueError naming the parameter `name` if a weight leaves float32."""
    if not exponent:
        return None
    mean = counts.mean() if mean is None else mean
    with np.errstate(over="ignore", divide="ignore"):
        weights = ((counts / mean) ** -float(exponent)).astype(np.float32)
    if not np.isfinite(weights).all():
        raise ValueError(f"{name}={exponent}: the weights (count / mean count)^-{exponent} "
                         "overflow float32; use a smaller exponent")
    return weights
