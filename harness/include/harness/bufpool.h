/*
 * bufpool.h - a per-thread pool of large buffers the harness frees and
 * allocates again and again (trace arena chunks, sector-map arenas and
 * slot tables).
 *
 * Why: a fuzz target or a sweep records several traces and builds several
 * sector maps per input.  Each fresh large allocation is a new mapping
 * whose pages fault in again, and under ASan every map and unmap also
 * fills shadow memory; in fuzz_crash_schedule that was most of the time.
 *
 * Guarantees:
 *  - bufpool_alloc(n) returns n bytes aligned to 512 (not zeroed), or NULL;
 *    bufpool_free(p, n) takes the same n.  Buffers below BUFPOOL_MIN bytes
 *    go straight to malloc/free;
 *  - a freed buffer is kept for a later request of exactly its size, up to
 *    BUFPOOL_BYTES per thread and BUFPOOL_SLOTS buffers; beyond that it is
 *    freed.  Memory held this way is bounded and reachable (no leak report);
 *  - under ASan a pooled buffer stays poisoned until it is handed out
 *    again, so a use after free of pooled memory is still reported.
 */
#ifndef HARNESS_BUFPOOL_H
#define HARNESS_BUFPOOL_H

#include <stddef.h>

#define BUFPOOL_MIN (64u * 1024)
#define BUFPOOL_BYTES (64u << 20)
#define BUFPOOL_SLOTS 64u

void *bufpool_alloc(size_t n);
void bufpool_free(void *p, size_t n);
/* Frees every pooled buffer of this thread (tests; tools need not call it). */
void bufpool_drain(void);

/* glibc: serve blocks up to 256 MiB from the heap and trim it only past
 * 512 MiB (mallopt), once per process.  Every crash state opens an image,
 * and an open and replay allocate and free blocks of a megabyte and more
 * (the engine's replay plan and log entry buffer, QEMU's BAT); by default
 * glibc maps such blocks fresh and unmaps them, or trims the heap top
 * after each, so every state paid page faults for them again (in
 * `pcsweep sweep --scenario batch --models all`, a quarter of the time).
 * Called when a sweep or fault sweep starts (the QEMU shim, below the
 * harness, does the same for its opens); a no-op elsewhere than glibc. */
void bufpool_heap_tune(void);

#endif
