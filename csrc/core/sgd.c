/*
 * sgd.c - one epoch of stochastic gradient descent for matrix factorization.
 *
 * Objective over the observed ratings (u, i, r):
 *   L = sum (r - r_hat)^2 + lambda (|p_u|^2 + |q_i|^2 + b_u^2 + b_i^2)
 *   r_hat = mu + b_u + b_i + p_u . q_i      (biases only when enabled)
 * Per rating, with e = r - r_hat measured before the update and the
 * factor 2 of the gradient folded into the learning rate (as Funk,
 * Surprise and LIBMF do):
 *   b_u += lr (e - lambda b_u)           b_i += lr (e - lambda b_i)
 *   p_u += lr (e q_i - lambda p_u)       q_i += lr (e p_u - lambda q_i)
 * (q_i's step uses the p_u from before its own step). A document whose
 * gradient is 2 e q with rate eta corresponds to lr = 2 eta here.
 *
 * The ratings go in an order shuffled from (seed, epoch). Users and items
 * may be cut into G balanced stripes, the ratings of each of the G x G
 * blocks stepped together in their shuffled order:
 * - for the caches, G is at least cache_stripes: a block's factor rows
 *   then stay in cache while it runs (LIBMF's blocks);
 * - for threads, G is at least 2 * threads: in each of G rounds the G
 *   blocks (s, (s + round) mod G) share no user and no item, so they run
 *   concurrently without locks (the stratified SGD of Gemulla et al. and
 *   LIBMF).
 * Blocks are whole units of work, so the result depends on G but not on
 * which thread ran which block. One thread runs the blocks row after row
 * of the grid, so that a user stripe stays in cache for a whole row.
 *
 * With side features (features.c) the rows are p_u^eff = p_u + sum_a X_ua Z_a
 * and q_i^eff = q_i + sum_g Y_ig W_g (biases b^eff likewise with c), the
 * prediction is mu + b_u^eff + b_i^eff + p_u^eff . q_i^eff, and the
 * objective adds lambda (|Z_a|^2 + c_a^2) per rating for each of u's
 * features a (and so for i's features g). The step, every gradient taken
 * at the values before the update:
 *   p_u += lr (e q_i^eff - lambda p_u)     q_i += lr (e p_u^eff - lambda q_i)
 *   Z_a += lr (e X_ua q_i^eff - lambda Z_a) W_g += lr (e Y_ig p_u^eff - lambda W_g)
 *   c_a += lr (e X_ua - lambda c_a)        (and the feature biases of g)
 * Feature vectors are shared by many rows, so this epoch is sequential.
 *
 * Negative sampling (p->negatives = s): each epoch adds, for each rating
 * (u, i, r), s pairs (u, j, negative_rating) with j drawn uniformly from
 * the items u has not rated (rejection against u's sorted row), from a
 * stream per epoch and block of ratings; they are shuffled in with the
 * ratings and take the same step. A model trained on ratings alone ranks
 * unrated items by their predicted rating, whatever the chance that the
 * user would pick them at all; the drawn pairs teach it that most unrated
 * items are not picked, which is what top-N lists are judged on.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

mfr_sgd_params mfr_sgd_default_params(void)
{
    mfr_sgd_params p = {0.005f, 0.02f, 1, 1, 0, 0, 0.0f};
    return p;
}

/* A rating in the epoch's shuffled order, gathered with the chunk it is
 * in so the steps stream through it instead of gathering from three arrays. */
typedef struct {
    int32_t u, i;
    float r;
} triplet;

/* How many ratings ahead the kernels prefetch factor rows. */
enum { AHEAD = 4 };

/* Bring a factor row towards L1 a few ratings before it is needed: every
 * line of it (the first line alone was slower once the rows outgrow the
 * caches, at 5M ratings). */
static inline void prefetch_row(const float *row, int32_t k)
{
    for (int32_t f = 0; f < k; f += 16)
        __builtin_prefetch(row + f, 1, 3);
}

