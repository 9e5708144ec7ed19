"""Bayesian MF (Model("bayes")): the Gibbs sampler's conditionals and
hyperprior draws against NumPy references of their formulas, the stacked
posterior mean, planted recovery, thread independence, accuracy and
calibration on MovieLens, files, fold-in and bad input; the ordered
probit likelihood."""
import math

import numpy as np
import pytest

import mfrec
from mfrec import _core

D = 4  # k = 3 factors + the bias


def spd(rng, d, scale=1.0):
    a = rng.normal(size=(d, d))
    return scale * (a @ a.T / d + np.eye(d))


def moments_match(draws, mean, cov, z=4.5):
    """Sample mean within z standard errors; sample covariance close."""
    se = np.sqrt(np.diag(cov) / len(draws))
    assert np.all(np.abs(draws.mean(axis=0) - mean) < z * se), (draws.mean(axis=0), mean)
    np.testing.assert_allclose(np.cov(draws.T), cov, atol=0.08 * np.abs(cov).max())


def one_row_state(rng, n_ratings=6, n_items=8):
    items = np.sort(rng.choice(n_items, n_ratings, replace=False)).astype(np.int32)
    ratings = rng.integers(1, 6, n_ratings).astype(np.float32)
    csr = (np.array([0, n_ratings], np.int64), items, ratings)
    other = rng.normal(size=(n_items, D))
    return csr, other


def test_row_conditional_matches_numpy(rng):
    """One user row's draws: mean and covariance of the Gaussian
    conditional A^-1 (Lambda m + alpha X^T t), A = Lambda + alpha X^T X,
    with a features' part (eff - free) in the targets."""
    csr, other = one_row_state(rng)
    prior_mean, prior_prec = rng.normal(size=D), spd(rng, D)
    mu, alpha = 3.2, 1.7
    feature_part = rng.normal(size=D) * 0.3
    X = np.hstack([other[csr[1], :D - 1], np.ones((len(csr[1]), 1))])
    t = csr[2] - mu - other[csr[1], D - 1] - X @ feature_part
    A = prior_prec + alpha * X.T @ X
    mean = np.linalg.solve(A, prior_prec @ prior_mean + alpha * X.T @ t)
    draws = []
    free = np.zeros((1, D))
    for stream in range(4000):
        eff = free + feature_part
        _core.bayes_rows(csr, other, free, eff, prior_mean[None], prior_prec.reshape(1, -1),
                         mu=mu, alpha=alpha, seed=5, stream=stream)
        np.testing.assert_allclose(eff - free, feature_part[None], atol=1e-12)
        draws.append(free[0].copy())
    moments_match(np.array(draws), mean, np.linalg.inv(A))


def test_feature_conditional_matches_numpy(rng):
    """One feature row shared by three users (weights w_r): its draws
    follow N(A^-1 h, A^-1) with A = Lambda + alpha sum_r w_r^2 X_r^T X_r,
    h = Lambda m + alpha sum_r w_r X_r^T (targets less the rest of eff),
    which the sampler builds from cached per-row statistics."""
    n_users, n_items = 3, 7
    other = rng.normal(size=(n_items, D))
    rows = [np.sort(rng.choice(n_items, 4, replace=False)) for _ in range(n_users)]
    indptr = np.array([0, 4, 8, 12], np.int64)
    items = np.concatenate(rows).astype(np.int32)
    ratings = rng.integers(1, 6, 12).astype(np.float32)
    weights = np.array([0.5, 1.0, 0.7], np.float32)
    XT = (np.array([0, 3], np.int64), np.arange(3, dtype=np.int32), weights)
    rest = rng.normal(size=(n_users, D)) * 0.3  # free rows, fixed here
    prior_mean, prior_prec = rng.normal(size=(1, D)), spd(rng, D).reshape(1, -1)
    mu, alpha = 3.0, 2.0
    A, h = prior_prec.reshape(D, D).copy(), prior_prec.reshape(D, D) @ prior_mean[0]
    for r in range(n_users):
        it = items[indptr[r]:indptr[r + 1]]
        X = np.hstack([other[it, :D - 1], np.ones((len(it), 1))])
        t = ratings[indptr[r]:indptr[r + 1]] - mu - other[it, D - 1] - X @ rest[r]
        A += alpha * weights[r] ** 2 * X.T @ X
        h += alpha * weights[r] * X.T @ t
    Y = np.zeros((1, D))
    draws = []
    for stream in range(4000):
        eff = rest + weights[:, None] * Y
        _core.bayes_features((indptr, items, ratings), other, eff, XT, np.zeros(1, np.int32),
                             Y, prior_mean, prior_prec, mu=mu, alpha=alpha, seed=9,
                             stream=stream)
        np.testing.assert_allclose(eff, rest + weights[:, None] * Y, atol=1e-12)
        draws.append(Y[0].copy())
    moments_match(np.array(draws), np.linalg.solve(A, h), np.linalg.inv(A))


