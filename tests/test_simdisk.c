/*
 * test_simdisk.c - the recording disk (volatile reads, unaligned writes,
 * shrink/grow, flush, dropping pending writes after a failed flush, the
 * trace it records) and the crash disk (layer order, resets, poison, torn
 * overlay writes, the structural signature, the guard, recording).
 */
#include "harness/simdisk.h"
#include "testutil.h"

static struct bdev *B(struct simdisk *s) { return simdisk_bdev(s); }

static void test_recording(void)
{
    struct trace t;
    trace_init(&t);
    struct simdisk s;
    CHECK_OK(simdisk_init(&s, NULL, 0, &t));
    uint8_t a[1500], b[1500];
    test_fill(a, sizeof a, 1);
    CHECK_OK(B(&s)->ops->write(B(&s), a, sizeof a, 100)); /* unaligned */
    CHECK_OK(B(&s)->ops->read(B(&s), b, sizeof b, 100));
    CHECK(memcmp(a, b, sizeof a) == 0);
    uint64_t size;
    B(&s)->ops->size(B(&s), &size);
    CHECK(size == 1600);
    CHECK(B(&s)->ops->read(B(&s), b, 10, 1595) == VHDX_E_SHORT_IO);
    CHECK_OK(B(&s)->ops->flush(B(&s)));
    /* Pending writes and a grow, then a failed flush drops them. */
    uint8_t z[512];
    memset(z, 0x77, sizeof z);
    CHECK_OK(B(&s)->ops->write(B(&s), z, sizeof z, 512));
    CHECK_OK(B(&s)->ops->truncate(B(&s), 1 << 20));
    B(&s)->ops->mark(B(&s), "fault.drop_pending", 0);
    B(&s)->ops->size(B(&s), &size);
    CHECK(size == 1600);
    CHECK_OK(B(&s)->ops->read(B(&s), b, 512, 512));
    CHECK(memcmp(b, a + 412, 512) == 0);
    /* Shrink inside a sector zero-fills its tail when grown again. */
    CHECK_OK(B(&s)->ops->truncate(B(&s), 700));
    CHECK_OK(B(&s)->ops->truncate(B(&s), 2048));
    CHECK_OK(B(&s)->ops->read(B(&s), b, 1348, 700));
    int zero = 1;
    for (int i = 0; i < 1348; i++)
        zero &= b[i] == 0;
    CHECK(zero);
    /* The trace holds every operation in order. */
    CHECK(t.n_ops == 7 && t.ops[0].kind == TR_WRITE && t.ops[1].kind == TR_FLUSH && t.ops[3].kind == TR_TRUNCATE &&
          t.ops[4].kind == TR_MARK && t.ops[5].kind == TR_TRUNCATE);
    CHECK(t.bytes_written == 1500 + 512);
    simdisk_free(&s);
    trace_free(&t);
}

