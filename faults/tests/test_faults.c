/*
 * test_faults.c - unit tests of the faults library: plans, schedules, the
 * copy-on-write device, the in-session model, the fault-trace oracle rules,
 * and (fiu presets) that armed plans fail exactly the calls they name, with
 * the effects io.h promises (short writes write half, flush-lose drops the
 * pending writes, random plans repeat with their seed).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faults/cowdisk.h"
#include "faults/judge.h"
#include "faults/plan.h"
#include "faults/schedule.h"
#include "faults/shadow.h"
#include "harness/sdata.h"
#include "vhdx/vhdx.h"

static int failures;

#define CHECK(expr)                                                                 \
    do {                                                                            \
        if (!(expr)) {                                                              \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #expr); \
            failures++;                                                             \
        }                                                                           \
    } while (0)

#define CHECK_RC(expr, want)                                                                        \
    do {                                                                                            \
        int rc_ = (expr);                                                                           \
        if (rc_ != (want)) {                                                                        \
            fprintf(stderr, "%s:%d: %s returned %d (%s), expected %d (%s)\n", __FILE__, __LINE__, #expr, \
                    rc_, vhdx_strerror(rc_), (want), vhdx_strerror(want));                          \
            failures++;                                                                             \
        }                                                                                           \
    } while (0)

static void test_plan_text(void)
{
    struct fault_plan p, q;
    char err[256], buf[256];
    CHECK_RC(fault_plan_parse("kind=short mode=persistent nth=17", &p, err, sizeof err), 0);
    CHECK(p.kind == FK_SHORT && p.mode == FM_PERSISTENT && p.nth == 17 && p.points == 0);
    fault_plan_format(&p, buf, sizeof buf);
    CHECK(!strcmp(buf, "kind=short mode=persistent nth=17"));
    CHECK_RC(fault_plan_parse("kind=eio mode=random p=0.25 seed=99 points=vhdx/io/read,vhdx/io/flush", &p, err,
                              sizeof err), 0);
    fault_plan_format(&p, buf, sizeof buf);
    CHECK_RC(fault_plan_parse(buf, &q, err, sizeof err), 0);
    CHECK(q.kind == FK_EIO && q.mode == FM_RANDOM && q.seed == 99 && q.probability == 0.25 &&
          q.points == (1u << FP_READ | 1u << FP_FLUSH));
    CHECK(fault_plan_points(&q) == (1u << FP_READ | 1u << FP_FLUSH));
    /* Rejected: unknown kind, nth 0, missing mode, p out of range, a point the kind does not hit. */
    CHECK_RC(fault_plan_parse("kind=eek mode=transient", &p, err, sizeof err), -1);
    CHECK(strstr(err, "eek") != NULL);
    CHECK_RC(fault_plan_parse("kind=eio mode=transient nth=0", &p, err, sizeof err), -1);
    CHECK_RC(fault_plan_parse("kind=eio", &p, err, sizeof err), -1);
    CHECK_RC(fault_plan_parse("kind=eio mode=random p=1.5", &p, err, sizeof err), -1);
    CHECK_RC(fault_plan_parse("kind=enomem mode=transient points=vhdx/io/read", &p, err, sizeof err), -1);
    CHECK_RC(fault_plan_parse("kind=eio mode=transient bogus", &p, err, sizeof err), -1);
    unsigned m;
    CHECK_RC(fault_kinds_parse("eio,flush-lose", &m), 0);
    CHECK(m == (1u << FK_EIO | 1u << FK_FLUSH_LOSE));
    CHECK_RC(fault_kinds_parse("all", &m), 0);
    CHECK(m == FK_ALL);
    CHECK_RC(fault_kinds_parse("eio,nope", &m), -1);
    CHECK_RC(fault_modes_parse("all", &m), 0);
    CHECK(m == (1u << FM_TRANSIENT | 1u << FM_PERSISTENT));
    CHECK_RC(fault_modes_parse("random", &m), -1);
    CHECK(fault_point_index("vhdx/alloc") == FP_ALLOC && fault_point_index("vhdx/io") == -1);
}

