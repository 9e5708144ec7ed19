"""mfrec on a Dask cluster: the same ALS and weighted MF models as in one
process, fitted with the ratings spread over the workers
(``pip install "mfrec[dask]"``).

Users and items are ranged into blocks of about equal work (ratings, plus k
a row for a Cholesky solve);
each block's CSR is built on one worker and stays there (Spark's blocked
ALS). A half-step sends each block the other side's factors it needs,
broadcast while that side is small (at most ``broadcast_limit`` bytes),
routed block to block above it, solves its rows with the single-process
kernel (``_core.als_half_step``, GIL released) and sums the objective; the
unobserved term's Gram matrix is reduced from the blocks when routed. Tasks
are pure: a worker that dies mid-fit takes only copies with it, its tasks
re-run from their inputs and the fit ends with the same factors.

**Same answer as one process.** With the same seed the factors are the
single-process ``Model.fit``'s: the blocks hold the same rows (items
ascending, the same values), start from the same draws and run the same
kernel per row, so for ``solver="cholesky"`` they are bit for bit
identical whenever the Gram matrix comes from the kernel itself: explicit
ALS (no Gram) and ``wals`` with a broadcast exchange. A routed ``wals``
half-step takes the Gram matrix summed in float64 over the blocks, which
differs from the kernel's float32 blocks in the last bits: factors agree
to about 1e-6 relative. ``solver="cg"`` runs the same arithmetic per row,
so the same holds. The history's train_loss and train_rmse sum the
blocks' shares, so they may differ in the last digits.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

try:
    import dask
    import distributed
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("mfrec.dask needs dask.distributed: pip install 'mfrec[dask]' "
                      "(or 'dask[distributed]')") from e

from ..ratings import from_any
from . import _fit, _topn
from ._plan import BROADCAST_LIMIT, Layout, plan

__all__ = ["fit", "recommend_all", "plan", "Layout", "BROADCAST_LIMIT"]


def _client(client):
    if client is not None:
        return client
    try:
        return distributed.get_client()
    except ValueError:
        raise ValueError("no Dask client: pass client= or create a distributed.Client "
                         "first") from None


def _partitions(data, columns: dict, where: str) -> list:
    """The partitions of a dask DataFrame (its columns checked on its
    meta), or the aligned chunks of three 1-D dask arrays."""
    import dask.array as da
    import dask.dataframe as dd

    if isinstance(data, dd.DataFrame):
        from_any(data._meta, where=where, **columns)  # missing or ambiguous columns
        return list(data.to_delayed())
    if isinstance(data, tuple) and len(data) == 3 and all(isinstance(a, da.Array) for a in data):
        if any(a.ndim != 1 for a in data) or len({a.chunks for a in data}) != 1:
            raise ValueError(f"{where}: users, items and ratings must be 1-D dask arrays "
                             "with the same chunks")
        if any(v is not None for v in columns.values()):
            raise TypeError(f"{where}: user=, item=, rating= name columns of a DataFrame")
        return list(zip(*(a.to_delayed().ravel() for a in data)))
    raise TypeError(f"{where}: data must be a dask DataFrame (user, item, rating columns) or "
                    f"a tuple of three dask arrays, got {type(data).__name__}")


def fit(model, data, client=None, n_blocks: Optional[int] = None, *, user=None, item=None,
        rating=None, exchange: str = "auto", broadcast_limit: int = BROADCAST_LIMIT,
        callback=None):
    """Fit an ``"als"`` or ``"wals"`` model on a Dask cluster.

    Parameters
    ----------
    model : mfrec.Model
        Its algorithm ("als": explicit, biases, ALS-WR; "wals": weighted or
        implicit) and parameters; fitted in place, as ``Model.fit`` does.
    data : dask.dataframe.DataFrame or tuple of dask arrays
        The ratings: user, item and rating columns (named with `user`,
        `item`, `rating` or guessed as ``Model.fit`` guesses them), or
        (users, items, ratings) 1-D dask arrays chunked alike. Ids of any
        kind ``Model.fit`` takes; empty partitions are fine; a repeated
        (user, item) pair, even across partitions, is a ValueError.
    client : distributed.Client, optional
        Default: the current client.
    n_blocks : int, optional
        Blocks per side (default: one per worker).
    exchange : {"auto", "broadcast", "routed"}
        How a half-step receives the other side's factors; "auto"
        broadcasts a side of at most `broadcast_limit` bytes.
    callback : callable, optional
        ``callback(model, row)`` after each iteration; False stops.

    Returns
    -------
    mfrec.Model
        The model, fitted: predict, recommend, save and fold-in work as
        after ``Model.fit``; ``history`` has one row per iteration
        (``exchange_bytes``: the factor bytes the layout moves in it).
    """
    columns = dict(user=user, item=item, rating=rating)
    client = _client(client)
    parts = _partitions(data, columns, "fit")
    if not parts:
        raise ValueError("fit: no ratings given (no partitions)")
    return _fit.fit(model, parts, columns, client, n_blocks, exchange, broadcast_limit,
                    callback)


def recommend_all(model, n: int = 10, seen=None, client=None, n_chunks: Optional[int] = None,
                  item_blocks: int = 1, exclude_seen: bool = True, *, user=None, item=None,
                  output: str = "dataframe"):
    """``model.recommend_all(n)`` on a cluster: users in `n_chunks` chunks
    (default: one per worker), each ranked with the single-process kernel;
    with ``item_blocks > 1`` each chunk ranks each block of items and the
    lists merge (highest score first, ties to the lower item index), for
    catalogues too large for one worker. The lists equal the model's own.

    `seen`: a dask DataFrame of (user, item) pairs to skip instead of the
    model's training items (ids the model does not know are ignored).
    Returns a dask DataFrame (user, rank, item, score; ranks from 1, one
    partition per chunk) or, with ``output="arrays"``, dask arrays (ids,
    scores) shaped and padded as ``Model.recommend_all``'s.
    """
    import dask.array as da
    import dask.dataframe as dd
    import pandas as pd

    if output not in ("dataframe", "arrays"):
        raise ValueError(f"output must be 'dataframe' or 'arrays', got {output!r}")
    for name, value in (("item_blocks", item_blocks), ("n_chunks", n_chunks)):
        if value is not None and (isinstance(value, bool) or
                                  not isinstance(value, (int, np.integer)) or value < 1):
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    client = _client(client)
    seen_parts = None
    if seen is not None:
        if not isinstance(seen, dd.DataFrame):
            raise TypeError(f"seen must be a dask DataFrame, got {type(seen).__name__}")
        seen_parts = list(seen.to_delayed())
    lists, bounds, width = _topn.top_lists(client, model, n, seen_parts,
                                           dict(user=user, item=item), n_chunks,
                                           item_blocks, exclude_seen)
    ids, users = model.item_ids, model.user_ids
    if output == "arrays":
        chunks = [client.submit(_topn.as_arrays, f, ids, width) for f in lists]
        parts = [[da.from_delayed(dask.delayed(lambda c, j=j: c[j])(c), (int(hi - lo), width),
                                  dtype=dt) for c, lo, hi in zip(chunks, bounds[:-1], bounds[1:])]
                 for j, dt in ((0, ids.dtype), (1, np.float32))]
        return da.concatenate(parts[0]), da.concatenate(parts[1])
    meta = pd.DataFrame({"user": users[:0], "rank": np.zeros(0, np.int32), "item": ids[:0],
                         "score": np.zeros(0, np.float32)})
    frames = [client.submit(_topn.to_raw, f, ids, users[lo:hi], width)
              for f, lo, hi in zip(lists, bounds[:-1], bounds[1:])]
    return dd.from_delayed([dask.delayed(f) for f in frames], meta=meta, verify_meta=False)
