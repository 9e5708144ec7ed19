"""The tasks of a blocked fit and of distributed top-N, run on the workers.

Each is a pure function of its arguments: a worker that dies takes only
copies with it, and the scheduler re-runs its tasks from their inputs to
the same results. A block is a dict (its CSR, its rows [lo, hi), the
weights the kernel reads); a side's state is a dict of factors and bias.
"""
from __future__ import annotations

import sys
from typing import NamedTuple, Optional, Sequence, Tuple

import numpy as np

from .. import _core
from .._ids import counted_ids, duplicates, index_of, triplets
from .._vocab import as_raw_ids
from ..algorithms import INIT_KINDS
from ..ratings import from_any
from .._tables import column, column_names, pick_columns, table_kind


def read_part(part, columns: dict, where: str):
    """(raw users, raw items, float32 ratings) of one partition: a pandas
    DataFrame read as the single-process fit reads a table, or a tuple of
    three array chunks."""
    if isinstance(part, tuple):
        users, items, ratings = part
        return triplets(users, items, ratings, where)
    return triplets(from_any(part, where=where, **columns), None, None, where)


def read_pairs(part, columns: dict, where: str):
    """(raw users, raw items) of a table partition (no rating needed)."""
    kind = table_kind(part)
    if kind is None:
        raise TypeError(f"{where}: expected DataFrame partitions, got {type(part).__name__}")
    names = pick_columns(column_names(part, kind), {"user": columns.get("user"),
                                                     "item": columns.get("item")}, where)
    return tuple(as_raw_ids(column(part, kind, names[role], where), f"{where}: {role}s")
                 for role in ("user", "item"))


def release_arrow_memory() -> None:
    """Hand the memory Arrow's allocator keeps after a partition was read
    back to the system: it would otherwise stay in the worker's resident
    size (about 100 MB after reading 25M ratings' Parquet files)."""
    if "pyarrow" in sys.modules:
        sys.modules["pyarrow"].default_memory_pool().release_unused()


def summarize(part, columns: dict, where: str) -> dict:
    """What planning needs from a partition: each side's ids and their
    counts, the number of ratings, their float64 sum, least and largest."""
    u, i, r = read_part(part, columns, where)
    release_arrow_memory()
    out: dict = {"n": len(r), "sum": float(np.sum(r, dtype=np.float64)),
           "low": float(r.min()) if len(r) else np.inf,
           "high": float(r.max()) if len(r) else -np.inf}
    for side, raw in (("user", u), ("item", i)):
        out[side] = counted_ids(raw)
    return out


class Piece(NamedTuple):
    """A block's share of some ratings, compressed by row: `rows` (int32,
    ascending, local to the block) hold entries cols/values[starts[j]:
    starts[j + 1]); columns are `cols + col_offset`. 8 bytes a rating and
    12 a row present, where (row, col, value) triplets took 12 a rating."""
    rows: np.ndarray
    starts: np.ndarray
    cols: np.ndarray
    values: Optional[np.ndarray]
    col_offset: int = 0


def compact(indptr, indices, values, r0: int, r1: int, rows_of: Optional[np.ndarray] = None,
            row_offset: int = 0, col_offset: int = 0) -> Piece:
    """Rows [r0, r1) of a CSR as a Piece of views, its empty rows left
    out; row r is named rows_of[r] (default r), less row_offset."""
    present = np.flatnonzero(np.diff(indptr[r0:r1 + 1])) + r0
    rows = present if rows_of is None else rows_of[present]
    e0, e1 = int(indptr[r0]), int(indptr[r1])
    return Piece((rows - row_offset).astype(np.int32), np.r_[indptr[present], e1] - e0,
                 indices[e0:e1], None if values is None else values[e0:e1], col_offset)


