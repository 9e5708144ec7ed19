/*
 * als.c - one weighted-least-squares half-step, the kernel of explicit ALS,
 * weighted MF (unobserved weight w0) and implicit-feedback ALS.
 *
 * With the other side's factors Y (one row y_j per column j) fixed, every
 * row x of X gets the minimizer of
 *   f(x) = sum_obs c_j (t_j - x.y_j)^2 + w0 sum_unobs (x.y_j)^2 + lambda_i |x|^2
 * over the stored entries (j, v_j) of the row, where
 *   c_j = rw_i cw_j (1 + alpha v_j)        (confidence; weights default 1)
 *   t_j = p_j - offset - o_j,  p_j = v_j, or 1[v_j > 0] when binary
 *   lambda_i = lambda, times the row's count with scale_regularization.
 * Setting the gradient to zero gives the normal equations
 *   (w0 G + sum_obs (c_j - w0) y_j y_j^T + lambda_i I) x = sum_obs c_j t_j y_j
 * with G = Y^T Y = sum over all j of y_j y_j^T, computed once per half-step
 * (ssyrk over fixed blocks of rows), so the unobserved entries cost d^2 per
 * row instead of n d. Explicit ALS is w0 = 0, alpha = 0; weighted MF is
 * alpha = 0, w0 > 0; Hu-Koren-Volinsky implicit ALS is w0 = 1, binary.
 *
 * Biases: with x_bias and y_bias given, the unknowns are (x, b_x) and the
 * features (y_j, 1) (a constant-1 column fixed on the other side), and the
 * other side's bias is moved into the target: o_j = y_bias[j]. Only for
 * w0 = 0, where the unobserved entries carry no weight.
 *
 * Solvers: Cholesky of the d x d system (ssyrk over gathered rows scaled
 * by sqrt|c_j - w0|, then a small-d Cholesky on padded SIMD rows), or a
 * few conjugate-gradient steps warm-started from the current x, applying
 * the matrix as w0 G v + lambda_i v + sum_obs (c_j - w0)(y_j.v) y_j
 * without forming it.
 *
 * The objective is reported exactly, unobserved term included:
 *   sum_unobs (x.y_j)^2 = x^T G x - sum_obs (x.y_j)^2.
 * Rows are independent and the Gram and loss sums run over fixed blocks in
 * a fixed order, so the result does not depend on the thread count.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "blas.h"

#define GRAM_BLOCK 8192 /* rows of Y per partial Gram matrix */
#define ROW_BLOCK 32    /* rows per unit of parallel work (and loss sum) */
#define OBS_CHUNK 128   /* observations gathered per ssyrk update */

mfr_als_params mfr_als_default_params(void)
{
    mfr_als_params p = {0.1f, 0, 0.0f, 0.0f, 0, MFR_ALS_CHOLESKY, 3, 1, 1};
    return p;
}

/* Everything a row's solve reads. Y and X are (possibly augmented) n x d. */
typedef struct {
    const mfr_csr *R;
    int32_t d;
    const float *Y; /* n_cols x d */
    float *X;       /* n_rows x d */
    const float *G; /* d x d, full symmetric; NULL when w0 == 0 */
    const float *rw, *cw, *ob;
    float offset, alpha, w0, lambda;
    int scale, binary;
} ctx;

/* Per-thread scratch. */
typedef struct {
    float *A, *b, *r, *p, *Ap, *zpos, *zneg;
} scratch;

static inline float conf_of(const ctx *h, int32_t i, int32_t j, float v)
{
    float c = 1.0f + h->alpha * v;
    if (h->rw)
        c *= h->rw[i];
    if (h->cw)
        c *= h->cw[j];
    return c;
}

static inline float target_of(const ctx *h, int32_t j, float v)
{
    float t = h->binary ? (v > 0.0f ? 1.0f : 0.0f) : v;
    return t - h->offset - (h->ob ? h->ob[j] : 0.0f);
}

static inline float value_of(const mfr_csr *R, int64_t e)
{
    return R->values ? R->values[e] : 1.0f;
}

