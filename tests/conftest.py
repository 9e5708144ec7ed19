"""Shared fixtures. MovieLens comes from $MFREC_DATA (never downloaded here)."""
import os

import numpy as np
import pytest

import mfrec


def _load(name):
    if not os.environ.get("MFREC_DATA"):
        pytest.fail("set MFREC_DATA to the folder holding ml-100k/ and ml-latest-small/")
    return mfrec.load_movielens(name, download=False)


@pytest.fixture(scope="session")
def ml100k():
    return _load("100k")


@pytest.fixture(scope="session")
def ml_latest():
    return _load("latest-small")


@pytest.fixture(scope="session")
def split42(ml100k):
    """The random 80/20 split with seed 42 the Level-1 document uses."""
    return mfrec.train_test_split(ml100k.ratings, test_size=0.2, seed=42)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def run_env():
    """Environment for running ``python -m mfrec`` in a subprocess from outside
    the source tree: it imports the same mfrec as the tests do."""
    env = dict(os.environ)
    home = os.path.dirname(os.path.dirname(os.path.abspath(mfrec.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (home, env.get("PYTHONPATH")) if p)
    return env


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: end-to-end runs (notebooks, full MovieLens fits) left out of "
        "the sanitizer run (.ci/sanitize.sh); the entry points they call are covered "
        "by fast tests")
