/*
 * ref_write.h - the reference WRITER: a second producer of VHDX images and
 * logs, written from MS-VHDX alone, so that a reader meets what other
 * writers legally produce and this project's engine never writes.
 *
 * Why it exists.  A crash sweep over logs that one writer produced only
 * tests the reader on that writer's habits (its entry sizes, its ring
 * positions, its layout).  This writer makes, from a seed, everything the
 * specification allows and a reader must handle:
 *   layout   regions in any order and place (log, BAT, metadata anywhere
 *            after the header section, gaps between them), extra
 *            non-required regions, metadata items in any order at unaligned
 *            offsets, user and unknown optional items, block sizes 1..256
 *            MiB, 512/4096 logical and physical sectors, logs of 1..16 MiB,
 *            BATs larger than needed, a virtual size that is not a multiple
 *            of the block size, blocks ZERO or preallocated at creation, one
 *            or two valid headers, stale entries of old sessions in the ring;
 *   entries  0..~500 descriptors (descriptor sectors spill: 126 in the
 *            first, 128 in later ones), any number of data sectors, zero
 *            descriptors of 4 KiB to many MiB, data and zero descriptors
 *            mixed, overlapping and repeated in one entry (replay order
 *            decides), sequence numbers past 2^32;
 *   the ring entries wrapping at any sector, sequences of many entries
 *            whose Tail lies behind them (also further back than the oldest
 *            unapplied entry), several entries in one flush epoch, new
 *            sequences started elsewhere while an older complete one stays
 *            in the ring (the newest must win), sessions under other
 *            LogGuids left behind, FlushedFileOffset below the file size and
 *            LastFileOffset past it (replay must extend the file);
 *   changes  BAT updates for payload writes and discards (ZERO), blocks
 *            placed at the end of the file, in free gaps and in reused
 *            space, the BAT moved to another place through the log, regions
 *            added through the log, metadata items added, rewritten, moved
 *            and reordered through the log.
 *
 * The write-ahead protocol it follows (so every crash state is valid):
 *  - the first modification of a session updates both headers (new
 *    FileWriteGuid and DataWriteGuid), each copy written and flushed alone;
 *  - payload written to a newly placed block (and the file extension) is
 *    flushed before the entry that points the BAT at it;
 *  - an entry is flushed before any of its updates is written to its final
 *    place; the ring space of the newest durable entry's sequence (its Tail
 *    to its end) is never overwritten; sequence numbers only grow under one
 *    LogGuid; a new sequence (Tail = itself) starts only when every earlier
 *    entry is applied and flushed;
 *  - a new LogGuid is written to the headers only after its first entry is
 *    durable; it is cleared only after a flush that follows the last applied
 *    write; space freed by a discard is reused only once the entry that
 *    freed it is durable, and then zero-filled first.
 *
 * Guarantees: includes no engine or harness header (ref.independent checks);
 * uses the reference's own CRC-32C and little-endian stores; deterministic
 * from the seed (the same seed and parameters give the same bytes and the
 * same calls); bounded (sizes capped by REF_W_MAX_* and the parameters);
 * never reads the image back: it keeps its own model of every metadata page
 * (what the log says and what was written to the final place).
 */
#ifndef REF_REF_WRITE_H
#define REF_REF_WRITE_H

#include <stddef.h>
#include <stdint.h>

/* Where the writer's bytes go.  Every callback returns 0 or a negative
 * error, which the writer returns as is. */
struct ref_wio {
    int (*write)(void *ctx, const void *buf, size_t len, uint64_t off);
    int (*truncate)(void *ctx, uint64_t size); /* new file size; growth reads as zeros */
    int (*flush)(void *ctx);                   /* everything written before is durable */
    void *ctx;
};

/* The workload operations the writer reports (its own numbering). */
enum ref_wop {
    REF_WOP_WRITE = 1,   /* payload at [voff, voff+vlen), write id */
    REF_WOP_FLUSH = 2,   /* every earlier op durable when it returns */
    REF_WOP_DISCARD = 3, /* the range reads zeros afterwards */
    REF_WOP_REOPEN = 4,  /* close (durable) and open a new session */
    REF_WOP_OPEN = 5,    /* the first open */
    REF_WOP_CLOSE = 6,   /* the final close (durable) */
};