static void test_schedule(void)
{
    struct fault_plan p, q;
    const uint8_t none[] = {7, 1, 2, 3};
    CHECK(fault_schedule_decode(none, sizeof none, FK_ALL, 0, &p) == 0);
    const uint8_t some[] = {0x0A, 4, 1, 0}; /* kind 2 (short), persistent, nth 1 + 260 */
    CHECK(fault_schedule_decode(some, sizeof some, FK_ALL, 0, &p) == 1);
    CHECK(p.kind == FK_SHORT && p.mode == FM_PERSISTENT && p.nth == 261);
    CHECK(fault_schedule_decode(some, sizeof some, FK_ALL, 100, &p) == 1 && p.nth == 61);
    CHECK(fault_schedule_decode(some, sizeof some, 1u << FK_EIO, 0, &p) == 0);
    CHECK(fault_schedule_decode(some, 1, FK_ALL, 0, &p) == 1 && p.nth == 1); /* short input: zeros */
    uint8_t enc[FAULT_SCHEDULE_BYTES];
    for (unsigned x = 0; x < 4096; x++) {
        uint8_t b[4] = {(uint8_t)x, (uint8_t)(x * 7), (uint8_t)(x >> 3), (uint8_t)(x * 13)};
        if (!fault_schedule_decode(b, sizeof b, FK_ALL, 0, &p))
            continue;
        CHECK(fault_plan_points(&p) != 0);
        fault_schedule_encode(&p, enc);
        CHECK(fault_schedule_decode(enc, sizeof enc, FK_ALL, 0, &q) == 1);
        CHECK(q.kind == p.kind && q.mode == p.mode && q.nth == p.nth && fault_plan_points(&q) == fault_plan_points(&p));
    }
}

static int read_pattern(void *ctx, void *buf, uint64_t len, uint64_t off)
{
    (void)ctx;
    uint8_t *b = buf;
    for (uint64_t i = 0; i < len; i++)
        b[i] = (uint8_t)((off + i) * 31 + 7);
    return 0;
}

static void test_cowdisk(void)
{
    struct cowdisk c;
    cowdisk_init(&c, read_pattern, NULL, 8192);
    struct bdev *d = cowdisk_bdev(&c);
    uint8_t buf[1024], w[700];
    CHECK_RC(d->ops->read(d, buf, 16, 100), 0);
    CHECK(buf[0] == (uint8_t)(100 * 31 + 7));
    CHECK_RC(d->ops->read(d, buf, 16, 8190), VHDX_E_SHORT_IO);
    memset(w, 0xAB, sizeof w);
    CHECK_RC(d->ops->write(d, w, sizeof w, 300), 0);         /* unaligned, spans two sectors */
    CHECK_RC(d->ops->flush(d), 0);
    memset(w, 0xCD, 512);
    CHECK_RC(d->ops->write(d, w, 512, 4096), 0);
    CHECK_RC(d->ops->truncate(d, 9000), 0);                  /* grow: zeros */
    CHECK_RC(d->ops->read(d, buf, 1024, 0), 0);
    CHECK(buf[299] == (uint8_t)(299 * 31 + 7) && buf[300] == 0xAB && buf[999] == 0xAB);
    CHECK(buf[1000] == (uint8_t)(1000 * 31 + 7));
    CHECK_RC(d->ops->read(d, buf, 512, 8192), 0);
    CHECK(buf[0] == 0 && buf[511] == 0);
    CHECK(c.n_ops == 4 && c.durable == 2);
    /* Power cut keeping only what the flush made durable. */
    struct cowdisk m;
    cowdisk_init(&m, read_pattern, NULL, 8192);
    CHECK_RC(cowdisk_materialize(&m, &c, c.durable), 0);
    CHECK_RC(cowdisk_read(&m, buf, 512, 4096), 0);
    CHECK(buf[0] == (uint8_t)(4096 * 31 + 7));
    CHECK(m.size == 8192);
    cowdisk_free(&m);
    /* A failed flush that loses the pending writes. */
    d->ops->mark(d, "fault.drop_pending", 0);
    CHECK(c.n_ops == 2 && c.size == 8192 && c.drops == 1);
    CHECK_RC(cowdisk_read(&c, buf, 512, 4096), 0);
    CHECK(buf[0] == (uint8_t)(4096 * 31 + 7));
    CHECK_RC(cowdisk_read(&c, buf, 4, 300), 0);
    CHECK(buf[0] == 0xAB);
    /* Shrink, then grow: the cut-off part reads zeros. */
    CHECK_RC(d->ops->truncate(d, 1000), 0);
    CHECK_RC(d->ops->truncate(d, 8192), 0);
    CHECK_RC(cowdisk_read(&c, buf, 512, 1024), 0);
    CHECK(buf[0] == 0 && buf[511] == 0);
    CHECK_RC(cowdisk_read(&c, buf, 1, 999), 0);
    CHECK(buf[0] == 0xAB);
    cowdisk_free(&c);
}

