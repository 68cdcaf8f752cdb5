/*
 * log_write.c - the metadata log writer.
 *
 * Every metadata change is a set of 4 KiB page updates, committed as:
 *     write entry (descriptors + data sectors) into the ring, flush,
 *     [apply: write the pages to their final places, flush]
 * where "apply" runs after every entry (apply_every == 1) or once N entries
 * have accumulated, or before the active sequence would pass 3/4 of the
 * ring, or when more than VHDX_PENDING_MAX distinct pages wait, or at close.
 *
 * Ring invariants (L = ring length, all sizes in bytes):
 *  - the last durable sequence occupies [seq_start, seq_start + used) mod L
 *    and is never overwritten: a new entry goes at head = seq_start + used;
 *  - entries are at most max_entry = L/4 (capped at 4 MiB), and used stays
 *    <= 3L/4, so a new entry always fits beside the protected sequence;
 *  - an entry's Tail is seq_start while earlier entries are unapplied, and
 *    its own position after an apply (it then starts a new sequence).
 *
 * Starting a log in a session (the last paragraph of MS-VHDX 2.2.2 LogGuid
 * and 2.3): when the session first needs the log, the header's LogGuid is
 * zero (open replayed and cleared any earlier log).  The first entry is
 * written with a fresh LogGuid G at ring offset 0 and flushed; only then are
 * the headers updated to carry G.  A cut before that header update leaves
 * LogGuid zero (the entry is ignored, nothing was applied); a cut after it
 * finds a valid sequence (the flushed entry).  Writing the header first
 * would leave a window with LogGuid G and no valid sequence, which a
 * strict reader must refuse.  The log space written before the header
 * change is not "existing space of the active log": with LogGuid zero the
 * ring holds no entry any reader may replay.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define VHDX_PENDING_MAX 1024u        /* distinct pages waiting to be applied */
#define VHDX_MAX_ENTRY_BYTES (4u * 1024 * 1024)

int vhdx_log_writer_init(struct vhdx *h, uint32_t apply_every)
{
    struct vhdx_log_writer *w = &h->log;
    memset(w, 0, sizeof *w);
    w->apply_every = apply_every ? apply_every : 1;
    uint32_t max = h->hdr.log_length / 4;
    if (max > VHDX_MAX_ENTRY_BYTES)
        max = VHDX_MAX_ENTRY_BYTES;
    max -= max % VHDX_LOG_SECTOR;
    w->max_entry = max;
    return 0; /* entry_buf is allocated by the first entry: most sessions never write one */
}

void vhdx_log_writer_free(struct vhdx *h)
{
    free(h->log.pending);
    free(h->log.entry_buf);
    h->log.pending = NULL;
    h->log.entry_buf = NULL;
}

