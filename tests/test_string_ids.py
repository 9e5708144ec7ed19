"""String and bytes ids: a model fitted on them is the model of the integer
ids they name (same sorted order), speaks them back in their kind, keeps
them in its file without pickle, and refuses ids of another kind."""

import numpy as np
import pytest

import mfrec

pd = pytest.importorskip("pandas")


@pytest.fixture(scope="module")
def ints():
    rng = np.random.default_rng(7)
    pairs = np.unique(np.stack([rng.integers(0, 50, 900), rng.integers(0, 40, 900)], 1), axis=0)
    order = rng.permutation(len(pairs))  # not sorted: the mapping must not rely on order
    return pairs[order, 0], pairs[order, 1], rng.integers(1, 6, len(pairs)).astype(np.float32)


def named(ids, prefix):
    """Zero-padded names sort as the integers do; non-ASCII on purpose."""
    return np.array([f"{prefix}é{x:04d}" for x in ids])


@pytest.fixture(scope="module")
def strs(ints):
    return named(ints[0], "user"), named(ints[1], "item"), ints[2]


def fit(users, items, ratings, algorithm="sgd", **kwargs):
    params = dict(factors=4, epochs=4, seed=3) if algorithm == "sgd" else dict(factors=4, seed=3)
    return mfrec.Model(algorithm, **params).fit(users, items, ratings, **kwargs)


AS = {"str": lambda a: a, "object": lambda a: a.astype(object), "list": list,
      "bytes": lambda a: np.char.encode(a, "utf-8"),
      "object bytes": lambda a: np.char.encode(a, "utf-8").astype(object)}


@pytest.mark.parametrize("kind", AS)
@pytest.mark.parametrize("algorithm", ["sgd", "als"])
def test_string_ids_fit_the_model_of_the_integers(ints, strs, kind, algorithm):
    base = fit(*ints, algorithm)
    users, items = AS[kind](strs[0]), AS[kind](strs[1])
    model = fit(users, items, strs[2], algorithm)
    for name in ("user_factors", "item_factors", "user_bias", "item_bias"):
        assert np.array_equal(getattr(model, name), getattr(base, name))
    to_kind = (lambda a: np.char.encode(a, "utf-8")) if "bytes" in kind else (lambda a: a)
    assert np.array_equal(model.user_ids, to_kind(named(base.user_ids, "user")))
    assert model.item_ids.dtype.kind == ("S" if "bytes" in kind else "U")
    u = to_kind(named(base.user_ids[:3], "user"))
    ids, scores = model.recommend(u, n=5)
    want_ids, want_scores = base.recommend(base.user_ids[:3], n=5)
    assert np.array_equal(ids, to_kind(named(want_ids.ravel(), "item")).reshape(ids.shape))
    assert np.array_equal(scores, want_scores)
    assert np.array_equal(model.predict(users[:20], items[:20]), base.predict(*ints[:2]) [:20])


def test_answers_come_back_as_strings(strs):
    model = fit(*strs)
    one, _ = model.recommend(strs[0][0], n=3)
    assert one.dtype.kind == "U" and set(one) <= set(strs[1])
    similar, _ = model.similar_items(strs[1][0], n=3)
    assert similar.dtype.kind == "U" and strs[1][0] not in similar
    assert model.similar_users(strs[0][0], n=2)[0].dtype.kind == "U"
    everyone, scores = model.recommend_all(n=3)
    assert everyone.shape == (len(model.user_ids), 3) and everyone.dtype.kind == "U"
    # short rows are padded with "" (and NaN scores): two candidates, n=5
    padded, scores = model.recommend(strs[0][:2], n=5, items=strs[1][:3], exclude_seen=False,
                                     exclude=strs[1][:1])
    assert padded.shape == (2, 2) and "" not in padded
    seen = model.recommend(model.user_ids[:1], n=len(model.item_ids))
    assert seen[0][0, -1] == "" and np.isnan(seen[1][0, -1])
    assert np.sum(seen[0][0] == "") == np.sum(np.isnan(seen[1][0]))


