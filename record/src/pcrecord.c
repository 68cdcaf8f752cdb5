/*
 * pcrecord.c - libpcrecord.so, a preload library that records every
 * write-side call any program makes on one file, into a spool (spool.h)
 * that pcrecord-pack turns into a harness trace.
 *
 *   POWERCUT_RECORD_FILE=img.vhdx POWERCUT_RECORD_SPOOL=out.spool \
 *   LD_PRELOAD=libpcrecord.so qemu-io -c 'write -P 1 0 64k' img.vhdx
 *
 * What it records: pwrite, pwrite64, pwritev, pwritev64, pwritev2,
 * pwritev64v2, write, writev, ftruncate(64), truncate(64), fallocate(64),
 * posix_fallocate(64), fsync, fdatasync, syncfs, sync, sync_file_range,
 * copy_file_range, sendfile(64), splice (the bytes are read back from the
 * file after the call), and open/creat with O_TRUNC.  The file is known by
 * device and inode, so every descriptor that refers to it counts, however
 * it was obtained; descriptors are followed through open/openat/creat, dup,
 * dup2, dup3, fcntl(F_DUPFD*), close and close_range, and a descriptor the
 * library did not see opened is identified with fstat on first use.
 *
 * Guarantees:
 *  - The host program behaves as without the library: every intercepted
 *    call is passed to the real function with its arguments, its result
 *    and errno are returned unchanged, and the library never aborts.
 *  - Records are appended before the intercepted call returns, one
 *    writev() per record under a lock taken with every signal blocked in
 *    the calling thread (a signal handler that writes to the file cannot
 *    deadlock against its own thread), so the spool order is the order in
 *    which calls completed, across threads and processes, and a call the
 *    program observed as finished is in the spool before anything the
 *    program does next.
 *  - On anything it cannot record faithfully (a writable shared mmap of
 *    the file, fallocate modes that move data, Linux AIO submitted on the
 *    file, an error writing the spool) it stops recording, says why once on
 *    stderr, appends an X record (or, if the spool itself failed, writes
 *    the reason to SPOOL.stopped) and from then on only passes calls
 *    through.  The spool then is a faithful prefix of the run.
 *  - fork: the lock is held across fork (pthread_atfork) so the child
 *    never inherits it locked; the child appends its own P record.  exec:
 *    the new image loads the library again from LD_PRELOAD and appends to
 *    the same spool.
 *
 * Not seen (documented in docs/external.md): writes made by glibc-internal
 * paths (stdio fwrite/fflush on the file), io_uring submissions, raw
 * syscall(2) calls, and writes through a mapping created before the
 * library loaded.  pcrecord-pack --final compares the trace's end state
 * with the file the program left, so a missed write is reported.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/aio_abi.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "spool.h"

#define EXPORT __attribute__((visibility("default")))

/* Interposed names glibc declares only in fortified builds, and libaio's. */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);
int io_submit(aio_context_t ctx, long nr, struct iocb **iocbs);
#define FD_TABLE 65536
#define SPOOL_FD_MIN 900 /* keep the spool descriptor out of the program's way */

/* Descriptor states in fdstate[] (only OTHER is trusted without fstat). */
enum { FD_UNKNOWN = 0, FD_OTHER = 1, FD_TARGET = 2, FD_SYNC = 4 };

/* Library states. */
enum { ST_NEW = 0, ST_ACTIVE = 1, ST_OFF = 2, ST_STOPPED = 3 };

struct recorder {
    int state;                  /* ST_* (atomic) */
    char target[4096];          /* absolute or as given path of the image */
    char spool_path[4096];      /* spool file */
    int spool_fd;               /* O_APPEND descriptor of the spool */
    int have_target;            /* dev/ino known (atomic) */
    dev_t dev;                  /* the image's device */
    ino_t ino;                  /* and inode */
    pid_t pid;                  /* process that owns this copy of the state */
    uint64_t next_flush;        /* flush ids (low 32 bits; pid in the high bits) */
    pthread_mutex_t lock;       /* serializes spool appends */
};

static struct recorder R = {.state = ST_NEW, .spool_fd = -1, .lock = PTHREAD_MUTEX_INITIALIZER};
static unsigned char fdstate[FD_TABLE]; /* FD_* per descriptor (atomic bytes) */
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static __thread int in_hook __attribute__((tls_model("initial-exec"))); /* recursion guard */

/* ---- raw helpers (never through our own wrappers) ----------------------------- */
/* fstat, stat, lseek and pread are not intercepted: glibc's are used. */
static long sys_write(int fd, const void *buf, size_t n) { return syscall(SYS_write, fd, buf, n); }
static int sys_open(const char *p, int flags, mode_t mode) { return (int)syscall(SYS_openat, AT_FDCWD, p, flags, mode); }
static int sys_close(int fd) { return (int)syscall(SYS_close, fd); }
static int sys_fstat(int fd, struct stat *st) { return fstat(fd, st); }
static int sys_stat(const char *p, struct stat *st) { return stat(p, st); }
static long sys_lseek(int fd, off_t off, int whence) { return (long)lseek(fd, off, whence); }
static long sys_pread(int fd, void *buf, size_t n, off_t off) { return (long)pread(fd, buf, n, off); }
static pid_t sys_gettid(void) { return (pid_t)syscall(SYS_gettid); }

