/*
 * nmf.c - non-negative matrix factorization fitted on the observed ratings.
 *
 * Objective (L2 terms weighted by each row's number of ratings, as in
 * Surprise's NMF), with P, Q >= 0:
 *   L = sum_{(u,i) observed} (r_ui - mu - b_u - b_i - p_u . q_i)^2
 *       + lambda (sum_u |R(u)| |p_u|^2 + sum_i |R(i)| |q_i|^2)
 *       + lambda_b (sum_u b_u^2 + sum_i b_i^2)        (when biases are fitted)
 * The biases (Luo et al.'s biased NMF) are the model's user_bias/item_bias;
 * without them mu = 0 and the target is the rating itself.
 *
 * One epoch is block coordinate descent; no step can increase L:
 *  1. biases (if fitted): b_u = sum_i (r_ui - mu - b_i - p_u.q_i) / (|R(u)| + lambda_b),
 *     then b_i the same way: exact minimizers.
 *  2. P with Q fixed, each row on its own. With t_ui = r_ui - mu - b_u - b_i,
 *     t+ = max(t, 0), t- = max(-t, 0):
 *       p_uf <- p_uf * sum_i t+_ui q_if
 *                    / (sum_i (p_u.q_i + t-_ui) q_if + lambda |R(u)| p_uf)
 *     For t >= 0 (ratings, no biases) this is Lee & Seung's multiplicative
 *     update restricted to the observed entries. In general it minimizes a
 *     separable quadratic that majorizes L in p_u (its curvature
 *     (H p + b-)_f / p_f is at least Lee & Seung's (H p)_f / p_f, with
 *     H = sum_i q_i q_i^T + lambda |R(u)| I, b- = sum_i t-_ui q_i), so L does
 *     not increase and p_u stays >= 0 (the semi-NMF update of Ding, Li and
 *     Jordan). A coordinate whose denominator is 0 has a zero gradient and
 *     is kept; one that falls below FLT_MIN becomes 0 (and stays there).
 *  3. Q with P fixed, the same way over the items.
 * Rows are independent and sums run in a fixed order, so the result does
 * not depend on the thread count.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "internal.h"

#define ROW_BLOCK 256 /* rows per unit of parallel work */

mfr_nmf_params mfr_nmf_default_params(void)
{
    mfr_nmf_params p = {0.1f, 15.0f, 0, 1};
    return p;
}

/* The side of the model a CSR's rows belong to. */
typedef struct {
    const mfr_csr *a;
    float *X;        /* the rows' factors */
    const float *Y;  /* the columns' factors */
    float *xb;       /* the rows' biases, or NULL */
    const float *yb; /* the columns' biases, or NULL */
} side;

static inline double base(const side *s, double mu, int32_t r, int32_t c)
{
    return s->xb ? mu + s->xb[r] + s->yb[c] : mu;
}

/* Step 2 for rows [begin, end); buf: 2 k doubles. */
MFR_TARGET_CLONES
static void factor_rows(const side *s, int32_t k, double mu, double lambda, double *buf,
                        int32_t begin, int32_t end)
{
    double *restrict num = buf, *restrict den = buf + k;
    for (int32_t r = begin; r < end; r++) {
        float *restrict x = s->X + (int64_t)r * k;
        for (int32_t f = 0; f < k; f++)
            num[f] = den[f] = 0.0;
        for (int64_t j = s->a->indptr[r]; j < s->a->indptr[r + 1]; j++) {
            const int32_t c = s->a->indices[j];
            const float *restrict y = s->Y + (int64_t)c * k;
            const double t = (double)s->a->values[j] - base(s, mu, r, c);
            const double tp = t > 0.0 ? t : 0.0;
            const double w = (double)mfr_dot(x, y, k) + (t < 0.0 ? -t : 0.0);
            for (int32_t f = 0; f < k; f++) {
                num[f] += tp * y[f];
                den[f] += w * y[f];
            }
        }
        const double reg = lambda * (double)(s->a->indptr[r + 1] - s->a->indptr[r]);
        for (int32_t f = 0; f < k; f++) {
            const double d = den[f] + reg * x[f];
            if (d > 0.0) {
                const float v = (float)(x[f] * (num[f] / d));
                x[f] = v >= FLT_MIN ? v : 0.0f; /* no subnormals: they slow every product */
            }
        }
    }
}

/* Step 1 for rows [begin, end): the exact minimizer of each row's bias. */
MFR_TARGET_CLONES
static void bias_rows(const side *s, int32_t k, double mu, double lambda_b, int32_t begin,
                      int32_t end)
{
    for (int32_t r = begin; r < end; r++) {
        const float *x = s->X + (int64_t)r * k;
        double sum = 0.0;
        for (int64_t j = s->a->indptr[r]; j < s->a->indptr[r + 1]; j++) {
            const int32_t c = s->a->indices[j];
            sum += (double)s->a->values[j] - mu - s->yb[c] -
                   (double)mfr_dot(x, s->Y + (int64_t)c * k, k);
        }
        const double den = lambda_b + (double)(s->a->indptr[r + 1] - s->a->indptr[r]);
        s->xb[r] = den > 0.0 ? (float)(sum / den) : 0.0f;
    }
}

/* One of the three steps over every row of s, in parallel blocks. */
static int sweep(const side *s, int32_t k, double mu, const mfr_nmf_params *p,
                 int biases_step, int threads)
{
    const int32_t blocks = (s->a->n_rows + ROW_BLOCK - 1) / ROW_BLOCK;
    int status = MFR_OK;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int32_t b = 0; b < blocks; b++) {
        const int32_t begin = b * ROW_BLOCK, end = MFR_MIN(s->a->n_rows, begin + ROW_BLOCK);
        if (biases_step) {
            bias_rows(s, k, mu, p->bias_regularization, begin, end);
            continue;
        }
        double *buf = malloc(2 * (size_t)k * sizeof *buf);
        if (!buf) {
#pragma omp atomic write
            status = MFR_ENOMEM;
            continue;
        }
        factor_rows(s, k, mu, p->regularization, buf, begin, end);
        free(buf);
    }
    return status;
}

