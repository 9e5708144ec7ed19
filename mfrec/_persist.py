"""A fitted Model as the contents of its file, and back (the format itself
is _modelfile's): what save writes and what load checks before a Model
is built from it."""
from __future__ import annotations

from typing import Tuple

from . import _modelfile
from ._modelfile import CORE_ARRAYS
from ._params import checked_params
from .algorithms import Algorithm, get_algorithm


def file_contents(model) -> Tuple[dict, dict]:
    """(header, arrays) of a fitted model, as save writes them (the
    parameters and algorithm its arrays were fitted with)."""
    header = {
        "format": _modelfile.FORMAT, "version": _modelfile.VERSION,
        "algorithm": model._fitted_algorithm, "params": dict(model._fitted_params),
        "global_mean": model.global_mean, "rating_range": model.rating_range_,
        "rating_mean": model.rating_mean_,
        "history": model.history, "best_iteration": model.best_iteration_,
        "seed": model.seed_, "metadata": checked_metadata(model.metadata),
    }
    arrays = {"user_ids": model.user_ids, "item_ids": model.item_ids,
              "seen_indptr": model.seen_indptr, "seen_indices": model.seen_indices}
    for name in CORE_ARRAYS:
        if getattr(model, name) is not None:
            arrays[name] = getattr(model, name)
    for name, a in model._solver.extra_arrays().items():
        arrays["extra_" + name] = a
    return header, arrays


def checked_metadata(metadata) -> dict:
    """A copy of `metadata` as the file keeps it; TypeError if it is not
    a dict of str keys and JSON scalars."""
    try:
        _modelfile.check_metadata(metadata)
    except _modelfile.Invalid as e:
        raise TypeError(f"Model.{e}, got {metadata!r}"[:200]) from None
    return dict(metadata)


def fitted_attributes(header) -> dict:
    """The fitted attributes a model file's header holds, as Model keeps them."""
    return dict(rating_range_=tuple(header["rating_range"]),
                rating_mean_=header.get("rating_mean"),  # absent from mfrec 0.1.0 files
                history=header.get("history", []),
                best_iteration_=header.get("best_iteration"), seed_=header.get("seed"),
                metadata=dict(header.get("metadata", {})))


def read_model_file(path) -> Tuple[dict, dict, Algorithm]:
    """(header, arrays, the algorithm with its own arrays loaded) of the
    model file at `path`; ValueError naming the file if it is not valid."""

    def accept(header):
        try:
            checked_params(header["algorithm"], header["params"])
        except (TypeError, ValueError) as e:
            raise ValueError(f"bad algorithm or parameters ({e})") from None
        return get_algorithm(header["algorithm"])

    header, arrays = _modelfile.read(path, accept)
    solver = get_algorithm(header["algorithm"])(
        checked_params(header["algorithm"], header["params"]))
    extra = {k[len("extra_"):]: v for k, v in arrays.items() if k.startswith("extra_")}
    try:
        solver.load_extra_arrays(extra)
    except (KeyError, ValueError, TypeError) as e:
        raise _modelfile.bad_file(_modelfile.shown(path), f"algorithm data: {e}") from None
    return header, arrays, solver
