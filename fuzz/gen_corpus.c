/*
 * gen_corpus.c - writes the seed corpora of the fuzz targets from real
 * engine runs (scripts/powercut fuzz-seeds runs it and renames every file
 * to the SHA-1 of its content under corpus/<target>/).
 *
 *   fuzz_gen_corpus OUTDIR
 *
 * Log inputs (fuzz_log_replay, fuzz_log_parse) come from the engine writing
 * on the replay base image and being cut off (vhdx_abandon) with entries
 * pending: single and multi-entry sequences, sequences that wrap around the
 * ring's end, stale entries of an earlier session beside the active ones;
 * plus entries built with the engine's entry builder for the shapes a
 * workload rarely makes: a descriptor list spanning two sectors, an entry
 * with no descriptors, and deliberate refusals (ambiguous heads, a target
 * in the headers, a truncated file).  The window written is the active
 * sequence plus a few sectors either side, at most 64 sectors.
 * Crash schedules (fuzz_crash_schedule) name a workload, a crash choice and,
 * for the fault-* seeds, a fault schedule (faults/schedule.h) of every kind.
 *
 * Guarantees: deterministic (seeded GUIDs, fixed operation lists); exit 0
 * with every file written, 2 on a usage or I/O error.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "faults/schedule.h"
#include "fuzz_common.h"
#include "vhdx/log.h"
#include "vhdx/vhdx.h"

static const char *outdir;
static unsigned written;

static void put_file(const char *target, const char *name, const uint8_t *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", outdir, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "fuzz_gen_corpus: cannot create %s: %s\n", path, strerror(errno));
        exit(2);
    }
    snprintf(path, sizeof path, "%s/%s/%s", outdir, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "fuzz_gen_corpus: cannot write %s: %s\n", path, strerror(errno));
        exit(2);
    }
    written++;
}

/* ---- log inputs ------------------------------------------------------------------- */
static uint8_t lr_buf[LR_MAX_INPUT];

/* Encodes `count` ring sectors starting at ring sector `start` of disk c. */
static size_t lr_encode(struct crashdisk *c, const struct fuzz_image *img, const struct vhdx_guid *g, uint32_t start,
                        uint32_t count, uint8_t flags)
{
    const uint32_t n = img->log_length / VHDX_LOG_SECTOR;
    if (count > LR_MAX_SECTORS)
        count = LR_MAX_SECTORS;
    memset(lr_buf, 0, LR_PREFIX);
    lr_buf[0] = flags;
    lr_buf[1] = (uint8_t)start;
    memcpy(lr_buf + 16, g->b, 16);
    for (uint32_t i = 0; i < count; i++)
        crashdisk_read(c, lr_buf + LR_PREFIX + (size_t)i * VHDX_LOG_SECTOR, VHDX_LOG_SECTOR,
                       img->log_offset + (uint64_t)((start + i) % n) * VHDX_LOG_SECTOR);
    return LR_PREFIX + (size_t)count * VHDX_LOG_SECTOR;
}

static void emit_log(const char *name, size_t len)
{
    put_file("fuzz_log_replay", name, lr_buf, len);
    put_file("fuzz_log_parse", name, lr_buf, len);
}

/* The current header's LogGuid of disk c. */
static void current_guid(struct crashdisk *c, struct vhdx_guid *g)
{
    uint8_t hb[2][VHDX_HEADER_SIZE];
    struct vhdx_header h[2];
    int ok[2];
    for (int i = 0; i < 2; i++) {
        crashdisk_read(c, hb[i], VHDX_HEADER_SIZE, i ? VHDX_HEADER2_OFFSET : VHDX_HEADER1_OFFSET);
        ok[i] = vhdx_header_decode(hb[i], &h[i]) == 0;
    }
    int cur = ok[0] && ok[1] ? h[1].sequence > h[0].sequence : ok[1];
    *g = h[cur].log_guid;
}

/* After an abandoned session: the active sequence plus `pre`/`post`
 * sectors around it. */
