"""Bayesian matrix factorization by Gibbs sampling (csrc/core/bayes.c).

The model (Salakhutdinov & Mnih's BPMF with biases, sampled noise and
relation blocks):

    r_ui ~ N(mu + b_u + b_i + <U_u, V_i>, 1/alpha),   alpha ~ Gamma(1, 1),
    U_u = p_u + |N(u)|^-1/2 sum_{j in N(u)} y_j + sum_a X_ua w_a   (implicit="user"/"both",
                                                               user_features)
    V_i = q_i + |R(i)|^-1/2 sum_{v in R(i)} z_v + sum_g Y_ig c_g   (implicit="item"/"both",
                                                               item_features)

(biases likewise), where N(u) are the items u rated and R(i) the users who
rated i. Each group of rows -- the free rows (p, b_u) of a side, its
implicit rows, its feature rows -- has the prior N(m, Lambda^-1) with a
Normal-Wishart hyperprior on the factor columns and a Normal-Gamma one on
the bias. A sweep draws, in turn: each group's (m, Lambda), every user's
(p_u, b_u) (in parallel), the user-side implicit and feature rows (in
order), the same for the items, then mu and alpha.

The prediction is the posterior mean over the kept samples (every
``thin``-th sweep after ``burn_in``). Because the mean of <U^s_u, V^s_i>
over S samples is one inner product of the stacked samples,
[U^1 .. U^S] . [V^1 .. V^S] / S, a fitted model stores user_factors =
[U^1 .. U^S] / sqrt(S) (n_users x S*k, float32) and the item ones alike,
with the biases and mu averaged: prediction, top-N and files work
unchanged, and give exactly the posterior mean. The cost is S*k floats
per user and item (the README says more); ``thin`` bounds it.

``likelihood="ordinal"``: an ordered probit on integer ratings instead of
the Gaussian (see ordinal.py); mu is 0 and alpha 1 there, the rows are
drawn on the latent ratings, and predictions go through ``transform``.
"""
from __future__ import annotations

import math
import statistics

import numpy as np

from .. import _core
from . import Algorithm, check_choice, check_float, check_int, register
from .ordinal import Ordinal, check_levels, interval, moments

IMPLICIT = {"none": (), "user": ("user",), "item": ("item",), "both": ("user", "item")}
# Random streams: sweep * PHASES + phase; side j's phases are 8j + (0: the
# free rows' prior, 1: the free rows, 2 + g: feature group g's prior (g < 2:
# implicit rows, given features), 4: the feature rows); 16: mu and alpha.
PHASES = 32


class _Side:
    """One side's sampler state: free and effective rows (n x d, float64),
    the ratings by row, and the feature rows with their groups."""

    def __init__(self, ratings, free, features):
        self.ratings = ratings          # (indptr, indices, values) by row
        self.free = free
        self.eff = free.copy()
        self.features = features        # (XT csr, group) or None
        d = free.shape[1]
        n_groups = 0 if features is None else int(features[1].max()) + 1
        self.Y = None if features is None else np.zeros((len(features[1]), d))
        # the rows' Gram matrices, from the free-row draws to the feature draws
        n = len(free)
        self.gram = dict(gram=np.zeros((n, d * d)), gram_rhs=np.zeros((n, d))) \
            if features is not None else dict(gram=None, gram_rhs=None)
        self.prior = (np.zeros((1, d)), np.eye(d).reshape(1, -1))
        self.feature_prior = (np.zeros((n_groups, d)), np.tile(np.eye(d).ravel(), (n_groups, 1)))