def pieces(rows: np.ndarray, cols: np.ndarray, values: Optional[np.ndarray],
           bounds: np.ndarray, n_cols: int, on_duplicate) -> list:
    """The Piece of each block [bounds[b], bounds[b + 1]) of (rows, cols,
    values) triplets, columns ascending in each row. One masked pass a
    block: a byte a rating of scratch, where a sort by block would take
    24. on_duplicate(rows, cols), if given, raises for a repeated pair."""
    out = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        sel = np.flatnonzero((rows >= lo) & (rows < hi))
        local = rows[sel].astype(np.int32)
        local -= np.int32(lo)
        block_cols = cols[sel].astype(np.int32, copy=False)
        try:
            if values is None:
                indptr, indices, vals = _core.build_csr(local, block_cols, None, int(hi - lo),
                                                        n_cols, keep_values=False)
            else:
                indptr, indices, vals = _core.build_csr(local, block_cols, values[sel],
                                                        int(hi - lo), n_cols)
        except ValueError:  # the only failure left: a repeated (row, column) pair
            if on_duplicate is not None:
                on_duplicate(local + lo, block_cols)
            raise
        out.append(compact(indptr, indices, vals, 0, int(hi - lo)))
    return out


def duplicate_error(vocab: dict, side: str):
    """on_duplicate for rows of `side` and columns of the other: a
    ValueError naming a repeated pair by its raw ids."""
    def raise_for(rows, cols):
        ids = vocab[side][rows], vocab["item" if side == "user" else "user"][cols]
        raise ValueError("fit: users and items: "
                         + duplicates(*(ids if side == "user" else ids[::-1]))) from None
    return raise_for


def split(part, columns: dict, where: str, vocab: dict, bounds: np.ndarray) -> list:
    """A partition's ratings as contiguous indices, cut into the pieces of
    every user block."""
    u, i, r = read_part(part, columns, where)
    release_arrow_memory()
    return pieces(index_of(u, vocab["user"]), index_of(i, vocab["item"]), r, bounds,
                  len(vocab["item"]), duplicate_error(vocab, "user"))


def transpose(block: dict, bounds: np.ndarray, wanted: Sequence[int]) -> list:
    """A user block's ratings cut into the pieces of the item blocks in
    `wanted` (those built on other workers; None for the rest, which read
    the user block itself): its transpose, by the core, and copies of each
    wanted block's rows of it, so that the transpose goes with the task."""
    by_col = _core.transpose_csr((block["indptr"], block["indices"], block["values"]),
                                 transposed_rows(block))
    out: list = [None] * (len(bounds) - 1)
    for b in wanted:
        lo, hi = int(bounds[b]), int(bounds[b + 1])
        p = compact(*by_col, *item_rows(block, lo, hi), block["needed"], lo, block["lo"])
        assert p.values is not None  # a fit's blocks hold their ratings
        out[b] = p._replace(cols=p.cols.copy(), values=p.values.copy())
    return out


def transposed_rows(block: dict) -> int:
    """Rows of a user block's transpose: every item, or the block's own
    list of the items it rates (`needed`, routed)."""
    return block["n_cols"] if block["needed"] is None else len(block["needed"])


def item_rows(block: dict, lo: int, hi: int) -> Tuple[int, int]:
    """The rows of a user block's transpose that hold items [lo, hi)."""
    needed = block["needed"]
    r0, r1 = (lo, hi) if needed is None else np.searchsorted(needed, (lo, hi))
    return int(r0), int(r1)


