/*
 * fuzz_log_replay - PROPERTY: whatever the log region and the selected
 * header fields hold, opening the image (search + replay) never crashes,
 * never invokes undefined behaviour and never leaks; it costs bounded I/O;
 * it writes only the header slots and places the log may write (the crash
 * disk's guard aborts otherwise); a refused image is left byte-identical;
 * after a successful open the checker passes, the LogGuid is clear and a
 * second open writes nothing.  DIFFERENTIAL: a separately written reference
 * (ref_log.c, straight from MS-VHDX 2.3) must reach the same verdict and,
 * after a replay, the same bytes in every sector either of them wrote.
 *
 * Input: the log-input format of fuzz_common.h (flags, ring start, file
 * size change, header sequence bias, LogGuid, then up to 64 log sectors).
 * The base image (FUZZ_IMG_REPLAY: 8 MiB disk, three blocks written, log
 * region zero) is built once and shared; each input is an overlay on it.
 *
 * No known engine deviation is tolerated at present (KD1, a zero descriptor
 * past the end of the file not extending it, was fixed in log_replay.c;
 * docs/fuzzing.md).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "fuzz_target.h"
#include "ref/ref_log.h"
#include "vhdx/check.h"
#include "vhdx/log.h"
#include "vhdx/vhdx.h"

FUZZ_LOG_MUTATOR_HOOKS()

static const struct fuzz_image *img;
static struct crashdisk cd;  /* the engine's disk */
static struct crashdisk cd2; /* the reference's disk */
static struct fuzz_guard guard;
static uint8_t *sectors;     /* LR_MAX_SECTORS * 4096: the parsed log sectors */
static uint8_t hdr_buf[2][VHDX_HEADER_SIZE];
static uint8_t hdr_clear[2][VHDX_HEADER_SIZE];
static const uint8_t zero4k[VHDX_LOG_SECTOR];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    img = fuzz_image_get(FUZZ_IMG_REPLAY);
    crashdisk_init(&cd, &img->map, img->size);
    crashdisk_init(&cd2, &img->map, img->size);
    cd.guard = fuzz_guard_fn;
    cd.guard_ctx = &guard;
    sectors = malloc((size_t)LR_MAX_SECTORS * VHDX_LOG_SECTOR);
    FUZZ_CHECK(sectors != NULL, "out of memory");
    return 0;
}

/* What the two header slots hold for this input, and which one the engine
 * must pick (-1: both valid, equal sequence, different: ambiguous). */
struct headers {
    struct vhdx_header h[2]; /* decoded fields per slot */
    int valid[2];            /* checksum holds */
    int current;             /* slot the engine must use, -1 ambiguous */
};

static void make_headers(const struct lr_input *in, struct headers *hs)
{
    int cur = (in->flags & LRF_SLOT2) ? 1 : 0, other = 1 - cur;
    struct vhdx_header h = img->hdr;
    memset(&h.log_guid, 0, sizeof h.log_guid);
    if (in->flags & LRF_GUID)
        h.log_guid = in->guid;
    h.log_version = (in->flags & LRF_LOGVER) ? 1 : 0;
    h.sequence = img->hdr.sequence + 1 + in->seq_bias;
    hs->h[cur] = h;
    if (!(in->flags & LRF_SAME_SEQ))
        h.sequence--;
    if (in->flags & LRF_OLD_GUID) {
        h.log_guid = in->guid;
        h.log_guid.b[0] ^= 0x5A;
        h.log_guid.b[15] ^= 0xA5;
    }
    hs->h[other] = h;
    for (int i = 0; i < 2; i++) {
        vhdx_header_encode(&hs->h[i], hdr_buf[i]);
        hs->valid[i] = 1;
        struct vhdx_header z = hs->h[i];
        memset(&z.log_guid, 0, sizeof z.log_guid);
        vhdx_header_encode(&z, hdr_clear[i]);
    }
    if (in->flags & LRF_OTHER_BAD) {
        hdr_buf[other][VHDX_HDR_CHECKSUM] ^= 0x01;
        hdr_clear[other][VHDX_HDR_CHECKSUM] ^= 0x01;
        hs->valid[other] = 0;
    }
    if (!hs->valid[other])
        hs->current = cur;
    else if (hs->h[0].sequence == hs->h[1].sequence)
        hs->current = memcmp(hdr_buf[0], hdr_buf[1], VHDX_HEADER_SIZE) == 0 ? 0 : -1;
    else
        hs->current = hs->h[1].sequence > hs->h[0].sequence;
}

