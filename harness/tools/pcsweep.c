/*
 * pcsweep - the crash-point sweep, reproducers and traces, from C.
 *
 *   pcsweep sweep [options]          run workloads and cut the power at every point
 *   pcsweep repro FILE [options]     re-run exactly one saved crash state
 *   pcsweep record OUT [options]     run a workload and save its trace
 *   pcsweep info TRACE               what a trace holds
 *
 * Exit status: 0 no violation; 1 violations (sweep) or the reproducer still
 * fails (repro); 2 usage or infrastructure error.  `pcsweep --help` lists
 * the options; scripts/powercut sweep / repro drive this program.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/refgen.h"
#include "harness/sweep.h"
#include "harness/toolutil.h"
#include "harness/workload.h"
#include "vhdx/vhdx.h"

enum { EXIT_PASS = 0, EXIT_VIOLATION = 1, EXIT_BAD_USAGE = 2 };

static const char usage[] =
    "usage: pcsweep COMMAND [options]\n"
    "\n"
    "  sweep    run workloads on a simulated disk and judge every crash state\n"
    "  repro FILE   re-run the crash state saved in a reproducer; print verdict and diff\n"
    "  record OUT   run one workload and save its trace (no sweep)\n"
    "  export       write crash states of a trace as image files for external checkers\n"
    "  info TRACE   print a trace's metadata and operation counts\n"
    "  scenarios    the scenario registry as JSON (name, about)\n"
    "  refgen       images and traces from the independent reference writer (harness/ref):\n"
    "               --out DIR --count N [--seed S] [--mid K] writes each trace (.pctrace), its\n"
    "               final image and K mid-log images (a log to replay; default 3), all checked\n"
    "               by the reference; --sweep --count N (or: sweep --refgen N) sweeps N\n"
    "               generated traces with the sweep options below (seeds S..S+N-1);\n"
    "               --sessions N and the image options fix the writer's choices\n"
    "\n"
    "workload options (sweep, record):\n"
    "  --scenario LIST      a comma list of the scenarios below, or all (default all)\n"
    "  --seed N             first workload seed (default 1)\n"
    "  --seeds N            number of seeds per scenario, N..N+count-1 (default 1)\n"
    "  --ops N              workload operations (default: per scenario)\n"
    "  --virtual-size N     bytes, K/M/G/T suffixes (default 64M)\n"
    "  --block-size N       (default 1M)    --log-size N (default 1M)\n"
    "  --logical-sector N   512|4096 (default 512)   --physical-sector N (default 4096)\n"
    "  --apply-every N      engine batching (default: per scenario)\n"
    "  --trace FILE         sweep a saved trace instead of running workloads\n"
    "  --save-trace DIR     also save each workload's trace into DIR\n"
    "\n"
    "sweep options:\n"
    "  --models LIST        prefix,drop,reorder,torn,stale,recovery,misdirect,lost,bitflip\n"
    "                       or all, power, corruption (default all)\n"
    "  --shard K/N          judge only states with index %% N == K (split across jobs)\n"
    "  --sweep-seed N       seed of sampled choices (default 1)\n"
    "  --reorder-max N      exhaustive reorder up to N pending writes (default 8)\n"
    "  --reorder-samples N  sampled subsets above that (default 32)\n"
    "  --torn 512|4096|both torn-write granularity (default both)\n"
    "  --per-op N --probes N   sectors checked per in-flight op, random probes (8, 16)\n"
    "  --judges LIST        oracle,reference,view,unwritten or all (default all): the data\n"
    "                       oracle and the subject's own open/check; the independent\n"
    "                       reference (harness/ref); read-only vs read-write views; zeros\n"
    "                       where nothing was written (docs/harness.md, Judges)\n"
    "  --unwritten-every N  the unwritten-sector check on every Nth state (4; 1 = all)\n"
    "  --replayed-every N   the reference re-reads the replayed image of every Nth class (4)\n"
    "  --full-every N --full-max M   every Nth state a wide check of M sectors across\n"
    "                       all written data (64, 4096; --full-max 0 = every sector)\n"
    "  --max-states N  --max-seconds S  --max-violations N   limits (0 = none)\n"
    "  --repro-dir DIR      save a reproducer per violation (default: none)\n"
    "  --json PATH          summary as JSON     --junit PATH   JUnit XML\n"
    "  --quiet              no progress line (it is shown only on a terminal anyway)\n"
    "  --no-share           give every state its own open and check (states identical in\n"
    "                       every byte the engine reads at open share them by default)\n"
    "\n"
    "export options (with --trace and the sweep's model/shard/limit options):\n"
    "  --out DIR            images and manifest.jsonl (one JSON object per image)\n"
    "  --only LIST          only these state indices (comma list)\n"
    "  --with-repro         also write a reproducer (.pctrace) next to each image\n"
    "\n"
    "repro options:\n"
    "  --save-image PATH    write the crash image (before replay) to PATH\n"
    "  --minimize OUT       shrink the workload and crash choice (delta debugging)\n"
    "                       while the same invariant still fails; save the result to OUT\n"
    "  --minimize-seconds S time budget for --minimize (default 120)\n"
    "  --json PATH          verdict as JSON\n"
    "  --rerun              re-run the recorded workload with this build and sweep the same\n"
    "                       model (confirms a fix of the writer; the trace itself holds the\n"
    "                       old writer's I/O)\n";

/* ---- options ------------------------------------------------------------------- */
struct opts {
    struct workload_params wp;
    char scenarios[256];
    uint64_t seed, seeds;
    const char *trace, *save_trace, *json, *junit, *repro_dir, *save_image, *minimize, *out, *only;
    int with_repro, rerun;
    double minimize_seconds;
    struct sweep_config sc;
    const char *pos[2];
    int npos;
};

