/*
 * secmap.c - open-addressing sector map with an arena for owned copies.
 *
 * Guarantees: see secmap.h.  Growth doubles the table when half full; the
 * used[] index list makes clear() and iteration proportional to entries.
 * Deletion (drop_from) rebuilds the table, which keeps probing simple (no
 * tombstones); it only happens on shrinks, which are rare.
 */
#include "harness/secmap.h"

#include "harness/bufpool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const uint8_t SECTOR_ZERO[SECTOR];
const uint8_t SECTOR_POISON[SECTOR] = {
#define P4 0xDE, 0xAD, 0xBE, 0xEF
#define P32 P4, P4, P4, P4, P4, P4, P4, P4
#define P256 P32, P32, P32, P32, P32, P32, P32, P32
    P256, P256
#undef P4
#undef P32
#undef P256
};

#define ARENA_SECTORS 2048u /* 1 MiB per chunk */

struct secmap_chunk {
    struct secmap_chunk *next;
    size_t used; /* sectors handed out */
    uint8_t data[ARENA_SECTORS][SECTOR];
};

void secmap_init(struct secmap *m)
{
    memset(m, 0, sizeof *m);
}

static uint64_t sig_of(uint64_t key, const uint8_t *val)
{
    uint64_t x = key * UINT64_C(0x9E3779B97F4A7C15) ^ (uint64_t)(uintptr_t)val;
    x = (x ^ (x >> 31)) * UINT64_C(0xBF58476D1CE4E5B9);
    return x ^ (x >> 29);
}

/* Is val one of the map's own copies (its arena)?  Their memory is handed
 * out again after a clear, so a pointer does not name their bytes for
 * long: two states may hold different bytes at one arena address. */
static int in_arena(const struct secmap *m, const uint8_t *val)
{
    const uintptr_t v = (uintptr_t)val;
    for (const struct secmap_chunk *c = m->arena; c; c = c->next) {
        const uintptr_t lo = (uintptr_t)(const void *)c->data; /* the chunk as bytes, not its first row */
        if (v >= lo && v < lo + sizeof c->data)
            return 1;
    }
    return 0;
}

/* A value's part of sig: borrowed values (the trace's bytes, the durable
 * image's) by their address, which names their bytes while they live; the
 * map's own copies by their bytes (FNV-1a over the sector). */
static uint64_t sig_val(const struct secmap *m, uint64_t key, const uint8_t *val)
{
    if (!in_arena(m, val))
        return sig_of(key, val);
    uint64_t h = UINT64_C(0xCBF29CE484222325);
    for (size_t i = 0; i < SECTOR; i++)
        h = (h ^ val[i]) * UINT64_C(0x100000001B3);
    return sig_of(key ^ UINT64_C(0xC0B1E5), (const uint8_t *)(uintptr_t)h);
}

void secmap_set_sig_limit(struct secmap *m, uint64_t limit)
{
    m->sig_limit = limit;
    m->sig = 0;
    for (size_t i = 0; i < m->count; i++) {
        const struct secmap_slot *s = &m->slots[m->used[i]];
        if (s->key < limit)
            m->sig ^= sig_val(m, s->key, s->val);
    }
}

/* Tables and arena chunks come from the buffer pool (harness/bufpool.h):
 * maps are built and freed many times per fuzz input or sweep. */
static void free_tables(struct secmap_slot *slots, uint64_t *used, size_t capacity)
{
    if (!capacity)
        return;
    bufpool_free(slots, capacity * sizeof *slots);
    bufpool_free(used, (capacity / 2 + 1) * sizeof *used);
}

void secmap_free(struct secmap *m)
{
    free_tables(m->slots, m->used, m->capacity);
    for (struct secmap_chunk *c = m->arena, *n; c; c = n) {
        n = c->next;
        bufpool_free(c, sizeof *c);
    }
    memset(m, 0, sizeof *m);
}

void secmap_clear(struct secmap *m)
{
    for (size_t i = 0; i < m->count; i++)
        m->slots[m->used[i]].key = SECMAP_EMPTY;
    m->count = 0;
    m->min_key = m->max_key = 0;
    m->sig = 0;
    m->copies = 0;
    for (struct secmap_chunk *c = m->arena; c; c = c->next)
        c->used = 0;
}

