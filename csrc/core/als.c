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
 * w0 = 0, where the unobserved entries carry no weight. The solved rows
 * are augmented a block at a time in per-thread scratch; the other side's
 * (y_j, 1) rows are copied once, unless the caller keeps them so
 * (mfr_als_side.augmented: no copy of either side).
 *
 * Solvers: Cholesky of the d x d system (ssyrk over gathered rows scaled
 * by sqrt|c_j - w0|, then a small-d Cholesky on padded SIMD rows), or a
 * few conjugate-gradient steps warm-started from the current x, applying
 * the matrix as w0 G v + lambda_i v + sum_obs (c_j - w0)(y_j.v) y_j
 * without forming it.
 *
 * The objective is reported exactly, unobserved term included:
 *   sum_unobs (x.y_j)^2 = x^T G x - sum_obs (x.y_j)^2.
 * The same pass sums the plain squared errors of the model's predictions
 * (offset + o_j + b_x + x.y_j, rounded to float as mfr_predict does) on
 * the raw values, so a fit gets its training RMSE without another pass.
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
#define BLOCK_SUMS 3    /* per block of rows: data loss, regularization, sse */
#define GROUP_BYTES (256 * 1024) /* rows of Y a group of rows gathers (group_end) */
#define AHEAD 16        /* entries ahead whose rows of Y are prefetched */

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
    float *X;       /* n_rows x d; with biases, x's factors (row stride ldx) */
    const mfr_als_side *xs; /* with biases: x (rows augmented per block), or NULL */
    int32_t ldx;
    const float *G; /* d x d, full symmetric; NULL when w0 == 0 */
    const float *rw, *cw, *ob;
    float offset, alpha, w0, lambda;
    int scale, binary;
} ctx;

/* Per-thread scratch: the Cholesky system of one row, and the CG vectors
 * of one block of rows (ROW_BLOCK x d each). */
