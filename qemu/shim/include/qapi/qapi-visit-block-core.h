/*
 * qapi/qapi-visit-block-core.h (powercut shim) - the QAPI types of the
 * driver's create function (vhdx_co_create takes BlockdevCreateOptions),
 * with only the VHDX branch.  The shim fills one in for an in-process
 * create (qshim.h); the visitor that builds it from a command line in
 * QEMU is not part of the shim.
 */
#ifndef QSHIM_QAPI_VISIT_BLOCK_CORE_H
#define QSHIM_QAPI_VISIT_BLOCK_CORE_H

#include "qemu/osdep.h"

typedef enum BlockdevDriver {
    BLOCKDEV_DRIVER_VHDX = 1,
} BlockdevDriver;

typedef enum BlockdevVhdxSubformat {
    BLOCKDEV_VHDX_SUBFORMAT_DYNAMIC = 0,
    BLOCKDEV_VHDX_SUBFORMAT_FIXED = 1,
} BlockdevVhdxSubformat;

typedef struct BlockdevRef {
    BlockDriverState *bs; /* shim: the file node to create on */
} BlockdevRef;

typedef struct BlockdevCreateOptionsVhdx {
    BlockdevRef *file;
    uint64_t size;
    bool has_log_size;
    uint64_t log_size;
    bool has_block_size;
    uint64_t block_size;
    bool has_subformat;
    BlockdevVhdxSubformat subformat;
    bool has_block_state_zero;
    bool block_state_zero;
} BlockdevCreateOptionsVhdx;

struct BlockdevCreateOptions {
    BlockdevDriver driver;
    union {
        BlockdevCreateOptionsVhdx vhdx;
    } u;
};

bool visit_type_BlockdevCreateOptions(Visitor *v, const char *name, BlockdevCreateOptions **obj, Error **errp);
void qapi_free_BlockdevCreateOptions(BlockdevCreateOptions *obj);

#endif
