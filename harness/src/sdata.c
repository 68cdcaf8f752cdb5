/*
 * sdata.c - self-describing sector data (layout in sdata.h).
 */
#include "harness/sdata.h"

#include "harness/secmap.h" /* SECTOR_ZERO, SECTOR_POISON */

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ref/ref.h"

void sdata_fill(uint8_t *buf, uint64_t first, uint32_t n, uint32_t write_id, uint64_t seed)
{
    for (uint32_t i = 0; i < n; i++)
        sdata_sector(buf + (size_t)i * 512, first + i, first, write_id, seed);
}

void sdata_sector(uint8_t p[512], uint64_t sector, uint64_t write_first, uint32_t write_id, uint64_t seed)
{
    {
        ref_put32(p, SDATA_MAGIC);
        ref_put32(p + 4, write_id);
        ref_put64(p + 8, sector);
        ref_put64(p + 16, seed);
        ref_put32(p + 24, (uint32_t)((sector - write_first) * 512));
        uint64_t x = seed ^ ((uint64_t)write_id << 32) ^ (sector * UINT64_C(0x9E3779B97F4A7C15));
        for (int k = 28; k < 508; k += 4) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ref_put32(p + k, (uint32_t)x);
        }
        ref_put32(p + 508, ref_crc32c_fast(0, p, 508));
    }
}

enum sdata_kind sdata_decode(const uint8_t sector[512], struct sdata_info *out)
{
    memset(out, 0, sizeof *out);
    if (ref_le32(sector) != SDATA_MAGIC)
        return memcmp(sector, SECTOR_ZERO, 512) == 0 ? SDATA_ZERO : SDATA_GARBAGE; /* memcmp: vectorized */
    if (ref_crc32c_fast(0, sector, 508) != ref_le32(sector + 508))
        return SDATA_GARBAGE;
    out->write_id = ref_le32(sector + 4);
    out->sector = ref_le64(sector + 8);
    out->seed = ref_le64(sector + 16);
    return out->write_id ? SDATA_VALID : SDATA_GARBAGE;
}

void sdata_describe(const uint8_t sector[512], char *out, size_t len)
{
    struct sdata_info in;
    switch (sdata_decode(sector, &in)) {
    case SDATA_ZERO:
        snprintf(out, len, "zeros");
        break;
    case SDATA_VALID:
        snprintf(out, len, "write %u for sector %" PRIu64 " (seed %" PRIu64 ")", in.write_id, in.sector, in.seed);
        break;
    default:
        if (memcmp(sector, SECTOR_POISON, 16) == 0)
            snprintf(out, len, "POISON (never-durable space)");
        else if (ref_le32(sector) == SDATA_MAGIC) /* a torn sector: its first bytes name their write */
            snprintf(out, len, "garbage starting like write %u for sector %" PRIu64 " (checksum fails)",
                     ref_le32(sector + 4), ref_le64(sector + 8));
        else
            snprintf(out, len, "garbage (%02x %02x %02x %02x ...)", sector[0], sector[1], sector[2], sector[3]);
    }
}
