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
    (U.astype(str), I, R, TypeError, "fit: users must hold integer ids, got dtype <U"),
    (U.astype(object), I, R, TypeError, "fit: users must hold integer ids, got dtype object"),
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
    (dict(factors=-1), "factors must be an integer >= 1 and <= 2147483647, got -1"),
    (dict(epochs=2**31), "epochs must be an integer >= 1 and <= 2147483647"),
    (dict(factors=0), "factors must be an integer >= 1"),
    (dict(factors=2.5), "factors must be an integer >= 1"),
    (dict(factors=True), "factors must be an integer >= 1"),
    (dict(learning_rate=-0.01), "learning_rate must be a finite number > 0"),
    (dict(learning_rate=0), "learning_rate must be a finite number > 0"),
    (dict(learning_rate=float("nan")), "learning_rate must be a finite number > 0"),
    (dict(learning_rate="0.01"), "learning_rate must be a finite number > 0"),
    (dict(regularization=-1), "regularization must be a finite number >= 0"),
    (dict(epochs=0), "epochs must be an integer >= 1"),
    (dict(seed=-1), "seed must be an integer >= 0"),
    (dict(n_threads=-2), "n_threads must be an integer >= 0"),
    (dict(biases="yes"), "biases must be True or False"),
    (dict(init="zeros"), r"init must be one of \['normal', 'uniform'\]"),
    (dict(init_scale=-0.1), "init_scale must be a finite number >= 0"),
    (dict(negatives=-1), "negatives must be an integer >= 0 and <= 1000"),
    (dict(negatives=1001), "negatives must be an integer >= 0 and <= 1000"),
    (dict(negatives=1.5), "negatives must be an integer >= 0"),
    (dict(negative_rating=float("nan")), "negative_rating must be a finite number"),
])
def test_bad_parameter_values(params, match):
    with pytest.raises(ValueError, match=match):
        mfrec.Model("sgd", **params)


def test_unknown_parameter_names():
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) \['factor', 'lr'\].*it takes"):
        mfrec.Model("sgd", factor=10, lr=0.1)
    with pytest.raises(ValueError, match="algorithm must be one of"):
        mfrec.Model("no-such-algorithm")
    with pytest.raises(TypeError, match="unknown parameter"):
        small_model().set_params(learning_rat=0.1)


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


def test_factors_beyond_the_matrix_are_refused():
    with pytest.raises(ValueError, match=r"factors=5 is larger .* \(3 users x 3 items\)"):
        mfrec.Model("sgd", factors=5).fit(U, I, R)


def test_unfitted_model_says_so():
    model = small_model()
    for call in (lambda: model.predict([1], [2]), lambda: model.save("x.npz"),
                 lambda: model.n_users):
        with pytest.raises(RuntimeError, match="not fitted yet"):
            call()


def test_predict_rejects_bad_arrays(fitted, data):
    with pytest.raises(TypeError, match="users must hold integer ids"):
        fitted.predict(data.user[:3].astype(float), data.item[:3])
    with pytest.raises(ValueError, match=r"same length \(3 != 2\)"):
        fitted.predict(data.user[:3], data.item[:2])
    with pytest.raises(ValueError, match="score: no ratings"):
        fitted.score([], [], [])
    assert fitted.predict([], []).shape == (0,)


# ---- prediction ------------------------------------------------------------

def test_predict_matches_factors(fitted, data):
    pred = fitted.predict(data.user, data.item, clip=False)
    u = np.searchsorted(fitted.user_ids, data.user)
    i = np.searchsorted(fitted.item_ids, data.item)
    ref = (fitted.global_mean + fitted.user_bias[u] + fitted.item_bias[i]
           + np.einsum("ij,ij->i", fitted.user_factors[u].astype(float),
                       fitted.item_factors[i].astype(float)))
    np.testing.assert_allclose(pred, ref, rtol=1e-5, atol=1e-5)
    clipped = fitted.predict(data.user, data.item)
    lo, hi = data.rating.min(), data.rating.max()
    np.testing.assert_array_equal(clipped, np.clip(pred, lo, hi))


