"""Property tests over the public entry points (Model, metrics, loaders).

Each draws arbitrary input (see strategies.any_array): every dtype family,
lists, scalars, 2-D, strided and read-only arrays, huge and negative ids,
NaN and infinity, empty and one-element data. The contract: the call works
and agrees with a plain NumPy reference, or it raises a documented exception
whose message names an argument; inputs are never modified. Where the
documented rules say an input is valid, the call must work.
"""
import math
import os
import tempfile
from unittest import mock

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import mfrec
from mfrec import metrics
from mfrec.algorithms import ALGORITHMS, Algorithm
from recipes import recipe_params
from references import reference_predict
from strategies import CASES, any_array, as_int64, as_raw_ids, call, triplets

# A small training set: users 0..5, items 0..7 (ids the strategies hit often).
_rng = np.random.default_rng(7)
_cells = _rng.choice(6 * 8, size=30, replace=False)
TRAIN = mfrec.Ratings(_cells // 8, _cells % 8, _rng.integers(1, 6, 30).astype(np.float32))


def tiny_params(algorithm, **override):
    """The algorithm's recipe (tests/recipes.py) with 2 iterations."""
    cls = ALGORITHMS[algorithm]
    return recipe_params(algorithm, **({cls.iterations_param: 2} if cls.iterations_param else {}),
                         **override)


_fitted = {}
SHM = "/dev/shm" if os.path.isdir("/dev/shm") else None  # no disk flushes for 2,000 saves


def fitted(algorithm, **override):
    """A model fitted on TRAIN (cached: tests only read it)."""
    key = (algorithm, tuple(sorted(override.items())))
    if key not in _fitted:
        _fitted[key] = mfrec.Model(algorithm, **tiny_params(algorithm, **override)).fit(TRAIN)
    return _fitted[key]


FITTED = [(a, {}) for a in sorted(ALGORITHMS)] + [("sgd", {"biases": False})]

threads = st.one_of(st.integers(-2, 3), st.integers(), st.sampled_from([True, 1.5, None, "2"]))


def valid_threads(n):
    return isinstance(n, (int, np.integer)) and not isinstance(n, bool) and 0 <= n <= 256


# ---- predict and score ---------------------------------------------------------
# One test per group of entry points, the model drawn: each entry point gets
# EXAMPLES cases in all (hypothesis costs about 2 ms a case here).

@given(which=st.sampled_from(FITTED), triplet=triplets(),
       clip=st.sampled_from([None, True, False]), n_threads=threads)
@CASES
def test_predict_score(which, triplet, clip, n_threads):
    users, items, ratings = triplet
    model = fitted(which[0], **which[1])
    out, err = call(model.predict, ["users", "items", "n_threads"], users, items,
                    clip=clip, n_threads=n_threads)
    u, i, r = as_int64(users), as_int64(items), _as_ratings(ratings)
    valid = u is not None and i is not None and len(u) == len(i)
    assert (err is None) == (valid and valid_threads(n_threads)), err
    if err is None:
        assert out.dtype == np.float32 and out.shape == u.shape
        if clip is None:
            clip = model._solver.clip_predictions
        np.testing.assert_allclose(out, reference_predict(model, u, i, clip),
                                   rtol=1e-5, atol=1e-5)

    out, err = call(model.score, ["users", "items", "ratings"], users, items, ratings)
    valid = valid and r is not None and len(u) == len(r) > 0
    assert (err is None) == valid, err
    if valid:
        e = reference_predict(model, u, i, model._solver.clip_predictions) - r
        assert out["rmse"] == pytest.approx(math.sqrt(np.mean(e ** 2)), rel=1e-5, abs=1e-6)
        assert out["mae"] == pytest.approx(np.mean(np.abs(e)), rel=1e-5, abs=1e-6)


# ---- top-N -----------------------------------------------------------------------

def _allowed(x, ids):
    """x as known raw ids, or None if the documented rules refuse it."""
    a = as_int64(x)
    return a if a is not None and np.isin(a, ids).all() else None


def _valid_n(n):
    return isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1


def check_top_lists(ids, scores, single, n_rows, width, score_of, allowed_of):
    """Lists as documented, and a true top-n: each row's scores are the
    reference scores of its ids, best first, no allowed item left out scores
    higher than the last one kept (float32 sums: tolerance)."""
    if single:
        assert ids.ndim == 1 and len(ids) <= width and scores.shape == ids.shape
        ids, scores = ids[None], scores[None]
    else:
        assert ids.shape == scores.shape == (n_rows, width)
    for row in range(ids.shape[0]):
        keep = ids[row] != -1
        got, got_scores = ids[row][keep], scores[row][keep]
        assert np.isnan(scores[row][~keep]).all() and not keep[np.argmin(keep):].any() \
            if not keep.all() else True
        allowed, reference = allowed_of(row), score_of(row)
        assert len(set(got.tolist())) == len(got) and np.isin(got, allowed).all()
        assert len(got) == min(width, len(allowed))
        np.testing.assert_allclose(got_scores, [reference[g] for g in got.tolist()],
                                   rtol=1e-4, atol=1e-4)
        assert (np.diff(got_scores) <= 1e-6).all()
        left = [reference[a] for a in allowed.tolist() if a not in set(got.tolist())]
        if left and len(got):
            assert max(left) <= got_scores[-1] + 1e-4


ids_or_scalar = st.one_of(any_array(), st.integers(-3, 9), st.sampled_from([2**70, "1", None]))
top_n = st.one_of(st.integers(-1, 12), st.sampled_from([True, 2.0, None, 2**70, np.int64(3)]))
maybe_ids = st.one_of(st.none(), any_array())
threads_or_none = st.one_of(st.none(), threads)


@given(which=st.sampled_from(FITTED), users=ids_or_scalar, n=top_n,
       exclude_seen=st.sampled_from([True, False]), items=maybe_ids, exclude=maybe_ids,
       n_threads=threads_or_none)
@CASES
def test_recommend(which, users, n, exclude_seen, items, exclude, n_threads):
    model = fitted(which[0], **which[1])
    names = ["users", "n", "items", "exclude", "n_threads"]
    out, err = call(model.recommend, names, users, n=n, exclude_seen=exclude_seen,
                    items=items, exclude=exclude, n_threads=n_threads)
    u = _allowed(users, model.user_ids)
    pool = model.item_ids if items is None else _allowed(items, model.item_ids)
    drop = np.zeros(0, np.int64) if exclude is None else _allowed(exclude, model.item_ids)
    valid = u is not None and pool is not None and drop is not None and _valid_n(n) and \
        (n_threads is None or valid_threads(n_threads))
    assert (err is None) == valid, err
    if not valid:
        return
    pool = np.setdiff1d(np.unique(pool), drop)
    seen = {a: TRAIN.item[TRAIN.user == a] for a in np.unique(TRAIN.user).tolist()}

    def score_of(row):
        everything = model.item_ids
        s = reference_predict(model, np.full(len(everything), u[row]), everything, False)
        return dict(zip(everything.tolist(), s))

    def allowed_of(row):
        return np.setdiff1d(pool, seen[u[row]]) if exclude_seen else pool

    ids, scores = out
    check_top_lists(ids, scores, np.ndim(users) == 0, len(u), min(n, len(pool)), score_of,
                    allowed_of)
    everyone, _ = model.recommend_all(n=n, exclude_seen=exclude_seen, items=items,
                                      exclude=exclude, n_threads=n_threads)
    rows = np.searchsorted(model.user_ids, u)
    np.testing.assert_array_equal(everyone[rows], ids if ids.ndim == 2 else
                                  np.r_[ids, np.full(everyone.shape[1] - len(ids), -1)][None])


@given(which=st.sampled_from(FITTED), query=ids_or_scalar, n=top_n, candidates=maybe_ids,
       n_threads=threads_or_none)
@CASES
def test_similar(which, query, n, candidates, n_threads):
    """similar_items and similar_users: cosine of the factors."""
    for kind in ("item", "user"):
        check_similar(fitted(which[0], **which[1]), kind, query, n, candidates, n_threads)


def check_similar(model, kind, query, n, candidates, n_threads):
    method = model.similar_items if kind == "item" else model.similar_users
    ids, factors = ((model.item_ids, model.item_factors) if kind == "item"
                    else (model.user_ids, model.user_factors))
    names = [kind, kind + "s", "n", "n_threads"]
    out, err = call(method, names, query, n, candidates, n_threads=n_threads)
    q = _allowed(query, ids)
    pool = ids if candidates is None else _allowed(candidates, ids)
    valid = q is not None and pool is not None and _valid_n(n) and \
        (n_threads is None or valid_threads(n_threads))
    assert (err is None) == valid, err
    if not valid:
        return
    pool = np.unique(pool)
    norms = np.linalg.norm(factors.astype(float), axis=1)
    unit = factors / np.where(norms > 0, norms, 1)[:, None]
    where = {x: j for j, x in enumerate(ids.tolist())}

    def score_of(row):
        return dict(zip(ids.tolist(), unit @ unit[where[q[row]]]))

    width = min(n, len(ids) - 1 if candidates is None else len(pool))
    check_top_lists(*out, np.ndim(query) == 0, len(q), width, score_of,
                    lambda row: pool[pool != q[row]])


@given(which=st.sampled_from(FITTED), triplet=triplets(), n=top_n,
       regularization=st.one_of(st.none(), st.floats(), st.sampled_from([0.5, 0, -1, "x"])))
@CASES
def test_fold_in_and_recommend_new_user(which, triplet, n, regularization):
    """fold_in against a ridge regression in float64; recommend_new_user
    ranks every unrated item by the folded-in user's scores."""
    model = fitted(which[0], **which[1])
    _, items, ratings = triplet
    names = ["items", "ratings", "regularization", "n"]
    out, err = call(model.fold_in, names, items, ratings, regularization=regularization)
    i, r = _allowed(items, model.item_ids), _as_ratings(ratings)
    lam_ok = regularization is None or (
        isinstance(regularization, (int, float)) and not isinstance(regularization, bool)
        and np.isfinite(regularization) and regularization > 0)
    valid = i is not None and r is not None and len(i) == len(r) > 0 and \
        len(np.unique(i)) == len(i) and lam_ok
    if valid and regularization is None:
        lam = model._solver.fold_in_regularization(len(r))
        valid = lam > 0
    if valid and isinstance(err, np.linalg.LinAlgError):  # numerically, with a tiny
        assert regularization is not None and regularization < 1e-3  # lambda: named
        return
    # ALS-family models fold in by their own half-step (checked against NumPy
    # in test_als.py), in float32: a lambda beyond float32's range is refused.
    own_fold_in = type(model._solver).fold_in is not Algorithm.fold_in
    if own_fold_in and valid and err is not None and regularization is not None \
            and regularization > 1e30:
        assert "regularization" in str(err)
        return
    assert (err is None) == valid, err
    if not valid:
        return
    x, b = out
    biased = model.user_bias is not None
    assert (b is None) == (not biased)
    if own_fold_in:
        assert np.isfinite(x).all()
    else:
        lam = model._solver.fold_in_regularization(len(r)) if regularization is None \
            else regularization
        j = np.searchsorted(model.item_ids, i)
        Q = model.item_factors[j].astype(float)
        target = r - model.global_mean
        if biased:
            target = target - model.item_bias[j]
            Q = np.c_[Q, np.ones(len(j))]
        gram = Q.T @ Q + lam * np.eye(Q.shape[1])
        try:
            want = np.linalg.solve(gram, Q.T @ target)
        except np.linalg.LinAlgError:  # a vanishing lambda: no reference to compare
            return
        got = (np.r_[x, b] if biased else x).astype(float)

        def objective(z):
            return np.sum((Q @ z - target) ** 2) + lam * np.sum(z ** 2)

        # the minimum, up to x's rounding to float32; and the minimizer where a
        # vanishing lambda leaves it defined
        rounding = np.linalg.norm((np.abs(Q) @ np.abs(got)) * 2.0 ** -22)
        best = objective(want)
        assert objective(got) <= best * (1 + 1e-4) + (2 * np.sqrt(best) + rounding) * rounding \
            + 1e-4
        if np.linalg.cond(gram) < 1e4:
            np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)

    out, err = call(model.recommend_new_user, names, items, ratings, n=n,
                    regularization=regularization)
    assert (err is None) == _valid_n(n), err
    if err is None:
        scores = model.global_mean + (b + model.item_bias if biased else 0) + \
            model.item_factors.astype(float) @ x
        check_top_lists(*out, True, 1, min(n, len(model.item_ids)),
                        lambda row: dict(zip(model.item_ids.tolist(), scores)),
                        lambda row: np.setdiff1d(model.item_ids, i))


