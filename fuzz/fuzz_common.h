/*
 * fuzz_common.h - what the fuzz targets share: the failure macro, the small
 * in-memory base images, the log-input format of fuzz_log_replay and
 * fuzz_log_parse (also what the structure-aware mutator edits), and the
 * write guard of "replay writes only where the log may write".
 *
 * Guarantees:
 *  - every base image is a pure function of its kind: the engine builds it
 *    with a seeded GUID source, so targets, the seed generator and a replay
 *    of a saved input all see the same bytes;
 *  - parsing an input never fails: any byte string is a valid input (short
 *    inputs are zero-padded, long ones cut to the bounded sector count), so
 *    the fuzzer never wastes executions on a format gate;
 *  - FUZZ_CHECK() prints file:line, the expression and a message on stderr,
 *    then abort()s, which libFuzzer, AFL++ and the standalone main all
 *    report as a crash.
 */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "harness/secmap.h"
#include "harness/simdisk.h"
#include "vhdx/format.h"
#include "vhdx/guid.h"

/* ---- failing ------------------------------------------------------------ */
_Noreturn void fuzz_fail(const char *file, int line, const char *expr, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define FUZZ_CHECK(cond, ...)                                      \
    do {                                                           \
        if (!(cond))                                               \
            fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);     \
    } while (0)

/* POWERCUT_FUZZ_STRICT=1 in the environment: known engine deviations
 * (fuzz/README-style list in docs/fuzzing.md) abort instead of being
 * tolerated.  Read once. */
int fuzz_strict(void);
/* POWERCUT_FUZZ_VERBOSE=1: targets say what each input did (for reproducing). */
int fuzz_verbose(void);

struct crashdisk;
/* Image export (powercut diff turns fuzz corpora into crash images this
 * way): when POWERCUT_FUZZ_EXPORT names a file, writes the image the input
 * built (cd's contents, cd->size bytes, before the engine touches it) there,
 * sparsely, and returns 1: the target then returns without running the
 * engine.  Returns 0 when the variable is unset.  A write error is fatal
 * (message, exit status 2). */
int fuzz_export_image(struct crashdisk *cd);

/* ---- base images -------------------------------------------------------- */
enum fuzz_image_kind {
    FUZZ_IMG_REPLAY = 0,  /* 8 MiB disk, 1 MiB blocks, three blocks written, log region zeroed, LogGuid clear */
    FUZZ_IMG_CLEAN = 1,   /* 4 MiB disk, 1 MiB blocks, two blocks written and closed */
    FUZZ_IMG_PENDING = 2, /* 4 MiB disk, writes batched (apply_every 8) and abandoned: LogGuid set, log pending */
    FUZZ_IMG_COUNT
};

struct fuzz_image {
    struct secmap map;        /* the image's sectors (owned copies) */
    uint64_t size;            /* bytes */
    uint64_t log_offset;      /* from the current header */
    uint32_t log_length;
    uint64_t meta_offset;     /* metadata region */
    uint64_t bat_offset;      /* BAT region */
    uint32_t bat_length;
    uint64_t virtual_size;    /* bytes */
    int cur_slot;             /* current header slot: 0 (64 KiB) or 1 (128 KiB) */
    struct vhdx_header hdr;   /* current header as decoded */
};

/* Builds (once, then cached for the life of the process) and returns the
 * base image of this kind.  Aborts on failure: a base that cannot be built
 * is a bug of the engine or the harness, not of the input. */
const struct fuzz_image *fuzz_image_get(enum fuzz_image_kind kind);
/* Reads [off, off+len) of an image (zero where nothing was written). */
void fuzz_image_read(const struct fuzz_image *img, uint64_t off, void *buf, size_t len);

/* A deterministic GUID source for the engine (splitmix64 from seed). */
struct fuzz_rng {
    struct vhdx_rng_seeded state; /* advanced by every GUID */
    struct vhdx_rng rng;          /* points at state */
};
void fuzz_rng_init(struct fuzz_rng *r, uint64_t seed);

/* splitmix64 step, for the targets' and the mutator's own choices. */
uint64_t fuzz_mix64(uint64_t *state);

/* ---- the log input (fuzz_log_replay, fuzz_log_parse, the mutator) --------
 *
 *   offset 0   u8  flags (LRF_*)
 *          1   u8  start: ring sector of the first supplied sector
 *          2   i16 file size change, in MiB (LE; the file is at least 1 MiB)
 *          4   u32 header sequence number bias (added to the base's)
 *          8   u8  fuzz_log_parse: ring length - 1 in MiB (bits 0-1)
 *          9   7 bytes reserved
 *         16   16 bytes: LogGuid written into the headers (when LRF_GUID)
 *         32   sectors: 4096 bytes each, placed in the ring at start,
 *              start+1, ... (wrapping); a short last sector is zero-padded
 */
#define LR_PREFIX 32u
#define LR_MAX_SECTORS 64u
#define LR_MAX_INPUT (LR_PREFIX + LR_MAX_SECTORS * VHDX_LOG_SECTOR)
#define LR_RING_SECTORS 256u /* the base image's 1 MiB log */

enum lr_flags {
    LRF_GUID = 1u << 0,       /* the headers carry the input's LogGuid (else zero: nothing to replay) */
    LRF_SLOT2 = 1u << 1,      /* the header at 128 KiB is the current one */
    LRF_OTHER_BAD = 1u << 2,  /* the non-current header copy has a broken checksum */
    LRF_LOGVER = 1u << 3,     /* LogVersion = 1 (must be refused with a log to replay) */
    LRF_SAME_SEQ = 1u << 4,   /* both header copies identical, same SequenceNumber */
    LRF_RDONLY = 1u << 5,     /* open read-only (replay in memory) */
    LRF_OLD_GUID = 1u << 6,   /* the non-current copy carries another LogGuid (older session) */
};

struct lr_input {
    uint8_t flags;            /* LRF_* */
    uint32_t start;           /* ring sector of sectors[0] */
    int file_delta_mb;        /* file size change */
    uint32_t seq_bias;        /* header SequenceNumber bias */
    struct vhdx_guid guid;    /* LogGuid for the headers */
    uint32_t n_sectors;       /* supplied sectors (<= LR_MAX_SECTORS) */
    uint8_t *sectors;         /* n_sectors * 4096 bytes (owned by the parser's buffer) */
};

/* Parses data into in, copying sectors into buf (LR_MAX_SECTORS * 4096
 * bytes, 4 KiB aligned, owned by the caller).  Never fails. */
void lr_parse(const uint8_t *data, size_t size, uint8_t *buf, struct lr_input *in);

/* ---- the write guard --------------------------------------------------------
 * Installed on a crashdisk: every write/truncate is checked against what the
 * current phase may do, and a violation aborts with a description. */
enum guard_phase {
    GUARD_NONE = 0,    /* anything goes (building states) */
    GUARD_FORBID = 1,  /* no write and no truncate at all (refused opens, checks, idempotent reopen) */
    GUARD_REPLAY = 2,  /* header slots, or replay targets outside the first 192 KiB and the log, up to a limit */
};
struct fuzz_guard {
    enum guard_phase phase;   /* what is allowed now */
    uint64_t log_offset;      /* the log region, which replay never writes */
    uint32_t log_length;
    uint64_t limit;           /* GUARD_REPLAY: no write or truncate past this */
    uint64_t size_floor;      /* GUARD_REPLAY: truncate never shrinks below this */
};
int fuzz_guard_fn(void *ctx, uint64_t off, uint64_t len, int is_truncate);

#endif /* FUZZ_COMMON_H */
