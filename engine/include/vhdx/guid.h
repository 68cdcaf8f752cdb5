/*
 * guid.h - GUIDs in the Microsoft mixed-endian binary form used on disk.
 *
 * The text form "2DC27766-F623-4200-9D64-115E9BFD4A08" is stored as
 * 66 77 C2 2D | 23 F6 | 00 42 | 9D 64 11 5E 9B FD 4A 08: the first three
 * groups little-endian, the last two as written.  struct vhdx_guid always
 * holds the 16 on-disk bytes, so it can be compared with memcmp and copied
 * to and from disk buffers unchanged.
 */
#ifndef VHDX_GUID_H
#define VHDX_GUID_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vhdx_guid {
    uint8_t b[16]; /* on-disk (mixed-endian) bytes */
};

#define VHDX_GUID_STRLEN 37 /* 36 characters and the terminating NUL */

/* Parses "XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX" (braces optional, any case).
 * Returns 0, or VHDX_E_INVAL when the text is not a GUID. */
int vhdx_guid_parse(const char *text, struct vhdx_guid *out);

/* Formats as upper-case text without braces into buf[VHDX_GUID_STRLEN]. */
void vhdx_guid_format(const struct vhdx_guid *g, char buf[VHDX_GUID_STRLEN]);

int vhdx_guid_equal(const struct vhdx_guid *a, const struct vhdx_guid *b);
int vhdx_guid_is_zero(const struct vhdx_guid *g);

/*
 * Random GUID source.  The engine never calls the OS directly for
 * randomness: it asks a vhdx_rng, so the harness can make every GUID
 * deterministic from a seed.
 */
struct vhdx_rng {
    /* Fill buf with len random bytes; return 0 or a negative error. */
    int (*fill)(void *ctx, void *buf, size_t len);
    void *ctx;
};

/* A deterministic generator (splitmix64) for tests and the harness. */
struct vhdx_rng_seeded {
    uint64_t state; /* advanced by every call */
};
int vhdx_rng_seeded_fill(void *ctx, void *buf, size_t len);

/* getrandom(2)-based generator, the default when no rng is given. */
int vhdx_rng_os_fill(void *ctx, void *buf, size_t len);

/* Makes a random version-4 GUID (never all zero). */
int vhdx_guid_generate(const struct vhdx_rng *rng, struct vhdx_guid *out);

#ifdef __cplusplus
}
#endif
#endif /* VHDX_GUID_H */
