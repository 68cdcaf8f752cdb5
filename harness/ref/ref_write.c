/*
 * ref_write.c - the reference writer (ref/ref_write.h).
 *
 * How it is built.  The writer never reads the image: it keeps two models
 * of every 4 KiB metadata page (region tables, metadata region, BAT, extra
 * regions), `cur` (what the log says: every entry written so far applied
 * in order) and `disk` (what was written to the final place), plus a map of
 * the file's 1 MiB units (used, free and known zero, free with old bytes,
 * freed but not yet reusable).  Every change is a list of descriptors built
 * against `cur`; the log keeps the chain of entries from the newest durable
 * entry's Tail to the newest entry (`ents`); applying entries writes the
 * final content of their pages where it differs from `disk`.
 *
 * Invariants checked before every ring write (a break is REF_W_EBUG, never
 * a silent bad image): the write does not touch the ring span of the newest
 * durable entry's sequence; an entry's Tail is no later than the oldest
 * entry not yet applied and flushed; an apply only covers durable entries.
 */
#include "ref/ref_write.h"
#include "ref/ref.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEC 4096u
#define MIB (UINT64_C(1) << 20)
#define TABLE64 (64u * 1024)
#define HEADER1 (UINT64_C(64) << 10)
#define HEADER2 (UINT64_C(128) << 10)
#define REGION1 (UINT64_C(192) << 10)
#define REGION2 (UINT64_C(256) << 10)

/* BAT states (2.5.1.1) */
#define ST_NOT_PRESENT 0u
#define ST_ZERO 2u
#define ST_FULLY_PRESENT 6u

/* file units (1 MiB) */
enum { U_FREE = 0, U_USED = 1, U_DIRTY = 2, U_PENDING = 3 };

/* ---- random numbers -------------------------------------------------------------- */
static uint64_t rnext(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* ---- a sparse map of 4 KiB pages (absent or NULL page: zeros) --------------------- */
struct pslot {
    uint64_t key;  /* page number + 1; 0 = empty slot */
    uint8_t *page; /* 4096 bytes, or NULL for zeros */
};

struct pmap {
    struct pslot *s;
    size_t cap, n;
};

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

static size_t pm_find(const struct pmap *m, uint64_t pg)
{
    if (!m->cap)
        return SIZE_MAX;
    size_t i = (size_t)(((pg + 1) * UINT64_C(0x9E3779B97F4A7C15)) >> 20) & (m->cap - 1);
    for (;;) {
        if (m->s[i].key == pg + 1)
            return i;
        if (m->s[i].key == 0)
            return SIZE_MAX;
        i = (i + 1) & (m->cap - 1);
    }
}

static const uint8_t *pm_get(const struct pmap *m, uint64_t pg)
{
    size_t i = pm_find(m, pg);
    return i == SIZE_MAX ? NULL : m->s[i].page;
}

static int pm_grow(struct pmap *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 1024;
    struct pslot *ns = calloc(ncap, sizeof *ns);
    if (!ns)
        return -ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->s[i].key)
            continue;
        size_t k = (size_t)((m->s[i].key * UINT64_C(0x9E3779B97F4A7C15)) >> 20) & (ncap - 1);
        while (ns[k].key)
            k = (k + 1) & (ncap - 1);
        ns[k] = m->s[i];
    }
    free(m->s);
    m->s = ns;
    m->cap = ncap;
    return 0;
}

/* The slot of pg, created when absent.  NULL when out of memory. */
static struct pslot *pm_slot(struct pmap *m, uint64_t pg)
{
    size_t i = pm_find(m, pg);
    if (i != SIZE_MAX)
        return &m->s[i];
    if ((m->n + 1) * 2 > m->cap && pm_grow(m) != 0)
        return NULL;
    i = (size_t)(((pg + 1) * UINT64_C(0x9E3779B97F4A7C15)) >> 20) & (m->cap - 1);
    while (m->s[i].key)
        i = (i + 1) & (m->cap - 1);
    m->s[i].key = pg + 1;
    m->s[i].page = NULL;
    m->n++;
    return &m->s[i];
}

/* Sets page pg to data (NULL or all zero: zeros). */
static int pm_put(struct pmap *m, uint64_t pg, const uint8_t *data)
{
    if (!data || all_zero(data, SEC)) {
        size_t i = pm_find(m, pg);
        if (i != SIZE_MAX) {
            free(m->s[i].page);
            m->s[i].page = NULL;
        }
        return 0;
    }
    struct pslot *s = pm_slot(m, pg);
    if (!s)
        return -ENOMEM;
    if (!s->page && !(s->page = malloc(SEC)))
        return -ENOMEM;
    memcpy(s->page, data, SEC);
    return 0;
}

/* A writable page (zeroed when new).  NULL when out of memory. */
static uint8_t *pm_mut(struct pmap *m, uint64_t pg)
{
    struct pslot *s = pm_slot(m, pg);
    if (!s)
        return NULL;
    if (!s->page && !(s->page = calloc(1, SEC)))
        return NULL;
    return s->page;
}

static void pm_read(const struct pmap *m, uint64_t pg, uint8_t *out)
{
    const uint8_t *p = pm_get(m, pg);
    if (p)
        memcpy(out, p, SEC);
    else
        memset(out, 0, SEC);
}

static void pm_free(struct pmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->s[i].page);
    free(m->s);
    memset(m, 0, sizeof *m);
}

static int pm_copy(struct pmap *dst, const struct pmap *src)
{
    for (size_t i = 0; i < src->cap; i++)
        if (src->s[i].key && src->s[i].page && pm_put(dst, src->s[i].key - 1, src->s[i].page) != 0)
            return -ENOMEM;
    return 0;
}

/* ---- the writer --------------------------------------------------------------------- */
struct wdesc {
    int zero;       /* zero descriptor */
    uint64_t off;   /* FileOffset */
    uint64_t len;   /* bytes (4096 for data) */
    uint8_t *data;  /* 4096 bytes (data descriptors) */
};

struct went {
    uint32_t pos, sectors; /* ring position and length in 4 KiB sectors */
    uint64_t seq;          /* SequenceNumber */
    uint32_t tail_pos;     /* Tail (ring sector) */
    int self_tail;         /* Tail names the entry itself */
    int durable;           /* flushed */
    int apply_written;     /* final-place writes issued */
    int applied;           /* ... and flushed */
    uint32_t nd;
    struct wdesc *d;       /* descriptors (owned) */
};

struct witem {
    uint8_t guid[16];
    uint32_t offset, length; /* relative to the metadata region */
    uint32_t flags;          /* bit 0 IsUser, 1 IsVirtualDisk, 2 IsRequired */
    uint8_t data[4096];      /* the item's bytes (length <= 4096 here) */
};

/* An entry being built. */
struct eb {
    struct wdesc *d;
    uint32_t n, cap, ndata;
    int ordered; /* descriptors overlap: keep their order */
};

enum item_kind { IT_FP = 0, IT_VDS, IT_VDID, IT_LSS, IT_PSS, IT_KNOWN };

struct ref_writer {
    uint64_t seed, r;
    struct ref_wparams p;
    struct ref_wlayout L;
    struct ref_wstats st;
    char err[256];
    struct ref_wio io;
    struct ref_wobs ob;
    int have_io;
    /* file */
    uint64_t size, durable_size;
    int payload_unflushed;
    uint8_t *units;   /* per MiB unit: U_* */
    uint32_t n_units; /* max file MiB */
    /* metadata model */
    struct pmap cur, disk;
    struct witem item[REF_W_MAX_ITEMS];
    uint32_t n_items;
    uint64_t chunk_ratio, nblocks, bat_entries;
    /* headers */
    int hvalid[2];
    uint64_t hseq[2];
    int hcur;
    uint8_t fwg[16], dwg[16], hguid[16];
    int session_open;   /* the session's header update is done */
    /* log */
    uint32_t n;         /* ring sectors */
    uint8_t lguid[16];  /* LogGuid of the entries in ents */
    struct went *ents;
    uint32_t n_ents, cap_ents;
    uint32_t first_unapplied;
    uint32_t dtail;     /* ents index of the newest durable entry's Tail */
    int unflushed;      /* entries written since the last flush */
    int apply_unflushed; /* final-place writes of an apply since the last flush */
    int force_new_guid; /* the next entry starts a new LogGuid */
    /* BAT pages changed and not yet logged */
    uint64_t *dirty;
    uint32_t n_dirty, cap_dirty;
    /* session policy */
    int deferred;        /* BAT changes wait for a flush */
    uint32_t apply_every; /* keep up to this many unapplied entries */
    uint32_t batch_pct;  /* chance (%) that an entry is not flushed at once */
    /* ops */
    uint32_t vop, next_id;
    uint8_t *buf;
    size_t bufcap;
    uint64_t payload_bytes;
    uint32_t session;
    uint32_t count_turn; /* descriptor-count shapes made */
    int batching;        /* entries wait for one flush */
};

/* ---- small helpers --------------------------------------------------------------------- */
static uint64_t rnd(struct ref_writer *w) { return rnext(&w->r); }
static uint64_t below(struct ref_writer *w, uint64_t n) { return n ? rnd(w) % n : 0; }
static int chance(struct ref_writer *w, unsigned pct) { return below(w, 100) < pct; }

static void guid_new(struct ref_writer *w, uint8_t g[16])
{
    do {
        uint64_t a = rnd(w), b = rnd(w);
        ref_put64(g, a);
        ref_put64(g + 8, b);
        g[7] = (uint8_t)((g[7] & 0x0F) | 0x40); /* version 4 in the mixed-endian form */
        g[8] = (uint8_t)((g[8] & 0x3F) | 0x80);
    } while (all_zero(g, 16));
}

static int fail(struct ref_writer *w, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct ref_writer *w, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->err, sizeof w->err, fmt, ap);
    va_end(ap);
    return rc;
}

static uint64_t mb_up(uint64_t x) { return (x + MIB - 1) / MIB * MIB; }

static const struct ref_wregion *bat_region(const struct ref_writer *w) { return &w->L.region[w->L.bat_index]; }
static const struct ref_wregion *meta_region(const struct ref_writer *w) { return &w->L.region[w->L.meta_index]; }

/* ---- I/O ---------------------------------------------------------------------------------- */
static void on_flushed(struct ref_writer *w);

static int io_write(struct ref_writer *w, const void *buf, size_t len, uint64_t off)
{
    int rc = w->io.write(w->io.ctx, buf, len, off);
    if (rc)
        return fail(w, rc, "write of %zu bytes at %llu failed (%d)", len, (unsigned long long)off, rc);
    if (off + len > w->size)
        w->size = off + len;
    return 0;
}

static int io_trunc(struct ref_writer *w, uint64_t size)
{
    int rc = w->io.truncate(w->io.ctx, size);
    if (rc)
        return fail(w, rc, "truncate to %llu failed (%d)", (unsigned long long)size, rc);
    w->size = size;
    return 0;
}

static int io_flush(struct ref_writer *w)
{
    int rc = w->io.flush(w->io.ctx);
    if (rc)
        return fail(w, rc, "flush failed (%d)", rc);
    on_flushed(w);
    return 0;
}

static void mark(struct ref_writer *w, const char *name, uint64_t arg)
{
    if (w->ob.mark)
        w->ob.mark(w->ob.ctx, name, arg);
}

/* ---- units (1 MiB) of the file ------------------------------------------------------------ */
static void units_set(struct ref_writer *w, uint64_t off, uint64_t len, uint8_t v)
{
    for (uint64_t u = off / MIB; u < (off + len + MIB - 1) / MIB && u < w->n_units; u++)
        w->units[u] = v;
}

/* End of the highest used unit (bytes). */
static uint64_t used_end(const struct ref_writer *w)
{
    for (uint32_t u = w->n_units; u-- > 0;)
        if (w->units[u] != U_FREE)
            return (uint64_t)(u + 1) * MIB;
    return MIB;
}

/* ---- BAT ------------------------------------------------------------------------------------- */
static uint64_t bat_index(const struct ref_writer *w, uint64_t block) { return block + block / w->chunk_ratio; }

static uint64_t bat_get(const struct ref_writer *w, uint64_t block)
{
    uint64_t at = bat_region(w)->offset + 8 * bat_index(w, block);
    const uint8_t *p = pm_get(&w->cur, at / SEC);
    return p ? ref_le64(p + at % SEC) : 0;
}

static int dirty_add(struct ref_writer *w, uint64_t page)
{
    for (uint32_t i = 0; i < w->n_dirty; i++)
        if (w->dirty[i] == page)
            return 0;
    if (w->n_dirty == w->cap_dirty) {
        uint32_t nc = w->cap_dirty ? w->cap_dirty * 2 : 16;
        uint64_t *nd = realloc(w->dirty, nc * sizeof *nd);
        if (!nd)
            return -ENOMEM;
        w->dirty = nd;
        w->cap_dirty = nc;
    }
    w->dirty[w->n_dirty++] = page;
    return 0;
}

/* Changes a BAT entry in `cur` and remembers its page for the log. */
static int bat_set(struct ref_writer *w, uint64_t block, uint64_t entry)
{
    uint64_t at = bat_region(w)->offset + 8 * bat_index(w, block);
    uint8_t *p = pm_mut(&w->cur, at / SEC);
    if (!p)
        return -ENOMEM;
    ref_put64(p + at % SEC, entry);
    return dirty_add(w, at / SEC);
}

