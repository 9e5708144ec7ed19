/*
 * ratings.c - checking rating triplets, compressing them by row, and
 * checking compressed rows (a CSR, or a CSR and its transpose).
 *
 * COO -> CSR is a stable counting sort by row straight into the output,
 * then a sort of each row by column (nothing to do for rows that come
 * sorted), so duplicates are adjacent: no temporary the size of the
 * ratings beyond the output itself, whose rows are what two stable
 * counting sorts (by column, then by row) would give.
 *
 * CSR -> its transpose is one counting sort by column of entries already
 * in row order, so it keeps that order: each output row comes out with its
 * columns ascending, as mfr_csr_from_coo builds it from the same triplets.
 * Threads take contiguous ranges of rows of about equal nnz, count their
 * columns, and scatter to offsets fixed by (column, range): the output does
 * not depend on the thread count.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The status of the first bad triplet among [lo, hi), or MFR_OK. */
static int first_bad_triplet(int64_t lo, int64_t hi, const int32_t *rows, int32_t n_rows,
                             const int32_t *cols, int32_t n_cols, const float *vals)
{
    for (int64_t t = lo; t < hi; t++) {
        if (rows[t] < 0 || rows[t] >= n_rows || cols[t] < 0 || cols[t] >= n_cols)
            return MFR_EINDEX;
        if (vals && !isfinite(vals[t]))
            return MFR_ENONFINITE;
    }
    return MFR_OK;
}

enum { CHECK_BLOCK = 4096 }; /* triplets tested at a time without a branch */

/* Each block is tested without early exits (unsigned comparisons, the
 * exponent bits), which vectorizes: every SGD epoch checks its triplets,
 * and the loop that stops at the first bad one cost 2% of the epoch. */
int mfr_check_triplets(int64_t nnz, const int32_t *rows, int32_t n_rows,
                       const int32_t *cols, int32_t n_cols, const float *vals)
{
    for (int64_t lo = 0; lo < nnz; lo += CHECK_BLOCK) {
        const int64_t hi = MFR_MIN(nnz, lo + CHECK_BLOCK);
        uint32_t bad = (uint32_t)(n_rows < 0) | (uint32_t)(n_cols < 0);
        for (int64_t t = lo; t < hi; t++) {
            uint32_t bits = 0;
            if (vals)
                memcpy(&bits, vals + t, sizeof bits);
            bad |= ((uint32_t)rows[t] >= (uint32_t)n_rows) |
                   ((uint32_t)cols[t] >= (uint32_t)n_cols) |
                   ((bits & 0x7f800000u) == 0x7f800000u);
        }
        if (bad)
            return first_bad_triplet(lo, hi, rows, n_rows, cols, n_cols, vals);
    }
    return MFR_OK;
}

/* Row r's entries sorted by column, stably: insertion sort for short rows,
 * and a radix sort of (column, value bits) keys in `keys` (room for twice
 * the longest row) for long ones. Columns are distinct unless the row has
 * a duplicate, which the caller then refuses. */
static void sort_row(int32_t *restrict cols, float *restrict vals, int64_t n,
                     uint64_t *restrict keys)
{
    int64_t sorted = 1;
    while (sorted < n && cols[sorted - 1] <= cols[sorted])
        sorted++;
    if (sorted == n)
        return;
    if (n <= 32) {
        for (int64_t j = sorted; j < n; j++) {
            const int32_t c = cols[j];
            const float v = vals ? vals[j] : 0.0f;
            int64_t d = j;
            for (; d > 0 && cols[d - 1] > c; d--) {
                cols[d] = cols[d - 1];
                if (vals)
                    vals[d] = vals[d - 1];
            }
            cols[d] = c;
            if (vals)
                vals[d] = v;
        }
        return;
    }
    for (int64_t j = 0; j < n; j++) {
        uint32_t bits = 0;
        if (vals)
            memcpy(&bits, &vals[j], sizeof bits);
        keys[j] = (uint64_t)(uint32_t)cols[j] << 32 | bits;
    }
    mfr_sort_by_high32(keys, keys + n, n);
    for (int64_t j = 0; j < n; j++) {
        cols[j] = (int32_t)(keys[j] >> 32);
        if (vals) {
            const uint32_t bits = (uint32_t)keys[j];
            memcpy(&vals[j], &bits, sizeof bits);
        }
    }
}

