"""What the core computes, as a caller sees it: the baseline for unknown ids,
clipping to the rating range, top-N lists as raw ids."""
from __future__ import annotations

import numpy as np

from ._vocab import padding


def unknown_to_mean(pred: np.ndarray, uidx, iidx, core, solver, rating_mean) -> np.ndarray:
    """An explicit-rating model without biases predicts the mean training
    rating for a pair with an unknown id (the core's baseline, its global
    mean, is 0 there); other models keep the core's baseline."""
    if (core.user_bias is None and solver is not None and solver.clip_predictions
            and rating_mean is not None):
        pred[(uidx < 0) | (iidx < 0)] = rating_mean
    return pred


def clip_to(pred: np.ndarray, rating_range) -> np.ndarray:
    if rating_range is None:
        return pred
    return np.clip(pred, rating_range[0], rating_range[1], out=pred)


def raw_lists(lists, width, ids, single):
    """Core lists (indices, scores, counts) as raw ids, `width` columns;
    one user's list is cut to its valid entries."""
    idx, scores, counts = lists
    idx, scores = idx[:, :width], scores[:, :width]
    raw = np.where(idx >= 0, ids[np.maximum(idx, 0)], padding(ids))
    if single:
        return raw[0, :counts[0]], scores[0, :counts[0]]
    return raw, scores


def check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    return int(n)
