/*
 * liverun.h - one workload run with a fault plan armed, judged while it
 * runs ("live"): the piece pcfaults' run phase and the crash-schedule fuzz
 * target share.
 *
 * fault_run_workload() records workload w into a trace with the plan armed
 * after the image exists (before op -1, the first open), the runner told to
 * continue after a failed operation, and the runner's engine handle
 * observed.  While it runs:
 *
 *   fault-not-reported        an operation during which a fault fired
 *                             returned success;
 *   poisoned-handle-succeeded an operation (or a read) on a poisoned handle
 *                             succeeded;
 *   failed-without-fault      (strict only) an operation failed before any
 *                             fault fired;
 *   live-read-failed,         (live only, after the first fault) reads
 *   live-data:*               through the unpoisoned handle of the sectors
 *                             just written plus a few sampled ones, judged
 *                             by the in-session model (shadow.h): a failed
 *                             op may or may not have landed, acknowledged
 *                             data stays; a wide look (final_probes
 *                             sectors) before the final close.
 *
 * The first violation is kept in live_v (cut = trace length when found);
 * the run goes on to the end so the trace is whole.  A counting run
 * (count_only) arms nothing and counts the calls of every point
 * (fault_get_stats()), for choosing nth.
 *
 * Linking: the program must wrap the engine's session calls,
 *   -Wl,--wrap=vhdx_open,--wrap=vhdx_close,--wrap=vhdx_abandon
 * (the wrappers are defined in liverun.c and only forward outside a run).
 * Faults fire only in a build with FIU_ENABLE.
 */
#ifndef FAULTS_LIVERUN_H
#define FAULTS_LIVERUN_H

#include <stddef.h>
#include <stdint.h>

#include "faults/plan.h"
#include "faults/shadow.h"
#include "harness/sweep.h" /* struct verdict */
#include "harness/workload.h"

struct subject_ops;
struct subject_handle;

struct fault_run {
    /* in */
    const struct subject_ops *subj; /* the implementation under test (NULL: libvhdx) */
    struct fault_plan plan;    /* armed at op -1 (after the image is created) */
    int count_only;            /* clean run: count calls, fail nothing */
    int live;                  /* in-session read-back checks on */
    int strict;                /* an op failing before any fault fired is a violation */
    unsigned final_probes;     /* sectors read before the final close (0: 256) */
    uint64_t rng;              /* probe sampling seed (0: from the workload seed) */
    /* out */
    int fired;                 /* the plan fired at least once */
    long fired_op;             /* op of the first injection (-1 open, -2 close) */
    uint64_t fired_pos;        /* trace length at the first injection */
    int fired_point;           /* point of the first injection */
    struct verdict live_v;     /* first in-session violation (ok when none) */
    long live_op;              /* op it was found after */
    uint64_t live_reads;       /* sectors read back */
    /* private */
    const struct workload *w;
    struct trace *t;
    struct shadow sh;
    struct subject_handle *h;  /* the runner's handle, NULL between sessions */
    long cur_op;
    int close_seen, close_rc;  /* a close of the runner's handle in this op, and its result */
    uint64_t inj_in_op;        /* faults injected during the current op */
    int drop_in_op;            /* a flush-lose fault fired during the current op */
    int pre_poisoned;          /* the handle was poisoned when the op began */
};

/* Runs w with r's plan (set r's "in" fields, zero the rest) into t
 * (initialised here).  Returns 0 (results in r), or -1 with a message in
 * err when the plan cannot be armed or the runner fails. */
int fault_run_workload(struct fault_run *r, const struct workload *w, struct trace *t, char *err, size_t errlen);

#endif /* FAULTS_LIVERUN_H */
