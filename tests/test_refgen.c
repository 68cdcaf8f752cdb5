/*
 * test_refgen.c - the reference writer (harness/ref/ref_write.c) and its
 * traces (harness/src/refgen.c):
 *  - deterministic: the same seed gives the same trace, byte for byte;
 *  - every image it leaves (the final one and every mid-log one) is valid
 *    by the reference and opens in the engine, read-only and read-write,
 *    with the same geometry and the same virtual-disk bytes;
 *  - every prefix crash state of a few traces is valid by the reference
 *    and replays in the engine without a violation of any judge;
 *  - the shapes it exists to make are made (counts summed over a fixed set
 *    of seeds): entries of >= 128 and >= 255 descriptors, 127 and 254
 *    exactly, >= 6 sectors, zero descriptors > 1 MiB, wrapped entries and
 *    sequences, competing sequences, stale LogGuids, Tails behind, batched
 *    entries, LastFileOffset past the file, non-default layouts.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "harness/refgen.h"
#include "harness/simdisk.h"
#include "harness/sweep.h"
#include "testutil.h"
#include "vhdx/vhdx.h"

static int verbose;

/* The engine opens the image (read-only: replay in memory; read-write:
 * replay on a copy) and agrees with the reference on geometry and bytes. */
static void engine_agrees(const struct secmap *m, uint64_t size, uint64_t seed, const char *what)
{
    struct refgen_src src = {m, size};
    struct ref_image r;
    CHECK(refgen_ref_open(&src, &r) == 0);
    CHECK(r.status == REF_VALID);
    if (r.status != REF_VALID)
        fprintf(stderr, "  seed %" PRIu64 " %s: reference says %s: %s: %s\n", seed, what, ref_status_name(r.status),
                r.rule, r.why);
    for (int rw = 0; rw < 2 && r.status == REF_VALID; rw++) {
        struct crashdisk cd;
        crashdisk_init(&cd, m, size);
        struct vhdx_rng_seeded rs = {seed + 99};
        struct vhdx_rng rng = {vhdx_rng_seeded_fill, &rs};
        struct vhdx_diag diag;
        struct vhdx_options o = {.flags = rw ? 0 : VHDX_OPEN_RDONLY, .rng = &rng, .diag = &diag};
        struct vhdx *h = NULL;
        int rc = vhdx_open(crashdisk_bdev(&cd), &o, &h);
        CHECK_OK(rc);
        if (rc) {
            fprintf(stderr, "  seed %" PRIu64 " %s (%s): the engine refuses: %s [%s]\n", seed, what,
                    rw ? "read-write" : "read-only", diag.message, vhdx_errname(rc));
            crashdisk_free(&cd);
            continue;
        }
        struct vhdx_info in;
        vhdx_get_info(h, &in);
        CHECK(in.geo.virtual_size == r.virtual_size && in.geo.block_size == r.block_size);
        CHECK(in.bat_offset == r.bat_offset && in.metadata_offset == r.meta_offset);
        CHECK((in.replayed != 0) == (r.log_pending != 0));
        if (r.log_pending)
            CHECK(in.replayed_entries == r.log.entries && in.replayed_head_sequence == r.log.head_sequence);
        /* bytes at many offsets, odd lengths */
        static uint8_t a[70000], b[70000];
        uint64_t x = seed * 7 + (uint64_t)rw;
        for (int k = 0; k < 48; k++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            uint64_t off = (x >> 11) % r.virtual_size;
            size_t len = 1 + (size_t)((x >> 3) % sizeof a);
            if (len > r.virtual_size - off)
                len = (size_t)(r.virtual_size - off);
            int defined = 0;
            CHECK_OK(vhdx_read(h, off, a, len));
            CHECK(ref_image_read_virtual(&r, b, len, off, &defined) == 0);
            if (defined && memcmp(a, b, len) != 0) {
                CHECK(!"engine and reference read different bytes");
                fprintf(stderr, "  seed %" PRIu64 " %s: virtual offset %" PRIu64 "+%zu differs\n", seed, what, off,
                        len);
                break;
            }
        }
        CHECK_OK(vhdx_close(h));
        crashdisk_free(&cd);
    }
    ref_image_free(&r);
}

