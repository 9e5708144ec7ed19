/*
 * vocab.c - the distinct values among fixed-width records, numbered in
 * order of first occurrence: the hashing half of mapping raw ids (NumPy
 * str, bytes or int64 arrays, read as records of their itemsize) to
 * contiguous indices. The caller sorts the few distinct values and
 * renumbers.
 *
 * An open-addressing hash table with linear probing, at most half full.
 * A slot holds the high 32 bits of the record's 64-bit hash (the low bits
 * pick the slot) and its number; the distinct records are kept in a
 * compact copy (not the caller's, whose first occurrences lie far apart in
 * memory). The slot of a record some places ahead is prefetched while
 * this one is looked up: for a table larger than the cache, a lookup is
 * one memory latency, and this overlaps them.
 *
 * The first pass takes a matching tag for a match, so that a lookup waits
 * for one load, not two (the slot, then the record it names); a second
 * pass then compares every record with the one its number names, loads
 * that do not wait for each other. Should one differ (two records in one
 * probe sequence shared their 32-bit tag: a chance of 2^-32 for each
 * occupied slot a lookup passes, or ids made to collide), the table is
 * rebuilt comparing the records at every matching tag. Either way the
 * numbers are exact.
 */
#define _DEFAULT_SOURCE /* madvise */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <sys/mman.h>
#endif

#include "internal.h"

#define AHEAD 16 /* records hashed and prefetched ahead of the lookup */
/* for the few lines run once per record */
#define HOT static inline __attribute__((always_inline))

typedef struct {
    uint32_t tag;  /* hash >> 32 */
    int32_t code;  /* -1: empty */
} slot;

typedef struct {
    slot *slots;
    uint64_t mask;        /* slots - 1, a power of two minus one */
    unsigned char *store; /* the distinct records, by number */
    int64_t n, cap;       /* distinct records held, and room in store */
    size_t width;
} table;

HOT uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 33);
}

/* The last width % 8 bytes, zero-padded (records have one width, so the
 * padding cannot make two of them equal); 4 at once, as str records end. */
HOT uint64_t tail_word(const unsigned char *p, size_t rest)
{
    uint32_t lo = 0;
    uint64_t x = 0;
    size_t j = 0;
    if (rest >= 4) {
        memcpy(&lo, p, 4);
        j = 4;
    }
    for (; j < rest; j++)
        x |= (uint64_t)p[j] << (8 * j);
    return x | lo;
}

/* A multiply and a shift per 8 bytes, chained, then a full avalanche. */
HOT uint64_t hash_record(const unsigned char *p, size_t width)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL, x;
    size_t j = 0;
    for (; j + 8 <= width; j += 8) {
        memcpy(&x, p + j, 8);
        h = (h ^ x) * 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 29;
    }
    if (j < width)
        h = (h ^ tail_word(p + j, width - j)) * 0xbf58476d1ce4e5b9ULL;
    return mix(h);
}

/* Equal records, 8 bytes at a time (a call to memcmp costs more than
 * the few words of an id). */
HOT int same_record(const unsigned char *a, const unsigned char *b, size_t width)
{
    uint64_t x, y;
    size_t j = 0;
    for (; j + 8 <= width; j += 8) {
        memcpy(&x, a + j, 8);
        memcpy(&y, b + j, 8);
        if (x != y)
            return 0;
    }
    return j == width || tail_word(a + j, width - j) == tail_word(b + j, width - j);
}

/* Ask for 2 MB pages for a large table where the kernel offers them on
 * request: its lookups are random, and with 4 kB pages nearly every one
 * also misses the TLB (a fifth of the time at 170,000 distinct ids). */
static void huge_pages(void *p, size_t bytes)
{
#ifdef MADV_HUGEPAGE
    uintptr_t start = ((uintptr_t)p + 4095) & ~(uintptr_t)4095;
    if (bytes >= (4u << 20))
        madvise((void *)start, bytes - (start - (uintptr_t)p), MADV_HUGEPAGE);
#else
    (void)p, (void)bytes;
#endif
}

static int grow_slots(table *t, uint64_t n_slots)
{
    slot *s = malloc(n_slots * sizeof *s);
    if (!s)
        return MFR_ENOMEM;
    huge_pages(s, n_slots * sizeof *s);
    memset(s, 0xff, n_slots * sizeof *s);
    free(t->slots);
    t->slots = s;
    t->mask = n_slots - 1;
    for (int64_t c = 0; c < t->n; c++) { /* re-insert the distinct records */
        uint64_t h = hash_record(t->store + (size_t)c * t->width, t->width);
        uint64_t k = h & t->mask;
        while (s[k].code >= 0)
            k = (k + 1) & t->mask;
        s[k] = (slot){(uint32_t)(h >> 32), (int32_t)c};
    }
    return MFR_OK;
}

