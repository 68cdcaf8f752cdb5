/*
 * test_image.c - the engine end to end on an in-memory device: create and
 * open, virtual-disk I/O across blocks, discard, batching and wrap-around of
 * the log, replay after an abandoned session, the power-cut safety of every
 * write prefix of a session (including the start of its log), refusal
 * leaving the image byte-identical, read-only in-memory replay, the
 * FileWriteGuid/DataWriteGuid rules, poisoning, header and region table
 * copies, unknown required structures.
 */
#include "testutil.h"
#include "vhdx/check.h"
#include "vhdx/crc32c.h"
#include "vhdx/log.h"
#include "vhdx/vhdx.h"

static struct vhdx_rng_seeded rng_state = {1};
static struct vhdx_rng rng = {vhdx_rng_seeded_fill, &rng_state};

static struct memdev *make_image(uint64_t size, uint32_t bs, uint32_t log, uint32_t lsec)
{
    struct memdev *m = memdev_new();
    struct vhdx_create_params p = {size, bs, log, lsec, 4096};
    struct vhdx_options o = {.rng = &rng};
    CHECK_OK(vhdx_create(&m->base, &p, &o));
    return m;
}

static struct vhdx *open_img(struct memdev *m, unsigned flags, uint32_t apply_every, int want)
{
    struct vhdx_diag d;
    struct vhdx_options o = {.flags = flags, .apply_every = apply_every, .rng = &rng, .diag = &d};
    struct vhdx *h = NULL;
    int rc = vhdx_open(&m->base, &o, &h);
    CHECK_RC(rc, want);
    if (rc != want)
        fprintf(stderr, "  open diag: %s [%s]\n", d.message, d.field);
    return h;
}

static int check_clean(struct memdev *m)
{
    struct vhdx_check_report r;
    int rc = vhdx_check(&m->base, 0, &r);
    int ok = rc == 0 && r.errors == 0;
    if (!ok)
        for (size_t i = 0; i < r.count; i++)
            fprintf(stderr, "  check: %s %s: %s\n", vhdx_severity_name(r.problems[i].severity),
                    r.problems[i].field, r.problems[i].message);
    vhdx_check_report_free(&r);
    return ok;
}

static void test_create_open(void)
{
    const uint32_t lsecs[2] = {512, 4096};
    for (int i = 0; i < 2; i++) {
        struct memdev *m = make_image(100 << 20, 1 << 20, 2 << 20, lsecs[i]);
        CHECK(memcmp(m->buf, "vhdxfile", 8) == 0);
        struct vhdx *h = open_img(m, 0, 0, 0);
        struct vhdx_info in;
        vhdx_get_info(h, &in);
        CHECK(in.geo.virtual_size == (100u << 20) && in.geo.block_size == (1u << 20));
        CHECK(in.geo.logical_sector == lsecs[i] && in.header.log_length == (2u << 20));
        CHECK(in.blocks_allocated == 0 && !in.replayed);
        long writes = m->writes;
        CHECK_OK(vhdx_close(h));
        CHECK(m->writes == writes); /* opened and closed without a change: untouched */
        CHECK(check_clean(m));
        memdev_free(m);
    }
    struct memdev *m = memdev_new();
    struct vhdx_diag d;
    struct vhdx_options o = {.diag = &d};
    struct vhdx_create_params bad = {1 << 20, 3 << 20, 0, 0, 0};
    CHECK_RC(vhdx_create(&m->base, &bad, &o), VHDX_E_INVAL);
    CHECK(strcmp(d.field, "block_size") == 0);
    bad = (struct vhdx_create_params){1000, 0, 0, 0, 0};
    CHECK_RC(vhdx_create(&m->base, &bad, &o), VHDX_E_INVAL);
    memdev_free(m);
}

