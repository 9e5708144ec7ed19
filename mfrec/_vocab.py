"""Raw ids of three kinds: integers (int64), strings (NumPy str, "U") and
bytes ("S"). A model's ids are one sorted array of one kind; NumPy sorts,
searches and indexes all three in C, so the mapping code is shared. Ids of
another kind than the model's are refused, never compared: NumPy would
search an int among strings without a word.
"""
from __future__ import annotations

import re
from typing import Optional, Tuple, Union

import numpy as np

from . import _core

__all__ = ["as_raw_ids", "kind", "same_kind", "padding", "factorize", "id_from_text"]

KINDS = {"i": "integer", "u": "integer", "U": "string", "S": "bytes"}


def as_raw_ids(a: np.ndarray, name: str) -> np.ndarray:
    """A 1-D array of ids as int64, str or bytes; object arrays must hold
    only str or only bytes. TypeError naming `name` otherwise."""
    if a.dtype.kind == "O":
        types = set(map(type, a))
        for base in (str, bytes):  # np.str_ and np.bytes_ are subclasses
            if all(issubclass(t, base) for t in types):
                return a.astype(base)
        if all(issubclass(t, (int, np.integer)) and t is not bool for t in types):
            try:
                return a.astype(np.int64)
            except OverflowError:
                raise ValueError(f"{name} has ids outside the int64 range") from None
        shown = sorted(t.__name__ for t in types)
        raise TypeError(f"{name} must hold integer ids, got an object array of "
                        f"{', '.join(shown)} (or string ids: all str, or all bytes)")
    if a.dtype.kind in "US":
        return a
    if a.dtype == np.bool_ or a.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer ids, got dtype {a.dtype} (or string ids: "
                        "str, bytes)")
    if a.dtype == np.uint64 and a.size and a.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{name} has ids larger than the int64 range")
    return a.astype(np.int64, copy=False)


def kind(ids: np.ndarray) -> str:
    return KINDS.get(ids.dtype.kind, str(ids.dtype))


def same_kind(raw: np.ndarray, ids: np.ndarray, name: str = "the ids given",
              theirs: str = "the model's") -> None:
    """TypeError unless `raw` (ids asked for) and `ids` (the model's, or
    the other ids of one fit) are of one kind; an empty array fits any."""
    if len(raw) and len(ids) and kind(raw) != kind(ids):
        raise TypeError(f"{name} are {kind(raw)} ids, but {theirs} are {kind(ids)} ids")


def id_from_text(text: str, ids: np.ndarray) -> Optional[Union[int, str, bytes]]:
    """The id typed as `text` (a command-line argument, a text box), in the
    kind of `ids`: an integer in plain decimal digits within int64, the
    text itself for string ids, its UTF-8 bytes for bytes ids. None when
    `text` cannot be an id of that kind (empty, or not a whole number)."""
    text = text.strip()
    if ids.dtype.kind in "iu":
        if re.fullmatch(r"[+-]?[0-9]{1,19}", text) and -2**63 <= int(text) < 2**63:
            return int(text)
        return None
    if not text:
        return None
    return text.encode("utf-8", "surrogateescape") if ids.dtype.kind == "S" else text


def padding(ids: np.ndarray):
    """The id that pads short top-N rows: -1, or the empty string."""
    return -1 if ids.dtype.kind in "iu" else ids.dtype.type()


def factorize(raw: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(sorted unique ids, int32 index of each raw id among them), as
    np.unique(return_inverse=True) gives them. The ids are hashed in C (the
    distinct ones numbered in order of first occurrence, the GIL released),
    then only the distinct ids are sorted and the numbers renumbered in
    place: no sort of every rating's id."""
    if raw.dtype.kind in "USiu" and len(raw):
        codes, first = _core.factorize_records(raw)
        uniques = raw[first]
        order = np.argsort(uniques, kind="stable")
        rank = np.empty(len(order), np.int32)
        rank[order] = np.arange(len(order), dtype=np.int32)
        return uniques[order], np.take(rank, codes, out=codes, mode="clip")
    ids, index = np.unique(raw, return_inverse=True)
    return ids, index.astype(np.int32).reshape(-1)
