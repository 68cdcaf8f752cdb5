/*
 * toolutil.c - command-line helpers shared by the harness tools
 * (toolutil.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "harness/toolutil.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness/sweep.h"
#include "harness/workload.h"

uint64_t tool_parse_num(const char *opt, const char *s)
{
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-')
        tool_die_usage("%s needs a non-negative number", opt);
    unsigned long long v = strtoull(s, &end, 0);
    uint64_t mul = 1;
    switch (*end) {
    case 'K': case 'k': mul = 1ull << 10; end++; break;
    case 'M': case 'm': mul = 1ull << 20; end++; break;
    case 'G': case 'g': mul = 1ull << 30; end++; break;
    case 'T': case 't': mul = 1ull << 40; end++; break;
    }
    if (errno || end == s || *end || v > UINT64_MAX / mul)
        tool_die_usage("%s: '%s' is not a valid number", opt, s);
    return v * mul;
}

double tool_parse_seconds(const char *opt, const char *s)
{
    char *end;
    errno = 0;
    double v = s && *s ? strtod(s, &end) : -1;
    if (!s || !*s || errno || end == s || *end || !(v >= 0) || v > 1e9)
        tool_die_usage("%s takes a number of seconds (decimals allowed), not '%s'", opt, s ? s : "");
    return v;
}

int tool_scenario_list(const char *spec, char names[TOOL_MAX_SCENARIOS][32])
{
    int n = 0;
    if (!strcmp(spec, "all")) {
        for (size_t i = 0; workload_scenario_name(i) && n < TOOL_MAX_SCENARIOS; i++)
            snprintf(names[n++], 32, "%s", workload_scenario_name(i));
        return n;
    }
    char buf[256];
    snprintf(buf, sizeof buf, "%s", spec);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (!workload_scenario_known(tok)) {
            char known[256];
            workload_scenario_names(known, sizeof known, ", ");
            tool_die_usage("--scenario: unknown scenario '%s' (%s, all)", tok, known);
        }
        if (n == TOOL_MAX_SCENARIOS)
            tool_die_usage("--scenario: more than %d scenarios", TOOL_MAX_SCENARIOS);
        snprintf(names[n++], 32, "%s", tok);
    }
    return n;
}

void tool_print_usage(const char *usage, FILE *f)
{
    fputs(usage, f);
    fputs("\nscenarios (--scenario):\n", f);
    for (size_t i = 0; workload_scenario_name(i); i++)
        fprintf(f, "  %-10s %s\n", workload_scenario_name(i), workload_scenario_about(i));
}

void tool_print_scenarios_json(FILE *f)
{
    fputs("[", f);
    for (size_t i = 0; workload_scenario_name(i); i++) {
        fputs(i ? ",\n {\"name\": " : "{\"name\": ", f);
        tool_json_str(f, workload_scenario_name(i));
        fputs(", \"about\": ", f);
        tool_json_str(f, workload_scenario_about(i));
        fputs("}", f);
    }
    fputs("]\n", f);
}

int tool_mkdirs(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(buf, 0755);
            *p = '/';
        }
    }
    return mkdir(buf, 0755) == 0 || errno == EEXIST ? 0 : -errno;
}

void tool_check_output(const char *path, const char *opt)
{
    if (!path)
        return;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        tool_die_usage("%s %s: is a directory, a file name is expected", opt, path);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        int rc = tool_mkdirs(dir);
        if (rc)
            tool_die_usage("%s %s: cannot create the directory %s: %s", opt, path, dir, strerror(-rc));
    }
    int exists = stat(path, &st) == 0;
    int fd = exists ? open(path, O_WRONLY | O_APPEND) : open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0)
        tool_die_usage("%s %s: cannot be written: %s", opt, path, strerror(errno));
    close(fd);
    if (!exists)
        unlink(path);
}

/* The buffer behind the stream tool_output_begin() returned. */
static char *out_buf;
static size_t out_len;

FILE *tool_output_begin(void)
{
    out_buf = NULL;
    out_len = 0;
    return open_memstream(&out_buf, &out_len);
}

static int write_all(const char *path, const char *buf, size_t len)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -errno;
    int rc = fwrite(buf, 1, len, f) == len ? 0 : -errno;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    return rc ? rc : 0;
}

