/*
 * trace.c - traces in memory and on disk (format in trace.h).
 *
 * Record encodings after the kind byte:
 *   W: u64 offset, u32 length, bytes
 *   T: u64 size
 *   F: (none)
 *   M: u16 name length, name bytes, u64 argument
 *   B: u32 op index, u8 op kind, u64 virtual offset, u64 virtual length, u32 write id
 *   E: u32 op index, i32 rc
 * Guarantees: the parser never reads outside the buffer, rejects a bad
 * magic/version/trailer/CRC before looking at records, caps every count,
 * and leaves *t empty on failure.
 */
#define _POSIX_C_SOURCE 200809L
#include "harness/trace.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/bufpool.h"
#include "vhdx/bdev.h"
#include "vhdx/crc32c.h"
#include "vhdx/format.h"

#define CHUNK_SIZE (4u << 20)

struct trace_chunk {
    struct trace_chunk *next;
    size_t size, used;
    uint8_t data[];
};

void trace_init(struct trace *t)
{
    memset(t, 0, sizeof *t);
    secmap_init(&t->base);
}

static void free_kv(struct trace_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].value);
    }
    free(kv);
}

void trace_free(struct trace *t)
{
    free(t->ops);
    for (size_t i = 0; i < t->n_names; i++)
        free(t->names[i]);
    free(t->names);
    free_kv(t->meta, t->n_meta);
    free_kv(t->choice, t->n_choice);
    secmap_free(&t->base);
    for (struct trace_chunk *c = t->arena, *n; c; c = n) {
        n = c->next;
        bufpool_free(c, sizeof *c + c->size + SECTOR);
    }
    memset(t, 0, sizeof *t);
}

/* Arena allocation, 512-byte aligned so sector pointers stay aligned. */
static uint8_t *arena_alloc(struct trace *t, size_t n)
{
    size_t need = (n + SECTOR - 1) / SECTOR * SECTOR;
    struct trace_chunk *c = t->arena;
    if (!c || c->size - c->used < need) {
        size_t size = need > CHUNK_SIZE ? need : CHUNK_SIZE;
        c = bufpool_alloc(sizeof *c + size + SECTOR); /* 512-aligned; reused across traces */
        if (!c)
            return NULL;
        c->size = size;
        c->used = 0;
        c->next = t->arena;
        t->arena = c;
    }
    /* data[] starts right after the header; align its use to 512. */
    uint8_t *base = (uint8_t *)(((uintptr_t)c->data + SECTOR - 1) / SECTOR * SECTOR);
    uint8_t *p = base + c->used;
    c->used += need;
    return p;
}

/* The base's header section (file identifier, headers, region tables) as
 * one contiguous block, zero sectors included: a device can then lend a
 * whole region table without copying it (bdev map).  Zero sectors are not
 * serialized. */
#define DENSE_SECTORS (1024u * 1024 / SECTOR)
static int densify_base(struct trace *t)
{
    uint64_t n = t->base_size / SECTOR < DENSE_SECTORS ? t->base_size / SECTOR : DENSE_SECTORS;
    if (n == 0)
        return 0;
    uint8_t *block = arena_alloc(t, (size_t)n * SECTOR);
    if (!block)
        return -ENOMEM;
    for (uint64_t s = 0; s < n; s++) {
        const uint8_t *v = secmap_get(&t->base, s);
        memcpy(block + s * SECTOR, v ? v : SECTOR_ZERO, SECTOR);
        int rc = secmap_put(&t->base, s, block + s * SECTOR);
        if (rc)
            return rc;
    }
    return 0;
}

static int set_kv(struct trace_kv **kv, size_t *n, const char *key, const char *value)
{
    for (size_t i = 0; i < *n; i++) {
        if (!strcmp((*kv)[i].key, key)) {
            char *v = strdup(value);
            if (!v)
                return -ENOMEM;
            free((*kv)[i].value);
            (*kv)[i].value = v;
            return 0;
        }
    }
    if (*n >= TRACE_MAX_META)
        return -E2BIG;
    struct trace_kv *nk = realloc(*kv, (*n + 1) * sizeof *nk);
    if (!nk)
        return -ENOMEM;
    *kv = nk;
    nk[*n].key = strdup(key);
    nk[*n].value = strdup(value);
    if (!nk[*n].key || !nk[*n].value) {
        free(nk[*n].key);
        free(nk[*n].value);
        return -ENOMEM;
    }
    (*n)++;
    return 0;
}

