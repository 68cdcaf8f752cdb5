/*
 * test_record.c - libpcrecord.so and the packer, end to end.
 *
 *   test_record LIBPCRECORD.so
 *
 * The program runs itself as the recorded program ("victim" modes) under
 * LD_PRELOAD, packs the spool in-process and checks the trace operation by
 * operation: pwrite/pwritev/write at the file position and with O_APPEND,
 * dup/dup2 and a second open of the same file, O_DSYNC, fdatasync/fsync,
 * ftruncate, fallocate (punch hole, grow), sync_file_range, fork, threads,
 * a signal handler writing while the main thread writes, copy_file_range,
 * writes to other files and an eventfd (not recorded); a run that maps the
 * file (recording stops, the trace says so and does not verify); a run
 * that creates the file; a spool cut short; a damaged spool; and the
 * trace round trip through trace_save/trace_load.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pack.h"
#include "spool.h"

static int failures, checks;
#define CHECK(expr)                                                                  \
    do {                                                                             \
        checks++;                                                                    \
        if (!(expr)) {                                                               \
            failures++;                                                              \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #expr); \
        }                                                                            \
    } while (0)

#define MiB (1u << 20)
#define THREADS 4
#define PER_THREAD 32
#define SIG_WRITES_MAX 100000

/* ---- the victim (runs under LD_PRELOAD) ------------------------------------------ */
static int vfd; /* the target, for threads and the signal handler */
static volatile sig_atomic_t sig_writes;

static void die(const char *what)
{
    fprintf(stderr, "victim: %s: %s\n", what, strerror(errno));
    _exit(3);
}

static void fill(uint8_t *b, size_t n, uint8_t v) { memset(b, v, n); }

static void *thread_main(void *arg)
{
    int t = (int)(intptr_t)arg;
    uint8_t b[512];
    for (int i = 0; i < PER_THREAD; i++) {
        int k = t * PER_THREAD + i;
        fill(b, sizeof b, (uint8_t)k);
        if (pwrite(vfd, b, sizeof b, (off_t)(4 * MiB + (unsigned)k * 512)) != (ssize_t)sizeof b)
            die("thread pwrite");
    }
    return NULL;
}

static void on_alarm(int sig)
{
    (void)sig;
    int e = errno;
    uint8_t b[512];
    memset(b, 0x5A, sizeof b);
    if (pwrite(vfd, b, sizeof b, (off_t)(9 * MiB)) == (ssize_t)sizeof b)
        sig_writes++;
    errno = e;
}