def test_normal_wishart_moments(rng):
    """bayes_hyper's Normal-Wishart (first k columns) and Normal-Gamma
    (bias) draws: E[Lambda] = nu W, E[m] = n x̄ / beta,
    Cov(m) = W^-1 / (beta (nu - k - 1)); E[lambda_b] = shape / rate."""
    n, k = 12, D - 1
    rows = rng.normal(size=(n, D)) * np.array([1.0, 0.5, 2.0, 0.8]) + 0.3
    x = rows[:, :k]
    xbar = x.mean(axis=0)
    beta, nu = 1.0 + n, k + n
    S = (x - xbar).T @ (x - xbar)
    W = np.linalg.inv(np.eye(k) + S + n * np.outer(xbar, xbar) / beta)
    means, precs = [], []
    for stream in range(6000):
        mean, prec = _core.bayes_hyper(rows, k, 3, stream)
        means.append(mean)
        precs.append(prec)
    means, precs = np.array(means), np.array(precs)
    assert np.all(precs[:, :k, k] == 0) and np.all(precs[:, k, :k] == 0)
    np.testing.assert_allclose(precs[:, :k, :k].mean(axis=0), nu * W,
                               atol=0.03 * np.abs(nu * W).max())
    cov_m = np.linalg.inv(W) / (beta * (nu - k - 1))
    moments_match(means[:, :k], n * xbar / beta, cov_m)
    b = rows[:, k]
    rate = 1 + 0.5 * ((b - b.mean()) ** 2).sum() + 0.5 * n * b.mean() ** 2 / beta
    assert abs(precs[:, k, k].mean() / ((1 + n / 2) / rate) - 1) < 0.03
    assert abs(means[:, k].mean() - n * b.mean() / beta) < 0.05


def test_noise_draws(rng):
    """mu ~ N(mu + mean e, 1/(alpha n)); alpha ~ Gamma(1 + n/2, 1 + SSE/2)."""
    e = rng.normal(0.2, 0.9, 50)
    mus, alphas = [], []
    for stream in range(4000):
        mu, alpha = _core.bayes_noise(len(e), e.sum(), e @ e, 3.0, 2.0, 1, stream)
        mus.append(mu)
        alphas.append(alpha)
    mus = np.array(mus)
    assert abs(mus.mean() - (3.0 + e.mean())) < 4.5 * np.sqrt(1 / (2.0 * 50) / 4000)
    assert abs(mus.var() * 2.0 * 50 - 1) < 0.1
    # alpha given mu: E[alpha] = E[(1 + n/2) / (1 + SSE(mu)/2)] over mu's draws
    sse = ((e[None, :] - (mus[:, None] - 3.0)) ** 2).sum(axis=1)
    assert abs(np.mean(alphas) / np.mean((1 + 25) / (1 + sse / 2)) - 1) < 0.03


def test_stacked_factors_are_the_posterior_mean():
    """predict = mean over kept samples of mu_s + b_u^s + b_i^s + U^s . V^s,
    rebuilt from the stored per-sample arrays and the stacked factors."""
    data = mfrec.make_low_rank(60, 50, rank=2, density=0.3, noise=0.3, seed=1)
    m = mfrec.Model("bayes", factors=3, sweeps=12, burn_in=4, thin=2, seed=2).fit(data.ratings)
    s = m._solver.samples
    S = len(s["mu_samples"])
    assert S == 4 and m.user_factors.shape == (len(m.user_ids), S * 3)
    u, i = np.arange(len(m.user_ids)), np.arange(len(m.item_ids))
    uu, ii = np.meshgrid(u, i, indexing="ij")
    uu, ii = uu.ravel(), ii.ravel()
    Us = m.user_factors.reshape(-1, S, 3) * np.sqrt(S)
    Vs = m.item_factors.reshape(-1, S, 3) * np.sqrt(S)
    per_sample = (s["mu_samples"][None] + s["user_bias_samples"][uu] + s["item_bias_samples"][ii]
                  + np.einsum("nsk,nsk->ns", Us[uu], Vs[ii]))
    pred = m.predict(m.user_ids[uu], m.item_ids[ii], clip=False)
    np.testing.assert_allclose(pred, per_sample.mean(axis=1), atol=2e-4)
    std = m.predict(m.user_ids[uu], m.item_ids[ii], return_std=True)[1]
    np.testing.assert_allclose(
        std, np.sqrt(per_sample.var(axis=1) + np.mean(1 / s["alpha_samples"])), rtol=1e-4)


