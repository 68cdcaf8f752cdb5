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

int main(int argc, char **argv)
{
    verbose = argc > 1 && !strcmp(argv[1], "-v");
    uint64_t first = 1, count = 8;
    if (argc > 3) {
        first = strtoull(argv[2], NULL, 10);
        count = strtoull(argv[3], NULL, 10);
    }
    char err[512];
    struct ref_wstats sum;
    memset(&sum, 0, sizeof sum);
    unsigned variety = 0;
    for (uint64_t seed = first; seed < first + count; seed++) {
        struct trace t;
        trace_init(&t);
        struct refgen_info info;
        int rc = refgen_trace_ex(seed, NULL, &t, &info, err, sizeof err);
        CHECK_OK(rc);
        if (rc) {
            fprintf(stderr, "  seed %" PRIu64 ": %s\n", seed, err);
            trace_free(&t);
            continue;
        }
        sum_stats(&sum, &info.stats);
        variety |= info.layout.variety;
        if (verbose) {
            char line[1024];
            refgen_format_stats(&info.stats, line, sizeof line);
            fprintf(stderr, "seed %" PRIu64 ": %zu ops, bs %u, ls %u, log %u@%" PRIu64 ", variety %#x\n  %s\n", seed,
                    t.n_ops, info.layout.block_size, info.layout.logical_sector, info.layout.log_length,
                    info.layout.log_offset, info.layout.variety, line);
        }
        if (verbose)
            describe_writes(&t, &info.layout);
        check_images(&t, seed);
        struct sweep_config c;
        sweep_config_defaults(&c);
        c.quiet = 1;
        c.models = verbose ? M_ALL_MODELS : (1u << M_PREFIX);
        if (getenv("REFGEN_MAX_STATES"))
            c.max_states = strtoull(getenv("REFGEN_MAX_STATES"), NULL, 10);
        c.on_violation = print_violation;
        c.ctx = &seed;
        c.max_violations = 5;
        struct sweep_stats st;
        CHECK_OK(sweep_run(&t, &c, &st));
        CHECK(st.violations == 0);
        if (verbose)
            fprintf(stderr, "  sweep: %" PRIu64 " states, %" PRIu64 " replays, %" PRIu64 " violations, %.1f s\n",
                    st.states, st.replays, st.violations, st.seconds);
        trace_free(&t);
    }
    if (verbose) {
        char line[1024];
        refgen_format_stats(&sum, line, sizeof line);
        fprintf(stderr, "sum: %s\nvariety %#x\n", line, variety);
    }
    return test_summary("refgen");
}
