/*
 * sysemu/block-backend.h (powercut shim) - the BlockBackend calls of the
 * driver's create function: a backend is a link to the file node, its
 * writes and truncates go to the same device calls (and fault points) as
 * the driver's bdrv_* calls.
 */
#ifndef QSHIM_SYSEMU_BLOCK_BACKEND_H
#define QSHIM_SYSEMU_BLOCK_BACKEND_H

#include "block/block_int.h"

BlockBackend *blk_new_with_bs(BlockDriverState *bs, uint64_t perm, uint64_t shared_perm, Error **errp);
void blk_unref(BlockBackend *blk);
BlockDriverState *blk_bs(BlockBackend *blk);
void blk_set_allow_write_beyond_eof(BlockBackend *blk, bool allow);
int blk_pwrite(BlockBackend *blk, int64_t offset, int64_t bytes, const void *buf, BdrvRequestFlags flags);
int coroutine_fn blk_co_pwrite(BlockBackend *blk, int64_t offset, int64_t bytes, const void *buf,
                               BdrvRequestFlags flags);
int blk_truncate(BlockBackend *blk, int64_t offset, bool exact, PreallocMode prealloc, BdrvRequestFlags flags,
                 Error **errp);
BlockDriverState *bdrv_open_blockdev_ref(BlockdevRef *ref, Error **errp);

#endif
