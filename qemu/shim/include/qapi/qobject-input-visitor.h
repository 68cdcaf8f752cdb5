/* qapi/qobject-input-visitor.h (powercut shim) - the visitor of the
 * option-based create path (never run in process). */
#ifndef QSHIM_QAPI_QOBJECT_INPUT_VISITOR_H
#define QSHIM_QAPI_QOBJECT_INPUT_VISITOR_H

#include "qemu/osdep.h"

Visitor *qobject_input_visitor_new_flat_confused(QDict *qdict, Error **errp);
void visit_free(Visitor *v);

#endif
