/*
 * mfrec.h - the whole public C API of the mfrec core.
 *
 * Conventions
 *   - Every function returns an int status (MFR_OK or a negative MFR_E* code);
 *     mfr_strerror() names it. The core never prints, exits or raises signals.
 *   - There is no global state: functions work on caller-owned buffers. The
 *     one exception guards a setting global to the process anyway,
 *     OpenBLAS's thread count: concurrent calls share one save and restore
 *     of it (blas.c).
 *   - Indices are contiguous int32 (0..n-1). Factors are float32, row-major
 *     (n x k); long sums accumulate in double. The SVD works in double.
 *   - n_threads <= 0 means "all available"; larger counts than
 *     MFR_MAX_THREADS are capped to it. Inside OpenMP regions BLAS runs
 *     single-threaded (mfr_blas_threads_*).
 */
#ifndef MFREC_H
#define MFREC_H

#include <stddef.h>
#include <stdint.h>

#define MFR_VERSION_MAJOR 0
#define MFR_VERSION_MINOR 1
#define MFR_VERSION_PATCH 0
#define MFR_VERSION_STRING "0.1.0"

/* More threads than this is a mistake, and asking OpenMP for thousands
 * kills the process when thread creation fails. */
#define MFR_MAX_THREADS 256

/* ---- status codes ---------------------------------------------------- */
#define MFR_OK 0
#define MFR_EINVAL (-1)    /* an argument is out of range */
#define MFR_ENOMEM (-2)    /* allocation failed */
#define MFR_EDIVERGED (-3) /* the iteration produced non-finite values */
#define MFR_EINDEX (-4)    /* an index is negative or >= its dimension */
#define MFR_EDUPLICATE (-5)/* a (row, column) pair occurs twice */
#define MFR_ENONFINITE (-6)/* an input value is NaN or infinite */
#define MFR_ELAPACK (-7)   /* LAPACK reported a failure */
#define MFR_ENOTPD (-8)    /* a matrix that must be positive definite is not */
#define MFR_ERANGE (-9)    /* a result exceeds the float32 range */

const char *mfr_strerror(int status);
const char *mfr_version(void);
/* The OpenBLAS build configuration and the name of the kernel it selected
 * for this CPU (blas.c). */
void mfr_blas_info(const char **config, const char **corename);
/* The instruction-set variant the multi-versioned kernels run:
 * "x86-64-v4 (AVX-512)", "x86-64-v3 (AVX2+FMA)" or "default". */
const char *mfr_simd_variant(void);

/* ---- random numbers (rng.c) -------------------------------------------
 * xoshiro256** seeded through splitmix64. (seed, stream) pairs give
 * independent, platform-independent sequences; parallel code takes one
 * stream per fixed-size block of rows, never per thread. */
typedef struct {
    uint64_t s[4];
} mfr_rng;

void mfr_rng_seed(mfr_rng *rng, uint64_t seed, uint64_t stream);
uint64_t mfr_rng_next(mfr_rng *rng);
/* uniform in [0, 1) with 24 random bits */
float mfr_rng_uniform(mfr_rng *rng);
/* standard normal (Box-Muller, one value per call) */
double mfr_rng_normal(mfr_rng *rng);
/* two independent standard normals (the polar method: cheaper per draw) */
void mfr_rng_normal_pair(mfr_rng *rng, double out[2]);
/* uniform integer in [0, n), unbiased; n > 0 */
uint64_t mfr_rng_below(mfr_rng *rng, uint64_t n);
/* a uniformly random permutation of 0..n-1 into perm */
void mfr_rng_permutation(mfr_rng *rng, int64_t n, int64_t *perm);
/* The same permutation, as int32 (n <= INT32_MAX). */
void mfr_rng_permutation32(mfr_rng *rng, int32_t n, int32_t *perm);

