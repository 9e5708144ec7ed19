"""The model file: one .npz archive (no pickles) of .npy members, one of
them a JSON header.

Writing: beside the target under a temporary name, then renamed, so a crash
mid-save leaves any previous file intact. Temporary files are named
``.{target}.{pid}.{random}.tmp``; a save removes those of processes that no
longer run (a writer killed with SIGKILL cannot clean up after itself). The
file gets the mode open() would give it (0o666 less the umask).

Reading trusts nothing in the file: only regular files are opened (a FIFO
or /dev/zero would block or never end); only the members the format has are
read; each member's data range is found from its local header and ranges
may not overlap (overlapping members would inflate the same compressed
bytes many times); each member's declared size must be the size its .npy
header announces, and the shapes must agree with one another, all before a
byte of array data is inflated; inflating is bounded by the declared size.
Then the whole model is checked against its header (ids, factor counts, the
training-item index, value ranges) so that what loads predicts finite values.
"""
from __future__ import annotations

import ast
import json
import math
import os
import re
import secrets
import stat
import struct
import zipfile
import zlib
from typing import Any, Callable

import numpy as np

FORMAT = "mfrec-model"
VERSION = 1
CORE_ARRAYS = ("user_factors", "item_factors", "user_bias", "item_bias")
MEMBERS = ("user_ids", "item_ids", "seen_indptr", "seen_indices") + CORE_ARRAYS
MAX_HEADER_BYTES = 1 << 26  # the JSON header: a history of a million epochs fits
DEFLATE_RATIO = 1032        # the most deflate can expand
LOCAL_HEADER = struct.Struct("<4s5HLLLHH")
FLT_MAX = float(np.finfo(np.float32).max)
# predictions mu + b_u + b_i + p.q, and |q|^2 for cosines, are float32 sums:
# keep every bound a factor 4 below the float32 limit (rounding headroom)
SCORE_LIMIT = FLT_MAX / 4


class Invalid(ValueError):
    """The archive reads, but does not hold a consistent model."""


def shown(path) -> str:
    """A file name as messages show it (bytes as the literal)."""
    path = os.fspath(path)
    return path if isinstance(path, str) else str(path)


def bad_file(path, why) -> ValueError:
    return ValueError(f"{path}: not a valid mfrec model file: {why}")


# ---- writing -------------------------------------------------------------------------

def target_path(path) -> str:
    """The file save writes: `path` (str, bytes or os.PathLike) with .npz added."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"path must be a file name (str, bytes or os.PathLike), got {path!r}")
    path = os.fsdecode(os.fspath(path))
    if not os.path.basename(path):
        raise ValueError(f"path {path!r} names no file (empty, or a folder)")
    if "\0" in path:
        raise ValueError(f"path {path!r}: embedded null character")
    return path if path.endswith(".npz") else path + ".npz"


def write(path, header: dict, arrays: dict) -> str:
    """Write the archive atomically; return the file name written."""
    path = target_path(path)
    folder, name = os.path.split(os.path.abspath(path))
    remove_stale_temps(folder, name)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) \
        | getattr(os, "O_BINARY", 0)
    while True:
        tmp = os.path.join(folder, f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o666)  # the umask applies, as with open()
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, header=np.array(json.dumps(header)), **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def remove_stale_temps(folder: str, name: str) -> None:
    """Remove the temporary files of saves to `name` whose process is gone."""
    if os.name != "posix":  # no cheap liveness test: leave them
        return
    pattern = re.compile(r"\." + re.escape(name) + r"\.(\d+)\.[0-9a-f]{8}\.tmp")
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    for entry in entries:
        match = pattern.fullmatch(entry)
        if match and not _alive(int(match.group(1))):
            try:
                os.unlink(os.path.join(folder, entry))
            except OSError:  # removed by another save, or not ours to remove
                pass


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if pid <= 0:  # 0 would signal our own process group
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # gone, or no process number at all
        return False
    except PermissionError:  # another user's process
        return True
    return True


# ---- reading: the archive ---------------------------------------------------------------

def open_regular(path):
    """`path` opened for reading, refused (ValueError) unless a regular
    file. O_NONBLOCK keeps a FIFO from blocking the open itself."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) \
        | getattr(os, "O_BINARY", 0)

    def check(mode):
        if not stat.S_ISREG(mode):
            raise ValueError(f"{shown(path)}: not a regular file (a folder, device, "
                             "FIFO or socket): model files are regular files")

    try:
        mode = os.stat(path).st_mode
    except ValueError as e:  # a NUL character in the name
        raise ValueError(f"path {path!r}: {e}") from None
    check(mode)  # first: a socket cannot even be opened
    fd = os.open(path, flags)
    try:
        check(os.fstat(fd).st_mode)  # what was opened, if it changed since
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read(path, accept: Callable[[dict], Any]):
    """(header, arrays) of the model file at `path`, checked throughout;
    ValueError naming the file otherwise. `accept(header)` checks the
    algorithm and its parameters (ValueError) and returns the algorithm's
    class, whose ``extra_shapes`` declares its own arrays (members
    ``extra_<name>``): name -> (dtype, shape), the shape's entries a
    number, a range of numbers, "users", "items", "factors" (the factor
    arrays' width), "samples" (their blocks of ``factors`` columns, when
    the class has ``stacked_factors``) and "sample_width" (``factors`` +
    1), "rank" (at most min(users, items)) or None (any)."""
    name = shown(path)
    with open_regular(path) as f:
        try:
            header, arrays = _read_archive(f, accept)
            check_model(header, arrays)
        except Invalid as e:
            raise bad_file(name, e) from None
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, zlib.error,
                NotImplementedError, struct.error) as e:  # zipfile: a feature it lacks
            raise ValueError(f"{name}: not a readable mfrec model file ({e})") from None
    return header, arrays


