/* common.c - status names, version and the SIMD variant in use. */
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
