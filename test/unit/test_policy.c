/* test_policy.c — policy parsing (seed keys, extensions, defaults), one test per error class
 * with its one-line message, printing that re-parses to the same policy, and loading files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "scoring/scoring.h"

#define ERR_MAX 512             /* error buffer used by the tests */

static const char *const seed =
    "{\n"
    "  \"complexityThresholds\": { \"low\": 30, \"medium\": 50, \"high\": 80 },\n"
    "  \"modelResourceWeights\": { \"qwen2.5:3b\": 1.0, \"deepseek-r1\": 2.5, \"codellama\": 2.0 },\n"
    "  \"scaleUpFactors\": { \"low\": 1.2, \"medium\": 1.5, \"high\": 2.0 }\n"
    "}\n";

static const char *const full =
    "{\"complexityThresholds\":{\"low\":20,\"medium\":45.5,\"high\":90},"
    "\"modelResourceWeights\":{\"llama3\":1.25,\"mix\\\"tral\":3},"
    "\"scaleUpFactors\":{\"low\":1,\"medium\":1.7,\"high\":3},"
    "\"minReplicas\":0,\"maxReplicas\":7,\"scaleUpStabilizationSeconds\":1.5,"
    "\"scaleDownStabilizationSeconds\":0,\"evaluationIntervalSeconds\":0.25,\"scaleUpScore\":61,"
    "\"resources\":{\"low\":{\"cpu\":\"500m\",\"memory\":\"1Gi\"},\"medium\":{\"cpu\":2,\"memory\":\"3e9\"},"
    "\"high\":{\"cpu\":\"2.5\",\"memory\":\"16Gi\"}},"
    "\"keywords\":[\"Migrate\",\"k8s\"],\"complexityHalfLifeSeconds\":12.5}";

/* Semantic equality of two policies (bytes past a string's NUL do not matter). */
static int policy_equal(const sc_policy *a, const sc_policy *b)
{
    if (memcmp(a->thresholds, b->thresholds, sizeof a->thresholds) ||
        memcmp(a->scale_up, b->scale_up, sizeof a->scale_up) || a->nweights != b->nweights ||
        a->min_replicas != b->min_replicas || a->max_replicas != b->max_replicas ||
        a->up_window_s != b->up_window_s || a->down_window_s != b->down_window_s ||
        a->eval_interval_s != b->eval_interval_s || a->scale_up_score != b->scale_up_score ||
        a->has_resources != b->has_resources || a->nkeywords != b->nkeywords ||
        a->half_life_s != b->half_life_s)
        return 0;
    for (int i = 0; i < a->nweights; i++)
        if (strcmp(a->weights[i].prefix, b->weights[i].prefix) || a->weights[i].weight != b->weights[i].weight)
            return 0;
    for (int i = 0; a->has_resources && i < SC_LEVELS; i++)
        if (strcmp(a->resources[i].cpu, b->resources[i].cpu) || strcmp(a->resources[i].memory, b->resources[i].memory))
            return 0;
    for (int i = 0; i < a->nkeywords; i++)
        if (strcmp(a->keywords[i], b->keywords[i])) return 0;
    return 1;
}

static int parse(sc_policy *p, const char *json, char *err)
{
    err[0] = '\0';
    return sc_policy_parse(p, json, strlen(json), err, ERR_MAX);
}

/* Parse must fail with exactly this one-line message, leaving the defaults. */
static void expect_error(const char *json, const char *msg)
{
    sc_policy p, d;
    char err[ERR_MAX];
    sc_policy_default(&d);
    if (parse(&p, json, err) != -1) fail_msg("accepted: %s", json);
    if (strcmp(err, msg) != 0) fail_msg("for %s\n got: %s\nwant: %s", json, err, msg);
    assert_null(strchr(err, '\n'));
    assert_true(policy_equal(&p, &d));
}

static void seed_keys_alone_accepted(void **state)
{
    sc_policy p, d;
    char err[ERR_MAX];
    (void)state;
    assert_int_equal(parse(&p, seed, err), 0);
    sc_policy_default(&d);
    assert_true(policy_equal(&p, &d));          /* the seed is the default */
    assert_int_equal(parse(&p, "{}", err), 0);
    assert_true(policy_equal(&p, &d));
}

