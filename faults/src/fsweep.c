/*
 * fsweep.c - the fault sweep's bookkeeping (fsweep.h): plans, limits and
 * shards, violations and their reproducers, the workloads and their clean
 * runs; the phases themselves are phases.c.
 */
#define _GNU_SOURCE
#include "faults/fsweep.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/bufpool.h"
#include "harness/toolutil.h"
#include "vhdx/vhdx.h"

const char *const fault_phase_names[PH_COUNT] = {"run", "replay", "create"};

volatile sig_atomic_t fsweep_interrupted;

/* What is running now, as the command that reproduces it; printed when the
 * process dies of a signal or a sanitizer report. */
char fsweep_context[1024];

void fsweep_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "pcfaults: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(TOOL_EXIT_BAD_USAGE);
}

uint64_t fsweep_mix64(uint64_t x)
{
    x += UINT64_C(0x9E3779B97F4A7C15);
    x = (x ^ (x >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94D049BB133111EB);
    return x ^ (x >> 31);
}

void fsweep_set_context(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fsweep_context, sizeof fsweep_context, fmt, ap);
    va_end(ap);
}

void fsweep_init(struct fsweep *S, const struct fsweep_opts *o, const char *cmd)
{
    bufpool_heap_tune(); /* every plan opens images: keep their large blocks on the heap */
    memset(S, 0, sizeof *S);
    S->o = o;
    S->cmd = cmd;
    S->t0 = tool_now();
    S->tty = isatty(2);
}

/* ---- plans and limits ------------------------------------------------------------------ */
int fsweep_limits_hit(struct fsweep *S)
{
    const struct fsweep_opts *o = S->o;
    if (S->counting)
        return 0;
    if (S->stop)
        return 1;
    if ((o->max_faults && S->plans_run >= o->max_faults) ||
        (o->max_violations && S->violations >= o->max_violations) ||
        (o->max_seconds > 0 && tool_now() - S->t0 >= o->max_seconds) || fsweep_interrupted) {
        S->stop = S->stopped_early = 1;
    }
    return S->stop;
}

/* Should the next plan run here (shard, limits)? */
int fsweep_take_plan(struct fsweep *S)
{
    if (S->counting) {
        if (fsweep_interrupted)
            S->stop = 1; /* a signal while counting: the count is dropped */
        S->plan_index++;
        return 0;
    }
    if (fsweep_limits_hit(S)) {
        if (!S->next_plan_set) {
            S->next_plan = S->plan_index; /* every plan of this shard below it was run */
            S->next_plan_set = 1;
        }
        return 0;
    }
    uint64_t idx = S->plan_index++;
    if (idx < S->o->first_plan || idx % S->o->shard_n != S->o->shard_k)
        return 0;
    S->plans_run++;
    return 1;
}

/* Every deterministic plan the options ask for, given the calls each point
 * got without faults (cnt): for each chosen kind and mode, nth = 1,
 * 1 + stride, ... up to the calls of the kind's points; fsweep_take_plan()
 * skips what belongs to other shards or lies past the limits.  fn runs each
 * plan, until S->stop. */
void fsweep_each_plan(struct fsweep *S, const struct fault_stats *cnt, fsweep_plan_fn fn, void *ctx)
{
    for (int k = 0; k < FK_COUNT && !S->stop; k++) {
        if (!(S->o->kinds & (1u << k)))
            continue;
        uint64_t calls = 0;
        for (int p = 0; p < FP_COUNT; p++)
            if (fault_kind_points((enum fault_kind)k) & (1u << p))
                calls += cnt->calls[p];
        for (int m = 0; m < FM_RANDOM && !S->stop; m++) {
            if (!(S->o->modes & (1u << m)))
                continue;
            for (uint64_t n = 1; n <= calls && !S->stop; n += S->o->stride) {
                if (!fsweep_take_plan(S))
                    continue;
                struct fault_plan plan = {(enum fault_kind)k, (enum fault_mode)m, n, 0, 0, 0};
                fn(S, &plan, ctx);
            }
        }
    }
}

