/*
 * svd.c - truncated SVD of a filled rating matrix, and the baseline fill.
 *
 * The closed-form route: fill the missing entries of R with a baseline
 * F = f 1^T + 1 g^T (rank <= 2), factor the residual A = P_Omega(R - F)
 * (or the filled matrix A = P_Omega(R - F) + F) as
 *     A ~ A_k = U_k Sigma_k V_k^T,
 * the best rank-k approximation in the Frobenius norm (Eckart-Young:
 * ||A - A_k||_F^2 = sum_{j>k} sigma_j^2), and predict F + A_k.
 * energy(k) = sum_{j<=k} sigma_j^2 / ||A||_F^2, where ||A||_F^2 is summed
 * exactly from the sparse part and the fill, with no spectrum needed.
 *
 * Two solvers:
 *  - dense: A is formed (double) and factored by LAPACK dgesdd;
 *  - randomized (Halko, Martinsson & Tropp 2011, alg. 4.4 and 5.1):
 *      Y = orth(A Omega), Omega Gaussian n x l, l = k + oversampling;
 *      q times: Z = orth(A^T Y), Y = orth(A Z);
 *      B = Y^T A = (A^T Y)^T = U_B Sigma V^T (dgesdd), U = Y U_B.
 *    Products never form A: A X = S X + c (f (1^T X) + 1 (g^T X)) with
 *    S = P_Omega(R - F) evaluated entry by entry from the CSR and the fill
 *    (c = add_fill). A^T has the same form with rows and columns (and f
 *    and g) exchanged, so one kernel serves both directions, over the CSR
 *    by row and the CSR by column.
 * orth(): a row-major rows x l block is the column-major l x rows matrix
 * Y^T; its LQ factorization gives the orthonormal basis.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "internal.h"

#define ROW_BLOCK 256 /* rows per unit of parallel work */
#define PREFETCH 8      /* entries ahead whose row of X is fetched early */

/* BLAS and LAPACK run here outside OpenMP regions, with n_threads threads
 * (the one knob; OpenBLAS's own default oversubscribes a busy machine),
 * through the arbiter of blas.h. */

static int all_finite(const double *x, int64_t n)
{
    for (int64_t t = 0; t < n; t++)
        if (!isfinite(x[t]))
            return 0;
    return 1;
}

/* Checks every function below starts with; need_cols for the transpose. */
static int check_input(const mfr_svd_input *a, int need_cols)
{
    const mfr_csr *R = &a->rows;
    int status = mfr_csr_check(R);
    if (status != MFR_OK)
        return status;
    if (!R->values || !a->row_fill || !a->col_fill || R->n_rows < 1 || R->n_cols < 1)
        return MFR_EINVAL;
    if (!all_finite(a->row_fill, R->n_rows) || !all_finite(a->col_fill, R->n_cols))
        return MFR_ENONFINITE;
    if (need_cols) {
        if ((status = mfr_csr_check(&a->cols)) != MFR_OK)
            return status;
        return mfr_csr_check_transpose(R, &a->cols);
    }
    return MFR_OK;
}

/* ---- baseline fill ------------------------------------------------------- */

/* bias[r] = sum_j (v_j - mu - other[c_j]) / (reg + count) for every row. */
static void bias_pass(const mfr_csr *a, const double *other, double mu, double reg,
                      double *bias, int threads)
{
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int32_t r = 0; r < a->n_rows; r++) {
        double sum = 0.0;
        for (int64_t j = a->indptr[r]; j < a->indptr[r + 1]; j++)
            sum += (double)a->values[j] - mu - other[a->indices[j]];
        const double den = reg + (double)(a->indptr[r + 1] - a->indptr[r]);
        bias[r] = den > 0.0 ? sum / den : 0.0;
    }
}

