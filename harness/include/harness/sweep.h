/*
 * sweep.h - cutting the power at every point of a trace under every model,
 * and judging each crash state.
 *
 * The trace is walked once.  The durable image D (a secmap of pointers into
 * the trace) is advanced at every flush; the writes and truncates between
 * two flushes form an epoch's pending list P.  For each epoch the models
 * generate crash states as overlays on D (simdisk.h explains the models):
 *
 *   prefix    D + p1..pi                 i = 1..|P|
 *   drop      D                          once per epoch
 *   reorder   D + any subset of P        exhaustive when |P| <= reorder_max,
 *                                        else reorder_samples seeded subsets
 *                                        (prefix subsets are left to prefix)
 *   torn      D + p1..p(i-1) + part of pi  per pending write, 512 B and/or
 *                                        4 KiB units, seven patterns; and
 *             every pending write torn at once (index = |P|)
 *   stale     like prefix from the first growing truncate on, with writes
 *             into the new space dropped and the rest of it reading POISON
 *   recovery  from D + P and from D: open (replay, recorded), then cut after
 *             each write of that replay and open again; the result must
 *             equal the uninterrupted replay's
 *   misdirect a pending log write lands at another ring position
 *   lost      a log/header write the previous flush made durable is gone
 *   bitflip   one bit of durable log, header or region-table bytes flips
 *
 * All states of an epoch are judged with the expectation at the epoch's end
 * (the flush): the acknowledged set only changes at flushes, and a crash
 * image can only hold writes issued before it.  Every random choice comes
 * from the sweep seed and the state's coordinates, so a state is identified
 * by (epoch, model, choice) and regenerated exactly from those.
 *
 * Judging a state (judges, sweep_config.judges): the reference reads the
 * image first (refjudge.h); the subject opens it read-only (replay in
 * memory) and read-write (replays the log); the open must succeed
 * (power-loss models) and agree with the reference (refused-recoverable,
 * accepted-invalid, the same sequence and geometry); the header's LogGuid
 * must be zero afterwards; the checker must find no errors; the replayed
 * metadata must equal the reference's replay; sectors from
 * oracle_check_set() (all written sectors every full_every-th state) must
 * satisfy the oracle and read the same through the read-only handle and
 * the reference, as must a few ranges at odd offsets and lengths; on every
 * unwritten_every-th state the blocks the epoch touched read zeros wherever
 * no write ever went; recovery states must reach the same bytes as the
 * uninterrupted replay.
 */
#ifndef HARNESS_SWEEP_H
#define HARNESS_SWEEP_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "harness/models.h"
#include "harness/oracle.h"
#include "harness/protocol.h"
#include "harness/subject.h"
#include "harness/simdisk.h"
#include "harness/trace.h"
#include "harness/verdict.h"

enum crash_model {
#define X(id, sym, name, power) M_##id,
    CRASH_MODEL_LIST(X)
#undef X
    M_COUNT
};
#define CRASH_MODEL_POWER_BIT(id, sym, name, power) | ((unsigned)(power) << M_##id)
#define M_POWER_MODELS (0u CRASH_MODEL_LIST(CRASH_MODEL_POWER_BIT))
#define M_ALL_MODELS ((1u << M_COUNT) - 1)

extern const char *const crash_model_names[M_COUNT];
/* "prefix,torn" -> bitmask; "all" and "power" accepted.  -1 on error. */
int crash_models_parse(const char *s, unsigned *mask);
/* What the registry says of model m: one line about it; whether its states
 * can be exported as images. */
const char *crash_model_about(enum crash_model m);
int crash_model_exportable(enum crash_model m);

/* A crash state's coordinates: everything needed to rebuild it. */
struct crash_choice {
    enum crash_model model;
    uint32_t epoch;      /* index of the epoch (0 = before the first flush) */
    uint32_t index;      /* prefix length / pending write index / replay cut, by model */
    uint32_t gran;       /* torn: 512 or 4096 */
    uint32_t pattern;    /* torn: pattern number; recovery: 0 from D+P, 1 from D */
    uint64_t subset[4];  /* reorder: bitmask over up to 256 pending ops (subset_list otherwise) */
    uint64_t target;     /* misdirect: new ring offset; lost: trace index; bitflip: byte offset */
    uint32_t bit;        /* bitflip: bit number */
};

/* Formats "model=torn epoch=12 write=3 gran=512 pattern=2" style text. */
void crash_choice_format(const struct crash_choice *c, char *buf, size_t len);
/* Stores/reads the choice as trace choice key/values (reproducers). */
int crash_choice_to_trace(const struct crash_choice *c, struct trace *t);
/* Two choices name the same crash state (every coordinate equal). */
int crash_choice_equal(const struct crash_choice *a, const struct crash_choice *b);
/* A hash of every coordinate of c, started from mix(start): seeds GUIDs
 * and sampling for one state (each tool salts start its own way). */
