"""Ratings from tables (pandas, polars, pyarrow) and scipy.sparse matrices:
each gives the model that the same triplets give, and bad tables get errors
that name the column."""
import subprocess
import sys

import numpy as np
import pytest

import mfrec

pd = pytest.importorskip("pandas")
pl = pytest.importorskip("polars")
pa = pytest.importorskip("pyarrow")
sp = pytest.importorskip("scipy.sparse")


@pytest.fixture(scope="module")
def triplets():
    """Unique (user, item) pairs in row-major order (the order a CSR matrix
    gives back), integer-valued ratings, ids that are not 0..n-1."""
    rng = np.random.default_rng(3)
    pairs = np.unique(np.stack([rng.integers(0, 40, 600), rng.integers(0, 30, 600)], 1),
                      axis=0)
    users, items = pairs[:, 0] * 7 + 1, pairs[:, 1] * 3 + 100
    return users, items, rng.integers(1, 6, len(pairs)).astype(np.float64)


def fitted(data=None, algorithm="sgd", **kwargs):
    params = dict(factors=4, epochs=3, seed=5) if algorithm == "sgd" else \
        dict(factors=4, iterations=3, alpha=2.0, seed=5)
    return mfrec.Model(algorithm, **params).fit(*data, **kwargs)


def same_model(a, b):
    for name in ("user_ids", "item_ids", "user_factors", "item_factors"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


def frame(triplets, names=("userId", "movieId", "rating")):
    return pd.DataFrame(dict(zip(names, triplets)))


def as_kind(df, kind):
    return {"pandas": lambda: df, "polars": lambda: pl.from_pandas(df),
            "pyarrow": lambda: pa.Table.from_pandas(df, preserve_index=False),
            "record batch": lambda: pa.RecordBatch.from_pandas(df, preserve_index=False)}[kind]()


KINDS = ["pandas", "polars", "pyarrow", "record batch"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_table_fits_the_model_of_its_triplets(triplets, kind):
    table = as_kind(frame(triplets), kind)
    expected = fitted(triplets, validation=triplets)
    got = fitted((table,), validation=table)
    same_model(got, expected)
    assert got.history[-1]["valid_rmse"] == expected.history[-1]["valid_rmse"]
    assert got.score(table) == expected.score(*triplets)
    assert mfrec.metrics.evaluate(got, table, k=5) == mfrec.metrics.evaluate(
        expected, mfrec.Ratings(*triplets), k=5)


@pytest.mark.parametrize("kind", KINDS)
def test_named_columns_in_any_order(triplets, kind):
    df = frame(triplets, ("who", "what", "stars"))[["stars", "what", "who"]]
    df["user_id"] = 0  # a guessable name that is not the one chosen
    got = fitted((as_kind(df, kind),), user="who", item="what", rating="stars")
    same_model(got, fitted(triplets))


def test_pandas_columns_may_be_numbers(triplets):
    df = pd.DataFrame(np.column_stack(triplets)).astype({0: np.int64, 1: np.int64})
    same_model(fitted((df,), user=0, item=1, rating=2), fitted(triplets))


def test_from_dataframe_reads_timestamps_and_shares_int64_columns(triplets):
    df = frame(triplets)
    df["Timestamp"] = pd.to_datetime(np.arange(len(df)) * 60, unit="s")
    r = mfrec.Ratings.from_dataframe(df)
    assert np.array_equal(r.timestamp, np.arange(len(df)) * 60)
    assert np.shares_memory(r.user, df["userId"].to_numpy())
    assert r.rating.dtype == np.float32
    assert mfrec.Ratings.from_dataframe(df, timestamp=False).timestamp is None
    table = pa.table({"user": pa.array([5, 6], pa.int64()), "item": [1, 2], "score": [1, 2]})
    r = mfrec.Ratings.from_dataframe(table)
    assert np.shares_memory(r.user, table.column("user").chunk(0).to_numpy())
    assert r.rating.tolist() == [1.0, 2.0]


def test_nullable_columns_without_nulls_are_read(triplets):
    df = frame(triplets).astype({"userId": "Int64", "movieId": "Int32", "rating": "Float64"})
    same_model(fitted((df,)), fitted(triplets))


def test_an_item_table_of_one_chunk_per_row_block_is_read(triplets):
    table = pa.Table.from_pandas(frame(triplets), preserve_index=False)
    chunked = pa.concat_tables([table.slice(0, 100), table.slice(100)])
    assert chunked.column("userId").num_chunks == 2
    same_model(fitted((chunked,)), fitted(triplets))


BAD_TABLES = [
    # (change to the table, fit keywords, error, message)
    (lambda d: d.rename(columns={"userId": "person"}), {}, ValueError,
     r"no user column among \['person', 'movieId', 'rating'\].*user="),
    (lambda d: d.assign(user_id=d.userId), {}, ValueError,
     r"columns \['userId', 'user_id'\] could each be the user column"),
    (lambda d: d, dict(item="movie"), ValueError,
     r"item='movie' is not a column of the table; its columns are \['userId', 'movieId'"),
    (lambda d: d, dict(user="movieId"), ValueError,
     "column 'movieId' is given as both user and item"),
    (lambda d: d, dict(user="rating", rating="userId"), TypeError,
     r"fit: column 'rating' \(user\) must hold integer ids, got dtype float64"),
    (lambda d: d.assign(rating=d.rating.astype(str)), {}, TypeError,
     r"column 'rating' \(rating\) must hold real numbers"),
    (lambda d: d.assign(rating=d.rating.where(d.index != 4)), {}, ValueError,
     "fit: column 'rating' has 1 missing value"),
    (lambda d: d.assign(movieId=d.movieId.astype("Int64").where(d.index > 1)), {}, ValueError,
     "fit: column 'movieId' has 2 missing value"),
    (lambda d: d.assign(rating=np.where(d.index == 2, np.inf, d.rating)), {}, ValueError,
     r"column 'rating' \(rating\) must be finite: entry 2 is"),
]


@pytest.mark.parametrize("change, kwargs, error, message", BAD_TABLES)
@pytest.mark.parametrize("kind", ["pandas", "polars", "pyarrow"])
def test_bad_tables_get_errors_naming_the_column(triplets, change, kwargs, error, message,
                                                 kind):
    table = as_kind(change(frame(triplets)), kind)
    with pytest.raises(error, match=message):
        mfrec.Model("sgd").fit(table, **kwargs)


def test_bad_combinations_are_refused(triplets):
    df = frame(triplets)
    model = mfrec.Model("sgd")
    with pytest.raises(TypeError, match="a table holds the ratings: give it alone"):
        model.fit(df, triplets[1], triplets[2])
    with pytest.raises(TypeError, match="user= name columns of a DataFrame or Table, but the "
                                        "ratings are a ndarray"):
        model.fit(*triplets, user="userId")
    with pytest.raises(TypeError, match="user_ids= label the rows/columns of a scipy.sparse"):
        model.fit(df, user_ids=[1, 2])
    with pytest.raises(TypeError, match="call .collect"):
        model.fit(pl.from_pandas(df).lazy())
    with pytest.raises(TypeError, match="expected a pandas or polars DataFrame"):
        mfrec.Ratings.from_dataframe({"user": [1]})
    dup = df.assign(extra=df.movieId).set_axis(["userId", "movieId", "rating", "movieId"],
                                               axis=1)
    with pytest.raises(ValueError, match="column 'movieId' is not unique"):
        model.fit(dup, item="movieId")


# ---- sparse -------------------------------------------------------------------

SPARSE = ["csr_matrix", "csr_array", "csc_matrix", "csc_array", "coo_matrix", "coo_array",
          "lil_array", "dok_matrix"]


def matrix_of(triplets, kind):
    users, items, ratings = triplets
    rows, cols = np.unique(users, return_inverse=True)[1], np.unique(items, return_inverse=True)[1]
    return getattr(sp, kind)(sp.coo_array((ratings, (rows, cols))))


@pytest.mark.parametrize("kind", SPARSE)
@pytest.mark.parametrize("algorithm", ["sgd", "wals"])
def test_a_sparse_matrix_fits_the_model_of_its_entries(triplets, kind, algorithm):
    m = matrix_of(triplets, kind)
    labels = dict(user_ids=np.unique(triplets[0]), item_ids=np.unique(triplets[1]))
    got = fitted((m,), algorithm, **labels, validation=m)
    same_model(got, fitted(triplets, algorithm, validation=triplets))
    plain = fitted((m,), algorithm)  # rows and columns numbered 0..n-1
    assert np.array_equal(plain.user_ids, np.arange(m.shape[0]))
    assert np.array_equal(plain.item_factors, got.item_factors)


def test_sparse_duplicates_are_summed_and_stored_zeros_kept(triplets):
    coo = sp.coo_array((np.array([1.0, 2.0, 0.0, 4.0]),
                        (np.array([0, 0, 1, 2]), np.array([1, 1, 0, 2]))), shape=(4, 3))
    r = mfrec.Ratings.from_sparse(coo)
    assert (r.user.tolist(), r.item.tolist(), r.rating.tolist()) == \
        ([0, 1, 2], [1, 0, 2], [3.0, 0.0, 4.0])
    csr = sp.csr_array((np.array([1.0, 2.0]), np.array([1, 1]), np.array([0, 2, 2, 2, 2])),
                       shape=(4, 3))
    assert not csr.has_canonical_format
    assert mfrec.Ratings.from_sparse(csr).rating.tolist() == [3.0]
    assert csr.nnz == 2  # the caller's matrix is left as it was


@pytest.mark.parametrize("labels, message", [
    (dict(user_ids=[1, 2]), "fit: user_ids has 2 ids for 4 rows: give one per row"),
    (dict(item_ids=[5, 6, 5]), "fit: item_ids lists id 5 twice"),
    (dict(item_ids=[1.5, 2.5, 3.5]), "fit: item_ids must hold integer ids"),
])
def test_bad_sparse_labels(labels, message):
    m = sp.csr_array(np.eye(4, 3))
    with pytest.raises((TypeError, ValueError), match=message):
        mfrec.Model("sgd").fit(m, **labels)


def test_bad_sparse_values():
    m = sp.csr_array(np.array([[1.0, np.nan], [0.0, 2.0]]))
    with pytest.raises(ValueError, match="from_sparse: matrix values must be finite"):
        mfrec.Ratings.from_sparse(m)
    with pytest.raises(TypeError, match="from_sparse: matrix values must hold real numbers"):
        mfrec.Ratings.from_sparse(sp.csr_array(np.array([[1j, 0], [0, 1]])))
    with pytest.raises(TypeError, match="expected a scipy.sparse matrix"):
        mfrec.Ratings.from_sparse(np.eye(2))


def test_importing_mfrec_imports_no_table_library(run_env, tmp_path):
    code = ("import sys, mfrec; print(sorted(m for m in ('pandas', 'polars', 'pyarrow', "
            "'scipy') if m in sys.modules))")
    # from outside the source tree, the mfrec the tests import (installed or built in place)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=tmp_path, env=run_env)
    assert out.stdout.strip() == "[]"


# ---- files --------------------------------------------------------------------

ENGINES = ["pyarrow", "pandas"]


def write(path, triplets, sep, header=None, ts=True):
    rows = zip(*triplets, range(len(triplets[0]))) if ts else zip(*triplets)
    lines = [sep.join(str(int(v)) if k != 2 else f"{v:g}" for k, v in enumerate(row))
             for row in rows]
    path.write_text("\n".join(([header] if header else []) + lines) + "\n")
    return path


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("sep, header", [(",", "userId,movieId,rating,timestamp"),
                                         ("\t", None), ("::", None), (";", '"user";"item";'
                                                                          '"score";"timestamp"')])
def test_read_ratings_reads_every_separator(tmp_path, triplets, engine, sep, header):
    path = write(tmp_path / "r.txt", triplets, sep, header)
    r = mfrec.read_ratings(path, engine=engine)
    assert (r.user.dtype, r.item.dtype, r.rating.dtype) == (np.int64, np.int64, np.float32)
    for got, expected in zip((r.user, r.item, r.rating, r.timestamp),
                             (*triplets, np.arange(len(r)))):
        assert np.array_equal(got, expected)
    same_model(fitted((r,)), fitted(triplets))


@pytest.mark.parametrize("engine", ENGINES)
def test_read_ratings_chooses_and_names_columns(tmp_path, triplets, engine):
    path = write(tmp_path / "r.csv", triplets, ",", ts=False)
    r = mfrec.read_ratings(path, columns=["b", "a", "r"], user="a", item="b", rating="r",
                           engine=engine)
    assert np.array_equal(r.user, triplets[1]) and np.array_equal(r.item, triplets[0])
    assert r.timestamp is None
    headed = write(tmp_path / "h.csv", triplets, ",", "u,i,stars", ts=False)
    r = mfrec.read_ratings(headed, sep=",", user="u", item="i", rating="stars", engine=engine)
    assert np.array_equal(r.rating, triplets[2])
    with pytest.raises(ValueError, match=r"no user column among \['u', 'i', 'stars'\]"):
        mfrec.read_ratings(headed, engine=engine)


def test_read_ratings_reads_parquet_and_compressed_text(tmp_path, triplets):
    import pyarrow.parquet as pq

    df = frame(triplets).astype({"userId": np.int32})
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "r.parquet",
                   row_group_size=100)
    r = mfrec.read_ratings(tmp_path / "r.parquet")
    assert r.user.dtype == np.int64 and np.array_equal(r.user, triplets[0])
    assert np.array_equal(r.rating, triplets[2]) and r.timestamp is None
    df.to_csv(tmp_path / "r.csv.gz", index=False)
    for engine in ENGINES:
        assert np.array_equal(mfrec.read_ratings(tmp_path / "r.csv.gz", engine=engine).item,
                              triplets[1])


@pytest.mark.parametrize("engine, name", [(e, n) for e in ENGINES for n in ("r.csv", "r.csv.gz")]
                         + [("pyarrow", "r.parquet")])
def test_read_ratings_in_many_blocks(tmp_path, triplets, monkeypatch, engine, name):
    """Blocks of ~30 rows: the arrays are sized from the first block (text:
    and the file size; Parquet: its row count), grow and shrink."""
    from mfrec import _read

    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pandas(frame(triplets)), tmp_path / name, row_group_size=7)
    else:
        frame(triplets).to_csv(tmp_path / name, index=False)
    monkeypatch.setattr(_read, "BLOCK_BYTES", 1000)
    monkeypatch.setattr(_read, "PANDAS_ROWS", 30)
    r = mfrec.read_ratings(tmp_path / name, engine=engine)
    for got, expected in zip((r.user, r.item, r.rating), triplets):
        assert np.array_equal(got, expected)
    assert r.user.base is None and r.rating.flags.owndata