static int victim_full(const char *target, const char *other)
{
    uint8_t b[4096];
    int fd = open(target, O_RDWR);
    if (fd < 0)
        die("open target");
    vfd = fd;
    fill(b, 4096, 'A');
    if (pwrite(fd, b, 4096, 8192) != 4096) /* W 8192+4096 */
        die("pwrite");
    if (lseek(fd, 100, SEEK_SET) != 100 || write(fd, "0123456789", 10) != 10) /* W 100+10 */
        die("write");
    uint8_t x[512], y[512];
    fill(x, 512, 'B');
    fill(y, 512, 'C');
    struct iovec iov[2] = {{x, 512}, {y, 512}};
    if (pwritev(fd, iov, 2, MiB) != 1024) /* W 1M+1024 */
        die("pwritev");
    if (fdatasync(fd) != 0) /* F */
        die("fdatasync");
    if (ftruncate(fd, 3 * MiB) != 0) /* T 3M */
        die("ftruncate");
    int fd2 = dup(fd);
    fill(b, 512, 'D');
    if (fd2 < 0 || pwrite(fd2, b, 512, 2 * MiB) != 512) /* W 2M+512 */
        die("dup pwrite");
    close(fd2);
    int fd3 = open(target, O_WRONLY | O_APPEND);
    if (fd3 < 0 || write(fd3, "tail", 4) != 4) /* W 3M+4 */
        die("append");
    close(fd3);
    int ofd = open(other, O_CREAT | O_RDWR | O_TRUNC, 0644); /* not recorded */
    fill(b, 4096, 'O');
    if (ofd < 0 || pwrite(ofd, b, 4096, 0) != 4096 || fsync(ofd) != 0)
        die("other file");
    int efd = eventfd(0, 0); /* not recorded */
    uint64_t one = 1;
    if (efd < 0 || write(efd, &one, 8) != 8)
        die("eventfd");
    close(efd);
    pthread_t th[THREADS]; /* 128 W at 4M.. in some order */
    for (int t = 0; t < THREADS; t++)
        if (pthread_create(&th[t], NULL, thread_main, (void *)(intptr_t)t) != 0)
            die("pthread_create");
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 8192, 4096) != 0) /* W zeros 8192+4096, mark */
        die("punch hole");
    if (fallocate(fd, 0, 5 * MiB, MiB) != 0) /* T 6M, mark */
        die("fallocate");
    int fd4 = open(target, O_RDWR | O_DSYNC);
    fill(b, 512, 'E');
    if (fd4 < 0 || pwrite(fd4, b, 512, 512) != 512) /* W 512+512, F */
        die("dsync");
    close(fd4);
    if (sync_file_range(fd, 0, 4096, SYNC_FILE_RANGE_WRITE) != 0) /* mark */
        die("sync_file_range");
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        fill(b, 512, 'F');
        _exit(pwrite(fd, b, 512, 7 * MiB) == 512 ? 0 : 4); /* W 7M+512 */
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        die("child");
    if (dup2(fd, 50) != 50)
        die("dup2");
    fill(b, 16, 'G');
    if (pwrite(50, b, 16, 30) != 16) /* W 30+16 */
        die("dup2 pwrite");
    close(50);
    off_t in_off = 0, out_off = MiB + 2048;
    if (copy_file_range(ofd, &in_off, fd, &out_off, 100, 0) != 100) /* W 1M+2048+100 ('O') */
        die("copy_file_range");
    close(ofd);
    /* A signal handler writing while this thread writes: no deadlock, nothing lost. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 200}, {0, 200}};
    setitimer(ITIMER_REAL, &it, NULL);
    fill(b, 512, 'H');
    int main_writes = 0;
    for (int i = 0; i < 3000; i++)
        if (pwrite(fd, b, 512, (off_t)(8 * MiB)) == 512)
            main_writes++;
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    signal(SIGALRM, SIG_IGN);
    char note[64];
    int n = snprintf(note, sizeof note, "%d %d\n", main_writes, (int)sig_writes);
    if (write(3, note, (size_t)n) != n) /* fd 3: counts for the checker (not the target) */
        die("report counts");
    if (fsync(fd) != 0) /* F */
        die("fsync");
    close(fd);
    return 0;
}

static int victim_stop(const char *target)
{
    uint8_t b[512];
    int fd = open(target, O_RDWR);
    fill(b, 512, 'S');
    if (fd < 0 || pwrite(fd, b, 512, 0) != 512)
        die("pwrite");
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        die("mmap");
    memset((uint8_t *)p + 1024, 'M', 16); /* unrecordable */
    munmap(p, 4096);
    if (pwrite(fd, b, 512, 2048) != 512) /* after the stop: not recorded */
        die("pwrite after");
    close(fd);
    return 0;
}

static int victim_create(const char *target)
{
    int fd = open(target, O_CREAT | O_RDWR | O_TRUNC, 0644); /* T 0 */
    uint8_t b[1000];
    fill(b, sizeof b, 'N');
    if (fd < 0 || pwrite(fd, b, sizeof b, 0) != (ssize_t)sizeof b || fsync(fd) != 0) /* W 0+1000, F */
        die("create");
    close(fd);
    return 0;
}

/* ---- the checker ------------------------------------------------------------------- */
static char dir[256];

