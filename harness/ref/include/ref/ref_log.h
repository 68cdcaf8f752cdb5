/*
 * ref_log.h - a deliberately simple reference implementation of the VHDX
 * log's sequence search and replay, written from the MS-VHDX text (2.3.1
 * entries, 2.3.2 log sequence, 2.3.3 log replay) for differential fuzzing.
 *
 * Guarantees:
 *  - it shares no code with libvhdx: its own little-endian loads, its own
 *    CRC-32C, its own entry rules, and it never includes an engine header;
 *  - it never writes: it turns a ring (an array of 4 KiB sectors) into a
 *    verdict and an ordered list of writes;
 *  - it is bounded: every count read from the ring is checked against the
 *    entry length before it drives a loop, and nothing is read outside the
 *    ring's sectors.
 *
 * Where the specification is silent it makes the choices docs/engine.md
 * names (two different heads with the greatest sequence number: ambiguous;
 * EntryLength equals the descriptor and data sectors; reserved fields zero;
 * FlushedFileOffset/LastFileOffset 1 MiB multiples; targets may not touch
 * the first 192 KiB or the log, nor pass the entry's LastFileOffset, nor
 * 64 TiB + 64 GiB).  Where the specification speaks, it follows the text:
 * a descriptor past the end of the file extends the file.
 */
#ifndef REF_REF_LOG_H
#define REF_REF_LOG_H

#include <stddef.h>
#include <stdint.h>

#define REF_SECTOR 4096u

struct ref_memo;

/* The log region: n sectors of 4096 bytes (n = LogLength / 4096). */
struct ref_ring {
    const uint8_t *const *sector; /* [n] pointers to 4096 bytes each */
    uint32_t n;                   /* sectors in the ring */
    const uint8_t *stable;        /* optional [n]: sector i's pointer names its bytes for memo's life */
    struct ref_memo *memo;        /* optional: checksums of entries made of stable sectors */
};

enum ref_verdict {
    REF_OK = 0,          /* an active sequence exists and may be replayed */
    REF_NO_SEQUENCE = 1, /* no valid sequence: the file must not be opened */
    REF_AMBIGUOUS = 2,   /* two different heads share the greatest sequence number */
    REF_TRUNCATED = 3,   /* the file is shorter than the head's FlushedFileOffset */
    REF_TARGET = 4,      /* a descriptor targets a place the log may not write */
};

struct ref_write {
    uint64_t offset;     /* file offset */
    uint64_t length;     /* bytes (4096 for data) */
    const uint8_t *data; /* 4096 bytes, or NULL for zeros */
};

struct ref_result {
    enum ref_verdict verdict; /* see above */
    uint32_t entries;         /* entries in the active sequence */
    uint64_t head_sequence;   /* SequenceNumber of the head entry */
    uint32_t head_position;   /* ring offset of the head entry */
    uint64_t flushed_file_offset; /* head's FlushedFileOffset */
    uint64_t last_file_offset; /* head's LastFileOffset */
    struct ref_write *writes; /* ordered replay (malloc'd) */
    size_t n_writes;
    uint8_t *data;            /* storage of the data writes (malloc'd) */
    uint64_t data_end;        /* end of the furthest data write (0: none) */
    uint64_t zero_end;        /* end of the furthest zero write (0: none) */
    uint64_t final_size;      /* file size after replay, per the text: max(size, every write's end, LastFileOffset) */
};

/*
 * Searches the ring for the active sequence (guid is the file header's
 * LogGuid, 16 on-disk bytes) and builds its replay.  log_offset is where the
 * ring lives in the file and file_size the file's size before replay.
 * Returns 0 with out filled (verdict says what was found), or -1 when out
 * of memory.  Free with ref_result_free().
 */
int ref_log_replay(const struct ref_ring *ring, const uint8_t guid[16], uint64_t log_offset, uint64_t file_size,
                   struct ref_result *out);
void ref_result_free(struct ref_result *r);

/* Is the entry held contiguously in buf (len bytes) valid for this guid and
 * a ring of log_length bytes?  1 valid, 0 not. */
int ref_entry_valid(const uint8_t *buf, size_t len, const uint8_t guid[16], uint32_t log_length);

/* ---- one entry and one header, decoded (ref_entry.c) ------------------------ */
/* A valid entry's fields (2.3.1.1) and its descriptors as writes (2.3.1.2,
 * 2.3.1.3: data updates with their leading and trailing bytes restored). */
struct ref_entry {
    uint32_t checksum;            /* Checksum */
    uint32_t length;              /* EntryLength */
    uint32_t tail;                /* Tail */
    uint64_t sequence;            /* SequenceNumber */
    uint32_t count;               /* DescriptorCount */
    uint8_t log_guid[16];         /* LogGuid */
    uint64_t flushed_file_offset; /* FlushedFileOffset */
    uint64_t last_file_offset;    /* LastFileOffset */
    struct ref_write *desc;       /* [count] in descriptor order (malloc'd) */
    uint8_t *pages;               /* storage of the data updates (malloc'd) */
};

/* Decodes the entry held contiguously in buf (len bytes, at least its
 * EntryLength) when it is valid (ref_entry_valid) under the LogGuid it
 * carries, for a ring of log_length bytes.  Returns 1 with e filled (free
 * with ref_entry_free), 0 when it is not a valid entry (e empty), -1 when
 * out of memory. */
int ref_entry_decode(const uint8_t *buf, size_t len, uint32_t log_length, struct ref_entry *e);
void ref_entry_free(struct ref_entry *e);

/* A header's fields and validity (2.2.2: signature and checksum) from its
 * 4 KiB (struct ref_header: ref.h), and which of the two copies at 64 KiB and
 * 128 KiB is current (0, 1, or -1 when neither). */
struct ref_header;
void ref_header_decode(const uint8_t *buf, struct ref_header *h);
int ref_header_current(const struct ref_header *h); /* h[0], h[1] */

#endif /* REF_REF_LOG_H */