def reference_ranking(rec, relevant, n_items):
    """precision, recall, ndcg, ap, hit per user (NaN without relevant items)."""
    out = np.full((len(rec), 5), np.nan)
    k = rec.shape[1]
    for u, (row, rel) in enumerate(zip(rec, relevant)):
        rel = set(np.asarray(rel).ravel().tolist())
        if not rel:
            continue
        hits = [t for t in range(k) if row[t] >= 0 and row[t] in rel]
        dcg = sum(1 / np.log2(t + 2) for t in hits)
        ideal = sum(1 / np.log2(t + 2) for t in range(min(k, len(rel))))
        ap = sum((j + 1) / (t + 1) for j, t in enumerate(hits)) / min(k, len(rel))
        out[u] = (len(hits) / k, len(hits) / len(rel), dcg / ideal, ap, float(bool(hits)))
    return out


@given(data=st.data(), n_items=st.one_of(st.integers(0, 9), st.sampled_from([-1, 2**40, 2.5])),
       n_threads=threads)
@CASES
def test_ranking_metrics(data, n_items, n_threads):
    n_users, k = data.draw(st.integers(0, 4)), data.draw(st.integers(0, 4))
    rec = data.draw(st.one_of(
        st.lists(st.lists(st.integers(-1, 9), min_size=k, max_size=k), min_size=n_users,
                 max_size=n_users).map(lambda x: np.array(x, np.int64).reshape(n_users, k)),
        any_array()))
    relevant = data.draw(st.lists(st.one_of(
        st.lists(st.integers(-1, 12), max_size=4, unique=True), any_array()),
        min_size=n_users, max_size=n_users + 1))
    out, err = call(metrics.ranking_metrics, ["recommended", "relevant", "n_items", "n_threads"],
                    rec, relevant, n_items, n_threads=n_threads)
    if err is not None:
        return
    valid_rec = np.asarray(rec)
    valid_rec = valid_rec if valid_rec.size else np.zeros(valid_rec.shape, np.int64)
    assert valid_rec.ndim == 2 and ((valid_rec >= -1) & (valid_rec < max(n_items, 0))).all()
    per_user = np.stack([out["per_user"][c] for c in ("precision", "recall", "ndcg", "ap",
                                                      "hit")], axis=1)
    np.testing.assert_allclose(per_user, reference_ranking(valid_rec, relevant, n_items),
                               rtol=1e-6, atol=1e-9)
    shown = np.unique(valid_rec[valid_rec >= 0])
    assert out["coverage"] == pytest.approx(len(shown) / n_items if n_items else 0.0) or \
        np.isnan(out["coverage"])