static void parse(int argc, char **argv, struct opts *o, int want_pos)
{
    memset(o, 0, sizeof *o);
    sweep_config_defaults(&o->sc);
    snprintf(o->scenarios, sizeof o->scenarios, "all");
    o->seed = 1;
    o->seeds = 1;
    o->minimize_seconds = 120;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (!strcmp(a, name) && (v || (tool_die_usage("%s needs a value", name), 0)) && ++i)
        if (!strcmp(a, "--quiet"))
            o->sc.quiet = 1;
        else if (!strcmp(a, "--no-share"))
            o->sc.no_share = 1;
        else if (!strcmp(a, "--with-repro"))
            o->with_repro = 1;
        else if (!strcmp(a, "--rerun"))
            o->rerun = 1;
        else if (OPT("--out"))
            o->out = v;
        else if (OPT("--only"))
            o->only = v;
        else if (OPT("--scenario"))
            snprintf(o->scenarios, sizeof o->scenarios, "%s", v);
        else if (OPT("--seed"))
            o->seed = tool_parse_num(a, v);
        else if (OPT("--seeds"))
            o->seeds = tool_parse_num(a, v);
        else if (OPT("--ops"))
            o->wp.ops = (uint32_t)tool_parse_num(a, v);
        else if (OPT("--virtual-size"))
            o->wp.virtual_size = tool_parse_num(a, v);
        else if (OPT("--block-size"))
            o->wp.block_size = (uint32_t)tool_parse_num(a, v);
        else if (OPT("--log-size"))
            o->wp.log_size = (uint32_t)tool_parse_num(a, v);
        else if (OPT("--logical-sector"))
            o->wp.logical_sector = (uint32_t)tool_parse_num(a, v);
        else if (OPT("--physical-sector"))
            o->wp.physical_sector = (uint32_t)tool_parse_num(a, v);
        else if (OPT("--apply-every"))
            o->wp.apply_every = (uint32_t)tool_parse_num(a, v);
        else if (OPT("--trace"))
            o->trace = v;
        else if (OPT("--save-trace"))
            o->save_trace = v;
        else if (OPT("--models")) {
            if (crash_models_parse(v, &o->sc.models) != 0)
                tool_die_usage("--models: '%s' names an unknown model (prefix, drop, reorder, torn, stale, recovery, "
                          "misdirect, lost, bitflip, all, power, corruption)", v);
        } else if (OPT("--judges")) {
            if (sweep_judges_parse(v, &o->sc.judges) != 0)
                tool_die_usage("--judges: '%s' names an unknown judge (oracle, reference, view, unwritten, all)", v);
        } else if (OPT("--unwritten-every")) {
            o->sc.unwritten_every = (uint32_t)tool_parse_num(a, v);
        } else if (OPT("--replayed-every")) {
            o->sc.replayed_every = (uint32_t)tool_parse_num(a, v);
        } else if (OPT("--shard")) {
            unsigned k, n;
            char extra;
            if (sscanf(v, "%u/%u%c", &k, &n, &extra) != 2 || n == 0 || k >= n)
                tool_die_usage("--shard takes K/N with 0 <= K < N, not '%s'", v);
            o->sc.shard_k = k;
            o->sc.shard_n = n;
        } else if (OPT("--sweep-seed"))
            o->sc.seed = tool_parse_num(a, v);
        else if (OPT("--reorder-max")) {
            o->sc.reorder_max = (uint32_t)tool_parse_num(a, v);
            if (o->sc.reorder_max > 16)
                tool_die_usage("--reorder-max above 16 would enumerate %s subsets per epoch", "65536+");
        } else if (OPT("--reorder-samples"))
            o->sc.reorder_samples = (uint32_t)tool_parse_num(a, v);
        else if (OPT("--torn")) {
            o->sc.torn_grans = !strcmp(v, "512") ? 1 : !strcmp(v, "4096") ? 2 : !strcmp(v, "both") ? 3 : 0;
            if (!o->sc.torn_grans)
                tool_die_usage("--torn takes 512, 4096 or both");
        } else if (OPT("--per-op"))
            o->sc.per_op = (uint32_t)tool_parse_num(a, v);
        else if (OPT("--probes"))
            o->sc.probes = (uint32_t)tool_parse_num(a, v);
        else if (OPT("--full-every"))
            o->sc.full_every = (uint32_t)tool_parse_num(a, v);
        else if (OPT("--full-max"))
            o->sc.full_max = (uint32_t)tool_parse_num(a, v);
        else if (OPT("--max-states"))
            o->sc.max_states = tool_parse_num(a, v);
        else if (OPT("--max-seconds"))
            o->sc.max_seconds = (double)tool_parse_num(a, v);
        else if (OPT("--max-violations"))
            o->sc.max_violations = tool_parse_num(a, v);
        else if (OPT("--repro-dir"))
            o->repro_dir = v;
        else if (OPT("--json"))
            o->json = v;
        else if (OPT("--junit"))
            o->junit = v;
        else if (OPT("--save-image"))
            o->save_image = v;
        else if (OPT("--minimize"))
            o->minimize = v;
        else if (OPT("--minimize-seconds"))
            o->minimize_seconds = (double)tool_parse_num(a, v);
        else if (a[0] == '-' && a[1] == '-')
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
    o->sc.repro_dir = o->repro_dir;
}

struct failure {
    char scenario[32];
    uint64_t seed;
    char choice[160];
    struct verdict v;
    char repro[4096];
};

struct run_record {
    char scenario[32];
    uint64_t seed;
    struct sweep_stats st;
    uint64_t trace_ops;
};

struct collector {
    struct failure *f;
    size_t n, cap;
    const char *scenario;
    uint64_t seed;
    int print;
};

static int on_violation(void *ctx, const struct crash_choice *c, const struct verdict *v, const char *repro)
{
    struct collector *col = ctx;
    if (col->n == col->cap) {
        col->cap = col->cap ? col->cap * 2 : 16;
        col->f = realloc(col->f, col->cap * sizeof *col->f);
        if (!col->f) {
            fprintf(stderr, "pcsweep: out of memory\n");
            exit(EXIT_BAD_USAGE);
        }
    }
    struct failure *f = &col->f[col->n++];
    memset(f, 0, sizeof *f);
    snprintf(f->scenario, sizeof f->scenario, "%s", col->scenario);
    f->seed = col->seed;
    crash_choice_format(c, f->choice, sizeof f->choice);
    f->v = *v;
    snprintf(f->repro, sizeof f->repro, "%s", repro ? repro : "");
    if (col->print && col->n <= 20) {
        fprintf(stderr, "\nVIOLATION [%s] scenario %s seed %" PRIu64 " cut %" PRIu64 " %s\n  %s\n", v->invariant,
                col->scenario, col->seed, v->cut, f->choice, v->detail);
        if (repro)
            fprintf(stderr, "  reproducer: %s\n", repro);
    }
    return 0;
}

/* SIGINT/SIGTERM: stop after the current state and still write the
 * summary (marked "interrupted"); a second signal kills as usual. */
static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
    interrupted = 1;
    signal(sig, SIG_DFL);
}

