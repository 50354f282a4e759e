/* test_metrics.c — the registry and its exposition text: golden output, histogram invariants,
 * label escaping, cardinality caps, the decayed complexity gauge (with an injected clock). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <event2/buffer.h>
#include "metrics/metrics.h"

static double fake_now;                 /* the injected clock */
static double fake_clock(void) { return fake_now; }

/* Reset the registry at time t with the fake clock. */
static void reset(double t)
{
    fake_now = t;
    mx_set_clock(fake_clock);
    mx_set_collector(NULL, NULL);
    mx_init(t, 1700000000.5, "1.2.3");
}

/* The exposition at time now as a NUL-terminated malloc'd string. */
static char *render(double now)
{
    struct evbuffer *b = evbuffer_new();
    size_t n;
    char *s;
    mx_render(b, now);
    n = evbuffer_get_length(b);
    s = malloc(n + 1);
    evbuffer_remove(b, s, n);
    s[n] = '\0';
    evbuffer_free(b);
    return s;
}

/* The exposition without the process_* families (they vary from run to run). */
static char *render_stable(double now)
{
    char *all = render(now), *out = malloc(strlen(all) + 1), *o = out;
    for (char *line = all; *line;) {
        char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) + 1 : strlen(line);
        if (strncmp(line, "process_", 8) != 0 && strncmp(line, "# HELP process_", 15) != 0 &&
            strncmp(line, "# TYPE process_", 15) != 0) {
            memcpy(o, line, len);
            o += len;
        }
        line += len;
    }
    *o = '\0';
    free(all);
    return out;
}

/* Value of the sample line that starts with `prefix ` (name plus labels), or -1. */
static double sample(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL)
        if (strncmp(l, prefix, n) == 0 && l[n] == ' ')
            return strtod(l + n + 1, NULL);
    return -1;
}