/* Where a trace's writes go (verbose): ring, header section, regions,
 * payload; and the largest flush epoch. */
static void describe_writes(const struct trace *t, const struct ref_wlayout *L)
{
    size_t ring = 0, head = 0, reg = 0, pay = 0, epoch = 0, max_epoch = 0;
    for (size_t i = 0; i < t->n_ops; i++) {
        const struct trace_op *op = &t->ops[i];
        if (op->kind == TR_FLUSH) {
            max_epoch = epoch > max_epoch ? epoch : max_epoch;
            epoch = 0;
        }
        if (op->kind != TR_WRITE && op->kind != TR_TRUNCATE)
            continue;
        epoch++;
        if (op->kind != TR_WRITE)
            continue;
        if (op->off >= L->log_offset && op->off < L->log_offset + L->log_length)
            ring++;
        else if (op->off < (1u << 20))
            head++;
        else {
            int in = 0;
            for (uint32_t r = 0; r < L->n_regions; r++)
                in |= op->off >= L->region[r].offset && op->off < L->region[r].offset + L->region[r].length;
            in |= L->bat_slot && op->off >= L->bat_slot && op->off < L->bat_slot + L->region[L->bat_index].length;
            if (in)
                reg++;
            else
                pay++;
        }
    }
    fprintf(stderr, "  writes: ring %zu, header section %zu, regions %zu, payload %zu; largest epoch %zu\n", ring,
            head, reg, pay, max_epoch);
}

static void sum_stats(struct ref_wstats *a, const struct ref_wstats *s)
{
    a->entries += s->entries;
    a->max_descriptors = s->max_descriptors > a->max_descriptors ? s->max_descriptors : a->max_descriptors;
    a->desc_0 += s->desc_0;
    a->desc_127 += s->desc_127;
    a->desc_128_plus += s->desc_128_plus;
    a->desc_254 += s->desc_254;
    a->desc_255_plus += s->desc_255_plus;
    a->max_sectors = s->max_sectors > a->max_sectors ? s->max_sectors : a->max_sectors;
    a->sectors_6_plus += s->sectors_6_plus;
    a->mixed += s->mixed;
    a->overlapping += s->overlapping;
    a->max_zero = s->max_zero > a->max_zero ? s->max_zero : a->max_zero;
    a->zero_over_1m += s->zero_over_1m;
    a->wrapped_entries += s->wrapped_entries;
    a->wrapped_sequences += s->wrapped_sequences;
    a->max_run = s->max_run > a->max_run ? s->max_run : a->max_run;
    a->tails_behind += s->tails_behind;
    a->tails_applied += s->tails_applied;
    a->batched += s->batched;
    a->competing += s->competing;
    a->stale_guids += s->stale_guids;
    a->seq_high += s->seq_high;
    a->lfo_extends += s->lfo_extends;
    a->ffo_low += s->ffo_low;
    a->data_past_end += s->data_past_end;
    a->applies += s->applies;
    a->partial_applies += s->partial_applies;
    a->unflushed_applies += s->unflushed_applies;
    a->header_updates += s->header_updates;
    a->single_updates += s->single_updates;
    a->guid_cleared += s->guid_cleared;
    a->bat_moves += s->bat_moves;
    a->regions_added += s->regions_added;
    a->item_edits += s->item_edits;
    a->log_moves += s->log_moves;
    a->blocks_end += s->blocks_end;
    a->blocks_gap += s->blocks_gap;
    a->blocks_reused += s->blocks_reused;
    a->discards_zero += s->discards_zero;
    a->pending_at_end += s->pending_at_end;
    a->vops += s->vops;
    a->sessions += s->sessions;
}

