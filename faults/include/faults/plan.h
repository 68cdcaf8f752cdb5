/*
 * plan.h - fault plans: which libfiu points of the engine fail, on which
 * call, and how; arming and disarming them in this process.
 *
 * The engine's fault points (catalogue: faults/points.md) live in the I/O
 * funnel engine/src/io.h and exist only in a build with -DFIU_ENABLE (the
 * `fiu` and `fiu-asan` presets).  A plan names a fault KIND, which fixes the
 * set of points it hits and what they do (FAULT_KIND_LIST below: the one
 * list of kinds), and a MODE:
 *
 *   mode        transient   only the nth call (counted over the kind's
 *                           points, 1-based) fails
 *               persistent  the nth call and every later one fail
 *               random      every call fails with probability p, drawn from
 *                           libfiu's own PRNG (fiu_enable_random), seeded with
 *                           fiu_set_prng_seed(seed) when the plan is armed
 *
 * Guarantees:
 *  - Transient and persistent plans are exact: libfiu calls our callback
 *    (fiu_enable_external) on every call of every catalogued point, so the
 *    nth call is counted in this process, deterministically.
 *  - Random plans are reproducible from (seed, p): libfiu's PRNG is one
 *    global 32-bit linear congruential generator, advanced once per call of
 *    a random-enabled point; we seed it when arming, so the same sequence of
 *    calls (a deterministic, single-threaded engine run) fails at the same
 *    calls.  libfiu seeds it from gettimeofday() otherwise.
 *  - While suspended (fault_suspend), external plans neither count nor fail;
 *    random plans need the caller to bypass fiu_fail (pcfaults does, see
 *    fault_observe).
 *  - Without FIU_ENABLE every arming call returns -ENOTSUP and nothing
 *    fires; parsing and formatting work in every build.
 *
 * The state is process-wide, like libfiu's; not thread-safe.
 */
#ifndef FAULTS_PLAN_H
#define FAULTS_PLAN_H

#include <stddef.h>
#include <stdint.h>

enum fault_point {
    FP_READ = 0, /* vhdx/io/read */
    FP_WRITE,    /* vhdx/io/write */
    FP_FLUSH,    /* vhdx/io/flush */
    FP_SIZE,     /* vhdx/io/size */
    FP_TRUNCATE, /* vhdx/io/truncate */
    FP_ALLOC,    /* vhdx/alloc */
    FP_COUNT
};
#define FP_ALL ((1u << FP_COUNT) - 1)

#define FP_BIT(id) (1u << FP_##id)

/* The fault kinds: the one place that names them (pcfaults --kinds and its
 * help, plans, fuzz schedules and the driver read this list).  The order
 * is part of the fuzz schedule encoding (schedule.h: byte 0 names a kind by
 * its index), so a new kind goes at the end.
 *
 *   X(ID, name, points, err, effect, about): ID makes FK_ID; name is what
 *   plans and --kinds say; points the (1 << FP_*) mask of the points it
 *   fails; err the errno the failing call returns; effect NONE, SHORT (a
 *   failing write writes its first half first) or LOSE (a failing flush
 *   makes the device drop every pending write) -- engine/src/io.h's
 *   failinfo; about one line.
 */
#define FAULT_KIND_LIST(X)                                                                               \
    X(EIO, "eio", FP_BIT(READ) | FP_BIT(WRITE) | FP_BIT(FLUSH) | FP_BIT(SIZE) | FP_BIT(TRUNCATE), EIO, NONE, \
      "the call returns -EIO")                                                                           \
    X(ENOSPC, "enospc", FP_BIT(WRITE) | FP_BIT(TRUNCATE) | FP_BIT(FLUSH), ENOSPC, NONE,                  \
      "the call returns -ENOSPC")                                                                        \
    X(SHORT, "short", FP_BIT(WRITE), EIO, SHORT, "the first half is written, then -EIO")                  \
    X(FLUSH, "flush", FP_BIT(FLUSH), EIO, NONE, "-EIO, pending writes kept")                              \
    X(FLUSH_LOSE, "flush-lose", FP_BIT(FLUSH), EIO, LOSE,                                                  \
      "-EIO, the device drops every pending write (Linux after a failed fsync)")                         \
    X(ENOMEM, "enomem", FP_BIT(ALLOC), ENOMEM, NONE, "the allocation returns NULL")

enum fault_kind {
#define X(id, name, points, err, effect, about) FK_##id,
    FAULT_KIND_LIST(X)
#undef X
    FK_COUNT
};
#define FK_ALL ((1u << FK_COUNT) - 1)

