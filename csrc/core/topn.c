/*
 * topn.c - top-N lists: recommendations, cosine neighbours, fold-in.
 *
 * Every list comes from one engine. For a query row x and target j
 *   score(x, j) = c + c_x + b_j + s_x s_j (X[x] . Y[j])
 * recommend:  X = P, Y = Q, c = mu, c_x = b_u, b_j = b_i, s = 1;
 * similar:    X = Y = F, c = c_x = b_j = 0, s = 1 / |row| (cosine).
 * Queries are taken in blocks of up to TOPN_ROWS (tall blocks amortise
 * sgemm's packing of each tile of item factors) and targets in tiles; a
 * tile's dot products come from one sgemm into a scratch buffer that stays
 * in cache. One vectorised pass over a row takes the maximum score of each
 * chunk of 32 targets; only the few chunks whose maximum reaches the heap's
 * bar are read again, and their candidates go through a bounded heap of n
 * (a candidate on a query's skip list, found by binary search, is passed
 * over). The heap orders by score, then index, so ties go to the lower
 * index in whatever order the targets come, as documented in mfrec.h.
 * Small batches visit the targets by index, in tiles as wide as a 1 MiB
 * buffer allows. Batches of TOPN_ORDER_MIN queries or more of recommend
 * over 2048 targets or more (topn_ordered) visit them by decreasing |Q[j]|
 * instead, in tiles of TOPN_TILE_BOUNDED:
 * by Cauchy-Schwarz no target from position p on scores above
 *   c + c_x + max b_j + |X[x]| max |Q[j]|     (maxima over positions >= p)
 * (plus the float rounding of the sums), so a query whose list is full and
 * whose n-th best beats that bound is done, and leaves its block; fitted
 * models' scores are led by the items of large norm, and most queries are
 * done after a small share of the catalogue (2 % of the pairs on a 1M
 * ratings wals model of MovieLens 25M's shape). Block and tile sizes
 * depend on the batch, not on the thread count, and so do the lists.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "internal.h"

#define TOPN_ROWS 512           /* at most this many queries per block (sgemm's m) */
#define TOPN_SCRATCH (1 << 18)  /* scores per block x tile: 1 MiB of floats */
#define TOPN_CHUNK 32           /* targets per chunk maximum */
#define TOPN_ORDER_MIN 256      /* queries that pay for ordering the targets by reach */
#define TOPN_TILE_BOUNDED 256   /* targets per tile when ordered by reach */

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
    int bound;               /* row_scale and col_scale NULL: stop at the reach bound */
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

/* The score a new entry must reach: -inf until the heap is full. */
static inline float heap_bar(const topn_heap *h)
{
    return h->count < h->n ? -INFINITY : h->s[0];
}

/* (s, j) enters the heap: it ranks before the root, or the heap has room
 * and s > -inf (skipped targets and NaN never enter). */