static inline float lambda_of(const ctx *h, int32_t i)
{
    int64_t n = h->R->indptr[i + 1] - h->R->indptr[i];
    return h->scale ? h->lambda * (float)n : h->lambda;
}

static inline void axpy(float a, const float *restrict x, float *restrict y, int32_t d)
{
#pragma omp simd
    for (int32_t f = 0; f < d; f++)
        y[f] += a * x[f];
}

/* out = w0 G v + lambda v (G symmetric: row b is column b). */
static inline void dense_part(const ctx *h, float lam, const float *restrict v,
                              float *restrict out)
{
    const int32_t d = h->d;
    for (int32_t f = 0; f < d; f++)
        out[f] = lam * v[f];
    if (h->G)
        for (int32_t b = 0; b < d; b++)
            axpy(h->w0 * v[b], h->G + (int64_t)b * d, out, d);
}

/* Rows of the Cholesky matrix are padded to whole SIMD vectors (16 floats)
 * so its inner loops run on full, aligned vectors. */
#define LANES 16
static inline int32_t padded(int32_t d) { return (d + LANES - 1) / LANES * LANES; }

/* Solve A x = b in place (b <- x) for a symmetric positive definite A
 * given by its upper triangle, row-major with leading dimension ld (a
 * multiple of LANES, padding zero): A = U^T U (right-looking, U overwrites
 * it; the update runs over whole vectors, so it also rewrites the unused
 * lower triangle), then U^T z = b and U x = z. A pivot that has lost all
 * but rounding noise of its diagonal entry means a singular system:
 * MFR_ENOTPD rather than a solution made of noise. diag: d floats. */
static inline int cholesky_solve(float *restrict A, int32_t ld, float *restrict b, int32_t d,
                                 float *restrict diag)
{
    A = __builtin_assume_aligned(A, 64);
    for (int32_t j = 0; j < d; j++)
        diag[j] = A[(int64_t)j * ld + j];
    for (int32_t j = 0; j < d; j++) {
        float *restrict Uj = A + (int64_t)j * ld;
        const float pivot = Uj[j];
        if (!(pivot > 8.0f * FLT_EPSILON * diag[j]))
            return MFR_ENOTPD;
        const float piv = sqrtf(pivot), inv = 1.0f / piv;
        for (int32_t l0 = j / LANES * LANES; l0 < ld; l0 += LANES) {
#pragma omp simd
            for (int32_t l = l0; l < l0 + LANES; l++)
                Uj[l] *= inv;
        }
        Uj[j] = piv;
        int32_t m = j + 1;
        for (; m + 4 <= d; m += 4) { /* four rows share each load of U_j */
            float *restrict A0 = A + (int64_t)m * ld, *restrict A1 = A0 + ld,
                            *restrict A2 = A1 + ld, *restrict A3 = A2 + ld;
            const float a0 = Uj[m], a1 = Uj[m + 1], a2 = Uj[m + 2], a3 = Uj[m + 3];
            for (int32_t l0 = m / LANES * LANES; l0 < ld; l0 += LANES) {
#pragma omp simd
                for (int32_t l = l0; l < l0 + LANES; l++) {
                    const float u = Uj[l];
                    A0[l] -= a0 * u;
                    A1[l] -= a1 * u;
                    A2[l] -= a2 * u;
                    A3[l] -= a3 * u;
                }
            }
        }
        for (; m < d; m++) {
            float *restrict Am = A + (int64_t)m * ld;
            const float a = Uj[m];
            for (int32_t l0 = m / LANES * LANES; l0 < ld; l0 += LANES) {
#pragma omp simd
                for (int32_t l = l0; l < l0 + LANES; l++)
                    Am[l] -= a * Uj[l];
            }
        }
    }
    for (int32_t j = 0; j < d; j++) {
        const float *restrict Uj = A + (int64_t)j * ld;
        const float z = b[j] / Uj[j];
        b[j] = z;
#pragma omp simd
        for (int32_t l = j + 1; l < d; l++)
            b[l] -= z * Uj[l];
    }
    for (int32_t j = d - 1; j >= 0; j--) {
        const float *restrict Uj = A + (int64_t)j * ld;
        b[j] = (b[j] - mfr_dot(Uj + j + 1, b + j + 1, d - j - 1)) / Uj[j];
    }
    return MFR_OK;
}

