/*
 * check.h - the consistency checker and its explicit repair mode.
 *
 * vhdx_check() inspects an image without modifying it: file identifier,
 * both headers, both region tables, the metadata table and items, every BAT
 * entry (state, range, overlap with structures and other blocks), the file
 * size, and the log state.  When the LogGuid is set, the active sequence is
 * replayed in memory and the replayed image is what gets checked.
 *
 * Problems carry a severity: an ERROR means the image is refused or would
 * return wrong data; a WARNING means it opens correctly but is not as the
 * specification says (a damaged second header, reserved bits set); INFO
 * describes state (a log waiting for replay).  Problems that a tool may fix
 * without losing data carry a repair kind; vhdx_check() with
 * VHDX_CHECK_REPAIR fixes exactly those, each reported as a REPAIRED item,
 * never silently.
 */
#ifndef VHDX_CHECK_H
#define VHDX_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "vhdx/bdev.h"

#ifdef __cplusplus
extern "C" {
#endif

enum vhdx_severity { VHDX_SEV_INFO = 0, VHDX_SEV_WARNING = 1, VHDX_SEV_ERROR = 2, VHDX_SEV_REPAIRED = 3 };

/* What a repair would do (0: not repairable). */
enum vhdx_repair {
    VHDX_REPAIR_NONE = 0,
    VHDX_REPAIR_CLEAR_LOG_GUID = 1,  /* LogGuid set, no valid sequence: clear it */
    VHDX_REPAIR_REPLAY = 2,          /* log pending: replay it */
    VHDX_REPAIR_HEADER_COPY = 3,     /* rewrite the damaged/stale header copy */
    VHDX_REPAIR_REGION_COPY = 4,     /* rewrite the damaged/differing region table copy (via the log) */
};

struct vhdx_problem {
    enum vhdx_severity severity; /* see above */
    int code;                    /* VHDX_E_* */
    uint64_t offset;             /* file offset, UINT64_MAX if none */
    enum vhdx_repair repair;     /* how --repair would fix it */
    char field[64];              /* structure and field */
    char message[256];           /* one sentence */
};

struct vhdx_check_report {
    struct vhdx_problem *problems; /* malloc'd */
    size_t count;
    size_t errors, warnings, repaired; /* tallies */
    int opened;                    /* 1 if the image would open */
    int log_pending;               /* 1 if the LogGuid is set */
    uint32_t log_entries;          /* entries in the active sequence */
};

enum vhdx_check_flags {
    VHDX_CHECK_REPAIR = 1u << 0, /* fix repairable problems (writes to dev) */
};

/* Returns 0 when the check ran (see report->errors for the verdict), or an
 * I/O error / -ENOMEM when it could not.  Free the report with
 * vhdx_check_report_free(). */
int vhdx_check(struct bdev *dev, unsigned flags, struct vhdx_check_report *report);
void vhdx_check_report_free(struct vhdx_check_report *report);

const char *vhdx_severity_name(enum vhdx_severity s);
const char *vhdx_repair_name(enum vhdx_repair r);

#ifdef __cplusplus
}
#endif
#endif /* VHDX_CHECK_H */
