/*
 * test_format.c - on-disk codecs: GUID byte order, header, region table,
 * metadata table, BAT entries and geometry for both sector sizes, log
 * entry header, descriptors, data sector split/join; decode(encode(x)) == x
 * and every rejection step returns its own code.
 */
#include "testutil.h"
#include "vhdx/crc32c.h"
#include "vhdx/format.h"
#include "vhdx/guid.h"

static void test_guid(void)
{
    struct vhdx_guid g;
    CHECK_OK(vhdx_guid_parse("2DC27766-F623-4200-9D64-115E9BFD4A08", &g));
    static const uint8_t disk[16] = {0x66, 0x77, 0xC2, 0x2D, 0x23, 0xF6, 0x00, 0x42,
                                     0x9D, 0x64, 0x11, 0x5E, 0x9B, 0xFD, 0x4A, 0x08};
    CHECK(memcmp(g.b, disk, 16) == 0);
    CHECK(vhdx_guid_equal(&g, &VHDX_GUID_REGION_BAT));
    char text[VHDX_GUID_STRLEN];
    vhdx_guid_format(&VHDX_GUID_ITEM_VIRTUAL_DISK_SIZE, text);
    CHECK(strcmp(text, "2FA54224-CD1B-4876-B211-5DBED83BF4B8") == 0);
    CHECK_OK(vhdx_guid_parse("{8b7ca206-4790-4b9a-b8fe-575f050f886e}", &g));
    CHECK(vhdx_guid_equal(&g, &VHDX_GUID_REGION_METADATA));
    CHECK_RC(vhdx_guid_parse("8b7ca206-4790-4b9a-b8fe-575f050f886", &g), VHDX_E_INVAL);
    CHECK_RC(vhdx_guid_parse("8b7ca206x4790-4b9a-b8fe-575f050f886e", &g), VHDX_E_INVAL);
    CHECK_RC(vhdx_guid_parse("8b7ca206-4790-4b9a-b8fe-575f050f886g", &g), VHDX_E_INVAL);
    struct vhdx_rng_seeded st = {1};
    struct vhdx_rng rng = {vhdx_rng_seeded_fill, &st};
    struct vhdx_guid a, b;
    CHECK_OK(vhdx_guid_generate(&rng, &a));
    CHECK_OK(vhdx_guid_generate(&rng, &b));
    CHECK(!vhdx_guid_is_zero(&a) && !vhdx_guid_equal(&a, &b));
    CHECK((a.b[7] >> 4) == 4);
    st.state = 1;
    CHECK_OK(vhdx_guid_generate(&rng, &b));
    CHECK(vhdx_guid_equal(&a, &b)); /* same seed, same GUID */
}

static void test_header(void)
{
    struct vhdx_header h, d;
    memset(&h, 0, sizeof h);
    h.sequence = 0x0102030405060708ull;
    h.version = 1;
    h.log_length = 1 << 20;
    h.log_offset = 1 << 20;
    vhdx_guid_parse("11111111-2222-3333-4444-555555555555", &h.log_guid);
    uint8_t buf[VHDX_HEADER_SIZE];
    vhdx_header_encode(&h, buf);
    CHECK(memcmp(buf, "head", 4) == 0);
    CHECK(vhdx_get64(buf + 8) == h.sequence);
    CHECK_OK(vhdx_header_decode(buf, &d));
    CHECK(d.sequence == h.sequence && d.log_length == h.log_length && d.log_offset == h.log_offset);
    CHECK(vhdx_guid_equal(&d.log_guid, &h.log_guid));
    CHECK(d.checksum == h.checksum && h.checksum != 0);
    const char *field;
    uint32_t off;
    CHECK_OK(vhdx_header_check_fields(&d, &field, &off));
    buf[100] ^= 1;
    CHECK_RC(vhdx_header_decode(buf, &d), VHDX_E_HEADER_CHECKSUM);
    buf[100] ^= 1;
    buf[0] = 'x';
    CHECK_RC(vhdx_header_decode(buf, &d), VHDX_E_HEADER_SIGNATURE);
    h.version = 2;
    CHECK_RC(vhdx_header_check_fields(&h, &field, &off), VHDX_E_VERSION);
    CHECK(off == VHDX_HDR_VERSION && strcmp(field, "Version") == 0);
    h.version = 1;
    h.log_version = 1;
    CHECK_RC(vhdx_header_check_fields(&h, &field, &off), VHDX_E_LOG_VERSION);
    memset(&h.log_guid, 0, sizeof h.log_guid);
    CHECK_OK(vhdx_header_check_fields(&h, &field, &off)); /* no log to replay: LogVersion ignored */
    h.log_length = 12345;
    CHECK_RC(vhdx_header_check_fields(&h, &field, &off), VHDX_E_HEADER_FIELD);
    CHECK(off == VHDX_HDR_LOG_LENGTH);
    h.log_length = 1 << 20;
    h.log_offset = 4096;
    CHECK_RC(vhdx_header_check_fields(&h, &field, &off), VHDX_E_HEADER_FIELD);
    CHECK(off == VHDX_HDR_LOG_OFFSET);
}