/* a . b in four sums of 8 lanes (mfr_dot: two), which the next rating's
 * product waits on for fewer FMAs in turn; for k < 32, mfr_dot. */
static MFR_ALWAYS_INLINE float step_dot(const float *restrict a, const float *restrict b,
                                        int32_t k)
{
    if (k < 32)
        return mfr_dot(a, b, k);
    mfr_v8 s[4] = {{0}};
    int32_t f = 0;
    for (; f + 32 <= k; f += 32)
        for (int c = 0; c < 4; c++)
            s[c] += *(const mfr_v8 *)(a + f + 8 * c) * *(const mfr_v8 *)(b + f + 8 * c);
    for (int c = 0; f + 8 <= k; f += 8, c++)
        s[c] += *(const mfr_v8 *)(a + f) * *(const mfr_v8 *)(b + f);
    if (f < k) { /* the last 8 floats, the lanes summed already masked off */
        const mfr_v8 last = *(const mfr_v8 *)(a + k - 8) * *(const mfr_v8 *)(b + k - 8);
        s[3] += (mfr_v8)((mfr_v8i)last & *(const mfr_v8i *)(mfr_tail_mask + 8 + (k - f)));
    }
    s[0] += s[2];
    s[1] += s[3];
    s[0] += s[1];
    return mfr_sum8(&s[0]);
}

/* The effective row of r (free + weighted feature vectors) into out; the
 * weighted sum of the feature biases into *bias_sum. */
static inline void effective_row(const mfr_features *f, int32_t r, const float *free,
                                 int32_t k, float *restrict out, float *bias_sum)
{
    float b = 0.0f;
    for (int32_t c = 0; c < k; c++)
        out[c] = free[c];
    if (f) {
        for (int64_t t = f->x.indptr[r]; t < f->x.indptr[r + 1]; t++) {
            const float w = f->x.values[t];
            const float *restrict v = f->V + (int64_t)f->x.indices[t] * k;
#pragma omp simd
            for (int32_t c = 0; c < k; c++)
                out[c] += w * v[c];
            if (f->bias)
                b += w * f->bias[f->x.indices[t]];
        }
    }
    *bias_sum = b;
}

/* The step of the features of row r: V_f += lr (e w g - lambda V_f) with
 * g the other side's effective row, and the biases likewise. */
static inline void feature_step(const mfr_features *f, int32_t r, const float *restrict g,
                                int32_t k, float e, float lr, float reg)
{
    for (int64_t t = f->x.indptr[r]; t < f->x.indptr[r + 1]; t++) {
        const float w = f->x.values[t], ew = e * w;
        float *restrict v = f->V + (int64_t)f->x.indices[t] * k;
#pragma omp simd
        for (int32_t c = 0; c < k; c++)
            v[c] += lr * (ew * g[c] - reg * v[c]);
        if (f->bias) {
            float *b = f->bias + f->x.indices[t];
            *b += lr * (ew - reg * *b);
        }
    }
}

/* p += lr (e q^eff - lambda p) and q += lr (e p^eff - lambda q) as
 * keep p + step q^eff (keep = 1 - lr lambda, step = lr e: two operations a
 * float where three were); without features p^eff, q^eff are p, q, read
 * before either changes. */
static MFR_ALWAYS_INLINE void step_rows(float *restrict p, float *restrict q, const float *pe,
                                        const float *qe, int32_t k, float keep, float step)
{
    if (pe == p) {
#pragma omp simd
        for (int32_t f = 0; f < k; f++) {
            const float pf = p[f], qf = q[f];
            p[f] = keep * pf + step * qf;
            q[f] = keep * qf + step * pf;
        }
        return;
    }
#pragma omp simd
    for (int32_t f = 0; f < k; f++) {
        p[f] = keep * p[f] + step * qe[f];
        q[f] = keep * q[f] + step * pe[f];
    }
}

/* The product p_u . q_i of rating t (step_dot). */
static MFR_ALWAYS_INLINE float rating_dot(const mfr_model *m, const triplet *t)
{
    return step_dot(m->P + (int64_t)t->u * m->k, m->Q + (int64_t)t->i * m->k, m->k);
}

