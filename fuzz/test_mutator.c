/*
 * test_mutator.c - unit test of the structure-aware log mutator (CTest
 * fuzz.mutator): outputs stay within max_size and the input bound, the same
 * seed gives the same output, repaired checksums validate with the engine,
 * crossover keeps the first input's prefix, and post-processing is a pure
 * function of the bytes.  Under the asan preset it also proves the mutator
 * memory-safe over many thousand random mutations.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "mutator.h"
#include "vhdx/errors.h"
#include "vhdx/log.h"

static int failures;
#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                    \
        }                                                                  \
    } while (0)

static size_t make_seed(uint8_t *buf, const struct vhdx_guid *g)
{
    static uint8_t page[VHDX_LOG_SECTOR];
    memset(page, 0x5C, sizeof page);
    struct vhdx_log_update u[3] = {{4 * VHDX_MiB, page, 0}, {4 * VHDX_MiB + 8192, NULL, 8192}, {5 * VHDX_MiB, page, 0}};
    struct vhdx_log_entry_params p = {*g, 9, 0, 7 * VHDX_MiB, 8 * VHDX_MiB};
    memset(buf, 0, LR_PREFIX);
    buf[0] = LRF_GUID;
    memcpy(buf + 16, g->b, 16);
    size_t l1 = vhdx_log_entry_build(&p, u, 3, buf + LR_PREFIX);
    p.sequence = 10;
    size_t l2 = vhdx_log_entry_build(&p, u + 1, 1, buf + LR_PREFIX + l1);
    return LR_PREFIX + l1 + l2;
}

int main(void)
{
    const struct vhdx_guid g = {{1, 2, 3, 4, 5, 6, 7, 0x48, 9, 10, 11, 12, 13, 14, 15, 16}};
    uint8_t *seed = calloc(1, LR_MAX_INPUT), *a = calloc(1, LR_MAX_INPUT), *b = calloc(1, LR_MAX_INPUT),
            *out = calloc(1, LR_MAX_INPUT);
    if (!seed || !a || !b || !out)
        return 2;
    size_t n0 = make_seed(seed, &g);
    struct vhdx_log_header h;
    CHECK(vhdx_log_entry_validate(seed + LR_PREFIX, n0 - LR_PREFIX, &g, VHDX_MiB, &h) == 0);

    /* Repair: a broken checksum is fixed and validates again. */
    memcpy(a, seed, n0);
    a[LR_PREFIX + VHDX_LOGE_CHECKSUM] ^= 0xFF;
    CHECK(vhdx_log_entry_validate(a + LR_PREFIX, n0 - LR_PREFIX, &g, VHDX_MiB, &h) == VHDX_E_LOG_CRC);
    CHECK(fuzz_log_fix_crcs(a, n0) == 1);
    CHECK(vhdx_log_entry_validate(a + LR_PREFIX, n0 - LR_PREFIX, &g, VHDX_MiB, &h) == 0);

    /* Bounds and determinism over many stacked mutations. */
    size_t na = n0;
    memcpy(a, seed, n0);
    unsigned names = 0;
    const char *last = "";
    for (unsigned i = 0; i < 20000; i++) {
        size_t max = (i % 5 == 0) ? LR_PREFIX + 8 * VHDX_LOG_SECTOR : LR_MAX_INPUT;
        if (na > max)
            na = max;
        memcpy(b, a, na);
        size_t nb = na;
        na = fuzz_log_mutate(a, na, max, i, NULL);
        CHECK(na <= max);
        nb = fuzz_log_mutate(b, nb, max, i, NULL);
        CHECK(nb == na && memcmp(a, b, na) == 0);
        if (strcmp(last, fuzz_log_last_mutation()) != 0)
            names++;
        last = fuzz_log_last_mutation();
        if (i % 1000 == 999) { /* back to the seed now and then */
            memcpy(a, seed, n0);
            na = n0;
        }
    }
    CHECK(names > 100);

    /* Crossover keeps a's prefix and stays bounded. */
    memcpy(a, seed, n0);
    a[0] = 0x7F;
    for (unsigned i = 0; i < 200; i++) {
        size_t n = fuzz_log_crossover(a, n0, seed, n0, out, LR_MAX_INPUT, i);
        CHECK(n <= LR_MAX_INPUT && n >= LR_PREFIX && out[0] == 0x7F);
    }

    /* Post-processing: pure, bounded. */
    memcpy(a, seed, n0);
    a[LR_PREFIX + 100] ^= 1;
    memcpy(b, a, n0);
    CHECK(fuzz_log_post_process(a, n0) == n0);
    CHECK(fuzz_log_post_process(b, n0) == n0 && memcmp(a, b, n0) == 0);

    free(seed);
    free(a);
    free(b);
    free(out);
    if (failures) {
        fprintf(stderr, "test_mutator: %d checks failed\n", failures);
        return 1;
    }
    printf("test_mutator: all checks passed\n");
    return 0;
}
