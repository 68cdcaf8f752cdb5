/*
 * test_qemu_shim - the QEMU subject in process (qemu/shim, subject_qemu.c):
 * what QEMU 7.2's driver does over the shim, checked against libvhdx (the
 * other subject) and against fixed expectations about QEMU's behaviour.
 *
 *  - create (vhdx_co_create) gives the asked geometry; the image passes
 *    libvhdx's checker; runs with one seed are byte-identical;
 *  - writes and reads at odd offsets and lengths (the shim's 512-byte
 *    padding and read-modify-write) agree with a model, across a close and
 *    a reopen, and libvhdx reads the same bytes;
 *  - a log libvhdx left pending is replayed by QEMU (read-write open), and
 *    then both subjects read the same disk; read-only: -EROFS;
 *    SUBJECT_NO_REPLAY: -ENOTSUP; nothing written by the refusals;
 *  - refusals are -EUCLEAN with QEMU's message ("Could not open ..." for a
 *    bad signature), a 4096-byte logical sector is -ENOTSUP;
 *  - fault points: the nth read fails the open with QEMU's errno unchanged
 *    and counts; a short write writes half; a LOSE flush marks the device;
 *    a flush with nothing written is skipped; abandon makes no device call;
 *  - discard is -ENOTSUP; out-of-range I/O is -EINVAL;
 *  - the bytes of a log entry's descriptor sector after its descriptors
 *    are never initialized by QEMU (docs/qemu-findings.md, Q2): they hold
 *    the shim's allocation pattern 0xA5 in the image;
 *  - a failed log update of an allocating write leaves the new BAT entry in
 *    QEMU's memory: a later write into that block is acknowledged and lost
 *    after a reopen (docs/qemu-findings.md, Q7);
 *  - a failed write of the header copy naming a new LogGuid is not
 *    reported: the guest write succeeds (docs/qemu-findings.md, Q8);
 *  - the known departure (docs/qemu-findings.md, Q1): a power cut after
 *    the header naming a new LogGuid is durable but before the log entry
 *    is leaves an image QEMU opens without replaying and then refuses
 *    every write with -ENOTSUP, while libvhdx refuses it (MS-VHDX 2.3.3).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/subject.h"
#include "qshim.h"
#include "testutil.h"

#ifdef FIU_ENABLE
#include <fiu-control.h>
#include <fiu.h>

#endif

/* The subjects draw their GUIDs from this state (subject.h). */
static uint64_t rng = 1;

#define MiB (1u << 20)

static const struct subject_ops *Q, *V;

static struct memdev *qemu_image(uint64_t size, uint32_t block, uint64_t seed)
{
    struct memdev *m = memdev_new();
    struct subject_create p = {size, block, MiB, 0, 0};
    uint64_t st = seed;
    CHECK_OK(Q->create(&m->base, &p, &st));
    return m;
}

static void test_create(void)
{
    struct memdev *a = qemu_image(64 * MiB, 2 * MiB, 7), *b = qemu_image(64 * MiB, 2 * MiB, 7);
    CHECK(memdev_equal(a, b)); /* deterministic */
    struct subject_handle *h;
    CHECK_OK(Q->open(&a->base, 0, &rng, 0, &h));
    struct subject_info in;
    CHECK_OK(Q->info(h, &in));
    CHECK(in.virtual_size == 64 * MiB && in.block_size == 2 * MiB && in.logical_sector == 512);
    CHECK(in.physical_sector == 512 && !in.replayed && in.log_clean && !in.read_only);
    CHECK(in.bat_offset >= 2 * MiB && in.metadata_offset > 0);
    uint8_t buf[4096], zero[4096] = {0};
    CHECK_OK(Q->read(h, 5 * MiB + 123, buf, sizeof buf));
    CHECK(!memcmp(buf, zero, sizeof buf));
    CHECK_OK(Q->close(h));
    char why[640] = "";
    CHECK_RC(V->check(&a->base, why, sizeof why), 0); /* libvhdx's checker agrees */
    CHECK_RC(Q->check(&a->base, why, sizeof why), 0);
    /* QEMU's create refuses what it cannot write */
    struct subject_create bad = {64 * MiB, 0, 0, 4096, 0};
    CHECK_RC(Q->create(&b->base, &bad, &rng), -ENOTSUP);
    struct subject_create odd = {64 * MiB, 3 * MiB, 0, 0, 0}; /* not a power of two */
    CHECK_RC(Q->create(&b->base, &odd, &rng), -EINVAL);
    CHECK(strstr(Q->last_error(NULL), "power of two") != NULL);
    memdev_free(a);
    memdev_free(b);
}

