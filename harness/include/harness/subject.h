/*
 * subject.h - the implementation under test, one level above the block
 * device: what the harness's workloads, judges, fault runs and fuzz targets
 * call instead of an engine's own API, so that a second implementation
 * (QEMU's VHDX driver, built against a shim) plugs in beside libvhdx.
 *
 * Designed for an implementation the project does not control:
 *  - every call returns 0 or a negative errno (-EINVAL, -EIO, -ENOSPC,
 *    -ENOTSUP, ...); a refusal of the image's format is -EUCLEAN ("the
 *    structure needs cleaning": corrupt or unsupported) or -ENOTSUP, and the
 *    subject's own words go to `why` (subject_last_error);
 *  - no engine type crosses this line: geometry and replay facts are
 *    reported in struct subject_info, plain integers;
 *  - a handle is opened on a struct bdev the harness owns (a simulated or
 *    crash disk); everything the subject does to the image goes through it,
 *    so traces, crash states and fault points work unchanged;
 *  - GUIDs and every other random choice come from a state the caller owns
 *    (rng_state, advanced by the subject as it draws), so a run repeats
 *    exactly; the state must outlive the handle (a session draws GUIDs
 *    when it first writes).
 *
 * Subjects are listed in one registry (subject_find, subject_name(i));
 * tools take `--subject NAME` and print the registry.
 */
#ifndef HARNESS_SUBJECT_H
#define HARNESS_SUBJECT_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "vhdx/bdev.h"

struct subject_handle; /* one open image of a subject (opaque) */

/* What a subject reports about an open image (0 where it cannot say). */
struct subject_info {
    uint64_t virtual_size;     /* bytes */
    uint32_t block_size;       /* bytes */
    uint32_t logical_sector;   /* bytes */
    uint32_t physical_sector;  /* bytes */
    uint64_t bat_offset;       /* file offset of the BAT region */
    uint64_t metadata_offset;  /* file offset of the metadata region */
    int replayed;              /* the open replayed a log (in memory when read-only) */
    uint32_t replayed_entries; /* entries of the replayed sequence (0 if unknown) */
    uint64_t replayed_head;    /* sequence number of its head (0 if unknown) */
    int log_clean;             /* after the open, the current header names no log (the replay finished) */
    int read_only;             /* opened read-only */
    int poisoned;              /* an earlier failure made every later call fail (0: no, or unknown) */
    uint64_t blocks_allocated; /* payload blocks present in the file (0 if unknown) */
};

/* Create parameters (0: the subject's default). */
struct subject_create {
    uint64_t virtual_size;
    uint32_t block_size;
    uint32_t log_size;
    uint32_t logical_sector;
    uint32_t physical_sector;
};

enum subject_flags {
    SUBJECT_RDONLY = 1u << 0,    /* never write; a pending log is replayed in memory or the open refuses */
    SUBJECT_NO_REPLAY = 1u << 1, /* refuse an image with a pending log instead of replaying it */
};

struct subject_ops {
    const char *name;  /* "libvhdx", "qemu" */
    const char *about; /* one line */
    /* Creates an empty image on dev (NULL when the subject cannot: images
     * then come from another subject or a tool). */
    int (*create)(struct bdev *dev, const struct subject_create *p, uint64_t *rng_state);
    /* Opens (and replays) the image on dev; apply_every: log batching where
     * the subject has such a knob (0 = its default). */
    int (*open)(struct bdev *dev, unsigned flags, uint64_t *rng_state, uint32_t apply_every,
                struct subject_handle **out);
    int (*read)(struct subject_handle *h, uint64_t off, void *buf, size_t len);
    int (*write)(struct subject_handle *h, uint64_t off, const void *buf, size_t len);
    int (*discard)(struct subject_handle *h, uint64_t off, uint64_t len);
    int (*flush)(struct subject_handle *h);
    /* Applies pending log entries now where the subject has the notion (NULL otherwise). */
    int (*apply)(struct subject_handle *h);
    int (*info)(struct subject_handle *h, struct subject_info *out);
    /* Closes cleanly (flush, apply, clear the log); h is freed whatever the result. */
    int (*close)(struct subject_handle *h);
    /* Frees h with no I/O, as at a power cut. */
    void (*abandon)(struct subject_handle *h);
    /* The subject's own consistency check of the image on dev: 0 clean, 1
     * errors found (described in why), 2 no error but a header still names
     * a log, negative errno when it cannot run.  NULL when the subject has
     * none. */
    int (*check)(struct bdev *dev, char *why, size_t whylen);
    /* The subject's message for the last failure of h (or of the last open
     * when h is NULL). */
    const char *(*last_error)(const struct subject_handle *h);
    /* What the subject is known to do differently from what the judges ask
     * (filed findings; NULL when none): a list ended by {NULL}.  The sweep
     * counts states that break only such an invariant as known departures,
     * not violations, unless asked to be strict (pcsweep --strict). */
    const struct subject_departure *known;
    /* The subject's own reading of a failed verdict on a crash image it
     * opened (NULL when it has none): the filed departures whose
     * precondition the image, as it was before the subject opened it
     * (`before`, read-only), shows, as one short line into why (empty when
     * none), e.g. "Q6 qemu-replays-entry-whose-tail-is-outside-its-sequence".
     * The sweep appends it to the verdict's detail, where a known entry's
     * detail filter can name it: a verdict is set apart only when its
     * invariant is listed with the departure the image explains. */
    void (*explain)(struct bdev *before, char *why, size_t len);
    /* The namespace of the subject's libfiu I/O points ("vhdx": the
     * engine's vhdx/io/read ... vhdx/alloc; "qemu": the shim's qemu/io/read
     * ... qemu/alloc), in the order of faults/plan.h's FP_*; NULL when it
     * has none.  pcfaults arms the subject's points (fault_use_points). */
    const char *fault_ns;
    /* Nonzero when the subject creates and opens 4096-byte logical
     * sectors (QEMU: 512 only).  workload_params_fit reads it. */
    int sectors_4k;
    /* Where the first fault injected into the subject's points since the
     * last clear hit, as one line into buf (empty when none or unknown;
     * NULL buf: not wanted); clear starts over.  The fault sweep clears it
     * when it arms a plan and appends it to the detail of the plan's
     * verdicts, where a known departure's detail filter can name it
     * (QEMU: "fault: qemu/io/write of header copy 1 (65536+80)").  NULL
     * when the subject cannot tell. */
    void (*fault_site)(char *buf, size_t len, int clear);
};

struct subject_departure {
    const char *invariant; /* invariants.h name, e.g. "protocol:header-before-entry" */
    const char *detail;    /* a text the verdict's detail must contain (NULL: any) */
    const char *finding;   /* where it is filed, e.g. "Q1 (docs/qemu-findings.md)" */
};
#define SUBJECT_KNOWN_MAX 32 /* entries of a known list the sweep counts one by one */

/* Index in s's known list of the departure a verdict (invariant, detail) is, or -1. */
int subject_known_index(const struct subject_ops *s, const char *invariant, const char *detail);

/* A format refusal (the image, not the device, was the reason). */
static inline int subject_is_refusal(int rc)
{
    return rc == -EUCLEAN || rc == -ENOTSUP;
}

/* The registry.  subject_at(i) is NULL past the end. */
const struct subject_ops *subject_at(size_t i);
const struct subject_ops *subject_find(const char *name);

/* libvhdx, the project's own engine (harness/src/subject_vhdx.c). */
extern const struct subject_ops subject_libvhdx;

#endif /* HARNESS_SUBJECT_H */
