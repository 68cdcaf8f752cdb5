/*
 * fuzz_qemu_log_replay - QEMU's log search and replay (the installed
 * QEMU's block/vhdx-log.c and vhdx.c, in process over the shim: qemu/) on
 * the inputs of fuzz_log_replay: the same format (fuzz_common.h: flags,
 * ring start, file size change, header sequence bias, LogGuid, up to 64 log
 * sectors over the FUZZ_IMG_REPLAY base image), the same structure-aware
 * mutator and the same corpus.
 *
 * PROPERTY (QEMU): opening the image never crashes, never trips ASan or
 * UBSan in QEMU's code (every such report is a QEMU finding), costs bounded
 * reads; after QEMU's replay, QEMU's own check passes and a second open
 * writes nothing.
 * DIFFERENTIAL: the same image goes through libvhdx (a second crash disk)
 * and the independent reference (harness/ref, over the image as built);
 * a disagreement is classified by qemu/src/qdiff.h (the classes of
 * `powercut diff`, with the MS-VHDX rule and the side that departs): a
 * class documented as a known QEMU departure is counted and the input
 * passes (POWERCUT_FUZZ_STRICT=1 aborts on those too); any other class
 * aborts with its description.  POWERCUT_FUZZ_VERBOSE=1 prints every
 * input's verdicts and, at exit, the counts per class.
 */
#include <errno.h>
#include <inttypes.h>
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

FUZZ_LOG_MUTATOR_HOOKS()

static const struct fuzz_image *img;
static const struct subject_ops *Q;
static struct crashdisk cq; /* QEMU's disk */
static struct crashdisk ce; /* libvhdx's disk */
static struct crashdisk cb; /* the image as built, for the log facts of a classification */
static uint8_t *sectors;
static uint8_t hdr_buf[2][VHDX_HEADER_SIZE];

static void summary_at_exit(void)
{
    char buf[2048];
    qdiff_summary(buf, sizeof buf);
    fprintf(stderr, "fuzz_qemu_log_replay: classes seen: %s\n", buf[0] ? buf : "none");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    img = fuzz_image_get(FUZZ_IMG_REPLAY);
    Q = subject_find("qemu");
    FUZZ_CHECK(Q != NULL, "the qemu subject is not built in");
    crashdisk_init(&cq, &img->map, img->size);
    crashdisk_init(&ce, &img->map, img->size);
    crashdisk_init(&cb, &img->map, img->size);
    sectors = malloc((size_t)LR_MAX_SECTORS * VHDX_LOG_SECTOR);
    FUZZ_CHECK(sectors != NULL, "out of memory");
    if (fuzz_verbose())
        atexit(summary_at_exit);
    return 0;
}

/* The header copies for this input (as fuzz_log_replay builds them). */
static void make_headers(const struct lr_input *in)
{
    int cur = (in->flags & LRF_SLOT2) ? 1 : 0, other = 1 - cur;
    struct vhdx_header hs[2];
    struct vhdx_header h = img->hdr;
    memset(&h.log_guid, 0, sizeof h.log_guid);
    if (in->flags & LRF_GUID)
        h.log_guid = in->guid;
    h.log_version = (in->flags & LRF_LOGVER) ? 1 : 0;
    h.sequence = img->hdr.sequence + 1 + in->seq_bias;
    hs[cur] = h;
    if (!(in->flags & LRF_SAME_SEQ))
        h.sequence--;
    if (in->flags & LRF_OLD_GUID) {
        h.log_guid = in->guid;
        h.log_guid.b[0] ^= 0x5A;
        h.log_guid.b[15] ^= 0xA5;
    }
    hs[other] = h;
    for (int i = 0; i < 2; i++)
        vhdx_header_encode(&hs[i], hdr_buf[i]);
    if (in->flags & LRF_OTHER_BAD)
        hdr_buf[other][VHDX_HDR_CHECKSUM] ^= 0x01;
}

