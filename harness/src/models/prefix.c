/*
 * models/prefix.c - the `prefix` crash model: D + p1..pi for i = 1..k: the strict device, pending writes persisted in issue order.
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

static void gen_prefix(struct sweeper *s, uint64_t cut)
{
    for (size_t i = 1; i <= s->n_pending && !s->stop; i++) {
        struct crash_choice c = {.model = M_PREFIX, .epoch = s->epoch, .index = (uint32_t)i};
        if (!sw_take(s, &c))
            continue;
        sw_prefix_to(s, i);
        sw_eval_simple(s, &c, cut);
    }
}

static void format_prefix(const struct crash_choice *c, char *buf, size_t len)
{
    const char *m = crash_model_names[c->model];
    snprintf(buf, len, "model=%s epoch=%u persisted=%u", m, c->epoch, c->index);
}

const struct crash_model_def model_prefix = {
    .name = "prefix",
    .power_loss = 1,
    .exportable = 1,
    .gen = gen_prefix,
    .format = format_prefix,
    .about = "D + p1..pi for i = 1..k: the strict device, pending writes persisted in issue order",
};
