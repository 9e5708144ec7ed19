"""Stochastic gradient descent: the plain model, the biased L2 one, and
either with side features of users and items (genres, say).

The update is in csrc/sgd.c. The learning rate multiplies the gradient with
its factor 2 folded in (p += lr (e q - lambda p), as Funk, Surprise and LIBMF
write it): a document whose step is eta * 2 e q uses learning_rate = 2 eta.

With side features (see features.py) the epoch is csrc/sgd.c's
mfr_sgd_epoch_features on the free parts, the feature vectors and biases
stepping with them, followed by writing the effective rows into the model.
That epoch is sequential whatever n_threads says: feature vectors are
shared by rows that every block of the parallel schedule touches.
"""
import numpy as np

from .. import _core
from . import Algorithm, check_bool, check_choice, check_float, register, INIT_KINDS
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
            core.user_bias = np.zeros(train.n_users, np.float32)
            core.item_bias = np.zeros(train.n_items, np.float32)
        else:
            core.global_mean = 0.0
        self.start_features(core, train, p["biases"])

    def step(self, core, train, iteration):
        p = self.params
        common = dict(learning_rate=p["learning_rate"], regularization=p["regularization"],
                      biases=p["biases"], seed=self.seed, epoch=iteration)
        try:
            if self.free is None:
                return _core.sgd_epoch(core, train.users, train.items, train.ratings,
                                       n_threads=p["n_threads"], **common)
            loss = _core.sgd_epoch_features(
                self.free, train.users, train.items, train.ratings,
                user_features=self.side("user"), item_features=self.side("item"), **common)
        except FloatingPointError:
            raise FloatingPointError(
                f"SGD diverged at epoch {iteration + 1} with learning_rate="
                f"{p['learning_rate']}: the factors became infinite or NaN; "
                "use a smaller learning_rate") from None
        self.materialize(core)
        return loss