static void say(const char *a, const char *b)
{
    sys_write(2, "pcrecord: ", 10);
    sys_write(2, a, strlen(a));
    if (b) {
        sys_write(2, ": ", 2);
        sys_write(2, b, strlen(b));
    }
    sys_write(2, "\n", 1);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static int state(void) { return __atomic_load_n(&R.state, __ATOMIC_ACQUIRE); }

/* ---- the spool ------------------------------------------------------------------- */
static void stop_recording_locked(const char *why, const char *detail);

/* Appends one record (header + up to 'niov' data pieces).  Caller holds the
 * lock.  Returns 0, or -1 after stopping the recorder. */
static int append_locked(uint8_t kind, uint8_t flags, uint64_t a, uint64_t b, uint32_t c, const struct iovec *data,
                         int niov, uint32_t datalen)
{
    if (R.spool_fd < 0)
        return -1;
    uint8_t h[SPOOL_HDR];
    memset(h, 0, sizeof h);
    put32(h, SPOOL_MAGIC);
    h[4] = kind;
    h[5] = flags;
    put32(h + 8, (uint32_t)getpid());
    put32(h + 12, (uint32_t)sys_gettid());
    put64(h + 16, a);
    put64(h + 24, b);
    put32(h + 32, c);
    put32(h + 36, datalen);
    struct iovec iov[IOV_MAX];
    int n = 0;
    iov[n++] = (struct iovec){h, sizeof h};
    for (int i = 0; i < niov && n < IOV_MAX; i++)
        if (data[i].iov_len)
            iov[n++] = data[i];
    size_t total = sizeof h + datalen;
    size_t done = 0;
    while (done < total) {
        long w = syscall(SYS_writev, R.spool_fd, iov, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = errno;
            R.spool_fd = -1; /* do not write a partial stream further */
            stop_recording_locked("cannot write the spool", strerror(e));
            return -1;
        }
        done += (size_t)w;
        /* Advance past what was written (a short writev on a regular file is rare). */
        size_t skip = (size_t)w;
        int k = 0;
        while (k < n && skip >= iov[k].iov_len) {
            skip -= iov[k].iov_len;
            k++;
        }
        if (k < n) {
            iov[k].iov_base = (uint8_t *)iov[k].iov_base + skip;
            iov[k].iov_len -= skip;
        }
        memmove(iov, iov + k, (size_t)(n - k) * sizeof *iov);
        n -= k;
    }
    return 0;
}

/* Lock with every signal blocked in this thread; unlock restores the mask. */
static void lock(sigset_t *old)
{
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, old);
    pthread_mutex_lock(&R.lock);
}

static void unlock(const sigset_t *old)
{
    pthread_mutex_unlock(&R.lock);
    pthread_sigmask(SIG_SETMASK, old, NULL);
}

static int append(uint8_t kind, uint8_t flags, uint64_t a, uint64_t b, uint32_t c, const struct iovec *data, int niov,
                  uint32_t datalen)
{
    sigset_t old;
    lock(&old);
    in_hook = 1; /* signals are blocked: a handler cannot observe it */
    int rc = state() == ST_ACTIVE ? append_locked(kind, flags, a, b, c, data, niov, datalen) : -1;
    in_hook = 0;
    unlock(&old);
    return rc;
}

static void stop_recording_locked(const char *why, const char *detail)
{
    if (state() != ST_ACTIVE)
        return;
    char msg[512];
    size_t n = 0;
    for (const char *s = why; *s && n < sizeof msg - 1; s++)
        msg[n++] = *s;
    if (detail)
        for (const char *s = ": "; *s && n < sizeof msg - 1; s++)
            msg[n++] = *s;
    for (const char *s = detail ? detail : ""; *s && n < sizeof msg - 1; s++)
        msg[n++] = *s;
    msg[n] = '\0';
    if (R.spool_fd >= 0) {
        struct iovec d = {msg, n};
        append_locked(SPOOL_STOPPED, 0, 0, 0, 0, &d, 1, (uint32_t)n);
    }
    if (R.spool_fd < 0) {
        /* The spool failed: leave the reason beside it. */
        char p[4200];
        size_t l = strlen(R.spool_path);
        if (l + sizeof PCRECORD_STOPPED_SUFFIX < sizeof p) {
            memcpy(p, R.spool_path, l);
            memcpy(p + l, PCRECORD_STOPPED_SUFFIX, sizeof PCRECORD_STOPPED_SUFFIX);
            int fd = sys_open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (fd >= 0) {
                sys_write(fd, msg, n);
                sys_write(fd, "\n", 1);
                sys_close(fd);
            }
        }
    }
    __atomic_store_n(&R.state, ST_STOPPED, __ATOMIC_RELEASE);
    say("stopped recording", msg);
}

static void stop_recording(const char *why, const char *detail)
{
    sigset_t old;
    lock(&old);
    stop_recording_locked(why, detail);
    unlock(&old);
}

/* The P record of this process: pid, parent, command line. */
static void announce_locked(void)
{
    char cmd[4096];
    size_t n = 0;
    int fd = sys_open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC, 0);
    if (fd >= 0) {
        long r;
        while (n < sizeof cmd && (r = syscall(SYS_read, fd, cmd + n, sizeof cmd - n)) > 0)
            n += (size_t)r;
        sys_close(fd);
    }
    struct iovec d = {cmd, n};
    append_locked(SPOOL_PROCESS, 0, (uint64_t)getpid(), (uint64_t)getppid(), 0, &d, 1, (uint32_t)n);
}

/* ---- the target ---------------------------------------------------------------------- */
/* Pins the target's identity from the path, if it exists now. */
static void try_pin(void)
{
    if (__atomic_load_n(&R.have_target, __ATOMIC_ACQUIRE))
        return;
    struct stat st;
    if (sys_stat(R.target, &st) == 0 && S_ISREG(st.st_mode)) {
        R.dev = st.st_dev;
        R.ino = st.st_ino;
        __atomic_store_n(&R.have_target, 1, __ATOMIC_RELEASE);
    }
}

