"""Stochastic gradient descent: the plain model and the biased, L2 one.

The update is in csrc/sgd.c. The learning rate multiplies the gradient with
its factor 2 folded in (p += lr (e q - lambda p), as Funk, Surprise and LIBMF
write it): a document whose step is eta * 2 e q uses learning_rate = 2 eta.
"""
from .. import _core
from . import Algorithm, check_bool, check_choice, check_float, register, INIT_KINDS


@register
class SGD(Algorithm):
    name = "sgd"
    defaults = {
        "factors": 100,
        "learning_rate": 0.005,
        "regularization": 0.02,
        "biases": True,
        "init": "normal",
        "init_scale": 0.1,
        "epochs": 20,
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

    def start(self, core, train, seed):
        p = self.params
        self.seed = seed
        self.init_factors(core, train, seed, p["init"], p["init_scale"])
        if p["biases"]:
            import numpy as np

            core.user_bias = np.zeros(train.n_users, np.float32)
            core.item_bias = np.zeros(train.n_items, np.float32)
        else:
            core.global_mean = 0.0

    def step(self, core, train, iteration):
        p = self.params
        try:
            return _core.sgd_epoch(
                core, train.users, train.items, train.ratings,
                learning_rate=p["learning_rate"], regularization=p["regularization"],
                biases=p["biases"], seed=self.seed, epoch=iteration,
                n_threads=p["n_threads"])
        except FloatingPointError:
            raise FloatingPointError(
                f"SGD diverged at epoch {iteration + 1} with learning_rate="
                f"{p['learning_rate']}: the factors became infinite or NaN; "
                "use a smaller learning_rate") from None
