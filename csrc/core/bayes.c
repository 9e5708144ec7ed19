/*
 * bayes.c - Bayesian matrix factorization by Gibbs sampling.
 *
 * Model (Salakhutdinov & Mnih 2008, with biases and relation blocks as in
 * Rendle's "Scaling factorization machines to relational data"):
 *
 *   r_ui ~ N(mu + <U_u, (V_i, 1)> + V_i[k], 1/alpha),
 *
 * where a side's effective row (d = k + 1 columns: k factors, then the
 * bias) is its free row plus a weighted sum of feature rows,
 *
 *   U_u = (p_u, b_u) + sum_a X_ua Y_a        (X: side features, e.g. the
 *                                             user's rated items / sqrt(n_u))
 *
 * and every group of rows (free rows of a side, each group of features)
 * has the prior N(m_g, Lambda_g^-1) whose (m_g, Lambda_g) are drawn each
 * sweep: Normal-Wishart for the k factor columns, Normal-Gamma for the bias.
 *
 * Free row r | rest (mfr_bayes_rows): with x_i = (V_i[0..k), 1) and the
 * target t_ri = r - mu - V_i[k] - <U_r - free_r, x_i>,
 *   precision  A = Lambda + alpha sum_i x_i x_i^T
 *   mean       A^-1 (Lambda m + alpha sum_i x_i t_ri),
 * drawn as L^-T (L^-1 h + z) with A = L L^T, z ~ N(0, I).
 *
 * Feature row a | rest (mfr_bayes_features): with G_r = sum_i x_i x_i^T
 * and s_r = sum_i x_i e_ri (e: residuals), cached per row before the
 * features are drawn,
 *   precision  Lambda_g + alpha sum_r X_ra^2 G_r
 *   linear     Lambda_g m_g + alpha sum_r X_ra (s_r + X_ra G_r Y_a),
 * and after the draw s_r -= X_ra G_r (Y_a' - Y_a), U_r += X_ra (Y_a' - Y_a)
 * for the rows r that have feature a. Cost O(nnz d^2 + n_features d^3)
 * for a sweep of the features: the rows' work is shared by their features.
 *
 * Randomness: rows in blocks of MFR_RNG_BLOCK, one stream per block, so a
 * seed gives the same draws at any thread count; features are drawn in
 * order from one stream (exact Gibbs needs them sequential).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- small dense linear algebra (row-major d x d, double) ------------- */

/* A = L L^T in place (lower triangle); MFR_ENOTPD if A is not PD. */
static int chol(double *A, int32_t d)
{
    for (int32_t j = 0; j < d; j++) {
        double s = A[j * d + j];
        for (int32_t p = 0; p < j; p++)
            s -= A[j * d + p] * A[j * d + p];
        if (!(s > 0.0) || !isfinite(s))
            return MFR_ENOTPD;
        double l = sqrt(s);
        A[j * d + j] = l;
        for (int32_t i = j + 1; i < d; i++) {
            double t = A[i * d + j];
            for (int32_t p = 0; p < j; p++)
                t -= A[i * d + p] * A[j * d + p];
            A[i * d + j] = t / l;
        }
    }
    return MFR_OK;
}

/* b <- L^-1 b */
static void solve_lower(const double *L, int32_t d, double *b)
{
    for (int32_t i = 0; i < d; i++) {
        double s = b[i];
        for (int32_t p = 0; p < i; p++)
            s -= L[i * d + p] * b[p];
        b[i] = s / L[i * d + i];
    }
}

/* b <- L^-T b */
static void solve_upper(const double *L, int32_t d, double *b)
{
    for (int32_t i = d - 1; i >= 0; i--) {
        double s = b[i];
        for (int32_t p = i + 1; p < d; p++)
            s -= L[p * d + i] * b[p];
        b[i] = s / L[i * d + i];
    }
}

/* x ~ N(A^-1 h, A^-1): A (overwritten by its factor), h (overwritten). */
static int draw_gaussian(double *A, double *h, int32_t d, mfr_rng *rng, double *x)
{
    int status = chol(A, d);
    if (status != MFR_OK)
        return status;
    solve_lower(A, d, h);
    for (int32_t j = 0; j < d; j++)
        x[j] = h[j] + mfr_rng_normal(rng);
    solve_upper(A, d, x);
    return MFR_OK;
}

