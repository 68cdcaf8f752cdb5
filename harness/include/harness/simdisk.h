/*
 * simdisk.h - simulated disks: the recording disk a workload runs on, and
 * the crash disk a crash state is judged on.  Both are struct bdev.
 *
 * THE CRASH MODEL, with a worked example.  A disk has a volatile state (what
 * the running program reads) and a durable state (what survives a power
 * cut).  A write changes the volatile state and is *pending* until the next
 * flush; a flush makes every pending write (and size change) durable.
 * Consider the operations
 *
 *      W1(A=x)  W2(B=y)  F  W3(A=z)  W4(C=w)  | cut
 *
 * The durable state at the cut is {A=x, B=y} (everything before F).  W3 and
 * W4 are pending; what the disk holds after the cut depends on the model:
 *
 *   prefix   pending writes persisted in issue order, up to the cut:
 *            {A=x,B=y}  {A=z,B=y}  {A=z,B=y,C=w}
 *   drop     every pending write lost:           {A=x,B=y}
 *   reorder  any subset of the pending writes:   the prefix images plus
 *            {A=x,B=y,C=w} (W4 without W3)
 *   torn     a pending write persisted in only some of its 512-byte (or
 *            4 KiB) sectors: e.g. W3 covering sectors A0..A7 leaves
 *            A0..A3 = z and A4..A7 = x
 *   stale    the file grew (a pending truncate) but the new space holds
 *            whatever was on the medium, not zeros: sectors of the
 *            extension not written by a persisted write read as POISON
 *   recovery the image is opened (the log replays), and the power is cut
 *            again after every write of that replay; the next open must
 *            reach the same result
 *
 * and the corruption models, under which the engine must refuse or repair
 * but never return garbage: misdirect (a log write lands at another
 * position of the ring), lost (a write reported durable is gone), bitflip
 * (one bit of durable log/header/region-table bytes flips).
 *
 * simdisk: the recording disk.  Reads see the volatile state; every write,
 * truncate and flush is appended to a trace (whose arena then holds the
 * bytes: sectors point into it, nothing is copied twice); marks go to the
 * trace too.  It also keeps an undo log of the pending writes so a failed
 * flush can drop them ("fault.drop_pending" mark), as Linux drops dirty
 * pages after a failed fsync.
 *
 * crashdisk: a crash image as layers over a durable base that it borrows:
 *      scratch  (writes made while the image is used, e.g. the replay)
 *      overlay  (the pending writes this crash choice persisted)
 *      prefix   (pending writes several consecutive states share, e.g.
 *                p1..p(i-1) for the torn states of write i)
 *      base     (durable state, shared by every state of an epoch)
 * so building and using a state costs what the replay touches, never the
 * image size, and a run of states that share a prefix builds it once.
 * crashdisk_reset() empties every layer; crashdisk_reset_keep_prefix()
 * keeps the prefix.  An optional guard sees every write and truncate first and may
 * abort the process (the fuzz target's "replay writes only where the log may
 * write").  An optional trace records the scratch writes (for the recovery
 * model).
 */
#ifndef HARNESS_SIMDISK_H
#define HARNESS_SIMDISK_H

#include <stdint.h>

#include "harness/secmap.h"
#include "harness/trace.h"
#include "vhdx/bdev.h"

/* ---- simdisk: the recording disk ------------------------------------------ */
struct simdisk_undo {
    uint64_t sector;     /* sector overwritten by a pending write */
    const uint8_t *prev; /* its previous value (NULL = absent from vol) */
};

struct simdisk {
    struct bdev base;             /* must be first */
    const struct secmap *initial; /* initial contents (borrowed, may be NULL) */
    uint64_t initial_limit;       /* initial sectors at or past this read as zero (after a shrink) */
    struct secmap vol;            /* sectors written since the start */
    uint64_t size;                /* volatile size in bytes */
    uint64_t durable_size;        /* size at the last flush */
    struct trace *trace;          /* where operations are recorded (borrowed) */
    struct simdisk_undo *undo;    /* pending writes' previous values */
    size_t n_undo, cap_undo;
    uint64_t reads, writes, flushes, truncates; /* counters */
};

/* Starts from initial (may be NULL) of initial_size bytes, recording into
 * trace (required: the trace owns the written bytes). */
int simdisk_init(struct simdisk *s, const struct secmap *initial, uint64_t initial_size, struct trace *trace);
void simdisk_free(struct simdisk *s);
static inline struct bdev *simdisk_bdev(struct simdisk *s) { return &s->base; }

