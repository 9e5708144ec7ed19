"""Rating triplets, and the input checks every entry point shares."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

__all__ = ["Ratings", "as_ids", "as_ratings", "as_rng", "unmasked"]


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


def as_ids(x, name: str) -> np.ndarray:
    """`x` as a 1-D int64 array of raw ids; TypeError/ValueError naming `name`."""
    a = np.asarray(unmasked(x, name))
    if a.ndim == 0:
        a = a.reshape(1)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if a.dtype == np.bool_ or not (np.issubdtype(a.dtype, np.integer) or a.size == 0):
        raise TypeError(f"{name} must hold integer ids, got dtype {a.dtype}")
    if a.dtype == np.uint64 and a.size and a.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{name} has ids larger than the int64 range")
    if a.size == 0:  # of any dtype; casting an empty complex array still warns
        return np.empty(0, np.int64)
    return a.astype(np.int64, copy=False)


def as_ratings(x, name: str = "ratings") -> np.ndarray:
    """`x` as a 1-D float32 array of finite values."""
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
        r = a.astype(np.float32)
    if not np.isfinite(r).all():
        bad = int(np.flatnonzero(~np.isfinite(r))[0])
        raise ValueError(f"{name} must be finite: entry {bad} is {a[bad]!r} "
                         "(or does not fit in float32)")
    return r


def as_rng(seed) -> np.random.Generator:
    """NumPy's generator for `seed` (None or an integer >= 0), naming it on error."""
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError) as e:
        raise type(e)(f"seed must be None or an integer >= 0, got {seed!r}") from None


@dataclass(frozen=True)
class Ratings:
    """Rating triplets (user, item, rating) with an optional timestamp.

    ``len(r)`` is the number of ratings; ``r[mask_or_indices]`` selects a
    subset; ``r.user``, ``r.item``, ``r.rating`` are NumPy arrays, ready for
    ``Model.fit(r.user, r.item, r.rating)``.

    Examples
    --------
    >>> r = mfrec.Ratings([1, 1, 2], [10, 20, 10], [4.0, 3.0, 5.0])
    >>> r
    Ratings(3 ratings, 2 users, 2 items)
    >>> r[r.rating >= 4].item
    array([10, 10])
    """

    user: np.ndarray
    item: np.ndarray
    rating: np.ndarray
    timestamp: Optional[np.ndarray] = None

    def __post_init__(self):
        user = as_ids(self.user, "user")
        item = as_ids(self.item, "item")
        rating = as_ratings(self.rating)
        n = len(user)
        if len(item) != n or len(rating) != n:
            raise ValueError(f"user, item and rating must have the same length "
                             f"({n}, {len(item)}, {len(rating)})")
        object.__setattr__(self, "user", user)
        object.__setattr__(self, "item", item)
        object.__setattr__(self, "rating", rating)
        if self.timestamp is not None:
            ts = as_ids(self.timestamp, "timestamp")
            if len(ts) != n:
                raise ValueError("timestamp must have one entry per rating")
            object.__setattr__(self, "timestamp", ts)

    def __len__(self) -> int:
        return len(self.user)

    def __getitem__(self, index) -> "Ratings":
        ts = None if self.timestamp is None else self.timestamp[index]
        return Ratings(self.user[index], self.item[index], self.rating[index], ts)

    def __repr__(self) -> str:
        return (f"Ratings({len(self)} ratings, {len(np.unique(self.user))} users, "
                f"{len(np.unique(self.item))} items)")

    def to_dataframe(self):
        """The triplets as a pandas DataFrame (needs pandas)."""
        import pandas as pd

        cols = {"user": self.user, "item": self.item, "rating": self.rating}
        if self.timestamp is not None:
            cols["timestamp"] = self.timestamp
        return pd.DataFrame(cols)