/* Writes at odd places; checks against a model; libvhdx reads the same. */
static void test_rw(void)
{
    const uint64_t size = 16 * MiB;
    struct memdev *m = qemu_image(size, MiB, 3);
    uint8_t *model = calloc(1, size), *buf = malloc(size);
    struct subject_handle *h;
    CHECK_OK(Q->open(&m->base, 0, &rng, 0, &h));
    uint64_t st = 42;
    for (int k = 0; k < 40; k++) {
        uint64_t off = test_rand(&st) % (size - 300000);
        size_t len = 1 + (size_t)(test_rand(&st) % 300000);
        test_fill(buf, len, (uint64_t)k);
        CHECK_OK(Q->write(h, off, buf, len));
        memcpy(model + off, buf, len);
        if (k % 7 == 0)
            CHECK_OK(Q->flush(h));
    }
    CHECK_OK(Q->read(h, 0, buf, size));
    CHECK(!memcmp(buf, model, size));
    CHECK_OK(Q->read(h, 1001, buf, 5000)); /* odd reads */
    CHECK(!memcmp(buf, model + 1001, 5000));
    CHECK_RC(Q->read(h, size - 10, buf, 11), -EINVAL);
    CHECK_RC(Q->write(h, size, buf, 1), -EINVAL);
    CHECK_RC(Q->discard(h, 0, 4096), -ENOTSUP);
    CHECK_OK(Q->close(h));
    /* reopen: QEMU and libvhdx read the model */
    for (int s = 0; s < 2; s++) {
        const struct subject_ops *o = s ? V : Q;
        CHECK_OK(o->open(&m->base, SUBJECT_RDONLY, &rng, 0, &h));
        memset(buf, 0x5A, size);
        CHECK_OK(o->read(h, 0, buf, size));
        CHECK(!memcmp(buf, model, size));
        CHECK_OK(o->close(h));
    }
    char why[640];
    CHECK_RC(V->check(&m->base, why, sizeof why), 0);
    free(model);
    free(buf);
    memdev_free(m);
}

