/*
 * test_oracle.c - the virtual-disk model on a hand-built trace: what is
 * acknowledged at each cut, which values a sector may show, and every kind
 * of violation (lost, garbage, misplaced, future, foreign); rollback is
 * accepted only under the corruption models; discards expect zeros.
 */
#include "harness/oracle.h"
#include "harness/sdata.h"
#include "testutil.h"

#define SEED 9

/*   0 B w1 [0,4K)        1 E
 *   2 B flush f          3 M synced(f)   4 E
 *   5 B w2 [0,1K)        6 E
 *   7 B discard [2K,3K)  8 E
 *   9 B flush f2        10 M synced(f2) 11 E
 *  12 B w3 [512,1K)     13 E          (never acked) */
static void build(struct trace *t)
{
    trace_init(t);
    t->seed = SEED;
    trace_set_meta(t, "virtual_size", "1048576");
    trace_set_meta(t, "block_size", "1048576");
    trace_add_vbegin(t, 0, VOP_WRITE, 0, 4096, 1);
    trace_add_vend(t, 0, 0);
    trace_add_vbegin(t, 1, VOP_FLUSH, 0, 0, 0);
    trace_add_mark(t, "workload.synced", 1);
    trace_add_vend(t, 1, 0);
    trace_add_vbegin(t, 2, VOP_WRITE, 0, 1024, 2);
    trace_add_vend(t, 2, 0);
    trace_add_vbegin(t, 3, VOP_DISCARD, 2048, 1024, 0);
    trace_add_vend(t, 3, 0);
    trace_add_vbegin(t, 4, VOP_FLUSH, 0, 0, 0);
    trace_add_mark(t, "workload.synced", 4);
    trace_add_vend(t, 4, 0);
    trace_add_vbegin(t, 5, VOP_WRITE, 512, 512, 3);
    trace_add_vend(t, 5, 0);
}

static uint8_t sec[512];
static const uint8_t *val(uint32_t id, uint64_t sector)
{
    if (id == 0)
        memset(sec, 0, 512);
    else
        sdata_fill(sec, sector, 1, id, SEED);
    return sec;
}

/* Issue 16: write 1 lands on sector 0; write 2 fails after 256 bytes; then
 * 20 more ops on the sector fail (nothing is ever acknowledged).  The sector
 * holding write 2's prefix over write 1 is legal however many values came
 * after (the rule once looked only at the newest 16); a prefix over a value
 * of an op begun after the failed one, or over bytes no op wrote, is not. */
static void test_failed_op_rule_uncapped(void)
{
    struct trace t;
    trace_init(&t);
    t.seed = SEED;
    trace_set_meta(&t, "virtual_size", "1048576");
    trace_set_meta(&t, "block_size", "1048576");
    trace_add_vbegin(&t, 0, VOP_WRITE, 0, 512, 1);
    trace_add_vend(&t, 0, 0);
    trace_add_vbegin(&t, 1, VOP_WRITE, 0, 512, 2);
    trace_add_vend(&t, 1, -5);
    for (uint32_t i = 2; i < 22; i++) {
        int w = i % 2 == 0;
        trace_add_vbegin(&t, i, w ? VOP_WRITE : VOP_DISCARD, 0, w ? 512 : 1048576, w ? 1 + i : 0);
        trace_add_vend(&t, i, -30995);
    }
    struct oracle o;
    CHECK_OK(oracle_build(&o, &t));
    const uint64_t k = t.n_ops;
    uint8_t b[512], under[512];
    sdata_sector(b, 0, 0, 2, SEED);
    sdata_sector(under, 0, 0, 1, SEED);
    memcpy(b + 256, under + 256, 256); /* write 2's first 256 bytes over write 1 */
    struct sector_expect e;
    CHECK(oracle_judge_sector(&o, 0, k, b, ORACLE_POWER_LOSS, &e) == OV_OK);
    CHECK(e.more_later); /* write 1 is beyond the 16 values listed by name */
    sdata_sector(under, 0, 0, 21, SEED); /* write 21 began after write 2 failed */
    memcpy(b + 256, under + 256, 256);
    CHECK(oracle_judge_sector(&o, 0, k, b, ORACLE_POWER_LOSS, NULL) == OV_GARBAGE);
    /* layered: write 3's prefix (200 bytes) over write 2's (256) over write 1 */
    sdata_sector(b, 0, 0, 2, SEED);
    sdata_sector(under, 0, 0, 1, SEED);
    memcpy(b + 256, under + 256, 256);
    sdata_sector(under, 0, 0, 3, SEED);
    memcpy(b, under, 200);
    CHECK(oracle_judge_sector(&o, 0, k, b, ORACLE_POWER_LOSS, NULL) == OV_OK);
    b[400] ^= 1;
    CHECK(oracle_judge_sector(&o, 0, k, b, ORACLE_POWER_LOSS, NULL) == OV_GARBAGE);
    oracle_free(&o);
    trace_free(&t);
}

