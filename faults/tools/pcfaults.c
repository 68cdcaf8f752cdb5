/*
 * pcfaults - fault injection into the VHDX engine through its libfiu points.
 *
 *   pcfaults sweep [options]     for each workload, fail the nth call for every n,
 *                                with every fault kind, transient and persistent,
 *                                while the workload runs (phase run), while a crash
 *                                image is opened (phase replay) and while the image
 *                                is created (phase create); judge each fault live and
 *                                after a power cut and a reopen
 *   pcfaults campaign [options]  random fault plans (fiu_enable_random, libfiu's
 *                                PRNG seeded from the printed campaign seed)
 *   pcfaults run [options]       one workload with one plan (what a crash message names)
 *   pcfaults repro FILE          re-run a saved fault reproducer
 *   pcfaults points [options]    the catalogue and how often the default workloads
 *                                reach each point
 *   pcfaults kinds --json        the fault kinds, modes and phases (the registry)
 *
 * Invariants checked (docs/faults.md):
 *   fault-not-reported        an operation during which a fault fired returned success
 *   poisoned-handle-succeeded an operation (or a read) on a poisoned handle succeeded
 *   live-data:*               a read through the live, unpoisoned handle returned a
 *                             value the in-session model (shadow.h) does not allow
 *   live-read-failed          such a read failed although no fault was armed
 *   refused-open-wrote        an open that failed before its first write wrote
 *   open-refused, check-failed, log-guid-not-cleared, data:*, close-failed
 *                             the image after the fault, a power cut and a reopen
 *                             without faults (judge.h)
 *   create-image-invalid      an image left by a failed create opens but is wrong
 * An engine crash (signal, sanitizer report) kills the program; the message
 * names the `pcfaults run` command that reproduces it.
 *
 * The sweep itself (plans, phases, violations, reproducers) is
 * faults/fsweep.h; this file parses the options and writes the summaries
 * (console, JSON, JUnit).  The program observes every fault point call
 * through GNU ld --wrap of fiu_fail (faults/CMakeLists.txt): random plans
 * fire inside libfiu without a callback.  The workload runner hands the
 * live handle to the fault run through its on_handle hook
 * (faults/liverun.h).
 *
 * Exit status: 0 no violation; 1 violations (or the reproducer still
 * fails); 2 usage or infrastructure error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "faults/fsweep.h"
#include "faults/plan.h"
#include "harness/subject.h"
#include "harness/sweep.h"
#include "harness/toolutil.h"
#include "harness/workload.h"
#include "vhdx/vhdx.h"

enum { EXIT_PASS = 0, EXIT_VIOLATION = 1, EXIT_BAD_USAGE = 2 };

static const char usage[] =
    "usage: pcfaults COMMAND [options]\n"
    "\n"
    "  sweep        fail the nth engine call for every n, every kind, transient and persistent\n"
    "  campaign     random fault plans (fiu_enable_random with a seeded PRNG)\n"
    "  run          one workload with one plan (--plan), e.g. to reproduce a crash\n"
    "  repro FILE   re-run a saved fault reproducer; print the verdict\n"
    "  points       the fault-point catalogue and the calls the default workloads make\n"
    "  kinds --json the fault kinds (with their points), modes and phases as JSON\n"
    "\n"
    "workload options:\n"
    "  --subject NAME       the implementation under test (default libvhdx; pcsweep subjects)\n"
    "  --scenario LIST      a comma list of the scenarios below, or all (default all)\n"
    "  --seed N --seeds N   first workload seed and how many per scenario (1, 1)\n"
    "  --ops N              workload operations (default for sweep/campaign/run: the\n"
    "                       scenario's fault-sweep length, 12, or 64 for churn; 0 = the\n"
    "                       scenario's own default, as `points` uses)\n"
    "  --virtual-size N --block-size N --log-size N --logical-sector N --physical-sector N\n"
    "  --apply-every N      image and engine parameters as for pcsweep\n"
    "\n"
    "fault options (sweep):\n"
    "  --kinds LIST         a comma list of the fault kinds below, or all (default all)\n"
    "  --modes LIST         transient,persistent or all (default all)\n"
    "  --phases LIST        run,replay,create or all (default all)\n"
    "  --stride N           only every Nth n (default 1: every call)\n"
    "  --window N           judge crash states of the N epochs after the fault's epoch too (1)\n"
    "  --cut-models LIST    crash models for the states after a fault (prefix,drop;\n"
    "                       also torn, reorder, stale)\n"
    "  --cut-states N       states per epoch and model judged after a fault (3)\n"
    "  --replay-states N    crash states per workload opened with faults (2)\n"
    "  --no-live            skip the in-session read-back checks\n"
    "  --max-faults N --max-seconds S --max-violations N   limits (0 = none); a sweep\n"
    "                       stopped by one says how many of its planned plans it ran\n"
    "  --shard K/N          run only plans with index % N == K; without it (sweep) the\n"
    "                       launcher's environment decides: TEST_SHARD_INDEX/TEST_TOTAL_SHARDS,\n"
    "                       JOB_COMPLETION_INDEX with --shards N, SLURM_ARRAY_TASK_ID/COUNT\n"
    "                       (`pcsweep shard --help` has the rule)\n"
    "  --shards N           shards of a Kubernetes Indexed Job (with JOB_COMPLETION_INDEX)\n"
    "  --first-plan N       resume: skip the plans with index below N (the JSON's\n"
    "                       \"next_plan\" says where a stopped sweep ends)\n"
    "  --no-count           a stopped sweep does not count the plans it left out\n"
    "  --require-complete   a sweep that did not run every planned plan is a failed JUnit\n"
    "                       test case and exit status 1 (default: skipped)\n"
    "  --repro-dir DIR      save one reproducer per violation signature (invariant, phase,\n"
    "                       kind, scenario, structure); the others are counted\n"
    "  --max-repro-mb N     disk cap of the reproducers (default 512)\n"
    "  --keep-repro N       also save reproducers of the first N fired plans that pass\n"
    "                       (regression seeds; `pcfaults repro` must pass on them)\n"
    "  --json PATH --junit PATH   summary (JSON) and JUnit XML\n"
    "  --quiet              no progress line\n"
    "  --strict             the subject's known departures (its filed findings, `pcsweep\n"
    "                       subjects`; a verdict matches one by invariant and detail, the\n"
    "                       detail including the subject's reading of where the fault hit)\n"
    "                       count as violations; by default they are counted apart\n"
    "\n"
    "campaign options:\n"
    "  --runs N             random runs (default 50)\n"
    "  --campaign-seed N    seed of the campaign (default: from the clock, printed)\n"
    "  --probability P      per-call failure probability (default 0.02)\n"
    "  (and --kinds, --scenario, --ops, --window, --cut-*, limits, output options)\n"
    "\n"
    "run options:\n"
    "  --plan 'kind=K mode=M nth=N'  or 'kind=K mode=random p=P seed=S'\n"
    "  --phase run|replay|create     (default run)\n"
    "  --state prefix:EPOCH:INDEX|drop:EPOCH   the crash state a replay plan opens\n"
    "\n"
    "repro options:  --json PATH\n"
    "points options: --json PATH\n";

/* The usage, the scenarios and the fault kinds (plan.h's registry). */
static void print_usage(FILE *f)
{
    tool_print_usage(usage, f);
    fputs("\nfault kinds (--kinds, kind=):\n", f);
    for (int k = 0; k < FK_COUNT; k++)
        fprintf(f, "  %-10s %s\n", fault_kind_names[k], fault_kind_about[k]);
}

