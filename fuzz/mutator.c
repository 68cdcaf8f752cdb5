/*
 * mutator.c - the structure-aware log mutator (see mutator.h).
 *
 * The input is parsed into whole 4 KiB sectors after the 32-byte prefix;
 * every sector that starts with "loge" is an entry whose extent is its
 * EntryLength, clipped to the sectors present.  One to three operations
 * are stacked per call, then the checksums are repaired (15 times in 16).
 * Sector i of the input sits at ring offset ((start + i) mod 256) * 4 KiB,
 * which is how Tail values that point at other entries are computed.
 *
 * Invariant: the buffer always holds LR_PREFIX + k * 4096 bytes after a
 * structural operation (k >= 0); only the byte-level fallback may leave a
 * partial sector, which the target zero-pads.
 */
#include "mutator.h"

#include <string.h>

#include "fuzz_common.h"
#include "ref/ref.h"
#include "ref/ref_format.h"

#define SEC_SIZE REF_LOG_SECTOR

struct ent {
    uint32_t at;  /* input sector index of the header */
    uint32_t len; /* sectors, clipped to the input */
};

struct mut {
    uint8_t *d;          /* the input */
    size_t size, max;    /* bytes used, bytes available */
    uint64_t rng;        /* splitmix64 state */
    uint32_t n;          /* whole sectors after the prefix */
    struct ent e[LR_MAX_SECTORS];
    uint32_t ne;         /* entries found */
    fuzz_bytes_mutator bytes;
    int crc_keep_broken; /* skip the checksum repair this time */
};

static const char *last_name = "none";

const char *fuzz_log_last_mutation(void)
{
    return last_name;
}

