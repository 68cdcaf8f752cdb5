/*
 * ref_log.c - the reference log search and replay (see ref_log.h).
 *
 * Written to be read next to MS-VHDX 2.3, not to be fast:
 *  - an entry is checked field by field in the order the text lists them,
 *    each sector fetched through a small view so an entry may wrap around
 *    the end of the ring;
 *  - the search is the text's procedure (2.3.3), started at every 4 KiB
 *    offset instead of jumping over sequences already seen: "extend the
 *    current sequence while the next entry is valid and its sequence number
 *    is one greater", then "the sequence is valid when its head entry's
 *    tail is contained within it", then keep the greatest head;
 *  - replay writes every descriptor of every entry from the tail entry to
 *    the head entry, in order.
 * Invariants: validity is computed once per ring offset (memo), so the
 * search costs O(n^2) steps over n offsets plus one validation per offset.
 */
#include "ref/ref_log.h"
#include "ref/ref.h"

#include <stdlib.h>
#include <string.h>

/* ---- constants from the text --------------------------------------------- */
#define SIG_LOGE 0x65676F6Cu /* "loge" */
#define SIG_ZERO 0x6F72657Au /* "zero" */
#define SIG_DESC 0x63736564u /* "desc" */
#define SIG_DATA 0x61746164u /* "data" */
#define ONE_MB (1024u * 1024u)
#define PROTECTED_END (192u * 1024u) /* file identifier and the two headers */
#define LARGEST_FILE ((UINT64_C(64) << 40) + (UINT64_C(64) << 30))
#define FIRST_SECTOR_DESCS 126u
#define LATER_SECTOR_DESCS 128u

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

/* ---- an entry seen through a view ----------------------------------------- */
struct view {
    const struct ref_ring *ring; /* ring view, or NULL for a flat buffer */
    uint32_t pos;                /* ring: first sector index */
    const uint8_t *flat;         /* flat buffer */
    size_t flat_len;
};

/* The k-th 4 KiB sector of the entry, or NULL when it does not exist. */
static const uint8_t *sector_of(const struct view *v, uint64_t k)
{
    if (v->ring)
        return k < v->ring->n ? v->ring->sector[(v->pos + k) % v->ring->n] : NULL;
    if ((k + 1) * REF_SECTOR > v->flat_len)
        return NULL;
    return v->flat + k * REF_SECTOR;
}

/* Descriptor i lives in the first sector after the 64-byte header (126 of
 * them), then 128 per further sector. */
static const uint8_t *descriptor_of(const struct view *v, uint64_t i)
{
    uint64_t sector, within;
    if (i < FIRST_SECTOR_DESCS) {
        sector = 0;
        within = 64 + 32 * i;
    } else {
        sector = 1 + (i - FIRST_SECTOR_DESCS) / LATER_SECTOR_DESCS;
        within = 32 * ((i - FIRST_SECTOR_DESCS) % LATER_SECTOR_DESCS);
    }
    const uint8_t *s = sector_of(v, sector);
    return s ? s + within : NULL;
}

static uint64_t descriptor_sectors(uint64_t count)
{
    if (count <= FIRST_SECTOR_DESCS)
        return 1;
    return 1 + (count - FIRST_SECTOR_DESCS + LATER_SECTOR_DESCS - 1) / LATER_SECTOR_DESCS;
}

struct entry {
    int valid;          /* 1 when every rule holds */
    uint32_t length;    /* EntryLength */
    uint32_t tail;      /* Tail */
    uint64_t seq;       /* SequenceNumber */
    uint32_t count;     /* DescriptorCount */
    uint64_t flushed;   /* FlushedFileOffset */
    uint64_t last;      /* LastFileOffset */
};

