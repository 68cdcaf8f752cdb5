/*
 * log_entry.c - encoding and validating single log entries.
 *
 * Guarantees:
 *  - vhdx_log_entry_build() emits entries that vhdx_log_entry_validate()
 *    accepts for the same GUID and any ring at least as long as the entry;
 *  - validation reads entry sectors strictly in increasing order through a
 *    fetch callback and stops at the first failed check, so a caller that
 *    fetches lazily pays only for the sectors before the failure;
 *  - validation never reads past EntryLength and never trusts a count
 *    before checking it against EntryLength.
 */
#include "log_internal.h"

#include <string.h>

#include "vhdx/crc32c.h"
#include "vhdx/errors.h"

static int is_zero_page(const uint8_t *p)
{
    static const uint8_t zero[64];
    for (size_t i = 0; i < VHDX_LOG_SECTOR; i += sizeof zero)
        if (memcmp(p + i, zero, sizeof zero) != 0)
            return 0;
    return 1;
}

/* Walks the updates and yields descriptors, merging adjacent zero updates
 * whose targets are contiguous.  Returns the descriptor count; fills kinds
 * via the callback when non-NULL. */
typedef void (*desc_sink)(void *ctx, const struct vhdx_log_update *u, uint64_t zero_off, uint64_t zero_len);

static size_t walk_descriptors(const struct vhdx_log_update *u, size_t n, desc_sink sink, void *ctx,
                               size_t *n_data)
{
    size_t count = 0, data = 0;
    uint64_t z_off = 0, z_len = 0; /* pending merged zero run */
    for (size_t i = 0; i < n; i++) {
        int zero = u[i].data == NULL || is_zero_page(u[i].data);
        uint64_t len = u[i].data == NULL ? u[i].zero_length : VHDX_LOG_SECTOR;
        if (zero) {
            if (z_len != 0 && z_off + z_len == u[i].file_offset) {
                z_len += len;
                continue;
            }
            if (z_len != 0) {
                if (sink)
                    sink(ctx, NULL, z_off, z_len);
                count++;
            }
            z_off = u[i].file_offset;
            z_len = len;
            continue;
        }
        if (z_len != 0) {
            if (sink)
                sink(ctx, NULL, z_off, z_len);
            count++;
            z_len = 0;
        }
        if (sink)
            sink(ctx, &u[i], 0, 0);
        count++;
        data++;
    }
    if (z_len != 0) {
        if (sink)
            sink(ctx, NULL, z_off, z_len);
        count++;
    }
    if (n_data)
        *n_data = data;
    return count;
}

size_t vhdx_log_entry_size(const struct vhdx_log_update *u, size_t n)
{
    size_t n_data;
    size_t n_desc = walk_descriptors(u, n, NULL, NULL, &n_data);
    return (size_t)(vhdx_log_desc_sectors(n_desc) + n_data) * VHDX_LOG_SECTOR;
}

struct build_ctx {
    uint8_t *out;
    uint64_t sequence;
    size_t desc_index;
    size_t data_index;
    size_t data_base; /* byte offset of the first data sector */
};

static void build_sink(void *vctx, const struct vhdx_log_update *u, uint64_t zero_off, uint64_t zero_len)
{
    struct build_ctx *c = vctx;
    struct vhdx_log_desc d;
    memset(&d, 0, sizeof d);
    if (u) {
        uint8_t *sector = c->out + c->data_base + c->data_index * VHDX_LOG_SECTOR;
        vhdx_log_data_split(u->data, c->sequence, &d, sector);
        d.file_offset = u->file_offset;
        c->data_index++;
    } else {
        d.kind = VHDX_DESC_ZERO;
        d.zero_length = zero_len;
        d.file_offset = zero_off;
        d.sequence = c->sequence;
    }
    vhdx_log_desc_encode(&d, c->out + vhdx_log_desc_offset(c->desc_index));
    c->desc_index++;
}