static int cmp_page(const void *a, const void *b)
{
    const struct vhdx_page *x = a, *y = b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

int vhdx_log_apply(struct vhdx *h)
{
    struct vhdx_log_writer *w = &h->log;
    if (w->n_pending == 0) {
        w->unapplied = 0;
        return 0;
    }
    qsort(w->pending, w->n_pending, sizeof *w->pending, cmp_page);
    for (size_t i = 0; i < w->n_pending; i++) {
        int rc = vhdx_io_write(h->dev, w->pending[i].data, VHDX_LOG_SECTOR, w->pending[i].offset);
        if (rc != 0)
            return rc;
    }
    int rc = vhdx_flush_dev(h);
    if (rc != 0)
        return rc;
    vhdx_io_mark(h->dev, "log.applied", w->next_seq - 1);
    w->n_pending = 0;
    w->unapplied = 0;
    w->applies++;
    return 0;
}

static int pending_add(struct vhdx_log_writer *w, const struct vhdx_log_update *u)
{
    for (size_t i = 0; i < w->n_pending; i++) {
        if (w->pending[i].offset == u->file_offset) {
            if (u->data)
                memcpy(w->pending[i].data, u->data, VHDX_LOG_SECTOR);
            else
                memset(w->pending[i].data, 0, VHDX_LOG_SECTOR);
            return 0;
        }
    }
    if (w->n_pending == w->cap_pending) {
        size_t ncap = w->cap_pending ? w->cap_pending * 2 : 16;
        struct vhdx_page *n = vhdx_realloc(w->pending, ncap * sizeof *n);
        if (!n)
            return -ENOMEM;
        w->pending = n;
        w->cap_pending = ncap;
    }
    struct vhdx_page *p = &w->pending[w->n_pending++];
    p->offset = u->file_offset;
    if (u->data)
        memcpy(p->data, u->data, VHDX_LOG_SECTOR);
    else
        memset(p->data, 0, VHDX_LOG_SECTOR);
    return 0;
}

static int ring_write(struct vhdx *h, uint32_t pos, const uint8_t *buf, size_t len)
{
    uint32_t L = h->hdr.log_length;
    size_t first = (uint64_t)pos + len > L ? L - pos : len;
    int rc = vhdx_io_write(h->dev, buf, first, h->hdr.log_offset + pos);
    if (rc == 0 && first < len)
        rc = vhdx_io_write(h->dev, buf + first, len - first, h->hdr.log_offset);
    return rc;
}

/* Writes one entry holding pages[0..n) (which fit max_entry). */
static int write_entry(struct vhdx *h, const struct vhdx_log_update *pages, size_t n)
{
    struct vhdx_log_writer *w = &h->log;
    const uint32_t L = h->hdr.log_length;
    size_t size = vhdx_log_entry_size(pages, n);
    int rc;
    if (!w->entry_buf && !(w->entry_buf = vhdx_malloc(w->max_entry)))
        return -ENOMEM;
    if (!w->started) {
        rc = vhdx_guid_generate(&h->rng, &w->guid);
        if (rc != 0)
            return rc;
        w->head = w->seq_start = w->used = 0;
        w->next_seq = 1;
    }
    if (w->unapplied > 0 && (uint64_t)w->used + size > (uint64_t)L / 4 * 3) {
        rc = vhdx_log_apply(h);
        if (rc != 0)
            return rc;
    }
    uint32_t tail = w->unapplied > 0 ? w->seq_start : w->head;
    struct vhdx_log_entry_params p = {
        .log_guid = w->guid,
        .sequence = w->next_seq,
        .tail = tail,
        .flushed_file_offset = h->durable_size / VHDX_MiB * VHDX_MiB,
        .last_file_offset = vhdx_round_up(h->alloc_end, VHDX_MiB),
    };
    vhdx_log_entry_build(&p, pages, n, w->entry_buf);
    rc = ring_write(h, w->head, w->entry_buf, size);
    if (rc == 0)
        rc = vhdx_flush_dev(h);
    if (rc != 0)
        return rc;
    vhdx_io_mark(h->dev, "log.entry", w->next_seq);
    if (!w->started) {
        rc = vhdx_header_update(h, HDR_SET_LOG_GUID, &w->guid);
        if (rc != 0)
            return rc;
        w->started = 1;
        vhdx_io_mark(h->dev, "log.started", w->next_seq);
    }
    if (w->unapplied > 0) {
        w->used += (uint32_t)size;
    } else {
        w->seq_start = w->head;
        w->used = (uint32_t)size;
    }
    w->head = (uint32_t)((w->head + size) % L);
    w->next_seq++;
    w->unapplied++;
    w->entries_written++;
    for (size_t i = 0; i < n; i++) {
        rc = pending_add(w, &pages[i]);
        if (rc != 0)
            return rc;
    }
    if (w->unapplied >= w->apply_every || w->n_pending >= VHDX_PENDING_MAX)
        rc = vhdx_log_apply(h);
    return rc;
}

int vhdx_log_commit(struct vhdx *h, const struct vhdx_log_update *pages, size_t n)
{
    if (h->poison)
        return h->poison;
    const uint64_t max_sectors = h->log.max_entry / VHDX_LOG_SECTOR;
    size_t i = 0;
    while (i < n) {
        /* Largest run that surely fits: each page counted as one descriptor
         * plus one data sector (zero pages need less). */
        size_t k = 1;
        while (i + k < n && vhdx_log_desc_sectors(k + 1) + (k + 1) <= max_sectors)
            k++;
        if (vhdx_log_desc_sectors(k) + k > max_sectors) {
            h->poison = VHDX_E_LOG_FULL;
            return VHDX_E_LOG_FULL;
        }
        int rc = write_entry(h, pages + i, k);
        if (rc != 0) {
            h->poison = rc;
            return rc;
        }
        i += k;
    }
    return 0;
}

int vhdx_log_finish(struct vhdx *h)
{
    struct vhdx_log_writer *w = &h->log;
    int rc = vhdx_log_apply(h);
    if (rc == 0 && w->started) {
        rc = vhdx_header_update(h, HDR_CLEAR_LOG_GUID, NULL);
        if (rc == 0) {
            w->started = 0;
            vhdx_io_mark(h->dev, "log.closed", w->next_seq - 1);
        }
    }
    if (rc != 0)
        h->poison = rc;
    return rc;
}
