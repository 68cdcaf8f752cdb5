/*
 * qdiff.c - classes of disagreement between QEMU and libvhdx / the
 * reference (qdiff.h), decided the way scripts/pclib/diff.py decides them.
 */
#include "qdiff.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vhdx/errors.h"
#include "vhdx/format.h"
#include "vhdx/log.h"

static const struct qdiff_class classes[QD_COUNT] = {
#define X(id, name, section, rule, departs, known, finding) {id, name, section, rule, departs, known, finding},
    QDIFF_CLASSES
#undef X
};

static uint64_t counts[QD_COUNT];

const struct qdiff_class *qdiff_class(enum qdiff_id id)
{
    return id < QD_COUNT ? &classes[id] : NULL;
}

const struct qdiff_class *qdiff_find(const char *name)
{
    for (int i = 0; i < QD_COUNT; i++)
        if (!strcmp(classes[i].name, name))
            return &classes[i];
    return NULL;
}

const struct qdiff_class *qdiff_verdict(int ours_rc, int ours_replayed, int qemu_rc, const struct ref_image *ref)
{
    if ((ours_rc == 0) == (qemu_rc == 0))
        return NULL;
    if (qemu_rc == 0) { /* ours refuses, QEMU opens */
        switch (ours_rc) {
        case VHDX_E_LOG_NO_SEQUENCE: return &classes[QD_NO_SEQUENCE];
        case VHDX_E_LOG_TRUNCATED: return &classes[QD_TRUNCATED];
        case VHDX_E_HEADER_AMBIGUOUS: return &classes[QD_HEADER_AMBIGUOUS];
        case VHDX_E_NO_HEADER: return &classes[QD_NO_HEADER];
        case VHDX_E_LOG_VERSION: return &classes[QD_LOG_VERSION];
        case VHDX_E_REQUIRED_REGION: return &classes[QD_REQUIRED_REGION];
        case VHDX_E_OVERLAP: return &classes[QD_OVERLAP];
        case VHDX_E_BAT: return &classes[QD_BAT];
        case VHDX_E_LOG_AMBIGUOUS: return &classes[QD_LOG_AMBIGUOUS];
        case VHDX_E_LOG_TARGET: return &classes[QD_LOG_TARGET];
        case VHDX_E_LOG_FIELD:
        case VHDX_E_LOG_DESC_FIELD: return &classes[QD_OURS_FIELD];
        case VHDX_E_ITEM_VALUE:
            if (ref && ref->virtual_size && (ref->virtual_size > REF_MAX_VIRTUAL ||
                                             ref->virtual_size % (ref->logical_sector ? ref->logical_sector : 512)))
                return &classes[QD_VSIZE];
            return &classes[QD_OURS_OTHER];
        case VHDX_E_METADATA:
            return ref && strstr(ref->why, "share ItemId") ? &classes[QD_DUP_ITEM] : &classes[QD_META_INVALID];
        default: return &classes[QD_OURS_OTHER];
        }
    }
    /* ours opens, QEMU refuses */
    if (ref && !ref->region_valid[0] && ref->region_valid[1])
        return &classes[QD_REGION1];
    if (ours_replayed)
        return &classes[QD_CANNOT_REPLAY];
    if (ref) { /* the current header, or either of two equal valid copies */
        int h = ref->current >= 0 ? ref->current : ref->header[0].valid ? 0 : 1;
        static const uint8_t zero[16];
        if (ref->header[h].valid && ref->header[h].log_version != 0 && !memcmp(ref->header[h].log_guid, zero, 16))
            return &classes[QD_QEMU_LOGVER];
    }
    if (ref && ref->status == REF_VALID)
        return &classes[QD_QEMU_REFUSES_VALID];
    return &classes[QD_QEMU_REFUSES_OTHER];
}

