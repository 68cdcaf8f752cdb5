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
 * The program observes every fault point call through GNU ld --wrap of
 * fiu_fail (faults/CMakeLists.txt): random plans fire inside libfiu without
 * a callback.  The workload runner hands the live handle to the fault run
 * through its on_handle hook (faults/liverun.h).
 *
 * Exit status: 0 no violation; 1 violations (or the reproducer still
 * fails); 2 usage or infrastructure error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "faults/cowdisk.h"
#include "faults/judge.h"
#include "faults/liverun.h"
#include "faults/plan.h"
#include "faults/shadow.h"
#include "harness/epochs.h"
#include "harness/sdata.h"
#include "harness/subject.h"
#include "harness/sweep.h"
#include "harness/toolutil.h"
#include "harness/workload.h"
#include "ref/ref.h"
#include "vhdx/format.h"
#include "vhdx/vhdx.h"

enum { EXIT_PASS = 0, EXIT_VIOLATION = 1, EXIT_BAD_USAGE = 2 };

enum phase { PH_RUN = 0, PH_REPLAY, PH_CREATE, PH_COUNT };
static const char *const phase_names[PH_COUNT] = {"run", "replay", "create"};

static const char usage[] =
    "usage: pcfaults COMMAND [options]\n"
    "\n"
    "  sweep        fail the nth engine call for every n, every kind, transient and persistent\n"
    "  campaign     random fault plans (fiu_enable_random with a seeded PRNG)\n"
    "  run          one workload with one plan (--plan), e.g. to reproduce a crash\n"
    "  repro FILE   re-run a saved fault reproducer; print the verdict\n"
    "  points       the fault-point catalogue and the calls the default workloads make\n"
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
    "  --shard K/N          run only plans with index %% N == K\n"
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