/* Gamma(shape, 1) (Marsaglia & Tsang; shape < 1 by the u^(1/shape) boost). */
double mfr_rng_gamma(mfr_rng *rng, double shape)
{
    if (shape < 1.0) {
        double u = ((double)(mfr_rng_next(rng) >> 11) + 1.0) * 0x1.0p-53;
        return mfr_rng_gamma(rng, shape + 1.0) * pow(u, 1.0 / shape);
    }
    double dd = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * dd);
    for (;;) {
        double z = mfr_rng_normal(rng), v = 1.0 + c * z;
        if (v <= 0.0)
            continue;
        v = v * v * v;
        double u = ((double)(mfr_rng_next(rng) >> 11) + 1.0) * 0x1.0p-53;
        if (log(u) < 0.5 * z * z + dd - dd * v + dd * log(v))
            return dd * v;
    }
}

static inline double dot(const double *a, const double *b, int32_t n)
{
    double s = 0.0;
    for (int32_t f = 0; f < n; f++)
        s += a[f] * b[f];
    return s;
}

/* prior part of a row's system: A = Lambda, h = Lambda m */
static void prior_system(const double *prec, const double *mean, int32_t d, double *A,
                         double *h)
{
    memcpy(A, prec, sizeof(double) * (size_t)d * d);
    for (int32_t i = 0; i < d; i++)
        h[i] = dot(prec + (int64_t)i * d, mean, d);
}

/* ---- free rows ---------------------------------------------------------- */

/* Per-thread work space: a row's system and its ratings' features x_e,
 * stored by column (XT: d x cap) so that the Gram's entries are dot
 * products of contiguous vectors. */
typedef struct {
    double *A, *h, *x, *G, *b, *zero, *XT, *t;
    int64_t cap;
} scratch;

static int scratch_init(scratch *w, int32_t d, int64_t cap)
{
    w->cap = cap;
    w->A = calloc((size_t)d * (2 * d + 4) + (size_t)(d + 1) * (cap + 1), sizeof(double));
    if (!w->A)
        return MFR_ENOMEM;
    w->h = w->A + (int64_t)d * d;
    w->x = w->h + d;
    w->G = w->x + d;
    w->b = w->G + (int64_t)d * d;
    w->zero = w->b + d;
    w->XT = w->zero + d;
    w->t = w->XT + (int64_t)d * (cap + 1);
    return MFR_OK;
}

static int64_t longest_row(const mfr_csr *R)
{
    int64_t m = 0;
    for (int32_t r = 0; r < R->n_rows; r++)
        m = MFR_MAX(m, R->indptr[r + 1] - R->indptr[r]);
    return m;
}

/* Row r's features by column into w->XT (x_e = (V_i[0..k), 1)) and its
 * targets r_e - mu - V_i[k] - <part, x_e> into w->t; returns the count. */
static int64_t gather_row(const mfr_bayes_side *s, const double *other, int32_t r,
                          const double *part, scratch *w)
{
    const int32_t d = s->d, k = d - 1;
    const int64_t lo = s->R.indptr[r], n = s->R.indptr[r + 1] - lo, ld = w->cap + 1;
    for (int64_t e = 0; e < n; e++) {
        const double *v = other + (int64_t)s->R.indices[lo + e] * d;
        double t = s->R.values[lo + e] - s->mu - v[k] - part[k];
        for (int32_t f = 0; f < k; f++) {
            w->XT[f * ld + e] = v[f];
            t -= part[f] * v[f];
        }
        w->XT[k * ld + e] = 1.0;
        w->t[e] = t;
    }
    return n;
}

/* A += scale sum_e x_e x_e^T and h += scale sum_e x_e t_e over n gathered. */
static void add_gram(const scratch *w, int64_t n, int32_t d, double scale, double *A, double *h)
{
    const int64_t ld = w->cap + 1;
    for (int32_t i = 0; i < d; i++) {
        const double *xi = w->XT + i * ld;
        for (int32_t j = 0; j <= i; j++) {
            const double *xj = w->XT + j * ld;
            double g = 0.0;
#pragma omp simd reduction(+ : g)
            for (int64_t e = 0; e < n; e++)
                g += xi[e] * xj[e];
            A[i * d + j] += scale * g;
            if (j < i)
                A[j * d + i] += scale * g;
        }
        double b = 0.0;
#pragma omp simd reduction(+ : b)
        for (int64_t e = 0; e < n; e++)
            b += xi[e] * w->t[e];
        h[i] += scale * b;
    }
}

