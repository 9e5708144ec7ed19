"""MovieLens loaders and a synthetic low-rank generator.

Where the files are looked for, in order: ``data_home``, ``$MFREC_DATA``,
the user cache (``$XDG_CACHE_HOME/mfrec`` or ``~/.cache/mfrec``), and only
then downloaded from GroupLens into the cache, with every file checked
against its SHA-256. Each location may hold the dataset's folder
(``ml-100k/``, ``ml-latest-small/``) or be that folder itself.
"""
from __future__ import annotations

import csv
import hashlib
import io
import math
import numbers
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import warnings
import zipfile
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from ._progress import close, progress_bar, tqdm_class
from .ratings import Ratings, as_rng

__all__ = ["MovieLens", "load_movielens", "make_low_rank", "LowRankData"]

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens"

# SHA-256 of the published files (ml-100k's README and helper scripts aside).
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
NAMES = {"100k": "ml-100k", "latest-small": "ml-latest-small"}
FOLDS_100K = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")


@dataclass
class MovieLens:
    """A MovieLens dataset.

    Attributes
    ----------
    name : "100k" or "latest-small"
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
            base, test = (_read_tab(os.path.join(self.path, f"{name}.{part}"))
                          for part in ("base", "test"))
            self._folds[name] = (base, test)
        return self._folds[name]


def load_movielens(name: str = "100k", data_home: Optional[str] = None,
                   download: bool = True) -> MovieLens:
    """Load MovieLens "100k" or "latest-small".

    The files are looked for in `data_home`, then ``$MFREC_DATA``, then the
    user cache (``$XDG_CACHE_HOME/mfrec`` or ``~/.cache/mfrec``); only then
    are they downloaded from GroupLens into the cache (with tqdm's progress
    bar when tqdm is installed, else a line on stderr), every file checked
    against its SHA-256. Each location may hold the dataset's folder
    (``ml-100k/``, ``ml-latest-small/``) or be that folder itself.

    Parameters
    ----------
    name : {"100k", "latest-small"}
        The dataset.
    data_home : str, optional
        A folder to look in first.
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
    if name not in NAMES:
        raise ValueError(f"name must be one of {sorted(NAMES)}, got {name!r}")
    folder = find_dataset(name, data_home, download)
    if name == "100k":
        ratings = _read_tab(os.path.join(folder, "u.data"))
        ids, titles, genres, genre_names = _read_100k_items(folder)
    else:
        ratings = _read_latest_ratings(os.path.join(folder, "ratings.csv"))
        ids, titles, genres, genre_names = _read_latest_movies(os.path.join(folder, "movies.csv"))
    return MovieLens(name, ratings, ids, titles, genres, genre_names, folder)


def cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "mfrec")


def find_dataset(name: str, data_home: Optional[str] = None, download: bool = True,
                 base_url: str = GROUPLENS_URL) -> str:
    """The folder holding dataset `name`, downloading it if needed."""
    if data_home is not None and not isinstance(data_home, (str, os.PathLike)):
        raise TypeError(f"data_home must be a path (str or os.PathLike), got {data_home!r}")
    folder_name = NAMES[name]
    marker = next(iter(CHECKSUMS[folder_name]))
    places = [p for p in (data_home, os.environ.get("MFREC_DATA"), cache_dir()) if p]
    for place in places:
        for candidate in (os.path.join(place, folder_name), place):
            if os.path.isfile(os.path.join(candidate, marker)) and \
                    (candidate != place or os.path.basename(os.path.normpath(place)) == folder_name):
                return candidate
    if not download:
        raise FileNotFoundError(f"MovieLens {name} not found in {places} and download=False")
    try:
        return download_dataset(name, cache_dir() if data_home is None else data_home, base_url)
    except OSError as e:  # offline, or the server refused: say where the files could be
        if isinstance(e, urllib.error.HTTPError):
            e.close()  # it holds the response open
        raise OSError(f"MovieLens {name} ({folder_name}/) is not in {', '.join(places)} and its "
                      f"download failed ({e}); put the files in a folder and set MFREC_DATA to "
                      f"it (MFREC_DATA is {os.environ.get('MFREC_DATA') or 'not set'})") from None


def download_dataset(name: str, target: str, base_url: str = GROUPLENS_URL) -> str:
    """Fetch `<base_url>/<folder>.zip`, check every file's SHA-256 and unpack
    into `target/<folder>`. Returns that folder."""
    folder_name = NAMES[name]
    url = f"{base_url.rstrip('/')}/{folder_name}.zip"
    os.makedirs(target, exist_ok=True)
    buf = io.BytesIO()
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
                buf.write(chunk)
                done += len(chunk)
                if bar is None:
                    _progress(f"downloading {url}", done, total)
                else:
                    bar.update(len(chunk))
        finally:
            close(bar)
            if bar is None:
                print(file=sys.stderr)
    with zipfile.ZipFile(buf) as zf:
        members = {os.path.basename(n): n for n in zf.namelist() if not n.endswith("/")}
        staging = tempfile.mkdtemp(prefix=".mfrec-", dir=target)
        try:
            for fname, digest in CHECKSUMS[folder_name].items():
                if fname not in members:
                    raise ValueError(f"{url}: the archive has no {fname}")
                data = zf.read(members[fname])
                if hashlib.sha256(data).hexdigest() != digest:
                    raise ValueError(f"{url}: {fname} failed its SHA-256 check")
                with open(os.path.join(staging, fname), "wb") as f:
                    f.write(data)
            dest = os.path.join(target, folder_name)
            if os.path.isdir(dest):
                shutil.rmtree(dest)
            os.replace(staging, dest)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return dest