static void emit_pending(struct crashdisk *c, const struct fuzz_image *img, const char *name, uint32_t pre,
                         uint32_t post)
{
    struct vhdx_guid g;
    current_guid(c, &g);
    if (vhdx_guid_is_zero(&g)) {
        fprintf(stderr, "fuzz_gen_corpus: %s: no pending log (LogGuid clear), skipped\n", name);
        return;
    }
    struct vhdx_log_ring ring = {crashdisk_bdev(c), img->log_offset, img->log_length, g};
    struct vhdx_log_sequence seq;
    int rc = vhdx_log_search(&ring, &seq, NULL, NULL);
    if (rc != 0 || !seq.found) {
        fprintf(stderr, "fuzz_gen_corpus: %s: no active sequence (%s)\n", name, vhdx_strerror(rc));
        exit(2);
    }
    const uint32_t n = img->log_length / VHDX_LOG_SECTOR;
    uint32_t sectors = 0;
    for (uint32_t k = 0; k < seq.count; k++)
        sectors += seq.lengths[k] / VHDX_LOG_SECTOR;
    uint32_t start = (seq.positions[0] / VHDX_LOG_SECTOR + n - pre) % n;
    uint32_t count = pre + sectors + post;
    vhdx_log_sequence_free(&seq);
    size_t len = lr_encode(c, img, &g, start, count, LRF_GUID);
    /* the session grew the file: the input says so (MiB, rounded up) */
    vhdx_put16(lr_buf + 2, (uint16_t)((c->size - img->size + VHDX_MiB - 1) / VHDX_MiB));
    emit_log(name, len);
}

/* A session on the replay base: `ops` block writes (block = ops[i], or a
 * discard of block ops[i]-100 when >= 100), batching apply_every, then cut. */
static void session(struct crashdisk *c, uint64_t seed, uint32_t apply_every, const uint32_t *ops, size_t n_ops,
                    int close_it)
{
    struct fuzz_rng r;
    fuzz_rng_init(&r, seed);
    struct vhdx_diag diag;
    struct vhdx_options o = {.rng = &r.rng, .diag = &diag, .apply_every = apply_every};
    struct vhdx *h;
    int rc = vhdx_open(crashdisk_bdev(c), &o, &h);
    if (rc != 0) {
        fprintf(stderr, "fuzz_gen_corpus: open failed: %s\n", diag.message);
        exit(2);
    }
    static uint8_t buf[8192];
    for (size_t i = 0; i < n_ops; i++) {
        if (ops[i] >= 100) {
            rc = vhdx_discard(h, (uint64_t)(ops[i] - 100) << 20, 1u << 20);
        } else {
            memset(buf, (int)(i + 1), sizeof buf);
            rc = vhdx_write(h, ((uint64_t)ops[i] << 20) + 4096 * (i % 7), buf, sizeof buf);
        }
        if (rc == 0)
            rc = vhdx_flush(h);
        if (rc != 0) {
            fprintf(stderr, "fuzz_gen_corpus: op %zu failed: %s\n", i, vhdx_strerror(rc));
            exit(2);
        }
    }
    if (close_it)
        rc = vhdx_close(h);
    else
        vhdx_abandon(h);
    if (rc != 0) {
        fprintf(stderr, "fuzz_gen_corpus: close failed: %s\n", vhdx_strerror(rc));
        exit(2);
    }
}

