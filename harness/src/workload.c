/*
 * workload.c - scenario generators and the workload runner.
 *
 * Guarantees: generation is a pure function of the resolved parameters
 * (splitmix64 from the seed, no other source of randomness); every write id
 * is unique and increasing; offsets and lengths are 512-byte multiples
 * inside the disk; the runner's engine uses a GUID generator seeded from the
 * workload seed, so the trace is byte-for-byte reproducible.  A scenario's
 * base-image preparation (a pending log another writer left, an image flag
 * vhdx_create has no parameter for) is likewise a function of the
 * parameters alone, written with the engine's public codecs.
 */
#include "harness/workload.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/sdata.h"
#include "harness/subject.h"
#include "harness/simdisk.h"
#include "vhdx/log.h"
#include "vhdx/vhdx.h"

struct rng {
    uint64_t s;
};

static uint64_t rnext(struct rng *r)
{
    uint64_t z = (r->s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static uint64_t rbelow(struct rng *r, uint64_t n)
{
    return n ? rnext(r) % n : 0;
}

struct gen;

/* The scenario registry (the table is below the generators): the one list
 * of scenarios; tools print it (`pcsweep scenarios`, --help). */
struct scenario {
    const char *name;
    uint32_t ops;          /* default operation count */
    uint32_t apply_every;  /* default engine batching (0: 1 + seed % 8) */
    uint32_t fault_ops;    /* operations of a fault sweep's workload (each call of it is failed once) */
    uint64_t virtual_size; /* default disk size (0: 1 GiB) */
    uint32_t block_size;   /* default block size (0: 1 MiB) */
    uint32_t sector_odd;   /* 4096-byte logical sectors by default for odd seeds (1) or even seeds (0) */
    void (*gen)(struct gen *g);
    /* Prepares the created image before it becomes the trace's base (NULL:
     * the image as vhdx_create made it).  Deterministic from the params. */
    int (*prep)(struct bdev *dev, const struct workload_params *p, char *err, size_t errlen);
    const char *about;
};

static const struct scenario *find_scenario(const char *name);

int workload_params_resolve(struct workload_params *p, char *err, size_t errlen)
{
    if (!p->scenario[0])
        snprintf(p->scenario, sizeof p->scenario, "mixed");
    const struct scenario *sc = find_scenario(p->scenario);
    if (!sc) {
        char known[256];
        workload_scenario_names(known, sizeof known, ", ");
        snprintf(err, errlen, "unknown scenario '%s' (%s)", p->scenario, known);
        return -EINVAL;
    }
    if (!p->virtual_size)
        p->virtual_size = sc->virtual_size ? sc->virtual_size : UINT64_C(1) << 30;
    if (!p->block_size)
        p->block_size = sc->block_size ? sc->block_size : 1u << 20;
    if (!p->logical_sector) /* every scenario meets both sizes: seeds N and N + 1 differ */
        p->logical_sector = (p->seed & 1) == sc->sector_odd ? 4096 : 512;
    if (!p->physical_sector)
        p->physical_sector = 4096;
    if (!p->log_size)
        p->log_size = 1u << 20;
    if (!p->ops)
        p->ops = sc->ops;
    if (!p->apply_every)
        p->apply_every = sc->apply_every ? sc->apply_every : (uint32_t)(1 + p->seed % 8);
    if (p->block_size < (1u << 20) || p->block_size > (256u << 20) || (p->block_size & (p->block_size - 1))) {
        snprintf(err, errlen, "block size %u is not a power of two between 1 MiB and 256 MiB", p->block_size);
        return -EINVAL;
    }
    if ((p->logical_sector != 512 && p->logical_sector != 4096) ||
        (p->physical_sector != 512 && p->physical_sector != 4096)) {
        snprintf(err, errlen, "sector sizes must be 512 or 4096");
        return -EINVAL;
    }
    if (p->virtual_size < 4 * (uint64_t)p->block_size || p->virtual_size % p->logical_sector ||
        p->virtual_size > (64ull << 40)) {
        snprintf(err, errlen, "virtual size %" PRIu64 " must hold at least 4 blocks, be a multiple of the logical "
                 "sector and at most 64 TiB", p->virtual_size);
        return -EINVAL;
    }
    if (p->log_size < (1u << 20) || p->log_size % (1u << 20) || p->log_size > (256u << 20)) {
        snprintf(err, errlen, "log size %u must be a multiple of 1 MiB up to 256 MiB", p->log_size);
        return -EINVAL;
    }
    if (p->ops > 1000000) {
        snprintf(err, errlen, "at most 1000000 workload operations");
        return -EINVAL;
    }
    return 0;
}

struct gen {
    struct workload *w;
    size_t cap;
    uint32_t next_id;
    struct rng r;
    const struct workload_params *p;
    int oom;
};

static void emit(struct gen *g, enum vop_kind k, uint64_t off, uint64_t len)
{
    if (g->oom)
        return;
    if (g->w->n == g->cap) {
        size_t ncap = g->cap ? g->cap * 2 : 256;
        struct vop *n = realloc(g->w->ops, ncap * sizeof *n);
        if (!n) {
            g->oom = 1;
            return;
        }
        g->w->ops = n;
        g->cap = ncap;
    }
    uint64_t vs = g->p->virtual_size;
    if (k == VOP_WRITE || k == VOP_DISCARD) {
        off = off / 512 * 512 % vs;
        len = len / 512 * 512;
        if (len == 0)
            len = 512;
        if (len > vs - off)
            len = vs - off;
    }
    g->w->ops[g->w->n++] = (struct vop){k, off, len, k == VOP_WRITE ? ++g->next_id : 0};
}

/* A write size: mostly up to 32 KiB, sometimes a block, rarely several. */
static uint64_t pick_len(struct gen *g, int big)
{
    uint64_t bs = g->p->block_size;
    switch (rbelow(&g->r, big ? 12 : 24)) {
    case 0:
        return bs;
    case 1:
        return bs + 512 * (1 + rbelow(&g->r, 64));
    case 2:
        return bs * 2 + 512 * rbelow(&g->r, 8);
    case 3:
    case 4:
        return 4096 * (1 + rbelow(&g->r, 8));
    case 5:
    case 6:
        return 512;
    default:
        return 512 * (1 + rbelow(&g->r, 64));
    }
}

/* An offset, aligned to the logical sector or (sometimes) only to 512. */
static uint64_t pick_off(struct gen *g, uint64_t lo, uint64_t hi)
{
    uint64_t off = lo + rbelow(&g->r, hi - lo);
    uint32_t align = rbelow(&g->r, 3) == 0 ? 512 : g->p->logical_sector;
    return off / align * align;
}

static void gen_fill(struct gen *g)
{
    /* Rounds of writes spread over the whole disk (each lands in fresh
     * blocks, so each allocates and logs), ended by discarding everything. */
    const uint64_t vs = g->p->virtual_size, bs = g->p->block_size;
    const uint64_t stride = vs / 48 > bs ? vs / 48 : bs;
    uint64_t pos = 512 * rbelow(&g->r, 8);
    while (g->w->n < g->p->ops) {
        uint64_t len = pick_len(g, 1);
        emit(g, VOP_WRITE, pos, len);
        pos += stride + bs * rbelow(&g->r, 2) + 512 * rbelow(&g->r, 64);
        if (rbelow(&g->r, 4) == 0)
            emit(g, VOP_FLUSH, 0, 0);
        if (pos >= vs) {
            emit(g, VOP_FLUSH, 0, 0);
            emit(g, VOP_DISCARD, 0, vs);
            emit(g, VOP_FLUSH, 0, 0);
            pos = 512 * rbelow(&g->r, 8) + bs * rbelow(&g->r, 4);
        }
    }
}

static void gen_overwrite(struct gen *g)
{
    const uint64_t bs = g->p->block_size;
    const uint64_t region = 6 * bs < g->p->virtual_size ? 6 * bs : g->p->virtual_size;
    for (uint64_t off = 0; off < region; off += bs)
        emit(g, VOP_WRITE, off, bs);
    emit(g, VOP_FLUSH, 0, 0);
    while (g->w->n < g->p->ops) {
        emit(g, VOP_WRITE, pick_off(g, 0, region), pick_len(g, 0));
        if (rbelow(&g->r, 3) == 0)
            emit(g, VOP_FLUSH, 0, 0);
    }
}

static void gen_discard(struct gen *g)
{
    /* Mostly discards of data written recently (what users discard), whole
     * blocks and partial ranges, then rewrites. */
    const uint64_t vs = g->p->virtual_size, bs = g->p->block_size;
    uint64_t recent[16] = {0};
    unsigned n_recent = 0;
    while (g->w->n < g->p->ops) {
        uint64_t r = rbelow(&g->r, 10);
        uint64_t target = n_recent && rbelow(&g->r, 10) < 7 ? recent[rbelow(&g->r, n_recent)]
                                                             : pick_off(g, 0, vs / 2);
        if (r < 5) {
            uint64_t off = pick_off(g, 0, vs / 2);
            emit(g, VOP_WRITE, off, pick_len(g, 1));
            recent[n_recent < 16 ? n_recent++ : rbelow(&g->r, 16)] = off;
        } else if (r < 7) {
            emit(g, VOP_DISCARD, target / bs * bs, bs * (1 + rbelow(&g->r, 2)));
        } else if (r < 8) {
            emit(g, VOP_DISCARD, target, 512 * (1 + rbelow(&g->r, 300)));
        } else {
            emit(g, VOP_FLUSH, 0, 0);
        }
    }
}

/* A small write across the boundary between two BAT pages (the last block
 * of one page and the first of the next), so one log entry carries two
 * pages: entries of unequal size shift the ring positions, and some entries
 * then straddle the end of the ring.  Needs a BAT of more than one page. */
static void emit_page_crossing(struct gen *g)
{
    const uint64_t bs = g->p->block_size;
    const uint64_t per_page = 4096 / 8; /* BAT entries per page */
    const uint64_t chunk = (UINT64_C(1) << 23) * g->p->logical_sector / bs;
    /* payload blocks per page, allowing for the interleaved bitmap entries */
    const uint64_t blocks_per_page = per_page - per_page / (chunk + 1);
    const uint64_t pages = (g->p->virtual_size / bs) / blocks_per_page;
    if (pages < 1)
        return;
    uint64_t boundary = (1 + rbelow(&g->r, pages)) * blocks_per_page * bs;
    if (boundary >= g->p->virtual_size)
        return;
    if (rbelow(&g->r, 2)) /* free both blocks, so the write allocates both again */
        emit(g, VOP_DISCARD, boundary - bs, 2 * bs);
    emit(g, VOP_WRITE, boundary - 512 * (1 + rbelow(&g->r, 4)), 512 * (2 + rbelow(&g->r, 8)));
}

static void gen_batch(struct gen *g)
{
    const uint64_t vs = g->p->virtual_size, bs = g->p->block_size;
    uint64_t nb = vs / bs;
    while (g->w->n < g->p->ops) {
        /* Small writes that land in fresh blocks most of the time. */
        uint64_t b = rbelow(&g->r, nb);
        emit(g, VOP_WRITE, b * bs + 512 * rbelow(&g->r, bs / 512), 512 * (1 + rbelow(&g->r, 8)));
        if (rbelow(&g->r, 6) == 0)
            emit_page_crossing(g);
        uint64_t r = rbelow(&g->r, 12);
        if (r == 0)
            emit(g, VOP_FLUSH, 0, 0);
        else if (r == 1)
            emit(g, VOP_DISCARD, rbelow(&g->r, nb) * bs, bs);
    }
}

static void gen_reopen(struct gen *g)
{
    const uint64_t vs = g->p->virtual_size;
    while (g->w->n < g->p->ops) {
        uint64_t k = 2 + rbelow(&g->r, 6);
        for (uint64_t i = 0; i < k; i++) {
            emit(g, VOP_WRITE, pick_off(g, 0, vs), pick_len(g, 0));
            if (rbelow(&g->r, 5) == 0)
                emit(g, VOP_DISCARD, pick_off(g, 0, vs), g->p->block_size);
        }
        if (rbelow(&g->r, 2))
            emit(g, VOP_FLUSH, 0, 0);
        emit(g, VOP_REOPEN, 0, 0);
    }
}

static void gen_mixed(struct gen *g)
{
    const uint64_t vs = g->p->virtual_size, bs = g->p->block_size;
    while (g->w->n < g->p->ops) {
        uint64_t r = rbelow(&g->r, 20);
        if (r < 11)
            emit(g, VOP_WRITE, pick_off(g, 0, vs), pick_len(g, r < 3));
        else if (r < 14)
            emit(g, VOP_FLUSH, 0, 0);
        else if (r < 16)
            emit(g, VOP_DISCARD, rbelow(&g->r, vs / bs) * bs, bs * (1 + rbelow(&g->r, 3)));
        else if (r < 17)
            emit(g, VOP_DISCARD, pick_off(g, 0, vs), 512 * (1 + rbelow(&g->r, 64)));
        else if (r < 18)
            emit(g, VOP_REOPEN, 0, 0);
        else if (r < 19)
            emit(g, VOP_APPLY, 0, 0);
        else if (rbelow(&g->r, 2))
            emit_page_crossing(g);
        else
            emit(g, VOP_WRITE, pick_off(g, 0, vs), 512);
    }
}

static void gen_wide(struct gen *g)
{
    /* One sector at the start of every block, in order, so the BAT fills
     * page after page (with its sector-bitmap entries) and the file grows
     * past 4 GiB; then discards and rewrites of ranges of blocks. */
    const uint64_t vs = g->p->virtual_size, bs = g->p->block_size, nb = (vs + bs - 1) / bs;
    for (uint64_t b = 0; b < nb && g->w->n < g->p->ops; b++) {
        emit(g, VOP_WRITE, b * bs + 512 * rbelow(&g->r, 8), 512 * (1 + rbelow(&g->r, 4)));
        if (b % 8 == 7)
            emit(g, VOP_FLUSH, 0, 0);
    }
    while (g->w->n < g->p->ops) {
        uint64_t b = rbelow(&g->r, nb);
        uint64_t r = rbelow(&g->r, 6);
        if (r == 0)
            emit(g, VOP_DISCARD, b * bs, bs * (1 + rbelow(&g->r, 8)));
        else if (r == 1)
            emit(g, VOP_FLUSH, 0, 0);
        else
            emit(g, VOP_WRITE, b * bs + 512 * rbelow(&g->r, bs / 512), 512 * (1 + rbelow(&g->r, 8)));
    }
}

/* A few hot blocks worked over and over with rare flushes: small
 * overlapping writes near each block's start, whole-block discards (the next
 * write allocates the block again) and partial ones (zero-filled in place),
 * whole-block writes, explicit applies.  Every sector there collects many
 * unacknowledged values in a row (more than the oracle lists by name), and
 * with the engine applying every 8 entries the ring fills with unapplied
 * entries and wraps.  Found missing by a fuzz_crash_schedule false alarm:
 * a persistent short write over a value older than the last 16 (issue 16). */
static void gen_churn(struct gen *g)
{
    const uint64_t vs = g->p->virtual_size, bs = g->p->block_size, nb = vs / bs;
    const uint64_t hot[4] = {0, 0, nb / 2, nb - 1}; /* the first block twice as often */
    uint32_t since_flush = 0;
    while (g->w->n < g->p->ops) {
        const uint64_t b = hot[rbelow(&g->r, 4)] * bs;
        const uint64_t r = rbelow(&g->r, 20);
        if (r < 11) /* sectors 0..15 of the block, overlapping */
            emit(g, VOP_WRITE, b + 512 * rbelow(&g->r, 8), 512 * (1 + rbelow(&g->r, 8)));
        else if (r < 15)
            emit(g, VOP_DISCARD, b, bs);
        else if (r < 17)
            emit(g, VOP_DISCARD, b + 512 * rbelow(&g->r, 8), 512 * (1 + rbelow(&g->r, 16)));
        else if (r < 18)
            emit(g, VOP_WRITE, b, bs);
        else if (r < 19)
            emit(g, VOP_APPLY, 0, 0);
        else /* across the end of the block */
            emit(g, VOP_WRITE, b + bs - 512 * (1 + rbelow(&g->r, 4)), 512 * (2 + rbelow(&g->r, 8)));
        if (++since_flush >= 24 + rbelow(&g->r, 40)) {
            emit(g, VOP_FLUSH, 0, 0);
            since_flush = 0;
        }
    }
}

/* The ring filling to the apply threshold with many unapplied entries: the
 * engine batches without a count limit, so only the 3/4-of-the-ring rule
 * (and explicit applies, and close) applies the batch.  One-sector writes
 * into fresh blocks make one 8 KiB entry each (two-page writes 12 KiB), so
 * about 90 entries wait when the threshold applies them.  The disk is
 * 9 GiB of 1 MiB blocks (a BAT of 19 pages): the entries waiting name more
 * than 16 distinct pages. */
static void gen_ring(struct gen *g)
{
    const uint64_t vs = g->p->virtual_size, bs = g->p->block_size, nb = vs / bs;
    while (g->w->n < g->p->ops) {
        const uint64_t r = rbelow(&g->r, 40);
        if (r < 32)
            emit(g, VOP_WRITE, rbelow(&g->r, nb) * bs + 512 * rbelow(&g->r, 64), 512 * (1 + rbelow(&g->r, 8)));
        else if (r < 34)
            emit(g, VOP_FLUSH, 0, 0);
        else if (r < 37)
            emit_page_crossing(g);
        else if (r < 39)
            emit(g, VOP_DISCARD, rbelow(&g->r, nb) * bs, bs * (1 + rbelow(&g->r, 4)));
        else
            emit(g, VOP_WRITE, pick_off(g, 0, vs - 4 * bs), bs * (2 + rbelow(&g->r, 2)));
    }
}

/* Commits larger than one entry: a 33 GiB disk of 1 MiB blocks has a BAT
 * of 67 pages, more than an entry of a 1 MiB log holds (256 KiB: 63 pages
 * and a descriptor sector).  A round writes one sector into a fresh block
 * under each of 17..24 BAT pages, then discards the whole disk: the first
 * time every page changes (67 pages wait to be applied at once) and the
 * commit is split into two entries.  The writes come first, so a fault
 * sweep's short run (4 operations by default) stops before the whole-disk
 * discard, which its per-sector shadow of the disk cannot afford. */
static void gen_split(struct gen *g)
{
    const uint64_t vs = g->p->virtual_size, bs = g->p->block_size, nb = vs / bs;
    const uint64_t chunk = (UINT64_C(1) << 23) * g->p->logical_sector / bs;
    const uint64_t per_page = 512 - 512 / (chunk + 1); /* payload blocks per BAT page */
    const uint64_t pages = nb / per_page;
    while (g->w->n < g->p->ops) {
        const uint64_t first = rbelow(&g->r, pages), k = 17 + rbelow(&g->r, 8);
        for (uint64_t i = 0; i < k && g->w->n < g->p->ops; i++) {
            const uint64_t page = (first + 5 * i) % pages;
            emit(g, VOP_WRITE, (page * per_page + rbelow(&g->r, per_page)) * bs + 512 * rbelow(&g->r, 64),
                 512 * (1 + rbelow(&g->r, 8)));
        }
        if (g->w->n + 3 > g->p->ops)
            break; /* a short run ends without the whole-disk discard */
        emit(g, VOP_FLUSH, 0, 0);
        emit(g, VOP_DISCARD, 0, vs);
        emit(g, VOP_FLUSH, 0, 0);
    }
}

/* ---- base images other writers leave --------------------------------------- */
static int dev_read(struct bdev *d, void *buf, size_t len, uint64_t off)
{
    return d->ops->read(d, buf, len, off);
}

static int dev_write(struct bdev *d, const void *buf, size_t len, uint64_t off)
{
    return d->ops->write(d, buf, len, off);
}

/* The created image's structures, read back with the engine's decoders. */
struct base_layout {
    struct vhdx_header hdr[2]; /* both header copies */
    int current;               /* the copy with the greater SequenceNumber */
    uint64_t bat_offset, meta_offset; /* regions, from region table 1 */
    uint64_t file_size;
    struct vhdx_geometry geo;
};

static int base_layout_read(struct bdev *d, const struct workload_params *p, struct base_layout *b, char *err,
                            size_t errlen)
{
    static const uint32_t slot[2] = {VHDX_HEADER1_OFFSET, VHDX_HEADER2_OFFSET};
    memset(b, 0, sizeof *b);
    uint8_t *buf = malloc(VHDX_REGION_TABLE_SIZE);
    struct vhdx_region_table *rt = malloc(sizeof *rt);
    int rc = buf && rt ? 0 : -ENOMEM;
    for (int i = 0; i < 2 && rc == 0; i++)
        if ((rc = dev_read(d, buf, VHDX_HEADER_SIZE, slot[i])) == 0)
            rc = vhdx_header_decode(buf, &b->hdr[i]);
    b->current = b->hdr[1].sequence > b->hdr[0].sequence;
    if (rc == 0 && (rc = dev_read(d, buf, VHDX_REGION_TABLE_SIZE, VHDX_REGION1_OFFSET)) == 0)
        rc = vhdx_region_table_decode(buf, rt);
    for (uint32_t i = 0; rc == 0 && i < rt->entry_count; i++) {
        if (vhdx_guid_equal(&rt->entries[i].guid, &VHDX_GUID_REGION_BAT))
            b->bat_offset = rt->entries[i].file_offset;
        else if (vhdx_guid_equal(&rt->entries[i].guid, &VHDX_GUID_REGION_METADATA))
            b->meta_offset = rt->entries[i].file_offset;
    }
    if (rc == 0)
        rc = d->ops->size(d, &b->file_size);
    if (rc == 0)
        rc = vhdx_geometry_init(&b->geo, p->virtual_size, p->block_size, p->logical_sector, p->physical_sector);
    if (rc == 0 && (!b->bat_offset || !b->meta_offset))
        rc = -EINVAL;
    if (rc != 0)
        snprintf(err, errlen, "reading the new image's layout failed: %s", vhdx_strerror(rc));
    free(buf);
    free(rt);
    return rc;
}

/* `keep`: the image asks writers to leave discarded blocks allocated (the
 * File Parameters item's LeaveBlockAllocated bit, MS-VHDX 2.6.2.1), which
 * vhdx_create has no parameter for: the bit is set in the created image. */
static int prep_keep(struct bdev *d, const struct workload_params *p, char *err, size_t errlen)
{
    struct base_layout b;
    int rc = base_layout_read(d, p, &b, err, errlen);
    if (rc != 0)
        return rc;
    uint8_t *buf = malloc(VHDX_METADATA_TABLE_SIZE);
    struct vhdx_metadata_table *mt = malloc(sizeof *mt);
    rc = buf && mt ? dev_read(d, buf, VHDX_METADATA_TABLE_SIZE, b.meta_offset) : -ENOMEM;
    if (rc == 0)
        rc = vhdx_metadata_table_decode(buf, VHDX_METADATA_TABLE_SIZE, mt);
    uint64_t at = 0; /* file offset of the File Parameters item */
    for (uint32_t i = 0; rc == 0 && i < mt->entry_count; i++)
        if (vhdx_guid_equal(&mt->entries[i].item_id, &VHDX_GUID_ITEM_FILE_PARAMETERS))
            at = b.meta_offset + mt->entries[i].offset;
    if (rc == 0 && at == 0)
        rc = -ENOENT;
    uint8_t item[VHDX_ITEM_FILE_PARAMETERS_SIZE];
    if (rc == 0)
        rc = dev_read(d, item, sizeof item, at);
    if (rc == 0) {
        struct vhdx_file_parameters fp;
        vhdx_file_parameters_decode(item, &fp);
        fp.flags |= VHDX_FP_LEAVE_BLOCK_ALLOCATED;
        vhdx_file_parameters_encode(&fp, item);
        rc = dev_write(d, item, sizeof item, at);
    }
    if (rc == 0)
        rc = d->ops->flush(d);
    if (rc != 0)
        snprintf(err, errlen, "setting LeaveBlockAllocated failed: %s", vhdx_strerror(rc));
    free(buf);
    free(mt);
    return rc;
}

/* `extend`: the virtual blocks the pending log of the base image maps, a
 * function of the seed (the generator writes into them). */
#define EXTEND_MAX_BLOCKS 4
static unsigned extend_blocks(const struct workload_params *p, uint64_t out[EXTEND_MAX_BLOCKS])
{
    struct rng r = {p->seed ^ UINT64_C(0xE7E2D0B10C5EED00)};
    const uint64_t nb = p->virtual_size / p->block_size;
    const unsigned k = 2 + (unsigned)rbelow(&r, EXTEND_MAX_BLOCKS - 1);
    out[0] = nb - 1 - rbelow(&r, 4); /* in the last BAT page */
    for (unsigned i = 1; i < k; i++) {
        int again;
        do {
            out[i] = rbelow(&r, nb);
            again = 0;
            for (unsigned j = 0; j < i; j++)
                again |= out[j] == out[i];
        } while (again);
    }
    return k;
}

/* Writes len bytes at ring position pos, wrapping at the ring's end. */
static int ring_put(struct bdev *d, const struct vhdx_header *h, uint32_t pos, const uint8_t *buf, size_t len)
{
    const size_t first = (uint64_t)pos + len > h->log_length ? h->log_length - pos : len;
    int rc = dev_write(d, buf, first, h->log_offset + pos);
    if (rc == 0 && first < len)
        rc = dev_write(d, buf + first, len - first, h->log_offset);
    return rc;
}

/* `extend`: the base image is what a writer that reserves file space ahead
 * leaves at a power cut: its file was extended durably by k blocks (which
 * read as zeros), then it logged a sequence of three entries under a new
 * LogGuid and set the LogGuid in both headers; nothing was applied.
 *   1. the BAT pages mapping k virtual blocks to the reserved space;
 *   2. zero descriptors: the same BAT pages (a later entry supersedes an
 *      earlier one: open reads them through the replay overlay), 127-130
 *      non-adjacent pages of the reserved blocks (so the descriptors spill
 *      into a second descriptor sector) and one range across the end of the
 *      file (more than 64 KiB of it inside);
 *   3. the BAT pages of entry 1 again, and a data page past the end of the
 *      file, in space no block uses.
 * Every entry says FlushedFileOffset = the file size, LastFileOffset 1 to 3
 * MiB past it, so the first open's replay writes past the end of the file,
 * skips the zero range's part past it and extends the file to
 * LastFileOffset (MS-VHDX 2.3.3), which this engine's own writer never needs
 * (it makes every extension durable before logging).  No block maps space
 * past FlushedFileOffset: on a file system that shows stale bytes in a lost
 * extension (the `stale` model) such a block could never be read back as
 * zeros, whoever replays.  The ring position (which may wrap), LogGuid and
 * sequence numbers are seeded. */
static int prep_extend(struct bdev *d, const struct workload_params *p, char *err, size_t errlen)
{
    struct base_layout b;
    int rc = base_layout_read(d, p, &b, err, errlen);
    if (rc != 0)
        return rc;
    struct rng r = {p->seed ^ UINT64_C(0x10E0F0E7E2D5EED1)};
    uint64_t blk[EXTEND_MAX_BLOCKS];
    const unsigned k = extend_blocks(p, blk);
    const uint64_t bs = p->block_size, S = b.file_size, S2 = S + k * bs;
    const uint64_t last = S2 + VHDX_MiB * (1 + rbelow(&r, 3));
    const struct vhdx_header *h = &b.hdr[b.current];
    enum { PAGES = EXTEND_MAX_BLOCKS, ZEROS = 130 };
    uint8_t *pages = calloc(PAGES + 1, VHDX_LOG_SECTOR);
    struct vhdx_log_update bat[PAGES];                         /* the BAT pages, changed */
    struct vhdx_log_update *u = calloc(ZEROS + 2 + PAGES, sizeof *u); /* one entry's updates */
    uint8_t *entry = malloc(h->log_length / 2);
    if (!pages || !u || !entry) {
        rc = -ENOMEM;
        goto out;
    }
    /* The reserved space, durable before the log was written. */
    if ((rc = d->ops->truncate(d, S2)) != 0 || (rc = d->ops->flush(d)) != 0)
        goto out;

    /* Entry 1: the BAT pages (read, changed). */
    size_t np = 0;
    for (unsigned j = 0; j < k; j++) {
        const uint64_t idx = vhdx_bat_index(&b.geo, blk[j]), page = idx * 8 / VHDX_LOG_SECTOR;
        const uint64_t at = b.bat_offset + page * VHDX_LOG_SECTOR;
        size_t i = 0;
        while (i < np && bat[i].file_offset != at)
            i++;
        if (i == np) {
            if ((rc = dev_read(d, pages + np * VHDX_LOG_SECTOR, VHDX_LOG_SECTOR, at)) != 0)
                goto out;
            bat[np] = (struct vhdx_log_update){at, pages + np * VHDX_LOG_SECTOR, 0};
            np++;
        }
        vhdx_put64(pages + i * VHDX_LOG_SECTOR + idx * 8 % VHDX_LOG_SECTOR,
                   vhdx_bat_make(VHDX_BAT_FULLY_PRESENT, (S + j * bs) >> 20));
    }
    /* Sorted by target, as a writer would: the BAT pages in file order. */
    for (size_t i = 1; i < np; i++)
        for (size_t j = i; j > 0 && bat[j - 1].file_offset > bat[j].file_offset; j--) {
            struct vhdx_log_update t = bat[j];
            bat[j] = bat[j - 1];
            bat[j - 1] = t;
        }
    struct vhdx_rng_seeded gs = {p->seed * UINT64_C(0x9E3779B97F4A7C15) + 7};
    struct vhdx_rng grng = {vhdx_rng_seeded_fill, &gs};
    struct vhdx_log_entry_params ep = {.sequence = 1 + rbelow(&r, UINT64_C(1) << 40),
                                       .tail = (uint32_t)(VHDX_LOG_SECTOR * rbelow(&r, h->log_length / VHDX_LOG_SECTOR)),
                                       .flushed_file_offset = S2, .last_file_offset = last};
    if ((rc = vhdx_guid_generate(&grng, &ep.log_guid)) != 0)
        goto out;
    uint32_t pos = ep.tail;
    for (int e = 0; e < 3; e++) {
        size_t n = 0;
        if (e == 0) {
            for (size_t i = 0; i < np; i++)
                u[n++] = bat[i];
        } else if (e == 1) {
            for (size_t i = 0; i < np; i++) /* unmapped again ... */
                u[n++] = (struct vhdx_log_update){bat[i].file_offset, NULL, VHDX_LOG_SECTOR};
            const size_t nz = 127 + rbelow(&r, 4);
            for (size_t i = 0; i < nz; i++) /* every other page from the start of the reserved space */
                u[n++] = (struct vhdx_log_update){S + 2 * i * VHDX_LOG_SECTOR, NULL, VHDX_LOG_SECTOR};
            /* more than the replay's 64 KiB zero buffer inside the file */
            const uint64_t before = VHDX_LOG_SECTOR * (17 + rbelow(&r, 16)), after = VHDX_LOG_SECTOR * (1 + rbelow(&r, 8));
            u[n++] = (struct vhdx_log_update){S2 - before, NULL, before + after};
        } else {
            for (size_t i = 0; i < np; i++) /* ... and mapped once more */
                u[n++] = bat[i];
            uint8_t *fill = pages + PAGES * VHDX_LOG_SECTOR;
            for (size_t i = 0; i < VHDX_LOG_SECTOR; i += 8)
                vhdx_put64(fill + i, p->seed ^ (UINT64_C(0x5EEDF111E2) + i));
            u[n++] = (struct vhdx_log_update){S2 + VHDX_LOG_SECTOR * (16 + rbelow(&r, 16)), fill, 0};
        }
        const size_t size = vhdx_log_entry_size(u, n);
        vhdx_log_entry_build(&ep, u, n, entry);
        if ((rc = ring_put(d, h, pos, entry, size)) != 0)
            goto out;
        pos = (uint32_t)((pos + size) % h->log_length);
        ep.sequence++;
    }
    if ((rc = d->ops->flush(d)) != 0)
        goto out;
    /* Both headers name the LogGuid (the non-current copy first). */
    struct vhdx_header nh = *h;
    nh.log_guid = ep.log_guid;
    for (int copy = 0; copy < 2; copy++) {
        static const uint32_t slot[2] = {VHDX_HEADER1_OFFSET, VHDX_HEADER2_OFFSET};
        uint8_t hb[VHDX_HEADER_SIZE];
        nh.sequence = h->sequence + 1 + (uint64_t)copy;
        vhdx_header_encode(&nh, hb);
        if ((rc = dev_write(d, hb, sizeof hb, slot[(b.current + 1 + copy) % 2])) != 0 ||
            (rc = d->ops->flush(d)) != 0)
            goto out;
    }
out:
    if (rc != 0)
        snprintf(err, errlen, "writing the pending log of the base image failed: %s", vhdx_strerror(rc));
    free(pages);
    free(u);
    free(entry);
    return rc;
}

/* Writes into the blocks the replayed log mapped (in place: they are
 * allocated), across their ends into unallocated neighbours, elsewhere
 * (allocations past LastFileOffset), whole-block discards of them, rare
 * sessions. */
static void gen_extend(struct gen *g)
{
    const uint64_t vs = g->p->virtual_size, bs = g->p->block_size;
    uint64_t blk[EXTEND_MAX_BLOCKS];
    const unsigned k = extend_blocks(g->p, blk);
    while (g->w->n < g->p->ops) {
        const uint64_t b = blk[rbelow(&g->r, k)] * bs;
        const uint64_t r = rbelow(&g->r, 20);
        if (r < 8)
            emit(g, VOP_WRITE, b + pick_off(g, 0, bs), pick_len(g, 0));
        else if (r < 10) /* across the end of a mapped block */
            emit(g, VOP_WRITE, b + bs - 512 * (1 + rbelow(&g->r, 16)), 512 * (2 + rbelow(&g->r, 32)));
        else if (r < 13)
            emit(g, VOP_WRITE, pick_off(g, 0, vs), pick_len(g, 1));
        else if (r < 16)
            emit(g, VOP_FLUSH, 0, 0);
        else if (r < 17)
            emit(g, VOP_DISCARD, b, bs);
        else if (r < 19)
            emit(g, VOP_DISCARD, b + pick_off(g, 0, bs), 512 * (1 + rbelow(&g->r, 64)));
        else
            emit(g, VOP_REOPEN, 0, 0);
    }
}

/* Multi-block writes over allocated and unallocated blocks, each followed
 * by writes into the same blocks and across its end.  The crash sweep sees
 * ordinary allocations; the point is the fault sweep (`pcfaults`), which
 * fails every call of the first operations once: a fault inside the
 * multi-block write leaves it done in part (the blocks allocated before the
 * fault are committed, the file may have grown for a block the BAT never
 * got) and the next writes run on that state. */
static void gen_partial(struct gen *g)
{
    const uint64_t vs = g->p->virtual_size, bs = g->p->block_size, nb = vs / bs;
    while (g->w->n < g->p->ops) {
        const uint64_t b = rbelow(&g->r, nb - 6);
        emit(g, VOP_WRITE, b * bs + 512 * rbelow(&g->r, 64), 512 * (1 + rbelow(&g->r, 16)));
        const uint64_t start = b * bs + bs / 2 + 512 * rbelow(&g->r, bs / 1024);
        const uint64_t len = bs * (1 + rbelow(&g->r, 3)) + 512 * (1 + rbelow(&g->r, 64));
        emit(g, VOP_WRITE, start, len);
        emit(g, VOP_WRITE, (b + 1) * bs + 512 * rbelow(&g->r, 64), 512 * (1 + rbelow(&g->r, 8)));
        emit(g, VOP_WRITE, start + len - 512 * (1 + rbelow(&g->r, 4)), 512 * (2 + rbelow(&g->r, 16)));
        if (rbelow(&g->r, 2))
            emit(g, VOP_FLUSH, 0, 0);
        if (rbelow(&g->r, 4) == 0)
            emit(g, VOP_DISCARD, (b + 1) * bs, bs);
        if (rbelow(&g->r, 3) == 0) /* allocated, discarded and fresh blocks in one write */
            emit(g, VOP_WRITE, b * bs + 512 * rbelow(&g->r, 8), 3 * bs);
        if (rbelow(&g->r, 8) == 0)
            emit(g, VOP_REOPEN, 0, 0);
    }
}

/* Sessions that end with only partial discards pending: each allocates or
 * rewrites a few blocks and flushes, then discards parts of blocks (inside
 * one, across the boundary of two, in unallocated blocks, the tail of the
 * disk's short last block), which the engine zero-fills in place without
 * the log, and closes without a flush (close must make them durable).
 * The disk is 1 GiB + 1.5 MiB: its last block is half a block, and a
 * discard from that block's start to the disk's end is a whole-block
 * discard (in a session of its own kind, before the flush). */
static void gen_trim(struct gen *g)
{
    const uint64_t vs = g->p->virtual_size, bs = g->p->block_size;
    const uint64_t nb = (vs + bs - 1) / bs, last = (nb - 1) * bs;
    const uint64_t hot[5] = {0, bs, nb / 2 * bs, last - bs, last};
    while (g->w->n < g->p->ops) {
        for (uint64_t i = 1 + rbelow(&g->r, 3); i > 0; i--) {
            const uint64_t b = hot[rbelow(&g->r, 5)];
            if (rbelow(&g->r, 3) == 0)
                emit(g, VOP_WRITE, b, bs);
            else
                emit(g, VOP_WRITE, b + pick_off(g, 0, bs / 2), 512 * (1 + rbelow(&g->r, 256)));
        }
        if (rbelow(&g->r, 5) == 0)
            emit(g, VOP_DISCARD, last, vs - last);
        emit(g, VOP_FLUSH, 0, 0);
        for (uint64_t i = 2 + rbelow(&g->r, 4); i > 0; i--) {
            const uint64_t r = rbelow(&g->r, 5);
            if (r < 2) {
                const uint64_t b = hot[rbelow(&g->r, 5)];
                emit(g, VOP_DISCARD, b + 512 * (1 + rbelow(&g->r, 255)), 512 * (1 + rbelow(&g->r, 300)));
            } else if (r == 2) {
                emit(g, VOP_DISCARD, bs - 512 * (1 + rbelow(&g->r, 64)), 512 * (2 + rbelow(&g->r, 128)));
            } else if (r == 3) {
                emit(g, VOP_DISCARD, last + 512 * (1 + rbelow(&g->r, 64)), vs - last);
            } else {
                emit(g, VOP_DISCARD, (nb / 4 + rbelow(&g->r, 8)) * bs + 512 * rbelow(&g->r, 64),
                     512 * (1 + rbelow(&g->r, 64)));
            }
        }
        emit(g, VOP_REOPEN, 0, 0);
    }
}

/* Reuse of space after discards: the image asks to leave discarded blocks
 * allocated (LeaveBlockAllocated), so a whole-block discard zero-fills the
 * block in place and keeps its BAT entry, and later writes land in the same
 * space; partial discards, discards across two blocks, rare sessions. */
static void gen_keep(struct gen *g)
{
    const uint64_t vs = g->p->virtual_size, bs = g->p->block_size, nb = vs / bs;
    const uint64_t hot[6] = {0, 1, nb / 3, nb / 3 + 1, nb - 2, nb - 1};
    while (g->w->n < g->p->ops) {
        const uint64_t i = rbelow(&g->r, 6), b = hot[i] * bs;
        const uint64_t r = rbelow(&g->r, 20);
        if (r < 7)
            emit(g, VOP_WRITE, b + 512 * rbelow(&g->r, 16), 512 * (1 + rbelow(&g->r, 16)));
        else if (r < 9)
            emit(g, VOP_WRITE, b, bs);
        else if (r < 13)
            emit(g, VOP_DISCARD, b, bs);
        else if (r < 15)
            emit(g, VOP_DISCARD, b + 512 * rbelow(&g->r, 16), 512 * (1 + rbelow(&g->r, 32)));
        else if (r < 16) /* the second half of one block, the whole next one when it is a neighbour */
            emit(g, VOP_DISCARD, b + bs / 2, bs + bs / 2);
        else if (r < 19)
            emit(g, VOP_FLUSH, 0, 0);
        else
            emit(g, VOP_REOPEN, 0, 0);
    }
}

/* name, ops, apply_every, fault_ops, virtual size, block size, 4096-byte
 * sectors for odd seeds, generator, base preparation, description.  The
 * sector rule: the default sweep (seed 1) runs the scenarios marked 1 with
 * 4096-byte logical sectors and the others with 512; every scenario runs
 * with both sizes over two consecutive seeds. */
static const struct scenario scenarios[] = {
    {"fill", 420, 1, 12, 0, 0, 0, gen_fill, NULL,
     "rounds of writes over the whole disk, each ended by discarding everything"},
    {"overwrite", 160, 1, 12, 0, 0, 0, gen_overwrite, NULL,
     "a prefilled region, then in-place overwrites with frequent flushes"},
    {"discard", 260, 1, 12, 0, 0, 0, gen_discard, NULL, "writes, whole-block and partial discards, rewrites"},
    {"batch", 320, 16, 12, 0, 0, 0, gen_batch, NULL,
     "allocations applied every 16 entries: long sequences, wrap-around"},
    {"reopen", 200, 4, 12, 0, 0, 0, gen_reopen, NULL,
     "several sessions: stale entries of older sessions stay in the ring"},
    {"mixed", 300, 0, 12, 0, 0, 0, gen_mixed, NULL, "everything at random; batching 1..8"},
    {"wide", 600, 1, 12, UINT64_C(32) << 30, 64u << 20, 0, gen_wide, NULL,
     "a 32 GiB disk of 64 MiB blocks: many BAT pages, offsets past 4 GiB"},
    {"churn", 240, 8, 64, 0, 0, 1, gen_churn, NULL, "hot blocks written, discarded and rewritten with rare flushes"},
    {"ring", 120, 4096, 12, UINT64_C(9) << 30, 0, 0, gen_ring, NULL,
     "no batch limit: about 90 unapplied entries fill the ring to the 3/4 apply threshold"},
    {"split", 27, 1, 4, UINT64_C(33) << 30, 0, 0, gen_split, NULL,
     "a BAT of 67 pages: a whole-disk discard changes more pages than one log entry holds"},
    {"extend", 160, 2, 8, 0, 0, 1, gen_extend, prep_extend,
     "the base has a pending log whose replay writes past the file's end and extends it"},
    {"partial", 160, 1, 8, 0, 0, 0, gen_partial, NULL,
     "multi-block writes, then writes into the same blocks (pcfaults: after a write failed part-way)"},
    {"trim", 200, 4, 12, (UINT64_C(1) << 30) + (3u << 19), 0, 1, gen_trim, NULL,
     "sessions closed with only partial discards pending; a disk whose last block is short"},
    {"keep", 200, 1, 12, 0, 0, 1, gen_keep, prep_keep,
     "LeaveBlockAllocated: discarded blocks are zero-filled in place and written again"},
};
#define N_SCENARIOS (sizeof scenarios / sizeof scenarios[0])

static const struct scenario *find_scenario(const char *name)
{
    for (size_t i = 0; i < N_SCENARIOS; i++)
        if (!strcmp(name, scenarios[i].name))
            return &scenarios[i];
    return NULL;
}

const char *workload_scenario_name(size_t i)
{
    return i < N_SCENARIOS ? scenarios[i].name : NULL;
}

const char *workload_scenario_about(size_t i)
{
    return i < N_SCENARIOS ? scenarios[i].about : NULL;
}

uint32_t workload_scenario_fault_ops(const char *name)
{
    const struct scenario *sc = find_scenario(name);
    return sc ? sc->fault_ops : 12;
}

int workload_scenario_known(const char *name)
{
    return find_scenario(name) != NULL;
}

void workload_scenario_names(char *out, size_t len, const char *sep)
{
    size_t n = 0;
    if (len)
        out[0] = '\0';
    for (size_t i = 0; i < N_SCENARIOS && n < len; i++)
        n += (size_t)snprintf(out + n, len - n, "%s%s", i ? sep : "", scenarios[i].name);
}

int workload_generate(const struct workload_params *p, struct workload *w)
{
    memset(w, 0, sizeof *w);
    w->p = *p;
    struct gen g = {w, 0, 0, {p->seed ^ UINT64_C(0x5EED5EED5EED5EED)}, p, 0};
    const struct scenario *sc = find_scenario(p->scenario);
    (sc ? sc->gen : gen_mixed)(&g);
    emit(&g, VOP_FLUSH, 0, 0); /* every workload ends acknowledged, then closes */
    if (g.oom) {
        workload_free(w);
        return -ENOMEM;
    }
    return 0;
}

void workload_free(struct workload *w)
{
    free(w->ops);
    memset(w, 0, sizeof *w);
}

/* ---- running ---------------------------------------------------------------- */
static void set_meta_u64(struct trace *t, const char *key, uint64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    trace_set_meta(t, key, buf);
}

int workload_run(const struct workload *w, struct trace *t, char *err, size_t errlen)
{
    struct workload_run_opts o = {0};
    return workload_run_ex(w, t, &o, err, errlen);
}

static void emit_handle(const struct workload_run_opts *ro, struct subject_handle *h, enum workload_session ev, int rc)
{
    if (ro->on_handle)
        ro->on_handle(ro->ctx, h, ev, rc);
}

static int session_open(const struct workload_run_opts *ro, const struct subject_ops *subj, struct bdev *dev,
                        uint64_t *rng_state, uint32_t apply_every, struct subject_handle **h)
{
    int rc = subj->open(dev, 0, rng_state, apply_every, h);
    if (rc == 0)
        emit_handle(ro, *h, WL_SESSION_OPENED, 0);
    return rc;
}

static int session_close(const struct workload_run_opts *ro, const struct subject_ops *subj,
                         struct subject_handle **h)
{
    struct subject_handle *old = *h;
    *h = NULL;
    int rc = subj->close(old);
    emit_handle(ro, old, WL_SESSION_CLOSED, rc); /* old is freed: an identity only */
    return rc;
}

/* A subject without discard (QEMU's vhdx driver has none) gets the range
 * written with zeros instead: what the oracle asks of a discard (the range
 * reads zeros) through the subject's write path.  Ranges above the bound
 * stay -ENOTSUP (zeros over a whole large disk would allocate all of it):
 * the scenario is then one the subject cannot run. */
#define DISCARD_AS_ZEROS_MAX (UINT64_C(64) << 20)
static int discard_as_zeros(const struct subject_ops *subj, struct subject_handle *h, uint64_t off, uint64_t len)
{
    const size_t chunk = 1u << 20;
    uint8_t *z = calloc(1, chunk);
    if (!z)
        return -ENOMEM;
    int rc = 0;
    while (len && rc == 0) {
        size_t n = len < chunk ? (size_t)len : chunk;
        rc = subj->write(h, off, z, n);
        off += n;
        len -= n;
    }
    free(z);
    return rc;
}

void workload_params_fit(struct workload_params *p, const struct subject_ops *writer,
                         const struct subject_ops *reader)
{
    if (writer && !writer->sectors_4k && !p->logical_sector) {
        p->logical_sector = 512;
        if (!p->physical_sector)
            p->physical_sector = 512;
    }
    if (reader && !reader->sectors_4k && !p->logical_sector)
        p->logical_sector = 512;
}

int workload_run_ex(const struct workload *w, struct trace *t, const struct workload_run_opts *ro, char *err,
                    size_t errlen)
{
    const struct workload_params *p = &w->p;
    const struct subject_ops *subj = ro->subject ? ro->subject : &subject_libvhdx;
    int rc;
    /* every GUID the subject draws, from create on, comes from this state */
    uint64_t rng_state = p->seed * UINT64_C(0x2545F4914F6CDD1D) + 1;

    /* 1. Create the image on a scratch simdisk; its result is the base.
     * A subject that cannot create gets libvhdx's image. */
    struct trace create_trace;
    trace_init(&create_trace);
    struct simdisk cdisk;
    simdisk_init(&cdisk, NULL, 0, &create_trace);
    struct subject_create cp = {p->virtual_size, p->block_size, p->log_size, p->logical_sector, p->physical_sector};
    const struct subject_ops *creator = subj->create ? subj : &subject_libvhdx;
    rc = creator->create(simdisk_bdev(&cdisk), &cp, &rng_state);
    const struct scenario *sc = find_scenario(p->scenario);
    if (rc == 0 && sc && sc->prep) {
        rc = sc->prep(simdisk_bdev(&cdisk), p, err, errlen);
        if (rc != 0) {
            simdisk_free(&cdisk);
            trace_free(&create_trace);
            return rc;
        }
    }
    if (rc == 0)
        rc = trace_set_base(t, &cdisk.vol, cdisk.size);
    simdisk_free(&cdisk);
    trace_free(&create_trace);
    if (rc) {
        snprintf(err, errlen, "creating the image failed: %s (%s)", strerror(-rc), creator->last_error(NULL));
        return rc;
    }

    /* 2. Metadata. */
    t->seed = p->seed;
    trace_set_meta(t, "engine", vhdx_build_id());
    if (subj != &subject_libvhdx)
        trace_set_meta(t, "subject", subj->name);
    trace_set_meta(t, "workload", p->scenario);
    set_meta_u64(t, "seed", p->seed);
    set_meta_u64(t, "virtual_size", p->virtual_size);
    set_meta_u64(t, "block_size", p->block_size);
    set_meta_u64(t, "logical_sector", p->logical_sector);
    set_meta_u64(t, "physical_sector", p->physical_sector);
    set_meta_u64(t, "log_size", p->log_size);
    set_meta_u64(t, "ops", p->ops);
    set_meta_u64(t, "apply_every", p->apply_every);

    /* 3. Run. */
    struct simdisk disk;
    simdisk_init(&disk, &t->base, t->base_size, t);
    struct bdev *dev = simdisk_bdev(&disk);
    struct subject_handle *h = NULL;
    uint8_t *buf = NULL;
    size_t bufcap = 0;
    uint32_t vop = 0;
    int first_rc = 0;
    if (ro->before_op)
        ro->before_op(ro->ctx, -1, dev);
    trace_add_vbegin(t, vop, VOP_OPEN, 0, 0, 0);
    rc = session_open(ro, subj, dev, &rng_state, p->apply_every, &h);
    trace_add_vend(t, vop++, rc);
    if (ro->after_op)
        ro->after_op(ro->ctx, -1, rc);
    if (rc) {
        snprintf(err, errlen, "opening the new image failed: %s", subj->last_error(NULL));
        first_rc = rc;
        if (!ro->continue_on_error)
            goto out;
    }
    for (size_t i = 0; i < w->n && (first_rc == 0 || ro->continue_on_error); i++, vop++) {
        const struct vop *o = &w->ops[i];
        if (ro->before_op)
            ro->before_op(ro->ctx, (long)i, dev);
        trace_add_vbegin(t, vop, o->kind, o->voff, o->vlen, o->id);
        rc = 0;
        if (!h) /* an earlier open failed: a new session first */
            rc = session_open(ro, subj, dev, &rng_state, p->apply_every, &h);
        switch (rc ? -1 : o->kind) {
        case -1:
            break;
        case VOP_WRITE:
            if (o->vlen > bufcap) {
                uint8_t *nb = realloc(buf, o->vlen);
                if (!nb) {
                    rc = -ENOMEM;
                    break;
                }
                buf = nb;
                bufcap = o->vlen;
            }
            sdata_fill(buf, o->voff / 512, (uint32_t)(o->vlen / 512), o->id, p->seed);
            rc = subj->write(h, o->voff, buf, o->vlen);
            break;
        case VOP_FLUSH:
            rc = subj->flush(h);
            if (rc == 0)
                trace_add_mark(t, "workload.synced", vop);
            break;
        case VOP_DISCARD:
            rc = subj->discard(h, o->voff, o->vlen);
            if (rc == -ENOTSUP && o->vlen <= DISCARD_AS_ZEROS_MAX)
                rc = discard_as_zeros(subj, h, o->voff, o->vlen);
            break;
        case VOP_APPLY:
            rc = subj->apply ? subj->apply(h) : subj->flush(h);
            break;
        case VOP_REOPEN:
            rc = session_close(ro, subj, &h);
            if (rc == 0)
                trace_add_mark(t, "workload.synced", vop);
            {
                int orc = session_open(ro, subj, dev, &rng_state, p->apply_every, &h);
                if (rc == 0)
                    rc = orc;
            }
            break;
        default:
            rc = -EINVAL;
        }
        trace_add_vend(t, vop, rc);
        if (ro->after_op)
            ro->after_op(ro->ctx, (long)i, rc);
        if (rc && !first_rc) {
            first_rc = rc;
            snprintf(err, errlen, "workload op %zu (kind %d at %" PRIu64 "+%" PRIu64 ") failed: %s (%s)", i, o->kind,
                     o->voff, o->vlen, strerror(-rc), subj->last_error(h));
        }
    }
    if (first_rc == 0 || ro->continue_on_error) {
        if (ro->before_op)
            ro->before_op(ro->ctx, -2, dev);
        trace_add_vbegin(t, vop, VOP_CLOSE, 0, 0, 0);
        rc = h ? session_close(ro, subj, &h) : -EIO;
        if (rc == 0)
            trace_add_mark(t, "workload.synced", vop);
        trace_add_vend(t, vop, rc);
        if (ro->after_op)
            ro->after_op(ro->ctx, -2, rc);
        if (rc && !first_rc) {
            first_rc = rc;
            snprintf(err, errlen, "the final close failed: %s (%s)", strerror(-rc), subj->last_error(NULL));
        }
    }
out:
    if (h) {
        emit_handle(ro, h, WL_SESSION_ABANDONED, 0);
        subj->abandon(h);
    }
    free(buf);
    simdisk_free(&disk);
    return ro->continue_on_error ? 0 : first_rc;
}

static uint64_t meta_u64(const struct trace *t, const char *key)
{
    const char *v = trace_get_meta(t, key);
    return v ? strtoull(v, NULL, 10) : 0;
}

int workload_from_trace(const struct trace *t, struct workload *w, char *err, size_t errlen)
{
    memset(w, 0, sizeof *w);
    if (!(t->flags & TRACE_F_WORKLOAD)) {
        snprintf(err, errlen, "the trace holds no workload (recorded from an external program?)");
        return -EINVAL;
    }
    struct workload_params *p = &w->p;
    const char *sc = trace_get_meta(t, "workload");
    snprintf(p->scenario, sizeof p->scenario, "%s", sc ? sc : "mixed");
    p->seed = t->seed;
    p->virtual_size = meta_u64(t, "virtual_size");
    p->block_size = (uint32_t)meta_u64(t, "block_size");
    p->logical_sector = (uint32_t)meta_u64(t, "logical_sector");
    p->physical_sector = (uint32_t)meta_u64(t, "physical_sector");
    p->log_size = (uint32_t)meta_u64(t, "log_size");
    p->apply_every = (uint32_t)meta_u64(t, "apply_every");
    size_t cap = 0;
    for (size_t i = 0; i < t->n_ops; i++) {
        const struct trace_op *op = &t->ops[i];
        if (op->kind != TR_VBEGIN || op->vkind == VOP_OPEN || op->vkind == VOP_CLOSE)
            continue;
        if (w->n == cap) {
            cap = cap ? cap * 2 : 256;
            struct vop *n = realloc(w->ops, cap * sizeof *n);
            if (!n) {
                workload_free(w);
                return -ENOMEM;
            }
            w->ops = n;
        }
        w->ops[w->n++] = (struct vop){(enum vop_kind)op->vkind, op->off, op->vlen, op->vid};
    }
    p->ops = (uint32_t)w->n;
    int rc = workload_params_resolve(p, err, errlen);
    if (rc != 0)
        workload_free(w); /* callers free only what a success hands them */
    return rc;
}
