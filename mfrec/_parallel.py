"""Running independent fits (folds, search candidates) on n_jobs threads: the C
kernels release the GIL. Each fit gets its share of the model's n_threads."""
from __future__ import annotations

import numbers
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Callable, List, Optional, Tuple, cast

import numpy as np

from ._cores import available_cores
from ._progress import advance, close, progress_bar
from ._scoring import score
from .ratings import Ratings

def check_n_jobs(n_jobs: int) -> int:
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) \
            or not (n_jobs >= 1 or n_jobs == -1):
        raise ValueError(f"n_jobs must be an integer >= 1, or -1 for every core; got {n_jobs!r}")
    return available_cores() if n_jobs == -1 else int(n_jobs)


def threads_per_fit(params: dict, n_jobs: int, n_tasks: int) -> int:
    """A fit's share of the model's n_threads (0 = every core)."""
    total = params.get("n_threads", 1) or available_cores()
    return max(1, total // max(1, min(n_jobs, n_tasks)))


class Cancelled(Exception):
    """A task stopped because its search was interrupted or failed."""


def run(tasks: List[Callable[[threading.Event], dict]], n_jobs: int, verbose: bool,
        label: str, progress: bool = False) -> List[dict]:
    """Run the tasks on n_jobs threads; results in task order. Progress
    lines name each finished task (its 'label' entry); `progress`: a bar
    over the tasks, with the last one's scores as its postfix. On an error or
    Ctrl-C (which only the main thread receives) the tasks not started are
    cancelled and the running fits stop after their current iteration: each
    task gets an event, set then, that its fit checks after each iteration."""
    results: List[Optional[dict]] = [None] * len(tasks)
    t0 = time.perf_counter()
    cancel = threading.Event()
    bar = progress_bar(progress, len(tasks), label, unit="fit")
    pool = ThreadPoolExecutor(max_workers=max(1, min(n_jobs, len(tasks))))
    try:
        futures = {pool.submit(task, cancel): j for j, task in enumerate(tasks)}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                results[futures[f]] = row = f.result()  # raises the task's error
                if verbose:
                    shown = "  ".join(f"{k}={v:.4f}" for k, v in row["scores"].items())
                    print(f"[{label}] {len(futures) - len(pending)}/{len(tasks)} "
                          f"{row['label']}: {shown}  fit {row['fit_time']:.2f} s  "
                          f"({time.perf_counter() - t0:.1f} s elapsed)", flush=True)
                advance(bar, row["scores"])
    except BaseException:
        cancel.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        close(bar)
    return cast(List[dict], results)  # every task filled its entry


def fit_and_score(model_type, params: dict, train: Ratings, test: Ratings, metrics,
                   threshold: float, fit_params: dict, label: str, keep_model: bool,
                   cancel: threading.Event) -> dict:
    model = model_type(**params)
    user_callback = fit_params.get("callback")

    def callback(fitted, row):
        if cancel.is_set():
            raise Cancelled(label)
        return None if user_callback is None else user_callback(fitted, row)

    if user_callback is None or callable(user_callback):  # else fit names the error
        fit_params = {**fit_params, "callback": callback}
    t0 = time.perf_counter()
    model.fit(train, **fit_params)
    t1 = time.perf_counter()
    if cancel.is_set():
        raise Cancelled(label)
    scores = score(model, test, metrics, threshold)
    return {"label": label, "scores": scores, "fit_time": t1 - t0,
            "test_time": time.perf_counter() - t1, "model": model if keep_model else None}


def fold_tasks(model, params, folds, metrics, threshold, fit_params, prefix="",
                keep_models=False):
    """One task per fold, fitting a new model of `params` (n_threads set)."""
    return [lambda cancel, train=train, test=test, name=name: fit_and_score(
                type(model), params, train, test, metrics, threshold, fit_params, prefix + name,
                keep_models, cancel)
            for name, (train, test) in folds]


def summary(rows: List[dict], metrics) -> Tuple[dict, dict]:
    """Mean and standard deviation over folds of each metric and time."""
    table = {m: [r["scores"][m] for r in rows] for m in metrics}
    table.update({t: [r[t] for r in rows] for t in ("fit_time", "test_time")})
    mean = {k: float(np.mean(v)) for k, v in table.items()}
    std = {k: float(np.std(v)) for k, v in table.items()}
    return mean, std
