/*
 * vhdx_bench - engine benchmarks.
 *
 *   vhdx_bench [--dir DIR] [--json PATH] [--quick]
 *
 * 1. CRC-32C throughput on 4 KiB buffers, per implementation (reference
 *    table, slicing-by-8, SSE4.2 three-way).
 * 2. Open + replay + close of a full 1 MiB log on a file: a hand-built ring
 *    whose active sequence covers all 256 sectors (128 entries of one data
 *    descriptor each).  Before each timed run the two header slots are
 *    restored (untimed), so every run really replays.  Reported per replay,
 *    for a read-write open (replay to the file, five fdatasyncs) and for a
 *    read-only open (replay in memory).
 * 3. Open (+ close) of an image with no log to replay, for 1 GiB and 1 TiB
 *    virtual sizes with the default 32 MiB blocks, and 1 TiB with 1 MiB
 *    blocks (a 8 MiB BAT).
 * Images live in DIR (default: the current directory); the filesystem
 * matters for the fdatasync-bound figure, so it is printed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "vhdx/crc32c.h"
#include "vhdx/log.h"
#include "vhdx/vhdx.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static FILE *json;
static int json_first = 1;
static const char *replay_fs = "?"; /* the file system the replay benchmark ran on (printed, and in the JSON) */

/* One figure: a line on stdout and, with --json, the same value, unit and
 * note (names and notes are plain text without quotes or backslashes). */
static void result(const char *name, double value, const char *unit, const char *note)
{
    printf("  %-44s %12.2f %-8s %s\n", name, value, unit, note ? note : "");
    if (json) {
        fprintf(json, "%s\n    \"%s\": {\"value\": %.4f, \"unit\": \"%s\"", json_first ? "" : ",", name, value, unit);
        if (note)
            fprintf(json, ", \"note\": \"%s\"", note);
        fprintf(json, "}");
        json_first = 0;
    }
}

static void bench_crc(int quick)
{
    static uint8_t buf[4096];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(i * 131 + 7);
    struct {
        const char *name;
        uint32_t (*fn)(uint32_t, const void *, size_t);
    } impl[] = {{"crc32c_ref (bytewise table)", crc32c_ref},
                {"crc32c_sw (slicing-by-8)", crc32c_sw},
                {"crc32c_hw (sse4.2, 3-way)", crc32c_hw}};
    printf("CRC-32C throughput, 4 KiB buffers (dispatch: %s)\n", crc32c_impl_name());
    for (size_t k = 0; k < sizeof impl / sizeof impl[0]; k++) {
        if (k == 2 && !crc32c_hw_available())
            continue;
        volatile uint32_t sink = 0;
        long iters = 0;
        double t0 = now(), t;
        double budget = quick ? 0.1 : 0.5;
        do {
            for (int i = 0; i < 256; i++)
                sink ^= impl[k].fn(0, buf, sizeof buf);
            iters += 256;
            t = now() - t0;
        } while (t < budget);
        (void)sink;
        char name[80];
        snprintf(name, sizeof name, "crc32c %s", impl[k].name);
        result(name, (double)iters * sizeof buf / t / 1e9, "GB/s", NULL);
    }
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "vhdx_bench: %s: %s\n", what, vhdx_strerror(rc));
    exit(2);
}

/* Builds IMG with a ring whose active sequence fills all 256 sectors. */
static void make_full_log_image(const char *path, uint8_t hdr_save[2][4096])
{
    struct bdev *dev;
    int rc = bdev_posix_open(path, BDEV_CREATE | BDEV_TRUNCATE, &dev);
    if (rc)
        die("create", rc);
    struct vhdx_create_params p = {64ull << 30, 1 << 20, 1 << 20, 512, 4096};
    if ((rc = vhdx_create(dev, &p, NULL)))
        die("create", rc);
    struct vhdx_guid g;
    vhdx_guid_parse("0B5E55ED-0000-4000-8000-00000000BEEF", &g);
    uint64_t file_size = 0;
    dev->ops->size(dev, &file_size);
    /* 128 entries x (1 descriptor sector + 1 data sector) = 256 sectors, all
     * in one sequence (Tail 0).  Targets: 128 non-zero pages in the reserved
     * tail of the header section [320 KiB, 1 MiB), which the log may write
     * and nothing reads. */
    uint8_t page[4096], entry[8192];
    for (uint32_t k = 0; k < 128; k++) {
        memset(page, (int)(k | 1), sizeof page);
        struct vhdx_log_update u = {(320u << 10) + (uint64_t)k * 4096, page, 0};
        struct vhdx_log_entry_params ep = {g, 1000 + k, 0, file_size, file_size};
        size_t len = vhdx_log_entry_build(&ep, &u, 1, entry);
        dev->ops->write(dev, entry, len, (1u << 20) + (uint64_t)k * 8192);
    }
    /* Point both headers at the log. */
    for (int s = 0; s < 2; s++) {
        uint64_t off = s ? (128u << 10) : (64u << 10);
        dev->ops->read(dev, hdr_save[s], 4096, off);
        struct vhdx_header hd;
        vhdx_header_decode(hdr_save[s], &hd);
        hd.log_guid = g;
        vhdx_header_encode(&hd, hdr_save[s]);
        dev->ops->write(dev, hdr_save[s], 4096, off);
    }
    dev->ops->flush(dev);
    bdev_destroy(dev);
}

