"""String and bytes ids hashed in C (csrc/core/vocab.c, mfrec._vocab):
the vocabulary and each id's index are np.unique(return_inverse=True)'s,
whatever the ids' kind, width, characters or number, and whatever their
hashes do (colliding ones included)."""
import numpy as np
import pytest

from mfrec import _core, _vocab
from mfrec._arrays import as_ids

MASK = (1 << 64) - 1
SEED, K = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9


def strings(rng, n, distinct, alphabet="abcxyz019", length=(0, 12)):
    """n strings drawn from `distinct` random ones (lengths in `length`)."""
    chars = np.array(list(alphabet))
    pool = ["".join(rng.choice(chars, rng.integers(*length))) for _ in range(distinct)]
    return np.array(pool)[rng.integers(0, distinct, n)]


def cases():
    rng = np.random.default_rng(3)
    uuids = np.array([f"{x:032x}"[:8] + "-" + f"{x:032x}"[8:] for x in
                      rng.integers(0, 2**62, 400)])
    return {
        "short, with empty strings": strings(rng, 3000, 40),
        "one character": strings(rng, 500, 5, length=(1, 2)),
        "unicode": strings(rng, 3000, 200, alphabet="aé€𝄞中-", length=(0, 6)),
        "long (generic width)": strings(rng, 2000, 300, length=(40, 90)),
        "UUIDs": uuids[rng.integers(0, 400, 5000)],
        "many distinct (the table grows)": np.char.add("u", rng.permutation(60_000).astype(str)),
        "interior NULs": np.array(["a\0b", "a", "a\0b", "", "a\0", "b"] * 50),
        "all equal": np.array(["same"] * 100),
        "one": np.array(["x"]),
    }


@pytest.mark.parametrize("kind", ["str", "bytes", "object", "big-endian str"])
@pytest.mark.parametrize("case", list(cases()))
def test_factorize_matches_unique(case, kind):
    raw = cases()[case]
    if kind == "bytes":
        raw = np.char.encode(raw, "utf-8")  # widths that are no multiple of 4 or 8
    elif kind == "object":
        raw = as_ids(raw.astype(object), "ids")
    elif kind == "big-endian str":
        raw = raw.astype(raw.dtype.newbyteorder(">"))
    before = raw.copy()
    ids, index = _vocab.factorize(raw)
    want_ids, want_index = np.unique(raw, return_inverse=True)
    assert np.array_equal(ids, want_ids) and np.array_equal(index, want_index)
    assert index.dtype == np.int32 and ids.dtype == raw.dtype
    assert np.array_equal(raw, before)  # the input is left alone


def test_codes_number_ids_in_order_of_first_occurrence():
    raw = strings(np.random.default_rng(5), 4000, 700)
    codes, first = _core.factorize_records(raw)
    assert codes.dtype == np.int32 and first.dtype == np.int64
    assert np.array_equal(raw[first][codes], raw)
    assert np.array_equal(first, np.unique(codes, return_index=True)[1])
    assert np.all(np.diff(first) > 0) and len(np.unique(raw[first])) == len(first)


def test_integer_and_strided_records():
    rng = np.random.default_rng(6)
    ints = rng.integers(-(2**62), 2**62, 300)[rng.integers(0, 300, 5000)]
    codes, first = _core.factorize_records(ints)
    assert np.array_equal(ints[first][codes], ints)
    strided = strings(rng, 6000, 90)[::3]  # not contiguous: read through a copy
    codes, first = _core.factorize_records(strided)
    assert np.array_equal(strided[first][codes], strided)
    assert np.array_equal(first, np.unique(codes, return_index=True)[1])


def rounds(h, words):
    """The hash's chained rounds over 8-byte words (vocab.c's hash_record,
    before its final mix)."""
    for x in words:
        h = ((h ^ x) * K) & MASK
        h ^= h >> 29
    return h


def test_records_whose_hashes_collide_stay_apart():
    """Pairs of 16-byte records built to have the same 64-bit hash: the
    second word cancels the difference the first made. The table must
    compare the records themselves, not trust the hash."""
    rng = np.random.default_rng(8)
    records = []
    for a, b, x1 in rng.integers(1, 2**63, (300, 3)).tolist():
        ga, gb = rounds(SEED, [a]), rounds(SEED, [b])
        assert rounds(ga, [x1]) == rounds(gb, [x1 ^ ga ^ gb]) and a != b
        records += [(a, x1), (b, x1 ^ ga ^ gb)]
    raw = np.frombuffer(np.array(records, np.uint64).astype("<u8").tobytes(), "S16")
    raw = raw[rng.integers(0, len(raw), 4000)]
    ids, index = _vocab.factorize(raw)
    want_ids, want_index = np.unique(raw, return_inverse=True)
    assert np.array_equal(ids, want_ids) and np.array_equal(index, want_index)


@pytest.mark.parametrize("bad", [np.array(["a", 1], object), np.array([["a"]]),
                                 np.array([1.0, 2.0]), ["a", "b"], np.array([True])])
def test_records_of_another_kind_are_refused(bad):
    with pytest.raises(TypeError, match="records"):
        _core.factorize_records(bad)


def test_empty():
    codes, first = _core.factorize_records(np.array([], "U3"))
    assert codes.shape == first.shape == (0,)
    ids, index = _vocab.factorize(np.array([], "U3"))
    assert ids.shape == index.shape == (0,)


def test_spread_integer_ids_are_hashed_to_the_same_vocabulary():
    """Ids spread over int64 (no table of present ids fits them) go through
    the same hashing: np.unique's answer, extremes and negatives included."""
    from mfrec._ids import known_ids

    rng = np.random.default_rng(9)
    pool = np.concatenate([rng.integers(-(2**63), 2**63 - 1, 500, dtype=np.int64),
                           [np.iinfo(np.int64).min, np.iinfo(np.int64).max, 0, -1]])
    raw = pool[rng.integers(0, len(pool), 20_000)]
    extra = np.concatenate([pool[:20], rng.integers(-(2**62), 2**62, 30)])  # some not rated
    ids, index = known_ids(raw, (extra,))
    want_ids, want_index = np.unique(np.concatenate([raw, extra]), return_inverse=True)
    assert np.array_equal(ids, want_ids) and np.array_equal(index, want_index[:len(raw)])
    assert ids.dtype == np.int64 and index.dtype == np.int32