/* Facts of the log of the image before the replay, by libvhdx's scan of
 * every position (the dump-log view).  QEMU's search departs from the
 * text in three ways its code shows (docs/qemu-findings.md Q5, Q6); each
 * fact says one of them can change what QEMU replays:
 *   top > head   a valid entry newer than the active sequence's head (the
 *                head's Tail rule, which QEMU does not check);
 *   skipped      a valid entry starts inside the span of another entry
 *                (QEMU resumes its scan after the span of an entry it
 *                rejected, so it never sees that one);
 *   gap          two adjacent valid entries whose sequence numbers are not
 *                consecutive (QEMU does not compare the second entry of a
 *                run with the first; a run may wrap around the ring);
 * ("Valid" below is what QEMU takes as valid: libvhdx's valid entries and
 * those it rejects only for a field rule QEMU does not check.)
 *   before_tail  a valid entry ends right where the head's Tail points,
 *                with the sequence number one below the tail's: QEMU
 *                does not read Tail, it replays a run from the first
 *                valid entry it met;
 *   wraps        the active sequence wraps around the end of the ring:
 *                QEMU ranks a run by its first entry's sequence number,
 *                so the part after the wrap (met first, from offset 0)
 *                outranks the whole sequence, and only that part is
 *                replayed;
 *   outranked    a valid entry outside the active sequence whose sequence
 *                number exceeds the active tail's (and not the head's):
 *                QEMU ranks a run by its first entry, so a run starting
 *                there outranks the active sequence (the non-wrapping
 *                face of `wraps`);
 *   field_newer  an entry newer than the head that libvhdx rejects only
 *                for a field rule QEMU does not check (reserved bits,
 *                1 MiB multiples): there libvhdx is the stricter one. */
struct log_facts {
    uint64_t top, head;
    int skipped, gap;
    int field_newer; /* an entry libvhdx rejects only for a field rule (reserved, 1 MiB offsets) is newer than the head */
    int before_tail; /* a valid entry ends where the active sequence's tail starts, one sequence number below */
    int wraps;       /* the active sequence runs past the end of the ring back to its start */
    int outranked;   /* a valid entry outside the active sequence numbered above its tail */
};

/* An entry QEMU takes as valid: libvhdx's verdict, or a rule QEMU does
 * not check (reserved fields, 1 MiB multiples, the data sectors' "data"
 * signature, EntryLength equal to the descriptor and data sectors: QEMU
 * only wants a 4 KiB multiple no longer than the ring). */
static int qemu_valid(const struct vhdx_log_scan_item *it, uint64_t ring)
{
    if (it->status == 0 || it->status == VHDX_E_LOG_FIELD || it->status == VHDX_E_LOG_DESC_FIELD ||
        it->status == VHDX_E_LOG_DATA_SIGNATURE)
        return 1;
    return it->status == VHDX_E_LOG_LENGTH && it->hdr.entry_length && it->hdr.entry_length % 4096 == 0 &&
           it->hdr.entry_length <= ring;
}

static int log_facts(struct bdev *dev, struct log_facts *f)
{
    memset(f, 0, sizeof *f);
    uint8_t h[2][4096];
    if (dev->ops->read(dev, h[0], 4096, 64 * 1024) || dev->ops->read(dev, h[1], 4096, 128 * 1024))
        return -1;
    struct vhdx_header hd[2];
    int ok[2] = {vhdx_header_decode(h[0], &hd[0]) == 0, vhdx_header_decode(h[1], &hd[1]) == 0};
    if (!ok[0] && !ok[1])
        return -1;
    int cur = !ok[0] ? 1 : !ok[1] ? 0 : hd[1].sequence > hd[0].sequence;
    struct vhdx_log_ring ring = {dev, hd[cur].log_offset, hd[cur].log_length, hd[cur].log_guid};
    struct vhdx_log_sequence seq;
    struct vhdx_log_scan_item *items = NULL;
    size_t n = 0;
    memset(&seq, 0, sizeof seq);
    if (vhdx_log_search(&ring, &seq, &items, &n) != 0) {
        vhdx_log_sequence_free(&seq);
        free(items);
        return -1;
    }
    const uint64_t L = hd[cur].log_length;
    uint64_t head = seq.found ? seq.head_sequence : 0;
    for (size_t i = 0; i < n; i++) {
        if (items[i].status != 0 && qemu_valid(&items[i], L) && items[i].hdr.sequence > head)
            f->field_newer = 1;
        if (!qemu_valid(&items[i], L))
            continue;
        if (items[i].status == 0 && items[i].hdr.sequence > f->top)
            f->top = items[i].hdr.sequence;
        for (size_t j = 0; j < n; j++) {
            if (i == j || !items[j].hdr.entry_length)
                continue;
            uint64_t a = items[j].position, b = a + items[j].hdr.entry_length;
            if (items[i].position > a && items[i].position < b)
                f->skipped = 1;
            if (qemu_valid(&items[j], L) && L && b % L == items[i].position &&
                items[i].hdr.sequence != items[j].hdr.sequence + 1)
                f->gap = 1;
        }
        if (seq.found && seq.count && L && (items[i].position + items[i].hdr.entry_length) % L == seq.positions[0] &&
            items[i].hdr.sequence + 1 == seq.tail_sequence)
            f->before_tail = 1;
    }
    f->head = head;
    for (uint32_t k = 1; seq.found && k < seq.count; k++)
        if (seq.positions[k] < seq.positions[k - 1])
            f->wraps = 1;
    for (size_t i = 0; seq.found && i < n; i++) {
        if (!qemu_valid(&items[i], L) || items[i].hdr.sequence <= seq.tail_sequence || items[i].hdr.sequence > head)
            continue;
        int in_active = 0;
        for (uint32_t k = 0; k < seq.count && !in_active; k++)
            in_active = seq.positions[k] == items[i].position;
        if (!in_active)
            f->outranked = 1;
    }
    vhdx_log_sequence_free(&seq);
    free(items);
    return 0;
}

