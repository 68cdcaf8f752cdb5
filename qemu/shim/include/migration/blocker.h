/* migration/blocker.h (powercut shim) - there is no migration in process:
 * adding a blocker succeeds and removing one does nothing. */
#ifndef QSHIM_MIGRATION_BLOCKER_H
#define QSHIM_MIGRATION_BLOCKER_H

#include "qemu/osdep.h"

int migrate_add_blocker(Error *reason, Error **errp);
void migrate_del_blocker(Error *reason);

#endif
