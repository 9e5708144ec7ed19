"""The columns read_ratings' readers write side by side (mfrec/_columns.py):
whatever the regions' capacities and the blocks' sizes, in whatever order
the readers' blocks come, the joined columns are each reader's rows in
reader order, in arrays that own their memory."""
import numpy as np
import pytest

import mfrec
from mfrec import _columns, _read
from mfrec._columns import Columns

DTYPES = {"user": np.dtype(np.int64), "rating": np.dtype(np.float32), "item": None}


def blocks_of(rng, start, rows):
    """A reader's rows start..start+rows in blocks of random sizes."""
    cuts = np.unique(np.r_[0, rng.integers(0, rows + 1, rng.integers(0, 6)), rows])
    return [{"user": np.arange(a, b) + start, "rating": (np.arange(a, b) + start) / 2,
             "item": np.char.add("i", (np.arange(a, b) + start).astype(str))}
            for a, b in zip(cuts[:-1], cuts[1:])]


@pytest.mark.parametrize("seed", range(40))
def test_readers_rows_are_joined_in_reader_order(seed, monkeypatch):
    """Capacities below, at and above each reader's rows (a lone reader
    grows its arrays; one of several keeps the rows past its region), blocks
    put in a random interleaving, regions closed up a few rows at a time."""
    rng = np.random.default_rng(seed)
    monkeypatch.setattr(_columns, "MOVE_ROWS", int(rng.integers(1, 5)))
    k = int(rng.integers(1, 5))
    rows = rng.integers(0, 30, k)
    capacities = [int(max(0, r + rng.integers(-5, 6))) for r in rows]
    out = Columns(DTYPES, capacities)
    queues = [blocks_of(rng, int(rows[:j].sum()), int(r)) for j, r in enumerate(rows)]
    while any(queues):
        j = int(rng.choice([j for j, q in enumerate(queues) if q]))
        out.put(j, queues[j].pop(0))
    columns = out.join()
    n = int(rows.sum())
    assert np.array_equal(columns["user"], np.arange(n))
    assert columns["rating"].dtype == np.float32
    assert np.array_equal(columns["rating"], np.arange(n) / 2)
    assert list(columns["item"]) == [f"i{v}" for v in range(n)]
    assert columns["user"].flags.owndata and columns["rating"].flags.owndata


def test_a_region_closes_up_over_itself():
    """A region moved down by fewer rows than it holds: the source overlaps
    the destination, moved a slice at a time."""
    out = Columns({"user": np.dtype(np.int64)}, [10, 50])
    out.put(0, {"user": np.arange(3)})
    out.put(1, {"user": np.arange(3, 50)})
    assert np.array_equal(out.join()["user"], np.arange(50))


def test_read_ratings_when_spans_overrun_their_estimates(tmp_path, monkeypatch):
    """Spans whose rows are under-estimated keep the rows past their regions:
    the same arrays, for both engines."""
    rng = np.random.default_rng(0)
    n = 3000
    users, items = rng.integers(1, 10**6, n), rng.integers(1, 50, n)
    ratings = rng.integers(1, 11, n) / 2
    path = tmp_path / "r.csv"
    path.write_text("userId,movieId,rating\n" + "".join(
        f"{u},{i},{r:g}\n" for u, i, r in zip(users, items, ratings)))
    monkeypatch.setattr(_read, "BLOCK_BYTES", 2000)
    monkeypatch.setattr(_read, "PANDAS_ROWS", 100)
    monkeypatch.setattr(_read, "SPAN_BYTES", 5000)
    monkeypatch.setattr(_read, "_readers", lambda: 4)
    monkeypatch.setattr(_read, "_rows", lambda path, start, stop: 7)
    for engine in ("pandas", "pyarrow"):
        r = mfrec.read_ratings(path, engine=engine)
        assert np.array_equal(r.user, users) and np.array_equal(r.item, items)
        assert np.array_equal(r.rating, ratings.astype(np.float32))


def test_rows_are_estimated_with_room_to_spare(tmp_path, monkeypatch):
    """Lines that grow longer along the file: the densest sample sets the
    estimate, which is at least the rows and not far above."""
    path = tmp_path / "r.csv"
    lines = [f"{u},{u % 97},4.5\n" for u in range(1, 200_000)]
    path.write_text("".join(lines))
    size = path.stat().st_size
    monkeypatch.setattr(_read, "SAMPLE_BYTES", 4096)
    estimate = _read._rows(str(path), 0, size)
    assert len(lines) <= estimate <= 1.5 * len(lines)
    assert _read._rows(str(path), 0, 100) == path.read_bytes()[:100].count(b"\n") + 1
    assert _read._rows(str(path), 0, None) == 0


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("engine", ["pandas", "pyarrow"])
def test_read_ratings_equals_pandas_read_and_factorize(tmp_path, monkeypatch, seed, engine):
    """A random file (separator, header, ids small or spread over int64,
    blocks, spans and readers) read and its ids mapped as fit maps them:
    what pandas' read_csv and factorize give."""
    pd = pytest.importorskip("pandas")
    from mfrec._ids import known_ids

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 3000))
    spread = bool(rng.integers(2))
    users = rng.integers(-2**62, 2**62, n) if spread else rng.integers(1, n // 5 + 2, n)
    items = rng.zipf(1.3, n) % 500 + 1
    ratings = rng.integers(0, 1000, n) / 100
    stamps = rng.integers(-10**9, 2 * 10**9, n)
    sep, header = [(",", True), ("\t", False), ("::", False), (";", True)][seed % 4]
    lines = [sep.join(map(str, row)) for row in zip(users, items, ratings, stamps)]
    path = tmp_path / "r.txt"
    path.write_text("\n".join(["u" + sep + "i" + sep + "r" + sep + "t"] * header + lines) + "\n")
    monkeypatch.setattr(_read, "BLOCK_BYTES", int(rng.integers(200, 5000)))
    monkeypatch.setattr(_read, "PANDAS_ROWS", int(rng.integers(5, 500)))
    monkeypatch.setattr(_read, "SPAN_BYTES", int(rng.integers(100, 5000)))
    monkeypatch.setattr(_read, "_readers", lambda: int(rng.integers(1, 4)))
    r = mfrec.read_ratings(path, sep=sep, columns=["u", "i", "r", "t"], header=header,
                           user="u", item="i", rating="r", timestamp="t", engine=engine)
    df = pd.read_csv(path, sep=sep, header=0 if header else None, names=["u", "i", "r", "t"],
                     engine="python" if sep == "::" else "c")
    for raw, column in ((r.user, "u"), (r.item, "i")):
        ids, index = known_ids(raw, None)
        codes, uniques = pd.factorize(df[column], sort=True)
        assert np.array_equal(ids, uniques) and np.array_equal(index, codes)
    assert np.array_equal(r.rating, df["r"].to_numpy().astype(np.float32))
    assert np.array_equal(r.timestamp, df["t"].to_numpy())
