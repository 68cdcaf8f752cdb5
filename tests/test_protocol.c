/*
 * test_protocol.c - the protocol checker (harness/protocol.h).
 *
 *  - the clean engine: every scenario's workload trace (three seeds) breaks
 *    no rule, and the checker really followed it (entries, final-place
 *    writes, searches);
 *  - each rule, broken on purpose: a clean trace is edited (a flush
 *    dropped, operations moved, an entry's Tail or file offsets rewritten
 *    with a fresh checksum, a write inserted) and the checker must name the
 *    invariant, the offending operation and the operation it should have
 *    followed, as indices of the edited trace;
 *  - hostile traces (garbage in writes, odd offsets, shrinks, a base that is
 *    not a VHDX) end with a report, never a crash (run under ASan/UBSan).
 */
#include "harness/protocol.h"
#include "harness/simdisk.h"
#include "harness/workload.h"
#include "vhdx/vhdx.h"
#include "ref/ref.h"
#include "testutil.h"

#define KIB64 (UINT64_C(64) << 10)

static void make_trace(struct trace *t, const char *scenario, uint64_t seed, uint32_t ops)
{
    struct workload_params p;
    memset(&p, 0, sizeof p);
    snprintf(p.scenario, sizeof p.scenario, "%s", scenario);
    p.seed = seed;
    p.ops = ops;
    char err[256];
    CHECK_OK(workload_params_resolve(&p, err, sizeof err));
    struct workload w;
    CHECK_OK(workload_generate(&p, &w));
    trace_init(t);
    CHECK_OK(workload_run(&w, t, err, sizeof err));
    workload_free(&w);
}

/* ---- the layout of a trace's base, read by the reference ------------------------ */
struct lay {
    uint64_t log_off, log_len, bat_off, bat_len;
};

static int base_read(void *ctx, void *buf, size_t len, uint64_t off)
{
    const struct trace *t = ctx;
    uint8_t *p = buf;
    for (size_t k = 0; k < len;) {
        const uint64_t s = (off + k) / SECTOR, in = (off + k) % SECTOR;
        const size_t n = SECTOR - in < len - k ? SECTOR - in : len - k;
        const uint8_t *v = secmap_get(&t->base, s);
        if (v)
            memcpy(p + k, v + in, n);
        else
            memset(p + k, 0, n);
        k += n;
    }
    return 0;
}

static struct lay layout_of(const struct trace *t)
{
    struct ref_src src = {base_read, (void *)t, t->base_size, NULL, NULL};
    struct ref_image im;
    struct lay l = {0, 0, 0, 0};
    CHECK(ref_image_open(&im, &src) == 0 && im.status == REF_VALID);
    l.log_off = im.header[im.current].log_offset;
    l.log_len = im.header[im.current].log_length;
    l.bat_off = im.bat_offset;
    l.bat_len = im.bat_length;
    ref_image_free(&im);
    return l;
}

static int is_w(const struct trace *t, size_t i) { return i < t->n_ops && t->ops[i].kind == TR_WRITE; }
static int is_f(const struct trace *t, size_t i) { return i < t->n_ops && t->ops[i].kind == TR_FLUSH; }
static int is_ring(const struct trace *t, const struct lay *l, size_t i)
{
    return is_w(t, i) && t->ops[i].off >= l->log_off && t->ops[i].off < l->log_off + l->log_len;
}
static int is_bat(const struct trace *t, const struct lay *l, size_t i)
{
    return is_w(t, i) && t->ops[i].off >= l->bat_off && t->ops[i].off < l->bat_off + l->bat_len;
}
static int is_hdr(const struct trace *t, size_t i)
{
    return is_w(t, i) && (t->ops[i].off == KIB64 || t->ops[i].off == 2 * KIB64);
}
static int is_mark(const struct trace *t, size_t i, const char *name)
{
    return i < t->n_ops && t->ops[i].kind == TR_MARK && !strcmp(t->names[t->ops[i].name], name);
}
/* The next operation at or after i that is not a mark or workload record. */
static size_t next_io(const struct trace *t, size_t i)
{
    while (i < t->n_ops && (t->ops[i].kind == TR_MARK || t->ops[i].kind == TR_VBEGIN || t->ops[i].kind == TR_VEND))
        i++;
    return i;
}

