/*
 * secmap.h - a sparse map from 512-byte sector numbers to sector contents.
 *
 * The storage unit of every simulated disk.  A map never owns the bytes a
 * value points at unless they came from its own arena (secmap_put_copy);
 * values usually point into a trace's write data, so recording 200 MiB of
 * writes costs 200 MiB once, and a durable image built from the trace costs
 * only a pointer per sector.
 *
 * Invariants: keys are unique; a value is never NULL; min_key/max_key bound
 * every key present (both 0/0 when empty), so a reader can skip a map whose
 * range does not meet the sectors it wants.  Open addressing with linear
 * probing, load factor <= 1/2; clear() is O(entries), not O(capacity).
 */
#ifndef HARNESS_SECMAP_H
#define HARNESS_SECMAP_H

#include <stddef.h>
#include <stdint.h>

#define SECTOR 512u

struct secmap_slot {
    uint64_t key;        /* sector number, SECMAP_EMPTY when free */
    const uint8_t *val;  /* 512 bytes */
};
#define SECMAP_EMPTY UINT64_MAX

struct secmap_chunk; /* arena chunk (private) */

struct secmap {
    struct secmap_slot *slots; /* capacity slots */
    size_t capacity;           /* power of two */
    size_t count;              /* keys present */
    uint64_t *used;            /* indexes of occupied slots, for clear() and iteration */
    size_t used_cap;
    uint64_t min_key, max_key; /* range of keys present */
    struct secmap_chunk *arena; /* owned sector copies */
    uint64_t sig_limit;        /* keys below this count in sig (0: none) */
    uint64_t sig;              /* XOR of a hash of (key, value) over keys < sig_limit: a borrowed value
                                * by its address, one of the map's copies by its bytes (arena memory
                                * is reused after a clear: equal addresses, other bytes) */
    size_t copies;             /* secmap_put_copy calls since the last clear (arena memory is reused by
                                * the next clear: such values do not name their bytes forever) */
};

void secmap_init(struct secmap *m);
/* Starts maintaining sig over keys below limit (recomputed now). */
void secmap_set_sig_limit(struct secmap *m, uint64_t limit);
void secmap_free(struct secmap *m);
/* Removes every key; keeps the allocation (and the arena, for reuse). */
void secmap_clear(struct secmap *m);

/* The value for key, or NULL. */
static inline const uint8_t *secmap_get(const struct secmap *m, uint64_t key)
{
    if (m->count == 0 || key < m->min_key || key > m->max_key)
        return NULL;
    size_t mask = m->capacity - 1;
    size_t i = (size_t)((key * UINT64_C(0x9E3779B97F4A7C15)) >> 17) & mask;
    for (;;) {
        const struct secmap_slot *s = &m->slots[i];
        if (s->key == key)
            return s->val;
        if (s->key == SECMAP_EMPTY)
            return NULL;
        i = (i + 1) & mask;
    }
}

/* Sets key -> val (val borrowed, must outlive the map's use).  0 or -ENOMEM. */
int secmap_put(struct secmap *m, uint64_t key, const uint8_t *val);
/* Copies 512 bytes into the map's arena and maps key to the copy. */
int secmap_put_copy(struct secmap *m, uint64_t key, const uint8_t *bytes);
/* Removes every key >= first (a shrink).  O(entries). */
void secmap_drop_from(struct secmap *m, uint64_t first);
/* Copies every entry of src into dst (values shared, not copied). */
int secmap_merge(struct secmap *dst, const struct secmap *src);

/* Iteration: for (size_t i = 0; i < m->count; i++) slot = secmap_at(m, i). */
static inline const struct secmap_slot *secmap_at(const struct secmap *m, size_t i)
{
    return &m->slots[m->used[i]];
}

/* 512 zero bytes, and the poison pattern the `stale` model shows for a file
 * extension that never became durable. */
extern const uint8_t SECTOR_ZERO[SECTOR];
extern const uint8_t SECTOR_POISON[SECTOR];

#endif /* HARNESS_SECMAP_H */
