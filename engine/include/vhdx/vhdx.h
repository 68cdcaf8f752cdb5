/*
 * vhdx.h - libvhdx: create, open (with log replay), read, write, discard,
 * flush and close a dynamic VHDX v2 image through a struct bdev.
 *
 * Guarantees of the handle API:
 *  - vhdx_open() validates the whole image before its first write: the file
 *    identifier, both headers, both region tables, the metadata table and
 *    items, the BAT, and (when the LogGuid is set) the active log sequence
 *    and every descriptor target, all on the image as it will be after
 *    replay.  A refused image is left byte-identical.
 *  - Every metadata change (BAT, region table, metadata region) goes through
 *    the log: entry written, flush, applied to its final place, flush.
 *    Headers are updated by the dual-header protocol, never through the log.
 *  - A power cut at any point leaves an image that opens and holds every
 *    write acknowledged by a completed vhdx_flush() (see docs/engine.md for
 *    the write ordering that makes this true, including starting a log).
 *  - After an I/O failure in a metadata path the handle is poisoned: every
 *    later call returns VHDX_E_POISONED.  A failure in a payload write leaves
 *    the handle correct and returns the error.
 *  - The library never prints and never aborts on bad input.
 */
#ifndef VHDX_VHDX_H
#define VHDX_VHDX_H

#include <stddef.h>
#include <stdint.h>

#include "vhdx/bdev.h"
#include "vhdx/errors.h"
#include "vhdx/format.h"
#include "vhdx/guid.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vhdx;

/* Where and why something was refused: filled by open, create and check. */
struct vhdx_diag {
    int code;          /* the VHDX_E_* / -errno that was returned */
    uint64_t offset;   /* file offset of the offending field, UINT64_MAX if none */
    char field[64];    /* e.g. "header[1].LogLength", "BAT[17]" */
    char message[256]; /* one sentence for a person */
};

enum vhdx_open_flags {
    VHDX_OPEN_RDONLY = 1u << 0,  /* never write; a pending log is replayed in memory */
    VHDX_OPEN_NO_REPLAY = 1u << 1, /* refuse (VHDX_E_UNSUPPORTED) instead of replaying */
};

struct vhdx_options {
    unsigned flags;             /* VHDX_OPEN_* */
    uint32_t apply_every;       /* log entries written before they are applied: 1 (default
                                 * when 0) applies after every entry; N batches up to N
                                 * entries, or until the active sequence would pass 3/4
                                 * of the ring; the batch is also applied by close */
    const struct vhdx_rng *rng; /* GUID source; NULL = getrandom(2) */
    struct vhdx_diag *diag;     /* optional: details of a failure */
    const char *creator;        /* create: creator string in the file identifier */
};

/* Defaults of vhdx_create() when a parameter is 0 (docs/engine.md: layout). */
#define VHDX_DEFAULT_BLOCK_SIZE (32u * 1024 * 1024)
#define VHDX_DEFAULT_LOG_SIZE (1u * 1024 * 1024)
#define VHDX_DEFAULT_LOGICAL_SECTOR 512u
#define VHDX_DEFAULT_PHYSICAL_SECTOR 4096u

struct vhdx_create_params {
    uint64_t virtual_size;    /* bytes, multiple of the logical sector, <= 64 TiB */
    uint32_t block_size;      /* 1..256 MiB, power of two; 0 = default */
    uint32_t log_size;        /* 1 MiB multiple; 0 = default */
    uint32_t logical_sector;  /* 512 or 4096; 0 = default */
    uint32_t physical_sector; /* 512 or 4096; 0 = default */
};

/* Writes a new empty dynamic VHDX to dev (which should be empty; it is
 * truncated to the new size).  Layout: header section, log at 1 MiB,
 * metadata region, BAT region; payload blocks are appended on demand.
 * Returns 0, VHDX_E_INVAL (bad parameter, diag names it) or an I/O error. */
int vhdx_create(struct bdev *dev, const struct vhdx_create_params *p, const struct vhdx_options *opt);

/* Opens the image on dev (borrowed; the caller destroys it after close).
 * Returns 0 and *out, or an error with opt->diag filled. */
int vhdx_open(struct bdev *dev, const struct vhdx_options *opt, struct vhdx **out);

/* Applies pending log entries, flushes, clears the LogGuid and frees h.
 * h is freed whatever the result; the return value says whether the close
 * completed (an error means the image may still need a replay). */
int vhdx_close(struct vhdx *h);

/* Frees h without any I/O: the in-memory state is dropped as at a power
 * cut.  Used by the harness; never needed by a normal caller. */
void vhdx_abandon(struct vhdx *h);

/* Virtual-disk I/O at any byte offset and length inside the disk
 * (VHDX_E_RANGE otherwise).  Unallocated blocks read as zeros; writes
 * allocate blocks.  A write is durable after the next successful
 * vhdx_flush(); the allocation it made is durable when it returns. */
int vhdx_read(struct vhdx *h, uint64_t off, void *buf, size_t len);
int vhdx_write(struct vhdx *h, uint64_t off, const void *buf, size_t len);

/* After it returns, [off, off+len) reads as zeros.  Whole blocks move to
 * the ZERO state through the log (or are zero-filled when the image asks to
 * LeaveBlockAllocated); partial blocks are zero-filled in place. */
int vhdx_discard(struct vhdx *h, uint64_t off, uint64_t len);

/* Makes every earlier write and discard durable. */
int vhdx_flush(struct vhdx *h);

/* Applies the pending log entries now (whatever the batching policy). */
int vhdx_log_apply_now(struct vhdx *h);

struct vhdx_info {
    struct vhdx_geometry geo;       /* sizes and BAT shape */
    struct vhdx_header header;      /* current header */
    int header_slot;                /* 0: header at 64 KiB is current, 1: at 128 KiB */
    struct vhdx_guid virtual_disk_id; /* metadata item */
    uint32_t file_parameter_flags;  /* VHDX_FP_* */
    uint64_t bat_offset;            /* BAT region */
    uint32_t bat_length;
    uint64_t metadata_offset;       /* metadata region */
    uint32_t metadata_length;
    uint64_t file_size;             /* bytes (volatile) */
    uint64_t blocks_allocated;      /* payload blocks FULLY_PRESENT */
    uint64_t blocks_zero;           /* payload blocks in ZERO/UNMAPPED/UNDEFINED */
    int read_only;                  /* opened read-only */
    int replayed;                   /* 1: open replayed a log (in memory if read-only) */
    uint32_t replayed_entries;      /* entries of the replayed sequence */
    uint64_t replayed_head_sequence;
    uint64_t log_entries_written;   /* this session */
    uint64_t log_applies;           /* this session */
    int poisoned;                   /* error code poisoning the handle, or 0 */
};
int vhdx_get_info(struct vhdx *h, struct vhdx_info *out);

/* The diag of the last failed call on h (code 0 if none). */
const struct vhdx_diag *vhdx_last_diag(const struct vhdx *h);

/* Build identifier: version, compiler, flags ("libvhdx 1.0 clang-14 asan"). */
const char *vhdx_build_id(void);

#ifdef __cplusplus
}
#endif
#endif /* VHDX_VHDX_H */
