/*
 * workload.h - deterministic workloads: a seed and a scenario make a list of
 * virtual-disk operations; running it against the engine on a recording
 * simdisk makes a trace the sweep can cut at every point.
 *
 * Scenarios (image parameters are options; defaults 1 GiB disk, so the BAT
 * spans several 4 KiB pages and 512-byte sectors, 1 MiB blocks, 4096-byte
 * physical sectors, 1 MiB log; most writes are small, so allocation is
 * cheap).  Logical sectors: each scenario uses 4096 bytes for odd seeds or
 * for even ones (the registry says which) and 512 for the others, so two
 * consecutive seeds run it with both; the default sweep (seed 1) runs
 * churn, extend, trim and keep with 4096:
 *   fill       rounds of writes spread over the whole disk (single sectors
 *              to several blocks), each round ended by discarding
 *              everything, so blocks are allocated again and again and the
 *              1 MiB log wraps several times
 *   overwrite  a prefilled region, then in-place overwrites (aligned and
 *              unaligned to the logical sector) with frequent flushes
 *   discard    writes, whole-block and partial discards, rewrites
 *   batch      allocations with the engine applying every 16 entries, so
 *              sequences of many entries and wrap-around sit on disk
 *   reopen     several sessions (close + open): each opens a new log, stale
 *              entries of older sessions stay in the ring
 *   mixed      everything, at random: multi-block writes, unaligned writes,
 *              flushes, discards, reopens, explicit applies; batching 1..8
 *   wide       a 32 GiB disk of 64 MiB blocks written one block after the
 *              other: the BAT fills page after page, sector-bitmap entries
 *              sit between its payload entries, file offsets pass 4 GiB
 *   churn      three hot blocks written, discarded (whole and partial) and
 *              rewritten with a flush only every 24-64 operations: sectors
 *              collect long runs of unacknowledged values, blocks are
 *              allocated again and again, the ring fills (apply every 8)
 *   ring       no batch limit on a 9 GiB disk: about 90 one- and two-page
 *              entries wait until the writer's 3/4-of-the-ring rule applies
 *              them (more than 16 distinct BAT pages among them)
 *   split      a 33 GiB disk (a BAT of 67 pages): discarding the whole disk
 *              changes more pages than one entry holds, so one commit is
 *              written as two entries
 *   extend     the base image holds a pending log another writer left: its
 *              replay writes past the end of the file, zeroes a range across
 *              it (descriptors spilling into a second descriptor sector) and
 *              extends the file to LastFileOffset; then writes into the
 *              blocks the replay mapped
 *   partial    multi-block writes over allocated and unallocated blocks,
 *              each followed by writes into the same blocks: under the
 *              fault sweep, writes after one that failed part-way
 *   trim       sessions that close with only partial discards pending (zero
 *              fills in place, made durable by the close); a 1 GiB + 1.5 MiB
 *              disk whose short last block is discarded whole
 *   keep       an image with LeaveBlockAllocated set: a whole-block discard
 *              zero-fills the block in place and later writes reuse it
 * Every write carries self-describing data (sdata.h) with a unique id.
 */
#ifndef HARNESS_WORKLOAD_H
#define HARNESS_WORKLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "harness/trace.h"
#include "vhdx/bdev.h"

struct workload_params {
    char scenario[32];        /* a registered scenario (workload_scenario_name) */
    uint64_t seed;            /* every random choice derives from it */
    uint64_t virtual_size;    /* bytes (0: the scenario's, 1 GiB unless the registry says otherwise) */
    uint32_t block_size;      /* bytes (0: the scenario's, 1 MiB unless the registry says otherwise) */
    uint32_t logical_sector;  /* 512 or 4096 (0: by scenario and seed parity, see above) */
    uint32_t physical_sector; /* 512 or 4096 (default 4096) */
    uint32_t log_size;        /* bytes (default 1 MiB) */
    uint32_t ops;             /* workload operations (0: the scenario's default) */
    uint32_t apply_every;     /* engine batching (0: the scenario's choice) */
};