static void test_crashdisk(void)
{
    struct secmap base;
    secmap_init(&base);
    static uint8_t sb[4][512];
    for (int i = 0; i < 4; i++) {
        memset(sb[i], 'A' + i, 512);
        secmap_put(&base, (uint64_t)i, sb[i]);
    }
    struct crashdisk c;
    crashdisk_init(&c, &base, 8 * 512);
    crashdisk_set_structural_limit(&c, 2);
    uint64_t sig0 = crashdisk_signature(&c);
    uint8_t p[512], o[512], w[512], r[512];
    memset(p, 'p', 512);
    memset(o, 'o', 512);
    memset(w, 'w', 512);
    CHECK_OK(crashdisk_prefix_write(&c, 0, p, 512));  /* structural */
    CHECK_OK(crashdisk_prefix_write(&c, 1024, p, 512)); /* payload */
    uint64_t sig1 = crashdisk_signature(&c);
    CHECK(sig1 != sig0);
    CHECK_OK(crashdisk_overlay_write(&c, 1024, o, 512));
    CHECK(crashdisk_signature(&c) == sig1); /* payload does not change it */
    CHECK_OK(c.base.ops->write(&c.base, w, 512, 1536)); /* scratch */
    crashdisk_read(&c, r, 512, 0);
    CHECK(r[0] == 'p');
    crashdisk_read(&c, r, 512, 512);
    CHECK(r[0] == 'B');
    crashdisk_read(&c, r, 512, 1024);
    CHECK(r[0] == 'o');
    crashdisk_read(&c, r, 512, 1536);
    CHECK(r[0] == 'w');
    crashdisk_read(&c, r, 512, 2048);
    CHECK(r[0] == 0);
    crashdisk_reset_keep_prefix(&c);
    crashdisk_read(&c, r, 512, 1024);
    CHECK(r[0] == 'p');
    crashdisk_read(&c, r, 512, 1536);
    CHECK(r[0] == 'D');
    CHECK(crashdisk_signature(&c) == sig1);
    crashdisk_reset(&c, 8 * 512);
    CHECK(crashdisk_signature(&c) == sig0);
    /* Poison for never-durable extension space. */
    c.poison_lo = 6;
    c.poison_hi = 8;
    crashdisk_read(&c, r, 512, 6 * 512);
    CHECK(memcmp(r, SECTOR_POISON, 512) == 0);
    /* Torn: only the units whose bit is set persist. */
    crashdisk_reset(&c, 8 * 512);
    static uint8_t big[4096];
    memset(big, 'T', sizeof big);
    uint8_t mask[1] = {0x05}; /* units 0 and 2 of 512 bytes */
    CHECK_OK(crashdisk_overlay_write_torn(&c, 0, big, 4 * 512, 512, mask));
    crashdisk_read(&c, r, 512, 0);
    CHECK(r[0] == 'T');
    crashdisk_read(&c, r, 512, 512);
    CHECK(r[0] == 'B');
    crashdisk_read(&c, r, 512, 1024);
    CHECK(r[0] == 'T');
    crashdisk_read(&c, r, 512, 1536);
    CHECK(r[0] == 'D');
    /* Copies (a write that is not sector-aligned) live in arena memory that
     * the next state reuses: two states with other bytes at one address must
     * not share a signature (they would share the subject's open), two with
     * the same bytes do. */
    crashdisk_reset(&c, 8 * 512);
    uint8_t part[100];
    memset(part, 'x', sizeof part);
    CHECK_OK(crashdisk_overlay_write(&c, 80, part, sizeof part)); /* structural sector 0, copied */
    const uint64_t sx = crashdisk_signature(&c);
    crashdisk_reset(&c, 8 * 512);
    memset(part, 'y', sizeof part);
    CHECK_OK(crashdisk_overlay_write(&c, 80, part, sizeof part));
    const uint64_t sy = crashdisk_signature(&c);
    CHECK(sx != sy);
    crashdisk_reset(&c, 8 * 512);
    memset(part, 'x', sizeof part);
    CHECK_OK(crashdisk_overlay_write(&c, 80, part, sizeof part));
    CHECK(crashdisk_signature(&c) == sx);
    crashdisk_free(&c);
    secmap_free(&base);
}

static int deny_header(void *ctx, uint64_t off, uint64_t len, int is_truncate)
{
    (void)ctx, (void)len, (void)is_truncate;
    return off < 512;
}

static void test_guard_and_rec(void)
{
    struct crashdisk c;
    crashdisk_init(&c, NULL, 4096);
    c.guard = deny_header;
    struct trace rec;
    trace_init(&rec);
    c.rec = &rec;
    uint8_t b[512] = {1};
    CHECK(c.base.ops->write(&c.base, b, 512, 0) == -5);
    CHECK_OK(c.base.ops->write(&c.base, b, 512, 1024));
    CHECK_OK(c.base.ops->flush(&c.base));
    CHECK(rec.n_ops == 2 && rec.ops[0].kind == TR_WRITE && rec.ops[1].kind == TR_FLUSH);
    trace_free(&rec);
    crashdisk_free(&c);
}

int main(void)
{
    test_recording();
    test_crashdisk();
    test_guard_and_rec();
    return test_summary("test_simdisk");
}
