/*
 * pack.c - spool + base image -> harness trace (rules in pack.h).
 *
 * Guarantees: every spool length is checked against the bytes that remain
 * before it is used, so a damaged spool gives a clear error, never a read
 * out of bounds; the base is read in 1 MiB chunks skipping holes
 * (SEEK_DATA), so a large sparse image costs its data, not its size; the
 * verification streams the final image once.
 */
#define _GNU_SOURCE
#include "pack.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool.h"
#include "vhdx/format.h"

#define CHUNK (1u << 20)
#define ZERO_CHUNK (16u << 20)

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- spool records -------------------------------------------------------------- */
struct rec {
    uint8_t kind;        /* enum spool_kind */
    uint8_t flags;       /* SPOOL_F_* */
    uint32_t pid, tid;   /* who recorded it */
    uint64_t a, b;       /* per kind */
    uint32_t c;          /* per kind */
    uint32_t datalen;    /* bytes at data */
    const uint8_t *data; /* inside the spool buffer */
};

/* Decodes the record at *pos.  1 = a record, 0 = clean end, -1 = cut short
 * (the remaining bytes are too few), -2 = damaged. */
static int next_rec(const uint8_t *buf, size_t len, size_t *pos, struct rec *r)
{
    if (*pos == len)
        return 0;
    if (len - *pos < SPOOL_HDR)
        return -1;
    const uint8_t *h = buf + *pos;
    if (vhdx_get32(h) != SPOOL_MAGIC)
        return -2;
    r->kind = h[4];
    r->flags = h[5];
    r->pid = vhdx_get32(h + 8);
    r->tid = vhdx_get32(h + 12);
    r->a = vhdx_get64(h + 16);
    r->b = vhdx_get64(h + 24);
    r->c = vhdx_get32(h + 32);
    r->datalen = vhdx_get32(h + 36);
    if (r->datalen > SPOOL_MAX_DATA)
        return -2;
    if (len - *pos - SPOOL_HDR < r->datalen)
        return -1;
    r->data = h + SPOOL_HDR;
    *pos += SPOOL_HDR + r->datalen;
    switch (r->kind) {
    case SPOOL_PROCESS: case SPOOL_WRITE: case SPOOL_TRUNCATE: case SPOOL_FLUSH_ISSUE: case SPOOL_FLUSH_DONE:
    case SPOOL_SYNC_RANGE: case SPOOL_MARK: case SPOOL_STOPPED:
        return 1;
    case SPOOL_FALLOCATE:
        return r->datalen == 16 ? 1 : -2;
    default:
        return -2;
    }
}

static int read_file(const char *path, uint8_t **out, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(err, errlen, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size < 0) {
        fclose(f);
        return fail(err, errlen, "%s: cannot stat", path);
    }
    uint8_t *buf = malloc((size_t)st.st_size + 1);
    if (!buf || fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        free(buf);
        fclose(f);
        return fail(err, errlen, "%s: cannot read", path);
    }
    fclose(f);
    *out = buf;
    *len = (size_t)st.st_size;
    return 0;
}

/* ---- flush outcomes ------------------------------------------------------------ */
struct flush_done {
    uint64_t id; /* flush id */
    int64_t rc;  /* 0 or -errno */
};

static int cmp_flush(const void *a, const void *b)
{
    uint64_t x = ((const struct flush_done *)a)->id, y = ((const struct flush_done *)b)->id;
    return x < y ? -1 : x > y;
}

