/*
 * ref_format.h - the reference's on-disk constants and encoders of log
 * records (MS-VHDX 2.3.1), for code that builds or edits logs without the
 * engine: the fuzzers' structure-aware mutator and the reference writer.
 * Field offsets and signatures are the text's; nothing here includes an
 * engine header.
 */
#ifndef REF_REF_FORMAT_H
#define REF_REF_FORMAT_H

#include <stddef.h>
#include <stdint.h>

/* Signatures as little-endian 32-bit values of their ASCII bytes. */
#define REF_SIG_LOGE 0x65676F6Cu /* "loge" (2.3.1.1) */
#define REF_SIG_ZERO 0x6F72657Au /* "zero" (2.3.1.2) */
#define REF_SIG_DESC 0x63736564u /* "desc" (2.3.1.3) */
#define REF_SIG_DATA 0x61746164u /* "data" (2.3.1.4) */

/* Entry header (2.3.1.1), 64 bytes at the start of the first descriptor sector. */
enum {
    REF_LOGE_SIGNATURE = 0,
    REF_LOGE_CHECKSUM = 4,
    REF_LOGE_ENTRY_LENGTH = 8,
    REF_LOGE_TAIL = 12,
    REF_LOGE_SEQUENCE = 16,
    REF_LOGE_DESC_COUNT = 24,
    REF_LOGE_RESERVED = 28,
    REF_LOGE_LOG_GUID = 32,
    REF_LOGE_FLUSHED_FILE_OFFSET = 48,
    REF_LOGE_LAST_FILE_OFFSET = 56,
    REF_LOGE_HEADER_SIZE = 64,
};

#define REF_LOG_SECTOR 4096u
#define REF_DESC_SIZE 32u
#define REF_DESC_FIRST 126u      /* descriptors in the first sector, after the header */
#define REF_DESC_PER_SECTOR 128u /* in every later descriptor sector */
#define REF_LARGEST_FILE ((UINT64_C(64) << 40) + (UINT64_C(64) << 30))

/* Descriptor sectors an entry of `count` descriptors needs (at least one). */
uint64_t ref_desc_sectors(uint64_t count);
/* Byte offset of descriptor i inside its entry. */
uint64_t ref_desc_offset(uint64_t i);
/* A zero descriptor (2.3.1.2) into d (32 bytes). */
void ref_zero_desc_put(uint8_t *d, uint64_t zero_length, uint64_t file_offset, uint64_t sequence);
/* A data descriptor into d and its data sector into s (4 KiB) for the 4 KiB
 * update (2.3.1.3, 2.3.1.4: the first 8 and last 4 bytes go to the
 * descriptor, bytes 8..4091 to the sector between the split sequence). */
void ref_data_desc_put(uint8_t *d, uint8_t *s, const uint8_t update[4096], uint64_t file_offset, uint64_t sequence);
/* Sets an entry's checksum (EntryLength bytes at h, Checksum taken as 0). */
void ref_entry_seal(uint8_t *h, size_t entry_length);

#endif /* REF_REF_FORMAT_H */
