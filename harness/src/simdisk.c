/*
 * simdisk.c - the recording disk and the crash disk (model in simdisk.h).
 *
 * Both store contents as 512-byte sectors in secmaps.  A write whose offset
 * is sector-aligned maps its whole sectors straight onto the bytes the trace
 * already holds; partial sectors are merged into copies (read, patch, copy).
 * Reads resolve each sector through the layers, newest first.
 *
 * Guarantees: reads past the size return VHDX_E_SHORT_IO (the bdev
 * contract); a failed allocation makes the operation fail with -ENOMEM and
 * leaves the volatile state as it was before that sector; counters count
 * calls, not bytes (except read_bytes).
 */
#include "harness/simdisk.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vhdx/errors.h"

/* ---- shared sector plumbing ------------------------------------------------ */
typedef const uint8_t *(*resolve_fn)(void *ctx, uint64_t sector);

static int read_sectors(resolve_fn resolve, void *ctx, uint8_t *p, uint64_t len, uint64_t off)
{
    /* Sectors that come from one write are adjacent in memory: copy each
     * such run with one memcpy. */
    const uint8_t *run = NULL;
    size_t run_len = 0;
    while (len > 0) {
        uint64_t s = off / SECTOR;
        uint32_t in = (uint32_t)(off % SECTOR);
        uint64_t n = SECTOR - in < len ? SECTOR - in : len;
        const uint8_t *src = resolve(ctx, s) + in;
        if (run && src == run + run_len && src != SECTOR_ZERO + in && src != SECTOR_POISON + in) {
            run_len += n;
        } else {
            if (run)
                memcpy(p - run_len, run, run_len);
            run = src;
            run_len = n;
        }
        p += n;
        off += n;
        len -= n;
    }
    if (run)
        memcpy(p - run_len, run, run_len);
    return 0;
}

/* Lends [off, off+len) when every sector of it lies adjacent in memory
 * (sectors of one write, or of the trace's base); NULL otherwise.  Addresses
 * are compared as integers: sectors of different allocations are not
 * pointer-comparable. */
static const void *map_sectors(resolve_fn resolve, void *ctx, uint64_t off, size_t len)
{
    if (off % SECTOR || len == 0)
        return NULL;
    uint64_t s = off / SECTOR, n = (len + SECTOR - 1) / SECTOR;
    const uint8_t *first = resolve(ctx, s);
    if (first == SECTOR_ZERO || first == SECTOR_POISON)
        return NULL;
    for (uint64_t i = 1; i < n; i++)
        if ((uintptr_t)resolve(ctx, s + i) != (uintptr_t)first + i * SECTOR)
            return NULL;
    return first;
}

/* Puts [off, off+len) of data (stored = a stable copy, or NULL) into map:
 * whole aligned sectors borrow stored, partial ones are merged copies. */
static int write_sectors(struct secmap *map, resolve_fn resolve, void *ctx, const uint8_t *data,
                         const uint8_t *stored, uint64_t len, uint64_t off,
                         void (*before)(void *ctx, uint64_t sector))
{
    uint64_t pos = 0;
    while (pos < len) {
        uint64_t at = off + pos;
        uint64_t s = at / SECTOR;
        uint32_t in = (uint32_t)(at % SECTOR);
        uint64_t n = SECTOR - in < len - pos ? SECTOR - in : len - pos;
        if (before)
            before(ctx, s);
        int rc;
        if (in == 0 && n == SECTOR && stored) {
            rc = secmap_put(map, s, stored + pos);
        } else {
            uint8_t merged[SECTOR];
            memcpy(merged, resolve(ctx, s), SECTOR);
            memcpy(merged + in, data + pos, (size_t)n);
            rc = secmap_put_copy(map, s, merged);
        }
        if (rc)
            return rc;
        pos += n;
    }
    return 0;
}

/* ---- simdisk ---------------------------------------------------------------- */
static const uint8_t *sim_resolve(void *ctx, uint64_t s)
{
    struct simdisk *d = ctx;
    const uint8_t *v = secmap_get(&d->vol, s);
    if (v)
        return v;
    if (d->initial && s < d->initial_limit && (v = secmap_get(d->initial, s)))
        return v;
    return SECTOR_ZERO;
}

