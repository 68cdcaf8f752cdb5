/*
 * block/block_int.h (powercut shim) - the block layer as the VHDX driver
 * sees it, over a powercut block device (engine/include/vhdx/bdev.h).
 *
 * Two nodes per open image, as in QEMU: the format node (the driver's
 * BlockDriverState, opaque = its BDRVVHDXState) and, under it, the file
 * node ("protocol" node) whose only child link is bs->file.  Every I/O the
 * driver does goes through bs->file with the calls below, and each of them
 * behaves as QEMU 7.2's block layer over a regular file (file-posix) does:
 *
 *  bdrv_pread / bdrv_co_preadv   bytes at or past the end of the file read
 *                                as zeros; an offset or length beyond
 *                                BDRV_MAX_LENGTH, or a request longer than
 *                                BDRV_REQUEST_MAX_BYTES, fails with -EIO
 *                                before any device call; 0 on success;
 *  bdrv_pwrite / bdrv_co_pwritev writing past the end extends the file;
 *  bdrv_pwrite_sync              the write, then a flush of the file node;
 *  bdrv_flush                    a flush of the file node, skipped (0, no
 *                                device call) when the node is read-only
 *                                or nothing was written since the last
 *                                successful flush (QEMU's write_gen);
 *  bdrv_truncate                 sets the file size (exact); the flag
 *                                BDRV_REQ_ZERO_WRITE is accepted (a regular
 *                                file reads zeros where it grows); -EACCES
 *                                on a read-only node;
 *  bdrv_getlength                the file size rounded up to 512 bytes
 *                                (QEMU keeps a sector count).
 * Each device call is a fault point (qshim.h: a hook, counters, and the
 * libfiu points qemu/io/{read,write,flush,size,truncate} with FIU_ENABLE).
 *
 * Coroutines are plain calls and CoMutex does nothing: the harness is
 * single-threaded and nothing in the shim yields.
 */
#ifndef QSHIM_BLOCK_BLOCK_INT_H
#define QSHIM_BLOCK_BLOCK_INT_H

#include "qemu/osdep.h"
#include "qemu/queue.h"

/* ---- constants -------------------------------------------------------- */
#define BDRV_SECTOR_BITS 9
#define BDRV_SECTOR_SIZE (1ULL << BDRV_SECTOR_BITS)
#define BDRV_REQUEST_MAX_SECTORS ((int64_t)(INT_MAX >> BDRV_SECTOR_BITS))
#define BDRV_REQUEST_MAX_BYTES (BDRV_REQUEST_MAX_SECTORS << BDRV_SECTOR_BITS)
#define BDRV_MAX_ALIGNMENT (1L << 30)
#define BDRV_MAX_LENGTH (QEMU_ALIGN_DOWN(INT64_MAX, BDRV_MAX_ALIGNMENT))

#define BDRV_O_RDWR 0x0002
#define BDRV_O_RESIZE 0x0004
#define BDRV_O_PROTOCOL 0x8000
#define BDRV_O_CHECK 0x1000

#define BLOCK_OPT_SIZE "size"
#define BLOCK_OPT_SUBFMT "subformat"

typedef enum {
    BDRV_REQ_COPY_ON_READ = 0x1,
    BDRV_REQ_ZERO_WRITE = 0x2,
    BDRV_REQ_MAY_UNMAP = 0x4,
    BDRV_REQ_FUA = 0x10,
} BdrvRequestFlags;

typedef enum {
    PREALLOC_MODE_OFF = 0,
    PREALLOC_MODE_METADATA,
    PREALLOC_MODE_FALLOC,
    PREALLOC_MODE_FULL,
} PreallocMode;

enum {
    BLK_PERM_CONSISTENT_READ = 0x01,
    BLK_PERM_WRITE = 0x02,
    BLK_PERM_WRITE_UNCHANGED = 0x04,
    BLK_PERM_RESIZE = 0x08,
    BLK_PERM_ALL = 0x0f,
};