static void test_io(void)
{
    struct memdev *m = make_image(64 << 20, 1 << 20, 1 << 20, 512);
    struct vhdx *h = open_img(m, 0, 0, 0);
    size_t n = 3 * (1 << 20) + 777;
    uint8_t *data = malloc(n), *back = malloc(n);
    test_fill(data, n, 99);
    CHECK_OK(vhdx_write(h, (5 << 20) - 300, data, n));
    CHECK_OK(vhdx_read(h, (5 << 20) - 300, back, n));
    CHECK(memcmp(back, data, n) == 0);
    CHECK_OK(vhdx_read(h, 0, back, 4096));
    CHECK(back[0] == 0 && back[4095] == 0);
    CHECK_RC(vhdx_write(h, (64 << 20) - 10, data, 11), VHDX_E_RANGE);
    CHECK_RC(vhdx_read(h, UINT64_MAX - 5, back, 10), VHDX_E_RANGE);
    struct vhdx_info in;
    vhdx_get_info(h, &in);
    CHECK(in.blocks_allocated == 5); /* blocks 4..8 */
    CHECK_OK(vhdx_close(h));
    CHECK(check_clean(m));
    h = open_img(m, 0, 0, 0);
    memset(back, 0, n);
    CHECK_OK(vhdx_read(h, (5 << 20) - 300, back, n));
    CHECK(memcmp(back, data, n) == 0);
    /* Discard: block 5 whole, part of block 6. */
    CHECK_OK(vhdx_discard(h, 5 << 20, (1 << 20) + 4096));
    CHECK_OK(vhdx_read(h, 5 << 20, back, (1 << 20) + 8192));
    int zero = 1;
    for (size_t i = 0; i < (1u << 20) + 4096; i++)
        zero &= back[i] == 0;
    CHECK(zero);
    CHECK(memcmp(back + (1 << 20) + 4096, data + 300 + (1 << 20) + 4096, 4096) == 0);
    vhdx_get_info(h, &in);
    CHECK(in.blocks_allocated == 4 && in.blocks_zero == 1);
    /* Rewriting a discarded block allocates a fresh one. */
    CHECK_OK(vhdx_write(h, (5 << 20) + 512, data, 512));
    CHECK_OK(vhdx_read(h, 5 << 20, back, 2048));
    CHECK(back[0] == 0 && memcmp(back + 512, data, 512) == 0 && back[1024] == 0);
    CHECK_OK(vhdx_close(h));
    CHECK(check_clean(m));
    free(data);
    free(back);
    memdev_free(m);
}

/* Many allocations with batching: sequences of several entries, wrap-around
 * of a 1 MiB ring, and replay of what an abandoned session left behind. */
