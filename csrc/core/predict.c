/*
 * predict.c - predictions of the shared factor model for (user, item) pairs.
 *   r_hat(u, i) = mu + b_u + b_i + p_u . q_i
 * An index of -1 marks an id unseen in training: its terms are left out,
 * so an unknown user falls back to mu + b_i, an unknown pair to mu.
 */
#include "internal.h"

MFR_TARGET_CLONES
static int predict_range(const mfr_model *m, int64_t begin, int64_t end,
                         const int32_t *users, const int32_t *items, float *out)
{
    const int32_t k = m->k;
    for (int64_t t = begin; t < end; t++) {
        int32_t u = users[t], i = items[t];
        if (u < -1 || u >= m->n_users || i < -1 || i >= m->n_items)
            return MFR_EINDEX;
        double r = m->global_mean;
        if (u >= 0 && m->user_bias)
            r += m->user_bias[u];
        if (i >= 0 && m->item_bias)
            r += m->item_bias[i];
        if (u >= 0 && i >= 0)
            r += mfr_dot(m->P + (int64_t)u * k, m->Q + (int64_t)i * k, k);
        out[t] = (float)r;
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
