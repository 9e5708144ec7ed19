/*
 * ratings.c - checking rating triplets, compressing them by row, and
 * checking compressed rows (a CSR, or a CSR and its transpose).
 *
 * COO -> CSR runs two stable counting sorts (by column, then by row), so
 * the columns within each row come out ascending and duplicates are
 * adjacent: O(nnz + n_rows + n_cols) time, no comparison sort.
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

int mfr_check_triplets(int64_t nnz, const int32_t *rows, int32_t n_rows,
                       const int32_t *cols, int32_t n_cols, const float *vals)
{
    for (int64_t t = 0; t < nnz; t++) {
        if (rows[t] < 0 || rows[t] >= n_rows || cols[t] < 0 || cols[t] >= n_cols)
            return MFR_EINDEX;
        if (vals && !isfinite(vals[t]))
            return MFR_ENONFINITE;
    }
    return MFR_OK;
}

/* A triplet as pass 1 of mfr_csr_from_coo leaves it, so that pass 2 reads
 * one array in order instead of gathering from three. */
typedef struct {
    int32_t row, col;
    float val;
} coo_entry;

int mfr_csr_from_coo(int64_t nnz, const int32_t *rows, const int32_t *cols,
                     const float *vals, int32_t n_rows, int32_t n_cols,
                     int64_t *indptr, int32_t *indices, float *values)
{
    int status = MFR_OK;
    int64_t *col_ptr = NULL, *next = NULL;
    coo_entry *by_col = NULL;
    if (nnz < 0 || n_rows < 0 || n_cols < 0)
        return MFR_EINVAL;
    status = mfr_check_triplets(nnz, rows, n_rows, cols, n_cols, NULL);
    if (status != MFR_OK)
        return status;

    col_ptr = calloc((size_t)n_cols + 1, sizeof *col_ptr);
    by_col = malloc((size_t)MFR_MAX(nnz, 1) * sizeof *by_col);
    next = malloc(((size_t)n_rows + 1) * sizeof *next);
    if (!col_ptr || !by_col || !next) {
        status = MFR_ENOMEM;
        goto cleanup;
    }
    /* pass 1: order the triplets by column */
    for (int64_t t = 0; t < nnz; t++)
        col_ptr[cols[t] + 1]++;
    for (int32_t c = 0; c < n_cols; c++)
        col_ptr[c + 1] += col_ptr[c];
    for (int64_t t = 0; t < nnz; t++)
        by_col[col_ptr[cols[t]]++] = (coo_entry){rows[t], cols[t], vals ? vals[t] : 1.0f};
    /* pass 2: stable by row, so columns stay ascending within a row */
    for (int32_t r = 0; r <= n_rows; r++)
        indptr[r] = 0;
    for (int64_t t = 0; t < nnz; t++)
        indptr[rows[t] + 1]++;
    for (int32_t r = 0; r < n_rows; r++)
        indptr[r + 1] += indptr[r];
    for (int32_t r = 0; r <= n_rows; r++)
        next[r] = indptr[r];
    for (int64_t j = 0; j < nnz; j++) {
        const coo_entry e = by_col[j];
        int64_t dst = next[e.row]++;
        indices[dst] = e.col;
        if (values)
            values[dst] = e.val;
    }
    for (int32_t r = 0; r < n_rows; r++)
        for (int64_t j = indptr[r] + 1; j < indptr[r + 1]; j++)
            if (indices[j] == indices[j - 1]) {
                status = MFR_EDUPLICATE;
                goto cleanup;
            }
cleanup:
    free(col_ptr);
    free(by_col);
    free(next);
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
