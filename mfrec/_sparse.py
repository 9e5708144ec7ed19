"""A scipy.sparse user x item matrix as rating triplets (implicit's
convention: rows are users, columns items, values ratings or confidences).

scipy is imported by nobody here: a matrix is recognized by the module of
its type and read through its own methods.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from ._arrays import as_ids

__all__ = ["is_sparse", "sparse_triplets"]


def is_sparse(obj) -> bool:
    return type(obj).__module__.startswith("scipy.sparse")


def sparse_triplets(matrix, user_ids, item_ids,
                    where: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(raw users, raw items, values) of the stored entries, row by row and
    by column within a row. Duplicate entries (COO, or CSR not in canonical
    form) are summed, as ``matrix.toarray()`` would; a stored zero is an
    observation like any other entry."""
    if len(matrix.shape) != 2:
        raise ValueError(f"{where}: a sparse matrix of ratings must be 2-D (users x items), "
                         f"got shape {matrix.shape}")
    n_rows, n_cols = matrix.shape
    rows = _labels(user_ids, n_rows, "user_ids", "rows", where)
    cols = _labels(item_ids, n_cols, "item_ids", "columns", where)
    csr = matrix.tocsr()
    if not csr.has_canonical_format:
        if csr is matrix:  # sum_duplicates works in place: never on the caller's matrix
            csr = csr.copy()
        csr.sum_duplicates()
    counts = np.diff(csr.indptr)
    users = np.repeat(rows, counts) if rows is not None else np.repeat(
        np.arange(n_rows, dtype=np.int64), counts)
    items = csr.indices.astype(np.int64) if cols is None else cols[csr.indices]
    return users, items, np.asarray(csr.data)


def _labels(ids, n: int, name: str, what: str, where: str) -> Optional[np.ndarray]:
    """The raw id of each row (or column), unique; None for 0..n-1."""
    if ids is None:
        return None
    ids = as_ids(ids, f"{where}: {name}")
    if len(ids) != n:
        raise ValueError(f"{where}: {name} has {len(ids)} ids for {n} {what}: give one per "
                         f"{what[:-1]}")
    ordered = np.sort(ids)
    dup = ordered[1:][ordered[1:] == ordered[:-1]]
    if len(dup):
        raise ValueError(f"{where}: {name} lists id {dup[0]} twice")
    return ids
