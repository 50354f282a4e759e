/* test_sim_json.c — the simulator's exact-format helpers (test/sim/sim_json.c): Go's JSON
 * string escaping, Go's RFC 3339 times, the HTTP date, token counting and the vocabulary.
 * The simulator is not part of liblitebrain.a, so its source is compiled in here. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "test/sim/sim_json.c"

/* Escape s (len bytes) with sim_json_str into a NUL-terminated static buffer. */
static const char *esc(const char *s, size_t len)
{
    static char out[1024];
    struct evbuffer *b = evbuffer_new();
    sim_json_str(b, s, len);
    size_t n = evbuffer_get_length(b);
    assert_true(n < sizeof out);
    evbuffer_remove(b, out, n);
    out[n] = '\0';
    evbuffer_free(b);
    return out;
}

#define ESC(lit) esc((lit), sizeof(lit) - 1)

static void test_json_plain_and_html(void **state)
{
    (void)state;
    assert_string_equal(ESC("qwen2.5:3b"), "\"qwen2.5:3b\"");
    assert_string_equal(ESC("<a>&b"), "\"\\u003ca\\u003e\\u0026b\"");   /* Go's HTML-safe default */
    assert_string_equal(ESC("q\"b\\s"), "\"q\\\"b\\\\s\"");
    assert_string_equal(ESC(""), "\"\"");
}

static void test_json_control_chars(void **state)
{
    (void)state;
    assert_string_equal(ESC("\n\r\t\b\f"), "\"\\n\\r\\t\\b\\f\"");
    assert_string_equal(ESC("\x01\x1f"), "\"\\u0001\\u001f\"");
    assert_string_equal(ESC("a\0b"), "\"a\\u0000b\"");
    assert_string_equal(ESC("\x7f"), "\"\x7f\"");                      /* DEL is written as is */
}

static void test_json_utf8(void **state)
{
    (void)state;
    assert_string_equal(ESC("caf\xc3\xa9 \xf0\x9f\x98\x80"), "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"");
    assert_string_equal(ESC("\xe2\x80\xa8\xe2\x80\xa9"), "\"\\u2028\\u2029\"");
    assert_string_equal(ESC("\xff"), "\"\\ufffd\"");
    assert_string_equal(ESC("\xc0\x80"), "\"\\ufffd\\ufffd\"");         /* overlong: byte by byte */
    assert_string_equal(ESC("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\""); /* surrogate */
    assert_string_equal(ESC("\xe2\x82"), "\"\\ufffd\\ufffd\"");         /* truncated sequence */
}

static void test_json_buf_truncates_safely(void **state)
{
    char small[8];
    (void)state;
    size_t n = sim_json_str_buf(small, sizeof small, "abcdefghijkl", 12);
    assert_true(n < sizeof small);
    assert_int_equal(strlen(small), n);
    assert_int_equal(sim_json_str_buf(small, 0, "x", 1), 0);
}

static void test_times(void **state)
{
    char out[64];
    const uint64_t epoch = (uint64_t)SIM_FIXED_EPOCH * 1000000000ull;
    (void)state;
    sim_time_rfc3339(out, sizeof out, epoch);
    assert_string_equal(out, "2024-01-01T00:00:00Z");
    sim_time_rfc3339(out, sizeof out, epoch + 20000000ull);
    assert_string_equal(out, "2024-01-01T00:00:00.02Z");                /* trailing zeros trimmed */
    sim_time_rfc3339(out, sizeof out, epoch + 1);
    assert_string_equal(out, "2024-01-01T00:00:00.000000001Z");
    sim_time_http(out, sizeof out, epoch);
    assert_string_equal(out, "Mon, 01 Jan 2024 00:00:00 GMT");
}

static void test_tokens(void **state)
{
    (void)state;
    assert_int_equal(sim_count_tokens(0), 0);
    assert_int_equal(sim_count_tokens(1), 1);
    assert_int_equal(sim_count_tokens(4), 1);
    assert_int_equal(sim_count_tokens(5), 2);
    uint32_t h = sim_hash(SIM_FNV_INIT, "prompt", 6);
    assert_int_equal(h, sim_hash(SIM_FNV_INIT, "prompt", 6));
    assert_int_not_equal(h, sim_hash(SIM_FNV_INIT, "prompu", 6));
    assert_string_equal(sim_token(h, 3, 0), sim_token(h, 3, 0));        /* deterministic */
    assert_true(sim_token(h, 0, 1)[0] != ' ');
    assert_string_equal(sim_token(h, 5, 1), sim_token(h, 5, 0) + 1);    /* same word, no space */
    for (int i = 1; i < 50; i++) assert_true(sim_token(h, i, 0)[0] == ' ');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_plain_and_html),
        cmocka_unit_test(test_json_control_chars),
        cmocka_unit_test(test_json_utf8),
        cmocka_unit_test(test_json_buf_truncates_safely),
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_tokens),
    };
    return cmocka_run_group_tests_name("sim_json", tests, NULL, NULL);
}