/* ---- crashdisk: a crash image --------------------------------------------- */
/* Called before every write (is_truncate 0) and truncate (1, off = new size,
 * len 0); a nonzero return makes the write fail with -EIO.  The fuzz
 * targets abort() inside it instead. */
typedef int (*crashdisk_guard_fn)(void *ctx, uint64_t off, uint64_t len, int is_truncate);

struct crashdisk {
    struct bdev base;            /* must be first */
    const struct secmap *durable; /* base layer (borrowed) */
    struct secmap prefix;        /* persisted pending writes shared by consecutive states */
    struct secmap overlay;       /* persisted pending writes of this state */
    struct secmap scratch;       /* writes while in use */
    uint64_t size;               /* current size */
    uint64_t zero_from;          /* lower layers' sectors >= this read as zero (after a shrink) */
    uint64_t prefix_size;        /* size after the prefix layer */
    uint64_t prefix_zero_from;   /* zero_from after the prefix layer */
    uint64_t poison_lo, poison_hi; /* sectors in [lo, hi) absent from overlay/scratch read POISON */
    uint64_t durable_gen;        /* the owner bumps it whenever *durable changes (crashdisk_map_built
                                  * remembers mappings of the durable image per generation) */
    struct crashdisk_mapc *mapc; /* that memory (private) */
    int overlay_borrows_temp;    /* the overlay borrows bytes that do not live as long as the durable
                                  * image (e.g. a replay's own trace): crashdisk_map_built calls them
                                  * unstable.  Cleared by every reset. */
    crashdisk_guard_fn guard;    /* may be NULL */
    void *guard_ctx;
    struct trace *rec;           /* records writes/truncates/flushes made while in use (may be NULL) */
    int read_built;              /* reads through the bdev return the image as built (crashdisk_read_built):
                                  * a second reader's view of the state after a first one wrote to it */
    uint64_t reads, writes, flushes, truncates, read_bytes; /* counters */
};

void crashdisk_init(struct crashdisk *c, const struct secmap *durable, uint64_t size);
void crashdisk_free(struct crashdisk *c);
/* Empties every layer, sets the size, clears poison; keeps guard/rec. */
void crashdisk_reset(struct crashdisk *c, uint64_t size);
/* Empties overlay and scratch only: back to base + prefix. */
void crashdisk_reset_keep_prefix(struct crashdisk *c);
/* Adds a write or truncate to the prefix layer (call right after a reset or
 * reset_keep_prefix, before any overlay write). */
int crashdisk_prefix_write(struct crashdisk *c, uint64_t off, const uint8_t *data, uint64_t len);
void crashdisk_prefix_truncate(struct crashdisk *c, uint64_t size);
/* Adds bytes to the overlay (a pending write the crash persisted).  Data is
 * borrowed when the write is sector-aligned, copied otherwise. */
int crashdisk_overlay_write(struct crashdisk *c, uint64_t off, const uint8_t *data, uint64_t len);
/* Persists only the sectors of a pending write whose bit is set in mask
 * (bit i = i-th sector of the write, in units of gran bytes, 512 or 4096). */
int crashdisk_overlay_write_torn(struct crashdisk *c, uint64_t off, const uint8_t *data, uint64_t len,
                                 uint32_t gran, const uint8_t *mask);
static inline struct bdev *crashdisk_bdev(struct crashdisk *c) { return &c->base; }
/* Marks sectors below `sector` as structural: crashdisk_signature() then
 * identifies the bytes of [0, sector*512) that differ from the base, the
 * size, and the poison/zero ranges. */
void crashdisk_set_structural_limit(struct crashdisk *c, uint64_t sector);
uint64_t crashdisk_signature(const struct crashdisk *c);
/* Reads [off, off+len) of the current image (all layers). */
int crashdisk_read(struct crashdisk *c, void *buf, uint64_t len, uint64_t off);
/* Reads the image as the crash choice built it, without what was written
 * since (the scratch layer: e.g. a replay): what a second reader sees of
 * the state before the subject touched it.  (A shrink or growth made while
 * in use is not undone: callers keep the built size.) */
int crashdisk_read_built(struct crashdisk *c, void *buf, uint64_t len, uint64_t off);
/* The built image's bytes [off, off+len) (512-byte aligned) when they lie
 * contiguous in memory, else NULL.  *stable is set when the pointer names
 * those bytes for as long as the durable image lives (values borrowed from
 * the trace or held by the durable map; not per-state copies): equal
 * pointers then mean equal bytes, which the reference's checksum memo
 * relies on. */
const uint8_t *crashdisk_map_built(struct crashdisk *c, uint64_t off, size_t len, int *stable);

#endif /* HARNESS_SIMDISK_H */