/* ---- base image ------------------------------------------------------------------ */
static int load_base(const char *path, struct secmap *m, uint64_t *size, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(err, errlen, "base image %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return fail(err, errlen, "base image %s: not a regular file", path);
    }
    *size = (uint64_t)st.st_size;
    uint8_t *buf = malloc(CHUNK);
    if (!buf) {
        close(fd);
        return fail(err, errlen, "out of memory");
    }
    int rc = 0;
    off_t off = 0;
    while (off < st.st_size && rc == 0) {
        off_t data = lseek(fd, off, SEEK_DATA);
        if (data < 0)
            break; /* only holes remain (ENXIO) */
        off = data / SECTOR * SECTOR;
        size_t want = CHUNK;
        if ((uint64_t)off + want > (uint64_t)st.st_size)
            want = (size_t)(st.st_size - off);
        ssize_t got = pread(fd, buf, want, off);
        if (got <= 0) {
            rc = fail(err, errlen, "base image %s: read at %lld failed", path, (long long)off);
            break;
        }
        if ((size_t)got % SECTOR)
            memset(buf + got, 0, SECTOR - (size_t)got % SECTOR); /* the file's last partial sector */
        for (size_t s = 0; s * SECTOR < (size_t)got && rc == 0; s++)
            if (memcmp(buf + s * SECTOR, SECTOR_ZERO, SECTOR) != 0 &&
                secmap_put_copy(m, (uint64_t)off / SECTOR + s, buf + s * SECTOR) != 0)
                rc = fail(err, errlen, "out of memory loading the base image");
        off += got;
    }
    free(buf);
    close(fd);
    return rc;
}

/* ---- end state and verification ------------------------------------------------ */
struct endstate {
    const struct secmap *base; /* trace base */
    struct secmap fin;         /* sectors changed by the operations */
    uint64_t size;             /* current size */
    uint64_t zero_from;        /* base sectors at or past this read zero (after a shrink) */
};

static const uint8_t *end_sector(const struct endstate *e, uint64_t s)
{
    const uint8_t *v = secmap_get(&e->fin, s);
    if (v)
        return v;
    if (s >= e->zero_from)
        return SECTOR_ZERO;
    v = secmap_get(e->base, s);
    return v ? v : SECTOR_ZERO;
}

static int end_write(struct endstate *e, uint64_t off, const uint8_t *data, uint64_t len)
{
    for (uint64_t s = off / SECTOR; s * SECTOR < off + len; s++) {
        uint64_t lo = s * SECTOR, hi = lo + SECTOR;
        int rc;
        if (lo >= off && hi <= off + len) {
            rc = secmap_put(&e->fin, s, data + (lo - off));
        } else {
            uint8_t merged[SECTOR];
            memcpy(merged, end_sector(e, s), SECTOR);
            uint64_t a = off > lo ? off : lo, b = off + len < hi ? off + len : hi;
            memcpy(merged + (a - lo), data + (a - off), (size_t)(b - a));
            rc = secmap_put_copy(&e->fin, s, merged);
        }
        if (rc)
            return rc;
    }
    if (off + len > e->size)
        e->size = off + len;
    return 0;
}

static int end_truncate(struct endstate *e, uint64_t size)
{
    if (size < e->size) {
        uint64_t keep = (size + SECTOR - 1) / SECTOR; /* sectors kept (the last maybe partly) */
        if (size % SECTOR) {
            uint8_t part[SECTOR];
            memcpy(part, end_sector(e, size / SECTOR), SECTOR);
            memset(part + size % SECTOR, 0, SECTOR - size % SECTOR);
            int rc = secmap_put_copy(&e->fin, size / SECTOR, part);
            if (rc)
                return rc;
        }
        secmap_drop_from(&e->fin, keep);
        if (keep < e->zero_from)
            e->zero_from = keep;
    }
    e->size = size;
    return 0;
}

