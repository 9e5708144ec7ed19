"""One contract, every algorithm: what Model promises whichever algorithm
fits it, checked over every entry of tests/recipes.py (one per registered
algorithm, each with small fast settings and its own promises).

The algorithm-specific tests (math against NumPy references, accuracy
bands, gradients) stay in test_<algorithm>.py; what every algorithm must do
lives here only. Data: small synthetic ratings with raw ids that are
neither contiguous nor small, on a 1..5 scale.
"""
import numpy as np
import pytest

import mfrec
from mfrec.algorithms import ALGORITHMS
from mfrec._modelfile import CORE_ARRAYS
from recipes import RECIPES, iterations, recipe_params
from references import full_scores, rank, reference_predict, reference_recommend

SCORE_TOL = 1e-5


def _ratings(n_users, n_items, density, seed):
    d = mfrec.make_low_rank(n_users, n_items, rank=3, density=density, noise=0.3,
                            seed=seed).ratings
    return mfrec.Ratings(d.user * 7 + 10**12, d.item * 3 - 50,
                         np.clip(np.round(d.rating), 1, 5).astype(np.float32))


TRAIN = _ratings(60, 40, 0.3, seed=5)
#: more users and items than one block of rows per thread (256 in csrc/core/nmf.c, svd.c)
WIDE = _ratings(300, 260, 0.08, seed=2)
UNKNOWN_USER, UNKNOWN_ITEM = 123, 456   # never seen in training


def fit(name, data=TRAIN, **override):
    return mfrec.Model(name, **recipe_params(name, **override)).fit(data)


@pytest.fixture(scope="module", params=sorted(RECIPES))
def name(request):
    return request.param


@pytest.fixture(scope="module", params=[n for n in sorted(RECIPES) if
                                        getattr(ALGORITHMS.get(n), "iterations_param", None)])
def iterative(request):
    return request.param


@pytest.fixture(scope="module")
def fitted(name):
    """The recipe fitted on TRAIN, shared: tests only read it."""
    return fit(name)


def state(model):
    """Everything a fit decides: arrays, ids, mean, history (less timings),
    the solver's own arrays."""
    out = {n: getattr(model, n) for n in CORE_ARRAYS + ("user_ids", "item_ids", "seen_indptr",
                                                       "seen_indices")}
    out.update(("extra_" + k, v) for k, v in model._solver.extra_arrays().items())
    out["global_mean"] = model.global_mean
    out["history"] = [{k: v for k, v in row.items() if k != "seconds"} for row in model.history]
    return out


def differences(a, b) -> list:
    """The parts of state() in which two fitted models differ ([]: none)."""
    sa, sb = state(a), state(b)
    out = sorted(sa.keys() ^ sb.keys())
    for k in sa.keys() & sb.keys():
        x, y = sa[k], sb[k]
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            same = x is not None and y is not None and np.array_equal(x, y)
        else:
            same = x == y
        if not same:
            out.append(k)
    return sorted(out)


def probe(model):
    """Known pairs, and pairs with an unknown user, item or both."""
    users = np.r_[TRAIN.user[:40], UNKNOWN_USER, model.user_ids[3], UNKNOWN_USER]
    items = np.r_[TRAIN.item[:40], model.item_ids[7], UNKNOWN_ITEM, UNKNOWN_ITEM]
    return users, items


def ratings_of(user):
    mine = TRAIN.user == user
    return TRAIN.item[mine], TRAIN.rating[mine]


def fold_in_kwargs(name):
    return {"regularization": 1.0} if RECIPES[name].fold_in_needs_regularization else {}


# ---- the table itself -------------------------------------------------------------

def test_every_algorithm_has_a_recipe():
    assert sorted(RECIPES) == sorted(ALGORITHMS), \
        "each registered algorithm needs its entry in tests/recipes.py"
    for name, recipe in RECIPES.items():
        unknown = set(recipe.params) - set(ALGORITHMS[name].defaults)
        assert not unknown, f"{name}: the recipe names parameters it does not take: {unknown}"
        assert recipe.params.get("seed") is not None, f"{name}: the recipe needs a seed"