/* ---- edited traces ------------------------------------------------------------------ */
/* A new operation order: src indices (>= 0) or inserted operations
 * (-(k+1): extra[k]); repl[i] replaces write i's bytes. */
struct edit {
    const struct trace *src;
    long *ix;
    size_t n;
    struct trace_op extra[4];
    size_t n_extra;
    const uint8_t **repl;
};

static void edit_init(struct edit *e, const struct trace *src)
{
    memset(e, 0, sizeof *e);
    e->src = src;
    e->n = src->n_ops;
    e->ix = calloc(src->n_ops + 8, sizeof *e->ix);
    e->repl = calloc(src->n_ops, sizeof *e->repl);
    for (size_t i = 0; i < src->n_ops; i++)
        e->ix[i] = (long)i;
}

static void edit_free(struct edit *e)
{
    free(e->ix);
    free(e->repl);
}

/* Position of src op i in the new order (-1 when dropped). */
static int64_t edit_pos(const struct edit *e, long i)
{
    for (size_t k = 0; k < e->n; k++)
        if (e->ix[k] == i)
            return (int64_t)k;
    return -1;
}

static void edit_drop(struct edit *e, long i)
{
    int64_t k = edit_pos(e, i);
    CHECK(k >= 0);
    if (k < 0)
        return;
    memmove(e->ix + k, e->ix + k + 1, (e->n - (size_t)k - 1) * sizeof *e->ix);
    e->n--;
}

/* Moves src op i to just after src op j. */
static void edit_move_after(struct edit *e, long i, long j)
{
    edit_drop(e, i);
    int64_t k = edit_pos(e, j);
    CHECK(k >= 0);
    memmove(e->ix + k + 2, e->ix + k + 1, (e->n - (size_t)k - 1) * sizeof *e->ix);
    e->ix[k + 1] = i;
    e->n++;
}

/* Inserts a write after src op j; returns its src-like id. */
static long edit_insert_write(struct edit *e, long j, uint64_t off, const uint8_t *data, uint32_t len)
{
    struct trace_op *o = &e->extra[e->n_extra++];
    memset(o, 0, sizeof *o);
    o->kind = TR_WRITE;
    o->off = off;
    o->len = len;
    o->data = data;
    const long id = -(long)e->n_extra;
    int64_t k = edit_pos(e, j);
    CHECK(k >= 0);
    memmove(e->ix + k + 2, e->ix + k + 1, (e->n - (size_t)k - 1) * sizeof *e->ix);
    e->ix[k + 1] = id;
    e->n++;
    return id;
}

static void edit_build(const struct edit *e, struct trace *d)
{
    const struct trace *s = e->src;
    trace_init(d);
    CHECK_OK(trace_set_base(d, &s->base, s->base_size));
    d->flags = s->flags;
    for (size_t k = 0; k < e->n; k++) {
        const struct trace_op *o = e->ix[k] >= 0 ? &s->ops[e->ix[k]] : &e->extra[-e->ix[k] - 1];
        switch (o->kind) {
        case TR_WRITE: {
            const uint8_t *data = e->ix[k] >= 0 && e->repl[e->ix[k]] ? e->repl[e->ix[k]] : o->data;
            CHECK_OK(trace_add_write(d, o->off, data, o->len, NULL));
            break;
        }
        case TR_TRUNCATE: CHECK_OK(trace_add_truncate(d, o->off)); break;
        case TR_FLUSH: CHECK_OK(trace_add_flush(d)); break;
        case TR_MARK: CHECK_OK(trace_add_mark(d, s->names[o->name], o->off)); break;
        case TR_VBEGIN: CHECK_OK(trace_add_vbegin(d, o->vop, o->vkind, o->off, o->vlen, o->vid)); break;
        case TR_VEND: CHECK_OK(trace_add_vend(d, o->vop, o->rc)); break;
        }
    }
}

/* Rewrites one entry (held whole in a write) with a new Tail or file
 * offsets and a fresh checksum (2.3.1.1). */
static uint8_t *entry_rewrite(const struct trace_op *o, long tail, uint64_t flushed, uint64_t last)
{
    uint8_t *b = malloc(o->len);
    memcpy(b, o->data, o->len);
    const uint32_t len = ref_le32(b + 8);
    CHECK(len <= o->len);
    if (tail >= 0)
        ref_put32(b + 12, (uint32_t)tail);
    if (flushed)
        ref_put64(b + 48, flushed);
    if (last)
        ref_put64(b + 56, last);
    ref_put32(b + 4, 0);
    ref_put32(b + 4, ref_crc32c(0, b, len));
    return b;
}

