/*
 * fuzz_crash_schedule - PROPERTY: for the workload, the cut point and the
 * crash-model choices the input describes, the harness oracle
 * (sweep_eval_choice: reopen = replay, LogGuid clear, checker clean, every
 * acknowledged write present, no garbage, recovery reaches the same bytes)
 * finds no violation.  Coverage of the engine's replay code steers the
 * search through crash states, which uniform sampling of states cannot.
 *
 * Input (16-byte header, then 4 bytes per workload operation, at most 48):
 *   0     engine batching: apply_every = 1 + (b & 7)
 *   1     bits 0-1 virtual size 4 MiB/16 MiB/1 GiB/4 GiB; bit 2 logical sector 4096
 *   2     crash model: prefix, drop, reorder, torn, stale, recovery (b % 6)
 *   3     bits 0-2 torn pattern (0-6), bit 3 torn granularity 4096 (else 512),
 *         bit 4 recovery from the durable state (else from durable + pending),
 *         bits 5-6 the same choice in 1-4 consecutive epochs
 *   4-5   epoch selector (LE, modulo the number of epochs)
 *   6-7   index selector (prefix length, torn write, stale length, recovery cut)
 *   8-15  reorder subset bits (LE, up to 12 pending writes) and the sweep seed
 *   ops   b0 >= 0xF8: a burst of 8 * (1 + (b0 & 7)) allocate + discard pairs on
 *         block (b1 << 8 | b2) mod blocks, writes of 1 + (b3 & 7) sectors:
 *         the log ring fills and wraps;
 *         otherwise kind = b0 % 8: 0-3 write, 4 flush, 5 discard, 6 reopen, 7 apply;
 *         offset = (b1 << 8 | b2) * max(1, sectors / 65536) logical sectors
 *         (modulo the disk: 65536 places spread over the whole disk),
 *         length = 1 + b3 logical sectors (cut at the end of the disk)
 * A state the sweep does not generate (e.g. a torn choice in an epoch with
 * no multi-sector write) falls back to the prefix model; a recovery cut past
 * the replay's writes is skipped.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "fuzz_common.h"
#include "fuzz_target.h"
#include "harness/sweep.h"
#include "harness/workload.h"

#define MAX_OPS 48u
#define BURST_MAX 64u /* allocate+discard pairs of one burst record */
#define REORDER_MAX 12u

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    return 0;
}

/* Pending writes/truncates of epoch e (ops between flush e-1 and flush e). */
struct epoch_view {
    uint32_t n_epochs;  /* flushes + 1 */
    size_t first, end;  /* trace op range of the chosen epoch */
    uint32_t n_pending; /* W and T ops in it */
};

static void find_epoch(const struct trace *t, uint32_t sel, struct epoch_view *ev)
{
    uint32_t flushes = 0;
    for (size_t i = 0; i < t->n_ops; i++)
        flushes += t->ops[i].kind == TR_FLUSH;
    ev->n_epochs = flushes + 1;
    uint32_t want = sel % ev->n_epochs, e = 0;
    ev->first = 0;
    ev->end = t->n_ops;
    for (size_t i = 0; i < t->n_ops; i++) {
        if (t->ops[i].kind != TR_FLUSH)
            continue;
        if (e == want) {
            ev->end = i;
            break;
        }
        e++;
        ev->first = i + 1;
    }
    ev->n_pending = 0;
    for (size_t i = ev->first; i < ev->end; i++)
        ev->n_pending += t->ops[i].kind == TR_WRITE || t->ops[i].kind == TR_TRUNCATE;
}

static const struct trace_op *pending_op(const struct trace *t, const struct epoch_view *ev, uint32_t k)
{
    for (size_t i = ev->first; i < ev->end; i++) {
        if (t->ops[i].kind != TR_WRITE && t->ops[i].kind != TR_TRUNCATE)
            continue;
        if (k-- == 0)
            return &t->ops[i];
    }
    return NULL;
}