# ---- fit -----------------------------------------------------------------------------

def test_fit_returns_self_and_its_fitted_attributes(name):
    model = mfrec.Model(name, **recipe_params(name))
    assert not model.is_fitted
    assert model.fit(TRAIN) is model and model.is_fitted
    np.testing.assert_array_equal(model.user_ids, np.unique(TRAIN.user))
    np.testing.assert_array_equal(model.item_ids, np.unique(TRAIN.item))
    assert model.n_users == len(model.user_ids) and model.n_items == len(model.item_ids)
    P, Q = model.user_factors, model.item_factors
    assert P.dtype == Q.dtype == np.float32 and P.shape[1] == Q.shape[1]
    assert P.shape[0] == model.n_users and Q.shape[0] == model.n_items
    k = model.get_params().get("factors", P.shape[1])
    if ALGORITHMS[name].stacked_factors:  # one block of k per kept sample
        assert P.shape[1] % k == 0 and P.shape[1] >= k
    else:
        assert P.shape[1] == k
    assert (model.user_bias is None) == (model.item_bias is None)
    if model.user_bias is not None:
        assert model.user_bias.shape == (model.n_users,) and model.user_bias.dtype == np.float32
        assert model.item_bias.shape == (model.n_items,) and model.item_bias.dtype == np.float32
    assert np.isfinite(P).all() and np.isfinite(Q).all() and np.isfinite(model.global_mean)
    mean = float(np.mean(TRAIN.rating, dtype=np.float64))
    assert model.rating_mean_ == pytest.approx(mean)
    if RECIPES[name].fixed_global_mean:
        assert model.global_mean in (0.0, model.rating_mean_)
    else:  # the posterior mean of the sampled mean: within the ratings' range
        assert TRAIN.rating.min() <= model.global_mean <= TRAIN.rating.max()
    n = iterations(name)
    assert [row["epoch"] for row in model.history] == list(range(1, n + 1))
    # an iteration reports its training loss; a closed form has none
    keys = {"epoch", "train_rmse", "seconds"} | \
        ({"train_loss"} if ALGORITHMS[name].iterations_param else set())
    for row in model.history:
        assert set(row) == keys
        assert np.isfinite(row["train_rmse"]) and row["seconds"] >= 0
    assert model.best_iteration_ == n and model.seed_ == RECIPES[name].params["seed"]
    assert model.rating_range_ == (TRAIN.rating.min(), TRAIN.rating.max())


def test_unfitted_model_says_so(name):
    model = mfrec.Model(name, **recipe_params(name))
    for call in (lambda: model.predict([1], [2]), lambda: model.save("x.npz"),
                 lambda: model.n_users, lambda: model.recommend(1), lambda: model.recommend_all(),
                 lambda: model.similar_items(1), lambda: model.recommend_new_user([1], [4]),
                 lambda: model.fold_in([1], [4.0], regularization=1.0)):
        with pytest.raises(RuntimeError, match="not fitted yet"):
            call()


def test_factors_beyond_the_matrix_are_refused(name):
    u, i, r = [1, 2, 3, 1, 2, 3], [10, 20, 30, 20, 30, 10], [1.0, 2.0, 3.0, 4.0, 5.0, 3.0]
    if "factors" not in ALGORITHMS[name].defaults:  # no factors to refuse: any data fits
        assert mfrec.Model(name).fit(u, i, r).n_items == 3
        return
    with pytest.raises(ValueError, match=r"factors=5 is larger .* \(3 users x 3 items\)"):
        mfrec.Model(name, **recipe_params(name, factors=5)).fit(u, i, r)


