"""Side features as a caller gives them (a dense or scipy.sparse matrix with
one row per raw id) turned into CSR rows in the model's index order."""
from __future__ import annotations

from typing import Optional

import numpy as np

from . import _core
from ._ids import index_of
from .algorithms import Features
from .ratings import as_ids, as_ratings, unmasked


def read_features(matrix, ids, side: str):
    """(sorted unique raw ids, COO rows/cols/weights in that id order,
    n_features) from a dense or scipy.sparse matrix with one row per id;
    None when no features are given."""
    name, ids_name = f"{side}_features", f"{side}_feature_ids"
    if matrix is None:
        if ids is not None:
            raise ValueError(f"{ids_name} given without {name}")
        return None
    if ids is None:
        raise ValueError(f"{name} needs {ids_name}: the raw {side} id of each row")
    ids = as_ids(ids, ids_name)
    if hasattr(matrix, "tocoo") and not isinstance(matrix, np.ndarray):  # scipy.sparse
        coo = matrix.tocsr(copy=True)
        coo.sum_duplicates()
        coo = coo.tocoo()
        shape, rows, cols, weights = coo.shape, coo.row, coo.col, np.asarray(coo.data)
    else:
        dense = np.asarray(unmasked(matrix, name))
        if dense.ndim != 2:
            raise ValueError(f"{name} must be a 2-D matrix (rows x features), got shape "
                             f"{dense.shape}")
        shape = dense.shape
        rows, cols = np.nonzero(dense)
        weights = dense[rows, cols]
    if shape[0] != len(ids):
        raise ValueError(f"{name} has {shape[0]} rows but {ids_name} has {len(ids)} ids: "
                         "give one id per row")
    if shape[1] < 1:
        raise ValueError(f"{name} has no columns (features)")
    weights = as_ratings(weights, f"{name} values")
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    if np.any(sorted_ids[1:] == sorted_ids[:-1]):
        dup = sorted_ids[1:][sorted_ids[1:] == sorted_ids[:-1]][0]
        raise ValueError(f"{ids_name} lists id {dup} twice")
    rank = np.empty(len(ids), np.int64)
    rank[order] = np.arange(len(ids))
    return sorted_ids, rank[rows], cols.astype(np.int32), weights, int(shape[1])


def features_by_index(side, ids: np.ndarray) -> Optional[Features]:
    """The features `read_features` gave, as CSR rows in the model's index order."""
    if side is None:
        return None
    feature_ids, rows, cols, weights, n_features = side
    rows = index_of(feature_ids, ids)[rows]
    indptr, indices, values = _core.build_csr(rows, cols, weights, len(ids), n_features)
    return Features(indptr, indices, values, n_features)
