/*
 * crc32c.c - CRC-32C: reference, slicing-by-8 and SSE4.2 implementations.
 *
 * The CRC register is kept in its raw (non-inverted) form inside the loops;
 * the public functions invert on entry and exit, which is what makes chaining
 * work.  The hardware path runs three independent streams over adjacent lanes
 * of equal length and merges them with the linearity of the CRC register:
 *
 *     reg(A || B || C) = Z_L(Z_L(reg_A) ^ reg_B) ^ reg_C
 *
 * where reg_B and reg_C start from 0 and Z_L advances a register over L zero
 * bytes.  Z_L is linear in the 32 register bits, so it is precomputed as four
 * 256-entry tables (one per register byte) for each lane length used.
 */
#include "vhdx/crc32c.h"

#include <pthread.h>
#include <string.h>

#define CRC32C_POLY_REFLECTED 0x82F63B78u

static uint32_t slice_table[8][256];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

/* Lane lengths of the three-way hardware loop and their shift operators. */
#define LANE_LONG 8192u
#define LANE_SHORT 256u
static uint32_t shift_long[4][256];
static uint32_t shift_short[4][256];

/* Advance a raw register over n zero bytes, one byte at a time. */
static uint32_t zeros_slow(uint32_t reg, size_t n)
{
    while (n--)
        reg = (reg >> 8) ^ slice_table[0][reg & 0xff];
    return reg;
}

static void build_shift(uint32_t table[4][256], size_t n)
{
    uint32_t basis[32];
    for (int bit = 0; bit < 32; bit++)
        basis[bit] = zeros_slow(UINT32_C(1) << bit, n);
    for (int k = 0; k < 4; k++) {
        for (int b = 0; b < 256; b++) {
            uint32_t v = 0;
            for (int i = 0; i < 8; i++)
                if (b & (1 << i))
                    v ^= basis[8 * k + i];
            table[k][b] = v;
        }
    }
}

static void build_tables(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ CRC32C_POLY_REFLECTED : c >> 1;
        slice_table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = slice_table[0][n];
        for (int k = 1; k < 8; k++) {
            c = (c >> 8) ^ slice_table[0][c & 0xff];
            slice_table[k][n] = c;
        }
    }
    build_shift(shift_long, LANE_LONG);
    build_shift(shift_short, LANE_SHORT);
}

static void ensure_tables(void)
{
    pthread_once(&tables_once, build_tables);
}

static inline uint32_t apply_shift(uint32_t table[4][256], uint32_t reg)
{
    return table[0][reg & 0xff] ^ table[1][(reg >> 8) & 0xff] ^
           table[2][(reg >> 16) & 0xff] ^ table[3][reg >> 24];
}

uint32_t crc32c_ref(uint32_t crc, const void *buf, size_t len)
{
    ensure_tables();
    const unsigned char *p = buf;
    uint32_t reg = ~crc;
    while (len--)
        reg = (reg >> 8) ^ slice_table[0][(reg ^ *p++) & 0xff];
    return ~reg;
}

static inline uint64_t load_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
    ensure_tables();
    const unsigned char *p = buf;
    uint32_t reg = ~crc;
    while (len >= 8) {
        uint64_t w = load_le64(p) ^ reg;
        reg = slice_table[7][w & 0xff] ^ slice_table[6][(w >> 8) & 0xff] ^
              slice_table[5][(w >> 16) & 0xff] ^ slice_table[4][(w >> 24) & 0xff] ^
              slice_table[3][(w >> 32) & 0xff] ^ slice_table[2][(w >> 40) & 0xff] ^
              slice_table[1][(w >> 48) & 0xff] ^ slice_table[0][w >> 56];
        p += 8;
        len -= 8;
    }
    while (len--)
        reg = (reg >> 8) ^ slice_table[0][(reg ^ *p++) & 0xff];
    return ~reg;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>

int crc32c_hw_available(void)
{
    return __builtin_cpu_supports("sse4.2") ? 1 : 0;
}

__attribute__((target("sse4.2"))) static uint32_t hw_serial(uint32_t reg, const unsigned char *p,
                                                             size_t len)
{
    uint64_t r = reg;
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        r = _mm_crc32_u64(r, w);
        p += 8;
        len -= 8;
    }
    uint32_t r32 = (uint32_t)r;
    while (len--)
        r32 = _mm_crc32_u8(r32, *p++);
    return r32;
}

__attribute__((target("sse4.2"))) static uint32_t hw_3way(uint32_t reg, const unsigned char **pp,
                                                           size_t *plen, size_t lane,
                                                           uint32_t table[4][256])
{
    const unsigned char *p = *pp;
    size_t len = *plen;
    while (len >= 3 * lane) {
        uint64_t a = reg, b = 0, c = 0;
        const unsigned char *pa = p, *pb = p + lane, *pc = p + 2 * lane;
        for (size_t i = 0; i < lane; i += 8) {
            uint64_t wa, wb, wc;
            memcpy(&wa, pa + i, 8);
            memcpy(&wb, pb + i, 8);
            memcpy(&wc, pc + i, 8);
            a = _mm_crc32_u64(a, wa);
            b = _mm_crc32_u64(b, wb);
            c = _mm_crc32_u64(c, wc);
        }
        reg = apply_shift(table, apply_shift(table, (uint32_t)a) ^ (uint32_t)b) ^ (uint32_t)c;
        p += 3 * lane;
        len -= 3 * lane;
    }
    *pp = p;
    *plen = len;
    return reg;
}

uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
    if (!crc32c_hw_available())
        return crc32c_sw(crc, buf, len);
    ensure_tables();
    const unsigned char *p = buf;
    uint32_t reg = ~crc;
    reg = hw_3way(reg, &p, &len, LANE_LONG, shift_long);
    reg = hw_3way(reg, &p, &len, LANE_SHORT, shift_short);
    reg = hw_serial(reg, p, len);
    return ~reg;
}
#else
int crc32c_hw_available(void)
{
    return 0;
}

uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
    return crc32c_sw(crc, buf, len);
}
#endif

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);
static crc_fn best_fn;
static pthread_once_t best_once = PTHREAD_ONCE_INIT;

static void choose_best(void)
{
    ensure_tables();
    best_fn = crc32c_hw_available() ? crc32c_hw : crc32c_sw;
}

uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&best_once, choose_best);
    return best_fn(crc, buf, len);
}

const char *crc32c_impl_name(void)
{
    return crc32c_hw_available() ? "sse4.2-3way" : "slicing-by-8";
}