def test_same_seed_same_fit(name):
    first = fit(name)
    assert differences(first, fit(name)) == []
    drawn = fit(name, seed=None)  # seed_ records the seed drawn, and reproduces the fit
    assert isinstance(drawn.seed_, int) and 0 <= drawn.seed_ < 2**63
    assert differences(drawn, fit(name, seed=drawn.seed_)) == []
    other = fit(name, seed=RECIPES[name].params["seed"] + 1)
    assert bool(differences(first, other)) == RECIPES[name].seed_changes_fit, \
        differences(first, other)


def test_thread_count(name):
    """Repeatable for a fixed thread count; the same for any count where
    the algorithm promises it (the recipe's thread_independent)."""
    one, two = fit(name, WIDE, n_threads=1), fit(name, WIDE, n_threads=2)
    assert differences(two, fit(name, WIDE, n_threads=2)) == []
    assert (differences(one, two) == []) == RECIPES[name].thread_independent, \
        differences(one, two)


def test_early_stopping_keeps_the_best_iteration(name):
    train, valid = mfrec.train_test_split(TRAIN, test_size=0.2, seed=1)
    model = mfrec.Model(name, **recipe_params(name, **_more_iterations(name, 6)))
    if ALGORITHMS[name].stops_early is not True:
        with pytest.raises(ValueError, match="early_stopping"):
            model.fit(train, validation=valid, early_stopping=1)
        assert not model.is_fitted
        return
    model.fit(train, validation=valid, early_stopping=1)
    scores = [row["valid_rmse"] for row in model.history]
    assert all(np.isfinite(row["valid_mae"]) for row in model.history)
    assert model.best_iteration_ == int(np.argmin(scores)) + 1
    assert model.score(valid)["rmse"] == pytest.approx(min(scores), rel=1e-6)


def _more_iterations(name, n):
    it = ALGORITHMS[name].iterations_param
    return {it: n} if it else {}


def test_inputs_are_not_modified(name):
    u, i, r = TRAIN.user.copy(), TRAIN.item.copy(), TRAIN.rating.copy()
    vu, vi, vr = u[::7].copy(), i[::7].copy(), r[::7].copy()
    fold_items, fold_ratings = i[u == u[0]].copy(), r[u == u[0]].copy()
    arrays = (u, i, r, vu, vi, vr, fold_items, fold_ratings)
    copies = [a.copy() for a in arrays]
    for a in arrays:
        a.flags.writeable = False  # a write attempt would also raise
    stop = dict(early_stopping=2) if ALGORITHMS[name].stops_early is True else {}
    model = mfrec.Model(name, **recipe_params(name)).fit(u, i, r, validation=(vu, vi, vr),
                                                          **stop)
    model.predict(vu, vi)
    model.score(vu, vi, vr)
    model.recommend(vu[:3], items=vi, exclude=vi[:2])
    model.fold_in(fold_items, fold_ratings, **fold_in_kwargs(name))
    model.recommend_new_user(fold_items, fold_ratings, **fold_in_kwargs(name))
    for a, c in zip(arrays, copies):
        assert np.array_equal(a, c)


# ---- parameters ---------------------------------------------------------------------

def test_parameters_and_clone(name, fitted):
    params = fitted.get_params()
    assert params == {"algorithm": name, **mfrec.Model.defaults(name), **recipe_params(name)}
    for p in mfrec.Model.defaults(name):  # parameters read as attributes
        assert getattr(fitted, p) == params[p]
    # a clone, as cross_validate makes one: unfitted, equal, and fits the same
    clone = type(fitted)(**params)
    assert not clone.is_fitted and clone.get_params() == params
    assert eval(repr(fitted), {"Model": mfrec.Model}).get_params() == params
    assert repr(mfrec.Model(name)) == f"Model({name!r})"  # repr shows what differs from defaults
    before = fitted.predict(*probe(fitted))
    assert differences(clone.fit(TRAIN), fitted) == []
    np.testing.assert_array_equal(fitted.predict(*probe(fitted)), before)
    # the defaults are valid parameters
    assert mfrec.Model(name, **mfrec.Model.defaults(name)).get_params() == \
        {"algorithm": name, **mfrec.Model.defaults(name)}


