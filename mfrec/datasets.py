"""MovieLens loaders and a synthetic low-rank generator.

Where the files are looked for, in order: ``data_home``, ``$MFREC_DATA``,
the user cache (``$XDG_CACHE_HOME/mfrec`` or ``~/.cache/mfrec``), and only
then downloaded from GroupLens into the cache and checked against SHA-256
digests. Each location may hold the dataset's folder (``ml-100k/``,
``ml-1m/``, ``ml-10M100K/``, ``ml-25m/``, ...) or be that folder itself.
"""
from __future__ import annotations

import hashlib
import math
import numbers
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from typing import Dict, List, NamedTuple, Optional, Tuple

import numpy as np

from ._movielens import (read_100k_items, read_dat_movies, read_large_ratings,
                         read_latest_movies, read_latest_ratings, read_tab)
from ._progress import close, progress_bar, tqdm_class
from .ratings import Ratings, as_rng

__all__ = ["MovieLens", "load_movielens", "make_low_rank", "LowRankData"]

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens"


class Release(NamedTuple):
    """A MovieLens archive at GroupLens and the files mfrec reads from it."""

    archive: str  # the file name at GROUPLENS_URL
    folder: str  # the folder inside the archive, and in the cache
    sha256: Optional[str]  # of the archive; None: each file is checked (CHECKSUMS)
    ratings: str
    movies: str


# The archives' SHA-256, as published beside their URLs and sizes:
# 1m, 20m, 25m: https://github.com/tensorflow/datasets/blob/1c076ac3c19c8ea83e1d1a75e0623c9a699e0d7c/tensorflow_datasets/url_checksums/movielens.txt
# 10m: https://github.com/ISG-Siegen/OmniRec/blob/e498cceb6be13e3d287f0777355929645fc5871c/src/omnirec/data_loaders/movielens_small.py
# 32m, latest: https://github.com/ankane/disco-cli/blob/42f5617a6681a7a6646d914716197fab93c79ba8/src/download.rs
# ml-latest is a rolling release: the digest is that of the snapshot generated
# on 2023-07-20 (33,832,162 ratings), and a newer snapshot fails the check.
RELEASES = {
    "100k": Release("ml-100k.zip", "ml-100k", None, "u.data", "u.item"),
    "1m": Release("ml-1m.zip", "ml-1m",
                  "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
                  "ratings.dat", "movies.dat"),
    "10m": Release("ml-10m.zip", "ml-10M100K",
                   "813c411ccb6122564edfe752e7f80c4dcc5aa25fa94c93622f6877a7ba252862",
                   "ratings.dat", "movies.dat"),
    "20m": Release("ml-20m.zip", "ml-20m",
                   "96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3",
                   "ratings.csv", "movies.csv"),
    "25m": Release("ml-25m.zip", "ml-25m",
                   "8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa",
                   "ratings.csv", "movies.csv"),
    "32m": Release("ml-32m.zip", "ml-32m",
                   "e4a68655d7386b8f95f2f2424b2ff975dfdd15ffd59e0d864a14dca43e99d6ee",
                   "ratings.csv", "movies.csv"),
    "latest-small": Release("ml-latest-small.zip", "ml-latest-small", None,
                            "ratings.csv", "movies.csv"),
    "latest": Release("ml-latest.zip", "ml-latest",
                      "66a9e518c747d76b241d9a859b001a2619d3ed1672ceef599eb50daf73a7b4a3",
                      "ratings.csv", "movies.csv"),
}
NAMES = {name: release.folder for name, release in RELEASES.items()}