/* ---- crash context ---------------------------------------------------------------- */
/* fsweep_context names what is running now, as the command that reproduces
 * it; printed when the process dies of a signal or a sanitizer report. */
static void print_context(void)
{
    static const char a[] = "\npcfaults: the engine crashed while running:\n  ";
    if (!fsweep_context[0])
        return;
    ssize_t r = write(2, a, sizeof a - 1);
    r = write(2, fsweep_context, strlen(fsweep_context));
    r = write(2, "\n", 1);
    (void)r;
}

static void on_signal(int sig)
{
    print_context();
    signal(sig, SIG_DFL);
    raise(sig);
}

void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PCF_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define PCF_ASAN 1
#endif

static void install_crash_handlers(void)
{
    signal(SIGABRT, on_signal);
#ifndef PCF_ASAN /* ASan reports SEGV itself, then aborts */
    signal(SIGSEGV, on_signal);
    signal(SIGBUS, on_signal);
    signal(SIGFPE, on_signal);
    signal(SIGILL, on_signal);
#endif
    if (__sanitizer_set_death_callback)
        __sanitizer_set_death_callback(print_context);
}

/* ---- observing every fault point (ld --wrap) ---------------------------------------- */
int __real_fiu_fail(const char *name);
int __wrap_fiu_fail(const char *name);

/* The run phase's workload run with a plan armed, and its live checks, are
 * faults/liverun.h. */
int __wrap_fiu_fail(const char *name)
{
    if (fault_suspended())
        return 0;
    int r = __real_fiu_fail(name);
    fault_observe(name, r);
    return r;
}

/* ---- options ----------------------------------------------------------------------- */
struct opts {
    struct fsweep_opts f;          /* what the sweep does (fsweep.h) */
    char scenarios[256];           /* --scenario list or "all" */
    int require_complete;          /* an incomplete sweep fails */
    int subject_given;             /* --subject was on the command line */
    int no_count;                  /* a stopped sweep does not count the plans it left out */
    const char *json, *junit;      /* outputs (NULL = none) */
    const char *plan, *state, *phase;     /* run: the plan, replay state, phase */
    uint64_t runs, campaign_seed;  /* campaign: runs and seed */
    int campaign_seed_given;       /* else drawn from the clock and printed */
    double probability;            /* campaign: per-call probability */
    const char *pos[1];            /* positional arguments (repro FILE) */
    int npos;
};

static uint32_t parse_u32(const char *opt, const char *s)
{
    uint64_t v = tool_parse_num(opt, s);
    if (v > UINT32_MAX)
        tool_die_usage("%s: %s is too large", opt, s);
    return (uint32_t)v;
}

/* --shard, --shards as given, and where the sweep's shard came from
 * (toolbase.h's tool_shard_resolve: the command line or the launcher). */
static const char *shard_arg, *shards_arg, *shard_source = "none";

static void parse(int argc, char **argv, struct opts *o, int want_pos)
{
    memset(o, 0, sizeof *o);
    o->f.subj = &subject_libvhdx;
    snprintf(o->scenarios, sizeof o->scenarios, "all");
    o->f.seed = 1;
    o->f.seeds = 1;
    o->f.kinds = FK_ALL;
    o->f.modes = 1u << FM_TRANSIENT | 1u << FM_PERSISTENT;
    o->f.phases = (1u << PH_COUNT) - 1;
    o->f.stride = 1;
    o->f.window = 1;
    o->f.cut_states = 3;
    o->f.replay_states = 2;
    o->f.cut_models = 1u << M_PREFIX | 1u << M_DROP;
    o->f.shard_n = 1;
    o->runs = 50;
    o->probability = 0.02;
    o->f.max_repro_bytes = UINT64_C(512) << 20;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (!strcmp(a, name) && (v || (tool_die_usage("%s needs a value", name), 0)) && ++i)
        if (!strcmp(a, "--quiet"))
            o->f.quiet = 1;
        else if (!strcmp(a, "--strict"))
            o->f.strict = 1;
        else if (!strcmp(a, "--no-live"))
            o->f.no_live = 1;
        else if (!strcmp(a, "--require-complete"))
            o->require_complete = 1;
        else if (!strcmp(a, "--no-count"))
            o->no_count = 1;
        else if (OPT("--first-plan"))
            o->f.first_plan = tool_parse_num(a, v);
        else if (OPT("--max-repro-mb")) {
            uint64_t mb = tool_parse_num(a, v);
            if (mb > (UINT64_MAX >> 20))
                tool_die_usage("--max-repro-mb: %s is too large", v);
            o->f.max_repro_bytes = mb << 20;
        }
        else if (OPT("--scenario"))
            snprintf(o->scenarios, sizeof o->scenarios, "%s", v);
        else if (OPT("--subject")) {
            if (!(o->f.subj = subject_find(v)))
                tool_die_usage("--subject: no subject '%s' in this build (pcsweep subjects lists them)", v);
            o->subject_given = 1;
        }
        else if (OPT("--seed"))
            o->f.seed = tool_parse_num(a, v);
        else if (OPT("--seeds"))
            o->f.seeds = tool_parse_num(a, v);
        else if (OPT("--ops")) {
            o->f.wp.ops = parse_u32(a, v);
            o->f.ops_given = 1;
        } else if (OPT("--virtual-size"))
            o->f.wp.virtual_size = tool_parse_num(a, v);
        else if (OPT("--block-size"))
            o->f.wp.block_size = parse_u32(a, v);
        else if (OPT("--log-size"))
            o->f.wp.log_size = parse_u32(a, v);
        else if (OPT("--logical-sector"))
            o->f.wp.logical_sector = parse_u32(a, v);
        else if (OPT("--physical-sector"))
            o->f.wp.physical_sector = parse_u32(a, v);
        else if (OPT("--apply-every"))
            o->f.wp.apply_every = parse_u32(a, v);
        else if (OPT("--kinds")) {
            if (fault_kinds_parse(v, &o->f.kinds) != 0) {
                char names[128];
                fault_kinds_join(", ", names, sizeof names);
                tool_die_usage("--kinds: '%s' names an unknown kind (%s, all)", v, names);
            }
        } else if (OPT("--modes")) {
            if (fault_modes_parse(v, &o->f.modes) != 0)
                tool_die_usage("--modes: '%s' is not a list of transient, persistent, all", v);
        } else if (OPT("--phases")) {
            o->f.phases = 0;
            char buf[128];
            snprintf(buf, sizeof buf, "%s", v);
            for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                int found = !strcmp(tok, "all");
                if (found)
                    o->f.phases = (1u << PH_COUNT) - 1;
                for (int p = 0; p < PH_COUNT; p++)
                    if (!strcmp(tok, fault_phase_names[p])) {
                        o->f.phases |= 1u << p;
                        found = 1;
                    }
                if (!found)
                    tool_die_usage("--phases: unknown phase '%s' (run, replay, create, all)", tok);
            }
        } else if (OPT("--stride")) {
            o->f.stride = parse_u32(a, v);
            if (!o->f.stride)
                tool_die_usage("--stride must be at least 1");
        } else if (OPT("--window"))
            o->f.window = parse_u32(a, v);
        else if (OPT("--cut-models")) {
            if (crash_models_parse(v, &o->f.cut_models) != 0 ||
                (o->f.cut_models & ~(1u << M_PREFIX | 1u << M_DROP | 1u << M_TORN | 1u << M_REORDER | 1u << M_STALE)))
                tool_die_usage("--cut-models: '%s' must list prefix, drop, torn, reorder, stale", v);
        } else if (OPT("--cut-states"))
            o->f.cut_states = parse_u32(a, v);
        else if (OPT("--replay-states"))
            o->f.replay_states = parse_u32(a, v);
        else if (OPT("--keep-repro"))
            o->f.keep_repro = parse_u32(a, v);
        else if (OPT("--max-faults"))
            o->f.max_faults = tool_parse_num(a, v);
        else if (OPT("--max-seconds"))
            o->f.max_seconds = tool_parse_seconds(a, v);
        else if (OPT("--max-violations"))
            o->f.max_violations = tool_parse_num(a, v);
        else if (OPT("--shard")) {
            unsigned k, n;
            char extra;
            if (sscanf(v, "%u/%u%c", &k, &n, &extra) != 2 || n == 0 || k >= n)
                tool_die_usage("--shard takes K/N with 0 <= K < N, not '%s'", v);
            o->f.shard_k = k;
            o->f.shard_n = n;
            shard_arg = v;
            shard_source = "--shard";
        } else if (OPT("--shards"))
            shards_arg = v;
        else if (OPT("--repro-dir"))
            o->f.repro_dir = v;
        else if (OPT("--json"))
            o->json = v;
        else if (OPT("--junit"))
            o->junit = v;
        else if (OPT("--plan"))
            o->plan = v;
        else if (OPT("--state"))
            o->state = v;
        else if (OPT("--phase"))
            o->phase = v;
        else if (OPT("--runs"))
            o->runs = tool_parse_num(a, v);
        else if (OPT("--campaign-seed")) {
            o->campaign_seed = tool_parse_num(a, v);
            o->campaign_seed_given = 1;
        } else if (OPT("--probability")) {
            char *end;
            o->probability = strtod(v, &end);
            if (end == v || *end || !(o->probability > 0 && o->probability <= 1))
                tool_die_usage("--probability takes a number in (0, 1], not '%s'", v);
        } else if (a[0] == '-' && a[1] == '-')
            tool_die_usage("%s: unknown option '%s'", argv[1], a);
        else if (o->npos < want_pos)
            o->pos[o->npos++] = a;
        else
            tool_die_usage("%s: unexpected argument '%s'", argv[1], a);
