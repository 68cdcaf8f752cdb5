/*
 * oracle.c - the virtual-disk model and the per-sector verdict (oracle.h).
 *
 * Guarantees: building is one pass over the trace plus a per-block index
 * (each write/discard op listed under every virtual block it touches), so
 * judging a sector costs the number of ops that touched its block, not the
 * length of the workload.  Sampling is a pure function of the seed.
 */
#include "harness/oracle.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "harness/bufpool.h"
#include "harness/sdata.h"

const char *oracle_violation_name(enum oracle_violation v)
{
    switch (v) {
    case OV_OK:
        return "ok";
    case OV_LOST:
        return "acked-data-lost";
    case OV_GARBAGE:
        return "garbage";
    case OV_MISPLACED:
        return "misplaced-data";
    case OV_FUTURE:
        return "data-from-the-future";
    case OV_FOREIGN:
        return "foreign-data";
    }
    return "?";
}

static int add_block_op(struct oracle *o, uint64_t b, uint32_t idx)
{
    uint32_t n = o->per_block_n[b];
    if ((n & (n - 1)) == 0) { /* grow at powers of two */
        uint32_t *nl = realloc(o->per_block[b], (n ? 2 * n : 1) * sizeof *nl);
        if (!nl)
            return -ENOMEM;
        o->per_block[b] = nl;
    }
    o->per_block[b][n] = idx;
    o->per_block_n[b] = n + 1;
    return 0;
}

void oracle_free(struct oracle *o)
{
    for (uint64_t b = 0; o->per_block && b < o->n_blocks; b++)
        if (o->per_block[b])
            free(o->per_block[b]);
    bufpool_free(o->per_block, o->n_blocks * sizeof *o->per_block);
    bufpool_free(o->per_block_n, o->n_blocks * sizeof *o->per_block_n);
    free(o->ops);
    free(o->data_ops);
    memset(o, 0, sizeof *o);
}