# SHA-256 of each file of the two releases checked file by file (ml-100k's
# README and helper scripts aside): these files are what is unpacked.
CHECKSUMS = {
    "ml-100k": {
        "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
        "u.genre": "9757e0d3e6b298159a80dd48eaf938114690e911e39af97a76949ef1663610bb",
        "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
        "u1.base": "ce253ec86c448b44fb3ba9a30d12dcfc2e9210cbde71efada3730c22e9ac212a",
        "u1.test": "18c6014a4b2c7324f250a63f8904a7b16b2b19f911129e346141507b0cbac950",
        "u2.base": "6c06f0b5df4b256da1a994f3ac66edc8da4d3f09bc9282df6b14d893366d703e",
        "u2.test": "4de658d1e04ed9104629509a2e2528fce833ac8e048280183f1df167632038c3",
        "u3.base": "afdc155c291c6edc41c0407e39d7462eb98d341e064f0b0a12175b80b3c4af5d",
        "u3.test": "0f548b51c78327de4c156461d3e430b7e5579fe2b5681586a59416e48fd35f6d",
        "u4.base": "219f0f4d40dfe9c5141d425f53fa91ee23ed275f14e280bbf1b50117afb064ca",
        "u4.test": "7c02ad0a1e7ab1083c8b9d4b627203a051dd7b5eab46d99fa44de33470de8db9",
        "u5.base": "a9574e59ce961eec2121627760b6e9b0974ce1637b3fe69ac32cb14a4bfab485",
        "u5.test": "351cc52e0d15b6c721466276fc24671d40936899e3d01fadeaf312915b8c5634",
        "ua.base": "67b5bcdb380c29f85d56a012ecd88612ae020f30a6730d117a334ee8203b91f2",
        "ua.test": "d0497e202417720f57a184ec8c66be2d1afa4ff41bb53787c57b28d6bf79bc42",
        "ub.base": "237254d253b6ad7de84f919d041055428646254f34ed8f562703c899430cd881",
        "ub.test": "d54a72d05730d5892062734b2bec73e976f9b713d18c828a18b968d6cce442da",
    },
    "ml-latest-small": {
        "ratings.csv": "aa289ca83157595d0df6aea1be6a4ded676ddc4385472e8313a8ed9805352646",
        "movies.csv": "5a5f32dd9bb3797b8e728a1b98958789d2b13f294a69fdfbc5727f8a9611aa07",
    },
}
FOLDS_100K = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")


@dataclass
class MovieLens:
    """A MovieLens dataset.

    Attributes
    ----------
    name : "100k", "1m", "10m", "20m", "25m", "32m", "latest-small" or "latest"
    ratings : Ratings (user, item, rating, timestamp)
    item_ids : int64 array of every movie id in the catalogue
    titles : str array, the title of item_ids[j]
    genres : bool array (n_movies x n_genres), genre flags of item_ids[j]
    genre_names : list of str
    path : the folder the files were read from
    """

    name: str
    ratings: Ratings
    item_ids: np.ndarray
    titles: np.ndarray
    genres: np.ndarray
    genre_names: List[str]
    path: str
    _folds: Dict[str, Tuple[Ratings, Ratings]] = field(default_factory=dict, repr=False)

    def title(self, item_id) -> str:
        """The title of one movie id (KeyError if not in the catalogue)."""
        j = np.searchsorted(self.item_ids, item_id)
        if j >= len(self.item_ids) or self.item_ids[j] != item_id:
            raise KeyError(f"movie id {item_id} is not in the {self.name} catalogue")
        return str(self.titles[j])

    def titles_of(self, item_ids) -> np.ndarray:
        """Titles of an array of movie ids."""
        return np.array([self.title(i) for i in np.asarray(item_ids).ravel()], dtype=object)

    def genres_of(self, item_id) -> List[str]:
        j = np.searchsorted(self.item_ids, item_id)
        if j >= len(self.item_ids) or self.item_ids[j] != item_id:
            raise KeyError(f"movie id {item_id} is not in the {self.name} catalogue")
        return [g for g, on in zip(self.genre_names, self.genres[j]) if on]

    @property
    def fold_names(self) -> Tuple[str, ...]:
        return FOLDS_100K if self.name == "100k" else ()

    def fold(self, name: str) -> Tuple[Ratings, Ratings]:
        """The predefined (train, test) split `name` (100k: u1..u5, ua, ub)."""
        if name not in self.fold_names:
            raise ValueError(f"fold must be one of {list(self.fold_names)} for "
                             f"{self.name}, got {name!r}")
        if name not in self._folds:
            base, test = (read_tab(os.path.join(self.path, f"{name}.{part}"))
                          for part in ("base", "test"))
            self._folds[name] = (base, test)
        return self._folds[name]