/* Plans a sweep of these workloads enumerates (all shards), without
 * running any: the size of the planned work. */
uint64_t fsweep_count_plans(struct fsweep *S, char names[][32], int nsc)
{
    uint64_t saved_calls[PH_COUNT][FP_COUNT];
    memcpy(saved_calls, S->point_calls, sizeof saved_calls);
    uint64_t idx = S->plan_index;
    int stop = S->stop;
    S->plan_index = 0;
    S->stop = 0;
    S->counting = 1;
    for (int si = 0; si < nsc && !S->stop; si++)
        for (uint64_t k = 0; k < S->o->seeds && !S->stop; k++)
            fsweep_workload(S, names[si], S->o->seed + k);
    S->counting = 0;
    uint64_t total = fsweep_interrupted ? UINT64_MAX : S->plan_index;
    S->plan_index = idx;
    S->stop = stop;
    memcpy(S->point_calls, saved_calls, sizeof saved_calls);
    return total;
}

void fsweep_progress(struct fsweep *S, const char *what, int final)
{
    if (S->o->quiet || !S->tty)
        return;
    double t = tool_now();
    if (!final && t - S->last_progress < 0.5)
        return;
    S->last_progress = t;
    uint64_t inj = 0;
    for (int p = 0; p < PH_COUNT; p++)
        for (int k = 0; k < FK_COUNT; k++)
            for (int m = 0; m < FM_COUNT; m++)
                inj += S->st[p][k][m].injected;
    fprintf(stderr, "\r[faults] %-40.40s plans %" PRIu64 "  injected %" PRIu64 " (%.0f/s)  violations %" PRIu64 "   %s",
            what, S->plans_run, inj, t > S->t0 ? (double)inj / (t - S->t0) : 0.0, S->violations, final ? "\n" : "");
    fflush(stderr);
}

struct kstat fsweep_sum(const struct fsweep *S, int ph, int k, int m)
{
    struct kstat r;
    memset(&r, 0, sizeof r);
    for (int p = 0; p < PH_COUNT; p++)
        for (int kk = 0; kk < FK_COUNT; kk++)
            for (int mm = 0; mm < FM_COUNT; mm++) {
                if ((ph >= 0 && p != ph) || (k >= 0 && kk != k) || (m >= 0 && mm != m))
                    continue;
                const struct kstat *s = &S->st[p][kk][mm];
                r.plans += s->plans;
                r.injected += s->injected;
                r.injections += s->injections;
                r.not_reached += s->not_reached;
                r.violations += s->violations;
                r.states += s->states;
                r.refusals += s->refusals;
                r.seconds += s->seconds;
            }
    return r;
}

/* ---- violations and reproducers ------------------------------------------------------ */
/* Saves a reproducer: the trace, the plan, the phase, and the crash state
 * (if any) as the trace's crash choice. */
static int save_repro(const struct trace *t, const char *path, enum fault_phase ph, const struct fault_plan *plan,
                      const struct crash_choice *ch, const char *post, const struct verdict *v, char *err,
                      size_t errlen)
{
    char pbuf[160];
    fault_plan_format(plan, pbuf, sizeof pbuf);
    const char *extra[] = {"fault.phase", fault_phase_names[ph],
                           "fault.plan", pbuf,
                           "fault.target", ch ? (ph == PH_REPLAY ? "replay" : "state") : "live",
                           "violation.detail", v->detail,
                           post ? "fault.post_cut" : NULL, post,
                           NULL};
    return sweep_save_repro_ex(t, ch, v, extra, path, err, errlen);
}

/* Records a violation under its signature; the first of a signature gets
 * the reproducer (within the disk cap) and is printed. */