/* Updates for the ratings t[0..n). Returns the sum of squared errors, or
 * NaN as soon as an error is no longer finite. features (a constant where
 * this is inlined, so each case is its own loop): uf/itf (either may be
 * NULL) add side features, and pe, qe are scratch rows of k floats for the
 * effective rows; without features the free rows are the effective ones,
 * and the next rating's product is taken before this one's update when
 * the two share no row (the same value: the update leaves its rows alone),
 * so that the update's stores and that product's FMAs overlap. */
static inline __attribute__((always_inline)) double
sgd_steps(mfr_model *m, const mfr_sgd_params *p, const triplet *t, int64_t n,
          const int features, const mfr_features *uf, const mfr_features *itf,
          float *restrict pe, float *restrict qe, double sse)
{
    const int32_t k = m->k;
    const float lr = p->learning_rate, reg = p->regularization;
    const float mu = (float)m->global_mean;
    float *restrict bu = p->biases ? m->user_bias : NULL;
    float *restrict bi = p->biases ? m->item_bias : NULL;
    float next = !features && n > 0 ? rating_dot(m, t) : 0.0f;
    for (int64_t j = 0; j < n; j++) {
        if (j + AHEAD < n) {
            prefetch_row(m->P + (int64_t)t[j + AHEAD].u * k, k);
            prefetch_row(m->Q + (int64_t)t[j + AHEAD].i * k, k);
        }
        const int32_t u = t[j].u, i = t[j].i;
        float *pu = m->P + (int64_t)u * k, *qi = m->Q + (int64_t)i * k;
        float fbu = 0.0f, fbi = 0.0f;
        if (features) {
            effective_row(uf, u, pu, k, pe, &fbu);
            effective_row(itf, i, qi, k, qe, &fbi);
        }
        float pred = features ? step_dot(pe, qe, k) : next;
        if (bu)
            pred += features ? mu + bu[u] + bi[i] + fbu + fbi : mu + bu[u] + bi[i];
        const float e = t[j].r - pred;
        if (!(fabsf(e) < 1e15f)) /* NaN or runaway: stop the epoch */
            return NAN;
        sse += (double)e * e;
        if (bu) {
            bu[u] += lr * (e - reg * bu[u]);
            bi[i] += lr * (e - reg * bi[i]);
        }
        const int early = !features && j + 1 < n && t[j + 1].u != u && t[j + 1].i != i;
        if (early)
            next = rating_dot(m, t + j + 1);
        step_rows(pu, qi, features ? pe : pu, features ? qe : qi, k, 1.0f - lr * reg, lr * e);
        if (!features && !early && j + 1 < n)
            next = rating_dot(m, t + j + 1);
        if (features && uf)
            feature_step(uf, u, qe, k, e, lr, reg);
        if (features && itf)
            feature_step(itf, i, pe, k, e, lr, reg);
    }
    return sse;
}

/* The steps for t[0..n) after others whose squared errors summed to sse:
 * the sum with these (the same double sum, chunk after chunk). */
MFR_TARGET_CLONES
static double sgd_run(mfr_model *m, const mfr_sgd_params *p, const triplet *t, int64_t n,
                      double sse)
{
    return sgd_steps(m, p, t, n, 0, NULL, NULL, NULL, NULL, sse);
}

MFR_TARGET_CLONES
static double sgd_run_features(mfr_model *m, const mfr_features *uf, const mfr_features *itf,
                               const mfr_sgd_params *p, const triplet *t, int64_t n,
                               float *restrict pe, float *restrict qe, double sse)
{
    return sgd_steps(m, p, t, n, 1, uf, itf, pe, qe, sse);
}

/* The largest |x[t]| of x[0..n) (0 for none), infinity if one is not
 * finite. On the bits: with the sign cleared, the order of floats is that
 * of their bits, infinity and NaN above all others; this vectorizes
 * (isfinite in a loop with an early exit did not: a tenth of the epoch's
 * own time at k = 100). */