static int run_victim(const char *so, const char *mode, const char *target, const char *spool, const char *counts)
{
    char other[300], env_pre[4200], env_file[4200], env_spool[4200];
    snprintf(other, sizeof other, "%s/other.bin", dir);
    snprintf(env_pre, sizeof env_pre, "LD_PRELOAD=%s", so);
    snprintf(env_file, sizeof env_file, "%s=%s", PCRECORD_ENV_FILE, target);
    snprintf(env_spool, sizeof env_spool, "%s=%s", PCRECORD_ENV_SPOOL, spool);
    char *envp[] = {env_pre, env_file, env_spool, (char *)PCRECORD_ENV_QUIET "=1", (char *)"ASAN_OPTIONS=detect_leaks=0",
                    NULL};
    pid_t pid = fork();
    if (pid == 0) {
        if (counts) {
            int cfd = open(counts, O_CREAT | O_WRONLY | O_TRUNC, 0644);
            if (cfd >= 0 && cfd != 3) {
                dup2(cfd, 3);
                close(cfd);
            }
        }
        char *argv[] = {(char *)"test_record", (char *)"victim", (char *)mode, (char *)target, other, NULL};
        execve("/proc/self/exe", argv, envp);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void write_base(const char *path, size_t size)
{
    uint8_t *b = calloc(1, size);
    for (size_t i = 0; i < 8192 && i < size; i++)
        b[i] = (uint8_t)(i * 7 + 1);
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, size, f);
    fclose(f);
    free(b);
}

static void copy_file(const char *from, const char *to)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, to);
    if (system(cmd) != 0)
        fprintf(stderr, "cp failed\n");
}

/* Next non-mark operation from *i. */
static const struct trace_op *next_op(const struct trace *t, size_t *i)
{
    while (*i < t->n_ops && t->ops[*i].kind == TR_MARK)
        (*i)++;
    return *i < t->n_ops ? &t->ops[(*i)++] : NULL;
}

static int is_w(const struct trace_op *op, uint64_t off, uint32_t len, int byte)
{
    if (!op || op->kind != TR_WRITE || op->off != off || op->len != len)
        return 0;
    for (uint32_t k = 0; byte >= 0 && k < len; k++)
        if (op->data[k] != (uint8_t)byte)
            return 0;
    return 1;
}

static int mark_count(const struct trace *t, const char *name)
{
    int idx = trace_find_name(t, name), n = 0;
    for (size_t i = 0; idx >= 0 && i < t->n_ops; i++)
        n += t->ops[i].kind == TR_MARK && t->ops[i].name == (uint16_t)idx;
    return n;
}