int oracle_build(struct oracle *o, const struct trace *t)
{
    memset(o, 0, sizeof *o);
    if (!(t->flags & TRACE_F_WORKLOAD))
        return -EINVAL;
    o->t = t;
    o->seed = t->seed;
    const char *vs = trace_get_meta(t, "virtual_size"), *bs = trace_get_meta(t, "block_size");
    o->virtual_size = vs ? strtoull(vs, NULL, 10) : 0;
    o->block_size = bs ? (uint32_t)strtoul(bs, NULL, 10) : 0;
    if (!o->virtual_size || !o->block_size || o->virtual_size > (64ull << 40))
        return -EINVAL;
    /* The index unit: 64 KiB, larger on big disks so the per-unit arrays
     * stay within ORACLE_UNITS_MAX entries, never larger than a block. */
    uint32_t unit = o->block_size > ORACLE_UNIT_MAX ? ORACLE_UNIT_MAX : o->block_size;
    while (unit < o->block_size && o->virtual_size / unit > ORACLE_UNITS_MAX)
        unit *= 2;
    o->block_size = unit;
    /* Ops are numbered densely by the runner (B records carry the index). */
    size_t max_op = 0;
    for (size_t i = 0; i < t->n_ops; i++)
        if (t->ops[i].kind == TR_VBEGIN && t->ops[i].vop + 1 > max_op)
            max_op = t->ops[i].vop + 1;
    o->ops = calloc(max_op + 1, sizeof *o->ops);
    o->n_blocks = (o->virtual_size + o->block_size - 1) / o->block_size;
    /* up to ORACLE_UNITS_MAX entries each, built per trace: from the pool */
    o->per_block = bufpool_alloc(o->n_blocks * sizeof *o->per_block);
    o->per_block_n = bufpool_alloc(o->n_blocks * sizeof *o->per_block_n);
    if (o->per_block)
        memset(o->per_block, 0, o->n_blocks * sizeof *o->per_block);
    if (o->per_block_n)
        memset(o->per_block_n, 0, o->n_blocks * sizeof *o->per_block_n);
    o->data_ops = calloc(max_op + 1, sizeof *o->data_ops);
    if (!o->ops || !o->per_block || !o->per_block_n || !o->data_ops) {
        oracle_free(o);
        return -ENOMEM;
    }
    o->n_ops = max_op;
    for (size_t i = 0; i < max_op; i++)
        o->ops[i].begin = o->ops[i].end = o->ops[i].acked_at = UINT64_MAX;
    int synced_name = trace_find_name(t, "workload.synced");
    int drop_name = trace_find_name(t, "fault.drop_pending");
    size_t ack_from = 0;   /* ops before this index are acked already */
    size_t dropped_to = 0; /* ops below this index lost their pending writes to a failed flush */
    for (size_t i = 0; i < t->n_ops; i++) {
        const struct trace_op *op = &t->ops[i];
        if (op->kind == TR_VBEGIN) {
            struct oracle_op *r = &o->ops[op->vop];
            r->kind = (enum vop_kind)op->vkind;
            r->voff = op->off;
            r->vlen = op->vlen;
            r->id = op->vid;
            r->begin = i;
            if ((r->kind == VOP_WRITE || r->kind == VOP_DISCARD) && r->vlen && r->voff < o->virtual_size) {
                uint64_t end = r->voff + r->vlen > o->virtual_size ? o->virtual_size : r->voff + r->vlen;
                for (uint64_t b = r->voff / o->block_size; b * o->block_size < end; b++)
                    if (add_block_op(o, b, op->vop) != 0) {
                        oracle_free(o);
                        return -ENOMEM;
                    }
                if (r->kind == VOP_WRITE)
                    o->data_ops[o->n_data_ops++] = op->vop;
            }
        } else if (op->kind == TR_VEND && op->vop < max_op) {
            o->ops[op->vop].end = i;
            o->ops[op->vop].rc = op->rc;
        } else if (op->kind == TR_MARK && synced_name >= 0 && op->name == (uint16_t)synced_name &&
                   op->off < max_op) {
            /* Everything that ended before the flush-type op began is acked,
             * except ops whose pending writes a failed flush dropped: a later
             * flush cannot make those durable. */
            uint64_t fbegin = o->ops[op->off].begin;
            for (size_t k = ack_from; k < op->off; k++) {
                struct oracle_op *r = &o->ops[k];
                if (r->acked_at == UINT64_MAX && r->end < fbegin && r->rc == 0 && k >= dropped_to)
                    r->acked_at = i;
            }
            ack_from = op->off;
        } else if (op->kind == TR_MARK && drop_name >= 0 && op->name == (uint16_t)drop_name) {
            /* A failed flush dropped the pending writes of every op begun so far
             * and not yet acknowledged. */
            for (size_t k = 0; k < max_op; k++)
                if (o->ops[k].begin < i)
                    dropped_to = k + 1;
        }
    }
    o->begin_sorted = 1;
    for (size_t i = 1; i < max_op; i++)
        if (o->ops[i].begin < o->ops[i - 1].begin)
            o->begin_sorted = 0;
    return 0;
}

