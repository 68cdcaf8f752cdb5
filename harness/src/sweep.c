/*
 * sweep.c - crash-state generation and judging (model and invariants in
 * sweep.h and simdisk.h).
 *
 * Guarantees: one pass over the trace; the durable image is a secmap of
 * pointers into the trace (advancing it at a flush costs the pending
 * sectors, nothing more); a state is an overlay on it plus the scratch the
 * replay writes, both emptied for the next state; every choice is a pure
 * function of (sweep seed, epoch, model, index), so sweep_eval_choice()
 * rebuilds a state bit for bit.
 */
#define _GNU_SOURCE
#include "harness/sweep.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness/refjudge.h"
#include "harness/sdata.h"
#include "vhdx/check.h"
#include "vhdx/format.h"

const char *const crash_model_names[M_COUNT] = {"prefix", "drop",      "reorder", "torn",   "stale",
                                                "recovery", "misdirect", "lost",    "bitflip"};

int crash_models_parse(const char *s, unsigned *mask)
{
    *mask = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (!strcmp(tok, "all")) {
            *mask |= M_ALL_MODELS;
            continue;
        }
        if (!strcmp(tok, "power")) {
            *mask |= M_POWER_MODELS;
            continue;
        }
        if (!strcmp(tok, "corruption")) {
            *mask |= M_ALL_MODELS & ~M_POWER_MODELS;
            continue;
        }
        int found = 0;
        for (int m = 0; m < M_COUNT; m++)
            if (!strcmp(tok, crash_model_names[m])) {
                *mask |= 1u << m;
                found = 1;
            }
        if (!found)
            return -1;
    }
    return *mask ? 0 : -1;
}

const char *const sweep_judge_names[JUDGE_COUNT] = {"oracle", "reference", "view", "unwritten", "protocol"};

int sweep_judges_parse(const char *s, unsigned *mask)
{
    *mask = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (!strcmp(tok, "all")) {
            *mask |= JUDGE_ALL;
            continue;
        }
        int found = 0;
        for (int j = 0; j < JUDGE_COUNT; j++)
            if (!strcmp(tok, sweep_judge_names[j])) {
                *mask |= 1u << j;
                found = 1;
            }
        if (!found)
            return -1;
    }
    return *mask ? 0 : -1;
}

void sweep_config_defaults(struct sweep_config *c)
{
    memset(c, 0, sizeof *c);
    c->models = M_ALL_MODELS;
    c->judges = JUDGE_ALL;
    c->unwritten_every = 4;
    c->replayed_every = 4;
    c->seed = 1;
    c->shard_n = 1;
    c->reorder_max = 8;
    c->reorder_samples = 32;
    c->torn_grans = 3;
    c->per_op = 8;
    c->probes = 16;
    c->full_every = 64;
    c->full_max = 4096;
}

/* ---- choices as text and trace key/values ------------------------------------- */
void crash_choice_format(const struct crash_choice *c, char *buf, size_t len)
{
    const char *m = crash_model_names[c->model];
    switch (c->model) {
    case M_PREFIX:
    case M_STALE:
        snprintf(buf, len, "model=%s epoch=%u persisted=%u", m, c->epoch, c->index);
        break;
    case M_DROP:
        snprintf(buf, len, "model=%s epoch=%u", m, c->epoch);
        break;
    case M_REORDER:
        snprintf(buf, len, "model=%s epoch=%u subset=%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64, m,
                 c->epoch, c->subset[3], c->subset[2], c->subset[1], c->subset[0]);
        break;
    case M_TORN:
        snprintf(buf, len, "model=%s epoch=%u write=%u gran=%u pattern=%u", m, c->epoch, c->index, c->gran,
                 c->pattern);
        break;
    case M_RECOVERY:
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
        break;
    case M_MISDIRECT:
        snprintf(buf, len, "model=%s epoch=%u write=%u to=%" PRIu64, m, c->epoch, c->index, c->target);
        break;
    case M_LOST:
        snprintf(buf, len, "model=%s epoch=%u lost-op=%" PRIu64, m, c->epoch, c->target);
        break;
    case M_BITFLIP:
        snprintf(buf, len, "model=%s epoch=%u offset=%" PRIu64 " bit=%u", m, c->epoch, c->target, c->bit);
        break;
    default:
        snprintf(buf, len, "model=?");
    }
}

int crash_choice_to_trace(const struct crash_choice *c, struct trace *t)
{
    char v[128];
    int rc = trace_set_choice(t, "model", crash_model_names[c->model]);
#define PUT(key, fmt, val)                                   \
    do {                                                     \
        snprintf(v, sizeof v, fmt, val);                     \
        if (rc == 0)                                         \
            rc = trace_set_choice(t, key, v);                \
    } while (0)
    PUT("epoch", "%u", c->epoch);
    PUT("index", "%u", c->index);
    PUT("gran", "%u", c->gran);
    PUT("pattern", "%u", c->pattern);
    for (int i = 0; i < 4; i++) {
        char key[16];
        snprintf(key, sizeof key, "subset%d", i);
        PUT(key, "%" PRIu64, c->subset[i]);
    }
    PUT("target", "%" PRIu64, c->target);
    PUT("bit", "%u", c->bit);
#undef PUT
    return rc;
}

int crash_choice_from_trace(const struct trace *t, struct crash_choice *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    const char *m = trace_get_choice(t, "model");
    if (!m) {
        snprintf(err, errlen, "the trace carries no crash choice (not a reproducer)");
        return -1;
    }
    int found = 0;
    for (int i = 0; i < M_COUNT; i++)
        if (!strcmp(m, crash_model_names[i])) {
            c->model = (enum crash_model)i;
            found = 1;
        }
    if (!found) {
        snprintf(err, errlen, "unknown crash model '%s' in the reproducer", m);
        return -1;
    }
#define GET(key, field, cast)                                           \
    do {                                                                \
        const char *s_ = trace_get_choice(t, key);                      \
        if (!s_) {                                                      \
            snprintf(err, errlen, "reproducer choice lacks '%s'", key); \
            return -1;                                                  \
        }                                                               \
        c->field = (cast)strtoull(s_, NULL, 10);                        \
    } while (0)
    GET("epoch", epoch, uint32_t);
    GET("index", index, uint32_t);
    GET("gran", gran, uint32_t);
    GET("pattern", pattern, uint32_t);
    GET("subset0", subset[0], uint64_t);
    GET("subset1", subset[1], uint64_t);
    GET("subset2", subset[2], uint64_t);
    GET("subset3", subset[3], uint64_t);
    GET("target", target, uint64_t);
    GET("bit", bit, uint32_t);
#undef GET
    return 0;
}

/* ---- the sweeper ----------------------------------------------------------------- */
struct undo_rec {
    uint64_t sector;
    const uint8_t *prev; /* NULL: absent before */
    uint64_t op;         /* trace index of the write */
};

