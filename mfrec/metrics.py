"""Accuracy metrics (sums in C, in double precision)."""
from __future__ import annotations

import numpy as np

from . import _core
from .ratings import as_ratings

__all__ = ["rmse", "mae"]


def _pair(predictions, truth):
    p, t = as_ratings(predictions, "predictions"), as_ratings(truth, "truth")
    if len(p) != len(t):
        raise ValueError(f"predictions and truth must have the same length ({len(p)} != {len(t)})")
    if len(p) == 0:
        raise ValueError("no predictions to score (empty arrays)")
    return _core.rmse_mae(p, t)


def rmse(predictions, truth) -> float:
    """Root mean squared error."""
    return _pair(predictions, truth)[0]


def mae(predictions, truth) -> float:
    """Mean absolute error."""
    return _pair(predictions, truth)[1]