const struct qdiff_class *qdiff_replay(struct bdev *before, uint64_t ours_size, uint64_t qemu_size)
{
    /* the log facts first: a different sequence explains any size too */
    struct log_facts f;
    if (before && log_facts(before, &f) == 0) {
        if (f.head && (f.top > f.head || f.before_tail))
            return &classes[QD_TAIL_OUTSIDE];
        if (f.skipped)
            return &classes[QD_SEARCH_SKIPS];
        if (f.gap)
            return &classes[QD_SEQ_GAP];
        if (f.wraps)
            return &classes[QD_WRAP_PARTIAL];
        if (f.outranked)
            return &classes[QD_RANK_FIRST];
        if (f.field_newer)
            return &classes[QD_OURS_FIELD_REPLAY];
    }
    if (qemu_size < ours_size)
        return &classes[QD_NO_EXTEND];
    if (ours_size < qemu_size)
        return &classes[QD_OURS_SMALLER];
    return &classes[QD_REPLAY_DIFFERS];
}

/* Both header copies valid and different in a field QEMU's header update
 * takes from the non-current one (Q12). */
static int headers_differ(struct bdev *dev)
{
    uint8_t h[2][4096];
    struct vhdx_header hd[2];
    if (dev->ops->read(dev, h[0], 4096, 64 * 1024) || dev->ops->read(dev, h[1], 4096, 128 * 1024) ||
        vhdx_header_decode(h[0], &hd[0]) != 0 || vhdx_header_decode(h[1], &hd[1]) != 0)
        return 0;
    return memcmp(&hd[0].log_guid, &hd[1].log_guid, sizeof hd[0].log_guid) != 0 ||
           hd[0].log_offset != hd[1].log_offset || hd[0].log_length != hd[1].log_length ||
           hd[0].log_version != hd[1].log_version || hd[0].version != hd[1].version;
}

/* What one pass over the current header's log ring shows (bits):
 *   RING_DESC_ABORT  an entry whose header passes QEMU's
 *                    vhdx_log_hdr_is_valid() under the current LogGuid, with
 *                    a descriptor in its first sector that fails
 *                    vhdx_log_desc_is_valid() (Q13);
 *   RING_MANY_DESC   an entry under the current LogGuid, its header valid as
 *                    QEMU checks it, with more than 126 descriptors: QEMU
 *                    reads them into the wrong place and cannot replay it (Q5). */
enum { RING_DESC_ABORT = 1, RING_MANY_DESC = 2 };

static unsigned ring_facts(struct bdev *dev)
{
    uint8_t h[2][4096];
    struct vhdx_header hd[2];
    if (dev->ops->read(dev, h[0], 4096, 64 * 1024) || dev->ops->read(dev, h[1], 4096, 128 * 1024))
        return 0;
    int ok[2] = {vhdx_header_decode(h[0], &hd[0]) == 0, vhdx_header_decode(h[1], &hd[1]) == 0};
    if (!ok[0] && !ok[1])
        return 0;
    const struct vhdx_header *cur = &hd[!ok[0] ? 1 : !ok[1] ? 0 : hd[1].sequence > hd[0].sequence];
    unsigned facts = 0;
    uint8_t sec[4096];
    for (uint64_t pos = 0; pos + 4096 <= cur->log_length; pos += 4096) {
        if (dev->ops->read(dev, sec, sizeof sec, cur->log_offset + pos) != 0 || memcmp(sec, "loge", 4) != 0)
            continue;
        const uint32_t len = vhdx_get32(sec + 8), count = vhdx_get32(sec + 24);
        const uint64_t seq = vhdx_get64(sec + 16);
        if (len > cur->log_length || len % 4096 || seq == 0 || memcmp(sec + 32, &cur->log_guid, 16) != 0)
            continue;
        if (count > 126)
            facts |= RING_MANY_DESC;
        if ((uint64_t)count * 32 > len)
            continue;
        for (uint32_t i = 0; i < count && i < 126; i++) {
            const uint8_t *d = sec + 64 + 32 * i;
            const int zero = !memcmp(d, "zero", 4), data = !memcmp(d, "desc", 4);
            if (vhdx_get64(d + 24) != seq || vhdx_get64(d + 16) % 4096 || (!zero && !data) ||
                (zero && vhdx_get64(d + 8) % 4096)) {
                facts |= RING_DESC_ABORT;
                break;
            }
        }
    }
    return facts;
}

