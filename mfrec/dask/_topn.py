"""Distributed top-N: users in chunks over the workers, each chunk ranked
by the single-process kernel against the whole catalogue or, for one too
large for a worker, against each block of items, whose lists then merge."""
from __future__ import annotations

from typing import Optional

import numpy as np

from .._predictions import check_n
from .._state import check_fitted, reading
from . import _tasks
from ._fit import scatter
from ._plan import ranges


def _state(model, side: str, lo: int, hi: int) -> dict:
    bias = getattr(model, f"{side}_bias")
    return {"factors": np.ascontiguousarray(getattr(model, f"{side}_factors")[lo:hi]),
            "bias": None if bias is None else np.ascontiguousarray(bias[lo:hi])}


def _seen_chunks(client, model, bounds, seen_parts, columns):
    """Per user chunk, the (indptr, indices) of the items to skip: the
    model's training items, or the pairs of the `seen` partitions."""
    if seen_parts is None:
        indptr, indices = model.seen_indptr, model.seen_indices
        return [scatter(client, (indptr[lo:hi + 1] - indptr[lo],
                                 indices[indptr[lo]:indptr[hi]]))
                for lo, hi in zip(bounds[:-1], bounds[1:])]
    import dask

    vocab = scatter(client, {"user": model.user_ids, "item": model.item_ids},
                    broadcast=True)
    splits = client.compute([dask.delayed(_tasks.split_pairs, pure=True)(
        p, columns, "recommend_all: seen", vocab, bounds) for p in seen_parts])
    return [client.submit(_tasks.seen_csr, int(hi - lo), len(model.item_ids),
                          *[client.submit(_tasks.piece, s, b) for s in splits])
            for b, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:]))]


def top_lists(client, model, n: int, seen_parts, columns: dict, n_chunks: Optional[int],
              item_blocks: int, exclude_seen: bool):
    """Futures of each user chunk's (item indices, scores, counts), and
    the chunks' bounds."""
    n = check_n(n)
    check_fitted(model)
    with reading(model):
        n_users, n_items = len(model.user_ids), len(model.item_ids)
        workers = len(client.scheduler_info(n_workers=-1)["workers"])
        n_chunks = max(1, workers) if n_chunks is None else n_chunks
        bounds = ranges(np.ones(n_users), n_chunks)
        item_bounds = ranges(np.ones(n_items), item_blocks)
        width = min(n, n_items)
        items = [scatter(client, _state(model, "item", lo, hi), broadcast=True)
                 for lo, hi in zip(item_bounds[:-1], item_bounds[1:])]
        users = [scatter(client, _state(model, "user", lo, hi))
                 for lo, hi in zip(bounds[:-1], bounds[1:])]
        seen = _seen_chunks(client, model, bounds, seen_parts, columns)
        out = []
        for u, s in zip(users, seen):
            tops = [client.submit(_tasks.top_block, u, q, model.global_mean, s,
                                  int(item_bounds[c]), width, exclude_seen)
                    for c, q in enumerate(items)]
            out.append(tops[0] if len(tops) == 1 else
                       client.submit(_tasks.merge_tops, width, *tops))
        return out, bounds, width


def to_raw(lists, ids: np.ndarray, user_ids: np.ndarray, width: int):
    """A chunk's lists as a long table: user, rank, item, score (raw ids)."""
    import pandas as pd

    idx, scores, counts = lists
    idx, scores = idx[:, :width], scores[:, :width]
    valid = idx >= 0
    rows, rank = np.nonzero(valid)
    return pd.DataFrame({"user": user_ids[rows], "rank": (rank + 1).astype(np.int32),
                         "item": ids[idx[valid]], "score": scores[valid]})


def as_arrays(lists, ids: np.ndarray, width: int):
    """A chunk's lists as (raw ids padded as Model.recommend_all pads them,
    scores)."""
    from .._predictions import raw_lists

    return raw_lists(lists, width, ids, False)
