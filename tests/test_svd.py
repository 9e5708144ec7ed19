"""Truncated SVD: the C kernels against NumPy (double precision), the Model
path (fills, centering, predictions, energy), MovieLens accuracy, bad input."""
import numpy as np
import pytest

import mfrec
from mfrec import _core
from mfrec.algorithms.svd import FILLS


def csr_pair(users, items, ratings, m, n):
    u, i = np.asarray(users, np.int32), np.asarray(items, np.int32)
    r = np.asarray(ratings, np.float32)
    return _core.build_csr(u, i, r, m, n), _core.build_csr(i, u, r, n, m)


def random_sparse(rng, m, n, density):
    u, i = np.nonzero(rng.random((m, n)) < density)
    r = rng.integers(1, 6, len(u)).astype(np.float32)
    return u, i, r


def dense_of(u, i, r, f, g, add_fill):
    """P_Omega(R - F) (+ F), written plainly."""
    a = np.outer(f, np.ones(len(g))) + np.outer(np.ones(len(f)), g) if add_fill else \
        np.zeros((len(f), len(g)))
    a[u, i] = r.astype(np.float64) - (0.0 if add_fill else f[u] + g[i])
    return a


# ---- the dense solver against numpy.linalg.svd ------------------------------

@pytest.mark.parametrize("shape", [(60, 90), (90, 60), (70, 70), (1, 8), (9, 1), (200, 37)])
def test_dense_matches_numpy(rng, shape):
    a = rng.standard_normal(shape)
    r = min(shape)
    k = max(1, r // 2)
    s, U, V = _core.svd_dense(a, k)
    Un, sn, Vtn = np.linalg.svd(a, full_matrices=False)
    assert s.shape == (r,) and U.shape == (shape[0], k) and V.shape == (shape[1], k)
    assert np.all(np.diff(s) <= 0)
    np.testing.assert_allclose(s, sn, rtol=1e-10, atol=1e-10 * sn[0])
    ours = U @ np.diag(s[:k]) @ V.T
    ref = Un[:, :k] @ np.diag(sn[:k]) @ Vtn[:k]
    assert np.linalg.norm(ours - ref) <= 1e-10 * np.linalg.norm(ref)
    np.testing.assert_allclose(U.T @ U, np.eye(k), atol=1e-12)
    np.testing.assert_allclose(V.T @ V, np.eye(k), atol=1e-12)
    # the full decomposition reconstructs a
    s_all, U_all, V_all = _core.svd_dense(a, r)
    assert np.linalg.norm(U_all @ np.diag(s_all) @ V_all.T - a) <= 1e-12 * np.linalg.norm(a)


def test_dense_leaves_its_input_alone_unless_told(rng):
    a = rng.standard_normal((20, 30))
    before = a.copy()
    _core.svd_dense(a, 3)
    np.testing.assert_array_equal(a, before)
    _core.svd_dense(a, 3, overwrite_a=True)
    assert not np.array_equal(a, before)


def test_sign_convention(rng):
    s, U, V = _core.svd_dense(rng.standard_normal((30, 40)), 5)
    top = V[np.argmax(np.abs(V), axis=0), np.arange(5)]
    assert np.all(top > 0)


@pytest.mark.parametrize("k", [1, 5, 17, 29])
def test_eckart_young(rng, k):
    a = rng.standard_normal((40, 30)) @ np.diag(np.linspace(3, 0.1, 30)) @ \
        rng.standard_normal((30, 30))
    s, U, V = _core.svd_dense(a, k)
    residual = np.linalg.norm(a - U @ np.diag(s[:k]) @ V.T)
    assert abs(residual - np.sqrt(np.sum(s[k:] ** 2))) <= 1e-10 * residual
    # a perturbed rank-k matrix does worse than the truncated SVD
    perturbed = (U + 1e-3 * rng.standard_normal(U.shape)) @ np.diag(s[:k]) @ V.T
    assert np.linalg.norm(a - perturbed) > residual


# ---- the filled matrix: densify, exact Frobenius norm, randomized solver --------

@pytest.mark.parametrize("add_fill", [False, True])
def test_densify_and_frobenius(rng, add_fill):
    m, n = 50, 70
    u, i, r = random_sparse(rng, m, n, 0.15)
    by_row, _ = csr_pair(u, i, r, m, n)
    f, g = rng.normal(3, 1, m), rng.normal(0, 0.5, n)
    ref = dense_of(u, i, r, f, g, add_fill)
    a = _core.svd_densify(by_row, f, g, add_fill=add_fill)
    np.testing.assert_allclose(a, ref, rtol=0, atol=1e-14)
    total = _core.svd_frobenius2(by_row, f, g, add_fill=add_fill)
    assert total == pytest.approx(np.sum(ref ** 2), rel=1e-12)


@pytest.mark.parametrize("add_fill", [False, True])
def test_randomized_matches_dense(rng, add_fill):
    m, n, k = 120, 80, 8
    u, i, r = random_sparse(rng, m, n, 0.2)
    by_row, by_col = csr_pair(u, i, r, m, n)
    f, g = rng.normal(3, 1, m), rng.normal(0, 0.5, n)
    a = dense_of(u, i, r, f, g, add_fill)
    sn = np.linalg.svd(a, compute_uv=False)
    s, U, V = _core.svd_randomized(by_row, by_col, f, g, k, add_fill=add_fill,
                                   oversampling=20, power_iterations=30, seed=3)
    np.testing.assert_allclose(s, sn[:k], rtol=1e-9)
    np.testing.assert_allclose(U.T @ U, np.eye(k), atol=1e-12)
    np.testing.assert_allclose(V.T @ V, np.eye(k), atol=1e-12)
    np.testing.assert_allclose(U.T @ a @ V, np.diag(s), atol=1e-8 * sn[0])
    s_d, U_d, V_d = _core.svd_dense(a, k)
    np.testing.assert_allclose(U, U_d, atol=1e-6)  # same signs, same vectors
    np.testing.assert_allclose(V, V_d, atol=1e-6)


def test_randomized_is_repeatable_and_thread_independent(rng):
    m, n = 700, 300  # several row blocks
    u, i, r = random_sparse(rng, m, n, 0.05)
    by_row, by_col = csr_pair(u, i, r, m, n)
    f, g = np.full(m, 3.0), rng.normal(0, 0.3, n)
    one = _core.svd_randomized(by_row, by_col, f, g, 5, seed=11, n_threads=1)
    again = _core.svd_randomized(by_row, by_col, f, g, 5, seed=11, n_threads=1)
    two = _core.svd_randomized(by_row, by_col, f, g, 5, seed=11, n_threads=2)
    other = _core.svd_randomized(by_row, by_col, f, g, 5, seed=12, n_threads=1,
                                 power_iterations=0)
    for x, y, z in zip(one, again, two):
        np.testing.assert_array_equal(x, y)
        np.testing.assert_allclose(x, z, rtol=1e-12, atol=1e-14)
    assert not np.array_equal(one[0], other[0])


def test_baseline_biases_match_numpy_and_minimize(rng):
    m, n = 60, 40
    u, i, r = random_sparse(rng, m, n, 0.3)
    by_user, by_item = csr_pair(u, i, r, m, n)
    mu, reg_u, reg_i = float(r.mean()), 15.0, 10.0
    bu, bi = _core.baseline_biases(by_user, by_item, mu, reg_u, reg_i, 3)
    rd = r.astype(np.float64)
    ru, ri = np.zeros(m), np.zeros(n)
    for _ in range(3):
        ri = np.bincount(i, rd - mu - ru[u], n) / (reg_i + np.bincount(i, minlength=n))
        ru = np.bincount(u, rd - mu - ri[i], m) / (reg_u + np.bincount(u, minlength=m))
    np.testing.assert_allclose(bu, ru, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(bi, ri, rtol=1e-12, atol=1e-14)
    # many passes reach the minimizer: the gradient of the damped objective vanishes
    bu, bi = _core.baseline_biases(by_user, by_item, mu, reg_u, reg_i, 500)
    e = rd - mu - bu[u] - bi[i]
    np.testing.assert_allclose(np.bincount(u, e, m) - reg_u * bu, 0, atol=1e-9)
    np.testing.assert_allclose(np.bincount(i, e, n) - reg_i * bi, 0, atol=1e-9)


# ---- the Model ------------------------------------------------------------------

@pytest.fixture(scope="module")
def small():
    data = mfrec.make_low_rank(n_users=80, n_items=60, rank=4, density=0.3, noise=0.2,
                               seed=5)
    return data.ratings


def numpy_fill(ratings, fill, reg_u=15.0, reg_i=10.0, passes=10):
    """(mu, b_u, b_i) of each fill, by a plain NumPy route; ids are 0..n-1."""
    u, i, r = ratings.user, ratings.item, ratings.rating.astype(np.float64)
    m, n = u.max() + 1, i.max() + 1
    mu = 0.0 if fill == "zero" else r.mean()
    bu, bi = np.zeros(m), np.zeros(n)
    if fill == "user_mean":
        bu = np.bincount(u, r, m) / np.bincount(u, minlength=m) - mu
    elif fill == "item_mean":
        bi = np.bincount(i, r, n) / np.bincount(i, minlength=n) - mu
    elif fill == "baseline":
        for _ in range(passes):
            bi = np.bincount(i, r - mu - bu[u], n) / (reg_i + np.bincount(i, minlength=n))
            bu = np.bincount(u, r - mu - bi[i], m) / (reg_u + np.bincount(u, minlength=m))
    return mu, bu, bi


@pytest.mark.parametrize("center", [True, False])
@pytest.mark.parametrize("fill", FILLS)
def test_model_predictions_match_numpy(small, fill, center):
    k = 4
    model = mfrec.Model("svd", factors=k, fill=fill, center=center).fit(small)
    mu, bu, bi = numpy_fill(small, fill)
    u, i = small.user, small.item
    f, g = mu + bu, bi
    a = dense_of(u, i, small.rating, f, g, add_fill=not center)
    U, s, Vt = np.linalg.svd(a)
    low = U[:, :k] @ np.diag(s[:k]) @ Vt[:k]
    expected = low + (np.add.outer(f, g) if center else 0.0)
    uu, ii = np.meshgrid(np.arange(80), np.arange(60), indexing="ij")
    pred = model.predict(uu.ravel(), ii.ravel(), clip=False).reshape(80, 60)
    np.testing.assert_allclose(pred, expected, atol=2e-5)
    np.testing.assert_allclose(model.singular_values, s[:k], rtol=1e-10)
    assert model.solver_used == "dense"
    assert model.energy() == pytest.approx(np.sum(s[:k] ** 2) / np.sum(a ** 2), rel=1e-12)


def test_fitted_attributes(small):
    k = 5
    model = mfrec.Model("svd", factors=k, fill="item_mean").fit(small)
    U, V, s = model.user_vectors, model.item_vectors, model.singular_values
    assert U.shape == (80, k) and V.shape == (60, k) and s.shape == (k,)
    assert len(model.spectrum) == 60 and np.all(np.diff(model.spectrum) <= 0)
    np.testing.assert_allclose(U.T @ U, np.eye(k), atol=1e-12)
    np.testing.assert_allclose(V.T @ V, np.eye(k), atol=1e-12)
    P, Q = model.user_features, model.item_features
    assert P.shape == (80, k) and Q.shape == (k, 60)
    np.testing.assert_allclose(P @ Q, U @ np.diag(s) @ V.T, atol=1e-12)
    np.testing.assert_array_equal(model.user_factors, P.astype(np.float32))
    np.testing.assert_array_equal(model.item_factors, Q.T.astype(np.float32))
    assert model.global_mean == pytest.approx(small.rating.mean(dtype=np.float64))
    assert not np.any(model.user_bias)  # item_mean fill: the fill lives in item_bias
    # zero and global_mean fills carry no biases
    zero = mfrec.Model("svd", factors=2, fill="zero").fit(small)
    assert zero.global_mean == 0.0 and zero.user_bias is None and zero.item_bias is None


def test_energy_and_choose_factors(small):
    model = mfrec.Model("svd", factors=3, fill="baseline").fit(small)
    s = model.spectrum
    curve = np.cumsum(s ** 2) / model.total_energy
    np.testing.assert_allclose(model.energy(np.arange(1, len(s) + 1)), curve, rtol=1e-12)
    assert model.energy(0) == 0.0
    assert model.energy(len(s)) == pytest.approx(1.0, abs=1e-12)
    for target in (0.3, 0.5, 0.9, 0.99):
        k = model.choose_factors(target)
        assert curve[k - 1] >= target and (k == 1 or curve[k - 2] < target)
    assert model.choose_factors(1.0) <= len(s)


def test_randomized_energy_is_exact_but_spectrum_is_partial(small):
    dense = mfrec.Model("svd", factors=6, solver="dense").fit(small)
    rand = mfrec.Model("svd", factors=6, solver="randomized", seed=1).fit(small)
    assert rand.solver_used == "randomized" and len(rand.spectrum) == 6
    assert rand.total_energy == pytest.approx(dense.total_energy, rel=1e-14)
    np.testing.assert_allclose(rand.energy(np.arange(7)), dense.energy(np.arange(7)),
                               rtol=1e-8)
    with pytest.raises(ValueError, match="solver=dense"):
        rand.energy(7)
    with pytest.raises(ValueError, match="singular values computed retain"):
        rand.choose_factors(0.999999)


def test_auto_solver_picks_randomized_beyond_the_threshold(small, monkeypatch):
    from mfrec.algorithms import svd

    monkeypatch.setattr(svd, "DENSE_MAX_ENTRIES", 80 * 60 - 1)
    assert mfrec.Model("svd", factors=2, seed=0).fit(small).solver_used == "randomized"
    monkeypatch.setattr(svd, "DENSE_MAX_ENTRIES", 80 * 60)
    assert mfrec.Model("svd", factors=2, seed=0).fit(small).solver_used == "dense"


def test_randomized_save_and_load(small, tmp_path):
    """The randomized solver's fitted attributes survive a round trip (the
    dense solver's, which the contract fits: test_contract.py)."""
    model = mfrec.Model("svd", factors=3, solver="randomized", seed=0).fit(small)
    model.save(tmp_path / "svd.npz")
    back = mfrec.Model.load(tmp_path / "svd.npz")
    for name in ("spectrum", "user_vectors", "item_vectors", "user_factors", "item_factors"):
        np.testing.assert_array_equal(getattr(back, name), getattr(model, name))
    assert back.total_energy == model.total_energy and back.solver_used == "randomized"
    assert back.energy() == model.energy()
    np.testing.assert_array_equal(back.predict(small.user, small.item),
                                  model.predict(small.user, small.item))


def test_tampered_file_is_refused(small, tmp_path):
    model = mfrec.Model("svd", factors=3).fit(small)
    model.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as f:
        arrays = dict(f)
    arrays["extra_spectrum"] = arrays["extra_spectrum"][::-1].copy()  # ascending
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match="descending"):
        mfrec.Model.load(tmp_path / "bad.npz")


# ---- MovieLens ----------------------------------------------------------------------

def test_randomized_agrees_with_dense_on_ml100k(ml100k):
    r = ml100k.ratings
    dense = mfrec.Model("svd", factors=20, fill="baseline", solver="dense").fit(r)
    rand = mfrec.Model("svd", factors=20, fill="baseline", solver="randomized", seed=0).fit(r)
    rel = np.abs(rand.singular_values - dense.singular_values) / dense.singular_values
    assert rel.max() <= 1e-4
    assert rand.energy(20) == pytest.approx(dense.energy(20), rel=1e-4)
    assert rand.total_energy == pytest.approx(dense.total_energy, rel=1e-12)


def baseline_only_rmse(train, test):
    """RMSE of mu + b_u + b_i alone (NumPy), clipped as the models are."""
    uid, u = np.unique(train.user, return_inverse=True)
    iid, i = np.unique(train.item, return_inverse=True)
    mu, bu, bi = numpy_fill(mfrec.Ratings(u, i, train.rating), "baseline")
    tu, ti = np.searchsorted(uid, test.user), np.searchsorted(iid, test.item)
    ku = (tu < len(uid)) & (uid[np.minimum(tu, len(uid) - 1)] == test.user)
    ki = (ti < len(iid)) & (iid[np.minimum(ti, len(iid) - 1)] == test.item)
    pred = mu + np.where(ku, bu[np.minimum(tu, len(uid) - 1)], 0) + \
        np.where(ki, bi[np.minimum(ti, len(iid) - 1)], 0)
    pred = np.clip(pred, train.rating.min(), train.rating.max())
    return np.sqrt(np.mean((pred - test.rating) ** 2))


def test_ml100k_folds_baseline_fill_beats_zero_fill_and_the_baseline(ml100k):
    rmse = {"baseline": [], "zero": [], "baseline only": []}
    for fold in ("u1", "u2", "u3", "u4", "u5"):
        train, test = ml100k.fold(fold)
        for fill in ("baseline", "zero"):
            model = mfrec.Model("svd", factors=15, fill=fill, solver="randomized",
                                seed=0).fit(train)
            rmse[fill].append(model.score(test)["rmse"])
        rmse["baseline only"].append(baseline_only_rmse(train, test))
    mean = {k: np.mean(v) for k, v in rmse.items()}
    assert mean["baseline"] < mean["baseline only"] < mean["zero"]
    assert mean["baseline"] < 0.935  # about 0.929 (k=15)
    assert 0.94 < mean["baseline only"] < 0.95  # Surprise's BaselineOnly: 0.9457


# ---- bad input -------------------------------------------------------------------------

@pytest.mark.parametrize("params, match", [
    ({"fill": "median"}, "fill"), ({"solver": "lanczos"}, "solver"),
    ({"center": "yes"}, "center"), ({"oversampling": -1}, "oversampling"),
    ({"power_iterations": -1}, "power_iterations"), ({"bias_reg_user": -1.0}, "bias_reg_user"),
    ({"bias_passes": 0}, "bias_passes"),
])
def test_bad_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        mfrec.Model("svd", **params)


def test_bad_data(small):
    rating = small.rating.copy()
    rating[7] = np.nan
    with pytest.raises(ValueError, match="finite"):
        mfrec.Model("svd", factors=2).fit(small.user, small.item, rating)
    model = mfrec.Model("svd", factors=2).fit(small)
    with pytest.raises(ValueError, match="energy must be"):
        model.choose_factors(1.5)
    with pytest.raises(ValueError, match="k must be in"):
        model.energy(-1)
    with pytest.raises(TypeError, match="integer"):
        model.energy(1.5)


def test_core_functions_reject_bad_arrays(rng):
    m, n = 10, 8
    u, i, r = random_sparse(rng, m, n, 0.5)
    by_row, by_col = csr_pair(u, i, r, m, n)
    f, g = np.zeros(m), np.zeros(n)
    with pytest.raises(ValueError, match=r"k must be in \[1, min\(m, n\)\] = \[1, 8\]"):
        _core.svd_randomized(by_row, by_col, f, g, 9)
    with pytest.raises(ValueError, match="k must be in"):
        _core.svd_dense(np.ones((3, 4)), 0)
    with pytest.raises(ValueError, match="a: non-finite"):
        _core.svd_dense(np.array([[1.0, np.nan], [0.0, 1.0]]), 1)
    with pytest.raises(ValueError, match="2-D"):
        _core.svd_dense(np.ones(4), 1)
    with pytest.raises(ValueError, match="row_fill must be finite"):
        _core.svd_frobenius2(by_row, np.full(m, np.inf), g)
    with pytest.raises(ValueError, match="row_fill has 9 values for 10 rows"):
        _core.svd_densify(by_row, np.zeros(m - 1), g)
    bad_values = (by_row[0], by_row[1], np.where(np.arange(len(r)) == 2, np.nan, by_row[2]))
    with pytest.raises(ValueError, match="by_row: not a valid CSR.*non-finite"):
        _core.svd_frobenius2(bad_values, f, g)
    bad_index = (by_row[0], np.where(np.arange(len(r)) == 0, n, by_row[1]), by_row[2])
    with pytest.raises(ValueError, match="by_row: not a valid CSR.*index out of range"):
        _core.svd_densify(bad_index, f, g)
    with pytest.raises(TypeError, match="by_row: expected a tuple"):
        _core.svd_densify([1, 2, 3], f, g)
    other = (by_col[0], by_col[1], by_col[2] + 1)
    with pytest.raises(ValueError, match="by_col must hold the entries of by_row"):
        _core.svd_randomized(by_row, other, f, g, 2)
    with pytest.raises(ValueError, match="transposed"):
        _core.baseline_biases(by_row, other, 3.0, 1.0, 1.0, 2)
    with pytest.raises(ValueError, match="passes"):
        _core.baseline_biases(by_row, by_col, 3.0, 1.0, 1.0, 0)


def test_randomized_model_factors_the_filled_matrix_too(small):
    """center=False on the randomized solver: the rank-2 fill is multiplied
    separately from the sparse part, and agrees with the dense solver."""
    kw = dict(factors=3, fill="item_mean", center=False)
    dense = mfrec.Model("svd", solver="dense", **kw).fit(small)
    rand = mfrec.Model("svd", solver="randomized", power_iterations=30, seed=0, **kw).fit(small)
    np.testing.assert_allclose(rand.singular_values, dense.singular_values, rtol=1e-9)
    assert rand.total_energy == pytest.approx(dense.total_energy, rel=1e-13)
    np.testing.assert_allclose(rand.predict(small.user, small.item, clip=False),
                               dense.predict(small.user, small.item, clip=False), atol=1e-4)
