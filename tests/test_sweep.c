/*
 * test_sweep.c - the sweep end to end on a small workload: deterministic
 * (the same seed gives the same states and verdicts), shards partition the
 * states, every exported state can be rebuilt from its choice, a
 * reproducer round-trips through a file, model lists parse.
 */
#define _POSIX_C_SOURCE 200809L
#include "harness/sweep.h"
#include "harness/workload.h"
#include "testutil.h"
#include <unistd.h>

static void make_trace(struct trace *t, const char *scenario, uint32_t ops)
{
    struct workload_params p;
    memset(&p, 0, sizeof p);
    snprintf(p.scenario, sizeof p.scenario, "%s", scenario);
    p.seed = 3;
    p.ops = ops;
    char err[256];
    CHECK_OK(workload_params_resolve(&p, err, sizeof err));
    struct workload w;
    CHECK_OK(workload_generate(&p, &w));
    trace_init(t);
    CHECK_OK(workload_run(&w, t, err, sizeof err));
    workload_free(&w);
}

static void test_determinism_and_shards(const struct trace *t)
{
    struct sweep_config c;
    sweep_config_defaults(&c);
    c.quiet = 1;
    struct sweep_stats a, b;
    CHECK_OK(sweep_run(t, &c, &a));
    CHECK_OK(sweep_run(t, &c, &b));
    CHECK(a.states == b.states && a.violations == 0 && b.violations == 0);
    CHECK(memcmp(a.states_per_model, b.states_per_model, sizeof a.states_per_model) == 0);
    CHECK(a.states > 500);
    uint64_t sum = 0;
    for (uint32_t k = 0; k < 3; k++) {
        struct sweep_config s = c;
        s.shard_k = k;
        s.shard_n = 3;
        struct sweep_stats st;
        CHECK_OK(sweep_run(t, &s, &st));
        sum += st.states;
        CHECK(st.states + st.skipped == a.states);
    }
    CHECK(sum == a.states);
}

struct pick {
    int n, want;
    struct crash_choice c;
};

static int pick_state(void *ctx, const struct crash_choice *c, uint64_t cut, struct crashdisk *cd)
{
    (void)cut, (void)cd;
    struct pick *p = ctx;
    if (p->n++ == p->want) {
        p->c = *c;
        return 1;
    }
    return 0;
}

static void test_eval_choice_and_repro(const struct trace *t)
{
    for (int want = 3; want < 400; want += 97) {
        struct sweep_config c;
        sweep_config_defaults(&c);
        c.quiet = 1;
        struct pick p = {0, want, {0}};
        c.on_state = pick_state;
        c.ctx = &p;
        struct sweep_stats st;
        CHECK_OK(sweep_run(t, &c, &st));
        CHECK(p.n > want);
        struct sweep_config d;
        sweep_config_defaults(&d);
        struct verdict v;
        CHECK_OK(sweep_eval_choice(t, &d, &p.c, &v));
        CHECK(v.ok);
        /* Through a reproducer file. */
        char path[] = "/tmp/powercut-test-repro-XXXXXX";
        int fd = mkstemp(path);
        close(fd);
        char err[256];
        CHECK_OK(sweep_save_repro(t, &p.c, &v, path, err, sizeof err));
        struct trace r;
        CHECK_OK(trace_load(&r, path, err, sizeof err));
        struct crash_choice back;
        CHECK_OK(crash_choice_from_trace(&r, &back, err, sizeof err));
        CHECK(back.model == p.c.model && back.epoch == p.c.epoch && back.index == p.c.index &&
              back.gran == p.c.gran && back.pattern == p.c.pattern && back.target == p.c.target &&
              back.bit == p.c.bit && !memcmp(back.subset, p.c.subset, sizeof back.subset));
        struct verdict v2;
        CHECK_OK(sweep_eval_choice(&r, &d, &back, &v2));
        CHECK(v2.ok && v2.cut == v.cut);
        trace_free(&r);
        remove(path);
    }
}

int main(void)
{
    unsigned m;
    CHECK_OK(crash_models_parse("prefix,torn", &m));
    CHECK(m == ((1u << M_PREFIX) | (1u << M_TORN)));
    CHECK_OK(crash_models_parse("all", &m));
    CHECK(m == M_ALL_MODELS);
    CHECK(crash_models_parse("prefix,bogus", &m) != 0);
    struct trace t;
    make_trace(&t, "batch", 40);
    test_determinism_and_shards(&t);
    test_eval_choice_and_repro(&t);
    trace_free(&t);
    make_trace(&t, "reopen", 20);
    test_determinism_and_shards(&t);
    trace_free(&t);
    return test_summary("test_sweep");
}
