/*
 * validate.c - validators for headers, region tables, metadata and the BAT,
 * shared by vhdx_open() (first error refuses) and vhdx_check() (collects all).
 *
 * Guarantees: each validator reads a bounded amount (both header slots, both
 * 64 KiB region tables, the 64 KiB metadata table and its known items) and
 * its loops are bounded by on-disk counts that were checked first
 * (EntryCount <= 2047, BAT entries from a validated geometry).  Overlap
 * detection sorts (regions, items) or marks a bitmap of the file in 1 MiB
 * units up to the highest block (BAT), so hostile tables cost O(n log n).
 */
#include "validate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int vhdx_report(struct vhdx_sink *s, enum vhdx_severity sev, int code, uint64_t offset, unsigned repair,
                const char *field, const char *fmt, ...)
{
    struct vhdx_problem p;
    memset(&p, 0, sizeof p);
    p.severity = sev;
    p.code = code;
    p.offset = offset;
    p.repair = (enum vhdx_repair)repair;
    snprintf(p.field, sizeof p.field, "%s", field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p.message, sizeof p.message, fmt, ap);
    va_end(ap);
    return s->report(s, &p);
}

#define REPORT(...)                                \
    do {                                           \
        int report_rc_ = vhdx_report(s, __VA_ARGS__); \
        if (report_rc_ != 0)                       \
            return report_rc_;                     \
    } while (0)

/* ---- headers --------------------------------------------------------------- */
static const uint32_t slot_offset[2] = {VHDX_HEADER1_OFFSET, VHDX_HEADER2_OFFSET};

int vhdx_v_headers(struct bdev *dev, struct vhdx_headers *out, struct vhdx_sink *s)
{
    uint8_t buf[2][VHDX_HEADER_SIZE];
    memset(out, 0, sizeof *out);
    for (int i = 0; i < 2; i++) {
        int rc = vhdx_io_read(dev, buf[i], VHDX_HEADER_SIZE, slot_offset[i]);
        if (rc == VHDX_E_SHORT_IO)
            rc = VHDX_E_TRUNCATED;
        if (rc != 0) {
            out->rc[i] = rc;
            if (rc != VHDX_E_TRUNCATED)
                return rc;
            continue;
        }
        out->rc[i] = vhdx_header_decode(buf[i], &out->h[i]);
    }
    if (out->rc[0] && out->rc[1]) {
        vhdx_report(s, VHDX_SEV_ERROR, VHDX_E_NO_HEADER, VHDX_HEADER1_OFFSET, 0, "header",
                    "no valid header: header 1 at 65536: %s; header 2 at 131072: %s", vhdx_strerror(out->rc[0]),
                    vhdx_strerror(out->rc[1]));
        return VHDX_E_NO_HEADER;
    }
    for (int i = 0; i < 2; i++) {
        if (out->rc[i]) {
            out->current = 1 - i;
            char field[16];
            snprintf(field, sizeof field, "header[%d]", i + 1);
            REPORT(VHDX_SEV_WARNING, out->rc[i], slot_offset[i], VHDX_REPAIR_HEADER_COPY, field,
                   "header %d at %u is invalid (%s); header %d is current", i + 1, slot_offset[i],
                   vhdx_strerror(out->rc[i]), 2 - i);
            return 0;
        }
    }
    if (out->h[0].sequence == out->h[1].sequence) {
        if (memcmp(buf[0], buf[1], VHDX_HEADER_SIZE) != 0) {
            vhdx_report(s, VHDX_SEV_ERROR, VHDX_E_HEADER_AMBIGUOUS, VHDX_HEADER1_OFFSET, 0, "header.SequenceNumber",
                        "both headers are valid with SequenceNumber %llu but differ: no current header",
                        (unsigned long long)out->h[0].sequence);
            return VHDX_E_HEADER_AMBIGUOUS;
        }
        out->current = 0;
        return 0;
    }
    out->current = out->h[1].sequence > out->h[0].sequence;
    int other = 1 - out->current;
    struct vhdx_header a = out->h[0], b = out->h[1];
    a.sequence = b.sequence = 0;
    a.checksum = b.checksum = 0;
    if (memcmp(&a, &b, sizeof a) != 0) {
        char field[16];
        snprintf(field, sizeof field, "header[%d]", other + 1);
        REPORT(VHDX_SEV_INFO, 0, slot_offset[other], VHDX_REPAIR_HEADER_COPY, field,
               "header %d (SequenceNumber %llu) is older than header %d (%llu) and holds different fields",
               other + 1, (unsigned long long)out->h[other].sequence, out->current + 1,
               (unsigned long long)out->h[out->current].sequence);
    }
    return 0;
}

