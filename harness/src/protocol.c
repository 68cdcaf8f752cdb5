/*
 * protocol.c - the protocol checker (protocol.h): the VHDX log's ordering
 * rules proved on a trace's operations, one pass, no crash states.
 *
 * THE MODEL.  The device is the simdisk's (simdisk.h): a write changes the
 * volatile image and is pending until the next flush; a flush makes every
 * pending write and size change durable, so right after a flush the durable
 * image equals the volatile one.  An ordering rule is therefore a statement
 * about flush epochs: "B was issued after a flush that followed A" means A
 * is durable before B can be, under every power-loss model (a reordering
 * device may persist any subset of an epoch's writes, never a write of a
 * later epoch without the earlier epochs).
 *
 * THE STATE, per operation i:
 *   vol, dur     the volatile and durable images (512-byte sector maps over
 *                the trace's base; values are pointers into the trace or
 *                into copies that never change, so they key the
 *                reference's checksum memo)
 *   headers      both copies decoded by the reference, in each image; the
 *                current one names the LogGuid, LogOffset, LogLength
 *   layout       region tables, metadata and BAT regions, block geometry
 *                (ref_image_open of the volatile image; decoded again when
 *                a region table or the metadata table is written)
 *   ring         the volatile ring at the current header's log: which
 *                4 KiB positions start with "loge", which entry instance
 *                owns each sector; a write that touches an entry's extent
 *                re-validates it (ref_entry_decode: the reference's rule),
 *                so an entry "completes" at the write that makes it valid
 *                and "dies" at the write that breaks it
 *   durable log  at every flush that changed the durable ring or headers:
 *                the reference's search of the durable ring under the
 *                durable header's LogGuid (ref_log_replay), its active
 *                sequence (ring span) and replay (per 4 KiB page, every
 *                byte image a descriptor of the sequence writes there)
 *   logs         per LogGuid: the pages its entries described that are not
 *                yet durably in their final place ("pending"), with the
 *                entry and sequence number that last described each
 *
 * THE RULES (each an INV_PROTO_* invariant; docs/protocol.md):
 *   apply-before-log-durable   a final-place write changes bytes that the
 *                durable replay would not restore to exactly those bytes
 *   logguid-cleared-early / clear-unapplied   the current header moves away
 *                from LogGuid G while a pending page of G is applied only
 *                in the volatile image / not at all
 *   header-before-entry        the current header moves to LogGuid G while
 *                the durable ring holds no valid sequence under G
 *   header-copies-one-epoch    both header copies written in one epoch
 *   first-64k-written          a write below 64 KiB after creation
 *   payload-before-bat         an entry completes that maps block b to X
 *                (a changed BAT entry, FULLY or PARTIALLY_PRESENT) while a
 *                write into [X, X+used) is pending or the durable file is
 *                shorter than X+used
 *   tail-past-unapplied        an entry's Tail does not lead to it through
 *                valid linked entries, or skips a pending page of its log
 *   overwrite-live-entry       a ring write changes a sector of the
 *                durable active sequence while the durable header names it
 *   flushed-offset / last-offset   FlushedFileOffset above the durable file
 *                size; LastFileOffset below the end of a structure
 *   flush-ack-before-durable   (workload traces) a flush, close or reopen
 *                returned success with a write still pending
 *
 * Invariants of the code: every check reads state as of the operation it
 * judges (pre-write checks before the volatile image changes); instances
 * never overlap (a valid entry's non-first sectors begin with "desc", "zero"
 * or "data", never "loge"); `work` counts every loop step whose bound comes
 * from the trace and the walk stops at the limit.
 */
#include "harness/protocol.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/secmap.h"
#include "ref/ref.h"

#define PAGE 4096u
#define MIB (UINT64_C(1) << 20)
#define KIB64 (UINT64_C(64) << 10)
#define HEADER_OFF(k) ((k) ? UINT64_C(128) << 10 : UINT64_C(64) << 10)
#define REGION_OFF(k) ((k) ? UINT64_C(256) << 10 : UINT64_C(192) << 10)
#define LOG_MAX (UINT32_C(256) << 20) /* the longest ring followed (the reference's limit) */
#define MAX_LOGS 4096u                /* distinct LogGuids followed */
#define BAT_PAGES_MAX (1u << 16)      /* BAT pages whose highest block end is kept */
#define NONE INT64_MAX
#define BDEV_LIMIT (UINT64_C(1) << 62) /* the largest offset + length a write may reach */

static const uint8_t ZERO_PAGE[PAGE];

/* ---- small helpers ----------------------------------------------------------- */
static uint64_t min64(uint64_t a, uint64_t b) { return a < b ? a : b; }
static uint64_t max64(uint64_t a, uint64_t b) { return a > b ? a : b; }
static int is_zero_guid(const uint8_t g[16])
{
    for (int i = 0; i < 16; i++)
        if (g[i])
            return 0;
    return 1;
}
static void guid_str(const uint8_t g[16], char out[40])
{
    /* mixed-endian text form (first three fields little-endian) */
    snprintf(out, 40, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", g[3], g[2], g[1],
             g[0], g[5], g[4], g[7], g[6], g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
}

/* ---- images ------------------------------------------------------------------- */
/* A view of the device: the sectors written since the start over the base. */
struct img {
    struct secmap m;          /* sectors written (values immutable: trace bytes or copies) */
    const struct secmap *base;
    uint64_t base_limit;      /* base sectors at or past this read as zeros (after a shrink) */
    uint64_t size;            /* bytes */
};

static void img_init(struct img *im, const struct trace *t)
{
    secmap_init(&im->m);
    im->base = &t->base;
    im->size = t->base_size;
    im->base_limit = (t->base_size + SECTOR - 1) / SECTOR;
}

static const uint8_t *img_sector(const struct img *im, uint64_t s)
{
    if (s >= im->size / SECTOR + (im->size % SECTOR != 0))
        return SECTOR_ZERO;
    const uint8_t *v = secmap_get(&im->m, s);
    if (!v && s < im->base_limit)
        v = secmap_get(im->base, s);
    return v ? v : SECTOR_ZERO;
}

static void img_read(const struct img *im, void *buf, uint64_t len, uint64_t off)
{
    uint8_t *p = buf;
    while (len > 0) {
        uint64_t s = off / SECTOR, in = off % SECTOR;
        uint64_t n = min64(SECTOR - in, len);
        memcpy(p, img_sector(im, s) + in, (size_t)n);
        p += n;
        off += n;
        len -= n;
    }
}

/* The 4 KiB at off (4 KiB aligned) in place when its sectors lie contiguous
 * in memory, else NULL.  Such pointers name their bytes for the checker's
 * life (trace bytes, base bytes, copies that are never changed), so they
 * may key the reference's checksum memo. */
static const uint8_t *img_page_in_place(const struct img *im, uint64_t off)
{
    const uint8_t *p[8];
    int zero = 1, contiguous = 1;
    for (int k = 0; k < 8; k++) {
        p[k] = img_sector(im, off / SECTOR + (uint64_t)k);
        zero &= p[k] == SECTOR_ZERO;
        contiguous &= p[k] == p[0] + SECTOR * k;
    }
    return zero ? ZERO_PAGE : contiguous ? p[0] : NULL;
}

/* The 4 KiB at off: in place, or copied into scratch. */
static const uint8_t *img_page(const struct img *im, uint64_t off, uint8_t *scratch)
{
    const uint8_t *p = img_page_in_place(im, off);
    if (p)
        return p;
    img_read(im, scratch, PAGE, off);
    return scratch;
}

static int img_write(struct img *im, uint64_t off, const uint8_t *data, uint64_t len)
{
    uint64_t end = off + len;
    for (uint64_t s = off / SECTOR; len && s * SECTOR < end; s++) {
        uint64_t lo = max64(s * SECTOR, off), hi = min64((s + 1) * SECTOR, end);
        int rc;
        if (hi - lo == SECTOR) {
            rc = secmap_put(&im->m, s, data + (lo - off));
        } else {
            uint8_t tmp[SECTOR];
            memcpy(tmp, img_sector(im, s), SECTOR);
            memcpy(tmp + (lo - s * SECTOR), data + (lo - off), (size_t)(hi - lo));
            rc = secmap_put_copy(&im->m, s, tmp);
        }
        if (rc != 0)
            return -ENOMEM;
    }
    if (end > im->size)
        im->size = end;
    return 0;
}

static int img_truncate(struct img *im, uint64_t size)
{
    if (size < im->size) {
        uint64_t keep = size / SECTOR;
        if (size % SECTOR) { /* the sector the new end cuts: its tail reads zeros from now on */
            uint8_t tmp[SECTOR];
            memcpy(tmp, img_sector(im, keep), SECTOR);
            memset(tmp + size % SECTOR, 0, SECTOR - size % SECTOR);
            if (secmap_put_copy(&im->m, keep, tmp) != 0)
                return -ENOMEM;
            secmap_drop_from(&im->m, keep + 1);
        } else {
            secmap_drop_from(&im->m, keep);
        }
        im->base_limit = min64(im->base_limit, keep);
    }
    im->size = size;
    return 0;
}

/* Do the images' bytes [off, off+len) equal buf? */
static int img_equal(const struct img *im, const uint8_t *buf, uint64_t len, uint64_t off)
{
    while (len > 0) {
        uint64_t s = off / SECTOR, in = off % SECTOR;
        uint64_t n = min64(SECTOR - in, len);
        if (memcmp(img_sector(im, s) + in, buf, (size_t)n) != 0)
            return 0;
        buf += n;
        off += n;
        len -= n;
    }
    return 1;
}

/* ---- page maps ------------------------------------------------------------------ */
/* u64 key -> value, open addressing with linear probing and backward-shift
 * deletion. */
struct pval {
    const uint8_t *bytes; /* 4 KiB (ZERO_PAGE for a zero update) */
    uint64_t seq;         /* sequence number of the entry that described it */
    int64_t op;           /* an operation index (meaning per map) */
    uint32_t entry;       /* instance index + 1 (0: none) */
    uint32_t next;        /* chain (coverage map) */
};

#define PMAP_EMPTY UINT64_MAX

struct pmap {
    uint64_t *keys;
    struct pval *vals;
    size_t cap, count;
};

static size_t pmap_slot(const struct pmap *m, uint64_t key)
{
    return (size_t)((key * UINT64_C(0x9E3779B97F4A7C15)) >> 20) & (m->cap - 1);
}

static struct pval *pmap_get(const struct pmap *m, uint64_t key)
{
    if (!m->count)
        return NULL;
    for (size_t i = pmap_slot(m, key);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == key)
            return &m->vals[i];
        if (m->keys[i] == PMAP_EMPTY)
            return NULL;
    }
}