static int sim_read(struct bdev *b, void *buf, size_t len, uint64_t off)
{
    struct simdisk *d = (struct simdisk *)b;
    d->reads++;
    if (off > d->size || len > d->size - off)
        return VHDX_E_SHORT_IO;
    return read_sectors(sim_resolve, d, buf, len, off);
}

static void sim_before(void *ctx, uint64_t s)
{
    struct simdisk *d = ctx;
    if (d->n_undo == d->cap_undo) {
        size_t ncap = d->cap_undo ? d->cap_undo * 2 : 256;
        struct simdisk_undo *n = realloc(d->undo, ncap * sizeof *n);
        if (!n)
            return; /* undo is best effort only under memory exhaustion */
        d->undo = n;
        d->cap_undo = ncap;
    }
    d->undo[d->n_undo++] = (struct simdisk_undo){s, secmap_get(&d->vol, s)};
}

static const void *sim_map(struct bdev *b, uint64_t off, size_t len)
{
    struct simdisk *d = (struct simdisk *)b;
    if (off > d->size || len > d->size - off)
        return NULL;
    const void *p = map_sectors(sim_resolve, d, off, len);
    d->reads += p != NULL;
    return p;
}

static int sim_write(struct bdev *b, const void *buf, size_t len, uint64_t off)
{
    struct simdisk *d = (struct simdisk *)b;
    d->writes++;
    if (len > TRACE_MAX_WRITE)
        return -EFBIG;
    const uint8_t *stored;
    int rc = trace_add_write(d->trace, off, buf, (uint32_t)len, &stored);
    if (rc)
        return rc;
    rc = write_sectors(&d->vol, sim_resolve, d, buf, stored, len, off, sim_before);
    if (rc)
        return rc;
    if (off + len > d->size)
        d->size = off + len;
    return 0;
}

static int sim_flush(struct bdev *b)
{
    struct simdisk *d = (struct simdisk *)b;
    d->flushes++;
    int rc = trace_add_flush(d->trace);
    if (rc)
        return rc;
    d->n_undo = 0;
    d->durable_size = d->size;
    return 0;
}

static int sim_size(struct bdev *b, uint64_t *size)
{
    *size = ((struct simdisk *)b)->size;
    return 0;
}

/* Zero the bytes of sector s at or past byte `from` (a shrink inside it). */
static int zero_tail(struct secmap *map, resolve_fn resolve, void *ctx, uint64_t s, uint32_t from)
{
    uint8_t merged[SECTOR];
    memcpy(merged, resolve(ctx, s), SECTOR);
    memset(merged + from, 0, SECTOR - from);
    return secmap_put_copy(map, s, merged);
}

static int sim_truncate(struct bdev *b, uint64_t size)
{
    struct simdisk *d = (struct simdisk *)b;
    d->truncates++;
    int rc = trace_add_truncate(d->trace, size);
    if (rc)
        return rc;
    if (size < d->size) {
        uint64_t first = (size + SECTOR - 1) / SECTOR;
        if (size % SECTOR) {
            sim_before(d, size / SECTOR);
            if ((rc = zero_tail(&d->vol, sim_resolve, d, size / SECTOR, (uint32_t)(size % SECTOR))))
                return rc;
        }
        secmap_drop_from(&d->vol, first);
        if (first < d->initial_limit)
            d->initial_limit = first;
    }
    d->size = size;
    return 0;
}

static void sim_mark(struct bdev *b, const char *name, uint64_t arg)
{
    struct simdisk *d = (struct simdisk *)b;
    trace_add_mark(d->trace, name, arg);
    if (!strcmp(name, "fault.drop_pending")) {
        /* A failed flush lost the pending writes: back to the durable state. */
        for (size_t i = d->n_undo; i-- > 0;) {
            const struct simdisk_undo *u = &d->undo[i];
            const uint8_t *prev = u->prev;
            if (!prev)
                prev = (d->initial && u->sector < d->initial_limit) ? secmap_get(d->initial, u->sector) : NULL;
            secmap_put(&d->vol, u->sector, prev ? prev : SECTOR_ZERO);
        }
        d->n_undo = 0;
        d->size = d->durable_size;
    }
}

static const struct bdev_ops sim_ops = {sim_read, sim_write, sim_flush, sim_size, sim_truncate, sim_mark, NULL,
                                        sim_map};

