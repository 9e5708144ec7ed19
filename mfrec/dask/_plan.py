"""Block layouts, with or without data: where the rows go, how each
half-step receives the other side's factors, and what that moves.

Rows of each side are ranged into blocks of about equal work (its ratings,
plus, for a Cholesky solve, k a row for its dense k x k system)
(contiguous index ranges, so the blocks' factors concatenate into the
model's). Before a half-step every block of the solved side needs the rows
of the other side that its ratings name. Broadcast: every worker receives
the other side's blocks it does not hold and joins them, W - 1 copies of
the side. Routed (Spark's blocked ALS):
each block of the other side sends each solved block only the rows it
needs, about (W - 1) / W of the sum of the blocks' needs. Broadcast wins
while the side is small; routed once every block needs only a fraction of
it. `plan` makes a layout from sizes alone (a dry run, no data) with the
expected needs of a long-tailed matrix.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Tuple

import numpy as np

#: a side whose factors take more bytes than this is routed, not broadcast
BROADCAST_LIMIT = 64 << 20
CHOICES = ("auto", "broadcast", "routed")


@dataclass
class Layout:
    """A block layout. bounds: the first row of each block of each side and
    the end; exchange["user"]: how the user half-step receives the item
    factors ("broadcast" or "routed"), and the reverse; needed[side]: for
    each block of `side`, how many rows of the other side it needs."""

    n_users: int
    n_items: int
    nnz: int
    factors: int
    n_workers: int
    biases: bool
    bounds: dict
    exchange: dict
    needed: dict = field(default_factory=dict)

    @property
    def n_blocks(self) -> int:
        return len(self.bounds["user"]) - 1

    def row_bytes(self) -> int:
        return 4 * (self.factors + (1 if self.biases else 0))

    def exchange_bytes(self, side: str) -> float:
        """Bytes the `side` half-step receives from the other side."""
        other = "item" if side == "user" else "user"
        W = self.n_workers
        if W == 1:
            return 0.0
        n_other = self.n_users if other == "user" else self.n_items
        if self.exchange[side] == "broadcast":
            return n_other * self.row_bytes() * (W - 1)
        return float(np.sum(self.needed[side])) * self.row_bytes() * (W - 1) / W

    def bytes_per_iteration(self) -> float:
        return self.exchange_bytes("user") + self.exchange_bytes("item")

    def worker_bytes(self) -> float:
        """Memory a worker holds while it iterates: its blocks' CSRs (both
        sides: 8 bytes a rating, plus the row pointers), its rows' factors
        (old and new), and the other side's rows it receives."""
        W = self.n_workers
        csr = 2 * 8 * self.nnz / W + 8 * (self.n_users + self.n_items) / W
        own = 2 * self.row_bytes() * (self.n_users + self.n_items) / W
        received = 0.0
        for side, n_other in (("user", self.n_items), ("item", self.n_users)):
            if self.exchange[side] == "broadcast":
                received = max(received, n_other * self.row_bytes())
            else:
                received = max(received, float(np.sum(self.needed[side])) / W * self.row_bytes())
        return csr + own + received

    def summary(self) -> dict:
        return {"n_blocks": self.n_blocks, "exchange": dict(self.exchange),
                "bytes_per_iteration": self.bytes_per_iteration(),
                "worker_bytes": self.worker_bytes()}


def check_choice(exchange: str) -> None:
    if exchange not in CHOICES:
        raise ValueError(f"exchange must be one of {CHOICES}, got {exchange!r}")


def ranges(counts: np.ndarray, n_blocks: int) -> np.ndarray:
    """Bounds of n_blocks contiguous ranges of rows with about equal sums
    of `counts` (every block non-empty while there are rows enough)."""
    n = len(counts)
    n_blocks = max(1, min(n_blocks, n))
    cum = np.cumsum(counts, dtype=np.float64)
    targets = cum[-1] * np.arange(1, n_blocks) / n_blocks
    cuts = np.searchsorted(cum, targets, side="left") + 1
    step = np.arange(n_blocks - 1)
    cuts = np.maximum.accumulate(cuts - step) + step  # strictly increasing
    cuts = np.minimum(cuts, n - n_blocks + 1 + step)  # and room for the blocks after
    return np.r_[0, cuts, n].astype(np.int64)


def exchanges(n_users: int, n_items: int, row_bytes: int, exchange: str,
              limit: int) -> dict:
    """How each half-step receives the other side, by its size."""
    if exchange != "auto":
        return {"user": exchange, "item": exchange}
    return {side: "broadcast" if n_other * row_bytes <= limit else "routed"
            for side, n_other in (("user", n_items), ("item", n_users))}


def zipf_groups(n: int, exponent: float) -> Tuple[np.ndarray, np.ndarray]:
    """Rows 0..n-1 with weights proportional to (row + 1)^-exponent, in
    about 2000 log-spaced groups of rows (a dry run over a billion ratings
    needs no array per row): (group edges, the share of one row of each
    group), the shares of all rows summing to 1."""
    edges = np.unique(np.r_[0, np.geomspace(1, n, 2000).astype(np.int64), n])
    mid = (edges[:-1] + edges[1:] + 1) / 2.0
    share = mid ** -exponent
    return edges, share / float(np.sum(share * np.diff(edges)))


def grouped_ranges(edges: np.ndarray, share: np.ndarray, n_blocks: int) -> np.ndarray:
    """Bounds of n_blocks ranges of rows with equal sums of shares,
    interpolated within groups."""
    cum = np.r_[0.0, np.cumsum(share * np.diff(edges))]
    cuts = np.interp(np.arange(1, n_blocks) / n_blocks, cum, edges).astype(np.int64)
    return np.r_[0, cuts, edges[-1]]


def expected_needs(bounds: np.ndarray, edges: np.ndarray, share: np.ndarray, nnz: int,
                   other: tuple) -> np.ndarray:
    """Expected rows of the other side (its groups `other`) each block
    needs: with m ratings drawn by the other side's shares w_j, sum_j
    1 - exp(-m w_j) distinct rows."""
    cum = np.r_[0.0, np.cumsum(share * np.diff(edges))]
    o_edges, o_share = other
    out = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        m = nnz * float(np.interp(hi, edges, cum) - np.interp(lo, edges, cum))
        out.append(float(np.sum(np.diff(o_edges) * -np.expm1(-m * o_share))))
    return np.array(out)


def plan(n_users: int, n_items: int, nnz: int, factors: int = 64, n_workers: int = 2,
         n_blocks: Optional[int] = None, biases: bool = False, exchange: str = "auto",
         broadcast_limit: int = BROADCAST_LIMIT, user_skew: float = 0.5,
         item_skew: float = 0.8) -> Layout:
    """The layout a fit of `nnz` ratings would use, without data (a dry
    run): blocks, the exchange of each half-step, and its volume, with
    ratings spread over users and items by Zipf weights of the given
    exponents (0: uniform). ``layout.summary()`` gives the figures."""
    check_choice(exchange)
    n_blocks = n_workers if n_blocks is None else n_blocks
    groups = {"user": zipf_groups(n_users, user_skew), "item": zipf_groups(n_items, item_skew)}
    bounds = {side: grouped_ranges(*g, n_blocks) for side, g in groups.items()}
    row_bytes = 4 * (factors + (1 if biases else 0))
    layout = Layout(n_users, n_items, nnz, factors, n_workers, biases, bounds,
                    exchanges(n_users, n_items, row_bytes, exchange, broadcast_limit))
    for side, other in (("user", "item"), ("item", "user")):
        layout.needed[side] = expected_needs(bounds[side], *groups[side], nnz, groups[other])
    return layout
