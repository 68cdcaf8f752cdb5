/*
 * fuzz_image_open - PROPERTY: a small valid image with arbitrary byte edits
 * either opens or is refused cleanly: a refusal returns a VHDX_E_* format
 * code (with the diag naming it) and leaves the image byte-identical; an
 * open never crashes, never invokes undefined behaviour, never leaks and
 * never returns wrong data: everything read, then written and discarded in
 * the session, reads back the same in that session and after close and
 * reopen, and the closed image passes the checker.  And the engine agrees
 * with the independent reference (harness/ref, written from MS-VHDX alone)
 * in both directions: it opens every image the reference can open (one
 * intact header, one intact region-table copy, a complete log sequence are
 * enough: ref:refused-recoverable) and refuses every image that breaks a
 * MUST of the specification (ref:accepted-invalid); when both open, they
 * replay the same sequence, see the same geometry, and every byte the
 * engine reads equals the reference's wherever MS-VHDX defines it.
 *
 * Input:
 *   byte 0   bit 0: base image (0 clean, 1 with a pending log);
 *            bit 1: first open read-only; bits 2-4: engine batching - 1
 *   byte 1   seed of the session's writes and discards
 *   then edits, as many as the input holds:
 *            u32 offset (LE, taken modulo the image size + 1 MiB),
 *            u16 length (LE, cut to the bytes that remain), the bytes
 * Edits go to an overlay on the shared base, so inputs stay small.
 *
 * Bounded work: at most the first 8 MiB of the virtual disk (plus its last
 * 64 KiB) are read and modelled, whatever size the edited metadata claims.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "fuzz_target.h"
#include "harness/refjudge.h"
#include "vhdx/check.h"
#include "vhdx/vhdx.h"

#define MODEL_MAX (8u * 1024 * 1024) /* bytes of the virtual disk that are modelled */
#define CHUNK (256u * 1024)

static struct crashdisk cd;
static uint8_t *model;  /* expected contents of [0, modelled) */
static uint8_t *chunk;  /* read buffer */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_image_get(FUZZ_IMG_CLEAN);
    fuzz_image_get(FUZZ_IMG_PENDING);
    crashdisk_init(&cd, NULL, 0);
    model = malloc(MODEL_MAX);
    chunk = malloc(CHUNK);
    FUZZ_CHECK(model && chunk, "out of memory");
    return 0;
}

/* What the reference judge compares, from the engine's own report. */
static void subject_view(const struct vhdx_info *in, struct subject_info *o)
{
    memset(o, 0, sizeof *o);
    o->virtual_size = in->geo.virtual_size;
    o->block_size = in->geo.block_size;
    o->logical_sector = in->geo.logical_sector;
    o->physical_sector = in->geo.physical_sector;
    o->bat_offset = in->bat_offset;
    o->metadata_offset = in->metadata_offset;
    o->replayed = in->replayed;
    o->replayed_entries = in->replayed ? in->replayed_entries : 0;
    o->replayed_head = in->replayed ? in->replayed_head_sequence : 0;
    o->read_only = in->read_only;
}

