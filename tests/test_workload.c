/*
 * test_workload.c - the scenario registry, and the engine paths the newer
 * scenarios exist for, read from the traces their workloads make (no
 * coverage build needed, so a change that stops a scenario from reaching
 * its path fails here):
 *  - every scenario: two consecutive seeds give both logical sector sizes;
 *    generation is a pure function of the parameters;
 *  - ring: a batch of at least 64 entries is applied inside a write (the
 *    3/4-of-the-ring rule: the scenario's batching has no count limit);
 *  - split: one discard writes more than one log entry;
 *  - extend: before the first open's replay is done, a write lands past the
 *    end of the base file and the file is extended past it;
 *  - partial: one write allocates several blocks (several extensions);
 *  - trim: a session closes with only partial discards since its last
 *    flush, and they zero-filled sectors without any log entry;
 *  - keep: a whole-block discard zero-fills without a log entry, and a later
 *    write into that block neither extends the file nor logs.
 */
#include "harness/trace.h"
#include "harness/workload.h"
#include "testutil.h"

static int run_scenario(const char *name, uint64_t seed, struct workload_params *p, struct trace *t)
{
    memset(p, 0, sizeof *p);
    snprintf(p->scenario, sizeof p->scenario, "%s", name);
    p->seed = seed;
    char err[256];
    int rc = workload_params_resolve(p, err, sizeof err);
    struct workload w;
    if (rc == 0)
        rc = workload_generate(p, &w);
    trace_init(t);
    if (rc == 0) {
        rc = workload_run(&w, t, err, sizeof err);
        workload_free(&w);
    }
    if (rc != 0)
        fprintf(stderr, "scenario %s seed %llu: %s\n", name, (unsigned long long)seed, err);
    return rc;
}

static int is_mark(const struct trace *t, const struct trace_op *op, const char *name)
{
    return op->kind == TR_MARK && op->name < t->n_names && !strcmp(t->names[op->name], name);
}

static void test_registry(void)
{
    for (size_t i = 0; workload_scenario_name(i); i++) {
        const char *name = workload_scenario_name(i);
        struct workload_params a, b;
        memset(&a, 0, sizeof a);
        snprintf(a.scenario, sizeof a.scenario, "%s", name);
        b = a;
        a.seed = 1;
        b.seed = 2;
        char err[256];
        CHECK_OK(workload_params_resolve(&a, err, sizeof err));
        CHECK_OK(workload_params_resolve(&b, err, sizeof err));
        CHECK(a.logical_sector + b.logical_sector == 512 + 4096);
        CHECK(workload_scenario_about(i) != NULL && workload_scenario_fault_ops(name) > 0);
        a.ops = b.ops = 60;
        b.seed = 1;
        b.logical_sector = a.logical_sector;
        struct workload wa, wb;
        CHECK_OK(workload_generate(&a, &wa));
        CHECK_OK(workload_generate(&b, &wb));
        int same = wa.n == wb.n && wa.n >= 60;
        for (size_t k = 0; same && k < wa.n; k++)
            same = wa.ops[k].kind == wb.ops[k].kind && wa.ops[k].voff == wb.ops[k].voff &&
                   wa.ops[k].vlen == wb.ops[k].vlen && wa.ops[k].id == wb.ops[k].id;
        CHECK(same);
        workload_free(&wa);
        workload_free(&wb);
    }
}

static void test_ring(void)
{
    struct workload_params p;
    struct trace t;
    CHECK_OK(run_scenario("ring", 1, &p, &t));
    unsigned since = 0, best = 0, vkind = 0;
    for (size_t i = 0; i < t.n_ops; i++) {
        const struct trace_op *op = &t.ops[i];
        if (op->kind == TR_VBEGIN)
            vkind = op->vkind;
        else if (is_mark(&t, op, "log.entry"))
            since++;
        else if (is_mark(&t, op, "log.applied")) {
            if (vkind == VOP_WRITE || vkind == VOP_DISCARD)
                best = since > best ? since : best;
            since = 0;
        }
    }
    CHECK(best >= 64);
    trace_free(&t);
}

/* The most log entries (or truncates) inside one workload op of kind k. */
static unsigned most_in_op(const struct trace *t, unsigned k, const char *mark)
{
    unsigned cur = 0, best = 0, vkind = 0;
    for (size_t i = 0; i < t->n_ops; i++) {
        const struct trace_op *op = &t->ops[i];
        if (op->kind == TR_VBEGIN) {
            vkind = op->vkind;
            cur = 0;
        } else if (vkind == k && (mark ? is_mark(t, op, mark) : op->kind == TR_TRUNCATE)) {
            best = ++cur > best ? cur : best;
        }
    }
    return best;
}

