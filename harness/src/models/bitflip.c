/*
 * models/bitflip.c - the `bitflip` crash model: one bit of durable log, header or region-table bytes flips.
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

static void gen_bitflip(struct sweeper *s, uint64_t cut)
{
    for (uint32_t k = 0; k < 2 && !s->stop; k++) {
        uint64_t h = sw_mix64(s->c->seed ^ ((uint64_t)s->epoch << 32) ^ (0xB17F11Bull + k));
        uint64_t sector;
        switch (h % 3) {
        case 0: /* a log sector that holds something */
            sector = (s->log_offset + (sw_mix64(h) % (s->log_length / VHDX_LOG_SECTOR)) * VHDX_LOG_SECTOR) / SECTOR;
            if (!secmap_get(&s->D, sector))
                sector = (VHDX_HEADER1_OFFSET + (h >> 8) % 2 * 65536) / SECTOR; /* fall back to a header */
            break;
        case 1: /* the first 4 KiB of a header slot */
            sector = (VHDX_HEADER1_OFFSET + (h >> 8) % 2 * 65536) / SECTOR + (h >> 16) % 8;
            break;
        default: /* a region table copy */
            sector = (VHDX_REGION1_OFFSET + (h >> 8) % 2 * 65536) / SECTOR + (h >> 16) % 128;
        }
        uint32_t bit = (uint32_t)((h >> 24) % 4096);
        struct crash_choice c = {.model = M_BITFLIP, .epoch = s->epoch, .target = sector * SECTOR + bit / 8,
                                 .bit = bit % 8};
        if (!sw_take(s, &c))
            continue;
        sw_reset_all(s);
        for (size_t i = 0; i < s->n_pending; i++)
            sw_overlay_apply(&s->cd, sw_pend(s, i));
        uint8_t b[SECTOR];
        crashdisk_read(&s->cd, b, SECTOR, sector * SECTOR);
        b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        secmap_put_copy(&s->cd.overlay, sector, b);
        sw_eval_simple(s, &c, cut);
    }
}

static void format_bitflip(const struct crash_choice *c, char *buf, size_t len)
{
    const char *m = crash_model_names[c->model];
    snprintf(buf, len, "model=%s epoch=%u offset=%" PRIu64 " bit=%u", m, c->epoch, c->target, c->bit);
}

const struct crash_model_def model_bitflip = {
    .name = "bitflip",
    .power_loss = 0,
    .exportable = 1,
    .gen = gen_bitflip,
    .format = format_bitflip,
    .about = "one bit of durable log, header or region-table bytes flips",
};