static void extension_defaults(void **state)
{
    sc_policy p;
    (void)state;
    sc_policy_default(&p);
    assert_true(p.thresholds[0] == 30 && p.thresholds[1] == 50 && p.thresholds[2] == 80);
    assert_true(p.scale_up[0] == 1.2 && p.scale_up[1] == 1.5 && p.scale_up[2] == 2.0);
    assert_int_equal(p.nweights, 3);
    assert_int_equal(p.min_replicas, 1);
    assert_int_equal(p.max_replicas, 10);
    assert_true(p.up_window_s == 60 && p.down_window_s == 300);
    assert_true(p.eval_interval_s == 15 && p.scale_up_score == 70);
    assert_int_equal(p.has_resources, 0);
    assert_int_equal(p.nkeywords, 0);
    assert_true(p.half_life_s == 30);
}

static void every_key_parsed(void **state)
{
    sc_policy p;
    char err[ERR_MAX];
    (void)state;
    assert_int_equal(parse(&p, full, err), 0);
    assert_true(p.thresholds[1] == 45.5);
    assert_int_equal(p.nweights, 2);
    assert_string_equal(p.weights[1].prefix, "mix\"tral");
    assert_true(p.scale_up[0] == 1);
    assert_int_equal(p.min_replicas, 0);
    assert_int_equal(p.max_replicas, 7);
    assert_true(p.up_window_s == 1.5 && p.down_window_s == 0 && p.eval_interval_s == 0.25);
    assert_true(p.scale_up_score == 61);
    assert_int_equal(p.has_resources, 1);
    assert_string_equal(p.resources[0].cpu, "500m");
    assert_string_equal(p.resources[1].cpu, "2");
    assert_string_equal(p.resources[1].memory, "3e9");
    assert_int_equal(p.nkeywords, 2);
    assert_string_equal(p.keywords[0], "migrate");
    assert_true(p.half_life_s == 12.5);
}

static void error_unknown_keys(void **state)
{
    (void)state;
    expect_error("{\"complexityThreshold\":{}}", "policy: complexityThreshold: unknown key");
    expect_error("{\"complexityThresholds\":{\"low\":1,\"medium\":2,\"high\":3,\"max\":4}}",
                 "policy: complexityThresholds.max: unknown key (expected low, medium, high)");
    expect_error("{\"resources\":{\"low\":{\"cpu\":\"1\",\"memory\":\"1Gi\",\"gpu\":\"1\"}}}",
                 "policy: resources.low.gpu: unknown key (expected cpu, memory)");
}

static void error_wrong_types(void **state)
{
    (void)state;
    expect_error("{\"scaleUpFactors\":[1,2,3]}",
                 "policy: scaleUpFactors: must be an object with low, medium, high");
    expect_error("{\"complexityThresholds\":{\"low\":\"30\",\"medium\":50,\"high\":80}}",
                 "policy: complexityThresholds.low: must be a number between 0 and 100");
    expect_error("{\"minReplicas\":\"2\"}", "policy: minReplicas: must be an integer ≥ 0");
    expect_error("{\"maxReplicas\":2.5}", "policy: maxReplicas: must be an integer ≥ 1");
    expect_error("{\"modelResourceWeights\":{\"llama\":\"big\"}}",
                 "policy: modelResourceWeights.llama: must be a number > 0");
    expect_error("{\"keywords\":\"design\"}", "policy: keywords: must be an array of strings");
    expect_error("{\"keywords\":[\"ok\",7]}",
                 "policy: keywords[1]: must be one word of ASCII letters/digits, 1-31 characters");
    expect_error("{\"resources\":{\"low\":\"small\"}}",
                 "policy: resources.low: must be an object with cpu and memory");
}

static void error_thresholds_out_of_order(void **state)
{
    (void)state;
    expect_error("{\"complexityThresholds\":{\"low\":60,\"medium\":50,\"high\":80}}",
                 "policy: complexityThresholds.medium: must be greater than low (60)");
    expect_error("{\"complexityThresholds\":{\"low\":10,\"medium\":50,\"high\":50}}",
                 "policy: complexityThresholds.high: must be greater than medium (50)");
}