#define MFR_INIT_UNIFORM 0 /* U[0, scale), as the documents' rand * 0.01 */
#define MFR_INIT_NORMAL 1  /* N(0, scale^2), scale <= MFR_INIT_NORMAL_MAX_SCALE */
#define MFR_INIT_NORMAL_MAX_SCALE 1e37f  /* FLT_MAX / 34: every draw finite */
/* Fill an n x k matrix; rows in blocks of MFR_RNG_BLOCK, one stream each. */
#define MFR_RNG_BLOCK 1024
int mfr_init_factors(float *x, int64_t n, int32_t k, int kind, float scale,
                     uint64_t seed, uint64_t stream);

/* ---- ratings (ratings.c) ----------------------------------------------
 * Compressed rows (CSR): row r's entries are indices/values[indptr[r]..indptr[r+1]),
 * columns ascending. A CSC by item is the CSR of the transpose. */
typedef struct {
    int32_t n_rows, n_cols;
    int64_t nnz;
    const int64_t *indptr;
    const int32_t *indices;
    const float *values; /* may be NULL (binary data) */
} mfr_csr;

/* Check that every index lies in [0, n) and every value is finite. */
int mfr_check_triplets(int64_t nnz, const int32_t *rows, int32_t n_rows,
                       const int32_t *cols, int32_t n_cols, const float *vals);
/* COO -> CSR with columns sorted within rows (a counting sort by row, then
 * each row by column; no temporary the size of the triplets). indptr has
 * n_rows + 1 entries, indices/values nnz; vals may be NULL. MFR_EINDEX for
 * an index out of range, MFR_EDUPLICATE if a (row, col) pair repeats,
 * MFR_EINVAL if the triplets change while it runs. */
int mfr_csr_from_coo(int64_t nnz, const int32_t *rows, const int32_t *cols,
                     const float *vals, int32_t n_rows, int32_t n_cols,
                     int64_t *indptr, int32_t *indices, float *values);
/* MFR_OK if a is a valid CSR: indptr rises from 0 to nnz, indices lie in
 * [0, n_cols) and ascend strictly within a row, values are finite. */
int mfr_csr_check(const mfr_csr *a);
/* The transpose of a (n_cols x n_rows): indptr has a->n_cols + 1 entries,
 * indices/values a->nnz; values may be NULL (not written), a->values too
 * (ones). Each row's columns ascend; when a has passed mfr_csr_check the
 * result is what mfr_csr_from_coo builds from a's triplets swapped, byte
 * for byte. MFR_EINDEX for an index outside [0, n_cols). n_threads as
 * elsewhere; the result does not depend on it. */
int mfr_csr_transpose(const mfr_csr *a, int n_threads, int64_t *indptr, int32_t *indices,
                      float *values);
/* MFR_OK if b holds exactly the entries of a, transposed; MFR_EINVAL if
 * not. Both must have passed mfr_csr_check. O(nnz). */
int mfr_csr_check_transpose(const mfr_csr *a, const mfr_csr *b);

/* ---- id vocabulary (vocab.c) -------------------------------------------
 * The distinct values among n records of `width` bytes (record j at
 * records + j * width), numbered 0, 1, ... in order of first occurrence:
 * codes[j] (n entries) is record j's number, first[c] (room for n entries)
 * the index of number c's first occurrence, *n_unique how many there are.
 * Records are equal when their bytes are, as NumPy's NUL-padded str and
 * bytes arrays compare. Expected O(n * width) time (a hash table), memory
 * O(n_unique * width). MFR_EINVAL if width < 1 or there are more than
 * INT32_MAX distinct records. */
int mfr_factorize_records(int64_t n, const void *records, size_t width, int32_t *codes,
                          int64_t *first, int64_t *n_unique);

/* ---- the factor model shared by every algorithm (predict.c) ----------
 * prediction(u, i) = global_mean + user_bias[u] + item_bias[i] + P[u] . Q[i]
 * Bias pointers may be NULL (no bias). An index of -1 means "unknown": its
 * factor and bias terms are left out (baseline fallback). */
typedef struct {
    int32_t n_users, n_items, k;
    float *P;         /* n_users x k */
    float *Q;         /* n_items x k */
    float *user_bias; /* n_users, or NULL */
    float *item_bias; /* n_items, or NULL */
    double global_mean;
} mfr_model;

