/*
 * sweep_core.h - the sweeper's insides, shared by the sweep (sweep.c), the
 * state judge (statejudge.c) and the crash models (models/NAME.c).  Not a
 * public header.
 *
 * A crash model is one file in models/: a generator that, for the epoch
 * the sweeper is at, builds each of its states on s->cd (through
 * sw_reset_all / sw_prefix_to / sw_overlay_apply or the crash disk's own
 * calls) and hands each to sw_eval_simple (or judges it itself, like
 * recovery), asking sw_take first whether the state is this shard's; and a
 * formatter that names a state.  The list of models is CRASH_MODEL_LIST
 * (harness/models.h); adding a model is a new file here plus one line
 * there (and a row in docs/harness.md).
 */
#ifndef HARNESS_SWEEP_CORE_H
#define HARNESS_SWEEP_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "harness/epochs.h"
#include "harness/oracle.h"
#include "harness/refjudge.h"
#include "harness/sdata.h"
#include "harness/subject.h"
#include "harness/sweep.h"

/* ---- the sweeper --------------------------------------------------------------- */
struct undo_rec {
    uint64_t sector;
    const uint8_t *prev; /* NULL: absent before */
    uint64_t op;         /* trace index of the write */
};

struct sweeper {
    const struct trace *t;
    const struct sweep_config *c;
    struct sweep_stats *st;
    struct oracle oracle;
    int have_oracle;
    struct secmap D;          /* durable image */
    uint64_t dsize;           /* durable size */
    struct crashdisk cd;      /* the state device */
    uint32_t epoch;           /* current epoch */
    uint32_t *pending;        /* trace indices of W/T in the epoch */
    size_t prefix_len;        /* pending ops held by the crash disk's prefix layer */
    /* A structural class: states identical below the first payload block
     * share one open (and its replay) and one check. */
    int share;                /* sharing enabled (workload traces of this engine) */
    int sh_active;            /* a class handle is open */
    uint64_t sh_sig;          /* its signature */
    struct subject_handle *sh_h; /* its handle */
    struct subject_info sh_in;
    struct verdict sh_v;      /* its structural verdict */
    struct subject_handle *sh_ro; /* its read-only handle (JUDGE_VIEW; NULL if refused or off) */
    uint64_t sh_rng, sh_ro_rng; /* the GUID streams of its handles (live as long as they do) */
    const struct subject_ops *subj; /* the reader: opens and judges every state (sweep_reader) */
    struct refjudge sh_ref;   /* its reference reading (JUDGE_REF) */
    uint64_t epoch_start;     /* trace index of the current epoch's first op */
    struct ref_memo *memo;    /* the reference's checksum memo for this trace (JUDGE_REF) */
    uint8_t *unwritten_buf;   /* one index unit and its sector mask (JUDGE_UNWRITTEN) */
    uint64_t unwritten_cap;
    struct crash_choice sh_first; /* the first state of the class */
    size_t n_pending, cap_pending;
    struct undo_rec *undo;    /* what the last flush overwrote (the `lost` model) */
    size_t n_undo, cap_undo;
    uint64_t log_offset;      /* from the base image's current header */
    uint32_t log_length;
    uint64_t state_index;     /* global, for sharding */
    struct trace_epochs ep;   /* the trace's epochs (epochs.h) */
    double t0, last_progress;
    int stop;
    int tty;
    int no_explain;           /* sw_record: the crash disk holds another state than the verdict's */
    uint64_t built_size;      /* size of the state's image as built (set when it is judged) */
    /* target single-choice evaluation (repro) */
    const struct crash_choice *want;
    struct verdict *want_verdict;
    int want_found;
};

/* One crash model (models/<name>.c). */
struct crash_model_def {
    const char *name;    /* as in reproducers and --models */
    int power_loss;      /* 1: a power-loss model (a refusal is a violation); 0: a corruption model */
    int exportable;      /* its states can be handed out as images (export, on_state) */
    int tears;           /* the medium tears inside a sector: a write in flight may leave a byte
                          * prefix of its new value over the old (ORACLE_POWER_LOSS_TEARS) */
    void (*gen)(struct sweeper *s, uint64_t cut); /* every state of the current epoch */
    void (*format)(const struct crash_choice *c, char *buf, size_t len);
    const char *about;   /* one line */
};
#define X(id, sym, name, power) extern const struct crash_model_def model_##sym;
CRASH_MODEL_LIST(X)
#undef X
extern const struct crash_model_def *const sw_models[M_COUNT];

/* ---- shared helpers (sweep.c) ---- */
double sw_now(void);
uint64_t sw_mix64(uint64_t x);
/* A hash of the choice coordinates: seeds the subject's GUIDs and the
 * oracle's sampling for this state. */
uint64_t sw_choice_hash(const struct sweeper *s, const struct crash_choice *c);
/* The i-th pending write or truncate of the epoch. */
const struct trace_op *sw_pend(const struct sweeper *s, size_t i);
/* Empties every layer of the state device (the shared prefix too). */
void sw_reset_all(struct sweeper *s);
/* Makes the state device D + p1..pi (prefix layer), nothing else. */
void sw_prefix_to(struct sweeper *s, size_t i);
/* Applies one pending op to the overlay of the state device. */
int sw_overlay_apply(struct crashdisk *cd, const struct trace_op *op);
/* Should this generated state be judged here (shard, repro target)? */
int sw_take(struct sweeper *s, const struct crash_choice *c);
/* Counts a judged state and reports its violation. */
void sw_record(struct sweeper *s, const struct crash_choice *c, const struct verdict *v);
/* Judges the state built on s->cd (or hands it to on_state) and records it. */
void sw_eval_simple(struct sweeper *s, const struct crash_choice *c, uint64_t cut);
/* Judges the image on s->cd with every judge (statejudge); allow_share:
 * states of one structural class share the subject's open. */
void sw_judge_share(struct sweeper *s, const struct crash_choice *ch, uint64_t cut, struct verdict *v,
                    int allow_share);
void sw_judge(struct sweeper *s, const struct crash_choice *ch, uint64_t cut, struct verdict *v);
/* Appends the reader's reading of the image as built (subject_ops.explain)
 * to a failed verdict's detail. */
void sw_explain(struct sweeper *s, struct verdict *v);
/* Closes the open structural class (and reports a close that wrote). */
void sw_shared_close(struct sweeper *s);
/* Does [off, off+len) lie inside the log (the base image's current header's)? */
static inline int sw_in_log(const struct sweeper *s, uint64_t off, uint64_t len)
{
    return off >= s->log_offset && off + len <= s->log_offset + s->log_length;
}
/* A minimal hexdump diff of two sectors into out. */
void sw_sector_diff(char *out, size_t len, const uint8_t *want, const uint8_t *got);

#define vfail verdict_fail_named

#endif /* HARNESS_SWEEP_CORE_H */
