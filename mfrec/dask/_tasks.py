"""The tasks of a blocked fit and of distributed top-N, run on the workers.

Each is a pure function of its arguments: a worker that dies takes only
copies with it, and the scheduler re-runs its tasks from their inputs to
the same results. A block is a dict (its CSR, its rows [lo, hi), the
weights the kernel reads); a side's state is a dict of factors and bias.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .. import _core
from .._ids import duplicates, index_of, triplets
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


def summarize(part, columns: dict, where: str) -> dict:
    """What planning needs from a partition: each side's ids and their
    counts, the number of ratings, their float64 sum, least and largest."""
    u, i, r = read_part(part, columns, where)
    out: dict = {"n": len(r), "sum": float(np.sum(r, dtype=np.float64)),
           "low": float(r.min()) if len(r) else np.inf,
           "high": float(r.max()) if len(r) else -np.inf}
    for side, raw in (("user", u), ("item", i)):
        out[side] = np.unique(raw, return_counts=True)
    return out


def pieces(rows: np.ndarray, cols: np.ndarray, values: Optional[np.ndarray],
           bounds: np.ndarray) -> list:
    """(rows - lo, cols, values) of each block [bounds[b], bounds[b + 1]),
    int32 indices, in the order given within each block. One masked pass
    a block: a byte a rating of scratch, where a sort by block would take
    24 (a 12M-rating block cut in two needed 300 MB more)."""
    out = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        sel = np.flatnonzero((rows >= lo) & (rows < hi))
        local = rows[sel].astype(np.int32)
        local -= np.int32(lo)
        out.append((local, cols[sel].astype(np.int32, copy=False),
                    None if values is None else values[sel]))
    return out


def split(part, columns: dict, where: str, vocab: dict, bounds: np.ndarray) -> list:
    """A partition's ratings as contiguous indices, cut into the pieces of
    every user block."""
    u, i, r = read_part(part, columns, where)
    return pieces(index_of(u, vocab["user"]), index_of(i, vocab["item"]), r, bounds)


def transpose(block: dict, bounds: np.ndarray) -> list:
    """A user block's ratings cut into the pieces of every item block (the
    item blocks are built from the user blocks, so that the partitions'
    pieces are gone before the item side's are made)."""
    users = np.repeat(np.arange(block["lo"], block["hi"], dtype=np.int32),
                      np.diff(block["indptr"]))
    items = block["indices"] if block["needed"] is None else block["needed"][block["indices"]]
    return pieces(items, users, block["values"], bounds)


def split_pairs(part, columns: dict, where: str, vocab: dict, bounds: np.ndarray) -> list:
    """Seen (user, item) pairs of a partition, cut by user block; ids the
    model does not know are dropped (it never ranks them)."""
    u, i = read_pairs(part, columns, where)
    uidx, iidx = index_of(u, vocab["user"], f"{where}: users"), index_of(i, vocab["item"],
                                                                        f"{where}: items")
    keep = (uidx >= 0) & (iidx >= 0)
    return pieces(uidx[keep], iidx[keep], None, bounds)


def piece(split_result: list, b: int):
    """Block b's piece of a split."""
    return split_result[b]


#: ratings per slice of rows a block's CSR is built from (bounds the scratch)
SLICE = 1 << 21


def csr_of(parts: Sequence[tuple], n_rows: int, n_cols: int, on_duplicate):
    """The CSR (columns ascending in each row) of rows [0, n_rows) from
    (rows, cols, values) pieces, built a slice of rows at a time into the
    final arrays: the scratch is a slice's, not the block's (concatenated
    triplets and the core's column-ordered copy were 24 bytes a rating).
    on_duplicate(rows, cols) raises for a repeated pair."""
    counts = np.zeros(n_rows, np.int64)
    for p in parts:
        counts += np.bincount(p[0], minlength=n_rows)
    indptr = np.r_[0, np.cumsum(counts)].astype(np.int64)
    indices = np.empty(indptr[-1], np.int32)
    values = np.empty(indptr[-1], np.float32)
    cuts = np.unique(np.r_[np.searchsorted(indptr, np.arange(0, indptr[-1], SLICE),
                                           side="right") - 1, n_rows].clip(0, n_rows))
    cuts = np.unique(np.r_[0, cuts])
    for a, b in zip(cuts[:-1], cuts[1:]):
        chosen = [(p[0], p[1], p[2], np.flatnonzero((p[0] >= a) & (p[0] < b))) for p in parts]
        rows = np.concatenate([r[sel] for r, _, _, sel in chosen]) - np.int32(a)
        cols = np.concatenate([c[sel] for _, c, _, sel in chosen])
        vals = np.concatenate([v[sel] for _, _, v, sel in chosen])
        del chosen
        try:
            _, ix, vx = _core.build_csr(rows, cols, vals, int(b - a), n_cols)
        except ValueError:  # the only failure left: a repeated (row, column) pair
            on_duplicate(rows + a, cols)
            raise
        indices[indptr[a]:indptr[b]], values[indptr[a]:indptr[b]] = ix, vx
    return indptr, indices, values


def build_block(side: str, lo: int, hi: int, n_cols: int, vocab: dict, routed: bool,
                row_weights: Optional[np.ndarray], col_weights: Optional[np.ndarray],
                *parts) -> dict:
    """The CSR of rows [lo, hi) of `side` from its pieces (columns the
    other side's indices, ascending in each row, as the single-process
    fit's CSR). Routed: columns renumbered to the block's own list of the
    other side's rows it needs (`needed`, ascending), weights likewise."""
    def duplicate(rows, cols):
        ids = vocab[side][rows + lo], vocab["item" if side == "user" else "user"][cols]
        raise ValueError("fit: users and items: "
                         + duplicates(*(ids if side == "user" else ids[::-1]))) from None

    indptr, indices, values = csr_of(parts, hi - lo, n_cols, duplicate)
    block = {"side": side, "lo": lo, "hi": hi, "indptr": indptr, "values": values,
             "row_weights": None if row_weights is None else row_weights[lo:hi],
             "col_weights": col_weights, "needed": None}
    if routed:
        block["needed"] = needed = np.unique(indices).astype(np.int32)
        indices = np.searchsorted(needed, indices).astype(np.int32)
        if col_weights is not None:
            block["col_weights"] = col_weights[needed]
    block["indices"] = indices
    return block


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
    (repeated pairs allowed: they are merged)."""
    rows = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int32)
    cols = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int32)
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
