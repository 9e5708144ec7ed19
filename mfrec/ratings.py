"""Rating triplets, and the input checks every entry point shares."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

import numpy as np

from ._arrays import as_ids, as_ratings, unmasked
from ._sparse import is_sparse, sparse_triplets
from ._tables import column, column_names, pick_columns, table_kind

__all__ = ["Ratings", "as_ids", "as_ratings", "as_rng", "from_any", "unmasked"]


def as_rng(seed) -> np.random.Generator:
    """NumPy's generator for `seed` (None or an integer >= 0), naming it on error."""
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError) as e:
        raise type(e)(f"seed must be None or an integer >= 0, got {seed!r}") from None


@dataclass(frozen=True)
class Ratings:
    """Rating triplets (user, item, rating) with an optional timestamp.

    ``len(r)`` is the number of ratings; ``r[mask_or_indices]`` selects a
    subset; ``r.user``, ``r.item``, ``r.rating`` are NumPy arrays, ready for
    ``Model.fit(r.user, r.item, r.rating)``.

    Examples
    --------
    >>> r = mfrec.Ratings([1, 1, 2], [10, 20, 10], [4.0, 3.0, 5.0])
    >>> r
    Ratings(3 ratings, 2 users, 2 items)
    >>> r[r.rating >= 4].item
    array([10, 10])
    """

    user: np.ndarray
    item: np.ndarray
    rating: np.ndarray
    timestamp: Optional[np.ndarray] = None

    def __post_init__(self):
        user = as_ids(self.user, "user")
        item = as_ids(self.item, "item")
        rating = as_ratings(self.rating)
        n = len(user)
        if len(item) != n or len(rating) != n:
            raise ValueError(f"user, item and rating must have the same length "
                             f"({n}, {len(item)}, {len(rating)})")
        object.__setattr__(self, "user", user)
        object.__setattr__(self, "item", item)
        object.__setattr__(self, "rating", rating)
        if self.timestamp is not None:
            ts = as_ids(self.timestamp, "timestamp", strings=False)
            if len(ts) != n:
                raise ValueError("timestamp must have one entry per rating")
            object.__setattr__(self, "timestamp", ts)

    def __len__(self) -> int:
        return len(self.user)

    def __getitem__(self, index) -> "Ratings":
        ts = None if self.timestamp is None else self.timestamp[index]
        return Ratings(self.user[index], self.item[index], self.rating[index], ts)

    def __repr__(self) -> str:
        return (f"Ratings({len(self)} ratings, {len(np.unique(self.user))} users, "
                f"{len(np.unique(self.item))} items)")

    @classmethod
    def from_dataframe(cls, table, user: Optional[str] = None, item: Optional[str] = None,
                       rating: Optional[str] = None, timestamp: Union[str, None, bool] = None,
                       where: str = "from_dataframe") -> "Ratings":
        """The ratings of a pandas or polars DataFrame or a pyarrow Table.

        `user`, `item`, `rating` and `timestamp` name its columns; a name
        not given is guessed, ignoring case, from a short list (user,
        userId, user_id; item, itemId, item_id, movieId, movie_id; rating,
        ratings, score; timestamp, taken when present). Numeric columns
        without nulls are used without a copy where their dtype is already
        the one of ``Ratings`` (int64 ids, float32 ratings). Datetime timestamps become
        seconds since the epoch; ``timestamp=False`` leaves them out.

        Examples
        --------
        >>> import pandas as pd
        >>> df = pd.DataFrame({"userId": [1, 1, 2], "movieId": [10, 20, 10],
        ...                    "stars": [4.0, 3.0, 5.0]})
        >>> mfrec.Ratings.from_dataframe(df, rating="stars")
        Ratings(3 ratings, 2 users, 2 items)
        """
        kind = table_kind(table)
        if kind is None:
            raise TypeError(f"{where}: expected a pandas or polars DataFrame or a pyarrow "
                            f"Table, got {type(table).__name__}")
        chosen = dict(user=user, item=item, rating=rating, timestamp=timestamp)
        if timestamp is False:  # not wanted (fit)
            del chosen["timestamp"]
        names = pick_columns(column_names(table, kind), chosen, where)
        arrays = {}
        for role, name in names.items():
            if name is None:
                continue
            a, label = column(table, kind, name, where), f"{where}: column {name!r} ({role})"
            if role == "rating":
                arrays[role] = as_ratings(a, label)
            else:
                if a.dtype.kind == "M":  # datetime64: seconds since the epoch
                    a = a.astype("datetime64[s]").astype(np.int64)
                arrays[role] = as_ids(a, label, strings=role != "timestamp")
        return cls(arrays["user"], arrays["item"], arrays["rating"], arrays.get("timestamp"))

    @classmethod
    def from_sparse(cls, matrix, user_ids=None, item_ids=None,
                    where: str = "from_sparse") -> "Ratings":
        """The stored entries of a scipy.sparse matrix or array with users as
        rows and items as columns (implicit's convention); its values are the
        ratings (or confidences). `user_ids` / `item_ids` give the raw id of
        each row / column (default 0..n-1). Every stored entry is a rating,
        an explicit zero included (``matrix.eliminate_zeros()`` drops them);
        duplicate entries are summed, as scipy does. Rows and columns
        without entries hold no rating. The ratings come row by row."""
        if not is_sparse(matrix):
            raise TypeError(f"{where}: expected a scipy.sparse matrix or array, got "
                            f"{type(matrix).__name__}")
        users, items, values = sparse_triplets(matrix, user_ids, item_ids, where)
        return cls(users, items, as_ratings(values, f"{where}: matrix values"))

    def to_dataframe(self):
        """The triplets as a pandas DataFrame (needs pandas)."""
        import pandas as pd

        cols = {"user": self.user, "item": self.item, "rating": self.rating}
        if self.timestamp is not None:
            cols["timestamp"] = self.timestamp
        return pd.DataFrame(cols)


def from_any(data, items=None, ratings=None, where: str = "fit", *, user=None, item=None,
             rating=None, user_ids=None, item_ids=None, strict: bool = True):
    """`data` as a Ratings when it is a table or a sparse matrix (read with
    the column names or the row/column ids given), else `data` unchanged.
    Arrays given beside a table are a TypeError, and so (if `strict`; not
    for validation data, which may come in another form than the training
    data) are column names or ids given for other inputs."""
    columns = dict(user=user, item=item, rating=rating)
    named = [f"{k}=" for k, v in columns.items() if v is not None]
    labelled = [f"{k}=" for k, v in (("user_ids", user_ids), ("item_ids", item_ids))
                if v is not None]
    kind = "table" if table_kind(data) else "sparse matrix" if is_sparse(data) else None
    if kind is not None and (items is not None or ratings is not None):
        raise TypeError(f"{where}: a {kind} holds the ratings: give it alone, without items "
                        "and ratings arrays")
    if kind is None and not strict:
        return data
    if kind != "table" and named:
        raise TypeError(f"{where}: {', '.join(named)} name columns of a DataFrame or Table, "
                        f"but the ratings are a {kind or type(data).__name__}")
    if kind != "sparse matrix" and labelled:
        raise TypeError(f"{where}: {', '.join(labelled)} label the rows/columns of a "
                        f"scipy.sparse matrix, but the ratings are a {kind or type(data).__name__}")
    if kind == "table":
        return Ratings.from_dataframe(data, **columns, timestamp=False, where=where)
    if kind == "sparse matrix":
        return Ratings.from_sparse(data, user_ids, item_ids, where=where)
    return data