/* Cholesky: build the normal equations of row i, solve them into x. */
MFR_TARGET_CLONES
static int solve_cholesky(const ctx *h, int32_t i, float lam, scratch *s, float *x)
{
    const int32_t d = h->d, ld = padded(d);
    const mfr_csr *R = h->R;
    float *restrict A = s->A, *restrict b = s->b;
    int npos = 0, nneg = 0;

    memset(A, 0, (size_t)d * ld * sizeof *A);
    for (int32_t r = 0; r < d; r++) {
        if (h->G)
            for (int32_t c = 0; c < d; c++)
                A[(int64_t)r * ld + c] = h->w0 * h->G[(int64_t)r * d + c];
        A[(int64_t)r * ld + r] += lam;
        b[r] = 0.0f;
    }
    for (int64_t e = R->indptr[i]; e < R->indptr[i + 1]; e++) {
        int32_t j = R->indices[e];
        float v = value_of(R, e);
        float c = conf_of(h, i, j, v), w = c - h->w0;
        const float *y = h->Y + (int64_t)j * d;
        axpy(c * target_of(h, j, v), y, b, d);
        if (w != 0.0f) {
            float *z = w > 0.0f ? s->zpos + (int64_t)npos++ * d : s->zneg + (int64_t)nneg++ * d;
            float sw = sqrtf(fabsf(w));
#pragma omp simd
            for (int32_t f = 0; f < d; f++)
                z[f] = sw * y[f];
        }
        /* upper triangle (column-major lower) += +/- Z^T Z, a chunk at a time */
        if (npos == OBS_CHUNK || (e + 1 == R->indptr[i + 1] && npos > 0)) {
            MFR_BLAS(cblas_ssyrk)(MfrColMajor, MfrLower, MfrNoTrans, d, npos, 1.0f, s->zpos,
                                  d, 1.0f, A, ld);
            npos = 0;
        }
        if (nneg == OBS_CHUNK || (e + 1 == R->indptr[i + 1] && nneg > 0)) {
            MFR_BLAS(cblas_ssyrk)(MfrColMajor, MfrLower, MfrNoTrans, d, nneg, -1.0f, s->zneg,
                                  d, 1.0f, A, ld);
            nneg = 0;
        }
    }
    int status = cholesky_solve(A, ld, b, d, s->r);
    if (status == MFR_OK)
        memcpy(x, b, (size_t)d * sizeof *x);
    return status;
}

/* out = A v for row i, with A applied as w0 G v + lam v + sum_obs (c - w0)(y.v) y. */
static inline void apply_matrix(const ctx *h, int32_t i, float lam, const float *restrict v,
                                float *restrict out)
{
    const mfr_csr *R = h->R;
    const int32_t d = h->d;
    dense_part(h, lam, v, out);
    for (int64_t e = R->indptr[i]; e < R->indptr[i + 1]; e++) {
        int32_t j = R->indices[e];
        float w = conf_of(h, i, j, value_of(R, e)) - h->w0;
        const float *y = h->Y + (int64_t)j * d;
        if (w != 0.0f)
            axpy(w * mfr_dot(y, v, d), y, out, d);
    }
}

/* Conjugate gradient on row i's normal equations from the current x. */
MFR_TARGET_CLONES
static void solve_cg(const ctx *h, int32_t i, float lam, int steps, scratch *s, float *x)
{
    const mfr_csr *R = h->R;
    const int32_t d = h->d;
    float *restrict r = s->r, *restrict p = s->p, *restrict Ap = s->Ap;

    /* r = b - A x in one pass over the row: sum_obs (c t - (c - w0) y.x) y */
    dense_part(h, lam, x, Ap);
    for (int32_t f = 0; f < d; f++)
        r[f] = -Ap[f];
    for (int64_t e = R->indptr[i]; e < R->indptr[i + 1]; e++) {
        int32_t j = R->indices[e];
        float v = value_of(R, e);
        float c = conf_of(h, i, j, v);
        const float *y = h->Y + (int64_t)j * d;
        axpy(c * target_of(h, j, v) - (c - h->w0) * mfr_dot(y, x, d), y, r, d);
    }
    memcpy(p, r, (size_t)d * sizeof *p);
    float rs = mfr_dot(r, r, d);
    for (int it = 0; it < steps && rs > 1e-30f; it++) {
        apply_matrix(h, i, lam, p, Ap);
        float pAp = mfr_dot(p, Ap, d);
        if (!(pAp > 0.0f))
            break;
        float a = rs / pAp;
        axpy(a, p, x, d);
        axpy(-a, Ap, r, d);
        float rs_new = mfr_dot(r, r, d);
        float beta = rs_new / rs;
#pragma omp simd
        for (int32_t f = 0; f < d; f++)
            p[f] = r[f] + beta * p[f];
        rs = rs_new;
    }
}