static void fd_set_state(int fd, unsigned char s)
{
    if (fd >= 0 && fd < FD_TABLE)
        __atomic_store_n(&fdstate[fd], s, __ATOMIC_RELAXED);
}

/* FD_TARGET (| FD_SYNC) when fd refers to the image, else 0.  Only a
 * cached "other" answer is trusted without an fstat. */
static int classify(int fd)
{
    if (fd < 0 || state() != ST_ACTIVE)
        return 0;
    unsigned char s = fd < FD_TABLE ? __atomic_load_n(&fdstate[fd], __ATOMIC_RELAXED) : FD_UNKNOWN;
    if (s == FD_OTHER)
        return 0;
    struct stat st;
    if (sys_fstat(fd, &st) != 0)
        return 0;
    if (!S_ISREG(st.st_mode)) {
        fd_set_state(fd, FD_OTHER);
        return 0;
    }
    try_pin();
    if (!__atomic_load_n(&R.have_target, __ATOMIC_ACQUIRE))
        return 0; /* not cached: the target may appear later under this descriptor */
    if (st.st_dev != R.dev || st.st_ino != R.ino) {
        fd_set_state(fd, FD_OTHER);
        return 0;
    }
    if (s & FD_TARGET)
        return s;
    long fl = syscall(SYS_fcntl, fd, F_GETFL);
    s = (unsigned char)(FD_TARGET | (fl >= 0 && (fl & (O_SYNC | O_DSYNC)) ? FD_SYNC : 0));
    fd_set_state(fd, s);
    return s;
}

static int path_is_target(const char *path)
{
    if (!path || state() != ST_ACTIVE)
        return 0;
    try_pin();
    struct stat st;
    return __atomic_load_n(&R.have_target, __ATOMIC_ACQUIRE) && sys_stat(path, &st) == 0 && st.st_dev == R.dev &&
           st.st_ino == R.ino;
}

static uint64_t file_size(int fd)
{
    struct stat st;
    return sys_fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* ---- initialisation ------------------------------------------------------------------- */
static __thread sigset_t fork_mask __attribute__((tls_model("initial-exec"))); /* mask before fork */

static void atfork_prepare(void) { lock(&fork_mask); }

static void atfork_parent(void) { unlock(&fork_mask); }

static void atfork_child(void)
{
    R.pid = getpid();
    if (state() == ST_ACTIVE)
        announce_locked();
    unlock(&fork_mask);
}

static void init(void)
{
    const char *file = getenv(PCRECORD_ENV_FILE);
    const char *spool = getenv(PCRECORD_ENV_SPOOL);
    if (!file || !*file || !spool || !*spool) {
        __atomic_store_n(&R.state, ST_OFF, __ATOMIC_RELEASE);
        return;
    }
    if (strlen(file) >= sizeof R.target || strlen(spool) >= sizeof R.spool_path) {
        say("path too long, not recording", file);
        __atomic_store_n(&R.state, ST_OFF, __ATOMIC_RELEASE);
        return;
    }
    strcpy(R.target, file);
    strcpy(R.spool_path, spool);
    int fd = sys_open(spool, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        say("cannot open the spool, not recording", strerror(errno));
        __atomic_store_n(&R.state, ST_OFF, __ATOMIC_RELEASE);
        return;
    }
    int hi = (int)syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, SPOOL_FD_MIN);
    if (hi >= 0) {
        sys_close(fd);
        fd = hi;
    }
    R.spool_fd = fd;
    fd_set_state(fd, FD_OTHER);
    R.pid = getpid();
    try_pin();
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
    __atomic_store_n(&R.state, ST_ACTIVE, __ATOMIC_RELEASE);
    sigset_t old;
    lock(&old);
    announce_locked();
    unlock(&old);
    const char *q = getenv(PCRECORD_ENV_QUIET);
    if (!q || strcmp(q, "1") != 0)
        say("recording writes to", R.target);
}

__attribute__((constructor)) static void pcrecord_ctor(void) { pthread_once(&init_once, init); }

/* Ready to record?  (Lazily initialised: another constructor may call us first.) */
static int active(void)
{
    if (in_hook)
        return 0;
    int s = state();
    if (s == ST_NEW) {
        pthread_once(&init_once, init);
        s = state();
    }
    return s == ST_ACTIVE;
}