static uint64_t bat_make(unsigned state, uint64_t off) { return (uint64_t)state | (off / MIB) << 20; }

/* ---- region table and metadata encodings ---------------------------------------------------- */
static void rt_encode(const struct ref_writer *w, uint8_t page[SEC])
{
    memset(page, 0, SEC);
    memcpy(page, "regi", 4);
    ref_put32(page + 8, w->L.n_regions);
    for (uint32_t i = 0; i < w->L.n_regions; i++) {
        uint8_t *e = page + 16 + 32 * i;
        memcpy(e, w->L.region[i].guid, 16);
        ref_put64(e + 16, w->L.region[i].offset);
        ref_put32(e + 24, w->L.region[i].length);
        ref_put32(e + 28, w->L.region[i].required);
    }
    static const uint8_t zeros[SEC];
    uint32_t c = ref_crc32c(0, page, SEC);
    for (int k = 1; k < 16; k++)
        c = ref_crc32c(c, zeros, SEC);
    ref_put32(page + 4, c);
}

/* The metadata region as it is in `cur`, with the table and every item
 * written over it (old bytes in free space stay: "may contain data that can
 * be disregarded"). */
static int meta_render(const struct ref_writer *w, uint8_t *buf)
{
    const struct ref_wregion *m = meta_region(w);
    for (uint32_t k = 0; k < m->length / SEC; k++)
        pm_read(&w->cur, m->offset / SEC + k, buf + (size_t)k * SEC);
    memset(buf, 0, TABLE64);
    memcpy(buf, "metadata", 8);
    ref_put16(buf + 10, (uint16_t)w->n_items);
    for (uint32_t i = 0; i < w->n_items; i++) {
        const struct witem *it = &w->item[i];
        uint8_t *e = buf + 32 + 32 * i;
        memcpy(e, it->guid, 16);
        ref_put32(e + 16, it->offset);
        ref_put32(e + 20, it->length);
        ref_put32(e + 24, it->flags);
        if (it->length)
            memcpy(buf + it->offset, it->data, it->length);
    }
    return 0;
}

static void item_known(struct ref_writer *w, struct witem *it, int kind)
{
    static const uint8_t *const guids[IT_KNOWN] = {REF_GUID_FILE_PARAMETERS, REF_GUID_VIRTUAL_DISK_SIZE,
                                                   REF_GUID_VIRTUAL_DISK_ID, REF_GUID_LOGICAL_SECTOR,
                                                   REF_GUID_PHYSICAL_SECTOR};
    memset(it, 0, sizeof *it);
    memcpy(it->guid, guids[kind], 16);
    switch (kind) {
    case IT_FP:
        it->length = 8;
        it->flags = 4;
        ref_put32(it->data, w->L.block_size);
        ref_put32(it->data + 4, w->L.leave_block_allocated ? 1u : 0u);
        break;
    case IT_VDS:
        it->length = 8;
        it->flags = 2 | 4;
        ref_put64(it->data, w->L.virtual_size);
        break;
    case IT_VDID:
        it->length = 16;
        it->flags = 2 | 4;
        guid_new(w, it->data);
        break;
    case IT_LSS:
        it->length = 4;
        it->flags = 2 | 4;
        ref_put32(it->data, w->L.logical_sector);
        break;
    default:
        it->length = 4;
        it->flags = 2 | 4;
        ref_put32(it->data, w->L.physical_sector);
    }
}

/* A free byte range of `len` in the metadata region past its table, not
 * overlapping any item: the first fit after a random start.  0 when none. */
static uint32_t meta_find_space(struct ref_writer *w, uint32_t len, int skip)
{
    const uint32_t mlen = meta_region(w)->length;
    for (int attempt = 0; attempt < 64; attempt++) {
        uint32_t at = TABLE64 + (uint32_t)below(w, mlen - TABLE64 - len);
        if (attempt < 16)
            at = at / 8 * 8;
        int ok = at + len <= mlen;
        for (uint32_t i = 0; i < w->n_items && ok; i++) {
            const struct witem *it = &w->item[i];
            if ((int)i == skip || !it->length)
                continue;
            if (at < it->offset + it->length && it->offset < at + len)
                ok = 0;
        }
        if (ok)
            return at;
    }
    return 0;
}

/* ---- the log: geometry and encoding --------------------------------------------------------- */
static uint32_t desc_sectors(uint32_t nd) { return nd <= 126 ? 1 : 1 + (nd - 126 + 127) / 128; }

static uint8_t *desc_at(uint8_t *e, uint32_t i)
{
    if (i < 126)
        return e + 64 + 32 * i;
    return e + (size_t)SEC * (1 + (i - 126) / 128) + 32 * ((i - 126) % 128);
}

/* The bytes of an entry (sectors * 4096, malloc'd). */
static uint8_t *entry_encode(const uint8_t guid[16], const struct went *e, uint64_t ffo, uint64_t lfo)
{
    uint8_t *b = calloc(e->sectors, SEC);
    if (!b)
        return NULL;
    memcpy(b, "loge", 4);
    ref_put32(b + 8, e->sectors * SEC);
    ref_put32(b + 12, e->tail_pos * SEC);
    ref_put64(b + 16, e->seq);
    ref_put32(b + 24, e->nd);
    memcpy(b + 32, guid, 16);
    ref_put64(b + 48, ffo);
    ref_put64(b + 56, lfo);
    uint32_t ds = desc_sectors(e->nd), k = 0;
    for (uint32_t i = 0; i < e->nd; i++) {
        const struct wdesc *d = &e->d[i];
        uint8_t *x = desc_at(b, i);
        if (d->zero) {
            memcpy(x, "zero", 4);
            ref_put64(x + 8, d->len);
        } else {
            memcpy(x, "desc", 4);
            memcpy(x + 4, d->data + 4092, 4);
            memcpy(x + 8, d->data, 8);
            uint8_t *s = b + (size_t)SEC * (ds + k++);
            memcpy(s, "data", 4);
            ref_put32(s + 4, (uint32_t)(e->seq >> 32));
            memcpy(s + 8, d->data + 8, 4084);
            ref_put32(s + 4092, (uint32_t)e->seq);
        }
        ref_put64(x + 16, d->off);
        ref_put64(x + 24, e->seq);
    }
    ref_put32(b + 4, ref_crc32c(0, b, (size_t)e->sectors * SEC));
    return b;
}

static void went_free(struct went *e)
{
    for (uint32_t i = 0; i < e->nd; i++)
        free(e->d[i].data);
    free(e->d);
    e->d = NULL;
    e->nd = 0;
}

static void eb_free(struct eb *b)
{
    for (uint32_t i = 0; i < b->n; i++)
        free(b->d[i].data);
    free(b->d);
    memset(b, 0, sizeof *b);
}

static int eb_push(struct eb *b, int zero, uint64_t off, uint64_t len, const uint8_t *data)
{
    if (b->n == b->cap) {
        uint32_t nc = b->cap ? b->cap * 2 : 32;
        struct wdesc *nd = realloc(b->d, nc * sizeof *nd);
        if (!nd)
            return -ENOMEM;
        b->d = nd;
        b->cap = nc;
    }
    struct wdesc *d = &b->d[b->n];
    d->zero = zero;
    d->off = off;
    d->len = len;
    d->data = NULL;
    if (!zero) {
        if (!(d->data = malloc(SEC)))
            return -ENOMEM;
        memcpy(d->data, data, SEC);
        b->ndata++;
    }
    b->n++;
    return 0;
}

static int eb_data(struct eb *b, uint64_t off, const uint8_t *page) { return eb_push(b, 0, off, SEC, page); }
static int eb_zero(struct eb *b, uint64_t off, uint64_t len) { return eb_push(b, 1, off, len, NULL); }

/* Is page pg already the target of a descriptor in b? */
static int eb_touches(const struct eb *b, uint64_t off, uint64_t len)
{
    for (uint32_t i = 0; i < b->n; i++)
        if (off < b->d[i].off + b->d[i].len && b->d[i].off < off + len)
            return 1;
    return 0;
}

/* Applies the descriptors to `cur`, in order. */
static int eb_apply_cur(struct ref_writer *w, const struct eb *b)
{
    for (uint32_t i = 0; i < b->n; i++) {
        const struct wdesc *d = &b->d[i];
        if (!d->zero) {
            if (pm_put(&w->cur, d->off / SEC, d->data) != 0)
                return -ENOMEM;
            continue;
        }
        for (uint64_t pg = d->off / SEC; pg < (d->off + d->len) / SEC; pg++)
            pm_put(&w->cur, pg, NULL);
    }
    return 0;
}

/* ---- headers (2.2.2.1) ---------------------------------------------------------------------- */
static int header_write(struct ref_writer *w, int slot, uint64_t seq)
{
    uint8_t h[SEC];
    memset(h, 0, sizeof h);
    memcpy(h, "head", 4);
    ref_put64(h + 8, seq);
    memcpy(h + 16, w->fwg, 16);
    memcpy(h + 32, w->dwg, 16);
    memcpy(h + 48, w->hguid, 16);
    ref_put16(h + 64, 0);
    ref_put16(h + 66, 1);
    ref_put32(h + 68, w->L.log_length);
    ref_put64(h + 72, w->L.log_offset);
    ref_put32(h + 4, ref_crc32c(0, h, SEC));
    return io_write(w, h, SEC, slot ? HEADER2 : HEADER1);
}

/* The update procedure: the non-current copy gets SequenceNumber + 1 and is
 * flushed; usually done twice so both copies are current. */
static int header_update_ex(struct ref_writer *w, int force_twice)
{
    int twice = force_twice || !chance(w, 20);
    if (all_zero(w->hguid, 16) && (w->apply_unflushed || w->unflushed || w->first_unapplied < w->n_ents))
        return fail(w, REF_W_EBUG, "the LogGuid would be cleared before every entry is applied and flushed");
    for (int k = 0; k < (twice ? 2 : 1); k++) {
        int slot = w->hvalid[w->hcur] ? 1 - w->hcur : w->hcur;
        uint64_t seq = w->hseq[w->hcur] + 1;
        int rc = header_write(w, slot, seq);
        if (rc == 0)
            rc = io_flush(w);
        if (rc)
            return rc;
        w->hvalid[slot] = 1;
        w->hseq[slot] = seq;
        w->hcur = slot;
    }
    w->st.header_updates++;
    w->st.single_updates += !twice;
    return 0;
}

static int header_update(struct ref_writer *w) { return header_update_ex(w, 0); }

/* The first modification of a session updates the headers first (2.2.2.1,
 * FileWriteGuid; DataWriteGuid before any user-visible change). */
static int session_touch(struct ref_writer *w)
{
    if (w->session_open)
        return 0;
    w->session_open = 1;
    guid_new(w, w->fwg);
    guid_new(w, w->dwg);
    return header_update(w);
}

/* ---- the log: the ring ----------------------------------------------------------------------- */
static uint32_t ents_span(const struct ref_writer *w)
{
    uint32_t s = 0;
    for (uint32_t i = w->dtail; i < w->n_ents; i++)
        s += w->ents[i].sectors;
    return s;
}

static uint32_t head_end(const struct ref_writer *w)
{
    const struct went *h = &w->ents[w->n_ents - 1];
    return (h->pos + h->sectors) % w->n;
}

/* The protected span [start, start+len) of the ring: the newest durable
 * entry's sequence, when the header names a log. */
static void protected_span(const struct ref_writer *w, uint32_t *start, uint32_t *len)
{
    *start = 0;
    *len = 0;
    if (all_zero(w->hguid, 16) || !w->n_ents)
        return;
    uint32_t last = w->n_ents;
    while (last > 0 && !w->ents[last - 1].durable)
        last--;
    if (!last)
        return;
    *start = w->ents[w->dtail].pos;
    for (uint32_t i = w->dtail; i < last; i++)
        *len += w->ents[i].sectors;
}

static int ring_overlaps(uint32_t n, uint32_t a, uint32_t alen, uint32_t b, uint32_t blen)
{
    if (!alen || !blen)
        return 0;
    uint32_t d = (b + n - a) % n; /* b relative to a */
    if (d < alen)
        return 1;
    uint32_t e = (a + n - b) % n; /* a relative to b */
    return e < blen;
}

/* After a flush: entries durable, applies done, the chain trimmed to the
 * newest entry's Tail. */
static void on_flushed(struct ref_writer *w)
{
    w->durable_size = w->size;
    w->payload_unflushed = 0;
    w->apply_unflushed = 0;
    w->unflushed = 0;
    for (uint32_t i = 0; i < w->n_ents; i++) {
        w->ents[i].durable = 1;
        if (w->ents[i].apply_written)
            w->ents[i].applied = 1;
    }
    if (w->n_ents) {
        const struct went *h = &w->ents[w->n_ents - 1];
        uint32_t t = w->n_ents - 1;
        if (!h->self_tail)
            while (t > 0 && w->ents[t].pos != h->tail_pos)
                t--;
        for (uint32_t i = 0; i < t; i++)
            went_free(&w->ents[i]);
        memmove(w->ents, w->ents + t, (w->n_ents - t) * sizeof *w->ents);
        w->n_ents -= t;
        w->dtail = 0;
    }
    w->first_unapplied = 0;
    while (w->first_unapplied < w->n_ents && w->ents[w->first_unapplied].applied)
        w->first_unapplied++;
    /* space freed by logged, durable BAT changes may be reused now */
    if (!w->n_dirty)
        for (uint32_t u = 0; u < w->n_units; u++)
            if (w->units[u] == U_PENDING)
                w->units[u] = U_DIRTY;
    if (!all_zero(w->hguid, 16) && w->first_unapplied < w->n_ents && w->have_io)
        mark(w, "refgen.pending", w->n_ents - w->first_unapplied);
}

