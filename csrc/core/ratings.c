/*
 * ratings.c - checking rating triplets and compressing them by row.
 *
 * COO -> CSR runs two stable counting sorts (by column, then by row), so
 * the columns within each row come out ascending and duplicates are
 * adjacent: O(nnz + n_rows + n_cols) time, no comparison sort.
 */
#include <math.h>
#include <stdlib.h>

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
