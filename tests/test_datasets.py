"""MovieLens loaders, the download path (against a local server), splits
and the planted low-rank generator."""
import hashlib
import os
import sys
import zipfile

import numpy as np
import pytest

import mfrec
from mfrec import datasets


# ---- the loaders on the published files --------------------------------------

def test_ml100k_counts(ml100k):
    r = ml100k.ratings
    assert len(r) == 100_000
    assert len(np.unique(r.user)) == 943 and (r.user.min(), r.user.max()) == (1, 943)
    assert len(np.unique(r.item)) == 1682 and (r.item.min(), r.item.max()) == (1, 1682)
    assert set(np.unique(r.rating)) == {1, 2, 3, 4, 5} and r.rating.dtype == np.float32
    assert r.timestamp is not None and r.timestamp.min() > 8e8
    assert len(np.unique(r.user * 10_000 + r.item)) == 100_000  # no repeated pair
    assert np.array_equal(ml100k.item_ids, np.arange(1, 1683))
    assert len(ml100k.titles) == 1682 and ml100k.genres.shape == (1682, 19)
    assert ml100k.genre_names[0] == "unknown" and ml100k.genre_names[-1] == "Western"


def test_ml100k_titles_are_latin1(ml100k):
    assert ml100k.title(1) == "Toy Story (1995)"
    assert ml100k.title(543) == "Misérables, Les (1995)"
    assert ml100k.title(1633) == "Á köldum klaka (Cold Fever) (1994)"
    assert list(ml100k.titles_of([1, 543])) == ["Toy Story (1995)", "Misérables, Les (1995)"]
    assert ml100k.genres_of(1) == ["Animation", "Children's", "Comedy"]
    with pytest.raises(KeyError, match="movie id 1683 is not in the 100k catalogue"):
        ml100k.title(1683)


@pytest.mark.parametrize("name, n_train, n_test", [
    ("u1", 80_000, 20_000), ("u2", 80_000, 20_000), ("u3", 80_000, 20_000),
    ("u4", 80_000, 20_000), ("u5", 80_000, 20_000), ("ua", 90_570, 9_430),
    ("ub", 90_570, 9_430),
])
def test_ml100k_folds(ml100k, name, n_train, n_test):
    train, test = ml100k.fold(name)
    assert (len(train), len(test)) == (n_train, n_test)
    key = lambda r: np.sort(r.user * 10_000 + r.item)  # noqa: E731
    everything = np.sort(np.r_[key(train), key(test)])
    assert np.array_equal(everything, key(ml100k.ratings))  # base + test = u.data
    if name in ("ua", "ub"):
        assert np.array_equal(np.bincount(test.user)[1:], np.full(943, 10))


def test_ml100k_test_folds_partition_the_data(ml100k):
    tests = [ml100k.fold(f"u{k}")[1] for k in range(1, 6)]
    keys = np.concatenate([t.user * 10_000 + t.item for t in tests])
    assert len(np.unique(keys)) == 100_000


def test_unknown_fold(ml100k, ml_latest):
    with pytest.raises(ValueError, match=r"fold must be one of \['u1'"):
        ml100k.fold("u6")
    assert ml_latest.fold_names == ()
    with pytest.raises(ValueError, match="fold must be one of"):
        ml_latest.fold("u1")


def test_ml_latest_small_counts(ml_latest):
    r = ml_latest.ratings
    assert len(r) == 100_836
    assert len(np.unique(r.user)) == 610
    assert len(np.unique(r.item)) == 9_724
    assert len(ml_latest.item_ids) == 9_742 and np.all(np.diff(ml_latest.item_ids) > 0)
    assert np.isin(r.item, ml_latest.item_ids).all()
    assert set(np.unique(r.rating)) == set(np.arange(1, 11) / 2)


def test_ml_latest_small_titles_and_genres(ml_latest):
    assert ml_latest.title(1) == "Toy Story (1995)"
    assert ml_latest.title(73) == "Misérables, Les (1995)"  # UTF-8
    assert ml_latest.title(29) == "City of Lost Children, The (Cité des enfants perdus, La) (1995)"
    assert ml_latest.genres_of(1) == ["Adventure", "Animation", "Children", "Comedy", "Fantasy"]
    assert "(no genres listed)" not in ml_latest.genre_names
    assert (ml_latest.genres.sum(axis=1) == 0).sum() == 34  # the "(no genres listed)" movies


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match=r"name must be one of \['100k', '1m', '10m', '20m', "
                                         r"'25m', '32m', 'latest-small', 'latest'\], got '5m'"):
        mfrec.load_movielens("5m")


