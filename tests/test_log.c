/*
 * test_log.c - log entries, sequence search and replay on hand-built rings:
 * single and multi-entry sequences, Tail inside a sequence, wrap-around,
 * multi-sector descriptor lists, zero descriptors, stale entries of an older
 * LogGuid, competing sequences, torn entries, the maximal-run rule, hostile
 * values, replay targets, and overlay == applied replay.
 */
#include "testutil.h"
#include "vhdx/log.h"

#define LOG_OFF (1u << 20)

static struct vhdx_guid G_A, G_B;

struct ring_dev {
    struct memdev *m;
    struct vhdx_log_ring ring;
};

static void ring_init(struct ring_dev *r, uint32_t L, uint64_t file_size)
{
    r->m = memdev_new();
    r->m->base.ops->truncate(&r->m->base, file_size);
    r->ring = (struct vhdx_log_ring){&r->m->base, LOG_OFF, L, G_A};
}

/* Writes an entry at ring position pos (wrapping); returns its length. */
static size_t put_entry(struct ring_dev *r, uint32_t pos, const struct vhdx_guid *g, uint64_t seq, uint32_t tail,
                        const struct vhdx_log_update *u, size_t n, uint64_t last)
{
    struct vhdx_log_entry_params p = {*g, seq, tail, 4 << 20, last};
    size_t len = vhdx_log_entry_size(u, n);
    uint8_t *buf = malloc(len);
    CHECK(vhdx_log_entry_build(&p, u, n, buf) == len);
    uint32_t L = r->ring.log_length;
    for (size_t k = 0; k < len; k += 4096)
        r->m->base.ops->write(&r->m->base, buf + k, 4096, LOG_OFF + (pos + k) % L);
    free(buf);
    return len;
}

static uint8_t page_a[4096], page_b[4096], page_zero[4096];

static size_t put_simple(struct ring_dev *r, uint32_t pos, uint64_t seq, uint32_t tail)
{
    struct vhdx_log_update u = {8u << 20, page_a, 0};
    return put_entry(r, pos, &G_A, seq, tail, &u, 1, 16 << 20);
}

static void search(struct ring_dev *r, struct vhdx_log_sequence *seq, int want_rc)
{
    CHECK_RC(vhdx_log_search(&r->ring, seq, NULL, NULL), want_rc);
}

static void test_empty_and_single(void)
{
    struct ring_dev r;
    struct vhdx_log_sequence s;
    ring_init(&r, 1 << 20, 16 << 20);
    search(&r, &s, 0);
    CHECK(!s.found && s.candidates == 0);
    put_simple(&r, 0x3000, 5, 0x3000);
    search(&r, &s, 0);
    CHECK(s.found && s.count == 1 && s.positions[0] == 0x3000 && s.head_sequence == 5);
    vhdx_log_sequence_free(&s);
    memdev_free(r.m);
}

static void test_multi_entry_and_tail(void)
{
    struct ring_dev r;
    struct vhdx_log_sequence s;
    ring_init(&r, 1 << 20, 16 << 20);
    put_simple(&r, 0, 5, 0);
    put_simple(&r, 0x2000, 6, 0);
    put_simple(&r, 0x4000, 7, 0);
    search(&r, &s, 0);
    CHECK(s.found && s.count == 3 && s.tail_sequence == 5 && s.head_sequence == 7);
    CHECK(s.positions[0] == 0 && s.positions[1] == 0x2000 && s.positions[2] == 0x4000);
    vhdx_log_sequence_free(&s);
    /* Head's Tail in the middle: entry 5 is applied and not replayed. */
    put_simple(&r, 0x4000, 7, 0x2000);
    search(&r, &s, 0);
    CHECK(s.found && s.count == 2 && s.positions[0] == 0x2000 && s.tail_sequence == 6);
    vhdx_log_sequence_free(&s);
    /* Head's Tail outside its run: no valid sequence at all (6 links to 7,
     * so 6 is not a head either). */
    put_simple(&r, 0x4000, 7, 0x80000);
    search(&r, &s, 0);
    CHECK(!s.found && s.candidates == 3);
    memdev_free(r.m);
}