static void test_batching_wrap_replay(void)
{
    struct memdev *m = make_image(2ull << 30, 1 << 20, 1 << 20, 512);
    struct vhdx *h = open_img(m, 0, 8, 0);
    uint8_t sector[512];
    int max_count = 0;
    for (int b = 0; b < 700; b++) {
        test_fill(sector, sizeof sector, (uint64_t)b);
        /* Blocks far apart: each allocation touches its own BAT page. */
        CHECK_OK(vhdx_write(h, (uint64_t)b * (2 << 20) % (2ull << 30) + ((uint64_t)b / 1024) * 512, sector, 512));
        if (b % 50 == 7) {
            struct vhdx_log_ring ring = {&m->base, 1 << 20, 1 << 20, {{0}}};
            uint8_t hb[4096];
            struct vhdx_header hd1, hd2;
            m->base.ops->read(&m->base, hb, 4096, 65536);
            vhdx_header_decode(hb, &hd1);
            m->base.ops->read(&m->base, hb, 4096, 131072);
            vhdx_header_decode(hb, &hd2);
            ring.log_guid = hd1.sequence > hd2.sequence ? hd1.log_guid : hd2.log_guid;
            struct vhdx_log_sequence s;
            CHECK_OK(vhdx_log_search(&ring, &s, NULL, NULL));
            CHECK(s.found);
            if ((int)s.count > max_count)
                max_count = (int)s.count;
            vhdx_log_sequence_free(&s);
        }
    }
    CHECK(max_count > 1); /* batching really leaves multi-entry sequences on disk */
    struct vhdx_info in;
    vhdx_get_info(h, &in);
    CHECK(in.log_entries_written >= 350);       /* 700 allocations, 2 BAT pages per entry at most */
    CHECK(in.log_entries_written * 8192 > 3 * (1u << 20)); /* the 1 MiB ring wrapped several times */
    /* Crash: drop the handle without closing; everything written is on the device. */
    vhdx_abandon(h);
    CHECK(check_clean(m)); /* the checker replays in memory */
    struct memdev *before = memdev_clone(m);
    h = open_img(m, VHDX_OPEN_RDONLY, 0, 0);
    vhdx_get_info(h, &in);
    CHECK(in.replayed && in.blocks_allocated == 700);
    vhdx_close(h);
    CHECK(memdev_equal(before, m)); /* read-only: not one byte written */
    h = open_img(m, 0, 0, 0);
    vhdx_get_info(h, &in);
    CHECK(in.replayed && in.blocks_allocated == 700 && vhdx_guid_is_zero(&in.header.log_guid));
    int ok = 1;
    for (int b = 0; b < 700; b++) {
        uint8_t want[512], got[512];
        test_fill(want, sizeof want, (uint64_t)b);
        CHECK_OK(vhdx_read(h, (uint64_t)b * (2 << 20) % (2ull << 30) + ((uint64_t)b / 1024) * 512, got, 512));
        ok &= memcmp(want, got, 512) == 0;
    }
    CHECK(ok);
    CHECK_OK(vhdx_close(h));
    /* A second open finds nothing to replay. */
    h = open_img(m, 0, 0, 0);
    vhdx_get_info(h, &in);
    CHECK(!in.replayed);
    vhdx_close(h);
    memdev_free(before);
    memdev_free(m);
}

/* Cut after every write of a session (prefix model, in order): the image
 * always opens, checks clean, and holds every write acknowledged by a flush
 * that completed before the cut. */
static void test_every_prefix_opens(uint32_t apply_every)
{
    struct memdev *m = make_image(32 << 20, 1 << 20, 1 << 20, 512);
    struct memdev *base = memdev_clone(m);
    m->record = 1;
    const size_t base_records = 0;
    struct vhdx *h = open_img(m, 0, apply_every, 0);
    enum { W = 12 };
    uint8_t data[W][1024];
    uint64_t offs[W];
    size_t acked_at[W]; /* log index after which write i is acknowledged */
    /* Write i is acknowledged once the first vhdx_flush() after it returns:
     * acked_at[i] is the number of device records at that moment. */
    int unacked_from = 0;
    for (int i = 0; i < W; i++) {
        test_fill(data[i], sizeof data[i], (uint64_t)i + 100);
        offs[i] = (uint64_t)((i * 7) % 20) * (1 << 20) + (uint64_t)(i % 3) * 4096;
        acked_at[i] = SIZE_MAX;
        CHECK_OK(vhdx_write(h, offs[i], data[i], sizeof data[i]));
        if (i % 4 == 3 || i == W - 1) {
            CHECK_OK(vhdx_flush(h));
            for (; unacked_from <= i; unacked_from++)
                acked_at[unacked_from] = m->nlog;
        }
    }
    CHECK_OK(vhdx_close(h));
    int all_open = 1, all_clean = 1, all_data = 1;
    for (size_t n = base_records; n <= m->nlog; n++) {
        struct memdev *c = memdev_replay_prefix(base, m, n);
        struct vhdx_diag d;
        struct vhdx_options o = {.rng = &rng, .diag = &d};
        struct vhdx *hc;
        if (vhdx_open(&c->base, &o, &hc) != 0) {
            if (all_open)
                fprintf(stderr, "  prefix %zu of %zu refused: %s\n", n, m->nlog, d.message);
            all_open = 0;
            memdev_free(c);
            continue;
        }
        for (int i = 0; i < W; i++) {
            if (acked_at[i] > n)
                continue;
            uint8_t got[1024];
            /* A later write to the same place may also be acknowledged. */
            int later = 0;
            for (int j = i + 1; j < W; j++)
                later |= offs[j] == offs[i] && acked_at[j] <= n;
            if (later)
                continue;
            if (vhdx_read(hc, offs[i], got, sizeof got) != 0 || memcmp(got, data[i], sizeof got) != 0) {
                if (all_data)
                    fprintf(stderr, "  prefix %zu: acknowledged write %d lost\n", n, i);
                all_data = 0;
            }
        }
        vhdx_close(hc);
        if (!check_clean(c)) {
            if (all_clean)
                fprintf(stderr, "  prefix %zu: check found errors after replay\n", n);
            all_clean = 0;
        }
        memdev_free(c);
    }
    CHECK(all_open);
    CHECK(all_clean);
    CHECK(all_data);
    memdev_free(base);
    memdev_free(m);
}