typedef unsigned BdrvChildRole;

typedef enum {
    BDRV_FIX_LEAKS = 1,
    BDRV_FIX_ERRORS = 2,
} BdrvCheckMode;

typedef struct BdrvCheckResult {
    int corruptions;
    int leaks;
    int check_errors;
    int corruptions_fixed;
    int leaks_fixed;
    int64_t image_end_offset;
} BdrvCheckResult;

typedef struct BlockDriverInfo {
    int cluster_size;
    int64_t vm_state_offset;
    bool is_dirty;
} BlockDriverInfo;

/* ---- I/O vectors (qemu/iov.h) --------------------------------------- */
struct QEMUIOVector {
    struct iovec *iov;      /* niov entries */
    int niov;
    int nalloc;             /* entries allocated; -1: iov is local_iov (qemu_iovec_init_buf) */
    size_t size;            /* sum of the lengths */
    struct iovec local_iov; /* the one entry of a vector made by qemu_iovec_init_buf */
};

void qemu_iovec_init(QEMUIOVector *qiov, int alloc_hint);
void qemu_iovec_init_buf(QEMUIOVector *qiov, void *buf, size_t len); /* one entry, not owned */
void qemu_iovec_add(QEMUIOVector *qiov, void *base, size_t len);
void qemu_iovec_reset(QEMUIOVector *qiov);
void qemu_iovec_destroy(QEMUIOVector *qiov);
/* Appends bytes [soffset, soffset+sbytes) of src to dst (no copy). */
void qemu_iovec_concat(QEMUIOVector *dst, QEMUIOVector *src, size_t soffset, size_t sbytes);
size_t qemu_iovec_concat_iov(QEMUIOVector *dst, struct iovec *src_iov, unsigned int src_cnt, size_t soffset,
                             size_t sbytes);
size_t qemu_iovec_memset(QEMUIOVector *qiov, size_t offset, int fillc, size_t bytes);

/* ---- coroutine lock (qemu/coroutine.h) -------------------------------- */
typedef struct CoMutex {
    int locked; /* checked: the driver never takes it twice */
} CoMutex;
void qemu_co_mutex_init(CoMutex *m);
void qemu_co_mutex_lock(CoMutex *m);
void qemu_co_mutex_unlock(CoMutex *m);

/* ---- nodes ------------------------------------------------------------ */
struct qshim_image;

struct BdrvChild {
    BlockDriverState *bs;                  /* the child node */
    const char *name;                      /* "file" */
    uint64_t perm;                         /* BLK_PERM_* */
    QLIST_ENTRY(BdrvChild) next_parent;    /* in bs->parents */
};

struct BlockDriverState {
    BlockDriver *drv;                      /* NULL for the file node */
    void *opaque;                          /* the driver's state (instance_size bytes, zeroed) */
    BdrvChild *file;                       /* format node: the link to the file node */
    int open_flags;                        /* BDRV_O_* */
    bool read_only;
    int64_t total_sectors;                 /* format node: set by the driver's open */
    char filename[4096];                   /* what messages name the image */
    char node_name[32];
    QLIST_HEAD(, BdrvChild) parents;       /* links pointing at this node */
    /* shim */
    struct qshim_image *node;              /* the open image this node belongs to */
    uint64_t write_gen;                    /* file node: writes and truncates issued */
    uint64_t flushed_gen;                  /* file node: write_gen at the last successful flush */
};

typedef struct BlockdevCreateOptions BlockdevCreateOptions;