def test_planted_low_rank_recovered():
    """The posterior mean recovers the planted signal mu + P.Q (variance 1)
    on unseen pairs to within half the noise (a row's k + 1 unknowns from
    ~55 ratings leave about 0.3 sqrt(4/55 + 4/80) = 0.1), and estimates
    the noise level."""
    data = mfrec.make_low_rank(300, 200, rank=3, density=0.3, noise=0.3, seed=4)
    r = data.ratings
    rng = np.random.default_rng(0)
    test = rng.random(len(r)) < 0.1
    m = mfrec.Model("bayes", factors=3, sweeps=60, seed=3).fit(r[~test])
    truth = data.global_mean + np.einsum("ij,ij->i", data.user_factors[r.user[test]],
                                         data.item_factors[r.item[test]])
    pred = m.predict(r.user[test], r.item[test], clip=False)
    assert np.sqrt(np.mean((pred - truth) ** 2)) < 0.5 * data.noise
    noise_sd = np.sqrt(np.mean(1 / m._solver.samples["alpha_samples"]))
    assert abs(noise_sd - data.noise) < 0.02


@pytest.mark.parametrize("implicit", ["none", "both"])
def test_same_result_at_any_thread_count(implicit):
    data = mfrec.make_low_rank(2500, 300, rank=2, density=0.02, noise=0.5, seed=5)
    genres = (np.random.default_rng(1).random((300, 5)) < 0.3).astype(np.float32)
    fits = [mfrec.Model("bayes", factors=4, sweeps=5, burn_in=2, implicit=implicit, seed=7,
                        n_threads=t).fit(data.ratings, item_features=genres,
                                         item_feature_ids=np.arange(300))
            for t in (1, 2, 3)]
    for m in fits[1:]:
        np.testing.assert_array_equal(m.user_factors, fits[0].user_factors)
        np.testing.assert_array_equal(m.item_bias, fits[0].item_bias)
        assert m.history[-1]["train_rmse"] == fits[0].history[-1]["train_rmse"]


def test_history_callback_and_stop():
    """History rows per sweep; a callback that stops after sweep 6 leaves
    the posterior mean of the samples kept so far (sweeps 3..6)."""
    data = mfrec.make_low_rank(80, 60, rank=2, density=0.3, noise=0.3, seed=2)
    rows = []

    def stop(model, row):
        rows.append(row)
        return row["epoch"] < 6
    m = mfrec.Model("bayes", factors=2, sweeps=20, burn_in=2, seed=1).fit(
        data.ratings, validation=data.ratings, callback=stop)
    assert len(m.history) == 6 == len(rows)
    assert len(m._solver.samples["mu_samples"]) == 4
    assert all(np.isfinite(r["valid_rmse"]) and r["seconds"] >= 0 for r in m.history)
    # the history's train RMSE is the running posterior mean's, as predict gives it
    full = m.predict(data.ratings.user, data.ratings.item, clip=False)
    rmse = np.sqrt(np.mean((full - data.ratings.rating) ** 2))
    assert abs(m.history[-1]["train_rmse"] - rmse) < 1e-4


def test_save_load_fold_in_recommend(tmp_path):
    data = mfrec.make_low_rank(80, 60, rank=2, density=0.3, noise=0.3, seed=3)
    r = data.ratings
    m = mfrec.Model("bayes", factors=2, sweeps=10, seed=1).fit(r)
    m.save(tmp_path / "b.npz")
    m2 = mfrec.Model.load(tmp_path / "b.npz")
    np.testing.assert_array_equal(m2.predict(r.user, r.item), m.predict(r.user, r.item))
    np.testing.assert_array_equal(m2.predict(r.user, r.item, return_std=True)[1],
                                  m.predict(r.user, r.item, return_std=True)[1])
    ids, scores = m2.recommend(0, n=5, exclude_seen=False)
    np.testing.assert_allclose(scores, m2.predict(np.zeros(5, np.int64), ids, clip=False),
                               rtol=1e-5)
    # a new user who rated like user 0: fold_in solves each sample's row
    seen = r.user == 0
    x, b = m2.fold_in(r.item[seen], r.rating[seen])
    assert x.shape == (m.user_factors.shape[1],)
    assert np.corrcoef(x, m.user_factors[0])[0, 1] > 0.8
    new_ids, _ = m2.recommend_new_user(r.item[seen], r.rating[seen], n=5)
    assert not set(new_ids) & set(r.item[seen])


