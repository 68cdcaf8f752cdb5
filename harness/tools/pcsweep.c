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

#include "harness/epochs.h"
#include "harness/protocol.h"
#include "harness/subject.h"
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
    "  info TRACE [--json [--ops]]   print a trace's metadata and operation counts; with\n"
    "               --json also its epochs (and with --ops every operation, without data)\n"
    "  scenarios    the scenario registry as JSON (name, about)\n"
    "  subjects     the implementations this build can test, as JSON (name, about, creates)\n"
    "  protocol     check the log's ordering rules on workload traces (or --trace FILE)\n"
    "               without crash states; exit 1 on any violation (docs/protocol.md)\n"
    "  invariants [--json]   the invariant registry (name, class, about)\n"
    "  models       the crash-model registry as JSON (name, class, exportable)\n"
    "  shard [--shard K/N] [--shards N] [--json]   the shard a sweep here would take:\n"
    "               --shard, else TEST_SHARD_INDEX/TEST_TOTAL_SHARDS (touches\n"
    "               TEST_SHARD_STATUS_FILE), JOB_COMPLETION_INDEX with --shards N,\n"
    "               SLURM_ARRAY_TASK_ID/COUNT (minus SLURM_ARRAY_TASK_MIN), else 0/1\n"
    "  refgen       images and traces from the independent reference writer (harness/ref):\n"
    "               --out DIR --count N [--seed S] [--mid K] writes each trace (.pctrace), its\n"
    "               final image and K mid-log images (a log to replay; default 3), all checked\n"
    "               by the reference; --sweep --count N (or: sweep --refgen N) sweeps N\n"
    "               generated traces with the sweep options below (seeds S..S+N-1);\n"
    "               --sessions N and the image options fix the writer's choices\n"
    "\n"
    "workload options (sweep, record, protocol):\n"
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
    "  --models LIST        a comma list of the crash models below, or all, power,\n"
    "                       corruption (default all)\n"
    "  --shard K/N          judge only states with index % N == K (split across jobs);\n"
    "                       without it the launcher's environment decides (see shard)\n"
    "  --shards N           shards of a Kubernetes Indexed Job (with JOB_COMPLETION_INDEX)\n"
    "  --sweep-seed N       seed of sampled choices (default 1)\n"
    "  --reorder-max N      exhaustive reorder up to N pending writes (default 8)\n"
    "  --reorder-samples N  sampled subsets above that (default 32)\n"
    "  --torn 512|4096|both torn-write granularity (default both)\n"
    "  --per-op N --probes N   sectors checked per in-flight op, random probes (8, 16)\n"
    "  --subject NAME       the implementation that writes: the workload runs through it (with\n"
    "                       --trace: the one that wrote the trace); default libvhdx (`pcsweep\n"
    "                       subjects` lists them)\n"
    "  --replay-subject NAME   the implementation that opens, replays and is judged on every\n"
    "                       crash state (default: the --subject); a cross-subject sweep, e.g.\n"
    "                       --subject qemu --replay-subject libvhdx: QEMU's crash states replayed\n"
    "                       by libvhdx.  Known departures: a protocol finding or a crash image\n"
    "                       the writer left broken (ref:invalid-crash-state) is set apart when\n"
    "                       the writer's list has it, any other state verdict when the reader's\n"
    "                       has it (harness/sweep.h)\n"
    "  --strict             count the subjects' known departures (filed findings; `pcsweep\n"
    "                       subjects` lists them) as violations, not apart\n"
    "  --judges LIST        oracle,reference,view,unwritten,protocol or all (default all):\n"
    "                       the data oracle and the subject's own open/check; the\n"
    "                       independent reference (harness/ref); read-only vs read-write\n"
    "                       views; zeros where nothing was written; the write-ahead\n"
    "                       protocol on each trace (docs/harness.md, Judges)\n"
    "  --unwritten-every N  the unwritten-sector check on every Nth state (4; 1 = all)\n"
    "  --replayed-every N   the reference re-reads the replayed image of every Nth class (4)\n"
    "  --full-every N --full-max M   every Nth state a wide check of M sectors across\n"
    "                       all written data (64, 4096; --full-max 0 = every sector)\n"
    "  --max-states N  --max-seconds S  --max-violations N   limits (0 = none); a sweep\n"
    "                       stopped by one says how much of the planned work it did\n"
    "  --first-epoch E      resume: skip the epochs before E of the first run (the JSON's\n"
    "                       \"resume\" says where a stopped sweep ends)\n"
    "  --no-count           do not count the states a stopped run left out (its coverage is\n"
    "                       then given in epochs only)\n"
    "  --repro-dir DIR      save one reproducer per violation signature (default: none)\n"
    "  --max-repro-mb N     disk cap of the reproducers of one sweep (default 512)\n"
    "  --examples N         example states kept per signature (default 5)\n"
    "  --json PATH          summary as JSON     --junit PATH   JUnit XML\n"
    "  --require-complete   a run that did not judge all its planned states is a failed\n"
    "                       JUnit test case and exit status 1 (default: skipped)\n"
    "  --quiet              no progress line (it is shown only on a terminal anyway)\n"
    "  --no-share           give every state its own open and check (states identical in\n"
    "                       every byte the engine reads at open share them by default)\n"
    "\n"
    "export options (with --trace and the sweep's model/shard/limit options):\n"
    "  --out DIR            images and manifest.jsonl (one JSON object per image)\n"
    "  --only LIST          only these state indices (comma list)\n"
    "  --with-repro         also write a reproducer (.pctrace) next to each image\n"
    "  --count              write nothing; print the number of states as JSON\n"
    "                       ({\"states\": N, \"per_model\": {...}})\n"
    "\n"
    "protocol options: the workload options, --trace FILE (one recorded trace),\n"
    "  --json PATH (every violation), --quiet (no per-violation lines)\n"
    "\n"
    "repro options:\n"
    "  (the state is judged by --replay-subject, else by the subject the reproducer names\n"
    "  (a sweep saves its replay subject in it), else by --subject, else by the subject that\n"
    "  wrote the trace; --rerun and --minimize run the workload through --subject, else the\n"
    "  subject that wrote it)\n"
    "  --save-image PATH    write the crash image (before replay) to PATH\n"
    "  --save-final-image PATH  write the image at the end of the state's epoch (every\n"
    "                       pending write persisted), what the workload meant to leave\n"
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
    const char *trace, *save_trace, *json, *junit, *repro_dir, *save_image, *save_final_image, *minimize, *out,
        *only;
    const char *shard_arg, *shards_arg; /* --shard, --shards as given (tool_shard_resolve) */
    const char *shard_source;           /* where the sweep's shard came from */
    int with_repro, rerun, count_only, no_count, require_complete;
    uint64_t max_repro_bytes;      /* disk cap of one sweep's reproducers */
    uint32_t examples;             /* example states kept per signature */
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
    o->max_repro_bytes = UINT64_C(512) << 20;
    o->examples = 5;
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
        else if (!strcmp(a, "--count"))
            o->count_only = 1;
        else if (!strcmp(a, "--no-count"))
            o->no_count = 1;
        else if (!strcmp(a, "--require-complete"))
            o->require_complete = 1;
        else if (OPT("--first-epoch")) {
            uint64_t e = tool_parse_num(a, v);
            if (e > UINT32_MAX)
                tool_die_usage("--first-epoch: %s is too large", v);
            o->sc.first_epoch = (uint32_t)e;
        } else if (OPT("--max-repro-mb")) {
            uint64_t mb = tool_parse_num(a, v);
            if (mb > (UINT64_MAX >> 20))
                tool_die_usage("--max-repro-mb: %s is too large", v);
            o->max_repro_bytes = mb << 20;
        } else if (OPT("--examples")) {
            uint64_t n = tool_parse_num(a, v);
            if (n < 1 || n > 100)
                tool_die_usage("--examples takes 1..100");
            o->examples = (uint32_t)n;
        } else if (OPT("--save-final-image"))
            o->save_final_image = v;
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
                tool_die_usage("--models: '%s' names an unknown model (the crash models are listed by "
                               "`pcsweep --help` and `pcsweep models`; or all, power, corruption)", v);
        } else if (OPT("--judges")) {
            if (sweep_judges_parse(v, &o->sc.judges) != 0)
                tool_die_usage("--judges: '%s' names an unknown judge (oracle, reference, view, unwritten, protocol, "
                               "all)", v);
        } else if (!strcmp(a, "--strict")) {
            o->sc.strict = 1;
        } else if (OPT("--subject")) {
            if (!(o->sc.subject = subject_find(v)))
                tool_die_usage("--subject: no subject '%s' in this build (pcsweep subjects lists them)", v);
        } else if (OPT("--replay-subject")) {
            if (!(o->sc.replay_subject = subject_find(v)))
                tool_die_usage("--replay-subject: no subject '%s' in this build (pcsweep subjects lists them)", v);
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
            o->shard_arg = v;
        } else if (OPT("--shards"))
            o->shards_arg = v;
        else if (OPT("--sweep-seed"))
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
            o->sc.max_seconds = tool_parse_seconds(a, v);
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

/* ---- violations, grouped by signature --------------------------------------------- */
/*
 * One bug trips the same invariant at many crash states: a planted bug gave
 * 434 violations of one invariant in a 10-second sweep.  Violations are
 * therefore grouped by a signature -- the invariant, the crash model's
 * class (power loss, corruption), the scenario and the structure involved
 * (the engine error and field of a refused open or a failed check, what a
 * lost sector reads as) -- and each signature gets one reproducer (its
 * first state, the earliest cut), a count and a few example states.
 */
struct example {
    uint64_t seed;           /* workload seed */
    uint64_t cut;            /* trace index of the expectation */
    char choice[160];        /* the crash state */
    char detail[1024];       /* the verdict's explanation */
};

struct sig {
    char key[320];           /* invariant|class|scenario|structure */
    char invariant[48];
    char cls[16];            /* power, corruption, workload */
    char scenario[32];
    char structure[160];     /* what the violation involves, without state-specific numbers */
    uint64_t count;          /* violations with this signature */
    uint64_t models;         /* bitmask of the crash models seen */
    struct example *ex;      /* the first examples (up to opts.examples) */
    size_t nex;
    char repro[4096];        /* reproducer of the first example, "" if none */
    uint64_t repro_bytes;
    char no_repro[96];       /* why there is none ("disk cap ..."), "" */
};