def _read_archive(f, accept):
    size = f.seek(0, os.SEEK_END)
    f.seek(0)
    try:
        z = zipfile.ZipFile(f)
    except zipfile.BadZipFile:
        raise ValueError("not an .npz archive") from None
    with z:
        members = _members(f, z, size)
        if "header" not in members:
            raise Invalid("missing or unreadable header (no header member)")
        header = _read_header(z, members.pop("header"))
        try:
            algorithm = accept(header)
        except ValueError as e:
            raise Invalid(e) from None
        extras = algorithm.extra_shapes
        allowed = set(MEMBERS) | {"extra_" + n for n in extras}
        unexpected = sorted(set(members) - allowed)
        if unexpected:
            raise ValueError(f"unexpected member(s) {unexpected}: the format has {sorted(allowed)}")
        plans = {}
        for name, info in members.items():
            with z.open(info) as m:
                plans[name] = _npy_header(m, name, info.file_size) + (info,)
        dims = check_shapes(header, {name: p[0] for name, p in plans.items()},
                            algorithm.stacked_factors)
        check_extras(extras, plans, dims)
        arrays = {}
        for name, (shape, fortran, dtype, info) in plans.items():
            arrays[name] = _inflate(z, info, name, shape, fortran, dtype)
    return header, arrays


def _members(f, z, size) -> dict:
    """name -> ZipInfo of the .npy members, each checked: a known method,
    no duplicates, a data range inside the file that overlaps no other, a
    declared size that its compressed size can hold."""
    members, ranges = {}, []
    for info in z.infolist():
        name = info.filename
        if not name.endswith(".npy") or name[:-4] in members:
            raise ValueError(f"unexpected or repeated member {name!r}")
        if info.flag_bits & 0x1 or info.compress_type not in (zipfile.ZIP_STORED,
                                                              zipfile.ZIP_DEFLATED):
            raise ValueError(f"{name}: encrypted, or compressed by an unknown method")
        f.seek(info.header_offset)
        sig, *_, name_len, extra_len = LOCAL_HEADER.unpack(f.read(LOCAL_HEADER.size))
        if sig != b"PK\x03\x04":
            raise ValueError(f"{name}: bad local header")
        start = info.header_offset
        end = start + LOCAL_HEADER.size + name_len + extra_len + info.compress_size
        if end > size:
            raise ValueError(f"{name}: its data runs past the end of the file")
        ratio = 1 if info.compress_type == zipfile.ZIP_STORED else DEFLATE_RATIO
        if info.file_size > ratio * info.compress_size or (
                ratio == 1 and info.file_size != info.compress_size):
            raise ValueError(f"{name}: declares {info.file_size} bytes, more than its "
                             f"{info.compress_size} compressed bytes can hold")
        members[name[:-4]] = info
        ranges.append((start, end, name))
    ranges.sort()
    for (_, end, a), (start, _, b) in zip(ranges, ranges[1:]):
        if start < end:
            raise ValueError(f"members {a!r} and {b!r} overlap")
    return members


