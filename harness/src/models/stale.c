/*
 * models/stale.c - the `stale` crash model: like prefix from the first growing truncate on, with the new space reading POISON where nothing persisted.
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

static void gen_stale(struct sweeper *s, uint64_t cut)
{
    /* The epoch must grow the file. */
    uint64_t size = s->dsize, grown_to = s->dsize;
    size_t first = SIZE_MAX;
    for (size_t i = 0; i < s->n_pending; i++) {
        const struct trace_op *op = sw_pend(s, i);
        if (op->kind == TR_TRUNCATE) {
            if (op->off > size && first == SIZE_MAX)
                first = i;
            size = op->off;
            if (size > grown_to)
                grown_to = size;
        }
    }
    if (first == SIZE_MAX)
        return;
    const uint64_t lo = s->dsize, hi = grown_to;
    for (size_t i = first + 1; i <= s->n_pending && !s->stop; i++) {
        struct crash_choice c = {.model = M_STALE, .epoch = s->epoch, .index = (uint32_t)i};
        if (!sw_take(s, &c))
            continue;
        sw_reset_all(s);
        for (size_t k = 0; k < i; k++) {
            const struct trace_op *op = sw_pend(s, k);
            if (op->kind == TR_WRITE && op->off >= lo && op->off + op->len <= hi)
                continue; /* data written into the new space did not persist */
            sw_overlay_apply(&s->cd, op);
        }
        s->cd.poison_lo = (lo + SECTOR - 1) / SECTOR;
        s->cd.poison_hi = hi / SECTOR;
        sw_eval_simple(s, &c, cut);
    }
}

static void format_stale(const struct crash_choice *c, char *buf, size_t len)
{
    const char *m = crash_model_names[c->model];
    snprintf(buf, len, "model=%s epoch=%u persisted=%u", m, c->epoch, c->index);
}

const struct crash_model_def model_stale = {
    .name = "stale",
    .power_loss = 1,
    .exportable = 1,
    .gen = gen_stale,
    .format = format_stale,
    .about = "like prefix from the first growing truncate on, with the new space reading POISON where nothing persisted",
};
