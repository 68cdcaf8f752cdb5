/*
 * vhdxtool - command-line front end of libvhdx.
 *
 *   vhdxtool create IMG SIZE [--block-size N] [--log-size N]
 *                   [--logical-sector 512|4096] [--physical-sector 512|4096]
 *   vhdxtool info IMG [--json]
 *   vhdxtool layout IMG [--bat-at VOFF]        (JSON)
 *   vhdxtool check IMG [--repair] [--strict] [--json]
 *   vhdxtool replay IMG
 *   vhdxtool dump-log IMG [--json] [--guid GUID] [--descriptors [--value-at OFF]]
 *   vhdxtool read IMG OFFSET LENGTH OUT        (OUT may be '-')
 *   vhdxtool write IMG OFFSET IN               (IN may be '-')
 *   vhdxtool export IMG RAW                    (RAW may be '-')
 *   vhdxtool import RAW IMG [create options]
 * Global options (anywhere): --seed N (deterministic GUIDs), --apply-every N.
 *
 * Exit status: 0 success; 1 the image is invalid or refused, or check found
 * errors; 2 usage or I/O error.  Messages go to stderr and name what is wrong
 * and where.  Commands that only look (info, check, dump-log, read, export)
 * open the image read-only and replay a pending log in memory; layout reads
 * the structures without opening; a refused image is never modified.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vhdx/check.h"
#include "vhdx/crc32c.h"
#include "vhdx/log.h"
#include "vhdx/vhdx.h"

#include "toolbase.h" /* tool_die_usage, tool_json_str: shared with the harness tools */

enum { EXIT_OK = 0, EXIT_INVALID = 1, EXIT_USAGE = 2 };

static const char *prog = "vhdxtool";

static const char usage_text[] =
    "usage: vhdxtool COMMAND [ARGS] [OPTIONS]\n"
    "\n"
    "commands:\n"
    "  create IMG SIZE [--block-size N] [--log-size N]\n"
    "                  [--logical-sector 512|4096] [--physical-sector 512|4096]\n"
    "                          create an empty dynamic VHDX (defaults: 32M blocks,\n"
    "                          1M log, 512-byte logical, 4096-byte physical sectors)\n"
    "  info IMG [--json]       geometry, headers, log state (pending logs are\n"
    "                          replayed in memory, the file is not touched); with\n"
    "                          --json an image the engine refuses still gets what its\n"
    "                          structures say as far as they decode, and the error\n"
    "  layout IMG [--bat-at VOFF]\n"
    "                          the structures as JSON without opening the image (file\n"
    "                          identifier, both headers and the current one, both region\n"
    "                          tables, BAT and metadata regions); --bat-at adds the BAT\n"
    "                          entry that maps virtual offset VOFF\n"
    "  check IMG [--repair] [--strict] [--json]\n"
    "                          consistency check; --repair fixes what is safe to fix\n"
    "                          (LogGuid without a sequence, pending replay, damaged\n"
    "                          header or region table copy) and says what it did;\n"
    "                          --strict also fails on warnings\n"
    "  replay IMG              open read-write (replaying a pending log) and close\n"
    "  dump-log IMG [--json] [--guid GUID] [--descriptors [--value-at OFF]]\n"
    "                          every entry in the log ring: position, sequence, tail,\n"
    "                          descriptors, valid or why not, and the active sequence;\n"
    "                          --descriptors lists each valid entry's updates (data or\n"
    "                          zero, target file offset, length); --value-at OFF adds\n"
    "                          the 8 bytes each update writes at file offset OFF (a BAT\n"
    "                          entry: what each entry would map a block to)\n"
    "  read IMG OFFSET LENGTH OUT   virtual-disk bytes to OUT ('-' = stdout)\n"
    "  write IMG OFFSET IN     bytes of IN ('-' = stdin) into the virtual disk\n"
    "  export IMG RAW          whole virtual disk to a raw file ('-' = stdout)\n"
    "  import RAW IMG [create options]\n"
    "                          raw file into IMG (created with RAW's size if missing)\n"
    "\n"
    "sizes and offsets take K, M, G, T suffixes (powers of 1024).\n"
    "global options: --seed N   deterministic GUIDs (tests and the harness)\n"
    "                --apply-every N   apply the log after every N entries (default 1)\n"
    "exit status: 0 success; 1 image invalid, refused, or check found errors;\n"
    "             2 usage or I/O error.\n";

/* Maps an engine error to the exit status. */
static int exit_for(int rc)
{
    if (rc == 0)
        return EXIT_OK;
    if (rc == VHDX_E_INVAL || rc == VHDX_E_RANGE)
        return EXIT_USAGE;
    return vhdx_is_format_error(rc) ? EXIT_INVALID : EXIT_USAGE;
}

static int report_error(const char *what, const char *path, int rc, const struct vhdx_diag *d)
{
    if (d && d->code != 0 && d->message[0]) {
        fprintf(stderr, "%s: %s: %s: %s\n", prog, path, what, d->message);
        if (d->field[0] || d->offset != UINT64_MAX) {
            fprintf(stderr, "%s:   [%s]", prog, vhdx_errname(rc));
            if (d->field[0])
                fprintf(stderr, " field %s", d->field);
            if (d->offset != UINT64_MAX)
                fprintf(stderr, " at file offset %" PRIu64 " (0x%" PRIx64 ")", d->offset, d->offset);
            fprintf(stderr, "\n");
        }
    } else {
        fprintf(stderr, "%s: %s: %s: %s\n", prog, path, what, vhdx_strerror(rc));
    }
    return exit_for(rc);
}

/* ---- argument parsing ----------------------------------------------------- */
static int parse_u64(const char *s, uint64_t *out, int allow_suffix)
{
    if (!s || !*s || *s == '-')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s)
        return -1;
    uint64_t mul = 1;
    if (allow_suffix && *end) {
        switch (*end) {
        case 'k': case 'K': mul = 1ull << 10; break;
        case 'm': case 'M': mul = 1ull << 20; break;
        case 'g': case 'G': mul = 1ull << 30; break;
        case 't': case 'T': mul = 1ull << 40; break;
        default: return -1;
        }
        end++;
        if (!strcmp(end, "iB") || !strcmp(end, "B"))
            end += strlen(end);
    }
    if (*end)
        return -1;
    if (v > UINT64_MAX / mul)
        return -1;
    *out = v * mul;
    return 0;
}

struct opts {
    const char *pos[4];  /* positional arguments */
    int npos;
    int json, repair, strict, descriptors;
    uint64_t block_size, log_size, logical, physical;
    int have_seed;
    uint64_t seed;
    uint64_t apply_every;
    const char *guid;
    int have_value_at;   /* dump-log --value-at OFF */
    uint64_t value_at;
    int have_bat_at;     /* layout --bat-at VOFF */
    uint64_t bat_at;
};

static uint64_t need_value(int argc, char **argv, int *i, const char *name, int suffix)
{
    if (*i + 1 >= argc)
        tool_die_usage("%s needs a value", name);
    uint64_t v;
    if (parse_u64(argv[*i + 1], &v, suffix) != 0)
        tool_die_usage("%s: '%s' is not a valid number", name, argv[*i + 1]);
    (*i)++;
    return v;
}

/* Is name one of the space-separated words of list? */
static int has_word(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; (p = strstr(p, name)) != NULL; p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return 1;
    return 0;
}