/* 2.3.1.1 entry header, 2.3.1.2/2.3.1.3 descriptors, 2.3.1.4 data sectors. */
static void check_entry(const struct view *v, const uint8_t guid[16], uint32_t log_length, struct entry *e)
{
    memset(e, 0, sizeof *e);
    const uint8_t *h = sector_of(v, 0);
    if (!h || rd32(h) != SIG_LOGE)
        return;
    e->length = rd32(h + 8);
    e->tail = rd32(h + 12);
    e->seq = rd64(h + 16);
    e->count = rd32(h + 24);
    e->flushed = rd64(h + 48);
    e->last = rd64(h + 56);
    uint32_t reserved = rd32(h + 28);
    if (e->length == 0 || e->length % REF_SECTOR != 0 || e->length > log_length)
        return;
    if (e->tail % REF_SECTOR != 0 || e->tail >= log_length)
        return;
    if (e->seq == 0 || reserved != 0)
        return;
    if (memcmp(h + 32, guid, 16) != 0)
        return;
    if (e->flushed % ONE_MB != 0 || e->last % ONE_MB != 0)
        return;
    uint64_t sectors = e->length / REF_SECTOR;
    uint64_t dsec = descriptor_sectors(e->count);
    if (dsec > sectors || !sector_of(v, sectors - 1))
        return;
    uint64_t data = 0;
    for (uint64_t i = 0; i < e->count; i++) {
        const uint8_t *d = descriptor_of(v, i);
        uint32_t sig = rd32(d);
        if (sig == SIG_ZERO) {
            if (rd32(d + 4) != 0 || rd64(d + 8) % REF_SECTOR != 0)
                return;
        } else if (sig == SIG_DESC) {
            data++;
        } else {
            return;
        }
        if (rd64(d + 16) % REF_SECTOR != 0 || rd64(d + 24) != e->seq)
            return;
    }
    if (dsec + data != sectors)
        return;
    for (uint64_t k = 0; k < data; k++) {
        const uint8_t *s = sector_of(v, dsec + k);
        if (rd32(s) != SIG_DATA || rd32(s + 4) != (uint32_t)(e->seq >> 32) || rd32(s + 4092) != (uint32_t)e->seq)
            return;
    }
    /* Checksum over EntryLength bytes with the Checksum field taken as 0
     * (remembered per entry when its sectors are stable: ref_memo_crc). */
    enum { PIECES = 64 };
    const uint8_t *piece[PIECES];
    const int memo_ok = v->ring && v->ring->memo && sectors <= PIECES;
    int stable = memo_ok && v->ring->stable;
    for (uint64_t k = 0; memo_ok && k < sectors; k++) {
        piece[k] = sector_of(v, k);
        stable = stable && v->ring->stable[(v->pos + k) % v->ring->n];
    }
    uint32_t c;
    if (memo_ok) {
        c = ref_memo_crc(v->ring->memo, piece, sectors, REF_SECTOR, 4, stable);
    } else {
        static const uint8_t zero4[4];
        c = ref_crc32c(0, h, 4);
        c = ref_crc32c(c, zero4, 4);
        c = ref_crc32c(c, h + 8, REF_SECTOR - 8);
        for (uint64_t k = 1; k < sectors; k++)
            c = ref_crc32c(c, sector_of(v, k), REF_SECTOR);
    }
    if (c != rd32(h + 4))
        return;
    e->valid = 1;
}

int ref_entry_valid(const uint8_t *buf, size_t len, const uint8_t guid[16], uint32_t log_length)
{
    struct view v = {NULL, 0, buf, len};
    struct entry e;
    check_entry(&v, guid, log_length, &e);
    return e.valid;
}

/* ---- search ------------------------------------------------------------------ */
void ref_result_free(struct ref_result *r)
{
    free(r->writes);
    free(r->data);
    memset(r, 0, sizeof *r);
}

static int target_allowed(uint64_t off, uint64_t len, uint64_t last, uint64_t log_offset, uint32_t log_length)
{
    if (last > LARGEST_FILE || off < PROTECTED_END)
        return 0;
    if (off > last || len > last - off)
        return 0;
    uint64_t lo = log_offset, hi = log_offset + log_length;
    if (len == 0)
        return off < lo || off >= hi;
    return off + len <= lo || off >= hi;
}

int ref_log_replay(const struct ref_ring *ring, const uint8_t guid[16], uint64_t log_offset, uint64_t file_size,
                   struct ref_result *out)
{
    memset(out, 0, sizeof *out);
    const uint32_t n = ring->n;
    const uint32_t log_length = n * REF_SECTOR;
    struct entry *memo = calloc(n ? n : 1, sizeof *memo);
    uint32_t *run = calloc(n ? n : 1, sizeof *run);
    uint32_t *best_run = calloc(n ? n : 1, sizeof *best_run);
    if (!memo || !run || !best_run) {
        free(memo);
        free(run);
        free(best_run);
        return -1;
    }
    for (uint32_t p = 0; p < n; p++) {
        struct view v = {ring, p, NULL, 0};
        check_entry(&v, guid, log_length, &memo[p]);
    }