/* G = sum_e x_e x_e^T and b = sum_e x_e (r_e - mu - V_i[k]) of row r. */
static void row_gram(const mfr_bayes_side *s, const double *other, int32_t r, scratch *w,
                     double *G, double *b)
{
    const int32_t d = s->d;
    memset(G, 0, sizeof(double) * (size_t)d * d);
    memset(b, 0, sizeof(double) * (size_t)d);
    add_gram(w, gather_row(s, other, r, w->zero, w), d, 1.0, G, b);
}

/* Draw one free row r (see the header comment); eff moves with it. The
 * row's G and b are kept in s->gram / s->gram_rhs when given: the feature
 * draws of the same side reuse them. */
static int draw_row(const mfr_bayes_side *s, const double *other, int32_t r, mfr_rng *rng,
                    scratch *w)
{
    const int32_t d = s->d;
    double *fr = s->free + (int64_t)r * d, *ef = s->eff + (int64_t)r * d;
    double *G = s->gram ? s->gram + (int64_t)r * d * d : w->G;
    double *b = s->gram_rhs ? s->gram_rhs + (int64_t)r * d : w->b;
    row_gram(s, other, r, w, G, b);
    prior_system(s->prior_prec, s->prior_mean, d, w->A, w->h);
    for (int32_t f = 0; f < d; f++) /* the features' part of the row */
        w->x[f] = ef[f] - fr[f];
    for (int32_t i = 0; i < d; i++) {
        w->h[i] += s->alpha * (b[i] - dot(G + (int64_t)i * d, w->x, d));
        for (int32_t j = 0; j < d; j++)
            w->A[i * d + j] += s->alpha * G[i * d + j];
    }
    int status = draw_gaussian(w->A, w->h, d, rng, w->x);
    if (status != MFR_OK)
        return status;
    for (int32_t f = 0; f < d; f++) {
        ef[f] += w->x[f] - fr[f];
        fr[f] = w->x[f];
    }
    return MFR_OK;
}

static int check_side(const mfr_bayes_side *s, int32_t n_other)
{
    if (s->d < 2 || !s->R.values || s->R.n_cols != n_other || !isfinite(s->alpha) ||
        !(s->alpha > 0.0) || !isfinite(s->mu))
        return MFR_EINVAL;
    return mfr_csr_check(&s->R);
}

int mfr_bayes_rows(const mfr_bayes_side *s, const double *other, int32_t n_other,
                   uint64_t seed, uint64_t stream, int n_threads)
{
    int status = check_side(s, n_other);
    if (status != MFR_OK)
        return status;
    const int32_t d = s->d, n = s->R.n_rows;
    const int64_t n_blocks = (n + MFR_RNG_BLOCK - 1) / MFR_RNG_BLOCK, cap = longest_row(&s->R);
    int failed = MFR_OK;
#pragma omp parallel num_threads(mfr_threads(n_threads))
    {
        scratch w;
        if (scratch_init(&w, d, cap) != MFR_OK) {
#pragma omp atomic write
            failed = MFR_ENOMEM;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t b = 0; b < n_blocks; b++) {
            if (!w.A || failed != MFR_OK)
                continue;
            mfr_rng rng;
            mfr_rng_seed(&rng, seed, (stream << 32) + (uint64_t)b);
            int32_t end = (int32_t)MFR_MIN((int64_t)n, (b + 1) * MFR_RNG_BLOCK);
            for (int32_t r = (int32_t)(b * MFR_RNG_BLOCK); r < end; r++) {
                int st = draw_row(s, other, r, &rng, &w);
                if (st != MFR_OK) {
#pragma omp atomic write
                    failed = st;
                    break;
                }
            }
        }
        free(w.A);
    }
    return failed;
}

/* ---- feature rows ------------------------------------------------------- */

/* Draw feature a; updates the cached s_r and eff rows of its rows. The
 * linear term's sum_r X_ra^2 G_r Y_a is the data part of the precision
 * times Y_a, formed once. */
