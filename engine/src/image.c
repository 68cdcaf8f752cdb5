/*
 * image.c - creating and opening images; the dual-header update protocol.
 *
 * Open is two-phase.  Phase 1 reads and validates everything and writes
 * nothing: file identifier, headers, then (when the LogGuid is set) the
 * active log sequence and every descriptor target, building an in-memory
 * replay plan; then region tables, metadata and BAT are validated through an
 * overlay that shows the image as it will be after the replay.  Any failure
 * returns here and the file is byte-identical.  Phase 2 (read-write opens
 * that need a replay) updates the headers (new FileWriteGuid), applies the
 * plan, extends the file to LastFileOffset, flushes, and clears the LogGuid
 * with a second header update.  A read-only open keeps the overlay.
 *
 * Header updates (MS-VHDX 2.2.2.1): write the non-current slot with
 * SequenceNumber + 1, flush; then the same again into the other slot, so
 * both copies are current.  A cut between the steps leaves one valid,
 * current header.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "validate.h"
#include "vhdx/crc32c.h"

#ifndef VHDX_VERSION_STRING
#define VHDX_VERSION_STRING "1.0"
#endif
#ifndef VHDX_BUILD_FLAVOR
#define VHDX_BUILD_FLAVOR "release"
#endif

#define VHDX_STR_(x) #x
#define VHDX_STR(x) VHDX_STR_(x)

const char *vhdx_build_id(void)
{
#if defined(__clang__)
#define VHDX_CC "clang-" VHDX_STR(__clang_major__) "." VHDX_STR(__clang_minor__)
#elif defined(__GNUC__)
#define VHDX_CC "gcc-" __VERSION__
#else
#define VHDX_CC "cc"
#endif
    return "libvhdx " VHDX_VERSION_STRING " " VHDX_BUILD_FLAVOR " (" VHDX_CC ")";
}

int vhdx_fail(struct vhdx_diag *d, int code, uint64_t offset, const char *field, const char *fmt, ...)
{
    if (d) {
        d->code = code;
        d->offset = offset;
        snprintf(d->field, sizeof d->field, "%s", field ? field : "");
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(d->message, sizeof d->message, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* ---- the open sink: the first ERROR stops, into the diag ------------------- */
struct first_error_sink {
    struct vhdx_sink base;
    struct vhdx_diag *diag;
};

static int first_error_report(struct vhdx_sink *s, const struct vhdx_problem *p)
{
    struct first_error_sink *f = (struct first_error_sink *)s;
    if (p->severity != VHDX_SEV_ERROR)
        return 0;
    vhdx_fail(f->diag, p->code, p->offset, p->field, "%s", p->message);
    return p->code ? p->code : VHDX_E_CHECK_FAILED;
}

/* ---- header protocol ------------------------------------------------------- */
static const uint32_t slot_offset[2] = {VHDX_HEADER1_OFFSET, VHDX_HEADER2_OFFSET};

int vhdx_flush_dev(struct vhdx *h)
{
    int rc = vhdx_io_flush(h->dev);
    if (rc != 0)
        return rc;
    h->durable_size = h->file_size;
    return 0;
}

int vhdx_header_update(struct vhdx *h, unsigned what, const struct vhdx_guid *log_guid)
{
    struct vhdx_header n = h->hdr;
    int rc;
    if (what & HDR_NEW_FILE_GUID) {
        rc = vhdx_guid_generate(&h->rng, &n.file_write_guid);
        if (rc != 0)
            return rc;
    }
    if (what & HDR_NEW_DATA_GUID) {
        rc = vhdx_guid_generate(&h->rng, &n.data_write_guid);
        if (rc != 0)
            return rc;
    }
    if (what & HDR_SET_LOG_GUID)
        n.log_guid = *log_guid;
    if (what & HDR_CLEAR_LOG_GUID)
        memset(&n.log_guid, 0, sizeof n.log_guid);
    uint8_t buf[VHDX_HEADER_SIZE];
    for (int copy = 0; copy < 2; copy++) {
        n.sequence = h->hdr.sequence + 1;
        vhdx_header_encode(&n, buf);
        int slot = 1 - h->hdr_slot;
        rc = vhdx_io_write(h->dev, buf, sizeof buf, slot_offset[slot]);
        if (rc == 0)
            rc = vhdx_flush_dev(h); /* also makes the current file size known-durable */
        if (rc != 0)
            return rc;
        vhdx_io_mark(h->dev, "header.written", n.sequence);
        h->hdr = n;
        h->hdr_slot = slot;
    }
    return 0;
}

