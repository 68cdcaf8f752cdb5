/*
 * vdisk.c - the virtual disk: read, write, discard, flush.
 *
 * Write ordering (what makes acknowledged data survive a cut):
 *  1. payload to an allocated block is written in place;
 *  2. a write into an unallocated block takes a fresh block past the end of
 *     the file (so everything it does not write reads as zeros), extends the
 *     file, writes the payload;
 *  3. if blocks were allocated: flush (payload and extension durable), then
 *     commit the changed BAT pages through the log (entry, flush, apply).
 *     The BAT therefore never points at a block whose contents or extension
 *     are not yet durable.
 * Discard moves whole blocks to ZERO through the log and zero-fills partial
 * ranges of allocated blocks in place; no flush is needed first, because the
 * new state (zeros) depends on nothing in flight.
 * Blocks are never reused: discarded space stays in the file.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int usable(struct vhdx *h, int for_write)
{
    if (h->poison)
        return VHDX_E_POISONED;
    if (for_write && (h->flags & VHDX_OPEN_RDONLY))
        return VHDX_E_READONLY;
    return 0;
}

static int range_ok(const struct vhdx *h, uint64_t off, uint64_t len)
{
    return off <= h->geo.virtual_size && len <= h->geo.virtual_size - off;
}

/* Distinct BAT pages touched by one call, in increasing order. */
struct page_set {
    uint64_t *idx;
    size_t n, cap;
};

static int page_set_add(struct page_set *ps, uint64_t page)
{
    if (ps->n && ps->idx[ps->n - 1] == page)
        return 0;
    if (ps->n == ps->cap) {
        size_t ncap = ps->cap ? ps->cap * 2 : 8;
        uint64_t *n = vhdx_realloc(ps->idx, ncap * sizeof *n);
        if (!n)
            return -ENOMEM;
        ps->idx = n;
        ps->cap = ncap;
    }
    ps->idx[ps->n++] = page;
    return 0;
}

/* Logs the BAT pages in ps.  Poisons the handle on failure. */
static int commit_bat_pages(struct vhdx *h, const struct page_set *ps)
{
    if (ps->n == 0)
        return 0;
    struct vhdx_log_update *u = vhdx_calloc(ps->n, sizeof *u);
    if (!u) {
        h->poison = -ENOMEM;
        return -ENOMEM;
    }
    for (size_t i = 0; i < ps->n; i++) {
        u[i].file_offset = h->bat_offset + ps->idx[i] * VHDX_LOG_SECTOR;
        u[i].data = h->bat + ps->idx[i] * VHDX_LOG_SECTOR;
    }
    int rc = vhdx_log_commit(h, u, ps->n);
    free(u);
    return rc;
}

/* Changes a BAT entry in memory only once its page is sure to be committed:
 * a failed page_set_add must leave the in-memory BAT equal to the durable
 * one (found by fault injection: an ENOMEM here used to leave an entry that
 * later writes trusted but no log entry ever carried). */
static int set_entry(struct vhdx *h, struct page_set *ps, uint64_t idx, uint64_t value)
{
    int rc = page_set_add(ps, idx * 8 / VHDX_LOG_SECTOR);
    if (rc == 0)
        vhdx_bat_set(h, idx, value);
    return rc;
}

int vhdx_read(struct vhdx *h, uint64_t off, void *buf, size_t len)
{
    int rc = usable(h, 0);
    if (rc)
        return rc;
    if (!range_ok(h, off, len) || (!buf && len))
        return VHDX_E_RANGE;
    uint8_t *p = buf;
    const uint64_t bs = h->geo.block_size;
    while (len > 0) {
        uint64_t block = off / bs, in = off % bs;
        size_t n = bs - in < len ? (size_t)(bs - in) : len;
        uint64_t e = vhdx_bat_get(h, vhdx_bat_index(&h->geo, block));
        if (vhdx_bat_state(e) == VHDX_BAT_FULLY_PRESENT) {
            rc = vhdx_io_read(h->view, p, n, (vhdx_bat_offset_mb(e) << 20) + in);
            if (rc)
                return rc;
        } else {
            memset(p, 0, n);
        }
        p += n;
        off += n;
        len -= n;
    }
    return 0;
}

