"""Model files under attack: zip bombs, special files, files that disagree
with their header, temporary files and modes; and the parameters that a
saved model's arrays must agree with (set_params)."""
import io
import json
import os
import re
import socket
import subprocess
import sys
import threading
import tracemalloc
import zipfile

import numpy as np
import pytest

import mfrec
from zipcraft import nested, npy

HOME = os.path.dirname(os.path.dirname(os.path.abspath(mfrec.__file__)))


@pytest.fixture(scope="module")
def data():
    return mfrec.make_low_rank(40, 30, 3, density=0.3, seed=2).ratings


@pytest.fixture(scope="module")
def members(data, tmp_path_factory):
    """The members (name -> .npy bytes) of a saved SGD model."""
    path = tmp_path_factory.mktemp("m") / "m.npz"
    mfrec.Model("sgd", factors=3, epochs=2, seed=1).fit(data).save(path)
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def archive(members, compression=zipfile.ZIP_STORED):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return out.getvalue()


def edited(members, **arrays):
    """The members with some arrays replaced (name without .npy)."""
    return {**members, **{f"{k}.npy": npy(v) for k, v in arrays.items()}}


def header_of(members):
    return json.loads(str(np.load(io.BytesIO(members["header.npy"]))[()]))


def with_header(members, **fields):
    return {**members, "header.npy": npy(np.array(json.dumps({**header_of(members), **fields})))}


def load_bytes(tmp_path, blob):
    path = tmp_path / "x.npz"
    path.write_bytes(blob)
    return mfrec.Model.load(path), str(path)


def refused(tmp_path, blob, match):
    path = tmp_path / "x.npz"
    path.write_bytes(blob)
    with pytest.raises(ValueError) as e:
        mfrec.Model.load(path)
    message = str(e.value)
    assert str(path) in message  # named, and the reason given besides
    assert re.search(match, message.replace(str(path), "")), message


def peak_bytes(fn):
    """The most memory Python and NumPy held while fn ran."""
    tracemalloc.start()
    try:
        fn()
    except ValueError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


# ---- zip bombs --------------------------------------------------------------------

BOMB = 200 * 2**20  # 200 MB of zeros deflate to about 200 kB


def test_extra_member_is_refused_unread(members, tmp_path):
    blob = archive({**members, "junk.npy": npy(np.zeros(BOMB, np.uint8))}, zipfile.ZIP_DEFLATED)
    assert len(blob) < BOMB / 500
    path = tmp_path / "bomb.npz"
    path.write_bytes(blob)
    assert peak_bytes(lambda: mfrec.Model.load(path)) < BOMB / 10
    refused(tmp_path, blob, "unexpected member.*junk")


