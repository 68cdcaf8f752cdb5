/*
 * fuzz_trace_load - PROPERTY: the harness's own inputs, traces and
 * reproducers, get an error message or a sound trace, never a crash.
 *
 * Every tool that takes a .pctrace (pcsweep info/sweep/export/repro,
 * pcfaults repro, powercut repro/diff/sweep) parses it with trace_parse()
 * and, for a reproducer, reads its crash choice, its workload and its fault
 * plan.  A damaged or hostile file must get an error message, never a crash
 * or an unbounded allocation.
 *
 * Input: the bytes of a trace file.  They are parsed twice: as they are
 * (the magic, version, trailer and checksum checks) and with the trailer's
 * length and CRC-32C recomputed over the body (so a mutation reaches the
 * records behind the checksum).  Properties, for each parse:
 *   - a failure comes with a message;
 *   - a parsed trace is within the format's promises: every operation has
 *     a known kind, write data lies in the trace, a mark names an interned
 *     name, the base map holds no sector past the base size;
 *   - the reproducer loaders return a value or an error message:
 *     crash_choice_from_trace (the crash state), workload_from_trace (the
 *     workload of --rerun and --minimize), fault_plan_parse of fault.plan;
 *   - for a small trace with a crash choice, rebuilding and judging that
 *     state (what `pcsweep repro` does) returns normally;
 *   - serializing a parsed trace and parsing it again gives the same trace
 *     (operations, metadata, choice, base).
 * ASan and UBSan (presets fuzz, asan) catch memory and arithmetic errors on
 * the way.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faults/plan.h"
#include "fuzz_common.h"
#include "fuzz_target.h"
#include "harness/sweep.h"
#include "harness/trace.h"
#include "harness/workload.h"
#include "vhdx/crc32c.h"
#include "vhdx/format.h"

#define TRAILER 20u              /* u64 body length, u32 CRC-32C, "PCEND\0\0\0" */
#define REBUILD_MAX_OPS 4096u    /* rebuild the crash state of small traces only */
#define REBUILD_MAX_BASE (64u << 20)

static int kind_known(uint8_t k)
{
    return k == TR_WRITE || k == TR_TRUNCATE || k == TR_FLUSH || k == TR_MARK || k == TR_VBEGIN || k == TR_VEND;
}

static void check_parsed(const struct trace *t)
{
    uint64_t written = 0;
    for (size_t i = 0; i < t->n_ops; i++) {
        const struct trace_op *op = &t->ops[i];
        FUZZ_CHECK(kind_known(op->kind), "operation %zu has kind %u", i, op->kind);
        if (op->kind == TR_WRITE) {
            FUZZ_CHECK(op->len == 0 || op->data != NULL, "write %zu of %u bytes has no data", i, op->len);
            if (op->len) {
                /* touch both ends: ASan reports data outside the trace's arena */
                volatile uint8_t a = op->data[0], b = op->data[op->len - 1];
                (void)a;
                (void)b;
            }
            written += op->len;
        } else if (op->kind == TR_MARK) {
            FUZZ_CHECK(op->name < t->n_names, "mark %zu names %u of %zu names", i, op->name, t->n_names);
            FUZZ_CHECK(t->names[op->name] != NULL, "mark %zu names a missing name", i);
        }
    }
    FUZZ_CHECK(written == t->bytes_written, "writes hold %llu bytes, the trace says %llu",
               (unsigned long long)written, (unsigned long long)t->bytes_written);
    for (size_t i = 0; i < t->n_meta; i++)
        FUZZ_CHECK(t->meta[i].key && t->meta[i].value, "metadata pair %zu is incomplete", i);
    for (size_t i = 0; i < t->n_choice; i++)
        FUZZ_CHECK(t->choice[i].key && t->choice[i].value, "choice pair %zu is incomplete", i);
}

