/*
 * epochs.h - the epochs of a trace as the sweep counts them: the one place
 * that derives them.  The sweep's walk (sweep.c), pcsweep, pcfaults and the
 * crash-schedule fuzz target all read this index.
 *
 * An epoch ends at each flush (F); the last one ends with the trace, so a
 * trace with F flushes has F + 1 epochs.  An epoch's pending list is its
 * writes and truncates (W, T): what a power cut before its flush may or may
 * not have persisted.  A "fault.drop_pending" mark (a failed flush that
 * dropped the device's pending writes: the flush-lose fault, simdisk.h)
 * empties the list: only the W/T after the epoch's last such mark are
 * pending, those before it never reach the durable image.
 *
 *   op       0  1  2     3  4  5   6  7   8  9
 *            W  W  M drop W  T  F   W  F   W  W
 *   epoch    0 ................ 5   1 .7   2 ...  (end: 5, 7, 10 = n_ops)
 *   pending           first=3 {3, 4}   {6}    {8, 9}
 *
 * Guarantees: one pass over the trace; the index only reads the trace (it
 * holds op indices, no pointers into it); epoch e's states are cut at
 * e[e].end, which is the flush's op index or n_ops.
 */
#ifndef HARNESS_EPOCHS_H
#define HARNESS_EPOCHS_H

#include <stddef.h>
#include <stdint.h>

#include "harness/trace.h"

struct trace_epoch {
    size_t start;     /* op index of the epoch's first op (past the previous flush; 0) */
    size_t end;       /* op index of the flush that ends it; n_ops for the last epoch */
    size_t first;     /* first op of its pending list: start, or past its last drop mark */
    uint32_t pending; /* writes and truncates in [first, end) */
    uint64_t size;    /* durable file size at the start: the base size with every
                         earlier epoch's pending list applied */
};

struct trace_epochs {
    struct trace_epoch *e; /* n entries, in trace order */
    uint32_t n;            /* flushes + 1 */
};

/* A write or a truncate: what a pending list holds. */
static inline int trace_op_pending(const struct trace_op *op)
{
    return op->kind == TR_WRITE || op->kind == TR_TRUNCATE;
}

/* Builds the index of t.  Returns 0, or -ENOMEM with *ep empty. */
int trace_epochs_build(const struct trace *t, struct trace_epochs *ep);
void trace_epochs_free(struct trace_epochs *ep);

/* The k-th op (0-based) of epoch e's pending list, NULL when k >= pending. */
const struct trace_op *trace_epoch_pending_op(const struct trace *t, const struct trace_epoch *e, uint32_t k);

/* Where the ops before trace position pos end (a cut at pos): *epoch, and
 * *index, how many of that epoch's pending ops lie before pos (counted after
 * the last drop mark before pos).  pos past the end counts as n_ops. */
void trace_epochs_locate(const struct trace *t, const struct trace_epochs *ep, uint64_t pos, uint32_t *epoch,
                         uint32_t *index);

#endif /* HARNESS_EPOCHS_H */
