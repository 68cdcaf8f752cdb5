/*
 * qglue.h - the few places where the shim must look inside the driver
 * (qemu/shim/glue.c, compiled with the fetched vhdx.h and the driver's
 * own flags): registering its table, and reading its state for qshim_info.
 */
#ifndef QSHIM_QGLUE_H
#define QSHIM_QGLUE_H

#include "block/block_int.h"
#include "qshim.h"

/* Runs the driver's block_init function (bdrv_register of its table). */
void qglue_register_drivers(void);
/* Fills what the driver's state says about bs (a vhdx node). */
void qglue_info(BlockDriverState *bs, struct qshim_info *out);

#endif