int vhdx_session_begin(struct vhdx *h, int user_visible)
{
    unsigned what = 0;
    if (!h->file_guid_done)
        what |= HDR_NEW_FILE_GUID;
    if (user_visible && !h->data_guid_done)
        what |= HDR_NEW_DATA_GUID;
    if (!what)
        return 0;
    int rc = vhdx_header_update(h, what, NULL);
    if (rc != 0) {
        h->poison = rc;
        return rc;
    }
    h->file_guid_done = 1;
    if (what & HDR_NEW_DATA_GUID)
        h->data_guid_done = 1;
    return 0;
}

/* ---- create ---------------------------------------------------------------- */
int vhdx_create(struct bdev *dev, const struct vhdx_create_params *p, const struct vhdx_options *opt)
{
    struct vhdx_diag *diag = opt ? opt->diag : NULL;
    struct vhdx_rng rng = {0};
    if (opt && opt->rng)
        rng = *opt->rng;
    if (!dev || !p)
        return vhdx_fail(diag, VHDX_E_INVAL, UINT64_MAX, "", "no device or parameters");
    uint32_t bs = p->block_size ? p->block_size : VHDX_DEFAULT_BLOCK_SIZE;
    uint32_t ls = p->log_size ? p->log_size : VHDX_DEFAULT_LOG_SIZE;
    uint32_t lsec = p->logical_sector ? p->logical_sector : VHDX_DEFAULT_LOGICAL_SECTOR;
    uint32_t psec = p->physical_sector ? p->physical_sector : VHDX_DEFAULT_PHYSICAL_SECTOR;
    if (bs < VHDX_MIN_BLOCK_SIZE || bs > VHDX_MAX_BLOCK_SIZE || (bs & (bs - 1)))
        return vhdx_fail(diag, VHDX_E_INVAL, UINT64_MAX, "block_size",
                         "block size %u is not a power of two between 1 MiB and 256 MiB", bs);
    if (ls % VHDX_MiB || ls > VHDX_LOG_MAX_LENGTH)
        return vhdx_fail(diag, VHDX_E_INVAL, UINT64_MAX, "log_size",
                         "log size %u is not a multiple of 1 MiB up to 256 MiB", ls);
    if (lsec != 512 && lsec != 4096)
        return vhdx_fail(diag, VHDX_E_INVAL, UINT64_MAX, "logical_sector", "logical sector %u is not 512 or 4096", lsec);
    if (psec != 512 && psec != 4096)
        return vhdx_fail(diag, VHDX_E_INVAL, UINT64_MAX, "physical_sector", "physical sector %u is not 512 or 4096",
                         psec);
    struct vhdx_geometry geo;
    if (vhdx_geometry_init(&geo, p->virtual_size, bs, lsec, psec) != 0)
        return vhdx_fail(diag, VHDX_E_INVAL, UINT64_MAX, "virtual_size",
                         "virtual size %llu is zero, above 64 TiB or not a multiple of the logical sector (%u)",
                         (unsigned long long)p->virtual_size, lsec);

    const uint64_t log_off = VHDX_MiB;
    const uint64_t meta_off = log_off + ls;
    const uint32_t meta_len = (uint32_t)VHDX_MiB;
    const uint64_t bat_off = meta_off + meta_len;
    const uint64_t bat_len = vhdx_round_up(geo.bat_entries * 8, VHDX_MiB);
    if (bat_len > UINT32_MAX)
        return vhdx_fail(diag, VHDX_E_INVAL, UINT64_MAX, "virtual_size", "BAT of %llu bytes does not fit a region",
                         (unsigned long long)bat_len);
    const uint64_t file_end = bat_off + bat_len;

    int rc = 0;
    uint8_t *buf = vhdx_calloc(1, VHDX_METADATA_TABLE_SIZE);
    struct vhdx_region_table *rt = vhdx_calloc(1, sizeof *rt);
    struct vhdx_metadata_table *mt = vhdx_calloc(1, sizeof *mt);
    if (!buf || !rt || !mt) {
        rc = -ENOMEM;
        goto out;
    }
    /* The file identifier goes last, so a cut during create leaves a file
     * that is not mistaken for a VHDX. */
    rc = vhdx_io_truncate(dev, 0);
    if (rc == 0)
        rc = vhdx_io_truncate(dev, file_end);
    if (rc != 0)
        goto out;

    struct vhdx_header h;
    memset(&h, 0, sizeof h);
    h.version = 1;
    h.log_version = 0;
    h.log_length = ls;
    h.log_offset = log_off;
    if ((rc = vhdx_guid_generate(&rng, &h.file_write_guid)) != 0 ||
        (rc = vhdx_guid_generate(&rng, &h.data_write_guid)) != 0)
        goto out;
    for (int slot = 0; slot < 2; slot++) {
        h.sequence = (uint64_t)slot + 1;
        vhdx_header_encode(&h, buf);
        if ((rc = vhdx_io_write(dev, buf, VHDX_HEADER_SIZE, slot_offset[slot])) != 0)
            goto out;
    }

    rt->entry_count = 2;
    rt->entries[0] = (struct vhdx_region_entry){VHDX_GUID_REGION_BAT, bat_off, (uint32_t)bat_len, 1};
    rt->entries[1] = (struct vhdx_region_entry){VHDX_GUID_REGION_METADATA, meta_off, meta_len, 1};
    vhdx_region_table_encode(rt, buf);
    if ((rc = vhdx_io_write(dev, buf, VHDX_REGION_TABLE_SIZE, VHDX_REGION1_OFFSET)) != 0 ||
        (rc = vhdx_io_write(dev, buf, VHDX_REGION_TABLE_SIZE, VHDX_REGION2_OFFSET)) != 0)
        goto out;

    /* Metadata: table, then the five items packed from 64 KiB on. */
    const uint32_t item0 = VHDX_METADATA_TABLE_SIZE;
    const uint32_t req = VHDX_META_IS_REQUIRED, vd = VHDX_META_IS_VIRTUAL_DISK;
    mt->entry_count = 5;
    mt->entries[0] = (struct vhdx_metadata_entry){VHDX_GUID_ITEM_FILE_PARAMETERS, item0, 8, req, 0};
    mt->entries[1] = (struct vhdx_metadata_entry){VHDX_GUID_ITEM_VIRTUAL_DISK_SIZE, item0 + 8, 8, req | vd, 0};
    mt->entries[2] = (struct vhdx_metadata_entry){VHDX_GUID_ITEM_VIRTUAL_DISK_ID, item0 + 16, 16, req | vd, 0};
    mt->entries[3] = (struct vhdx_metadata_entry){VHDX_GUID_ITEM_LOGICAL_SECTOR_SIZE, item0 + 32, 4, req | vd, 0};
    mt->entries[4] = (struct vhdx_metadata_entry){VHDX_GUID_ITEM_PHYSICAL_SECTOR_SIZE, item0 + 36, 4, req | vd, 0};
    vhdx_metadata_table_encode(mt, buf);
    if ((rc = vhdx_io_write(dev, buf, VHDX_METADATA_TABLE_SIZE, meta_off)) != 0)
        goto out;
    uint8_t items[40];
    memset(items, 0, sizeof items);
    struct vhdx_file_parameters fp = {bs, 0};
    vhdx_file_parameters_encode(&fp, items);
    vhdx_put64(items + 8, p->virtual_size);
    struct vhdx_guid disk_id;
    if ((rc = vhdx_guid_generate(&rng, &disk_id)) != 0)
        goto out;
    memcpy(items + 16, disk_id.b, 16);
    vhdx_put32(items + 32, lsec);
    vhdx_put32(items + 36, psec);
    if ((rc = vhdx_io_write(dev, items, sizeof items, meta_off + item0)) != 0)
        goto out;
    if ((rc = vhdx_io_flush(dev)) != 0)
        goto out;

    memset(buf, 0, VHDX_FILE_ID_SIZE);
    vhdx_file_id_encode(opt && opt->creator ? opt->creator : "powercut libvhdx " VHDX_VERSION_STRING, buf);
    if ((rc = vhdx_io_write(dev, buf, VHDX_FILE_ID_SIZE, 0)) != 0)
        goto out;
    rc = vhdx_io_flush(dev);
out:
    free(buf);
    free(rt);
    free(mt);
    if (rc != 0 && diag)
        vhdx_fail(diag, rc, UINT64_MAX, "", "create failed: %s", vhdx_strerror(rc));
    return rc;
}

