/*
 * metrics.c - accuracy of predictions and ranking metrics at k (the
 * definitions are in mfrec.h). Sums run in double, in a fixed order, so
 * the figures do not depend on the thread count.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

/* One user's metrics into row[0..MFR_RANK_METRICS); hit_mark (R bytes,
 * zeroed) records which relevant labels were hit, to reject repeats. */
static int user_metrics(int32_t k, const int32_t *rec, const int32_t *rel, int64_t R,
                        const double *discount, const double *ideal, uint8_t *hit_mark,
                        int32_t n_items, double *row)
{
    double dcg = 0.0, ap = 0.0;
    int64_t hits = 0;
    for (int32_t t = 0; t < k; t++) {
        int32_t i = rec[t];
        if (i < -1 || i >= n_items)
            return MFR_EINDEX;
        int64_t at = i >= 0 ? mfr_sorted_find(rel, R, i) : -1;
        if (at < 0)
            continue;
        if (hit_mark[at])
            return MFR_EDUPLICATE;
        hit_mark[at] = 1;
        hits++;
        dcg += discount[t];
        ap += (double)hits / (double)(t + 1);
    }
    int64_t m = MFR_MIN((int64_t)k, R);
    row[0] = (double)hits / (double)k;
    row[1] = (double)hits / (double)R;
    row[2] = dcg / ideal[m];
    row[3] = ap / (double)m;
    row[4] = hits > 0 ? 1.0 : 0.0;
    return MFR_OK;
}

/* The relevant labels: indptr non-decreasing, labels >= 0 and strictly
 * ascending per user; *max_rel gets the longest list. */
static int check_relevant(int64_t n_users, const int64_t *rel_indptr,
                          const int32_t *rel_indices, int64_t *max_rel)
{
    *max_rel = 0;
    for (int64_t u = 0; u < n_users; u++) {
        int64_t b = rel_indptr[u], e = rel_indptr[u + 1];
        if (e < b)
            return MFR_EINVAL;
        for (int64_t t = b; t < e; t++)
            if (rel_indices[t] < 0 || (t > b && rel_indices[t] <= rel_indices[t - 1]))
                return MFR_EINVAL; /* negative or not strictly ascending */
        *max_rel = MFR_MAX(*max_rel, e - b);
    }
    return MFR_OK;
}

/* Every user's row of per_user, in parallel (NaN for users with no
 * relevant label). */
static int all_user_metrics(int64_t n_users, int32_t k, const int32_t *recommended,
                            const int64_t *rel_indptr, const int32_t *rel_indices,
                            int64_t max_rel, const double *discount, const double *ideal,
                            int32_t n_items, double *per_user, int n_threads)
{
    int status = MFR_OK;
#pragma omp parallel num_threads(mfr_threads(n_threads)) if (n_users > 1024)
    {
        uint8_t *hit_mark = malloc((size_t)MFR_MAX(max_rel, 1));
        if (!hit_mark) {
#pragma omp atomic write
            status = MFR_ENOMEM;
        }
#pragma omp for schedule(static)
        for (int64_t u = 0; u < n_users; u++) {
            double *row = per_user + (size_t)u * MFR_RANK_METRICS;
            int64_t b = rel_indptr[u], R = rel_indptr[u + 1] - b;
            if (!hit_mark)
                continue;
            if (R == 0) {
                for (int j = 0; j < MFR_RANK_METRICS; j++)
                    row[j] = NAN;
                continue;
            }
            memset(hit_mark, 0, (size_t)R);
            int s = user_metrics(k, recommended + (size_t)u * k, rel_indices + b, R,
                                 discount, ideal, hit_mark, n_items, row);
            if (s != MFR_OK) {
#pragma omp atomic write
                status = s;
            }
        }
        free(hit_mark);
    }
    return status;
}

/* The means over users with relevant labels (summed in user order) and the
 * coverage of the lists; seen: n_items zeroed bytes. */
static int summarize(int64_t n_users, int32_t k, const int32_t *recommended,
                     const int64_t *rel_indptr, int32_t n_items, const double *per_user,
                     uint8_t *seen, mfr_ranking *out)
{
    double sum[MFR_RANK_METRICS] = {0};
    int64_t n_eval = 0, n_distinct = 0;
    for (int64_t u = 0; u < n_users; u++) {
        const int32_t *rec = recommended + (size_t)u * k;
        for (int32_t t = 0; t < k; t++) {
            if (rec[t] < -1 || rec[t] >= n_items)
                return MFR_EINDEX;
            if (rec[t] >= 0 && !seen[rec[t]]) {
                seen[rec[t]] = 1;
                n_distinct++;
            }
        }
        if (rel_indptr[u + 1] == rel_indptr[u])
            continue;
        n_eval++;
        for (int j = 0; j < MFR_RANK_METRICS; j++)
            sum[j] += per_user[(size_t)u * MFR_RANK_METRICS + j];
    }
    double denom = n_eval > 0 ? (double)n_eval : NAN;
    out->precision = sum[0] / denom;
    out->recall = sum[1] / denom;
    out->ndcg = sum[2] / denom;
    out->map = sum[3] / denom;
    out->hit_rate = sum[4] / denom;
    out->coverage = (double)n_distinct / (double)n_items;
    out->n_evaluated = n_eval;
    return MFR_OK;
}

int mfr_ranking_metrics(int64_t n_users, int32_t k, const int32_t *recommended,
                        const int64_t *rel_indptr, const int32_t *rel_indices,
                        int32_t n_items, double *per_user, mfr_ranking *out,
                        int n_threads)
{
    int64_t max_rel = 0;
    if (n_users < 0 || k < 1 || n_items < 1 || rel_indptr[0] != 0)
        return MFR_EINVAL;
    int status = check_relevant(n_users, rel_indptr, rel_indices, &max_rel);
    if (status != MFR_OK)
        return status;
    /* discount[t] = 1 / log2(t + 2); ideal[m] = sum of the first m */
    double *discount = malloc(sizeof(double) * (size_t)k);
    double *ideal = malloc(sizeof(double) * ((size_t)k + 1));
    uint8_t *seen = calloc((size_t)n_items, 1);
    if (!discount || !ideal || !seen) {
        status = MFR_ENOMEM;
        goto cleanup;
    }
    ideal[0] = 0.0;
    for (int32_t t = 0; t < k; t++) {
        discount[t] = 1.0 / log2((double)t + 2.0);
        ideal[t + 1] = ideal[t] + discount[t];
    }
    status = all_user_metrics(n_users, k, recommended, rel_indptr, rel_indices, max_rel,
                              discount, ideal, n_items, per_user, n_threads);
    if (status == MFR_OK)
        status = summarize(n_users, k, recommended, rel_indptr, n_items, per_user, seen, out);
cleanup:
    free(discount);
    free(ideal);
    free(seen);
    return status;
}