struct run_record {
    char scenario[32];
    uint64_t seed;
    struct sweep_stats st;
    uint64_t trace_ops;
    uint32_t first_epoch;    /* epochs before it were skipped (resume) */
    int64_t planned_states;  /* states of this run (this shard, all models but recovery), -1 unknown */
    int complete;            /* every planned state judged */
    char left_out[256];      /* why the subject could not run the workload ("" when it ran) */
};

struct collector {
    struct sig *s;
    size_t n, cap;
    uint64_t violations;
    const char *scenario;    /* current run */
    uint64_t seed;
    const struct trace *trace; /* its trace (reproducers are saved from it) */
    const struct opts *o;
    uint64_t repro_bytes;    /* written so far */
    uint64_t repro_skipped;  /* signatures without a reproducer (disk cap) */
    int print;
};

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q) {
        fprintf(stderr, "pcsweep: out of memory\n");
        exit(EXIT_BAD_USAGE);
    }
    return q;
}

static int is_trace_level(const struct verdict *v)
{
    /* violations of the trace itself, with no crash state */
    return !strcmp(v->invariant, "workload-failed") || !strncmp(v->invariant, "protocol:", 9);
}

static const char *model_class(const struct crash_choice *c, const struct verdict *v)
{
    if (!strcmp(v->invariant, "workload-failed"))
        return "workload";
    if (!strncmp(v->invariant, "protocol:", 9))
        return "protocol";
    return (M_POWER_MODELS >> c->model) & 1 ? "power" : "corruption";
}

static void sig_key(const struct sig *g, char *key, size_t len)
{
    snprintf(key, len, "%s|%s|%s|%s", g->invariant, g->cls, g->scenario, g->structure);
}

static void sig_id(const struct sig *g, char out[13])
{
    tool_signature_id(g->key, out);
}

/* Saves the reproducer of a new signature, within the disk cap. */
static void sig_save_repro(struct collector *col, struct sig *g, const struct crash_choice *c,
                           const struct verdict *v, const char *repro_dir)
{
    if (!repro_dir || !col->trace)
        return;
    if (col->repro_bytes >= col->o->max_repro_bytes) {
        snprintf(g->no_repro, sizeof g->no_repro, "disk cap of %" PRIu64 " MiB reached (--max-repro-mb)",
                 col->o->max_repro_bytes >> 20);
        col->repro_skipped++;
        return;
    }
    char id[13], path[4096], err[512];
    sig_id(g, id);
    snprintf(path, sizeof path, "%s/repro-%s-%s-s%" PRIu64 "-%s.pctrace", repro_dir, g->scenario,
             v->invariant[0] ? v->invariant : "violation", col->seed, id);
    for (char *p = path + strlen(repro_dir) + 1; *p; p++)
        if (*p == ':' || *p == '/')
            *p = '_';
    int rc = is_trace_level(v)
                 ? (trace_set_meta((struct trace *)col->trace, "violation.invariant", v->invariant),
                    trace_save(col->trace, path, err, sizeof err))
                 : sweep_save_repro_judged(col->trace, c, v, NULL, sweep_reader(&col->o->sc)->name, path, err,
                                           sizeof err);
    if (rc != 0) {
        fprintf(stderr, "pcsweep: cannot save reproducer: %s\n", err);
        snprintf(g->no_repro, sizeof g->no_repro, "could not be saved");
        return;
    }
    snprintf(g->repro, sizeof g->repro, "%s", path);
    g->repro_bytes = tool_file_bytes(path);
    col->repro_bytes += g->repro_bytes;
}

static int on_violation(void *ctx, const struct crash_choice *c, const struct verdict *v, const char *repro)
{
    (void)repro; /* the sweep saves none (repro_dir NULL): reproducers are per signature, below */
    struct collector *col = ctx;
    col->violations++;
    struct sig probe;
    memset(&probe, 0, sizeof probe);
    snprintf(probe.invariant, sizeof probe.invariant, "%s", v->invariant);
    snprintf(probe.cls, sizeof probe.cls, "%s", model_class(c, v));
    snprintf(probe.scenario, sizeof probe.scenario, "%s", col->scenario);
    tool_violation_structure(v, probe.structure, sizeof probe.structure);
    sig_key(&probe, probe.key, sizeof probe.key);
    struct sig *g = NULL;
    for (size_t i = 0; i < col->n && !g; i++)
        if (!strcmp(col->s[i].key, probe.key))
            g = &col->s[i];
    int fresh = !g;
    if (fresh) {
        if (col->n == col->cap) {
            col->cap = col->cap ? col->cap * 2 : 16;
            col->s = xrealloc(col->s, col->cap * sizeof *col->s);
        }
        g = &col->s[col->n++];
        *g = probe;
        g->ex = xrealloc(NULL, col->o->examples * sizeof *g->ex);
    }
    g->count++;
    if (!is_trace_level(v))
        g->models |= UINT64_C(1) << c->model;
    if (g->nex < col->o->examples) {
        struct example *e = &g->ex[g->nex++];
        memset(e, 0, sizeof *e);
        e->seed = col->seed;
        e->cut = v->cut;
        if (!strcmp(v->invariant, "workload-failed"))
            snprintf(e->choice, sizeof e->choice, "(no crash state: the workload itself failed)");
        else if (is_trace_level(v))
            snprintf(e->choice, sizeof e->choice, "(no crash state: the trace's operation order, op %" PRIu64 ")",
                     v->cut);
        else
            crash_choice_format(c, e->choice, sizeof e->choice);
        snprintf(e->detail, sizeof e->detail, "%s", v->detail);
    }
    if (fresh) {
        sig_save_repro(col, g, c, v, col->o->repro_dir);
        if (col->print && col->n <= 20) {
            fprintf(stderr, "\nVIOLATION [%s] scenario %s seed %" PRIu64 " cut %" PRIu64 " %s\n  %s\n", v->invariant,
                    col->scenario, col->seed, v->cut, g->ex[0].choice, v->detail);
            fprintf(stderr, "  signature: %s (further states with it are counted, not printed)\n", g->key);
            if (g->repro[0])
                fprintf(stderr, "  reproducer: %s\n", g->repro);
            else if (g->no_repro[0])
                fprintf(stderr, "  no reproducer: %s\n", g->no_repro);
        }
    }
    return 0;
}

/* A violation of the trace's write-ahead protocol (JUDGE_PROTOCOL): a
 * signature like any other, with the trace itself as its reproducer. */
static void on_protocol(void *ctx, const struct protocol_violation *pv)
{
    struct crash_choice none = {.model = M_DROP, .epoch = UINT32_MAX};
    struct verdict v;
    verdict_init(&v, pv->op >= 0 ? (uint64_t)pv->op : 0);
    char related[160] = "";
    size_t n = 0;
    for (int a = 0; a < PROTOCOL_AFTER_MAX && n < sizeof related; a++)
        if (pv->after[a] == PROTOCOL_BASE_OP)
            n += (size_t)snprintf(related + n, sizeof related - n, "%sthe base image", n ? ", " : "; related: ");
        else if (pv->after[a] != PROTOCOL_NO_OP)
            n += (size_t)snprintf(related + n, sizeof related - n, "%sop %" PRId64, n ? ", " : "; related: ",
                                  pv->after[a]);
    verdict_fail(&v, pv->inv, "trace op %" PRId64 ", file bytes %" PRIu64 "+%" PRIu64 "%s: %s", pv->op, pv->offset,
                 pv->length, related, pv->detail);
    on_violation(ctx, &none, &v, NULL);
}

/* SIGINT/SIGTERM: stop after the current state and still write the
 * summary (marked "interrupted"); a second signal kills as usual. */
static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
    interrupted = 1;
    signal(sig, SIG_DFL);
}

/* ---- coverage of the planned work -------------------------------------------------- */
struct coverage {
    size_t runs_planned, runs_started, runs_complete;
    uint64_t states;            /* judged */
    uint64_t states_countable;  /* judged, all models but recovery (comparable to planned) */
    int64_t states_planned;     /* all models but recovery, -1 unknown (a run not started or not counted) */
    uint64_t recovery_states;   /* judged recovery states (their number is known only once generated) */
    int complete;
    const char *stopped_by;     /* why not, or NULL */
};

static void coverage_of(const struct run_record *runs, size_t nruns, size_t planned_runs, const struct opts *o,
                        struct coverage *cv)
{
    memset(cv, 0, sizeof *cv);
    cv->runs_planned = planned_runs;
    cv->runs_started = nruns;
    int64_t planned = 0;
    int left_out = 0, other_incomplete = 0;
    for (size_t i = 0; i < nruns; i++) {
        const struct run_record *r = &runs[i];
        left_out |= r->left_out[0] != 0;
        other_incomplete += !r->complete && !r->left_out[0];
        cv->runs_complete += r->complete;
        cv->states += r->st.states;
        cv->recovery_states += r->st.states_per_model[M_RECOVERY];
        cv->states_countable += r->st.states - r->st.states_per_model[M_RECOVERY];
        if (planned >= 0 && r->planned_states >= 0)
            planned += r->planned_states;
        else
            planned = -1;
    }
    cv->states_planned = nruns == planned_runs ? planned : -1;
    cv->complete = cv->runs_complete == planned_runs;
    if (!cv->complete)
        cv->stopped_by = interrupted                ? "interrupted"
                         : left_out && !other_incomplete && nruns == planned_runs ? "a workload the subject cannot run"
                         : o->sc.max_states          ? "--max-states"
                         : o->sc.max_seconds > 0     ? "--max-seconds"
                         : o->sc.max_violations      ? "--max-violations"
                                                     : "a limit";
}

/* "20 of 106 states" / "20 of 106+ states" / "20 states (of ? planned)" */
static void coverage_text(const struct coverage *cv, const struct opts *o, char *out, size_t len)
{
    int rec = (o->sc.models >> M_RECOVERY) & 1;
    if (cv->complete)
        snprintf(out, len, "%" PRIu64 " of %" PRIu64 " states (complete)", cv->states, cv->states);
    else if (cv->states_planned >= 0)
        snprintf(out, len, "%" PRIu64 " of %" PRId64 "%s states (%.0f%%; %zu of %zu runs complete)",
                 rec ? cv->states_countable : cv->states, cv->states_planned, rec ? " non-recovery" : "",
                 cv->states_planned ? 100.0 * (double)(rec ? cv->states_countable : cv->states) /
                                          (double)cv->states_planned
                                    : 100.0,
                 cv->runs_complete, cv->runs_planned);
    else
        snprintf(out, len, "%" PRIu64 " states; %zu of %zu runs complete, %zu not started", cv->states,
                 cv->runs_complete, cv->runs_planned, cv->runs_planned - cv->runs_started);
}