/* ---- open ------------------------------------------------------------------ */
static void handle_free(struct vhdx *h)
{
    if (!h)
        return;
    vhdx_log_writer_free(h);
    if (h->view && h->view != h->dev)
        bdev_destroy(h->view);
    vhdx_replay_plan_free(&h->plan);
    free(h->regions);
    free(h->bat);
    free(h);
}

/* Phase 1 step: find the sequence and build the plan (no writes). */
static int prepare_replay(struct vhdx *h, uint64_t file_size, struct vhdx_diag *diag)
{
    const struct vhdx_header *hd = &h->hdr;
    char g[VHDX_GUID_STRLEN];
    vhdx_guid_format(&hd->log_guid, g);
    if (h->flags & VHDX_OPEN_NO_REPLAY)
        return vhdx_fail(diag, VHDX_E_UNSUPPORTED, slot_offset[h->hdr_slot] + VHDX_HDR_LOG_GUID, "header.LogGuid",
                         "the log must be replayed (LogGuid {%s}) and replay was not allowed", g);
    if (hd->log_length > VHDX_LOG_MAX_LENGTH)
        return vhdx_fail(diag, VHDX_E_LOG_TOO_LARGE, slot_offset[h->hdr_slot] + VHDX_HDR_LOG_LENGTH,
                         "header.LogLength", "log of %u bytes to replay; this engine replays logs up to %u bytes",
                         hd->log_length, VHDX_LOG_MAX_LENGTH);
    if (hd->log_offset + hd->log_length > file_size)
        return vhdx_fail(diag, VHDX_E_TRUNCATED, hd->log_offset, "log",
                         "log [%llu, %llu) reaches past the end of the file (%llu bytes)",
                         (unsigned long long)hd->log_offset, (unsigned long long)(hd->log_offset + hd->log_length),
                         (unsigned long long)file_size);
    struct vhdx_log_ring ring = {h->dev, hd->log_offset, hd->log_length, hd->log_guid};
    struct vhdx_log_sequence seq;
    int rc = vhdx_log_search(&ring, &seq, NULL, NULL);
    if (rc == VHDX_E_LOG_AMBIGUOUS)
        return vhdx_fail(diag, rc, hd->log_offset, "log",
                         "two valid log sequences end with the same sequence number; refusing to guess");
    if (rc != 0)
        return vhdx_fail(diag, rc, hd->log_offset, "log", "log search failed: %s", vhdx_strerror(rc));
    if (!seq.found)
        return vhdx_fail(diag, VHDX_E_LOG_NO_SEQUENCE, slot_offset[h->hdr_slot] + VHDX_HDR_LOG_GUID, "header.LogGuid",
                         "LogGuid {%s} is set but the log at %llu holds no valid sequence (%u candidate entries); "
                         "'vhdxtool check --repair' can clear it",
                         g, (unsigned long long)hd->log_offset, seq.candidates);
    if (file_size < seq.flushed_file_offset) {
        rc = vhdx_fail(diag, VHDX_E_LOG_TRUNCATED, hd->log_offset + seq.positions[seq.count - 1],
                       "log.FlushedFileOffset",
                       "file is %llu bytes but the log head (sequence %llu) says %llu bytes were durable: truncated",
                       (unsigned long long)file_size, (unsigned long long)seq.head_sequence,
                       (unsigned long long)seq.flushed_file_offset);
        vhdx_log_sequence_free(&seq);
        return rc;
    }
    rc = vhdx_replay_plan_build(&ring, &seq, &h->plan);
    if (rc == VHDX_E_LOG_TARGET)
        vhdx_fail(diag, rc, h->plan.bad_target, "log.descriptor",
                  "a descriptor of the active sequence (head %llu) targets %llu, where the log may not write "
                  "(first 192 KiB, the log itself, past LastFileOffset, or past %llu bytes)",
                  (unsigned long long)seq.head_sequence, (unsigned long long)h->plan.bad_target,
                  (unsigned long long)VHDX_MAX_FILE_SIZE);
    else if (rc != 0)
        vhdx_fail(diag, rc, hd->log_offset, "log", "reading the active sequence failed: %s", vhdx_strerror(rc));
    vhdx_log_sequence_free(&seq);
    if (rc != 0)
        return rc;
    h->replayed = 1;
    h->replayed_entries = h->plan.entries;
    h->replayed_head_sequence = h->plan.head_sequence;
    return vhdx_overlay_create(h->dev, &h->plan, &h->view);
}

