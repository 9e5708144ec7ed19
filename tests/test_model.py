"""The shared Model: input checks, prediction fallback, Ctrl-C, files."""
import json
import os
import re
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import mfrec
from test_contract import interrupt_at


@pytest.fixture(scope="module")
def data():
    """Small planted data with raw ids that are neither contiguous nor small."""
    d = mfrec.make_low_rank(120, 90, rank=3, density=0.3, noise=0.2, seed=5).ratings
    return mfrec.Ratings(d.user * 7 + 10**12, d.item * 3 - 50, d.rating)


@pytest.fixture(scope="module")
def fitted(data):
    return mfrec.Model("sgd", factors=4, epochs=5, seed=0).fit(data)


def small_model(**params):
    return mfrec.Model("sgd", **{"factors": 4, "epochs": 5, "seed": 0, **params})


U = np.array([1, 2, 3, 1, 2, 3])
I = np.array([10, 20, 30, 20, 30, 10])
R = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 3.0])


# ---- bad input: each case is its own test ----------------------------------

@pytest.mark.parametrize("users, items, ratings, exc, match", [
    (U.astype(float), I, R, TypeError, "fit: users must hold integer ids, got dtype float64"),
    (U, I.astype(np.float32), R, TypeError, "fit: items must hold integer ids"),
    # string ids are welcome (tests/test_string_ids.py), a mix of kinds is not
    (np.append(U[:-1].astype(object), "a"), I, R, TypeError,
     "fit: users must hold integer ids, got an object array of int, str"),
    (U, I, R.astype(str), TypeError, "fit: ratings must hold real numbers"),
    (U, I, R.astype(object), TypeError, "fit: ratings must hold real numbers"),
    (U, I, R + 0j, TypeError, "fit: ratings must hold real numbers"),
    (U.reshape(2, 3), I, R, ValueError, "fit: users must be 1-D"),
    (U[:5], I, R, ValueError, r"same length \(5, 6, 6\)"),
    (U, I, R[:4], ValueError, r"same length \(6, 6, 4\)"),
    (U, I, np.r_[R[:5], np.nan], ValueError, "fit: ratings must be finite: entry 5"),
    (U, I, np.r_[np.inf, R[1:]], ValueError, "fit: ratings must be finite: entry 0"),
    (U, I, np.r_[R[:5], 1e300], ValueError, "does not fit in float32"),
    ([], [], [], ValueError, "no ratings given"),
    (np.array([], np.int64), np.array([], np.int64), np.array([], np.float32),
     ValueError, "no ratings given"),
    (np.array([2**63 + 1, 1, 2, 3, 4, 5], np.uint64), I, R, ValueError, "int64 range"),
    (np.r_[U, 1], np.r_[I, 10], np.r_[R, 2.0], ValueError,
     r"1 \(user, item\) pair\(s\) occur more than once, e.g. user 1 and item 10"),
])
def test_fit_rejects_bad_arrays(users, items, ratings, exc, match):
    with pytest.raises(exc, match=match):
        mfrec.Model("sgd", factors=2, epochs=1).fit(users, items, ratings)


@pytest.mark.parametrize("params, match", [
    (dict(learning_rate=-0.01), "learning_rate must be a finite number > 0"),
    (dict(learning_rate=0), "learning_rate must be a finite number > 0"),
    (dict(learning_rate=float("nan")), "learning_rate must be a finite number > 0"),
    (dict(learning_rate="0.01"), "learning_rate must be a finite number > 0"),
    (dict(regularization=-1), "regularization must be a finite number >= 0"),
    (dict(biases="yes"), "biases must be True or False"),
    (dict(init="zeros"), r"init must be one of \['normal', 'uniform'\]"),
    (dict(init_scale=-0.1), "init_scale must be a finite number >= 0"),
    (dict(negatives=-1), "negatives must be an integer >= 0 and <= 1000"),
    (dict(negatives=1001), "negatives must be an integer >= 0 and <= 1000"),
    (dict(negatives=1.5), "negatives must be an integer >= 0"),
    (dict(negative_rating=float("nan")), "negative_rating must be a finite number"),
])
def test_bad_sgd_parameter_values(params, match):
    """SGD's own parameters (those every algorithm has: test_contract.py)."""
    with pytest.raises(ValueError, match=match):
        mfrec.Model("sgd", **params)