/* Row i's weighted squared errors at x, over all its entries: the
 * observed ones directly, the unobserved ones as w0 (x^T G x - sum_obs (x.y)^2). */
MFR_TARGET_CLONES
static double row_data_loss(const ctx *h, int32_t i, const float *x)
{
    const mfr_csr *R = h->R;
    const int32_t d = h->d;
    double obs = 0.0, sq_obs = 0.0;
    for (int64_t e = R->indptr[i]; e < R->indptr[i + 1]; e++) {
        int32_t j = R->indices[e];
        float v = value_of(R, e);
        double pred = mfr_dot(x, h->Y + (int64_t)j * d, d);
        double err = target_of(h, j, v) - pred;
        obs += conf_of(h, i, j, v) * err * err;
        sq_obs += pred * pred;
    }
    if (h->G) {
        double xGx = 0.0;
        for (int32_t a = 0; a < d; a++)
            xGx += x[a] * (double)mfr_dot(h->G + (int64_t)a * d, x, d);
        obs += h->w0 * (xGx - sq_obs);
    }
    return obs;
}

/* G = Y^T Y (n x d rows), full symmetric, from per-block ssyrk partials
 * summed in block order in double. */
static int gram(const float *Y, int64_t n, int32_t d, int threads, float *G)
{
    const int64_t nb = (n + GRAM_BLOCK - 1) / GRAM_BLOCK;
    const int64_t dd = (int64_t)d * d;
    float *part = malloc((size_t)MFR_MAX(nb, 1) * dd * sizeof *part);
    double *acc = calloc((size_t)dd, sizeof *acc);
    if (!part || !acc) {
        free(part);
        free(acc);
        return MFR_ENOMEM;
    }
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (nb > 1)
    for (int64_t blk = 0; blk < nb; blk++) {
        int64_t lo = blk * GRAM_BLOCK, rows = MFR_MIN(n, lo + GRAM_BLOCK) - lo;
        MFR_BLAS(cblas_ssyrk)(MfrColMajor, MfrLower, MfrNoTrans, d, (blas_int)rows, 1.0f,
                              Y + lo * d, d, 0.0f, part + blk * dd, d);
    }
    for (int64_t blk = 0; blk < nb; blk++)
        for (int32_t c = 0; c < d; c++)
            for (int32_t r = c; r < d; r++)
                acc[(int64_t)c * d + r] += part[blk * dd + (int64_t)c * d + r];
    for (int32_t c = 0; c < d; c++)
        for (int32_t r = c; r < d; r++)
            G[(int64_t)c * d + r] = G[(int64_t)r * d + c] = (float)acc[(int64_t)c * d + r];
    free(part);
    free(acc);
    return MFR_OK;
}