static int verify(const struct trace *t, const char *path, struct pack_result *r, char *err, size_t errlen)
{
    struct endstate e;
    memset(&e, 0, sizeof e);
    e.base = &t->base;
    secmap_init(&e.fin);
    e.size = t->base_size;
    e.zero_from = UINT64_MAX;
    int rc = 0;
    for (size_t i = 0; i < t->n_ops && rc == 0; i++) {
        const struct trace_op *op = &t->ops[i];
        if (op->kind == TR_WRITE)
            rc = end_write(&e, op->off, op->data, op->len);
        else if (op->kind == TR_TRUNCATE)
            rc = end_truncate(&e, op->off);
    }
    if (rc) {
        secmap_free(&e.fin);
        return fail(err, errlen, "out of memory verifying the trace");
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        secmap_free(&e.fin);
        return fail(err, errlen, "final image %s: %s", path, strerror(errno));
    }
    r->verified = 1;
    r->diff_sectors = 0;
    if ((uint64_t)st.st_size != e.size) {
        r->verified = 0;
        r->first_diff = (uint64_t)st.st_size < e.size ? (uint64_t)st.st_size : e.size;
        r->diff_sectors = 1;
    }
    uint8_t *buf = malloc(CHUNK);
    uint64_t size = (uint64_t)st.st_size < e.size ? (uint64_t)st.st_size : e.size;
    for (uint64_t off = 0; buf && off < size && rc == 0; off += CHUNK) {
        size_t want = size - off < CHUNK ? (size_t)(size - off) : CHUNK;
        ssize_t got = pread(fd, buf, want, (off_t)off);
        if (got != (ssize_t)want) {
            rc = fail(err, errlen, "final image %s: short read at %" PRIu64, path, off);
            break;
        }
        for (size_t k = 0; k < want; k += SECTOR) {
            size_t n = want - k < SECTOR ? want - k : SECTOR;
            if (memcmp(buf + k, end_sector(&e, (off + k) / SECTOR), n) != 0) {
                if (r->verified) {
                    r->verified = 0;
                    r->first_diff = off + k;
                }
                r->diff_sectors++;
            }
        }
    }
    if (!buf)
        rc = fail(err, errlen, "out of memory");
    free(buf);
    close(fd);
    secmap_free(&e.fin);
    return rc;
}

/* ---- the pack ------------------------------------------------------------------------ */
static int meta_u64(struct trace *t, const char *key, uint64_t v)
{
    char b[32];
    snprintf(b, sizeof b, "%" PRIu64, v);
    return trace_set_meta(t, key, b);
}

struct tid_set {
    uint64_t *v; /* (pid << 32 | tid) values */
    size_t n, cap;
};

static void tid_add(struct tid_set *s, uint32_t pid, uint32_t tid)
{
    uint64_t k = (uint64_t)pid << 32 | tid;
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i] == k)
            return;
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 16;
        uint64_t *nv = realloc(s->v, nc * sizeof *nv);
        if (!nv)
            return; /* statistics only */
        s->v = nv;
        s->cap = nc;
    }
    s->v[s->n++] = k;
}

static int add_zeros(struct trace *t, uint64_t off, uint64_t len, const uint8_t *zeros, struct pack_result *r)
{
    while (len > 0) {
        uint32_t n = len < ZERO_CHUNK ? (uint32_t)len : ZERO_CHUNK;
        int rc = trace_add_write(t, off, zeros, n, NULL);
        if (rc)
            return rc;
        r->writes++;
        r->bytes_written += n;
        off += n;
        len -= n;
    }
    return 0;
}