@pytest.mark.parametrize("kind", ["str", "bytes"])
def test_model_files_keep_string_ids_without_pickle(tmp_path, strs, kind):
    users, items = AS[kind](strs[0]), AS[kind](strs[1])
    model = fit(users, items, strs[2])
    path = model.save(tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as z:
        assert z["user_ids"].dtype.kind == ("U" if kind == "str" else "S")
    loaded = mfrec.Model.load(path)
    assert np.array_equal(loaded.user_ids, model.user_ids)
    assert np.array_equal(loaded.item_ids, model.item_ids)
    assert np.array_equal(loaded.predict(users[:50], items[:50]), model.predict(users[:50],
                                                                                items[:50]))
    assert np.array_equal(loaded.recommend(users[0], n=4)[0], model.recommend(users[0], n=4)[0])


def test_ids_of_another_kind_are_refused(ints, strs):
    model = fit(*strs)
    message = "are integer ids, but the model's are string ids"
    with pytest.raises(TypeError, match="^users " + message):
        model.predict(ints[0][:3], strs[1][:3])
    with pytest.raises(TypeError, match="^users " + message):
        model.recommend(5)
    with pytest.raises(TypeError, match="^item are bytes ids"):
        model.similar_items(b"item\xc3\xa90001")
    with pytest.raises(TypeError, match="^validation: users " + message):
        fit(*strs, validation=(ints[0], strs[1], strs[2]))
    with pytest.raises(TypeError, match="^test: items " + message):
        mfrec.metrics.evaluate(model, (strs[0], ints[1], strs[2]))
    with pytest.raises(TypeError, match="item_feature_ids are integer ids, but the ratings' "
                                        "are string ids"):
        fit(*strs, item_features=np.eye(3), item_feature_ids=[1, 2, 3])
    with pytest.raises(KeyError):
        model.recommend("nobody")
    with pytest.raises(TypeError, match="got an object array of int, str"):
        fit([1, "a"], ["x", "y"], [1.0, 2.0])


def test_string_ids_with_features_and_metrics(strs):
    cold = np.array(["itemé9999"])
    ids = np.concatenate([np.unique(strs[1]), cold])
    genres = np.eye(len(ids), 3)[:, :3] + (np.arange(len(ids)) % 2)[:, None]
    model = fit(*strs, item_features=genres, item_feature_ids=ids)
    assert cold[0] in model.item_ids
    r = mfrec.Ratings(*strs)
    train, test = mfrec.train_test_split(r, test_size=0.2, seed=0, by="user")
    scores = mfrec.metrics.evaluate(fit(train.user, train.item, train.rating), test,
                                    k=5, threshold=3)
    assert 0 <= scores["precision"] <= 1 and np.isfinite(scores["rmse"])


@pytest.mark.parametrize("make", [
    lambda df: df,
    lambda df: df.astype({"user": "string", "item": "category"}),
    lambda df: pytest.importorskip("polars").from_pandas(df),
    lambda df: pytest.importorskip("pyarrow").Table.from_pandas(df, preserve_index=False),
])
def test_string_columns_of_tables(ints, strs, make):
    df = pd.DataFrame({"user": strs[0].astype(object), "item": strs[1].astype(object),
                       "rating": strs[2]})
    model = fit(make(df), None, None)
    base = fit(*ints)
    assert np.array_equal(model.item_factors, base.item_factors)
    assert model.user_ids.dtype.kind == "U"


@pytest.mark.parametrize("engine", ["pyarrow", "pandas"])
def test_read_ratings_string_ids(tmp_path, strs, engine, monkeypatch):
    from mfrec import _read

    path = tmp_path / "r.csv"
    pd.DataFrame({"user": strs[0], "item": strs[1], "rating": strs[2]}).to_csv(path,
                                                                            index=False)
    monkeypatch.setattr(_read, "BLOCK_BYTES", 2000)  # blocks of different widths
    monkeypatch.setattr(_read, "PANDAS_ROWS", 50)
    r = mfrec.read_ratings(path, string_ids=True, engine=engine)
    assert np.array_equal(r.user, strs[0]) and np.array_equal(r.item, strs[1])
    with pytest.raises((TypeError, ValueError), match="user"):
        mfrec.read_ratings(path, engine=engine)


def test_read_ratings_string_ids_of_growing_width(tmp_path):
    path = tmp_path / "r.tsv"
    path.write_text("a\tx\t1\n" * 10 + "a-much-longer-id\ty\t2\n")
    for engine in ("pyarrow", "pandas"):
        r = mfrec.read_ratings(path, string_ids=True, engine=engine)
        assert r.user[-1] == "a-much-longer-id" and r.item[-1] == "y"
