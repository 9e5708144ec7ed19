/*
 * topn.c - top-N lists: recommendations, cosine neighbours, fold-in.
 *
 * Every list comes from one engine. For a query row x and target j
 *   score(x, j) = c + c_x + b_j + s_x s_j (X[x] . Y[j])
 * recommend:  X = P, Y = Q, c = mu, c_x = b_u, b_j = b_i, s = 1;
 * similar:    X = Y = F, c = c_x = b_j = 0, s = 1 / |row| (cosine).
 * Queries are taken in blocks of up to TOPN_ROWS (tall blocks amortise
 * sgemm's packing of each tile of item factors) and targets in tiles as
 * wide as a 1 MiB scratch buffer allows (a whole small catalogue in one);
 * a tile's dot products come from one sgemm into that buffer, which stays
 * in cache, and the skipped targets are set to -inf there. One vectorised pass over a row takes the maximum score of each
 * chunk of 32 targets; only the few chunks whose maximum can make the list
 * are read again (a bound from the heap, or at first from the n-th largest
 * chunk maximum), and their candidates go through a bounded heap of n.
 * Targets are visited in ascending index, so a target that ties the worst
 * kept one never displaces it: ties go to the lower index, as documented
 * in mfrec.h. Block and tile sizes depend on the batch, not on the thread
 * count, and so do the lists.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "internal.h"

#define TOPN_ROWS 512           /* at most this many queries per block (sgemm's m) */
#define TOPN_SCRATCH (1 << 18)  /* scores per block x tile: 1 MiB of floats */
#define TOPN_CHUNK 32           /* targets per chunk maximum */

typedef struct {
    int32_t k;
    const float *X;          /* query rows (n_x x k) */
    const int32_t *rows;     /* query r is row rows[r] of X; NULL: row r */
    int64_t n_query;
    float offset;            /* c */
    const float *row_offset; /* c_x by X row, or NULL */
    const float *row_scale;  /* s_x by X row, or NULL */
    const float *Y;          /* targets (n_y x k) */
    int32_t n_y;
    const float *col_bias;   /* b_j, or NULL */
    const float *col_scale;  /* s_j, or NULL */
    const int64_t *skip_indptr; /* CSR by X row of targets to skip, or NULL */
    const int32_t *skip_indices;
    int skip_self;           /* skip target rows[r] (X and Y the same rows) */
    int32_t n_pool;
    const int32_t *pool;     /* strictly ascending targets, or NULL: all */
} topn_job;

/* Bounded heap of the best n (score, position) pairs seen so far; the root
 * is the entry that ranks last. */
typedef struct {
    float *s;
    int32_t *j;
    int32_t count, n;
} topn_heap;

/* a ranks after b: lower score, or an equal score and a higher index */
static inline int ranks_after(float sa, int32_t ja, float sb, int32_t jb)
{
    return sa < sb || (sa == sb && ja > jb);
}

static void heap_sift_down(topn_heap *h, int32_t at, int32_t count)
{
    float s = h->s[at];
    int32_t j = h->j[at];
    for (;;) {
        int32_t c = 2 * at + 1;
        if (c >= count)
            break;
        if (c + 1 < count && ranks_after(h->s[c + 1], h->j[c + 1], h->s[c], h->j[c]))
            c++;
        if (!ranks_after(h->s[c], h->j[c], s, j))
            break;
        h->s[at] = h->s[c];
        h->j[at] = h->j[c];
        at = c;
    }
    h->s[at] = s;
    h->j[at] = j;
}

static void heap_offer(topn_heap *h, float s, int32_t j)
{
    if (h->count < h->n) {
        int32_t at = h->count++;
        while (at > 0) {
            int32_t parent = (at - 1) / 2;
            if (!ranks_after(s, j, h->s[parent], h->j[parent]))
                break;
            h->s[at] = h->s[parent];
            h->j[at] = h->j[parent];
            at = parent;
        }
        h->s[at] = s;
        h->j[at] = j;
    } else {
        h->s[0] = s;
        h->j[0] = j;
        heap_sift_down(h, 0, h->count);
    }
}