struct sweeper {
    const struct trace *t;
    const struct sweep_config *c;
    struct sweep_stats *st;
    struct oracle oracle;
    int have_oracle;
    struct secmap D;          /* durable image */
    uint64_t dsize;           /* durable size */
    struct crashdisk cd;      /* the state device */
    uint32_t epoch;           /* current epoch */
    uint32_t *pending;        /* trace indices of W/T in the epoch */
    size_t prefix_len;        /* pending ops held by the crash disk's prefix layer */
    /* A structural class: states identical below the first payload block
     * share one open (and its replay) and one check. */
    int share;                /* sharing enabled (workload traces of this engine) */
    int sh_active;            /* a class handle is open */
    uint64_t sh_sig;          /* its signature */
    struct subject_handle *sh_h; /* its handle */
    struct subject_info sh_in;
    struct verdict sh_v;      /* its structural verdict */
    struct subject_handle *sh_ro; /* its read-only handle (JUDGE_VIEW; NULL if refused or off) */
    uint64_t sh_rng, sh_ro_rng; /* the GUID streams of its handles (live as long as they do) */
    const struct subject_ops *subj; /* the implementation under test */
    struct refjudge sh_ref;   /* its reference reading (JUDGE_REF) */
    uint64_t epoch_start;     /* trace index of the current epoch's first op */
    struct ref_memo *memo;    /* the reference's checksum memo for this trace (JUDGE_REF) */
    uint8_t *unwritten_buf;   /* one index unit and its sector mask (JUDGE_UNWRITTEN) */
    uint64_t unwritten_cap;
    struct crash_choice sh_first; /* the first state of the class */
    size_t n_pending, cap_pending;
    struct undo_rec *undo;    /* what the last flush overwrote (the `lost` model) */
    size_t n_undo, cap_undo;
    uint64_t log_offset;      /* from the base image's current header */
    uint32_t log_length;
    uint64_t state_index;     /* global, for sharding */
    uint64_t total_flushes;
    double t0, last_progress;
    int stop;
    int tty;
    /* target single-choice evaluation (repro) */
    const struct crash_choice *want;
    struct verdict *want_verdict;
    int want_found;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t mix64(uint64_t x)
{
    x += UINT64_C(0x9E3779B97F4A7C15);
    x = (x ^ (x >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94D049BB133111EB);
    return x ^ (x >> 31);
}

uint64_t crash_choice_hash(const struct crash_choice *c, uint64_t start)
{
    uint64_t h = mix64(start);
    h = mix64(h ^ c->model);
    h = mix64(h ^ c->epoch);
    h = mix64(h ^ c->index);
    h = mix64(h ^ ((uint64_t)c->gran << 32 | c->pattern));
    for (int i = 0; i < 4; i++)
        h = mix64(h ^ c->subset[i]);
    h = mix64(h ^ c->target);
    return mix64(h ^ c->bit);
}

/* A hash of the choice coordinates: seeds the engine's GUIDs and the
 * oracle's sampling for this state. */
static uint64_t choice_hash(const struct sweeper *s, const struct crash_choice *c)
{
    return crash_choice_hash(c, s->c->seed ^ 0xC0FFEE);
}

int crash_choice_equal(const struct crash_choice *a, const struct crash_choice *b)
{
    return a->model == b->model && a->epoch == b->epoch && a->index == b->index && a->gran == b->gran &&
           a->pattern == b->pattern && !memcmp(a->subset, b->subset, sizeof a->subset) && a->target == b->target &&
           a->bit == b->bit;
}

static const struct trace_op *pend(const struct sweeper *s, size_t i)
{
    return &s->t->ops[s->pending[i]];
}

/* Full reset of the state device (drops the shared prefix too). */
static void reset_all(struct sweeper *s)
{
    crashdisk_reset(&s->cd, s->dsize);
    s->prefix_len = 0;
}

/* Makes the state device base + p1..pi (prefix layer), nothing else; the
 * prefix is extended incrementally when i grows. */
static void prefix_to(struct sweeper *s, size_t i)
{
    if (i < s->prefix_len)
        reset_all(s);
    crashdisk_reset_keep_prefix(&s->cd);
    for (; s->prefix_len < i; s->prefix_len++) {
        const struct trace_op *op = pend(s, s->prefix_len);
        if (op->kind == TR_WRITE)
            crashdisk_prefix_write(&s->cd, op->off, op->data, op->len);
        else if (op->kind == TR_TRUNCATE)
            crashdisk_prefix_truncate(&s->cd, op->off);
    }
}

/* Applies one pending op to the overlay of the state device. */
static int overlay_apply(struct crashdisk *cd, const struct trace_op *op)
{
    if (op->kind == TR_WRITE)
        return crashdisk_overlay_write(cd, op->off, op->data, op->len);
    if (op->kind == TR_TRUNCATE) {
        if (op->off < cd->size) {
            uint64_t first = (op->off + SECTOR - 1) / SECTOR;
            secmap_drop_from(&cd->overlay, first);
            if (first < cd->zero_from)
                cd->zero_from = first;
        }
        cd->size = op->off;
    }
    return 0;
}

/* Writes the current state image (all layers, sparse) to a file. */
int crashdisk_save_image(struct crashdisk *cd, const char *path)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -errno;
    uint8_t buf[SECTOR];
    int rc = 0;
    for (uint64_t off = 0; off < cd->size && rc == 0; off += SECTOR) {
        size_t n = cd->size - off < SECTOR ? (size_t)(cd->size - off) : SECTOR;
        crashdisk_read(cd, buf, n, off);
        if (!memcmp(buf, SECTOR_ZERO, n) && off + n < cd->size)
            continue; /* leave a hole */
        if (fseeko(f, (off_t)off, SEEK_SET) != 0 || fwrite(buf, 1, n, f) != n)
            rc = -EIO;
    }
    if (fclose(f) != 0 && rc == 0)
        rc = -EIO;
    if (rc == 0 && truncate(path, (off_t)cd->size) != 0)
        rc = -errno;
    return rc;
}

/* ---- verdict helpers ----------------------------------------------------------- */
#define vfail verdict_fail_named

static void hexline(char *out, size_t len, const uint8_t *p, size_t off)
{
    size_t n = (size_t)snprintf(out, len, "%04zx:", off);
    for (int i = 0; i < 16 && n < len; i++)
        n += (size_t)snprintf(out + n, len - n, " %02x", p[off + i]);
}

/* A minimal diff of a sector: up to 4 differing 16-byte lines. */
static void sector_diff(char *out, size_t len, const uint8_t *want, const uint8_t *got)
{
    size_t n = 0;
    int shown = 0;
    for (size_t off = 0; off < 512 && shown < 4 && n < len; off += 16) {
        if (memcmp(want + off, got + off, 16) == 0)
            continue;
        char a[80], b[80];
        hexline(a, sizeof a, want, off);
        hexline(b, sizeof b, got, off);
        n += (size_t)snprintf(out + n, len - n, "\n  expected %s\n  found    %s", a, b);
        shown++;
    }
}

static void data_violation(struct sweeper *s, struct verdict *v, uint64_t sector, enum oracle_violation ov,
                           const struct sector_expect *e, const uint8_t *got)
{
    char found[128], later[256] = "";
    sdata_describe(got, found, sizeof found);
    size_t n = 0;
    for (int i = 0; i < e->n_later && n < sizeof later; i++)
        n += (size_t)snprintf(later + n, sizeof later - n, "%s%s%u", i ? ", " : "", e->later[i] ? "write " : "discard",
                              e->later[i]);
    uint8_t want[512];
    oracle_sector_value(&s->oracle, sector, e->acked_id, want);
    char diff[700] = "";
    sector_diff(diff, sizeof diff, want, got);
    char inv[48];
    snprintf(inv, sizeof inv, "data:%s", oracle_violation_name(ov));
    char acked[64];
    if (e->acked_id)
        snprintf(acked, sizeof acked, "write %u", e->acked_id);
    else
        snprintf(acked, sizeof acked, "%s", e->acked_is_discard ? "discard (zeros)" : "zeros (never written)");
    vfail(v, inv, "virtual sector %" PRIu64 " (offset %" PRIu64 "): acknowledged value %s%s%s%s; found %s%s", sector,
          sector * 512, acked, e->n_later ? "; in flight: " : "", later, e->more_later ? ", ..." : "", found, diff);
    v->bad_sector = sector;
}

/* splitmix64 step, for choosing odd ranges */
static uint64_t rmix(uint64_t *x)
{
    *x += UINT64_C(0x9E3779B97F4A7C15);
    return mix64(*x);
}

/* One read through the subject, compared with the read-only view and the
 * reference.  Returns the subject's rc. */
static int read_compared(struct sweeper *s, struct subject_handle *h, struct subject_handle *ro, struct refjudge *rj,
                         uint64_t off,
                         uint8_t *buf, uint8_t *other, size_t len, struct verdict *v)
{
    int rc = s->subj->read(h, off, buf, len);
    if (rc != 0) {
        verdict_fail(v, INV_READ_FAILED, "reading %zu bytes at virtual offset %" PRIu64 " after a successful open: %s",
                     len, off, s->subj->last_error(h));
        return rc;
    }
    if (ro && (s->c->judges & JUDGE_VIEW)) {
        int rrc = s->subj->read(ro, off, other, len);
        if (rrc != 0)
            verdict_fail(v, INV_VIEW_RO_RW, "the read-only open fails a read of %zu bytes at %" PRIu64
                         " that the read-write open serves: %s", len, off, s->subj->last_error(ro));
        else if (memcmp(buf, other, len) != 0) {
            size_t i = 0;
            while (buf[i] == other[i])
                i++;
            verdict_fail(v, INV_VIEW_RO_RW,
                         "virtual offset %" PRIu64 " (a read of %zu bytes at %" PRIu64 "): read-write %02x, read-only "
                         "(replayed in memory) %02x",
                         off + i, len, off, buf[i], other[i]);
        }
    }
    if (rj && (s->c->judges & JUDGE_REF))
        refjudge_read(rj, off, buf, len, v);
    return 0;
}

/* Blocks the epoch's operations touched: every sector of them that no
 * write ever covered must read zeros (a never-written part of an allocated
 * block, or a block a bug made visible).  Whole index units nobody wrote
 * are compared with a zero page at once. */
static void judge_unwritten(struct sweeper *s, struct subject_handle *h, const struct subject_info *in, uint64_t cut,
                            struct verdict *v)
{
    const struct oracle *o = &s->oracle;
    if (!o->begin_sorted || !v->ok)
        return;
    /* the ops begun in [epoch_start, cut) */
    size_t lo = 0, hi = o->n_ops;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (o->ops[mid].begin < s->epoch_start)
            lo = mid + 1;
        else
            hi = mid;
    }
    enum { MAX_BLOCKS = 4, MAX_UNITS = 32 };
    uint64_t blocks[MAX_BLOCKS];
    int nb = 0;
    const uint64_t bs = in->block_size;
    for (size_t i = lo; i < o->n_ops && o->ops[i].begin < cut && nb < MAX_BLOCKS; i++) {
        const struct oracle_op *op = &o->ops[i];
        if ((op->kind != VOP_WRITE && op->kind != VOP_DISCARD) || !op->vlen)
            continue;
        for (uint64_t b = op->voff / bs; b * bs < op->voff + op->vlen && nb < MAX_BLOCKS; b++) {
            int seen = 0;
            for (int q = 0; q < nb; q++)
                seen |= blocks[q] == b;
            if (!seen)
                blocks[nb++] = b;
        }
    }
    const uint64_t us = o->block_size; /* the oracle's index unit: 64 KiB, more on disks past 16 GiB */
    if (s->unwritten_cap < us) {
        uint8_t *grown = realloc(s->unwritten_buf, us + us / 512);
        if (!grown)
            return;
        s->unwritten_buf = grown;
        s->unwritten_cap = us;
    }
    uint8_t *unit = s->unwritten_buf, *mask = s->unwritten_buf + us;
    for (int q = 0; q < nb && v->ok; q++) {
        uint64_t first = blocks[q] * bs / us, n = bs / us;
        uint64_t step = n > MAX_UNITS ? n / MAX_UNITS : 1; /* big blocks: spread samples */
        for (uint64_t u = first; u < first + n && v->ok; u += step) {
            if (u * us >= in->virtual_size)
                break;
            size_t len = u * us + us > in->virtual_size ? (size_t)(in->virtual_size - u * us) : (size_t)us;
            if (s->subj->read(h, u * us, unit, len) != 0)
                return; /* read-failed is the data judge's to report */
            int any = oracle_written_mask(o, u, cut, mask);
            if (!any && memcmp(unit, SECTOR_ZERO, 512) == 0 && memcmp(unit, unit + 512, len - 512) == 0)
                continue;
            for (size_t k = 0; k < len / 512; k++)
                if (!mask[k] && memcmp(unit + k * 512, SECTOR_ZERO, 512) != 0) {
                    char found[160];
                    sdata_describe(unit + k * 512, found, sizeof found);
                    uint64_t sec = u * us / 512 + k;
                    verdict_fail(v, INV_UNWRITTEN_NOT_ZERO,
                                 "virtual sector %" PRIu64 " (offset %" PRIu64 ", block %" PRIu64
                                 ") was never written, yet reads %s",
                                 sec, sec * 512, blocks[q], found);
                    v->bad_sector = sec;
                    break;
                }
        }
    }
}

