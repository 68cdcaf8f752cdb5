/*
 * judge.h - the verdict on an image after a fault, a power cut and a reopen
 * without faults.
 *
 * The data expectation is the crash oracle's (harness/oracle.h), which
 * knows the two effects a fault has on what may be read back:
 *
 *  1. A failed flush that dropped the device's pending writes (the
 *     "fault.drop_pending" mark of the flush-lose kind) breaks
 *     acknowledgement: an operation that began before the drop is never
 *     acknowledged by a later flush.  Its data may be gone, and the caller
 *     was told so (the failed flush).  Linux behaves the same: after a
 *     failed fsync the dirty pages are dropped and a later fsync succeeds.
 *  2. A sector covered by a failed write may hold a byte-wise prefix of
 *     that write over a value it could hold before (a device write that
 *     stopped inside a 512-byte sector, as a short write(2) can): the write
 *     was reported failed, so no acknowledged data is involved, and no
 *     implementation can restore bytes it no longer has.  Every value the
 *     sector could hold before the failed op counts, however many ops
 *     separate it from the acknowledged one (oracle_torn_by_failed_op; a
 *     list capped at 16 once made a legal state a violation: issue 16,
 *     corpus/regressions/6a08321f8364 (I16)).
 *
 * The image verdict: the open (read-write, replaying the log) must
 * succeed; afterwards the header's LogGuid is zero; vhdx_check finds no
 * error; sectors sampled from the oracle's check set (and, on request, a
 * wide sample of everything written) hold allowed values; closing the
 * replayed, unmodified session writes nothing.  The independent reference
 * (harness/refjudge.h) reads the image before the open and judges the
 * open, the replay and every sector read as in the sweep (a refusal the
 * caller allows is still a violation when the reference opens the image).
 */
#ifndef FAULTS_JUDGE_H
#define FAULTS_JUDGE_H

#include <stddef.h>
#include <stdint.h>

#include "harness/oracle.h"
#include "harness/sweep.h"
#include "vhdx/bdev.h"

struct subject_ops;

struct fault_judge_cfg {
    uint32_t per_op;   /* sectors per hot op (oracle_check_set) */
    uint32_t probes;   /* random probe sectors */
    uint32_t wide;     /* >0: also a wide sample of this many sectors over everything written */
    int allow_refusal; /* a refused open (format error) is not a violation (v->ok stays 1, open_rc set) */
    const struct subject_ops *subject; /* the implementation judged (NULL: libvhdx) */
    struct crashdisk *state; /* optional: dev is a fresh cowdisk over this crash state (nothing written through
                              * it yet), so the reference reads the image before the open from the state in
                              * place (no copies through the device); same bytes, cheaper */
};

/* Judges the image on dev at cut k (trace index the expectation is taken
 * at).  hash seeds the engine's GUIDs and the sampling.  Fills v (v->ok). */
void fault_judge_image(struct bdev *dev, const struct oracle *o, uint64_t k, uint64_t hash,
                       const struct fault_judge_cfg *cfg, struct verdict *v);


#endif /* FAULTS_JUDGE_H */
