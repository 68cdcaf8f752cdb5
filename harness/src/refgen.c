/*
 * refgen.c - traces from the reference writer (refgen.h).
 *
 * Guarantees: the writer's bytes reach the trace only through a recording
 * simdisk (every write, truncate and flush in the order the writer issued
 * them); the creation runs on a scratch simdisk whose result becomes the
 * base; the workload records are added exactly where the writer reports
 * its ops begin, end and become durable, so the oracle's acknowledgement
 * rule (oracle.h) reads them as it reads the engine's workload runner.
 */
#define _POSIX_C_SOURCE 200809L
#include "harness/refgen.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/sdata.h"
#include "harness/simdisk.h"

/* ---- the writer's I/O on a bdev --------------------------------------------------- */
static int dev_write(void *ctx, const void *buf, size_t len, uint64_t off)
{
    struct bdev *d = ctx;
    return d->ops->write(d, buf, len, off);
}

static int dev_truncate(void *ctx, uint64_t size)
{
    struct bdev *d = ctx;
    return d->ops->truncate(d, size);
}

static int dev_flush(void *ctx)
{
    struct bdev *d = ctx;
    return d->ops->flush(d);
}

/* ---- the workload records ------------------------------------------------------------ */
struct rec {
    struct trace *t;
    uint64_t seed;
    int oom;
};

static enum vop_kind vop_of(enum ref_wop k)
{
    switch (k) {
    case REF_WOP_WRITE: return VOP_WRITE;
    case REF_WOP_FLUSH: return VOP_FLUSH;
    case REF_WOP_DISCARD: return VOP_DISCARD;
    case REF_WOP_REOPEN: return VOP_REOPEN;
    case REF_WOP_OPEN: return VOP_OPEN;
    default: return VOP_CLOSE;
    }
}

static void on_begin(void *ctx, uint32_t op, enum ref_wop kind, uint64_t voff, uint64_t vlen, uint32_t id)
{
    struct rec *r = ctx;
    r->oom |= trace_add_vbegin(r->t, op, vop_of(kind), voff, vlen, id) != 0;
}

static void on_end(void *ctx, uint32_t op, int rc)
{
    struct rec *r = ctx;
    r->oom |= trace_add_vend(r->t, op, rc) != 0;
}

static void on_synced(void *ctx, uint32_t op)
{
    struct rec *r = ctx;
    r->oom |= trace_add_mark(r->t, "workload.synced", op) != 0;
}

static void on_mark(void *ctx, const char *name, uint64_t arg)
{
    struct rec *r = ctx;
    r->oom |= trace_add_mark(r->t, name, arg) != 0;
}

static void on_fill(void *ctx, uint8_t *buf, uint64_t voff, uint64_t len, uint32_t id)
{
    struct rec *r = ctx;
    sdata_fill(buf, voff / 512, (uint32_t)(len / 512), id, r->seed);
}

static void meta_u64(struct trace *t, const char *key, uint64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    trace_set_meta(t, key, buf);
}

void refgen_format_stats(const struct ref_wstats *s, char *out, size_t len)
{
    snprintf(out, len,
             "entries=%u max_desc=%u desc0=%u desc127=%u desc128+=%u desc254=%u desc255+=%u max_sectors=%u "
             "sectors6+=%u mixed=%u overlapping=%u max_zero=%" PRIu64 " zero>1M=%u wrapped=%u wrapped_seq=%u "
             "max_run=%u tails_behind=%u tails_applied=%u batched=%u competing=%u stale_guids=%u seq_high=%u "
             "lfo_extends=%u ffo_low=%u past_end=%u applies=%u partial_applies=%u unflushed_applies=%u "
             "header_updates=%u single_updates=%u guid_cleared=%u bat_moves=%u regions_added=%u item_edits=%u log_moves=%u "
             "blocks_end=%u blocks_gap=%u blocks_reused=%u discards_zero=%u vops=%u sessions=%u pending_at_end=%d",
             s->entries, s->max_descriptors, s->desc_0, s->desc_127, s->desc_128_plus, s->desc_254, s->desc_255_plus,
             s->max_sectors, s->sectors_6_plus, s->mixed, s->overlapping, s->max_zero, s->zero_over_1m,
             s->wrapped_entries, s->wrapped_sequences, s->max_run, s->tails_behind, s->tails_applied, s->batched,
             s->competing, s->stale_guids, s->seq_high, s->lfo_extends, s->ffo_low, s->data_past_end, s->applies,
             s->partial_applies, s->unflushed_applies, s->header_updates, s->single_updates, s->guid_cleared,
             s->bat_moves, s->regions_added, s->item_edits, s->log_moves, s->blocks_end, s->blocks_gap, s->blocks_reused,
             s->discards_zero, s->vops, s->sessions, s->pending_at_end);
}