static void test_stale_guid_and_competing(void)
{
    struct ring_dev r;
    struct vhdx_log_sequence s;
    ring_init(&r, 1 << 20, 16 << 20);
    struct vhdx_log_update u = {8u << 20, page_a, 0};
    /* An older session (LogGuid B) with higher sequence numbers. */
    put_entry(&r, 0, &G_B, 100, 0, &u, 1, 16 << 20);
    put_entry(&r, 0x2000, &G_B, 101, 0, &u, 1, 16 << 20);
    put_simple(&r, 0x10000, 3, 0x10000);
    search(&r, &s, 0);
    CHECK(s.found && s.count == 1 && s.head_sequence == 3 && s.positions[0] == 0x10000);
    vhdx_log_sequence_free(&s);
    /* A competing sequence of the same GUID with a greater head wins. */
    put_simple(&r, 0x40000, 9, 0x40000);
    put_simple(&r, 0x42000, 10, 0x40000);
    search(&r, &s, 0);
    CHECK(s.found && s.head_sequence == 10 && s.count == 2);
    vhdx_log_sequence_free(&s);
    /* Two different heads with the same number: refused, not guessed. */
    put_simple(&r, 0x80000, 10, 0x80000);
    search(&r, &s, VHDX_E_LOG_AMBIGUOUS);
    CHECK(!s.found);
    memdev_free(r.m);
}

static void test_torn_and_maximal(void)
{
    struct ring_dev r;
    struct vhdx_log_sequence s;
    ring_init(&r, 1 << 20, 16 << 20);
    put_simple(&r, 0, 5, 0);
    size_t len = put_simple(&r, 0x2000, 6, 0);
    /* Tear the second entry's data sector: the first alone is the sequence. */
    uint8_t junk[512];
    memset(junk, 0x5A, sizeof junk);
    r.m->base.ops->write(&r.m->base, junk, sizeof junk, LOG_OFF + 0x2000 + len - 1024);
    search(&r, &s, 0);
    CHECK(s.found && s.count == 1 && s.head_sequence == 5);
    vhdx_log_sequence_free(&s);
    /* Maximal-run rule: 6 valid but with a Tail outside; 5 links to 6 and so
     * is not a head; no sequence. */
    put_simple(&r, 0x2000, 6, 0x90000);
    search(&r, &s, 0);
    CHECK(!s.found);
    memdev_free(r.m);
}

static void test_wrap(void)
{
    struct ring_dev r;
    struct vhdx_log_sequence s;
    const uint32_t L = 64 * 1024;
    ring_init(&r, L, 16 << 20);
    struct vhdx_log_update u[2] = {{8u << 20, page_a, 0}, {9u << 20, page_b, 0}};
    /* 3 sectors starting at the last sector of the ring: wraps to 0 and 4K. */
    size_t len = put_entry(&r, L - 4096, &G_A, 40, L - 4096, u, 2, 16 << 20);
    CHECK(len == 3 * 4096);
    put_simple(&r, 8192, 41, L - 4096); /* follows the wrapped entry */
    search(&r, &s, 0);
    CHECK(s.found && s.count == 2 && s.positions[0] == L - 4096 && s.positions[1] == 8192);
    struct vhdx_replay_plan plan;
    CHECK_OK(vhdx_replay_plan_build(&r.ring, &s, &plan));
    CHECK(plan.count == 3 && plan.entries == 2);
    CHECK(plan.ext[0].offset == (8u << 20) && memcmp(plan.ext[0].data, page_a, 4096) == 0);
    CHECK(plan.ext[1].offset == (9u << 20) && memcmp(plan.ext[1].data, page_b, 4096) == 0);
    vhdx_replay_plan_free(&plan);
    vhdx_log_sequence_free(&s);
    memdev_free(r.m);
}

