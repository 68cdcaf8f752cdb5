/*
 * toolutil.h - the command-line helpers the harness tools share (pcsweep,
 * pcfaults, pcqemu): numbers with K/M/G/T suffixes, scenario lists,
 * directory creation, output that is never lost, XML string escaping and
 * JUnit failures, a monotonic clock; and, from engine/tools/toolbase.h
 * (shared with vhdxtool, below the harness), the tool's name, the
 * bad-usage exit (message naming the tool, status 2) and the JSON string
 * escaper.  Library code never calls the dying helpers; only tools do.
 */
#ifndef HARNESS_TOOLUTIL_H
#define HARNESS_TOOLUTIL_H

#include <stdint.h>
#include <stdio.h>

/* tool_set_name, tool_die_usage, tool_json_str, TOOL_EXIT_BAD_USAGE: the
 * helpers vhdxtool shares (engine/tools/toolbase.h). */
#include "toolbase.h"

/* A non-negative number (decimal, 0x hex, 0 octal) with an optional K, M, G
 * or T (binary) suffix; anything else is bad usage naming opt. */
uint64_t tool_parse_num(const char *opt, const char *s);

/* A non-negative number of seconds, decimals allowed ("2.5"); anything
 * else is bad usage naming opt. */
double tool_parse_seconds(const char *opt, const char *s);

/* Scenario names from "all" or a comma list (at most TOOL_MAX_SCENARIOS),
 * each checked against the scenario registry (an unknown one is bad
 * usage).  Returns the count. */
#define TOOL_MAX_SCENARIOS 32
int tool_scenario_list(const char *spec, char names[TOOL_MAX_SCENARIOS][32]);

/* A tool's usage text followed by the scenario registry, one line each. */
void tool_print_usage(const char *usage, FILE *f);
/* The scenario registry as a JSON array of {"name", "about"}. */
void tool_print_scenarios_json(FILE *f);

/* mkdir -p.  0 or -errno. */
int tool_mkdirs(const char *path);

/* The size of the file at path in bytes (a reproducer's, for disk caps);
 * 0 when it cannot be read. */
uint64_t tool_file_bytes(const char *path);

/* Before any work: dies with status 2 naming opt and path unless path can
 * be written (its directory is created when missing; a file that does not
 * exist yet is created and removed again, so the file system answers, not
 * permission bits that root passes everywhere).  NULL path: nothing. */
void tool_check_output(const char *path, const char *opt);

/* A finished run's output is never lost: tool_output_begin() gives a
 * stream in memory to write the whole output to; tool_output_end() writes
 * it to path (every write and the close checked).  When path cannot be
 * written any more (the disk filled up, a permission changed), the output
 * goes to a file in $TMPDIR (or /tmp) named after the tool, the process
 * and path's last component; the message says where, and *lost is set
 * (the tool then exits with status 2: what was asked for was not written,
 * but nothing is lost).  begin returns NULL only when out of memory. */
FILE *tool_output_begin(void);
void tool_output_end(FILE *mem, const char *path, const char *opt, int *lost);

/* s escaped for XML text or attribute values (control characters but
 * newline become spaces). */
void tool_xml_str(FILE *f, const char *s);

/* A JUnit <failure> element (indented for a testcase): type = invariant,
 * message, the detail as text and the reproducer path when repro is not
 * empty. */
void tool_junit_failure(FILE *f, const char *type, const char *message, const char *detail, const char *repro);

/* Violation signatures (one report per bug): the structure a violation
 * involves, without the numbers that differ from state to state -- the
 * engine error and field of a refused open or a failed check ("VHDX_E_X
 * header.LogGuid"), what a lost sector reads as ("reads zeros"), "-" when
 * the invariant says it all. */
struct verdict;
void tool_violation_structure(const struct verdict *v, char *out, size_t len);
/* A stable 12-hex-digit id of a signature key (FNV-1a). */
void tool_signature_id(const char *key, char out[13]);

/* Seconds on the monotonic clock. */
double tool_now(void);

#endif /* HARNESS_TOOLUTIL_H */
