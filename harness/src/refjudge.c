/*
 * refjudge.c - the reference judge (refjudge.h).
 *
 * Guarantees: the reference reads the state only through
 * crashdisk_read_built (the image before the subject touched it) or, after
 * a replay, crashdisk_read (the image the subject left); the subject's own
 * view enters only as the values it reports (struct vhdx_info) and the
 * bytes it reads; nothing here decodes a structure with engine code.
 */
#include "harness/refjudge.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int built_read(void *ctx, void *buf, size_t len, uint64_t off)
{
    struct crashdisk *cd = ctx;
    return crashdisk_read_built(cd, buf, len, off) == 0 ? 0 : -1;
}

static int current_read(void *ctx, void *buf, size_t len, uint64_t off)
{
    struct crashdisk *cd = ctx;
    return crashdisk_read(cd, buf, len, off) == 0 ? 0 : -1;
}

static const uint8_t *built_map(void *ctx, uint64_t off, size_t len, int *stable)
{
    return crashdisk_map_built(ctx, off, len, stable);
}

/* The current image in place, where nothing was written since it was built. */
static const uint8_t *current_map(void *ctx, uint64_t off, size_t len, int *stable)
{
    struct crashdisk *cd = ctx;
    if (cd->scratch.count && off / 512 <= cd->scratch.max_key && (off + len) / 512 > cd->scratch.min_key)
        for (uint64_t s = off / 512; s < (off + len + 511) / 512; s++)
            if (secmap_get(&cd->scratch, s))
                return NULL;
    return crashdisk_map_built(cd, off, len, stable);
}

struct ref_src refjudge_src_built(struct crashdisk *cd, struct ref_memo *memo)
{
    return (struct ref_src){built_read, cd, cd->size, built_map, memo};
}

struct ref_src refjudge_src_now(struct crashdisk *cd, struct ref_memo *memo)
{
    return (struct ref_src){current_read, cd, cd->size, current_map, memo};
}

static int bdev_src_read(void *ctx, void *buf, size_t len, uint64_t off)
{
    struct bdev *dev = ctx;
    return dev->ops->read(dev, buf, len, off) == 0 ? 0 : -1;
}

struct ref_src refjudge_src_bdev(struct bdev *dev, struct ref_memo *memo)
{
    uint64_t size = 0;
    if (dev->ops->size(dev, &size) != 0)
        size = 0;
    return (struct ref_src){bdev_src_read, dev, size, NULL, memo};
}

int refjudge_begin(struct refjudge *rj, const struct ref_src *before)
{
    memset(rj, 0, sizeof *rj);
    if (ref_image_open(&rj->pre, before) != 0) {
        ref_image_free(&rj->pre);
        return -ENOMEM;
    }
    rj->have = 1;
    return 0;
}

void refjudge_end(struct refjudge *rj)
{
    if (rj->have)
        ref_image_free(&rj->pre);
    rj->have = 0;
}

int refjudge_crash_state_invalid(const struct refjudge *rj)
{
    return rj->have && rj->pre.status == REF_INVALID;
}

int refjudge_usable(const struct refjudge *rj)
{
    return rj->have && rj->pre.status != REF_INVALID && rj->pre.block_size && rj->pre.bat_entries;
}

