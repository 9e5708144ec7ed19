"""A model's state as its readers and fits share it.

Thread rule: ``fit`` trains on a private core model and swaps the finished
state in under the model's reading lock; ``predict``, ``recommend`` and
``evaluate`` take the same lock, so a reader sees either the old model or
the new one, never a half-updated one. Fits of one model hold its fit lock,
which ``set_params`` also waits for.
"""
from __future__ import annotations

import threading

from ._modelfile import CORE_ARRAYS
from .algorithms import check_threads


def attach_locks(model) -> None:
    """Give a new model its reading lock and its fit lock."""
    model._lock = threading.RLock()
    model._fit_lock = threading.RLock()  # held by fit; set_params waits for it


def reading(model) -> threading.RLock:
    """The lock under which `model`'s fitted state is read or swapped."""
    return model._lock


def fitting(model) -> threading.RLock:
    """The lock one fit of `model` holds from start to end."""
    return model._fit_lock


def check_fitted(model) -> None:
    if not model.is_fitted:
        raise RuntimeError("this model is not fitted yet: call fit first")


def threads(model, n_threads) -> int:
    """`n_threads`, checked; None means the model's own n_threads."""
    n_threads = model.get_params().get("n_threads", 1) if n_threads is None else n_threads
    check_threads(n_threads)
    return int(n_threads)


def core_state(core, copy: bool = True) -> dict:
    """The arrays and the mean of a core model: copies (a snapshot), or the
    arrays themselves where no kernel writes into them."""
    state = {name: getattr(core, name) for name in CORE_ARRAYS}
    state = {k: v if v is None or not copy else v.copy() for k, v in state.items()}
    state["global_mean"] = core.global_mean
    return state


def set_core_state(core, state: dict) -> None:
    for name in CORE_ARRAYS:
        setattr(core, name, state[name])
    core.global_mean = state["global_mean"]