/* ---- judging ------------------------------------------------------------------------ */
static void run(const struct trace *t, struct protocol_report *r)
{
    CHECK_OK(protocol_check(t, NULL, r));
    CHECK(r->judged);
}

static void show(const char *what, const struct protocol_report *r)
{
    fprintf(stderr, "  %s: %llu violation(s)\n", what, (unsigned long long)r->total);
    for (size_t k = 0; k < r->n; k++)
        fprintf(stderr, "    %s op %lld after %lld: %s\n", invariant_name(r->v[k].inv), (long long)r->v[k].op,
                (long long)r->v[k].after[0], r->v[k].detail);
}

/* The first kept violation of inv, or NULL. */
static const struct protocol_violation *first_of(const struct protocol_report *r, enum invariant inv)
{
    for (size_t k = 0; k < r->n; k++)
        if (r->v[k].inv == inv)
            return &r->v[k];
    return NULL;
}

/* The edited trace breaks inv at op `op` (new index), naming `after` (new
 * index, or PROTOCOL_NO_OP: not checked) among the related operations. */
static void expect(const struct edit *e, enum invariant inv, int64_t op, int64_t after, const char *what)
{
    struct trace d;
    edit_build(e, &d);
    struct protocol_report r;
    run(&d, &r);
    const struct protocol_violation *v = first_of(&r, inv);
    int ok = v && v->op == op;
    if (ok && after != PROTOCOL_NO_OP) {
        int named = 0;
        for (int k = 0; k < PROTOCOL_AFTER_MAX; k++)
            named |= v->after[k] == after;
        ok = named;
    }
    CHECK(ok);
    if (getenv("PROTOCOL_TEST_SHOW"))
        show(what, &r);
    if (!ok) {
        fprintf(stderr, "  %s: expected %s at op %lld after op %lld\n", what, invariant_name(inv), (long long)op,
                (long long)after);
        show(what, &r);
    }
    protocol_report_free(&r);
    trace_free(&d);
}

/* ---- the clean engine ------------------------------------------------------------------ */
static void test_clean(void)
{
    for (size_t s = 0; workload_scenario_name(s); s++) {
        for (uint64_t seed = 1; seed <= 3; seed++) {
            struct trace t;
            make_trace(&t, workload_scenario_name(s), seed, seed == 1 ? 0 : 120);
            struct protocol_report r;
            run(&t, &r);
            const int ok = r.total == 0 && !r.incomplete && r.st.entries > 0 && r.st.durable_entries == r.st.entries &&
                           r.st.searches > 0 && r.st.header_writes >= 4;
            CHECK(ok);
            if (!ok) {
                fprintf(stderr, "  clean %s seed %llu (%s)\n", workload_scenario_name(s), (unsigned long long)seed,
                        r.note);
                show("clean", &r);
            }
            /* every scenario applies something to a final place except none */
            CHECK(r.st.final_writes > 0);
            protocol_report_free(&r);
            trace_free(&t);
        }
    }
}

/* ---- each rule, broken ------------------------------------------------------------------- */
/* overwrite (apply every entry): W ring, F, M log.entry, W BAT, F, M log.applied */
static void test_apply_before_log(const struct trace *t, const struct lay *l)
{
    int done = 0;
    for (size_t m = 0; m < t->n_ops && !done; m++) {
        if (!is_mark(t, m, "log.entry") || t->ops[m].off < 2)
            continue; /* the first entry of a session comes with header writes */
        const size_t f = m - 1, e = m - 2, b = next_io(t, m + 1);
        if (!is_f(t, f) || !is_ring(t, l, e) || !is_bat(t, l, b))
            continue;
        /* drop the flush that made the entry durable before the apply */
        struct edit ed;
        edit_init(&ed, t);
        edit_drop(&ed, (long)f);
        expect(&ed, INV_PROTO_APPLY_BEFORE_LOG, edit_pos(&ed, (long)b), edit_pos(&ed, (long)e),
               "apply-before-log: flush dropped");
        edit_free(&ed);
        /* the apply written before the entry altogether */
        edit_init(&ed, t);
        edit_move_after(&ed, (long)b, (long)(e - 1));
        expect(&ed, INV_PROTO_APPLY_BEFORE_LOG, edit_pos(&ed, (long)b), PROTOCOL_NO_OP,
               "apply-before-log: apply first");
        edit_free(&ed);
        done = 1;
    }
    CHECK(done);
}