static void die_infra(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die_infra(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "pcfaults: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(EXIT_BAD_USAGE);
}

static uint64_t mix64(uint64_t x)
{
    x += UINT64_C(0x9E3779B97F4A7C15);
    x = (x ^ (x >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94D049BB133111EB);
    return x ^ (x >> 31);
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        die_infra("out of memory");
    return p;
}

/* ---- crash context ---------------------------------------------------------------- */
/* What is running now, as the command that reproduces it; printed when the
 * process dies of a signal or a sanitizer report. */
static char g_context[1024];

static void set_context(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void set_context(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_context, sizeof g_context, fmt, ap);
    va_end(ap);
}

static void print_context(void)
{
    static const char a[] = "\npcfaults: the engine crashed while running:\n  ";
    if (!g_context[0])
        return;
    ssize_t r = write(2, a, sizeof a - 1);
    r = write(2, g_context, strlen(g_context));
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

static const struct subject_ops *g_subj = &subject_libvhdx; /* --subject */

/* ---- options ----------------------------------------------------------------------- */
struct opts {
    struct workload_params wp;     /* image/engine parameters (ops etc.) */
    int ops_given;                 /* --ops was given */
    char scenarios[256];           /* --scenario list or "all" */
    uint64_t seed, seeds;          /* first workload seed, seeds per scenario */
    unsigned kinds, modes, phases; /* bitmasks of FK_*, FM_*, PH_* to run */
    uint32_t stride;               /* every stride-th n */
    uint32_t window;               /* epochs after the fault's epoch whose states are judged */
    uint32_t cut_states;           /* states per epoch and model judged after a fault */
    uint32_t replay_states;        /* crash states per workload opened with faults */
    uint32_t keep_repro;           /* also save reproducers of this many fired plans without violation */
    unsigned cut_models;           /* crash models after a fault (1 << M_*) */
    int no_live, quiet;            /* skip in-session checks; no progress line */
    uint64_t max_faults, max_violations; /* limits (0 = none) */
    double max_seconds;
    uint32_t shard_k, shard_n;     /* run plans with index % n == k */
    uint64_t first_plan;           /* resume: plans below this index are skipped */
    int require_complete;          /* an incomplete sweep fails */
    int no_count;                  /* a stopped sweep does not count the plans it left out */
    uint64_t max_repro_bytes;      /* disk cap of the reproducers */
    const char *repro_dir, *json, *junit; /* outputs (NULL = none) */
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

static void parse(int argc, char **argv, struct opts *o, int want_pos)
{
    memset(o, 0, sizeof *o);
    snprintf(o->scenarios, sizeof o->scenarios, "all");
    o->seed = 1;
    o->seeds = 1;
    o->kinds = FK_ALL;
    o->modes = 1u << FM_TRANSIENT | 1u << FM_PERSISTENT;
    o->phases = (1u << PH_COUNT) - 1;
    o->stride = 1;
    o->window = 1;
    o->cut_states = 3;
    o->replay_states = 2;
    o->cut_models = 1u << M_PREFIX | 1u << M_DROP;
    o->shard_n = 1;
    o->runs = 50;
    o->probability = 0.02;
    o->max_repro_bytes = UINT64_C(512) << 20;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (!strcmp(a, name) && (v || (tool_die_usage("%s needs a value", name), 0)) && ++i)
        if (!strcmp(a, "--quiet"))
            o->quiet = 1;
        else if (!strcmp(a, "--no-live"))
            o->no_live = 1;
        else if (!strcmp(a, "--require-complete"))
            o->require_complete = 1;
        else if (!strcmp(a, "--no-count"))
            o->no_count = 1;
        else if (OPT("--first-plan"))
            o->first_plan = tool_parse_num(a, v);
        else if (OPT("--max-repro-mb")) {
            uint64_t mb = tool_parse_num(a, v);
            if (mb > (UINT64_MAX >> 20))
                tool_die_usage("--max-repro-mb: %s is too large", v);
            o->max_repro_bytes = mb << 20;
        }
        else if (OPT("--scenario"))
            snprintf(o->scenarios, sizeof o->scenarios, "%s", v);
        else if (OPT("--subject")) {
            if (!(g_subj = subject_find(v)))
                tool_die_usage("--subject: no subject '%s' in this build (pcsweep subjects lists them)", v);
        }
        else if (OPT("--seed"))
            o->seed = tool_parse_num(a, v);
        else if (OPT("--seeds"))
            o->seeds = tool_parse_num(a, v);
        else if (OPT("--ops")) {
            o->wp.ops = parse_u32(a, v);
            o->ops_given = 1;
        } else if (OPT("--virtual-size"))
            o->wp.virtual_size = tool_parse_num(a, v);
        else if (OPT("--block-size"))
            o->wp.block_size = parse_u32(a, v);
        else if (OPT("--log-size"))
            o->wp.log_size = parse_u32(a, v);
        else if (OPT("--logical-sector"))
            o->wp.logical_sector = parse_u32(a, v);
        else if (OPT("--physical-sector"))
            o->wp.physical_sector = parse_u32(a, v);
        else if (OPT("--apply-every"))
            o->wp.apply_every = parse_u32(a, v);
        else if (OPT("--kinds")) {
            if (fault_kinds_parse(v, &o->kinds) != 0) {
                char names[128];
                fault_kinds_join(", ", names, sizeof names);
                tool_die_usage("--kinds: '%s' names an unknown kind (%s, all)", v, names);
            }
        } else if (OPT("--modes")) {
            if (fault_modes_parse(v, &o->modes) != 0)
                tool_die_usage("--modes: '%s' is not a list of transient, persistent, all", v);
        } else if (OPT("--phases")) {
            o->phases = 0;
            char buf[128];
            snprintf(buf, sizeof buf, "%s", v);
            for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                int found = !strcmp(tok, "all");
                if (found)
                    o->phases = (1u << PH_COUNT) - 1;
                for (int p = 0; p < PH_COUNT; p++)
                    if (!strcmp(tok, phase_names[p])) {
                        o->phases |= 1u << p;
                        found = 1;
                    }
                if (!found)
                    tool_die_usage("--phases: unknown phase '%s' (run, replay, create, all)", tok);
            }
        } else if (OPT("--stride")) {
            o->stride = parse_u32(a, v);
            if (!o->stride)
                tool_die_usage("--stride must be at least 1");
        } else if (OPT("--window"))
            o->window = parse_u32(a, v);
        else if (OPT("--cut-models")) {
            if (crash_models_parse(v, &o->cut_models) != 0 ||
                (o->cut_models & ~(1u << M_PREFIX | 1u << M_DROP | 1u << M_TORN | 1u << M_REORDER | 1u << M_STALE)))
                tool_die_usage("--cut-models: '%s' must list prefix, drop, torn, reorder, stale", v);
        } else if (OPT("--cut-states"))
            o->cut_states = parse_u32(a, v);
        else if (OPT("--replay-states"))
            o->replay_states = parse_u32(a, v);
        else if (OPT("--keep-repro"))
            o->keep_repro = parse_u32(a, v);
        else if (OPT("--max-faults"))
            o->max_faults = tool_parse_num(a, v);
        else if (OPT("--max-seconds"))
            o->max_seconds = tool_parse_seconds(a, v);
        else if (OPT("--max-violations"))
            o->max_violations = tool_parse_num(a, v);
        else if (OPT("--shard")) {
            unsigned k, n;
            char extra;
            if (sscanf(v, "%u/%u%c", &k, &n, &extra) != 2 || n == 0 || k >= n)
                tool_die_usage("--shard takes K/N with 0 <= K < N, not '%s'", v);
            o->shard_k = k;
            o->shard_n = n;
        } else if (OPT("--repro-dir"))
            o->repro_dir = v;
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
    if (o->seeds == 0 || o->seeds > 100000)
        tool_die_usage("--seeds must be between 1 and 100000");
}

/* ---- results ----------------------------------------------------------------------- */
struct kstat {
    uint64_t plans;        /* plans run */
    uint64_t injected;     /* plans whose fault fired */
    uint64_t injections;   /* individual failed calls */
    uint64_t not_reached;  /* plans whose nth call never came */
    uint64_t violations;
    uint64_t states;       /* images judged after the fault */
    uint64_t refusals;     /* images refused cleanly where that is allowed (create) */
    double seconds;
};

/* One violation state (the first few of each signature are kept). */
struct example {
    uint64_t seed;         /* workload seed */
    char plan[160];        /* the plan, as text */
    char state[200];       /* crash state (and post-cut image) or "live" */
    char detail[1024];     /* the verdict's explanation */
};
#define EXAMPLES 5

/* Violations grouped by signature: one bug trips the same invariant under
 * many plans; each signature gets one reproducer, a count and examples. */
struct failure {
    char key[320];         /* invariant|phase|kind|scenario|structure */
    char scenario[32];     /* workload */
    enum phase phase;      /* where the fault struck */
    enum fault_kind kind;  /* the fault kind */
    char structure[160];   /* what the violation involves (tool_violation_structure) */
    char invariant[48];
    uint64_t count;        /* violations with this signature */
    struct example ex[EXAMPLES];
    size_t nex;
    char repro[4096];      /* reproducer of the first, "" if none */
    char no_repro[96];     /* why there is none, "" */
};

struct fsweep {
    struct opts *o;                  /* options */
    const char *cmd;                 /* "sweep" / "campaign" / "run" */
    struct kstat st[PH_COUNT][FK_COUNT][FM_COUNT]; /* results per phase, kind, mode */
    uint64_t plan_index;             /* global plan counter (sharding) */
    uint64_t plans_run;              /* plans run in this shard (--max-faults) */
    uint64_t violations;             /* all violations so far */
    uint32_t kept;                   /* passing reproducers saved (--keep-repro) */
    int refusal_code[16];            /* error codes of clean refusals (create phase) */
    uint64_t refusal_count[16];      /* and how often each */
    int n_refusal;                   /* codes used */
    uint64_t point_calls[PH_COUNT][FP_COUNT]; /* calls seen in the clean (counting) runs */
    uint64_t point_injected[FP_COUNT]; /* failures injected per point */
    struct failure *f;               /* violation signatures, in order of first sight */
    size_t nf, capf;
    uint64_t repro_bytes;            /* reproducers written */
    uint64_t next_plan;              /* resume point: no plan below it is left undone in this shard */
    int next_plan_set;               /* set when the sweep stopped */
    double t0, last_progress;        /* start; last progress line */
    int stop, stopped_early, tty;    /* a limit was hit; stderr is a terminal */
    const char *scenario;            /* current workload */
    uint64_t seed;                   /* its seed */
    char workload_args[256];         /* --scenario ... --ops ... for crash messages */
};

/* SIGINT/SIGTERM: stop after the current plan and still write the
 * summary (marked "interrupted"); a second signal kills as usual. */
static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
    interrupted = 1;
    signal(sig, SIG_DFL);
}

/* Counting mode (count_plans): plans are enumerated, none runs, no limit
 * applies. */
static int g_counting;

static int limits_hit(struct fsweep *S)
{
    const struct opts *o = S->o;
    if (g_counting)
        return 0;
    if (S->stop)
        return 1;
    if ((o->max_faults && S->plans_run >= o->max_faults) ||
        (o->max_violations && S->violations >= o->max_violations) ||
        (o->max_seconds > 0 && tool_now() - S->t0 >= o->max_seconds) || interrupted) {
        S->stop = S->stopped_early = 1;
    }
    return S->stop;
}

/* Should the next plan run here (shard, limits)? */
static int take_plan(struct fsweep *S)
{
    if (g_counting) {
        if (interrupted)
            S->stop = 1; /* a signal while counting: the count is dropped */
        S->plan_index++;
        return 0;
    }
    if (limits_hit(S)) {
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
 * 1 + stride, ... up to the calls of the kind's points; take_plan() skips
 * what belongs to other shards or lies past the limits.  fn runs each plan,
 * until S->stop. */
typedef void (*plan_fn)(struct fsweep *S, const struct fault_plan *plan, void *ctx);
static void each_plan(struct fsweep *S, const struct fault_stats *cnt, plan_fn fn, void *ctx)
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
                if (!take_plan(S))
                    continue;
                struct fault_plan plan = {(enum fault_kind)k, (enum fault_mode)m, n, 0, 0, 0};
                fn(S, &plan, ctx);
            }
        }
    }
}

