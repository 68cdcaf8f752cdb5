/*
 * fuzz_qemu_image_open - QEMU's VHDX driver (the installed QEMU's
 * block/vhdx*.c, in process over the shim: qemu/) on the inputs of
 * fuzz_image_open: byte edits of a small valid image (fuzz_common.h
 * FUZZ_IMG_CLEAN, or FUZZ_IMG_PENDING with a log to replay), the same
 * format and corpus.
 *
 *   byte 0   bit 0: base image (0 clean, 1 with a pending log);
 *            bit 1: open read-only
 *   byte 1   seed of the session's writes
 *   then edits: u32 offset (LE, modulo the image size + 1 MiB), u16
 *            length (LE, cut to what remains), the bytes
 *
 * PROPERTY (QEMU): the open, the reads, the writes and the check never
 * crash or trip ASan/UBSan in QEMU's code (findings); an image QEMU opens
 * reads without error; what QEMU acknowledged reads back the same in the
 * session and after a close and a reopen (a failed write is retried once,
 * as a guest would; its bytes are unknown unless the retry succeeds); an
 * image QEMU opened and wrote passes QEMU's own check.
 * DIFFERENTIAL: libvhdx opens the same image on a second crash disk and
 * the independent reference (harness/ref) reads it as built; the verdicts
 * and, where MS-VHDX defines them, the virtual-disk bytes QEMU returns are
 * compared; a disagreement is classified (qemu/src/qdiff.h, the classes of
 * `powercut diff`): known QEMU departures are counted, any other class
 * aborts (POWERCUT_FUZZ_STRICT=1: known ones too).  The bytes QEMU leaves
 * uninitialized in its log entries (qdiff: Q2) are counted.
 *
 * Bounded work: at most the first 8 MiB of the virtual disk are read and
 * modelled.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "fuzz_target.h"
#include "harness/refjudge.h"
#include "harness/subject.h"
#include "qdiff.h"
#include "qshim.h"
#include "vhdx/vhdx.h"

#define MODEL_MAX (8u * 1024 * 1024)
#define CHUNK (256u * 1024)

static const struct subject_ops *Q;
static struct crashdisk cq, ce; /* QEMU's disk, libvhdx's disk */
static uint8_t *model, *chunk, *refbuf;
static uint8_t *known; /* model bytes that are defined (not under a failed write) */

/* First modelled byte QEMU returns differently from what it acknowledged, or UINT64_MAX. */
static uint64_t first_loss(const uint8_t *back, uint64_t modelled)
{
    if (memcmp(back, model, (size_t)modelled) == 0)
        return UINT64_MAX;
    for (uint64_t i = 0; i < modelled; i++)
        if (known[i] && back[i] != model[i])
            return i;
    return UINT64_MAX;
}

static void summary_at_exit(void)
{
    char buf[2048];
    qdiff_summary(buf, sizeof buf);
    fprintf(stderr, "fuzz_qemu_image_open: classes seen: %s\n", buf[0] ? buf : "none");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_image_get(FUZZ_IMG_CLEAN);
    fuzz_image_get(FUZZ_IMG_PENDING);
    Q = subject_find("qemu");
    FUZZ_CHECK(Q != NULL, "the qemu subject is not built in");
    crashdisk_init(&cq, NULL, 0);
    crashdisk_init(&ce, NULL, 0);
    model = malloc(MODEL_MAX);
    chunk = malloc(CHUNK);
    refbuf = malloc(CHUNK);
    known = malloc(MODEL_MAX);
    FUZZ_CHECK(model && chunk && refbuf && known, "out of memory");
    if (fuzz_verbose())
        atexit(summary_at_exit);
    return 0;
}

static void build(struct crashdisk *c, const struct fuzz_image *img, const uint8_t *data, size_t size)
{
    c->durable = &img->map;
    crashdisk_reset(c, img->size);
    for (size_t p = 2; p + 6 <= size;) {
        uint64_t off = vhdx_get32(data + p) % (img->size + VHDX_MiB);
        size_t len = vhdx_get16(data + p + 4);
        p += 6;
        if (len > size - p)
            len = size - p;
        if (len)
            crashdisk_overlay_write(c, off, data + p, len);
        p += len;
    }
    c->overlay_borrows_temp = 1; /* the overlay borrows the input: not for the reference's memo */
}