static void test_full(const char *so)
{
    char target[300], base[300], spool[300], counts[300], tpath[300];
    snprintf(target, sizeof target, "%s/img.bin", dir);
    snprintf(base, sizeof base, "%s/base.bin", dir);
    snprintf(spool, sizeof spool, "%s/full.spool", dir);
    snprintf(counts, sizeof counts, "%s/counts.txt", dir);
    snprintf(tpath, sizeof tpath, "%s/full.pctrace", dir);
    write_base(target, 65536);
    copy_file(target, base);
    CHECK(run_victim(so, "full", target, spool, counts) == 0);
    int main_writes = -1, sig_w = -1;
    FILE *cf = fopen(counts, "r");
    CHECK(cf && fscanf(cf, "%d %d", &main_writes, &sig_w) == 2);
    if (cf)
        fclose(cf);
    CHECK(main_writes == 3000);

    const char *meta[] = {"record.command=[\"victim\"]", NULL};
    struct pack_options o = {spool, base, target, target, meta};
    struct trace t;
    struct pack_result r;
    char err[512];
    int rc = pack_spool(&o, &t, &r, err, sizeof err);
    if (rc)
        fprintf(stderr, "pack: %s\n", err);
    CHECK(rc == 0);
    CHECK(r.verified == 1);
    CHECK(!r.stopped && !r.spool_truncated);
    CHECK(r.processes == 2); /* the victim and its fork child */
    CHECK(r.threads >= THREADS + 1);
    CHECK(t.flags & TRACE_F_EXTERNAL);
    CHECK(t.base_size == 65536);
    /* The base holds the 16 non-zero sectors (the trace may store the first
     * MiB densely, so zero sectors can be present too; they must read as
     * zeros). */
    int nonzero = 0;
    for (uint64_t s = 0; s < 128; s++) {
        const uint8_t *v = secmap_get(&t.base, s);
        nonzero += v && memcmp(v, SECTOR_ZERO, SECTOR) != 0;
    }
    CHECK(nonzero == 16);
    CHECK(!strcmp(trace_get_meta(&t, "record.complete"), "yes"));
    CHECK(!strcmp(trace_get_meta(&t, "record.verified"), "yes"));
    CHECK(!strcmp(trace_get_meta(&t, "record.command"), "[\"victim\"]"));

    size_t i = 0;
    const struct trace_op *op;
    CHECK(is_w(next_op(&t, &i), 8192, 4096, 'A'));
    op = next_op(&t, &i);
    CHECK(op && op->kind == TR_WRITE && op->off == 100 && op->len == 10 && !memcmp(op->data, "0123456789", 10));
    op = next_op(&t, &i);
    CHECK(op && op->kind == TR_WRITE && op->off == MiB && op->len == 1024 && op->data[0] == 'B' &&
          op->data[1023] == 'C');
    op = next_op(&t, &i);
    CHECK(op && op->kind == TR_FLUSH);
    op = next_op(&t, &i);
    CHECK(op && op->kind == TR_TRUNCATE && op->off == 3 * MiB);
    CHECK(is_w(next_op(&t, &i), 2 * MiB, 512, 'D'));
    op = next_op(&t, &i);
    CHECK(op && op->kind == TR_WRITE && op->off == 3 * MiB && op->len == 4 && !memcmp(op->data, "tail", 4));
    uint8_t seen[THREADS * PER_THREAD] = {0};
    for (int k = 0; k < THREADS * PER_THREAD; k++) {
        op = next_op(&t, &i);
        CHECK(op && op->kind == TR_WRITE && op->len == 512 && op->off >= 4 * MiB);
        if (op && op->kind == TR_WRITE && op->off >= 4 * MiB) {
            uint64_t idx = (op->off - 4 * MiB) / 512;
            CHECK(idx < THREADS * PER_THREAD && op->data[0] == (uint8_t)idx && op->data[511] == (uint8_t)idx);
            if (idx < THREADS * PER_THREAD)
                seen[idx]++;
        }
    }
    for (int k = 0; k < THREADS * PER_THREAD; k++)
        CHECK(seen[k] == 1);
    CHECK(is_w(next_op(&t, &i), 8192, 4096, 0)); /* punched hole */
    op = next_op(&t, &i);
    CHECK(op && op->kind == TR_TRUNCATE && op->off == 6 * MiB); /* fallocate grew the file */
    CHECK(is_w(next_op(&t, &i), 512, 512, 'E'));
    op = next_op(&t, &i);
    CHECK(op && op->kind == TR_FLUSH); /* O_DSYNC */
    CHECK(is_w(next_op(&t, &i), 7 * MiB, 512, 'F')); /* fork child */
    CHECK(is_w(next_op(&t, &i), 30, 16, 'G'));
    CHECK(is_w(next_op(&t, &i), MiB + 2048, 100, 'O')); /* copy_file_range, read back */
    int mw = 0, sw = 0;
    while ((op = next_op(&t, &i)) && op->kind == TR_WRITE) {
        if (is_w(op, 8 * MiB, 512, 'H'))
            mw++;
        else if (is_w(op, 9 * MiB, 512, 0x5A))
            sw++;
        else
            CHECK(!"unexpected write in the signal phase");
    }
    CHECK(mw == main_writes);
    CHECK(sw == sig_w);
    CHECK(op && op->kind == TR_FLUSH);
    CHECK(next_op(&t, &i) == NULL);
    CHECK(mark_count(&t, "fallocate") == 2);
    CHECK(mark_count(&t, "sync_file_range") == 1);
    if (sig_w <= 0)
        fprintf(stderr, "note: no SIGALRM write landed during the loop\n");

    /* Round trip through the file format. */
    CHECK(trace_save(&t, tpath, err, sizeof err) == 0);
    struct trace u;
    CHECK(trace_load(&u, tpath, err, sizeof err) == 0);
    CHECK(u.n_ops == t.n_ops && u.flags == t.flags && u.base_size == t.base_size && u.bytes_written == t.bytes_written);
    trace_free(&u);

    /* A spool cut short in its last record: accepted up to it, flagged. */
    struct stat st;
    CHECK(stat(spool, &st) == 0);
    CHECK(truncate(spool, st.st_size - 7) == 0);
    struct trace t2;
    struct pack_result r2;
    CHECK(pack_spool(&o, &t2, &r2, err, sizeof err) == 0);
    CHECK(r2.spool_truncated && r2.records == r.records - 1);
    CHECK(!strcmp(trace_get_meta(&t2, "record.complete"), "no"));
    CHECK(r2.verified == 1);                               /* only the last fsync's D record is gone: */
    CHECK(mark_count(&t2, "flush.unfinished") == 1);       /* that flush is no barrier any more */
    trace_free(&t2);
    /* A damaged spool: a clear error. */
    FILE *f = fopen(spool, "r+b");
    fseek(f, 0, SEEK_SET);
    fputs("junk", f);
    fclose(f);
    CHECK(pack_spool(&o, &t2, &r2, err, sizeof err) == -1 && strstr(err, "damaged spool record"));
    trace_free(&t);
}