uint64_t crash_choice_hash(const struct crash_choice *c, uint64_t start);
int crash_choice_from_trace(const struct trace *t, struct crash_choice *c, char *err, size_t errlen);

/* The judges a sweep runs on each state (sweep_config.judges). */
enum sweep_judge {
    JUDGE_ORACLE = 1u << 0,    /* the subject opens, replays, checks clean; the data oracle on sampled sectors */
    JUDGE_REF = 1u << 1,       /* the independent reference (refjudge.h) */
    JUDGE_VIEW = 1u << 2,      /* a read-only open shows the same disk as the read-write one */
    JUDGE_UNWRITTEN = 1u << 3, /* never-written sectors of allocated blocks read zeros */
    JUDGE_PROTOCOL = 1u << 4,  /* the write-ahead protocol on the trace itself (protocol.h), once per trace */
};
#define JUDGE_COUNT 5
#define JUDGE_ALL ((1u << JUDGE_COUNT) - 1)
extern const char *const sweep_judge_names[JUDGE_COUNT]; /* "oracle", "reference", "view", "unwritten", "protocol" */
/* "oracle,reference" -> bitmask; "all" accepted.  -1 on error. */
int sweep_judges_parse(const char *s, unsigned *mask);

struct subject_ops;

/*
 * Two subjects (cross-subject sweeps).  `subject` wrote the trace: the
 * workload runs through it (or, with a saved trace, it names who wrote it);
 * `replay_subject` opens, replays, checks and reads every crash state
 * (NULL: the same as `subject`).  QEMU's crash states replayed by libvhdx
 * are subject qemu, replay_subject libvhdx.
 *
 * Whose known departures (subject_ops.known) a finding is set apart by,
 * the rule:
 *  - the writer's list (`subject`) for what the writer did: a protocol
 *    finding (protocol:*, a fact of the order in which it issued writes and
 *    flushes), and ref:invalid-crash-state (the reference finds a
 *    power-loss crash image broken as built, before any reader opened it:
 *    the writer left a file MS-VHDX calls corrupt);
 *  - the reader's list (`replay_subject`) for every other state verdict:
 *    what the reader did with the image (refused a valid one, opened a
 *    broken one, replayed other bytes, read other data, ...).
 * sweep_invariant_is_writers() tells the two apart.  So that a reader that
 * does what the text asks is not blamed for the writer, a power-loss state
 * the reference finds broken and the reader refuses as a format error is
 * ref:invalid-crash-state, not open-refused (with the reference judge on);
 * a reader that opens it instead is judged as before (log-guid-not-cleared,
 * ref:accepted-invalid, ...: the reader's own departure).  A writer's
 * departure never excuses a reader's other verdicts, and a reader's never
 * excuses the writer's.  With one subject for both, both lists are that
 * subject's, as before.
 */
struct sweep_config {
    const struct subject_ops *subject; /* wrote the trace: the workload runner's subject (NULL: libvhdx) */
    const struct subject_ops *replay_subject; /* opens and judges the crash states (NULL: subject) */
    unsigned models;          /* bitmask of (1 << M_*) */
    unsigned judges;          /* bitmask of JUDGE_* (default JUDGE_ALL) */
    uint32_t unwritten_every; /* the unwritten-sector check on every Nth state (default 4; 1 = all) */
    uint32_t replayed_every;  /* the reference's reading of the replayed image on every Nth structural
                               * class that replays (default 4; 1 = all): it re-reads and re-checksums
                               * the headers the replay rewrote */
    uint64_t seed;            /* sampling seed */
    uint32_t shard_k, shard_n; /* evaluate states with index % n == k; the protocol judge (the whole
                                * trace, no state) runs in shard 0 only */
    uint32_t reorder_max;     /* exhaustive reorder up to this many pending ops (default 8) */
    uint32_t reorder_samples; /* sampled subsets above it (default 32) */
    uint32_t torn_grans;      /* bit 0: 512, bit 1: 4096 (default both) */
    uint32_t per_op;          /* sectors checked per hot op (default 8) */
    uint32_t probes;          /* probe sectors per state (default 16) */
    uint32_t full_every;      /* wide data check every Nth state (default 64; 0 = never) */
    uint32_t full_max;        /* sectors in a wide check (default 4096; 0 = every written sector) */
    uint32_t first_epoch;     /* resume: epochs before it are walked, no states generated */
    uint64_t max_states;      /* stop after this many states (0 = no limit) */
    uint64_t max_violations;  /* stop after this many violations (0 = no limit) */
    double max_seconds;       /* stop after this long (0 = no limit) */
    const char *repro_dir;    /* save reproducers here (NULL = don't) */
    const char *save_image;   /* sweep_eval_choice: write the state's image (before replay) here */
    int quiet;                /* no progress line */
    int no_share;             /* judge every state with its own open and check */
    int strict;               /* the subject's known departures count as violations too */
    /* When set and nonzero (e.g. from a SIGINT handler), the sweep stops
     * after the current state as if a limit were hit (stopped_early). */
    const volatile sig_atomic_t *cancel;
    /* Export mode: when set, states are not judged; each is handed to this
     * callback with the crash disk holding its image (read it with
     * crashdisk_read, size in cd->size).  The recovery model needs the
     * checker's own replay and is skipped.  Return nonzero to stop. */
    int (*on_state)(void *ctx, const struct crash_choice *c, uint64_t cut, struct crashdisk *cd);
    /* Called for each protocol violation of the trace (JUDGE_PROTOCOL; may be
     * NULL: they are counted in sweep_stats either way). */
    void (*on_protocol)(void *ctx, const struct protocol_violation *pv);
    /* Called for each violation (may be NULL); return nonzero to stop. */
    int (*on_violation)(void *ctx, const struct crash_choice *c, const struct verdict *v, const char *repro_path);
    void *ctx;
};

