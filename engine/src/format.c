/*
 * format.c - decode/encode pairs for every VHDX on-disk record.
 *
 * Guarantees: see format.h.  Every wire layout is pinned by _Static_assert
 * below (last field offset + size == record size), so a field-offset typo is
 * a compile error rather than a silent corruption.
 */
#include "vhdx/format.h"
#include "vhdx/bdev.h"
#include "vhdx/crc32c.h"
#include "vhdx/errors.h"

#include <string.h>

/* ---- wire-size pins ------------------------------------------------------ */
_Static_assert(VHDX_HDR_RESERVED + 4016 == VHDX_HEADER_SIZE, "header is 4 KiB");
_Static_assert(VHDX_LOGE_LAST_FILE_OFFSET + 8 == VHDX_LOG_HEADER_SIZE, "log entry header is 64 bytes");
_Static_assert(VHDX_LOG_HEADER_SIZE + VHDX_LOG_DESC_FIRST * VHDX_LOG_DESC_SIZE == VHDX_LOG_SECTOR,
               "first descriptor sector: header + 126 descriptors");
_Static_assert(VHDX_LOG_DESC_PER_SECTOR * VHDX_LOG_DESC_SIZE == VHDX_LOG_SECTOR,
               "later descriptor sectors: 128 descriptors");
_Static_assert(16 + VHDX_REGION_MAX_ENTRIES * 32 <= VHDX_REGION_TABLE_SIZE, "region table fits 64 KiB");
_Static_assert(32 + VHDX_METADATA_MAX_ENTRIES * 32 <= VHDX_METADATA_TABLE_SIZE, "metadata table fits 64 KiB");
_Static_assert(8 + VHDX_CREATOR_BYTES == VHDX_FILE_ID_SIZE, "file identifier is signature + creator");
_Static_assert(4 + 4 + 4084 + 4 == VHDX_LOG_SECTOR, "data sector: sig, seq high, 4084 bytes, seq low");

/* ---- known GUIDs (on-disk byte order) ------------------------------------ */
#define G(a, b, c, d0, d1, d2, d3, d4, d5, d6, d7)                                                 \
    {{(uint8_t)(a), (uint8_t)((a) >> 8), (uint8_t)((a) >> 16), (uint8_t)((a) >> 24),               \
      (uint8_t)(b), (uint8_t)((b) >> 8), (uint8_t)(c), (uint8_t)((c) >> 8), d0, d1, d2, d3, d4, d5, \
      d6, d7}}
const struct vhdx_guid VHDX_GUID_REGION_BAT =
    G(0x2DC27766u, 0xF623u, 0x4200u, 0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08);
const struct vhdx_guid VHDX_GUID_REGION_METADATA =
    G(0x8B7CA206u, 0x4790u, 0x4B9Au, 0xB8, 0xFE, 0x57, 0x5F, 0x05, 0x0F, 0x88, 0x6E);
const struct vhdx_guid VHDX_GUID_ITEM_FILE_PARAMETERS =
    G(0xCAA16737u, 0xFA36u, 0x4D43u, 0xB3, 0xB6, 0x33, 0xF0, 0xAA, 0x44, 0xE7, 0x6B);
const struct vhdx_guid VHDX_GUID_ITEM_VIRTUAL_DISK_SIZE =
    G(0x2FA54224u, 0xCD1Bu, 0x4876u, 0xB2, 0x11, 0x5D, 0xBE, 0xD8, 0x3B, 0xF4, 0xB8);
const struct vhdx_guid VHDX_GUID_ITEM_VIRTUAL_DISK_ID =
    G(0xBECA12ABu, 0xB2E6u, 0x4523u, 0x93, 0xEF, 0xC3, 0x09, 0xE0, 0x00, 0xC7, 0x46);
const struct vhdx_guid VHDX_GUID_ITEM_LOGICAL_SECTOR_SIZE =
    G(0x8141BF1Du, 0xA96Fu, 0x4709u, 0xBA, 0x47, 0xF2, 0x33, 0xA8, 0xFA, 0xAB, 0x5F);
const struct vhdx_guid VHDX_GUID_ITEM_PHYSICAL_SECTOR_SIZE =
    G(0xCDA348C7u, 0x445Du, 0x4471u, 0x9C, 0xC9, 0xE9, 0x88, 0x52, 0x51, 0xC5, 0x56);
const struct vhdx_guid VHDX_GUID_ITEM_PARENT_LOCATOR =
    G(0xA8D35F2Du, 0xB30Bu, 0x454Du, 0xAB, 0xF7, 0xD3, 0xD8, 0x48, 0x34, 0xAB, 0x0C);
