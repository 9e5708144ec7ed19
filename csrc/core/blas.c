/*
 * blas.c - the arbiter of OpenBLAS's thread count (see blas.h), and what
 * OpenBLAS reports about itself.
 *
 * The core's only state that outlives a call, because the setting it
 * guards is itself global to the process: how many calls are inside, the
 * count they found when the first came in, and the count now set. A
 * spinlock (C11 atomic_flag) guards them; it is held only around a few
 * OpenBLAS getter and setter calls.
 */
#include <stdatomic.h>

#include "blas.h"
#include "mfrec.h"

static atomic_flag lock = ATOMIC_FLAG_INIT;
static int inside;  /* calls between enter and leave */
static int saved;   /* the count before the first of them */
static int current; /* the count set while they run */

static void acquire(void)
{
    while (atomic_flag_test_and_set_explicit(&lock, memory_order_acquire))
        ;
}

static void release(void) { atomic_flag_clear_explicit(&lock, memory_order_release); }

void mfr_blas_threads_enter(int want)
{
    if (want < 1)
        want = 1;
    acquire();
    if (inside++ == 0) {
        saved = current = MFR_BLAS(openblas_get_num_threads)();
        if (want != current)
            MFR_BLAS(openblas_set_num_threads)(current = want);
    } else if (want < current) {
        MFR_BLAS(openblas_set_num_threads)(current = want);
    }
    release();
}

void mfr_blas_threads_leave(void)
{
    acquire();
    if (--inside == 0 && current != saved)
        MFR_BLAS(openblas_set_num_threads)(current = saved);
    release();
}

void mfr_blas_info(const char **config, const char **corename)
{
    *config = MFR_BLAS(openblas_get_config)();
    *corename = MFR_BLAS(openblas_get_corename)();
}