int vhdx_v_header_fields(const struct vhdx_headers *hs, struct vhdx_sink *s)
{
    const char *fname = "";
    uint32_t foff = 0;
    int rc = vhdx_header_check_fields(&hs->h[hs->current], &fname, &foff);
    if (rc != 0) {
        char field[64];
        const struct vhdx_header *h = &hs->h[hs->current];
        snprintf(field, sizeof field, "header[%d].%s", hs->current + 1, fname);
        unsigned long long value = foff == VHDX_HDR_VERSION       ? h->version
                                   : foff == VHDX_HDR_LOG_VERSION ? h->log_version
                                   : foff == VHDX_HDR_LOG_LENGTH  ? h->log_length
                                                                  : h->log_offset;
        vhdx_report(s, VHDX_SEV_ERROR, rc, slot_offset[hs->current] + foff, 0, field,
                    "%s is %llu (%s)", field, value, vhdx_strerror(rc));
        return rc;
    }
    return 0;
}

/* ---- intervals ------------------------------------------------------------- */
struct interval {
    uint64_t lo, hi;  /* [lo, hi) */
    const char *kind; /* for messages: "log", "BAT region", ... */
    uint32_t entry;   /* table entry, UINT32_MAX when not from a table */
};

/* "BAT region (entry 3)" or "log": formatted only for a message. */
static const char *iv_name(const struct interval *v, char *buf, size_t len)
{
    if (v->entry == UINT32_MAX)
        return v->kind;
    snprintf(buf, len, "%s (entry %u)", v->kind, v->entry);
    return buf;
}