    /* The text's procedure starts a sequence at every offset and extends it
     * "while the next entry is valid and its sequence number is one
     * greater".  Every start on the same chain of such links reaches the
     * same head, so the candidates are the chain ends (heads), and a head's
     * sequence is valid ("its tail is contained within it") exactly when the
     * chain from its Tail entry reaches it.  Computed once per offset:
     * link[p] (the entry after p, or NONE), end[p] (where the chain from p
     * ends), in O(n) instead of extending from every start. */
    const uint32_t NONE = UINT32_MAX;
    uint32_t *link = run, *chain_end = best_run; /* reuse the two arrays */
    for (uint32_t p = 0; p < n; p++) {
        link[p] = NONE;
        chain_end[p] = NONE;
        if (!memo[p].valid)
            continue;
        uint32_t q = (uint32_t)((p + memo[p].length / REF_SECTOR) % n);
        if (memo[q].valid && memo[q].seq == memo[p].seq + 1)
            link[p] = q;
    }
    for (uint32_t p = 0; p < n; p++) {
        if (!memo[p].valid || chain_end[p] != NONE)
            continue;
        uint32_t q = p, steps = 0;
        while (link[q] != NONE && chain_end[q] == NONE && steps++ < n) /* sequence numbers rise: no cycle */
            q = link[q];
        uint32_t e = chain_end[q] != NONE ? chain_end[q] : q;
        for (uint32_t x = p; x != q && chain_end[x] == NONE; x = link[x])
            chain_end[x] = e;
        chain_end[q] = e;
    }
    int have = 0, ambiguous = 0;
    uint32_t best_len = 0, best_head = 0, best_tail = 0;
    uint64_t best_seq = 0;
    for (uint32_t h = 0; h < n; h++) {
        if (!memo[h].valid || link[h] != NONE)
            continue; /* not the end of a chain */
        const struct entry *head = &memo[h];
        uint32_t t = head->tail / REF_SECTOR; /* check_entry: tail < log length, 4 KiB aligned */
        if (!memo[t].valid || chain_end[t] != h)
            continue; /* the head's tail is not contained in the sequence */
        if (have && head->seq < best_seq)
            continue;
        if (have && head->seq == best_seq) {
            if (h != best_head)
                ambiguous = 1;
            continue;
        }
        have = 1;
        ambiguous = 0;
        best_seq = head->seq;
        best_head = h;
        best_tail = t;
    }
    if (have) { /* the entries from the tail to the head, in order */
        uint32_t len = 0, x = best_tail;
        uint32_t *order = malloc((size_t)n * sizeof *order);
        if (!order) {
            free(memo);
            free(run);
            free(best_run);
            return -1;
        }
        for (;;) {
            order[len++] = x;
            if (x == best_head || len >= n)
                break;
            x = link[x];
        }
        best_len = len;
        memcpy(best_run, order, len * sizeof *order);
        free(order);
    }

    int rc = 0;
    if (!have) {
        out->verdict = REF_NO_SEQUENCE;
        goto done;
    }
    if (ambiguous) {
        out->verdict = REF_AMBIGUOUS;
        goto done;
    }
    const struct entry *head = &memo[best_head];
    out->entries = best_len;
    out->head_sequence = head->seq;
    out->head_position = best_head * REF_SECTOR;
    out->flushed_file_offset = head->flushed;
    out->last_file_offset = head->last;
    if (file_size < head->flushed) {
        out->verdict = REF_TRUNCATED;
        goto done;
    }

    /* Replay plan: every descriptor of every entry, tail entry first. */
    size_t n_desc = 0, n_data = 0;
    for (uint32_t k = 0; k < best_len; k++) {
        n_desc += memo[best_run[k]].count;
        n_data += memo[best_run[k]].length / REF_SECTOR; /* upper bound */
    }
    out->writes = malloc((n_desc ? n_desc : 1) * sizeof *out->writes);
    out->data = malloc((n_data ? n_data : 1) * REF_SECTOR);
    if (!out->writes || !out->data) {
        rc = -1;
        goto done;
    }
    size_t used = 0;
    uint64_t end = file_size;
    for (uint32_t k = 0; k < best_len; k++) {
        const struct entry *e = &memo[best_run[k]];
        struct view v = {ring, best_run[k], NULL, 0};
        uint64_t dsec = descriptor_sectors(e->count), data_index = 0;
        for (uint64_t i = 0; i < e->count; i++) {
            const uint8_t *d = descriptor_of(&v, i);
            struct ref_write *w = &out->writes[out->n_writes];
            w->offset = rd64(d + 16);
            if (rd32(d) == SIG_DESC) {
                /* LeadingBytes, then bytes 8..4091 of the data sector, then TrailingBytes. */
                uint8_t *dst = out->data + used;
                const uint8_t *s = sector_of(&v, dsec + data_index++);
                memcpy(dst, d + 8, 8);
                memcpy(dst + 8, s + 8, 4084);
                memcpy(dst + 4092, d + 4, 4);
                used += REF_SECTOR;
                w->length = REF_SECTOR;
                w->data = dst;
            } else {
                w->length = rd64(d + 8);
                w->data = NULL;
            }
            if (!target_allowed(w->offset, w->length, e->last, log_offset, log_length)) {
                out->verdict = REF_TARGET;
                goto done;
            }
            out->n_writes++;
            uint64_t wend = w->offset + w->length;
            if (w->data && wend > out->data_end)
                out->data_end = wend;
            if (!w->data && w->length && wend > out->zero_end)
                out->zero_end = wend;
            if (wend > end)
                end = wend; /* "the implementation MUST extend the file" */
        }
    }
    if (head->last > LARGEST_FILE) {
        out->verdict = REF_TARGET;
        goto done;
    }
    if (head->last > end)
        end = head->last;
    out->final_size = end;
    out->verdict = REF_OK;
done:
    if (out->verdict != REF_OK || rc != 0) {
        free(out->writes);
        free(out->data);
        out->writes = NULL;
        out->data = NULL;
        out->n_writes = 0;
    }
    free(memo);
    free(run);
    free(best_run);
    return rc;
}
