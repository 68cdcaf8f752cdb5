/*
 * schedule.c - fault schedules from fuzzer bytes (schedule.h).
 *
 * Guarantees: decoding is total (any bytes, any length give a valid plan or
 * "no fault") and pure; encode(decode(x)) decodes to the same plan.
 */
#include "faults/schedule.h"

#include <string.h>

int fault_schedule_decode(const uint8_t *data, size_t len, unsigned allowed, uint64_t max_nth,
                          struct fault_plan *p)
{
    uint8_t b[FAULT_SCHEDULE_BYTES] = {0};
    memcpy(b, data, len < sizeof b ? len : sizeof b);
    memset(p, 0, sizeof *p);
    unsigned kind = b[0] & 7;
    if (kind >= FK_COUNT || !(allowed & (1u << kind)))
        return 0;
    p->kind = (enum fault_kind)kind;
    p->mode = (b[0] & 8) ? FM_PERSISTENT : FM_TRANSIENT;
    uint64_t v = (uint64_t)b[1] | (uint64_t)b[2] << 8;
    p->nth = 1 + (max_nth ? v % max_nth : v);
    unsigned pts = b[3] & fault_kind_points(p->kind);
    p->points = pts;
    return 1;
}

void fault_schedule_encode(const struct fault_plan *p, uint8_t out[FAULT_SCHEDULE_BYTES])
{
    uint64_t v = p->nth ? p->nth - 1 : 0;
    out[0] = (uint8_t)((unsigned)p->kind | (p->mode == FM_PERSISTENT ? 8u : 0u));
    out[1] = (uint8_t)(v & 0xFF);
    out[2] = (uint8_t)((v >> 8) & 0xFF);
    out[3] = (uint8_t)(p->points & FP_ALL);
}
