/*
 * foldin.c - the factors of a new user, by ridge regression against the
 * fixed item factors (see mfrec.h).
 *
 * The normal equations (A^T A + lambda I) z = A^T y of the one new user
 * are solved with dsyrk and dposv in double; rows of A and y are scaled by
 * the square root of their weight (1 for a rating, w for an unrated item).
 * Each unrated item is a row of its own: its target v - mu - b_j is not
 * zero, so the Gram trick of als.c (unobserved targets 0) does not apply,
 * and this runs once per request, not once per row of a half-step.
 * Extreme (finite) ratings can give a user beyond float32: MFR_ERANGE, not
 * infinities.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "blas.h"
#include "internal.h"

/* MFR_OK if the fold-in solution z (k factors, then the bias if the model
 * has biases) and every score it gives, mu + b + b_i + x . Q[i], stay in
 * the float32 range as top-N computes them: |z_f| <= FLT_MAX, and the sum
 * of the terms' magnitudes, grown by the rounding of a k-term float sum
 * (gamma = (k + 4) eps), too, so no partial sum overflows. MFR_ERANGE
 * otherwise: finite ratings whose user cannot be represented. */
static int fold_in_range(const mfr_model *m, const double *z, int32_t d)
{
    const int32_t k = m->k;
    const double b = d > k ? z[k] : 0.0, grow = 1.0 + (k + 4) * (double)FLT_EPSILON;
    for (int32_t f = 0; f < d; f++)
        if (!(fabs(z[f]) <= FLT_MAX))
            return MFR_ERANGE;
    for (int32_t i = 0; i < m->n_items; i++) {
        const float *q = m->Q + (size_t)i * k;
        double bound = fabs(m->global_mean) + fabs(b) +
                       (m->item_bias ? fabs((double)m->item_bias[i]) : 0.0);
        for (int32_t f = 0; f < k; f++)
            bound += fabs(z[f] * q[f]);
        if (!(bound * grow <= FLT_MAX))
            return MFR_ERANGE;
    }
    return MFR_OK;
}

/* z (d) = the minimizer of |A z - y|^2 + lambda |z|^2 over the t rows of A
 * (t x d, row-major): (A^T A + lambda I) z = A^T y by dsyrk, dgemv and the
 * Cholesky solve dposv, in double. G: d x d scratch. */
static int ridge_solve(const double *A, const double *y, int64_t t, int32_t d, double lambda,
                       double *G, double *z)
{
    /* G = A^T A + lambda I (upper triangle, row-major = lower, column-major) */
    MFR_BLAS(cblas_dsyrk)(MfrRowMajor, MfrUpper, MfrTrans, d, (blas_int)t, 1.0, A, d, 0.0, G,
                          d);
    for (int32_t f = 0; f < d; f++)
        G[(size_t)f * d + f] += lambda;
    MFR_BLAS(cblas_dgemv)(MfrRowMajor, MfrTrans, (blas_int)t, d, 1.0, A, d, y, 1, 0.0, z, 1);
    blas_int bn = d, nrhs = 1, info = 0;
    MFR_BLAS(dposv_)("L", &bn, &nrhs, G, &bn, z, &bn, &info, 1);
    return info == 0 ? MFR_OK : info > 0 ? MFR_ENOTPD : MFR_ELAPACK;
}

int mfr_fold_in(const mfr_model *m, int32_t n, const int32_t *items,
                const float *ratings, double lambda, double unrated_weight,
                double unrated_value, float *x, float *b)
{
    const int32_t k = m->k, d = k + (m->user_bias ? 1 : 0);
    const int dense = unrated_weight > 0.0;
    /* rows of A: the rated items, then (dense) every item the user did not rate */
    const int64_t rows = (int64_t)n + (dense ? m->n_items : 0);
    int status = MFR_OK;
    if (n < 1 || k < 1 || !(lambda > 0.0) || !isfinite(lambda) || !(unrated_weight >= 0.0) ||
        !isfinite(unrated_weight) || !isfinite(unrated_value))
        return MFR_EINVAL;
    if (rows > INT32_MAX) /* BLAS's int */
        return MFR_ENOMEM;
    double *A = malloc(sizeof(double) * (size_t)rows * d);
    double *y = malloc(sizeof(double) * (size_t)rows);
    double *G = malloc(sizeof(double) * (size_t)d * d);
    double *z = malloc(sizeof(double) * (size_t)d);
    unsigned char *rated = dense ? calloc((size_t)m->n_items, 1) : NULL;
    if (!A || !y || !G || !z || (dense && !rated)) {
        status = MFR_ENOMEM;
        goto cleanup;
    }
    /* row a = sqrt(c) [q_i, 1], target sqrt(c) (value - mu - b_i): weight c
     * 1 for a rating, w for an unrated item */
    int64_t t = 0;
    for (int64_t r = 0; r < rows; r++) {
        int32_t i;
        double value, c;
        if (r < n) {
            i = items[r];
            if (i < 0 || i >= m->n_items) {
                status = MFR_EINDEX;
                goto cleanup;
            }
            if (!isfinite(ratings[r])) {
                status = MFR_ENONFINITE;
                goto cleanup;
            }
            if (rated)
                rated[i] = 1;
            value = ratings[r];
            c = 1.0;
        } else {
            i = (int32_t)(r - n);
            if (rated[i])
                continue;
            value = unrated_value;
            c = unrated_weight;
        }
        const double s = sqrt(c);
        for (int32_t f = 0; f < k; f++)
            A[(size_t)t * d + f] = s * m->Q[(size_t)i * k + f];
        if (d > k)
            A[(size_t)t * d + k] = s;
        y[t] = s * (value - m->global_mean - (m->item_bias ? m->item_bias[i] : 0.0f));
        t++;
    }
    if ((status = ridge_solve(A, y, t, d, lambda, G, z)) != MFR_OK ||
        (status = fold_in_range(m, z, d)) != MFR_OK)
        goto cleanup;
    for (int32_t f = 0; f < k; f++)
        x[f] = (float)z[f];
    *b = d > k ? (float)z[k] : 0.0f;
cleanup:
    free(A);
    free(y);
    free(G);
    free(z);
    free(rated);
    return status;
}