/* Puts base + headers + log sectors on a disk of `size` bytes. */
static void setup_disk(struct crashdisk *c, const struct lr_input *in, uint64_t size, int clear_guid)
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
    uint8_t(*hb)[VHDX_HEADER_SIZE] = clear_guid ? hdr_clear : hdr_buf;
    crashdisk_overlay_write(c, VHDX_HEADER1_OFFSET, hb[0], VHDX_HEADER_SIZE);
    crashdisk_overlay_write(c, VHDX_HEADER2_OFFSET, hb[1], VHDX_HEADER_SIZE);
}

/* Applies the reference's replay to cd2 the way the text says, writing
 * zeros only inside the file (beyond it the extension reads as zeros). */
static void ref_apply(const struct ref_result *r)
{
    struct bdev *d = crashdisk_bdev(&cd2);
    for (size_t i = 0; i < r->n_writes; i++) {
        const struct ref_write *w = &r->writes[i];
        if (w->data) {
            FUZZ_CHECK(d->ops->write(d, w->data, (size_t)w->length, w->offset) == 0, "reference write failed");
            continue;
        }
        /* Zeros inside the file: whole 512-byte sectors of the shared zero
         * sector in the scratch layer (what a write of zeros leaves there,
         * without copying); targets and lengths are 4 KiB multiples. */
        uint64_t end = w->offset + w->length;
        if (end > cd2.size)
            end = cd2.size;
        for (uint64_t s = w->offset / SECTOR; s * SECTOR < end; s++)
            FUZZ_CHECK(secmap_put(&cd2.scratch, s, SECTOR_ZERO) == 0, "out of memory");
    }
    if (cd2.size < r->final_size)
        FUZZ_CHECK(d->ops->truncate(d, r->final_size) == 0, "reference extension failed");
}

static int in_header_slots(uint64_t sector)
{
    return sector >= VHDX_HEADER1_OFFSET / SECTOR && sector < VHDX_PROTECTED_PREFIX / SECTOR;
}

/* Every sector written by the engine or the reference must read the same
 * on both disks (the header slots differ by design: new FileWriteGuid). */
static void compare_disks(void)
{
    const struct secmap *maps[2] = {&cd.scratch, &cd2.scratch};
    uint8_t a[SECTOR], b[SECTOR];
    for (int m = 0; m < 2; m++) {
        for (size_t i = 0; i < maps[m]->count; i++) {
            uint64_t s = secmap_at(maps[m], i)->key;
            if (in_header_slots(s))
                continue;
            crashdisk_read(&cd, a, SECTOR, s * SECTOR);
            crashdisk_read(&cd2, b, SECTOR, s * SECTOR);
            if (memcmp(a, b, SECTOR) != 0) {
                size_t k = 0;
                while (a[k] == b[k])
                    k++;
                fuzz_fail(__FILE__, __LINE__, "engine replay == reference replay",
                          "file offset %" PRIu64 " differs after replay: engine byte %02x, reference %02x "
                          "(sector written by the %s)",
                          s * SECTOR + k, a[k], b[k], m ? "reference" : "engine");
            }
        }
    }
}

static int expected_code(enum ref_verdict v)
{
    switch (v) {
    case REF_NO_SEQUENCE: return VHDX_E_LOG_NO_SEQUENCE;
    case REF_AMBIGUOUS: return VHDX_E_LOG_AMBIGUOUS;
    case REF_TRUNCATED: return VHDX_E_LOG_TRUNCATED;
    case REF_TARGET: return VHDX_E_LOG_TARGET;
    case REF_OK: return 0;
    }
    return 0;
}

static const char *verdict_name(enum ref_verdict v)
{
    static const char *const names[] = {"ok", "no sequence", "ambiguous", "truncated", "bad target"};
    return names[v];
}

/* The largest LastFileOffset any entry header with this GUID claims: the
 * engine may never write or extend past it (nor past the file). */