@given(which=st.sampled_from(FITTED), test=st.one_of(triplets(), st.just(TRAIN)),
       k=top_n, threshold=st.one_of(st.floats(), st.integers(0, 5), st.sampled_from(["4", None])),
       candidates=st.sampled_from(["all", "test", "x"]), n_threads=threads_or_none)
@CASES
def test_evaluate(which, test, k, threshold, candidates, n_threads):
    model = fitted(which[0], **which[1])
    out, err = call(metrics.evaluate, ["test", "users", "items", "ratings", "k", "threshold",
                                       "candidates", "n_threads"],
                    model, test, k=k, threshold=threshold, candidates=candidates,
                    n_threads=n_threads)
    if err is None:
        for name in ("precision", "recall", "ndcg", "map", "hit_rate", "coverage"):
            assert np.isnan(out[name]) or 0 <= out[name] <= 1 + 1e-9, (name, out[name])
        assert out["rmse"] >= out["mae"] >= 0


def _as_ratings(x):
    """x as finite float32 ratings if the documented conversion accepts it."""
    a = np.asarray(x)
    if a.ndim > 1 or np.iscomplexobj(a) or not (a.dtype.kind in "biuf" or a.size == 0):
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        r = a.reshape(-1).astype(np.float32)
    return r if np.isfinite(r).all() else None


