/*
 * log_internal.h - pieces of the log shared between log_entry.c,
 * log_search.c and log_replay.c.  Internal to libvhdx.
 */
#ifndef VHDX_LOG_INTERNAL_H
#define VHDX_LOG_INTERNAL_H

#include "vhdx/log.h"

/* Makes sectors 0..sector of the entry available in one contiguous buffer
 * and returns its base (sector k lives at base + k * 4096), or NULL on an
 * I/O error.  Called with non-decreasing sector numbers. */
typedef const uint8_t *(*vhdx_log_fetch_fn)(void *ctx, uint64_t sector);

struct vhdx_log_entry_stats {
    uint32_t data_descriptors; /* data descriptors (= data sectors) */
    uint32_t zero_descriptors; /* zero descriptors */
};

/* The one validation routine (see log.h for the rules and their order). */
int vhdx_log_validate_core(vhdx_log_fetch_fn fetch, void *ctx, const struct vhdx_guid *guid, uint32_t log_length,
                           struct vhdx_log_header *hdr, struct vhdx_log_entry_stats *stats);

/* Reads len bytes of the ring starting at ring offset pos, wrapping at L. */
int vhdx_log_ring_read(const struct vhdx_log_ring *ring, uint32_t pos, void *buf, size_t len);

#endif /* VHDX_LOG_INTERNAL_H */