static void test_refusal_is_byte_identical(void)
{
    struct memdev *m = make_image(32 << 20, 1 << 20, 1 << 20, 512);
    struct vhdx *h = open_img(m, 0, 4, 0);
    uint8_t sec[512] = {1};
    for (int b = 0; b < 3; b++)
        CHECK_OK(vhdx_write(h, (uint64_t)b << 20, sec, sizeof sec));
    vhdx_abandon(h); /* LogGuid set, entries in the ring */
    /* Break every entry's checksum: LogGuid without a valid sequence. */
    for (uint64_t pos = 0; pos < (1u << 20); pos += 4096)
        if (memcmp(m->buf + (1u << 20) + pos, "loge", 4) == 0)
            m->buf[(1u << 20) + pos + 4] ^= 0xFF;
    struct memdev *before = memdev_clone(m);
    h = open_img(m, 0, 0, VHDX_E_LOG_NO_SEQUENCE);
    CHECK(h == NULL && memdev_equal(before, m));
    h = open_img(m, VHDX_OPEN_RDONLY, 0, VHDX_E_LOG_NO_SEQUENCE);
    /* Repair clears it, says so, and then the image opens. */
    struct vhdx_check_report r;
    CHECK_OK(vhdx_check(&m->base, VHDX_CHECK_REPAIR, &r));
    CHECK(r.repaired == 1 && r.errors == 0 && r.problems[0].repair == VHDX_REPAIR_CLEAR_LOG_GUID);
    vhdx_check_report_free(&r);
    h = open_img(m, 0, 0, 0);
    vhdx_close(h);
    memdev_free(before);

    /* Truncated below FlushedFileOffset. */
    h = open_img(m, 0, 4, 0);
    CHECK_OK(vhdx_write(h, 10u << 20, sec, sizeof sec));
    vhdx_abandon(h);
    m->base.ops->truncate(&m->base, m->size - (3u << 20));
    before = memdev_clone(m);
    open_img(m, 0, 0, VHDX_E_LOG_TRUNCATED);
    CHECK(memdev_equal(before, m));
    memdev_free(before);
    memdev_free(m);
}