#undef G

static uint32_t crc_with_zeroed_field(const uint8_t *buf, size_t len, size_t field_off)
{
    static const uint8_t zero4[4];
    uint32_t c = crc32c(0, buf, field_off);
    c = crc32c(c, zero4, 4);
    return crc32c(c, buf + field_off + 4, len - field_off - 4);
}

/* ---- file identifier ----------------------------------------------------- */
int vhdx_file_id_decode(const uint8_t *buf, struct vhdx_file_id *out)
{
    memset(out, 0, sizeof *out);
    if (vhdx_get64(buf) != VHDX_SIG_FILE)
        return VHDX_E_FILE_SIGNATURE;
    size_t n = 0;
    for (size_t i = 0; i < VHDX_CREATOR_BYTES / 2 && n < sizeof out->creator - 1; i++) {
        uint16_t ch = vhdx_get16(buf + 8 + 2 * i);
        if (ch == 0)
            break;
        out->creator[n++] = (ch >= 0x20 && ch < 0x7F) ? (char)ch : '?';
    }
    out->creator[n] = '\0';
    return 0;
}

void vhdx_file_id_encode(const char *creator, uint8_t *buf)
{
    memset(buf, 0, VHDX_FILE_ID_SIZE);
    vhdx_put64(buf, VHDX_SIG_FILE);
    for (size_t i = 0; creator && creator[i] && i < 255; i++)
        vhdx_put16(buf + 8 + 2 * i, (uint8_t)creator[i]);
}

/* ---- header -------------------------------------------------------------- */
int vhdx_header_decode(const uint8_t buf[VHDX_HEADER_SIZE], struct vhdx_header *out)
{
    out->checksum = vhdx_get32(buf + VHDX_HDR_CHECKSUM);
    out->sequence = vhdx_get64(buf + VHDX_HDR_SEQUENCE);
    memcpy(out->file_write_guid.b, buf + VHDX_HDR_FILE_WRITE_GUID, 16);
    memcpy(out->data_write_guid.b, buf + VHDX_HDR_DATA_WRITE_GUID, 16);
    memcpy(out->log_guid.b, buf + VHDX_HDR_LOG_GUID, 16);
    out->log_version = vhdx_get16(buf + VHDX_HDR_LOG_VERSION);
    out->version = vhdx_get16(buf + VHDX_HDR_VERSION);
    out->log_length = vhdx_get32(buf + VHDX_HDR_LOG_LENGTH);
    out->log_offset = vhdx_get64(buf + VHDX_HDR_LOG_OFFSET);
    if (vhdx_get32(buf + VHDX_HDR_SIGNATURE) != VHDX_SIG_HEAD)
        return VHDX_E_HEADER_SIGNATURE;
    if (crc_with_zeroed_field(buf, VHDX_HEADER_SIZE, VHDX_HDR_CHECKSUM) != out->checksum)
        return VHDX_E_HEADER_CHECKSUM;
    return 0;
}

int vhdx_header_check_fields(const struct vhdx_header *h, const char **field, uint32_t *offset)
{
#define BAD(code, name, off)  \
    do {                      \
        *field = name;        \
        *offset = off;        \
        return code;          \
    } while (0)
    if (h->version != 1)
        BAD(VHDX_E_VERSION, "Version", VHDX_HDR_VERSION);
    if (h->log_version != 0 && !vhdx_guid_is_zero(&h->log_guid))
        BAD(VHDX_E_LOG_VERSION, "LogVersion", VHDX_HDR_LOG_VERSION);
    if (h->log_length == 0 || h->log_length % VHDX_MiB != 0)
        BAD(VHDX_E_HEADER_FIELD, "LogLength", VHDX_HDR_LOG_LENGTH);
    if (h->log_offset < VHDX_MiB || h->log_offset % VHDX_MiB != 0 || h->log_offset > BDEV_MAX_OFFSET)
        BAD(VHDX_E_HEADER_FIELD, "LogOffset", VHDX_HDR_LOG_OFFSET);
    return 0;
#undef BAD
}

