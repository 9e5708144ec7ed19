"""mfrec.dask: the blocked fit on a LocalCluster gives the single-process
model (bit for bit where the docs say so, else to 1e-5), top-N lists equal
the model's own, a worker killed mid-fit changes nothing, bad input gets a
clear error. The cluster starts here (one per module, a second one for the
killed worker); worker processes take seconds to start, so the data are
small and the fits few. Left out of the sanitizer run (worker processes)."""
import os
import signal

import numpy as np
import pytest

import mfrec

pytest.importorskip("distributed")
pd = pytest.importorskip("pandas")
dd = pytest.importorskip("dask.dataframe")
import dask.array as da  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402

import mfrec.dask as md  # noqa: E402

pytestmark = pytest.mark.slow

# dashboard_address=None would still bind the HTTP routes to port 8787 and warn when
# another cluster holds it: ":0" takes a free port.
CLUSTER = dict(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")


@pytest.fixture(scope="module")
def client():
    with LocalCluster(**CLUSTER) as cluster, Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def ratings():
    r = mfrec.make_low_rank(n_users=120, n_items=90, density=0.12, seed=4).ratings
    return pd.DataFrame({"user": r.user, "item": r.item, "rating": r.rating})


def relative(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def pair(algorithm, df, client, parts=3, n_blocks=2, ddf=None, exchange="auto", **kw):
    """(single-process model, blocked model) of the same parameters."""
    params = dict(factors=6, iterations=3, seed=7, **kw)
    one = mfrec.Model(algorithm, **params).fit(df)
    ddf = dd.from_pandas(df, npartitions=parts) if ddf is None else ddf
    return one, md.fit(mfrec.Model(algorithm, **params), ddf, client, n_blocks=n_blocks,
                       exchange=exchange)


def assert_same_model(one, many, tol=0.0):
    np.testing.assert_array_equal(one.user_ids, many.user_ids)
    np.testing.assert_array_equal(one.item_ids, many.item_ids)
    for name in ("user_factors", "item_factors", "user_bias", "item_bias"):
        a, b = getattr(many, name), getattr(one, name)
        assert (a is None) == (b is None), name
        if a is not None:
            if tol == 0.0:
                np.testing.assert_array_equal(a, b, err_msg=name)
            else:
                assert relative(a, b) <= tol, name
    np.testing.assert_array_equal(one.seen_indptr, many.seen_indptr)
    np.testing.assert_array_equal(one.seen_indices, many.seen_indices)
    assert len(many.history) == len(one.history)
    np.testing.assert_allclose(many.history[-1]["train_rmse"], one.history[-1]["train_rmse"],
                               rtol=1e-5)
    np.testing.assert_allclose(many.history[-1]["train_loss"], one.history[-1]["train_loss"],
                               rtol=1e-5)


@pytest.mark.parametrize("n_blocks, exchange", [(1, "broadcast"), (2, "broadcast"),
                                               (7, "broadcast"), (3, "routed")])
def test_als_equals_one_process(client, ratings, n_blocks, exchange):
    """Explicit ALS with biases and ALS-WR: the same bits for any layout."""
    one, many = pair("als", ratings, client, n_blocks=n_blocks, exchange=exchange)
    assert_same_model(one, many)
    assert many.history[0]["exchange_bytes"] > 0 or n_blocks == 1


@pytest.mark.parametrize("kw", [dict(alpha=3.0), dict(unobserved_weight=0.3, row_weights=0.5,
                                                      col_weights=0.5, solver="cg")])
@pytest.mark.parametrize("exchange", ["broadcast", "routed"])
def test_wals_equals_one_process(client, ratings, kw, exchange):
    """Weighted and implicit MF: identical when broadcast (the kernel forms
    the Gram matrix), to 1e-5 when routed (the blocks' Gram sum)."""
    df = ratings.assign(rating=ratings.rating.abs())
    one, many = pair("wals", df, client, n_blocks=3, exchange=exchange, **kw)
    assert_same_model(one, many, tol=0.0 if exchange == "broadcast" else 1e-5)


def test_ids_of_several_kinds(client, ratings):
    """String users and large negative int64 items, arrays as input: the
    model's vocabularies and factors are the single-process fit's."""
    df = ratings.assign(user=np.array([f"u-{u:04d}" for u in ratings.user], dtype=object),
                        item=ratings.item.astype(np.int64) * -(10**12) + 5)
    one, many = pair("als", df, client, parts=4, n_blocks=2, exchange="routed")
    assert many.user_ids.dtype.kind == "U" and many.item_ids.min() < -10**13
    assert_same_model(one, many)
    arrays = tuple(da.from_array(ratings[c].to_numpy(), chunks=500)
                   for c in ("user", "item", "rating"))
    _, from_arrays = pair("als", ratings, client, ddf=arrays)
    assert_same_model(mfrec.Model("als", factors=6, iterations=3, seed=7).fit(ratings),
                      from_arrays)


def test_fitted_model_works_downstream(client, ratings, tmp_path):
    """predict, recommend, fold-in and save/load of the blocked model give
    the single-process model's answers."""
    one, many = pair("als", ratings, client, parts=2, n_blocks=2)
    u, i = ratings.user.to_numpy()[:50], ratings.item.to_numpy()[:50]
    np.testing.assert_array_equal(many.predict(u, i), one.predict(u, i))
    np.testing.assert_array_equal(many.recommend(u[:5], n=4)[0], one.recommend(u[:5], n=4)[0])
    items, stars = np.unique(i)[:6], np.arange(6, dtype=np.float32)
    np.testing.assert_array_equal(many.fold_in(items, stars)[0], one.fold_in(items, stars)[0])
    back = mfrec.Model.load(many.save(tmp_path / "m.npz"))
    np.testing.assert_array_equal(back.user_factors, one.user_factors)
    assert back.history == many.history


def test_empty_partitions_and_callback(client, ratings):
    """Empty partitions are skipped; the callback sees each row and can stop."""
    df = ratings.sort_values("user")
    ddf = dd.from_pandas(df, npartitions=4, sort=False)
    ddf = ddf[ddf.user >= df.user.iloc[len(df) // 2]]  # the first partitions empty
    assert (ddf.map_partitions(len).compute() == 0).any()
    rows = []
    model = md.fit(mfrec.Model("als", factors=6, iterations=4, seed=7), ddf, client,
                   callback=lambda m, row: rows.append(row) or len(rows) < 2)
    one = mfrec.Model("als", factors=6, iterations=2, seed=7).fit(
        df[df.user >= df.user.iloc[len(df) // 2]])
    assert [r["epoch"] for r in rows] == [1, 2] and len(model.history) == 2
    np.testing.assert_array_equal(model.item_factors, one.item_factors)


def test_bad_input(client, ratings):
    ddf = dd.from_pandas(ratings, npartitions=2)
    with pytest.raises(ValueError, match="rating"):
        md.fit(mfrec.Model("als"), ddf[["user", "item"]], client)
    twice = dd.from_pandas(pd.concat([ratings, ratings.iloc[[5]]]), npartitions=3, sort=False)
    assert twice.partitions[2].compute().index[-1] == 5  # the repeat in another partition
    with pytest.raises(ValueError, match="more than once.*user"):
        md.fit(mfrec.Model("als", factors=4, iterations=1), twice, client)
    within = dd.from_pandas(pd.concat([ratings, ratings.iloc[[5]]]), npartitions=1)
    with pytest.raises(ValueError, match="more than once.*user"):  # in one partition
        md.fit(mfrec.Model("als", factors=4, iterations=1), within, client)
    with pytest.raises(ValueError, match="no ratings"):
        md.fit(mfrec.Model("als", factors=4, iterations=1), ddf[ddf.user < -1], client)
    with pytest.raises(ValueError, match="'als' or 'wals'"):
        md.fit(mfrec.Model("sgd"), ddf, client)
    with pytest.raises(ValueError, match="n_blocks"):
        md.fit(mfrec.Model("als"), ddf, client, n_blocks=0)
    with pytest.raises(ValueError, match="exchange"):
        md.fit(mfrec.Model("als"), ddf, client, exchange="ring")
    with pytest.raises(TypeError, match="dask DataFrame"):
        md.fit(mfrec.Model("als"), ratings, client)
    mixed = dd.from_pandas(ratings.assign(user=ratings.user.astype(str)), npartitions=2)
    with pytest.raises(TypeError, match="string ids"):
        md.fit(mfrec.Model("als"), dd.concat([ddf, mixed]), client)


@pytest.mark.parametrize("item_blocks", [1, 3])
def test_recommend_all_equals_the_models(client, ratings, item_blocks):
    """The same lists as Model.recommend_all, items split or not."""
    model = mfrec.Model("als", factors=6, iterations=3, seed=1).fit(ratings)
    ids, scores = model.recommend_all(7)
    got_ids, got_scores = md.recommend_all(model, 7, client=client, item_blocks=item_blocks,
                                           n_chunks=3, output="arrays")
    np.testing.assert_array_equal(got_ids.compute(), ids)
    np.testing.assert_allclose(got_scores.compute(), scores, rtol=1e-6)  # sgemm's blocking
    table = md.recommend_all(model, 7, client=client, item_blocks=item_blocks).compute()
    row = table[table.user == model.user_ids[3]].sort_values("rank")
    np.testing.assert_array_equal(row.item, ids[3][ids[3] >= 0])
    # every pair twice, in different partitions and in the same one
    seen = dd.from_pandas(pd.concat([ratings[["user", "item"]]] * 2), npartitions=3, sort=False)
    np.testing.assert_array_equal(md.recommend_all(model, 7, seen=seen, client=client,
                                                   output="arrays")[0].compute(), ids)
    none_seen = seen[seen.user < -1]
    np.testing.assert_array_equal(
        md.recommend_all(model, 7, seen=none_seen, client=client, output="arrays")[0].compute(),
        model.recommend_all(7, exclude_seen=False)[0])


def test_plan_dry_run():
    """Sizes alone: uniform ratings need n (1 - exp(-m / n)) rows a block;
    large sides are routed, small ones broadcast."""
    layout = md.plan(10_000, 2_000, 400_000, factors=8, n_workers=4, user_skew=0.0,
                     item_skew=0.0, broadcast_limit=100_000)
    assert layout.n_blocks == 4 and layout.exchange == {"user": "broadcast", "item": "routed"}
    np.testing.assert_allclose(layout.needed["item"], 10_000 * -np.expm1(-100_000 / 10_000),
                               rtol=1e-4)
    routed = 32 * layout.needed["item"].sum() * 3 / 4
    assert layout.exchange_bytes("item") == pytest.approx(routed)
    assert layout.exchange_bytes("user") == pytest.approx(2_000 * 32 * 3)
    big = [md.plan(50_000_000, 2_000_000, 10**9, factors=64, n_workers=w) for w in (16, 64)]
    assert big[0].exchange == {"user": "routed", "item": "routed"}
    assert big[1].worker_bytes() < big[0].worker_bytes()
    assert 0 < big[0].needed["user"].max() < 2_000_000


def test_killed_worker_changes_nothing(ratings):
    """A worker process killed mid-fit (its nanny restarts it): the lost
    tasks re-run from their inputs and the factors are the same."""
    params = dict(factors=6, iterations=5, seed=7)
    one = mfrec.Model("als", **params).fit(ratings)
    with LocalCluster(**CLUSTER) as cluster, Client(cluster) as c:
        pids = c.run(os.getpid)
        victim = pids[sorted(pids)[0]]

        def kill(model, row):
            if row["epoch"] == 2:
                os.kill(victim, signal.SIGKILL)

        many = md.fit(mfrec.Model("als", **params), dd.from_pandas(ratings, npartitions=3),
                      c, n_blocks=2, callback=kill)
        assert victim not in c.run(os.getpid).values()  # it died and another took its place
    assert_same_model(one, many)


@pytest.mark.parametrize("routed", [False, True])
def test_blocks_are_the_one_process_csrs(monkeypatch, routed):
    """The set-up's tasks, run here with slices of a few ratings: each user
    block is its rows of the whole CSR by user, each item block (stacked
    from user blocks in place and from pieces of their transposes) its rows
    of the CSR by item, whatever the partitions and blocks."""
    from mfrec import _core
    from mfrec.dask import _tasks
    monkeypatch.setattr(_tasks, "SLICE", 7)
    rng = np.random.default_rng(3)
    keys = rng.choice(60 * 40, 900, replace=False)
    u, i, r = keys // 40, keys % 40, rng.random(900).astype(np.float32)
    vocab = {"user": np.arange(60), "item": np.arange(40)}
    ub, ib = np.array([0, 11, 37, 60]), np.array([0, 3, 25, 40])
    parts = [(u[s], i[s], r[s]) for s in np.array_split(np.arange(900), 4)]
    splits = [_tasks.split(p, {}, "fit", vocab, ub) for p in parts]
    users = [_tasks.build_block("user", int(ub[a]), int(ub[a + 1]), 40, vocab, routed, None,
                                None, None, *[s[a] for s in splits]) for a in range(3)]
    cuts = [_tasks.transpose(blk, ib, [b for b in range(3) if b != a])
            for a, blk in enumerate(users)]
    counts = np.bincount(i, minlength=40)
    items = [_tasks.build_block("item", int(ib[b]), int(ib[b + 1]), 60, vocab, routed, None,
                                None, counts[ib[b]:ib[b + 1]],
                                *[users[a] if a == b else cuts[a][b] for a in range(3)])
             for b in range(3)]
    for blocks, (rows, cols), bounds in ((users, (u, i), ub), (items, (i, u), ib)):
        indptr, indices, values = _core.build_csr(rows.astype(np.int32), cols.astype(np.int32),
                                                  r, bounds[-1], 100 - bounds[-1])
        for blk, lo, hi in zip(blocks, bounds[:-1], bounds[1:]):
            got = blk["indices"] if blk["needed"] is None else blk["needed"][blk["indices"]]
            np.testing.assert_array_equal(blk["indptr"], indptr[lo:hi + 1] - indptr[lo])
            np.testing.assert_array_equal(got, indices[indptr[lo]:indptr[hi]])
            np.testing.assert_array_equal(blk["values"], values[indptr[lo]:indptr[hi]])
