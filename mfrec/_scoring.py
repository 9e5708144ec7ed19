"""Metric names for cross-validation and search ("rmse", "ndcg@10", ...),
and scoring a fitted model on them."""
from __future__ import annotations

import numbers
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .metrics import evaluate
from .ratings import Ratings

#: metric -> True if greater is better. Ranking metrics take "@k" and come
#: from mfrec.metrics.evaluate (test ratings >= threshold are relevant).
ERROR_METRICS = {"rmse": False, "mae": False}
RANKING_METRICS = {"precision": True, "recall": True, "ndcg": True, "map": True,
                   "hit_rate": True, "coverage": True}


def parse_metric(name) -> Tuple[str, Optional[int]]:
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


def check_threshold(threshold: float) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) \
            or not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    return float(threshold)


def check_metrics(metrics) -> List[str]:
    if isinstance(metrics, str):
        metrics = (metrics,)
    metrics = list(metrics)
    if not metrics:
        raise ValueError("metrics must name at least one metric")
    for m in metrics:
        parse_metric(m)
    if len(set(metrics)) != len(metrics):
        raise ValueError(f"metrics lists a metric twice: {metrics}")
    return metrics


def greater_is_better(metric: str) -> bool:
    base, k = parse_metric(metric)
    return (RANKING_METRICS if k else ERROR_METRICS)[base]


def score(model, test: Ratings, metrics: Sequence[str],
          threshold: float = 4.0) -> Dict[str, float]:
    """The named metrics of a fitted model on test ratings: one
    mfrec.metrics.evaluate per list length k, model.score for rmse/mae."""
    parsed = {m: parse_metric(m) for m in metrics}
    found: Dict[Optional[int], dict] = {}
    for base, k in parsed.values():
        if k not in found:
            found[k] = model.score(test) if k is None else \
                evaluate(model, test, k=k, threshold=threshold)
    return {m: float(found[k][base]) for m, (base, k) in parsed.items()}