def _read_header(z, info) -> dict:
    if info.file_size > MAX_HEADER_BYTES:
        raise ValueError(f"the header declares {info.file_size} bytes")
    with z.open(info) as m:
        shape, _, dtype = _npy_header(m, "header", info.file_size)
        if shape != () or dtype.kind != "U":
            raise ValueError("the header is not one string")
        data = _read_exact(m, "header", dtype.itemsize)
    try:
        header = json.loads(str(np.frombuffer(data, dtype)[0]))
    except (ValueError, TypeError, RecursionError) as e:
        raise Invalid(f"missing or unreadable header ({e})") from None
    check_header(header)
    return header


def _npy_header(m, name, declared):
    """(shape, fortran_order, dtype) of a .npy member, parsed strictly: NumPy's
    own reader lets tokenizer errors through and retries broken headers as
    Python 2 ones, with a warning."""
    version = np.lib.format.read_magic(m)
    if version not in ((1, 0), (2, 0)):
        raise ValueError(f"{name}: unsupported .npy version {version}")
    length = int.from_bytes(m.read(2 if version == (1, 0) else 4), "little")
    if length > 10000:  # NumPy's limit too
        raise ValueError(f"{name}: .npy header too long")
    try:
        d = ast.literal_eval(m.read(length).decode("latin1"))
        shape, fortran, descr = d["shape"], d["fortran_order"], d["descr"]
    except (SyntaxError, ValueError, TypeError, KeyError, IndexError, MemoryError,
            RecursionError) as e:
        raise ValueError(f"{name}: unreadable .npy header ({e!r})") from None
    # a plain dtype, as save writes (no records, no aliases NumPy warns about)
    if not isinstance(descr, str) or not re.fullmatch(r"[<>|=]?[biufUS]\d{1,9}", descr):
        raise ValueError(f"{name}: unsupported dtype {descr!r} in the .npy header")
    try:
        dtype = np.dtype(descr)
    except TypeError:  # "<i3": no such type
        raise ValueError(f"{name}: unsupported dtype {descr!r} in the .npy header") from None
    if not isinstance(shape, tuple) or not all(type(x) is int and x >= 0 for x in shape) \
            or not isinstance(fortran, bool):
        raise ValueError(f"{name}: bad shape or order in the .npy header")
    header_len = m.tell()
    nbytes = math.prod(shape) * dtype.itemsize
    if header_len + nbytes != declared:
        raise ValueError(f"{name}: declares {declared} bytes, but its .npy header "
                         f"announces {header_len + nbytes} (shape {shape}, dtype {descr})")
    return shape, fortran, dtype


def _read_exact(m, name, nbytes) -> bytearray:
    """The member's remaining nbytes (its declared size, already checked):
    a bounded read, then one more byte to reach the end (the CRC check)."""
    data = bytearray(nbytes)
    if m.readinto(data) != nbytes or m.read(1):
        raise ValueError(f"{name}: the data does not match its declared size")
    return data


def _inflate(z, info, name, shape, fortran, dtype) -> np.ndarray:
    with z.open(info) as m:
        _npy_header(m, name, info.file_size)
        data = _read_exact(m, name, math.prod(shape) * dtype.itemsize)
    return np.frombuffer(data, dtype).reshape(shape, order="F" if fortran else "C")


# ---- the model against its header ---------------------------------------------------

def _number(x, allow_none=False) -> bool:
    """A finite JSON number within float32 range (an int too large for a
    float is not), or None where allowed."""
    if x is None:
        return allow_none
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return False
    try:
        return abs(x) <= FLT_MAX
    except OverflowError:
        return False


