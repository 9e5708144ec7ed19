/*
 * rng.c - a small portable PRNG, so a seed means the same on every platform.
 *
 * xoshiro256** (Blackman & Vigna) with its state filled by splitmix64 from
 * (seed, stream): distinct streams give independent sequences, which lets
 * parallel code draw per fixed-size block of rows and stay independent of
 * the thread count.
 */
#include <math.h>

#include "internal.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

void mfr_rng_seed(mfr_rng *rng, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (stream * 0xD1B54A32D192ED03ull);
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&x);
}

uint64_t mfr_rng_next(mfr_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float mfr_rng_uniform(mfr_rng *rng)
{
    return (float)(mfr_rng_next(rng) >> 40) * 0x1.0p-24f;
}

double mfr_rng_normal(mfr_rng *rng)
{
    /* u1 in (0, 1] so the log is finite */
    double u1 = ((double)(mfr_rng_next(rng) >> 11) + 1.0) * 0x1.0p-53;
    double u2 = (double)(mfr_rng_next(rng) >> 11) * 0x1.0p-53;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Marsaglia's polar method: a point uniform in the unit disc (x, y
 * multiples of 2^-52 in [-1, 1)), its s = x^2 + y^2 */
static inline double disc_point(mfr_rng *rng, double *x, double *y)
{
    double s;
    do {
        *x = (double)(mfr_rng_next(rng) >> 11) * 0x1.0p-52 - 1.0;
        *y = (double)(mfr_rng_next(rng) >> 11) * 0x1.0p-52 - 1.0;
        s = *x * *x + *y * *y;
    } while (s >= 1.0 || s == 0.0);
    return s;
}

/* The point scaled into two normals: one log and one square root for two
 * draws, 0.4 of Box-Muller's time per draw, measured */
static inline double polar_factor(double s) { return sqrt(-2.0 * log(s) / s); }

void mfr_rng_normal_pair(mfr_rng *rng, double out[2])
{
    double x, y;
    const double f = polar_factor(disc_point(rng, &x, &y));
    out[0] = x * f;
    out[1] = y * f;
}

enum { NORMAL_BATCH = 64 }; /* pairs drawn before their logs are taken */

/* x[0..count) = scale times normals, mfr_rng_normal_pair's in turn (an odd
 * count's last spare unused). The points are drawn a batch at a time, then
 * scaled: the logs and roots of a batch are independent of each other and
 * of the rejection loop's branches, so they overlap (a third of the time). */
static void fill_normal(mfr_rng *rng, float *out, int64_t count, float scale)
{
    double x[NORMAL_BATCH], y[NORMAL_BATCH], s[NORMAL_BATCH];
    for (int64_t i = 0; i < count; i += 2 * NORMAL_BATCH) {
        const int64_t pairs = MFR_MIN(NORMAL_BATCH, (count - i + 1) / 2);
        for (int64_t c = 0; c < pairs; c++)
            s[c] = disc_point(rng, &x[c], &y[c]);
        for (int64_t c = 0; c < pairs; c++) {
            const double f = polar_factor(s[c]);
            out[i + 2 * c] = (float)(scale * (x[c] * f));
            if (i + 2 * c + 1 < count)
                out[i + 2 * c + 1] = (float)(scale * (y[c] * f));
        }
    }
}

/* The 128-bit product a * b: high word returned, low word in *low. */
static inline uint64_t mul_64x64(uint64_t a, uint64_t b, uint64_t *low)
{
#if defined(__SIZEOF_INT128__) && !defined(MFR_NO_INT128)
    unsigned __int128 m = (unsigned __int128)a * b;
    *low = (uint64_t)m;
    return (uint64_t)(m >> 64);
#else /* ISO C: four 32-bit products */
    const uint64_t a_lo = a & 0xFFFFFFFFu, a_hi = a >> 32;
    const uint64_t b_lo = b & 0xFFFFFFFFu, b_hi = b >> 32;
    const uint64_t ll = a_lo * b_lo, lh = a_lo * b_hi, hl = a_hi * b_lo, hh = a_hi * b_hi;
    const uint64_t mid = (ll >> 32) + (lh & 0xFFFFFFFFu) + (hl & 0xFFFFFFFFu);
    *low = (mid << 32) | (ll & 0xFFFFFFFFu);
    return hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
#endif
}

uint64_t mfr_rng_below(mfr_rng *rng, uint64_t n)
{
    /* Lemire's multiply-shift with rejection: unbiased, and the division
     * runs only in the rare rejection branch */
    uint64_t low, high = mul_64x64(mfr_rng_next(rng), n, &low);
    if (low < n) {
        uint64_t threshold = -n % n;
        while (low < threshold)
            high = mul_64x64(mfr_rng_next(rng), n, &low);
    }
    return high;
}

/* Uniform integers in [0, n) for a shuffle: below 2^32, Lemire's method on
 * 32-bit halves of the draws (two bounds a draw, half the generator's work
 * of mfr_rng_below's 64-bit one), else mfr_rng_below. */
typedef struct {
    mfr_rng *rng;
    uint64_t spare; /* a draw whose high half is unused while `have` */
    int have;
} half_draws;

static inline uint64_t shuffle_below(half_draws *h, uint64_t n)
{
    if (n > UINT32_MAX)
        return mfr_rng_below(h->rng, n);
    for (;;) {
        uint32_t x;
        if (h->have) {
            x = (uint32_t)(h->spare >> 32);
        } else {
            h->spare = mfr_rng_next(h->rng);
            x = (uint32_t)h->spare;
        }
        h->have = !h->have;
        const uint64_t m = (uint64_t)x * n;
        const uint32_t low = (uint32_t)m;
        if (low >= n || low >= (uint32_t)(-(uint32_t)n) % (uint32_t)n)
            return m >> 32;
    }
}

/* Fisher-Yates over perm[0..n) as it is: the same draws whatever perm's
 * integer type. */
#define FISHER_YATES(rng, n, perm)                                                \
    do {                                                                          \
        half_draws fy = {(rng), 0, 0};                                            \
        for (int64_t i = (n) - 1; i > 0; i--) {                                   \
            int64_t j = (int64_t)shuffle_below(&fy, (uint64_t)i + 1);             \
            const __typeof__((perm)[0]) t = (perm)[i];                            \
            (perm)[i] = (perm)[j];                                                \
            (perm)[j] = t;                                                        \
        }                                                                         \
    } while (0)

/* perm = 0..n-1 shuffled by Fisher-Yates. */
#define SHUFFLE(rng, n, perm)                                                     \
    do {                                                                          \
        for (int64_t i = 0; i < (n); i++)                                         \
            (perm)[i] = (__typeof__((perm)[0]))i;                                 \
        FISHER_YATES(rng, n, perm);                                               \
    } while (0)

/* Fisher-Yates's swaps land anywhere in perm: past the caches, a miss
 * each (at 25M entries, 0.9 s of a 6 s SGD epoch; a 5M-entry perm fits
 * in L3). From SPLIT_FROM entries on, the
 * Rao-Sandelius split instead: each i goes to one of SPLIT_BUCKETS buckets
 * drawn uniformly (a pass counting the draws, then the same draws again
 * placing i in its bucket's part of perm, each part written in order), and
 * each bucket, now in cache, gets its own Fisher-Yates shuffle: a uniform
 * permutation still, from one stream. */
#define SPLIT_FROM (1 << 20)
#define SPLIT_BUCKETS 512
#define SPLIT_SHUFFLE(rng, n, perm)                                               \
    do {                                                                          \
        int64_t start[SPLIT_BUCKETS + 1] = {0}, at[SPLIT_BUCKETS];                \
        const mfr_rng draws = *(rng);                                             \
        half_draws h = {(rng), 0, 0};                                             \
        for (int64_t i = 0; i < (n); i++)                                         \
            start[shuffle_below(&h, SPLIT_BUCKETS) + 1]++;                        \
        for (int b = 0; b < SPLIT_BUCKETS; b++) {                                 \
            start[b + 1] += start[b];                                             \
            at[b] = start[b];                                                     \
        }                                                                         \
        *(rng) = draws; /* the same buckets again */                              \
        h = (half_draws){(rng), 0, 0};                                            \
        for (int64_t i = 0; i < (n); i++)                                         \
            (perm)[at[shuffle_below(&h, SPLIT_BUCKETS)]++] = (__typeof__((perm)[0]))i; \
        for (int b = 0; b < SPLIT_BUCKETS; b++)                                   \
            FISHER_YATES(rng, start[b + 1] - start[b], (perm) + start[b]);        \
    } while (0)

void mfr_rng_permutation(mfr_rng *rng, int64_t n, int64_t *perm)
{
    if (n >= SPLIT_FROM)
        SPLIT_SHUFFLE(rng, n, perm);
    else
        SHUFFLE(rng, n, perm);
}

void mfr_rng_permutation32(mfr_rng *rng, int32_t n, int32_t *perm)
{
    if (n >= SPLIT_FROM)
        SPLIT_SHUFFLE(rng, n, perm);
    else
        SHUFFLE(rng, n, perm);
}

int mfr_init_factors(float *x, int64_t n, int32_t k, int kind, float scale,
                     uint64_t seed, uint64_t stream)
{
    /* a normal draw is at most sqrt(-2 ln 2^-104) < 12.1 in size (x^2 <= s,
     * s >= 2^-104): bound the scale so that every draw stays finite in float32 */
    if (n < 0 || k <= 0 || !(scale >= 0.0f) || !isfinite(scale) ||
        (kind != MFR_INIT_UNIFORM && kind != MFR_INIT_NORMAL) ||
        (kind == MFR_INIT_NORMAL && scale > MFR_INIT_NORMAL_MAX_SCALE))
        return MFR_EINVAL;
    int64_t n_blocks = (n + MFR_RNG_BLOCK - 1) / MFR_RNG_BLOCK;
    for (int64_t b = 0; b < n_blocks; b++) {
        mfr_rng rng;
        mfr_rng_seed(&rng, seed, stream * 0x100000000ull + (uint64_t)b);
        const int64_t end = MFR_MIN(n, (b + 1) * MFR_RNG_BLOCK) * (int64_t)k;
        int64_t i = b * MFR_RNG_BLOCK * (int64_t)k;
        if (kind == MFR_INIT_UNIFORM) {
            for (; i < end; i++)
                x[i] = scale * mfr_rng_uniform(&rng);
            continue;
        }
        fill_normal(&rng, x + i, end - i, scale);
    }
    return MFR_OK;
}