static void gen_engine_logs(const struct fuzz_image *img)
{
    struct crashdisk c;
    crashdisk_init(&c, &img->map, img->size);
    char name[64];

    /* Single and multi-entry sequences: allocations batched, then cut. */
    static const uint32_t allocs[] = {1, 3, 4, 6, 7, 1, 3};
    for (size_t k = 1; k <= 5; k++) {
        crashdisk_reset(&c, img->size);
        session(&c, 10 + k, 8, allocs, k, 0);
        snprintf(name, sizeof name, "engine-batch-%zu", k);
        emit_pending(&c, img, name, 0, k == 3 ? 2 : 0);
    }

    /* Long sessions: allocate and discard in rounds so the ring wraps; cut
     * at several points, with stale entries around the active sequence. */
    static uint32_t churn[420];
    for (size_t i = 0; i < 420; i++)
        churn[i] = (i % 4 == 3) ? 100 + (uint32_t)(i / 4 % 8) : (uint32_t)((i * 5 + 1) % 8);
    static const size_t cuts[] = {37, 113, 190, 265, 330, 415};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        for (uint32_t every = 2; every <= 5; every += 3) {
            crashdisk_reset(&c, img->size);
            session(&c, 20 + k, every, churn, cuts[k], 0);
            snprintf(name, sizeof name, "engine-churn-%zu-every%u", cuts[k], every);
            emit_pending(&c, img, name, 2, 3);
        }
    }

    /* Stale session: session 1 closes (its entries stay in the ring), session 2
     * starts a new log at ring offset 0 and is cut. */
    crashdisk_reset(&c, img->size);
    session(&c, 31, 1, churn, 40, 1);
    static const uint32_t two[] = {101, 102, 103, 1, 2};
    session(&c, 32, 8, two, 5, 0);
    emit_pending(&c, img, "engine-stale-session", 0, 12);
    crashdisk_free(&c);
}

/* ---- entries from the engine's builder ---------------------------------------------- */
static void gen_built_logs(const struct fuzz_image *img)
{
    struct crashdisk c;
    crashdisk_init(&c, &img->map, img->size);
    struct vhdx_guid g = {{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x48, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xF0, 0x01}};
    struct vhdx_log_entry_params p = {g, 40, 0, 7 * VHDX_MiB, 8 * VHDX_MiB};
    static uint8_t entry[64 * VHDX_LOG_SECTOR];
    static uint8_t page[VHDX_LOG_SECTOR];
    struct vhdx_log_update u[140];
    const uint64_t payload = 4 * VHDX_MiB; /* block 0's data: zeroing pages of it keeps the image valid */

    /* 1. A descriptor list over two sectors: 130 descriptors (2 data, 128 zero). */
    for (int i = 0; i < 130; i++) {
        u[i].file_offset = payload + (uint64_t)i * 2 * VHDX_LOG_SECTOR;
        u[i].data = NULL;
        u[i].zero_length = VHDX_LOG_SECTOR;
        if (i == 5 || i == 128) {
            memset(page, 0xA0 + i % 16, sizeof page);
            u[i].data = page;
        }
    }
    size_t len = vhdx_log_entry_build(&p, u, 130, entry);
    memset(lr_buf, 0, LR_PREFIX);
    lr_buf[0] = LRF_GUID;
    lr_buf[1] = 0;
    memcpy(lr_buf + 16, g.b, 16);
    memcpy(lr_buf + LR_PREFIX, entry, len);
    emit_log("built-two-descriptor-sectors", LR_PREFIX + len);

    /* 2. No descriptors: an entry of 4 KiB that only moves the tail, then a
     *    second one with one zero descriptor, linked. */
    p.sequence = 7;
    p.tail = 250 * VHDX_LOG_SECTOR;
    size_t l1 = vhdx_log_entry_build(&p, u, 0, entry);
    p.sequence = 8;
    u[0] = (struct vhdx_log_update){payload + 8 * VHDX_LOG_SECTOR, NULL, 3 * VHDX_LOG_SECTOR};
    size_t l2 = vhdx_log_entry_build(&p, u, 1, entry + l1);
    memset(lr_buf, 0, LR_PREFIX);
    lr_buf[0] = LRF_GUID;
    lr_buf[1] = 250; /* starts 6 sectors before the ring's end */
    memcpy(lr_buf + 16, g.b, 16);
    memcpy(lr_buf + LR_PREFIX, entry, l1 + l2);
    emit_log("built-zero-descriptors", LR_PREFIX + l1 + l2);

    /* 3. A data entry wrapping around the ring's end: 3 data sectors from ring 254. */
    p.sequence = 100;
    p.tail = 254 * VHDX_LOG_SECTOR;
    for (int i = 0; i < 3; i++) {
        static uint8_t pages[3][VHDX_LOG_SECTOR];
        memset(pages[i], 0x31 + i, VHDX_LOG_SECTOR);
        u[i] = (struct vhdx_log_update){payload + (uint64_t)i * VHDX_LOG_SECTOR, pages[i], 0};
    }
    len = vhdx_log_entry_build(&p, u, 3, entry);
    lr_buf[1] = 254;
    memcpy(lr_buf + LR_PREFIX, entry, len);
    emit_log("built-wrap-data", LR_PREFIX + len);

    /* 4. Refusals: the same head twice (ambiguous), a header target, a
     *    FlushedFileOffset past the file. */
    p.sequence = 5;
    p.tail = 0;
    u[0] = (struct vhdx_log_update){payload, NULL, VHDX_LOG_SECTOR};
    l1 = vhdx_log_entry_build(&p, u, 1, entry);
    p.tail = 4 * VHDX_LOG_SECTOR;
    l2 = vhdx_log_entry_build(&p, u, 1, entry + 4 * VHDX_LOG_SECTOR);
    lr_buf[1] = 0;
    memset(lr_buf + LR_PREFIX, 0, 4 * VHDX_LOG_SECTOR);
    memcpy(lr_buf + LR_PREFIX, entry, l1);
    memcpy(lr_buf + LR_PREFIX + 4 * VHDX_LOG_SECTOR, entry + 4 * VHDX_LOG_SECTOR, l2);
    emit_log("built-ambiguous", LR_PREFIX + 4 * VHDX_LOG_SECTOR + l2);
    p.tail = 0;
    u[0] = (struct vhdx_log_update){VHDX_HEADER1_OFFSET, NULL, VHDX_LOG_SECTOR};
    len = vhdx_log_entry_build(&p, u, 1, entry);
    memcpy(lr_buf + LR_PREFIX, entry, len);
    emit_log("built-target-header", LR_PREFIX + len);
    p.flushed_file_offset = 64 * VHDX_MiB;
    p.last_file_offset = 64 * VHDX_MiB;
    u[0] = (struct vhdx_log_update){payload, NULL, VHDX_LOG_SECTOR};
    len = vhdx_log_entry_build(&p, u, 1, entry);
    memcpy(lr_buf + LR_PREFIX, entry, len);
    emit_log("built-truncated", LR_PREFIX + len);
    crashdisk_free(&c);
}