def test_interval_and_std_need_a_posterior():
    data = mfrec.make_low_rank(40, 30, rank=2, density=0.3, seed=3)
    sgd = mfrec.Model("sgd", factors=2, epochs=1, seed=1).fit(data.ratings)
    with pytest.raises(ValueError, match="return_std"):
        sgd.predict([0], [0], return_std=True)
    m = mfrec.Model("bayes", factors=2, sweeps=4, seed=1).fit(data.ratings)
    for level in (0, 1, 1.5, "x", True):
        with pytest.raises(ValueError, match="level"):
            m.predict_interval([0], [0], level=level)
    lo50, hi50 = m.predict_interval([0, 1, 99], [0, 1, 0], level=0.5)
    lo90, hi90 = m.predict_interval([0, 1, 99], [0, 1, 0], level=0.9)
    assert np.all(lo90 <= lo50) and np.all(hi50 <= hi90) and np.all(lo50 < hi50)


def test_bad_input():
    with pytest.raises(ValueError, match="burn_in"):
        mfrec.Model("bayes", sweeps=10, burn_in=10)
    for name, value in (("thin", 0), ("implicit", "users"), ("burn_in", -1),
                        ("feature_combine", "max")):
        with pytest.raises(ValueError, match=name):
            mfrec.Model("bayes", **{name: value})
    data = mfrec.make_low_rank(40, 30, rank=2, density=0.3, seed=3)
    with pytest.raises(ValueError, match="item_features"):
        mfrec.Model("bayes", factors=2, sweeps=3).fit(
            data.ratings, item_features=np.ones(30), item_feature_ids=np.arange(30))
    with pytest.raises(ValueError, match="item_features"):
        mfrec.Model("bayes", factors=2, sweeps=3).fit(
            data.ratings, item_features=np.ones((29, 2)), item_feature_ids=np.arange(30))


@pytest.mark.slow
def test_movielens_u1_accuracy_and_calibration(ml100k):
    """ML-100K u1, rank 10, 200 sweeps: RMSE band, and the intervals'
    coverage of the test ratings (90%: 86-94%, 50%: 45-55%)."""
    train, test = ml100k.fold("u1")
    m = mfrec.Model("bayes", factors=10, sweeps=200, seed=1).fit(train)
    rmse = m.score(test)["rmse"]
    assert 0.88 < rmse < 0.915, rmse
    for level, (low, high) in ((0.9, (0.86, 0.94)), (0.5, (0.45, 0.55))):
        lo, hi = m.predict_interval(test.user, test.item, level)
        coverage = np.mean((test.rating >= lo) & (test.rating <= hi))
        assert low <= coverage <= high, (level, coverage)


def test_demo_serves_a_bayes_model(ml100k):
    """The demo's three views on a Bayesian model: the user's top-N is the
    model's, a new user's list comes from the per-sample fold-in, and
    similar movies rank by the stacked factors."""
    from mfrec.demo import Recommender
    model = mfrec.Model("bayes", factors=5, sweeps=8, seed=2).fit(ml100k.ratings)
    rec = Recommender(model, ml100k, n=5)
    _, rows, _ = rec.for_user("42")
    assert [r["item"] for r in rows] == model.recommend(42, n=5)[0].tolist()
    picks = []
    for item, rating in [(50, 5), (172, 5), (181, 4), (294, 1)]:
        picks = rec.add_pick(picks, item, rating)
    rows = rec.for_new_user(picks)
    assert len(rows) == 5 and not {50, 172, 181, 294} & {r["item"] for r in rows}
    similar = [r["item"] for r in rec.similar(50)]
    assert len(similar) == 5 and 50 not in similar


def test_interrupt_keeps_the_samples_of_complete_sweeps():
    """Ctrl-C (a KeyboardInterrupt during sweep 7's callback) keeps the
    posterior mean of the samples of the sweeps in the history."""
    data = mfrec.make_low_rank(80, 60, rank=2, density=0.3, noise=0.3, seed=2)

    def interrupt(model, row):
        if row["epoch"] == 7:
            raise KeyboardInterrupt
    m = mfrec.Model("bayes", factors=2, sweeps=20, burn_in=3, seed=1)
    with pytest.warns(RuntimeWarning, match="interrupted"):
        m.fit(data.ratings, callback=interrupt)
    assert len(m.history) == 7
    assert len(m._solver.samples["mu_samples"]) == 4  # sweeps 4..7
    assert m.user_factors.shape[1] == 4 * 2
    full = m.predict(data.ratings.user, data.ratings.item, clip=False)
    rmse = np.sqrt(np.mean((full - data.ratings.rating) ** 2))
    assert abs(m.history[-1]["train_rmse"] - rmse) < 1e-4