def _int(x, low, high, allow_none=True) -> bool:
    if x is None:
        return allow_none
    return type(x) is int and low <= x <= high


def check_header(header) -> None:
    """The header's fields have the types and ranges save writes."""
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise Invalid("wrong format tag")
    if not _int(header.get("version"), VERSION, VERSION, allow_none=False):
        raise Invalid(f"unsupported version {header.get('version')!r}")
    if not isinstance(header.get("algorithm"), str) or not isinstance(header.get("params"), dict):
        raise Invalid("algorithm must be a name and params a mapping")
    if not _number(header.get("global_mean")):
        raise Invalid("global_mean is missing or not a finite float32 number")
    rr = header.get("rating_range")
    if not (isinstance(rr, list) and len(rr) == 2 and all(_number(x) for x in rr)
            and rr[0] <= rr[1]):
        raise Invalid("rating_range is missing or not a finite (low, high) pair")
    if not _number(header.get("rating_mean"), allow_none=True):  # None: files of 0.1.0
        raise Invalid("rating_mean is not a finite float32 number")
    history = header.get("history", [])
    if not (isinstance(history, list) and all(
            isinstance(row, dict) and all(isinstance(k, str) and isinstance(v, (int, float))
                                          and not isinstance(v, bool) for k, v in row.items())
            for row in history)):
        raise Invalid("history must be a list of per-iteration records of numbers")
    if not _int(header.get("best_iteration"), 1, 2**63):
        raise Invalid("best_iteration must be an integer >= 1")
    if not _int(header.get("seed"), 0, 2**64 - 1):
        raise Invalid("seed must be an integer >= 0")
    check_metadata(header.get("metadata", {}))


def check_metadata(metadata) -> None:
    """A model's metadata: a dict of str keys and JSON scalars (str, finite
    number, bool or None), Invalid otherwise."""
    if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and (v is None or isinstance(v, (str, bool))
                                    or _number(v, allow_none=False) or type(v) is int)
            for k, v in metadata.items()):
        raise Invalid("metadata must map str keys to str, number, bool or None values")


def check_shapes(header, shapes: dict, stacked: bool) -> dict:
    """The members' shapes agree with one another and with the header
    (from the .npy headers, before any data is read). `stacked`: the
    factor arrays hold blocks of ``factors`` columns. Returns the model's
    dimensions by name (see read)."""
    for name in ("user_ids", "item_ids", "user_factors", "item_factors", "seen_indptr",
                 "seen_indices"):
        if name not in shapes:
            raise Invalid(f"array {name!r} is missing")
    nu, ni = shapes["user_ids"], shapes["item_ids"]
    P, Q = shapes["user_factors"], shapes["item_factors"]
    if len(nu) != 1 or len(ni) != 1 or nu[0] == 0 or ni[0] == 0:
        raise Invalid("user_ids and item_ids must be non-empty 1-D arrays")
    nu, ni = nu[0], ni[0]
    factors = header["params"].get("factors")
    width = P[1] if len(P) == 2 else 0
    widths_ok = factors is None or (width % factors == 0 if stacked else width == factors)
    if len(P) != 2 or len(Q) != 2 or P != (nu, width) or Q != (ni, width) or width == 0 \
            or not widths_ok:
        raise Invalid(f"factor shapes {P} and {Q} do not match {nu} users, {ni} items "
                      f"and {factors if factors is not None else 'at least 1'} factors"
                      f"{' per sample' if stacked else ''}")
    bu, bi = shapes.get("user_bias"), shapes.get("item_bias")
    if (bu is None) != (bi is None) or (bu is not None and (bu != (nu,) or bi != (ni,))):
        raise Invalid("biases do not match the ids")
    if shapes["seen_indptr"] != (nu + 1,) or len(shapes["seen_indices"]) != 1 \
            or shapes["seen_indices"][0] > nu * ni:
        raise Invalid("the training-item index (seen_indptr/seen_indices) has the wrong shape")
    dims = {"users": nu, "items": ni, "factors": width}
    if stacked and factors:
        dims["samples"] = width // factors
        dims["sample_width"] = factors + 1  # a sample's row: its factors and bias
    return dims


