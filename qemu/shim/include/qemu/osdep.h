/*
 * qemu/osdep.h (powercut shim) - the first header every QEMU source file
 * includes.  Stand-in written for the QEMU subject (qemu/README in
 * qemu/CMakeLists.txt): it declares only what block/vhdx*.c and
 * util/crc32c.c use, and nothing here is QEMU's code.
 *
 * Guarantees:
 *  - assert() is always live (QEMU refuses to build with NDEBUG; a failed
 *    assertion in the driver is a finding, so it must fire here too);
 *  - the GLib allocation stand-ins behave like GLib's: g_malloc0/g_new0
 *    abort when memory runs out (the driver relies on it), g_try_malloc0
 *    may return NULL and is a fault point ("qemu/alloc", qemu/shim/qshim.h);
 *  - the typedefs of QEMU's typedefs.h the driver names are here, defined
 *    in block/block_int.h and friends.
 */
#ifndef QSHIM_QEMU_OSDEP_H
#define QSHIM_QEMU_OSDEP_H

#ifdef NDEBUG
#undef NDEBUG /* the driver's assertions stay on, as in every QEMU build */
#endif
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include "qemu/queue.h"
#include "qemu/shim-rename.h"

/* ---- the opaque types the driver passes around (QEMU's typedefs.h) ---- */
typedef struct BlockBackend BlockBackend;
typedef struct BlockDriver BlockDriver;
typedef struct BlockDriverState BlockDriverState;
typedef struct BdrvChild BdrvChild;
typedef struct BDRVReopenState BDRVReopenState;
typedef struct BlockReopenQueue BlockReopenQueue;
typedef struct Error Error;
typedef struct QDict QDict;
typedef struct QemuOpts QemuOpts;
typedef struct QemuOptsList QemuOptsList;
typedef struct QEMUIOVector QEMUIOVector;
typedef struct Visitor Visitor;

/* ---- compiler and arithmetic helpers ---------------------------------- */
#define QEMU_PACKED __attribute__((packed))
#define coroutine_fn /* coroutines are plain calls in the shim */
#define xstringify(s) #s
#define stringify(s) xstringify(s)

#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#endif
#ifndef MAX
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#endif
#define DIV_ROUND_UP(n, d) (((n) + (d) - 1) / (d))
#define ROUND_UP(n, d) ((((n) + (d) - 1) / (d)) * (d))
#define QEMU_ALIGN_DOWN(n, m) ((n) / (m) * (m))
#define QEMU_ALIGN_UP(n, m) QEMU_ALIGN_DOWN((n) + (m) - 1, (m))
#define QEMU_IS_ALIGNED(n, m) (((n) % (m)) == 0)

static inline int ctz32(uint32_t v)
{
    return v ? __builtin_ctz(v) : 32;
}

static inline int ctz64(uint64_t v)
{
    return v ? __builtin_ctzll(v) : 64;
}

static inline bool is_power_of_2(uint64_t v)
{
    return v && !(v & (v - 1));
}

/* ---- GLib stand-ins --------------------------------------------------- */
typedef long glong;
typedef uint16_t gunichar2;
typedef struct GError GError;

void *qshim_g_malloc0(size_t n);          /* aborts when out of memory */
void *qshim_g_try_malloc0(size_t n);      /* NULL when out of memory or on an injected fault */
#define g_malloc0(n) qshim_g_malloc0(n)
#define g_try_malloc0(n) qshim_g_try_malloc0(n)
#define g_new0(type, n) ((type *)qshim_g_malloc0(sizeof(type) * (size_t)(n)))
#define g_free(p) free(p)
uint32_t g_random_int(void);              /* from the open's seed */
gunichar2 *g_utf8_to_utf16(const char *str, glong len, glong *items_read, glong *items_written, GError **error);
_Noreturn void qshim_unreachable(const char *what, const char *file, int line);
#define g_assert_not_reached() qshim_unreachable("g_assert_not_reached", __FILE__, __LINE__)

#endif /* QSHIM_QEMU_OSDEP_H */
