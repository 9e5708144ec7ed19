"""The id vocabulary: raw ids (any int64, or strings or bytes: see _vocab) to
contiguous int32 indices and back, the rating triplets a caller gives, and
the errors that name unknown ids."""
from __future__ import annotations

from typing import Any, Tuple

import numpy as np

from ._vocab import factorize, same_kind
from .ratings import Ratings, as_ids, as_ratings, from_any


def small_ids(n: int, low, high) -> bool:
    """Whether integer ids from `low` to `high`, for an array of n, fit a
    table indexed by the id (most datasets number them 1, 2, ...): a table
    lookup takes a tenth of the time of a sort or a binary search."""
    return low >= 0 and high < 2 * n + 1024


def index_of(raw: np.ndarray, ids: np.ndarray, name: str = "the ids given") -> np.ndarray:
    """Contiguous int32 index of each raw id in the sorted `ids`; -1 if absent;
    TypeError naming `name` for ids of another kind (int, str, bytes)."""
    same_kind(raw, ids, name)
    if len(ids) and ids.dtype.kind in "iu" and small_ids(len(ids), ids[0], ids[-1]):
        table = np.full(int(ids[-1]) + 1, -1, np.int32)
        table[ids] = np.arange(len(ids), dtype=np.int32)
        inside = (raw >= 0) & (raw < len(table))
        if inside.all():
            return table[raw]
        return np.where(inside, table[np.where(inside, raw, 0)], np.int32(-1))
    pos = np.searchsorted(ids, raw)
    pos = np.minimum(pos, len(ids) - 1)
    found = ids[pos] == raw if len(ids) else np.zeros(len(raw), bool)
    return np.where(found, pos, -1).astype(np.int32)


def counted_ids(raw: np.ndarray) -> tuple:
    """np.unique(raw, return_counts=True), by a table for small integer
    ids (see small_ids) instead of a sort."""
    if len(raw) and raw.dtype.kind in "iu" and small_ids(len(raw), raw.min(), raw.max()):
        counts = np.bincount(raw)
        ids = np.flatnonzero(counts)
        return ids.astype(raw.dtype), counts[ids]
    return np.unique(raw, return_counts=True)


def known_ids(raw: np.ndarray, extra, extra_name: str = "feature ids") -> tuple:
    """The model's ids (those rated, plus `extra`'s first member: the ids
    with features, named `extra_name`, or None) and the contiguous index of
    each rating's id. Small ids (see small_ids) go through a table of
    present ids; others (ids spread over int64, strings, bytes) are hashed
    (see _vocab.factorize)."""
    known = raw if extra is None else np.concatenate([raw, extra[0]])
    if extra is not None:
        same_kind(extra[0], raw, extra_name, "the ratings'")
    if len(known) and known.dtype.kind in "iu" and small_ids(len(known), known.min(),
                                                             known.max()):
        present = np.zeros(int(known.max()) + 1, bool)
        present[known] = True
        position = np.cumsum(present, dtype=np.int32) - 1  # int32: no int64 per rating
        return np.flatnonzero(present).astype(np.int64), position[raw]
    ids, index = factorize(known)
    return ids, index[:len(raw)]


def first_ids(ids) -> str:
    """The first five of `ids`, comma-separated, "..." when there are more."""
    return ", ".join(str(i) for i in ids[:5]) + (", ..." if len(ids) > 5 else "")


def indices(raw, ids: np.ndarray, name: str, kind: str) -> np.ndarray:
    """int32 indices of raw ids known in `ids`; KeyError naming the unknown ones."""
    raw = as_ids(raw, name)
    idx = index_of(raw, ids, name)
    if (idx < 0).any():
        unknown = np.unique(raw[idx < 0])
        raise KeyError(f"{name}: {len(unknown)} {kind} id(s) not seen in training: "
                       f"{first_ids(unknown)}")
    return idx


def unique_indices(raw, ids: np.ndarray, name: str, kind: str) -> np.ndarray:
    """Sorted unique int32 indices of known raw ids (KeyError otherwise)."""
    return np.unique(indices(raw, ids, name, kind)).astype(np.int32)


def item_pool(item_ids: np.ndarray, items, exclude):
    """Candidate item indices (ascending) from raw `items` (all when None)
    less raw `exclude`; None when neither is given."""
    if items is None and exclude is None:
        return None
    pool = (np.arange(len(item_ids), dtype=np.int32) if items is None
            else unique_indices(items, item_ids, "items", "item"))
    if exclude is not None:
        pool = np.setdiff1d(pool, indices(exclude, item_ids, "exclude", "item"),
                            assume_unique=True)
    return pool.astype(np.int32)


def unpack(data) -> Tuple[Any, Any, Any]:
    """(users, items, ratings) of a Ratings, a table or sparse matrix, or
    of a 3-tuple."""
    data = from_any(data, where="validation")
    if isinstance(data, Ratings):
        return data.user, data.item, data.rating
    try:
        u, i, r = data
    except (TypeError, ValueError):
        raise TypeError("validation must be a Ratings or a (users, items, ratings) tuple") from None
    return u, i, r


def triplets(users, items, ratings, where):
    """Checked (int64 users, int64 items, float32 ratings) from arrays, a
    Ratings, a table or a sparse matrix."""
    users = from_any(users, items, ratings, where)
    if isinstance(users, Ratings) and items is None and ratings is None:
        users, items, ratings = users.user, users.item, users.rating
    if items is None or ratings is None:
        raise TypeError(f"{where}: give users, items and ratings (or one Ratings)")
    u, i = as_ids(users, f"{where}: users"), as_ids(items, f"{where}: items")
    r = as_ratings(ratings, f"{where}: ratings")
    if not len(u) == len(i) == len(r):
        raise ValueError(f"{where}: users, items and ratings must have the same length "
                         f"({len(u)}, {len(i)}, {len(r)})")
    return u, i, r


def pairs(users, items) -> Tuple[np.ndarray, np.ndarray]:
    """Checked int64 (users, items) of the same length, for predictions."""
    users, items = as_ids(users, "users"), as_ids(items, "items")
    if len(users) != len(items):
        raise ValueError(f"users and items must have the same length "
                         f"({len(users)} != {len(items)})")
    return users, items


def pair_indices(users, items, user_ids: np.ndarray, item_ids: np.ndarray):
    """int32 (user, item) indices, -1 for unknown ids, of pairs of raw ids."""
    users, items = pairs(users, items)
    return index_of(users, user_ids, "users"), index_of(items, item_ids, "items")


def new_user_ratings(items, ratings, item_ids: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The int32 indices in `item_ids` of a new user's items (known, each
    once, at least one) and their float32 ratings."""
    items, ratings = as_ids(items, "items"), as_ratings(ratings)
    if len(items) != len(ratings):
        raise ValueError(f"items and ratings must have the same length "
                         f"({len(items)} != {len(ratings)})")
    if len(items) == 0:
        raise ValueError("a new user needs at least one rating (items and ratings are empty)")
    iidx = indices(items, item_ids, "items", "item")
    if len(np.unique(iidx)) != len(iidx):
        raise ValueError("items: each item may be rated only once")
    return iidx, ratings


def duplicates(users, items) -> str:
    """Describe the (user, item) pairs that occur more than once."""
    found, counts = np.unique(np.rec.fromarrays([users, items]), return_counts=True)
    dup = found[counts > 1]
    return (f"{len(dup)} (user, item) pair(s) occur more than once, e.g. user {dup[0][0]} "
            f"and item {dup[0][1]} ({counts[counts > 1][0]} times); keep one rating per pair")
