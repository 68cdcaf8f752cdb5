/*
 * log.h - the VHDX metadata log: building entries, finding the active
 * sequence, validating and replaying it (MS-VHDX 2.3).
 *
 * Definitions used throughout (L = LogLength, positions are byte offsets
 * into the ring, multiples of 4 KiB, and every read wraps at L):
 *
 *  valid entry at p   The 64-byte header at p has signature "loge", LogGuid
 *                     equal to the file header's, EntryLength a non-zero
 *                     4 KiB multiple <= L, Tail < L and 4 KiB aligned,
 *                     SequenceNumber > 0, Reserved 0, FlushedFileOffset and
 *                     LastFileOffset 1 MiB multiples; EntryLength equals
 *                     (descriptor sectors + data descriptors) * 4 KiB; every
 *                     descriptor has a known signature, valid fields and the
 *                     entry's sequence number; every data sector has the
 *                     "data" signature and the split sequence number; the
 *                     CRC-32C over EntryLength bytes (checksum as 0) matches.
 *  link p -> q        q = (p + EntryLength(p)) mod L, both valid, and
 *                     seq(q) = seq(p) + 1.
 *  head h             a valid entry with no outgoing link (the end of a
 *                     maximal run of consecutive entries, as the spec's
 *                     "extend while valid" step produces).
 *  valid sequence     following links from Tail(h) reaches h; the sequence
 *                     is the entries Tail(h) .. h ("tail entry" to "head
 *                     entry").  Entries before Tail(h) in the same run are
 *                     already applied and are not replayed.
 *  active sequence    the valid sequence whose head has the greatest
 *                     sequence number.  Two different heads with that same
 *                     number cannot come from a correct writer; the log is
 *                     then refused as VHDX_E_LOG_AMBIGUOUS rather than
 *                     guessing.
 *
 * Cost bound: every 4 KiB position is examined (64 bytes each).  An entry
 * is read and checksummed only if no other "loge" sector lies inside its
 * claimed extent, so the entries that are read never overlap and the total
 * bytes read and checksummed are at most L plus one entry per position that
 * fails early.  L is capped at VHDX_LOG_MAX_LENGTH for replay.
 *
 * Replay safety: before anything is written, every descriptor of the active
 * sequence is checked against vhdx_log_target_ok(); one bad target refuses
 * the whole replay (VHDX_E_LOG_TARGET).
 */
#ifndef VHDX_LOG_H
#define VHDX_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "vhdx/bdev.h"
#include "vhdx/format.h"
#include "vhdx/guid.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VHDX_LOG_MAX_LENGTH (256u * 1024 * 1024) /* largest ring this engine replays */
/* Largest file a valid VHDX can need: 64 TiB of payload plus BAT, sector
 * bitmaps, metadata, log and header section, generously rounded. */
#define VHDX_MAX_FILE_SIZE (64 * VHDX_TiB + 64 * VHDX_GiB)

/* ---- building entries ---------------------------------------------------- */
struct vhdx_log_update {
    uint64_t file_offset; /* 4 KiB aligned target */
    const uint8_t *data;  /* 4096 bytes, or NULL for a zero update */
    uint64_t zero_length; /* with data == NULL: bytes to zero (4 KiB multiple) */
};

struct vhdx_log_entry_params {
    struct vhdx_guid log_guid;    /* written into the header */
    uint64_t sequence;            /* > 0 */
    uint32_t tail;                /* ring offset of the sequence's first entry */
    uint64_t flushed_file_offset; /* 1 MiB multiple */
    uint64_t last_file_offset;    /* 1 MiB multiple */
};

/* Size in bytes of the entry vhdx_log_entry_build() makes for these updates:
 * data updates whose 4096 bytes are all zero become zero descriptors. */
size_t vhdx_log_entry_size(const struct vhdx_log_update *u, size_t n);

/* Encodes a complete entry (descriptor sectors, data sectors, checksum) into
 * out, which must hold vhdx_log_entry_size() bytes.  Returns that size.
 * All-zero data updates are encoded as zero descriptors of 4 KiB. */
size_t vhdx_log_entry_build(const struct vhdx_log_entry_params *p, const struct vhdx_log_update *u,
                            size_t n, uint8_t *out);

/* ---- validating one entry ------------------------------------------------ */
/* Validates the entry held contiguously in buf (len bytes available, at
 * least EntryLength) against guid and ring length L, in the order:
 * header fields, GUID, length bounds, descriptors, data sectors, checksum.
 * Returns 0 or the VHDX_E_LOG_* code of the first failed check, with
 * *hdr decoded as far as possible. */
