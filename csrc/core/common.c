/* common.c - status names, version, the SIMD variant in use, and the radix
 * sort that CSR rows and top-N's item order share. */
#include <string.h>

#include "internal.h"

const char *mfr_strerror(int status)
{
    switch (status) {
    case MFR_OK: return "success";
    case MFR_EINVAL: return "invalid argument";
    case MFR_ENOMEM: return "out of memory";
    case MFR_EDIVERGED: return "the iteration diverged (non-finite values)";
    case MFR_EINDEX: return "index out of range";
    case MFR_EDUPLICATE: return "duplicate (row, column) pair";
    case MFR_ENONFINITE: return "non-finite value (NaN or infinity)";
    case MFR_ELAPACK: return "LAPACK routine failed";
    case MFR_ENOTPD: return "matrix not positive definite";
    case MFR_ERANGE: return "result beyond the float32 range";
    default: return "unknown error";
    }
}

const int32_t mfr_tail_mask[32] = {0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
                                   -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1};

const char *mfr_version(void) { return MFR_VERSION_STRING; }

const char *mfr_simd_variant(void)
{
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && \
    defined(__linux__) && !defined(MFR_NO_TARGET_CLONES)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("x86-64-v4"))
        return "x86-64-v4 (AVX-512)";
    if (__builtin_cpu_supports("x86-64-v3"))
        return "x86-64-v3 (AVX2+FMA)";
#endif
    return "default";
}

/* A least significant digit radix sort a byte at a time, skipping the
 * bytes that every key shares (the high ones of a CSR row's columns, for
 * fewer than 2^24 columns). With qsort (a call through a comparison
 * function per comparison) sorting the rows was about two thirds of
 * building a CSR of 25M ratings in rows of 154 on average; building it
 * now takes 0.3-0.5 of the time. */
void mfr_sort_by_high32(uint64_t *restrict keys, uint64_t *restrict tmp, int64_t n)
{
    uint64_t *from = keys, *to = tmp;
    if (n < 2)
        return;
    for (int shift = 32; shift < 64; shift += 8) {
        int64_t count[257] = {0};
        for (int64_t j = 0; j < n; j++)
            count[((from[j] >> shift) & 0xff) + 1]++;
        if (count[((from[0] >> shift) & 0xff) + 1] == n)
            continue;
        for (int d = 0; d < 256; d++)
            count[d + 1] += count[d];
        for (int64_t j = 0; j < n; j++)
            to[count[(from[j] >> shift) & 0xff]++] = from[j];
        uint64_t *t = from;
        from = to;
        to = t;
    }
    if (from != keys)
        memcpy(keys, from, (size_t)n * sizeof *keys);
}