/* The score a new entry must beat (strictly): -inf until the heap is full,
 * so that -inf (skipped) and NaN never enter. */
static inline float heap_bar(const topn_heap *h)
{
    return h->count < h->n ? -INFINITY : h->s[0];
}

/* The finished score of target t of a tile row, a s_t S[t] + (b_t + c)
 * (scale or bias NULL: s_t = 1, b_t = 0), with NaN as -inf (never listed).
 * The vector and the scalar code use this same expression, so both see
 * the same value. */
static inline float tile_score(const float *S, const float *bias, const float *scale,
                               int32_t t, float a, float c)
{
    float v = S[t] * (scale ? a * scale[t] : a) + (bias ? bias[t] + c : c);
    return v == v ? v : -INFINITY;
}

/* The bias and scale arrays of a tile are each present or NULL; the
 * kernels below are inlined with constant NULLs for each case, so each
 * case is its own vector loop. */
#define TOPN_SPECIALISE(f, S, bias, scale, ...)                                   \
    ((scale) ? ((bias) ? f(S, bias, scale, __VA_ARGS__) : f(S, NULL, scale, __VA_ARGS__)) \
             : ((bias) ? f(S, bias, NULL, __VA_ARGS__) : f(S, NULL, NULL, __VA_ARGS__)))

/* The largest score of targets [t0, end) of a tile row. */
static inline __attribute__((always_inline)) float
chunk_max(const float *restrict S, const float *restrict bias, const float *restrict scale,
          int32_t t0, int32_t end, float a, float c)
{
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int32_t t = t0; t < end; t++) {
        float v = tile_score(S, bias, scale, t, a, c);
        mx = v > mx ? v : mx;
    }
    return mx;
}

/* The scores v[0..end-t0) of targets [t0, end) of a tile row, and a mask
 * with bit t set where v[t] >= low and v[t] > bar. */
static inline __attribute__((always_inline)) uint32_t
chunk_pass(const float *restrict S, const float *restrict bias, const float *restrict scale,
           int32_t t0, int32_t end, float a, float c, float low, float bar, float *restrict v)
{
    uint32_t mask = 0;
#pragma omp simd reduction(| : mask)
    for (int32_t t = t0; t < end; t++) {
        float x = tile_score(S, bias, scale, t, a, c);
        v[t - t0] = x;
        mask |= (uint32_t)((x >= low) & (x > bar)) << (t - t0);
    }
    return mask;
}

/* cmax[q] = the largest score in chunk q (TOPN_CHUNK targets) of a tile
 * row: one vectorised, read-only pass. */
MFR_TARGET_CLONES
static void chunk_maxima(const float *restrict S, const float *restrict bias,
                         const float *restrict scale, int32_t len, float a, float c,
                         float *restrict cmax)
{
    for (int32_t t0 = 0; t0 < len; t0 += TOPN_CHUNK)
        cmax[t0 / TOPN_CHUNK] =
            TOPN_SPECIALISE(chunk_max, S, bias, scale, t0, MFR_MIN(len, t0 + TOPN_CHUNK), a, c);
}

MFR_TARGET_CLONES
static uint32_t chunk_candidates(const float *restrict S, const float *restrict bias,
                                 const float *restrict scale, int32_t t0, int32_t end,
                                 float a, float c, float low, float bar, float *restrict v)
{
    return TOPN_SPECIALISE(chunk_pass, S, bias, scale, t0, end, a, c, low, bar, v);
}

/* Index of the lowest set bit of x != 0. */
static inline int32_t lowest_bit(uint32_t x)
{
#if defined(__GNUC__)
    return __builtin_ctz(x);
#else
    int32_t t = 0;
    while (!(x & 1u)) {
        x >>= 1;
        t++;
    }
    return t;
#endif
}

/* The n-th largest of x[0..len), n <= len, keeping the n largest sorted
 * in top[0..n). Most values fail one predictable test against top[n-1]. */
