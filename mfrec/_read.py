"""read_ratings: a ratings file (CSV, TSV, "::"-separated, Parquet) as Ratings.

The parsing is pyarrow's (its streaming CSV reader, or Parquet row groups)
or, without pyarrow, pandas' chunked ``read_csv``. Each block is converted
to its final dtype (int64 ids and timestamps, float32 ratings) and dropped,
and each column is joined once at the end: peak memory stays near the final
arrays plus one column, not a whole table of Python or Arrow objects. The
streaming reader parses one block at a time, so a large uncompressed text
file is cut into spans of whole lines, one per CPU (up to SPANS), read by
as many readers side by side.
"""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ._tables import GUESSES, pick_columns
from .ratings import Ratings, as_ids, as_ratings

__all__ = ["read_ratings"]

ROLES = ("user", "item", "rating", "timestamp")
SEPARATORS = ("::", "\t", ",", ";", "|")
# Text per block. pyarrow's streaming reader holds some dozens of blocks at
# once (its read-ahead and buffers: ~80 MB at 1 MB blocks, ~300 MB at 16 MB)
# and is no faster with larger ones.
BLOCK_BYTES = 1 << 20
SPANS, SPAN_BYTES = 4, 32 * BLOCK_BYTES  # spans of a text file read side by side
PANDAS_ROWS = 1 << 20  # rows per chunk of pandas' read_csv: it slows down below ~1e5


def read_ratings(path, sep: Optional[str] = None, *, columns: Optional[Sequence[str]] = None,
                 header: Optional[bool] = None, user: Optional[str] = None,
                 item: Optional[str] = None, rating: Optional[str] = None,
                 timestamp: Optional[str] = None, string_ids: bool = False,
                 engine: Optional[str] = None) -> Ratings:
    """Read a ratings file into :class:`mfrec.Ratings`.

    Parameters
    ----------
    path : a delimited text file (optionally .gz, .bz2 or .xz) or a Parquet
        file (.parquet or .pq).
    sep : the separator of a text file: one character, or "::" (MovieLens
        1M and 10M). Default: the first of "::", tab, ",", ";", "|" found in
        the first line.
    columns : the names of the file's columns, in order; default: its
        header, or for a file without one, user, item, rating, timestamp.
    header : whether the first line names the columns. Default: it does if
        a field is one of the names guessed below, or if one of its first
        two fields (with `string_ids`: its third) is not a number.
    user, item, rating, timestamp : which columns to read; a name not given
        is guessed, ignoring case, from a short list (user, userId, user_id;
        item, itemId, item_id, movieId, movie_id; rating, ratings, score;
        timestamp, read when present, as int64).
    string_ids : read the user and item columns as strings (ids such as
        "u123" or UUIDs); by default they must be integers.
    engine : "pyarrow" (the default when it is installed) or "pandas".

    Lines are read in blocks of 1 MB, each
    converted to the final dtypes at once, so the peak memory stays within
    twice the final arrays; a large uncompressed file in spans of lines,
    read side by side with pyarrow.

    Examples
    --------
    >>> import os
    >>> r = mfrec.read_ratings(os.path.join(os.environ["MFREC_DATA"], "ml-100k", "u.data"))
    >>> r
    Ratings(100000 ratings, 943 users, 1682 items)
    """
    path = os.fspath(path)
    engine = _engine(engine)
    where = f"read_ratings: {path}"
    chosen = dict(user=user, item=item, rating=rating, timestamp=timestamp)
    if path.endswith((".parquet", ".pq")):
        if engine != "pyarrow":
            raise ImportError("read_ratings: reading Parquet needs pyarrow "
                              "(pip install 'mfrec[data]')")
        f = _parquet_file(path, where)
        rows = f.metadata.num_rows
        return _ratings([_gather(_parquet_blocks(f, chosen, where, string_ids),
                                 lambda first: rows)], where)
    first = _first_line(path)
    sep = _separator(first, sep, where)
    fields = first.rstrip("\r\n").split(sep)
    if header is None:  # known names, or words where numbers (or a rating) would be
        known = {n for guesses in GUESSES.values() for n in guesses}
        header = any(f.strip().strip('"').lower() in known for f in fields) or not all(
            _is_number(f) for f in (fields[2:3] if string_ids else fields[:2]))
    if columns is None:
        columns = [f.strip().strip('"') for f in fields] if header else \
            [ROLES[k] if k < 4 else f"column{k}" for k in range(len(fields))]
    columns = [str(c) for c in columns]
    names = pick_columns(columns, chosen, where)
    if engine == "pandas":
        blocks = _pandas_blocks(path, sep, columns, bool(header), names, where, string_ids)
        return _ratings([_gather(blocks)], where)
    spans = _spans(path)

    def read(k):  # the k-th span of lines, the header skipped in the first
        start, stop = spans[k]
        source = path if len(spans) == 1 else _Span(path, start, stop)
        blocks = _arrow_blocks(source, sep, columns, bool(header) and k == 0, names, where,
                               string_ids, threads=len(spans) == 1)
        return _gather(blocks, None if stop is None else _text_rows(stop - start))

    if len(spans) == 1:
        return _ratings([read(0)], where)
    # pyarrow parses without the GIL; one thread per span (its own pool's
    # hand-offs between threads cost more than they bring when spans run)
    with ThreadPoolExecutor(len(spans)) as pool:
        return _ratings(list(pool.map(read, range(len(spans)))), where)