static int draw_feature(const mfr_bayes_side *s, const mfr_bayes_group *f, int32_t a,
                        const double *G, double *S, mfr_rng *rng, double *A, double *h,
                        double *x, double *delta)
{
    const int32_t d = s->d;
    const double *prec = f->prior_prec + (int64_t)f->group[a] * d * d;
    double *y = f->Y + (int64_t)a * d;
    memset(A, 0, sizeof(double) * (size_t)d * d);
    memset(h, 0, sizeof(double) * (size_t)d);
    for (int64_t e = f->XT.indptr[a]; e < f->XT.indptr[a + 1]; e++) {
        const int32_t r = f->XT.indices[e];
        const double w = f->XT.values[e], ww = w * w;
        const double *Gr = G + (int64_t)r * d * d, *sr = S + (int64_t)r * d;
        for (int32_t i = 0; i < d; i++)
            h[i] += w * sr[i];
#pragma omp simd
        for (int32_t i = 0; i < d * d; i++)
            A[i] += ww * Gr[i];
    }
    for (int32_t i = 0; i < d; i++) { /* alpha (data part); then the prior */
        h[i] = s->alpha * (h[i] + dot(A + (int64_t)i * d, y, d)) +
               dot(prec + (int64_t)i * d, f->prior_mean + (int64_t)f->group[a] * d, d);
        for (int32_t j = 0; j < d; j++)
            A[i * d + j] = s->alpha * A[i * d + j] + prec[i * d + j];
    }
    int status = draw_gaussian(A, h, d, rng, x);
    if (status != MFR_OK)
        return status;
    for (int32_t j = 0; j < d; j++) {
        delta[j] = x[j] - y[j];
        y[j] = x[j];
    }
    for (int64_t e = f->XT.indptr[a]; e < f->XT.indptr[a + 1]; e++) {
        const int32_t r = f->XT.indices[e];
        const double w = f->XT.values[e];
        const double *Gr = G + (int64_t)r * d * d;
        double *sr = S + (int64_t)r * d, *ef = s->eff + (int64_t)r * d;
        for (int32_t j = 0; j < d; j++) { /* s_r -= w G_r delta, by G's (symmetric) rows */
            const double c = w * delta[j];
            const double *g = Gr + (int64_t)j * d;
#pragma omp simd
            for (int32_t i = 0; i < d; i++)
                sr[i] -= c * g[i];
            ef[j] += c;
        }
    }
    return MFR_OK;
}

int mfr_bayes_features(const mfr_bayes_side *s, const mfr_bayes_group *f,
                       const double *other, int32_t n_other, uint64_t seed, uint64_t stream,
                       int n_threads)
{
    int status = check_side(s, n_other);
    if (status != MFR_OK)
        return status;
    if (f->XT.n_cols != s->R.n_rows || f->n_groups < 1 || !f->XT.values)
        return MFR_EINVAL;
    if ((status = mfr_csr_check(&f->XT)) != MFR_OK)
        return status;
    for (int32_t a = 0; a < f->XT.n_rows; a++)
        if (f->group[a] < 0 || f->group[a] >= f->n_groups)
            return MFR_EINDEX;
    const int32_t d = s->d, n = s->R.n_rows;
    const int given = s->gram && s->gram_rhs;
    double *G = given ? s->gram : malloc(sizeof(double) * (size_t)n * d * d + 1);
    double *B = given ? s->gram_rhs : malloc(sizeof(double) * (size_t)n * d + 1);
    double *S = malloc(sizeof(double) * (size_t)n * d + 1);
    double *work = malloc(sizeof(double) * (size_t)d * (d + 3));
    if (!G || !B || !S || !work) {
        status = MFR_ENOMEM;
        goto cleanup;
    }
    const int64_t cap = longest_row(&s->R);
#pragma omp parallel num_threads(mfr_threads(n_threads))
    {
        scratch w = {0};
        if (!given && scratch_init(&w, d, cap) != MFR_OK) {
#pragma omp atomic write
            status = MFR_ENOMEM;
        }
#pragma omp for schedule(dynamic, 64)
        for (int32_t r = 0; r < n; r++) { /* s_r = b_r - G_r eff_r: the residuals' part */
            double *Gr = G + (int64_t)r * d * d, *br = B + (int64_t)r * d;
            if (!given && w.A)
                row_gram(s, other, r, &w, Gr, br);
            for (int32_t i = 0; i < d; i++)
                S[(int64_t)r * d + i] = br[i] - dot(Gr + (int64_t)i * d, s->eff + (int64_t)r * d, d);
        }
        free(w.A);
    }
    if (status != MFR_OK)
        goto cleanup;
    mfr_rng rng;
    mfr_rng_seed(&rng, seed, stream << 32);
    for (int32_t a = 0; a < f->XT.n_rows && status == MFR_OK; a++)
        status = draw_feature(s, f, a, G, S, &rng, work, work + (int64_t)d * d,
                              work + (int64_t)d * (d + 1), work + (int64_t)d * (d + 2));
cleanup:
    if (!given) {
        free(G);
        free(B);
    }
    free(S);
    free(work);
    return status;
}

