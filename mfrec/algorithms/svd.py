"""Truncated SVD of the filled rating matrix: the closed-form route.

The missing entries of the rating matrix R are filled with a baseline
F_ui = mu + b_u + b_i (``fill``), and the residual

    A = P_Omega(R - F)     (the filled matrix minus F: zero where R is missing)

is factored by a truncated SVD, A ~ U_k Sigma_k V_k^T; predictions are
F + U_k Sigma_k V_k^T. With ``center=False`` the filled matrix itself,
P_Omega(R - F) + F, is factored and predictions are U_k Sigma_k V_k^T alone.

Fills: "zero" (F = 0), "global_mean" (mu), "user_mean" (each user's mean),
"item_mean" (each item's mean) and "baseline" (mu + b_u + b_i, the damped
biases of ``mfr_baseline_biases``: ``bias_passes`` alternating passes with
damping ``bias_reg_user``/``bias_reg_item``, Surprise's BaselineOnly ALS).

Solvers (csrc/core/svd.c): "dense" forms A and calls LAPACK dgesdd (every singular
value); "randomized" never forms A (Halko-Martinsson-Tropp range finder with
``oversampling`` extra columns and ``power_iterations`` subspace iterations;
k singular values). "auto" is dense up to DENSE_MAX_ENTRIES matrix entries.

The model's factors are P = U_k Sigma_k^1/2 (user_factors) and Q^T (item_factors,
Q = Sigma_k^1/2 V_k^T), and the fill is its global_mean and biases, so the
shared predict and top-N code serve the SVD like any other model.
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import _core
from . import Algorithm, check_bool, check_choice, check_float, check_int, register

__all__ = ["TruncatedSVD", "DENSE_MAX_ENTRIES", "FILLS"]

FILLS = ("zero", "global_mean", "user_mean", "item_mean", "baseline")
SOLVERS = ("auto", "dense", "randomized")
#: solver="auto" factors matrices of up to this many entries densely (128 MiB)
DENSE_MAX_ENTRIES = 2**24


@register
class TruncatedSVD(Algorithm):
    name = "svd"
    iterations_param = None
    defaults = {
        "factors": 20,
        "fill": "baseline",
        "center": True,
        "solver": "auto",
        "oversampling": 20,
        "power_iterations": 20,
        "bias_reg_user": 15.0,
        "bias_reg_item": 10.0,
        "bias_passes": 10,
        "seed": None,
        "n_threads": 1,
    }
    fitted_attributes = ("singular_values", "spectrum", "total_energy", "user_vectors",
                         "item_vectors", "user_features", "item_features", "solver_used",
                         "energy", "choose_factors")

    @classmethod
    def check_params(cls, params):
        super().check_params(params)
        check_choice(params, "fill", FILLS)
        check_choice(params, "solver", SOLVERS)
        check_bool(params, "center")
        check_int(params, "oversampling", 0)
        check_int(params, "power_iterations", 0)
        check_float(params, "bias_reg_user", 0.0)
        check_float(params, "bias_reg_item", 0.0)
        check_int(params, "bias_passes", 1)

    # ---- fitting -------------------------------------------------------------

    def fill_biases(self, train):
        """(mu, b_u, b_i) of the fill, float64: F_ui = mu + b_u + b_i."""
        p, fill = self.params, self.params["fill"]
        nu, ni = train.n_users, train.n_items
        mu = 0.0 if fill == "zero" else float(np.mean(train.ratings, dtype=np.float64))
        bu, bi = np.zeros(nu), np.zeros(ni)
        if fill in ("user_mean", "item_mean"):
            # every row has a rating: ids come from the training data
            indptr, _, values = train.by_user if fill == "user_mean" else train.by_item
            means = np.add.reduceat(values, indptr[:-1], dtype=np.float64) / np.diff(indptr)
            if fill == "user_mean":
                bu = means - mu
            else:
                bi = means - mu
        elif fill == "baseline":
            bu, bi = _core.baseline_biases(train.by_user, train.by_item, mu, p["bias_reg_user"],
                                           p["bias_reg_item"], p["bias_passes"], p["n_threads"])
        return mu, bu, bi

    def solve(self, core, train, seed):
        p = self.params
        k = p["factors"]
        mu, bu, bi = self.fill_biases(train)
        row_fill, col_fill = mu + bu, bi
        solver = p["solver"]
        if solver == "auto":
            small = train.n_users * train.n_items <= DENSE_MAX_ENTRIES
            solver = "dense" if small else "randomized"
        add_fill = not p["center"]
        if solver == "dense":
            if train.n_users * train.n_items > 2**31 - 1:
                raise ValueError(f"solver='dense' cannot factor a {train.n_users} x "
                                 f"{train.n_items} matrix (more than 2**31 - 1 entries); "
                                 "use solver='randomized'")
            a = _core.svd_densify(train.by_user, row_fill, col_fill, add_fill=add_fill,
                                  n_threads=p["n_threads"])
            spectrum, U, V = _core.svd_dense(a, k, overwrite_a=True, n_threads=p["n_threads"])
            del a
        else:
            spectrum, U, V = _core.svd_randomized(
                train.by_user, train.by_item, row_fill, col_fill, k, add_fill=add_fill,
                oversampling=p["oversampling"], power_iterations=p["power_iterations"],
                seed=seed, n_threads=p["n_threads"])
        self.spectrum = spectrum
        self.user_vectors, self.item_vectors = U, V
        self.total_energy = _core.svd_frobenius2(train.by_user, row_fill, col_fill,
                                                 add_fill=add_fill)
        self.solver_used = solver

        root = np.sqrt(spectrum[:k])
        core.user_factors = (U * root).astype(np.float32)
        core.item_factors = (V * root).astype(np.float32)
        if add_fill or p["fill"] in ("zero", "global_mean"):
            core.global_mean = 0.0 if add_fill else mu
            core.user_bias = core.item_bias = None
        else:
            core.global_mean = mu
            core.user_bias, core.item_bias = bu.astype(np.float32), bi.astype(np.float32)

    # ---- fitted attributes -----------------------------------------------------

    @property
    def singular_values(self) -> np.ndarray:
        """sigma_1 >= ... >= sigma_k (float64)."""
        return self.spectrum[:self.params["factors"]]

    @property
    def user_features(self) -> np.ndarray:
        """P = U_k Sigma_k^1/2 (n_users x k, float64)."""
        return self.user_vectors * np.sqrt(self.singular_values)

    @property
    def item_features(self) -> np.ndarray:
        """Q = Sigma_k^1/2 V_k^T (k x n_items, float64), so that A_k = P Q."""
        return np.sqrt(self.singular_values)[:, None] * self.item_vectors.T

    def energy(self, k=None):
        """The share of ||A||_F^2 retained by the first k singular values,
        sum_{j<=k} sigma_j^2 / ||A||_F^2 (A: the matrix factored).

        The denominator is summed exactly from the ratings and the fill, so
        the figure is exact on every solver. `k` is an int or an array of
        ints in [0, len(spectrum)] (default: factors); the dense solver
        knows every singular value, the randomized one the first `factors`.
        """
        ks = np.asarray(self.params["factors"] if k is None else k)
        if ks.dtype.kind not in "iu":
            raise TypeError(f"k must be an integer or an array of integers, got {k!r}")
        n = len(self.spectrum)
        if ks.size and (ks.min() < 0 or ks.max() > n):
            hint = "" if self.solver_used == "dense" else "; solver=dense computes all"
            raise ValueError(f"k must be in [0, {n}] (the singular values computed{hint}), "
                             f"got {k!r}")
        cumulative = np.concatenate([[0.0], np.cumsum(self.spectrum ** 2)])
        total = self.total_energy
        out = np.minimum(cumulative[ks] / total, 1.0) if total > 0 else np.ones(ks.shape)
        return float(out) if out.ndim == 0 else out

    def choose_factors(self, energy: float) -> int:
        """The smallest k with energy(k) >= `energy` (a share in (0, 1]).

        ValueError if the singular values computed do not reach it (fit with
        solver="dense" for the whole spectrum, or with more factors).
        """
        if isinstance(energy, bool) or not isinstance(energy, numbers.Real) or \
                not 0.0 < energy <= 1.0:
            raise ValueError(f"energy must be a number in (0, 1], got {energy!r}")
        curve = self.energy(np.arange(1, len(self.spectrum) + 1))
        hit = np.flatnonzero(curve >= energy - 1e-12)
        if len(hit) == 0:
            raise ValueError(f"the {len(curve)} singular values computed retain "
                             f"{curve[-1]:.4f} of the energy, less than {energy}; fit with "
                             "solver='dense' (every singular value) or more factors")
        return int(hit[0]) + 1

    # ---- files ------------------------------------------------------------------

    extra_shapes = {"spectrum": ("<f8", ("rank",)), "user_vectors": ("<f8", ("users", "factors")),
                    "item_vectors": ("<f8", ("items", "factors")),
                    "total_energy": ("<f8", (1,)), "solver_used": ("<U10", ())}

    def extra_arrays(self):
        return {"spectrum": self.spectrum, "user_vectors": self.user_vectors,
                "item_vectors": self.item_vectors,
                "total_energy": np.array([self.total_energy]),
                "solver_used": np.array(self.solver_used)}

    def load_extra_arrays(self, arrays):
        k = self.params["factors"]
        s, U, V = arrays["spectrum"], arrays["user_vectors"], arrays["item_vectors"]
        total, solver = arrays["total_energy"], arrays["solver_used"]
        for name, a, ndim in (("spectrum", s, 1), ("user_vectors", U, 2),
                              ("item_vectors", V, 2), ("total_energy", total, 1)):
            if a.dtype != np.float64 or a.ndim != ndim or not np.isfinite(a).all():
                raise ValueError(f"{name} must be a finite {ndim}-D float64 array")
        if len(s) < k or np.any(s < 0) or np.any(np.diff(s) > 0):
            raise ValueError("spectrum must hold at least `factors` non-negative values, "
                             "descending")
        if U.shape[1] != k or V.shape[1] != k:
            raise ValueError(f"user_vectors and item_vectors must have {k} columns")
        if total.shape != (1,) or total[0] < 0:
            raise ValueError("total_energy must be one non-negative value")
        if solver.shape != () or str(solver) not in ("dense", "randomized"):
            raise ValueError("solver_used must be 'dense' or 'randomized'")
        self.spectrum, self.user_vectors, self.item_vectors = s, U, V
        self.total_energy, self.solver_used = float(total[0]), str(solver)