/* An observer of the sessions (every field may be NULL). */
struct ref_wobs {
    /* op numbers are dense from 0 in the order ops begin */
    void (*begin)(void *ctx, uint32_t op, enum ref_wop kind, uint64_t voff, uint64_t vlen, uint32_t id);
    void (*end)(void *ctx, uint32_t op, int rc);
    /* a flush-type op (flush, reopen, close) has made every op that ended
     * before it began durable; called before its end() */
    void (*synced)(void *ctx, uint32_t op);
    /* a named point: "refgen.pending" (arg: unapplied durable entries) after
     * a flush that leaves a log to replay, "refgen.session" (arg: session) */
    void (*mark)(void *ctx, const char *name, uint64_t arg);
    /* the bytes of write `id` at [voff, voff+len) (512-byte multiples);
     * NULL: a pattern of the writer's own */
    void (*fill)(void *ctx, uint8_t *buf, uint64_t voff, uint64_t len, uint32_t id);
    void *ctx;
};

/* What the caller may fix; 0 fields are chosen from the seed. */
struct ref_wparams {
    uint64_t virtual_size;    /* bytes, a multiple of the logical sector */
    uint32_t block_size;      /* 1 MiB .. 256 MiB, a power of two */
    uint32_t logical_sector;  /* 512 or 4096 */
    uint32_t physical_sector; /* 512 or 4096 */
    uint32_t log_length;      /* 1 MiB multiple, 1..REF_W_MAX_LOG */
    uint32_t sessions;        /* 1..8 */
    uint32_t ops;             /* workload ops per session, 1..2000 */
    int end;                  /* 0 seed, 1 the last session closes, 2 it stops with its log pending */
    uint32_t max_file_mb;     /* the file never passes this many MiB (0: 16384) */
};

#define REF_W_MAX_REGIONS 12u          /* region table entries the writer makes */
#define REF_W_MAX_ITEMS 16u            /* metadata items */
#define REF_W_MAX_LOG (16u << 20)      /* longest ring */
#define REF_W_MAX_FILE_MB (64u * 1024) /* largest file (64 GiB, sparse) */

struct ref_wregion {
    uint8_t guid[16];  /* on-disk form */
    uint64_t offset;   /* FileOffset */
    uint32_t length;   /* Length */
    uint32_t required; /* Required */
};

/* How a layout differs from the plainest one (log, metadata, BAT packed
 * from 1 MiB in that order, two region entries, the five items packed). */
enum ref_wvariety {
    REF_WV_REGION_ORDER = 1u << 0,  /* the table does not list the BAT first */
    REF_WV_PLACEMENT = 1u << 1,     /* structures in another order, or gaps between them */
    REF_WV_EXTRA_REGIONS = 1u << 2, /* non-required regions beside BAT and metadata */
    REF_WV_USER_ITEMS = 1u << 3,    /* user (or unknown optional) metadata items */
    REF_WV_ITEM_ORDER = 1u << 4,    /* items not in the usual order, or at unaligned offsets */
    REF_WV_ONE_HEADER = 1u << 5,    /* only one valid header at creation */
    REF_WV_HISTORY = 1u << 6,       /* entries of earlier sessions (other LogGuids) in the ring */
    REF_WV_PENDING_BASE = 1u << 7,  /* the new image names a log (complete, applied) to replay */
    REF_WV_BLOCK_STATES = 1u << 8,  /* ZERO or preallocated blocks at creation */
    REF_WV_PARTIAL_BLOCK = 1u << 9, /* the virtual size is not a multiple of the block size */
    REF_WV_BIG_BAT = 1u << 10,      /* the BAT region is larger than its entries need */
    REF_WV_BAT_SLOT = 1u << 11,     /* a free slot the BAT may move to */
    REF_WV_LOG_SLOT = 1u << 12,     /* a free place (and size) the log may move to */
};

struct ref_wlayout {
    uint64_t virtual_size;
    uint32_t block_size, logical_sector, physical_sector;
    int leave_block_allocated; /* File Parameters bit 0 */
    uint64_t log_offset;
    uint32_t log_length;
    uint32_t n_regions;        /* region table entries, in table order */
    struct ref_wregion region[REF_W_MAX_REGIONS];
    uint32_t bat_index, meta_index; /* the BAT's and the metadata region's entries */
    uint64_t bat_slot;         /* a free place of the BAT's length it may move to (0: none) */
    uint64_t log_slot;         /* a free place the log may move to (0: none) */
    uint32_t log_slot_length;  /* and its length */
    uint32_t n_items, user_items; /* metadata items (all, IsUser) */
    uint64_t created_size;     /* file size after creation */
    uint64_t structural_end;   /* end of the highest structure; the highest is the log, BAT or metadata */
    unsigned variety;          /* REF_WV_* */
};

