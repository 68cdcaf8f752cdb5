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

void sweep_config_defaults(struct sweep_config *c)
{
    memset(c, 0, sizeof *c);
    c->models = M_ALL_MODELS;
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
        snprintf(buf, len, "model=%s epoch=%u start=%s replay-writes-persisted=%u", m, c->epoch,
                 c->pattern ? "durable" : "all-pending", c->index);
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
    struct vhdx *sh_h;        /* its handle */
    struct vhdx_info sh_in;
    struct verdict sh_v;      /* its structural verdict */
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
static void vfail(struct verdict *v, const char *inv, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void vfail(struct verdict *v, const char *inv, const char *fmt, ...)
{
    if (!v->ok)
        return; /* keep the first violation */
    v->ok = 0;
    snprintf(v->invariant, sizeof v->invariant, "%s", inv);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->detail, sizeof v->detail, fmt, ap);
    va_end(ap);
}

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

/* Data verdict of the current image through an open handle. */
static void judge_data(struct sweeper *s, struct vhdx *h, const struct vhdx_info *in, uint64_t cut, uint64_t hash,
                       int corruption, struct verdict *v)
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
    uint8_t buf[512];
    for (size_t i = 0; i < n && v->ok; i++) {
        if (sectors[i] * 512 >= in->geo.virtual_size)
            continue;
        int rc = vhdx_read(h, sectors[i] * 512, buf, sizeof buf);
        if (rc != 0) {
            vfail(v, "read-failed", "reading virtual sector %" PRIu64 " after a successful open failed: %s", sectors[i],
                  vhdx_strerror(rc));
            break;
        }
        struct sector_expect e;
        enum oracle_violation ov = oracle_judge_sector(&s->oracle, sectors[i], cut, buf,
                                                       corruption ? ORACLE_CORRUPTION : ORACLE_POWER_LOSS, &e);
        if (ov != OV_OK)
            data_violation(s, v, sectors[i], ov, &e, buf);
    }
    free(sectors);
}

/* The checker on the image as it is now (after replay). */
static void judge_check(struct sweeper *s, struct verdict *v)
{
    struct vhdx_check_report r;
    int rc = vhdx_check(crashdisk_bdev(&s->cd), 0, &r);
    if (rc != 0) {
        vfail(v, "check-failed", "the checker could not run: %s", vhdx_strerror(rc));
        return;
    }
    if (r.errors) {
        for (size_t i = 0; i < r.count; i++)
            if (r.problems[i].severity == VHDX_SEV_ERROR) {
                vfail(v, "check-failed", "after replay the checker found %zu error(s); first: %s: %s [%s]", r.errors,
                      r.problems[i].field, r.problems[i].message, vhdx_errname(r.problems[i].code));
                break;
            }
    } else if (r.log_pending) {
        vfail(v, "log-guid-not-cleared", "after replay the on-disk header still names a log");
    }
    vhdx_check_report_free(&r);
}

static void record(struct sweeper *s, const struct crash_choice *c, const struct verdict *v);

/* Closes a class handle.  A session that only replayed writes nothing at
 * close; anything else is an engine bug, reported against the class's first
 * state. */
static void shared_close(struct sweeper *s)
{
    if (!s->sh_active)
        return;
    uint64_t w = s->cd.writes + s->cd.truncates;
    int rc = s->sh_h ? vhdx_close(s->sh_h) : 0;
    s->sh_active = 0;
    s->sh_h = NULL;
    if (rc != 0 || s->cd.writes + s->cd.truncates != w) {
        struct verdict v = s->sh_v;
        v.ok = 1;
        vfail(&v, "close-failed", rc ? "closing the replayed image failed: %s"
                                      : "closing an unmodified session wrote to the image (%s)",
              rc ? vhdx_strerror(rc) : "no error returned");
        record(s, &s->sh_first, &v);
    }
}

/* Judges the image currently built in s->cd.  With allow_share, a state
 * whose structural signature equals the open class reuses its handle and
 * structural verdict and gets only its own data verdict. */
