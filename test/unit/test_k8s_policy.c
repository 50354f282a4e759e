/* test_k8s_policy.c — the pure policy engine with a fake clock: windows, factors per level,
 * step-down, no thrash, clamps, the seed policy alone, resource targets, quantities. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "k8s/k8s.h"
#include "k8s/k8s_internal.h"

/* A fake cluster that follows the floor we recommend (like an HPA whose metric is low). */
typedef struct sim {
    sc_policy p;                /* policy under test */
    k8s_engine e;               /* engine */
    k8s_snapshot s;             /* next snapshot */
    k8s_decision d;             /* last decision */
    int changes;                /* number of desired changes seen */
} sim;

static void sim_init(sim *m, int floor)
{
    memset(m, 0, sizeof *m);
    sc_policy_default(&m->p);
    k8s_engine_init(&m->e);
    m->s.current = floor;
    m->s.floor = floor;
    m->s.ceiling = -1;
    m->s.weight = 1.0;
    m->s.pod_cpu_m = -1;
    m->s.pod_mem = -1;
}

/* One evaluation at t with complexity cx; the cluster then follows the floor. */
static int sim_step(sim *m, double t, double cx)
{
    int before = m->s.floor;

    m->s.now = t;
    m->s.complexity = cx;
    k8s_engine_eval(&m->e, &m->p, &m->s, &m->d);
    m->s.floor = m->d.desired;
    m->s.current = m->d.desired;
    if (m->d.desired != before)
        m->changes++;
    return m->d.desired;
}

/* A follower's engine whose own floor drifted to minReplicas while the leader held the cluster
 * at 4: the cluster's value is the base of every step, so when this pod leads it moves 4 -> 3,
 * never 4 -> 1; and a value someone else set is not undone in one jump either. */
static void steps_from_the_cluster_floor(void **st)
{
    sim m;
    double t, iv;

    (void)st;
    sim_init(&m, 1);
    iv = m.p.eval_interval_s;
    for (t = 0; t < 2 * m.p.down_window_s; t += iv)
        assert_int_equal(sim_step(&m, t, 0), 1);        /* idle: private floor at 1 */
    m.s.floor = m.s.current = 4;                        /* another pod's doing */
    sim_step(&m, t, 0);
    assert_int_equal(m.d.desired, 3);                   /* one replica below what is in force */
    assert_int_equal(m.d.direction, K8S_DIR_DOWN);
    t += iv;
    m.s.floor = m.s.current = 6;                        /* edited by hand, while idle */
    sim_step(&m, t, 0);
    assert_int_equal(m.d.desired, 5);
    for (t += iv; m.s.floor > 1; t += iv) {             /* and from there one step at a time */
        int before = m.s.floor;
        assert_true(sim_step(&m, t, 0) >= before - 1);
    }
}

/* Every quantity the policy accepts, the controller reads as a value > 0, and one it cannot
 * read the policy rejects (both use sc_quantity; the policy also wants at least 1m / 1 byte). */
static void policy_and_controller_read_the_same_quantities(void **st)
{
    static const char *const qs[] = {
        "4", "1500m", "2k", "4000000u", "1Pi", "12Gi", "1Ki", "1Ei", "8Ei", "1E", "1P", "100m", "0.5",
        "1e3", "1E3", "1e", "x", "-1", "0", "1Qi", "+2", ".5", "5.", "1e400", "1n",
    };
    char json[256], err[256];
    sc_policy p;

    (void)st;
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        for (int cpu = 0; cpu < 2; cpu++) {
            int64_t v = cpu ? k8s_cpu_parse(qs[i]) : k8s_mem_parse(qs[i]);
            snprintf(json, sizeof json, "{\"resources\":{\"low\":{\"cpu\":\"%s\",\"memory\":\"%s\"},"
                     "\"medium\":{\"cpu\":\"1\",\"memory\":\"1Gi\"},\"high\":{\"cpu\":\"1\",\"memory\":\"1Gi\"}}}",
                     cpu ? qs[i] : "1", cpu ? "1Gi" : qs[i]);
            int ok = sc_policy_parse(&p, json, strlen(json), err, sizeof err) == 0;
            if (ok && v <= 0)
                fail_msg("%s as %s: the policy accepts it, the controller reads %lld", qs[i],
                         cpu ? "cpu" : "memory", (long long)v);
            if (v < 0 && ok)
                fail_msg("%s as %s: the controller cannot read it", qs[i], cpu ? "cpu" : "memory");
            if (i < 7 && !ok)                 /* the first seven are plain good quantities */
                fail_msg("%s as %s: rejected", qs[i], cpu ? "cpu" : "memory");
        }
    }
}

