/*
 * judge.c - the fault-trace oracle and the image verdict (judge.h).
 *
 * Guarantees: the verdict uses only public engine and harness APIs; the
 * open uses a GUID generator seeded from the caller's hash, so a verdict is
 * reproducible; the data check reads only sectors the oracle names (cost
 * proportional to the sample, never to the image size).
 */
#include "faults/judge.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/refjudge.h"
#include "harness/sdata.h"
#include "harness/subject.h"

static void data_fail(struct verdict *v, uint64_t sector, enum oracle_violation ov, const struct sector_expect *e,
                      const uint8_t *got)
{
    char found[160], later[200] = "", inv[48];
    sdata_describe(got, found, sizeof found);
    size_t n = 0;
    for (int i = 0; i < e->n_later && n < sizeof later; i++)
        n += (size_t)snprintf(later + n, sizeof later - n, "%s%s%u", i ? ", " : "", e->later[i] ? "write " : "discard ",
                              e->later[i]);
    snprintf(inv, sizeof inv, "data:%s", oracle_violation_name(ov));
    verdict_fail_named(v, inv,
                       "virtual sector %" PRIu64 " (offset %" PRIu64 "): acknowledged value %s %u%s%s%s; found %s",
                       sector, sector * 512, e->acked_id ? "write" : (e->acked_is_discard ? "discard" : "zeros"),
                       e->acked_id, e->n_later ? "; in flight or failed: " : "", later, e->more_later ? ", ..." : "",
                       found);
    v->bad_sector = sector;
}

static void judge_sectors(const struct subject_ops *subj, struct subject_handle *h, const struct subject_info *in,
                          const struct oracle *o, uint64_t k, const uint64_t *sectors, size_t n, struct refjudge *rj,
                          struct verdict *v)
{
    uint8_t buf[512];
    for (size_t i = 0; i < n && v->ok; i++) {
        if (sectors[i] * 512 >= in->virtual_size)
            continue;
        int rc = subj->read(h, sectors[i] * 512, buf, sizeof buf);
        if (rc != 0) {
            verdict_fail_named(v, "read-failed", "reading virtual sector %" PRIu64 " after a successful open: %s",
                               sectors[i], subj->last_error(h));
            return;
        }
        struct sector_expect e;
        enum oracle_violation ov = oracle_judge_sector(o, sectors[i], k, buf, ORACLE_POWER_LOSS, &e);
        if (ov != OV_OK)
            data_fail(v, sectors[i], ov, &e, buf);
        refjudge_read(rj, sectors[i] * 512, buf, sizeof buf, v);
    }
}

void fault_judge_image(struct bdev *dev, const struct oracle *o, uint64_t k, uint64_t hash,
                       const struct fault_judge_cfg *cfg, struct verdict *v)
{
    verdict_init(v, k);
    const struct subject_ops *subj = cfg->subject ? cfg->subject : &subject_libvhdx;
    uint64_t rng = hash | 1;
    struct subject_handle *h = NULL;
    /* the reference reads the image before the open touches it; one
     * content-keyed checksum memo for the process: images under one fault
     * sweep share most of their log and tables */
    static struct ref_memo *memo;
    if (!memo)
        memo = ref_memo_new();
    struct refjudge rj;
    /* from the crash state in place when the caller says dev is a fresh
     * cowdisk over it; no memo then: the state's pointers name their bytes
     * only for this state, and this memo lives for the process */
    const struct ref_src before = cfg->state ? refjudge_src_now(cfg->state, NULL) : refjudge_src_bdev(dev, memo);
    if (refjudge_begin(&rj, &before) != 0)
        memset(&rj, 0, sizeof rj);
    int rc = subj->open(dev, 0, &rng, 0, &h);
    v->open_rc = rc;
    if (rc != 0) {
        if (!(cfg->allow_refusal && subject_is_refusal(rc)))
            verdict_fail_named(v, "open-refused", "the image did not open: %s", subj->last_error(NULL));
        refjudge_open(&rj, rc, subject_is_refusal(rc), NULL, !cfg->allow_refusal, v);
        refjudge_end(&rj);
        return;
    }
    struct subject_info in;
    subj->info(h, &in);
    refjudge_open(&rj, 0, 0, &in, !cfg->allow_refusal, v);
    if (in.replayed && v->ok) {
        const struct ref_src after = refjudge_src_bdev(dev, memo);
        refjudge_replayed(&rj, &after, 1, v);
    }
    v->replayed = in.replayed ? in.replayed_entries : 0;
    if (!in.log_clean)
        verdict_fail_named(v, "log-guid-not-cleared", "after the open the current header still carries a LogGuid");
    if (v->ok && subj->check) {
        char why[512] = "";
        rc = subj->check(dev, why, sizeof why);
        if (rc < 0)
            verdict_fail_named(v, "check-failed", "the checker could not run: %s", strerror(-rc));
        else if (rc == 1)
            verdict_fail_named(v, "check-failed", "the checker found %s", why);
        else if (rc == 2)
            verdict_fail_named(v, "log-guid-not-cleared", "after the open the on-disk header still names a log");
    }
    if (v->ok && o) {
        uint64_t *sectors = NULL;
        size_t n = 0;
        if (oracle_check_set(o, k, cfg->per_op, cfg->probes, hash, &sectors, &n) == 0) {
            judge_sectors(subj, h, &in, o, k, sectors, n, &rj, v);
            free(sectors);
        }
        if (v->ok && cfg->wide && oracle_wide_set(o, k, cfg->wide, hash, &sectors, &n) == 0) {
            judge_sectors(subj, h, &in, o, k, sectors, n, &rj, v);
            free(sectors);
        }
    }
    rc = subj->close(h);
    if (rc != 0)
        verdict_fail_named(v, "close-failed", "closing the reopened image failed: %s", subj->last_error(NULL));
    refjudge_end(&rj);
}
