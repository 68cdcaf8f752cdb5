/*
 * qemu/bswap.h (powercut shim) - little-endian conversions of integers
 * held in memory (the driver decodes packed structs read from disk and
 * converts their fields in place).  Identity on little-endian hosts.
 */
#ifndef QSHIM_QEMU_BSWAP_H
#define QSHIM_QEMU_BSWAP_H

#include <stdint.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define QSHIM_LE16(v) __builtin_bswap16(v)
#define QSHIM_LE32(v) __builtin_bswap32(v)
#define QSHIM_LE64(v) __builtin_bswap64(v)
#else
#define QSHIM_LE16(v) (v)
#define QSHIM_LE32(v) (v)
#define QSHIM_LE64(v) (v)
#endif

static inline uint16_t le16_to_cpu(uint16_t v) { return QSHIM_LE16(v); }
static inline uint32_t le32_to_cpu(uint32_t v) { return QSHIM_LE32(v); }
static inline uint64_t le64_to_cpu(uint64_t v) { return QSHIM_LE64(v); }
static inline uint16_t cpu_to_le16(uint16_t v) { return QSHIM_LE16(v); }
static inline uint32_t cpu_to_le32(uint32_t v) { return QSHIM_LE32(v); }
static inline uint64_t cpu_to_le64(uint64_t v) { return QSHIM_LE64(v); }
static inline void le16_to_cpus(uint16_t *p) { *p = le16_to_cpu(*p); }
static inline void le32_to_cpus(uint32_t *p) { *p = le32_to_cpu(*p); }
static inline void le64_to_cpus(uint64_t *p) { *p = le64_to_cpu(*p); }
static inline void cpu_to_le16s(uint16_t *p) { *p = cpu_to_le16(*p); }
static inline void cpu_to_le32s(uint32_t *p) { *p = cpu_to_le32(*p); }
static inline void cpu_to_le64s(uint64_t *p) { *p = cpu_to_le64(*p); }

#endif
