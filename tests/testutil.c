/*
 * testutil.c - CHECK bookkeeping and the in-memory test device.
 */
#include "testutil.h"

#include <errno.h>

int test_failures;
int test_checks;

int test_summary(const char *name)
{
    if (test_failures)
        fprintf(stderr, "%s: %d of %d checks FAILED\n", name, test_failures, test_checks);
    else
        printf("%s: all %d checks passed\n", name, test_checks);
    return test_failures ? 1 : 0;
}

static int md_grow(struct memdev *m, uint64_t size)
{
    if (size > m->cap) {
        size_t ncap = m->cap ? m->cap : 1 << 20;
        while (ncap < size)
            ncap *= 2;
        uint8_t *n = realloc(m->buf, ncap);
        if (!n)
            return -ENOMEM;
        memset(n + m->cap, 0, ncap - m->cap);
        m->buf = n;
        m->cap = ncap;
    }
    if (size > m->size)
        m->size = size;
    return 0;
}

static void md_log(struct memdev *m, uint64_t off, const void *data, size_t len, int is_flush)
{
    if (!m->record)
        return;
    if (m->nlog == m->caplog) {
        m->caplog = m->caplog ? m->caplog * 2 : 64;
        m->log = realloc(m->log, m->caplog * sizeof *m->log);
    }
    struct memdev_write *w = &m->log[m->nlog++];
    w->off = off;
    w->len = len;
    w->is_flush = is_flush;
    w->data = NULL;
    if (data) {
        w->data = malloc(len ? len : 1);
        memcpy(w->data, data, len);
    }
}

static int md_read(struct bdev *d, void *buf, size_t len, uint64_t off)
{
    struct memdev *m = (struct memdev *)d;
    m->reads++;
    if (off > m->size || len > m->size - off)
        return VHDX_E_SHORT_IO;
    memcpy(buf, m->buf + off, len);
    return 0;
}

static int md_write(struct bdev *d, const void *buf, size_t len, uint64_t off)
{
    struct memdev *m = (struct memdev *)d;
    m->writes++;
    if (m->fail_write_at && m->writes == m->fail_write_at)
        return -EIO;
    int rc = md_grow(m, off + len);
    if (rc)
        return rc;
    memcpy(m->buf + off, buf, len);
    md_log(m, off, buf, len, 0);
    return 0;
}

static int md_flush(struct bdev *d)
{
    struct memdev *m = (struct memdev *)d;
    m->flushes++;
    if (m->fail_flush_at && m->flushes == m->fail_flush_at)
        return -EIO;
    md_log(m, 0, NULL, 0, 1);
    return 0;
}

static int md_size(struct bdev *d, uint64_t *size)
{
    *size = ((struct memdev *)d)->size;
    return 0;
}

static int md_truncate(struct bdev *d, uint64_t size)
{
    struct memdev *m = (struct memdev *)d;
    if (size > m->size) {
        int rc = md_grow(m, size);
        if (rc)
            return rc;
    } else if (size < m->size) {
        memset(m->buf + size, 0, m->size - size);
        m->size = size;
    }
    md_log(m, size, NULL, 0, 0);
    return 0;
}

static const struct bdev_ops md_ops = {md_read, md_write, md_flush, md_size, md_truncate, NULL, NULL, NULL};

struct memdev *memdev_new(void)
{
    struct memdev *m = calloc(1, sizeof *m);
    m->base.ops = &md_ops;
    return m;
}

void memdev_free(struct memdev *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nlog; i++)
        free(m->log[i].data);
    free(m->log);
    free(m->buf);
    free(m);
}

struct memdev *memdev_replay_prefix(const struct memdev *base, const struct memdev *m, size_t n)
{
    struct memdev *r = base ? memdev_clone(base) : memdev_new();
    for (size_t i = 0; i < n && i < m->nlog; i++) {
        const struct memdev_write *w = &m->log[i];
        if (w->is_flush)
            continue;
        if (w->data)
            md_write(&r->base, w->data, w->len, w->off);
        else
            md_truncate(&r->base, w->off);
    }
    r->writes = 0;
    return r;
}

struct memdev *memdev_clone(const struct memdev *m)
{
    struct memdev *r = memdev_new();
    md_grow(r, m->size);
    r->size = m->size;
    if (m->size)
        memcpy(r->buf, m->buf, m->size);
    return r;
}

int memdev_equal(const struct memdev *a, const struct memdev *b)
{
    return a->size == b->size && (a->size == 0 || memcmp(a->buf, b->buf, a->size) == 0);
}

uint64_t test_rand(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

void test_fill(uint8_t *buf, size_t n, uint64_t seed)
{
    uint64_t st = seed;
    for (size_t i = 0; i < n; i += 8) {
        uint64_t v = test_rand(&st);
        for (size_t k = 0; k < 8 && i + k < n; k++)
            buf[i + k] = (uint8_t)(v >> (8 * k));
    }
}
