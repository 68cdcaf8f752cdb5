/*
 * pcqemu - QEMU's VHDX driver in process (the QEMU subject, qemu/), on
 * image files: what qemu-io / qemu-img do to an image, without a process
 * per image.
 *
 *   pcqemu open IMG [--rdonly] [--json]       open (read-write: replays a pending log), show, close
 *   pcqemu replay IMG                          open read-write and close (the replay, if any)
 *   pcqemu read IMG OFFSET LENGTH [OUT]        bytes of the virtual disk (OUT: file or -, default -);
 *                                              opens read-write like qemu-io (--rdonly: like qemu-img)
 *   pcqemu write IMG OFFSET LENGTH --pattern B   like qemu-io -c 'write -P B OFFSET LENGTH'
 *   pcqemu write IMG OFFSET IN                 bytes of the file IN (or -)
 *   pcqemu session IMG CMD...                  one read-write open, then qemu-io style commands:
 *                                              "write [-P B] OFFSET LENGTH", "read [-P B] OFFSET
 *                                              LENGTH" (verifies the pattern), "flush"; like
 *                                              qemu-io -t writeback -c CMD ... IMG (a failed
 *                                              command is reported and the next one runs)
 *   pcqemu export IMG RAW                      the whole virtual disk, opened read-only
 *                                              (like qemu-img convert -O raw)
 *   pcqemu check IMG [-r] [--json]             qemu-img check (-r: open read-write first, which
 *                                              replays: qemu-img check -r all)
 *   pcqemu create IMG SIZE [--block-size N] [--log-size N] [--fixed] [--no-zero-blocks]
 *                                              vhdx_co_create, what qemu-img create -f vhdx runs
 *   pcqemu bench IMG... [--seconds S] [--json] open (+ replay) + close per second, in memory
 *   pcqemu version                             the QEMU the driver comes from
 *
 * Global options: --seed N (GUIDs; default 1), --subject NAME (default
 * qemu; libvhdx runs the same commands on the project's engine),
 * --trace-ops FILE (every write, flush and truncate the subject makes on
 * the image file, one line each: "W OFFSET LENGTH", "F", "T SIZE", in
 * order; the agreement test compares them with a recording of qemu-io).  Sizes and offsets take K, M, G, T.
 * Exit status: 0 success; 1 the image was refused or check found errors;
 * 2 usage or I/O error.
 */
#define _GNU_SOURCE /* pread */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness/secmap.h"
#include "harness/simdisk.h"
#include "harness/subject.h"
#include "harness/toolutil.h"
#include "qshim.h"
#include "vhdx/bdev.h"

static const char usage_text[] =
    "usage: pcqemu [--seed N] [--subject NAME] [--trace-ops FILE] COMMAND ...\n"
    "  open IMG [--rdonly] [--json]          open (read-write replays), show, close\n"
    "  replay IMG                            open read-write and close\n"
    "  read IMG OFFSET LENGTH [OUT] [--rdonly]  virtual-disk bytes to OUT (default -)\n"
    "  write IMG OFFSET LENGTH --pattern B   write LENGTH bytes of B (qemu-io write -P)\n"
    "  write IMG OFFSET IN                   write the bytes of IN (or -)\n"
    "  session IMG CMD...                    qemu-io -t writeback -c CMD...: 'write [-P B] OFF LEN',\n"
    "                                        'read [-P B] OFF LEN', 'flush'\n"
    "  export IMG RAW                        whole virtual disk, read-only (qemu-img convert -O raw)\n"
    "  check IMG [-r] [--json]               qemu-img check [-r all]\n"
    "  create IMG SIZE [--block-size N] [--log-size N] [--fixed] [--no-zero-blocks]\n"
    "  bench IMG... [--seconds S] [--json]   in-memory open(+replay)+close per second\n"
    "  version                               the QEMU the driver comes from\n"
    "exit status: 0 success; 1 refused or check errors; 2 usage or I/O error\n";