void refjudge_open(struct refjudge *rj, int rc, int format_refusal, const struct subject_info *in, int power_loss,
                   struct verdict *v)
{
    if (!rj->have)
        return;
    const struct ref_image *r = &rj->pre;
    if (r->status == REF_INVALID && power_loss) {
        verdict_fail(v, INV_REF_INVALID_CRASH_STATE,
                     "the crash image breaks MS-VHDX %s: %s (a power cut must leave a file that opens; the writer "
                     "made this state, whatever a reader then does)",
                     r->rule, r->why);
        return;
    }
    if (rc != 0) {
        if (r->status == REF_VALID && format_refusal)
            verdict_fail(v, INV_REF_REFUSED_RECOVERABLE,
                         "the subject refused the image (%s), while by MS-VHDX it opens: current header at %s KiB%s, "
                         "region table copy at %s KiB, %s",
                         strerror(rc < 0 ? -rc : rc), r->current ? "128" : "64",
                         r->header[!r->current].valid ? "" : " (the other copy is damaged)",
                         r->region_used ? "256" : "192",
                         r->log_pending ? "a complete log sequence to replay" : "no log to replay");
        return;
    }
    if (r->status == REF_INVALID) {
        verdict_fail(v, INV_REF_ACCEPTED_INVALID, "the subject opened an image that breaks MS-VHDX %s: %s", r->rule,
                     r->why);
        return;
    }
    if (r->status != REF_VALID || !in)
        return;
    /* (a subject that cannot say how many entries it replayed reports 0) */
    if ((in->replayed != 0) != (r->log_pending != 0) ||
        (r->log_pending && in->replayed_entries &&
         (in->replayed_entries != r->log.entries || in->replayed_head != r->log.head_sequence))) {
        verdict_fail(v, INV_REF_LOG_MISMATCH,
                     "the subject %s; the reference %s (the newest valid complete sequence, MS-VHDX 2.3.3)",
                     in->replayed ? "replayed a sequence" : "replayed nothing",
                     r->log_pending ? "replays one" : "finds no log to replay");
        if (in->replayed || r->log_pending) {
            size_t n = strlen(v->detail);
            snprintf(v->detail + n, sizeof v->detail - n,
                     ": subject %u entries up to sequence %" PRIu64 ", reference %u entries up to sequence %" PRIu64
                     " (head at ring offset %u)",
                     in->replayed ? in->replayed_entries : 0, in->replayed ? in->replayed_head : 0,
                     r->log.entries, r->log.head_sequence, r->log.head_position);
        }
        return;
    }
    if (in->virtual_size != r->virtual_size || in->block_size != r->block_size ||
        in->logical_sector != r->logical_sector || in->physical_sector != r->physical_sector ||
        (in->bat_offset && in->bat_offset != r->bat_offset) ||
        (in->metadata_offset && in->metadata_offset != r->meta_offset))
        verdict_fail(v, INV_REF_GEOMETRY_MISMATCH,
                     "subject: disk %" PRIu64 " bytes, blocks %u, sectors %u/%u, BAT at %" PRIu64 ", metadata at %" PRIu64
                     "; reference: %" PRIu64 ", %u, %u/%u, %" PRIu64 ", %" PRIu64,
                     in->virtual_size, in->block_size, in->logical_sector, in->physical_sector,
                     in->bat_offset, in->metadata_offset, r->virtual_size, r->block_size, r->logical_sector,
                     r->physical_sector, r->bat_offset, r->meta_offset);
}

/* First differing offset of [off, off+len) between the reference's replay
 * (pre) and the replayed image (after); UINT64_MAX when equal. */
static uint64_t first_difference(struct refjudge *rj, const struct ref_src *after, uint64_t off, uint64_t len,
                                 uint8_t *a, uint8_t *b, size_t chunk)
{
    while (len > 0) {
        size_t n = len < chunk ? (size_t)len : chunk;
        if (ref_image_read(&rj->pre, a, n, off) != 0)
            return UINT64_MAX;
        memset(b, 0, n);
        if (off < after->size && after->read(after->ctx, b, after->size - off < n ? (size_t)(after->size - off) : n,
                                             off) != 0)
            return UINT64_MAX;
        if (memcmp(a, b, n) != 0)
            for (size_t i = 0; i < n; i++)
                if (a[i] != b[i])
                    return off + i;
        off += n;
        len -= n;
    }
    return UINT64_MAX;
}