static void sector_of(uint8_t *b, uint64_t sector, uint32_t id, uint64_t seed)
{
    if (id)
        sdata_fill(b, sector, 1, id, seed);
    else
        memset(b, 0, 512);
}

static void test_shadow(void)
{
    struct shadow s;
    shadow_init(&s, 42);
    uint8_t b[512], t[512];
    char why[400];
    sector_of(b, 3, 0, 42);
    CHECK(shadow_judge(&s, 3, b, why, sizeof why) == NULL); /* never written: zeros */
    CHECK_RC(shadow_write(&s, 0, 4096, 1, 1), 0);
    sector_of(b, 3, 1, 42);
    CHECK(shadow_judge(&s, 3, b, why, sizeof why) == NULL);
    sector_of(b, 3, 0, 42);
    CHECK(shadow_judge(&s, 3, b, why, sizeof why) != NULL); /* lost */
    shadow_synced(&s);
    CHECK_RC(shadow_write(&s, 1024, 1024, 2, 0), 0);        /* failed: old or new or torn */
    sector_of(b, 2, 1, 42);
    CHECK(shadow_judge(&s, 2, b, why, sizeof why) == NULL);
    sector_of(b, 2, 2, 42);
    CHECK(shadow_judge(&s, 2, b, why, sizeof why) == NULL);
    sdata_sector(b, 2, 2, 2, 42);
    sdata_sector(t, 2, 0, 1, 42);                      /* write 1 started at sector 0 */
    memcpy(b + 256, t + 256, 256);                           /* first half new, rest old */
    CHECK(shadow_judge(&s, 2, b, why, sizeof why) == NULL);
    sector_of(t, 2, 1, 42);                                  /* old value with the wrong in-write offset */
    memcpy(b + 256, t + 256, 256);
    CHECK(shadow_judge(&s, 2, b, why, sizeof why) != NULL);
    sdata_sector(t, 2, 0, 1, 42);
    memcpy(b, t, 256);                                       /* first half old, rest new: not a prefix */
    sdata_sector(t, 2, 2, 2, 42);
    memcpy(b + 256, t + 256, 256);
    CHECK(shadow_judge(&s, 2, b, why, sizeof why) != NULL);
    CHECK_RC(shadow_write(&s, 0, 512, 3, 1), 0);             /* succeeded, not yet flushed */
    sector_of(b, 0, 1, 42);
    CHECK(shadow_judge(&s, 0, b, why, sizeof why) != NULL);
    shadow_dropped(&s);                                      /* the device lost it */
    CHECK(shadow_judge(&s, 0, b, why, sizeof why) == NULL);
    sector_of(b, 0, 3, 42);
    CHECK(shadow_judge(&s, 0, b, why, sizeof why) == NULL);
    /* Issue 16: more failed ops on one sector than the list holds; the
     * newest is the one whose prefix tops the sector. */
    CHECK_RC(shadow_write(&s, 5 * 512, 512, 10, 1), 0);
    for (uint32_t id = 11; id < 20; id++)
        CHECK_RC(shadow_write(&s, 5 * 512, 512, id, 0), 0);
    sdata_sector(b, 5, 5, 19, 42);
    sdata_sector(t, 5, 5, 10, 42);
    memcpy(b + 256, t + 256, 256);                           /* write 19's prefix over write 10 */
    CHECK(shadow_judge(&s, 5, b, why, sizeof why) == NULL);
    b[300] ^= 1;
    CHECK(shadow_judge(&s, 5, b, why, sizeof why) != NULL);
    /* Layered failures (a persistent short fault, 512-byte writes): write
     * 19's first 128 bytes over write 12's first 256 over write 10; and a
     * failed write dropped from the full list (write 11) over write 10. */
    sdata_sector(b, 5, 5, 19, 42);
    sdata_sector(t, 5, 5, 12, 42);
    memcpy(b + 128, t + 128, 128);
    sdata_sector(t, 5, 5, 10, 42);
    memcpy(b + 256, t + 256, 256);
    CHECK(shadow_judge(&s, 5, b, why, sizeof why) == NULL);
    b[200] ^= 1;                                             /* not write 12's byte: garbage */
    CHECK(shadow_judge(&s, 5, b, why, sizeof why) != NULL);
    sdata_sector(b, 5, 5, 11, 42);
    memcpy(b + 256, t + 256, 256);
    CHECK(shadow_judge(&s, 5, b, why, sizeof why) == NULL);
    sdata_sector(t, 5, 5, 25, 42);                           /* a write never issued */
    memcpy(b, t, 256);
    CHECK(shadow_judge(&s, 5, b, why, sizeof why) != NULL);
    sector_of(b, 1, 1, 7);                                   /* another seed */
    CHECK(shadow_judge(&s, 1, b, why, sizeof why) != NULL);
    shadow_free(&s);
}

