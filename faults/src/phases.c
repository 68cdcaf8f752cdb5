/*
 * phases.c - the fault sweep's three phases (fsweep.h): run (the workload
 * with the plan armed, then the crash states after the fault), replay
 * (opening crash images with the plan armed) and create.
 */
#define _GNU_SOURCE
#include "faults/fsweep.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faults/cowdisk.h"
#include "faults/judge.h"
#include "harness/epochs.h"
#include "harness/sdata.h"
#include "harness/toolutil.h"
#include "ref/ref.h"
#include "vhdx/vhdx.h"

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        fsweep_die("out of memory");
    return p;
}

/* ---- phase run: the crash states after a fault ------------------------------------ */
/* Is prefix state i of an epoch with n pending ops among `cap` evenly spaced picks? */
static int spaced_pick(uint32_t i, uint32_t n, uint32_t cap)
{
    if (n <= cap)
        return 1;
    for (uint32_t j = 1; j <= cap; j++)
        if ((uint32_t)(((uint64_t)j * n + cap / 2) / cap) == i)
            return 1;
    return 0;
}

static uint64_t choice_hash(const struct crash_choice *c, uint64_t salt)
{
    return crash_choice_hash(c, salt ^ 0xFA017);
}

struct after {
    struct fsweep *S;         /* results */
    const struct fault_plan *plan; /* the plan that fired */
    const struct trace *t;    /* the trace recorded with it */
    struct oracle oracle;     /* its oracle (fault rules) */
    struct trace_epochs ep;   /* its epochs (harness/epochs.h) */
    uint32_t fe, fidx;        /* epoch and pending index of the first injection */
    uint32_t window;          /* epochs after fe to judge */
    const struct crash_choice *only; /* repro: judge only this state */
    int found;                /* repro: it was generated */
    struct verdict only_v;    /* repro: its verdict */
    uint64_t judged;          /* states judged */
};

static int after_state(void *ctx, const struct crash_choice *c, uint64_t cut, struct crashdisk *cd)
{
    struct after *a = ctx;
    if (a->only) {
        if (!crash_choice_equal(c, a->only))
            return 0;
    } else {
        if (a->S->stop)
            return 1;
        uint32_t last = a->ep.n - 1;
        int final = c->epoch == last && ((c->model == M_PREFIX && c->index == a->ep.e[last].pending) ||
                                         (c->model == M_DROP && a->ep.e[last].pending == 0));
        int in_window = c->epoch >= a->fe && c->epoch <= a->fe + a->window;
        if (!final && !in_window)
            return 0;
        if (!final) {
            uint32_t cap = a->S->o->cut_states;
            if (c->model == M_PREFIX) {
                int near = c->epoch == a->fe && c->index >= a->fidx && c->index <= a->fidx + 1;
                if (!near && !spaced_pick(c->index, a->ep.e[c->epoch].pending, cap))
                    return 0;
            } else if (c->model != M_DROP) {
                if (choice_hash(c, 7) % 8 != 0) /* sampled: the other models make many states per epoch */
                    return 0;
            }
        }
    }
    struct cowdisk cow;
    cowdisk_init_crashdisk(&cow, cd);
    cow.record = 0;
    struct fault_judge_cfg cfg = {8, 16, c->epoch == a->ep.n - 1 ? 512 : 0, 0, a->S->o->subj, cd};
    struct verdict v;
    fault_judge_image(cowdisk_bdev(&cow), &a->oracle, cut, choice_hash(c, a->t->seed), &cfg, &v);
    cowdisk_free(&cow);
    a->judged++;
    if (a->only) {
        a->found = 1;
        a->only_v = v;
        return 1;
    }
    a->S->st[PH_RUN][a->plan->kind][a->plan->mode].states++;
    if (!v.ok)
        fsweep_violation(a->S, PH_RUN, a->plan, a->t, c, NULL, &v);
    return fsweep_limits_hit(a->S);
}