@pytest.mark.parametrize("sep, header", [(",", "userId,movieId,rating,timestamp"),
                                         ("::", None)])
@pytest.mark.parametrize("readers, pieces", [(2, 1), (3, 1), (7, 1), (2, 3)])
@pytest.mark.parametrize("engine", ENGINES)
def test_read_ratings_in_spans_side_by_side(tmp_path, triplets, monkeypatch, sep, header,
                                            readers, pieces, engine):
    """A text file cut into spans of whole lines, read by parallel readers
    (the header only in the first span) into the same arrays: the same
    arrays."""
    from mfrec import _read

    path = write(tmp_path / "r.txt", triplets, sep, header)
    monkeypatch.setattr(_read, "BLOCK_BYTES", 500)
    monkeypatch.setattr(_read, "PANDAS_ROWS", 20)
    monkeypatch.setattr(_read, "SPAN_BYTES", 600)
    monkeypatch.setattr(_read, "READERS", readers)
    monkeypatch.setattr(_read, "PIECES", pieces)
    monkeypatch.setattr(_read, "_readers", lambda: readers)
    assert len(_read._spans(str(path))) == readers * pieces
    r = mfrec.read_ratings(path, engine=engine)
    for got, expected in zip((r.user, r.item, r.rating, r.timestamp),
                             (*triplets, np.arange(len(r)))):
        assert np.array_equal(got, expected)
    strings = mfrec.read_ratings(path, string_ids=True, engine=engine)
    assert np.array_equal(strings.user, triplets[0].astype(str))
    lines = path.read_text().splitlines()
    lines[-3] = lines[-3].replace(sep, sep + "x", 1)  # a bad item id in the last span
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=f"read_ratings: {path}.*invalid value 'x"):
        mfrec.read_ratings(path, engine=engine)


