/*
 * check.c - the consistency checker and its explicit repairs.
 *
 * Guarantees: without VHDX_CHECK_REPAIR nothing is written (a pending log is
 * replayed in memory and the replayed image is checked).  With it, only the
 * repairs named in check.h are made, in this order: clear a LogGuid that has
 * no valid sequence; replay a pending log; rewrite a damaged or stale header
 * copy; rewrite a damaged or differing region table copy through the log.
 * Each repair made is listed as a REPAIRED problem, then the image is
 * checked again and that second verdict is the one reported.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "validate.h"
#include "vhdx/check.h"

const char *vhdx_severity_name(enum vhdx_severity s)
{
    switch (s) {
    case VHDX_SEV_INFO:
        return "info";
    case VHDX_SEV_WARNING:
        return "warning";
    case VHDX_SEV_ERROR:
        return "error";
    case VHDX_SEV_REPAIRED:
        return "repaired";
    }
    return "?";
}

const char *vhdx_repair_name(enum vhdx_repair r)
{
    switch (r) {
    case VHDX_REPAIR_NONE:
        return "none";
    case VHDX_REPAIR_CLEAR_LOG_GUID:
        return "clear-log-guid";
    case VHDX_REPAIR_REPLAY:
        return "replay";
    case VHDX_REPAIR_HEADER_COPY:
        return "rewrite-header-copy";
    case VHDX_REPAIR_REGION_COPY:
        return "rewrite-region-table-copy";
    }
    return "?";
}

struct collect_sink {
    struct vhdx_sink base;
    struct vhdx_check_report *r;
    size_t cap;
    int oom;
};

static int collect_report(struct vhdx_sink *s, const struct vhdx_problem *p)
{
    struct collect_sink *c = (struct collect_sink *)s;
    struct vhdx_check_report *r = c->r;
    if (r->count == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 16;
        struct vhdx_problem *n = vhdx_realloc(r->problems, ncap * sizeof *n);
        if (!n) {
            c->oom = 1;
            return -ENOMEM;
        }
        r->problems = n;
        c->cap = ncap;
    }
    r->problems[r->count++] = *p;
    if (p->severity == VHDX_SEV_ERROR)
        r->errors++;
    else if (p->severity == VHDX_SEV_WARNING)
        r->warnings++;
    else if (p->severity == VHDX_SEV_REPAIRED)
        r->repaired++;
    return 0;
}

void vhdx_check_report_free(struct vhdx_check_report *report)
{
    if (!report)
        return;
    free(report->problems);
    memset(report, 0, sizeof *report);
}

/* Read-only inspection: reports everything it finds into s. */
static int inspect(struct bdev *dev, struct collect_sink *cs)
{
    struct vhdx_sink *s = &cs->base;
    struct vhdx_check_report *r = cs->r;
    int rc = 0;
    struct bdev *view = dev;
    struct vhdx_replay_plan plan;
    struct vhdx_region_table *rt = NULL;
    uint8_t *bat = NULL;
    memset(&plan, 0, sizeof plan);

    uint8_t id[VHDX_FILE_ID_SIZE];
    struct vhdx_file_id fid;
    rc = vhdx_io_read(dev, id, sizeof id, 0);
    if (rc == VHDX_E_SHORT_IO || (rc == 0 && vhdx_file_id_decode(id, &fid) != 0)) {
        return vhdx_report(s, VHDX_SEV_ERROR, VHDX_E_FILE_SIGNATURE, 0, 0, "file_id.Signature",
                           "the file does not start with \"vhdxfile\": not a VHDX image");
    }
    if (rc != 0)
        return rc;

    struct vhdx_headers hs;
    rc = vhdx_v_headers(dev, &hs, s);
    if (rc == VHDX_E_NO_HEADER || rc == VHDX_E_HEADER_AMBIGUOUS)
        return 0; /* reported; nothing more can be read */
    if (rc != 0)
        return rc;
    if (vhdx_v_header_fields(&hs, s) != 0)
        return 0;
    const struct vhdx_header *hd = &hs.h[hs.current];

    uint64_t size;
    rc = vhdx_io_size(dev, &size);
    if (rc != 0)
        return rc;

    if (!vhdx_guid_is_zero(&hd->log_guid)) {
        char g[VHDX_GUID_STRLEN];
        vhdx_guid_format(&hd->log_guid, g);
        r->log_pending = 1;
        struct vhdx_log_ring ring = {dev, hd->log_offset, hd->log_length, hd->log_guid};
        struct vhdx_log_sequence seq;
        memset(&seq, 0, sizeof seq);
        int src = 0;
        if (hd->log_length > VHDX_LOG_MAX_LENGTH)
            src = VHDX_E_LOG_TOO_LARGE;
        else if (hd->log_offset + hd->log_length > size)
            src = VHDX_E_TRUNCATED;
        else
            src = vhdx_log_search(&ring, &seq, NULL, NULL);
        if (src != 0 && !vhdx_is_format_error(src))
            return src;
        if (src != 0) {
            rc = vhdx_report(s, VHDX_SEV_ERROR, src, hd->log_offset, 0, "log", "the log cannot be searched: %s",
                             vhdx_strerror(src));
        } else if (!seq.found) {
            /* the offset of the field named, as open reports it (the log's is in the message) */
            rc = vhdx_report(s, VHDX_SEV_ERROR, VHDX_E_LOG_NO_SEQUENCE,
                             (hs.current ? VHDX_HEADER2_OFFSET : VHDX_HEADER1_OFFSET) + VHDX_HDR_LOG_GUID,
                             VHDX_REPAIR_CLEAR_LOG_GUID, "header.LogGuid",
                             "LogGuid {%s} is set but the log at %llu holds no valid sequence (%u candidate entries)",
                             g, (unsigned long long)hd->log_offset, seq.candidates);
        } else if (size < seq.flushed_file_offset) {
            rc = vhdx_report(s, VHDX_SEV_ERROR, VHDX_E_LOG_TRUNCATED, hd->log_offset, 0, "log.FlushedFileOffset",
                             "file is %llu bytes, the log head says %llu were durable: the file was truncated",
                             (unsigned long long)size, (unsigned long long)seq.flushed_file_offset);
        } else {
            int prc = vhdx_replay_plan_build(&ring, &seq, &plan);
            if (prc == VHDX_E_LOG_TARGET) {
                rc = vhdx_report(s, VHDX_SEV_ERROR, prc, plan.bad_target, 0, "log.descriptor",
                                 "a descriptor targets %llu, where the log may not write",
                                 (unsigned long long)plan.bad_target);
            } else if (prc != 0) {
                rc = vhdx_is_format_error(prc)
                         ? vhdx_report(s, VHDX_SEV_ERROR, prc, hd->log_offset, 0, "log", "%s", vhdx_strerror(prc))
                         : prc;
            } else {
                r->log_entries = plan.entries;
                rc = vhdx_report(s, VHDX_SEV_INFO, 0, hd->log_offset, VHDX_REPAIR_REPLAY, "log",
                                 "log {%s} needs replay: %u entries, sequence %llu..%llu, %zu writes; checked as replayed",
                                 g, plan.entries, (unsigned long long)seq.tail_sequence,
                                 (unsigned long long)seq.head_sequence, plan.count);
                if (rc == 0)
                    rc = vhdx_overlay_create(dev, &plan, &view);
            }
        }
        vhdx_log_sequence_free(&seq);
        if (rc != 0)
            goto out;
    }

    struct vhdx_layout lay;
    memset(&lay, 0, sizeof lay);
    rc = vhdx_io_size(view, &lay.file_size);
    if (rc != 0)
        goto out;
    lay.log_offset = hd->log_offset;
    lay.log_length = hd->log_length;
    rt = vhdx_malloc(sizeof *rt);
    if (!rt) {
        rc = -ENOMEM;
        goto out;
    }
    int copy;
    rc = vhdx_v_region_tables(view, rt, &lay, &copy, s);
    if (rc != 0 || lay.rt == NULL)
        goto out_verdict;
    struct vhdx_geometry geo;
    uint32_t fp_flags;
    struct vhdx_guid disk_id;
    rc = vhdx_v_metadata(view, &lay, &geo, &fp_flags, &disk_id, s);
    if (rc != 0 || geo.bat_entries == 0)
        goto out_verdict;
    if ((uint64_t)lay.bat_length < geo.bat_entries * 8) {
        rc = vhdx_report(s, VHDX_SEV_ERROR, VHDX_E_BAT, lay.bat_offset, 0, "region.BAT.Length",
                         "BAT region of %u bytes cannot hold %llu entries", lay.bat_length,
                         (unsigned long long)geo.bat_entries);
        goto out_verdict;
    }
    bat = vhdx_malloc((size_t)geo.bat_entries * 8);
    if (!bat) {
        rc = -ENOMEM;
        goto out;
    }
    rc = vhdx_io_read(view, bat, (size_t)geo.bat_entries * 8, lay.bat_offset);
    if (rc != 0)
        goto out;
    uint64_t end;
    rc = vhdx_v_bat(bat, &geo, &lay, 1, &end, s);
out_verdict:
    if (rc != 0 && (vhdx_is_format_error(rc) || rc == VHDX_E_CHECK_FAILED))
        rc = 0; /* a structural stop; it is already in the report */
out:
    if (view != dev)
        bdev_destroy(view);
    vhdx_replay_plan_free(&plan);
    free(rt);
    free(bat);
    return rc;
}