int mfr_baseline_biases(const mfr_csr *by_user, const mfr_csr *by_item, double mu,
                        double reg_user, double reg_item, int passes,
                        double *user_bias, double *item_bias, int n_threads)
{
    int status;
    if (!isfinite(mu) || !(reg_user >= 0.0) || !(reg_item >= 0.0) || !isfinite(reg_user) ||
        !isfinite(reg_item) || passes < 1 || !by_user->values)
        return MFR_EINVAL;
    if ((status = mfr_csr_check(by_user)) != MFR_OK ||
        (status = mfr_csr_check(by_item)) != MFR_OK ||
        (status = mfr_csr_check_transpose(by_user, by_item)) != MFR_OK)
        return status;
    const int threads = mfr_threads(n_threads);
    memset(user_bias, 0, (size_t)by_user->n_rows * sizeof *user_bias);
    for (int pass = 0; pass < passes; pass++) {
        bias_pass(by_item, user_bias, mu, reg_item, item_bias, threads);
        bias_pass(by_user, item_bias, mu, reg_user, user_bias, threads);
    }
    return MFR_OK;
}

/* ---- ||A||_F^2 and the dense matrix ------------------------------------ */

int mfr_svd_frobenius2(const mfr_svd_input *a, double *out)
{
    int status = check_input(a, 0);
    if (status != MFR_OK)
        return status;
    const mfr_csr *R = &a->rows;
    const double *f = a->row_fill, *g = a->col_fill;
    double obs = 0.0, fill_obs = 0.0; /* fixed order: exact and repeatable */
    for (int32_t u = 0; u < R->n_rows; u++)
        for (int64_t j = R->indptr[u]; j < R->indptr[u + 1]; j++) {
            const double r = R->values[j], F = f[u] + g[R->indices[j]];
            if (a->add_fill) {
                obs += r * r;
                fill_obs += F * F;
            } else {
                obs += (r - F) * (r - F);
            }
        }
    if (a->add_fill) {
        /* ||F||^2 = n sum f^2 + m sum g^2 + 2 (sum f)(sum g); the filled
         * entries contribute ||F||^2 minus F's observed entries. */
        double sf = 0.0, sf2 = 0.0, sg = 0.0, sg2 = 0.0;
        for (int32_t u = 0; u < R->n_rows; u++) {
            sf += f[u];
            sf2 += f[u] * f[u];
        }
        for (int32_t i = 0; i < R->n_cols; i++) {
            sg += g[i];
            sg2 += g[i] * g[i];
        }
        const double full = R->n_cols * sf2 + R->n_rows * sg2 + 2.0 * sf * sg;
        obs += MFR_MAX(0.0, full - fill_obs);
    }
    *out = obs;
    return MFR_OK;
}

int mfr_svd_densify(const mfr_svd_input *a, double *out, int n_threads)
{
    int status = check_input(a, 0);
    if (status != MFR_OK)
        return status;
    const mfr_csr *R = &a->rows;
    const int64_t n = R->n_cols;
    const double *f = a->row_fill, *g = a->col_fill;
#pragma omp parallel for schedule(static) num_threads(mfr_threads(n_threads))
    for (int32_t u = 0; u < R->n_rows; u++) {
        double *row = out + (int64_t)u * n;
        for (int64_t i = 0; i < n; i++)
            row[i] = a->add_fill ? f[u] + g[i] : 0.0;
        for (int64_t j = R->indptr[u]; j < R->indptr[u + 1]; j++) {
            const int32_t i = R->indices[j];
            row[i] = a->add_fill ? (double)R->values[j] : R->values[j] - (f[u] + g[i]);
        }
    }
    return MFR_OK;
}

/* ---- dense SVD ----------------------------------------------------------- */

/* Sign convention: the entry of largest magnitude of each v_j is positive. */
static void fix_signs(int32_t m, int32_t n, int32_t k, double *U, double *V)
{
    for (int32_t c = 0; c < k; c++) {
        int32_t best = 0;
        for (int32_t i = 1; i < n; i++)
            if (fabs(V[(int64_t)i * k + c]) > fabs(V[(int64_t)best * k + c]))
                best = i;
        if (V[(int64_t)best * k + c] < 0.0) {
            for (int32_t i = 0; i < n; i++)
                V[(int64_t)i * k + c] = -V[(int64_t)i * k + c];
            for (int32_t u = 0; u < m; u++)
                U[(int64_t)u * k + c] = -U[(int64_t)u * k + c];
        }
    }
}