static int pmap_grow(struct pmap *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 64;
    uint64_t *nk = malloc(ncap * sizeof *nk);
    struct pval *nv = malloc(ncap * sizeof *nv);
    if (!nk || !nv) {
        free(nk);
        free(nv);
        return -ENOMEM;
    }
    for (size_t i = 0; i < ncap; i++)
        nk[i] = PMAP_EMPTY;
    struct pmap n = {nk, nv, ncap, 0};
    for (size_t i = 0; i < m->cap; i++) {
        if (m->keys[i] == PMAP_EMPTY)
            continue;
        size_t j = pmap_slot(&n, m->keys[i]);
        while (n.keys[j] != PMAP_EMPTY)
            j = (j + 1) & (ncap - 1);
        n.keys[j] = m->keys[i];
        n.vals[j] = m->vals[i];
        n.count++;
    }
    free(m->keys);
    free(m->vals);
    *m = n;
    return 0;
}

/* The value for key, inserted zeroed when absent; NULL when out of memory. */
static struct pval *pmap_put(struct pmap *m, uint64_t key)
{
    struct pval *v = pmap_get(m, key);
    if (v)
        return v;
    if ((m->count + 1) * 2 > m->cap && pmap_grow(m) != 0)
        return NULL;
    size_t i = pmap_slot(m, key);
    while (m->keys[i] != PMAP_EMPTY)
        i = (i + 1) & (m->cap - 1);
    m->keys[i] = key;
    memset(&m->vals[i], 0, sizeof m->vals[i]);
    m->count++;
    return &m->vals[i];
}

static void pmap_del(struct pmap *m, uint64_t key)
{
    if (!m->count)
        return;
    size_t i = pmap_slot(m, key);
    while (m->keys[i] != key) {
        if (m->keys[i] == PMAP_EMPTY)
            return;
        i = (i + 1) & (m->cap - 1);
    }
    m->keys[i] = PMAP_EMPTY;
    m->count--;
    /* backward shift: move later members of the cluster into the hole when
     * their home slot does not lie between the hole and them */
    for (size_t j = (i + 1) & (m->cap - 1); m->keys[j] != PMAP_EMPTY; j = (j + 1) & (m->cap - 1)) {
        size_t home = pmap_slot(m, m->keys[j]);
        int between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (between)
            continue;
        m->keys[i] = m->keys[j];
        m->vals[i] = m->vals[j];
        m->keys[j] = PMAP_EMPTY;
        i = j;
    }
}

static void pmap_clear(struct pmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        m->keys[i] = PMAP_EMPTY;
    m->count = 0;
}

static void pmap_free(struct pmap *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/* ---- checker state ----------------------------------------------------------------- */
/* One log entry as it appeared in the volatile ring. */
struct inst {
    struct ref_entry e;   /* decoded by the reference (descriptors, restored pages) */
    uint32_t pos;         /* ring offset in bytes */
    uint32_t sectors;     /* EntryLength / 4096 */
    uint32_t log;         /* index into logs, or UINT32_MAX when not followed */
    int64_t first_op;     /* earliest write among those that last wrote its sectors */
    int64_t done_op;      /* the write that made it valid (PROTOCOL_BASE_OP: in the image already) */
    int64_t dur_op;       /* the flush that made it durable (NONE: never) */
    int64_t kill_op;      /* the write that broke it (NONE: still whole) */
    int alive;            /* whole in the volatile ring */
};

/* One LogGuid and the pages its entries describe that are not yet durably
 * in their final place. */
struct plog {
    uint8_t guid[16];
    struct pmap pend;      /* page -> {expected bytes, seq, entry, op = the write that applied it} */
    uint64_t entries;      /* completed entries */
    uint32_t first_entry;  /* instance index + 1 of its first entry (0: none yet) */
    size_t hbe_violation;  /* a header-before-entry violation to complete with that entry (index + 1) */
};

struct ring {
    uint64_t want_off;     /* the log the current header names (followed or not) */
    uint32_t want_len;
    uint64_t off;          /* LogOffset */
    uint32_t len, n;       /* LogLength, sectors (0: no ring followed) */
    uint8_t *loge;         /* [n] the volatile sector starts with "loge" */
    uint32_t *start;       /* [n] instance index + 1 of the live entry starting here */
    uint32_t *owner;       /* [n] instance index + 1 of the live entry holding this sector */
    int64_t *sec_op;       /* [n] the write that last wrote this sector */
    uint32_t *stamp;       /* [n] de-duplication of positions examined per write */
    uint32_t cur_stamp;
    uint32_t *loges;       /* positions with loge set (unordered) */
    uint32_t *loge_at;     /* [n] index in loges + 1 */
    size_t n_loges;
};

struct layout {
    int known;
    uint64_t bat_off, meta_off;
    uint32_t bat_len, meta_len;
    uint32_t block_size, logical_sector;
    uint64_t virtual_size, chunk_ratio, payload_blocks; /* 0 when the geometry is unknown */
    uint64_t *page_max;    /* per BAT page: the end of its furthest mapped block */
    size_t n_pages;        /* 0: not kept (BAT larger than BAT_PAGES_MAX pages) */
};

/* The durable log as the reference reads it. */
struct dlog {
    int have;              /* a search ran and found an active sequence */
    uint8_t guid[16];      /* the durable header's LogGuid (zero: no log) */
    uint64_t off;          /* its LogOffset, LogLength */
    uint32_t len;
    struct ref_result res; /* the search and replay */
    struct pmap cov;       /* page -> chain of byte images the replay writes there */
    struct pval *nodes;    /* chain storage (next: index + 1) */
    size_t n_nodes, cap_nodes;
    uint32_t span_start, span_n; /* the active sequence's sectors */
    uint64_t tail_seq;     /* its tail entry's sequence number */
    int64_t since;         /* the flush whose durable state this is */
};

struct ck {
    const struct trace *t;
    struct protocol_opts o;
    struct protocol_report *r;
    int64_t i;             /* the operation being judged */
    uint64_t work;
    int stop;              /* work limit or out of memory */
    int oom;

    struct img vol, dur;
    int created;
    struct ref_header vh[2], dh[2];
    int vcur, dcur;        /* current header index or -1 */
    uint8_t vguid[16];     /* the LogGuid the writer's current header names */
    int64_t last_hdr_op;   /* the last header write */

    struct layout lay;
    struct ring ring;
    struct inst *in;
    size_t n_in, cap_in;
    struct plog *logs;
    size_t n_logs, cap_logs;
    struct pmap logged;    /* page -> latest bytes an entry described {bytes, entry} */
    struct dlog dl;
    struct ref_memo *memo;

    /* the epoch since the last flush */
    int64_t *pending;      /* W and T operations */
    size_t n_pending, cap_pending;
    int64_t last_flush;    /* NONE: none yet */
    int64_t ep_hdr_op[2];  /* first write of each header copy in this epoch */
    int ep_hdr_reported;
    int ep_dur_dirty;      /* the epoch wrote a header or the durable ring: search again at the flush */
    int ep_layout_dirty;   /* a region table or the metadata table was written */
    unsigned layout_tries; /* decodes tried while the layout is unknown */
    uint64_t *ep_pages;    /* final-place pages written in this epoch */
    size_t n_ep_pages, cap_ep_pages;
    int vsync;             /* inside a workload flush, close or reopen (B record seen) */
    uint32_t vsync_vop;
    int64_t vsync_op;      /* its B record */
    uint32_t *fresh;       /* instances completed in this epoch (index) */
    size_t n_fresh, cap_fresh;

    uint8_t **owned;       /* pages the checker copied (a durable replay's, kept past its search) */
    size_t n_owned, cap_owned;
    uint8_t *gather;       /* an entry's sectors laid out contiguously */
    size_t cap_gather;
    uint8_t scratch[PAGE], scratch2[PAGE];
};

static int spend(struct ck *c, uint64_t steps)
{
    c->work += steps;
    if (c->work > c->o.work_limit && !c->stop) {
        c->stop = 1;
        c->r->incomplete = 1;
        snprintf(c->r->note, sizeof c->r->note, "work limit (%llu steps) reached at operation %lld",
                 (unsigned long long)c->o.work_limit, (long long)c->i);
    }
    return c->stop;
}

static void nomem(struct ck *c)
{
    c->oom = 1;
    c->stop = 1;
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 16;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, n * size);
    if (!q)
        return -ENOMEM;
    *p = q;
    *cap = n;
    return 0;
}

/* A copy of 4 KiB that lives as long as the checker (NULL: out of memory). */
static const uint8_t *own_page(struct ck *c, const uint8_t *bytes)
{
    uint8_t *p = malloc(PAGE);
    if (!p || grow((void **)&c->owned, &c->cap_owned, c->n_owned + 1, sizeof *c->owned) != 0) {
        free(p);
        nomem(c);
        return NULL;
    }
    memcpy(p, bytes, PAGE);
    c->owned[c->n_owned++] = p;
    return p;
}

/* ---- reporting ------------------------------------------------------------------------ */
static size_t report(struct ck *c, enum invariant inv, int64_t op, const int64_t *after, size_t n_after,
                     uint64_t off, uint64_t len, const char *fmt, ...) __attribute__((format(printf, 8, 9)));
/* Counts the violation; keeps it in detail while the invariant's quota
 * lasts.  Returns its index + 1 in r->v, or 0 when not kept. */