/* k8s_utf8_trim: a character cut by a byte-counted copy is dropped; whole ones stay. */
static void utf8_trim(void **st)
{
    static const struct { const char *in, *out; } cases[] = {
        {"abc", "abc"}, {"", ""}, {"d\xc3\xa9", "d\xc3\xa9"}, {"d\xc3", "d"},
        {"x\xe2\x82\xac", "x\xe2\x82\xac"}, {"x\xe2\x82", "x"}, {"x\xe2", "x"},
        {"y\xf0\x9f\x98\x80", "y\xf0\x9f\x98\x80"}, {"y\xf0\x9f\x98", "y"}, {"\xc3", ""},
    };
    char buf[16];

    (void)st;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(buf, sizeof buf, "%s", cases[i].in);
        k8s_utf8_trim(buf);
        assert_string_equal(buf, cases[i].out);
    }
}

static void spike_scales_up_only_after_up_window(void **st)
{
    sim m;
    double t, spike = 150, iv;

    (void)st;
    sim_init(&m, 1);
    iv = m.p.eval_interval_s;
    for (t = 0; t < spike; t += iv)
        assert_int_equal(sim_step(&m, t, 0), 1);
    for (; t < spike + m.p.up_window_s; t += iv) {
        assert_int_equal(sim_step(&m, t, 95), 1);
        assert_int_equal(m.d.raw, 2);           /* recommended at once ... */
    }
    assert_int_equal(sim_step(&m, t, 95), 2);   /* ... applied after the window: 1 x 2.0 */
    assert_int_equal(m.d.direction, K8S_DIR_UP);
    assert_non_null(strstr(m.d.reason, "scaleUpScore"));
}

static void factor_per_level(void **st)
{
    static const int want[SC_LEVELS] = {5, 6, 8};   /* ceil(4 x 1.2 / 1.5 / 2.0) */
    int lv;

    (void)st;
    for (lv = SC_LEVEL_LOW; lv <= SC_LEVEL_HIGH; lv++) {
        sim m;
        double t;
        sim_init(&m, 4);
        m.p.scale_up_score = 1;                 /* why: any complexity counts as a spike */
        m.p.up_window_s = 30;
        for (t = 0; t <= 30; t += 15)
            assert_int_equal(sim_step(&m, t, m.p.thresholds[lv]), 4);
        sim_step(&m, t, m.p.thresholds[lv]);   /* a full window after the first high one */
        assert_int_equal(m.d.level, lv);
        assert_int_equal(m.d.desired, want[lv]);
    }
}

static void growing_queue_scales_up_at_low_complexity(void **st)
{
    sim m;
    double t;
    int w = 0;

    (void)st;
    sim_init(&m, 2);
    for (t = 0; t < 400 && m.d.desired <= 2; t += 15) {
        m.s.waiting = ++w;
        m.s.active = w;
        m.s.load = w;
        sim_step(&m, t, 35);
    }
    assert_int_equal(m.d.desired, 3);           /* ceil(2 x 1.2): low level's factor */
    assert_non_null(strstr(m.d.reason, "queue growing"));
}

static void idle_steps_down_one_per_window(void **st)
{
    sim m;
    double t, last_change = 0;
    int prev = 5;

    (void)st;
    sim_init(&m, 5);
    for (t = 0; t <= 3000; t += 15) {
        int d = sim_step(&m, t, 0);
        if (d != prev) {
            assert_int_equal(d, prev - 1);      /* one replica at a time */
            assert_true(t - last_change >= m.p.down_window_s);
            last_change = t;
            prev = d;
        }
    }
    assert_int_equal(prev, 1);                  /* reached minReplicas, not below */
    assert_int_equal(m.changes, 4);
}

/* The longest window a policy may have (SC_WINDOW_EVALS_MAX evaluations: 1 s interval, 1000 s)
 * is kept whole: after a busy stretch at 5, idle from t = 100 steps down only once 1000 s of
 * idle recommendations agree (a ring shorter than the window would forget the busy ones and
 * step down early). */