static const char golden[] =
    "# HELP litebrain_complexity_score Time-decayed average of recent request complexity scores"
    " (0-100); falls to 0 when idle.\n"
    "# TYPE litebrain_complexity_score gauge\n"
    "litebrain_complexity_score 51\n"
    "# HELP litebrain_active_requests Requests in flight.\n"
    "# TYPE litebrain_active_requests gauge\n"
    "litebrain_active_requests 1\n"
    "# HELP litebrain_waiting_requests Requests sent upstream that have not received a response"
    " byte yet.\n"
    "# TYPE litebrain_waiting_requests gauge\n"
    "litebrain_waiting_requests 1\n"
    "# HELP litebrain_requests_total Finished requests by complexity level and HTTP status sent"
    " (499 = client left).\n"
    "# TYPE litebrain_requests_total counter\n"
    "litebrain_requests_total{complexity=\"none\",status=\"404\"} 1\n"
    "litebrain_requests_total{complexity=\"none\",status=\"502\"} 1\n"
    "litebrain_requests_total{complexity=\"low\",status=\"499\"} 1\n"
    "litebrain_requests_total{complexity=\"high\",status=\"200\"} 2\n"
    "# HELP litebrain_request_duration_seconds Request start to last byte, by complexity level.\n"
    "# TYPE litebrain_request_duration_seconds histogram\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"none\",le=\"0.05\"} 2\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"none\",le=\"0.1\"} 2\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"none\",le=\"0.25\"} 2\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"none\",le=\"0.5\"} 2\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"none\",le=\"1\"} 2\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"none\",le=\"2.5\"} 2\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"none\",le=\"5\"} 2\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"none\",le=\"10\"} 2\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"none\",le=\"30\"} 2\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"none\",le=\"60\"} 2\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"none\",le=\"120\"} 2\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"none\",le=\"300\"} 2\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"none\",le=\"+Inf\"} 2\n"
    "litebrain_request_duration_seconds_sum{complexity=\"none\"} 0.01171875\n"
    "litebrain_request_duration_seconds_count{complexity=\"none\"} 2\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"low\",le=\"0.05\"} 0\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"low\",le=\"0.1\"} 0\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"low\",le=\"0.25\"} 0\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"low\",le=\"0.5\"} 0\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"low\",le=\"1\"} 0\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"low\",le=\"2.5\"} 0\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"low\",le=\"5\"} 0\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"low\",le=\"10\"} 0\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"low\",le=\"30\"} 0\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"low\",le=\"60\"} 0\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"low\",le=\"120\"} 0\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"low\",le=\"300\"} 0\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"low\",le=\"+Inf\"} 1\n"
    "litebrain_request_duration_seconds_sum{complexity=\"low\"} 400\n"
    "litebrain_request_duration_seconds_count{complexity=\"low\"} 1\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"medium\",le=\"0.05\"} 0\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"medium\",le=\"0.1\"} 0\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"medium\",le=\"0.25\"} 0\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"medium\",le=\"0.5\"} 0\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"medium\",le=\"1\"} 0\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"medium\",le=\"2.5\"} 0\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"medium\",le=\"5\"} 0\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"medium\",le=\"10\"} 0\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"medium\",le=\"30\"} 0\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"medium\",le=\"60\"} 0\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"medium\",le=\"120\"} 0\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"medium\",le=\"300\"} 0\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"medium\",le=\"+Inf\"} 0\n"
    "litebrain_request_duration_seconds_sum{complexity=\"medium\"} 0\n"
    "litebrain_request_duration_seconds_count{complexity=\"medium\"} 0\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"high\",le=\"0.05\"} 0\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"high\",le=\"0.1\"} 0\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"high\",le=\"0.25\"} 0\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"high\",le=\"0.5\"} 0\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"high\",le=\"1\"} 0\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"high\",le=\"2.5\"} 1\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"high\",le=\"5\"} 1\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"high\",le=\"10\"} 1\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"high\",le=\"30\"} 2\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"high\",le=\"60\"} 2\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"high\",le=\"120\"} 2\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"high\",le=\"300\"} 2\n"
    "litebrain_request_duration_seconds_bucket{complexity=\"high\",le=\"+Inf\"} 2\n"
    "litebrain_request_duration_seconds_sum{complexity=\"high\"} 31.5\n"
    "litebrain_request_duration_seconds_count{complexity=\"high\"} 2\n"
    "# HELP litebrain_request_complexity Complexity score (0-100) of each scored request.\n"
    "# TYPE litebrain_request_complexity histogram\n"
    "litebrain_request_complexity_bucket{le=\"10\"} 0\n"
    "litebrain_request_complexity_bucket{le=\"20\"} 0\n"
    "litebrain_request_complexity_bucket{le=\"30\"} 1\n"
    "litebrain_request_complexity_bucket{le=\"40\"} 1\n"
    "litebrain_request_complexity_bucket{le=\"50\"} 1\n"
    "litebrain_request_complexity_bucket{le=\"60\"} 1\n"
    "litebrain_request_complexity_bucket{le=\"70\"} 1\n"
    "litebrain_request_complexity_bucket{le=\"80\"} 2\n"
    "litebrain_request_complexity_bucket{le=\"90\"} 2\n"
    "litebrain_request_complexity_bucket{le=\"100\"} 2\n"
    "litebrain_request_complexity_bucket{le=\"+Inf\"} 2\n"
    "litebrain_request_complexity_sum 102\n"
    "litebrain_request_complexity_count 2\n"
    "# HELP litebrain_time_to_first_token_seconds Request start to first response body byte of"
    " streamed responses.\n"
    "# TYPE litebrain_time_to_first_token_seconds histogram\n"
    "litebrain_time_to_first_token_seconds_bucket{le=\"0.05\"} 0\n"
    "litebrain_time_to_first_token_seconds_bucket{le=\"0.1\"} 0\n"
    "litebrain_time_to_first_token_seconds_bucket{le=\"0.25\"} 1\n"
    "litebrain_time_to_first_token_seconds_bucket{le=\"0.5\"} 1\n"
    "litebrain_time_to_first_token_seconds_bucket{le=\"1\"} 1\n"
    "litebrain_time_to_first_token_seconds_bucket{le=\"2.5\"} 1\n"
    "litebrain_time_to_first_token_seconds_bucket{le=\"5\"} 1\n"
    "litebrain_time_to_first_token_seconds_bucket{le=\"10\"} 1\n"
    "litebrain_time_to_first_token_seconds_bucket{le=\"30\"} 1\n"
    "litebrain_time_to_first_token_seconds_bucket{le=\"60\"} 1\n"
    "litebrain_time_to_first_token_seconds_bucket{le=\"120\"} 2\n"
    "litebrain_time_to_first_token_seconds_bucket{le=\"300\"} 2\n"
    "litebrain_time_to_first_token_seconds_bucket{le=\"+Inf\"} 2\n"
    "litebrain_time_to_first_token_seconds_sum 90.25\n"
    "litebrain_time_to_first_token_seconds_count 2\n"
    "# HELP litebrain_time_per_output_token_seconds Mean generation time per output token of each"
    " request that reported one.\n"
    "# TYPE litebrain_time_per_output_token_seconds histogram\n"
    "litebrain_time_per_output_token_seconds_bucket{le=\"0.005\"} 0\n"
    "litebrain_time_per_output_token_seconds_bucket{le=\"0.01\"} 0\n"
    "litebrain_time_per_output_token_seconds_bucket{le=\"0.02\"} 1\n"
    "litebrain_time_per_output_token_seconds_bucket{le=\"0.05\"} 1\n"
    "litebrain_time_per_output_token_seconds_bucket{le=\"0.1\"} 1\n"
    "litebrain_time_per_output_token_seconds_bucket{le=\"0.25\"} 1\n"
    "litebrain_time_per_output_token_seconds_bucket{le=\"0.5\"} 1\n"
    "litebrain_time_per_output_token_seconds_bucket{le=\"1\"} 1\n"
    "litebrain_time_per_output_token_seconds_bucket{le=\"2.5\"} 1\n"
    "litebrain_time_per_output_token_seconds_bucket{le=\"+Inf\"} 1\n"
    "litebrain_time_per_output_token_seconds_sum 0.015625\n"
    "litebrain_time_per_output_token_seconds_count 1\n"
    "# HELP litebrain_prompt_tokens_total Prompt (input) tokens reported by the upstream, by"
    " model.\n"
    "# TYPE litebrain_prompt_tokens_total counter\n"
    "litebrain_prompt_tokens_total{model=\"qwen2.5:3b\"} 36\n"
    "litebrain_prompt_tokens_total{model=\"deepseek-r1:7b\"} 0\n"
    "# HELP litebrain_output_tokens_total Output (generated) tokens reported by the upstream, by"
    " model.\n"
    "# TYPE litebrain_output_tokens_total counter\n"
    "litebrain_output_tokens_total{model=\"qwen2.5:3b\"} 328\n"
    "litebrain_output_tokens_total{model=\"deepseek-r1:7b\"} 7\n"
    "# HELP litebrain_upstream_errors_total Failed upstream exchanges by reason.\n"
    "# TYPE litebrain_upstream_errors_total counter\n"
    "litebrain_upstream_errors_total{reason=\"connect\"} 1\n"
    "litebrain_upstream_errors_total{reason=\"reset\"} 0\n"
    "litebrain_upstream_errors_total{reason=\"broken\"} 0\n"
    "litebrain_upstream_errors_total{reason=\"timeout\"} 0\n"
    "litebrain_upstream_errors_total{reason=\"protocol\"} 0\n"
    "# HELP litebrain_scale_hints_dropped_total Scale hints dropped because the controller queue"
    " was full.\n"
    "# TYPE litebrain_scale_hints_dropped_total counter\n"
    "litebrain_scale_hints_dropped_total 2\n"
    "# HELP litebrain_build_info Build information; always 1.\n"
    "# TYPE litebrain_build_info gauge\n"
    "litebrain_build_info{version=\"1.2.3\"} 1\n"
    "# HELP test_extra A collector family.\n"
    "# TYPE test_extra gauge\n"
    "test_extra 7\n";