/* Sweeps the crash states after the fault in trace t (or only `only`). */
void fsweep_judge_after(struct fsweep *S, const struct fault_plan *plan, const struct trace *t, uint64_t fired_pos,
                        const struct crash_choice *only, struct verdict *only_v, int *found)
{
    struct after a;
    memset(&a, 0, sizeof a);
    a.S = S;
    a.plan = plan;
    a.t = t;
    a.window = S->o->window;
    a.only = only;
    if (oracle_build(&a.oracle, t) != 0)
        fsweep_die("cannot build the oracle of a fault trace");
    if (trace_epochs_build(t, &a.ep) != 0)
        fsweep_die("out of memory");
    trace_epochs_locate(t, &a.ep, fired_pos, &a.fe, &a.fidx);
    struct sweep_config sc;
    sweep_config_defaults(&sc);
    sc.subject = S->o->subj;
    sc.models = only ? 1u << only->model : S->o->cut_models;
    sc.quiet = 1;
    sc.seed = 1;
    sc.on_state = after_state;
    sc.ctx = &a;
    struct sweep_stats st;
    int rc = sweep_run(t, &sc, &st);
    if (rc != 0)
        fsweep_die("sweeping the crash states after a fault failed: %s", strerror(-rc));
    if (only) {
        *found = a.found;
        if (a.found)
            *only_v = a.only_v;
    }
    trace_epochs_free(&a.ep);
    oracle_free(&a.oracle);
}

/* One plan in phase run: run, live checks, crash states after the fault. */
void fsweep_run_plan(struct fsweep *S, const struct workload *w, const struct fault_plan *plan, int judge_states)
{
    struct kstat *ks = &S->st[PH_RUN][plan->kind][plan->mode];
    double t0 = tool_now();
    struct fault_run r;
    struct trace t;
    fsweep_run_armed(S, w, plan, &r, &t);
    const struct fault_stats *fs = fault_get_stats();
    ks->plans++;
    if (!r.fired) {
        ks->not_reached++;
    } else {
        ks->injected++;
        ks->injections += fs->injected;
        for (int p = 0; p < FP_COUNT; p++)
            S->point_injected[p] += fs->injected_per_point[p];
        if (!r.live_v.ok)
            fsweep_violation(S, PH_RUN, plan, &t, NULL, NULL, &r.live_v);
        uint64_t before = S->violations;
        if (judge_states && !S->stop)
            fsweep_judge_after(S, plan, &t, r.fired_pos, NULL, NULL, NULL);
        if (r.live_v.ok && S->violations == before)
            fsweep_keep_passing(S, PH_RUN, plan, &t, NULL, NULL);
    }
    trace_free(&t);
    ks->seconds += tool_now() - t0;
    fsweep_context[0] = '\0';
}

/* ---- phase replay: faults while a crash image is opened ----------------------------- */
struct replay_sel {
    struct fsweep *S;            /* results */
    const struct trace *t;       /* the clean trace */
    struct crash_choice *cand;   /* states whose header names a log (last prefix state per epoch) */
    size_t n, cap;
    struct crash_choice *pick;   /* chosen ones */
    size_t npick;
    struct oracle oracle;        /* of the clean trace */
    const struct fault_plan *one_plan; /* run/repro: only this plan ... */
    const char *one_post;        /* ... and only this post-cut image ("all"/"durable"), NULL = both */
    struct verdict one_v;        /* its verdict */
    int one_found, one_fired;    /* the state was generated; the fault fired */
};

/* Does the current header name a log?  (the reference's decoders) */
static int header_names_log(struct crashdisk *cd)
{
    uint8_t b[4096];
    struct ref_header h[2];
    for (int i = 0; i < 2; i++) {
        if (crashdisk_read(cd, b, sizeof b, i ? 128 * 1024 : 64 * 1024) != 0)
            return 0;
        ref_header_decode(b, &h[i]);
    }
    int cur = ref_header_current(h);
    if (cur < 0)
        return 0;
    static const uint8_t zero[16];
    return memcmp(h[cur].log_guid, zero, 16) != 0;
}

