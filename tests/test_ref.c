/*
 * test_ref.c - the independent reference (harness/ref) against images the
 * engine writes: the same geometry and the same virtual-disk bytes, a
 * pending log replayed to the same contents, and the verdict on damaged
 * images tied to the rule it cites (recoverable with one intact copy,
 * invalid by a MUST, undecided where the text leaves the choice).
 */
#include <string.h>

#include "ref/ref.h"
#include "testutil.h"
#include "vhdx/crc32c.h"
#include "vhdx/vhdx.h"

static int mem_read(void *ctx, void *buf, size_t len, uint64_t off)
{
    const struct memdev *m = ctx;
    memset(buf, 0, len);
    if (off < m->size)
        memcpy(buf, m->buf + off, m->size - off < len ? (size_t)(m->size - off) : len);
    return 0;
}

static int ref_of(const struct memdev *m, struct ref_image *img)
{
    static struct ref_src src;
    src = (struct ref_src){mem_read, (void *)m, m->size, NULL, NULL};
    return ref_image_open(img, &src);
}

static struct vhdx_rng_seeded rs = {12345};
static struct vhdx_rng rng = {vhdx_rng_seeded_fill, &rs};

static struct memdev *make(uint64_t vsize, uint32_t bs, uint32_t lsec, int pending, int writes)
{
    struct memdev *m = memdev_new();
    struct vhdx_create_params cp = {vsize, bs, 1u << 20, lsec, 4096};
    struct vhdx_options o = {.rng = &rng, .apply_every = pending ? 64 : 1};
    CHECK_OK(vhdx_create(&m->base, &cp, &o));
    struct vhdx *h = NULL;
    CHECK_OK(vhdx_open(&m->base, &o, &h));
    uint8_t buf[8192];
    for (int i = 0; i < writes && h; i++) {
        for (size_t k = 0; k < sizeof buf; k++)
            buf[k] = (uint8_t)(i * 31 + k);
        uint64_t off = ((uint64_t)i * 7919 * lsec * 97) % (vsize - sizeof buf);
        off -= off % lsec;
        CHECK_OK(vhdx_write(h, off, buf, sizeof buf));
    }
    if (h) {
        CHECK_OK(vhdx_discard(h, 0, bs)); /* a whole block to ZERO */
        if (pending) {
            CHECK_OK(vhdx_flush(h));
            vhdx_abandon(h); /* a power cut: the log stays pending */
        } else {
            CHECK_OK(vhdx_close(h));
        }
    }
    return m;
}

/* The reference and the engine (read-only open) agree on geometry and on
 * the bytes of many ranges of the virtual disk, at odd offsets and lengths. */
static void agree(struct memdev *m)
{
    struct ref_image r;
    CHECK_OK(ref_of(m, &r));
    CHECK(r.status == REF_VALID);
    if (r.status != REF_VALID)
        fprintf(stderr, "  reference: %s: %s\n", r.rule, r.why);
    struct vhdx *h = NULL;
    struct vhdx_options o = {.flags = VHDX_OPEN_RDONLY};
    CHECK_OK(vhdx_open(&m->base, &o, &h));
    if (!h) {
        ref_image_free(&r);
        return;
    }
    struct vhdx_info in;
    vhdx_get_info(h, &in);
    CHECK(in.geo.virtual_size == r.virtual_size);
    CHECK(in.geo.block_size == r.block_size);
    CHECK(in.geo.logical_sector == r.logical_sector);
    CHECK(in.bat_offset == r.bat_offset && in.metadata_offset == r.meta_offset);
    CHECK(in.blocks_allocated == r.blocks_present);
    CHECK(in.replayed == r.log_pending);
    if (r.log_pending) {
        CHECK(in.replayed_entries == r.log.entries);
        CHECK(in.replayed_head_sequence == r.log.head_sequence);
    }
    static uint8_t a[70000], b[70000];
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 300; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t len = 1 + (size_t)(x % sizeof a);
        uint64_t off = (x >> 20) % (r.virtual_size - len);
        int defined = 0;
        CHECK_OK(vhdx_read(h, off, a, len));
        CHECK(ref_image_read_virtual(&r, b, len, off, &defined) == 0);
        CHECK(memcmp(a, b, len) == 0);
    }
    vhdx_close(h);
    ref_image_free(&r);
}

