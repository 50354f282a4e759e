/* test_metrics_usage.c — the token usage scanner: Ollama NDJSON and JSON, OpenAI JSON and SSE,
 * every split point, and bodies whose generated text or tool arguments mimic the count keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "metrics/metrics.h"

/* What a scan found. */
typedef struct found {
    long prompt;                        /* prompt_tokens */
    long output;                        /* output_tokens */
    uint64_t eval_ns;                   /* eval_duration_ns */
} found;

/* Scan body in one piece. */
static found scan(const char *body)
{
    mx_usage u;
    found f;
    mx_usage_init(&u);
    mx_usage_feed(&u, body, strlen(body));
    mx_usage_finish(&u);
    f.prompt = u.prompt_tokens;
    f.output = u.output_tokens;
    f.eval_ns = u.eval_duration_ns;
    return f;
}

/* Scan body cut at a and b (a <= b). */
static found scan3(const char *body, size_t a, size_t b)
{
    mx_usage u;
    size_t n = strlen(body);
    found f;
    mx_usage_init(&u);
    mx_usage_feed(&u, body, a);
    mx_usage_feed(&u, body + a, b - a);
    mx_usage_feed(&u, body + b, n - b);
    mx_usage_finish(&u);
    f.prompt = u.prompt_tokens;
    f.output = u.output_tokens;
    f.eval_ns = u.eval_duration_ns;
    return f;
}

/* Byte by byte. */
static found scan_bytes(const char *body)
{
    mx_usage u;
    found f;
    mx_usage_init(&u);
    for (const char *p = body; *p; p++)
        mx_usage_feed(&u, p, 1);
    mx_usage_finish(&u);
    f.prompt = u.prompt_tokens;
    f.output = u.output_tokens;
    f.eval_ns = u.eval_duration_ns;
    return f;
}

static void expect(found f, long prompt, long output, uint64_t eval_ns)
{
    assert_int_equal(f.prompt, prompt);
    assert_int_equal(f.output, output);
    assert_int_equal(f.eval_ns, eval_ns);
}

/* Every 2-way and (for short bodies) every 3-way split gives the one-piece answer. */
static void expect_all_splits(const char *body, long prompt, long output, uint64_t eval_ns)
{
    size_t n = strlen(body);
    expect(scan(body), prompt, output, eval_ns);
    expect(scan_bytes(body), prompt, output, eval_ns);
    for (size_t a = 0; a <= n; a++) {
        if (n <= 400) {
            for (size_t b = a; b <= n; b++)
                expect(scan3(body, a, b), prompt, output, eval_ns);
        } else {
            expect(scan3(body, a, a), prompt, output, eval_ns);
        }
    }
}

/* Ollama /api/generate streamed: chunks, then a final chunk with a context array before counts. */
static const char generate_stream[] =
    "{\"model\":\"qwen2.5:3b\",\"created_at\":\"2024-05-01T10:00:00.1Z\",\"response\":\"The\","
    "\"done\":false}\n"
    "{\"model\":\"qwen2.5:3b\",\"created_at\":\"2024-05-01T10:00:00.2Z\",\"response\":\" sky\","
    "\"done\":false}\n"
    "{\"model\":\"qwen2.5:3b\",\"created_at\":\"2024-05-01T10:00:00.3Z\",\"response\":\"\","
    "\"done\":true,\"done_reason\":\"stop\",\"context\":[151644,8948,198,2610,525,1207,16948,"
    "11,3465,553,54364,14817,13,1446,525,264,10950,17847,13,151645,198],"
    "\"total_duration\":10706818083,\"load_duration\":6338219291,\"prompt_eval_count\":26,"
    "\"prompt_eval_duration\":130079000,\"eval_count\":259,\"eval_duration\":4232710000}\n";

static void test_generate_stream(void **state)
{
    (void)state;
    expect_all_splits(generate_stream, 26, 259, 4232710000ull);
}

/* A huge context array (far beyond any line buffer) before the counts. */
static void test_generate_huge_context(void **state)
{
    size_t cap = 300000, o = 0;
    char *body = malloc(cap);
    (void)state;
    o += (size_t)snprintf(body + o, cap - o, "{\"response\":\"\",\"done\":true,\"context\":[");
    for (int i = 0; i < 30000; i++)
        o += (size_t)snprintf(body + o, cap - o, "%d,", 100000 + i);
    o += (size_t)snprintf(body + o, cap - o, "1],\"prompt_eval_count\":30001,\"eval_count\":5,"
                          "\"eval_duration\":77}");
    expect(scan(body), 30001, 5, 77);
    expect(scan3(body, 1000, 200000), 30001, 5, 77);
    free(body);
}

/* Ollama /api/chat streamed, where the generated text spells out the count keys (escaped, as
 * it always is inside a JSON string) and a tool call's arguments object uses them as keys. */
static const char chat_tricky[] =
    "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"Use "
    "\\\"eval_count\\\":999, \\\"prompt_eval_count\\\": 999 and C:\\\\\"},\"done\":false}\n"
    "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"\\\\\\\"eval_count\\\\\\\":5"
    "\\n{\\\"usage\\\":{\\\"prompt_tokens\\\":7}}\",\"tool_calls\":[{\"function\":{\"name\":\"f\","
    "\"arguments\":{\"eval_count\":888,\"prompt_eval_count\":888,\"usage\":{\"prompt_tokens\":888}"
    "}}}]},\"done\":false}\n"
    "{\"model\":\"m\",\"created_at\":\"x\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},"
    "\"done_reason\":\"stop\",\"done\":true,\"total_duration\":4883583458,\"load_duration\":1334875,"
    "\"prompt_eval_count\":12,\"prompt_eval_duration\":342546000,\"eval_count\":34,"
    "\"eval_duration\":4535599000}\n";