/* A collector that writes one family. */
static void extra(struct evbuffer *out, void *ud)
{
    evbuffer_add_printf(out, "# HELP test_extra A collector family.\n# TYPE test_extra gauge\n"
                        "test_extra %d\n", *(int *)ud);
}

/* A known sequence of events renders to exactly the golden text. */
static void test_golden(void **state)
{
    static int seven = 7;
    char *text;
    (void)state;
    reset(100);
    mx_set_collector(extra, &seven);
    mx_active_add(1);                   /* a scored, streamed request that finishes */
    mx_cx_hold(1);
    mx_waiting_add(1);
    mx_score_observe(72, 100);
    mx_waiting_add(-1);
    mx_ttft_observe(0.25);
    mx_tpot_observe(0.015625);
    mx_tokens_add("qwen2.5:3b", 26, 298);
    mx_request_done(MX_CX_HIGH, 200, 1.5);
    mx_active_add(-1);
    mx_cx_hold(-1);
    mx_active_add(1);                   /* a second one, scored 30, slow first token */
    mx_cx_hold(1);
    mx_score_observe(30, 100);
    mx_ttft_observe(90);
    mx_tokens_add("qwen2.5:3b", 10, 30);
    mx_request_done(MX_CX_HIGH, 200, 30);
    mx_tokens_add("deepseek-r1:7b", 0, 7);
    mx_request_done(MX_CX_NONE, 404, 0.0078125);   /* unscored 404 */
    mx_request_done(MX_CX_LOW, 499, 400);       /* client left after 400 s */
    mx_upstream_error(MX_UPERR_CONNECT);        /* upstream down: proxy-made 502 */
    mx_request_done(MX_CX_NONE, 502, 0.00390625);
    mx_hint_dropped();
    mx_hint_dropped();
    mx_waiting_add(1);                  /* one still in flight, waiting for its first byte */
    /* complexity: two scores at the same instant, (72 + 30) / 2 = 51, not idle */
    text = render_stable(100);
    if (strcmp(text, golden) != 0)
        fprintf(stderr, "got:\n%s", text);
    assert_string_equal(text, golden);
    free(text);
    mx_set_collector(NULL, NULL);
}