/* Turns the header bytes into a choice the sweep generates for this epoch. */
static void make_choice(const uint8_t *hd, const struct trace *t, const struct epoch_view *ev, uint32_t epoch,
                        struct crash_choice *c)
{
    memset(c, 0, sizeof *c);
    c->epoch = epoch;
    uint32_t n = ev->n_pending, idx = vhdx_get16(hd + 6);
    enum crash_model m = (enum crash_model)(hd[2] % 6);
    if (m == M_REORDER) {
        uint64_t mask = vhdx_get64(hd + 8);
        if (n >= 2 && n <= REORDER_MAX) {
            mask &= (UINT64_C(1) << n) - 1;
            /* the sweep leaves empty, full and prefix subsets to other models */
            uint32_t j = 0;
            while (j < n && (mask >> j & 1))
                j++;
            int prefix = (mask >> j) == 0;
            if (!prefix) {
                c->model = M_REORDER;
                c->subset[0] = mask;
                return;
            }
        }
        m = M_PREFIX;
    }
    if (m == M_TORN) {
        uint32_t gran = (hd[3] & 8) ? 4096 : 512;
        for (uint32_t k = 0; k < n; k++) {
            uint32_t w = (idx + k) % n;
            const struct trace_op *op = pending_op(t, ev, w);
            if (op && op->kind == TR_WRITE && (op->len + gran - 1) / gran >= 2) {
                c->model = M_TORN;
                c->index = w;
                c->gran = gran;
                c->pattern = (hd[3] & 7) % 7;
                return;
            }
        }
        m = M_PREFIX;
    }
    if (m == M_STALE) {
        /* Valid indexes: after the first truncate that grows the file. */
        uint32_t first = UINT32_MAX, k = 0;
        uint64_t size = t->base_size; /* the durable size at the epoch's start */
        for (size_t i = 0; i < ev->first; i++) {
            const struct trace_op *op = &t->ops[i];
            if (op->kind == TR_TRUNCATE)
                size = op->off;
            else if (op->kind == TR_WRITE && op->off + op->len > size)
                size = op->off + op->len;
        }
        for (k = 0; k < n; k++) {
            const struct trace_op *op = pending_op(t, ev, k);
            if (op->kind == TR_TRUNCATE) {
                if (op->off > size && first == UINT32_MAX)
                    first = k;
                size = op->off;
            }
        }
        if (first != UINT32_MAX && first + 1 <= n) {
            c->model = M_STALE;
            c->index = first + 1 + idx % (n - first);
            return;
        }
        m = M_PREFIX;
    }
    if (m == M_RECOVERY) {
        c->model = M_RECOVERY;
        c->pattern = (hd[3] >> 4) & 1;
        if (n == 0)
            c->pattern = 1;
        c->index = 1 + idx % 16;
        return;
    }
    if (m == M_DROP) {
        c->model = M_DROP;
        return;
    }
    if (n == 0) {
        c->model = M_DROP;
        return;
    }
    c->model = M_PREFIX;
    c->index = 1 + idx % n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t hd[16];
    memset(hd, 0, sizeof hd);
    memcpy(hd, data, size < sizeof hd ? size : sizeof hd);
    struct workload w;
    memset(&w, 0, sizeof w);
    snprintf(w.p.scenario, sizeof w.p.scenario, "mixed");
    w.p.seed = vhdx_get64(hd + 8);
    static const uint64_t sizes[4] = {4u << 20, 16u << 20, UINT64_C(1) << 30, UINT64_C(4) << 30};
    w.p.virtual_size = sizes[hd[1] & 3]; /* 1 and 4 GiB: the BAT spans several log pages */
    w.p.block_size = 1u << 20;
    w.p.logical_sector = (hd[1] & 4) ? 4096 : 512;
    w.p.physical_sector = 4096;
    w.p.log_size = 1u << 20;
    w.p.apply_every = 1u + (hd[0] & 7);
    char err[256];
    FUZZ_CHECK(workload_params_resolve(&w.p, err, sizeof err) == 0, "parameters: %s", err);