static void progress(struct fsweep *S, const char *what, int final)
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

/* Saves a reproducer: the trace, the plan, the phase, and the crash state
 * (if any) as the trace's crash choice. */
static int save_repro(const struct trace *t, const char *path, enum phase ph, const struct fault_plan *plan,
                      const struct crash_choice *ch, const char *post, const struct verdict *v, char *err,
                      size_t errlen)
{
    char pbuf[160];
    fault_plan_format(plan, pbuf, sizeof pbuf);
    const char *extra[] = {"fault.phase", phase_names[ph],
                           "fault.plan", pbuf,
                           "fault.target", ch ? (ph == PH_REPLAY ? "replay" : "state") : "live",
                           "violation.detail", v->detail,
                           post ? "fault.post_cut" : NULL, post,
                           NULL};
    return sweep_save_repro_ex(t, ch, v, extra, path, err, errlen);
}

static uint64_t file_bytes(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n > 0 ? (uint64_t)n : 0;
}

/* Records a violation under its signature; the first of a signature gets
 * the reproducer (within the disk cap) and is printed. */
static void violation(struct fsweep *S, enum phase ph, const struct fault_plan *plan, const struct trace *t,
                      const struct crash_choice *ch, const char *post, const struct verdict *v)
{
    S->violations++;
    S->st[ph][plan->kind][plan->mode].violations++;
    struct failure probe;
    memset(&probe, 0, sizeof probe);
    snprintf(probe.scenario, sizeof probe.scenario, "%s", S->scenario ? S->scenario : "?");
    probe.phase = ph;
    probe.kind = plan->kind;
    snprintf(probe.invariant, sizeof probe.invariant, "%s", v->invariant);
    tool_violation_structure(v, probe.structure, sizeof probe.structure);
    snprintf(probe.key, sizeof probe.key, "%s|%s|%s|%s|%s", probe.invariant, phase_names[ph],
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
                die_infra("out of memory");
        }
        f = &S->f[S->nf++];
        *f = probe;
    }
    f->count++;
    if (f->nex < EXAMPLES) {
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
                     S->o->repro_dir, phase_names[ph], f->scenario, S->seed, fault_kind_names[plan->kind],
                     fault_mode_names[plan->mode], plan->mode == FM_RANDOM ? (uint64_t)plan->seed : plan->nth, id);
            if (save_repro(t, f->repro, ph, plan, ch, post, v, err, sizeof err) != 0) {
                fprintf(stderr, "pcfaults: cannot save reproducer: %s\n", err);
                f->repro[0] = '\0';
                snprintf(f->no_repro, sizeof f->no_repro, "could not be saved");
            } else {
                S->repro_bytes += file_bytes(f->repro);
            }
        }
    }
    if (S->nf <= 20) {
        fprintf(stderr, "%sVIOLATION [%s] %s seed %" PRIu64 " phase %s, %s, %s\n  %s\n", S->tty ? "\n" : "",
                v->invariant, f->scenario, S->seed, phase_names[ph], f->ex[0].plan, f->ex[0].state, v->detail);
        fprintf(stderr, "  signature: %s (further plans with it are counted, not printed)\n", f->key);
        if (f->repro[0])
            fprintf(stderr, "  reproducer: %s\n", f->repro);
        else if (f->no_repro[0])
            fprintf(stderr, "  no reproducer: %s\n", f->no_repro);
    }
}

/* Saves a reproducer of a plan that fired and passed (--keep-repro). */
static void keep_passing(struct fsweep *S, enum phase ph, const struct fault_plan *plan, const struct trace *t,
                         const struct crash_choice *ch, const char *post)
{
    if (!S->o->repro_dir || S->kept >= S->o->keep_repro)
        return;
    struct verdict v;
    verdict_init(&v, 0);
    snprintf(v.invariant, sizeof v.invariant, "none");
    char path[4096], err[512];
    snprintf(path, sizeof path, "%s/pass-fault-%s-%s-s%" PRIu64 "-%s-%s-n%" PRIu64 ".pctrace", S->o->repro_dir,
             phase_names[ph], S->scenario, S->seed, fault_kind_names[plan->kind], fault_mode_names[plan->mode],
             plan->nth);
    if (save_repro(t, path, ph, plan, ch, post, &v, err, sizeof err) != 0)
        fprintf(stderr, "pcfaults: cannot save reproducer: %s\n", err);
    else
        S->kept++;
}

/* ---- the workload run with a plan (phase run) ------------------------------------- */
/* Runs workload w with r's plan (or counting only) into t (initialised here). */
static void run_workload(struct fault_run *r, const struct workload *w, struct trace *t)
{
    char err[600];
    if (fault_run_workload(r, w, t, err, sizeof err) != 0)
        die_infra("%s", err);
}

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

/* ---- judging crash states after a fault (phase run) -------------------------------- */
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
    struct fault_judge_cfg cfg = {8, 16, c->epoch == a->ep.n - 1 ? 512 : 0, 0, g_subj};
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
        violation(a->S, PH_RUN, a->plan, a->t, c, NULL, &v);
    return limits_hit(a->S);
}