/* batch: close = W BAT.., F, M log.applied, W hdr (clear), F, .. */
static void test_clear(const struct trace *t, const struct lay *l)
{
    int done = 0;
    for (size_t m = 0; m < t->n_ops && !done; m++) {
        if (!is_mark(t, m, "log.applied"))
            continue;
        const size_t h = next_io(t, m + 1), f = m - 1;
        if (!is_hdr(t, h) || !is_f(t, f) || !is_bat(t, l, f - 1))
            continue;
        /* the header clears the LogGuid in the same epoch as the applied pages */
        struct edit ed;
        edit_init(&ed, t);
        edit_drop(&ed, (long)f);
        expect(&ed, INV_PROTO_LOGGUID_CLEARED_EARLY, edit_pos(&ed, (long)h), edit_pos(&ed, (long)(f - 1)),
               "logguid-cleared-early");
        edit_free(&ed);
        /* the applied pages never written at all */
        edit_init(&ed, t);
        for (size_t k = f; k-- > 0 && is_bat(t, l, k);)
            edit_drop(&ed, (long)k);
        expect(&ed, INV_PROTO_CLEAR_UNAPPLIED, edit_pos(&ed, (long)h), PROTOCOL_NO_OP, "clear-unapplied");
        edit_free(&ed);
        done = 1;
    }
    CHECK(done);
}

/* W ring (entry 1), F, M log.entry, W hdr, F, M, W hdr, F, M, M log.started */
static void test_header_before_entry(const struct trace *t, const struct lay *l)
{
    int done = 0;
    for (size_t m = 0; m < t->n_ops && !done; m++) {
        if (!is_mark(t, m, "log.entry"))
            continue;
        const size_t f = m - 1, e = m - 2, h1 = next_io(t, m + 1);
        if (!is_f(t, f) || !is_ring(t, l, e) || !is_hdr(t, h1) || !is_f(t, h1 + 1))
            continue;
        const size_t h2 = next_io(t, h1 + 2);
        CHECK(is_hdr(t, h2) && is_f(t, h2 + 1));
        /* no flush between the entry and the header naming its LogGuid */
        struct edit ed;
        edit_init(&ed, t);
        edit_drop(&ed, (long)f);
        expect(&ed, INV_PROTO_HEADER_BEFORE_ENTRY, edit_pos(&ed, (long)h1), edit_pos(&ed, (long)e),
               "header-before-entry: flush dropped");
        edit_free(&ed);
        /* QEMU's order: both headers first, then the entry */
        edit_init(&ed, t);
        edit_move_after(&ed, (long)e, (long)(h2 + 1));
        edit_move_after(&ed, (long)f, (long)e);
        expect(&ed, INV_PROTO_HEADER_BEFORE_ENTRY, edit_pos(&ed, (long)h1), edit_pos(&ed, (long)e),
               "header-before-entry: header first");
        edit_free(&ed);
        done = 1;
    }
    CHECK(done);
}

/* W hdr, F, M header.written, W hdr, F */
static void test_header_copies(const struct trace *t)
{
    for (size_t h1 = 0; h1 < t->n_ops; h1++) {
        const size_t h2 = next_io(t, h1 + 2);
        if (!is_hdr(t, h1) || !is_f(t, h1 + 1) || !is_hdr(t, h2) || t->ops[h1].off == t->ops[h2].off)
            continue;
        struct edit ed;
        edit_init(&ed, t);
        edit_drop(&ed, (long)(h1 + 1));
        expect(&ed, INV_PROTO_HEADER_COPIES_ONE_EPOCH, edit_pos(&ed, (long)h2), edit_pos(&ed, (long)h1),
               "header-copies-one-epoch");
        edit_free(&ed);
        return;
    }
    CHECK(0);
}