@register
class Bayes(Algorithm):
    name = "bayes"
    iterations_param = "sweeps"
    uses_features = True
    feature_value_bytes = 8   # the feature rows are sampled in float64
    stops_early = ("every sweep after burn_in adds a sample to the posterior mean; "
                   "choose sweeps and burn_in instead")
    stacked_factors = True    # one block of factors per kept sample (module docstring)
    extra_shapes = {
        "user_bias_samples": ("<f4", ("users", "samples")),
        "item_bias_samples": ("<f4", ("items", "samples")),
        "mu_samples": ("<f8", ("samples",)), "alpha_samples": ("<f8", ("samples",)),
        "user_prior_mean": ("<f8", ("sample_width",)),
        "user_prior_prec": ("<f8", ("sample_width", "sample_width")),
        # check_levels: 2 to 101 levels
        "cut_samples": ("<f8", ("samples", range(1, 101))), "levels": ("<f8", (range(2, 102),)),
    }
    defaults = {
        "factors": 10,
        "sweeps": 200,
        "burn_in": None,
        "thin": 1,
        "implicit": "none",
        "likelihood": "gaussian",
        "feature_combine": "mean",
        "init_scale": 0.1,
        "seed": None,
        "n_threads": 1,
    }

    @classmethod
    def check_params(cls, params):
        super().check_params(params)
        check_int(params, "burn_in", 0, allow_none=True)
        check_int(params, "thin", 1)
        if params["burn_in"] is not None and params["burn_in"] >= params["sweeps"]:
            raise ValueError(f"sweeps ({params['sweeps']}) must be larger than burn_in "
                             f"({params['burn_in']}): no sample would be kept")
        check_choice(params, "implicit", IMPLICIT)
        check_choice(params, "likelihood", {"gaussian", "ordinal"})
        check_choice(params, "feature_combine", {"mean", "sum"})
        check_float(params, "init_scale", 0.0)

    def __init__(self, params):
        super().__init__(params)
        self.samples = None   # after finish: the per-sample arrays (see finish)

    # ---- fitting -----------------------------------------------------------

    def check_data(self, train):
        super().check_data(train)
        if self.params["likelihood"] == "ordinal":
            check_levels(train.ratings)

    def start(self, core, train, seed):
        p = self.params
        k = p["factors"]
        self.seed, self.k = seed, k
        self.train_users = train.users
        self.mu, self.alpha = float(core.global_mean), 1.0
        # (sweep, U, V, user bias, item bias, mu, alpha, user prior, cut points)
        self.kept = []
        self.running = {}       # id(users) -> [users, sum, count, last sweep added]
        self.sweep = -1
        self.sides = {}
        for stream, (side, ratings) in enumerate((("user", train.by_user),
                                                  ("item", train.by_item))):
            n = len(ratings[0]) - 1
            init = np.empty((n, k), np.float32)
            _core.init_factors(init, 1, p["init_scale"], seed, stream)
            free = np.zeros((n, k + 1))
            free[:, :k] = init
            self.sides[side] = _Side(ratings, free, self.side_features(train, side))
        self.ordinal = None
        if p["likelihood"] == "ordinal":  # mu = 0 and alpha = 1: the cut points scale
            self.ordinal = Ordinal(train.ratings, seed, p["n_threads"])
            self.mu = 0.0
            self.order = {"user": np.lexsort((train.items, train.users)),
                          "item": np.lexsort((train.users, train.items))}
        self.write_sample(core)

    def set_latent(self):
        """The ordinal latent z as the ratings both sides' rows are drawn on."""
        for side, s in self.sides.items():
            s.ratings = (*s.ratings[:2], self.ordinal.z[self.order[side]].astype(np.float32))

    def side_features(self, train, side):
        """(XT: the CSR features x rows with the weights, group of each
        feature) of one side: the implicit block (group 0) and the given
        features (next group), or None."""
        by_row, by_col = ((train.by_user, train.by_item) if side == "user"
                          else (train.by_item, train.by_user))
        n_rows = len(by_row[0]) - 1
        blocks = []  # (feature, row, weight, n_features)
        if side in IMPLICIT[self.params["implicit"]]:
            counts = np.diff(by_row[0])
            weight = 1.0 / np.sqrt(np.maximum(counts, 1))
            feat = np.repeat(np.arange(len(by_col[0]) - 1), np.diff(by_col[0]))
            blocks.append((feat, by_col[1], weight[by_col[1]], len(by_col[0]) - 1))
        given = getattr(train, f"{side}_features")
        if given is not None:
            f = given.combined(self.params["feature_combine"])
            rows = np.repeat(np.arange(n_rows), np.diff(f.indptr))
            blocks.append((f.indices, rows, f.weights, f.n_features))
        if not blocks:
            return None
        offsets = np.cumsum([0] + [b[3] for b in blocks])
        feat = np.concatenate([b[0] + off for b, off in zip(blocks, offsets)]).astype(np.int32)
        rows = np.concatenate([b[1] for b in blocks]).astype(np.int32)
        weights = np.concatenate([b[2] for b in blocks]).astype(np.float32)
        group = np.repeat(np.arange(len(blocks), dtype=np.int32), [b[3] for b in blocks])
        return _core.build_csr(feat, rows, weights, int(offsets[-1]), n_rows), group

    def step(self, core, train, iteration):
        self.sweep = iteration
        base = iteration * PHASES
        u, i = self.sides["user"], self.sides["item"]
        try:
            if self.ordinal is not None:
                self.set_latent()
            for j, (side, other) in enumerate((("user", "item"), ("item", "user"))):
                self.draw_side(self.sides[side], self.sides[other].eff, base + 8 * j)
            pred = _core.bayes_predict(train.users, train.items, u.eff, i.eff, self.mu,
                                       self.params["n_threads"])
            if self.ordinal is None:
                e = train.ratings - pred
                # no BLAS call: its threads would spin beside n_threads
                mu, self.alpha = _core.bayes_noise(len(e), float(e.sum()), float(np.sum(e * e)),
                                                   self.mu, self.alpha, self.seed, base + 16)
            else:
                self.ordinal.draw(pred, iteration, adapt=iteration < self.burn_in)
                mu, pred = 0.0, self.ordinal.expected(pred)
            if not np.all(np.isfinite(u.eff)) or not np.all(np.isfinite(i.eff)):
                raise FloatingPointError("non-finite rows")
        except (FloatingPointError, ValueError) as err:
            r = train.ratings
            raise FloatingPointError(
                f"bayes: sweep {iteration + 1} diverged ({err}); its priors suit ratings "
                f"of a few units (these ratings span {r.min():g} to {r.max():g}): rescale "
                "them") from None
        self.train_pred = pred + (mu - self.mu)
        self.mu = mu
        if self.is_kept(iteration):
            k = self.k
            self.kept.append((iteration, u.eff[:, :k].astype(np.float32),
                              i.eff[:, :k].astype(np.float32), u.eff[:, k].copy(),
                              i.eff[:, k].copy(), self.mu, self.alpha, u.prior,
                              None if self.ordinal is None else self.ordinal.cuts.copy()))
        self.write_sample(core)
        # the history's train_loss: this sweep's own sample (train_rmse is
        # the running posterior mean's)
        e = train.ratings - self.train_pred
        return float(np.mean(e * e))

    def draw_side(self, s, other, stream):
        """The side's priors, free rows and feature rows, given the other side."""
        s.prior = self.hyper(s.free, stream)
        noise = dict(mu=self.mu, alpha=self.alpha, seed=self.seed,
                     n_threads=self.params["n_threads"])
        _core.bayes_rows(s.ratings, other, s.free, s.eff, *s.prior, stream=stream + 1,
                         **s.gram, **noise)
        if s.features is None:
            return
        XT, group = s.features
        for g in range(len(s.feature_prior[0])):
            mean, prec = self.hyper(s.Y[group == g], stream + 2 + g)
            s.feature_prior[0][g], s.feature_prior[1][g] = mean[0], prec[0]
        _core.bayes_features(s.ratings, other, s.eff, XT, group, s.Y, *s.feature_prior,
                             stream=stream + 4, **s.gram, **noise)

    def hyper(self, rows, stream):
        mean, prec = _core.bayes_hyper(rows, self.k, self.seed, stream)
        return mean[None, :], prec.reshape(1, -1)

    @property
    def burn_in(self) -> int:
        """The sweeps left out: burn_in, by default a quarter of the sweeps
        (at most 50)."""
        b = self.params["burn_in"]
        return min(50, self.params["sweeps"] // 4) if b is None else b

    def is_kept(self, iteration):
        burn_in = self.burn_in
        return iteration >= burn_in and (iteration - burn_in) % self.params["thin"] == 0

    def write_sample(self, core):
        """The current sample into the core model (during the fit)."""
        k = self.k
        u, i = self.sides["user"], self.sides["item"]
        core.user_factors = u.eff[:, :k].astype(np.float32)
        core.item_factors = i.eff[:, :k].astype(np.float32)
        core.user_bias = u.eff[:, k].astype(np.float32)
        core.item_bias = i.eff[:, k].astype(np.float32)
        core.global_mean = self.mu

    def predictions(self, core, users, items, n_threads):
        """The running posterior mean of the predictions for these pairs
        (the current sample's until the first sample is kept); -1 marks an
        unknown id. Called once a sweep per pair set by the fit loop."""
        if users is self.train_users:
            pred = self.train_pred
        else:
            pred = self.sample_predict(users, items, n_threads)
        entry = self.running.get(id(users))
        if entry is None or entry[0] is not users:
            entry = self.running[id(users)] = [users, 0.0, 0, -1]
        if entry[3] != self.sweep and self.is_kept(self.sweep):
            entry[1], entry[2], entry[3] = entry[1] + pred, entry[2] + 1, self.sweep
        return np.asarray(entry[1] / entry[2] if entry[2] else pred, np.float32)

    def sample_predict(self, users, items, n_threads):
        """The current sample's predictions; unknown ids (-1) add nothing."""
        rows = []
        for side, index in (("user", users), ("item", items)):
            eff = self.sides[side].eff
            rows.append((np.vstack([eff, np.zeros((1, eff.shape[1]))]),
                         np.where(index < 0, len(eff), index).astype(np.int32)))
        (U, u), (V, i) = rows
        pred = _core.bayes_predict(u, i, U, V, self.mu, n_threads)
        return pred if self.ordinal is None else self.ordinal.expected(pred)

    def finish(self, core, n_done):
        """The posterior mean of the samples kept in the first n_done sweeps
        into the core model, in the stacked form (module docstring)."""
        kept = [s for s in self.kept if s[0] < n_done]
        self.kept = self.sides = self.running = self.train_pred = None
        if not kept:
            return
        S = len(kept)
        scale = np.float32(1.0 / math.sqrt(S))
        core.user_factors = np.hstack([s[1] for s in kept]) * scale
        core.item_factors = np.hstack([s[2] for s in kept]) * scale
        user_bias, item_bias = (np.stack([s[j] for s in kept], axis=1) for j in (3, 4))
        core.user_bias = user_bias.mean(axis=1).astype(np.float32)
        core.item_bias = item_bias.mean(axis=1).astype(np.float32)
        mu = np.array([s[5] for s in kept])
        core.global_mean = float(mu.mean())
        d = self.k + 1
        self.samples = {
            "user_bias_samples": user_bias.astype(np.float32),
            "item_bias_samples": item_bias.astype(np.float32),
            "mu_samples": mu, "alpha_samples": np.array([s[6] for s in kept]),
            "user_prior_mean": np.mean([s[7][0][0] for s in kept], axis=0),
            "user_prior_prec": np.mean([s[7][1][0] for s in kept], axis=0).reshape(d, d)}
        if self.ordinal is not None:
            self.samples["cut_samples"] = np.array([s[8] for s in kept])
            self.samples["levels"] = self.ordinal.values

    # ---- the fitted model --------------------------------------------------

    def extra_arrays(self):
        return dict(self.samples or {})

    def load_extra_arrays(self, arrays):
        if not arrays:  # a fit in progress restores its state without them
            return
        names = ("user_bias_samples", "item_bias_samples", "mu_samples", "alpha_samples",
                 "user_prior_mean", "user_prior_prec")
        if self.params["likelihood"] == "ordinal":
            names += ("cut_samples", "levels")
        if sorted(arrays) != sorted(names):
            raise ValueError(f"bayes arrays must be {sorted(names)}, got {sorted(arrays)}")
        ub, ib, mu, alpha = (arrays[n] for n in names[:4])
        mean, prec = arrays["user_prior_mean"], arrays["user_prior_prec"]
        S, d = len(mu), len(mean)
        ok = (ub.ndim == ib.ndim == 2 and ub.shape[1] == ib.shape[1] == S >= 1
              and mu.shape == alpha.shape == (S,) and mean.shape == (d,)
              and prec.shape == (d, d) and d == self.params["factors"] + 1
              and ub.dtype == ib.dtype == np.float32
              and all(a.dtype == np.float64 for a in (mu, alpha, mean, prec))
              and all(np.isfinite(a).all() for a in arrays.values()) and (alpha > 0).all())
        if ok and "levels" in arrays:
            cuts, levels = arrays["cut_samples"], arrays["levels"]
            ok = (levels.ndim == 1 and cuts.shape == (S, len(levels) - 1) and len(levels) >= 2
                  and cuts.dtype == levels.dtype == np.float64
                  and np.all(np.diff(cuts, axis=1) > 0) and np.all(np.diff(levels) == 1))
        if not ok:
            raise ValueError("bayes arrays have inconsistent shapes, dtypes or values")
        self.samples = dict(arrays)

    def check_model(self, model):
        """The stacked factors must match the samples (a loaded file)."""
        s = self.samples
        if s is None:
            raise ValueError("this bayes model has no kept samples (stopped before burn_in)")
        S, k = len(s["mu_samples"]), self.params["factors"]
        if (model.user_factors.shape[1] != S * k
                or s["user_bias_samples"].shape[0] != len(model.user_ids)
                or s["item_bias_samples"].shape[0] != len(model.item_ids)):
            raise ValueError("bayes samples do not match the model's factors and ids")
        return S, k

    def sample_predictions(self, model, uidx, iidx, chunk=8192):
        """(start, the kept samples' predictions: chunk x S) for the pairs,
        a chunk at a time; unknown ids (-1) contribute no factors or bias.
        Ordinal: the latent predictions."""
        S, k = self.check_model(model)
        s = self.samples
        for lo in range(0, len(uidx), chunk):
            u, i = uidx[lo:lo + chunk], iidx[lo:lo + chunk]
            pred = np.broadcast_to(s["mu_samples"], (len(u), S)).copy()
            for index, bias in ((u, s["user_bias_samples"]), (i, s["item_bias_samples"])):
                known = index >= 0
                pred[known] += bias[index[known]]
            both = (u >= 0) & (i >= 0)
            fu = model.user_factors[u[both]].reshape(-1, S, k)
            fi = model.item_factors[i[both]].reshape(-1, S, k)
            pred[both] += np.einsum("nsk,nsk->ns", fu, fi, dtype=np.float64) * S
            yield lo, pred

    def level_probs(self, model, uidx, iidx):
        """Ordinal: the level probabilities of each pair, averaged over the
        kept samples (n x levels)."""
        cuts = self.samples["cut_samples"]
        out = np.empty((len(uidx), cuts.shape[1] + 1))
        for lo, pred in self.sample_predictions(model, uidx, iidx):
            out[lo:lo + len(pred)] = _core.ordinal_probs(pred, cuts, self.params["n_threads"])
        return out

    def transform(self, model, uidx, iidx, out):
        """Ordinal: the posterior mean of the expected rating (the stacked
        factors give the latent mean only)."""
        if self.params["likelihood"] != "ordinal":
            return out
        mean = moments(self.level_probs(model, uidx, iidx), self.samples["levels"])[0]
        return mean.astype(np.float32)

    def predict_std(self, model, uidx, iidx):
        """The predictive standard deviation of each pair: the spread of the
        kept samples' predictions plus the noise (the mean of 1/alpha);
        ordinal: that of the averaged level probabilities."""
        if self.params["likelihood"] == "ordinal":
            return moments(self.level_probs(model, uidx, iidx), self.samples["levels"])[1]
        out = np.empty(len(uidx), np.float64)
        noise = float(np.mean(1.0 / self.samples["alpha_samples"]))
        for lo, pred in self.sample_predictions(model, uidx, iidx):
            out[lo:lo + len(pred)] = np.sqrt(pred.var(axis=1) + noise)
        return out

    def predict_interval(self, model, uidx, iidx, level):
        """The central interval holding `level` of the predictive
        distribution: Gaussian (mean +- z std); ordinal: the levels at the
        (1 -+ level)/2 quantiles of the averaged level probabilities."""
        if self.params["likelihood"] == "ordinal":
            return interval(self.level_probs(model, uidx, iidx), self.samples["levels"], level)
        mean = model._predict(uidx, iidx, self.params["n_threads"]).astype(np.float64)
        half = statistics.NormalDist().inv_cdf(0.5 + level / 2) * self.predict_std(
            model, uidx, iidx)
        return mean - half, mean + half

    def fold_in_regularization(self, n_ratings):
        """No ridge penalty: fold_in uses the learned prior (infinity says so)."""
        return math.inf

    def fold_in(self, model, items, ratings, lam):
        """A new user's posterior mean (factors and bias) under each kept
        sample of the items, with the users' prior (averaged over the kept
        samples; regularization=lam given: N(0, I/lam) instead), stacked as
        user_factors are. The user's implicit rows are not modelled: the
        whole effective vector is regressed on the ratings."""
        S, k = self.check_model(model)
        s = self.samples
        if math.isinf(lam):
            mean, prec = s["user_prior_mean"], s["user_prior_prec"]
        else:
            mean, prec = np.zeros(k + 1), lam * np.eye(k + 1)
        V = model.item_factors[items].astype(np.float64).reshape(len(items), S, k) * math.sqrt(S)
        xs, bs = [], []
        for j in range(S):
            X = np.hstack([V[:, j], np.ones((len(items), 1))])
            t = ratings - s["mu_samples"][j] - s["item_bias_samples"][items, j]
            alpha = s["alpha_samples"][j]
            try:
                theta = np.linalg.solve(prec + alpha * X.T @ X, prec @ mean + alpha * X.T @ t)
            except np.linalg.LinAlgError:  # raised again, as every fold-in does, with the cause
                raise np.linalg.LinAlgError(
                    f"regularization={lam}: a sample's system is singular; use a larger "
                    "regularization (or None: the prior)") from None
            xs.append(theta[:k])
            bs.append(theta[k])
        return (np.concatenate(xs) / math.sqrt(S)).astype(np.float32), float(np.mean(bs))