static uint64_t g_seed = 1;
static const struct subject_ops *S;
static FILE *g_trace; /* --trace-ops */

/* A device that logs every write, flush and truncate of the one below. */
struct tracedev {
    struct bdev base; /* must be first */
    struct bdev *in;
};

static int t_read(struct bdev *d, void *buf, size_t len, uint64_t off)
{
    struct bdev *in = ((struct tracedev *)d)->in;
    return in->ops->read(in, buf, len, off);
}

static int t_write(struct bdev *d, const void *buf, size_t len, uint64_t off)
{
    struct bdev *in = ((struct tracedev *)d)->in;
    fprintf(g_trace, "W %llu %zu\n", (unsigned long long)off, len);
    return in->ops->write(in, buf, len, off);
}

static int t_flush(struct bdev *d)
{
    struct bdev *in = ((struct tracedev *)d)->in;
    fprintf(g_trace, "F\n");
    return in->ops->flush(in);
}

static int t_size(struct bdev *d, uint64_t *size)
{
    struct bdev *in = ((struct tracedev *)d)->in;
    return in->ops->size(in, size);
}

static int t_truncate(struct bdev *d, uint64_t size)
{
    struct bdev *in = ((struct tracedev *)d)->in;
    fprintf(g_trace, "T %llu\n", (unsigned long long)size);
    return in->ops->truncate(in, size);
}

static void t_destroy(struct bdev *d)
{
    bdev_destroy(((struct tracedev *)d)->in);
    free(d);
}

static const struct bdev_ops trace_ops = {t_read, t_write, t_flush, t_size, t_truncate, NULL, t_destroy, NULL};

static void usage(FILE *f)
{
    fputs(usage_text, f);
}

static int wrap(struct bdev **dev)
{
    if (!g_trace)
        return 0;
    struct tracedev *t = calloc(1, sizeof *t);
    if (!t) {
        bdev_destroy(*dev);
        return -ENOMEM;
    }
    t->base.ops = &trace_ops;
    t->in = *dev;
    *dev = &t->base;
    return 0;
}

static int open_dev(const char *path, int rdonly, struct bdev **dev)
{
    int rc = bdev_posix_open(path, rdonly ? BDEV_RDONLY : 0, dev);
    if (rc == 0)
        rc = wrap(dev);
    if (rc != 0)
        fprintf(stderr, "pcqemu: %s: %s\n", path, strerror(-rc));
    return rc;
}

/* Opens IMG through the subject; prints the refusal.  Returns 0, 1 (refused) or 2. */
static int subject_open(const char *path, int rdonly, struct bdev **dev, struct subject_handle **h)
{
    if (open_dev(path, rdonly, dev) != 0)
        return 2;
    int rc = S->open(*dev, rdonly ? SUBJECT_RDONLY : 0, &g_seed, 0, h);
    if (rc != 0) {
        fprintf(stderr, "pcqemu: %s: refused (%s): %s\n", path, strerror(-rc), S->last_error(NULL));
        bdev_destroy(*dev);
        *dev = NULL;
        return rc == -EUCLEAN || rc == -ENOTSUP || rc == -EROFS ? 1 : 2;
    }
    return 0;
}

static int finish(const char *path, struct bdev *dev, struct subject_handle *h, int status)
{
    int rc = S->close(h);
    if (rc != 0 && status == 0) {
        fprintf(stderr, "pcqemu: %s: close: %s: %s\n", path, strerror(-rc), S->last_error(NULL));
        status = 2;
    }
    bdev_destroy(dev);
    return status;
}

