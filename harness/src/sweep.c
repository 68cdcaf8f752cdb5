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

#include "harness/bufpool.h"
#include "harness/epochs.h"
#include "harness/refjudge.h"
#include "sweep_core.h"
#include "harness/sdata.h"
#include "vhdx/check.h"
#include "vhdx/format.h"

const char *const crash_model_names[M_COUNT] = {
#define X(id, sym, name, power) name,
    CRASH_MODEL_LIST(X)
#undef X
};

/* The registry: one file per model in harness/src/models/. */
const struct crash_model_def *const sw_models[M_COUNT] = {
#define X(id, sym, name, power) &model_##sym,
    CRASH_MODEL_LIST(X)
#undef X
};

const char *crash_model_about(enum crash_model m)
{
    return (unsigned)m < M_COUNT ? sw_models[m]->about : "";
}

int crash_model_exportable(enum crash_model m)
{
    return (unsigned)m < M_COUNT && sw_models[m]->exportable;
}

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

int sweep_invariant_is_writers(const char *invariant)
{
    return !strncmp(invariant, "protocol:", 9) || !strcmp(invariant, invariant_name(INV_REF_INVALID_CRASH_STATE));
}

const struct subject_ops *sweep_writer(const struct sweep_config *c)
{
    return c->subject ? c->subject : &subject_libvhdx;
}