static void test_stop(const char *so)
{
    char target[300], base[300], spool[300];
    snprintf(target, sizeof target, "%s/stop.bin", dir);
    snprintf(base, sizeof base, "%s/stop-base.bin", dir);
    snprintf(spool, sizeof spool, "%s/stop.spool", dir);
    write_base(target, 8192);
    copy_file(target, base);
    CHECK(run_victim(so, "stop", target, spool, NULL) == 0);
    struct pack_options o = {spool, base, target, NULL, NULL};
    struct trace t;
    struct pack_result r;
    char err[512];
    CHECK(pack_spool(&o, &t, &r, err, sizeof err) == 0);
    CHECK(r.stopped == 1 && r.verified == 0);
    CHECK(trace_get_meta(&t, "record.stopped") && strstr(trace_get_meta(&t, "record.stopped"), "maps the file"));
    CHECK(!strcmp(trace_get_meta(&t, "record.complete"), "no"));
    size_t i = 0;
    CHECK(is_w(next_op(&t, &i), 0, 512, 'S'));
    CHECK(next_op(&t, &i) == NULL); /* nothing after the stop */
    trace_free(&t);
}

static void test_create(const char *so)
{
    char target[300], spool[300];
    snprintf(target, sizeof target, "%s/new.bin", dir);
    snprintf(spool, sizeof spool, "%s/create.spool", dir);
    CHECK(run_victim(so, "create", target, spool, NULL) == 0);
    struct pack_options o = {spool, NULL, target, target, NULL};
    struct trace t;
    struct pack_result r;
    char err[512];
    CHECK(pack_spool(&o, &t, &r, err, sizeof err) == 0);
    CHECK(r.verified == 1 && t.base_size == 0);
    size_t i = 0;
    const struct trace_op *op = next_op(&t, &i);
    CHECK(op && op->kind == TR_TRUNCATE && op->off == 0);
    CHECK(is_w(next_op(&t, &i), 0, 1000, 'N'));
    op = next_op(&t, &i);
    CHECK(op && op->kind == TR_FLUSH);
    trace_free(&t);
}

int main(int argc, char **argv)
{
    if (argc >= 4 && !strcmp(argv[1], "victim")) {
        if (!strcmp(argv[2], "full"))
            return victim_full(argv[3], argc > 4 ? argv[4] : "/dev/null");
        if (!strcmp(argv[2], "stop"))
            return victim_stop(argv[3]);
        if (!strcmp(argv[2], "create"))
            return victim_create(argv[3]);
        return 2;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: test_record LIBPCRECORD.so\n");
        return 2;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/pcrecord-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    test_full(argv[1]);
    test_stop(argv[1]);
    test_create(argv[1]);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (failures == 0 && system(cmd) != 0)
        fprintf(stderr, "note: could not remove %s\n", dir);
    printf("test_record: %d checks, %d failures%s%s\n", checks, failures, failures ? "; files kept in " : "",
           failures ? dir : "");
    return failures ? 1 : 0;
}