static void test_region_table(void)
{
    static struct vhdx_region_table t, d;
    static uint8_t buf[VHDX_REGION_TABLE_SIZE];
    memset(&t, 0, sizeof t);
    t.entry_count = 2;
    t.entries[0] = (struct vhdx_region_entry){VHDX_GUID_REGION_BAT, 3 << 20, 1 << 20, 1};
    t.entries[1] = (struct vhdx_region_entry){VHDX_GUID_REGION_METADATA, 2 << 20, 1 << 20, 1};
    vhdx_region_table_encode(&t, buf);
    CHECK_OK(vhdx_region_table_decode(buf, &d));
    CHECK(d.entry_count == 2 && d.entries[0].file_offset == (3 << 20) && d.entries[1].required == 1);
    CHECK(vhdx_guid_equal(&d.entries[1].guid, &VHDX_GUID_REGION_METADATA));
    buf[VHDX_REGION_TABLE_SIZE - 1] = 1; /* the CRC covers the whole 64 KiB */
    CHECK_RC(vhdx_region_table_decode(buf, &d), VHDX_E_REGION_CHECKSUM);
    vhdx_put32(buf + 8, 2048);
    CHECK_RC(vhdx_region_table_decode(buf, &d), VHDX_E_REGION_FIELD);
    buf[0] = 0;
    CHECK_RC(vhdx_region_table_decode(buf, &d), VHDX_E_REGION_SIGNATURE);
}

static void test_metadata(void)
{
    static struct vhdx_metadata_table t, d;
    static uint8_t buf[VHDX_METADATA_TABLE_SIZE];
    memset(&t, 0, sizeof t);
    t.entry_count = 1;
    t.entries[0] = (struct vhdx_metadata_entry){VHDX_GUID_ITEM_FILE_PARAMETERS, 65536, 8, VHDX_META_IS_REQUIRED, 0};
    vhdx_metadata_table_encode(&t, buf);
    CHECK(memcmp(buf, "metadata", 8) == 0);
    CHECK_OK(vhdx_metadata_table_decode(buf, sizeof buf, &d));
    CHECK(d.entry_count == 1 && d.entries[0].offset == 65536 && d.entries[0].flags == VHDX_META_IS_REQUIRED);
    CHECK(vhdx_metadata_table_used(buf) == 64);
    CHECK_OK(vhdx_metadata_table_decode(buf, 64, &d));
    CHECK_RC(vhdx_metadata_table_decode(buf, 63, &d), VHDX_E_METADATA);
    vhdx_put16(buf + 10, 2048);
    CHECK_RC(vhdx_metadata_table_decode(buf, sizeof buf, &d), VHDX_E_METADATA);
    buf[0] = 'M';
    CHECK_RC(vhdx_metadata_table_decode(buf, sizeof buf, &d), VHDX_E_METADATA_SIGNATURE);
    uint8_t fpb[8];
    struct vhdx_file_parameters fp = {32u << 20, VHDX_FP_LEAVE_BLOCK_ALLOCATED}, fq;
    vhdx_file_parameters_encode(&fp, fpb);
    vhdx_file_parameters_decode(fpb, &fq);
    CHECK(fq.block_size == fp.block_size && fq.flags == fp.flags);
}