static int count_state_cb(void *ctx, const struct crash_choice *c, uint64_t cut, struct crashdisk *cd)
{
    (void)c;
    (void)cut;
    (void)cd;
    (*(uint64_t *)ctx)++;
    return 0;
}

/* States a sweep of t with config base generates (this shard, every model
 * but recovery: its states exist only once the replay they cut is run),
 * without judging any: the size of the planned work. */
static int64_t count_states(const struct trace *t, const struct sweep_config *base, uint64_t per_model[M_COUNT])
{
    struct sweep_config sc = *base;
    uint64_t n = 0;
    sc.on_state = count_state_cb;
    sc.on_violation = NULL;
    sc.ctx = &n;
    sc.max_states = sc.max_violations = 0;
    sc.max_seconds = 0;
    sc.first_epoch = 0;
    sc.cancel = NULL;
    sc.repro_dir = NULL;
    sc.quiet = 1;
    struct sweep_stats st;
    if (sweep_run(t, &sc, &st) != 0)
        return -1;
    if (per_model)
        memcpy(per_model, st.states_per_model, sizeof st.states_per_model);
    return (int64_t)n;
}

/* ---- known departures ---------------------------------------------------------------- */
/* One entry of a subject's known list and how often the runs set it apart:
 * as the writer (protocol findings of its traces), as the reader (verdicts
 * of the states it opened), or both when one subject is both. */
struct known_count {
    const struct subject_ops *subject;
    const struct subject_departure *d;
    const char *as; /* "writer", "reader", "writer and reader" */
    uint64_t count;
};

static size_t known_counts(const struct run_record *runs, size_t nruns, const struct sweep_config *sc,
                           struct known_count *out)
{
    const struct subject_ops *w = sweep_writer(sc), *r = sweep_reader(sc);
    size_t n = 0;
    for (int role = 0; role < (w == r ? 1 : 2); role++) {
        const struct subject_ops *s = role ? r : w;
        for (int j = 0; s->known && s->known[j].invariant && j < SUBJECT_KNOWN_MAX; j++) {
            uint64_t c = 0;
            for (size_t i = 0; i < nruns; i++)
                c += (w == r || role == 0 ? runs[i].st.known_writer[j] : 0) +
                     (w == r || role == 1 ? runs[i].st.known[j] : 0);
            if (c)
                out[n++] = (struct known_count){s, &s->known[j], w == r ? "writer and reader" : role ? "reader" : "writer",
                                                c};
        }
    }
    return n;
}

/* ---- JSON and JUnit ------------------------------------------------------------------ */
static void json_models(FILE *f, const struct opts *o, const uint64_t *v)
{
    int first = 1;
    fprintf(f, "{");
    for (int m = 0; m < M_COUNT; m++)
        if (o->sc.models & (1u << m)) {
            fprintf(f, "%s\"%s\": %" PRIu64, first ? "" : ", ", crash_model_names[m], v[m]);
            first = 0;
        }
    fprintf(f, "}");
}

static void write_json(FILE *f, struct run_record *runs, size_t nruns, const struct collector *col,
                       const struct opts *o, double wall, const struct coverage *cv, char names[][32], int nsc)
{
    uint64_t states = 0, viol = 0, per[M_COUNT] = {0}, vper[M_COUNT] = {0};
    for (size_t i = 0; i < nruns; i++) {
        states += runs[i].st.states;
        viol += runs[i].st.violations;
        for (int m = 0; m < M_COUNT; m++) {
            per[m] += runs[i].st.states_per_model[m];
            vper[m] += runs[i].st.violations_per_model[m];
        }
    }
    fprintf(f, "{\n  \"engine\": ");
    tool_json_str(f, vhdx_build_id());
    fprintf(f, ",\n  \"complete\": %s,\n  \"interrupted\": %s", cv->complete ? "true" : "false",
            interrupted ? "true" : "false");
    fprintf(f, ",\n  \"states\": %" PRIu64 ",\n  \"violations\": %" PRIu64 ",\n  \"wall_s\": %.3f,\n"
               "  \"states_per_sec\": %.1f,\n  \"shard\": \"%u/%u\",\n  \"sweep_seed\": %" PRIu64 ",\n",
            states, viol, wall, wall > 0 ? (double)states / wall : 0.0, o->sc.shard_k, o->sc.shard_n, o->sc.seed);
    fprintf(f, "  \"shard_source\": ");
    tool_json_str(f, o->shard_source ? o->shard_source : o->shard_arg ? "--shard" : "none");
    fprintf(f, ",\n");
    char text[256];
    coverage_text(cv, o, text, sizeof text);
    fprintf(f, "  \"coverage\": {\"runs_planned\": %zu, \"runs_started\": %zu, \"runs_complete\": %zu, "
               "\"states\": %" PRIu64 ", \"states_countable\": %" PRIu64 ", \"states_planned\": ",
            cv->runs_planned, cv->runs_started, cv->runs_complete, cv->states, cv->states_countable);
    if (cv->complete)
        fprintf(f, "%" PRIu64, cv->states);
    else if (cv->states_planned >= 0)
        fprintf(f, "%" PRId64, cv->states_planned);
    else
        fprintf(f, "null");
    fprintf(f, ", \"planned_excludes\": %s, \"stopped_by\": ",
            !cv->complete && (o->sc.models >> M_RECOVERY) & 1 ? "[\"recovery\"]" : "[]");
    if (cv->stopped_by)
        tool_json_str(f, cv->stopped_by);
    else
        fprintf(f, "null");
    fprintf(f, ", \"scenarios_planned\": [");
    for (int i = 0; i < nsc; i++) {
        fprintf(f, "%s", i ? ", " : "");
        tool_json_str(f, names[i]);
    }
    fprintf(f, "], \"text\": ");
    tool_json_str(f, text);
    fprintf(f, "},\n");
    /* The subjects' known departures, set apart from the violations (--strict: none). */
    fprintf(f, "  \"subject\": ");
    tool_json_str(f, sweep_writer(&o->sc)->name);
    fprintf(f, ",\n  \"replay_subject\": ");
    tool_json_str(f, sweep_reader(&o->sc)->name);
    fprintf(f, ",\n  \"strict\": %s,\n  \"known_departures\": [", o->sc.strict ? "true" : "false");
    struct known_count kc[2 * SUBJECT_KNOWN_MAX];
    size_t nk = known_counts(runs, nruns, &o->sc, kc);
    for (size_t j = 0; j < nk; j++) {
        fprintf(f, "%s{\"subject\": ", j ? ", " : "");
        tool_json_str(f, kc[j].subject->name);
        fprintf(f, ", \"as\": \"%s\", \"invariant\": ", kc[j].as);
        tool_json_str(f, kc[j].d->invariant);
        fprintf(f, ", \"finding\": ");
        tool_json_str(f, kc[j].d->finding);
        fprintf(f, ", \"count\": %" PRIu64 "}", kc[j].count);
    }
    fprintf(f, "],\n");
    /* Where a stopped sweep would go on: its first unfinished run, from the
     * epoch it was in (the states of that epoch judged before are judged
     * again). */
    const struct run_record *open = NULL;
    for (size_t i = 0; i < nruns && !open; i++)
        if (!runs[i].complete)
            open = &runs[i];
    fprintf(f, "  \"resume\": ");
    if (cv->complete) {
        fprintf(f, "null");
    } else if (open) {
        fprintf(f, "{\"scenario\": ");
        tool_json_str(f, open->scenario);
        fprintf(f, ", \"seed\": %" PRIu64 ", \"first_epoch\": %u}", open->seed, open->st.next_epoch);
    } else {
        fprintf(f, "{\"run\": %zu}", nruns);
    }
    fprintf(f, ",\n  \"models\": ");
    json_models(f, o, per);
    fprintf(f, ",\n  \"states_per_sec_per_model\": {");
    int first = 1;
    for (int m = 0; m < M_COUNT; m++)
        if (o->sc.models & (1u << m)) {
            double sec = 0;
            for (size_t i = 0; i < nruns; i++)
                sec += runs[i].st.seconds_per_model[m];
            fprintf(f, "%s\"%s\": %.1f", first ? "" : ", ", crash_model_names[m], sec > 0 ? (double)per[m] / sec : 0.0);
            first = 0;
        }
    fprintf(f, "},\n  \"violations_per_model\": ");
    json_models(f, o, vper);
    fprintf(f, ",\n  \"seeds\": [");
    first = 1;
    for (size_t i = 0; i < nruns; i++) {
        int dup = 0;
        for (size_t j = 0; j < i; j++)
            dup |= runs[j].seed == runs[i].seed;
        if (!dup) {
            fprintf(f, "%s%" PRIu64, first ? "" : ", ", runs[i].seed);
            first = 0;
        }
    }
    fprintf(f, "],\n  \"runs\": [");
    for (size_t i = 0; i < nruns; i++) {
        const struct run_record *r = &runs[i];
        fprintf(f, "%s\n    {\"scenario\": ", i ? "," : "");
        tool_json_str(f, r->scenario);
        fprintf(f, ", \"seed\": %" PRIu64 ", \"trace_ops\": %" PRIu64 ", \"epochs\": %" PRIu64 ", \"epochs_total\": %u"
                   ", \"first_epoch\": %u, \"next_epoch\": %u, \"complete\": %s, \"states\": %" PRIu64
                   ", \"states_planned\": ",
                r->seed, r->trace_ops, r->st.epochs, r->st.total_epochs, r->first_epoch, r->st.next_epoch,
                r->complete ? "true" : "false", r->st.states);
        if (r->planned_states >= 0)
            fprintf(f, "%" PRId64, r->planned_states);
        else
            fprintf(f, "null");
        fprintf(f, ", \"violations\": %" PRIu64 ", \"replays\": %" PRIu64 ", \"opens\": %" PRIu64
                   ", \"wall_s\": %.3f, \"models\": ",
                r->st.violations, r->st.replays, r->st.opens, r->st.seconds);
        json_models(f, o, r->st.states_per_model);
        if (r->left_out[0]) { /* the subject cannot run this workload: planned, never judged */
            fprintf(f, ", \"left_out\": ");
            tool_json_str(f, r->left_out);
        }
        fprintf(f, "}");
    }
    fprintf(f, "\n  ],\n  \"reproducer_bytes\": %" PRIu64 ",\n  \"reproducers_skipped\": %" PRIu64
               ",\n  \"signatures\": [",
            col->repro_bytes, col->repro_skipped);
    for (size_t i = 0; i < col->n; i++) {
        const struct sig *g = &col->s[i];
        char id[13];
        sig_id(g, id);
        fprintf(f, "%s\n    {\"id\": \"%s\", \"signature\": ", i ? "," : "", id);
        tool_json_str(f, g->key);
        fprintf(f, ", \"invariant\": ");
        tool_json_str(f, g->invariant);
        fprintf(f, ", \"model_class\": \"%s\", \"scenario\": ", g->cls);
        tool_json_str(f, g->scenario);
        fprintf(f, ", \"structure\": ");
        tool_json_str(f, g->structure);
        fprintf(f, ", \"count\": %" PRIu64 ", \"models\": [", g->count);
        first = 1;
        for (int m = 0; m < M_COUNT; m++)
            if ((g->models >> m) & 1) {
                fprintf(f, "%s\"%s\"", first ? "" : ", ", crash_model_names[m]);
                first = 0;
            }
        fprintf(f, "], \"reproducer\": ");
        if (g->repro[0])
            tool_json_str(f, g->repro);
        else
            fprintf(f, "null");
        fprintf(f, ", \"reproducer_bytes\": %" PRIu64 ", \"no_reproducer\": ", g->repro_bytes);
        if (g->no_repro[0])
            tool_json_str(f, g->no_repro);
        else
            fprintf(f, "null");
        fprintf(f, ", \"examples\": [");
        for (size_t k = 0; k < g->nex; k++) {
            fprintf(f, "%s{\"seed\": %" PRIu64 ", \"cut\": %" PRIu64 ", \"choice\": ", k ? ", " : "", g->ex[k].seed,
                    g->ex[k].cut);
            tool_json_str(f, g->ex[k].choice);
            fprintf(f, ", \"detail\": ");
            tool_json_str(f, g->ex[k].detail);
            fprintf(f, "}");
        }
        fprintf(f, "]}");
    }
    /* "failures": the first state of each signature, in the form the
     * drivers read (scenario, seed, cut, choice, invariant, detail,
     * reproducer) plus its count. */
    fprintf(f, "\n  ],\n  \"failures\": [");
    for (size_t i = 0; i < col->n; i++) {
        const struct sig *g = &col->s[i];
        fprintf(f, "%s\n    {\"scenario\": ", i ? "," : "");
        tool_json_str(f, g->scenario);
        fprintf(f, ", \"seed\": %" PRIu64 ", \"cut\": %" PRIu64 ", \"choice\": ", g->ex[0].seed, g->ex[0].cut);
        tool_json_str(f, g->ex[0].choice);
        fprintf(f, ", \"invariant\": ");
        tool_json_str(f, g->invariant);
        fprintf(f, ", \"signature\": ");
        tool_json_str(f, g->key);
        fprintf(f, ", \"count\": %" PRIu64 ", \"detail\": ", g->count);
        tool_json_str(f, g->ex[0].detail);
        fprintf(f, ", \"reproducer\": ");
        if (g->repro[0])
            tool_json_str(f, g->repro);
        else
            fprintf(f, "null");
        fprintf(f, "}");
    }
    fprintf(f, "\n  ]\n}\n");
}