void fsweep_violation(struct fsweep *S, enum fault_phase ph, const struct fault_plan *plan, const struct trace *t,
                      const struct crash_choice *ch, const char *post, const struct verdict *v0)
{
    /* the subject's reading of where the plan's fault hit, then its filed
     * departures: a verdict one of them names is counted apart */
    const struct subject_ops *subj = S->o->subj;
    struct verdict vv = *v0;
    const struct verdict *v = &vv;
    if (subj && subj->fault_site) {
        char where[192];
        subj->fault_site(where, sizeof where, 0);
        size_t n = strlen(vv.detail);
        if (where[0] && n + 4 < sizeof vv.detail)
            snprintf(vv.detail + n, sizeof vv.detail - n, " [%s %s]", subj->name, where);
    }
    int k = S->o->strict ? -1 : subject_known_index(subj, v->invariant, v->detail);
    if (k >= 0) {
        S->known++;
        if (k < SUBJECT_KNOWN_MAX)
            S->known_by[k]++;
        return;
    }
    S->violations++;
    S->st[ph][plan->kind][plan->mode].violations++;
    struct failure probe;
    memset(&probe, 0, sizeof probe);
    snprintf(probe.scenario, sizeof probe.scenario, "%s", S->scenario ? S->scenario : "?");
    probe.phase = ph;
    probe.kind = plan->kind;
    snprintf(probe.invariant, sizeof probe.invariant, "%s", v->invariant);
    tool_violation_structure(v, probe.structure, sizeof probe.structure);
    snprintf(probe.key, sizeof probe.key, "%s|%s|%s|%s|%s", probe.invariant, fault_phase_names[ph],
             fault_kind_names[plan->kind], probe.scenario, probe.structure);
    struct failure *f = NULL;
    for (size_t i = 0; i < S->nf && !f; i++)
        if (!strcmp(S->f[i].key, probe.key))
            f = &S->f[i];
    int fresh = !f;
    if (fresh) {
        if (S->nf == S->capf) {
            S->capf = S->capf ? S->capf * 2 : 16;
            S->f = realloc(S->f, S->capf * sizeof *S->f);
            if (!S->f)
                fsweep_die("out of memory");
        }
        f = &S->f[S->nf++];
        *f = probe;
    }
    f->count++;
    if (f->nex < FSWEEP_EXAMPLES) {
        struct example *e = &f->ex[f->nex++];
        e->seed = S->seed;
        fault_plan_format(plan, e->plan, sizeof e->plan);
        if (ch) {
            crash_choice_format(ch, e->state, sizeof e->state);
            if (post) {
                size_t n = strlen(e->state);
                snprintf(e->state + n, sizeof e->state - n, " post-cut=%s", post);
            }
        } else {
            snprintf(e->state, sizeof e->state, "live");
        }
        snprintf(e->detail, sizeof e->detail, "%s", v->detail);
    }
    if (!fresh)
        return;
    if (S->o->repro_dir && t) {
        char err[512], id[13];
        tool_signature_id(f->key, id);
        if (S->repro_bytes >= S->o->max_repro_bytes) {
            snprintf(f->no_repro, sizeof f->no_repro, "disk cap of %" PRIu64 " MiB reached (--max-repro-mb)",
                     S->o->max_repro_bytes >> 20);
        } else {
            snprintf(f->repro, sizeof f->repro, "%s/repro-fault-%s-%s-s%" PRIu64 "-%s-%s-n%" PRIu64 "-%s.pctrace",
                     S->o->repro_dir, fault_phase_names[ph], f->scenario, S->seed, fault_kind_names[plan->kind],
                     fault_mode_names[plan->mode], plan->mode == FM_RANDOM ? (uint64_t)plan->seed : plan->nth, id);
            if (save_repro(t, f->repro, ph, plan, ch, post, v, err, sizeof err) != 0) {
                fprintf(stderr, "pcfaults: cannot save reproducer: %s\n", err);
                f->repro[0] = '\0';
                snprintf(f->no_repro, sizeof f->no_repro, "could not be saved");
            } else {
                S->repro_bytes += tool_file_bytes(f->repro);
            }
        }
    }
    if (S->nf <= 20) {
        fprintf(stderr, "%sVIOLATION [%s] %s seed %" PRIu64 " phase %s, %s, %s\n  %s\n", S->tty ? "\n" : "",
                v->invariant, f->scenario, S->seed, fault_phase_names[ph], f->ex[0].plan, f->ex[0].state, v->detail);
        fprintf(stderr, "  signature: %s (further plans with it are counted, not printed)\n", f->key);
        if (f->repro[0])
            fprintf(stderr, "  reproducer: %s\n", f->repro);
        else if (f->no_repro[0])
            fprintf(stderr, "  no reproducer: %s\n", f->no_repro);
    }
}