/* Phase 1 step: region tables, metadata, BAT through h->view. */
static int load_structures(struct vhdx *h, struct vhdx_diag *diag)
{
    struct first_error_sink sink = {{first_error_report}, diag};
    struct vhdx_layout lay;
    memset(&lay, 0, sizeof lay);
    int rc = vhdx_io_size(h->view, &lay.file_size);
    if (rc != 0)
        return vhdx_fail(diag, rc, UINT64_MAX, "", "cannot size the file: %s", vhdx_strerror(rc));
    lay.log_offset = h->hdr.log_offset;
    lay.log_length = h->hdr.log_length;
    h->regions = vhdx_malloc(sizeof *h->regions);
    if (!h->regions)
        return -ENOMEM;
    int copy;
    if ((rc = vhdx_v_region_tables(h->view, h->regions, &lay, &copy, &sink.base)) != 0 ||
        (rc = vhdx_v_metadata(h->view, &lay, &h->geo, &h->fp_flags, &h->disk_id, &sink.base)) != 0) {
        if (diag && diag->code == 0)
            vhdx_fail(diag, rc, UINT64_MAX, "", "%s", vhdx_strerror(rc));
        return rc;
    }
    h->bat_offset = lay.bat_offset;
    h->bat_length = lay.bat_length;
    h->meta_offset = lay.meta_offset;
    h->meta_length = lay.meta_length;
    if ((uint64_t)h->bat_length < h->geo.bat_entries * 8)
        return vhdx_fail(diag, VHDX_E_BAT, h->bat_offset, "region.BAT.Length",
                         "BAT region of %u bytes cannot hold %llu entries", h->bat_length,
                         (unsigned long long)h->geo.bat_entries);
    h->bat_bytes = (size_t)vhdx_round_up(h->geo.bat_entries * 8, VHDX_LOG_SECTOR);
    if (h->bat_bytes > h->bat_length)
        h->bat_bytes = h->bat_length;
    h->bat = vhdx_malloc(h->bat_bytes);
    if (!h->bat)
        return vhdx_fail(diag, -ENOMEM, UINT64_MAX, "BAT", "no memory for a BAT of %zu bytes", h->bat_bytes);
    rc = vhdx_io_read(h->view, h->bat, h->bat_bytes, h->bat_offset);
    if (rc != 0)
        return vhdx_fail(diag, rc, h->bat_offset, "BAT", "reading the BAT failed: %s", vhdx_strerror(rc));
    uint64_t blocks_end = 0;
    rc = vhdx_v_bat(h->bat, &h->geo, &lay, 0, &blocks_end, &sink.base);
    if (rc != 0) {
        if (diag && diag->code == 0)
            vhdx_fail(diag, rc, UINT64_MAX, "BAT", "%s", vhdx_strerror(rc));
        return rc;
    }
    h->file_size = lay.file_size;
    uint64_t end = h->hdr.log_offset + h->hdr.log_length;
    for (uint32_t i = 0; i < h->regions->entry_count; i++) {
        uint64_t e = h->regions->entries[i].file_offset + h->regions->entries[i].length;
        if (e > end)
            end = e;
    }
    if (blocks_end > end)
        end = blocks_end;
    h->alloc_end = vhdx_round_up(end, VHDX_MiB);
    return 0;
}

