/*
 * ordinal.c - the ordered-probit likelihood of Bayesian MF (bayes.c).
 *
 * A rating of level l (0 .. L-1) is observed when the latent
 * z ~ N(pred, 1) falls in (c_{l-1}, c_l], with c_{-1} = -inf, c_{L-1} = +inf
 * and cut points c_0 < ... < c_{L-2}. So P(l | pred) = Phi(c_l - pred) -
 * Phi(c_{l-1} - pred). The sampler draws z | pred, c from the truncated
 * normal (mfr_ordinal_latent), the rows given z as for Gaussian ratings
 * with alpha = 1, and the cut points by Metropolis steps on the likelihood
 * with z integrated out (mfr_ordinal_loglik).
 */
#include <math.h>
#include <stdlib.h>

#include "internal.h"

#define ORD_BLOCK 65536 /* ratings per random stream */
#define SQRT2 1.41421356237309504880

/* Phi(hi) - Phi(lo) for lo < hi, from the tail nearer to each. */
static double phi_mass(double lo, double hi)
{
    if (lo >= 0.0) /* both in the upper half: Q(lo) - Q(hi) */
        return 0.5 * (erfc(lo / SQRT2) - erfc(hi / SQRT2));
    if (hi <= 0.0)
        return 0.5 * (erfc(-hi / SQRT2) - erfc(-lo / SQRT2));
    return 1.0 - 0.5 * (erfc(-lo / SQRT2) + erfc(hi / SQRT2));
}

static inline double uniform01(mfr_rng *rng) /* in (0, 1] */
{
    return ((double)(mfr_rng_next(rng) >> 11) + 1.0) * 0x1.0p-53;
}

/* x ~ N(0, 1) truncated to [a, b], 0 <= a < b (b may be +inf). */
static double upper_truncated(double a, double b, mfr_rng *rng)
{
    if ((b - a) * (b + a) < 2.0) { /* narrow: uniform proposal, accept >= e^-1 */
        for (;;) {
            double x = a + (b - a) * uniform01(rng);
            if (log(uniform01(rng)) <= 0.5 * (a * a - x * x))
                return x;
        }
    }
    if (a < 0.5) { /* wide and near 0: the half-normal holds >= 0.4 of it */
        for (;;) {
            double x = fabs(mfr_rng_normal(rng));
            if (x >= a && x <= b)
                return x;
        }
    }
    const double lambda = 0.5 * (a + sqrt(a * a + 4.0)); /* Robert (1995) */
    for (;;) {
        double x = a - log(uniform01(rng)) / lambda;
        if (x <= b && log(uniform01(rng)) <= -0.5 * (x - lambda) * (x - lambda))
            return x;
    }
}

/* x ~ N(0, 1) truncated to [a, b], a < b (either may be infinite). */
static double truncated_normal(double a, double b, mfr_rng *rng)
{
    if (a >= 0.0)
        return upper_truncated(a, b, rng);
    if (b <= 0.0)
        return -upper_truncated(-b, -a, rng);
    if (b - a < 1.0) { /* narrow around 0: uniform proposal, accept >= e^-0.5 */
        for (;;) {
            double x = a + (b - a) * uniform01(rng);
            if (log(uniform01(rng)) <= -0.5 * x * x)
                return x;
        }
    }
    for (;;) { /* holds >= Phi(1) - Phi(0) of the mass */
        double x = mfr_rng_normal(rng);
        if (x >= a && x <= b)
            return x;
    }
}

static int check_levels(int64_t n, const int32_t *level, const double *cuts, int32_t n_levels)
{
    if (n < 0 || n_levels < 2)
        return MFR_EINVAL;
    for (int32_t l = 0; l < n_levels - 1; l++)
        if (!isfinite(cuts[l]) || (l > 0 && !(cuts[l] > cuts[l - 1])))
            return MFR_EINVAL;
    for (int64_t e = 0; e < n; e++)
        if (level[e] < 0 || level[e] >= n_levels)
            return MFR_EINDEX;
    return MFR_OK;
}

static inline double cut(const double *cuts, int32_t n_levels, int32_t l)
{
    return l < 0 ? -INFINITY : l >= n_levels - 1 ? INFINITY : cuts[l];
}

int mfr_ordinal_latent(int64_t n, const double *pred, const int32_t *level, const double *cuts,
                       int32_t n_levels, uint64_t seed, uint64_t stream, double *z,
                       int n_threads)
{
    int status = check_levels(n, level, cuts, n_levels);
    if (status != MFR_OK)
        return status;
    const int64_t n_blocks = (n + ORD_BLOCK - 1) / ORD_BLOCK;
#pragma omp parallel for schedule(static) num_threads(mfr_threads(n_threads))
    for (int64_t b = 0; b < n_blocks; b++) {
        mfr_rng rng;
        mfr_rng_seed(&rng, seed, (stream << 32) + (uint64_t)b);
        for (int64_t e = b * ORD_BLOCK; e < MFR_MIN(n, (b + 1) * ORD_BLOCK); e++) {
            const double m = pred[e];
            z[e] = m + truncated_normal(cut(cuts, n_levels, level[e] - 1) - m,
                                        cut(cuts, n_levels, level[e]) - m, &rng);
        }
    }
    return MFR_OK;
}

int mfr_ordinal_loglik(int64_t n, const double *pred, const int32_t *level, const double *cuts,
                       int32_t n_levels, double *out, int n_threads)
{
    int status = check_levels(n, level, cuts, n_levels);
    if (status != MFR_OK)
        return status;
    const int64_t n_blocks = (n + ORD_BLOCK - 1) / ORD_BLOCK;
    double *part = calloc((size_t)n_blocks + 1, sizeof(double));
    if (!part)
        return MFR_ENOMEM;
#pragma omp parallel for schedule(static) num_threads(mfr_threads(n_threads))
    for (int64_t b = 0; b < n_blocks; b++) {
        double s = 0.0;
        for (int64_t e = b * ORD_BLOCK; e < MFR_MIN(n, (b + 1) * ORD_BLOCK); e++)
            s += log(phi_mass(cut(cuts, n_levels, level[e] - 1) - pred[e],
                              cut(cuts, n_levels, level[e]) - pred[e]));
        part[b] = s;
    }
    double total = 0.0; /* blocks summed in order: the same at any thread count */
    for (int64_t b = 0; b < n_blocks; b++)
        total += part[b];
    free(part);
    *out = total;
    return MFR_OK;
}

int mfr_ordinal_probs(int64_t n, int32_t n_samples, const double *pred, const double *cuts,
                      int32_t n_levels, double *probs, int n_threads)
{
    if (n < 0 || n_samples < 1 || n_levels < 2)
        return MFR_EINVAL;
#pragma omp parallel for schedule(static) num_threads(mfr_threads(n_threads))
    for (int64_t e = 0; e < n; e++) {
        double *p = probs + e * n_levels;
        for (int32_t l = 0; l < n_levels; l++)
            p[l] = 0.0;
        for (int32_t s = 0; s < n_samples; s++) {
            const double m = pred[e * n_samples + s], *c = cuts + (int64_t)s * (n_levels - 1);
            for (int32_t l = 0; l < n_levels; l++)
                p[l] += phi_mass(cut(c, n_levels, l - 1) - m, cut(c, n_levels, l) - m);
        }
        for (int32_t l = 0; l < n_levels; l++)
            p[l] /= n_samples;
    }
    return MFR_OK;
}