static void parse_opts(int argc, char **argv, struct opts *o, int maxpos, const char *allowed)
{
    memset(o, 0, sizeof *o);
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] == '-' && a[1] == '-') {
            const char *name = a + 2;
            int ok = *name && (has_word(allowed, name) || !strcmp(name, "seed") || !strcmp(name, "apply-every"));
            if (!ok)
                tool_die_usage("%s: unknown option '%s'", argv[1], a);
            if (!strcmp(name, "json"))
                o->json = 1;
            else if (!strcmp(name, "descriptors"))
                o->descriptors = 1;
            else if (!strcmp(name, "repair"))
                o->repair = 1;
            else if (!strcmp(name, "strict"))
                o->strict = 1;
            else if (!strcmp(name, "block-size"))
                o->block_size = need_value(argc, argv, &i, a, 1);
            else if (!strcmp(name, "log-size"))
                o->log_size = need_value(argc, argv, &i, a, 1);
            else if (!strcmp(name, "logical-sector"))
                o->logical = need_value(argc, argv, &i, a, 0);
            else if (!strcmp(name, "physical-sector"))
                o->physical = need_value(argc, argv, &i, a, 0);
            else if (!strcmp(name, "seed")) {
                o->seed = need_value(argc, argv, &i, a, 0);
                o->have_seed = 1;
            } else if (!strcmp(name, "apply-every"))
                o->apply_every = need_value(argc, argv, &i, a, 0);
            else if (!strcmp(name, "value-at")) {
                o->value_at = need_value(argc, argv, &i, a, 1);
                o->have_value_at = 1;
                if (o->value_at % 8)
                    tool_die_usage("--value-at: %s is not a multiple of 8 (a BAT entry's offset)", argv[i]);
            } else if (!strcmp(name, "bat-at")) {
                o->bat_at = need_value(argc, argv, &i, a, 1);
                o->have_bat_at = 1;
            } else if (!strcmp(name, "guid")) {
                if (i + 1 >= argc)
                    tool_die_usage("--guid needs a value");
                o->guid = argv[++i];
            } else
                tool_die_usage("%s: unknown option '%s'", argv[1], a);
            continue;
        }
        if (o->npos >= maxpos)
            tool_die_usage("%s: unexpected argument '%s'", argv[1], a);
        o->pos[o->npos++] = a;
    }
    if (o->npos < maxpos)
        tool_die_usage("%s: missing arguments", argv[1]);
    if (o->apply_every > UINT32_MAX)
        tool_die_usage("--apply-every is too large");
}

static struct vhdx_rng_seeded seed_state;
static struct vhdx_rng seed_rng = {vhdx_rng_seeded_fill, &seed_state};

static void fill_options(const struct opts *o, struct vhdx_options *vo, struct vhdx_diag *d, unsigned flags)
{
    memset(vo, 0, sizeof *vo);
    memset(d, 0, sizeof *d);
    vo->flags = flags;
    vo->diag = d;
    vo->apply_every = (uint32_t)o->apply_every;
    if (o->have_seed) {
        seed_state.state = o->seed;
        vo->rng = &seed_rng;
    }
}

static int open_dev(const char *path, unsigned flags, struct bdev **dev)
{
    int rc = bdev_posix_open(path, flags, dev);
    if (rc != 0)
        fprintf(stderr, "%s: %s: cannot open: %s\n", prog, path, strerror(-rc));
    return rc;
}

static const char *gstr(const struct vhdx_guid *g, char buf[VHDX_GUID_STRLEN])
{
    vhdx_guid_format(g, buf);
    return buf;
}

static void human_size(uint64_t v, char *buf, size_t n)
{
    const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    double d = (double)v;
    while (d >= 1024 && u < 4) {
        d /= 1024;
        u++;
    }
    snprintf(buf, n, u ? "%.2f %s" : "%.0f %s", d, unit[u]);
}

/* ---- create ---------------------------------------------------------------- */
static int create_image(const char *path, uint64_t size, const struct opts *o)
{
    if (o->block_size > UINT32_MAX || o->log_size > UINT32_MAX)
        tool_die_usage("block or log size too large");
    struct vhdx_create_params p = {size, (uint32_t)o->block_size, (uint32_t)o->log_size, (uint32_t)o->logical,
                                   (uint32_t)o->physical};
    struct vhdx_options vo;
    struct vhdx_diag d;
    fill_options(o, &vo, &d, 0);
    struct bdev *dev;
    if (open_dev(path, BDEV_CREATE | BDEV_TRUNCATE, &dev) != 0)
        return EXIT_USAGE;
    int rc = vhdx_create(dev, &p, &vo);
    bdev_destroy(dev);
    if (rc != 0) {
        if (rc == VHDX_E_INVAL) {
            fprintf(stderr, "%s: create: %s\n", prog, d.message);
            unlink(path);
            return EXIT_USAGE;
        }
        return report_error("create", path, rc, &d);
    }
    return EXIT_OK;
}

static int cmd_create(int argc, char **argv)
{
    struct opts o;
    parse_opts(argc, argv, &o, 2, "block-size log-size logical-sector physical-sector");
    uint64_t size;
    if (parse_u64(o.pos[1], &size, 1) != 0)
        tool_die_usage("create: SIZE '%s' is not a size", o.pos[1]);
    return create_image(o.pos[0], size, &o);
}

/* ---- info ------------------------------------------------------------------ */
static void json_opt_u64(const char *key, int have, uint64_t v)
{
    printf(", \"%s\": ", key);
    if (have)
        printf("%" PRIu64, v);
    else
        printf("null");
}

/* `info --json` of an image the engine refuses: what the structures say
 * as far as they decode (file identifier, both headers, both region
 * tables, the metadata items), and the error -- a damaged image is when
 * one wants to see what could be parsed.  Reads only; every length comes
 * from the format's fixed sizes or is checked against the file. */
static void structures_json(struct bdev *dev, int have_size, uint64_t size, const struct opts *o);

static void info_refused_json(struct bdev *dev, const char *path, int rc, const struct vhdx_diag *d)
{
    uint64_t size = 0;
    int have_size = dev->ops->size(dev, &size) == 0;
    printf("{\"image\": ");
    tool_json_str(stdout, path);
    printf(", \"opened\": false, \"error\": {\"code\": \"%s\", \"message\": ", vhdx_errname(rc));
    tool_json_str(stdout, d->message[0] ? d->message : vhdx_strerror(rc));
    printf(", \"field\": ");
    if (d->field[0])
        tool_json_str(stdout, d->field);
    else
        printf("null");
    json_opt_u64("offset", d->offset != UINT64_MAX, d->offset);
    printf("}");
    json_opt_u64("file_size", have_size, size);
    structures_json(dev, have_size, size, NULL);
    printf("}\n");
}

static const char *bat_state_name(unsigned state)
{
    switch (state) {
    case VHDX_BAT_NOT_PRESENT:
        return "NOT_PRESENT";
    case VHDX_BAT_UNDEFINED:
        return "UNDEFINED";
    case VHDX_BAT_ZERO:
        return "ZERO";
    case VHDX_BAT_UNMAPPED:
        return "UNMAPPED";
    case VHDX_BAT_FULLY_PRESENT:
        return "FULLY_PRESENT";
    case VHDX_BAT_PARTIALLY_PRESENT:
        return "PARTIALLY_PRESENT";
    default:
        return NULL;
    }
}

/* A BAT entry as JSON: its state by name ("state-N" for the reserved
 * values) and FileOffsetMB. */
