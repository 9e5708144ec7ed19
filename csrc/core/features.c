/*
 * features.c - side features of users or items: checking the weight
 * matrix and forming the effective factors.
 *
 * With features, a row's factor vector is its free vector plus the
 * weighted sum of its features' vectors, and its bias likewise:
 *   q_i^eff = q_i + sum_g Y_ig W_g        b_i^eff = b_i + sum_g Y_ig c_g
 * The fitting kernels learn q, W, b and c; mfr_features_apply writes the
 * effective rows, which the shared model then predicts and ranks with.
 */
#include "internal.h"

int mfr_features_check(const mfr_features *f, int32_t n_rows)
{
    if (f->x.n_rows != n_rows || f->x.n_cols < 1 || !f->x.values || !f->V)
        return MFR_EINVAL;
    return mfr_csr_check(&f->x);
}

MFR_TARGET_CLONES
static void apply_rows(const mfr_features *f, int32_t k, const float *free,
                       const float *free_bias, float *eff, float *eff_bias,
                       int32_t begin, int32_t end)
{
    const mfr_csr *x = &f->x;
    for (int32_t r = begin; r < end; r++) {
        float *restrict out = eff + (int64_t)r * k;
        const float *restrict in = free + (int64_t)r * k;
        for (int32_t c = 0; c < k; c++)
            out[c] = in[c];
        double b = eff_bias ? free_bias[r] : 0.0;
        for (int64_t t = x->indptr[r]; t < x->indptr[r + 1]; t++) {
            const float w = x->values[t];
            const float *restrict v = f->V + (int64_t)x->indices[t] * k;
#pragma omp simd
            for (int32_t c = 0; c < k; c++)
                out[c] += w * v[c];
            if (eff_bias && f->bias)
                b += (double)w * f->bias[x->indices[t]];
        }
        if (eff_bias)
            eff_bias[r] = (float)b;
    }
}

int mfr_features_apply(const mfr_features *f, int32_t k, const float *free,
                       const float *free_bias, float *eff, float *eff_bias,
                       int n_threads)
{
    enum { CHUNK = 512 };
    const int32_t n = f->x.n_rows;
    if (k <= 0 || !free || !eff)
        return MFR_EINVAL;
    int status = mfr_features_check(f, n);
    if (status != MFR_OK)
        return status;
    if (!free_bias)
        eff_bias = NULL;
#pragma omp parallel for schedule(static) num_threads(mfr_threads(n_threads)) \
    if (n > 4 * CHUNK)
    for (int32_t c = 0; c < n; c += CHUNK)
        apply_rows(f, k, free, free_bias, eff, eff_bias, c, MFR_MIN(n, c + CHUNK));
    return MFR_OK;
}