static void write_json(const char *path, struct run_record *runs, size_t nruns, const struct collector *col,
                       const struct opts *o, double wall)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "pcsweep: %s: %s\n", path, strerror(errno));
        return;
    }
    uint64_t states = 0, viol = 0, per[M_COUNT] = {0}, vper[M_COUNT] = {0};
    for (size_t i = 0; i < nruns; i++) {
        states += runs[i].st.states;
        viol += runs[i].st.violations;
        for (int m = 0; m < M_COUNT; m++) {
            per[m] += runs[i].st.states_per_model[m];
            vper[m] += runs[i].st.violations_per_model[m];
        }
    }
    int stopped = 0;
    for (size_t i = 0; i < nruns; i++)
        stopped |= runs[i].st.stopped_early;
    fprintf(f, "{\n  \"engine\": ");
    tool_json_str(f, vhdx_build_id());
    fprintf(f, ",\n  \"complete\": %s,\n  \"interrupted\": %s", stopped ? "false" : "true",
            interrupted ? "true" : "false");
    fprintf(f, ",\n  \"states\": %" PRIu64 ",\n  \"violations\": %" PRIu64 ",\n  \"wall_s\": %.3f,\n"
               "  \"states_per_sec\": %.1f,\n  \"shard\": \"%u/%u\",\n  \"sweep_seed\": %" PRIu64 ",\n",
            states, viol, wall, wall > 0 ? (double)states / wall : 0.0, o->sc.shard_k, o->sc.shard_n, o->sc.seed);
    fprintf(f, "  \"models\": {");
    int first = 1;
    for (int m = 0; m < M_COUNT; m++)
        if (o->sc.models & (1u << m)) {
            fprintf(f, "%s\"%s\": %" PRIu64, first ? "" : ", ", crash_model_names[m], per[m]);
            first = 0;
        }
    fprintf(f, "},\n  \"states_per_sec_per_model\": {");
    first = 1;
    for (int m = 0; m < M_COUNT; m++)
        if (o->sc.models & (1u << m)) {
            double sec = 0;
            for (size_t i = 0; i < nruns; i++)
                sec += runs[i].st.seconds_per_model[m];
            fprintf(f, "%s\"%s\": %.1f", first ? "" : ", ", crash_model_names[m], sec > 0 ? (double)per[m] / sec : 0.0);
            first = 0;
        }
    fprintf(f, "},\n  \"violations_per_model\": {");
    first = 1;
    for (int m = 0; m < M_COUNT; m++)
        if (o->sc.models & (1u << m)) {
            fprintf(f, "%s\"%s\": %" PRIu64, first ? "" : ", ", crash_model_names[m], vper[m]);
            first = 0;
        }
    fprintf(f, "},\n  \"seeds\": [");
    for (size_t i = 0; i < nruns; i++) {
        int dup = 0;
        for (size_t j = 0; j < i; j++)
            dup |= runs[j].seed == runs[i].seed;
        if (!dup)
            fprintf(f, "%s%" PRIu64, i ? ", " : "", runs[i].seed);
    }
    fprintf(f, "],\n  \"runs\": [");
    for (size_t i = 0; i < nruns; i++) {
        fprintf(f, "%s\n    {\"scenario\": ", i ? "," : "");
        tool_json_str(f, runs[i].scenario);
        fprintf(f, ", \"seed\": %" PRIu64 ", \"trace_ops\": %" PRIu64 ", \"epochs\": %" PRIu64 ", \"states\": %" PRIu64
                   ", \"violations\": %" PRIu64 ", \"replays\": %" PRIu64 ", \"opens\": %" PRIu64 ", \"wall_s\": %.3f, \"models\": {",
                runs[i].seed, runs[i].trace_ops, runs[i].st.epochs, runs[i].st.states, runs[i].st.violations,
                runs[i].st.replays, runs[i].st.opens, runs[i].st.seconds);
        first = 1;
        for (int m = 0; m < M_COUNT; m++)
            if (o->sc.models & (1u << m)) {
                fprintf(f, "%s\"%s\": %" PRIu64, first ? "" : ", ", crash_model_names[m], runs[i].st.states_per_model[m]);
                first = 0;
            }
        fprintf(f, "}}");
    }
    fprintf(f, "\n  ],\n  \"failures\": [");
    for (size_t i = 0; i < col->n; i++) {
        const struct failure *x = &col->f[i];
        fprintf(f, "%s\n    {\"scenario\": ", i ? "," : "");
        tool_json_str(f, x->scenario);
        fprintf(f, ", \"seed\": %" PRIu64 ", \"cut\": %" PRIu64 ", \"choice\": ", x->seed, x->v.cut);
        tool_json_str(f, x->choice);
        fprintf(f, ", \"invariant\": ");
        tool_json_str(f, x->v.invariant);
        fprintf(f, ", \"detail\": ");
        tool_json_str(f, x->v.detail);
        fprintf(f, ", \"reproducer\": ");
        if (x->repro[0])
            tool_json_str(f, x->repro);
        else
            fprintf(f, "null");
        fprintf(f, "}");
    }
    fprintf(f, "\n  ]\n}\n");
    fclose(f);
}

static void write_junit(const char *path, struct run_record *runs, size_t nruns, const struct collector *col,
                        double wall)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "pcsweep: %s: %s\n", path, strerror(errno));
        return;
    }
    /* failures = failing test cases (runs with at least one violation), at both levels */
    size_t failing = 0;
    for (size_t i = 0; i < nruns; i++) {
        int hit = 0;
        for (size_t k = 0; k < col->n && !hit; k++)
            hit = !strcmp(col->f[k].scenario, runs[i].scenario) && col->f[k].seed == runs[i].seed;
        failing += hit;
    }
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"powercut-sweep\" tests=\"%zu\" "
               "failures=\"%zu\" time=\"%.3f\">\n  <testsuite name=\"sweep\" tests=\"%zu\" failures=\"%zu\">\n",
            nruns, failing, wall, nruns, failing);
    for (size_t i = 0; i < nruns; i++) {
        fprintf(f, "    <testcase classname=\"sweep.%s\" name=\"seed-%" PRIu64 "\" time=\"%.3f\">\n",
                runs[i].scenario, runs[i].seed, runs[i].st.seconds);
        for (size_t k = 0; k < col->n; k++) {
            const struct failure *x = &col->f[k];
            if (strcmp(x->scenario, runs[i].scenario) || x->seed != runs[i].seed)
                continue;
            tool_junit_failure(f, x->v.invariant, x->choice, x->v.detail, x->repro);
        }
        fprintf(f, "      <system-out>states %" PRIu64 ", violations %" PRIu64 "</system-out>\n    </testcase>\n",
                runs[i].st.states, runs[i].st.violations);
    }
    fprintf(f, "  </testsuite>\n</testsuites>\n");
    fclose(f);
}

/* ---- commands ------------------------------------------------------------------- */
/* Runs a workload.  0; -1 harness failure; -2 the workload failed on a
 * healthy simulated disk (an engine bug: reported as a violation), with the
 * message in fail_msg. */
static char fail_msg[1024];
static int build_trace(const struct opts *o, const char *scenario, uint64_t seed, struct trace *t)
{
    struct workload_params p = o->wp;
    snprintf(p.scenario, sizeof p.scenario, "%s", scenario);
    p.seed = seed;
    char err[512];
    if (workload_params_resolve(&p, err, sizeof err) != 0)
        tool_die_usage("%s", err);
    struct workload w;
    if (workload_generate(&p, &w) != 0) {
        fprintf(stderr, "pcsweep: out of memory generating the workload\n");
        return -1;
    }
    trace_init(t);
    int rc = workload_run(&w, t, err, sizeof err);
    workload_free(&w);
    if (rc != 0) {
        snprintf(fail_msg, sizeof fail_msg, "workload %s seed %" PRIu64 " failed on a healthy simulated disk: %s",
                 scenario, seed, err);
        fprintf(stderr, "pcsweep: %s\n", fail_msg);
        return rc == -ENOMEM ? -1 : -2;
    }
    return 0;
}