void tool_output_end(FILE *mem, const char *path, const char *opt, int *lost)
{
    if (!mem)
        return;
    fclose(mem); /* out_buf/out_len now hold everything written */
    int rc = write_all(path, out_buf, out_len);
    if (rc != 0) {
        const char *tmp = getenv("TMPDIR");
        const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
        char alt[4096];
        snprintf(alt, sizeof alt, "%s/%s-%ld-%s", tmp && *tmp ? tmp : "/tmp", tool_get_name(), (long)getpid(),
                 *base ? base : "output");
        int arc = write_all(alt, out_buf, out_len);
        if (arc == 0)
            fprintf(stderr, "%s: %s %s: cannot be written (%s); the results were saved to %s\n", tool_get_name(), opt, path,
                    strerror(-rc), alt);
        else
            fprintf(stderr, "%s: %s %s: cannot be written (%s), nor %s (%s)\n", tool_get_name(), opt, path,
                    strerror(-rc), alt, strerror(-arc));
        *lost = 1;
    }
    free(out_buf);
    out_buf = NULL;
}

void tool_xml_str(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default:
            if ((unsigned char)*s < 0x20 && *s != '\n')
                fputc(' ', f);
            else
                fputc(*s, f);
        }
    }
}

void tool_junit_failure(FILE *f, const char *type, const char *message, const char *detail, const char *repro)
{
    fprintf(f, "      <failure type=\"");
    tool_xml_str(f, type);
    fprintf(f, "\" message=\"");
    tool_xml_str(f, message);
    fprintf(f, "\">");
    tool_xml_str(f, detail);
    if (repro && repro[0]) {
        fprintf(f, "\nreproducer: ");
        tool_xml_str(f, repro);
    }
    fprintf(f, "</failure>\n");
}

/* Copies the text between `after` and the first of `stops` in s into out. */
static int text_after(const char *s, const char *after, const char *stops, char *out, size_t len)
{
    const char *p = strstr(s, after);
    if (!p)
        return 0;
    p += strlen(after);
    size_t n = strcspn(p, stops);
    snprintf(out, len, "%.*s", (int)n, p);
    return 1;
}

void tool_violation_structure(const struct verdict *v, char *out, size_t len)
{
    char a[96] = "", b[96] = "";
    snprintf(out, len, "-");
    if (!strcmp(v->invariant, "open-refused")) {
        /* "... [VHDX_E_X, field F, offset N]" */
        const char *br = strrchr(v->detail, '[');
        if (br && text_after(br, "[", ",]", a, sizeof a)) {
            text_after(br, ", field ", ",]", b, sizeof b);
            snprintf(out, len, "%s%s%s", a, b[0] ? " " : "", b);
        }
    } else if (!strcmp(v->invariant, "check-failed")) {
        /* "... first: FIELD: message [VHDX_E_X]" */
        if (text_after(v->detail, "first: ", ":", b, sizeof b)) {
            const char *br = strrchr(v->detail, '[');
            if (br)
                text_after(br, "[", "]", a, sizeof a);
            snprintf(out, len, "%s%s%s", a, a[0] ? " " : "", b);
        } else {
            snprintf(out, len, "checker did not run");
        }
    } else if (!strncmp(v->invariant, "data:", 5)) {
        /* "...; found zeros" / "found write N for sector S" / "found garbage ..." */
        const char *f = strstr(v->detail, "; found ");
        if (f) {
            f += 8;
            const char *what = !strncmp(f, "zeros", 5)     ? "reads zeros"
                               : !strncmp(f, "POISON", 6)  ? "reads never-durable space (POISON)"
                               : !strncmp(f, "garbage", 7) ? "reads garbage"
                               : !strncmp(f, "write ", 6)  ? "reads another write's data"
                                                           : "reads something else";
            snprintf(out, len, "%s", what);
        }
    } else if (!strcmp(v->invariant, "replay-not-idempotent")) {
        snprintf(out, len, "%s", strstr(v->detail, "file size") ? "file size" : "file bytes");
    }
}

void tool_signature_id(const char *key, char out[13])
{
    uint64_t h = UINT64_C(0xcbf29ce484222325); /* FNV-1a */
    for (const char *p = key; *p; p++) {
        h ^= (unsigned char)*p;
        h *= UINT64_C(0x100000001b3);
    }
    snprintf(out, 13, "%012" PRIx64, h & UINT64_C(0xFFFFFFFFFFFF));
}

uint64_t tool_file_bytes(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n > 0 ? (uint64_t)n : 0;
}

double tool_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}