/* B (workload flush), F, M, E: the device flush dropped */
static void test_flush_ack(const struct trace *t)
{
    for (size_t b = 0; b < t->n_ops; b++) {
        if (t->ops[b].kind != TR_VBEGIN || t->ops[b].vkind != VOP_FLUSH || !is_f(t, b + 1))
            continue;
        size_t w = b, e = b + 2;
        while (w > 0 && !is_w(t, w) && !is_f(t, w))
            w--;
        while (e < t->n_ops && t->ops[e].kind != TR_VEND)
            e++;
        if (!is_w(t, w) || e == t->n_ops)
            continue; /* nothing pending before this flush */
        struct edit ed;
        edit_init(&ed, t);
        edit_drop(&ed, (long)(b + 1));
        expect(&ed, INV_PROTO_FLUSH_ACK, edit_pos(&ed, (long)e), edit_pos(&ed, (long)w), "flush-ack-before-durable");
        edit_free(&ed);
        return;
    }
    CHECK(0);
}

static void test_first_64k(const struct trace *t)
{
    static uint8_t id[512];
    memcpy(id, secmap_get(&t->base, 0), sizeof id); /* the same bytes: still forbidden */
    struct edit ed;
    edit_init(&ed, t);
    const long at = (long)t->n_ops / 2;
    const long w = edit_insert_write(&ed, at, 0, id, sizeof id);
    expect(&ed, INV_PROTO_FIRST_64K, edit_pos(&ed, w), PROTOCOL_NO_OP, "first-64k");
    edit_free(&ed);
}

/* T, W payload, F, W ring (the entry mapping the block) */
static void test_payload_before_bat(const struct trace *t, const struct lay *l)
{
    for (size_t e = 3; e < t->n_ops; e++) {
        const size_t f = e - 1, p = e - 2, x = e - 3;
        if (!is_ring(t, l, e) || !is_f(t, f) || !is_w(t, p) || t->ops[x].kind != TR_TRUNCATE ||
            t->ops[p].off < l->bat_off + l->bat_len)
            continue;
        struct edit ed;
        edit_init(&ed, t);
        edit_drop(&ed, (long)f);
        expect(&ed, INV_PROTO_PAYLOAD_BEFORE_BAT, edit_pos(&ed, (long)e), edit_pos(&ed, (long)p),
               "payload-before-bat: data");
        edit_free(&ed);
        /* no data, and the extension not flushed */
        edit_init(&ed, t);
        edit_drop(&ed, (long)f);
        edit_drop(&ed, (long)p);
        expect(&ed, INV_PROTO_PAYLOAD_BEFORE_BAT, edit_pos(&ed, (long)e), edit_pos(&ed, (long)x),
               "payload-before-bat: extension");
        edit_free(&ed);
        return;
    }
    CHECK(0);
}

/* batch: an entry whose Tail is an earlier, unapplied entry */
static void test_tail_and_overwrite(const struct trace *t, const struct lay *l)
{
    for (size_t e = 0; e < t->n_ops; e++) {
        if (!is_ring(t, l, e) || !is_f(t, e + 1))
            continue;
        const struct trace_op *o = &t->ops[e];
        const uint32_t pos = (uint32_t)(o->off - l->log_off), tail = ref_le32(o->data + 12);
        if (tail == pos || ref_le32(o->data + 8) != o->len || tail > pos)
            continue;
        /* Tail moved to the entry itself: the earlier entries drop out */
        struct edit ed;
        edit_init(&ed, t);
        uint8_t *b = entry_rewrite(o, (long)pos, 0, 0);
        ed.repl[e] = b;
        expect(&ed, INV_PROTO_TAIL_PAST_UNAPPLIED, edit_pos(&ed, (long)e), PROTOCOL_NO_OP, "tail: skips");
        edit_free(&ed);
        free(b);
        /* Tail pointing inside the entry before it (no entry starts there) */
        edit_init(&ed, t);
        b = entry_rewrite(o, (long)pos - 4096, 0, 0);
        ed.repl[e] = b;
        expect(&ed, INV_PROTO_TAIL_PAST_UNAPPLIED, edit_pos(&ed, (long)e), PROTOCOL_NO_OP, "tail: broken");
        edit_free(&ed);
        free(b);
        /* the durable, unapplied tail entry overwritten right after the flush */
        static uint8_t zeros[4096];
        edit_init(&ed, t);
        const long w = edit_insert_write(&ed, (long)(e + 1), l->log_off + tail, zeros, sizeof zeros);
        expect(&ed, INV_PROTO_OVERWRITE_LIVE_ENTRY, edit_pos(&ed, w), edit_pos(&ed, (long)(e + 1)),
               "overwrite-live-entry");
        edit_free(&ed);
        return;
    }
    CHECK(0);
}