static void test_write_guids(void)
{
    struct memdev *m = make_image(32 << 20, 1 << 20, 1 << 20, 512);
    struct vhdx *h = open_img(m, 0, 0, 0);
    struct vhdx_info a, b;
    vhdx_get_info(h, &a);
    uint8_t buf[512];
    CHECK_OK(vhdx_read(h, 0, buf, sizeof buf));
    vhdx_get_info(h, &b);
    CHECK(vhdx_guid_equal(&a.header.file_write_guid, &b.header.file_write_guid)); /* reads change nothing */
    CHECK_OK(vhdx_write(h, 0, buf, sizeof buf));
    vhdx_get_info(h, &b);
    CHECK(!vhdx_guid_equal(&a.header.file_write_guid, &b.header.file_write_guid));
    CHECK(!vhdx_guid_equal(&a.header.data_write_guid, &b.header.data_write_guid));
    CHECK(b.header.sequence >= a.header.sequence + 2);
    struct vhdx_info c;
    CHECK_OK(vhdx_write(h, 4096, buf, sizeof buf));
    vhdx_get_info(h, &c);
    CHECK(vhdx_guid_equal(&c.header.file_write_guid, &b.header.file_write_guid)); /* once per session */
    CHECK(vhdx_guid_equal(&c.header.data_write_guid, &b.header.data_write_guid));
    CHECK_OK(vhdx_close(h));
    /* Both header copies hold the same fields after the double update. */
    struct vhdx_header h1, h2;
    CHECK_OK(vhdx_header_decode(m->buf + 65536, &h1));
    CHECK_OK(vhdx_header_decode(m->buf + 131072, &h2));
    CHECK(vhdx_guid_equal(&h1.file_write_guid, &h2.file_write_guid) && vhdx_guid_is_zero(&h1.log_guid) &&
          vhdx_guid_is_zero(&h2.log_guid));
    memdev_free(m);
}

static void test_poison(void)
{
    struct memdev *m = make_image(32 << 20, 1 << 20, 1 << 20, 512);
    struct vhdx *h = open_img(m, 0, 0, 0);
    uint8_t buf[512] = {7};
    CHECK_OK(vhdx_write(h, 0, buf, sizeof buf));
    m->fail_flush_at = m->flushes + 1;
    CHECK_RC(vhdx_write(h, 5u << 20, buf, sizeof buf), -5); /* allocation: the flush before the log fails */
    CHECK_RC(vhdx_read(h, 0, buf, sizeof buf), VHDX_E_POISONED);
    CHECK_RC(vhdx_flush(h), VHDX_E_POISONED);
    struct vhdx_info in;
    vhdx_get_info(h, &in);
    CHECK(in.poisoned == -5);
    CHECK_RC(vhdx_close(h), -5);
    m->fail_flush_at = 0;
    CHECK(check_clean(m));
    /* A failed payload write into an allocated block leaves the handle usable. */
    h = open_img(m, 0, 0, 0);
    CHECK_OK(vhdx_write(h, 0, buf, sizeof buf)); /* the session's header update is done */
    m->fail_write_at = m->writes + 1;
    CHECK_RC(vhdx_write(h, 0, buf, sizeof buf), -5);
    CHECK_OK(vhdx_read(h, 0, buf, sizeof buf));
    CHECK_OK(vhdx_close(h));
    memdev_free(m);
}

