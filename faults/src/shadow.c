/*
 * shadow.c - the in-session model of a virtual disk under faults (shadow.h).
 *
 * Invariants: hist is a superset of cur once synced to the current
 * generation (every value added to cur is added to hist); an entry whose
 * gen is older than s->gen has not changed since that flush, so its hist is
 * reset to cur lazily, when it is next touched.
 */
#include "faults/shadow.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faults/judge.h"
#include "harness/sdata.h"

#define EMPTY UINT64_MAX

void shadow_init(struct shadow *s, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    s->seed = seed;
}

void shadow_free(struct shadow *s)
{
    free(s->slots);
    free(s->first);
    memset(s, 0, sizeof *s);
}

static size_t slot_of(uint64_t key, size_t cap)
{
    return (size_t)((key * UINT64_C(0x9E3779B97F4A7C15)) >> 20) & (cap - 1);
}

static const struct shadow_ent *find(const struct shadow *s, uint64_t key)
{
    if (!s->cap)
        return NULL;
    for (size_t i = slot_of(key, s->cap);; i = (i + 1) & (s->cap - 1)) {
        if (s->slots[i].sector == key)
            return &s->slots[i];
        if (s->slots[i].sector == EMPTY)
            return NULL;
    }
}

static int grow(struct shadow *s)
{
    size_t ncap = s->cap ? s->cap * 2 : 1024;
    struct shadow_ent *n = malloc(ncap * sizeof *n);
    if (!n)
        return -ENOMEM;
    for (size_t i = 0; i < ncap; i++)
        n[i].sector = EMPTY;
    for (size_t i = 0; i < s->cap; i++) {
        if (s->slots[i].sector == EMPTY)
            continue;
        size_t j = slot_of(s->slots[i].sector, ncap);
        while (n[j].sector != EMPTY)
            j = (j + 1) & (ncap - 1);
        n[j] = s->slots[i];
    }
    free(s->slots);
    s->slots = n;
    s->cap = ncap;
    return 0;
}

/* The entry of key, created as "zeros, synced" when absent. */
static struct shadow_ent *get(struct shadow *s, uint64_t key)
{
    if ((s->count + 1) * 2 > s->cap && grow(s) != 0)
        return NULL;
    size_t i = slot_of(key, s->cap);
    while (s->slots[i].sector != EMPTY && s->slots[i].sector != key)
        i = (i + 1) & (s->cap - 1);
    struct shadow_ent *e = &s->slots[i];
    if (e->sector == EMPTY) {
        memset(e, 0, sizeof *e);
        e->sector = key;
        e->gen = s->gen;
        e->cur.n = e->hist.n = 1; /* {0}: never written reads as zeros */
        s->count++;
    }
    return e;
}

static void sync_ent(const struct shadow *s, struct shadow_ent *e)
{
    if (e->gen != s->gen) {
        e->hist = e->cur;
        e->gen = s->gen;
    }
}

static void set_add(struct shadow_set *set, uint32_t v)
{
    for (int i = 0; i < set->n; i++)
        if ((set->v[i] & ~SHADOW_FAILED) == (v & ~SHADOW_FAILED)) {
            set->v[i] |= v & SHADOW_FAILED; /* keep the torn allowance if either was a failure */
            return;
        }
    if (set->n < SHADOW_MAX) {
        set->v[set->n++] = v;
    } else {
        /* Full: the newest value takes the last slot (the op on top of a
         * torn sector must be one the judge knows; the first slot keeps the
         * base value), and any value written here is allowed from now on. */
        set->v[SHADOW_MAX - 1] = v;
        set->over = 1;
    }
}

static int update(struct shadow *s, uint64_t voff, uint64_t vlen, uint32_t value, int ok)
{
    for (uint64_t sec = voff / 512; sec < (voff + vlen) / 512; sec++) {
        struct shadow_ent *e = get(s, sec);
        if (!e)
            return -ENOMEM;
        sync_ent(s, e);
        if (ok) {
            memset(&e->cur, 0, sizeof e->cur);
            e->cur.v[0] = value;
            e->cur.n = 1;
        } else {
            set_add(&e->cur, value | SHADOW_FAILED);
        }
        set_add(&e->hist, ok ? value : (value | SHADOW_FAILED));
    }
    return 0;
}

int shadow_write(struct shadow *s, uint64_t voff, uint64_t vlen, uint32_t id, int ok)
{
    if (id > s->max_id)
        s->max_id = id;
    if (id >= s->first_cap) {
        size_t ncap = s->first_cap ? s->first_cap : 256;
        while (ncap <= id)
            ncap *= 2;
        uint64_t *n = realloc(s->first, ncap * sizeof *n);
        if (!n)
            return -ENOMEM;
        memset(n + s->first_cap, 0, (ncap - s->first_cap) * sizeof *n);
        s->first = n;
        s->first_cap = ncap;
    }
    s->first[id] = voff / 512;
    return update(s, voff, vlen, id, ok);
}

int shadow_discard(struct shadow *s, uint64_t voff, uint64_t vlen, int ok)
{
    return update(s, voff, vlen, 0, ok);
}

void shadow_synced(struct shadow *s)
{
    s->gen++;
}

void shadow_dropped(struct shadow *s)
{
    for (size_t i = 0; i < s->cap; i++) {
        struct shadow_ent *e = &s->slots[i];
        if (e->sector == EMPTY)
            continue;
        sync_ent(s, e);
        e->cur = e->hist;
    }
}