/* Sweeps the crash states after the fault in trace t (or only `only`). */
static void judge_after(struct fsweep *S, const struct fault_plan *plan, const struct trace *t, uint64_t fired_pos,
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
        die_infra("cannot build the oracle of a fault trace");
    if (trace_epochs_build(t, &a.ep) != 0)
        die_infra("out of memory");
    trace_epochs_locate(t, &a.ep, fired_pos, &a.fe, &a.fidx);
    struct sweep_config sc;
    sweep_config_defaults(&sc);
    sc.subject = g_subj;
    sc.models = only ? 1u << only->model : S->o->cut_models;
    sc.quiet = 1;
    sc.seed = 1;
    sc.on_state = after_state;
    sc.ctx = &a;
    struct sweep_stats st;
    int rc = sweep_run(t, &sc, &st);
    if (rc != 0)
        die_infra("sweeping the crash states after a fault failed: %s", strerror(-rc));
    if (only) {
        *found = a.found;
        if (a.found)
            *only_v = a.only_v;
    }
    trace_epochs_free(&a.ep);
    oracle_free(&a.oracle);
}

static void plan_context(struct fsweep *S, enum phase ph, const struct fault_plan *p, const char *state)
{
    char pb[160];
    fault_plan_format(p, pb, sizeof pb);
    set_context("pcfaults run %s --seed %" PRIu64 " --phase %s --plan '%s'%s%s", S->workload_args, S->seed,
                phase_names[ph], pb, state ? " --state " : "", state ? state : "");
}

/* One plan in phase run: run, live checks, crash states after the fault. */
static void run_plan(struct fsweep *S, const struct workload *w, const struct fault_plan *plan, int judge_states)
{
    struct kstat *ks = &S->st[PH_RUN][plan->kind][plan->mode];
    double t0 = tool_now();
    plan_context(S, PH_RUN, plan, NULL);
    struct fault_run r;
    memset(&r, 0, sizeof r);
    r.subj = g_subj;
    r.plan = *plan;
    r.live = !S->o->no_live;
    struct trace t;
    run_workload(&r, w, &t);
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
            violation(S, PH_RUN, plan, &t, NULL, NULL, &r.live_v);
        uint64_t before = S->violations;
        if (judge_states && !S->stop)
            judge_after(S, plan, &t, r.fired_pos, NULL, NULL, NULL);
        if (r.live_v.ok && S->violations == before)
            keep_passing(S, PH_RUN, plan, &t, NULL, NULL);
    }
    trace_free(&t);
    ks->seconds += tool_now() - t0;
    g_context[0] = '\0';
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
            die_infra("out of memory");
    }
    /* Keep only the last prefix state of each epoch (all pending writes persisted). */
    if (rs->n && rs->cand[rs->n - 1].epoch == c->epoch)
        rs->cand[rs->n - 1] = *c;
    else
        rs->cand[rs->n++] = *c;
    return 0;
}

static int open_close(struct bdev *dev, uint64_t hash, int *open_rc, uint64_t *inj_open)
{
    uint64_t rng = hash | 1;
    struct subject_handle *h = NULL;
    *open_rc = g_subj->open(dev, 0, &rng, 0, &h);
    *inj_open = fault_get_stats()->injected;
    return *open_rc == 0 ? g_subj->close(h) : 0;
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
    plan_context(S, PH_REPLAY, plan, st);
    uint64_t hash = choice_hash(c, rs->t->seed);
    struct cowdisk c1;
    cowdisk_init_crashdisk(&c1, cd);
    struct replay_watch rw = {&c1, 0, 0};
    fault_set_inject_hook(replay_inject, &rw);
    if (fault_arm(plan) != 0)
        die_infra("cannot arm a replay fault plan");
    int open_rc;
    uint64_t inj_open;
    int close_rc = open_close(cowdisk_bdev(&c1), hash, &open_rc, &inj_open);
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
            violation(S, PH_REPLAY, plan, rs->t, c, NULL, &v);
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
                die_infra("out of memory building a post-cut image");
        }
        for (int i = 0; i < 2; i++) {
            if (i == 1 && upto[1] == upto[0])
                continue;
            if (rs->one_post && strcmp(rs->one_post, posts[i]) != 0)
                continue;
            struct fault_judge_cfg cfg = {8, 16, 0, 0, g_subj};
            struct verdict pv;
            fault_judge_image(cowdisk_bdev(&img[i]), &rs->oracle, cut, hash ^ (uint64_t)i, &cfg, &pv);
            ks->states++;
            if (rs->one_plan) {
                if (!rs->one_found || (rs->one_v.ok && !pv.ok)) {
                    rs->one_v = pv;
                    rs->one_found = 1;
                }
            } else if (!pv.ok) {
                violation(S, PH_REPLAY, plan, rs->t, c, posts[i], &pv);
            }
        }
        cowdisk_free(&img[0]);
        cowdisk_free(&img[1]);
    }
    if (!rs->one_plan && v.ok && c1.writes + c1.truncates > 0)
        keep_passing(S, PH_REPLAY, plan, rs->t, c, NULL);
    if (rs->one_plan && !rs->one_found) {
        rs->one_v = v; /* nothing written: the image is the crash state itself */
        rs->one_found = 1;
    }
    cowdisk_free(&c1);
    ks->seconds += tool_now() - t0;
    g_context[0] = '\0';
    return 1;
}

/* One state of the replay phase, for each_plan. */
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
    progress(S, "replay", 0);
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
        die_infra("cannot count fault points");
    int open_rc;
    uint64_t inj;
    open_close(cowdisk_bdev(&c0), choice_hash(c, rs->t->seed), &open_rc, &inj);
    struct fault_stats cnt = *fault_get_stats();
    fault_disarm();
    cowdisk_free(&c0);
    for (int p = 0; p < FP_COUNT; p++)
        S->point_calls[PH_REPLAY][p] += cnt.calls[p];
    struct replay_one one = {rs, c, cut, cd};
    each_plan(S, &cnt, replay_one_plan, &one);
    return S->stop;
}

/* Phase replay for one clean trace: choose states, then fail every call of their opens. */
static void phase_replay(struct fsweep *S, const struct trace *t, const struct fault_plan *one,
                         const struct crash_choice *one_state, const char *one_post, struct replay_sel *out)
{
    struct replay_sel rs;
    memset(&rs, 0, sizeof rs);
    rs.S = S;
    rs.t = t;
    rs.one_plan = one;
    rs.one_post = one_post;
    if (oracle_build(&rs.oracle, t) != 0)
        die_infra("cannot build the oracle");
    struct sweep_config sc;
    sweep_config_defaults(&sc);
    sc.subject = g_subj;
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
            die_infra("selecting crash states failed");
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
        die_infra("the replay phase's sweep failed");
    if (out) {
        out->one_v = rs.one_v;
        out->one_found = rs.one_found;
        out->one_fired = rs.one_fired;
    }
    free(rs.cand);
    free(rs.pick);
    oracle_free(&rs.oracle);
}

