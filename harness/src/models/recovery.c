/*
 * models/recovery.c - the `recovery` crash model: the replay itself crashed: cut after its writes, its epochs reordered or torn, and a nested crash.
 * (The model's contract is in harness/sweep.h and harness/simdisk.h; this
 * file generates its states and names them.)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../sweep_core.h"

/* ---- recovery: cut again inside the replay ------------------------------------ */
struct sector_val {
    uint64_t sector;
    uint8_t bytes[512];
};

static int in_header_slots(uint64_t sector)
{
    return sector >= VHDX_HEADER1_OFFSET / SECTOR && sector < VHDX_REGION1_OFFSET / SECTOR;
}

/* Opens+closes the image in s->cd recording writes into rec.  Returns the open rc. */
static int replay_recorded(struct sweeper *s, uint64_t hash, struct trace *rec, uint32_t *replayed)
{
    uint64_t rng = hash;
    struct subject_handle *h;
    sw_shared_close(s);
    s->cd.rec = rec;
    int rc = s->subj->open(crashdisk_bdev(&s->cd), 0, &rng, 0, &h);
    if (rc == 0) {
        struct subject_info in;
        s->subj->info(h, &in);
        *replayed = in.replayed ? (in.replayed_entries ? in.replayed_entries : 1) : 0;
        rc = s->subj->close(h);
    }
    s->cd.rec = NULL;
    return rc;
}

/* Builds the starting image of a recovery choice into s->cd. */
static int build_recovery_start(struct sweeper *s, const struct crash_choice *c)
{
    sw_reset_all(s);
    if ((c->pattern & 1) == 0)
        for (size_t i = 0; i < s->n_pending; i++) {
            int rc = sw_overlay_apply(&s->cd, sw_pend(s, i));
            if (rc)
                return rc;
        }
    return 0;
}

/* Snapshot of every sector the replay wrote (and the size), for comparison. */
static int snapshot(struct crashdisk *cd, const struct trace *rec, struct sector_val **out, size_t *n)
{
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    for (size_t i = 0; i < rec->n_ops; i++) {
        const struct trace_op *op = &rec->ops[i];
        if (op->kind != TR_WRITE)
            continue;
        for (uint64_t sct = op->off / SECTOR; sct * SECTOR < op->off + op->len; sct++) {
            if (in_header_slots(sct))
                continue;
            if (*n == cap) {
                cap = cap ? cap * 2 : 64;
                struct sector_val *nv = realloc(*out, cap * sizeof *nv);
                if (!nv)
                    return -ENOMEM;
                *out = nv;
            }
            (*out)[*n].sector = sct;
            crashdisk_read(cd, (*out)[*n].bytes, SECTOR, sct * SECTOR);
            (*n)++;
        }
    }
    return 0;
}

/* Sub-models of a cut inside the replay (crash_choice.target of a recovery
 * choice): the replay's own writes between two of its flushes are pending
 * like any epoch's, so every power-loss model applies to them. */
enum recovery_sub {
    RS_PREFIX = 0,  /* every replay op before the cut persisted, in order */
    RS_DROP = 1,    /* the cut's epoch of the replay lost entirely (generated as the prefix cut before it) */
    RS_REORDER = 2, /* a subset (subset[0]) of the cut's epoch persisted */
    RS_TORN = 3,    /* the epoch's writes before write `bit` persisted, write `bit` torn (gran, subset[1]) */
};

static const char *const recovery_sub_names[4] = {"prefix", "drop", "reorder", "torn"};

/* Pending writes/truncates of the replay's epoch holding cut k: rec ops
 * [*first, k) after the last flush before k.  Returns their count. */
static uint32_t rec_epoch(const struct trace *rec, uint32_t k, uint32_t *first)
{
    uint32_t f = 0;
    for (uint32_t i = 0; i < k && i < rec->n_ops; i++)
        if (rec->ops[i].kind == TR_FLUSH)
            f = i + 1;
    *first = f;
    uint32_t n = 0;
    for (uint32_t i = f; i < k && i < rec->n_ops; i++)
        n += rec->ops[i].kind == TR_WRITE || rec->ops[i].kind == TR_TRUNCATE;
    return n;
}

