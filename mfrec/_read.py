"""read_ratings: a ratings file (CSV, TSV, "::"-separated, Parquet) as Ratings.

The parsing is pyarrow's (its streaming CSV reader, or Parquet row groups)
or, without pyarrow, pandas' chunked ``read_csv``. Each block is converted
to its final dtype (int64 ids and timestamps, float32 ratings), written
into the final arrays (see _columns) and dropped: peak memory stays near
the final arrays, not a whole table of Python or Arrow objects. The
streaming reader parses one block at a time, so a large uncompressed text
file is cut into spans of whole lines, read by one reader per core (up to
READERS) side by side, each span into its own rows of the same arrays.
"""
from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import os
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ._columns import Columns
from ._cores import available_cores
from ._tables import GUESSES, pick_columns
from .ratings import Ratings, as_ids, as_ratings

__all__ = ["read_ratings"]

ROLES = ("user", "item", "rating", "timestamp")
SEPARATORS = ("::", "\t", ",", ";", "|")
# Text per block. pyarrow's streaming reader holds some dozens of blocks at
# once (its read-ahead and buffers: ~80 MB at 1 MB blocks, ~300 MB at 16 MB)
# and is no faster with larger ones.
BLOCK_BYTES = 1 << 20
# A text file is read by one reader per core (at most READERS) side by
# side, in PIECES spans per reader of at least SPAN_BYTES: a reader takes
# the next span when done with one, so that one slowed by other work on its
# core takes fewer.
READERS, PIECES, SPAN_BYTES = 4, 4, 32 * BLOCK_BYTES
# A span's rows are estimated from the densest of SAMPLES pieces of its text
# (with 10% to spare): rows past the estimate cost a copy of the columns.
SAMPLES, SAMPLE_BYTES = 4, 1 << 18
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
    engine : "pandas" or "pyarrow". Default: pandas for a text file of
        integer ids (its C parser takes less CPU time than pyarrow's on
        columns of numbers), pyarrow for string ids (pandas makes a Python
        string of each) and Parquet; the other when one is not installed.

    Lines are read in blocks (1 MB, or 2**20 lines with pandas), each
    converted to the final dtypes and written into the final arrays at
    once, so the peak memory stays within twice the final arrays; a large
    uncompressed file in spans of lines, read side by side.

    Examples
    --------
    >>> import os
    >>> r = mfrec.read_ratings(os.path.join(os.environ["MFREC_DATA"], "ml-100k", "u.data"))
    >>> r
    Ratings(100000 ratings, 943 users, 1682 items)
    """
    path = os.fspath(path)
    parquet = path.endswith((".parquet", ".pq"))
    engine = _engine(engine, ("pyarrow", "pandas") if parquet or string_ids else
                     ("pandas", "pyarrow"))
    where = f"read_ratings: {path}"
    chosen = dict(user=user, item=item, rating=rating, timestamp=timestamp)
    if parquet:
        if engine != "pyarrow":
            raise ImportError("read_ratings: reading Parquet needs pyarrow "
                              "(pip install 'mfrec[data]')")
        f = _parquet_file(path, where)
        names = pick_columns(f.schema_arrow.names, chosen, where)
        out = Columns(_dtypes(names, string_ids), [f.metadata.num_rows])
        for block in _parquet_blocks(f, names, where, string_ids):
            out.put(0, block)
        return _ratings(out.join(), where)
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

    def blocks(span: Optional[Tuple[int, int]], first: bool) -> Iterator[dict]:
        if engine == "pandas":
            return _pandas_blocks(path, span, sep, columns, first and bool(header), names,
                                  where, string_ids)
        return _arrow_blocks(path, span, sep, columns, first and bool(header), names, where,
                             string_ids)

    return _ratings(_read_text(path, blocks, _dtypes(names, string_ids)), where)


def _read_text(path: str, blocks: Callable[..., Iterator[dict]],
               dtypes: Dict[str, Optional[np.dtype]]) -> Dict[str, np.ndarray]:
    """The columns of a text file, its spans (see _spans) read side by side
    by `blocks(span or None for the whole file, first span?)` on one thread
    per reader: both parsers release the GIL while they parse and convert."""
    spans = _spans(path)
    out = Columns(dtypes, [_rows(path, *span) for span in spans])

    def read(k):  # the k-th span of lines, the header skipped in the first
        for block in blocks(spans[k] if len(spans) > 1 else None, k == 0):
            out.put(k, block)

    if len(spans) == 1:
        read(0)
    else:  # the pool's threads take the spans in turn
        with ThreadPoolExecutor(_readers()) as pool:
            list(pool.map(read, range(len(spans))))
    return out.join()


def _dtypes(names, strings: bool) -> Dict[str, Optional[np.dtype]]:
    """The final dtype of each column read (None: string ids)."""
    return {role: None if strings and role in ("user", "item") else
            np.dtype(np.float32 if role == "rating" else np.int64)
            for role, name in names.items() if name is not None}


def _rows(path: str, start: int, stop: Optional[int]) -> int:
    """The rows of bytes [start, stop) of a text file, counted when few,
    else estimated from the densest of SAMPLES pieces spread over them;
    0 when unknown (a compressed file: stop None)."""
    if stop is None:
        return 0
    size = stop - start
    with open(path, "rb") as f:
        if size <= SAMPLES * SAMPLE_BYTES:
            f.seek(start)
            return _lines(f.read(size)) + 1
        density = 0.0
        for j in range(SAMPLES):
            f.seek(start + (size - SAMPLE_BYTES) * j // (SAMPLES - 1))
            density = max(density, _lines(f.read(SAMPLE_BYTES)) / SAMPLE_BYTES)
    return int(size * density * 1.1) + 1


def _lines(text: bytes) -> int:
    return max(text.count(b"\n"), text.count(b"\r"))  # old Macs' lines end in CR


def _spans(path: str) -> List[Tuple[int, Optional[int]]]:
    """Byte ranges of whole lines, PIECES for each reader (see _readers),
    each of at least SPAN_BYTES; one for a lone reader: both parsers read a
    stream one block at a time, so spans are read side by side. A
    compressed file is one span (stop None: its size is unknown)."""
    if path.endswith((".gz", ".bz2", ".xz")):
        return [(0, None)]
    size = os.path.getsize(path)
    readers = _readers()
    k = max(1, min(readers * PIECES if readers > 1 else 1, size // SPAN_BYTES))
    cuts = [0]
    with open(path, "rb") as f:
        for j in range(1, k):
            f.seek(max(size * j // k, cuts[-1]))
            f.readline()  # to the start of the next line
            cuts.append(f.tell())
    return [(a, b) for a, b in zip(cuts, cuts[1:] + [size]) if b > a] or [(0, size)]


def _readers() -> int:
    """Readers side by side: one per core this process may use, at most
    READERS (pandas' own read_csv of a whole file parses on as many)."""
    return max(1, min(available_cores(), READERS))


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


def _engine(engine, preferred: Tuple[str, str]) -> str:
    """`engine`, or the first of `preferred` that imports."""
    if engine not in (None, "pyarrow", "pandas"):
        raise ValueError(f"engine must be 'pyarrow' or 'pandas', got {engine!r}")
    for name in ((engine,) if engine else preferred):
        try:
            __import__(name)
            return name
        except ImportError:
            pass
    raise ImportError(f"read_ratings needs {engine or ' or '.join(preferred)}: "
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


def _arrow_blocks(path, span, sep, columns, header, names, where, strings) -> Iterator[dict]:
    """The blocks of the whole file (span None: pyarrow opens it, a
    compressed one too) or of bytes [start, stop), read by pyarrow's own
    file reader: a Python stream's reads cost a fresh buffer (and its page
    faults) per read (5M lines: 13-15k faults against about 100, three
    times the system time). Only an empty field is missing, as with pandas
    (pyarrow's list of null words, "NA", "NULL", "nan", ..., tried on each
    field, costs about 10% of the parse)."""
    import pyarrow as pa
    from pyarrow import csv

    delimiter, physical = _physical(sep, columns)
    wanted = {role: name for role, name in names.items() if name is not None}
    types = {name: pa.float32() if role == "rating" else pa.string()
             if strings and role != "timestamp" else pa.int64() for role, name in wanted.items()}
    options = dict(
        read_options=csv.ReadOptions(column_names=physical, skip_rows=int(header),
                                     block_size=BLOCK_BYTES, use_threads=span is None),
        parse_options=csv.ParseOptions(delimiter=delimiter),
        convert_options=csv.ConvertOptions(include_columns=list(wanted.values()),
                                           column_types=types, null_values=[""]))
    with contextlib.ExitStack() as stack:
        source = path
        if span is not None:
            source = stack.enter_context(pa.OSFile(path)).get_stream(span[0], span[1] - span[0])
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
    return message + NUMBERS


NUMBERS = " (ids must be integers and ratings real numbers)"


def _parquet_file(path, where):
    from pyarrow import parquet

    try:
        return parquet.ParquetFile(path)
    except FileNotFoundError as e:
        raise OSError(f"read_ratings: cannot read {path}: {e.strerror or e}") from None
    except (OSError, ValueError) as e:  # ArrowInvalid is a ValueError
        raise ValueError(f"{where}: not a Parquet file ({e})") from None


def _parquet_blocks(f, names, where, strings) -> Iterator[dict]:
    wanted = {role: name for role, name in names.items() if name}
    for batch in f.iter_batches(batch_size=1 << 20, columns=list(wanted.values())):
        yield {role: _array(batch.column(name), name, role, where, strings)
               for role, name in wanted.items()}


def _pandas_blocks(path, span, sep, columns, header, names, where, strings) -> Iterator[dict]:
    import pandas as pd

    delimiter, physical = _physical(sep, columns)
    wanted = {role: name for role, name in names.items() if name is not None}
    # int dtypes inferred per chunk (a forced int64 fails without naming the column);
    # no null words (about 10% of the parse): an empty field leaves a column of words
    # (see _array)
    types = {name: str for role, name in wanted.items() if strings and role in ("user", "item")}
    # the header replaced by `names` (header=0): skiprows=1 slows the C parser by 60%
    with contextlib.ExitStack() as stack:
        source = path if span is None else stack.enter_context(
            io.BufferedReader(_Span(path, *span), 1 << 20))
        chunks = stack.enter_context(pd.read_csv(
            source, sep=delimiter, header=0 if header else None, names=physical,
            usecols=list(wanted.values()), dtype=types, na_filter=False,
            chunksize=PANDAS_ROWS, engine="c"))
        for chunk in chunks:
            yield {role: _array(chunk[name].to_numpy(), name, role, where, strings, text=True)
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


def _array(column, name, role, where, strings, text=False) -> np.ndarray:
    """A block's column in its final dtype, nulls refused; `text`: a column
    pandas parsed, its words where numbers should be refused as pyarrow's
    parser refuses them."""
    if getattr(column, "null_count", 0):
        raise ValueError(f"{where}: column {name!r} has {column.null_count} missing value(s)")
    a = column if isinstance(column, np.ndarray) else _numpy(column)
    if a.dtype.kind == "f" and np.isnan(a).any():  # pandas' nulls
        raise ValueError(f"{where}: column {name!r} has {np.isnan(a).sum()} missing value(s)")
    integers = role == "timestamp" or (role != "rating" and not strings)
    if text and (a.dtype.kind == "O" and (integers or role == "rating")
                 or integers and a.dtype.kind == "f"):
        missing = int((a == "").sum()) if a.dtype.kind == "O" else 0
        if missing:  # pandas reads no nulls (na_filter=False): empty fields
            raise ValueError(f"{where}: column {name!r} has {missing} missing value(s)")
        raise ValueError(f"{where}: column {name!r} ({role}): invalid value "
                         f"{_first_invalid(a, integers)!r}{NUMBERS}")
    label = f"{where}: column {name!r} ({role})"
    if role == "rating":
        return as_ratings(a, label)
    if not strings and a.dtype.kind not in "iu":
        raise TypeError(f"{label} must hold integers, got {a.dtype} (string_ids=True reads "
                        "ids as strings)" if role != "timestamp" else
                        f"{label} must hold integers, got {a.dtype}")
    return as_ids(a, label, strings=strings and role != "timestamp")


def _first_invalid(a: np.ndarray, integers: bool):
    """The first value of a column pandas read as words (or, integers
    wanted, as numbers with decimals) that is not a number of the kind."""
    for v in a.tolist():
        try:
            x = float(v)
            if integers and not (isinstance(v, str) and v.strip().lstrip("+-").isdigit()) \
                    and not x.is_integer():
                return v
        except ValueError:
            return v
    return a[0]


def _ratings(columns: Dict[str, np.ndarray], where) -> Ratings:
    if not len(columns["rating"]):
        raise ValueError(f"{where}: the file holds no ratings")
    return Ratings(columns["user"], columns["item"], columns["rating"], columns.get("timestamp"))
