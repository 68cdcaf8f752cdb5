/*
 * toolbase.c - the helpers every C tool shares (toolbase.h).
 */
#include "toolbase.h"

#include <stdarg.h>
#include <stdlib.h>

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