static void test_many_descriptors(void)
{
    struct ring_dev r;
    struct vhdx_log_sequence s;
    ring_init(&r, 4 << 20, 64 << 20);
    enum { N = 300 };
    static struct vhdx_log_update u[N];
    static uint8_t pages[N][4096];
    for (int i = 0; i < N; i++) {
        int zero = i % 3 == 0;
        if (!zero)
            test_fill(pages[i], 4096, (uint64_t)i + 1);
        else
            memset(pages[i], 0, 4096);
        /* Every other page skipped so zero runs never merge. */
        u[i] = (struct vhdx_log_update){(8u << 20) + (uint64_t)i * 8192, pages[i], 0};
    }
    size_t len = put_entry(&r, 0, &G_A, 1, 0, u, N, 32 << 20);
    CHECK(len == (3 + 200) * 4096); /* 300 descriptors -> 3 sectors, 200 data sectors */
    struct vhdx_log_scan_item *items;
    size_t n;
    CHECK_OK(vhdx_log_search(&r.ring, &s, &items, &n));
    CHECK(s.found && n == 1 && items[0].status == 0 && items[0].data_descriptors == 200 &&
          items[0].zero_descriptors == 100 && items[0].in_active);
    struct vhdx_replay_plan plan;
    CHECK_OK(vhdx_replay_plan_build(&r.ring, &s, &plan));
    CHECK(plan.count == N);
    int ok = 1;
    for (int i = 0; i < N; i++) {
        const struct vhdx_replay_extent *e = &plan.ext[i];
        ok &= e->offset == u[i].file_offset && e->length == 4096;
        ok &= (i % 3 == 0) ? e->data == NULL : memcmp(e->data, pages[i], 4096) == 0;
    }
    CHECK(ok);
    free(items);
    vhdx_replay_plan_free(&plan);
    vhdx_log_sequence_free(&s);
    memdev_free(r.m);
}

static void test_zero_merge(void)
{
    struct vhdx_log_update u[4] = {{8u << 20, page_zero, 0}, {(8u << 20) + 4096, NULL, 8192},
                                   {(8u << 20) + 12288, page_a, 0}, {(8u << 20) + 16384, page_zero, 0}};
    /* zero(4K)+zero(8K) merge into one 12K descriptor; data; zero. */
    CHECK(vhdx_log_entry_size(u, 4) == 2 * 4096);
    uint8_t buf[8192];
    struct vhdx_log_entry_params p = {G_A, 3, 0, 1 << 20, 16 << 20};
    vhdx_log_entry_build(&p, u, 4, buf);
    struct vhdx_log_header h;
    CHECK_OK(vhdx_log_entry_validate(buf, sizeof buf, &G_A, 1 << 20, &h));
    CHECK(h.descriptor_count == 3);
    struct vhdx_log_desc d;
    CHECK_OK(vhdx_log_desc_decode(buf + 64, &d));
    CHECK(d.kind == VHDX_DESC_ZERO && d.zero_length == 12288);
}

static void test_entry_rejections(void)
{
    uint8_t buf[8192];
    struct vhdx_log_update u = {8u << 20, page_a, 0};
    struct vhdx_log_entry_params p = {G_A, 3, 0, 1 << 20, 16 << 20};
    struct vhdx_log_header h;
    vhdx_log_entry_build(&p, &u, 1, buf);
    CHECK_OK(vhdx_log_entry_validate(buf, sizeof buf, &G_A, 1 << 20, &h));
    CHECK_RC(vhdx_log_entry_validate(buf, sizeof buf, &G_B, 1 << 20, &h), VHDX_E_LOG_GUID);
    CHECK_RC(vhdx_log_entry_validate(buf, sizeof buf, &G_A, 4096, &h), VHDX_E_LOG_LENGTH);
    uint8_t bad[8192];
    memcpy(bad, buf, sizeof bad);
    vhdx_put64(bad + 64 + 24, 4); /* descriptor sequence */
    CHECK_RC(vhdx_log_entry_validate(bad, sizeof bad, &G_A, 1 << 20, &h), VHDX_E_LOG_DESC_SEQUENCE);
    memcpy(bad, buf, sizeof bad);
    vhdx_put32(bad + 4096 + 4092, 4); /* data sector SequenceLow */
    CHECK_RC(vhdx_log_entry_validate(bad, sizeof bad, &G_A, 1 << 20, &h), VHDX_E_LOG_DATA_SEQUENCE);
    memcpy(bad, buf, sizeof bad);
    bad[4096 + 100] ^= 1; /* payload byte: only the CRC notices */
    CHECK_RC(vhdx_log_entry_validate(bad, sizeof bad, &G_A, 1 << 20, &h), VHDX_E_LOG_CRC);
    memcpy(bad, buf, sizeof bad);
    vhdx_put32(bad + 8, 12288); /* EntryLength larger than its contents */
    CHECK_RC(vhdx_log_entry_validate(bad, 12288, &G_A, 1 << 20, &h), VHDX_E_LOG_LENGTH);
    memcpy(bad, buf, sizeof bad);
    vhdx_put32(bad + 24, 0xFFFFFFFFu); /* DescriptorCount far beyond the entry */
    CHECK_RC(vhdx_log_entry_validate(bad, sizeof bad, &G_A, 1 << 20, &h), VHDX_E_LOG_LENGTH);
    memcpy(bad, buf, sizeof bad);
    vhdx_put32(bad + 28, 1); /* Reserved */
    CHECK_RC(vhdx_log_entry_validate(bad, sizeof bad, &G_A, 1 << 20, &h), VHDX_E_LOG_FIELD);
    memcpy(bad, buf, sizeof bad);
    vhdx_put32(bad + 8, 0); /* EntryLength 0 */
    CHECK_RC(vhdx_log_entry_validate(bad, sizeof bad, &G_A, 1 << 20, &h), VHDX_E_LOG_LENGTH);
}

