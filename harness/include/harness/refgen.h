/*
 * refgen.h - traces from the reference writer (ref/ref_write.h): the
 * images and logs another, independent writer makes, in the form the sweep
 * cuts and replays.
 *
 * A refgen trace is a workload trace like the engine's: the base image is
 * the reference writer's freshly created image, then every write, truncate
 * and flush of its sessions in order, with the workload records the data
 * oracle needs (B/E per virtual-disk op, "workload.synced" when a flush,
 * reopen or close returns; oracle.h) and the payload written as
 * self-describing sectors (sdata.h, the trace's seed).  Marks
 * "refgen.pending" (after a flush that leaves a log to replay; argument:
 * unapplied entries) and "refgen.session" name the interesting points.
 * Metadata: workload "refgen", the image geometry (virtual_size, block_size,
 * logical_sector, physical_sector, log_size, log_offset), "refgen.variety"
 * (REF_WV_* bits of the layout) and "refgen.shapes" (the writer's figures).
 *
 * Such a trace cannot be re-run by the engine's workload runner (pcsweep
 * repro --rerun / --minimize): the writer is not the engine.  A plain
 * repro rebuilds its states from the trace alone.
 */
#ifndef HARNESS_REFGEN_H
#define HARNESS_REFGEN_H

#include <stddef.h>
#include <stdint.h>

#include "harness/secmap.h"
#include "harness/trace.h"
#include "ref/ref.h"
#include "ref/ref_write.h"

struct refgen_params {
    struct ref_wparams w; /* the writer's choices; 0 fields come from the seed */
};

/* What the writer made (for reports and tests). */
struct refgen_info {
    struct ref_wlayout layout;
    struct ref_wstats stats;
};

/* Generates the trace of seed into t (initialised by the caller; p may be
 * NULL).  0, or an error with a message in err (-EINVAL bad parameters,
 * -ENOMEM, REF_W_EBUG: the writer caught itself breaking the protocol). */
int refgen_trace(uint64_t seed, const struct refgen_params *p, struct trace *t, char *err, size_t errlen);
/* The same, and what the writer made (info may be NULL). */
int refgen_trace_ex(uint64_t seed, const struct refgen_params *p, struct trace *t, struct refgen_info *info,
                    char *err, size_t errlen);

/* The image after the trace's first `cut` operations all persisted (base,
 * then every write and truncate before cut): sectors into out (initialised
 * by the caller; values point into t or out's arena), its size in *size.
 * 0 or -ENOMEM. */
int refgen_image_at(const struct trace *t, size_t cut, struct secmap *out, uint64_t *size);

/* Trace indices right after each "refgen.pending" mark (mid-log states:
 * images with a log to replay), ascending.  *cuts malloc'd.  0 or -ENOMEM. */
int refgen_pending_cuts(const struct trace *t, size_t **cuts, size_t *n);

/* An image held in a secmap, as the reference reads it: src must outlive
 * img (its reads go through src); free img with ref_image_free.  0 or -1
 * (out of memory). */
struct refgen_src {
    const struct secmap *m; /* 512-byte sectors */
    uint64_t size;          /* file size */
};
int refgen_ref_open(const struct refgen_src *src, struct ref_image *img);

/* Writes an image (sparse file).  0 or -errno. */
int refgen_save_image(const struct secmap *m, uint64_t size, const char *path);

/* The writer's figures as one line ("entries=41 max_desc=383 ..."). */
void refgen_format_stats(const struct ref_wstats *s, char *out, size_t len);

#endif /* HARNESS_REFGEN_H */
