/*
 * crc32c.h - CRC-32C (Castagnoli, polynomial 0x1EDC6F41, reflected, initial
 * value and final xor 0xFFFFFFFF), the checksum of every VHDX structure.
 *
 * All variants compute the same function and can be chained:
 *     crc32c(crc32c(0, a, na), b, nb) == crc32c(0, a || b, na + nb)
 * and crc32c(0, "123456789", 9) == 0xE3069283.
 *
 * Implementations:
 *   crc32c_ref   bytewise table lookup: the portable reference, kept simple
 *   crc32c_sw    slicing-by-8 tables: portable and ~5x faster
 *   crc32c_hw    SSE4.2 crc32 instruction, three interleaved streams
 *                combined with precomputed shift tables (x86-64 only)
 *   crc32c       dispatches once to crc32c_hw when the CPU has SSE4.2,
 *                otherwise to crc32c_sw
 * Tables are built on first use under pthread_once; every function is
 * thread-safe and reentrant.
 */
#ifndef VHDX_CRC32C_H
#define VHDX_CRC32C_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

uint32_t crc32c(uint32_t crc, const void *buf, size_t len);
uint32_t crc32c_ref(uint32_t crc, const void *buf, size_t len);
uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len);

/* Returns 1 when crc32c_hw may be called on this CPU. */
int crc32c_hw_available(void);
/* Precondition: crc32c_hw_available().  Otherwise falls back to crc32c_sw. */
uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t len);

/* "sse4.2-3way" or "slicing-by-8": what crc32c() uses. */
const char *crc32c_impl_name(void);

#ifdef __cplusplus
}
#endif
#endif /* VHDX_CRC32C_H */