/* One test case per run (did it judge everything it planned: passed;
 * otherwise skipped, or failed with --require-complete) and one failed test
 * case per violation signature. */
static void write_junit(FILE *f, struct run_record *runs, size_t nruns, const struct collector *col, double wall,
                        const struct opts *o, char names[][32], int nsc)
{
    size_t planned = (size_t)nsc * (o->trace ? 1 : o->seeds);
    size_t incomplete = 0;
    for (size_t i = 0; i < nruns; i++)
        incomplete += !runs[i].complete;
    incomplete += planned - nruns;
    size_t failures = col->n + (o->require_complete ? incomplete : 0);
    size_t skipped = o->require_complete ? 0 : incomplete;
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"powercut-sweep\" tests=\"%zu\" "
               "failures=\"%zu\" skipped=\"%zu\" time=\"%.3f\">\n",
            planned + col->n, failures, skipped, wall);
    fprintf(f, "  <testsuite name=\"sweep\" tests=\"%zu\" failures=\"%zu\" skipped=\"%zu\">\n", planned,
            o->require_complete ? incomplete : 0, skipped);
    size_t k = 0;
    for (int si = 0; si < nsc; si++)
        for (uint64_t j = 0; j < (o->trace ? 1 : o->seeds); j++, k++) {
            const struct run_record *r = k < nruns ? &runs[k] : NULL;
            uint64_t seed = r ? r->seed : o->seed + j;
            fprintf(f, "    <testcase classname=\"sweep.");
            tool_xml_str(f, names[si]);
            fprintf(f, "\" name=\"seed-%" PRIu64 "\" time=\"%.3f\">\n", seed, r ? r->st.seconds : 0.0);
            if (!r || !r->complete) {
                char msg[256];
                if (!r)
                    snprintf(msg, sizeof msg, "not started: the sweep stopped before this run");
                else if (r->planned_states >= 0)
                    snprintf(msg, sizeof msg, "incomplete: %" PRIu64 " of %" PRId64 " planned states judged (epoch %u of %u)",
                             r->st.states, r->planned_states, r->st.next_epoch, r->st.total_epochs);
                else
                    snprintf(msg, sizeof msg, "incomplete: stopped in epoch %u of %u", r->st.next_epoch,
                             r->st.total_epochs);
                if (o->require_complete) {
                    fprintf(f, "      <failure type=\"incomplete\" message=\"");
                    tool_xml_str(f, msg);
                    fprintf(f, "\"/>\n");
                } else {
                    fprintf(f, "      <skipped message=\"");
                    tool_xml_str(f, msg);
                    fprintf(f, "\"/>\n");
                }
            }
            if (r)
                fprintf(f, "      <system-out>states %" PRIu64 ", violations %" PRIu64 ", epochs %u of %u</system-out>\n",
                        r->st.states, r->st.violations, r->st.next_epoch, r->st.total_epochs);
            fprintf(f, "    </testcase>\n");
        }
    fprintf(f, "  </testsuite>\n  <testsuite name=\"sweep.violations\" tests=\"%zu\" failures=\"%zu\">\n", col->n,
            col->n);
    for (size_t i = 0; i < col->n; i++) {
        const struct sig *g = &col->s[i];
        char id[13], msg[512], detail[8192];
        sig_id(g, id);
        fprintf(f, "    <testcase classname=\"sweep.");
        tool_xml_str(f, g->scenario);
        fprintf(f, "\" name=\"");
        tool_xml_str(f, g->key);
        fprintf(f, "\">\n");
        snprintf(msg, sizeof msg, "%" PRIu64 " crash state(s) with signature %s (%s)", g->count, id, g->key);
        size_t n = (size_t)snprintf(detail, sizeof detail, "first state: seed %" PRIu64 " %s\n%s", g->ex[0].seed,
                                    g->ex[0].choice, g->ex[0].detail);
        for (size_t e = 1; e < g->nex && n < sizeof detail; e++)
            n += (size_t)snprintf(detail + n, sizeof detail - n, "\nalso: seed %" PRIu64 " %s", g->ex[e].seed,
                                  g->ex[e].choice);
        if (g->count > g->nex && n < sizeof detail)
            snprintf(detail + n, sizeof detail - n, "\n... and %" PRIu64 " more", g->count - g->nex);
        tool_junit_failure(f, g->invariant, msg, detail, g->repro);
        fprintf(f, "    </testcase>\n");
    }
    fprintf(f, "  </testsuite>\n</testsuites>\n");
}

/* ---- commands ------------------------------------------------------------------- */
/* Runs a workload.  0; -1 harness failure; -2 the workload failed on a
 * healthy simulated disk (an engine bug: reported as a violation), with the
 * message in fail_msg. */
/* ---- refgen: the reference writer's images and traces ------------------------------- */
/* Options of refgen that parse() does not know are taken out of argv first
 * (--count, --refgen, --mid, --sweep, --sessions); the rest are the sweep's. */
struct refgen_opts {
    uint64_t count;
    uint32_t mid, sessions;
    int sweep;
};
/* Set while `sweep --refgen N` (or `refgen --sweep`) runs: the sweep's one
 * scenario is "refgen", its N seeds the writer's traces. */
static const struct refgen_opts *sweep_refgen;

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

static char fail_msg[1024];
static int build_trace(const struct opts *o, const char *scenario, uint64_t seed, struct trace *t)
{
    if (sweep_refgen && !strcmp(scenario, "refgen")) {
        struct refgen_info info;
        if (refgen_one(o, sweep_refgen, seed, t, &info) != 0) {
            snprintf(fail_msg, sizeof fail_msg, "the reference writer failed on seed %" PRIu64
                     " (its message above)", seed);
            return -2;
        }
        if (!o->sc.quiet)
            fprintf(stderr, "pcsweep: refgen seed %" PRIu64 ": %u entries (max %u descriptors, %u sectors), block %u, "
                            "log %u at %" PRIu64 ", variety %#x\n",
                    seed, info.stats.entries, info.stats.max_descriptors, info.stats.max_sectors,
                    info.layout.block_size, info.layout.log_length, info.layout.log_offset, info.layout.variety);
        return 0;
    }
    struct workload_params p = o->wp;
    snprintf(p.scenario, sizeof p.scenario, "%s", scenario);
    p.seed = seed;
    /* QEMU creates and opens 512-byte sectors only (workload.h) */
    workload_params_fit(&p, sweep_writer(&o->sc), sweep_reader(&o->sc));
    char err[512];
    if (workload_params_resolve(&p, err, sizeof err) != 0)
        tool_die_usage("%s", err);
    struct workload w;
    if (workload_generate(&p, &w) != 0) {
        fprintf(stderr, "pcsweep: out of memory generating the workload\n");
        return -1;
    }
    trace_init(t);
    struct workload_run_opts ro = {.subject = o->sc.subject};
    int rc = workload_run_ex(&w, t, &ro, err, sizeof err);
    workload_free(&w);
    if (rc == -ENOTSUP && o->sc.subject && o->sc.subject != subject_find("libvhdx")) {
        snprintf(fail_msg, sizeof fail_msg, "the subject %s cannot run workload %s seed %" PRIu64 ": %s",
                 o->sc.subject->name, scenario, seed, err);
        fprintf(stderr, "pcsweep: %s; the run is left out (the sweep is incomplete)\n", fail_msg);
        return -3;
    }
    if (rc != 0) {
        /* the subject's own reading of the base image it failed on (QEMU: a
         * filed departure whose precondition the image shows, e.g. Q5) */
        char why[512] = "";
        const struct subject_ops *subj = o->sc.subject;
        if (subj && subj->explain && t->base_size) {
            struct simdisk d;
            struct trace scratch; /* the disk records nothing here: it is only read */
            trace_init(&scratch);
            if (simdisk_init(&d, &t->base, t->base_size, &scratch) == 0) {
                subj->explain(simdisk_bdev(&d), why, sizeof why);
                simdisk_free(&d);
            }
            trace_free(&scratch);
        }
        snprintf(fail_msg, sizeof fail_msg, "workload %s seed %" PRIu64 " failed on a healthy simulated disk: %s%s%s%s%s",
                 scenario, seed, err, why[0] ? " [" : "", why[0] ? subj->name : "", why[0] ? " explains: " : "",
                 why[0] ? why : "");
        if (why[0])
            snprintf(fail_msg + strlen(fail_msg), sizeof fail_msg - strlen(fail_msg), "]");
        fprintf(stderr, "pcsweep: %s\n", fail_msg);
        return rc == -ENOMEM ? -1 : -2;
    }
    return 0;
}

