/*
 * cowdisk.c - copy-on-write device over a read-only image (cowdisk.h).
 *
 * Invariants: every value in c->w was stored by secmap_put_copy (it lives
 * in the map's own arena), so a later write to the same sector may update
 * it in place; ops[] holds exactly the operations that survive (a drop
 * removes those after the last flush), and replaying ops[] over the
 * underlying image reproduces the current contents.
 */
#define _GNU_SOURCE
#include "faults/cowdisk.h"

#include "harness/simdisk.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vhdx/errors.h"

static int under_readable(const struct cowdisk *c, uint64_t s)
{
    return c->read_under && s < c->zero_from && s * SECTOR < c->under_size;
}

/* The 512 bytes of sector s as they read now. */
static int resolve(struct cowdisk *c, uint64_t s, uint8_t out[SECTOR])
{
    const uint8_t *v = secmap_get(&c->w, s);
    if (v) {
        memcpy(out, v, SECTOR);
        return 0;
    }
    memset(out, 0, SECTOR);
    if (!under_readable(c, s))
        return 0;
    uint64_t n = c->under_size - s * SECTOR < SECTOR ? c->under_size - s * SECTOR : SECTOR;
    return c->read_under(c->under_ctx, out, n, s * SECTOR);
}

int cowdisk_read(struct cowdisk *c, void *buf, uint64_t len, uint64_t off)
{
    uint8_t *p = buf;
    while (len > 0) {
        uint64_t s = off / SECTOR, a = off % SECTOR;
        uint64_t n = SECTOR - a < len ? SECTOR - a : len;
        const uint8_t *v = secmap_get(&c->w, s);
        if (v) {
            memcpy(p, v + a, n);
        } else if (!under_readable(c, s)) {
            memset(p, 0, n);
        } else {
            /* A run of consecutive sectors that come from the underlying image. */
            uint64_t run_off = off, run = 0;
            uint64_t limit = c->under_size;
            if (c->zero_from != UINT64_MAX && c->zero_from * SECTOR < limit)
                limit = c->zero_from * SECTOR;
            uint8_t *start = p;
            while (len > 0) {
                s = off / SECTOR;
                a = off % SECTOR;
                n = SECTOR - a < len ? SECTOR - a : len;
                if (secmap_get(&c->w, s) || !under_readable(c, s))
                    break;
                run += n;
                off += n;
                len -= n;
                p += n;
            }
            uint64_t from_under = run_off + run <= limit ? run : limit - run_off;
            if (from_under) {
                int rc = c->read_under(c->under_ctx, start, from_under, run_off);
                if (rc)
                    return rc;
            }
            memset(start + from_under, 0, run - from_under);
            continue;
        }
        p += n;
        off += n;
        len -= n;
    }
    return 0;
}

static int put_sector(struct cowdisk *c, uint64_t s, const uint8_t *bytes)
{
    uint8_t *v = (uint8_t *)secmap_get(&c->w, s); /* ours: see the invariants */
    if (v) {
        memcpy(v, bytes, SECTOR);
        return 0;
    }
    return secmap_put_copy(&c->w, s, bytes);
}

static int apply_write(struct cowdisk *c, const uint8_t *data, uint64_t len, uint64_t off)
{
    uint8_t merged[SECTOR];
    while (len > 0) {
        uint64_t s = off / SECTOR, a = off % SECTOR;
        uint64_t n = SECTOR - a < len ? SECTOR - a : len;
        int rc;
        if (n == SECTOR) {
            rc = put_sector(c, s, data);
        } else {
            if ((rc = resolve(c, s, merged)) != 0)
                return rc;
            memcpy(merged + a, data, n);
            rc = put_sector(c, s, merged);
        }
        if (rc)
            return rc;
        data += n;
        off += n;
        len -= n;
    }
    return 0;
}

static int apply_truncate(struct cowdisk *c, uint64_t size)
{
    if (size < c->size) {
        uint64_t first = (size + SECTOR - 1) / SECTOR;
        if (size % SECTOR) {
            uint8_t merged[SECTOR];
            int rc = resolve(c, size / SECTOR, merged);
            if (rc)
                return rc;
            memset(merged + size % SECTOR, 0, SECTOR - size % SECTOR);
            if ((rc = put_sector(c, size / SECTOR, merged)) != 0)
                return rc;
        }
        secmap_drop_from(&c->w, first);
        if (first < c->zero_from)
            c->zero_from = first;
    }
    c->size = size;
    return 0;
}

static int record(struct cowdisk *c, uint8_t kind, uint64_t off, const void *data, uint32_t len)
{
    if (!c->record)
        return 0;
    if (c->n_ops == c->cap_ops) {
        size_t ncap = c->cap_ops ? c->cap_ops * 2 : 64;
        struct cowdisk_op *n = realloc(c->ops, ncap * sizeof *n);
        if (!n)
            return -ENOMEM;
        c->ops = n;
        c->cap_ops = ncap;
    }
    struct cowdisk_op *op = &c->ops[c->n_ops];
    memset(op, 0, sizeof *op);
    op->kind = kind;
    op->off = off;
    op->len = len;
    if (len) {
        op->data = malloc(len);
        if (!op->data)
            return -ENOMEM;
        memcpy(op->data, data, len);
    }
    c->n_ops++;
    if (kind == 'F')
        c->durable = c->n_ops;
    return 0;
}