static const char *get_kv(const struct trace_kv *kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(kv[i].key, key))
            return kv[i].value;
    return NULL;
}

int trace_set_meta(struct trace *t, const char *key, const char *value)
{
    return set_kv(&t->meta, &t->n_meta, key, value);
}

const char *trace_get_meta(const struct trace *t, const char *key)
{
    return get_kv(t->meta, t->n_meta, key);
}

int trace_set_choice(struct trace *t, const char *key, const char *value)
{
    t->flags |= TRACE_F_CHOICE;
    return set_kv(&t->choice, &t->n_choice, key, value);
}

const char *trace_get_choice(const struct trace *t, const char *key)
{
    return get_kv(t->choice, t->n_choice, key);
}

static struct trace_op *new_op(struct trace *t, uint8_t kind)
{
    if (t->n_ops == t->cap_ops) {
        if (t->n_ops >= TRACE_MAX_OPS)
            return NULL;
        size_t ncap = t->cap_ops ? t->cap_ops * 2 : 1024;
        struct trace_op *n = realloc(t->ops, ncap * sizeof *n);
        if (!n)
            return NULL;
        t->ops = n;
        t->cap_ops = ncap;
    }
    struct trace_op *op = &t->ops[t->n_ops++];
    memset(op, 0, sizeof *op);
    op->kind = kind;
    return op;
}

int trace_add_write(struct trace *t, uint64_t off, const void *data, uint32_t len, const uint8_t **stored)
{
    uint8_t *copy = arena_alloc(t, len ? len : 1);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, data, len);
    struct trace_op *op = new_op(t, TR_WRITE);
    if (!op)
        return -ENOMEM;
    op->off = off;
    op->len = len;
    op->data = copy;
    t->bytes_written += len;
    if (stored)
        *stored = copy;
    return 0;
}

int trace_add_truncate(struct trace *t, uint64_t size)
{
    struct trace_op *op = new_op(t, TR_TRUNCATE);
    if (!op)
        return -ENOMEM;
    op->off = size;
    return 0;
}

int trace_add_flush(struct trace *t)
{
    return new_op(t, TR_FLUSH) ? 0 : -ENOMEM;
}

int trace_find_name(const struct trace *t, const char *name)
{
    for (size_t i = 0; i < t->n_names; i++)
        if (!strcmp(t->names[i], name))
            return (int)i;
    return -1;
}

static int intern(struct trace *t, const char *name)
{
    int i = trace_find_name(t, name);
    if (i >= 0)
        return i;
    if (t->n_names >= TRACE_MAX_NAMES)
        return -E2BIG;
    char **n = realloc(t->names, (t->n_names + 1) * sizeof *n);
    if (!n)
        return -ENOMEM;
    t->names = n;
    if (!(n[t->n_names] = strdup(name)))
        return -ENOMEM;
    return (int)t->n_names++;
}

int trace_add_mark(struct trace *t, const char *name, uint64_t arg)
{
    int idx = intern(t, name);
    if (idx < 0)
        return idx;
    struct trace_op *op = new_op(t, TR_MARK);
    if (!op)
        return -ENOMEM;
    op->name = (uint16_t)idx;
    op->off = arg;
    return 0;
}

int trace_add_vbegin(struct trace *t, uint32_t vop, enum vop_kind kind, uint64_t voff, uint64_t vlen, uint32_t vid)
{
    struct trace_op *op = new_op(t, TR_VBEGIN);
    if (!op)
        return -ENOMEM;
    op->vop = vop;
    op->vkind = (uint8_t)kind;
    op->off = voff;
    op->vlen = vlen;
    op->vid = vid;
    t->flags |= TRACE_F_WORKLOAD;
    return 0;
}

int trace_add_vend(struct trace *t, uint32_t vop, int32_t rc)
{
    struct trace_op *op = new_op(t, TR_VEND);
    if (!op)
        return -ENOMEM;
    op->vop = vop;
    op->rc = rc;
    return 0;
}

