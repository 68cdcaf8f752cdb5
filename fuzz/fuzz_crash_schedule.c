/*
 * fuzz_crash_schedule - PROPERTY: for the workload, the cut point and the
 * crash-model choices the input describes, the harness oracle
 * (sweep_eval_choice: reopen = replay, LogGuid clear, checker clean, every
 * acknowledged write present, no garbage, recovery reaches the same bytes)
 * finds no violation.  Coverage of the engine's replay code steers the
 * search through crash states, which uniform sampling of states cannot.
 *
 * With a fault schedule (header byte 0 bit 7) one engine call fails as the
 * schedule says (faults/schedule.h: kind, transient or persistent, nth call,
 * points), armed after the image is created.  PROPERTY then: every
 * operation during which a fault fired reports an error (fault-not-reported);
 * an operation on a poisoned handle fails, and so does a read through it
 * (poisoned-handle-succeeded); after the fault every read through the live,
 * unpoisoned handle returns a value the in-session model allows
 * (faults/shadow.h: a failed op may or may not have landed, acknowledged
 * data stays; live-data:*); and the final image and the crash state the
 * input chooses open, replay, check clean and hold every acknowledged write
 * under the fault oracle (faults/judge.h: oracle_build +
 * fault_judge_image, which also know that a flush-lose fault un-acknowledges
 * the writes it dropped and that a failed write may leave a byte prefix).
 * Faults fire only in a build with fault points (POWERCUT_FIU=ON: presets
 * fuzz, afl, coverage, fiu, fiu-asan); elsewhere the schedule is decoded, nothing
 * fires, and the input runs as one without a schedule whose operations
 * start 4 bytes later.
 *
 * Input (16-byte header, the fault schedule when flagged, then 4 bytes per
 * workload operation, at most 48):
 *   0     bits 0-2 engine batching: apply_every = 1 + (b & 7);
 *         bit 7: a fault schedule (FAULT_SCHEDULE_BYTES = 4) follows the header
 *   1     bits 0-1 virtual size 4 MiB/16 MiB/1 GiB/4 GiB; bit 2 logical sector 4096
 *   2     crash model: b % CHOICE_MODELS, an index in CRASH_MODEL_LIST
 *         (harness/models.h): the power-loss models prefix to recovery
 *   3     bits 0-2 torn pattern (0-6), bit 3 torn granularity 4096 (else 512),
 *         bit 4 recovery from the durable state (else from durable + pending),
 *         bits 5-6 the same choice in 1-4 consecutive epochs
 *   4-5   epoch selector (LE, modulo the number of epochs)
 *   6-7   index selector (prefix length, torn write, stale length, recovery cut)
 *   8-15  reorder subset bits (LE, up to 12 pending writes) and the sweep seed
 *   16-19 (only with byte 0 bit 7) the fault schedule (fault_schedule_decode):
 *         16    bits 0-2 kind: its index in FAULT_KIND_LIST (faults/plan.h),
 *               FK_COUNT and above no fault; bit 3 persistent (else transient)
 *         17-18 nth - 1 (LE), reduced modulo the number of calls of the
 *               kind's points that the workload makes without faults (a
 *               counting run), so every schedule fires
 *         19    0: every point of the kind, else a mask of (1 << FP_*)
 *               (read 0, write 1, flush 2, size 3, truncate 4, alloc 5)
 *               intersected with the kind's points
 *   ops   b0 >= 0xF8: a burst of 8 * (1 + (b0 & 7)) allocate + discard pairs on
 *         block (b1 << 8 | b2) mod blocks, writes of 1 + (b3 & 7) sectors:
 *         the log ring fills and wraps;
 *         otherwise kind = b0 % 8: 0-3 write, 4 flush, 5 discard, 6 reopen, 7 apply;
 *         offset = (b1 << 8 | b2) * max(1, sectors / 65536) logical sectors
 *         (modulo the disk: 65536 places spread over the whole disk),
 *         length = 1 + b3 logical sectors (cut at the end of the disk)
 * A state the sweep does not generate (e.g. a torn choice in an epoch with
 * no multi-sector write) falls back to the prefix model; a recovery cut past
 * the replay's writes is skipped.  Inputs without byte 0 bit 7 run exactly
 * as before the schedule existed.
 *
 * After a fault fired, epochs are counted as the sweep counts them
 * (harness/epochs.h: a flush-lose drop empties the epoch's pending list),
 * the chosen states are handed over by sweep_eval_choice's export path
 * (on_state) and judged with fault_judge_image on a copy-on-write device
 * over the crash disk; the recovery model, which only the sweep's own judge
 * can run, is judged that way for eio, enospc, flush and enomem, and falls
 * back to the prefix model for short and flush-lose (the harness judge does
 * not know a failed discard's torn zero fill).  The final image (everything
 * the run wrote) is judged too.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "faults/cowdisk.h"
#include "faults/judge.h"
#include "faults/liverun.h"
#include "faults/plan.h"
#include "faults/schedule.h"
#include "fuzz_common.h"
#include "fuzz_target.h"
#include "harness/epochs.h"
#include "harness/sweep.h"
#include "harness/workload.h"
#include "vhdx/vhdx.h"

#define HDR_BYTES 16u
#define HDR_FAULTS 0x80u /* header byte 0: a fault schedule follows the header */
#define MAX_OPS 48u
#define BURST_MAX 64u /* allocate+discard pairs of one burst record */
#define REORDER_MAX 12u
#define WIDE_SECTORS 1024u    /* wide data sample of a state judged with the fault oracle */
/* The crash models header byte 2 chooses from: CRASH_MODEL_LIST up to
 * recovery, the ones make_choice builds; a model added to the list later
 * leaves the inputs' meaning alone. */
