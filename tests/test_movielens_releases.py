"""Every MovieLens release through the download path: small synthetic
archives laid out as the published ones (folder, file names, separators,
encodings, extra files), served from 127.0.0.1 (never the internet)."""
import hashlib
import io
import os
import sys
import zipfile

import numpy as np
import pytest

import mfrec
from mfrec import datasets

# ---- the published layouts, in miniature ------------------------------------------

# (user, movie, rating, timestamp): 1M's stars are whole, the others' halves
RATINGS_1M = [(1, 1193, 5.0, 978300760), (1, 661, 3.0, 978302109),
              (2, 1193, 4.0, 978298413), (6040, 73, 1.0, 956703932)]
RATINGS_HALF = [(1, 122, 5.0, 838985046), (1, 185, 4.5, 838983525),
                (71567, 2338, 0.5, 912580553), (3, 122, 3.5, 1700000000)]

# movies.dat of 1M: Latin-1, '::' fields, genres with '|'
MOVIES_1M = (b"1::Toy Story (1995)::Animation|Children's|Comedy\n"
             b"73::Mis\xe9rables, Les (1995)::Drama|Musical\n"
             b"1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
             b"661::James and the Giant Peach (1996)::Animation|Children's|Musical\n")
TITLES_1M = {1: ("Toy Story (1995)", ["Animation", "Children's", "Comedy"]),
             73: ("Misérables, Les (1995)", ["Drama", "Musical"]),
             661: ("James and the Giant Peach (1996)", ["Animation", "Children's", "Musical"]),
             1193: ("One Flew Over the Cuckoo's Nest (1975)", ["Drama"])}

# movies.dat of 10M, here in UTF-8 (titles with ':' in them, no genre listed)
MOVIES_10M = ("122::Boomerang (1992)::Comedy|Romance\n"
              "185::Net, The (1995)::Action|Crime|Thriller\n"
              "260::Star Wars: Episode IV - A New Hope (a.k.a. Star Wars) (1977)::"
              "Action|Adventure|Sci-Fi\n"
              "2338::I Still Know What You Did Last Summer (1998)::Horror|Mystery|Thriller\n"
              "4422::Cría cuervos (1976)::Drama\n"
              "8606::Pull My Daisy (1958)::(no genres listed)\n").encode()
TITLES_10M = {122: ("Boomerang (1992)", ["Comedy", "Romance"]),
              260: ("Star Wars: Episode IV - A New Hope (a.k.a. Star Wars) (1977)",
                    ["Action", "Adventure", "Sci-Fi"]),
              4422: ("Cría cuervos (1976)", ["Drama"]),
              8606: ("Pull My Daisy (1958)", [])}

# movies.csv of 20M and later: quoted titles with commas and doubled quotes,
# IMAX, "(no genres listed)", UTF-8
MOVIES_CSV = ('movieId,title,genres\n'
              '122,Avatar (2009),Action|Adventure|Sci-Fi|IMAX\n'
              '11,"American President, The (1995)",Comedy|Drama|Romance\n'
              '185,"""Great Performances"" Cats (1998)",Musical\n'
              '2338,"Misérables, Les (1995)",Drama|War\n'
              '209163,Bad Poems (2018),(no genres listed)\n').encode()
TITLES_CSV = {11: ("American President, The (1995)", ["Comedy", "Drama", "Romance"]),
              122: ("Avatar (2009)", ["Action", "Adventure", "IMAX", "Sci-Fi"]),
              185: ('"Great Performances" Cats (1998)', ["Musical"]),
              2338: ("Misérables, Les (1995)", ["Drama", "War"]),
              209163: ("Bad Poems (2018)", [])}
GENRES_CSV = ["Action", "Adventure", "Comedy", "Drama", "IMAX", "Musical", "Romance",
              "Sci-Fi", "War"]


def dat(rows):
    return "".join(f"{u}::{i}::{r:g}::{t}\n" for u, i, r, t in rows).encode()


def csv_ratings(rows):
    return ("userId,movieId,rating,timestamp\n" +
            "".join(f"{u},{i},{r:.1f},{t}\n" for u, i, r, t in rows)).encode()


