/*
 * epochs.c - the epoch index of a trace (epochs.h).
 *
 * Guarantees: the drop rule ("fault.drop_pending" empties the pending list)
 * is applied here and nowhere else; the durable size follows the rule of
 * sweep.c's advance() (a truncate sets it, a write past the end grows it).
 */
#include "harness/epochs.h"

#include <errno.h>
#include <stdlib.h>

static int is_drop(const struct trace_op *op, int drop)
{
    return op->kind == TR_MARK && drop >= 0 && op->name == (uint16_t)drop;
}

int trace_epochs_build(const struct trace *t, struct trace_epochs *ep)
{
    uint32_t flushes = 0;
    for (size_t i = 0; i < t->n_ops; i++)
        flushes += t->ops[i].kind == TR_FLUSH;
    ep->n = flushes + 1;
    ep->e = calloc(ep->n, sizeof *ep->e);
    if (!ep->e) {
        ep->n = 0;
        return -ENOMEM;
    }
    const int drop = trace_find_name(t, "fault.drop_pending"); /* -1: no fault dropped anything */
    uint64_t size = t->base_size;
    struct trace_epoch *x = &ep->e[0];
    x->size = size;
    for (size_t i = 0; i <= t->n_ops; i++) {
        if (i < t->n_ops && t->ops[i].kind != TR_FLUSH) {
            if (trace_op_pending(&t->ops[i]))
                x->pending++;
            else if (is_drop(&t->ops[i], drop)) {
                x->first = i + 1;
                x->pending = 0;
            }
            continue;
        }
        x->end = i; /* the flush, or the end of the trace */
        for (size_t k = x->first; k < x->end; k++) {
            const struct trace_op *op = &t->ops[k];
            if (op->kind == TR_TRUNCATE)
                size = op->off;
            else if (op->kind == TR_WRITE && op->off + op->len > size)
                size = op->off + op->len;
        }
        if (i == t->n_ops)
            break;
        x++;
        x->start = x->first = i + 1;
        x->size = size;
    }
    return 0;
}

void trace_epochs_free(struct trace_epochs *ep)
{
    free(ep->e);
    ep->e = NULL;
    ep->n = 0;
}

const struct trace_op *trace_epoch_pending_op(const struct trace *t, const struct trace_epoch *e, uint32_t k)
{
    for (size_t i = e->first; i < e->end; i++)
        if (trace_op_pending(&t->ops[i]) && k-- == 0)
            return &t->ops[i];
    return NULL;
}

void trace_epochs_locate(const struct trace *t, const struct trace_epochs *ep, uint64_t pos, uint32_t *epoch,
                         uint32_t *index)
{
    if (pos > t->n_ops)
        pos = t->n_ops;
    /* the last epoch that starts at or before pos */
    uint32_t lo = 0, hi = ep->n;
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (ep->e[mid].start <= pos)
            lo = mid;
        else
            hi = mid;
    }
    const int drop = trace_find_name(t, "fault.drop_pending");
    uint32_t n = 0;
    for (size_t i = ep->e[lo].start; i < pos; i++) {
        if (trace_op_pending(&t->ops[i]))
            n++;
        else if (is_drop(&t->ops[i], drop))
            n = 0;
    }
    *epoch = lo;
    *index = n;
}
