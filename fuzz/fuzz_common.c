/*
 * fuzz_common.c - base images, the log-input parser, the write guard and
 * the failure path shared by every fuzz target (see fuzz_common.h).
 *
 * Base images are built by the engine itself on a crash disk with no
 * durable layer (every write lands in its scratch layer), then copied into
 * an owned sector map; the build is seeded, so it is the same in every
 * process.  Building costs a few milliseconds once per process.
 */
#define _POSIX_C_SOURCE 200809L
#include "fuzz_common.h"

#include <fcntl.h>
#include <unistd.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/simdisk.h"
#include "vhdx/vhdx.h"

/* ASan defaults of every fuzz binary (ASAN_OPTIONS still overrides): a
 * 32 MiB quarantine instead of 256 MiB keeps freed memory warm; one
 * execution allocates far less than that, so a use after free inside an
 * execution is still caught.  It was worth about a quarter of the time of
 * fuzz_log_replay (page faults on fresh memory). */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "quarantine_size_mb=32";
}

void fuzz_fail(const char *file, int line, const char *expr, const char *fmt, ...)
{
    fprintf(stderr, "\n==powercut-fuzz== %s:%d: check failed: %s\n==powercut-fuzz== ", file, line, expr);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    abort();
}

int fuzz_strict(void)
{
    static int cached = -1;
    if (cached < 0) {
        const char *s = getenv("POWERCUT_FUZZ_STRICT");
        cached = s && *s && strcmp(s, "0") != 0;
    }
    return cached;
}

int fuzz_verbose(void)
{
    static int cached = -1;
    if (cached < 0) {
        const char *s = getenv("POWERCUT_FUZZ_VERBOSE");
        cached = s && *s && strcmp(s, "0") != 0;
    }
    return cached;
}

int fuzz_export_image(struct crashdisk *cd)
{
    static const char *path;
    static int looked;
    if (!looked) { /* read once: this runs for every input */
        path = getenv("POWERCUT_FUZZ_EXPORT");
        looked = 1;
    }
    if (!path || !*path)
        return 0;
    static uint8_t buf[64 * 1024];
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int ok = fd >= 0 && ftruncate(fd, (off_t)cd->size) == 0; /* zero chunks stay holes */
    for (uint64_t off = 0; ok && off < cd->size; off += sizeof buf) {
        size_t n = cd->size - off < sizeof buf ? (size_t)(cd->size - off) : sizeof buf;
        ok = crashdisk_read(cd, buf, n, off) == 0;
        size_t z = 0;
        while (ok && z < n && buf[z] == 0)
            z++;
        if (ok && z < n)
            ok = pwrite(fd, buf, n, (off_t)off) == (ssize_t)n;
    }
    if (fd >= 0 && close(fd) != 0)
        ok = 0;
    if (!ok) {
        fprintf(stderr, "powercut-fuzz: cannot export the image to %s\n", path);
        exit(2);
    }
    return 1;
}

