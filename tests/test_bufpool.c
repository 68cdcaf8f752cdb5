/*
 * test_bufpool.c - the large-buffer pool (harness/bufpool.h): a freed
 * buffer comes back for a request of exactly its size, small buffers and
 * buffers past the byte bound are not kept, drain empties the pool, and
 * every buffer is 512-aligned and usable over its whole length.
 */
#include <stdint.h>
#include <string.h>

#include "harness/bufpool.h"
#include "testutil.h"

static void test_reuse(void)
{
    const size_t n = 1u << 20;
    uint8_t *a = bufpool_alloc(n);
    CHECK(a != NULL);
    CHECK(((uintptr_t)a & 511) == 0);
    memset(a, 0xA5, n);
    bufpool_free(a, n);
    uint8_t *b = bufpool_alloc(n);
    CHECK(b == a); /* the same buffer, for the same size */
    memset(b, 0x5A, n);
    uint8_t *c = bufpool_alloc(2 * n);
    CHECK(c != NULL && c != a); /* another size: a fresh buffer */
    memset(c, 0, 2 * n);
    bufpool_free(c, 2 * n);
    bufpool_free(b, n);
    bufpool_drain();
}

static void test_small_not_kept(void)
{
    const size_t n = BUFPOOL_MIN / 2;
    uint8_t *a = bufpool_alloc(n);
    CHECK(a != NULL && ((uintptr_t)a & 511) == 0);
    bufpool_free(a, n);
    /* not pooled: a later buffer of the size may or may not be at the same
     * address (malloc's business), but the pool holds nothing to drain */
    uint8_t *big = bufpool_alloc(BUFPOOL_MIN);
    CHECK(big != NULL);
    bufpool_free(big, BUFPOOL_MIN);
    bufpool_drain();
}

static void test_bound(void)
{
    /* more than BUFPOOL_BYTES freed: the pool keeps at most that much, the
     * rest goes back to malloc; whatever it keeps comes back once */
    const size_t n = 16u << 20;
    const unsigned k = BUFPOOL_BYTES / n + 2;
    void *p[16];
    CHECK(k <= 16);
    for (unsigned i = 0; i < k; i++) {
        p[i] = bufpool_alloc(n);
        CHECK(p[i] != NULL);
    }
    for (unsigned i = 0; i < k; i++)
        bufpool_free(p[i], n);
    /* the first BUFPOOL_BYTES / n requests are served from the pool, each
     * with a different one of the freed buffers (the later ones come from
     * malloc, which may or may not hand back the addresses it was given) */
    const unsigned kept = BUFPOOL_BYTES / n;
    void *q[16];
    for (unsigned i = 0; i < k; i++) {
        q[i] = bufpool_alloc(n);
        CHECK(q[i] != NULL);
        if (i >= kept)
            continue;
        unsigned hits = 0;
        for (unsigned j = 0; j < k; j++)
            hits += q[i] == p[j];
        CHECK(hits == 1);
        for (unsigned j = 0; j < i; j++)
            CHECK(q[j] != q[i]);
    }
    for (unsigned i = 0; i < k; i++)
        bufpool_free(q[i], n);
    bufpool_drain();
}

int main(void)
{
    bufpool_heap_tune();
    bufpool_heap_tune(); /* idempotent */
    test_reuse();
    test_small_not_kept();
    test_bound();
    return test_summary("test_bufpool");
}
