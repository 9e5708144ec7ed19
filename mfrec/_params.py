"""Parameter checks with messages that name the parameter: an algorithm's
parameters (its defaults filled in) and the per-call ones of Model."""
from __future__ import annotations

import numpy as np

from .algorithms import get_algorithm


def checked_params(algorithm, params: dict) -> dict:
    """The full, checked parameters of `algorithm` (its defaults filled in)."""
    cls = get_algorithm(algorithm)
    unknown = sorted(set(params) - set(cls.defaults))
    if unknown:
        raise TypeError(f"unknown parameter(s) {unknown} for algorithm {algorithm!r}; "
                        f"it takes {sorted(cls.defaults)}")
    full = {**cls.defaults, **params}
    cls.check_params(full)
    return full


def changed_params(algorithm: str, params: dict) -> dict:
    """The parameters that differ from `algorithm`'s defaults (for repr)."""
    defaults = get_algorithm(algorithm).defaults
    return {k: v for k, v in params.items() if v != defaults[k]}


def check_level(level) -> float:
    if isinstance(level, bool) or not isinstance(level, (int, float, np.floating)) \
            or not 0 < level < 1:
        raise ValueError(f"level must be a number in (0, 1), got {level!r}")
    return float(level)


def fold_in_lambda(model, regularization, n_ratings: int) -> float:
    """The ridge weight of a fold-in: the one given, checked, or the
    fitted algorithm's choice for a user with `n_ratings` ratings."""
    if regularization is None:
        lam = model._solver.fold_in_regularization(n_ratings)
        if not lam > 0:
            raise ValueError(f"this {model._fitted_algorithm!r} model was trained without "
                             "regularization: pass regularization > 0 to fold in a user")
        return float(lam)
    return check_regularization(regularization)


def check_regularization(regularization) -> float:
    if isinstance(regularization, bool) \
            or not isinstance(regularization, (int, float, np.number)) \
            or not np.isfinite(regularization) or regularization <= 0:
        raise ValueError(f"regularization must be a finite number > 0, got {regularization!r}")
    return float(regularization)