int mfr_predict(const mfr_model *m, int64_t n, const int32_t *users,
                const int32_t *items, float *out, int n_threads);
/* *sse = the sum over the entries (u, i, r) of R (n_users x n_items, ratings
 * by user, having passed mfr_csr_check) of (prediction(u, i) - r)^2, each
 * prediction the float mfr_predict returns, the squares summed in double:
 * per block of rows in entry order, then the blocks in order, so the sum
 * does not depend on n_threads. Inf or NaN if a prediction is; MFR_EINVAL
 * if R's shape is not the model's or R has no values. */
int mfr_predict_sse(const mfr_model *m, const mfr_csr *R, int n_threads, double *sse);

/* ---- metrics (metrics.c) ---------------------------------------------- */
int mfr_rmse_mae(int64_t n, const float *pred, const float *truth,
                 double *rmse, double *mae);

/* Ranking metrics at k for n_users recommendation lists.
 * recommended: n_users x k item indices in [0, n_items), best first; -1
 * marks an empty rank (a list shorter than k). An item may appear at most
 * once in a list (MFR_EDUPLICATE if a relevant one repeats).
 * relevant: CSR (rel_indptr: n_users + 1) of each user's relevant labels,
 * strictly ascending; labels >= n_items stand for relevant items the
 * recommender cannot know (they count in recall's denominator, never hit).
 * Per user with R >= 1 relevant labels and h hits in the first k ranks:
 *   precision = h / k, recall = h / R, hit = (h > 0),
 *   ndcg = sum_{hits at rank t} 1/log2(t + 2) / sum_{t < min(k, R)} 1/log2(t + 2),
 *   ap   = sum_{hits at rank t} (hits up to t) / (t + 1) / min(k, R)  (MAP@k).
 * per_user (n_users x MFR_RANK_METRICS, caller-owned) gets these values in
 * that order; users with no relevant label get NaN and are left out of the
 * means. coverage = distinct items over all lists / n_items. Parallel over
 * users; the means are summed in user order, so they do not depend on
 * n_threads. */
#define MFR_RANK_METRICS 5
typedef struct {
    double precision, recall, ndcg, map, hit_rate; /* means over users with R >= 1 */
    double coverage;
    int64_t n_evaluated; /* users with R >= 1 */
} mfr_ranking;

int mfr_ranking_metrics(int64_t n_users, int32_t k, const int32_t *recommended,
                        const int64_t *rel_indptr, const int32_t *rel_indices,
                        int32_t n_items, double *per_user, mfr_ranking *out,
                        int n_threads);

/* ---- SGD (sgd.c) ------------------------------------------------------ */
typedef struct {
    float learning_rate;
    float regularization; /* L2 on P, Q and the biases */
    int biases;           /* update user/item biases (global mean fixed) */
    int n_threads;
    uint64_t seed;
    int32_t negatives;     /* unrated items drawn per rating each epoch (0: none) */
    float negative_rating; /* the value they are trained towards */
} mfr_sgd_params;

mfr_sgd_params mfr_sgd_default_params(void);
/* One epoch over the nnz ratings in an order shuffled from (seed, epoch).
 * n_threads == 1: plain sequential SGD, bit-for-bit repeatable.
 * n_threads > 1: the matrix is cut into a grid of blocks and threads update
 * blocks that share no user and no item (LIBMF-style), repeatable for a
 * fixed thread count. *loss gets the mean squared error of the updates
 * (errors measured before each update). MFR_EDIVERGED if values blow up.
 * Negative sampling (p->negatives = s > 0): the epoch also trains, for each
 * rating, s items drawn uniformly from those its user has not rated, towards
 * p->negative_rating; rated is the CSR by user of the training pairs,
 * having passed mfr_csr_check (columns ascending), needed only then. In expectation an epoch weighs
 * each unrated pair of user u by w_u = s n_u / (n_items - n_u) against 1
 * for a rating: weighted MF's unobserved term, drawn instead of summed. */
