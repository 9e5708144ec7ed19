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

/* Helpers of the multi-versioned kernels must be inlined into them to run
 * with their instruction set (a call would run the default build's). */
#if defined(__GNUC__)
#define MFR_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define MFR_ALWAYS_INLINE inline
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


/* 8 floats as one vector (GCC/Clang vector extensions: one AVX register,
 * the low half of an AVX-512 one, two SSE ones); aligned(4) allows loads
 * from any float. Not 16: GCC keeps a 64-byte vector that the instruction
 * set has no register for in memory, and a loop carrying one in an AVX2
 * kernel stalled on every iteration (SGD's epoch ran 2.5x slower). */
typedef float mfr_v8 __attribute__((vector_size(32), aligned(4)));
typedef int32_t mfr_v8i __attribute__((vector_size(32), aligned(4)));
extern const int32_t mfr_tail_mask[32]; /* 16 zeros, then 16 all-ones */

typedef float mfr_v4 __attribute__((vector_size(16), aligned(4)));

/* keys[0..n) sorted by their high 32 bits, stably (common.c); tmp has room
 * for n keys. A sort key goes in the high half, what it sorts in the low. */
void mfr_sort_by_high32(uint64_t *restrict keys, uint64_t *restrict tmp, int64_t n);

/* The sum of *v's 8 lanes, pairwise: lane j + 4 into lane j, then j + 2,
 * then j + 1. In registers (through an array in memory, GCC stored the
 * vector and loaded lanes back: a store forwarding on every dot product). */
static MFR_ALWAYS_INLINE float mfr_sum8(const mfr_v8 *v)
{
    mfr_v4 t = __builtin_shufflevector(*v, *v, 0, 1, 2, 3) +
               __builtin_shufflevector(*v, *v, 4, 5, 6, 7);
    t += __builtin_shufflevector(t, t, 2, 3, 0, 1);
    t += __builtin_shufflevector(t, t, 1, 0, 3, 2);
    return t[0];
}

/* The first position in the ascending a[0..n) whose value is >= j (binary
 * search; n if none). */
static inline int64_t mfr_lower_bound(const int32_t *a, int64_t n, int32_t j)
{
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (a[mid] < j)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The position of j in the ascending a[0..n), or -1. */
static inline int64_t mfr_sorted_find(const int32_t *a, int64_t n, int32_t j)
{
    const int64_t lo = mfr_lower_bound(a, n, j);
    return lo < n && a[lo] == j ? lo : -1;
}

/* Dot product in 16 lanes (two vectors of 8), summed pairwise at the end.
 * When 16 does not divide k, the last 16 are the row's last 16 floats
 * with the lanes already summed masked off: no scalar remainder loop,
 * which cost a tenth of an SGD epoch at k = 100. */
static MFR_ALWAYS_INLINE float mfr_dot(const float *restrict a, const float *restrict b,
                                       int32_t k)
{
    if (k < 16) {
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int32_t f = 0; f < k; f++)
            s += a[f] * b[f];
        return s;
    }
    mfr_v8 lo = {0}, hi = {0};
    int32_t f = 0;
    for (; f + 16 <= k; f += 16) {
        lo += *(const mfr_v8 *)(a + f) * *(const mfr_v8 *)(b + f);
        hi += *(const mfr_v8 *)(a + f + 8) * *(const mfr_v8 *)(b + f + 8);
    }
    if (f < k) {
        const int32_t *mask = mfr_tail_mask + (k - f);
        mfr_v8 l = *(const mfr_v8 *)(a + k - 16) * *(const mfr_v8 *)(b + k - 16);
        mfr_v8 h = *(const mfr_v8 *)(a + k - 8) * *(const mfr_v8 *)(b + k - 8);
        lo += (mfr_v8)((mfr_v8i)l & *(const mfr_v8i *)mask);
        hi += (mfr_v8)((mfr_v8i)h & *(const mfr_v8i *)(mask + 8));
    }
    lo += hi; /* lane j + 8 into lane j first */
    return mfr_sum8(&lo);
}

