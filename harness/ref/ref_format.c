/*
 * ref_format.c - encoders of log records (ref/ref_format.h), from MS-VHDX
 * 2.3.1.
 */
#include "ref/ref_format.h"

#include <string.h>

#include "ref/ref.h"

uint64_t ref_desc_sectors(uint64_t count)
{
    if (count <= REF_DESC_FIRST)
        return 1;
    return 1 + (count - REF_DESC_FIRST + REF_DESC_PER_SECTOR - 1) / REF_DESC_PER_SECTOR;
}

uint64_t ref_desc_offset(uint64_t i)
{
    if (i < REF_DESC_FIRST)
        return REF_LOGE_HEADER_SIZE + REF_DESC_SIZE * i;
    i -= REF_DESC_FIRST;
    return (1 + i / REF_DESC_PER_SECTOR) * REF_LOG_SECTOR + REF_DESC_SIZE * (i % REF_DESC_PER_SECTOR);
}

void ref_zero_desc_put(uint8_t *d, uint64_t zero_length, uint64_t file_offset, uint64_t sequence)
{
    ref_put32(d, REF_SIG_ZERO);
    ref_put32(d + 4, 0);
    ref_put64(d + 8, zero_length);
    ref_put64(d + 16, file_offset);
    ref_put64(d + 24, sequence);
}

void ref_data_desc_put(uint8_t *d, uint8_t *s, const uint8_t update[4096], uint64_t file_offset, uint64_t sequence)
{
    ref_put32(d, REF_SIG_DESC);
    memcpy(d + 4, update + 4092, 4); /* TrailingBytes */
    memcpy(d + 8, update, 8);        /* LeadingBytes */
    ref_put64(d + 16, file_offset);
    ref_put64(d + 24, sequence);
    ref_put32(s, REF_SIG_DATA);
    ref_put32(s + 4, (uint32_t)(sequence >> 32));
    memcpy(s + 8, update + 8, 4084);
    ref_put32(s + 4092, (uint32_t)sequence);
}

void ref_entry_seal(uint8_t *h, size_t entry_length)
{
    ref_put32(h + REF_LOGE_CHECKSUM, 0);
    ref_put32(h + REF_LOGE_CHECKSUM, ref_crc32c(0, h, entry_length));
}