int mfr_sgd_epoch(mfr_model *m, const mfr_sgd_params *p, int64_t nnz,
                  const int32_t *users, const int32_t *items,
                  const float *ratings, const mfr_csr *rated, int epoch, double *loss);

/* ---- side features (features.c, sgd.c) --------------------------------
 * Features of users or items (movie genres, say), as SVDFeature and
 * LightFM use them: row r of the weight matrix X (CSR, n_rows x
 * n_features; the caller normalizes rows, e.g. to a mean) adds
 * sum_f X[r,f] V[f] to the row's free factor vector and, with biases,
 * sum_f X[r,f] c[f] to its free bias. A row without a single rating gets
 * its factors from its features alone (cold start). */
typedef struct {
    mfr_csr x;     /* n_rows x n_features; values are the weights (not NULL) */
    float *V;      /* n_features x k: the features' factor vectors */
    float *bias;   /* n_features, or NULL: the features' biases */
} mfr_features;

/* Check X: n_rows rows, at least one feature, a valid CSR with weights
 * (mfr_csr_check: columns ascending within a row, finite values). */
int mfr_features_check(const mfr_features *f, int32_t n_rows);
/* The effective rows: eff = free + X V (n_rows x k) and, when free_bias
 * and eff_bias are both given, eff_bias = free_bias + X c (c = f->bias,
 * taken as 0 when NULL). Models keep the
 * free and feature parts apart and write the effective ones into the
 * shared mfr_model, so prediction and top-N need no change. */
int mfr_features_apply(const mfr_features *f, int32_t k, const float *free,
                       const float *free_bias, float *eff, float *eff_bias,
                       int n_threads);
/* One SGD epoch of the model whose user row is p_u + sum_a X_ua Z_a and
 * whose item row is q_i + sum_g Y_ig W_g (user_f / item_f may be NULL):
 * m holds the free P, Q and biases, and the feature vectors and biases are
 * updated with them (see sgd.c). The shuffled order is that of
 * mfr_sgd_epoch with one thread; the epoch is sequential, because feature
 * vectors are shared by rows that any block of ratings may touch, so
 * p->n_threads is not used. */
int mfr_sgd_epoch_features(mfr_model *m, const mfr_features *user_f,
                           const mfr_features *item_f, const mfr_sgd_params *p,
                           int64_t nnz, const int32_t *users, const int32_t *items,
                           const float *ratings, const mfr_csr *rated, int epoch,
                           double *loss);

/* ---- truncated SVD (svd.c) --------------------------------------------
 * The matrix factored is built from ratings R observed on a set Omega and
 * a fill F = f 1^T + 1 g^T of rank <= 2 (f: one value per row, g: one per
 * column; e.g. the baseline mu + b_u + b_i):
 *   add_fill = 0:  A = P_Omega(R - F)       the residual of the fill
 *   add_fill = 1:  A = P_Omega(R - F) + F   the filled matrix itself
 * (P_Omega keeps the observed entries and zeroes the others). Only
 * mfr_svd_densify forms A; the randomized solver multiplies the sparse
 * residual and the rank-2 fill separately. Everything here is double.
 * Outputs are row-major: U (n_rows x k), V (n_cols x k) with orthonormal
 * columns, singular values descending; each pair (u_j, v_j) is signed so
 * that the entry of v_j of largest magnitude is positive. */
typedef struct {
    mfr_csr rows;           /* the ratings by row (values required) */
    mfr_csr cols;           /* the same ratings by column (randomized only) */
    const double *row_fill; /* f: rows.n_rows values */
    const double *col_fill; /* g: rows.n_cols values */
    int add_fill;
} mfr_svd_input;

/* Baseline biases by damped alternating passes (item then user each pass):
 *   b_i = sum_{u in R(i)} (r_ui - mu - b_u) / (reg_item + |R(i)|)
 *   b_u = sum_{i in R(u)} (r_ui - mu - b_i) / (reg_user + |R(u)|)
 * from zero; each half-pass minimizes sum (r - mu - b_u - b_i)^2 +
 * reg_user |b_u|^2 + reg_item |b_i|^2 exactly over one set of biases. */