/* Applies the first k ops of rec to the overlay under sub-model `sub`. */
static void apply_rec_cut(struct sweeper *s, const struct trace *rec, uint32_t k, const struct crash_choice *c)
{
    uint32_t first;
    rec_epoch(rec, k, &first);
    const uint32_t upto = c->target == RS_PREFIX ? k : first; /* durable part */
    for (uint32_t i = 0; i < upto && i < rec->n_ops; i++)
        sw_overlay_apply(&s->cd, &rec->ops[i]);
    if (c->target == RS_PREFIX || c->target == RS_DROP)
        return;
    uint32_t j = 0; /* index among the epoch's pending writes/truncates */
    for (uint32_t i = first; i < k && i < rec->n_ops; i++) {
        const struct trace_op *op = &rec->ops[i];
        if (op->kind != TR_WRITE && op->kind != TR_TRUNCATE)
            continue;
        if (c->target == RS_REORDER) {
            if (j < 64 && (c->subset[0] >> j & 1))
                sw_overlay_apply(&s->cd, op);
        } else if (j < c->bit) {
            sw_overlay_apply(&s->cd, op);
        } else if (j == c->bit && op->kind == TR_WRITE) {
            uint64_t units = (op->len + c->gran - 1) / c->gran;
            uint8_t mask[64] = {0};
            for (uint64_t u = 0; u < units && u < 512; u++)
                if (c->subset[1] >> (u % 64) & 1)
                    mask[u / 8] |= (uint8_t)(1u << (u % 8));
            crashdisk_overlay_write_torn(&s->cd, op->off, op->data, op->len, c->gran, mask);
        }
        j++;
    }
}

/* Builds a recovery state into s->cd (pattern bit 0: start from the durable
 * image, else durable + pending; bit 1: nested, a second crash inside the
 * replay of the first, cut after `bit` ops of that second replay, recorded
 * into rec2). */
static int build_recovery_state(struct sweeper *s, const struct crash_choice *c, const struct trace *rec)
{
    struct crash_choice start = *c;
    start.pattern &= 1;
    build_recovery_start(s, &start);
    s->cd.overlay_borrows_temp = 1; /* rec lives for this epoch only */
    if (!(c->pattern & 2)) {
        apply_rec_cut(s, rec, c->index, c);
        return 0;
    }
    /* nested: the first cut is a prefix cut; its replay is recorded and cut again */
    struct crash_choice first = *c;
    first.target = RS_PREFIX;
    apply_rec_cut(s, rec, c->index, &first);
    struct trace rec2;
    trace_init(&rec2);
    uint32_t replayed = 0;
    int rc = replay_recorded(s, sw_choice_hash(s, c) ^ 0x2E57, &rec2, &replayed);
    if (rc == 0) {
        build_recovery_start(s, &start);
        s->cd.overlay_borrows_temp = 1;
        apply_rec_cut(s, rec, c->index, &first);
        if (c->bit > rec2.n_ops)
            rc = -ENOENT;
        for (uint32_t i = 0; rc == 0 && i < c->bit; i++)
            sw_overlay_apply(&s->cd, &rec2.ops[i]);
        if (rc == 0) {
            /* the second replay's bytes must outlive this state: keep them in the overlay */
            struct secmap keep;
            secmap_init(&keep);
            for (size_t i = 0; i < s->cd.overlay.count; i++) {
                const struct secmap_slot *sl = secmap_at(&s->cd.overlay, i);
                secmap_put_copy(&keep, sl->key, sl->val);
            }
            secmap_clear(&s->cd.overlay);
            for (size_t i = 0; i < keep.count; i++) {
                const struct secmap_slot *sl = secmap_at(&keep, i);
                secmap_put_copy(&s->cd.overlay, sl->key, sl->val);
            }
            secmap_free(&keep);
        }
    }
    trace_free(&rec2);
    return rc;
}

static void judge_recovery(struct sweeper *s, const struct crash_choice *c, uint64_t cut, const struct trace *rec,
                           const struct sector_val *x, size_t nx, uint64_t xsize, struct verdict *v)
{
    /* Image: start + the replay's ops persisted as the sub-model says. */
    if (build_recovery_state(s, c, rec) != 0) {
        verdict_init(v, cut);
        return;
    }
    if (s->want && s->c->save_image)
        crashdisk_save_image(&s->cd, s->c->save_image);
    sw_judge_share(s, c, cut, v, 0);
    if (!v->ok)
        return;
    /* sw_judge_share() replayed and closed; compare with the uninterrupted replay. */
    char how[96];
    snprintf(how, sizeof how, "%s cut after %u of %zu replay operations%s", recovery_sub_names[c->target & 3],
             c->index, rec->n_ops, (c->pattern & 2) ? ", then a second cut inside the second replay" : "");
    uint8_t buf[512];
    for (size_t i = 0; i < nx; i++) {
        crashdisk_read(&s->cd, buf, SECTOR, x[i].sector * SECTOR);
        if (memcmp(buf, x[i].bytes, SECTOR) != 0) {
            char diff[700] = "";
            sw_sector_diff(diff, sizeof diff, x[i].bytes, buf);
            vfail(v, "replay-not-idempotent",
                  "after a crash inside replay (%s) and a further replay, file sector %" PRIu64 " (offset %" PRIu64
                  ") differs from the uninterrupted replay%s",
                  how, x[i].sector, x[i].sector * SECTOR, diff);
            return;
        }
    }
    if (s->cd.size != xsize)
        vfail(v, "replay-not-idempotent", "file size %" PRIu64 " after an interrupted replay (%s), %" PRIu64 " without",
              s->cd.size, how, xsize);
}