static int collect_state(void *ctx, const struct crash_choice *c, uint64_t cut, struct crashdisk *cd)
{
    (void)cut;
    struct replay_sel *rs = ctx;
    if (c->model != M_PREFIX || !header_names_log(cd))
        return 0;
    if (rs->n == rs->cap) {
        rs->cap = rs->cap ? rs->cap * 2 : 64;
        rs->cand = realloc(rs->cand, rs->cap * sizeof *rs->cand);
        if (!rs->cand)
            fsweep_die("out of memory");
    }
    /* Keep only the last prefix state of each epoch (all pending writes persisted). */
    if (rs->n && rs->cand[rs->n - 1].epoch == c->epoch)
        rs->cand[rs->n - 1] = *c;
    else
        rs->cand[rs->n++] = *c;
    return 0;
}

static int open_close(const struct subject_ops *subj, struct bdev *dev, uint64_t hash, int *open_rc,
                      uint64_t *inj_open)
{
    uint64_t rng = hash | 1;
    struct subject_handle *h = NULL;
    *open_rc = subj->open(dev, 0, &rng, 0, &h);
    *inj_open = fault_get_stats()->injected;
    return *open_rc == 0 ? subj->close(h) : 0;
}

/* Records the device writes/truncates made before the first injection. */
struct replay_watch {
    struct cowdisk *c;           /* the device of the faulty open */
    uint64_t changes_at_fire;    /* its writes + truncates at the first injection */
    int fired;                   /* an injection happened */
};

static void replay_inject(void *ctx, enum fault_point p)
{
    (void)p;
    struct replay_watch *rw = ctx;
    if (!rw->fired) {
        rw->fired = 1;
        rw->changes_at_fire = rw->c->writes + rw->c->truncates;
    }
}

/* One replay plan on the state in cd.  Returns 1 when the fault fired. */
static int replay_plan(struct replay_sel *rs, const struct crash_choice *c, uint64_t cut, struct crashdisk *cd,
                       const struct fault_plan *plan)
{
    struct fsweep *S = rs->S;
    struct kstat *ks = &S->st[PH_REPLAY][plan->kind][plan->mode];
    double t0 = tool_now();
    char st[96];
    snprintf(st, sizeof st, "%s:%u:%u", crash_model_names[c->model], c->epoch, c->index);
    fsweep_plan_context(S, PH_REPLAY, plan, st);
    uint64_t hash = choice_hash(c, rs->t->seed);
    struct cowdisk c1;
    cowdisk_init_crashdisk(&c1, cd);
    struct replay_watch rw = {&c1, 0, 0};
    fault_set_inject_hook(replay_inject, &rw);
    if (fault_arm(plan) != 0)
        fsweep_die("cannot arm a replay fault plan");
    int open_rc;
    uint64_t inj_open;
    int close_rc = open_close(S->o->subj, cowdisk_bdev(&c1), hash, &open_rc, &inj_open);
    uint64_t inj_total = fault_get_stats()->injected;
    fault_disarm();
    fault_set_inject_hook(NULL, NULL);
    ks->plans++;
    int fired = inj_total > 0;
    if (!fired) {
        ks->not_reached++;
        cowdisk_free(&c1);
        ks->seconds += tool_now() - t0;
        return 0;
    }
    ks->injected++;
    ks->injections += inj_total;
    struct verdict v;
    verdict_init(&v, cut);
    v.open_rc = open_rc;
    if (inj_open && open_rc == 0)
        verdict_fail_named(&v, "fault-not-reported", "opening the crash image succeeded although %" PRIu64
                           " injected fault(s) fired during the open", inj_open);
    else if (inj_total > inj_open && close_rc == 0)
        verdict_fail_named(&v, "fault-not-reported", "closing the replayed image succeeded although %" PRIu64
                           " injected fault(s) fired during the close", inj_total - inj_open);
    else if (open_rc != 0 && rw.changes_at_fire == 0 && plan->kind != FK_SHORT && c1.writes + c1.truncates)
        verdict_fail_named(&v, "refused-open-wrote", "the open failed (%s) at a fault that struck before its first "
                           "write, yet it wrote %" PRIu64 " time(s) afterwards", vhdx_errname(open_rc),
                           c1.writes + c1.truncates);
    if (!v.ok) {
        if (rs->one_plan) {
            rs->one_v = v;
            rs->one_found = 1;
        } else {
            fsweep_violation(S, PH_REPLAY, plan, rs->t, c, NULL, &v);
        }
    } else if (c1.writes + c1.truncates > 0) {
        /* Power cut: everything the session wrote survived, or only what a flush made durable. */
        static const char *const posts[2] = {"all", "durable"};
        struct cowdisk img[2];
        size_t upto[2] = {c1.n_ops, c1.durable};
        for (int i = 0; i < 2; i++) {
            cowdisk_init_crashdisk(&img[i], cd);
            img[i].record = 0;
            if (cowdisk_materialize(&img[i], &c1, upto[i]) != 0)
                fsweep_die("out of memory building a post-cut image");
        }
        for (int i = 0; i < 2; i++) {
            if (i == 1 && upto[1] == upto[0])
                continue;
            if (rs->one_post && strcmp(rs->one_post, posts[i]) != 0)
                continue;
            struct fault_judge_cfg cfg = {8, 16, 0, 0, S->o->subj, NULL}; /* img[i] holds writes: read through it */
            struct verdict pv;
            fault_judge_image(cowdisk_bdev(&img[i]), &rs->oracle, cut, hash ^ (uint64_t)i, &cfg, &pv);
            ks->states++;
            if (rs->one_plan) {
                if (!rs->one_found || (rs->one_v.ok && !pv.ok)) {
                    rs->one_v = pv;
                    rs->one_found = 1;
                }
            } else if (!pv.ok) {
                fsweep_violation(S, PH_REPLAY, plan, rs->t, c, posts[i], &pv);
            }
        }
        cowdisk_free(&img[0]);
        cowdisk_free(&img[1]);
    }
    if (!rs->one_plan && v.ok && c1.writes + c1.truncates > 0)
        fsweep_keep_passing(S, PH_REPLAY, plan, rs->t, c, NULL);
    if (rs->one_plan && !rs->one_found) {
        rs->one_v = v; /* nothing written: the image is the crash state itself */
        rs->one_found = 1;
    }
    cowdisk_free(&c1);
    ks->seconds += tool_now() - t0;
    fsweep_context[0] = '\0';
    return 1;
}