/* Every histogram: buckets cumulative, +Inf equal to _count; text ends with a newline. */
static void test_histogram_invariants(void **state)
{
    uint32_t r = 12345;
    char *text;
    int checked = 0;
    (void)state;
    reset(0);
    for (int i = 0; i < 5000; i++) {
        r = r * 1103515245u + 12345u;
        double v = (double)(r >> 8) / (1 << 24) * 500.0;
        mx_request_done((mx_cx)(r % MX_CX_COUNT), 200 + (int)(r % 3), v);
        mx_ttft_observe(v / 2);
        mx_tpot_observe(v / 400);
        mx_score_observe((int)(r % 101), i);
    }
    text = render(5000);
    assert_int_equal(text[strlen(text) - 1], '\n');
    for (char *l = text; *l; l = strchr(l, '\n') + 1) {
        char name[256], labels[256], want[600];
        char *inf = strstr(l, "le=\"+Inf\"}");
        char *b = strstr(l, "_bucket{");
        if (!inf || !b || inf > strchr(l, '\n'))
            continue;
        snprintf(name, sizeof name, "%.*s", (int)(b - l), l);
        /* labels other than le, e.g. complexity="low", */
        snprintf(labels, sizeof labels, "%.*s", (int)(inf - (b + 8)), b + 8);
        if (*labels)
            labels[strlen(labels) - 1] = '\0';
        snprintf(want, sizeof want, "%s_count%s%s%s", name, *labels ? "{" : "", labels,
                 *labels ? "}" : "");
        assert_true(sample(text, want) >= 0);
        assert_float_equal(strtod(inf + 11, NULL), sample(text, want), 0);
        checked++;
    }
    assert_int_equal(checked, MX_CX_COUNT + 3);
    /* cumulative: within a series (same name and labels before le) values never decrease */
    {
        char series[300] = "";
        double prev = 0;
        for (char *l = text; *l; l = strchr(l, '\n') + 1) {
            char *le = strstr(l, "le=\"");
            if (!strstr(l, "_bucket{") || !le || le > strchr(l, '\n'))
                continue;
            double v = strtod(strchr(l, ' ') + 1, NULL);
            if ((size_t)(le - l) >= sizeof series || strncmp(series, l, (size_t)(le - l)) != 0 ||
                series[le - l] != '\0') {
                snprintf(series, sizeof series, "%.*s", (int)(le - l), l);
                prev = 0;
            }
            assert_true(v >= prev);
            prev = v;
        }
    }
    free(text);
}

/* Hostile label values are escaped; newline, quote and backslash never leak raw. */
static void test_escaping(void **state)
{
    char *text;
    (void)state;
    reset(0);
    mx_tokens_add("a\"b\\c\nd", 1, 2);
    mx_init(0, 0, "v\"1\\\n");
    mx_tokens_add("a\"b\\c\nd", 1, 2);
    text = render(0);
    assert_non_null(strstr(text, "litebrain_prompt_tokens_total{model=\"a\\\"b\\\\c\\nd\"} 1\n"));
    assert_non_null(strstr(text, "litebrain_output_tokens_total{model=\"a\\\"b\\\\c\\nd\"} 2\n"));
    assert_non_null(strstr(text, "litebrain_build_info{version=\"v\\\"1\\\\\\n\"} 1\n"));
    free(text);
}