static void test_copies_and_required(void)
{
    struct memdev *m = make_image(32 << 20, 1 << 20, 1 << 20, 512);
    /* Damaged header 2 (the current one after create): header 1 is used. */
    m->buf[131072 + 200] ^= 1;
    struct vhdx *h = open_img(m, VHDX_OPEN_RDONLY, 0, 0);
    vhdx_close(h);
    struct vhdx_check_report r;
    CHECK_OK(vhdx_check(&m->base, 0, &r));
    CHECK(r.errors == 0 && r.warnings == 1 && r.problems[0].repair == VHDX_REPAIR_HEADER_COPY);
    vhdx_check_report_free(&r);
    CHECK_OK(vhdx_check(&m->base, VHDX_CHECK_REPAIR, &r));
    CHECK(r.errors == 0 && r.warnings == 0 && r.repaired == 1);
    vhdx_check_report_free(&r);
    /* Damaged region table copy 1: copy 2 is used, repair rewrites through the log. */
    m->buf[196608 + 100] ^= 1;
    h = open_img(m, VHDX_OPEN_RDONLY, 0, 0);
    vhdx_close(h);
    CHECK_OK(vhdx_check(&m->base, VHDX_CHECK_REPAIR, &r));
    CHECK(r.errors == 0 && r.warnings == 0 && r.repaired >= 1);
    vhdx_check_report_free(&r);
    CHECK(memcmp(m->buf + 196608, m->buf + 262144, 65536) == 0);
    /* Both headers damaged. */
    struct memdev *c = memdev_clone(m);
    c->buf[65536 + 300] ^= 1;
    c->buf[131072 + 300] ^= 1;
    open_img(c, 0, 0, VHDX_E_NO_HEADER);
    memdev_free(c);
    /* An unknown region marked required. */
    c = memdev_clone(m);
    struct vhdx_region_table *t = calloc(1, sizeof *t);
    CHECK_OK(vhdx_region_table_decode(c->buf + 196608, t));
    t->entries[t->entry_count++] = (struct vhdx_region_entry){{{1, 2, 3}}, 40u << 20, 1u << 20, 1};
    c->base.ops->truncate(&c->base, 41u << 20);
    vhdx_region_table_encode(t, c->buf + 196608);
    vhdx_region_table_encode(t, c->buf + 262144);
    struct memdev *before = memdev_clone(c);
    open_img(c, 0, 0, VHDX_E_REQUIRED_REGION);
    CHECK(memdev_equal(before, c));
    memdev_free(before);
    /* Not required: accepted. */
    t->entries[t->entry_count - 1].required = 0;
    vhdx_region_table_encode(t, c->buf + 196608);
    vhdx_region_table_encode(t, c->buf + 262144);
    h = open_img(c, 0, 0, 0);
    vhdx_close(h);
    /* Overlapping the BAT region. */
    t->entries[t->entry_count - 1].file_offset = t->entries[0].file_offset;
    vhdx_region_table_encode(t, c->buf + 196608);
    vhdx_region_table_encode(t, c->buf + 262144);
    open_img(c, 0, 0, VHDX_E_OVERLAP);
    free(t);
    memdev_free(c);
    memdev_free(m);
}

/* A known metadata item's Length (MS-VHDX 2.6.1.2: bounded by the region
 * and 1 MB only): longer than its value opens (the value is the leading
 * bytes; the checker warns), shorter is refused and the image left as it
 * was (KD2, corpus/regressions/29d11eb548f4). */
static void test_item_length(void)
{
    struct memdev *m = make_image(32 << 20, 1 << 20, 1 << 20, 512);
    struct vhdx_region_table *t = calloc(1, sizeof *t);
    CHECK_OK(vhdx_region_table_decode(m->buf + 196608, t));
    uint64_t meta = 0;
    for (uint32_t i = 0; i < t->entry_count; i++)
        if (vhdx_guid_equal(&t->entries[i].guid, &VHDX_GUID_REGION_METADATA))
            meta = t->entries[i].file_offset;
    free(t);
    CHECK(meta != 0);
    uint8_t *len_field = NULL;
    const uint32_t count = vhdx_get16(m->buf + meta + 10);
    for (uint32_t i = 0; i < count; i++) {
        uint8_t *e = m->buf + meta + 32 + 32 * (size_t)i;
        if (!memcmp(e, VHDX_GUID_ITEM_VIRTUAL_DISK_ID.b, 16))
            len_field = e + 20;
    }
    CHECK(len_field != NULL);
    if (!len_field) {
        memdev_free(m);
        return;
    }
    CHECK(vhdx_get32(len_field) == VHDX_ITEM_VIRTUAL_DISK_ID_SIZE);
    struct vhdx_info before, after;
    struct vhdx *h = open_img(m, VHDX_OPEN_RDONLY, 0, 0);
    vhdx_get_info(h, &before);
    vhdx_close(h);
    /* longer (moved to a free place of the region so that it overlaps
     * nothing): the same disk id, a warning */
    struct memdev *c = memdev_clone(m);
    uint8_t *cl = len_field - m->buf + c->buf;
    memcpy(c->buf + meta + 131072, c->buf + meta + vhdx_get32(cl - 4), 16);
    vhdx_put32(cl - 4, 131072);
    vhdx_put32(cl, 520);
    h = open_img(c, VHDX_OPEN_RDONLY, 0, 0);
    if (h) {
        vhdx_get_info(h, &after);
        CHECK(!memcmp(&before.virtual_disk_id, &after.virtual_disk_id, sizeof before.virtual_disk_id));
        vhdx_close(h);
    }
    struct vhdx_check_report r;
    CHECK_OK(vhdx_check(&c->base, 0, &r));
    CHECK(r.errors == 0 && r.warnings == 1);
    vhdx_check_report_free(&r);
    memdev_free(c);
    /* shorter: refused, nothing written */
    c = memdev_clone(m);
    vhdx_put32(len_field - m->buf + c->buf, 8);
    struct memdev *copy = memdev_clone(c);
    open_img(c, 0, 0, VHDX_E_ITEM_VALUE);
    CHECK(memdev_equal(copy, c));
    memdev_free(copy);
    memdev_free(c);
    memdev_free(m);
}