const struct subject_ops *sweep_reader(const struct sweep_config *c)
{
    return c->replay_subject ? c->replay_subject : sweep_writer(c);
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
    if ((unsigned)c->model >= M_COUNT)
        snprintf(buf, len, "model=?");
    else
        sw_models[c->model]->format(c, buf, len);
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


double sw_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

uint64_t sw_mix64(uint64_t x)
{
    x += UINT64_C(0x9E3779B97F4A7C15);
    x = (x ^ (x >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94D049BB133111EB);
    return x ^ (x >> 31);
}

uint64_t crash_choice_hash(const struct crash_choice *c, uint64_t start)
{
    uint64_t h = sw_mix64(start);
    h = sw_mix64(h ^ c->model);
    h = sw_mix64(h ^ c->epoch);
    h = sw_mix64(h ^ c->index);
    h = sw_mix64(h ^ ((uint64_t)c->gran << 32 | c->pattern));
    for (int i = 0; i < 4; i++)
        h = sw_mix64(h ^ c->subset[i]);
    h = sw_mix64(h ^ c->target);
    return sw_mix64(h ^ c->bit);
}

/* A hash of the choice coordinates: seeds the engine's GUIDs and the
 * oracle's sampling for this state. */
uint64_t sw_choice_hash(const struct sweeper *s, const struct crash_choice *c)
{
    return crash_choice_hash(c, s->c->seed ^ 0xC0FFEE);
}

int crash_choice_equal(const struct crash_choice *a, const struct crash_choice *b)
{
    return a->model == b->model && a->epoch == b->epoch && a->index == b->index && a->gran == b->gran &&
           a->pattern == b->pattern && !memcmp(a->subset, b->subset, sizeof a->subset) && a->target == b->target &&
           a->bit == b->bit;
}

const struct trace_op *sw_pend(const struct sweeper *s, size_t i)
{
    return &s->t->ops[s->pending[i]];
}

/* Full reset of the state device (drops the shared prefix too). */
void sw_reset_all(struct sweeper *s)
{
    crashdisk_reset(&s->cd, s->dsize);
    s->prefix_len = 0;
}

/* Makes the state device base + p1..pi (prefix layer), nothing else; the
 * prefix is extended incrementally when i grows. */
void sw_prefix_to(struct sweeper *s, size_t i)
{
    if (i < s->prefix_len)
        sw_reset_all(s);
    crashdisk_reset_keep_prefix(&s->cd);
    for (; s->prefix_len < i; s->prefix_len++) {
        const struct trace_op *op = sw_pend(s, s->prefix_len);
        if (op->kind == TR_WRITE)
            crashdisk_prefix_write(&s->cd, op->off, op->data, op->len);
        else if (op->kind == TR_TRUNCATE)
            crashdisk_prefix_truncate(&s->cd, op->off);
    }
}

/* Applies one pending op to the overlay of the state device. */
int sw_overlay_apply(struct crashdisk *cd, const struct trace_op *op)
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

/* ---- evaluating and counting a state -------------------------------------------- */
static int save_and_report(struct sweeper *s, const struct crash_choice *c, const struct verdict *v)
{
    char path[4096] = "";
    if (s->c->repro_dir) {
        char desc[64], err[512];
        snprintf(desc, sizeof desc, "%s-e%u-i%u-p%u", crash_model_names[c->model], c->epoch, c->index, c->pattern);
        const char *wl = trace_get_meta(s->t, "workload");
        snprintf(path, sizeof path, "%s/repro-%s-s%" PRIu64 "-%s-%08" PRIx64 ".pctrace", s->c->repro_dir,
                 wl ? wl : "trace", s->t->seed, desc, sw_choice_hash(s, c) & 0xFFFFFFFFu);
        if (sweep_save_repro_judged(s->t, c, v, NULL, s->subj->name, path, err, sizeof err) != 0) {
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
    double t = sw_now();
    if (!final && t - s->last_progress < 0.5)
        return;
    s->last_progress = t;
    double el = t - s->t0;
    double frac = s->ep.n > 1 ? (double)s->epoch / (double)s->ep.n : 0;
    double eta = frac > 0.01 ? el / frac - el : 0;
    fprintf(stderr, "\r[sweep] epoch %u/%u  states %" PRIu64 " (%.0f/s)  violations %" PRIu64 "  ETA %.0fs   %s",
            s->epoch, s->ep.n, s->st->states, el > 0 ? (double)s->st->states / el : 0.0,
            s->st->violations, eta, final ? "\n" : "");
    fflush(stderr);
}

static int limits_hit(struct sweeper *s)
{
    const struct sweep_config *c = s->c;
    if ((c->max_states && s->st->states >= c->max_states) ||
        (c->max_violations && s->st->violations >= c->max_violations) ||
        (c->max_seconds > 0 && sw_now() - s->t0 >= c->max_seconds) || (c->cancel && *c->cancel)) {
        s->st->stopped_early = 1;
        s->stop = 1;
    }
    return s->stop;
}

/* Should this generated state be judged here (shard, repro target)? */
int sw_take(struct sweeper *s, const struct crash_choice *c)
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

/* The entry of the known list that sets a failed state verdict apart, or
 * -1: the reader's list, except for a crash image the writer left broken,
 * the writer's (sweep.h, the rule). */
static int known_of(const struct sweeper *s, const struct verdict *v, int *writers)
{
    *writers = !v->ok && sweep_invariant_is_writers(v->invariant);
    const struct subject_ops *owner = *writers ? sweep_writer(s->c) : s->subj;
    return v->ok || s->c->strict ? -1 : subject_known_index(owner, v->invariant, v->detail);
}

void sw_record(struct sweeper *s, const struct crash_choice *c, const struct verdict *vin)
{
    struct verdict vv = *vin;
    struct verdict *v = &vv;
    int writers;
    int known = known_of(s, v, &writers);
    /* A reader's verdict not set apart yet: the reader's own reading of the
     * image (subject_ops.explain) joins the detail (a reproducer shows it
     * too), and may name a filed departure. */
    if (!v->ok && !writers && known < 0 && s->subj->explain && !s->no_explain) {
        sw_explain(s, v);
        known = known_of(s, v, &writers);
    }
    if (s->want) {
        *s->want_verdict = *v;
        s->want_found = 1;
        s->stop = 1;
        return;
    }
    s->st->states++;
    s->st->states_per_model[c->model]++;
    if (known >= 0) {
        (writers ? s->st->known_writer : s->st->known)[known]++;
        s->st->known_total++;
    } else if (!v->ok) {
        s->st->violations++;
        s->st->violations_per_model[c->model]++;
        save_and_report(s, c, v);
    }
    progress(s, 0);
    limits_hit(s);
}

/* ---- per-model generators --------------------------------------------------------- */
void sw_eval_simple(struct sweeper *s, const struct crash_choice *c, uint64_t cut)
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
    sw_judge(s, c, cut, &v);
    sw_record(s, c, &v);
}

static void eval_epoch(struct sweeper *s, uint64_t cut)
{
    for (int m = 0; m < M_COUNT && !s->stop; m++) {
        if (!(s->c->models & (1u << m)))
            continue;
        double t = sw_now();
        sw_models[m]->gen(s, cut);
        s->st->seconds_per_model[m] += sw_now() - t;
    }
    s->st->epochs++;
}

/* Applies the epoch's pending ops to D (a flush), remembering what they
 * overwrote for the `lost` model. */
static int advance(struct sweeper *s)
{
    sw_shared_close(s); /* a class lives within one durable image */
    s->n_undo = 0;
    for (size_t i = 0; i < s->n_pending; i++) {
        const struct trace_op *op = sw_pend(s, i);
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
    sw_reset_all(s); /* the prefix layer described the old epoch */
    return 0;
}

static int sweeper_init(struct sweeper *s, const struct trace *t, const struct sweep_config *c, struct sweep_stats *st)
{
    memset(s, 0, sizeof *s);
    memset(st, 0, sizeof *st);
    bufpool_heap_tune(); /* every state opens an image: keep its large blocks on the heap */
    s->t = t;
    s->c = c;
    s->st = st;
    s->tty = isatty(2);
    secmap_init(&s->D);
    int rc = secmap_merge(&s->D, &t->base);
    if (rc)
        return rc;
    s->dsize = t->base_size;
    s->subj = sweep_reader(c);
    crashdisk_init(&s->cd, &s->D, s->dsize);
    if ((c->judges & JUDGE_REF) && !(s->memo = ref_memo_new()))
        return -ENOMEM;
    if (t->flags & TRACE_F_WORKLOAD) {
        rc = oracle_build(&s->oracle, t);
        if (rc)
            return rc;
        s->have_oracle = 1;
    }
    if ((rc = trace_epochs_build(t, &s->ep)) != 0)
        return rc;
    st->total_epochs = s->ep.n;
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
    s->t0 = sw_now();
    return 0;
}

static void sweeper_free(struct sweeper *s)
{
    sw_shared_close(s);
    ref_memo_free(s->memo);
    free(s->unwritten_buf);
    crashdisk_free(&s->cd);
    secmap_free(&s->D);
    if (s->have_oracle)
        oracle_free(&s->oracle);
    free(s->pending);
    free(s->undo);
    trace_epochs_free(&s->ep);
}

/* Fills s->pending with the trace indices of epoch x's pending list. */
static int load_pending(struct sweeper *s, const struct trace_epoch *x)
{
    if (x->pending > s->cap_pending) {
        uint32_t *n = realloc(s->pending, x->pending * sizeof *n);
        if (!n)
            return -ENOMEM;
        s->pending = n;
        s->cap_pending = x->pending;
    }
    s->n_pending = 0;
    for (size_t i = x->first; i < x->end; i++)
        if (trace_op_pending(&s->t->ops[i]))
            s->pending[s->n_pending++] = (uint32_t)i;
    return 0;
}

/* Every epoch in order (epochs.h): its states, cut at its flush (the last
 * one's at the end of the trace), then the flush makes its pending list
 * durable. */
static int walk(struct sweeper *s)
{
    for (s->epoch = 0; s->epoch < s->ep.n; s->epoch++) {
        const struct trace_epoch *x = &s->ep.e[s->epoch];
        s->epoch_start = x->start;
        int rc = load_pending(s, x);
        if (rc)
            return rc;
        if ((!s->want || s->want->epoch == s->epoch) && s->epoch >= s->c->first_epoch)
            eval_epoch(s, x->end);
        if (!s->stop)
            s->st->next_epoch = s->epoch + 1;
        if (s->epoch + 1 == s->ep.n)
            break; /* no flush ends the last epoch */
        if ((rc = advance(s)) != 0)
            return rc;
        if (s->stop) {
            s->epoch++;
            break;
        }
    }
    return 0;
}

/* The protocol checker on the whole trace, before any state. */
static int check_protocol(struct sweeper *s)
{
    struct protocol_report r;
    int rc = protocol_check(s->t, NULL, &r);
    if (rc == 0) {
        s->st->protocol_judged = r.judged;
        /* counts per invariant; the writer's known departures (those with no
         * detail filter: the counts are per invariant) are set aside: the
         * trace is the writer's (sweep.h, the rule) */
        const struct subject_ops *writer = sweep_writer(s->c);
        for (int i = 0; i < INV_COUNT; i++) {
            int known = s->c->strict ? -1 : subject_known_index(writer, invariant_name((enum invariant)i), NULL);
            if (known >= 0 && r.count[i]) {
                s->st->known_writer[known] += r.count[i];
                s->st->known_total += r.count[i];
            } else {
                s->st->protocol_violations += r.count[i];
            }
        }
        s->st->violations += s->st->protocol_violations;
        for (size_t i = 0; i < r.n && s->c->on_protocol; i++)
            if (s->c->strict || subject_known_index(writer, invariant_name(r.v[i].inv), NULL) < 0)
                s->c->on_protocol(s->c->ctx, &r.v[i]);
    }
    protocol_report_free(&r);
    return rc;
}

int sweep_run(const struct trace *t, const struct sweep_config *c, struct sweep_stats *st)
{
    struct sweeper s;
    int rc = sweeper_init(&s, t, c, st);
    /* The protocol judge looks at the whole trace, not at states: it is
     * shard 0's work only, so that shards stay disjoint (their counts add
     * up to the unsharded sweep's). */
    if (rc == 0 && (c->judges & JUDGE_PROTOCOL) && !c->on_state && c->shard_k == 0)
        rc = check_protocol(&s);
    if (rc == 0)
        rc = walk(&s);
    st->seconds = sw_now() - s.t0;
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
    return sweep_save_repro_judged(t, ch, v, extra, NULL, path, err, errlen);
}

const char *sweep_repro_replay_subject(const struct trace *t)
{
    return trace_get_choice(t, "replay_subject");
}

int sweep_save_repro_judged(const struct trace *t, const struct crash_choice *ch, const struct verdict *v,
                            const char *const *extra, const char *replay_subject, const char *path, char *err,
                            size_t errlen)
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
    if (rc == 0 && ch && replay_subject)
        rc = trace_set_choice(&copy, "replay_subject", replay_subject);
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