/* Media without sector atomicity (ORACLE_POWER_LOSS_TEARS): a write in
 * flight at the cut (begun, not acknowledged) may leave a byte prefix of
 * its value over the acknowledged one; under ORACLE_POWER_LOSS that is
 * garbage; an acknowledged write's prefix is never allowed. */
static void test_in_flight_tears(void)
{
    struct trace t;
    build(&t);
    struct oracle o;
    CHECK_OK(oracle_build(&o, &t));
    const uint64_t k = t.n_ops; /* w3 on sector 1 is in flight; w2 acked there */
    uint8_t b[512], under[512];
    sdata_sector(b, 1, 1, 3, SEED);
    sdata_sector(under, 1, 0, 2, SEED);
    memcpy(b + 100, under + 100, 412); /* 100 bytes of w3 over w2 */
    CHECK(oracle_judge_sector(&o, 1, k, b, ORACLE_POWER_LOSS, NULL) == OV_GARBAGE);
    CHECK(oracle_judge_sector(&o, 1, k, b, ORACLE_POWER_LOSS_TEARS, NULL) == OV_OK);
    CHECK(oracle_torn_in_flight(&o, 1, k, b) && !oracle_torn_by_failed_op(&o, 1, k, b));
    /* w2's prefix over w1 on sector 0 at the last cut: w2 is acknowledged */
    sdata_sector(b, 0, 0, 2, SEED);
    sdata_sector(under, 0, 0, 1, SEED);
    memcpy(b + 300, under + 300, 212);
    CHECK(oracle_judge_sector(&o, 0, k, b, ORACLE_POWER_LOSS_TEARS, NULL) == OV_GARBAGE);
    oracle_free(&o);
    trace_free(&t);
}