# ---- fit -------------------------------------------------------------------------

algorithms = st.sampled_from(sorted(ALGORITHMS))


@given(algorithm=algorithms, triplet=triplets(), k=st.integers(1, 8))
@CASES
def test_fit_arrays(algorithm, triplet, k):
    """Arbitrary triplets, k from 1 to beyond the matrix; a fit that works
    depends only on the values, not on the dtype or layout they came in."""
    users, items, ratings = triplet
    params = tiny_params(algorithm, factors=k)
    k = params.get("factors", 1)
    names = ["users", "items", "ratings", *params]
    model, err = call(mfrec.Model(algorithm, **params).fit, names, users, items, ratings)
    u, i, r = as_raw_ids(users), as_raw_ids(items), _as_ratings(ratings)
    valid = u is not None and i is not None and r is not None and \
        len(u) == len(i) == len(r) > 0 and \
        len(set(zip(u.tolist(), i.tolist()))) == len(u) and \
        k <= min(len(np.unique(u)), len(np.unique(i)))
    if not valid:
        assert err is not None
        return
    if err is not None:  # an algorithm's own rule (e.g. divergence): named
        assert isinstance(err, (ValueError, FloatingPointError)), err
        return
    np.testing.assert_array_equal(model.user_ids, np.unique(u))
    np.testing.assert_array_equal(model.item_ids, np.unique(i))
    assert np.isfinite(model.predict(u, i, clip=False)).all()
    plain = mfrec.Model(algorithm, **params).fit(u, i, r)
    for name in ("user_factors", "item_factors", "user_bias", "item_bias"):
        np.testing.assert_array_equal(getattr(model, name), getattr(plain, name))
    for name in ("user_factors", "item_factors", "user_bias", "item_bias", "seen_indptr",
                 "seen_indices"):  # the model's state is its own: read-only
        a = getattr(model, name)
        if a is not None:
            with pytest.raises(ValueError):
                a.flags.writeable = True


