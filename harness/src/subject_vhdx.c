/*
 * subject_vhdx.c - libvhdx, the project's own engine, as a subject
 * (harness/subject.h), and the subject registry.
 *
 * The only file of the harness's subject layer that names the engine's
 * handle API: errors become negative errno (a format refusal -EUCLEAN, an
 * unsupported feature -ENOTSUP) with the engine's own message kept for
 * subject_ops.last_error.
 */
#include "harness/subject.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vhdx/check.h"
#include "vhdx/vhdx.h"

struct subject_handle {
    struct vhdx *h;
    struct vhdx_rng rng; /* draws from the caller's state */
    char why[320];
};

/* The engine's seeded generator over a state the caller owns (the same
 * stream as a struct vhdx_rng_seeded holding it). */
static int state_fill(void *ctx, void *buf, size_t len)
{
    uint64_t *state = ctx;
    struct vhdx_rng_seeded rs = {*state};
    int rc = vhdx_rng_seeded_fill(&rs, buf, len);
    *state = rs.state;
    return rc;
}

static char last_open_error[320];

/* An engine result as a subject result. */
static int as_errno(int rc, char *why, size_t len, const struct vhdx_diag *d)
{
    if (rc == 0)
        return 0;
    if (d && d->message[0])
        snprintf(why, len, "%s [%s, field %s, offset %llu]", d->message, vhdx_errname(rc), d->field,
                 (unsigned long long)d->offset);
    else
        snprintf(why, len, "%s", vhdx_strerror(rc));
    if (rc == VHDX_E_UNSUPPORTED)
        return -ENOTSUP;
    if (vhdx_is_format_error(rc))
        return -EUCLEAN;
    if (rc == VHDX_E_RANGE || rc == VHDX_E_INVAL)
        return -EINVAL;
    if (rc == VHDX_E_READONLY)
        return -EROFS;
    if (rc == VHDX_E_POISONED || rc == VHDX_E_SHORT_IO)
        return -EIO;
    return rc < 0 && rc > -4096 ? rc : -EIO;
}

static int v_create(struct bdev *dev, const struct subject_create *p, uint64_t *rng_state)
{
    struct vhdx_rng rng = {state_fill, rng_state};
    struct vhdx_diag diag;
    struct vhdx_create_params cp = {p->virtual_size, p->block_size, p->log_size, p->logical_sector,
                                    p->physical_sector};
    struct vhdx_options o = {.rng = &rng, .diag = &diag, .creator = "powercut subject libvhdx"};
    return as_errno(vhdx_create(dev, &cp, &o), last_open_error, sizeof last_open_error, &diag);
}

