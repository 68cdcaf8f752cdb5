/*
 * ref.h - the independent reference: a second reading of a VHDX image,
 * written from MS-VHDX alone, that the harness's judges compare with the
 * implementation under test.
 *
 * Why it exists.  A judge that calls the code it judges agrees with that
 * code's bugs: a checksum over the wrong range, a wrong geometry formula, a
 * SIMD path that is wrong the same way on write and on read.  The harness
 * therefore carries this second implementation (the N-version idea) and
 * treats any disagreement between it and the subject as a violation.
 *
 * Guarantees:
 *  - shares no code with libvhdx and includes no engine or harness header
 *    (a CTest, ref.independent, fails if a file here does): its own
 *    bytewise CRC-32C, little-endian loads, GUIDs, decoders of the file
 *    identifier, headers, region tables, metadata table and items, BAT, log
 *    entries, and its own log search and replay (ref_log.h);
 *  - never writes: it reads the image through a callback and keeps the
 *    replay as an in-memory plan; reads of the replayed image apply it;
 *  - bounded: every count and offset read from the image is checked before
 *    it drives a loop or an allocation (the BAT scan stops at
 *    REF_BAT_SCAN_MAX entries; larger BATs are read on demand only).
 *
 * Verdicts.  The reference sorts an image into three classes, each tied to
 * the specification's words:
 *   REF_VALID      every MUST holds; an implementation has to open it and
 *                  show exactly the contents described here;
 *   REF_INVALID    a MUST (or a "must" that makes the file ambiguous or
 *                  unreadable) is broken: an implementation has to refuse
 *                  it.  `rule` names the section and the rule;
 *   REF_UNDECIDED  the specification leaves the reader a choice (two
 *                  region-table copies that disagree, two heads with the
 *                  same greatest sequence number, reserved states), or the
 *                  image uses what the reference does not model
 *                  (differencing disks): no judgement either way.
 * The order of validation follows the text: file identifier (2.2.1),
 * current header (2.2.2), log replay when the LogGuid is set (2.3.3; done
 * before anything after the header and log is read), region table (2.2.3),
 * metadata table and items (2.6), BAT (2.5) and the layout rule that no
 * two structures overlap (2.1).  Everything after the log is read from the
 * image as it is after the replay.
 */
#ifndef REF_REF_H
#define REF_REF_H

#include <stddef.h>
#include <stdint.h>

#include "ref/ref_log.h"

/* CRC-32C (Castagnoli, reflected, init and final xor 0xFFFFFFFF); chainable:
 * ref_crc32c(ref_crc32c(0, a), b) == crc of a then b.  The byte-at-a-time
 * definition, and the same function taking 8 bytes a step. */
uint32_t ref_crc32c_bytewise(uint32_t crc, const void *buf, size_t len);
uint32_t ref_crc32c(uint32_t crc, const void *buf, size_t len);
/* The same values through the processor's crc32 instruction when it has
 * one: for the harness's own bulk payload checks, not for judging
 * structures (those use ref_crc32c). */
uint32_t ref_crc32c_fast(uint32_t crc, const void *buf, size_t len);

/* Little-endian loads and stores (the reference's own). */
uint32_t ref_le32(const uint8_t *p);
uint64_t ref_le64(const uint8_t *p);
uint16_t ref_le16(const uint8_t *p);
void ref_put16(uint8_t *p, uint16_t v);
void ref_put32(uint8_t *p, uint32_t v);
void ref_put64(uint8_t *p, uint64_t v);

/* The known GUIDs (MS-VHDX 2.2.3.2, 2.6.2), in their on-disk binary form. */
extern const uint8_t REF_GUID_BAT[16], REF_GUID_METADATA[16], REF_GUID_FILE_PARAMETERS[16],
    REF_GUID_VIRTUAL_DISK_SIZE[16], REF_GUID_VIRTUAL_DISK_ID[16], REF_GUID_LOGICAL_SECTOR[16],
    REF_GUID_PHYSICAL_SECTOR[16], REF_GUID_PARENT_LOCATOR[16];

#define REF_MB (UINT64_C(1) << 20)
#define REF_KB64 (UINT64_C(64) << 10)
#define REF_MAX_VIRTUAL (UINT64_C(64) << 40)   /* 64 TiB (2.6.2.2) */
#define REF_BAT_SCAN_MAX (UINT64_C(1) << 22)   /* BAT entries validated at open */

/* BAT states (2.5.1.1, 2.5.1.2). */
enum {
    REF_BAT_NOT_PRESENT = 0,
    REF_BAT_UNDEFINED = 1,
    REF_BAT_ZERO = 2,
    REF_BAT_UNMAPPED = 3,
    REF_BAT_FULLY_PRESENT = 6,
    REF_BAT_PARTIALLY_PRESENT = 7,
};

/* A cache of checksums over bytes that callers name by stable pointers
 * (ref_memo_crc): a harness that keeps images as maps of pointers into
 * immutable data (its traces) lets the reference checksum each log entry,
 * header and region table once per sweep instead of once per crash state.
 * The checksum itself is always ref_crc32c; the memo only remembers it. */
struct ref_memo;
struct ref_memo *ref_memo_new(void);
void ref_memo_free(struct ref_memo *m);
/* CRC-32C over k pieces of `piece` bytes each (ptr[0..k)), the 4 bytes at
 * zero_at of the whole taken as zero (SIZE_MAX: none).  Remembered under
 * the pointers when `stable` (they name their bytes for the memo's life),
 * else under two independent 64-bit hashes of the bytes (a few times
 * cheaper than the bytewise checksum).  With m NULL just computes it. */