static void bat_entry_json(uint64_t e)
{
    const char *name = bat_state_name(vhdx_bat_state(e));
    printf("{\"entry\": %" PRIu64 ", \"state\": ", e);
    if (name)
        printf("\"%s\"", name);
    else
        printf("\"state-%u\"", vhdx_bat_state(e));
    printf(", \"offset_mb\": %" PRIu64 "}", vhdx_bat_offset_mb(e));
}

/* The structures as far as they decode: file identifier, both headers and
 * the current one, both region tables, the BAT and metadata regions of the
 * first valid table with the metadata items; with o->have_bat_at also the
 * BAT entry that maps virtual offset o->bat_at ("bat_at", null when the
 * geometry or the entry cannot be read). */
static void structures_json(struct bdev *dev, int have_size, uint64_t size, const struct opts *o)
{
    uint32_t geo_block = 0, geo_lss = 0; /* from the metadata items, for --bat-at */
    uint64_t bat_offset = 0;
    int have_bat = 0;
    static uint8_t buf[VHDX_REGION_TABLE_SIZE];
    char g[VHDX_GUID_STRLEN];
    /* file type identifier */
    struct vhdx_file_id fid;
    int frc = dev->ops->read(dev, buf, VHDX_FILE_ID_SIZE, 0);
    frc = frc ? frc : vhdx_file_id_decode(buf, &fid);
    printf(", \"file_identifier\": {\"valid\": %s, \"creator\": ", frc ? "false" : "true");
    if (frc)
        printf("null");
    else
        tool_json_str(stdout, fid.creator);
    printf("}");
    /* headers: both copies, then the current one by the spec's rule */
    struct vhdx_header h[2];
    int hrc[2];
    printf(", \"headers\": [");
    for (int i = 0; i < 2; i++) {
        uint64_t off = i ? VHDX_HEADER2_OFFSET : VHDX_HEADER1_OFFSET;
        hrc[i] = dev->ops->read(dev, buf, VHDX_HEADER_SIZE, off);
        int io = hrc[i] != 0;
        hrc[i] = hrc[i] ? hrc[i] : vhdx_header_decode(buf, &h[i]);
        printf("%s{\"slot\": %d, \"offset\": %" PRIu64 ", \"valid\": %s, \"error\": ", i ? ", " : "", i + 1, off,
               hrc[i] ? "false" : "true");
        if (hrc[i])
            printf("\"%s\"", vhdx_errname(hrc[i]));
        else
            printf("null");
        if (!io)
            printf(", \"sequence\": %" PRIu64 ", \"log_guid\": \"%s\", \"log_offset\": %" PRIu64
                   ", \"log_length\": %u, \"version\": %u, \"log_version\": %u",
                   h[i].sequence, gstr(&h[i].log_guid, g), h[i].log_offset, h[i].log_length, h[i].version,
                   h[i].log_version);
        printf("}");
    }
    int cur = !hrc[0] && !hrc[1] ? (h[1].sequence > h[0].sequence ? 1 : h[0].sequence > h[1].sequence ? 0 : -1)
              : !hrc[0]          ? 0
              : !hrc[1]          ? 1
                                 : -1;
    printf("], \"current_header\": ");
    if (cur >= 0)
        printf("%d", cur + 1);
    else
        printf("null");
    if (cur >= 0)
        printf(", \"log\": {\"offset\": %" PRIu64 ", \"length\": %u, \"pending\": %s}", h[cur].log_offset,
               h[cur].log_length, vhdx_guid_is_zero(&h[cur].log_guid) ? "false" : "true");
    /* region tables */
    static struct vhdx_region_table rt[2];
    int rrc[2], first_valid = -1;
    printf(", \"region_tables\": [");
    for (int i = 0; i < 2; i++) {
        uint64_t off = i ? VHDX_REGION2_OFFSET : VHDX_REGION1_OFFSET;
        rrc[i] = dev->ops->read(dev, buf, VHDX_REGION_TABLE_SIZE, off);
        rrc[i] = rrc[i] ? rrc[i] : vhdx_region_table_decode(buf, &rt[i]);
        if (!rrc[i] && first_valid < 0)
            first_valid = i;
        printf("%s{\"slot\": %d, \"offset\": %" PRIu64 ", \"valid\": %s, \"error\": ", i ? ", " : "", i + 1, off,
               rrc[i] ? "false" : "true");
        if (rrc[i])
            printf("\"%s\"", vhdx_errname(rrc[i]));
        else
            printf("null");
        if (!rrc[i]) {
            printf(", \"entries\": [");
            for (uint32_t k = 0; k < rt[i].entry_count; k++) {
                const struct vhdx_region_entry *e = &rt[i].entries[k];
                const char *name = vhdx_guid_equal(&e->guid, &VHDX_GUID_REGION_BAT)        ? "bat"
                                   : vhdx_guid_equal(&e->guid, &VHDX_GUID_REGION_METADATA) ? "metadata"
                                                                                          : "unknown";
                printf("%s{\"region\": \"%s\", \"guid\": \"%s\", \"file_offset\": %" PRIu64 ", \"length\": %u, "
                       "\"required\": %s}",
                       k ? ", " : "", name, gstr(&e->guid, g), e->file_offset, e->length,
                       e->required & 1 ? "true" : "false");
            }
            printf("]");
        }
        printf("}");
    }
    printf("]");
    /* the BAT and metadata regions of the first valid table, and the items */
    if (first_valid >= 0) {
        const struct vhdx_region_table *t = &rt[first_valid];
        for (uint32_t k = 0; k < t->entry_count; k++) {
            const struct vhdx_region_entry *e = &t->entries[k];
            int bat = vhdx_guid_equal(&e->guid, &VHDX_GUID_REGION_BAT);
            if (!bat && !vhdx_guid_equal(&e->guid, &VHDX_GUID_REGION_METADATA))
                continue;
            printf(", \"%s\": {\"offset\": %" PRIu64 ", \"length\": %u", bat ? "bat" : "metadata", e->file_offset,
                   e->length);
            if (bat) {
                bat_offset = e->file_offset;
                have_bat = 1;
            }
            if (!bat) {
                static struct vhdx_metadata_table mt;
                int mrc = e->length < VHDX_METADATA_TABLE_SIZE || (have_size && e->file_offset + e->length > size)
                              ? VHDX_E_METADATA
                              : dev->ops->read(dev, buf, VHDX_METADATA_TABLE_SIZE, e->file_offset);
                mrc = mrc ? mrc : vhdx_metadata_table_decode(buf, VHDX_METADATA_TABLE_SIZE, &mt);
                printf(", \"valid\": %s", mrc ? "false" : "true");
                if (mrc)
                    printf(", \"error\": \"%s\"", vhdx_errname(mrc));
                for (uint16_t m = 0; !mrc && m < mt.entry_count; m++) {
                    const struct vhdx_metadata_entry *me = &mt.entries[m];
                    uint8_t item[8] = {0};
                    uint32_t want = vhdx_guid_equal(&me->item_id, &VHDX_GUID_ITEM_FILE_PARAMETERS)      ? 8
                                    : vhdx_guid_equal(&me->item_id, &VHDX_GUID_ITEM_VIRTUAL_DISK_SIZE) ? 8
                                    : vhdx_guid_equal(&me->item_id, &VHDX_GUID_ITEM_LOGICAL_SECTOR_SIZE) ||
                                              vhdx_guid_equal(&me->item_id, &VHDX_GUID_ITEM_PHYSICAL_SECTOR_SIZE)
                                        ? 4
                                        : 0;
                    if (!want || me->length < want || me->offset > e->length - want ||
                        dev->ops->read(dev, item, want, e->file_offset + me->offset) != 0)
                        continue;
                    if (vhdx_guid_equal(&me->item_id, &VHDX_GUID_ITEM_FILE_PARAMETERS)) {
                        geo_block = vhdx_get32(item);
                        printf(", \"block_size\": %u", geo_block);
                    } else if (vhdx_guid_equal(&me->item_id, &VHDX_GUID_ITEM_VIRTUAL_DISK_SIZE))
                        printf(", \"virtual_size\": %" PRIu64, vhdx_get64(item));
                    else if (vhdx_guid_equal(&me->item_id, &VHDX_GUID_ITEM_LOGICAL_SECTOR_SIZE)) {
                        geo_lss = vhdx_get32(item);
                        printf(", \"logical_sector\": %u", geo_lss);
                    }
                    else
                        printf(", \"physical_sector\": %u", vhdx_get32(item));
                }
            }
            printf("}");
        }
    }
    if (!o || !o->have_bat_at)
        return;
    /* The payload block's BAT entry: chunk ratio (2^23 * logical sector) /
     * block size, one sector-bitmap entry after every chunk ratio of them. */
    uint64_t ratio = geo_block ? ((uint64_t)1 << 23) * geo_lss / geo_block : 0;
    printf(", \"bat_at\": ");
    if (!have_bat || !ratio) {
        printf("null");
        return;
    }
    uint64_t block = o->bat_at / geo_block;
    uint64_t index = block + block / ratio;
    uint64_t at = bat_offset + 8 * index;
    uint8_t e[8];
    if (index > (UINT64_MAX - bat_offset) / 8 || (have_size && at + 8 > size) || dev->ops->read(dev, e, 8, at) != 0) {
        printf("null");
        return;
    }
    printf("{\"virtual_offset\": %" PRIu64 ", \"block\": %" PRIu64 ", \"index\": %" PRIu64
           ", \"file_offset\": %" PRIu64 ", \"value\": ",
           o->bat_at, block, index, at);
    bat_entry_json(vhdx_get64(e));
    printf("}");
}