static int ents_push(struct ref_writer *w, const struct went *e)
{
    if (w->n_ents == w->cap_ents) {
        uint32_t nc = w->cap_ents ? w->cap_ents * 2 : 16;
        struct went *ne = realloc(w->ents, nc * sizeof *ne);
        if (!ne)
            return -ENOMEM;
        w->ents = ne;
        w->cap_ents = nc;
    }
    w->ents[w->n_ents++] = *e;
    return 0;
}

/* Writes an entry's bytes at ring position pos, wrapping at the ring's end,
 * in one to three writes. */
static int ring_write(struct ref_writer *w, const uint8_t *b, uint32_t pos, uint32_t sectors)
{
    uint32_t done = 0;
    while (done < sectors) {
        uint32_t at = (pos + done) % w->n;
        uint32_t run = sectors - done;
        if (at + run > w->n)
            run = w->n - at;
        if (run > 2 && chance(w, 15))
            run = 1 + (uint32_t)below(w, run - 1); /* split: parts of one entry in separate writes */
        int rc = io_write(w, b + (size_t)done * SEC, (size_t)run * SEC, w->L.log_offset + (uint64_t)at * SEC);
        if (rc)
            return rc;
        done += run;
    }
    return 0;
}

static int log_apply(struct ref_writer *w, uint32_t k, int flush_now);

/* FlushedFileOffset: the durable size (or, sometimes, less; never more). */
static uint64_t pick_ffo(struct ref_writer *w)
{
    uint64_t f = w->durable_size / MIB * MIB;
    if (f > MIB && chance(w, 15)) {
        f = MIB * (1 + below(w, f / MIB));
        w->st.ffo_low++;
    }
    return f;
}

/* LastFileOffset: every structure fits below it (sometimes with room to
 * spare, which a replay must add to the file). */
static uint64_t pick_lfo(struct ref_writer *w, const struct eb *b)
{
    uint64_t l = used_end(w);
    for (uint32_t i = 0; i < b->n; i++)
        if (b->d[i].off + b->d[i].len > l)
            l = mb_up(b->d[i].off + b->d[i].len);
    if (chance(w, 12))
        l += MIB * (1 + below(w, 24));
    if (l > w->size)
        w->st.lfo_extends++;
    return l;
}

enum { PLACE_CONTINUE = 0, PLACE_NEWSEQ = 1, PLACE_WRAP = 2 };

static void entry_stats(struct ref_writer *w, const struct went *e, int wrapped)
{
    struct ref_wstats *s = &w->st;
    s->entries++;
    if (e->nd > s->max_descriptors)
        s->max_descriptors = e->nd;
    s->desc_0 += e->nd == 0;
    s->desc_127 += e->nd == 127;
    s->desc_128_plus += e->nd >= 128;
    s->desc_254 += e->nd == 254;
    s->desc_255_plus += e->nd >= 255;
    if (e->sectors > s->max_sectors)
        s->max_sectors = e->sectors;
    s->sectors_6_plus += e->sectors >= 6;
    s->wrapped_entries += wrapped;
    s->seq_high += e->seq >= (UINT64_C(1) << 32);
    int zero = 0, data = 0, past = 0;
    for (uint32_t i = 0; i < e->nd; i++) {
        const struct wdesc *d = &e->d[i];
        if (d->zero) {
            zero = 1;
            if (d->len > s->max_zero)
                s->max_zero = d->len;
            s->zero_over_1m += d->len > MIB;
        } else {
            data = 1;
        }
        past |= d->off + d->len > w->size;
    }
    s->mixed += zero && data;
    s->data_past_end += past;
}

/* Logs the descriptors of b as one entry (b is consumed).  place: continue
 * the chain when it fits, or start a new sequence away from the old one
 * (PLACE_NEWSEQ), crossing the ring's end when it can (PLACE_WRAP). */
static int log_entry(struct ref_writer *w, struct eb *b, int place)
{
    int rc = session_touch(w);
    if (rc)
        goto out;
    /* data before metadata: payload and extensions durable first */
    if (w->payload_unflushed && (rc = io_flush(w)) != 0)
        goto out;
    struct went e;
    memset(&e, 0, sizeof e);
    e.nd = b->n;
    e.sectors = desc_sectors(b->n) + b->ndata;
    if (e.sectors + 2 > w->n) {
        rc = fail(w, REF_W_EBUG, "an entry of %u sectors does not fit a ring of %u", e.sectors, w->n);
        goto out;
    }
    const int live = !all_zero(w->hguid, 16) && !memcmp(w->hguid, w->lguid, 16) && !w->force_new_guid;
    int newguid = !live;
    int cont = live && place == PLACE_CONTINUE;
    if (cont && e.sectors + 1 > w->n - ents_span(w))
        cont = 0; /* no room beside the chain: a new sequence */
    if (!cont) {
        /* everything before a new sequence (or LogGuid) is applied and durable */
        if (w->first_unapplied < w->n_ents || w->unflushed) {
            if ((rc = log_apply(w, w->n_ents - w->first_unapplied, 1)) != 0)
                goto out;
        }
        uint32_t ps, pl;
        protected_span(w, &ps, &pl);
        if (pl + e.sectors > w->n) {
            /* the old sequence leaves no room: a checkpoint entry (no
             * descriptors, its own Tail) right after it shrinks it */
            struct eb cp;
            memset(&cp, 0, sizeof cp);
            if ((rc = log_entry(w, &cp, PLACE_CONTINUE)) != 0)
                goto out;
            return log_entry(w, b, place);
        }
    }
    uint32_t ps, pl;
    protected_span(w, &ps, &pl);
    if (cont) {
        e.pos = head_end(w);
        e.seq = w->ents[w->n_ents - 1].seq + 1;
        /* Tail: the oldest unapplied entry, or (sometimes) an earlier entry
         * of the chain that is still intact */
        uint32_t lo = w->dtail, hi = w->first_unapplied;
        uint32_t t = hi;
        if (hi > lo && chance(w, 35))
            t = lo + (uint32_t)below(w, hi - lo);
        if (t < w->n_ents) {
            e.tail_pos = w->ents[t].pos;
            w->st.tails_behind++;
            w->st.tails_applied += t < w->first_unapplied;
            uint32_t run = w->n_ents - t + 1;
            if (run > w->st.max_run)
                w->st.max_run = run;
            uint32_t span = 0;
            for (uint32_t i = t; i < w->n_ents; i++)
                span += w->ents[i].sectors;
            if (w->ents[t].pos + span + e.sectors > w->n)
                w->st.wrapped_sequences++;
        } else {
            e.tail_pos = e.pos;
            e.self_tail = 1;
        }
    } else {
        /* a new sequence: anywhere in the free arc after the protected span */
        uint32_t free_start = pl ? (ps + pl) % w->n : (uint32_t)below(w, w->n);
        uint32_t free_len = w->n - pl;
        uint32_t r = 0;
        if (place == PLACE_WRAP && e.sectors > 1) {
            /* cross the end at a chosen sector: start at n - k */
            uint32_t k = 1 + (uint32_t)below(w, e.sectors - 1);
            uint32_t want = w->n - k;
            uint32_t rel = (want + w->n - free_start) % w->n;
            if (rel + e.sectors <= free_len)
                r = rel;
            else
                r = (uint32_t)below(w, free_len - e.sectors + 1);
        } else if (place != PLACE_CONTINUE || chance(w, 50)) {
            r = (uint32_t)below(w, free_len - e.sectors + 1);
        }
        e.pos = (free_start + r) % w->n;
        e.tail_pos = e.pos;
        e.self_tail = 1;
        if (newguid) {
            if (w->n_ents && !all_zero(w->hguid, 16))
                w->st.stale_guids++;
            else if (w->n_ents)
                w->st.stale_guids++;
            guid_new(w, w->lguid);
            /* numbering under a new LogGuid: from 1 again (older sessions'
             * entries then carry greater numbers: only the LogGuid keeps
             * them out), anywhere, just below 2^32, or huge */
            uint64_t pick = below(w, 100), base;
            if (pick < 40)
                base = 1;
            else if (pick < 60)
                base = 1 + below(w, 1u << 20);
            else if (pick < 85)
                base = (UINT64_C(1) << 32) - below(w, 4);
            else
                base = (rnd(w) >> 2) + 1;
            e.seq = base;
        } else {
            e.seq = w->ents[w->n_ents - 1].seq + 1 + (chance(w, 30) ? below(w, 1000) : 0);
            if (r != 0 && w->n_ents)
                w->st.competing++;
        }
    }
    if (!cont && (w->apply_unflushed || w->unflushed || w->first_unapplied < w->n_ents)) {
        rc = fail(w, REF_W_EBUG, "a new sequence would start before every earlier entry is applied and flushed");
        goto out;
    }
    if (ring_overlaps(w->n, e.pos, e.sectors, ps, pl)) {
        rc = fail(w, REF_W_EBUG, "entry at ring sector %u (+%u) would overwrite the active sequence at %u (+%u)",
                  e.pos, e.sectors, ps, pl);
        goto out;
    }
    const int wrapped = e.pos + e.sectors > w->n;
    const int batched = w->unflushed > 0;
    /* the descriptors become the entry's; `cur` takes them in order */
    if (!b->ordered)
        for (uint32_t i = b->n; i > 1; i--) {
            uint32_t j = (uint32_t)below(w, i);
            struct wdesc t = b->d[i - 1];
            b->d[i - 1] = b->d[j];
            b->d[j] = t;
        }
    e.d = b->d;
    b->d = NULL;
    b->n = b->cap = b->ndata = 0;
    struct eb applied_view = {e.d, e.nd, e.nd, 0, 1};
    if ((rc = eb_apply_cur(w, &applied_view)) != 0) {
        went_free(&e);
        goto out;
    }
    uint64_t ffo = pick_ffo(w), lfo = pick_lfo(w, &applied_view);
    uint8_t *bytes = entry_encode(w->lguid, &e, ffo, lfo);
    if (!bytes) {
        went_free(&e);
        rc = -ENOMEM;
        goto out;
    }
    entry_stats(w, &e, wrapped);
    w->st.batched += batched;
    rc = ring_write(w, bytes, e.pos, e.sectors);
    free(bytes);
    if (rc == 0)
        rc = ents_push(w, &e);
    if (rc) {
        went_free(&e);
        goto out;
    }
    w->unflushed++;
    if (!cont || newguid || !(w->batching || chance(w, w->batch_pct)))
        rc = io_flush(w);
    if (rc == 0 && newguid) {
        memcpy(w->hguid, w->lguid, 16); /* the LogGuid only after its first entry is durable */
        w->force_new_guid = 0;
        rc = header_update(w);
    }
out:
    eb_free(b);
    return rc;
}

/* The final value of one page in an apply: the last descriptor wins. */
struct fin {
    uint64_t pg;         /* file page */
    const uint8_t *data; /* NULL: zeros */
    uint64_t order;      /* replay order */
};

