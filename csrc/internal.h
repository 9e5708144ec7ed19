/*
 * internal.h - helpers shared by the core's .c files; not public API.
 */
#ifndef MFR_INTERNAL_H
#define MFR_INTERNAL_H

#include "mfrec.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* Hot loops are compiled for several instruction sets and the best one is
 * picked at load time (GCC function multi-versioning), so one portable
 * build still runs AVX-512 code where the CPU has it. mfr_simd_variant()
 * reports the choice with the same tests the resolver makes. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && \
    defined(__linux__) && !defined(MFR_NO_TARGET_CLONES)
#define MFR_TARGET_CLONES \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MFR_TARGET_CLONES
#endif

#define MFR_MIN(a, b) ((a) < (b) ? (a) : (b))
#define MFR_MAX(a, b) ((a) > (b) ? (a) : (b))

/* The thread count a parallel region should use for n_threads. */
static inline int mfr_threads(int n_threads)
{
#ifdef _OPENMP
    return n_threads > 0 ? MFR_MIN(n_threads, MFR_MAX_THREADS)
                         : MFR_MIN(omp_get_max_threads(), MFR_MAX_THREADS);
#else
    (void)n_threads;
    return 1;
#endif
}


/* Dot product with a float accumulator in SIMD lanes ("omp simd" permits
 * the reordering without -ffast-math). Inline: it takes the instruction
 * set of the multi-versioned kernel it is inlined into. */
static inline float mfr_dot(const float *restrict a, const float *restrict b, int32_t k)
{
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int32_t f = 0; f < k; f++)
        s += a[f] * b[f];
    return s;
}

#endif /* MFR_INTERNAL_H */