def split_pairs(part, columns: dict, where: str, vocab: dict, bounds: np.ndarray) -> list:
    """Seen (user, item) pairs of a partition, once each, cut by user
    block; ids the model does not know are dropped (it never ranks them)."""
    u, i = read_pairs(part, columns, where)
    release_arrow_memory()
    n_items = len(vocab["item"])
    uidx, iidx = index_of(u, vocab["user"], f"{where}: users"), index_of(i, vocab["item"],
                                                                        f"{where}: items")
    keep = (uidx >= 0) & (iidx >= 0)
    keys = np.unique(uidx[keep].astype(np.int64) * n_items + iidx[keep])
    return pieces(keys // n_items, keys % n_items, None, bounds, n_items, None)


def piece(split_result: list, b: int):
    """Block b's piece of a split."""
    return split_result[b]


def triplets_of(p: Piece, lo: int = 0, hi: Optional[int] = None) -> tuple:
    """(rows, cols, values) of a piece's rows in [lo, hi), rows less lo."""
    i0, i1 = (0, len(p.rows)) if hi is None else np.searchsorted(p.rows, (lo, hi))
    e0, e1 = p.starts[i0], p.starts[i1]
    rows = np.repeat(p.rows[i0:i1] - np.int32(lo), np.diff(p.starts[i0:i1 + 1]))
    cols = p.cols[e0:e1] + np.int32(p.col_offset) if p.col_offset else p.cols[e0:e1]
    return rows, cols, None if p.values is None else p.values[e0:e1]


#: ratings per slice of rows a block's CSR is built from (bounds the scratch)
SLICE = 1 << 20


def slices(indptr: np.ndarray) -> list:
    """Consecutive ranges [a, b) of rows holding about SLICE entries each
    (a row longer than SLICE alone), covering every row."""
    n_rows = len(indptr) - 1
    cuts = np.searchsorted(indptr, np.arange(0, indptr[-1], SLICE), side="right") - 1
    cuts = np.unique(np.r_[0, cuts.clip(0, n_rows), n_rows])
    return list(zip(cuts[:-1].tolist(), cuts[1:].tolist()))


def csr_of(parts: Sequence[Piece], n_rows: int, n_cols: int, on_duplicate):
    """The CSR (columns ascending in each row) of rows [0, n_rows) from
    pieces, built a slice of rows at a time into the final arrays: the
    scratch is a slice's, not the block's. on_duplicate(rows, cols) raises
    for a repeated pair."""
    counts = np.zeros(n_rows, np.int64)
    for p in parts:
        counts[p.rows] += np.diff(p.starts)
    indptr = np.r_[0, np.cumsum(counts)].astype(np.int64)
    indices = np.empty(indptr[-1], np.int32)
    values = np.empty(indptr[-1], np.float32)
    for a, b in slices(indptr):
        rows, cols, vals = (np.concatenate(x) for x in
                            zip(*(triplets_of(p, a, b) for p in parts)))
        try:
            _, ix, vx = _core.build_csr(rows, cols, vals, int(b - a), n_cols)
        except ValueError:  # the only failure left: a repeated (row, column) pair
            on_duplicate(rows + a, cols)
            raise
        indices[indptr[a]:indptr[b]], values[indptr[a]:indptr[b]] = ix, vx
    return indptr, indices, values


def stacked_csr(sources: Sequence, counts: np.ndarray, lo: int, hi: int):
    """The CSR of item rows [lo, hi) (`counts` ratings each) from every
    user block's share, in the order of their user ranges: a Piece, or the
    user block itself where it lies on this worker. A row's entries are
    each source's in turn, users ascending within each, so the columns
    ascend with no sort; the scratch is a slice's."""
    indptr = np.r_[0, np.cumsum(counts)].astype(np.int64)
    indices = np.empty(indptr[-1], np.int32)
    values = np.empty(indptr[-1], np.float32)
    cursor = indptr[:-1].copy()  # where each row's next entry goes
    for source in sources:
        for p in [source] if isinstance(source, Piece) else block_pieces(source, lo, hi):
            for i0, i1 in slices(p.starts):
                e0, e1 = p.starts[i0], p.starts[i1]
                lens = np.diff(p.starts[i0:i1 + 1])
                dest = np.repeat(cursor[p.rows[i0:i1]] - p.starts[i0:i1], lens)
                dest += np.arange(e0, e1)
                indices[dest] = p.cols[e0:e1] + np.int32(p.col_offset)
                assert p.values is not None  # a fit's blocks hold their ratings
                values[dest] = p.values[e0:e1]
                cursor[p.rows[i0:i1]] += lens
    if not np.array_equal(cursor, indptr[1:]):
        raise RuntimeError("mfrec.dask: an item block's ratings do not match its counts")
    return indptr, indices, values


def block_pieces(block: dict, lo: int, hi: int):
    """The Pieces of item rows [lo, hi) in a user block, a slice of its rows
    at a time (the core's transpose of each slice: a slice's scratch)."""
    indptr, n_cols, rows = block["indptr"], transposed_rows(block), item_rows(block, lo, hi)
    for u0, u1 in slices(indptr):
        e0, e1 = indptr[u0], indptr[u1]
        by_col = _core.transpose_csr((indptr[u0:u1 + 1] - e0, block["indices"][e0:e1],
                                      block["values"][e0:e1]), n_cols)
        yield compact(*by_col, *rows, block["needed"], lo, block["lo"] + u0)


def build_block(side: str, lo: int, hi: int, n_cols: int, vocab: dict, routed: bool,
                row_weights: Optional[np.ndarray], col_weights: Optional[np.ndarray],
                counts: Optional[np.ndarray], *parts) -> dict:
    """The CSR of rows [lo, hi) of `side` (columns the other side's
    indices, ascending in each row, as the single-process fit's CSR): a
    user block from its pieces of the partitions, an item block (`counts`
    ratings a row) from the user blocks' shares (see stacked_csr). Routed:
    columns renumbered to the block's own list of the other side's rows it
    needs (`needed`, ascending), weights likewise."""
    if counts is None:
        raise_for = duplicate_error(vocab, side)
        indptr, indices, values = csr_of(parts, hi - lo, n_cols,
                                         lambda rows, cols: raise_for(rows + lo, cols))
    else:
        indptr, indices, values = stacked_csr(parts, counts, lo, hi)
    release_arrow_memory()
    block = {"side": side, "lo": lo, "hi": hi, "n_cols": n_cols, "indptr": indptr,
             "values": values, "row_weights": None if row_weights is None else row_weights[lo:hi],
             "col_weights": col_weights, "needed": None}
    if routed:
        # a mark and a lookup table the size of the other side, where
        # np.unique and searchsorted made 20 bytes a rating of scratch
        used = np.zeros(n_cols, bool)
        used[indices] = True
        block["needed"] = needed = np.flatnonzero(used).astype(np.int32)
        position = np.zeros(n_cols, np.int32)
        position[needed] = np.arange(len(needed), dtype=np.int32)
        indices = position[indices]
        if col_weights is not None:
            block["col_weights"] = col_weights[needed]
    block["indices"] = indices
    return block


def sealed_block(block: dict) -> dict:
    """The block with its indices sealed (_core.sealed_indices): the
    half-step kernel copies indices that Python could change while it runs,
    a copy the size of the block's indices at every half-step."""
    return dict(block, indices=_core.sealed_indices(block["indices"]))


def block_info(block: dict) -> dict:
    """Sizes of a block the driver plans with."""
    return {"nnz": len(block["values"]),
            "needed": None if block["needed"] is None else len(block["needed"])}


def initial_state(lo: int, hi: int, k: int, scale: float, seed: Optional[int], stream: int,
                  bias: bool) -> dict:
    """Rows [lo, hi) of a side's starting factors: N(0, scale^2) from
    (seed, stream) as the single-process fit draws the whole side (the
    rows before lo are drawn and dropped), or zeros for seed None."""
    factors = np.zeros((hi, k), np.float32)
    if seed is not None:
        _core.init_factors(factors, INIT_KINDS["normal"], scale, seed, stream)
    return {"factors": np.ascontiguousarray(factors[lo:]),
            "bias": np.zeros(hi - lo, np.float32) if bias else None}


def concat_states(*states) -> dict:
    """The states of consecutive blocks as one."""
    bias = None if states[0]["bias"] is None else np.concatenate([s["bias"] for s in states])
    return {"factors": np.concatenate([s["factors"] for s in states]), "bias": bias}


def take_rows(state: dict, needed: np.ndarray, lo: int, hi: int) -> dict:
    """The rows of a block's state that `needed` (global indices) names in
    [lo, hi): what one block routes to another."""
    sel = needed[(needed >= lo) & (needed < hi)] - lo
    return {"factors": state["factors"][sel],
            "bias": None if state["bias"] is None else state["bias"][sel]}


def gram(state: dict) -> np.ndarray:
    """The block's share of Y^T Y, in float64."""
    Y = state["factors"].astype(np.float64)
    return Y.T @ Y


def sum_grams(*grams) -> np.ndarray:
    return np.sum(grams, axis=0).astype(np.float32)


def half_step(block: dict, state: dict, others: Sequence[dict], gram_matrix, offset: float,
              kwargs: dict, loss: bool) -> dict:
    """Solve the block's rows with the other side fixed (`others`: its
    whole state, or the routed rows in block order), with the single-process
    fit's kernel; the new state with the kernel's sums under "stats"."""
    other = others[0] if len(others) == 1 else concat_states(*others)
    X = state["factors"].copy()
    x_bias = None if state["bias"] is None else state["bias"].copy()
    stats = _core.als_half_step(
        block["indptr"], block["indices"], block["values"], other["factors"], X,
        x_bias=x_bias, y_bias=other["bias"], offset=offset, row_weights=block["row_weights"],
        col_weights=block["col_weights"], gram=gram_matrix, loss=loss, **kwargs)
    return {"factors": X, "bias": x_bias, "stats": stats}


def stats_of(state: dict) -> dict:
    return state["stats"]


def seen_of(block: dict):
    """(row counts, global column indices) of a user block."""
    indices = block["indices"] if block["needed"] is None else block["needed"][block["indices"]]
    return np.diff(block["indptr"]), indices


def seen_csr(n_rows: int, n_items: int, *parts):
    """(indptr, indices) of seen pairs of rows [0, n_rows) from pieces
    (a pair in several pieces is kept once)."""
    pairs = [triplets_of(p) for p in parts]
    rows = np.concatenate([p[0] for p in pairs]) if parts else np.zeros(0, np.int32)
    cols = np.concatenate([p[1] for p in pairs]) if parts else np.zeros(0, np.int32)
    keys = np.unique(rows.astype(np.int64) * n_items + cols)
    rows, cols = (keys // n_items).astype(np.int32), (keys % n_items).astype(np.int32)
    indptr = np.r_[0, np.cumsum(np.bincount(rows, minlength=n_rows))].astype(np.int64)
    return indptr, cols


def top_block(users: dict, items: dict, mean: float, seen, item_lo: int, n: int,
              exclude_seen: bool) -> tuple:
    """Top-n of a chunk of users over a block of items (from item_lo), with
    the single-process ranking kernel; item indices global."""
    core = _core.Model()
    core.user_factors, core.item_factors = users["factors"], items["factors"]
    core.user_bias, core.item_bias = users["bias"], items["bias"]
    core.global_mean = mean
    indptr, indices = seen
    hi = item_lo + len(items["factors"])
    keep = (indices >= item_lo) & (indices < hi)
    rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))[keep]
    core.seen_indptr = np.r_[0, np.cumsum(np.bincount(rows, minlength=len(indptr) - 1))]
    core.seen_indices = (indices[keep] - item_lo).astype(np.int32)
    idx, scores, counts = _core.recommend(core, None, max(1, min(n, hi - item_lo)),
                                          exclude_seen=exclude_seen, pool=None, n_threads=1)
    return np.where(idx >= 0, idx + item_lo, -1).astype(np.int32), scores, counts


def merge_tops(n: int, *tops) -> tuple:
    """One top-n per user from per-item-block lists: highest score first,
    ties to the lower item index (the single-process kernel's order)."""
    idx = np.concatenate([t[0] for t in tops], axis=1)
    scores = np.concatenate([t[1] for t in tops], axis=1)
    missing = idx < 0
    key_score = np.where(missing, np.inf, -scores.astype(np.float64))
    key_item = np.where(missing, np.iinfo(np.int32).max, idx)
    order = np.lexsort((key_item, key_score), axis=-1)[:, :n]
    idx, scores = np.take_along_axis(idx, order, 1), np.take_along_axis(scores, order, 1)
    return idx, scores, (idx >= 0).sum(axis=1).astype(np.int32)