#undef OPT
    }
    if (o->npos < want_pos)
        tool_die_usage("%s: missing argument", argv[1]);
    if (o->f.seeds == 0 || o->f.seeds > 100000)
        tool_die_usage("--seeds must be between 1 and 100000");
}

/* SIGINT/SIGTERM: stop after the current plan and still write the
 * summary (marked "interrupted"); a second signal kills as usual. */
static void on_interrupt(int sig)
{
    fsweep_interrupted = 1;
    signal(sig, SIG_DFL);
}

/* ---- output ------------------------------------------------------------------------- */
static void json_kstat(FILE *f, const struct kstat *s)
{
    fprintf(f, "{\"plans\": %" PRIu64 ", \"injected\": %" PRIu64 ", \"injections\": %" PRIu64 ", \"not_reached\": %"
               PRIu64 ", \"violations\": %" PRIu64 ", \"states\": %" PRIu64 ", \"refusals\": %" PRIu64
               ", \"seconds\": %.3f}",
            s->plans, s->injected, s->injections, s->not_reached, s->violations, s->states, s->refusals, s->seconds);
}

/* Plans of this shard with index in [lo, hi). */
static uint64_t shard_plans(uint64_t lo, uint64_t hi, uint32_t k, uint32_t n)
{
    if (hi <= lo)
        return 0;
    /* indices i in [lo, hi) with i % n == k */
    uint64_t below_hi = hi / n + (hi % n > k);
    uint64_t below_lo = lo / n + (lo % n > k);
    return below_hi - below_lo;
}

/* The coverage of a sweep: how many of its planned plans ran. */
struct coverage {
    int complete;               /* every planned plan of this shard ran */
    uint64_t done;              /* plans run (this shard) */
    int64_t planned;            /* plans planned (this shard), -1 unknown */
    uint64_t next_plan;         /* resume with --first-plan */
    int64_t total;              /* plans of all shards (the enumeration), -1 unknown */
    const char *stopped_by;     /* why not complete, or NULL */
};

static void coverage_text(const struct coverage *cv, char *out, size_t len)
{
    if (cv->planned >= 0)
        snprintf(out, len, "%" PRIu64 " of %" PRId64 " plans%s", cv->done, cv->planned,
                 cv->complete ? " (complete)" : "");
    else
        snprintf(out, len, "%" PRIu64 " plans (of ? planned)", cv->done);
}

/* "cells": the figures per phase, kind and mode that ran (what the driver's
 * JUnit writer makes one test case of). */
static void json_cells(const struct fsweep *S, FILE *f)
{
    fprintf(f, "  \"cells\": [");
    int first = 1;
    for (int p = 0; p < PH_COUNT; p++)
        for (int k = 0; k < FK_COUNT; k++)
            for (int m = 0; m < FM_COUNT; m++) {
                const struct kstat *s = &S->st[p][k][m];
                if (!s->plans)
                    continue;
                fprintf(f, "%s\n    {\"phase\": \"%s\", \"kind\": \"%s\", \"mode\": \"%s\", \"figures\": ",
                        first ? "" : ",", fault_phase_names[p], fault_kind_names[k], fault_mode_names[m]);
                json_kstat(f, s);
                fprintf(f, "}");
                first = 0;
            }
    fprintf(f, "],\n");
}