uint64_t fuzz_mix64(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

void fuzz_rng_init(struct fuzz_rng *r, uint64_t seed)
{
    r->state.state = seed * UINT64_C(0x2545F4914F6CDD1D) + 1;
    r->rng.fill = vhdx_rng_seeded_fill;
    r->rng.ctx = &r->state;
}

/* ---- base images --------------------------------------------------------- */
struct image_spec {
    uint64_t virtual_size;    /* bytes */
    uint32_t apply_every;     /* engine batching while writing */
    uint32_t blocks[4];       /* blocks to write (UINT32_MAX ends) */
    int abandon;              /* 1: drop the handle without close (log stays pending) */
    int zero_log;             /* 1: the log region reads as zeros */
};

static const struct image_spec specs[FUZZ_IMG_COUNT] = {
    [FUZZ_IMG_REPLAY] = {8u << 20, 1, {0, 2, 5, UINT32_MAX}, 0, 1},
    [FUZZ_IMG_CLEAN] = {4u << 20, 1, {0, 3, UINT32_MAX, UINT32_MAX}, 0, 0},
    [FUZZ_IMG_PENDING] = {4u << 20, 8, {1, 2, 3, UINT32_MAX}, 1, 0},
};

static void fill_pattern(uint8_t *buf, size_t len, uint32_t block)
{
    uint64_t st = UINT64_C(0xB10C) + block;
    for (size_t i = 0; i < len; i += 8) {
        uint64_t v = fuzz_mix64(&st);
        memcpy(buf + i, &v, len - i < 8 ? len - i : 8);
    }
}

static void image_build(enum fuzz_image_kind kind, struct fuzz_image *img)
{
    const struct image_spec *sp = &specs[kind];
    struct crashdisk cd;
    crashdisk_init(&cd, NULL, 0);
    struct bdev *dev = crashdisk_bdev(&cd);
    struct fuzz_rng r;
    fuzz_rng_init(&r, UINT64_C(0xF022) + (uint64_t)kind);
    struct vhdx_diag diag;
    struct vhdx_options o = {.rng = &r.rng, .diag = &diag, .creator = "powercut fuzz base", .apply_every = sp->apply_every};
    struct vhdx_create_params cp = {sp->virtual_size, 1u << 20, 1u << 20, 512, 4096};
    int rc = vhdx_create(dev, &cp, &o);
    FUZZ_CHECK(rc == 0, "base image %d: create failed: %s", (int)kind, diag.message);
    struct vhdx *h = NULL;
    rc = vhdx_open(dev, &o, &h);
    FUZZ_CHECK(rc == 0, "base image %d: open failed: %s", (int)kind, diag.message);
    static uint8_t buf[64 * 1024];
    for (int i = 0; i < 4 && sp->blocks[i] != UINT32_MAX; i++) {
        fill_pattern(buf, sizeof buf, sp->blocks[i]);
        rc = vhdx_write(h, (uint64_t)sp->blocks[i] << 20, buf, sizeof buf);
        FUZZ_CHECK(rc == 0, "base image %d: write failed: %s", (int)kind, vhdx_strerror(rc));
        rc = vhdx_flush(h);
        FUZZ_CHECK(rc == 0, "base image %d: flush failed: %s", (int)kind, vhdx_strerror(rc));
    }
    if (sp->abandon) {
        vhdx_abandon(h);
    } else {
        rc = vhdx_close(h);
        FUZZ_CHECK(rc == 0, "base image %d: close failed: %s", (int)kind, vhdx_strerror(rc));
    }

    /* Copy into an owned map; learn the layout from a read-only open. */
    memset(img, 0, sizeof *img);
    secmap_init(&img->map);
    img->size = cd.size;
    struct vhdx_info in;
    rc = vhdx_open(dev, &(struct vhdx_options){.flags = VHDX_OPEN_RDONLY, .diag = &diag}, &h);
    FUZZ_CHECK(rc == 0, "base image %d: read-only open failed: %s", (int)kind, diag.message);
    vhdx_get_info(h, &in);
    vhdx_close(h);
    img->log_offset = in.header.log_offset;
    img->log_length = in.header.log_length;
    img->meta_offset = in.metadata_offset;
    img->bat_offset = in.bat_offset;
    img->bat_length = in.bat_length;
    img->virtual_size = in.geo.virtual_size;
    img->cur_slot = in.header_slot;
    img->hdr = in.header;
    const uint64_t log_lo = img->log_offset / SECTOR, log_hi = (img->log_offset + img->log_length) / SECTOR;
    for (size_t i = 0; i < cd.scratch.count; i++) {
        const struct secmap_slot *s = secmap_at(&cd.scratch, i);
        if (sp->zero_log && s->key >= log_lo && s->key < log_hi)
            continue;
        if (memcmp(s->val, SECTOR_ZERO, SECTOR) == 0)
            continue;
        rc = secmap_put_copy(&img->map, s->key, s->val);
        FUZZ_CHECK(rc == 0, "base image %d: out of memory", (int)kind);
    }
    crashdisk_free(&cd);
}

const struct fuzz_image *fuzz_image_get(enum fuzz_image_kind kind)
{
    static struct fuzz_image images[FUZZ_IMG_COUNT];
    static int built[FUZZ_IMG_COUNT];
    FUZZ_CHECK(kind < FUZZ_IMG_COUNT, "no base image %d", (int)kind);
    if (!built[kind]) {
        image_build(kind, &images[kind]);
        built[kind] = 1;
    }
    return &images[kind];
}

void fuzz_image_read(const struct fuzz_image *img, uint64_t off, void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len > 0) {
        uint64_t sec = off / SECTOR;
        size_t within = (size_t)(off % SECTOR), n = SECTOR - within;
        if (n > len)
            n = len;
        const uint8_t *v = secmap_get(&img->map, sec);
        memcpy(p, (v ? v : SECTOR_ZERO) + within, n);
        p += n;
        off += n;
        len -= n;
    }
}

