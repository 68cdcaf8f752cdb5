/*
 * shadow.h - what a live engine handle may return for each virtual sector
 * while a workload runs with faults: the in-session model.
 *
 * The crash oracle (harness/oracle.h) says what may survive a power cut; the
 * shadow says what a read through the still-open handle may return right
 * now.  Per sector it keeps the set of values the sector may hold (write
 * ids; 0 means zeros):
 *
 *   successful write id / discard    {id} / {0}: exactly that
 *   failed write id / discard        the set plus id / 0 (any prefix of a
 *                                    failed device write may have landed)
 *   successful flush-type op         remembers the sets as durable
 *   the device dropped its pending   every value seen since the last
 *   writes (flush-lose fault)        successful flush becomes possible again
 *
 * A value that came from a failed write is flagged: the sector may then
 * also hold a byte-wise prefix of it over an earlier possible value (a
 * write torn inside the 512-byte sector, as a short write(2) can leave).
 * Sets hold SHADOW_MAX values; beyond that any value that some write of
 * this workload put on this very sector is accepted.
 *
 * Costs: O(1) expected per sector updated or judged; a drop visits every
 * sector written so far (it happens at most a few times per run).
 */
#ifndef FAULTS_SHADOW_H
#define FAULTS_SHADOW_H

#include <stddef.h>
#include <stdint.h>

#define SHADOW_MAX 6
#define SHADOW_FAILED (UINT32_C(1) << 31) /* flag on a value from a failed op */

struct shadow_set {
    uint32_t v[SHADOW_MAX]; /* values (write id or 0, possibly | SHADOW_FAILED) */
    uint8_t n;              /* used */
    uint8_t over;           /* overflowed: accept any value written to this sector */
};

struct shadow_ent {
    uint64_t sector;        /* key (UINT64_MAX: free slot) */
    uint32_t gen;           /* sync generation `hist` was last reset at */
    struct shadow_set cur;  /* what a read may return now */
    struct shadow_set hist; /* every value possible since the last successful flush */
};

struct shadow {
    uint64_t seed;             /* workload seed (self-describing data) */
    struct shadow_ent *slots;  /* open addressing */
    size_t cap, count;
    uint32_t gen;              /* incremented by every successful flush-type op */
    uint32_t max_id;           /* largest write id issued */
    uint64_t *first;           /* [id]: first sector of write id (to rebuild its bytes) */
    size_t first_cap;
};

void shadow_init(struct shadow *s, uint64_t seed);
void shadow_free(struct shadow *s);

/* Updates.  Offsets and lengths in bytes, 512-byte multiples.  0 or -ENOMEM. */
int shadow_write(struct shadow *s, uint64_t voff, uint64_t vlen, uint32_t id, int ok);
int shadow_discard(struct shadow *s, uint64_t voff, uint64_t vlen, int ok);
void shadow_synced(struct shadow *s);
void shadow_dropped(struct shadow *s);

/* Judges the bytes read from `sector` now.  Returns 0 when allowed, else a
 * short reason ("lost", "garbage", "misplaced", "foreign") and a sentence
 * in why. */
const char *shadow_judge(const struct shadow *s, uint64_t sector, const uint8_t bytes[512], char *why, size_t whylen);

/* The i-th sector known to the shadow (for probes); i < s->count. */
uint64_t shadow_pick(const struct shadow *s, uint64_t r);

#endif /* FAULTS_SHADOW_H */