static void error_thresholds_outside_range(void **state)
{
    (void)state;
    expect_error("{\"complexityThresholds\":{\"low\":-1,\"medium\":50,\"high\":80}}",
                 "policy: complexityThresholds.low: must be a number between 0 and 100");
    expect_error("{\"complexityThresholds\":{\"low\":30,\"medium\":50,\"high\":100.5}}",
                 "policy: complexityThresholds.high: must be a number between 0 and 100");
    expect_error("{\"scaleUpScore\":101}", "policy: scaleUpScore: must be a number between 0 and 100");
}

static void error_missing_level(void **state)
{
    (void)state;
    expect_error("{\"complexityThresholds\":{\"low\":30,\"high\":80}}",
                 "policy: complexityThresholds.medium: missing");
    expect_error("{\"resources\":{\"low\":{\"cpu\":\"1\"}}}", "policy: resources.low.memory: missing");
}

static void error_factors_below_one(void **state)
{
    (void)state;
    expect_error("{\"scaleUpFactors\":{\"low\":1.2,\"medium\":1.5,\"high\":0.5}}",
                 "policy: scaleUpFactors.high: must be a number ≥ 1");
}

static void error_replica_bounds(void **state)
{
    (void)state;
    expect_error("{\"minReplicas\":5,\"maxReplicas\":4}", "policy: minReplicas: must be ≤ maxReplicas (4)");
    expect_error("{\"minReplicas\":-1}", "policy: minReplicas: must be an integer ≥ 0");
    expect_error("{\"maxReplicas\":0}", "policy: maxReplicas: must be an integer ≥ 1");
    expect_error("{\"minReplicas\":11}", "policy: minReplicas: must be ≤ maxReplicas (10)");
}

static void error_windows_and_interval(void **state)
{
    (void)state;
    expect_error("{\"scaleUpStabilizationSeconds\":-1}", "policy: scaleUpStabilizationSeconds: must be a number ≥ 0");
    expect_error("{\"scaleDownStabilizationSeconds\":-0.5}", "policy: scaleDownStabilizationSeconds: must be a number ≥ 0");
    expect_error("{\"evaluationIntervalSeconds\":0}", "policy: evaluationIntervalSeconds: must be a number > 0");
    expect_error("{\"evaluationIntervalSeconds\":-3}", "policy: evaluationIntervalSeconds: must be a number > 0");
    expect_error("{\"complexityHalfLifeSeconds\":0}", "policy: complexityHalfLifeSeconds: must be a number > 0");
    /* a window longer than the controller's memory of recommendations (SC_WINDOW_EVALS_MAX) */
    expect_error("{\"evaluationIntervalSeconds\":1,\"scaleDownStabilizationSeconds\":1800}",
                 "policy: scaleDownStabilizationSeconds: must span at most 1000 evaluations (1000 s at evaluationIntervalSeconds 1)");
    expect_error("{\"scaleUpStabilizationSeconds\":15001}",
                 "policy: scaleUpStabilizationSeconds: must span at most 1000 evaluations (15000 s at evaluationIntervalSeconds 15)");
}

static void error_bad_quantities(void **state)
{
    static const char *const bad[] = { "4 cores", "", "-1", "0", "12GiB", "1.2.3", "Gi", "0m", "1e", "2x",
                                       "8Ei", "100m", "1e 3", "0x10", "1e400" };   /* the controller could not apply these */
    char json[256], want[256];
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(json, sizeof json, "{\"resources\":{\"low\":{\"cpu\":\"1\",\"memory\":\"%s\"}}}", bad[i]);
        snprintf(want, sizeof want, "policy: resources.low.memory: must be a Kubernetes quantity > 0 such as \"4\", \"1500m\" or \"12Gi\"");
        expect_error(json, want);
    }
    expect_error("{\"resources\":{\"low\":{\"cpu\":\"1\",\"memory\":\"1Gi\"},\"medium\":{\"cpu\":\"1\",\"memory\":\"1Gi\"}}}",
                 "policy: resources.high: missing");
}