int refgen_trace_ex(uint64_t seed, const struct refgen_params *p, struct trace *t, struct refgen_info *info,
                    char *err, size_t errlen)
{
    struct ref_writer *w;
    int rc = ref_writer_new(&w, seed, p ? &p->w : NULL, err, errlen);
    if (rc)
        return rc;
    /* 1. the new image, on a scratch disk: it becomes the base */
    struct trace scratch;
    trace_init(&scratch);
    struct simdisk cdisk;
    simdisk_init(&cdisk, NULL, 0, &scratch);
    struct ref_wio io = {dev_write, dev_truncate, dev_flush, simdisk_bdev(&cdisk)};
    rc = ref_writer_create(w, &io);
    if (rc == 0)
        rc = trace_set_base(t, &cdisk.vol, cdisk.size);
    simdisk_free(&cdisk);
    trace_free(&scratch);
    if (rc) {
        snprintf(err, errlen, "creating the image failed: %s (%d)", ref_writer_error(w), rc);
        ref_writer_free(w);
        return rc;
    }
    /* 2. what the oracle and the tools read */
    const struct ref_wlayout *L = ref_writer_layout(w);
    t->seed = seed;
    t->flags |= TRACE_F_WORKLOAD;
    trace_set_meta(t, "workload", "refgen");
    trace_set_meta(t, "writer", "harness/ref ref_write (independent of the engine)");
    meta_u64(t, "seed", seed);
    meta_u64(t, "virtual_size", L->virtual_size);
    meta_u64(t, "block_size", L->block_size);
    meta_u64(t, "logical_sector", L->logical_sector);
    meta_u64(t, "physical_sector", L->physical_sector);
    meta_u64(t, "log_size", L->log_length);
    meta_u64(t, "log_offset", L->log_offset);
    meta_u64(t, "refgen.variety", L->variety);
    /* 3. the sessions, recorded */
    struct simdisk disk;
    simdisk_init(&disk, &t->base, t->base_size, t);
    struct ref_wio sio = {dev_write, dev_truncate, dev_flush, simdisk_bdev(&disk)};
    struct rec r = {t, seed, 0};
    struct ref_wobs obs = {on_begin, on_end, on_synced, on_mark, on_fill, &r};
    rc = ref_writer_run(w, &sio, &obs);
    simdisk_free(&disk);
    if (rc == 0 && r.oom)
        rc = -ENOMEM;
    if (rc)
        snprintf(err, errlen, "the reference writer failed (seed %" PRIu64 "): %s (%d)", seed, ref_writer_error(w),
                 rc);
    char shapes[1024];
    refgen_format_stats(ref_writer_stats(w), shapes, sizeof shapes);
    trace_set_meta(t, "refgen.shapes", shapes);
    if (info) {
        info->layout = *L;
        info->stats = *ref_writer_stats(w);
    }
    ref_writer_free(w);
    return rc;
}

int refgen_trace(uint64_t seed, const struct refgen_params *p, struct trace *t, char *err, size_t errlen)
{
    return refgen_trace_ex(seed, p, t, NULL, err, errlen);
}

