"""Hypothesis strategies and checks shared by the hardening tests.

`any_array` draws what a user might pass where an array is expected: every
NumPy dtype family, lists, scalars, 2-D arrays, non-contiguous and read-only
views, with values that hit the ids of a small training set as well as
huge, negative and non-finite ones. `call` runs an entry point on such
input and checks the contract: it works, or it raises one of the
documented exceptions with a message that names one of its arguments, and
either way it leaves its inputs as they were.
"""
import copy
import os

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

#: generated cases per public entry point; the sanitizer run lowers it (it is
#: ten times slower there)
EXAMPLES = int(os.environ.get("MFREC_PROPERTY_EXAMPLES",
                              "100" if os.environ.get("MFREC_SANITIZED") else "2000"))

CASES = settings(max_examples=EXAMPLES, deadline=None, print_blob=True,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                        HealthCheck.filter_too_much])
#: the private functions of the binding, behind the checks of the public API
CORE_CASES = settings(CASES, max_examples=max(EXAMPLES // 4, 40))

#: the exceptions the public API documents for bad input
DOCUMENTED = (TypeError, ValueError, KeyError, IndexError, FloatingPointError)

INT_DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
FLOAT_DTYPES = ["float16", "float32", "float64"]
OTHER_DTYPES = ["bool", "object", "complex64", "U3", "datetime64[s]"]
FAMILIES = {"int": INT_DTYPES, "float": FLOAT_DTYPES, "other": OTHER_DTYPES}
LAYOUTS = ["plain", "plain", "strided", "reversed", "readonly", "list", "2d", "scalar"]


def _values(rng, dtype, n, small):
    """n values of `dtype`: mostly small (the training ids), else the dtype's
    extremes and specials (0, min, max, NaN, inf) or arbitrary bit patterns."""
    dt = np.dtype(dtype)
    pick = rng.random(n)
    if dt.kind in "iuf":
        info = np.iinfo(dt) if dt.kind in "iu" else np.finfo(dt)
        lo, hi = max(int(info.min), small[0]), min(int(info.max), small[1])
        near = rng.integers(lo, hi + 1, n).astype(dt)
        bits = rng.integers(0, 256, n * dt.itemsize, dtype=np.uint8).view(dt)
        specials = [0, 1, info.min, info.max] + ([-1] if info.min < 0 else []) + \
            ([np.nan, np.inf, -np.inf, -0.0, 0.5, info.tiny] if dt.kind == "f" else [])
        special = np.array(specials, dtype=dt)[rng.integers(0, len(specials), n)]
        return np.where(pick < 0.6, near, np.where(pick < 0.8, special, bits))
    if dt.kind == "b":
        return pick < 0.5
    if dt.kind == "c":
        a = np.empty(n, dt)
        a.real, a.imag = _values(rng, np.float32, n, small), _values(rng, np.float32, n, small)
        return a
    if dt.kind == "U":
        words = np.array(["1", "2", "", "nan", "x", "2.5", "-1", "\xe9"])
        return words[rng.integers(0, len(words), n)].astype(dt)
    if dt.kind == "M":
        return rng.integers(-10**6, 10**6, n).astype(dt)
    choices = [lambda: int(rng.integers(*small)), lambda: 2**70, lambda: float("nan"),
               lambda: None, lambda: "1", lambda: True, lambda: 2.5]
    a = np.empty(n, object)
    a[:] = [choices[j]() for j in rng.integers(0, len(choices), n)]
    return a


# built once (making strategies inside a draw costs more than drawing), and
# few draws per array: hypothesis spends about 0.2 ms on each draw
_SIZE, _SEED = st.integers(0, 6), st.integers(0, 2**32 - 1)
_KIND = {None: [d for f in ("int", "int", "float", "other") for d in FAMILIES[f]],
         **{(f,): FAMILIES[f] for f in FAMILIES}}
_KIND = {k: st.sampled_from([(d, lay) for d in v for lay in LAYOUTS]) for k, v in _KIND.items()}


@st.composite
def any_array(draw, n=None, small=(-2, 8), kinds=None):
    """An arbitrary array-like of `n` entries (drawn when None).

    kinds=("int",) etc. restricts the dtype family (default all, integers
    twice as likely so that many inputs are valid). Values come from a
    seeded generator: one draw instead of one per element, so the tests
    can afford thousands of cases."""
    n = draw(_SIZE) if n is None else n
    dtype, layout = draw(_KIND[kinds])
    a = _values(np.random.default_rng(draw(_SEED)), dtype, n, small)
    if layout == "strided":
        big = np.zeros(2 * n, a.dtype) if a.dtype != object else np.empty(2 * n, object)
        big[::2] = a
        return big[::2]
    if layout == "reversed":
        return a[::-1].copy()[::-1]
    if layout == "readonly":
        a.setflags(write=False)
        return a
    if layout == "list":
        return a.tolist()
    if layout == "2d":
        return a.reshape((1, -1) if n % 2 else (-1, 1))
    if layout == "scalar" and n:
        return a[0]
    return a


_LENGTHS = st.sampled_from([(0, 0, 0)] * 6 + [(1, 0, 0), (0, 1, 0), (0, 0, 1)])


@st.composite
def triplets(draw, max_n=6, kinds=None):
    """(users, items, ratings) of one length (or, sometimes, one longer)."""
    n = draw(st.integers(0, max_n))
    extra = draw(_LENGTHS)
    return (draw(any_array(n + extra[0], kinds=kinds)),
            draw(any_array(n + extra[1], kinds=kinds)),
            draw(any_array(n + extra[2], small=(0, 6))))


def snapshot(x):
    """What `unchanged` compares: contents, dtype, strides and flags."""
    if isinstance(x, np.ndarray):
        contents = x.tolist() if x.dtype == object else x.tobytes()
        return ("array", contents, x.dtype, x.shape, x.strides, x.flags.writeable)
    if isinstance(x, (list, tuple, dict)):
        return ("container", copy.copy(x), [snapshot(v) for v in x] if
                not isinstance(x, dict) else [snapshot(v) for v in x.values()])
    return ("other", x)


def unchanged(before, x):
    # the elements of object arrays and lists compare by identity first, so a
    # NaN equals itself
    return before == snapshot(x)


def call(fn, names, *args, **kwargs):
    """fn(*args, **kwargs) under the contract; returns (result, None) or
    (None, exception). `names` are the argument names a message may name."""
    inputs = list(args) + list(kwargs.values())
    before = [snapshot(x) for x in inputs]
    try:
        result, error = fn(*args, **kwargs), None
    except DOCUMENTED as e:
        result, error = None, e
        msg = str(e)
        assert any(name in msg for name in names), \
            f"{type(e).__name__} message {msg!r} names none of {names}"
    for b, x in zip(before, inputs):
        assert unchanged(b, x), f"input modified: {x!r}"
    return result, error


def as_raw_ids(x):
    """x as raw ids (int64, str or bytes) if the documented conversion
    accepts it, else None: arrays of NumPy str/bytes as they are; lists,
    scalars and object arrays item by item (all str, or all bytes)."""
    a = as_int64(x)
    if a is not None:
        return a
    a = np.asarray(x)
    if a.ndim > 1:
        return None
    if isinstance(x, np.ndarray) and a.dtype.kind in "US":
        return a.reshape(-1)
    values = np.asarray(x, dtype=object).reshape(-1).tolist()
    for kind in (str, bytes):
        if all(isinstance(v, kind) for v in values):
            return np.array(values, dtype=kind)
    return None


def as_int64(x):
    """x as int64 ids if the documented conversion accepts it, else None."""
    a = np.asarray(x)
    if a.dtype == object and a.ndim <= 1 and a.size:  # Python ints (not bools) in range
        values = a.reshape(-1).tolist()
        if all(type(v) is int or isinstance(v, np.integer) for v in values) \
                and all(-2**63 <= int(v) < 2**63 for v in values):
            return a.reshape(-1).astype(np.int64)
        return None
    if a.ndim > 1 or a.dtype == bool or not (a.dtype.kind in "iu" or a.size == 0):
        return None
    if a.dtype == np.uint64 and a.size and a.max() > np.iinfo(np.int64).max:
        return None
    return a.reshape(-1).astype(np.int64) if a.size else np.empty(0, np.int64)