static int cmp_u64_(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int trace_set_base(struct trace *t, const struct secmap *m, uint64_t size)
{
    secmap_clear(&t->base);
    t->base_size = size;
    if (!m || m->count == 0)
        return 0;
    /* In sector order, so neighbouring sectors are neighbours in memory
     * (devices can then lend whole structures without copying). */
    uint64_t *keys = malloc(m->count * sizeof *keys);
    if (!keys)
        return -ENOMEM;
    for (size_t i = 0; i < m->count; i++)
        keys[i] = secmap_at(m, i)->key;
    qsort(keys, m->count, sizeof *keys, cmp_u64_);
    int rc = 0;
    for (size_t i = 0; i < m->count && rc == 0; i++) {
        const uint8_t *val = secmap_get(m, keys[i]);
        if ((keys[i] + 1) * SECTOR > size || !memcmp(val, SECTOR_ZERO, SECTOR))
            continue;
        uint8_t *copy = arena_alloc(t, SECTOR);
        if (!copy) {
            rc = -ENOMEM;
            break;
        }
        memcpy(copy, val, SECTOR);
        rc = secmap_put(&t->base, keys[i], copy);
    }
    free(keys);
    return rc ? rc : densify_base(t);
}

int trace_set_base_bytes(struct trace *t, const uint8_t *data, uint64_t size)
{
    secmap_clear(&t->base);
    t->base_size = size;
    for (uint64_t s = 0; (s + 1) * SECTOR <= size; s++) {
        const uint8_t *p = data + s * SECTOR;
        if (!memcmp(p, SECTOR_ZERO, SECTOR))
            continue;
        uint8_t *copy = arena_alloc(t, SECTOR);
        if (!copy)
            return -ENOMEM;
        memcpy(copy, p, SECTOR);
        int rc = secmap_put(&t->base, s, copy);
        if (rc)
            return rc;
    }
    if (size % SECTOR) {
        uint64_t s = size / SECTOR;
        uint8_t tail[SECTOR] = {0};
        memcpy(tail, data + s * SECTOR, size % SECTOR);
        if (memcmp(tail, SECTOR_ZERO, SECTOR)) {
            uint8_t *copy = arena_alloc(t, SECTOR);
            if (!copy)
                return -ENOMEM;
            memcpy(copy, tail, SECTOR);
            int rc = secmap_put(&t->base, s, copy);
            if (rc)
                return rc;
        }
    }
    return densify_base(t);
}

/* ---- serialization ----------------------------------------------------------- */
struct wbuf {
    uint8_t *p;
    size_t len, cap;
    int oom;
};

static void wb_put(struct wbuf *b, const void *data, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n > b->cap) {
        size_t ncap = b->cap ? b->cap : 1 << 16;
        while (ncap < b->len + n)
            ncap *= 2;
        uint8_t *np = realloc(b->p, ncap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void wb_u8(struct wbuf *b, uint8_t v) { wb_put(b, &v, 1); }
static void wb_u16(struct wbuf *b, uint16_t v)
{
    uint8_t x[2];
    vhdx_put16(x, v);
    wb_put(b, x, 2);
}
static void wb_u32(struct wbuf *b, uint32_t v)
{
    uint8_t x[4];
    vhdx_put32(x, v);
    wb_put(b, x, 4);
}
static void wb_u64(struct wbuf *b, uint64_t v)
{
    uint8_t x[8];
    vhdx_put64(x, v);
    wb_put(b, x, 8);
}
static void wb_str(struct wbuf *b, const char *s)
{
    size_t n = strlen(s);
    if (n > 65535)
        n = 65535;
    wb_u16(b, (uint16_t)n);
    wb_put(b, s, n);
}
static void wb_kv(struct wbuf *b, const struct trace_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        wb_str(b, kv[i].key);
        wb_str(b, kv[i].value);
    }
    wb_u16(b, 0);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int trace_serialize(const struct trace *t, uint8_t **out, size_t *outlen)
{
    struct wbuf b = {0};
    wb_put(&b, "PCTRACE1", 8);
    wb_u32(&b, TRACE_VERSION);
    wb_u32(&b, t->flags);
    wb_u64(&b, t->seed);
    wb_u64(&b, t->base_size);
    wb_u64(&b, t->n_ops);
    uint8_t zero[24] = {0};
    wb_put(&b, zero, sizeof zero);
    wb_kv(&b, t->meta, t->n_meta);
    /* Base: runs of consecutive present sectors as extents. */
    uint64_t *keys = malloc((t->base.count + 1) * sizeof *keys);
    if (!keys) {
        free(b.p);
        return -ENOMEM;
    }
    size_t nkeys = 0;
    for (size_t i = 0; i < t->base.count; i++) {
        const struct secmap_slot *sl = secmap_at(&t->base, i);
        if (memcmp(sl->val, SECTOR_ZERO, SECTOR) != 0)
            keys[nkeys++] = sl->key;
    }
    qsort(keys, nkeys, sizeof *keys, cmp_u64);
    uint32_t extents = 0;
    for (size_t i = 0; i < nkeys; i++)
        if (i == 0 || keys[i] != keys[i - 1] + 1)
            extents++;
    wb_u32(&b, extents);
    for (size_t i = 0; i < nkeys;) {
        size_t j = i + 1;
        while (j < nkeys && keys[j] == keys[j - 1] + 1 && j - i < (1u << 20))
            j++;
        wb_u64(&b, keys[i] * SECTOR);
        wb_u32(&b, (uint32_t)((j - i) * SECTOR));
        for (size_t k = i; k < j; k++)
            wb_put(&b, secmap_get(&t->base, keys[k]), SECTOR);
        i = j;
    }
    free(keys);
    for (size_t i = 0; i < t->n_ops; i++) {
        const struct trace_op *op = &t->ops[i];
        wb_u8(&b, op->kind);
        switch (op->kind) {
        case TR_WRITE:
            wb_u64(&b, op->off);
            wb_u32(&b, op->len);
            wb_put(&b, op->data, op->len);
            break;
        case TR_TRUNCATE:
            wb_u64(&b, op->off);
            break;
        case TR_FLUSH:
            break;
        case TR_MARK:
            wb_str(&b, t->names[op->name]);
            wb_u64(&b, op->off);
            break;
        case TR_VBEGIN:
            wb_u32(&b, op->vop);
            wb_u8(&b, op->vkind);
            wb_u64(&b, op->off);
            wb_u64(&b, op->vlen);
            wb_u32(&b, op->vid);
            break;
        case TR_VEND:
            wb_u32(&b, op->vop);
            wb_u32(&b, (uint32_t)op->rc);
            break;
        }
    }
    if (t->flags & TRACE_F_CHOICE) {
        wb_u8(&b, 'C');
        wb_kv(&b, t->choice, t->n_choice);
    }
    uint64_t body = b.len;
    wb_u64(&b, body);
    wb_u32(&b, b.oom ? 0 : crc32c(0, b.p, body));
    wb_put(&b, "PCEND\0\0\0", 8);
    if (b.oom) {
        free(b.p);
        return -ENOMEM;
    }
    *out = b.p;
    *outlen = b.len;
    return 0;
}

int trace_save(const struct trace *t, const char *path, char *err, size_t errlen)
{
    uint8_t *buf;
    size_t len;
    if (trace_serialize(t, &buf, &len) != 0) {
        snprintf(err, errlen, "out of memory serializing the trace");
        return -1;
    }
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        free(buf);
        return -1;
    }
    int ok = fwrite(buf, 1, len, f) == len;
    ok &= fclose(f) == 0;
    free(buf);
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: write failed: %s", path, strerror(errno));
        remove(tmp);
        return -1;
    }
    return 0;
}

/* ---- parsing ---------------------------------------------------------------- */
struct rbuf {
    const uint8_t *p;
    size_t len, pos;
    int bad;
};

static const uint8_t *rb_take(struct rbuf *r, size_t n)
{
    if (r->bad || n > r->len - r->pos) {
        r->bad = 1;
        return NULL;
    }
    const uint8_t *p = r->p + r->pos;
    r->pos += n;
    return p;
}
static uint8_t rb_u8(struct rbuf *r)
{
    const uint8_t *p = rb_take(r, 1);
    return p ? *p : 0;
}
static uint16_t rb_u16(struct rbuf *r)
{
    const uint8_t *p = rb_take(r, 2);
    return p ? vhdx_get16(p) : 0;
}
static uint32_t rb_u32(struct rbuf *r)
{
    const uint8_t *p = rb_take(r, 4);
    return p ? vhdx_get32(p) : 0;
}
static uint64_t rb_u64(struct rbuf *r)
{
    const uint8_t *p = rb_take(r, 8);
    return p ? vhdx_get64(p) : 0;
}
/* A length-prefixed string into buf (NUL-terminated); 0 on success. */
static int rb_str(struct rbuf *r, char *buf, size_t cap, uint16_t *lenp)
{
    uint16_t n = rb_u16(r);
    if (lenp)
        *lenp = n;
    const uint8_t *p = rb_take(r, n);
    if (!p || n >= cap)
        return -1;
    memcpy(buf, p, n);
    buf[n] = '\0';
    return memchr(buf, '\0', n) ? -1 : 0;
}

static int rb_kv(struct rbuf *r, struct trace *t, int choice)
{
    enum { CAP = 65536 };
    char *key = malloc(CAP), *value = malloc(CAP);
    int rc = -1;
    for (size_t i = 0; key && value && i <= TRACE_MAX_META; i++) {
        uint16_t klen;
        if (rb_str(r, key, CAP, &klen) != 0)
            break;
        if (klen == 0) {
            rc = 0;
            break;
        }
        if (rb_str(r, value, CAP, NULL) != 0)
            break;
        if ((choice ? trace_set_choice(t, key, value) : trace_set_meta(t, key, value)) != 0)
            break;
    }
    free(key);
    free(value);
    return rc;
}

static int fail(struct trace *t, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    trace_free(t);
    trace_init(t);
    return -1;
}

int trace_parse(struct trace *t, const uint8_t *buf, size_t len, char *err, size_t errlen)
{
    trace_init(t);
    if (len < 64 + 20 || memcmp(buf, "PCTRACE1", 8) != 0)
        return fail(t, err, errlen, "not a powercut trace (bad magic)");
    if (vhdx_get32(buf + 8) != TRACE_VERSION)
        return fail(t, err, errlen, "trace format version %u; this build reads version %u", vhdx_get32(buf + 8),
                    TRACE_VERSION);
    if (memcmp(buf + len - 8, "PCEND\0\0\0", 8) != 0)
        return fail(t, err, errlen, "trace is truncated (no trailer)");
    uint64_t body = vhdx_get64(buf + len - 20);
    if (body != len - 20)
        return fail(t, err, errlen, "trace trailer says %llu bytes, file has %zu", (unsigned long long)body, len - 20);
    uint32_t want = vhdx_get32(buf + len - 12);
    if (crc32c(0, buf, body) != want)
        return fail(t, err, errlen, "trace checksum mismatch: the file is damaged");
    struct rbuf r = {buf, body, 0, 0};
    rb_take(&r, 12);
    t->flags = rb_u32(&r);
    t->seed = rb_u64(&r);
    t->base_size = rb_u64(&r);
    uint64_t n_ops = rb_u64(&r);
    rb_take(&r, 24);
    if (n_ops > TRACE_MAX_OPS || n_ops > body)
        return fail(t, err, errlen, "trace claims %llu operations", (unsigned long long)n_ops);
    if (rb_kv(&r, t, 0) != 0)
        return fail(t, err, errlen, "trace metadata is malformed at byte %zu", r.pos);
    uint32_t extents = rb_u32(&r);
    if (extents > body / 12)
        return fail(t, err, errlen, "trace claims %u base extents", extents);
    for (uint32_t e = 0; e < extents; e++) {
        uint64_t off = rb_u64(&r);
        uint32_t elen = rb_u32(&r);
        const uint8_t *d = rb_take(&r, elen);
        if (!d || off % SECTOR || elen % SECTOR || off > t->base_size || elen > t->base_size - off)
            return fail(t, err, errlen, "trace base extent %u is malformed", e);
        for (uint32_t k = 0; k < elen / SECTOR; k++) {
            uint8_t *copy = arena_alloc(t, SECTOR);
            if (!copy || secmap_put(&t->base, off / SECTOR + k, copy) != 0)
                return fail(t, err, errlen, "out of memory loading the trace base");
            memcpy(copy, d + (size_t)k * SECTOR, SECTOR);
        }
    }
    if (densify_base(t) != 0)
        return fail(t, err, errlen, "out of memory loading the trace base");
    char name[1024];
    for (uint64_t i = 0; i < n_ops; i++) {
        uint8_t kind = rb_u8(&r);
        int rc = 0;
        switch (kind) {
        case TR_WRITE: {
            uint64_t off = rb_u64(&r);
            uint32_t wl = rb_u32(&r);
            const uint8_t *d = rb_take(&r, wl);
            if (!d || wl > TRACE_MAX_WRITE || off > BDEV_MAX_OFFSET || wl > BDEV_MAX_OFFSET - off)
                return fail(t, err, errlen, "trace operation %llu: malformed write", (unsigned long long)i);
            rc = trace_add_write(t, off, d, wl, NULL);
            break;
        }
        case TR_TRUNCATE: {
            uint64_t size = rb_u64(&r);
            if (size > BDEV_MAX_OFFSET)
                return fail(t, err, errlen, "trace operation %llu: truncate to %llu", (unsigned long long)i,
                            (unsigned long long)size);
            rc = trace_add_truncate(t, size);
            break;
        }
        case TR_FLUSH:
            rc = trace_add_flush(t);
            break;
        case TR_MARK: {
            uint16_t nl;
            if (rb_str(&r, name, sizeof name, &nl) != 0 || nl == 0)
                return fail(t, err, errlen, "trace operation %llu: malformed mark", (unsigned long long)i);
            uint64_t arg = rb_u64(&r);
            rc = trace_add_mark(t, name, arg);
            break;
        }
        case TR_VBEGIN: {
            uint32_t vop = rb_u32(&r);
            uint8_t vk = rb_u8(&r);
            uint64_t voff = rb_u64(&r), vlen = rb_u64(&r);
            uint32_t vid = rb_u32(&r);
            if (vk < VOP_WRITE || vk > VOP_APPLY)
                return fail(t, err, errlen, "trace operation %llu: unknown workload op kind %u", (unsigned long long)i, vk);
            rc = trace_add_vbegin(t, vop, (enum vop_kind)vk, voff, vlen, vid);
            break;
        }
        case TR_VEND: {
            uint32_t vop = rb_u32(&r);
            int32_t vrc = (int32_t)rb_u32(&r);
            rc = trace_add_vend(t, vop, vrc);
            break;
        }
        default:
            return fail(t, err, errlen, "trace operation %llu: unknown kind 0x%02x at byte %zu", (unsigned long long)i,
                        kind, r.pos - 1);
        }
        if (r.bad)
            return fail(t, err, errlen, "trace operation %llu runs past the end of the file", (unsigned long long)i);
        if (rc)
            return fail(t, err, errlen, "trace operation %llu: %s", (unsigned long long)i, strerror(-rc));
    }
    t->flags &= ~(uint32_t)TRACE_F_CHOICE;
    uint32_t flags_saved = vhdx_get32(buf + 12);
    if (flags_saved & TRACE_F_CHOICE) {
        if (rb_u8(&r) != 'C' || rb_kv(&r, t, 1) != 0)
            return fail(t, err, errlen, "trace crash choice is malformed");
    }
    if (r.bad || r.pos != body)
        return fail(t, err, errlen, "trace has %zu unexpected bytes after its records", body - r.pos);
    t->flags = flags_saved;
    return 0;
}

int trace_load(struct trace *t, const char *path, char *err, size_t errlen)
{
    trace_init(t);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (fseek(f, 0, SEEK_END) != 0) {
        snprintf(err, errlen, "%s: cannot seek: %s", path, strerror(errno));
        fclose(f);
        return -1;
    }
    long n = ftell(f);
    rewind(f);
    if (n < 0 || (unsigned long)n > (UINT64_C(1) << 36)) {
        snprintf(err, errlen, "%s: unusable size", path);
        fclose(f);
        return -1;
    }
    uint8_t *buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        snprintf(err, errlen, "%s: cannot read", path);
        free(buf);
        fclose(f);
        return -1;
    }
    fclose(f);
    int rc = trace_parse(t, buf, (size_t)n, err, errlen);
    free(buf);
    if (rc != 0) {
        char tmp[512];
        snprintf(tmp, sizeof tmp, "%s", err);
        snprintf(err, errlen, "%s: %s", path, tmp);
    }
    return rc;
}