def test_shape_disagreement_is_refused_before_inflating(members, tmp_path):
    """A consistent-looking member that the ids do not need: 50 M users'
    factors (zeros, deflated) for a model of 40 users."""
    blob = archive(edited(members, user_factors=np.zeros((BOMB // 12, 3), np.float32)),
                   zipfile.ZIP_DEFLATED)
    path = tmp_path / "bomb.npz"
    path.write_bytes(blob)
    assert peak_bytes(lambda: mfrec.Model.load(path)) < BOMB / 10
    refused(tmp_path, blob, "factor shapes")


def test_side_arrays_must_agree_before_inflating(data, tmp_path):
    """A feature model's bias claims 50 M features while its factors hold
    2 (a fuzz finding): refused from the .npy headers, nothing inflated."""
    path = tmp_path / "f.npz"
    ids = np.unique(data.item)
    features = np.eye(2, dtype=np.float32)[ids % 2]
    mfrec.Model("sgd", factors=3, epochs=1, seed=1).fit(
        data, item_features=features, item_feature_ids=ids).save(path)
    with zipfile.ZipFile(path) as z:
        feature_members = {n: z.read(n) for n in z.namelist()}
    blob = archive(edited(feature_members, extra_item_feature_bias=np.zeros(BOMB // 4, np.float32)),
                   zipfile.ZIP_DEFLATED)
    path.write_bytes(blob)
    assert peak_bytes(lambda: mfrec.Model.load(path)) < BOMB / 10
    refused(tmp_path, blob, "item_feature_bias.*item_features")


def test_overlapping_members_are_refused(members, tmp_path):
    """A member whose data holds another member: both central-directory
    entries are valid on their own, and the inner bytes would count twice."""
    inner_name = "item_factors.npy"
    blob = nested(members, inner_name, "extra_item_feature_factors.npy")
    with zipfile.ZipFile(io.BytesIO(blob)) as z:  # zipfile itself reads both
        assert z.read(inner_name) == members[inner_name]
    refused(tmp_path, blob, "members .* overlap")


def test_declared_size_must_match_the_npy_header(members, tmp_path):
    """The central directory's size for a member and its .npy header agree."""
    name = "user_bias.npy"
    data = members[name] + b"\0" * 64  # 64 bytes the header does not account for
    refused(tmp_path, archive({**members, name: data}), "declares")


# ---- special files ------------------------------------------------------------------

LOAD = "import sys, mfrec\ntry:\n    mfrec.Model.load(sys.argv[1])\nexcept ValueError as e:\n" \
       "    print(e)\n"


def load_in_child(path):
    """Model.load(path) in a child process (today's reader may block or run
    out of memory there, not here); its message."""
    env = {**os.environ, "PYTHONPATH": HOME}
    out = subprocess.run([sys.executable, "-c", LOAD, str(path)], cwd=HOME, env=env,
                         capture_output=True, text=True, timeout=120)
    return out.stdout + out.stderr


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_fifo_is_refused(tmp_path):
    fifo = tmp_path / "model.npz"
    os.mkfifo(fifo)
    assert f"{fifo}: not a regular file" in load_in_child(fifo)


@pytest.mark.parametrize("path", ["/dev/zero", "/dev/null"])
def test_devices_are_refused(path):
    if not os.path.exists(path):
        pytest.skip("no such device")
    assert f"{path}: not a regular file" in load_in_child(path)


def test_folder_and_socket_are_refused(tmp_path):
    with pytest.raises(ValueError, match="not a regular file"):
        mfrec.Model.load(tmp_path)
    if hasattr(socket, "AF_UNIX"):
        path = tmp_path / "s.npz"
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(str(path))
            with pytest.raises(ValueError, match="not a regular file"):
                mfrec.Model.load(path)


# ---- the model against its header ---------------------------------------------------

def test_overflowing_factors_are_refused(members, tmp_path):
    """Finite factors whose products overflow float32: every prediction
    would be infinite."""
    P = np.load(io.BytesIO(members["user_factors.npy"]))
    refused(tmp_path, archive(edited(members, user_factors=np.full_like(P, 1e20))), "overflow")
    # within range: loads and predicts finite values
    model, _ = load_bytes(tmp_path, archive(edited(members, user_factors=np.full_like(P, 1e4))))
    assert np.isfinite(model.predict(model.user_ids, model.user_ids * 0 + model.item_ids[0])).all()


@pytest.mark.parametrize("field,value", [("rating_mean", 1e300), ("global_mean", 1e39),
                                         ("rating_range", [0, 1e300])])
def test_header_numbers_must_fit_float32(members, tmp_path, field, value):
    refused(tmp_path, archive(with_header(members, **{field: value})), field)


@pytest.mark.parametrize("field,value", [
    ("version", True), ("best_iteration", "2"), ("best_iteration", 0), ("seed", -1),
    ("seed", 1.5), ("history", [{"epoch": "one"}]), ("history", [{"epoch": None}]),
    ("algorithm", ["sgd"]), ("params", []), ("metadata", []), ("metadata", {"a": [1]}),
    ("metadata", {"a": {"b": 1}})])
def test_header_field_types(members, tmp_path, field, value):
    refused(tmp_path, archive(with_header(members, **{field: value})), "not a valid")


def test_metadata_is_kept_and_checked(data, members, tmp_path):
    model = mfrec.Model("sgd", factors=3, epochs=2, seed=1).fit(data)
    assert model.metadata == {}
    model.metadata.update(dataset="100k", rows=3, share=0.5, mine=True, note=None)
    path = model.save(tmp_path / "meta")
    assert mfrec.Model.load(path).metadata == model.metadata
    assert header_of(members)["metadata"] == {}  # a model without notes
    old = {k: v for k, v in header_of(members).items() if k != "metadata"}
    written = {**members, "header.npy": npy(np.array(json.dumps(old)))}
    assert load_bytes(tmp_path, archive(written))[0].metadata == {}  # files before metadata
    for bad in ({"a": [1]}, {1: "a"}, {"a": float("nan")}, ["a"]):
        model.metadata = bad
        with pytest.raises(TypeError, match="metadata"):
            model.save(tmp_path / "bad")
    assert not (tmp_path / "bad.npz").exists()


def test_factor_count_must_match_the_arrays(members, tmp_path):
    params = {**header_of(members)["params"], "factors": 4}
    refused(tmp_path, archive(with_header(members, params=params)), "factor shapes")


def test_zero_width_factors_are_refused(data, tmp_path):
    path = tmp_path / "p.npz"
    mfrec.Model("popular").fit(data).save(path)
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    nu, ni = len(np.unique(data.user)), len(np.unique(data.item))
    blob = archive(edited(members, user_factors=np.zeros((nu, 0), np.float32),
                          item_factors=np.zeros((ni, 0), np.float32)))
    refused(tmp_path, blob, "factor shapes")


def test_seen_items_must_be_sorted_within_rows(members, tmp_path):
    indptr = np.load(io.BytesIO(members["seen_indptr.npy"]))
    indices = np.load(io.BytesIO(members["seen_indices.npy"])).copy()
    a, b = indptr[0], indptr[1]
    assert b - a >= 2
    indices[a:b] = indices[a:b][::-1]
    refused(tmp_path, archive(edited(members, seen_indices=indices)), "sorted")
    indices[a:b] = indices[a]  # repeated
    refused(tmp_path, archive(edited(members, seen_indices=indices)), "sorted")


def test_unparseable_dtype_names_the_file(members, tmp_path):
    data = members["user_bias.npy"].replace(b"'<f4'", b"'<i3'")
    assert data != members["user_bias.npy"]
    refused(tmp_path, archive({**members, "user_bias.npy": data}), "unsupported dtype")


# ---- writing --------------------------------------------------------------------------

@pytest.mark.skipif(os.name != "posix", reason="POSIX modes")
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_mode_follows_the_umask(data, tmp_path, umask):
    model = mfrec.Model("sgd", factors=2, epochs=1, seed=1).fit(data)
    old = os.umask(umask)
    try:
        model.save(tmp_path / "m.npz")
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "m.npz").st_mode & 0o777 == 0o666 & ~umask


@pytest.mark.skipif(os.name != "posix", reason="process ids")
def test_save_removes_stale_temporary_files(data, tmp_path):
    model = mfrec.Model("sgd", factors=2, epochs=1, seed=1).fit(data)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # a process id that no longer runs
    stale = tmp_path / f".m.npz.{child.pid}.0badc0de.tmp"
    live = tmp_path / f".m.npz.{os.getpid()}.0badc0de.tmp"  # a save in progress here
    other = tmp_path / f".n.npz.{child.pid}.0badc0de.tmp"   # another target's
    for p in (stale, live, other):
        p.write_bytes(b"partial")
    model.save(tmp_path / "m.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["m.npz", live.name, other.name])


def test_save_paths(data, tmp_path):
    model = mfrec.Model("sgd", factors=2, epochs=1, seed=1).fit(data)
    assert model.save(os.fsencode(tmp_path / "b")) == str(tmp_path / "b.npz")  # bytes, as load
    assert mfrec.Model.load(os.fsencode(tmp_path / "b.npz")).is_fitted
    folder = tmp_path / "folder"
    folder.mkdir()
    for path in ("", str(folder) + os.sep):
        with pytest.raises(ValueError, match="names no file"):
            model.save(path)
    assert os.listdir(folder) == [] and not (tmp_path / ".npz").exists()
    with pytest.raises(TypeError, match="path"):
        model.save(3)


# ---- parameters and fitted state -------------------------------------------------------

def test_set_params_keeps_the_fitted_state(data, tmp_path):
    model = mfrec.Model("sgd", factors=3, epochs=2, seed=1).fit(data)
    before = model.predict(data.user, data.item)
    assert model.set_params(factors=5, epochs=1) is model
    assert model.is_fitted and model.get_params()["factors"] == 5
    np.testing.assert_array_equal(model.predict(data.user, data.item), before)
    model.save(tmp_path / "m.npz")  # the parameters the arrays were fitted with
    loaded = mfrec.Model.load(tmp_path / "m.npz")
    assert loaded.factors == 3 and loaded.epochs == 2
    np.testing.assert_array_equal(loaded.predict(data.user, data.item), before)
    with pytest.raises(ValueError, match="factors"):  # all or nothing
        model.set_params(epochs=7, factors=0)
    assert model.get_params()["epochs"] == 1
    assert model.fit(data).user_factors.shape[1] == 5  # the next fit uses them


def test_attribute_assignment_sets_parameters(data):
    model = mfrec.Model("sgd", factors=2, epochs=2, seed=1)
    model.epochs = 1
    assert model.get_params()["epochs"] == 1 and model.epochs == 1
    assert len(model.fit(data).history) == 1
    with pytest.raises(ValueError, match="epochs"):
        model.epochs = 0
    assert model.epochs == 1


def test_set_params_waits_for_a_fit_in_another_thread(data, tmp_path):
    model = mfrec.Model("sgd", factors=12, epochs=3, seed=1)
    started, go = threading.Event(), threading.Event()

    def callback(m, row):
        started.set()
        go.wait()

    fitter = threading.Thread(target=model.fit, args=(data,), kwargs={"callback": callback})
    setter = threading.Thread(target=model.set_params, kwargs={"factors": 2})
    fitter.start()
    started.wait()
    setter.start()
    setter.join(0.5)
    waited = setter.is_alive()
    go.set()
    fitter.join()
    setter.join()
    assert waited  # it cannot have returned while the fit held the model
    assert model.user_factors.shape[1] == 12 and model.factors == 2
    model.save(tmp_path / "m.npz")
    loaded = mfrec.Model.load(tmp_path / "m.npz")
    assert loaded.factors == 12 == loaded.user_factors.shape[1]


# ---- inputs -------------------------------------------------------------------------------

def test_masked_arrays_are_refused(data):
    model = mfrec.Model("sgd", factors=2, epochs=1, seed=1)
    masked = np.ma.masked_array(data.rating, mask=data.rating > 3)
    with pytest.raises(ValueError, match="ratings.*masked"):
        model.fit(data.user, data.item, masked)
    with pytest.raises(ValueError, match="users.*masked"):
        model.fit(np.ma.masked_array(data.user, mask=data.user > 3), data.item, data.rating)
    # a mask that hides nothing loses nothing
    model.fit(np.ma.masked_array(data.user), data.item, np.ma.masked_array(data.rating))
    assert model.is_fitted


def test_nmf_refuses_negative_ratings_without_biases(data):
    shifted = data.rating - 10
    with pytest.raises(ValueError, match="ratings >= 0"):
        mfrec.Model("nmf", factors=2, epochs=1, seed=1).fit(data.user, data.item, shifted)
    # with biases the residuals may be negative anyway: fine
    mfrec.Model("nmf", factors=2, epochs=1, seed=1, biases=True).fit(data.user, data.item, shifted)


def test_feature_width_is_refused_before_allocating(data):
    """2**31 - 1 declared feature columns with three non-zeros: their
    vectors would need hundreds of GB."""
    import scipy.sparse as sp
    items = np.unique(data.item)[:3]
    features = sp.csr_matrix((np.ones(3), (np.arange(3), [0, 1, 2**31 - 2])),
                             shape=(3, 2**31 - 1))
    with pytest.raises(ValueError, match="item_features.*GB"):
        mfrec.Model("sgd", factors=20, epochs=1, seed=1).fit(
            data, item_features=features, item_feature_ids=items)