/* ---- phase create ------------------------------------------------------------------------ */
static int create_image(struct cowdisk *c, const struct workload_params *p)
{
    uint64_t rng = p->seed * UINT64_C(0x2545F4914F6CDD1D) + 1;
    struct subject_create cp = {p->virtual_size, p->block_size, p->log_size, p->logical_sector, p->physical_sector};
    return g_subj->create(cowdisk_bdev(c), &cp, &rng);
}

/* The image a failed create left: refused with a format error, or a valid empty disk. */
static void judge_created(const struct workload_params *p, struct cowdisk *img, uint64_t hash, struct verdict *v,
                          int *refused)
{
    struct fault_judge_cfg cfg = {0, 0, 0, 1, g_subj};
    fault_judge_image(cowdisk_bdev(img), NULL, 0, hash, &cfg, v);
    *refused = v->ok && v->open_rc != 0;
    if (!v->ok || v->open_rc != 0)
        return;
    struct subject_handle *h;
    uint64_t rng = hash;
    if (g_subj->open(cowdisk_bdev(img), SUBJECT_RDONLY, &rng, 0, &h) != 0) {
        verdict_fail_named(v, "create-image-invalid", "the image opened once, then not read-only");
        return;
    }
    struct subject_info in;
    g_subj->info(h, &in);
    if (in.virtual_size != p->virtual_size || in.block_size != p->block_size)
        verdict_fail_named(v, "create-image-invalid", "the image opened with virtual size %" PRIu64
                           " and block size %u, not the %" PRIu64 " and %u asked for",
                           in.virtual_size, in.block_size, p->virtual_size, p->block_size);
    uint8_t buf[512];
    for (int i = 0; i < 16 && v->ok; i++) {
        uint64_t off = (mix64(hash + (uint64_t)i) % (p->virtual_size / 512)) * 512;
        if (g_subj->read(h, off, buf, sizeof buf) != 0 || memcmp(buf, SECTOR_ZERO, sizeof buf) != 0)
            verdict_fail_named(v, "create-image-invalid", "virtual offset %" PRIu64 " of the new image does not "
                               "read as zeros", off);
    }
    g_subj->close(h);
}

static int create_plan(struct fsweep *S, const struct trace *t0, const struct workload_params *p,
                       const struct fault_plan *plan, struct verdict *one_v)
{
    struct kstat *ks = &S->st[PH_CREATE][plan->kind][plan->mode];
    double tstart = tool_now();
    plan_context(S, PH_CREATE, plan, NULL);
    struct cowdisk c1;
    cowdisk_init(&c1, NULL, NULL, 0);
    if (fault_arm(plan) != 0)
        die_infra("cannot arm a create fault plan");
    int rc = create_image(&c1, p);
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
            die_infra("out of memory");
        int refused = 0;
        judge_created(p, &img, mix64(p->seed ^ (uint64_t)i), &v, &refused);
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
        violation(S, PH_CREATE, plan, t0, NULL, NULL, &v);
    cowdisk_free(&c1);
    ks->seconds += tool_now() - tstart;
    g_context[0] = '\0';
    return 1;
}

/* The create phase's plans, for each_plan. */
struct create_one {
    const struct trace *t0;
    const struct workload_params *p;
};

static void create_one_plan(struct fsweep *S, const struct fault_plan *plan, void *ctx)
{
    struct create_one *o = ctx;
    create_plan(S, o->t0, o->p, plan, NULL);
    progress(S, "create", 0);
}

static void phase_create(struct fsweep *S, const struct trace *t0, const struct workload_params *p)
{
    struct cowdisk c0;
    cowdisk_init(&c0, NULL, NULL, 0);
    c0.record = 0;
    if (fault_count_start() != 0)
        die_infra("cannot count fault points");
    create_image(&c0, p);
    struct fault_stats cnt = *fault_get_stats();
    fault_disarm();
    cowdisk_free(&c0);
    for (int pt = 0; pt < FP_COUNT; pt++)
        S->point_calls[PH_CREATE][pt] += cnt.calls[pt];
    struct create_one one = {t0, p};
    each_plan(S, &cnt, create_one_plan, &one);
}

/* ---- workloads ------------------------------------------------------------------------ */
static void make_workload(const struct opts *o, const char *scenario, uint64_t seed, struct workload *w)
{
    struct workload_params p = o->wp;
    snprintf(p.scenario, sizeof p.scenario, "%s", scenario);
    p.seed = seed;
    if (!o->ops_given)
        p.ops = workload_scenario_fault_ops(scenario);
    char err[512];
    if (workload_params_resolve(&p, err, sizeof err) != 0)
        tool_die_usage("%s", err);
    if (workload_generate(&p, w) != 0)
        die_infra("out of memory generating the workload");
}

static void workload_args(struct fsweep *S, const struct workload_params *p)
{
    snprintf(S->workload_args, sizeof S->workload_args,
             "--scenario %s --ops %u --virtual-size %" PRIu64 " --block-size %u --log-size %u --logical-sector %u "
             "--physical-sector %u --apply-every %u",
             p->scenario, p->ops, p->virtual_size, p->block_size, p->log_size, p->logical_sector, p->physical_sector,
             p->apply_every);
}

/* The clean run: the trace the replay phase cuts, and the call counts. */
static void clean_run(struct fsweep *S, const struct workload *w, struct trace *t0, struct fault_stats *cnt)
{
    struct fault_run r;
    memset(&r, 0, sizeof r);
    r.subj = g_subj;
    r.count_only = 1;
    set_context("pcfaults run %s --seed %" PRIu64 " (the run without faults)", S->workload_args, S->seed);
    run_workload(&r, w, t0);
    *cnt = *fault_get_stats();
    for (int p = 0; p < FP_COUNT; p++)
        S->point_calls[PH_RUN][p] += cnt->calls[p];
    for (size_t i = 0; i < t0->n_ops; i++)
        if (t0->ops[i].kind == TR_VEND && t0->ops[i].rc != 0)
            die_infra("workload %s seed %" PRIu64 " fails without faults (op %u: %s): fix that first (pcsweep)",
                      w->p.scenario, w->p.seed, t0->ops[i].vop, vhdx_strerror(t0->ops[i].rc));
}

/* The run phase's plans (ctx: the workload), for each_plan. */
static void run_one_plan(struct fsweep *S, const struct fault_plan *plan, void *ctx)
{
    run_plan(S, ctx, plan, 1);
    char what[64];
    snprintf(what, sizeof what, "%s run %s", S->scenario, fault_kind_names[plan->kind]);
    progress(S, what, 0);
}