GENOME = {"genome-scores.csv": b"movieId,tagId,relevance\n1,1,0.029\n",
          "genome-tags.csv": b"tagId,tag\n1,007\n"}
CSV_FILES = {"ratings.csv": csv_ratings(RATINGS_HALF), "movies.csv": MOVIES_CSV,
             "tags.csv": b"userId,movieId,tag,timestamp\n3,122,\"sci-fi, 3D\",1700000001\n",
             "links.csv": b"movieId,imdbId,tmdbId\n122,0499549,19995\n",
             "README.txt": b"Summary\n=======\n"}
# name -> (files in the archive's folder, the ratings, the catalogue, its genre names)
LAYOUTS = {
    "1m": ({"ratings.dat": dat(RATINGS_1M), "movies.dat": MOVIES_1M,
            "users.dat": b"1::F::1::10::48067\n", "README": b"SUMMARY\n"},
           RATINGS_1M, TITLES_1M, ["Animation", "Children's", "Comedy", "Drama", "Musical"]),
    "10m": ({"ratings.dat": dat(RATINGS_HALF), "movies.dat": MOVIES_10M,
             "tags.dat": b"15::4973::excellent!::1215184630\n", "README.html": b"<html>",
             "split_ratings.sh": b"#!/bin/sh\n", "allbut.pl": b"#!/usr/bin/perl\n"},
            RATINGS_HALF, TITLES_10M,
            ["Action", "Adventure", "Comedy", "Crime", "Drama", "Horror", "Mystery",
             "Romance", "Sci-Fi", "Thriller"]),
    "20m": ({**CSV_FILES, **GENOME}, RATINGS_HALF, TITLES_CSV, GENRES_CSV),
    "25m": ({**CSV_FILES, **GENOME}, RATINGS_HALF, TITLES_CSV, GENRES_CSV),
    "32m": ({**CSV_FILES, "checksums.txt": b"0123  ratings.csv\n"},
            RATINGS_HALF, TITLES_CSV, GENRES_CSV),
    "latest": ({**CSV_FILES, **GENOME}, RATINGS_HALF, TITLES_CSV, GENRES_CSV),
}
NEW = sorted(LAYOUTS)


def archive_bytes(name, files=None):
    """The release's archive: its files in its folder, as GroupLens packs them."""
    release = datasets.RELEASES[name]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{release.folder}/", b"")
        for fname, data in (LAYOUTS[name][0] if files is None else files).items():
            zf.writestr(f"{release.folder}/{fname}", data)
    return buf.getvalue()


def publish(name, www, monkeypatch, url, digest=None):
    """Serve `name`'s archive at `url` and expect its SHA-256 (or `digest`)."""
    data = archive_bytes(name)
    with open(os.path.join(www, datasets.RELEASES[name].archive), "wb") as f:
        f.write(data)
    monkeypatch.setattr(datasets, "GROUPLENS_URL", url)
    monkeypatch.setitem(datasets.RELEASES, name, datasets.RELEASES[name]._replace(
        sha256=digest or hashlib.sha256(data).hexdigest()))


def check_contents(data, name):
    _, ratings, titles, genre_names = LAYOUTS[name]
    user, item, rating, ts = (np.array(c) for c in zip(*ratings))
    r = data.ratings
    np.testing.assert_array_equal(r.user, user)
    np.testing.assert_array_equal(r.item, item)
    np.testing.assert_array_equal(r.rating, rating.astype(np.float32))
    np.testing.assert_array_equal(r.timestamp, ts)
    assert r.user.dtype == r.timestamp.dtype == np.int64 and r.rating.dtype == np.float32
    assert data.genre_names == genre_names
    assert np.all(np.diff(data.item_ids) > 0)
    for movie, (title, genres) in titles.items():
        assert (data.title(movie), data.genres_of(movie)) == (title, genres)
    assert data.fold_names == ()


# ---- each release: downloaded, checked, cached, read -----------------------------------

