/*
 * testutil.h - the CHECK macros and an in-memory block device for the C
 * unit tests.
 *
 * CHECK(expr) prints file:line and the expression and counts a failure;
 * CHECK_RC(call, want) also prints both return codes with vhdx_strerror().
 * A test program returns test_summary(), which is nonzero on any failure.
 *
 * memdev: a growable in-memory struct bdev.  It keeps every write in a log
 * (offset, length, bytes) so a test can rebuild the device as it was after
 * any prefix of writes - the simplest possible power cut, independent of the
 * harness.  It can also fail the N-th write or flush.
 */
#ifndef POWERCUT_TESTUTIL_H
#define POWERCUT_TESTUTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vhdx/bdev.h"
#include "vhdx/errors.h"

extern int test_failures;
extern int test_checks;

#define CHECK(expr)                                                                        \
    do {                                                                                   \
        test_checks++;                                                                     \
        if (!(expr)) {                                                                     \
            test_failures++;                                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #expr);        \
        }                                                                                  \
    } while (0)

#define CHECK_RC(call, want)                                                               \
    do {                                                                                   \
        int got_ = (call);                                                                 \
        int want_ = (want);                                                                \
        test_checks++;                                                                     \
        if (got_ != want_) {                                                               \
            test_failures++;                                                               \
            fprintf(stderr, "%s:%d: %s returned %d (%s), expected %d (%s)\n", __FILE__,     \
                    __LINE__, #call, got_, vhdx_strerror(got_), want_, vhdx_strerror(want_)); \
        }                                                                                  \
    } while (0)

#define CHECK_OK(call) CHECK_RC(call, 0)

int test_summary(const char *name);

/* ---- memdev ---------------------------------------------------------------- */
struct memdev_write {
    uint64_t off;  /* offset written */
    size_t len;    /* bytes */
    uint8_t *data; /* copy; NULL for a truncate to off */
    int is_flush;  /* a flush marker */
};

struct memdev {
    struct bdev base;       /* must be first */
    uint8_t *buf;           /* contents */
    uint64_t size;          /* bytes */
    size_t cap;             /* allocated */
    int record;             /* keep a log of writes/truncates/flushes */
    struct memdev_write *log;
    size_t nlog, caplog;
    long fail_write_at;     /* fail the N-th write (1-based), 0 = never */
    long fail_flush_at;     /* fail the N-th flush, 0 = never */
    long writes, flushes, reads;
};

struct memdev *memdev_new(void);
void memdev_free(struct memdev *m);
/* A new memdev: a copy of base (NULL = empty) with the first n records of
 * m's log applied (flush records skipped). */
struct memdev *memdev_replay_prefix(const struct memdev *base, const struct memdev *m, size_t n);
/* A copy of the current contents (no log). */
struct memdev *memdev_clone(const struct memdev *m);
int memdev_equal(const struct memdev *a, const struct memdev *b);

/* Deterministic RNG for test data. */
uint64_t test_rand(uint64_t *state);
void test_fill(uint8_t *buf, size_t n, uint64_t seed);

#endif /* POWERCUT_TESTUTIL_H */
