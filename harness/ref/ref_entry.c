/*
 * ref_entry.c - one log entry and one header, decoded field by field
 * (ref/ref_log.h), for judges that follow a log as it is written instead of
 * searching a finished ring (the protocol checker).
 *
 * Guarantees:
 *  - validity is the reference's own rule, unchanged: an entry decodes only
 *    when ref_entry_valid() accepts it under the LogGuid it carries, so the
 *    decoder never sees a field the search would have refused;
 *  - bounded: the descriptor count and every data sector were checked
 *    against EntryLength by the validity rule before they drive a loop or an
 *    allocation (count <= EntryLength / 32, data sectors <= EntryLength /
 *    4096);
 *  - shares no code with the implementation under test (like every file of
 *    the reference).
 */
#include "ref/ref_log.h"
#include "ref/ref.h"

#include <stdlib.h>
#include <string.h>

#define FIRST_SECTOR_DESCS 126u /* 2.3.1: the first descriptor sector holds the 64-byte header and 126 */
#define LATER_SECTOR_DESCS 128u

static const uint8_t *descriptor_at(const uint8_t *buf, uint64_t i)
{
    if (i < FIRST_SECTOR_DESCS)
        return buf + 64 + 32 * i;
    uint64_t k = i - FIRST_SECTOR_DESCS;
    return buf + REF_SECTOR * (1 + k / LATER_SECTOR_DESCS) + 32 * (k % LATER_SECTOR_DESCS);
}

static uint64_t descriptor_sectors(uint64_t count)
{
    if (count <= FIRST_SECTOR_DESCS)
        return 1;
    return 1 + (count - FIRST_SECTOR_DESCS + LATER_SECTOR_DESCS - 1) / LATER_SECTOR_DESCS;
}

void ref_entry_free(struct ref_entry *e)
{
    free(e->desc);
    free(e->pages);
    memset(e, 0, sizeof *e);
}

int ref_entry_decode(const uint8_t *buf, size_t len, uint32_t log_length, struct ref_entry *e)
{
    memset(e, 0, sizeof *e);
    if (len < REF_SECTOR || memcmp(buf, "loge", 4) != 0)
        return 0;
    /* 2.3.1.1: "LogGuid ... Contains the LogGuid value in the file header that
     * was present when this log entry was written": judged under its own. */
    if (!ref_entry_valid(buf, len, buf + 32, log_length))
        return 0;
    e->checksum = ref_le32(buf + 4);
    e->length = ref_le32(buf + 8);
    e->tail = ref_le32(buf + 12);
    e->sequence = ref_le64(buf + 16);
    e->count = ref_le32(buf + 24);
    memcpy(e->log_guid, buf + 32, 16);
    e->flushed_file_offset = ref_le64(buf + 48);
    e->last_file_offset = ref_le64(buf + 56);
    const uint64_t dsec = descriptor_sectors(e->count);
    uint64_t data = 0;
    for (uint32_t i = 0; i < e->count; i++)
        data += memcmp(descriptor_at(buf, i), "desc", 4) == 0;
    e->desc = malloc((e->count ? e->count : 1) * sizeof *e->desc);
    e->pages = malloc((size_t)(data ? data : 1) * REF_SECTOR);
    if (!e->desc || !e->pages) {
        ref_entry_free(e);
        return -1;
    }
    uint64_t k = 0;
    for (uint32_t i = 0; i < e->count; i++) {
        const uint8_t *d = descriptor_at(buf, i);
        struct ref_write *w = &e->desc[i];
        w->offset = ref_le64(d + 16);
        if (memcmp(d, "desc", 4) == 0) {
            /* 2.3.1.3/2.3.1.4: LeadingBytes, bytes 8..4091 of the data sector,
             * TrailingBytes */
            uint8_t *p = e->pages + k * REF_SECTOR;
            const uint8_t *s = buf + (dsec + k) * REF_SECTOR;
            memcpy(p, d + 8, 8);
            memcpy(p + 8, s + 8, 4084);
            memcpy(p + 4092, d + 4, 4);
            w->length = REF_SECTOR;
            w->data = p;
            k++;
        } else { /* "zero" (the validity rule admits nothing else) */
            w->length = ref_le64(d + 8);
            w->data = NULL;
        }
    }
    return 1;
}

void ref_header_decode(const uint8_t *buf, struct ref_header *h)
{
    memset(h, 0, sizeof *h);
    /* 2.2.2: "A header is valid if the Signature and Checksum fields both
     * validate correctly"; the checksum covers the 4 KiB with its own field
     * taken as zero. */
    static const uint8_t zero4[4];
    uint32_t c = ref_crc32c(0, buf, 4);
    c = ref_crc32c(c, zero4, 4);
    c = ref_crc32c(c, buf + 8, REF_SECTOR - 8);
    h->valid = memcmp(buf, "head", 4) == 0 && c == ref_le32(buf + 4);
    h->sequence = ref_le64(buf + 8);
    memcpy(h->file_write_guid, buf + 16, 16);
    memcpy(h->data_write_guid, buf + 32, 16);
    memcpy(h->log_guid, buf + 48, 16);
    h->log_version = ref_le16(buf + 64);
    h->version = ref_le16(buf + 66);
    h->log_length = ref_le32(buf + 68);
    h->log_offset = ref_le64(buf + 72);
}

int ref_header_current(const struct ref_header *h)
{
    /* 2.2.2: "A header is current if it is the only valid header or if it is
     * valid and its SequenceNumber field is greater than the other header's." */
    if (h[0].valid && (!h[1].valid || h[0].sequence > h[1].sequence))
        return 0;
    if (h[1].valid && (!h[0].valid || h[1].sequence > h[0].sequence))
        return 1;
    return -1;
}
