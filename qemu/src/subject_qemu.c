/*
 * subject_qemu.c - QEMU's own VHDX driver (the installed QEMU's
 * block/vhdx*.c, built in process against the shim: qemu/shim/qshim.h) as
 * a subject of the harness (harness/subject.h), beside libvhdx.
 *
 * Mapping of QEMU's behaviour onto the subject contract:
 *  open     vhdx_open, which replays a pending log when opened read-write.
 *           QEMU cannot replay in memory: SUBJECT_RDONLY on an image with a
 *           log to replay is refused with -EROFS (QEMU: -EPERM, "opened
 *           read-only, but contains a log that needs to be replayed").
 *           SUBJECT_NO_REPLAY has no QEMU equivalent; it is built from a
 *           read-only open first (refused there: -ENOTSUP, as libvhdx).
 *           apply_every is ignored: QEMU writes one log entry per BAT
 *           update and applies it before the write returns.
 *           A refusal with no failed device call is a format refusal:
 *           -EUCLEAN (QEMU's -EINVAL, -EIO from an out-of-range request,
 *           -EFBIG, ...), except -ENOTSUP and -ENOMEM, which stay.  When a
 *           device call failed (an injected fault, a device error), QEMU's
 *           own errno is returned unchanged, whatever it is: the fault
 *           judges see what QEMU reported.  last_error always carries
 *           QEMU's message and errno.
 *  read/write  blk_pread/blk_pwrite: any offset and length inside the disk
 *           (outside: -EINVAL, where QEMU's BlockBackend says -EIO); QEMU's
 *           errors unchanged (-ENOTSUP for a write while the header names a
 *           log, -EIO for a PARTIALLY_PRESENT block, ...).
 *  discard  -ENOTSUP: the vhdx driver has no discard (QEMU's block layer
 *           turns one into a successful no-op, which the contract of
 *           discard - the range reads zeros - would call data loss).
 *  flush    bdrv_flush.   apply   NULL (no notion).
 *  info     the driver's state; replayed_entries and replayed_head are 0
 *           (QEMU does not keep them).
 *  close    bdrv_close (flush, then the driver's close; QEMU ignores the
 *           flush's result, the subject returns it).
 *  check    `qemu-img check` without -r: a read-only open with
 *           BDRV_O_CHECK, then bdrv_co_check: 1 when the open is refused
 *           (a log to replay, a format refusal) or corruptions are
 *           counted, a negative errno when a device call failed.
 *  create   vhdx_co_create, the code `qemu-img create -f vhdx` runs, with
 *           qemu-img's option rounding (subject_create: 0 = QEMU's
 *           defaults; sector sizes other than 0 or 512 are refused: QEMU
 *           writes 512 for both).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/subject.h"
#include "qdiff.h"
#include "vhdx/format.h"
#include "qshim.h"

struct subject_handle {
    struct qshim_image *im;
    int read_only;
    char why[640];
};

static char last_open_error[640];

static const char *errno_name(int e)
{
    switch (e) {
    case EINVAL: return "EINVAL";
    case EIO: return "EIO";
    case ENOTSUP: return "ENOTSUP";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ENOMEM: return "ENOMEM";
    case ENOSPC: return "ENOSPC";
    case EFBIG: return "EFBIG";
    case EFAULT: return "EFAULT";
    case ERANGE: return "ERANGE";
    case EBADF: return "EBADF";
    default: return "errno";
    }
}

static void say(char *why, size_t len, const char *msg, int qrc)
{
    snprintf(why, len, "QEMU: %s [%s %d]", msg && msg[0] ? msg : strerror(-qrc), errno_name(-qrc), qrc);
}

/* QEMU's result of a failed open as a subject result. */
static int open_result(int qrc, unsigned flags, uint64_t dev_errors)
{
    if (dev_errors)
        return qrc;
    if (qrc == -EPERM && (flags & SUBJECT_RDONLY))
        return -EROFS;
    if (qrc == -ENOTSUP || qrc == -ENOMEM)
        return qrc;
    return -EUCLEAN;
}

/* The image's GUIDs come from a seed the shim keeps per image: each open or
 * create takes the caller's state as that seed and steps the state
 * (splitmix64), so the next session draws other GUIDs and a run repeats. */