def test_set_params(name):
    model = mfrec.Model(name, **recipe_params(name))
    params = model.get_params()
    assert model.set_params(seed=5, n_threads=2) is model
    assert model.get_params() == {**params, "seed": 5, "n_threads": 2}
    with pytest.raises(ValueError, match="n_threads"):
        model.set_params(n_threads=-1)
    with pytest.raises(TypeError, match="unknown parameter"):
        model.set_params(bogus=1)
    assert model.get_params() == {**params, "seed": 5, "n_threads": 2}  # refused: unchanged


def _common_bad_values(cls):
    it = cls.iterations_param or "epochs"
    return [
        ("factors", -1, "factors must be an integer >= 1 and <= 2147483647, got -1"),
        ("factors", 0, "factors must be an integer >= 1"),
        ("factors", 2.5, "factors must be an integer >= 1"),
        ("factors", True, "factors must be an integer >= 1"),
        (it, 0, f"{it} must be an integer >= 1"),
        (it, 2**31, f"{it} must be an integer >= 1 and <= 2147483647"),
        ("seed", -1, "seed must be an integer >= 0"),
        ("seed", 2**64, "seed must be an integer >= 0"),
        ("n_threads", -2, "n_threads must be an integer >= 0"),
        ("n_threads", 1.0, "n_threads must be an integer >= 0"),
    ]


def test_bad_parameters(name):
    cls = ALGORITHMS[name]
    for param, value, match in _common_bad_values(cls):
        if param in cls.defaults:
            with pytest.raises(ValueError, match=match):
                mfrec.Model(name, **{param: value})
        else:  # a parameter the algorithm does not take
            with pytest.raises(TypeError, match=rf"unknown parameter\(s\) \['{param}'\]"):
                mfrec.Model(name, **{param: value})
    for param in cls.defaults:  # every parameter checks its type, and says which it is
        with pytest.raises(ValueError, match=param):
            mfrec.Model(name, **{param: object()})
    with pytest.raises(TypeError, match=rf"unknown parameter\(s\) \['factor', 'lr'\] for "
                                        rf"algorithm '{name}'; it takes"):
        mfrec.Model(name, factor=10, lr=0.1)


# ---- predictions ----------------------------------------------------------------------

def test_predict_follows_the_factors(name, fitted):
    """float32 predictions of mu + b_u + b_i + p_u . q_i, with the baseline
    for unknown ids, clipped to the training range by default where the
    algorithm predicts ratings."""
    users, items = probe(fitted)
    raw = fitted.predict(users, items, clip=False)
    assert raw.dtype == np.float32 and raw.shape == users.shape
    np.testing.assert_allclose(raw, reference_predict(fitted, users, items, False),
                               rtol=1e-5, atol=1e-5)
    clipped = fitted.predict(users, items)
    expected = np.clip(raw, *fitted.rating_range_) if ALGORITHMS[name].clip_predictions else raw
    np.testing.assert_array_equal(clipped, expected)
    np.testing.assert_array_equal(fitted.predict(users.tolist(), items.tolist(), n_threads=2),
                                  clipped)
    empty = fitted.predict([], [])
    assert empty.shape == (0,) and empty.dtype == np.float32


def test_unknown_ids_raise_key_error(fitted):
    u, i = fitted.user_ids[0], fitted.item_ids[0]
    with pytest.raises(KeyError, match="users: 1 user id.*not seen in training: 99999"):
        fitted.recommend(99999)
    with pytest.raises(KeyError, match="users"):
        fitted.recommend([u, 99999, -4])
    with pytest.raises(KeyError, match="items: 1 item id"):
        fitted.recommend(u, items=[i, 123456])
    with pytest.raises(KeyError, match="exclude: 1 item id"):
        fitted.recommend(u, exclude=[123456])
    with pytest.raises(KeyError, match="item"):
        fitted.similar_items(123456)
    with pytest.raises(KeyError, match="user"):
        fitted.similar_users(99999)
    with pytest.raises(KeyError, match="items"):
        fitted.recommend_new_user([i, 123456], [4, 5])