/* One state of the replay phase, for fsweep_each_plan. */
struct replay_one {
    struct replay_sel *rs;
    const struct crash_choice *c;
    uint64_t cut;
    struct crashdisk *cd;
};

static void replay_one_plan(struct fsweep *S, const struct fault_plan *plan, void *ctx)
{
    struct replay_one *o = ctx;
    replay_plan(o->rs, o->c, o->cut, o->cd, plan);
    fsweep_progress(S, "replay", 0);
}

static int replay_state(void *ctx, const struct crash_choice *c, uint64_t cut, struct crashdisk *cd)
{
    struct replay_sel *rs = ctx;
    struct fsweep *S = rs->S;
    int hit = 0;
    for (size_t i = 0; i < rs->npick; i++)
        hit |= crash_choice_equal(c, &rs->pick[i]);
    if (!hit)
        return 0;
    if (rs->one_plan) {
        rs->one_fired = replay_plan(rs, c, cut, cd, rs->one_plan);
        return 1;
    }
    /* Count the calls the open (and close) of this state makes. */
    struct cowdisk c0;
    cowdisk_init_crashdisk(&c0, cd);
    if (fault_count_start() != 0)
        fsweep_die("cannot count fault points");
    int open_rc;
    uint64_t inj;
    open_close(S->o->subj, cowdisk_bdev(&c0), choice_hash(c, rs->t->seed), &open_rc, &inj);
    struct fault_stats cnt = *fault_get_stats();
    fault_disarm();
    cowdisk_free(&c0);
    for (int p = 0; p < FP_COUNT; p++)
        S->point_calls[PH_REPLAY][p] += cnt.calls[p];
    struct replay_one one = {rs, c, cut, cd};
    fsweep_each_plan(S, &cnt, replay_one_plan, &one);
    return S->stop;
}