/* Data verdict of the current image through an open handle (and the
 * read-only one and the reference, when those judges run). */
static void judge_data(struct sweeper *s, struct subject_handle *h, struct subject_handle *ro, struct refjudge *rj,
                       const struct subject_info *in, uint64_t cut, uint64_t hash, int corruption, struct verdict *v)
{
    if (!s->have_oracle || !v->ok)
        return;
    uint64_t *sectors = NULL;
    size_t n = 0;
    int full = s->c->full_every && hash % s->c->full_every == 0;
    int orc = !full ? oracle_check_set(&s->oracle, cut, s->c->per_op, s->c->probes, hash, &sectors, &n)
              : s->c->full_max ? oracle_wide_set(&s->oracle, cut, s->c->full_max, hash, &sectors, &n)
                               : oracle_all_written(&s->oracle, cut, &sectors, &n);
    if (orc != 0)
        return;
    uint8_t buf[512], other[512];
    for (size_t i = 0; i < n && v->ok; i++) {
        if (sectors[i] * 512 >= in->virtual_size)
            continue;
        if (read_compared(s, h, ro, rj, sectors[i] * 512, buf, other, sizeof buf, v) != 0)
            break;
        if (!(s->c->judges & JUDGE_ORACLE))
            continue;
        struct sector_expect e;
        enum oracle_violation ov = oracle_judge_sector(&s->oracle, sectors[i], cut, buf,
                                                       corruption ? ORACLE_CORRUPTION : ORACLE_POWER_LOSS, &e);
        if (ov != OV_OK)
            data_violation(s, v, sectors[i], ov, &e, buf);
    }
    /* reads at odd offsets and lengths, near the sampled sectors */
    if (v->ok && n && (s->c->judges & (JUDGE_VIEW | JUDGE_REF))) {
        static uint8_t big[2][12288];
        uint64_t x = hash;
        for (int i = 0; i < 3 && v->ok; i++) {
            uint64_t base = sectors[rmix(&x) % n] * 512;
            uint64_t off = base + rmix(&x) % 1024;
            off = off > 700 ? off - rmix(&x) % 700 : off;
            size_t len = 1 + (size_t)(rmix(&x) % sizeof big[0]);
            if (off >= in->virtual_size)
                continue;
            if (len > in->virtual_size - off)
                len = (size_t)(in->virtual_size - off);
            read_compared(s, h, ro, rj, off, big[0], big[1], len, v);
        }
    }
    free(sectors);
    if (v->ok && (s->c->judges & JUDGE_UNWRITTEN) && s->c->unwritten_every &&
        (hash >> 7) % s->c->unwritten_every == 0)
        judge_unwritten(s, h, in, cut, v);
}

