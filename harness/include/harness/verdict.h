/*
 * verdict.h - the verdict on one crash state (or one fault run, or one
 * trace): the first violated invariant (invariants.h) with a human
 * explanation.  Every judge of the harness fills one through these helpers,
 * so a verdict means the same thing in every tool.
 */
#ifndef HARNESS_VERDICT_H
#define HARNESS_VERDICT_H

#include <stdint.h>

#include "harness/invariants.h"

struct verdict {
    int ok;                  /* 1: no violation */
    char invariant[48];      /* which invariant failed (invariant_name(), or "data:<kind>") */
    char detail[1024];       /* human explanation, including a hexdump diff */
    uint64_t cut;            /* trace index K the expectation was taken at */
    int open_rc;             /* result of the open */
    uint32_t replayed;       /* log entries replayed */
    uint64_t bad_sector;     /* virtual sector of a data violation, UINT64_MAX if none */
};

/* ok, the cut, no bad sector. */
void verdict_init(struct verdict *v, uint64_t cut);
/* Marks v failed with invariant i (keeps the first failure). */
void verdict_fail(struct verdict *v, enum invariant i, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The same with a composed name ("data:lost", "live-data:stale"). */
void verdict_fail_named(struct verdict *v, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* HARNESS_VERDICT_H */