/* dgesdd with jobz = "S" on a column-major rows x cols matrix, workspace
 * allocated here. */
static int gesdd(blas_int rows, blas_int cols, double *a, double *s, double *u, double *vt)
{
    const blas_int lda = rows, ldu = rows, ldvt = MFR_MIN(rows, cols);
    blas_int lwork = -1, info = 0;
    double query = 0.0, *work = NULL;
    blas_int *iwork = malloc(8 * (size_t)ldvt * sizeof *iwork);
    if (!iwork)
        return MFR_ENOMEM;
    MFR_BLAS(dgesdd_)("S", &rows, &cols, a, &lda, s, u, &ldu, vt, &ldvt, &query, &lwork,
                      iwork, &info, 1);
    int status = info != 0 ? MFR_ELAPACK : MFR_OK;
    if (status == MFR_OK && !(query < (double)INT32_MAX))
        status = MFR_ENOMEM; /* the workspace exceeds LAPACK's 32-bit sizes */
    if (status == MFR_OK) {
        lwork = (blas_int)query + 1;
        work = malloc((size_t)lwork * sizeof *work);
        if (!work)
            status = MFR_ENOMEM;
    }
    if (status == MFR_OK) {
        MFR_BLAS(dgesdd_)("S", &rows, &cols, a, &lda, s, u, &ldu, vt, &ldvt, work, &lwork,
                          iwork, &info, 1);
        if (info != 0)
            status = MFR_ELAPACK;
    }
    free(work);
    free(iwork);
    return status;
}

int mfr_svd_dense(double *a, int32_t m, int32_t n, int32_t k, double *s, double *U,
                  double *V, int n_threads)
{
    if (m < 1 || n < 1 || k < 1 || k > MFR_MIN(m, n) || (int64_t)m * n > INT32_MAX)
        return MFR_EINVAL;
    if (!all_finite(a, (int64_t)m * n))
        return MFR_ENONFINITE;
    const int32_t r = MFR_MIN(m, n);
    int status = MFR_OK;
    /* Row-major A is column-major A^T (n x m) = U' S VT', so
     * A = VT'^T S U'^T: VT' (r x m) read row-major is U, and U' (n x r)
     * holds V column by column. */
    double *up = malloc((size_t)n * r * sizeof *up);
    double *vtp = malloc((size_t)r * m * sizeof *vtp);
    if (!up || !vtp) {
        status = MFR_ENOMEM;
        goto cleanup;
    }
    mfr_blas_threads_enter(mfr_threads(n_threads));
    status = gesdd(n, m, a, s, up, vtp);
    mfr_blas_threads_leave();
    if (status != MFR_OK)
        goto cleanup;
    for (int64_t u = 0; u < m; u++)
        for (int32_t c = 0; c < k; c++)
            U[u * k + c] = vtp[u * r + c];
    for (int64_t i = 0; i < n; i++)
        for (int32_t c = 0; c < k; c++)
            V[i * k + c] = up[(int64_t)c * n + i];
    fix_signs(m, n, k, U, V);
cleanup:
    free(up);
    free(vtp);
    return status;
}

/* ---- randomized SVD ------------------------------------------------------ */

mfr_svd_params mfr_svd_default_params(void)
{
    mfr_svd_params p = {20, 20, 0, 1};
    return p;
}

/* Rows [begin, end) of Y = S X (+ the fill's part), S from (a, rf, cf):
 * y_r = sum_j (v_j - rf[r] - cf[c_j]) x_{c_j}  (+ rf[r] ones_x + cf_x). */
