"""Stochastic gradient descent: the plain model, the biased L2 one, and
either with side features of users and items (genres, say).

The update is in csrc/core/sgd.c. The learning rate multiplies the gradient with
its factor 2 folded in (p += lr (e q - lambda p), as Funk, Surprise and LIBMF
write it): a document whose step is eta * 2 e q uses learning_rate = 2 eta.

With side features (see features.py) the epoch is csrc/core/sgd.c's
mfr_sgd_epoch_features on the free parts, the feature vectors and biases
stepping with them, followed by writing the effective rows into the model.
That epoch is sequential whatever n_threads says: feature vectors are
shared by rows that every block of the parallel schedule touches.

Negative sampling (``negatives=s``): each epoch also trains, for every
rating, s items drawn uniformly from those its user has not rated, towards
``negative_rating`` (default 0). A model of ratings alone ranks the unrated
items by the rating it predicts, however unlikely the user is to pick them;
the drawn pairs teach it that most unrated items go unpicked, which is what
top-N lists are judged on. In expectation an epoch weighs each unrated pair
of a user with n_u ratings by w_u = s n_u / (n_items - n_u), a rating by 1:
weighted MF's unobserved term, drawn instead of summed. Predictions then
mix "rating" and "chosen at all", so they rank well and no longer estimate
ratings (RMSE worsens). Fold-in minimizes the same expected objective.
"""
import math

import numpy as np

from .. import _core
from . import (INIT_KINDS, Algorithm, check_bool, check_choice, check_float, check_int,
               register)
from .features import FeatureSolver


@register
class SGD(FeatureSolver, Algorithm):
    name = "sgd"
    defaults = {
        "factors": 100,
        "learning_rate": 0.005,
        "regularization": 0.02,
        "biases": True,
        "init": "normal",
        "init_scale": 0.1,
        "epochs": 20,
        "feature_combine": "mean",
        "negatives": 0,
        "negative_rating": 0.0,
        "seed": None,
        "n_threads": 1,
    }

    @classmethod
    def check_params(cls, params):
        super().check_params(params)
        check_float(params, "learning_rate", 0.0, strict=True)
        check_float(params, "regularization", 0.0)
        check_bool(params, "biases")
        check_choice(params, "init", INIT_KINDS)
        check_float(params, "init_scale", 0.0)
        check_int(params, "negatives", 0, high=1000)
        check_float(params, "negative_rating", -np.inf)

    def start(self, core, train, seed):
        p = self.params
        self.seed = seed
        if not p["negatives"]:
            train.drop_csrs()  # the epochs read the triplets only (peak memory)
        self.init_factors(core, train, seed, p["init"], p["init_scale"])
        if p["biases"]:
            core.user_bias = np.zeros(train.n_users, np.float32)
            core.item_bias = np.zeros(train.n_items, np.float32)
        else:
            core.global_mean = 0.0
        self.start_features(core, train, p["biases"])

    def train_rmse(self, core, train, n_threads):
        """The RMSE of the errors the epoch met, each before its rating's
        step (as LIBMF reports it; no pass of its own). With negatives, whose
        pairs the epoch's loss also sums, the ratings scored afresh over the
        CSR (with features the core model then holds the effective rows)."""
        if self.params["negatives"]:
            return self.train_rmse_by_user(core, train, n_threads)
        return math.sqrt(self.epoch_loss)

    def runs_lean(self):
        """Each epoch leaves a complete model (the core model, or the free
        one and the feature arrays, materialized): a fit that neither
        validates nor stops early copies none of them per epoch."""
        return True

    def step(self, core, train, iteration):
        p = self.params
        common = dict(learning_rate=p["learning_rate"], regularization=p["regularization"],
                      biases=p["biases"], seed=self.seed, epoch=iteration,
                      negatives=p["negatives"], negative_rating=p["negative_rating"],
                      rated=train.by_user if p["negatives"] else None)
        try:
            if self.free is None:
                self.epoch_loss = _core.sgd_epoch(core, train.users, train.items, train.ratings,
                                                  n_threads=p["n_threads"], **common)
            else:
                self.epoch_loss = _core.sgd_epoch_features(
                    self.free, train.users, train.items, train.ratings,
                    user_features=self.side("user"), item_features=self.side("item"), **common)
        except FloatingPointError:
            raise FloatingPointError(
                f"SGD diverged at epoch {iteration + 1} with learning_rate="
                f"{p['learning_rate']}: the factors became infinite, NaN or too large "
                "for float32 predictions; use a smaller learning_rate") from None
        if self.free is not None:
            self.materialize(core)
        return self.epoch_loss

    def fold_in_regularization(self, n_ratings):
        """SGD's L2 summed over the user's updates in an epoch: one per
        rating, and one per drawn negative."""
        p = self.params
        return float(p["regularization"]) * n_ratings * (1 + p["negatives"])

    def fold_in(self, model, items, ratings, lam):
        """With negatives, the minimizer of an epoch's expected objective:
        every unrated item enters as negative_rating with the weight w_u
        its draws have (see the module docstring)."""
        p = self.params
        n_unrated = len(model.item_ids) - len(items)
        if not p["negatives"] or n_unrated == 0:
            return super().fold_in(model, items, ratings, lam)
        return _core.fold_in(model, items, ratings, lam,
                             unrated_weight=p["negatives"] * len(items) / n_unrated,
                             unrated_value=p["negative_rating"])
