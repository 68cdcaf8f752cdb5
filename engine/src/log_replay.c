/*
 * log_replay.c - turning the active sequence into writes (MS-VHDX 2.3.3).
 *
 * Guarantees:
 *  - vhdx_replay_plan_build() performs no writes; it re-reads and
 *    re-validates each entry of the sequence and checks every descriptor's
 *    target before returning a plan, so a refused replay leaves the file
 *    untouched;
 *  - applying the plan to a device and reading through the overlay give the
 *    same bytes at every offset (the overlay is how a read-only open
 *    replays in memory);
 *  - memory is bounded by the sequence's data sectors (<= the ring length)
 *    and its descriptor count (<= ring length / 32).
 */
#include "log_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "io.h"
#include "vhdx/errors.h"

int vhdx_log_target_ok(const struct vhdx_log_ring *ring, uint64_t last_file_offset, uint64_t off, uint64_t len)
{
    if (last_file_offset > VHDX_MAX_FILE_SIZE)
        return 0;
    if (off < VHDX_PROTECTED_PREFIX)
        return 0;
    if (off > last_file_offset || len > last_file_offset - off)
        return 0;
    uint64_t log_lo = ring->log_offset, log_hi = ring->log_offset + ring->log_length;
    if (len == 0)
        return !(off >= log_lo && off < log_hi);
    return off + len <= log_lo || off >= log_hi;
}

static int plan_push(struct vhdx_replay_plan *plan, size_t *cap, uint64_t off, uint64_t len, const uint8_t *data)
{
    if (plan->count == *cap) {
        size_t ncap = *cap ? *cap * 2 : 64;
        struct vhdx_replay_extent *n = vhdx_realloc(plan->ext, ncap * sizeof *n);
        if (!n)
            return -ENOMEM;
        plan->ext = n;
        *cap = ncap;
    }
    plan->ext[plan->count++] = (struct vhdx_replay_extent){off, len, data};
    return 0;
}

void vhdx_replay_plan_free(struct vhdx_replay_plan *plan)
{
    if (!plan)
        return;
    free(plan->ext);
    free(plan->data);
    memset(plan, 0, sizeof *plan);
}

int vhdx_replay_plan_build(const struct vhdx_log_ring *ring, const struct vhdx_log_sequence *seq,
                           struct vhdx_replay_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    if (!seq->found || seq->count == 0)
        return VHDX_E_INVAL;
    int rc = 0;
    size_t ext_cap = 0;
    uint8_t *entry = NULL;
    size_t entry_cap = 0;
    size_t data_cap = 0, data_used = 0;

    /* Sizes first, so data pointers stay stable. */
    for (uint32_t k = 0; k < seq->count; k++) {
        if (seq->lengths[k] > ring->log_length) {
            rc = VHDX_E_LOG_LENGTH;
            goto fail;
        }
        data_cap += seq->lengths[k]; /* upper bound of its data sectors */
        if (seq->lengths[k] > entry_cap)
            entry_cap = seq->lengths[k];
    }
    entry = vhdx_malloc(entry_cap);
    plan->data = vhdx_malloc(data_cap);
    if (!entry || !plan->data) {
        rc = -ENOMEM;
        goto fail;
    }

    for (uint32_t k = 0; k < seq->count; k++) {
        struct vhdx_log_header hdr;
        /* One read per entry; validated again, so the plan depends only on
         * bytes checked in this pass. */
        rc = vhdx_log_ring_read(ring, seq->positions[k], entry, seq->lengths[k]);
        if (rc == 0)
            rc = vhdx_log_entry_validate(entry, seq->lengths[k], &ring->log_guid, ring->log_length, &hdr);
        if (rc == 0 && hdr.entry_length != seq->lengths[k])
            rc = VHDX_E_LOG_LENGTH;
        if (rc != 0)
            goto fail;
        uint64_t desc_sectors = vhdx_log_desc_sectors(hdr.descriptor_count);
        uint64_t data_index = 0;
        for (uint32_t i = 0; i < hdr.descriptor_count; i++) {
            struct vhdx_log_desc d;
            rc = vhdx_log_desc_decode(entry + vhdx_log_desc_offset(i), &d);
            if (rc != 0)
                goto fail;
            uint64_t len = d.kind == VHDX_DESC_DATA ? VHDX_LOG_SECTOR : d.zero_length;
            if (!vhdx_log_target_ok(ring, hdr.last_file_offset, d.file_offset, len)) {
                plan->bad_target = d.file_offset;
                rc = VHDX_E_LOG_TARGET;
                goto fail;
            }
            const uint8_t *data = NULL;
            if (d.kind == VHDX_DESC_DATA) {
                uint8_t *dst = plan->data + data_used;
                rc = vhdx_log_data_join(&d, entry + (desc_sectors + data_index) * VHDX_LOG_SECTOR, hdr.sequence, dst);
                if (rc != 0)
                    goto fail;
                data_index++;
                data_used += VHDX_LOG_SECTOR;
                data = dst;
            }
            rc = plan_push(plan, &ext_cap, d.file_offset, len, data);
            if (rc != 0)
                goto fail;
        }
        if (k + 1 == seq->count) {
            plan->last_file_offset = hdr.last_file_offset;
            plan->flushed_file_offset = hdr.flushed_file_offset;
            plan->head_sequence = hdr.sequence;
            if (hdr.last_file_offset > VHDX_MAX_FILE_SIZE) {
                plan->bad_target = hdr.last_file_offset;
                rc = VHDX_E_LOG_TARGET;
                goto fail;
            }
        }
        plan->entries++;
    }
    free(entry);
    return 0;
fail:
    free(entry);
    {
        uint64_t bad = plan->bad_target;
        vhdx_replay_plan_free(plan);
        plan->bad_target = bad;
    }
    return rc;
}