/* The subject's own checker on the image as it is now (after replay). */
static void judge_check(struct sweeper *s, struct verdict *v)
{
    if (!s->subj->check)
        return;
    char why[512] = "";
    int rc = s->subj->check(crashdisk_bdev(&s->cd), why, sizeof why);
    if (rc < 0)
        vfail(v, "check-failed", "the checker could not run: %s", strerror(-rc));
    else if (rc == 1)
        vfail(v, "check-failed", "after replay the checker found %s", why);
    else if (rc == 2)
        vfail(v, "log-guid-not-cleared", "after replay the on-disk header still names a log");
}

static void record(struct sweeper *s, const struct crash_choice *c, const struct verdict *v);

/* The read-only handle and the reference reading of a class (or of one
 * unshared state) end with it. */
static void class_end(struct sweeper *s, struct subject_handle **ro, struct refjudge *rj)
{
    if (*ro)
        s->subj->close(*ro);
    *ro = NULL;
    refjudge_end(rj);
}

/* Closes a class handle.  A session that only replayed writes nothing at
 * close; anything else is an engine bug, reported against the class's first
 * state. */
static void shared_close(struct sweeper *s)
{
    if (!s->sh_active)
        return;
    class_end(s, &s->sh_ro, &s->sh_ref);
    uint64_t w = s->cd.writes + s->cd.truncates;
    int rc = s->sh_h ? s->subj->close(s->sh_h) : 0;
    s->sh_active = 0;
    s->sh_h = NULL;
    if ((rc != 0 || s->cd.writes + s->cd.truncates != w) && (s->c->judges & JUDGE_ORACLE)) {
        struct verdict v = s->sh_v;
        v.ok = 1;
        vfail(&v, "close-failed", rc ? "closing the replayed image failed: %s"
                                      : "closing an unmodified session wrote to the image (%s)",
              rc ? s->subj->last_error(NULL) : "no error returned");
        record(s, &s->sh_first, &v);
    }
}

/* Judges the image currently built in s->cd.  With allow_share, a state
 * whose structural signature equals the open class reuses its handles,
 * reference reading and structural verdict, and gets only its own data
 * verdict. */
static void judge_share(struct sweeper *s, const struct crash_choice *ch, uint64_t cut, struct verdict *v,
                        int allow_share)
{
    const int corruption = ch->model >= M_MISDIRECT;
    const unsigned judges = s->c->judges;
    const uint64_t hash = choice_hash(s, ch);
    const int share = s->share && allow_share;
    const uint64_t sig = share ? crashdisk_signature(&s->cd) ^ (uint64_t)corruption : 0;
    if (share && s->sh_active && s->sh_sig == sig) {
        *v = s->sh_v;
        v->cut = cut;
        if (v->ok && s->sh_h)
            judge_data(s, s->sh_h, s->sh_ro, &s->sh_ref, &s->sh_in, cut, hash, corruption, v);
        return;
    }
    shared_close(s);
    verdict_init(v, cut);
    /* the reference reads the image before any open touches it */
    struct refjudge rj;
    memset(&rj, 0, sizeof rj);
    const struct ref_src before = refjudge_src_built(&s->cd, s->memo);
    if ((judges & JUDGE_REF) && refjudge_begin(&rj, &before) != 0)
        fprintf(stderr, "sweep: the reference ran out of memory; state judged without it\n");
    /* the GUID streams live in the sweeper: a shared handle outlives this call */
    s->sh_rng = hash;
    s->sh_ro_rng = hash ^ 0x5EAD;
    struct subject_handle *ro = NULL;
    int ro_rc = 0;
    if (judges & JUDGE_VIEW) {
        ro_rc = s->subj->open(crashdisk_bdev(&s->cd), SUBJECT_RDONLY, &s->sh_ro_rng, 0, &ro);
        if (ro_rc != 0)
            ro = NULL;
    }
    struct subject_handle *h = NULL;
    s->st->opens++;
    int rc = s->subj->open(crashdisk_bdev(&s->cd), 0, &s->sh_rng, 0, &h);
    v->open_rc = rc;
    struct subject_info in;
    memset(&in, 0, sizeof in);
    const int format_refusal = rc != 0 && subject_is_refusal(rc);
    if (rc != 0) {
        if (!(corruption && format_refusal) && (judges & JUDGE_ORACLE))
            vfail(v, "open-refused", "the crash image did not open: %s", s->subj->last_error(NULL));
    } else {
        s->subj->info(h, &in);
        v->replayed = in.replayed ? in.replayed_entries : 0;
        if (in.replayed)
            s->st->replays++;
        if (!in.log_clean && (judges & JUDGE_ORACLE))
            vfail(v, "log-guid-not-cleared", "after replay the current header still carries a LogGuid");
        if (v->ok && (judges & JUDGE_ORACLE))
            judge_check(s, v);
    }
    if (judges & JUDGE_REF) {
        refjudge_open(&rj, rc, format_refusal, rc == 0 ? &in : NULL, !corruption, v);
        if (rc == 0 && in.replayed) {
            const struct ref_src after = refjudge_src_now(&s->cd, s->memo);
            const int reread = s->c->replayed_every && (hash >> 13) % s->c->replayed_every == 0;
            refjudge_replayed(&rj, &after, reread, v);
        }
    }
    if ((judges & JUDGE_VIEW) && (ro_rc == 0) != (rc == 0))
        verdict_fail(v, INV_VIEW_RO_RW, "the read-only open %s (%s) and the read-write open %s (%s)",
                     ro_rc == 0 ? "succeeded" : "refused the image", ro_rc ? strerror(-ro_rc) : "ok",
                     rc == 0 ? "succeeded" : "refused it", rc ? strerror(-rc) : "ok");
    struct verdict structural = *v;
    if (h)
        judge_data(s, h, ro, &rj, &in, cut, hash, corruption, v);
    if (share) {
        s->sh_active = 1;
        s->sh_sig = sig;
        s->sh_h = h; /* may be NULL: a refused class, the refusal itself is shared */
        s->sh_in = in;
        s->sh_v = structural;
        s->sh_first = *ch;
        s->sh_ro = ro;
        s->sh_ref = rj;
        return;
    }
    class_end(s, &ro, &rj);
    if (h) {
        uint64_t w = s->cd.writes + s->cd.truncates;
        rc = s->subj->close(h);
        if (judges & JUDGE_ORACLE) {
            if (rc != 0)
                vfail(v, "close-failed", "closing the replayed image failed: %s", s->subj->last_error(NULL));
            else if (s->cd.writes + s->cd.truncates != w)
                vfail(v, "close-failed", "closing an unmodified session wrote to the image");
        }
    }
}