#define CHOICE_MODELS (M_RECOVERY + 1)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    return 0;
}

/* Turns the header bytes into a choice the sweep generates for this epoch. */
static void make_choice(const uint8_t *hd, const struct trace *t, const struct trace_epoch *ev, uint32_t epoch,
                        struct crash_choice *c)
{
    memset(c, 0, sizeof *c);
    c->epoch = epoch;
    uint32_t n = ev->pending, idx = vhdx_get16(hd + 6);
    enum crash_model m = (enum crash_model)(hd[2] % CHOICE_MODELS);
    if (m == M_REORDER) {
        uint64_t mask = vhdx_get64(hd + 8);
        if (n >= 2 && n <= REORDER_MAX) {
            mask &= (UINT64_C(1) << n) - 1;
            /* the sweep leaves empty, full and prefix subsets to other models */
            uint32_t j = 0;
            while (j < n && (mask >> j & 1))
                j++;
            int prefix = (mask >> j) == 0;
            if (!prefix) {
                c->model = M_REORDER;
                c->subset[0] = mask;
                return;
            }
        }
        m = M_PREFIX;
    }
    if (m == M_TORN) {
        uint32_t gran = (hd[3] & 8) ? 4096 : 512;
        for (uint32_t k = 0; k < n; k++) {
            uint32_t w = (idx + k) % n;
            const struct trace_op *op = trace_epoch_pending_op(t, ev, w);
            if (op && op->kind == TR_WRITE && (op->len + gran - 1) / gran >= 2) {
                c->model = M_TORN;
                c->index = w;
                c->gran = gran;
                c->pattern = (hd[3] & 7) % 7;
                return;
            }
        }
        m = M_PREFIX;
    }
    if (m == M_STALE) {
        /* Valid indexes: after the first truncate that grows the file. */
        uint32_t first = UINT32_MAX, k = 0;
        uint64_t size = ev->size; /* the durable size the pending list starts from */
        for (k = 0; k < n; k++) {
            const struct trace_op *op = trace_epoch_pending_op(t, ev, k);
            if (op->kind == TR_TRUNCATE) {
                if (op->off > size && first == UINT32_MAX)
                    first = k;
                size = op->off;
            }
        }
        if (first != UINT32_MAX && first + 1 <= n) {
            c->model = M_STALE;
            c->index = first + 1 + idx % (n - first);
            return;
        }
        m = M_PREFIX;
    }
    if (m == M_RECOVERY) {
        c->model = M_RECOVERY;
        c->pattern = (hd[3] >> 4) & 1;
        if (n == 0)
            c->pattern = 1;
        c->index = 1 + idx % 16;
        return;
    }
    if (m == M_DROP) {
        c->model = M_DROP;
        return;
    }
    if (n == 0) {
        c->model = M_DROP;
        return;
    }
    c->model = M_PREFIX;
    c->index = 1 + idx % n;
}

/* ---- the run with a fault schedule -------------------------------------------------- */
/* faults/liverun.h runs the workload with the plan armed and judges the live
 * handle, which the workload runner hands it (workload_run_opts.on_handle). */
#define LIVE_FINAL_PROBES 64u /* sectors read through the live handle before the final close */

/* Runs w with r's plan armed (or counting only) into t (initialised here);
 * a live violation is a failure of the target. */