/* out[c] = mfr_sum8(lo[c] + hi[c]) for c < 4, summed in the same pairwise
 * order (lane j + 8 into j, then j + 4, j + 2, j + 1) but the four at once,
 * in shared shuffles: the short (k ~ 64) products of the sparse passes are
 * bound by their horizontal sums. GCC's generic vectors take the
 * instruction set of the kernel this is inlined into. */
static MFR_ALWAYS_INLINE void mfr_sum8x4(const mfr_v8 lo[4], const mfr_v8 hi[4], float out[4])
{
#if defined(__GNUC__) && !defined(__clang__)
    const mfr_v8i q1 = {0, 1, 2, 3, 8, 9, 10, 11}, q2 = {4, 5, 6, 7, 12, 13, 14, 15};
    const mfr_v8i h1 = {0, 1, 4, 5, 8, 9, 12, 13}, h2 = {2, 3, 6, 7, 10, 11, 14, 15};
    const mfr_v8i s1 = {1, 0, 3, 2, 5, 4, 7, 6};
    mfr_v8 a[4];
    for (int u = 0; u < 4; u++)
        a[u] = lo[u] + hi[u];
    mfr_v8 ab = __builtin_shuffle(a[0], a[1], q1) + __builtin_shuffle(a[0], a[1], q2);
    mfr_v8 cd = __builtin_shuffle(a[2], a[3], q1) + __builtin_shuffle(a[2], a[3], q2);
    mfr_v8 x = __builtin_shuffle(ab, cd, h1) + __builtin_shuffle(ab, cd, h2);
    x += __builtin_shuffle(x, s1);
    out[0] = x[0];
    out[1] = x[2];
    out[2] = x[4];
    out[3] = x[6];
#else
    for (int c = 0; c < 4; c++) {
        mfr_v8 a = lo[c] + hi[c];
        out[c] = mfr_sum8(&a);
    }
#endif
}

/* The four dot products of a[c] with b[c], c = 0..3, each summed lane for
 * lane as mfr_dot sums it (so each equals mfr_dot's), side by side: one
 * product's sums wait on its FMAs in turn, four of them keep the FMA units
 * busy. */
static MFR_ALWAYS_INLINE void mfr_dots4(const float *const a[4], const float *const b[4],
                                        int32_t k, float out[4])
{
    if (k < 16) {
        for (int c = 0; c < 4; c++)
            out[c] = mfr_dot(a[c], b[c], k);
        return;
    }
    mfr_v8 lo[4] = {{0}}, hi[4] = {{0}};
    int32_t f = 0;
    for (; f + 16 <= k; f += 16) {
        for (int c = 0; c < 4; c++) {
            lo[c] += *(const mfr_v8 *)(a[c] + f) * *(const mfr_v8 *)(b[c] + f);
            hi[c] += *(const mfr_v8 *)(a[c] + f + 8) * *(const mfr_v8 *)(b[c] + f + 8);
        }
    }
    if (f < k) {
        const mfr_v8i ml = *(const mfr_v8i *)(mfr_tail_mask + (k - f));
        const mfr_v8i mh = *(const mfr_v8i *)(mfr_tail_mask + (k - f) + 8);
        for (int c = 0; c < 4; c++) {
            mfr_v8 l = *(const mfr_v8 *)(a[c] + k - 16) * *(const mfr_v8 *)(b[c] + k - 16);
            mfr_v8 h = *(const mfr_v8 *)(a[c] + k - 8) * *(const mfr_v8 *)(b[c] + k - 8);
            lo[c] += (mfr_v8)((mfr_v8i)l & ml);
            hi[c] += (mfr_v8)((mfr_v8i)h & mh);
        }
    }
    mfr_sum8x4(lo, hi, out);
}

/* mfr_dots4 of one vector a with four b[c]. */
static MFR_ALWAYS_INLINE void mfr_dot4(const float *a, const float *const b[4], int32_t k,
                                       float out[4])
{
    const float *const as[4] = {a, a, a, a};
    mfr_dots4(as, b, k, out);
}

#endif /* MFR_INTERNAL_H */
