"""The training loop every iterative algorithm shares: one history row per
iteration (train and validation RMSE), early stopping that restores the best
iteration, the callback, verbose rows, the progress bar, and Ctrl-C, which
keeps the last complete iteration."""
from __future__ import annotations

import contextlib
import signal
import threading
import time
import warnings
from typing import Any, Dict, Optional, Tuple

import numpy as np

from . import _core
from ._features import features_by_index, read_features
from ._ids import index_of, known_ids, triplets, unpack
from ._predictions import clip_to, unknown_to_mean
from ._progress import advance, check_progress, close, progress_bar
from ._state import core_state, set_core_state
from .algorithms import TrainData


def check_fit_arguments(early_stopping, validation, callback, report) -> None:
    """`report`: (verbose, progress, record_train) as Training takes it."""
    check_progress(report[1])
    record_train = report[2]
    if not isinstance(record_train, (bool, np.bool_)):
        raise ValueError(f"record_train must be True or False, got {record_train!r}")
    if early_stopping is not None:
        if isinstance(early_stopping, bool) or not isinstance(early_stopping, (int, np.integer)) \
                or early_stopping < 1:
            raise ValueError(f"early_stopping must be an integer >= 1, got {early_stopping!r}")
        if validation is None:
            raise ValueError("early_stopping needs validation data")
    if callback is not None and not callable(callback):
        raise TypeError("callback must be callable")


def check_stops_early(solver, early_stopping) -> None:
    """early_stopping only for an algorithm that stops early."""
    if early_stopping is not None and solver.stops_early is not True:
        raise ValueError(f"early_stopping: algorithm {solver.name!r} does not stop early "
                         f"({solver.stops_early})")


def rmse_step(bar, row: dict) -> None:
    """An iteration on the bar, its RMSEs as the postfix."""
    advance(bar, {k: row[k] for k in ("train_rmse", "valid_rmse") if k in row})


def fit_seed(seed) -> int:
    """The seed a fit uses: `seed`, or one drawn at random for None."""
    if seed is not None:
        return int(seed)
    entropy: Any = np.random.SeedSequence().entropy  # an int when drawn
    return int(entropy % 2**63)


def fit_state(core, solver) -> tuple:
    """A snapshot of a fit in progress: the core model and the solver's
    extra arrays (e.g. feature factors), so that both are restored together."""
    arrays = core_state(core, copy=solver.writes_in_place)
    return arrays, {k: v.copy() for k, v in solver.extra_arrays().items()}


def set_fit_state(core, solver, state: Optional[tuple]) -> None:
    """Restore a snapshot; None: a lean fit's state is already the one kept."""
    if state is not None:
        set_core_state(core, state[0])
        solver.load_extra_arrays(state[1])


@contextlib.contextmanager
def held_interrupts(hold: bool):
    """With `hold`, Ctrl-C (SIGINT's Python handler) waits for the end of
    the block, then takes effect: a lean fit's iteration, which updates its
    arrays in place and keeps no copy to go back to, always completes. Only
    the main thread receives SIGINT, and only it may change the handler."""
    handler = signal.getsignal(signal.SIGINT)
    if not hold or not callable(handler) or threading.current_thread() is not \
            threading.main_thread():
        yield
        return
    frames: list = []
    signal.signal(signal.SIGINT, lambda signum, frame: frames.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, handler)
        if frames:
            handler(signal.SIGINT, frames[0])


