/*
 * format.h - the VHDX v2 on-disk records: constants, field offsets and
 * decode/encode pairs over byte buffers (MS-VHDX section 2).
 *
 * Rules every codec here keeps:
 *  - bytes in, checked values out: fields are read with explicit
 *    little-endian helpers, never by casting a buffer onto a struct;
 *  - decode validates in a fixed order (signature, counts and bounds,
 *    checksum) and returns a distinct VHDX_E_* code for each step, so a
 *    caller can say exactly why a record was rejected;
 *  - encode writes every byte of the record (reserved bytes zero) and
 *    computes the checksum where the record has one;
 *  - decode(encode(x)) == x for every field a record carries;
 *  - no function allocates, prints or reads beyond the stated buffer size.
 */
#ifndef VHDX_FORMAT_H
#define VHDX_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vhdx/guid.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- sizes and fixed offsets ------------------------------------------ */
#define VHDX_KiB UINT64_C(1024)
#define VHDX_MiB (UINT64_C(1024) * 1024)
#define VHDX_GiB (UINT64_C(1024) * 1024 * 1024)
#define VHDX_TiB (UINT64_C(1024) * 1024 * 1024 * 1024)

#define VHDX_FILE_ID_OFFSET 0u
#define VHDX_HEADER1_OFFSET (64u * 1024)
#define VHDX_HEADER2_OFFSET (128u * 1024)
#define VHDX_REGION1_OFFSET (192u * 1024)
#define VHDX_REGION2_OFFSET (256u * 1024)
#define VHDX_HEADER_SECTION_SIZE (1024u * 1024)
#define VHDX_PROTECTED_PREFIX (192u * 1024) /* file id + headers: the log never writes here */

#define VHDX_FILE_ID_SIZE 520u       /* signature + creator */
#define VHDX_CREATOR_BYTES 512u      /* UTF-16LE */
#define VHDX_HEADER_SIZE 4096u       /* checksummed part of a header slot */
#define VHDX_REGION_TABLE_SIZE 65536u
#define VHDX_REGION_MAX_ENTRIES 2047u
#define VHDX_METADATA_TABLE_SIZE 65536u
#define VHDX_METADATA_MAX_ENTRIES 2047u
#define VHDX_METADATA_MAX_USER 1024u
#define VHDX_METADATA_ITEM_MAX (1024u * 1024)
#define VHDX_LOG_SECTOR 4096u
#define VHDX_LOG_HEADER_SIZE 64u
#define VHDX_LOG_DESC_SIZE 32u
#define VHDX_LOG_DESC_FIRST 126u     /* descriptors in the first descriptor sector */
#define VHDX_LOG_DESC_PER_SECTOR 128u /* in each later one */

#define VHDX_MIN_BLOCK_SIZE (1u * 1024 * 1024)
#define VHDX_MAX_BLOCK_SIZE (256u * 1024 * 1024)
#define VHDX_MAX_VIRTUAL_SIZE (64 * VHDX_TiB)
#define VHDX_SECTORS_PER_BITMAP (UINT64_C(1) << 23) /* 2^23 sectors per bitmap block */

/* ---- signatures (little-endian u32/u64 of the ASCII text) -------------- */
#define VHDX_SIG_FILE UINT64_C(0x656C696678646876) /* "vhdxfile" */
#define VHDX_SIG_HEAD 0x64616568u                  /* "head" */
#define VHDX_SIG_REGI 0x69676572u                  /* "regi" */
#define VHDX_SIG_METADATA UINT64_C(0x617461646174656D) /* "metadata" */
#define VHDX_SIG_LOGE 0x65676F6Cu                  /* "loge" */
#define VHDX_SIG_ZERO 0x6F72657Au                  /* "zero" */
#define VHDX_SIG_DESC 0x63736564u                  /* "desc" */
#define VHDX_SIG_DATA 0x61746164u                  /* "data" */