static uint64_t draw_seed(uint64_t *rng_state)
{
    uint64_t z = (*rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int q_open_bounded(struct bdev *dev, unsigned flags, uint64_t *rng_state, uint32_t apply_every,
                          struct subject_handle **out);

/* ---- the watchdog ----------------------------------------------------------- */
/* QEMU 7.2's log search can loop forever (Q9: an entry it rejects that
 * spans the ring, or a valid run that wraps back to where it began) and its
 * replay can write without bound (Q4).  Unless the caller set bounds of its
 * own (qshim_set_read_limit/_write_limit: the fuzz targets do), one open or
 * check may read and write at most 16 log rings (the larger LogLength of
 * the two header copies, 1 MiB when neither says) plus the regions the
 * region tables name (BAT, metadata: QEMU reads the BAT whole) plus 16 MiB,
 * each capped by the file's size.  An open that searches and replays a log
 * reads it a few times; past the bound the call fails with -ETIMEDOUT and
 * the message names the departure the watchdog stopped. */
static uint64_t watchdog_arm(struct bdev *dev)
{
    if (qshim_get_read_limit() || qshim_get_write_limit())
        return 0;
    uint64_t size = 0, ring = 0, regions = 0;
    if (dev->ops->size(dev, &size) != 0)
        size = 0;
    uint8_t *buf = malloc(VHDX_REGION_TABLE_SIZE);
    struct vhdx_region_table *rt = malloc(sizeof *rt);
    for (int i = 0; buf && rt && i < 2; i++) {
        struct vhdx_header hd;
        if (dev->ops->read(dev, buf, VHDX_HEADER_SIZE, i ? VHDX_HEADER2_OFFSET : VHDX_HEADER1_OFFSET) == 0 &&
            vhdx_header_decode(buf, &hd) == 0 && hd.log_length > ring)
            ring = hd.log_length;
        if (dev->ops->read(dev, buf, VHDX_REGION_TABLE_SIZE, i ? VHDX_REGION2_OFFSET : VHDX_REGION1_OFFSET) == 0 &&
            vhdx_region_table_decode(buf, rt) == 0) {
            uint64_t sum = 0;
            for (uint32_t e = 0; e < rt->entry_count && e < VHDX_REGION_MAX_ENTRIES; e++)
                sum += rt->entries[e].length;
            regions = sum > regions ? sum : regions;
        }
    }
    free(buf);
    free(rt);
    if (!ring)
        ring = UINT64_C(1) << 20;
    ring = ring < size ? ring : size;
    regions = regions < size ? regions : size;
    const uint64_t limit = 16 * ring + regions + (UINT64_C(16) << 20);
    qshim_set_read_limit(limit);
    qshim_set_write_limit(limit);
    return limit;
}

/* Disarms it; when it fired, the message says so and rc becomes -ETIMEDOUT. */
static int watchdog_end(uint64_t limit, int rc, char *why, size_t len)
{
    if (!limit)
        return rc;
    const int reads = qshim_read_limit_hit(), writes = qshim_write_limit_hit();
    qshim_set_read_limit(0);
    qshim_set_write_limit(0);
    if (rc == 0 || (!reads && !writes))
        return rc;
    char was[512];
    snprintf(was, sizeof was, "%s", why);
    snprintf(why, len, "the call %s more than %llu bytes and was stopped by the subject's watchdog: %s; then %s",
             reads ? "read" : "wrote", (unsigned long long)limit,
             reads ? "the log search does not end (qemu-log-search-does-not-terminate, docs/qemu-findings.md Q9)"
                   : "the replay writes without bound (qemu-replay-writes-without-bound, docs/qemu-findings.md Q4)",
             was);
    return -ETIMEDOUT;
}

static int q_open(struct bdev *dev, unsigned flags, uint64_t *rng_state, uint32_t apply_every,
                  struct subject_handle **out)
{
    const uint64_t limit = watchdog_arm(dev);
    int rc = q_open_bounded(dev, flags, rng_state, apply_every, out);
    return watchdog_end(limit, rc, last_open_error, sizeof last_open_error);
}

static int q_open_bounded(struct bdev *dev, unsigned flags, uint64_t *rng_state, uint32_t apply_every,
                          struct subject_handle **out)
{
    (void)apply_every;
    const uint64_t seed = draw_seed(rng_state);
    char msg[512];
    struct qshim_image *im = NULL;
    int rc;
    if ((flags & SUBJECT_NO_REPLAY) && !(flags & SUBJECT_RDONLY)) {
        /* refuse a replay: a read-only open tells whether one is needed */
        rc = qshim_open(dev, "image", QSHIM_RDONLY, seed, &im, msg, sizeof msg);
        if (rc == 0) {
            qshim_abandon(im);
            im = NULL;
        } else if (rc == -EPERM && qshim_device_errors(NULL) == 0) {
            snprintf(last_open_error, sizeof last_open_error,
                     "the image has a log to replay and the open was asked not to replay (QEMU: %s)", msg);
            return -ENOTSUP;
        }
    }
    rc = qshim_open(dev, "image", (flags & SUBJECT_RDONLY) ? QSHIM_RDONLY : 0, seed, &im, msg, sizeof msg);
    if (rc != 0) {
        say(last_open_error, sizeof last_open_error, msg, rc);
        return open_result(rc, flags, qshim_device_errors(NULL));
    }
    struct subject_handle *s = calloc(1, sizeof *s);
    if (!s) {
        qshim_abandon(im);
        return -ENOMEM;
    }
    s->im = im;
    s->read_only = !!(flags & SUBJECT_RDONLY);
    *out = s;
    return 0;
}

static int result(struct subject_handle *s, int rc)
{
    if (rc < 0)
        say(s->why, sizeof s->why, qshim_last_error(s->im), rc);
    return rc;
}

static int in_range(struct subject_handle *s, uint64_t off, uint64_t len)
{
    struct qshim_info in;
    if (qshim_info(s->im, &in) != 0)
        return 0;
    if (off > in.virtual_size || len > in.virtual_size - off) {
        snprintf(s->why, sizeof s->why, "range %llu+%llu is outside the %llu-byte disk", (unsigned long long)off,
                 (unsigned long long)len, (unsigned long long)in.virtual_size);
        return 0;
    }
    return 1;
}

static int q_read(struct subject_handle *s, uint64_t off, void *buf, size_t len)
{
    if (!in_range(s, off, len))
        return -EINVAL;
    return result(s, qshim_read(s->im, off, buf, len));
}

static int q_write(struct subject_handle *s, uint64_t off, const void *buf, size_t len)
{
    if (s->read_only) {
        snprintf(s->why, sizeof s->why, "opened read-only");
        return -EROFS;
    }
    if (!in_range(s, off, len))
        return -EINVAL;
    return result(s, qshim_write(s->im, off, buf, len));
}

static int q_discard(struct subject_handle *s, uint64_t off, uint64_t len)
{
    (void)off, (void)len;
    snprintf(s->why, sizeof s->why,
             "QEMU's vhdx driver has no discard (its block layer makes one a successful no-op)");
    return -ENOTSUP;
}

static int q_flush(struct subject_handle *s)
{
    return result(s, qshim_flush(s->im));
}

static int q_info(struct subject_handle *s, struct subject_info *o)
{
    struct qshim_info in;
    int rc = qshim_info(s->im, &in);
    if (rc != 0)
        return result(s, rc);
    memset(o, 0, sizeof *o);
    o->virtual_size = in.virtual_size;
    o->block_size = in.block_size;
    o->logical_sector = in.logical_sector;
    o->physical_sector = in.physical_sector;
    o->bat_offset = in.bat_offset;
    o->metadata_offset = in.metadata_offset;
    o->replayed = in.replayed;
    o->log_clean = !in.log_guid_set;
    o->read_only = in.read_only;
    return 0;
}

static int q_close(struct subject_handle *s)
{
    int rc = qshim_close(s->im);
    if (rc < 0)
        say(last_open_error, sizeof last_open_error, "the flush of bdrv_close failed (QEMU ignores it)", rc);
    free(s);
    return rc;
}

static void q_abandon(struct subject_handle *s)
{
    qshim_abandon(s->im);
    free(s);
}

static int q_check_bounded(struct bdev *dev, char *why, size_t whylen);

static int q_check(struct bdev *dev, char *why, size_t whylen)
{
    const uint64_t limit = watchdog_arm(dev);
    int rc = q_check_bounded(dev, why, whylen);
    /* a check stopped by the watchdog cannot say whether the image is clean */
    if (limit && (qshim_read_limit_hit() || qshim_write_limit_hit()))
        rc = watchdog_end(limit, rc ? rc : -EIO, why, whylen);
    else
        watchdog_end(limit, 0, why, whylen);
    return rc;
}

static int q_check_bounded(struct bdev *dev, char *why, size_t whylen)
{
    char msg[512];
    struct qshim_image *im = NULL;
    int rc = qshim_open(dev, "image", QSHIM_RDONLY | QSHIM_CHECK, 0, &im, msg, sizeof msg);
    if (rc != 0) {
        say(why, whylen, msg, rc);
        return qshim_device_errors(NULL) ? rc : 1;
    }
    struct qshim_check_result r;
    rc = qshim_check(im, &r);
    int bad = 0;
    if (rc < 0) {
        say(why, whylen, qshim_last_error(im), rc);
        bad = qshim_device_errors(im) ? rc : 1;
    } else if (r.corruptions || r.check_errors) {
        char rep[400];
        qshim_reports(im, rep, sizeof rep);
        snprintf(why, whylen, "QEMU: %d corruption(s), %d check error(s)%s%s", r.corruptions, r.check_errors,
                 rep[0] ? ": " : "", rep);
        bad = 1;
    }
    qshim_abandon(im); /* read-only: nothing to flush */
    return bad;
}

static int q_create(struct bdev *dev, const struct subject_create *p, uint64_t *rng_state)
{
    const uint64_t seed = draw_seed(rng_state);
    if ((p->logical_sector && p->logical_sector != 512) || (p->physical_sector && p->physical_sector != 512)) {
        snprintf(last_open_error, sizeof last_open_error, "QEMU creates 512-byte logical and physical sectors only");
        return -ENOTSUP;
    }
    struct qshim_create_params cp = {p->virtual_size, p->block_size, p->log_size, 0, -1};
    char msg[512];
    int rc = qshim_create(dev, &cp, seed, msg, sizeof msg);
    if (rc != 0) {
        say(last_open_error, sizeof last_open_error, msg, rc);
        return rc == -ENOTSUP || rc == -ENOMEM || rc == -ENOSPC || rc == -EIO ? rc : -EINVAL;
    }
    return 0;
}

static const char *q_last_error(const struct subject_handle *s)
{
    return s ? s->why : last_open_error;
}

/* What QEMU is known to do differently (docs/qemu-findings.md): the sweep
 * counts states that break only these as known departures (pcsweep
 * --strict counts them as violations).  A cross-subject sweep takes the
 * entries of protocol findings and of ref:invalid-crash-state from the
 * writer's list and every other state verdict from the reader's
 * (harness/sweep.h, the rule): the first two entries apply where QEMU
 * wrote the trace, the others where QEMU opens the crash states. */
static const struct subject_departure qemu_known[] = {
    /* as the writer.  Q1: the header naming a new LogGuid is made durable
     * before any entry under it; a cut there leaves a LogGuid with no
     * sequence, a file MS-VHDX calls corrupt (the reference's reading of
     * the state; a reader that follows the text, libvhdx, refuses it) */
    {"protocol:header-before-entry", NULL, "Q1 (docs/qemu-findings.md)"},
    {"ref:invalid-crash-state", "2.3.3 no valid sequence", "Q1 (docs/qemu-findings.md): the crash states it leaves"},
    /* as the reader.  Q1's states: QEMU opens them without replay and
     * leaves the LogGuid in place */
    {"log-guid-not-cleared", NULL, "Q1 (docs/qemu-findings.md): its consequence after a cut"},
    /* no replay in memory: a read-only open of an image with a log is refused */
    {"view:ro-rw-mismatch", "the read-only open refused the image (Read-only file system)",
     "QEMU refuses read-only opens of a pending log (subject_qemu.c, open)"},
    /* only the region table at 192 KiB is read; a damaged first copy is
     * not replaced by the second (a difference, not a departure by the letter) */
    {"ref:refused-recoverable", "region table copy at 256 KiB",
     "qemu-refuses-damaged-region-table-1 (docs/qemu-findings.md, differences)"},
    /* Q6: the log search replays other entries than the active sequence
     * (entries before its tail, past its head); only where the image shows
     * that precondition (q_explain) */
    {"ref:replayed-bytes", "Q6 qemu-", "Q6 (docs/qemu-findings.md): entries outside the active sequence replayed"},
    /* Q9: the log search never ends (here on valid logs: a run that wraps
     * around the ring back to where it began); the subject's watchdog
     * stops the open and names the class */
    {"open-refused", "qemu-log-search-does-not-terminate", "Q9 (docs/qemu-findings.md): the open never ends"},
    /* Q6 on a ring full of valid entries: the run from the newest takes the
     * oldest as its second entry (no sequence check), goes round the ring
     * and the replay stops with EINVAL: the open is refused */
    {"open-refused", "Q6 qemu-accepts-sequence-gap-after-first-entry",
     "Q6 (docs/qemu-findings.md): a ring full of valid entries is refused"},
    {"ref:refused-recoverable", "Q6 qemu-accepts-sequence-gap-after-first-entry",
     "Q6 (docs/qemu-findings.md): a ring full of valid entries is refused (a corruption elsewhere)"},
    /* Q6 (c): Tail unread, so an entry whose Tail points at a damaged one
     * is replayed although no valid sequence exists (a corrupt file opened) */
    {"ref:accepted-invalid", "Q6 qemu-replays-entry-whose-tail-is-outside-its-sequence",
     "Q6 (docs/qemu-findings.md): a sequence without its tail replayed"},
    /* Q13: one entry whose descriptor fails QEMU's checks, anywhere in the
     * ring, stops the log search with an error: a recoverable file refused */
    {"ref:refused-recoverable", "Q13 qemu-log-search-fails-on-an-invalid-descriptor",
     "Q13 (docs/qemu-findings.md): the search stops at a damaged entry"},
    {"open-refused", "Q13 qemu-log-search-fails-on-an-invalid-descriptor",
     "Q13 (docs/qemu-findings.md): the search stops at a damaged entry"},
    /* Q12: a header update starts from the non-current copy; a cut inside
     * the replay after its first header write leaves a current header that
     * names no log (or a stale one): the rest of the log is never replayed */
    {"replay-not-idempotent", "Q12 qemu-builds-header-update-from-non-current-copy",
     "Q12 (docs/qemu-findings.md): a cut inside the replay loses the log"},
    /* Q5: an entry with more than 126 descriptors is read into the wrong
     * place; a file whose pending log holds one is refused (the extend
     * workload's base: a zero entry of 132 descriptors) */
    {"workload-failed", "Q5 qemu-cannot-replay-a-valid-log",
     "Q5 (docs/qemu-findings.md): a valid log with an entry of more than 126 descriptors is refused"},
    {"open-refused", "Q5 qemu-cannot-replay-a-valid-log",
     "Q5 (docs/qemu-findings.md): a valid log with an entry of more than 126 descriptors is refused"},
    /* Fault sweeps (pcfaults --subject qemu): the shim names where the
     * plan's fault hit (subject_ops.fault_site), appended to the detail.
     * Q8: a failed header update is ignored: the read of the header sector
     * before its write (vhdx_write_header), the write, or the flush after
     * it, in a guest write (vhdx_log_write) or after the replay of an open
     * (vhdx_log_reset): the call or the open succeeds, and a cut then finds
     * no durable header naming the log the BAT was updated under */
    {"fault-not-reported", "of header copy", "Q8 (docs/qemu-findings.md): a failed header update is not reported"},
    {"data:acked-data-lost", "of header copy",
     "Q8 (docs/qemu-findings.md): a failed header update, ignored, then a cut: acknowledged writes lost"},
    {"live-data:lost", "of header copy",
     "Q8 (docs/qemu-findings.md): a failed header update, ignored, then a reopen: acknowledged writes lost"},
    /* Q7: a failed step of an allocating guest write (the file length,
     * the resize, the payload write or flush, the log read, write or
     * flush, the BAT write or flush, an allocation of the driver's)
     * leaves the block in the in-memory BAT: later writes into it are
     * acknowledged and lost on reopen (after a cut, or live when the
     * workload reopens), or, when a failed flush dropped the file's
     * growth, the next allocation takes the same file offset and two
     * blocks share storage.  The shim tells an allocating write by its
     * length or resize call before the fault. */
    {"data:acked-data-lost", ", in an allocating guest write]",
     "Q7 (docs/qemu-findings.md): acknowledged writes lost after a failed allocation"},
    {"live-data:lost", ", in an allocating guest write]",
     "Q7 (docs/qemu-findings.md): acknowledged writes lost after a failed allocation (reopened)"},
    {"live-data:misplaced", ", in an allocating guest write]",
     "Q7 (docs/qemu-findings.md): a failed allocation's block shared by the next one"},
    {NULL, NULL, NULL},
};
_Static_assert(sizeof qemu_known / sizeof qemu_known[0] <= SUBJECT_KNOWN_MAX + 1,
               "qemu_known has more entries than the sweeps count (SUBJECT_KNOWN_MAX)");

/* The findings whose precondition a crash image shows (qdiff_explain). */
static void q_explain(struct bdev *before, char *why, size_t len)
{
    qdiff_explain(before, why, len);
}

const struct subject_ops subject_qemu = {
    "qemu", "QEMU's own block/vhdx*.c (the installed QEMU's source) in process over a shim (qemu/)",
    q_create, q_open, q_read, q_write, q_discard, q_flush, NULL, q_info, q_close, q_abandon, q_check,
    q_last_error, qemu_known, q_explain, "qemu", 0, qshim_fault_site,
};
