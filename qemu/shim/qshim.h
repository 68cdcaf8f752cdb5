/*
 * qshim.h - QEMU's VHDX driver (block/vhdx*.c of the installed QEMU,
 * fetched into the build tree by qemu/fetch_source.py) running in this
 * process over a powercut block device, through a shim of QEMU's block
 * layer (qemu/shim/include/: our stand-ins for the headers the driver
 * includes; qemu/shim/shim.c: their implementation).  No QEMU type crosses
 * this header: the subject (qemu/src/subject_qemu.c), pcqemu and the fuzz
 * targets use only what is declared here.
 *
 * What a call does is what QEMU 7.2 does for the same request from
 * qemu-io / qemu-img on a regular file, in the same order of device
 * calls:
 *   qshim_open   bdrv_open of a "vhdx" node over a "file" node: the
 *                driver's vhdx_open (header, log search and replay when
 *                opened read-write, region table, metadata, BAT, BAT
 *                check unless QSHIM_CHECK); a failure carries QEMU's Error
 *                message, or "Could not open 'NAME': <strerror>" when the
 *                driver set none, as bdrv_open_driver words it;
 *   qshim_read   blk_pread: requests are padded to 512 bytes (the driver's
 *   qshim_write  request alignment) with bounce buffers, unaligned writes
 *                read their head and tail sectors first; then the driver's
 *                bdrv_co_readv / bdrv_co_writev (split at
 *                BDRV_REQUEST_MAX_BYTES);
 *   qshim_flush  bdrv_flush: the file node's flush, skipped when nothing
 *                was written since the last successful one (write_gen);
 *   qshim_check  bdrv_co_check (qemu-img check's counts);
 *   qshim_close  bdrv_close: bdrv_flush, then the driver's close (whose
 *                result QEMU ignores; returned here for information);
 *   qshim_create vhdx_co_create (what `qemu-img create -f vhdx` runs),
 *                with the sequence number and GUIDs drawn from the seed.
 * Return values are QEMU's: 0 or a negative errno (-EINVAL for most format
 * refusals, -ENOTSUP, -EPERM for a read-only open of an image with a log to
 * replay, -EIO, ...).  The subject layer turns them into its convention.
 *
 * Fault points.  Every device call the driver makes (and only those: the
 * shim's own size look-ups for zero-filling reads past the end are not)
 * goes through one funnel that counts it and may fail it, like the
 * engine's io.h:
 *   qemu/io/read  qemu/io/write  qemu/io/flush  qemu/io/size (bdrv_getlength)
 *   qemu/io/truncate  qemu/alloc (qemu_try_blockalign, g_try_malloc0)
 * A fault is decided by the hook (qshim_set_fault_hook, any build) and, in
 * a build with FIU_ENABLE, by libfiu points of those names.  The failinfo
 * has the engine's encoding (faults/points.md): errno in the low 16 bits
 * (0 = EIO), QSHIM_FAULT_SHORT (a write writes its first half, then fails),
 * QSHIM_FAULT_LOSE (a flush tells the device "fault.drop_pending" first).
 * An allocation fault makes the allocation return NULL.  The infallible
 * allocations (qemu_blockalign, g_malloc0) abort as QEMU's do and are not
 * fault points.
 *
 * Determinism: GUIDs (qemu_uuid_generate) and g_random_int come from the
 * seed of the open or create; buffers from qemu_blockalign start as 0xA5.
 * Single-threaded; the state (hook, statistics) is process-wide.
 */
#ifndef QSHIM_H
#define QSHIM_H

#include <stddef.h>
#include <stdint.h>

#include "vhdx/bdev.h"

/* ---- fault points ------------------------------------------------------- */
enum qshim_point {
    QSHIM_P_READ = 0, /* qemu/io/read */
    QSHIM_P_WRITE,    /* qemu/io/write */
    QSHIM_P_FLUSH,    /* qemu/io/flush */
    QSHIM_P_SIZE,     /* qemu/io/size */
    QSHIM_P_TRUNCATE, /* qemu/io/truncate */
    QSHIM_P_ALLOC,    /* qemu/alloc */
    QSHIM_P_COUNT
};
extern const char *const qshim_point_names[QSHIM_P_COUNT];

#define QSHIM_FAULT_SHORT (1u << 16)
#define QSHIM_FAULT_LOSE (1u << 17)

/* Decides call number nth (1-based, counted per point since the last
 * qshim_stats_reset) of point p: 0 lets it run, anything else fails it with
 * that failinfo. */
typedef uintptr_t (*qshim_fault_fn)(void *ctx, enum qshim_point p, uint64_t nth);
void qshim_set_fault_hook(qshim_fault_fn fn, void *ctx);
/* The first fault injected since the last clear, as one line ("fault:
 * qemu/io/write of header copy 1 (65536+80)", "fault: qemu/io/flush after a
 * write of log", "fault: qemu/alloc"; empty when none) into buf (NULL: not
 * wanted); clear starts over. */
void qshim_fault_site(char *buf, size_t len, int clear);