static int cmd_sweep(int argc, char **argv)
{
    struct opts o;
    parse(argc, argv, &o, 0);
    if (o.repro_dir && tool_mkdirs(o.repro_dir) != 0)
        tool_die_usage("--repro-dir: cannot create %s", o.repro_dir);
    if (o.save_trace && tool_mkdirs(o.save_trace) != 0)
        tool_die_usage("--save-trace: cannot create %s", o.save_trace);
    char names[TOOL_MAX_SCENARIOS][32];
    int nsc = o.trace ? 1 : tool_scenario_list(o.scenarios, names);
    size_t nruns_max = (size_t)nsc * (o.trace ? 1 : o.seeds);
    struct run_record *runs = calloc(nruns_max, sizeof *runs);
    struct collector col = {0};
    col.print = 1;
    o.sc.on_violation = on_violation;
    o.sc.ctx = &col;
    o.sc.cancel = &interrupted;
    signal(SIGINT, on_interrupt);
    signal(SIGTERM, on_interrupt);
    size_t nruns = 0;
    double t0 = tool_now();
    uint64_t total_states = 0;
    fprintf(stderr, "pcsweep: engine %s; sweep seed %" PRIu64 ", shard %u/%u\n", vhdx_build_id(), o.sc.seed,
            o.sc.shard_k, o.sc.shard_n);
    for (int si = 0; si < nsc; si++) {
        for (uint64_t k = 0; k < (o.trace ? 1 : o.seeds); k++) {
            struct trace t;
            uint64_t seed = o.seed + k;
            char err[512];
            if (o.trace) {
                if (trace_load(&t, o.trace, err, sizeof err) != 0) {
                    fprintf(stderr, "pcsweep: %s\n", err);
                    return EXIT_BAD_USAGE;
                }
                const char *wl = trace_get_meta(&t, "workload");
                snprintf(names[0], 32, "%s", wl ? wl : "external");
                seed = t.seed;
            } else {
                int brc = build_trace(&o, names[si], seed, &t);
                if (brc == -1)
                    return EXIT_BAD_USAGE;
                if (brc == -2) {
                    /* Record it as a violation of its own, with the partial trace as evidence. */
                    struct run_record *r = &runs[nruns++];
                    snprintf(r->scenario, sizeof r->scenario, "%s", names[si]);
                    r->seed = seed;
                    r->trace_ops = t.n_ops;
                    r->st.violations = 1;
                    col.scenario = r->scenario;
                    col.seed = seed;
                    struct crash_choice none = {.model = M_DROP, .epoch = UINT32_MAX};
                    struct verdict v;
                    memset(&v, 0, sizeof v);
                    snprintf(v.invariant, sizeof v.invariant, "workload-failed");
                    snprintf(v.detail, sizeof v.detail, "%s", fail_msg);
                    char path[4096] = "";
                    if (o.repro_dir) {
                        snprintf(path, sizeof path, "%s/workload-failed-%s-s%" PRIu64 ".pctrace", o.repro_dir,
                                 names[si], seed);
                        trace_set_meta(&t, "violation.invariant", "workload-failed");
                        if (trace_save(&t, path, err, sizeof err) != 0) {
                            fprintf(stderr, "pcsweep: %s\n", err);
                            path[0] = '\0';
                        }
                    }
                    on_violation(&col, &none, &v, path[0] ? path : NULL);
                    trace_free(&t);
                    if (o.sc.max_violations && col.n >= o.sc.max_violations)
                        goto done;
                    continue;
                }
            }
            if (o.save_trace && !o.trace) {
                char path[4096];
                snprintf(path, sizeof path, "%s/%s-seed%" PRIu64 ".pctrace", o.save_trace, names[si], seed);
                if (trace_save(&t, path, err, sizeof err) != 0)
                    fprintf(stderr, "pcsweep: %s\n", err);
            }
            struct run_record *r = &runs[nruns++];
            snprintf(r->scenario, sizeof r->scenario, "%s", names[si]);
            r->seed = seed;
            r->trace_ops = t.n_ops;
            col.scenario = r->scenario;
            col.seed = seed;
            struct sweep_config sc = o.sc;
            if (sc.max_states)
                sc.max_states = sc.max_states > total_states ? sc.max_states - total_states : 1;
            if (sc.max_violations) {
                uint64_t seen = 0;
                for (size_t j = 0; j + 1 < nruns; j++)
                    seen += runs[j].st.violations;
                sc.max_violations = sc.max_violations > seen ? sc.max_violations - seen : 1;
            }
            if (sc.max_seconds > 0)
                sc.max_seconds = sc.max_seconds - (tool_now() - t0) > 0.001 ? sc.max_seconds - (tool_now() - t0) : 0.001;
            if (!o.sc.quiet)
                fprintf(stderr, "pcsweep: %s seed %" PRIu64 ": %zu trace operations, %" PRIu64 " bytes written\n",
                        r->scenario, seed, t.n_ops, t.bytes_written);
            int rc = sweep_run(&t, &sc, &r->st);
            trace_free(&t);
            if (rc != 0) {
                fprintf(stderr, "pcsweep: sweep failed: %s\n", strerror(-rc));
                return EXIT_BAD_USAGE;
            }
            total_states += r->st.states;
            if (r->st.stopped_early)
                goto done;
        }
    }
done:;
    double wall = tool_now() - t0;
    uint64_t viol = 0;
    for (size_t i = 0; i < nruns; i++)
        viol += runs[i].st.violations;
    fprintf(stderr, "pcsweep: %" PRIu64 " states in %.1f s (%.0f/s), %" PRIu64 " violations\n", total_states, wall,
            wall > 0 ? (double)total_states / wall : 0.0, viol);
    if (o.json)
        write_json(o.json, runs, nruns, &col, &o, wall);
    if (o.junit)
        write_junit(o.junit, runs, nruns, &col, wall);
    free(runs);
    free(col.f);
    return viol ? EXIT_VIOLATION : EXIT_PASS;
}

static int cmd_record(int argc, char **argv)
{
    struct opts o;
    parse(argc, argv, &o, 1);
    char names[TOOL_MAX_SCENARIOS][32];
    int n = tool_scenario_list(o.scenarios, names);
    if (n != 1)
        tool_die_usage("record: give exactly one --scenario");
    struct trace t;
    if (build_trace(&o, names[0], o.seed, &t) != 0)
        return EXIT_BAD_USAGE;
    char err[512];
    int rc = trace_save(&t, o.pos[0], err, sizeof err);
    if (rc)
        fprintf(stderr, "pcsweep: %s\n", err);
    else
        printf("%s: %zu operations, %" PRIu64 " bytes written, base %" PRIu64 " bytes\n", o.pos[0], t.n_ops,
               t.bytes_written, t.base_size);
    trace_free(&t);
    return rc ? EXIT_BAD_USAGE : EXIT_PASS;
}

static int cmd_info(int argc, char **argv)
{
    struct opts o;
    parse(argc, argv, &o, 1);
    struct trace t;
    char err[512];
    if (trace_load(&t, o.pos[0], err, sizeof err) != 0) {
        fprintf(stderr, "pcsweep: %s\n", err);
        return EXIT_BAD_USAGE;
    }
    size_t counts[256] = {0};
    for (size_t i = 0; i < t.n_ops; i++)
        counts[t.ops[i].kind]++;
    printf("trace %s: version %u, flags 0x%x, seed %" PRIu64 "\n", o.pos[0], TRACE_VERSION, t.flags, t.seed);
    printf("base: %" PRIu64 " bytes (%zu non-zero sectors)\n", t.base_size, t.base.count);
    printf("operations: %zu (writes %zu, %" PRIu64 " bytes; flushes %zu; truncates %zu; marks %zu; workload ops %zu)\n",
           t.n_ops, counts[TR_WRITE], t.bytes_written, counts[TR_FLUSH], counts[TR_TRUNCATE], counts[TR_MARK],
           counts[TR_VBEGIN]);
    for (size_t i = 0; i < t.n_meta; i++)
        printf("meta %s = %s\n", t.meta[i].key, t.meta[i].value);
    for (size_t i = 0; i < t.n_choice; i++)
        printf("choice %s = %s\n", t.choice[i].key, t.choice[i].value);
    trace_free(&t);
    return EXIT_PASS;
}