static int repair_note(struct collect_sink *cs, enum vhdx_repair kind, const char *what)
{
    return vhdx_report(&cs->base, VHDX_SEV_REPAIRED, 0, UINT64_MAX, kind, "repair", "%s", what);
}

static int has_repair(const struct vhdx_check_report *r, enum vhdx_repair kind)
{
    for (size_t i = 0; i < r->count; i++)
        if (r->problems[i].repair == kind && r->problems[i].severity != VHDX_SEV_REPAIRED)
            return 1;
    return 0;
}

/* Clears the LogGuid with the dual-header protocol, without a full open. */
static int clear_log_guid(struct bdev *dev)
{
    struct vhdx_headers hs;
    struct collect_sink quiet = {{collect_report}, NULL, 0, 0};
    struct vhdx_check_report scratch;
    memset(&scratch, 0, sizeof scratch);
    quiet.r = &scratch;
    int rc = vhdx_v_headers(dev, &hs, &quiet.base);
    vhdx_check_report_free(&scratch);
    if (rc != 0)
        return rc;
    struct vhdx *h = vhdx_calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    h->dev = h->view = dev;
    h->hdr = hs.h[hs.current];
    h->hdr_slot = hs.current;
    h->rng.fill = vhdx_rng_os_fill;
    rc = vhdx_header_update(h, HDR_NEW_FILE_GUID | HDR_CLEAR_LOG_GUID, NULL);
    free(h);
    return rc;
}

