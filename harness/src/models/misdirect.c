/*
 * models/misdirect.c - the `misdirect` crash model: a pending log write lands at another ring position.
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

static void gen_misdirect(struct sweeper *s, uint64_t cut)
{
    for (size_t i = 0; i < s->n_pending && !s->stop; i++) {
        const struct trace_op *op = sw_pend(s, i);
        if (op->kind != TR_WRITE || !sw_in_log(s, op->off, op->len) || op->len % VHDX_LOG_SECTOR ||
            op->len >= s->log_length)
            continue;
        for (uint32_t alt = 0; alt < 2 && !s->stop; alt++) {
            uint64_t slots = (s->log_length - op->len) / VHDX_LOG_SECTOR + 1;
            uint64_t to = s->log_offset + sw_mix64(s->c->seed ^ ((uint64_t)s->epoch << 24) ^ (i << 4) ^ alt) % slots *
                                              VHDX_LOG_SECTOR;
            if (to == op->off)
                continue;
            struct crash_choice c = {.model = M_MISDIRECT, .epoch = s->epoch, .index = (uint32_t)i, .target = to};
            if (!sw_take(s, &c))
                continue;
            sw_reset_all(s);
            for (size_t k = 0; k < s->n_pending; k++) {
                if (k == i)
                    crashdisk_overlay_write(&s->cd, to, op->data, op->len);
                else
                    sw_overlay_apply(&s->cd, sw_pend(s, k));
            }
            sw_eval_simple(s, &c, cut);
        }
    }
}

static void format_misdirect(const struct crash_choice *c, char *buf, size_t len)
{
    const char *m = crash_model_names[c->model];
    snprintf(buf, len, "model=%s epoch=%u write=%u to=%" PRIu64, m, c->epoch, c->index, c->target);
}

const struct crash_model_def model_misdirect = {
    .name = "misdirect",
    .power_loss = 0,
    .exportable = 1,
    .gen = gen_misdirect,
    .format = format_misdirect,
    .about = "a pending log write lands at another ring position",
};
