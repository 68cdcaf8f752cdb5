/*
 * oracle.h - what a crash image must show: the virtual-disk model built from
 * a trace's workload records, and the verdict on an image after reopen.
 *
 * Acknowledgement.  The workload runner emits a "workload.synced" mark
 * (argument: the flush-type op) when vhdx_flush() or vhdx_close() returns.
 * Every workload op that ended before that flush-type op began is then
 * acknowledged.  At a cut K (trace operations [0, K) happened):
 *   acked(op)   its acknowledging mark lies before K
 *   begun(op)   its B record lies before K
 * Acknowledged ops form a prefix of the op order, so for one virtual sector
 * the expectation at K is: the value of the latest acknowledged op that
 * covers it (a write id, zeros for a discard, zeros if none), or the value
 * of any later op covering it that had begun before K.  A sector never
 * written must read as zeros.  Anything else is a violation: an older value
 * (acked data lost), undecodable bytes (garbage), a write that never went
 * to that sector (misplaced), or a write not yet issued (time travel).
 *
 * A failed operation (under fault injection) may have stopped part-way
 * inside a sector, as a short write(2) or a device that cuts a write can:
 * the sector then holds a byte prefix of the failed write's data (or of a
 * failed discard's zero fill) over a value the sector could hold before
 * that op began: the acknowledged value, or any op on the sector begun
 * between the acknowledged op and the failed one (whose value may have
 * landed), or another failed op's prefix over such a value.  Every such op
 * counts, however many there are (oracle_torn_by_failed_op); the caller was
 * told the op failed, and no implementation can restore bytes it no longer
 * has.
 *
 * Under the corruption models (misdirect, lost, bitflip) the engine may
 * refuse the image, or roll back to older values, since VHDX carries no
 * checksum on payload and a lost write can be undetectable; what it must
 * never do is return bytes that were never written to that sector.
 */
#ifndef HARNESS_ORACLE_H
#define HARNESS_ORACLE_H

#include <stddef.h>
#include <stdint.h>

#include "harness/trace.h"
#include "vhdx/vhdx.h"

struct oracle_op {
    enum vop_kind kind; /* from the B record */
    uint64_t voff, vlen;
    uint32_t id;        /* write id */
    uint64_t begin;     /* trace index of B */
    uint64_t end;       /* trace index of E (UINT64_MAX if none) */
    int32_t rc;         /* from E */
    uint64_t acked_at;  /* trace index of the acknowledging mark, UINT64_MAX if never */
};

/* The oracle indexes ops by 64 KiB units of the virtual disk (the block size
 * when smaller; a larger power of two, up to the block size, on disks of
 * more than 16 GiB): a sector's candidates are the ops on its unit, so the
 * cost of judging a sector follows the writes near it, not all writes to its
 * (up to 256 MiB) block. */
#define ORACLE_UNIT_MAX (64u * 1024)
#define ORACLE_UNITS_MAX (256u * 1024) /* units of a big disk: the unit doubles past this */

struct oracle {
    const struct trace *t;
    uint64_t seed;
    uint64_t virtual_size;
    uint32_t block_size;   /* the index unit (see ORACLE_UNIT_MAX), not the image's block size */
    struct oracle_op *ops; /* in workload order */
    size_t n_ops;
    int begin_sorted;      /* ops[i].begin never decreases with i (a recorded trace): lookups bisect */
    uint32_t **per_block;  /* per index unit: indices (ascending) of write/discard ops touching it */
    uint32_t *per_block_n;
    uint64_t n_blocks;
    uint32_t *data_ops;    /* write ops, for sampling probe sectors */
    size_t n_data_ops;
};

/* Builds the model; 0, -ENOMEM, or -EINVAL when the trace has no workload. */
int oracle_build(struct oracle *o, const struct trace *t);
void oracle_free(struct oracle *o);

/* Is op acknowledged / begun at cut k? */
static inline int oracle_acked(const struct oracle_op *op, uint64_t k) { return op->acked_at < k; }
static inline int oracle_begun(const struct oracle_op *op, uint64_t k) { return op->begin < k; }