/* `layout IMG [--bat-at VOFF]`: the structures of any image as JSON, without
 * opening it (no replay, nothing validated beyond each structure's own
 * decoder): what `info --json` says of a refused image, for images the
 * engine opens too.  The driver asks this instead of decoding headers,
 * region tables and BAT entries itself. */
static int cmd_layout(int argc, char **argv)
{
    struct opts o;
    parse_opts(argc, argv, &o, 1, "bat-at");
    struct bdev *dev;
    if (open_dev(o.pos[0], BDEV_RDONLY, &dev) != 0)
        return EXIT_USAGE;
    uint64_t size = 0;
    int have_size = dev->ops->size(dev, &size) == 0;
    printf("{\"image\": ");
    tool_json_str(stdout, o.pos[0]);
    json_opt_u64("file_size", have_size, size);
    structures_json(dev, have_size, size, &o);
    printf("}\n");
    bdev_destroy(dev);
    return EXIT_OK;
}

static int cmd_info(int argc, char **argv)
{
    struct opts o;
    parse_opts(argc, argv, &o, 1, "json");
    struct bdev *dev;
    if (open_dev(o.pos[0], BDEV_RDONLY, &dev) != 0)
        return EXIT_USAGE;
    struct vhdx_options vo;
    struct vhdx_diag d;
    fill_options(&o, &vo, &d, VHDX_OPEN_RDONLY);
    struct vhdx *h;
    int rc = vhdx_open(dev, &vo, &h);
    if (rc != 0) {
        if (o.json && vhdx_is_format_error(rc))
            info_refused_json(dev, o.pos[0], rc, &d);
        bdev_destroy(dev);
        return report_error("open", o.pos[0], rc, &d);
    }
    struct vhdx_info in;
    vhdx_get_info(h, &in);
    char g1[VHDX_GUID_STRLEN], g2[VHDX_GUID_STRLEN], g3[VHDX_GUID_STRLEN], g4[VHDX_GUID_STRLEN];
    if (o.json) {
        printf("{\"image\": ");
        tool_json_str(stdout, o.pos[0]);
        printf(", \"opened\": true, \"virtual_size\": %" PRIu64 ", \"block_size\": %u, \"logical_sector\": %u, "
               "\"physical_sector\": %u, \"chunk_ratio\": %" PRIu64 ", \"data_blocks\": %" PRIu64
               ", \"bat_entries\": %" PRIu64 ", \"blocks_allocated\": %" PRIu64 ", \"blocks_zero\": %" PRIu64
               ", \"file_size\": %" PRIu64 ", \"leave_block_allocated\": %s"
               ", \"header\": {\"current\": %d, \"sequence\": %" PRIu64
               ", \"file_write_guid\": \"%s\", \"data_write_guid\": \"%s\", \"log_guid\": \"%s\", \"version\": %u"
               ", \"log_version\": %u}, \"log\": {\"offset\": %" PRIu64 ", \"length\": %u, \"pending\": %s"
               ", \"replayed_in_memory_entries\": %u}, \"bat\": {\"offset\": %" PRIu64 ", \"length\": %u}"
               ", \"metadata\": {\"offset\": %" PRIu64 ", \"length\": %u}, \"virtual_disk_id\": \"%s\"}\n",
               in.geo.virtual_size, in.geo.block_size, in.geo.logical_sector, in.geo.physical_sector,
               in.geo.chunk_ratio, in.geo.data_blocks, in.geo.bat_entries, in.blocks_allocated, in.blocks_zero,
               in.file_size, (in.file_parameter_flags & VHDX_FP_LEAVE_BLOCK_ALLOCATED) ? "true" : "false",
               in.header_slot + 1, in.header.sequence, gstr(&in.header.file_write_guid, g1),
               gstr(&in.header.data_write_guid, g2), gstr(&in.header.log_guid, g3), in.header.version,
               in.header.log_version, in.header.log_offset, in.header.log_length, in.replayed ? "true" : "false",
               in.replayed_entries, in.bat_offset, in.bat_length, in.metadata_offset, in.metadata_length,
               gstr(&in.virtual_disk_id, g4));
    } else {
        char s1[32], s2[32];
        human_size(in.geo.virtual_size, s1, sizeof s1);
        human_size(in.file_size, s2, sizeof s2);
        printf("image:            %s\n", o.pos[0]);
        printf("virtual size:     %" PRIu64 " bytes (%s)\n", in.geo.virtual_size, s1);
        printf("file size:        %" PRIu64 " bytes (%s)\n", in.file_size, s2);
        printf("block size:       %u bytes\n", in.geo.block_size);
        printf("sectors:          logical %u, physical %u\n", in.geo.logical_sector, in.geo.physical_sector);
        printf("blocks:           %" PRIu64 " allocated, %" PRIu64 " zero, %" PRIu64 " total (chunk ratio %" PRIu64
               ", %" PRIu64 " BAT entries)\n",
               in.blocks_allocated, in.blocks_zero, in.geo.data_blocks, in.geo.chunk_ratio, in.geo.bat_entries);
        printf("header:           %d is current, sequence %" PRIu64 ", version %u, log version %u\n",
               in.header_slot + 1, in.header.sequence, in.header.version, in.header.log_version);
        printf("FileWriteGuid:    {%s}\n", gstr(&in.header.file_write_guid, g1));
        printf("DataWriteGuid:    {%s}\n", gstr(&in.header.data_write_guid, g2));
        printf("virtual disk id:  {%s}\n", gstr(&in.virtual_disk_id, g4));
        printf("log:              %u bytes at %" PRIu64 "\n", in.header.log_length, in.header.log_offset);
        if (in.replayed)
            printf("log state:        PENDING replay, LogGuid {%s}: %u entries up to sequence %" PRIu64
                   " (shown as replayed in memory; run 'vhdxtool replay' to apply)\n",
                   gstr(&in.header.log_guid, g3), in.replayed_entries, in.replayed_head_sequence);
        else
            printf("log state:        clean (LogGuid zero)\n");
        printf("BAT region:       %u bytes at %" PRIu64 "\n", in.bat_length, in.bat_offset);
        printf("metadata region:  %u bytes at %" PRIu64 "\n", in.metadata_length, in.metadata_offset);
    }
    vhdx_close(h);
    bdev_destroy(dev);
    return EXIT_OK;
}

