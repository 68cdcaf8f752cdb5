/*
 * glue.c - reads the VHDX driver's state (BDRVVHDXState of the fetched
 * block/vhdx.h) for qshim_info, and runs its block_init function.  Built
 * with the driver's own flags (qemu/CMakeLists.txt), since it includes
 * vhdx.h.
 */
#include "qemu/osdep.h"
#include "block/block_int.h"
#include "vhdx.h"
#include "qglue.h"

/* defined by block_init() in vhdx.c (qemu/shim/include/qemu/module.h) */
void qshim_block_init_bdrv_vhdx_init(void);

void qglue_register_drivers(void)
{
    qshim_block_init_bdrv_vhdx_init();
}

static int guid_is_zero(const MSGUID *g)
{
    static const MSGUID zero;
    return memcmp(g, &zero, sizeof zero) == 0;
}

void qglue_info(BlockDriverState *bs, struct qshim_info *out)
{
    BDRVVHDXState *s = bs->opaque;
    out->virtual_disk_size = s->virtual_disk_size;
    out->block_size = s->block_size;
    out->logical_sector = s->logical_sector_size;
    out->physical_sector = s->physical_sector_size;
    out->bat_offset = s->bat_rt.file_offset;
    out->bat_length = s->bat_rt.length;
    out->bat_entries = s->bat_entries;
    out->metadata_offset = s->metadata_rt.file_offset;
    out->current_header = (int)s->curr_header;
    if (s->headers[s->curr_header]) {
        VHDXHeader *h = s->headers[s->curr_header];
        out->log_offset = h->log_offset;
        out->log_length = h->log_length;
        out->header_sequence = h->sequence_number;
        out->log_guid_set = !guid_is_zero(&h->log_guid);
    }
    out->replayed = s->log_replayed_on_open;
}