int vhdx_write(struct vhdx *h, uint64_t off, const void *buf, size_t len)
{
    int rc = usable(h, 1);
    if (rc)
        return rc;
    if (!range_ok(h, off, len) || (!buf && len))
        return VHDX_E_RANGE;
    if (len == 0)
        return 0;
    rc = vhdx_session_begin(h, 1);
    if (rc)
        return rc;
    h->dirty = 1;
    const uint8_t *p = buf;
    const uint64_t bs = h->geo.block_size;
    struct page_set ps = {0};
    int err = 0;
    while (len > 0) {
        uint64_t block = off / bs, in = off % bs;
        size_t n = bs - in < len ? (size_t)(bs - in) : len;
        uint64_t idx = vhdx_bat_index(&h->geo, block);
        uint64_t e = vhdx_bat_get(h, idx);
        if (vhdx_bat_state(e) == VHDX_BAT_FULLY_PRESENT) {
            err = vhdx_io_write(h->dev, p, n, (vhdx_bat_offset_mb(e) << 20) + in);
        } else {
            uint64_t at = vhdx_round_up(h->alloc_end > h->file_size ? h->alloc_end : h->file_size, VHDX_MiB);
            if (h->file_size < at + bs) {
                err = vhdx_io_truncate(h->dev, at + bs);
                if (!err)
                    h->file_size = at + bs;
            }
            if (!err)
                err = vhdx_io_write(h->dev, p, n, at + in);
            if (!err) {
                h->alloc_end = at + bs;
                err = set_entry(h, &ps, idx, vhdx_bat_make(VHDX_BAT_FULLY_PRESENT, at >> 20));
            }
        }
        if (err)
            break;
        p += n;
        off += n;
        len -= n;
    }
    /* Blocks allocated so far are committed even after a failure, so the
     * in-memory BAT never runs ahead of the durable one. */
    if (ps.n) {
        rc = vhdx_flush_dev(h);
        if (rc)
            h->poison = rc;
        else
            rc = commit_bat_pages(h, &ps);
    }
    free(ps.idx);
    return err ? err : rc;
}

static int zero_fill(struct vhdx *h, uint64_t file_off, uint64_t len)
{
    static const uint8_t zeros[64 * 1024];
    while (len > 0) {
        size_t n = len > sizeof zeros ? sizeof zeros : (size_t)len;
        int rc = vhdx_io_write(h->dev, zeros, n, file_off);
        if (rc)
            return rc;
        file_off += n;
        len -= n;
    }
    return 0;
}

int vhdx_discard(struct vhdx *h, uint64_t off, uint64_t len)
{
    int rc = usable(h, 1);
    if (rc)
        return rc;
    if (!range_ok(h, off, len))
        return VHDX_E_RANGE;
    if (len == 0)
        return 0;
    rc = vhdx_session_begin(h, 1);
    if (rc)
        return rc;
    h->dirty = 1;
    const uint64_t bs = h->geo.block_size;
    const int keep = (h->fp_flags & VHDX_FP_LEAVE_BLOCK_ALLOCATED) != 0;
    struct page_set ps = {0};
    int err = 0;
    while (len > 0) {
        uint64_t block = off / bs, in = off % bs;
        uint64_t n = bs - in < len ? bs - in : len;
        uint64_t idx = vhdx_bat_index(&h->geo, block);
        uint64_t e = vhdx_bat_get(h, idx);
        int whole = in == 0 && (n == bs || off + n == h->geo.virtual_size);
        int present = vhdx_bat_state(e) == VHDX_BAT_FULLY_PRESENT;
        if (whole && !keep) {
            if (vhdx_bat_state(e) != VHDX_BAT_ZERO)
                err = set_entry(h, &ps, idx, vhdx_bat_make(VHDX_BAT_ZERO, 0));
        } else if (present) {
            err = zero_fill(h, (vhdx_bat_offset_mb(e) << 20) + in, n);
        }
        if (err)
            break;
        off += n;
        len -= n;
    }
    rc = commit_bat_pages(h, &ps);
    free(ps.idx);
    return err ? err : rc;
}

int vhdx_flush(struct vhdx *h)
{
    int rc = usable(h, 0);
    if (rc || (h->flags & VHDX_OPEN_RDONLY))
        return rc;
    rc = vhdx_flush_dev(h);
    if (rc) {
        h->poison = rc; /* what is durable is now unknown */
        return rc;
    }
    h->dirty = 0;
    vhdx_io_mark(h->dev, "flush", 0);
    return 0;
}

int vhdx_log_apply_now(struct vhdx *h)
{
    int rc = usable(h, 1);
    if (rc)
        return rc;
    rc = vhdx_log_apply(h);
    if (rc)
        h->poison = rc;
    return rc;
}