void vhdx_header_encode(struct vhdx_header *h, uint8_t buf[VHDX_HEADER_SIZE])
{
    memset(buf, 0, VHDX_HEADER_SIZE);
    vhdx_put32(buf + VHDX_HDR_SIGNATURE, VHDX_SIG_HEAD);
    vhdx_put64(buf + VHDX_HDR_SEQUENCE, h->sequence);
    memcpy(buf + VHDX_HDR_FILE_WRITE_GUID, h->file_write_guid.b, 16);
    memcpy(buf + VHDX_HDR_DATA_WRITE_GUID, h->data_write_guid.b, 16);
    memcpy(buf + VHDX_HDR_LOG_GUID, h->log_guid.b, 16);
    vhdx_put16(buf + VHDX_HDR_LOG_VERSION, h->log_version);
    vhdx_put16(buf + VHDX_HDR_VERSION, h->version);
    vhdx_put32(buf + VHDX_HDR_LOG_LENGTH, h->log_length);
    vhdx_put64(buf + VHDX_HDR_LOG_OFFSET, h->log_offset);
    h->checksum = crc32c(0, buf, VHDX_HEADER_SIZE);
    vhdx_put32(buf + VHDX_HDR_CHECKSUM, h->checksum);
}

/* ---- region table -------------------------------------------------------- */
int vhdx_region_table_decode(const uint8_t buf[VHDX_REGION_TABLE_SIZE], struct vhdx_region_table *out)
{
    out->checksum = vhdx_get32(buf + 4);
    out->entry_count = 0;
    if (vhdx_get32(buf) != VHDX_SIG_REGI)
        return VHDX_E_REGION_SIGNATURE;
    uint32_t count = vhdx_get32(buf + 8);
    if (count > VHDX_REGION_MAX_ENTRIES)
        return VHDX_E_REGION_FIELD;
    if (crc_with_zeroed_field(buf, VHDX_REGION_TABLE_SIZE, 4) != out->checksum)
        return VHDX_E_REGION_CHECKSUM;
    out->entry_count = count;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *e = buf + 16 + 32 * i;
        struct vhdx_region_entry *r = &out->entries[i];
        memcpy(r->guid.b, e, 16);
        r->file_offset = vhdx_get64(e + 16);
        r->length = vhdx_get32(e + 24);
        r->required = vhdx_get32(e + 28);
    }
    return 0;
}

void vhdx_region_table_encode(struct vhdx_region_table *t, uint8_t buf[VHDX_REGION_TABLE_SIZE])
{
    memset(buf, 0, VHDX_REGION_TABLE_SIZE);
    vhdx_put32(buf, VHDX_SIG_REGI);
    vhdx_put32(buf + 8, t->entry_count);
    for (uint32_t i = 0; i < t->entry_count && i < VHDX_REGION_MAX_ENTRIES; i++) {
        uint8_t *e = buf + 16 + 32 * i;
        const struct vhdx_region_entry *r = &t->entries[i];
        memcpy(e, r->guid.b, 16);
        vhdx_put64(e + 16, r->file_offset);
        vhdx_put32(e + 24, r->length);
        vhdx_put32(e + 28, r->required);
    }
    t->checksum = crc32c(0, buf, VHDX_REGION_TABLE_SIZE);
    vhdx_put32(buf + 4, t->checksum);
}

/* ---- metadata table ------------------------------------------------------ */
size_t vhdx_metadata_table_used(const uint8_t hdr[32])
{
    uint16_t count = vhdx_get16(hdr + 10);
    if (count > VHDX_METADATA_MAX_ENTRIES)
        count = VHDX_METADATA_MAX_ENTRIES;
    return 32 + (size_t)count * 32;
}

int vhdx_metadata_table_decode(const uint8_t *buf, size_t len, struct vhdx_metadata_table *out)
{
    out->entry_count = 0;
    if (len < 32)
        return VHDX_E_METADATA;
    out->reserved = vhdx_get16(buf + 8);
    if (vhdx_get64(buf) != VHDX_SIG_METADATA)
        return VHDX_E_METADATA_SIGNATURE;
    uint16_t count = vhdx_get16(buf + 10);
    if (count > VHDX_METADATA_MAX_ENTRIES || len < 32 + (size_t)count * 32)
        return VHDX_E_METADATA;
    out->entry_count = count;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *e = buf + 32 + 32 * i;
        struct vhdx_metadata_entry *m = &out->entries[i];
        memcpy(m->item_id.b, e, 16);
        m->offset = vhdx_get32(e + 16);
        m->length = vhdx_get32(e + 20);
        m->flags = vhdx_get32(e + 24);
        m->reserved2 = vhdx_get32(e + 28);
    }
    return 0;
}

void vhdx_metadata_table_encode(const struct vhdx_metadata_table *t, uint8_t buf[VHDX_METADATA_TABLE_SIZE])
{
    memset(buf, 0, VHDX_METADATA_TABLE_SIZE);
    vhdx_put64(buf, VHDX_SIG_METADATA);
    vhdx_put16(buf + 8, t->reserved);
    vhdx_put16(buf + 10, t->entry_count);
    for (uint32_t i = 0; i < t->entry_count && i < VHDX_METADATA_MAX_ENTRIES; i++) {
        uint8_t *e = buf + 32 + 32 * i;
        const struct vhdx_metadata_entry *m = &t->entries[i];
        memcpy(e, m->item_id.b, 16);
        vhdx_put32(e + 16, m->offset);
        vhdx_put32(e + 20, m->length);
        vhdx_put32(e + 24, m->flags);
        vhdx_put32(e + 28, m->reserved2);
    }
}