/* ---- image edits ----------------------------------------------------------------- */
static void gen_image_open(void)
{
    const struct fuzz_image *clean = fuzz_image_get(FUZZ_IMG_CLEAN);
    static uint8_t b[256];
    size_t n;
#define EDIT(off, bytes, len)                  \
    do {                                       \
        vhdx_put32(b + n, (uint32_t)(off));    \
        vhdx_put16(b + n + 4, (uint16_t)(len)); \
        memcpy(b + n + 6, bytes, len);         \
        n += 6 + (len);                        \
    } while (0)
    static const struct { uint8_t flags, seed; const char *name; } plain[] = {
        {0x00, 1, "clean"}, {0x01, 2, "pending"}, {0x02, 3, "clean-rdonly"}, {0x03, 4, "pending-rdonly"},
        {0x1D, 5, "pending-batch8"},
    };
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
        b[0] = plain[i].flags;
        b[1] = plain[i].seed;
        put_file("fuzz_image_open", plain[i].name, b, 2);
    }
    uint8_t v[8];
    /* header 1 sequence bumped (checksum now wrong: the other copy wins) */
    n = 2, b[0] = 0, b[1] = 9;
    vhdx_put64(v, 1000);
    EDIT(VHDX_HEADER1_OFFSET + VHDX_HDR_SEQUENCE, v, 8);
    put_file("fuzz_image_open", "edit-header-seq", b, n);
    /* BAT entry 1 made FULLY_PRESENT at 6 MiB (past the file: refused) */
    n = 2, b[0] = 0, b[1] = 10;
    vhdx_put64(v, vhdx_bat_make(VHDX_BAT_FULLY_PRESENT, 6));
    EDIT(clean->bat_offset + 8, v, 8);
    put_file("fuzz_image_open", "edit-bat-entry", b, n);
    /* metadata: virtual disk size item doubled */
    n = 2, b[0] = 0, b[1] = 11;
    vhdx_put64(v, clean->virtual_size * 2);
    EDIT(clean->meta_offset + 65536 + 8, v, 8);
    put_file("fuzz_image_open", "edit-virtual-size", b, n);
    /* region table 1 damaged (region table 2 must take over) */
    n = 2, b[0] = 0, b[1] = 12;
    EDIT(VHDX_REGION1_OFFSET + 16 + 16, "\x00\x00\x30\x00", 4);
    put_file("fuzz_image_open", "edit-region-table", b, n);
    /* pending log: a byte of the first entry flipped (no valid sequence) */
    n = 2, b[0] = 1, b[1] = 13;
    EDIT(clean->log_offset + 100, "\xFF", 1);
    put_file("fuzz_image_open", "edit-pending-log", b, n);