static void write_json(const struct fsweep *S, const struct opts *o, FILE *f, double wall, uint64_t campaign_seed,
                       const struct coverage *cv)
{
    struct kstat all = fsweep_sum(S, -1, -1, -1);
    int reached = 0;
    for (int p = 0; p < FP_COUNT; p++)
        reached += S->point_calls[PH_RUN][p] + S->point_calls[PH_REPLAY][p] + S->point_calls[PH_CREATE][p] > 0;
    fprintf(f, "{\n  \"tool\": \"pcfaults %s\",\n  \"engine\": ", S->cmd);
    tool_json_str(f, vhdx_build_id());
    fprintf(f, ",\n  \"injected\": %" PRIu64 ",\n  \"injections\": %" PRIu64 ",\n  \"violations\": %" PRIu64
               ",\n  \"plans\": %" PRIu64 ",\n  \"not_reached\": %" PRIu64 ",\n  \"crash_states\": %" PRIu64
               ",\n  \"refusals\": %" PRIu64 ",\n  \"wall_s\": %.3f,\n  \"faults_per_sec\": %.1f,\n"
               "  \"stopped_early\": %s,\n  \"interrupted\": %s,\n  \"shard\": \"%u/%u\",\n"
               "  \"shard_source\": \"%s\",\n",
            all.injected, all.injections, all.violations, all.plans, all.not_reached, all.states, all.refusals, wall,
            wall > 0 ? (double)all.injected / wall : 0.0, S->stopped_early ? "true" : "false", fsweep_interrupted ? "true" : "false", S->o->shard_k,
            S->o->shard_n, shard_source);
    fprintf(f, "  \"subject\": ");
    tool_json_str(f, S->o->subj->name);
    fprintf(f, ",\n  \"strict\": %s,\n  \"known\": %" PRIu64 ",\n  \"known_departures\": [",
            S->o->strict ? "true" : "false", S->known);
    int nk = 0;
    for (int i = 0; i < SUBJECT_KNOWN_MAX && S->o->subj->known && S->o->subj->known[i].invariant; i++)
        if (S->known_by[i]) {
            fprintf(f, "%s{\"invariant\": ", nk++ ? ", " : "");
            tool_json_str(f, S->o->subj->known[i].invariant);
            fprintf(f, ", \"finding\": ");
            tool_json_str(f, S->o->subj->known[i].finding);
            fprintf(f, ", \"count\": %" PRIu64 "}", S->known_by[i]);
        }
    fprintf(f, "],\n");
    char text[160];
    coverage_text(cv, text, sizeof text);
    fprintf(f, "  \"complete\": %s,\n  \"first_plan\": %" PRIu64 ",\n  \"next_plan\": %" PRIu64
               ",\n  \"plans_planned\": ",
            cv->complete ? "true" : "false", S->o->first_plan, cv->next_plan);
    if (cv->planned >= 0)
        fprintf(f, "%" PRId64, cv->planned);
    else
        fprintf(f, "null");
    fprintf(f, ",\n  \"plans_total\": ");
    if (cv->total >= 0)
        fprintf(f, "%" PRId64, cv->total);
    else
        fprintf(f, "null");
    fprintf(f, ",\n  \"coverage\": {\"done\": %" PRIu64 ", \"planned\": ", cv->done);
    if (cv->planned >= 0)
        fprintf(f, "%" PRId64, cv->planned);
    else
        fprintf(f, "null");
    fprintf(f, ", \"unit\": \"plans\", \"complete\": %s, \"stopped_by\": ", cv->complete ? "true" : "false");
    if (cv->stopped_by)
        tool_json_str(f, cv->stopped_by);
    else
        fprintf(f, "null");
    fprintf(f, ", \"text\": ");
    tool_json_str(f, text);
    fprintf(f, "},\n");
    if (!strcmp(S->cmd, "campaign"))
        fprintf(f, "  \"campaign_seed\": %" PRIu64 ",\n  \"probability\": %.9g,\n", campaign_seed, o->probability);
    fprintf(f, "  \"kinds\": {");
    for (int k = 0; k < FK_COUNT; k++) {
        struct kstat st = fsweep_sum(S, -1, k, -1);
        fprintf(f, "%s\n    \"%s\": ", k ? "," : "", fault_kind_names[k]);
        json_kstat(f, &st);
    }
    fprintf(f, "\n  },\n  \"modes\": {");
    for (int m = 0; m < FM_COUNT; m++) {
        struct kstat st = fsweep_sum(S, -1, -1, m);
        fprintf(f, "%s\n    \"%s\": ", m ? "," : "", fault_mode_names[m]);
        json_kstat(f, &st);
    }
    fprintf(f, "\n  },\n  \"phases\": {");
    for (int p = 0; p < PH_COUNT; p++) {
        struct kstat st = fsweep_sum(S, p, -1, -1);
        fprintf(f, "%s\n    \"%s\": ", p ? "," : "", fault_phase_names[p]);
        json_kstat(f, &st);
    }
    fprintf(f, "\n  },\n");
    json_cells(S, f);
    fprintf(f, "  \"refusal_codes\": {");
    for (int r = 0; r < S->n_refusal; r++)
        fprintf(f, "%s\"%s\": %" PRIu64, r ? ", " : "", vhdx_errname(S->refusal_code[r]), S->refusal_count[r]);
    fprintf(f, "},\n  \"points_catalogue\": %d,\n  \"points_reached\": %d,\n  \"points\": {", FP_COUNT, reached);
    for (int p = 0; p < FP_COUNT; p++)
        fprintf(f, "%s\n    \"%s\": {\"calls_run\": %" PRIu64 ", \"calls_replay\": %" PRIu64 ", \"calls_create\": %"
                   PRIu64 ", \"injections\": %" PRIu64 "}",
                p ? "," : "", fault_point_names[p], S->point_calls[PH_RUN][p], S->point_calls[PH_REPLAY][p],
                S->point_calls[PH_CREATE][p], S->point_injected[p]);
    fprintf(f, "\n  },\n  \"reproducer_bytes\": %" PRIu64 ",\n  \"signatures\": [", S->repro_bytes);
    for (size_t i = 0; i < S->nf; i++) {
        const struct failure *x = &S->f[i];
        char id[13];
        tool_signature_id(x->key, id);
        fprintf(f, "%s\n    {\"id\": \"%s\", \"signature\": ", i ? "," : "", id);
        tool_json_str(f, x->key);
        fprintf(f, ", \"invariant\": ");
        tool_json_str(f, x->invariant);
        fprintf(f, ", \"phase\": \"%s\", \"kind\": \"%s\", \"scenario\": ", fault_phase_names[x->phase],
                fault_kind_names[x->kind]);
        tool_json_str(f, x->scenario);
        fprintf(f, ", \"structure\": ");
        tool_json_str(f, x->structure);
        fprintf(f, ", \"count\": %" PRIu64 ", \"reproducer\": ", x->count);
        if (x->repro[0])
            tool_json_str(f, x->repro);
        else
            fprintf(f, "null");
        fprintf(f, ", \"no_reproducer\": ");
        if (x->no_repro[0])
            tool_json_str(f, x->no_repro);
        else
            fprintf(f, "null");
        fprintf(f, ", \"examples\": [");
        for (size_t k = 0; k < x->nex; k++) {
            fprintf(f, "%s{\"seed\": %" PRIu64 ", \"plan\": ", k ? ", " : "", x->ex[k].seed);
            tool_json_str(f, x->ex[k].plan);
            fprintf(f, ", \"state\": ");
            tool_json_str(f, x->ex[k].state);
            fprintf(f, ", \"detail\": ");
            tool_json_str(f, x->ex[k].detail);
            fprintf(f, "}");
        }
        fprintf(f, "]}");
    }
    /* "failures": the first violation of each signature, in the form the
     * drivers read, with its count. */
    fprintf(f, "\n  ],\n  \"failures\": [");
    for (size_t i = 0; i < S->nf; i++) {
        const struct failure *x = &S->f[i];
        fprintf(f, "%s\n    {\"scenario\": ", i ? "," : "");
        tool_json_str(f, x->scenario);
        fprintf(f, ", \"seed\": %" PRIu64 ", \"phase\": \"%s\", \"plan\": ", x->ex[0].seed, fault_phase_names[x->phase]);
        tool_json_str(f, x->ex[0].plan);
        fprintf(f, ", \"state\": ");
        tool_json_str(f, x->ex[0].state);
        fprintf(f, ", \"invariant\": ");
        tool_json_str(f, x->invariant);
        fprintf(f, ", \"signature\": ");
        tool_json_str(f, x->key);
        fprintf(f, ", \"count\": %" PRIu64 ", \"detail\": ", x->count);
        tool_json_str(f, x->ex[0].detail);
        fprintf(f, ", \"reproducer\": ");
        if (x->repro[0])
            tool_json_str(f, x->repro);
        else
            fprintf(f, "null");
        fprintf(f, "}");
    }
    fprintf(f, "\n  ]\n}\n");
}

