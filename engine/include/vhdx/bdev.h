/*
 * bdev.h - the block-device vtable: the only I/O path of libvhdx.
 *
 * Modelled on sqlite3_io_methods: an implementation embeds `struct bdev` as
 * its first member and points `ops` at a static table.  Wrappers (recording,
 * fault-injecting, overlay) embed a bdev and forward what they do not change.
 *
 * Contract every implementation keeps (the harness and the engine rely on it):
 *
 *  read(d, buf, len, off)
 *      Fills buf with len bytes starting at byte offset off and returns 0.
 *      If any byte of [off, off+len) lies at or beyond size(), it returns
 *      VHDX_E_SHORT_IO and the content of buf is unspecified.  len == 0 is a
 *      no-op that succeeds.  Reads see every write issued before them
 *      (volatile state), durable or not.
 *  write(d, buf, len, off)
 *      Writes len bytes at off and returns 0, or a negative error; on error
 *      any prefix of the range may have been written.  Writing past size()
 *      extends the device; the gap reads as zeros.
 *  flush(d)
 *      Durability barrier: when it returns 0, every write and truncate that
 *      completed before the call survives a power cut.  Writes not followed
 *      by a successful flush may be lost, reordered, or torn at any 512-byte
 *      boundary.  After a failed flush the durability of earlier writes is
 *      unknown (they may have been dropped, as Linux drops dirty pages after
 *      a failed fsync).
 *  size(d, &size)
 *      Current (volatile) size in bytes.
 *  truncate(d, size)
 *      Sets the size; growing zero-fills.  Durable only after flush().
 *  mark(d, name, arg)            optional, may be NULL
 *      A named event in the I/O stream ("log.entry", "log.applied", ...); a
 *      recording device stores it in its trace, others ignore it.
 *  destroy(d)                    optional, may be NULL
 *      Releases the device (closes files, frees memory).  Not a flush.
 *  map(d, off, len)              optional, may be NULL
 *      Lends read-only memory holding bytes [off, off+len) of the volatile
 *      state, valid until the next write, truncate or destroy; or returns
 *      NULL when it cannot (the caller then reads).  Never required: it
 *      lets an in-memory device skip a copy.
 *
 * Legal arguments: any byte offset and length with off + len <= 2^62.
 * Alignment is never required, but the engine issues 4 KiB-aligned I/O for
 * all metadata and logical-sector-aligned I/O for payload.
 *
 * The engine calls the devices only through the vhdx_io_* wrappers in
 * engine/src/io.h, which check arguments and host the fault points.
 */
#ifndef VHDX_BDEV_H
#define VHDX_BDEV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BDEV_MAX_OFFSET (UINT64_C(1) << 62) /* largest legal off + len */

struct bdev;

struct bdev_ops {
    int (*read)(struct bdev *d, void *buf, size_t len, uint64_t off);
    int (*write)(struct bdev *d, const void *buf, size_t len, uint64_t off);
    int (*flush)(struct bdev *d);
    int (*size)(struct bdev *d, uint64_t *size);
    int (*truncate)(struct bdev *d, uint64_t size);
    void (*mark)(struct bdev *d, const char *name, uint64_t arg); /* may be NULL */
    void (*destroy)(struct bdev *d);                              /* may be NULL */
    const void *(*map)(struct bdev *d, uint64_t off, size_t len); /* may be NULL */
};

struct bdev {
    const struct bdev_ops *ops; /* method table; never NULL */
};

/* Open flags for bdev_posix_open(). */
enum {
    BDEV_RDONLY = 1u << 0,    /* open O_RDONLY; write/truncate fail with -EBADF */
    BDEV_CREATE = 1u << 1,    /* create the file if missing (mode 0644) */
    BDEV_EXCL = 1u << 2,      /* with BDEV_CREATE: fail if it exists */
    BDEV_TRUNCATE = 1u << 3,  /* truncate to 0 bytes on open */
};

/*
 * POSIX file backend: pread/pwrite (looping over partial transfers and
 * EINTR), fdatasync, fstat, ftruncate.
 * Returns 0 and sets *out, or -errno (open failed) / -ENOMEM.
 */
int bdev_posix_open(const char *path, unsigned flags, struct bdev **out);

/* Calls ops->destroy if present.  NULL is accepted. */
void bdev_destroy(struct bdev *d);

#ifdef __cplusplus
}
#endif
#endif /* VHDX_BDEV_H */
