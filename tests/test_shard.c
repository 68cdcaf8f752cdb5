/*
 * test_shard.c - toolbase's shard rule (tool_shard_resolve): --shard, then
 * the launchers' environments (Bazel/GoogleTest, Kubernetes Indexed Job,
 * Slurm array), and every bad value an error.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <unistd.h>

#include "testutil.h"
#include "toolbase.h"

static const char *vars[] = {"TEST_SHARD_INDEX", "TEST_TOTAL_SHARDS", "TEST_SHARD_STATUS_FILE", "JOB_COMPLETION_INDEX",
                             "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN"};

static void clear(void)
{
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
}

/* Resolves and checks k/n/source (want_ok) or that it fails (!want_ok). */
static void expect(const char *shard, const char *shards, int want_ok, unsigned k, unsigned n, const char *source)
{
    struct tool_shard s;
    char err[512] = "";
    int rc = tool_shard_resolve(shard, shards, &s, err, sizeof err);
    if (want_ok) {
        CHECK(rc == 0);
        if (rc == 0) {
            CHECK(s.k == k);
            CHECK(s.n == n);
            CHECK(!strcmp(s.source, source));
        } else
            fprintf(stderr, "  unexpected error: %s\n", err);
    } else {
        CHECK(rc == -1);
        CHECK(err[0] != 0);
    }
}

int main(void)
{
    clear();
    expect(NULL, NULL, 1, 0, 1, "none");
    expect("2/4", NULL, 1, 2, 4, "--shard");
    expect("4/4", NULL, 0, 0, 0, NULL);
    expect("1/0", NULL, 0, 0, 0, NULL);
    expect("x/4", NULL, 0, 0, 0, NULL);
    expect("1/4x", NULL, 0, 0, 0, NULL);

    /* Bazel / GoogleTest; --shard wins over the environment */
    setenv("TEST_SHARD_INDEX", "3", 1);
    setenv("TEST_TOTAL_SHARDS", "5", 1);
    expect(NULL, NULL, 1, 3, 5, "TEST_SHARD_INDEX");
    expect("0/2", NULL, 1, 0, 2, "--shard");
    char status[] = "/tmp/test_shard_statusXXXXXX";
    int fd = mkstemp(status);
    CHECK(fd >= 0);
    close(fd);
    unlink(status);
    setenv("TEST_SHARD_STATUS_FILE", status, 1);
    expect(NULL, NULL, 1, 3, 5, "TEST_SHARD_INDEX");
    CHECK(access(status, F_OK) == 0); /* touched: "this test shards" */
    unlink(status);
    setenv("TEST_SHARD_STATUS_FILE", "/nonexistent-dir/status", 1);
    expect(NULL, NULL, 0, 0, 0, NULL);
    unsetenv("TEST_SHARD_STATUS_FILE");
    setenv("TEST_SHARD_INDEX", "5", 1); /* index == total */
    expect(NULL, NULL, 0, 0, 0, NULL);
    setenv("TEST_SHARD_INDEX", "one", 1);
    expect(NULL, NULL, 0, 0, 0, NULL);
    setenv("TEST_SHARD_INDEX", "-1", 1);
    expect(NULL, NULL, 0, 0, 0, NULL);
    unsetenv("TEST_TOTAL_SHARDS"); /* half a pair */
    setenv("TEST_SHARD_INDEX", "1", 1);
    expect(NULL, NULL, 0, 0, 0, NULL);
    clear();

    /* Kubernetes Indexed Job: the index from the pod, the count from --shards */
    setenv("JOB_COMPLETION_INDEX", "6", 1);
    expect(NULL, "8", 1, 6, 8, "JOB_COMPLETION_INDEX");
    expect(NULL, NULL, 0, 0, 0, NULL);  /* no --shards */
    expect(NULL, "6", 0, 0, 0, NULL);   /* index >= count */
    expect(NULL, "many", 0, 0, 0, NULL);
    clear();
    expect(NULL, "8", 0, 0, 0, NULL);   /* --shards without an index */

    /* Slurm array: ids may start at an offset (--array=10-13) */
    setenv("SLURM_ARRAY_TASK_ID", "2", 1);
    setenv("SLURM_ARRAY_TASK_COUNT", "4", 1);
    expect(NULL, NULL, 1, 2, 4, "SLURM_ARRAY_TASK_ID");
    setenv("SLURM_ARRAY_TASK_ID", "12", 1);
    setenv("SLURM_ARRAY_TASK_MIN", "10", 1);
    expect(NULL, NULL, 1, 2, 4, "SLURM_ARRAY_TASK_ID");
    setenv("SLURM_ARRAY_TASK_ID", "14", 1); /* past min + count */
    expect(NULL, NULL, 0, 0, 0, NULL);
    setenv("SLURM_ARRAY_TASK_ID", "9", 1);  /* below min */
    expect(NULL, NULL, 0, 0, 0, NULL);
    setenv("SLURM_ARRAY_TASK_ID", "12", 1);
    setenv("SLURM_ARRAY_TASK_MIN", "ten", 1);
    expect(NULL, NULL, 0, 0, 0, NULL);
    unsetenv("SLURM_ARRAY_TASK_MIN");
    unsetenv("SLURM_ARRAY_TASK_COUNT");
    expect(NULL, NULL, 0, 0, 0, NULL);
    clear();
    return test_summary("shard");
}