/* ---- the log input -------------------------------------------------------------- */
void lr_parse(const uint8_t *data, size_t size, uint8_t *buf, struct lr_input *in)
{
    uint8_t prefix[LR_PREFIX];
    memset(prefix, 0, sizeof prefix);
    memcpy(prefix, data, size < LR_PREFIX ? size : LR_PREFIX);
    in->flags = prefix[0];
    in->start = prefix[1];
    in->file_delta_mb = (int16_t)vhdx_get16(prefix + 2);
    in->seq_bias = vhdx_get32(prefix + 4);
    memcpy(in->guid.b, prefix + 16, 16);
    size_t body = size > LR_PREFIX ? size - LR_PREFIX : 0;
    if (body > LR_MAX_SECTORS * VHDX_LOG_SECTOR)
        body = LR_MAX_SECTORS * VHDX_LOG_SECTOR;
    in->n_sectors = (uint32_t)((body + VHDX_LOG_SECTOR - 1) / VHDX_LOG_SECTOR);
    memcpy(buf, data + LR_PREFIX, body);
    memset(buf + body, 0, (size_t)in->n_sectors * VHDX_LOG_SECTOR - body);
    in->sectors = buf;
}

/* ---- the write guard --------------------------------------------------------------- */
int fuzz_guard_fn(void *ctx, uint64_t off, uint64_t len, int is_truncate)
{
    const struct fuzz_guard *g = ctx;
    const char *what = is_truncate ? "truncate to" : "write at";
    switch (g->phase) {
    case GUARD_NONE:
        return 0;
    case GUARD_FORBID:
        fuzz_fail(__FILE__, __LINE__, "no write in this phase", "%s %" PRIu64 " (+%" PRIu64 ") where nothing may be written",
                  what, off, len);
    case GUARD_REPLAY:
        if (is_truncate) {
            FUZZ_CHECK(off >= g->size_floor && off <= g->limit,
                       "replay truncates the file to %" PRIu64 " (floor %" PRIu64 ", limit %" PRIu64 ")", off,
                       g->size_floor, g->limit);
            return 0;
        }
        if ((off == VHDX_HEADER1_OFFSET || off == VHDX_HEADER2_OFFSET) && len == VHDX_HEADER_SIZE)
            return 0;
        FUZZ_CHECK(off >= VHDX_PROTECTED_PREFIX, "replay writes %" PRIu64 "+%" PRIu64 " inside the first 192 KiB", off,
                   len);
        FUZZ_CHECK(off + len <= g->log_offset || off >= g->log_offset + g->log_length,
                   "replay writes %" PRIu64 "+%" PRIu64 " into the log region", off, len);
        FUZZ_CHECK(off + len <= g->limit, "replay writes %" PRIu64 "+%" PRIu64 " past the limit %" PRIu64, off, len,
                   g->limit);
        return 0;
    }
    return 0;
}