#undef EDIT
}

/* ---- crash schedules ----------------------------------------------------------------------- */
/* One crash-schedule input: the 8 header bytes given (apply-1 and flags,
 * geometry, model, torn bits, epoch(2), index(2)), the seed, the fault
 * schedule when fault is non-NULL (header byte 0 bit 7 set), then the ops
 * as letters: w write (new place), W write far away (another BAT page on
 * 1 GiB+), B burst of 64 allocate+discard pairs (the ring wraps),
 * o overwrite, f flush, d discard, r reopen, a apply. */
static void emit_schedule(const char *name, const uint8_t hd[8], uint64_t seed, const struct fault_plan *fault,
                          const char *ops)
{
    uint8_t b[16 + FAULT_SCHEDULE_BYTES + 4 * 48];
    memset(b, 0, sizeof b);
    memcpy(b, hd, 8);
    vhdx_put64(b + 8, seed);
    size_t n = 16;
    if (fault) {
        b[0] |= 0x80;
        fault_schedule_encode(fault, b + n);
        n += FAULT_SCHEDULE_BYTES;
    }
    for (const char *p = ops; *p; p++, n += 4) {
        size_t k = (size_t)(p - ops);
        uint8_t kind = *p == 'f' ? 4 : *p == 'd' ? 5 : *p == 'r' ? 6 : *p == 'a' ? 7 : *p == 'B' ? 0xFF : 0;
        uint16_t unit = *p == 'o' ? 8 : *p == 'W' ? (uint16_t)(38400 + 640 * k)
                                                  : (uint16_t)(k * 2048 + 64 * (k % 3)); /* 'w' spreads over blocks */
        b[n] = kind;
        b[n + 1] = (uint8_t)(unit >> 8);
        b[n + 2] = (uint8_t)unit;
        b[n + 3] = (uint8_t)(*p == 'd' ? 255 : 7 + 16 * (k % 4));
    }
    put_file("fuzz_crash_schedule", name, b, n);
}