int mfr_csr_from_coo(int64_t nnz, const int32_t *rows, const int32_t *cols,
                     const float *vals, int32_t n_rows, int32_t n_cols,
                     int64_t *indptr, int32_t *indices, float *values)
{
    int status = MFR_OK;
    int64_t *next = NULL, longest = 0;
    uint64_t *keys = NULL;
    if (nnz < 0 || n_rows < 0 || n_cols < 0)
        return MFR_EINVAL;
    next = malloc(((size_t)n_rows + 1) * sizeof *next);
    if (!next)
        return MFR_ENOMEM;
    /* a stable counting sort by row straight into the output; every index
     * is checked where it is read, so the caller need not copy the
     * triplets to keep them from changing between two passes */
    for (int32_t r = 0; r <= n_rows; r++)
        indptr[r] = 0;
    for (int64_t t = 0; t < nnz; t++) {
        const int32_t r = rows[t], c = cols[t];
        if (r < 0 || r >= n_rows || c < 0 || c >= n_cols) {
            free(next);
            return MFR_EINDEX;
        }
        indptr[r + 1]++;
    }
    for (int32_t r = 0; r < n_rows; r++) {
        longest = MFR_MAX(longest, indptr[r + 1]);
        indptr[r + 1] += indptr[r];
    }
    for (int32_t r = 0; r <= n_rows; r++)
        next[r] = indptr[r];
    for (int64_t t = 0; t < nnz; t++) {
        const int32_t r = rows[t], c = cols[t];
        if (r < 0 || r >= n_rows || c < 0 || c >= n_cols || next[r] == indptr[r + 1]) {
            free(next);
            return MFR_EINVAL; /* changed since the count */
        }
        const int64_t dst = next[r]++;
        indices[dst] = c;
        if (values)
            values[dst] = vals ? vals[t] : 1.0f;
    }
    for (int32_t r = 0; r < n_rows && status == MFR_OK; r++)
        if (next[r] != indptr[r + 1])
            status = MFR_EINVAL; /* changed since the count */
    free(next);
    if (status != MFR_OK)
        return status;
    /* then each row by column */
    if (longest > 32 && !(keys = malloc(2 * (size_t)longest * sizeof *keys)))
        return MFR_ENOMEM;
    for (int32_t r = 0; r < n_rows; r++) {
        const int64_t b = indptr[r], n = indptr[r + 1] - b;
        sort_row(indices + b, values ? values + b : NULL, n, keys);
        for (int64_t j = b + 1; j < b + n; j++)
            if (indices[j] == indices[j - 1]) {
                status = MFR_EDUPLICATE;
                goto cleanup;
            }
    }
cleanup:
    free(keys);
    return status;
}

/* The first row of range t of n_ranges with about equal entries: the
 * first r with indptr[r] >= t nnz / n_ranges. */
static int32_t range_start(const mfr_csr *a, int t, int n_ranges)
{
    const int64_t target = (int64_t)((double)a->nnz * t / n_ranges);
    int32_t lo = 0, hi = a->n_rows;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (a->indptr[mid] < target)
            lo = mid + 1;
        else
            hi = mid;
    }
    return t == 0 ? 0 : t == n_ranges ? a->n_rows : lo;
}

/* Scatter rows [lo, hi) of a into the transpose; next[c] is where the
 * range's next entry of column c goes. */
static void transpose_range(const mfr_csr *a, int32_t lo, int32_t hi, int64_t *restrict next,
                            int32_t *restrict indices, float *restrict values)
{
    for (int32_t r = lo; r < hi; r++)
        for (int64_t j = a->indptr[r]; j < a->indptr[r + 1]; j++) {
            const int64_t dst = next[a->indices[j]]++;
            indices[dst] = r;
            if (values)
                values[dst] = a->values ? a->values[j] : 1.0f;
        }
}