def test_recommend_ranks_the_predictions_and_skips_seen_items(fitted):
    users = fitted.user_ids[::5]
    S = full_scores(fitted)
    ids, scores = fitted.recommend(users, 10)
    assert ids.dtype == np.int64 and scores.dtype == np.float32
    for row, u in enumerate(users):
        ref_ids, ref_scores = reference_recommend(fitted, u, 10, S=S)
        np.testing.assert_array_equal(ids[row], ref_ids)
        tol = SCORE_TOL * max(1, np.abs(ref_scores).max())
        assert np.max(np.abs(scores[row] - ref_scores)) <= tol
        assert not np.isin(ids[row], ratings_of(u)[0]).any()
    u = users[1]
    ids, _ = fitted.recommend(u, n=fitted.n_items, exclude_seen=False)
    np.testing.assert_array_equal(
        ids, reference_recommend(fitted, u, fitted.n_items, exclude_seen=False, S=S)[0])
    all_ids, all_scores = fitted.recommend_all(7)
    assert all_ids.shape == all_scores.shape == (fitted.n_users, 7)
    batch_ids, batch_scores = fitted.recommend(fitted.user_ids, 7)
    np.testing.assert_array_equal(all_ids, batch_ids)
    np.testing.assert_array_equal(all_scores, batch_scores)


def test_fold_in_ranks_a_new_user(name, fitted):
    items, ratings = ratings_of(fitted.user_ids[5])
    if RECIPES[name].fold_in_needs_regularization:
        with pytest.raises(ValueError, match="trained without regularization"):
            fitted.fold_in(items, ratings)
    kw = fold_in_kwargs(name)
    x, b = fitted.fold_in(items, ratings, **kw)
    assert x.dtype == np.float32 and x.shape == (fitted.user_factors.shape[1],)
    assert np.isfinite(x).all()
    assert (b is None) == (fitted.user_bias is None) and (b is None or np.isfinite(b))
    # recommend_new_user ranks the unrated items by the folded-in user's scores
    ids, scores = fitted.recommend_new_user(items, ratings, n=10, **kw)
    s = fitted.item_factors.astype(np.float64) @ x + fitted.global_mean + (b or 0.0)
    if fitted.item_bias is not None:
        s += fitted.item_bias
    s[np.searchsorted(fitted.item_ids, items)] = -np.inf
    top = rank(s, 10)
    np.testing.assert_array_equal(ids, fitted.item_ids[top])
    assert np.max(np.abs(scores - s[top])) <= SCORE_TOL * max(1, np.abs(s[top]).max())
    assert not np.isin(ids, items).any()
    # the same ratings in another order are the same user
    order = np.random.default_rng(0).permutation(len(items))
    np.testing.assert_array_equal(fitted.fold_in(items[order], ratings[order], **kw)[0], x)
    np.testing.assert_array_equal(
        fitted.recommend_new_user(items[order], ratings[order], n=10, **kw)[0], ids)


# ---- files ------------------------------------------------------------------------------

def test_save_load_round_trip(name, fitted, tmp_path):
    fitted.save(tmp_path / "model")  # the suffix is added
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]  # no temporary file left
    loaded = mfrec.Model.load(tmp_path / "model.npz")
    assert differences(loaded, fitted) == [] and loaded.history == fitted.history
    assert loaded.get_params() == fitted.get_params() and loaded.algorithm == name
    for attr in ("best_iteration_", "seed_", "rating_range_", "rating_mean_"):
        assert getattr(loaded, attr) == getattr(fitted, attr), attr
    for attr in fitted._solver.fitted_attributes:
        if not callable(getattr(fitted, attr)):
            np.testing.assert_array_equal(getattr(loaded, attr), getattr(fitted, attr))
    users, items = probe(fitted)
    np.testing.assert_array_equal(loaded.predict(users, items), fitted.predict(users, items))
    for a, b in zip(loaded.recommend_all(10), fitted.recommend_all(10)):
        np.testing.assert_array_equal(a, b)
    new_user = ratings_of(fitted.user_ids[2])
    for a, b in zip(loaded.fold_in(*new_user, **fold_in_kwargs(name)),
                    fitted.fold_in(*new_user, **fold_in_kwargs(name))):
        np.testing.assert_array_equal(a, b)