def load_movielens(name: str = "100k", data_home: Optional[str] = None,
                   download: bool = True) -> MovieLens:
    """Load a MovieLens dataset: "100k", "1m", "10m", "20m", "25m", "32m",
    "latest-small" or "latest".

    The files are looked for in `data_home`, then ``$MFREC_DATA``, then the
    user cache (``$XDG_CACHE_HOME/mfrec`` or ``~/.cache/mfrec``); only then
    is the archive downloaded from GroupLens (with tqdm's progress bar when
    tqdm is installed, else a line on stderr), checked and unpacked into the
    cache. Each location may hold the dataset's folder (``ml-100k/``,
    ``ml-1m/``, ``ml-10M100K/``, ``ml-20m/``, ``ml-25m/``, ``ml-32m/``,
    ``ml-latest-small/``, ``ml-latest/``, as in the archives) or be that
    folder itself.

    The check: the archives of 1M to 32M and "latest" must have the SHA-256
    published for them; those of 100K and "latest-small", each file's
    SHA-256. "latest" is a release that GroupLens regenerates from time to
    time: the digest is that of the snapshot of 2023-07-20 (33,832,162
    ratings), so a newer snapshot is refused rather than read unchecked; to
    use one, unpack it yourself into `data_home` (files found there are
    read as they are). Only the ratings and the movies are unpacked.

    Ratings come as published: 1M's are whole stars, the others' half
    stars; ids are the dataset's raw MovieLens ids. `genre_names` are the
    genres the movies list, sorted, as each release spells them (1M's
    "Children's" is "Children" in later ones, which add "IMAX"); "(no
    genres listed)" is no genre. 1M's movies.dat is Latin-1; a movies.dat
    that is valid UTF-8 is read as UTF-8. From 1M up
    the ratings are parsed by :func:`mfrec.read_ratings` in blocks (25M in
    seconds, memory near the final arrays), which needs pyarrow or pandas
    (``pip install "mfrec[data]"``).

    Parameters
    ----------
    name : {"100k", "1m", "10m", "20m", "25m", "32m", "latest-small", "latest"}
        The dataset.
    data_home : str, optional
        A folder to look in first, and where a download is unpacked (default:
        the user cache).
    download : bool
        Download the dataset if it is found nowhere (else FileNotFoundError).

    Returns
    -------
    MovieLens
        The ratings, with the dataset's raw ids, and the catalogue.

    Examples
    --------
    >>> data = mfrec.load_movielens("100k", download=False)
    >>> data.ratings
    Ratings(100000 ratings, 943 users, 1682 items)
    >>> data.title(50), data.genres_of(50)
    ('Star Wars (1977)', ['Action', 'Adventure', 'Romance', 'Sci-Fi', 'War'])
    >>> train, test = data.fold("u1")
    >>> len(train), len(test)
    (80000, 20000)
    """
    if not isinstance(name, str) or name not in RELEASES:
        raise ValueError(f"name must be one of {list(RELEASES)}, got {name!r}")
    folder = find_dataset(name, data_home, download)
    release = RELEASES[name]
    ratings_file, movies_file = (os.path.join(folder, f) for f in (release.ratings, release.movies))
    if name == "100k":
        ratings = read_tab(ratings_file)
        ids, titles, genres, genre_names = read_100k_items(folder)
    elif name == "latest-small":
        ratings = read_latest_ratings(ratings_file)
        ids, titles, genres, genre_names = read_latest_movies(movies_file)
    else:
        ratings = read_large_ratings(ratings_file)
        ids, titles, genres, genre_names = (read_dat_movies if movies_file.endswith(".dat")
                                            else read_latest_movies)(movies_file)
    return MovieLens(name, ratings, ids, titles, genres, genre_names, folder)


def cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "mfrec")


def find_dataset(name: str, data_home: Optional[str] = None, download: bool = True,
                 base_url: Optional[str] = None) -> str:
    """The folder holding dataset `name` (one holding its ratings file),
    downloading it if needed from `base_url` (default: GROUPLENS_URL)."""
    if data_home is not None and not isinstance(data_home, (str, os.PathLike)):
        raise TypeError(f"data_home must be a path (str or os.PathLike), got {data_home!r}")
    release = RELEASES[name]
    places = [p for p in (data_home, os.environ.get("MFREC_DATA"), cache_dir()) if p]
    for place in places:
        for candidate in (os.path.join(place, release.folder), place):
            if os.path.isfile(os.path.join(candidate, release.ratings)) and \
                    (candidate != place or os.path.basename(os.path.normpath(place)) == release.folder):
                return candidate
    if not download:
        raise FileNotFoundError(f"MovieLens {name} not found in {places} and download=False")
    try:
        return download_dataset(name, cache_dir() if data_home is None else data_home, base_url)
    except OSError as e:  # offline, or the server refused: say where the files could be
        if isinstance(e, urllib.error.HTTPError):
            e.close()  # it holds the response open
        raise OSError(f"MovieLens {name} ({release.folder}/) is not in {', '.join(places)} and its "
                      f"download failed ({e}); put the files in a folder and set MFREC_DATA to "
                      f"it (MFREC_DATA is {os.environ.get('MFREC_DATA') or 'not set'})") from None


def download_dataset(name: str, target: str, base_url: Optional[str] = None) -> str:
    """Fetch the archive of dataset `name` from `base_url` (default:
    GROUPLENS_URL), check it and unpack its ratings and movies into
    `target/<folder>`, all or nothing. Returns that folder."""
    release = RELEASES[name]
    url = f"{(base_url or GROUPLENS_URL).rstrip('/')}/{release.archive}"
    os.makedirs(target, exist_ok=True)
    fd, archive = tempfile.mkstemp(prefix=".mfrec-", suffix=".zip", dir=target)
    staging = tempfile.mkdtemp(prefix=".mfrec-", dir=target)
    try:
        with os.fdopen(fd, "wb") as f:
            digest = _fetch(url, f)
        if release.sha256 is not None and digest != release.sha256:
            raise ValueError(f"{url}: the archive failed its SHA-256 check (got {digest})")
        checksums = CHECKSUMS.get(release.folder, {})
        with zipfile.ZipFile(archive) as zf:
            _unpack(zf, url, list(checksums) or [release.ratings, release.movies],
                    checksums, staging)
        dest = os.path.join(target, release.folder)
        if os.path.isdir(dest):
            shutil.rmtree(dest)
        os.replace(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        os.remove(archive)
    return dest


def _fetch(url: str, out) -> str:
    """Write what `url` serves to the file `out`, with a progress bar;
    returns its SHA-256."""
    digest = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=60) as resp:
        total = int(resp.headers.get("Content-Length") or 0)
        # tqdm's bar when it is installed, else a line redrawn on stderr
        bar = progress_bar(tqdm_class() is not None, total or None, f"downloading {url}",
                           unit="B", unit_scale=True, unit_divisor=1024)
        done = 0
        try:
            while True:
                chunk = resp.read(1 << 16)
                if not chunk:
                    break
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if bar is None:
                    _progress(f"downloading {url}", done, total)
                else:
                    bar.update(len(chunk))
        finally:
            close(bar)
            if bar is None:
                print(file=sys.stderr)
    return digest.hexdigest()