static void read_all(struct vhdx *h, uint64_t modelled, const char *when)
{
    for (uint64_t off = 0; off < modelled; off += CHUNK) {
        size_t n = modelled - off < CHUNK ? (size_t)(modelled - off) : CHUNK;
        int rc = vhdx_read(h, off, chunk, n);
        FUZZ_CHECK(rc == 0, "%s: read at %" PRIu64 " failed: %s", when, off, vhdx_strerror(rc));
        if (memcmp(chunk, model + off, n) != 0) {
            size_t k = 0;
            while (chunk[k] == model[off + k])
                k++;
            fuzz_fail(__FILE__, __LINE__, "reads match the model", "%s: virtual offset %" PRIu64
                      " reads %02x, expected %02x", when, off + k, chunk[k], model[off + k]);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!model)
        LLVMFuzzerInitialize(NULL, NULL);
    if (size < 2)
        return 0;
    const struct fuzz_image *img = fuzz_image_get((data[0] & 1) ? FUZZ_IMG_PENDING : FUZZ_IMG_CLEAN);
    cd.durable = &img->map;
    crashdisk_reset(&cd, img->size);
    for (size_t p = 2; p + 6 <= size;) {
        uint64_t off = vhdx_get32(data + p) % (img->size + VHDX_MiB);
        size_t len = vhdx_get16(data + p + 4);
        p += 6;
        if (len > size - p)
            len = size - p;
        if (len)
            crashdisk_overlay_write(&cd, off, data + p, len);
        p += len;
    }
    if (fuzz_export_image(&cd))
        return 0; /* POWERCUT_FUZZ_EXPORT: the image only (powercut diff) */

    struct fuzz_rng rng;
    fuzz_rng_init(&rng, data[1]);
    struct vhdx_diag diag;
    struct vhdx_options o = {.rng = &rng.rng, .diag = &diag, .apply_every = 1u + ((data[0] >> 2) & 7)};
    if (data[0] & 2)
        o.flags = VHDX_OPEN_RDONLY;
    struct vhdx *h = NULL;
    cd.writes = cd.truncates = 0;
    /* the reference reads the edited image first */
    /* checksums of the base images' unchanged structures are remembered
     * across inputs (their sectors are the shared base's: stable pointers) */
    static struct ref_memo *memo;
    if (!memo)
        memo = ref_memo_new();
    struct refjudge rj;
    const struct ref_src before = refjudge_src_built(&cd, memo);
    FUZZ_CHECK(refjudge_begin(&rj, &before) == 0, "the reference ran out of memory");
    struct verdict rv;
    verdict_init(&rv, 0);
    int rc = vhdx_open(crashdisk_bdev(&cd), &o, &h);
    if (rc != 0) {
        FUZZ_CHECK(vhdx_is_format_error(rc), "open failed with a non-format error %s (%s)", vhdx_errname(rc),
                   diag.message);
        FUZZ_CHECK(diag.code == rc, "diag code %s differs from the result %s", vhdx_errname(diag.code),
                   vhdx_errname(rc));
        FUZZ_CHECK(cd.writes == 0 && cd.truncates == 0, "a refused open (%s) wrote to the image", vhdx_errname(rc));
        refjudge_open(&rj, rc < 0 ? rc : -EIO, 1, NULL, 0, &rv);
        refjudge_end(&rj);
        FUZZ_CHECK(rv.ok, "%s: %s (engine: %s)", rv.invariant, rv.detail, diag.message);
        return 0;
    }

    struct vhdx_info info;
    vhdx_get_info(h, &info);
    struct subject_info sinfo;
    subject_view(&info, &sinfo);
    refjudge_open(&rj, 0, 0, &sinfo, 0, &rv);
    FUZZ_CHECK(rv.ok, "%s: %s", rv.invariant, rv.detail);
    const uint64_t vsize = info.geo.virtual_size;
    const uint64_t modelled = vsize < MODEL_MAX ? vsize : MODEL_MAX;
    const uint32_t lsec = info.geo.logical_sector;
    /* Read everything once: that is the model; the reference must read the
     * same (before any write of this session: its view is the edited
     * image, replayed in its own memory). */
    for (uint64_t off = 0; off < modelled; off += CHUNK) {
        size_t n = modelled - off < CHUNK ? (size_t)(modelled - off) : CHUNK;
        rc = vhdx_read(h, off, model + off, n);
        FUZZ_CHECK(rc == 0, "read at %" PRIu64 " of an opened image failed: %s", off, vhdx_strerror(rc));
        if ((!info.replayed || info.read_only) && (off / CHUNK) % 4 == 0)
            refjudge_read(&rj, off, model + off, n, &rv); /* a quarter of the disk, spread */
    }
    FUZZ_CHECK(rv.ok, "%s: %s", rv.invariant, rv.detail);
    if (info.replayed && !info.read_only) {
        /* the replay happened on the device: compare what it left */
        const struct ref_src after = refjudge_src_now(&cd, memo);
        refjudge_replayed(&rj, &after, 1, &rv);
        for (uint64_t off = 0; off < modelled && rv.ok; off += 4 * CHUNK) {
            size_t n = modelled - off < CHUNK ? (size_t)(modelled - off) : CHUNK;
            refjudge_read(&rj, off, model + off, n, &rv);
        }
        FUZZ_CHECK(rv.ok, "%s: %s", rv.invariant, rv.detail);
    }
    refjudge_end(&rj);
    if (vsize > modelled) {
        uint64_t tail = vsize >= 65536 ? vsize - 65536 : 0;
        rc = vhdx_read(h, tail, chunk, (size_t)(vsize - tail));
        FUZZ_CHECK(rc == 0, "read of the last 64 KiB failed: %s", vhdx_strerror(rc));
    }
    if (info.read_only) {
        read_all(h, modelled, "read-only session");
        FUZZ_CHECK(vhdx_close(h) == 0, "read-only close failed");
        FUZZ_CHECK(cd.writes == 0 && cd.truncates == 0, "a read-only session wrote to the image");
        return 0;
    }

    /* Writes and a discard inside the modelled range, chosen by the seed. */
    uint64_t st = UINT64_C(0x1417) + data[1];
    int failed = 0;
    for (int k = 0; k < 4 && !failed; k++) {
        uint64_t units = modelled / lsec;
        uint64_t off = fuzz_mix64(&st) % units * lsec;
        uint64_t len = (1 + fuzz_mix64(&st) % 64) * lsec;
        if (len > modelled - off)
            len = modelled - off;
        if (k == 3) {
            rc = vhdx_discard(h, off, len);
            if (rc == 0)
                memset(model + off, 0, (size_t)len);
        } else {
            uint8_t fillb = (uint8_t)(0x40 + k * 0x11 + data[1]);
            memset(chunk, fillb, (size_t)len);
            rc = vhdx_write(h, off, chunk, (size_t)len);
            if (rc == 0)
                memcpy(model + off, chunk, (size_t)len);
        }
        /* A failure must be a clean error; the data it touched is then unknown. */
        if (rc != 0) {
            FUZZ_CHECK(rc < 0, "write/discard returned %d", rc);
            failed = 1;
        }
    }
    if (failed) {
        vhdx_abandon(h);
        return 0;
    }
    read_all(h, modelled, "same session");
    rc = vhdx_close(h);
    FUZZ_CHECK(rc == 0, "close after successful writes failed: %s", vhdx_strerror(rc));

    /* The image this engine wrote and closed must reopen and hold the data. */
    struct vhdx_check_report rep;
    rc = vhdx_check(crashdisk_bdev(&cd), 0, &rep);
    FUZZ_CHECK(rc == 0, "check could not run: %s", vhdx_strerror(rc));
    size_t errors = rep.errors;
    char first[320] = "";
    for (size_t i = 0; i < rep.count && !first[0]; i++)
        if (rep.problems[i].severity == VHDX_SEV_ERROR)
            snprintf(first, sizeof first, "%s: %s", rep.problems[i].field, rep.problems[i].message);
    vhdx_check_report_free(&rep);
    FUZZ_CHECK(errors == 0, "the image opened, was written and closed, and the checker finds %zu errors (%s)", errors,
               first);
    rc = vhdx_open(crashdisk_bdev(&cd), &o, &h);
    FUZZ_CHECK(rc == 0, "reopen failed: %s (%s)", vhdx_errname(rc), diag.message);
    read_all(h, modelled, "after reopen");
    FUZZ_CHECK(vhdx_close(h) == 0, "second close failed");
    return 0;
}