/* ---- images -------------------------------------------------------------------------------- */
int refgen_image_at(const struct trace *t, size_t cut, struct secmap *out, uint64_t *size)
{
    int rc = secmap_merge(out, &t->base);
    uint64_t sz = t->base_size;
    for (size_t i = 0; i < cut && i < t->n_ops && rc == 0; i++) {
        const struct trace_op *op = &t->ops[i];
        if (op->kind == TR_TRUNCATE) {
            if (op->off < sz) {
                secmap_drop_from(out, (op->off + SECTOR - 1) / SECTOR);
                if (op->off % SECTOR) {
                    uint8_t s[SECTOR];
                    const uint8_t *v = secmap_get(out, op->off / SECTOR);
                    memcpy(s, v ? v : SECTOR_ZERO, SECTOR);
                    memset(s + op->off % SECTOR, 0, SECTOR - op->off % SECTOR);
                    rc = secmap_put_copy(out, op->off / SECTOR, s);
                }
            }
            sz = op->off;
            continue;
        }
        if (op->kind != TR_WRITE)
            continue;
        for (uint64_t s = op->off / SECTOR; s * SECTOR < op->off + op->len && rc == 0; s++) {
            uint64_t lo = s * SECTOR;
            if (lo >= op->off && lo + SECTOR <= op->off + op->len && op->off % SECTOR == 0) {
                rc = secmap_put(out, s, op->data + (lo - op->off));
                continue;
            }
            uint8_t merged[SECTOR];
            const uint8_t *old = secmap_get(out, s);
            memcpy(merged, old ? old : SECTOR_ZERO, SECTOR);
            uint64_t a = op->off > lo ? op->off : lo;
            uint64_t b = op->off + op->len < lo + SECTOR ? op->off + op->len : lo + SECTOR;
            memcpy(merged + (a - lo), op->data + (a - op->off), (size_t)(b - a));
            rc = secmap_put_copy(out, s, merged);
        }
        if (op->off + op->len > sz)
            sz = op->off + op->len;
    }
    *size = sz;
    return rc;
}

int refgen_pending_cuts(const struct trace *t, size_t **cuts, size_t *n)
{
    *cuts = NULL;
    *n = 0;
    int name = trace_find_name(t, "refgen.pending");
    if (name < 0)
        return 0;
    size_t cap = 0;
    for (size_t i = 0; i < t->n_ops; i++) {
        if (t->ops[i].kind != TR_MARK || t->ops[i].name != (uint16_t)name)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            size_t *nc = realloc(*cuts, cap * sizeof *nc);
            if (!nc) {
                free(*cuts);
                *cuts = NULL;
                *n = 0;
                return -ENOMEM;
            }
            *cuts = nc;
        }
        (*cuts)[(*n)++] = i + 1;
    }
    return 0;
}

static int map_read(void *ctx, void *buf, size_t len, uint64_t off)
{
    const struct refgen_src *s = ctx;
    uint8_t *p = buf;
    while (len > 0) {
        uint64_t sec = off / SECTOR;
        size_t in = (size_t)(off % SECTOR), n = SECTOR - in < len ? SECTOR - in : len;
        const uint8_t *v = off < s->size ? secmap_get(s->m, sec) : NULL;
        memcpy(p, (v ? v : SECTOR_ZERO) + in, n);
        p += n;
        off += n;
        len -= n;
    }
    return 0;
}

int refgen_ref_open(const struct refgen_src *src, struct ref_image *img)
{
    struct ref_src rs = {map_read, (void *)src, src->size, NULL, NULL};
    return ref_image_open(img, &rs);
}

int refgen_save_image(const struct secmap *m, uint64_t size, const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return -errno;
    int rc = 0;
    for (size_t i = 0; i < m->count && rc == 0; i++) {
        const struct secmap_slot *s = secmap_at(m, i);
        if (s->key * SECTOR >= size || !memcmp(s->val, SECTOR_ZERO, SECTOR))
            continue;
        size_t n = size - s->key * SECTOR < SECTOR ? (size_t)(size - s->key * SECTOR) : SECTOR;
        if (pwrite(fd, s->val, n, (off_t)(s->key * SECTOR)) != (ssize_t)n)
            rc = -EIO;
    }
    if (rc == 0 && ftruncate(fd, (off_t)size) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    return rc;
}