static int cmp_fin(const void *a, const void *b)
{
    const struct fin *x = a, *y = b;
    if (x->pg != y->pg)
        return x->pg < y->pg ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

struct frun {
    size_t start, len; /* pages f[start .. start+len) */
};

/* The metadata structure holding file offset off: the region tables, a
 * region, or the BAT's free slot.  [lo, hi) in bytes. */
static void structure_of(const struct ref_writer *w, uint64_t off, uint64_t *lo, uint64_t *hi)
{
    *lo = off;
    *hi = off + SEC;
    if (off >= REGION1 && off < REGION2 + TABLE64) {
        *lo = REGION1;
        *hi = REGION2 + TABLE64;
        return;
    }
    for (uint32_t r = 0; r < w->L.n_regions; r++) {
        const struct ref_wregion *g = &w->L.region[r];
        if (off >= g->offset && off < g->offset + g->length) {
            *lo = g->offset;
            *hi = g->offset + g->length;
            return;
        }
    }
    if (w->L.bat_slot && off >= w->L.bat_slot && off < w->L.bat_slot + bat_region(w)->length) {
        *lo = w->L.bat_slot;
        *hi = w->L.bat_slot + bat_region(w)->length;
    }
}

/* Writes the final content of the next k unapplied entries (flushing first
 * if one of them is not durable yet), only where it differs from what the
 * final place holds; flushes when flush_now. */
static int log_apply(struct ref_writer *w, uint32_t k, int flush_now)
{
    int rc = 0;
    /* Entries are applied only once durable.  The flush that makes them so
     * trims the chain (indices move): it comes before the range is taken. */
    const uint64_t first_seq = w->first_unapplied < w->n_ents ? w->ents[w->first_unapplied].seq : 0;
    for (uint32_t i = w->first_unapplied; i < w->first_unapplied + k && i < w->n_ents; i++)
        if (!w->ents[i].durable) {
            if ((rc = io_flush(w)) != 0)
                return rc;
            break;
        }
    uint32_t base = 0;
    while (base < w->n_ents && w->ents[base].seq != first_seq)
        base++;
    if (base == w->n_ents) /* nothing was waiting, or it was applied by the flush */
        base = w->first_unapplied;
    uint32_t from = base;
    while (from < w->n_ents && w->ents[from].apply_written)
        from++;
    uint32_t to = base + k;
    if (to > w->n_ents)
        to = w->n_ents;
    if (from >= to) /* written already; "applied" means flushed too */
        return flush_now && (w->unflushed || w->payload_unflushed || w->apply_unflushed) ? io_flush(w) : 0;
    if (from < w->first_unapplied)
        return fail(w, REF_W_EBUG, "an apply would start before the oldest unapplied entry");
    size_t cap = 64, n = 0;
    struct fin *f = malloc(cap * sizeof *f);
    if (!f)
        return -ENOMEM;
    uint64_t end = 0;
    for (uint32_t i = from; i < to; i++) {
        const struct went *e = &w->ents[i];
        for (uint32_t j = 0; j < e->nd; j++) {
            const struct wdesc *d = &e->d[j];
            if (d->off + d->len > end)
                end = d->off + d->len;
            for (uint64_t pg = d->off / SEC; pg < (d->off + d->len) / SEC; pg++) {
                if (n == cap) {
                    cap *= 2;
                    struct fin *nf = realloc(f, cap * sizeof *nf);
                    if (!nf) {
                        free(f);
                        return -ENOMEM;
                    }
                    f = nf;
                }
                f[n] = (struct fin){pg, d->zero ? NULL : d->data, n};
                n++;
            }
        }
    }
    qsort(f, n, sizeof *f, cmp_fin);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (i + 1 == n || f[i + 1].pg != f[i].pg)
            f[m++] = f[i];
    /* Pages past the end of the file read as zeros: a zero there needs only
     * the extension below.  Pages that change are written in runs, issued in
     * a random order (all are covered by the log): a run may take in pages
     * of the same structure that do not change (their bytes as they are in
     * the final place), up to `gap` of them in a row. */
    const uint64_t size_pg = w->size / SEC;
    const int redundant = chance(w, 10);
    static const uint32_t gaps[] = {0, 4, 32, 256, 256, 256};
    uint64_t gap = gaps[below(w, sizeof gaps / sizeof gaps[0])];
    if (m > 48 && gap < 32)
        gap = 256; /* page by page only for small applies: each write is crash states of its own */
    const uint64_t max_run = gap ? 256 : 64;
    struct frun *runs = malloc((m ? m : 1) * sizeof *runs);
    uint8_t *buf = malloc(max_run * SEC);
    size_t nruns = 0;
    if (!runs || !buf) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < m;) {
        const uint8_t *have = pm_get(&w->disk, f[i].pg);
        int differs = f[i].data ? !have || memcmp(have, f[i].data, SEC) != 0 : have != NULL;
        int past = !f[i].data && f[i].pg >= size_pg;
        if (past || (!differs && !redundant)) {
            i++;
            continue;
        }
        uint64_t lo, hi;
        structure_of(w, f[i].pg * SEC, &lo, &hi);
        size_t j = i + 1;
        while (j < m && f[j].pg - f[i].pg < max_run && f[j].pg - f[j - 1].pg <= gap + 1 && f[j].pg * SEC < hi &&
               (f[j].data || f[j].pg < size_pg) && (f[j].pg - f[j - 1].pg == 1 || f[j].pg <= size_pg))
            j++;
        runs[nruns++] = (struct frun){i, j - i};
        i = j;
    }
    for (size_t r = nruns; r > 1; r--) {
        size_t q = (size_t)below(w, r);
        struct frun t = runs[r - 1];
        runs[r - 1] = runs[q];
        runs[q] = t;
    }
    for (size_t r = 0; r < nruns && rc == 0; r++) {
        const uint64_t first = f[runs[r].start].pg, last = f[runs[r].start + runs[r].len - 1].pg;
        for (uint64_t pg = first; pg <= last; pg++)
            pm_read(&w->disk, pg, buf + (pg - first) * SEC);
        for (size_t q = 0; q < runs[r].len; q++) {
            const struct fin *x = &f[runs[r].start + q];
            if (x->data)
                memcpy(buf + (x->pg - first) * SEC, x->data, SEC);
            else
                memset(buf + (x->pg - first) * SEC, 0, SEC);
        }
        rc = io_write(w, buf, (last - first + 1) * SEC, first * SEC);
    }
    for (size_t q = 0; q < m && rc == 0; q++)
        rc = pm_put(&w->disk, f[q].pg, f[q].data);
    /* a replay would extend the file to cover the entries: so does the writer */
    if (rc == 0 && end > w->size)
        rc = io_trunc(w, mb_up(end));
out:
    free(runs);
    free(buf);
    free(f);
    if (rc)
        return rc;
    for (uint32_t q = from; q < to; q++)
        w->ents[q].apply_written = 1;
    w->st.applies++;
    w->st.partial_applies += to < w->n_ents;
    w->apply_unflushed = 1;
    if (flush_now)
        return io_flush(w);
    w->st.unflushed_applies++;
    return 0;
}

/* Logs the BAT pages changed since the last entry (plus, sometimes, a few
 * unrelated updates in the same entry), then applies per policy. */
static int add_filler(struct ref_writer *w, struct eb *b, uint32_t count, int data_pct, uint32_t max_data);

static int log_dirty(struct ref_writer *w)
{
    if (!w->n_dirty)
        return 0;
    struct eb b;
    memset(&b, 0, sizeof b);
    int rc = 0;
    for (uint32_t i = 0; i < w->n_dirty && rc == 0; i++) {
        const uint8_t *p = pm_get(&w->cur, w->dirty[i]);
        if (!p && chance(w, 70))
            rc = eb_zero(&b, w->dirty[i] * SEC, SEC);
        else {
            uint8_t page[SEC];
            pm_read(&w->cur, w->dirty[i], page);
            rc = eb_data(&b, w->dirty[i] * SEC, page);
        }
    }
    w->n_dirty = 0;
    if (rc == 0 && chance(w, 20))
        rc = add_filler(w, &b, 1 + (uint32_t)below(w, 6), 50, w->n / 4);
    if (rc) {
        eb_free(&b);
        return rc;
    }
    rc = log_entry(w, &b, PLACE_CONTINUE);
    if (rc == 0 && w->n_ents - w->first_unapplied >= w->apply_every)
        rc = log_apply(w, w->n_ents - w->first_unapplied - (chance(w, 25) ? 1 : 0), !chance(w, 20));
    return rc;
}

/* ---- filler: updates that change nothing a reader interprets -------------------------------- */
/* Pages any entry may rewrite: extra regions (any content), free space of
 * the metadata region (any content), the BAT region (its own content, or
 * zeros where it is zero).  kind: 0 extra, 1 metadata free, 2 BAT. */
struct fpage {
    uint64_t off;
    int kind;
};

static int meta_page_free(const struct ref_writer *w, uint64_t off)
{
    const struct ref_wregion *m = meta_region(w);
    uint64_t rel = off - m->offset;
    if (rel < TABLE64)
        return 0;
    for (uint32_t i = 0; i < w->n_items; i++) {
        const struct witem *it = &w->item[i];
        if (it->length && rel < (uint64_t)it->offset + it->length && it->offset < rel + SEC)
            return 0;
    }
    return 1;
}

static int pool_build(struct ref_writer *w, struct fpage **out, size_t *n_out)
{
    size_t cap = 256, n = 0;
    struct fpage *p = malloc(cap * sizeof *p);
    if (!p)
        return -ENOMEM;
    for (uint32_t r = 0; r < w->L.n_regions; r++) {
        const struct ref_wregion *g = &w->L.region[r];
        int kind = r == w->L.bat_index ? 2 : r == w->L.meta_index ? 1 : 0;
        for (uint64_t off = g->offset; off < g->offset + g->length; off += SEC) {
            if (kind == 1 && !meta_page_free(w, off))
                continue;
            if (n == cap) {
                cap *= 2;
                struct fpage *np = realloc(p, cap * sizeof *np);
                if (!np) {
                    free(p);
                    return -ENOMEM;
                }
                p = np;
            }
            p[n++] = (struct fpage){off, kind};
        }
    }
    *out = p;
    *n_out = n;
    return 0;
}

/* Adds `count` descriptors on distinct pages no descriptor of b touches yet:
 * data with probability data_pct (while b has fewer than max_data data
 * descriptors), zero otherwise. */
static int add_filler(struct ref_writer *w, struct eb *b, uint32_t count, int data_pct, uint32_t max_data)
{
    struct fpage *pool;
    size_t n;
    int rc = pool_build(w, &pool, &n);
    if (rc)
        return rc;
    uint8_t page[SEC];
    for (size_t i = 0; i < n && count > 0 && rc == 0; i++) {
        size_t j = i + (size_t)below(w, n - i);
        struct fpage t = pool[i];
        pool[i] = pool[j];
        pool[j] = t;
        const struct fpage *x = &pool[i];
        if (eb_touches(b, x->off, SEC))
            continue;
        const uint8_t *c = pm_get(&w->cur, x->off / SEC);
        int want_data = b->ndata < max_data && chance(w, (unsigned)data_pct);
        if (x->kind == 2) {
            if (c && b->ndata < max_data)
                rc = eb_data(b, x->off, c);
            else if (!c)
                rc = want_data ? eb_data(b, x->off, memset(page, 0, SEC)) : eb_zero(b, x->off, SEC);
            else
                continue;
        } else if (want_data) {
            for (size_t q = 0; q < SEC; q += 8)
                ref_put64(page + q, rnd(w));
            if (chance(w, 20))
                memset(page + below(w, SEC / 2), 0, SEC / 2); /* leading/trailing bytes zero sometimes */
            rc = eb_data(b, x->off, page);
        } else {
            rc = eb_zero(b, x->off, SEC);
        }
        count--;
    }
    free(pool);
    return rc;
}

/* ---- blocks ------------------------------------------------------------------------------------ */
/* Finds a place for a new block: past the end of the file, in a free gap
 * below it (known zero), or in space freed by an earlier discard (must be
 * zero-filled: *dirty).  0, or -ENOSPC when the file limit is reached. */
static int block_place(struct ref_writer *w, uint64_t *off, int *dirty)
{
    const uint32_t u = w->L.block_size / (uint32_t)MIB;
    const uint32_t below_end = (uint32_t)(w->size / MIB);
    int mode = (int)below(w, 10); /* 0-1 reuse, 2-4 gap, else end */
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0 && mode >= 5)
            continue;
        for (int tries = 0; tries < 2; tries++) {
            int want_dirty = mode < 2 && tries == 0 && w->L.block_size <= 4 * MIB;
            uint32_t start = (uint32_t)(1 + below(w, below_end > 1 ? below_end - 1 : 1));
            for (uint32_t a = 0; a + 1 < below_end; a++) {
                uint32_t at = 1 + (start + a) % (below_end - 1);
                if (at + u > below_end)
                    continue;
                int ok = 1, has_dirty = 0;
                for (uint32_t k = 0; k < u && ok; k++) {
                    uint8_t s = w->units[at + k];
                    ok = s == U_FREE || (s == U_DIRTY && w->L.block_size <= 4 * MIB);
                    has_dirty |= s == U_DIRTY;
                }
                if (!ok || has_dirty != want_dirty)
                    continue;
                *off = (uint64_t)at * MIB;
                *dirty = has_dirty;
                units_set(w, *off, w->L.block_size, U_USED);
                if (has_dirty)
                    w->st.blocks_reused++;
                else
                    w->st.blocks_gap++;
                return 0;
            }
        }
    }
    uint64_t at = used_end(w) > mb_up(w->size) ? used_end(w) : mb_up(w->size);
    if (at / MIB + u > w->n_units)
        return -ENOSPC;
    *off = at;
    *dirty = 0;
    units_set(w, at, w->L.block_size, U_USED);
    w->st.blocks_end++;
    return 0;
}

/* Would a write over [voff, voff+len) find room for its new blocks? */
static int blocks_fit(const struct ref_writer *w, uint64_t voff, uint64_t len)
{
    const uint64_t bs = w->L.block_size;
    uint64_t need = 0;
    for (uint64_t b = voff / bs; b * bs < voff + len; b++)
        if ((bat_get(w, b) & 7) != ST_FULLY_PRESENT)
            need++;
    uint64_t at = used_end(w) > mb_up(w->size) ? used_end(w) : mb_up(w->size);
    return at / MIB + need * (bs / MIB) <= w->n_units;
}

/* ---- workload ops ------------------------------------------------------------------------------ */
static uint32_t op_begin(struct ref_writer *w, enum ref_wop kind, uint64_t voff, uint64_t vlen, uint32_t id)
{
    uint32_t op = w->vop++;
    if (w->ob.begin)
        w->ob.begin(w->ob.ctx, op, kind, voff, vlen, id);
    w->st.vops++;
    return op;
}

static void op_end(struct ref_writer *w, uint32_t op, int rc)
{
    if (w->ob.end)
        w->ob.end(w->ob.ctx, op, rc);
}

static void fill_payload(struct ref_writer *w, uint8_t *buf, uint64_t voff, uint64_t len, uint32_t id)
{
    if (w->ob.fill) {
        w->ob.fill(w->ob.ctx, buf, voff, len, id);
        return;
    }
    for (uint64_t i = 0; i < len; i += 8)
        ref_put64(buf + i, (voff + i) * UINT64_C(0x9E3779B97F4A7C15) ^ id);
}

static int ensure_buf(struct ref_writer *w, size_t len)
{
    if (len <= w->bufcap)
        return 0;
    uint8_t *nb = realloc(w->buf, len);
    if (!nb)
        return -ENOMEM;
    w->buf = nb;
    w->bufcap = len;
    return 0;
}

