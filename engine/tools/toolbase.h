/*
 * toolbase.h - what every C command-line tool of the project shares, at
 * the bottom of the layering: the tool's name in messages, the bad-usage
 * exit, and JSON string literals (the one escaper every tool's JSON output
 * goes through).
 *
 * Layering: the library (toolbase, engine/CMakeLists.txt) depends on libc
 * only.  vhdxtool links it directly; the harness tools (pcsweep, pcfaults,
 * pcqemu, ...) reach it through harness/toolutil.h, which includes this
 * header.  libvhdx never links it, and nothing here knows the harness, so
 * engine/ stays independent of harness/.
 */
#ifndef TOOLBASE_H
#define TOOLBASE_H

#include <stddef.h>
#include <stdio.h>

#define TOOL_EXIT_BAD_USAGE 2

/* The name messages begin with ("pcsweep: ..."); set once in main.  Until
 * then "powercut". */
void tool_set_name(const char *name);
const char *tool_get_name(void);

/* "NAME: message" and a pointer to --help on stderr, then exit status 2. */
void tool_die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* s as a JSON string literal, quotes included: '"' and '\' escaped,
 * control characters as \u00XX, everything else (UTF-8 too) as it is. */
void tool_json_str(FILE *f, const char *s);

/*
 * Sharding: which part of the work this process does, from the command
 * line or, when --shard is absent, from the launcher's environment -- the
 * one rule every sharded tool and the driver (`pcsweep shard --json`) use:
 *
 *   1. --shard K/N                                      source "--shard"
 *   2. TEST_SHARD_INDEX, TEST_TOTAL_SHARDS (Bazel, GoogleTest; the file
 *      TEST_SHARD_STATUS_FILE names, when set, is touched: "I shard")
 *                                                       source "TEST_SHARD_INDEX"
 *   3. JOB_COMPLETION_INDEX (Kubernetes Indexed Job) with --shards N
 *                                                       source "JOB_COMPLETION_INDEX"
 *   4. SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT (Slurm job array; the
 *      index is TASK_ID - SLURM_ARRAY_TASK_MIN when that is set, as arrays
 *      may start at any id)                             source "SLURM_ARRAY_TASK_ID"
 *   5. none of these: 0/1                               source "none"
 *
 * shard_arg: the value of --shard or NULL; shards_arg: the value of
 * --shards or NULL (only with JOB_COMPLETION_INDEX).  A bad value (not a
 * number, K >= N, N = 0, half of a pair, --shards without an index) is an
 * error: returns -1 with a message in err (the caller's usage error, exit
 * status 2); 0 otherwise with *k, *n and *source set.
 */
struct tool_shard {
    unsigned k, n;
    const char *source;
};
int tool_shard_resolve(const char *shard_arg, const char *shards_arg, struct tool_shard *out, char *err,
                       size_t errlen);
/* tool_shard_resolve or tool_die_usage. */
struct tool_shard tool_shard_or_die(const char *shard_arg, const char *shards_arg);

#endif /* TOOLBASE_H */