static void test_targets(void)
{
    struct vhdx_log_ring ring = {NULL, LOG_OFF, 1 << 20, G_A};
    const uint64_t last = 16 << 20;
    CHECK(vhdx_log_target_ok(&ring, last, 3 << 20, 4096));
    CHECK(vhdx_log_target_ok(&ring, last, 192 * 1024, 4096));     /* region table 1 */
    CHECK(!vhdx_log_target_ok(&ring, last, 64 * 1024, 4096));     /* header 1 */
    CHECK(!vhdx_log_target_ok(&ring, last, 0, 4096));             /* file identifier */
    CHECK(!vhdx_log_target_ok(&ring, last, LOG_OFF, 4096));       /* the log */
    CHECK(!vhdx_log_target_ok(&ring, last, LOG_OFF - 4096, 8192)); /* straddling into the log */
    CHECK(!vhdx_log_target_ok(&ring, last, last - 4096, 8192));   /* past LastFileOffset */
    CHECK(!vhdx_log_target_ok(&ring, last, 3 << 20, 1ull << 40)); /* zero run 1 TiB past the file */
    CHECK(!vhdx_log_target_ok(&ring, 1ull << 50, 3 << 20, 4096)); /* LastFileOffset 1 PiB */
    CHECK(!vhdx_log_target_ok(&ring, last, UINT64_MAX - 4095, 4096)); /* wrap-around arithmetic */

    /* A sequence whose descriptor targets a header is refused whole. */
    struct ring_dev r;
    struct vhdx_log_sequence s;
    struct vhdx_replay_plan plan;
    ring_init(&r, 1 << 20, 16 << 20);
    struct vhdx_log_update u[2] = {{8u << 20, page_a, 0}, {VHDX_HEADER2_OFFSET, page_b, 0}};
    put_entry(&r, 0, &G_A, 1, 0, u, 2, 16 << 20);
    search(&r, &s, 0);
    CHECK(s.found);
    CHECK_RC(vhdx_replay_plan_build(&r.ring, &s, &plan), VHDX_E_LOG_TARGET);
    CHECK(plan.bad_target == VHDX_HEADER2_OFFSET && plan.count == 0);
    vhdx_log_sequence_free(&s);
    /* LastFileOffset of 1 PiB in the head. */
    struct vhdx_log_update ok = {8u << 20, page_a, 0};
    put_entry(&r, 0, &G_A, 1, 0, &ok, 1, 1ull << 50);
    search(&r, &s, 0);
    CHECK_RC(vhdx_replay_plan_build(&r.ring, &s, &plan), VHDX_E_LOG_TARGET);
    vhdx_log_sequence_free(&s);
    memdev_free(r.m);
}