static size_t report(struct ck *c, enum invariant inv, int64_t op, const int64_t *after, size_t n_after,
                     uint64_t off, uint64_t len, const char *fmt, ...)
{
    struct protocol_report *r = c->r;
    r->count[inv]++;
    r->total++;
    if (r->count[inv] > c->o.max_per_invariant)
        return 0;
    if (r->n == r->cap) {
        size_t cap = r->cap;
        if (grow((void **)&r->v, &cap, r->n + 1, sizeof *r->v) != 0) {
            nomem(c);
            return 0;
        }
        r->cap = cap;
    }
    struct protocol_violation *v = &r->v[r->n++];
    memset(v, 0, sizeof *v);
    v->inv = inv;
    v->op = op;
    for (size_t k = 0; k < PROTOCOL_AFTER_MAX; k++)
        v->after[k] = k < n_after ? after[k] : PROTOCOL_NO_OP;
    v->offset = off;
    v->length = len;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->detail, sizeof v->detail, fmt, ap);
    va_end(ap);
    return r->n;
}

static const char *verdict_name(enum ref_verdict v)
{
    switch (v) {
    case REF_OK: return "an active sequence";
    case REF_NO_SEQUENCE: return "no valid sequence";
    case REF_AMBIGUOUS: return "two heads with the same sequence number";
    case REF_TRUNCATED: return "the file is shorter than its FlushedFileOffset";
    default: return "a descriptor targets a forbidden place";
    }
}

/* "op N", "the base image" or "never" for a detail sentence. */
static const char *opname(int64_t op, char buf[32])
{
    if (op == PROTOCOL_BASE_OP)
        return "the base image";
    if (op == NONE)
        return "never";
    snprintf(buf, 32, "op %lld", (long long)op);
    return buf;
}

/* ---- logs by LogGuid ----------------------------------------------------------------- */
static uint32_t log_find(const struct ck *c, const uint8_t g[16])
{
    for (size_t k = c->n_logs; k-- > 0;)
        if (memcmp(c->logs[k].guid, g, 16) == 0)
            return (uint32_t)k;
    return UINT32_MAX;
}

static uint32_t log_add(struct ck *c, const uint8_t g[16])
{
    uint32_t k = log_find(c, g);
    if (k != UINT32_MAX)
        return k;
    if (c->n_logs >= MAX_LOGS) {
        if (!c->r->incomplete) {
            c->r->incomplete = 1;
            snprintf(c->r->note, sizeof c->r->note, "more than %u LogGuids: later ones are not followed", MAX_LOGS);
        }
        return UINT32_MAX;
    }
    if (grow((void **)&c->logs, &c->cap_logs, c->n_logs + 1, sizeof *c->logs) != 0) {
        nomem(c);
        return UINT32_MAX;
    }
    struct plog *l = &c->logs[c->n_logs];
    memset(l, 0, sizeof *l);
    memcpy(l->guid, g, 16);
    c->r->st.logs++;
    return (uint32_t)c->n_logs++;
}

/* ---- headers ----------------------------------------------------------------------- */
static void headers_decode(struct ck *c, const struct img *im, struct ref_header h[2], int *cur)
{
    for (int k = 0; k < 2; k++) {
        img_read(im, c->scratch, PAGE, HEADER_OFF(k));
        ref_header_decode(c->scratch, &h[k]);
    }
    *cur = ref_header_current(h);
}

/* ---- layout ------------------------------------------------------------------------ */
static int src_read_img(void *ctx, void *buf, size_t len, uint64_t off)
{
    img_read(ctx, buf, len, off);
    return 0;
}

/* The end of the block a BAT entry maps (0 when it maps none): payload
 * entries in state FULLY_PRESENT or PARTIALLY_PRESENT (2.5.1.1). */
static uint64_t bat_block_end(const struct layout *l, uint64_t index, uint64_t e, uint64_t *block)
{
    if (!l->payload_blocks || (index + 1) % (l->chunk_ratio + 1) == 0)
        return 0;
    unsigned state = (unsigned)(e & 7);
    if (state != REF_BAT_FULLY_PRESENT && state != REF_BAT_PARTIALLY_PRESENT)
        return 0;
    uint64_t b = index - index / (l->chunk_ratio + 1);
    if (b >= l->payload_blocks)
        return 0;
    uint64_t used = min64(l->block_size, l->virtual_size - b * l->block_size);
    if (block)
        *block = b;
    return min64((e >> 20) << 20, BDEV_LIMIT) + used; /* FileOffsetMB has 44 bits: no wrap */
}

static uint64_t bat_page_max(const struct layout *l, uint64_t page_index, const uint8_t *bytes)
{
    uint64_t m = 0;
    for (uint64_t j = 0; j < PAGE / 8; j++)
        m = max64(m, bat_block_end(l, page_index * (PAGE / 8) + j, ref_le64(bytes + 8 * j), NULL));
    return m;
}

static void layout_free(struct layout *l)
{
    free(l->page_max);
    memset(l, 0, sizeof *l);
}

/* Reads the layout from the volatile image (the writer's view, with its
 * pending log replayed).  Keeps the old layout when the image cannot be
 * read as a VHDX right now. */
static void layout_decode(struct ck *c)
{
    struct ref_src src = {src_read_img, &c->vol, c->vol.size, NULL, NULL};
    struct ref_image im;
    int rc = ref_image_open(&im, &src);
    spend(c, 1024 + (im.bat_scanned ? im.bat_entries : 0));
    if (rc != 0 || im.status == REF_INVALID || !im.bat_length || !im.meta_length) {
        ref_image_free(&im);
        return;
    }
    struct layout n;
    memset(&n, 0, sizeof n);
    n.known = 1;
    n.bat_off = im.bat_offset;
    n.bat_len = im.bat_length;
    n.meta_off = im.meta_offset;
    n.meta_len = im.meta_length;
    n.block_size = im.block_size;
    n.logical_sector = im.logical_sector;
    n.virtual_size = im.virtual_size;
    const uint32_t bs = im.block_size;
    if (bs >= MIB && bs <= 256 * MIB && !(bs & (bs - 1)) && (im.logical_sector == 512 || im.logical_sector == 4096) &&
        im.virtual_size && im.virtual_size <= REF_MAX_VIRTUAL) {
        n.chunk_ratio = ((UINT64_C(1) << 23) * im.logical_sector) / bs;
        n.payload_blocks = (im.virtual_size + bs - 1) / bs;
    }
    if (n.payload_blocks && n.bat_len / PAGE <= BAT_PAGES_MAX) {
        n.n_pages = n.bat_len / PAGE;
        n.page_max = calloc(n.n_pages ? n.n_pages : 1, sizeof *n.page_max);
        if (!n.page_max) {
            ref_image_free(&im);
            nomem(c);
            return;
        }
        for (size_t p = 0; p < n.n_pages && !spend(c, 64); p++) {
            const uint64_t off = n.bat_off + p * PAGE;
            const struct pval *lg = pmap_get(&c->logged, off / PAGE);
            const uint8_t *b = lg ? lg->bytes : c->scratch;
            if (!lg && ref_image_read(&im, c->scratch, PAGE, off) != 0)
                memset(c->scratch, 0, PAGE);
            n.page_max[p] = bat_page_max(&n, p, b);
        }
    }
    ref_image_free(&im);
    layout_free(&c->lay);
    c->lay = n;
}

static uint64_t layout_block_max(const struct layout *l)
{
    uint64_t m = 0;
    for (size_t p = 0; p < l->n_pages; p++)
        m = max64(m, l->page_max[p]);
    return m;
}

/* The places a write may touch only through the log (2.3: "all metadata
 * except the header"): both region table copies, the metadata region, the
 * BAT region.  Returns the count of ranges put in lo/hi. */
static int final_ranges(const struct layout *l, uint64_t lo[4], uint64_t hi[4])
{
    int n = 0;
    lo[n] = REGION_OFF(0);
    hi[n++] = REGION_OFF(1) + KIB64;
    if (l->known) {
        lo[n] = l->meta_off;
        hi[n++] = l->meta_off + l->meta_len;
        lo[n] = l->bat_off;
        hi[n++] = l->bat_off + l->bat_len;
    }
    return n;
}

/* ---- searching a ring with the reference ------------------------------------------- */
static int search_ring(struct ck *c, const struct img *im, uint64_t off, uint32_t len, const uint8_t guid[16],
                       struct ref_result *res)
{
    memset(res, 0, sizeof *res);
    res->verdict = REF_NO_SEQUENCE;
    if (len == 0 || len % PAGE || len > LOG_MAX || off % PAGE || off > BDEV_LIMIT - len)
        return 0;
    const uint32_t n = len / PAGE;
    const uint8_t **sec = malloc(n * sizeof *sec);
    uint8_t *stable = malloc(n);
    uint8_t *copies = NULL;
    int rc = 0;
    if (!sec || !stable) {
        rc = -ENOMEM;
        goto out;
    }
    uint32_t unmapped = 0;
    for (uint32_t k = 0; k < n; k++) {
        sec[k] = img_page_in_place(im, off + (uint64_t)k * PAGE);
        stable[k] = sec[k] != NULL;
        unmapped += !sec[k];
    }
    if (unmapped && !(copies = malloc((size_t)unmapped * PAGE))) {
        rc = -ENOMEM;
        goto out;
    }
    for (uint32_t k = 0, u = 0; k < n; k++)
        if (!sec[k]) {
            uint8_t *dst = copies + (size_t)u++ * PAGE;
            img_read(im, dst, PAGE, off + (uint64_t)k * PAGE);
            sec[k] = dst;
        }
    struct ref_ring ring = {sec, n, stable, c->memo};
    if (ref_log_replay(&ring, guid, off, im->size, res) != 0)
        rc = -ENOMEM;
    c->r->st.searches++;
    spend(c, (uint64_t)n * 16);
out:
    free(sec);
    free(stable);
    free(copies);
    return rc;
}