/* How many entries of list (op indices, ascending; n of them) name ops begun
 * before k: those come first when o->begin_sorted (binary search), else n. */
uint32_t oracle_begun_prefix(const struct oracle *o, const uint32_t *list, uint32_t n, uint64_t k);

enum oracle_strictness {
    ORACLE_POWER_LOSS = 0, /* acked data present, no garbage */
    ORACLE_CORRUPTION = 1, /* refuse or roll back allowed, no garbage */
    /* power loss on a medium without sector atomicity: as ORACLE_POWER_LOSS,
     * and a write in flight at the cut may leave a byte prefix of its value
     * over an older allowed one (as a failed write may in every mode) */
    ORACLE_POWER_LOSS_TEARS = 2,
};

/* The expectation for one sector at cut k, for diagnostics. */
struct sector_expect {
    uint32_t acked_id;   /* write id of the acked value, 0 = zeros */
    int acked_is_discard; /* the acked value is a discard (zeros) */
    uint32_t later[16];  /* later begun write ids (0 = a later discard) */
    int n_later;
    int more_later;      /* more than 16 */
};

/* Judges one sector's bytes.  Returns 0 when allowed, or a violation code
 * below, filling *e (may be NULL). */
enum oracle_violation {
    OV_OK = 0,
    OV_LOST = 1,       /* an acknowledged value is missing (older value or zeros instead) */
    OV_GARBAGE = 2,    /* bytes that no write produced */
    OV_MISPLACED = 3,  /* data of another sector or another seed */
    OV_FUTURE = 4,     /* data of a write not begun at the cut */
    OV_FOREIGN = 5,    /* data of a write that never covered this sector */
};
const char *oracle_violation_name(enum oracle_violation v);
/* The bytes write `id` put into `sector` (zeros for id 0, or when no
 * write op with that id covered it). */
void oracle_sector_value(const struct oracle *o, uint64_t sector, uint32_t id, uint8_t out[512]);
enum oracle_violation oracle_judge_sector(const struct oracle *o, uint64_t sector, uint64_t k, const uint8_t bytes[512],
                                          enum oracle_strictness mode, struct sector_expect *e);

/* The failed-op rule above: are `bytes` (not a value any op wrote whole) a
 * failed op's byte prefix over an allowed older value of the sector?
 * Walks every op on the sector after the acknowledged one (no cap). */
int oracle_torn_by_failed_op(const struct oracle *o, uint64_t sector, uint64_t k, const uint8_t bytes[512]);
/* The same rule where writes in flight at k (begun, not acknowledged) tear
 * like failed ones (ORACLE_POWER_LOSS_TEARS). */
int oracle_torn_in_flight(const struct oracle *o, uint64_t sector, uint64_t k, const uint8_t bytes[512]);

/* Which sectors of index unit `unit` (o->block_size bytes) a write begun
 * before k covers: mask[i] = 1 for the unit's i-th sector.  Returns whether
 * any is.  The others were never written and must read as zeros. */
int oracle_written_mask(const struct oracle *o, uint64_t unit, uint64_t k, uint8_t *mask);

/* Sectors worth checking at cut k: every sector of ops begun and not yet
 * acknowledged, and of ops acknowledged by the latest barrier (up to
 * per_op sampled sectors each), plus `probes` sectors sampled (by seed)
 * from everything written.  Appends to *out (malloc'd, *n entries). */
int oracle_check_set(const struct oracle *o, uint64_t k, uint32_t per_op, uint32_t probes, uint64_t seed,
                     uint64_t **out, size_t *n);
/* Every sector ever written by ops begun before k (the exhaustive check). */
int oracle_all_written(const struct oracle *o, uint64_t k, uint64_t **out, size_t *n);
/* A wide check of at most `max` sectors: one sector of every write begun
 * before k (sampled ops if there are more than max), the rest drawn at
 * random from all of them. */
int oracle_wide_set(const struct oracle *o, uint64_t k, uint32_t max, uint64_t seed, uint64_t **out, size_t *n);

#endif /* HARNESS_ORACLE_H */