# ---- ordered probit (likelihood="ordinal") ----------------------------------

def normal_cdf(x):
    return 0.5 * (1 + np.vectorize(math.erf)(np.asarray(x, float) / math.sqrt(2)))


def pdf(x):
    return 0.0 if np.isinf(x) else math.exp(-x * x / 2) / math.sqrt(2 * math.pi)


def xpdf(x):
    return 0.0 if np.isinf(x) else x * pdf(x)


def test_truncated_normal_draws_match_their_moments():
    """ordinal_latent's draws for each kind of interval (tails, narrow,
    around 0, wide) lie in it and have the truncated normal's mean and
    variance: m + (phi(a) - phi(b)) / Z, and 1 + (a phi(a) - b phi(b)) / Z - ..."""
    cuts = np.array([-4.0, -0.3, -0.2, 0.5, 3.0])
    n = 40000
    for level, m in [(0, 0.0), (1, 0.0), (2, 0.1), (3, 0.2), (4, -1.0), (5, 0.0), (5, -2.0)]:
        ext = np.r_[-np.inf, cuts, np.inf]
        a, b = ext[level] - m, ext[level + 1] - m
        z = _core.ordinal_latent(np.full(n, m), np.full(n, level, np.int32), cuts, 4, level)
        assert np.all((z > ext[level]) & (z <= ext[level + 1]))
        Z = float(normal_cdf(b) - normal_cdf(a))
        mean = (pdf(a) - pdf(b)) / Z
        var = 1 + (xpdf(a) - xpdf(b)) / Z - mean ** 2
        assert abs(z.mean() - m - mean) < 4.5 * math.sqrt(var / n), (level, m)
        assert abs(z.var() / var - 1) < 0.05, (level, m)


def test_ordinal_likelihood_and_level_probabilities():
    rng = np.random.default_rng(3)
    # moderate predictions: the erf-based reference loses digits in the tails
    pred, cuts = rng.normal(0, 1, 500), np.array([-1.2, -0.1, 0.6, 2.0])
    level = rng.integers(0, 5, 500).astype(np.int32)
    ext = np.r_[-np.inf, cuts, np.inf]
    p = normal_cdf(ext[level + 1] - pred) - normal_cdf(ext[level] - pred)
    assert abs(_core.ordinal_loglik(pred, level, cuts) - np.log(p).sum()) < 1e-8
    S = 3
    preds, many = rng.normal(0, 1, (7, S)), np.sort(rng.normal(0, 1, (S, 4)), axis=1)
    probs = _core.ordinal_probs(preds, many)
    ref = np.zeros((7, 5))
    for s in range(S):
        e = np.r_[-np.inf, many[s], np.inf]
        ref += np.diff(normal_cdf(e[None, :] - preds[:, s:s + 1]), axis=1) / S
    np.testing.assert_allclose(probs, ref, atol=1e-12)
    with pytest.raises(ValueError, match="increasing"):
        _core.ordinal_loglik(pred, level, cuts[::-1].copy())
    with pytest.raises(IndexError, match="level"):
        _core.ordinal_loglik(pred, level + 5, cuts)


def planted_levels(seed=6):
    """Star ratings 1..5 cut from a planted low-rank latent plus N(0, 1)."""
    data = mfrec.make_low_rank(250, 150, rank=2, density=0.25, noise=0.6, global_mean=0.0,
                               seed=seed)
    r = data.ratings
    latent = 1.5 * r.rating  # signal sd 1.5, noise sd 0.9
    stars = np.digitize(latent, [-2.0, -0.7, 0.7, 2.0]) + 1
    return mfrec.Ratings(r.user, r.item, stars.astype(np.float32)), data