static void judge(struct sweeper *s, const struct crash_choice *ch, uint64_t cut, struct verdict *v)
{
    judge_share(s, ch, cut, v, 1);
}

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
    shared_close(s);
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
    reset_all(s);
    if ((c->pattern & 1) == 0)
        for (size_t i = 0; i < s->n_pending; i++) {
            int rc = overlay_apply(&s->cd, pend(s, i));
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
        overlay_apply(&s->cd, &rec->ops[i]);
    if (c->target == RS_PREFIX || c->target == RS_DROP)
        return;
    uint32_t j = 0; /* index among the epoch's pending writes/truncates */
    for (uint32_t i = first; i < k && i < rec->n_ops; i++) {
        const struct trace_op *op = &rec->ops[i];
        if (op->kind != TR_WRITE && op->kind != TR_TRUNCATE)
            continue;
        if (c->target == RS_REORDER) {
            if (j < 64 && (c->subset[0] >> j & 1))
                overlay_apply(&s->cd, op);
        } else if (j < c->bit) {
            overlay_apply(&s->cd, op);
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
    int rc = replay_recorded(s, choice_hash(s, c) ^ 0x2E57, &rec2, &replayed);
    if (rc == 0) {
        build_recovery_start(s, &start);
        s->cd.overlay_borrows_temp = 1;
        apply_rec_cut(s, rec, c->index, &first);
        if (c->bit > rec2.n_ops)
            rc = -ENOENT;
        for (uint32_t i = 0; rc == 0 && i < c->bit; i++)
            overlay_apply(&s->cd, &rec2.ops[i]);
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
    judge_share(s, c, cut, v, 0);
    if (!v->ok)
        return;
    /* judge_share() replayed and closed; compare with the uninterrupted replay. */
    char how[96];
    snprintf(how, sizeof how, "%s cut after %u of %zu replay operations%s", recovery_sub_names[c->target & 3],
             c->index, rec->n_ops, (c->pattern & 2) ? ", then a second cut inside the second replay" : "");
    uint8_t buf[512];
    for (size_t i = 0; i < nx; i++) {
        crashdisk_read(&s->cd, buf, SECTOR, x[i].sector * SECTOR);
        if (memcmp(buf, x[i].bytes, SECTOR) != 0) {
            char diff[700] = "";
            sector_diff(diff, sizeof diff, x[i].bytes, buf);
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

/* ---- evaluating and counting a state -------------------------------------------- */
static int save_and_report(struct sweeper *s, const struct crash_choice *c, const struct verdict *v)
{
    char path[4096] = "";
    if (s->c->repro_dir) {
        char desc[64], err[512];
        snprintf(desc, sizeof desc, "%s-e%u-i%u-p%u", crash_model_names[c->model], c->epoch, c->index, c->pattern);
        const char *wl = trace_get_meta(s->t, "workload");
        snprintf(path, sizeof path, "%s/repro-%s-s%" PRIu64 "-%s-%08" PRIx64 ".pctrace", s->c->repro_dir,
                 wl ? wl : "trace", s->t->seed, desc, choice_hash(s, c) & 0xFFFFFFFFu);
        if (sweep_save_repro(s->t, c, v, path, err, sizeof err) != 0) {
            fprintf(stderr, "sweep: cannot save reproducer: %s\n", err);
            path[0] = '\0';
        }
    }
    if (s->c->on_violation && s->c->on_violation(s->c->ctx, c, v, path[0] ? path : NULL))
        s->stop = 1;
    return 0;
}

static void progress(struct sweeper *s, int final)
{
    if (s->c->quiet || !s->tty)
        return;
    double t = now();
    if (!final && t - s->last_progress < 0.5)
        return;
    s->last_progress = t;
    double el = t - s->t0;
    double frac = s->total_flushes ? (double)s->epoch / (double)(s->total_flushes + 1) : 0;
    double eta = frac > 0.01 ? el / frac - el : 0;
    fprintf(stderr, "\r[sweep] epoch %u/%" PRIu64 "  states %" PRIu64 " (%.0f/s)  violations %" PRIu64 "  ETA %.0fs   %s",
            s->epoch, s->total_flushes + 1, s->st->states, el > 0 ? (double)s->st->states / el : 0.0,
            s->st->violations, eta, final ? "\n" : "");
    fflush(stderr);
}

static int limits_hit(struct sweeper *s)
{
    const struct sweep_config *c = s->c;
    if ((c->max_states && s->st->states >= c->max_states) ||
        (c->max_violations && s->st->violations >= c->max_violations) ||
        (c->max_seconds > 0 && now() - s->t0 >= c->max_seconds) || (c->cancel && *c->cancel)) {
        s->st->stopped_early = 1;
        s->stop = 1;
    }
    return s->stop;
}

/* Should this generated state be judged here (shard, repro target)? */
static int take(struct sweeper *s, const struct crash_choice *c)
{
    if (s->stop)
        return 0;
    if (s->want)
        return crash_choice_equal(s->want, c);
    uint64_t idx = s->state_index++;
    if (idx % s->c->shard_n != s->c->shard_k) {
        s->st->skipped++;
        return 0;
    }
    return 1;
}

static void record(struct sweeper *s, const struct crash_choice *c, const struct verdict *v)
{
    if (s->want) {
        *s->want_verdict = *v;
        s->want_found = 1;
        s->stop = 1;
        return;
    }
    s->st->states++;
    s->st->states_per_model[c->model]++;
    if (!v->ok) {
        s->st->violations++;
        s->st->violations_per_model[c->model]++;
        save_and_report(s, c, v);
    }
    progress(s, 0);
    limits_hit(s);
}

/* ---- per-model generators --------------------------------------------------------- */
static void eval_simple(struct sweeper *s, const struct crash_choice *c, uint64_t cut)
{
    struct verdict v;
    if (s->c->on_state) {
        if (s->c->on_state(s->c->ctx, c, cut, &s->cd))
            s->stop = 1;
        s->st->states++;
        s->st->states_per_model[c->model]++;
        limits_hit(s);
        return;
    }
    if (s->want && s->c->save_image) {
        int rc = crashdisk_save_image(&s->cd, s->c->save_image);
        if (rc)
            fprintf(stderr, "sweep: cannot save the crash image to %s: %s\n", s->c->save_image, strerror(-rc));
    }
    judge(s, c, cut, &v);
    record(s, c, &v);
}

static void gen_drop(struct sweeper *s, uint64_t cut)
{
    struct crash_choice c = {.model = M_DROP, .epoch = s->epoch};
    if (take(s, &c)) {
        reset_all(s);
        eval_simple(s, &c, cut);
    }
}

static void gen_prefix(struct sweeper *s, uint64_t cut)
{
    for (size_t i = 1; i <= s->n_pending && !s->stop; i++) {
        struct crash_choice c = {.model = M_PREFIX, .epoch = s->epoch, .index = (uint32_t)i};
        if (!take(s, &c))
            continue;
        prefix_to(s, i);
        eval_simple(s, &c, cut);
    }
}

static int is_prefix_subset(const uint64_t *sub, size_t n)
{
    /* bits 0..j-1 set and nothing else, for some j */
    size_t j = 0;
    while (j < n && (sub[j / 64] >> (j % 64) & 1))
        j++;
    for (size_t k = j; k < n; k++)
        if (sub[k / 64] >> (k % 64) & 1)
            return 0;
    return 1;
}

static void eval_subset(struct sweeper *s, const uint64_t *sub, uint64_t cut)
{
    struct crash_choice c = {.model = M_REORDER, .epoch = s->epoch};
    memcpy(c.subset, sub, sizeof c.subset);
    if (!take(s, &c))
        return;
    reset_all(s);
    for (size_t k = 0; k < s->n_pending; k++)
        if (sub[k / 64] >> (k % 64) & 1)
            overlay_apply(&s->cd, pend(s, k));
    eval_simple(s, &c, cut);
}

static void gen_reorder(struct sweeper *s, uint64_t cut)
{
    size_t n = s->n_pending < 256 ? s->n_pending : 256;
    if (n < 2)
        return;
    if (n <= s->c->reorder_max) {
        for (uint64_t m = 1; m < (UINT64_C(1) << n) - 1 && !s->stop; m++) {
            uint64_t sub[4] = {m, 0, 0, 0};
            if (!is_prefix_subset(sub, n))
                eval_subset(s, sub, cut);
        }
        return;
    }
    uint64_t st = mix64(s->c->seed ^ ((uint64_t)s->epoch << 20) ^ 0x5EB5E7);
    for (uint32_t k = 0; k < s->c->reorder_samples && !s->stop; k++) {
        uint64_t sub[4] = {0, 0, 0, 0};
        for (size_t b = 0; b < n; b++) {
            st = mix64(st);
            if (st & 1)
                sub[b / 64] |= UINT64_C(1) << (b % 64);
        }
        if (!is_prefix_subset(sub, n))
            eval_subset(s, sub, cut);
    }
}

/* Torn patterns over `units` units: which units persisted. */
#define TORN_PATTERNS 7
static void torn_mask(uint32_t pattern, size_t units, uint64_t seed, uint8_t *mask)
{
    memset(mask, 0, (units + 7) / 8);
    uint64_t st = seed;
    for (size_t u = 0; u < units; u++) {
        int on;
        switch (pattern) {
        case 0: on = u < units / 2; break;        /* first half */
        case 1: on = u >= units / 2; break;       /* second half */
        case 2: on = u % 2 == 0; break;           /* every other */
        case 3: on = u == 0; break;               /* only the first unit */
        case 4: on = u + 1 < units; break;        /* all but the last */
        default: st = mix64(st); on = st & 1; break; /* seeded */
        }
        if (on)
            mask[u / 8] |= (uint8_t)(1u << (u % 8));
    }
}

/* Every pending write torn at once with the same pattern (index = |P|). */
static void gen_torn_all(struct sweeper *s, uint64_t cut)
{
    static const uint32_t grans[2] = {512, 4096};
    size_t writes = 0;
    for (size_t i = 0; i < s->n_pending; i++)
        writes += pend(s, i)->kind == TR_WRITE;
    if (writes < 2)
        return; /* one write: the per-write states cover it */
    for (int g = 0; g < 2 && !s->stop; g++) {
        if (!(s->c->torn_grans & (1u << g)))
            continue;
        for (uint32_t p = 0; p < TORN_PATTERNS && !s->stop; p++) {
            struct crash_choice c = {.model = M_TORN, .epoch = s->epoch, .index = (uint32_t)s->n_pending,
                                     .gran = grans[g], .pattern = p};
            if (!take(s, &c))
                continue;
            reset_all(s);
            for (size_t i = 0; i < s->n_pending; i++) {
                const struct trace_op *op = pend(s, i);
                if (op->kind != TR_WRITE) {
                    overlay_apply(&s->cd, op);
                    continue;
                }
                size_t units = (op->len + grans[g] - 1) / grans[g];
                uint8_t *mask = malloc((units + 7) / 8);
                if (!mask)
                    return;
                torn_mask(p, units, choice_hash(s, &c) ^ i, mask);
                crashdisk_overlay_write_torn(&s->cd, op->off, op->data, op->len, grans[g], mask);
                free(mask);
            }
            eval_simple(s, &c, cut);
        }
    }
}

static void gen_torn(struct sweeper *s, uint64_t cut)
{
    static const uint32_t grans[2] = {512, 4096};
    gen_torn_all(s, cut);
    for (size_t i = 0; i < s->n_pending && !s->stop; i++) {
        const struct trace_op *op = pend(s, i);
        if (op->kind != TR_WRITE)
            continue;
        for (int g = 0; g < 2 && !s->stop; g++) {
            if (!(s->c->torn_grans & (1u << g)))
                continue;
            size_t units = (op->len + grans[g] - 1) / grans[g];
            if (units < 2)
                continue;
            uint8_t *mask = malloc((units + 7) / 8);
            if (!mask)
                return;
            for (uint32_t p = 0; p < TORN_PATTERNS && !s->stop; p++) {
                struct crash_choice c = {.model = M_TORN, .epoch = s->epoch, .index = (uint32_t)i, .gran = grans[g],
                                         .pattern = p};
                if (!take(s, &c))
                    continue;
                torn_mask(p, units, choice_hash(s, &c), mask);
                prefix_to(s, i);
                crashdisk_overlay_write_torn(&s->cd, op->off, op->data, op->len, grans[g], mask);
                eval_simple(s, &c, cut);
            }
            free(mask);
        }
    }
}

static void gen_stale(struct sweeper *s, uint64_t cut)
{
    /* The epoch must grow the file. */
    uint64_t size = s->dsize, grown_to = s->dsize;
    size_t first = SIZE_MAX;
    for (size_t i = 0; i < s->n_pending; i++) {
        const struct trace_op *op = pend(s, i);
        if (op->kind == TR_TRUNCATE) {
            if (op->off > size && first == SIZE_MAX)
                first = i;
            size = op->off;
            if (size > grown_to)
                grown_to = size;
        }
    }
    if (first == SIZE_MAX)
        return;
    const uint64_t lo = s->dsize, hi = grown_to;
    for (size_t i = first + 1; i <= s->n_pending && !s->stop; i++) {
        struct crash_choice c = {.model = M_STALE, .epoch = s->epoch, .index = (uint32_t)i};
        if (!take(s, &c))
            continue;
        reset_all(s);
        for (size_t k = 0; k < i; k++) {
            const struct trace_op *op = pend(s, k);
            if (op->kind == TR_WRITE && op->off >= lo && op->off + op->len <= hi)
                continue; /* data written into the new space did not persist */
            overlay_apply(&s->cd, op);
        }
        s->cd.poison_lo = (lo + SECTOR - 1) / SECTOR;
        s->cd.poison_hi = hi / SECTOR;
        eval_simple(s, &c, cut);
    }
}

static void eval_recovery(struct sweeper *s, const struct crash_choice *c, uint64_t cut, const struct trace *rec,
                          const struct sector_val *x, size_t nx, uint64_t xsize)
{
    if (!take(s, c))
        return;
    struct verdict v;
    judge_recovery(s, c, cut, rec, x, nx, xsize, &v);
    if (v.cut != cut)
        v.cut = cut;
    record(s, c, &v);
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
        int rc = replay_recorded(s, choice_hash(s, &base), &rec, &replayed);
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
                    uint64_t st = choice_hash(s, &c);
                    for (int q = 0; q < 4 && !s->stop; q++) {
                        c.subset[0] = mix64(st += q) & ((n >= 64 ? 0 : UINT64_C(1) << n) - 1);
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
                int rc2 = replay_recorded(s, choice_hash(s, &c) ^ 0x2E57, &rec2, &r2);
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

static int in_log(const struct sweeper *s, uint64_t off, uint64_t len)
{
    return off >= s->log_offset && off + len <= s->log_offset + s->log_length;
}

static void gen_misdirect(struct sweeper *s, uint64_t cut)
{
    for (size_t i = 0; i < s->n_pending && !s->stop; i++) {
        const struct trace_op *op = pend(s, i);
        if (op->kind != TR_WRITE || !in_log(s, op->off, op->len) || op->len % VHDX_LOG_SECTOR ||
            op->len >= s->log_length)
            continue;
        for (uint32_t alt = 0; alt < 2 && !s->stop; alt++) {
            uint64_t slots = (s->log_length - op->len) / VHDX_LOG_SECTOR + 1;
            uint64_t to = s->log_offset + mix64(s->c->seed ^ ((uint64_t)s->epoch << 24) ^ (i << 4) ^ alt) % slots *
                                              VHDX_LOG_SECTOR;
            if (to == op->off)
                continue;
            struct crash_choice c = {.model = M_MISDIRECT, .epoch = s->epoch, .index = (uint32_t)i, .target = to};
            if (!take(s, &c))
                continue;
            reset_all(s);
            for (size_t k = 0; k < s->n_pending; k++) {
                if (k == i)
                    crashdisk_overlay_write(&s->cd, to, op->data, op->len);
                else
                    overlay_apply(&s->cd, pend(s, k));
            }
            eval_simple(s, &c, cut);
        }
    }
}

static void gen_lost(struct sweeper *s, uint64_t cut)
{
    /* Each write the last flush made durable in the log or the headers. */
    for (size_t u = 0; u < s->n_undo && !s->stop; u++) {
        uint64_t opi = s->undo[u].op;
        if (u > 0 && s->undo[u - 1].op == opi)
            continue; /* first undo record of each op */
        const struct trace_op *op = &s->t->ops[opi];
        int hdr = op->off >= VHDX_HEADER1_OFFSET && op->off < VHDX_REGION1_OFFSET;
        if (!in_log(s, op->off, op->len) && !hdr)
            continue;
        struct crash_choice c = {.model = M_LOST, .epoch = s->epoch, .target = opi};
        if (!take(s, &c))
            continue;
        reset_all(s);
        for (size_t k = u; k < s->n_undo && s->undo[k].op == opi; k++)
            secmap_put(&s->cd.overlay, s->undo[k].sector, s->undo[k].prev ? s->undo[k].prev : SECTOR_ZERO);
        eval_simple(s, &c, cut);
    }
}

static void gen_bitflip(struct sweeper *s, uint64_t cut)
{
    for (uint32_t k = 0; k < 2 && !s->stop; k++) {
        uint64_t h = mix64(s->c->seed ^ ((uint64_t)s->epoch << 32) ^ (0xB17F11Bull + k));
        uint64_t sector;
        switch (h % 3) {
        case 0: /* a log sector that holds something */
            sector = (s->log_offset + (mix64(h) % (s->log_length / VHDX_LOG_SECTOR)) * VHDX_LOG_SECTOR) / SECTOR;
            if (!secmap_get(&s->D, sector))
                sector = (VHDX_HEADER1_OFFSET + (h >> 8) % 2 * 65536) / SECTOR; /* fall back to a header */
            break;
        case 1: /* the first 4 KiB of a header slot */
            sector = (VHDX_HEADER1_OFFSET + (h >> 8) % 2 * 65536) / SECTOR + (h >> 16) % 8;
            break;
        default: /* a region table copy */
            sector = (VHDX_REGION1_OFFSET + (h >> 8) % 2 * 65536) / SECTOR + (h >> 16) % 128;
        }
        uint32_t bit = (uint32_t)((h >> 24) % 4096);
        struct crash_choice c = {.model = M_BITFLIP, .epoch = s->epoch, .target = sector * SECTOR + bit / 8,
                                 .bit = bit % 8};
        if (!take(s, &c))
            continue;
        reset_all(s);
        for (size_t i = 0; i < s->n_pending; i++)
            overlay_apply(&s->cd, pend(s, i));
        uint8_t b[SECTOR];
        crashdisk_read(&s->cd, b, SECTOR, sector * SECTOR);
        b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        secmap_put_copy(&s->cd.overlay, sector, b);
        eval_simple(s, &c, cut);
    }
}

static void eval_epoch(struct sweeper *s, uint64_t cut)
{
    static void (*const gen[M_COUNT])(struct sweeper *, uint64_t) = {
        [M_PREFIX] = gen_prefix, [M_DROP] = gen_drop, [M_REORDER] = gen_reorder, [M_TORN] = gen_torn,
        [M_STALE] = gen_stale, [M_RECOVERY] = gen_recovery, [M_MISDIRECT] = gen_misdirect,
        [M_LOST] = gen_lost, [M_BITFLIP] = gen_bitflip};
    for (int m = 0; m < M_COUNT && !s->stop; m++) {
        if (!(s->c->models & (1u << m)))
            continue;
        double t = now();
        gen[m](s, cut);
        s->st->seconds_per_model[m] += now() - t;
    }
    s->st->epochs++;
}

/* Applies the epoch's pending ops to D (a flush), remembering what they
 * overwrote for the `lost` model. */
static int advance(struct sweeper *s)
{
    shared_close(s); /* a class lives within one durable image */
    s->n_undo = 0;
    for (size_t i = 0; i < s->n_pending; i++) {
        const struct trace_op *op = pend(s, i);
        if (op->kind == TR_TRUNCATE) {
            if (op->off < s->dsize)
                secmap_drop_from(&s->D, (op->off + SECTOR - 1) / SECTOR);
            s->dsize = op->off;
            continue;
        }
        for (uint64_t sct = op->off / SECTOR; sct * SECTOR < op->off + op->len; sct++) {
            if (s->n_undo == s->cap_undo) {
                size_t ncap = s->cap_undo ? s->cap_undo * 2 : 1024;
                struct undo_rec *n = realloc(s->undo, ncap * sizeof *n);
                if (!n)
                    return -ENOMEM;
                s->undo = n;
                s->cap_undo = ncap;
            }
            s->undo[s->n_undo++] = (struct undo_rec){sct, secmap_get(&s->D, sct), s->pending[i]};
            uint64_t lo = sct * SECTOR, hi = lo + SECTOR;
            int rc;
            if (lo >= op->off && hi <= op->off + op->len && (op->off % SECTOR) == 0) {
                rc = secmap_put(&s->D, sct, op->data + (lo - op->off));
            } else {
                uint8_t merged[SECTOR];
                const uint8_t *old = secmap_get(&s->D, sct);
                memcpy(merged, old ? old : SECTOR_ZERO, SECTOR);
                uint64_t a = op->off > lo ? op->off : lo, b = op->off + op->len < hi ? op->off + op->len : hi;
                memcpy(merged + (a - lo), op->data + (a - op->off), (size_t)(b - a));
                rc = secmap_put_copy(&s->D, sct, merged);
            }
            if (rc)
                return rc;
        }
        if (op->off + op->len > s->dsize)
            s->dsize = op->off + op->len;
    }
    s->n_pending = 0;
    s->cd.durable_gen++; /* D changed */
    reset_all(s); /* the prefix layer described the old epoch */
    return 0;
}

static int sweeper_init(struct sweeper *s, const struct trace *t, const struct sweep_config *c, struct sweep_stats *st)
{
    memset(s, 0, sizeof *s);
    memset(st, 0, sizeof *st);
    s->t = t;
    s->c = c;
    s->st = st;
    s->tty = isatty(2);
    secmap_init(&s->D);
    int rc = secmap_merge(&s->D, &t->base);
    if (rc)
        return rc;
    s->dsize = t->base_size;
    s->subj = c->subject ? c->subject : &subject_libvhdx;
    crashdisk_init(&s->cd, &s->D, s->dsize);
    if ((c->judges & JUDGE_REF) && !(s->memo = ref_memo_new()))
        return -ENOMEM;
    if (t->flags & TRACE_F_WORKLOAD) {
        rc = oracle_build(&s->oracle, t);
        if (rc)
            return rc;
        s->have_oracle = 1;
    }
    for (size_t i = 0; i < t->n_ops; i++)
        s->total_flushes += t->ops[i].kind == TR_FLUSH;
    st->total_epochs = (uint32_t)s->total_flushes + 1;
    /* The base image's layout, as the reference reads it: the log's place
     * (for the corruption models) and the structural limit.  Structural
     * sharing: for workload traces, everything a subject reads at open and
     * check lies below the first payload block (header section, log,
     * metadata and BAT regions, which no writer of ours moves). */
    const struct ref_src base = refjudge_src_built(&s->cd, NULL);
    struct ref_image layout;
    if (ref_image_open(&layout, &base) == 0 && layout.current >= 0) {
        const struct ref_header *h = &layout.header[layout.current];
        s->log_offset = h->log_offset;
        s->log_length = h->log_length;
        if ((t->flags & TRACE_F_WORKLOAD) && !(t->flags & TRACE_F_EXTERNAL) && !c->no_share &&
            layout.status != REF_INVALID && layout.bat_length && layout.meta_length) {
            uint64_t end = h->log_offset + h->log_length;
            if (layout.bat_offset + layout.bat_length > end)
                end = layout.bat_offset + layout.bat_length;
            if (layout.meta_offset + layout.meta_length > end)
                end = layout.meta_offset + layout.meta_length;
            crashdisk_set_structural_limit(&s->cd, (end + REF_MB - 1) / REF_MB * REF_MB / SECTOR);
            s->share = 1;
        }
    }
    ref_image_free(&layout);
    s->t0 = now();
    return 0;
}

static void sweeper_free(struct sweeper *s)
{
    shared_close(s);
    ref_memo_free(s->memo);
    free(s->unwritten_buf);
    crashdisk_free(&s->cd);
    secmap_free(&s->D);
    if (s->have_oracle)
        oracle_free(&s->oracle);
    free(s->pending);
    free(s->undo);
}

static int walk(struct sweeper *s)
{
    const struct trace *t = s->t;
    int drop_name = trace_find_name(t, "fault.drop_pending");
    for (size_t i = 0; i < t->n_ops && !s->stop; i++) {
        const struct trace_op *op = &t->ops[i];
        if (op->kind == TR_WRITE || op->kind == TR_TRUNCATE) {
            if (s->n_pending == s->cap_pending) {
                size_t ncap = s->cap_pending ? s->cap_pending * 2 : 256;
                uint32_t *n = realloc(s->pending, ncap * sizeof *n);
                if (!n)
                    return -ENOMEM;
                s->pending = n;
                s->cap_pending = ncap;
            }
            s->pending[s->n_pending++] = (uint32_t)i;
        } else if (op->kind == TR_FLUSH) {
            if ((!s->want || s->want->epoch == s->epoch) && s->epoch >= s->c->first_epoch)
                eval_epoch(s, i);
            if (!s->stop)
                s->st->next_epoch = s->epoch + 1;
            int rc = advance(s);
            if (rc)
                return rc;
            s->epoch++;
            s->epoch_start = i + 1;
        } else if (op->kind == TR_MARK && drop_name >= 0 && op->name == (uint16_t)drop_name) {
            s->n_pending = 0; /* a failed flush dropped them */
        }
    }
    if (!s->stop && (!s->want || s->want->epoch == s->epoch) && s->epoch >= s->c->first_epoch)
        eval_epoch(s, t->n_ops);
    if (!s->stop)
        s->st->next_epoch = s->epoch + 1;
    return 0;
}

/* The protocol checker on the whole trace, before any state. */
static int check_protocol(struct sweeper *s)
{
    struct protocol_report r;
    int rc = protocol_check(s->t, NULL, &r);
    if (rc == 0) {
        s->st->protocol_judged = r.judged;
        s->st->protocol_violations = r.total;
        s->st->violations += r.total;
        for (size_t i = 0; i < r.n && s->c->on_protocol; i++)
            s->c->on_protocol(s->c->ctx, &r.v[i]);
    }
    protocol_report_free(&r);
    return rc;
}

int sweep_run(const struct trace *t, const struct sweep_config *c, struct sweep_stats *st)
{
    struct sweeper s;
    int rc = sweeper_init(&s, t, c, st);
    if (rc == 0 && (c->judges & JUDGE_PROTOCOL) && !c->on_state)
        rc = check_protocol(&s);
    if (rc == 0)
        rc = walk(&s);
    st->seconds = now() - s.t0;
    progress(&s, 1);
    sweeper_free(&s);
    return rc;
}

int sweep_eval_choice(const struct trace *t, const struct sweep_config *c, const struct crash_choice *ch,
                      struct verdict *v)
{
    struct sweeper s;
    struct sweep_stats st;
    struct sweep_config cfg = *c;
    cfg.models = 1u << ch->model;
    cfg.shard_n = 1;
    cfg.shard_k = 0;
    cfg.quiet = 1;
    cfg.no_share = 1;
    int rc = sweeper_init(&s, t, &cfg, &st);
    s.want = ch;
    s.want_verdict = v;
    if (rc == 0)
        rc = walk(&s);
    int found = s.want_found;
    sweeper_free(&s);
    if (rc == 0 && !found)
        rc = -ENOENT;
    return rc;
}

int sweep_save_repro_ex(const struct trace *t, const struct crash_choice *ch, const struct verdict *v,
                        const char *const *extra, const char *path, char *err, size_t errlen)
{
    /* A shallow copy that shares the operations and base, with its own
     * metadata and choice. */
    struct trace copy = *t;
    copy.meta = NULL;
    copy.n_meta = 0;
    copy.choice = NULL;
    copy.n_choice = 0;
    copy.flags &= ~(uint32_t)TRACE_F_CHOICE;
    int rc = 0;
    for (size_t i = 0; i < t->n_meta && rc == 0; i++)
        rc = trace_set_meta(&copy, t->meta[i].key, t->meta[i].value);
    for (size_t i = 0; extra && extra[i] && rc == 0; i += 2)
        rc = trace_set_meta(&copy, extra[i], extra[i + 1]);
    char cut[32];
    snprintf(cut, sizeof cut, "%" PRIu64, v->cut);
    if (rc == 0)
        rc = trace_set_meta(&copy, "violation.invariant", v->invariant);
    if (rc == 0)
        rc = trace_set_meta(&copy, "violation.cut", cut);
    if (rc == 0 && ch)
        rc = crash_choice_to_trace(ch, &copy);
    if (rc == 0)
        rc = trace_save(&copy, path, err, errlen);
    else
        snprintf(err, errlen, "out of memory");
    for (size_t i = 0; i < copy.n_meta; i++) {
        free(copy.meta[i].key);
        free(copy.meta[i].value);
    }
    free(copy.meta);
    for (size_t i = 0; i < copy.n_choice; i++) {
        free(copy.choice[i].key);
        free(copy.choice[i].value);
    }
    free(copy.choice);
    return rc ? -1 : 0;
}

int sweep_save_repro(const struct trace *t, const struct crash_choice *ch, const struct verdict *v, const char *path,
                     char *err, size_t errlen)
{
    return sweep_save_repro_ex(t, ch, v, NULL, path, err, errlen);
}