/* ---- hyperpriors, noise and predictions -------------------------------- */

/* Lambda ~ Wishart(M^-1, nu) for M = C C^T (C overwritten in place):
 * Bartlett's A A^T ~ Wishart(I, nu), and C^-T A A^T C^-1 has scale M^-1. */
static int draw_wishart(double *M, int32_t k, double nu, mfr_rng *rng, double *B, double *col,
                        double *prec, int32_t ld)
{
    int status = chol(M, k);
    if (status != MFR_OK)
        return status;
    memset(B, 0, sizeof(double) * (size_t)k * k);
    for (int32_t i = 0; i < k; i++) {
        B[i * k + i] = sqrt(2.0 * mfr_rng_gamma(rng, 0.5 * (nu - i)));
        for (int32_t j = 0; j < i; j++)
            B[i * k + j] = mfr_rng_normal(rng);
    }
    for (int32_t j = 0; j < k; j++) { /* column j of C^-T A */
        for (int32_t i = 0; i < k; i++)
            col[i] = B[i * k + j];
        solve_upper(M, k, col);
        for (int32_t i = 0; i < k; i++)
            B[i * k + j] = col[i];
    }
    for (int32_t i = 0; i < k; i++)
        for (int32_t j = 0; j < k; j++)
            prec[i * ld + j] = dot(B + (int64_t)i * k, B + (int64_t)j * k, k);
    return MFR_OK;
}

/* Normal-Wishart over columns [0, k): prior m0 = 0, beta0 = 1, nu0 = k,
 * W0 = I. x̄ and the scatter S about it give beta = 1 + n, nu = k + n,
 * m = n x̄ / beta, W^-1 = I + S + n x̄ x̄^T / beta; Lambda ~ W(W, nu),
 * mean ~ N(m, (beta Lambda)^-1). */
static int draw_normal_wishart(const double *rows, int64_t n, int32_t d, int32_t k,
                               mfr_rng *rng, double *mean, double *prec, double *work)
{
    double *xbar = work, *M = work + k, *B = M + (int64_t)k * k, *col = B + (int64_t)k * k;
    memset(xbar, 0, sizeof(double) * (size_t)k);
    for (int64_t r = 0; r < n; r++)
        for (int32_t f = 0; f < k; f++)
            xbar[f] += rows[r * d + f];
    for (int32_t f = 0; f < k; f++)
        xbar[f] /= n > 0 ? (double)n : 1.0;
    double beta = 1.0 + (double)n;
    for (int32_t i = 0; i < k; i++)
        for (int32_t j = 0; j < k; j++)
            M[i * k + j] = (i == j) + (double)n * xbar[i] * xbar[j] / beta;
    for (int64_t r = 0; r < n; r++)
        for (int32_t i = 0; i < k; i++) {
            double ci = rows[r * d + i] - xbar[i];
            for (int32_t j = 0; j < k; j++)
                M[i * k + j] += ci * (rows[r * d + j] - xbar[j]);
        }
    int status = draw_wishart(M, k, (double)k + (double)n, rng, B, col, prec, d);
    if (status != MFR_OK)
        return status;
    for (int32_t i = 0; i < k; i++) /* chol of beta Lambda, into M */
        for (int32_t j = 0; j < k; j++)
            M[i * k + j] = beta * prec[i * d + j];
    if ((status = chol(M, k)) != MFR_OK)
        return status;
    for (int32_t f = 0; f < k; f++)
        col[f] = mfr_rng_normal(rng);
    solve_upper(M, k, col);
    for (int32_t f = 0; f < k; f++)
        mean[f] = (double)n * xbar[f] / beta + col[f];
    return MFR_OK;
}

/* Normal-Gamma for one column c: lambda ~ Gamma(1 + n/2, rate 1 + SS/2 +
 * n x̄^2 / (2 beta)), mean ~ N(n x̄ / beta, 1 / (beta lambda)), beta = 1 + n. */