/* Saves a reproducer of a plan that fired and passed (--keep-repro). */
void fsweep_keep_passing(struct fsweep *S, enum fault_phase ph, const struct fault_plan *plan, const struct trace *t,
                         const struct crash_choice *ch, const char *post)
{
    if (!S->o->repro_dir || S->kept >= S->o->keep_repro)
        return;
    struct verdict v;
    verdict_init(&v, 0);
    snprintf(v.invariant, sizeof v.invariant, "none");
    char path[4096], err[512];
    snprintf(path, sizeof path, "%s/pass-fault-%s-%s-s%" PRIu64 "-%s-%s-n%" PRIu64 ".pctrace", S->o->repro_dir,
             fault_phase_names[ph], S->scenario, S->seed, fault_kind_names[plan->kind], fault_mode_names[plan->mode],
             plan->nth);
    if (save_repro(t, path, ph, plan, ch, post, &v, err, sizeof err) != 0)
        fprintf(stderr, "pcfaults: cannot save reproducer: %s\n", err);
    else
        S->kept++;
}

/* ---- workloads ------------------------------------------------------------------------ */
/* Runs workload w with r's plan (or counting only) into t (initialised here). */
static void run_workload(struct fault_run *r, const struct workload *w, struct trace *t)
{
    char err[600];
    if (fault_run_workload(r, w, t, err, sizeof err) != 0)
        fsweep_die("%s", err);
}

void fsweep_run_armed(struct fsweep *S, const struct workload *w, const struct fault_plan *plan, struct fault_run *r,
                      struct trace *t)
{
    fsweep_plan_context(S, PH_RUN, plan, NULL);
    memset(r, 0, sizeof *r);
    r->subj = S->o->subj;
    r->plan = *plan;
    r->live = !S->o->no_live;
    run_workload(r, w, t);
}

void fsweep_plan_context(struct fsweep *S, enum fault_phase ph, const struct fault_plan *p, const char *state)
{
    char pb[160];
    fault_plan_format(p, pb, sizeof pb);
    if (S->o->subj && S->o->subj->fault_site) /* a new plan: where its fault hits is not known yet */
        S->o->subj->fault_site(NULL, 0, 1);
    fsweep_set_context("pcfaults run %s --seed %" PRIu64 " --phase %s --plan '%s'%s%s", S->workload_args, S->seed,
                       fault_phase_names[ph], pb, state ? " --state " : "", state ? state : "");
}

void fsweep_make_workload(const struct fsweep_opts *o, const char *scenario, uint64_t seed, struct workload *w)
{
    struct workload_params p = o->wp;
    snprintf(p.scenario, sizeof p.scenario, "%s", scenario);
    p.seed = seed;
    if (!o->ops_given)
        p.ops = workload_scenario_fault_ops(scenario);
    workload_params_fit(&p, o->subj, o->subj);
    char err[512];
    if (workload_params_resolve(&p, err, sizeof err) != 0)
        tool_die_usage("%s", err);
    if (workload_generate(&p, w) != 0)
        fsweep_die("out of memory generating the workload");
}

void fsweep_workload_args(struct fsweep *S, const struct workload_params *p)
{
    const struct subject_ops *subj = S->o->subj;
    int other = subj && strcmp(subj->name, "libvhdx") != 0;
    snprintf(S->workload_args, sizeof S->workload_args,
             "%s%s%s--scenario %s --ops %u --virtual-size %" PRIu64 " --block-size %u --log-size %u --logical-sector %u "
             "--physical-sector %u --apply-every %u",
             other ? "--subject " : "", other ? subj->name : "", other ? " " : "", p->scenario, p->ops,
             p->virtual_size, p->block_size, p->log_size, p->logical_sector, p->physical_sector, p->apply_every);
}

