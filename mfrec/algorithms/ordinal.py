"""The ordered-probit likelihood of Bayesian MF (``likelihood="ordinal"``).

A rating of level l (the integer ratings lowest, lowest + 1, ..., highest)
is observed when a latent z ~ N(pred, 1) falls in (c_{l-1}, c_l], so
P(l | pred) = Phi(c_l - pred) - Phi(c_{l-1} - pred); the global mean is
fixed at 0 (the cut points take its place) and the noise precision at 1.
Each sweep draws the rows given z (as Gaussian ratings), then the cut
points by random-walk Metropolis steps on the likelihood with z
integrated out (flat prior; the step size adapts during burn-in only),
then z given the rows and cut points (truncated normals, csrc/core/ordinal.c).
A prediction is the expected rating, sum_l level_l P(l), averaged over
the kept samples; its std and intervals come from the same averaged level
probabilities.
"""
from __future__ import annotations

import math
import statistics

import numpy as np

from .. import _core

MH_STEPS = 4  # Metropolis proposals per sweep


def check_levels(ratings) -> None:
    """ValueError unless the ratings are integers with at least 2 levels."""
    r = np.asarray(ratings, np.float64)
    if not np.all(r == np.round(r)):
        bad = r[r != np.round(r)][0]
        raise ValueError("likelihood='ordinal' needs integer ratings (ordered levels); "
                         f"found {bad:g}")
    if r.max() - r.min() < 1 or r.max() - r.min() > 100:
        raise ValueError("likelihood='ordinal' needs 2 to 101 rating levels; the ratings "
                         f"span {r.min():g} to {r.max():g}")


class Ordinal:
    """The likelihood's state during a fit: levels, cut points, latent z."""

    def __init__(self, ratings, seed, n_threads):
        self.lowest = float(ratings.min())
        self.level = (ratings - self.lowest).astype(np.int32)
        self.n_levels = int(self.level.max()) + 1
        self.seed, self.n_threads = seed, n_threads
        # start at the normal quantiles of the cumulative level shares
        share = np.cumsum(np.bincount(self.level, minlength=self.n_levels))[:-1] / len(ratings)
        cuts = [statistics.NormalDist().inv_cdf(min(max(c, 1e-4), 1 - 1e-4)) for c in share]
        self.cuts = np.maximum.accumulate(np.array(cuts)) + 1e-3 * np.arange(len(cuts))
        self.step = 1.0 / math.sqrt(len(ratings))
        self.z = _core.ordinal_latent(np.zeros(len(ratings)), self.level, self.cuts, seed,
                                      2**31, n_threads)

    @property
    def values(self) -> np.ndarray:
        return self.lowest + np.arange(self.n_levels)

    def draw(self, pred, sweep, adapt):
        """The cut points (Metropolis), then z, given the latent predictions."""
        rng = np.random.default_rng([self.seed, sweep])
        loglik = _core.ordinal_loglik(pred, self.level, self.cuts, self.n_threads)
        for _ in range(MH_STEPS):
            proposal = self.cuts + self.step * rng.standard_normal(len(self.cuts))
            accept = bool(np.all(np.diff(proposal) > 0))
            if accept:
                new = _core.ordinal_loglik(pred, self.level, proposal, self.n_threads)
                accept = math.log(rng.random() + 1e-300) < new - loglik
                if accept:
                    self.cuts, loglik = proposal, new
            if adapt:  # towards about a third accepted
                self.step *= 1.3 if accept else 0.88
        self.z = _core.ordinal_latent(pred, self.level, self.cuts, self.seed,
                                      2**31 + sweep + 1, self.n_threads)

    def expected(self, pred):
        """The expected rating for latent predictions under the current cuts."""
        probs = _core.ordinal_probs(pred[:, None], self.cuts[None, :], self.n_threads)
        return moments(probs, self.values)[0]


def moments(probs, values):
    """(mean, std) of ratings with level probabilities probs (n x levels);
    einsum rather than BLAS, whose threads would spin beside n_threads."""
    mean = np.einsum("nl,l->n", probs, values)
    var = np.einsum("nl,l->n", probs, values ** 2) - mean ** 2
    return mean, np.sqrt(np.maximum(var, 0.0))


def interval(probs, values, level):
    """The central interval of a discrete distribution: the lowest value
    whose CDF reaches (1 - level)/2 and the lowest reaching (1 + level)/2."""
    cdf = np.cumsum(probs, axis=1)
    last = len(values) - 1
    lo = np.minimum((cdf < (1 - level) / 2 - 1e-12).sum(axis=1), last)
    hi = np.minimum((cdf < (1 + level) / 2 - 1e-12).sum(axis=1), last)
    return values[lo], values[hi]