static void test_split_partial(void)
{
    struct workload_params p;
    struct trace t;
    CHECK_OK(run_scenario("split", 1, &p, &t));
    CHECK(most_in_op(&t, VOP_DISCARD, "log.entry") >= 2);
    trace_free(&t);
    CHECK_OK(run_scenario("partial", 1, &p, &t));
    CHECK(most_in_op(&t, VOP_WRITE, NULL) >= 2);
    trace_free(&t);
}

static void test_extend(void)
{
    struct workload_params p;
    struct trace t;
    CHECK_OK(run_scenario("extend", 1, &p, &t));
    int begun = 0, done = 0, wrote_past = 0;
    uint64_t grown = 0;
    for (size_t i = 0; i < t.n_ops && !done; i++) {
        const struct trace_op *op = &t.ops[i];
        begun |= is_mark(&t, op, "replay.begin");
        done |= is_mark(&t, op, "replay.done");
        if (begun && op->kind == TR_WRITE && op->off >= t.base_size)
            wrote_past = 1;
        if (begun && op->kind == TR_TRUNCATE && op->off > grown)
            grown = op->off;
    }
    CHECK(done && wrote_past);
    CHECK(grown > t.base_size && grown % (1u << 20) == 0);
    trace_free(&t);
}

static void test_trim(void)
{
    struct workload_params p;
    struct trace t;
    CHECK_OK(run_scenario("trim", 1, &p, &t));
    /* Per session tail (since the last acknowledged flush): only discards,
     * zero-fill writes, no log entry; then a reopen. */
    int only_discards = 1, any = 0;
    unsigned fills = 0, entries = 0, found = 0, vkind = 0;
    for (size_t i = 0; i < t.n_ops; i++) {
        const struct trace_op *op = &t.ops[i];
        if (is_mark(&t, op, "workload.synced")) {
            only_discards = 1;
            any = 0;
            fills = entries = 0;
        } else if (op->kind == TR_VBEGIN) {
            vkind = op->vkind;
            if (vkind == VOP_REOPEN)
                found += only_discards && any && fills > 0 && entries == 0;
            else if (vkind == VOP_DISCARD)
                any = 1;
            else
                only_discards = 0;
        } else if (vkind == VOP_DISCARD && op->kind == TR_WRITE) {
            fills++;
        } else if (vkind == VOP_DISCARD && is_mark(&t, op, "log.entry")) {
            entries++;
        }
    }
    CHECK(found >= 1);
    trace_free(&t);
}

static void test_keep(void)
{
    struct workload_params p;
    struct trace t;
    CHECK_OK(run_scenario("keep", 1, &p, &t));
    enum { MAXB = 64 };
    uint64_t zeroed[MAXB]; /* blocks a whole-block discard zero-filled without the log */
    unsigned nz = 0, reused = 0;
    for (size_t i = 0; i < t.n_ops;) {
        const struct trace_op *b = &t.ops[i];
        if (b->kind != TR_VBEGIN) {
            i++;
            continue;
        }
        unsigned writes = 0, entries = 0, truncs = 0;
        size_t j = i + 1;
        for (; j < t.n_ops && t.ops[j].kind != TR_VBEGIN; j++) {
            writes += t.ops[j].kind == TR_WRITE;
            truncs += t.ops[j].kind == TR_TRUNCATE;
            entries += is_mark(&t, &t.ops[j], "log.entry");
        }
        const uint64_t bs = p.block_size, blk = b->off / bs;
        if (b->vkind == VOP_DISCARD && b->off % bs == 0 && b->vlen == bs && writes && !entries && nz < MAXB)
            zeroed[nz++] = blk;
        if (b->vkind == VOP_WRITE && !truncs && !entries && (b->off + b->vlen - 1) / bs == blk)
            for (unsigned k = 0; k < nz; k++)
                reused += zeroed[k] == blk;
        i = j;
    }
    CHECK(nz >= 1 && reused >= 1);
    trace_free(&t);
}

int main(void)
{
    test_registry();
    test_ring();
    test_split_partial();
    test_extend();
    test_trim();
    test_keep();
    return test_summary("workload");
}