/* libvhdx leaves a log pending; QEMU replays it. */
static void test_replay(void)
{
    struct memdev *m = memdev_new();
    struct subject_create p = {8 * MiB, MiB, MiB, 0, 0};
    CHECK_OK(V->create(&m->base, &p, &rng));
    struct subject_handle *h;
    CHECK_OK(V->open(&m->base, 0, &rng, 64, &h)); /* apply every 64 entries: the log stays pending */
    uint8_t buf[8192];
    for (int k = 0; k < 6; k++) {
        memset(buf, 0x30 + k, sizeof buf);
        CHECK_OK(V->write(h, (uint64_t)k * 1300000, buf, sizeof buf));
        CHECK_OK(V->flush(h));
    }
    V->abandon(h); /* power cut: entries durable, not applied */
    struct memdev *before = memdev_clone(m);
    long w0 = m->writes;
    CHECK_RC(Q->open(&m->base, SUBJECT_RDONLY, &rng, 0, &h), -EROFS);
    CHECK(strstr(Q->last_error(NULL), "needs to be replayed") != NULL);
    CHECK_RC(Q->open(&m->base, SUBJECT_NO_REPLAY, &rng, 0, &h), -ENOTSUP);
    CHECK(m->writes == w0); /* refusals write nothing */
    CHECK_OK(Q->open(&m->base, 0, &rng, 0, &h));
    struct subject_info in;
    CHECK_OK(Q->info(h, &in));
    CHECK(in.replayed && in.log_clean);
    uint8_t got[8192];
    for (int k = 0; k < 6; k++) {
        CHECK_OK(Q->read(h, (uint64_t)k * 1300000, got, sizeof got));
        memset(buf, 0x30 + k, sizeof buf);
        CHECK(!memcmp(got, buf, sizeof buf));
    }
    CHECK_OK(Q->close(h));
    /* the replayed image: libvhdx opens it with nothing left to replay and reads the same */
    CHECK_OK(V->open(&m->base, SUBJECT_RDONLY, &rng, 0, &h));
    CHECK_OK(V->info(h, &in));
    CHECK(!in.replayed && in.log_clean);
    for (int k = 0; k < 6; k++) {
        CHECK_OK(V->read(h, (uint64_t)k * 1300000, got, sizeof got));
        memset(buf, 0x30 + k, sizeof buf);
        CHECK(!memcmp(got, buf, sizeof buf));
    }
    CHECK_OK(V->close(h));
    /* libvhdx's own replay of the same pending image gives the same disk */
    CHECK_OK(V->open(&before->base, 0, &rng, 0, &h));
    CHECK_OK(V->read(h, 1300000, got, sizeof got));
    memset(buf, 0x31, sizeof buf);
    CHECK(!memcmp(got, buf, sizeof buf));
    CHECK_OK(V->close(h));
    memdev_free(before);
    memdev_free(m);
}

static void test_refusals(void)
{
    struct memdev *m = memdev_new();
    uint8_t junk[1 << 16];
    memset(junk, 0x77, sizeof junk);
    CHECK_OK(m->base.ops->write(&m->base, junk, sizeof junk, 0));
    struct subject_handle *h;
    CHECK_RC(Q->open(&m->base, 0, &rng, 0, &h), -EUCLEAN);
    CHECK(strstr(Q->last_error(NULL), "Could not open 'image': Invalid argument") != NULL);
    memdev_free(m);
    /* a libvhdx image with 4096-byte logical sectors: QEMU says ENOTSUP */
    m = memdev_new();
    struct subject_create p = {8 * MiB, MiB, MiB, 4096, 4096};
    CHECK_OK(V->create(&m->base, &p, &rng));
    CHECK_RC(Q->open(&m->base, 0, &rng, 0, &h), -ENOTSUP);
    memdev_free(m);
    /* both header copies broken */
    m = qemu_image(8 * MiB, MiB, 1);
    memset(junk, 0, sizeof junk);
    CHECK_OK(m->base.ops->write(&m->base, junk, 4096, 64 * 1024));
    CHECK_OK(m->base.ops->write(&m->base, junk, 4096, 128 * 1024));
    CHECK_RC(Q->open(&m->base, 0, &rng, 0, &h), -EUCLEAN);
    CHECK(strstr(Q->last_error(NULL), "No valid VHDX header found") != NULL);
    char why[640];
    CHECK_RC(Q->check(&m->base, why, sizeof why), 1);
    memdev_free(m);
}

/* ---- faults ------------------------------------------------------------------ */
struct plan {
    enum qshim_point point;
    uint64_t nth;
    uintptr_t info;
    int fired;
};

static uintptr_t hook(void *ctx, enum qshim_point p, uint64_t nth)
{
    struct plan *pl = ctx;
    if (p == pl->point && nth == pl->nth) {
        pl->fired++;
        return pl->info;
    }
    return 0;
}