static void print_info(FILE *f, const char *path, const struct subject_info *in, int json)
{
    if (json) {
        fprintf(f, "{\"image\": ");
        tool_json_str(f, path);
        fprintf(f,
                ", \"subject\": \"%s\", \"virtual_size\": %llu, \"block_size\": %u, \"logical_sector\": %u, "
                "\"physical_sector\": %u, \"bat_offset\": %llu, \"metadata_offset\": %llu, \"replayed\": %s, "
                "\"log_clean\": %s, \"read_only\": %s}\n",
                S->name, (unsigned long long)in->virtual_size, in->block_size, in->logical_sector,
                in->physical_sector, (unsigned long long)in->bat_offset, (unsigned long long)in->metadata_offset,
                in->replayed ? "true" : "false", in->log_clean ? "true" : "false", in->read_only ? "true" : "false");
        return;
    }
    fprintf(f, "%s: opened by %s%s%s\n", path, S->name, in->read_only ? " read-only" : "",
            in->replayed ? ", log replayed" : "");
    fprintf(f, "  virtual size %llu, block size %u, sectors %u/%u, BAT at %llu, metadata at %llu, log %s\n",
            (unsigned long long)in->virtual_size, in->block_size, in->logical_sector, in->physical_sector,
            (unsigned long long)in->bat_offset, (unsigned long long)in->metadata_offset,
            in->log_clean ? "clean" : "still named by the header");
}

static int cmd_open(int argc, char **argv)
{
    const char *img = NULL;
    int rdonly = 0, json = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--rdonly"))
            rdonly = 1;
        else if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!img)
            img = argv[i];
        else
            tool_die_usage("open: unexpected '%s'", argv[i]);
    }
    if (!img)
        tool_die_usage("open needs IMG");
    struct bdev *dev;
    struct subject_handle *h;
    int st = subject_open(img, rdonly, &dev, &h);
    if (st)
        return st;
    struct subject_info in;
    if (S->info(h, &in) == 0)
        print_info(stdout, img, &in, json);
    return finish(img, dev, h, 0);
}

static int cmd_replay(int argc, char **argv)
{
    if (argc != 1)
        tool_die_usage("replay needs IMG");
    struct bdev *dev;
    struct subject_handle *h;
    int st = subject_open(argv[0], 0, &dev, &h);
    if (st)
        return st;
    struct subject_info in;
    if (S->info(h, &in) == 0)
        printf("%s: %s\n", argv[0], in.replayed ? "log replayed" : "nothing to replay");
    return finish(argv[0], dev, h, 0);
}

static int write_all(FILE *f, const void *buf, size_t n)
{
    return fwrite(buf, 1, n, f) == n ? 0 : -EIO;
}

/* Reads [off, off+len) through h into f, 1 MiB at a time. */
static int copy_out(struct subject_handle *h, uint64_t off, uint64_t len, FILE *f, const char *what)
{
    const size_t chunk = 1u << 20;
    uint8_t *buf = malloc(chunk);
    if (!buf)
        return 2;
    int st = 0;
    for (uint64_t done = 0; done < len;) {
        size_t n = len - done < chunk ? (size_t)(len - done) : chunk;
        int rc = S->read(h, off + done, buf, n);
        if (rc != 0) {
            fprintf(stderr, "pcqemu: %s: read at %llu: %s: %s\n", what, (unsigned long long)(off + done),
                    strerror(-rc), S->last_error(h));
            st = 2;
            break;
        }
        if (write_all(f, buf, n) != 0) {
            fprintf(stderr, "pcqemu: %s: write error\n", what);
            st = 2;
            break;
        }
        done += n;
    }
    free(buf);
    return st;
}

static int cmd_read(int argc, char **argv)
{
    const char *pos[4];
    int np = 0, rdonly = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--rdonly"))
            rdonly = 1;
        else if (np < 4)
            pos[np++] = argv[i];
        else
            tool_die_usage("read: unexpected '%s'", argv[i]);
    }
    if (np < 3)
        tool_die_usage("read needs IMG OFFSET LENGTH [OUT]");
    uint64_t off = tool_parse_num("OFFSET", pos[1]), len = tool_parse_num("LENGTH", pos[2]);
    const char *out = np == 4 ? pos[3] : "-";
    struct bdev *dev;
    struct subject_handle *h;
    int st = subject_open(pos[0], rdonly, &dev, &h);
    if (st)
        return st;
    FILE *f = strcmp(out, "-") ? fopen(out, "wb") : stdout;
    if (!f) {
        fprintf(stderr, "pcqemu: %s: %s\n", out, strerror(errno));
        return finish(pos[0], dev, h, 2);
    }
    st = copy_out(h, off, len, f, pos[0]);
    if (f != stdout && fclose(f) != 0)
        st = 2;
    return finish(pos[0], dev, h, st);
}

