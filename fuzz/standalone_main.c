/*
 * standalone_main.c - runs a fuzz target over files and directories without
 * a fuzzing engine: the replay build every target links in the default and
 * asan presets, which CTest uses to replay the committed corpora.
 *
 *   fuzz_NAME [--post-process] [--repeat N] [--quiet] PATH...
 *
 * A directory contributes its regular files, sorted by name, recursively;
 * names starting with '.' and metadata files (*.json, *.md, *.txt, README*)
 * are skipped.  --post-process applies the AFL++ post-processing of the log
 * mutator first (to reproduce an AFL++ finding from its saved input);
 * --repeat runs every input N times and prints executions per second.
 *
 * Guarantees and exit status: 0 when every input ran (a failed property
 * aborts inside the target, which is the crash a fuzzer would report);
 * 2 for a usage error, an unreadable path or an input larger than 16 MiB,
 * with a message naming it; 3 when no input was found at all.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "fuzz_target.h"
#include "mutator.h"

#pragma weak LLVMFuzzerInitialize

#define MAX_INPUT (16u * 1024 * 1024)
#define EXIT_USAGE 2
#define EXIT_NO_INPUT 3

struct opts {
    int post_process; /* apply fuzz_log_post_process first */
    unsigned long repeat; /* runs per input */
    int quiet;        /* no per-file line */
};

struct stats {
    unsigned long files; /* inputs run */
    unsigned long execs; /* target calls */
    double seconds;      /* time inside the target */
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int skip_name(const char *name)
{
    size_t n = strlen(name);
    if (name[0] == '.' || strncmp(name, "README", 6) == 0)
        return 1;
    static const char *const ext[] = {".json", ".md", ".txt"};
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        size_t e = strlen(ext[i]);
        if (n > e && strcmp(name + n - e, ext[i]) == 0)
            return 1;
    }
    return 0;
}

static int run_file(const char *path, const struct opts *o, struct stats *st)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fuzz: cannot open %s: %s\n", path, strerror(errno));
        return EXIT_USAGE;
    }
    uint8_t *buf = malloc(MAX_INPUT + 1);
    if (!buf) {
        fclose(f);
        fprintf(stderr, "fuzz: out of memory\n");
        return EXIT_USAGE;
    }
    size_t n = fread(buf, 1, MAX_INPUT + 1, f);
    int err = ferror(f);
    fclose(f);
    if (err || n > MAX_INPUT) {
        fprintf(stderr, "fuzz: %s: %s\n", path, err ? "read error" : "larger than 16 MiB, not a fuzz input");
        free(buf);
        return EXIT_USAGE;
    }
    /* An exact-size copy, so ASan sees any read past the input's end. */
    uint8_t *in = malloc(n ? n : 1);
    if (!in) {
        free(buf);
        return EXIT_USAGE;
    }
    memcpy(in, buf, n);
    free(buf);
    if (o->post_process)
        n = fuzz_log_post_process(in, n);
    if (!o->quiet)
        fprintf(stderr, "fuzz: running %s (%zu bytes)\n", path, n);
    double t0 = now();
    for (unsigned long r = 0; r < o->repeat; r++)
        LLVMFuzzerTestOneInput(in, n);
    st->seconds += now() - t0;
    st->execs += o->repeat;
    st->files++;
    free(in);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_path(const char *path, const struct opts *o, struct stats *st)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        fprintf(stderr, "fuzz: cannot stat %s: %s\n", path, strerror(errno));
        return EXIT_USAGE;
    }
    if (!S_ISDIR(sb.st_mode))
        return run_file(path, o, st);
    DIR *d = opendir(path);
    if (!d) {
        fprintf(stderr, "fuzz: cannot read directory %s: %s\n", path, strerror(errno));
        return EXIT_USAGE;
    }
    char **names = NULL;
    size_t count = 0, cap = 0;
    int rc = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (skip_name(e->d_name))
            continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) {
                rc = EXIT_USAGE;
                break;
            }
            names = nn;
        }
        size_t len = strlen(path) + strlen(e->d_name) + 2;
        names[count] = malloc(len);
        if (!names[count]) {
            rc = EXIT_USAGE;
            break;
        }
        snprintf(names[count++], len, "%s/%s", path, e->d_name);
    }
    closedir(d);
    if (names)
        qsort(names, count, sizeof *names, cmp_str);
    for (size_t i = 0; i < count && rc == 0; i++)
        rc = run_path(names[i], o, st);
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
    return rc;
}

static int usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s [--post-process] [--repeat N] [--quiet] PATH...\n"
            "Runs every file (directories: recursively, sorted) through the fuzz target.\n"
            "exit status: 0 all inputs ran; 2 usage error or unreadable input; 3 no input found;\n"
            "a failed property aborts (the crash a fuzzer would report).\n",
            prog);
    return EXIT_USAGE;
}

int main(int argc, char **argv)
{
    struct opts o = {0, 1, 0};
    int first = 1;
    for (; first < argc && argv[first][0] == '-'; first++) {
        const char *a = argv[first];
        if (!strcmp(a, "--post-process")) {
            o.post_process = 1;
        } else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
            o.quiet = 1;
        } else if (!strcmp(a, "--repeat") && first + 1 < argc) {
            char *end;
            errno = 0;
            o.repeat = strtoul(argv[++first], &end, 10);
            if (errno || *end || o.repeat == 0) {
                fprintf(stderr, "%s: --repeat needs a positive number, not '%s'\n", argv[0], argv[first]);
                return EXIT_USAGE;
            }
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(argv[0]);
            return 0;
        } else if (!strcmp(a, "--")) {
            first++;
            break;
        } else {
            fprintf(stderr, "%s: unknown option '%s'\n", argv[0], a);
            return usage(argv[0]);
        }
    }
    if (first >= argc)
        return usage(argv[0]);
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    struct stats st = {0, 0, 0};
    for (int i = first; i < argc; i++) {
        int rc = run_path(argv[i], &o, &st);
        if (rc != 0)
            return rc;
    }
    if (st.files == 0) {
        fprintf(stderr, "%s: no input found in the given paths\n", argv[0]);
        return EXIT_NO_INPUT;
    }
    fprintf(stderr, "fuzz: %lu inputs, %lu executions, %.3f s", st.files, st.execs, st.seconds);
    if (st.seconds > 0)
        fprintf(stderr, ", %.0f execs/s", (double)st.execs / st.seconds);
    fputc('\n', stderr);
    return 0;
}
