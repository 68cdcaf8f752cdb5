/*
 * models/lost.c - the `lost` crash model: a log or header write that the last flush made durable is gone.
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

static void gen_lost(struct sweeper *s, uint64_t cut)
{
    /* Each write the last flush made durable in the log or the headers. */
    for (size_t u = 0; u < s->n_undo && !s->stop; u++) {
        uint64_t opi = s->undo[u].op;
        if (u > 0 && s->undo[u - 1].op == opi)
            continue; /* first undo record of each op */
        const struct trace_op *op = &s->t->ops[opi];
        int hdr = op->off >= VHDX_HEADER1_OFFSET && op->off < VHDX_REGION1_OFFSET;
        if (!sw_in_log(s, op->off, op->len) && !hdr)
            continue;
        struct crash_choice c = {.model = M_LOST, .epoch = s->epoch, .target = opi};
        if (!sw_take(s, &c))
            continue;
        sw_reset_all(s);
        for (size_t k = u; k < s->n_undo && s->undo[k].op == opi; k++)
            secmap_put(&s->cd.overlay, s->undo[k].sector, s->undo[k].prev ? s->undo[k].prev : SECTOR_ZERO);
        sw_eval_simple(s, &c, cut);
    }
}

static void format_lost(const struct crash_choice *c, char *buf, size_t len)
{
    const char *m = crash_model_names[c->model];
    snprintf(buf, len, "model=%s epoch=%u lost-op=%" PRIu64, m, c->epoch, c->target);
}

const struct crash_model_def model_lost = {
    .name = "lost",
    .power_loss = 0,
    .exportable = 1,
    .gen = gen_lost,
    .format = format_lost,
    .about = "a log or header write that the last flush made durable is gone",
};