/* Every image a trace leaves: the final one and each mid-log one. */
static void check_images(const struct trace *t, uint64_t seed)
{
    struct secmap m;
    secmap_init(&m);
    uint64_t size;
    CHECK_OK(refgen_image_at(t, t->n_ops, &m, &size));
    engine_agrees(&m, size, seed, "final image");
    secmap_free(&m);
    size_t *cuts, n;
    CHECK_OK(refgen_pending_cuts(t, &cuts, &n));
    for (size_t i = 0; i < n; i += 1 + n / 6) {
        secmap_init(&m);
        CHECK_OK(refgen_image_at(t, cuts[i], &m, &size));
        char what[64];
        snprintf(what, sizeof what, "mid-log image at op %zu", cuts[i]);
        engine_agrees(&m, size, seed, what);
        secmap_free(&m);
    }
    free(cuts);
}

static int print_violation(void *ctx, const struct crash_choice *c, const struct verdict *v, const char *repro)
{
    (void)repro;
    char ch[160];
    crash_choice_format(c, ch, sizeof ch);
    fprintf(stderr, "  seed %" PRIu64 ": VIOLATION [%s] %s cut %" PRIu64 ": %s\n", *(const uint64_t *)ctx,
            v->invariant, ch, v->cut, v->detail);
    return 0;
}

/* The same seed gives the same trace, byte for byte (the serialized file). */
static void test_determinism(uint64_t seed)
{
    struct trace a, b;
    trace_init(&a);
    trace_init(&b);
    char err[512];
    CHECK_OK(refgen_trace(seed, NULL, &a, err, sizeof err));
    CHECK_OK(refgen_trace(seed, NULL, &b, err, sizeof err));
    uint8_t *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    CHECK_OK(trace_serialize(&a, &x, &nx));
    CHECK_OK(trace_serialize(&b, &y, &ny));
    CHECK(nx == ny && nx > 0 && memcmp(x, y, nx) == 0);
    free(x);
    free(y);
    /* another seed, another trace */
    struct trace c;
    trace_init(&c);
    CHECK_OK(refgen_trace(seed + 1, NULL, &c, err, sizeof err));
    CHECK(c.n_ops != a.n_ops || c.base_size != a.base_size || c.bytes_written != a.bytes_written);
    trace_free(&a);
    trace_free(&b);
    trace_free(&c);
}

/* The writer alone, into memory (no harness): the image it leaves is valid
 * by the reference; bad parameters are refused with a message. */
static void test_in_memory(void)
{
    for (uint64_t seed = 40; seed < 44; seed++) {
        struct ref_writer *w;
        char err[256];
        CHECK_OK(ref_writer_new(&w, seed, NULL, err, sizeof err));
        struct ref_wmem *m = ref_wmem_new();
        CHECK(m != NULL);
        struct ref_wio io = ref_wmem_io(m);
        CHECK_OK(ref_writer_create(w, &io));
        struct ref_src src = {ref_wmem_read, m, ref_wmem_size(m), NULL, NULL};
        struct ref_image r;
        CHECK_OK(ref_image_open(&r, &src));
        CHECK(r.status == REF_VALID);
        ref_image_free(&r);
        CHECK_OK(ref_writer_run(w, &io, NULL));
        src.size = ref_wmem_size(m);
        CHECK_OK(ref_image_open(&r, &src));
        CHECK(r.status == REF_VALID);
        if (r.status != REF_VALID)
            fprintf(stderr, "  in memory, seed %" PRIu64 ": %s: %s\n", seed, r.rule, r.why);
        CHECK(r.virtual_size == ref_writer_layout(w)->virtual_size);
        ref_image_free(&r);
        ref_wmem_free(m);
        ref_writer_free(w);
    }
    struct ref_writer *w = NULL;
    char err[256] = "";
    struct ref_wparams p;
    memset(&p, 0, sizeof p);
    p.block_size = 3u << 20;
    CHECK(ref_writer_new(&w, 1, &p, err, sizeof err) == -EINVAL && w == NULL && strstr(err, "block size"));
    p.block_size = 0;
    p.log_length = 1000;
    CHECK(ref_writer_new(&w, 1, &p, err, sizeof err) == -EINVAL && strstr(err, "log length"));
}

