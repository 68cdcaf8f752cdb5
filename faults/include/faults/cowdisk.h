/*
 * cowdisk.h - a copy-on-write block device over a read-only image, that
 * remembers every write, truncate and flush made through it.
 *
 * Fault sweeps open crash images with faults armed and must then "cut the
 * power" inside that session and open the result again.  A cowdisk makes
 * that cheap and leaves the image it sits on untouched (a crash state of
 * the harness's sweep, an empty disk, ...):
 *
 *   - reads see the writes made through the cowdisk over the underlying
 *     image; bytes past the underlying image's size, or past a shrink,
 *     read as zeros;
 *   - every write/truncate/flush is kept in order (with a copy of the
 *     data), so cowdisk_materialize() can rebuild the device as it would be
 *     after a power cut that kept only the first n of them (e.g. all
 *     operations up to the last successful flush);
 *   - the "fault.drop_pending" mark (emitted by the engine's flush fault of
 *     kind flush-lose) drops every operation since the last flush, as Linux
 *     drops dirty pages after a failed fsync; the record then holds only
 *     what survived.
 *
 * Costs: a read or write touches only its own sectors; a drop or a
 * materialize replays the recorded operations (the writes of one session
 * on a crash image: a replay's log applies and header updates).
 */
#ifndef FAULTS_COWDISK_H
#define FAULTS_COWDISK_H

#include <stddef.h>
#include <stdint.h>

#include "harness/secmap.h"
#include "vhdx/bdev.h"

/* Reads [off, off+len) of the underlying image (always inside it). */
typedef int (*cowdisk_read_fn)(void *ctx, void *buf, uint64_t len, uint64_t off);

struct cowdisk_op {
    uint8_t kind;      /* 'W' write, 'T' truncate, 'F' flush */
    uint64_t off;      /* W: offset; T: new size */
    uint32_t len;      /* W: bytes */
    uint8_t *data;     /* W: copy of the bytes (owned) */
};

struct cowdisk {
    struct bdev base;            /* must be first */
    cowdisk_read_fn read_under;  /* underlying image (NULL: all zeros) */
    void *under_ctx;
    uint64_t under_size;         /* its size in bytes */
    struct secmap w;             /* sectors written through this device (own copies) */
    uint64_t size;               /* current size */
    uint64_t zero_from;          /* underlying sectors at or past this read as zero (after a shrink) */
    struct cowdisk_op *ops;      /* surviving operations, in order */
    size_t n_ops, cap_ops;
    size_t durable;              /* ops[0..durable) are followed by a flush */
    int record;                  /* 0: do not keep ops (no materialize/drop needed) */
    uint64_t reads, writes, flushes, truncates, drops; /* counters */
};

/* Starts over read_under/ctx of `size` bytes; recording on. */
void cowdisk_init(struct cowdisk *c, cowdisk_read_fn read_under, void *ctx, uint64_t size);
struct crashdisk;
/* Starts over a crash state of the sweep (harness/simdisk.h), all of it. */
void cowdisk_init_crashdisk(struct cowdisk *c, struct crashdisk *cd);
void cowdisk_free(struct cowdisk *c);
static inline struct bdev *cowdisk_bdev(struct cowdisk *c) { return &c->base; }

/* Makes dst (initialised, empty) the underlying image plus src->ops[0..n).
 * 0 or -ENOMEM. */
int cowdisk_materialize(struct cowdisk *dst, const struct cowdisk *src, size_t n);

/* Reads the current image (not counted as device reads). */
int cowdisk_read(struct cowdisk *c, void *buf, uint64_t len, uint64_t off);

/* Writes the current image to a file (sparse).  0 or -errno. */
int cowdisk_save(struct cowdisk *c, const char *path);

#endif /* FAULTS_COWDISK_H */
