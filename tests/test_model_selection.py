"""Splits, cross-validation and hyper-parameter search."""
import numpy as np
import pytest

import mfrec
from mfrec.model_selection import (GridSearch, KFold, PredefinedFolds, RandomSearch,
                                   cross_validate, log_uniform, train_test_split, uniform)

SMALL = dict(factors=10, epochs=3, seed=7)


# ---- splits ------------------------------------------------------------------

def test_kfold_partitions_the_ratings(ml100k):
    r = ml100k.ratings
    key = r.user * 10_000 + r.item
    tests = [test for _, test in KFold(5, seed=1).split(r)]
    for (train, test) in KFold(5, seed=1).split(r):
        assert len(train) + len(test) == len(r)
        assert not np.intersect1d(train.user * 10_000 + train.item,
                                  test.user * 10_000 + test.item).size
    all_test = np.concatenate([t.user * 10_000 + t.item for t in tests])
    assert np.array_equal(np.sort(all_test), np.sort(key))  # each rating tested once
    again = [test for _, test in KFold(5, seed=1).split(r)]
    assert all(np.array_equal(a.item, b.item) for a, b in zip(tests, again))
    unshuffled = next(KFold(4, shuffle=False).split(r))[1]
    assert np.array_equal(unshuffled.item, r.item[:len(r) // 4])


def test_predefined_folds_are_the_files(ml100k):
    cv = PredefinedFolds(ml100k)
    assert cv.fold_names == ["u1", "u2", "u3", "u4", "u5"]
    for name, (train, test) in zip(cv.fold_names, cv.split(ml100k.ratings)):
        base, probe = ml100k.fold(name)
        assert np.array_equal(train.item, base.item) and np.array_equal(test.rating, probe.rating)
    tests = np.concatenate([t.user * 10_000 + t.item for _, t in cv.split(ml100k.ratings)])
    assert len(np.unique(tests)) == len(ml100k.ratings)  # u1..u5 test parts are disjoint


def test_split_by_time(ml100k):
    r = ml100k.ratings
    train, test = train_test_split(r, test_size=0.2, by="time")
    assert len(test) == 20_000
    assert train.timestamp.max() <= test.timestamp.min()


def test_split_by_user_time(ml100k):
    r = ml100k.ratings
    train, test = train_test_split(r, test_size=0.2, by="user_time")
    last_train = {u: t for u, t in zip(*_max_by(train.user, train.timestamp))}
    first_test = dict(zip(*_min_by(test.user, test.timestamp)))
    assert set(first_test) <= set(last_train)  # every test user is in train
    assert all(first_test[u] >= last_train[u] for u in first_test)
    counts = np.bincount(r.user)
    test_counts = np.bincount(test.user, minlength=len(counts))
    users = np.unique(r.user)
    assert np.array_equal(test_counts[users], (0.2 * counts[users]).astype(int))


def _max_by(keys, values):
    order = np.lexsort((values, keys))
    last = np.r_[keys[order][1:] != keys[order][:-1], True]
    return keys[order][last], values[order][last]


def _min_by(keys, values):
    order = np.lexsort((values, keys))
    first = np.r_[True, keys[order][1:] != keys[order][:-1]]
    return keys[order][first], values[order][first]


def test_split_by_time_needs_timestamps():
    r = mfrec.Ratings(np.arange(4), np.arange(4), np.ones(4))
    with pytest.raises(ValueError, match="timestamps"):
        train_test_split(r, by="time")
    with pytest.raises(ValueError, match="by must be one of"):
        train_test_split(r, by="item")


# ---- cross-validation --------------------------------------------------------

@pytest.mark.parametrize("n_jobs", [1, 2])
def test_cross_validate_equals_separate_fits(ml100k, n_jobs):
    """Each fold's figures are those of a separate fit with the same seed,
    to the last digit, whether folds run one by one or concurrently."""
    model = mfrec.Model("sgd", factors=30, epochs=10, seed=11)
    result = cross_validate(model, ml100k, PredefinedFolds(ml100k), n_jobs=n_jobs)
    assert [f["fold"] for f in result["folds"]] == ["u1", "u2", "u3", "u4", "u5"]
    for fold in result["folds"]:
        train, test = ml100k.fold(fold["fold"])
        alone = mfrec.Model("sgd", factors=30, epochs=10, seed=11).fit(train).score(test)
        assert fold["rmse"] == alone["rmse"] and fold["mae"] == alone["mae"]
    assert result["mean"]["rmse"] == np.mean([f["rmse"] for f in result["folds"]])
    assert result["std"]["mae"] == np.std([f["mae"] for f in result["folds"]])
    assert all(f["fit_time"] > 0 and f["test_time"] > 0 for f in result["folds"])


def test_ranking_metrics_are_evaluate_s(ml100k):
    """Ranking metrics of a fold are mfrec.metrics.evaluate's on a separate
    fit; one list length per evaluate, any number of them."""
    metrics = ["ndcg@10", "precision@10", "recall@5", "map@5", "rmse"]
    result = cross_validate(mfrec.Model("sgd", **SMALL), ml100k, PredefinedFolds(ml100k, ["u2"]),
                            metrics=metrics, threshold=3.5)
    train, test = ml100k.fold("u2")
    model = mfrec.Model("sgd", **SMALL).fit(train)
    at10 = mfrec.metrics.evaluate(model, test, k=10, threshold=3.5)
    at5 = mfrec.metrics.evaluate(model, test, k=5, threshold=3.5)
    fold = result["folds"][0]
    assert (fold["ndcg@10"], fold["precision@10"]) == (at10["ndcg"], at10["precision"])
    assert (fold["recall@5"], fold["map@5"]) == (at5["recall"], at5["map"])
    assert fold["rmse"] == at10["rmse"]
    assert 0 < fold["ndcg@10"] < 1


def test_search_by_a_ranking_metric(ml100k):
    """A ranking metric is chosen by its largest value."""
    search = GridSearch(mfrec.Model("sgd", **SMALL), {"regularization": [0.0, 0.5, 5.0]},
                        cv=PredefinedFolds(ml100k, ["u1"]), metric="ndcg@10", refit=False)
    search.fit(ml100k)
    ndcg = [row["ndcg@10"] for row in search.results]
    assert len(set(ndcg)) == 3 and search.best_index == int(np.argmax(ndcg))


def test_cross_validate_shares_threads(ml100k):
    model = mfrec.Model("sgd", n_threads=2, **SMALL)
    result = cross_validate(model, ml100k.ratings, KFold(3, seed=0), n_jobs=2,
                            return_models=True)
    assert [m.n_threads for m in result["models"]] == [1, 1, 1]
    one = cross_validate(model, ml100k.ratings, KFold(3, seed=0), n_jobs=1, return_models=True)
    assert [m.n_threads for m in one["models"]] == [2, 2, 2]
    assert model.n_threads == 2 and not model.is_fitted  # the given model is not touched


def test_cross_validate_passes_fit_params(ml100k):
    kw = {"item_features": ml100k.genres, "item_feature_ids": ml100k.item_ids}
    result = cross_validate(mfrec.Model("sgd", **SMALL), ml100k, PredefinedFolds(ml100k, ["u1"]),
                            fit_params=kw, return_models=True)
    assert result["models"][0].item_feature_factors.shape == (19, 10)


def test_cross_validate_progress(ml100k, capsys):
    cross_validate(mfrec.Model("sgd", **SMALL), ml100k, PredefinedFolds(ml100k, ["u1", "u2"]),
                   verbose=True)
    out = capsys.readouterr().out
    assert "[cross_validate] 1/2" in out and "[cross_validate] 2/2" in out and "rmse=" in out


# ---- search ------------------------------------------------------------------

def test_grid_search(ml100k):
    pd = pytest.importorskip("pandas")
    cv = PredefinedFolds(ml100k, ["u1", "u2"])
    grid = {"regularization": [0.0, 0.05], "factors": [5, 10]}
    search = GridSearch(mfrec.Model("sgd", epochs=3, seed=2), grid, cv=cv, metrics=["mae"],
                        n_jobs=2).fit(ml100k)
    table = pd.DataFrame(search.results)
    assert len(table) == 4 and search.n_fits == 8
    assert list(table[["regularization", "factors"]].itertuples(index=False, name=None)) == \
        [(0.0, 5), (0.0, 10), (0.05, 5), (0.05, 10)]
    assert search.best_score == table["rmse"].min()
    assert table.loc[table["rank"] == 1, "rmse"].item() == search.best_score
    assert sorted(table["rank"]) == [1, 2, 3, 4]
    assert {"rmse", "rmse_std", "mae", "mae_std", "fit_time", "test_time"} <= set(table)
    # the table's figures are cross_validate's for the same parameters
    best = mfrec.Model("sgd", epochs=3, seed=2, **search.best_params)
    assert cross_validate(best, ml100k, cv)["mean"]["rmse"] == search.best_score
    assert search.best_model.is_fitted and search.best_model.get_params() == best.get_params()
    assert len(search.best_model.user_ids) == 943  # refit on all the data


def test_grid_search_metric_direction(ml100k):
    """With mae chosen, the best is the candidate of the lowest mae."""
    grid = {"learning_rate": [0.001, 0.01, 0.03]}
    search = GridSearch(mfrec.Model("sgd", **SMALL), grid, cv=PredefinedFolds(ml100k, ["u3"]),
                        metric="mae", refit=False).fit(ml100k)
    maes = [row["mae"] for row in search.results]
    assert search.best_index == int(np.argmin(maes)) and search.best_model is None


def test_random_search(ml100k):
    dist = {"regularization": uniform(0.0, 0.1), "learning_rate": log_uniform(1e-3, 1e-1),
            "factors": [4, 8, 16]}
    cv = PredefinedFolds(ml100k, ["u1"])
    a = RandomSearch(mfrec.Model("sgd", epochs=2, seed=1), dist, n_iter=4, cv=cv, seed=5,
                     refit=False).fit(ml100k)
    b = RandomSearch(mfrec.Model("sgd", epochs=2, seed=1), dist, n_iter=4, cv=cv, seed=5,
                     refit=False).fit(ml100k)
    def figures(search):
        return [{k: v for k, v in row.items() if not k.endswith("_time")}
                for row in search.results]

    assert figures(a) == figures(b)
    for row in a.results:
        assert 0.0 <= row["regularization"] < 0.1 and 1e-3 <= row["learning_rate"] < 0.1
        assert row["factors"] in (4, 8, 16) and isinstance(row["factors"], int)
    assert len({row["learning_rate"] for row in a.results}) == 4


# ---- bad input ---------------------------------------------------------------

@pytest.mark.parametrize("metrics,match", [
    (["rmse", "accuracy"], "unknown metric 'accuracy'"),
    (["ndcg@0"], "unknown metric"),
    ([], "at least one metric"),
    (["rmse", "rmse"], "twice"),
    (["ndcg"], "unknown metric 'ndcg'"),
    (["rmse@10"], "unknown metric"),
])
def test_cross_validate_bad_metrics(ml100k, metrics, match):
    with pytest.raises(ValueError, match=match):
        cross_validate(mfrec.Model("sgd", **SMALL), ml100k, 2, metrics=metrics)


def test_search_bad_metric():
    with pytest.raises(ValueError, match="unknown metric 'rsme'"):
        GridSearch(mfrec.Model("sgd"), {"factors": [1]}, metric="rsme")


@pytest.mark.parametrize("grid,error,match", [
    ({}, ValueError, "param_grid is empty"),
    ({"factors": []}, ValueError, r"param_grid\['factors'\] is empty"),
    ({"alpha": [1, 2]}, ValueError, "'alpha' is not a parameter of the 'sgd' model"),
    ({"factors": 10}, TypeError, "must be a list"),
    ({"init": "normal"}, TypeError, "must be a list"),
    ([("factors", [1])], TypeError, "must be a dict"),
])
def test_grid_search_bad_grid(grid, error, match):
    with pytest.raises(error, match=match):
        GridSearch(mfrec.Model("sgd"), grid)


def test_search_bad_values_fail_before_fitting(ml100k):
    search = GridSearch(mfrec.Model("sgd", **SMALL), {"learning_rate": [0.01, -1.0]},
                        cv=PredefinedFolds(ml100k, ["u1"]))
    with pytest.raises(ValueError, match=r"candidate \{'learning_rate': -1.0\}: learning_rate"):
        search.fit(ml100k)
    assert search.results == []


@pytest.mark.parametrize("dist,kwargs,error,match", [
    ({}, {}, ValueError, "param_distributions is empty"),
    ({"beta": [1]}, {}, ValueError, "'beta' is not a parameter"),
    ({"factors": 3}, {}, TypeError, "rvs"),
    ({"factors": [1]}, {"n_iter": 0}, ValueError, "n_iter"),
])
def test_random_search_bad_input(dist, kwargs, error, match):
    with pytest.raises(error, match=match):
        RandomSearch(mfrec.Model("sgd"), dist, **kwargs)


@pytest.mark.parametrize("kwargs,error,match", [
    ({"n_jobs": 0}, ValueError, "n_jobs"),
    ({"cv": "u1"}, TypeError, "cv must be"),
    ({"cv": 1}, ValueError, "n_splits"),
    ({"threshold": float("nan")}, ValueError, "threshold"),
])
def test_cross_validate_bad_arguments(ml100k, kwargs, error, match):
    with pytest.raises(error, match=match):
        cross_validate(mfrec.Model("sgd", **SMALL), ml100k, **kwargs)


def test_cross_validate_bad_data(ml100k):
    with pytest.raises(TypeError, match="model must be a mfrec.Model"):
        cross_validate("sgd", ml100k)
    with pytest.raises(TypeError, match="data must be"):
        cross_validate(mfrec.Model("sgd"), np.zeros(3))
    with pytest.raises(ValueError, match="give the dataset's full ratings"):
        cross_validate(mfrec.Model("sgd", **SMALL), ml100k.ratings[:1000], PredefinedFolds(ml100k))
    with pytest.raises(ValueError, match="3 rows but item_feature_ids has 2"):  # from a fold
        cross_validate(mfrec.Model("sgd", **SMALL), ml100k, 3, n_jobs=2,
                       fit_params={"item_features": np.ones((3, 2)), "item_feature_ids": [1, 2]})
    with pytest.raises(ValueError, match="fold 'u9'"):
        PredefinedFolds(ml100k, ["u1", "u9"])
    with pytest.raises(ValueError, match="uniform"):
        log_uniform(0.0, 1.0)