static double max_abs(const float *x, int64_t n)
{
    uint32_t most = 0;
    for (int64_t t = 0; t < n; t++) {
        uint32_t bits;
        memcpy(&bits, x + t, sizeof bits);
        bits &= 0x7fffffffu;
        most = bits > most ? bits : most;
    }
    if (most >= 0x7f800000u)
        return INFINITY;
    float largest;
    memcpy(&largest, &most, sizeof largest);
    return largest;
}

/* Cut 0..n-1 into g contiguous stripes holding about equal numbers of
 * ratings: contiguous because neighbouring rows share cache lines (of P,
 * Q and the biases) and so must stay with one thread; balanced because
 * each round waits for its slowest block. */
static void balanced_stripes(const int32_t *ids, int64_t nnz, int32_t n, int g, int32_t *stripe)
{
    for (int32_t r = 0; r < n; r++)
        stripe[r] = 0;
    for (int64_t j = 0; j < nnz; j++)
        stripe[ids[j]]++;
    int64_t before = 0;
    for (int32_t r = 0; r < n; r++) {
        int32_t count = stripe[r];
        stripe[r] = (int32_t)MFR_MIN((before + count / 2) * g / nnz, g - 1);
        before += count;
    }
}

static int check_epoch_args(const mfr_model *m, const mfr_sgd_params *p, int64_t nnz,
                            const int32_t *users, const int32_t *items,
                            const float *ratings, const mfr_csr *rated, int epoch)
{
    if (nnz <= 0 || m->k <= 0 || !(p->learning_rate > 0.0f) ||
        !(p->regularization >= 0.0f) || epoch < 0 ||
        (p->biases && (!m->user_bias || !m->item_bias)) || p->negatives < 0 ||
        !isfinite(p->negative_rating))
        return MFR_EINVAL;
    if (p->negatives > 0) {
        if (!rated || rated->n_rows != m->n_users || rated->n_cols != m->n_items)
            return MFR_EINVAL;
    }
    return mfr_check_triplets(nnz, users, m->n_users, items, m->n_items, ratings);
}

/* Whether row u of the CSR holds column j (columns ascending). */
static int row_has(const mfr_csr *c, int32_t u, int32_t j)
{
    return mfr_sorted_find(c->indices + c->indptr[u], c->indptr[u + 1] - c->indptr[u], j) >= 0;
}

#define NEGATIVE_STREAM (UINT64_C(1) << 40) /* apart from the shuffle's streams */

#define NEGATIVE_BLOCK 65536 /* ratings whose negatives share a stream */

/* The epoch's negatives after the nnz ratings in users/items/ratings:
 * p->negatives per rating, none for a user who rated every item. Each
 * block of NEGATIVE_BLOCK ratings draws from its own stream into its own
 * slots, so threads may share the blocks and the draws stay the same; the
 * slots of users who rated everything are marked (user -1) and squeezed
 * out at the end. Returns how many were written. */
