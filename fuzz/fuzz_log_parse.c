/*
 * fuzz_log_parse - PROPERTY: the on-disk codecs and log-entry validation,
 * fed raw bytes with no I/O, never crash, never invoke undefined behaviour,
 * never read outside the buffer they are given, and agree with each other:
 *  - decode/encode round trips are exact for the entry header (all 64 bytes
 *    are fields) and for every descriptor that decodes;
 *  - the engine's entry validation and the reference's (ref_log.c) give the
 *    same verdict on the entry starting at every sector;
 *  - for a valid entry, every data sector joins with its descriptor into an
 *    update that splits back into the same bytes;
 *  - the file-header, region-table, metadata-table and file-identifier
 *    decoders accept any bytes.
 *
 * Input: the log-input format of fuzz_common.h; the prefix's LogGuid is the
 * GUID entries must carry, and bits 0-1 of its byte 8 choose the
 * ring length (1 to 4 MiB) the entries are judged against.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "fuzz_target.h"
#include "ref/ref_log.h"
#include "vhdx/errors.h"
#include "vhdx/format.h"
#include "vhdx/log.h"

FUZZ_LOG_MUTATOR_HOOKS()

static uint8_t *buf;   /* parsed sectors */
static uint8_t *table; /* 64 KiB scratch for the table decoders */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    buf = malloc((size_t)LR_MAX_SECTORS * VHDX_LOG_SECTOR);
    table = malloc(VHDX_REGION_TABLE_SIZE);
    FUZZ_CHECK(buf && table, "out of memory");
    return 0;
}

static void check_codecs(const uint8_t *s)
{
    /* Entry header: every byte is a field, so encode(decode(x)) == x. */
    struct vhdx_log_header h;
    int rc = vhdx_log_header_decode(s, &h);
    uint8_t back[VHDX_LOG_HEADER_SIZE];
    vhdx_log_header_encode(&h, back);
    if (rc != VHDX_E_LOG_SIGNATURE)
        FUZZ_CHECK(memcmp(back, s, sizeof back) == 0, "log header round trip differs (decode: %s)", vhdx_errname(rc));
    /* Descriptors in the first sector's slots. */
    for (uint32_t i = 0; i < VHDX_LOG_DESC_FIRST; i++) {
        const uint8_t *d = s + vhdx_log_desc_offset(i);
        struct vhdx_log_desc ds;
        if (vhdx_log_desc_decode(d, &ds) != 0)
            continue;
        uint8_t db[VHDX_LOG_DESC_SIZE];
        vhdx_log_desc_encode(&ds, db);
        FUZZ_CHECK(memcmp(db, d, sizeof db) == 0, "descriptor %u round trip differs", i);
    }
    /* File header decoder on the same bytes (any outcome, no crash). */
    struct vhdx_header fh;
    if (vhdx_header_decode(s, &fh) == 0) {
        const char *field = NULL;
        uint32_t off = 0;
        (void)vhdx_header_check_fields(&fh, &field, &off);
    }
    struct vhdx_file_id fid;
    (void)vhdx_file_id_decode(s, &fid);
    FUZZ_CHECK(strlen(fid.creator) < sizeof fid.creator, "creator string not terminated");
}

static void check_entry(const struct lr_input *in, uint32_t i, uint32_t log_length)
{
    const uint8_t *e = in->sectors + (size_t)i * VHDX_LOG_SECTOR;
    size_t avail = (size_t)(in->n_sectors - i) * VHDX_LOG_SECTOR;
    struct vhdx_log_header h;
    int rc = vhdx_log_entry_validate(e, avail, &in->guid, log_length, &h);
    int ref = ref_entry_valid(e, avail, in->guid.b, log_length);
    /* The engine needs EntryLength bytes to be present; a shorter buffer is
     * a short read for it and an invalid entry for the reference. */
    if (rc == VHDX_E_SHORT_IO)
        rc = VHDX_E_LOG_LENGTH;
    FUZZ_CHECK((rc == 0) == (ref == 1), "entry at sector %u: engine %s, reference %s", i, vhdx_errname(rc),
               ref ? "valid" : "invalid");
    if (rc != 0)
        return;
    uint64_t dsec = vhdx_log_desc_sectors(h.descriptor_count), k = 0;
    for (uint64_t j = 0; j < h.descriptor_count; j++) {
        struct vhdx_log_desc d;
        FUZZ_CHECK(vhdx_log_desc_decode(e + vhdx_log_desc_offset(j), &d) == 0, "valid entry, bad descriptor %llu",
                   (unsigned long long)j);
        if (d.kind != VHDX_DESC_DATA)
            continue;
        const uint8_t *ds = e + (dsec + k++) * VHDX_LOG_SECTOR;
        uint8_t update[VHDX_LOG_SECTOR], again[VHDX_LOG_SECTOR];
        FUZZ_CHECK(vhdx_log_data_join(&d, ds, h.sequence, update) == 0, "valid entry, data sector does not join");
        struct vhdx_log_desc d2;
        memset(&d2, 0, sizeof d2);
        vhdx_log_data_split(update, h.sequence, &d2, again);
        FUZZ_CHECK(memcmp(again, ds, VHDX_LOG_SECTOR) == 0 && d2.leading == d.leading && d2.trailing == d.trailing,
                   "data sector split(join(x)) differs");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!buf)
        LLVMFuzzerInitialize(NULL, NULL);
    struct lr_input in;
    lr_parse(data, size, buf, &in);
    uint32_t log_length = (uint32_t)(((size > 8 ? data[8] : 0) & 3) + 1) * (uint32_t)VHDX_MiB;
    for (uint32_t i = 0; i < in.n_sectors; i++) {
        const uint8_t *s = in.sectors + (size_t)i * VHDX_LOG_SECTOR;
        check_codecs(s);
        if (vhdx_get32(s) == VHDX_SIG_LOGE)
            check_entry(&in, i, log_length);
    }
    /* Table decoders on the whole body, zero-padded to 64 KiB. */
    size_t body = (size_t)in.n_sectors * VHDX_LOG_SECTOR;
    if (body > VHDX_REGION_TABLE_SIZE)
        body = VHDX_REGION_TABLE_SIZE;
    memcpy(table, in.sectors, body);
    memset(table + body, 0, VHDX_REGION_TABLE_SIZE - body);
    static struct vhdx_region_table rt;
    if (vhdx_region_table_decode(table, &rt) == 0)
        FUZZ_CHECK(rt.entry_count <= VHDX_REGION_MAX_ENTRIES, "region table count %u", rt.entry_count);
    static struct vhdx_metadata_table mt;
    size_t used = vhdx_metadata_table_used(table);
    FUZZ_CHECK(used <= VHDX_METADATA_TABLE_SIZE, "metadata table uses %zu bytes", used);
    (void)vhdx_metadata_table_decode(table, body < 32 ? 32 : body, &mt);
    return 0;
}
