"""The columns of a file's rows written in place by readers side by side.

One array per column holds every reader's rows: reader k writes its blocks
into its own region of rows (a capacity estimated before reading), so the
readers need no lock and no reader's rows are copied into a second array.
At the end the regions are closed up in place (within pages written
already) and the arrays shrunk (``ndarray.resize``, a realloc), so no
column is ever held twice. A lone reader grows the arrays instead (by a
quarter); a reader among several whose rows overrun its region keeps the
blocks past it, and the columns are then joined by a copy (one column at
a time). String columns (ids of widths that differ between blocks) are
kept as lists of blocks and joined at the end.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np

MOVE_ROWS = 1 << 20  # rows moved at a time when closing up (NumPy buffers an overlap)


class Columns:
    """`dtypes`: each column's final dtype (None: strings); `capacities`:
    the rows of each reader's region (0: sized from the first block)."""

    def __init__(self, dtypes: Dict[str, Optional[np.dtype]], capacities: Sequence[int]):
        self.starts = [0, *np.cumsum(capacities, dtype=np.int64).tolist()]
        self.arrays = {role: np.empty(self.starts[-1], dtype)
                       for role, dtype in dtypes.items() if dtype is not None}
        self.strings: List[Dict[str, List[np.ndarray]]] = [
            {role: [] for role, dtype in dtypes.items() if dtype is None} for _ in capacities]
        self.filled = [0] * len(capacities)  # rows written in each region
        self.past: List[List[Dict[str, np.ndarray]]] = [[] for _ in capacities]

    def put(self, k: int, block: Dict[str, np.ndarray]) -> None:
        """Reader k's next block (each column in its final dtype)."""
        m = len(next(iter(block.values())))
        for role, blocks in self.strings[k].items():
            blocks.append(block[role])
        n = self.filled[k]
        if self.starts[k] + n + m > self.starts[k + 1] or self.past[k]:
            if len(self.filled) > 1:  # the next region is another reader's
                self.past[k].append({role: block[role] for role in self.arrays})
                return
            capacity = self.starts[1]
            self.starts[1] = max(n + m, capacity + capacity // 4, 4 * m)
            for a in self.arrays.values():
                a.resize(self.starts[1], refcheck=False)
        at = self.starts[k] + n
        for role, a in self.arrays.items():
            a[at:at + m] = block[role]
        self.filled[k] = n + m

    def join(self) -> Dict[str, np.ndarray]:
        """The columns of every reader's rows, in reader order."""
        if any(self.past):
            columns = {role: self._copied(role) for role in list(self.arrays)}
        else:
            n = 0
            for start, m in zip(self.starts, self.filled):
                for a in self.arrays.values():
                    _move(a, start, n, m)
                n += m
            for a in self.arrays.values():
                a.resize(n, refcheck=False)
            columns = dict(self.arrays)
        for role in list(self.strings[0]):
            blocks = [b for strings in self.strings for b in strings.pop(role)]
            columns[role] = np.concatenate(blocks) if blocks else np.empty(0, str)
        return columns

    def _copied(self, role: str) -> np.ndarray:
        """A column joined into a new array (the old one dropped)."""
        a = self.arrays.pop(role)
        pieces = []
        for k, (start, m) in enumerate(zip(self.starts, self.filled)):
            pieces += [a[start:start + m]] + [block.pop(role) for block in self.past[k]]
        return np.concatenate(pieces, dtype=a.dtype, casting="same_kind")


def _move(a: np.ndarray, start: int, to: int, m: int) -> None:
    """a[to:to + m] = a[start:start + m] for to <= start, a slice at a time:
    NumPy copies an overlapping source first, here at most MOVE_ROWS."""
    if to == start:
        return
    for s in range(0, m, MOVE_ROWS):
        e = min(m, s + MOVE_ROWS)
        a[to + s:to + e] = a[start + s:start + e]