/* One trace: its images, and (when sweep_models) every crash state of those
 * models, judged by every judge. */
static void run_one(uint64_t seed, const struct ref_wparams *wp, unsigned sweep_models, struct ref_wstats *sum,
                    unsigned *variety)
{
    struct trace t;
    trace_init(&t);
    struct refgen_info info;
    struct refgen_params p;
    memset(&p, 0, sizeof p);
    if (wp)
        p.w = *wp;
    char err[512];
    int rc = refgen_trace_ex(seed, &p, &t, &info, err, sizeof err);
    CHECK_OK(rc);
    if (rc) {
        fprintf(stderr, "  seed %" PRIu64 ": %s\n", seed, err);
        trace_free(&t);
        return;
    }
    if (sum)
        sum_stats(sum, &info.stats);
    if (variety)
        *variety |= info.layout.variety;
    if (verbose) {
        char line[1024];
        refgen_format_stats(&info.stats, line, sizeof line);
        fprintf(stderr, "seed %" PRIu64 ": %zu ops, bs %u, ls %u, log %u@%" PRIu64 ", variety %#x\n  %s\n", seed,
                t.n_ops, info.layout.block_size, info.layout.logical_sector, info.layout.log_length,
                info.layout.log_offset, info.layout.variety, line);
        describe_writes(&t, &info.layout);
    }
    check_images(&t, seed);
    if (sweep_models) {
        struct sweep_config c;
        sweep_config_defaults(&c);
        c.quiet = 1;
        c.models = sweep_models;
        c.on_violation = print_violation;
        c.ctx = &seed;
        c.max_violations = 5;
        if (getenv("REFGEN_MAX_STATES"))
            c.max_states = strtoull(getenv("REFGEN_MAX_STATES"), NULL, 10);
        struct sweep_stats st;
        CHECK_OK(sweep_run(&t, &c, &st));
        CHECK(st.violations == 0);
        if (!c.max_states)
            CHECK(st.replays > 0); /* the states replay logs */
        if (verbose)
            fprintf(stderr, "  sweep: %" PRIu64 " states, %" PRIu64 " replays, %" PRIu64 " violations, %.1f s\n",
                    st.states, st.replays, st.violations, st.seconds);
    }
    trace_free(&t);
}