def test_read_ratings_with_pyarrow_leaves_pandas_unimported(tmp_path, triplets, run_env):
    """pyarrow's Array.to_numpy imports pandas (a third of a second); the
    reader takes the numbers from the arrays' buffers instead."""
    path = write(tmp_path / "r.csv", triplets, ",", "userId,movieId,rating,timestamp")
    code = ("import sys, mfrec; r = mfrec.read_ratings(sys.argv[1], engine='pyarrow'); "
            "assert r.rating.dtype == 'float32' and len(r) == int(sys.argv[2]); "
            "print('pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(path), str(len(triplets[0]))],
                         capture_output=True, text=True, check=True, cwd=tmp_path, env=run_env)
    assert out.stdout.strip() == "False"


def test_read_ratings_default_engines(tmp_path, triplets, monkeypatch):
    """pandas reads integer ids by default, pyarrow string ids (pandas makes
    a Python string of each)."""
    from mfrec import _read

    path = write(tmp_path / "r.csv", triplets, ",", "userId,movieId,rating,timestamp")

    def refused(*args, **kwargs):
        raise AssertionError("not the default engine")

    with monkeypatch.context() as m:
        m.setattr(_read, "_arrow_blocks", refused)
        assert np.array_equal(mfrec.read_ratings(path).user, triplets[0])
    monkeypatch.setattr(_read, "_pandas_blocks", refused)
    assert np.array_equal(mfrec.read_ratings(path, string_ids=True).user,
                          triplets[0].astype(str))