static void bench_replay(const char *dir, int quick)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/bench-fulllog.vhdx", dir);
    uint8_t hdr[2][4096];
    make_full_log_image(path, hdr);
    struct statfs sf;
    if (statfs(dir, &sf) == 0)
        replay_fs = sf.f_type == 0x01021994 ? "tmpfs" : sf.f_type == 0xEF53 ? "ext4" : sf.f_type == 0x794c7630 ? "overlayfs" : "other";
    printf("Replay of a full 1 MiB log (%s on %s)\n", path, replay_fs);
    for (int ro = 1; ro >= 0; ro--) {
        int runs = quick ? 10 : (ro ? 200 : 50);
        double total = 0;
        uint32_t entries = 0;
        for (int i = 0; i < runs; i++) {
            struct bdev *dev;
            int rc = bdev_posix_open(path, 0, &dev);
            if (rc)
                die("open file", rc);
            dev->ops->write(dev, hdr[0], 4096, 64u << 10);
            dev->ops->write(dev, hdr[1], 4096, 128u << 10);
            dev->ops->flush(dev);
            struct vhdx *h;
            struct vhdx_options o = {.flags = ro ? VHDX_OPEN_RDONLY : 0};
            double t0 = now();
            rc = vhdx_open(dev, &o, &h);
            if (rc)
                die("open for replay", rc);
            struct vhdx_info in;
            vhdx_get_info(h, &in);
            entries = in.replayed_entries;
            rc = vhdx_close(h);
            total += now() - t0;
            if (rc)
                die("close", rc);
            bdev_destroy(dev);
        }
        char name[96], note[64];
        snprintf(name, sizeof name, "replay full 1 MiB log, %s", ro ? "read-only (in memory)" : "read-write (to file)");
        snprintf(note, sizeof note, "%u entries, %d runs", entries, runs);
        result(name, total / runs * 1e3, "ms/replay", note);
    }
    unlink(path);
}

static void bench_open(const char *dir, int quick)
{
    struct {
        uint64_t size;
        uint32_t bs;
        const char *name;
    } cases[] = {{1ull << 30, 0, "open+close, no log, 1 GiB (32 MiB blocks)"},
                 {1ull << 40, 0, "open+close, no log, 1 TiB (32 MiB blocks)"},
                 {1ull << 40, 1u << 20, "open+close, no log, 1 TiB (1 MiB blocks)"}};
    printf("Open of an image with no log\n");
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/bench-open-%zu.vhdx", dir, k);
        struct bdev *dev;
        int rc = bdev_posix_open(path, BDEV_CREATE | BDEV_TRUNCATE, &dev);
        if (rc)
            die("create", rc);
        struct vhdx_create_params p = {cases[k].size, cases[k].bs, 0, 0, 0};
        if ((rc = vhdx_create(dev, &p, NULL)))
            die("create", rc);
        int runs = quick ? 20 : 200;
        double t0 = now();
        for (int i = 0; i < runs; i++) {
            struct vhdx *h;
            struct vhdx_options o = {0};
            if ((rc = vhdx_open(dev, &o, &h)))
                die("open", rc);
            vhdx_close(h);
        }
        double t = (now() - t0) / runs;
        bdev_destroy(dev);
        unlink(path);
        result(cases[k].name, t * 1e6, "us/open", NULL);
    }
}

int main(int argc, char **argv)
{
    const char *dir = ".", *json_path = NULL;
    int quick = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--json") && i + 1 < argc)
            json_path = argv[++i];
        else if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else {
            fprintf(stderr, "usage: vhdx_bench [--dir DIR] [--json PATH] [--quick]\n");
            return 2;
        }
    }
    if (json_path && !(json = fopen(json_path, "w"))) {
        fprintf(stderr, "vhdx_bench: %s: %s\n", json_path, strerror(errno));
        return 2;
    }
    if (json)
        fprintf(json, "{\n  \"build\": \"%s\",\n  \"results\": {", vhdx_build_id());
    printf("vhdx_bench (%s)\n", vhdx_build_id());
    bench_crc(quick);
    bench_replay(dir, quick);
    bench_open(dir, quick);
    if (json) {
        fprintf(json, "\n  },\n  \"crc32c_dispatch\": \"%s\",\n  \"replay_file_system\": \"%s\"\n}\n",
                crc32c_impl_name(), replay_fs);
        fclose(json);
    }
    return 0;
}