/* Invalid UTF-8 becomes '?', long names are cut at a character boundary, "" is "unknown"; a
 * name seen again (raw, or already clean) finds the same slot. */
static void test_model_names(void **state)
{
    char *text, longname[300];
    (void)state;
    reset(0);
    mx_tokens_add("bad\xff\xc3_name", 1, 0);
    memset(longname, 'x', sizeof longname);
    memcpy(longname + MX_MODEL_NAME_MAX - 3, "\xc3\xa9\xc3\xa9", 4);   /* é straddles the cut */
    longname[sizeof longname - 1] = '\0';
    mx_tokens_add(longname, 2, 0);
    mx_tokens_add("", 3, 0);
    mx_tokens_add(NULL, 4, 0);
    mx_tokens_add("bad\xff\xc3_name", 10, 0);
    mx_tokens_add("bad?\?_name", 100, 0);
    mx_tokens_add(longname, 20, 0);
    text = render(0);
    assert_non_null(strstr(text, "{model=\"bad?\?_name\"} 111\n"));
    assert_non_null(strstr(text, "{model=\"unknown\"} 7\n"));
    {
        char want[300];
        snprintf(want, sizeof want, "{model=\"%.*s\xc3\xa9\"} 22\n", MX_MODEL_NAME_MAX - 3,
                 longname);
        assert_non_null(strstr(text, want));    /* first é kept whole, second cut off */
    }
    free(text);
    /* RFC 3629: overlong forms, surrogates, code points above U+10FFFF and the bytes that
     * never start a character become '?' byte by byte; the edges of the valid ranges stay */
    {
        static const char *const cases[][2] = {
            { "a\xed\xa0\x80", "a???" },              /* U+D800, a surrogate */
            { "b\xe0\x80\x80", "b???" },              /* an overlong U+0000 */
            { "c\xf0\x80\x80\x80", "c????" },         /* an overlong U+0000, 4 bytes */
            { "d\xf4\x90\x80\x80", "d????" },         /* U+110000 */
            { "e\xf5\x80\x80\x80", "e????" },
            { "f\xc0\xaf", "f??" },
            { "g\xed\x9f\xbf", "g\xed\x9f\xbf" },      /* U+D7FF */
            { "h\xee\x80\x80", "h\xee\x80\x80" },      /* U+E000 */
            { "i\xe0\xa0\x80", "i\xe0\xa0\x80" },      /* U+0800 */
            { "j\xf0\x90\x80\x80", "j\xf0\x90\x80\x80" }, /* U+10000 */
            { "k\xf4\x8f\xbf\xbf", "k\xf4\x8f\xbf\xbf" }, /* U+10FFFF */
            { "l\xc2\x80", "l\xc2\x80" },              /* U+0080 */
            { "m\xe1\x80", "m??" },                    /* cut short by the end */
        };
        reset(0);
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            mx_tokens_add(cases[i][0], 1, 0);
        text = render(0);
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            char want[64];
            snprintf(want, sizeof want, "{model=\"%s\"} 1\n", cases[i][1]);
            assert_non_null(strstr(text, want));
        }
        free(text);
    }
}

/* 100 distinct models: at most MX_MODELS_MAX + 1 label values, nothing lost. */
static void test_model_cardinality(void **state)
{
    char *text, name[32];
    int values = 0;
    double total = 0;
    (void)state;
    reset(0);
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 100; i++) {
            snprintf(name, sizeof name, "model-%d", i);
            mx_tokens_add(name, 1, 1);
        }
    text = render(0);
    for (char *l = strstr(text, "\nlitebrain_prompt_tokens_total{"); l;
         l = strstr(l + 1, "\nlitebrain_prompt_tokens_total{")) {
        values++;
        total += strtod(strchr(l + 1, ' ') + 1, NULL);
    }
    assert_int_equal(values, MX_MODELS_MAX + 1);
    assert_float_equal(total, 200, 0);
    assert_float_equal(sample(text, "litebrain_prompt_tokens_total{model=\"other\"}"),
                       2 * (100 - MX_MODELS_MAX), 0);
    assert_float_equal(sample(text, "litebrain_prompt_tokens_total{model=\"model-0\"}"), 2, 0);
    free(text);
}