static int cmd_export(int argc, char **argv)
{
    if (argc != 2)
        tool_die_usage("export needs IMG RAW");
    struct bdev *dev;
    struct subject_handle *h;
    int st = subject_open(argv[0], 1, &dev, &h);
    if (st)
        return st;
    struct subject_info in;
    if (S->info(h, &in) != 0)
        return finish(argv[0], dev, h, 2);
    FILE *f = strcmp(argv[1], "-") ? fopen(argv[1], "wb") : stdout;
    if (!f) {
        fprintf(stderr, "pcqemu: %s: %s\n", argv[1], strerror(errno));
        return finish(argv[0], dev, h, 2);
    }
    st = copy_out(h, 0, in.virtual_size, f, argv[0]);
    if (f != stdout && fclose(f) != 0)
        st = 2;
    return finish(argv[0], dev, h, st);
}

static int cmd_write(int argc, char **argv)
{
    const char *pos[4];
    int np = 0, pattern = -1;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--pattern") && i + 1 < argc)
            pattern = (int)(tool_parse_num("--pattern", argv[++i]) & 0xFF);
        else if (np < 4)
            pos[np++] = argv[i];
        else
            tool_die_usage("write: unexpected '%s'", argv[i]);
    }
    if (np != 3)
        tool_die_usage("write needs IMG OFFSET LENGTH --pattern B, or IMG OFFSET IN");
    uint64_t off = tool_parse_num("OFFSET", pos[1]);
    uint8_t *buf = NULL;
    size_t len = 0;
    if (pattern >= 0) {
        len = (size_t)tool_parse_num("LENGTH", pos[2]);
        buf = malloc(len ? len : 1);
        if (!buf)
            return 2;
        memset(buf, pattern, len);
    } else {
        FILE *f = strcmp(pos[2], "-") ? fopen(pos[2], "rb") : stdin;
        if (!f) {
            fprintf(stderr, "pcqemu: %s: %s\n", pos[2], strerror(errno));
            return 2;
        }
        size_t cap = 1u << 16;
        buf = malloc(cap);
        for (size_t n; buf && (n = fread(buf + len, 1, cap - len, f)) > 0;) {
            len += n;
            if (len == cap) {
                uint8_t *nb = realloc(buf, cap *= 2);
                if (!nb) {
                    free(buf);
                    buf = NULL;
                }
                buf = nb;
            }
        }
        if (f != stdin)
            fclose(f);
        if (!buf)
            return 2;
    }
    struct bdev *dev;
    struct subject_handle *h;
    int st = subject_open(pos[0], 0, &dev, &h);
    if (st) {
        free(buf);
        return st;
    }
    int rc = S->write(h, off, buf, len);
    if (rc == 0)
        rc = S->flush(h);
    if (rc != 0) {
        fprintf(stderr, "pcqemu: %s: write failed: %s: %s\n", pos[0], strerror(-rc), S->last_error(h));
        st = 2;
    }
    free(buf);
    return finish(pos[0], dev, h, st);
}