/* A virtual-disk write of [voff, voff+len) (512-byte multiples). */
static int do_write(struct ref_writer *w, uint64_t voff, uint64_t len)
{
    const uint32_t id = ++w->next_id;
    const uint32_t op = op_begin(w, REF_WOP_WRITE, voff, len, id);
    int rc = session_touch(w);
    if (rc == 0)
        rc = ensure_buf(w, len);
    if (rc)
        goto out;
    fill_payload(w, w->buf, voff, len, id);
    w->payload_bytes += len;
    const uint64_t bs = w->L.block_size;
    for (uint64_t pos = voff; pos < voff + len && rc == 0;) {
        uint64_t b = pos / bs, in = pos % bs;
        uint64_t n = bs - in < voff + len - pos ? bs - in : voff + len - pos;
        const uint8_t *src = w->buf + (pos - voff);
        uint64_t e = bat_get(w, b);
        if ((e & 7) == ST_FULLY_PRESENT) {
            rc = io_write(w, src, (size_t)n, ((e >> 20) << 20) + in);
        } else {
            uint64_t x;
            int dirty;
            if ((rc = block_place(w, &x, &dirty)) != 0)
                break;
            int trunc_first = chance(w, 50);
            if (x + bs > w->size && trunc_first)
                rc = io_trunc(w, x + bs);
            if (rc == 0 && dirty) {
                /* reused space: everything the write does not cover is zeroed */
                uint8_t *z = calloc(1, (size_t)bs);
                if (!z) {
                    rc = -ENOMEM;
                    break;
                }
                memcpy(z + in, src, (size_t)n);
                rc = io_write(w, z, (size_t)bs, x);
                free(z);
            } else if (rc == 0) {
                rc = io_write(w, src, (size_t)n, x + in);
            }
            if (rc == 0 && x + bs > w->size)
                rc = io_trunc(w, x + bs);
            if (rc == 0)
                rc = bat_set(w, b, bat_make(ST_FULLY_PRESENT, x));
        }
        w->payload_unflushed = 1;
        pos += n;
    }
    if (rc == 0 && !w->deferred)
        rc = log_dirty(w);
out:
    op_end(w, op, rc);
    return rc;
}

/* Discard: whole blocks move to ZERO through the log (their space is freed
 * once that is durable); parts of allocated blocks are zero-filled. */
static int do_discard(struct ref_writer *w, uint64_t voff, uint64_t len)
{
    const uint32_t op = op_begin(w, REF_WOP_DISCARD, voff, len, 0);
    int rc = session_touch(w);
    const uint64_t bs = w->L.block_size;
    for (uint64_t pos = voff; pos < voff + len && rc == 0;) {
        uint64_t b = pos / bs, in = pos % bs;
        uint64_t n = bs - in < voff + len - pos ? bs - in : voff + len - pos;
        uint64_t e = bat_get(w, b);
        unsigned state = (unsigned)(e & 7);
        int whole = in == 0 && (n == bs || pos + n == w->L.virtual_size);
        if (whole && !w->L.leave_block_allocated) {
            if (state == ST_FULLY_PRESENT) {
                units_set(w, (e >> 20) << 20, bs, U_PENDING);
                rc = bat_set(w, b, bat_make(ST_ZERO, 0));
                w->st.discards_zero++;
            } else if (state == ST_NOT_PRESENT && chance(w, 50)) {
                rc = bat_set(w, b, bat_make(ST_ZERO, 0));
            }
        } else if (state == ST_FULLY_PRESENT) {
            if ((rc = ensure_buf(w, (size_t)n)) == 0) {
                memset(w->buf, 0, (size_t)n);
                rc = io_write(w, w->buf, (size_t)n, ((e >> 20) << 20) + in);
                w->payload_unflushed = 1;
            }
        }
        pos += n;
    }
    if (rc == 0 && !w->deferred)
        rc = log_dirty(w);
    op_end(w, op, rc);
    return rc;
}

static int do_flush(struct ref_writer *w)
{
    const uint32_t op = op_begin(w, REF_WOP_FLUSH, 0, 0, 0);
    int rc = log_dirty(w);
    if (rc == 0)
        rc = io_flush(w);
    if (rc == 0 && w->ob.synced)
        w->ob.synced(w->ob.ctx, op);
    op_end(w, op, rc);
    return rc;
}

/* Ends a session: every change logged and applied; the LogGuid cleared
 * (usually: a session may also leave an applied log named). */
static int session_close(struct ref_writer *w, int clear)
{
    int rc = log_dirty(w);
    if (rc == 0)
        rc = log_apply(w, w->n_ents - w->first_unapplied, 1);
    if (rc == 0 && (w->unflushed || w->payload_unflushed))
        rc = io_flush(w);
    if (rc == 0 && clear && !all_zero(w->hguid, 16)) {
        memset(w->hguid, 0, 16);
        rc = header_update(w);
    }
    w->session_open = 0;
    return rc;
}

/* ---- shapes: entries a reader must handle -------------------------------------------------------- */
/* An entry of exactly `count` descriptors (some spill into more descriptor
 * sectors), data and zero mixed, on unrelated pages. */
static int shape_count(struct ref_writer *w, uint32_t count)
{
    struct eb b;
    memset(&b, 0, sizeof b);
    uint32_t budget = w->n - 4 - desc_sectors(count);
    uint32_t max_data = budget < count ? budget : count;
    int data_pct = (int)below(w, 101);
    int rc = add_filler(w, &b, count, data_pct, max_data);
    if (rc == 0 && b.n < count)
        rc = fail(w, REF_W_EBUG, "only %u filler pages for an entry of %u descriptors", b.n, count);
    if (rc) {
        eb_free(&b);
        return rc;
    }
    return log_entry(w, &b, PLACE_CONTINUE);
}

/* One zero descriptor over a long range (an extra region, the BAT's unused
 * tail, free metadata space), with a few other updates. */
static int shape_big_zero(struct ref_writer *w)
{
    struct eb b;
    memset(&b, 0, sizeof b);
    uint64_t best_off = 0, best_len = 0;
    for (uint32_t r = 0; r < w->L.n_regions; r++) {
        const struct ref_wregion *g = &w->L.region[r];
        uint64_t off = g->offset, len = g->length;
        if (r == w->L.meta_index)
            continue;
        if (r == w->L.bat_index) { /* only the part past the entries */
            uint64_t used = (w->bat_entries * 8 + SEC - 1) / SEC * SEC;
            off += used;
            len -= used;
        }
        if (len > best_len || (len == best_len && chance(w, 50))) {
            best_off = off;
            best_len = len;
        }
    }
    if (best_len < SEC)
        return 0;
    uint64_t len = best_len;
    if (len > 2 * MIB && chance(w, 50))
        len = MIB + SEC * (1 + below(w, (len - MIB) / SEC));
    uint64_t off = best_off + SEC * below(w, (best_len - len) / SEC + 1);
    int rc = eb_zero(&b, off, len);
    if (rc == 0 && chance(w, 60))
        rc = add_filler(w, &b, (uint32_t)below(w, 8), 50, 8);
    if (rc) {
        eb_free(&b);
        return rc;
    }
    return log_entry(w, &b, PLACE_CONTINUE);
}

/* Descriptors that overlap: a zero run, then data inside it, then the same
 * page again with other bytes (replay order decides). */
static int shape_overlap(struct ref_writer *w)
{
    uint32_t r;
    for (r = 0; r < w->L.n_regions; r++)
        if (r != w->L.bat_index && r != w->L.meta_index)
            break;
    if (r == w->L.n_regions)
        return 0;
    const struct ref_wregion *g = &w->L.region[r];
    struct eb b;
    memset(&b, 0, sizeof b);
    b.ordered = 1;
    uint64_t pages = g->length / SEC;
    uint64_t run = 2 + below(w, pages < 64 ? pages - 1 : 63);
    uint64_t first = below(w, pages - run + 1);
    uint8_t page[SEC];
    int rc = eb_zero(&b, g->offset + first * SEC, run * SEC);
    for (int k = 0; k < 3 && rc == 0; k++) {
        uint64_t pg = first + below(w, run);
        for (size_t q = 0; q < SEC; q += 8)
            ref_put64(page + q, rnd(w));
        rc = eb_data(&b, g->offset + pg * SEC, page);
        if (rc == 0 && k == 1) { /* the same page again */
            page[below(w, SEC)] ^= 0x5A;
            rc = eb_data(&b, g->offset + pg * SEC, page);
        }
    }
    if (rc) {
        eb_free(&b);
        return rc;
    }
    w->st.overlapping++;
    return log_entry(w, &b, PLACE_CONTINUE);
}

/* The region table rewritten (both copies) into b. */
static int add_region_tables(struct ref_writer *w, struct eb *b)
{
    uint8_t page[SEC];
    rt_encode(w, page);
    int rc = eb_data(b, REGION1, page);
    if (rc == 0)
        rc = eb_data(b, REGION2, page);
    return rc;
}

/* The BAT moved to its free slot through the log: every page written at
 * the new place (zero runs as zero descriptors, or page by page), and the
 * region table pointing there, in one entry. */
static int shape_bat_move(struct ref_writer *w)
{
    if (!w->L.bat_slot)
        return 0;
    struct ref_wregion *g = &w->L.region[w->L.bat_index];
    const uint64_t from = g->offset, to = w->L.bat_slot, len = g->length;
    struct eb b;
    memset(&b, 0, sizeof b);
    const int merge = chance(w, 50);
    uint32_t budget = w->n / 2;
    int rc = 0;
    for (uint64_t k = 0; k < len / SEC && rc == 0;) {
        const uint8_t *p = pm_get(&w->cur, from / SEC + k);
        if (p) {
            if (b.ndata >= budget) {
                eb_free(&b);
                return 0; /* too many live pages for this ring */
            }
            rc = eb_data(&b, to + k * SEC, p);
            k++;
            continue;
        }
        uint64_t j = k + 1;
        while (merge && j < len / SEC && !pm_get(&w->cur, from / SEC + j))
            j++;
        rc = eb_zero(&b, to + k * SEC, (j - k) * SEC);
        k = j;
    }
    if (rc == 0 && desc_sectors(b.n) + b.ndata + 8 > w->n) {
        eb_free(&b);
        return 0;
    }
    g->offset = to;
    w->L.bat_slot = from;
    if (rc == 0)
        rc = add_region_tables(w, &b);
    if (rc) {
        eb_free(&b);
        return rc;
    }
    w->st.bat_moves++;
    w->n_dirty = 0; /* BAT changes waiting for the log are in the moved copy */
    return log_entry(w, &b, PLACE_CONTINUE);
}

/* A new non-required region, through the log: in a free gap, or past the
 * end of the file (its zero descriptor extends the file on replay). */
static int shape_region_add(struct ref_writer *w)
{
    if (w->L.n_regions >= REF_W_MAX_REGIONS)
        return 0;
    const uint32_t mb = 1 + (uint32_t)below(w, 4);
    uint64_t at = 0;
    const uint32_t end_units = (uint32_t)(w->size / MIB);
    if (chance(w, 50))
        for (uint32_t u = 1; u + mb <= end_units && !at; u++) {
            int ok = 1;
            for (uint32_t k = 0; k < mb && ok; k++)
                ok = w->units[u + k] == U_FREE;
            if (ok)
                at = (uint64_t)u * MIB;
        }
    if (!at) {
        at = used_end(w) > mb_up(w->size) ? used_end(w) : mb_up(w->size);
        at += MIB * below(w, 3);
    }
    if (at / MIB + mb > w->n_units)
        return 0;
    units_set(w, at, (uint64_t)mb * MIB, U_USED);
    struct ref_wregion *g = &w->L.region[w->L.n_regions++];
    guid_new(w, g->guid);
    g->offset = at;
    g->length = mb * (uint32_t)MIB;
    g->required = 0;
    struct eb b;
    memset(&b, 0, sizeof b);
    int rc = add_region_tables(w, &b);
    if (rc == 0)
        rc = eb_zero(&b, at, g->length);
    /* and some bytes in it: data descriptors that may lie past the file's end */
    uint8_t page[SEC];
    for (int k = chance(w, 50) ? (int)below(w, 8) : 0; k > 0 && rc == 0; k--) {
        for (size_t q = 0; q < SEC; q += 8)
            ref_put64(page + q, rnd(w));
        rc = eb_data(&b, at + SEC * below(w, g->length / SEC), page);
    }
    if (rc) {
        eb_free(&b);
        return rc;
    }
    b.ordered = 1;
    w->st.regions_added++;
    return log_entry(w, &b, PLACE_CONTINUE);
}

/* A metadata change through the log: a user item added, rewritten or
 * removed, a known item moved, or the table reordered. */