static void test_offsets(const struct trace *t, const struct lay *l)
{
    for (size_t e = 0; e < t->n_ops; e++) {
        if (!is_ring(t, l, e) || ref_le32(t->ops[e].data + 8) != t->ops[e].len || !is_f(t, e + 1))
            continue;
        struct edit ed;
        edit_init(&ed, t);
        uint8_t *b = entry_rewrite(&t->ops[e], -1, UINT64_C(1) << 40, 0);
        ed.repl[e] = b;
        expect(&ed, INV_PROTO_FLUSHED_OFFSET, edit_pos(&ed, (long)e), PROTOCOL_NO_OP, "flushed-offset");
        edit_free(&ed);
        free(b);
        edit_init(&ed, t);
        b = entry_rewrite(&t->ops[e], -1, 0, UINT64_C(1) << 20);
        ed.repl[e] = b;
        expect(&ed, INV_PROTO_LAST_OFFSET, edit_pos(&ed, (long)e), PROTOCOL_NO_OP, "last-offset");
        edit_free(&ed);
        free(b);
        return;
    }
    CHECK(0);
}

/* A base image whose log is pending (the batch workload's durable state
 * after its 12th entry, nothing applied yet), opened read-write by the
 * engine: the replay's final-place writes are covered by the entries
 * already durable in the base, and the LogGuid is cleared after a flush. */
static void test_replay_at_open(const struct trace *bt, const struct lay *l)
{
    size_t m = 0;
    for (int seen = 0; m < bt->n_ops; m++)
        if (is_mark(bt, m, "log.entry") && ++seen == 12)
            break;
    CHECK(m < bt->n_ops);
    struct secmap img;
    secmap_init(&img);
    CHECK_OK(secmap_merge(&img, &bt->base));
    uint64_t size = bt->base_size;
    for (size_t i = 0; i < m; i++) {
        const struct trace_op *o = &bt->ops[i];
        if (o->kind == TR_TRUNCATE)
            size = o->off; /* the engine only grows files */
        if (o->kind != TR_WRITE)
            continue;
        CHECK(o->off % SECTOR == 0 && o->len % SECTOR == 0);
        for (uint32_t k = 0; k < o->len / SECTOR; k++)
            CHECK_OK(secmap_put(&img, o->off / SECTOR + k, o->data + (size_t)k * SECTOR));
        if (o->off + o->len > size)
            size = o->off + o->len;
    }
    struct trace rt;
    trace_init(&rt);
    CHECK_OK(trace_set_base(&rt, &img, size));
    secmap_free(&img);
    struct simdisk sd;
    CHECK_OK(simdisk_init(&sd, &rt.base, rt.base_size, &rt));
    struct vhdx_options opt;
    memset(&opt, 0, sizeof opt);
    struct vhdx *h = NULL;
    CHECK_OK(vhdx_open(simdisk_bdev(&sd), &opt, &h));
    if (h)
        CHECK_OK(vhdx_close(h));
    simdisk_free(&sd);
    struct protocol_report r;
    run(&rt, &r);
    CHECK(r.total == 0 && r.st.final_writes > 0 && r.st.entries == 0);
    if (r.total)
        show("replay at open", &r);
    protocol_report_free(&r);
    /* the replay's flush dropped: the clear shares the epoch */
    size_t b = 0, f = 0, hc = 0;
    for (size_t i = 0; i < rt.n_ops; i++) {
        if (is_bat(&rt, l, i))
            b = i;
        if (b && !f && is_f(&rt, i))
            f = i;
    }
    hc = next_io(&rt, f + 1);
    CHECK(b && f > b && is_hdr(&rt, hc));
    struct edit ed;
    edit_init(&ed, &rt);
    edit_drop(&ed, (long)f);
    expect(&ed, INV_PROTO_LOGGUID_CLEARED_EARLY, edit_pos(&ed, (long)hc), edit_pos(&ed, (long)b),
           "replay: clear in the apply's epoch");
    edit_free(&ed);
    /* the replay skipped altogether */
    edit_init(&ed, &rt);
    for (size_t i = 0; i < rt.n_ops; i++)
        if (is_bat(&rt, l, i))
            edit_drop(&ed, (long)i);
    expect(&ed, INV_PROTO_CLEAR_UNAPPLIED, edit_pos(&ed, (long)hc), PROTOCOL_BASE_OP, "replay: skipped");
    edit_free(&ed);
    trace_free(&rt);
}