static void test_geometry(void)
{
    struct vhdx_geometry g;
    /* 512-byte sectors, 32 MiB blocks: chunk = 2^23 * 512 = 4 GiB = 128 blocks. */
    CHECK_OK(vhdx_geometry_init(&g, 10ull << 30, 32u << 20, 512, 4096));
    CHECK(g.chunk_ratio == 128 && g.data_blocks == 320 && g.bat_entries == 320 + 319 / 128);
    CHECK(vhdx_bat_index(&g, 127) == 127 && vhdx_bat_index(&g, 128) == 129);
    /* 4096-byte sectors, 1 MiB blocks: chunk = 32 GiB = 32768 blocks. */
    CHECK_OK(vhdx_geometry_init(&g, 64ull << 30, 1u << 20, 4096, 512));
    CHECK(g.chunk_ratio == 32768 && g.data_blocks == 65536 && g.bat_entries == 65536 + 1);
    CHECK(vhdx_bat_index(&g, 32768) == 32769);
    /* 256 MiB blocks with 512: ratio 16; partial last block. */
    CHECK_OK(vhdx_geometry_init(&g, (256ull << 20) * 16 + 512, 256u << 20, 512, 512));
    CHECK(g.chunk_ratio == 16 && g.data_blocks == 17 && g.bat_entries == 18);
    CHECK_RC(vhdx_geometry_init(&g, 0, 1 << 20, 512, 512), VHDX_E_ITEM_VALUE);
    CHECK_RC(vhdx_geometry_init(&g, 1000, 1 << 20, 512, 512), VHDX_E_ITEM_VALUE);
    CHECK_RC(vhdx_geometry_init(&g, 4096, 3 << 20, 512, 512), VHDX_E_ITEM_VALUE);
    CHECK_RC(vhdx_geometry_init(&g, 4096, 1 << 20, 1024, 512), VHDX_E_ITEM_VALUE);
    CHECK_RC(vhdx_geometry_init(&g, (64ull << 40) + 4096, 1 << 20, 4096, 4096), VHDX_E_ITEM_VALUE);
    /* BAT entry bit fields. */
    uint64_t e = vhdx_bat_make(VHDX_BAT_FULLY_PRESENT, 0xABCDE);
    CHECK(vhdx_bat_state(e) == 6 && vhdx_bat_offset_mb(e) == 0xABCDE && vhdx_bat_reserved(e) == 0);
    CHECK(vhdx_bat_reserved(e | (1u << 3)) == 1);
}