static void test_oracle_rules(void)
{
    struct trace t;
    trace_init(&t);
    trace_set_meta(&t, "virtual_size", "4194304");
    trace_set_meta(&t, "block_size", "1048576");
    t.seed = 5;
    /* op 0: write id 1 (ok); a failed flush drops it; op 1: flush ok acks op 0 by the harness rule. */
    trace_add_vbegin(&t, 0, VOP_WRITE, 0, 1024, 1);
    trace_add_vend(&t, 0, 0);
    trace_add_mark(&t, "fault.drop_pending", 0);
    trace_add_vbegin(&t, 1, VOP_FLUSH, 0, 0, 0);
    trace_add_vend(&t, 1, 0);
    trace_add_mark(&t, "workload.synced", 1);
    /* op 2: failed write id 2 over sector 1; op 3: flush. */
    trace_add_vbegin(&t, 2, VOP_WRITE, 512, 512, 2);
    trace_add_vend(&t, 2, -EIO);
    trace_add_vbegin(&t, 3, VOP_FLUSH, 0, 0, 0);
    trace_add_vend(&t, 3, 0);
    trace_add_mark(&t, "workload.synced", 3);
    struct oracle plain, o;
    CHECK_RC(oracle_build(&plain, &t), 0);
    CHECK_RC(oracle_build(&o, &t), 0);
    CHECK(plain.ops[0].acked_at == UINT64_MAX); /* rule 1, adopted by the harness oracle */
    CHECK(o.ops[0].acked_at == UINT64_MAX);
    uint8_t b[512], t2[512];
    memset(b, 0, sizeof b);
    uint64_t k = t.n_ops;
    CHECK(oracle_judge_sector(&plain, 0, k, b, ORACLE_POWER_LOSS, NULL) == OV_OK);
    CHECK(oracle_judge_sector(&o, 0, k, b, ORACLE_POWER_LOSS, NULL) == OV_OK);
    /* Rule 2: sector 1 torn by the failed write 2 over write 1. */
    sdata_fill(b, 1, 1, 2, 5);
    sdata_sector(t2, 1, 0, 1, 5); /* write 1 started at sector 0 */
    memcpy(b + 300, t2 + 300, 212);
    CHECK(oracle_judge_sector(&o, 1, k, b, ORACLE_POWER_LOSS, NULL) == OV_OK); /* rule 2, adopted too */
    CHECK(oracle_judge_sector(&o, 1, k, b, ORACLE_POWER_LOSS, NULL) == OV_OK);
    memset(b + 400, 0x5A, 8);
    CHECK(oracle_judge_sector(&o, 1, k, b, ORACLE_POWER_LOSS, NULL) == OV_GARBAGE);
    oracle_free(&plain);
    oracle_free(&o);
    trace_free(&t);
}