struct vop {
    enum vop_kind kind; /* write, flush, discard, reopen, apply */
    uint64_t voff;      /* virtual offset (512-aligned) */
    uint64_t vlen;      /* virtual length (512 multiple) */
    uint32_t id;        /* write id (writes), 0 otherwise */
};

struct workload {
    struct workload_params p; /* as resolved (defaults filled in) */
    struct vop *ops;          /* the operations, in order */
    size_t n;
};

/* The scenario registry (workload.c): the i-th scenario's name and one-line
 * description (NULL past the end), whether a name is known, and every name
 * joined by sep (for messages and --help). */
const char *workload_scenario_name(size_t i);
const char *workload_scenario_about(size_t i);
int workload_scenario_known(const char *name);
/* How many operations a fault sweep runs of this scenario by default: short
 * (every call of the run is failed once, kind by kind), longer where the
 * scenario's point needs length (churn: sectors collecting many values). */
uint32_t workload_scenario_fault_ops(const char *name);
void workload_scenario_names(char *out, size_t len, const char *sep);

/* Fills defaults (0 fields) and checks values; returns 0 or -EINVAL with a
 * message in err. */
int workload_params_resolve(struct workload_params *p, char *err, size_t errlen);
/* Sector sizes the subjects can handle, before workload_params_resolve:
 * where the seed would choose (0 fields), a writer that does not create
 * 4096-byte logical sectors (subject_ops.sectors_4k) gets 512 logical and
 * physical, a reader that does not open them gets 512 logical (its
 * physical sector stays the writer's choice).  Values the user gave are
 * kept (the subject then refuses them with its own message). */
struct subject_ops;
void workload_params_fit(struct workload_params *p, const struct subject_ops *writer,
                         const struct subject_ops *reader);
/* Generates the operation list from p (resolved). */
int workload_generate(const struct workload_params *p, struct workload *w);
void workload_free(struct workload *w);

/* Creates the image and prepares it as the scenario asks (extend: a
 * pending log; keep: LeaveBlockAllocated), which becomes the trace's base,
 * then runs the operations on the engine over a recording simdisk into t
 * (initialised by the caller).  Records the parameters as trace metadata.  Returns 0, or
 * the subject's negative errno of an operation that failed (a workload on a
 * healthy disk never fails; that is itself a bug). */
int workload_run(const struct workload *w, struct trace *t, char *err, size_t errlen);

struct subject_ops;
struct subject_handle;

/* What happened to a session's handle (workload_run_opts.on_handle). */
enum workload_session {
    WL_SESSION_OPENED = 1,    /* h is the new session's handle */
    WL_SESSION_CLOSED = 2,    /* h was closed with result rc and is freed (an identity only) */
    WL_SESSION_ABANDONED = 3, /* h is about to be freed without I/O */
};

/* Options of workload_run_ex (fault injection, another subject). */
struct workload_run_opts {
    const struct subject_ops *subject; /* the implementation under test (NULL: libvhdx) */
    /* Called after every open, close and abandon of a session (may be NULL):
     * the fault runs watch the live handle through it. */
    void (*on_handle)(void *ctx, struct subject_handle *h, enum workload_session ev, int rc);
    int continue_on_error; /* record a failed op (E record with its rc) and go on; after a failed
                            * open every later op first tries to open again */
    /* Called before each workload op (index into w->ops, or -1 for the first
     * open, -2 for the final close) with the recording disk; may arm faults. */
    void (*before_op)(void *ctx, long op, struct bdev *dev);
    /* Called after each op with its result. */
    void (*after_op)(void *ctx, long op, int rc);
    void *ctx;
};
/* workload_run with options.  With continue_on_error it returns 0 unless
 * the harness itself failed; failures are in the trace's E records. */
int workload_run_ex(const struct workload *w, struct trace *t, const struct workload_run_opts *o, char *err,
                    size_t errlen);

/* Rebuilds the workload recorded in a trace's metadata and B records
 * (used to shrink a failing workload).  0, or a negative errno with err
 * set and nothing left to free in w. */
int workload_from_trace(const struct trace *t, struct workload *w, char *err, size_t errlen);

#endif /* HARNESS_WORKLOAD_H */
