/*
 * log_search.c - finding the active log sequence (MS-VHDX 2.3.2, 2.3.3).
 *
 * Definitions and the cost bound are in log.h.  The procedure:
 *
 *  1. Read the 64-byte header at every 4 KiB position of the ring.  Positions
 *     whose header decodes, carries the header's LogGuid and fits the ring are
 *     candidates.  Every "loge" position (candidate or not) is remembered.
 *  2. Sort candidates by sequence number, greatest first.  For each: validate
 *     it fully (lazily, memoised), require that it has no outgoing link (it
 *     ends a maximal run), and follow links from its Tail; reaching it makes
 *     a valid sequence.  The first valid sequence found is the active one;
 *     other candidates with the same sequence number are still examined so
 *     two competing heads are detected and refused.
 *
 * Full validation of the entry at p reads its sectors in order, but never
 * past the first other "loge" sector inside its extent (the entry fails
 * there at the latest: that sector can be neither a descriptor sector nor a
 * data sector).  Entries that pass are therefore disjoint, and the bytes
 * read and checksummed over a whole search are O(L).
 */
#include "log_internal.h"

#include <stdlib.h>
#include <string.h>

#include "io.h"
#include "vhdx/errors.h"

#define MEMO_UNKNOWN 1 /* any positive value: status codes are <= 0 */

int vhdx_log_ring_read(const struct vhdx_log_ring *ring, uint32_t pos, void *buf, size_t len)
{
    uint8_t *p = buf;
    size_t first = len;
    if ((uint64_t)pos + len > ring->log_length)
        first = ring->log_length - pos;
    int rc = vhdx_io_read(ring->dev, p, first, ring->log_offset + pos);
    if (rc == 0 && first < len)
        rc = vhdx_io_read(ring->dev, p + first, len - first, ring->log_offset);
    return rc;
}

struct search {
    const struct vhdx_log_ring *ring;
    uint32_t n;                     /* positions in the ring */
    uint8_t *is_loge;               /* [n] sector starts with "loge" */
    uint32_t *dist_next;            /* [n] sectors to the next other "loge" sector, n if none */
    struct vhdx_log_header *hdr;    /* [n] decoded headers (valid where is_loge) */
    int *status;                    /* [n] MEMO_UNKNOWN, 0 valid, or VHDX_E_* */
    struct vhdx_log_entry_stats *st; /* [n] descriptor counts of valid entries */
    uint8_t *scratch;               /* entry buffer */
    size_t scratch_cap;             /* bytes allocated */
    int io_error;                   /* first I/O error seen while fetching */
};

struct fetch_ctx {
    struct search *s;
    uint32_t pos;       /* ring offset of the entry */
    uint64_t fetched;   /* sectors already in scratch */
    uint64_t safe_end;  /* sectors before the first inside "loge" sector */
};

static const uint8_t *ring_fetch(void *vctx, uint64_t sector)
{
    struct fetch_ctx *c = vctx;
    struct search *s = c->s;
    if (sector < c->fetched)
        return s->scratch;
    uint64_t target = sector < c->safe_end ? c->safe_end : sector + 1;
    if (target > s->n)
        return NULL;
    size_t need = (size_t)target * VHDX_LOG_SECTOR;
    if (need > s->scratch_cap) {
        uint8_t *nb = vhdx_realloc(s->scratch, need);
        if (!nb) {
            s->io_error = -12; /* ENOMEM */
            return NULL;
        }
        s->scratch = nb;
        s->scratch_cap = need;
    }
    uint32_t from = (uint32_t)(((uint64_t)c->pos + c->fetched * VHDX_LOG_SECTOR) % s->ring->log_length);
    int rc = vhdx_log_ring_read(s->ring, from, s->scratch + c->fetched * VHDX_LOG_SECTOR,
                                (size_t)(target - c->fetched) * VHDX_LOG_SECTOR);
    if (rc != 0) {
        if (!s->io_error)
            s->io_error = rc;
        return NULL;
    }
    c->fetched = target;
    return s->scratch;
}

/* Full validation of position i (memoised).  Returns 0 or why not. */
static int validate_at(struct search *s, uint32_t i)
{
    if (s->status[i] != MEMO_UNKNOWN)
        return s->status[i];
    /* Read ahead no further than the entry claims, nor past the next other
     * "loge" sector (the entry is invalid there at the latest). */
    uint64_t claimed = s->hdr[i].entry_length / VHDX_LOG_SECTOR;
    uint64_t safe = s->dist_next[i] < claimed ? s->dist_next[i] : claimed;
    struct fetch_ctx c = {s, i * VHDX_LOG_SECTOR, 0, safe ? safe : 1};
    int rc = vhdx_log_validate_core(ring_fetch, &c, &s->ring->log_guid, s->ring->log_length, &s->hdr[i], &s->st[i]);
    if (rc != 0 && s->io_error)
        return s->io_error; /* not memoised: an I/O error is not a verdict */
    s->status[i] = rc;
    return rc;
}