int vhdx_open(struct bdev *dev, const struct vhdx_options *opt, struct vhdx **out)
{
    struct vhdx_diag scratch;
    struct vhdx_diag *diag = opt && opt->diag ? opt->diag : &scratch;
    memset(diag, 0, sizeof *diag);
    diag->offset = UINT64_MAX;
    *out = NULL;
    if (!dev)
        return vhdx_fail(diag, VHDX_E_INVAL, UINT64_MAX, "", "no device");
    struct vhdx *h = vhdx_calloc(1, sizeof *h);
    if (!h)
        return vhdx_fail(diag, -ENOMEM, UINT64_MAX, "", "out of memory");
    h->dev = h->view = dev;
    h->flags = opt ? opt->flags : 0;
    if (opt && opt->rng)
        h->rng = *opt->rng;
    else
        h->rng.fill = vhdx_rng_os_fill;

    int rc;
    uint8_t id[VHDX_FILE_ID_SIZE];
    struct vhdx_file_id fid;
    rc = vhdx_io_read(dev, id, sizeof id, 0);
    if (rc == VHDX_E_SHORT_IO) {
        rc = vhdx_fail(diag, VHDX_E_FILE_SIGNATURE, 0, "file_id", "file is too short to be a VHDX");
        goto fail;
    }
    if (rc != 0) {
        vhdx_fail(diag, rc, 0, "file_id", "reading the file identifier failed: %s", vhdx_strerror(rc));
        goto fail;
    }
    if (vhdx_file_id_decode(id, &fid) != 0) {
        rc = vhdx_fail(diag, VHDX_E_FILE_SIGNATURE, 0, "file_id.Signature",
                       "the file does not start with \"vhdxfile\": not a VHDX image");
        goto fail;
    }

    struct first_error_sink sink = {{first_error_report}, diag};
    struct vhdx_headers hs;
    rc = vhdx_v_headers(dev, &hs, &sink.base);
    if (rc == 0)
        rc = vhdx_v_header_fields(&hs, &sink.base);
    if (rc != 0) {
        if (diag->code == 0)
            vhdx_fail(diag, rc, VHDX_HEADER1_OFFSET, "header", "reading the headers failed: %s", vhdx_strerror(rc));
        goto fail;
    }
    h->hdr = hs.h[hs.current];
    h->hdr_slot = hs.current;

    uint64_t size;
    rc = vhdx_io_size(dev, &size);
    if (rc != 0) {
        vhdx_fail(diag, rc, UINT64_MAX, "", "cannot size the file: %s", vhdx_strerror(rc));
        goto fail;
    }
    if (!vhdx_guid_is_zero(&h->hdr.log_guid)) {
        rc = prepare_replay(h, size, diag);
        if (rc != 0)
            goto fail;
    }
    rc = load_structures(h, diag);
    if (rc != 0)
        goto fail;

    /* ---- phase 2: writes ---- */
    if (h->replayed && !(h->flags & VHDX_OPEN_RDONLY)) {
        vhdx_io_mark(dev, "replay.begin", h->replayed_head_sequence);
        rc = vhdx_session_begin(h, 0);
        if (rc == 0)
            rc = vhdx_replay_plan_apply(dev, &h->plan);
        if (rc == 0)
            rc = vhdx_header_update(h, HDR_CLEAR_LOG_GUID, NULL);
        if (rc != 0) {
            vhdx_fail(diag, rc, UINT64_MAX, "replay", "replaying the log failed: %s", vhdx_strerror(rc));
            goto fail;
        }
        vhdx_io_mark(dev, "replay.done", h->replayed_head_sequence);
        bdev_destroy(h->view);
        h->view = dev;
        vhdx_replay_plan_free(&h->plan);
        rc = vhdx_io_size(dev, &h->file_size);
        if (rc != 0)
            goto fail;
        h->durable_size = h->file_size;
    }
    rc = vhdx_log_writer_init(h, opt ? opt->apply_every : 0);
    if (rc != 0) {
        vhdx_fail(diag, rc, UINT64_MAX, "", "out of memory");
        goto fail;
    }
    *out = h;
    return 0;
fail:
    handle_free(h);
    return rc;
}