typedef struct {
    float *A, *b, *diag, *zpos, *zneg;
    float *R, *P, *AP, *rs, *lam, *Xb;
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

/* Rows of the Cholesky matrix are padded to whole SIMD vectors (16 floats,
 * 64-byte aligned) so its inner loops run on full, aligned vectors. */
#define LANES 16
static inline int32_t padded(int32_t d) { return (d + LANES - 1) / LANES * LANES; }

/* Solve A x = b in place (b <- x) for a symmetric positive definite A
 * given by its upper triangle, row-major with leading dimension ld (a
 * multiple of LANES, padding zero): A = U^T U (right-looking, U overwrites
 * it; the update runs over whole vectors, so it also rewrites the unused
 * lower triangle), then U^T z = b and U x = z. A pivot that has lost all
 * but rounding noise of its diagonal entry means a singular system:
 * MFR_ENOTPD rather than a solution made of noise. diag: d floats. */
static MFR_ALWAYS_INLINE int cholesky_solve(float *restrict A, int32_t ld, float *restrict b,
                                            int32_t d, float *restrict diag)
{
#if defined(__GNUC__)
    A = __builtin_assume_aligned(A, 64);
#endif
    for (int32_t j = 0; j < d; j++)
        diag[j] = A[(int64_t)j * ld + j];
    for (int32_t j = 0; j < d; j++) {
        float *restrict Uj = A + (int64_t)j * ld;
        const float pivot = Uj[j];
        if (!(pivot > 8.0f * FLT_EPSILON * diag[j]))
            return MFR_ENOTPD;
        const float piv = sqrtf(pivot), inv = 1.0f / piv;
        /* (inner loops count 0..LANES from a block start: a fixed trip count
         * the vectorizer sees even under -fwrapv, which Python's flags add) */
        for (int32_t l0 = j / LANES * LANES; l0 < ld; l0 += LANES) {
            float *restrict u = Uj + l0;
#pragma omp simd
            for (int t = 0; t < LANES; t++)
                u[t] *= inv;
        }
        Uj[j] = piv;
        int32_t m = j + 1;
        for (; m + 4 <= d; m += 4) { /* four rows share each load of U_j */
            const float a0 = Uj[m], a1 = Uj[m + 1], a2 = Uj[m + 2], a3 = Uj[m + 3];
            for (int32_t l0 = m / LANES * LANES; l0 < ld; l0 += LANES) {
                float *restrict r0 = A + (int64_t)m * ld + l0, *restrict r1 = r0 + ld,
                                *restrict r2 = r1 + ld, *restrict r3 = r2 + ld;
                const float *restrict u = Uj + l0;
#pragma omp simd
                for (int t = 0; t < LANES; t++) {
                    r0[t] -= a0 * u[t];
                    r1[t] -= a1 * u[t];
                    r2[t] -= a2 * u[t];
                    r3[t] -= a3 * u[t];
                }
            }
        }
        for (; m < d; m++) {
            const float a = Uj[m];
            for (int32_t l0 = m / LANES * LANES; l0 < ld; l0 += LANES) {
                float *restrict r0 = A + (int64_t)m * ld + l0;
                const float *restrict u = Uj + l0;
#pragma omp simd
                for (int t = 0; t < LANES; t++)
                    r0[t] -= a * u[t];
            }
        }
    }
    for (int32_t j = 0; j < d; j++) {
        const float *restrict Uj = A + (int64_t)j * ld;
        const float z = b[j] / Uj[j];
        float *restrict rest = b + j + 1;
        const float *restrict u = Uj + j + 1;
        b[j] = z;
#pragma omp simd
        for (int32_t t = 0; t < d - j - 1; t++)
            rest[t] -= z * u[t];
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
    int status = cholesky_solve(A, ld, b, d, s->diag);
    if (status == MFR_OK)
        memcpy(x, b, (size_t)d * sizeof *x);
    return status;
}

/* Prefetch the rows of Y of the entries AHEAD to AHEAD + 3 past e (before
 * end): a row's entries are scattered over the other side's factors, past
 * the caches at scale, and waiting on one miss an entry at a time was most
 * of a half-step. */
static MFR_ALWAYS_INLINE void prefetch_rows(const ctx *h, int64_t e, int64_t end)
{
    for (int64_t t = e + AHEAD; t < MFR_MIN(e + AHEAD + 4, end); t++) {
        const char *row = (const char *)(h->Y + (int64_t)h->R->indices[t] * h->d);
        for (int32_t l = 0; l < h->d * (int32_t)sizeof(float); l += 64)
            __builtin_prefetch(row + l, 0, 3);
    }
}

/* out += sum over row i's entries of a_e y_e, four entries at a time (their
 * dot products run side by side, their updates share one pass over out):
 *   residual: a_e = c_e t_e - (c_e - w0)(y_e.v)     product: a_e = (c_e - w0)(y_e.v) */
static MFR_ALWAYS_INLINE void sparse_pass(const ctx *h, int32_t i, const float *restrict v, int residual,
                               float *restrict out)
{
    const mfr_csr *R = h->R;
    const int32_t d = h->d;
    const int64_t end = R->indptr[i + 1];
    int64_t e = R->indptr[i];
    for (; e + 4 <= end; e += 4) {
        prefetch_rows(h, e, end);
        const float *restrict y0 = h->Y + (int64_t)R->indices[e] * d,
                              *restrict y1 = h->Y + (int64_t)R->indices[e + 1] * d,
                              *restrict y2 = h->Y + (int64_t)R->indices[e + 2] * d,
                              *restrict y3 = h->Y + (int64_t)R->indices[e + 3] * d;
        const float *const y[4] = {y0, y1, y2, y3};
        float a[4];
        mfr_dot4(v, y, d, a);
        for (int u = 0; u < 4; u++) {
            int32_t j = R->indices[e + u];
            float val = value_of(R, e + u), c = conf_of(h, i, j, val);
            float wd = (c - h->w0) * a[u];
            a[u] = residual ? c * target_of(h, j, val) - wd : wd;
        }
#pragma omp simd
        for (int32_t f = 0; f < d; f++)
            out[f] += a[0] * y0[f] + a[1] * y1[f] + a[2] * y2[f] + a[3] * y3[f];
    }
    for (; e < end; e++) {
        int32_t j = R->indices[e];
        float val = value_of(R, e), c = conf_of(h, i, j, val);
        const float *y = h->Y + (int64_t)j * d;
        float wd = (c - h->w0) * mfr_dot(y, v, d);
        axpy(residual ? c * target_of(h, j, val) - wd : wd, y, out, d);
    }
}

/* out = a V G (+ diag(lam) V, lam given) for n rows V, G the symmetric
 * d x d Gram matrix: row r of V G is sum_c v_r[c] G[c], four rows at a
 * time so that each load of G serves four. The groups are a few rows, for
 * which sgemm's calls and packing of G cost more than the products. */
static MFR_ALWAYS_INLINE void gram_product(const float *restrict G, int32_t d, float a,
                                           const float *restrict V, int32_t n,
                                           const float *lam, float *restrict out)
{
    const int32_t d16 = d / 16 * 16;
    for (int32_t r0 = 0; r0 < n; r0 += 4) {
        const int32_t m = MFR_MIN(4, n - r0);
        const float *v[4];
        for (int u = 0; u < 4; u++) /* past the last row: the last row again, unstored */
            v[u] = V + (int64_t)(r0 + MFR_MIN(u, m - 1)) * d;
        for (int32_t f0 = 0; f0 < d16; f0 += 16) {
            mfr_v8 lo[4] = {{0}}, hi[4] = {{0}};
            for (int32_t c = 0; c < d; c++) {
                const mfr_v8 gl = *(const mfr_v8 *)(G + (int64_t)c * d + f0),
                             gh = *(const mfr_v8 *)(G + (int64_t)c * d + f0 + 8);
                for (int u = 0; u < 4; u++) {
                    lo[u] += v[u][c] * gl;
                    hi[u] += v[u][c] * gh;
                }
            }
            for (int u = 0; u < 4; u++)
                if (u < m) {
                    float *o = out + (int64_t)(r0 + u) * d + f0;
                    *(mfr_v8 *)o = a * lo[u];
                    *(mfr_v8 *)(o + 8) = a * hi[u];
                }
        }
        for (int u = 0; u < m; u++)
            for (int32_t f = d16; f < d; f++) {
                float sum = 0.0f;
                for (int32_t c = 0; c < d; c++)
                    sum += v[u][c] * G[(int64_t)c * d + f];
                out[(int64_t)(r0 + u) * d + f] = a * sum;
            }
    }
    for (int32_t r = 0; lam && r < n; r++)
        axpy(lam[r], V + (int64_t)r * d, out + (int64_t)r * d, d);
}

/* out = w0 V G + diag(lam) V for n rows V. */
static MFR_ALWAYS_INLINE void dense_block(const ctx *h, const float *V, int32_t n,
                                          const float *lam, float *out)
{
    const int32_t d = h->d;
    if (h->G) {
        gram_product(h->G, d, h->w0, V, n, lam, out);
        return;
    }
    for (int32_t r = 0; r < n; r++)
        for (int32_t f = 0; f < d; f++)
            out[(int64_t)r * d + f] = lam[r] * V[(int64_t)r * d + f];
}

/* Conjugate gradient on the normal equations of rows lo..lo+n-1 (a group:
 * group_end), warm-started from their current x, the rows in lockstep so
 * that the dense part w0 G p of every product is one gram_product for the
 * group; the sparse part sum_obs (c - w0)(y.p) y is applied without
 * forming the matrix. The group's vectors are the block scratch's rows
 * from `at` on. */
MFR_TARGET_CLONES
static void solve_cg_group(const ctx *h, float *restrict X, int32_t lo, int32_t n, int steps,
                           scratch *s, int32_t at)
{
    const int32_t d = h->d;
    float *restrict Rm = s->R + (int64_t)at * d, *restrict P = s->P + (int64_t)at * d,
                    *restrict AP = s->AP + (int64_t)at * d, *restrict rs = s->rs + at;
    const float *lam = s->lam + at;

    dense_block(h, X, n, lam, AP);
    for (int32_t r = 0; r < n; r++) {
        float *restrict x = X + (int64_t)r * d, *restrict res = Rm + (int64_t)r * d;
        for (int32_t f = 0; f < d; f++)
            res[f] = -AP[(int64_t)r * d + f];
        sparse_pass(h, lo + r, x, 1, res);
        memcpy(P + (int64_t)r * d, res, (size_t)d * sizeof *P);
        rs[r] = mfr_dot(res, res, d);
    }
    for (int it = 0; it < steps; it++) {
        dense_block(h, P, n, lam, AP);
        for (int32_t r = 0; r < n; r++) {
            float *restrict x = X + (int64_t)r * d, *restrict res = Rm + (int64_t)r * d;
            float *restrict p = P + (int64_t)r * d, *restrict ap = AP + (int64_t)r * d;
            if (!(rs[r] > 1e-30f))
                continue; /* converged */
            sparse_pass(h, lo + r, p, 0, ap);
            float pAp = mfr_dot(p, ap, d);
            if (!(pAp > 0.0f)) {
                rs[r] = 0.0f;
                continue;
            }
            float a = rs[r] / pAp;
            axpy(a, p, x, d);
            axpy(-a, ap, res, d);
            float rs_new = mfr_dot(res, res, d), beta = rs_new / rs[r];
#pragma omp simd
            for (int32_t f = 0; f < d; f++)
                p[f] = res[f] + beta * p[f];
            rs[r] = rs_new;
        }
    }
}

/* Squared error of the prediction of raw value v at row x, column j, given
 * dot = x.y_j over the k factors summed as mfr_dot sums it: the prediction
 * as mfr_predict forms it. Only the offset is float here (mu is double
 * there), and on the user side b_u, b_i come in the other order: where mu
 * is not a float the prediction may differ by an ulp. */
static MFR_ALWAYS_INLINE double predict_error2(const ctx *h, const float *x, int32_t k,
                                               float dot, int32_t j, float v)
{
    double r = h->offset;
    if (h->ob)
        r = r + h->ob[j] + x[k];
    r += dot;
    const double e = (double)(float)r - (double)v;
    return e * e;
}

/* The rows' weighted squared errors at their new x, over all entries: the
 * observed ones directly, the unobserved ones as w0 (x^T G x - sum_obs (x.y)^2)
 * with X G one gram_product for the rows; *sse += the predictions' plain squared
 * errors on the observed raw values (predict_error2). */
MFR_TARGET_CLONES
static double block_data_loss(const ctx *h, const float *X, int32_t lo, int32_t n, scratch *s,
                              double *sse)
{
    const mfr_csr *R = h->R;
    const int32_t d = h->d, k = h->ob ? d - 1 : d; /* biases: x = (x, b_x), y = (y, 1) */
    double total = 0.0;
    if (h->G)
        gram_product(h->G, d, 1.0f, X, n, NULL, s->AP);
    for (int32_t r = 0; r < n; r++) {
        const int32_t i = lo + r;
        const float *x = X + (int64_t)r * d;
        double obs = 0.0, sq_obs = 0.0;
        for (int64_t e = R->indptr[i]; e < R->indptr[i + 1]; e += 4) {
            const int m = (int)MFR_MIN(4, R->indptr[i + 1] - e);
            prefetch_rows(h, e, R->indptr[i + 1]);
            const float *y[4];
            float pred[4], dot_k[4];
            for (int u = 0; u < 4; u++) /* short groups repeat their first entry */
                y[u] = h->Y + (int64_t)R->indices[e + (u < m ? u : 0)] * d;
            mfr_dot4(x, y, d, pred);
            if (k < d) /* with biases: the factors' part alone */
                mfr_dot4(x, y, k, dot_k);
            else
                memcpy(dot_k, pred, sizeof dot_k);
            for (int u = 0; u < m; u++) {
                int32_t j = R->indices[e + u];
                float v = value_of(R, e + u);
                double err = target_of(h, j, v) - (double)pred[u];
                obs += conf_of(h, i, j, v) * err * err;
                sq_obs += (double)pred[u] * pred[u];
                *sse += predict_error2(h, x, k, dot_k[u], j, v);
            }
        }
        if (h->G) {
            double xGx = 0.0;
            for (int32_t f = 0; f < d; f++)
                xGx += (double)x[f] * s->AP[(int64_t)r * d + f];
            obs += h->w0 * (xGx - sq_obs);
        }
        total += obs;
    }
    return total;
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
    if ((x->augmented || y->augmented) && !x->bias)
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
        const int32_t ld = sides[s]->augmented ? k + 1 : k;
        for (int64_t t = 0; t < (int64_t)lens[s] * ld; t++)
            if (!isfinite(sides[s]->factors[t]))
                return MFR_ENONFINITE;
    }
    if (y->augmented) /* the rows (y_j, 1) the kernel reads as they are */
        for (int32_t j = 0; j < R->n_cols; j++)
            if (y->factors[(int64_t)j * (k + 1) + k] != 1.0f)
                return MFR_EINVAL;
    if (y->gram)
        for (int64_t t = 0; t < (int64_t)k * k; t++)
            if (!isfinite(y->gram[t]))
                return MFR_ENONFINITE;
    return MFR_OK;
}

/* With biases, rows [lo, lo + n) of x as (x_i, b_i) into Xb (out = 0),
 * or Xb's solved rows back into x (out = 1). */
static void block_augment(const ctx *h, int32_t lo, int32_t n, float *Xb, int out)
{
    const int32_t k = h->d - 1;
    for (int32_t r = 0; r < n; r++) {
        float *row = h->X + (int64_t)(lo + r) * h->ldx, *aug = Xb + (int64_t)r * h->d;
        if (out) {
            memcpy(row, aug, (size_t)k * sizeof *row);
            h->xs->bias[lo + r] = aug[k];
        } else {
            memcpy(aug, row, (size_t)k * sizeof *row);
            aug[k] = h->xs->bias[lo + r];
        }
    }
}

/* The end of the group of rows from r0 (of the block at lo, n rows) that
 * are solved and scored together: consecutive rows whose entries' rows of
 * Y fit in GROUP_BYTES, at least one. Every pass over a group after the
 * first then reads them from L2 (256 KiB: half of Zen 3's, a quarter of
 * Zen 4's); a whole block's did not fit once rows grew past ~30 entries. */
static int32_t group_end(const ctx *h, int32_t lo, int32_t r0, int32_t n)
{
    const int64_t *indptr = h->R->indptr + lo;
    const int64_t budget = GROUP_BYTES / ((int64_t)h->d * (int64_t)sizeof(float));
    int32_t r1 = r0 + 1;
    while (r1 < n && indptr[r1 + 1] - indptr[r0] <= budget)
        r1++;
    return r1;
}

/* The rows [lo, lo + n) of the half-step (n <= ROW_BLOCK); adds their
 * objective terms to loss[0] (data, if p->loss) and loss[1] (reg), and
 * their predictions' squared errors to loss[2] (if p->loss). */
static int solve_block(const ctx *h, const mfr_als_params *p, int32_t lo, int32_t n,
                       scratch *s, double *loss)
{
    const int32_t d = h->d;
    float *X = h->xs ? s->Xb : h->X + (int64_t)lo * d;
    if (h->xs)
        block_augment(h, lo, n, X, 0);
    for (int32_t r = 0; r < n; r++) {
        s->lam[r] = lambda_of(h, lo + r);
        if (h->R->indptr[lo + r + 1] == h->R->indptr[lo + r] && !h->G)
            memset(X + (int64_t)r * d, 0, (size_t)d * sizeof *X); /* nothing to fit: 0 */
    }
    for (int32_t g0 = 0, g1; g0 < n; g0 = g1) {
        g1 = group_end(h, lo, g0, n);
        float *Xg = X + (int64_t)g0 * d;
        if (p->solver == MFR_ALS_CG)
            solve_cg_group(h, Xg, lo + g0, g1 - g0, p->cg_steps, s, g0);
        else
            for (int32_t r = g0; r < g1; r++) {
                if (h->R->indptr[lo + r + 1] == h->R->indptr[lo + r] && !h->G)
                    continue;
                int status = solve_cholesky(h, lo + r, s->lam[r], s, X + (int64_t)r * d);
                if (status != MFR_OK)
                    return status;
            }
        if (loss && p->loss) /* while the group's rows of Y are in cache */
            loss[0] += block_data_loss(h, Xg, lo + g0, g1 - g0, s, &loss[2]);
    }
    for (int64_t t = 0; t < (int64_t)n * d; t++)
        if (!isfinite(X[t]))
            return MFR_EDIVERGED;
    if (loss) {
        for (int32_t r = 0; r < n; r++) {
            double xx = 0.0;
            for (int32_t f = 0; f < d; f++)
                xx += (double)X[(int64_t)r * d + f] * X[(int64_t)r * d + f];
            loss[1] += s->lam[r] * xx;
        }
    }
    if (h->xs)
        block_augment(h, lo, n, X, 1);
    return MFR_OK;
}

/* One thread's scratch (see scratch) in one allocation, A 64-byte aligned;
 * *mem gets the block to free, NULL if the allocation failed. */
static void scratch_alloc(int32_t d, scratch *s, char **mem)
{
    const size_t a_size = (size_t)d * padded(d), cg_size = (size_t)ROW_BLOCK * d;
    size_t bytes = (a_size + 2 * (size_t)d + 2 * (size_t)OBS_CHUNK * d + 4 * cg_size +
                    2 * ROW_BLOCK) * sizeof(float);
    *mem = malloc(bytes + 64);
    if (!*mem)
        return;
    s->A = (float *)(*mem + (64 - (uintptr_t)*mem % 64)); /* 64-byte aligned */
    s->b = s->A + a_size;
    s->diag = s->b + d;
    s->zpos = s->diag + d;
    s->zneg = s->zpos + (size_t)OBS_CHUNK * d;
    s->R = s->zneg + (size_t)OBS_CHUNK * d;
    s->P = s->R + cg_size;
    s->AP = s->P + cg_size;
    s->rs = s->AP + cg_size;
    s->lam = s->rs + ROW_BLOCK;
    s->Xb = s->lam + ROW_BLOCK;
}

/* Every block of ROW_BLOCK rows, in parallel; block b's sums go to
 * block_loss[BLOCK_SUMS b ..] when block_loss is given. */
static int solve_rows(const ctx *h, const mfr_als_params *p, int64_t n_blocks, int threads,
                      double *block_loss)
{
    const int32_t n_rows = h->R->n_rows;
    int status = MFR_OK;
#pragma omp parallel num_threads(threads) if (n_blocks > 1)
    {
        scratch s;
        char *mem;
        scratch_alloc(h->d, &s, &mem);
        if (!mem) {
#pragma omp atomic write
            status = MFR_ENOMEM;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t blk = 0; blk < n_blocks; blk++) {
            int failed;
#pragma omp atomic read
            failed = status;
            if (failed != MFR_OK || !mem)
                continue;
            int32_t lo = (int32_t)(blk * ROW_BLOCK);
            int32_t n = (int32_t)MFR_MIN((int64_t)n_rows - lo, ROW_BLOCK);
            int st = solve_block(h, p, lo, n, &s,
                                 block_loss ? block_loss + BLOCK_SUMS * blk : NULL);
            if (st != MFR_OK) {
#pragma omp atomic write
                status = st;
            }
        }
        free(mem);
    }
    return status;
}

/* With biases, the other side's rows (y_j, 1) in a copy (unless the
 * caller keeps them so: y->augmented). */
static int augment(const mfr_als_side *y, int32_t k, int32_t n_cols, float **Ya)
{
    const int32_t d = k + 1;
    *Ya = malloc((size_t)MFR_MAX(n_cols, 1) * d * sizeof **Ya);
    if (!*Ya)
        return MFR_ENOMEM;
    for (int32_t j = 0; j < n_cols; j++) {
        memcpy(*Ya + (int64_t)j * d, y->factors + (int64_t)j * k, (size_t)k * sizeof **Ya);
        (*Ya)[(int64_t)j * d + k] = 1.0f;
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
    const int copy_y = bias && !y->augmented;
    float *Ya = y->factors, *G = NULL;
    double *block_loss = NULL;
    mfr_blas_threads_enter(1);
    double t0 = 0.0, t1 = 0.0;
#ifdef _OPENMP
    t0 = omp_get_wtime();
#endif

    if (copy_y && (status = augment(y, k, n_cols, &Ya)) != MFR_OK)
        goto cleanup;
    if (p->unobserved_weight > 0.0f) {
        G = malloc((size_t)d * d * sizeof *G);
        if (!G) {
            status = MFR_ENOMEM;
            goto cleanup;
        }
        if (y->gram) /* d == k here: biases need w0 == 0 */
            memcpy(G, y->gram, (size_t)d * d * sizeof *G);
        else if ((status = gram(Ya, n_cols, d, threads, G)) != MFR_OK)
            goto cleanup;
    }
#ifdef _OPENMP
    t1 = omp_get_wtime();
#endif
    if (stats) {
        block_loss = calloc((size_t)MFR_MAX(n_blocks, 1) * BLOCK_SUMS, sizeof *block_loss);
        if (!block_loss) {
            status = MFR_ENOMEM;
            goto cleanup;
        }
    }

    const ctx h = {R, d, Ya, x->factors, bias ? x : NULL, x->augmented ? k + 1 : k, G,
                   x->weights, y->weights, y->bias, offset, p->alpha, p->unobserved_weight,
                   p->regularization, p->scale_regularization, p->binary};
    if ((status = solve_rows(&h, p, n_blocks, threads, block_loss)) != MFR_OK)
        goto cleanup;
    if (stats) {
        stats->data = stats->reg = stats->sse = 0.0;
        for (int64_t blk = 0; blk < n_blocks; blk++) { /* fixed order */
            stats->data += block_loss[BLOCK_SUMS * blk];
            stats->reg += block_loss[BLOCK_SUMS * blk + 1];
            stats->sse += block_loss[BLOCK_SUMS * blk + 2];
        }
#ifdef _OPENMP
        stats->gram_seconds = t1 - t0;
        stats->solve_seconds = omp_get_wtime() - t1;
#endif
    }
cleanup:
    mfr_blas_threads_leave();
    if (copy_y)
        free(Ya);
    free(G);
    free(block_loss);
    return status;
}