static void sweep_workload(struct fsweep *S, const char *scenario, uint64_t seed)
{
    struct workload w;
    make_workload(S->o, scenario, seed, &w);
    S->scenario = scenario;
    S->seed = seed;
    workload_args(S, &w.p);
    struct trace t0;
    struct fault_stats cnt;
    clean_run(S, &w, &t0, &cnt);
    if (!S->o->quiet && !g_counting)
        fprintf(stderr, "%spcfaults: %s seed %" PRIu64 ": %u ops, %zu trace operations; calls: read %" PRIu64
                " write %" PRIu64 " flush %" PRIu64 " size %" PRIu64 " truncate %" PRIu64 " alloc %" PRIu64 "\n",
                S->tty ? "\r" : "", scenario, seed, w.p.ops, t0.n_ops, cnt.calls[FP_READ], cnt.calls[FP_WRITE],
                cnt.calls[FP_FLUSH], cnt.calls[FP_SIZE], cnt.calls[FP_TRUNCATE], cnt.calls[FP_ALLOC]);
    if (S->o->phases & (1u << PH_CREATE))
        phase_create(S, &t0, &w.p);
    if (S->o->phases & (1u << PH_RUN))
        each_plan(S, &cnt, run_one_plan, &w);
    if ((S->o->phases & (1u << PH_REPLAY)) && !S->stop)
        phase_replay(S, &t0, NULL, NULL, NULL, NULL);
    trace_free(&t0);
    workload_free(&w);
}

/* ---- output ------------------------------------------------------------------------- */
static struct kstat sum_stats(const struct fsweep *S, int ph, int k, int m)
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