int simdisk_init(struct simdisk *s, const struct secmap *initial, uint64_t initial_size, struct trace *trace)
{
    memset(s, 0, sizeof *s);
    if (!trace)
        return -EINVAL;
    s->base.ops = &sim_ops;
    s->initial = initial;
    s->initial_limit = initial ? (initial_size + SECTOR - 1) / SECTOR : 0;
    s->size = s->durable_size = initial_size;
    s->trace = trace;
    secmap_init(&s->vol);
    return 0;
}

void simdisk_free(struct simdisk *s)
{
    secmap_free(&s->vol);
    free(s->undo);
    memset(s, 0, sizeof *s);
}

/* ---- crashdisk ------------------------------------------------------------- */
static const uint8_t *crash_resolve(void *ctx, uint64_t s)
{
    struct crashdisk *c = ctx;
    const uint8_t *v = secmap_get(&c->scratch, s);
    if (v)
        return v;
    if ((v = secmap_get(&c->overlay, s)))
        return v;
    if ((v = secmap_get(&c->prefix, s)))
        return v;
    if (s >= c->poison_lo && s < c->poison_hi)
        return SECTOR_POISON;
    if (s >= c->zero_from)
        return SECTOR_ZERO;
    if (c->durable && (v = secmap_get(c->durable, s)))
        return v;
    return SECTOR_ZERO;
}

/* The image as built for the state: every layer but scratch. */
static const uint8_t *built_resolve(void *ctx, uint64_t s)
{
    struct crashdisk *c = ctx;
    const uint8_t *v = secmap_get(&c->overlay, s);
    if (v)
        return v;
    if ((v = secmap_get(&c->prefix, s)))
        return v;
    if (s >= c->poison_lo && s < c->poison_hi)
        return SECTOR_POISON;
    if (s >= c->zero_from)
        return SECTOR_ZERO;
    if (c->durable && (v = secmap_get(c->durable, s)))
        return v;
    return SECTOR_ZERO;
}

#define ZERO_RUN (64u * 1024)
static const uint8_t zero_run[ZERO_RUN]; /* a range that reads zeros maps here */

/* Mappings of ranges that only the durable image holds, per generation of
 * it: a crash state's own layers are small, the ring and tables the
 * reference maps at every open are not. */
#define MAPC_SLOTS 1024u
struct crashdisk_mapc {
    const struct secmap *durable; /* the durable image it was taken from */
    uint64_t gen;     /* durable_gen + 1; 0 = empty */
    uint64_t off;
    size_t len;
    const uint8_t *p; /* may be NULL: not mappable */
};

static int layer_meets(const struct secmap *m, uint64_t s0, uint64_t s1)
{
    return m->count && m->min_key < s1 && m->max_key >= s0;
}

static const uint8_t *map_built_uncached(struct crashdisk *c, uint64_t off, size_t len, int *stable);

const uint8_t *crashdisk_map_built(struct crashdisk *c, uint64_t off, size_t len, int *stable)
{
    const uint64_t s0 = off / SECTOR, s1 = (off + len + SECTOR - 1) / SECTOR;
    if (layer_meets(&c->overlay, s0, s1) || layer_meets(&c->prefix, s0, s1) ||
        (c->poison_lo < s1 && c->poison_hi > s0) || c->zero_from < s1)
        return map_built_uncached(c, off, len, stable);
    if (!c->mapc && !(c->mapc = calloc(MAPC_SLOTS, sizeof *c->mapc)))
        return map_built_uncached(c, off, len, stable);
    struct crashdisk_mapc *e = &c->mapc[(off / 4096 + len) % MAPC_SLOTS];
    if (e->gen == c->durable_gen + 1 && e->durable == c->durable && e->off == off && e->len == len) {
        *stable = 1; /* the durable image: values live as long as it does */
        return e->p;
    }
    const uint8_t *p = map_built_uncached(c, off, len, stable);
    *e = (struct crashdisk_mapc){c->durable, c->durable_gen + 1, off, len, p};
    return p;
}

