/*
 * models/reorder.c - the `reorder` crash model: D + any subset of the pending writes (exhaustive up to reorder_max, sampled above).
 * (The model's contract is in harness/sweep.h and harness/simdisk.h; this
 * file generates its states and names them.)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../sweep_core.h"

static int is_prefix_subset(const uint64_t *sub, size_t n)
{
    /* bits 0..j-1 set and nothing else, for some j */
    size_t j = 0;
    while (j < n && (sub[j / 64] >> (j % 64) & 1))
        j++;
    for (size_t k = j; k < n; k++)
        if (sub[k / 64] >> (k % 64) & 1)
            return 0;
    return 1;
}

static void eval_subset(struct sweeper *s, const uint64_t *sub, uint64_t cut)
{
    struct crash_choice c = {.model = M_REORDER, .epoch = s->epoch};
    memcpy(c.subset, sub, sizeof c.subset);
    if (!sw_take(s, &c))
        return;
    sw_reset_all(s);
    for (size_t k = 0; k < s->n_pending; k++)
        if (sub[k / 64] >> (k % 64) & 1)
            sw_overlay_apply(&s->cd, sw_pend(s, k));
    sw_eval_simple(s, &c, cut);
}

static void gen_reorder(struct sweeper *s, uint64_t cut)
{
    size_t n = s->n_pending < 256 ? s->n_pending : 256;
    if (n < 2)
        return;
    if (n <= s->c->reorder_max) {
        for (uint64_t m = 1; m < (UINT64_C(1) << n) - 1 && !s->stop; m++) {
            uint64_t sub[4] = {m, 0, 0, 0};
            if (!is_prefix_subset(sub, n))
                eval_subset(s, sub, cut);
        }
        return;
    }
    uint64_t st = sw_mix64(s->c->seed ^ ((uint64_t)s->epoch << 20) ^ 0x5EB5E7);
    for (uint32_t k = 0; k < s->c->reorder_samples && !s->stop; k++) {
        uint64_t sub[4] = {0, 0, 0, 0};
        for (size_t b = 0; b < n; b++) {
            st = sw_mix64(st);
            if (st & 1)
                sub[b / 64] |= UINT64_C(1) << (b % 64);
        }
        if (!is_prefix_subset(sub, n))
            eval_subset(s, sub, cut);
    }
}

static void format_reorder(const struct crash_choice *c, char *buf, size_t len)
{
    const char *m = crash_model_names[c->model];
    snprintf(buf, len, "model=%s epoch=%u subset=%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64, m,
             c->epoch, c->subset[3], c->subset[2], c->subset[1], c->subset[0]);
}

const struct crash_model_def model_reorder = {
    .name = "reorder",
    .power_loss = 1,
    .exportable = 1,
    .gen = gen_reorder,
    .format = format_reorder,
    .about = "D + any subset of the pending writes (exhaustive up to reorder_max, sampled above)",
};