static int shape_item_edit(struct ref_writer *w)
{
    const struct ref_wregion *m = meta_region(w);
    uint8_t *before = malloc(m->length), *after = malloc(m->length);
    if (!before || !after) {
        free(before);
        free(after);
        return -ENOMEM;
    }
    for (uint32_t k = 0; k < m->length / SEC; k++)
        pm_read(&w->cur, m->offset / SEC + k, before + (size_t)k * SEC);
    int what = (int)below(w, 5);
    uint32_t users = 0;
    for (uint32_t i = 0; i < w->n_items; i++)
        users += w->item[i].flags & 1;
    if (what == 0 && w->n_items < REF_W_MAX_ITEMS) { /* add */
        struct witem *it = &w->item[w->n_items];
        memset(it, 0, sizeof *it);
        guid_new(w, it->guid);
        it->flags = 1 | (uint32_t)(below(w, 2) << 1);
        it->length = (uint32_t)below(w, 2048);
        for (uint32_t q = 0; q < it->length; q++)
            it->data[q] = (uint8_t)rnd(w);
        it->offset = it->length ? meta_find_space(w, it->length, -1) : 0;
        if (!it->length || it->offset)
            w->n_items++;
    } else if (what == 1 && users) { /* rewrite a user item in place */
        for (uint32_t i = 0; i < w->n_items; i++)
            if ((w->item[i].flags & 1) && w->item[i].length) {
                for (uint32_t q = 0; q < w->item[i].length; q++)
                    w->item[i].data[q] = (uint8_t)rnd(w);
                break;
            }
    } else if (what == 2 && users) { /* remove a user item */
        for (uint32_t i = 0; i < w->n_items; i++)
            if (w->item[i].flags & 1) {
                memmove(&w->item[i], &w->item[i + 1], (w->n_items - i - 1) * sizeof *w->item);
                w->n_items--;
                break;
            }
    } else if (what == 3) { /* move a known item elsewhere */
        uint32_t i = (uint32_t)below(w, w->n_items);
        if (w->item[i].length) {
            uint32_t at = meta_find_space(w, w->item[i].length, (int)i);
            if (at)
                w->item[i].offset = at;
        }
    } else { /* reorder the table */
        for (uint32_t i = w->n_items; i > 1; i--) {
            uint32_t j = (uint32_t)below(w, i);
            struct witem t = w->item[i - 1];
            w->item[i - 1] = w->item[j];
            w->item[j] = t;
        }
    }
    meta_render(w, after);
    w->L.n_items = w->n_items;
    users = 0;
    for (uint32_t i = 0; i < w->n_items; i++)
        users += w->item[i].flags & 1;
    w->L.user_items = users;
    struct eb b;
    memset(&b, 0, sizeof b);
    int rc = 0;
    for (uint32_t k = 0; k < m->length / SEC && rc == 0; k++) {
        const uint8_t *x = after + (size_t)k * SEC;
        if (!memcmp(before + (size_t)k * SEC, x, SEC))
            continue;
        rc = all_zero(x, SEC) && chance(w, 50) ? eb_zero(&b, m->offset + (uint64_t)k * SEC, SEC)
                                               : eb_data(&b, m->offset + (uint64_t)k * SEC, x);
    }
    free(before);
    free(after);
    if (rc == 0 && !b.n)
        return 0;
    if (rc) {
        eb_free(&b);
        return rc;
    }
    w->st.item_edits++;
    return log_entry(w, &b, PLACE_CONTINUE);
}

/* A small entry that starts a new sequence away from the old one (both
 * complete in the ring; the newer must win), or across the ring's end. */
static int shape_newseq(struct ref_writer *w, int wrap)
{
    struct eb b;
    memset(&b, 0, sizeof b);
    int rc = add_filler(w, &b, 1 + (uint32_t)below(w, wrap ? 40 : 6), 60, w->n / 4);
    if (rc) {
        eb_free(&b);
        return rc;
    }
    return log_entry(w, &b, wrap ? PLACE_WRAP : PLACE_NEWSEQ);
}

/* The log emptied: everything applied, the LogGuid cleared (or the next
 * entry simply starts another LogGuid); the ring keeps the old entries. */
static int shape_guid(struct ref_writer *w)
{
    int rc = log_dirty(w);
    if (rc == 0)
        rc = log_apply(w, w->n_ents - w->first_unapplied, 1);
    if (rc || all_zero(w->hguid, 16))
        return rc;
    if (chance(w, 50)) {
        memset(w->hguid, 0, 16);
        w->st.guid_cleared++;
        return header_update(w);
    }
    w->force_new_guid = 1;
    return 0;
}

/* The log moved to its other place (and size): only while no log is
 * named, and written to both header copies before the ring is used, so no
 * header copy ever names the old place again.  The old place becomes the
 * free slot (never given to anything else). */
static int shape_log_move(struct ref_writer *w)
{
    if (!w->L.log_slot)
        return 0;
    int rc = log_dirty(w);
    if (rc == 0)
        rc = log_apply(w, w->n_ents - w->first_unapplied, 1);
    if (rc)
        return rc;
    memset(w->hguid, 0, 16);
    const uint64_t off = w->L.log_offset;
    const uint32_t len = w->L.log_length;
    w->L.log_offset = w->L.log_slot;
    w->L.log_length = w->L.log_slot_length;
    w->L.log_slot = off;
    w->L.log_slot_length = len;
    w->n = w->L.log_length / SEC;
    for (uint32_t i = 0; i < w->n_ents; i++)
        went_free(&w->ents[i]);
    w->n_ents = w->first_unapplied = w->dtail = 0;
    w->force_new_guid = 1;
    w->st.log_moves++;
    if ((rc = session_touch(w)) != 0)
        return rc;
    return header_update_ex(w, 1);
}

static int shape_apply(struct ref_writer *w)
{
    uint32_t pending = w->n_ents - w->first_unapplied;
    if (!pending)
        return 0;
    uint32_t k = pending > 1 && chance(w, 50) ? 1 + (uint32_t)below(w, pending - 1) : pending;
    return log_apply(w, k, chance(w, 70));
}

enum shape {
    SH_COUNT = 0, SH_BIG_ZERO, SH_OVERLAP, SH_BAT_MOVE, SH_REGION_ADD, SH_ITEM, SH_NEWSEQ, SH_WRAP, SH_GUID,
    SH_APPLY, SH_EMPTY, SH_LOG_MOVE, SH_BATCH, SH_N
};

/* Descriptor counts worth making: the edges of the descriptor sectors. */
static uint32_t pick_count(struct ref_writer *w)
{
    /* the edges in turn (127: one descriptor in the second sector; 254: two
     * full sectors; 255: a third one), starting at a place set by the seed */
    static const uint32_t turn[] = {127, 255, 128, 254, 383, 126};
    static const uint32_t edges[] = {125, 126, 127, 128, 129, 253, 254, 255, 256, 257, 381, 382, 383, 384};
    uint32_t c;
    const uint32_t k = w->count_turn++;
    if (k % 3 != 2)
        c = turn[(w->seed + k) % (sizeof turn / sizeof turn[0])];
    else if (chance(w, 50))
        c = edges[below(w, sizeof edges / sizeof edges[0])];
    else
        c = 6 + (uint32_t)below(w, 500);
    uint32_t pool_cap = 0;
    for (uint32_t r = 0; r < w->L.n_regions; r++)
        pool_cap += w->L.region[r].length / SEC;
    if (c > pool_cap / 2)
        c = pool_cap / 2;
    return c;
}

static int do_shape_once(struct ref_writer *w, enum shape s);

/* A shape, then the session's apply policy (a long unapplied sequence is
 * replayed, and cut inside its replay, in every later crash state). */
static int do_shape(struct ref_writer *w, enum shape s)
{
    int rc = do_shape_once(w, s);
    uint32_t pending = w->n_ents - w->first_unapplied;
    if (rc == 0 && s != SH_APPLY && pending >= w->apply_every && !chance(w, 15))
        rc = log_apply(w, pending - (chance(w, 25) ? 1 : 0), !chance(w, 20));
    /* a large head, applied, is replayed again at every open until a newer
     * entry supersedes it: an empty entry (its own Tail) usually follows */
    if (rc == 0 && w->n_ents && w->first_unapplied == w->n_ents && !w->apply_unflushed &&
        w->ents[w->n_ents - 1].nd > 32 && chance(w, 75)) {
        struct eb cp;
        memset(&cp, 0, sizeof cp);
        rc = log_entry(w, &cp, PLACE_CONTINUE);
    }
    return rc;
}

static int do_shape_once(struct ref_writer *w, enum shape s)
{
    switch (s) {
    case SH_COUNT: return shape_count(w, pick_count(w));
    case SH_BIG_ZERO: return shape_big_zero(w);
    case SH_OVERLAP: return shape_overlap(w);
    case SH_BAT_MOVE: {
        int rc = log_dirty(w);
        return rc ? rc : shape_bat_move(w);
    }
    case SH_REGION_ADD: return shape_region_add(w);
    case SH_ITEM: return shape_item_edit(w);
    case SH_NEWSEQ: return shape_newseq(w, 0);
    case SH_WRAP: return shape_newseq(w, 1);
    case SH_GUID: return shape_guid(w);
    case SH_APPLY: return shape_apply(w);
    case SH_LOG_MOVE: return shape_log_move(w);
    case SH_BATCH: { /* several entries in one flush epoch */
        int rc = 0;
        w->batching = 1;
        for (int k = 2 + (int)below(w, 3); k > 0 && rc == 0; k--) {
            struct eb b;
            memset(&b, 0, sizeof b);
            rc = add_filler(w, &b, (uint32_t)below(w, 12), 50, w->n / 16);
            if (rc == 0)
                rc = log_entry(w, &b, PLACE_CONTINUE);
            else
                eb_free(&b);
        }
        w->batching = 0;
        return rc ? rc : io_flush(w);
    }
    default: {
        struct eb b;
        memset(&b, 0, sizeof b);
        return log_entry(w, &b, PLACE_CONTINUE);
    }
    }
}

/* ---- the seeded sessions --------------------------------------------------------------------- */
static void pick_write(struct ref_writer *w, uint64_t *voff, uint64_t *len)
{
    const uint64_t vs = w->L.virtual_size, bs = w->L.block_size;
    const uint64_t align = chance(w, 30) ? 512 : w->L.logical_sector;
    uint64_t l, o;
    uint64_t r = below(w, 100);
    if (r < 55)
        l = 512 * (1 + below(w, 16));
    else if (r < 82)
        l = 4096 * (1 + below(w, 32));
    else if (r < 92)
        l = (bs < MIB ? bs : MIB) + 512 * below(w, 8);
    else
        l = 512 * (2 + below(w, 16));
    if (r >= 92 && w->nblocks > 1) /* across a block boundary */
        o = bs * (1 + below(w, w->nblocks - 1)) - 512 * (1 + below(w, 8));
    else if (chance(w, 50)) /* near the start of a few hot blocks */
        o = bs * below(w, w->nblocks < 4 ? w->nblocks : 4) + 512 * below(w, 64);
    else
        o = below(w, vs);
    o = o / align * align;
    l = (l + align - 1) / align * align;
    if (o >= vs)
        o = (vs - align) / align * align;
    if (l > vs - o)
        l = vs - o;
    if (w->payload_bytes + l > 64 * MIB)
        l = 512 < vs - o ? 512 : vs - o;
    *voff = o;
    *len = l;
}

static int run_write(struct ref_writer *w)
{
    uint64_t voff, len;
    for (int tries = 0; tries < 8; tries++) {
        pick_write(w, &voff, &len);
        if (blocks_fit(w, voff, len))
            return do_write(w, voff, len);
    }
    return 0; /* the file is full: no write this time */
}

static int run_discard(struct ref_writer *w)
{
    const uint64_t vs = w->L.virtual_size, bs = w->L.block_size;
    uint64_t voff, len;
    if (chance(w, 55) && (!w->L.leave_block_allocated || bs <= 4 * MIB)) {
        uint64_t b = below(w, w->nblocks < 6 ? w->nblocks : 6);
        if (chance(w, 40))
            b = below(w, w->nblocks);
        voff = b * bs;
        len = bs * (1 + below(w, 2));
    } else {
        voff = below(w, vs) / 512 * 512;
        len = 512 * (1 + below(w, 512));
    }
    if (voff >= vs)
        return 0;
    if (len > vs - voff)
        len = vs - voff;
    if (w->L.leave_block_allocated && len > 4 * MIB)
        len = 4 * MIB;
    return do_discard(w, voff, len);
}

