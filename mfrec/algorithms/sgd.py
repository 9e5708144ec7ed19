"""Stochastic gradient descent: the plain model, the biased L2 one, and
either with side features of users and items (genres, say).

The update is in csrc/sgd.c. The learning rate multiplies the gradient with
its factor 2 folded in (p += lr (e q - lambda p), as Funk, Surprise and LIBMF
write it): a document whose step is eta * 2 e q uses learning_rate = 2 eta.

Side features (``fit(..., item_features=..., item_feature_ids=...)``): an
item's row is its free vector plus the combination ("mean" or "sum", see
``feature_combine``) of its features' vectors, q_i + sum_g Y_ig W_g, and its
bias likewise; users the same with their own features. The free vectors
live in a private core model; after every epoch the effective rows are
written into the shared model's item_factors/item_bias (and user_*), so
prediction, top-N and files work unchanged. A row without ratings has free
parts of zero: its factors come from its features alone (cold start). The
learned feature vectors are ``item_feature_factors`` (n_features x k) and
``item_feature_bias`` (and ``user_feature_*``).
"""
import numpy as np

from .. import _core
from . import Algorithm, check_bool, check_choice, check_float, register, INIT_KINDS

SIDES = ("user", "item")


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
        "feature_combine": "mean",
        "seed": None,
        "n_threads": 1,
    }
    uses_features = True
    fitted_attributes = tuple(f"{side}_feature_{what}" for side in SIDES
                              for what in ("factors", "bias"))

    def __init__(self, params):
        super().__init__(params)
        for name in self.fitted_attributes:
            setattr(self, name, None)
        self.features = dict.fromkeys(SIDES)
        self.free = None  # the free parts, when there are features

    @classmethod
    def check_params(cls, params):
        super().check_params(params)
        check_float(params, "learning_rate", 0.0, strict=True)
        check_float(params, "regularization", 0.0)
        check_bool(params, "biases")
        check_choice(params, "init", INIT_KINDS)
        check_float(params, "init_scale", 0.0)
        check_choice(params, "feature_combine", {"mean", "sum"})

    def start(self, core, train, seed):
        p = self.params
        self.seed = seed
        self.init_factors(core, train, seed, p["init"], p["init_scale"])
        if p["biases"]:
            core.user_bias = np.zeros(train.n_users, np.float32)
            core.item_bias = np.zeros(train.n_items, np.float32)
        else:
            core.global_mean = 0.0
        self.features = {side: None if f is None else f.combined(p["feature_combine"])
                         for side, f in (("user", train.user_features),
                                         ("item", train.item_features))}
        if not any(self.features.values()):
            return
        self.free = free = _core.Model()
        free.global_mean = core.global_mean
        for side, index in (("user", train.users), ("item", train.items)):
            factors = getattr(core, f"{side}_factors").copy()
            factors[np.bincount(index, minlength=len(factors)) == 0] = 0.0  # cold rows
            setattr(free, f"{side}_factors", factors)
            if p["biases"]:
                setattr(free, f"{side}_bias", np.zeros(len(factors), np.float32))
            f = self.features[side]
            if f is not None:
                setattr(self, f"{side}_feature_factors",
                        np.zeros((f.n_features, p["factors"]), np.float32))
                if p["biases"]:
                    setattr(self, f"{side}_feature_bias", np.zeros(f.n_features, np.float32))
        self.materialize(core)

    def _side(self, side):
        """The features of one side as the core takes them, or None."""
        f = self.features[side]
        if f is None:
            return None
        return (f.indptr, f.indices, f.weights, getattr(self, f"{side}_feature_factors"),
                getattr(self, f"{side}_feature_bias"))

    def materialize(self, core):
        """Write the effective rows (free + features) into the core model."""
        for side in SIDES:
            free_factors = getattr(self.free, f"{side}_factors")
            free_bias = getattr(self.free, f"{side}_bias")
            features = self._side(side)
            if features is None:
                setattr(core, f"{side}_factors", free_factors.copy())
                setattr(core, f"{side}_bias", None if free_bias is None else free_bias.copy())
                continue
            eff = np.empty_like(free_factors)
            eff_bias = None if free_bias is None else np.empty_like(free_bias)
            _core.features_apply(features, free_factors, free_bias, eff, eff_bias,
                                 self.params["n_threads"])
            setattr(core, f"{side}_factors", eff)
            setattr(core, f"{side}_bias", eff_bias)

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
                user_features=self._side("user"), item_features=self._side("item"), **common)
        except FloatingPointError:
            raise FloatingPointError(
                f"SGD diverged at epoch {iteration + 1} with learning_rate="
                f"{p['learning_rate']}: the factors became infinite or NaN; "
                "use a smaller learning_rate") from None
        self.materialize(core)
        return loss

    def extra_arrays(self):
        return {name: getattr(self, name) for name in self.fitted_attributes
                if getattr(self, name) is not None}

    def load_extra_arrays(self, arrays):
        unknown = sorted(set(arrays) - set(self.fitted_attributes))
        if unknown:
            raise ValueError(f"unknown arrays {unknown}")
        for side in SIDES:
            factors = arrays.get(f"{side}_feature_factors")
            bias = arrays.get(f"{side}_feature_bias")
            if factors is not None and (factors.dtype != np.float32 or factors.ndim != 2
                                        or not np.isfinite(factors).all()):
                raise ValueError(f"{side}_feature_factors must be a finite 2-D float32 array")
            if bias is not None and (factors is None or bias.dtype != np.float32
                                     or bias.shape != factors.shape[:1]
                                     or not np.isfinite(bias).all()):
                raise ValueError(f"{side}_feature_bias must be finite float32, one per feature")
            setattr(self, f"{side}_feature_factors", factors)
            setattr(self, f"{side}_feature_bias", bias)