int mfr_csr_transpose(const mfr_csr *a, int n_threads, int64_t *indptr, int32_t *indices,
                      float *values)
{
    if (a->n_rows < 0 || a->n_cols < 0 || a->nnz < 0 || !a->indptr ||
        (a->nnz > 0 && !a->indices) || a->indptr[0] != 0 || a->indptr[a->n_rows] != a->nnz)
        return MFR_EINVAL;
    for (int32_t r = 0; r < a->n_rows; r++)
        if (a->indptr[r + 1] < a->indptr[r])
            return MFR_EINVAL;
    const int64_t n_cols = a->n_cols;
    /* one range per thread, while the counts stay small beside the entries */
    int n_ranges = mfr_threads(n_threads);
    while (n_ranges > 1 && (int64_t)n_ranges * (n_cols + 1) > a->nnz)
        n_ranges--;
    int64_t *next = calloc((size_t)n_ranges * (size_t)(n_cols + 1), sizeof *next);
    if (!next)
        return MFR_ENOMEM;
    int status = MFR_OK;
#pragma omp parallel for schedule(static, 1) num_threads(n_ranges) if (n_ranges > 1)
    for (int t = 0; t < n_ranges; t++) {
        int64_t *count = next + (int64_t)t * (n_cols + 1);
        const int64_t b = a->indptr[range_start(a, t, n_ranges)];
        const int64_t e = a->indptr[range_start(a, t + 1, n_ranges)];
        for (int64_t j = b; j < e; j++) {
            const int32_t c = a->indices[j];
            if (c < 0 || c >= n_cols) {
#pragma omp atomic write
                status = MFR_EINDEX;
                break;
            }
            count[c]++;
        }
    }
    if (status == MFR_OK) {
        /* column c of range t starts after c's entries in earlier ranges */
        int64_t offset = 0;
        for (int64_t c = 0; c < n_cols; c++) {
            indptr[c] = offset;
            for (int t = 0; t < n_ranges; t++) {
                int64_t *slot = next + (int64_t)t * (n_cols + 1) + c, n = *slot;
                *slot = offset;
                offset += n;
            }
        }
        indptr[n_cols] = offset;
#pragma omp parallel for schedule(static, 1) num_threads(n_ranges) if (n_ranges > 1)
        for (int t = 0; t < n_ranges; t++)
            transpose_range(a, range_start(a, t, n_ranges), range_start(a, t + 1, n_ranges),
                            next + (int64_t)t * (n_cols + 1), indices, values);
    }
    free(next);
    return status;
}

int mfr_csr_check(const mfr_csr *a)
{
    if (a->n_rows < 0 || a->n_cols < 0 || a->nnz < 0 || !a->indptr ||
        (a->nnz > 0 && !a->indices))
        return MFR_EINVAL;
    if (a->indptr[0] != 0 || a->indptr[a->n_rows] != a->nnz)
        return MFR_EINVAL;
    for (int32_t r = 0; r < a->n_rows; r++) {
        const int64_t b = a->indptr[r], e = a->indptr[r + 1];
        if (e < b || e > a->nnz)
            return MFR_EINVAL;
        for (int64_t j = b; j < e; j++) {
            const int32_t c = a->indices[j];
            if (c < 0 || c >= a->n_cols)
                return MFR_EINDEX;
            if (j > b && c <= a->indices[j - 1])
                return c == a->indices[j - 1] ? MFR_EDUPLICATE : MFR_EINVAL;
            if (a->values && !isfinite(a->values[j]))
                return MFR_ENONFINITE;
        }
    }
    return MFR_OK;
}

int mfr_csr_check_transpose(const mfr_csr *a, const mfr_csr *b)
{
    if (a->n_rows != b->n_cols || a->n_cols != b->n_rows || a->nnz != b->nnz ||
        (a->values == NULL) != (b->values == NULL))
        return MFR_EINVAL;
    /* Walking a's rows in order, column c's entries are met in ascending
     * row order, which is b's order within its row c: a cursor per row of
     * b must meet exactly (r, value) each time. Equal counts make it a
     * bijection. */
    int64_t *cursor = malloc(((size_t)b->n_rows + 1) * sizeof *cursor);
    if (!cursor)
        return MFR_ENOMEM;
    memcpy(cursor, b->indptr, ((size_t)b->n_rows + 1) * sizeof *cursor);
    int status = MFR_OK;
    for (int32_t r = 0; r < a->n_rows && status == MFR_OK; r++)
        for (int64_t j = a->indptr[r]; j < a->indptr[r + 1]; j++) {
            const int32_t c = a->indices[j];
            const int64_t t = cursor[c]++;
            if (t >= b->indptr[c + 1] || b->indices[t] != r ||
                (a->values && b->values[t] != a->values[j])) {
                status = MFR_EINVAL;
                break;
            }
        }
    free(cursor);
    return status;
}
