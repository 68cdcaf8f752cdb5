/*
 * plan.c - fault plans: parsing, formatting, arming through libfiu
 * (plan.h).
 *
 * Guarantees: a transient/persistent plan registers one external callback
 * (fiu_enable_external) on every catalogued point, so every call is seen
 * and counted here and the nth call of the kind's points fails exactly; a
 * random plan uses fiu_enable_random on the kind's points after seeding
 * libfiu's PRNG, and the callback on the others (they only count).
 * fault_disarm() disables every catalogued point, whatever armed it.
 */
#define _POSIX_C_SOURCE 200809L
#include "faults/plan.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef FIU_ENABLE
#include <fiu-control.h>
#include <fiu.h>
#endif

/* The failinfo encoding of engine/src/io.h (kept in step by test_plan's
 * end-to-end checks of the short and lose kinds): the effect column of
 * FAULT_KIND_LIST. */
#define FAILINFO_NONE UINT32_C(0)
#define FAILINFO_SHORT (UINT32_C(1) << 16)
#define FAILINFO_LOSE (UINT32_C(1) << 17)

/* The points' names under a namespace: <ns>/io/read ... <ns>/alloc. */
static const char *const point_suffix[FP_COUNT] = {"io/read", "io/write", "io/flush", "io/size", "io/truncate", "alloc"};
static char point_buf[FP_COUNT][48];
const char *fault_point_names[FP_COUNT] = {"vhdx/io/read", "vhdx/io/write", "vhdx/io/flush",
                                           "vhdx/io/size", "vhdx/io/truncate", "vhdx/alloc"};
static char point_ns[16] = "vhdx";

int fault_use_points(const char *ns)
{
    if (!ns || !*ns || strlen(ns) >= sizeof point_ns || strchr(ns, '/'))
        return -EINVAL;
    snprintf(point_ns, sizeof point_ns, "%s", ns);
    for (int i = 0; i < FP_COUNT; i++) {
        snprintf(point_buf[i], sizeof point_buf[i], "%s/%s", ns, point_suffix[i]);
        fault_point_names[i] = point_buf[i];
    }
    return 0;
}

const char *fault_points_ns(void)
{
    return point_ns;
}
const char *const fault_kind_names[FK_COUNT] = {
#define X(id, name, points, err, effect, about) name,
    FAULT_KIND_LIST(X)
#undef X
};
const char *const fault_kind_about[FK_COUNT] = {
#define X(id, name, points, err, effect, about) about,
    FAULT_KIND_LIST(X)
#undef X
};
const char *const fault_mode_names[FM_COUNT] = {"transient", "persistent", "random"};

int fault_point_index(const char *name)
{
    for (int i = 0; i < FP_COUNT; i++)
        if (!strcmp(name, fault_point_names[i]))
            return i;
    return -1;
}

static const struct {
    unsigned points;  /* (1 << FP_*) */
    uintptr_t err;    /* errno of the failing call */
    uintptr_t effect; /* FAILINFO_* on the kind's points */
} kinds[FK_COUNT] = {
#define X(id, name, points, err, effect, about) {points, err, FAILINFO_##effect},
    FAULT_KIND_LIST(X)
#undef X
};

unsigned fault_kind_points(enum fault_kind k)
{
    return (unsigned)k < FK_COUNT ? kinds[k].points : 0;
}

uintptr_t fault_kind_failinfo(enum fault_kind k, enum fault_point p)
{
    if ((unsigned)k >= FK_COUNT)
        return EIO;
    return kinds[k].err | ((unsigned)p < FP_COUNT && (kinds[k].points & (1u << p)) ? kinds[k].effect : 0);
}

void fault_kinds_join(const char *sep, char *buf, size_t len)
{
    size_t n = 0;
    if (len)
        buf[0] = '\0';
    for (int k = 0; k < FK_COUNT && n < len; k++)
        n += (size_t)snprintf(buf + n, len - n, "%s%s", k ? sep : "", fault_kind_names[k]);
}

static int list_parse(const char *s, const char *const *names, int n, unsigned all, unsigned *mask)
{
    *mask = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (!strcmp(tok, "all")) {
            *mask |= all;
            continue;
        }
        int found = 0;
        for (int i = 0; i < n; i++)
            if (!strcmp(tok, names[i])) {
                *mask |= 1u << i;
                found = 1;
            }
        if (!found)
            return -1;
    }
    return *mask ? 0 : -1;
}

int fault_kinds_parse(const char *s, unsigned *mask)
{
    return list_parse(s, fault_kind_names, FK_COUNT, FK_ALL, mask);
}

int fault_modes_parse(const char *s, unsigned *mask)
{
    int rc = list_parse(s, fault_mode_names, FM_COUNT, 1u << FM_TRANSIENT | 1u << FM_PERSISTENT, mask);
    return rc == 0 && (*mask & (1u << FM_RANDOM)) ? -1 : rc; /* random is a campaign, not a sweep mode */
}