static float nth_largest(const float *x, int32_t len, int32_t n, float *top)
{
    int32_t count = 0;
    for (int32_t i = 0; i < len; i++) {
        float v = x[i];
        if (count == n && !(v > top[n - 1]))
            continue;
        int32_t p = count < n ? count++ : n - 1;
        for (; p > 0 && top[p - 1] < v; p--)
            top[p] = top[p - 1];
        top[p] = v;
    }
    return top[n - 1];
}

/* Offer the scores of one row of a tile (targets j0 + t) to the heap,
 * reading again only the chunks that can hold a better target (one vector
 * pass each gives their scores and candidates): a chunk whose
 * maximum is at most the heap's bar cannot. While the heap is not full
 * the bar is -inf, and the n-th largest chunk maximum L bounds instead: n
 * targets of the tile score >= L, so no target below L can make the list. */
static void select_row(const float *S, const float *bias, const float *scale,
                       const float *cmax, float *scratch, int32_t len, int32_t j0, float a,
                       float c, topn_heap *h)
{
    const int32_t n_chunks = (len + TOPN_CHUNK - 1) / TOPN_CHUNK;
    float low = -INFINITY;
    if (h->count < h->n && n_chunks > h->n)
        low = nth_largest(cmax, n_chunks, h->n, scratch);
    float bar = heap_bar(h), v[TOPN_CHUNK];
    for (int32_t q = 0; q < n_chunks; q++) {
        if (cmax[q] < low || !(cmax[q] > bar))
            continue;
        int32_t t0 = q * TOPN_CHUNK;
        uint32_t mask = chunk_candidates(S, bias, scale, t0, MFR_MIN(len, t0 + TOPN_CHUNK), a,
                                         c, low, bar, v);
        for (; mask; mask &= mask - 1) {
            int32_t t = lowest_bit(mask);
            if (v[t] > bar) {
                heap_offer(h, v[t], j0 + t0 + t);
                bar = heap_bar(h);
            }
        }
    }
}

/* Sort a heap best first (heapsort on the min-heap) and write the row. */
static void heap_write(topn_heap *h, const int32_t *pool, int32_t *items, float *scores,
                       int32_t *count)
{
    for (int32_t end = h->count - 1; end > 0; end--) {
        float s = h->s[0];
        int32_t j = h->j[0];
        h->s[0] = h->s[end];
        h->j[0] = h->j[end];
        h->s[end] = s;
        h->j[end] = j;
        heap_sift_down(h, 0, end);
    }
    for (int32_t t = 0; t < h->n; t++) {
        if (t < h->count) {
            items[t] = pool ? pool[h->j[t]] : h->j[t];
            scores[t] = h->s[t];
        } else {
            items[t] = -1;
            scores[t] = NAN;
        }
    }
    *count = h->count;
}

/* Per-call data shared by the threads: the targets restricted to the pool
 * (rows, biases and scales gathered in pool order) and the map from target
 * index to pool position. Without a pool they are the job's arrays. */
typedef struct {
    const float *Y, *bias, *scale;
    float *own[3]; /* gathered copies, freed at the end */
    int32_t *pos;  /* target -> pool position or -1; NULL without a pool */
    int32_t n_t;   /* number of pool targets */
} topn_targets;

static void targets_free(topn_targets *t)
{
    for (int j = 0; j < 3; j++)
        free(t->own[j]);
    free(t->pos);
}

