/*
 * sdata.h - self-describing sector data: every 512-byte virtual sector a
 * workload writes says which write produced it, where it belongs, and under
 * which seed, so any sector read back can be decoded to its origin.
 *
 * Layout of a sector (little-endian):
 *     0  u32  magic "PCSD"
 *     4  u32  write id (1-based; 0 is never used)
 *     8  u64  virtual sector number it was written to
 *    16  u64  workload seed
 *    24  u32  byte offset of the sector within its write (distinguishes the
 *             sectors of one write)
 *    28  480  filler: a keyed stream of (seed, id, sector)
 *   508  u32  CRC-32C of bytes 0..507
 * Decoding a sector yields SDATA_ZERO (all zero bytes), SDATA_VALID (magic
 * and CRC hold; fields filled), or SDATA_GARBAGE (anything else: torn,
 * misplaced, poison, foreign bytes).
 */
#ifndef HARNESS_SDATA_H
#define HARNESS_SDATA_H

#include <stddef.h>
#include <stdint.h>

#define SDATA_MAGIC 0x44534350u /* "PCSD" */

enum sdata_kind { SDATA_ZERO = 0, SDATA_VALID = 1, SDATA_GARBAGE = 2 };

struct sdata_info {
    uint32_t write_id; /* the write that produced it */
    uint64_t sector;   /* virtual sector it claims to belong to */
    uint64_t seed;     /* workload seed */
};

/* Fills n sectors for a write of id `write_id` starting at virtual sector
 * `first` (buf holds n * 512 bytes). */
void sdata_fill(uint8_t *buf, uint64_t first, uint32_t n, uint32_t write_id, uint64_t seed);
/* One sector exactly as sdata_fill() wrote it for a write that started at
 * virtual sector `write_first` (the sector's offset within its write is
 * part of its bytes). */
void sdata_sector(uint8_t out[512], uint64_t sector, uint64_t write_first, uint32_t write_id, uint64_t seed);
enum sdata_kind sdata_decode(const uint8_t sector[512], struct sdata_info *out);
/* What a sector holds, in words, for violation reports: "zeros", "write N
 * for sector S (seed X)", the harness's never-durable POISON, a torn
 * sector whose first bytes still name their write, or garbage with its
 * first bytes. */
void sdata_describe(const uint8_t sector[512], char *out, size_t len);

#endif /* HARNESS_SDATA_H */
