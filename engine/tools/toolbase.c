/*
 * toolbase.c - the helpers every C tool shares (toolbase.h).
 */
#include "toolbase.h"

#include <stdarg.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *tool_name = "powercut";

void tool_set_name(const char *name)
{
    tool_name = name;
}

const char *tool_get_name(void)
{
    return tool_name;
}

void tool_die_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", tool_name);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(run '%s --help' for usage)\n", tool_name);
    va_end(ap);
    exit(TOOL_EXIT_BAD_USAGE);
}

void tool_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* A decimal count 0..UINT_MAX-1 filling the whole string. */
static int shard_num(const char *s, unsigned *v)
{
    char *end;
    unsigned long x;
    if (!s || !*s || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    x = strtoul(s, &end, 10);
    if (errno || *end || x >= 0xffffffffUL)
        return -1;
    *v = (unsigned)x;
    return 0;
}

static int shard_err(char *err, size_t errlen, const char *fmt, const char *a, const char *b)
{
    snprintf(err, errlen, fmt, a ? a : "", b ? b : "");
    return -1;
}

int tool_shard_resolve(const char *shard_arg, const char *shards_arg, struct tool_shard *out, char *err,
                       size_t errlen)
{
    const char *ti = getenv("TEST_SHARD_INDEX"), *tn = getenv("TEST_TOTAL_SHARDS");
    const char *jci = getenv("JOB_COMPLETION_INDEX");
    const char *si = getenv("SLURM_ARRAY_TASK_ID"), *sn = getenv("SLURM_ARRAY_TASK_COUNT");
    const char *smin = getenv("SLURM_ARRAY_TASK_MIN");
    unsigned k = 0, n = 1, base = 0;
    out->k = 0;
    out->n = 1;
    out->source = "none";
    if (shard_arg) {
        char extra;
        if (sscanf(shard_arg, "%u/%u%c", &k, &n, &extra) != 2 || n == 0 || k >= n)
            return shard_err(err, errlen, "--shard takes K/N with 0 <= K < N, not '%s'%s", shard_arg, NULL);
        out->source = "--shard";
    } else if (ti || tn) {
        if (!ti || !tn)
            return shard_err(err, errlen, "TEST_SHARD_INDEX and TEST_TOTAL_SHARDS go together (only %s is set)%s",
                             ti ? "TEST_SHARD_INDEX" : "TEST_TOTAL_SHARDS", NULL);
        if (shard_num(ti, &k) || shard_num(tn, &n) || n == 0 || k >= n)
            return shard_err(err, errlen, "TEST_SHARD_INDEX=%s TEST_TOTAL_SHARDS=%s: expected 0 <= index < total",
                             ti, tn);
        out->source = "TEST_SHARD_INDEX";
        const char *status = getenv("TEST_SHARD_STATUS_FILE");
        if (status && *status) {
            FILE *f = fopen(status, "a");
            if (!f)
                return shard_err(err, errlen, "TEST_SHARD_STATUS_FILE=%s: cannot be touched: %s", status,
                                 strerror(errno));
            fclose(f);
        }
    } else if (jci) {
        if (!shards_arg)
            return shard_err(err, errlen, "JOB_COMPLETION_INDEX=%s (a Kubernetes Indexed Job) needs --shards N "
                             "(the Job's completions) or --shard K/N%s", jci, NULL);
        if (shard_num(jci, &k) || shard_num(shards_arg, &n) || n == 0 || k >= n)
            return shard_err(err, errlen, "JOB_COMPLETION_INDEX=%s --shards %s: expected 0 <= index < shards",
                             jci, shards_arg);
        out->source = "JOB_COMPLETION_INDEX";
    } else if (si || sn) {
        if (!si || !sn)
            return shard_err(err, errlen,
                             "SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT go together (only %s is set)%s",
                             si ? "SLURM_ARRAY_TASK_ID" : "SLURM_ARRAY_TASK_COUNT", NULL);
        if (smin && shard_num(smin, &base))
            return shard_err(err, errlen, "SLURM_ARRAY_TASK_MIN=%s: not a number%s", smin, NULL);
        if (shard_num(si, &k) || shard_num(sn, &n) || n == 0 || k < base || k - base >= n)
            return shard_err(err, errlen, "SLURM_ARRAY_TASK_ID=%s SLURM_ARRAY_TASK_COUNT=%s: expected "
                             "SLURM_ARRAY_TASK_MIN (or 0) <= id < min + count", si, sn);
        k -= base;
        out->source = "SLURM_ARRAY_TASK_ID";
    }
    if (shards_arg && !jci && !shard_arg)
        return shard_err(err, errlen, "--shards %s counts the shards of a Kubernetes Indexed Job: it needs "
                         "JOB_COMPLETION_INDEX in the environment (or give --shard K/N)%s", shards_arg, NULL);
    out->k = k;
    out->n = n;
    return 0;
}

struct tool_shard tool_shard_or_die(const char *shard_arg, const char *shards_arg)
{
    struct tool_shard s;
    char err[512];
    if (tool_shard_resolve(shard_arg, shards_arg, &s, err, sizeof err) != 0)
        tool_die_usage("%s", err);
    return s;
}