int mfr_baseline_biases(const mfr_csr *by_user, const mfr_csr *by_item, double mu,
                        double reg_user, double reg_item, int passes,
                        double *user_bias, double *item_bias, int n_threads);

/* ||A||_F^2, exactly, from the sparse part and the rank-2 fill. */
int mfr_svd_frobenius2(const mfr_svd_input *a, double *out);
/* A as a dense row-major n_rows x n_cols matrix. */
int mfr_svd_densify(const mfr_svd_input *a, double *out, int n_threads);
/* SVD of a dense row-major m x n matrix `a` (destroyed) through LAPACK
 * dgesdd: s gets all min(m, n) singular values, U (m x k) and V (n x k)
 * the first k singular vectors. MFR_EINVAL if k is not in [1, min(m, n)]
 * or m * n exceeds LAPACK's 32-bit indexing; MFR_ELAPACK if dgesdd fails.
 * BLAS and LAPACK run with n_threads threads here and in the randomized
 * solver (restored after). */
int mfr_svd_dense(double *a, int32_t m, int32_t n, int32_t k, double *s, double *U,
                  double *V, int n_threads);

typedef struct {
    int32_t oversampling;     /* extra columns of the sketch: l = k + this */
    int32_t power_iterations; /* subspace iterations with (A A^T) */
    uint64_t seed;            /* of the Gaussian test matrix */
    int n_threads;
} mfr_svd_params;

mfr_svd_params mfr_svd_default_params(void);
/* Randomized truncated SVD (Halko, Martinsson & Tropp 2011, algorithms
 * 4.4 and 5.1): the range of A is sketched with l = min(k + oversampling,
 * min(m, n)) Gaussian columns and refined by power iterations, with an
 * orthonormalization (LQ) after every product; then B = Q^T A (l x n) is
 * factored densely. s gets k values. The result does not depend on
 * n_threads (rows are independent; sums run in a fixed order). */
int mfr_svd_randomized(const mfr_svd_input *a, int32_t k, const mfr_svd_params *p,
                       double *s, double *U, double *V);

/* ---- NMF (nmf.c) ------------------------------------------------------
 * Non-negative P, Q fitted on the observed ratings only, minimizing
 *   sum (r - mu - b_u - b_i - p_u . q_i)^2 + lambda (sum_u |R(u)| |p_u|^2
 *   + sum_i |R(i)| |q_i|^2) + lambda_b (|b_u|^2 + |b_i|^2)
 * (bias terms only when the model has biases; mu is the model's
 * global_mean). One epoch: exact bias steps (if fitted), then P and Q by
 * multiplicative updates; none of them increases the objective, and P, Q
 * stay >= 0. The model's factors must start non-negative (MFR_EINVAL). */
typedef struct {
    float regularization;      /* lambda, times each row's number of ratings */
    float bias_regularization; /* lambda_b */
    int biases;                /* update the model's user_bias and item_bias */
    int n_threads;
} mfr_nmf_params;

mfr_nmf_params mfr_nmf_default_params(void);
/* One epoch over the ratings by user and the same ratings by item (checked
 * to be transposes). *objective gets the objective after the epoch. */
int mfr_nmf_epoch(mfr_model *m, const mfr_nmf_params *p, const mfr_csr *by_user,
                  const mfr_csr *by_item, double *objective);
/* The objective of the model as it is. */
int mfr_nmf_objective(const mfr_model *m, const mfr_nmf_params *p, const mfr_csr *by_user,
                      const mfr_csr *by_item, double *objective);

