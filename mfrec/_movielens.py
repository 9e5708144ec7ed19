"""The readers of MovieLens's files.

They take files from outside: anything malformed is a ValueError that
names the file (and the line where there is one).
"""
from __future__ import annotations

import csv
import os
import warnings
from typing import List

import numpy as np

from ._read import read_ratings
from .ratings import Ratings


def read_tab(path: str) -> Ratings:
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


def read_100k_items(folder: str):
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


def read_large_ratings(path: str) -> Ratings:
    """ratings.dat (1M, 10M: UserID::MovieID::Rating::Timestamp) or
    ratings.csv (20M on: a userId,movieId,rating,timestamp header), parsed
    in blocks by read_ratings: tens of millions of lines in seconds."""
    dat = path.endswith(".dat")
    try:  # the .dat files have no header: their columns are given the csv's names
        return read_ratings(path, "::" if dat else ",", header=not dat,
                            columns=["userId", "movieId", "rating", "timestamp"] if dat else None,
                            user="userId", item="movieId", rating="rating", timestamp="timestamp")
    except ImportError:
        raise ImportError(f"{path}: MovieLens 1M and the larger releases are read with "
                          "pyarrow or pandas: pip install 'mfrec[data]'") from None


def read_latest_ratings(path: str) -> Ratings:
    """ratings.csv of latest-small, without pyarrow or pandas."""
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


def read_latest_movies(path: str):
    """movies.csv: movieId,title,genres with a header, quoted titles."""
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
                genre_lists.append(_genres(row[2]))
        except (csv.Error, ValueError) as e:  # also UnicodeDecodeError
            raise ValueError(f"{path}, line {rows.line_num}: {e}") from None
    return _listed_catalogue(path, ids, titles, genre_lists)


def read_dat_movies(path: str):
    """movies.dat (1M, 10M): MovieID::Title::Genres lines. 1M's file is
    Latin-1; a file that is valid UTF-8 is read as UTF-8 (Latin-1 text with
    accents almost never is)."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    ids, titles, genre_lists = [], [], []
    # split at "\n" only: str.splitlines would also cut at Latin-1's \x85
    for number, line in enumerate(text.split("\n"), 1):
        line = line.rstrip("\r")
        if not line:
            continue
        movie, _, rest = line.partition("::")
        title, sep, genres = rest.rpartition("::")
        if not sep or not _is_int(movie):
            raise ValueError(f"{path}, line {number}: expected MovieID::Title::Genres, "
                             f"got {line[:60]!r}")
        ids.append(int(movie))
        titles.append(title)
        genre_lists.append(_genres(genres))
    return _listed_catalogue(path, ids, titles, genre_lists)


def _genres(field: str) -> List[str]:
    return [] if field in ("(no genres listed)", "") else field.split("|")


def _listed_catalogue(path, ids, titles, genre_lists):
    """The catalogue of movies given their genre lists: the genre names are
    those listed, sorted."""
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
