"""The context group of Bayesian MF (context="day"; see bayes.py).

A third one-hot group, as a factorization machine has it: the rating's
context c (its day, timestamp // 86400, numbered 0..C-1) brings a row
W_c = (w_c, b_c) with its own Normal-Wishart / Normal-Gamma prior, and

    r ~ N(mu + b_u + b_i + b_c + <U_u, V_i> + <U_u, w_c> + <V_i, w_c>, 1/alpha).

Every conditional stays the kernel's: with the ratings as the CSR's
columns (each side's rows list their ratings' positions), a per-rating
"other" row O_e = (x_e, o_e) gives the regressors (x_e, 1) and the target
r_e - mu - o_e. For a user's rating of item i on day c, O_e = (V_i + w_c,
b_i + b_c + <V_i, w_c>); for an item's, the user's; for a day's, (U_u +
V_i, b_u + b_i + <U_u, V_i>). Building them costs O(nnz k) a sweep.

Fitted model: per kept sample s with the context prior mean m^s =
(m_w, m_b), the time-less prediction (a pair without a day, or a day not
seen in fit) is the one with w_c = m^s: m_b folds into mu, <U_u, m_w> into
the user's bias, <V_i, m_w> into the item's. A known day adds
(b_c - m_b) + <U_u + V_i, w_c - m_w>, stored as context_factors =
[W^1 - m^1 .. W^S - m^S] / sqrt(S) (the factors' stacked form) and
context_bias_samples (days x S).
"""
from __future__ import annotations

import numpy as np

from .. import _core

DAY = 86400


def days_of(timestamps, n, where):
    """The day numbers (int64) of n timestamps (seconds, int or float)."""
    ts = np.asarray(timestamps)
    if ts.dtype.kind not in "iuf" or ts.ndim != 1:
        raise TypeError(f"{where}: timestamps must be a 1-D array of int or float seconds, "
                        f"got dtype {ts.dtype} and {ts.ndim} dimension(s)")
    if len(ts) != n:
        raise ValueError(f"{where}: timestamps must have one entry per rating "
                         f"({len(ts)} != {n})")
    if ts.dtype.kind == "f":
        if not np.all(np.isfinite(ts)):
            raise ValueError(f"{where}: timestamps must be finite (NaN or inf found)")
        if n and np.abs(ts).max() >= 2.0 ** 62:
            raise ValueError(f"{where}: timestamps out of range")
        return np.floor(ts / DAY).astype(np.int64)
    return ts.astype(np.int64) // DAY


def rating_csr(rows, n_rows, ratings):
    """A side's ratings by row, the columns being the ratings' positions."""
    nnz = len(rows)
    return _core.build_csr(rows, np.arange(nnz, dtype=np.int32), ratings, n_rows, nnz)


def row_part(A, B, a, b, n_threads=1):
    """Per rating e: (A_a + B_b, A_a[k] + B_b[k] + <A_a, B_b>) (nnz x d)."""
    return _core.bayes_pair_rows(a, b, A, B, n_threads)


def context_term(U, V, W, users, items, days):
    """b_c + <U_u + V_i, w_c> per rating (U, V, W: rows with the bias last)."""
    k = W.shape[1] - 1
    w = W[days]
    return w[:, k] + np.sum((U[users, :k] + V[items, :k]) * w[:, :k], axis=1)


def fold_samples(kept, k, scale, days):
    """The kept samples (bayes.finish's tuples) with the context prior mean
    m folded into mu and the biases, and the context arrays of the model
    (module docstring)."""
    folded, deltas = [], []
    for s in kept:
        U, V, ub, ib, mu = s[1:6]
        W, m = s[9]
        mw = m[:k].astype(np.float32)
        folded.append((*s[:3], ub + U @ mw, ib + V @ mw, mu + float(m[k]), *s[6:]))
        deltas.append((W - m).astype(np.float32))
    arrays = {"context_days": days,
              "context_factors": np.hstack([w[:, :k] for w in deltas]) * scale,
              "context_bias_samples": np.stack([w[:, k] for w in deltas], axis=1)}
    return folded, arrays


def check_arrays(arrays, S, width):
    """load: the context arrays agree with each other and the samples."""
    days, W, cb = (arrays[n] for n in ("context_days", "context_factors",
                                       "context_bias_samples"))
    return (days.ndim == 1 and days.dtype == np.int64 and np.all(np.diff(days) > 0)
            and W.shape == (len(days), width) and cb.shape == (len(days), S)
            and W.dtype == cb.dtype == np.float32)


def context_delta(model, samples, uidx, iidx, cidx, per_sample):
    """The day's part of each pair's prediction (cidx: -1 for none), the
    posterior mean (n) or per kept sample (n x S); unknown ids add nothing."""
    S = samples["context_bias_samples"].shape[1]
    out = np.zeros((len(uidx), S) if per_sample else len(uidx))
    c = cidx >= 0
    if not c.any():
        return out
    cb = samples["context_bias_samples"][cidx[c]]
    W = samples["context_factors"][cidx[c]]
    f = np.zeros_like(W)
    for index, factors in ((uidx[c], model.user_factors), (iidx[c], model.item_factors)):
        f[index >= 0] += factors[index[index >= 0]]
    if per_sample:
        out[c] = cb + np.einsum("nsk,nsk->ns", f.reshape(len(f), S, -1),
                                W.reshape(len(f), S, -1), dtype=np.float64) * S
    else:
        out[c] = cb.mean(axis=1) + np.einsum("nk,nk->n", f, W, dtype=np.float64)
    return out