/* ---- check ----------------------------------------------------------------- */
static int cmd_check(int argc, char **argv)
{
    struct opts o;
    parse_opts(argc, argv, &o, 1, "repair strict json");
    struct bdev *dev;
    if (open_dev(o.pos[0], o.repair ? 0 : BDEV_RDONLY, &dev) != 0)
        return EXIT_USAGE;
    struct vhdx_check_report r;
    int rc = vhdx_check(dev, o.repair ? VHDX_CHECK_REPAIR : 0, &r);
    bdev_destroy(dev);
    if (rc != 0) {
        fprintf(stderr, "%s: %s: check could not run: %s\n", prog, o.pos[0], vhdx_strerror(rc));
        return EXIT_USAGE;
    }
    int failed = r.errors > 0 || (o.strict && r.warnings > 0);
    if (o.json) {
        printf("{\"image\": ");
        tool_json_str(stdout, o.pos[0]);
        printf(", \"ok\": %s, \"errors\": %zu, \"warnings\": %zu, \"repaired\": %zu, \"log_pending\": %s, "
               "\"log_entries\": %u, \"problems\": [",
               failed ? "false" : "true", r.errors, r.warnings, r.repaired, r.log_pending ? "true" : "false",
               r.log_entries);
        for (size_t i = 0; i < r.count; i++) {
            const struct vhdx_problem *p = &r.problems[i];
            printf("%s{\"severity\": \"%s\", \"code\": \"%s\", \"field\": ", i ? ", " : "",
                   vhdx_severity_name(p->severity), vhdx_errname(p->code));
            tool_json_str(stdout, p->field);
            if (p->offset != UINT64_MAX)
                printf(", \"offset\": %" PRIu64, p->offset);
            printf(", \"repair\": \"%s\", \"message\": ", vhdx_repair_name(p->repair));
            tool_json_str(stdout, p->message);
            printf("}");
        }
        printf("]}\n");
    } else {
        for (size_t i = 0; i < r.count; i++) {
            const struct vhdx_problem *p = &r.problems[i];
            printf("%-8s %s", vhdx_severity_name(p->severity), p->field);
            if (p->offset != UINT64_MAX)
                printf(" @%" PRIu64, p->offset);
            printf(": %s", p->message);
            if (p->code)
                printf(" [%s]", vhdx_errname(p->code));
            if (p->repair != VHDX_REPAIR_NONE && p->severity != VHDX_SEV_REPAIRED && !o.repair)
                printf(" (repairable: %s)", vhdx_repair_name(p->repair));
            printf("\n");
        }
        printf("%s: %s: %zu errors, %zu warnings%s%s\n", o.pos[0], failed ? "FAILED" : "ok", r.errors, r.warnings,
               r.repaired ? ", repairs made: " : "", r.repaired ? "see above" : "");
    }
    vhdx_check_report_free(&r);
    return failed ? EXIT_INVALID : EXIT_OK;
}

/* ---- replay ---------------------------------------------------------------- */
static int cmd_replay(int argc, char **argv)
{
    struct opts o;
    parse_opts(argc, argv, &o, 1, "");
    struct bdev *dev;
    if (open_dev(o.pos[0], 0, &dev) != 0)
        return EXIT_USAGE;
    struct vhdx_options vo;
    struct vhdx_diag d;
    fill_options(&o, &vo, &d, 0);
    struct vhdx *h;
    int rc = vhdx_open(dev, &vo, &h);
    if (rc != 0) {
        bdev_destroy(dev);
        return report_error("open", o.pos[0], rc, &d);
    }
    struct vhdx_info in;
    vhdx_get_info(h, &in);
    rc = vhdx_close(h);
    bdev_destroy(dev);
    if (rc != 0)
        return report_error("close", o.pos[0], rc, NULL);
    if (in.replayed)
        printf("%s: replayed %u log entries (head sequence %" PRIu64 ")\n", o.pos[0], in.replayed_entries,
               in.replayed_head_sequence);
    else
        printf("%s: no log to replay\n", o.pos[0]);
    return EXIT_OK;
}

/* ---- dump-log -------------------------------------------------------------- */
static int read_current_header(struct bdev *dev, struct vhdx_header *out, int *slot)
{
    uint8_t b[2][VHDX_HEADER_SIZE];
    struct vhdx_header h[2];
    int rc[2];
    for (int i = 0; i < 2; i++) {
        int r = dev->ops->read(dev, b[i], VHDX_HEADER_SIZE, i ? VHDX_HEADER2_OFFSET : VHDX_HEADER1_OFFSET);
        rc[i] = r ? r : vhdx_header_decode(b[i], &h[i]);
    }
    if (rc[0] && rc[1])
        return VHDX_E_NO_HEADER;
    *slot = rc[0] ? 1 : rc[1] ? 0 : (h[1].sequence > h[0].sequence);
    *out = h[*slot];
    return 0;
}

/* One LogGuid's view of the ring: its entries' validity and its sequence. */
struct guid_view {
    struct vhdx_guid guid;
    struct vhdx_log_sequence seq;
    struct vhdx_log_scan_item *items;
    size_t n;
    int rc; /* 0 or VHDX_E_LOG_AMBIGUOUS */
};

#define DUMP_MAX_GUIDS 16

/* The item for the same position in the view of the item's own LogGuid. */
static const struct vhdx_log_scan_item *own_view(const struct guid_view *v, size_t nv,
                                                 const struct vhdx_log_scan_item *it)
{
    for (size_t k = 1; k < nv; k++) {
        if (!vhdx_guid_equal(&v[k].guid, &it->hdr.log_guid))
            continue;
        for (size_t j = 0; j < v[k].n; j++)
            if (v[k].items[j].position == it->position)
                return &v[k].items[j];
    }
    return it;
}

static void print_sequence(const char *label, const struct guid_view *v)
{
    char g[VHDX_GUID_STRLEN];
    printf("%s {%s}: ", label, gstr(&v->guid, g));
    if (v->rc == VHDX_E_LOG_AMBIGUOUS)
        printf("AMBIGUOUS - two valid sequences end at the same sequence number\n");
    else if (v->seq.found)
        printf("%u entries, tail 0x%08x (seq %" PRIu64 ") .. head 0x%08x (seq %" PRIu64 "), FlushedFileOffset %" PRIu64
               ", LastFileOffset %" PRIu64 "\n",
               v->seq.count, v->seq.positions[0], v->seq.tail_sequence, v->seq.positions[v->seq.count - 1],
               v->seq.head_sequence, v->seq.flushed_file_offset, v->seq.last_file_offset);
    else
        printf("no valid sequence\n");
}

