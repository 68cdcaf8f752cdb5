/*
 * ref_crc.c - the reference's own CRC-32C (ref/ref.h).
 *
 * Bytewise, one 256-entry table, computed from the polynomial the first
 * time it is needed: the shape anyone can check against MS-VHDX section 2
 * ("CRC-32C ... Castagnoli polynomial, code 0x1EDC6F41"; 0x82F63B78 is its
 * bit-reversed form, the reflected CRC every VHDX checksum uses).  Shares
 * nothing with the engine's table, slicing or SSE4.2 paths, so a checksum
 * bug that the engine makes the same way on write and on read still shows
 * here.  Speed comes from the callers' caches, not from this loop.
 */
#include "ref/ref.h"

static uint32_t table[256];
static int ready;

static void build(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        table[i] = c;
    }
    ready = 1;
}

uint32_t ref_crc32c(uint32_t crc, const void *buf, size_t len)
{
    if (!ready)
        build();
    const uint8_t *p = buf;
    crc = ~crc;
    while (len--)
        crc = table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}