/* ---- the durable log ------------------------------------------------------------------ */
static int cov_add(struct ck *c, uint64_t page, const uint8_t *bytes)
{
    struct dlog *d = &c->dl;
    struct pval *v = pmap_put(&d->cov, page / PAGE);
    if (!v || grow((void **)&d->nodes, &d->cap_nodes, d->n_nodes + 1, sizeof *d->nodes) != 0)
        return -ENOMEM;
    struct pval *node = &d->nodes[d->n_nodes++];
    memset(node, 0, sizeof *node);
    node->bytes = bytes;
    node->next = v->next;
    v->next = (uint32_t)d->n_nodes;
    return 0;
}

/* Does the durable replay write exactly these bytes at [page+lo, +len)? */
static int covered(const struct ck *c, uint64_t page, uint64_t lo, uint64_t len, const uint8_t *src)
{
    const struct pval *v = pmap_get(&c->dl.cov, page / PAGE);
    for (uint32_t k = v ? v->next : 0; k; k = c->dl.nodes[k - 1].next)
        if (memcmp(c->dl.nodes[k - 1].bytes + lo, src, (size_t)len) == 0)
            return 1;
    return 0;
}

/* Calls fn for every 4 KiB page of [off, off+len) that lies in a
 * final-place range (whole pages: descriptors are 4 KiB aligned). */