params_values = st.one_of(st.integers(-3, 6), st.integers(), st.floats(),
                          st.sampled_from([None, True, False, "normal", "uniform", "x",
                                           [1], 1e-50, 1e300, 1.5]))


@given(algorithm=algorithms, data=st.data())
@CASES
def test_model_params(algorithm, data):
    """Model(algorithm, **params) then fit: arbitrary values of its parameters."""
    cls = ALGORITHMS[algorithm]
    names = sorted(cls.defaults)
    params = data.draw(st.dictionaries(st.sampled_from(names + ["bogus"]), params_values,
                                       max_size=4))
    name = data.draw(st.sampled_from([algorithm] * 4 + ["nope", None, 3]))
    if cls.iterations_param:  # keep fits short
        n = params.get(cls.iterations_param, 3)
        params[cls.iterations_param] = min(n, 3) if isinstance(n, int) else n
    if isinstance(params.get("factors"), int) and params["factors"] > 1000:
        params["factors"] = 1000  # larger than the data: rejected all the same
    model, err = call(mfrec.Model, ["algorithm", "bogus", *names], name, **params)
    if err is not None:
        return
    fitted_model, err = call(model.fit, names, TRAIN)
    if err is None:
        assert np.isfinite(fitted_model.user_factors).all()
        assert 1 <= len(fitted_model.history) <= 3


@given(validation=st.one_of(st.none(), st.just(TRAIN), st.integers(), triplets(3)),
       early_stopping=st.one_of(st.none(), st.integers(-1, 3), st.sampled_from([True, 1.5, "2"])),
       callback=st.sampled_from([None, 3, lambda m, row: None, lambda m, row: False]))
@CASES
def test_fit_keywords(validation, early_stopping, callback):
    names = ["validation", "early_stopping", "callback", "users", "items", "ratings"]
    model = mfrec.Model("sgd", **tiny_params("sgd"))
    out, err = call(model.fit, names, TRAIN, validation=validation,
                    early_stopping=early_stopping, callback=callback)
    if err is None:
        assert 1 <= len(out.history) <= 2
        if validation is not None:
            assert all("valid_rmse" in row for row in out.history)