static void test_faults(void)
{
    struct memdev *m = qemu_image(8 * MiB, MiB, 1);
    struct subject_handle *h;
    struct plan pl = {QSHIM_P_READ, 3, ENOSPC, 0};
    qshim_stats_reset();
    qshim_set_fault_hook(hook, &pl);
    int rc = Q->open(&m->base, 0, &rng, 0, &h);
    CHECK(pl.fired == 1);
    CHECK(rc < 0 && rc != -EUCLEAN); /* a device failure keeps QEMU's errno */
    CHECK(qshim_device_errors(NULL) == 1);
    struct qshim_stats st;
    qshim_stats_get(&st);
    CHECK(st.calls[QSHIM_P_READ] >= 3 && st.injected[QSHIM_P_READ] == 1);

    /* a short write: the first write of an allocating write is the payload */
    qshim_set_fault_hook(NULL, NULL);
    CHECK_OK(Q->open(&m->base, 0, &rng, 0, &h));
    qshim_stats_reset();
    pl = (struct plan){QSHIM_P_WRITE, 1, EIO | QSHIM_FAULT_SHORT, 0};
    qshim_set_fault_hook(hook, &pl);
    uint8_t buf[65536];
    memset(buf, 0xC3, sizeof buf);
    long w0 = m->writes;
    CHECK_RC(Q->write(h, 3 * MiB, buf, sizeof buf), -EIO);
    CHECK(pl.fired == 1);
    qshim_set_fault_hook(NULL, NULL);
    qshim_stats_get(&st);
    CHECK(st.calls[QSHIM_P_WRITE] >= 1);
    /* QEMU's first write of a session updates the headers: count writes, not their order */
    CHECK(m->writes > w0);
    long before = m->writes + m->flushes + m->reads;
    Q->abandon(h);
    CHECK(m->writes + m->flushes + m->reads == before); /* abandon: no device call */

    /* a flush with nothing written is skipped; one after a write is not */
    CHECK_OK(Q->open(&m->base, 0, &rng, 0, &h));
    qshim_stats_reset();
    CHECK_OK(Q->flush(h));
    qshim_stats_get(&st);
    CHECK(st.calls[QSHIM_P_FLUSH] == 0 && st.flushes_skipped == 1);
    CHECK_OK(Q->write(h, 0, buf, 512)); /* block 0: allocation, log, ... */
    qshim_stats_get(&st);
    uint64_t flushes = st.calls[QSHIM_P_FLUSH];
    CHECK(flushes >= 5); /* the header pair, the entry, the BAT, the header pair again */
    CHECK_OK(Q->write(h, 0, buf, 512)); /* allocated: a payload write only */
    CHECK_OK(Q->flush(h));
    qshim_stats_get(&st);
    CHECK(st.calls[QSHIM_P_FLUSH] == flushes + 1);
    /* a failing flush reported, the next one retries */
    CHECK_OK(Q->write(h, 0, buf, 512));
    pl = (struct plan){QSHIM_P_FLUSH, st.calls[QSHIM_P_FLUSH] + 1, EIO, 0};
    qshim_set_fault_hook(hook, &pl);
    CHECK_RC(Q->flush(h), -EIO);
    CHECK_OK(Q->flush(h));
    qshim_stats_get(&st);
    CHECK(st.calls[QSHIM_P_FLUSH] == flushes + 3);
    qshim_set_fault_hook(NULL, NULL);
    CHECK_OK(Q->close(h));

    /* allocation fault: the BAT buffer (qemu_try_blockalign) */
    qshim_stats_reset();
    pl = (struct plan){QSHIM_P_ALLOC, 1, 1, 0};
    qshim_set_fault_hook(hook, &pl);
    rc = Q->open(&m->base, 0, &rng, 0, &h);
    qshim_set_fault_hook(NULL, NULL);
    CHECK(pl.fired == 1 && rc == -ENOMEM);
    memdev_free(m);
}

