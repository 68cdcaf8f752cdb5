/*
 * models/drop.c - the `drop` crash model: D: every pending write of the epoch lost.
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

static void gen_drop(struct sweeper *s, uint64_t cut)
{
    struct crash_choice c = {.model = M_DROP, .epoch = s->epoch};
    if (sw_take(s, &c)) {
        sw_reset_all(s);
        sw_eval_simple(s, &c, cut);
    }
}

static void format_drop(const struct crash_choice *c, char *buf, size_t len)
{
    const char *m = crash_model_names[c->model];
    snprintf(buf, len, "model=%s epoch=%u", m, c->epoch);
}

const struct crash_model_def model_drop = {
    .name = "drop",
    .power_loss = 1,
    .exportable = 1,
    .gen = gen_drop,
    .format = format_drop,
    .about = "D: every pending write of the epoch lost",
};