/* One test case per phase, kind and mode that ran (passed, or skipped --
 * failed with --require-complete -- when the sweep stopped early), one
 * failed test case per violation signature. */
static void write_junit(const struct fsweep *S, const struct opts *o, FILE *f, double wall, const struct coverage *cv)
{
    size_t cases = 0;
    for (int p = 0; p < PH_COUNT; p++)
        for (int k = 0; k < FK_COUNT; k++)
            for (int m = 0; m < FM_COUNT; m++)
                cases += S->st[p][k][m].plans > 0;
    int incomplete = !cv->complete;
    size_t failing = S->nf + (incomplete && o->require_complete ? 1 : 0);
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"powercut-faults\" tests=\"%zu\" "
               "failures=\"%zu\" skipped=\"%d\" time=\"%.3f\">\n  <testsuite name=\"faults\" tests=\"%zu\" failures=\"%d\" "
               "skipped=\"%d\">\n",
            cases + 1 + S->nf, failing, incomplete && !o->require_complete, wall, cases + 1,
            incomplete && o->require_complete, incomplete && !o->require_complete);
    char text[160];
    coverage_text(cv, text, sizeof text);
    fprintf(f, "    <testcase classname=\"faults\" name=\"planned plans\" time=\"%.3f\">\n", wall);
    if (incomplete) {
        char msg[320];
        snprintf(msg, sizeof msg, "incomplete: %s (stopped by %s)", text, cv->stopped_by ? cv->stopped_by : "?");
        fprintf(f, "      <%s %smessage=\"", o->require_complete ? "failure" : "skipped",
                o->require_complete ? "type=\"incomplete\" " : "");
        tool_xml_str(f, msg);
        fprintf(f, "\"/>\n");
    }
    fprintf(f, "      <system-out>");
    tool_xml_str(f, text);
    fprintf(f, "</system-out>\n    </testcase>\n");
    for (int p = 0; p < PH_COUNT; p++)
        for (int k = 0; k < FK_COUNT; k++)
            for (int m = 0; m < FM_COUNT; m++) {
                const struct kstat *s = &S->st[p][k][m];
                if (!s->plans)
                    continue;
                fprintf(f, "    <testcase classname=\"faults.%s\" name=\"%s-%s\" time=\"%.3f\">\n", fault_phase_names[p],
                        fault_kind_names[k], fault_mode_names[m], s->seconds);
                fprintf(f, "      <system-out>plans %" PRIu64 ", injected %" PRIu64 ", not reached %" PRIu64
                           ", crash states %" PRIu64 ", violations %" PRIu64 " (see the signatures)</system-out>\n"
                           "    </testcase>\n",
                        s->plans, s->injected, s->not_reached, s->states, s->violations);
            }
    fprintf(f, "  </testsuite>\n  <testsuite name=\"faults.violations\" tests=\"%zu\" failures=\"%zu\">\n", S->nf,
            S->nf);
    for (size_t i = 0; i < S->nf; i++) {
        const struct failure *x = &S->f[i];
        char id[13], msg[512], detail[8192];
        tool_signature_id(x->key, id);
        fprintf(f, "    <testcase classname=\"faults.%s\" name=\"", fault_phase_names[x->phase]);
        tool_xml_str(f, x->key);
        fprintf(f, "\">\n");
        snprintf(msg, sizeof msg, "%" PRIu64 " violation(s) with signature %s (%s)", x->count, id, x->key);
        size_t n = (size_t)snprintf(detail, sizeof detail, "first: seed %" PRIu64 " %s %s\n%s", x->ex[0].seed,
                                    x->ex[0].plan, x->ex[0].state, x->ex[0].detail);
        for (size_t e = 1; e < x->nex && n < sizeof detail; e++)
            n += (size_t)snprintf(detail + n, sizeof detail - n, "\nalso: seed %" PRIu64 " %s %s", x->ex[e].seed,
                                  x->ex[e].plan, x->ex[e].state);
        if (x->count > x->nex && n < sizeof detail)
            snprintf(detail + n, sizeof detail - n, "\n... and %" PRIu64 " more", x->count - x->nex);
        tool_junit_failure(f, x->invariant, msg, detail, x->repro);
        fprintf(f, "    </testcase>\n");
    }
    fprintf(f, "  </testsuite>\n</testsuites>\n");
}

/* total_plans: plans of every shard (sweep: counted when it stopped early,
 * known when it finished; campaign: --runs). */
static int finish(struct fsweep *S, const struct opts *o, uint64_t campaign_seed, int64_t total_plans)
{
    double wall = tool_now() - S->t0;
    fsweep_progress(S, "done", 1);
    struct kstat all = fsweep_sum(S, -1, -1, -1);
    struct coverage cv;
    memset(&cv, 0, sizeof cv);
    cv.done = S->plans_run;
    cv.next_plan = S->next_plan_set ? S->next_plan : S->plan_index;
    cv.complete = !S->stopped_early && !S->left_out;
    cv.total = total_plans;
    cv.planned = total_plans >= 0 ? (int64_t)shard_plans(S->o->first_plan, (uint64_t)total_plans, S->o->shard_k,
                                                         S->o->shard_n)
                                  : -1;
    if (!cv.complete)
        cv.stopped_by = S->left_out                    ? "a workload the subject fails without faults"
                        : fsweep_interrupted             ? "interrupted"
                        : S->o->max_faults      ? "--max-faults"
                        : S->o->max_seconds > 0 ? "--max-seconds"
                        : S->o->max_violations  ? "--max-violations"
                                                : "a limit";
    char text[160];
    coverage_text(&cv, text, sizeof text);
    fprintf(stderr, "pcfaults: %s, %" PRIu64 " faults injected (%" PRIu64 " failed calls) in %.1f s "
            "(%.0f faults/s), %" PRIu64 " crash states judged, %" PRIu64 " clean refusals, %" PRIu64 " violations in "
            "%zu signature(s)%s%s\n",
            text, all.injected, all.injections, wall, wall > 0 ? (double)all.injected / wall : 0.0, all.states,
            all.refusals, all.violations, S->nf, cv.stopped_by ? "; stopped by " : "",
            cv.stopped_by ? cv.stopped_by : "");
    if (S->left_out)
        fprintf(stderr, "pcfaults: INCOMPLETE: %u workload(s) left out: the %s subject fails them without faults\n",
                S->left_out, S->o->subj->name);
    else if (!cv.complete)
        fprintf(stderr, "pcfaults: INCOMPLETE: the plans not run may hold violations; resume with --first-plan %"
                        PRIu64 "\n",
                cv.next_plan);
    if (S->known) {
        fprintf(stderr, "pcfaults: %" PRIu64 " verdict(s) set apart as the %s subject's known departures "
                "(--strict counts them):\n", S->known, S->o->subj->name);
        for (int i = 0; i < SUBJECT_KNOWN_MAX && S->o->subj->known && S->o->subj->known[i].invariant; i++)
            if (S->known_by[i])
                fprintf(stderr, "  %-28s %8" PRIu64 "  %s\n", S->o->subj->known[i].invariant, S->known_by[i],
                        S->o->subj->known[i].finding);
    }
    for (int k = 0; k < FK_COUNT; k++) {
        struct kstat s = fsweep_sum(S, -1, k, -1);
        if (s.plans)
            fprintf(stderr, "  %-11s plans %6" PRIu64 "  injected %6" PRIu64 "  states %6" PRIu64 "  violations %"
                    PRIu64 "\n", fault_kind_names[k], s.plans, s.injected, s.states, s.violations);
    }
    int lost = 0;
    if (o->json) {
        FILE *f = tool_output_begin();
        if (f) {
            write_json(S, o, f, wall, campaign_seed, &cv);
            tool_output_end(f, o->json, "--json", &lost);
        }
    }
    if (o->junit) {
        FILE *f = tool_output_begin();
        if (f) {
            write_junit(S, o, f, wall, &cv);
            tool_output_end(f, o->junit, "--junit", &lost);
        }
    }
    free(S->f);
    if (lost)
        return EXIT_BAD_USAGE;
    return all.violations || (o->require_complete && !cv.complete) ? EXIT_VIOLATION : EXIT_PASS;
}

