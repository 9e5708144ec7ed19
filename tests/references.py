"""Plain NumPy references of the shared Model's answers (float64), used by
the tests of top-N lists, of properties and of the algorithm contract."""
import numpy as np


def full_scores(model):
    """mu + b_u + b_i + P Q^T for every pair, in float64."""
    S = model.user_factors.astype(np.float64) @ model.item_factors.T.astype(np.float64)
    S += model.global_mean
    if model.user_bias is not None:
        S += model.user_bias[:, None].astype(np.float64) + model.item_bias[None, :]
    return S


def rank(scores, n):
    """Positions of the n best finite scores: higher score first, then lower
    position (the documented tie rule)."""
    order = np.lexsort((np.arange(len(scores)), -scores))
    order = order[np.isfinite(scores[order])]
    return order[:n]


def reference_recommend(model, user, n, exclude_seen=True, items=None, exclude=None, S=None):
    u = np.searchsorted(model.user_ids, user)
    s = (full_scores(model) if S is None else S)[u].copy()
    if exclude_seen:
        s[model.seen_indices[model.seen_indptr[u]:model.seen_indptr[u + 1]]] = -np.inf
    if items is not None:
        keep = np.zeros(len(s), bool)
        keep[np.searchsorted(model.item_ids, items)] = True
        s[~keep] = -np.inf
    if exclude is not None:
        s[np.searchsorted(model.item_ids, exclude)] = -np.inf
    top = rank(s, n)
    return model.item_ids[top], s[top]


def reference_predict(model, u, i, clip):
    """mu + b_u + b_i + P_u . Q_i with unknown ids' terms left out (float64);
    an explicit-rating model without biases predicts its mean training
    rating for a pair with an unknown id."""
    uj = {x: j for j, x in enumerate(model.user_ids.tolist())}
    ij = {x: j for j, x in enumerate(model.item_ids.tolist())}
    P, Q = model.user_factors.astype(float), model.item_factors.astype(float)
    out = np.empty(len(u))
    for t, (a, b) in enumerate(zip(u.tolist(), i.tolist())):
        ju, ji = uj.get(a), ij.get(b)
        r = model.global_mean
        if model.user_bias is not None:
            r += (model.user_bias[ju] if ju is not None else 0) + \
                 (model.item_bias[ji] if ji is not None else 0)
        if ju is not None and ji is not None:
            r += P[ju] @ Q[ji]
        elif model.user_bias is None and model._solver.clip_predictions:
            r = model.rating_mean_
        out[t] = r
    if clip:
        out = np.clip(out, *model.rating_range_)
    return out