@st.composite
def feature_matrix(draw):
    """A features matrix (dense or sparse, any dtype, some junk) and ids."""
    rows, cols = draw(st.integers(0, 9)), draw(st.integers(0, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["dense", "dense", "sparse", "bool", "nan", "1d", "junk"]))
    x = (rng.random((rows, cols)) < 0.5).astype(np.float32)
    if kind == "sparse":
        import scipy.sparse
        x = scipy.sparse.csr_matrix(x)
    elif kind == "bool":
        x = x.astype(bool)
    elif kind == "nan" and x.size:
        x[0, 0] = np.nan
    elif kind == "1d":
        x = x.ravel()
    elif kind == "junk":
        x = draw(any_array())
    ids = draw(st.one_of(any_array(rows), st.just(np.arange(rows) - 1),
                         st.just(np.arange(rows) + 3), st.none()))
    return x, ids


@given(algorithm=algorithms, items=st.one_of(st.none(), feature_matrix()),
       users=st.one_of(st.none(), feature_matrix()))
@CASES
def test_fit_features(algorithm, items, users):
    """Side features for items and users: arbitrary matrices and ids."""
    kwargs = {}
    if items is not None:
        kwargs.update(item_features=items[0], item_feature_ids=items[1])
    if users is not None:
        kwargs.update(user_features=users[0], user_feature_ids=users[1])
    model = mfrec.Model(algorithm, **tiny_params(algorithm, factors=2))
    names = ["item_features", "item_feature_ids", "user_features", "user_feature_ids",
             "features", algorithm]
    out, err = call(model.fit, names, TRAIN, **kwargs)
    if err is None:  # usable, and saved and loaded with its features
        pred = out.predict(TRAIN.user, TRAIN.item)
        assert np.isfinite(pred).all() and np.isin(TRAIN.item, out.item_ids).all()
        ids, _ = out.recommend(TRAIN.user[0], n=3)
        assert np.isin(ids, out.item_ids).all() and len(ids) <= 3
        with tempfile.TemporaryDirectory(dir=SHM) as folder:
            out.save(os.path.join(folder, "m.npz"))
            loaded = mfrec.Model.load(os.path.join(folder, "m.npz"))
        np.testing.assert_array_equal(loaded.predict(TRAIN.user, TRAIN.item), pred)


# ---- save / load -----------------------------------------------------------------

@given(algorithm=algorithms, data=st.data(),
       name=st.text(st.characters(blacklist_characters="/\0", blacklist_categories=("Cs",)),
                    min_size=1, max_size=12))
@CASES
def test_save_load(algorithm, data, name):
    """Models fitted on arbitrary valid data (ids anywhere in int64), saved
    under arbitrary file names, load back to identical predictions."""
    n = data.draw(st.integers(1, 6))
    u = as_int64(data.draw(any_array(n, kinds=("int",), small=(-2**63, 2**63 - 1))))
    i = as_int64(data.draw(any_array(n, kinds=("int",))))
    assume(u is not None and i is not None and len(u) == len(i) == n)
    assume(len(np.unique(np.stack([u, i]), axis=1).T) == n)
    r = np.random.default_rng(data.draw(st.integers(0, 99))).uniform(1, 5, n)
    model = mfrec.Model(algorithm, **tiny_params(algorithm, factors=1))
    try:
        model.fit(u, i, r)
    except (ValueError, FloatingPointError):
        return
    with tempfile.TemporaryDirectory(dir=SHM) as folder:
        path = os.path.join(folder, name)
        try:
            model.save(path)
        except OSError:  # a name the file system refuses (too long, "." ...)
            assert os.listdir(folder) == []
            return
        full = path if path.endswith(".npz") else path + ".npz"
        assert os.listdir(folder) == [os.path.basename(full)]  # no temporary file left
        loaded, err = call(mfrec.Model.load, ["path", full], full)
        assert err is None, err
    np.testing.assert_array_equal(loaded.predict(u, i), model.predict(u, i))
    assert loaded.get_params() == model.get_params()
    assert loaded.history == model.history


PARAM_VALUES = st.one_of(st.integers(-2, 5), st.floats(allow_nan=True), st.booleans(),
                         st.none(), st.sampled_from(["normal", "mean", "x", 10**30]))