uint32_t ref_memo_crc(struct ref_memo *m, const uint8_t *const *ptr, size_t k, size_t piece, size_t zero_at,
                      int stable);
/* hits and misses so far (for benchmarks) */
void ref_memo_stats(const struct ref_memo *m, uint64_t *hits, uint64_t *misses);

/* Where the reference reads an image from. */
struct ref_src {
    /* Reads [off, off+len); bytes at or past `size` read as zeros.
     * Returns 0, or -1 when the device fails (the verdict is then an error). */
    int (*read)(void *ctx, void *buf, size_t len, uint64_t off);
    void *ctx;
    uint64_t size; /* file size in bytes */
    /* Optional (NULL): the bytes [off, off+len) (whole 4 KiB pieces) in place
     * when they lie contiguous in memory, else NULL; *stable says whether the
     * pointer names these bytes for the memo's whole life (equal pointers,
     * equal bytes).  Then checksums go through memo. */
    const uint8_t *(*map)(void *ctx, uint64_t off, size_t len, int *stable);
    struct ref_memo *memo; /* optional, with map */
};

enum ref_status {
    REF_VALID = 0,
    REF_INVALID = 1,
    REF_UNDECIDED = 2,
};

struct ref_header {
    int valid;                /* signature and checksum hold (2.2.2) */
    uint64_t sequence;        /* SequenceNumber */
    uint8_t file_write_guid[16];
    uint8_t data_write_guid[16];
    uint8_t log_guid[16];
    uint16_t log_version;     /* LogVersion */
    uint16_t version;         /* Version */
    uint32_t log_length;      /* LogLength */
    uint64_t log_offset;      /* LogOffset */
};

struct ref_region {
    uint8_t guid[16];
    uint64_t offset;          /* FileOffset */
    uint32_t length;          /* Length */
    uint32_t required;        /* Required */
};

#define REF_MAX_REGIONS 2047u

struct ref_replay_index; /* private: the replay writes sorted for reads */

struct ref_image {
    enum ref_status status;   /* see above */
    char rule[64];            /* INVALID/UNDECIDED: "2.2.2 no current header" style id */
    char why[256];            /* one sentence with the offending values */
    uint64_t file_size;       /* before replay */
    uint64_t size;            /* after replay: max(file size, every replayed write's end, LastFileOffset) */

    struct ref_header header[2]; /* the copies at 64 KiB and 128 KiB */
    int current;              /* 0 or 1: the current header; -1 none */

    int log_pending;          /* the current header's LogGuid is not zero */
    struct ref_result log;    /* when log_pending: the search's verdict and the replay plan */

    int region_valid[2];      /* region table copies at 192 KiB and 256 KiB */
    int region_used;          /* 0 or 1: the copy that was decoded */
    struct ref_region *regions; /* its entries (malloc'd) */
    uint32_t n_regions;
    uint64_t bat_offset;      /* the BAT region */
    uint32_t bat_length;
    uint64_t meta_offset;     /* the metadata region */
    uint32_t meta_length;

    uint32_t block_size;      /* File Parameters */
    int leave_block_allocated;
    int has_parent;
    uint64_t virtual_size;    /* Virtual Disk Size */
    uint8_t virtual_disk_id[16];
    uint32_t logical_sector;  /* Logical Sector Size */
    uint32_t physical_sector; /* Physical Sector Size */

    uint64_t chunk_ratio;     /* (2^23 * logical sector) / block size (2.4) */
    uint64_t payload_blocks;  /* ceil(virtual size / block size) */
    uint64_t bat_entries;     /* payload blocks + floor((payload blocks - 1) / chunk ratio) (2.5) */
    int bat_scanned;          /* every entry was validated (bat_entries <= REF_BAT_SCAN_MAX) */
    uint64_t blocks_present;  /* payload entries FULLY_PRESENT (when scanned) */
    uint64_t blocks_zero;     /* payload entries ZERO, UNMAPPED or UNDEFINED (when scanned) */

    /* private */
    struct ref_src src;       /* a copy of the caller's */
    struct ref_replay_index *ri;
};

/* Reads and judges the image.  Returns 0 with img filled (status says what
 * was found; the read functions below work when status is REF_VALID, and
 * also for REF_UNDECIDED images that got as far as the BAT), or -1 when out
 * of memory or the source failed to read (img->why says which).  Free with
 * ref_image_free() in every case. */
int ref_image_open(struct ref_image *img, const struct ref_src *src);
void ref_image_free(struct ref_image *img);

/* Bytes of the file as they are after the replay.  0, or -1 (read error). */
int ref_image_read(const struct ref_image *img, void *buf, size_t len, uint64_t off);

/* The BAT index of payload block b (2.5: chunk_ratio payload entries, then
 * one sector-bitmap entry), and the entry after the replay (0 past the
 * region, or on a read error). */
uint64_t ref_image_bat_index(const struct ref_image *img, uint64_t block);
uint64_t ref_image_bat_entry(const struct ref_image *img, uint64_t index);

/* Virtual-disk bytes [voff, voff+len) (inside the disk).  Blocks whose
 * contents the specification leaves open (NOT_PRESENT, UNDEFINED, UNMAPPED)
 * read as zeros here and clear *defined (when defined is not NULL): a
 * subject may return something else there.  0, or -1 (read error or a range
 * outside the disk). */
int ref_image_read_virtual(const struct ref_image *img, void *buf, size_t len, uint64_t voff, int *defined);

/* "valid", "invalid", "undecided". */
const char *ref_status_name(enum ref_status s);

#endif /* REF_REF_H */