static int cmp_interval(const void *a, const void *b)
{
    const struct interval *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Reports the first overlap of each interval with an earlier one (sorted
 * by start; the earlier interval reaching furthest is the one named). */
static int report_overlaps(struct interval *iv, size_t n, const char *field, struct vhdx_sink *s)
{
    qsort(iv, n, sizeof *iv, cmp_interval);
    size_t far = 0; /* index of the interval with the greatest hi so far */
    for (size_t i = 1; i < n; i++) {
        if (iv[i].lo < iv[far].hi) {
            char a[64], b[64];
            REPORT(VHDX_SEV_ERROR, VHDX_E_OVERLAP, iv[i].lo, 0, field, "%s [%llu, %llu) overlaps %s [%llu, %llu)",
                   iv_name(&iv[i], a, sizeof a), (unsigned long long)iv[i].lo, (unsigned long long)iv[i].hi,
                   iv_name(&iv[far], b, sizeof b), (unsigned long long)iv[far].lo, (unsigned long long)iv[far].hi);
        }
        if (iv[i].hi > iv[far].hi)
            far = i;
    }
    return 0;
}

/* GUID (+ IsUser for metadata) with its entry index, for duplicate checks. */
struct keyed_guid {
    uint8_t key[17]; /* GUID bytes, then a discriminator */
    uint32_t idx;    /* entry index */
};

static int cmp_keyed_guid(const void *a, const void *b)
{
    const struct keyed_guid *x = a, *y = b;
    int c = memcmp(x->key, y->key, sizeof x->key);
    return c ? c : (x->idx < y->idx ? -1 : x->idx > y->idx);
}

/* ---- region tables --------------------------------------------------------- */

int vhdx_v_region_tables(struct bdev *dev, struct vhdx_region_table *rt, struct vhdx_layout *lay, int *copy_used,
                         struct vhdx_sink *s)
{
    static const uint32_t rt_offset[2] = {VHDX_REGION1_OFFSET, VHDX_REGION2_OFFSET};
    int rc = 0;
    /* Two 64 KiB buffers rather than one of 128 KiB: glibc would mmap that. */
    uint8_t *raw[2] = {vhdx_malloc(VHDX_REGION_TABLE_SIZE), vhdx_malloc(VHDX_REGION_TABLE_SIZE)};
    struct vhdx_region_table *other = NULL; /* the second copy, decoded only when it differs */
    struct interval *iv = NULL;
    struct keyed_guid *order = NULL;
    if (!raw[0] || !raw[1]) {
        rc = -ENOMEM;
        goto out;
    }
    int rrc[2];
    const uint8_t *tbl[2];
    for (int i = 0; i < 2; i++) {
        tbl[i] = vhdx_io_view(dev, raw[i], VHDX_REGION_TABLE_SIZE, rt_offset[i], &rc);
        rrc[i] = rc == VHDX_E_SHORT_IO ? VHDX_E_TRUNCATED : 0;
        if (rc != 0 && rc != VHDX_E_SHORT_IO)
            goto out;
    }
    /* Identical copies have identical checksums: decode (and checksum) once. */
    const int same = !rrc[0] && !rrc[1] && (tbl[0] == tbl[1] || memcmp(tbl[0], tbl[1], VHDX_REGION_TABLE_SIZE) == 0);
    if (!rrc[0])
        rrc[0] = vhdx_region_table_decode(tbl[0], rt);
    if (same) {
        rrc[1] = rrc[0];
    } else if (!rrc[1]) {
        if (!(other = vhdx_malloc(sizeof *other))) {
            rc = -ENOMEM;
            goto out;
        }
        rrc[1] = vhdx_region_table_decode(tbl[1], other);
    }
    rc = 0;
    if (rrc[0] && rrc[1]) {
        vhdx_report(s, VHDX_SEV_ERROR, VHDX_E_NO_REGION_TABLE, VHDX_REGION1_OFFSET, 0, "region_table",
                    "no valid region table: copy 1 at 196608: %s; copy 2 at 262144: %s", vhdx_strerror(rrc[0]),
                    vhdx_strerror(rrc[1]));
        rc = VHDX_E_NO_REGION_TABLE;
        goto out;
    }
    *copy_used = rrc[0] ? 1 : 0;
    if (*copy_used == 1)
        memcpy(rt, other, sizeof *rt);
    if (rrc[0] || rrc[1]) {
        int bad = rrc[0] ? 0 : 1;
        char field[24];
        snprintf(field, sizeof field, "region_table[%d]", bad + 1);
        rc = vhdx_report(s, VHDX_SEV_WARNING, rrc[bad], rt_offset[bad], VHDX_REPAIR_REGION_COPY, field,
                         "region table copy %d at %u is invalid (%s); copy %d is used", bad + 1, rt_offset[bad],
                         vhdx_strerror(rrc[bad]), 2 - bad);
    } else if (!same) {
        rc = vhdx_report(s, VHDX_SEV_WARNING, VHDX_E_REGION_FIELD, VHDX_REGION2_OFFSET, VHDX_REPAIR_REGION_COPY,
                         "region_table[2]", "region table copies differ; copy 1 is used");
    }
    if (rc != 0)
        goto out;

    const uint32_t base = rt_offset[*copy_used];
    const uint32_t n = rt->entry_count;
    iv = vhdx_calloc(n + 2, sizeof *iv);
    order = vhdx_calloc(n + 1, sizeof *order);
    if (!iv || !order) {
        rc = -ENOMEM;
        goto out;
    }
    size_t niv = 0;
    iv[niv++] = (struct interval){0, VHDX_HEADER_SECTION_SIZE, "header section", UINT32_MAX};
    if (lay->log_length)
        iv[niv++] = (struct interval){lay->log_offset, lay->log_offset + lay->log_length, "log", UINT32_MAX};
    int have_bat = 0, have_meta = 0;
    for (uint32_t i = 0; i < n; i++) {
        const struct vhdx_region_entry *e = &rt->entries[i];
        uint64_t eoff = base + 16 + 32 * (uint64_t)i;
        char field[40]; /* formatted only when a problem is reported */
        int is_bat = vhdx_guid_equal(&e->guid, &VHDX_GUID_REGION_BAT);
        int is_meta = vhdx_guid_equal(&e->guid, &VHDX_GUID_REGION_METADATA);
        const char *name = is_bat ? "BAT" : is_meta ? "metadata" : "unknown";
        if (e->file_offset < VHDX_MiB || e->file_offset % VHDX_MiB != 0 || e->file_offset > BDEV_MAX_OFFSET) {
            snprintf(field, sizeof field, "region[%u].FileOffset", i);
            rc = vhdx_report(s, VHDX_SEV_ERROR, VHDX_E_REGION_FIELD, eoff + 16, 0, field,
                             "%s region FileOffset %llu is not a multiple of 1 MiB at or after 1 MiB", name,
                             (unsigned long long)e->file_offset);
            if (rc)
                goto out;
            continue;
        }
        if (e->length % VHDX_MiB != 0) {
            snprintf(field, sizeof field, "region[%u].Length", i);
            rc = vhdx_report(s, VHDX_SEV_ERROR, VHDX_E_REGION_FIELD, eoff + 24, 0, field,
                             "%s region Length %u is not a multiple of 1 MiB", name, e->length);
            if (rc)
                goto out;
            continue;
        }
        if (!is_bat && !is_meta && (e->required & 1)) {
            char g[VHDX_GUID_STRLEN];
            vhdx_guid_format(&e->guid, g);
            snprintf(field, sizeof field, "region[%u].Required", i);
            rc = vhdx_report(s, VHDX_SEV_ERROR, VHDX_E_REQUIRED_REGION, eoff + 28, 0, field,
                             "region {%s} is marked required and is not understood", g);
            if (rc)
                goto out;
        }
        if ((is_bat && have_bat) || (is_meta && have_meta)) {
            snprintf(field, sizeof field, "region[%u].Guid", i);
            rc = vhdx_report(s, VHDX_SEV_ERROR, VHDX_E_REGION_FIELD, eoff, 0, field,
                             "%s region listed twice", name);
            if (rc)
                goto out;
            continue;
        }
        if (is_bat) {
            have_bat = 1;
            lay->bat_offset = e->file_offset;
            lay->bat_length = e->length;
        }
        if (is_meta) {
            have_meta = 1;
            lay->meta_offset = e->file_offset;
            lay->meta_length = e->length;
        }
        if (e->file_offset + e->length > lay->file_size) {
            snprintf(field, sizeof field, "region[%u]", i);
            rc = vhdx_report(s, (is_bat || is_meta) ? VHDX_SEV_ERROR : VHDX_SEV_WARNING, VHDX_E_TRUNCATED, eoff + 16,
                             0, field, "%s region [%llu, %llu) reaches past the end of the file (%llu bytes)", name,
                             (unsigned long long)e->file_offset, (unsigned long long)(e->file_offset + e->length),
                             (unsigned long long)lay->file_size);
            if (rc)
                goto out;
        }
        struct interval *v = &iv[niv++];
        v->lo = e->file_offset;
        v->hi = e->file_offset + e->length;
        v->entry = i;
        v->kind = is_bat ? "BAT region" : is_meta ? "metadata region" : "unknown region";
    }
    /* Duplicate GUIDs among all entries. */
    for (uint32_t i = 0; i < n; i++) {
        memcpy(order[i].key, rt->entries[i].guid.b, 16);
        order[i].key[16] = 0;
        order[i].idx = i;
    }
    qsort(order, n, sizeof *order, cmp_keyed_guid);
    for (uint32_t i = 1; i < n; i++) {
        if (memcmp(order[i].key, order[i - 1].key, sizeof order[i].key) == 0) {
            char field[40];
            snprintf(field, sizeof field, "region[%u].Guid", order[i].idx);
            rc = vhdx_report(s, VHDX_SEV_ERROR, VHDX_E_REGION_FIELD, base + 16 + 32 * (uint64_t)order[i].idx, 0,
                             field, "region GUID appears in entries %u and %u", order[i - 1].idx, order[i].idx);
            if (rc)
                goto out;
        }
    }
    if (!have_bat || !have_meta) {
        vhdx_report(s, VHDX_SEV_ERROR, VHDX_E_MISSING_REGION, base, 0, "region_table",
                    "the %s region is missing", have_bat ? "metadata" : "BAT");
        rc = VHDX_E_MISSING_REGION;
        goto out;
    }
    if (lay->log_offset + lay->log_length > lay->file_size) {
        rc = vhdx_report(s, VHDX_SEV_ERROR, VHDX_E_TRUNCATED, lay->log_offset, 0, "log",
                         "log [%llu, %llu) reaches past the end of the file (%llu bytes)",
                         (unsigned long long)lay->log_offset,
                         (unsigned long long)(lay->log_offset + lay->log_length),
                         (unsigned long long)lay->file_size);
        if (rc)
            goto out;
    }
    rc = report_overlaps(iv, niv, "region_table", s);
    if (rc)
        goto out;
    lay->rt = rt;
    rc = 0;
out:
    free(raw[0]);
    free(raw[1]);
    free(other);
    free(iv);
    free(order);
    return rc;
}


/* ---- metadata -------------------------------------------------------------- */
enum known_item { ITEM_FP, ITEM_SIZE, ITEM_ID, ITEM_LOGICAL, ITEM_PHYSICAL, ITEM_PARENT, ITEM_COUNT };

static const struct {
    const struct vhdx_guid *guid;
    uint32_t length; /* required length, 0 = any */
    const char *name;
} known_items[ITEM_COUNT] = {
    [ITEM_FP] = {&VHDX_GUID_ITEM_FILE_PARAMETERS, VHDX_ITEM_FILE_PARAMETERS_SIZE, "FileParameters"},
    [ITEM_SIZE] = {&VHDX_GUID_ITEM_VIRTUAL_DISK_SIZE, VHDX_ITEM_VIRTUAL_DISK_SIZE_SIZE, "VirtualDiskSize"},
    [ITEM_ID] = {&VHDX_GUID_ITEM_VIRTUAL_DISK_ID, VHDX_ITEM_VIRTUAL_DISK_ID_SIZE, "VirtualDiskId"},
    [ITEM_LOGICAL] = {&VHDX_GUID_ITEM_LOGICAL_SECTOR_SIZE, VHDX_ITEM_SECTOR_SIZE_SIZE, "LogicalSectorSize"},
    [ITEM_PHYSICAL] = {&VHDX_GUID_ITEM_PHYSICAL_SECTOR_SIZE, VHDX_ITEM_SECTOR_SIZE_SIZE, "PhysicalSectorSize"},
    [ITEM_PARENT] = {&VHDX_GUID_ITEM_PARENT_LOCATOR, 0, "ParentLocator"},
};

int vhdx_v_metadata(struct bdev *dev, const struct vhdx_layout *lay, struct vhdx_geometry *geo, uint32_t *fp_flags,
                    struct vhdx_guid *disk_id, struct vhdx_sink *s)
{
    int rc = 0;
    uint8_t *buf = NULL;
    struct vhdx_metadata_table *t = NULL;
    struct interval *iv = NULL;
    struct keyed_guid *keys = NULL;
    const uint64_t base = lay->meta_offset;
    if (lay->meta_length < VHDX_METADATA_TABLE_SIZE) {
        vhdx_report(s, VHDX_SEV_ERROR, VHDX_E_METADATA, base, 0, "metadata", "metadata region of %u bytes cannot hold the 64 KiB table",
                    lay->meta_length);
        return VHDX_E_METADATA;
    }
    buf = vhdx_malloc(VHDX_METADATA_TABLE_SIZE);
    t = vhdx_malloc(sizeof *t);
    if (!buf || !t) {
        rc = -ENOMEM;
        goto out;
    }
    /* The header, then only the entries EntryCount says are in use. */
    rc = vhdx_io_read(dev, buf, 32, base);
    size_t used = rc == 0 ? vhdx_metadata_table_used(buf) : 0;
    if (rc == 0 && used > 32)
        rc = vhdx_io_read(dev, buf + 32, used - 32, base + 32);
    if (rc != 0)
        goto out;
    rc = vhdx_metadata_table_decode(buf, used, t);
    if (rc != 0) {
        vhdx_report(s, VHDX_SEV_ERROR, rc, base, 0, rc == VHDX_E_METADATA ? "metadata.EntryCount" : "metadata.Signature",
                    "metadata table at %llu: %s", (unsigned long long)base, vhdx_strerror(rc));
        goto out;
    }
    if (t->reserved != 0) {
        rc = vhdx_report(s, VHDX_SEV_WARNING, VHDX_E_METADATA, base + 8, 0, "metadata.Reserved",
                         "metadata table Reserved is %u, must be 0", t->reserved);
        if (rc)
            goto out;
    }
    const uint32_t n = t->entry_count;
    iv = vhdx_calloc(n + 1, sizeof *iv);
    keys = vhdx_calloc(n + 1, sizeof *keys);
    if (!iv || !keys) {
        rc = -ENOMEM;
        goto out;
    }
    int found[ITEM_COUNT] = {0};
    uint32_t item_at[ITEM_COUNT] = {0};
    uint32_t users = 0;
    size_t niv = 0;
    for (uint32_t i = 0; i < n; i++) {
        const struct vhdx_metadata_entry *e = &t->entries[i];
        uint64_t eoff = base + 32 + 32 * (uint64_t)i;
        char field[48]; /* formatted only when a problem is reported */
#define FIELD() (snprintf(field, sizeof field, "metadata[%u]", i), field)
        int user = (e->flags & VHDX_META_IS_USER) != 0;
        users += user;
        memcpy(keys[i].key, e->item_id.b, 16);
        keys[i].key[16] = (uint8_t)user;
        keys[i].idx = i;
        if (e->length > VHDX_METADATA_ITEM_MAX || (e->length == 0 && e->offset != 0) ||
            (e->length != 0 && (e->offset < VHDX_METADATA_TABLE_SIZE ||
                                (uint64_t)e->offset + e->length > lay->meta_length))) {
            rc = vhdx_report(s, VHDX_SEV_ERROR, VHDX_E_METADATA, eoff + 16, 0, FIELD(),
                             "metadata item %u at offset %u length %u is outside the region (%u bytes) or too long", i,
                             e->offset, e->length, lay->meta_length);
            if (rc)
                goto out;
            continue;
        }
        if ((e->flags >> 3) != 0 || e->reserved2 != 0) {
            rc = vhdx_report(s, VHDX_SEV_WARNING, VHDX_E_METADATA, eoff + 24, 0, FIELD(),
                             "metadata item %u has reserved bits set (flags 0x%x, Reserved2 0x%x)", i, e->flags,
                             e->reserved2);
            if (rc)
                goto out;
        }
        if (e->length) {
            iv[niv].lo = e->offset;
            iv[niv].hi = (uint64_t)e->offset + e->length;
            iv[niv].kind = "metadata item";
            iv[niv].entry = i;
            niv++;
        }
        int known = -1;
        for (int k = 0; k < ITEM_COUNT && !user; k++)
            if (vhdx_guid_equal(&e->item_id, known_items[k].guid))
                known = k;
        if (known < 0) {
            if (e->flags & VHDX_META_IS_REQUIRED) {
                char g[VHDX_GUID_STRLEN];
                vhdx_guid_format(&e->item_id, g);
                vhdx_report(s, VHDX_SEV_ERROR, VHDX_E_REQUIRED_ITEM, eoff, 0, FIELD(),
                            "metadata item {%s} is marked required and is not understood", g);
                rc = VHDX_E_REQUIRED_ITEM;
                goto out;
            }
            continue;
        }
        /* MS-VHDX 2.6.1.2 bounds an item's Length only by the region and
         * 1 MB, and 2.6.2 defines the leading bytes of each known item: a
         * longer item is read for those bytes (a warning); a shorter one
         * cannot hold the value. */
        if (known_items[known].length && e->length < known_items[known].length) {
            rc = vhdx_report(s, VHDX_SEV_ERROR, VHDX_E_ITEM_VALUE, eoff + 20, 0, FIELD(),
                             "%s item has length %u, needs %u", known_items[known].name, e->length,
                             known_items[known].length);
            if (rc)
                goto out;
            continue;
        }
        if (known_items[known].length && e->length > known_items[known].length) {
            rc = vhdx_report(s, VHDX_SEV_WARNING, VHDX_E_ITEM_VALUE, eoff + 20, 0, FIELD(),
                             "%s item has length %u; its value is the first %u bytes", known_items[known].name,
                             e->length, known_items[known].length);
            if (rc)
                goto out;
        }
        found[known] = 1;
        item_at[known] = e->offset;
#undef FIELD
    }
    if (users > VHDX_METADATA_MAX_USER) {
        rc = vhdx_report(s, VHDX_SEV_ERROR, VHDX_E_METADATA, base, 0, "metadata",
                         "%u user metadata items, at most 1024 allowed", users);
        if (rc)
            goto out;
    }
    qsort(keys, n, sizeof *keys, cmp_keyed_guid);
    for (uint32_t i = 1; i < n; i++) {
        if (memcmp(keys[i].key, keys[i - 1].key, sizeof keys[i].key) == 0) {
            char field[48];
            snprintf(field, sizeof field, "metadata[%u].ItemId", keys[i].idx);
            rc = vhdx_report(s, VHDX_SEV_ERROR, VHDX_E_METADATA, base + 32 + 32 * (uint64_t)keys[i].idx, 0, field,
                             "metadata ItemId/IsUser pair appears in entries %u and %u", keys[i - 1].idx, keys[i].idx);
            if (rc)
                goto out;
        }
    }
    rc = report_overlaps(iv, niv, "metadata", s);
    if (rc)
        goto out;
    for (int k = 0; k < ITEM_PARENT; k++) {
        if (!found[k]) {
            char field[48];
            snprintf(field, sizeof field, "metadata.%s", known_items[k].name);
            vhdx_report(s, VHDX_SEV_ERROR, VHDX_E_MISSING_ITEM, base, 0, field, "required metadata item %s is missing",
                        known_items[k].name);
            rc = VHDX_E_MISSING_ITEM;
            goto out;
        }
    }

    /* Item values. */
    uint8_t v[16];
    struct vhdx_file_parameters fp;
    rc = vhdx_io_read(dev, v, 8, base + item_at[ITEM_FP]);
    if (rc != 0)
        goto out;
    vhdx_file_parameters_decode(v, &fp);
    rc = vhdx_io_read(dev, v, 8, base + item_at[ITEM_SIZE]);
    if (rc != 0)
        goto out;
    uint64_t vsize = vhdx_get64(v);
    rc = vhdx_io_read(dev, disk_id->b, 16, base + item_at[ITEM_ID]);
    if (rc != 0)
        goto out;
    rc = vhdx_io_read(dev, v, 4, base + item_at[ITEM_LOGICAL]);
    if (rc != 0)
        goto out;
    uint32_t logical = vhdx_get32(v);
    rc = vhdx_io_read(dev, v, 4, base + item_at[ITEM_PHYSICAL]);
    if (rc != 0)
        goto out;
    uint32_t physical = vhdx_get32(v);
    *fp_flags = fp.flags;

#define ITEM_BAD(k, fmt, ...)                                                                                   \
    do {                                                                                                        \
        vhdx_report(s, VHDX_SEV_ERROR, VHDX_E_ITEM_VALUE, base + item_at[k], 0, "metadata." #k, fmt, __VA_ARGS__); \
        rc = VHDX_E_ITEM_VALUE;                                                                                 \
        goto out;                                                                                               \
    } while (0)
    if (fp.flags & VHDX_FP_HAS_PARENT) {
        vhdx_report(s, VHDX_SEV_ERROR, VHDX_E_UNSUPPORTED, base + item_at[ITEM_FP] + 4, 0, "metadata.FileParameters.HasParent",
                    "differencing disks (HasParent) are not supported");
        rc = VHDX_E_UNSUPPORTED;
        goto out;
    }
    if (fp.flags >> 2) {
        rc = vhdx_report(s, VHDX_SEV_WARNING, VHDX_E_ITEM_VALUE, base + item_at[ITEM_FP] + 4, 0,
                         "metadata.FileParameters.Reserved", "FileParameters reserved bits set (0x%x)", fp.flags);
        if (rc)
            goto out;
    }
    if (fp.block_size < VHDX_MIN_BLOCK_SIZE || fp.block_size > VHDX_MAX_BLOCK_SIZE ||
        (fp.block_size & (fp.block_size - 1)))
        ITEM_BAD(ITEM_FP, "BlockSize %u is not a power of two between 1 MiB and 256 MiB", fp.block_size);
    if (logical != 512 && logical != 4096)
        ITEM_BAD(ITEM_LOGICAL, "LogicalSectorSize %u is neither 512 nor 4096", logical);
    if (physical != 512 && physical != 4096)
        ITEM_BAD(ITEM_PHYSICAL, "PhysicalSectorSize %u is neither 512 nor 4096", physical);
    if (vsize == 0 || vsize > VHDX_MAX_VIRTUAL_SIZE || vsize % logical)
        ITEM_BAD(ITEM_SIZE, "VirtualDiskSize %llu is zero, above 64 TiB or not a multiple of %u",
                 (unsigned long long)vsize, logical);
#undef ITEM_BAD
    rc = vhdx_geometry_init(geo, vsize, fp.block_size, logical, physical);
out:
    free(buf);
    free(t);
    free(iv);
    free(keys);
    return rc;
}

/* ---- BAT ------------------------------------------------------------------- */
#define BAT_REPORT_LIMIT 64 /* per-entry problems reported before summarising */

int vhdx_v_bat(const uint8_t *bat, const struct vhdx_geometry *geo, const struct vhdx_layout *lay, int strict,
               uint64_t *alloc_end, struct vhdx_sink *s)
{
    const uint64_t n = geo->bat_entries;
    const uint64_t bs = geo->block_size;
    uint64_t reported = 0, suppressed = 0, max_end = 0;
    int rc = 0;

#define BAT_PROBLEM(sev, code, i, fmt, ...)                                                              \
    do {                                                                                                 \
        if (reported < BAT_REPORT_LIMIT) {                                                               \
            char f_[32];                                                                                 \
            snprintf(f_, sizeof f_, "BAT[%llu]", (unsigned long long)(i));                               \
            reported++;                                                                                  \
            int r_ = vhdx_report(s, sev, code, lay->bat_offset + 8 * (i), 0, f_, fmt, __VA_ARGS__);      \
            if (r_)                                                                                      \
                return r_;                                                                               \
        } else {                                                                                         \
            suppressed++;                                                                                \
        }                                                                                                \
    } while (0)

    /* Pass 1: states and ranges.  Every (chunk_ratio + 1)-th entry is a
     * sector-bitmap entry; a countdown finds them without a division. */
    uint64_t to_bitmap = geo->chunk_ratio;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t e = vhdx_get64(bat + 8 * i);
        unsigned st = vhdx_bat_state(e);
        uint64_t mb = vhdx_bat_offset_mb(e);
        int is_bitmap = to_bitmap == 0;
        to_bitmap = is_bitmap ? geo->chunk_ratio : to_bitmap - 1;
        if (strict && vhdx_bat_reserved(e))
            BAT_PROBLEM(VHDX_SEV_WARNING, VHDX_E_BAT, i, "reserved bits set (0x%llx)", (unsigned long long)e);
        if (is_bitmap) {
            if (strict && st != VHDX_SB_NOT_PRESENT)
                BAT_PROBLEM(VHDX_SEV_WARNING, VHDX_E_BAT, i,
                            "sector bitmap entry in state %u; a dynamic disk keeps them NOT_PRESENT", st);
            continue;
        }
        switch (st) {
        case VHDX_BAT_NOT_PRESENT:
        case VHDX_BAT_ZERO:
            continue;
        case VHDX_BAT_UNDEFINED:
        case VHDX_BAT_UNMAPPED:
            continue; /* read as zeros; the old offset is never used */
        case VHDX_BAT_FULLY_PRESENT:
            break;
        case VHDX_BAT_PARTIALLY_PRESENT:
            BAT_PROBLEM(VHDX_SEV_ERROR, VHDX_E_BAT, i, "%s", "state PARTIALLY_PRESENT is only valid in a differencing disk");
            continue;
        default:
            BAT_PROBLEM(VHDX_SEV_ERROR, VHDX_E_BAT, i, "state %u is reserved", st);
            continue;
        }
        uint64_t off = mb << 20;
        if (mb == 0 || mb > (BDEV_MAX_OFFSET >> 20)) {
            BAT_PROBLEM(VHDX_SEV_ERROR, VHDX_E_BAT, i, "FULLY_PRESENT block at FileOffsetMB %llu", (unsigned long long)mb);
            continue;
        }
        if (off + bs > lay->file_size) {
            BAT_PROBLEM(VHDX_SEV_ERROR, VHDX_E_TRUNCATED, i, "block [%llu, %llu) reaches past the end of the file (%llu bytes)",
                        (unsigned long long)off, (unsigned long long)(off + bs), (unsigned long long)lay->file_size);
            continue;
        }
        if (off + bs > max_end)
            max_end = off + bs;
    }

    /* Pass 2: overlap, with a bitmap of 1 MiB units up to the highest block. */
    uint64_t units = max_end >> 20;
    uint8_t *used = units ? vhdx_calloc((size_t)((units + 7) / 8), 1) : NULL;
    if (units && !used)
        return -ENOMEM;
    struct interval *st_iv = vhdx_calloc(2 + (lay->rt ? lay->rt->entry_count : 0), sizeof *st_iv);
    if (!st_iv) {
        free(used);
        return -ENOMEM;
    }
    size_t nst = 0;
    st_iv[nst++] = (struct interval){0, VHDX_HEADER_SECTION_SIZE, "the header section", UINT32_MAX};
    st_iv[nst++] = (struct interval){lay->log_offset, lay->log_offset + lay->log_length, "the log", UINT32_MAX};
    for (uint32_t r = 0; lay->rt && r < lay->rt->entry_count; r++) {
        const struct vhdx_region_entry *e = &lay->rt->entries[r];
        st_iv[nst++] = (struct interval){e->file_offset, e->file_offset + e->length, "region", r};
    }
    for (size_t k = 0; k < nst && used; k++) {
        for (uint64_t u = st_iv[k].lo >> 20; u < units && u < (st_iv[k].hi + VHDX_MiB - 1) >> 20; u++)
            used[u / 8] |= (uint8_t)(1u << (u % 8));
    }
    to_bitmap = geo->chunk_ratio;
    for (uint64_t i = 0; i < n && used; i++) {
        uint64_t e = vhdx_get64(bat + 8 * i);
        int is_bitmap = to_bitmap == 0;
        to_bitmap = is_bitmap ? geo->chunk_ratio : to_bitmap - 1;
        if (is_bitmap || vhdx_bat_state(e) != VHDX_BAT_FULLY_PRESENT)
            continue;
        uint64_t mb = vhdx_bat_offset_mb(e);
        if (mb == 0 || (mb << 20) + bs > lay->file_size || mb > (BDEV_MAX_OFFSET >> 20))
            continue;
        for (uint64_t u = mb; u < mb + (bs >> 20); u++) {
            if (used[u / 8] & (1u << (u % 8))) {
                const char *what = "another block";
                char wbuf[64];
                for (size_t k = 0; k < nst; k++)
                    if ((u << 20) >= st_iv[k].lo && (u << 20) < st_iv[k].hi)
                        what = iv_name(&st_iv[k], wbuf, sizeof wbuf);
                if (reported < BAT_REPORT_LIMIT) {
                    char f_[32];
                    snprintf(f_, sizeof f_, "BAT[%llu]", (unsigned long long)i);
                    reported++;
                    rc = vhdx_report(s, VHDX_SEV_ERROR, VHDX_E_OVERLAP, lay->bat_offset + 8 * i, 0, f_,
                                     "block [%llu, %llu) overlaps %s at %llu", (unsigned long long)(mb << 20),
                                     (unsigned long long)((mb << 20) + bs), what, (unsigned long long)(u << 20));
                    if (rc) {
                        free(used);
                        free(st_iv);
                        return rc;
                    }
                } else {
                    suppressed++;
                }
                break;
            }
            used[u / 8] |= (uint8_t)(1u << (u % 8));
        }
    }
    free(used);
    free(st_iv);
    if (suppressed) {
        rc = vhdx_report(s, VHDX_SEV_ERROR, VHDX_E_BAT, lay->bat_offset, 0, "BAT",
                         "%llu further BAT problems not listed", (unsigned long long)suppressed);
        if (rc)
            return rc;
    }
    *alloc_end = max_end;
    return 0;
#undef BAT_PROBLEM
}