@given(algorithm=algorithms, data=st.data())
@CASES
def test_set_params(algorithm, data):
    """set_params sets all the parameters given or none (ValueError /
    TypeError); a fitted model keeps its fitted state, and saves and
    loads as fitted, whatever the parameters say."""
    fitted_model = fitted(algorithm)
    model = mfrec.Model(algorithm, **tiny_params(algorithm))
    for name in ("user_ids", "item_ids", "seen_indptr", "seen_indices", "rating_range_",
                 "rating_mean_", "history", "best_iteration_", "seed_", "_solver") + \
            ("user_factors", "item_factors", "user_bias", "item_bias", "global_mean"):
        setattr(model, name, getattr(fitted_model, name))
    model._fitted_algorithm, model._fitted_params = fitted_model.algorithm, fitted_model._params
    names = sorted(mfrec.Model.defaults(algorithm)) + ["algorithm", "nope"]
    change = data.draw(st.dictionaries(st.sampled_from(names), PARAM_VALUES, max_size=3))
    before = model.get_params()
    pred = model.predict(TRAIN.user, TRAIN.item)
    try:
        model.set_params(**change)
    except (ValueError, TypeError) as e:
        assert any(name in str(e) for name in change), e
        assert model.get_params() == before
    else:
        if change.get("algorithm", algorithm) == algorithm:
            assert model.get_params() == {**before, **change}
    np.testing.assert_array_equal(model.predict(TRAIN.user, TRAIN.item), pred)
    with tempfile.TemporaryDirectory(dir=SHM) as folder:
        loaded = mfrec.Model.load(model.save(os.path.join(folder, "m")))
    assert loaded.get_params() == fitted_model.get_params()
    np.testing.assert_array_equal(loaded.predict(TRAIN.user, TRAIN.item), pred)


@given(path=st.one_of(st.text(max_size=5), st.integers(), st.none(), st.binary(max_size=5)))
@CASES
def test_load_path(path):
    try:
        call(mfrec.Model.load, ["path", str(path)], path)
    except OSError:  # no such file: the file system's own error
        pass


# ---- metrics -----------------------------------------------------------------------

@given(triplets())
@CASES
def test_metrics(triplet):
    """rmse and mae against NumPy (float64 sums of the float32 values)."""
    _, pred, truth = triplet
    p, t = _as_ratings(pred), _as_ratings(truth)
    valid = p is not None and t is not None and len(p) == len(t) > 0
    e = p.astype(float) - t if valid else None
    for fn, want in ((metrics.rmse, lambda: math.sqrt(np.mean(e ** 2))),
                     (metrics.mae, lambda: np.mean(np.abs(e)))):
        out, err = call(fn, ["predictions", "truth"], pred, truth)
        assert (err is None) == valid, err
        if valid:
            assert out == pytest.approx(want(), rel=1e-6, abs=1e-12)


# ---- data: Ratings, splits, loaders, the synthetic generator ---------------------------

@given(triplets(), st.one_of(st.none(), any_array()))
@CASES
def test_ratings(triplet, timestamp):
    out, err = call(mfrec.Ratings, ["user", "item", "rating", "timestamp"], *triplet, timestamp)
    if err is None:
        assert len(out.user) == len(out.item) == len(out.rating) == len(out)
        assert out.user.dtype == np.int64 or out.user.dtype.kind in "US"  # string ids
        assert out.rating.dtype == np.float32


@given(ratings=st.one_of(st.integers(0, 40).map(lambda n: TRAIN[:n]), st.just([1, 2])),
       test_size=st.one_of(st.floats(), st.integers(-1, 2), st.sampled_from([None, "x"])),
       seed=st.one_of(st.none(), st.integers(), st.floats(), st.sampled_from(["s", [1]])),
       by=st.sampled_from(["random", "user", "item", None]))
@CASES
def test_train_test_split(ratings, test_size, seed, by):
    out, err = call(mfrec.train_test_split, ["ratings", "test_size", "seed", "by"],
                    ratings, test_size=test_size, seed=seed, by=by)
    if err is None:
        train, test = out
        assert len(train) + len(test) == len(ratings) and len(train) >= 1
        assert len(test) >= 1 or by == "user"  # by user: every user keeps one rating
        both = np.concatenate([np.stack([r.user, r.item]) for r in out], axis=1)
        assert len(np.unique(both, axis=1).T) == len(ratings)  # a partition
        if by == "user":
            assert np.isin(test.user, train.user).all()