int ref_writer_run(struct ref_writer *w, const struct ref_wio *io, const struct ref_wobs *obs)
{
    w->io = *io;
    if (obs)
        w->ob = *obs;
    w->have_io = 1;
    int rc = 0;
    for (uint32_t s = 0; s < w->p.sessions && rc == 0; s++) {
        w->session = s;
        w->st.sessions++;
        mark(w, "refgen.session", s);
        if (s == 0) {
            op_end(w, op_begin(w, REF_WOP_OPEN, 0, 0, 0), 0);
        } else {
            uint32_t op = op_begin(w, REF_WOP_REOPEN, 0, 0, 0);
            rc = session_close(w, !chance(w, 15));
            if (rc == 0 && w->ob.synced)
                w->ob.synced(w->ob.ctx, op);
            op_end(w, op, rc);
        }
        /* the session's habits */
        w->deferred = chance(w, 30);
        w->apply_every = chance(w, 30) ? 1 : chance(w, 80) ? 1 + (uint32_t)below(w, 3) : 4 + (uint32_t)below(w, 5);
        w->batch_pct = chance(w, 50) ? 0 : 10 + (uint32_t)below(w, 40);
        /* shapes this session makes for sure (seed and session pick the
         * first), then more at random */
        enum shape plan[SH_N];
        for (int k = 0; k < SH_N; k++)
            plan[k] = (enum shape)k;
        for (int k = SH_N; k > 1; k--) {
            int j = (int)below(w, (uint64_t)k);
            enum shape t = plan[k - 1];
            plan[k - 1] = plan[j];
            plan[j] = t;
        }
        int n_plan = 3 + (int)below(w, 4), next = 0;
        for (int k = 0; k < SH_N; k++) /* one shape chosen by seed and session first */
            if (plan[k] == (enum shape)((w->seed + s) % SH_N)) {
                plan[k] = plan[0];
                plan[0] = (enum shape)((w->seed + s) % SH_N);
            }
        for (uint32_t i = 0; i < w->p.ops && rc == 0; i++) {
            uint64_t r = below(w, 100);
            if (r < 42)
                rc = run_write(w);
            else if (r < 52)
                rc = run_discard(w);
            else if (r < 66)
                rc = do_flush(w);
            else if (next < n_plan)
                rc = do_shape(w, plan[next++]);
            else
                rc = do_shape(w, (enum shape)(chance(w, 40) ? SH_COUNT : below(w, SH_N)));
        }
        while (rc == 0 && next < n_plan)
            rc = do_shape(w, plan[next++]);
    }
    if (rc)
        return rc;
    if (w->p.end == 1) {
        uint32_t op = op_begin(w, REF_WOP_CLOSE, 0, 0, 0);
        rc = session_close(w, !chance(w, 10));
        if (rc == 0 && w->ob.synced)
            w->ob.synced(w->ob.ctx, op);
        op_end(w, op, rc);
        return rc;
    }
    /* stop with a log to replay: everything acknowledged, then one more
     * entry that nothing applies */
    rc = do_flush(w);
    if (rc == 0 && (all_zero(w->hguid, 16) || w->first_unapplied == w->n_ents || w->force_new_guid))
        rc = shape_count(w, 1 + (uint32_t)below(w, 40));
    if (rc == 0 && (w->unflushed || w->payload_unflushed))
        rc = io_flush(w);
    w->st.pending_at_end = rc == 0 && !all_zero(w->hguid, 16) && w->first_unapplied < w->n_ents;
    return rc;
}

/* ---- creation ------------------------------------------------------------------------------------ */
enum { S_LOG, S_META, S_BAT, S_SLOT, S_EXTRA, S_LOG_SLOT };

static uint32_t pick_block_size(struct ref_writer *w)
{
    static const uint32_t mb[] = {1, 1, 1, 2, 2, 4, 8, 16, 32, 64, 128, 256};
    return mb[below(w, sizeof mb / sizeof mb[0])] * (uint32_t)MIB;
}

static int resolve(struct ref_writer *w, const struct ref_wparams *in, char *err, size_t errlen)
{
    struct ref_wparams *p = &w->p;
    if (in)
        *p = *in;
    if (!p->block_size)
        p->block_size = pick_block_size(w);
    if (!p->logical_sector)
        p->logical_sector = chance(w, 50) ? 512 : 4096;
    if (!p->physical_sector)
        p->physical_sector = chance(w, 60) ? 4096 : 512;
    if (!p->log_length) {
        static const uint32_t mb[] = {1, 1, 2, 2, 2, 3, 4, 4, 6, 8, 16};
        p->log_length = mb[below(w, sizeof mb / sizeof mb[0])] * (uint32_t)MIB;
    }
    if (!p->max_file_mb)
        p->max_file_mb = 16384;
    if (!p->virtual_size) {
        const uint64_t bs = p->block_size;
        const uint64_t ratio = ((UINT64_C(1) << 23) * p->logical_sector) / bs;
        uint64_t nb = 4 + below(w, bs >= 64 * MIB ? 8 : 60);
        if (bs <= 2 * MIB && chance(w, 25))
            nb = 600 + below(w, 20000); /* a BAT of many pages */
        else if (ratio <= 64 && chance(w, 40))
            nb = ratio + 1 + below(w, ratio); /* sector-bitmap entries between payload entries */
        p->virtual_size = nb * bs;
        if (chance(w, 30))
            p->virtual_size -= p->logical_sector * (1 + below(w, bs / p->logical_sector - 1));
    }
    if (!p->sessions)
        p->sessions = 1 + (uint32_t)below(w, 3);
    if (!p->ops)
        p->ops = 10 + (uint32_t)below(w, 22);
    if (!p->end)
        p->end = chance(w, 50) ? 1 : 2;
    const uint32_t bs = p->block_size;
    if (bs < MIB || bs > 256 * MIB || (bs & (bs - 1)))
        return snprintf(err, errlen, "block size %u is not a power of two from 1 MiB to 256 MiB", bs), -EINVAL;
    if ((p->logical_sector != 512 && p->logical_sector != 4096) ||
        (p->physical_sector != 512 && p->physical_sector != 4096))
        return snprintf(err, errlen, "sector sizes must be 512 or 4096"), -EINVAL;
    if (p->log_length < MIB || p->log_length % MIB || p->log_length > REF_W_MAX_LOG)
        return snprintf(err, errlen, "log length %u: a multiple of 1 MiB up to %u", p->log_length, REF_W_MAX_LOG),
               -EINVAL;
    if (p->virtual_size == 0 || p->virtual_size % p->logical_sector || p->virtual_size > (UINT64_C(64) << 40))
        return snprintf(err, errlen, "virtual size %llu: a multiple of the logical sector, at most 64 TiB",
                        (unsigned long long)p->virtual_size),
               -EINVAL;
    if (p->sessions < 1 || p->sessions > 8 || p->ops < 1 || p->ops > 2000 || p->end < 1 || p->end > 2)
        return snprintf(err, errlen, "sessions 1..8, ops 1..2000, end 1 (close) or 2 (pending)"), -EINVAL;
    if (p->max_file_mb < 64 || p->max_file_mb > REF_W_MAX_FILE_MB)
        return snprintf(err, errlen, "max file size 64..%u MiB", REF_W_MAX_FILE_MB), -EINVAL;
    return 0;
}

static int choose_layout(struct ref_writer *w, char *err, size_t errlen)
{
    struct ref_wlayout *L = &w->L;
    const struct ref_wparams *p = &w->p;
    L->virtual_size = p->virtual_size;
    L->block_size = p->block_size;
    L->logical_sector = p->logical_sector;
    L->physical_sector = p->physical_sector;
    L->log_length = p->log_length;
    w->chunk_ratio = ((UINT64_C(1) << 23) * L->logical_sector) / L->block_size;
    w->nblocks = (L->virtual_size + L->block_size - 1) / L->block_size;
    w->bat_entries = w->nblocks + (w->nblocks - 1) / w->chunk_ratio;
    if (L->virtual_size % L->block_size)
        L->variety |= REF_WV_PARTIAL_BLOCK;
    L->leave_block_allocated = w->nblocks * L->block_size <= (UINT64_C(2) << 30) && chance(w, 10);
    /* the structures and their order in the file */
    uint64_t len[5 + REF_W_MAX_REGIONS];
    int kind[5 + REF_W_MAX_REGIONS];
    int ns = 0;
    uint64_t bat_len = mb_up(w->bat_entries * 8);
    if (chance(w, 30)) {
        bat_len += MIB * (1 + below(w, 2));
        L->variety |= REF_WV_BIG_BAT;
    }
    if (bat_len > 0xFFF00000u)
        return snprintf(err, errlen, "a BAT of %llu bytes", (unsigned long long)bat_len), -EINVAL;
    kind[ns] = S_LOG, len[ns++] = L->log_length;
    kind[ns] = S_META, len[ns++] = MIB * (1 + below(w, 3));
    kind[ns] = S_BAT, len[ns++] = bat_len;
    if (chance(w, 35) && bat_len <= 8 * MIB) {
        kind[ns] = S_SLOT, len[ns++] = bat_len;
        L->variety |= REF_WV_BAT_SLOT;
    }
    if (chance(w, 30)) {
        kind[ns] = S_LOG_SLOT, len[ns++] = MIB * (1 + below(w, 6));
        L->variety |= REF_WV_LOG_SLOT;
    }
    const int extras = chance(w, 30) ? 0 : 1 + (int)below(w, 3);
    for (int i = 0; i < extras; i++)
        kind[ns] = S_EXTRA, len[ns++] = MIB * (1 + below(w, 6));
    if (extras)
        L->variety |= REF_WV_EXTRA_REGIONS;
    const int plain = chance(w, 15);
    if (!plain)
        for (int i = ns; i > 1; i--) {
            int j = (int)below(w, (uint64_t)i);
            uint64_t tl = len[i - 1];
            int tk = kind[i - 1];
            len[i - 1] = len[j], kind[i - 1] = kind[j];
            len[j] = tl, kind[j] = tk;
        }
    /* the highest structure is one the engine reads at open (log, BAT or
     * metadata), so everything a reader looks at lies below it */
    if (kind[ns - 1] == S_SLOT || kind[ns - 1] == S_EXTRA || kind[ns - 1] == S_LOG_SLOT)
        for (int i = ns - 2; i >= 0; i--)
            if (kind[i] == S_LOG || kind[i] == S_META || kind[i] == S_BAT) {
                uint64_t tl = len[i];
                int tk = kind[i];
                len[i] = len[ns - 1], kind[i] = kind[ns - 1];
                len[ns - 1] = tl, kind[ns - 1] = tk;
                break;
            }
    uint64_t at = MIB;
    uint64_t off[5 + REF_W_MAX_REGIONS];
    for (int i = 0; i < ns; i++) {
        if (!plain && chance(w, 30))
            at += MIB * (1 + below(w, 4));
        off[i] = at;
        at += len[i];
    }
    L->structural_end = at;
    if (!plain || kind[0] != S_LOG)
        L->variety |= REF_WV_PLACEMENT;
    /* the region table */
    L->n_regions = 0;
    int order_bat_first = 1;
    for (int i = 0; i < ns; i++) {
        if (kind[i] == S_LOG) {
            L->log_offset = off[i];
            continue;
        }
        if (kind[i] == S_SLOT) {
            L->bat_slot = off[i];
            continue;
        }
        if (kind[i] == S_LOG_SLOT) {
            L->log_slot = off[i];
            L->log_slot_length = (uint32_t)len[i];
            continue;
        }
        struct ref_wregion *g = &L->region[L->n_regions];
        g->offset = off[i];
        g->length = (uint32_t)len[i];
        g->required = kind[i] == S_EXTRA ? 0 : 1;
        if (kind[i] == S_BAT)
            memcpy(g->guid, REF_GUID_BAT, 16);
        else if (kind[i] == S_META)
            memcpy(g->guid, REF_GUID_METADATA, 16);
        else
            guid_new(w, g->guid);
        L->n_regions++;
    }
    if (!plain)
        for (uint32_t i = L->n_regions; i > 1; i--) {
            uint32_t j = (uint32_t)below(w, i);
            struct ref_wregion t = L->region[i - 1];
            L->region[i - 1] = L->region[j];
            L->region[j] = t;
        }
    for (uint32_t i = 0; i < L->n_regions; i++) {
        if (!memcmp(L->region[i].guid, REF_GUID_BAT, 16))
            L->bat_index = i;
        else if (!memcmp(L->region[i].guid, REF_GUID_METADATA, 16))
            L->meta_index = i;
    }
    order_bat_first = L->bat_index == 0;
    if (!order_bat_first)
        L->variety |= REF_WV_REGION_ORDER;
    return 0;
}

static void choose_items(struct ref_writer *w)
{
    const uint32_t mlen = meta_region(w)->length;
    struct witem *it = w->item;
    uint32_t n = 0;
    for (int k = 0; k < IT_KNOWN; k++)
        item_known(w, &it[n++], k);
    uint32_t users = chance(w, 40) ? 0 : 1 + (uint32_t)below(w, 4);
    for (uint32_t u = 0; u < users; u++) {
        struct witem *x = &it[n++];
        memset(x, 0, sizeof *x);
        guid_new(w, x->guid);
        if (u == 0 && chance(w, 30)) /* a user item named like a known one: only the (ItemId, IsUser) pair is unique */
            memcpy(x->guid, it[below(w, IT_KNOWN)].guid, 16);
        x->flags = 1 | (uint32_t)(below(w, 2) << 1);
        x->length = chance(w, 20) ? 0 : (uint32_t)below(w, 3000) + 1;
        for (uint32_t q = 0; q < x->length; q++)
            x->data[q] = (uint8_t)rnd(w);
    }
    if (chance(w, 25)) { /* an optional system item nobody defines */
        struct witem *x = &it[n++];
        memset(x, 0, sizeof *x);
        guid_new(w, x->guid);
        x->flags = (uint32_t)(below(w, 2) << 1);
        x->length = 1 + (uint32_t)below(w, 512);
        for (uint32_t q = 0; q < x->length; q++)
            x->data[q] = (uint8_t)rnd(w);
        users++;
    }
    w->n_items = n;
    w->L.n_items = n;
    w->L.user_items = users;
    if (users)
        w->L.variety |= REF_WV_USER_ITEMS;
    /* placement: the usual order packed at 64 KiB, or shuffled, with gaps
     * and odd alignments */
    const int plain = chance(w, 25);
    uint32_t order[REF_W_MAX_ITEMS];
    for (uint32_t i = 0; i < n; i++)
        order[i] = i;
    if (!plain)
        for (uint32_t i = n; i > 1; i--) {
            uint32_t j = (uint32_t)below(w, i), t = order[i - 1];
            order[i - 1] = order[j];
            order[j] = t;
        }
    uint32_t at = TABLE64 + (plain ? 0 : (uint32_t)below(w, 8192));
    for (uint32_t i = 0; i < n; i++) {
        struct witem *x = &it[order[i]];
        if (!x->length) {
            x->offset = 0;
            continue;
        }
        if (!plain) {
            at += (uint32_t)below(w, 300);
            if (chance(w, 50))
                at = (at + 7) / 8 * 8;
        }
        if (at + x->length > mlen)
            at = TABLE64; /* cannot happen with 1 MiB regions and these sizes */
        x->offset = at;
        at += x->length;
    }
    if (!plain) {
        for (uint32_t i = n; i > 1; i--) { /* the table's own order */
            uint32_t j = (uint32_t)below(w, i);
            struct witem t = it[i - 1];
            it[i - 1] = it[j];
            it[j] = t;
        }
        w->L.variety |= REF_WV_ITEM_ORDER;
    }
}