static void eval_recovery(struct sweeper *s, const struct crash_choice *c, uint64_t cut, const struct trace *rec,
                          const struct sector_val *x, size_t nx, uint64_t xsize)
{
    if (!sw_take(s, c))
        return;
    struct verdict v;
    judge_recovery(s, c, cut, rec, x, nx, xsize, &v);
    if (v.cut != cut)
        v.cut = cut;
    sw_record(s, c, &v);
}

#define RECOVERY_REORDER_MAX 3u  /* exhaustive subsets of a replay epoch up to this many writes */

#define RECOVERY_NESTED 1u       /* first-level cuts per start whose own replay is crashed again */

#define RECOVERY_CUTS 32u        /* cuts of a long replay (taken at a stride) */

static void gen_recovery(struct sweeper *s, uint64_t cut)
{
    if (s->c->on_state)
        return; /* needs the checker's own replay: not exportable */
    for (uint32_t start = 0; start < 2 && !s->stop; start++) {
        if (start == 0 && s->n_pending == 0)
            continue; /* same as the durable start */
        struct crash_choice base = {.model = M_RECOVERY, .epoch = s->epoch, .pattern = start};
        /* The uninterrupted replay, recorded. */
        struct trace rec;
        trace_init(&rec);
        build_recovery_start(s, &base);
        uint32_t replayed = 0;
        int rc = replay_recorded(s, sw_choice_hash(s, &base), &rec, &replayed);
        struct sector_val *x = NULL;
        size_t nx = 0;
        uint64_t xsize = s->cd.size;
        if (rc == 0 && replayed > 0 && snapshot(&s->cd, &rec, &x, &nx) == 0) {
            /* A long replay (a ring full of unapplied entries) is cut at a
             * stride: its first and last writes and every stride-th between,
             * about RECOVERY_CUTS in all, instead of after every one. */
            uint32_t writes = 0;
            for (uint32_t k = 0; k < rec.n_ops; k++)
                writes += rec.ops[k].kind == TR_WRITE || rec.ops[k].kind == TR_TRUNCATE;
            const uint32_t stride = writes > RECOVERY_CUTS + RECOVERY_CUTS / 2 ? writes / RECOVERY_CUTS : 1;
#define CUT_TAKEN(i) ((i) < 4 || (i) + 4 >= writes || (i) % stride == 0)
            uint32_t cuts = 0; /* prefix cuts (after a write or truncate) */
            for (uint32_t k = 1, w = 0; k < rec.n_ops && !s->stop; k++) {
                const struct trace_op *op = &rec.ops[k - 1];
                if (op->kind != TR_WRITE && op->kind != TR_TRUNCATE)
                    continue; /* a cut right after a flush or mark repeats the previous state */
                if (!CUT_TAKEN(w++))
                    continue;
                cuts++;
                struct crash_choice c = base;
                c.index = k;
                eval_recovery(s, &c, cut, &rec, x, nx, xsize);
            }
            /* Each epoch of the replay (writes between two of its flushes),
             * cut where it ends: reordered, each write torn. */
            for (uint32_t k = 1; k <= rec.n_ops && !s->stop; k++) {
                if (k < rec.n_ops && rec.ops[k].kind != TR_FLUSH)
                    continue; /* k: the epoch's end (a flush follows, or the replay ends) */
                uint32_t first, n = rec_epoch(&rec, k, &first);
                if (n == 0)
                    continue;
                /* (dropping the whole epoch is the prefix cut before it) */
                struct crash_choice c = base;
                c.index = k;
                c.target = RS_REORDER;
                if (n <= RECOVERY_REORDER_MAX) {
                    for (uint64_t sub = 1; sub + 1 < (UINT64_C(1) << n) && !s->stop; sub++) {
                        if (!(sub & (sub + 1)))
                            continue; /* a prefix: the prefix cuts hold it */
                        c.subset[0] = sub;
                        eval_recovery(s, &c, cut, &rec, x, nx, xsize);
                    }
                } else {
                    uint64_t st = sw_choice_hash(s, &c);
                    for (int q = 0; q < 4 && !s->stop; q++) {
                        c.subset[0] = sw_mix64(st += q) & ((n >= 64 ? 0 : UINT64_C(1) << n) - 1);
                        eval_recovery(s, &c, cut, &rec, x, nx, xsize);
                    }
                }
                c.subset[0] = 0;
                c.target = RS_TORN;
                uint32_t j = 0;
                for (uint32_t i = first; i < k && !s->stop; i++) {
                    const struct trace_op *op = &rec.ops[i];
                    if (op->kind != TR_WRITE && op->kind != TR_TRUNCATE)
                        continue;
                    for (uint32_t g = 512; op->kind == TR_WRITE && g <= 4096 && !s->stop && CUT_TAKEN(j); g *= 8) {
                        if (op->len <= g)
                            continue;
                        c.bit = j;
                        c.gran = g;
                        c.subset[1] = UINT64_C(0x00000000FFFFFFFF); /* the first half of the units */
                        eval_recovery(s, &c, cut, &rec, x, nx, xsize);
                    }
                    j++;
                }
            }
            /* Nested: a crash inside the replay of a crash inside replay, for
             * the middle first-level cut, in every 4th epoch of the workload. */
            uint32_t seen = 0, want[RECOVERY_NESTED] = {s->epoch % 4 == 0 ? cuts / 2 : UINT32_MAX};
            for (uint32_t k = 1; k < rec.n_ops && !s->stop; k++) {
                const struct trace_op *op = &rec.ops[k - 1];
                if (op->kind != TR_WRITE && op->kind != TR_TRUNCATE)
                    continue;
                uint32_t which = seen++;
                if (which != want[0])
                    continue;
                struct crash_choice c = base;
                c.pattern |= 2;
                c.index = k;
                /* the second replay's length: record it once */
                build_recovery_start(s, &base);
                s->cd.overlay_borrows_temp = 1;
                struct crash_choice pre = c;
                pre.target = RS_PREFIX;
                apply_rec_cut(s, &rec, k, &pre);
                struct trace rec2;
                trace_init(&rec2);
                uint32_t r2 = 0;
                int rc2 = replay_recorded(s, sw_choice_hash(s, &c) ^ 0x2E57, &rec2, &r2);
                size_t n2 = rc2 == 0 ? rec2.n_ops : 0;
                for (uint32_t k2 = 1; k2 < n2 && !s->stop; k2++) {
                    if (rec2.ops[k2 - 1].kind != TR_WRITE && rec2.ops[k2 - 1].kind != TR_TRUNCATE)
                        continue;
                    c.bit = k2;
                    eval_recovery(s, &c, cut, &rec, x, nx, xsize);
                }
                trace_free(&rec2);
            }
#undef CUT_TAKEN
        }
        free(x);
        trace_free(&rec);
    }
}

