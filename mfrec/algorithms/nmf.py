"""Non-negative matrix factorization fitted on the observed ratings only.

P, Q >= 0 minimize sum (r - mu - b_u - b_i - p_u . q_i)^2
+ regularization * (sum_u |R(u)| |p_u|^2 + sum_i |R(i)| |q_i|^2)
+ bias_regularization * (|b_u|^2 + |b_i|^2), the bias terms only with
biases=True (Luo et al.'s biased NMF; otherwise mu = b = 0 and p_u . q_i fits
the rating). Each epoch (csrc/core/nmf.c): exact bias steps, then multiplicative
updates of P and of Q; no step increases the objective, which ``history``
reports per rating as ``train_loss``, and the factors stay non-negative.
Factors start uniform in [0, init_scale).
"""
import numpy as np

from .. import _core
from . import Algorithm, check_bool, check_float, register


@register
class NMF(Algorithm):
    name = "nmf"
    defaults = {
        "factors": 15,
        "regularization": 0.1,
        "biases": False,
        "bias_regularization": 15.0,
        "init_scale": 1.0,
        "epochs": 100,
        "seed": None,
        "n_threads": 1,
    }

    @classmethod
    def check_params(cls, params):
        super().check_params(params)
        check_float(params, "regularization", 0.0)
        check_float(params, "bias_regularization", 0.0)
        check_bool(params, "biases")
        check_float(params, "init_scale", 0.0, strict=True)

    def check_data(self, train):
        """Without biases the target is the rating itself, p.q >= 0: a
        negative rating cannot be fitted, only missed."""
        super().check_data(train)
        if not self.params["biases"] and train.ratings.min() < 0:
            raise ValueError("ratings: nmf without biases fits them as p.q >= 0 and needs "
                             f"ratings >= 0; found {train.ratings.min()} (use biases=True, "
                             "or shift the ratings)")

    def start(self, core, train, seed):
        self.init_factors(core, train, seed, "uniform", self.params["init_scale"])
        if self.params["biases"]:
            core.user_bias = np.zeros(train.n_users, np.float32)
            core.item_bias = np.zeros(train.n_items, np.float32)
        else:
            core.global_mean = 0.0

    def step(self, core, train, iteration):
        p = self.params
        objective = _core.nmf_epoch(core, train.by_user, train.by_item,
                                    regularization=p["regularization"],
                                    bias_regularization=p["bias_regularization"],
                                    biases=p["biases"], n_threads=p["n_threads"])
        return objective / len(train)

    train_rmse = Algorithm.train_rmse_by_user
