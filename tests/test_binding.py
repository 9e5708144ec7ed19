"""The binding's own contract (csrc/python/): every function accepts what
its docstring's signature says, status codes map to the documented
exception types, and malformed arguments get a message, never a
SystemError."""
import inspect

import numpy as np
import pytest

import mfrec
from mfrec import _core

PARSE_ERRORS = ("keyword argument", "required argument", "positional argument",
                "given by name", "takes at most", "takes exactly", "takes no keyword")


def bindings():
    """(name, callable) of every function and Model method with parameters."""
    found = [(name, getattr(_core, name)) for name in dir(_core)
             if callable(getattr(_core, name)) and not isinstance(getattr(_core, name), type)]
    found.append(("Model._predict", _core.Model()._predict))
    return [(name, f) for name, f in found if inspect.signature(f).parameters]


def parse_error(f, *args, **kwargs):
    """The message of an argument-parsing TypeError of f(*args, **kwargs),
    or None when the arguments were parsed (whatever failed after)."""
    try:
        f(*args, **kwargs)
    except TypeError as e:
        return str(e) if any(p in str(e) for p in PARSE_ERRORS) else None
    except Exception:  # noqa: BLE001 - parsed; the values were refused
        return None
    return None


@pytest.mark.parametrize("name, f", bindings(), ids=[n for n, _ in bindings()])
def test_signature_is_what_the_function_parses(name, f):
    """The docstring's signature (written once, by BINDING_*) names the
    arguments the function's parser takes, in order, with the same split
    into positional and keyword-only ones: every argument given as the
    signature says parses, one positional more does not, and a function
    that takes keywords takes every name."""
    params = inspect.signature(f).parameters.values()
    value = {p.name: 1 if p.default is p.empty else p.default for p in params}
    positional = [value[p.name] for p in params if p.kind != p.KEYWORD_ONLY]
    keyword_only = {p.name: value[p.name] for p in params if p.kind == p.KEYWORD_ONLY}
    assert parse_error(f, *positional, **keyword_only) is None
    assert parse_error(f, *positional, 1, **keyword_only) is not None
    by_name = parse_error(f, **value)
    if by_name and "takes no keyword" in by_name:  # METH_VARARGS
        assert not keyword_only
    else:
        assert by_name is None


def test_not_positive_definite_is_linalg_error(rng=np.random.default_rng(0)):
    """The core's MFR_ENOTPD raises numpy.linalg.LinAlgError, a ValueError
    (what callers caught before), from the ALS half-step, the ALS fit and
    fold-in."""
    Y = rng.normal(size=(4, 3)).astype(np.float32)
    one_entry = (np.array([0, 1], np.int64), np.array([2], np.int32), np.ones(1, np.float32))
    with pytest.raises(np.linalg.LinAlgError, match="not positive definite"):
        _core.als_half_step(*one_entry, Y, np.zeros((1, 3), np.float32), regularization=0.0)
    u, i = np.array([1, 1, 2, 3]), np.array([1, 2, 2, 3])
    with pytest.raises(np.linalg.LinAlgError, match="not positive definite"):
        mfrec.Model("als", factors=3, regularization=0.0).fit(u, i, np.ones(4))
    core = _core.Model()  # Q rows (1, 1): 1 + lambda == 1, the system is singular
    core.user_factors = np.zeros((1, 2), np.float32)
    core.item_factors = np.ones((3, 2), np.float32)
    with pytest.raises(np.linalg.LinAlgError, match="singular"):
        _core.fold_in(core, np.array([0], np.int32), np.ones(1, np.float32), 1e-300)
    assert issubclass(np.linalg.LinAlgError, ValueError)


def test_malformed_csr_tuples_are_named():
    """An empty indptr, or not a tuple: a message naming the argument and,
    for a wrong type, the type (not a SystemError, nor a literal "%T")."""
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32))
    with pytest.raises(ValueError, match="number of rows"):
        _core.svd_frobenius2(empty, np.zeros(1), np.zeros(1))
    with pytest.raises(TypeError, match="by_row: expected a tuple .* got list"):
        _core.svd_frobenius2([1, 2, 3], np.zeros(1), np.zeros(1))


@pytest.mark.parametrize("entry", ["sgd_epoch", "sgd_epoch_features"])
def test_sgd_epochs_check_their_arguments_alike(entry):
    """Both SGD epochs refuse the same bad arguments with the same message."""
    core = _core.Model()
    core.user_factors = np.zeros((3, 2), np.float32)
    core.item_factors = np.zeros((3, 2), np.float32)
    u = np.array([0, 1], np.int32)
    r = np.ones(2, np.float32)
    fn = getattr(_core, entry)
    good = dict(learning_rate=0.01, regularization=0.0, biases=False, seed=0, epoch=0)
    assert np.isfinite(fn(core, u, u, r, **good))
    for bad in [dict(learning_rate=0.0), dict(learning_rate=np.inf),
                dict(regularization=-1.0), dict(epoch=-1)]:
        with pytest.raises(ValueError, match=f"{entry}: need learning_rate > 0"):
            fn(core, u, u, r, **{**good, **bad})
    with pytest.raises(ValueError, match=f"{entry}: no ratings"):
        fn(core, u[:0], u[:0], r[:0], **good)