/* ---- little-endian helpers ----------------------------------------------
 * Explicit little-endian loads and stores.  On a little-endian host they
 * compile to single moves (memcpy of one integer, never onto a struct). */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define VHDX_HOST_LE 1
#else
#define VHDX_HOST_LE 0
#endif
static inline uint16_t vhdx_get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t vhdx_get32(const uint8_t *p)
{
#if VHDX_HOST_LE
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
#else
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
#endif
}
static inline uint64_t vhdx_get64(const uint8_t *p)
{
#if VHDX_HOST_LE
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
#else
    return (uint64_t)vhdx_get32(p) | (uint64_t)vhdx_get32(p + 4) << 32;
#endif
}
static inline void vhdx_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void vhdx_put32(uint8_t *p, uint32_t v)
{
#if VHDX_HOST_LE
    memcpy(p, &v, 4);
#else
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
#endif
}
static inline void vhdx_put64(uint8_t *p, uint64_t v)
{
    vhdx_put32(p, (uint32_t)v);
    vhdx_put32(p + 4, (uint32_t)(v >> 32));
}

/* ---- known GUIDs -------------------------------------------------------- */
extern const struct vhdx_guid VHDX_GUID_REGION_BAT;
extern const struct vhdx_guid VHDX_GUID_REGION_METADATA;
extern const struct vhdx_guid VHDX_GUID_ITEM_FILE_PARAMETERS;
extern const struct vhdx_guid VHDX_GUID_ITEM_VIRTUAL_DISK_SIZE;
extern const struct vhdx_guid VHDX_GUID_ITEM_VIRTUAL_DISK_ID;
extern const struct vhdx_guid VHDX_GUID_ITEM_LOGICAL_SECTOR_SIZE;
extern const struct vhdx_guid VHDX_GUID_ITEM_PHYSICAL_SECTOR_SIZE;
extern const struct vhdx_guid VHDX_GUID_ITEM_PARENT_LOCATOR;

/* ---- file type identifier (offset 0) ----------------------------------- */
struct vhdx_file_id {
    char creator[257]; /* creator string, ASCII-folded (non-ASCII -> '?') */
};
/* buf holds VHDX_FILE_ID_SIZE bytes.  VHDX_E_FILE_SIGNATURE or 0. */
int vhdx_file_id_decode(const uint8_t *buf, struct vhdx_file_id *out);
/* Writes VHDX_FILE_ID_SIZE bytes; creator is ASCII, truncated to 255 chars. */
void vhdx_file_id_encode(const char *creator, uint8_t *buf);

/* ---- header (4 KiB at 64 KiB and 128 KiB) ------------------------------ */
enum {
    VHDX_HDR_SIGNATURE = 0,
    VHDX_HDR_CHECKSUM = 4,
    VHDX_HDR_SEQUENCE = 8,
    VHDX_HDR_FILE_WRITE_GUID = 16,
    VHDX_HDR_DATA_WRITE_GUID = 32,
    VHDX_HDR_LOG_GUID = 48,
    VHDX_HDR_LOG_VERSION = 64,
    VHDX_HDR_VERSION = 66,
    VHDX_HDR_LOG_LENGTH = 68,
    VHDX_HDR_LOG_OFFSET = 72,
    VHDX_HDR_RESERVED = 80,
};
struct vhdx_header {
    uint32_t checksum;               /* as stored */
    uint64_t sequence;               /* greater wins between the two copies */
    struct vhdx_guid file_write_guid; /* changes on the first modification of a session */
    struct vhdx_guid data_write_guid; /* changes before the first user-visible change */
    struct vhdx_guid log_guid;       /* zero: no log to replay */
    uint16_t log_version;            /* must be 0 */
    uint16_t version;                /* must be 1 */
    uint32_t log_length;             /* bytes, multiple of 1 MiB */
    uint64_t log_offset;             /* bytes, multiple of 1 MiB, >= 1 MiB */
};
/* Validity as the spec defines it for header selection: signature, then
 * checksum.  Returns 0, VHDX_E_HEADER_SIGNATURE or VHDX_E_HEADER_CHECKSUM;
 * *out is filled in either case. */