/* ---- real functions -------------------------------------------------------------------- */
#define REAL(name, ret, args)                                              \
    static ret(*real_##name) args;                                          \
    static ret(*get_##name(void)) args                                      \
    {                                                                       \
        ret(*f) args = __atomic_load_n(&real_##name, __ATOMIC_ACQUIRE);     \
        if (!f) {                                                           \
            f = (ret(*) args)dlsym(RTLD_NEXT, #name);                       \
            __atomic_store_n(&real_##name, f, __ATOMIC_RELEASE);            \
        }                                                                   \
        return f;                                                           \
    }

REAL(pwrite, ssize_t, (int, const void *, size_t, off_t))
REAL(pwrite64, ssize_t, (int, const void *, size_t, off_t))
REAL(pwritev, ssize_t, (int, const struct iovec *, int, off_t))
REAL(pwritev64, ssize_t, (int, const struct iovec *, int, off_t))
REAL(pwritev2, ssize_t, (int, const struct iovec *, int, off_t, int))
REAL(pwritev64v2, ssize_t, (int, const struct iovec *, int, off_t, int))
REAL(write, ssize_t, (int, const void *, size_t))
REAL(writev, ssize_t, (int, const struct iovec *, int))
REAL(ftruncate, int, (int, off_t))
REAL(ftruncate64, int, (int, off_t))
REAL(truncate, int, (const char *, off_t))
REAL(truncate64, int, (const char *, off_t))
REAL(fallocate, int, (int, int, off_t, off_t))
REAL(fallocate64, int, (int, int, off_t, off_t))
REAL(posix_fallocate, int, (int, off_t, off_t))
REAL(posix_fallocate64, int, (int, off_t, off_t))
REAL(fsync, int, (int))
REAL(fdatasync, int, (int))
REAL(syncfs, int, (int))
REAL(sync, void, (void))
REAL(sync_file_range, int, (int, off_t, off_t, unsigned int))
REAL(copy_file_range, ssize_t, (int, off_t *, int, off_t *, size_t, unsigned int))
REAL(sendfile, ssize_t, (int, int, off_t *, size_t))
REAL(sendfile64, ssize_t, (int, int, off_t *, size_t))
REAL(splice, ssize_t, (int, off_t *, int, off_t *, size_t, unsigned int))
REAL(open, int, (const char *, int, ...))
REAL(open64, int, (const char *, int, ...))
REAL(openat, int, (int, const char *, int, ...))
REAL(openat64, int, (int, const char *, int, ...))
REAL(__open_2, int, (const char *, int))
REAL(__open64_2, int, (const char *, int))
REAL(__openat_2, int, (int, const char *, int))
REAL(__openat64_2, int, (int, const char *, int))
REAL(creat, int, (const char *, mode_t))
REAL(creat64, int, (const char *, mode_t))
REAL(dup, int, (int))
REAL(dup2, int, (int, int))
REAL(dup3, int, (int, int, int))
REAL(fcntl, int, (int, int, ...))
REAL(fcntl64, int, (int, int, ...))
REAL(close, int, (int))
REAL(close_range, int, (unsigned int, unsigned int, int))
REAL(io_submit, int, (aio_context_t, long, struct iocb **))

/* ---- recording helpers ------------------------------------------------------------------ */
/* A write of the bytes in iov (total 'len' completed bytes) at 'off'. */
static void rec_writev(int st, uint64_t off, const struct iovec *iov, int iovcnt, size_t len)
{
    uint8_t flags = (st & FD_SYNC) ? SPOOL_F_SYNC : 0;
    /* Records of at most SPOOL_MAX_DATA bytes and IOV_MAX-1 pieces. */
    struct iovec piece[64];
    int np = 0;
    size_t in_rec = 0, left = len;
    uint64_t rec_off = off;
    for (int i = 0; i < iovcnt && left > 0; i++) {
        const uint8_t *p = iov[i].iov_base;
        size_t n = iov[i].iov_len < left ? iov[i].iov_len : left;
        while (n > 0) {
            size_t take = n;
            if (take > SPOOL_MAX_DATA - in_rec)
                take = SPOOL_MAX_DATA - in_rec;
            piece[np++] = (struct iovec){(void *)p, take};
            in_rec += take;
            p += take;
            n -= take;
            left -= take;
            if (np == 64 || in_rec == SPOOL_MAX_DATA || left == 0) {
                if (append(SPOOL_WRITE, flags, rec_off, 0, 0, piece, np, (uint32_t)in_rec) != 0)
                    return;
                rec_off += in_rec;
                np = 0;
                in_rec = 0;
            }
        }
    }
}

static void rec_write(int st, uint64_t off, const void *buf, size_t len)
{
    struct iovec v = {(void *)buf, len};
    rec_writev(st, off, &v, 1, len);
}

static void rec_simple(uint8_t kind, uint64_t a, uint64_t b, uint32_t c) { append(kind, 0, a, b, c, NULL, 0, 0); }

/* The bytes now in [off, off+len) of the file, as a write (for calls whose
 * data the library never sees: copy_file_range, sendfile, splice). */
static void rec_readback(int fd, int st, uint64_t off, size_t len)
{
    uint8_t *buf = malloc(len < (1u << 20) ? len : (1u << 20));
    if (!buf) {
        stop_recording("out of memory reading back a copied range", NULL);
        return;
    }
    size_t done = 0;
    while (done < len) {
        size_t n = len - done < (1u << 20) ? len - done : (1u << 20);
        long r = sys_pread(fd, buf, n, (off_t)(off + done));
        if (r <= 0) {
            free(buf);
            stop_recording("cannot read back a range copied into the file", strerror(r < 0 ? errno : EIO));
            return;
        }
        rec_write(st, off + done, buf, (size_t)r);
        done += (size_t)r;
    }
    free(buf);
}

static uint64_t next_flush_id(void)
{
    return ((uint64_t)(uint32_t)getpid() << 32) | (__atomic_add_fetch(&R.next_flush, 1, __ATOMIC_RELAXED) & 0xFFFFFFFFu);
}

/* ---- write calls --------------------------------------------------------------------------- */
#define SAVE_ERRNO int saved_errno_ = errno
#define RESTORE_ERRNO errno = saved_errno_

static ssize_t do_pwrite(ssize_t (*f)(int, const void *, size_t, off_t), int fd, const void *buf, size_t n, off_t off)
{
    if (!f)
        return errno = ENOSYS, -1;
    if (!active())
        return f(fd, buf, n, off);
    ssize_t r = f(fd, buf, n, off);
    if (r > 0) {
        SAVE_ERRNO;
        int st = classify(fd);
        if (st)
            rec_write(st, (uint64_t)off, buf, (size_t)r);
        RESTORE_ERRNO;
    }
    return r;
}

EXPORT ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) { return do_pwrite(get_pwrite(), fd, buf, n, off); }
EXPORT ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    return do_pwrite(get_pwrite64(), fd, buf, n, off);
}

static void after_pwritev(int fd, const struct iovec *iov, int cnt, off_t off, ssize_t r)
{
    if (r > 0) {
        SAVE_ERRNO;
        int st = classify(fd);
        if (st)
            rec_writev(st, (uint64_t)off, iov, cnt, (size_t)r);
        RESTORE_ERRNO;
    }
}

EXPORT ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
    ssize_t (*f)(int, const struct iovec *, int, off_t) = get_pwritev();
    if (!f)
        return errno = ENOSYS, -1;
    if (!active())
        return f(fd, iov, cnt, off);
    ssize_t r = f(fd, iov, cnt, off);
    after_pwritev(fd, iov, cnt, off, r);
    return r;
}

EXPORT ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off_t off)
{
    ssize_t (*f)(int, const struct iovec *, int, off_t) = get_pwritev64();
    if (!f)
        return errno = ENOSYS, -1;
    if (!active())
        return f(fd, iov, cnt, off);
    ssize_t r = f(fd, iov, cnt, off);
    after_pwritev(fd, iov, cnt, off, r);
    return r;
}

/* Offset a write at the file position went to: the position after it minus
 * its length (right for O_APPEND too). */
static void after_write_at_pos(int fd, const struct iovec *iov, int cnt, ssize_t r)
{
    if (r > 0) {
        SAVE_ERRNO;
        int st = classify(fd);
        if (st) {
            long pos = sys_lseek(fd, 0, SEEK_CUR);
            if (pos >= r)
                rec_writev(st, (uint64_t)(pos - r), iov, cnt, (size_t)r);
            else
                stop_recording("cannot tell where a write() went (lseek failed)", NULL);
        }
        RESTORE_ERRNO;
    }
}

static ssize_t do_pwritev2(ssize_t (*f)(int, const struct iovec *, int, off_t, int), int fd, const struct iovec *iov,
                           int cnt, off_t off, int flags)
{
    if (!f)
        return errno = ENOSYS, -1;
    if (!active())
        return f(fd, iov, cnt, off, flags);
    ssize_t r = f(fd, iov, cnt, off, flags);
    if (off == -1)
        after_write_at_pos(fd, iov, cnt, r);
    else
        after_pwritev(fd, iov, cnt, off, r);
    if (r > 0 && (flags & (RWF_DSYNC | RWF_SYNC))) {
        SAVE_ERRNO;
        int st = classify(fd);
        if (st) {
            uint64_t id = next_flush_id();
            rec_simple(SPOOL_FLUSH_ISSUE, id, 0, 0);
            rec_simple(SPOOL_FLUSH_DONE, id, 0, 0);
        }
        RESTORE_ERRNO;
    }
    return r;
}

EXPORT ssize_t pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
    return do_pwritev2(get_pwritev2(), fd, iov, cnt, off, flags);
}
EXPORT ssize_t pwritev64v2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
    return do_pwritev2(get_pwritev64v2(), fd, iov, cnt, off, flags);
}

EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
    ssize_t (*f)(int, const void *, size_t) = get_write();
    if (!f)
        return (ssize_t)syscall(SYS_write, fd, buf, n);
    if (!active())
        return f(fd, buf, n);
    ssize_t r = f(fd, buf, n);
    struct iovec v = {(void *)buf, n};
    after_write_at_pos(fd, &v, 1, r);
    return r;
}

EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    ssize_t (*f)(int, const struct iovec *, int) = get_writev();
    if (!f)
        return (ssize_t)syscall(SYS_writev, fd, iov, cnt);
    if (!active())
        return f(fd, iov, cnt);
    ssize_t r = f(fd, iov, cnt);
    after_write_at_pos(fd, iov, cnt, r);
    return r;
}

/* ---- size changes ---------------------------------------------------------------------------- */
static int do_ftruncate(int (*f)(int, off_t), int fd, off_t len)
{
    if (!f)
        return errno = ENOSYS, -1;
    if (!active())
        return f(fd, len);
    int r = f(fd, len);
    if (r == 0) {
        SAVE_ERRNO;
        if (classify(fd))
            rec_simple(SPOOL_TRUNCATE, (uint64_t)len, 0, 0);
        RESTORE_ERRNO;
    }
    return r;
}

EXPORT int ftruncate(int fd, off_t len) { return do_ftruncate(get_ftruncate(), fd, len); }
EXPORT int ftruncate64(int fd, off_t len) { return do_ftruncate(get_ftruncate64(), fd, len); }

static int do_truncate(int (*f)(const char *, off_t), const char *path, off_t len)
{
    if (!f)
        return errno = ENOSYS, -1;
    if (!active())
        return f(path, len);
    int r = f(path, len);
    if (r == 0) {
        SAVE_ERRNO;
        if (path_is_target(path))
            rec_simple(SPOOL_TRUNCATE, (uint64_t)len, 0, 0);
        RESTORE_ERRNO;
    }
    return r;
}

EXPORT int truncate(const char *path, off_t len) { return do_truncate(get_truncate(), path, len); }
EXPORT int truncate64(const char *path, off_t len) { return do_truncate(get_truncate64(), path, len); }