static void longest_window_is_kept_whole(void **st)
{
    sim m;
    double t, first = -1;
    char err[256];
    char json[128];

    (void)st;
    snprintf(json, sizeof json, "{\"evaluationIntervalSeconds\":1,\"scaleDownStabilizationSeconds\":%d}",
             SC_WINDOW_EVALS_MAX);
    sim_init(&m, 5);
    assert_int_equal(sc_policy_parse(&m.p, json, strlen(json), err, sizeof err), 0);
    for (t = 0; t < 100; t += 1)
        sim_step(&m, t, 50);
    for (; t < 100 + 2 * SC_WINDOW_EVALS_MAX && first < 0; t += 1)
        if (sim_step(&m, t, 0) < 5)
            first = t;
    assert_true(first >= 100 + SC_WINDOW_EVALS_MAX);
    assert_true(first <= 100 + SC_WINDOW_EVALS_MAX + 2);
}

static void busy_but_waiting_does_not_step_down(void **st)
{
    sim m;
    double t;

    (void)st;
    sim_init(&m, 3);
    m.s.waiting = 1;
    for (t = 0; t <= 1200; t += 15)
        assert_int_equal(sim_step(&m, t, 0), 3);
}

static void oscillation_does_not_thrash(void **st)
{
    sim m;
    double t;
    int i = 0;

    (void)st;
    sim_init(&m, 3);
    for (t = 0; t <= 3600; t += 15, i++)
        assert_int_equal(sim_step(&m, t, (i % 4 < 2) ? 95 : 0), 3);
    assert_int_equal(m.changes, 0);
}

static void clamps_hold(void **st)
{
    sim m;
    double t;

    (void)st;
    sim_init(&m, 8);                            /* 8 x 2.0 = 16 > maxReplicas 10 */
    for (t = 0; t <= 600; t += 15)
        assert_true(sim_step(&m, t, 99) <= 10);
    assert_int_equal(m.d.desired, 10);

    sim_init(&m, 4);
    m.s.ceiling = 6;                            /* the HPA's maxReplicas wins */
    for (t = 0; t <= 600; t += 15)
        assert_true(sim_step(&m, t, 99) <= 6);
    assert_int_equal(m.d.desired, 6);

    sim_init(&m, 1);
    m.p.min_replicas = 2;
    assert_int_equal(sim_step(&m, 0, 0), 2);    /* below the policy's floor: raised at once */
    for (t = 15; t <= 2000; t += 15)
        assert_int_equal(sim_step(&m, t, 0), 2);
}

static void seed_policy_alone_works(void **st)
{
    static const char seed[] =
        "{\"complexityThresholds\":{\"low\":30,\"medium\":50,\"high\":80},"
        "\"modelResourceWeights\":{\"qwen2.5:3b\":1.0,\"deepseek-r1\":2.5,\"codellama\":2.0},"
        "\"scaleUpFactors\":{\"low\":1.2,\"medium\":1.5,\"high\":2.0}}";
    char err[256];
    sim m;
    double t;

    (void)st;
    sim_init(&m, 1);
    assert_int_equal(sc_policy_parse(&m.p, seed, sizeof seed - 1, err, sizeof err), 0);
    assert_false(m.p.has_resources);
    for (t = 0; t <= 600; t += m.p.eval_interval_s)
        sim_step(&m, t, 90);
    assert_true(m.d.desired >= 4);              /* 1 -> 2 -> 4 -> ..., one step per window */
    assert_int_equal(m.d.cpu_m, -1);
    for (; t <= 6000; t += m.p.eval_interval_s)
        sim_step(&m, t, 0);
    assert_int_equal(m.d.desired, 1);
}

static void resources_follow_level_and_weight(void **st)
{
    sim m;
    double t;

    (void)st;
    sim_init(&m, 1);
    m.p.has_resources = 1;
    strcpy(m.p.resources[0].cpu, "2");
    strcpy(m.p.resources[0].memory, "8Gi");
    strcpy(m.p.resources[1].cpu, "4");
    strcpy(m.p.resources[1].memory, "12Gi");
    strcpy(m.p.resources[2].cpu, "6");
    strcpy(m.p.resources[2].memory, "16Gi");
    m.s.pod_cpu_m = 4000;                       /* the manifest's medium profile */
    m.s.pod_mem = 12LL << 30;
    sim_step(&m, 0, 0);
    assert_int_equal(m.d.cpu_m, 4000);          /* nothing moves before its window */
    for (t = 15; t <= 300; t += 15) {
        sim_step(&m, t, 0);
        assert_int_equal(m.d.cpu_m, 4000);
    }
    sim_step(&m, 315, 0);
    assert_int_equal(m.d.cpu_m, 2000);          /* low profile after the down window */
    assert_int_equal(m.d.mem, 8LL << 30);
    assert_true(m.d.resources_changed);
    m.s.weight = 2.5;                           /* deepseek-r1: 2 x 2.5 = 5 CPU, 20Gi -> 16Gi */
    for (t = 330; t <= 400; t += 15)
        sim_step(&m, t, 0);
    assert_int_equal(m.d.cpu_m, 5000);
    assert_int_equal(m.d.mem, 16LL << 30);
}