struct qshim_stats {
    uint64_t calls[QSHIM_P_COUNT];    /* calls per point */
    uint64_t injected[QSHIM_P_COUNT]; /* failures injected per point */
    uint64_t device_errors;           /* device calls that failed by themselves */
    uint64_t bytes_read;              /* through qemu/io/read */
    uint64_t bytes_written;           /* through qemu/io/write */
    uint64_t flushes_skipped;         /* bdrv_flush with nothing written since the last flush */
    uint64_t read_limit_hits;         /* reads failed by the read limit */
};
void qshim_stats_get(struct qshim_stats *out);
void qshim_stats_reset(void);

/* A watchdog for hostile images: when bytes > 0, one qshim_open (or one
 * call on an image) may read at most that many bytes through the driver;
 * past it every read fails with -EIO and qshim_read_limit_hit() says so.
 * (QEMU 7.2's log search can loop forever: docs/qemu-findings.md Q9.)
 * 0 (the default) means no limit. */
void qshim_set_read_limit(uint64_t bytes);
int qshim_read_limit_hit(void);
/* The same for bytes written (QEMU 7.2 replays a zero descriptor 4 KiB at
 * a time, whatever its length: docs/qemu-findings.md Q4). */
void qshim_set_write_limit(uint64_t bytes);
int qshim_write_limit_hit(void);
/* The limits set now (0: none). */
uint64_t qshim_get_read_limit(void);
uint64_t qshim_get_write_limit(void);

/* ---- images ------------------------------------------------------------- */
struct qshim_image; /* one open image (format node + file node) */

enum qshim_open_flags {
    QSHIM_RDONLY = 1u << 0, /* open read-only (QEMU then refuses an image with a log to replay: -EPERM) */
    QSHIM_CHECK = 1u << 1,  /* BDRV_O_CHECK: the open skips the BAT check, as for qemu-img check */
};

/* Opens the image on dev; name is what messages call it (NULL: "image").
 * 0 with *out set, or QEMU's negative errno with its message in why (and
 * nothing allocated).  The device stays the caller's. */
int qshim_open(struct bdev *dev, const char *name, unsigned flags, uint64_t seed, struct qshim_image **out,
               char *why, size_t whylen);
/* Virtual-disk I/O, any offset and length inside the disk (outside: -EIO,
 * as QEMU's BlockBackend).  len 0 does nothing and returns 0. */
int qshim_read(struct qshim_image *im, uint64_t off, void *buf, size_t len);
int qshim_write(struct qshim_image *im, uint64_t off, const void *buf, size_t len);
int qshim_flush(struct qshim_image *im);

struct qshim_check_result {
    int corruptions;       /* qemu-img check's counts */
    int leaks;
    int check_errors;
    int corruptions_fixed; /* the vhdx driver counts a replay on open as one fixed corruption */
};
int qshim_check(struct qshim_image *im, struct qshim_check_result *r);

/* bdrv_close; the image is freed whatever the result. */
int qshim_close(struct qshim_image *im);
/* Frees the image without a device call (a power cut). */
void qshim_abandon(struct qshim_image *im);

/* The driver's view of the image (read from its state). */
struct qshim_info {
    uint64_t virtual_size;      /* what QEMU exposes: total sectors * 512 */
    uint64_t virtual_disk_size; /* the metadata item */
    uint32_t block_size;
    uint32_t logical_sector;
    uint32_t physical_sector;
    uint64_t bat_offset;        /* BAT region (region table) */
    uint32_t bat_length;
    uint32_t bat_entries;       /* entries the driver computed */
    uint64_t metadata_offset;   /* metadata region */
    uint64_t log_offset;        /* current header's log */
    uint32_t log_length;
    int current_header;         /* 0 (64 KiB) or 1 (128 KiB) */
    uint64_t header_sequence;   /* current header's SequenceNumber */
    int log_guid_set;           /* current header (in memory) names a log */
    int replayed;               /* the open replayed a log */
    int read_only;
};
int qshim_info(struct qshim_image *im, struct qshim_info *out);

/* What the last failed call of im said (its Error, or the last
 * error_report), "" when nothing; and the error_report lines of this image
 * so far (count, and the last few joined by " | "). */
const char *qshim_last_error(const struct qshim_image *im);
unsigned qshim_reports(const struct qshim_image *im, char *buf, size_t len);

/* Device calls of this image that failed (injected or not) since it was
 * opened, or during the last failed open (im NULL). */
uint64_t qshim_device_errors(const struct qshim_image *im);

/* ---- create ------------------------------------------------------------- */
struct qshim_create_params {
    uint64_t size;          /* bytes (rounded up to 512, as qemu-img does) */
    uint32_t block_size;    /* 0: QEMU's default for the size */
    uint32_t log_size;      /* 0: 1 MiB */
    int fixed;              /* subformat=fixed */
    int block_state_zero;   /* -1 default (on), 0 off, 1 on */
};
/* vhdx_co_create on dev (which should be empty).  0, or QEMU's negative
 * errno with its message in why. */
int qshim_create(struct bdev *dev, const struct qshim_create_params *p, uint64_t seed, char *why, size_t whylen);

/* "7.2.22 (Debian 1:7.2+dfsg-7+deb12u18)": the fetched source's version. */
const char *qshim_qemu_version(void);

#endif /* QSHIM_H */