struct sweep_stats {
    uint64_t states;              /* judged */
    uint64_t states_per_model[M_COUNT];
    double seconds_per_model[M_COUNT]; /* time spent judging each model's states */
    uint64_t skipped;             /* generated for other shards */
    uint64_t violations;          /* states that violate, plus protocol violations */
    uint64_t violations_per_model[M_COUNT];
    uint64_t protocol_violations; /* of the trace's write-ahead protocol (JUDGE_PROTOCOL) */
    /* Findings set apart as known departures (subject_ops.known), per entry
     * of the list that owns them (the rule above): the reader's for state
     * verdicts, the writer's for protocol findings and invalid crash states.
     * Not violations unless sweep_config.strict.  With one subject both
     * index the same list. */
    uint64_t known[SUBJECT_KNOWN_MAX];        /* reader's list: state verdicts */
    uint64_t known_writer[SUBJECT_KNOWN_MAX]; /* writer's list: protocol findings, invalid crash states */
    uint64_t known_total;
    int protocol_judged;          /* the protocol checker followed the trace */
    uint64_t epochs;
    uint64_t replays;             /* states whose open replayed a log */
    uint64_t opens;               /* engine opens performed (states share opens, see judge) */
    double seconds;
    int stopped_early;            /* a limit was hit */
    uint32_t total_epochs;        /* epochs of the trace (flushes + 1) */
    uint32_t next_epoch;          /* first epoch whose states were not all generated: where a
                                     resumed sweep starts (first_epoch); total_epochs when done */
};

void sweep_config_defaults(struct sweep_config *c);
/* The writer and the reader of a configuration (never NULL). */
/* Is a violation of this invariant the writer's (protocol:*,
 * ref:invalid-crash-state), set apart by the writer's known list? */
int sweep_invariant_is_writers(const char *invariant);
const struct subject_ops *sweep_writer(const struct sweep_config *c);
const struct subject_ops *sweep_reader(const struct sweep_config *c);

/* Sweeps the whole trace.  Returns 0 (violations are counted, not errors),
 * or a negative error when the harness itself failed. */
int sweep_run(const struct trace *t, const struct sweep_config *c, struct sweep_stats *st);

/* Rebuilds and judges exactly one state (repro). */
int sweep_eval_choice(const struct trace *t, const struct sweep_config *c, const struct crash_choice *ch,
                      struct verdict *v);

/* Writes the image of a crash disk to a file (sparse: zero sectors become
 * holes).  0 or -errno. */
int crashdisk_save_image(struct crashdisk *cd, const char *path);

/* Saves a reproducer: the trace plus the choice (and the verdict's
 * invariant as metadata).  Returns 0 or -1 with err. */
int sweep_save_repro(const struct trace *t, const struct crash_choice *ch, const struct verdict *v,
                     const char *path, char *err, size_t errlen);
/* The same with extra metadata (key, value, key, value, ..., NULL; set
 * before the violation's) and ch NULL for a reproducer with no crash state. */
int sweep_save_repro_ex(const struct trace *t, const struct crash_choice *ch, const struct verdict *v,
                        const char *const *extra, const char *path, char *err, size_t errlen);
/* The same, naming the subject that judged the state (choice key
 * "replay_subject"; NULL: none is named), so that `pcsweep repro` judges it
 * with that subject again. */
int sweep_save_repro_judged(const struct trace *t, const struct crash_choice *ch, const struct verdict *v,
                            const char *const *extra, const char *replay_subject, const char *path, char *err,
                            size_t errlen);
/* The replay subject a reproducer names (choice key "replay_subject"), or
 * NULL when it names none (reproducers saved before the key existed). */
const char *sweep_repro_replay_subject(const struct trace *t);

#endif /* HARNESS_SWEEP_H */
