/*
 * test_trace.c - the trace format: every record kind, metadata, choice and
 * base survive save/load; damaged files (flipped byte, truncation, bad
 * magic, other version, absurd counts) are refused with a message, never
 * a crash; the epoch index (epochs.h) of a trace with a drop mark.
 */
#define _POSIX_C_SOURCE 200809L
#include "harness/epochs.h"
#include "harness/trace.h"
#include "testutil.h"
#include <unistd.h>
#include "vhdx/crc32c.h"
#include "vhdx/format.h"

static void build(struct trace *t)
{
    trace_init(t);
    t->seed = 77;
    uint8_t base[8192];
    memset(base, 0, sizeof base);
    memset(base + 512, 0xAB, 512);
    CHECK_OK(trace_set_base_bytes(t, base, sizeof base));
    CHECK_OK(trace_set_meta(t, "workload", "unit"));
    CHECK_OK(trace_set_meta(t, "engine", "test"));
    uint8_t data[3000];
    test_fill(data, sizeof data, 5);
    CHECK_OK(trace_add_vbegin(t, 0, VOP_WRITE, 4096, 3000, 1));
    CHECK_OK(trace_add_write(t, 100, data, sizeof data, NULL));
    CHECK_OK(trace_add_truncate(t, 1 << 20));
    CHECK_OK(trace_add_flush(t));
    CHECK_OK(trace_add_mark(t, "log.entry", 42));
    CHECK_OK(trace_add_mark(t, "log.entry", 43));
    CHECK_OK(trace_add_vend(t, 0, -5));
}

static void test_roundtrip(void)
{
    struct trace t, u;
    build(&t);
    uint8_t *buf;
    size_t len;
    CHECK_OK(trace_serialize(&t, &buf, &len));
    char err[256];
    CHECK_OK(trace_parse(&u, buf, len, err, sizeof err));
    CHECK(u.seed == 77 && u.n_ops == t.n_ops && u.base_size == 8192 && u.base.count == 16); /* the header section is dense */
    CHECK(memcmp(secmap_get(&u.base, 1), secmap_get(&t.base, 1), 512) == 0);
    CHECK(strcmp(trace_get_meta(&u, "workload"), "unit") == 0);
    CHECK(u.ops[1].kind == TR_WRITE && u.ops[1].off == 100 && u.ops[1].len == 3000 &&
          memcmp(u.ops[1].data, t.ops[1].data, 3000) == 0);
    CHECK(u.ops[2].kind == TR_TRUNCATE && u.ops[2].off == (1u << 20));
    CHECK(u.ops[4].kind == TR_MARK && u.ops[4].off == 42 && !strcmp(u.names[u.ops[4].name], "log.entry"));
    CHECK(u.ops[5].name == u.ops[4].name); /* names interned */
    CHECK(u.ops[0].kind == TR_VBEGIN && u.ops[0].vkind == VOP_WRITE && u.ops[0].vlen == 3000 && u.ops[0].vid == 1);
    CHECK(u.ops[6].kind == TR_VEND && u.ops[6].rc == -5);
    CHECK(u.flags & TRACE_F_WORKLOAD);
    CHECK(!trace_get_choice(&u, "model"));
    trace_free(&u);
    free(buf);
    /* A choice makes it a reproducer. */
    CHECK_OK(trace_set_choice(&t, "model", "torn"));
    CHECK_OK(trace_serialize(&t, &buf, &len));
    CHECK_OK(trace_parse(&u, buf, len, err, sizeof err));
    CHECK((u.flags & TRACE_F_CHOICE) && !strcmp(trace_get_choice(&u, "model"), "torn"));
    trace_free(&u);
    free(buf);
    trace_free(&t);
}

static void test_damage(void)
{
    struct trace t, u;
    build(&t);
    uint8_t *buf;
    size_t len;
    CHECK_OK(trace_serialize(&t, &buf, &len));
    char err[256];
    uint8_t *copy = malloc(len);
    /* Any single flipped byte is caught (checksum, or trailer/magic). */
    int all_refused = 1;
    for (size_t i = 0; i < len; i += 7) {
        memcpy(copy, buf, len);
        copy[i] ^= 0x40;
        if (trace_parse(&u, copy, len, err, sizeof err) == 0) {
            all_refused = 0;
            trace_free(&u);
        }
    }
    CHECK(all_refused);
    CHECK(trace_parse(&u, buf, len - 1, err, sizeof err) != 0 && strstr(err, "truncated"));
    CHECK(trace_parse(&u, buf, 10, err, sizeof err) != 0);
    memcpy(copy, buf, len);
    copy[0] = 'X';
    CHECK(trace_parse(&u, copy, len, err, sizeof err) != 0 && strstr(err, "magic"));
    /* Another version, with a valid checksum: refused by version. */
    memcpy(copy, buf, len);
    vhdx_put32(copy + 8, 99);
    vhdx_put32(copy + len - 12, crc32c(0, copy, len - 20));
    CHECK(trace_parse(&u, copy, len, err, sizeof err) != 0 && strstr(err, "version"));
    /* An absurd operation count, with a valid checksum. */
    memcpy(copy, buf, len);
    vhdx_put64(copy + 32, UINT64_C(1) << 40);
    vhdx_put32(copy + len - 12, crc32c(0, copy, len - 20));
    CHECK(trace_parse(&u, copy, len, err, sizeof err) != 0);
    /* A write length running past the end, with a valid checksum. */
    memcpy(copy, buf, len);
    for (size_t i = 64; i + 13 < len; i++) {
        if (copy[i] == 'W' && vhdx_get64(copy + i + 1) == 100 && vhdx_get32(copy + i + 9) == 3000) {
            vhdx_put32(copy + i + 9, 0x7FFFFFFF);
            break;
        }
    }
    vhdx_put32(copy + len - 12, crc32c(0, copy, len - 20));
    CHECK(trace_parse(&u, copy, len, err, sizeof err) != 0);
    free(copy);
    free(buf);
    trace_free(&t);
}