static void json_sequence(const struct guid_view *v)
{
    char g[VHDX_GUID_STRLEN];
    printf("{\"log_guid\": \"%s\", \"ambiguous\": %s, \"found\": %s", gstr(&v->guid, g),
           v->rc == VHDX_E_LOG_AMBIGUOUS ? "true" : "false", v->seq.found ? "true" : "false");
    if (v->seq.found)
        printf(", \"tail\": %u, \"head\": %u, \"entries\": %u, \"tail_sequence\": %" PRIu64
               ", \"head_sequence\": %" PRIu64 ", \"flushed_file_offset\": %" PRIu64 ", \"last_file_offset\": %" PRIu64,
               v->seq.positions[0], v->seq.positions[v->seq.count - 1], v->seq.count, v->seq.tail_sequence,
               v->seq.head_sequence, v->seq.flushed_file_offset, v->seq.last_file_offset);
    printf("}");
}

/* The descriptors of a valid entry at ring position pos: kind, target
 * file offset and length, as text lines or a JSON array.  The entry was
 * validated by the search (length within the ring, descriptors inside it). */
/* The 8 bytes a data update writes at file offset at (little-endian), from
 * the entry's data sector k; 0 and *ok = 0 when the sector does not join. */
static uint64_t update_value(const uint8_t *entry, uint32_t len, const struct vhdx_log_header *h,
                             const struct vhdx_log_desc *d, uint32_t k, uint64_t at, int *ok)
{
    uint64_t off = vhdx_log_desc_sectors(h->descriptor_count) * VHDX_LOG_SECTOR + (uint64_t)k * VHDX_LOG_SECTOR;
    uint8_t update[VHDX_LOG_SECTOR];
    *ok = off + VHDX_LOG_SECTOR <= len && vhdx_log_data_join(d, entry + off, h->sequence, update) == 0;
    return *ok ? vhdx_get64(update + (at - d->file_offset)) : 0;
}

static void print_descriptors(struct bdev *dev, uint64_t log_offset, uint32_t log_length, uint32_t pos,
                              const struct vhdx_log_header *h, int json, const struct opts *o)
{
    uint32_t len = h->entry_length;
    uint8_t *buf = len <= log_length ? malloc(len) : NULL;
    int ok = buf != NULL;
    for (uint32_t done = 0; ok && done < len;) {
        uint32_t at = (pos + done) % log_length;
        uint32_t n = len - done < log_length - at ? len - done : log_length - at;
        ok = dev->ops->read(dev, buf + done, n, log_offset + at) == 0;
        done += n;
    }
    if (json)
        printf(", \"updates\": [");
    uint32_t k = 0; /* data descriptors so far: data sector k belongs to the next */
    for (uint32_t i = 0; ok && i < h->descriptor_count; i++) {
        uint64_t off = vhdx_log_desc_offset(i);
        struct vhdx_log_desc d;
        if (off + VHDX_LOG_DESC_SIZE > len || vhdx_log_desc_decode(buf + off, &d) != 0)
            break;
        uint64_t n = d.kind == VHDX_DESC_ZERO ? d.zero_length : VHDX_LOG_SECTOR;
        /* --value-at: what this update writes at that offset */
        int covers = o->have_value_at && d.file_offset <= o->value_at && o->value_at + 8 <= d.file_offset + n;
        int vok = 1;
        uint64_t val = !covers ? 0 : d.kind == VHDX_DESC_ZERO ? 0 : update_value(buf, len, h, &d, k, o->value_at, &vok);
        if (json) {
            printf("%s{\"kind\": \"%s\", \"file_offset\": %" PRIu64 ", \"length\": %" PRIu64, i ? ", " : "",
                   d.kind == VHDX_DESC_ZERO ? "zero" : "data", d.file_offset, n);
            if (covers && vok) {
                printf(", \"value_at\": %" PRIu64 ", \"value_at_bat\": ", val);
                bat_entry_json(val);
            }
            printf("}");
        } else {
            printf("             %-4s file offset 0x%010" PRIx64 " length %" PRIu64, d.kind == VHDX_DESC_ZERO ? "zero" : "data",
                   d.file_offset, n);
            if (covers)
                printf(vok ? "; at 0x%" PRIx64 ": 0x%016" PRIx64 : "; at 0x%" PRIx64 ": (data sector unreadable)",
                       o->value_at, val);
            printf("\n");
        }
        k += d.kind != VHDX_DESC_ZERO;
    }
    if (json)
        printf("]");
    else if (!ok)
        printf("             (descriptors unreadable)\n");
    free(buf);
}

