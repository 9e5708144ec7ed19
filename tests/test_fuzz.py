"""Fuzzing the parsers of outside data: model files and MovieLens files.

Hypothesis mutates well-formed seeds: bytes (flips, overwrites, insertions
of tokens the formats care about, deletions, truncation, splices) and, for
model files, the members inside a well-formed archive (the .npy headers and
data, the JSON header, members added or removed), rewritten with valid
checksums so the mutations get past the zip layer. The contract: the
reader returns a result that is consistent and usable, or raises a
ValueError that names the file. Nothing else, never a crash.

Every input that ever broke the contract is kept in tests/fuzz_corpus/
<target>/ and replayed by test_corpus. A failing run also writes its input
to test-artifacts/fuzz/<target>/ to be added there.

CI runs MFREC_FUZZ_EXAMPLES cases per target (default 500; 20 under the
sanitizer). A longer run (20,000 per target: about 5 minutes on one core):
    MFREC_FUZZ_EXAMPLES=20000 python -m pytest tests/test_fuzz.py -q \\
        --hypothesis-show-statistics
"""
import hashlib
import io
import json
import os
import socket
import stat
import tempfile
import tracemalloc
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mfrec
from mfrec.algorithms import ALGORITHMS
from zipcraft import nested, npy
from mfrec import _movielens
from recipes import recipe_params

EXAMPLES = int(os.environ.get("MFREC_FUZZ_EXAMPLES",
                              "20" if os.environ.get("MFREC_SANITIZED") else "500"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, print_blob=True,
                suppress_health_check=list(HealthCheck))
HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "fuzz_corpus")
CRASHES = os.path.join(os.path.dirname(HERE), "test-artifacts", "fuzz")
SHM = "/dev/shm" if os.path.isdir("/dev/shm") else None

# ---- byte mutations ------------------------------------------------------------

TOKENS = [b"\t", b",", b"|", b"\n", b"\r\n", b'"', b"-", b"0", b"1", b"9" * 20, b"nan",
          b"inf", b"1e999", b"-1", b"\x00", b"\xff", b"\xe9", b" ", b"(no genres listed)",
          b"userId,movieId,rating,timestamp", b"movieId,title,genres"]


