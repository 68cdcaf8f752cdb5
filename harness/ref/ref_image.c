/*
 * ref_image.c - the reference reading of a whole image (ref/ref.h).
 *
 * Written to be read beside MS-VHDX, section by section, not to be fast:
 * each check says which sentence it enforces.  The caller's cache (the
 * sweep shares one reading among states whose structures are identical)
 * is what makes it affordable.
 *
 * Invariants: img->status only moves away from REF_VALID (the first broken
 * rule is kept); nothing past the header and log is read before the replay
 * plan exists, and every later read goes through ref_image_read(), which
 * applies that plan; every allocation is bounded by a checked count.
 */
#include "ref/ref.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const uint8_t REF_GUID_BAT[16] = {0x66, 0x77, 0xC2, 0x2D, 0x23, 0xF6, 0x00, 0x42,
                                  0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08};
const uint8_t REF_GUID_METADATA[16] = {0x06, 0xA2, 0x7C, 0x8B, 0x90, 0x47, 0x9A, 0x4B,
                                       0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E};
const uint8_t REF_GUID_FILE_PARAMETERS[16] = {0x37, 0x67, 0xA1, 0xCA, 0x36, 0xFA, 0x43, 0x4D,
                                              0xB3, 0xB6, 0x33, 0xF0, 0xAA, 0x44, 0xE7, 0x6B};
const uint8_t REF_GUID_VIRTUAL_DISK_SIZE[16] = {0x24, 0x42, 0xA5, 0x2F, 0x1B, 0xCD, 0x76, 0x48,
                                                0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8};
const uint8_t REF_GUID_VIRTUAL_DISK_ID[16] = {0xAB, 0x12, 0xCA, 0xBE, 0xE6, 0xB2, 0x23, 0x45,
                                              0x93, 0xEF, 0xC3, 0x09, 0xE0, 0x00, 0xC7, 0x46};
const uint8_t REF_GUID_LOGICAL_SECTOR[16] = {0x1D, 0xBF, 0x41, 0x81, 0x6F, 0xA9, 0x09, 0x47,
                                             0xBA, 0x47, 0xF2, 0x33, 0xA8, 0xFA, 0xAB, 0x5F};
const uint8_t REF_GUID_PHYSICAL_SECTOR[16] = {0xC7, 0x48, 0xA3, 0xCD, 0x5D, 0x44, 0x71, 0x44,
                                              0x9C, 0xC9, 0xE9, 0x88, 0x52, 0x51, 0xC5, 0x56};
const uint8_t REF_GUID_PARENT_LOCATOR[16] = {0x2D, 0x5F, 0xD3, 0xA8, 0x0B, 0xB3, 0x4D, 0x45,
                                             0xAB, 0xF7, 0xD3, 0xD8, 0x48, 0x34, 0xAB, 0x0C};

#define HEADER_SECTION REF_MB
#define HEADER1 (UINT64_C(64) << 10)
#define HEADER2 (UINT64_C(128) << 10)
#define REGION1 (UINT64_C(192) << 10)
#define REGION2 (UINT64_C(256) << 10)
#define LOG_MODEL_MAX (UINT32_C(256) << 20) /* longest ring the reference replays */
#define METADATA_TABLE (UINT64_C(64) << 10)

/* ---- little-endian ------------------------------------------------------------ */
uint16_t ref_le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
uint32_t ref_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
uint64_t ref_le64(const uint8_t *p) { return (uint64_t)ref_le32(p) | (uint64_t)ref_le32(p + 4) << 32; }
void ref_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
void ref_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
void ref_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

const char *ref_status_name(enum ref_status s)
{
    switch (s) {
    case REF_VALID: return "valid";
    case REF_INVALID: return "invalid";
    default: return "undecided";
    }
}

