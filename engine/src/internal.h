/*
 * internal.h - the vhdx handle and the functions the engine's modules share.
 * Internal to libvhdx.
 *
 * Invariants of a struct vhdx between calls:
 *  - hdr is the current header as on disk, hdr_slot says which slot holds it;
 *  - bat[] is the BAT as the virtual disk sees it: every change made to it is
 *    already in a durable log entry (possibly not yet applied);
 *  - pending[] holds the latest content of every metadata page written to
 *    the log but not yet applied, each page once;
 *  - alloc_end is the end of the highest structure (log, regions, blocks),
 *    the next block is allocated there;
 *  - poison != 0 means a metadata I/O failed and every call must fail.
 */
#ifndef VHDX_INTERNAL_H
#define VHDX_INTERNAL_H

#include <stdint.h>

#include "io.h"
#include "vhdx/log.h"
#include "vhdx/vhdx.h"

struct vhdx_page {
    uint64_t offset;                /* file offset, 4 KiB aligned */
    uint8_t data[VHDX_LOG_SECTOR];  /* latest content */
};

struct vhdx_log_writer {
    struct vhdx_guid guid;  /* LogGuid of this session's log; zero until started */
    int started;            /* the header carries guid */
    uint64_t next_seq;      /* sequence number of the next entry */
    uint32_t head;          /* ring offset where the next entry goes */
    uint32_t seq_start;     /* ring offset of the tail of the last durable sequence */
    uint32_t used;          /* bytes of the ring the last durable sequence occupies */
    uint32_t unapplied;     /* entries written since the last apply */
    uint32_t max_entry;     /* largest entry this writer builds (bytes) */
    uint32_t apply_every;   /* policy: entries per apply */
    struct vhdx_page *pending; /* pages to apply */
    size_t n_pending, cap_pending;
    uint8_t *entry_buf;     /* max_entry bytes */
    uint64_t entries_written, applies; /* statistics */
};

struct vhdx {
    struct bdev *dev;        /* the file (borrowed) */
    struct bdev *view;       /* reads go here: dev, or the replay overlay */
    struct vhdx_replay_plan plan; /* in-memory replay of a read-only open */
    unsigned flags;          /* VHDX_OPEN_* */
    struct vhdx_rng rng;     /* GUID source */
    struct vhdx_diag diag;   /* last failure */
    int poison;              /* nonzero: handle unusable */
    int dirty;               /* writes since the last flush */

    struct vhdx_header hdr;  /* current header */
    int hdr_slot;            /* 0: 64 KiB, 1: 128 KiB */
    int file_guid_done;      /* FileWriteGuid changed this session */
    int data_guid_done;      /* DataWriteGuid changed this session */

    struct vhdx_region_table *regions; /* the region table in use */
    uint64_t bat_offset;     /* BAT region */
    uint32_t bat_length;
    uint64_t meta_offset;    /* metadata region */
    uint32_t meta_length;
    struct vhdx_geometry geo;
    uint32_t fp_flags;       /* file parameter flags */
    struct vhdx_guid disk_id;

    uint8_t *bat;            /* raw BAT bytes, bat_bytes long */
    size_t bat_bytes;        /* round_up(entries * 8, 4 KiB), <= bat_length */

    uint64_t file_size;      /* volatile size of the file */
    uint64_t durable_size;   /* size at the last successful flush */
    uint64_t alloc_end;      /* end of the highest structure */

    struct vhdx_log_writer log;

    int replayed;
    uint32_t replayed_entries;
    uint64_t replayed_head_sequence;
};

/* diag helpers (image.c) */
int vhdx_fail(struct vhdx_diag *d, int code, uint64_t offset, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* header protocol (image.c) */
enum { HDR_NEW_FILE_GUID = 1, HDR_NEW_DATA_GUID = 2, HDR_SET_LOG_GUID = 4, HDR_CLEAR_LOG_GUID = 8 };
int vhdx_header_update(struct vhdx *h, unsigned what, const struct vhdx_guid *log_guid);
/* Before the first modification: new FileWriteGuid (and DataWriteGuid when
 * user_visible), once per session. */
int vhdx_session_begin(struct vhdx *h, int user_visible);
/* Flush the device and remember the durable size. */
int vhdx_flush_dev(struct vhdx *h);

/* log writer (log_write.c) */
int vhdx_log_writer_init(struct vhdx *h, uint32_t apply_every);
void vhdx_log_writer_free(struct vhdx *h);
/* Logs the pages (each 4 KiB, file offsets 4 KiB aligned), applying per
 * policy.  On failure the handle is poisoned. */
int vhdx_log_commit(struct vhdx *h, const struct vhdx_log_update *pages, size_t n);
int vhdx_log_apply(struct vhdx *h);
/* Apply everything and clear the LogGuid (close). */
int vhdx_log_finish(struct vhdx *h);

static inline uint64_t vhdx_round_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }
static inline uint64_t vhdx_bat_get(const struct vhdx *h, uint64_t idx) { return vhdx_get64(h->bat + idx * 8); }
static inline void vhdx_bat_set(struct vhdx *h, uint64_t idx, uint64_t v) { vhdx_put64(h->bat + idx * 8, v); }

#endif /* VHDX_INTERNAL_H */