static int64_t draw_negatives(const mfr_model *m, const mfr_sgd_params *p,
                              const mfr_csr *rated, int64_t nnz, int epoch, int32_t *users,
                              int32_t *items, float *ratings)
{
    const int32_t s = p->negatives;
    const int64_t n_blocks = (nnz + NEGATIVE_BLOCK - 1) / NEGATIVE_BLOCK;
    int64_t skipped = 0;
#pragma omp parallel for schedule(dynamic, 1) reduction(+ : skipped) \
    num_threads(mfr_threads(p->n_threads)) if (n_blocks > 1)
    for (int64_t b = 0; b < n_blocks; b++) {
        mfr_rng rng;
        mfr_rng_seed(&rng, p->seed,
                     NEGATIVE_STREAM + ((uint64_t)epoch << 24) + (uint64_t)b);
        const int64_t end = MFR_MIN(nnz, (b + 1) * NEGATIVE_BLOCK);
        for (int64_t t = b * NEGATIVE_BLOCK; t < end; t++) {
            const int32_t u = users[t];
            const int full = rated->indptr[u + 1] - rated->indptr[u] >= m->n_items;
            skipped += full ? s : 0;
            for (int64_t c = nnz + t * s; c < nnz + (t + 1) * s; c++) {
                int32_t j = -1;
                if (!full)
                    do
                        j = (int32_t)mfr_rng_below(&rng, (uint64_t)m->n_items);
                    while (row_has(rated, u, j));
                users[c] = full ? -1 : u;
                items[c] = j;
                ratings[c] = p->negative_rating;
            }
        }
    }
    const int64_t end = nnz + nnz * s;
    if (skipped == 0)
        return end - nnz;
    int64_t out = nnz;
    for (int64_t c = nnz; c < end; c++)
        if (users[c] >= 0) {
            users[out] = users[c];
            items[out] = items[c];
            ratings[out] = ratings[c];
            out++;
        }
    return out - nnz;
}

/* Positions 0..n-1 of the epoch's ratings: int32 while n fits (4 bytes a
 * rating), int64 beyond. */
typedef struct {
    void *at;
    int wide;
} positions;

static inline int64_t position(positions o, int64_t j)
{
    return o.wide ? ((const int64_t *)o.at)[j] : ((const int32_t *)o.at)[j];
}

static inline void set_position(positions o, int64_t j, int64_t t)
{
    if (o.wide)
        ((int64_t *)o.at)[j] = t;
    else
        ((int32_t *)o.at)[j] = (int32_t)t;
}

/* An epoch's work: its ratings (the given ones, or copies with the drawn
 * negatives after them) and the order they are stepped in (with g > 1,
 * sorted by block within segments: see sort_segments). */
typedef struct {
    const int32_t *users, *items;
    const float *ratings;
    int64_t n;
    positions order;
    int64_t *run_ptr; /* g > 1: see sort_segments */
    int32_t *own_users, *own_items;
    float *own_ratings;
} epoch_plan;

static void epoch_plan_free(epoch_plan *e)
{
    free(e->order.at);
    free(e->run_ptr);
    free(e->own_users);
    free(e->own_items);
    free(e->own_ratings);
}

enum { SEGMENT = 65536 }; /* positions of the order sorted by block at a time */

/* g > 1: each segment of SEGMENT positions of e->order sorted by block of
 * the g x g grid of balanced stripes, stably, so that the shuffled order
 * stays within each block; block b's run in segment s is then
 * [s SEGMENT + run_ptr[s (nb + 1) + b], s SEGMENT + run_ptr[s (nb + 1) + b + 1]).
 * Block b's ratings are its runs, segment after segment: its share of the
 * shuffled order, with no second array of positions (4 bytes a rating). */
static int sort_segments(const mfr_model *m, int g, epoch_plan *e)
{
    const int nb = g * g;
    const int64_t n = e->n, n_segments = (n + SEGMENT - 1) / SEGMENT;
    const size_t width = e->order.wide ? sizeof(int64_t) : sizeof(int32_t);
    int32_t *user_stripe = malloc((size_t)m->n_users * sizeof *user_stripe);
    int32_t *item_stripe = malloc((size_t)m->n_items * sizeof *item_stripe);
    int32_t *block = malloc((size_t)SEGMENT * sizeof *block);
    positions sorted = {malloc((size_t)SEGMENT * width), e->order.wide};
    e->run_ptr = malloc((size_t)MFR_MAX(n_segments, 1) * (nb + 1) * sizeof *e->run_ptr);
    int status = user_stripe && item_stripe && block && sorted.at && e->run_ptr ? MFR_OK
                                                                                 : MFR_ENOMEM;
    if (status == MFR_OK) {
        balanced_stripes(e->users, n, m->n_users, g, user_stripe);
        balanced_stripes(e->items, n, m->n_items, g, item_stripe);
    }
    for (int64_t seg = 0; seg < n_segments && status == MFR_OK; seg++) {
        const int64_t lo = seg * SEGMENT, len = MFR_MIN(SEGMENT, n - lo);
        int64_t *ptr = e->run_ptr + seg * (nb + 1);
        for (int b = 0; b <= nb; b++)
            ptr[b] = 0;
        for (int64_t j = 0; j < len; j++) {
            const int64_t t = position(e->order, lo + j);
            block[j] = user_stripe[e->users[t]] * g + item_stripe[e->items[t]];
            ptr[block[j] + 1]++;
        }
        for (int b = 0; b < nb; b++)
            ptr[b + 1] += ptr[b];
        for (int64_t j = 0; j < len; j++)
            set_position(sorted, ptr[block[j]]++, position(e->order, lo + j));
        for (int b = nb; b > 0; b--) /* shift back to run starts */
            ptr[b] = ptr[b - 1];
        ptr[0] = 0;
        memcpy((char *)e->order.at + (size_t)lo * width, sorted.at, (size_t)len * width);
    }
    free(user_stripe);
    free(item_stripe);
    free(block);
    free(sorted.at);
    return status;
}