/* Status codes beyond the table count under their class ("1xx" ... "5xx") or "other"; every
 * request is counted exactly once. */
static void test_status_table(void **state)
{
    char *text;
    double total = 0, count = 0;
    int n = 0;
    (void)state;
    reset(0);
    for (int code = 100; code < 100 + MX_STATUS_MAX + 10; code++, n++)
        mx_request_done(MX_CX_MEDIUM, code, 1);
    mx_request_done(MX_CX_MEDIUM, 100, 1);
    mx_request_done(MX_CX_MEDIUM, 503, 1);      /* new codes once the table is full */
    mx_request_done(MX_CX_MEDIUM, 504, 1);
    mx_request_done(MX_CX_HIGH, 599, 1);
    mx_request_done(MX_CX_MEDIUM, 700, 1);
    mx_request_done(MX_CX_MEDIUM, 99, 1);
    n += 6;
    text = render(0);
    for (char *l = strstr(text, "\nlitebrain_requests_total{"); l;
         l = strstr(l + 1, "\nlitebrain_requests_total{"))
        total += strtod(strchr(l + 1, ' ') + 1, NULL);
    for (int c = 0; c < MX_CX_COUNT; c++) {
        static const char *cx[] = { "none", "low", "medium", "high" };
        char want[128];
        snprintf(want, sizeof want, "litebrain_request_duration_seconds_count{complexity=\"%s\"}",
                 cx[c]);
        count += sample(text, want);
    }
    assert_float_equal(total, n, 0);
    assert_float_equal(count, n, 0);
    assert_float_equal(sample(text, "litebrain_requests_total{complexity=\"medium\",status=\"100\"}"),
                       2, 0);
    assert_float_equal(sample(text, "litebrain_requests_total{complexity=\"medium\",status=\"1xx\"}"),
                       10, 0);
    assert_float_equal(sample(text, "litebrain_requests_total{complexity=\"medium\",status=\"5xx\"}"),
                       2, 0);
    assert_float_equal(sample(text, "litebrain_requests_total{complexity=\"high\",status=\"5xx\"}"),
                       1, 0);
    assert_float_equal(sample(text, "litebrain_requests_total{complexity=\"medium\",status=\"other\"}"),
                       2, 0);
    free(text);
}

/* A steady stream of scores: the gauge is their average; alternating scores average out. */
static void test_complexity_steady(void **state)
{
    (void)state;
    reset(0);
    for (int i = 0; i < 600; i++) {   /* one request a second, each 0.5 s long */
        fake_now = i;
        mx_cx_hold(1);
        mx_score_observe(60, fake_now);
        assert_float_equal(mx_complexity(fake_now), 60, 1e-9);
        fake_now = i + 0.5;
        mx_cx_hold(-1);
    }
    assert_float_equal(mx_complexity(599.5), 60, 1e-9);
    reset(0);
    for (int i = 0; i < 600; i++) {   /* alternating 40 / 80, overlapping requests */
        fake_now = i;
        mx_cx_hold(1);
        mx_score_observe(i % 2 ? 80 : 40, fake_now);
        if (i > 0)
            mx_cx_hold(-1);
    }
    assert_float_equal(mx_complexity(600), 60, 1.0);
    /* shifting the mix moves the average: 20 for ten half-lives reads about 20 */
    for (int i = 600; i < 900; i++) {
        fake_now = i;
        mx_score_observe(20, fake_now);
    }
    assert_float_equal(mx_complexity(899), 20, 0.1);
}