/* Entries of earlier sessions under other LogGuids, left in the ring. */
static int create_history(struct ref_writer *w)
{
    int sessions = 1 + (int)below(w, 3);
    for (int s = 0; s < sessions; s++) {
        uint8_t g[16];
        guid_new(w, g);
        uint32_t pos = (uint32_t)below(w, w->n), first = pos;
        uint64_t seq = 1 + below(w, UINT64_C(1) << 40);
        int count = 1 + (int)below(w, 4);
        for (int k = 0; k < count; k++) {
            struct eb b;
            memset(&b, 0, sizeof b);
            int rc = add_filler(w, &b, 1 + (uint32_t)below(w, 30), 50, w->n / 8);
            if (rc) {
                eb_free(&b);
                return rc;
            }
            struct went e;
            memset(&e, 0, sizeof e);
            e.nd = b.n;
            e.d = b.d;
            e.sectors = desc_sectors(b.n) + b.ndata;
            e.pos = pos;
            e.seq = seq++;
            e.tail_pos = first;
            uint8_t *bytes = entry_encode(g, &e, mb_up(w->size) - MIB, used_end(w));
            rc = bytes ? ring_write(w, bytes, e.pos, e.sectors) : -ENOMEM;
            free(bytes);
            eb_free(&b);
            if (rc)
                return rc;
            pos = (pos + e.sectors) % w->n;
        }
    }
    w->L.variety |= REF_WV_HISTORY;
    return 0;
}

/* The new image names a log (a complete sequence that restates the current
 * contents of some pages: replaying it changes nothing). */
static int create_pending(struct ref_writer *w)
{
    guid_new(w, w->lguid);
    uint32_t pos = (uint32_t)below(w, w->n), first = pos;
    uint64_t seq = 1 + below(w, UINT64_C(1) << 40);
    int count = 1 + (int)below(w, 3);
    for (int k = 0; k < count; k++) {
        struct eb b;
        memset(&b, 0, sizeof b);
        int rc = 0;
        if (k == 0)
            rc = add_region_tables(w, &b);
        uint64_t bo = bat_region(w)->offset;
        for (uint32_t q = 0; q < 4 && rc == 0; q++) {
            uint64_t pg = bo / SEC + below(w, (w->bat_entries * 8 + SEC - 1) / SEC);
            if (eb_touches(&b, pg * SEC, SEC))
                continue;
            const uint8_t *c = pm_get(&w->cur, pg);
            rc = c ? eb_data(&b, pg * SEC, c) : eb_zero(&b, pg * SEC, SEC);
        }
        if (rc) {
            eb_free(&b);
            return rc;
        }
        struct went e;
        memset(&e, 0, sizeof e);
        e.nd = b.n;
        e.d = b.d;
        b.d = NULL;
        e.sectors = desc_sectors(e.nd) + b.ndata;
        e.pos = pos;
        e.seq = seq++;
        e.tail_pos = first;
        e.self_tail = k == 0;
        e.durable = e.apply_written = e.applied = 1;
        uint8_t *bytes = entry_encode(w->lguid, &e, w->size / MIB * MIB, used_end(w));
        rc = bytes ? ring_write(w, bytes, e.pos, e.sectors) : -ENOMEM;
        free(bytes);
        if (rc == 0)
            rc = ents_push(w, &e);
        if (rc) {
            went_free(&e);
            return rc;
        }
        pos = (pos + e.sectors) % w->n;
    }
    memcpy(w->hguid, w->lguid, 16);
    w->L.variety |= REF_WV_PENDING_BASE;
    return 0;
}

int ref_writer_create(struct ref_writer *w, const struct ref_wio *io)
{
    w->io = *io;
    struct ref_wlayout *L = &w->L;
    int rc = io_trunc(w, L->structural_end);
    uint8_t page[SEC];
    /* file identifier: signature and a UTF-16 creator */
    memset(page, 0, sizeof page);
    memcpy(page, "vhdxfile", 8);
    char creator[64];
    snprintf(creator, sizeof creator, "powercut refgen %llu", (unsigned long long)w->seed);
    for (size_t i = 0; creator[i]; i++)
        page[8 + 2 * i] = (uint8_t)creator[i];
    if (rc == 0)
        rc = io_write(w, page, SEC, 0);
    /* region tables (both copies) */
    rt_encode(w, page);
    if (rc == 0)
        rc = pm_put(&w->cur, REGION1 / SEC, page);
    if (rc == 0)
        rc = pm_put(&w->cur, REGION2 / SEC, page);
    /* metadata region */
    const struct ref_wregion *m = meta_region(w);
    uint8_t *mb = calloc(1, m->length);
    if (!mb)
        return -ENOMEM;
    meta_render(w, mb);
    for (uint32_t k = 0; k < m->length / SEC && rc == 0; k++)
        rc = pm_put(&w->cur, m->offset / SEC + k, mb + (size_t)k * SEC);
    free(mb);
    /* extra regions: some pages of content */
    for (uint32_t r = 0; r < L->n_regions && rc == 0; r++) {
        const struct ref_wregion *g = &L->region[r];
        if (r == L->bat_index || r == L->meta_index)
            continue;
        units_set(w, g->offset, g->length, U_USED);
        for (int k = (int)below(w, 24); k > 0 && rc == 0; k--) {
            for (size_t q = 0; q < SEC; q += 8)
                ref_put64(page + q, rnd(w));
            rc = pm_put(&w->cur, g->offset / SEC + below(w, g->length / SEC), page);
        }
    }
    units_set(w, L->log_offset, L->log_length, U_USED);
    units_set(w, m->offset, m->length, U_USED);
    units_set(w, bat_region(w)->offset, bat_region(w)->length, U_USED);
    if (L->bat_slot)
        units_set(w, L->bat_slot, bat_region(w)->length, U_USED);
    if (L->log_slot)
        units_set(w, L->log_slot, L->log_slot_length, U_USED);
    units_set(w, 0, MIB, U_USED);
    /* the BAT: NOT_PRESENT, ZERO, or blocks preallocated (zeros) */
    for (uint64_t b = 0; b < w->nblocks && rc == 0; b++) {
        uint64_t r = below(w, 100);
        if (L->leave_block_allocated || r < 12) {
            uint64_t x;
            int dirty;
            if (block_place(w, &x, &dirty) != 0)
                continue;
            if (x + L->block_size > w->size)
                rc = io_trunc(w, x + L->block_size);
            if (rc == 0)
                rc = bat_set(w, b, bat_make(ST_FULLY_PRESENT, x));
            L->variety |= REF_WV_BLOCK_STATES;
        } else if (r < 20) {
            rc = bat_set(w, b, bat_make(ST_ZERO, 0));
            L->variety |= REF_WV_BLOCK_STATES;
        }
    }
    w->n_dirty = 0;
    /* the ring: old sessions, maybe a log the new image names */
    if (rc == 0 && chance(w, 50))
        rc = create_history(w);
    if (rc == 0 && chance(w, 15))
        rc = create_pending(w);
    /* every metadata page, then the headers */
    for (size_t i = 0; i < w->cur.cap && rc == 0; i++)
        if (w->cur.s[i].key && w->cur.s[i].page)
            rc = io_write(w, w->cur.s[i].page, SEC, (w->cur.s[i].key - 1) * SEC);
    guid_new(w, w->fwg);
    guid_new(w, w->dwg);
    uint64_t s0 = chance(w, 20) ? (UINT64_C(1) << 40) + below(w, 1u << 30) : 1 + below(w, 1000);
    if (chance(w, 20)) {
        int slot = (int)below(w, 2);
        w->hvalid[slot] = 1;
        w->hseq[slot] = s0;
        w->hcur = slot;
        L->variety |= REF_WV_ONE_HEADER;
        if (rc == 0)
            rc = header_write(w, slot, s0);
    } else {
        w->hvalid[0] = w->hvalid[1] = 1;
        w->hseq[0] = s0;
        w->hseq[1] = s0 + 1;
        w->hcur = 1;
        if (rc == 0)
            rc = header_write(w, 0, s0);
        if (rc == 0)
            rc = header_write(w, 1, s0 + 1);
    }
    if (rc == 0)
        rc = pm_copy(&w->disk, &w->cur);
    if (rc == 0)
        rc = io_flush(w);
    L->created_size = w->size;
    /* the figures count the sessions */
    memset(&w->st, 0, sizeof w->st);
    return rc;
}

/* ---- life cycle ----------------------------------------------------------------------------------- */
int ref_writer_new(struct ref_writer **out, uint64_t seed, const struct ref_wparams *p, char *err, size_t errlen)
{
    *out = NULL;
    struct ref_writer *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    w->seed = seed;
    w->r = seed * UINT64_C(0x2545F4914F6CDD1D) ^ UINT64_C(0x72656667656E);
    char e2[1];
    if (!err) {
        err = e2;
        errlen = sizeof e2;
    }
    int rc = resolve(w, p, err, errlen);
    if (rc == 0)
        rc = choose_layout(w, err, errlen);
    if (rc == 0) {
        w->n_units = w->p.max_file_mb;
        w->n = w->L.log_length / SEC;
        if (!(w->units = calloc(w->n_units, 1)))
            rc = -ENOMEM;
    }
    if (rc == 0 && w->L.structural_end / MIB + 8 > w->n_units) {
        snprintf(err, errlen, "the layout (%llu MiB) does not fit %u MiB",
                 (unsigned long long)(w->L.structural_end / MIB), w->n_units);
        rc = -EINVAL;
    }
    if (rc == 0)
        choose_items(w);
    if (rc) {
        ref_writer_free(w);
        return rc;
    }
    *out = w;
    return 0;
}

void ref_writer_free(struct ref_writer *w)
{
    if (!w)
        return;
    for (uint32_t i = 0; i < w->n_ents; i++)
        went_free(&w->ents[i]);
    free(w->ents);
    free(w->dirty);
    free(w->units);
    free(w->buf);
    pm_free(&w->cur);
    pm_free(&w->disk);
    free(w);
}

const struct ref_wlayout *ref_writer_layout(const struct ref_writer *w) { return &w->L; }
const struct ref_wstats *ref_writer_stats(const struct ref_writer *w) { return &w->st; }
const char *ref_writer_error(const struct ref_writer *w) { return w->err; }

/* ---- an image in memory ------------------------------------------------------------------------------ */
struct ref_wmem {
    struct pmap pages;
    uint64_t size;
};

struct ref_wmem *ref_wmem_new(void) { return calloc(1, sizeof(struct ref_wmem)); }

void ref_wmem_free(struct ref_wmem *m)
{
    if (m) {
        pm_free(&m->pages);
        free(m);
    }
}

uint64_t ref_wmem_size(const struct ref_wmem *m) { return m->size; }

static int wmem_write(void *ctx, const void *buf, size_t len, uint64_t off)
{
    struct ref_wmem *m = ctx;
    const uint8_t *p = buf;
    while (len > 0) {
        size_t in = (size_t)(off % SEC), n = SEC - in < len ? SEC - in : len;
        uint8_t *pg = pm_mut(&m->pages, off / SEC);
        if (!pg)
            return -ENOMEM;
        memcpy(pg + in, p, n);
        p += n;
        off += n;
        len -= n;
        if (off > m->size)
            m->size = off;
    }
    return 0;
}

static int wmem_truncate(void *ctx, uint64_t size)
{
    struct ref_wmem *m = ctx;
    if (size < m->size) {
        for (size_t i = 0; i < m->pages.cap; i++) {
            struct pslot *s = &m->pages.s[i];
            if (!s->key || !s->page)
                continue;
            uint64_t lo = (s->key - 1) * SEC;
            if (lo >= size) {
                free(s->page);
                s->page = NULL;
            } else if (lo + SEC > size) {
                memset(s->page + (size - lo), 0, (size_t)(lo + SEC - size));
            }
        }
    }
    m->size = size;
    return 0;
}

static int wmem_flush(void *ctx)
{
    (void)ctx;
    return 0;
}

struct ref_wio ref_wmem_io(struct ref_wmem *m) { return (struct ref_wio){wmem_write, wmem_truncate, wmem_flush, m}; }

int ref_wmem_read(void *ctx, void *buf, size_t len, uint64_t off)
{
    const struct ref_wmem *m = ctx;
    uint8_t *p = buf;
    while (len > 0) {
        size_t in = (size_t)(off % SEC), n = SEC - in < len ? SEC - in : len;
        const uint8_t *pg = off < m->size ? pm_get(&m->pages, off / SEC) : NULL;
        if (pg)
            memcpy(p, pg + in, n);
        else
            memset(p, 0, n);
        p += n;
        off += n;
        len -= n;
    }
    return 0;
}
