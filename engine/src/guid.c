/*
 * guid.c - GUID text/binary conversion and random GUIDs.
 *
 * Guarantees: parse accepts exactly the 8-4-4-4-12 hex form (optionally in
 * braces) and nothing else; generated GUIDs are RFC 4122 version 4 and never
 * zero; the seeded generator is a pure function of its state.
 */
#define _GNU_SOURCE
#include "vhdx/guid.h"
#include "vhdx/errors.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Text position of each of the 16 bytes, in on-disk order. */
static const unsigned char disk_order_pos[16] = {
    6, 4, 2, 0,   /* Data1, little-endian */
    11, 9,        /* Data2 */
    16, 14,       /* Data3 */
    19, 21,       /* Data4[0..1] */
    24, 26, 28, 30, 32, 34,
};

int vhdx_guid_parse(const char *text, struct vhdx_guid *out)
{
    if (!text || !out)
        return VHDX_E_INVAL;
    size_t n = strlen(text);
    if (n == 38 && text[0] == '{' && text[37] == '}') {
        text++;
        n = 36;
    } else if (n != 36) {
        return VHDX_E_INVAL;
    }
    for (size_t i = 0; i < 36; i++) {
        int dash = (i == 8 || i == 13 || i == 18 || i == 23);
        if (dash ? text[i] != '-' : hexval(text[i]) < 0)
            return VHDX_E_INVAL;
    }
    for (int i = 0; i < 16; i++) {
        int pos = disk_order_pos[i];
        out->b[i] = (uint8_t)(hexval(text[pos]) << 4 | hexval(text[pos + 1]));
    }
    return 0;
}

void vhdx_guid_format(const struct vhdx_guid *g, char buf[VHDX_GUID_STRLEN])
{
    static const char hex[] = "0123456789ABCDEF";
    memset(buf, '-', 36);
    for (int i = 0; i < 16; i++) {
        int pos = disk_order_pos[i];
        buf[pos] = hex[g->b[i] >> 4];
        buf[pos + 1] = hex[g->b[i] & 15];
    }
    buf[36] = '\0';
}

int vhdx_guid_equal(const struct vhdx_guid *a, const struct vhdx_guid *b)
{
    return memcmp(a->b, b->b, 16) == 0;
}

int vhdx_guid_is_zero(const struct vhdx_guid *g)
{
    static const struct vhdx_guid zero;
    return vhdx_guid_equal(g, &zero);
}

int vhdx_rng_seeded_fill(void *ctx, void *buf, size_t len)
{
    struct vhdx_rng_seeded *s = ctx;
    unsigned char *p = buf;
    while (len > 0) {
        uint64_t z = (s->state += UINT64_C(0x9E3779B97F4A7C15));
        z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
        z ^= z >> 31;
        for (int i = 0; i < 8 && len > 0; i++, len--)
            *p++ = (unsigned char)(z >> (8 * i));
    }
    return 0;
}

int vhdx_rng_os_fill(void *ctx, void *buf, size_t len)
{
    (void)ctx;
    unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int vhdx_guid_generate(const struct vhdx_rng *rng, struct vhdx_guid *out)
{
    int rc = rng && rng->fill ? rng->fill(rng->ctx, out->b, 16) : vhdx_rng_os_fill(NULL, out->b, 16);
    if (rc != 0)
        return rc;
    /* The version and variant bits also guarantee the GUID is never zero. */
    out->b[7] = (uint8_t)((out->b[7] & 0x0F) | 0x40); /* version 4 (Data3 high nibble) */
    out->b[8] = (uint8_t)((out->b[8] & 0x3F) | 0x80); /* RFC 4122 variant */
    return 0;
}