static uint32_t next_pos(const struct search *s, uint32_t i)
{
    return (uint32_t)((i + s->hdr[i].entry_length / VHDX_LOG_SECTOR) % s->n);
}

/* Is there a link out of valid entry i?  (-1 on I/O error.) */
static int has_link(struct search *s, uint32_t i)
{
    uint32_t j = next_pos(s, i);
    if (!s->is_loge[j] || s->hdr[j].sequence != s->hdr[i].sequence + 1)
        return 0;
    int rc = validate_at(s, j);
    if (rc != 0 && s->io_error)
        return -1;
    return rc == 0;
}

/* Follows links from Tail(h); on success stores the chain in out[] (count in
 * *count) and returns 1; 0 when h does not head a valid sequence; <0 error. */
static int chain_from_tail(struct search *s, uint32_t h, uint32_t *out, uint32_t *count)
{
    uint32_t p = s->hdr[h].tail / VHDX_LOG_SECTOR;
    uint32_t k = 0;
    for (uint32_t steps = 0; steps < s->n; steps++) {
        if (!s->is_loge[p])
            return 0;
        int rc = validate_at(s, p);
        if (rc != 0)
            return s->io_error ? s->io_error : 0;
        if (s->hdr[p].sequence > s->hdr[h].sequence)
            return 0;
        out[k++] = p;
        if (p == h) {
            *count = k;
            return 1;
        }
        uint32_t q = next_pos(s, p);
        if (!s->is_loge[q] || s->hdr[q].sequence != s->hdr[p].sequence + 1)
            return 0;
        p = q;
    }
    return 0;
}

struct cand {
    uint64_t seq; /* entry sequence number */
    uint32_t pos; /* position index */
};

