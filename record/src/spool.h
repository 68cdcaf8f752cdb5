/*
 * spool.h - the recorder's spool: the stream of records the preload
 * library (libpcrecord.so) appends while a program runs, and that
 * pcrecord-pack turns into a harness trace (harness/trace.h).
 *
 * Why a spool and not the trace itself: the program may be killed, call
 * _exit() or exec() at any moment, so nothing may wait for an exit hook.
 * Every record is appended with one writev() on an O_APPEND descriptor,
 * under the recorder's lock, before the intercepted call returns to the
 * program.  A spool is therefore always a valid prefix of records (at
 * worst its last record is cut short, which the packer detects and drops),
 * and records of several processes (fork, exec) interleave whole.
 *
 * Record layout, all integers little-endian, 40-byte header then data:
 *
 *   0  u32 magic    SPOOL_MAGIC ("PCSR")
 *   4  u8  kind     enum spool_kind
 *   5  u8  flags    SPOOL_F_*
 *   6  u16 reserved (0)
 *   8  u32 pid      process that made the call
 *  12  u32 tid      thread that made the call
 *  16  u64 a        per kind (below)
 *  24  u64 b        per kind
 *  32  u32 c        per kind
 *  36  u32 datalen  bytes of data that follow
 *
 *   P process   a pid, b parent pid; data: /proc/self/cmdline (NUL-separated)
 *   W write     a file offset; data: the bytes the call wrote (completed
 *               length only); flags SPOOL_F_SYNC when the descriptor was
 *               O_SYNC/O_DSYNC (the write was durable when it returned)
 *   T truncate  a new size (ftruncate, truncate, open with O_TRUNC)
 *   I flush issued   a flush id (unique within the spool)
 *   D flush done     a flush id, b the result as int64 (0 or -errno)
 *   A fallocate a offset, b length, c mode; data: u64 size before, u64
 *               size after (fstat around the call)
 *   S sync_file_range  a offset, b length, c flags (not a barrier)
 *   M mark      a argument; data: name
 *   X stopped   data: why recording stopped (the rest of the run is not
 *               in the spool)
 *
 * Ordering: writes, truncates and fallocates are appended when the call
 * has completed (completion order across threads); a flush appends I
 * before it starts and D when it returns.  The packer places a successful
 * flush at its I record, so a write that completed while the flush ran
 * stays pending after it (the conservative choice).
 */
#ifndef PCRECORD_SPOOL_H
#define PCRECORD_SPOOL_H

#include <stdint.h>

#define SPOOL_MAGIC 0x52534350u /* "PCSR" little-endian */
#define SPOOL_HDR 40u
#define SPOOL_MAX_DATA (UINT32_C(256) << 20) /* a longer write is split into several W records */

enum spool_kind {
    SPOOL_PROCESS = 'P',
    SPOOL_WRITE = 'W',
    SPOOL_TRUNCATE = 'T',
    SPOOL_FLUSH_ISSUE = 'I',
    SPOOL_FLUSH_DONE = 'D',
    SPOOL_FALLOCATE = 'A',
    SPOOL_SYNC_RANGE = 'S',
    SPOOL_MARK = 'M',
    SPOOL_STOPPED = 'X',
};

enum spool_flags {
    SPOOL_F_SYNC = 1u << 0, /* W: the descriptor was O_SYNC/O_DSYNC */
};

/* Environment of the preload library. */
#define PCRECORD_ENV_FILE "POWERCUT_RECORD_FILE"   /* the image to record (path) */
#define PCRECORD_ENV_SPOOL "POWERCUT_RECORD_SPOOL" /* where the spool goes (appended) */
#define PCRECORD_ENV_QUIET "POWERCUT_RECORD_QUIET" /* "1": no notice on stderr at start */

/* Suffix of the file the library creates next to the spool when it
 * stopped recording and could not say so in the spool itself. */
#define PCRECORD_STOPPED_SUFFIX ".stopped"

#endif /* PCRECORD_SPOOL_H */
