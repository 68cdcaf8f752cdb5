/*
 * refjudge.h - the reference judge: each crash image is read by the
 * independent reference (ref/ref.h) before the subject opens it, and what
 * the subject then does is compared with what the reference says the
 * specification requires.
 *
 * The checks, in the order a state meets them (invariants.h names them):
 *   open      the subject refused an image the reference opens
 *             (ref:refused-recoverable: one intact header, one intact
 *             region-table copy, a complete sequence are enough), or opened
 *             one that breaks a MUST (ref:accepted-invalid); under a
 *             power-loss model an image that breaks a MUST is the writer's
 *             fault whatever the reader does (ref:invalid-crash-state);
 *             the subject replayed another sequence (ref:log-mismatch) or
 *             sees another geometry (ref:geometry-mismatch);
 *   replayed  after a read-write open that replayed: the file is at least
 *             as large as the log requires (ref:file-size), the image left
 *             behind is valid with no log pending
 *             (ref:replayed-image-invalid), and the region tables, the
 *             metadata region, the BAT and every range the log wrote hold
 *             the reference's bytes (ref:replayed-bytes);
 *   reads     every virtual-disk read the judges make through the subject
 *             equals the reference's bytes wherever MS-VHDX defines them
 *             (ref:virtual-bytes).
 * A judge is begun on the state's image as built and may serve every state
 * of a structural class (the states share everything the reference reads
 * at open; payload reads go to the current state's image).
 */
#ifndef HARNESS_REFJUDGE_H
#define HARNESS_REFJUDGE_H

#include <stddef.h>
#include <stdint.h>

#include "harness/simdisk.h"
#include "harness/verdict.h"
#include "harness/subject.h"
#include "ref/ref.h"

struct refjudge {
    struct ref_image pre;  /* the image before the subject opened it, read and replayed by the reference */
    int have;              /* pre holds a reading (ref_image_open returned 0) */
};

/* Reads the image through `before` (the state before any open; the source
 * is copied, its ctx must stay valid while the judge is used: virtual reads
 * go through it).  0, or -ENOMEM (then every check passes: the harness, not
 * the subject, failed; the caller reports it). */
int refjudge_begin(struct refjudge *rj, const struct ref_src *before);
void refjudge_end(struct refjudge *rj);

/* Sources over a crash disk: the image as built (no scratch writes), and
 * as it is now; with the trace's checksum memo (may be NULL; it must not
 * outlive the durable image cd borrows). */
struct ref_src refjudge_src_built(struct crashdisk *cd, struct ref_memo *memo);
struct ref_src refjudge_src_now(struct crashdisk *cd, struct ref_memo *memo);
/* A source over any block device (reads through its ops; size now). */
struct ref_src refjudge_src_bdev(struct bdev *dev, struct ref_memo *memo);

/* The subject's open: rc (0: opened; in holds its info; a negative errno
 * otherwise), whether the rc is a format refusal, and whether the state
 * comes from a power-loss model (a correct writer leaves only valid images
 * there). */
void refjudge_open(struct refjudge *rj, int rc, int format_refusal, const struct subject_info *in, int power_loss,
                   struct verdict *v);

/* After a read-write open that replayed: `after` reads the image the
 * subject left.  The size and the replayed bytes are always compared; with
 * `reread` the reference also reads that image whole (valid, no log
 * pending), which costs a second reading. */
void refjudge_replayed(struct refjudge *rj, const struct ref_src *after, int reread, struct verdict *v);

/* The subject read got[0..len) at virtual offset off. */
void refjudge_read(struct refjudge *rj, uint64_t off, const uint8_t *got, size_t len, struct verdict *v);

/* Did the reference find the image, as built, broken (REF_INVALID)?  Under
 * a power-loss model that is the writer's doing (ref:invalid-crash-state). */
int refjudge_crash_state_invalid(const struct refjudge *rj);

/* Does the reference hold a usable view (valid or undecided, read to the
 * end)?  refjudge_read() checks nothing otherwise. */
int refjudge_usable(const struct refjudge *rj);

#endif /* HARNESS_REFJUDGE_H */