static void gen_crash_schedule(void)
{
    static const struct {
        const char *name;
        uint8_t hd[8];
        const char *ops;
    } s[] = {
        {"prefix-writes", {0, 0, 0, 0, 3, 0, 1, 0}, "wwfowfwwf"},
        {"drop-batch", {7, 1, 1, 0, 2, 0, 0, 0}, "wwwwfwwwf"},
        {"reorder-apply", {3, 0, 2, 0, 4, 0, 0, 0}, "wfwfwfafwwf"},
        {"torn-512", {0, 0, 3, 2, 1, 0, 0, 0}, "wwwfwwfof"},
        {"torn-4096", {4, 4, 3, 0x0D, 2, 0, 1, 0}, "wwwfwwf"},
        {"stale-grow", {0, 2, 4, 0, 1, 0, 2, 0}, "wfwfwfwf"},
        {"recovery-batch", {5, 0, 5, 0, 5, 0, 3, 0}, "wwwwwwfdfwf"},
        {"recovery-durable", {7, 0, 5, 0x10, 6, 0, 2, 0}, "wwfrwwfwaf"},
        {"reopen-discard", {2, 3, 0, 0, 9, 0, 5, 0}, "wwfdfrwwfdwf"},
        {"batch-two-bat-pages", {3, 2, 1, 0x60, 8, 0, 0, 0}, "wWfofWwf"},
        {"burst-ring-wrap", {3, 0, 0, 0x60, 0xB0, 1, 1, 0}, "BBwwfwf"},
    };
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
        emit_schedule(s[i].name, s[i].hd, 0xC0DE + i, NULL, s[i].ops);

    /* With a fault schedule (faults/schedule.h; nth is reduced modulo the
     * calls the workload makes, so each fires): every kind, both modes, a
     * point restriction, and crash choices of several models after it. */
    static const struct {
        const char *name;
        uint8_t hd[8];
        struct fault_plan plan; /* kind, mode, nth, points */
        const char *ops;
    } f[] = {
        {"fault-eio-payload-write", {0, 0, 0, 0x20, 3, 0, 1, 0}, {FK_EIO, FM_TRANSIENT, 9, 1u << FP_WRITE, 0, 0},
         "wwfowfwwf"},
        {"fault-short-torn", {0, 0, 3, 0x22, 1, 0, 0, 0}, {FK_SHORT, FM_TRANSIENT, 6, 0, 0, 0}, "wwwfwwfof"},
        {"fault-short-persistent", {2, 2, 0, 0x60, 2, 0, 3, 0}, {FK_SHORT, FM_PERSISTENT, 14, 0, 0, 0},
         "wWfofWwf"},
        {"fault-flush-lose-batch", {7, 1, 1, 0x20, 1, 0, 0, 0}, {FK_FLUSH_LOSE, FM_TRANSIENT, 2, 0, 0, 0},
         "wwwwfwwwfwwf"},
        {"fault-flush-recovery", {5, 0, 5, 0x20, 4, 0, 0, 0}, {FK_FLUSH, FM_TRANSIENT, 9, 0, 0, 0}, "wwwwwwfdfwf"},
        {"fault-enomem-reopen", {2, 3, 0, 0x40, 4, 0, 5, 0}, {FK_ENOMEM, FM_TRANSIENT, 7, 0, 0, 0},
         "wwfdfrwwfdwf"},
        {"fault-enospc-burst", {3, 0, 0, 0x60, 0xB0, 1, 1, 0}, {FK_ENOSPC, FM_TRANSIENT, 40, 0, 0, 0}, "BBwwfwf"},
        {"fault-eio-read-reopen", {7, 0, 5, 0x10, 6, 0, 2, 0}, {FK_EIO, FM_TRANSIENT, 15, 1u << FP_READ, 0, 0},
         "wwfrwwfwaf"},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        emit_schedule(f[i].name, f[i].hd, 0xFA00 + i, &f[i].plan, f[i].ops);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUTDIR\nWrites seed inputs to OUTDIR/<target>/ from real engine runs.\n", argv[0]);
        return 2;
    }
    outdir = argv[1];
    if (mkdir(outdir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "fuzz_gen_corpus: cannot create %s: %s\n", outdir, strerror(errno));
        return 2;
    }
    const struct fuzz_image *img = fuzz_image_get(FUZZ_IMG_REPLAY);
    gen_engine_logs(img);
    gen_built_logs(img);
    gen_image_open();
    gen_crash_schedule();
    fprintf(stderr, "fuzz_gen_corpus: %u files written under %s\n", written, outdir);
    return 0;
}
