/*
 * mfrec.h - the whole public C API of the mfrec core.
 *
 * Conventions
 *   - Every function returns an int status (MFR_OK or a negative MFR_E* code);
 *     mfr_strerror() names it. The core never prints, exits or raises signals.
 *   - There is no global state: functions work on caller-owned buffers.
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

const char *mfr_strerror(int status);
const char *mfr_version(void);
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
/* uniform integer in [0, n), unbiased; n > 0 */
uint64_t mfr_rng_below(mfr_rng *rng, uint64_t n);
/* a uniformly random permutation of 0..n-1 into perm */
void mfr_rng_permutation(mfr_rng *rng, int64_t n, int64_t *perm);

#define MFR_INIT_UNIFORM 0 /* U[0, scale), as the documents' rand * 0.01 */
#define MFR_INIT_NORMAL 1  /* N(0, scale^2) */
/* Fill an n x k matrix; rows in blocks of MFR_RNG_BLOCK, one stream each. */
#define MFR_RNG_BLOCK 1024
int mfr_init_factors(float *x, int64_t n, int32_t k, int kind, float scale,
                     uint64_t seed, uint64_t stream);

/* ---- ratings (ratings.c) ----------------------------------------------
 * Compressed rows: row r's entries are indices/values[indptr[r]..indptr[r+1]),
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
/* COO -> CSR with columns sorted within rows (two stable counting sorts).
 * indptr has n_rows + 1 entries, indices/values nnz; vals may be NULL.
 * MFR_EDUPLICATE if a (row, col) pair repeats. */
int mfr_csr_from_coo(int64_t nnz, const int32_t *rows, const int32_t *cols,
                     const float *vals, int32_t n_rows, int32_t n_cols,
                     int64_t *indptr, int32_t *indices, float *values);

/* ---- the factor model shared by every algorithm ----------------------
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

/* ---- metrics (metrics.c) ---------------------------------------------- */
int mfr_rmse_mae(int64_t n, const float *pred, const float *truth,
                 double *rmse, double *mae);

/* ---- SGD (sgd.c) ------------------------------------------------------ */
typedef struct {
    float learning_rate;
    float regularization; /* L2 on P, Q and the biases */
    int biases;           /* update user/item biases (global mean fixed) */
    int n_threads;
    uint64_t seed;
} mfr_sgd_params;

mfr_sgd_params mfr_sgd_default_params(void);
/* One epoch over the nnz ratings in an order shuffled from (seed, epoch).
 * n_threads == 1: plain sequential SGD, bit-for-bit repeatable.
 * n_threads > 1: the matrix is cut into a grid of blocks and threads update
 * blocks that share no user and no item (LIBMF-style), repeatable for a
 * fixed thread count. *loss gets the mean squared error of the updates
 * (errors measured before each update). MFR_EDIVERGED if values blow up. */
int mfr_sgd_epoch(mfr_model *m, const mfr_sgd_params *p, int64_t nnz,
                  const int32_t *users, const int32_t *items,
                  const float *ratings, int epoch, double *loss);

/* ---- truncated SVD (svd.c) -------------------------------------------- */

/* ---- NMF (nmf.c) ------------------------------------------------------ */

/* ---- top-N (topn.c) --------------------------------------------------- */

/* ---- ALS family (als.c) ----------------------------------------------- */

#endif /* MFREC_H */