int vhdx_replay_plan_apply(struct bdev *dev, const struct vhdx_replay_plan *plan)
{
    static const uint8_t zeros[64 * 1024];
    uint64_t size;
    int rc = vhdx_io_size(dev, &size);
    if (rc != 0)
        return rc;
    /* The file must end up covering every descriptor (MS-VHDX 2.3.3), zero
     * descriptors too, and at least the head's LastFileOffset. */
    uint64_t want = plan->last_file_offset;
    for (size_t i = 0; i < plan->count; i++) {
        const struct vhdx_replay_extent *e = &plan->ext[i];
        if (e->offset + e->length > want)
            want = e->offset + e->length;
        if (e->data) {
            rc = vhdx_io_write(dev, e->data, (size_t)e->length, e->offset);
            if (rc != 0)
                return rc;
            if (e->offset + e->length > size)
                size = e->offset + e->length;
            continue;
        }
        uint64_t end = e->offset + e->length;
        if (end > size)
            end = size; /* past the end of the file: the extension below reads as zeros */
        for (uint64_t off = e->offset; off < end;) {
            size_t n = end - off > sizeof zeros ? sizeof zeros : (size_t)(end - off);
            rc = vhdx_io_write(dev, zeros, n, off);
            if (rc != 0)
                return rc;
            off += n;
        }
    }
    if (size < want) {
        rc = vhdx_io_truncate(dev, want);
        if (rc != 0)
            return rc;
    }
    return vhdx_io_flush(dev);
}

/* ---- overlay: the replay seen through a read-only device ------------------- */
struct overlay {
    struct bdev base;                   /* must be first */
    struct bdev *under;                 /* the file, borrowed */
    const struct vhdx_replay_plan *plan; /* borrowed */
    uint64_t base_size;                 /* size of under */
    uint64_t total;                     /* size with the replay applied */
};

static int overlay_size(struct bdev *d, uint64_t *size)
{
    *size = ((struct overlay *)d)->total;
    return 0;
}

static int overlay_read(struct bdev *d, void *buf, size_t len, uint64_t off)
{
    struct overlay *o = (struct overlay *)d;
    const uint64_t total = o->total, base_size = o->base_size;
    int rc;
    if (off > total || len > total - off)
        return VHDX_E_SHORT_IO;
    uint8_t *p = buf;
    size_t from_base = off >= base_size ? 0 : (size_t)(base_size - off < len ? base_size - off : len);
    if (from_base) {
        rc = vhdx_io_read(o->under, p, from_base, off);
        if (rc != 0)
            return rc;
    }
    memset(p + from_base, 0, len - from_base);
    uint64_t end = off + len;
    for (size_t i = 0; i < o->plan->count; i++) {
        const struct vhdx_replay_extent *e = &o->plan->ext[i];
        uint64_t lo = e->offset > off ? e->offset : off;
        uint64_t hi = e->offset + e->length < end ? e->offset + e->length : end;
        if (lo >= hi)
            continue;
        if (e->data)
            memcpy(p + (lo - off), e->data + (lo - e->offset), (size_t)(hi - lo));
        else
            memset(p + (lo - off), 0, (size_t)(hi - lo));
    }
    return 0;
}

/* Lends the base's memory when no replay extent touches the range. */
static const void *overlay_map(struct bdev *d, uint64_t off, size_t len)
{
    struct overlay *o = (struct overlay *)d;
    if (!o->under->ops->map || off > o->base_size || len > o->base_size - off)
        return NULL;
    for (size_t i = 0; i < o->plan->count; i++) {
        const struct vhdx_replay_extent *e = &o->plan->ext[i];
        if (e->offset < off + len && off < e->offset + e->length)
            return NULL;
    }
    return o->under->ops->map(o->under, off, len);
}

static int overlay_write(struct bdev *d, const void *buf, size_t len, uint64_t off)
{
    (void)d, (void)buf, (void)len, (void)off;
    return -EROFS;
}

static int overlay_flush(struct bdev *d)
{
    (void)d;
    return 0;
}

static int overlay_truncate(struct bdev *d, uint64_t size)
{
    (void)d, (void)size;
    return -EROFS;
}

static void overlay_destroy(struct bdev *d)
{
    free(d);
}

static const struct bdev_ops overlay_ops = {
    .read = overlay_read,
    .write = overlay_write,
    .flush = overlay_flush,
    .size = overlay_size,
    .truncate = overlay_truncate,
    .mark = NULL,
    .destroy = overlay_destroy,
    .map = overlay_map,
};

int vhdx_overlay_create(struct bdev *base, const struct vhdx_replay_plan *plan, struct bdev **out)
{
    struct overlay *o = vhdx_calloc(1, sizeof *o);
    if (!o)
        return -ENOMEM;
    o->base.ops = &overlay_ops;
    o->under = base;
    o->plan = plan;
    int rc = vhdx_io_size(base, &o->base_size);
    if (rc != 0) {
        free(o);
        return rc;
    }
    o->total = o->base_size;
    for (size_t i = 0; i < plan->count; i++) {
        const struct vhdx_replay_extent *e = &plan->ext[i];
        if (e->offset + e->length > o->total) /* zero extents extend the file too */
            o->total = e->offset + e->length;
    }
    if (o->total < plan->last_file_offset)
        o->total = plan->last_file_offset;
    *out = &o->base;
    return 0;
}
