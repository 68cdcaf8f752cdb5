/* qapi/qmp/qdict.h (powercut shim) - QDict, named by the driver's
 * option-based create path, which the shim never runs (qshim_unreachable). */
#ifndef QSHIM_QAPI_QMP_QDICT_H
#define QSHIM_QAPI_QMP_QDICT_H

#include "qemu/osdep.h"

void qdict_put_str(QDict *qdict, const char *key, const char *value);
void qshim_qobject_unref(void *obj);
#define qobject_unref(obj) qshim_qobject_unref(obj)

#endif
