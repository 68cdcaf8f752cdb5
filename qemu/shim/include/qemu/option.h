/*
 * qemu/option.h (powercut shim) - option descriptions (the driver's create
 * options table).  Only the types: no option is ever parsed in process
 * (images are created by qemu-img or through subject create options).
 */
#ifndef QSHIM_QEMU_OPTION_H
#define QSHIM_QEMU_OPTION_H

#include <stdbool.h>

enum QemuOptType {
    QEMU_OPT_STRING = 0,
    QEMU_OPT_BOOL,
    QEMU_OPT_NUMBER,
    QEMU_OPT_SIZE,
};

typedef struct QemuOptDesc {
    const char *name;
    enum QemuOptType type;
    const char *help;
    const char *def_value_str;
} QemuOptDesc;

struct QemuOptsList {
    const char *name;
    const char *implied_opt_name;
    bool merge_lists;
    struct { void *tqh_first; } head;
    QemuOptDesc desc[];
};

QDict *qemu_opts_to_qdict_filtered(QemuOpts *opts, QDict *qdict, QemuOptsList *list, bool del);

#endif
