/*
 * test_crc32c.c - CRC-32C: known vectors, agreement of all implementations
 * over every length 0..1100 and odd alignments, chaining, and the lane
 * boundaries of the three-way hardware loop.
 */
#include "testutil.h"
#include "vhdx/crc32c.h"

static void test_vectors(void)
{
    const char *s = "123456789";
    CHECK(crc32c(0, s, 9) == 0xE3069283u);
    CHECK(crc32c_ref(0, s, 9) == 0xE3069283u);
    CHECK(crc32c_sw(0, s, 9) == 0xE3069283u);
    CHECK(crc32c_hw(0, s, 9) == 0xE3069283u);
    CHECK(crc32c(0, "", 0) == 0);
    /* 32 bytes of zeros and of 0xFF (RFC 3720 B.4 test vectors). */
    unsigned char z[32] = {0}, f[32];
    memset(f, 0xFF, sizeof f);
    CHECK(crc32c(0, z, 32) == 0x8A9136AAu);
    CHECK(crc32c(0, f, 32) == 0x62A8AB43u);
    unsigned char inc[32];
    for (int i = 0; i < 32; i++)
        inc[i] = (unsigned char)i;
    CHECK(crc32c(0, inc, 32) == 0x46DD794Eu);
}

static void test_agreement(void)
{
    static uint8_t buf[3 * 8192 * 2 + 64];
    test_fill(buf, sizeof buf, 42);
    for (size_t len = 0; len <= 1100; len++) {
        for (size_t align = 0; align < 3; align++) {
            uint32_t r = crc32c_ref(0, buf + align, len);
            if (crc32c_sw(0, buf + align, len) != r || crc32c_hw(0, buf + align, len) != r ||
                crc32c(0, buf + align, len) != r) {
                CHECK(!"implementations disagree");
                fprintf(stderr, "  len %zu align %zu\n", len, align);
                return;
            }
        }
    }
    /* Lengths around the three-way lane sizes (3*256, 3*8192). */
    const size_t lens[] = {767, 768, 769, 3 * 8192 - 1, 3 * 8192, 3 * 8192 + 1, 3 * 8192 + 768, sizeof buf - 1};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        uint32_t r = crc32c_ref(0, buf, lens[i]);
        CHECK(crc32c_sw(0, buf, lens[i]) == r);
        CHECK(crc32c_hw(0, buf, lens[i]) == r);
    }
}

static void test_chaining(void)
{
    uint8_t buf[5000];
    test_fill(buf, sizeof buf, 7);
    uint32_t whole = crc32c(0, buf, sizeof buf);
    for (size_t cut = 0; cut <= sizeof buf; cut += 333) {
        CHECK(crc32c(crc32c(0, buf, cut), buf + cut, sizeof buf - cut) == whole);
        CHECK(crc32c_ref(crc32c_ref(0, buf, cut), buf + cut, sizeof buf - cut) == whole);
    }
}

int main(void)
{
    test_vectors();
    test_agreement();
    test_chaining();
    printf("crc32c implementation: %s\n", crc32c_impl_name());
    return test_summary("test_crc32c");
}