MFR_TARGET_CLONES
static void times_rows(const mfr_csr *a, const double *rf, const double *cf,
                       const double *X, int32_t l, const double *ones_x,
                       const double *cf_x, double *Y, int32_t begin, int32_t end)
{
    for (int32_t r = begin; r < end; r++) {
        double *restrict y = Y + (int64_t)r * l;
        for (int32_t t = 0; t < l; t++)
            y[t] = ones_x ? rf[r] * ones_x[t] + cf_x[t] : 0.0;
        const int64_t end = a->indptr[r + 1];
        for (int64_t j = a->indptr[r]; j < end; j++) {
            const int32_t c = a->indices[j];
            const double sv = (double)a->values[j] - rf[r] - cf[c];
            const double *restrict x = X + (int64_t)c * l;
            if (j + PREFETCH < a->nnz) { /* rows of X are read at random */
                const double *next = X + (int64_t)a->indices[j + PREFETCH] * l;
                for (int32_t t = 0; t < l; t += 8)
                    __builtin_prefetch(next + t);
            }
#pragma omp simd
            for (int32_t t = 0; t < l; t++)
                y[t] += sv * x[t];
        }
    }
}

/* Y (a->n_rows x l) = A X for A = P_Omega(R - F) + add_fill F, with
 * F = rf 1^T + 1 cf^T: the fill's part is rf (1^T X) + 1 (cf^T X).
 * scratch: 2 l doubles. */
static void times(const mfr_csr *a, const double *rf, const double *cf, int add_fill,
                  const double *X, int32_t l, double *scratch, double *Y, int threads)
{
    double *ones_x = NULL, *cf_x = NULL;
    if (add_fill) {
        ones_x = scratch;
        cf_x = scratch + l;
        memset(scratch, 0, 2 * (size_t)l * sizeof *scratch);
        for (int32_t c = 0; c < a->n_cols; c++) /* fixed order */
            for (int32_t t = 0; t < l; t++) {
                ones_x[t] += X[(int64_t)c * l + t];
                cf_x[t] += cf[c] * X[(int64_t)c * l + t];
            }
    }
    const int32_t blocks = (a->n_rows + ROW_BLOCK - 1) / ROW_BLOCK;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int32_t b = 0; b < blocks; b++)
        times_rows(a, rf, cf, X, l, ones_x, cf_x, Y, b * ROW_BLOCK,
                   MFR_MIN(a->n_rows, (b + 1) * ROW_BLOCK));
}

/* Q (rows x l, row-major) with orthonormal columns spanning those of Y,
 * which is destroyed. Y^T (column-major l x rows) = L Q^T by the blocked,
 * recursive LQ factorization dgelqt (BLAS-3; dgelqf's unblocked path for
 * l < 128 is BLAS-2 and several times slower), and Q^T = [I 0] Q_full is
 * applied by dgemlqt. tw: 2 l^2 doubles (T and workspace). */
static int orth(double *Y, double *Q, int32_t rows, int32_t l, double *tw)
{
    blas_int M = l, N = rows, K = l, ld = l, info = 0;
    double *T = tw, *work = tw + (size_t)l * l;
    MFR_BLAS(dgelqt_)(&M, &N, &K, Y, &ld, T, &ld, work, &info);
    if (info != 0)
        return MFR_ELAPACK;
    memset(Q, 0, (size_t)rows * l * sizeof *Q);
    for (int32_t a = 0; a < l; a++)
        Q[(int64_t)a * l + a] = 1.0;
    MFR_BLAS(dgemlqt_)("R", "N", &M, &N, &K, &K, Y, &ld, T, &ld, Q, &ld, work, &info, 1, 1);
    return info != 0 ? MFR_ELAPACK : MFR_OK;
}

/* Gaussian n x l, one RNG stream per block of MFR_RNG_BLOCK rows. */
static void gaussian(double *Z, int32_t n, int32_t l, uint64_t seed, int threads)
{
    const int32_t blocks = (n + MFR_RNG_BLOCK - 1) / MFR_RNG_BLOCK;
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int32_t b = 0; b < blocks; b++) {
        mfr_rng rng;
        mfr_rng_seed(&rng, seed, (uint64_t)b);
        const int64_t end = (int64_t)MFR_MIN(n, (b + 1) * MFR_RNG_BLOCK) * l;
        for (int64_t t = (int64_t)b * MFR_RNG_BLOCK * l; t < end; t++)
            Z[t] = mfr_rng_normal(&rng);
    }
}