static void setup_disk(struct crashdisk *c, const struct lr_input *in, uint64_t size)
{
    crashdisk_reset(c, img->size);
    if (size != img->size)
        crashdisk_prefix_truncate(c, size);
    const uint32_t n = img->log_length / VHDX_LOG_SECTOR;
    for (uint32_t i = 0; i < in->n_sectors; i++) {
        uint64_t off = img->log_offset + (uint64_t)((in->start + i) % n) * VHDX_LOG_SECTOR;
        if (off + VHDX_LOG_SECTOR <= size)
            crashdisk_overlay_write(c, off, in->sectors + (size_t)i * VHDX_LOG_SECTOR, VHDX_LOG_SECTOR);
    }
    crashdisk_overlay_write(c, VHDX_HEADER1_OFFSET, hdr_buf[0], VHDX_HEADER_SIZE);
    crashdisk_overlay_write(c, VHDX_HEADER2_OFFSET, hdr_buf[1], VHDX_HEADER_SIZE);
    c->overlay_borrows_temp = 1; /* the overlay borrows this input's buffers: not for the reference's memo */
}

static int in_header_slots(uint64_t sector)
{
    return sector >= VHDX_HEADER1_OFFSET / SECTOR && sector < VHDX_PROTECTED_PREFIX / SECTOR;
}

/* First file offset where QEMU's replayed disk and libvhdx's differ (the
 * header slots aside: each side writes its own GUIDs), or UINT64_MAX. */
static uint64_t first_difference(void)
{
    const struct secmap *maps[2] = {&cq.scratch, &ce.scratch};
    uint8_t a[SECTOR], b[SECTOR];
    uint64_t first = UINT64_MAX;
    for (int m = 0; m < 2; m++)
        for (size_t i = 0; i < maps[m]->count; i++) {
            uint64_t s = secmap_at(maps[m], i)->key;
            if (in_header_slots(s) || s * SECTOR >= first)
                continue;
            crashdisk_read(&cq, a, SECTOR, s * SECTOR);
            crashdisk_read(&ce, b, SECTOR, s * SECTOR);
            if (memcmp(a, b, SECTOR) != 0)
                first = s * SECTOR;
        }
    return first;
}