static int cmd_sweep(int argc, char **argv)
{
    struct opts o;
    parse(argc, argv, &o, 0);
    {
        /* --shard, else the launcher's environment (toolbase.h) */
        struct tool_shard sh = tool_shard_or_die(o.shard_arg, o.shards_arg);
        o.sc.shard_k = sh.k;
        o.sc.shard_n = sh.n;
        o.shard_source = sh.source;
    }
    tool_check_output(o.json, "--json");
    tool_check_output(o.junit, "--junit");
    if (o.repro_dir && tool_mkdirs(o.repro_dir) != 0)
        tool_die_usage("--repro-dir: cannot create %s", o.repro_dir);
    if (o.save_trace && tool_mkdirs(o.save_trace) != 0)
        tool_die_usage("--save-trace: cannot create %s", o.save_trace);
    char names[TOOL_MAX_SCENARIOS][32];
    int nsc = o.trace ? 1 : sweep_refgen ? 1 : tool_scenario_list(o.scenarios, names);
    if (sweep_refgen && !o.trace) {
        snprintf(names[0], sizeof names[0], "refgen");
        o.seeds = sweep_refgen->count;
    }
    struct trace t;
    char err[512];
    if (o.trace) {
        /* Loaded once, before any work: a bad trace is a usage error. */
        if (trace_load(&t, o.trace, err, sizeof err) != 0) {
            fprintf(stderr, "pcsweep: %s\n", err);
            return EXIT_BAD_USAGE;
        }
        const char *wl = trace_get_meta(&t, "workload");
        snprintf(names[0], 32, "%s", wl ? wl : "external");
    }
    size_t nruns_max = (size_t)nsc * (o.trace ? 1 : o.seeds);
    struct run_record *runs = calloc(nruns_max, sizeof *runs);
    struct collector col = {0};
    col.print = 1;
    col.o = &o;
    o.sc.on_violation = on_violation;
    o.sc.on_protocol = on_protocol;
    o.sc.ctx = &col;
    o.sc.cancel = &interrupted;
    o.sc.repro_dir = NULL; /* one reproducer per signature, saved by on_violation */
    signal(SIGINT, on_interrupt);
    signal(SIGTERM, on_interrupt);
    size_t nruns = 0;
    double t0 = tool_now();
    uint64_t total_states = 0;
    fprintf(stderr, "pcsweep: engine %s; sweep seed %" PRIu64 " (sampling), shard %u/%u (from %s)\n", vhdx_build_id(),
            o.sc.seed, o.sc.shard_k, o.sc.shard_n, o.shard_source);
    if (sweep_writer(&o.sc) != sweep_reader(&o.sc))
        fprintf(stderr, "pcsweep: cross-subject sweep: %s writes%s, %s opens and replays every crash state\n",
                sweep_writer(&o.sc)->name, o.trace ? " (wrote the trace)" : "", sweep_reader(&o.sc)->name);
    if (o.trace) {
        const char *wrote = trace_get_meta(&t, "subject");
        if (wrote && strcmp(wrote, sweep_writer(&o.sc)->name))
            fprintf(stderr, "pcsweep: note: the trace says subject %s wrote it; --subject names the writer whose "
                            "known departures the protocol judge sets apart (now %s)\n",
                    wrote, sweep_writer(&o.sc)->name);
    }
    for (int si = 0; si < nsc; si++) {
        for (uint64_t k = 0; k < (o.trace ? 1 : o.seeds); k++) {
            uint64_t seed = o.seed + k;
            if (o.trace) {
                seed = t.seed;
            } else {
                int brc = build_trace(&o, names[si], seed, &t);
                if (brc == -1)
                    return EXIT_BAD_USAGE;
                if (brc == -3) { /* the subject lacks what the workload needs: planned, not judged */
                    struct run_record *r = &runs[nruns++];
                    snprintf(r->scenario, sizeof r->scenario, "%s", names[si]);
                    r->seed = seed;
                    r->planned_states = -1;
                    snprintf(r->left_out, sizeof r->left_out, "%s", fail_msg);
                    trace_free(&t);
                    continue;
                }
                if (brc == -2) {
                    /* Recorded as a violation of its own, with the partial trace as evidence. */
                    struct run_record *r = &runs[nruns++];
                    snprintf(r->scenario, sizeof r->scenario, "%s", names[si]);
                    r->seed = seed;
                    r->trace_ops = t.n_ops;
                    r->complete = 1;
                    r->planned_states = 0;
                    /* a filed departure of the subject (its explanation names it) is counted apart */
                    int kn = o.sc.strict ? -1 : subject_known_index(o.sc.subject, "workload-failed", fail_msg);
                    if (kn >= 0 && kn < SUBJECT_KNOWN_MAX) {
                        r->st.known[kn]++;
                        fprintf(stderr, "pcsweep: %s: a known departure (%s)\n", names[si],
                                o.sc.subject->known[kn].finding);
                        trace_free(&t);
                        continue;
                    }
                    r->st.violations = 1;
                    col.scenario = r->scenario;
                    col.seed = seed;
                    col.trace = &t;
                    struct crash_choice none = {.model = M_DROP, .epoch = UINT32_MAX};
                    struct verdict v;
                    memset(&v, 0, sizeof v);
                    snprintf(v.invariant, sizeof v.invariant, "workload-failed");
                    snprintf(v.detail, sizeof v.detail, "%s", fail_msg);
                    on_violation(&col, &none, &v, NULL);
                    col.trace = NULL;
                    trace_free(&t);
                    if (o.sc.max_violations && col.violations >= o.sc.max_violations)
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
            r->planned_states = -1;
            col.scenario = r->scenario;
            col.seed = seed;
            col.trace = &t;
            struct sweep_config sc = o.sc;
            sc.first_epoch = nruns == 1 ? o.sc.first_epoch : 0; /* --first-epoch resumes the first run */
            r->first_epoch = sc.first_epoch;
            if (sc.max_states)
                sc.max_states = sc.max_states > total_states ? sc.max_states - total_states : 1;
            if (sc.max_violations)
                sc.max_violations = sc.max_violations > col.violations ? sc.max_violations - col.violations : 1;
            if (sc.max_seconds > 0)
                sc.max_seconds = sc.max_seconds - (tool_now() - t0) > 0.001 ? sc.max_seconds - (tool_now() - t0) : 0.001;
            if (!o.sc.quiet)
                fprintf(stderr, "pcsweep: %s seed %" PRIu64 ": %zu trace operations, %" PRIu64 " bytes written%s\n",
                        r->scenario, seed, t.n_ops, t.bytes_written, sc.first_epoch ? " (resuming)" : "");
            int rc = sweep_run(&t, &sc, &r->st);
            if (rc != 0) {
                fprintf(stderr, "pcsweep: sweep failed: %s\n", strerror(-rc));
                trace_free(&t);
                return EXIT_BAD_USAGE;
            }
            r->complete = !r->st.stopped_early && r->st.next_epoch >= r->st.total_epochs;
            if (r->complete)
                r->planned_states = (int64_t)(r->st.states - r->st.states_per_model[M_RECOVERY]);
            else if (!o.no_count)
                r->planned_states = count_states(&t, &sc, NULL);
            col.trace = NULL;
            trace_free(&t);
            total_states += r->st.states;
            if (r->st.stopped_early)
                goto done;
        }
    }
done:;
    double wall = tool_now() - t0;
    struct coverage cv;
    coverage_of(runs, nruns, nruns_max, &o, &cv);
    char text[256];
    coverage_text(&cv, &o, text, sizeof text);
    fprintf(stderr, "pcsweep: %s in %.1f s (%.0f/s)%s%s; %" PRIu64 " violations in %zu signature(s)\n", text, wall,
            wall > 0 ? (double)cv.states / wall : 0.0, cv.stopped_by ? ", stopped by " : "",
            cv.stopped_by ? cv.stopped_by : "", col.violations, col.n);
    {
        struct known_count kc[2 * SUBJECT_KNOWN_MAX];
        size_t nk = known_counts(runs, nruns, &o.sc, kc);
        for (size_t j = 0; j < nk; j++)
            fprintf(stderr, "pcsweep: known departure of %s%s%s%s: %s in %" PRIu64 " %s: %s "
                            "(not counted as violations; --strict counts them)\n",
                    kc[j].subject->name, sweep_writer(&o.sc) == sweep_reader(&o.sc) ? "" : " (as the ",
                    sweep_writer(&o.sc) == sweep_reader(&o.sc) ? "" : kc[j].as,
                    sweep_writer(&o.sc) == sweep_reader(&o.sc) ? "" : ")", kc[j].d->invariant, kc[j].count,
                    !strncmp(kc[j].d->invariant, "protocol:", 9) ? "trace finding(s)" : "state(s)", kc[j].d->finding);
    }
    if (!cv.complete)
        fprintf(stderr, "pcsweep: INCOMPLETE: the states not judged may hold violations; a green result covers only "
                        "what was judged\n");
    if (col.repro_skipped)
        fprintf(stderr, "pcsweep: %" PRIu64 " signature(s) have no reproducer: the disk cap of %" PRIu64
                        " MiB (--max-repro-mb) was reached\n",
                col.repro_skipped, o.max_repro_bytes >> 20);
    int lost = 0;
    if (o.json) {
        FILE *f = tool_output_begin();
        if (f) {
            write_json(f, runs, nruns, &col, &o, wall, &cv, names, nsc);
            tool_output_end(f, o.json, "--json", &lost);
        }
    }
    if (o.junit) {
        FILE *f = tool_output_begin();
        if (f) {
            write_junit(f, runs, nruns, &col, wall, &o, names, nsc);
            tool_output_end(f, o.junit, "--junit", &lost);
        }
    }
    for (size_t i = 0; i < col.n; i++)
        free(col.s[i].ex);
    free(runs);
    free(col.s);
    if (o.trace && nruns == 0)
        trace_free(&t);
    if (lost)
        return EXIT_BAD_USAGE;
    return col.violations || (o.require_complete && !cv.complete) ? EXIT_VIOLATION : EXIT_PASS;
}

static int cmd_record(int argc, char **argv)
{
    struct opts o;
    parse(argc, argv, &o, 1);
    char names[TOOL_MAX_SCENARIOS][32];
    int n = tool_scenario_list(o.scenarios, names);
    if (n != 1)
        tool_die_usage("record: give exactly one --scenario");
    tool_check_output(o.pos[0], "record");
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

/* `pcsweep info TRACE --json [--ops]`: what a trace holds, for the driver
 * (scripts/pclib asks this instead of parsing traces itself): the header,
 * counts, metadata, crash choice, and the epochs as the sweep counts them
 * (an epoch ends at each flush; its pending writes and truncates are those
 * since the previous flush, cleared by a fault.drop_pending mark, as in
 * sweep.c's walk).  With --ops every operation too, without its data: a
 * write gives the byte it is uniformly filled with, or null. */
/* `info TRACE --json [--ops]`.  The epochs are harness/epochs.h's index (the
 * sweep's own count).  0, or -ENOMEM before anything is printed. */
static int info_json(const struct trace *t, const char *path, int with_ops)
{
    struct trace_epochs ep;
    if (trace_epochs_build(t, &ep) != 0)
        return -ENOMEM;
    size_t counts[256] = {0};
    for (size_t i = 0; i < t->n_ops; i++)
        counts[t->ops[i].kind]++;
    printf("{\"trace\": ");
    tool_json_str(stdout, path);
    printf(", \"version\": %u, \"flags\": %u, \"workload\": %s, \"external\": %s, \"reproducer\": %s"
           ", \"seed\": %" PRIu64 ", \"base_size\": %" PRIu64 ", \"base_sectors\": %zu, \"ops\": %zu"
           ", \"writes\": %zu, \"bytes_written\": %" PRIu64 ", \"flushes\": %zu, \"truncates\": %zu"
           ", \"marks\": %zu, \"workload_ops\": %zu",
           TRACE_VERSION, t->flags, t->flags & TRACE_F_WORKLOAD ? "true" : "false",
           t->flags & TRACE_F_EXTERNAL ? "true" : "false", t->flags & TRACE_F_CHOICE ? "true" : "false", t->seed,
           t->base_size, t->base.count, t->n_ops, counts[TR_WRITE], t->bytes_written, counts[TR_FLUSH],
           counts[TR_TRUNCATE], counts[TR_MARK], counts[TR_VBEGIN]);
    const struct trace_kv *kv[2] = {t->meta, t->choice};
    const size_t nkv[2] = {t->n_meta, t->n_choice};
    for (int k = 0; k < 2; k++) {
        printf(", \"%s\": {", k ? "choice" : "meta");
        for (size_t i = 0; i < nkv[k]; i++) {
            printf("%s", i ? ", " : "");
            tool_json_str(stdout, kv[k][i].key);
            printf(": ");
            tool_json_str(stdout, kv[k][i].value);
        }
        printf("}");
    }
    /* each epoch: its first op, the flush that ends it (null: the trace's
     * end), its pending writes and truncates (after a drop mark's reset) */
    printf(", \"epochs\": [");
    for (uint32_t e = 0; e < ep.n; e++) {
        const struct trace_epoch *x = &ep.e[e];
        printf("%s\n  {\"epoch\": %u, \"start\": %zu, \"flush\": ", e ? "," : "", e, x->start);
        if (x->end < t->n_ops)
            printf("%zu", x->end);
        else
            printf("null");
        printf(", \"pending\": %u}", x->pending);
    }
    printf("]");
    trace_epochs_free(&ep);
    if (with_ops) {
        printf(", \"operations\": [");
        for (size_t i = 0; i < t->n_ops; i++) {
            const struct trace_op *op = &t->ops[i];
            printf("%s\n  {\"kind\": \"%c\"", i ? "," : "", op->kind);
            if (op->kind == TR_WRITE) {
                int uniform = op->len > 0;
                for (uint32_t b = 1; uniform && b < op->len; b++)
                    uniform = op->data[b] == op->data[0];
                printf(", \"offset\": %" PRIu64 ", \"length\": %u, \"fill\": ", op->off, op->len);
                if (uniform)
                    printf("%u", op->data[0]);
                else
                    printf("null");
            } else if (op->kind == TR_TRUNCATE) {
                printf(", \"size\": %" PRIu64, op->off);
            } else if (op->kind == TR_MARK) {
                printf(", \"name\": ");
                tool_json_str(stdout, op->name < t->n_names ? t->names[op->name] : "?");
                printf(", \"arg\": %" PRIu64, op->off);
            } else if (op->kind == TR_VBEGIN) {
                printf(", \"vop\": %u, \"vkind\": %u, \"voffset\": %" PRIu64 ", \"vlength\": %" PRIu64
                       ", \"vid\": %u",
                       op->vop, op->vkind, op->off, op->vlen, op->vid);
            } else if (op->kind == TR_VEND) {
                printf(", \"vop\": %u, \"rc\": %d", op->vop, op->rc);
            }
            printf("}");
        }
        printf("]");
    }
    printf("}\n");
    return 0;
}

static int cmd_info(int argc, char **argv)
{
    /* --json and --ops are flags of info only (elsewhere --json takes a path). */
    int json = 0, with_ops = 0, n = 0;
    char **av = calloc((size_t)argc + 1, sizeof *av);
    if (!av)
        return EXIT_BAD_USAGE;
    for (int i = 0; i < argc; i++) {
        if (i >= 2 && !strcmp(argv[i], "--json"))
            json = 1;
        else if (i >= 2 && !strcmp(argv[i], "--ops"))
            with_ops = 1;
        else
            av[n++] = argv[i];
    }
    if (with_ops && !json)
        tool_die_usage("info: --ops goes with --json");
    if (json) {
        struct opts o;
        parse(n, av, &o, 1);
        struct trace t;
        char err[512];
        int rc = trace_load(&t, o.pos[0], err, sizeof err);
        if (rc != 0) {
            fprintf(stderr, "pcsweep: %s\n", err);
            free(av);
            return EXIT_BAD_USAGE;
        }
        rc = info_json(&t, o.pos[0], with_ops);
        if (rc != 0)
            fprintf(stderr, "pcsweep: %s: %s\n", o.pos[0], strerror(-rc));
        trace_free(&t);
        free(av);
        return rc ? EXIT_BAD_USAGE : EXIT_PASS; /* as the tool's other harness failures */
    }
    free(av);
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
    struct trace_epochs ep;
    if (trace_epochs_build(&t, &ep) == 0)
        printf("epochs: %u as the sweep counts them (the last has %u pending writes and truncates)\n", ep.n,
               ep.e[ep.n - 1].pending);
    trace_epochs_free(&ep);
    for (size_t i = 0; i < t.n_meta; i++)
        printf("meta %s = %s\n", t.meta[i].key, t.meta[i].value);
    for (size_t i = 0; i < t.n_choice; i++)
        printf("choice %s = %s\n", t.choice[i].key, t.choice[i].value);
    trace_free(&t);
    return EXIT_PASS;
}

/* ---- models ---------------------------------------------------------------------- */
/* The crash-model registry as JSON: name, class (power loss or corruption),
 * whether states can be exported as images (recovery needs the checker's
 * own replay). */
static void print_models_json(FILE *f)
{
    fputs("[", f);
    for (int m = 0; m < M_COUNT; m++) {
        fprintf(f, "%s{\"name\": \"%s\", \"class\": \"%s\", \"exportable\": %s, \"about\": ", m ? ",\n " : "",
                crash_model_names[m], (M_POWER_MODELS >> m) & 1 ? "power" : "corruption",
                crash_model_exportable((enum crash_model)m) ? "true" : "false");
        tool_json_str(f, crash_model_about((enum crash_model)m));
        fputs("}", f);
    }
    fputs("]\n", f);
}

/* The usage, then the registries it refers to. */
static void print_usage(FILE *f)
{
    tool_print_usage(usage, f);
    fputs("\ncrash models (--models; power: the image must open with every acknowledged write;\n"
          "corruption: a refusal or rollback is allowed, bytes nobody wrote are not):\n", f);
    for (int m = 0; m < M_COUNT; m++)
        fprintf(f, "  %-18s %-10s %s\n", crash_model_names[m], (M_POWER_MODELS >> m) & 1 ? "power" : "corruption",
                crash_model_about((enum crash_model)m));
}

/* ---- export ---------------------------------------------------------------------- */
/* The models whose states can be handed out as images (the registry's flag). */
static unsigned exportable_models(void)
{
    unsigned m = 0;
    for (int i = 0; i < M_COUNT; i++)
        if (crash_model_exportable((enum crash_model)i))
            m |= 1u << i;
    return m;
}

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
        if (sweep_save_repro_judged(x->t, c, &v, NULL, sweep_reader(&x->o->sc)->name, rpath, err, sizeof err) == 0) {
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
    if (!o.trace || (!o.out && !o.count_only))
        tool_die_usage("export needs --trace FILE and --out DIR (or --count)");
    if (o.out && tool_mkdirs(o.out) != 0)
        tool_die_usage("--out: cannot create %s", o.out);
    struct trace t;
    char err[512];
    if (trace_load(&t, o.trace, err, sizeof err) != 0) {
        fprintf(stderr, "pcsweep: %s\n", err);
        return EXIT_BAD_USAGE;
    }
    if (o.count_only) {
        struct sweep_config sc = o.sc;
        sc.models &= exportable_models();
        uint64_t per[M_COUNT];
        int64_t n = count_states(&t, &sc, per);
        trace_free(&t);
        if (n < 0) {
            fprintf(stderr, "pcsweep: counting the states failed\n");
            return EXIT_BAD_USAGE;
        }
        printf("{\"states\": %" PRId64 ", \"per_model\": ", n);
        json_models(stdout, &(struct opts){.sc = sc}, per);
        printf("}\n");
        return EXIT_PASS;
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
    sc.models &= exportable_models();
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
static void print_verdict(const struct crash_choice *ch, const struct verdict *v, const struct trace *t,
                          const struct sweep_config *sc)
{
    char c[200];
    crash_choice_format(ch, c, sizeof c);
    printf("state:     %s\n", c);
    /* a recorded trace names no subject: its writer is the program recorded */
    const int external = !sc->subject && !trace_get_meta(t, "subject") && (t->flags & TRACE_F_EXTERNAL);
    printf("subjects:  written by %s, opened and judged by %s\n",
           external ? "an external program (a recorded trace)" : sweep_writer(sc)->name, sweep_reader(sc)->name);
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

static void verdict_json(FILE *f, const struct crash_choice *ch, const struct verdict *v, const char *file,
                         const struct sweep_config *sc)
{
    char c[200];
    crash_choice_format(ch, c, sizeof c);
    fprintf(f, "{\"reproducer\": ");
    tool_json_str(f, file);
    fprintf(f, ", \"subject\": ");
    tool_json_str(f, sweep_writer(sc)->name);
    fprintf(f, ", \"replay_subject\": ");
    tool_json_str(f, sweep_reader(sc)->name);
    fprintf(f, ", \"state\": ");
    tool_json_str(f, c);
    fprintf(f, ", \"model\": \"%s\", \"epoch\": %u, \"ok\": %s, \"invariant\": ", crash_model_names[ch->model],
            ch->epoch, v->ok ? "true" : "false");
    tool_json_str(f, v->ok ? "" : v->invariant);
    fprintf(f, ", \"detail\": ");
    tool_json_str(f, v->ok ? "" : v->detail);
    fprintf(f, ", \"cut\": %" PRIu64 ", \"open\": ", v->cut);
    tool_json_str(f, v->open_rc ? vhdx_errname(v->open_rc) : "OK");
    fprintf(f, ", \"replayed_entries\": %u, \"bad_sector\": ", v->replayed);
    if (!v->ok && v->bad_sector != UINT64_MAX)
        fprintf(f, "%" PRIu64, v->bad_sector);
    else
        fprintf(f, "null");
    fprintf(f, "}");
}

/* The repro verdict as JSON; with a minimization, also the minimized
 * reproducer's verdict (mini, NULL without). */
static int write_verdict_json(const char *path, const struct sweep_config *sc, const struct crash_choice *ch,
                              const struct verdict *v, const char *file, const struct crash_choice *mch,
                              const struct verdict *mv, const char *mfile)
{
    int lost = 0;
    FILE *f = tool_output_begin();
    if (!f)
        return 1;
    verdict_json(f, ch, v, file, sc);
    if (mch) {
        /* the original's fields first, then "minimized": the same for the smaller reproducer */
        fseek(f, -1, SEEK_CUR);
        fprintf(f, ", \"minimized\": ");
        verdict_json(f, mch, mv, mfile, sc);
        fprintf(f, "}");
    }
    fprintf(f, "\n");
    tool_output_end(f, path, "--json", &lost);
    return lost;
}

/* Writes the image at the end of ch's epoch (every pending write of it
 * persisted): the state the workload meant to reach at that flush. */
static int save_final_image(const struct trace *t, const struct sweep_config *base, const struct crash_choice *ch,
                            const char *path)
{
    struct crash_choice end;
    memset(&end, 0, sizeof end);
    end.epoch = ch->epoch;
    struct trace_epochs ep;
    int rc = trace_epochs_build(t, &ep);
    if (rc == 0) {
        end.index = ep.e[ch->epoch < ep.n ? ch->epoch : ep.n - 1].pending; /* a prefix persists them all */
        end.model = end.index ? M_PREFIX : M_DROP;
        trace_epochs_free(&ep);
        struct sweep_config sc = *base;
        sc.save_image = path;
        sc.on_violation = NULL;
        struct verdict v;
        rc = sweep_eval_choice(t, &sc, &end, &v);
    }
    if (rc != 0)
        fprintf(stderr, "pcsweep: --save-final-image: the state at the end of epoch %u could not be rebuilt: %s\n",
                ch->epoch, strerror(-rc));
    return rc;
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
    struct workload_run_opts ro = {.subject = sc0->subject};
    int rc = workload_run_ex(&w, out, &ro, err, sizeof err);
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
    int rc = sweep_save_repro_judged(&best, &best_hit.c, &best_hit.v, NULL, sweep_reader(&o->sc)->name, o->minimize,
                                     err, sizeof err);
    if (rc)
        fprintf(stderr, "pcsweep: %s\n", err);
    else {
        /* The minimized reproducer is what the user runs next: show its
         * verdict (rebuilt from the saved state), not the original's. */
        printf("\n== the minimized reproducer ==\n");
        printf("minimized: %zu of %zu workload ops, %zu trace operations (was %zu)\nsaved:     %s\n", kept, n,
               best.n_ops, t->n_ops, o->minimize);
        struct verdict mv;
        struct sweep_config esc = o->sc;
        esc.on_violation = NULL;
        esc.save_image = NULL;
        if (sweep_eval_choice(&best, &esc, &best_hit.c, &mv) != 0)
            mv = best_hit.v;
        print_verdict(&best_hit.c, &mv, &best, &esc);
        if (o->json && write_verdict_json(o->json, &o->sc, ch, v, o->pos[0], &best_hit.c, &mv, o->minimize))
            rc = -1;
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
    struct workload_run_opts ro = {.subject = o->sc.subject};
    int rc = workload_run_ex(&w, &nt, &ro, err, sizeof err);
    workload_free(&w);
    printf("rerun:     workload %s seed %" PRIu64 " re-run with %s (subject %s)\n", w.p.scenario, t->seed,
           vhdx_build_id(), sweep_writer(&o->sc)->name);
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

static void protocol_print(const char *label, const struct protocol_report *r, double secs, int quiet);

/* The subjects of a repro (the order in the usage): the reader is
 * --replay-subject, else the reproducer's "replay_subject", else --subject,
 * else the writer; the writer is --subject, else the trace's "subject"
 * (what the workload ran through when it was recorded), else libvhdx.
 * 0, or -1 when the reproducer names a subject this build lacks. */
static int repro_subjects(struct opts *o, const struct trace *t, const char *file)
{
    const char *wrote = trace_get_meta(t, "subject"), *judged = sweep_repro_replay_subject(t);
    if (!o->sc.subject && wrote && !(o->sc.subject = subject_find(wrote))) {
        fprintf(stderr, "pcsweep: %s: written by subject '%s', which this build lacks (pcsweep subjects)\n", file,
                wrote);
        return -1;
    }
    if (!o->sc.replay_subject && judged && !(o->sc.replay_subject = subject_find(judged))) {
        fprintf(stderr, "pcsweep: %s: judged by subject '%s', which this build lacks (pcsweep subjects)\n", file,
                judged);
        return -1;
    }
    return 0;
}

static int cmd_repro(int argc, char **argv)
{
    struct opts o;
    parse(argc, argv, &o, 1);
    tool_check_output(o.json, "--json");
    tool_check_output(o.save_image, "--save-image");
    tool_check_output(o.save_final_image, "--save-final-image");
    tool_check_output(o.minimize, "--minimize");
    struct trace t;
    char err[512];
    if (trace_load(&t, o.pos[0], err, sizeof err) != 0) {
        fprintf(stderr, "pcsweep: %s\n", err);
        return EXIT_BAD_USAGE;
    }
    if (repro_subjects(&o, &t, o.pos[0]) != 0) {
        trace_free(&t);
        return EXIT_BAD_USAGE;
    }
    const char *inv = trace_get_meta(&t, "violation.invariant");
    if (!trace_get_choice(&t, "model") && inv && !strncmp(inv, "protocol:", 9)) {
        printf("reproducer: the trace broke %s when recorded; the protocol checker on it now:\n", inv);
        struct protocol_report r;
        if (protocol_check(&t, NULL, &r) != 0) {
            trace_free(&t);
            tool_die_usage("out of memory");
        }
        protocol_print(o.pos[0], &r, 0, 0);
        int st = r.total ? EXIT_VIOLATION : EXIT_PASS;
        protocol_report_free(&r);
        trace_free(&t);
        return st;
    }
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
    print_verdict(&ch, &v, &t, &sc);
    const char *was = trace_get_meta(&t, "violation.invariant");
    if (was && v.ok)
        printf("note:      the reproducer recorded '%s'; this build does not fail it\n", was);
    if (o.save_image)
        printf("image:     %s (the crash image before replay)\n", o.save_image);
    int lost = 0;
    if (o.save_final_image && save_final_image(&t, &sc, &ch, o.save_final_image) == 0)
        printf("final:     %s (the image at the end of epoch %u: every pending write persisted)\n",
               o.save_final_image, ch.epoch);
    if (o.json)
        lost = write_verdict_json(o.json, &sc, &ch, &v, o.pos[0], NULL, NULL, NULL);
    int status = v.ok ? EXIT_PASS : EXIT_VIOLATION;
    if (o.minimize && !v.ok)
        status = minimize(&t, &ch, &v, &o);
    if (lost)
        status = EXIT_BAD_USAGE;
    trace_free(&t);
    return status;
}

/* ---- protocol ------------------------------------------------------------------- */
static void protocol_json_trace(FILE *f, int first, const char *scenario, uint64_t seed, const char *path,
                                const struct protocol_report *r, double secs)
{
    fprintf(f, "%s\n    {\"scenario\": ", first ? "" : ",");
    tool_json_str(f, scenario);
    fprintf(f, ", \"seed\": %" PRIu64 ", \"trace\": ", seed);
    if (path)
        tool_json_str(f, path);
    else
        fprintf(f, "null");
    fprintf(f,
            ", \"ops\": %" PRIu64 ", \"writes\": %" PRIu64 ", \"flushes\": %" PRIu64 ", \"entries\": %" PRIu64
            ", \"durable_entries\": %" PRIu64 ", \"logs\": %" PRIu64 ", \"final_writes\": %" PRIu64
            ", \"header_writes\": %" PRIu64 ", \"searches\": %" PRIu64 ", \"seconds\": %.4f, \"judged\": %s"
            ", \"incomplete\": %s, \"note\": ",
            r->st.ops, r->st.writes, r->st.flushes, r->st.entries, r->st.durable_entries, r->st.logs,
            r->st.final_writes, r->st.header_writes, r->st.searches, secs, r->judged ? "true" : "false",
            r->incomplete ? "true" : "false");
    tool_json_str(f, r->note);
    fprintf(f, ",\n     \"total\": %" PRIu64 ", \"counts\": {", r->total);
    int n = 0;
    for (int i = 0; i < INV_COUNT; i++)
        if (r->count[i]) {
            fprintf(f, "%s", n++ ? ", " : "");
            tool_json_str(f, invariant_name((enum invariant)i));
            fprintf(f, ": %" PRIu64, r->count[i]);
        }
    fprintf(f, "},\n     \"violations\": [");
    for (size_t k = 0; k < r->n; k++) {
        const struct protocol_violation *v = &r->v[k];
        fprintf(f, "%s\n       {\"invariant\": ", k ? "," : "");
        tool_json_str(f, invariant_name(v->inv));
        fprintf(f, ", \"op\": %" PRId64 ", \"after\": [", v->op);
        for (int a = 0, m = 0; a < PROTOCOL_AFTER_MAX; a++)
            if (v->after[a] != PROTOCOL_NO_OP)
                fprintf(f, "%s%" PRId64, m++ ? ", " : "", v->after[a]);
        fprintf(f, "], \"offset\": %" PRIu64 ", \"length\": %" PRIu64 ", \"detail\": ", v->offset, v->length);
        tool_json_str(f, v->detail);
        fprintf(f, "}");
    }
    fprintf(f, "]}");
}

static void protocol_print(const char *label, const struct protocol_report *r, double secs, int quiet)
{
    printf("protocol: %s: %" PRIu64 " ops, %" PRIu64 " entries (%" PRIu64 " durable), %" PRIu64 " flushes, %.3f s: "
           "%" PRIu64 " violation%s%s%s\n",
           label, r->st.ops, r->st.entries, r->st.durable_entries, r->st.flushes, secs, r->total,
           r->total == 1 ? "" : "s", r->note[0] ? "; " : "", r->note);
    for (size_t k = 0; k < r->n && !quiet; k++) {
        const struct protocol_violation *v = &r->v[k];
        printf("  %s at op %" PRId64, invariant_name(v->inv), v->op);
        for (int a = 0, m = 0; a < PROTOCOL_AFTER_MAX; a++)
            if (v->after[a] != PROTOCOL_NO_OP) {
                if (v->after[a] == PROTOCOL_BASE_OP)
                    printf("%sbase", m++ ? ", " : " (related: ");
                else
                    printf("%sop %" PRId64, m++ ? ", " : " (related: ", v->after[a]);
            }
        int any = 0;
        for (int a = 0; a < PROTOCOL_AFTER_MAX; a++)
            any |= v->after[a] != PROTOCOL_NO_OP;
        printf("%s, bytes %" PRIu64 "+%" PRIu64 "\n    %s\n", any ? ")" : "", v->offset, v->length, v->detail);
    }
    for (int i = 0; i < INV_COUNT; i++)
        if (r->count[i])
            printf("  %-36s %" PRIu64 "\n", invariant_name((enum invariant)i), r->count[i]);
}

static int cmd_protocol(int argc, char **argv)
{
    struct opts o;
    parse(argc, argv, &o, 0);
    char names[TOOL_MAX_SCENARIOS][32];
    int nsc = o.trace ? 1 : tool_scenario_list(o.scenarios, names);
    FILE *jf = NULL;
    if (o.json && !(jf = fopen(o.json, "w")))
        tool_die_usage("--json: cannot write %s", o.json);
    if (jf)
        fprintf(jf, "{\"tool\": \"pcsweep protocol\", \"engine\": \"%s\", \"traces\": [", vhdx_build_id());
    uint64_t total = 0, traces = 0;
    int status = EXIT_PASS;
    double t0 = tool_now(), checking = 0;
    for (int si = 0; si < nsc && status != EXIT_BAD_USAGE; si++) {
        for (uint64_t k = 0; k < (o.trace ? 1 : o.seeds); k++) {
            struct trace t;
            uint64_t seed = o.seed + k;
            char err[512], label[96];
            if (o.trace) {
                if (trace_load(&t, o.trace, err, sizeof err) != 0) {
                    fprintf(stderr, "pcsweep: %s\n", err);
                    status = EXIT_BAD_USAGE;
                    break;
                }
                const char *wl = trace_get_meta(&t, "workload");
                snprintf(names[0], 32, "%s", wl ? wl : "external");
                seed = t.seed;
                snprintf(label, sizeof label, "%s", o.trace);
            } else {
                trace_init(&t); /* build_trace may fail before it initialises t */
                int brc = build_trace(&o, names[si], seed, &t);
                if (brc == -1) {
                    trace_free(&t);
                    status = EXIT_BAD_USAGE;
                    break;
                }
                /* a workload that failed on a healthy disk is a violation of
                 * its own (build_trace said why); its partial trace is still
                 * checked: the operations up to the failure are evidence */
                total += brc == -2;
                snprintf(label, sizeof label, "%s seed %" PRIu64 "%s", names[si], seed,
                         brc == -2 ? " (workload failed: partial trace)" : "");
            }
            struct protocol_report r;
            double c0 = tool_now();
            int rc = protocol_check(&t, NULL, &r);
            double secs = tool_now() - c0;
            checking += secs;
            trace_free(&t);
            if (rc != 0) {
                fprintf(stderr, "pcsweep: protocol check: %s\n", strerror(-rc));
                status = EXIT_BAD_USAGE;
                break;
            }
            protocol_print(label, &r, secs, o.sc.quiet);
            if (jf)
                protocol_json_trace(jf, traces == 0, names[si], seed, o.trace, &r, secs);
            traces++;
            total += r.total;
            if (!r.judged) {
                fprintf(stderr, "pcsweep: %s: not judged: %s\n", label, r.note);
                status = EXIT_BAD_USAGE;
            }
            protocol_report_free(&r);
        }
    }
    double wall = tool_now() - t0;
    if (jf) {
        fprintf(jf, "\n  ], \"violations\": %" PRIu64 ", \"check_seconds\": %.4f, \"seconds\": %.4f}\n", total,
                checking, wall);
        fclose(jf);
    }
    printf("protocol: %" PRIu64 " trace%s, %" PRIu64 " violation%s; checking took %.3f s of %.3f s\n", traces,
           traces == 1 ? "" : "s", total, total == 1 ? "" : "s", checking, wall);
    if (status == EXIT_BAD_USAGE)
        return status;
    return total ? EXIT_VIOLATION : EXIT_PASS;
}

static int cmd_invariants(int argc, char **argv)
{
    int json = argc > 2 && !strcmp(argv[2], "--json");
    if (argc > 2 + json)
        tool_die_usage("invariants: unexpected argument '%s'", argv[2 + json]);
    if (json)
        printf("[");
    for (int i = 0; i < INV_COUNT; i++) {
        const enum invariant v = (enum invariant)i;
        if (json) {
            printf("%s\n  {\"name\": ", i ? "," : "");
            tool_json_str(stdout, invariant_name(v));
            printf(", \"class\": ");
            tool_json_str(stdout, invariant_class(v));
            printf(", \"about\": ");
            tool_json_str(stdout, invariant_about(v));
            printf("}");
        } else {
            printf("%-36s %-10s %s\n", invariant_name(v), invariant_class(v), invariant_about(v));
        }
    }
    if (json)
        printf("\n]\n");
    return EXIT_PASS;
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

static int cmd_refgen(int argc, char **argv)
{
    struct refgen_opts ro;
    memset(&ro, 0, sizeof ro);
    int nargc;
    char **nargv = refgen_args(argc, argv, &ro, &nargc);
    struct opts o;
    parse(nargc, nargv, &o, 0);
    int rc;
    if (ro.sweep) {
        sweep_refgen = &ro;
        rc = cmd_sweep(nargc, nargv);
        sweep_refgen = NULL;
    } else {
        rc = refgen_write(&o, &ro);
    }
    free(nargv);
    return rc;
}

/* `pcsweep shard [--shard K/N] [--shards N] [--json]`: the shard this
 * process would take (toolbase.h's rule), for the driver and scripts. */
static int cmd_shard(int argc, char **argv)
{
    const char *shard = NULL, *shards = NULL;
    int json = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if ((!strcmp(argv[i], "--shard") || !strcmp(argv[i], "--shards")) && i + 1 < argc) {
            if (argv[i][7] == 's')
                shards = argv[++i];
            else
                shard = argv[++i];
        } else
            tool_die_usage("shard: unknown option '%s'", argv[i]);
    }
    struct tool_shard sh = tool_shard_or_die(shard, shards);
    if (json) {
        printf("{\"k\": %u, \"n\": %u, \"shard\": \"%u/%u\", \"source\": ", sh.k, sh.n, sh.k, sh.n);
        tool_json_str(stdout, sh.source);
        printf("}\n");
    } else
        printf("%u/%u (from %s)\n", sh.k, sh.n, sh.source);
    return EXIT_PASS;
}

int main(int argc, char **argv)
{
    tool_set_name("pcsweep");
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        print_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_BAD_USAGE : EXIT_PASS;
    }
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            print_usage(stdout);
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
    if (!strcmp(argv[1], "subjects")) {
        printf("[");
        for (size_t i = 0; subject_at(i); i++) {
            printf("%s{\"name\": ", i ? ",\n " : "");
            tool_json_str(stdout, subject_at(i)->name);
            printf(", \"about\": ");
            tool_json_str(stdout, subject_at(i)->about);
            printf(", \"creates\": %s, \"known\": [", subject_at(i)->create ? "true" : "false");
            const struct subject_departure *k = subject_at(i)->known;
            for (int j = 0; k && k[j].invariant; j++) {
                printf("%s{\"invariant\": ", j ? ", " : "");
                tool_json_str(stdout, k[j].invariant);
                printf(", \"finding\": ");
                tool_json_str(stdout, k[j].finding);
                printf("}");
            }
            printf("]}");
        }
        printf("]\n");
        return EXIT_PASS;
    }
    if (!strcmp(argv[1], "scenarios")) {
        tool_print_scenarios_json(stdout);
        return EXIT_PASS;
    }
    if (!strcmp(argv[1], "export"))
        return cmd_export(argc, argv);
    if (!strcmp(argv[1], "protocol"))
        return cmd_protocol(argc, argv);
    if (!strcmp(argv[1], "invariants"))
        return cmd_invariants(argc, argv);
    if (!strcmp(argv[1], "models")) {
        print_models_json(stdout);
        return EXIT_PASS;
    }
    if (!strcmp(argv[1], "shard"))
        return cmd_shard(argc, argv);
    tool_die_usage("unknown command '%s'", argv[1]);
}