/* A trace that creates the image (empty base): creation is not judged; the
 * session after it is; a write into the identifier afterwards is. */
static void test_creation(void)
{
    struct trace t;
    trace_init(&t);
    struct simdisk sd;
    CHECK_OK(simdisk_init(&sd, NULL, 0, &t));
    struct vhdx_create_params cp = {UINT64_C(64) << 20, 1u << 20, 0, 0, 0};
    struct vhdx_options opt;
    memset(&opt, 0, sizeof opt);
    CHECK_OK(vhdx_create(simdisk_bdev(&sd), &cp, &opt));
    struct vhdx *h = NULL;
    CHECK_OK(vhdx_open(simdisk_bdev(&sd), &opt, &h));
    static uint8_t data[65536];
    memset(data, 0x5a, sizeof data);
    if (h) {
        CHECK_OK(vhdx_write(h, 3u << 20, data, sizeof data));
        CHECK_OK(vhdx_close(h));
    }
    simdisk_free(&sd);
    struct protocol_report r;
    run(&t, &r);
    CHECK(r.total == 0 && r.created_at >= 0 && r.st.entries == 1 && r.st.final_writes == 1);
    if (r.total)
        show("creation", &r);
    protocol_report_free(&r);
    struct edit ed;
    edit_init(&ed, &t);
    const long w = edit_insert_write(&ed, (long)t.n_ops - 1, 0, data, 512);
    expect(&ed, INV_PROTO_FIRST_64K, edit_pos(&ed, w), PROTOCOL_NO_OP, "first-64k after creation");
    edit_free(&ed);
    trace_free(&t);
}

/* The rules' registry entries exist, are named for the report and are in
 * the protocol class. */
static void test_registry(void)
{
    const enum invariant all[] = {INV_PROTO_APPLY_BEFORE_LOG,      INV_PROTO_LOGGUID_CLEARED_EARLY,
                                  INV_PROTO_CLEAR_UNAPPLIED,       INV_PROTO_HEADER_BEFORE_ENTRY,
                                  INV_PROTO_HEADER_COPIES_ONE_EPOCH, INV_PROTO_FIRST_64K,
                                  INV_PROTO_PAYLOAD_BEFORE_BAT,    INV_PROTO_TAIL_PAST_UNAPPLIED,
                                  INV_PROTO_OVERWRITE_LIVE_ENTRY,  INV_PROTO_FLUSHED_OFFSET,
                                  INV_PROTO_LAST_OFFSET};
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++) {
        CHECK(!strncmp(invariant_name(all[k]), "protocol:", 9));
        CHECK(!strcmp(invariant_class(all[k]), "protocol"));
        CHECK(strstr(invariant_about(all[k]), "MS-VHDX 2.") != NULL);
    }
    CHECK(!strcmp(invariant_class(INV_PROTO_FLUSH_ACK), "protocol"));
    int n = 0;
    for (int i = 0; i < INV_COUNT; i++)
        n += !strcmp(invariant_class((enum invariant)i), "protocol");
    CHECK(n == (int)(sizeof all / sizeof all[0]) + 1);
}