@pytest.mark.parametrize("name", NEW)
def test_each_release_downloads_into_the_cache_and_loads(name, no_data_env, server,
                                                         monkeypatch, tmp_path, capfd):
    url, www, hits = server
    publish(name, www, monkeypatch, url)
    release = datasets.RELEASES[name]
    data = mfrec.load_movielens(name)
    assert data.path == str(tmp_path / "cache" / "mfrec" / release.folder)
    check_contents(data, name)
    assert hits == [f"/{release.archive}"] and "downloading" in capfd.readouterr().err
    # only what is read is unpacked; nothing of the download is left beside it
    assert sorted(os.listdir(data.path)) == sorted([release.ratings, release.movies])
    assert os.listdir(tmp_path / "cache" / "mfrec") == [release.folder]
    again = mfrec.load_movielens(name)  # from the cache: the server is not asked again
    assert hits == [f"/{release.archive}"] and again.path == data.path
    check_contents(again, name)


@pytest.mark.parametrize("name", NEW)
def test_a_wrong_digest_is_refused_and_nothing_is_cached(name, no_data_env, server,
                                                         monkeypatch, tmp_path):
    url, www, hits = server
    publish(name, www, monkeypatch, url, digest="0" * 64)
    for attempt in (1, 2):  # nothing was kept: the second call downloads again
        with pytest.raises(ValueError, match=f"{datasets.RELEASES[name].archive}: the "
                                             "archive failed its SHA-256 check"):
            mfrec.load_movielens(name)
        assert os.listdir(tmp_path / "cache" / "mfrec") == [] and len(hits) == attempt


@pytest.mark.parametrize("name", ["1m", "32m", "latest"])
def test_the_published_digest_is_what_is_checked(name, no_data_env, server, monkeypatch,
                                                 tmp_path):
    """Without the tests' digest, the synthetic archive fails the real one."""
    url, www, hits = server
    with open(os.path.join(www, datasets.RELEASES[name].archive), "wb") as f:
        f.write(archive_bytes(name))
    monkeypatch.setattr(datasets, "GROUPLENS_URL", url)
    with pytest.raises(ValueError, match="failed its SHA-256 check"):
        mfrec.load_movielens(name)
    assert os.listdir(tmp_path / "cache" / "mfrec") == [] and len(hits) == 1


def test_the_table_of_releases():
    """One archive per release, each new one with a 64-digit SHA-256."""
    for name, release in datasets.RELEASES.items():
        assert release.archive == f"ml-{name}.zip"
        if name in LAYOUTS:
            assert len(release.sha256) == 64 and int(release.sha256, 16) >= 0
    digests = [datasets.RELEASES[name].sha256 for name in NEW]
    assert len(set(digests)) == len(digests)
    assert datasets.RELEASES["10m"].folder == "ml-10M100K"  # not named as its archive


def test_an_archive_without_the_ratings_is_refused(no_data_env, server, monkeypatch, tmp_path):
    url, www, hits = server
    files = dict(LAYOUTS["25m"][0])
    del files["ratings.csv"]
    data = archive_bytes("25m", files)
    with open(os.path.join(www, "ml-25m.zip"), "wb") as f:
        f.write(data)
    monkeypatch.setattr(datasets, "GROUPLENS_URL", url)
    monkeypatch.setitem(datasets.RELEASES, "25m", datasets.RELEASES["25m"]._replace(
        sha256=hashlib.sha256(data).hexdigest()))
    with pytest.raises(ValueError, match="ml-25m.zip: the archive has no ratings.csv"):
        mfrec.load_movielens("25m")
    assert os.listdir(tmp_path / "cache" / "mfrec") == []


# ---- where the files are found ------------------------------------------------------------

def unpack(name, place, files=None):
    """`name`'s files unpacked under `place` as the archive holds them."""
    with zipfile.ZipFile(io.BytesIO(archive_bytes(name, files))) as zf:
        zf.extractall(place)
    return os.path.join(place, datasets.RELEASES[name].folder)