def test_unknown_ids_fall_back_to_the_baseline(fitted):
    known_u, known_i = fitted.user_ids[4], fitted.item_ids[7]
    unknown_u, unknown_i = 123, 456  # never seen in training
    assert unknown_u not in fitted.user_ids and unknown_i not in fitted.item_ids
    pred = fitted.predict([unknown_u, known_u, unknown_u], [known_i, unknown_i, unknown_i],
                          clip=False)
    mu = fitted.global_mean
    np.testing.assert_allclose(pred, [mu + fitted.item_bias[7], mu + fitted.user_bias[4], mu],
                               rtol=1e-6)


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


def test_inputs_are_not_modified(data):
    u, i, r = data.user.copy(), data.item.copy(), data.rating.astype(np.float32)
    vu, vi, vr = u[::7].copy(), i[::7].copy(), r[::7].copy()
    arrays = (u, i, r, vu, vi, vr)
    copies = [a.copy() for a in arrays]
    for a in arrays:
        a.flags.writeable = False  # a write attempt would also raise
    model = small_model().fit(u, i, r, validation=(vu, vi, vr), early_stopping=2)
    model.predict(vu, vi)
    model.score(vu, vi, vr)
    for a, c in zip(arrays, copies):
        assert np.array_equal(a, c)


def test_history_and_fitted_attributes(fitted, data):
    assert [row["epoch"] for row in fitted.history] == [1, 2, 3, 4, 5]
    assert set(fitted.history[0]) == {"epoch", "train_loss", "train_rmse", "seconds"}
    assert fitted.best_iteration_ == 5 and fitted.seed_ == 0
    assert fitted.n_users == len(np.unique(data.user)) == fitted.user_factors.shape[0]
    assert fitted.n_items == len(np.unique(data.item)) == fitted.item_factors.shape[0]
    assert fitted.global_mean == pytest.approx(float(np.mean(data.rating, dtype=float)))
    assert fitted.factors == 4 and fitted.get_params()["algorithm"] == "sgd"
    assert repr(fitted) == "Model('sgd', factors=4, epochs=5, seed=0)"


def test_callback_returning_false_stops(data):
    seen = []
    model = small_model(epochs=50).fit(data, callback=lambda m, row: seen.append(row["epoch"])
                                       or row["epoch"] < 4)
    assert seen == [1, 2, 3, 4] and len(model.history) == 4


def test_verbose_prints_each_epoch(data, capsys):
    small_model(epochs=2).fit(data, verbose=True)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[1].startswith("epoch=2  train_loss=")


# ---- Ctrl-C ------------------------------------------------------------------

def interrupt_at(epoch):
    def callback(model, row):
        if row["epoch"] == epoch:
            raise KeyboardInterrupt
    return callback


def test_ctrl_c_keeps_the_last_complete_epoch(data):
    model = small_model(epochs=50)
    with pytest.warns(RuntimeWarning, match=r"interrupted after 3 iteration\(s\); the model "
                                            r"keeps iteration 3"):
        model.fit(data, callback=interrupt_at(3))
    assert len(model.history) == 3 and model.best_iteration_ == 3
    three = small_model(epochs=3).fit(data)  # same seed, one thread: identical
    assert np.array_equal(model.user_factors, three.user_factors)
    assert np.array_equal(model.item_bias, three.item_bias)
    assert np.isfinite(model.predict(data.user, data.item)).all()


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


def test_ctrl_c_before_any_epoch_propagates(data, monkeypatch):
    def interrupted_step(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(mfrec.algorithms.get_algorithm("sgd"), "step", interrupted_step)
    model = small_model()
    with pytest.raises(KeyboardInterrupt):
        model.fit(data)
    assert not model.is_fitted


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
    proc = subprocess.Popen([sys.executable, "-u", str(script), str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
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

def test_save_load_round_trip(fitted, data, tmp_path):
    path = tmp_path / "model.npz"
    fitted.save(path)
    loaded = mfrec.Model.load(path)
    probe_u = np.r_[data.user[:50], 99]   # 99: an unknown user
    probe_i = np.r_[data.item[:50], data.item[0]]
    np.testing.assert_array_equal(loaded.predict(probe_u, probe_i),
                                  fitted.predict(probe_u, probe_i))
    for name in ("user_factors", "item_factors", "user_bias", "item_bias", "user_ids",
                 "item_ids", "seen_indptr", "seen_indices"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(fitted, name))
    assert loaded.get_params() == fitted.get_params()
    assert loaded.history == fitted.history and loaded.best_iteration_ == 5
    fitted.save(tmp_path / "noext")  # the suffix is added
    assert (tmp_path / "noext.npz").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


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