def test_ordinal_fit_predicts_expected_ratings(tmp_path):
    """On ratings cut from a planted latent, the ordinal model's expected
    ratings beat the Gaussian model's squared error on held-out pairs, its
    cut points come out increasing, its files round-trip, and its
    intervals are rating levels."""
    stars, _ = planted_levels()
    test = np.random.default_rng(0).random(len(stars)) < 0.15
    train, held = stars[~test], stars[test]
    fits = {lik: mfrec.Model("bayes", factors=2, sweeps=60, likelihood=lik, seed=1).fit(train)
            for lik in ("gaussian", "ordinal")}
    rmse = {lik: m.score(held)["rmse"] for lik, m in fits.items()}
    assert rmse["ordinal"] < rmse["gaussian"] and rmse["ordinal"] < 0.8 * held.rating.std()
    m = fits["ordinal"]
    cuts = m._solver.samples["cut_samples"]
    assert np.all(np.diff(cuts, axis=1) > 0)
    pred, std = m.predict(held.user, held.item, return_std=True)
    assert np.all((pred >= 1) & (pred <= 5)) and np.all(std > 0)
    lo, hi = m.predict_interval(held.user, held.item, level=0.8)
    assert set(np.unique(np.r_[lo, hi])) <= {1.0, 2.0, 3.0, 4.0, 5.0} and np.all(lo <= hi)
    m.save(tmp_path / "o.npz")
    m2 = mfrec.Model.load(tmp_path / "o.npz")
    np.testing.assert_array_equal(m2.predict(held.user, held.item), pred)


def test_ordinal_same_result_at_any_thread_count():
    stars, _ = planted_levels(seed=8)
    fits = [mfrec.Model("bayes", factors=2, sweeps=4, likelihood="ordinal", implicit="both",
                        seed=3, n_threads=t).fit(stars) for t in (1, 3)]
    np.testing.assert_array_equal(fits[0].user_factors, fits[1].user_factors)
    np.testing.assert_array_equal(fits[0]._solver.samples["cut_samples"],
                                  fits[1]._solver.samples["cut_samples"])


def test_ordinal_needs_integer_levels():
    data = mfrec.make_low_rank(40, 30, rank=2, density=0.3, seed=3)
    with pytest.raises(ValueError, match="integer ratings"):
        mfrec.Model("bayes", factors=2, sweeps=3, likelihood="ordinal").fit(data.ratings)
    r = data.ratings
    ones = mfrec.Ratings(r.user, r.item, np.ones(len(r), np.float32))
    with pytest.raises(ValueError, match="levels"):
        mfrec.Model("bayes", factors=2, sweeps=3, likelihood="ordinal").fit(ones)
    with pytest.raises(ValueError, match="likelihood"):
        mfrec.Model("bayes", likelihood="probit")


def test_cross_validate_and_search():
    """A fold of cross_validate gives the figures of a separate fit with the
    same seed; a search over implicit picks one of its candidates."""
    from mfrec.model_selection import KFold, RandomSearch, cross_validate
    data = mfrec.make_low_rank(120, 80, rank=2, density=0.25, noise=0.3, seed=5).ratings
    model = mfrec.Model("bayes", factors=2, sweeps=6, seed=4)
    cv = cross_validate(model, data, KFold(2, seed=1), metrics=["rmse"], n_jobs=2)
    train, test = next(KFold(2, seed=1).split(data))
    alone = mfrec.Model("bayes", factors=2, sweeps=6, seed=4).fit(train).score(test)["rmse"]
    assert cv["folds"][0]["rmse"] == pytest.approx(alone, rel=1e-6)
    search = RandomSearch(model, {"implicit": ["none", "both"]}, n_iter=2, cv=KFold(2, seed=1),
                          n_jobs=1).fit(data)
    assert search.best_params["implicit"] in ("none", "both")


# ---- the context group (context="day") ------------------------------------

def fm_offset_and_regressors(predict, theta0):
    """(offset, X) of a prediction linear in theta: predict(theta) =
    offset + X theta, read off by unit steps from theta0 = 0."""
    base = predict(theta0)
    cols = []
    for j in range(len(theta0)):
        step = theta0.copy()
        step[j] = 1.0
        cols.append(predict(step) - base)
    return base, np.array(cols).T