/* Terms of L for rows [begin, end) of one side: lambda |R(r)| |x_r|^2, the
 * bias's lambda_b x_r^2, and, with errors, the squared errors of the rows'
 * ratings (counted once: on the users' side). */
MFR_TARGET_CLONES
static double objective_rows(const side *s, int32_t k, double mu, const mfr_nmf_params *p,
                             int errors, int32_t begin, int32_t end)
{
    double total = 0.0;
    for (int32_t r = begin; r < end; r++) {
        const float *x = s->X + (int64_t)r * k;
        for (int64_t j = s->a->indptr[r]; errors && j < s->a->indptr[r + 1]; j++) {
            const int32_t c = s->a->indices[j];
            const double e = (double)s->a->values[j] - base(s, mu, r, c) -
                             (double)mfr_dot(x, s->Y + (int64_t)c * k, k);
            total += e * e;
        }
        double norm = 0.0;
        for (int32_t f = 0; f < k; f++)
            norm += (double)x[f] * x[f];
        total += p->regularization * (double)(s->a->indptr[r + 1] - s->a->indptr[r]) * norm;
        if (p->biases)
            total += p->bias_regularization * (double)s->xb[r] * s->xb[r];
    }
    return total;
}

static int objective(const mfr_model *m, const mfr_nmf_params *p, const side *users,
                     const side *items, int threads, double *out)
{
    const int32_t bu = (m->n_users + ROW_BLOCK - 1) / ROW_BLOCK;
    const int32_t bi = (m->n_items + ROW_BLOCK - 1) / ROW_BLOCK;
    double *partial = malloc(((size_t)bu + bi) * sizeof *partial);
    if (!partial)
        return MFR_ENOMEM;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int32_t b = 0; b < bu + bi; b++) {
        const side *s = b < bu ? users : items;
        const int32_t begin = (b < bu ? b : b - bu) * ROW_BLOCK;
        partial[b] = objective_rows(s, m->k, m->global_mean, p, b < bu, begin,
                                    MFR_MIN(s->a->n_rows, begin + ROW_BLOCK));
    }
    double total = 0.0;
    for (int32_t b = 0; b < bu + bi; b++) /* fixed order */
        total += partial[b];
    free(partial);
    *out = total;
    return MFR_OK;
}

static int check(const mfr_model *m, const mfr_nmf_params *p, const mfr_csr *by_user,
                 const mfr_csr *by_item)
{
    int status;
    if (m->k < 1 || !(p->regularization >= 0.0f) || !isfinite(p->regularization) ||
        !(p->bias_regularization >= 0.0f) || !isfinite(p->bias_regularization) ||
        !isfinite(m->global_mean) || (m->user_bias == NULL) != (m->item_bias == NULL) ||
        (p->biases && !m->user_bias) || !by_user->values ||
        by_user->n_rows != m->n_users || by_user->n_cols != m->n_items)
        return MFR_EINVAL;
    if ((status = mfr_csr_check(by_user)) != MFR_OK ||
        (status = mfr_csr_check(by_item)) != MFR_OK ||
        (status = mfr_csr_check_transpose(by_user, by_item)) != MFR_OK)
        return status;
    /* the multiplicative updates need non-negative, finite factors */
    const int64_t np = (int64_t)m->n_users * m->k, nq = (int64_t)m->n_items * m->k;
    for (int64_t t = 0; t < np; t++)
        if (!(m->P[t] >= 0.0f && m->P[t] <= FLT_MAX))
            return MFR_EINVAL;
    for (int64_t t = 0; t < nq; t++)
        if (!(m->Q[t] >= 0.0f && m->Q[t] <= FLT_MAX))
            return MFR_EINVAL;
    return MFR_OK;
}

static void make_sides(const mfr_model *m, const mfr_csr *by_user, const mfr_csr *by_item,
                       side *users, side *items)
{
    *users = (side){by_user, m->P, m->Q, m->user_bias, m->item_bias};
    *items = (side){by_item, m->Q, m->P, m->item_bias, m->user_bias};
}

int mfr_nmf_objective(const mfr_model *m, const mfr_nmf_params *p, const mfr_csr *by_user,
                      const mfr_csr *by_item, double *out)
{
    int status = check(m, p, by_user, by_item);
    if (status != MFR_OK)
        return status;
    side users, items;
    make_sides(m, by_user, by_item, &users, &items);
    return objective(m, p, &users, &items, mfr_threads(p->n_threads), out);
}

int mfr_nmf_epoch(mfr_model *m, const mfr_nmf_params *p, const mfr_csr *by_user,
                  const mfr_csr *by_item, double *out)
{
    int status = check(m, p, by_user, by_item);
    if (status != MFR_OK)
        return status;
    const int threads = mfr_threads(p->n_threads);
    side users, items;
    make_sides(m, by_user, by_item, &users, &items);
    if (p->biases) {
        sweep(&users, m->k, m->global_mean, p, 1, threads);
        sweep(&items, m->k, m->global_mean, p, 1, threads);
    }
    if ((status = sweep(&users, m->k, m->global_mean, p, 0, threads)) != MFR_OK ||
        (status = sweep(&items, m->k, m->global_mean, p, 0, threads)) != MFR_OK ||
        (status = objective(m, p, &users, &items, threads, out)) != MFR_OK)
        return status;
    return isfinite(*out) ? MFR_OK : MFR_EDIVERGED;
}
