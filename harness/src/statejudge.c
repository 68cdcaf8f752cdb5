/*
 * statejudge.c - judging one crash state: every judge of the sweep
 * (sweep.h, Judges) on the image built on the sweeper's crash disk.
 *
 * The subject opens the state read-only (replay in memory) and read-write
 * (replay on the disk), after the reference has read it as built; its own
 * open, LogGuid and checker verdict, the reference's verdict, the views'
 * agreement, the data oracle on sampled sectors, reads at odd offsets and
 * the unwritten-sector check follow.  States whose structures are
 * identical share the subject's open and the reference's reading (a
 * structural class); each still gets its own data verdict.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sweep_core.h"

static void hexline(char *out, size_t len, const uint8_t *p, size_t off)
{
    size_t n = (size_t)snprintf(out, len, "%04zx:", off);
    for (int i = 0; i < 16 && n < len; i++)
        n += (size_t)snprintf(out + n, len - n, " %02x", p[off + i]);
}

/* A minimal diff of a sector: up to 4 differing 16-byte lines. */
void sw_sector_diff(char *out, size_t len, const uint8_t *want, const uint8_t *got)
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
    sw_sector_diff(diff, sizeof diff, want, got);
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
    return sw_mix64(*x);
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
                       const struct subject_info *in, uint64_t cut, uint64_t hash, enum oracle_strictness mode,
                       struct verdict *v)
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
                                                       mode, &e);
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


/* ---- the reader's reading of a verdict ----------------------------------------- */
void sw_explain(struct sweeper *s, struct verdict *v)
{
    if (v->ok || !s->subj->explain)
        return;
    /* the image as built, before the subject's open wrote to it (the explainer only reads) */
    char why[240] = "";
    const uint64_t size = s->cd.size;
    s->cd.size = s->built_size; /* an open that grew or shrank the file does not change the built image */
    s->cd.read_built = 1;
    s->subj->explain(crashdisk_bdev(&s->cd), why, sizeof why);
    s->cd.read_built = 0;
    s->cd.size = size;
    if (!why[0])
        return;
    char tail[300];
    int need = snprintf(tail, sizeof tail, " [%s explains: %s]", s->subj->name, why);
    size_t n = strlen(v->detail);
    if (need > 0 && n + (size_t)need >= sizeof v->detail)
        n = sizeof v->detail - 1 - (size_t)need; /* room for the explanation: filters match it */
    snprintf(v->detail + n, sizeof v->detail - n, "%s", tail);
}

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
void sw_shared_close(struct sweeper *s)
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
        s->no_explain = 1; /* the disk may hold a later state than the class's first */
        sw_record(s, &s->sh_first, &v);
        s->no_explain = 0;
    }
}

/* Judges the image currently built in s->cd.  With allow_share, a state
 * whose structural signature equals the open class reuses its handles,
 * reference reading and structural verdict, and gets only its own data
 * verdict. */
void sw_judge_share(struct sweeper *s, const struct crash_choice *ch, uint64_t cut, struct verdict *v,
                        int allow_share)
{
    const struct crash_model_def *md = sw_models[ch->model];
    const enum oracle_strictness mode =
        !md->power_loss ? ORACLE_CORRUPTION : md->tears ? ORACLE_POWER_LOSS_TEARS : ORACLE_POWER_LOSS;
    const int corruption = mode == ORACLE_CORRUPTION;
    const unsigned judges = s->c->judges;
    const uint64_t hash = sw_choice_hash(s, ch);
    const int share = s->share && allow_share;
    const uint64_t sig = share ? crashdisk_signature(&s->cd) ^ (uint64_t)mode : 0;
    s->built_size = s->cd.size;
    if (share && s->sh_active && s->sh_sig == sig) {
        *v = s->sh_v;
        v->cut = cut;
        if (v->ok && s->sh_h)
            judge_data(s, s->sh_h, s->sh_ro, &s->sh_ref, &s->sh_in, cut, hash, mode, v);
        return;
    }
    sw_shared_close(s);
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
    /* A power-loss state the reference finds broken before any open is the
     * writer's making (ref:invalid-crash-state, reported by refjudge_open):
     * a reader that refuses it as a format error does what the text asks,
     * and the verdict names the writer, not the reader (sweep.h, the rule). */
    const int writer_broke = (judges & JUDGE_REF) && !corruption && refjudge_crash_state_invalid(&rj);
    if (rc != 0) {
        if (!(corruption && format_refusal) && !(writer_broke && format_refusal) && (judges & JUDGE_ORACLE))
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
        const int was_ok = v->ok;
        refjudge_open(&rj, rc, format_refusal, rc == 0 ? &in : NULL, !corruption, v);
        if (was_ok && writer_broke && format_refusal && !v->ok) {
            size_t n = strlen(v->detail);
            snprintf(v->detail + n, sizeof v->detail - n, "; %s refused it: %s", s->subj->name,
                     s->subj->last_error(NULL));
        }
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
        judge_data(s, h, ro, &rj, &in, cut, hash, mode, v);
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

void sw_judge(struct sweeper *s, const struct crash_choice *ch, uint64_t cut, struct verdict *v)
{
    sw_judge_share(s, ch, cut, v, 1);
}