def test_spans_end_at_line_ends(tmp_path, monkeypatch):
    from mfrec import _read

    path = tmp_path / "r.csv"
    path.write_bytes(b"1,2,3\n" * 40 + b"10,20,30\n")  # no cut may fall inside a line
    monkeypatch.setattr(_read, "SPAN_BYTES", 10)
    monkeypatch.setattr(_read, "_readers", lambda: _read.READERS)
    spans = _read._spans(str(path))
    data = path.read_bytes()
    assert spans[0][0] == 0 and spans[-1][1] == len(data)
    assert len(spans) == _read.READERS * _read.PIECES
    monkeypatch.setattr(_read, "_readers", lambda: 1)  # one reader: no spans
    assert _read._spans(str(path)) == [(0, len(data))]
    for (a, b), (c, _) in zip(spans, spans[1:] + [(len(data), None)]):
        assert b == c and data[b - 1:b] == b"\n"


def test_one_reader_per_core(monkeypatch):
    from mfrec import _read

    for cores, readers in ((1, 1), (2, 2), (64, _read.READERS)):
        monkeypatch.setattr(_read, "available_cores", lambda: cores)
        assert _read._readers() == readers


BAD_FILES = [  # both engines: the same errors, naming the first bad value
    ("user,item,rating\n1,2,3\nx,2,3\n", "user", ValueError, "invalid value 'x'.*integers"),
    ("user,item,rating\n1,2,3\n1,,3\n", "item", ValueError, "1 missing value"),
    # only an empty field is missing, not a word such as NA
    ("user,item,rating\n1,2,3\nNA,2,3\n", "user", ValueError, "invalid value 'NA'"),
    ("user,item,rating\n1,2,3\n1,2,NULL\n", "rating", ValueError, "invalid value 'NULL'"),
    ("user,item,rating\n1,2,3\n1,2.5,3\n", "item", ValueError, "invalid value '?2.5'?"),
    ("user,item,rating\n1,2,3\n1,2,oops\n", "rating", ValueError, "invalid value 'oops'.*real"),
    ("user,item,rating\n1,2,3\n1,2,\n", "rating", ValueError, "1 missing value"),
    ("user,item,rating,timestamp\n1,2,3,4\n1,2,3,t\n", "timestamp", ValueError,
     "invalid value 't'"),
    ("1 2 3\n", None, ValueError, "no separator"),
    ("", None, ValueError, "no separator"),
]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("text, column, error, message", BAD_FILES)
def test_read_ratings_errors_name_the_file(tmp_path, engine, text, column, error, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(error, match=f"read_ratings: {path}") as info:
        mfrec.read_ratings(path, engine=engine)
    if column:
        assert column in str(info.value)
    if message:
        assert info.match(message)


def test_read_ratings_refuses_bad_arguments(tmp_path):
    for absent in ("absent.csv", "absent.parquet"):
        with pytest.raises(OSError, match="read_ratings: cannot read"):
            mfrec.read_ratings(tmp_path / absent)
    path = tmp_path / "r.csv"
    path.write_text("1,2,3\n")
    with pytest.raises(ValueError, match="sep must be one character or '::'"):
        mfrec.read_ratings(path, sep=",,")
    with pytest.raises(ValueError, match="engine must be 'pyarrow' or 'pandas'"):
        mfrec.read_ratings(path, engine="polars")
    with pytest.raises(ValueError, match="not a Parquet file"):
        (tmp_path / "r.parquet").write_text("1,2,3\n")
        mfrec.read_ratings(tmp_path / "r.parquet")


@pytest.mark.parametrize("ids", [np.array([1, 3, 5, 9]), np.arange(0, 3000, 7),
                                 np.array([7, 2**40, 2**41])])
def test_index_of_matches_a_binary_search(ids):
    """Small ids go through a table, spread ones through a search: both
    give each id's position and -1 for absent, negative or too large ids."""
    from mfrec._ids import index_of
    raw = np.random.default_rng(0).integers(-5, 3100, 5000)
    raw[:3] = ids[:3]
    pos = np.minimum(np.searchsorted(ids, raw), len(ids) - 1)
    want = np.where(ids[pos] == raw, pos, -1)
    got = index_of(raw, ids)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(index_of(ids, ids), np.arange(len(ids)))


@pytest.mark.parametrize("raw", [np.array([5, 3, 5, 0, 9, 3, 5]), np.array([7], np.int32),
                                 np.array([2**40, -3, 2**40]), np.array([], np.int64),
                                 np.array(["b", "a", "b"])])
def test_counted_ids_match_unique(raw):
    """The table path for small ids gives np.unique's ids, counts and dtype."""
    from mfrec._ids import counted_ids
    ids, counts = counted_ids(raw)
    want_ids, want_counts = np.unique(raw, return_counts=True)
    assert ids.dtype == want_ids.dtype
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_array_equal(counts, want_counts)