int vhdx_log_entry_validate(const uint8_t *buf, size_t len, const struct vhdx_guid *guid, uint32_t log_length,
                            struct vhdx_log_header *hdr);

/* ---- searching the ring --------------------------------------------------- */
struct vhdx_log_ring {
    struct bdev *dev;          /* device holding the log */
    uint64_t log_offset;       /* file offset of the ring */
    uint32_t log_length;       /* L */
    struct vhdx_guid log_guid; /* the current header's LogGuid */
};

/* One position of the ring that carries an entry signature. */
struct vhdx_log_scan_item {
    uint32_t position;            /* ring offset */
    int status;                   /* 0 valid, else why not (VHDX_E_LOG_*) */
    struct vhdx_log_header hdr;   /* decoded header */
    uint32_t data_descriptors;    /* when status == 0 */
    uint32_t zero_descriptors;    /* when status == 0 */
    int in_active;                /* 1 if part of the active sequence */
};

struct vhdx_log_sequence {
    int found;                    /* 1 if an active sequence exists */
    uint32_t count;               /* entries from tail to head */
    uint32_t *positions;          /* ring offsets, tail first (malloc'd) */
    uint32_t *lengths;            /* EntryLength of each, same order (malloc'd) */
    uint64_t tail_sequence;       /* seq of the tail entry */
    uint64_t head_sequence;       /* seq of the head entry */
    uint64_t flushed_file_offset; /* from the head entry */
    uint64_t last_file_offset;    /* from the head entry */
    uint32_t candidates;          /* positions with a plausible header */
};

/* Finds the active sequence.  Returns 0 (seq->found tells whether one
 * exists), VHDX_E_LOG_AMBIGUOUS, VHDX_E_LOG_TOO_LARGE, or an I/O error.
 * When items is non-NULL, every position with an entry signature is fully
 * validated and reported there (*items malloc'd, *n_items set): that is the
 * dump-log view and costs a full validation of each such entry. */
int vhdx_log_search(const struct vhdx_log_ring *ring, struct vhdx_log_sequence *seq,
                    struct vhdx_log_scan_item **items, size_t *n_items);
void vhdx_log_sequence_free(struct vhdx_log_sequence *seq);

/* ---- replay ---------------------------------------------------------------- */
/* The replay of a sequence as an ordered list of extents; applied in order
 * they give the replayed image.  Data extents are exactly 4 KiB. */
struct vhdx_replay_extent {
    uint64_t offset;     /* file offset */
    uint64_t length;     /* bytes */
    const uint8_t *data; /* NULL: zeros */
};
struct vhdx_replay_plan {
    size_t count;                     /* extents */
    struct vhdx_replay_extent *ext;   /* in replay order */
    uint8_t *data;                    /* storage for data extents */
    uint64_t last_file_offset;        /* head's LastFileOffset: extend to at least this */
    uint64_t flushed_file_offset;     /* head's FlushedFileOffset */
    uint32_t entries;                 /* entries replayed */
    uint64_t head_sequence;           /* for reports */
    uint64_t bad_target;              /* with VHDX_E_LOG_TARGET: offending file offset */
};

/* May a descriptor of an entry with this LastFileOffset write [off, off+len)?
 * Not inside the first 192 KiB, not inside the log region, not past
 * LastFileOffset, and LastFileOffset itself not past VHDX_MAX_FILE_SIZE. */
int vhdx_log_target_ok(const struct vhdx_log_ring *ring, uint64_t last_file_offset, uint64_t off, uint64_t len);

/* Reads the sequence again, validates every target and builds the plan.
 * Returns 0, VHDX_E_LOG_TARGET (plan->bad_target set), -ENOMEM, I/O errors. */
int vhdx_replay_plan_build(const struct vhdx_log_ring *ring, const struct vhdx_log_sequence *seq,
                           struct vhdx_replay_plan *plan);
void vhdx_replay_plan_free(struct vhdx_replay_plan *plan);

/* Writes the plan to dev in order, extends the file to cover every extent
 * (zero extents too, MS-VHDX 2.3.3) and at least last_file_offset, and
 * flushes.  Zero extents past the current end of the file are not written
 * (the extension reads as zeros). */
int vhdx_replay_plan_apply(struct bdev *dev, const struct vhdx_replay_plan *plan);

/* A read-only device that shows base with the plan applied (the in-memory
 * replay of a read-only open).  Borrows base and plan; destroy frees only
 * the wrapper.  Writes fail with -EROFS.  base must not change size while
 * the overlay exists (its size is read once, here). */
int vhdx_overlay_create(struct bdev *base, const struct vhdx_replay_plan *plan, struct bdev **out);

#ifdef __cplusplus
}
#endif
#endif /* VHDX_LOG_H */