static void error_weights_and_keywords(void **state)
{
    (void)state;
    /* a key with control bytes still gives one line */
    expect_error("{\"foo\\nbar\":1}", "policy: foo?bar: unknown key");
    expect_error("{\"modelResourceWeights\":{\"a\\u001bb\":0}}", "policy: modelResourceWeights.a?b: must be a number > 0");
    expect_error("{\"modelResourceWeights\":{\"llama\":0}}", "policy: modelResourceWeights.llama: must be a number > 0");
    expect_error("{\"keywords\":[\"two words\"]}",
                 "policy: keywords[0]: must be one word of ASCII letters/digits, 1-31 characters");
    expect_error("{\"keywords\":[\"\"]}",
                 "policy: keywords[0]: must be one word of ASCII letters/digits, 1-31 characters");
    expect_error("{\"keywords\":[\"abcdefghijabcdefghijabcdefghijab\"]}",
                 "policy: keywords[0]: must be one word of ASCII letters/digits, 1-31 characters");
}

static void error_not_json(void **state)
{
    sc_policy p;
    char err[ERR_MAX];
    (void)state;
    assert_int_equal(parse(&p, "{\"minReplicas\": 1,", err), -1);
    assert_int_equal(strncmp(err, "policy: (document): invalid JSON at line 1", 42), 0);
    assert_null(strchr(err, '\n'));
    assert_int_equal(parse(&p, "{\"minReplicas\":1,\"minReplicas\":2}", err), -1);  /* duplicate */
    assert_int_equal(strncmp(err, "policy: (document): ", 20), 0);
    expect_error("[1]", "policy: (root): must be a JSON object");
}

/* print → parse gives the same policy, and printing that again gives the same text */
static void print_reparses_to_same_policy(void **state)
{
    static const char *const docs[] = { "{}", NULL, NULL,
        "{\"modelResourceWeights\":{},\"scaleUpFactors\":{\"low\":1.1,\"medium\":1.3333333333333333,\"high\":10}}" };
    const char *list[4] = { docs[0], seed, full, docs[3] };
    (void)state;
    for (size_t i = 0; i < 4; i++) {
        sc_policy a, b;
        char err[ERR_MAX], *t1 = NULL, *t2 = NULL;
        size_t n1 = 0, n2 = 0;
        assert_int_equal(parse(&a, list[i], err), 0);
        FILE *f = open_memstream(&t1, &n1);
        sc_policy_print(&a, f);
        fclose(f);
        if (sc_policy_parse(&b, t1, n1, err, ERR_MAX) != 0) fail_msg("%s\n%s", err, t1);
        assert_true(policy_equal(&a, &b));
        f = open_memstream(&t2, &n2);
        sc_policy_print(&b, f);
        fclose(f);
        assert_string_equal(t1, t2);
        free(t1);
        free(t2);
    }
}

static void load_from_file(void **state)
{
    char path[] = "/tmp/test_policy_XXXXXX", err[ERR_MAX];
    sc_policy p;
    (void)state;
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, full, strlen(full)), (ssize_t)strlen(full));
    close(fd);
    assert_int_equal(sc_policy_load(&p, path, err, sizeof err), 0);
    assert_int_equal(p.max_replicas, 7);
    unlink(path);
    assert_int_equal(sc_policy_load(&p, path, err, sizeof err), -1);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "cannot open"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(seed_keys_alone_accepted),
        cmocka_unit_test(extension_defaults),
        cmocka_unit_test(every_key_parsed),
        cmocka_unit_test(error_unknown_keys),
        cmocka_unit_test(error_wrong_types),
        cmocka_unit_test(error_thresholds_out_of_order),
        cmocka_unit_test(error_thresholds_outside_range),
        cmocka_unit_test(error_missing_level),
        cmocka_unit_test(error_factors_below_one),
        cmocka_unit_test(error_replica_bounds),
        cmocka_unit_test(error_windows_and_interval),
        cmocka_unit_test(error_bad_quantities),
        cmocka_unit_test(error_weights_and_keywords),
        cmocka_unit_test(error_not_json),
        cmocka_unit_test(print_reparses_to_same_policy),
        cmocka_unit_test(load_from_file),
    };
    return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}