/* Traffic stops: the gauge halves every half-life and reaches exactly 0. */
static void test_complexity_decay(void **state)
{
    (void)state;
    reset(0);
    mx_set_half_life(10);
    mx_cx_hold(1);
    mx_score_observe(80, 0);
    fake_now = 50;                      /* a long request: no decay while it runs */
    assert_float_equal(mx_complexity(50), 80, 1e-9);
    mx_cx_hold(-1);                  /* idle from t = 50 */
    assert_float_equal(mx_complexity(50), 80, 1e-9);
    assert_float_equal(mx_complexity(60), 40, 1e-9);
    assert_float_equal(mx_complexity(70), 20, 1e-9);
    assert_true(mx_complexity(100) > 0);        /* 80 / 32 = 2.5 */
    assert_float_equal(mx_complexity(50 + 10 * 8), 0, 0);   /* 80 / 256 < 0.5 → 0 */
    assert_float_equal(mx_complexity(1e6), 0, 0);
    /* traffic returns: the gauge is the recent average again at once */
    fake_now = 2000;
    mx_score_observe(50, 2000);
    assert_float_equal(mx_complexity(2000), 50, 0.01);
    /* the half-life setter: non-positive restores the default */
    mx_set_half_life(-1);
    assert_float_equal(mx_complexity(2000 + MX_HALF_LIFE_DEFAULT), 25, 0.01);
    /* no score ever: 0 */
    reset(0);
    assert_float_equal(mx_complexity(0), 0, 0);
    /* the gauge in the exposition is the same value */
    mx_score_observe(90, 0);
    {
        char *text = render(MX_HALF_LIFE_DEFAULT);
        assert_float_equal(sample(text, "litebrain_complexity_score"), 45, 1e-9);
        free(text);
    }
}

/* Unscored requests (an /api/tags poller, a model pull) neither hold the gauge nor bring an old
 * score back after it decayed; a scored request in flight holds it. */
static void test_complexity_unscored(void **state)
{
    (void)state;
    reset(0);
    mx_set_half_life(2);
    mx_active_add(1);
    mx_cx_hold(1);
    mx_score_observe(82, 0);
    fake_now = 1;
    mx_cx_hold(-1);
    mx_active_add(-1);                  /* idle from t = 1 */
    assert_float_equal(mx_complexity(21), 0, 0);        /* ten half-lives */
    for (int i = 0; i < 30; i++) {      /* a poller: one unscored request every 1.9 s */
        fake_now = 21 + 1.9 * i;
        mx_active_add(1);
        assert_float_equal(mx_complexity(fake_now), 0, 0);
        fake_now += 0.1;
        mx_active_add(-1);
    }
    assert_int_equal(mx_active(), 0);
    fake_now = 100;                     /* a long unscored request does not hold it either */
    mx_active_add(1);
    assert_float_equal(mx_complexity(100), 0, 0);
    mx_cx_hold(1);                      /* a scored one does, from its own score */
    mx_score_observe(40, 100);
    assert_float_equal(mx_complexity(130), 40, 1e-6);
    fake_now = 130;
    mx_cx_hold(-1);
    mx_cx_hold(-1);                     /* a stray release never goes below zero */
    assert_float_equal(mx_complexity(132), 20, 1e-6);
}

/* Gauges never go negative; out-of-range enums are clamped. */
static void test_gauges_and_clamps(void **state)
{
    char *text;
    (void)state;
    reset(0);
    mx_active_add(2);
    mx_waiting_add(1);
    assert_int_equal(mx_active(), 2);
    assert_int_equal(mx_waiting(), 1);
    mx_active_add(-5);
    mx_waiting_add(-5);
    assert_int_equal(mx_active(), 0);
    assert_int_equal(mx_waiting(), 0);
    mx_request_done((mx_cx)42, 200, 0.1);
    mx_upstream_error((mx_uperr)42);
    mx_score_observe(1000, 0);
    text = render(0);
    assert_float_equal(sample(text, "litebrain_requests_total{complexity=\"none\",status=\"200\"}"),
                       1, 0);
    assert_float_equal(sample(text, "litebrain_request_complexity_sum"), 100, 0);
    assert_non_null(strstr(text, "\nprocess_resident_memory_bytes "));
    assert_non_null(strstr(text, "\nprocess_cpu_seconds_total "));
    assert_non_null(strstr(text, "\nprocess_open_fds "));
    assert_float_equal(sample(text, "process_start_time_seconds"), 1700000000.5, 0);
    assert_true(sample(text, "process_resident_memory_bytes") > 0);
    assert_true(sample(text, "process_open_fds") >= 3);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden),
        cmocka_unit_test(test_histogram_invariants),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_model_names),
        cmocka_unit_test(test_model_cardinality),
        cmocka_unit_test(test_status_table),
        cmocka_unit_test(test_complexity_steady),
        cmocka_unit_test(test_complexity_decay),
        cmocka_unit_test(test_complexity_unscored),
        cmocka_unit_test(test_gauges_and_clamps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