static int replay_ops(struct cowdisk *c, const struct cowdisk_op *ops, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int rc = 0;
        if (ops[i].kind == 'W') {
            rc = apply_write(c, ops[i].data, ops[i].len, ops[i].off);
            if (rc == 0 && ops[i].off + ops[i].len > c->size)
                c->size = ops[i].off + ops[i].len;
        } else if (ops[i].kind == 'T') {
            rc = apply_truncate(c, ops[i].off);
        }
        if (rc)
            return rc;
    }
    return 0;
}

static void reset_contents(struct cowdisk *c)
{
    secmap_clear(&c->w);
    c->size = c->under_size;
    c->zero_from = UINT64_MAX;
}

/* ---- bdev methods -------------------------------------------------------------- */
static int cow_read(struct bdev *b, void *buf, size_t len, uint64_t off)
{
    struct cowdisk *c = (struct cowdisk *)b;
    c->reads++;
    if (off > c->size || len > c->size - off)
        return VHDX_E_SHORT_IO;
    return cowdisk_read(c, buf, len, off);
}

static int cow_write(struct bdev *b, const void *buf, size_t len, uint64_t off)
{
    struct cowdisk *c = (struct cowdisk *)b;
    c->writes++;
    if (len > UINT32_MAX)
        return -EFBIG;
    int rc = record(c, 'W', off, buf, (uint32_t)len);
    if (rc == 0)
        rc = apply_write(c, buf, len, off);
    if (rc == 0 && off + len > c->size)
        c->size = off + len;
    return rc;
}

static int cow_flush(struct bdev *b)
{
    struct cowdisk *c = (struct cowdisk *)b;
    c->flushes++;
    return record(c, 'F', 0, NULL, 0);
}

static int cow_size(struct bdev *b, uint64_t *size)
{
    *size = ((struct cowdisk *)b)->size;
    return 0;
}

static int cow_truncate(struct bdev *b, uint64_t size)
{
    struct cowdisk *c = (struct cowdisk *)b;
    c->truncates++;
    int rc = record(c, 'T', size, NULL, 0);
    return rc ? rc : apply_truncate(c, size);
}

static void cow_mark(struct bdev *b, const char *name, uint64_t arg)
{
    (void)arg;
    struct cowdisk *c = (struct cowdisk *)b;
    if (strcmp(name, "fault.drop_pending") != 0 || !c->record)
        return;
    /* Back to the state after the last flush. */
    c->drops++;
    for (size_t i = c->durable; i < c->n_ops; i++)
        free(c->ops[i].data);
    c->n_ops = c->durable;
    reset_contents(c);
    (void)replay_ops(c, c->ops, c->n_ops); /* only -ENOMEM; the next read sees what is there */
}

static const struct bdev_ops cow_ops = {
    .read = cow_read,
    .write = cow_write,
    .flush = cow_flush,
    .size = cow_size,
    .truncate = cow_truncate,
    .mark = cow_mark,
};

void cowdisk_init(struct cowdisk *c, cowdisk_read_fn read_under, void *ctx, uint64_t size)
{
    memset(c, 0, sizeof *c);
    c->base.ops = &cow_ops;
    c->read_under = read_under;
    c->under_ctx = ctx;
    c->under_size = size;
    c->record = 1;
    secmap_init(&c->w);
    reset_contents(c);
}

static int read_crashdisk(void *ctx, void *buf, uint64_t len, uint64_t off)
{
    return crashdisk_read(ctx, buf, len, off);
}

void cowdisk_init_crashdisk(struct cowdisk *c, struct crashdisk *cd)
{
    cowdisk_init(c, read_crashdisk, cd, cd->size);
}

void cowdisk_free(struct cowdisk *c)
{
    for (size_t i = 0; i < c->n_ops; i++)
        free(c->ops[i].data);
    free(c->ops);
    secmap_free(&c->w);
    memset(c, 0, sizeof *c);
}

int cowdisk_materialize(struct cowdisk *dst, const struct cowdisk *src, size_t n)
{
    if (n > src->n_ops)
        n = src->n_ops;
    for (size_t i = 0; i < n; i++) {
        const struct cowdisk_op *op = &src->ops[i];
        int rc = record(dst, op->kind, op->off, op->data, op->len);
        if (rc)
            return rc;
    }
    return replay_ops(dst, src->ops, n);
}

int cowdisk_save(struct cowdisk *c, const char *path)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -errno;
    uint8_t buf[SECTOR];
    int rc = 0;
    for (uint64_t off = 0; off < c->size && rc == 0; off += SECTOR) {
        size_t n = c->size - off < SECTOR ? (size_t)(c->size - off) : SECTOR;
        if ((rc = cowdisk_read(c, buf, n, off)) != 0)
            break;
        if (!memcmp(buf, SECTOR_ZERO, n) && off + n < c->size)
            continue;
        if (fseeko(f, (off_t)off, SEEK_SET) != 0 || fwrite(buf, 1, n, f) != n)
            rc = -EIO;
    }
    if (fclose(f) != 0 && rc == 0)
        rc = -EIO;
    if (rc == 0 && truncate(path, (off_t)c->size) != 0)
        rc = -errno;
    return rc;
}