static void judge(const struct qdiff_class *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Set once QEMU's verdict departs: what its I/O then does on the image
 * (EIO, reads of the header section, ...) follows from that class and is
 * only counted; sanitizer reports still are findings. */
static int consequence;

static void judge(const struct qdiff_class *c, const char *fmt, ...)
{
    if (!c)
        return;
    qdiff_note(c);
    if ((c->known || consequence) && !fuzz_strict())
        return;
    char detail[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    fuzz_fail(__FILE__, __LINE__, "QEMU agrees with libvhdx and the reference",
              "%s class %s (MS-VHDX %s: %s; departs: %s%s%s): %s", c->known ? "known" : "NEW", c->name, c->section,
              c->rule, c->departs, c->finding ? "; docs/qemu-findings.md " : "", c->finding ? c->finding : "",
              detail);
}

/* Reads [0, modelled) through QEMU into buf; 0 or the failing rc. */
static int read_all(struct subject_handle *h, uint64_t modelled, uint8_t *buf, uint64_t *at)
{
    for (uint64_t off = 0; off < modelled; off += CHUNK) {
        size_t n = modelled - off < CHUNK ? (size_t)(modelled - off) : CHUNK;
        int rc = Q->read(h, off, buf + off, n);
        if (rc != 0) {
            *at = off;
            return rc;
        }
    }
    return 0;
}

/* Every byte the reference defines (after its replay) equals QEMU's. */
static void compare_with_reference(struct refjudge *rj, uint64_t modelled)
{
    const struct ref_image *r = &rj->pre;
    for (uint64_t off = 0; off < modelled; off += CHUNK) {
        size_t n = modelled - off < CHUNK ? (size_t)(modelled - off) : CHUNK;
        for (size_t b = 0; b < n; b += 4096) {
            size_t m = n - b < 4096 ? n - b : 4096;
            int defined = 1;
            if (ref_image_read_virtual(r, refbuf, m, off + b, &defined) != 0 || !defined)
                continue;
            if (memcmp(refbuf, model + off + b, m) == 0)
                continue;
            size_t k = 0;
            while (refbuf[k] == model[off + b + k])
                k++;
            uint64_t v = off + b + k;
            uint64_t e = ref_image_bat_entry(r, ref_image_bat_index(r, v / r->block_size));
            judge(qdiff_read((unsigned)(e & 7)),
                  "virtual offset %" PRIu64 ": QEMU reads %02x, the reference %02x (BAT entry %#" PRIx64 ")", v,
                  model[v], refbuf[k], e);
            return;
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
    const int rdonly = !!(data[0] & 2);
    build(&cq, img, data, size);
    if (fuzz_export_image(&cq))
        return 0; /* POWERCUT_FUZZ_EXPORT: the image only (powercut diff) */
    build(&ce, img, data, size);

    static struct ref_memo *memo;
    if (!memo)
        memo = ref_memo_new();
    struct refjudge rj;
    const struct ref_src before = refjudge_src_built(&cq, memo);
    FUZZ_CHECK(refjudge_begin(&rj, &before) == 0, "the reference ran out of memory");

    /* libvhdx: the verdict only */
    struct fuzz_rng rng;
    fuzz_rng_init(&rng, data[1]);
    struct vhdx_diag diag;
    struct vhdx_options o = {.rng = &rng.rng, .diag = &diag, .flags = rdonly ? VHDX_OPEN_RDONLY : 0};
    struct vhdx *h = NULL;
    int rc_e = vhdx_open(crashdisk_bdev(&ce), &o, &h);
    struct vhdx_info info_e;
    memset(&info_e, 0, sizeof info_e);
    if (rc_e == 0) {
        vhdx_get_info(h, &info_e);
        vhdx_abandon(h);
    }

    struct subject_handle *qh = NULL;
    /* a watchdog on what one open may read (QEMU's log search can loop
     * forever: docs/qemu-findings.md Q9) */
    const uint64_t read_limit = 64 * (uint64_t)img->log_length + 16 * VHDX_MiB + 2 * cq.size;
    qshim_set_read_limit(read_limit);
    qshim_set_write_limit(read_limit);
    uint64_t guid_rng = data[1]; /* GUIDs: from the input */
    int rc_q = Q->open(crashdisk_bdev(&cq), rdonly ? SUBJECT_RDONLY : 0, &guid_rng, 0, &qh);
    if (qshim_write_limit_hit()) {
        judge(qdiff_class(QD_WRITES_UNBOUNDED), "the open wrote more than %" PRIu64 " bytes", read_limit);
        if (qh)
            Q->abandon(qh);
        refjudge_end(&rj);
        return 0;
    }
    if (qshim_read_limit_hit()) {
        judge(qdiff_class(QD_READS_UNBOUNDED), "the open read more than %" PRIu64 " bytes", read_limit);
        if (qh)
            Q->abandon(qh);
        refjudge_end(&rj);
        return 0;
    }
    char qmsg[700];
    snprintf(qmsg, sizeof qmsg, "%s", rc_q ? Q->last_error(NULL) : "opened");
    if (fuzz_verbose())
        fprintf(stderr, "fuzz_qemu_image_open: libvhdx %s (%s); qemu %s; reference %s%s%s\n", vhdx_errname(rc_e),
                rc_e ? diag.message : (info_e.replayed ? "replayed" : "opened"), qmsg,
                ref_status_name(rj.pre.status), rj.pre.status != REF_VALID ? ": " : "",
                rj.pre.status != REF_VALID ? rj.pre.rule : "");
    const struct qdiff_class *c = NULL;
    if (rdonly && rc_q == -EROFS) {
        if (rc_e == 0 && !info_e.replayed)
            c = qdiff_class(QD_QEMU_REFUSES_VALID);
    } else {
        c = qdiff_verdict(rc_e, info_e.replayed, rc_q, &rj.pre);
    }
    consequence = 0;
    judge(c, "libvhdx: %s (%s); QEMU: %s", vhdx_errname(rc_e), rc_e ? diag.message : "opened", qmsg);
    consequence = c != NULL;
    if (rc_q != 0) {
        refjudge_end(&rj);
        return 0;
    }

    struct subject_info qi;
    Q->info(qh, &qi);
    /* a disk larger than its BAT can map: QEMU's I/O there indexes past its
     * BAT array (docs/qemu-findings.md Q10); no I/O on it here */
    if (qi.block_size && qi.logical_sector && rj.pre.bat_length) {
        uint64_t blocks = (qi.virtual_size + qi.block_size - 1) / qi.block_size;
        uint64_t ratio = ((uint64_t)1 << 23) * qi.logical_sector / qi.block_size;
        uint64_t needed = blocks + (blocks && ratio ? (blocks - 1) / ratio : 0);
        if (needed > rj.pre.bat_length / 8) {
            judge(qdiff_class(QD_VSIZE), "QEMU opened a %" PRIu64 "-byte disk needing %" PRIu64
                  " BAT entries; its BAT region holds %u", qi.virtual_size, needed, rj.pre.bat_length / 8);
            Q->abandon(qh);
            refjudge_end(&rj);
            return 0;
        }
    }
    const uint64_t modelled = qi.virtual_size < MODEL_MAX ? qi.virtual_size : MODEL_MAX;
    uint64_t at = 0;
    int rc = read_all(qh, modelled, model, &at);
    if (rc != 0)
        judge(qdiff_class(QD_READ_FAILS), "read at %" PRIu64 ": %s", at, Q->last_error(qh));
    /* where QEMU and the others agree on the image, QEMU reads what the reference reads */
    const int agree = !c && rc_e == 0 && rj.pre.status == REF_VALID && refjudge_usable(&rj);
    if (rc == 0 && agree && qi.virtual_size == rj.pre.virtual_size && qi.replayed == rj.pre.log_pending)
        compare_with_reference(&rj, modelled);
    refjudge_end(&rj);
    if (rc != 0 || rdonly) {
        Q->close(qh);
        return 0;
    }

    /* Writes chosen by the seed; a failed one is retried once, as a guest
     * would.  What QEMU acknowledged must stay; the bytes of a write that
     * failed and was not retried successfully are unknown (mask 0). */
    uint64_t st = UINT64_C(0x1417) + data[1];
    const uint32_t lsec = qi.logical_sector ? qi.logical_sector : 512;
    int wrote = 0, failed = 0;
    memset(known, 1, (size_t)modelled);
    for (int k = 0; k < 3 && modelled >= lsec; k++) {
        uint64_t units = modelled / lsec;
        uint64_t off = fuzz_mix64(&st) % units * lsec;
        uint64_t len = (1 + fuzz_mix64(&st) % 64) * lsec;
        if (len > modelled - off)
            len = modelled - off;
        memset(chunk, 0x40 + k * 0x11 + data[1], (size_t)len);
        for (int attempt = 0; attempt < 2; attempt++) {
            rc = Q->write(qh, off, chunk, (size_t)len);
            if (rc == 0) {
                memcpy(model + off, chunk, (size_t)len);
                memset(known + off, 1, (size_t)len);
                wrote = 1;
                break;
            }
            failed = 1;
            memset(known + off, 0, (size_t)len);
            if (rc == -ENOTSUP && !qi.log_clean)
                judge(qdiff_class(QD_WRITE_ENOTSUP), "write at %" PRIu64 ": %s", off, Q->last_error(qh));
            else
                judge(qdiff_class(QD_WRITE_FAILS), "write of %" PRIu64 " bytes at %" PRIu64 ": %s", len, off,
                      Q->last_error(qh));
        }
    }
    uint8_t *back = malloc(modelled ? (size_t)modelled : 1);
    FUZZ_CHECK(back != NULL, "out of memory");
    uint64_t lost = UINT64_MAX;
    if (read_all(qh, modelled, back, &at) != 0 || (lost = first_loss(back, modelled)) != UINT64_MAX)
        judge(qdiff_class(QD_LOST_WRITE), "in the session that wrote it (virtual offset %" PRIu64 ")", lost);
    Q->close(qh);
    qh = NULL;
    if (wrote) {
        char why[640] = "";
        uint64_t u = qdiff_uninitialized_log_bytes(crashdisk_bdev(&cq), img->log_offset, img->log_length);
        if (u)
            judge(qdiff_class(QD_UNINIT_BYTES), "%" PRIu64 " bytes of 0xA5 (the shim's fresh-buffer pattern) after "
                  "the descriptors of the log entries QEMU wrote", u);
        if (!c && rc_e == 0 && Q->check(crashdisk_bdev(&cq), why, sizeof why) != 0)
            judge(qdiff_class(QD_CHECK_AFTER), "after QEMU's writes: %s", why);
    }
    if (Q->open(crashdisk_bdev(&cq), 0, &guid_rng, 0, &qh) != 0) {
        if (!c && rc_e == 0)
            judge(qdiff_class(QD_CHECK_AFTER), "QEMU refuses the image it wrote and closed: %s", Q->last_error(NULL));
    } else {
        lost = UINT64_MAX;
        if (read_all(qh, modelled, back, &at) != 0 || (lost = first_loss(back, modelled)) != UINT64_MAX)
            judge(qdiff_class(failed ? QD_LOST_AFTER_FAILED : QD_LOST_WRITE),
                  "after a close and a reopen: virtual offset %" PRIu64 " reads %02x, QEMU had acknowledged %02x%s",
                  lost, lost != UINT64_MAX ? back[lost] : 0, lost != UINT64_MAX ? model[lost] : 0,
                  failed ? " (an earlier write of the session had failed)" : "");
        Q->close(qh);
    }
    free(back);
    return 0;
}
