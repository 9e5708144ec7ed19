/*
 * metrics.c - accuracy of predictions. Sums run in double, in a fixed
 * order, so the figures do not depend on the thread count.
 */
#include <math.h>

#include "internal.h"

int mfr_rmse_mae(int64_t n, const float *pred, const float *truth,
                 double *rmse, double *mae)
{
    double se = 0.0, ae = 0.0;
    if (n <= 0)
        return MFR_EINVAL;
    for (int64_t t = 0; t < n; t++) {
        double e = (double)pred[t] - (double)truth[t];
        se += e * e;
        ae += fabs(e);
    }
    if (!isfinite(se))
        return MFR_ENONFINITE;
    *rmse = sqrt(se / (double)n);
    *mae = ae / (double)n;
    return MFR_OK;
}
