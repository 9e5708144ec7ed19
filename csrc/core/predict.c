/*
 * predict.c - predictions of the shared factor model for (user, item) pairs.
 *   r_hat(u, i) = mu + b_u + b_i + p_u . q_i
 * An index of -1 marks an id unseen in training: its terms are left out,
 * so an unknown user falls back to mu + b_i, an unknown pair to mu.
 * mfr_predict_sse sums (float(r_hat) - r)^2 over a CSR of ratings by user:
 * the training RMSE in the CSR's order, which reads each user's row of P
 * once.
 */
#include <stdlib.h>

#include "internal.h"

#define SSE_ROWS 256 /* rows per block of mfr_predict_sse (one partial sum each) */
#define SSE_AHEAD 32 /* entries ahead that mfr_predict_sse prefetches item rows */

/* The prediction for known or unknown (-1) u, i whose factors' dot
 * product is dot (unused unless both are known): a double sum rounded to
 * float. */
static inline float predict_with_dot(const mfr_model *m, int32_t u, int32_t i, float dot)
{
    double r = m->global_mean;
    if (u >= 0 && m->user_bias)
        r += m->user_bias[u];
    if (i >= 0 && m->item_bias)
        r += m->item_bias[i];
    if (u >= 0 && i >= 0)
        r += dot;
    return (float)r;
}

/* Inline: it takes the instruction set of the kernel it is in. */
static inline float predict_pair(const mfr_model *m, int32_t u, int32_t i)
{
    const float dot = u >= 0 && i >= 0 ? mfr_dot(m->P + (int64_t)u * m->k,
                                                 m->Q + (int64_t)i * m->k, m->k)
                                       : 0.0f;
    return predict_with_dot(m, u, i, dot);
}

MFR_TARGET_CLONES
static int predict_range(const mfr_model *m, int64_t begin, int64_t end,
                         const int32_t *users, const int32_t *items, float *out)
{
    for (int64_t t = begin; t < end; t++) {
        int32_t u = users[t], i = items[t];
        if (u < -1 || u >= m->n_users || i < -1 || i >= m->n_items)
            return MFR_EINDEX;
        out[t] = predict_pair(m, u, i);
    }
    return MFR_OK;
}

int mfr_predict(const mfr_model *m, int64_t n, const int32_t *users,
                const int32_t *items, float *out, int n_threads)
{
    const int64_t chunk = 4096;
    int status = MFR_OK;
    if (n < 0 || m->k <= 0)
        return MFR_EINVAL;
#pragma omp parallel for schedule(static) num_threads(mfr_threads(n_threads)) \
    if (n > 4 * chunk)
    for (int64_t c = 0; c < n; c += chunk) {
        int s = predict_range(m, c, MFR_MIN(n, c + chunk), users, items, out);
        if (s != MFR_OK) {
#pragma omp atomic write
            status = s;
        }
    }
    return status;
}

/* Prefetch the item row of entry e of R if e < end. */
static inline void prefetch_item(const mfr_model *m, const mfr_csr *R, int64_t e, int64_t end)
{
    if (e < end) {
        const float *row = m->Q + (int64_t)R->indices[e] * m->k;
        for (int32_t f = 0; f < m->k; f += 16)
            __builtin_prefetch(row + f, 0, 3);
    }
}

/* The squared errors of rows [lo, hi) of R, summed in double in entry
 * order. A user's entries go four at a time (mfr_dot4), the rest one by
 * one. The item rows are random reads: each is prefetched SSE_AHEAD
 * entries before its use. */
MFR_TARGET_CLONES
static int sse_rows(const mfr_model *m, const mfr_csr *R, int32_t lo, int32_t hi, double *sse)
{
    const int64_t end = R->indptr[hi];
    double s = 0.0;
    for (int32_t u = lo; u < hi; u++) {
        const float *pu = m->P + (int64_t)u * m->k;
        const int64_t row_end = R->indptr[u + 1];
        for (int64_t e = R->indptr[u]; e < row_end;) {
            const int c = row_end - e >= 4 ? 4 : 1;
            const float *q[4];
            float dot[4];
            for (int j = 0; j < c; j++) {
                const int32_t i = R->indices[e + j];
                if (i < 0 || i >= m->n_items)
                    return MFR_EINDEX;
                q[j] = m->Q + (int64_t)i * m->k;
                prefetch_item(m, R, e + j + SSE_AHEAD, end);
            }
            if (c == 4)
                mfr_dot4(pu, q, m->k, dot);
            else
                dot[0] = mfr_dot(pu, q[0], m->k);
            for (int j = 0; j < c; j++, e++) {
                const float pred = predict_with_dot(m, u, R->indices[e], dot[j]);
                const double err = (double)pred - (double)R->values[e];
                s += err * err;
            }
        }
    }
    *sse = s;
    return MFR_OK;
}

int mfr_predict_sse(const mfr_model *m, const mfr_csr *R, int n_threads, double *sse)
{
    if (m->k <= 0 || R->n_rows != m->n_users || R->n_cols != m->n_items || !R->values)
        return MFR_EINVAL;
    /* blocks of SSE_ROWS rows, each summed into part[b], then the parts in
     * order: a sum that does not depend on the threads */
    const int64_t nb = (R->n_rows + SSE_ROWS - 1) / SSE_ROWS;
    double *part = malloc((size_t)MFR_MAX(nb, 1) * sizeof *part);
    int status = MFR_OK;
    if (!part)
        return MFR_ENOMEM;
#pragma omp parallel for schedule(dynamic) num_threads(mfr_threads(n_threads)) if (nb > 1)
    for (int64_t b = 0; b < nb; b++) {
        const int32_t lo = (int32_t)(b * SSE_ROWS);
        int s = sse_rows(m, R, lo, (int32_t)MFR_MIN(R->n_rows, lo + (int64_t)SSE_ROWS),
                         &part[b]);
        if (s != MFR_OK) {
#pragma omp atomic write
            status = s;
        }
    }
    double total = 0.0;
    for (int64_t b = 0; b < nb; b++) /* in block order: independent of the threads */
        total += part[b];
    free(part);
    *sse = total;
    return status;
}