static void draw_normal_gamma(const double *rows, int64_t n, int32_t d, int32_t c,
                              mfr_rng *rng, double *mean, double *prec)
{
    double xbar = 0.0, ss = 0.0, beta = 1.0 + (double)n;
    for (int64_t r = 0; r < n; r++)
        xbar += rows[r * d + c];
    xbar /= n > 0 ? (double)n : 1.0;
    for (int64_t r = 0; r < n; r++)
        ss += (rows[r * d + c] - xbar) * (rows[r * d + c] - xbar);
    double rate = 1.0 + 0.5 * ss + 0.5 * (double)n * xbar * xbar / beta;
    double lambda = mfr_rng_gamma(rng, 1.0 + 0.5 * (double)n) / rate;
    prec[c * d + c] = lambda;
    mean[c] = (double)n * xbar / beta + mfr_rng_normal(rng) / sqrt(beta * lambda);
}

int mfr_bayes_hyper(const double *rows, int64_t n, int32_t d, int32_t k, uint64_t seed,
                    uint64_t stream, double *mean, double *prec)
{
    if (n < 0 || d < 1 || k < 0 || k > d)
        return MFR_EINVAL;
    for (int64_t e = 0; e < n * d; e++)
        if (!isfinite(rows[e]))
            return MFR_ENONFINITE;
    mfr_rng rng;
    mfr_rng_seed(&rng, seed, stream << 32);
    memset(prec, 0, sizeof(double) * (size_t)d * d);
    int status = MFR_OK;
    if (k > 0) {
        double *work = malloc(sizeof(double) * (size_t)k * (3 * k + 2));
        if (!work)
            return MFR_ENOMEM;
        status = draw_normal_wishart(rows, n, d, k, &rng, mean, prec, work);
        free(work);
    }
    for (int32_t c = k; c < d && status == MFR_OK; c++)
        draw_normal_gamma(rows, n, d, c, &rng, mean, prec);
    return status;
}

int mfr_bayes_noise(int64_t n, double sum_e, double sum_e2, double *mu, double *alpha,
                    uint64_t seed, uint64_t stream)
{
    if (n < 1 || !isfinite(sum_e) || !isfinite(sum_e2) || !isfinite(*mu) ||
        !(*alpha > 0.0) || !isfinite(*alpha))
        return MFR_EINVAL;
    mfr_rng rng;
    mfr_rng_seed(&rng, seed, stream << 32);
    /* mu | rest, flat prior: N(mu + mean residual, 1 / (alpha n)) */
    double shift = sum_e / (double)n + mfr_rng_normal(&rng) / sqrt(*alpha * (double)n);
    double sse = sum_e2 - 2.0 * shift * sum_e + (double)n * shift * shift;
    *mu += shift;
    /* alpha | rest: Gamma(1 + n/2, rate 1 + SSE/2) */
    *alpha = mfr_rng_gamma(&rng, 1.0 + 0.5 * (double)n) / (1.0 + 0.5 * MFR_MAX(sse, 0.0));
    return isfinite(*mu) && isfinite(*alpha) && *alpha > 0.0 ? MFR_OK : MFR_EDIVERGED;
}

int mfr_bayes_predict(int64_t n, const int32_t *users, const int32_t *items, const double *U,
                      const double *V, int32_t d, double mu, double *out, int n_threads)
{
    const int32_t k = d - 1;
#pragma omp parallel for schedule(static) num_threads(mfr_threads(n_threads))
    for (int64_t e = 0; e < n; e++) {
        const double *u = U + (int64_t)users[e] * d, *v = V + (int64_t)items[e] * d;
        out[e] = mu + u[k] + v[k] + dot(u, v, k);
    }
    return MFR_OK;
}

int mfr_bayes_pair_rows(int64_t n, const int32_t *a, const int32_t *b, const double *A,
                        const double *B, int32_t d, double *out, int n_threads)
{
    const int32_t k = d - 1;
#pragma omp parallel for schedule(static) num_threads(mfr_threads(n_threads))
    for (int64_t e = 0; e < n; e++) {
        const double *x = A + (int64_t)a[e] * d, *y = B + (int64_t)b[e] * d;
        double *o = out + e * d;
        for (int32_t f = 0; f < d; f++)
            o[f] = x[f] + y[f];
        o[k] += dot(x, y, k);
    }
    return MFR_OK;
}
