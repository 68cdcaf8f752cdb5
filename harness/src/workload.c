/*
 * workload.c - scenario generators and the workload runner.
 *
 * Guarantees: generation is a pure function of the resolved parameters
 * (splitmix64 from the seed, no other source of randomness); every write id
 * is unique and increasing; offsets and lengths are 512-byte multiples
 * inside the disk; the runner's engine uses a GUID generator seeded from the
 * workload seed, so the trace is byte-for-byte reproducible.
 */
#include "harness/workload.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/sdata.h"
#include "harness/simdisk.h"
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
    uint32_t ops;         /* default operation count */
    uint32_t apply_every; /* default engine batching (0: 1 + seed % 8) */
    uint32_t fault_ops;   /* operations of a fault sweep's workload (each call of it is failed once) */
    void (*gen)(struct gen *g);
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
    const int wide = !strcmp(p->scenario, "wide");
    if (!p->virtual_size)
        p->virtual_size = wide ? 32ull << 30 : 1ull << 30;
    if (!p->block_size)
        p->block_size = wide ? 64u << 20 : 1u << 20;
    if (!p->logical_sector)
        p->logical_sector = !strcmp(p->scenario, "mixed") && (p->seed & 1) == 0 ? 4096 : 512;
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

static const struct scenario scenarios[] = {
    {"fill", 420, 1, 12, gen_fill, "rounds of writes over the whole disk, each ended by discarding everything"},
    {"overwrite", 160, 1, 12, gen_overwrite, "a prefilled region, then in-place overwrites with frequent flushes"},
    {"discard", 260, 1, 12, gen_discard, "writes, whole-block and partial discards, rewrites"},
    {"batch", 320, 16, 12, gen_batch, "allocations applied every 16 entries: long sequences, wrap-around"},
    {"reopen", 200, 4, 12, gen_reopen, "several sessions: stale entries of older sessions stay in the ring"},
    {"mixed", 300, 0, 12, gen_mixed, "everything at random; batching 1..8; 4096-byte sectors for even seeds"},
    {"wide", 600, 1, 12, gen_wide, "a 32 GiB disk of 64 MiB blocks: many BAT pages, offsets past 4 GiB"},
    {"churn", 240, 8, 64, gen_churn, "hot blocks written, discarded and rewritten with rare flushes"},
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

int workload_run_ex(const struct workload *w, struct trace *t, const struct workload_run_opts *ro, char *err,
                    size_t errlen)
{
    const struct workload_params *p = &w->p;
    int rc;
    struct vhdx_rng_seeded rs = {p->seed * UINT64_C(0x2545F4914F6CDD1D) + 1};
    struct vhdx_rng rng = {vhdx_rng_seeded_fill, &rs};

    /* 1. Create the image on a scratch simdisk; its result is the base. */
    struct trace create_trace;
    trace_init(&create_trace);
    struct simdisk cdisk;
    simdisk_init(&cdisk, NULL, 0, &create_trace);
    struct vhdx_create_params cp = {p->virtual_size, p->block_size, p->log_size, p->logical_sector,
                                    p->physical_sector};
    struct vhdx_diag diag;
    struct vhdx_options co = {.rng = &rng, .diag = &diag, .creator = "powercut workload"};
    rc = vhdx_create(simdisk_bdev(&cdisk), &cp, &co);
    if (rc == 0)
        rc = trace_set_base(t, &cdisk.vol, cdisk.size);
    simdisk_free(&cdisk);
    trace_free(&create_trace);
    if (rc) {
        snprintf(err, errlen, "creating the image failed: %s", vhdx_strerror(rc));
        return rc;
    }

    /* 2. Metadata. */
    t->seed = p->seed;
    trace_set_meta(t, "engine", vhdx_build_id());
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
    struct vhdx_options oo = {.apply_every = p->apply_every, .rng = &rng, .diag = &diag};
    struct vhdx *h = NULL;
    uint8_t *buf = NULL;
    size_t bufcap = 0;
    uint32_t vop = 0;
    int first_rc = 0;
    if (ro->before_op)
        ro->before_op(ro->ctx, -1, dev);
    trace_add_vbegin(t, vop, VOP_OPEN, 0, 0, 0);
    rc = vhdx_open(dev, &oo, &h);
    trace_add_vend(t, vop++, rc);
    if (ro->after_op)
        ro->after_op(ro->ctx, -1, rc);
    if (rc) {
        snprintf(err, errlen, "opening the new image failed: %s", diag.message);
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
            rc = vhdx_open(dev, &oo, &h);
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
            rc = vhdx_write(h, o->voff, buf, o->vlen);
            break;
        case VOP_FLUSH:
            rc = vhdx_flush(h);
            if (rc == 0)
                trace_add_mark(t, "workload.synced", vop);
            break;
        case VOP_DISCARD:
            rc = vhdx_discard(h, o->voff, o->vlen);
            break;
        case VOP_APPLY:
            rc = vhdx_log_apply_now(h);
            break;
        case VOP_REOPEN:
            rc = vhdx_close(h);
            h = NULL;
            if (rc == 0)
                trace_add_mark(t, "workload.synced", vop);
            {
                int orc = vhdx_open(dev, &oo, &h);
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
            snprintf(err, errlen, "workload op %zu (kind %d at %" PRIu64 "+%" PRIu64 ") failed: %s", i, o->kind,
                     o->voff, o->vlen, vhdx_strerror(rc));
        }
    }
    if (first_rc == 0 || ro->continue_on_error) {
        if (ro->before_op)
            ro->before_op(ro->ctx, -2, dev);
        trace_add_vbegin(t, vop, VOP_CLOSE, 0, 0, 0);
        rc = h ? vhdx_close(h) : VHDX_E_POISONED;
        h = NULL;
        if (rc == 0)
            trace_add_mark(t, "workload.synced", vop);
        trace_add_vend(t, vop, rc);
        if (ro->after_op)
            ro->after_op(ro->ctx, -2, rc);
        if (rc && !first_rc) {
            first_rc = rc;
            snprintf(err, errlen, "the final close failed: %s", vhdx_strerror(rc));
        }
    }
out:
    if (h)
        vhdx_abandon(h);
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
    return workload_params_resolve(p, err, errlen);
}