# ---- where the files are found -------------------------------------------------

def test_search_order(no_data_env, tmp_path, monkeypatch):
    source = no_data_env
    with pytest.raises(FileNotFoundError, match="download=False"):
        datasets.find_dataset("latest-small", download=False)
    monkeypatch.setenv("MFREC_DATA", source)
    assert datasets.find_dataset("latest-small", download=False) == \
        os.path.join(source, "ml-latest-small")
    # data_home comes first, as the parent folder or as the dataset folder itself
    home = tmp_path / "home" / "ml-latest-small"
    home.mkdir(parents=True)
    (home / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,2,3.0,4\n")
    for place in (home.parent, home):
        assert datasets.find_dataset("latest-small", str(place), download=False) == str(home)
    # a data_home without the dataset falls through to $MFREC_DATA
    assert datasets.find_dataset("100k", str(home.parent), download=False) == \
        os.path.join(source, "ml-100k")


def build_archive(source, name, folder, tamper=None):
    """folder/<dataset>.zip with the published layout, from the files in source."""
    dataset = datasets.NAMES[name]
    path = os.path.join(folder, dataset + ".zip")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for fname in sorted(os.listdir(os.path.join(source, dataset))):
            with open(os.path.join(source, dataset, fname), "rb") as f:
                data = f.read()
            if fname == tamper:
                data = data[:100] + bytes([data[100] ^ 1]) + data[101:]
            zf.writestr(f"{dataset}/{fname}", data)
    return path


def test_download_100k_from_a_local_server(no_data_env, server, tmp_path, capfd):
    url, www, _ = server
    build_archive(no_data_env, "100k", www)
    home = tmp_path / "home"
    folder = datasets.find_dataset("100k", str(home), base_url=url)
    assert folder == str(home / "ml-100k")
    for fname, digest in datasets.CHECKSUMS["ml-100k"].items():
        assert hashlib.sha256((home / "ml-100k" / fname).read_bytes()).hexdigest() == digest
    assert [p for p in os.listdir(home) if p.startswith(".mfrec-")] == []
    assert "downloading" in capfd.readouterr().err  # the progress bar
    data = mfrec.load_movielens("100k", data_home=str(home), download=False)
    assert len(data.ratings) == 100_000 and data.title(543) == "Misérables, Les (1995)"
    assert len(data.fold("u3")[1]) == 20_000


def test_download_goes_to_the_user_cache(no_data_env, server, tmp_path):
    url, www, _ = server
    build_archive(no_data_env, "latest-small", www)
    folder = datasets.find_dataset("latest-small", base_url=url)
    assert folder == str(tmp_path / "cache" / "mfrec" / "ml-latest-small")
    os.remove(os.path.join(www, "ml-latest-small.zip"))  # found again without the server
    assert datasets.find_dataset("latest-small", base_url=url) == folder


def test_a_failed_download_says_where_the_files_were_looked_for(no_data_env, server, tmp_path):
    url, _, _ = server  # serves no archive: 404, as an offline machine fails
    home = tmp_path / "home"
    with pytest.raises(OSError) as info:
        datasets.find_dataset("latest-small", str(home), base_url=url)
    message = str(info.value)
    for words in (str(home), str(tmp_path / "cache" / "mfrec"), "download failed", "404",
                  "set MFREC_DATA", "MFREC_DATA is not set", "ml-latest-small/"):
        assert words in message, message


def test_download_rejects_a_tampered_file(no_data_env, server, tmp_path):
    url, www, _ = server
    build_archive(no_data_env, "latest-small", www, tamper="ratings.csv")
    home = tmp_path / "home"
    with pytest.raises(ValueError, match="ratings.csv failed its SHA-256 check"):
        datasets.find_dataset("latest-small", str(home), base_url=url)
    assert os.listdir(home) == []  # nothing half-unpacked is left behind


def test_download_rejects_an_archive_missing_a_file(no_data_env, server, tmp_path):
    url, www, _ = server
    with zipfile.ZipFile(os.path.join(www, "ml-latest-small.zip"), "w") as zf:
        zf.write(os.path.join(no_data_env, "ml-latest-small", "ratings.csv"),
                 "ml-latest-small/ratings.csv")
    with pytest.raises(ValueError, match="the archive has no movies.csv"):
        datasets.download_dataset("latest-small", str(tmp_path / "home"), base_url=url)


# ---- train_test_split ------------------------------------------------------------

def test_random_split(ml100k):
    r = ml100k.ratings
    train, test = mfrec.train_test_split(r, test_size=0.2, seed=42)
    assert (len(train), len(test)) == (80_000, 20_000)
    keys = lambda x: x.user * 10_000 + x.item  # noqa: E731
    assert np.array_equal(np.sort(np.r_[keys(train), keys(test)]), np.sort(keys(r)))
    again = mfrec.train_test_split(r, test_size=0.2, seed=42)[1]
    assert np.array_equal(keys(again), keys(test))
    other = mfrec.train_test_split(r, test_size=0.2, seed=43)[1]
    assert not np.array_equal(np.sort(keys(other)), np.sort(keys(test)))
    assert test.timestamp is not None and len(test.timestamp) == len(test)


def test_split_by_user(ml100k):
    r = ml100k.ratings
    train, test = mfrec.train_test_split(r, test_size=0.2, seed=0, by="user")
    n_all = np.bincount(r.user)
    n_test = np.bincount(test.user, minlength=len(n_all))
    n_train = np.bincount(train.user, minlength=len(n_all))
    np.testing.assert_array_equal(n_test, (0.2 * n_all).astype(int))  # rounded down
    assert np.all(n_train[1:] >= 1) and len(train) + len(test) == len(r)
    tiny = mfrec.Ratings([1, 1, 2], [1, 2, 1], [3.0, 4.0, 5.0])
    train, test = mfrec.train_test_split(tiny, test_size=0.9, by="user", seed=0)
    assert list(np.unique(train.user)) == [1, 2] and len(test) == 1  # one stays in train


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(test_size=0.0), ValueError, r"test_size must be in \(0, 1\)"),
    (dict(test_size=1.5), ValueError, r"test_size must be in \(0, 1\)"),
    (dict(by="item"), ValueError, "by must be one of"),
])
def test_split_rejects_bad_arguments(ml100k, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        mfrec.train_test_split(ml100k.ratings, **kwargs)


def test_split_needs_ratings():
    with pytest.raises(TypeError, match="must be a mfrec.Ratings"):
        mfrec.train_test_split(np.zeros((10, 3)))
    with pytest.raises(ValueError, match="at least two ratings"):
        mfrec.train_test_split(mfrec.Ratings([1], [1], [1.0]))


# ---- the planted generator --------------------------------------------------------

def test_make_low_rank():
    d = mfrec.make_low_rank(200, 150, rank=4, density=0.2, noise=0.1, seed=3)
    assert len(d.ratings) == 6000 and d.user_factors.shape == (200, 4)
    keys = d.ratings.user * 150 + d.ratings.item
    assert len(np.unique(keys)) == 6000
    signal = d.global_mean + np.einsum("ij,ij->i", d.user_factors[d.ratings.user],
                                       d.item_factors[d.ratings.item])
    residual = d.ratings.rating - signal
    assert abs(residual.std() - 0.1) < 0.01 and abs(residual.mean()) < 0.01
    assert 0.8 < (signal - d.global_mean).std() < 1.2  # unit-variance signal
    again = mfrec.make_low_rank(200, 150, rank=4, density=0.2, noise=0.1, seed=3)
    assert np.array_equal(again.ratings.rating, d.ratings.rating)
    with pytest.raises(ValueError, match="density"):
        mfrec.make_low_rank(density=0.0)
    # float64 overflow on the way (it warned, an error under -W error) is refused too
    with pytest.raises(ValueError, match="beyond the float32 range"):
        mfrec.make_low_rank(12, 10, noise=1e308, global_mean=1e308, seed=0)


def test_download_shows_tqdm_bar_when_installed_else_a_line(no_data_env, server, tmp_path,
                                                            monkeypatch, capfd):
    tqdm_auto = pytest.importorskip("tqdm.auto")
    url, www, _ = server
    size = os.path.getsize(build_archive(no_data_env, "latest-small", www))
    made = []

    class Recording(tqdm_auto.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(tqdm_auto, "tqdm", Recording)
    datasets.download_dataset("latest-small", str(tmp_path / "a"), base_url=url)
    assert [(b.total, b.n) for b in made] == [(size, size)]
    line = f"{size / 1e6:.1f}/{size / 1e6:.1f} MB"  # the plain line's ending
    assert "downloading" in (err := capfd.readouterr().err) and line not in err
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # tqdm missing
    datasets.download_dataset("latest-small", str(tmp_path / "b"), base_url=url)
    assert len(made) == 1 and line in capfd.readouterr().err