/* ---- verdict helpers ---------------------------------------------------------- */
static void judge(struct ref_image *img, enum ref_status st, const char *rule, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void judge(struct ref_image *img, enum ref_status st, const char *rule, const char *fmt, ...)
{
    if (img->status != REF_VALID)
        return; /* the first broken rule is the one reported */
    img->status = st;
    snprintf(img->rule, sizeof img->rule, "%s", rule);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(img->why, sizeof img->why, fmt, ap);
    va_end(ap);
}

static int is_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

/* ---- the replayed image ------------------------------------------------------- */
struct ref_replay_index {
    size_t n;              /* replay writes, in replay order */
    uint64_t lo, hi;       /* the byte range they cover */
};

static int src_read(const struct ref_image *img, void *buf, size_t len, uint64_t off)
{
    const struct ref_src *s = &img->src;
    uint8_t *p = buf;
    if (off >= s->size) {
        memset(p, 0, len);
        return 0;
    }
    size_t in = s->size - off < len ? (size_t)(s->size - off) : len;
    if (s->read(s->ctx, p, in, off) != 0)
        return -1;
    memset(p + in, 0, len - in);
    return 0;
}

/* 4 KiB of the source at off (before any replay): in place when the source
 * maps it, else read into buf.  *stable: the pointer may key the memo. */
static const uint8_t *piece(const struct ref_image *img, uint64_t off, uint8_t *buf, int *stable)
{
    *stable = 0;
    if (img->src.map && off + 4096 <= img->src.size) {
        const uint8_t *p = img->src.map(img->src.ctx, off, 4096, stable);
        if (p)
            return p;
        *stable = 0;
    }
    return src_read(img, buf, 4096, off) == 0 ? buf : NULL;
}

int ref_image_read(const struct ref_image *img, void *buf, size_t len, uint64_t off)
{
    uint8_t *p = buf;
    if (off >= img->size) {
        memset(p, 0, len);
        return 0;
    }
    if (src_read(img, p, len, off) != 0)
        return -1;
    /* a file that the replay extends reads zeros past its old end */
    const struct ref_replay_index *ri = img->ri;
    if (!ri || ri->n == 0 || off >= ri->hi || off + len <= ri->lo)
        return 0;
    /* 2.3.3: "replay each descriptor ... in order": later writes win */
    for (size_t i = 0; i < ri->n; i++) {
        const struct ref_write *w = &img->log.writes[i];
        uint64_t a = w->offset > off ? w->offset : off;
        uint64_t b = w->offset + w->length < off + len ? w->offset + w->length : off + len;
        if (a >= b)
            continue;
        if (w->data)
            memcpy(p + (a - off), w->data + (a - w->offset), (size_t)(b - a));
        else
            memset(p + (a - off), 0, (size_t)(b - a));
    }
    return 0;
}

/* ---- 2.2.1, 2.2.2: file identifier and headers -------------------------------- */
static int read_headers(struct ref_image *img)
{
    uint8_t id[8];
    if (src_read(img, id, sizeof id, 0) != 0)
        return -1;
    if (memcmp(id, "vhdxfile", 8) != 0) {
        judge(img, REF_INVALID, "2.2.1 file identifier", "the first 8 bytes are not \"vhdxfile\"");
        return 0;
    }
    uint8_t hb[4096];
    for (int i = 0; i < 2; i++) {
        struct ref_header *x = &img->header[i];
        int stable;
        const uint8_t *h = piece(img, i ? HEADER2 : HEADER1, hb, &stable);
        if (!h)
            return -1;
        uint32_t stored = ref_le32(h + 4);
        x->valid = memcmp(h, "head", 4) == 0 &&
                   ref_memo_crc(img->src.memo, &h, 1, 4096, 4, stable) == stored;
        x->sequence = ref_le64(h + 8);
        memcpy(x->file_write_guid, h + 16, 16);
        memcpy(x->data_write_guid, h + 32, 16);
        memcpy(x->log_guid, h + 48, 16);
        x->log_version = ref_le16(h + 64);
        x->version = ref_le16(h + 66);
        x->log_length = ref_le32(h + 68);
        x->log_offset = ref_le64(h + 72);
    }
    /* "A header is current if it is the only valid header or if it is valid
     * and its SequenceNumber field is greater than the other header's." */
    const struct ref_header *a = &img->header[0], *b = &img->header[1];
    img->current = -1;
    if (a->valid && (!b->valid || a->sequence > b->sequence))
        img->current = 0;
    else if (b->valid && (!a->valid || b->sequence > a->sequence))
        img->current = 1;
    if (img->current < 0) {
        if (a->valid && b->valid)
            /* equal numbers: the letter says "no current header, corrupt";
             * identical copies lose nothing, so a reader may accept them */
            judge(img, REF_UNDECIDED, "2.2.2 equal sequence numbers",
                  "both headers are valid with SequenceNumber %llu", (unsigned long long)a->sequence);
        else
            judge(img, REF_INVALID, "2.2.2 no current header", "neither header has a valid signature and checksum");
        return 0;
    }
    const struct ref_header *c = &img->header[img->current];
    const uint64_t hoff = img->current ? HEADER2 : HEADER1;
    img->log_pending = !is_zero(c->log_guid, 16);
    if (c->version != 1)
        judge(img, REF_INVALID, "2.2.2 Version", "the current header (at %llu) has Version %u, not 1",
              (unsigned long long)hoff, c->version);
    else if (c->log_version != 0 && img->log_pending)
        judge(img, REF_INVALID, "2.2.2 LogVersion", "LogVersion %u with a LogGuid set", c->log_version);
    else if (c->log_length % REF_MB != 0)
        judge(img, REF_INVALID, "2.2.2 LogLength", "LogLength %u is not a multiple of 1 MiB", c->log_length);
    else if (c->log_offset % REF_MB != 0)
        judge(img, REF_INVALID, "2.2.2 LogOffset", "LogOffset %llu is not a multiple of 1 MiB",
              (unsigned long long)c->log_offset);
    return 0;
}

/* ---- 2.3.3: the log ------------------------------------------------------------ */
static int replay(struct ref_image *img)
{
    const struct ref_header *c = &img->header[img->current];
    if (!img->log_pending)
        return 0;
    if (c->log_length == 0) {
        judge(img, REF_INVALID, "2.3.3 no valid sequence", "the LogGuid is set and the log is empty (LogLength 0)");
        return 0;
    }
    if (c->log_length > LOG_MODEL_MAX) {
        judge(img, REF_UNDECIDED, "reference limit", "a log of %u bytes to replay (the reference models up to %u)",
              c->log_length, LOG_MODEL_MAX);
        return 0;
    }
    const uint32_t n = c->log_length / REF_SECTOR;
    /* sectors the source maps in place are used there; the others are read
     * into one buffer */
    uint8_t *ring = NULL;
    const uint8_t **sectors = malloc(n * sizeof *sectors);
    uint8_t *stable = malloc(n);
    int rc = 0;
    if (!sectors || !stable) {
        snprintf(img->why, sizeof img->why, "out of memory");
        rc = -1;
        goto out;
    }
    uint32_t unmapped = 0;
    for (uint32_t i = 0; i < n; i++) {
        int st = 0;
        const uint64_t off = c->log_offset + (uint64_t)i * REF_SECTOR;
        sectors[i] = img->src.map && off + REF_SECTOR <= img->src.size
                         ? img->src.map(img->src.ctx, off, REF_SECTOR, &st) : NULL;
        stable[i] = sectors[i] && st;
        unmapped += !sectors[i];
    }
    if (unmapped && !(ring = malloc((size_t)unmapped * REF_SECTOR))) {
        snprintf(img->why, sizeof img->why, "out of memory");
        rc = -1;
        goto out;
    }
    for (uint32_t i = 0, k = 0; i < n; i++) {
        if (sectors[i])
            continue;
        const uint64_t off = c->log_offset + (uint64_t)i * REF_SECTOR;
        uint8_t *dst = ring + (size_t)k++ * REF_SECTOR;
        if (src_read(img, dst, REF_SECTOR, off) != 0) {
            snprintf(img->why, sizeof img->why, "reading the log failed");
            rc = -1;
            goto out;
        }
        sectors[i] = dst;
    }
    struct ref_ring r = {sectors, n, stable, img->src.memo};
    if (ref_log_replay(&r, c->log_guid, c->log_offset, img->file_size, &img->log) != 0) {
        snprintf(img->why, sizeof img->why, "out of memory");
        rc = -1;
        goto out;
    }
    switch (img->log.verdict) {
    case REF_OK:
        break;
    case REF_NO_SEQUENCE:
        judge(img, REF_INVALID, "2.3.3 no valid sequence",
              "the LogGuid is set and no valid, complete log sequence exists (\"the file is corrupt\")");
        break;
    case REF_TRUNCATED:
        judge(img, REF_INVALID, "2.3.3 truncated",
              "the file (%llu bytes) is smaller than the head entry's FlushedFileOffset %llu",
              (unsigned long long)img->file_size, (unsigned long long)img->log.flushed_file_offset);
        break;
    case REF_AMBIGUOUS:
        judge(img, REF_UNDECIDED, "2.3.3 two heads",
              "two different heads share the greatest sequence number %llu (the text does not order them)",
              (unsigned long long)img->log.head_sequence);
        break;
    case REF_TARGET:
        judge(img, REF_UNDECIDED, "2.3.3 descriptor target",
              "a descriptor writes into the header section or the log, or past its entry's LastFileOffset");
        break;
    }
out:
    free(ring);
    free(sectors);
    free(stable);
    if (rc == 0 && img->log.verdict == REF_OK && img->status == REF_VALID) {
        img->ri = calloc(1, sizeof *img->ri);
        if (!img->ri) {
            snprintf(img->why, sizeof img->why, "out of memory");
            return -1;
        }
        img->ri->n = img->log.n_writes;
        img->ri->lo = UINT64_MAX;
        for (size_t i = 0; i < img->log.n_writes; i++) {
            const struct ref_write *w = &img->log.writes[i];
            if (w->length == 0)
                continue;
            if (w->offset < img->ri->lo)
                img->ri->lo = w->offset;
            if (w->offset + w->length > img->ri->hi)
                img->ri->hi = w->offset + w->length;
        }
        img->size = img->log.final_size > img->file_size ? img->log.final_size : img->file_size;
    }
    return rc;
}

/* ---- 2.2.3: region table --------------------------------------------------------- */
/* 64 KiB of the image after the replay as 16 pieces of 4 KiB: in place (and
 * memoized) when the source maps them and the replay did not write there,
 * else read into buf.  Returns 0, or -1 on a read error. */
struct table64 {
    const uint8_t *pc[16];
    int stable;
};

static int read_table64(const struct ref_image *img, uint64_t off, uint8_t *buf, struct table64 *t)
{
    const struct ref_replay_index *ri = img->ri;
    const int replayed = ri && ri->n && off < ri->hi && off + 65536 > ri->lo;
    t->stable = !replayed;
    for (int i = 0; i < 16 && !replayed; i++) {
        int st = 0;
        if (!(t->pc[i] = piece(img, off + 4096 * (uint64_t)i, buf + 4096 * i, &st)))
            return -1;
        t->stable &= st;
    }
    if (replayed) {
        if (ref_image_read(img, buf, 64 * 1024, off) != 0)
            return -1;
        for (int i = 0; i < 16; i++)
            t->pc[i] = buf + 4096 * i;
    }
    return 0;
}

/* The table's bytes at `at` (records of 8, 16 or 32 bytes never cross a
 * 4 KiB piece: they start at multiples of their size). */
static const uint8_t *at64(const struct table64 *t, size_t at)
{
    return t->pc[at / 4096] + at % 4096;
}

struct region_copy {
    int valid;
    char why[128];
    uint32_t count;
    struct ref_region *e; /* count entries (malloc'd) */
};

static int read_region_copy(struct ref_image *img, uint64_t off, uint8_t *buf, struct region_copy *rc)
{
    struct table64 t;
    if (read_table64(img, off, buf, &t) != 0)
        return -1;
    rc->valid = 0;
    uint32_t stored = ref_le32(t.pc[0] + 4);
    if (memcmp(t.pc[0], "regi", 4) != 0) {
        snprintf(rc->why, sizeof rc->why, "no \"regi\" signature");
        return 0;
    }
    if (ref_memo_crc(img->src.memo, t.pc, 16, 4096, 4, t.stable) != stored) {
        snprintf(rc->why, sizeof rc->why, "checksum mismatch");
        return 0;
    }
    rc->count = ref_le32(t.pc[0] + 8);
    if (rc->count > REF_MAX_REGIONS) {
        snprintf(rc->why, sizeof rc->why, "EntryCount %u is above 2047", rc->count);
        return 0;
    }
    if (!(rc->e = malloc((rc->count ? rc->count : 1) * sizeof *rc->e)))
        return -1;
    for (uint32_t i = 0; i < rc->count; i++) {
        const uint8_t *p = at64(&t, 16 + 32 * (size_t)i);
        memcpy(rc->e[i].guid, p, 16);
        rc->e[i].offset = ref_le64(p + 16);
        rc->e[i].length = ref_le32(p + 24);
        rc->e[i].required = ref_le32(p + 28);
    }
    rc->valid = 1;
    return 0;
}

static int same_table(const struct region_copy *a, const struct region_copy *b)
{
    if (a->count != b->count)
        return 0;
    for (uint32_t i = 0; i < a->count; i++)
        if (memcmp(a->e[i].guid, b->e[i].guid, 16) || a->e[i].offset != b->e[i].offset ||
            a->e[i].length != b->e[i].length || a->e[i].required != b->e[i].required)
            return 0;
    return 1;
}

static int read_regions(struct ref_image *img)
{
    struct region_copy c[2];
    memset(c, 0, sizeof c);
    uint8_t *buf = malloc(64 * 1024);
    int rc = 0;
    if (!buf) {
        snprintf(img->why, sizeof img->why, "out of memory");
        rc = -1;
        goto out;
    }
    for (int i = 0; i < 2; i++) {
        if (read_region_copy(img, i ? REGION2 : REGION1, buf, &c[i]) != 0) {
            snprintf(img->why, sizeof img->why, "reading the region table failed");
            rc = -1;
            goto out;
        }
        img->region_valid[i] = c[i].valid;
    }
    if (!c[0].valid && !c[1].valid) {
        judge(img, REF_INVALID, "2.2.3 region table",
              "neither region table copy is valid (at 192 KiB: %s; at 256 KiB: %s)", c[0].why, c[1].why);
        goto out;
    }
    int use = c[0].valid ? 0 : 1;
    if (c[0].valid && c[1].valid && !same_table(&c[0], &c[1]))
        /* the text keeps two copies and says nothing of which wins */
        judge(img, REF_UNDECIDED, "2.2.3 region table copies", "both region table copies are valid and differ");
    img->region_used = use;
    img->n_regions = c[use].count;
    img->regions = c[use].e;
    c[use].e = NULL;
    int have_bat = 0, have_meta = 0;
    for (uint32_t i = 0; i < img->n_regions; i++) {
        const struct ref_region *r = &img->regions[i];
        for (uint32_t j = 0; j < i; j++)
            if (!memcmp(img->regions[j].guid, r->guid, 16))
                judge(img, REF_INVALID, "2.2.3.2 Guid", "region entries %u and %u have the same GUID", j, i);
        if (r->offset % REF_MB != 0 || r->offset < REF_MB)
            judge(img, REF_INVALID, "2.2.3.2 FileOffset",
                  "region entry %u: FileOffset %llu is not a 1 MiB multiple of at least 1 MiB", i,
                  (unsigned long long)r->offset);
        if (r->length % REF_MB != 0)
            judge(img, REF_INVALID, "2.2.3.2 Length", "region entry %u: Length %u is not a multiple of 1 MiB", i,
                  r->length);
        if (!memcmp(r->guid, REF_GUID_BAT, 16)) {
            have_bat = 1;
            img->bat_offset = r->offset;
            img->bat_length = r->length;
        } else if (!memcmp(r->guid, REF_GUID_METADATA, 16)) {
            have_meta = 1;
            img->meta_offset = r->offset;
            img->meta_length = r->length;
        } else if (r->required & 1) {
            judge(img, REF_INVALID, "2.2.3.2 Required",
                  "region entry %u is marked required and is not a region this format defines", i);
        }
    }
    if (!have_bat || !have_meta)
        judge(img, REF_INVALID, "2.2.3 known regions", "the region table has no %s region",
              have_bat ? "metadata" : "BAT");
out:
    free(c[0].e);
    free(c[1].e);
    free(buf);
    return rc;
}

/* ---- 2.6: metadata ------------------------------------------------------------------ */
struct known_item {
    const uint8_t *guid;
    uint32_t min_len; /* bytes the item's fields need */
    int found;
    uint32_t offset, length;
};

static int read_metadata(struct ref_image *img)
{
    if (img->meta_length < METADATA_TABLE) {
        judge(img, REF_INVALID, "2.6 metadata region", "the metadata region (%u bytes) cannot hold its 64 KiB table",
              img->meta_length);
        return 0;
    }
    uint8_t *buf = malloc(METADATA_TABLE);
    if (!buf) {
        snprintf(img->why, sizeof img->why, "out of memory");
        return -1;
    }
    int rc = 0;
    struct table64 tb;
    if (read_table64(img, img->meta_offset, buf, &tb) != 0) {
        snprintf(img->why, sizeof img->why, "reading the metadata table failed");
        rc = -1;
        goto out;
    }
    const uint8_t *t = tb.pc[0];
    if (memcmp(t, "metadata", 8) != 0) {
        judge(img, REF_INVALID, "2.6.1.1 Signature", "the metadata table at %llu has no \"metadata\" signature",
              (unsigned long long)img->meta_offset);
        goto out;
    }
    uint32_t count = ref_le16(t + 10);
    if (count > 2047) {
        judge(img, REF_INVALID, "2.6.1.1 EntryCount", "metadata EntryCount %u is above 2047", count);
        goto out;
    }
    struct known_item k[5] = {
        {REF_GUID_FILE_PARAMETERS, 8, 0, 0, 0}, {REF_GUID_VIRTUAL_DISK_SIZE, 8, 0, 0, 0},
        {REF_GUID_VIRTUAL_DISK_ID, 16, 0, 0, 0}, {REF_GUID_LOGICAL_SECTOR, 4, 0, 0, 0},
        {REF_GUID_PHYSICAL_SECTOR, 4, 0, 0, 0},
    };
    uint32_t users = 0;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *e = at64(&tb, 32 + 32 * (size_t)i);
        uint32_t off = ref_le32(e + 16), len = ref_le32(e + 20), flags = ref_le32(e + 24);
        int is_user = flags & 1, required = (flags >> 2) & 1;
        users += (uint32_t)is_user;
        for (uint32_t j = 0; j < i; j++) {
            const uint8_t *o = at64(&tb, 32 + 32 * (size_t)j);
            if (!memcmp(o, e, 16) && (ref_le32(o + 24) & 1) == (uint32_t)is_user)
                judge(img, REF_INVALID, "2.6.1.2 ItemId", "metadata entries %u and %u share ItemId and IsUser", j, i);
            uint32_t ooff = ref_le32(o + 16), olen = ref_le32(o + 20);
            if (len && olen && off < ooff + (uint64_t)olen && ooff < off + (uint64_t)len)
                judge(img, REF_INVALID, "2.6.1.2 Offset", "metadata items %u and %u overlap", j, i);
        }
        if (len == 0 ? off != 0 : (off < METADATA_TABLE || (uint64_t)off + len > img->meta_length))
            judge(img, REF_INVALID, "2.6.1.2 Offset",
                  "metadata item %u (offset %u, length %u) is not inside the metadata region past its table", i,
                  off, len);
        if (len > REF_MB)
            judge(img, REF_INVALID, "2.6.1.2 Length", "metadata item %u is %u bytes (at most 1 MiB)", i, len);
        int known = 0;
        for (int q = 0; q < 5 && !is_user; q++)
            if (!memcmp(e, k[q].guid, 16)) {
                known = 1;
                k[q].found = 1;
                k[q].offset = off;
                k[q].length = len;
            }
        if (!is_user && !memcmp(e, REF_GUID_PARENT_LOCATOR, 16))
            known = 1;
        if (required && !known)
            judge(img, REF_INVALID, "2.6.1.2 IsRequired",
                  "metadata item %u is marked required and is not an item this format defines", i);
    }
    if (users > 1024)
        judge(img, REF_INVALID, "2.6.1.2 IsUser", "%u user metadata items (at most 1024)", users);
    static const char *const names[5] = {"File Parameters", "Virtual Disk Size", "Virtual Disk ID",
                                         "Logical Sector Size", "Physical Sector Size"};
    uint8_t v[16];
    for (int q = 0; q < 5; q++) {
        if (!k[q].found) {
            if (q == 2) /* not needed to read the disk */
                judge(img, REF_UNDECIDED, "2.6.2 Virtual Disk ID", "the Virtual Disk ID item is missing");
            else
                judge(img, REF_INVALID, "2.6.2 required item", "the %s metadata item is missing", names[q]);
            continue;
        }
        if (k[q].length < k[q].min_len) {
            judge(img, REF_INVALID, "2.6.2 item length", "the %s item is %u bytes (needs %u)", names[q], k[q].length,
                  k[q].min_len);
            continue;
        }
        if (ref_image_read(img, v, k[q].min_len, img->meta_offset + k[q].offset) != 0) {
            snprintf(img->why, sizeof img->why, "reading a metadata item failed");
            rc = -1;
            goto out;
        }
        switch (q) {
        case 0:
            img->block_size = ref_le32(v);
            img->leave_block_allocated = ref_le32(v + 4) & 1;
            img->has_parent = (ref_le32(v + 4) >> 1) & 1;
            break;
        case 1: img->virtual_size = ref_le64(v); break;
        case 2: memcpy(img->virtual_disk_id, v, 16); break;
        case 3: img->logical_sector = ref_le32(v); break;
        case 4: img->physical_sector = ref_le32(v); break;
        }
    }
    if (img->status == REF_INVALID)
        goto out;
    const uint32_t bs = img->block_size;
    if (k[0].found && (bs < REF_MB || bs > 256 * REF_MB || (bs & (bs - 1))))
        judge(img, REF_INVALID, "2.6.2.1 BlockSize", "BlockSize %u is not a power of two from 1 MiB to 256 MiB", bs);
    if (k[3].found && img->logical_sector != 512 && img->logical_sector != 4096)
        judge(img, REF_INVALID, "2.6.2.4 LogicalSectorSize", "LogicalSectorSize %u is not 512 or 4096",
              img->logical_sector);
    if (k[4].found && img->physical_sector != 512 && img->physical_sector != 4096)
        judge(img, REF_INVALID, "2.6.2.5 PhysicalSectorSize", "PhysicalSectorSize %u is not 512 or 4096",
              img->physical_sector);
    if (k[1].found && k[3].found && img->logical_sector &&
        (img->virtual_size % img->logical_sector != 0 || img->virtual_size > REF_MAX_VIRTUAL))
        judge(img, REF_INVALID, "2.6.2.2 VirtualDiskSize",
              "VirtualDiskSize %llu is not a multiple of the logical sector (%u) of at most 64 TiB",
              (unsigned long long)img->virtual_size, img->logical_sector);
    if (img->has_parent)
        judge(img, REF_UNDECIDED, "2.6.2.1 HasParent", "a differencing disk (the reference does not model parents)");
    if (img->status == REF_VALID && img->virtual_size == 0)
        judge(img, REF_UNDECIDED, "2.6.2.2 VirtualDiskSize", "a virtual disk of 0 bytes");
out:
    free(buf);
    return rc;
}