def test_search_order_data_home_then_mfrec_data_then_cache(no_data_env, server, monkeypatch,
                                                           tmp_path):
    """Three copies of 10M whose movie 122 has three titles: the first place
    that holds the dataset wins, and nothing is downloaded."""
    url, www, hits = server
    monkeypatch.setattr(datasets, "GROUPLENS_URL", url)
    places = {}
    for where in ("home", "env", "cache"):
        movies = MOVIES_10M.replace(b"Boomerang", where.encode())
        files = {**LAYOUTS["10m"][0], "movies.dat": movies}
        root = tmp_path / "cache" / "mfrec" if where == "cache" else tmp_path / where
        places[where] = unpack("10m", str(root), files)
    monkeypatch.setenv("MFREC_DATA", str(tmp_path / "env"))
    home = str(tmp_path / "home")
    for data_home, expected in ((home, "home"), (places["home"], "home"), (None, "env")):
        data = mfrec.load_movielens("10m", data_home=data_home)
        assert data.title(122) == f"{expected} (1992)" and data.path == places[expected]
    monkeypatch.delenv("MFREC_DATA")
    assert mfrec.load_movielens("10m").title(122) == "cache (1992)"
    # a data_home without the dataset falls through to the cache
    assert mfrec.load_movielens("10m", data_home=str(tmp_path)).path == places["cache"]
    assert hits == []


def test_a_dataset_found_nowhere_is_downloaded_into_data_home(no_data_env, server,
                                                              monkeypatch, tmp_path):
    url, www, hits = server
    publish("1m", www, monkeypatch, url)
    with pytest.raises(FileNotFoundError, match="download=False"):
        mfrec.load_movielens("1m", download=False)
    data = mfrec.load_movielens("1m", data_home=str(tmp_path / "home"))
    assert data.path == str(tmp_path / "home" / "ml-1m") and hits == ["/ml-1m.zip"]
    assert not os.path.exists(tmp_path / "cache" / "mfrec" / "ml-1m")
    check_contents(data, "1m")


# ---- the readers --------------------------------------------------------------------------

def test_ratings_need_pyarrow_or_pandas(tmp_path, monkeypatch):
    folder = unpack("20m", str(tmp_path))
    for module in ("pyarrow", "pandas"):
        monkeypatch.setitem(sys.modules, module, None)  # neither is installed
    with pytest.raises(ImportError, match=r"ratings.csv: MovieLens 1M and the larger "
                                          r"releases are read with pyarrow or pandas"):
        mfrec.load_movielens("20m", data_home=folder, download=False)


@pytest.mark.parametrize("engine", ["pyarrow", "pandas"])
def test_ratings_read_with_either_engine(engine, tmp_path, monkeypatch):
    """read_ratings takes pandas when pyarrow is missing: both read the
    same ratings from '::' and from csv files."""
    pytest.importorskip(engine)
    if engine == "pandas":
        monkeypatch.setitem(sys.modules, "pyarrow", None)
    for name in ("10m", "32m"):
        check_contents(mfrec.load_movielens(name, data_home=unpack(name, str(tmp_path)),
                                            download=False), name)


@pytest.mark.parametrize("movies, match", [
    (b"1::Toy Story (1995)\n", r"movies.dat, line 1: expected MovieID::Title::Genres"),
    (b"1::A::Drama\nx::B::Drama\n", r"movies.dat, line 2: expected MovieID::Title::Genres"),
    (b"1::A::Drama\n1::B::Comedy\n", r"movies.dat: movie id 1 appears more than once"),
])
def test_a_malformed_movies_dat_names_the_file_and_line(movies, match, tmp_path):
    folder = unpack("1m", str(tmp_path), {**LAYOUTS["1m"][0], "movies.dat": movies})
    with pytest.raises(ValueError, match=match):
        mfrec.load_movielens("1m", data_home=folder, download=False)


def test_malformed_ratings_name_the_file(tmp_path):
    folder = unpack("1m", str(tmp_path), {**LAYOUTS["1m"][0], "ratings.dat": b"1::2::x::3\n"})
    with pytest.raises(ValueError, match="ratings.dat"):
        mfrec.load_movielens("1m", data_home=folder, download=False)
