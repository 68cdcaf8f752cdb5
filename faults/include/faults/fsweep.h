/*
 * fsweep.h - the fault sweep behind pcfaults: every deterministic fault plan
 * of a workload, in three phases, each fault judged live and after a power
 * cut and a reopen; the results per phase, kind and mode, with violations
 * grouped by signature and their reproducers.  faults/tools/pcfaults.c
 * parses the options and writes the summaries; this is everything else.
 *
 * Phases (enum fault_phase):
 *   run     the workload runs with the plan armed (liverun.h: live checks);
 *           then crash states of the trace recorded with the fault are
 *           judged with the fault oracle (judge.h): the fault's epoch and
 *           `window` epochs after it (harness/epochs.h), sampled, and the
 *           final state (fsweep_run_plan, fsweep_judge_after)
 *   replay  crash states of the clean trace whose header names a log are
 *           opened (replayed) with the plan armed: fault-not-reported,
 *           refused-open-wrote, and the images a power cut during that
 *           session leaves (fsweep_replay)
 *   create  the image is created with the plan armed: what a failed create
 *           leaves must be refused cleanly or be a valid empty disk
 *           (fsweep_create, fsweep_create_plan)
 *
 * Plans (fsweep_each_plan): for each chosen kind and mode, nth = 1,
 * 1 + stride, ... up to the calls the kind's points get in the clean run;
 * each plan has a global index (sharding, --first-plan); a counting pass
 * (fsweep_count_plans) enumerates them without running any.
 *
 * Guarantees: a plan's results depend only on the options, the workload and
 * the plan (no clock, no shared randomness); the first violation of a
 * signature gets the reproducer (within the disk cap) and is printed, later
 * ones are counted with a few examples.  This is a tool's engine: an
 * infrastructure error (out of memory, a workload that fails without
 * faults) ends the process with "pcfaults: ..." and exit status 2
 * (fsweep_die), workload parameters that do not resolve are bad usage
 * (tool_die_usage).  While a plan runs, fsweep_context names the `pcfaults run`
 * command that reproduces it, for the tool's crash handlers.  Not
 * thread-safe (libfiu's state is process-wide).
 */
#ifndef FAULTS_FSWEEP_H
#define FAULTS_FSWEEP_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "faults/plan.h"
#include "faults/liverun.h"
#include "harness/subject.h"
#include "harness/sweep.h"
#include "harness/workload.h"

enum fault_phase { PH_RUN = 0, PH_REPLAY, PH_CREATE, PH_COUNT };
extern const char *const fault_phase_names[PH_COUNT]; /* "run", "replay", "create" */

/* What the sweep does (pcfaults' options). */
struct fsweep_opts {
    const struct subject_ops *subj; /* the implementation under test */
    struct workload_params wp;     /* image/engine parameters (ops etc.) */
    int ops_given;                 /* --ops was given */
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
    uint64_t max_repro_bytes;      /* disk cap of the reproducers */
    const char *repro_dir;         /* reproducers (NULL = none) */
    int strict;                    /* the subject's known departures count as violations */
};

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
#define FSWEEP_EXAMPLES 5

/* Violations grouped by signature: one bug trips the same invariant under
 * many plans; each signature gets one reproducer, a count and examples. */
struct failure {
    char key[320];         /* invariant|phase|kind|scenario|structure */
    char scenario[32];     /* workload */
    enum fault_phase phase; /* where the fault struck */
    enum fault_kind kind;  /* the fault kind */
    char structure[160];   /* what the violation involves (tool_violation_structure) */
    char invariant[48];
    uint64_t count;        /* violations with this signature */
    struct example ex[FSWEEP_EXAMPLES];
    size_t nex;
    char repro[4096];      /* reproducer of the first, "" if none */
    char no_repro[96];     /* why there is none, "" */
};

struct fsweep {
    const struct fsweep_opts *o;     /* options */
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
    int counting;                    /* fsweep_count_plans: plans are enumerated, none runs, no limit applies */
    const char *scenario;            /* current workload */
    uint64_t seed;                   /* its seed */
    char workload_args[256];         /* --scenario ... --ops ... for crash messages */
    uint32_t left_out;               /* workloads the subject fails without faults (fsweep_clean_run) */
    uint64_t known;                  /* verdicts the subject's known list sets apart (not violations) */
    uint64_t known_by[SUBJECT_KNOWN_MAX]; /* per entry of subj->known */
};

/* The verdict of the one plan and state a `pcfaults run` or repro asks for. */
struct fsweep_one {
    struct verdict v;      /* its verdict */
    int found;             /* the state was generated */
    int fired;             /* the fault fired */
};

/* Set by the tool's SIGINT/SIGTERM handler: stop after the current plan and
 * still write the summary (marked "interrupted"). */
extern volatile sig_atomic_t fsweep_interrupted;
/* The command that reproduces what runs now ("" between plans). */
extern char fsweep_context[1024];

