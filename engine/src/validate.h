/*
 * validate.h - structure validators shared by vhdx_open() and the checker.
 * Internal to libvhdx.
 *
 * Each validator reports problems to a sink.  vhdx_open() uses a sink that
 * records the first error into its diag and stops; the checker uses one
 * that collects everything and continues where continuing is meaningful.
 * A validator returns 0 when it ran to completion (problems, if any, went
 * to the sink and the sink chose to continue) or the error code at which
 * the sink, or an unrecoverable condition, stopped it.
 */
#ifndef VHDX_VALIDATE_H
#define VHDX_VALIDATE_H

#include <stdarg.h>
#include <stdint.h>

#include "internal.h"
#include "vhdx/check.h"

struct vhdx_sink {
    /* Returns 0 to continue, or the code to stop with. */
    int (*report)(struct vhdx_sink *s, const struct vhdx_problem *p);
};

/* Formats and reports one problem. */
int vhdx_report(struct vhdx_sink *s, enum vhdx_severity sev, int code, uint64_t offset, unsigned repair,
                const char *field, const char *fmt, ...) __attribute__((format(printf, 7, 8)));

/* Header selection: reads both slots; returns the current one.  Problems:
 * a damaged copy is a warning (repairable); both damaged is fatal. */
struct vhdx_headers {
    struct vhdx_header h[2]; /* decoded slots */
    int rc[2];               /* decode result per slot */
    int current;             /* 0 or 1 */
};
int vhdx_v_headers(struct bdev *dev, struct vhdx_headers *out, struct vhdx_sink *s);
int vhdx_v_header_fields(const struct vhdx_headers *hs, struct vhdx_sink *s);

/* The layout the structures must respect. */
struct vhdx_layout {
    uint64_t file_size;          /* size of the (replayed) image */
    uint64_t log_offset;         /* from the current header */
    uint32_t log_length;
    const struct vhdx_region_table *rt; /* the table in use */
    uint64_t bat_offset, meta_offset;
    uint32_t bat_length, meta_length;
};

/* Both region tables: picks the first valid copy.  A damaged or differing
 * second copy is a warning (repairable).  Fills rt and the BAT/metadata
 * locations in lay. */
int vhdx_v_region_tables(struct bdev *dev, struct vhdx_region_table *rt, struct vhdx_layout *lay,
                         int *copy_used, struct vhdx_sink *s);

/* Metadata table and known items; fills geometry, flags, disk id. */
int vhdx_v_metadata(struct bdev *dev, const struct vhdx_layout *lay, struct vhdx_geometry *geo,
                    uint32_t *fp_flags, struct vhdx_guid *disk_id, struct vhdx_sink *s);

/* Every BAT entry: states, offsets inside the file, no overlap with each
 * other or any structure.  strict=0 (open) tolerates what cannot lead to
 * wrong data (reserved bits, sector-bitmap states); strict=1 (check)
 * reports those as warnings.  *alloc_end gets the end of the highest block. */
int vhdx_v_bat(const uint8_t *bat, const struct vhdx_geometry *geo, const struct vhdx_layout *lay, int strict,
               uint64_t *alloc_end, struct vhdx_sink *s);

#endif /* VHDX_VALIDATE_H */
