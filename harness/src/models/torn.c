/*
 * models/torn.c - the `torn` crash model: D + p1..p(i-1) + part of pi in 512-byte or 4 KiB units, seven patterns; every pending write torn at once.
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

/* Torn patterns over `units` units: which units persisted. */
#define TORN_PATTERNS 7

static void torn_mask(uint32_t pattern, size_t units, uint64_t seed, uint8_t *mask)
{
    memset(mask, 0, (units + 7) / 8);
    uint64_t st = seed;
    for (size_t u = 0; u < units; u++) {
        int on;
        switch (pattern) {
        case 0: on = u < units / 2; break;        /* first half */
        case 1: on = u >= units / 2; break;       /* second half */
        case 2: on = u % 2 == 0; break;           /* every other */
        case 3: on = u == 0; break;               /* only the first unit */
        case 4: on = u + 1 < units; break;        /* all but the last */
        default: st = sw_mix64(st); on = st & 1; break; /* seeded */
        }
        if (on)
            mask[u / 8] |= (uint8_t)(1u << (u % 8));
    }
}

/* Every pending write torn at once with the same pattern (index = |P|). */
static void gen_torn_all(struct sweeper *s, uint64_t cut)
{
    static const uint32_t grans[2] = {512, 4096};
    size_t writes = 0;
    for (size_t i = 0; i < s->n_pending; i++)
        writes += sw_pend(s, i)->kind == TR_WRITE;
    if (writes < 2)
        return; /* one write: the per-write states cover it */
    for (int g = 0; g < 2 && !s->stop; g++) {
        if (!(s->c->torn_grans & (1u << g)))
            continue;
        for (uint32_t p = 0; p < TORN_PATTERNS && !s->stop; p++) {
            struct crash_choice c = {.model = M_TORN, .epoch = s->epoch, .index = (uint32_t)s->n_pending,
                                     .gran = grans[g], .pattern = p};
            if (!sw_take(s, &c))
                continue;
            sw_reset_all(s);
            for (size_t i = 0; i < s->n_pending; i++) {
                const struct trace_op *op = sw_pend(s, i);
                if (op->kind != TR_WRITE) {
                    sw_overlay_apply(&s->cd, op);
                    continue;
                }
                size_t units = (op->len + grans[g] - 1) / grans[g];
                uint8_t *mask = malloc((units + 7) / 8);
                if (!mask)
                    return;
                torn_mask(p, units, sw_choice_hash(s, &c) ^ i, mask);
                crashdisk_overlay_write_torn(&s->cd, op->off, op->data, op->len, grans[g], mask);
                free(mask);
            }
            sw_eval_simple(s, &c, cut);
        }
    }
}

static void gen_torn(struct sweeper *s, uint64_t cut)
{
    static const uint32_t grans[2] = {512, 4096};
    gen_torn_all(s, cut);
    for (size_t i = 0; i < s->n_pending && !s->stop; i++) {
        const struct trace_op *op = sw_pend(s, i);
        if (op->kind != TR_WRITE)
            continue;
        for (int g = 0; g < 2 && !s->stop; g++) {
            if (!(s->c->torn_grans & (1u << g)))
                continue;
            size_t units = (op->len + grans[g] - 1) / grans[g];
            if (units < 2)
                continue;
            uint8_t *mask = malloc((units + 7) / 8);
            if (!mask)
                return;
            for (uint32_t p = 0; p < TORN_PATTERNS && !s->stop; p++) {
                struct crash_choice c = {.model = M_TORN, .epoch = s->epoch, .index = (uint32_t)i, .gran = grans[g],
                                         .pattern = p};
                if (!sw_take(s, &c))
                    continue;
                torn_mask(p, units, sw_choice_hash(s, &c), mask);
                sw_prefix_to(s, i);
                crashdisk_overlay_write_torn(&s->cd, op->off, op->data, op->len, grans[g], mask);
                sw_eval_simple(s, &c, cut);
            }
            free(mask);
        }
    }
}

static void format_torn(const struct crash_choice *c, char *buf, size_t len)
{
    const char *m = crash_model_names[c->model];
    snprintf(buf, len, "model=%s epoch=%u write=%u gran=%u pattern=%u", m, c->epoch, c->index, c->gran,
             c->pattern);
}

const struct crash_model_def model_torn = {
    .name = "torn",
    .power_loss = 1,
    .exportable = 1,
    .gen = gen_torn,
    .format = format_torn,
    .about = "D + p1..p(i-1) + part of pi in 512-byte or 4 KiB units, seven patterns; every pending write torn at once",
};