/* ---- export ---------------------------------------------------------------------- */
struct exporter {
    const struct opts *o;
    const struct trace *t;
    FILE *manifest;
    uint64_t index;     /* state index within the export */
    uint64_t *only;     /* selected indices (sorted), NULL = all */
    size_t n_only;
    uint64_t written;
    int failed;
};

static int export_state(void *ctx, const struct crash_choice *c, uint64_t cut, struct crashdisk *cd)
{
    struct exporter *x = ctx;
    uint64_t idx = x->index++;
    if (x->only) {
        int hit = 0;
        for (size_t i = 0; i < x->n_only; i++)
            hit |= x->only[i] == idx;
        if (!hit)
            return 0;
    }
    char name[128], path[4096], choice[200];
    snprintf(name, sizeof name, "state-%06" PRIu64 "-%s-e%u", idx, crash_model_names[c->model], c->epoch);
    snprintf(path, sizeof path, "%s/%s.vhdx", x->o->out, name);
    int rc = crashdisk_save_image(cd, path);
    if (rc) {
        fprintf(stderr, "pcsweep: %s: %s\n", path, strerror(-rc));
        x->failed = 1;
        return 1;
    }
    crash_choice_format(c, choice, sizeof choice);
    fprintf(x->manifest, "{\"index\": %" PRIu64 ", \"image\": ", idx);
    tool_json_str(x->manifest, path);
    fprintf(x->manifest, ", \"model\": \"%s\", \"epoch\": %u, \"cut\": %" PRIu64 ", \"size\": %" PRIu64
                         ", \"choice\": ",
            crash_model_names[c->model], c->epoch, cut, cd->size);
    tool_json_str(x->manifest, choice);
    if (x->o->with_repro) {
        char rpath[4096], err[512];
        snprintf(rpath, sizeof rpath, "%s/%s.pctrace", x->o->out, name);
        struct verdict v;
        memset(&v, 0, sizeof v);
        v.ok = 1;
        v.cut = cut;
        snprintf(v.invariant, sizeof v.invariant, "exported");
        if (sweep_save_repro(x->t, c, &v, rpath, err, sizeof err) == 0) {
            fprintf(x->manifest, ", \"reproducer\": ");
            tool_json_str(x->manifest, rpath);
        } else {
            fprintf(stderr, "pcsweep: %s\n", err);
        }
    }
    fprintf(x->manifest, "}\n");
    x->written++;
    return 0;
}

static int cmd_export(int argc, char **argv)
{
    struct opts o;
    parse(argc, argv, &o, 0);
    if (!o.trace || !o.out)
        tool_die_usage("export needs --trace FILE and --out DIR");
    if (tool_mkdirs(o.out) != 0)
        tool_die_usage("--out: cannot create %s", o.out);
    struct trace t;
    char err[512];
    if (trace_load(&t, o.trace, err, sizeof err) != 0) {
        fprintf(stderr, "pcsweep: %s\n", err);
        return EXIT_BAD_USAGE;
    }
    struct exporter x = {&o, &t, NULL, 0, NULL, 0, 0, 0};
    if (o.only) {
        char buf[4096];
        snprintf(buf, sizeof buf, "%s", o.only);
        x.only = calloc(strlen(buf) + 1, sizeof *x.only);
        for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
            x.only[x.n_only++] = tool_parse_num("--only", tok);
    }
    char mpath[4096];
    snprintf(mpath, sizeof mpath, "%s/manifest.jsonl", o.out);
    x.manifest = fopen(mpath, "w");
    if (!x.manifest) {
        fprintf(stderr, "pcsweep: %s: %s\n", mpath, strerror(errno));
        trace_free(&t);
        return EXIT_BAD_USAGE;
    }
    struct sweep_config sc = o.sc;
    sc.on_state = export_state;
    sc.ctx = &x;
    sc.models &= ~(1u << M_RECOVERY);
    struct sweep_stats st;
    int rc = sweep_run(&t, &sc, &st);
    fclose(x.manifest);
    free(x.only);
    trace_free(&t);
    if (rc || x.failed)
        return EXIT_BAD_USAGE;
    fprintf(stderr, "pcsweep: exported %" PRIu64 " crash images to %s (manifest %s)\n", x.written, o.out, mpath);
    return EXIT_PASS;
}

/* ---- repro and minimize ---------------------------------------------------------- */
static void print_verdict(const struct crash_choice *ch, const struct verdict *v, const struct trace *t)
{
    char c[200];
    crash_choice_format(ch, c, sizeof c);
    printf("state:     %s\n", c);
    printf("workload:  %s, seed %" PRIu64 ", cut after trace operation %" PRIu64 " of %zu\n",
           trace_get_meta(t, "workload") ? trace_get_meta(t, "workload") : "external", t->seed, v->cut, t->n_ops);
    printf("open:      %s%s\n", v->open_rc ? vhdx_strerror(v->open_rc) : "ok",
           v->replayed ? "" : " (no log replayed)");
    if (v->replayed)
        printf("replayed:  %u log entries\n", v->replayed);
    if (v->ok)
        printf("verdict:   OK (no violation)\n");
    else
        printf("verdict:   VIOLATION %s\n  %s\n", v->invariant, v->detail);
}

static void write_verdict_json(const char *path, const struct crash_choice *ch, const struct verdict *v,
                               const char *file)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    char c[200];
    crash_choice_format(ch, c, sizeof c);
    fprintf(f, "{\"reproducer\": ");
    tool_json_str(f, file);
    fprintf(f, ", \"state\": ");
    tool_json_str(f, c);
    fprintf(f, ", \"ok\": %s, \"invariant\": ", v->ok ? "true" : "false");
    tool_json_str(f, v->ok ? "" : v->invariant);
    fprintf(f, ", \"detail\": ");
    tool_json_str(f, v->ok ? "" : v->detail);
    fprintf(f, ", \"cut\": %" PRIu64 ", \"open\": ", v->cut);
    tool_json_str(f, v->open_rc ? vhdx_errname(v->open_rc) : "OK");
    fprintf(f, ", \"replayed_entries\": %u}\n", v->replayed);
    fclose(f);
}

struct first_hit {
    const char *invariant;
    int found;
    struct crash_choice c;
    struct verdict v;
};

static int first_hit_cb(void *ctx, const struct crash_choice *c, const struct verdict *v, const char *repro)
{
    (void)repro;
    struct first_hit *h = ctx;
    if (strcmp(v->invariant, h->invariant) != 0)
        return 0;
    h->found = 1;
    h->c = *c;
    h->v = *v;
    return 1; /* stop */
}


