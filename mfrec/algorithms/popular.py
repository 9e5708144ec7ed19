"""Popularity: every user is offered the items most training users rated.

The score of item i is the share of training users who rated it,
n_i / n_users. It lives in item_bias, with one column of zero factors and
zero user biases and global mean, so the shared top-N path (Model.recommend)
ranks by it without code of its own. A ranking baseline, not a rating
predictor: predict returns the shares.
"""
import numpy as np

from . import Algorithm, check_int, check_threads, register


@register
class Popular(Algorithm):
    name = "popular"
    defaults = {"seed": None, "n_threads": 1}
    iterations_param = None
    clip_predictions = False

    @classmethod
    def check_params(cls, params):
        check_int(params, "seed", 0, allow_none=True, high=2**64 - 1)
        check_threads(params["n_threads"])

    def check_data(self, train):
        pass  # any non-empty data has a popularity

    def solve(self, core, train, seed):
        counts = np.bincount(train.items, minlength=train.n_items)
        core.user_factors = np.zeros((train.n_users, 1), np.float32)
        core.item_factors = np.zeros((train.n_items, 1), np.float32)
        core.user_bias = np.zeros(train.n_users, np.float32)
        core.item_bias = (counts / train.n_users).astype(np.float32)
        core.global_mean = 0.0

    def fold_in_regularization(self, n_ratings):
        return 1.0  # the factors are zero: every lambda > 0 gives the same ranking
