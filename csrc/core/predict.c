/*
 * predict.c - predictions of the shared factor model for (user, item) pairs.
 *   r_hat(u, i) = mu + b_u + b_i + p_u . q_i
 * An index of -1 marks an id unseen in training: its terms are left out,
 * so an unknown user falls back to mu + b_i, an unknown pair to mu.
 * mfr_predict_sse sums (float(r_hat) - r)^2 over a CSR of ratings by user:
 * the training RMSE in the CSR's order, which reads each user's row of P
 * once; mfr_pairs_sse sums them over triplets in their order (for a fit
 * that keeps no CSR), prefetching both rows.
 */
#include <stdlib.h>

#include "internal.h"

#define SSE_ROWS 256 /* rows per block of mfr_predict_sse (one partial sum each) */
#define SSE_PAIRS 65536 /* pairs per block of mfr_pairs_sse */
#define SSE_AHEAD 32 /* entries ahead that mfr_predict_sse prefetches item rows */

/* The prediction for known or unknown (-1) u, i: a double sum rounded to
 * float. Inline: it takes the instruction set of the kernel it is in. */
static inline float predict_pair(const mfr_model *m, int32_t u, int32_t i)
{
    double r = m->global_mean;
    if (u >= 0 && m->user_bias)
        r += m->user_bias[u];
    if (i >= 0 && m->item_bias)
        r += m->item_bias[i];
    if (u >= 0 && i >= 0)
        r += mfr_dot(m->P + (int64_t)u * m->k, m->Q + (int64_t)i * m->k, m->k);
    return (float)r;
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

/* The squared errors of rows [lo, hi) of R, summed in double in entry
 * order. The item rows are random reads: each is prefetched SSE_AHEAD
 * entries before its use (in range: R passed mfr_csr_check). */
MFR_TARGET_CLONES
static int sse_rows(const mfr_model *m, const mfr_csr *R, int32_t lo, int32_t hi, double *sse)
{
    const int64_t end = R->indptr[hi];
    double s = 0.0;
    for (int32_t u = lo; u < hi; u++)
        for (int64_t e = R->indptr[u]; e < R->indptr[u + 1]; e++) {
            const int32_t i = R->indices[e];
            if (i < 0 || i >= m->n_items)
                return MFR_EINDEX;
            if (e + SSE_AHEAD < end) {
                const float *next = m->Q + (int64_t)R->indices[e + SSE_AHEAD] * m->k;
                for (int32_t f = 0; f < m->k; f += 16)
                    __builtin_prefetch(next + f, 0, 3);
            }
            const double err = (double)predict_pair(m, u, i) - (double)R->values[e];
            s += err * err;
        }
    *sse = s;
    return MFR_OK;
}

/* The squared errors of the triplets [lo, hi), summed in double in order;
 * both factor rows of a pair are random reads, prefetched SSE_AHEAD
 * pairs ahead. Each index is checked where it is read. */
MFR_TARGET_CLONES
static int sse_pairs(const mfr_model *m, int64_t lo, int64_t hi, const int32_t *users,
                     const int32_t *items, const float *ratings, double *sse)
{
    double s = 0.0;
    for (int64_t t = lo; t < hi; t++) {
        if (t + SSE_AHEAD < hi) {
            const int32_t u = users[t + SSE_AHEAD], i = items[t + SSE_AHEAD];
            if (u >= 0 && u < m->n_users && i >= 0 && i < m->n_items)
                for (int32_t f = 0; f < m->k; f += 16) {
                    __builtin_prefetch(m->P + (int64_t)u * m->k + f, 0, 3);
                    __builtin_prefetch(m->Q + (int64_t)i * m->k + f, 0, 3);
                }
        }
        const int32_t u = users[t], i = items[t];
        if (u < 0 || u >= m->n_users || i < 0 || i >= m->n_items)
            return MFR_EINDEX;
        const double err = (double)predict_pair(m, u, i) - (double)ratings[t];
        s += err * err;
    }
    *sse = s;
    return MFR_OK;
}

/* Blocks [b size, (b + 1) size) of n entries, each summed by one call of
 * sse_rows (rows) or sse_pairs (pairs) into part[b], then the parts in
 * order: a sum that does not depend on the threads. */
static int sse_blocks(const mfr_model *m, const mfr_csr *R, const int32_t *users,
                      const int32_t *items, const float *ratings, int64_t n, int64_t size,
                      int n_threads, double *sse)
{
    const int64_t nb = (n + size - 1) / size;
    double *part = malloc((size_t)MFR_MAX(nb, 1) * sizeof *part);
    int status = MFR_OK;
    if (!part)
        return MFR_ENOMEM;
#pragma omp parallel for schedule(dynamic) num_threads(mfr_threads(n_threads)) if (nb > 1)
    for (int64_t b = 0; b < nb; b++) {
        const int64_t lo = b * size, hi = MFR_MIN(n, lo + size);
        int s = R ? sse_rows(m, R, (int32_t)lo, (int32_t)hi, &part[b])
                  : sse_pairs(m, lo, hi, users, items, ratings, &part[b]);
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

int mfr_pairs_sse(const mfr_model *m, int64_t n, const int32_t *users, const int32_t *items,
                  const float *ratings, int n_threads, double *sse)
{
    if (m->k <= 0 || n < 0)
        return MFR_EINVAL;
    return sse_blocks(m, NULL, users, items, ratings, n, SSE_PAIRS, n_threads, sse);
}

int mfr_predict_sse(const mfr_model *m, const mfr_csr *R, int n_threads, double *sse)
{
    if (m->k <= 0 || R->n_rows != m->n_users || R->n_cols != m->n_items || !R->values)
        return MFR_EINVAL;
    return sse_blocks(m, R, NULL, NULL, NULL, R->n_rows, SSE_ROWS, n_threads, sse);
}