void vhdx_file_parameters_decode(const uint8_t buf[8], struct vhdx_file_parameters *out)
{
    out->block_size = vhdx_get32(buf);
    out->flags = vhdx_get32(buf + 4);
}

void vhdx_file_parameters_encode(const struct vhdx_file_parameters *p, uint8_t buf[8])
{
    vhdx_put32(buf, p->block_size);
    vhdx_put32(buf + 4, p->flags);
}

/* ---- geometry ------------------------------------------------------------ */
int vhdx_geometry_init(struct vhdx_geometry *g, uint64_t virtual_size, uint32_t block_size,
                       uint32_t logical_sector, uint32_t physical_sector)
{
    memset(g, 0, sizeof *g);
    if (block_size < VHDX_MIN_BLOCK_SIZE || block_size > VHDX_MAX_BLOCK_SIZE ||
        (block_size & (block_size - 1)) != 0)
        return VHDX_E_ITEM_VALUE;
    if (logical_sector != 512 && logical_sector != 4096)
        return VHDX_E_ITEM_VALUE;
    if (physical_sector != 512 && physical_sector != 4096)
        return VHDX_E_ITEM_VALUE;
    if (virtual_size == 0 || virtual_size > VHDX_MAX_VIRTUAL_SIZE || virtual_size % logical_sector != 0)
        return VHDX_E_ITEM_VALUE;
    g->virtual_size = virtual_size;
    g->block_size = block_size;
    g->logical_sector = logical_sector;
    g->physical_sector = physical_sector;
    g->chunk_ratio = (VHDX_SECTORS_PER_BITMAP * logical_sector) / block_size;
    g->data_blocks = (virtual_size + block_size - 1) / block_size;
    g->bitmap_blocks = (g->data_blocks + g->chunk_ratio - 1) / g->chunk_ratio;
    g->bat_entries = g->data_blocks + (g->data_blocks - 1) / g->chunk_ratio;
    return 0;
}

/* ---- log entry header ---------------------------------------------------- */
int vhdx_log_header_decode(const uint8_t buf[VHDX_LOG_HEADER_SIZE], struct vhdx_log_header *out)
{
    out->checksum = vhdx_get32(buf + VHDX_LOGE_CHECKSUM);
    out->entry_length = vhdx_get32(buf + VHDX_LOGE_ENTRY_LENGTH);
    out->tail = vhdx_get32(buf + VHDX_LOGE_TAIL);
    out->sequence = vhdx_get64(buf + VHDX_LOGE_SEQUENCE);
    out->descriptor_count = vhdx_get32(buf + VHDX_LOGE_DESC_COUNT);
    out->reserved = vhdx_get32(buf + VHDX_LOGE_RESERVED);
    memcpy(out->log_guid.b, buf + VHDX_LOGE_LOG_GUID, 16);
    out->flushed_file_offset = vhdx_get64(buf + VHDX_LOGE_FLUSHED_FILE_OFFSET);
    out->last_file_offset = vhdx_get64(buf + VHDX_LOGE_LAST_FILE_OFFSET);
    if (vhdx_get32(buf + VHDX_LOGE_SIGNATURE) != VHDX_SIG_LOGE)
        return VHDX_E_LOG_SIGNATURE;
    if (out->entry_length == 0 || out->entry_length % VHDX_LOG_SECTOR != 0)
        return VHDX_E_LOG_LENGTH;
    if (out->tail % VHDX_LOG_SECTOR != 0 || out->sequence == 0 || out->reserved != 0 ||
        out->flushed_file_offset % VHDX_MiB != 0 || out->last_file_offset % VHDX_MiB != 0)
        return VHDX_E_LOG_FIELD;
    return 0;
}

