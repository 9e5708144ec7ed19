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

``context="day"``: the rating's day as a third group (bayes_context.py).
"""
from __future__ import annotations

import math

import numpy as np

from .. import _core
from . import Algorithm, check_choice, check_float, check_int, register
from . import bayes_context as ctx
from .bayes_posterior import Posterior
from .ordinal import Ordinal, check_levels

IMPLICIT = {"none": (), "user": ("user",), "item": ("item",), "both": ("user", "item")}
# Random streams: sweep * PHASES + phase; side j's phases are 8j + (0: the
# free rows' prior, 1: the free rows, 2 + g: feature group g's prior (g < 2:
# implicit rows, given features), 4: the feature rows); 16: mu and alpha;
# 24, 25: the context rows' prior and rows.
PHASES = 32


class _Side:
    """One side's sampler state: free and effective rows (n x d, float64),
    the ratings by row, and the feature rows with their groups."""

    def __init__(self, ratings, free, features, entry=None):
        self.ratings = ratings          # (indptr, indices, values) by row
        self.entry = entry              # each CSR entry's position in the ratings
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
class Bayes(Posterior, Algorithm):
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
        "context_days": ("<i8", ("days",)), "context_factors": ("<f4", ("days", "factors")),
        "context_bias_samples": ("<f4", ("days", "samples")),
    }
    defaults = {
        "factors": 10,
        "sweeps": 200,
        "burn_in": None,
        "thin": 1,
        "implicit": "none",
        "likelihood": "gaussian",
        "context": "none",
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
        check_choice(params, "context", {"none", "day"})
        check_choice(params, "feature_combine", {"mean", "sum"})
        check_float(params, "init_scale", 0.0)

    def __init__(self, params):
        super().__init__(params)
        self.samples = None   # after finish: the per-sample arrays (see finish)
        self.days = None      # context="day": fit's rating days

    @property
    def uses_context(self):
        return self.params["context"] != "none"

    # ---- fitting -----------------------------------------------------------

    def check_data(self, train):
        super().check_data(train)
        if self.params["likelihood"] == "ordinal":
            check_levels(train.ratings)
        if self.uses_context and self.days is None:
            raise ValueError("timestamps: context='day' needs the ratings' timestamps (fit a "
                             "Ratings with timestamp, or give timestamps=)")

    def take_timestamps(self, ratings, timestamps, n):
        """fit's rating days, from timestamps= or the Ratings' timestamp."""
        if timestamps is None and self.uses_context:
            timestamps = getattr(ratings, "timestamp", None)
        if timestamps is not None:
            if not self.uses_context:
                super().take_timestamps(ratings, timestamps, n)
            self.days = ctx.days_of(timestamps, n, "fit")

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
        rows = {"user": (train.by_user, train.users, train.items),
                "item": (train.by_item, train.items, train.users)}
        if self.uses_context:  # the ratings as columns (bayes_context.py)
            self.context_days, cidx = np.unique(self.days, return_inverse=True)
            self.cidx = cidx.astype(np.int32)
            self.rating_index = np.arange(len(cidx), dtype=np.int32)
            rows["context"] = (None, self.cidx, None)
        for stream, (side, (ratings, index, other)) in enumerate(rows.items()):
            n = len(self.context_days) if ratings is None else len(ratings[0]) - 1
            init = np.empty((n, k), np.float32)
            _core.init_factors(init, 1, p["init_scale"], seed, stream)
            free = np.zeros((n, k + 1))
            free[:, :k] = init
            entry = np.lexsort((other, index)) if p["likelihood"] == "ordinal" \
                and other is not None else None
            if self.uses_context:
                ratings = ctx.rating_csr(index, n, train.ratings)
                entry = ratings[1]
            features = self.side_features(train, side) if side != "context" else None
            self.sides[side] = _Side(ratings, free, features, entry)
        self.ordinal = None
        if p["likelihood"] == "ordinal":  # mu = 0 and alpha = 1: the cut points scale
            self.ordinal = Ordinal(train.ratings, seed, p["n_threads"])
            self.mu = 0.0
        self.write_sample(core)

    def set_latent(self):
        """The ordinal latent z as the ratings both sides' rows are drawn on."""
        for s in self.sides.values():
            s.ratings = (*s.ratings[:2], self.ordinal.z[s.entry].astype(np.float32))

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
            for j, side in enumerate(self.sides):
                other = self.other_rows(train, side)
                self.draw_side(self.sides[side], other, base + (0, 8, 24)[j])
            if self.uses_context:  # other: each rating's (U_u + V_i, its prediction - mu)
                pred = _core.bayes_predict(self.rating_index, self.cidx, other,
                                           self.sides["context"].eff, self.mu,
                                           self.params["n_threads"])
            else:
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
                              None if self.ordinal is None else self.ordinal.cuts.copy(),
                              self.context_sample()))
        self.write_sample(core)
        # the history's train_loss: this sweep's own sample (train_rmse is
        # the running posterior mean's)
        e = train.ratings - self.train_pred
        return float(np.mean(e * e))

    def other_rows(self, train, side):
        """What a side's rows are drawn given: the other side's rows, or
        with a context, per rating (bayes_context.py)."""
        if not self.uses_context:
            return self.sides["item" if side == "user" else "user"].eff
        eff = {name: s.eff for name, s in self.sides.items()}
        index = {"user": train.users, "item": train.items, "context": self.cidx}
        a, b = [x for x in ("user", "item", "context") if x != side]
        return ctx.row_part(eff[a], eff[b], index[a], index[b], self.params["n_threads"])

    def context_sample(self):
        """The context rows and their prior mean (kept with a sample), or None."""
        c = self.sides.get("context")
        return None if c is None else (c.eff.copy(), c.prior[0][0].copy())

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
        if self.uses_context:  # no day: the context prior mean's row
            m = self.sides["context"].prior[0]
            pred += ctx.context_term(U, V, m, u, i, np.zeros(len(u), np.intp))
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
        context = {}
        if self.uses_context:  # the prior mean folded into mu and the biases
            kept, context = ctx.fold_samples(kept, self.k, scale, self.context_days)
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
            "user_prior_prec": np.mean([s[7][1][0] for s in kept], axis=0).reshape(d, d),
            **context}
        if self.ordinal is not None:
            self.samples["cut_samples"] = np.array([s[8] for s in kept])
            self.samples["levels"] = self.ordinal.values