/* Shapes produced so far (figures for tests and reports). */
struct ref_wstats {
    uint32_t entries;           /* log entries written (sessions only) */
    uint32_t max_descriptors;   /* largest DescriptorCount */
    uint32_t desc_0;            /* entries with DescriptorCount 0 */
    uint32_t desc_127;          /* exactly 127 (one in the second sector) */
    uint32_t desc_128_plus;     /* 128 or more */
    uint32_t desc_254;          /* exactly 254 (two full descriptor sectors) */
    uint32_t desc_255_plus;     /* 255 or more (a third descriptor sector) */
    uint32_t max_sectors;       /* longest entry in 4 KiB sectors */
    uint32_t sectors_6_plus;    /* entries of 6 or more sectors */
    uint32_t mixed;             /* entries with data and zero descriptors */
    uint32_t overlapping;       /* entries whose descriptors overlap (order decides) */
    uint64_t max_zero;          /* longest zero descriptor (bytes) */
    uint32_t zero_over_1m;      /* zero descriptors longer than 1 MiB */
    uint32_t wrapped_entries;   /* entries crossing the ring end */
    uint32_t wrapped_sequences; /* sequences of 2+ entries crossing the ring end */
    uint32_t max_run;           /* most entries from a Tail to its head */
    uint32_t tails_behind;      /* entries whose Tail names an earlier entry */
    uint32_t tails_applied;     /* ... an entry already applied */
    uint32_t batched;           /* entries written while an earlier one was not yet flushed */
    uint32_t competing;         /* new sequences started away from an older complete one */
    uint32_t stale_guids;       /* LogGuids whose entries stayed in the ring when another took over */
    uint32_t seq_high;          /* entries with SequenceNumber >= 2^32 */
    uint32_t lfo_extends;       /* entries whose LastFileOffset passes the file's end */
    uint32_t ffo_low;           /* entries whose FlushedFileOffset is below the durable size */
    uint32_t data_past_end;     /* entries with a descriptor past the file's end */
    uint32_t applies, partial_applies, unflushed_applies;
    uint32_t header_updates, single_updates;
    uint32_t guid_cleared;      /* LogGuid set back to zero inside a session */
    uint32_t bat_moves, regions_added, item_edits, log_moves;
    uint32_t blocks_end, blocks_gap, blocks_reused; /* where new blocks went */
    uint32_t discards_zero;     /* blocks moved to ZERO */
    uint32_t vops;              /* workload ops */
    uint32_t sessions;
    int pending_at_end;         /* the last session stopped with a log to replay */
};

struct ref_writer;

/* A writer for one image, its layout chosen from seed and p (NULL: all
 * from the seed).  0, -EINVAL (p out of range; message in err) or -ENOMEM. */
int ref_writer_new(struct ref_writer **out, uint64_t seed, const struct ref_wparams *p, char *err, size_t errlen);
void ref_writer_free(struct ref_writer *w);
const struct ref_wlayout *ref_writer_layout(const struct ref_writer *w);
const struct ref_wstats *ref_writer_stats(const struct ref_writer *w);
/* The last error in words ("" when none). */
const char *ref_writer_error(const struct ref_writer *w);

/* Writes the new image through io (any order, one flush at the end).  0 or
 * an error (the io's, -ENOMEM). */
int ref_writer_create(struct ref_writer *w, const struct ref_wio *io);

/* Runs the seeded sessions on the created image through io, telling obs
 * (may be NULL) about every workload op.  0 or an error; REF_W_EBUG when
 * the writer caught itself breaking the protocol (a bug here). */
int ref_writer_run(struct ref_writer *w, const struct ref_wio *io, const struct ref_wobs *obs);
#define REF_W_EBUG (-4242)

/* ---- an image in memory ------------------------------------------------------- */
/* A sparse file of 4 KiB pages: ref_wmem_io() writes into it, and
 * ref_wmem_read() serves struct ref_src (ref.h) from it. */
struct ref_wmem;
struct ref_wmem *ref_wmem_new(void);
void ref_wmem_free(struct ref_wmem *m);
struct ref_wio ref_wmem_io(struct ref_wmem *m);
uint64_t ref_wmem_size(const struct ref_wmem *m);
int ref_wmem_read(void *m, void *buf, size_t len, uint64_t off);

#endif /* REF_REF_WRITE_H */