static void test_log_records(void)
{
    struct vhdx_log_header h, d;
    memset(&h, 0, sizeof h);
    h.entry_length = 8192;
    h.tail = 4096;
    h.sequence = 77;
    h.descriptor_count = 1;
    h.flushed_file_offset = 5 << 20;
    h.last_file_offset = 6 << 20;
    uint8_t buf[64];
    vhdx_log_header_encode(&h, buf);
    CHECK(memcmp(buf, "loge", 4) == 0);
    CHECK_OK(vhdx_log_header_decode(buf, &d));
    CHECK(d.sequence == 77 && d.tail == 4096 && d.last_file_offset == (6u << 20));
    vhdx_put32(buf + VHDX_LOGE_ENTRY_LENGTH, 0);
    CHECK_RC(vhdx_log_header_decode(buf, &d), VHDX_E_LOG_LENGTH);
    vhdx_put32(buf + VHDX_LOGE_ENTRY_LENGTH, 8192);
    vhdx_put64(buf + VHDX_LOGE_SEQUENCE, 0);
    CHECK_RC(vhdx_log_header_decode(buf, &d), VHDX_E_LOG_FIELD);
    vhdx_put64(buf + VHDX_LOGE_SEQUENCE, 1);
    vhdx_put64(buf + VHDX_LOGE_LAST_FILE_OFFSET, 12345);
    CHECK_RC(vhdx_log_header_decode(buf, &d), VHDX_E_LOG_FIELD);

    /* Descriptor offsets: 126 in the first sector, 128 in each later one. */
    CHECK(vhdx_log_desc_sectors(0) == 1 && vhdx_log_desc_sectors(126) == 1);
    CHECK(vhdx_log_desc_sectors(127) == 2 && vhdx_log_desc_sectors(254) == 2 && vhdx_log_desc_sectors(255) == 3);
    CHECK(vhdx_log_desc_offset(0) == 64 && vhdx_log_desc_offset(125) == 4064);
    CHECK(vhdx_log_desc_offset(126) == 4096 && vhdx_log_desc_offset(253) == 8192 - 32);
    CHECK(vhdx_log_desc_offset(254) == 8192);

    struct vhdx_log_desc z = {VHDX_DESC_ZERO, 0, 0, 0, 3 * 4096, 1 << 20, 9}, zd;
    uint8_t db[32];
    vhdx_log_desc_encode(&z, db);
    CHECK(memcmp(db, "zero", 4) == 0);
    CHECK_OK(vhdx_log_desc_decode(db, &zd));
    CHECK(zd.kind == VHDX_DESC_ZERO && zd.zero_length == 3 * 4096 && zd.file_offset == (1u << 20) && zd.sequence == 9);
    vhdx_put64(db + 8, 100);
    CHECK_RC(vhdx_log_desc_decode(db, &zd), VHDX_E_LOG_DESC_FIELD);
    memcpy(db, "oops", 4);
    CHECK_RC(vhdx_log_desc_decode(db, &zd), VHDX_E_LOG_DESC_SIGNATURE);

    /* Data sector split/join restores all 4096 bytes. */
    uint8_t update[4096], sector[4096], back[4096];
    test_fill(update, sizeof update, 5);
    struct vhdx_log_desc dd;
    vhdx_log_data_split(update, 0x1122334455667788ull, &dd, sector);
    CHECK(memcmp(sector, "data", 4) == 0);
    CHECK(vhdx_get32(sector + 4) == 0x11223344u && vhdx_get32(sector + 4092) == 0x55667788u);
    CHECK(dd.leading == vhdx_get64(update) && dd.trailing == vhdx_get32(update + 4092));
    CHECK_OK(vhdx_log_data_join(&dd, sector, 0x1122334455667788ull, back));
    CHECK(memcmp(back, update, 4096) == 0);
    CHECK_RC(vhdx_log_data_join(&dd, sector, 0x1122334455667789ull, back), VHDX_E_LOG_DATA_SEQUENCE);
    sector[0] = 'D';
    CHECK_RC(vhdx_log_data_check(sector, 0x1122334455667788ull), VHDX_E_LOG_DATA_SIGNATURE);
}

static void test_strerror(void)
{
    CHECK(strncmp(vhdx_strerror(VHDX_E_LOG_CRC), "VHDX_E_LOG_CRC: ", 16) == 0);
    CHECK(strcmp(vhdx_errname(VHDX_E_NO_HEADER), "VHDX_E_NO_HEADER") == 0);
    CHECK(strncmp(vhdx_strerror(-5), "EIO", 3) == 0);
    CHECK(vhdx_strerror(12345) != NULL && vhdx_strerror(-99999) != NULL);
    CHECK(vhdx_is_format_error(VHDX_E_INVAL) && !vhdx_is_format_error(-5) && !vhdx_is_format_error(0));
}

int main(void)
{
    test_guid();
    test_header();
    test_region_table();
    test_metadata();
    test_geometry();
    test_log_records();
    test_strerror();
    return test_summary("test_format");
}
