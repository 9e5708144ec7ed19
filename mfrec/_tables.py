"""Columns of pandas and polars DataFrames and pyarrow Tables as NumPy arrays.

A table is recognized by the module of its type, so that none of these
libraries is imported unless the caller already uses it. Columns come out
without a copy where NumPy can view them (numeric, no nulls, one chunk).
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

__all__ = ["GUESSES", "table_kind", "column_names", "column", "pick_columns"]

# The names tried, in this order and ignoring case, when a column is not named.
GUESSES: Dict[str, Tuple[str, ...]] = {
    "user": ("user", "userid", "user_id"),
    "item": ("item", "itemid", "item_id", "movieid", "movie_id"),
    "rating": ("rating", "ratings", "score"),
    "timestamp": ("timestamp",),
}


def table_kind(obj) -> Optional[str]:
    """"pandas", "polars" or "pyarrow" for a table of theirs, else None."""
    cls = type(obj)
    library, name = cls.__module__.split(".")[0], cls.__name__
    if library == "pandas" and name == "DataFrame":
        return "pandas"
    if library == "polars" and name in ("DataFrame", "LazyFrame"):
        if name == "LazyFrame":
            raise TypeError("a polars LazyFrame cannot be read as ratings: call .collect() "
                            "first")
        return "polars"
    if library == "pyarrow" and name in ("Table", "RecordBatch"):
        return "pyarrow"
    return None


def column_names(table, kind: str) -> List[Any]:
    """The column labels (pandas' may be numbers: those of ``header=None``)."""
    return list(table.columns if kind != "pyarrow" else table.schema.names)


def column(table, kind: str, name, where: str) -> np.ndarray:
    """Column `name` as a NumPy array; ValueError if it holds nulls (None,
    NA, NaN in pandas), which no id or rating can be."""
    label = f"{where}: column {name!r}"
    if kind == "pandas":
        s = table[name]
        if getattr(s, "ndim", 1) != 1:
            raise ValueError(f"{label} is not unique: the table has several columns so named")
        nulls = int(s.isna().sum())
        _refuse_nulls(label, nulls, len(s))
        dtype = getattr(s.dtype, "numpy_dtype", None)  # nullable Int64, Float64, ...
        return s.to_numpy(dtype=dtype) if dtype is not None else s.to_numpy()
    if kind == "polars":
        s = table.get_column(name)
        _refuse_nulls(label, s.null_count(), len(s))
        return s.to_numpy()
    col = table.column(name)
    _refuse_nulls(label, col.null_count, len(col))
    if hasattr(col, "num_chunks") and col.num_chunks == 1:
        col = col.chunk(0)
    return col.to_numpy(zero_copy_only=False)


def _refuse_nulls(label: str, nulls: int, n: int) -> None:
    if nulls:
        raise ValueError(f"{label} has {nulls} missing value(s) (null/NA/NaN) among {n} "
                         "rows: drop or fill them first")


def pick_columns(names: Sequence[Any], chosen: Mapping[str, Any],
                 where: str) -> Dict[str, Any]:
    """The column of each role ("user", "item", "rating", and "timestamp" if
    asked for): the name given, or the one of GUESSES present in `names`.
    A missing timestamp is None; any other miss is a ValueError that lists
    the columns found."""
    found: Dict[str, Any] = {}
    for role, given in chosen.items():
        if given is not None:
            if given not in names:
                raise ValueError(f"{where}: {role}={given!r} is not a column of the table; "
                                 f"its columns are {list(names)}")
            found[role] = given
            continue
        matches = [n for n in names if str(n).lower() in GUESSES[role]]
        if len(matches) > 1:
            raise ValueError(f"{where}: columns {matches} could each be the {role} column: "
                             f"name one with {role}=...")
        if not matches and role != "timestamp":
            raise ValueError(f"{where}: no {role} column among {list(names)} (looked for "
                             f"{list(GUESSES[role])}, any case): name it with {role}=...")
        found[role] = matches[0] if matches else None
    taken = [n for n in found.values() if n is not None]
    for n in set(taken):
        if taken.count(n) > 1:
            roles = [r for r, c in found.items() if c == n]
            raise ValueError(f"{where}: column {n!r} is given as both {roles[0]} and "
                             f"{roles[1]}: name a different column for each")
    return found