static void judge_share(struct sweeper *s, const struct crash_choice *ch, uint64_t cut, struct verdict *v,
                        int allow_share)
{
    const int corruption = ch->model >= M_MISDIRECT;
    const uint64_t hash = choice_hash(s, ch);
    const int share = s->share && allow_share;
    const uint64_t sig = share ? crashdisk_signature(&s->cd) ^ (uint64_t)corruption : 0;
    if (share && s->sh_active && s->sh_sig == sig) {
        *v = s->sh_v;
        v->cut = cut;
        if (v->ok)
            judge_data(s, s->sh_h, &s->sh_in, cut, hash, corruption, v);
        return;
    }
    shared_close(s);
    memset(v, 0, sizeof *v);
    v->ok = 1;
    v->cut = cut;
    v->bad_sector = UINT64_MAX;
    struct vhdx_rng_seeded rs = {hash};
    struct vhdx_rng rng = {vhdx_rng_seeded_fill, &rs};
    struct vhdx_diag diag;
    struct vhdx_options o = {.rng = &rng, .diag = &diag};
    struct vhdx *h = NULL;
    s->st->opens++;
    int rc = vhdx_open(crashdisk_bdev(&s->cd), &o, &h);
    v->open_rc = rc;
    struct vhdx_info in;
    memset(&in, 0, sizeof in);
    if (rc != 0) {
        if (!(corruption && vhdx_is_format_error(rc)))
            vfail(v, "open-refused", "the crash image did not open: %s [%s, field %s, offset %" PRIu64 "]",
                  diag.message, vhdx_errname(rc), diag.field, diag.offset);
    } else {
        vhdx_get_info(h, &in);
        v->replayed = in.replayed ? in.replayed_entries : 0;
        if (in.replayed)
            s->st->replays++;
        if (!vhdx_guid_is_zero(&in.header.log_guid))
            vfail(v, "log-guid-not-cleared", "after replay the current header still carries a LogGuid");
        if (v->ok)
            judge_check(s, v);
    }
    struct verdict structural = *v;
    if (h)
        judge_data(s, h, &in, cut, hash, corruption, v);
    if (share) {
        s->sh_active = 1;
        s->sh_sig = sig;
        s->sh_h = h; /* may be NULL: a refused class */
        s->sh_in = in;
        s->sh_v = structural;
        s->sh_first = *ch;
        if (!h) {
            s->sh_active = 1; /* the refusal itself is shared */
        }
        return;
    }
    if (h) {
        uint64_t w = s->cd.writes + s->cd.truncates;
        rc = vhdx_close(h);
        if (rc != 0)
            vfail(v, "close-failed", "closing the replayed image failed: %s", vhdx_strerror(rc));
        else if (s->cd.writes + s->cd.truncates != w)
            vfail(v, "close-failed", "closing an unmodified session wrote to the image");
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
    struct vhdx_rng_seeded rs = {hash};
    struct vhdx_rng rng = {vhdx_rng_seeded_fill, &rs};
    struct vhdx_options o = {.rng = &rng};
    struct vhdx *h;
    shared_close(s);
    s->cd.rec = rec;
    int rc = vhdx_open(crashdisk_bdev(&s->cd), &o, &h);
    if (rc == 0) {
        struct vhdx_info in;
        vhdx_get_info(h, &in);
        *replayed = in.replayed ? in.replayed_entries : 0;
        rc = vhdx_close(h);
    }
    s->cd.rec = NULL;
    return rc;
}

/* Builds the starting image of a recovery choice into s->cd. */
static int build_recovery_start(struct sweeper *s, const struct crash_choice *c)
{
    reset_all(s);
    if (c->pattern == 0)
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

static void judge_recovery(struct sweeper *s, const struct crash_choice *c, uint64_t cut, const struct trace *rec,
                           const struct sector_val *x, size_t nx, uint64_t xsize, struct verdict *v)
{
    /* Image: start + the first `index` replay operations persisted. */
    build_recovery_start(s, c);
    for (uint32_t i = 0; i < c->index && i < rec->n_ops; i++)
        overlay_apply(&s->cd, &rec->ops[i]);
    if (s->want && s->c->save_image)
        crashdisk_save_image(&s->cd, s->c->save_image);
    judge_share(s, c, cut, v, 0);
    if (!v->ok)
        return;
    /* judge_share() replayed and closed; compare with the uninterrupted replay. */
    uint8_t buf[512];
    for (size_t i = 0; i < nx; i++) {
        crashdisk_read(&s->cd, buf, SECTOR, x[i].sector * SECTOR);
        if (memcmp(buf, x[i].bytes, SECTOR) != 0) {
            char diff[700] = "";
            sector_diff(diff, sizeof diff, x[i].bytes, buf);
            vfail(v, "replay-not-idempotent",
                  "after a cut inside replay (%u of %zu replay operations persisted) and a second replay, file "
                  "sector %" PRIu64 " (offset %" PRIu64 ") differs from the uninterrupted replay%s",
                  c->index, rec->n_ops, x[i].sector, x[i].sector * SECTOR, diff);
            return;
        }
    }
    if (s->cd.size != xsize)
        vfail(v, "replay-not-idempotent", "file size %" PRIu64 " after an interrupted replay, %" PRIu64 " without",
              s->cd.size, xsize);
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
            for (uint32_t k = 1; k < rec.n_ops && !s->stop; k++) {
                const struct trace_op *op = &rec.ops[k - 1];
                if (op->kind != TR_WRITE && op->kind != TR_TRUNCATE)
                    continue; /* a cut right after a flush or mark repeats the previous state */
                struct crash_choice c = base;
                c.index = k;
                if (!take(s, &c))
                    continue;
                struct verdict v;
                judge_recovery(s, &c, cut, &rec, x, nx, xsize, &v);
                record(s, &c, &v);
            }
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
    crashdisk_init(&s->cd, &s->D, s->dsize);
    if (t->flags & TRACE_F_WORKLOAD) {
        rc = oracle_build(&s->oracle, t);
        if (rc)
            return rc;
        s->have_oracle = 1;
    }
    /* Log location from the base image's current header (for corruption models). */
    uint8_t hb[2][VHDX_HEADER_SIZE];
    struct vhdx_header h[2];
    int ok[2];
    for (int i = 0; i < 2; i++) {
        crashdisk_read(&s->cd, hb[i], VHDX_HEADER_SIZE, i ? VHDX_HEADER2_OFFSET : VHDX_HEADER1_OFFSET);
        ok[i] = vhdx_header_decode(hb[i], &h[i]) == 0;
    }
    int cur = ok[0] && ok[1] ? h[1].sequence > h[0].sequence : ok[1];
    if (ok[0] || ok[1]) {
        s->log_offset = h[cur].log_offset;
        s->log_length = h[cur].log_length;
    }
    for (size_t i = 0; i < t->n_ops; i++)
        s->total_flushes += t->ops[i].kind == TR_FLUSH;
    st->total_epochs = (uint32_t)s->total_flushes + 1;
    /* Structural sharing: for workload traces of this engine, everything
     * the engine reads at open and check lies below the first payload
     * block (header section, log, metadata and BAT regions, which it never
     * moves).  That limit comes from the base image. */
    if ((t->flags & TRACE_F_WORKLOAD) && !(t->flags & TRACE_F_EXTERNAL) && !c->no_share) {
        struct vhdx *bh;
        struct vhdx_options bo = {.flags = VHDX_OPEN_RDONLY};
        if (vhdx_open(crashdisk_bdev(&s->cd), &bo, &bh) == 0) {
            struct vhdx_info in;
            vhdx_get_info(bh, &in);
            uint64_t end = in.header.log_offset + in.header.log_length;
            if (in.bat_offset + in.bat_length > end)
                end = in.bat_offset + in.bat_length;
            if (in.metadata_offset + in.metadata_length > end)
                end = in.metadata_offset + in.metadata_length;
            vhdx_close(bh);
            crashdisk_set_structural_limit(&s->cd, (end + VHDX_MiB - 1) / VHDX_MiB * VHDX_MiB / SECTOR);
            s->share = 1;
        }
    }
    s->t0 = now();
    return 0;
}

static void sweeper_free(struct sweeper *s)
{
    shared_close(s);
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

int sweep_run(const struct trace *t, const struct sweep_config *c, struct sweep_stats *st)
{
    struct sweeper s;
    int rc = sweeper_init(&s, t, c, st);
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