/* e->order: 0..n-1 shuffled from (seed, epoch), then (g > 1) sorted by
 * block within segments (sort_segments). The ratings are gathered a chunk
 * at a time (run_range) rather than packed whole: 4 bytes a rating. */
static int shuffle(const mfr_model *m, const mfr_sgd_params *p, int epoch, int g,
                   epoch_plan *e)
{
    const int64_t n = e->n;
    const int wide = n > INT32_MAX;
    e->order = (positions){malloc((size_t)MFR_MAX(n, 1) * (wide ? sizeof(int64_t)
                                                                : sizeof(int32_t))), wide};
    if (!e->order.at)
        return MFR_ENOMEM;
    mfr_rng rng;
    mfr_rng_seed(&rng, p->seed, (uint64_t)epoch);
    if (wide)
        mfr_rng_permutation(&rng, n, e->order.at);
    else
        mfr_rng_permutation32(&rng, (int32_t)n, e->order.at);
    return g == 1 ? MFR_OK : sort_segments(m, g, e);
}

/* The epoch's plan: the nnz ratings and, with negative sampling, the pairs
 * drawn for them; shuffled (see shuffle). Freed by epoch_plan_free. */
static int epoch_plan_make(const mfr_model *m, const mfr_sgd_params *p, int64_t nnz,
                           const int32_t *users, const int32_t *items, const float *ratings,
                           const mfr_csr *rated, int epoch, int g, epoch_plan *e)
{
    *e = (epoch_plan){users, items, ratings, nnz, {NULL, 0}, NULL, NULL, NULL, NULL};
    if (p->negatives > 0) {
        if (nnz > INT64_MAX / 16 / (1 + (int64_t)p->negatives))
            return MFR_ENOMEM;
        const size_t cap = (size_t)nnz * (1 + (size_t)p->negatives);
        e->own_users = malloc(cap * sizeof *e->own_users);
        e->own_items = malloc(cap * sizeof *e->own_items);
        e->own_ratings = malloc(cap * sizeof *e->own_ratings);
        if (!e->own_users || !e->own_items || !e->own_ratings)
            return MFR_ENOMEM;
        memcpy(e->own_users, users, (size_t)nnz * sizeof *users);
        memcpy(e->own_items, items, (size_t)nnz * sizeof *items);
        memcpy(e->own_ratings, ratings, (size_t)nnz * sizeof *ratings);
        e->n += draw_negatives(m, p, rated, nnz, epoch, e->own_users, e->own_items,
                               e->own_ratings);
        e->users = e->own_users;
        e->items = e->own_items;
        e->ratings = e->own_ratings;
    }
    return shuffle(m, p, epoch, g, e);
}

enum { CHUNK = 2048 }; /* ratings gathered at a time: 24 KB, in L1/L2 */

/* The steps for the ratings order[lo..hi) of plan e, gathered a chunk at a
 * time, after others whose squared errors summed to sse: returns the sum
 * with theirs, in order (NaN: diverged). scratch: 2k floats for the
 * effective rows with features, else NULL. */