enum fault_mode { FM_TRANSIENT = 0, FM_PERSISTENT, FM_RANDOM, FM_COUNT };

/* The catalogued points of the subject under test: "vhdx/io/read", ... (the
 * engine's, by default) or another namespace's (fault_use_points). */
extern const char *fault_point_names[FP_COUNT];
/* Switches the catalogue to the points <ns>/io/read ... <ns>/alloc (the
 * subject's fault_ns: "vhdx" the engine, "qemu" the QEMU shim); call it
 * before a plan is armed.  0 or -EINVAL.  Process-wide, like the plan. */
int fault_use_points(const char *ns);
const char *fault_points_ns(void); /* "vhdx" unless switched */
extern const char *const fault_kind_names[FK_COUNT];  /* "eio", "enospc", ... */
extern const char *const fault_kind_about[FK_COUNT];  /* what a failing call does */
extern const char *const fault_mode_names[FM_COUNT];  /* "transient", ... */

/* Point index of a name, or -1. */
int fault_point_index(const char *name);
/* Bitmask of (1 << FP_*) a kind hits. */
unsigned fault_kind_points(enum fault_kind k);
/* The failinfo the engine's io.h decodes for kind k at point p (errno in the
 * low 16 bits, VHDX_FAULT_SHORT / VHDX_FAULT_LOSE bits). */
uintptr_t fault_kind_failinfo(enum fault_kind k, enum fault_point p);
/* "eio,short" / "all" -> bitmask of (1 << FK_*); -1 on an unknown name. */
int fault_kinds_parse(const char *s, unsigned *mask);
/* The kind names joined by sep ("eio, enospc, ..." for ", ") into buf. */
void fault_kinds_join(const char *sep, char *buf, size_t len);
/* "transient,persistent" / "all" (the two exact modes) -> bitmask; -1 on error. */
int fault_modes_parse(const char *s, unsigned *mask);

struct fault_plan {
    enum fault_kind kind;   /* what fails and how */
    enum fault_mode mode;   /* which calls fail */
    uint64_t nth;           /* transient/persistent: first failing call, 1-based */
    unsigned points;        /* optional restriction of the kind's points (bitmask), 0 = all */
    double probability;     /* random: per-call probability, (0, 1] */
    uint32_t seed;          /* random: libfiu PRNG seed */
};

/* "kind=eio mode=transient nth=17" [" points=vhdx/io/write"], or
 * "kind=short mode=random p=0.01 seed=42".  Returns the snprintf length. */
int fault_plan_format(const struct fault_plan *p, char *buf, size_t len);
/* Parses the format above (keys in any order; nth defaults to 1).
 * Returns 0, or -1 with a message in err. */
int fault_plan_parse(const char *s, struct fault_plan *p, char *err, size_t errlen);
/* Points the plan can fail (the kind's, restricted). */
unsigned fault_plan_points(const struct fault_plan *p);

/* What the armed plan saw since it was armed (or since fault_count_start). */
struct fault_stats {
    uint64_t calls[FP_COUNT];    /* calls per point while armed and not suspended */
    uint64_t counted;            /* calls of the plan's points (the nth counter) */
    uint64_t injected;           /* failures injected */
    uint64_t injected_per_point[FP_COUNT];
    int first_point;             /* point of the first injection, -1 if none */
};

/* Called right after a failure is decided, before the engine sees it. */
typedef void (*fault_inject_fn)(void *ctx, enum fault_point p);

/* Arms plan p (disarming any earlier plan) and resets the stats.
 * Returns 0, -EINVAL (bad plan) or -ENOTSUP (no FIU_ENABLE in this build). */
int fault_arm(const struct fault_plan *p);
/* Counting only: every point is watched, nothing fails. */
int fault_count_start(void);
/* Disables every catalogued point. */
void fault_disarm(void);
/* 1: points neither count nor fail (external plans); 0: back to normal. */
void fault_suspend(int on);
int fault_suspended(void);
const struct fault_stats *fault_get_stats(void);
/* Notification of every injected failure (NULL to remove). */
void fault_set_inject_hook(fault_inject_fn fn, void *ctx);
/* For observers that interpose fiu_fail (random plans fire inside libfiu,
 * without our callback): report one call of `name` that returned r. */
void fault_observe(const char *name, int r);
/* 1 when the build has fault points (FIU_ENABLE). */
int fault_supported(void);

#endif /* FAULTS_PLAN_H */