int vhdx_header_decode(const uint8_t buf[VHDX_HEADER_SIZE], struct vhdx_header *out);
/* Field rules for the current header: Version, LogVersion (only when a log
 * must be replayed), LogLength/LogOffset alignment.  On failure sets
 * field and offset (relative to the header) to the offending field. */
int vhdx_header_check_fields(const struct vhdx_header *h, const char **field, uint32_t *offset);
/* Encodes all 4096 bytes and stores the computed checksum (also in h). */
void vhdx_header_encode(struct vhdx_header *h, uint8_t buf[VHDX_HEADER_SIZE]);

/* ---- region table (64 KiB at 192 KiB and 256 KiB) ----------------------- */
struct vhdx_region_entry {
    struct vhdx_guid guid; /* region identity */
    uint64_t file_offset;  /* bytes, multiple of 1 MiB, >= 1 MiB */
    uint32_t length;       /* bytes, multiple of 1 MiB */
    uint32_t required;     /* bit 0: must be understood to open */
};
struct vhdx_region_table {
    uint32_t checksum;    /* as stored */
    uint32_t entry_count; /* <= 2047 */
    struct vhdx_region_entry entries[VHDX_REGION_MAX_ENTRIES];
};
/* signature (VHDX_E_REGION_SIGNATURE), EntryCount (VHDX_E_REGION_FIELD),
 * checksum (VHDX_E_REGION_CHECKSUM).  Entry values are not judged here. */
int vhdx_region_table_decode(const uint8_t buf[VHDX_REGION_TABLE_SIZE], struct vhdx_region_table *out);
void vhdx_region_table_encode(struct vhdx_region_table *t, uint8_t buf[VHDX_REGION_TABLE_SIZE]);

/* ---- metadata table (first 64 KiB of the metadata region) -------------- */
enum {
    VHDX_META_IS_USER = 1u << 0,
    VHDX_META_IS_VIRTUAL_DISK = 1u << 1,
    VHDX_META_IS_REQUIRED = 1u << 2,
};
struct vhdx_metadata_entry {
    struct vhdx_guid item_id; /* item identity */
    uint32_t offset;          /* bytes from the region start, >= 64 KiB unless length 0 */
    uint32_t length;          /* bytes, <= 1 MiB */
    uint32_t flags;           /* VHDX_META_* bits */
    uint32_t reserved2;       /* must be 0 */
};
struct vhdx_metadata_table {
    uint16_t reserved;    /* must be 0 */
    uint16_t entry_count; /* <= 2047 */
    struct vhdx_metadata_entry entries[VHDX_METADATA_MAX_ENTRIES];
};
/* signature (VHDX_E_METADATA_SIGNATURE), EntryCount (VHDX_E_METADATA).
 * buf holds len bytes of the table, at least 32 + 32 * EntryCount (the
 * rest of the 64 KiB is free space the decoder never looks at);
 * VHDX_E_METADATA when len is shorter.  The table has no checksum. */
int vhdx_metadata_table_decode(const uint8_t *buf, size_t len, struct vhdx_metadata_table *out);
/* Bytes of the table that EntryCount says are in use (hdr: 32 bytes). */
size_t vhdx_metadata_table_used(const uint8_t hdr[32]);
void vhdx_metadata_table_encode(const struct vhdx_metadata_table *t, uint8_t buf[VHDX_METADATA_TABLE_SIZE]);