/* Does the workload `ops[keep]` still fail with the invariant (same model)? */
static int test_subset(const struct workload *base, const uint8_t *keep, const struct sweep_config *sc0,
                       const char *invariant, struct trace *out, struct first_hit *hit)
{
    struct workload w = *base;
    w.ops = malloc((base->n + 1) * sizeof *w.ops);
    w.n = 0;
    for (size_t i = 0; i < base->n; i++)
        if (keep[i])
            w.ops[w.n++] = base->ops[i];
    char err[512];
    trace_init(out);
    int rc = workload_run(&w, out, err, sizeof err);
    free(w.ops);
    if (rc != 0) {
        trace_free(out);
        return 0;
    }
    struct sweep_config sc = *sc0;
    sc.quiet = 1;
    sc.repro_dir = NULL;
    sc.on_violation = first_hit_cb;
    memset(hit, 0, sizeof *hit);
    hit->invariant = invariant;
    sc.ctx = hit;
    struct sweep_stats st;
    sweep_run(out, &sc, &st);
    if (!hit->found)
        trace_free(out);
    return hit->found;
}

static int minimize(const struct trace *t, const struct crash_choice *ch, const struct verdict *v,
                    const struct opts *o)
{
    struct workload w;
    char err[512];
    if (workload_from_trace(t, &w, err, sizeof err) != 0) {
        fprintf(stderr, "pcsweep: --minimize: %s\n", err);
        return EXIT_BAD_USAGE;
    }
    struct sweep_config sc = o->sc;
    sc.models = 1u << ch->model;
    double t0 = tool_now();
    size_t n = w.n;
    uint8_t *keep = malloc(n), *trial = malloc(n);
    memset(keep, 1, n);
    struct trace best;
    struct first_hit hit, best_hit;
    if (!test_subset(&w, keep, &sc, v->invariant, &best, &best_hit)) {
        fprintf(stderr, "pcsweep: --minimize: the violation does not reproduce when the workload is re-run\n");
        free(keep);
        free(trial);
        workload_free(&w);
        return EXIT_BAD_USAGE;
    }
    size_t kept = n;
    /* ddmin: remove chunks of decreasing size while the failure persists. */
    for (size_t chunk = n / 2; chunk >= 1 && tool_now() - t0 < o->minimize_seconds; chunk /= 2) {
        int progress = 1;
        while (progress && tool_now() - t0 < o->minimize_seconds) {
            progress = 0;
            for (size_t start = 0; start < n && tool_now() - t0 < o->minimize_seconds; start += chunk) {
                memcpy(trial, keep, n);
                size_t removed = 0;
                for (size_t i = start; i < start + chunk && i < n; i++)
                    if (trial[i]) {
                        trial[i] = 0;
                        removed++;
                    }
                if (!removed)
                    continue;
                struct trace cand;
                if (test_subset(&w, trial, &sc, v->invariant, &cand, &hit)) {
                    memcpy(keep, trial, n);
                    kept -= removed;
                    trace_free(&best);
                    best = cand;
                    best_hit = hit;
                    progress = 1;
                    fprintf(stderr, "pcsweep: minimize: %zu of %zu workload ops remain (%.0f s)\n", kept, n,
                            tool_now() - t0);
                }
            }
        }
        if (chunk == 1)
            break;
    }
    int rc = sweep_save_repro(&best, &best_hit.c, &best_hit.v, o->minimize, err, sizeof err);
    if (rc)
        fprintf(stderr, "pcsweep: %s\n", err);
    else {
        char c[200];
        crash_choice_format(&best_hit.c, c, sizeof c);
        printf("minimized: %zu of %zu workload ops, %zu trace operations; state %s\nsaved: %s\n", kept, n,
               best.n_ops, c, o->minimize);
    }
    trace_free(&best);
    free(keep);
    free(trial);
    workload_free(&w);
    return rc ? EXIT_BAD_USAGE : EXIT_VIOLATION;
}

/* Re-runs the trace's workload with this build and sweeps it with the given
 * model(s); reports the first violation of `invariant` (any when NULL).
 * This is how a fix of the *writer* is confirmed: the recorded trace holds
 * the old writer's I/O, a re-run produces the new one's. */
static int rerun(const struct trace *t, const struct opts *o, unsigned models, const char *invariant)
{
    struct workload w;
    char err[512];
    if (workload_from_trace(t, &w, err, sizeof err) != 0) {
        fprintf(stderr, "pcsweep: --rerun: %s\n", err);
        return EXIT_BAD_USAGE;
    }
    struct trace nt;
    trace_init(&nt);
    int rc = workload_run(&w, &nt, err, sizeof err);
    workload_free(&w);
    printf("rerun:     workload %s seed %" PRIu64 " re-run with %s\n", w.p.scenario, t->seed, vhdx_build_id());
    if (rc != 0) {
        printf("verdict:   VIOLATION workload-failed\n  %s\n", err);
        trace_free(&nt);
        return EXIT_VIOLATION;
    }
    if (models == 0) {
        printf("verdict:   OK (the workload completes)\n");
        trace_free(&nt);
        return EXIT_PASS;
    }
    struct first_hit hit;
    memset(&hit, 0, sizeof hit);
    hit.invariant = invariant;
    struct sweep_config sc = o->sc;
    sc.models = models;
    sc.quiet = 1;
    sc.on_violation = first_hit_cb;
    sc.ctx = &hit;
    struct sweep_stats st;
    sweep_run(&nt, &sc, &st);
    trace_free(&nt);
    if (!hit.found) {
        printf("verdict:   OK (%" PRIu64 " states of the re-run workload, no %s violation)\n", st.states,
               invariant ? invariant : "");
        return EXIT_PASS;
    }
    char c[200];
    crash_choice_format(&hit.c, c, sizeof c);
    printf("verdict:   VIOLATION %s at %s\n  %s\n", hit.v.invariant, c, hit.v.detail);
    return EXIT_VIOLATION;
}