static int targets_prepare(const topn_job *job, topn_targets *t)
{
    const int32_t k = job->k, n_t = job->pool ? job->n_pool : job->n_y;
    memset(t, 0, sizeof *t);
    t->n_t = n_t;
    t->Y = job->Y;
    t->bias = job->col_bias;
    t->scale = job->col_scale;
    if (!job->pool)
        return MFR_OK;
    size_t m = (size_t)MFR_MAX(n_t, 1);
    float *Y = t->own[0] = malloc(sizeof(float) * m * (size_t)k);
    float *bias = t->own[1] = job->col_bias ? malloc(sizeof(float) * m) : NULL;
    float *scale = t->own[2] = job->col_scale ? malloc(sizeof(float) * m) : NULL;
    t->pos = malloc(sizeof(int32_t) * (size_t)MFR_MAX(job->n_y, 1));
    if (!Y || !t->pos || (job->col_bias && !bias) || (job->col_scale && !scale))
        return MFR_ENOMEM;
    for (int32_t j = 0; j < job->n_y; j++)
        t->pos[j] = -1;
    for (int32_t p = 0; p < n_t; p++) {
        int32_t j = job->pool[p];
        if (j < 0 || j >= job->n_y)
            return MFR_EINDEX;
        if (p > 0 && j <= job->pool[p - 1])
            return MFR_EINVAL; /* not strictly ascending */
        t->pos[j] = p;
        memcpy(Y + (size_t)p * k, job->Y + (size_t)j * k, sizeof(float) * k);
        if (bias)
            bias[p] = job->col_bias[j];
        if (scale)
            scale[p] = job->col_scale[j];
    }
    t->Y = Y;
    t->bias = bias;
    t->scale = scale;
    return MFR_OK;
}

/* Set the scores of skipped targets in the tile [j0, j0 + len) to -inf.
 * A query's skip list is ascending (MFR_EINVAL otherwise) and walked once
 * over all tiles: *cursor is the next entry to place. */
static int skip_in_tile(const topn_job *job, const topn_targets *t, int32_t x, float *S,
                        int32_t j0, int32_t len, int64_t *cursor)
{
    if (job->skip_indptr) {
        const int64_t begin = job->skip_indptr[x], end = job->skip_indptr[x + 1];
        int64_t e = *cursor;
        int32_t prev = e > begin ? job->skip_indices[e - 1] : 0;
        for (; e < end; e++) {
            int32_t i = job->skip_indices[e];
            if ((uint32_t)i >= (uint32_t)job->n_y)
                return MFR_EINDEX;
            if (i < prev)
                return MFR_EINVAL; /* not ascending */
            prev = i;
            int32_t p = t->pos ? t->pos[i] : i; /* -1: not a candidate */
            if (p >= j0 + len)
                break;
            if (p >= j0)
                S[p - j0] = -INFINITY;
        }
        *cursor = e;
    }
    if (job->skip_self) {
        int32_t p = t->pos ? t->pos[x] : x;
        if (p >= j0 && p < j0 + len)
            S[p - j0] = -INFINITY;
    }
    return MFR_OK;
}

/* The lists of queries [r0, r1) with this thread's scratch buffers. */
static int topn_block(const topn_job *job, const topn_targets *t, int64_t r0, int64_t r1,
                      int32_t tile, float *Xb, float *S, float *cmax, float *heap_s,
                      int32_t *heap_j, int64_t *cursor, mfr_topn_lists *out)
{
    const int32_t k = job->k, n = out->n, rows = (int32_t)(r1 - r0);
    const float *A = job->X + (size_t)r0 * k;
    if (job->rows) {
        for (int32_t r = 0; r < rows; r++)
            memcpy(Xb + (size_t)r * k, job->X + (size_t)job->rows[r0 + r] * k,
                   sizeof(float) * k);
        A = Xb;
    }
    topn_heap heaps[TOPN_ROWS];
    for (int32_t r = 0; r < rows; r++) {
        int32_t x = job->rows ? job->rows[r0 + r] : (int32_t)(r0 + r);
        heaps[r] = (topn_heap){heap_s + (size_t)r * n, heap_j + (size_t)r * n, 0, n};
        cursor[r] = job->skip_indptr ? job->skip_indptr[x] : 0;
    }
    const int32_t n_chunks = (tile + TOPN_CHUNK - 1) / TOPN_CHUNK;
    for (int32_t j0 = 0; j0 < t->n_t; j0 += tile) {
        int32_t len = MFR_MIN(tile, t->n_t - j0);
        MFR_BLAS(cblas_sgemm)(MfrRowMajor, MfrNoTrans, MfrTrans, rows, len, k, 1.0f, A, k,
                              t->Y + (size_t)j0 * k, k, 0.0f, S, len);
        for (int32_t r = 0; r < rows; r++) {
            int32_t x = job->rows ? job->rows[r0 + r] : (int32_t)(r0 + r);
            float *Sr = S + (size_t)r * len;
            int status = skip_in_tile(job, t, x, Sr, j0, len, &cursor[r]);
            if (status != MFR_OK)
                return status;
            float c = job->offset + (job->row_offset ? job->row_offset[x] : 0.0f);
            float a = job->row_scale ? job->row_scale[x] : 1.0f;
            const float *bias = t->bias ? t->bias + j0 : NULL;
            const float *scale = t->scale ? t->scale + j0 : NULL;
            chunk_maxima(Sr, bias, scale, len, a, c, cmax);
            select_row(Sr, bias, scale, cmax, cmax + n_chunks, len, j0, a, c, &heaps[r]);
        }
    }
    for (int32_t r = 0; r < rows; r++) {
        size_t at = (size_t)(r0 + r) * n;
        heap_write(&heaps[r], job->pool, out->items + at, out->scores + at,
                   out->counts + r0 + r);
    }
    return MFR_OK;
}

