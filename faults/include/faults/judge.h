/*
 * judge.h - the oracle of a trace recorded with faults, and the verdict on
 * an image after a fault, a power cut and a reopen without faults.
 *
 * Two rules extend the crash oracle (harness/oracle.h) for fault traces:
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
 *     implementation can restore bytes it no longer has.
 *
 * The image verdict: the open (read-write, replaying the log) must
 * succeed; afterwards the header's LogGuid is zero; vhdx_check finds no
 * error; sectors sampled from the oracle's check set (and, on request, a
 * wide sample of everything written) hold allowed values; closing the
 * replayed, unmodified session writes nothing.
 */
#ifndef FAULTS_JUDGE_H
#define FAULTS_JUDGE_H

#include <stddef.h>
#include <stdint.h>

#include "harness/oracle.h"
#include "harness/sweep.h"
#include "vhdx/bdev.h"

/* oracle_build() plus rule 1.  Same return values. */
int fault_oracle_build(struct oracle *o, const struct trace *t);

/* oracle_judge_sector() (power-loss strictness) plus rule 2. */
enum oracle_violation fault_judge_sector(const struct oracle *o, uint64_t sector, uint64_t k,
                                         const uint8_t bytes[512], struct sector_expect *e);

struct fault_judge_cfg {
    uint32_t per_op;   /* sectors per hot op (oracle_check_set) */
    uint32_t probes;   /* random probe sectors */
    uint32_t wide;     /* >0: also a wide sample of this many sectors over everything written */
    int allow_refusal; /* a refused open (format error) is not a violation (v->ok stays 1, open_rc set) */
};

/* Judges the image on dev at cut k (trace index the expectation is taken
 * at).  hash seeds the engine's GUIDs and the sampling.  Fills v (v->ok). */
void fault_judge_image(struct bdev *dev, const struct oracle *o, uint64_t k, uint64_t hash,
                       const struct fault_judge_cfg *cfg, struct verdict *v);

/* The 512 bytes write `id` (self-describing data, sdata.h) put on `sector`
 * when the write started at sector `first`. */
void fault_sdata_sector(uint8_t out[512], uint64_t sector, uint64_t first, uint32_t id, uint64_t seed);

/* Marks v failed (keeps the first failure). */
void fault_verdict_fail(struct verdict *v, const char *invariant, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void fault_verdict_init(struct verdict *v, uint64_t cut);

#endif /* FAULTS_JUDGE_H */