static uint64_t lfo_limit(const struct lr_input *in, const struct vhdx_guid *g, uint64_t size)
{
    uint64_t lim = size;
    for (uint32_t i = 0; i < in->n_sectors; i++) {
        const uint8_t *p = in->sectors + (size_t)i * VHDX_LOG_SECTOR;
        if (vhdx_get32(p) != VHDX_SIG_LOGE || memcmp(p + VHDX_LOGE_LOG_GUID, g->b, 16) != 0)
            continue;
        uint64_t lfo = vhdx_get64(p + VHDX_LOGE_LAST_FILE_OFFSET);
        if (lfo > VHDX_MAX_FILE_SIZE)
            lfo = VHDX_MAX_FILE_SIZE;
        if (lfo > lim)
            lim = lfo;
    }
    return lim;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!img)
        LLVMFuzzerInitialize(NULL, NULL);
    struct lr_input in;
    lr_parse(data, size, sectors, &in);
    struct headers hs;
    make_headers(&in, &hs);
    int64_t fsize = (int64_t)img->size + (int64_t)in.file_delta_mb * (int64_t)VHDX_MiB;
    if (fsize < (int64_t)VHDX_MiB)
        fsize = VHDX_MiB;
    const uint64_t file_size = (uint64_t)fsize;

    /* The expectation: header stage first, then the reference. */
    int want = 0, need_ref = 0;
    const struct vhdx_header *eh = hs.current >= 0 ? &hs.h[hs.current] : NULL;
    if (!eh)
        want = VHDX_E_HEADER_AMBIGUOUS;
    else if (vhdx_guid_is_zero(&eh->log_guid))
        want = 0;
    else if (eh->log_version != 0)
        want = VHDX_E_LOG_VERSION;
    else if (eh->log_offset + eh->log_length > file_size)
        want = VHDX_E_TRUNCATED;
    else
        need_ref = 1;

    struct ref_result ref;
    memset(&ref, 0, sizeof ref);
    const uint8_t *ring[256];
    if (need_ref) {
        const uint32_t n = img->log_length / VHDX_LOG_SECTOR;
        FUZZ_CHECK(n <= 256, "ring of %u sectors", n);
        for (uint32_t r = 0; r < n; r++) {
            uint32_t i = (r + n - in.start % n) % n;
            ring[r] = i < in.n_sectors ? in.sectors + (size_t)i * VHDX_LOG_SECTOR : zero4k;
        }
        struct ref_ring rr = {ring, n, NULL, NULL};
        FUZZ_CHECK(ref_log_replay(&rr, eh->log_guid.b, eh->log_offset, file_size, &ref) == 0, "reference: out of memory");
        want = expected_code(ref.verdict);
    }

    /* The engine. */
    setup_disk(&cd, &in, file_size, 0);
    if (fuzz_export_image(&cd))
        return 0; /* POWERCUT_FUZZ_EXPORT: the image only (powercut diff) */
    guard.phase = GUARD_REPLAY;
    guard.log_offset = img->log_offset;
    guard.log_length = img->log_length;
    guard.size_floor = file_size;
    guard.limit = eh ? lfo_limit(&in, &eh->log_guid, file_size) : file_size;
    if (!need_ref || (in.flags & LRF_RDONLY))
        guard.phase = GUARD_FORBID; /* nothing to replay, or replay in memory: no write at all */
    struct fuzz_rng rng;
    fuzz_rng_init(&rng, 1);
    struct vhdx_diag diag;
    struct vhdx_options o = {.rng = &rng.rng, .diag = &diag};
    if (in.flags & LRF_RDONLY)
        o.flags = VHDX_OPEN_RDONLY;
    struct vhdx *h = NULL;
    cd.read_bytes = cd.writes = cd.truncates = 0;
    int rc = vhdx_open(crashdisk_bdev(&cd), &o, &h);
    if (fuzz_verbose())
        fprintf(stderr, "fuzz_log_replay: engine %s (%s); expected %s; reference %s, %u entries, head %" PRIu64 "\n",
                vhdx_errname(rc), rc ? diag.message : "opened", vhdx_errname(want),
                need_ref ? verdict_name(ref.verdict) : "not consulted", ref.entries, ref.head_sequence);
    /* The search and the plan read the ring a bounded number of times; the
     * structures (a replayed BAT may be large) are read about once. */
    const uint64_t read_limit = 8 * (uint64_t)img->log_length + 16 * VHDX_MiB + 2 * cd.size;
    FUZZ_CHECK(cd.read_bytes <= read_limit, "open read %" PRIu64 " bytes (limit %" PRIu64 ")", cd.read_bytes,
               read_limit);

    if (rc != 0) {
        FUZZ_CHECK(cd.writes == 0 && cd.truncates == 0, "a refused open (%s) wrote to the image", vhdx_errname(rc));
        FUZZ_CHECK(vhdx_is_format_error(rc), "open failed with a non-format error: %s (%s)", vhdx_strerror(rc),
                   diag.message);
        if (!need_ref && want == 0 && file_size < img->size) {
            /* no log to replay and a cut-down file: the structures past the
             * end are refused (any format error; nothing written, checked above) */
        } else if (want != 0 || !need_ref || ref.verdict != REF_OK) {
            FUZZ_CHECK(rc == want, "engine says %s (%s), expected %s (reference: %s)", vhdx_errname(rc), diag.message,
                       vhdx_errname(want), need_ref ? verdict_name(ref.verdict) : "not consulted");
        } else if (rc == VHDX_E_LOG_NO_SEQUENCE || rc == VHDX_E_LOG_AMBIGUOUS || rc == VHDX_E_LOG_TRUNCATED ||
                   rc == VHDX_E_LOG_TARGET) {
            fuzz_fail(__FILE__, __LINE__, "engine verdict == reference verdict",
                      "engine says %s (%s), the reference replays %u entries up to sequence %" PRIu64,
                      vhdx_errname(rc), diag.message, ref.entries, ref.head_sequence);
        } else {
            /* The reference replays; the engine refused the replayed image.
             * The same image, replayed by the reference with the LogGuid
             * cleared, must be refused for the same reason. */
            setup_disk(&cd2, &in, file_size, 0);
            ref_apply(&ref);
            crashdisk_overlay_write(&cd2, VHDX_HEADER1_OFFSET, hdr_clear[0], VHDX_HEADER_SIZE);
            crashdisk_overlay_write(&cd2, VHDX_HEADER2_OFFSET, hdr_clear[1], VHDX_HEADER_SIZE);
            struct vhdx *h2 = NULL;
            struct vhdx_diag d2;
            int rc2 = vhdx_open(crashdisk_bdev(&cd2), &(struct vhdx_options){.flags = VHDX_OPEN_RDONLY, .diag = &d2},
                                &h2);
            if (h2)
                vhdx_close(h2);
            FUZZ_CHECK(rc2 == rc, "engine refused the replay with %s (%s) but the reference's replayed image "
                       "opens with %s (%s)", vhdx_errname(rc), diag.message, vhdx_errname(rc2), d2.message);
        }
        ref_result_free(&ref);
        return 0;
    }

    FUZZ_CHECK(want == 0, "engine opened the image, expected %s (reference: %s)", vhdx_errname(want),
               need_ref ? verdict_name(ref.verdict) : "not consulted");
    struct vhdx_info info;
    vhdx_get_info(h, &info);
    guard.phase = GUARD_FORBID;
    if (in.flags & LRF_RDONLY) {
        FUZZ_CHECK(info.replayed == need_ref, "read-only open: replayed=%d, expected %d", info.replayed, need_ref);
        vhdx_close(h);
        FUZZ_CHECK(cd.writes == 0 && cd.truncates == 0, "a read-only open wrote to the image");
        ref_result_free(&ref);
        return 0;
    }
    int crc = vhdx_close(h);
    FUZZ_CHECK(crc == 0, "close after open failed: %s", vhdx_strerror(crc));
    if (!need_ref) {
        FUZZ_CHECK(cd.writes == 0 && cd.truncates == 0, "open and close with no log to replay wrote to the image");
        return 0;
    }
    {
        FUZZ_CHECK(info.replayed && info.replayed_entries == ref.entries &&
                       info.replayed_head_sequence == ref.head_sequence,
                   "engine replayed %u entries up to sequence %" PRIu64 ", reference %u up to %" PRIu64,
                   info.replayed_entries, info.replayed_head_sequence, ref.entries, ref.head_sequence);
        setup_disk(&cd2, &in, file_size, 0);
        ref_apply(&ref);
        compare_disks();
        FUZZ_CHECK(cd.size == ref.final_size, "file size after replay %" PRIu64 ", reference %" PRIu64, cd.size,
                   ref.final_size);
    }

    /* The replayed image passes the checker, its LogGuid is clear, and a
     * second open changes nothing. */
    struct vhdx_check_report rep;
    int krc = vhdx_check(crashdisk_bdev(&cd), 0, &rep);
    FUZZ_CHECK(krc == 0, "check could not run: %s", vhdx_strerror(krc));
    if (rep.errors != 0) {
        for (size_t i = 0; i < rep.count; i++)
            if (rep.problems[i].severity == VHDX_SEV_ERROR)
                fprintf(stderr, "check: %s: %s\n", rep.problems[i].field, rep.problems[i].message);
    }
    FUZZ_CHECK(rep.errors == 0 && !rep.log_pending, "after a successful open the checker finds %zu errors, log "
               "pending %d", rep.errors, rep.log_pending);
    vhdx_check_report_free(&rep);
    uint64_t writes_before = cd.writes;
    rc = vhdx_open(crashdisk_bdev(&cd), &o, &h);
    FUZZ_CHECK(rc == 0, "second open failed: %s (%s)", vhdx_errname(rc), diag.message);
    vhdx_get_info(h, &info);
    FUZZ_CHECK(vhdx_guid_is_zero(&info.header.log_guid) && !info.replayed, "LogGuid still set after replay");
    FUZZ_CHECK(vhdx_close(h) == 0, "second close failed");
    FUZZ_CHECK(cd.writes == writes_before, "the second open wrote to the image");
    ref_result_free(&ref);
    return 0;
}