static int topn_run(const topn_job *job, int64_t n_x, mfr_topn_lists *out, int n_threads)
{
    const int32_t k = job->k, n = out->n;
    /* a multiple of 8 blocks (for threads to share evenly) of equal size,
     * at most TOPN_ROWS queries each; fewer blocks when they would hold
     * fewer than 64 (sgemm's packing wants tall blocks) */
    const int64_t want = 8 * MFR_MAX(1, (job->n_query + 8 * TOPN_ROWS - 1) / (8 * TOPN_ROWS));
    const int64_t n_even = MFR_MAX(1, MFR_MIN(want, (job->n_query + 63) / 64));
    const int64_t block =
        MFR_MIN(TOPN_ROWS, MFR_MAX(8, 8 * ((job->n_query + 8 * n_even - 1) / (8 * n_even))));
    const int64_t n_blocks = (job->n_query + block - 1) / block;
    topn_targets t;
    int status;
    if (k < 1 || n < 1 || job->n_query < 0 || job->n_y < 0 || (job->pool && job->n_pool < 0))
        return MFR_EINVAL;
    if (job->rows)
        for (int64_t r = 0; r < job->n_query; r++)
            if (job->rows[r] < 0 || job->rows[r] >= n_x)
                return MFR_EINDEX;
    status = targets_prepare(job, &t);
    if (status != MFR_OK)
        goto cleanup;
    /* targets per tile: the scratch buffer's share of each query, >= 512 */
    const int32_t tile = (int32_t)MFR_MAX(1, MFR_MIN(t.n_t, MFR_MAX(512, TOPN_SCRATCH / block)));
    const int32_t n_chunks = (tile + TOPN_CHUNK - 1) / TOPN_CHUNK;
    mfr_blas_threads_enter(1);
#pragma omp parallel num_threads(mfr_threads(n_threads)) if (n_blocks > 1)
    {
        float *Xb = malloc(sizeof(float) * (size_t)block * (size_t)k);
        float *S = malloc(sizeof(float) * (size_t)block * (size_t)tile);
        float *cmax = malloc(sizeof(float) * 2 * (size_t)n_chunks);
        float *heap_s = malloc(sizeof(float) * (size_t)block * (size_t)n);
        int32_t *heap_j = malloc(sizeof(int32_t) * (size_t)block * (size_t)n);
        int64_t *cursor = malloc(sizeof(int64_t) * (size_t)block);
        if (!Xb || !S || !cmax || !heap_s || !heap_j || !cursor) {
#pragma omp atomic write
            status = MFR_ENOMEM;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t b = 0; b < n_blocks; b++) {
            int failed;
#pragma omp atomic read
            failed = status;
            if (failed != MFR_OK)
                continue;
            int64_t r0 = b * block, r1 = MFR_MIN(job->n_query, r0 + block);
            int s = topn_block(job, &t, r0, r1, tile, Xb, S, cmax, heap_s, heap_j, cursor, out);
            if (s != MFR_OK) {
#pragma omp atomic write
                status = s;
            }
        }
        free(Xb);
        free(S);
        free(cmax);
        free(heap_s);
        free(heap_j);
        free(cursor);
    }
    mfr_blas_threads_leave();
cleanup:
    targets_free(&t);
    return status;
}

