/*
 * verdict.c - verdicts and the invariant registry (verdict.h, invariants.h).
 */
#include "harness/verdict.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *name, *cls, *about;
} table[INV_COUNT] = {
#define X(id, name, cls, about) {name, cls, about},
    INVARIANT_LIST(X)
#undef X
};

const char *invariant_name(enum invariant i) { return i < INV_COUNT ? table[i].name : "?"; }
const char *invariant_class(enum invariant i) { return i < INV_COUNT ? table[i].cls : "?"; }
const char *invariant_about(enum invariant i) { return i < INV_COUNT ? table[i].about : "?"; }

void verdict_init(struct verdict *v, uint64_t cut)
{
    memset(v, 0, sizeof *v);
    v->ok = 1;
    v->cut = cut;
    v->bad_sector = UINT64_MAX;
}

static void vfail(struct verdict *v, const char *name, const char *fmt, va_list ap)
{
    if (!v->ok)
        return; /* the first violation is the one reported */
    v->ok = 0;
    snprintf(v->invariant, sizeof v->invariant, "%s", name);
    vsnprintf(v->detail, sizeof v->detail, fmt, ap);
}

void verdict_fail(struct verdict *v, enum invariant i, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(v, invariant_name(i), fmt, ap);
    va_end(ap);
}

void verdict_fail_named(struct verdict *v, const char *name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(v, name, fmt, ap);
    va_end(ap);
}