static int cmd_dump_log(int argc, char **argv)
{
    struct opts o;
    parse_opts(argc, argv, &o, 1, "json guid descriptors value-at");
    struct bdev *dev;
    if (open_dev(o.pos[0], BDEV_RDONLY, &dev) != 0)
        return EXIT_USAGE;
    struct vhdx_header hd;
    int slot;
    int rc = read_current_header(dev, &hd, &slot);
    if (rc != 0) {
        bdev_destroy(dev);
        fprintf(stderr, "%s: %s: no valid header: cannot locate the log\n", prog, o.pos[0]);
        return EXIT_INVALID;
    }
    uint64_t size = 0;
    dev->ops->size(dev, &size);
    if (hd.log_length == 0 || hd.log_length % VHDX_MiB || hd.log_offset < VHDX_MiB ||
        hd.log_offset + hd.log_length > size || hd.log_length > VHDX_LOG_MAX_LENGTH) {
        bdev_destroy(dev);
        fprintf(stderr, "%s: %s: header %d describes an unreadable log (%u bytes at %" PRIu64 ", file %" PRIu64
                        " bytes)\n",
                prog, o.pos[0], slot + 1, hd.log_length, hd.log_offset, size);
        return EXIT_INVALID;
    }
    /* The main view: the header's LogGuid (or --guid). */
    struct guid_view views[1 + DUMP_MAX_GUIDS];
    size_t nviews = 1;
    memset(views, 0, sizeof views);
    views[0].guid = hd.log_guid;
    if (o.guid && vhdx_guid_parse(o.guid, &views[0].guid) != 0)
        tool_die_usage("--guid: '%s' is not a GUID", o.guid);
    struct vhdx_log_ring ring = {dev, hd.log_offset, hd.log_length, views[0].guid};
    rc = vhdx_log_search(&ring, &views[0].seq, &views[0].items, &views[0].n);
    if (rc != 0 && rc != VHDX_E_LOG_AMBIGUOUS) {
        bdev_destroy(dev);
        fprintf(stderr, "%s: %s: log search failed: %s\n", prog, o.pos[0], vhdx_strerror(rc));
        return exit_for(rc);
    }
    views[0].rc = rc;
    /* With no log pending, judge every entry against its own session's
     * LogGuid: that shows what each earlier session left in the ring. */
    const int per_session = !o.guid && vhdx_guid_is_zero(&hd.log_guid);
    for (size_t i = 0; per_session && i < views[0].n; i++) {
        const struct vhdx_guid *g = &views[0].items[i].hdr.log_guid;
        size_t k = 1;
        while (k < nviews && !vhdx_guid_equal(&views[k].guid, g))
            k++;
        if (k < nviews || nviews == 1 + DUMP_MAX_GUIDS || vhdx_guid_is_zero(g))
            continue;
        views[k].guid = *g;
        ring.log_guid = *g;
        views[k].rc = vhdx_log_search(&ring, &views[k].seq, &views[k].items, &views[k].n);
        if (views[k].rc != 0 && views[k].rc != VHDX_E_LOG_AMBIGUOUS)
            break;
        nviews++;
    }
    /* Status of main item i: against its own session's GUID in per-session mode. */
#define ITEM_VIEW(i) (per_session ? own_view(views, nviews, &views[0].items[i]) : &views[0].items[i])
    char hg[VHDX_GUID_STRLEN];
    gstr(&hd.log_guid, hg);
    if (o.json) {
        printf("{\"image\": ");
        tool_json_str(stdout, o.pos[0]);
        printf(", \"log_offset\": %" PRIu64 ", \"log_length\": %u, \"header_log_guid\": \"%s\", \"pending\": %s"
               ", \"judged_by\": \"%s\", \"entries\": [",
               hd.log_offset, hd.log_length, hg, vhdx_guid_is_zero(&hd.log_guid) ? "false" : "true",
               o.guid ? "option" : per_session ? "own-session" : "header");
        for (size_t i = 0; i < views[0].n; i++) {
            const struct vhdx_log_scan_item *it = ITEM_VIEW(i);
            char eg[VHDX_GUID_STRLEN];
            printf("%s{\"position\": %u, \"sequence\": %" PRIu64 ", \"tail\": %u, \"length\": %u, "
                   "\"descriptors\": %u, \"data\": %u, \"zero\": %u, \"flushed_file_offset\": %" PRIu64
                   ", \"last_file_offset\": %" PRIu64 ", \"log_guid\": \"%s\", \"valid\": %s, \"status\": \"%s\", "
                   "\"active\": %s",
                   i ? ", " : "", it->position, it->hdr.sequence, it->hdr.tail, it->hdr.entry_length,
                   it->hdr.descriptor_count, it->data_descriptors, it->zero_descriptors, it->hdr.flushed_file_offset,
                   it->hdr.last_file_offset, gstr(&it->hdr.log_guid, eg), it->status == 0 ? "true" : "false",
                   vhdx_errname(it->status), it->in_active ? "true" : "false");
            if (o.descriptors && it->status == 0)
                print_descriptors(dev, hd.log_offset, hd.log_length, it->position, &it->hdr, 1, &o);
            printf("}");
        }
        printf("], \"active\": ");
        if (!per_session)
            json_sequence(&views[0]);
        else
            printf("null");
        printf(", \"sessions\": [");
        for (size_t k = 1; k < nviews; k++) {
            printf("%s", k > 1 ? ", " : "");
            json_sequence(&views[k]);
        }
        printf("]}\n");
    } else {
        printf("log: %u bytes at %" PRIu64 ", header LogGuid {%s}%s\n", hd.log_length, hd.log_offset, hg,
               vhdx_guid_is_zero(&hd.log_guid) ? " (no log pending)" : " (replay pending)");
        if (per_session)
            printf("no log pending: each entry is judged against its own session's LogGuid\n");
        printf("%-11s %-10s %-10s %-8s %-5s %-5s %-5s %-7s %-7s %-8s %s\n", " position", "sequence", "tail", "length",
               "desc", "data", "zero", "flushed", "last", "guid", "status");
        for (size_t i = 0; i < views[0].n; i++) {
            const struct vhdx_log_scan_item *it = ITEM_VIEW(i);
            char eg[VHDX_GUID_STRLEN];
            gstr(&it->hdr.log_guid, eg);
            eg[8] = '\0';
            printf("%c0x%08x  %-10" PRIu64 " 0x%08x %-8u %-5u ", it->in_active ? '*' : ' ', it->position,
                   it->hdr.sequence, it->hdr.tail, it->hdr.entry_length, it->hdr.descriptor_count);
            if (it->status == 0)
                printf("%-5u %-5u ", it->data_descriptors, it->zero_descriptors);
            else
                printf("%-5s %-5s ", "-", "-");
            printf("%-7" PRIu64 " %-7" PRIu64 " %-8s %s\n", it->hdr.flushed_file_offset >> 20,
                   it->hdr.last_file_offset >> 20, eg, it->status == 0 ? "valid" : vhdx_strerror(it->status));
            if (o.descriptors && it->status == 0)
                print_descriptors(dev, hd.log_offset, hd.log_length, it->position, &it->hdr, 0, &o);
        }
        printf("(%zu entry headers found; flushed/last in MiB; guid = first 8 digits; * = in the %s sequence)\n",
               views[0].n, per_session ? "session's" : "active");
        if (!per_session)
            print_sequence("active sequence for", &views[0]);
        for (size_t k = 1; k < nviews; k++)
            print_sequence("session", &views[k]);
    }
#undef ITEM_VIEW
    int pending = !vhdx_guid_is_zero(&hd.log_guid);
    int bad = pending && (views[0].rc == VHDX_E_LOG_AMBIGUOUS || !views[0].seq.found);
    for (size_t k = 0; k < nviews; k++) {
        free(views[k].items);
        vhdx_log_sequence_free(&views[k].seq);
    }
    bdev_destroy(dev);
    return bad ? EXIT_INVALID : EXIT_OK;
}

/* ---- read, write, export, import ------------------------------------------- */
#define CHUNK (1u << 20)

static int open_image(const char *path, int rdonly, const struct opts *o, struct bdev **dev, struct vhdx **h)
{
    if (open_dev(path, rdonly ? BDEV_RDONLY : 0, dev) != 0)
        return EXIT_USAGE;
    struct vhdx_options vo;
    struct vhdx_diag d;
    fill_options(o, &vo, &d, rdonly ? VHDX_OPEN_RDONLY : 0);
    int rc = vhdx_open(*dev, &vo, h);
    if (rc != 0) {
        bdev_destroy(*dev);
        return report_error("open", path, rc, &d);
    }
    return EXIT_OK;
}