struct BlockDriver {
    const char *format_name;
    int instance_size;
    bool is_format;
    int (*bdrv_probe)(const uint8_t *buf, int buf_size, const char *filename);
    int (*bdrv_open)(BlockDriverState *bs, QDict *options, int flags, Error **errp);
    void (*bdrv_close)(BlockDriverState *bs);
    int (*bdrv_reopen_prepare)(BDRVReopenState *reopen_state, BlockReopenQueue *queue, Error **errp);
    void (*bdrv_child_perm)(BlockDriverState *bs, BdrvChild *c, BdrvChildRole role, BlockReopenQueue *reopen_queue,
                            uint64_t parent_perm, uint64_t parent_shared, uint64_t *nperm, uint64_t *nshared);
    int coroutine_fn (*bdrv_co_readv)(BlockDriverState *bs, int64_t sector_num, int nb_sectors, QEMUIOVector *qiov);
    int coroutine_fn (*bdrv_co_writev)(BlockDriverState *bs, int64_t sector_num, int nb_sectors,
                                       QEMUIOVector *qiov, int flags);
    int coroutine_fn (*bdrv_co_create)(BlockdevCreateOptions *opts, Error **errp);
    int coroutine_fn (*bdrv_co_create_opts)(BlockDriver *drv, const char *filename, QemuOpts *opts,
                                            Error **errp);
    int (*bdrv_get_info)(BlockDriverState *bs, BlockDriverInfo *bdi);
    int coroutine_fn (*bdrv_co_check)(BlockDriverState *bs, BdrvCheckResult *result, BdrvCheckMode fix);
    int (*bdrv_has_zero_init)(BlockDriverState *bs);
    QemuOptsList *create_opts;
};

/* Registers a driver's table (called from its block_init function). */
void bdrv_register(BlockDriver *bdrv);
void bdrv_default_perms(BlockDriverState *bs, BdrvChild *c, BdrvChildRole role, BlockReopenQueue *reopen_queue,
                        uint64_t perm, uint64_t shared, uint64_t *nperm, uint64_t *nshared);

/* The format node's link to its file: set up by the shim before the
 * driver's open runs; returns 0. */
int bdrv_open_file_child(const char *filename, QDict *options, const char *bdref_key, BlockDriverState *parent,
                         Error **errp);

int bdrv_pread(BdrvChild *child, int64_t offset, int64_t bytes, void *buf, BdrvRequestFlags flags);
int bdrv_pwrite(BdrvChild *child, int64_t offset, int64_t bytes, const void *buf, BdrvRequestFlags flags);
int bdrv_pwrite_sync(BdrvChild *child, int64_t offset, int64_t bytes, const void *buf, BdrvRequestFlags flags);
int coroutine_fn bdrv_co_preadv(BdrvChild *child, int64_t offset, int64_t bytes, QEMUIOVector *qiov,
                                BdrvRequestFlags flags);
int coroutine_fn bdrv_co_pwritev(BdrvChild *child, int64_t offset, int64_t bytes, QEMUIOVector *qiov,
                                 BdrvRequestFlags flags);
int bdrv_flush(BlockDriverState *bs);
int bdrv_truncate(BdrvChild *child, int64_t offset, bool exact, PreallocMode prealloc, BdrvRequestFlags flags,
                  Error **errp);
int64_t bdrv_getlength(BlockDriverState *bs);
bool bdrv_is_read_only(BlockDriverState *bs);
void bdrv_refresh_filename(BlockDriverState *bs);
const char *bdrv_get_device_or_node_name(const BlockDriverState *bs);
int bdrv_has_zero_init(BlockDriverState *bs);
void bdrv_unref(BlockDriverState *bs);
int bdrv_create_file(const char *filename, QemuOpts *opts, Error **errp);
BlockDriverState *bdrv_open(const char *filename, const char *reference, QDict *options, int flags, Error **errp);

void *qemu_blockalign(BlockDriverState *bs, size_t size);
void *qemu_try_blockalign(BlockDriverState *bs, size_t size);

#include "qemu/memalign.h"
#include "qapi/error.h"
#include "qapi/qapi-visit-block-core.h"

#endif /* QSHIM_BLOCK_BLOCK_INT_H */