int main(void)
{
    test_in_flight_tears();
    struct trace t;
    build(&t);
    struct oracle o;
    CHECK_OK(oracle_build(&o, &t));
    CHECK(o.n_ops == 6 && oracle_acked(&o.ops[0], 4) && !oracle_acked(&o.ops[0], 3));
    /* Cut 4: w1 acked. */
    CHECK(oracle_judge_sector(&o, 0, 4, val(1, 0), ORACLE_POWER_LOSS, NULL) == OV_OK);
    CHECK(oracle_judge_sector(&o, 0, 4, val(0, 0), ORACLE_POWER_LOSS, NULL) == OV_LOST);
    CHECK(oracle_judge_sector(&o, 0, 4, val(0, 0), ORACLE_CORRUPTION, NULL) == OV_OK); /* rollback */
    CHECK(oracle_judge_sector(&o, 0, 4, val(2, 0), ORACLE_POWER_LOSS, NULL) == OV_FUTURE);
    CHECK(oracle_judge_sector(&o, 0, 4, val(1, 5), ORACLE_POWER_LOSS, NULL) == OV_MISPLACED);
    CHECK(oracle_judge_sector(&o, 9, 4, val(0, 9), ORACLE_POWER_LOSS, NULL) == OV_OK); /* never written */
    uint8_t junk[512];
    memset(junk, 0x5A, sizeof junk);
    CHECK(oracle_judge_sector(&o, 0, 4, junk, ORACLE_POWER_LOSS, NULL) == OV_GARBAGE);
    CHECK(oracle_judge_sector(&o, 0, 4, junk, ORACLE_CORRUPTION, NULL) == OV_GARBAGE);
    /* Cut 8: w2 and the discard in flight: old or new both allowed. */
    CHECK(oracle_judge_sector(&o, 0, 8, val(1, 0), ORACLE_POWER_LOSS, NULL) == OV_OK);
    CHECK(oracle_judge_sector(&o, 0, 8, val(2, 0), ORACLE_POWER_LOSS, NULL) == OV_OK);
    CHECK(oracle_judge_sector(&o, 4, 8, val(1, 4), ORACLE_POWER_LOSS, NULL) == OV_OK);
    CHECK(oracle_judge_sector(&o, 4, 8, val(0, 4), ORACLE_POWER_LOSS, NULL) == OV_OK);
    /* Cut 11: w2 and the discard acked. */
    CHECK(oracle_judge_sector(&o, 0, 11, val(1, 0), ORACLE_POWER_LOSS, NULL) == OV_LOST);
    CHECK(oracle_judge_sector(&o, 4, 11, val(1, 4), ORACLE_POWER_LOSS, NULL) == OV_LOST);
    CHECK(oracle_judge_sector(&o, 4, 11, val(0, 4), ORACLE_POWER_LOSS, NULL) == OV_OK);
    CHECK(oracle_judge_sector(&o, 6, 11, val(1, 6), ORACLE_POWER_LOSS, NULL) == OV_OK); /* w1 beyond w2 */
    /* w2's data in a sector it never covered. */
    CHECK(oracle_judge_sector(&o, 6, 11, val(2, 6), ORACLE_POWER_LOSS, NULL) == OV_FOREIGN);
    /* Cut 14: w3 in flight over w2. */
    struct sector_expect e;
    CHECK(oracle_judge_sector(&o, 1, 14, val(3, 1), ORACLE_POWER_LOSS, &e) == OV_OK);
    CHECK(e.acked_id == 2 && e.n_later == 1 && e.later[0] == 3);
    /* Check sets: in flight and just acked ops, plus probes. */
    uint64_t *s;
    size_t n;
    CHECK_OK(oracle_check_set(&o, 14, 8, 4, 1, &s, &n));
    int has1 = 0, has_discarded = 0;
    for (size_t i = 0; i < n; i++) {
        has1 |= s[i] == 1;
        has_discarded |= s[i] >= 4 && s[i] < 6;
    }
    CHECK(has1);          /* w3 */
    CHECK(has_discarded); /* the discard checks w1's sectors it covered */
    free(s);
    CHECK_OK(oracle_all_written(&o, 14, &s, &n));
    CHECK(n == 8 + 2 + 1);
    free(s);
    oracle_free(&o);
    trace_free(&t);

    /* Fault rules: a failed flush that dropped pending writes means a later
     * flush does not acknowledge them; a failed (short) write may leave a
     * byte prefix of its data over the older value. */
    trace_init(&t);
    t.seed = SEED;
    trace_set_meta(&t, "virtual_size", "1048576");
    trace_set_meta(&t, "block_size", "1048576");
    trace_add_vbegin(&t, 0, VOP_WRITE, 0, 512, 1); /*  0 */
    trace_add_vend(&t, 0, 0);
    trace_add_vbegin(&t, 1, VOP_FLUSH, 0, 0, 0);   /*  2 */
    trace_add_mark(&t, "workload.synced", 1);
    trace_add_vend(&t, 1, 0);
    trace_add_vbegin(&t, 2, VOP_WRITE, 0, 512, 2); /*  5 */
    trace_add_vend(&t, 2, 0);
    trace_add_vbegin(&t, 3, VOP_FLUSH, 0, 0, 0);   /*  7 */
    trace_add_mark(&t, "fault.drop_pending", 0);
    trace_add_vend(&t, 3, -5);
    trace_add_vbegin(&t, 4, VOP_FLUSH, 0, 0, 0);   /* 10 */
    trace_add_mark(&t, "workload.synced", 4);
    trace_add_vend(&t, 4, 0);
    trace_add_vbegin(&t, 5, VOP_WRITE, 512, 512, 3); /* 13: fails short */
    trace_add_vend(&t, 5, -5);
    CHECK_OK(oracle_build(&o, &t));
    CHECK(!oracle_acked(&o.ops[2], 100)); /* dropped by the failed flush */
    CHECK(oracle_judge_sector(&o, 0, 100, val(1, 0), ORACLE_POWER_LOSS, NULL) == OV_OK);
    uint8_t mixed[512], fresh[512];
    sdata_fill(fresh, 1, 1, 3, SEED);
    memset(mixed, 0, sizeof mixed);
    memcpy(mixed, fresh, 200); /* 200 bytes of write 3 over zeros */
    CHECK(oracle_judge_sector(&o, 1, 100, mixed, ORACLE_POWER_LOSS, NULL) == OV_OK);
    mixed[300] = 0x11; /* not zeros after the prefix */
    CHECK(oracle_judge_sector(&o, 1, 100, mixed, ORACLE_POWER_LOSS, NULL) == OV_GARBAGE);
    oracle_free(&o);
    trace_free(&t);
    test_failed_op_rule_uncapped();
    return test_summary("test_oracle");
}
