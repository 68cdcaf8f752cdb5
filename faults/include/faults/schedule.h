/*
 * schedule.h - a fault schedule taken from fuzzer input bytes, for the
 * crash-schedule fuzz target (fuzz/fuzz_crash_schedule.c).
 *
 * FAULT_SCHEDULE_BYTES input bytes choose which engine operation fails and
 * how:
 *
 *   byte 0   bits 0-2  kind: its index in FAULT_KIND_LIST (plan.h);
 *                      FK_COUNT and above: no fault
 *            bit 3     mode: 0 transient, 1 persistent
 *            bits 4-7  reserved (ignored)
 *   byte 1-2 nth - 1, little-endian; reduced modulo max_nth when the
 *            caller gives one (the number of calls the run makes)
 *   byte 3   point restriction: 0 = every point of the kind; otherwise a
 *            bitmask over (1 << FP_*) intersected with the kind's points
 *            (an empty intersection means every point of the kind)
 *
 * Missing bytes read as zero.  Kinds outside `allowed` (a bitmask of
 * 1 << FK_*) decode as "no fault", so a target can keep out kinds its
 * oracle does not handle (the harness oracle needs faults/judge.h's rules
 * for flush-lose and short).
 *
 * Wiring (see docs/faults.md, "Fuzzing with faults"):
 *   struct fault_plan plan;
 *   int armed = fault_schedule_decode(data, n, FK_ALL, 0, &plan);
 *   ... workload_run_ex() with continue_on_error and a before_op hook that
 *       calls fault_arm(&plan) at op -1 (after the image is created) ...
 *   fault_disarm();
 *   ... judge the crash states with oracle_build()/fault_judge_image().
 * In a build without FIU_ENABLE, fault_arm() returns -ENOTSUP and the
 * target runs without faults.
 */
#ifndef FAULTS_SCHEDULE_H
#define FAULTS_SCHEDULE_H

#include <stddef.h>
#include <stdint.h>

#include "faults/plan.h"

#define FAULT_SCHEDULE_BYTES 4

/* Returns 1 and fills *p when the bytes select a fault, 0 for "no fault". */
int fault_schedule_decode(const uint8_t *data, size_t len, unsigned allowed, uint64_t max_nth,
                          struct fault_plan *p);
/* The inverse, for seeds and minimised inputs: writes FAULT_SCHEDULE_BYTES. */
void fault_schedule_encode(const struct fault_plan *p, uint8_t out[FAULT_SCHEDULE_BYTES]);

#endif /* FAULTS_SCHEDULE_H */