static int check_inputs(const mfr_csr *R, int32_t k, const mfr_als_side *x,
                        const mfr_als_side *y, const mfr_als_params *p)
{
    if (!R || !x || !y || !p || !x->factors || !y->factors || k < 1 || R->n_rows < 0 ||
        R->n_cols < 0 || !R->indptr || (R->nnz > 0 && !R->indices))
        return MFR_EINVAL;
    if (!(p->regularization >= 0.0f) || !isfinite(p->regularization) ||
        !(p->unobserved_weight >= 0.0f) || !isfinite(p->unobserved_weight) ||
        !(p->alpha >= 0.0f) || !isfinite(p->alpha) ||
        (p->solver != MFR_ALS_CHOLESKY && p->solver != MFR_ALS_CG) ||
        (p->solver == MFR_ALS_CG && p->cg_steps < 1))
        return MFR_EINVAL;
    /* biases come in pairs, and only where unobserved entries weigh nothing */
    if ((x->bias == NULL) != (y->bias == NULL) || (x->bias && p->unobserved_weight != 0.0f))
        return MFR_EINVAL;
    if (R->indptr[0] != 0 || R->indptr[R->n_rows] != R->nnz)
        return MFR_EINVAL;
    for (int32_t i = 0; i < R->n_rows; i++)
        if (R->indptr[i + 1] < R->indptr[i])
            return MFR_EINVAL;
    for (int64_t e = 0; e < R->nnz; e++) {
        if (R->indices[e] < 0 || R->indices[e] >= R->n_cols)
            return MFR_EINDEX;
        if (R->values && (!isfinite(R->values[e]) || 1.0f + p->alpha * R->values[e] < 0.0f))
            return isfinite(R->values[e]) ? MFR_EINVAL : MFR_ENONFINITE;
    }
    const mfr_als_side *sides[2] = {x, y};
    const int32_t lens[2] = {R->n_rows, R->n_cols};
    for (int s = 0; s < 2; s++) {
        for (int32_t t = 0; t < lens[s]; t++) {
            if (sides[s]->weights && !(sides[s]->weights[t] >= 0.0f && isfinite(sides[s]->weights[t])))
                return MFR_EINVAL;
            if (sides[s]->bias && !isfinite(sides[s]->bias[t]))
                return MFR_ENONFINITE;
        }
        for (int64_t t = 0; t < (int64_t)lens[s] * k; t++)
            if (!isfinite(sides[s]->factors[t]))
                return MFR_ENONFINITE;
    }
    return MFR_OK;
}

/* The rows [lo, hi) of the half-step; adds their loss to data/reg. */
static int solve_rows(const ctx *h, const mfr_als_params *p, int32_t lo, int32_t hi,
                      scratch *s, double *data, double *reg)
{
    const int32_t d = h->d;
    for (int32_t i = lo; i < hi; i++) {
        float *x = h->X + (int64_t)i * d;
        float lam = lambda_of(h, i);
        if (h->R->indptr[i + 1] == h->R->indptr[i] && !h->G) {
            memset(x, 0, (size_t)d * sizeof *x); /* nothing observed, nothing to fit */
        } else if (p->solver == MFR_ALS_CG) {
            solve_cg(h, i, lam, p->cg_steps, s, x);
        } else {
            int status = solve_cholesky(h, i, lam, s, x);
            if (status != MFR_OK)
                return status;
        }
        for (int32_t f = 0; f < d; f++)
            if (!isfinite(x[f]))
                return MFR_EDIVERGED;
        if (reg) {
            double xx = 0.0;
            for (int32_t f = 0; f < d; f++)
                xx += (double)x[f] * x[f];
            *reg += lam * xx;
            if (p->loss)
                *data += row_data_loss(h, i, x);
        }
    }
    return MFR_OK;
}

