/*
 * liverun.c - a workload run with a fault plan armed and the in-session
 * checks on the live handle (liverun.h).  The runner's handle reaches the
 * checks through the workload runner's on_handle hook (after every open,
 * close and abandon); the checks read through the subject layer.
 */
#include "faults/liverun.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "faults/judge.h"
#include "harness/subject.h"

#define DEFAULT_FINAL_PROBES 256u
#define OP_PROBES 4u /* sectors read after each op once a fault fired */

/* The runner's session handle, through workload_run_opts.on_handle. */
static void on_handle(void *ctx, struct subject_handle *h, enum workload_session ev, int rc);

/* The sampling sequence: each value is the mix of the previous one. */
static uint64_t next_rng(struct fault_run *r)
{
    uint64_t x = r->rng + UINT64_C(0x9E3779B97F4A7C15);
    x = (x ^ (x >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94D049BB133111EB);
    return r->rng = x ^ (x >> 31);
}

static int handle_poisoned(const struct fault_run *r)
{
    struct subject_info in;
    return r->subj->info(r->h, &in) == 0 && in.poisoned;
}

static void on_inject(void *ctx, enum fault_point p)
{
    struct fault_run *r = ctx;
    r->inj_in_op++;
    if (!r->fired) {
        r->fired = 1;
        r->fired_op = r->cur_op;
        r->fired_pos = r->t ? r->t->n_ops : 0;
        r->fired_point = p;
    }
    if (p == FP_FLUSH && r->plan.kind == FK_FLUSH_LOSE)
        r->drop_in_op = 1;
}

static void live_fail(struct fault_run *r, const char *inv, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void live_fail(struct fault_run *r, const char *inv, const char *fmt, ...)
{
    if (!r->live_v.ok)
        return;
    char detail[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    r->live_op = r->cur_op;
    verdict_fail_named(&r->live_v, inv, "after workload op %ld: %s", r->cur_op, detail);
    r->live_v.cut = r->t ? r->t->n_ops : 0;
}

/* Reads one sector through the live handle (faults suspended) and judges it. */
static void live_sector(struct fault_run *r, uint64_t sector)
{
    if (!r->live_v.ok || sector * 512 >= r->w->p.virtual_size)
        return;
    uint8_t buf[512];
    fault_suspend(1);
    int rc = r->subj->read(r->h, sector * 512, buf, sizeof buf);
    fault_suspend(0);
    r->live_reads++;
    if (rc != 0) {
        live_fail(r, "live-read-failed",
                  "reading virtual sector %" PRIu64 " through the unpoisoned handle failed with no fault armed: %s",
                  sector, r->subj->last_error(r->h));
        return;
    }
    char why[400];
    const char *bad = shadow_judge(&r->sh, sector, buf, why, sizeof why);
    if (bad) {
        char inv[48];
        snprintf(inv, sizeof inv, "live-data:%s", bad);
        live_fail(r, inv, "%s", why);
        r->live_v.bad_sector = sector;
    }
}

/* The first and last sector of [voff, voff+vlen) and n-2 sampled ones. */
static void live_range(struct fault_run *r, uint64_t voff, uint64_t vlen, unsigned n)
{
    uint64_t first = voff / 512, cnt = vlen / 512;
    if (!cnt)
        return;
    if (cnt <= n) {
        for (uint64_t i = 0; i < cnt; i++)
            live_sector(r, first + i);
        return;
    }
    live_sector(r, first);
    live_sector(r, first + cnt - 1);
    for (unsigned i = 2; i < n; i++)
        live_sector(r, first + next_rng(r) % cnt);
}

static void live_probes(struct fault_run *r, unsigned n)
{
    for (unsigned i = 0; i < n && r->sh.count; i++)
        live_sector(r, shadow_pick(&r->sh, next_rng(r)));
}

/* After an op: the handle is either poisoned (every call fails) or correct. */
static void live_handle_check(struct fault_run *r, const struct vop *vo)
{
    if (!r->h || !r->live)
        return;
    /* Only an injected fault poisons a handle on the healthy simulated disk
     * (were one poisoned before, the reads below fail: live-read-failed).
     * The query is a whole vhdx_get_info, a scan of the BAT: not per op. */
    if (r->fired && handle_poisoned(r)) {
        uint8_t buf[512];
        fault_suspend(1);
        int rc = r->subj->read(r->h, 0, buf, sizeof buf);
        fault_suspend(0);
        if (rc == 0)
            live_fail(r, "poisoned-handle-succeeded", "a read through the poisoned handle returned data");
        return;
    }
    if (vo && (vo->kind == VOP_WRITE || vo->kind == VOP_DISCARD))
        live_range(r, vo->voff, vo->vlen, OP_PROBES);
    live_probes(r, OP_PROBES);
}

struct arm_state {
    struct fault_run *r;
    int rc; /* arming result */
};

static void hook_before(void *ctx, long op, struct bdev *dev)
{
    (void)dev;
    struct arm_state *a = ctx;
    struct fault_run *r = a->r;
    r->cur_op = op;
    r->inj_in_op = 0;
    r->drop_in_op = 0;
    r->close_seen = 0;
    if (op == -1 && a->rc == 0)
        a->rc = r->count_only ? fault_count_start() : fault_arm(&r->plan);
    r->pre_poisoned = r->h && handle_poisoned(r);
    if (op == -2 && r->fired && r->h && !r->pre_poisoned && r->live)
        live_probes(r, r->final_probes ? r->final_probes : DEFAULT_FINAL_PROBES); /* a wide look */
}

static void hook_after(void *ctx, long op, int rc)
{
    struct arm_state *a = ctx;
    struct fault_run *r = a->r;
    const struct vop *vo = op >= 0 ? &r->w->ops[op] : NULL;
    enum vop_kind kind = op == -1 ? VOP_OPEN : op == -2 ? VOP_CLOSE : vo->kind;
    if (rc != 0 && !r->fired && r->strict)
        live_fail(r, "failed-without-fault", "workload op %ld (kind %d) failed before any fault fired: %s", op,
                  (int)kind, strerror(rc < 0 ? -rc : rc));
    if (r->count_only)
        return;
    if (r->inj_in_op && rc == 0)
        live_fail(r, "fault-not-reported",
                  "workload op %ld (kind %d) returned success although %" PRIu64 " injected fault(s) fired during it",
                  op, (int)kind, r->inj_in_op);
    if (r->pre_poisoned && rc == 0)
        live_fail(r, "poisoned-handle-succeeded", "workload op %ld (kind %d) succeeded on a poisoned handle", op,
                  (int)kind);
    if (!r->live)
        return;
    /* The in-session model. */
    int orc = 0;
    switch (kind) {
    case VOP_WRITE:
        orc = shadow_write(&r->sh, vo->voff, vo->vlen, vo->id, rc == 0);
        break;
    case VOP_DISCARD:
        orc = shadow_discard(&r->sh, vo->voff, vo->vlen, rc == 0);
        break;
    case VOP_FLUSH:
    case VOP_CLOSE:
        if (rc == 0)
            shadow_synced(&r->sh);
        break;
    case VOP_REOPEN:
        if (r->close_seen && r->close_rc == 0)
            shadow_synced(&r->sh);
        break;
    default:
        break;
    }
    if (orc && a->rc == 0)
        a->rc = -ENOMEM;
    if (r->drop_in_op)
        shadow_dropped(&r->sh);
    if (r->fired)
        live_handle_check(r, vo);
}

static void on_handle(void *ctx, struct subject_handle *h, enum workload_session ev, int rc)
{
    struct fault_run *r = ((struct arm_state *)ctx)->r;
    if (ev == WL_SESSION_OPENED) {
        r->h = h;
    } else if (h == r->h) {
        r->h = NULL;
        if (ev == WL_SESSION_CLOSED) {
            r->close_seen = 1;
            r->close_rc = rc;
        }
    }
}

int fault_run_workload(struct fault_run *r, const struct workload *w, struct trace *t, char *err, size_t errlen)
{
    if (!r->subj)
        r->subj = &subject_libvhdx;
    r->w = w;
    r->t = t;
    r->h = NULL;
    r->cur_op = -1;
    r->fired = 0;
    r->fired_op = -3;
    r->fired_pos = 0;
    r->live_op = -3;
    r->live_reads = 0;
    if (!r->rng)
        r->rng = w->p.seed ^ UINT64_C(0x11FE);
    verdict_init(&r->live_v, 0);
    trace_init(t);
    shadow_init(&r->sh, w->p.seed);
    fault_set_inject_hook(on_inject, r);
    struct arm_state a = {r, 0};
    struct workload_run_opts ro = {.subject = r->subj, .on_handle = on_handle, .continue_on_error = 1,
                                   .before_op = hook_before, .after_op = hook_after, .ctx = &a};
    char rerr[512];
    int rc = workload_run_ex(w, t, &ro, rerr, sizeof rerr);
    fault_disarm();
    fault_set_inject_hook(NULL, NULL);
    shadow_free(&r->sh);
    if (a.rc == -ENOMEM) {
        snprintf(err, errlen, "out of memory in the in-session model");
        return -1;
    }
    if (a.rc != 0) {
        snprintf(err, errlen, "cannot arm the fault plan: %s", strerror(-a.rc));
        return -1;
    }
    if (rc != 0) {
        snprintf(err, errlen, "the workload runner failed: %s", rerr);
        return -1;
    }
    return 0;
}