/* ---- the known departure: a LogGuid durable before its entry ----------------------- */
static void test_logguid_before_entry(void)
{
    struct memdev *m = qemu_image(8 * MiB, MiB, 9);
    m->record = 1;
    struct memdev *base = memdev_clone(m);
    struct subject_handle *h;
    CHECK_OK(Q->open(&m->base, 0, &rng, 0, &h));
    uint8_t buf[4096];
    memset(buf, 0x11, sizeof buf);
    CHECK_OK(Q->write(h, 2 * MiB, buf, sizeof buf)); /* allocates block 2 */
    CHECK_OK(Q->close(h));
    /* Find the first prefix whose current header names a LogGuid while no
     * entry exists (cut right after the first header write naming it). */
    int seen = 0;
    for (size_t n = 1; n <= m->nlog && !seen; n++) {
        struct memdev *cut = memdev_replay_prefix(base, m, n);
        struct subject_handle *hv = NULL, *hq = NULL;
        int rv = V->open(&cut->base, SUBJECT_RDONLY, &rng, 0, &hv);
        if (rv == -EUCLEAN && strstr(V->last_error(NULL), "LOG_NO_SEQUENCE")) {
            seen = 1;
            /* QEMU opens it without a replay ... */
            CHECK_OK(Q->open(&cut->base, 0, &rng, 0, &hq));
            struct subject_info in;
            CHECK_OK(Q->info(hq, &in));
            CHECK(!in.replayed && !in.log_clean);
            /* ... and every write fails with ENOTSUP, allocating or not */
            CHECK_RC(Q->write(hq, 5 * MiB, buf, sizeof buf), -ENOTSUP);
            CHECK_RC(Q->write(hq, 0, buf, sizeof buf), -ENOTSUP);
            CHECK_OK(Q->close(hq));
            char why[640];
            CHECK_RC(Q->check(&cut->base, why, sizeof why), 0); /* and its check says nothing */
        } else if (rv == 0) {
            V->close(hv);
        }
        memdev_free(cut);
    }
    CHECK(seen);
    memdev_free(base);
    memdev_free(m);
}

/* Q2: vhdx_log_write writes its buffer's uninitialized tail into the log. */
static void test_uninitialized_log_bytes(void)
{
    struct memdev *m = qemu_image(8 * MiB, MiB, 4);
    struct subject_handle *h;
    CHECK_OK(Q->open(&m->base, 0, &rng, 0, &h));
    uint8_t buf[512];
    memset(buf, 0x42, sizeof buf);
    CHECK_OK(Q->write(h, 3 * MiB, buf, sizeof buf)); /* allocates: one entry, one descriptor */
    CHECK_OK(Q->close(h));
    uint8_t sec[4096];
    CHECK_OK(m->base.ops->read(&m->base, sec, sizeof sec, MiB)); /* the log starts at 1 MiB, the entry at its start */
    CHECK(!memcmp(sec, "loge", 4));
    size_t poisoned = 0;
    for (size_t i = 64 + 32; i < sizeof sec; i++)
        poisoned += sec[i] == 0xA5;
    CHECK(poisoned == sizeof sec - 96); /* every byte after the one descriptor */
    memdev_free(m);
}

/* Q7: when the log update of an allocating write fails, QEMU keeps the new
 * BAT entry in memory; a later write into the same block is acknowledged
 * without any log update, and after a close and a reopen it is gone. */