static void rec_fallocate(int mode, uint64_t off, uint64_t len, uint64_t before, uint64_t after)
{
    uint8_t d[16];
    put64(d, before);
    put64(d + 8, after);
    struct iovec v = {d, sizeof d};
    append(SPOOL_FALLOCATE, 0, off, len, (uint32_t)mode, &v, 1, sizeof d);
}

static int do_fallocate(int (*f)(int, int, off_t, off_t), int fd, int mode, off_t off, off_t len)
{
    if (!f)
        return errno = ENOSYS, -1;
    if (!active())
        return f(fd, mode, off, len);
    int saved = errno;
    int st = classify(fd);
    if (st && (mode & (FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_INSERT_RANGE)))
        stop_recording("fallocate moves data inside the file (COLLAPSE/INSERT_RANGE); not representable", NULL);
    uint64_t before = st ? file_size(fd) : 0;
    errno = saved;
    int r = f(fd, mode, off, len);
    if (r == 0 && st && state() == ST_ACTIVE) {
        SAVE_ERRNO;
        rec_fallocate(mode, (uint64_t)off, (uint64_t)len, before, file_size(fd));
        RESTORE_ERRNO;
    }
    return r;
}

EXPORT int fallocate(int fd, int mode, off_t off, off_t len) { return do_fallocate(get_fallocate(), fd, mode, off, len); }
EXPORT int fallocate64(int fd, int mode, off_t off, off_t len)
{
    return do_fallocate(get_fallocate64(), fd, mode, off, len);
}

/* posix_fallocate returns the error instead of setting errno. */
static int do_posix_fallocate(int (*f)(int, off_t, off_t), int fd, off_t off, off_t len)
{
    if (!f)
        return ENOSYS;
    if (!active())
        return f(fd, off, len);
    int saved = errno;
    int st = classify(fd);
    uint64_t before = st ? file_size(fd) : 0;
    errno = saved;
    int r = f(fd, off, len);
    if (r == 0 && st) {
        SAVE_ERRNO;
        rec_fallocate(0, (uint64_t)off, (uint64_t)len, before, file_size(fd));
        RESTORE_ERRNO;
    }
    return r;
}

EXPORT int posix_fallocate(int fd, off_t off, off_t len) { return do_posix_fallocate(get_posix_fallocate(), fd, off, len); }
EXPORT int posix_fallocate64(int fd, off_t off, off_t len)
{
    return do_posix_fallocate(get_posix_fallocate64(), fd, off, len);
}

/* ---- flushes ----------------------------------------------------------------------------------- */
static int do_flush(int (*f)(int), int fd, int is_target)
{
    if (!f)
        return errno = ENOSYS, -1;
    if (!is_target)
        return f(fd);
    uint64_t id = next_flush_id();
    rec_simple(SPOOL_FLUSH_ISSUE, id, 0, 0);
    int r = f(fd);
    SAVE_ERRNO;
    rec_simple(SPOOL_FLUSH_DONE, id, (uint64_t)(int64_t)(r == 0 ? 0 : -saved_errno_), 0);
    RESTORE_ERRNO;
    return r;
}

static int target_fd(int fd)
{
    if (!active())
        return 0;
    SAVE_ERRNO;
    int st = classify(fd);
    RESTORE_ERRNO;
    return st != 0;
}

EXPORT int fsync(int fd) { return do_flush(get_fsync(), fd, target_fd(fd)); }
EXPORT int fdatasync(int fd) { return do_flush(get_fdatasync(), fd, target_fd(fd)); }

/* syncfs flushes the whole file system: a barrier for the image if it lives there. */
EXPORT int syncfs(int fd)
{
    int t = 0;
    if (active()) {
        SAVE_ERRNO;
        struct stat st;
        try_pin();
        t = __atomic_load_n(&R.have_target, __ATOMIC_ACQUIRE) && sys_fstat(fd, &st) == 0 && st.st_dev == R.dev;
        RESTORE_ERRNO;
    }
    return do_flush(get_syncfs(), fd, t);
}

EXPORT void sync(void)
{
    void (*f)(void) = get_sync();
    int t = active() && __atomic_load_n(&R.have_target, __ATOMIC_ACQUIRE);
    uint64_t id = 0;
    if (t) {
        id = next_flush_id();
        rec_simple(SPOOL_FLUSH_ISSUE, id, 0, 0);
    }
    if (f)
        f();
    else
        syscall(SYS_sync);
    if (t)
        rec_simple(SPOOL_FLUSH_DONE, id, 0, 0);
}

/* Not a durability barrier (no metadata, no device cache flush): a mark. */
EXPORT int sync_file_range(int fd, off_t off, off_t n, unsigned int flags)
{
    int (*f)(int, off_t, off_t, unsigned int) = get_sync_file_range();
    if (!f)
        return errno = ENOSYS, -1;
    if (!active())
        return f(fd, off, n, flags);
    int r = f(fd, off, n, flags);
    if (r == 0) {
        SAVE_ERRNO;
        if (classify(fd))
            rec_simple(SPOOL_SYNC_RANGE, (uint64_t)off, (uint64_t)n, flags);
        RESTORE_ERRNO;
    }
    return r;
}

/* ---- copies into the file (data read back afterwards) ---------------------------------------- */
/* copy_file_range and splice share a signature: the bytes that landed at
 * the output position are read back from the file. */