static void test_chat_not_fooled(void **state)
{
    (void)state;
    expect_all_splits(chat_tricky, 12, 34, 4535599000ull);
}

/* Only the first two chunks (no final chunk): nothing found despite the look-alikes. */
static void test_text_alone_gives_nothing(void **state)
{
    const char *end = strstr(chat_tricky, "{\"model\":\"m\",\"created_at\"");
    char head[1024];
    (void)state;
    snprintf(head, sizeof head, "%.*s", (int)(end - chat_tricky), chat_tricky);
    expect_all_splits(head, -1, -1, 0);
    expect(scan("{\"response\":\"eval_count\",\"x\":\"prompt_eval_count\"}"), -1, -1, 0);
    expect(scan("\"eval_count\":5"), -1, -1, 0);          /* not inside an object */
    expect(scan("[{\"eval_count\":5}]"), -1, -1, 0);      /* not the top-level object */
    expect(scan("{\"x\":{\"eval_count\":5}}"), -1, -1, 0);  /* nested object */
    /* a depth-2 object other than "usage" */
    expect_all_splits("{\"message\":{\"prompt_tokens\":5,\"completion_tokens\":6}}", -1, -1, 0);
    /* escaped quotes in the text: `x","eval_count":999,"y":"z` must stay text */
    expect_all_splits("{\"response\":\"x\\\",\\\"eval_count\\\":999,\\\"y\\\":\\\"z\"}",
                      -1, -1, 0);
    /* each key only on its own level */
    expect(scan("{\"prompt_tokens\":5,\"completion_tokens\":6}"), -1, -1, 0);
    expect(scan("{\"usage\":{\"eval_count\":5,\"prompt_eval_count\":6}}"), -1, -1, 0);
    /* a key ending in an escaped backslash is not the key without it */
    expect(scan("{\"eval_count\\\\\":5}"), -1, -1, 0);
}

/* Ollama non-stream JSON (pretty-printed, to show newlines between tokens are fine). */
static void test_ollama_json(void **state)
{
    (void)state;
    expect_all_splits("{\n  \"model\": \"m\",\n  \"response\": \"hi\\nthere\",\n  \"done\": true,\n"
                      "  \"prompt_eval_count\" : 3 ,\n  \"eval_count\": 4\n}", 3, 4, 0);
    /* /api/embed reports only prompt_eval_count */
    expect(scan("{\"model\":\"m\",\"embeddings\":[[0.1,-0.2]],\"prompt_eval_count\":8}"), 8, -1, 0);
}

/* OpenAI non-stream JSON with usage; the content mimics a usage object. */
static const char openai_json[] =
    "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"m\","
    "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
    "\"{\\\"usage\\\":{\\\"prompt_tokens\\\":1,\\\"completion_tokens\\\":2}}\",\"tool_calls\":"
    "[{\"function\":{\"arguments\":\"{\\\"completion_tokens\\\":3}\"}}]},"
    "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":17,\"prompt_tokens_details\":"
    "{\"cached_tokens\":3,\"completion_tokens\":99},\"completion_tokens\":42,"
    "\"total_tokens\":59}}";

static void test_openai_json(void **state)
{
    (void)state;
    expect_all_splits(openai_json, 17, 42, 0);
}

/* OpenAI SSE: chunks, the usage chunk, [DONE]; plus an SSE comment line. */
static const char openai_sse[] =
    ": keep-alive comment with \"quotes\n\n"
    "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,"
    "\"delta\":{\"role\":\"assistant\",\"content\":\"\\\"usage\\\":{\\\"prompt_tokens\\\":5}\"},"
    "\"finish_reason\":null}],\"usage\":null}\n\n"
    "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,"
    "\"delta\":{\"content\":\"\"},\"finish_reason\":\"stop\"}]}\n\n"
    "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[],"
    "\"usage\":{\"prompt_tokens\":21,\"completion_tokens\":9,\"total_tokens\":30}}\n\n"
    "data: [DONE]\n\n";

static void test_openai_sse(void **state)
{
    (void)state;
    expect_all_splits(openai_sse, 21, 9, 0);
}

/* Values that are not plain integers are ignored; escaped or long keys never match. */
static void test_odd_values(void **state)
{
    (void)state;
    expect(scan("{\"eval_count\":-3,\"prompt_eval_count\":1.5}"), -1, -1, 0);
    expect(scan("{\"eval_count\":\"12\",\"prompt_eval_count\":null}"), -1, -1, 0);
    expect(scan("{\"eval\\u005fcount\":12}"), -1, -1, 0);
    expect(scan("{\"eval_count_and_a_much_longer_key_name\":12}"), -1, -1, 0);
    expect(scan("{\"eval_count\":99999999999999999999999}"), -1, -1, 0);   /* overflow */
    expect(scan("{\"eval_count\":7"), -1, 7, 0);          /* body ends right after the number */
    expect(scan("{\"eval_count\":7}{\"eval_count\":8}"), -1, 8, 0);   /* last one wins */
    /* a broken line (raw newline inside a string) does not derail the next one */
    expect(scan("{\"response\":\"abc\n{\"eval_count\":3}\n"), -1, 3, 0);
    /* text/plain garbage then nothing */
    expect(scan("hello ] } world \\ \" \n"), -1, -1, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_stream),
        cmocka_unit_test(test_generate_huge_context),
        cmocka_unit_test(test_chat_not_fooled),
        cmocka_unit_test(test_text_alone_gives_nothing),
        cmocka_unit_test(test_ollama_json),
        cmocka_unit_test(test_openai_json),
        cmocka_unit_test(test_openai_sse),
        cmocka_unit_test(test_odd_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