/* ---- top-N (topn.c) --------------------------------------------------- */
/* Lists of the n best targets per query, best first: higher score first,
 * ties to the lower index. Row r of items/scores (n_query x n) holds query
 * r's list; counts[r] entries are valid and the rest of the row is padded
 * with index -1 and score NaN (fewer than n targets were left). Targets
 * whose score is NaN or -inf are never listed.
 * Candidates: pool (n_pool strictly ascending item indices) restricts the
 * ranking to those items; pool == NULL ranks every item.
 * Scores are computed for blocks of queries against tiles of targets with
 * sgemm (single-threaded BLAS inside the OpenMP region) and selected with a
 * bounded heap per query; the lists do not depend on n_threads. Batches of
 * 256 or more recommend queries over 2048 or more items scan the items by
 * decreasing factor norm and stop a query's scan once no item left can make
 * its list. sgemm's rounding depends on the shapes, so a score can differ
 * in its last bit between batch sizes (never between thread counts). */
typedef struct {
    int32_t n;       /* list length, >= 1 */
    int32_t *items;  /* n_query x n */
    float *scores;   /* n_query x n */
    int32_t *counts; /* n_query */
} mfr_topn_lists;

/* score(u, i) = mu + b_u + b_i + P[u] . Q[i] (as mfr_predict) for the users
 * (n_query indices; NULL = every user, n_query = n_users), skipping each
 * user's items in `seen` (CSR by user, n_rows = n_users, each row ascending
 * as mfr_csr promises, MFR_EINVAL otherwise; NULL = skip none). */
int mfr_recommend(const mfr_model *m, int64_t n_query, const int32_t *users,
                  const mfr_csr *seen, int32_t n_pool, const int32_t *pool,
                  mfr_topn_lists *out, int n_threads);

/* One list for a user given by a factor vector x (k) and bias b (used when
 * the model has biases): score(i) = mu + b + b_i + x . Q[i], skipping the
 * n_skip items in skip (ascending). */
int mfr_recommend_vector(const mfr_model *m, const float *x, float b,
                         int32_t n_skip, const int32_t *skip, int32_t n_pool,
                         const int32_t *pool, mfr_topn_lists *out);

/* Cosine neighbours among the rows of F (n_rows x k), candidates from pool
 * as above: for each query row q, score(j) = F[q] . F[j] / (|F[q]| |F[j]|),
 * 0 where a norm is 0; q itself is skipped. */
int mfr_similar(int32_t n_rows, int32_t k, const float *F, int64_t n_query,
                const int32_t *query, int32_t n_pool, const int32_t *pool,
                mfr_topn_lists *out, int n_threads);

/* ---- ALS family (als.c) ----------------------------------------------- */
/* One weighted-least-squares half-step: with the other side's factors Y
 * fixed, each row x_i of X becomes the minimizer of
 *   sum_obs c_ij (t_ij - x.y_j)^2 + w0 sum_unobs (x.y_j)^2 + lambda_i |x|^2
 * over the row's stored entries (j, v_ij) of R (n_rows x n_cols), where
 *   c_ij = rw_i cw_j (1 + alpha v_ij)         (rw, cw: side weights, or 1)
 *   t_ij = p_ij - offset - y_bias_j,  p_ij = v_ij, or 1[v_ij > 0] if binary
 *   lambda_i = regularization, times the row's count if scale_regularization.
 * Explicit ALS: w0 = 0, alpha = 0. Weighted MF: alpha = 0, w0 > 0.
 * Implicit feedback (Hu, Koren, Volinsky): w0 = 1, binary, alpha > 0.
 * Biases (x->bias and y->bias both set; only with w0 = 0): the unknowns
 * are (x_i, b_i) with features (y_j, 1), and y_bias moves into t_ij. */
#define MFR_ALS_CHOLESKY 0 /* exact solve of the normal equations */
#define MFR_ALS_CG 1       /* cg_steps conjugate-gradient steps from x_i */

typedef struct {
    float regularization;     /* lambda >= 0 */
    int scale_regularization; /* lambda_i = lambda * count_i (ALS-WR) */
    float unobserved_weight;  /* w0 >= 0 */
    float alpha;              /* confidence slope >= 0 */
    int binary;               /* preference 1[v > 0] instead of v */
    int solver;               /* MFR_ALS_CHOLESKY or MFR_ALS_CG */
    int cg_steps;
    int n_threads;
    int loss;                 /* compute stats->data (one more pass over the rows) */
} mfr_als_params;

