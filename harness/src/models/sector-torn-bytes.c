/*
 * models/sector-torn-bytes.c - the `sector-torn-bytes` crash model: media
 * without sector atomicity.  D + p1..p(i-1) + the first P bytes of pending
 * write pi, where P is not a multiple of 512: the sector holding byte P
 * is torn inside, its first P mod 512 bytes new and the rest what the
 * sector held before.
 *
 * The `torn` model tears a write between 512-byte or 4 KiB units, which
 * every disk with sector atomicity may do; this one tears inside a sector,
 * which disks promise not to do and some media (and some emulations,
 * network block devices, caches in front of them) still do.  The VHDX log
 * is built for it (4 KiB log sectors with a CRC over the entry, two
 * checksummed header copies); the payload is not, and need not be: a
 * write in flight may leave any byte prefix of its value, so the oracle
 * judges these states with ORACLE_POWER_LOSS_TEARS (oracle.h).
 *
 * Per pending write: the first and the last sector of the write (one
 * sector when it has one), torn after 1, 256 and 511 bytes (6 states; the
 * choice's target is P).  Writes that extend the file are left to `torn`:
 * a file size inside a sector is a different question.
 */
#include <inttypes.h>
#include <stdio.h>

#include "../sweep_core.h"

static void gen_sector_torn_bytes(struct sweeper *s, uint64_t cut)
{
    static const uint32_t cuts[] = {1, 256, 511};
    for (size_t i = 0; i < s->n_pending && !s->stop; i++) {
        const struct trace_op *op = sw_pend(s, i);
        if (op->kind != TR_WRITE || op->len < 512)
            continue;
        sw_prefix_to(s, i); /* the file's size before pi */
        if (op->off + op->len > s->cd.size)
            continue; /* an extending write: left to `torn` */
        const uint64_t sectors = op->len / 512;
        const uint64_t first[2] = {0, sectors - 1};
        for (int w = 0; w < (sectors > 1 ? 2 : 1) && !s->stop; w++) {
            for (size_t b = 0; b < sizeof cuts / sizeof cuts[0] && !s->stop; b++) {
                const uint64_t persisted = first[w] * 512 + cuts[b];
                struct crash_choice c = {.model = M_SECTOR_TORN_BYTES, .epoch = s->epoch, .index = (uint32_t)i,
                                         .target = persisted};
                if (!sw_take(s, &c))
                    continue;
                sw_prefix_to(s, i);
                crashdisk_overlay_write(&s->cd, op->off, op->data, persisted);
                sw_eval_simple(s, &c, cut);
            }
        }
    }
}

static void format_sector_torn_bytes(const struct crash_choice *c, char *buf, size_t len)
{
    snprintf(buf, len, "model=%s epoch=%u write=%u bytes=%" PRIu64, crash_model_names[c->model], c->epoch, c->index,
             c->target);
}

const struct crash_model_def model_sector_torn_bytes = {
    .name = "sector-torn-bytes",
    .power_loss = 1,
    .exportable = 1,
    .tears = 1,
    .gen = gen_sector_torn_bytes,
    .format = format_sector_torn_bytes,
    .about = "D + p1..p(i-1) + the first P bytes of pi, P inside a sector (after 1, 256, 511 bytes of its first and "
             "last sector): media without sector atomicity",
};