/* One qemu-io style command on an open handle.  0, 1 (it failed), 2 (bad command). */
static int session_cmd(struct subject_handle *h, const char *line)
{
    char verb[16] = "", a1[32] = "", a2[32] = "", a3[32] = "", a4[32] = "";
    int n = sscanf(line, "%15s %31s %31s %31s %31s", verb, a1, a2, a3, a4);
    if (n >= 1 && !strcmp(verb, "flush")) {
        int rc = S->flush(h);
        if (rc != 0)
            printf("flush failed: %s (%s)\n", strerror(-rc), S->last_error(h));
        return rc ? 1 : 0;
    }
    if (n < 3 || (strcmp(verb, "write") && strcmp(verb, "read")))
        return 2;
    int pattern = -1;
    const char *o = a1, *l = a2;
    if (!strcmp(a1, "-P")) {
        if (n < 5)
            return 2;
        pattern = (int)(tool_parse_num("-P", a2) & 0xFF);
        o = a3;
        l = a4;
    }
    uint64_t off = tool_parse_num("offset", o), len = tool_parse_num("length", l);
    uint8_t *buf = malloc(len ? (size_t)len : 1);
    if (!buf)
        return 2;
    int st = 0;
    if (verb[0] == 'w') {
        memset(buf, pattern >= 0 ? pattern : 0xcd, (size_t)len); /* qemu-io's default pattern is 0xcd */
        int rc = S->write(h, off, buf, (size_t)len);
        if (rc != 0) {
            printf("write failed: %s (%s)\n", strerror(-rc), S->last_error(h));
            st = 1;
        } else {
            printf("wrote %llu/%llu bytes at offset %llu\n", (unsigned long long)len, (unsigned long long)len,
                   (unsigned long long)off);
        }
    } else {
        int rc = S->read(h, off, buf, (size_t)len);
        if (rc != 0) {
            printf("read failed: %s (%s)\n", strerror(-rc), S->last_error(h));
            st = 1;
        } else {
            for (uint64_t k = 0; pattern >= 0 && k < len; k++)
                if (buf[k] != pattern) {
                    printf("Pattern verification failed at offset %llu, %llu bytes\n",
                           (unsigned long long)(off + k), (unsigned long long)len);
                    st = 1;
                    break;
                }
            if (!st)
                printf("read %llu/%llu bytes at offset %llu\n", (unsigned long long)len, (unsigned long long)len,
                       (unsigned long long)off);
        }
    }
    free(buf);
    return st;
}

static int cmd_session(int argc, char **argv)
{
    if (argc < 1)
        tool_die_usage("session needs IMG CMD...");
    for (int i = 1; i < argc; i++) /* bad commands before any I/O */
        if (strncmp(argv[i], "flush", 5) && strncmp(argv[i], "write ", 6) && strncmp(argv[i], "read ", 5))
            tool_die_usage("session: unknown command '%s' (write, read, flush)", argv[i]);
    struct bdev *dev;
    struct subject_handle *h;
    int st = subject_open(argv[0], 0, &dev, &h);
    if (st)
        return st;
    for (int i = 1; i < argc; i++) {
        int r = session_cmd(h, argv[i]);
        if (r == 2)
            tool_die_usage("session: cannot parse '%s'", argv[i]);
        st |= r;
    }
    fflush(stdout);
    return finish(argv[0], dev, h, st);
}

static int cmd_check(int argc, char **argv)
{
    const char *img = NULL;
    int repair = 0, json = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-r"))
            repair = 1;
        else if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!img)
            img = argv[i];
        else
            tool_die_usage("check: unexpected '%s'", argv[i]);
    }
    if (!img)
        tool_die_usage("check needs IMG");
    if (!S->check)
        tool_die_usage("the subject %s has no check", S->name);
    int replayed = 0;
    if (repair) { /* qemu-img check -r all: a read-write open (replay), then the check */
        struct bdev *dev;
        struct subject_handle *h;
        int st = subject_open(img, 0, &dev, &h);
        if (st)
            return st;
        struct subject_info in;
        if (S->info(h, &in) == 0)
            replayed = in.replayed;
        if ((st = finish(img, dev, h, 0)) != 0)
            return st;
    }
    struct bdev *dev;
    if (open_dev(img, 1, &dev) != 0)
        return 2;
    char why[640] = "";
    int rc = S->check(dev, why, sizeof why);
    bdev_destroy(dev);
    if (json) {
        printf("{\"image\": ");
        tool_json_str(stdout, img);
        printf(", \"subject\": \"%s\", \"result\": %d, \"clean\": %s, \"replayed\": %s, \"why\": ", S->name, rc,
               rc == 0 ? "true" : "false", replayed ? "true" : "false");
        tool_json_str(stdout, why);
        printf("}\n");
    } else if (rc == 0) {
        printf("%s: no errors were found%s\n", img, replayed ? " (the log was replayed first)" : "");
    } else {
        printf("%s: %s: %s\n", img, rc > 0 ? "errors" : "check could not run", why);
    }
    return rc == 0 ? 0 : rc > 0 ? 1 : 2;
}