void fsweep_init(struct fsweep *S, const struct fsweep_opts *o, const char *cmd);
/* "pcfaults: message", exit status 2. */
void fsweep_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fsweep_set_context(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
uint64_t fsweep_mix64(uint64_t x);

/* ---- plans and limits ---- */
/* A limit (or a signal) stops the sweep: sets S->stop. */
int fsweep_limits_hit(struct fsweep *S);
/* Should the next plan run here (shard, limits)?  Counts its index. */
int fsweep_take_plan(struct fsweep *S);
typedef void (*fsweep_plan_fn)(struct fsweep *S, const struct fault_plan *plan, void *ctx);
/* Every deterministic plan the options ask for, given the calls each point
 * got without faults (cnt); fn runs each plan this shard takes, until S->stop. */
void fsweep_each_plan(struct fsweep *S, const struct fault_stats *cnt, fsweep_plan_fn fn, void *ctx);
/* Plans a sweep of these workloads enumerates (all shards), without running
 * any; UINT64_MAX when a signal cut the count short. */
uint64_t fsweep_count_plans(struct fsweep *S, char names[][32], int nsc);
/* The progress line (a terminal only, not --quiet). */
void fsweep_progress(struct fsweep *S, const char *what, int final);
/* Results summed over the phases, kinds and modes given (-1 = all). */
struct kstat fsweep_sum(const struct fsweep *S, int ph, int k, int m);

/* ---- violations ---- */
/* Records a violation under its signature (ch: the crash state, NULL live;
 * post: the post-cut image of a replay, or NULL). */
void fsweep_violation(struct fsweep *S, enum fault_phase ph, const struct fault_plan *plan, const struct trace *t,
                      const struct crash_choice *ch, const char *post, const struct verdict *v);
/* Saves a reproducer of a plan that fired and passed (--keep-repro). */
void fsweep_keep_passing(struct fsweep *S, enum fault_phase ph, const struct fault_plan *plan, const struct trace *t,
                         const struct crash_choice *ch, const char *post);

/* ---- workloads ---- */
/* The workload of a scenario and seed with the options' parameters. */
void fsweep_make_workload(const struct fsweep_opts *o, const char *scenario, uint64_t seed, struct workload *w);
/* Notes the workload's parameters for crash messages. */
void fsweep_workload_args(struct fsweep *S, const struct workload_params *p);
/* Workload w with plan armed and the options' live checks (phase run),
 * into t; r says whether and where it fired and holds the live verdict. */
void fsweep_run_armed(struct fsweep *S, const struct workload *w, const struct fault_plan *plan, struct fault_run *r,
                      struct trace *t);
/* The clean run: the trace the replay phase cuts (t0), and the call counts.
 * 0; -1 when a subject with filed departures fails the workload without
 * faults (said, counted in left_out: the sweep is incomplete); the engine
 * failing it is fatal. */
int fsweep_clean_run(struct fsweep *S, const struct workload *w, struct trace *t0, struct fault_stats *cnt);
/* Every phase the options ask for, on one scenario and seed. */
void fsweep_workload(struct fsweep *S, const char *scenario, uint64_t seed);
/* Sets fsweep_context to the `pcfaults run` command of a plan (and state). */
void fsweep_plan_context(struct fsweep *S, enum fault_phase ph, const struct fault_plan *p, const char *state);

/* ---- the phases (phases.c) ---- */
/* One plan in phase run: run, live checks, crash states after the fault
 * (judge_states). */
void fsweep_run_plan(struct fsweep *S, const struct workload *w, const struct fault_plan *plan, int judge_states);
/* The crash states after the fault at trace position fired_pos of t (the
 * trace recorded with plan), or only `only` (its verdict in only_v, *found
 * whether it was generated). */
void fsweep_judge_after(struct fsweep *S, const struct fault_plan *plan, const struct trace *t, uint64_t fired_pos,
                        const struct crash_choice *only, struct verdict *only_v, int *found);
/* Phase replay for the clean trace t: choose states, then fail every call of
 * their opens; or, with one, only plan one on one_state (and the post-cut
 * image one_post, NULL = both), its result in *out. */
void fsweep_replay(struct fsweep *S, const struct trace *t, const struct fault_plan *one,
                   const struct crash_choice *one_state, const char *one_post, struct fsweep_one *out);
/* Phase create: fail every call of the create of workload p's image. */
void fsweep_create(struct fsweep *S, const struct trace *t0, const struct workload_params *p);
/* One create plan; with one_v its verdict goes there instead of being
 * recorded.  Returns 1 when the fault fired. */
int fsweep_create_plan(struct fsweep *S, const struct trace *t0, const struct workload_params *p,
                       const struct fault_plan *plan, struct verdict *one_v);

#endif /* FAULTS_FSWEEP_H */