static int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads up to n bytes; returns bytes read (< n only at end of input) or -errno. */
static ssize_t read_full(int fd, void *buf, size_t n)
{
    char *p = buf;
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

static int open_out(const char *path)
{
    if (!strcmp(path, "-"))
        return STDOUT_FILENO;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        fprintf(stderr, "%s: %s: cannot create: %s\n", prog, path, strerror(errno));
    return fd;
}

static int copy_out(struct vhdx *h, uint64_t off, uint64_t len, int fd, const char *img, const char *out, int sparse)
{
    uint8_t *buf = malloc(CHUNK);
    if (!buf) {
        fprintf(stderr, "%s: out of memory\n", prog);
        return EXIT_USAGE;
    }
    static const uint8_t zeros[4096];
    int status = EXIT_OK;
    for (uint64_t done = 0; done < len;) {
        size_t n = len - done > CHUNK ? CHUNK : (size_t)(len - done);
        int rc = vhdx_read(h, off + done, buf, n);
        if (rc != 0) {
            status = report_error("read", img, rc, NULL);
            break;
        }
        int all_zero = sparse;
        for (size_t i = 0; all_zero && i < n; i += sizeof zeros)
            all_zero = memcmp(buf + i, zeros, n - i < sizeof zeros ? n - i : sizeof zeros) == 0;
        if (all_zero) {
            done += n;
            continue;
        }
        rc = sparse ? (pwrite(fd, buf, n, (off_t)done) == (ssize_t)n ? 0 : -errno) : write_all(fd, buf, n);
        if (rc != 0) {
            fprintf(stderr, "%s: %s: write failed: %s\n", prog, out, strerror(-rc));
            status = EXIT_USAGE;
            break;
        }
        done += n;
    }
    free(buf);
    return status;
}

static int cmd_read(int argc, char **argv)
{
    struct opts o;
    parse_opts(argc, argv, &o, 4, "");
    uint64_t off, len;
    if (parse_u64(o.pos[1], &off, 1) != 0)
        tool_die_usage("read: OFFSET '%s' is not a number", o.pos[1]);
    if (parse_u64(o.pos[2], &len, 1) != 0)
        tool_die_usage("read: LENGTH '%s' is not a number", o.pos[2]);
    struct bdev *dev;
    struct vhdx *h;
    int st = open_image(o.pos[0], 1, &o, &dev, &h);
    if (st != EXIT_OK)
        return st;
    struct vhdx_info in;
    vhdx_get_info(h, &in);
    if (off > in.geo.virtual_size || len > in.geo.virtual_size - off) {
        fprintf(stderr, "%s: read: [%" PRIu64 ", +%" PRIu64 ") is outside the virtual disk (%" PRIu64 " bytes)\n",
                prog, off, len, in.geo.virtual_size);
        vhdx_close(h);
        bdev_destroy(dev);
        return EXIT_USAGE;
    }
    int fd = open_out(o.pos[3]);
    if (fd < 0)
        st = EXIT_USAGE;
    else
        st = copy_out(h, off, len, fd, o.pos[0], o.pos[3], 0);
    if (fd > STDOUT_FILENO)
        close(fd);
    vhdx_close(h);
    bdev_destroy(dev);
    return st;
}

/* Streams fd into the image at off; returns an exit status. */
static int copy_in(struct vhdx *h, uint64_t off, int fd, const char *img, const char *in, uint64_t vsize, int sparse)
{
    uint8_t *buf = malloc(CHUNK);
    if (!buf) {
        fprintf(stderr, "%s: out of memory\n", prog);
        return EXIT_USAGE;
    }
    static const uint8_t zeros[4096];
    int status = EXIT_OK;
    for (;;) {
        ssize_t n = read_full(fd, buf, CHUNK);
        if (n < 0) {
            fprintf(stderr, "%s: %s: read failed: %s\n", prog, in, strerror((int)-n));
            status = EXIT_USAGE;
            break;
        }
        if (n == 0)
            break;
        if (off > vsize || (uint64_t)n > vsize - off) {
            fprintf(stderr, "%s: %s: input reaches past the end of the virtual disk (%" PRIu64 " bytes)\n", prog, in,
                    vsize);
            status = EXIT_USAGE;
            break;
        }
        int all_zero = sparse;
        for (ssize_t i = 0; all_zero && i < n; i += (ssize_t)sizeof zeros)
            all_zero = memcmp(buf + i, zeros, (size_t)(n - i) < sizeof zeros ? (size_t)(n - i) : sizeof zeros) == 0;
        int rc = all_zero ? vhdx_discard(h, off, (uint64_t)n) : vhdx_write(h, off, buf, (size_t)n);
        if (rc != 0) {
            status = report_error("write", img, rc, NULL);
            break;
        }
        off += (uint64_t)n;
        if ((size_t)n < CHUNK)
            break;
    }
    free(buf);
    return status;
}

static int finish_write(struct vhdx *h, struct bdev *dev, const char *img, int status)
{
    int rc = status == EXIT_OK ? vhdx_flush(h) : 0;
    int crc = vhdx_close(h);
    bdev_destroy(dev);
    if (status != EXIT_OK)
        return status;
    if (rc == 0)
        rc = crc;
    return rc ? report_error("flush", img, rc, NULL) : EXIT_OK;
}

static int cmd_write(int argc, char **argv)
{
    struct opts o;
    parse_opts(argc, argv, &o, 3, "");
    uint64_t off;
    if (parse_u64(o.pos[1], &off, 1) != 0)
        tool_die_usage("write: OFFSET '%s' is not a number", o.pos[1]);
    int fd = !strcmp(o.pos[2], "-") ? STDIN_FILENO : open(o.pos[2], O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "%s: %s: cannot open: %s\n", prog, o.pos[2], strerror(errno));
        return EXIT_USAGE;
    }
    struct bdev *dev;
    struct vhdx *h;
    int st = open_image(o.pos[0], 0, &o, &dev, &h);
    if (st == EXIT_OK) {
        struct vhdx_info in;
        vhdx_get_info(h, &in);
        st = finish_write(h, dev, o.pos[0], copy_in(h, off, fd, o.pos[0], o.pos[2], in.geo.virtual_size, 0));
    }
    if (fd != STDIN_FILENO)
        close(fd);
    return st;
}

static int cmd_export(int argc, char **argv)
{
    struct opts o;
    parse_opts(argc, argv, &o, 2, "");
    struct bdev *dev;
    struct vhdx *h;
    int st = open_image(o.pos[0], 1, &o, &dev, &h);
    if (st != EXIT_OK)
        return st;
    struct vhdx_info in;
    vhdx_get_info(h, &in);
    int fd = open_out(o.pos[1]);
    int sparse = fd != STDOUT_FILENO;
    if (fd < 0) {
        st = EXIT_USAGE;
    } else {
        if (sparse && ftruncate(fd, (off_t)in.geo.virtual_size) != 0) {
            fprintf(stderr, "%s: %s: cannot size: %s\n", prog, o.pos[1], strerror(errno));
            st = EXIT_USAGE;
        } else {
            st = copy_out(h, 0, in.geo.virtual_size, fd, o.pos[0], o.pos[1], sparse);
        }
        if (fd != STDOUT_FILENO)
            close(fd);
    }
    vhdx_close(h);
    bdev_destroy(dev);
    return st;
}

static int cmd_import(int argc, char **argv)
{
    struct opts o;
    parse_opts(argc, argv, &o, 2, "block-size log-size logical-sector physical-sector");
    int fd = open(o.pos[0], O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "%s: %s: cannot open: %s\n", prog, o.pos[0], strerror(errno));
        return EXIT_USAGE;
    }
    struct stat st_raw;
    if (fstat(fd, &st_raw) != 0) {
        close(fd);
        return EXIT_USAGE;
    }
    struct stat st_img;
    if (stat(o.pos[1], &st_img) != 0) {
        uint64_t sector = o.logical ? o.logical : VHDX_DEFAULT_LOGICAL_SECTOR;
        uint64_t size = ((uint64_t)st_raw.st_size + sector - 1) / sector * sector;
        int st = create_image(o.pos[1], size ? size : sector, &o);
        if (st != EXIT_OK) {
            close(fd);
            return st;
        }
    }
    struct bdev *dev;
    struct vhdx *h;
    int st = open_image(o.pos[1], 0, &o, &dev, &h);
    if (st == EXIT_OK) {
        struct vhdx_info in;
        vhdx_get_info(h, &in);
        st = finish_write(h, dev, o.pos[1], copy_in(h, 0, fd, o.pos[1], o.pos[0], in.geo.virtual_size, 1));
    }
    close(fd);
    return st;
}

int main(int argc, char **argv)
{
    tool_set_name(prog);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("vhdxtool (%s), crc32c %s\n", vhdx_build_id(), crc32c_impl_name());
        return EXIT_OK;
    }
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage_text, stdout);
            return EXIT_OK;
        }
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {
        {"create", cmd_create}, {"info", cmd_info},     {"check", cmd_check},   {"replay", cmd_replay},
        {"dump-log", cmd_dump_log}, {"read", cmd_read}, {"write", cmd_write},   {"export", cmd_export},
        {"import", cmd_import}, {"layout", cmd_layout},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(argv[1], cmds[i].name))
            return cmds[i].fn(argc, argv);
    tool_die_usage("unknown command '%s'", argv[1]);
}
