"""progress=True: a tqdm bar over a fit's iterations and over the fits of
cross_validate and the searches; none (and nothing printed) by default."""
import io
import sys

import pytest

import mfrec

tqdm_auto = pytest.importorskip("tqdm.auto")


@pytest.fixture
def bars(monkeypatch):
    """Every bar made through tqdm.auto, recording its postfixes."""
    made = []

    class Recording(tqdm_auto.tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["file"] = io.StringIO()
            super().__init__(*args, **kwargs)
            self.postfixes = []
            made.append(self)

        def set_postfix(self, ordered_dict=None, refresh=True, **kwargs):
            self.postfixes.append(dict(ordered_dict or {}, **kwargs))
            super().set_postfix(ordered_dict, refresh=refresh, **kwargs)

    monkeypatch.setattr(tqdm_auto, "tqdm", Recording)
    return made


@pytest.fixture(scope="module")
def data():
    ratings = mfrec.make_low_rank(n_users=120, n_items=90, rank=3, density=0.3, seed=0).ratings
    return mfrec.train_test_split(ratings, test_size=0.2, seed=0)


def test_fit_bar_counts_iterations_and_shows_the_last_rmse(bars, data):
    train, valid = data
    model = mfrec.Model("sgd", factors=3, epochs=7, seed=0).fit(train, validation=valid,
                                                                progress=True)
    (bar,) = bars
    assert bar.total == 7 and bar.n == len(model.history) == 7
    last = bar.postfixes[-1]
    assert float(last["train_rmse"]) == pytest.approx(model.history[-1]["train_rmse"], abs=1e-4)
    assert float(last["valid_rmse"]) == pytest.approx(model.history[-1]["valid_rmse"], abs=1e-4)
    assert [float(p["train_rmse"]) for p in bar.postfixes] == \
        pytest.approx([row["train_rmse"] for row in model.history], abs=1e-4)


def test_bar_stops_with_early_stopping_and_the_callback(bars, data):
    train, valid = data
    model = mfrec.Model("sgd", factors=30, epochs=200, learning_rate=0.05, regularization=0.0,
                        seed=0)
    model.fit(train, validation=valid, early_stopping=2, progress=True)
    assert bars[0].total == 200
    assert bars[0].n == len(model.history) < 200  # stopped early
    model = mfrec.Model("als", factors=3, iterations=10, seed=0)
    model.fit(train, callback=lambda m, row: row["epoch"] < 3, progress=True)
    assert bars[1].total == 10 and bars[1].n == len(model.history) == 3
    assert set(bars[1].postfixes[-1]) == {"train_rmse"}


def test_closed_form_is_one_step(bars, data):
    model = mfrec.Model("svd", factors=3).fit(data[0], progress=True)
    assert bars[0].total == 1 and bars[0].n == len(model.history) == 1


def test_no_bar_and_nothing_printed_by_default(bars, data, capfd):
    train, valid = data
    mfrec.Model("sgd", factors=3, epochs=3, seed=0).fit(train, validation=valid)
    mfrec.Model("als", factors=3, iterations=2, seed=0).fit(train, progress=False)
    mfrec.cross_validate(mfrec.Model("als", factors=3, iterations=2, seed=0), train, cv=2)
    assert bars == []
    assert capfd.readouterr() == ("", "")


def test_cross_validate_bar_counts_folds(bars, data):
    cv = mfrec.cross_validate(mfrec.Model("als", factors=3, iterations=2, seed=0), data[0],
                              cv=3, n_jobs=2, progress=True)
    (bar,) = bars
    assert bar.total == bar.n == len(cv["folds"]) == 3
    assert sorted(float(p["rmse"]) for p in bar.postfixes) == \
        pytest.approx(sorted(row["rmse"] for row in cv["folds"]), abs=1e-4)


def test_search_bar_counts_every_fit(bars, data):
    search = mfrec.GridSearch(mfrec.Model("als", factors=3, iterations=2, seed=0),
                              {"regularization": [0.01, 0.1]}, cv=2, progress=True)
    search.fit(data[0])
    assert [(b.total, b.n) for b in bars] == [(4, 4)] and search.n_fits == 4
    search = mfrec.RandomSearch(mfrec.Model("als", factors=3, iterations=2, seed=0),
                                {"regularization": [0.01, 0.1]}, n_iter=3, cv=2, seed=0,
                                progress=True)
    search.fit(data[0])
    assert (bars[1].total, bars[1].n) == (6, 6)


@pytest.mark.parametrize("bad", ["yes", 1, None])
def test_progress_must_be_a_bool(bad, data):
    model = mfrec.Model("als", factors=3, iterations=2)
    with pytest.raises(ValueError, match="progress must be True or False"):
        model.fit(data[0], progress=bad)
    with pytest.raises(ValueError, match="progress must be True or False"):
        mfrec.cross_validate(model, data[0], cv=2, progress=bad)
    with pytest.raises(ValueError, match="progress must be True or False"):
        mfrec.GridSearch(model, {"regularization": [0.1]}, progress=bad)
    assert not model.is_fitted


def test_without_tqdm_the_error_says_how_to_install(monkeypatch, data):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # import fails
    model = mfrec.Model("als", factors=3, iterations=2)
    with pytest.raises(ImportError, match=r'pip install "mfrec\[progress\]"'):
        model.fit(data[0], progress=True)
    assert not model.is_fitted
    model.fit(data[0])  # no bar asked: no tqdm needed
    assert model.is_fitted