@pytest.mark.parametrize("side", ["context", "user"])
def test_context_row_conditional_matches_numpy(rng, side):
    """One day's row (or one user's row, given the days): the conditional
    of the row in the three-group FM prediction mu + b_u + b_i + b_c +
    <u, v> + <u, w> + <v, w>, written out here in NumPy, against the
    sampler fed with per-rating rows (bayes_context.row_part)."""
    from mfrec.algorithms import bayes_context as ctx
    n = 7
    U, V, W = (rng.normal(size=(m, D)) * 0.7 for m in (3, 5, 4))
    users, items = rng.integers(0, 3, n).astype(np.int32), rng.integers(0, 5, n).astype(np.int32)
    days = rng.integers(0, 4, n).astype(np.int32)
    ratings = rng.integers(1, 6, n).astype(np.float32)
    mu, alpha, k = 3.1, 1.9, D - 1

    def fm(U, V, W):
        u, v, w = U[users], V[items], W[days]
        return (mu + u[:, k] + v[:, k] + w[:, k] + np.sum(u[:, :k] * v[:, :k], 1)
                + np.sum(u[:, :k] * w[:, :k], 1) + np.sum(v[:, :k] * w[:, :k], 1))
    if side == "context":  # every rating on day 0, whose row is drawn
        days[:] = 0
        other = ctx.row_part(U, V, users, items)
        plug = lambda th: fm(U, V, np.vstack([th, W[1:]]))  # noqa: E731
    else:                  # every rating by user 0
        users[:] = 0
        other = ctx.row_part(V, W, items, days)
        plug = lambda th: fm(np.vstack([th, U[1:]]), V, W)  # noqa: E731
    offset, X = fm_offset_and_regressors(plug, np.zeros(D))
    prior_mean, prior_prec = rng.normal(size=D), spd(rng, D)
    A = prior_prec + alpha * X.T @ X
    mean = np.linalg.solve(A, prior_prec @ prior_mean + alpha * X.T @ (ratings - offset))
    csr = ctx.rating_csr(np.zeros(n, np.int32), 1, ratings)
    draws, free = [], np.zeros((1, D))
    for stream in range(4000):
        eff = free.copy()
        _core.bayes_rows(csr, other, free, eff, prior_mean[None], prior_prec.reshape(1, -1),
                         mu=mu, alpha=alpha, seed=4, stream=stream)
        draws.append(free[0].copy())
    moments_match(np.array(draws), mean, np.linalg.inv(A))


def planted_days(n_days=40, seed=5, day_sd=0.6):
    """Low-rank ratings plus a planted day effect b_c (sd day_sd), with
    timestamps (seconds) inside their days."""
    data = mfrec.make_low_rank(300, 200, rank=2, density=0.2, noise=0.4, seed=seed)
    r = data.ratings
    g = np.random.default_rng(seed)
    day, effect = g.integers(0, n_days, len(r)), g.normal(size=n_days) * day_sd
    stamps = 1_000 * 86400 + day * 86400 + g.integers(0, 86400, len(r))
    rated = mfrec.Ratings(r.user, r.item, (r.rating + effect[day]).astype(np.float32), stamps)
    return rated, effect, day


def test_planted_day_effect_recovered():
    """The day rows recover a planted day effect: held-out RMSE with the
    days near the noise and far below the time-less model's; the stored
    day biases (relative to the prior mean) correlate with the truth."""
    rated, effect, day = planted_days()
    test = np.random.default_rng(1).random(len(rated.rating)) < 0.1
    train, held = rated[~test], rated[test]
    m = mfrec.Model("bayes", factors=2, sweeps=40, context="day", seed=2).fit(train)
    plain = mfrec.Model("bayes", factors=2, sweeps=40, seed=2).fit(train)
    with_days = m.score(held)["rmse"]  # a Ratings' timestamps are used
    assert with_days < 0.6 < plain.score(held)["rmse"]
    bias = m._solver.samples["context_bias_samples"].mean(axis=1)
    assert np.corrcoef(bias, effect)[0, 1] > 0.97
    # the same days given as timestamps= (float seconds) fit the same model
    m2 = mfrec.Model("bayes", factors=2, sweeps=40, context="day", seed=2).fit(
        train.user, train.item, train.rating, timestamps=train.timestamp.astype(float))
    np.testing.assert_array_equal(m2.user_factors, m.user_factors)