static int do_repairs(struct bdev *dev, const struct vhdx_check_report *found, struct collect_sink *cs)
{
    int rc;
    if (has_repair(found, VHDX_REPAIR_CLEAR_LOG_GUID)) {
        rc = clear_log_guid(dev);
        if (rc != 0)
            return rc;
        repair_note(cs, VHDX_REPAIR_CLEAR_LOG_GUID, "cleared the LogGuid, which had no valid log sequence");
    }
    int need_open = has_repair(found, VHDX_REPAIR_REPLAY) || has_repair(found, VHDX_REPAIR_HEADER_COPY) ||
                    has_repair(found, VHDX_REPAIR_REGION_COPY);
    if (!need_open)
        return 0;
    struct vhdx_diag diag;
    struct vhdx_options opt = {.diag = &diag};
    struct vhdx *h;
    rc = vhdx_open(dev, &opt, &h);
    if (rc != 0)
        return 0; /* still refused: the second inspection reports why */
    if (has_repair(found, VHDX_REPAIR_REPLAY))
        repair_note(cs, VHDX_REPAIR_REPLAY, "replayed the pending log");
    rc = vhdx_session_begin(h, 0); /* writes both header copies */
    if (rc == 0 && has_repair(found, VHDX_REPAIR_HEADER_COPY))
        repair_note(cs, VHDX_REPAIR_HEADER_COPY, "rewrote both header copies");
    if (rc == 0 && has_repair(found, VHDX_REPAIR_REGION_COPY)) {
        /* Both copies get the bytes of the table in use, through the log. */
        uint8_t *tbl = vhdx_malloc(VHDX_REGION_TABLE_SIZE);
        struct vhdx_log_update u[2 * VHDX_REGION_TABLE_SIZE / VHDX_LOG_SECTOR];
        if (!tbl) {
            vhdx_abandon(h);
            return -ENOMEM;
        }
        vhdx_region_table_encode(h->regions, tbl);
        size_t n = 0;
        for (uint32_t copy = 0; copy < 2; copy++)
            for (uint32_t k = 0; k < VHDX_REGION_TABLE_SIZE / VHDX_LOG_SECTOR; k++)
                u[n++] = (struct vhdx_log_update){
                    (copy ? VHDX_REGION2_OFFSET : VHDX_REGION1_OFFSET) + (uint64_t)k * VHDX_LOG_SECTOR,
                    tbl + (size_t)k * VHDX_LOG_SECTOR, 0};
        rc = vhdx_log_commit(h, u, n);
        free(tbl);
        if (rc == 0)
            repair_note(cs, VHDX_REPAIR_REGION_COPY, "rewrote both region table copies through the log");
    }
    int crc = vhdx_close(h);
    return rc ? rc : crc;
}

int vhdx_check(struct bdev *dev, unsigned flags, struct vhdx_check_report *report)
{
    memset(report, 0, sizeof *report);
    struct collect_sink cs = {{collect_report}, report, 0, 0};
    int rc = inspect(dev, &cs);
    if (rc != 0 || !(flags & VHDX_CHECK_REPAIR) || cs.oom) {
        report->opened = report->errors == 0;
        return cs.oom ? -ENOMEM : rc;
    }
    int any = 0;
    for (size_t i = 0; i < report->count; i++)
        any |= report->problems[i].repair != VHDX_REPAIR_NONE;
    if (!any) {
        report->opened = report->errors == 0;
        return 0;
    }
    /* Repair, then report only the repairs and the fresh inspection. */
    struct vhdx_check_report found = *report;
    memset(report, 0, sizeof *report);
    cs = (struct collect_sink){{collect_report}, report, 0, 0};
    rc = do_repairs(dev, &found, &cs);
    vhdx_check_report_free(&found);
    if (rc == 0)
        rc = inspect(dev, &cs);
    report->opened = report->errors == 0;
    return cs.oom ? -ENOMEM : rc;
}