static inline int heap_takes(const topn_heap *h, float s, int32_t j)
{
    return h->count < h->n ? s > -INFINITY : ranks_after(h->s[0], h->j[0], s, j);
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
 * with bit t set where v[t] >= bar and v[t] > -inf. */
static inline __attribute__((always_inline)) uint32_t
chunk_pass(const float *restrict S, const float *restrict bias, const float *restrict scale,
           int32_t t0, int32_t end, float a, float c, float bar, float *restrict v)
{
    uint32_t mask = 0;
#pragma omp simd reduction(| : mask)
    for (int32_t t = t0; t < end; t++) {
        float x = tile_score(S, bias, scale, t, a, c);
        v[t - t0] = x;
        mask |= (uint32_t)((x >= bar) & (x > -INFINITY)) << (t - t0);
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
                                 float a, float c, float bar, float *restrict v)
{
    return TOPN_SPECIALISE(chunk_pass, S, bias, scale, t0, end, a, c, bar, v);
}

/* The targets in the order they are scored: the pool's or every target,
 * by index, or (bounded calls) by decreasing reach |s_j| |Y_j|, so that
 * the scores the later tiles can reach fall and a query's list is done
 * once its bar beats them (Cauchy-Schwarz: X . Y_j <= |X| |Y_j|). Rows,
 * biases and scales are gathered in that order; id maps a position back to
 * its target index. */
typedef struct {
    const float *Y, *bias, *scale;
    const int32_t *id;       /* position -> target index; NULL: the same */
    const float *reach;      /* the largest reach from position p on; NULL: no bound */
    const float *top_bias;   /* the largest b_j from position p on; NULL: no biases */
    void *own[6];            /* what was allocated, freed at the end */
    int32_t n_t;
} topn_targets;

static void targets_free(topn_targets *t)
{
    for (int j = 0; j < 6; j++)
        free(t->own[j]);
}

static float row_norm(const float *x, int32_t k)
{
    double s = 0.0;
    for (int32_t i = 0; i < k; i++)
        s += (double)x[i] * x[i];
    return (float)sqrt(s);
}

/* The sort key of a reach r >= 0 (the bits of +inf less its bits):
 * larger reach first; NaN last (such targets never score). */
#define REACH_INF 0x7f800000u
static uint32_t reach_key(float r)
{
    uint32_t bits;
    memcpy(&bits, &r, sizeof bits);
    return r >= 0.0f ? REACH_INF - bits : 0xffffffffu;
}

/* Sort the targets id[0..n_t) (ascending) by decreasing reach, ties by
 * index, and fill the suffix maxima. */
static int targets_order(const topn_job *job, int32_t *id, topn_targets *t)
{
    const int32_t n_t = t->n_t;
    const size_t m = (size_t)MFR_MAX(n_t, 1);
    uint64_t *keys = malloc(sizeof(uint64_t) * 2 * m); /* (reach key, id) */
    float *reach = t->own[3] = malloc(sizeof(float) * m);
    float *top = t->own[4] = job->col_bias ? malloc(sizeof(float) * m) : NULL;
    int status = MFR_ENOMEM;
    if (!keys || !reach || (job->col_bias && !top))
        goto cleanup;
    for (int32_t p = 0; p < n_t; p++) {
        int32_t j = id[p];
        float r = row_norm(job->Y + (size_t)j * job->k, job->k) *
                  (job->col_scale ? fabsf(job->col_scale[j]) : 1.0f);
        keys[p] = (uint64_t)reach_key(r) << 32 | (uint32_t)j;
    }
    mfr_sort_by_high32(keys, keys + m, n_t);
    /* sorted, a reach is the largest from its position on (NaN: -inf) */
    float most_b = -INFINITY;
    for (int32_t p = n_t - 1; p >= 0; p--) {
        const uint32_t key = (uint32_t)(keys[p] >> 32), bits = REACH_INF - key;
        id[p] = (int32_t)(uint32_t)keys[p];
        memcpy(&reach[p], &bits, sizeof bits);
        reach[p] = key == 0xffffffffu ? -INFINITY : reach[p];
        if (top) {
            float b = job->col_bias[id[p]];
            most_b = b > most_b ? b : most_b; /* NaN biases never score */
            top[p] = most_b;
        }
    }
    t->reach = reach;
    t->top_bias = top;
    status = MFR_OK;
cleanup:
    free(keys);
    return status;
}

/* Rows, biases and scales of the targets, gathered by id. */
static int targets_gather(const topn_job *job, const int32_t *id, topn_targets *t)
{
    const int32_t k = job->k;
    const size_t m = (size_t)MFR_MAX(t->n_t, 1);
    float *Y = t->own[0] = malloc(sizeof(float) * m * (size_t)k);
    float *bias = t->own[1] = job->col_bias ? malloc(sizeof(float) * m) : NULL;
    float *scale = t->own[2] = job->col_scale ? malloc(sizeof(float) * m) : NULL;
    if (!Y || (job->col_bias && !bias) || (job->col_scale && !scale))
        return MFR_ENOMEM;
    for (int32_t p = 0; p < t->n_t; p++) {
        int32_t j = id[p];
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

/* The targets of a job, by index or (order) by reach. */
static int targets_prepare(const topn_job *job, int order, topn_targets *t)
{
    const int32_t n_t = job->pool ? job->n_pool : job->n_y;
    memset(t, 0, sizeof *t);
    t->n_t = n_t;
    t->Y = job->Y;
    t->bias = job->col_bias;
    t->scale = job->col_scale;
    t->id = job->pool;
    for (int32_t p = 0; job->pool && p < n_t; p++) {
        if (job->pool[p] < 0 || job->pool[p] >= job->n_y)
            return MFR_EINDEX;
        if (p > 0 && job->pool[p] <= job->pool[p - 1])
            return MFR_EINVAL; /* not strictly ascending */
    }
    if (!order)
        return job->pool ? targets_gather(job, job->pool, t) : MFR_OK;
    int32_t *id = t->own[5] = malloc(sizeof(int32_t) * (size_t)MFR_MAX(n_t, 1));
    if (!id)
        return MFR_ENOMEM;
    for (int32_t p = 0; p < n_t; p++)
        id[p] = job->pool ? job->pool[p] : p;
    t->id = id;
    int status = targets_order(job, id, t);
    return status != MFR_OK ? status : targets_gather(job, id, t);
}

/* An upper bound on every score that query scores c + a (X . Y_j) + b_j
 * (a = 1, |X| = norm) can take from position p on, with the rounding of
 * the float sums (k products, then the bias) on top: a list whose bar is
 * above it is final. NaN (never true against the bar) where the terms are
 * not finite. */
static double targets_bound(const topn_targets *t, int32_t p, double c, float norm, int32_t k)
{
    double b = t->top_bias ? t->top_bias[p] : 0.0, reach = (double)norm * t->reach[p];
    return c + b + reach + (2.0 * k + 16.0) * 0x1p-24 * (fabs(c) + fabs(b) + reach);
}

/* Targets per tile: by index, the scratch buffer's share of each query,
 * >= 512; by reach, TOPN_TILE_BOUNDED, the step at which a scan can stop
 * (tried at 1M ratings, 512 queries a block, one thread: 128, 256, 512,
 * 1024, 2048 targets took 1.24, 0.97, 1.07, 1.17, 1.43 s of CPU; blocks of
 * 256 and 1024 queries were no faster). */
static int32_t topn_tile(const topn_targets *t, int64_t block)
{
    if (t->reach)
        return MFR_MAX(1, MFR_MIN(t->n_t, TOPN_TILE_BOUNDED));
    return (int32_t)MFR_MAX(1, MFR_MIN(t->n_t, MFR_MAX(512, TOPN_SCRATCH / block)));
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

/* What a query leaves out: its ascending skip list and, for similar
 * lists, itself (-1: nothing). */
typedef struct {
    const int32_t *skip;
    int64_t n_skip;
    int32_t self;
} topn_skip;

/* Target j is left out (a binary search: only candidates that would enter
 * the list are asked, a few per tile). */
static int skipped(const topn_skip *q, int32_t j)
{
    return j == q->self || mfr_sorted_find(q->skip, q->n_skip, j) >= 0;
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

/* -inf in S for target j, if the tile (positions p0 .. p0 + len - 1,
 * targets id[p] ascending, or p without id) holds it. */
static void mask_target(float *S, const int32_t *id, int32_t p0, int32_t len, int32_t j)
{
    const int64_t t = id ? mfr_sorted_find(id + p0, len, j) : j - p0;
    if (t >= 0)
        S[t] = -INFINITY;
}

/* Set the scores of the targets query q leaves out to -inf in a tile row
 * of targets by index (positions p0 .. p0 + len; id: the pool or NULL),
 * walking its skip list from the tile's first target. */
static void mask_skipped(float *S, const int32_t *id, int32_t p0, int32_t len,
                         const topn_skip *q)
{
    const int32_t first = id ? id[p0] : p0, last = id ? id[p0 + len - 1] : p0 + len - 1;
    for (int64_t e = mfr_lower_bound(q->skip, q->n_skip, first);
         e < q->n_skip && q->skip[e] <= last; e++)
        mask_target(S, id, p0, len, q->skip[e]);
    if (q->self >= first && q->self <= last)
        mask_target(S, id, p0, len, q->self);
}

/* Offer the scores of one row of a tile (positions p0 + t, target id[p]
 * or p) to the heap, reading again only the chunks whose maximum reaches
 * the heap's bar (one vector pass each gives their scores and candidates).
 * Targets come in any order of index, so a score equal to the bar is a
 * candidate too and heap_takes settles the tie by index. q NULL: the
 * skipped targets are -inf in S already (mask_skipped), and while the heap
 * is not full the n-th largest chunk maximum L bounds too (n targets of
 * the tile score >= L, so none below L can make the list; top: n floats);
 * else skipped targets are looked up, for the few candidates that would
 * enter. */
static void select_row(const float *S, const float *bias, const float *scale,
                       const float *cmax, int32_t len, int32_t p0, const int32_t *id,
                       float a, float c, const topn_skip *q, topn_heap *h, float *top)
{
    const int32_t n_chunks = (len + TOPN_CHUNK - 1) / TOPN_CHUNK;
    float bar = heap_bar(h), v[TOPN_CHUNK], low = -INFINITY;
    if (!q && h->count < h->n && n_chunks > h->n)
        low = nth_largest(cmax, n_chunks, h->n, top);
    for (int32_t ch = 0; ch < n_chunks; ch++) {
        if (!(cmax[ch] >= bar) || cmax[ch] == -INFINITY || cmax[ch] < low)
            continue;
        int32_t t0 = ch * TOPN_CHUNK;
        uint32_t mask = chunk_candidates(S, bias, scale, t0, MFR_MIN(len, t0 + TOPN_CHUNK), a,
                                         c, bar, v);
        for (; mask; mask &= mask - 1) {
            int32_t t = lowest_bit(mask), p = p0 + t0 + t, j = id ? id[p] : p;
            if (v[t] >= low && heap_takes(h, v[t], j) && !(q && skipped(q, j))) {
                heap_offer(h, v[t], j);
                bar = heap_bar(h);
            }
        }
    }
}

/* Sort a heap best first (heapsort on the min-heap) and write the row. */
static void heap_write(topn_heap *h, int32_t *items, float *scores, int32_t *count)
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
            items[t] = h->j[t];
            scores[t] = h->s[t];
        } else {
            items[t] = -1;
            scores[t] = NAN;
        }
    }
    *count = h->count;
}

/* Check query x's skip list (in bounds, ascending) and point q at it. */
static int skip_get(const topn_job *job, int32_t x, topn_skip *q)
{
    q->self = job->skip_self ? x : -1;
    q->skip = NULL;
    q->n_skip = 0;
    if (!job->skip_indptr)
        return MFR_OK;
    const int64_t begin = job->skip_indptr[x], end = job->skip_indptr[x + 1];
    for (int64_t e = begin; e < end; e++) {
        if ((uint32_t)job->skip_indices[e] >= (uint32_t)job->n_y)
            return MFR_EINDEX;
        if (e > begin && job->skip_indices[e] < job->skip_indices[e - 1])
            return MFR_EINVAL; /* not ascending */
    }
    q->skip = job->skip_indices + begin;
    q->n_skip = end - begin;
    return MFR_OK;
}

/* A thread's scratch buffers for blocks of up to `block` queries. */
typedef struct {
    float *Xb, *S, *cmax, *heap_s, *norm, *top;
    int32_t *heap_j, *active;
    topn_skip *skip;
} topn_scratch;

/* The queries of block [r0, r1) still worth a tile starting at position
 * p0, compacted to the front of w->active (their rows gathered into Xb when
 * the set changed); returns how many. A query leaves for good once its
 * heap is full and its bar beats every score the targets from p0 on can
 * reach (targets_bound). */
static int32_t block_active(const topn_job *job, const topn_targets *t, int64_t r0,
                            int32_t n_active, int32_t p0, topn_heap *heaps, topn_scratch *w)
{
    int32_t kept = 0;
    for (int32_t i = 0; i < n_active; i++) {
        int32_t r = w->active[i], x = job->rows ? job->rows[r0 + r] : (int32_t)(r0 + r);
        double c = job->offset + (job->row_offset ? job->row_offset[x] : 0.0f);
        if (t->reach && heaps[r].count == heaps[r].n &&
            (double)heaps[r].s[0] > targets_bound(t, p0, c, w->norm[r], job->k))
            continue;
        w->active[kept++] = r;
    }
    if (kept < n_active || (p0 == 0 && job->rows))
        for (int32_t i = 0; i < kept; i++) {
            int32_t r = w->active[i], x = job->rows ? job->rows[r0 + r] : (int32_t)(r0 + r);
            memcpy(w->Xb + (size_t)i * job->k, job->X + (size_t)x * job->k,
                   sizeof(float) * job->k);
        }
    return kept;
}

/* The lists of queries [r0, r1): tiles of targets in order, each scored by
 * one sgemm for the queries still active. */
static int topn_block(const topn_job *job, const topn_targets *t, int64_t r0, int64_t r1,
                      int32_t tile, topn_scratch *w, mfr_topn_lists *out)
{
    const int32_t k = job->k, n = out->n, rows = (int32_t)(r1 - r0);
    topn_heap heaps[TOPN_ROWS];
    for (int32_t r = 0; r < rows; r++) {
        int32_t x = job->rows ? job->rows[r0 + r] : (int32_t)(r0 + r);
        heaps[r] = (topn_heap){w->heap_s + (size_t)r * n, w->heap_j + (size_t)r * n, 0, n};
        int status = skip_get(job, x, &w->skip[r]);
        if (status != MFR_OK)
            return status;
        w->active[r] = r;
        w->norm[r] = t->reach ? row_norm(job->X + (size_t)x * k, k) : 0.0f;
    }
    int32_t n_active = rows;
    const float *A = job->rows ? w->Xb : job->X + (size_t)r0 * k;
    for (int32_t p0 = 0; p0 < t->n_t; p0 += tile) {
        int32_t len = MFR_MIN(tile, t->n_t - p0), before = n_active;
        n_active = block_active(job, t, r0, n_active, p0, heaps, w);
        if (n_active == 0)
            break;
        if (n_active < before)
            A = w->Xb;
        MFR_BLAS(cblas_sgemm)(MfrRowMajor, MfrNoTrans, MfrTrans, n_active, len, k, 1.0f, A, k,
                              t->Y + (size_t)p0 * k, k, 0.0f, w->S, len);
        for (int32_t i = 0; i < n_active; i++) {
            int32_t r = w->active[i], x = job->rows ? job->rows[r0 + r] : (int32_t)(r0 + r);
            float *Sr = w->S + (size_t)i * len;
            float c = job->offset + (job->row_offset ? job->row_offset[x] : 0.0f);
            float a = job->row_scale ? job->row_scale[x] : 1.0f;
            const float *bias = t->bias ? t->bias + p0 : NULL;
            const float *scale = t->scale ? t->scale + p0 : NULL;
            if (!t->reach) /* by index: masked in the tile, the old way */
                mask_skipped(Sr, t->id, p0, len, &w->skip[r]);
            chunk_maxima(Sr, bias, scale, len, a, c, w->cmax);
            select_row(Sr, bias, scale, w->cmax, len, p0, t->id, a, c,
                       t->reach ? &w->skip[r] : NULL, &heaps[r], w->top);
        }
    }
    for (int32_t r = 0; r < rows; r++) {
        size_t at = (size_t)(r0 + r) * n;
        heap_write(&heaps[r], out->items + at, out->scores + at, out->counts + r0 + r);
    }
    return MFR_OK;
}

static void scratch_free(topn_scratch *w)
{
    free(w->Xb);
    free(w->S);
    free(w->cmax);
    free(w->heap_s);
    free(w->norm);
    free(w->top);
    free(w->heap_j);
    free(w->active);
    free(w->skip);
}

static int scratch_new(topn_scratch *w, int64_t block, int32_t tile, int32_t k, int32_t n)
{
    const size_t b = (size_t)block;
    w->Xb = malloc(sizeof(float) * b * (size_t)k);
    w->S = malloc(sizeof(float) * b * (size_t)tile);
    w->cmax = malloc(sizeof(float) * (size_t)((tile + TOPN_CHUNK - 1) / TOPN_CHUNK));
    w->heap_s = malloc(sizeof(float) * b * (size_t)n);
    w->norm = malloc(sizeof(float) * b);
    w->top = malloc(sizeof(float) * (size_t)n);
    w->heap_j = malloc(sizeof(int32_t) * b * (size_t)n);
    w->active = malloc(sizeof(int32_t) * b);
    w->skip = malloc(sizeof(topn_skip) * b);
    return w->Xb && w->S && w->cmax && w->heap_s && w->norm && w->top && w->heap_j &&
                   w->active && w->skip
               ? MFR_OK
               : MFR_ENOMEM;
}

/* Whether a job scans the targets by reach: recommend, with enough queries
 * to pay for the ordering and enough targets for a scan to stop early (on
 * MovieLens 100K's 1682 items the tiles' overhead outweighed it: 12 ms for
 * recommend_all(10) of all 943 users on one thread, against 6-9 ms). */
static int topn_ordered(const topn_job *job)
{
    const int32_t n_t = job->pool ? job->n_pool : job->n_y;
    return job->bound && job->n_query >= TOPN_ORDER_MIN && n_t >= 8 * TOPN_TILE_BOUNDED;
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
    status = targets_prepare(job, topn_ordered(job), &t);
    if (status != MFR_OK)
        goto cleanup;
    const int32_t tile = topn_tile(&t, block);
    mfr_blas_threads_enter(1);
#pragma omp parallel num_threads(mfr_threads(n_threads)) if (n_blocks > 1)
    {
        topn_scratch w;
        if (scratch_new(&w, block, tile, k, n) != MFR_OK) {
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
            int s = topn_block(job, &t, r0, r1, tile, &w, out);
            if (s != MFR_OK) {
#pragma omp atomic write
                status = s;
            }
        }
        scratch_free(&w);
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
        .n_pool = n_pool, .pool = pool, .bound = 1,
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