@given(n_splits=st.one_of(st.integers(-1, 6), st.sampled_from([True, 2.0, None])),
       shuffle=st.sampled_from([True, False, 1, None]),
       seed=st.one_of(st.none(), st.integers(-1, 3), st.sampled_from(["s"])),
       size=st.integers(0, 30),
       metrics=st.sampled_from([("rmse", "mae"), ("ndcg@3",), ("rmse", "x"), (), "rmse"]))
@CASES
def test_kfold_cross_validate(n_splits, shuffle, seed, size, metrics):
    """KFold (each rating tested once) and cross_validate with it."""
    names = ["n_splits", "shuffle", "seed", "cv", "metrics", "data", "ratings", "folds"]
    cv, err = call(mfrec.model_selection.KFold, names, n_splits, shuffle=shuffle, seed=seed)
    if err is not None:
        return
    folds, err = call(lambda: list(cv.split(TRAIN[:size])), names)
    if err is None:
        assert len(folds) == n_splits
        tested = np.concatenate([test.user * 100 + test.item for _, test in folds])
        assert len(tested) == size and len(np.unique(tested)) == size
    model = mfrec.Model("sgd", **tiny_params("sgd", factors=1))
    out, err2 = call(mfrec.model_selection.cross_validate, names, model, TRAIN[:size], cv=cv,
                     metrics=metrics)
    if err2 is None:
        assert err is None and len(out["folds"]) == n_splits


@given(kwargs=st.dictionaries(
    st.sampled_from(["n_users", "n_items", "rank", "density", "noise", "global_mean", "seed"]),
    st.one_of(st.integers(-2, 30), st.floats(-1, 2), st.floats(), st.none(),
              st.sampled_from(["x", True])), max_size=4))
@CASES
def test_make_low_rank(kwargs):
    names = ["n_users", "n_items", "rank", "density", "noise", "global_mean", "seed"]
    out, err = call(mfrec.make_low_rank, names, **{"n_users": 12, "n_items": 10, **kwargs})
    if err is None:
        assert np.isfinite(out.ratings.rating).all()
        assert len(np.unique(np.stack([out.ratings.user, out.ratings.item]), axis=1).T) \
            == len(out.ratings)


def _tiny_100k(folder):
    """A minimal well-formed ml-100k folder (3 ratings, 2 movies)."""
    os.makedirs(os.path.join(folder, "ml-100k"))
    files = {"u.data": "1\t1\t5\t881250949\n1\t2\t3\t881250950\n2\t1\t4\t881250951\n",
             "u.genre": "unknown|0\nAction|1\n\n",
             "u.item": "1|Toy Story (1995)|01-Jan-1995||http://x|0|1\n"
                       "2|GoldenEye (1995)|01-Jan-1995||http://y|1|0\n"}
    for name, text in files.items():
        with open(os.path.join(folder, "ml-100k", name), "w", encoding="latin-1") as f:
            f.write(text)


@given(name=st.one_of(st.sampled_from(["100k", "latest-small", "1m", ""]), st.text(max_size=4),
                      st.integers(), st.none()),
       where=st.sampled_from(["tiny", "empty", "missing", None, 3, b"bytes"]))
@CASES
def test_load_movielens(name, where):
    """The loader's arguments (the file contents are fuzzed in test_fuzz.py)."""
    with tempfile.TemporaryDirectory() as tmp:
        data_home = {"tiny": tmp, "empty": tmp, "missing": os.path.join(tmp, "no")}.get(where, where)
        if where == "tiny":
            _tiny_100k(tmp)
        env = {"MFREC_DATA": "", "XDG_CACHE_HOME": os.path.join(tmp, "cache")}
        with mock.patch.dict(os.environ, env):
            try:
                out, err = call(mfrec.load_movielens, ["name", "data_home"], name,
                                data_home=data_home, download=False)
            except FileNotFoundError as e:
                assert "download=False" in str(e)
                return
        if err is None:
            assert name == "100k" and where == "tiny"
            assert len(out.ratings) == 3 and out.title(2) == "GoldenEye (1995)"