/* ---- close, info ------------------------------------------------------------ */
int vhdx_close(struct vhdx *h)
{
    if (!h)
        return 0;
    int rc = h->poison;
    if (rc == 0 && !(h->flags & VHDX_OPEN_RDONLY)) {
        if (h->dirty)
            rc = vhdx_flush(h);
        if (rc == 0)
            rc = vhdx_log_finish(h);
    }
    handle_free(h);
    return rc;
}

void vhdx_abandon(struct vhdx *h)
{
    handle_free(h);
}

const struct vhdx_diag *vhdx_last_diag(const struct vhdx *h)
{
    return &h->diag;
}

int vhdx_get_info(struct vhdx *h, struct vhdx_info *o)
{
    memset(o, 0, sizeof *o);
    o->geo = h->geo;
    o->header = h->hdr;
    o->header_slot = h->hdr_slot;
    o->virtual_disk_id = h->disk_id;
    o->file_parameter_flags = h->fp_flags;
    o->bat_offset = h->bat_offset;
    o->bat_length = h->bat_length;
    o->metadata_offset = h->meta_offset;
    o->metadata_length = h->meta_length;
    o->file_size = h->file_size;
    for (uint64_t b = 0; b < h->geo.data_blocks; b++) {
        unsigned st = vhdx_bat_state(vhdx_bat_get(h, vhdx_bat_index(&h->geo, b)));
        if (st == VHDX_BAT_FULLY_PRESENT)
            o->blocks_allocated++;
        else if (st != VHDX_BAT_NOT_PRESENT)
            o->blocks_zero++;
    }
    o->read_only = (h->flags & VHDX_OPEN_RDONLY) != 0;
    o->replayed = h->replayed;
    o->replayed_entries = h->replayed_entries;
    o->replayed_head_sequence = h->replayed_head_sequence;
    o->log_entries_written = h->log.entries_written;
    o->log_applies = h->log.applies;
    o->poisoned = h->poison;
    return 0;
}