static void check_same(const struct trace *a, const struct trace *b)
{
    FUZZ_CHECK(a->flags == b->flags && a->seed == b->seed && a->base_size == b->base_size, "header differs");
    FUZZ_CHECK(a->n_ops == b->n_ops, "%zu operations became %zu", a->n_ops, b->n_ops);
    FUZZ_CHECK(a->n_meta == b->n_meta && a->n_choice == b->n_choice, "metadata or choice count differs");
    FUZZ_CHECK(a->base.count == b->base.count, "base sectors %zu became %zu", a->base.count, b->base.count);
    for (size_t i = 0; i < a->n_ops; i++) {
        const struct trace_op *x = &a->ops[i], *y = &b->ops[i];
        FUZZ_CHECK(x->kind == y->kind && x->off == y->off && x->len == y->len, "operation %zu differs", i);
        if (x->kind == TR_WRITE && x->len)
            FUZZ_CHECK(memcmp(x->data, y->data, x->len) == 0, "write %zu's data differs", i);
        if (x->kind == TR_MARK)
            FUZZ_CHECK(strcmp(a->names[x->name], b->names[y->name]) == 0, "mark %zu's name differs", i);
        if (x->kind == TR_VBEGIN)
            FUZZ_CHECK(x->vkind == y->vkind && x->vlen == y->vlen && x->vop == y->vop && x->vid == y->vid,
                       "workload operation %zu differs", i);
        if (x->kind == TR_VEND)
            FUZZ_CHECK(x->vop == y->vop && x->rc == y->rc, "workload end %zu differs", i);
    }
    for (size_t i = 0; i < a->n_meta; i++)
        FUZZ_CHECK(strcmp(trace_get_meta(b, a->meta[i].key) ? trace_get_meta(b, a->meta[i].key) : "",
                          a->meta[i].value) == 0, "metadata %s differs", a->meta[i].key);
}

/* What the tools do with a loaded trace: the reproducer's parts. */
static void load_parts(const struct trace *t)
{
    char err[512];
    struct crash_choice c;
    err[0] = '\0';
    int crc = crash_choice_from_trace(t, &c, err, sizeof err);
    FUZZ_CHECK(crc == 0 || err[0], "crash_choice_from_trace failed without a message");
    struct workload w;
    err[0] = '\0';
    if (workload_from_trace(t, &w, err, sizeof err) == 0)
        workload_free(&w);
    else
        FUZZ_CHECK(err[0], "workload_from_trace failed without a message");
    const char *plan = trace_get_meta(t, "fault.plan");
    if (plan) {
        struct fault_plan p;
        err[0] = '\0';
        if (fault_plan_parse(plan, &p, err, sizeof err) != 0)
            FUZZ_CHECK(err[0], "fault_plan_parse failed without a message");
    }
    /* pcsweep repro: rebuild and judge the saved state (bounded: small traces) */
    if (crc == 0 && t->n_ops <= REBUILD_MAX_OPS && t->base_size <= REBUILD_MAX_BASE) {
        struct sweep_config sc;
        sweep_config_defaults(&sc);
        sc.quiet = 1;
        struct verdict v;
        (void)sweep_eval_choice(t, &sc, &c, &v); /* a verdict or an error: both are fine */
    }
}

static void one(const uint8_t *data, size_t size)
{
    struct trace t;
    char err[512];
    err[0] = '\0';
    if (trace_parse(&t, data, size, err, sizeof err) != 0) {
        FUZZ_CHECK(err[0], "trace_parse failed without a message");
        return;
    }
    check_parsed(&t);
    load_parts(&t);
    uint8_t *buf = NULL;
    size_t len = 0;
    FUZZ_CHECK(trace_serialize(&t, &buf, &len) == 0, "a parsed trace does not serialize");
    struct trace t2;
    FUZZ_CHECK(trace_parse(&t2, buf, len, err, sizeof err) == 0, "a serialized trace does not parse: %s", err);
    check_same(&t, &t2);
    trace_free(&t2);
    free(buf);
    trace_free(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one(data, size);
    /* Again with the trailer made right, so mutations behind the checksum
     * reach the record parser. */
    if (size < 64 + TRAILER)
        return 0;
    uint8_t *copy = malloc(size);
    FUZZ_CHECK(copy != NULL, "out of memory");
    memcpy(copy, data, size);
    size_t body = size - TRAILER;
    vhdx_put64(copy + body, body);
    vhdx_put32(copy + body + 8, crc32c(0, copy, body));
    memcpy(copy + body + 12, "PCEND\0\0\0", 8);
    one(copy, size);
    free(copy);
    return 0;
}