static void run_faulted(struct fault_run *r, const char *plan_text, const struct workload *w, struct trace *t)
{
    r->strict = 1; /* nothing fails before the fault */
    r->live = !r->count_only;
    r->final_probes = LIVE_FINAL_PROBES;
    char err[600];
    FUZZ_CHECK(fault_run_workload(r, w, t, err, sizeof err) == 0, "%s", err);
    if (!r->live_v.ok)
        fuzz_fail(__FILE__, __LINE__, "the engine handles the fault", "%s: plan %s (first fired in op %ld), "
                  "workload of %zu ops (apply_every %u, %" PRIu64 " MiB disk), %s", r->live_v.invariant, plan_text,
                  r->fired_op, w->n, w->p.apply_every, w->p.virtual_size >> 20, r->live_v.detail);
}

/* Calls of the plan's points the workload makes without faults. */
static uint64_t count_calls(const struct workload *w, const struct fault_plan *p)
{
    struct fault_run r;
    memset(&r, 0, sizeof r);
    r.count_only = 1;
    r.plan = *p;
    struct trace t;
    run_faulted(&r, "(counting run)", w, &t);
    trace_free(&t);
    const struct fault_stats *st = fault_get_stats();
    uint64_t n = 0;
    for (int i = 0; i < FP_COUNT; i++)
        if (fault_plan_points(p) & (1u << i))
            n += st->calls[i];
    return n;
}

/* A state handed over by the sweep's export path, judged with the fault oracle. */
struct fstate {
    struct oracle oracle; /* oracle_build of the trace */
    uint64_t salt;        /* sampling / GUID seed */
    int called;           /* on_state ran */
    struct verdict v;     /* its verdict */
};

static uint64_t choice_hash(const struct crash_choice *c, uint64_t salt)
{
    uint64_t h = salt ^ UINT64_C(0xFA017F022);
    h ^= (uint64_t)c->model << 56 ^ (uint64_t)c->epoch << 24 ^ c->index;
    h = fuzz_mix64(&h) ^ ((uint64_t)c->gran << 32 | c->pattern) ^ c->subset[0];
    return fuzz_mix64(&h);
}

static int fault_state(void *ctx, const struct crash_choice *c, uint64_t cut, struct crashdisk *cd)
{
    struct fstate *f = ctx;
    struct cowdisk cow;
    cowdisk_init_crashdisk(&cow, cd);
    cow.record = 0; /* the judge's own session: nothing to materialize */
    struct fault_judge_cfg jc = {8, 16, WIDE_SECTORS, 0, NULL, cd};
    fault_judge_image(cowdisk_bdev(&cow), &f->oracle, cut, choice_hash(c, f->salt), &jc, &f->v);
    cowdisk_free(&cow);
    f->called = 1;
    return 1; /* the one state wanted */
}

/* Judges state c of a fault trace with the fault oracle.  Returns 0 (verdict
 * in f->v) or -ENOENT when the sweep does not generate c. */