/* Known item payloads. */
enum {
    VHDX_FP_LEAVE_BLOCK_ALLOCATED = 1u << 0,
    VHDX_FP_HAS_PARENT = 1u << 1,
};
struct vhdx_file_parameters {
    uint32_t block_size; /* 1 MiB .. 256 MiB, power of two */
    uint32_t flags;      /* VHDX_FP_* */
};
#define VHDX_ITEM_FILE_PARAMETERS_SIZE 8u
#define VHDX_ITEM_VIRTUAL_DISK_SIZE_SIZE 8u
#define VHDX_ITEM_VIRTUAL_DISK_ID_SIZE 16u
#define VHDX_ITEM_SECTOR_SIZE_SIZE 4u
void vhdx_file_parameters_decode(const uint8_t buf[8], struct vhdx_file_parameters *out);
void vhdx_file_parameters_encode(const struct vhdx_file_parameters *p, uint8_t buf[8]);

/* ---- BAT entries -------------------------------------------------------- */
enum vhdx_bat_state {
    VHDX_BAT_NOT_PRESENT = 0,
    VHDX_BAT_UNDEFINED = 1,
    VHDX_BAT_ZERO = 2,
    VHDX_BAT_UNMAPPED = 3,
    VHDX_BAT_FULLY_PRESENT = 6,
    VHDX_BAT_PARTIALLY_PRESENT = 7,
    VHDX_SB_NOT_PRESENT = 0,
    VHDX_SB_PRESENT = 6,
};
static inline unsigned vhdx_bat_state(uint64_t e) { return (unsigned)(e & 7); }
static inline uint64_t vhdx_bat_offset_mb(uint64_t e) { return e >> 20; }
static inline uint32_t vhdx_bat_reserved(uint64_t e) { return (uint32_t)((e >> 3) & 0x1FFFF); }
static inline uint64_t vhdx_bat_make(unsigned state, uint64_t offset_mb)
{
    return (uint64_t)(state & 7) | (offset_mb << 20);
}

/* BAT geometry derived from the metadata items. */
struct vhdx_geometry {
    uint64_t virtual_size;    /* bytes */
    uint32_t block_size;      /* bytes */
    uint32_t logical_sector;  /* 512 or 4096 */
    uint32_t physical_sector; /* 512 or 4096 */
    uint64_t chunk_ratio;     /* payload blocks per sector-bitmap block */
    uint64_t data_blocks;     /* ceil(virtual_size / block_size) */
    uint64_t bitmap_blocks;   /* ceil(data_blocks / chunk_ratio) */
    uint64_t bat_entries;     /* dynamic: data_blocks + floor((data_blocks-1)/chunk_ratio) */
};
/* Validates the values (VHDX_E_ITEM_VALUE) and fills the derived fields. */
int vhdx_geometry_init(struct vhdx_geometry *g, uint64_t virtual_size, uint32_t block_size,
                       uint32_t logical_sector, uint32_t physical_sector);
/* Index of the BAT entry of payload block `block`. */
static inline uint64_t vhdx_bat_index(const struct vhdx_geometry *g, uint64_t block)
{
    return block + block / g->chunk_ratio;
}

/* ---- log entry header and descriptors ---------------------------------- */
enum {
    VHDX_LOGE_SIGNATURE = 0,
    VHDX_LOGE_CHECKSUM = 4,
    VHDX_LOGE_ENTRY_LENGTH = 8,
    VHDX_LOGE_TAIL = 12,
    VHDX_LOGE_SEQUENCE = 16,
    VHDX_LOGE_DESC_COUNT = 24,
    VHDX_LOGE_RESERVED = 28,
    VHDX_LOGE_LOG_GUID = 32,
    VHDX_LOGE_FLUSHED_FILE_OFFSET = 48,
    VHDX_LOGE_LAST_FILE_OFFSET = 56,
};
struct vhdx_log_header {
    uint32_t checksum;            /* CRC over EntryLength bytes, this field as 0 */
    uint32_t entry_length;        /* bytes, multiple of 4 KiB */
    uint32_t tail;                /* log offset of the sequence's first entry */
    uint64_t sequence;            /* > 0, +1 per entry */
    uint32_t descriptor_count;    /* may be 0 */
    uint32_t reserved;            /* must be 0 */
    struct vhdx_guid log_guid;    /* must equal the header's LogGuid */
    uint64_t flushed_file_offset; /* file size known durable, multiple of 1 MiB */
    uint64_t last_file_offset;    /* size holding all structures, multiple of 1 MiB */
};
/* Decodes the 64-byte header and checks the fields that need no context:
 * signature (VHDX_E_LOG_SIGNATURE), EntryLength non-zero and 4 KiB multiple
 * (VHDX_E_LOG_LENGTH), Tail alignment, SequenceNumber > 0, Reserved == 0,
 * FlushedFileOffset/LastFileOffset 1 MiB multiples (VHDX_E_LOG_FIELD). */
