"""Shared fixtures. MovieLens comes from $MFREC_DATA (never downloaded here:
the download path is tested against a local server)."""
import functools
import http.server
import os
import threading

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
def no_data_env(monkeypatch, tmp_path):
    """No $MFREC_DATA, an empty user cache, no proxies; returns the
    $MFREC_DATA it took away."""
    source = os.environ.get("MFREC_DATA")
    if not source:
        pytest.fail("set MFREC_DATA to the folder holding ml-100k/ and ml-latest-small/")
    monkeypatch.delenv("MFREC_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    return source


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 (a free port) serving tmp_path/www;
    yields (url, folder, hits): hits lists the paths asked for, in order."""
    www = tmp_path / "www"
    www.mkdir()
    hits = []

    class Counting(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Counting, directory=str(www)))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", str(www), hits
    httpd.shutdown()
    httpd.server_close()
    thread.join()


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
