"""The checks every array argument goes through: masked arrays refused, raw
ids (int64, or str / bytes: see _vocab) and ratings (finite float32)."""
from __future__ import annotations

import numpy as np

from ._vocab import as_raw_ids


def unmasked(x, name: str):
    """`x`, refused (ValueError) if it is a masked array that hides values:
    np.asarray would drop the mask and use the hidden values."""
    if isinstance(x, np.ma.MaskedArray):
        if np.ma.getmaskarray(x).any():
            raise ValueError(f"{name} is a masked array with masked entries: NumPy would "
                             "use the values under the mask; pass x.compressed() or "
                             "x.filled(value)")
        return x.data
    return x


def as_ids(x, name: str, strings: bool = True) -> np.ndarray:
    """`x` as a 1-D array of raw ids: int64, or (if `strings`) NumPy str or
    bytes (see mfrec._vocab); TypeError/ValueError naming `name`."""
    a = np.asarray(unmasked(x, name))
    if a.dtype.kind in "US" and not isinstance(x, np.ndarray):
        a = np.asarray(x, dtype=object)  # NumPy turns [1, "a"] into strings: see each item
    if a.ndim == 0:
        a = a.reshape(1)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if a.size == 0 and a.dtype != np.bool_:  # of any dtype; casting an empty complex array warns
        return np.empty(0, np.int64)
    if not strings and a.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integers, got dtype {a.dtype}")
    return as_raw_ids(a, name)


def as_ratings(x, name: str = "ratings") -> np.ndarray:
    """`x` as a 1-D float32 array of finite values (`x` itself when it is
    one: no kernel writes into ratings)."""
    a = np.asarray(unmasked(x, name))
    if a.ndim == 0:
        a = a.reshape(1)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if a.dtype == np.bool_:
        a = a.astype(np.float32)
    if not (np.issubdtype(a.dtype, np.number) or a.size == 0) or np.iscomplexobj(a):
        raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}")
    with np.errstate(over="ignore", invalid="ignore"):  # checked just below
        r = a.astype(np.float32, copy=False)  # float32 already: the caller's array
    # min and max: finite unless one is NaN or infinite, and no array of a
    # bool per rating (which stays in the heap of a fit: its peak memory)
    if r.size and not (np.isfinite(r.min()) and np.isfinite(r.max())):
        bad = int(np.flatnonzero(~np.isfinite(r))[0])
        raise ValueError(f"{name} must be finite: entry {bad} is {a[bad]!r} "
                         "(or does not fit in float32)")
    return r