static double run_range(mfr_model *m, const mfr_sgd_params *p, const epoch_plan *e, int64_t lo,
                        int64_t hi, const mfr_features *uf, const mfr_features *itf,
                        float *scratch, double sse)
{
    triplet chunk[CHUNK];
    for (int64_t c = lo; c < hi && !isnan(sse); c += CHUNK) {
        const int64_t len = MFR_MIN(CHUNK, hi - c);
        for (int64_t j = 0; j < len; j++) {
            const int64_t t = position(e->order, c + j);
            chunk[j] = (triplet){e->users[t], e->items[t], e->ratings[t]};
        }
        sse = scratch ? sgd_run_features(m, uf, itf, p, chunk, len, scratch, scratch + m->k, sse)
                      : sgd_run(m, p, chunk, len, sse);
    }
    return sse;
}

/* Block b of the g x g grid: its runs, segment after segment (see
 * sort_segments). */
static double run_block(mfr_model *m, const mfr_sgd_params *p, const epoch_plan *e, int g,
                        int b)
{
    const int nb = g * g;
    double sse = 0.0;
    for (int64_t lo = 0, seg = 0; lo < e->n; lo += SEGMENT, seg++) {
        const int64_t *ptr = e->run_ptr + seg * (nb + 1);
        sse = run_range(m, p, e, lo + ptr[b], lo + ptr[b + 1], NULL, NULL, NULL, sse);
    }
    return sse;
}

/* Bounds on the size of a side's effective rows' entries and biases: its
 * own largest, plus (with features) the largest sum of a row's |weights|
 * times the features' largest. Infinity or NaN when a value is not finite. */
typedef struct {
    double row, bias;
} side_bound;

static side_bound bound_side(const float *rows, const float *bias, int32_t n, int32_t k,
                             const mfr_features *f)
{
    side_bound b = {max_abs(rows, (int64_t)n * k), bias ? max_abs(bias, n) : 0.0};
    if (f) {
        double w = 0.0;
        for (int32_t r = 0; r < f->x.n_rows; r++) {
            double s = 0.0;
            for (int64_t t = f->x.indptr[r]; t < f->x.indptr[r + 1]; t++)
                s += fabs(f->x.values[t]);
            w = MFR_MAX(w, s);
        }
        b.row += w * max_abs(f->V, (int64_t)f->x.n_cols * k);
        if (f->bias)
            b.bias += w * max_abs(f->bias, f->x.n_cols);
    }
    return b;
}

/* Whether every factor and bias is finite and no prediction
 * mu + b_u + b_i + p_u . q_i can overflow a float: its size is at most
 * |mu| + max |b_u| + max |b_i| + k max |p_u| max |q_i|. Finite factors
 * past that are a diverged fit whose running errors were still finite. */
static int predictions_bounded(const mfr_model *m, int biases, const mfr_features *uf,
                               const mfr_features *itf)
{
    const side_bound u = bound_side(m->P, biases ? m->user_bias : NULL, m->n_users, m->k, uf);
    const side_bound i = bound_side(m->Q, biases ? m->item_bias : NULL, m->n_items, m->k, itf);
    return fabs(m->global_mean) + u.bias + i.bias + (double)m->k * u.row * i.row < FLT_MAX;
}

enum { BLOCK_BYTES = 2 << 20, MAX_STRIPES = 64 };

/* Stripes a side whose blocks' factor rows (a user stripe and an item
 * stripe) take at most BLOCK_BYTES, up to MAX_STRIPES; 1 while all of P
 * and Q fit (MovieLens 100K at k = 100: 1 MiB). At 25M ratings (P and Q
 * 54 MiB: 28 stripes) an epoch took 15-25% less than in the whole
 * shuffled order, whose factor rows mostly came from DRAM. */