@pytest.mark.parametrize("likelihood", ["gaussian", "ordinal"])
def test_context_posterior_mean_files_and_threads(tmp_path, likelihood):
    """The stored model gives the sampler's running posterior mean: with the
    days on the training ratings (history's train RMSE), without them on
    the validation ratings (the context prior mean); identical at 1, 2, 3
    threads; save/load keeps the day arrays; unknown days fall back."""
    rated, _, _ = planted_days(n_days=1500, seed=6)
    if likelihood == "ordinal":
        stars = np.clip(np.rint(rated.rating), 1, 5).astype(np.float32)
        rated = mfrec.Ratings(rated.user, rated.item, stars, rated.timestamp)
    genres = (np.random.default_rng(1).random((200, 4)) < 0.3).astype(np.float32)
    fits = [mfrec.Model("bayes", factors=3, sweeps=8, burn_in=3, implicit="both",
                        likelihood=likelihood, context="day", seed=7, n_threads=t).fit(
        rated, item_features=genres, item_feature_ids=np.arange(200), validation=rated[:500])
        for t in (1, 2, 3)]
    m = fits[0]
    for other in fits[1:]:
        np.testing.assert_array_equal(other.user_factors, m.user_factors)
        np.testing.assert_array_equal(other._solver.samples["context_factors"],
                                      m._solver.samples["context_factors"])
    u, i, r, ts = rated.user, rated.item, rated.rating, rated.timestamp
    if likelihood == "gaussian":
        rmse = lambda p, n=len(r): np.sqrt(np.mean((p - r[:n]) ** 2))  # noqa: E731
        assert abs(rmse(m.predict(u, i, clip=False, timestamps=ts))
                   - m.history[-1]["train_rmse"]) < 1e-4
        assert abs(rmse(m.predict(u[:500], i[:500], clip=False), 500)
                   - m.history[-1]["valid_rmse"]) < 1e-4
        # recommend ranks by the same time-less posterior mean
        ids, scores = m.recommend(u[0], n=5, exclude_seen=False)
        np.testing.assert_allclose(scores, m.predict(np.full(5, u[0]), ids, clip=False),
                                   rtol=1e-5)
    m.save(tmp_path / "d.npz")
    m2 = mfrec.Model.load(tmp_path / "d.npz")
    for stamps in (ts, None):
        a, sa = m.predict(u, i, timestamps=stamps, return_std=True)
        b, sb = m2.predict(u, i, timestamps=stamps, return_std=True)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(sa, sb)
        assert np.all(np.isfinite(a)) and np.all(sa > 0)
    far = np.full(5, 10**6 * 86400)  # days not seen in fit: the prior mean's prediction
    np.testing.assert_array_equal(m2.predict(u[:5], i[:5], timestamps=far),
                                  m2.predict(u[:5], i[:5]))
    m2.fold_in(i[:5], r[:5])


def test_context_bad_input():
    rated, _, _ = planted_days(n_days=5)
    fit = lambda **kw: mfrec.Model("bayes", factors=2, sweeps=3, context="day").fit(  # noqa
        rated.user, rated.item, rated.rating, **kw)
    with pytest.raises(ValueError, match="context"):
        mfrec.Model("bayes", context="week")
    with pytest.raises(ValueError, match="timestamps"):
        fit()
    bad = rated.timestamp.astype(float)
    bad[3] = np.nan
    with pytest.raises(ValueError, match="timestamps must be finite"):
        fit(timestamps=bad)
    with pytest.raises(ValueError, match="one entry per rating"):
        fit(timestamps=rated.timestamp[1:])
    with pytest.raises(TypeError, match="timestamps"):
        fit(timestamps=rated.timestamp.astype(str))
    with pytest.raises(ValueError, match="does not use them"):
        mfrec.Model("sgd", epochs=1).fit(rated.user, rated.item, rated.rating,
                                         timestamps=rated.timestamp)
    m = fit(timestamps=rated.timestamp)
    with pytest.raises(ValueError, match="one entry per rating"):
        m.predict([0, 1], [0, 1], timestamps=[0])
    with pytest.raises(ValueError, match="timestamps must be finite"):
        m.predict([0], [0], timestamps=[np.inf])
    plain = mfrec.Model("bayes", factors=2, sweeps=3).fit(rated)  # a Ratings' times unused
    with pytest.raises(ValueError, match="does not use them"):
        plain.predict([0], [0], timestamps=[0])
    assert np.isfinite(plain.score(rated)["rmse"])


def test_pair_rows_match_numpy(rng):
    """bayes_pair_rows: A[a] + B[b], the last column plus the factors' dot
    product; indices are checked."""
    A, B = rng.normal(size=(4, D)), rng.normal(size=(6, D))
    a, b = rng.integers(0, 4, 50).astype(np.int32), rng.integers(0, 6, 50).astype(np.int32)
    want = A[a] + B[b]
    want[:, D - 1] += np.sum(A[a, :D - 1] * B[b, :D - 1], axis=1)
    for threads in (1, 3):
        np.testing.assert_allclose(_core.bayes_pair_rows(a, b, A, B, threads), want, rtol=1e-12)
    with pytest.raises(IndexError, match="bayes_pair_rows"):
        _core.bayes_pair_rows(a, np.full(50, 6, np.int32), A, B)
    with pytest.raises(ValueError, match="B"):
        _core.bayes_pair_rows(a, b, A, B[:, :2])


def test_fold_in_with_a_vanishing_regularization_is_a_linalg_error():
    """As every fold-in: a singular system is numpy.linalg.LinAlgError,
    naming the regularization."""
    model = mfrec.Model("bayes", factors=1, sweeps=4, burn_in=1, seed=0).fit([1], [1], [1.0])
    with pytest.raises(np.linalg.LinAlgError, match="regularization"):
        model.fold_in([1], [1.0], regularization=2.5e-34)