static const uint8_t *map_built_uncached(struct crashdisk *c, uint64_t off, size_t len, int *stable)
{
    *stable = 1;
    if (off % SECTOR || len % SECTOR || len == 0)
        return NULL;
    const uint8_t *first = NULL;
    int zeros = 1;
    for (uint64_t s = off / SECTOR, i = 0; i < len / SECTOR; s++, i++) {
        const uint8_t *v;
        if ((v = secmap_get(&c->overlay, s))) {
            *stable &= c->overlay.copies == 0 && !c->overlay_borrows_temp;
        } else if ((v = secmap_get(&c->prefix, s))) {
            *stable &= c->prefix.copies == 0;
        } else {
            v = built_resolve(c, s); /* the durable image: values live as long as the sweep */
        }
        if (v == SECTOR_ZERO) {
            if (!zeros)
                return NULL;
            continue;
        }
        if (v == SECTOR_POISON || (zeros && i > 0))
            return NULL; /* one static sector for all: not contiguous */
        zeros = 0;
        if (i == 0)
            first = v;
        else if (v != first + i * SECTOR)
            return NULL;
    }
    if (zeros && len <= ZERO_RUN) {
        *stable = 1;
        return zero_run;
    }
    return zeros ? NULL : first;
}

int crashdisk_read_built(struct crashdisk *c, void *buf, uint64_t len, uint64_t off)
{
    return read_sectors(built_resolve, c, buf, len, off);
}

int crashdisk_read(struct crashdisk *c, void *buf, uint64_t len, uint64_t off)
{
    return read_sectors(crash_resolve, c, buf, len, off);
}

static int crash_read(struct bdev *b, void *buf, size_t len, uint64_t off)
{
    struct crashdisk *c = (struct crashdisk *)b;
    c->reads++;
    c->read_bytes += len;
    if (off > c->size || len > c->size - off)
        return VHDX_E_SHORT_IO;
    return read_sectors(c->read_built ? built_resolve : crash_resolve, c, buf, len, off);
}

static const void *crash_map(struct bdev *b, uint64_t off, size_t len)
{
    struct crashdisk *c = (struct crashdisk *)b;
    if (off > c->size || len > c->size - off)
        return NULL;
    const void *p = map_sectors(c->read_built ? built_resolve : crash_resolve, c, off, len);
    if (p) {
        c->reads++;
        c->read_bytes += len;
    }
    return p;
}

static int crash_write(struct bdev *b, const void *buf, size_t len, uint64_t off)
{
    struct crashdisk *c = (struct crashdisk *)b;
    c->writes++;
    if (c->guard && c->guard(c->guard_ctx, off, len, 0))
        return -EIO;
    if (len > TRACE_MAX_WRITE)
        return -EFBIG;
    const uint8_t *stored = NULL;
    if (c->rec) {
        int rc = trace_add_write(c->rec, off, buf, (uint32_t)len, &stored);
        if (rc)
            return rc;
    }
    int rc = write_sectors(&c->scratch, crash_resolve, c, buf, stored, len, off, NULL);
    if (rc)
        return rc;
    if (off + len > c->size)
        c->size = off + len;
    return 0;
}

static int crash_flush(struct bdev *b)
{
    struct crashdisk *c = (struct crashdisk *)b;
    c->flushes++;
    return c->rec ? trace_add_flush(c->rec) : 0;
}

static int crash_size(struct bdev *b, uint64_t *size)
{
    *size = ((struct crashdisk *)b)->size;
    return 0;
}

static int crash_truncate(struct bdev *b, uint64_t size)
{
    struct crashdisk *c = (struct crashdisk *)b;
    c->truncates++;
    if (c->guard && c->guard(c->guard_ctx, size, 0, 1))
        return -EIO;
    if (c->rec) {
        int rc = trace_add_truncate(c->rec, size);
        if (rc)
            return rc;
    }
    if (size < c->size) {
        uint64_t first = (size + SECTOR - 1) / SECTOR;
        if (size % SECTOR) {
            int rc = zero_tail(&c->scratch, crash_resolve, c, size / SECTOR, (uint32_t)(size % SECTOR));
            if (rc)
                return rc;
        }
        secmap_drop_from(&c->scratch, first);
        secmap_drop_from(&c->overlay, first);
        secmap_drop_from(&c->prefix, first);
        if (first < c->zero_from)
            c->zero_from = first;
    }
    c->size = size;
    return 0;
}

