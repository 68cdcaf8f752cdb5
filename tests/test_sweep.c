/*
 * test_sweep.c - the sweep end to end on a small workload: deterministic
 * (the same seed gives the same states and verdicts), shards partition the
 * states, every exported state can be rebuilt from its choice, a
 * reproducer round-trips through a file, model lists parse; a cross-subject
 * sweep judges with its replay subject and that subject's known list, and
 * its reproducer names the replay subject and fails again when judged by it.
 */
#define _POSIX_C_SOURCE 200809L
#include "harness/subject.h"
#include "harness/sweep.h"
#include "harness/workload.h"
#include "testutil.h"
#include <errno.h>
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

/* ---- cross-subject sweeps ----------------------------------------------------------- */
/* A reader that refuses every image (a format refusal with its own words)
 * and lists that as its known departure; every other call is libvhdx's. */
static int probe_opens;
static char probe_why[] = "the probe refuses every image";

static int probe_open(struct bdev *dev, unsigned flags, uint64_t *rng, uint32_t apply_every,
                      struct subject_handle **out)
{
    (void)dev, (void)flags, (void)rng, (void)apply_every, (void)out;
    probe_opens++;
    return -EUCLEAN;
}

static const char *probe_last_error(const struct subject_handle *h)
{
    return h ? subject_libvhdx.last_error(h) : probe_why;
}

static const struct subject_departure probe_known[] = {
    {"open-refused", "the probe refuses", "the probe's own departure"},
    {NULL, NULL, NULL},
};

static struct subject_ops probe;

static void make_probe(void)
{
    probe = subject_libvhdx;
    probe.name = "probe";
    probe.open = probe_open;
    probe.last_error = probe_last_error;
    probe.known = probe_known;
}

/* The reader opens and judges every state, and its known list (not the
 * writer's) sets its verdicts apart; a reproducer names the reader and
 * judging it again with that reader gives the same verdict. */
static void test_cross_subject(const struct trace *t)
{
    make_probe();
    struct sweep_config c;
    sweep_config_defaults(&c);
    c.quiet = 1;
    c.models = 1u << M_PREFIX;
    c.judges = JUDGE_ORACLE; /* with the reference on, a refusal of a valid image is ref:refused-recoverable */
    struct sweep_stats st;
    /* libvhdx wrote, the probe reads: every state refused, all of it the probe's known departure */
    c.replay_subject = &probe;
    probe_opens = 0;
    CHECK_OK(sweep_run(t, &c, &st));
    CHECK(st.states > 10 && probe_opens >= (int)st.opens && st.opens > 0);
    CHECK(st.violations == 0 && st.known[0] == st.states && st.known_total == st.states);
    CHECK(sweep_reader(&c) == &probe && sweep_writer(&c) == &subject_libvhdx);
    /* strict: they count */
    c.strict = 1;
    CHECK_OK(sweep_run(t, &c, &st));
    CHECK(st.violations == st.states && st.known_total == 0);
    c.strict = 0;
    /* the probe as the writer only: its list never excuses a reader's verdict, and libvhdx judges clean */
    c.subject = &probe;
    c.replay_subject = &subject_libvhdx;
    probe_opens = 0;
    CHECK_OK(sweep_run(t, &c, &st));
    CHECK(probe_opens == 0 && st.violations == 0 && st.known_total == 0 && st.states > 10);
    /* one subject for both: the reader default is the writer */
    c.replay_subject = NULL;
    CHECK(sweep_reader(&c) == &probe);
    CHECK(sweep_invariant_is_writers("protocol:header-before-entry"));
    CHECK(sweep_invariant_is_writers("ref:invalid-crash-state"));
    CHECK(!sweep_invariant_is_writers("open-refused") && !sweep_invariant_is_writers("ref:replayed-bytes"));

    /* a reproducer of a cross sweep names its replay subject, and a repro judged by it fails again */
    struct sweep_config d;
    sweep_config_defaults(&d);
    d.models = 1u << M_PREFIX;
    d.judges = JUDGE_ORACLE;
    d.replay_subject = &probe;
    struct pick p = {0, 5, {0}};
    struct sweep_config e = d;
    e.on_state = pick_state;
    e.ctx = &p;
    e.quiet = 1;
    CHECK_OK(sweep_run(t, &e, &st));
    struct verdict v;
    CHECK_OK(sweep_eval_choice(t, &d, &p.c, &v));
    CHECK(!v.ok && !strcmp(v.invariant, "open-refused") && strstr(v.detail, "the probe refuses"));
    char path[] = "/tmp/powercut-test-xrepro-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    char err[256];
    CHECK_OK(sweep_save_repro_judged(t, &p.c, &v, NULL, sweep_reader(&d)->name, path, err, sizeof err));
    struct trace r;
    CHECK_OK(trace_load(&r, path, err, sizeof err));
    const char *named = sweep_repro_replay_subject(&r);
    CHECK(named && !strcmp(named, "probe"));
    struct crash_choice back;
    CHECK_OK(crash_choice_from_trace(&r, &back, err, sizeof err));
    CHECK(crash_choice_equal(&back, &p.c));
    /* judged by the subject it names: the verdict again; by libvhdx: clean */
    struct sweep_config again;
    sweep_config_defaults(&again);
    again.judges = JUDGE_ORACLE;
    again.replay_subject = !strcmp(named, probe.name) ? &probe : NULL;
    struct verdict v2;
    CHECK_OK(sweep_eval_choice(&r, &again, &back, &v2));
    CHECK(!v2.ok && !strcmp(v2.invariant, v.invariant));
    again.replay_subject = NULL;
    CHECK_OK(sweep_eval_choice(&r, &again, &back, &v2));
    CHECK(v2.ok);
    /* a reproducer saved without a reader names none (older ones) */
    CHECK_OK(sweep_save_repro(t, &p.c, &v, path, err, sizeof err));
    trace_free(&r);
    CHECK_OK(trace_load(&r, path, err, sizeof err));
    CHECK(sweep_repro_replay_subject(&r) == NULL);
    trace_free(&r);
    remove(path);
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
    test_cross_subject(&t);
    trace_free(&t);
    make_trace(&t, "reopen", 20);
    test_determinism_and_shards(&t);
    trace_free(&t);
    return test_summary("test_sweep");
}