int qdiff_explain(struct bdev *before, char *buf, size_t len)
{
    const struct qdiff_class *found[12];
    int n = 0;
    struct log_facts f;
    if (log_facts(before, &f) == 0) {
        if ((f.head && (f.top > f.head || f.before_tail)) || (!f.head && f.top))
            found[n++] = &classes[QD_TAIL_OUTSIDE];
        if (f.skipped)
            found[n++] = &classes[QD_SEARCH_SKIPS];
        if (f.gap)
            found[n++] = &classes[QD_SEQ_GAP];
        if (f.wraps)
            found[n++] = &classes[QD_WRAP_PARTIAL];
        if (f.outranked)
            found[n++] = &classes[QD_RANK_FIRST];
    }
    if (headers_differ(before))
        found[n++] = &classes[QD_HEADER_STALE];
    const unsigned ring = ring_facts(before);
    if (ring & RING_DESC_ABORT)
        found[n++] = &classes[QD_DESC_ABORT];
    if (ring & RING_MANY_DESC)
        found[n++] = &classes[QD_CANNOT_REPLAY];
    size_t used = 0;
    if (len)
        buf[0] = 0;
    for (int i = 0; i < n && used + 1 < len; i++) {
        int w = snprintf(buf + used, len - used, "%s%s %s", i ? "; " : "", found[i]->finding, found[i]->name);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    return n;
}

const struct qdiff_class *qdiff_read(unsigned bat_state)
{
    switch (bat_state) {
    case REF_BAT_NOT_PRESENT:
    case REF_BAT_UNDEFINED:
    case REF_BAT_UNMAPPED: return &classes[QD_READ_UNDEFINED];
    case REF_BAT_ZERO: return &classes[QD_READ_ZERO];
    default: return &classes[QD_READ_PRESENT];
    }
}

void qdiff_note(const struct qdiff_class *c)
{
    if (c)
        counts[c->id]++;
}

uint64_t qdiff_count(enum qdiff_id id)
{
    return id < QD_COUNT ? counts[id] : 0;
}

void qdiff_summary(char *buf, size_t len)
{
    size_t used = 0;
    if (len)
        buf[0] = 0;
    for (int i = 0; i < QD_COUNT && used + 1 < len; i++) {
        if (!counts[i])
            continue;
        int w = snprintf(buf + used, len - used, "%s%s %llu", used ? ", " : "", classes[i].name,
                         (unsigned long long)counts[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

uint64_t qdiff_uninitialized_log_bytes(struct bdev *dev, uint64_t log_offset, uint32_t log_length)
{
    uint8_t sec[4096];
    uint64_t total = 0;
    for (uint64_t pos = 0; pos + 4096 <= log_length; pos += 4096) {
        if (dev->ops->read(dev, sec, sizeof sec, log_offset + pos) != 0 || memcmp(sec, "loge", 4) != 0)
            continue;
        uint32_t count = (uint32_t)sec[24] | (uint32_t)sec[25] << 8 | (uint32_t)sec[26] << 16 |
                         (uint32_t)sec[27] << 24; /* DescriptorCount */
        size_t first = 64 + 32 * (size_t)count;   /* after the descriptors of this sector */
        if (first >= sizeof sec)
            continue;
        size_t run = 0;
        for (size_t i = first; i < sizeof sec; i++)
            run += sec[i] == 0xA5;
        if (run == sizeof sec - first) /* every byte: the buffer's untouched tail */
            total += run;
    }
    return total;
}