static void test_failed_log_update_loses_later_write(void)
{
    struct memdev *m = qemu_image(8 * MiB, MiB, 6);
    struct subject_handle *h;
    CHECK_OK(Q->open(&m->base, 0, &rng, 0, &h));
    uint8_t a[4096], b[4096], got[4096];
    memset(a, 0xAA, sizeof a);
    memset(b, 0xBB, sizeof b);
    CHECK_OK(Q->write(h, 0, a, 512)); /* the session's header update happens here, block 0 allocated */
    /* block 5: the writes of an allocation are the payload, the two header
     * copies naming a new LogGuid, the log entry (two sectors), the BAT
     * sector, the two header copies clearing it; the log entry's first
     * sector (the 4th write) fails with EIO */
    qshim_stats_reset();
    struct plan pl = {QSHIM_P_WRITE, 4, EIO, 0};
    qshim_set_fault_hook(hook, &pl);
    CHECK_RC(Q->write(h, 5 * MiB, a, sizeof a), -EIO);
    qshim_set_fault_hook(NULL, NULL);
    CHECK(pl.fired == 1);
    /* a second write into block 5 succeeds: no allocation, no log */
    CHECK_OK(Q->write(h, 5 * MiB + 8192, b, sizeof b));
    CHECK_OK(Q->flush(h));
    CHECK_OK(Q->read(h, 5 * MiB + 8192, got, sizeof got));
    CHECK(!memcmp(got, b, sizeof b)); /* acknowledged, flushed, read back */
    CHECK_OK(Q->close(h));
    CHECK_OK(Q->open(&m->base, SUBJECT_RDONLY, &rng, 0, &h));
    CHECK_OK(Q->read(h, 5 * MiB + 8192, got, sizeof got));
    int lost = memcmp(got, b, sizeof b) != 0;
    CHECK(lost); /* QEMU 7.2: the acknowledged write is gone (reads zeros) */
    CHECK_OK(Q->close(h));
    memdev_free(m);
}

/* Q8: the header update that names the new LogGuid can fail and the
 * write still succeeds: vhdx_log_write ignores vhdx_update_headers' result. */
static void test_header_update_error_swallowed(void)
{
    struct memdev *m = qemu_image(8 * MiB, MiB, 6);
    struct subject_handle *h;
    CHECK_OK(Q->open(&m->base, 0, &rng, 0, &h));
    uint8_t a[4096];
    memset(a, 0xAA, sizeof a);
    CHECK_OK(Q->write(h, 0, a, 512));
    qshim_stats_reset();
    struct plan pl = {QSHIM_P_WRITE, 2, EIO, 0}; /* the first header copy naming the new LogGuid */
    qshim_set_fault_hook(hook, &pl);
    int rc = Q->write(h, 5 * MiB, a, sizeof a);
    qshim_set_fault_hook(NULL, NULL);
    CHECK(pl.fired == 1);
    CHECK(rc == 0); /* QEMU 7.2: the failure is not reported */
    CHECK_OK(Q->close(h));
    memdev_free(m);
}

/* The libfiu points exist under their names (builds with FIU_ENABLE). */
static void test_libfiu_points(void)
{
#ifdef FIU_ENABLE
    fiu_init(0);
    struct memdev *m = qemu_image(8 * MiB, MiB, 1);
    struct subject_handle *h;
    CHECK(fiu_enable("qemu/io/read", 1, (void *)(uintptr_t)ENOSPC, FIU_ONETIME) == 0);
    int rc = Q->open(&m->base, 0, &rng, 0, &h);
    CHECK(rc == -ENOSPC || (rc < 0 && qshim_device_errors(NULL) == 1));
    CHECK_OK(Q->open(&m->base, 0, &rng, 0, &h));
    CHECK(fiu_enable("qemu/io/*", 1, NULL, FIU_ONETIME) == 0); /* failinfo 0: EIO */
    uint8_t buf[512] = {0};
    CHECK(Q->write(h, 0, buf, sizeof buf) < 0);
    fiu_disable("qemu/io/*");
    Q->abandon(h);
    memdev_free(m);
#endif
}

int main(void)
{
    Q = subject_find("qemu");
    V = subject_find("libvhdx");
    if (!Q || !V) {
        fprintf(stderr, "test_qemu_shim: the qemu subject is not in the registry\n");
        return 1;
    }
    test_create();
    test_rw();
    test_replay();
    test_refusals();
    test_faults();
    test_logguid_before_entry();
    test_uninitialized_log_bytes();
    test_failed_log_update_loses_later_write();
    test_header_update_error_swallowed();
    test_libfiu_points();
    return test_summary("test_qemu_shim");
}