int pack_spool(const struct pack_options *o, struct trace *t, struct pack_result *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    r->verified = -1;
    trace_init(t);
    uint8_t *sp = NULL, *zeros = NULL;
    size_t splen = 0, pos = 0;
    struct flush_done *fd = NULL;
    size_t nfd = 0, capfd = 0;
    struct tid_set tids = {0};
    struct secmap base;
    secmap_init(&base);
    int rc = -1;
    char stopped[1024] = "";
    if (read_file(o->spool, &sp, &splen, err, errlen) != 0)
        goto out;
    /* Pass 1: validate, find the end, collect flush outcomes. */
    struct rec rec;
    int k;
    size_t end = 0;
    while ((k = next_rec(sp, splen, &pos, &rec)) == 1) {
        end = pos;
        r->records++;
        if (rec.kind == SPOOL_FLUSH_DONE) {
            if (nfd == capfd) {
                capfd = capfd ? capfd * 2 : 256;
                struct flush_done *n = realloc(fd, capfd * sizeof *n);
                if (!n) {
                    fail(err, errlen, "out of memory");
                    goto out;
                }
                fd = n;
            }
            fd[nfd++] = (struct flush_done){rec.a, (int64_t)rec.b};
        }
    }
    if (k == -2) {
        fail(err, errlen, "%s: damaged spool record at byte %zu (not written by libpcrecord?)", o->spool, pos);
        goto out;
    }
    r->spool_truncated = k == -1;
    if (nfd)
        qsort(fd, nfd, sizeof *fd, cmp_flush);
    /* The base. */
    uint64_t base_size = 0;
    if (o->base && load_base(o->base, &base, &base_size, err, errlen) != 0)
        goto out;
    if (trace_set_base(t, &base, base_size) != 0) {
        fail(err, errlen, "out of memory storing the base image");
        goto out;
    }
    t->flags |= TRACE_F_EXTERNAL;
    t->seed = 0;
    zeros = calloc(1, ZERO_CHUNK);
    if (!zeros) {
        fail(err, errlen, "out of memory");
        goto out;
    }
    /* Pass 2: operations. */
    pos = 0;
    int orc = 0;
    char key[64];
    while (orc == 0 && pos < end && next_rec(sp, end, &pos, &rec) == 1) {
        switch (rec.kind) {
        case SPOOL_PROCESS: {
            char cmd[1024];
            size_t n = rec.datalen < sizeof cmd - 1 ? rec.datalen : sizeof cmd - 1;
            memcpy(cmd, rec.data, n);
            for (size_t i = 0; i < n; i++)
                if (cmd[i] == '\0' || (unsigned char)cmd[i] < 0x20)
                    cmd[i] = ' ';
            while (n > 0 && cmd[n - 1] == ' ')
                n--;
            cmd[n] = '\0';
            if (r->processes < 64) {
                char val[1100];
                snprintf(key, sizeof key, "record.process.%u", r->processes);
                snprintf(val, sizeof val, "pid=%" PRIu64 " ppid=%" PRIu64 " %s", rec.a, rec.b, cmd);
                orc = trace_set_meta(t, key, val);
            }
            r->processes++;
            break;
        }
        case SPOOL_WRITE:
            tid_add(&tids, rec.pid, rec.tid);
            if (rec.datalen == 0)
                break;
            orc = trace_add_write(t, rec.a, rec.data, rec.datalen, NULL);
            r->writes++;
            r->bytes_written += rec.datalen;
            if (orc == 0 && (rec.flags & SPOOL_F_SYNC)) {
                orc = trace_add_flush(t);
                r->flushes++;
            }
            break;
        case SPOOL_TRUNCATE:
            tid_add(&tids, rec.pid, rec.tid);
            orc = trace_add_truncate(t, rec.a);
            r->truncates++;
            break;
        case SPOOL_FLUSH_ISSUE: {
            tid_add(&tids, rec.pid, rec.tid);
            struct flush_done key1 = {rec.a, 0};
            const struct flush_done *d = nfd ? bsearch(&key1, fd, nfd, sizeof *fd, cmp_flush) : NULL;
            if (d && d->rc == 0) {
                orc = trace_add_flush(t);
                r->flushes++;
            } else {
                orc = trace_add_mark(t, d ? "flush.failed" : "flush.unfinished", d ? (uint64_t)-d->rc : 0);
                r->marks++;
            }
            break;
        }
        case SPOOL_FLUSH_DONE:
            break;
        case SPOOL_FALLOCATE: {
            tid_add(&tids, rec.pid, rec.tid);
            uint64_t before = vhdx_get64(rec.data), after = vhdx_get64(rec.data + 8);
            uint64_t off = rec.a, len = rec.b, mode = rec.c;
            if (after > before) {
                orc = trace_add_truncate(t, after);
                r->truncates++;
            }
            if (orc == 0 && (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) && off < before) {
                uint64_t zend = off + len < before ? off + len : before;
                orc = add_zeros(t, off, zend - off, zeros, r);
            }
            if (orc == 0) {
                orc = trace_add_mark(t, "fallocate", mode);
                r->marks++;
            }
            break;
        }
        case SPOOL_SYNC_RANGE:
            orc = trace_add_mark(t, "sync_file_range", rec.b);
            r->marks++;
            break;
        case SPOOL_MARK: {
            char name[256];
            size_t n = rec.datalen < sizeof name - 1 ? rec.datalen : sizeof name - 1;
            memcpy(name, rec.data, n);
            name[n] = '\0';
            if (n == 0)
                snprintf(name, sizeof name, "mark");
            orc = trace_add_mark(t, name, rec.a);
            r->marks++;
            break;
        }
        case SPOOL_STOPPED: {
            size_t n = rec.datalen < sizeof stopped - 1 ? rec.datalen : sizeof stopped - 1;
            memcpy(stopped, rec.data, n);
            stopped[n] = '\0';
            r->stopped = 1;
            break;
        }
        }
    }
    if (orc) {
        fail(err, errlen, "building the trace: %s", strerror(-orc));
        goto out;
    }
    /* A stop the library could only report beside the spool. */
    if (!r->stopped) {
        char p[4200];
        snprintf(p, sizeof p, "%s%s", o->spool, PCRECORD_STOPPED_SUFFIX);
        FILE *f = fopen(p, "r");
        if (f) {
            if (!fgets(stopped, sizeof stopped, f))
                snprintf(stopped, sizeof stopped, "stopped (no reason given)");
            stopped[strcspn(stopped, "\n")] = '\0';
            fclose(f);
            r->stopped = 1;
        }
    }
    r->threads = (uint32_t)tids.n;
    int mrc = 0;
    mrc |= trace_set_meta(t, "record.tool", "libpcrecord " VHDX_VERSION_STRING);
    if (o->file)
        mrc |= trace_set_meta(t, "record.file", o->file);
    mrc |= trace_set_meta(t, "record.base", o->base ? "stored" : "absent (the file did not exist)");
    mrc |= trace_set_meta(t, "record.complete", r->stopped || r->spool_truncated ? "no" : "yes");
    if (r->stopped)
        mrc |= trace_set_meta(t, "record.stopped", stopped);
    if (r->spool_truncated)
        mrc |= trace_set_meta(t, "record.spool_truncated", "yes (the last record was cut short and dropped)");
    mrc |= meta_u64(t, "record.spool_records", r->records);
    mrc |= meta_u64(t, "record.processes", r->processes);
    mrc |= meta_u64(t, "record.threads", r->threads);
    for (const char *const *m = o->meta; m && *m && mrc == 0; m++) {
        const char *eq = strchr(*m, '=');
        if (!eq || eq == *m) {
            fail(err, errlen, "metadata '%s' is not KEY=VALUE", *m);
            goto out;
        }
        char kbuf[256];
        size_t kl = (size_t)(eq - *m) < sizeof kbuf - 1 ? (size_t)(eq - *m) : sizeof kbuf - 1;
        memcpy(kbuf, *m, kl);
        kbuf[kl] = '\0';
        mrc |= trace_set_meta(t, kbuf, eq + 1);
    }
    if (mrc) {
        fail(err, errlen, "too much metadata");
        goto out;
    }
    if (o->final_image) {
        if (verify(t, o->final_image, r, err, errlen) != 0)
            goto out;
        char v[128];
        if (r->verified)
            snprintf(v, sizeof v, "yes");
        else
            snprintf(v, sizeof v, "no (%" PRIu64 " sectors differ, first at offset %" PRIu64 ")", r->diff_sectors,
                     r->first_diff);
        if (trace_set_meta(t, "record.verified", v) != 0) {
            fail(err, errlen, "out of memory");
            goto out;
        }
    } else if (trace_set_meta(t, "record.verified", "not checked") != 0) {
        fail(err, errlen, "out of memory");
        goto out;
    }
    rc = 0;
out:
    free(sp);
    free(fd);
    free(zeros);
    free(tids.v);
    secmap_free(&base);
    if (rc != 0) {
        trace_free(t);
        trace_init(t);
    }
    return rc;
}