/* ---- armed plans against the real engine (fiu presets) ------------------------------ */
static int create_on(struct cowdisk *c)
{
    struct vhdx_rng_seeded rs = {77};
    struct vhdx_rng rng = {vhdx_rng_seeded_fill, &rs};
    struct vhdx_create_params cp = {16u << 20, 1u << 20, 1u << 20, 512, 4096};
    struct vhdx_options o = {.rng = &rng};
    return vhdx_create(cowdisk_bdev(c), &cp, &o);
}

struct img {
    uint8_t *bytes;
    uint64_t size;
};

static int read_img(void *ctx, void *buf, uint64_t len, uint64_t off)
{
    struct img *im = ctx;
    memcpy(buf, im->bytes + off, len);
    return 0;
}

static void test_armed(void)
{
    if (!fault_supported()) {
        struct fault_plan p = {FK_EIO, FM_TRANSIENT, 1, 0, 0, 0};
        CHECK_RC(fault_arm(&p), -ENOTSUP);
        return;
    }
    /* A base image in memory; creating it reaches write, flush, truncate and alloc. */
    struct cowdisk c;
    cowdisk_init(&c, NULL, NULL, 0);
    CHECK_RC(fault_count_start(), 0);
    CHECK_RC(create_on(&c), 0);
    struct fault_stats created = *fault_get_stats();
    fault_disarm();
    CHECK(created.calls[FP_WRITE] && created.calls[FP_FLUSH] && created.calls[FP_TRUNCATE] &&
          created.calls[FP_ALLOC]);
    struct img im = {malloc(c.size), c.size};
    CHECK_RC(cowdisk_read(&c, im.bytes, c.size, 0), 0);
    cowdisk_free(&c);

    /* Counting: the open of a clean image makes reads, a size, allocations. */
    struct cowdisk d;
    cowdisk_init(&d, read_img, &im, im.size);
    CHECK_RC(fault_count_start(), 0);
    struct vhdx *h;
    struct vhdx_options oo = {0};
    CHECK_RC(vhdx_open(cowdisk_bdev(&d), &oo, &h), 0);
    struct fault_stats cnt = *fault_get_stats();
    fault_disarm();
    CHECK(cnt.calls[FP_READ] > 0 && cnt.calls[FP_SIZE] > 0 && cnt.calls[FP_ALLOC] > 0 && cnt.injected == 0);
    /* Every catalogued point exists in the engine (faults/points.md lists the same names). */
    for (int i = 0; i < FP_COUNT; i++)
        CHECK(cnt.calls[i] + created.calls[i] > 0);
    uint8_t data[4096];
    memset(data, 0x11, sizeof data);

    /* Transient eio on the first write: exactly that write fails, the handle stays usable (payload). */
    CHECK_RC(vhdx_write(h, 0, data, sizeof data), 0); /* allocates block 0 */
    struct fault_plan p = {FK_EIO, FM_TRANSIENT, 1, 1u << FP_WRITE, 0, 0};
    CHECK_RC(fault_arm(&p), 0);
    CHECK_RC(vhdx_write(h, 0, data, sizeof data), -EIO);
    CHECK_RC(vhdx_write(h, 0, data, sizeof data), 0);
    CHECK(fault_get_stats()->injected == 1 && fault_get_stats()->first_point == FP_WRITE);
    fault_disarm();

    /* Short write: half the bytes reach the device, then -EIO. */
    uint64_t w0 = d.writes;
    size_t n0 = d.n_ops;
    struct fault_plan ps = {FK_SHORT, FM_TRANSIENT, 1, 0, 0, 0};
    CHECK_RC(fault_arm(&ps), 0);
    CHECK_RC(vhdx_write(h, 8192, data, sizeof data), -EIO);
    fault_disarm();
    CHECK(d.writes == w0 + 1 && d.n_ops == n0 + 1 && d.ops[n0].len == sizeof data / 2);

    /* ENOSPC persistent from the 2nd write/truncate/flush on. */
    struct fault_plan pn = {FK_ENOSPC, FM_PERSISTENT, 2, 0, 0, 0};
    CHECK_RC(fault_arm(&pn), 0);
    CHECK_RC(vhdx_write(h, 0, data, 512), 0);        /* call 1: in place */
    CHECK_RC(vhdx_write(h, 0, data, 512), -ENOSPC);  /* call 2 */
    CHECK_RC(vhdx_write(h, 512, data, 512), -ENOSPC);
    fault_disarm();

    /* flush-lose: the flush fails, the device drops what is pending, the handle is poisoned. */
    CHECK_RC(vhdx_flush(h), 0);
    CHECK_RC(vhdx_write(h, 0, data, 512), 0);
    size_t durable = d.durable;
    CHECK(d.n_ops > durable);
    struct fault_plan pl = {FK_FLUSH_LOSE, FM_TRANSIENT, 1, 0, 0, 0};
    CHECK_RC(fault_arm(&pl), 0);
    CHECK_RC(vhdx_flush(h), -EIO);
    fault_disarm();
    CHECK(d.drops == 1 && d.n_ops == durable);
    CHECK_RC(vhdx_write(h, 0, data, 512), VHDX_E_POISONED);
    CHECK_RC(vhdx_read(h, 0, data, 512), VHDX_E_POISONED);
    vhdx_close(h);

    /* enomem: the open reports it. */
    struct fault_plan pm = {FK_ENOMEM, FM_TRANSIENT, 1, 0, 0, 0};
    CHECK_RC(fault_arm(&pm), 0);
    CHECK_RC(vhdx_open(cowdisk_bdev(&d), &oo, &h), -ENOMEM);
    fault_disarm();

    /* Suspended: nothing counts, nothing fails. */
    struct fault_plan pr = {FK_EIO, FM_PERSISTENT, 1, 0, 0, 0};
    CHECK_RC(fault_arm(&pr), 0);
    fault_suspend(1);
    CHECK_RC(vhdx_open(cowdisk_bdev(&d), &oo, &h), 0);
    vhdx_close(h);
    CHECK(fault_get_stats()->counted == 0);
    fault_suspend(0);
    fault_disarm();

    /* Random plans repeat with the same seed (libfiu's PRNG, seeded at arming). */
    int pattern[2][64];
    for (int round = 0; round < 2; round++) {
        struct fault_plan pq = {FK_EIO, FM_RANDOM, 0, 1u << FP_READ, 0.05, 12345};
        CHECK_RC(fault_arm(&pq), 0);
        for (int i = 0; i < 64; i++) {
            struct vhdx *hh = NULL;
            pattern[round][i] = vhdx_open(cowdisk_bdev(&d), &oo, &hh);
            if (hh)
                vhdx_close(hh);
        }
        fault_disarm();
    }
    int fails = 0;
    for (int i = 0; i < 64; i++) {
        CHECK(pattern[0][i] == pattern[1][i]);
        fails += pattern[0][i] != 0;
    }
    CHECK(fails > 0 && fails < 64);
    cowdisk_free(&d);
    free(im.bytes);
}

int main(void)
{
    test_plan_text();
    test_schedule();
    test_cowdisk();
    test_shadow();
    test_oracle_rules();
    test_armed();
    if (failures) {
        fprintf(stderr, "test_faults: %d check(s) failed\n", failures);
        return 1;
    }
    printf("test_faults: all checks passed\n");
    return 0;
}
