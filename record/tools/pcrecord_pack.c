/*
 * pcrecord-pack - turn a libpcrecord spool and the base image into a
 * harness trace (the rules are in record/src/pack.h).
 *
 *   pcrecord-pack --spool S --out TRACE (--base IMG | --no-base)
 *                 [--final IMG] [--file PATH] [--meta KEY=VALUE]...
 *
 * Exit status: 0 the trace is written and the recording is complete (and,
 * with --final, reproduces the final image); 1 the trace is written but the
 * recording is incomplete (the recorder stopped, the spool was cut short,
 * or the end state differs from --final); 2 usage or I/O error (no trace).
 * scripts/powercut record drives this program.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pack.h"

static const char usage[] =
    "usage: pcrecord-pack --spool SPOOL --out TRACE (--base IMG | --no-base)\n"
    "                     [--final IMG] [--file PATH] [--meta KEY=VALUE]...\n"
    "\n"
    "  --spool SPOOL   what libpcrecord.so recorded (POWERCUT_RECORD_SPOOL)\n"
    "  --base IMG      copy of the image as it was before the run (stored in the trace)\n"
    "  --no-base       the image did not exist before the run (empty base)\n"
    "  --final IMG     the image after the run: check the trace reproduces it\n"
    "  --file PATH     the recorded path (metadata)\n"
    "  --meta K=V      extra metadata (repeatable)\n"
    "\n"
    "exit status: 0 complete trace; 1 trace written but the recording is incomplete;\n"
    "             2 usage or I/O error\n";

int main(int argc, char **argv)
{
    struct pack_options o;
    memset(&o, 0, sizeof o);
    const char *out = NULL;
    int no_base = 0;
    const char **meta = calloc((size_t)argc + 1, sizeof *meta);
    size_t nmeta = 0;
    if (!meta)
        return 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage, stdout);
            free(meta);
            return 0;
        }
        if (!strcmp(a, "--no-base")) {
            no_base = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "pcrecord-pack: %s needs a value\n%s", a, usage);
            free(meta);
            return 2;
        }
        if (!strcmp(a, "--spool"))
            o.spool = v;
        else if (!strcmp(a, "--out"))
            out = v;
        else if (!strcmp(a, "--base"))
            o.base = v;
        else if (!strcmp(a, "--final"))
            o.final_image = v;
        else if (!strcmp(a, "--file"))
            o.file = v;
        else if (!strcmp(a, "--meta"))
            meta[nmeta++] = v;
        else {
            fprintf(stderr, "pcrecord-pack: unknown argument '%s'\n%s", a, usage);
            free(meta);
            return 2;
        }
        i++;
    }
    if (!o.spool || !out || (!o.base && !no_base) || (o.base && no_base)) {
        fprintf(stderr, "pcrecord-pack: need --spool, --out and one of --base / --no-base\n%s", usage);
        free(meta);
        return 2;
    }
    o.meta = meta;
    struct trace t;
    struct pack_result r;
    char err[1024];
    if (pack_spool(&o, &t, &r, err, sizeof err) != 0) {
        fprintf(stderr, "pcrecord-pack: %s\n", err);
        free(meta);
        return 2;
    }
    free(meta);
    if (trace_save(&t, out, err, sizeof err) != 0) {
        fprintf(stderr, "pcrecord-pack: %s\n", err);
        trace_free(&t);
        return 2;
    }
    printf("%s: %zu operations (%" PRIu64 " writes, %" PRIu64 " bytes; %" PRIu64 " flushes; %" PRIu64
           " truncates; %" PRIu64 " marks) from %" PRIu64 " spool records, %u process(es), %u thread(s)\n",
           out, t.n_ops, r.writes, r.bytes_written, r.flushes, r.truncates, r.marks, r.records, r.processes,
           r.threads);
    int status = 0;
    if (r.stopped) {
        fprintf(stderr, "pcrecord-pack: the recorder stopped early: %s\n", trace_get_meta(&t, "record.stopped"));
        status = 1;
    }
    if (r.spool_truncated) {
        fprintf(stderr, "pcrecord-pack: the spool's last record was cut short and dropped\n");
        status = 1;
    }
    if (r.verified == 0) {
        fprintf(stderr,
                "pcrecord-pack: the trace does not reproduce the final image: %" PRIu64
                " sector(s) differ, first at offset %" PRIu64 " (a write the recorder did not see)\n",
                r.diff_sectors, r.first_diff);
        status = 1;
    } else if (r.verified == 1) {
        printf("verified: base + trace = the final image\n");
    }
    trace_free(&t);
    return status;
}