size_t vhdx_log_entry_build(const struct vhdx_log_entry_params *p, const struct vhdx_log_update *u, size_t n,
                            uint8_t *out)
{
    size_t n_data;
    size_t n_desc = walk_descriptors(u, n, NULL, NULL, &n_data);
    size_t desc_sectors = (size_t)vhdx_log_desc_sectors(n_desc);
    size_t total = (desc_sectors + n_data) * VHDX_LOG_SECTOR;
    memset(out, 0, desc_sectors * VHDX_LOG_SECTOR);

    struct build_ctx c = {out, p->sequence, 0, 0, desc_sectors * VHDX_LOG_SECTOR};
    walk_descriptors(u, n, build_sink, &c, NULL);

    struct vhdx_log_header h;
    memset(&h, 0, sizeof h);
    h.entry_length = (uint32_t)total;
    h.tail = p->tail;
    h.sequence = p->sequence;
    h.descriptor_count = (uint32_t)n_desc;
    h.log_guid = p->log_guid;
    h.flushed_file_offset = p->flushed_file_offset;
    h.last_file_offset = p->last_file_offset;
    h.checksum = 0;
    vhdx_log_header_encode(&h, out);
    uint32_t crc = crc32c(0, out, total);
    vhdx_put32(out + VHDX_LOGE_CHECKSUM, crc);
    return total;
}

/* ---- validation ------------------------------------------------------------ */
int vhdx_log_validate_core(vhdx_log_fetch_fn fetch, void *ctx, const struct vhdx_guid *guid, uint32_t log_length,
                           struct vhdx_log_header *hdr, struct vhdx_log_entry_stats *stats)
{
    const uint8_t *buf = fetch(ctx, 0);
    if (!buf)
        return VHDX_E_SHORT_IO;
    memset(stats, 0, sizeof *stats);
    int rc = vhdx_log_header_decode(buf, hdr);
    if (rc != 0)
        return rc;
    if (!vhdx_guid_equal(&hdr->log_guid, guid))
        return VHDX_E_LOG_GUID;
    if (hdr->entry_length > log_length)
        return VHDX_E_LOG_LENGTH;
    if (hdr->tail >= log_length)
        return VHDX_E_LOG_FIELD;
    uint64_t sectors = hdr->entry_length / VHDX_LOG_SECTOR;
    uint64_t desc_sectors = vhdx_log_desc_sectors(hdr->descriptor_count);
    if (desc_sectors > sectors)
        return VHDX_E_LOG_LENGTH;

    /* Descriptors, sector by sector. */
    uint64_t n_data = 0, n_zero = 0;
    for (uint64_t i = 0; i < hdr->descriptor_count; i++) {
        uint64_t off = vhdx_log_desc_offset(i);
        buf = fetch(ctx, off / VHDX_LOG_SECTOR);
        if (!buf)
            return VHDX_E_SHORT_IO;
        struct vhdx_log_desc d;
        rc = vhdx_log_desc_decode(buf + off, &d);
        if (rc != 0)
            return rc;
        if (d.sequence != hdr->sequence)
            return VHDX_E_LOG_DESC_SEQUENCE;
        if (d.kind == VHDX_DESC_DATA)
            n_data++;
        else
            n_zero++;
    }
    if (desc_sectors + n_data != sectors)
        return VHDX_E_LOG_LENGTH;

    /* Data sectors. */
    for (uint64_t k = 0; k < n_data; k++) {
        buf = fetch(ctx, desc_sectors + k);
        if (!buf)
            return VHDX_E_SHORT_IO;
        rc = vhdx_log_data_check(buf + (desc_sectors + k) * VHDX_LOG_SECTOR, hdr->sequence);
        if (rc != 0)
            return rc;
    }

    /* Checksum over the whole entry, with the checksum field as zero. */
    static const uint8_t zero4[4];
    uint32_t c = crc32c(0, buf, VHDX_LOGE_CHECKSUM);
    c = crc32c(c, zero4, 4);
    c = crc32c(c, buf + VHDX_LOGE_CHECKSUM + 4, hdr->entry_length - VHDX_LOGE_CHECKSUM - 4);
    if (c != hdr->checksum)
        return VHDX_E_LOG_CRC;
    stats->data_descriptors = (uint32_t)n_data;
    stats->zero_descriptors = (uint32_t)n_zero;
    return 0;
}

struct flat_ctx {
    const uint8_t *buf;
    size_t len;
};

static const uint8_t *flat_fetch(void *vctx, uint64_t sector)
{
    struct flat_ctx *c = vctx;
    if ((sector + 1) * VHDX_LOG_SECTOR > c->len)
        return NULL;
    return c->buf;
}

int vhdx_log_entry_validate(const uint8_t *buf, size_t len, const struct vhdx_guid *guid, uint32_t log_length,
                            struct vhdx_log_header *hdr)
{
    struct flat_ctx c = {buf, len};
    struct vhdx_log_entry_stats stats;
    return vhdx_log_validate_core(flat_fetch, &c, guid, log_length, hdr, &stats);
}