static int cmd_repro(int argc, char **argv)
{
    struct opts o;
    parse(argc, argv, &o, 1);
    struct trace t;
    char err[512];
    if (trace_load(&t, o.pos[0], err, sizeof err) != 0) {
        fprintf(stderr, "pcsweep: %s\n", err);
        return EXIT_BAD_USAGE;
    }
    const char *inv = trace_get_meta(&t, "violation.invariant");
    if (!trace_get_choice(&t, "model") && inv && !strcmp(inv, "workload-failed")) {
        printf("reproducer: the workload failed on a healthy simulated disk when recorded\n");
        int st = rerun(&t, &o, 0, NULL);
        trace_free(&t);
        return st;
    }
    struct crash_choice ch;
    if (crash_choice_from_trace(&t, &ch, err, sizeof err) != 0) {
        fprintf(stderr, "pcsweep: %s: %s\n", o.pos[0], err);
        trace_free(&t);
        return EXIT_BAD_USAGE;
    }
    const char *built = trace_get_meta(&t, "engine");
    if (built && strcmp(built, vhdx_build_id()))
        fprintf(stderr, "pcsweep: note: recorded with %s, re-run with %s\n", built, vhdx_build_id());
    if (o.rerun) {
        int st = rerun(&t, &o, 1u << ch.model, inv && strcmp(inv, "exported") ? inv : NULL);
        trace_free(&t);
        return st;
    }
    struct sweep_config sc = o.sc;
    sc.save_image = o.save_image;
    struct verdict v;
    int rc = sweep_eval_choice(&t, &sc, &ch, &v);
    if (rc != 0) {
        fprintf(stderr, "pcsweep: %s: the saved crash state could not be rebuilt from the trace: %s\n", o.pos[0],
                strerror(-rc));
        trace_free(&t);
        return EXIT_BAD_USAGE;
    }
    print_verdict(&ch, &v, &t);
    const char *was = trace_get_meta(&t, "violation.invariant");
    if (was && v.ok)
        printf("note:      the reproducer recorded '%s'; this build does not fail it\n", was);
    if (o.save_image)
        printf("image:     %s (the crash image before replay)\n", o.save_image);
    if (o.json)
        write_verdict_json(o.json, &ch, &v, o.pos[0]);
    int status = v.ok ? EXIT_PASS : EXIT_VIOLATION;
    if (o.minimize && !v.ok)
        status = minimize(&t, &ch, &v, &o);
    trace_free(&t);
    return status;
}

/* ---- refgen: the reference writer's images and traces ------------------------------- */
/* Options of refgen that parse() does not know are taken out of argv first
 * (--count, --refgen, --mid, --sweep, --sessions); the rest are the sweep's. */
struct refgen_opts {
    uint64_t count;
    uint32_t mid, sessions;
    int sweep;
};

static int refgen_asked(int argc, char **argv)
{
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--refgen"))
            return 1;
    return 0;
}

static char **refgen_args(int argc, char **argv, struct refgen_opts *ro, int *nargc)
{
    char **v = calloc((size_t)argc + 1, sizeof *v);
    if (!v)
        tool_die_usage("out of memory");
    ro->count = 1;
    ro->mid = 3;
    ro->sweep = !strcmp(argv[1], "sweep");
    int n = 0;
    v[n++] = argv[0];
    v[n++] = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--sweep")) {
            ro->sweep = 1;
        } else if (!strcmp(a, "--count") || !strcmp(a, "--refgen") || !strcmp(a, "--mid") ||
                   !strcmp(a, "--sessions")) {
            if (!val)
                tool_die_usage("%s needs a value", a);
            uint64_t x = tool_parse_num(a, val);
            if (!strcmp(a, "--mid"))
                ro->mid = (uint32_t)x;
            else if (!strcmp(a, "--sessions"))
                ro->sessions = (uint32_t)x;
            else
                ro->count = x;
            i++;
        } else {
            v[n++] = argv[i];
        }
    }
    if (ro->count == 0 || ro->count > 100000)
        tool_die_usage("--count/--refgen must be between 1 and 100000");
    *nargc = n;
    return v;
}

static int refgen_one(const struct opts *o, const struct refgen_opts *ro, uint64_t seed, struct trace *t,
                      struct refgen_info *info)
{
    struct refgen_params p;
    memset(&p, 0, sizeof p);
    p.w.virtual_size = o->wp.virtual_size;
    p.w.block_size = o->wp.block_size;
    p.w.logical_sector = o->wp.logical_sector;
    p.w.physical_sector = o->wp.physical_sector;
    p.w.log_length = o->wp.log_size;
    p.w.ops = o->wp.ops;
    p.w.sessions = ro->sessions;
    char err[512];
    trace_init(t);
    int rc = refgen_trace_ex(seed, &p, t, info, err, sizeof err);
    if (rc == -EINVAL)
        tool_die_usage("refgen: %s", err);
    if (rc)
        fprintf(stderr, "pcsweep: refgen seed %" PRIu64 ": %s\n", seed, err);
    return rc;
}

/* One image of a trace: written only when the reference finds it valid. */
static int refgen_write_image(const struct trace *t, size_t cut, const char *path, FILE *manifest, uint64_t seed,
                              const char *kind, const char *tpath)
{
    struct secmap m;
    secmap_init(&m);
    uint64_t size;
    int rc = refgen_image_at(t, cut, &m, &size);
    struct ref_image r;
    memset(&r, 0, sizeof r);
    struct refgen_src src = {&m, size};
    if (rc == 0 && refgen_ref_open(&src, &r) != 0)
        rc = -ENOMEM;
    int valid = rc == 0 && r.status == REF_VALID;
    if (rc == 0 && !valid)
        fprintf(stderr, "pcsweep: refgen seed %" PRIu64 " %s (op %zu): the reference says %s: %s: %s\n", seed, kind,
                cut, ref_status_name(r.status), r.rule, r.why);
    if (valid && (rc = refgen_save_image(&m, size, path)) != 0)
        fprintf(stderr, "pcsweep: %s: %s\n", path, strerror(-rc));
    if (valid && rc == 0) {
        fprintf(manifest, "{\"seed\": %" PRIu64 ", \"kind\": \"%s\", \"cut\": %zu, \"image\": ", seed, kind, cut);
        tool_json_str(manifest, path);
        fprintf(manifest, ", \"trace\": ");
        tool_json_str(manifest, tpath);
        fprintf(manifest, ", \"size\": %" PRIu64 ", \"log_pending\": %s, \"entries\": %u}\n", size,
                r.log_pending ? "true" : "false", r.log_pending ? r.log.entries : 0);
    }
    ref_image_free(&r);
    secmap_free(&m);
    return rc ? rc : valid ? 0 : 1;
}