static void crash_mark(struct bdev *b, const char *name, uint64_t arg)
{
    struct crashdisk *c = (struct crashdisk *)b;
    if (c->rec)
        trace_add_mark(c->rec, name, arg);
}

static const struct bdev_ops crash_ops = {crash_read, crash_write, crash_flush, crash_size, crash_truncate,
                                          crash_mark, NULL, crash_map};

void crashdisk_init(struct crashdisk *c, const struct secmap *durable, uint64_t size)
{
    memset(c, 0, sizeof *c);
    c->base.ops = &crash_ops;
    c->durable = durable;
    secmap_init(&c->prefix);
    secmap_init(&c->overlay);
    secmap_init(&c->scratch);
    crashdisk_reset(c, size);
}

void crashdisk_free(struct crashdisk *c)
{
    free(c->mapc);
    c->mapc = NULL;
    secmap_free(&c->prefix);
    secmap_free(&c->overlay);
    secmap_free(&c->scratch);
}

void crashdisk_reset(struct crashdisk *c, uint64_t size)
{
    secmap_clear(&c->prefix);
    c->prefix_size = size;
    c->prefix_zero_from = UINT64_MAX;
    crashdisk_reset_keep_prefix(c);
}

void crashdisk_reset_keep_prefix(struct crashdisk *c)
{
    secmap_clear(&c->overlay);
    secmap_clear(&c->scratch);
    c->size = c->prefix_size;
    c->zero_from = c->prefix_zero_from;
    c->poison_lo = c->poison_hi = 0;
    c->overlay_borrows_temp = 0;
}

int crashdisk_prefix_write(struct crashdisk *c, uint64_t off, const uint8_t *data, uint64_t len)
{
    int rc = write_sectors(&c->prefix, crash_resolve, c, data, off % SECTOR == 0 ? data : NULL, len, off, NULL);
    if (rc == 0 && off + len > c->prefix_size)
        c->prefix_size = off + len;
    c->size = c->prefix_size;
    return rc;
}

void crashdisk_prefix_truncate(struct crashdisk *c, uint64_t size)
{
    if (size < c->prefix_size) {
        uint64_t first = (size + SECTOR - 1) / SECTOR;
        secmap_drop_from(&c->prefix, first);
        if (first < c->prefix_zero_from)
            c->prefix_zero_from = first;
        c->zero_from = c->prefix_zero_from;
    }
    c->prefix_size = c->size = size;
}

int crashdisk_overlay_write(struct crashdisk *c, uint64_t off, const uint8_t *data, uint64_t len)
{
    /* Overlay values must not point into the scratch arena; data is a trace's. */
    int rc = write_sectors(&c->overlay, crash_resolve, c, data, off % SECTOR == 0 ? data : NULL, len, off, NULL);
    if (rc == 0 && off + len > c->size)
        c->size = off + len;
    return rc;
}

int crashdisk_overlay_write_torn(struct crashdisk *c, uint64_t off, const uint8_t *data, uint64_t len,
                                 uint32_t gran, const uint8_t *mask)
{
    for (uint64_t pos = 0, unit = 0; pos < len; pos += gran, unit++) {
        uint64_t n = len - pos < gran ? len - pos : gran;
        if (!(mask[unit / 8] & (1u << (unit % 8))))
            continue;
        int rc = crashdisk_overlay_write(c, off + pos, data + pos, n);
        if (rc)
            return rc;
    }
    return 0;
}

void crashdisk_set_structural_limit(struct crashdisk *c, uint64_t sector)
{
    secmap_set_sig_limit(&c->prefix, sector);
    secmap_set_sig_limit(&c->overlay, sector);
}

static uint64_t mixu(uint64_t h, uint64_t x)
{
    h ^= x + UINT64_C(0x9E3779B97F4A7C15) + (h << 6) + (h >> 2);
    return h * UINT64_C(0xBF58476D1CE4E5B9);
}

uint64_t crashdisk_signature(const struct crashdisk *c)
{
    uint64_t h = mixu(0x51C, c->prefix.sig);
    h = mixu(h, c->overlay.sig);
    h = mixu(h, c->size);
    h = mixu(h, c->zero_from);
    h = mixu(h, c->poison_lo);
    return mixu(h, c->poison_hi);
}
