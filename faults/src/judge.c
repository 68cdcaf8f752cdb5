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
#include "vhdx/check.h"
#include "vhdx/crc32c.h"
#include "vhdx/format.h"
#include "vhdx/vhdx.h"

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

static void judge_sectors(struct vhdx *h, const struct vhdx_info *in, const struct oracle *o, uint64_t k,
                          const uint64_t *sectors, size_t n, struct refjudge *rj, struct verdict *v)
{
    uint8_t buf[512];
    for (size_t i = 0; i < n && v->ok; i++) {
        if (sectors[i] * 512 >= in->geo.virtual_size)
            continue;
        int rc = vhdx_read(h, sectors[i] * 512, buf, sizeof buf);
        if (rc != 0) {
            verdict_fail_named(v, "read-failed", "reading virtual sector %" PRIu64 " after a successful open: %s",
                               sectors[i], vhdx_strerror(rc));
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
    struct vhdx_rng_seeded rs = {hash | 1};
    struct vhdx_rng rng = {vhdx_rng_seeded_fill, &rs};
    struct vhdx_diag diag;
    struct vhdx_options opt = {.rng = &rng, .diag = &diag};
    struct vhdx *h = NULL;
    /* the reference reads the image before the open touches it */
    /* one content-keyed checksum memo for the process: images under one
     * fault sweep share most of their log and tables */
    static struct ref_memo *memo;
    if (!memo)
        memo = ref_memo_new();
    struct refjudge rj;
    const struct ref_src before = refjudge_src_bdev(dev, memo);
    if (refjudge_begin(&rj, &before) != 0)
        memset(&rj, 0, sizeof rj);
    int rc = vhdx_open(dev, &opt, &h);
    v->open_rc = rc;
    if (rc != 0) {
        if (!(cfg->allow_refusal && vhdx_is_format_error(rc)))
            verdict_fail_named(v, "open-refused", "the image did not open: %s [%s, field %s, offset %" PRIu64 "]",
                               diag.message, vhdx_errname(rc), diag.field, diag.offset);
        refjudge_open(&rj, rc, vhdx_is_format_error(rc), NULL, !cfg->allow_refusal, v);
        refjudge_end(&rj);
        return;
    }
    struct vhdx_info in;
    vhdx_get_info(h, &in);
    refjudge_open(&rj, 0, 0, &in, !cfg->allow_refusal, v);
    if (in.replayed && v->ok) {
        const struct ref_src after = refjudge_src_bdev(dev, memo);
        refjudge_replayed(&rj, &after, 1, v);
    }
    v->replayed = in.replayed ? in.replayed_entries : 0;
    if (!vhdx_guid_is_zero(&in.header.log_guid))
        verdict_fail_named(v, "log-guid-not-cleared", "after the open the current header still carries a LogGuid");
    if (v->ok) {
        struct vhdx_check_report r;
        rc = vhdx_check(dev, 0, &r);
        if (rc != 0) {
            verdict_fail_named(v, "check-failed", "the checker could not run: %s", vhdx_strerror(rc));
        } else {
            for (size_t i = 0; i < r.count && v->ok; i++)
                if (r.problems[i].severity == VHDX_SEV_ERROR)
                    verdict_fail_named(v, "check-failed", "the checker found %zu error(s); first: %s: %s [%s]",
                                       r.errors, r.problems[i].field, r.problems[i].message,
                                       vhdx_errname(r.problems[i].code));
            if (v->ok && r.log_pending)
                verdict_fail_named(v, "log-guid-not-cleared", "after the open the on-disk header still names a log");
            vhdx_check_report_free(&r);
        }
    }
    if (v->ok && o) {
        uint64_t *sectors = NULL;
        size_t n = 0;
        if (oracle_check_set(o, k, cfg->per_op, cfg->probes, hash, &sectors, &n) == 0) {
            judge_sectors(h, &in, o, k, sectors, n, &rj, v);
            free(sectors);
        }
        if (v->ok && cfg->wide && oracle_wide_set(o, k, cfg->wide, hash, &sectors, &n) == 0) {
            judge_sectors(h, &in, o, k, sectors, n, &rj, v);
            free(sectors);
        }
    }
    rc = vhdx_close(h);
    if (rc != 0)
        verdict_fail_named(v, "close-failed", "closing the reopened image failed: %s", vhdx_strerror(rc));
    refjudge_end(&rj);
}