/* Phase replay for one clean trace: choose states, then fail every call of their opens. */
void fsweep_replay(struct fsweep *S, const struct trace *t, const struct fault_plan *one,
                   const struct crash_choice *one_state, const char *one_post, struct fsweep_one *out)
{
    struct replay_sel rs;
    memset(&rs, 0, sizeof rs);
    rs.S = S;
    rs.t = t;
    rs.one_plan = one;
    rs.one_post = one_post;
    if (oracle_build(&rs.oracle, t) != 0)
        fsweep_die("cannot build the oracle");
    struct sweep_config sc;
    sweep_config_defaults(&sc);
    sc.subject = S->o->subj;
    sc.quiet = 1;
    sc.seed = 1;
    struct sweep_stats st;
    if (one_state) {
        rs.pick = xcalloc(1, sizeof *rs.pick);
        rs.pick[0] = *one_state;
        rs.npick = 1;
    } else {
        sc.models = 1u << M_PREFIX;
        sc.on_state = collect_state;
        sc.ctx = &rs;
        if (sweep_run(t, &sc, &st) != 0)
            fsweep_die("selecting crash states failed");
        uint32_t want = S->o->replay_states;
        rs.pick = xcalloc(want ? want : 1, sizeof *rs.pick);
        for (uint32_t i = 0; i < want && rs.n; i++) {
            size_t idx = rs.n <= want ? i : (size_t)(((uint64_t)(2 * i + 1) * rs.n) / (2 * want));
            if (idx >= rs.n)
                break;
            rs.pick[rs.npick++] = rs.cand[idx];
        }
    }
    sc.models = one_state ? 1u << one_state->model : 1u << M_PREFIX;
    sc.on_state = replay_state;
    sc.ctx = &rs;
    if (rs.npick && sweep_run(t, &sc, &st) != 0)
        fsweep_die("the replay phase's sweep failed");
    if (out) {
        out->v = rs.one_v;
        out->found = rs.one_found;
        out->fired = rs.one_fired;
    }
    free(rs.cand);
    free(rs.pick);
    oracle_free(&rs.oracle);
}

/* ---- phase create ------------------------------------------------------------------------ */
static int create_image(const struct subject_ops *subj, struct cowdisk *c, const struct workload_params *p)
{
    uint64_t rng = p->seed * UINT64_C(0x2545F4914F6CDD1D) + 1;
    struct subject_create cp = {p->virtual_size, p->block_size, p->log_size, p->logical_sector, p->physical_sector};
    return subj->create(cowdisk_bdev(c), &cp, &rng);
}

/* The image a failed create left: refused with a format error, or a valid empty disk. */
static void judge_created(const struct subject_ops *subj, const struct workload_params *p, struct cowdisk *img,
                          uint64_t hash, struct verdict *v, int *refused)
{
    struct fault_judge_cfg cfg = {0, 0, 0, 1, subj, NULL};
    fault_judge_image(cowdisk_bdev(img), NULL, 0, hash, &cfg, v);
    *refused = v->ok && v->open_rc != 0;
    if (!v->ok || v->open_rc != 0)
        return;
    struct subject_handle *h;
    uint64_t rng = hash;
    if (subj->open(cowdisk_bdev(img), SUBJECT_RDONLY, &rng, 0, &h) != 0) {
        verdict_fail_named(v, "create-image-invalid", "the image opened once, then not read-only");
        return;
    }
    struct subject_info in;
    subj->info(h, &in);
    if (in.virtual_size != p->virtual_size || in.block_size != p->block_size)
        verdict_fail_named(v, "create-image-invalid", "the image opened with virtual size %" PRIu64
                           " and block size %u, not the %" PRIu64 " and %u asked for",
                           in.virtual_size, in.block_size, p->virtual_size, p->block_size);
    uint8_t buf[512];
    for (int i = 0; i < 16 && v->ok; i++) {
        uint64_t off = (fsweep_mix64(hash + (uint64_t)i) % (p->virtual_size / 512)) * 512;
        if (subj->read(h, off, buf, sizeof buf) != 0 || memcmp(buf, SECTOR_ZERO, sizeof buf) != 0)
            verdict_fail_named(v, "create-image-invalid", "virtual offset %" PRIu64 " of the new image does not "
                               "read as zeros", off);
    }
    subj->close(h);
}