/* Greatest sequence first; equal sequences by position, for determinism. */
static int cmp_cand(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    if (x->seq != y->seq)
        return x->seq > y->seq ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static void search_free(struct search *s)
{
    free(s->is_loge);
    free(s->dist_next);
    free(s->hdr);
    free(s->status);
    free(s->st);
    free(s->scratch);
}

void vhdx_log_sequence_free(struct vhdx_log_sequence *seq)
{
    if (!seq)
        return;
    free(seq->positions);
    free(seq->lengths);
    memset(seq, 0, sizeof *seq);
}

int vhdx_log_search(const struct vhdx_log_ring *ring, struct vhdx_log_sequence *seq,
                    struct vhdx_log_scan_item **items, size_t *n_items)
{
    memset(seq, 0, sizeof *seq);
    if (items) {
        *items = NULL;
        *n_items = 0;
    }
    if (ring->log_length == 0 || ring->log_length % VHDX_LOG_SECTOR != 0)
        return VHDX_E_INVAL;
    if (ring->log_length > VHDX_LOG_MAX_LENGTH)
        return VHDX_E_LOG_TOO_LARGE;

    struct search s;
    memset(&s, 0, sizeof s);
    s.ring = ring;
    s.n = ring->log_length / VHDX_LOG_SECTOR;
    int rc = 0;
    struct cand *cand = NULL;
    uint32_t *chain = NULL;
    s.is_loge = vhdx_calloc(s.n, 1);
    s.dist_next = vhdx_calloc(s.n, sizeof *s.dist_next);
    s.hdr = vhdx_calloc(s.n, sizeof *s.hdr);
    s.status = vhdx_calloc(s.n, sizeof *s.status);
    s.st = vhdx_calloc(s.n, sizeof *s.st);
    cand = vhdx_calloc(s.n, sizeof *cand);
    chain = vhdx_calloc(s.n, sizeof *chain);
    if (!s.is_loge || !s.dist_next || !s.hdr || !s.status || !s.st || !cand || !chain) {
        rc = -12; /* ENOMEM */
        goto out;
    }

    /* 1. Headers at every position. */
    uint32_t nc = 0;
    for (uint32_t i = 0; i < s.n; i++) {
        uint8_t h[VHDX_LOG_HEADER_SIZE];
        rc = vhdx_io_read(ring->dev, h, sizeof h, ring->log_offset + (uint64_t)i * VHDX_LOG_SECTOR);
        if (rc != 0)
            goto out;
        s.status[i] = MEMO_UNKNOWN;
        if (vhdx_get32(h) != VHDX_SIG_LOGE) {
            s.status[i] = VHDX_E_LOG_SIGNATURE;
            continue;
        }
        s.is_loge[i] = 1;
        int hrc = vhdx_log_header_decode(h, &s.hdr[i]);
        if (hrc == 0 && !vhdx_guid_equal(&s.hdr[i].log_guid, &ring->log_guid))
            hrc = VHDX_E_LOG_GUID;
        if (hrc == 0 && s.hdr[i].entry_length > ring->log_length)
            hrc = VHDX_E_LOG_LENGTH;
        if (hrc == 0 && s.hdr[i].tail >= ring->log_length)
            hrc = VHDX_E_LOG_FIELD;
        if (hrc != 0)
            s.status[i] = hrc;
        else
            cand[nc++] = (struct cand){s.hdr[i].sequence, i};
    }
    seq->candidates = nc;

    /* Distance from each position to the next other "loge" sector. */
    {
        uint32_t last = UINT32_MAX; /* nearest loge position seen, scanning backwards twice */
        for (uint32_t pass = 0; pass < 2; pass++) {
            for (uint32_t k = s.n; k-- > 0;) {
                s.dist_next[k] = last == UINT32_MAX ? s.n : (last > k ? last - k : last + s.n - k);
                if (s.dist_next[k] > s.n)
                    s.dist_next[k] = s.n;
                if (s.is_loge[k])
                    last = k;
            }
        }
    }

    /* dump-log view: validate every position that carries a signature. */
    if (items) {
        size_t count = 0;
        for (uint32_t i = 0; i < s.n; i++)
            count += s.is_loge[i];
        *items = vhdx_calloc(count, sizeof **items);
        if (!*items) {
            rc = -12;
            goto out;
        }
        for (uint32_t i = 0; i < s.n; i++) {
            if (!s.is_loge[i])
                continue;
            int v = s.status[i] == MEMO_UNKNOWN ? validate_at(&s, i) : s.status[i];
            if (s.io_error) {
                rc = s.io_error;
                goto out;
            }
            struct vhdx_log_scan_item *it = &(*items)[(*n_items)++];
            it->position = i * VHDX_LOG_SECTOR;
            it->status = v;
            it->hdr = s.hdr[i];
            it->data_descriptors = s.st[i].data_descriptors;
            it->zero_descriptors = s.st[i].zero_descriptors;
        }
    }

    /* 2. Greatest head with a valid sequence. */
    qsort(cand, nc, sizeof *cand, cmp_cand);
    int have = 0;
    uint64_t best_seq = 0;
    for (uint32_t ci = 0; ci < nc; ci++) {
        uint32_t h = cand[ci].pos;
        if (have && s.hdr[h].sequence < best_seq)
            break;
        int v = validate_at(&s, h);
        if (s.io_error) {
            rc = s.io_error;
            goto out;
        }
        if (v != 0)
            continue;
        int link = has_link(&s, h);
        if (link < 0) {
            rc = s.io_error;
            goto out;
        }
        if (link)
            continue;
        uint32_t count = 0;
        int ok = chain_from_tail(&s, h, chain, &count);
        if (ok < 0) {
            rc = ok;
            goto out;
        }
        if (!ok)
            continue;
        if (have) {
            rc = VHDX_E_LOG_AMBIGUOUS;
            vhdx_log_sequence_free(seq);
            goto out;
        }
        have = 1;
        best_seq = s.hdr[h].sequence;
        seq->positions = vhdx_malloc(count * sizeof *seq->positions);
        seq->lengths = vhdx_malloc(count * sizeof *seq->lengths);
        if (!seq->positions || !seq->lengths) {
            rc = -12;
            goto out;
        }
        for (uint32_t k = 0; k < count; k++) {
            seq->positions[k] = chain[k] * VHDX_LOG_SECTOR;
            seq->lengths[k] = s.hdr[chain[k]].entry_length;
        }
        seq->count = count;
        seq->found = 1;
        seq->tail_sequence = s.hdr[chain[0]].sequence;
        seq->head_sequence = s.hdr[h].sequence;
        seq->flushed_file_offset = s.hdr[h].flushed_file_offset;
        seq->last_file_offset = s.hdr[h].last_file_offset;
    }
    if (items && seq->found) {
        for (size_t k = 0; k < *n_items; k++)
            for (uint32_t j = 0; j < seq->count; j++)
                if ((*items)[k].position == seq->positions[j])
                    (*items)[k].in_active = 1;
    }
    rc = 0;
out:
    if (rc != 0) {
        vhdx_log_sequence_free(seq);
        if (items && rc != VHDX_E_LOG_AMBIGUOUS) {
            free(*items);
            *items = NULL;
            *n_items = 0;
        }
    }
    free(cand);
    free(chain);
    search_free(&s);
    return rc;
}