static int refgen_write(const struct opts *o, const struct refgen_opts *ro)
{
    if (!o->out)
        tool_die_usage("refgen needs --out DIR (or --sweep)");
    if (tool_mkdirs(o->out) != 0)
        tool_die_usage("--out: cannot create %s", o->out);
    char mpath[4096];
    snprintf(mpath, sizeof mpath, "%s/manifest.jsonl", o->out);
    FILE *manifest = fopen(mpath, "w");
    if (!manifest) {
        fprintf(stderr, "pcsweep: %s: %s\n", mpath, strerror(errno));
        return EXIT_BAD_USAGE;
    }
    int bad = 0, failed = 0;
    uint64_t images = 0;
    for (uint64_t k = 0; k < ro->count; k++) {
        const uint64_t seed = o->seed + k;
        struct trace t;
        struct refgen_info info;
        if (refgen_one(o, ro, seed, &t, &info) != 0) {
            failed = 1;
            trace_free(&t);
            continue;
        }
        char tpath[4096], ipath[4096], err[512];
        snprintf(tpath, sizeof tpath, "%s/refgen-s%" PRIu64 ".pctrace", o->out, seed);
        if (trace_save(&t, tpath, err, sizeof err) != 0) {
            fprintf(stderr, "pcsweep: %s\n", err);
            failed = 1;
        }
        snprintf(ipath, sizeof ipath, "%s/refgen-s%" PRIu64 "-final.vhdx", o->out, seed);
        int rc = refgen_write_image(&t, t.n_ops, ipath, manifest, seed, "final", tpath);
        bad |= rc > 0;
        failed |= rc < 0;
        images += rc == 0;
        size_t *cuts, n;
        if (refgen_pending_cuts(&t, &cuts, &n) == 0) {
            for (uint32_t j = 0; j < ro->mid && j < n; j++) {
                size_t cut = cuts[n <= ro->mid ? j : (size_t)j * (n - 1) / (ro->mid > 1 ? ro->mid - 1 : 1)];
                snprintf(ipath, sizeof ipath, "%s/refgen-s%" PRIu64 "-mid%zu.vhdx", o->out, seed, cut);
                rc = refgen_write_image(&t, cut, ipath, manifest, seed, "mid-log", tpath);
                bad |= rc > 0;
                failed |= rc < 0;
                images += rc == 0;
            }
            free(cuts);
        }
        fprintf(stderr, "pcsweep: refgen seed %" PRIu64 ": %zu operations, block %u, log %u at %" PRIu64
                        ", variety %#x, %u entries (max %u descriptors)\n",
                seed, t.n_ops, info.layout.block_size, info.layout.log_length, info.layout.log_offset,
                info.layout.variety, info.stats.entries, info.stats.max_descriptors);
        trace_free(&t);
    }
    fclose(manifest);
    fprintf(stderr, "pcsweep: refgen: %" PRIu64 " images and %" PRIu64 " traces in %s (manifest %s)\n", images,
            ro->count, o->out, mpath);
    return failed ? EXIT_BAD_USAGE : bad ? EXIT_VIOLATION : EXIT_PASS;
}

static int refgen_sweep(struct opts *o, const struct refgen_opts *ro)
{
    if (o->repro_dir && tool_mkdirs(o->repro_dir) != 0)
        tool_die_usage("--repro-dir: cannot create %s", o->repro_dir);
    if (o->save_trace && tool_mkdirs(o->save_trace) != 0)
        tool_die_usage("--save-trace: cannot create %s", o->save_trace);
    struct run_record *runs = calloc(ro->count, sizeof *runs);
    struct collector col = {0};
    if (!runs)
        tool_die_usage("out of memory");
    col.print = 1;
    col.scenario = "refgen";
    o->sc.on_violation = on_violation;
    o->sc.ctx = &col;
    o->sc.cancel = &interrupted;
    signal(SIGINT, on_interrupt);
    signal(SIGTERM, on_interrupt);
    size_t nruns = 0;
    int failed = 0;
    double t0 = tool_now();
    uint64_t total = 0, viol = 0;
    fprintf(stderr, "pcsweep: engine %s; reference writer traces, seeds %" PRIu64 "..%" PRIu64 "; sweep seed %" PRIu64
                    ", shard %u/%u\n",
            vhdx_build_id(), o->seed, o->seed + ro->count - 1, o->sc.seed, o->sc.shard_k, o->sc.shard_n);
    for (uint64_t k = 0; k < ro->count && !interrupted; k++) {
        const uint64_t seed = o->seed + k;
        struct trace t;
        struct refgen_info info;
        if (refgen_one(o, ro, seed, &t, &info) != 0) {
            failed = 1;
            trace_free(&t);
            continue;
        }
        char err[512];
        if (o->save_trace) {
            char path[4096];
            snprintf(path, sizeof path, "%s/refgen-s%" PRIu64 ".pctrace", o->save_trace, seed);
            if (trace_save(&t, path, err, sizeof err) != 0)
                fprintf(stderr, "pcsweep: %s\n", err);
        }
        struct run_record *r = &runs[nruns++];
        snprintf(r->scenario, sizeof r->scenario, "refgen");
        r->seed = seed;
        r->trace_ops = t.n_ops;
        col.seed = seed;
        struct sweep_config sc = o->sc;
        if (sc.max_states)
            sc.max_states = sc.max_states > total ? sc.max_states - total : 1;
        if (sc.max_violations)
            sc.max_violations = sc.max_violations > viol ? sc.max_violations - viol : 1;
        if (sc.max_seconds > 0)
            sc.max_seconds = sc.max_seconds - (tool_now() - t0) > 0.001 ? sc.max_seconds - (tool_now() - t0) : 0.001;
        if (!o->sc.quiet)
            fprintf(stderr, "pcsweep: refgen seed %" PRIu64 ": %zu trace operations, %u entries (max %u descriptors, "
                            "%u sectors), block %u, log %u at %" PRIu64 ", variety %#x\n",
                    seed, t.n_ops, info.stats.entries, info.stats.max_descriptors, info.stats.max_sectors,
                    info.layout.block_size, info.layout.log_length, info.layout.log_offset, info.layout.variety);
        int rc = sweep_run(&t, &sc, &r->st);
        trace_free(&t);
        if (rc != 0) {
            fprintf(stderr, "pcsweep: sweep failed: %s\n", strerror(-rc));
            failed = 1;
            break;
        }
        total += r->st.states;
        viol += r->st.violations;
        if (r->st.stopped_early)
            break;
    }
    double wall = tool_now() - t0;
    fprintf(stderr, "pcsweep: %" PRIu64 " states in %.1f s (%.0f/s), %" PRIu64 " violations\n", total, wall,
            wall > 0 ? (double)total / wall : 0.0, viol);
    if (o->json)
        write_json(o->json, runs, nruns, &col, o, wall);
    if (o->junit)
        write_junit(o->junit, runs, nruns, &col, wall);
    free(runs);
    free(col.f);
    return failed ? EXIT_BAD_USAGE : viol ? EXIT_VIOLATION : EXIT_PASS;
}

static int cmd_refgen(int argc, char **argv)
{
    struct refgen_opts ro;
    memset(&ro, 0, sizeof ro);
    int nargc;
    char **nargv = refgen_args(argc, argv, &ro, &nargc);
    struct opts o;
    parse(nargc, nargv, &o, 0);
    int rc = ro.sweep ? refgen_sweep(&o, &ro) : refgen_write(&o, &ro);
    free(nargv);
    return rc;
}

int main(int argc, char **argv)
{
    tool_set_name("pcsweep");
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        tool_print_usage(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_BAD_USAGE : EXIT_PASS;
    }
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            tool_print_usage(usage, stdout);
            return EXIT_PASS;
        }
    if (!strcmp(argv[1], "refgen") || (!strcmp(argv[1], "sweep") && refgen_asked(argc, argv)))
        return cmd_refgen(argc, argv);
    if (!strcmp(argv[1], "sweep"))
        return cmd_sweep(argc, argv);
    if (!strcmp(argv[1], "repro"))
        return cmd_repro(argc, argv);
    if (!strcmp(argv[1], "record"))
        return cmd_record(argc, argv);
    if (!strcmp(argv[1], "info"))
        return cmd_info(argc, argv);
    if (!strcmp(argv[1], "scenarios")) {
        tool_print_scenarios_json(stdout);
        return EXIT_PASS;
    }
    if (!strcmp(argv[1], "export"))
        return cmd_export(argc, argv);
    tool_die_usage("unknown command '%s'", argv[1]);
}