unsigned fault_plan_points(const struct fault_plan *p)
{
    unsigned pts = fault_kind_points(p->kind);
    return p->points ? (pts & p->points) : pts;
}

int fault_plan_format(const struct fault_plan *p, char *buf, size_t len)
{
    const char *k = (unsigned)p->kind < FK_COUNT ? fault_kind_names[p->kind] : "?";
    const char *m = (unsigned)p->mode < FM_COUNT ? fault_mode_names[p->mode] : "?";
    int n;
    if (p->mode == FM_RANDOM)
        n = snprintf(buf, len, "kind=%s mode=%s p=%.9g seed=%" PRIu32, k, m, p->probability, p->seed);
    else
        n = snprintf(buf, len, "kind=%s mode=%s nth=%" PRIu64, k, m, p->nth);
    if (p->points && (p->points & fault_kind_points(p->kind)) != fault_kind_points(p->kind)) {
        int first = 1;
        for (int i = 0; i < FP_COUNT && n >= 0 && (size_t)n < len; i++)
            if (p->points & (1u << i)) {
                n += snprintf(buf + n, len - (size_t)n, "%s%s", first ? " points=" : ",", fault_point_names[i]);
                first = 0;
            }
    }
    return n;
}

int fault_plan_parse(const char *s, struct fault_plan *p, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->nth = 1;
    int have_kind = 0, have_mode = 0, have_p = 0;
    char buf[512];
    if (strlen(s) >= sizeof buf) {
        snprintf(err, errlen, "fault plan too long");
        return -1;
    }
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *tok = strtok_r(buf, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) {
            snprintf(err, errlen, "fault plan: '%s' is not key=value", tok);
            return -1;
        }
        *eq = '\0';
        const char *key = tok, *val = eq + 1;
        char *end;
        if (!strcmp(key, "kind")) {
            int found = 0;
            for (int i = 0; i < FK_COUNT; i++)
                if (!strcmp(val, fault_kind_names[i])) {
                    p->kind = (enum fault_kind)i;
                    found = 1;
                }
            if (!found) {
                char names[128];
                fault_kinds_join(", ", names, sizeof names);
                snprintf(err, errlen, "fault plan: unknown kind '%s' (%s)", val, names);
                return -1;
            }
            have_kind = 1;
        } else if (!strcmp(key, "mode")) {
            int found = 0;
            for (int i = 0; i < FM_COUNT; i++)
                if (!strcmp(val, fault_mode_names[i])) {
                    p->mode = (enum fault_mode)i;
                    found = 1;
                }
            if (!found) {
                snprintf(err, errlen, "fault plan: unknown mode '%s' (transient, persistent, random)", val);
                return -1;
            }
            have_mode = 1;
        } else if (!strcmp(key, "nth")) {
            errno = 0;
            unsigned long long v = strtoull(val, &end, 10);
            if (errno || end == val || *end || v == 0 || *val == '-') {
                snprintf(err, errlen, "fault plan: nth must be a positive integer, not '%s'", val);
                return -1;
            }
            p->nth = v;
        } else if (!strcmp(key, "p")) {
            errno = 0;
            double v = strtod(val, &end);
            if (errno || end == val || *end || !(v > 0 && v <= 1)) {
                snprintf(err, errlen, "fault plan: p must be a probability in (0, 1], not '%s'", val);
                return -1;
            }
            p->probability = v;
            have_p = 1;
        } else if (!strcmp(key, "seed")) {
            errno = 0;
            unsigned long long v = strtoull(val, &end, 10);
            if (errno || end == val || *end || v > UINT32_MAX || *val == '-') {
                snprintf(err, errlen, "fault plan: seed must be an integer below 2^32, not '%s'", val);
                return -1;
            }
            p->seed = (uint32_t)v;
        } else if (!strcmp(key, "points")) {
            char pb[256];
            snprintf(pb, sizeof pb, "%s", val);
            for (char *s2 = NULL, *pt = strtok_r(pb, ",", &s2); pt; pt = strtok_r(NULL, ",", &s2)) {
                int i = fault_point_index(pt);
                if (i < 0) {
                    snprintf(err, errlen, "fault plan: unknown point '%s' (see faults/points.md)", pt);
                    return -1;
                }
                p->points |= 1u << i;
            }
        } else {
            snprintf(err, errlen, "fault plan: unknown key '%s' (kind, mode, nth, p, seed, points)", key);
            return -1;
        }
    }
    if (!have_kind || !have_mode) {
        snprintf(err, errlen, "fault plan needs kind= and mode=");
        return -1;
    }
    if (p->mode == FM_RANDOM && !have_p) {
        snprintf(err, errlen, "a random fault plan needs p=PROBABILITY");
        return -1;
    }
    if (p->points && !(p->points & fault_kind_points(p->kind))) {
        snprintf(err, errlen, "fault plan: kind %s hits none of the given points", fault_kind_names[p->kind]);
        return -1;
    }
    return 0;
}