static int cache_stripes(const mfr_model *m)
{
    const double bytes = ((double)m->n_users + m->n_items) * m->k * sizeof(float);
    return (int)MFR_MIN(ceil(bytes / BLOCK_BYTES), MAX_STRIPES);
}

int mfr_sgd_epoch(mfr_model *m, const mfr_sgd_params *p, int64_t nnz,
                  const int32_t *users, const int32_t *items,
                  const float *ratings, const mfr_csr *rated, int epoch, double *loss)
{
    epoch_plan e = {0};
    double *block_sse = NULL;
    double sse = 0.0;
    const int threads = mfr_threads(p->n_threads);
    const int g = MFR_MAX(cache_stripes(m), threads == 1 ? 1 : 2 * threads);
    int status = check_epoch_args(m, p, nnz, users, items, ratings, rated, epoch);
    if (status != MFR_OK)
        return status;

    block_sse = calloc((size_t)g * g, sizeof *block_sse);
    if (!block_sse) {
        status = MFR_ENOMEM;
        goto cleanup;
    }
    status = epoch_plan_make(m, p, nnz, users, items, ratings, rated, epoch, g, &e);
    if (status != MFR_OK)
        goto cleanup;

    if (g == 1) {
        sse = run_range(m, p, &e, 0, e.n, NULL, NULL, NULL, 0.0);
    } else if (threads == 1) {
        for (int b = 0; b < g * g; b++)
            block_sse[b] = run_block(m, p, &e, g, b);
    } else {
        /* one team for the epoch; the loop's barrier ends each round */
#pragma omp parallel num_threads(threads)
        for (int round = 0; round < g; round++) {
#pragma omp for schedule(dynamic, 1)
            for (int s = 0; s < g; s++) {
                int b = s * g + (s + round) % g;
                block_sse[b] = run_block(m, p, &e, g, b);
            }
        }
    }
    for (int b = 0; b < g * g; b++) /* fixed order: thread-independent (g = 1: + 0) */
        sse += block_sse[b];
    if (!isfinite(sse) || !predictions_bounded(m, p->biases, NULL, NULL)) {
        status = MFR_EDIVERGED;
        goto cleanup;
    }
    *loss = sse / (double)e.n;
cleanup:
    epoch_plan_free(&e);
    free(block_sse);
    return status;
}
/* Features of n_rows rows that fit the model: checked X, and feature
 * biases exactly when the model has biases. */
static int check_features(const mfr_features *f, int32_t n_rows, int biases)
{
    if (!f)
        return MFR_OK;
    if (biases != (f->bias != NULL))
        return MFR_EINVAL;
    return mfr_features_check(f, n_rows);
}

int mfr_sgd_epoch_features(mfr_model *m, const mfr_features *user_f,
                           const mfr_features *item_f, const mfr_sgd_params *p,
                           int64_t nnz, const int32_t *users, const int32_t *items,
                           const float *ratings, const mfr_csr *rated, int epoch,
                           double *loss)
{
    epoch_plan e = {0};
    float *scratch = NULL;
    int status = check_epoch_args(m, p, nnz, users, items, ratings, rated, epoch);
    if (status == MFR_OK)
        status = check_features(user_f, m->n_users, p->biases);
    if (status == MFR_OK)
        status = check_features(item_f, m->n_items, p->biases);
    if (status != MFR_OK)
        return status;

    scratch = malloc(2 * (size_t)m->k * sizeof *scratch);
    if (!scratch) {
        status = MFR_ENOMEM;
        goto cleanup;
    }
    status = epoch_plan_make(m, p, nnz, users, items, ratings, rated, epoch, 1, &e);
    if (status != MFR_OK)
        goto cleanup;
    double sse = run_range(m, p, &e, 0, e.n, user_f, item_f, scratch, 0.0);
    if (!isfinite(sse) || !predictions_bounded(m, p->biases, user_f, item_f)) {
        status = MFR_EDIVERGED;
        goto cleanup;
    }
    *loss = sse / (double)e.n;
cleanup:
    epoch_plan_free(&e);
    free(scratch);
    return status;
}