uint32_t oracle_begun_prefix(const struct oracle *o, const uint32_t *list, uint32_t n, uint64_t k)
{
    if (!o->begin_sorted)
        return n;
    uint32_t lo = 0, hi = n; /* entries below lo are begun, from hi on are not */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (oracle_begun(&o->ops[list[mid]], k))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Ops begun before k: a prefix of o->ops when begin_sorted. */
static size_t begun_ops(const struct oracle *o, uint64_t k)
{
    if (!o->begin_sorted)
        return o->n_ops;
    size_t lo = 0, hi = o->n_ops;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (oracle_begun(&o->ops[mid], k))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void expect_for(const struct oracle *o, uint64_t sector, uint64_t k, struct sector_expect *e)
{
    memset(e, 0, sizeof *e);
    uint64_t b = sector * 512 / o->block_size;
    if (b >= o->n_blocks)
        return;
    const uint32_t *list = o->per_block[b];
    const uint64_t pos = sector * 512;
    for (uint32_t j = oracle_begun_prefix(o, list, o->per_block_n[b], k); j-- > 0;) {
        const struct oracle_op *op = &o->ops[list[j]];
        if (!oracle_begun(op, k) || pos < op->voff || pos >= op->voff + op->vlen)
            continue;
        uint32_t value = op->kind == VOP_WRITE ? op->id : 0;
        if (oracle_acked(op, k)) {
            e->acked_id = value;
            e->acked_is_discard = op->kind == VOP_DISCARD;
            return;
        }
        if (e->n_later < 16)
            e->later[e->n_later++] = value;
        else
            e->more_later = 1;
    }
}

/* Did any write op begun before k with id `id` cover this sector? */
static int wrote_here(const struct oracle *o, uint64_t sector, uint64_t k, uint32_t id)
{
    uint64_t b = sector * 512 / o->block_size;
    if (b >= o->n_blocks)
        return 0;
    const uint32_t n = oracle_begun_prefix(o, o->per_block[b], o->per_block_n[b], k);
    for (uint32_t j = 0; j < n; j++) {
        const struct oracle_op *op = &o->ops[o->per_block[b][j]];
        if (op->kind == VOP_WRITE && op->id == id && oracle_begun(op, k) && sector * 512 >= op->voff &&
            sector * 512 < op->voff + op->vlen)
            return 1;
    }
    return 0;
}

static int id_begun(const struct oracle *o, uint32_t id, uint64_t k)
{
    for (size_t i = 0; i < o->n_data_ops; i++) {
        const struct oracle_op *op = &o->ops[o->data_ops[i]];
        if (op->id == id)
            return oracle_begun(op, k);
    }
    return 0;
}

void oracle_sector_value(const struct oracle *o, uint64_t sector, uint32_t id, uint8_t out[512])
{
    memset(out, 0, 512);
    uint64_t b = sector * 512 / o->block_size;
    if (id == 0 || b >= o->n_blocks)
        return;
    for (uint32_t j = 0; j < o->per_block_n[b]; j++) {
        const struct oracle_op *w = &o->ops[o->per_block[b][j]];
        if (w->kind == VOP_WRITE && w->id == id && sector * 512 >= w->voff && sector * 512 < w->voff + w->vlen) {
            sdata_sector(out, sector, w->voff / 512, id, o->seed);
            return;
        }
    }
}

/* The value op `op` gives `sector` (zeros for a discard). */
static void op_value(const struct oracle *o, const struct oracle_op *op, uint64_t sector, uint8_t out[512])
{
    if (op->kind == VOP_WRITE)
        sdata_sector(out, sector, op->voff / 512, op->id, o->seed);
    else
        memset(out, 0, 512);
}

static int covers(const struct oracle_op *op, uint64_t sector)
{
    return (op->kind == VOP_WRITE || op->kind == VOP_DISCARD) && sector * 512 >= op->voff &&
           sector * 512 < op->voff + op->vlen;
}

static int failed(const struct oracle_op *op)
{
    return op->rc != 0 && op->end != UINT64_MAX;
}

/* May op have left a byte prefix of its value in a sector?  A failed op
 * always; any op in flight at k when the medium tears inside sectors. */
static int may_tear(const struct oracle_op *op, uint64_t k, int in_flight)
{
    return failed(op) || (in_flight && !oracle_acked(op, k));
}

#define TORN_DEPTH 4 /* failed ops layered over each other in one sector */

/* Can bytes[from, 512) be the rest of a value the sector held before the op
 * at list position `before` began?  Candidates: the acknowledged value (list
 * position ja; zeros when ja < 0: never written, or nothing acknowledged)
 * and every op on the sector between ja and `before` (a value that may have
 * landed), or, for a failed op there, its own torn prefix over an older one. */
static int tail_explained(const struct oracle *o, const uint32_t *list, long ja, uint32_t before, uint64_t sector,
                          uint64_t k, const uint8_t bytes[512], size_t from, int depth, int in_flight)
{
    uint8_t v[512];
    if (ja >= 0)
        op_value(o, &o->ops[list[ja]], sector, v);
    else
        memset(v, 0, sizeof v);
    if (memcmp(bytes + from, v + from, 512 - from) == 0)
        return 1;
    for (uint32_t j = (uint32_t)(ja + 1); j < before; j++) {
        const struct oracle_op *op = &o->ops[list[j]];
        if (!oracle_begun(op, k) || !covers(op, sector))
            continue;
        op_value(o, op, sector, v);
        size_t cut = from;
        while (cut < 512 && bytes[cut] == v[cut])
            cut++;
        if (cut == 512)
            return 1;
        if (cut > from && depth > 0 && may_tear(op, k, in_flight) &&
            tail_explained(o, list, ja, j, sector, k, bytes, cut, depth - 1, in_flight))
            return 1;
    }
    return 0;
}

static int torn_rule(const struct oracle *o, uint64_t sector, uint64_t k, const uint8_t bytes[512], int in_flight)
{
    uint64_t b = sector * 512 / o->block_size;
    if (b >= o->n_blocks)
        return 0;
    const uint32_t *list = o->per_block[b];
    const uint32_t nb = oracle_begun_prefix(o, list, o->per_block_n[b], k);
    /* the acknowledged op: the latest begun op on the sector acknowledged at k
     * (acknowledged ops are a prefix of the op order) */
    long ja = -1;
    for (uint32_t j = nb; j-- > 0;) {
        const struct oracle_op *op = &o->ops[list[j]];
        if (oracle_begun(op, k) && covers(op, sector) && oracle_acked(op, k)) {
            ja = (long)j;
            break;
        }
    }
    uint8_t fresh[512];
    for (uint32_t j = (uint32_t)(ja + 1); j < nb; j++) {
        const struct oracle_op *f = &o->ops[list[j]];
        if (!oracle_begun(f, k) || !covers(f, sector) || !may_tear(f, k, in_flight))
            continue;
        op_value(o, f, sector, fresh);
        size_t cut = 0;
        while (cut < 512 && bytes[cut] == fresh[cut])
            cut++;
        if (cut > 0 && tail_explained(o, list, ja, j, sector, k, bytes, cut, TORN_DEPTH, in_flight))
            return 1;
    }
    return 0;
}

int oracle_torn_by_failed_op(const struct oracle *o, uint64_t sector, uint64_t k, const uint8_t bytes[512])
{
    return torn_rule(o, sector, k, bytes, 0);
}

int oracle_torn_in_flight(const struct oracle *o, uint64_t sector, uint64_t k, const uint8_t bytes[512])
{
    return torn_rule(o, sector, k, bytes, 1);
}

enum oracle_violation oracle_judge_sector(const struct oracle *o, uint64_t sector, uint64_t k, const uint8_t bytes[512],
                                          enum oracle_strictness mode, struct sector_expect *eo)
{
    struct sector_expect e;
    expect_for(o, sector, k, &e);
    if (eo)
        *eo = e;
    struct sdata_info info;
    enum sdata_kind kind = sdata_decode(bytes, &info);
    if (kind == SDATA_GARBAGE)
        return torn_rule(o, sector, k, bytes, mode == ORACLE_POWER_LOSS_TEARS) ? OV_OK : OV_GARBAGE;
    uint32_t got = 0;
    if (kind == SDATA_VALID) {
        if (info.sector != sector || info.seed != o->seed)
            return OV_MISPLACED;
        got = info.write_id;
    }
    if (got == e.acked_id)
        return OV_OK;
    for (int i = 0; i < e.n_later; i++)
        if (e.later[i] == got)
            return OV_OK;
    if (e.more_later && (got == 0 || wrote_here(o, sector, k, got)))
        return OV_OK; /* beyond the 16 listed: accept any begun value for this sector */
    if (got != 0 && !id_begun(o, got, k))
        return OV_FUTURE;
    if (got != 0 && !wrote_here(o, sector, k, got))
        return OV_FOREIGN;
    if (mode == ORACLE_CORRUPTION)
        return OV_OK; /* an older value of this sector (or zeros): a rollback */
    return OV_LOST;
}

int oracle_written_mask(const struct oracle *o, uint64_t unit, uint64_t k, uint8_t *mask)
{
    const uint32_t per = o->block_size / 512;
    memset(mask, 0, per);
    if (unit >= o->n_blocks)
        return 0;
    const uint32_t *list = o->per_block[unit];
    const uint32_t nb = oracle_begun_prefix(o, list, o->per_block_n[unit], k);
    int any = 0;
    const uint64_t first = unit * (o->block_size / 512);
    for (uint32_t j = 0; j < nb; j++) {
        const struct oracle_op *op = &o->ops[list[j]];
        if (op->kind != VOP_WRITE || !oracle_begun(op, k))
            continue;
        uint64_t a = op->voff / 512, b = (op->voff + op->vlen + 511) / 512;
        if (a < first)
            a = first;
        if (b > first + per)
            b = first + per;
        for (uint64_t x = a; x < b; x++)
            mask[x - first] = 1;
        any |= a < b;
    }
    return any;
}

/* splitmix64 for sampling */
static uint64_t mix(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

struct u64vec {
    uint64_t *v;
    size_t n, cap;
};

static int push(struct u64vec *a, uint64_t x)
{
    if (a->n == a->cap) {
        size_t ncap = a->cap ? a->cap * 2 : 128;
        uint64_t *n = realloc(a->v, ncap * sizeof *n);
        if (!n)
            return -ENOMEM;
        a->v = n;
        a->cap = ncap;
    }
    a->v[a->n++] = x;
    return 0;
}

static int op_sectors(struct u64vec *a, const struct oracle_op *op, uint32_t per_op, uint64_t *st)
{
    uint64_t first = op->voff / 512, n = op->vlen / 512;
    if (n == 0)
        return 0;
    if (n <= per_op) {
        for (uint64_t i = 0; i < n; i++)
            if (push(a, first + i))
                return -ENOMEM;
        return 0;
    }
    if (push(a, first) || push(a, first + n - 1))
        return -ENOMEM;
    for (uint32_t i = 2; i < per_op; i++)
        if (push(a, first + mix(st) % n))
            return -ENOMEM;
    return 0;
}

/* Sectors a discard must have cleared: those of earlier writes it covers
 * (random sectors of the discarded range are mostly never-written zeros
 * and would prove nothing).  Scans at most 64 of the blocks it covers. */
static int discard_sectors(const struct oracle *o, struct u64vec *a, uint32_t di, uint32_t per_op, uint64_t *st)
{
    const struct oracle_op *d = &o->ops[di];
    uint64_t first_b = d->voff / o->block_size;
    uint64_t end = d->voff + d->vlen > o->virtual_size ? o->virtual_size : d->voff + d->vlen;
    uint64_t nblocks = (end + o->block_size - 1) / o->block_size - first_b;
    uint32_t taken = 0;
    for (uint64_t k = 0; k < nblocks && k < 64 && taken < per_op; k++) {
        uint64_t b = first_b + (nblocks <= 64 ? k : mix(st) % nblocks);
        if (b >= o->n_blocks)
            continue;
        for (uint32_t j = 0; j < o->per_block_n[b] && taken < per_op; j++) {
            uint32_t wi = o->per_block[b][j];
            const struct oracle_op *w = &o->ops[wi];
            if (wi >= di || w->kind != VOP_WRITE)
                continue;
            uint64_t lo = w->voff > d->voff ? w->voff : d->voff;
            uint64_t hi = w->voff + w->vlen < end ? w->voff + w->vlen : end;
            uint64_t blo = b * o->block_size, bhi = blo + o->block_size;
            lo = lo > blo ? lo : blo;
            hi = hi < bhi ? hi : bhi;
            if (lo >= hi)
                continue;
            if (push(a, lo / 512 + mix(st) % ((hi - lo) / 512 ? (hi - lo) / 512 : 1)))
                return -ENOMEM;
            taken++;
        }
    }
    return 0;
}

int oracle_check_set(const struct oracle *o, uint64_t k, uint32_t per_op, uint32_t probes, uint64_t seed,
                     uint64_t **out, size_t *n)
{
    struct u64vec a = {0};
    uint64_t st = seed;
    /* Ops not yet acked at k, newest first, until the acked ones begin; the
     * acked ops of the latest barrier are those acked by the same mark as
     * the newest acked op. */
    uint64_t latest_mark = UINT64_MAX;
    for (size_t i = begun_ops(o, k); i-- > 0;) {
        const struct oracle_op *op = &o->ops[i];
        if (!oracle_begun(op, k) || (op->kind != VOP_WRITE && op->kind != VOP_DISCARD))
            continue;
        if (oracle_acked(op, k)) {
            if (latest_mark == UINT64_MAX)
                latest_mark = op->acked_at;
            else if (op->acked_at != latest_mark)
                break;
        }
        int rc = op->kind == VOP_DISCARD ? discard_sectors(o, &a, (uint32_t)i, per_op, &st)
                                         : op_sectors(&a, op, per_op, &st);
        if (rc) {
            free(a.v);
            return -ENOMEM;
        }
    }
    for (uint32_t p = 0; p < probes && o->n_data_ops; p++) {
        const struct oracle_op *op = &o->ops[o->data_ops[mix(&st) % o->n_data_ops]];
        if (!oracle_begun(op, k) || op->vlen < 512)
            continue;
        if (push(&a, op->voff / 512 + mix(&st) % (op->vlen / 512))) {
            free(a.v);
            return -ENOMEM;
        }
    }
    *out = a.v;
    *n = a.n;
    return 0;
}

int oracle_all_written(const struct oracle *o, uint64_t k, uint64_t **out, size_t *n)
{
    struct u64vec a = {0};
    uint64_t st = 0;
    for (size_t i = 0, n_begun = begun_ops(o, k); i < n_begun; i++) {
        const struct oracle_op *op = &o->ops[i];
        if (op->kind == VOP_WRITE && oracle_begun(op, k) && op_sectors(&a, op, UINT32_MAX, &st)) {
            free(a.v);
            return -ENOMEM;
        }
    }
    *out = a.v;
    *n = a.n;
    return 0;
}

int oracle_wide_set(const struct oracle *o, uint64_t k, uint32_t max, uint64_t seed, uint64_t **out, size_t *n)
{
    struct u64vec a = {0};
    uint64_t st = seed ^ UINT64_C(0x91DE);
    size_t begun;
    if (o->begin_sorted) {
        begun = oracle_begun_prefix(o, o->data_ops, (uint32_t)o->n_data_ops, k);
    } else {
        begun = 0;
        while (begun < o->n_data_ops && oracle_begun(&o->ops[o->data_ops[begun]], k))
            begun++;
    }
    for (size_t i = 0; i < begun && a.n < max; i++) {
        size_t pick = begun <= max ? i : mix(&st) % begun;
        const struct oracle_op *op = &o->ops[o->data_ops[pick]];
        if (op->vlen >= 512 && push(&a, op->voff / 512 + mix(&st) % (op->vlen / 512))) {
            free(a.v);
            return -ENOMEM;
        }
    }
    while (begun && a.n < max) {
        const struct oracle_op *op = &o->ops[o->data_ops[mix(&st) % begun]];
        if (op->vlen >= 512 && push(&a, op->voff / 512 + mix(&st) % (op->vlen / 512))) {
            free(a.v);
            return -ENOMEM;
        }
        if (op->vlen < 512)
            break;
    }
    *out = a.v;
    *n = a.n;
    return 0;
}