static uint64_t rnd(struct mut *m)
{
    uint64_t z = (m->rng += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static uint64_t below(struct mut *m, uint64_t n)
{
    return n ? rnd(m) % n : 0;
}

static uint8_t *sec(struct mut *m, uint32_t i)
{
    return m->d + LR_PREFIX + (size_t)i * SEC_SIZE;
}

static uint32_t ring_start(const uint8_t *d)
{
    return d[1];
}

static uint32_t ring_pos(const uint8_t *d, uint32_t i)
{
    return ((ring_start(d) + i) % LR_RING_SECTORS) * SEC_SIZE;
}

static void parse(struct mut *m)
{
    m->n = (uint32_t)((m->size - LR_PREFIX) / SEC_SIZE);
    m->ne = 0;
    for (uint32_t i = 0; i < m->n; i++) {
        const uint8_t *p = sec(m, i);
        if (ref_le32(p) != REF_SIG_LOGE)
            continue;
        uint32_t len = ref_le32(p + REF_LOGE_ENTRY_LENGTH) / SEC_SIZE;
        if (len == 0)
            len = 1;
        if (len > m->n - i)
            len = m->n - i;
        m->e[m->ne++] = (struct ent){i, len};
    }
}

/* Makes the body whole sectors (pads when there is room, else cuts). */
static int normalise(struct mut *m)
{
    if (m->max < LR_PREFIX + SEC_SIZE)
        return -1;
    if (m->size < LR_PREFIX) {
        memset(m->d + m->size, 0, LR_PREFIX - m->size);
        m->size = LR_PREFIX;
    }
    size_t body = m->size - LR_PREFIX;
    if (body > LR_MAX_SECTORS * SEC_SIZE)
        body = LR_MAX_SECTORS * SEC_SIZE;
    size_t whole = (body + SEC_SIZE - 1) / SEC_SIZE * SEC_SIZE;
    if (LR_PREFIX + whole > m->max)
        whole = body / SEC_SIZE * SEC_SIZE;
    if (whole > body)
        memset(m->d + LR_PREFIX + body, 0, whole - body);
    m->size = LR_PREFIX + whole;
    parse(m);
    return 0;
}

/* ---- checksums ------------------------------------------------------------------ */
static int fix_entry(uint8_t *d, size_t size, uint32_t at)
{
    uint8_t *h = d + LR_PREFIX + (size_t)at * SEC_SIZE;
    uint32_t len = ref_le32(h + REF_LOGE_ENTRY_LENGTH);
    if (len == 0 || len % SEC_SIZE || LR_PREFIX + (size_t)at * SEC_SIZE + len > size)
        return 0;
    uint32_t old = ref_le32(h + REF_LOGE_CHECKSUM);
    ref_put32(h + REF_LOGE_CHECKSUM, 0);
    uint32_t c = ref_crc32c(0, h, len);
    ref_put32(h + REF_LOGE_CHECKSUM, c);
    return c != old;
}

unsigned fuzz_log_fix_crcs(uint8_t *data, size_t size)
{
    unsigned changed = 0;
    if (size < LR_PREFIX)
        return 0;
    uint32_t n = (uint32_t)((size - LR_PREFIX) / SEC_SIZE);
    if (n > LR_MAX_SECTORS)
        n = LR_MAX_SECTORS;
    for (uint32_t i = 0; i < n; i++)
        if (ref_le32(data + LR_PREFIX + (size_t)i * SEC_SIZE) == REF_SIG_LOGE)
            changed += (unsigned)fix_entry(data, LR_PREFIX + (size_t)n * SEC_SIZE, i);
    return changed;
}

/* ---- interesting values ----------------------------------------------------------- */
static const uint64_t file_offsets[] = {
    0, 4096, 65536, 131072, 192 * 1024 - 4096, 192 * 1024, 256 * 1024, REF_MB - 4096, REF_MB,
    REF_MB + 4096, 2 * REF_MB - 4096, 2 * REF_MB, 2 * REF_MB + 65536, 3 * REF_MB, 3 * REF_MB + 4096,
    4 * REF_MB, 5 * REF_MB, 6 * REF_MB, 7 * REF_MB, 7 * REF_MB - 4096, 8 * REF_MB, 16 * REF_MB,
    UINT64_C(1) << 32, UINT64_C(1) << 40, REF_LARGEST_FILE - 4096, REF_LARGEST_FILE, UINT64_C(1) << 62,
    UINT64_MAX - 4095,
};
static const uint64_t mb_offsets[] = {
    0, REF_MB, 4 * REF_MB, 7 * REF_MB, 8 * REF_MB, 16 * REF_MB, 64 * REF_MB, UINT64_C(1) << 40,
    REF_LARGEST_FILE, REF_LARGEST_FILE + REF_MB, UINT64_C(1) << 63, UINT64_MAX & ~(REF_MB - 1),
};
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static uint64_t pick_file_offset(struct mut *m, uint64_t cur)
{
    switch (below(m, 6)) {
    case 0: return cur + SEC_SIZE;
    case 1: return cur - SEC_SIZE;
    case 2: return cur + 1 + below(m, 4095);
    case 3: return (cur & ~(uint64_t)(SEC_SIZE - 1)) ^ ((uint64_t)1 << (12 + below(m, 40)));
    default: return file_offsets[below(m, NELEM(file_offsets))];
    }
}

static uint64_t pick_mb(struct mut *m, uint64_t cur)
{
    switch (below(m, 5)) {
    case 0: return cur + REF_MB;
    case 1: return cur - REF_MB;
    case 2: return cur + 1 + below(m, 4096);
    default: return mb_offsets[below(m, NELEM(mb_offsets))];
    }
}

/* ---- operations --------------------------------------------------------------------- */
static struct ent *pick_entry(struct mut *m)
{
    return m->ne ? &m->e[below(m, m->ne)] : NULL;
}

/* Renumbers an entry's descriptors and data sectors to its sequence. */
static void renumber(struct mut *m, const struct ent *e, uint64_t seq)
{
    uint8_t *h = sec(m, e->at);
    uint32_t count = ref_le32(h + REF_LOGE_DESC_COUNT);
    uint64_t dsec = ref_desc_sectors(count), data = 0;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t off = ref_desc_offset(i);
        if (off / SEC_SIZE >= e->len)
            break;
        uint8_t *d = h + off;
        ref_put64(d + 24, seq);
        if (ref_le32(d) == REF_SIG_DESC)
            data++;
    }
    for (uint64_t k = 0; k < data && dsec + k < e->len; k++) {
        uint8_t *s = h + (dsec + k) * SEC_SIZE;
        ref_put32(s + 4, (uint32_t)(seq >> 32));
        ref_put32(s + 4092, (uint32_t)seq);
    }
}

static void op_header_field(struct mut *m)
{
    struct ent *e = pick_entry(m);
    if (!e)
        return;
    uint8_t *h = sec(m, e->at);
    struct ent *o = pick_entry(m);
    uint8_t *oh = sec(m, o->at);
    switch (below(m, 9)) {
    case 0: { /* SequenceNumber */
        last_name = "hdr.seq";
        uint64_t s = ref_le64(h + REF_LOGE_SEQUENCE), os = ref_le64(oh + REF_LOGE_SEQUENCE);
        static const uint64_t vals[] = {0, 1, 2, UINT64_C(0xFFFFFFFF), UINT64_C(0x100000000), UINT64_MAX};
        switch (below(m, 5)) {
        case 0: s++; break;
        case 1: s--; break;
        case 2: s = os + (below(m, 2) ? 1 : 0); break;
        case 3: s = os - 1; break;
        default: s = vals[below(m, NELEM(vals))];
        }
        ref_put64(h + REF_LOGE_SEQUENCE, s);
        if (below(m, 4))
            renumber(m, e, s);
        break;
    }
    case 1: { /* Tail */
        last_name = "hdr.tail";
        uint32_t t;
        switch (below(m, 5)) {
        case 0: t = ring_pos(m->d, e->at); break;
        case 1: t = ring_pos(m->d, o->at); break;
        case 2: t = (uint32_t)(below(m, LR_RING_SECTORS) * SEC_SIZE); break;
        case 3: t = ref_le32(h + REF_LOGE_TAIL) + 1 + (uint32_t)below(m, 4095); break;
        default: t = LR_RING_SECTORS * SEC_SIZE + (uint32_t)(below(m, 2) * SEC_SIZE);
        }
        ref_put32(h + REF_LOGE_TAIL, t);
        break;
    }
    case 2: { /* EntryLength */
        last_name = "hdr.length";
        uint32_t l = ref_le32(h + REF_LOGE_ENTRY_LENGTH);
        static const uint32_t vals[] = {0, 4096, 8192, LR_RING_SECTORS * SEC_SIZE, LR_RING_SECTORS * SEC_SIZE + 4096,
                                        0xFFFFF000u};
        switch (below(m, 4)) {
        case 0: l += SEC_SIZE; break;
        case 1: l -= SEC_SIZE; break;
        case 2: l += 1 + (uint32_t)below(m, 4095); break;
        default: l = vals[below(m, NELEM(vals))];
        }
        ref_put32(h + REF_LOGE_ENTRY_LENGTH, l);
        break;
    }
    case 3: { /* DescriptorCount */
        last_name = "hdr.count";
        uint32_t c = ref_le32(h + REF_LOGE_DESC_COUNT);
        static const uint32_t vals[] = {0, 1, 125, 126, 127, 128, 254, 255, 0x7FFFFFFFu, 0xFFFFFFFFu};
        switch (below(m, 3)) {
        case 0: c++; break;
        case 1: c--; break;
        default: c = vals[below(m, NELEM(vals))];
        }
        ref_put32(h + REF_LOGE_DESC_COUNT, c);
        break;
    }
    case 4: /* LogGuid */
        last_name = "hdr.guid";
        switch (below(m, 4)) {
        case 0: memcpy(h + REF_LOGE_LOG_GUID, m->d + 16, 16); break;
        case 1: memset(h + REF_LOGE_LOG_GUID, 0, 16); break;
        case 2: memcpy(h + REF_LOGE_LOG_GUID, oh + REF_LOGE_LOG_GUID, 16); break;
        default: h[REF_LOGE_LOG_GUID + below(m, 16)] ^= (uint8_t)(1u << below(m, 8));
        }
        break;
    case 5:
        last_name = "hdr.flushed";
        ref_put64(h + REF_LOGE_FLUSHED_FILE_OFFSET, pick_mb(m, ref_le64(h + REF_LOGE_FLUSHED_FILE_OFFSET)));
        break;
    case 6:
        last_name = "hdr.last";
        ref_put64(h + REF_LOGE_LAST_FILE_OFFSET, pick_mb(m, ref_le64(h + REF_LOGE_LAST_FILE_OFFSET)));
        break;
    case 7:
        last_name = "hdr.reserved";
        ref_put32(h + REF_LOGE_RESERVED, below(m, 2) ? 0 : (uint32_t)rnd(m));
        break;
    default:
        last_name = "hdr.signature";
        h[below(m, 4)] ^= (uint8_t)(1u << below(m, 8));
    }
}

static void op_descriptor(struct mut *m)
{
    struct ent *e = pick_entry(m);
    if (!e)
        return;
    uint8_t *h = sec(m, e->at);
    uint32_t count = ref_le32(h + REF_LOGE_DESC_COUNT);
    uint64_t cap = REF_DESC_FIRST + (uint64_t)(e->len - 1) * REF_DESC_PER_SECTOR;
    if (count == 0 || below(m, 8) == 0) {
        /* Add a zero descriptor at the end (EntryLength stays right while it fits the sectors). */
        last_name = "desc.add";
        if (count >= cap || count >= REF_DESC_FIRST)
            return;
        uint8_t *d = h + ref_desc_offset(count);
        ref_zero_desc_put(d, SEC_SIZE * (1 + below(m, 4)), file_offsets[below(m, NELEM(file_offsets))],
                          ref_le64(h + REF_LOGE_SEQUENCE));
        ref_put32(h + REF_LOGE_DESC_COUNT, count + 1);
        return;
    }
    uint64_t i = below(m, count < cap ? count : cap);
    uint8_t *d = h + ref_desc_offset(i);
    switch (below(m, 6)) {
    case 0: /* kind */
        last_name = "desc.kind";
        switch (below(m, 3)) {
        case 0: ref_put32(d, REF_SIG_ZERO); break;
        case 1: ref_put32(d, REF_SIG_DESC); break;
        default: d[below(m, 4)] ^= (uint8_t)(1u << below(m, 8));
        }
        break;
    case 1:
    case 2:
        last_name = "desc.offset";
        ref_put64(d + 16, pick_file_offset(m, ref_le64(d + 16)));
        break;
    case 3: { /* ZeroLength (or LeadingBytes/TrailingBytes of a data descriptor) */
        last_name = "desc.length";
        static const uint64_t vals[] = {0, 4096, 8192, REF_MB, 4 * REF_MB, UINT64_C(1) << 40,
                                        REF_LARGEST_FILE, UINT64_MAX - 4095};
        uint64_t v = ref_le64(d + 8);
        v = below(m, 2) ? vals[below(m, NELEM(vals))] : v + (below(m, 2) ? SEC_SIZE : 1);
        ref_put64(d + 8, v);
        if (below(m, 4) == 0)
            ref_put32(d + 4, (uint32_t)rnd(m));
        break;
    }
    case 4: /* SequenceNumber */
        last_name = "desc.seq";
        ref_put64(d + 24, ref_le64(d + 24) + (below(m, 2) ? 1 : (uint64_t)-1));
        break;
    default: /* remove the last descriptor when it is a zero one */
        last_name = "desc.remove";
        if (count - 1 < cap && ref_le32(h + ref_desc_offset(count - 1)) == REF_SIG_ZERO) {
            memset(h + ref_desc_offset(count - 1), 0, REF_DESC_SIZE);
            ref_put32(h + REF_LOGE_DESC_COUNT, count - 1);
        }
    }
}

static void op_data_sector(struct mut *m)
{
    struct ent *e = pick_entry(m);
    if (!e)
        return;
    uint8_t *h = sec(m, e->at);
    uint64_t dsec = ref_desc_sectors(ref_le32(h + REF_LOGE_DESC_COUNT));
    if (dsec >= e->len)
        return;
    uint8_t *s = h + (dsec + below(m, e->len - dsec)) * SEC_SIZE;
    switch (below(m, 4)) {
    case 0:
        last_name = "data.signature";
        s[below(m, 4)] ^= (uint8_t)(1u << below(m, 8));
        break;
    case 1:
        last_name = "data.seq_high";
        ref_put32(s + 4, ref_le32(s + 4) + 1);
        break;
    case 2:
        last_name = "data.seq_low";
        ref_put32(s + 4092, ref_le32(s + 4092) + (below(m, 2) ? 1 : (uint32_t)-1));
        break;
    default:
        last_name = "data.payload";
        s[8 + below(m, 4084)] ^= (uint8_t)(1u + below(m, 255));
    }
}

/* Inserts count sectors at input index `at` (shifting the rest up); 0 or -1. */
static int insert_sectors(struct mut *m, uint32_t at, uint32_t count)
{
    if (m->n + count > LR_MAX_SECTORS || LR_PREFIX + (size_t)(m->n + count) * SEC_SIZE > m->max)
        return -1;
    memmove(sec(m, at + count), sec(m, at), (size_t)(m->n - at) * SEC_SIZE);
    m->n += count;
    m->size = LR_PREFIX + (size_t)m->n * SEC_SIZE;
    return 0;
}

static void remove_sectors(struct mut *m, uint32_t at, uint32_t count)
{
    memmove(sec(m, at), sec(m, at + count), (size_t)(m->n - at - count) * SEC_SIZE);
    m->n -= count;
    m->size = LR_PREFIX + (size_t)m->n * SEC_SIZE;
}

/* The entry with the greatest sequence number (NULL if none). */
static struct ent *newest(struct mut *m)
{
    struct ent *best = NULL;
    for (uint32_t i = 0; i < m->ne; i++)
        if (!best || ref_le64(sec(m, m->e[i].at) + REF_LOGE_SEQUENCE) >
                         ref_le64(sec(m, best->at) + REF_LOGE_SEQUENCE))
            best = &m->e[i];
    return best;
}

static void op_duplicate(struct mut *m)
{
    last_name = "entry.dup";
    struct ent *e = pick_entry(m);
    if (!e)
        return;
    struct ent src = *e;
    uint32_t at = below(m, 2) ? m->n : (uint32_t)below(m, m->n + 1);
    if (at > src.at && at < src.at + src.len)
        at = src.at + src.len; /* never split the source */
    if (insert_sectors(m, at, src.len) != 0)
        return;
    if (src.at >= at)
        src.at += src.len;
    memmove(sec(m, at), sec(m, src.at), (size_t)src.len * SEC_SIZE);
    if (below(m, 2)) { /* make it continue the original: seq + 1, same tail */
        uint64_t s = ref_le64(sec(m, src.at) + REF_LOGE_SEQUENCE) + 1;
        ref_put64(sec(m, at) + REF_LOGE_SEQUENCE, s);
        renumber(m, &(struct ent){at, src.len}, s);
    }
}

static void op_drop(struct mut *m)
{
    struct ent *e = pick_entry(m);
    if (!e)
        return;
    if (below(m, 2)) {
        last_name = "entry.drop";
        remove_sectors(m, e->at, e->len);
    } else {
        last_name = "entry.erase";
        memset(sec(m, e->at), 0, (size_t)e->len * SEC_SIZE);
    }
}

static void op_swap(struct mut *m)
{
    last_name = "entry.swap";
    if (m->ne < 2)
        return;
    uint32_t a = (uint32_t)below(m, m->ne), b = (uint32_t)below(m, m->ne);
    if (a == b)
        return;
    if (a > b) {
        uint32_t t = a;
        a = b;
        b = t;
    }
    struct ent x = m->e[a], y = m->e[b];
    if (x.at + x.len > y.at)
        return; /* overlapping extents */
    /* Rotate [x.at, y.at + y.len) so that y comes first and x last. */
    static uint8_t tmp[LR_MAX_SECTORS * SEC_SIZE];
    size_t total = (size_t)(y.at + y.len - x.at) * SEC_SIZE, ylen = (size_t)y.len * SEC_SIZE,
           xlen = (size_t)x.len * SEC_SIZE;
    memcpy(tmp, sec(m, y.at), ylen);
    memcpy(tmp + ylen, sec(m, x.at + x.len), total - ylen - xlen);
    memcpy(tmp + total - xlen, sec(m, x.at), xlen);
    memcpy(sec(m, x.at), tmp, total);
}

static void op_shift(struct mut *m)
{
    struct ent *e = pick_entry(m);
    if (!e || below(m, 3) == 0) {
        last_name = "ring.shift";
        m->d[1] = (uint8_t)(m->d[1] + (below(m, 2) ? 1 : 255) * (1 + below(m, 4)));
        return;
    }
    last_name = "entry.shift";
    uint32_t k = 1 + (uint32_t)below(m, 3);
    if (below(m, 2)) {
        if (insert_sectors(m, e->at, k) == 0)
            memset(sec(m, e->at), 0, (size_t)k * SEC_SIZE);
    } else if (e->at >= k) {
        int clear = 1;
        for (uint32_t i = e->at - k; i < e->at; i++)
            clear &= ref_le32(sec(m, i)) != REF_SIG_LOGE;
        if (clear)
            remove_sectors(m, e->at - k, k);
    }
}

static void op_wrap(struct mut *m)
{
    last_name = "ring.wrap";
    struct ent *e = pick_entry(m);
    /* Place the input so that an entry (or the input) straddles the ring's end. */
    uint32_t i = e ? e->at + (e->len > 1 ? 1 + (uint32_t)below(m, e->len - 1) : 0) : (uint32_t)below(m, m->n + 1);
    m->d[1] = (uint8_t)(LR_RING_SECTORS - i);
}

static void op_tear(struct mut *m)
{
    last_name = "entry.tear512";
    if (m->n == 0)
        return;
    struct ent *e = pick_entry(m);
    uint32_t s = e ? e->at + (uint32_t)below(m, e->len) : (uint32_t)below(m, m->n);
    uint8_t *p = sec(m, s);
    uint32_t pieces = (uint32_t)below(m, 256);
    const uint8_t *from = NULL;
    if (below(m, 2) && m->n > 1)
        from = sec(m, (uint32_t)below(m, m->n)); /* older contents from another sector */
    for (uint32_t k = 0; k < 8; k++) {
        if (!(pieces & (1u << k)))
            continue;
        if (from)
            memcpy(p + k * 512, from + k * 512, 512);
        else
            memset(p + k * 512, 0, 512);
    }
}

static void op_prefix(struct mut *m)
{
    last_name = "prefix";
    switch (below(m, 5)) {
    case 0: m->d[0] ^= (uint8_t)(1u << below(m, 7)); break;
    case 1: ref_put16(m->d + 2, below(m, 2) ? (uint16_t)(ref_le16(m->d + 2) + (below(m, 2) ? 1 : 0xFFFF)) : (uint16_t)(below(m, 2) ? 1 + below(m, 8) : 0x10000 - 1 - below(m, 8))); break;
    case 2: ref_put32(m->d + 4, below(m, 2) ? 0 : (uint32_t)rnd(m)); break;
    case 3: { /* the headers' LogGuid from an entry, or a fresh one */
        struct ent *e = pick_entry(m);
        if (e)
            memcpy(m->d + 16, sec(m, e->at) + REF_LOGE_LOG_GUID, 16);
        else
            m->d[16 + below(m, 16)] ^= (uint8_t)(1u << below(m, 8));
        break;
    }
    default: m->d[0] |= LRF_GUID; m->d[0] &= (uint8_t)~(LRF_LOGVER | LRF_RDONLY);
    }
}

/* Appends a new, valid entry continuing the newest one (or starting a
 * sequence): zero or data descriptors aimed at interesting places. */
static void op_append(struct mut *m)
{
    last_name = "entry.append";
    struct ent *nw = newest(m);
    uint32_t n_desc = (uint32_t)below(m, 4), n_data = 0;
    uint8_t kinds[4];
    for (uint32_t i = 0; i < n_desc; i++) {
        kinds[i] = (uint8_t)below(m, 2);
        n_data += kinds[i];
    }
    uint32_t len = 1 + n_data;
    uint32_t at = m->n;
    if (nw && below(m, 4)) {
        at = nw->at + nw->len; /* right after it in the ring: a link */
        if (at > m->n)
            at = m->n;
    }
    if (insert_sectors(m, at, len) != 0)
        return;
    memset(sec(m, at), 0, (size_t)len * SEC_SIZE);
    uint8_t *h = sec(m, at);
    /* the new entry's header, from its neighbour or from scratch (2.3.1.1) */
    uint64_t seq, flushed, last;
    uint32_t tail;
    uint8_t guid[16];
    if (nw) {
        const uint8_t *p = sec(m, nw->at < at ? nw->at : nw->at + len);
        seq = ref_le64(p + REF_LOGE_SEQUENCE) + 1;
        tail = below(m, 4) == 0 ? ring_pos(m->d, at) : ref_le32(p + REF_LOGE_TAIL);
        memcpy(guid, p + REF_LOGE_LOG_GUID, 16);
        flushed = ref_le64(p + REF_LOGE_FLUSHED_FILE_OFFSET);
        last = ref_le64(p + REF_LOGE_LAST_FILE_OFFSET);
    } else {
        memcpy(guid, m->d + 16, 16);
        seq = 1 + below(m, 100);
        tail = ring_pos(m->d, at);
        flushed = 7 * REF_MB;
        last = 8 * REF_MB;
    }
    ref_put32(h + REF_LOGE_SIGNATURE, REF_SIG_LOGE);
    ref_put32(h + REF_LOGE_ENTRY_LENGTH, len * SEC_SIZE);
    ref_put32(h + REF_LOGE_TAIL, tail);
    ref_put64(h + REF_LOGE_SEQUENCE, seq);
    ref_put32(h + REF_LOGE_DESC_COUNT, n_desc);
    ref_put32(h + REF_LOGE_RESERVED, 0);
    memcpy(h + REF_LOGE_LOG_GUID, guid, 16);
    ref_put64(h + REF_LOGE_FLUSHED_FILE_OFFSET, flushed);
    ref_put64(h + REF_LOGE_LAST_FILE_OFFSET, last);
    uint32_t data = 0;
    for (uint32_t i = 0; i < n_desc; i++) {
        uint64_t file_offset = below(m, 3) ? (2 + below(m, 2)) * REF_MB + below(m, 16) * SEC_SIZE
                                           : file_offsets[below(m, NELEM(file_offsets))];
        uint8_t *d = h + ref_desc_offset(i);
        if (kinds[i]) {
            uint8_t *s = h + (size_t)(1 + data++) * SEC_SIZE;
            uint8_t update[SEC_SIZE];
            memset(update, (int)below(m, 256), sizeof update);
            ref_data_desc_put(d, s, update, file_offset, seq);
        } else {
            ref_zero_desc_put(d, SEC_SIZE * (1 + below(m, 2)), file_offset, seq);
        }
    }
    m->d[0] |= LRF_GUID;
}

static void op_bytes(struct mut *m)
{
    last_name = "bytes";
    if (!m->bytes)
        return;
    struct ent *e = pick_entry(m);
    if (e && below(m, 2)) {
        /* Byte-level mutation confined to one entry header (64 bytes). */
        uint8_t tmp[REF_LOGE_HEADER_SIZE];
        memcpy(tmp, sec(m, e->at), sizeof tmp);
        size_t n = m->bytes(tmp, sizeof tmp, sizeof tmp);
        memcpy(sec(m, e->at), tmp, n < sizeof tmp ? n : sizeof tmp);
        return;
    }
    m->size = m->bytes(m->d, m->size, m->max);
}

size_t fuzz_log_mutate(uint8_t *data, size_t size, size_t max_size, unsigned int seed, fuzz_bytes_mutator bytes)
{
    struct mut m;
    memset(&m, 0, sizeof m);
    m.d = data;
    m.size = size;
    m.max = max_size > LR_MAX_INPUT ? LR_MAX_INPUT : max_size;
    m.rng = (uint64_t)seed * UINT64_C(0x9E3779B97F4A7C15) + size;
    m.bytes = bytes;
    if (size > m.max)
        m.size = m.max;
    if (normalise(&m) != 0) {
        last_name = "bytes";
        return bytes ? bytes(data, size < max_size ? size : max_size, max_size) : size;
    }
    uint32_t ops = 1 + (uint32_t)below(&m, 3);
    int byte_level = 0;
    for (uint32_t k = 0; k < ops; k++) {
        switch (below(&m, 16)) {
        case 0: case 1: case 2: op_header_field(&m); break;
        case 3: case 4: op_descriptor(&m); break;
        case 5: op_data_sector(&m); break;
        case 6: op_duplicate(&m); break;
        case 7: op_drop(&m); break;
        case 8: op_swap(&m); break;
        case 9: op_shift(&m); break;
        case 10: op_wrap(&m); break;
        case 11: op_tear(&m); break;
        case 12: op_prefix(&m); break;
        case 13: op_append(&m); break;
        default:
            op_bytes(&m);
            byte_level = 1;
        }
        if (byte_level)
            break; /* the layout may have changed under us */
        parse(&m);
    }
    if (m.size >= LR_PREFIX && below(&m, 16) != 0)
        fuzz_log_fix_crcs(m.d, m.size);
    return m.size;
}

size_t fuzz_log_crossover(const uint8_t *a, size_t na, const uint8_t *b, size_t nb, uint8_t *out, size_t max_out,
                          unsigned int seed)
{
    uint64_t st = (uint64_t)seed * UINT64_C(0xD1B54A32D192ED03) + na * 31 + nb;
    struct mut m = {.rng = st};
    if (max_out > LR_MAX_INPUT)
        max_out = LR_MAX_INPUT;
    if (na < LR_PREFIX || nb < LR_PREFIX || max_out < LR_PREFIX) {
        size_t n = na < max_out ? na : max_out;
        memcpy(out, a, n);
        return n;
    }
    last_name = "crossover";
    uint32_t sa = (uint32_t)((na - LR_PREFIX) / SEC_SIZE), sb = (uint32_t)((nb - LR_PREFIX) / SEC_SIZE);
    uint32_t ka = (uint32_t)below(&m, sa + 1), jb = (uint32_t)below(&m, sb + 1);
    memcpy(out, a, LR_PREFIX);
    size_t pos = LR_PREFIX;
    uint32_t total = 0;
    for (uint32_t i = 0; i < ka && pos + SEC_SIZE <= max_out && total < LR_MAX_SECTORS; i++, total++) {
        memcpy(out + pos, a + LR_PREFIX + (size_t)i * SEC_SIZE, SEC_SIZE);
        pos += SEC_SIZE;
    }
    int adopt = (int)below(&m, 2);
    for (uint32_t i = jb; i < sb && pos + SEC_SIZE <= max_out && total < LR_MAX_SECTORS; i++, total++) {
        memcpy(out + pos, b + LR_PREFIX + (size_t)i * SEC_SIZE, SEC_SIZE);
        if (adopt && ref_le32(out + pos) == REF_SIG_LOGE)
            memcpy(out + pos + REF_LOGE_LOG_GUID, a + 16, 16);
        pos += SEC_SIZE;
    }
    fuzz_log_fix_crcs(out, pos);
    return pos;
}

size_t fuzz_log_post_process(uint8_t *data, size_t size)
{
    if (size > LR_MAX_INPUT)
        size = LR_MAX_INPUT;
    if (size < LR_PREFIX)
        return size;
    uint32_t h = ref_crc32c(0, data, size);
    if ((h & 15) != 0)
        fuzz_log_fix_crcs(data, size);
    return size;
}