/* ---- hostile traces ------------------------------------------------------------------------ */
static void test_hostile(const struct trace *t)
{
    /* not a VHDX: nothing judged, no crash */
    struct trace e;
    trace_init(&e);
    static const uint8_t junk[4096] = {1, 2, 3};
    CHECK_OK(trace_add_write(&e, 0, junk, sizeof junk, NULL));
    CHECK_OK(trace_add_flush(&e));
    struct protocol_report r;
    CHECK_OK(protocol_check(&e, NULL, &r));
    CHECK(!r.judged && r.total == 0 && r.note[0]);
    protocol_report_free(&r);
    trace_free(&e);

    /* a clean trace with its writes damaged, moved and cut: a report, no crash */
    uint64_t rng = 7;
    for (int round = 0; round < 40; round++) {
        struct trace d;
        trace_init(&d);
        CHECK_OK(trace_set_base(&d, &t->base, t->base_size));
        for (size_t i = 0; i < t->n_ops && i < 1200; i++) {
            const struct trace_op *o = &t->ops[i];
            const uint64_t x = test_rand(&rng);
            if (o->kind == TR_WRITE) {
                uint8_t *b = malloc(o->len);
                memcpy(b, o->data, o->len);
                if (x % 5 == 0)
                    b[test_rand(&rng) % o->len] ^= (uint8_t)(1u << (x >> 8 & 7));
                uint64_t off = o->off;
                if (x % 17 == 0)
                    off += test_rand(&rng) % 8192;
                if (x % 29 == 0)
                    off = test_rand(&rng) % (4u << 20);
                CHECK_OK(trace_add_write(&d, off, b, o->len, NULL));
                if (x % 11 == 0 && o->off >= (1u << 20) && o->off < (2u << 20)) /* an entry twice in the ring */
                    CHECK_OK(trace_add_write(&d, (1u << 20) + test_rand(&rng) % 256 * 4096, b, o->len, NULL));
                if (x % 97 == 0) { /* a valid header that moves the log somewhere odd */
                    uint8_t h[4096];
                    memcpy(h, secmap_get(&t->base, KIB64 / SECTOR), SECTOR);
                    for (uint32_t k = 1; k < 8; k++)
                        memcpy(h + k * SECTOR, secmap_get(&t->base, KIB64 / SECTOR + k) ? secmap_get(&t->base, KIB64 / SECTOR + k) : SECTOR_ZERO, SECTOR);
                    ref_put64(h + 8, 1000 + (uint64_t)round);
                    ref_put32(h + 68, (uint32_t)(test_rand(&rng) % 3 ? (test_rand(&rng) % 64 + 1) << 20 : test_rand(&rng)));
                    ref_put64(h + 72, test_rand(&rng) % 2 ? (test_rand(&rng) % 64) << 20 : test_rand(&rng));
                    if (test_rand(&rng) % 2)
                        ref_put64(h + 48, test_rand(&rng)); /* a LogGuid */
                    ref_put32(h + 4, 0);
                    ref_put32(h + 4, ref_crc32c(0, h, sizeof h));
                    CHECK_OK(trace_add_write(&d, x % 2 ? KIB64 : 2 * KIB64, h, sizeof h, NULL));
                }
                free(b);
            } else if (o->kind == TR_TRUNCATE) {
                CHECK_OK(trace_add_truncate(&d, x % 13 == 0 ? o->off / 3 + 511 : o->off));
            } else if (o->kind == TR_FLUSH) {
                if (x % 7)
                    CHECK_OK(trace_add_flush(&d));
            }
        }
        struct protocol_opts po;
        protocol_opts_defaults(&po);
        po.max_per_invariant = 2;
        CHECK_OK(protocol_check(&d, &po, &r));
        for (size_t k = 0; k < r.n; k++)
            CHECK(r.v[k].op >= 0 && (size_t)r.v[k].op < d.n_ops);
        protocol_report_free(&r);
        trace_free(&d);
    }

    /* the work limit stops the walk and says so */
    struct protocol_opts po;
    protocol_opts_defaults(&po);
    po.work_limit = 1000;
    CHECK_OK(protocol_check(t, &po, &r));
    CHECK(r.incomplete && r.st.ops < t->n_ops);
    protocol_report_free(&r);
}

int main(void)
{
    test_registry();
    test_clean();
    test_creation();

    struct trace ow, bt;
    make_trace(&ow, "overwrite", 1, 0);
    make_trace(&bt, "batch", 1, 0);
    const struct lay lo = layout_of(&ow), lb = layout_of(&bt);
    test_apply_before_log(&ow, &lo);
    test_clear(&bt, &lb);
    test_header_before_entry(&ow, &lo);
    test_header_copies(&ow);
    test_first_64k(&ow);
    test_flush_ack(&ow);
    test_payload_before_bat(&ow, &lo);
    test_tail_and_overwrite(&bt, &lb);
    test_offsets(&ow, &lo);
    test_replay_at_open(&bt, &lb);
    test_hostile(&bt);
    trace_free(&ow);
    trace_free(&bt);
    return test_summary("protocol");
}