static int judge_fault_state(const struct trace *t, const struct sweep_config *base, struct fstate *f,
                             const struct crash_choice *c)
{
    struct sweep_config cfg = *base;
    cfg.on_state = fault_state; /* sweep_eval_choice hands the state over instead of judging it */
    cfg.ctx = f;
    f->called = 0;
    struct verdict unused;
    memset(&unused, 0, sizeof unused);
    int rc = sweep_eval_choice(t, &cfg, c, &unused);
    FUZZ_CHECK(rc == 0 || rc == -ENOENT, "sweep_eval_choice failed: %d", rc);
    return f->called ? 0 : -ENOENT;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t hd[HDR_BYTES];
    memset(hd, 0, sizeof hd);
    memcpy(hd, data, size < sizeof hd ? size : sizeof hd);
    /* The fault schedule (header byte 0 bit 7): FAULT_SCHEDULE_BYTES after the header. */
    const int flagged = (hd[0] & HDR_FAULTS) != 0;
    uint8_t fs[FAULT_SCHEDULE_BYTES];
    memset(fs, 0, sizeof fs);
    if (flagged && size > HDR_BYTES)
        memcpy(fs, data + HDR_BYTES, size - HDR_BYTES < sizeof fs ? size - HDR_BYTES : sizeof fs);
    struct fault_plan plan;
    const int scheduled = flagged && fault_schedule_decode(fs, sizeof fs, FK_ALL, 0, &plan);
    const size_t ops_at = HDR_BYTES + (flagged ? FAULT_SCHEDULE_BYTES : 0);

    struct workload w;
    memset(&w, 0, sizeof w);
    snprintf(w.p.scenario, sizeof w.p.scenario, "mixed");
    w.p.seed = vhdx_get64(hd + 8);
    static const uint64_t sizes[4] = {4u << 20, 16u << 20, UINT64_C(1) << 30, UINT64_C(4) << 30};
    w.p.virtual_size = sizes[hd[1] & 3]; /* 1 and 4 GiB: the BAT spans several log pages */
    w.p.block_size = 1u << 20;
    w.p.logical_sector = (hd[1] & 4) ? 4096 : 512;
    w.p.physical_sector = 4096;
    w.p.log_size = 1u << 20;
    w.p.apply_every = 1u + (hd[0] & 7);
    char err[256];
    FUZZ_CHECK(workload_params_resolve(&w.p, err, sizeof err) == 0, "parameters: %s", err);

    /* Records, plus the operations bursts expand into. */
    static struct vop ops[MAX_OPS * (1 + 2 * BURST_MAX)];
    size_t n = 0, records = 0;
    uint32_t id = 0;
    const uint64_t lsec = w.p.logical_sector, units = w.p.virtual_size / lsec;
    const uint64_t block_units = w.p.block_size / lsec, blocks = units / block_units;
    for (size_t p = ops_at; p + 4 <= size && records < MAX_OPS; p += 4, records++) {
        const uint8_t *b = data + p;
        if (b[0] >= 0xF8) {
            /* A burst: allocate and discard a block again and again, one log
             * entry each, so the ring fills and wraps (1 MiB holds about 128). */
            uint32_t pairs = 8u * (1u + (b[0] & 7)); /* 8 .. 64 */
            uint64_t blk = ((uint64_t)b[1] << 8 | b[2]) % blocks;
            for (uint32_t k = 0; k < pairs; k++) {
                ops[n++] = (struct vop){VOP_WRITE, blk * block_units * lsec, lsec * (1 + b[3] % 8), ++id};
                ops[n++] = (struct vop){VOP_DISCARD, blk * block_units * lsec, (uint64_t)w.p.block_size, 0};
            }
            continue;
        }
        struct vop *o = &ops[n++];
        memset(o, 0, sizeof *o);
        /* 65536 offsets spread over the whole disk, on logical sectors */
        uint64_t off = ((uint64_t)b[1] << 8 | b[2]) * (units >> 16 ? units >> 16 : 1) % units, len = 1 + (uint64_t)b[3];
        if (off + len > units)
            len = units - off;
        switch (b[0] % 8) {
        case 4: o->kind = VOP_FLUSH; break;
        case 5: o->kind = VOP_DISCARD; break;
        case 6: o->kind = VOP_REOPEN; break;
        case 7: o->kind = VOP_APPLY; break;
        default: o->kind = VOP_WRITE; o->id = ++id; break;
        }
        if (o->kind == VOP_WRITE || o->kind == VOP_DISCARD) {
            o->voff = off * lsec;
            o->vlen = len * lsec;
        }
    }
    w.ops = ops;
    w.n = n;

    /* Record the trace: plainly, or with the schedule's fault (a counting run
     * first tells how many calls its points get, so nth always lands). */
    struct trace t;
    struct fault_run r;
    memset(&r, 0, sizeof r);
    char plan_text[128] = "";
    int fired = 0;
    uint64_t calls = 0;
    if (scheduled && fault_supported() && (calls = count_calls(&w, &plan)) > 0) {
        fault_schedule_decode(fs, sizeof fs, FK_ALL, calls, &plan);
        r.plan = plan;
        fault_plan_format(&plan, plan_text, sizeof plan_text);
        r.rng = w.p.seed ^ UINT64_C(0x11FE);
        run_faulted(&r, plan_text, &w, &t);
        fired = r.fired;
    } else {
        trace_init(&t);
        int rc = workload_run(&w, &t, err, sizeof err);
        FUZZ_CHECK(rc == 0, "the workload failed on a healthy disk: %s", err);
    }
    char fault_note[200] = "";
    if (fired)
        snprintf(fault_note, sizeof fault_note, "fault plan %s (of %" PRIu64 " calls; first fired in op %ld), ",
                 plan_text, calls, r.fired_op);

    struct trace_epochs ep; /* as the sweep counts them (harness/epochs.h) */
    FUZZ_CHECK(trace_epochs_build(&t, &ep) == 0, "out of memory indexing the trace's epochs");
    struct sweep_config cfg;
    sweep_config_defaults(&cfg);
    cfg.seed = vhdx_get64(hd + 8);
    cfg.reorder_max = REORDER_MAX;
    cfg.full_every = 1; /* judge every written sector */
    cfg.full_max = 0;
    cfg.quiet = 1;

    /* After a fault: the fault oracle, and the final image first. */
    struct fstate f;
    memset(&f, 0, sizeof f);
    struct crash_choice final_c;
    memset(&final_c, 0, sizeof final_c);
    if (fired) {
        FUZZ_CHECK(oracle_build(&f.oracle, &t) == 0, "cannot build the oracle of the fault trace");
        f.salt = cfg.seed;
        const struct trace_epoch *last = &ep.e[ep.n - 1];
        final_c.epoch = ep.n - 1;
        final_c.model = last->pending ? M_PREFIX : M_DROP;
        final_c.index = last->pending;
        int rc = judge_fault_state(&t, &cfg, &f, &final_c);
        FUZZ_CHECK(rc == 0, "the sweep did not hand over the final state (does sweep_eval_choice still call on_state?)");
        if (fuzz_verbose())
            fprintf(stderr, "fuzz_crash_schedule: %s%zu ops, %zu trace ops; final image: %s\n", fault_note, n,
                    t.n_ops, f.v.ok ? "ok" : f.v.invariant);
        if (!f.v.ok)
            fuzz_fail(__FILE__, __LINE__, "the fault oracle holds", "%sworkload of %zu ops (apply_every %u, %" PRIu64
                      " MiB disk): the final image: %s\n%s", fault_note, n, w.p.apply_every, w.p.virtual_size >> 20,
                      f.v.invariant, f.v.detail);
    }

    /* The same choice in 1 to 4 consecutive epochs (header byte 3, bits 5-6):
     * a workload costs more to record than one state costs to judge. */
    const uint32_t span = 1u + ((hd[3] >> 5) & 3);
    for (uint32_t k = 0; k < span; k++) {
        uint32_t sel = (uint32_t)vhdx_get16(hd + 4) + k;
        if (k > 0 && sel % ep.n == (uint32_t)vhdx_get16(hd + 4) % ep.n)
            break; /* wrapped around: every epoch done */
        const struct trace_epoch *ev = &ep.e[sel % ep.n];
        struct crash_choice c;
        make_choice(hd, &t, ev, sel % ep.n, &c);
        if (fired && c.model == M_RECOVERY && (plan.kind == FK_SHORT || plan.kind == FK_FLUSH_LOSE)) {
            /* Only the sweep's own judge runs the recovery model, and its
             * oracle does not know every effect of these kinds. */
            uint32_t np = ev->pending;
            c.model = np ? M_PREFIX : M_DROP;
            c.index = np ? 1 + vhdx_get16(hd + 6) % np : 0;
            c.pattern = 0;
        }
        struct verdict v;
        memset(&v, 0, sizeof v);
        int rc;
        const int fault_judged = fired && c.model != M_RECOVERY;
        if (fault_judged) {
            if (!memcmp(&c, &final_c, sizeof c))
                continue; /* judged above */
            rc = judge_fault_state(&t, &cfg, &f, &c);
            v = f.v;
        } else {
            rc = sweep_eval_choice(&t, &cfg, &c, &v);
            /* A recovery cut lands on a flush or a mark of the replay's trace a
             * third of the time: the next few cuts are the nearest real states. */
            for (int q = 0; q < 3 && rc == -ENOENT && c.model == M_RECOVERY; q++) {
                c.index++;
                rc = sweep_eval_choice(&t, &cfg, &c, &v);
            }
        }
        if (fuzz_verbose()) {
            char desc[256];
            crash_choice_format(&c, desc, sizeof desc);
            fprintf(stderr, "fuzz_crash_schedule: %s%zu ops, %zu trace ops, %u epochs, %u pending; %s (%s): %s\n",
                    fault_note, n, t.n_ops, ep.n, ev->pending, desc,
                    fault_judged ? "fault oracle" : "harness oracle",
                    rc == -ENOENT ? "not generated (skipped)" : rc ? "harness error" : v.ok ? "ok" : v.invariant);
        }
        if (rc == -ENOENT)
            continue; /* a recovery cut past the replay's writes, or no replay at all */
        FUZZ_CHECK(rc == 0, "sweep_eval_choice failed: %d", rc);
        if (!v.ok) {
            char desc[256];
            crash_choice_format(&c, desc, sizeof desc);
            fuzz_fail(__FILE__, __LINE__, fault_judged ? "the fault oracle holds" : "the oracle holds",
                      "%sworkload of %zu ops (apply_every %u, %" PRIu64 " MiB disk): %s at cut %" PRIu64 ": %s\n%s",
                      fault_note, n, w.p.apply_every, w.p.virtual_size >> 20, desc, v.cut, v.invariant, v.detail);
        }
    }
    if (fired)
        oracle_free(&f.oracle);
    trace_epochs_free(&ep);
    trace_free(&t);
    return 0;
}