@st.composite
def mutated(draw, seeds):
    """A seed with 1 to 4 random edits."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "byte", "token", "insert", "delete", "truncate",
                                   "splice"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "byte" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "token":
            data[pos:pos] = draw(st.sampled_from(TOKENS))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[pos:pos + draw(st.integers(1, 16))]
        elif op == "truncate":
            del data[pos:]
        elif op == "splice" and data:
            start = draw(st.integers(0, len(data) - 1))
            data[pos:pos] = data[start:start + draw(st.integers(1, 32))]
    return bytes(data)


def keep_failure(target, name, data):
    """Write an input that broke the contract where it can be added to the corpus."""
    folder = os.path.join(CRASHES, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f"{hashlib.sha1(data).hexdigest()[:12]}-{name}"), "wb") as f:
        f.write(data)


def write(folder, name, data):
    path = os.path.join(folder, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


# ---- the MovieLens readers -------------------------------------------------------

SEEDS = {
    "tab": [b"196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n",
            b"1\t1\t5\t874965758\n"],
    "latest-ratings": [b"userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.0,964981247\n"
                       b"6,1,0.5,845553522\n",
                       b"userId,movieId,rating,timestamp\r\n1,1,4.0,964982703\r\n"],
    "latest-movies": [b'movieId,title,genres\n1,Toy Story (1995),Adventure|Animation|Children\n'
                      b'2,"Jumanji, The (1995)",Adventure|Fantasy\n'
                      b"3,Forgotten (2004),(no genres listed)\n"],
    "dat-movies": [b"1::Toy Story (1995)::Animation|Children's|Comedy\n"
                   b"73::Mis\xe9rables, Les (1995)::Drama|Musical\r\n",
                   "2::Caf\u00e9: Paris (1995)::(no genres listed)\n".encode()],
    "100k-items": [b"unknown|0\nAction|1\nAdventure|2\n\n" + b"\0" +
                   b"1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/x|0|1|1\n"
                   b"2|Caf\xe9 (1995)|01-Jan-1995||http://x|1|0|0\n"],
}


def check_ratings(r):
    assert isinstance(r, mfrec.Ratings)
    assert len(r.user) == len(r.item) == len(r.rating) == len(r.timestamp)
    assert r.user.dtype == np.int64 and r.rating.dtype == np.float32
    assert np.isfinite(r.rating).all()


def check_catalogue(out):
    ids, titles, genres, names = out
    assert ids.dtype == np.int64 and (ids[1:] > ids[:-1]).all()
    assert len(titles) == len(ids) and genres.shape == (len(ids), len(names))


def read_100k_items(folder, data):
    """u.genre and u.item from one input, split at the first NUL byte."""
    genre, _, item = data.partition(b"\0")
    write(folder, "u.genre", genre)
    write(folder, "u.item", item)
    return _movielens.read_100k_items(folder)


READERS = {
    "tab": (lambda folder, data: _movielens.read_tab(write(folder, "u.data", data)),
            check_ratings),
    "latest-ratings": (lambda folder, data: _movielens.read_latest_ratings(
        write(folder, "ratings.csv", data)), check_ratings),
    "latest-movies": (lambda folder, data: _movielens.read_latest_movies(
        write(folder, "movies.csv", data)), check_catalogue),
    "dat-movies": (lambda folder, data: _movielens.read_dat_movies(
        write(folder, "movies.dat", data)), check_catalogue),
    "100k-items": (read_100k_items, check_catalogue),
}


def run_reader(target, data):
    read, check = READERS[target]
    with tempfile.TemporaryDirectory(dir=SHM) as folder:
        try:
            out = read(folder, data)
        except ValueError as e:
            assert folder in str(e), f"the message does not name the file: {e}"
            return
        except BaseException:
            keep_failure(target, "input", data)
            raise
        check(out)


@pytest.mark.parametrize("target", sorted(READERS))
@given(data=st.data())
@FUZZ
def test_movielens_readers(target, data):
    run_reader(target, data.draw(mutated(SEEDS[target])))


def test_seeds_are_valid():
    """The seeds parse: the mutations start from well-formed files."""
    with tempfile.TemporaryDirectory() as folder:
        for target, seeds in SEEDS.items():
            read, check = READERS[target]
            for data in seeds:
                check(read(folder, data))


# ---- model files ------------------------------------------------------------------

PROBE_USERS = np.array([0, 3, 5, -5, 10**12, 0])
PROBE_ITEMS = np.array([-3, 1, 4, 7, 2, -2**63])  # unknown ids too


def _seed_models():
    """Well-formed model files: (bytes, predictions on the probe pairs)."""
    rng = np.random.default_rng(3)
    u, i = rng.integers(0, 6, 25), rng.integers(-3, 5, 25)
    keep = np.unique(np.stack([u, i]), axis=1, return_index=True)[1]
    u, i, r = u[keep], i[keep], rng.integers(1, 6, len(keep)).astype(np.float32)
    models = [mfrec.Model("sgd", factors=2, epochs=2, seed=1).fit(u, i, r),
              mfrec.Model("sgd", factors=1, epochs=1, seed=1, biases=False).fit(u, i, r),
              mfrec.Model("sgd", factors=2, epochs=1, seed=1).fit(  # side features saved
                  u, i, r, item_features=np.eye(9, 3), item_feature_ids=np.arange(-3, 6)),
              mfrec.Model("bayes", factors=2, sweeps=2, likelihood="ordinal", seed=1).fit(
                  u, i, r)]  # cut points and levels saved
    for name in sorted(ALGORITHMS):  # each algorithm's own arrays
        models.append(mfrec.Model(name, **recipe_params(name, factors=2)).fit(u, i, r))
    seeds = []
    with tempfile.TemporaryDirectory() as folder:
        for m in models:
            m.save(os.path.join(folder, "m.npz"))
            with open(os.path.join(folder, "m.npz"), "rb") as f:
                seeds.append((f.read(), m.predict(PROBE_USERS, PROBE_ITEMS)))
    deflated = io.BytesIO()  # save never compresses, but a loader meets such files
    with zipfile.ZipFile(io.BytesIO(seeds[0][0])) as z, \
            zipfile.ZipFile(deflated, "w", zipfile.ZIP_DEFLATED) as out:
        for name in z.namelist():
            out.writestr(name, z.read(name))
    return seeds + [(deflated.getvalue(), seeds[0][1])]


SEED_MODELS = _seed_models()
MODEL_SEEDS = [data for data, _ in SEED_MODELS]

JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=4),
                        st.sampled_from([[], {}, [1, 2], [1.0, float("nan")], [5.0, 1.0],
                                         {"factors": 1}, "sgd", "mfrec-model", 1]),
                        st.integers(1, 100000).map(lambda d: "[" * d + "]" * d))


@st.composite
def mutated_archive(draw):
    """A model file whose members were edited inside (checksums kept valid)."""
    with zipfile.ZipFile(io.BytesIO(draw(st.sampled_from(MODEL_SEEDS)))) as z:
        members = {n: z.read(n) for n in z.namelist()}
    compression = draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["bytes", "bytes", "header", "array", "drop", "add", "bomb",
                                   "nest"]))
        name = draw(st.sampled_from(sorted(members)))
        if op == "bytes":  # .npy header or data
            members[name] = draw(mutated([members[name]]))
        elif op == "header":
            try:
                header = json.loads(str(np.load(io.BytesIO(members["header.npy"]))[()]))
            except Exception:  # dropped or already broken by an earlier edit
                header = {}
            if not isinstance(header, dict) or draw(st.integers(0, 9)) == 0:
                text = draw(st.sampled_from(RAW_HEADERS))
            else:
                key = draw(st.sampled_from(sorted(header) + [
                    "format", "version", "params", "global_mean", "rating_range", "history",
                    "algorithm", "best_iteration", "x"]))
                header[key] = draw(JSON_VALUES)
                text = json.dumps(header)
            members["header.npy"] = npy(np.array(text))
        elif op == "array":  # a well-formed .npy of another dtype, shape or content
            members[name] = npy(draw(st.sampled_from(ODD_ARRAYS)))
        elif op == "drop":
            del members[name]
        elif op == "add":
            members[draw(st.sampled_from(["extra.npy", "notes.txt", "extra_x.npy"]))] = \
                npy(np.arange(3))
        elif op == "bomb":  # 16 MB of zeros, about 16 kB deflated, known member or not
            members[draw(st.sampled_from(sorted(members) + ["junk.npy"]))] = npy(np.zeros(
                draw(st.sampled_from([(2**22,), (2**21, 2), (2**20, 4)])), np.float32))
            compression = zipfile.ZIP_DEFLATED
        elif len(members) > 1:  # nest: one member inside another's data
            return nested(members, name, draw(st.sampled_from(sorted(set(members) - {name}))))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return out.getvalue()


RAW_HEADERS = ["[" * 100000, "{" * 50000, "null", "1e999", "NaN", "", "\ud800",
               '{"format": "mfrec-model", "version": 1, "algorithm": "sgd", "params": ' +
               '{"factors": ' * 5000 + "1" + "}" * 5001]

ODD_ARRAYS = [np.zeros(0), np.zeros((0, 2), np.float32), np.array(3), np.arange(5),
              np.arange(5, dtype=np.int32), np.arange(6, dtype=np.int64)[::-1],
              np.full((6, 2), np.nan, np.float32), np.full((6, 2), 3e38, np.float32),
              np.ones((2, 6), np.float32), np.asfortranarray(np.ones((6, 2), np.float32)),
              np.array([0, 1, 2, 2, 9], np.int64), np.array([-1, 0], np.int32),
              np.array(["a", "b"]), np.ones(6, ">f4"), np.ones((6, 2), np.float64),
              np.array([0, 2**62, 2**63 - 1], np.int64), np.zeros(7, np.int64)]


def LOAD_MEMORY(data):
    """The most memory loading `data` may take: a few times the file (a
    deflated file holds more than its size) and a member of known size."""
    return 8 * len(data) + 2**25


def run_model_file(data):
    """Load `data` as a model file: either it is refused with a ValueError
    that names the file, or the model loaded is consistent and usable (its
    arrays agree, it predicts and recommends, and saves and loads back to
    the same predictions). Returns the model's predictions on the probe
    pairs, or None if the file was refused."""
    with tempfile.TemporaryDirectory(dir=SHM) as folder:
        path = write(folder, "m.npz", data)
        tracemalloc.start()
        try:
            model = mfrec.Model.load(path)
        except ValueError as e:
            assert path in str(e) and "mfrec model file" in str(e), \
                f"the message does not name the file: {e}"
            return None
        except BaseException:
            keep_failure("model", "m.npz", data)
            raise
        finally:  # what a file asks for is bounded by the arrays it holds
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            if peak > LOAD_MEMORY(data):
                keep_failure("model", "m.npz", data)
            assert peak <= LOAD_MEMORY(data), f"load took {peak} bytes for {len(data)}"
        try:
            return check_loaded(model, path)
        except BaseException:
            keep_failure("model", "m.npz", data)
            raise


def check_loaded(model, path):
    n_users, n_items = len(model.user_ids), len(model.item_ids)
    k = model.user_factors.shape[1]
    assert model.user_factors.shape == (n_users, k) and model.user_factors.dtype == np.float32
    assert model.item_factors.shape == (n_items, k) and model.item_factors.dtype == np.float32
    assert np.all(model.user_ids[1:] > model.user_ids[:-1])
    assert np.all(model.item_ids[1:] > model.item_ids[:-1])
    pred = model.predict(PROBE_USERS, PROBE_ITEMS)
    assert pred.shape == PROBE_USERS.shape and pred.dtype == np.float32
    ids, _ = model.recommend(model.user_ids[:3], 5)
    assert ids.shape == (min(3, n_users), min(5, n_items))
    model.save(path)
    again = mfrec.Model.load(path)
    np.testing.assert_array_equal(again.predict(PROBE_USERS, PROBE_ITEMS), pred)
    assert again.get_params() == model.get_params()
    return pred


@given(mutated(MODEL_SEEDS))
@FUZZ
def test_model_file_bytes(data):
    run_model_file(data)


@given(mutated_archive())
@FUZZ
def test_model_file_members(data):
    run_model_file(data)


@pytest.mark.parametrize("kind", ["folder", "fifo", "socket", "/dev/null", "/dev/zero",
                                  "link to /dev/zero"])
def test_model_special_files(kind, tmp_path):
    """Only regular files are read: a FIFO would block, /dev/zero never end."""
    path = str(tmp_path / "m.npz")
    if kind == "folder":
        os.mkdir(path)
    elif kind == "fifo" and hasattr(os, "mkfifo"):
        os.mkfifo(path)
    elif kind == "socket" and hasattr(socket, "AF_UNIX"):
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(path)
    elif kind.startswith("/dev/") and os.path.exists(kind):
        path = kind
    elif kind.startswith("link") and os.path.exists("/dev/zero"):
        os.symlink("/dev/zero", path)
    else:
        pytest.skip(f"no {kind} here")
    assert not stat.S_ISREG(os.stat(path).st_mode)
    with pytest.raises(ValueError, match="not a regular file") as e:
        mfrec.Model.load(path)
    assert path in str(e.value)
    if kind == "socket":
        sock.close()


def test_model_seeds_are_valid():
    """Every seed loads and predicts what the model it was saved from did:
    the mutations start from files the reader accepts."""
    for data, expected in SEED_MODELS:
        got = run_model_file(data)
        assert got is not None, "a well-formed model file was refused"
        np.testing.assert_array_equal(got, expected)


# ---- the corpus of inputs that once broke the contract ---------------------------------

def _corpus():
    if not os.path.isdir(CORPUS):
        return []
    return [(target, name) for target in sorted(os.listdir(CORPUS))
            for name in sorted(os.listdir(os.path.join(CORPUS, target)))]


@pytest.mark.parametrize("target,name", _corpus(), ids="/".join)
def test_corpus(target, name):
    with open(os.path.join(CORPUS, target, name), "rb") as f:
        data = f.read()
    if target == "model":
        run_model_file(data)
    else:
        run_reader(target, data)