static void write_json(const struct fsweep *S, FILE *f, double wall, uint64_t campaign_seed,
                       const struct coverage *cv)
{
    struct kstat all = sum_stats(S, -1, -1, -1);
    int reached = 0;
    for (int p = 0; p < FP_COUNT; p++)
        reached += S->point_calls[PH_RUN][p] + S->point_calls[PH_REPLAY][p] + S->point_calls[PH_CREATE][p] > 0;
    fprintf(f, "{\n  \"tool\": \"pcfaults %s\",\n  \"engine\": ", S->cmd);
    tool_json_str(f, vhdx_build_id());
    fprintf(f, ",\n  \"injected\": %" PRIu64 ",\n  \"injections\": %" PRIu64 ",\n  \"violations\": %" PRIu64
               ",\n  \"plans\": %" PRIu64 ",\n  \"not_reached\": %" PRIu64 ",\n  \"crash_states\": %" PRIu64
               ",\n  \"refusals\": %" PRIu64 ",\n  \"wall_s\": %.3f,\n  \"faults_per_sec\": %.1f,\n"
               "  \"stopped_early\": %s,\n  \"interrupted\": %s,\n  \"shard\": \"%u/%u\",\n",
            all.injected, all.injections, all.violations, all.plans, all.not_reached, all.states, all.refusals, wall,
            wall > 0 ? (double)all.injected / wall : 0.0, S->stopped_early ? "true" : "false", interrupted ? "true" : "false", S->o->shard_k,
            S->o->shard_n);
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
        fprintf(f, "  \"campaign_seed\": %" PRIu64 ",\n  \"probability\": %.9g,\n", campaign_seed, S->o->probability);
    fprintf(f, "  \"kinds\": {");
    for (int k = 0; k < FK_COUNT; k++) {
        struct kstat st = sum_stats(S, -1, k, -1);
        fprintf(f, "%s\n    \"%s\": ", k ? "," : "", fault_kind_names[k]);
        json_kstat(f, &st);
    }
    fprintf(f, "\n  },\n  \"modes\": {");
    for (int m = 0; m < FM_COUNT; m++) {
        struct kstat st = sum_stats(S, -1, -1, m);
        fprintf(f, "%s\n    \"%s\": ", m ? "," : "", fault_mode_names[m]);
        json_kstat(f, &st);
    }
    fprintf(f, "\n  },\n  \"phases\": {");
    for (int p = 0; p < PH_COUNT; p++) {
        struct kstat st = sum_stats(S, p, -1, -1);
        fprintf(f, "%s\n    \"%s\": ", p ? "," : "", phase_names[p]);
        json_kstat(f, &st);
    }
    fprintf(f, "\n  },\n  \"refusal_codes\": {");
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
        fprintf(f, ", \"phase\": \"%s\", \"kind\": \"%s\", \"scenario\": ", phase_names[x->phase],
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
        fprintf(f, ", \"seed\": %" PRIu64 ", \"phase\": \"%s\", \"plan\": ", x->ex[0].seed, phase_names[x->phase]);
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
static void write_junit(const struct fsweep *S, FILE *f, double wall, const struct coverage *cv)
{
    size_t cases = 0;
    for (int p = 0; p < PH_COUNT; p++)
        for (int k = 0; k < FK_COUNT; k++)
            for (int m = 0; m < FM_COUNT; m++)
                cases += S->st[p][k][m].plans > 0;
    int incomplete = !cv->complete;
    size_t failing = S->nf + (incomplete && S->o->require_complete ? 1 : 0);
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"powercut-faults\" tests=\"%zu\" "
               "failures=\"%zu\" skipped=\"%d\" time=\"%.3f\">\n  <testsuite name=\"faults\" tests=\"%zu\" failures=\"%d\" "
               "skipped=\"%d\">\n",
            cases + 1 + S->nf, failing, incomplete && !S->o->require_complete, wall, cases + 1,
            incomplete && S->o->require_complete, incomplete && !S->o->require_complete);
    char text[160];
    coverage_text(cv, text, sizeof text);
    fprintf(f, "    <testcase classname=\"faults\" name=\"planned plans\" time=\"%.3f\">\n", wall);
    if (incomplete) {
        char msg[320];
        snprintf(msg, sizeof msg, "incomplete: %s (stopped by %s)", text, cv->stopped_by ? cv->stopped_by : "?");
        fprintf(f, "      <%s %smessage=\"", S->o->require_complete ? "failure" : "skipped",
                S->o->require_complete ? "type=\"incomplete\" " : "");
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
                fprintf(f, "    <testcase classname=\"faults.%s\" name=\"%s-%s\" time=\"%.3f\">\n", phase_names[p],
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
        fprintf(f, "    <testcase classname=\"faults.%s\" name=\"", phase_names[x->phase]);
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

/* Plans a sweep of these workloads enumerates (all shards), without
 * running any: the size of the planned work. */
static uint64_t count_plans(struct fsweep *S, char names[][32], int nsc)
{
    uint64_t saved_calls[PH_COUNT][FP_COUNT];
    memcpy(saved_calls, S->point_calls, sizeof saved_calls);
    uint64_t idx = S->plan_index;
    int stop = S->stop;
    S->plan_index = 0;
    S->stop = 0;
    g_counting = 1;
    for (int si = 0; si < nsc && !S->stop; si++)
        for (uint64_t k = 0; k < S->o->seeds && !S->stop; k++)
            sweep_workload(S, names[si], S->o->seed + k);
    g_counting = 0;
    uint64_t total = interrupted ? UINT64_MAX : S->plan_index;
    S->plan_index = idx;
    S->stop = stop;
    memcpy(S->point_calls, saved_calls, sizeof saved_calls);
    return total;
}

/* total_plans: plans of every shard (sweep: counted when it stopped early,
 * known when it finished; campaign: --runs). */
static int finish(struct fsweep *S, uint64_t campaign_seed, int64_t total_plans)
{
    double wall = tool_now() - S->t0;
    progress(S, "done", 1);
    struct kstat all = sum_stats(S, -1, -1, -1);
    struct coverage cv;
    memset(&cv, 0, sizeof cv);
    cv.done = S->plans_run;
    cv.next_plan = S->next_plan_set ? S->next_plan : S->plan_index;
    cv.complete = !S->stopped_early;
    cv.total = total_plans;
    cv.planned = total_plans >= 0 ? (int64_t)shard_plans(S->o->first_plan, (uint64_t)total_plans, S->o->shard_k,
                                                         S->o->shard_n)
                                  : -1;
    if (!cv.complete)
        cv.stopped_by = interrupted             ? "interrupted"
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
    if (!cv.complete)
        fprintf(stderr, "pcfaults: INCOMPLETE: the plans not run may hold violations; resume with --first-plan %"
                        PRIu64 "\n",
                cv.next_plan);
    for (int k = 0; k < FK_COUNT; k++) {
        struct kstat s = sum_stats(S, -1, k, -1);
        if (s.plans)
            fprintf(stderr, "  %-11s plans %6" PRIu64 "  injected %6" PRIu64 "  states %6" PRIu64 "  violations %"
                    PRIu64 "\n", fault_kind_names[k], s.plans, s.injected, s.states, s.violations);
    }
    int lost = 0;
    if (S->o->json) {
        FILE *f = tool_output_begin();
        if (f) {
            write_json(S, f, wall, campaign_seed, &cv);
            tool_output_end(f, S->o->json, "--json", &lost);
        }
    }
    if (S->o->junit) {
        FILE *f = tool_output_begin();
        if (f) {
            write_junit(S, f, wall, &cv);
            tool_output_end(f, S->o->junit, "--junit", &lost);
        }
    }
    free(S->f);
    if (lost)
        return EXIT_BAD_USAGE;
    return all.violations || (S->o->require_complete && !cv.complete) ? EXIT_VIOLATION : EXIT_PASS;
}

static void fsweep_init(struct fsweep *S, struct opts *o, const char *cmd)
{
    memset(S, 0, sizeof *S);
    S->o = o;
    S->cmd = cmd;
    S->t0 = tool_now();
    S->tty = isatty(2);
    tool_check_output(o->json, "--json");
    tool_check_output(o->junit, "--junit");
    if (o->repro_dir && tool_mkdirs(o->repro_dir) != 0)
        tool_die_usage("--repro-dir: cannot create %s", o->repro_dir);
}

/* ---- commands ------------------------------------------------------------------------ */
static void require_fiu(void)
{
    if (!fault_supported())
        die_infra("this build has no fault points: build the fiu or fiu-asan preset (-DPOWERCUT_FIU=ON)");
}

static int cmd_sweep(int argc, char **argv)
{
    struct opts o;
    parse(argc, argv, &o, 0);
    require_fiu();
    struct fsweep S;
    fsweep_init(&S, &o, "sweep");
    signal(SIGINT, on_interrupt);
    signal(SIGTERM, on_interrupt);
    char names[TOOL_MAX_SCENARIOS][32];
    int nsc = tool_scenario_list(o.scenarios, names);
    fprintf(stderr, "pcfaults: engine %s; shard %u/%u\n", vhdx_build_id(), o.shard_k, o.shard_n);
    for (int si = 0; si < nsc && !S.stop; si++)
        for (uint64_t k = 0; k < o.seeds && !S.stop; k++)
            sweep_workload(&S, names[si], o.seed + k);
    int64_t total = !S.stopped_early ? (int64_t)S.plan_index
                    : interrupted || o.no_count ? -1 : (int64_t)count_plans(&S, names, nsc);
    /* count_plans gives UINT64_MAX, i.e. -1 here, when a signal cut it short */
    return finish(&S, 0, total);
}

static int cmd_campaign(int argc, char **argv)
{
    struct opts o;
    parse(argc, argv, &o, 0);
    require_fiu();
    if (!o.campaign_seed_given) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        o.campaign_seed = mix64((uint64_t)ts.tv_sec ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid()) % 1000000000u;
    }
    struct fsweep S;
    fsweep_init(&S, &o, "campaign");
    signal(SIGINT, on_interrupt);
    signal(SIGTERM, on_interrupt);
    char names[TOOL_MAX_SCENARIOS][32];
    int nsc = tool_scenario_list(o.scenarios, names);
    int kinds[FK_COUNT], nk = 0;
    for (int k = 0; k < FK_COUNT; k++)
        if (o.kinds & (1u << k))
            kinds[nk++] = k;
    fprintf(stderr, "pcfaults: engine %s; campaign seed %" PRIu64 " (repeat with --campaign-seed %" PRIu64
            "), p=%.9g, %" PRIu64 " runs\n", vhdx_build_id(), o.campaign_seed, o.campaign_seed, o.probability, o.runs);
    for (uint64_t r = 0; r < o.runs && !S.stop; r++) {
        uint64_t h = mix64(o.campaign_seed * UINT64_C(0x100000001B3) + r);
        if (!take_plan(&S))
            continue;
        const char *sc = names[h % (uint64_t)nsc];
        uint64_t wseed = 1 + (h >> 8) % 1000;
        struct fault_plan plan = {(enum fault_kind)kinds[(h >> 20) % (uint64_t)nk], FM_RANDOM, 0, 0, o.probability,
                                  (uint32_t)(h >> 32)};
        struct workload w;
        make_workload(&o, sc, wseed, &w);
        S.scenario = sc;
        S.seed = wseed;
        workload_args(&S, &w.p);
        run_plan(&S, &w, &plan, 1);
        workload_free(&w);
        char what[64];
        snprintf(what, sizeof what, "campaign run %" PRIu64, r);
        progress(&S, what, 0);
    }
    return finish(&S, o.campaign_seed, (int64_t)o.runs);
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

static int run_one(struct fsweep *S, const struct workload *w, struct trace *t0, enum phase ph,
                   const struct fault_plan *plan, const struct crash_choice *state, const char *post,
                   const struct crash_choice *after_state_only, struct verdict *out)
{
    struct verdict v;
    verdict_init(&v, 0);
    int fired = 0;
    if (ph == PH_RUN) {
        struct fault_run r;
        memset(&r, 0, sizeof r);
        r.subj = g_subj;
        r.plan = *plan;
        r.live = !S->o->no_live;
        struct trace t;
        plan_context(S, PH_RUN, plan, NULL);
        run_workload(&r, w, &t);
        fired = r.fired;
        S->st[PH_RUN][plan->kind][plan->mode].plans++;
        if (fired) {
            S->st[PH_RUN][plan->kind][plan->mode].injected++;
            S->st[PH_RUN][plan->kind][plan->mode].injections += fault_get_stats()->injected;
            printf("fault:     fired first in workload op %ld (%s), %" PRIu64 " injection(s)\n", r.fired_op,
                   fault_point_names[r.fired_point], fault_get_stats()->injected);
            if (!r.live_v.ok) {
                v = r.live_v;
                violation(S, PH_RUN, plan, &t, NULL, NULL, &r.live_v);
            }
            print_verdict("live:", &r.live_v);
            if (after_state_only) {
                struct verdict sv;
                int found = 0;
                judge_after(S, plan, &t, r.fired_pos, after_state_only, &sv, &found);
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
                judge_after(S, plan, &t, r.fired_pos, NULL, NULL, NULL);
                printf("states:    %" PRIu64 " crash states after the fault judged\n",
                       S->st[PH_RUN][plan->kind][plan->mode].states);
            }
        }
        trace_free(&t);
    } else if (ph == PH_REPLAY) {
        struct replay_sel out_sel;
        memset(&out_sel, 0, sizeof out_sel);
        phase_replay(S, t0, plan, state, post, &out_sel);
        fired = out_sel.one_fired;
        if (fired)
            printf("fault:     fired while opening the crash image (%" PRIu64 " injection(s)); %" PRIu64
                   " post-cut image(s) judged\n", S->st[PH_REPLAY][plan->kind][plan->mode].injections,
                   S->st[PH_REPLAY][plan->kind][plan->mode].states);
        if (!out_sel.one_found) {
            fprintf(stderr, "pcfaults: the crash state was not generated from the trace\n");
            return -1;
        }
        v = out_sel.one_v;
        if (!v.ok)
            violation(S, PH_REPLAY, plan, t0, state, post, &v);
        print_verdict("verdict:", &v);
    } else {
        fired = create_plan(S, t0, &w->p, plan, &v);
        if (!v.ok)
            violation(S, PH_CREATE, plan, t0, NULL, NULL, &v);
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
    enum phase ph = PH_RUN;
    if (o.phase) {
        int found = 0;
        for (int p = 0; p < PH_COUNT; p++)
            if (!strcmp(o.phase, phase_names[p])) {
                ph = (enum phase)p;
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
    fsweep_init(&S, &o, "run");
    struct workload w;
    make_workload(&o, names[0], o.seed, &w);
    S.scenario = names[0];
    S.seed = o.seed;
    workload_args(&S, &w.p);
    struct trace t0;
    struct fault_stats cnt;
    clean_run(&S, &w, &t0, &cnt);
    printf("workload:  %s seed %" PRIu64 ", %zu ops, %zu trace operations\nplan:      %s (phase %s)\n", names[0],
           o.seed, w.n, t0.n_ops, o.plan, phase_names[ph]);
    if (run_one(&S, &w, &t0, ph, &plan, ph == PH_REPLAY ? &state : NULL, NULL, NULL, NULL) < 0) {
        trace_free(&t0);
        workload_free(&w);
        return EXIT_BAD_USAGE;
    }
    trace_free(&t0);
    workload_free(&w);
    S.plans_run = 1; /* the one plan given */
    return finish(&S, 0, 1);
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
    enum phase ph = PH_COUNT;
    for (int p = 0; p < PH_COUNT; p++)
        if (!strcmp(phs, phase_names[p]))
            ph = (enum phase)p;
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
    const char *built = trace_get_meta(&t, "engine");
    if (built && strcmp(built, vhdx_build_id()))
        fprintf(stderr, "pcfaults: note: recorded with %s, re-run with %s\n", built, vhdx_build_id());
    struct workload w;
    if (workload_from_trace(&t, &w, err, sizeof err) != 0) {
        trace_free(&t);
        tool_die_usage("%s: %s", o.pos[0], err);
    }
    struct fsweep S;
    fsweep_init(&S, &o, "repro");
    S.scenario = w.p.scenario;
    S.seed = w.p.seed;
    workload_args(&S, &w.p);
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
    if (!o.ops_given) {
        o.wp.ops = 0; /* the default workloads, as pcsweep runs them */
        o.ops_given = 1;
    }
    struct fsweep S;
    fsweep_init(&S, &o, "points");
    o.replay_states = 1;
    o.kinds = 0; /* count only: no plans */
    char names[TOOL_MAX_SCENARIOS][32];
    int nsc = tool_scenario_list(o.scenarios, names);
    for (int si = 0; si < nsc; si++) {
        struct workload w;
        make_workload(&o, names[si], o.seed, &w);
        S.scenario = names[si];
        S.seed = o.seed;
        workload_args(&S, &w.p);
        struct trace t0;
        struct fault_stats cnt;
        clean_run(&S, &w, &t0, &cnt);
        phase_replay(&S, &t0, NULL, NULL, NULL, NULL);
        phase_create(&S, &t0, &w.p);
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

/* The usage, the scenarios and the fault kinds (plan.h's registry). */
static void print_usage(FILE *f)
{
    tool_print_usage(usage, f);
    fputs("\nfault kinds (--kinds, kind=):\n", f);
    for (int k = 0; k < FK_COUNT; k++)
        fprintf(f, "  %-10s %s\n", fault_kind_names[k], fault_kind_about[k]);
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
    tool_die_usage("unknown command '%s'", argv[1]);
}