/* Every position claims a long entry: the search must stay O(L). */
static void test_hostile_cost(void)
{
    struct ring_dev r;
    struct vhdx_log_sequence s;
    const uint32_t L = 1 << 20;
    ring_init(&r, L, 16 << 20);
    uint8_t sec[4096];
    for (uint32_t pos = 0; pos < L; pos += 4096) {
        memset(sec, 0, sizeof sec);
        struct vhdx_log_header h = {0, L - 4096, pos, 1000 + pos / 4096, 32000, 0, G_A, 0, 0};
        vhdx_log_header_encode(&h, sec);
        r.m->base.ops->write(&r.m->base, sec, sizeof sec, LOG_OFF + pos);
    }
    long before = r.m->reads;
    search(&r, &s, 0);
    CHECK(!s.found && s.candidates == L / 4096);
    /* 256 header reads, then each candidate reads at most up to the next "loge"
     * sector: a bounded number of small reads, not 256 x 1 MiB. */
    CHECK(r.m->reads - before < 4 * (long)(L / 4096));
    memdev_free(r.m);
}

/* Applying a plan and reading through the overlay give the same bytes. */
static void test_overlay_equals_apply(void)
{
    struct ring_dev r;
    struct vhdx_log_sequence s;
    struct vhdx_replay_plan plan;
    ring_init(&r, 1 << 20, 6 << 20);
    uint8_t fill[4096];
    memset(fill, 0xEE, sizeof fill);
    for (uint64_t off = 2 << 20; off < (6u << 20); off += 4096)
        r.m->base.ops->write(&r.m->base, fill, 4096, off);
    struct vhdx_log_update u[4] = {
        {3u << 20, page_a, 0},
        {(3u << 20) + 4096, NULL, 5 * 4096},       /* zero run inside the file */
        {(6u << 20) - 4096, NULL, 3 * 4096},       /* zero run crossing the end of the file */
        {(9u << 20), page_b, 0},                   /* data past the end: extends */
    };
    put_entry(&r, 0, &G_A, 1, 0, u, 4, 12 << 20);
    put_simple(&r, 0x3000, 2, 0); /* 8 MiB: past the end too */
    search(&r, &s, 0);
    CHECK(s.found && s.count == 2);
    CHECK_OK(vhdx_replay_plan_build(&r.ring, &s, &plan));
    struct bdev *ov;
    CHECK_OK(vhdx_overlay_create(&r.m->base, &plan, &ov));
    struct memdev *applied = memdev_clone(r.m);
    CHECK_OK(vhdx_replay_plan_apply(&applied->base, &plan));
    uint64_t osize;
    CHECK_OK(ov->ops->size(ov, &osize));
    CHECK(osize == applied->size && osize == (16u << 20)); /* the head's LastFileOffset */
    uint8_t *a = malloc(osize), *b = malloc(osize);
    CHECK_OK(ov->ops->read(ov, a, osize, 0));
    memcpy(b, applied->buf, osize);
    CHECK(memcmp(a, b, osize) == 0);
    CHECK(memcmp(b + (3u << 20), page_a, 4096) == 0);
    CHECK(b[(3u << 20) + 4096] == 0 && b[(6u << 20) - 1] == 0 && b[(2u << 20)] == 0xEE);
    CHECK(memcmp(b + (8u << 20), page_a, 4096) == 0 && memcmp(b + (9u << 20), page_b, 4096) == 0);
    CHECK(ov->ops->write(ov, a, 1, 0) != 0);
    free(a);
    free(b);
    bdev_destroy(ov);
    memdev_free(applied);
    vhdx_replay_plan_free(&plan);
    vhdx_log_sequence_free(&s);
    memdev_free(r.m);
}

int main(void)
{
    vhdx_guid_parse("AAAAAAAA-0000-4000-8000-000000000001", &G_A);
    vhdx_guid_parse("BBBBBBBB-0000-4000-8000-000000000002", &G_B);
    test_fill(page_a, sizeof page_a, 11);
    test_fill(page_b, sizeof page_b, 12);
    test_empty_and_single();
    test_multi_entry_and_tail();
    test_stale_guid_and_competing();
    test_torn_and_maximal();
    test_wrap();
    test_many_descriptors();
    test_zero_merge();
    test_entry_rejections();
    test_targets();
    test_hostile_cost();
    test_overlay_equals_apply();
    return test_summary("test_log");
}