/* A sweep of the options: its outputs checked and its reproducer folder made first. */
static void start(struct fsweep *S, struct opts *o, const char *cmd)
{
    /* the subject's own fault points (the engine's vhdx/..., the QEMU shim's qemu/...) */
    if (!o->f.subj->fault_ns || fault_use_points(o->f.subj->fault_ns) != 0)
        tool_die_usage("--subject %s has no fault points", o->f.subj->name);
    fsweep_init(S, &o->f, cmd);
    tool_check_output(o->json, "--json");
    tool_check_output(o->junit, "--junit");
    if (o->f.repro_dir && tool_mkdirs(o->f.repro_dir) != 0)
        tool_die_usage("--repro-dir: cannot create %s", o->f.repro_dir);
}

/* ---- commands ------------------------------------------------------------------------ */
static void require_fiu(void)
{
    if (!fault_supported())
        fsweep_die("this build has no fault points: build the fiu or fiu-asan preset (-DPOWERCUT_FIU=ON)");
}

static int cmd_sweep(int argc, char **argv)
{
    struct opts o;
    parse(argc, argv, &o, 0);
    {
        /* --shard, else the launcher's environment (toolbase.h) */
        struct tool_shard sh = tool_shard_or_die(shard_arg, shards_arg);
        o.f.shard_k = sh.k;
        o.f.shard_n = sh.n;
        shard_source = sh.source;
    }
    require_fiu();
    struct fsweep S;
    start(&S, &o, "sweep");
    signal(SIGINT, on_interrupt);
    signal(SIGTERM, on_interrupt);
    char names[TOOL_MAX_SCENARIOS][32];
    int nsc = tool_scenario_list(o.scenarios, names);
    fprintf(stderr, "pcfaults: subject %s; engine %s; shard %u/%u (from %s)\n", o.f.subj->name, vhdx_build_id(),
            o.f.shard_k, o.f.shard_n, shard_source);
    for (int si = 0; si < nsc && !S.stop; si++)
        for (uint64_t k = 0; k < o.f.seeds && !S.stop; k++)
            fsweep_workload(&S, names[si], o.f.seed + k);
    int64_t total = !S.stopped_early ? (int64_t)S.plan_index
                    : fsweep_interrupted || o.no_count ? -1 : (int64_t)fsweep_count_plans(&S, names, nsc);
    /* fsweep_count_plans gives UINT64_MAX, i.e. -1 here, when a signal cut it short */
    return finish(&S, &o, 0, total);
}

static int cmd_campaign(int argc, char **argv)
{
    struct opts o;
    parse(argc, argv, &o, 0);
    require_fiu();
    if (!o.campaign_seed_given) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        o.campaign_seed = fsweep_mix64((uint64_t)ts.tv_sec ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid()) % 1000000000u;
    }
    struct fsweep S;
    start(&S, &o, "campaign");
    signal(SIGINT, on_interrupt);
    signal(SIGTERM, on_interrupt);
    char names[TOOL_MAX_SCENARIOS][32];
    int nsc = tool_scenario_list(o.scenarios, names);
    int kinds[FK_COUNT], nk = 0;
    for (int k = 0; k < FK_COUNT; k++)
        if (o.f.kinds & (1u << k))
            kinds[nk++] = k;
    fprintf(stderr, "pcfaults: engine %s; campaign seed %" PRIu64 " (repeat with --campaign-seed %" PRIu64
            "), p=%.9g, %" PRIu64 " runs\n", vhdx_build_id(), o.campaign_seed, o.campaign_seed, o.probability, o.runs);
    for (uint64_t r = 0; r < o.runs && !S.stop; r++) {
        uint64_t h = fsweep_mix64(o.campaign_seed * UINT64_C(0x100000001B3) + r);
        if (!fsweep_take_plan(&S))
            continue;
        const char *sc = names[h % (uint64_t)nsc];
        uint64_t wseed = 1 + (h >> 8) % 1000;
        struct fault_plan plan = {(enum fault_kind)kinds[(h >> 20) % (uint64_t)nk], FM_RANDOM, 0, 0, o.probability,
                                  (uint32_t)(h >> 32)};
        struct workload w;
        fsweep_make_workload(&o.f, sc, wseed, &w);
        S.scenario = sc;
        S.seed = wseed;
        fsweep_workload_args(&S, &w.p);
        fsweep_run_plan(&S, &w, &plan, 1);
        workload_free(&w);
        char what[64];
        snprintf(what, sizeof what, "campaign run %" PRIu64, r);
        fsweep_progress(&S, what, 0);
    }
    return finish(&S, &o, o.campaign_seed, (int64_t)o.runs);
}

/* "prefix:E:I" or "drop:E" -> crash choice. */
static int parse_state(const char *s, struct crash_choice *c)
{
    memset(c, 0, sizeof *c);
    unsigned e, i;
    char extra;
    if (sscanf(s, "prefix:%u:%u%c", &e, &i, &extra) == 2) {
        c->model = M_PREFIX;
        c->epoch = e;
        c->index = i;
        return 0;
    }
    if (sscanf(s, "drop:%u%c", &e, &extra) == 1) {
        c->model = M_DROP;
        c->epoch = e;
        return 0;
    }
    return -1;
}

static void print_verdict(const char *what, const struct verdict *v)
{
    printf("%-10s %s\n", what, v->ok ? "OK (no violation)" : "VIOLATION");
    if (!v->ok)
        printf("  [%s] %s\n", v->invariant, v->detail);
}