/* The writer's own multi-sector descriptor lists: a 16 MiB log allows
 * entries of 4 MiB, and a discard over a 128 GiB disk changes 256 BAT
 * pages in one call, so one entry carries 256 descriptors (3 descriptor
 * sectors).  Left unapplied (batched), it must replay. */
static void test_many_pages_one_entry(void)
{
    struct memdev *m = make_image(128ull << 30, 1 << 20, 16 << 20, 512);
    struct vhdx *h = open_img(m, 0, 1000, 0);
    uint8_t sec[512];
    test_fill(sec, sizeof sec, 4);
    /* One block per BAT page (512 entries per 4 KiB page, minus bitmap slots). */
    for (uint64_t b = 0; b < 256; b++)
        CHECK_OK(vhdx_write(h, b * 511 * (1 << 20), sec, sizeof sec));
    CHECK_OK(vhdx_flush(h));
    CHECK_OK(vhdx_discard(h, 0, 128ull << 30));
    CHECK_OK(vhdx_flush(h));
    vhdx_abandon(h); /* the entries were never applied */
    /* The log now holds an entry with >126 descriptors: check its shape. */
    uint8_t hb[4096];
    struct vhdx_header hd[2];
    memcpy(hb, m->buf + 65536, 4096);
    vhdx_header_decode(hb, &hd[0]);
    memcpy(hb, m->buf + 131072, 4096);
    vhdx_header_decode(hb, &hd[1]);
    struct vhdx_log_ring ring = {&m->base, 1 << 20, 16 << 20, hd[hd[1].sequence > hd[0].sequence].log_guid};
    struct vhdx_log_sequence seq;
    struct vhdx_log_scan_item *items;
    size_t n;
    CHECK_OK(vhdx_log_search(&ring, &seq, &items, &n));
    uint32_t most = 0;
    for (size_t i = 0; i < n; i++)
        if (items[i].status == 0 && items[i].hdr.descriptor_count > most)
            most = items[i].hdr.descriptor_count;
    CHECK(seq.found && most > 126);
    free(items);
    vhdx_log_sequence_free(&seq);
    h = open_img(m, 0, 0, 0);
    struct vhdx_info in;
    vhdx_get_info(h, &in);
    CHECK(in.replayed && in.blocks_allocated == 0);
    uint8_t back[512];
    CHECK_OK(vhdx_read(h, 255ull * 511 * (1 << 20), back, sizeof back));
    CHECK(back[0] == 0 && back[511] == 0);
    CHECK_OK(vhdx_close(h));
    CHECK(check_clean(m));
    memdev_free(m);
}

int main(void)
{
    test_many_pages_one_entry();
    test_create_open();
    test_io();
    test_batching_wrap_replay();
    test_every_prefix_opens(1);
    test_every_prefix_opens(3);
    test_refusal_is_byte_identical();
    test_write_guids();
    test_poison();
    test_copies_and_required();
    test_item_length();
    return test_summary("test_image");
}