static void judge(const struct qdiff_class *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void judge(const struct qdiff_class *c, const char *fmt, ...)
{
    if (!c)
        return;
    qdiff_note(c);
    if (c->known && !fuzz_strict())
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!img)
        LLVMFuzzerInitialize(NULL, NULL);
    struct lr_input in;
    lr_parse(data, size, sectors, &in);
    make_headers(&in);
    int64_t fsize = (int64_t)img->size + (int64_t)in.file_delta_mb * (int64_t)VHDX_MiB;
    if (fsize < (int64_t)VHDX_MiB)
        fsize = VHDX_MiB;
    const uint64_t file_size = (uint64_t)fsize;
    const int rdonly = !!(in.flags & LRF_RDONLY);

    setup_disk(&cq, &in, file_size);
    if (fuzz_export_image(&cq))
        return 0; /* POWERCUT_FUZZ_EXPORT: the image only (powercut diff) */
    setup_disk(&ce, &in, file_size);

    /* the reference reads the image as built */
    static struct ref_memo *memo;
    if (!memo)
        memo = ref_memo_new();
    struct refjudge rj;
    const struct ref_src built = refjudge_src_built(&cq, memo);
    FUZZ_CHECK(refjudge_begin(&rj, &built) == 0, "the reference ran out of memory");

    /* libvhdx */
    struct fuzz_rng rng;
    fuzz_rng_init(&rng, 1);
    struct vhdx_diag diag;
    struct vhdx_options o = {.rng = &rng.rng, .diag = &diag, .flags = rdonly ? VHDX_OPEN_RDONLY : 0};
    struct vhdx *h = NULL;
    int rc_e = vhdx_open(crashdisk_bdev(&ce), &o, &h);
    struct vhdx_info info_e;
    memset(&info_e, 0, sizeof info_e);
    if (rc_e == 0) {
        vhdx_get_info(h, &info_e);
        FUZZ_CHECK(vhdx_close(h) == 0, "libvhdx: close after open failed");
    }

    /* QEMU, with a watchdog on what one open may read (its log search can
     * loop forever: docs/qemu-findings.md Q9) */
    const uint64_t read_limit = 64 * (uint64_t)img->log_length + 16 * VHDX_MiB + 2 * cq.size;
    qshim_set_read_limit(read_limit);
    qshim_set_write_limit(read_limit);
    cq.read_bytes = cq.writes = cq.truncates = 0;
    struct subject_handle *qh = NULL;
    uint64_t guid_rng = 1; /* GUIDs: the same for every run of an input */
    int rc_q = Q->open(crashdisk_bdev(&cq), rdonly ? SUBJECT_RDONLY : 0, &guid_rng, 0, &qh);
    char qmsg[700];
    snprintf(qmsg, sizeof qmsg, "%s", rc_q ? Q->last_error(NULL) : "opened");
    if (fuzz_verbose())
        fprintf(stderr, "fuzz_qemu_log_replay: libvhdx %s (%s); qemu %s; reference %s%s%s\n", vhdx_errname(rc_e),
                rc_e ? diag.message : (info_e.replayed ? "replayed" : "opened"), qmsg,
                ref_status_name(rj.pre.status), rj.pre.status != REF_VALID ? ": " : "",
                rj.pre.status != REF_VALID ? rj.pre.rule : "");
    if (qshim_write_limit_hit()) {
        judge(qdiff_class(QD_WRITES_UNBOUNDED), "the open wrote more than %" PRIu64 " bytes", read_limit);
        if (qh)
            Q->abandon(qh);
        refjudge_end(&rj);
        return 0;
    }
    if (qshim_read_limit_hit()) {
        judge(qdiff_class(QD_READS_UNBOUNDED), "the open read more than %" PRIu64 " bytes (%s)", read_limit, qmsg);
        if (qh)
            Q->abandon(qh);
        refjudge_end(&rj);
        return 0;
    }

    const struct qdiff_class *c = NULL;
    if (rdonly && rc_q == -EROFS) {
        /* QEMU does not replay in memory: a refusal exactly when there is a log to replay */
        if (rc_e == 0 && !info_e.replayed)
            c = qdiff_class(QD_QEMU_REFUSES_VALID);
    } else {
        c = qdiff_verdict(rc_e, info_e.replayed, rc_q, &rj.pre);
    }
    judge(c, "libvhdx: %s (%s); QEMU: %s", vhdx_errname(rc_e), rc_e ? diag.message : "opened", qmsg);

    if (rc_q == 0 && rc_e == 0 && !rdonly && !c) {
        struct subject_info qi;
        Q->info(qh, &qi);
        FUZZ_CHECK(Q->close(qh) == 0, "QEMU: close after open failed: %s", Q->last_error(NULL));
        qh = NULL;
        if (qi.replayed != info_e.replayed)
            judge(qdiff_class(qi.replayed ? QD_TAIL_OUTSIDE : QD_CANNOT_REPLAY),
                  "QEMU %s, libvhdx %s", qi.replayed ? "replayed" : "did not replay",
                  info_e.replayed ? "replayed" : "did not");
        uint64_t d = first_difference();
        const struct qdiff_class *r = NULL;
        if (cq.size != ce.size || d != UINT64_MAX) {
            setup_disk(&cb, &in, file_size);
            r = qdiff_replay(crashdisk_bdev(&cb), ce.size, cq.size);
            judge(r, "after the replay: file sizes QEMU %" PRIu64 ", libvhdx %" PRIu64 "; first differing byte at %s%" PRIu64,
                  cq.size, ce.size, d == UINT64_MAX ? "(none) " : "", d == UINT64_MAX ? 0 : d);
        }
        char why[640] = "";
        if (r) {
            /* QEMU replayed something else: what its check and a reopen then
             * say are consequences of that class, not new findings */
        } else if (Q->check(crashdisk_bdev(&cq), why, sizeof why) != 0)
            judge(qdiff_class(QD_CHECK_AFTER), "after QEMU's replay: %s", why);
        uint64_t w = cq.writes + cq.truncates;
        if (r) {
        } else if (Q->open(crashdisk_bdev(&cq), 0, &guid_rng, 0, &qh) == 0) {
            FUZZ_CHECK(Q->close(qh) == 0, "QEMU: second close failed");
            qh = NULL;
            if (cq.writes + cq.truncates != w)
                judge(qdiff_class(QD_REOPEN_WRITES), "%" PRIu64 " writes and truncates",
                      cq.writes + cq.truncates - w);
        } else {
            judge(qdiff_class(QD_CHECK_AFTER), "QEMU refuses the image it replayed: %s", Q->last_error(NULL));
        }
    }
    if (qh)
        Q->abandon(qh);
    refjudge_end(&rj);
    return 0;
}