static void put_header(struct memdev *m, uint64_t off)
{
    ref_put32(m->buf + off + 4, 0);
    ref_put32(m->buf + off + 4, ref_crc32c(0, m->buf + off, 4096));
}

static void put_region(struct memdev *m, uint64_t off)
{
    ref_put32(m->buf + off + 4, 0);
    ref_put32(m->buf + off + 4, ref_crc32c(0, m->buf + off, 65536));
}

static void expect(struct memdev *m, enum ref_status st, const char *rule_prefix)
{
    struct ref_image r;
    CHECK_OK(ref_of(m, &r));
    CHECK(r.status == st);
    CHECK(rule_prefix == NULL || strncmp(r.rule, rule_prefix, strlen(rule_prefix)) == 0);
    if (r.status != st || (rule_prefix && strncmp(r.rule, rule_prefix, strlen(rule_prefix))))
        fprintf(stderr, "  got %s [%s] %s; wanted %s [%s]\n", ref_status_name(r.status), r.rule, r.why,
                ref_status_name(st), rule_prefix ? rule_prefix : "");
    ref_image_free(&r);
}

static int current_header(struct memdev *m)
{
    struct ref_image r;
    ref_of(m, &r);
    int c = r.current;
    ref_image_free(&r);
    return c;
}

static void damaged(void)
{
    struct memdev *m = make(64u << 20, 1u << 20, 512, 0, 40);
    struct memdev *c;
    /* one header copy damaged: recoverable; both: no current header */
    c = memdev_clone(m);
    c->buf[65536 + 100] ^= 1;
    expect(c, REF_VALID, NULL);
    c->buf[131072 + 100] ^= 1;
    expect(c, REF_INVALID, "2.2.2 no current header");
    memdev_free(c);
    /* one region table copy damaged: recoverable; both: invalid */
    c = memdev_clone(m);
    c->buf[196608 + 40] ^= 1;
    expect(c, REF_VALID, NULL);
    c->buf[262144 + 40] ^= 1;
    expect(c, REF_INVALID, "2.2.3 region table");
    memdev_free(c);
    /* the current header's LogOffset off 1 MiB */
    c = memdev_clone(m);
    uint64_t h = current_header(c) ? 131072 : 65536;
    ref_put64(c->buf + h + 72, ref_le64(c->buf + h + 72) + 4096);
    put_header(c, h);
    expect(c, REF_INVALID, "2.2.2 LogOffset");
    memdev_free(c);
    /* a LogGuid with no entry under it */
    c = memdev_clone(m);
    memset(c->buf + h + 48, 0x5A, 16);
    put_header(c, h);
    expect(c, REF_INVALID, "2.3.3 no valid sequence");
    memdev_free(c);
    /* Version 2 */
    c = memdev_clone(m);
    ref_put16(c->buf + h + 66, 2);
    put_header(c, h);
    expect(c, REF_INVALID, "2.2.2 Version");
    memdev_free(c);
    /* BAT region moved onto the metadata region (both copies) */
    struct ref_image r;
    ref_of(m, &r);
    c = memdev_clone(m);
    for (uint64_t t = 196608; t <= 262144; t += 65536) {
        for (uint32_t i = 0; i < ref_le32(c->buf + t + 8); i++)
            if (!memcmp(c->buf + t + 16 + 32 * i, REF_GUID_BAT, 16))
                ref_put64(c->buf + t + 16 + 32 * i + 16, r.meta_offset);
        put_region(c, t);
    }
    expect(c, REF_INVALID, "2.1 overlap");
    memdev_free(c);
    /* a payload block past the end of the file */
    c = memdev_clone(m);
    uint64_t e = ref_le64(c->buf + r.bat_offset + 8 * 3);
    ref_put64(c->buf + r.bat_offset + 8 * 3, 6 | ((c->size >> 20) + 5) << 20);
    expect(c, REF_INVALID, "2.5.1 FileOffsetMB");
    ref_put64(c->buf + r.bat_offset + 8 * 3, e);
    expect(c, REF_VALID, NULL);
    /* PARTIALLY_PRESENT without a parent */
    ref_put64(c->buf + r.bat_offset + 8 * 5, 7);
    expect(c, REF_INVALID, "2.5.1.1 PARTIALLY_PRESENT");
    memdev_free(c);
    /* a metadata item running past the end of its region */
    c = memdev_clone(m);
    ref_put32(c->buf + r.meta_offset + 32 + 16, r.meta_length - 4);
    expect(c, REF_INVALID, "2.6.1.2 Offset");
    memdev_free(c);
    /* a block size that is not a power of two */
    c = memdev_clone(m);
    for (uint32_t i = 0; i < ref_le16(c->buf + r.meta_offset + 10); i++) {
        const uint8_t *en = c->buf + r.meta_offset + 32 + 32 * i;
        if (!memcmp(en, REF_GUID_FILE_PARAMETERS, 16))
            ref_put32(c->buf + r.meta_offset + ref_le32(en + 16), 3u << 20);
    }
    expect(c, REF_INVALID, "2.6.2.1 BlockSize");
    memdev_free(c);
    /* an unknown required region */
    c = memdev_clone(m);
    for (uint64_t t = 196608; t <= 262144; t += 65536) {
        uint32_t n = ref_le32(c->buf + t + 8);
        uint8_t *ne = c->buf + t + 16 + 32 * n;
        memset(ne, 0xA5, 16);
        ref_put64(ne + 16, 200u << 20);
        ref_put32(ne + 24, 1u << 20);
        ref_put32(ne + 28, 1);
        ref_put32(c->buf + t + 8, n + 1);
        put_region(c, t);
    }
    expect(c, REF_INVALID, "2.2.3.2 Required");
    memdev_free(c);
    /* region table copies that disagree: the text does not say which wins */
    c = memdev_clone(m);
    ref_put32(c->buf + 262144 + 16 + 24, ref_le32(c->buf + 262144 + 16 + 24) + (1u << 20));
    put_region(c, 262144);
    expect(c, REF_UNDECIDED, "2.2.3 region table copies");
    memdev_free(c);
    ref_image_free(&r);
    memdev_free(m);
}

