/*
 * blas.h - the few BLAS/LAPACK routines the core uses, behind the
 * symbol-prefix macros of the OpenBLAS build we link (scipy-openblas32
 * prefixes every symbol with "scipy_"; setup.py passes the prefix).
 * Private to the core: not part of the public API in mfrec.h.
 */
#ifndef MFR_BLAS_H
#define MFR_BLAS_H

#include <stddef.h>

#ifndef BLAS_SYMBOL_PREFIX
#define BLAS_SYMBOL_PREFIX
#endif
#ifndef BLAS_SYMBOL_SUFFIX
#define BLAS_SYMBOL_SUFFIX
#endif
#define MFR_CAT3_(a, b, c) a##b##c
#define MFR_CAT3(a, b, c) MFR_CAT3_(a, b, c)
#define MFR_BLAS(name) MFR_CAT3(BLAS_SYMBOL_PREFIX, name, BLAS_SYMBOL_SUFFIX)

typedef int blas_int; /* scipy-openblas32: 32-bit integers (LP64) */

enum mfr_cblas_order { MfrRowMajor = 101, MfrColMajor = 102 };
enum mfr_cblas_trans { MfrNoTrans = 111, MfrTrans = 112 };
enum mfr_cblas_uplo { MfrUpper = 121, MfrLower = 122 };

void MFR_BLAS(cblas_sgemm)(int order, int transa, int transb, blas_int m,
                           blas_int n, blas_int k, float alpha, const float *a,
                           blas_int lda, const float *b, blas_int ldb,
                           float beta, float *c, blas_int ldc);
void MFR_BLAS(cblas_dgemm)(int order, int transa, int transb, blas_int m,
                           blas_int n, blas_int k, double alpha,
                           const double *a, blas_int lda, const double *b,
                           blas_int ldb, double beta, double *c, blas_int ldc);
void MFR_BLAS(cblas_ssyrk)(int order, int uplo, int trans, blas_int n,
                           blas_int k, float alpha, const float *a,
                           blas_int lda, float beta, float *c, blas_int ldc);

void MFR_BLAS(cblas_dsyrk)(int order, int uplo, int trans, blas_int n,
                           blas_int k, double alpha, const double *a,
                           blas_int lda, double beta, double *c, blas_int ldc);
void MFR_BLAS(cblas_dgemv)(int order, int trans, blas_int m, blas_int n,
                           double alpha, const double *a, blas_int lda,
                           const double *x, blas_int incx, double beta,
                           double *y, blas_int incy);
/* LAPACK (Fortran interface, column-major, arguments by reference; a
 * trailing size_t is the hidden length of a character argument). */
void MFR_BLAS(dposv_)(const char *uplo, const blas_int *n, const blas_int *nrhs,
                      double *a, const blas_int *lda, double *b,
                      const blas_int *ldb, blas_int *info, size_t uplo_len);
void MFR_BLAS(dgesdd_)(const char *jobz, const blas_int *m, const blas_int *n, double *a,
                       const blas_int *lda, double *s, double *u, const blas_int *ldu,
                       double *vt, const blas_int *ldvt, double *work, const blas_int *lwork,
                       blas_int *iwork, blas_int *info, size_t jobz_len);
void MFR_BLAS(dgelqt_)(const blas_int *m, const blas_int *n, const blas_int *mb, double *a,
                       const blas_int *lda, double *t, const blas_int *ldt, double *work,
                       blas_int *info);
void MFR_BLAS(dgemlqt_)(const char *side, const char *trans, const blas_int *m,
                        const blas_int *n, const blas_int *k, const blas_int *mb,
                        const double *v, const blas_int *ldv, const double *t,
                        const blas_int *ldt, double *c, const blas_int *ldc, double *work,
                        blas_int *info, size_t side_len, size_t trans_len);

char *MFR_BLAS(openblas_get_config)(void);
char *MFR_BLAS(openblas_get_corename)(void);
int MFR_BLAS(openblas_get_num_threads)(void);
void MFR_BLAS(openblas_set_num_threads)(int n);

/* OpenBLAS's thread count is one setting for the whole process, and
 * concurrent calls (Python threads, the GIL released) would race on a
 * save, set and restore of it. So calls that need a count go through one
 * arbiter (blas.c): mfr_blas_threads_enter(want) before their BLAS work,
 * mfr_blas_threads_leave() after. The first entrant saves the process's
 * count; while calls are inside, the count is the smallest any of them
 * wants (never raised under another call's OpenMP region, where more BLAS
 * threads would oversubscribe the cores); the last to leave restores it.
 * Kernels that call BLAS inside OpenMP regions want 1: OpenBLAS threads
 * nested in OpenMP threads oversubscribe the cores (peers lose 15x). */
void mfr_blas_threads_enter(int want);
void mfr_blas_threads_leave(void);

#endif /* MFR_BLAS_H */
