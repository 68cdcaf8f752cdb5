/*
 * trace.h - the record of every operation a program made on a disk image,
 * in memory and in a versioned, checksummed file format.
 *
 * A trace is self-contained: the base image (the device contents before the
 * first recorded operation, stored sparsely), then every operation in
 * completion order:
 *
 *   W  write       offset, length, bytes
 *   T  truncate    new size (grow zero-fills)
 *   F  flush       durability barrier
 *   M  mark        interned name + 64-bit argument ("log.entry" 17,
 *                  "fault.drop_pending" 0, ...), emitted by the engine or
 *                  the workload
 *   B  vbegin      a workload operation starts: op index, kind
 *                  (write/flush/discard/reopen/...), virtual offset and
 *                  length, write id
 *   E  vend        that workload operation returned rc
 *
 * plus key/value metadata (engine build id, seed, workload, image
 * parameters, recording command...) and, in a reproducer, a crash choice
 * (key/value pairs naming the model and its parameters).
 *
 * File format, version 1, all integers little-endian:
 *
 *   offset 0   "PCTRACE1"                       8 bytes
 *          8   u32 version (1)
 *         12   u32 flags (TRACE_F_*)
 *         16   u64 seed
 *         24   u64 base size in bytes
 *         32   u64 operation count
 *         40   24 reserved bytes (zero)
 *         64   metadata: { u16 klen, key, u16 vlen, value }*, u16 0
 *              base: u32 extent count, { u64 offset, u32 length, bytes }*
 *              operations: { u8 kind, fields }*  (see trace.c)
 *              choice: u8 'C', { u16 klen, key, u16 vlen, value }*, u16 0
 *              (present when TRACE_F_CHOICE is set)
 *   trailer    u64 bytes before the trailer, u32 CRC-32C of those bytes,
 *              "PCEND\0\0\0"
 *
 * Loading checks the magic, version, trailer, CRC and every length against
 * the bytes that remain, and caps counts (TRACE_MAX_*), so a damaged or
 * hostile file gets a clear error, never a crash or an unbounded
 * allocation.
 */
#ifndef HARNESS_TRACE_H
#define HARNESS_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "harness/secmap.h"

#define TRACE_VERSION 1u
#define TRACE_MAX_OPS (UINT64_C(1) << 28)
#define TRACE_MAX_META 256u
#define TRACE_MAX_NAMES 4096u
#define TRACE_MAX_WRITE (UINT32_C(1) << 30)

enum trace_kind {
    TR_WRITE = 'W',
    TR_TRUNCATE = 'T',
    TR_FLUSH = 'F',
    TR_MARK = 'M',
    TR_VBEGIN = 'B',
    TR_VEND = 'E',
};

enum trace_flags {
    TRACE_F_WORKLOAD = 1u << 0, /* carries B/E records: the oracle can judge data */
    TRACE_F_EXTERNAL = 1u << 1, /* recorded from an external program */
    TRACE_F_CHOICE = 1u << 2,   /* a reproducer: carries a crash choice */
};

/* Workload operation kinds (TR_VBEGIN.vkind). */
enum vop_kind {
    VOP_WRITE = 1,   /* self-describing data at [voff, voff+vlen) */
    VOP_FLUSH = 2,   /* vhdx_flush */
    VOP_DISCARD = 3, /* vhdx_discard: the range reads zeros afterwards */
    VOP_REOPEN = 4,  /* vhdx_close + vhdx_open: a new session */
    VOP_OPEN = 5,    /* the first open of the run */
    VOP_CLOSE = 6,   /* the final close */
    VOP_APPLY = 7,   /* vhdx_log_apply_now */
};

struct trace_op {
    uint8_t kind;        /* enum trace_kind */
    uint8_t vkind;       /* B: enum vop_kind */
    uint16_t name;       /* M: index into names */
    uint32_t len;        /* W: bytes */
    uint64_t off;        /* W: offset; T: new size; M: argument; B: virtual offset */
    const uint8_t *data; /* W: bytes (owned by the trace) */
    uint64_t vlen;       /* B: virtual length */
    uint32_t vop;        /* B/E: workload op index */
    uint32_t vid;        /* B: write id (self-describing data) */
    int32_t rc;          /* E: return code */
};

struct trace_kv {
    char *key;
    char *value;
};

struct trace_chunk; /* data arena (private) */

struct trace {
    uint32_t flags;             /* TRACE_F_* */
    uint64_t seed;              /* the seed that produced it */
    struct trace_op *ops;       /* operations in completion order */
    size_t n_ops, cap_ops;
    char **names;               /* interned mark names */
    size_t n_names;
    struct trace_kv *meta;      /* metadata */
    size_t n_meta;
    struct trace_kv *choice;    /* crash choice of a reproducer */
    size_t n_choice;
    struct secmap base;         /* base image sectors (values in the arena) */
    uint64_t base_size;         /* bytes */
    struct trace_chunk *arena;  /* write data and base data */
    uint64_t bytes_written;     /* sum of W lengths */
};

void trace_init(struct trace *t);
void trace_free(struct trace *t);

/* Metadata and choice pairs; setting a key again replaces its value. */
int trace_set_meta(struct trace *t, const char *key, const char *value);
const char *trace_get_meta(const struct trace *t, const char *key);
int trace_set_choice(struct trace *t, const char *key, const char *value);
const char *trace_get_choice(const struct trace *t, const char *key);

/* Appending operations.  Write data is copied into the trace's arena; the
 * returned pointer (via *stored, may be NULL) stays valid until trace_free. */
int trace_add_write(struct trace *t, uint64_t off, const void *data, uint32_t len, const uint8_t **stored);
int trace_add_truncate(struct trace *t, uint64_t size);
int trace_add_flush(struct trace *t);
int trace_add_mark(struct trace *t, const char *name, uint64_t arg);
int trace_add_vbegin(struct trace *t, uint32_t vop, enum vop_kind kind, uint64_t voff, uint64_t vlen, uint32_t vid);
int trace_add_vend(struct trace *t, uint32_t vop, int32_t rc);
/* Index of a mark name, or -1. */
int trace_find_name(const struct trace *t, const char *name);

/* Base image: copies the sectors of m (and size) into the trace. */
int trace_set_base(struct trace *t, const struct secmap *m, uint64_t size);
/* Base image from a flat buffer (zero sectors are not stored). */
int trace_set_base_bytes(struct trace *t, const uint8_t *data, uint64_t size);

/* Saving and loading.  Return 0, or -1 with a message in err. */
int trace_save(const struct trace *t, const char *path, char *err, size_t errlen);
int trace_load(struct trace *t, const char *path, char *err, size_t errlen);
/* The same over memory (loading checks exactly as from a file). */
int trace_serialize(const struct trace *t, uint8_t **out, size_t *outlen);
int trace_parse(struct trace *t, const uint8_t *buf, size_t len, char *err, size_t errlen);

#endif /* HARNESS_TRACE_H */
