"""The fitted Bayesian MF model (bayes.py): its kept samples' arrays,
files, predictive spread, intervals and fold-in."""
from __future__ import annotations

import math
import statistics

import numpy as np

from .. import _core
from . import bayes_context as ctx
from .ordinal import interval, moments


class Posterior:
    """What a fitted Bayes model adds to prediction (a mixin of Bayes)."""

    params: dict
    samples: dict

    def extra_arrays(self):
        return dict(self.samples or {})

    def load_extra_arrays(self, arrays):
        if not arrays:  # a fit in progress restores its state without them
            return
        names = ("user_bias_samples", "item_bias_samples", "mu_samples", "alpha_samples",
                 "user_prior_mean", "user_prior_prec")
        if self.params["likelihood"] == "ordinal":
            names += ("cut_samples", "levels")
        if self.params["context"] != "none":
            names += ("context_days", "context_factors", "context_bias_samples")
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
        if ok and self.params["context"] != "none":
            ok = ctx.check_arrays(arrays, S, S * self.params["factors"])
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

    def sample_predictions(self, model, uidx, iidx, cidx=None, chunk=8192):
        """(start, the kept samples' predictions: chunk x S) for the pairs,
        a chunk at a time; unknown ids (-1) contribute no factors or bias,
        cidx their days (or None). Ordinal: the latent predictions."""
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
            if cidx is not None:
                pred += ctx.context_delta(model, s, u, i, cidx[lo:lo + chunk], True)
            yield lo, pred

    def level_probs(self, model, uidx, iidx, cidx=None):
        """Ordinal: the level probabilities of each pair, averaged over the
        kept samples (n x levels)."""
        cuts = self.samples["cut_samples"]
        out = np.empty((len(uidx), cuts.shape[1] + 1))
        for lo, pred in self.sample_predictions(model, uidx, iidx, cidx):
            out[lo:lo + len(pred)] = _core.ordinal_probs(pred, cuts, self.params["n_threads"])
        return out

    def context_index(self, model, timestamps, n):
        """The context index of each pair from its timestamp (-1: a day not
        seen in fit, predicted with the context prior mean), or None."""
        if timestamps is None or self.params["context"] == "none":
            return super().context_index(model, timestamps, n)
        days, known = ctx.days_of(timestamps, n, "predict"), self.samples["context_days"]
        pos = np.minimum(np.searchsorted(known, days), len(known) - 1)
        return np.where(known[pos] == days, pos, -1)

    def transform(self, model, uidx, iidx, out, cidx=None):
        """Ordinal: the posterior mean of the expected rating (the stacked
        factors give the latent mean only); with days, their part added."""
        if self.params["likelihood"] != "ordinal":
            if cidx is None:
                return out
            return (out + ctx.context_delta(model, self.samples, uidx, iidx, cidx, False)
                    ).astype(np.float32)
        mean = moments(self.level_probs(model, uidx, iidx, cidx), self.samples["levels"])[0]
        return mean.astype(np.float32)

    def predict_std(self, model, uidx, iidx, cidx=None):
        """The predictive standard deviation of each pair: the spread of the
        kept samples' predictions plus the noise (the mean of 1/alpha);
        ordinal: that of the averaged level probabilities."""
        if self.params["likelihood"] == "ordinal":
            return moments(self.level_probs(model, uidx, iidx, cidx),
                           self.samples["levels"])[1]
        out = np.empty(len(uidx), np.float64)
        noise = float(np.mean(1.0 / self.samples["alpha_samples"]))
        for lo, pred in self.sample_predictions(model, uidx, iidx, cidx):
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