int fsweep_create_plan(struct fsweep *S, const struct trace *t0, const struct workload_params *p,
                       const struct fault_plan *plan, struct verdict *one_v)
{
    struct kstat *ks = &S->st[PH_CREATE][plan->kind][plan->mode];
    double tstart = tool_now();
    fsweep_plan_context(S, PH_CREATE, plan, NULL);
    struct cowdisk c1;
    cowdisk_init(&c1, NULL, NULL, 0);
    if (fault_arm(plan) != 0)
        fsweep_die("cannot arm a create fault plan");
    int rc = create_image(S->o->subj, &c1, p);
    uint64_t inj = fault_get_stats()->injected;
    fault_disarm();
    ks->plans++;
    if (!inj) {
        ks->not_reached++;
        cowdisk_free(&c1);
        ks->seconds += tool_now() - tstart;
        return 0;
    }
    ks->injected++;
    ks->injections += inj;
    struct verdict v;
    verdict_init(&v, 0);
    if (rc == 0)
        verdict_fail_named(&v, "fault-not-reported", "vhdx_create succeeded although %" PRIu64
                           " injected fault(s) fired", inj);
    static const char *const posts[2] = {"all", "durable"};
    size_t upto[2] = {c1.n_ops, c1.durable};
    for (int i = 0; i < 2 && v.ok; i++) {
        if (i == 1 && upto[1] == upto[0])
            continue;
        struct cowdisk img;
        cowdisk_init(&img, NULL, NULL, 0);
        img.record = 0;
        if (cowdisk_materialize(&img, &c1, upto[i]) != 0)
            fsweep_die("out of memory");
        int refused = 0;
        judge_created(S->o->subj, p, &img, fsweep_mix64(p->seed ^ (uint64_t)i), &v, &refused);
        ks->states++;
        ks->refusals += refused;
        if (refused) {
            int r = 0;
            while (r < S->n_refusal && S->refusal_code[r] != v.open_rc)
                r++;
            if (r == S->n_refusal && r < 16) {
                S->refusal_code[r] = v.open_rc;
                S->refusal_count[r] = 0;
                S->n_refusal++;
            }
            if (r < 16)
                S->refusal_count[r]++;
        }
        if (!v.ok) {
            size_t n = strlen(v.detail);
            snprintf(v.detail + n, sizeof v.detail - n, " (post-cut image: %s)", posts[i]);
        }
        cowdisk_free(&img);
    }
    if (one_v)
        *one_v = v;
    else if (!v.ok)
        fsweep_violation(S, PH_CREATE, plan, t0, NULL, NULL, &v);
    cowdisk_free(&c1);
    ks->seconds += tool_now() - tstart;
    fsweep_context[0] = '\0';
    return 1;
}

/* The create phase's plans, for fsweep_each_plan. */
struct create_one {
    const struct trace *t0;
    const struct workload_params *p;
};

static void create_one_plan(struct fsweep *S, const struct fault_plan *plan, void *ctx)
{
    struct create_one *o = ctx;
    fsweep_create_plan(S, o->t0, o->p, plan, NULL);
    fsweep_progress(S, "create", 0);
}

void fsweep_create(struct fsweep *S, const struct trace *t0, const struct workload_params *p)
{
    struct cowdisk c0;
    cowdisk_init(&c0, NULL, NULL, 0);
    c0.record = 0;
    if (fault_count_start() != 0)
        fsweep_die("cannot count fault points");
    create_image(S->o->subj, &c0, p);
    struct fault_stats cnt = *fault_get_stats();
    fault_disarm();
    cowdisk_free(&c0);
    for (int pt = 0; pt < FP_COUNT; pt++)
        S->point_calls[PH_CREATE][pt] += cnt.calls[pt];
    struct create_one one = {t0, p};
    fsweep_each_plan(S, &cnt, create_one_plan, &one);
}