static int cmd_create(int argc, char **argv)
{
    const char *pos[2];
    int np = 0;
    struct subject_create p;
    memset(&p, 0, sizeof p);
    int fixed = 0, zero = -1;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--block-size") && i + 1 < argc)
            p.block_size = (uint32_t)tool_parse_num("--block-size", argv[++i]);
        else if (!strcmp(argv[i], "--log-size") && i + 1 < argc)
            p.log_size = (uint32_t)tool_parse_num("--log-size", argv[++i]);
        else if (!strcmp(argv[i], "--fixed"))
            fixed = 1;
        else if (!strcmp(argv[i], "--no-zero-blocks"))
            zero = 0;
        else if (np < 2)
            pos[np++] = argv[i];
        else
            tool_die_usage("create: unexpected '%s'", argv[i]);
    }
    if (np != 2)
        tool_die_usage("create needs IMG SIZE");
    p.virtual_size = tool_parse_num("SIZE", pos[1]);
    struct bdev *dev;
    int rc = bdev_posix_open(pos[0], BDEV_CREATE | BDEV_TRUNCATE, &dev);
    if (rc == 0)
        rc = wrap(&dev);
    if (rc != 0) {
        fprintf(stderr, "pcqemu: %s: %s\n", pos[0], strerror(-rc));
        return 2;
    }
    char why[512];
    if (!strcmp(S->name, "qemu") && (fixed || zero >= 0)) {
        struct qshim_create_params qp = {p.virtual_size, p.block_size, p.log_size, fixed, zero};
        rc = qshim_create(dev, &qp, g_seed, why, sizeof why);
    } else {
        if (fixed || zero >= 0)
            tool_die_usage("--fixed and --no-zero-blocks are QEMU create options");
        rc = S->create ? S->create(dev, &p, &g_seed) : -ENOTSUP;
        snprintf(why, sizeof why, "%s", S->last_error(NULL));
    }
    bdev_destroy(dev);
    if (rc != 0) {
        fprintf(stderr, "pcqemu: %s: create failed: %s: %s\n", pos[0], strerror(-rc), why);
        return 2;
    }
    return 0;
}

/* ---- bench: the image in memory, opened and closed over and over ---------- */
struct memimg {
    uint8_t *bytes;
    uint64_t size;
    struct secmap map;
};

static int load_image(const char *path, struct memimg *m)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        return -errno;
    }
    m->size = (uint64_t)st.st_size;
    size_t padded = (size_t)((m->size + SECTOR - 1) / SECTOR * SECTOR);
    m->bytes = calloc(1, padded ? padded : SECTOR);
    secmap_init(&m->map);
    for (size_t done = 0; m->bytes && done < m->size;) {
        ssize_t n = pread(fd, m->bytes + done, (size_t)m->size - done, (off_t)done);
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    close(fd);
    if (!m->bytes)
        return -ENOMEM;
    for (size_t s = 0; s * SECTOR < padded; s++) {
        const uint8_t *p = m->bytes + s * SECTOR;
        int nz = 0;
        for (size_t k = 0; k < SECTOR && !nz; k++)
            nz = p[k] != 0;
        if (nz && secmap_put(&m->map, s, p) != 0)
            return -ENOMEM;
    }
    return 0;
}