int main(void)
{
    /* CRC-32C check value (the standard "123456789" vector) */
    CHECK(ref_crc32c(0, "123456789", 9) == 0xE3069283u);
    CHECK(ref_crc32c(ref_crc32c(0, "1234", 4), "56789", 5) == 0xE3069283u);
    /* the fast path agrees with the bytewise one, and with the engine's */
    {
        static uint8_t rnd[9000];
        uint64_t x = 1;
        for (size_t i = 0; i < sizeof rnd; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            rnd[i] = (uint8_t)x;
        }
        for (size_t len = 0; len < sizeof rnd; len += 1 + len / 3) {
            CHECK(ref_crc32c_fast(0, rnd, len) == ref_crc32c(0, rnd, len));
            CHECK(ref_crc32c_bytewise(3, rnd + 1, len ? len - 1 : 0) == ref_crc32c(3, rnd + 1, len ? len - 1 : 0));
            CHECK(ref_crc32c(7, rnd, len) == crc32c(7, rnd, len));
        }
    }
    struct memdev *m;
    m = make(1ull << 30, 1u << 20, 512, 0, 40);
    agree(m);
    memdev_free(m);
    m = make(1ull << 30, 1u << 20, 4096, 1, 40);
    agree(m);
    memdev_free(m);
    /* chunk ratio 128: a sector-bitmap entry sits after block 127, and the
     * writes land on both sides of it */
    m = make(8ull << 30, 32u << 20, 512, 1, 6);
    agree(m);
    memdev_free(m);
    /* the BAT index formula (2.5) against the engine's, over geometries too
     * big to write */
    static const uint32_t bss[] = {1u << 20, 2u << 20, 32u << 20, 256u << 20};
    for (int lsec = 512; lsec <= 4096; lsec *= 8)
        for (int k = 0; k < 4; k++) {
            struct vhdx_geometry geo;
            CHECK_OK(vhdx_geometry_init(&geo, 64ull << 40, bss[k], (uint32_t)lsec, 4096));
            struct ref_image r;
            memset(&r, 0, sizeof r);
            r.chunk_ratio = ((uint64_t)1 << 23) * (uint64_t)lsec / bss[k];
            for (uint64_t b = 0; b < geo.data_blocks; b += 1 + b / 3)
                CHECK(ref_image_bat_index(&r, b) == vhdx_bat_index(&geo, b));
        }
    damaged();
    return test_summary("test_ref");
}