/* ---- 2.5: BAT, and 2.1: structures do not overlap ---------------------------------- */
uint64_t ref_image_bat_index(const struct ref_image *img, uint64_t block)
{
    return block + (img->chunk_ratio ? block / img->chunk_ratio : 0);
}

uint64_t ref_image_bat_entry(const struct ref_image *img, uint64_t index)
{
    uint8_t e[8];
    if (index >= img->bat_length / 8 || ref_image_read(img, e, 8, img->bat_offset + index * 8) != 0)
        return 0;
    return ref_le64(e);
}

struct span {
    uint64_t lo, hi;
    const char *what;
    uint64_t index; /* BAT index of a block, or region number */
};

static int cmp_span(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* 2.1 "non-overlapping structures"; sorts s.  1 when two overlap. */
static int overlap(struct ref_image *img, struct span *s, size_t n)
{
    qsort(s, n, sizeof *s, cmp_span);
    for (size_t i = 1; i < n; i++)
        if (s[i].lo < s[i - 1].hi) {
            judge(img, REF_INVALID, "2.1 overlap", "%s (at %llu) overlaps %s (%llu..%llu)", s[i].what,
                  (unsigned long long)s[i].lo, s[i - 1].what, (unsigned long long)s[i - 1].lo,
                  (unsigned long long)s[i - 1].hi);
            return 1;
        }
    return 0;
}

static int check_layout(struct ref_image *img)
{
    const uint32_t bs = img->block_size;
    img->chunk_ratio = ((UINT64_C(1) << 23) * img->logical_sector) / bs;
    img->payload_blocks = (img->virtual_size + bs - 1) / bs;
    img->bat_entries = img->payload_blocks + (img->payload_blocks - 1) / img->chunk_ratio;
    if ((uint64_t)img->bat_length < img->bat_entries * 8) {
        judge(img, REF_INVALID, "2.5 BAT region size",
              "the BAT region (%u bytes) cannot hold the %llu entries the disk needs", img->bat_length,
              (unsigned long long)img->bat_entries);
        return 0;
    }
    img->bat_scanned = img->bat_entries <= REF_BAT_SCAN_MAX;
    size_t cap = 1 + img->n_regions + (img->bat_scanned ? (size_t)img->payload_blocks : 0) + 1;
    struct span *s = malloc(cap * sizeof *s);
    uint8_t *bat = img->bat_scanned ? malloc((size_t)img->bat_entries * 8) : NULL;
    int rc = 0;
    if (!s || (img->bat_scanned && !bat)) {
        snprintf(img->why, sizeof img->why, "out of memory");
        rc = -1;
        goto out;
    }
    size_t n = 0;
    s[n++] = (struct span){0, HEADER_SECTION, "the header section", 0};
    const struct ref_header *c = &img->header[img->current];
    if (c->log_length)
        s[n++] = (struct span){c->log_offset, c->log_offset + c->log_length, "the log", 0};
    for (uint32_t i = 0; i < img->n_regions; i++)
        if (img->regions[i].length)
            s[n++] = (struct span){img->regions[i].offset, img->regions[i].offset + img->regions[i].length,
                                   "a region", i};
    /* the fixed structures first: a BAT that lies on another region is
     * read as garbage and reported as what it is, an overlap */
    if (overlap(img, s, n))
        goto out;
    if (bat) {
        if (ref_image_read(img, bat, (size_t)img->bat_entries * 8, img->bat_offset) != 0) {
            snprintf(img->why, sizeof img->why, "reading the BAT failed");
            rc = -1;
            goto out;
        }
        for (uint64_t i = 0; i < img->bat_entries; i++) {
            uint64_t e = ref_le64(bat + i * 8);
            unsigned state = (unsigned)(e & 7);
            uint64_t mb = e >> 20;
            int bitmap = (i + 1) % (img->chunk_ratio + 1) == 0;
            if (bitmap) {
                /* 2.5.1.2: "For a fixed or dynamic VHDX file, all sector bitmap
                 * block entries MUST be in this state" (SB_BLOCK_NOT_PRESENT) */
                if (state != 0)
                    judge(img, REF_INVALID, "2.5.1.2 sector bitmap state",
                          "BAT[%llu] is a sector bitmap entry in state %u in a disk without a parent",
                          (unsigned long long)i, state);
                continue;
            }
            uint64_t block = i - i / (img->chunk_ratio + 1);
            switch (state) {
            case REF_BAT_FULLY_PRESENT: {
                img->blocks_present++;
                /* the bytes of the virtual disk the block holds */
                uint64_t used = img->virtual_size - block * bs < bs ? img->virtual_size - block * bs : bs;
                uint64_t lo = mb << 20;
                if (mb == 0 || lo < HEADER_SECTION)
                    judge(img, REF_INVALID, "2.5.1 FileOffsetMB", "BAT[%llu] places block %llu inside the header section",
                          (unsigned long long)i, (unsigned long long)block);
                else if (lo > img->size || used > img->size - lo) /* not lo + used: 44-bit offsets wrap it */
                    judge(img, REF_INVALID, "2.5.1 FileOffsetMB",
                          "BAT[%llu] places block %llu at %llu, past the end of the file (%llu bytes)",
                          (unsigned long long)i, (unsigned long long)block, (unsigned long long)lo,
                          (unsigned long long)img->size);
                else
                    s[n++] = (struct span){lo, lo + bs, "a payload block", i};
                break;
            }
            case REF_BAT_NOT_PRESENT:
                break;
            case REF_BAT_UNDEFINED:
            case REF_BAT_ZERO:
            case REF_BAT_UNMAPPED:
                img->blocks_zero++;
                break;
            case REF_BAT_PARTIALLY_PRESENT:
                judge(img, REF_INVALID, "2.5.1.1 PARTIALLY_PRESENT",
                      "BAT[%llu] is PARTIALLY_PRESENT in a disk without a parent (\"MUST NOT be present\")",
                      (unsigned long long)i);
                break;
            default:
                judge(img, REF_UNDECIDED, "2.5.1.1 reserved state", "BAT[%llu] has the reserved state %u",
                      (unsigned long long)i, state);
            }
        }
    }
    overlap(img, s, n);
out:
    free(s);
    free(bat);
    return rc;
}

/* ---- open ------------------------------------------------------------------------ */
int ref_image_open(struct ref_image *img, const struct ref_src *src)
{
    memset(img, 0, sizeof *img);
    img->src = *src;
    img->current = -1;
    img->file_size = img->size = src->size;
    int rc = read_headers(img);
    if (rc == 0 && img->status == REF_VALID)
        rc = replay(img);
    if (rc == 0 && img->status == REF_VALID)
        rc = read_regions(img);
    if (rc == 0 && img->status != REF_INVALID && img->regions)
        rc = read_metadata(img);
    if (rc == 0 && img->status != REF_INVALID && img->block_size && img->logical_sector && img->virtual_size)
        rc = check_layout(img);
    return rc;
}

void ref_image_free(struct ref_image *img)
{
    ref_result_free(&img->log);
    free(img->regions);
    free(img->ri);
    memset(img, 0, sizeof *img);
}

/* ---- the virtual disk ---------------------------------------------------------------- */
int ref_image_read_virtual(const struct ref_image *img, void *buf, size_t len, uint64_t voff, int *defined)
{
    uint8_t *p = buf;
    if (!img->block_size || voff > img->virtual_size || len > img->virtual_size - voff)
        return -1;
    if (defined)
        *defined = 1;
    const uint64_t bs = img->block_size;
    while (len > 0) {
        uint64_t block = voff / bs, in = voff % bs;
        size_t n = bs - in < len ? (size_t)(bs - in) : len;
        uint64_t e = ref_image_bat_entry(img, ref_image_bat_index(img, block));
        unsigned state = (unsigned)(e & 7);
        if (state == REF_BAT_FULLY_PRESENT) {
            if (ref_image_read(img, p, n, ((e >> 20) << 20) + in) != 0)
                return -1;
        } else {
            memset(p, 0, n);
            if (state != REF_BAT_ZERO && defined)
                *defined = 0; /* 2.5.1.1: the reader may return other bytes */
        }
        p += n;
        voff += n;
        len -= n;
    }
    return 0;
}