static void format_recovery(const struct crash_choice *c, char *buf, size_t len)
{
    const char *m = crash_model_names[c->model];
        if (c->pattern & 2)
    snprintf(buf, len, "model=%s epoch=%u start=%s replay-ops=%u then second-replay-ops=%u", m, c->epoch,
                 (c->pattern & 1) ? "durable" : "all-pending", c->index, c->bit);
    else if (c->target == 0)
    snprintf(buf, len, "model=%s epoch=%u start=%s replay-writes-persisted=%u", m, c->epoch,
                 (c->pattern & 1) ? "durable" : "all-pending", c->index);
    else
    snprintf(buf, len, "model=%s epoch=%u start=%s replay-ops=%u in-replay=%s subset=%" PRIx64
                 " write=%u gran=%u mask=%" PRIx64, m, c->epoch, (c->pattern & 1) ? "durable" : "all-pending",
                 c->index, c->target == 1 ? "drop" : c->target == 2 ? "reorder" : "torn", c->subset[0], c->bit,
                 c->gran, c->subset[1]);
}

const struct crash_model_def model_recovery = {
    .name = "recovery",
    .power_loss = 1,
    .exportable = 0,
    .gen = gen_recovery,
    .format = format_recovery,
    .about = "the replay itself crashed: cut after its writes, its epochs reordered or torn, and a nested crash",
};