static void quantities(void **st)
{
    char b[32];

    (void)st;
    assert_int_equal(k8s_cpu_parse("4"), 4000);
    assert_int_equal(k8s_cpu_parse("1500m"), 1500);
    assert_int_equal(k8s_cpu_parse("0.5"), 500);
    assert_int_equal(k8s_cpu_parse("x"), -1);
    assert_int_equal(k8s_cpu_parse("-1"), -1);
    assert_int_equal(k8s_mem_parse("12Gi"), 12LL << 30);
    assert_int_equal(k8s_mem_parse("512Mi"), 512LL << 20);
    assert_int_equal(k8s_mem_parse("8G"), 8000000000LL);
    assert_int_equal(k8s_mem_parse("1e3"), 1000);
    assert_int_equal(k8s_mem_parse("1Qi"), -1);
    assert_int_equal(k8s_cpu_parse("2k"), 2000000);
    assert_int_equal(k8s_cpu_parse("4000000u"), 4000);
    assert_int_equal(k8s_cpu_parse("100m"), 100);
    assert_int_equal(k8s_cpu_parse("+1.5"), 1500);
    assert_int_equal(k8s_mem_parse("1Pi"), 1LL << 50);
    assert_int_equal(k8s_mem_parse("1.1G"), 1100000000LL);
    assert_int_equal(k8s_mem_parse("129e6"), 129000000LL);
    assert_int_equal(k8s_mem_parse("1E"), 1000000000000000000LL);
    assert_int_equal(k8s_mem_parse("8Ei"), -1);             /* past int64 */
    assert_int_equal(k8s_mem_parse("1e"), -1);
    assert_int_equal(k8s_mem_parse("1e 3"), -1);
    assert_int_equal(k8s_mem_parse("0x10"), -1);
    assert_int_equal(k8s_mem_parse(""), -1);
    k8s_cpu_format(4000, b, sizeof b);
    assert_string_equal(b, "4");
    k8s_cpu_format(1500, b, sizeof b);
    assert_string_equal(b, "1500m");
    k8s_mem_format(16LL << 30, b, sizeof b);
    assert_string_equal(b, "16Gi");
    k8s_mem_format(1536LL << 20, b, sizeof b);
    assert_string_equal(b, "1536Mi");
    k8s_mem_format(1000, b, sizeof b);
    assert_string_equal(b, "1000");
}

static void modes(void **st)
{
    k8s_mode m;

    (void)st;
    assert_int_equal(k8s_mode_parse("dry-run", &m), 0);
    assert_int_equal(m, K8S_MODE_DRY_RUN);
    assert_int_equal(k8s_mode_parse("auto", &m), 0);
    assert_int_equal(m, K8S_MODE_AUTO);
    assert_int_equal(k8s_mode_parse("yes", &m), -1);
    assert_string_equal(k8s_mode_name(K8S_MODE_ON), "on");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(spike_scales_up_only_after_up_window),
        cmocka_unit_test(factor_per_level),
        cmocka_unit_test(growing_queue_scales_up_at_low_complexity),
        cmocka_unit_test(idle_steps_down_one_per_window),
        cmocka_unit_test(longest_window_is_kept_whole),
        cmocka_unit_test(busy_but_waiting_does_not_step_down),
        cmocka_unit_test(oscillation_does_not_thrash),
        cmocka_unit_test(clamps_hold),
        cmocka_unit_test(seed_policy_alone_works),
        cmocka_unit_test(resources_follow_level_and_weight),
        cmocka_unit_test(quantities),
        cmocka_unit_test(modes),
        cmocka_unit_test(steps_from_the_cluster_floor),
        cmocka_unit_test(utf8_trim),
        cmocka_unit_test(policy_and_controller_read_the_same_quantities),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