#define FOR_FINAL_PAGES(c, off, len, P)                                                                  \
    for (int r_ = 0, nr_ = final_ranges(&(c)->lay, lo_, hi_); r_ < nr_; r_++)                          \
        for (uint64_t P = max64((off) / PAGE * PAGE, lo_[r_] / PAGE * PAGE),                         \
                      e_##P = min64((off) + (len), hi_[r_]);                                           \
             P < e_##P && !spend((c), 1); P += PAGE)

/* Searches the durable ring under the durable header's LogGuid: the active
 * sequence, its span and the replay's byte images per final-place page. */
static void dlog_refresh(struct ck *c, int64_t since)
{
    struct dlog *d = &c->dl;
    uint64_t lo_[4], hi_[4];
    ref_result_free(&d->res);
    pmap_clear(&d->cov);
    d->n_nodes = 0;
    d->have = 0;
    d->since = since;
    memset(d->guid, 0, 16);
    if (c->dcur < 0)
        return;
    const struct ref_header *h = &c->dh[c->dcur];
    memcpy(d->guid, h->log_guid, 16);
    d->off = h->log_offset;
    d->len = h->log_length;
    if (is_zero_guid(d->guid))
        return;
    if (search_ring(c, &c->dur, d->off, d->len, d->guid, &d->res) != 0) {
        nomem(c);
        return;
    }
    if (d->res.verdict != REF_OK)
        return;
    for (size_t k = 0; k < d->res.n_writes; k++) {
        const struct ref_write *w = &d->res.writes[k];
        FOR_FINAL_PAGES(c, w->offset, w->length, P) {
            if (cov_add(c, P, w->data ? w->data + (P - w->offset) : ZERO_PAGE) != 0) {
                nomem(c);
                return;
            }
        }
    }
    uint8_t hb[64];
    img_read(&c->dur, hb, sizeof hb, d->off + d->res.head_position);
    const uint32_t tail = ref_le32(hb + 12), hlen = ref_le32(hb + 8);
    const uint32_t end = (uint32_t)(((uint64_t)d->res.head_position + hlen) % d->len);
    const uint32_t bytes = (end + d->len - tail) % d->len;
    d->span_start = tail / PAGE;
    d->span_n = bytes ? bytes / PAGE : d->len / PAGE;
    d->tail_seq = d->res.head_sequence - (d->res.entries ? d->res.entries - 1 : 0);
    d->have = 1;
}

/* ---- the volatile ring and its entries -------------------------------------------------- */
static void ring_free(struct ring *g)
{
    free(g->start);
    free(g->owner);
    free(g->sec_op);
    free(g->stamp);
    free(g->loges);
    free(g->loge_at);
    memset(g, 0, sizeof *g);
}

static void loge_set(struct ring *g, uint32_t p, int on)
{
    if (on && !g->loge_at[p]) {
        g->loges[g->n_loges++] = p;
        g->loge_at[p] = (uint32_t)g->n_loges;
    } else if (!on && g->loge_at[p]) {
        uint32_t k = g->loge_at[p] - 1, last = g->loges[--g->n_loges];
        g->loges[k] = last;
        g->loge_at[last] = k + 1;
        g->loge_at[p] = 0;
    }
}

static const uint8_t *ring_sector(struct ck *c, uint32_t p, uint8_t *scratch)
{
    return img_page(&c->vol, c->ring.off + (uint64_t)p * PAGE, scratch);
}

/* The entry at ring position p as the reference decodes it from the
 * volatile ring: 1 valid (e filled), 0 not, -1 out of memory. */
static int entry_read(struct ck *c, uint32_t p, struct ref_entry *e)
{
    struct ring *g = &c->ring;
    memset(e, 0, sizeof *e);
    const uint8_t *h = ring_sector(c, p, c->scratch);
    const uint32_t len = ref_le32(h + 8), count = ref_le32(h + 24);
    const uint64_t seq = ref_le64(h + 16);
    if (len == 0 || len % PAGE || len > g->len)
        return 0;
    const uint32_t k = len / PAGE;
    const uint64_t dsec = count <= 126 ? 1 : 1 + ((uint64_t)count - 126 + 127) / 128;
    if (dsec > k)
        return 0;
    /* cheap first: an entry still being written has stale data sectors
     * (the full rule, checksum included, is the reference's) */
    for (uint32_t j = (uint32_t)dsec; j < k; j++) {
        const uint8_t *s = ring_sector(c, (p + j) % g->n, c->scratch2);
        if (memcmp(s, "data", 4) != 0 || ref_le32(s + 4092) != (uint32_t)seq)
            return 0;
    }
    spend(c, k);
    if (grow((void **)&c->gather, &c->cap_gather, (size_t)k * PAGE, 1) != 0)
        return -1;
    for (uint32_t j = 0; j < k; j++)
        img_read(&c->vol, c->gather + (size_t)j * PAGE, PAGE, g->off + (uint64_t)((p + j) % g->n) * PAGE);
    spend(c, (uint64_t)k * 8);
    return ref_entry_decode(c->gather, (size_t)k * PAGE, g->len, e);
}

static void inst_kill(struct ck *c, uint32_t idx)
{
    struct inst *x = &c->in[idx];
    struct ring *g = &c->ring;
    x->alive = 0;
    x->kill_op = c->i;
    if (!g->n)
        return;
    const uint32_t p = x->pos / PAGE;
    if (g->start[p] == idx + 1)
        g->start[p] = 0;
    for (uint32_t j = 0; j < x->sectors; j++)
        if (g->owner[(p + j) % g->n] == idx + 1)
            g->owner[(p + j) % g->n] = 0;
}

static void entry_checks(struct ck *c, uint32_t idx);

/* A new instance from e (ownership taken).  init: it was in the image when
 * the checker started following it (no checks; done_op says when). */
static void inst_new(struct ck *c, uint32_t p, struct ref_entry *e, int64_t done_op, int init)
{
    struct ring *g = &c->ring;
    if (grow((void **)&c->in, &c->cap_in, c->n_in + 1, sizeof *c->in) != 0 ||
        grow((void **)&c->fresh, &c->cap_fresh, c->n_fresh + 1, sizeof *c->fresh) != 0) {
        ref_entry_free(e);
        nomem(c);
        return;
    }
    const uint32_t idx = (uint32_t)c->n_in++;
    struct inst *x = &c->in[idx];
    memset(x, 0, sizeof *x);
    x->e = *e;
    x->pos = p * PAGE;
    x->sectors = e->length / PAGE;
    x->done_op = done_op;
    x->first_op = done_op;
    x->dur_op = done_op == PROTOCOL_BASE_OP ? PROTOCOL_BASE_OP : NONE;
    x->kill_op = NONE;
    x->alive = 1;
    for (uint32_t j = 0; j < x->sectors; j++) {
        const uint32_t s = (p + j) % g->n;
        g->owner[s] = idx + 1;
        if (!init && g->sec_op[s] < x->first_op)
            x->first_op = g->sec_op[s];
    }
    g->start[p] = idx + 1;
    const uint32_t log = log_add(c, e->log_guid);
    c->in[idx].log = log;
    if (x->dur_op == NONE)
        c->fresh[c->n_fresh++] = idx;
    if (!init) {
        c->r->st.entries++;
        entry_checks(c, idx);
    }
}

/* Re-validates the entry starting at p after a write touched it. */
static void examine(struct ck *c, uint32_t p, int64_t done_op, int init)
{
    struct ring *g = &c->ring;
    struct ref_entry e;
    int v = g->loge_at[p] ? entry_read(c, p, &e) : 0;
    if (v < 0) {
        nomem(c);
        return;
    }
    const uint32_t old = g->start[p];
    if (old) {
        const struct inst *x = &c->in[old - 1];
        if (v == 1 && x->e.checksum == e.checksum && x->e.sequence == e.sequence && x->e.length == e.length &&
            memcmp(x->e.log_guid, e.log_guid, 16) == 0) {
            ref_entry_free(&e); /* rewritten as it was */
            return;
        }
        inst_kill(c, old - 1);
    }
    if (v == 1)
        inst_new(c, p, &e, done_op, init);
}

/* The sectors an entry starting at p claims (its EntryLength, or 1). */
static uint32_t claimed(struct ck *c, uint32_t p)
{
    const uint8_t *h = img_sector(&c->vol, (c->ring.off + (uint64_t)p * PAGE) / SECTOR);
    uint32_t len = ref_le32(h + 8);
    return len == 0 || len % PAGE || len > c->ring.len ? 1 : len / PAGE;
}

/* Follows the ring at [off, off+len) of the volatile image: entries found
 * there now are taken as they are (done at done_op, no checks). */
static void ring_setup(struct ck *c, uint64_t off, uint32_t len, int64_t done_op)
{
    struct ring *g = &c->ring;
    for (size_t k = 0; k < c->n_in; k++)
        if (c->in[k].alive) {
            c->in[k].alive = 0;
            c->in[k].kill_op = c->i;
        }
    ring_free(g);
    g->want_off = off;
    g->want_len = len;
    if (len == 0)
        return;
    if (len % PAGE || len > LOG_MAX || off % PAGE || off > BDEV_LIMIT - len) {
        c->r->incomplete = 1;
        snprintf(c->r->note, sizeof c->r->note,
                 "the log at %llu (%u bytes) is not followed (longer than 256 MiB or misaligned)",
                 (unsigned long long)off, len);
        return;
    }
    g->off = off;
    g->len = len;
    g->n = len / PAGE;
    g->start = calloc(g->n, sizeof *g->start);
    g->owner = calloc(g->n, sizeof *g->owner);
    g->sec_op = malloc(g->n * sizeof *g->sec_op);
    g->stamp = calloc(g->n, sizeof *g->stamp);
    g->loges = malloc(g->n * sizeof *g->loges);
    g->loge_at = calloc(g->n, sizeof *g->loge_at);
    if (!g->start || !g->owner || !g->sec_op || !g->stamp || !g->loges || !g->loge_at) {
        ring_free(g);
        nomem(c);
        return;
    }
    for (uint32_t p = 0; p < g->n; p++) {
        g->sec_op[p] = done_op;
        loge_set(g, p, memcmp(img_sector(&c->vol, (off + (uint64_t)p * PAGE) / SECTOR), "loge", 4) == 0);
    }
    spend(c, g->n);
    for (size_t k = 0; k < g->n_loges && !c->stop; k++)
        if (!g->start[g->loges[k]])
            examine(c, g->loges[k], done_op, 1);
}

/* After a volatile write of [off, off+len): sectors it touched, entries it
 * completed or broke. */
static void ring_write(struct ck *c, uint64_t off, uint64_t len)
{
    struct ring *g = &c->ring;
    if (!g->n)
        return;
    const uint64_t lo = max64(off, g->off), hi = min64(off + len, g->off + g->len);
    if (lo >= hi)
        return;
    const uint32_t sa = (uint32_t)((lo - g->off) / PAGE), sb = (uint32_t)((hi - g->off + PAGE - 1) / PAGE);
    if (spend(c, (uint64_t)(sb - sa) + g->n_loges))
        return;
    for (uint32_t s = sa; s < sb; s++) {
        g->sec_op[s] = c->i;
        loge_set(g, s, memcmp(img_sector(&c->vol, (g->off + (uint64_t)s * PAGE) / SECTOR), "loge", 4) == 0);
    }
    if (++g->cur_stamp == 0) {
        memset(g->stamp, 0, g->n * sizeof *g->stamp);
        g->cur_stamp = 1;
    }
    /* candidates: starts of entries owning a touched sector, and every
     * "loge" position whose claimed extent meets the touched sectors */
    uint32_t *cand = NULL;
    size_t n_cand = 0, cap_cand = 0;
    for (uint32_t s = sa; s < sb; s++) {
        if (!g->owner[s])
            continue;
        const uint32_t p = c->in[g->owner[s] - 1].pos / PAGE;
        if (g->stamp[p] == g->cur_stamp)
            continue;
        g->stamp[p] = g->cur_stamp;
        if (grow((void **)&cand, &cap_cand, n_cand + 1, sizeof *cand) != 0)
            goto oom;
        cand[n_cand++] = p;
    }
    for (size_t k = 0; k < g->n_loges; k++) {
        const uint32_t p = g->loges[k];
        if (g->stamp[p] == g->cur_stamp)
            continue;
        const uint64_t e = (uint64_t)p + claimed(c, p);
        const int meets = (p < sb && e > sa) || (e > g->n && e - g->n > sa);
        if (!meets)
            continue;
        g->stamp[p] = g->cur_stamp;
        if (grow((void **)&cand, &cap_cand, n_cand + 1, sizeof *cand) != 0)
            goto oom;
        cand[n_cand++] = p;
    }
    for (size_t k = 0; k < n_cand && !c->stop; k++)
        examine(c, cand[k], c->i, 0);
    free(cand);
    return;
oom:
    free(cand);
    nomem(c);
}

/* ---- the rules checked when an entry completes ------------------------------------------ */
/* The latest pending truncate or write that grew the file past `size`. */
static int64_t pending_growth(const struct ck *c, uint64_t size)
{
    for (size_t k = c->n_pending; k-- > 0;) {
        const struct trace_op *o = &c->t->ops[c->pending[k]];
        if ((o->kind == TR_TRUNCATE && o->off > size) || (o->kind == TR_WRITE && o->off + o->len > size))
            return c->pending[k];
    }
    return NONE;
}

/* 2.3.1.1 FlushedFileOffset: "MUST be at least as large as the size of the
 * VHDX file at the time the log entry was written" and stable on the host
 * disk: never above the durable size. */
static void check_flushed(struct ck *c, uint32_t idx)
{
    const struct inst *x = &c->in[idx];
    if (x->e.flushed_file_offset <= c->dur.size)
        return;
    char grew[64] = "";
    const int64_t g = pending_growth(c, c->dur.size);
    if (g != NONE)
        snprintf(grew, sizeof grew, " (op %lld grew it, no flush since)", (long long)g);
    report(c, INV_PROTO_FLUSHED_OFFSET, x->done_op, &g, g != NONE, c->dur.size,
           x->e.flushed_file_offset - c->dur.size,
           "entry seq %llu (ring offset %u, ops %lld..%lld) says FlushedFileOffset %llu but only %llu bytes of the "
           "file are durable%s: a cut can leave a shorter file that replay must refuse as truncated",
           (unsigned long long)x->e.sequence, x->pos, (long long)x->first_op, (long long)x->done_op,
           (unsigned long long)x->e.flushed_file_offset, (unsigned long long)c->dur.size, grew);
}

/* 2.3.2: the head's Tail names the first entry of a sequence that links to
 * it; entries before the Tail are left out of every replay, so their
 * updates must already be durable in place. */
static void check_tail(struct ck *c, uint32_t idx)
{
    const struct ring *g = &c->ring;
    const struct inst *x = &c->in[idx];
    const uint32_t t = x->e.tail / PAGE; /* the validity rule: aligned, inside the ring */
    uint32_t cur = g->start[t];
    const char *broken = NULL;
    if (!cur || c->in[cur - 1].log != x->log) {
        broken = "no valid entry of its log starts there";
    } else {
        uint32_t steps = 0;
        cur--;
        while (cur != idx && steps++ < g->n) {
            const struct inst *y = &c->in[cur];
            const uint32_t nx = g->start[(y->pos / PAGE + y->sectors) % g->n];
            if (!nx || c->in[nx - 1].log != x->log || c->in[nx - 1].e.sequence != y->e.sequence + 1)
                break;
            cur = nx - 1;
        }
        if (cur != idx)
            broken = "the entries from there do not link to it (adjacent, sequence number + 1)";
    }
    if (broken) {
        report(c, INV_PROTO_TAIL_PAST_UNAPPLIED, x->done_op, NULL, 0, c->ring.off + x->pos, x->e.length,
               "entry seq %llu (ring offset %u) names Tail %u, but %s: the sequence ending at it is not valid "
               "(2.3.2) and a replay cannot use it",
               (unsigned long long)x->e.sequence, x->pos, x->e.tail, broken);
        return;
    }
    if (x->log == UINT32_MAX)
        return;
    const uint64_t tail_seq = c->in[g->start[t] - 1].e.sequence;
    const struct pmap *pend = &c->logs[x->log].pend;
    uint64_t n = 0, first_page = 0;
    const struct pval *first = NULL;
    for (size_t k = 0; k < pend->cap && !spend(c, 1); k++) {
        if (pend->keys[k] == PMAP_EMPTY || pend->vals[k].seq >= tail_seq)
            continue;
        if (!n++) {
            first = &pend->vals[k];
            first_page = pend->keys[k] * PAGE;
        }
    }
    if (!n)
        return;
    const int64_t fo = first->entry ? c->in[first->entry - 1].done_op : PROTOCOL_BASE_OP;
    char b1[32];
    report(c, INV_PROTO_TAIL_PAST_UNAPPLIED, x->done_op, &fo, 1, first_page, PAGE,
           "entry seq %llu (ring offset %u) has its Tail at entry seq %llu, leaving out %llu page update(s) of "
           "earlier entries that are not durably in their final place (first: %llu from entry seq %llu, %s): a "
           "replay from this Tail loses them",
           (unsigned long long)x->e.sequence, x->pos, (unsigned long long)tail_seq, (unsigned long long)n,
           (unsigned long long)first_page, (unsigned long long)first->seq, opname(fo, b1));
}

/* A new mapping of a block (the BAT entry changes to FULLY or PARTIALLY
 * PRESENT at X) in an entry: the block's earlier writes and the file's
 * extension over it must be durable first, or the BAT can point at bytes
 * that never reached the disk. */
static void check_bat(struct ck *c, uint32_t idx)
{
    const struct layout *l = &c->lay;
    if (!l->payload_blocks)
        return;
    const struct inst *x = &c->in[idx];
    for (uint32_t d = 0; d < x->e.count && !c->stop; d++) {
        const struct ref_write *w = &x->e.desc[d];
        const uint64_t lo = max64(w->offset, l->bat_off), hi = min64(w->offset + w->length, l->bat_off + l->bat_len);
        for (uint64_t P = lo / PAGE * PAGE; P < hi && !spend(c, 64); P += PAGE) {
            const uint8_t *nb = w->data ? w->data + (P - w->offset) : ZERO_PAGE;
            const struct pval *lg = pmap_get(&c->logged, P / PAGE);
            const uint8_t *ob = lg ? lg->bytes : img_page(&c->vol, P, c->scratch);
            for (uint64_t j = 0; j < PAGE / 8; j++) {
                const uint64_t ne = ref_le64(nb + 8 * j), oe = ref_le64(ob + 8 * j);
                if (ne == oe || ((ne & 7) == (oe & 7) && ne >> 20 == oe >> 20))
                    continue;
                const uint64_t index = (P - l->bat_off) / 8 + j;
                uint64_t block = 0;
                const uint64_t end = bat_block_end(l, index, ne, &block);
                if (!end)
                    continue;
                const uint64_t at = (ne >> 20) << 20;
                int64_t wop = NONE;
                for (size_t k = c->n_pending; k-- > 0;) {
                    const struct trace_op *o = &c->t->ops[c->pending[k]];
                    if (o->kind == TR_WRITE && o->off < end && o->off + o->len > at) {
                        wop = c->pending[k];
                        break;
                    }
                }
                if (wop != NONE) {
                    char b1[32];
                    report(c, INV_PROTO_PAYLOAD_BEFORE_BAT, x->done_op, &wop, 1, at, end - at,
                           "entry seq %llu maps block %llu at file offset %llu while the write to that block at %s is "
                           "not durable (no flush between them): a cut can keep the mapping and lose the data",
                           (unsigned long long)x->e.sequence, (unsigned long long)block, (unsigned long long)at,
                           opname(wop, b1));
                } else if (c->dur.size < end) {
                    const int64_t g = pending_growth(c, c->dur.size);
                    report(c, INV_PROTO_PAYLOAD_BEFORE_BAT, x->done_op, &g, g != NONE, at, end - at,
                           "entry seq %llu maps block %llu at %llu..%llu but the durable file ends at %llu (%s): a "
                           "cut can leave the BAT pointing past the end of the file",
                           (unsigned long long)x->e.sequence, (unsigned long long)block, (unsigned long long)at,
                           (unsigned long long)end, (unsigned long long)c->dur.size,
                           g != NONE ? "the extension is not flushed" : "nothing extended it");
                }
            }
        }
    }
}

/* Records an entry's final-place pages: the latest bytes described per
 * page (logged), the BAT's furthest block, and the log's pending pages. */
static void log_pages(struct ck *c, uint32_t idx)
{
    uint64_t lo_[4], hi_[4];
    const struct inst *x = &c->in[idx];
    struct plog *L = x->log != UINT32_MAX ? &c->logs[x->log] : NULL;
    struct layout *l = &c->lay;
    for (uint32_t d = 0; d < x->e.count && !c->stop; d++) {
        const struct ref_write *w = &x->e.desc[d];
        FOR_FINAL_PAGES(c, w->offset, w->length, P) {
            const uint8_t *b = w->data ? w->data + (P - w->offset) : ZERO_PAGE;
            struct pval *lg = pmap_put(&c->logged, P / PAGE);
            if (!lg) {
                nomem(c);
                return;
            }
            lg->bytes = b;
            lg->entry = idx + 1;
            lg->seq = x->e.sequence;
            if (l->n_pages && P >= l->bat_off && (P - l->bat_off) / PAGE < l->n_pages)
                l->page_max[(P - l->bat_off) / PAGE] = bat_page_max(l, (P - l->bat_off) / PAGE, b);
            if (!L)
                continue;
            struct pval *pv = pmap_get(&L->pend, P / PAGE);
            if (pv && pv->seq > x->e.sequence)
                continue;
            if (img_equal(&c->vol, b, PAGE, P) && img_equal(&c->dur, b, PAGE, P)) {
                pmap_del(&L->pend, P / PAGE);
                continue;
            }
            if (!pv && !(pv = pmap_put(&L->pend, P / PAGE))) {
                nomem(c);
                return;
            }
            pv->bytes = b;
            pv->seq = x->e.sequence;
            pv->entry = idx + 1;
            pv->op = NONE;
        }
    }
}

/* 2.3.1.1 LastFileOffset: "a file size that all allocated file structures
 * fit into": the log, the regions, every mapped block (after this entry). */
static void check_last(struct ck *c, uint32_t idx)
{
    const struct inst *x = &c->in[idx];
    const struct layout *l = &c->lay;
    uint64_t need = 0;
    const char *what = "";
    if (c->vcur >= 0 && c->vh[c->vcur].log_length) {
        need = c->vh[c->vcur].log_offset + c->vh[c->vcur].log_length;
        what = "the log";
    }
    if (l->bat_off + l->bat_len > need) {
        need = l->bat_off + l->bat_len;
        what = "the BAT region";
    }
    if (l->meta_off + l->meta_len > need) {
        need = l->meta_off + l->meta_len;
        what = "the metadata region";
    }
    const uint64_t blocks = layout_block_max(l);
    spend(c, l->n_pages);
    if (blocks > need) {
        need = blocks;
        what = "a mapped block";
    }
    if (x->e.last_file_offset >= need)
        return;
    report(c, INV_PROTO_LAST_OFFSET, x->done_op, NULL, 0, x->e.last_file_offset, need - x->e.last_file_offset,
           "entry seq %llu says LastFileOffset %llu but %s ends at %llu: a replay that extends the file to "
           "LastFileOffset can leave it outside the file",
           (unsigned long long)x->e.sequence, (unsigned long long)x->e.last_file_offset, what,
           (unsigned long long)need);
}

static void entry_checks(struct ck *c, uint32_t idx)
{
    const struct inst *x = &c->in[idx];
    if (x->log != UINT32_MAX) {
        struct plog *L = &c->logs[x->log];
        L->entries++;
        if (!L->first_entry) {
            L->first_entry = idx + 1;
            if (L->hbe_violation) { /* the header came first: name the entry it should have waited for */
                struct protocol_violation *v = &c->r->v[L->hbe_violation - 1];
                v->after[0] = x->done_op;
                size_t used = strlen(v->detail);
                snprintf(v->detail + used, sizeof v->detail - used, " (its first entry is written later, at op %lld)",
                         (long long)x->done_op);
            }
        }
    }
    check_flushed(c, idx);
    check_tail(c, idx);
    if (!c->lay.known)
        return;
    check_bat(c, idx);
    log_pages(c, idx);
    check_last(c, idx);
}

/* ---- header writes -------------------------------------------------------------------------- */
/* The current header moves away from LogGuid g (to zero or another log):
 * every page g's entries described must be durably in place by now. */
static void clear_check(struct ck *c, const uint8_t g[16])
{
    const uint32_t k = log_find(c, g);
    if (k == UINT32_MAX)
        return;
    struct plog *L = &c->logs[k];
    uint64_t unapplied = 0, early = 0, up = 0, ep = 0;
    const struct pval *u = NULL, *e = NULL;
    for (size_t s = 0; s < L->pend.cap && !spend(c, 1); s++) {
        if (L->pend.keys[s] == PMAP_EMPTY)
            continue;
        const struct pval *v = &L->pend.vals[s];
        const uint64_t page = L->pend.keys[s] * PAGE;
        if (!img_equal(&c->vol, v->bytes, PAGE, page)) {
            if (!unapplied++ || v->seq < u->seq) {
                u = v;
                up = page;
            }
        } else if (!early++ || v->op > e->op) {
            e = v;
            ep = page;
        }
    }
    char gs[40], b1[32], b2[32];
    guid_str(g, gs);
    if (unapplied) {
        const int64_t after = u->entry ? c->in[u->entry - 1].done_op : PROTOCOL_BASE_OP;
        report(c, INV_PROTO_CLEAR_UNAPPLIED, c->i, &after, 1, up, PAGE,
               "op %lld moves the current header away from LogGuid {%s} while %llu page update(s) of its entries "
               "never reached their final place (first: %llu from entry seq %llu, %s): nothing will replay them",
               (long long)c->i, gs, (unsigned long long)unapplied, (unsigned long long)up,
               (unsigned long long)u->seq, opname(after, b1));
    }
    if (early) {
        const int64_t after[2] = {e->op, c->last_flush};
        report(c, INV_PROTO_LOGGUID_CLEARED_EARLY, c->i, after, 1, ep, PAGE,
               "op %lld moves the current header away from LogGuid {%s} while %llu applied page(s) are not durable "
               "(latest: %llu written at %s; last flush %s): a cut can keep the new header and lose them, with no "
               "log left to replay",
               (long long)c->i, gs, (unsigned long long)early, (unsigned long long)ep, opname(e->op, b1),
               opname(c->last_flush, b2));
    }
    pmap_clear(&L->pend);
}

/* The current header moves to LogGuid g: the durable ring must already hold
 * a valid sequence under g (2.3.3: a LogGuid without one is corrupt). */
static void hbe_check(struct ck *c, const uint8_t g[16])
{
    const struct ref_header *h = &c->vh[c->vcur];
    struct ref_result res;
    if (search_ring(c, &c->dur, h->log_offset, h->log_length, g, &res) != 0) {
        ref_result_free(&res);
        nomem(c);
        return;
    }
    const int none = res.verdict == REF_NO_SEQUENCE;
    ref_result_free(&res);
    if (!none)
        return;
    char gs[40];
    guid_str(g, gs);
    const uint32_t k = log_add(c, g);
    const struct inst *x = k != UINT32_MAX && c->logs[k].first_entry ? &c->in[c->logs[k].first_entry - 1] : NULL;
    size_t v;
    if (x) {
        v = report(c, INV_PROTO_HEADER_BEFORE_ENTRY, c->i, &x->done_op, 1, HEADER_OFF(c->vcur), PAGE,
                   "op %lld makes the current header name LogGuid {%s} while no valid entry under it is durable "
                   "(entry seq %llu, ops %lld..%lld, %s): a cut now leaves a LogGuid with no valid sequence, which "
                   "MS-VHDX 2.3.3 declares corrupt",
                   (long long)c->i, gs, (unsigned long long)x->e.sequence, (long long)x->first_op,
                   (long long)x->done_op, x->dur_op == NONE ? "not flushed yet" : "durable, yet no valid sequence");
    } else {
        v = report(c, INV_PROTO_HEADER_BEFORE_ENTRY, c->i, NULL, 0, HEADER_OFF(c->vcur), PAGE,
                   "op %lld makes the current header name LogGuid {%s} before any entry under it was written: a "
                   "cut now leaves a LogGuid with no valid sequence, which MS-VHDX 2.3.3 declares corrupt",
                   (long long)c->i, gs);
        if (k != UINT32_MAX)
            c->logs[k].hbe_violation = v;
    }
}

/* After a volatile write touched a header copy. */
static void header_write(struct ck *c, uint64_t off, uint64_t len)
{
    int touched = 0;
    for (int k = 0; k < 2; k++) {
        if (off >= HEADER_OFF(k) + PAGE || off + len <= HEADER_OFF(k))
            continue;
        touched = 1;
        if (c->ep_hdr_op[1 - k] != NONE && !c->ep_hdr_reported) {
            c->ep_hdr_reported = 1;
            char b1[32];
            report(c, INV_PROTO_HEADER_COPIES_ONE_EPOCH, c->i, &c->ep_hdr_op[1 - k], 1, HEADER_OFF(k), PAGE,
                   "op %lld writes the header copy at %llu and %s wrote the other copy with no flush between: a cut "
                   "or a reordering disk can damage both copies at once (2.2.2.1: write one, flush, then the other)",
                   (long long)c->i, (unsigned long long)HEADER_OFF(k), opname(c->ep_hdr_op[1 - k], b1));
        }
        if (c->ep_hdr_op[k] == NONE)
            c->ep_hdr_op[k] = c->i;
    }
    if (!touched)
        return;
    c->r->st.header_writes++;
    c->last_hdr_op = c->i;
    c->ep_dur_dirty = 1;
    headers_decode(c, &c->vol, c->vh, &c->vcur);
    if (c->vcur < 0)
        return; /* no current header in the writer's view: keep following the last one */
    const struct ref_header *h = &c->vh[c->vcur];
    if (h->log_offset != c->ring.want_off || h->log_length != c->ring.want_len)
        ring_setup(c, h->log_offset, h->log_length, c->i);
    if (memcmp(h->log_guid, c->vguid, 16) == 0)
        return;
    uint8_t old[16];
    memcpy(old, c->vguid, 16);
    memcpy(c->vguid, h->log_guid, 16);
    if (!is_zero_guid(old))
        clear_check(c, old);
    if (!is_zero_guid(c->vguid))
        hbe_check(c, c->vguid);
}

/* ---- writes to final places and to the durable ring ----------------------------------------- */
/* Before the volatile image changes: every final-place page the write
 * changes must be restored to these bytes by the durable replay. */
static void final_write_pre(struct ck *c, uint64_t off, const uint8_t *data, uint64_t len)
{
    uint64_t lo_[4], hi_[4];
    uint64_t bad = 0, first = 0;
    FOR_FINAL_PAGES(c, off, len, P) {
        const uint64_t a = max64(P, off), b = min64(P + PAGE, off + len);
        const uint8_t *src = data + (a - off);
        if (img_equal(&c->dur, src, b - a, a) || covered(c, P, a - P, b - a, src))
            continue;
        if (!bad++)
            first = P;
    }
    if (!bad)
        return;
    /* why: the entry that describes these bytes, if any */
    const struct pval *lg = pmap_get(&c->logged, first / PAGE);
    const uint64_t a = max64(first, off), b = min64(first + PAGE, off + len);
    const struct inst *x = lg && lg->entry && memcmp(lg->bytes + (a - first), data + (a - off), b - a) == 0
                               ? &c->in[lg->entry - 1]
                               : NULL;
    char gs[40], why[200], b1[32];
    int64_t after[2] = {NONE, NONE};
    size_t n_after = 0;
    if (!x) {
        snprintf(why, sizeof why, "no log entry holds these bytes");
    } else {
        guid_str(x->e.log_guid, gs);
        after[n_after++] = x->done_op;
        if (x->dur_op == NONE)
            snprintf(why, sizeof why, "entry seq %llu of {%s} holds them but is not durable (no flush since %s)",
                     (unsigned long long)x->e.sequence, gs, opname(x->done_op, b1));
        else if (memcmp(c->dl.guid, x->e.log_guid, 16) == 0 && !c->dl.have)
            snprintf(why, sizeof why, "entry seq %llu of {%s} holds them but the durable ring has no usable sequence "
                     "of that log (%s)",
                     (unsigned long long)x->e.sequence, gs, verdict_name(c->dl.res.verdict));
        else if (!c->dl.have || memcmp(c->dl.guid, x->e.log_guid, 16) != 0) {
            snprintf(why, sizeof why, "entry seq %llu of {%s} holds them but the durable header does not name that log%s",
                     (unsigned long long)x->e.sequence, gs,
                     c->last_hdr_op != NONE && c->last_hdr_op > c->last_flush ? " (its header write is not flushed)" : "");
            if (c->last_hdr_op != NONE)
                after[n_after++] = c->last_hdr_op;
        } else
            snprintf(why, sizeof why, "entry seq %llu of {%s} holds them but is not in the durable active sequence",
                     (unsigned long long)x->e.sequence, gs);
    }
    report(c, INV_PROTO_APPLY_BEFORE_LOG, c->i, after, n_after, first, b - a,
           "op %lld writes final-place metadata at %llu (%llu page(s) changed) that a replay after a cut would not "
           "restore: %s",
           (long long)c->i, (unsigned long long)first, (unsigned long long)bad, why);
}

/* After the volatile image changed: the epoch's final-place pages, the
 * pending pages this write applies, layout changes. */
static void final_write_post(struct ck *c, uint64_t off, uint64_t len)
{
    uint64_t lo_[4], hi_[4];
    const struct layout *l = &c->lay;
    int any = 0;
    FOR_FINAL_PAGES(c, off, len, P) {
        any = 1;
        if (P < REGION_OFF(1) + KIB64 || (l->known && P >= l->meta_off && P < l->meta_off + KIB64))
            c->ep_layout_dirty = 1;
        if (!c->n_ep_pages || c->ep_pages[c->n_ep_pages - 1] != P) {
            if (grow((void **)&c->ep_pages, &c->cap_ep_pages, c->n_ep_pages + 1, sizeof *c->ep_pages) != 0) {
                nomem(c);
                return;
            }
            c->ep_pages[c->n_ep_pages++] = P;
        }
        spend(c, c->n_logs);
        for (size_t k = 0; k < c->n_logs; k++) {
            struct pval *v = c->logs[k].pend.count ? pmap_get(&c->logs[k].pend, P / PAGE) : NULL;
            if (v && img_equal(&c->vol, v->bytes, PAGE, P))
                v->op = c->i;
        }
    }
    c->r->st.final_writes += any;
}

/* Before the volatile image changes: a write into the durable active
 * sequence while the durable header names its log (2.3.1: "space ... can be
 * reused only when the log entries are not part of the active sequence"). */
static void check_overwrite(struct ck *c, uint64_t off, const uint8_t *data, uint64_t len)
{
    const struct dlog *d = &c->dl;
    if (!d->have)
        return;
    const uint64_t lo = max64(off, d->off), hi = min64(off + len, d->off + d->len);
    const uint32_t n = d->len / PAGE;
    for (uint64_t a = lo; a < hi; a = (a / PAGE + 1) * PAGE) {
        const uint64_t b = min64((a / PAGE + 1) * PAGE, hi);
        const uint32_t s = (uint32_t)((a - d->off) / PAGE);
        if ((s + n - d->span_start) % n >= d->span_n || img_equal(&c->dur, data + (a - off), b - a, a))
            continue;
        /* updates of the sequence not durably in place */
        const uint32_t k = log_find(c, d->guid);
        uint64_t unapplied = 0;
        for (size_t q = 0; k != UINT32_MAX && q < c->logs[k].pend.cap; q++)
            unapplied += c->logs[k].pend.keys[q] != PMAP_EMPTY && c->logs[k].pend.vals[q].seq >= d->tail_seq &&
                         c->logs[k].pend.vals[q].seq <= d->res.head_sequence;
        char gs[40], why[160];
        guid_str(d->guid, gs);
        if (unapplied)
            snprintf(why, sizeof why, "%llu of its page updates are not durably in place: a cut loses them",
                     (unsigned long long)unapplied);
        else
            snprintf(why, sizeof why, "it is the newest valid sequence: a cut during the write leaves an older one "
                                      "(or none) for the replay");
        const int64_t since = d->since;
        char b1[32];
        report(c, INV_PROTO_OVERWRITE_LIVE_ENTRY, c->i, &since, 1, a, b - a,
               "op %lld writes ring offset %llu inside the active sequence of the durable log {%s} (entries seq "
               "%llu..%llu, durable since %s); %s",
               (long long)c->i, (unsigned long long)(a - d->off), gs, (unsigned long long)d->tail_seq,
               (unsigned long long)d->res.head_sequence, opname(since, b1), why);
        return;
    }
}

/* ---- following the operations ------------------------------------------------------------------ */
/* Starts following the image (the base, or at the flush that created it). */
static void full_init(struct ck *c, int64_t op)
{
    uint64_t lo_[4], hi_[4];
    headers_decode(c, &c->vol, c->vh, &c->vcur);
    headers_decode(c, &c->dur, c->dh, &c->dcur);
    memset(c->vguid, 0, 16);
    if (c->vcur < 0) {
        snprintf(c->r->note, sizeof c->r->note, "no valid header at %s: the image is not followed",
                 op == PROTOCOL_BASE_OP ? "the start" : "creation");
        return;
    }
    c->r->judged = 1;
    memcpy(c->vguid, c->vh[c->vcur].log_guid, 16);
    layout_decode(c);
    ring_setup(c, c->vh[c->vcur].log_offset, c->vh[c->vcur].log_length, op);
    dlog_refresh(c, op);
    if (!c->dl.have)
        return;
    /* a log already durable (a replay to come): its replay is what its
     * pages must become before the LogGuid may go */
    const uint32_t k = log_add(c, c->dl.guid);
    for (size_t w = 0; w < c->dl.res.n_writes && !c->stop; w++) {
        const struct ref_write *x = &c->dl.res.writes[w];
        FOR_FINAL_PAGES(c, x->offset, x->length, P) {
            struct pval *lg = pmap_put(&c->logged, P / PAGE);
            if (!lg) {
                nomem(c);
                return;
            }
            /* the search's result is replaced at the next flush: keep a copy */
            lg->bytes = x->data ? own_page(c, x->data + (P - x->offset)) : ZERO_PAGE;
            if (!lg->bytes)
                return;
            lg->seq = c->dl.res.head_sequence;
            lg->entry = 0;
        }
    }
    for (size_t q = 0; k != UINT32_MAX && q < c->logged.cap && !c->stop; q++) {
        if (c->logged.keys[q] == PMAP_EMPTY)
            continue;
        const uint64_t P = c->logged.keys[q] * PAGE;
        const uint8_t *b = c->logged.vals[q].bytes;
        if (img_equal(&c->vol, b, PAGE, P))
            continue;
        struct pval *pv = pmap_put(&c->logs[k].pend, P / PAGE);
        if (!pv) {
            nomem(c);
            return;
        }
        pv->bytes = b;
        pv->seq = c->dl.res.head_sequence;
        pv->entry = 0;
        pv->op = NONE;
    }
}

static void do_write(struct ck *c, const struct trace_op *o)
{
    if (o->len == 0)
        return;
    if (o->off > BDEV_LIMIT - o->len) {
        c->r->incomplete = 1;
        snprintf(c->r->note, sizeof c->r->note, "operation %lld writes past 2^62: not followed", (long long)c->i);
        return;
    }
    c->r->st.writes++;
    if (spend(c, 1 + o->len / SECTOR))
        return;
    if (c->created && c->r->judged) {
        if (o->off < KIB64) {
            report(c, INV_PROTO_FIRST_64K, c->i, &c->r->created_at, 1, o->off, min64(o->len, KIB64 - o->off),
                   "op %lld writes %llu byte(s) at %llu, inside the first 64 KiB (the file type identifier), "
                   "which MS-VHDX 2.2.1 forbids after creation",
                   (long long)c->i, (unsigned long long)min64(o->len, KIB64 - o->off), (unsigned long long)o->off);
        }
        check_overwrite(c, o->off, o->data, o->len);
        final_write_pre(c, o->off, o->data, o->len);
    }
    if (img_write(&c->vol, o->off, o->data, o->len) != 0 ||
        grow((void **)&c->pending, &c->cap_pending, c->n_pending + 1, sizeof *c->pending) != 0) {
        nomem(c);
        return;
    }
    c->pending[c->n_pending++] = c->i;
    if (!c->created || !c->r->judged)
        return;
    const struct dlog *d = &c->dl;
    if ((d->len && o->off < d->off + d->len && o->off + o->len > d->off) ||
        (c->ring.n && o->off < c->ring.off + c->ring.len && o->off + o->len > c->ring.off))
        c->ep_dur_dirty = 1;
    header_write(c, o->off, o->len);
    ring_write(c, o->off, o->len);
    final_write_post(c, o->off, o->len);
}

/* Creation ends at the first flush after which the durable image is a file
 * the reference reads as a VHDX (identifier, a current header, a region
 * table, metadata): writers order creation as they like (QEMU writes the
 * identifier first and the region tables last), and the spec's rules for
 * an existing file apply from then on. */
static int durable_vhdx(struct ck *c)
{
    uint8_t id[8];
    img_read(&c->dur, id, sizeof id, 0);
    if (memcmp(id, "vhdxfile", 8) != 0)
        return 0;
    struct ref_src src = {src_read_img, &c->dur, c->dur.size, NULL, NULL};
    struct ref_image im;
    const int ok = ref_image_open(&im, &src) == 0 && im.status != REF_INVALID && im.bat_length && im.meta_length;
    ref_image_free(&im);
    spend(c, 1024);
    return ok;
}

static void do_flush(struct ck *c)
{
    const int had_io = c->n_pending > 0;
    c->r->st.flushes++;
    for (size_t k = 0; k < c->n_pending && !c->stop; k++) {
        const struct trace_op *o = &c->t->ops[c->pending[k]];
        int rc = o->kind == TR_WRITE ? img_write(&c->dur, o->off, o->data, o->len) : img_truncate(&c->dur, o->off);
        if (rc != 0) {
            nomem(c);
            return;
        }
    }
    c->n_pending = 0;
    for (size_t k = 0; k < c->n_fresh; k++) {
        struct inst *x = &c->in[c->fresh[k]];
        if (x->alive && x->dur_op == NONE) {
            x->dur_op = c->i;
            c->r->st.durable_entries++;
        }
    }
    c->n_fresh = 0;
    if (!c->created) {
        if (had_io && durable_vhdx(c)) {
            c->created = 1;
            c->r->created_at = c->i;
            full_init(c, c->i);
        }
    } else if (c->r->judged) {
        if (c->ep_dur_dirty) {
            headers_decode(c, &c->dur, c->dh, &c->dcur);
            dlog_refresh(c, c->i);
        }
        for (size_t q = 0; q < c->n_ep_pages && !spend(c, c->n_logs); q++) {
            const uint64_t P = c->ep_pages[q];
            for (size_t k = 0; k < c->n_logs; k++) {
                struct pval *v = c->logs[k].pend.count ? pmap_get(&c->logs[k].pend, P / PAGE) : NULL;
                if (v && img_equal(&c->dur, v->bytes, PAGE, P))
                    pmap_del(&c->logs[k].pend, P / PAGE);
            }
        }
        if (c->ep_layout_dirty || (!c->lay.known && c->layout_tries++ < 64))
            layout_decode(c);
    }
    c->ep_hdr_op[0] = c->ep_hdr_op[1] = NONE;
    c->ep_hdr_reported = 0;
    c->ep_dur_dirty = 0;
    c->ep_layout_dirty = 0;
    c->n_ep_pages = 0;
    c->last_flush = c->i;
}

/* A workload flush, close or reopen returned success: everything written
 * before it must be durable (the contract of vhdx_flush and close). */
static void check_flush_ack(struct ck *c)
{
    int64_t w = NONE;
    for (size_t k = c->n_pending; k-- > 0 && w == NONE;)
        if (c->t->ops[c->pending[k]].kind == TR_WRITE)
            w = c->pending[k];
    if (w == NONE)
        return;
    const struct trace_op *o = &c->t->ops[w];
    const int64_t after[2] = {w, c->vsync_op};
    report(c, INV_PROTO_FLUSH_ACK, c->i, after, 2, o->off, o->len,
           "workload operation %u (a flush, close or reopen; ops %lld..%lld) returned success while the write at op "
           "%lld (%u bytes at %llu) is not durable: no device flush followed it",
           c->t->ops[c->i].vop, (long long)c->vsync_op, (long long)c->i, (long long)w, o->len,
           (unsigned long long)o->off);
}

void protocol_opts_defaults(struct protocol_opts *o)
{
    o->max_per_invariant = 8;
    o->work_limit = UINT64_C(4000000000);
}

void protocol_report_free(struct protocol_report *r)
{
    free(r->v);
    memset(r, 0, sizeof *r);
}

int protocol_check(const struct trace *t, const struct protocol_opts *o, struct protocol_report *r)
{
    memset(r, 0, sizeof *r);
    r->created_at = PROTOCOL_NO_OP;
    struct ck *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->t = t;
    c->r = r;
    if (o)
        c->o = *o;
    else
        protocol_opts_defaults(&c->o);
    img_init(&c->vol, t);
    img_init(&c->dur, t);
    c->memo = ref_memo_new();
    c->last_flush = c->last_hdr_op = NONE;
    c->ep_hdr_op[0] = c->ep_hdr_op[1] = NONE;
    c->vcur = c->dcur = -1;
    c->i = PROTOCOL_BASE_OP;
    if (!c->memo) {
        nomem(c);
        goto out;
    }
    uint8_t id[8];
    img_read(&c->vol, id, sizeof id, 0);
    if (memcmp(id, "vhdxfile", 8) == 0) {
        c->created = 1;
        r->created_at = PROTOCOL_BASE_OP;
        full_init(c, PROTOCOL_BASE_OP);
    }
    for (size_t i = 0; i < t->n_ops && !c->stop; i++) {
        const struct trace_op *op = &t->ops[i];
        c->i = (int64_t)i;
        r->st.ops++;
        switch (op->kind) {
        case TR_WRITE:
            do_write(c, op);
            break;
        case TR_TRUNCATE:
            if (img_truncate(&c->vol, op->off) != 0 ||
                grow((void **)&c->pending, &c->cap_pending, c->n_pending + 1, sizeof *c->pending) != 0) {
                nomem(c);
                break;
            }
            c->pending[c->n_pending++] = c->i;
            c->ep_dur_dirty = 1;
            break;
        case TR_FLUSH:
            do_flush(c);
            break;
        case TR_VBEGIN:
            c->vsync = op->vkind == VOP_FLUSH || op->vkind == VOP_CLOSE || op->vkind == VOP_REOPEN;
            c->vsync_vop = op->vop;
            c->vsync_op = c->i;
            break;
        case TR_VEND:
            if (c->vsync && op->vop == c->vsync_vop && op->rc == 0 && c->r->judged)
                check_flush_ack(c);
            c->vsync = 0;
            break;
        default:
            break; /* marks and workload records carry no I/O */
        }
    }
    if (!c->created && !r->note[0])
        snprintf(r->note, sizeof r->note,
                 "the base is not a VHDX file and no flush made a file identifier durable: nothing judged");
    else if (r->judged && !c->lay.known && !r->note[0]) {
        r->incomplete = 1;
        snprintf(r->note, sizeof r->note, "the region tables and metadata could not be read: final-place writes and "
                                          "block mappings were not judged");
    }
out:;
    const int oom = c->oom;
    for (size_t k = 0; k < c->n_in; k++)
        ref_entry_free(&c->in[k].e);
    free(c->in);
    for (size_t k = 0; k < c->n_logs; k++)
        pmap_free(&c->logs[k].pend);
    free(c->logs);
    pmap_free(&c->logged);
    ref_result_free(&c->dl.res);
    pmap_free(&c->dl.cov);
    free(c->dl.nodes);
    ref_memo_free(c->memo);
    ring_free(&c->ring);
    layout_free(&c->lay);
    secmap_free(&c->vol.m);
    secmap_free(&c->dur.m);
    free(c->pending);
    free(c->ep_pages);
    free(c->fresh);
    free(c->gather);
    for (size_t k = 0; k < c->n_owned; k++)
        free(c->owned[k]);
    free(c->owned);
    free(c);
    if (oom) {
        protocol_report_free(r);
        return -ENOMEM;
    }
    return 0;
}