void vhdx_log_header_encode(const struct vhdx_log_header *h, uint8_t buf[VHDX_LOG_HEADER_SIZE])
{
    memset(buf, 0, VHDX_LOG_HEADER_SIZE);
    vhdx_put32(buf + VHDX_LOGE_SIGNATURE, VHDX_SIG_LOGE);
    vhdx_put32(buf + VHDX_LOGE_CHECKSUM, h->checksum);
    vhdx_put32(buf + VHDX_LOGE_ENTRY_LENGTH, h->entry_length);
    vhdx_put32(buf + VHDX_LOGE_TAIL, h->tail);
    vhdx_put64(buf + VHDX_LOGE_SEQUENCE, h->sequence);
    vhdx_put32(buf + VHDX_LOGE_DESC_COUNT, h->descriptor_count);
    vhdx_put32(buf + VHDX_LOGE_RESERVED, h->reserved);
    memcpy(buf + VHDX_LOGE_LOG_GUID, h->log_guid.b, 16);
    vhdx_put64(buf + VHDX_LOGE_FLUSHED_FILE_OFFSET, h->flushed_file_offset);
    vhdx_put64(buf + VHDX_LOGE_LAST_FILE_OFFSET, h->last_file_offset);
}

/* ---- descriptors --------------------------------------------------------- */
int vhdx_log_desc_decode(const uint8_t buf[VHDX_LOG_DESC_SIZE], struct vhdx_log_desc *out)
{
    memset(out, 0, sizeof *out);
    uint32_t sig = vhdx_get32(buf);
    out->file_offset = vhdx_get64(buf + 16);
    out->sequence = vhdx_get64(buf + 24);
    if (sig == VHDX_SIG_ZERO) {
        out->kind = VHDX_DESC_ZERO;
        out->reserved = vhdx_get32(buf + 4);
        out->zero_length = vhdx_get64(buf + 8);
        if (out->reserved != 0 || out->zero_length % VHDX_LOG_SECTOR != 0)
            return VHDX_E_LOG_DESC_FIELD;
    } else if (sig == VHDX_SIG_DESC) {
        out->kind = VHDX_DESC_DATA;
        out->trailing = vhdx_get32(buf + 4);
        out->leading = vhdx_get64(buf + 8);
    } else {
        return VHDX_E_LOG_DESC_SIGNATURE;
    }
    if (out->file_offset % VHDX_LOG_SECTOR != 0)
        return VHDX_E_LOG_DESC_FIELD;
    return 0;
}

void vhdx_log_desc_encode(const struct vhdx_log_desc *d, uint8_t buf[VHDX_LOG_DESC_SIZE])
{
    memset(buf, 0, VHDX_LOG_DESC_SIZE);
    if (d->kind == VHDX_DESC_ZERO) {
        vhdx_put32(buf, VHDX_SIG_ZERO);
        vhdx_put32(buf + 4, d->reserved);
        vhdx_put64(buf + 8, d->zero_length);
    } else {
        vhdx_put32(buf, VHDX_SIG_DESC);
        vhdx_put32(buf + 4, d->trailing);
        vhdx_put64(buf + 8, d->leading);
    }
    vhdx_put64(buf + 16, d->file_offset);
    vhdx_put64(buf + 24, d->sequence);
}

/* ---- data sectors -------------------------------------------------------- */
void vhdx_log_data_split(const uint8_t update[VHDX_LOG_SECTOR], uint64_t sequence,
                         struct vhdx_log_desc *desc, uint8_t sector[VHDX_LOG_SECTOR])
{
    desc->kind = VHDX_DESC_DATA;
    desc->reserved = 0;
    desc->zero_length = 0;
    desc->leading = vhdx_get64(update);
    desc->trailing = vhdx_get32(update + 4092);
    desc->sequence = sequence;
    vhdx_put32(sector, VHDX_SIG_DATA);
    vhdx_put32(sector + 4, (uint32_t)(sequence >> 32));
    memcpy(sector + 8, update + 8, 4084);
    vhdx_put32(sector + 4092, (uint32_t)sequence);
}

int vhdx_log_data_check(const uint8_t sector[VHDX_LOG_SECTOR], uint64_t sequence)
{
    if (vhdx_get32(sector) != VHDX_SIG_DATA)
        return VHDX_E_LOG_DATA_SIGNATURE;
    if (vhdx_get32(sector + 4) != (uint32_t)(sequence >> 32) || vhdx_get32(sector + 4092) != (uint32_t)sequence)
        return VHDX_E_LOG_DATA_SEQUENCE;
    return 0;
}

int vhdx_log_data_join(const struct vhdx_log_desc *desc, const uint8_t sector[VHDX_LOG_SECTOR],
                       uint64_t sequence, uint8_t update[VHDX_LOG_SECTOR])
{
    int rc = vhdx_log_data_check(sector, sequence);
    if (rc != 0)
        return rc;
    vhdx_put64(update, desc->leading);
    memcpy(update + 8, sector + 8, 4084);
    vhdx_put32(update + 4092, desc->trailing);
    return 0;
}