class Training:
    """One fit in progress: `solver` fills the core model `work` from
    `train` (TrainData); `valid` is (user indices, item indices, ratings)
    or None. `history` grows by one row per iteration; `report` is
    (verbose, progress, record_train): print each row, a progress bar over
    the iterations, and the training RMSE in each row."""

    def __init__(self, solver, work, train, valid, n_threads: int, rating_mean: float,
                 clip_range, report: Tuple[bool, bool, bool]):
        self.solver, self.work, self.train, self.valid = solver, work, train, valid
        self.n_threads, self.rating_mean, self.clip_range = n_threads, rating_mean, clip_range
        self.verbose, self.progress, self.record_train = report
        self.history: list = []
        # no snapshots, for fits that neither validate nor stop early (see
        # the solver's runs_lean): Ctrl-C waits for the iteration under way
        self.lean = False

    def record(self, iteration: int, loss, seconds: float) -> dict:
        """Score the model after `iteration` and append its history row."""
        solver, work = self.solver, self.work
        row: Dict[str, Any] = {"epoch": iteration + 1}
        if loss is not None:
            row["train_loss"] = loss
        if self.record_train:
            row["train_rmse"] = solver.train_rmse(work, self.train, self.n_threads)
        if not np.isfinite(row.get("train_rmse", 0.0)):  # finite factors whose products overflow
            raise FloatingPointError(
                f"fit diverged at iteration {iteration + 1}: the predictions are no "
                "longer finite; use a smaller learning_rate or a larger regularization")
        if self.valid is not None:
            vu, vi, vr = self.valid
            pred = unknown_to_mean(solver.predictions(work, vu, vi, self.n_threads),
                                   vu, vi, work, solver, self.rating_mean)
            pred = clip_to(pred, self.clip_range)
            row["valid_rmse"], row["valid_mae"] = _core.rmse_mae(pred, vr)
        row["seconds"] = seconds
        self.history.append(row)
        if self.verbose:
            print("  ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in row.items()), flush=True)
        return row

    def finish(self, n_done: int):
        """After run, with n_done iterations kept: the training items of
        each user (TrainData.keep_seen, which frees the CSRs first), and the
        core model's final state (a lean fit's arrays published, then the
        solver's final touches)."""
        seen = self.train.keep_seen()
        if self.lean:
            self.solver.publish(self.work)
        self.solver.finish(self.work, n_done)
        return seen

    def run(self, seed: int, params: dict, early_stopping: Optional[int], callback,
            model) -> int:
        """Fit (`params`: the algorithm's, for its iteration count); return
        the index of the iteration the model keeps. Ctrl-C after a complete
        iteration keeps the last one (the best one under early stopping) and
        warns; `callback(model, row)` returning False stops."""
        iterations = self.solver.iterations_param
        n_iter = params.get(iterations, 1) if iterations else 1
        bar = progress_bar(self.progress, n_iter, self.solver.name, unit="it")
        try:
            return self._run(seed, n_iter, early_stopping, callback, model, bar)
        finally:
            close(bar)

    def _run(self, seed, n_iter, early_stopping, callback, model, bar) -> int:
        solver, work, history = self.solver, self.work, self.history
        # (rows of history, state, best, best_state) after the last complete
        # iteration, assigned at once so that Ctrl-C never sees it half-updated
        # (lean: Ctrl-C waits for it, and the state is None)
        checkpoint = None
        best: Optional[Tuple[int, Any]] = None
        best_state: Any = None  # kept only under early stopping
        try:
            if solver.iterations_param is None:
                t0 = time.perf_counter()
                solver.solve(work, self.train, seed)
                rmse_step(bar, self.record(0, None, time.perf_counter() - t0))
                return 0
            solver.start(work, self.train, seed)
            self.lean = lean = solver.runs_lean() and early_stopping is None \
                and self.valid is None
            stale = 0
            for it in range(n_iter):
                with held_interrupts(lean):
                    t0 = time.perf_counter()
                    loss = solver.step(work, self.train, it)
                    seconds = time.perf_counter() - t0
                    if not lean:
                        solver.publish(work)
                    row = self.record(it, loss, seconds)
                    state = None if lean else fit_state(work, solver)
                    score = row.get("valid_rmse")
                    if best is None or (score is not None and score < best[1]):
                        best, stale = (it, score), 0  # without early stopping, a best
                        if early_stopping is not None:  # state would keep iteration 1 alive
                            best_state = state
                    else:
                        stale += 1
                    checkpoint = (len(history), state, best, best_state)
                rmse_step(bar, row)
                if callback is not None and callback(model, dict(row)) is False:
                    break
                if early_stopping is not None and stale >= early_stopping:
                    break
            if early_stopping is not None:
                set_fit_state(work, solver, best_state)
                assert best is not None  # the algorithms' iteration counts are >= 1
                return best[0]
            return len(history) - 1
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
                          f"keeps iteration {best[0] + 1}", RuntimeWarning, stacklevel=3)
            return best[0]


def train_data(solver, users, items, ratings, user_features, item_features, n_threads=1):
    """(TrainData in index order, the model's user ids, its item ids) from
    checked triplets and the (matrix, ids) side features of each side
    (`n_threads`: for building its CSRs)."""
    user_side = read_features(*user_features, "user")
    item_side = read_features(*item_features, "item")
    if (user_side or item_side) and not solver.uses_features:
        raise ValueError(f"algorithm {solver.name!r} does not use side features "
                         "(user_features / item_features)")
    for side, features in (("user", user_side), ("item", item_side)):
        if features is not None:
            solver.check_features(side, features[4])
    # each side's indices sealed at once: the kernels read them without copies
    user_ids, uidx = known_ids(users, user_side, "user_feature_ids")
    uidx = _core.sealed_indices(uidx)
    item_ids, iidx = known_ids(items, item_side, "item_feature_ids")
    iidx = _core.sealed_indices(iidx)
    train = TrainData(uidx, iidx, ratings, len(user_ids), len(item_ids),
                      features_by_index(user_side, user_ids),
                      features_by_index(item_side, item_ids), n_threads)
    solver.check_data(train)
    return train, user_ids, item_ids


def validation_indices(validation, user_ids, item_ids):
    """(user indices, item indices, ratings) of the validation ratings
    (-1 for ids the model does not know), or None."""
    if validation is None:
        return None
    vu, vi, vr = triplets(*unpack(validation), "validation")
    if len(vu) == 0:
        raise ValueError("validation: no ratings given (empty arrays)")
    return (index_of(vu, user_ids, "validation: users"),
            index_of(vi, item_ids, "validation: items"), vr)