# ---- progress, callbacks and Ctrl-C ------------------------------------------------------

def test_verbose_prints_each_history_row(name, capsys):
    model = mfrec.Model(name, **recipe_params(name))
    model.fit(TRAIN, verbose=True)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(model.history) == iterations(name)
    for line, row in zip(lines, model.history):  # "epoch=1  train_loss=0.1234  ..."
        assert line.startswith(f"epoch={row['epoch']}  ")
        assert [field.split("=")[0] for field in line.split("  ")] == list(row)


def test_record_train_false_leaves_the_fit_alone(name):
    """record_train=False drops train_rmse from the history and nothing
    else: the same model, the same other columns."""
    scored = fit(name)
    unscored = mfrec.Model(name, **recipe_params(name)).fit(TRAIN, record_train=False)
    assert differences(scored, unscored) == ["history"]
    assert [{k: v for k, v in row.items() if k not in ("train_rmse", "seconds")}
            for row in scored.history] == \
        [{k: v for k, v in row.items() if k != "seconds"} for row in unscored.history]
    assert all("train_rmse" in row for row in scored.history)
    with pytest.raises(ValueError, match="record_train must be True or False"):
        mfrec.Model(name, **recipe_params(name)).fit(TRAIN, record_train="no")


def test_callback_sees_every_history_row(name, request):
    if not ALGORITHMS[name].iterations_param:
        request.applymarker(pytest.mark.xfail(
            strict=True, raises=AssertionError,
            reason="fit never calls the callback of a closed-form algorithm, though its "
                   "history has one row (and verbose prints it)"))
    rows = []
    model = mfrec.Model(name, **recipe_params(name))
    model.fit(TRAIN, callback=lambda m, row: rows.append((m, row)))
    assert [row for _, row in rows] == model.history
    assert all(m is model for m, _ in rows)


def test_callback_returning_false_stops(iterative):
    seen = []
    model = mfrec.Model(iterative, **recipe_params(iterative, **_more_iterations(iterative, 6)))
    model.fit(TRAIN, callback=lambda m, row: seen.append(row["epoch"]) or row["epoch"] < 2)
    assert seen == [1, 2] and len(model.history) == 2 and model.best_iteration_ == 2


def interrupt_at(iteration):
    def callback(model, row):
        if row["epoch"] == iteration:
            raise KeyboardInterrupt
    return callback


def test_ctrl_c_keeps_the_last_complete_iteration(iterative):
    model = mfrec.Model(iterative, **recipe_params(iterative, **_more_iterations(iterative, 6)))
    with pytest.warns(RuntimeWarning, match=r"interrupted after 2 iteration\(s\); the model "
                                            r"keeps iteration 2"):
        model.fit(TRAIN, callback=interrupt_at(2))
    assert len(model.history) == 2 and model.best_iteration_ == 2
    assert differences(model, fit(iterative, **_more_iterations(iterative, 2))) == []
    assert np.isfinite(model.predict(TRAIN.user, TRAIN.item)).all()


def test_ctrl_c_before_an_iteration_completes_keeps_the_previous_model(name, monkeypatch):
    """The interrupt propagates; a model fitted before keeps its fit, an
    unfitted one stays unfitted."""
    model, fresh = fit(name), mfrec.Model(name, **recipe_params(name))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    cls = ALGORITHMS[name]
    monkeypatch.setattr(cls, "step" if cls.iterations_param else "solve", interrupted)
    for m, data in ((model, WIDE), (fresh, TRAIN)):
        with pytest.raises(KeyboardInterrupt):
            m.fit(data)
    monkeypatch.undo()
    assert not fresh.is_fitted
    assert differences(model, fit(name)) == []
