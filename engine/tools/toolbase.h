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

#endif /* TOOLBASE_H */