int main(int argc, char **argv)
{
    verbose = argc > 1 && !strcmp(argv[1], "-v");
    if (argc > 3) { /* test_refgen -v FIRST COUNT [MODELS]: a survey, all judges */
        unsigned models = 1u << M_PREFIX;
        if (argc > 4 && crash_models_parse(argv[4], &models) != 0)
            return 2;
        struct ref_wstats sum;
        memset(&sum, 0, sizeof sum);
        unsigned variety = 0;
        for (uint64_t s = strtoull(argv[2], NULL, 10), n = strtoull(argv[3], NULL, 10); n > 0; s++, n--)
            run_one(s, NULL, models, &sum, &variety);
        char line[1024];
        refgen_format_stats(&sum, line, sizeof line);
        fprintf(stderr, "sum: %s\nvariety %#x\n", line, variety);
        return test_summary("refgen");
    }
    test_determinism(5);
    test_in_memory();

    /* Seeds 1..8: every image valid and read alike; the shapes. */
    struct ref_wstats sum;
    memset(&sum, 0, sizeof sum);
    unsigned variety = 0;
    for (uint64_t seed = 1; seed <= 8; seed++)
        run_one(seed, NULL, seed <= 2 ? 1u << M_PREFIX : 0, &sum, &variety);
    /* The corners of the geometry, fixed; every crash state of a prefix. */
    struct ref_wparams big = {.block_size = 256u << 20, .logical_sector = 512, .log_length = 16u << 20,
                              .virtual_size = (UINT64_C(256) << 20) * 20 - 512, .sessions = 1, .ops = 12};
    run_one(21, &big, 1u << M_PREFIX, &sum, &variety);
    struct ref_wparams wide = {.block_size = 1u << 20, .logical_sector = 512, .physical_sector = 512,
                               .virtual_size = UINT64_C(12000) << 20, .log_length = 3u << 20, .sessions = 2,
                               .ops = 10};
    run_one(22, &wide, 0, &sum, &variety);
    struct ref_wparams small = {.block_size = 1u << 20, .logical_sector = 4096, .log_length = 1u << 20,
                                .virtual_size = UINT64_C(8) << 20, .sessions = 2, .ops = 12, .end = 2};
    run_one(23, &small, (1u << M_PREFIX) | (1u << M_TORN), &sum, &variety);

    if (verbose) {
        char line[1024];
        refgen_format_stats(&sum, line, sizeof line);
        fprintf(stderr, "sum: %s\nvariety %#x\n", line, variety);
    }
    /* what the writer exists to make: entries of every descriptor-sector
     * edge, long entries, long zero descriptors, the ring's corners */
    CHECK(sum.desc_0 >= 1);
    CHECK(sum.desc_127 >= 1);
    CHECK(sum.desc_128_plus >= 1);
    CHECK(sum.desc_254 >= 1);
    CHECK(sum.desc_255_plus >= 1);
    CHECK(sum.max_descriptors >= 383);
    CHECK(sum.sectors_6_plus >= 1);
    CHECK(sum.max_sectors >= 128);
    CHECK(sum.mixed >= 1);
    CHECK(sum.overlapping >= 1);
    CHECK(sum.zero_over_1m >= 1);
    CHECK(sum.max_zero >= (UINT64_C(2) << 20));
    CHECK(sum.wrapped_entries >= 1);
    CHECK(sum.wrapped_sequences >= 1);
    CHECK(sum.max_run >= 3);
    CHECK(sum.tails_behind >= 1);
    CHECK(sum.tails_applied >= 1);
    CHECK(sum.batched >= 1);
    CHECK(sum.competing >= 1);
    CHECK(sum.stale_guids >= 1);
    CHECK(sum.seq_high >= 1);
    CHECK(sum.lfo_extends >= 1);
    CHECK(sum.ffo_low >= 1);
    CHECK(sum.data_past_end >= 1);
    CHECK(sum.partial_applies >= 1);
    CHECK(sum.unflushed_applies >= 1);
    CHECK(sum.single_updates >= 1);
    CHECK(sum.guid_cleared >= 1);
    CHECK(sum.bat_moves >= 1);
    CHECK(sum.regions_added >= 1);
    CHECK(sum.item_edits >= 1);
    CHECK(sum.log_moves >= 1);
    CHECK(sum.blocks_gap >= 1);
    CHECK(sum.blocks_reused >= 1);
    CHECK(sum.discards_zero >= 1);
    CHECK(sum.pending_at_end >= 1);
    /* and every way a layout differs from the plain one */
    const unsigned all = REF_WV_REGION_ORDER | REF_WV_PLACEMENT | REF_WV_EXTRA_REGIONS | REF_WV_USER_ITEMS |
                         REF_WV_ITEM_ORDER | REF_WV_ONE_HEADER | REF_WV_HISTORY | REF_WV_PENDING_BASE |
                         REF_WV_BLOCK_STATES | REF_WV_PARTIAL_BLOCK | REF_WV_BIG_BAT | REF_WV_BAT_SLOT |
                         REF_WV_LOG_SLOT;
    CHECK((variety & all) == all);
    if ((variety & all) != all)
        fprintf(stderr, "  layout varieties never made: %#x\n", all & ~variety);
    return test_summary("refgen");
}
