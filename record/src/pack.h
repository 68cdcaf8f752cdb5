/*
 * pack.h - turning a recorder spool (spool.h) plus the image as it was
 * before the run (the base) into a harness trace (harness/trace.h).
 *
 * The trace carries TRACE_F_EXTERNAL, the base image, and the recorded
 * operations in completion order, translated as follows:
 *
 *   W            -> W (and F right after it when the descriptor was O_SYNC)
 *   T            -> T
 *   I + D ok     -> F at the position of I (issue): writes that completed
 *                   while the flush ran stay pending after it
 *   I + D failed -> mark "flush.failed" (errno), not a barrier
 *   I, no D      -> mark "flush.unfinished" (the process died inside it)
 *   A (fallocate) -> T when the file grew; W of zeros over the punched or
 *                   zeroed range that lay inside the old size; mark
 *                   "fallocate" (mode)
 *   S            -> mark "sync_file_range" (length): not a barrier
 *   M            -> mark
 *   X            -> metadata record.stopped (the trace is a prefix of the run)
 *   P            -> metadata record.process.N
 *
 * A spool whose last record is cut short (the process was killed while
 * appending) is accepted up to its last whole record and the trace says
 * so (record.spool_truncated).  Any other damage is an error.  With a final
 * image, the trace's end state (base + every operation) is compared with
 * it sector by sector: a difference means the recorder missed a write
 * (record.verified = no, with the first differing offset).
 */
#ifndef PCRECORD_PACK_H
#define PCRECORD_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "harness/trace.h"

struct pack_options {
    const char *spool;       /* spool path (required) */
    const char *base;        /* image before the run; NULL = the file did not exist (empty base) */
    const char *final_image; /* image after the run, to verify against (may be NULL) */
    const char *file;        /* the recorded path, for metadata (may be NULL) */
    const char *const *meta; /* extra "key=value" metadata, NULL-terminated (may be NULL) */
};

struct pack_result {
    uint64_t records;        /* spool records read */
    uint64_t writes, truncates, flushes, marks; /* trace operations emitted by kind */
    uint64_t bytes_written;  /* sum of W lengths */
    uint32_t processes;      /* P records */
    uint32_t threads;        /* distinct (pid, tid) that recorded something */
    int stopped;             /* the recorder stopped early (reason in the trace metadata) */
    int spool_truncated;     /* the last spool record was cut short */
    int verified;            /* 1 end state equals final image, 0 differs, -1 not checked */
    uint64_t first_diff;     /* offset of the first difference when verified == 0 */
    uint64_t diff_sectors;   /* sectors that differ */
};

/* Builds the trace in *t (initialised here).  Returns 0, or -1 with a
 * message in err (then *t is empty). */
int pack_spool(const struct pack_options *o, struct trace *t, struct pack_result *r, char *err, size_t errlen);

#endif /* PCRECORD_PACK_H */