/* The clean run: the trace the replay phase cuts, and the call counts. */
int fsweep_clean_run(struct fsweep *S, const struct workload *w, struct trace *t0, struct fault_stats *cnt)
{
    struct fault_run r;
    memset(&r, 0, sizeof r);
    r.subj = S->o->subj;
    r.count_only = 1;
    fsweep_set_context("pcfaults run %s --seed %" PRIu64 " (the run without faults)", S->workload_args, S->seed);
    run_workload(&r, w, t0);
    *cnt = *fault_get_stats();
    for (int p = 0; p < FP_COUNT; p++)
        S->point_calls[PH_RUN][p] += cnt->calls[p];
    for (size_t i = 0; i < t0->n_ops; i++)
        if (t0->ops[i].kind == TR_VEND && t0->ops[i].rc != 0 && S->o->subj->known) {
            /* a subject with filed departures (QEMU) may fail a workload the
             * engine runs: the workload is left out, and the sweep says so */
            fprintf(stderr, "%spcfaults: workload %s seed %" PRIu64 " fails on subject %s without faults (op %u: %s): "
                    "left out (the sweep is incomplete)\n", S->tty ? "\r" : "", w->p.scenario, w->p.seed,
                    S->o->subj->name, t0->ops[i].vop, vhdx_strerror(t0->ops[i].rc));
            S->left_out++;
            return -1;
        } else if (t0->ops[i].kind == TR_VEND && t0->ops[i].rc != 0)
            fsweep_die("workload %s seed %" PRIu64 " fails without faults (op %u: %s): fix that first (pcsweep)",
                       w->p.scenario, w->p.seed, t0->ops[i].vop, vhdx_strerror(t0->ops[i].rc));
    return 0;
}

/* The run phase's plans (ctx: the workload), for fsweep_each_plan. */
static void run_one_plan(struct fsweep *S, const struct fault_plan *plan, void *ctx)
{
    fsweep_run_plan(S, ctx, plan, 1);
    char what[64];
    snprintf(what, sizeof what, "%s run %s", S->scenario, fault_kind_names[plan->kind]);
    fsweep_progress(S, what, 0);
}

void fsweep_workload(struct fsweep *S, const char *scenario, uint64_t seed)
{
    struct workload w;
    fsweep_make_workload(S->o, scenario, seed, &w);
    S->scenario = scenario;
    S->seed = seed;
    fsweep_workload_args(S, &w.p);
    struct trace t0;
    struct fault_stats cnt;
    if (fsweep_clean_run(S, &w, &t0, &cnt) != 0) {
        trace_free(&t0);
        workload_free(&w);
        return;
    }
    if (!S->o->quiet && !S->counting)
        fprintf(stderr, "%spcfaults: %s seed %" PRIu64 ": %u ops, %zu trace operations; calls: read %" PRIu64
                " write %" PRIu64 " flush %" PRIu64 " size %" PRIu64 " truncate %" PRIu64 " alloc %" PRIu64 "\n",
                S->tty ? "\r" : "", scenario, seed, w.p.ops, t0.n_ops, cnt.calls[FP_READ], cnt.calls[FP_WRITE],
                cnt.calls[FP_FLUSH], cnt.calls[FP_SIZE], cnt.calls[FP_TRUNCATE], cnt.calls[FP_ALLOC]);
    if (S->o->phases & (1u << PH_CREATE))
        fsweep_create(S, &t0, &w.p);
    if (S->o->phases & (1u << PH_RUN))
        fsweep_each_plan(S, &cnt, run_one_plan, &w);
    if ((S->o->phases & (1u << PH_REPLAY)) && !S->stop)
        fsweep_replay(S, &t0, NULL, NULL, NULL, NULL);
    trace_free(&t0);
    workload_free(&w);
}