static int cmd_bench(int argc, char **argv)
{
    double seconds = 2.0;
    int json = 0, n = 0;
    const char *imgs[256];
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (n < 256)
            imgs[n++] = argv[i];
    }
    if (!n)
        tool_die_usage("bench needs IMG...");
    struct memimg *m = calloc((size_t)n, sizeof *m);
    if (!m)
        return 2;
    for (int i = 0; i < n; i++)
        if (load_image(imgs[i], &m[i]) != 0) {
            fprintf(stderr, "pcqemu: %s: cannot load\n", imgs[i]);
            return 2;
        }
    /* (the shim keeps BAT-sized buffers on the heap: heap_tune in shim.c) */
    struct crashdisk cd;
    crashdisk_init(&cd, NULL, 0);
    uint64_t opens = 0, refused = 0, replays = 0;
    double t0 = tool_now(), t = t0;
    while (t - t0 < seconds) {
        for (int i = 0; i < n; i++) {
            cd.durable = &m[i].map;
            crashdisk_reset(&cd, m[i].size);
            struct subject_handle *h;
            int rc = S->open(crashdisk_bdev(&cd), 0, &g_seed, 0, &h);
            opens++;
            if (rc != 0) {
                refused++;
                continue;
            }
            struct subject_info in;
            if (S->info(h, &in) == 0 && in.replayed)
                replays++;
            S->close(h);
        }
        t = tool_now();
    }
    double rate = (double)opens / (t - t0);
    if (json)
        printf("{\"subject\": \"%s\", \"images\": %d, \"opens\": %llu, \"refused\": %llu, \"replays\": %llu, "
               "\"seconds\": %.3f, \"opens_per_sec\": %.1f}\n",
               S->name, n, (unsigned long long)opens, (unsigned long long)refused, (unsigned long long)replays,
               t - t0, rate);
    else
        printf("%s: %llu opens (+ replay) + closes of %d image(s) in %.2f s: %.0f per second (%llu refused, "
               "%llu replayed)\n",
               S->name, (unsigned long long)opens, n, t - t0, rate, (unsigned long long)refused,
               (unsigned long long)replays);
    crashdisk_free(&cd);
    for (int i = 0; i < n; i++) {
        secmap_free(&m[i].map);
        free(m[i].bytes);
    }
    free(m);
    return 0;
}

int main(int argc, char **argv)
{
    tool_set_name("pcqemu");
    const char *subject = "qemu";
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            g_seed = tool_parse_num("--seed", argv[++i]);
        else if (!strcmp(argv[i], "--subject") && i + 1 < argc)
            subject = argv[++i];
        else if (!strcmp(argv[i], "--trace-ops") && i + 1 < argc) {
            g_trace = fopen(argv[++i], "w");
            if (!g_trace) {
                fprintf(stderr, "pcqemu: %s: %s\n", argv[i], strerror(errno));
                return 2;
            }
        }
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else
            tool_die_usage("unknown option '%s'", argv[i]);
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    S = subject_find(subject);
    if (!S)
        tool_die_usage("no subject '%s'", subject);
    const char *cmd = argv[i++];
    int n = argc - i;
    char **a = argv + i;
    if (!strcmp(cmd, "open"))
        return cmd_open(n, a);
    if (!strcmp(cmd, "replay"))
        return cmd_replay(n, a);
    if (!strcmp(cmd, "read"))
        return cmd_read(n, a);
    if (!strcmp(cmd, "write"))
        return cmd_write(n, a);
    if (!strcmp(cmd, "session"))
        return cmd_session(n, a);
    if (!strcmp(cmd, "export"))
        return cmd_export(n, a);
    if (!strcmp(cmd, "check"))
        return cmd_check(n, a);
    if (!strcmp(cmd, "create"))
        return cmd_create(n, a);
    if (!strcmp(cmd, "bench"))
        return cmd_bench(n, a);
    if (!strcmp(cmd, "version")) {
        printf("QEMU %s (block/vhdx*.c in process)\n", qshim_qemu_version());
        return 0;
    }
    tool_die_usage("unknown command '%s'", cmd);
}