/* ---- arming ---------------------------------------------------------------- */
static struct {
    int armed;               /* a plan or counting is active */
    int counting_only;       /* fault_count_start */
    int suspended;
    struct fault_plan plan;
    unsigned fail_points;    /* points that may fail */
    struct fault_stats st;
    fault_inject_fn hook;
    void *hook_ctx;
} g = {.st = {.first_point = -1}};

int fault_supported(void)
{
#ifdef FIU_ENABLE
    return 1;
#else
    return 0;
#endif
}

const struct fault_stats *fault_get_stats(void)
{
    return &g.st;
}

void fault_set_inject_hook(fault_inject_fn fn, void *ctx)
{
    g.hook = fn;
    g.hook_ctx = ctx;
}

void fault_suspend(int on)
{
    g.suspended = on;
}

int fault_suspended(void)
{
    return g.suspended;
}

static void note_injection(int pt)
{
    g.st.injected++;
    g.st.injected_per_point[pt]++;
    if (g.st.first_point < 0)
        g.st.first_point = pt;
    if (g.hook)
        g.hook(g.hook_ctx, (enum fault_point)pt);
}

void fault_observe(const char *name, int r)
{
    /* Only random plans need an observer: external plans count in the callback. */
    if (!g.armed || g.plan.mode != FM_RANDOM || g.counting_only)
        return;
    int pt = fault_point_index(name);
    if (pt < 0 || !(g.fail_points & (1u << pt)))
        return;
    g.st.calls[pt]++;
    g.st.counted++;
    if (r)
        note_injection(pt);
}

#ifdef FIU_ENABLE
static void reset_stats(void)
{
    memset(&g.st, 0, sizeof g.st);
    g.st.first_point = -1;
}

static int ext_cb(const char *name, int *failnum, void **failinfo, unsigned *flags)
{
    (void)failnum;
    (void)flags;
    if (g.suspended || !g.armed)
        return 0;
    int pt = fault_point_index(name);
    if (pt < 0)
        return 0;
    g.st.calls[pt]++;
    if (g.counting_only || !(g.fail_points & (1u << pt)))
        return 0;
    uint64_t n = ++g.st.counted;
    int fail = g.plan.mode == FM_PERSISTENT ? n >= g.plan.nth : n == g.plan.nth;
    if (!fail)
        return 0;
    *failinfo = (void *)fault_kind_failinfo(g.plan.kind, (enum fault_point)pt);
    note_injection(pt);
    return 1;
}

static int init_once(void)
{
    static int done;
    if (!done) {
        if (fiu_init(0) != 0)
            return -EIO;
        done = 1;
    }
    return 0;
}
#endif

void fault_disarm(void)
{
#ifdef FIU_ENABLE
    for (int i = 0; i < FP_COUNT; i++)
        fiu_disable(fault_point_names[i]);
#endif
    g.armed = 0;
    g.counting_only = 0;
}


int fault_count_start(void)
{
#ifdef FIU_ENABLE
    int rc = init_once();
    if (rc)
        return rc;
    fault_disarm();
    reset_stats();
    memset(&g.plan, 0, sizeof g.plan);
    g.fail_points = 0;
    g.counting_only = 1;
    g.armed = 1;
    for (int i = 0; i < FP_COUNT; i++)
        if (fiu_enable_external(fault_point_names[i], 1, NULL, 0, ext_cb) != 0)
            return -ENOMEM;
    return 0;
#else
    return -ENOTSUP;
#endif
}

int fault_arm(const struct fault_plan *p)
{
    if ((unsigned)p->kind >= FK_COUNT || (unsigned)p->mode >= FM_COUNT || !fault_plan_points(p) ||
        (p->mode != FM_RANDOM && p->nth == 0) || (p->mode == FM_RANDOM && !(p->probability > 0 && p->probability <= 1)))
        return -EINVAL;
#ifdef FIU_ENABLE
    int rc = init_once();
    if (rc)
        return rc;
    fault_disarm();
    reset_stats();
    g.plan = *p;
    g.fail_points = fault_plan_points(p);
    g.counting_only = 0;
    g.armed = 1;
    if (p->mode == FM_RANDOM)
        fiu_set_prng_seed(p->seed);
    for (int i = 0; i < FP_COUNT; i++) {
        int r;
        if (p->mode == FM_RANDOM && (g.fail_points & (1u << i)))
            r = fiu_enable_random(fault_point_names[i], 1, (void *)fault_kind_failinfo(p->kind, (enum fault_point)i),
                                  0, (float)p->probability);
        else
            r = fiu_enable_external(fault_point_names[i], 1, NULL, 0, ext_cb);
        if (r != 0) {
            fault_disarm();
            return -ENOMEM;
        }
    }
    return 0;
#else
    return -ENOTSUP;
#endif
}