    /* Records, plus the operations bursts expand into. */
    static struct vop ops[MAX_OPS * (1 + 2 * BURST_MAX)];
    size_t n = 0, records = 0;
    uint32_t id = 0;
    const uint64_t lsec = w.p.logical_sector, units = w.p.virtual_size / lsec;
    const uint64_t block_units = w.p.block_size / lsec, blocks = units / block_units;
    for (size_t p = sizeof hd; p + 4 <= size && records < MAX_OPS; p += 4, records++) {
        const uint8_t *b = data + p;
        if (b[0] >= 0xF8) {
            /* A burst: allocate and discard a block again and again, one log
             * entry each, so the ring fills and wraps (1 MiB holds about 128). */
            uint32_t pairs = 8u * (1u + (b[0] & 7)); /* 8 .. 64 */
            uint64_t blk = ((uint64_t)b[1] << 8 | b[2]) % blocks;
            for (uint32_t k = 0; k < pairs; k++) {
                ops[n++] = (struct vop){VOP_WRITE, blk * block_units * lsec, lsec * (1 + b[3] % 8), ++id};
                ops[n++] = (struct vop){VOP_DISCARD, blk * block_units * lsec, (uint64_t)w.p.block_size, 0};
            }
            continue;
        }
        struct vop *o = &ops[n++];
        memset(o, 0, sizeof *o);
        /* 65536 offsets spread over the whole disk, on logical sectors */
        uint64_t off = ((uint64_t)b[1] << 8 | b[2]) * (units >> 16 ? units >> 16 : 1) % units, len = 1 + (uint64_t)b[3];
        if (off + len > units)
            len = units - off;
        switch (b[0] % 8) {
        case 4: o->kind = VOP_FLUSH; break;
        case 5: o->kind = VOP_DISCARD; break;
        case 6: o->kind = VOP_REOPEN; break;
        case 7: o->kind = VOP_APPLY; break;
        default: o->kind = VOP_WRITE; o->id = ++id; break;
        }
        if (o->kind == VOP_WRITE || o->kind == VOP_DISCARD) {
            o->voff = off * lsec;
            o->vlen = len * lsec;
        }
    }
    w.ops = ops;
    w.n = n;

    struct trace t;
    trace_init(&t);
    int rc = workload_run(&w, &t, err, sizeof err);
    FUZZ_CHECK(rc == 0, "the workload failed on a healthy disk: %s", err);

    struct sweep_config cfg;
    sweep_config_defaults(&cfg);
    cfg.seed = vhdx_get64(hd + 8);
    cfg.reorder_max = REORDER_MAX;
    cfg.full_every = 1; /* judge every written sector */
    cfg.full_max = 0;
    cfg.quiet = 1;
    /* The same choice in 1 to 4 consecutive epochs (header byte 3, bits 5-6):
     * a workload costs more to record than one state costs to judge. */
    const uint32_t span = 1u + ((hd[3] >> 5) & 3);
    for (uint32_t k = 0; k < span; k++) {
        struct epoch_view ev;
        uint32_t sel = (uint32_t)vhdx_get16(hd + 4) + k;
        find_epoch(&t, sel, &ev);
        if (k > 0 && sel % ev.n_epochs == (uint32_t)vhdx_get16(hd + 4) % ev.n_epochs)
            break; /* wrapped around: every epoch done */
        struct crash_choice c;
        make_choice(hd, &t, &ev, sel % ev.n_epochs, &c);
        struct verdict v;
        memset(&v, 0, sizeof v);
        rc = sweep_eval_choice(&t, &cfg, &c, &v);
        /* A recovery cut lands on a flush or a mark of the replay's trace a
         * third of the time: the next few cuts are the nearest real states. */
        for (int r = 0; r < 3 && rc == -ENOENT && c.model == M_RECOVERY; r++) {
            c.index++;
            rc = sweep_eval_choice(&t, &cfg, &c, &v);
        }
        if (fuzz_verbose()) {
            char desc[256];
            crash_choice_format(&c, desc, sizeof desc);
            fprintf(stderr, "fuzz_crash_schedule: %zu ops, %zu trace ops, %u epochs, %u pending; %s: %s\n", n,
                    t.n_ops, ev.n_epochs, ev.n_pending, desc,
                    rc == -ENOENT ? "not generated (skipped)" : rc ? "harness error" : v.ok ? "ok" : v.invariant);
        }
        if (rc == -ENOENT)
            continue; /* a recovery cut past the replay's writes, or no replay at all */
        FUZZ_CHECK(rc == 0, "sweep_eval_choice failed: %d", rc);
        if (!v.ok) {
            char desc[256];
            crash_choice_format(&c, desc, sizeof desc);
            fuzz_fail(__FILE__, __LINE__, "the oracle holds", "workload of %zu ops (apply_every %u, %" PRIu64
                      " MiB disk): %s at cut %" PRIu64 ": %s\n%s", n, w.p.apply_every, w.p.virtual_size >> 20, desc,
                      v.cut, v.invariant, v.detail);
        }
    }
    trace_free(&t);
    return 0;
}
