"""Side features of users and items, shared by the algorithms that use them.

With features (``fit(..., item_features=..., item_feature_ids=...)``) an
item's row is its free vector plus the combination of its features'
vectors, q_i + sum_g Y_ig W_g, and its bias b_i + sum_g Y_ig c_g (Y's rows
are the given weights, or their mean: see ``feature_combine``); users the
same with their own features. A solver keeps the free parts in a private
core model (``free``) and the features' vectors and biases as its fitted
attributes; after every iteration it writes the effective rows into the
shared model's factors and biases (``materialize``), so prediction, top-N,
fold-in and files work unchanged. A row without ratings has free parts of
zero: its factors and bias come from its features alone (cold start).
"""
import numpy as np

from .. import _core
from . import check_choice

SIDES = ("user", "item")


class FeatureSolver:
    """The mixin an Algorithm takes to learn from side features."""

    uses_features = True
    params: dict  # set by the Algorithm this class is mixed into
    fitted_attributes = tuple(f"{side}_feature_{what}" for side in SIDES
                              for what in ("factors", "bias"))
    extra_shapes = {f"{side}_feature_{what}": ("<f4", shape) for side in SIDES
                    for what, shape in (("factors", (f"{side}_features", "factors")),
                                        ("bias", (f"{side}_features",)))}

    def __init__(self, params):
        super().__init__(params)
        for name in self.fitted_attributes:
            setattr(self, name, None)
        self.features = dict.fromkeys(SIDES)
        self.free = None  # the free parts, when there are features

    @classmethod
    def check_params(cls, params):
        super().check_params(params)
        check_choice(params, "feature_combine", {"mean", "sum"})

    def start_features(self, core, train, biases: bool) -> bool:
        """After the core model is initialized: move its rows to the free
        model (zero for rows without ratings) and create zero feature
        vectors and biases. False, and nothing done, without features."""
        how = self.params["feature_combine"]
        self.features = {side: None if f is None else f.combined(how)
                         for side, f in (("user", train.user_features),
                                         ("item", train.item_features))}
        if not any(self.features.values()):
            return False
        self.free = free = _core.Model()
        free.global_mean = core.global_mean
        for side, index in (("user", train.users), ("item", train.items)):
            factors = getattr(core, f"{side}_factors").copy()
            factors[np.bincount(index, minlength=len(factors)) == 0] = 0.0
            setattr(free, f"{side}_factors", factors)
            if biases:
                setattr(free, f"{side}_bias", np.zeros(len(factors), np.float32))
            f = self.features[side]
            if f is not None:
                setattr(self, f"{side}_feature_factors",
                        np.zeros((f.n_features, factors.shape[1]), np.float32))
                if biases:
                    setattr(self, f"{side}_feature_bias", np.zeros(f.n_features, np.float32))
        self.materialize(core)
        return True

    def side(self, side):
        """The features of one side as the core takes them, or None:
        (indptr, indices, weights, factors, bias or None)."""
        f = self.features[side]
        if f is None:
            return None
        return (f.indptr, f.indices, f.weights, getattr(self, f"{side}_feature_factors"),
                getattr(self, f"{side}_feature_bias"))

    def materialize(self, core, sides=SIDES):
        """Write the effective rows (free + features) into the core model."""
        for side in sides:
            free_factors = getattr(self.free, f"{side}_factors")
            free_bias = getattr(self.free, f"{side}_bias")
            features = self.side(side)
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