def test_unknown_algorithm():
    with pytest.raises(ValueError, match="algorithm must be one of"):
        mfrec.Model("no-such-algorithm")


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(early_stopping=2), ValueError, "early_stopping needs validation data"),
    (dict(early_stopping=0, validation=(U, I, R)), ValueError, "integer >= 1"),
    (dict(early_stopping=True, validation=(U, I, R)), ValueError, "integer >= 1"),
    (dict(validation=(U, I)), TypeError, "validation must be a Ratings or a"),
    (dict(validation=(U, I, R * np.nan)), ValueError, "validation: ratings must be finite"),
    (dict(validation=(U.astype(float), I, R)), TypeError, "validation: users must hold"),
    (dict(validation=([], [], [])), ValueError, "validation: no ratings"),
    (dict(callback=3), TypeError, "callback must be callable"),
])
def test_fit_rejects_bad_options(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        mfrec.Model("sgd", factors=2, epochs=1).fit(U, I, R, **kwargs)


def test_predict_rejects_bad_arrays(fitted, data):
    with pytest.raises(TypeError, match="users must hold integer ids"):
        fitted.predict(data.user[:3].astype(float), data.item[:3])
    with pytest.raises(ValueError, match=r"same length \(3 != 2\)"):
        fitted.predict(data.user[:3], data.item[:2])
    with pytest.raises(ValueError, match="score: no ratings"):
        fitted.score([], [], [])


# ---- prediction ------------------------------------------------------------

def test_model_without_biases_predicts_the_mean_rating_for_unknown_ids(data, tmp_path):
    stars = np.clip(np.round(data.rating), 1, 5)  # a 1..5 scale
    mean = np.float32(np.mean(stars, dtype=np.float64))
    users, items = np.r_[-1, data.user[0], -1], np.r_[data.item[0], 10**9, 10**9]
    model = small_model(biases=False).fit(data.user, data.item, stars,
                                          validation=(users, items, [5.0, 1.0, 3.0]))
    assert model.user_bias is None and model.global_mean == 0.0
    model.save(tmp_path / "m.npz")
    for m in (model, mfrec.Model.load(tmp_path / "m.npz")):
        np.testing.assert_array_equal(m.predict(users, items, clip=False), [mean] * 3)
    # the validation RMSE during fit used the same fallback
    expected = np.sqrt(np.mean((np.array([5.0, 1.0, 3.0]) - mean) ** 2))
    assert model.history[-1]["valid_rmse"] == pytest.approx(expected, rel=1e-6)
    # wals predicts preferences, not ratings: its unknown pairs stay at 0
    wals = mfrec.Model("wals", factors=2, iterations=2, seed=0).fit(data.user, data.item, stars)
    assert wals.predict([-1], [data.item[0]])[0] == 0.0


# ---- Ctrl-C ------------------------------------------------------------------

def test_ctrl_c_with_early_stopping_keeps_the_best_epoch(data):
    train, valid = mfrec.train_test_split(data, seed=1)
    # a large step makes the validation RMSE rise after epoch 1
    model = small_model(epochs=50, learning_rate=0.2, regularization=0.0)
    with pytest.warns(RuntimeWarning, match="interrupted after 3"):
        model.fit(train, validation=valid, early_stopping=10, callback=interrupt_at(3))
    scores = [row["valid_rmse"] for row in model.history]
    assert len(scores) == 3
    assert model.best_iteration_ == int(np.argmin(scores)) + 1
    assert model.score(valid)["rmse"] == pytest.approx(min(scores), rel=1e-12)


SIGINT_SCRIPT = textwrap.dedent("""
    import sys, warnings
    import numpy as np
    import mfrec

    data = mfrec.make_low_rank(300, 200, density=0.2, seed=0).ratings
    model = mfrec.Model("sgd", factors=8, epochs=10**6, seed=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # one write per line: Ctrl-C may land inside the callback
        model.fit(data, callback=lambda m, row: sys.stdout.write(f"epoch {row['epoch']}\\n"))
    model.save(sys.argv[1])
    print(f"\\nkept {len(model.history)} {model.best_iteration_} "
          f"{np.isfinite(model.user_factors).all()}")
    print("warning", *[str(w.message) for w in caught])
""")


def test_real_sigint_stops_fit_cleanly(tmp_path, data):
    script = tmp_path / "fit_forever.py"
    script.write_text(SIGINT_SCRIPT)
    path = tmp_path / "interrupted.npz"
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(mfrec.__file__)))
    with subprocess.Popen([sys.executable, "-u", str(script), str(path)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=env) as proc:  # (its exit closes the pipes and waits)
        try:
            for line in proc.stdout:
                if line.strip() == "epoch 3":
                    proc.send_signal(signal.SIGINT)
                    break
            out, err = proc.communicate(timeout=60)
        finally:
            proc.kill()
    assert proc.returncode == 0, err
    kept = re.search(r"^kept (\d+) (\d+) (\w+)$", out, re.M)
    n_epochs = int(kept[1])
    assert n_epochs >= 3 and int(kept[2]) == n_epochs and kept[3] == "True"
    assert f"fit interrupted after {n_epochs} iteration(s)" in out
    model = mfrec.Model.load(path)
    assert len(model.history) == n_epochs
    assert np.isfinite(model.predict(data.user[:10], data.item[:10])).all()


# ---- files -------------------------------------------------------------------

def test_load_refuses_pickles(fitted, tmp_path):
    path = tmp_path / "pickled.npz"
    np.savez(path, header=np.array([{"format": "mfrec-model"}], dtype=object))
    with pytest.raises(ValueError, match="not a readable mfrec model file"):
        mfrec.Model.load(path)


@pytest.fixture(scope="module")
def model_bytes(fitted, tmp_path_factory):
    path = tmp_path_factory.mktemp("files") / "model.npz"
    fitted.save(path)
    return path.read_bytes()


@pytest.mark.parametrize("damage", ["truncated_half", "truncated_tail", "flipped_byte",
                                    "random_bytes", "empty"])
def test_load_rejects_corrupt_files(model_bytes, tmp_path, damage):
    b = bytearray(model_bytes)
    if damage == "truncated_half":
        b = b[:len(b) // 2]
    elif damage == "truncated_tail":
        b = b[:-10]
    elif damage == "flipped_byte":
        b[len(b) // 2] ^= 0xFF
    elif damage == "random_bytes":
        b = np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes()
    else:
        b = b""
    path = tmp_path / "bad.npz"
    path.write_bytes(bytes(b))
    with pytest.raises(ValueError, match="not a readable mfrec model file"):
        mfrec.Model.load(path)


def tampered(arrays, header_changes=None, **changes):
    out = dict(arrays)
    if header_changes is not None:
        header = json.loads(str(arrays["header"]))
        header.update(header_changes)
        out["header"] = np.array(json.dumps(header))
    for name, value in changes.items():
        if value is None:
            out.pop(name)
        else:
            out[name] = value
    return out


TAMPERS = {
    "nan_factor": (lambda a: tampered(a, user_factors=np.full_like(a["user_factors"], np.nan)),
                   "non-finite"),
    "short_item_factors": (lambda a: tampered(a, item_factors=a["item_factors"][:5]),
                           "factor shapes"),
    "float64_factors": (lambda a: tampered(a, user_factors=a["user_factors"].astype(float)),
                        "dtype float64"),
    "missing_ids": (lambda a: tampered(a, user_ids=None), "'user_ids' is missing"),
    "unsorted_ids": (lambda a: tampered(a, user_ids=a["user_ids"][::-1].copy()), "sorted"),
    "one_bias": (lambda a: tampered(a, item_bias=None), "biases do not match"),
    "seen_out_of_range": (lambda a: tampered(a, seen_indices=a["seen_indices"] + 10**6),
                          "inconsistent"),
    "no_header": (lambda a: tampered(a, header=None), "header"),
    "header_not_json": (lambda a: tampered(a, header=np.array("{oops")), "header"),
    "wrong_format": (lambda a: tampered(a, {"format": "other"}), "wrong format tag"),
    "future_version": (lambda a: tampered(a, {"version": 99}), "unsupported version 99"),
    "unknown_parameter": (lambda a: tampered(a, {"params": {"zzz": 1}}), "unknown parameter"),
    "bad_parameter": (lambda a: tampered(a, {"params": {"factors": -4}}), "factors must be"),
    "unknown_algorithm": (lambda a: tampered(a, {"algorithm": "nope"}), "algorithm must be"),
    "no_mean": (lambda a: tampered(a, {"global_mean": None}), "global_mean"),
    "bad_range": (lambda a: tampered(a, {"rating_range": [5, 1]}), "rating_range"),
    "bad_rating_mean": (lambda a: tampered(a, {"rating_mean": "3.5"}), "rating_mean"),
    "bad_history": (lambda a: tampered(a, {"history": 5}), "history"),
}


@pytest.mark.parametrize("name", TAMPERS)
def test_load_rejects_tampered_files(model_bytes, tmp_path, name):
    src = tmp_path / "good.npz"
    src.write_bytes(model_bytes)
    with np.load(src) as f:
        arrays = {k: f[k] for k in f.files}
    change, match = TAMPERS[name]
    path = tmp_path / "tampered.npz"
    np.savez(path, **change(arrays))
    with pytest.raises(ValueError, match=match):
        mfrec.Model.load(path)


def test_load_rejects_a_plain_npy_file(tmp_path):
    path = tmp_path / "array.npy"
    np.save(path, np.arange(3))
    with pytest.raises(ValueError, match="not an .npz archive"):
        mfrec.Model.load(path)


def test_load_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        mfrec.Model.load(tmp_path / "absent.npz")