def _unpack(zf: zipfile.ZipFile, url: str, files, checksums, folder: str) -> None:
    """Copy the members named `files` (by their base names) into `folder`,
    in 1 MB pieces, checking those that `checksums` lists."""
    members = {os.path.basename(n): n for n in zf.namelist() if not n.endswith("/")}
    for fname in files:
        if fname not in members:
            raise ValueError(f"{url}: the archive has no {fname}")
        digest = hashlib.sha256()
        with zf.open(members[fname]) as src, open(os.path.join(folder, fname), "wb") as dst:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                digest.update(chunk)
                dst.write(chunk)
        if fname in checksums and digest.hexdigest() != checksums[fname]:
            raise ValueError(f"{url}: {fname} failed its SHA-256 check")


def _progress(what, done, total):
    if total:
        bar = "#" * int(30 * done / total)
        print(f"\r{what} [{bar:<30}] {done / 1e6:.1f}/{total / 1e6:.1f} MB",
              end="", file=sys.stderr, flush=True)
    else:
        print(f"\r{what} {done / 1e6:.1f} MB", end="", file=sys.stderr, flush=True)


@dataclass
class LowRankData:
    """Synthetic ratings from a planted model r = mu + P_u . Q_i + noise."""

    ratings: Ratings
    user_factors: np.ndarray
    item_factors: np.ndarray
    global_mean: float
    noise: float


def make_low_rank(n_users: int = 500, n_items: int = 400, rank: int = 5,
                  density: float = 0.1, noise: float = 0.1, global_mean: float = 3.0,
                  seed: Optional[int] = 0) -> LowRankData:
    """Ratings of a planted rank-`rank` model observed at random with
    Gaussian noise of standard deviation `noise`.

    Factor entries are N(0, 1/sqrt(rank)) so that P_u . Q_i has unit
    variance; a rating is ``global_mean + P_u . Q_i + noise``, for a random
    `density` fraction of the (user, item) pairs. Ids are 0..n_users-1 and
    0..n_items-1.

    Returns
    -------
    LowRankData
        The ratings and the planted factors, mean and noise.

    Examples
    --------
    >>> data = mfrec.make_low_rank(n_users=300, n_items=200, rank=3, density=0.2, seed=0)
    >>> data.ratings
    Ratings(12000 ratings, 300 users, 200 items)
    >>> data.user_factors.shape, data.item_factors.shape
    ((300, 3), (200, 3))
    """
    for name, v in (("n_users", n_users), ("n_items", n_items), ("rank", rank),
                    ("density", density), ("noise", noise), ("global_mean", global_mean)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) \
                or (name in ("n_users", "n_items", "rank") and not isinstance(v, numbers.Integral)):
            raise ValueError(f"{name} must be a finite number (an integer for sizes), got {v!r}")
    if min(n_users, n_items, rank) < 1 or not 0 < density <= 1 or noise < 0:
        raise ValueError("need n_users, n_items, rank >= 1, 0 < density <= 1, noise >= 0")
    rng = as_rng(seed)
    scale = rank ** -0.25
    P = rng.normal(0, scale, (n_users, rank))
    Q = rng.normal(0, scale, (n_items, rank))
    n_obs = max(1, int(round(density * n_users * n_items)))
    cells = rng.choice(n_users * n_items, size=n_obs, replace=False)
    u, i = cells // n_items, cells % n_items
    noise = abs(noise)  # NumPy refuses a scale of -0.0
    with np.errstate(over="ignore"):  # beyond float32 is refused just below
        r = global_mean + np.einsum("ij,ij->i", P[u], Q[i]) + rng.normal(0, noise, n_obs)
        r = r.astype(np.float32)
    if not np.isfinite(r).all():
        raise ValueError("global_mean and noise give ratings beyond the float32 range")
    return LowRankData(Ratings(u, i, r), P, Q, global_mean, noise)
