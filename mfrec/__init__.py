"""mfrec: matrix-factorization recommendation with a C core.

    import mfrec
    data = mfrec.load_movielens("100k")
    train, test = mfrec.train_test_split(data.ratings, test_size=0.2, seed=42)
    model = mfrec.Model("sgd", factors=100, seed=42).fit(train, validation=test)
"""
import os

# mfrec's parallel regions last milliseconds: idle OpenMP threads should
# sleep, not spin, or on a small or shared machine they take the cores the
# working threads need (2-thread SGD ran 5x slower). Set before libgomp
# loads; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import scipy_openblas32  # noqa: E402,F401  (loads OpenBLAS, whose symbols _core uses)

try:
    from . import _core
except ImportError as e:  # a source checkout without the compiled core
    raise ImportError(f"mfrec's C core is not built ({e}). Install with `pip install .` and "
                      "run from outside the source folder, or use `pip install -e .`") from e
from . import metrics
from .datasets import load_movielens, make_low_rank
from .model import Model
from .model_selection import (GridSearch, KFold, PredefinedFolds, RandomSearch,
                              cross_validate, train_test_split)
from ._read import read_ratings
from .ratings import Ratings

__version__ = _core.__version__

__all__ = ["Model", "Ratings", "read_ratings", "load_movielens", "make_low_rank", "train_test_split",
           "KFold", "PredefinedFolds", "cross_validate", "GridSearch", "RandomSearch",
           "metrics", "build_info"]


def build_info() -> dict:
    """The versions and the CPU/BLAS variants in use (benchmarks print it)."""
    return {"mfrec": __version__, "simd": _core.simd_variant(),
            "openblas": _core.openblas_config()}
