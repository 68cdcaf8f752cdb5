/*
 * protocol.h - the protocol checker: proves the VHDX log's ordering rules on
 * the operations of a trace, without building a single crash state (the
 * Silhouette approach: check the write-ahead protocol itself, spend the
 * crash enumeration where the protocol does not protect).
 *
 * It walks the trace once and keeps two views of the device, the volatile
 * one (what the writer reads) and the durable one (what a flush has made
 * stable), with what matters decoded by the independent reference
 * (harness/ref): the current header of each view, the layout (log, region
 * tables, metadata and BAT regions, block geometry), the ring, every log
 * entry as it becomes complete (validity by the reference's rule), which
 * entries a flush made durable, the active sequence the reference finds in
 * the durable ring (with its replay: the bytes a crash now would restore),
 * and per log the pages that entries described and that are not yet
 * durably in their final place.  Each rule is an invariant of the registry
 * (invariants.h, class "protocol"); docs/protocol.md states each one, its
 * MS-VHDX section, what it proves and what it cannot see.
 *
 * The trace may be ours (workload_run: the base is a created image) or
 * recorded from another program (TRACE_F_EXTERNAL, no workload records).
 * A trace whose base is not yet a VHDX file is followed from the first
 * flush that makes a file identifier durable (creation is not judged).
 *
 * Guarantees: never prints, never aborts; bounded on hostile traces (logs
 * longer than 256 MiB are not followed, entries are validated once per
 * write that touches them, every count from the trace is checked before it
 * drives an allocation, and a work limit stops the walk with the report
 * marked incomplete); reports at most max_per_invariant violations of each
 * invariant in detail and counts all of them.
 */
#ifndef HARNESS_PROTOCOL_H
#define HARNESS_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#include "harness/invariants.h"
#include "harness/trace.h"

#define PROTOCOL_NO_OP INT64_MIN /* an unused slot of protocol_violation.after */
#define PROTOCOL_BASE_OP (-1)    /* "already in the base image" */
#define PROTOCOL_AFTER_MAX 4

struct protocol_violation {
    enum invariant inv;                    /* an INV_PROTO_* invariant */
    int64_t op;                            /* the offending operation (trace index) */
    int64_t after[PROTOCOL_AFTER_MAX];     /* the operations it should have followed, or shares an epoch
                                            * with (PROTOCOL_BASE_OP: the base; PROTOCOL_NO_OP: unused) */
    uint64_t offset, length;               /* the file bytes involved */
    char detail[384];                      /* one sentence for a storage engineer */
};

struct protocol_opts {
    uint32_t max_per_invariant; /* violations kept in detail per invariant (default 8) */
    uint64_t work_limit;        /* steps before the walk stops, report incomplete (default 4e9) */
};

struct protocol_stats {
    uint64_t ops;              /* operations walked */
    uint64_t writes, flushes;  /* of which writes and flushes */
    uint64_t entries;          /* log entries that became complete (valid) */
    uint64_t durable_entries;  /* of which a flush made durable */
    uint64_t logs;             /* distinct LogGuids seen in entries */
    uint64_t final_writes;     /* writes into final-place metadata (region tables, metadata, BAT) */
    uint64_t header_writes;    /* writes into a header copy */
    uint64_t searches;         /* reference log searches run (durable ring, new LogGuids) */
};

struct protocol_report {
    struct protocol_violation *v; /* the violations kept, in trace order per invariant */
    size_t n, cap;
    uint64_t count[INV_COUNT];    /* every violation, by invariant */
    uint64_t total;               /* sum of count */
    struct protocol_stats st;
    int judged;                   /* 1: the trace holds a VHDX image the checker followed */
    int incomplete;               /* 1: the walk stopped early or could not follow part (see note) */
    int64_t created_at;           /* the flush that made the file a VHDX (PROTOCOL_BASE_OP: the base) */
    char note[256];               /* why not judged / incomplete; what was not followed */
};

void protocol_opts_defaults(struct protocol_opts *o);

/*
 * Checks the trace.  r is initialised here (free with protocol_report_free
 * in every case).  Returns 0 with the report filled (r->total violations;
 * r->judged 0 when the trace never holds a VHDX image, with r->note saying
 * why), or -ENOMEM.  o may be NULL (defaults).
 */
int protocol_check(const struct trace *t, const struct protocol_opts *o, struct protocol_report *r);
void protocol_report_free(struct protocol_report *r);

#endif /* HARNESS_PROTOCOL_H */