void refjudge_replayed(struct refjudge *rj, const struct ref_src *after, int reread, struct verdict *v)
{
    if (!rj->have || rj->pre.status != REF_VALID || !v->ok)
        return;
    const struct ref_image *r = &rj->pre;
    const uint64_t now_size = after->size;
    if (now_size < r->size) {
        verdict_fail(v, INV_REF_FILE_SIZE,
                     "after the replay the file is %" PRIu64 " bytes; the log requires at least %" PRIu64
                     " (every descriptor's end and the head's LastFileOffset %" PRIu64 ", MS-VHDX 2.3.3)",
                     now_size, r->size, r->log.last_file_offset);
        return;
    }
    /* the image the subject left: valid, nothing left to replay (the whole
     * reading again: on request) */
    struct ref_image post;
    memset(&post, 0, sizeof post);
    if (reread && ref_image_open(&post, after) == 0) {
        if (post.status == REF_INVALID || post.log_pending)
            verdict_fail(v, INV_REF_REPLAYED_INVALID, "after the subject's replay the image %s%s%s",
                         post.log_pending ? "still names a log to replay" : "breaks MS-VHDX ",
                         post.log_pending ? "" : post.rule, post.log_pending ? "" : post.why);
    }
    ref_image_free(&post);
    if (!v->ok)
        return;
    /* the bytes the replay is responsible for */
    enum { CHUNK = 64 * 1024 };
    uint8_t *a = malloc(CHUNK), *b = malloc(CHUNK);
    if (!a || !b)
        goto out;
    struct {
        uint64_t off, len;
        const char *what;
    } ranges[3] = {{192 * 1024, 128 * 1024, "the region tables"},
                   {r->meta_offset, 64 * 1024, "the metadata table"},
                   {r->bat_offset, r->bat_entries * 8, "the BAT"}};
    for (int i = 0; i < 3 && v->ok; i++) {
        uint64_t d = first_difference(rj, after, ranges[i].off, ranges[i].len, a, b, CHUNK);
        if (d != UINT64_MAX)
            verdict_fail(v, INV_REF_REPLAYED_BYTES,
                         "after the replay, %s differs from the reference's replay at file offset %" PRIu64
                         " (%s %" PRIu64 ")",
                         ranges[i].what, d, i == 2 ? "BAT entry" : "byte", i == 2 ? (d - r->bat_offset) / 8 : d);
    }
    for (size_t i = 0; i < r->log.n_writes && v->ok; i++) {
        const struct ref_write *w = &r->log.writes[i];
        uint64_t len = w->length;
        if (!w->data && w->offset >= r->file_size)
            continue; /* zeros past the old end: covered by the size check */
        if (w->offset + len > now_size)
            len = now_size - w->offset;
        uint64_t d = first_difference(rj, after, w->offset, len, a, b, CHUNK);
        if (d != UINT64_MAX)
            verdict_fail(v, INV_REF_REPLAYED_BYTES,
                         "after the replay, file offset %" PRIu64 " differs from the reference's replay (a %s "
                         "descriptor of %" PRIu64 " bytes at %" PRIu64 ")",
                         d, w->data ? "data" : "zero", w->length, w->offset);
    }
out:
    free(a);
    free(b);
}

void refjudge_read(struct refjudge *rj, uint64_t off, const uint8_t *got, size_t len, struct verdict *v)
{
    if (!refjudge_usable(rj) || !v->ok || off > rj->pre.virtual_size || len > rj->pre.virtual_size - off)
        return;
    uint8_t want[4096];
    for (size_t done = 0; done < len && v->ok;) {
        size_t n = len - done < sizeof want ? len - done : sizeof want;
        int defined = 0;
        if (ref_image_read_virtual(&rj->pre, want, n, off + done, &defined) == 0 && defined &&
            memcmp(want, got + done, n) != 0) {
            size_t i = 0;
            while (want[i] == got[done + i])
                i++;
            uint64_t at = off + done + i;
            uint64_t block = at / rj->pre.block_size;
            uint64_t idx = ref_image_bat_index(&rj->pre, block);
            uint64_t e = ref_image_bat_entry(&rj->pre, idx);
            verdict_fail(v, INV_REF_VIRTUAL_BYTES,
                         "virtual offset %" PRIu64 " (in a read of %zu bytes at %" PRIu64 "): the subject reads %02x, "
                         "the reference %02x; by the reference block %" PRIu64 " is BAT[%" PRIu64 "] = state %u at "
                         "file offset %" PRIu64,
                         at, len, off, got[done + i], want[i], block, idx, (unsigned)(e & 7), (e >> 20) << 20);
        }
        done += n;
    }
}
