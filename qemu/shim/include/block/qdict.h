/* block/qdict.h (powercut shim) - option renaming of the option-based
 * create path (never run in process). */
#ifndef QSHIM_BLOCK_QDICT_H
#define QSHIM_BLOCK_QDICT_H

#include "qapi/qmp/qdict.h"

typedef struct QDictRenames {
    const char *from;
    const char *to;
} QDictRenames;

bool qdict_rename_keys(QDict *qdict, const QDictRenames *renames, Error **errp);

#endif