static int v_open(struct bdev *dev, unsigned flags, uint64_t *rng_state, uint32_t apply_every,
                  struct subject_handle **out)
{
    struct subject_handle *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->rng = (struct vhdx_rng){state_fill, rng_state};
    struct vhdx_diag diag;
    struct vhdx_options o = {.rng = &s->rng, .diag = &diag, .apply_every = apply_every};
    if (flags & SUBJECT_RDONLY)
        o.flags |= VHDX_OPEN_RDONLY;
    if (flags & SUBJECT_NO_REPLAY)
        o.flags |= VHDX_OPEN_NO_REPLAY;
    int rc = vhdx_open(dev, &o, &s->h);
    if (rc != 0) {
        rc = as_errno(rc, last_open_error, sizeof last_open_error, &diag);
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

#define CALL(s, expr) as_errno((expr), (s)->why, sizeof (s)->why, vhdx_last_diag((s)->h))

static int v_read(struct subject_handle *s, uint64_t off, void *buf, size_t len)
{
    return CALL(s, vhdx_read(s->h, off, buf, len));
}

static int v_write(struct subject_handle *s, uint64_t off, const void *buf, size_t len)
{
    return CALL(s, vhdx_write(s->h, off, buf, len));
}

static int v_discard(struct subject_handle *s, uint64_t off, uint64_t len)
{
    return CALL(s, vhdx_discard(s->h, off, len));
}

static int v_flush(struct subject_handle *s)
{
    return CALL(s, vhdx_flush(s->h));
}

static int v_apply(struct subject_handle *s)
{
    return CALL(s, vhdx_log_apply_now(s->h));
}

static int v_info(struct subject_handle *s, struct subject_info *o)
{
    struct vhdx_info in;
    int rc = vhdx_get_info(s->h, &in);
    if (rc != 0)
        return CALL(s, rc);
    memset(o, 0, sizeof *o);
    o->virtual_size = in.geo.virtual_size;
    o->block_size = in.geo.block_size;
    o->logical_sector = in.geo.logical_sector;
    o->physical_sector = in.geo.physical_sector;
    o->bat_offset = in.bat_offset;
    o->metadata_offset = in.metadata_offset;
    o->replayed = in.replayed;
    o->replayed_entries = in.replayed ? in.replayed_entries : 0;
    o->replayed_head = in.replayed ? in.replayed_head_sequence : 0;
    o->log_clean = vhdx_guid_is_zero(&in.header.log_guid);
    o->read_only = in.read_only;
    o->poisoned = in.poisoned != 0;
    o->blocks_allocated = in.blocks_allocated;
    return 0;
}

static int v_close(struct subject_handle *s)
{
    char why[sizeof s->why];
    int rc = as_errno(vhdx_close(s->h), why, sizeof why, NULL);
    if (rc)
        snprintf(last_open_error, sizeof last_open_error, "%s", why);
    free(s);
    return rc;
}

static void v_abandon(struct subject_handle *s)
{
    vhdx_abandon(s->h);
    free(s);
}

static int v_check(struct bdev *dev, char *why, size_t whylen)
{
    struct vhdx_check_report r;
    int rc = vhdx_check(dev, 0, &r);
    if (rc != 0)
        return as_errno(rc, why, whylen, NULL);
    int bad = 0;
    for (size_t i = 0; i < r.count && !bad; i++)
        if (r.problems[i].severity == VHDX_SEV_ERROR) {
            snprintf(why, whylen, "%zu error(s); first: %s: %s [%s]", r.errors, r.problems[i].field,
                     r.problems[i].message, vhdx_errname(r.problems[i].code));
            bad = 1;
        }
    if (!bad && r.log_pending) {
        snprintf(why, whylen, "the on-disk header still names a log");
        bad = 2;
    }
    vhdx_check_report_free(&r);
    return bad;
}

static const char *v_last_error(const struct subject_handle *s)
{
    return s ? s->why : last_open_error;
}

const struct subject_ops subject_libvhdx = {
    "libvhdx", "the project's own clean-room engine (engine/)",
    v_create, v_open, v_read, v_write, v_discard, v_flush, v_apply, v_info, v_close, v_abandon, v_check,
    v_last_error, NULL, NULL, "vhdx", 1, NULL,
};

/* ---- the registry ----------------------------------------------------------- */
#ifdef POWERCUT_QEMU_SUBJECT
extern const struct subject_ops subject_qemu; /* qemu/ (built when QEMU's source was fetched) */
#endif

static const struct subject_ops *const registry[] = {
    &subject_libvhdx,
#ifdef POWERCUT_QEMU_SUBJECT
    &subject_qemu,
#endif
};

const struct subject_ops *subject_at(size_t i)
{
    return i < sizeof registry / sizeof registry[0] ? registry[i] : NULL;
}

int subject_known_index(const struct subject_ops *s, const char *invariant, const char *detail)
{
    for (int i = 0; s && s->known && s->known[i].invariant && i < SUBJECT_KNOWN_MAX; i++)
        if (!strcmp(s->known[i].invariant, invariant) &&
            (!s->known[i].detail || (detail && strstr(detail, s->known[i].detail))))
            return i;
    return -1;
}

const struct subject_ops *subject_find(const char *name)
{
    for (size_t i = 0; subject_at(i); i++)
        if (!strcmp(subject_at(i)->name, name))
            return subject_at(i);
    return NULL;
}