mfr_als_params mfr_als_default_params(void);

/* One side of the factorization: factors n x k; bias n or NULL; weights
 * n or NULL (all 1). The solved side is updated in place (its factors
 * are the CG warm start); the other side is only read. gram (read on the
 * other side only, NULL: computed from its factors): k x k, the Gram
 * matrix Y^T Y of the whole side when `factors` holds only the rows that
 * R's columns name (a block's share of a distributed half-step).
 * augmented (with biases, on both sides): factors n x (k + 1), each row
 * (f, 1), the layout the kernel reads the other side in, so that it
 * copies neither side; the solved side's last column is left as it is. */
typedef struct {
    float *factors;
    float *bias;
    const float *weights;
    const float *gram;
    int augmented;
} mfr_als_side;

/* The solved rows' share of the objective at their new values, and where
 * the time went. data: weighted squared errors over all entries of the
 * rows, unobserved ones included (0 unless params.loss); reg: sum
 * lambda_i |x_i|^2 (b_i included); sse: sum over the rows' stored entries
 * of (v - prediction)^2, unweighted, on the raw values v, with the
 * prediction offset + y_bias_j + b_i + x_i.y_j rounded to float as
 * mfr_predict forms it (0 unless params.loss): after the item half-step,
 * the training RMSE is sqrt(sse / nnz). */
typedef struct {
    double data, reg, sse;
    double gram_seconds, solve_seconds;
} mfr_als_stats;

/* MFR_ENOTPD if a row's system is singular (regularization 0 and too few
 * entries); stats may be NULL (no loss computed). Rows run in parallel
 * with BLAS single-threaded; the result does not depend on n_threads. */
int mfr_als_half_step(const mfr_csr *R, int32_t k, mfr_als_side *x, const mfr_als_side *y,
                      float offset, const mfr_als_params *p, mfr_als_stats *stats);

/* ---- fold-in (foldin.c) ----------------------------------------------- */
/* Fold-in: the factors x (k) and bias *b of a new user who rated n items,
 * by ridge regression against the fixed item factors:
 *   min sum_t (r_t - mu - b_{i_t} - b - x . Q[i_t])^2
 *       + w sum_{j unrated} (v - mu - b_j - b - x . Q[j])^2 + lambda (|x|^2 + b^2)
 * (b and b_i only when the model has biases; *b = 0 otherwise; the unrated
 * term only when w = unrated_weight > 0, v = unrated_value: the objective
 * of SGD's negative sampling). The normal equations (A^T C A + lambda I) z
 * = A^T C y, with rows a = [Q[i], 1] and weights C, are solved by Cholesky
 * (LAPACK dposv) in double. lambda > 0, w >= 0; MFR_ENOTPD if the system
 * is not positive definite (lambda too small for these items). MFR_ERANGE
 * if x, b or a score mu + b + b_i + x . Q[i] of any item would leave the
 * float32 range (extreme ratings), rather than infinities. */
int mfr_fold_in(const mfr_model *m, int32_t n, const int32_t *items,
                const float *ratings, double lambda, double unrated_weight,
                double unrated_value, float *x, float *b);

/* ---- Bayesian MF by Gibbs sampling (bayes.c) ----------------------------
 * A side's rows have d = k + 1 columns (k factors, then the bias), in
 * double: free (sampled) and eff = free + the features' part. The
 * prediction is mu + <U_u[0..k), V_i[0..k)> + U_u[k] + V_i[k] (see bayes.c). */
typedef struct {
    mfr_csr R;                /* this side's ratings by row (values required);
                                 n_cols = the other side's rows */
    int32_t d;                /* k + 1 */
    double *free, *eff;       /* n_rows x d each */
    const double *prior_mean; /* d: the rows' prior N(mean, prec^-1) */
    const double *prior_prec; /* d x d */
    double mu, alpha;         /* global mean, noise precision */
    double *gram, *gram_rhs;  /* n_rows x d*d and n_rows x d, or NULL: each row's
                                 sum x x^T and sum x (r - mu - V_i[k]) over its
                                 ratings, x = (V_i[0..k), 1); mfr_bayes_rows
                                 writes them, mfr_bayes_features reads them
                                 (computes them when NULL) */
} mfr_bayes_side;