typedef ssize_t (*copy_fn)(int, off_t *, int, off_t *, size_t, unsigned int);
static ssize_t do_copy(copy_fn f, int in, off_t *in_off, int out, off_t *out_off, size_t len, unsigned int flags)
{
    if (!f)
        return errno = ENOSYS, -1;
    if (!active())
        return f(in, in_off, out, out_off, len, flags);
    off_t start = out_off ? *out_off : 0;
    ssize_t r = f(in, in_off, out, out_off, len, flags);
    if (r > 0) {
        SAVE_ERRNO;
        int st = classify(out);
        if (st) {
            long pos = out_off ? (long)start : sys_lseek(out, 0, SEEK_CUR) - r;
            if (pos >= 0)
                rec_readback(out, st, (uint64_t)pos, (size_t)r);
        }
        RESTORE_ERRNO;
    }
    return r;
}

EXPORT ssize_t copy_file_range(int in, off_t *in_off, int out, off_t *out_off, size_t len, unsigned int flags)
{
    return do_copy(get_copy_file_range(), in, in_off, out, out_off, len, flags);
}

static ssize_t do_sendfile(ssize_t (*f)(int, int, off_t *, size_t), int out, int in, off_t *off, size_t n)
{
    if (!f)
        return errno = ENOSYS, -1;
    if (!active())
        return f(out, in, off, n);
    ssize_t r = f(out, in, off, n);
    if (r > 0) {
        SAVE_ERRNO;
        int st = classify(out);
        if (st) {
            long pos = sys_lseek(out, 0, SEEK_CUR) - r;
            if (pos >= 0)
                rec_readback(out, st, (uint64_t)pos, (size_t)r);
        }
        RESTORE_ERRNO;
    }
    return r;
}

EXPORT ssize_t sendfile(int out, int in, off_t *off, size_t n) { return do_sendfile(get_sendfile(), out, in, off, n); }
EXPORT ssize_t sendfile64(int out, int in, off_t *off, size_t n)
{
    return do_sendfile(get_sendfile64(), out, in, off, n);
}

EXPORT ssize_t splice(int in, off_t *in_off, int out, off_t *out_off, size_t len, unsigned int flags)
{
    return do_copy(get_splice(), in, in_off, out, out_off, len, flags);
}

/* ---- descriptors -------------------------------------------------------------------------------- */
/* A descriptor just opened: classify it now (and record O_TRUNC). */
static void after_open(int fd, int flags)
{
    if (fd < 0)
        return;
    SAVE_ERRNO;
    fd_set_state(fd, FD_UNKNOWN);
    int st = classify(fd);
    if (st && (flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY)
        rec_simple(SPOOL_TRUNCATE, 0, 0, 0);
    RESTORE_ERRNO;
}

static int needs_mode(int flags) { return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE; }

EXPORT int open(const char *path, int flags, ...)
{
    mode_t mode = 0;
    if (needs_mode(flags)) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    int (*f)(const char *, int, ...) = get_open();
    int fd = f ? f(path, flags, mode) : sys_open(path, flags, mode);
    if (active())
        after_open(fd, flags);
    return fd;
}

EXPORT int open64(const char *path, int flags, ...)
{
    mode_t mode = 0;
    if (needs_mode(flags)) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    int (*f)(const char *, int, ...) = get_open64();
    int fd = f ? f(path, flags, mode) : sys_open(path, flags, mode);
    if (active())
        after_open(fd, flags);
    return fd;
}

EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
    mode_t mode = 0;
    if (needs_mode(flags)) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    int (*f)(int, const char *, int, ...) = get_openat();
    int fd = f ? f(dirfd, path, flags, mode) : (int)syscall(SYS_openat, dirfd, path, flags, mode);
    if (active())
        after_open(fd, flags);
    return fd;
}

EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
    mode_t mode = 0;
    if (needs_mode(flags)) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    int (*f)(int, const char *, int, ...) = get_openat64();
    int fd = f ? f(dirfd, path, flags, mode) : (int)syscall(SYS_openat, dirfd, path, flags, mode);
    if (active())
        after_open(fd, flags);
    return fd;
}

EXPORT int __open_2(const char *path, int flags)
{
    int (*f)(const char *, int) = get___open_2();
    int fd = f ? f(path, flags) : sys_open(path, flags, 0);
    if (active())
        after_open(fd, flags);
    return fd;
}

EXPORT int __open64_2(const char *path, int flags)
{
    int (*f)(const char *, int) = get___open64_2();
    int fd = f ? f(path, flags) : sys_open(path, flags, 0);
    if (active())
        after_open(fd, flags);
    return fd;
}

EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
    int (*f)(int, const char *, int) = get___openat_2();
    int fd = f ? f(dirfd, path, flags) : (int)syscall(SYS_openat, dirfd, path, flags, 0);
    if (active())
        after_open(fd, flags);
    return fd;
}

EXPORT int __openat64_2(int dirfd, const char *path, int flags)
{
    int (*f)(int, const char *, int) = get___openat64_2();
    int fd = f ? f(dirfd, path, flags) : (int)syscall(SYS_openat, dirfd, path, flags, 0);
    if (active())
        after_open(fd, flags);
    return fd;
}

EXPORT int creat(const char *path, mode_t mode)
{
    int (*f)(const char *, mode_t) = get_creat();
    int fd = f ? f(path, mode) : sys_open(path, O_CREAT | O_WRONLY | O_TRUNC, mode);
    if (active())
        after_open(fd, O_CREAT | O_WRONLY | O_TRUNC);
    return fd;
}

EXPORT int creat64(const char *path, mode_t mode)
{
    int (*f)(const char *, mode_t) = get_creat64();
    int fd = f ? f(path, mode) : sys_open(path, O_CREAT | O_WRONLY | O_TRUNC, mode);
    if (active())
        after_open(fd, O_CREAT | O_WRONLY | O_TRUNC);
    return fd;
}