def _text_rows(size: int):
    """Rows of `size` bytes of text estimated from the rows of the first
    block (pyarrow's blocks are BLOCK_BYTES of text), with 3% to spare."""
    blocks = size / BLOCK_BYTES
    return lambda first: int(first * max(blocks, 1) * 1.03) + 1


def _spans(path: str) -> List[Tuple[int, Optional[int]]]:
    """Byte ranges of whole lines, one for each of up to pyarrow's CPU
    count (at most SPANS), each of at least SPAN_BYTES: its streaming reader
    parses one block at a time, so spans are read side by side. A
    compressed file is one span (stop None: its size is unknown)."""
    if path.endswith((".gz", ".bz2", ".xz")):
        return [(0, None)]
    import pyarrow as pa

    size = os.path.getsize(path)
    k = max(1, min(pa.cpu_count(), SPANS, size // SPAN_BYTES))
    cuts = [0]
    with open(path, "rb") as f:
        for j in range(1, k):
            f.seek(max(size * j // k, cuts[-1]))
            f.readline()  # to the start of the next line
            cuts.append(f.tell())
    return [(a, b) for a, b in zip(cuts, cuts[1:] + [size]) if b > a] or [(0, size)]


class _Span(io.RawIOBase):
    """Bytes [start, stop) of a file, as a stream pyarrow reads."""

    def __init__(self, path: str, start: int, stop: int):
        super().__init__()
        self._file = open(path, "rb")
        self._file.seek(start)
        self._left = stop - start

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self._file.readinto(memoryview(buffer)[:self._left]) if self._left > 0 else 0
        self._left -= n
        return n

    def close(self) -> None:
        self._file.close()
        super().close()


def _engine(engine):
    if engine not in (None, "pyarrow", "pandas"):
        raise ValueError(f"engine must be 'pyarrow' or 'pandas', got {engine!r}")
    for name in ((engine,) if engine else ("pyarrow", "pandas")):
        try:
            __import__(name)
            return name
        except ImportError:
            pass
    raise ImportError(f"read_ratings needs {engine or 'pyarrow or pandas'}: "
                      "pip install 'mfrec[data]'")


def _first_line(path: str) -> str:
    openers: Dict[str, Callable[..., IO[str]]] = {
        ".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
    opener = openers.get(os.path.splitext(path)[1], open)
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as f:
            return f.readline()
    except OSError as e:
        raise OSError(f"read_ratings: cannot read {path}: {e.strerror or e}") from None


def _separator(line: str, sep, where) -> str:
    if sep is None:
        sep = next((s for s in SEPARATORS if s in line), None)
        if sep is None:
            raise ValueError(f"{where}: no separator ({', '.join(map(repr, SEPARATORS))}) in "
                             f"the first line {line[:80]!r}: give sep=")
    if not isinstance(sep, str) or not (len(sep) == 1 or sep == "::") or sep in "\r\n\"":
        raise ValueError(f"{where}: sep must be one character or '::', got {sep!r}")
    return sep


def _is_number(field: str) -> bool:
    try:
        float(field.strip().strip('"'))
        return True
    except ValueError:
        return False


def _physical(sep: str, columns: List[str]):
    """The single-character delimiter and the physical column names: "::"
    reads as ":" with an empty column between each two real ones."""
    if sep != "::":
        return sep, columns
    spread = []
    for k, c in enumerate(columns):
        spread += [c] if k == 0 else [f"\0gap{k}", c]
    return ":", spread


def _arrow_blocks(source, sep, columns, header, names, where, strings,
                  threads=True) -> Iterator[dict]:
    import pyarrow as pa
    from pyarrow import csv

    delimiter, physical = _physical(sep, columns)
    wanted = {role: name for role, name in names.items() if name is not None}
    types = {name: pa.float32() if role == "rating" else pa.string()
             if strings and role != "timestamp" else pa.int64() for role, name in wanted.items()}
    options = dict(
        read_options=csv.ReadOptions(column_names=physical, skip_rows=int(header),
                                     block_size=BLOCK_BYTES, use_threads=threads),
        parse_options=csv.ParseOptions(delimiter=delimiter),
        convert_options=csv.ConvertOptions(include_columns=list(wanted.values()),
                                           column_types=types))
    try:
        for batch in csv.open_csv(source, **options):
            yield {role: _array(batch.column(name), name, role, where, strings)
                   for role, name in wanted.items()}
    except pa.ArrowInvalid as e:
        raise ValueError(f"{where}: {_arrow_message(str(e), physical)}") from None


def _arrow_message(message: str, physical: List[str]) -> str:
    """pyarrow's message with its column numbers named (the "::" reading
    numbers the gaps too)."""
    for k, name in enumerate(physical):
        message = message.replace(f"column #{k}:", f"column {name!r}:")
    return message + " (ids must be integers and ratings numbers)"


def _parquet_file(path, where):
    from pyarrow import parquet

    try:
        return parquet.ParquetFile(path)
    except FileNotFoundError as e:
        raise OSError(f"read_ratings: cannot read {path}: {e.strerror or e}") from None
    except (OSError, ValueError) as e:  # ArrowInvalid is a ValueError
        raise ValueError(f"{where}: not a Parquet file ({e})") from None


def _parquet_blocks(f, chosen, where, strings) -> Iterator[dict]:
    wanted = {role: name for role, name in pick_columns(f.schema_arrow.names, chosen,
                                                        where).items() if name}
    for batch in f.iter_batches(batch_size=1 << 20, columns=list(wanted.values())):
        yield {role: _array(batch.column(name), name, role, where, strings)
               for role, name in wanted.items()}


def _pandas_blocks(path, sep, columns, header, names, where, strings) -> Iterator[dict]:
    import pandas as pd

    delimiter, physical = _physical(sep, columns)
    wanted = {role: name for role, name in names.items() if name is not None}
    # int dtypes inferred per chunk (a forced int64 fails without naming the column)
    types = {name: str for role, name in wanted.items() if strings and role in ("user", "item")}
    # the header replaced by `names` (header=0): skiprows=1 slows the C parser by 60%
    with pd.read_csv(path, sep=delimiter, header=0 if header else None, names=physical,
                     usecols=list(wanted.values()), dtype=types, keep_default_na=False,
                     na_values=[""], chunksize=PANDAS_ROWS, engine="c") as chunks:
        for chunk in chunks:
            yield {role: _array(chunk[name].to_numpy(), name, role, where, strings)
                   for role, name in wanted.items()}


def _numpy(column) -> np.ndarray:
    """A pyarrow array (no nulls) as NumPy; numbers without a copy, read
    from the data buffer: Array.to_numpy imports pandas (0.3 s), even when
    it copies nothing."""
    import pyarrow as pa

    t = column.type
    if isinstance(column, pa.Array) and (pa.types.is_integer(t) or pa.types.is_floating(t)):
        kind = "i" if pa.types.is_signed_integer(t) else "u" if pa.types.is_integer(t) else "f"
        dtype = np.dtype(f"{kind}{t.bit_width // 8}")
        return np.frombuffer(column.buffers()[1], dtype, len(column),
                             column.offset * dtype.itemsize)
    return column.to_numpy(zero_copy_only=False)


def _array(column, name, role, where, strings) -> np.ndarray:
    """A block's column in its final dtype, nulls refused."""
    if getattr(column, "null_count", 0):
        raise ValueError(f"{where}: column {name!r} has {column.null_count} missing value(s)")
    a = column if isinstance(column, np.ndarray) else _numpy(column)
    if role != "rating" and a.dtype.kind == "f" and np.isnan(a).any():  # pandas' nulls
        raise ValueError(f"{where}: column {name!r} has {np.isnan(a).sum()} missing value(s)")
    label = f"{where}: column {name!r} ({role})"
    if role == "rating":
        return as_ratings(a, label)
    if not strings and a.dtype.kind not in "iu":
        raise TypeError(f"{label} must hold integers, got {a.dtype} (string_ids=True reads "
                        "ids as strings)" if role != "timestamp" else
                        f"{label} must hold integers, got {a.dtype}")
    return as_ids(a, label, strings=strings and role != "timestamp")


def _gather(blocks: Iterator[Dict[str, np.ndarray]], rows_hint=None) -> Dict[str, np.ndarray]:
    """The blocks' columns joined, written straight into arrays sized by
    `rows_hint(rows of the first block)`, an estimate of the total. Pages of
    an array are only resident once written, and the arrays grow (by a
    quarter) and finally shrink in place (``ndarray.resize``, a realloc), so
    no column is ever held twice."""
    columns: Dict[str, np.ndarray] = {}
    strings: Dict[str, List[np.ndarray]] = {}  # str ids: widths differ between blocks
    n = 0
    for block in blocks:
        m = len(next(iter(block.values())))
        if not columns and not strings:
            size = max(rows_hint(m) if rows_hint else 4 * m, m)
            columns = {role: np.empty(size, a.dtype) for role, a in block.items()
                       if a.dtype.kind not in "US"}
            strings = {role: [] for role, a in block.items() if a.dtype.kind in "US"}
        capacity = len(next(iter(columns.values())))
        if n + m > capacity:
            for a in columns.values():
                a.resize(max(n + m, capacity + capacity // 4), refcheck=False)
        for role, a in block.items():
            if role in strings:
                strings[role].append(a)
            else:
                columns[role][n:n + m] = a
        n += m
    for a in columns.values():
        a.resize(n, refcheck=False)
    for role in list(strings):
        columns[role] = np.concatenate(strings.pop(role))
    return columns


def _ratings(parts: List[Dict[str, np.ndarray]], where) -> Ratings:
    """Ratings of the columns of parts of a file read side by side, in
    order, joined one column at a time."""
    parts = [p for p in parts if p and len(p["rating"])]
    if not parts:
        raise ValueError(f"{where}: the file holds no ratings")
    columns = {role: _join([p.pop(role) for p in parts]) for role in list(parts[0])}
    return Ratings(columns["user"], columns["item"], columns["rating"], columns.get("timestamp"))


def _join(pieces: List[np.ndarray]) -> np.ndarray:
    """The pieces end to end: the first grown in place (a realloc) and the
    others copied after it and dropped one by one, so that only the rest
    of one column is ever held twice, and the first piece's pages (written
    already) are not written again."""
    if len(pieces) == 1:
        return pieces[0]
    if any(p.dtype != pieces[0].dtype for p in pieces):
        return np.concatenate(pieces)  # str ids of different widths
    whole = pieces.pop(0)
    n = len(whole)
    whole.resize(n + sum(map(len, pieces)), refcheck=False)
    while pieces:
        piece = pieces.pop(0)
        whole[n:n + len(piece)] = piece
        n += len(piece)
    return whole