int vhdx_log_header_decode(const uint8_t buf[VHDX_LOG_HEADER_SIZE], struct vhdx_log_header *out);
void vhdx_log_header_encode(const struct vhdx_log_header *h, uint8_t buf[VHDX_LOG_HEADER_SIZE]);

/* Number of descriptor sectors for `count` descriptors (>= 1). */
static inline uint64_t vhdx_log_desc_sectors(uint64_t count)
{
    return count <= VHDX_LOG_DESC_FIRST
               ? 1
               : 1 + (count - VHDX_LOG_DESC_FIRST + VHDX_LOG_DESC_PER_SECTOR - 1) / VHDX_LOG_DESC_PER_SECTOR;
}
/* Byte offset of descriptor i from the start of the entry. */
static inline uint64_t vhdx_log_desc_offset(uint64_t i)
{
    return i < VHDX_LOG_DESC_FIRST
               ? VHDX_LOG_HEADER_SIZE + i * VHDX_LOG_DESC_SIZE
               : VHDX_LOG_SECTOR * (1 + (i - VHDX_LOG_DESC_FIRST) / VHDX_LOG_DESC_PER_SECTOR) +
                     ((i - VHDX_LOG_DESC_FIRST) % VHDX_LOG_DESC_PER_SECTOR) * VHDX_LOG_DESC_SIZE;
}

enum vhdx_desc_kind { VHDX_DESC_ZERO = 1, VHDX_DESC_DATA = 2 };
struct vhdx_log_desc {
    enum vhdx_desc_kind kind; /* zero or data */
    uint32_t reserved;        /* zero: Reserved (must be 0) */
    uint32_t trailing;        /* data: bytes 4092..4095 of the update */
    uint64_t leading;         /* data: bytes 0..7 of the update */
    uint64_t zero_length;     /* zero: bytes to zero, multiple of 4 KiB */
    uint64_t file_offset;     /* target, multiple of 4 KiB */
    uint64_t sequence;        /* must equal the entry's */
};
/* signature (VHDX_E_LOG_DESC_SIGNATURE), alignment and reserved
 * (VHDX_E_LOG_DESC_FIELD).  The sequence is compared by the caller. */
int vhdx_log_desc_decode(const uint8_t buf[VHDX_LOG_DESC_SIZE], struct vhdx_log_desc *out);
void vhdx_log_desc_encode(const struct vhdx_log_desc *d, uint8_t buf[VHDX_LOG_DESC_SIZE]);

/* Data sectors: split a 4 KiB update into descriptor fields + data sector,
 * and join them back.  join checks the signature (VHDX_E_LOG_DATA_SIGNATURE)
 * and the split sequence number (VHDX_E_LOG_DATA_SEQUENCE). */
void vhdx_log_data_split(const uint8_t update[VHDX_LOG_SECTOR], uint64_t sequence,
                         struct vhdx_log_desc *desc, uint8_t sector[VHDX_LOG_SECTOR]);
int vhdx_log_data_check(const uint8_t sector[VHDX_LOG_SECTOR], uint64_t sequence);
int vhdx_log_data_join(const struct vhdx_log_desc *desc, const uint8_t sector[VHDX_LOG_SECTOR],
                       uint64_t sequence, uint8_t update[VHDX_LOG_SECTOR]);

#ifdef __cplusplus
}
#endif
#endif /* VHDX_FORMAT_H */