/* Number record i, new (slot k is the empty one its probe ended at). */
static __attribute__((noinline)) int insert(table *t, uint64_t k, uint64_t h,
                                            const unsigned char *rec, int64_t i,
                                            int64_t *first)
{
    if (t->n == INT32_MAX)
        return MFR_EINVAL;
    if (t->n == t->cap) {
        int64_t cap = MFR_MAX(2 * t->cap, 1024);
        unsigned char *store = realloc(t->store, (size_t)cap * t->width);
        if (!store)
            return MFR_ENOMEM;
        t->store = store;
        t->cap = cap;
        huge_pages(store, (size_t)cap * t->width);
    }
    memcpy(t->store + (size_t)t->n * t->width, rec, t->width);
    t->slots[k] = (slot){(uint32_t)(h >> 32), (int32_t)t->n};
    first[t->n] = i;
    if ((uint64_t)++t->n * 2 > t->mask + 1)
        return grow_slots(t, 2 * (t->mask + 1));
    return MFR_OK;
}

/* The number of a record seen before, or -1 with *k its probe's empty slot.
 * Trusting (exact 0), a matching tag is taken for a match; the caller
 * checks the numbers afterwards (all_match). */
HOT int32_t find(const table *t, uint64_t h, const unsigned char *rec, size_t width, int exact,
                 uint64_t *k)
{
    uint32_t tag = (uint32_t)(h >> 32);
    for (*k = h & t->mask;; *k = (*k + 1) & t->mask) {
        slot s = t->slots[*k];
        if (s.code < 0 || (s.tag == tag && (!exact || same_record(t->store + (size_t)s.code *
                                                                  width, rec, width))))
            return s.code;
    }
}

/* Whether every record equals the stored record its number names. In
 * order of the records, the stored ones prefetched ahead: unlike a lookup,
 * no load waits for another, so the memory latencies overlap. */
HOT int all_match(const table *t, int64_t n, const unsigned char *rec, size_t width,
                  const int32_t *codes)
{
    for (int64_t i = 0; i < n; i++) {
        if (i + AHEAD < n) {
            const unsigned char *next = t->store + (size_t)codes[i + AHEAD] * width;
            __builtin_prefetch(next);
            __builtin_prefetch(next + width - 1);
        }
        if (!same_record(t->store + (size_t)codes[i] * width, rec + (size_t)i * width, width))
            return 0;
    }
    return 1;
}

/* The pass over the records; inlined with a constant width by the caller
 * for short ids, so that the loops over their words unroll. */
HOT int number_records(table *t, int64_t n, const unsigned char *rec, size_t width,
                       int exact, int32_t *codes, int64_t *first)
{
    uint64_t ahead[AHEAD], k;
    for (int64_t j = 0; j < MFR_MIN(n, AHEAD); j++)
        ahead[j] = hash_record(rec + (size_t)j * width, width);
    for (int64_t i = 0; i < n; i++) {
        uint64_t h = ahead[i % AHEAD];
        if (i + AHEAD < n) {
            uint64_t g = hash_record(rec + (size_t)(i + AHEAD) * width, width);
            ahead[i % AHEAD] = g;
            __builtin_prefetch(&t->slots[g & t->mask]);
        }
        if (exact && i + AHEAD / 2 < n) { /* its slot has arrived: fetch its record */
            slot s = t->slots[ahead[(i + AHEAD / 2) % AHEAD] & t->mask];
            if (s.code >= 0) { /* its first and last byte: it may span two lines */
                __builtin_prefetch(t->store + (size_t)s.code * width);
                __builtin_prefetch(t->store + (size_t)s.code * width + width - 1);
            }
        }
        int32_t code = find(t, h, rec + (size_t)i * width, width, exact, &k);
        if (code < 0) {
            code = (int32_t)t->n;
            int status = insert(t, k, h, rec + (size_t)i * width, i, first);
            if (status != MFR_OK)
                return status;
        }
        codes[i] = code;
    }
    return MFR_OK;
}

/* A trusting pass, checked; an exact one if the check fails (two records
 * shared a tag: rare, unless the ids were made to). */
HOT int factorize(table *t, int64_t n, const unsigned char *rec, size_t width, int32_t *codes,
                  int64_t *first)
{
    int status = number_records(t, n, rec, width, 0, codes, first);
    if (status != MFR_OK || all_match(t, n, rec, width, codes))
        return status;
    t->n = 0;
    memset(t->slots, 0xff, (t->mask + 1) * sizeof *t->slots);
    return number_records(t, n, rec, width, 1, codes, first);
}

int mfr_factorize_records(int64_t n, const void *records, size_t width, int32_t *codes,
                          int64_t *first, int64_t *n_unique)
{
    table t = {NULL, 0, NULL, 0, 0, width};
    int status;
    *n_unique = 0;
    if (n < 0 || width < 1)
        return MFR_EINVAL;
    if ((status = grow_slots(&t, 2048)) != MFR_OK)
        goto cleanup;
    switch (width) { /* str ids of up to 12 characters, bytes of up to 48 */
#define WIDTH(w) \
    case w: status = factorize(&t, n, records, w, codes, first); break;
        WIDTH(4) WIDTH(8) WIDTH(12) WIDTH(16) WIDTH(20) WIDTH(24)
        WIDTH(28) WIDTH(32) WIDTH(36) WIDTH(40) WIDTH(44) WIDTH(48)
#undef WIDTH
    default: status = factorize(&t, n, records, width, codes, first);
    }
    if (status == MFR_OK)
        *n_unique = t.n;
cleanup:
    free(t.slots);
    free(t.store);
    return status;
}