def check_extras(extras: dict, plans: dict, dims: dict) -> None:
    """The algorithm's arrays have the dtype and shape it declares, the
    dimensions those of the model (before any data is read). A name that
    is not one of the model's dimensions (e.g. "days") is set by the first
    array that uses it and every other array must agree: a member cannot
    claim a length of its own that only its inflated bytes would refute."""
    nu, ni = dims["users"], dims["items"]
    dims = dict(dims)
    for name, (dtype, want) in extras.items():
        if "extra_" + name not in plans:
            continue
        shape, _, got, _ = plans["extra_" + name]
        fits = len(shape) == len(want) and all(
            w is None or (n <= min(nu, ni) if w == "rank" else
                          n in w if isinstance(w, range) else n == dims.setdefault(w, n))
            for n, w in zip(shape, want))
        if got.kind != np.dtype(dtype).kind or got.itemsize > np.dtype(dtype).itemsize \
                or not fits:
            raise Invalid(f"array {name!r} has dtype {got} and shape {shape}, not {dtype} "
                          f"and {want}")


def check_model(header, arrays) -> None:
    """The arrays' types and values (shapes were checked before reading)."""
    for name, dtype in (("user_ids", np.int64), ("item_ids", np.int64),
                        ("user_factors", np.float32), ("item_factors", np.float32),
                        ("user_bias", np.float32), ("item_bias", np.float32),
                        ("seen_indptr", np.int64), ("seen_indices", np.int32)):
        a = arrays.get(name)
        if a is not None and a.dtype != dtype and not (name.endswith("_ids")
                                                       and a.dtype.kind in "US"):
            raise Invalid(f"array {name!r} has dtype {a.dtype}, not {np.dtype(dtype)}")
        if a is not None and a.dtype.kind == "f" and not np.isfinite(a).all():
            raise Invalid(f"array {name!r} has non-finite values")
    for name in ("user_ids", "item_ids"):  # compared, not subtracted: no overflow
        ids = arrays[name]
        if np.any(ids[1:] <= ids[:-1]):
            raise Invalid(f"{name} must be sorted and unique")
    indptr, indices = arrays["seen_indptr"], arrays["seen_indices"]
    ni = len(arrays["item_ids"])
    if indptr[0] != 0 or np.any(indptr[1:] < indptr[:-1]) or indptr[-1] != len(indices) \
            or (len(indices) and (indices.min() < 0 or indices.max() >= ni)):
        raise Invalid("the training-item index (seen_indptr/seen_indices) is inconsistent")
    ascending = indices[1:] > indices[:-1]
    inner = indptr[1:-1][(indptr[1:-1] > 0) & (indptr[1:-1] < len(indices))]
    ascending[inner - 1] = True  # a pair that crosses into the next row may descend
    if not ascending.all():
        raise Invalid("the training items of a user must be sorted and unique")
    check_scores(header, arrays)


def _max_row_norm(a) -> float:
    return float(np.sqrt(np.einsum("ij,ij->i", a, a, dtype=np.float64).max()))


def check_scores(header, arrays) -> None:
    """Finite values whose products overflow would make every prediction
    infinite: bound mu + b_u + b_i + p_u.q_i (Cauchy-Schwarz) and the
    squared row norms that cosine similarity takes."""
    p_norm, q_norm = _max_row_norm(arrays["user_factors"]), _max_row_norm(arrays["item_factors"])
    bias = sum(float(np.abs(arrays[n]).max(initial=0)) for n in ("user_bias", "item_bias")
               if arrays.get(n) is not None)
    bound = abs(header["global_mean"]) + bias + p_norm * q_norm
    if not (bound <= SCORE_LIMIT and p_norm ** 2 <= SCORE_LIMIT and q_norm ** 2 <= SCORE_LIMIT):
        raise Invalid("the factors and biases are so large that predictions overflow "
                         f"float32 (|mu| + |b| + |p||q| up to {bound:.3g})")