/* Checks of a CSR whose rows are used as skip lists. */
static int check_skip_csr(const mfr_csr *c, int32_t n_rows, int32_t n_cols)
{
    if (c->n_rows != n_rows || c->n_cols != n_cols || c->nnz < 0 || c->indptr[0] != 0 ||
        c->indptr[n_rows] != c->nnz)
        return MFR_EINVAL;
    for (int32_t r = 0; r < n_rows; r++)
        if (c->indptr[r + 1] < c->indptr[r])
            return MFR_EINVAL;
    return MFR_OK;
}

int mfr_recommend(const mfr_model *m, int64_t n_query, const int32_t *users,
                  const mfr_csr *seen, int32_t n_pool, const int32_t *pool,
                  mfr_topn_lists *out, int n_threads)
{
    if (!users && n_query != m->n_users)
        return MFR_EINVAL;
    if (seen) {
        int status = check_skip_csr(seen, m->n_users, m->n_items);
        if (status != MFR_OK)
            return status;
    }
    topn_job job = {
        .k = m->k, .X = m->P, .rows = users, .n_query = n_query,
        .offset = (float)m->global_mean, .row_offset = m->user_bias,
        .Y = m->Q, .n_y = m->n_items, .col_bias = m->item_bias,
        .skip_indptr = seen ? seen->indptr : NULL,
        .skip_indices = seen ? seen->indices : NULL,
        .n_pool = n_pool, .pool = pool,
    };
    return topn_run(&job, m->n_users, out, n_threads);
}

int mfr_recommend_vector(const mfr_model *m, const float *x, float b,
                         int32_t n_skip, const int32_t *skip, int32_t n_pool,
                         const int32_t *pool, mfr_topn_lists *out)
{
    const int64_t skip_indptr[2] = {0, n_skip};
    if (n_skip < 0)
        return MFR_EINVAL;
    topn_job job = {
        .k = m->k, .X = x, .n_query = 1,
        .offset = (float)m->global_mean, .row_offset = m->user_bias ? &b : NULL,
        .Y = m->Q, .n_y = m->n_items, .col_bias = m->item_bias,
        .skip_indptr = skip_indptr, .skip_indices = skip,
        .n_pool = n_pool, .pool = pool,
    };
    return topn_run(&job, 1, out, 1);
}

MFR_TARGET_CLONES
static void inverse_norms(int32_t n_rows, int32_t k, const float *F, float *inv)
{
    for (int32_t j = 0; j < n_rows; j++) {
        const float *f = F + (size_t)j * k;
        double norm = sqrt((double)mfr_dot(f, f, k));
        inv[j] = norm > 0.0 ? (float)(1.0 / norm) : 0.0f;
    }
}

int mfr_similar(int32_t n_rows, int32_t k, const float *F, int64_t n_query,
                const int32_t *query, int32_t n_pool, const int32_t *pool,
                mfr_topn_lists *out, int n_threads)
{
    if (n_rows < 0 || k < 1 || !query)
        return MFR_EINVAL;
    float *inv = malloc(sizeof(float) * (size_t)MFR_MAX(n_rows, 1));
    if (!inv)
        return MFR_ENOMEM;
    inverse_norms(n_rows, k, F, inv);
    topn_job job = {
        .k = k, .X = F, .rows = query, .n_query = n_query, .row_scale = inv,
        .Y = F, .n_y = n_rows, .col_scale = inv, .skip_self = 1,
        .n_pool = n_pool, .pool = pool,
    };
    int status = topn_run(&job, n_rows, out, n_threads);
    free(inv);
    return status;
}