EXPORT int dup(int fd)
{
    int (*f)(int) = get_dup();
    int r = f ? f(fd) : (int)syscall(SYS_dup, fd);
    if (r >= 0)
        fd_set_state(r, FD_UNKNOWN);
    return r;
}

/* A program that dup2()s onto the spool descriptor gets it: the spool moves. */
static void protect_spool(int newfd)
{
    if (newfd < 0 || newfd != R.spool_fd)
        return;
    sigset_t old;
    lock(&old);
    if (newfd == R.spool_fd) {
        int moved = (int)syscall(SYS_fcntl, R.spool_fd, F_DUPFD_CLOEXEC, SPOOL_FD_MIN + 1);
        if (moved >= 0) {
            R.spool_fd = moved;
            fd_set_state(moved, FD_OTHER);
        } else {
            R.spool_fd = -1;
            stop_recording_locked("the program took over the spool descriptor", NULL);
        }
    }
    unlock(&old);
}

EXPORT int dup2(int oldfd, int newfd)
{
    protect_spool(newfd);
    int (*f)(int, int) = get_dup2();
    int r = f ? f(oldfd, newfd) : (int)syscall(SYS_dup3, oldfd, newfd, 0);
    if (r >= 0)
        fd_set_state(r, FD_UNKNOWN);
    return r;
}

EXPORT int dup3(int oldfd, int newfd, int flags)
{
    protect_spool(newfd);
    int (*f)(int, int, int) = get_dup3();
    int r = f ? f(oldfd, newfd, flags) : (int)syscall(SYS_dup3, oldfd, newfd, flags);
    if (r >= 0)
        fd_set_state(r, FD_UNKNOWN);
    return r;
}

static int do_fcntl(int (*f)(int, int, ...), int fd, int cmd, void *arg)
{
    int r = f ? f(fd, cmd, arg) : (int)syscall(SYS_fcntl, fd, cmd, arg);
    if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC))
        fd_set_state(r, FD_UNKNOWN);
    if (r >= 0 && cmd == F_SETFL)
        fd_set_state(fd, FD_UNKNOWN); /* O_SYNC/O_DSYNC may have changed */
    return r;
}

EXPORT int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return do_fcntl(get_fcntl(), fd, cmd, arg);
}

EXPORT int fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return do_fcntl(get_fcntl64(), fd, cmd, arg);
}

EXPORT int close(int fd)
{
    if (fd >= 0 && fd == R.spool_fd && state() == ST_ACTIVE)
        return 0; /* the spool stays open; the program sees a successful close */
    int (*f)(int) = get_close();
    fd_set_state(fd, FD_UNKNOWN);
    return f ? f(fd) : sys_close(fd);
}

EXPORT int close_range(unsigned int first, unsigned int last, int flags)
{
    int (*f)(unsigned int, unsigned int, int) = get_close_range();
    int spool = R.spool_fd;
    int r;
    if (spool >= 0 && (unsigned)spool >= first && (unsigned)spool <= last && state() == ST_ACTIVE &&
        !(flags & CLOSE_RANGE_CLOEXEC)) {
        /* Close around the spool descriptor. */
        r = 0;
        if ((unsigned)spool > first)
            r |= f ? f(first, (unsigned)spool - 1, flags) : (int)syscall(SYS_close_range, first, spool - 1, flags);
        if ((unsigned)spool < last)
            r |= f ? f((unsigned)spool + 1, last, flags) : (int)syscall(SYS_close_range, spool + 1, last, flags);
    } else {
        r = f ? f(first, last, flags) : (int)syscall(SYS_close_range, first, last, flags);
    }
    if (r == 0 && !(flags & CLOSE_RANGE_CLOEXEC))
        for (unsigned int fd = first; fd <= last && fd < FD_TABLE; fd++)
            if ((int)fd != spool)
                fd_set_state((int)fd, FD_UNKNOWN);
    return r;
}

/* ---- what cannot be recorded ---------------------------------------------------------------------- */
static void check_mmap(int fd, int prot, int flags)
{
    if (fd < 0 || !(prot & PROT_WRITE) || !(flags & MAP_SHARED) || !active())
        return;
    SAVE_ERRNO;
    if (classify(fd))
        stop_recording("the program maps the file writable and shared; writes through memory cannot be recorded",
                       NULL);
    RESTORE_ERRNO;
}

/* mmap is called through the raw system call: resolving the real one with
 * dlsym may itself allocate with mmap. */
EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    check_mmap(fd, prot, flags);
    return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    check_mmap(fd, prot, flags);
    return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

/* Linux AIO (QEMU aio=native): writes submitted on the file are not seen
 * with their completion order, so recording stops if any is submitted. */
EXPORT int io_submit(aio_context_t ctx, long nr, struct iocb **iocbs)
{
    if (active() && iocbs) {
        SAVE_ERRNO;
        for (long i = 0; i < nr && state() == ST_ACTIVE; i++) {
            const struct iocb *cb = iocbs[i];
            if (!cb)
                continue;
            int op = cb->aio_lio_opcode;
            if ((op == IOCB_CMD_PWRITE || op == IOCB_CMD_PWRITEV || op == IOCB_CMD_FSYNC ||
                 op == IOCB_CMD_FDSYNC) &&
                classify((int)cb->aio_fildes))
                stop_recording("Linux AIO (io_submit) writes to the file; use aio=threads", NULL);
        }
        RESTORE_ERRNO;
    }
    int (*f)(aio_context_t, long, struct iocb **) = get_io_submit();
    return f ? f(ctx, nr, iocbs) : (int)syscall(SYS_io_submit, ctx, nr, iocbs);
}