static int run_one(struct fsweep *S, const struct workload *w, struct trace *t0, enum fault_phase ph,
                   const struct fault_plan *plan, const struct crash_choice *state, const char *post,
                   const struct crash_choice *after_state_only, struct verdict *out)
{
    struct verdict v;
    verdict_init(&v, 0);
    int fired = 0;
    if (ph == PH_RUN) {
        struct fault_run r;
        struct trace t;
        fsweep_run_armed(S, w, plan, &r, &t);
        fired = r.fired;
        S->st[PH_RUN][plan->kind][plan->mode].plans++;
        if (fired) {
            S->st[PH_RUN][plan->kind][plan->mode].injected++;
            S->st[PH_RUN][plan->kind][plan->mode].injections += fault_get_stats()->injected;
            printf("fault:     fired first in workload op %ld (%s), %" PRIu64 " injection(s)\n", r.fired_op,
                   fault_point_names[r.fired_point], fault_get_stats()->injected);
            if (!r.live_v.ok) {
                v = r.live_v;
                fsweep_violation(S, PH_RUN, plan, &t, NULL, NULL, &r.live_v);
            }
            print_verdict("live:", &r.live_v);
            if (after_state_only) {
                struct verdict sv;
                int found = 0;
                fsweep_judge_after(S, plan, &t, r.fired_pos, after_state_only, &sv, &found);
                if (!found) {
                    fprintf(stderr, "pcfaults: the crash state was not generated by the re-run\n");
                } else {
                    char c[200];
                    crash_choice_format(after_state_only, c, sizeof c);
                    printf("state:     %s\n", c);
                    print_verdict("verdict:", &sv);
                    if (!sv.ok && v.ok)
                        v = sv;
                }
            } else {
                fsweep_judge_after(S, plan, &t, r.fired_pos, NULL, NULL, NULL);
                printf("states:    %" PRIu64 " crash states after the fault judged\n",
                       S->st[PH_RUN][plan->kind][plan->mode].states);
            }
        }
        trace_free(&t);
    } else if (ph == PH_REPLAY) {
        struct fsweep_one out_sel;
        memset(&out_sel, 0, sizeof out_sel);
        fsweep_replay(S, t0, plan, state, post, &out_sel);
        fired = out_sel.fired;
        if (fired)
            printf("fault:     fired while opening the crash image (%" PRIu64 " injection(s)); %" PRIu64
                   " post-cut image(s) judged\n", S->st[PH_REPLAY][plan->kind][plan->mode].injections,
                   S->st[PH_REPLAY][plan->kind][plan->mode].states);
        if (!out_sel.found) {
            fprintf(stderr, "pcfaults: the crash state was not generated from the trace\n");
            return -1;
        }
        v = out_sel.v;
        if (!v.ok)
            fsweep_violation(S, PH_REPLAY, plan, t0, state, post, &v);
        print_verdict("verdict:", &v);
    } else {
        fired = fsweep_create_plan(S, t0, &w->p, plan, &v);
        if (!v.ok)
            fsweep_violation(S, PH_CREATE, plan, t0, NULL, NULL, &v);
        print_verdict("verdict:", &v);
    }
    if (!fired)
        printf("fault:     not reached (the run made fewer calls than nth)\n");
    if (out)
        *out = v;
    return fired;
}

static int cmd_run(int argc, char **argv)
{
    struct opts o;
    parse(argc, argv, &o, 0);
    require_fiu();
    if (!o.plan)
        tool_die_usage("run needs --plan 'kind=K mode=M nth=N'");
    struct fault_plan plan;
    char err[256];
    if (fault_plan_parse(o.plan, &plan, err, sizeof err) != 0)
        tool_die_usage("%s", err);
    enum fault_phase ph = PH_RUN;
    if (o.phase) {
        int found = 0;
        for (int p = 0; p < PH_COUNT; p++)
            if (!strcmp(o.phase, fault_phase_names[p])) {
                ph = (enum fault_phase)p;
                found = 1;
            }
        if (!found)
            tool_die_usage("--phase: '%s' is not run, replay or create", o.phase);
    }
    struct crash_choice state;
    if (ph == PH_REPLAY && (!o.state || parse_state(o.state, &state) != 0))
        tool_die_usage("the replay phase needs --state prefix:EPOCH:INDEX or drop:EPOCH");
    char names[TOOL_MAX_SCENARIOS][32];
    if (tool_scenario_list(o.scenarios, names) != 1)
        tool_die_usage("run: give exactly one --scenario");
    struct fsweep S;
    start(&S, &o, "run");
    struct workload w;
    fsweep_make_workload(&o.f, names[0], o.f.seed, &w);
    S.scenario = names[0];
    S.seed = o.f.seed;
    fsweep_workload_args(&S, &w.p);
    struct trace t0;
    struct fault_stats cnt;
    if (fsweep_clean_run(&S, &w, &t0, &cnt) != 0)
        fsweep_die("the workload fails on subject %s without faults: nothing to inject into", S.o->subj->name);
    printf("workload:  %s seed %" PRIu64 ", %zu ops, %zu trace operations\nplan:      %s (phase %s)\n", names[0],
           o.f.seed, w.n, t0.n_ops, o.plan, fault_phase_names[ph]);
    if (run_one(&S, &w, &t0, ph, &plan, ph == PH_REPLAY ? &state : NULL, NULL, NULL, NULL) < 0) {
        trace_free(&t0);
        workload_free(&w);
        return EXIT_BAD_USAGE;
    }
    trace_free(&t0);
    workload_free(&w);
    S.plans_run = 1; /* the one plan given */
    return finish(&S, &o, 0, 1);
}

static int cmd_repro(int argc, char **argv)
{
    struct opts o;
    parse(argc, argv, &o, 1);
    require_fiu();
    struct trace t;
    char err[512];
    if (trace_load(&t, o.pos[0], err, sizeof err) != 0)
        tool_die_usage("%s", err);
    const char *ps = trace_get_meta(&t, "fault.plan"), *phs = trace_get_meta(&t, "fault.phase");
    const char *target = trace_get_meta(&t, "fault.target"), *post = trace_get_meta(&t, "fault.post_cut");
    if (!ps || !phs) {
        trace_free(&t);
        tool_die_usage("%s is not a fault reproducer (no fault.plan; use pcsweep repro)", o.pos[0]);
    }
    struct fault_plan plan;
    if (fault_plan_parse(ps, &plan, err, sizeof err) != 0) {
        trace_free(&t);
        tool_die_usage("%s: %s", o.pos[0], err);
    }
    enum fault_phase ph = PH_COUNT;
    for (int p = 0; p < PH_COUNT; p++)
        if (!strcmp(phs, fault_phase_names[p]))
            ph = (enum fault_phase)p;
    if (ph == PH_COUNT) {
        trace_free(&t);
        tool_die_usage("%s: unknown fault phase '%s'", o.pos[0], phs);
    }
    struct crash_choice ch;
    int have_choice = trace_get_choice(&t, "model") != NULL;
    if (have_choice && crash_choice_from_trace(&t, &ch, err, sizeof err) != 0) {
        trace_free(&t);
        tool_die_usage("%s: %s", o.pos[0], err);
    }
    if (ph == PH_REPLAY && !have_choice) {
        trace_free(&t);
        tool_die_usage("%s: a replay reproducer needs a crash state", o.pos[0]);
    }
    /* the subject that ran the workload, unless --subject says otherwise */
    const char *who = trace_get_meta(&t, "subject");
    if (!o.subject_given && who && !(o.f.subj = subject_find(who))) {
        trace_free(&t);
        tool_die_usage("%s: recorded with subject '%s', which this build does not have (pcsweep subjects)", o.pos[0],
                       who);
    }
    const char *built = trace_get_meta(&t, "engine");
    if (built && strcmp(built, vhdx_build_id()))
        fprintf(stderr, "pcfaults: note: recorded with %s, re-run with %s\n", built, vhdx_build_id());
    struct workload w;
    if (workload_from_trace(&t, &w, err, sizeof err) != 0) {
        trace_free(&t);
        tool_die_usage("%s: %s", o.pos[0], err);
    }
    struct fsweep S;
    start(&S, &o, "repro");
    S.scenario = w.p.scenario;
    S.seed = w.p.seed;
    fsweep_workload_args(&S, &w.p);
    printf("reproducer: %s\nworkload:   %s seed %" PRIu64 ", %zu ops\nplan:       %s (phase %s, target %s%s%s)\n",
           o.pos[0], w.p.scenario, w.p.seed, w.n, ps, phs, target ? target : "?", post ? ", post-cut " : "",
           post ? post : "");
    struct verdict v;
    int rc = run_one(&S, &w, &t, ph, &plan, have_choice ? &ch : NULL, post,
                     ph == PH_RUN && have_choice ? &ch : NULL, &v);
    const char *was = trace_get_meta(&t, "violation.invariant");
    if (rc >= 0 && was && strcmp(was, "none") != 0 && v.ok)
        printf("note:      the reproducer recorded '%s'; this build does not fail it\n", was);
    int lost = 0;
    if (o.json) {
        FILE *f = tool_output_begin();
        if (f) {
            fprintf(f, "{\"reproducer\": ");
            tool_json_str(f, o.pos[0]);
            fprintf(f, ", \"phase\": \"%s\", \"plan\": ", phs);
            tool_json_str(f, ps);
            fprintf(f, ", \"fired\": %s, \"ok\": %s, \"invariant\": ", rc > 0 ? "true" : "false", v.ok ? "true" : "false");
            tool_json_str(f, v.ok ? "" : v.invariant);
            fprintf(f, ", \"detail\": ");
            tool_json_str(f, v.ok ? "" : v.detail);
            fprintf(f, "}\n");
            tool_output_end(f, o.json, "--json", &lost);
        }
    }
    workload_free(&w);
    trace_free(&t);
    free(S.f);
    if (rc < 0 || lost)
        return EXIT_BAD_USAGE;
    return v.ok ? EXIT_PASS : EXIT_VIOLATION;
}