typedef struct {
    mfr_csr XT;               /* n_features x n_rows: the rows that have each
                                 feature, with their weights (values) */
    const int32_t *group;     /* n_features: each feature's prior group */
    int32_t n_groups;
    double *Y;                /* n_features x d: the features' rows */
    const double *prior_mean; /* n_groups x d */
    const double *prior_prec; /* n_groups x d x d */
} mfr_bayes_group;

/* Gamma(shape, 1) draw (shape > 0). */
double mfr_rng_gamma(mfr_rng *rng, double shape);
/* Draw every free row of s given the other side's effective rows `other`
 * (n_other x d); s->eff moves with them. Streams (seed, stream << 32 | block). */
int mfr_bayes_rows(const mfr_bayes_side *s, const double *other, int32_t n_other,
                   uint64_t seed, uint64_t stream, int n_threads);
/* Draw every feature row of f in order (one stream), s->eff moving with
 * them; n_threads only for the per-row statistics. */
int mfr_bayes_features(const mfr_bayes_side *s, const mfr_bayes_group *f,
                       const double *other, int32_t n_other, uint64_t seed, uint64_t stream,
                       int n_threads);
/* (mean, prec) of a group's prior given its n rows (n x d): Normal-Wishart
 * over columns [0, k), Normal-Gamma for each column in [k, d). prec is d x d
 * (zero off the blocks). */
int mfr_bayes_hyper(const double *rows, int64_t n, int32_t d, int32_t k, uint64_t seed,
                    uint64_t stream, double *mean, double *prec);
/* Draw mu (flat prior) then alpha ~ Gamma(1 + n/2, 1 + SSE/2), from the n
 * residuals' sum and sum of squares at the current mu. */
int mfr_bayes_noise(int64_t n, double sum_e, double sum_e2, double *mu, double *alpha,
                    uint64_t seed, uint64_t stream);
/* out[e] = the prediction for (users[e], items[e]); indices checked by the caller. */
int mfr_bayes_predict(int64_t n, const int32_t *users, const int32_t *items, const double *U,
                      const double *V, int32_t d, double mu, double *out, int n_threads);
/* Per pair e (the context group's per-rating rows): out[e] = A[a[e]] + B[b[e]]
 * (n x d), its last column plus <A[a[e]], B[b[e]]> over [0, d-1); indices
 * checked by the caller. */
int mfr_bayes_pair_rows(int64_t n, const int32_t *a, const int32_t *b, const double *A,
                        const double *B, int32_t d, double *out, int n_threads);

/* ---- ordered probit (ordinal.c) ---------------------------------------
 * Level l in 0..n_levels-1 is observed when z ~ N(pred, 1) falls in
 * (cuts[l-1], cuts[l]] (cuts: n_levels - 1 increasing finite values, the
 * outer ones infinite). Ratings in blocks of 65,536 per random stream. */
/* z[e] ~ N(pred[e], 1) truncated to its level's interval. */
int mfr_ordinal_latent(int64_t n, const double *pred, const int32_t *level, const double *cuts,
                       int32_t n_levels, uint64_t seed, uint64_t stream, double *z,
                       int n_threads);
/* *out = sum_e log P(level[e] | pred[e]) (z integrated out). */
int mfr_ordinal_loglik(int64_t n, const double *pred, const int32_t *level, const double *cuts,
                       int32_t n_levels, double *out, int n_threads);
/* probs (n x n_levels) = the mean over samples s of P(l | pred[e, s],
 * cuts[s]); pred n x n_samples, cuts n_samples x (n_levels - 1). */
int mfr_ordinal_probs(int64_t n, int32_t n_samples, const double *pred, const double *cuts,
                      int32_t n_levels, double *probs, int n_threads);

#endif /* MFREC_H */