uint64_t shadow_pick(const struct shadow *s, uint64_t r)
{
    if (!s->count)
        return 0;
    for (size_t i = (size_t)(r % s->cap);; i = (i + 1) % s->cap)
        if (s->slots[i].sector != EMPTY)
            return s->slots[i].sector;
}

/* The bytes value v (write id, 0 = zeros) has on sector. */
static int value_bytes(const struct shadow *s, uint64_t sector, uint32_t v, uint8_t out[512])
{
    if (!v) {
        memset(out, 0, 512);
        return 1;
    }
    if (v >= s->first_cap)
        return 0;
    sdata_sector(out, sector, s->first[v], v, s->seed);
    return 1;
}

/* A failed write (or a failed discard's zero-fill) torn inside this sector
 * over an earlier value, or several such failures layered (a persistent
 * fault fails every later write too, each leaving a prefix): every write
 * starts at the sector's first byte, so the bytes are runs of failed
 * values' bytes, each run ending where a longer, older prefix or the value
 * underneath shows.  Greedy: the longest run of a failed value from each
 * position; what is left must be a value the sector may hold.  (The post-
 * cut oracle's rule is oracle_torn_by_failed_op.) */
/* Where the run of val's bytes that starts at j ends. */
static size_t run_end(const uint8_t *bytes, const uint8_t *val, size_t j)
{
    while (j < 512 && bytes[j] == val[j])
        j++;
    return j;
}

static int torn_layers(const struct shadow *s, uint64_t sector, const struct shadow_set *set, const uint8_t *bytes)
{
    uint8_t val[512];
    size_t j = 0;
    for (int layers = 0; j < 512 && layers <= SHADOW_MAX; layers++) {
        /* the value underneath: any the sector may hold (dropped ones too when the list is full) */
        for (int i = 0; j > 0 && i < set->n; i++)
            if (value_bytes(s, sector, set->v[i] & ~SHADOW_FAILED, val) && run_end(bytes, val, j) == 512)
                return 1;
        for (uint32_t v = 0; set->over && j > 0 && v <= s->max_id; v++)
            if (value_bytes(s, sector, v, val) && run_end(bytes, val, j) == 512)
                return 1;
        /* else the longest run of a failed value from j (in a full list, dropped values: any
         * write issued may be one of its failed ones) */
        size_t best = j;
        for (int i = 0; i < set->n; i++)
            if ((set->v[i] & SHADOW_FAILED) && value_bytes(s, sector, set->v[i] & ~SHADOW_FAILED, val)) {
                size_t e = run_end(bytes, val, j);
                best = e > best ? e : best;
            }
        for (uint32_t v = 1; set->over && v <= s->max_id; v++)
            if (value_bytes(s, sector, v, val)) {
                size_t e = run_end(bytes, val, j);
                best = e > best ? e : best;
            }
        if (best == j)
            return 0;
        j = best;
    }
    return 0;
}

const char *shadow_judge(const struct shadow *s, uint64_t sector, const uint8_t bytes[512], char *why, size_t whylen)
{
    const struct shadow_ent *e = find(s, sector);
    struct shadow_set zero = {{0}, 1, 0};
    const struct shadow_set *set = e ? &e->cur : &zero;
    struct sdata_info in;
    enum sdata_kind k = sdata_decode(bytes, &in);
    if (k == SDATA_VALID && (in.sector != sector || in.seed != s->seed)) {
        snprintf(why, whylen, "sector %" PRIu64 " holds write %u of sector %" PRIu64 " (seed %" PRIu64 ")", sector,
                 in.write_id, in.sector, in.seed);
        return "misplaced";
    }
    uint32_t got = k == SDATA_VALID ? in.write_id : 0;
    if (k != SDATA_GARBAGE) {
        for (int i = 0; i < set->n; i++)
            if ((set->v[i] & ~SHADOW_FAILED) == got)
                return NULL;
        if (set->over && (got == 0 || got <= s->max_id))
            return NULL;
    } else if (torn_layers(s, sector, set, bytes)) {
        return NULL;
    }
    char gotbuf[32];
    if (k == SDATA_GARBAGE)
        snprintf(gotbuf, sizeof gotbuf, "garbage");
    else if (got)
        snprintf(gotbuf, sizeof gotbuf, "write %u", got);
    else
        snprintf(gotbuf, sizeof gotbuf, "zeros");
    size_t n = (size_t)snprintf(why, whylen, "sector %" PRIu64 " reads %s; the handle may return only {", sector,
                                gotbuf);
    for (int i = 0; i < set->n && n < whylen; i++) {
        uint32_t v = set->v[i] & ~SHADOW_FAILED;
        const char *failed = (set->v[i] & SHADOW_FAILED) ? " (failed op)" : "";
        if (v)
            n += (size_t)snprintf(why + n, whylen - n, "%swrite %u%s", i ? ", " : "", v, failed);
        else
            n += (size_t)snprintf(why + n, whylen - n, "%szeros%s", i ? ", " : "", failed);
    }
    if (n < whylen)
        snprintf(why + n, whylen - n, "%s}", set->over ? ", ..." : "");
    if (k == SDATA_GARBAGE)
        return "garbage";
    if (got > s->max_id)
        return "foreign";
    return got == 0 || !e ? "lost" : "stale";
}