int mfr_svd_randomized(const mfr_svd_input *a, int32_t k, const mfr_svd_params *p,
                       double *s, double *U, double *V)
{
    int status = check_input(a, 1);
    if (status != MFR_OK)
        return status;
    const int32_t m = a->rows.n_rows, n = a->rows.n_cols;
    if (k < 1 || k > MFR_MIN(m, n) || p->oversampling < 0 || p->power_iterations < 0)
        return MFR_EINVAL;
    const int32_t l = (int32_t)MFR_MIN((int64_t)k + p->oversampling, MFR_MIN(m, n));
    if ((int64_t)l * MFR_MAX(m, n) > INT32_MAX)
        return MFR_EINVAL; /* beyond LAPACK's 32-bit indexing */
    const int threads = mfr_threads(p->n_threads);
    mfr_blas_threads_enter(threads);
    const double *f = a->row_fill, *g = a->col_fill;
    /* products land in Y (m x l) and Z (n x l); orth() puts bases in Yq, Zq */
    double *Y = malloc((size_t)m * l * sizeof *Y), *Yq = malloc((size_t)m * l * sizeof *Yq);
    double *Z = malloc((size_t)n * l * sizeof *Z), *Zq = malloc((size_t)n * l * sizeof *Zq);
    double *tw = malloc(2 * (size_t)l * l * sizeof *tw), *ub = malloc((size_t)l * l * sizeof *ub);
    double *sl = malloc((size_t)l * sizeof *sl);
    double *scratch = malloc(2 * (size_t)l * sizeof *scratch);
    if (!Y || !Yq || !Z || !Zq || !tw || !ub || !sl || !scratch) {
        status = MFR_ENOMEM;
        goto cleanup;
    }
    gaussian(Z, n, l, p->seed, threads);
    times(&a->rows, f, g, a->add_fill, Z, l, scratch, Y, threads);
    if ((status = orth(Y, Yq, m, l, tw)) != MFR_OK)
        goto cleanup;
    for (int32_t it = 0; it < p->power_iterations; it++) {
        times(&a->cols, g, f, a->add_fill, Yq, l, scratch, Z, threads);
        if ((status = orth(Z, Zq, n, l, tw)) != MFR_OK)
            goto cleanup;
        times(&a->rows, f, g, a->add_fill, Zq, l, scratch, Y, threads);
        if ((status = orth(Y, Yq, m, l, tw)) != MFR_OK)
            goto cleanup;
    }
    /* Z = A^T Yq = B^T (n x l row-major), i.e. B = Yq^T A (l x n) column-major;
     * B = U_B S V^T with V^T (l x n, column-major) written over Zq */
    times(&a->cols, g, f, a->add_fill, Yq, l, scratch, Z, threads);
    if ((status = gesdd(l, n, Z, sl, ub, Zq)) != MFR_OK)
        goto cleanup;
    memcpy(s, sl, (size_t)k * sizeof *s);
    /* U = Yq U_B[:, :k]; U_B column-major is row-major U_B^T (k of its rows) */
    MFR_BLAS(cblas_dgemm)(MfrRowMajor, MfrNoTrans, MfrTrans, m, k, l, 1.0, Yq, l, ub, l,
                          0.0, U, k);
    /* V^T column-major (l x n) read row-major is V (n x l) */
    for (int64_t i = 0; i < n; i++)
        for (int32_t c = 0; c < k; c++)
            V[i * k + c] = Zq[i * l + c];
    fix_signs(m, n, k, U, V);
cleanup:
    mfr_blas_threads_leave();
    free(Y);
    free(Yq);
    free(Z);
    free(Zq);
    free(tw);
    free(ub);
    free(sl);
    free(scratch);
    return status;
}
