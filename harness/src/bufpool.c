/*
 * bufpool.c - the per-thread large-buffer pool (guarantees in bufpool.h).
 * A small array searched linearly: requests are of a few sizes (4 MiB,
 * 1 MiB, powers of two for slot tables) and each is worth a page fault per
 * 4 KiB, so a scan of at most BUFPOOL_SLOTS entries costs nothing.
 */
#define _POSIX_C_SOURCE 200809L
#include "harness/bufpool.h"

#include <stdlib.h>
#if defined(__GLIBC__)
#include <malloc.h> /* mallopt */
#endif

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BUFPOOL_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(BUFPOOL_ASAN)
#define BUFPOOL_ASAN 1
#endif
#ifdef BUFPOOL_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

struct pooled {
    void *p;
    size_t n;
};

static _Thread_local struct pooled held[BUFPOOL_SLOTS];
static _Thread_local unsigned n_held;
static _Thread_local size_t bytes_held;

void *bufpool_alloc(size_t n)
{
    if (n >= BUFPOOL_MIN) {
        for (unsigned i = n_held; i-- > 0;) {
            if (held[i].n != n)
                continue;
            void *p = held[i].p;
            held[i] = held[--n_held];
            bytes_held -= n;
            UNPOISON(p, n);
            return p;
        }
    }
    void *p = NULL;
    if (posix_memalign(&p, 512, n ? n : 1) != 0)
        return NULL;
    return p;
}

void bufpool_free(void *p, size_t n)
{
    if (!p)
        return;
    if (n < BUFPOOL_MIN || n_held >= BUFPOOL_SLOTS || bytes_held + n > BUFPOOL_BYTES) {
        free(p);
        return;
    }
    POISON(p, n);
    held[n_held].p = p;
    held[n_held].n = n;
    n_held++;
    bytes_held += n;
}

void bufpool_drain(void)
{
    while (n_held > 0) {
        struct pooled *h = &held[--n_held];
        UNPOISON(h->p, h->n);
        free(h->p);
    }
    bytes_held = 0;
}

void bufpool_heap_tune(void)
{
#if defined(__GLIBC__)
    static int done;
    if (done)
        return;
    done = 1;
    mallopt(M_MMAP_THRESHOLD, 256 << 20);
    mallopt(M_TRIM_THRESHOLD, 512 << 20);
#endif
}