def _progress(what, done, total):
    if total:
        bar = "#" * int(30 * done / total)
        print(f"\r{what} [{bar:<30}] {done / 1e6:.1f}/{total / 1e6:.1f} MB",
              end="", file=sys.stderr, flush=True)
    else:
        print(f"\r{what} {done / 1e6:.1f} MB", end="", file=sys.stderr, flush=True)


# The readers take files from outside: anything malformed is a ValueError
# that names the file (and the line where there is one).

def _read_tab(path: str) -> Ratings:
    """user \\t item \\t rating \\t timestamp lines, all integers."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "no data": reported below
            a = np.loadtxt(path, dtype=np.int64, delimiter="\t", ndmin=2)
    except ValueError as e:  # also UnicodeDecodeError
        raise ValueError(f"{path}: {e}") from None
    if a.shape[1] != 4 or len(a) == 0:
        raise ValueError(f"{path}: expected lines of 4 tab-separated integers")
    return Ratings(a[:, 0], a[:, 1], a[:, 2].astype(np.float32), a[:, 3])


def _read_100k_items(folder: str):
    genre_file, item_file = os.path.join(folder, "u.genre"), os.path.join(folder, "u.item")
    with open(genre_file, encoding="latin-1") as f:
        genre_names = [line.split("|")[0] for line in f if line.strip()]
    ids, titles, flags = [], [], []
    with open(item_file, encoding="latin-1") as f:
        for number, line in enumerate(f, 1):
            parts = line.rstrip("\n").split("|")
            if len(parts) != 5 + len(genre_names) or not _is_int(parts[0]):
                raise ValueError(f"{item_file}, line {number}: expected a movie id and "
                                 f"{4 + len(genre_names)} more fields, got {line[:40]!r}")
            ids.append(int(parts[0]))
            titles.append(parts[1])
            flags.append([p == "1" for p in parts[5:]])
    return _catalogue(item_file, ids, titles, np.array(flags, bool).reshape(len(ids), len(genre_names)),
                      genre_names)


def _read_latest_ratings(path: str) -> Ratings:
    with open(path, newline="", encoding="utf-8") as f:
        try:
            rows = [row for row in csv.reader(f) if row]  # blank lines skipped
        except (csv.Error, ValueError) as e:  # also UnicodeDecodeError
            raise ValueError(f"{path}: {e}") from None
    if not rows or rows[0][:3] != ["userId", "movieId", "rating"]:
        raise ValueError(f"{path}: unexpected header {rows[0] if rows else '(empty file)'}")
    short = next((row for row in rows if len(row) < 4), None)
    if short is not None:
        raise ValueError(f"{path}: expected 4 fields, got {short}")
    cols = list(zip(*rows[1:])) or [()] * 4
    try:
        return Ratings(np.array(cols[0], np.int64), np.array(cols[1], np.int64),
                       np.array(cols[2], np.float32), np.array(cols[3], np.int64))
    except (ValueError, OverflowError) as e:
        raise ValueError(f"{path}: {e}") from None


def _read_latest_movies(path: str):
    ids, titles, genre_lists = [], [], []
    with open(path, newline="", encoding="utf-8") as f:
        rows = csv.reader(f)
        try:
            header = next(rows, None)
            if header != ["movieId", "title", "genres"]:
                raise ValueError(f"unexpected header {header}")
            for row in rows:
                if not row:
                    continue
                if len(row) < 3 or not _is_int(row[0]):
                    raise ValueError(f"expected a movie id, a title and genres, got {row}")
                ids.append(int(row[0]))
                titles.append(row[1])
                genre_lists.append([] if row[2] == "(no genres listed)" else row[2].split("|"))
        except (csv.Error, ValueError) as e:  # also UnicodeDecodeError
            raise ValueError(f"{path}, line {rows.line_num}: {e}") from None
    genre_names = sorted({g for gl in genre_lists for g in gl})
    col = {g: j for j, g in enumerate(genre_names)}
    flags = np.zeros((len(ids), len(genre_names)), bool)
    for r, gl in enumerate(genre_lists):
        flags[r, [col[g] for g in gl]] = True
    return _catalogue(path, ids, titles, flags, genre_names)


def _is_int(text: str) -> bool:
    """A decimal integer in the int64 range."""
    try:
        return -2**63 <= int(text) < 2**63
    except ValueError:
        return False


def _catalogue(path, ids, titles, flags, genre_names):
    """(ids, titles, genre flags, genre names) sorted by id; ids unique."""
    ids = np.array(ids, np.int64)
    order = np.argsort(ids, kind="stable")
    ids = ids[order]
    repeated = ids[1:][ids[1:] == ids[:-1]]
    if len(repeated):
        raise ValueError(f"{path}: movie id {repeated[0]} appears more than once")
    return ids, np.array(titles, dtype=object)[order], flags[order], genre_names


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
    r = global_mean + np.einsum("ij,ij->i", P[u], Q[i]) + rng.normal(0, noise, n_obs)
    with np.errstate(over="ignore"):
        r = r.astype(np.float32)
    if not np.isfinite(r).all():
        raise ValueError("global_mean and noise give ratings beyond the float32 range")
    return LowRankData(Ratings(u, i, r), P, Q, global_mean, noise)
