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


/* 16 floats as one vector (GCC/Clang vector extensions: one AVX-512
 * register, two AVX ones or four SSE ones, whichever the kernel it is
 * inlined into targets); aligned(4) allows loads from any float. */
typedef float mfr_v16 __attribute__((vector_size(64), aligned(4)));
typedef int32_t mfr_v16i __attribute__((vector_size(64), aligned(4)));
extern const int32_t mfr_tail_mask[32]; /* 16 zeros, then 16 all-ones */

/* Dot product in 16 lanes, summed pairwise at the end. When 16 does not
 * divide k, the last vector is the row's last 16 floats with the lanes
 * already summed masked off: no scalar remainder loop, which cost a tenth
 * of an SGD epoch at k = 100. Inline: it takes the instruction set of the
 * multi-versioned kernel it is inlined into. */
static inline float mfr_dot(const float *restrict a, const float *restrict b, int32_t k)
{
    if (k < 16) {
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int32_t f = 0; f < k; f++)
            s += a[f] * b[f];
        return s;
    }
    mfr_v16 acc = {0};
    int32_t f = 0;
    for (; f + 16 <= k; f += 16)
        acc += *(const mfr_v16 *)(a + f) * *(const mfr_v16 *)(b + f);
    if (f < k) {
        mfr_v16 last = *(const mfr_v16 *)(a + k - 16) * *(const mfr_v16 *)(b + k - 16);
        acc += (mfr_v16)((mfr_v16i)last & *(const mfr_v16i *)(mfr_tail_mask + (k - f)));
    }
    float t[16];
    __builtin_memcpy(t, &acc, sizeof t);
    for (int32_t half = 8; half > 0; half /= 2)
        for (int32_t j = 0; j < half; j++)
            t[j] += t[j + half];
    return t[0];
}

#endif /* MFR_INTERNAL_H */