static void test_file(void)
{
    struct trace t, u;
    build(&t);
    char path[] = "/tmp/powercut-test-trace-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    char err[256];
    CHECK_OK(trace_save(&t, path, err, sizeof err));
    CHECK_OK(trace_load(&u, path, err, sizeof err));
    CHECK(u.n_ops == t.n_ops);
    trace_free(&u);
    remove(path);
    CHECK(trace_load(&u, path, err, sizeof err) != 0 && strstr(err, path));
    trace_free(&t);
}

/* The trace drawn in epochs.h: a drop mark empties epoch 0's pending list,
 * whose writes then never count for the durable size. */
static void test_epochs(void)
{
    struct trace t;
    trace_init(&t);
    uint8_t base[8192], data[1024];
    memset(base, 0, sizeof base);
    test_fill(data, sizeof data, 9);
    CHECK_OK(trace_set_base_bytes(&t, base, sizeof base));
    CHECK_OK(trace_add_write(&t, 8192, data, 512, NULL));  /* 0, dropped */
    CHECK_OK(trace_add_write(&t, 0, data, 512, NULL));     /* 1, dropped */
    CHECK_OK(trace_add_mark(&t, "fault.drop_pending", 0)); /* 2 */
    CHECK_OK(trace_add_write(&t, 8192, data, 1024, NULL)); /* 3: 9216 bytes */
    CHECK_OK(trace_add_truncate(&t, 4096));                /* 4: 4096 */
    CHECK_OK(trace_add_flush(&t));                         /* 5 */
    CHECK_OK(trace_add_write(&t, 4096, data, 512, NULL));  /* 6: 4608 */
    CHECK_OK(trace_add_flush(&t));                         /* 7 */
    CHECK_OK(trace_add_write(&t, 0, data, 512, NULL));     /* 8 */
    CHECK_OK(trace_add_write(&t, 16384, data, 512, NULL)); /* 9 */
    struct trace_epochs ep;
    CHECK_OK(trace_epochs_build(&t, &ep));
    CHECK(ep.n == 3);
    static const struct trace_epoch want[3] = {{0, 5, 3, 2, 8192}, {6, 7, 6, 1, 4096}, {8, 10, 8, 2, 4608}};
    for (uint32_t e = 0; e < 3 && ep.n == 3; e++)
        CHECK(ep.e[e].start == want[e].start && ep.e[e].end == want[e].end && ep.e[e].first == want[e].first &&
              ep.e[e].pending == want[e].pending && ep.e[e].size == want[e].size);
    CHECK(trace_epoch_pending_op(&t, &ep.e[0], 0) == &t.ops[3]);
    CHECK(trace_epoch_pending_op(&t, &ep.e[0], 1) == &t.ops[4]);
    CHECK(trace_epoch_pending_op(&t, &ep.e[0], 2) == NULL);
    CHECK(trace_epoch_pending_op(&t, &ep.e[2], 1) == &t.ops[9]);
    /* where the ops before each position end (pos 11 and 99: the end) */
    static const uint32_t at[12][2] = {{0, 0}, {0, 1}, {0, 2}, {0, 0}, {0, 1}, {0, 2},
                                       {1, 0}, {1, 1}, {2, 0}, {2, 1}, {2, 2}, {2, 2}};
    for (uint64_t pos = 0; pos < 12; pos++) {
        uint32_t e, i;
        trace_epochs_locate(&t, &ep, pos == 11 ? 99 : pos, &e, &i);
        CHECK(e == at[pos][0] && i == at[pos][1]);
    }
    trace_epochs_free(&ep);
    trace_free(&t);
    /* no operations: one empty epoch */
    trace_init(&t);
    CHECK_OK(trace_epochs_build(&t, &ep));
    CHECK(ep.n == 1 && ep.e[0].start == 0 && ep.e[0].end == 0 && ep.e[0].pending == 0);
    trace_epochs_free(&ep);
    trace_free(&t);
}

int main(void)
{
    test_roundtrip();
    test_damage();
    test_file();
    test_epochs();
    return test_summary("test_trace");
}