static size_t slot_of(const struct secmap *m, uint64_t key)
{
    return (size_t)((key * UINT64_C(0x9E3779B97F4A7C15)) >> 17) & (m->capacity - 1);
}

static int grow(struct secmap *m)
{
    size_t ncap = m->capacity ? m->capacity * 2 : 64;
    struct secmap_slot *ns = bufpool_alloc(ncap * sizeof *ns);
    uint64_t *nu = bufpool_alloc((ncap / 2 + 1) * sizeof *nu);
    if (!ns || !nu) {
        bufpool_free(ns, ncap * sizeof *ns);
        bufpool_free(nu, (ncap / 2 + 1) * sizeof *nu);
        return -ENOMEM;
    }
    for (size_t i = 0; i < ncap; i++)
        ns[i].key = SECMAP_EMPTY;
    struct secmap old = *m;
    m->slots = ns;
    m->capacity = ncap;
    m->used = nu;
    m->used_cap = ncap / 2 + 1;
    m->count = 0;
    for (size_t i = 0; i < old.count; i++) {
        const struct secmap_slot *s = &old.slots[old.used[i]];
        size_t j = slot_of(m, s->key);
        while (m->slots[j].key != SECMAP_EMPTY)
            j = (j + 1) & (ncap - 1);
        m->slots[j] = *s;
        m->used[m->count++] = j;
    }
    free_tables(old.slots, old.used, old.capacity);
    return 0;
}

int secmap_put(struct secmap *m, uint64_t key, const uint8_t *val)
{
    if ((m->count + 1) * 2 > m->capacity) {
        int rc = grow(m);
        if (rc)
            return rc;
    }
    size_t i = slot_of(m, key);
    const int counted = key < m->sig_limit;
    while (m->slots[i].key != SECMAP_EMPTY) {
        if (m->slots[i].key == key) {
            if (counted)
                m->sig ^= sig_val(m, key, m->slots[i].val) ^ sig_val(m, key, val);
            m->slots[i].val = val;
            return 0;
        }
        i = (i + 1) & (m->capacity - 1);
    }
    if (counted)
        m->sig ^= sig_val(m, key, val);
    m->slots[i].key = key;
    m->slots[i].val = val;
    m->used[m->count++] = i;
    if (m->count == 1) {
        m->min_key = m->max_key = key;
    } else {
        if (key < m->min_key)
            m->min_key = key;
        if (key > m->max_key)
            m->max_key = key;
    }
    return 0;
}

int secmap_put_copy(struct secmap *m, uint64_t key, const uint8_t *bytes)
{
    struct secmap_chunk *c = m->arena;
    while (c && c->used == ARENA_SECTORS)
        c = c->next;
    if (!c) {
        c = bufpool_alloc(sizeof *c);
        if (!c)
            return -ENOMEM;
        c->used = 0;
        c->next = m->arena;
        m->arena = c;
    }
    uint8_t *dst = c->data[c->used++];
    memcpy(dst, bytes, SECTOR);
    m->copies++;
    return secmap_put(m, key, dst);
}

void secmap_drop_from(struct secmap *m, uint64_t first)
{
    if (m->count == 0 || m->max_key < first)
        return;
    size_t n = m->count;
    struct secmap_slot *keep = malloc(n * sizeof *keep);
    size_t k = 0;
    if (!keep)
        return; /* leaves the map unchanged; callers treat shrinks as best effort */
    for (size_t i = 0; i < n; i++) {
        const struct secmap_slot *s = secmap_at(m, i);
        if (s->key < first)
            keep[k++] = *s;
    }
    for (size_t i = 0; i < n; i++)
        m->slots[m->used[i]].key = SECMAP_EMPTY;
    m->count = 0;
    m->sig = 0;
    for (size_t i = 0; i < k; i++)
        secmap_put(m, keep[i].key, keep[i].val); /* cannot grow: fewer keys than before */
    free(keep);
}

int secmap_merge(struct secmap *dst, const struct secmap *src)
{
    for (size_t i = 0; i < src->count; i++) {
        const struct secmap_slot *s = secmap_at(src, i);
        int rc = secmap_put(dst, s->key, s->val);
        if (rc)
            return rc;
    }
    return 0;
}