int mfr_als_half_step(const mfr_csr *R, int32_t k, mfr_als_side *x, const mfr_als_side *y,
                      float offset, const mfr_als_params *p, mfr_als_stats *stats)
{
    int status = check_inputs(R, k, x, y, p);
    if (status != MFR_OK)
        return status;
    const int threads = mfr_threads(p->n_threads);
    const int bias = x->bias != NULL;
    const int32_t d = bias ? k + 1 : k;
    const int32_t n_rows = R->n_rows, n_cols = R->n_cols;
    const int64_t n_blocks = ((int64_t)n_rows + ROW_BLOCK - 1) / ROW_BLOCK;
    float *Xa = x->factors, *Ya = y->factors, *G = NULL;
    double *block_loss = NULL;
    int prev = mfr_blas_threads_save_and_set1();
    double t0 = 0.0, t1 = 0.0;
#ifdef _OPENMP
    t0 = omp_get_wtime();
#endif

    if (bias) { /* augmented copies: x -> (x, b_x), y -> (y, 1) */
        Xa = malloc((size_t)n_rows * d * sizeof *Xa);
        Ya = malloc((size_t)n_cols * d * sizeof *Ya);
        if (!Xa || !Ya) {
            status = MFR_ENOMEM;
            goto cleanup;
        }
        for (int32_t i = 0; i < n_rows; i++) {
            memcpy(Xa + (int64_t)i * d, x->factors + (int64_t)i * k, (size_t)k * sizeof *Xa);
            Xa[(int64_t)i * d + k] = x->bias[i];
        }
        for (int32_t j = 0; j < n_cols; j++) {
            memcpy(Ya + (int64_t)j * d, y->factors + (int64_t)j * k, (size_t)k * sizeof *Ya);
            Ya[(int64_t)j * d + k] = 1.0f;
        }
    }
    if (p->unobserved_weight > 0.0f) {
        G = malloc((size_t)d * d * sizeof *G);
        if (!G) {
            status = MFR_ENOMEM;
            goto cleanup;
        }
        status = gram(Ya, n_cols, d, threads, G);
        if (status != MFR_OK)
            goto cleanup;
    }
#ifdef _OPENMP
    t1 = omp_get_wtime();
#endif
    if (stats) {
        block_loss = calloc((size_t)MFR_MAX(n_blocks, 1) * 2, sizeof *block_loss);
        if (!block_loss) {
            status = MFR_ENOMEM;
            goto cleanup;
        }
    }

    const ctx h = {R, d, Ya, Xa, G, x->weights, y->weights, y->bias, offset, p->alpha,
                   p->unobserved_weight, p->regularization, p->scale_regularization,
                   p->binary};
#pragma omp parallel num_threads(threads) if (n_blocks > 1)
    {
        scratch s;
        const size_t a_size = (size_t)d * padded(d);
        size_t bytes = (a_size + 4 * (size_t)d + 2 * (size_t)OBS_CHUNK * d) * sizeof(float);
        float *mem = aligned_alloc(64, (bytes + 63) / 64 * 64);
        if (!mem) {
#pragma omp atomic write
            status = MFR_ENOMEM;
        }
        if (mem) {
            s.A = mem;
            s.b = s.A + a_size;
            s.r = s.b + d;
            s.p = s.r + d;
            s.Ap = s.p + d;
            s.zpos = s.Ap + d;
            s.zneg = s.zpos + (size_t)OBS_CHUNK * d;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t blk = 0; blk < n_blocks; blk++) {
            int failed;
#pragma omp atomic read
            failed = status;
            if (failed != MFR_OK || !mem)
                continue;
            int32_t lo = (int32_t)(blk * ROW_BLOCK);
            int32_t hi = (int32_t)MFR_MIN((int64_t)n_rows, (blk + 1) * ROW_BLOCK);
            int st = solve_rows(&h, p, lo, hi, &s, block_loss ? block_loss + 2 * blk : NULL,
                                block_loss ? block_loss + 2 * blk + 1 : NULL);
            if (st != MFR_OK) {
#pragma omp atomic write
                status = st;
            }
        }
        free(mem);
    }
    if (status != MFR_OK)
        goto cleanup;
    if (bias) {
        for (int32_t i = 0; i < n_rows; i++) {
            memcpy(x->factors + (int64_t)i * k, Xa + (int64_t)i * d, (size_t)k * sizeof *Xa);
            x->bias[i] = Xa[(int64_t)i * d + k];
        }
    }
    if (stats) {
        stats->data = stats->reg = 0.0;
        for (int64_t blk = 0; blk < n_blocks; blk++) { /* fixed order */
            stats->data += block_loss[2 * blk];
            stats->reg += block_loss[2 * blk + 1];
        }
#ifdef _OPENMP
        stats->gram_seconds = t1 - t0;
        stats->solve_seconds = omp_get_wtime() - t1;
#endif
    }
cleanup:
    mfr_blas_threads_restore(prev);
    if (bias) {
        free(Xa);
        free(Ya);
    }
    free(G);
    free(block_loss);
    return status;
}
