/*
 * pcfault_preload.so - an exact fault plan for any program, on top of
 * libfiu's POSIX preload (fiu_posix_preload.so wraps pwrite, fdatasync,
 * ftruncate, ... and asks libfiu whether each call fails).
 *
 * libfiu's own remote-control commands (fiu-run -c) can fail a point always
 * or at random; "fail exactly the nth call" needs a callback in the target
 * process, which this library registers with fiu_enable_external() from a
 * constructor.  Load it after libfiu's two preload libraries:
 *
 *   LD_PRELOAD="/usr/lib/fiu/fiu_run_preload.so /usr/lib/fiu/fiu_posix_preload.so \
 *               .../pcfault_preload.so" PCFAULT_POINTS=... PROGRAM ...
 *
 * (scripts/powercut faults --exec does exactly this, and prints it.)
 *
 * Environment:
 *   PCFAULT_POINTS  comma list of libfiu point names (posix/io/rw/pwrite,
 *                   posix/io/sync/fdatasync, posix/io/rw/pwrite/reduce, ...);
 *                   the calls of all of them are counted together
 *   PCFAULT_MODE    count (never fail), transient (fail the nth call only) or
 *                   persistent (fail the nth call and every later one)
 *   PCFAULT_NTH     n, 1-based (default 1)
 *   PCFAULT_ERRNO   errno of a failing call (default 5, EIO); the "reduce"
 *                   points ignore it and shorten the transfer instead (a
 *                   short read or write, by libc random() bytes)
 *   PCFAULT_LOG     file to append to: one line per injected failure and,
 *                   at exit, one "calls" line per point
 *
 * Guarantees: counting is exact and thread-safe (atomic counter; calls are
 * numbered in the order they reach libfiu, which for a multithreaded
 * program depends on scheduling); the library never fails or counts its
 * own I/O (it writes its log with raw system calls, which the POSIX preload
 * does not wrap); a bad environment leaves the program unfaulted and says so
 * on stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fiu-control.h>
#include <fiu.h>

#define MAX_POINTS 32

static struct {
    char names[MAX_POINTS][64];  /* watched points */
    uint64_t calls[MAX_POINTS];  /* calls per point */
    uint64_t failed[MAX_POINTS]; /* injected failures per point */
    int n;
    int mode;                    /* 0 count, 1 transient, 2 persistent */
    uint64_t nth;
    long err;
    uint64_t counter;            /* calls of all watched points */
    char log[512];
} g;

static void log_line(const char *s)
{
    if (!g.log[0])
        return;
    long fd = syscall(SYS_openat, AT_FDCWD, g.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    (void)syscall(SYS_write, fd, s, strlen(s));
    (void)syscall(SYS_close, fd);
}

static int cb(const char *name, int *failnum, void **failinfo, unsigned int *flags)
{
    (void)failnum;
    (void)flags;
    int i;
    for (i = 0; i < g.n; i++)
        if (!strcmp(name, g.names[i]))
            break;
    if (i == g.n)
        return 0;
    __atomic_add_fetch(&g.calls[i], 1, __ATOMIC_RELAXED);
    uint64_t k = __atomic_add_fetch(&g.counter, 1, __ATOMIC_RELAXED);
    int fail = (g.mode == 1 && k == g.nth) || (g.mode == 2 && k >= g.nth);
    if (!fail)
        return 0;
    __atomic_add_fetch(&g.failed[i], 1, __ATOMIC_RELAXED);
    *failinfo = (void *)g.err;
    char line[160];
    snprintf(line, sizeof line, "inject call=%llu point=%s errno=%ld\n", (unsigned long long)k, name, g.err);
    log_line(line);
    return 1;
}

__attribute__((constructor(250))) static void pcfault_init(void)
{
    const char *pts = getenv("PCFAULT_POINTS"), *mode = getenv("PCFAULT_MODE");
    const char *nth = getenv("PCFAULT_NTH"), *err = getenv("PCFAULT_ERRNO"), *log = getenv("PCFAULT_LOG");
    if (!pts || !*pts)
        return;
    if (log)
        snprintf(g.log, sizeof g.log, "%s", log);
    g.mode = !mode || !strcmp(mode, "count") ? 0 : !strcmp(mode, "transient") ? 1 : !strcmp(mode, "persistent") ? 2 : -1;
    g.nth = nth ? strtoull(nth, NULL, 10) : 1;
    g.err = err ? strtol(err, NULL, 10) : EIO;
    if (g.mode < 0 || g.nth == 0 || g.err <= 0) {
        static const char msg[] = "pcfault_preload: bad PCFAULT_MODE/NTH/ERRNO; no faults injected\n";
        (void)syscall(SYS_write, 2, msg, sizeof msg - 1);
        return;
    }
    if (fiu_init(0) != 0)
        return;
    char buf[2048];
    snprintf(buf, sizeof buf, "%s", pts);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok && g.n < MAX_POINTS;
         tok = strtok_r(NULL, ",", &save)) {
        snprintf(g.names[g.n], sizeof g.names[0], "%s", tok);
        if (fiu_enable_external(g.names[g.n], 1, NULL, 0, cb) == 0)
            g.n++;
    }
}

__attribute__((destructor)) static void pcfault_fini(void)
{
    char line[200];
    for (int i = 0; i < g.n; i++) {
        snprintf(line, sizeof line, "calls point=%s calls=%llu failed=%llu\n", g.names[i],
                 (unsigned long long)__atomic_load_n(&g.calls[i], __ATOMIC_RELAXED),
                 (unsigned long long)__atomic_load_n(&g.failed[i], __ATOMIC_RELAXED));
        log_line(line);
    }
}