static int cmd_points(int argc, char **argv)
{
    struct opts o;
    parse(argc, argv, &o, 0);
    require_fiu();
    if (!o.f.ops_given) {
        o.f.wp.ops = 0; /* the default workloads, as pcsweep runs them */
        o.f.ops_given = 1;
    }
    struct fsweep S;
    start(&S, &o, "points");
    o.f.replay_states = 1;
    o.f.kinds = 0; /* count only: no plans */
    char names[TOOL_MAX_SCENARIOS][32];
    int nsc = tool_scenario_list(o.scenarios, names);
    for (int si = 0; si < nsc; si++) {
        struct workload w;
        fsweep_make_workload(&o.f, names[si], o.f.seed, &w);
        S.scenario = names[si];
        S.seed = o.f.seed;
        fsweep_workload_args(&S, &w.p);
        struct trace t0;
        struct fault_stats cnt;
        if (fsweep_clean_run(&S, &w, &t0, &cnt) == 0) {
            fsweep_replay(&S, &t0, NULL, NULL, NULL, NULL);
            fsweep_create(&S, &t0, &w.p);
        }
        trace_free(&t0);
        workload_free(&w);
    }
    int reached_run = 0, reached_any = 0;
    printf("%-18s %14s %14s %14s\n", "point", "workload runs", "replay opens", "create");
    for (int p = 0; p < FP_COUNT; p++) {
        printf("%-18s %14" PRIu64 " %14" PRIu64 " %14" PRIu64 "\n", fault_point_names[p], S.point_calls[PH_RUN][p],
               S.point_calls[PH_REPLAY][p], S.point_calls[PH_CREATE][p]);
        reached_run += S.point_calls[PH_RUN][p] > 0;
        reached_any += S.point_calls[PH_RUN][p] + S.point_calls[PH_REPLAY][p] + S.point_calls[PH_CREATE][p] > 0;
    }
    printf("reached by the default workloads: %d of %d catalogued points (%d including replay and create)\n",
           reached_run, FP_COUNT, reached_any);
    int lost = 0;
    FILE *f = o.json ? tool_output_begin() : NULL;
    if (f) {
        fprintf(f, "{\n  \"engine\": ");
        tool_json_str(f, vhdx_build_id());
        fprintf(f, ",\n  \"points_catalogue\": %d,\n  \"points_reached_by_workloads\": %d,\n"
                   "  \"points_reached\": %d,\n  \"points\": {",
                FP_COUNT, reached_run, reached_any);
        for (int p = 0; p < FP_COUNT; p++)
            fprintf(f, "%s\n    \"%s\": {\"calls_run\": %" PRIu64 ", \"calls_replay\": %" PRIu64
                       ", \"calls_create\": %" PRIu64 "}",
                    p ? "," : "", fault_point_names[p], S.point_calls[PH_RUN][p], S.point_calls[PH_REPLAY][p],
                    S.point_calls[PH_CREATE][p]);
        fprintf(f, "\n  }\n}\n");
        tool_output_end(f, o.json, "--json", &lost);
    }
    free(S.f);
    return lost ? EXIT_BAD_USAGE : EXIT_PASS;
}

/* `pcfaults kinds --json`: the fault registry as the driver reads it (no
 * list of kinds, modes or phases is kept anywhere else): each kind with the
 * points it fails, the exact modes a sweep runs, the phases, the points. */
static int cmd_kinds(int argc, char **argv)
{
    if (argc != 3 || strcmp(argv[2], "--json"))
        tool_die_usage("kinds takes --json");
    printf("{\"kinds\": [");
    for (int k = 0; k < FK_COUNT; k++) {
        printf("%s\n  {\"name\": ", k ? "," : "");
        tool_json_str(stdout, fault_kind_names[k]);
        printf(", \"points\": [");
        unsigned pts = fault_kind_points((enum fault_kind)k);
        for (int p = 0, first = 1; p < FP_COUNT; p++)
            if (pts & (1u << p)) {
                printf("%s", first ? "" : ", ");
                tool_json_str(stdout, fault_point_names[p]);
                first = 0;
            }
        printf("]}");
    }
    printf("],\n \"modes\": [");
    for (int m = 0; m < FM_COUNT; m++) {
        printf("%s{\"name\": ", m ? ", " : "");
        tool_json_str(stdout, fault_mode_names[m]);
        printf(", \"sweep\": %s}", m == FM_RANDOM ? "false" : "true");
    }
    printf("],\n \"phases\": [");
    for (int p = 0; p < PH_COUNT; p++) {
        printf("%s", p ? ", " : "");
        tool_json_str(stdout, fault_phase_names[p]);
    }
    printf("],\n \"points\": [");
    for (int p = 0; p < FP_COUNT; p++) {
        printf("%s", p ? ", " : "");
        tool_json_str(stdout, fault_point_names[p]);
    }
    printf("]}\n");
    return EXIT_PASS;
}

int main(int argc, char **argv)
{
    tool_set_name("pcfaults");
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        print_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_BAD_USAGE : EXIT_PASS;
    }
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            print_usage(stdout);
            return EXIT_PASS;
        }
    install_crash_handlers();
    if (!strcmp(argv[1], "sweep"))
        return cmd_sweep(argc, argv);
    if (!strcmp(argv[1], "campaign"))
        return cmd_campaign(argc, argv);
    if (!strcmp(argv[1], "run"))
        return cmd_run(argc, argv);
    if (!strcmp(argv[1], "repro"))
        return cmd_repro(argc, argv);
    if (!strcmp(argv[1], "points"))
        return cmd_points(argc, argv);
    if (!strcmp(argv[1], "kinds"))
        return cmd_kinds(argc, argv);
    tool_die_usage("unknown command '%s'", argv[1]);
}
