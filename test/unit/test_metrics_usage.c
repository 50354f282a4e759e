/* test_metrics_usage.c — the token usage scanner: Ollama NDJSON and JSON, OpenAI JSON and SSE,
 * every split point, and bodies whose generated text or tool arguments mimic the count keys. */
#include <limits.h>
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

/* mx_usage_whole on a copy of exactly len bytes (so ASan sees any read outside it). */
static found scan_whole_n(const char *body, size_t len)
{
    mx_usage u;
    found f;
    char *copy = malloc(len ? len : 1);
    memcpy(copy, body, len);
    mx_usage_init(&u);
    mx_usage_whole(&u, copy, len);
    mx_usage_finish(&u);
    free(copy);
    f.prompt = u.prompt_tokens;
    f.output = u.output_tokens;
    f.eval_ns = u.eval_duration_ns;
    return f;
}

static found scan_whole(const char *body)
{
    return scan_whole_n(body, strlen(body));
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
    expect(scan_whole(body), prompt, output, eval_ns);
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

/* mx_usage_whole agrees with mx_usage_feed on the odd cases too: valid JSON read from its end,
 * everything else (several documents, no closing brace, not an object) handed to the feed. */
static void test_whole_odd_values(void **state)
{
    static const char *const bodies[] = {
        "{\"eval_count\":-3,\"prompt_eval_count\":1.5}", "{\"eval_count\":\"12\",\"prompt_eval_count\":null}",
        "{\"eval\\u005fcount\":12}", "{\"eval_count_and_a_much_longer_key_name\":12}",
        "{\"eval_count\":99999999999999999999999}", "{\"eval_count\":7", "{\"eval_count\":7}{\"eval_count\":8}",
        "{\"response\":\"abc\n{\"eval_count\":3}\n", "hello ] } world \\ \" \n", "{}", " { } \n", "",
        "[{\"eval_count\":4}]", "{\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":{\"x\":1}},\"eval_count\":5}",
        "{\"prompt_eval_count\":1,\"usage\":{\"prompt_tokens\":2}}", "{\"usage\":{\"prompt_tokens\":2},\"prompt_eval_count\":1}",
        "{\"a\":\"\\\\\",\"eval_count\":6}", "{\"a\":\"q\\\"\",\"eval_count\":6}", "{\"eval_count\":1,\"eval_count\":2}",
        "{\"eval_count\":1,\"eval_count\":-2}", "{\"usage\":7,\"eval_count\":3}", "{,\"eval_count\":3}",
    };
    (void)state;
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        found a = scan(bodies[i]), b = scan_whole(bodies[i]);
        if (a.prompt != b.prompt || a.output != b.output || a.eval_ns != b.eval_ns)
            fail_msg("whole differs on %s", bodies[i]);
    }
}

/* The point of reading from the end: once the three counts are in, the bytes before them are
 * not looked at — here a prefix the forward scan trips over (a string that never ends). */
static void test_whole_stops_at_the_counts(void **state)
{
    static const char body[] = "{\"response\":\"never closed,\"prompt_eval_count\":26,"
                               "\"eval_count\":259,\"eval_duration\":4232710000}";
    (void)state;
    expect(scan_whole(body), 26, 259, 4232710000u);
    expect(scan(body), -1, -1, 0);      /* the feed, reading from the start, sees one string */
}

/* --- differential test: the fast scanner against the plain byte-at-a-time one --- */

/* The reference: the scanner as it was before it learned to skip runs (one byte at a time
 * through string / number / structure handling).  The fast one must agree with it on every
 * input and every split. */
/* The field a pending value belongs to (mx_usage.field). */
enum { FLD_NONE = 0, FLD_PROMPT_EVAL, FLD_EVAL, FLD_EVAL_DURATION, FLD_USAGE, FLD_U_PROMPT,
       FLD_U_COMPLETION };

#define KEY_TOO_LONG (MX_USAGE_TAIL + 1)        /* mx_usage.len: key not one we want */
#define DEPTH_MAX 1000000u                      /* depth saturates here (garbage input) */

static void ref_init(mx_usage *u)
{
    memset(u, 0, sizeof *u);
    u->prompt_tokens = -1;
    u->output_tokens = -1;
}

/* Forget the parse state (not the results): next byte starts a fresh document. */
static void ref_reset_parse(mx_usage *u)
{
    u->depth = 0;
    u->len = 0;
    u->num = 0;
    u->in_string = u->escaped = u->key_string = u->expect_key = 0;
    u->field = FLD_NONE;
    u->in_number = u->num_bad = u->top_object = u->in_usage = 0;
}

/* 1 when keys at the current depth are ones we look at. */
static int ref_watched(const mx_usage *u)
{
    return (u->depth == 1 && u->top_object) || (u->depth == 2 && u->in_usage);
}

/* Which field the key just read names, given the level it was read on. */
static int ref_key_field(const mx_usage *u)
{
    static const struct { const char *key; int depth; int field; } keys[] = {
        { "prompt_eval_count", 1, FLD_PROMPT_EVAL }, { "eval_count", 1, FLD_EVAL },
        { "eval_duration", 1, FLD_EVAL_DURATION }, { "usage", 1, FLD_USAGE },
        { "prompt_tokens", 2, FLD_U_PROMPT }, { "completion_tokens", 2, FLD_U_COMPLETION },
    };
    if (u->len > MX_USAGE_TAIL)
        return FLD_NONE;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if ((uint32_t)keys[i].depth == u->depth && strlen(keys[i].key) == u->len &&
            memcmp(keys[i].key, u->line, u->len) == 0)
            return keys[i].field;
    return FLD_NONE;
}

/* Store the integer just read into its field. */
static void ref_commit_number(mx_usage *u)
{
    long v = u->num > (uint64_t)LONG_MAX ? LONG_MAX : (long)u->num;
    if (u->num_bad)
        return;
    switch (u->field) {
    case FLD_PROMPT_EVAL:
    case FLD_U_PROMPT:
        u->prompt_tokens = v;
        break;
    case FLD_EVAL:
    case FLD_U_COMPLETION:
        u->output_tokens = v;
        break;
    case FLD_EVAL_DURATION:
        u->eval_duration_ns = u->num;
        break;
    default:
        break;
    }
}

/* One byte inside a string. */
static void ref_string_byte(mx_usage *u, char c)
{
    if (u->escaped) {
        u->escaped = 0;
        if (u->key_string)
            u->len = KEY_TOO_LONG;      /* why: no wanted key has escapes */
        return;
    }
    if (c == '\\') {
        u->escaped = 1;
        return;
    }
    if (c == '"') {
        u->in_string = 0;
        if (u->key_string) {
            u->key_string = 0;
            u->field = (uint8_t)ref_key_field(u);
        }
        return;
    }
    if (c == '\n') {                    /* a raw newline cannot be inside a JSON string */
        ref_reset_parse(u);
        return;
    }
    if (u->key_string) {
        if (u->len < MX_USAGE_TAIL)
            u->line[u->len++] = c;
        else
            u->len = KEY_TOO_LONG;
    }
}

/* One byte of a number value of a wanted field; returns 1 when consumed, 0 when the number
 * ended and c must be looked at as structure. */
static int ref_number_byte(mx_usage *u, char c)
{
    if (c >= '0' && c <= '9') {
        uint64_t d = (uint64_t)(c - '0');
        if (u->num > (UINT64_MAX - d) / 10)
            u->num_bad = 1;
        else
            u->num = u->num * 10 + d;
        return 1;
    }
    if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
        u->num_bad = 1;                 /* why: counts are plain integers; ignore anything else */
        return 1;
    }
    ref_commit_number(u);
    u->in_number = 0;
    u->field = FLD_NONE;
    return 0;
}

/* One structural byte (outside strings and wanted numbers). */
static void ref_struct_byte(mx_usage *u, char c)
{
    switch (c) {
    case '"':
        u->in_string = 1;
        u->escaped = 0;
        u->key_string = ref_watched(u) && u->expect_key;
        if (u->key_string)
            u->len = 0;
        else
            u->field = FLD_NONE;        /* a string value: not a count */
        u->expect_key = 0;
        break;
    case '{':
        if (u->depth == 0) {
            u->top_object = 1;
            u->in_usage = 0;
        } else if (u->depth == 1 && u->top_object && u->field == FLD_USAGE) {
            u->in_usage = 1;
        }
        if (u->depth < DEPTH_MAX)
            u->depth++;
        u->expect_key = ref_watched(u);
        u->field = FLD_NONE;
        break;
    case '[':
        if (u->depth == 0)
            u->top_object = u->in_usage = 0;
        if (u->depth < DEPTH_MAX)
            u->depth++;
        u->expect_key = 0;
        u->field = FLD_NONE;
        break;
    case '}':
    case ']':
        if (u->depth > 0)
            u->depth--;
        if (u->depth <= 1)
            u->in_usage = 0;
        if (u->depth == 0)
            u->top_object = 0;
        u->expect_key = 0;
        u->field = FLD_NONE;
        break;
    case ',':
        u->expect_key = ref_watched(u);
        u->field = FLD_NONE;
        break;
    case ':':
        break;                          /* the pending field waits for its value */
    case ' ': case '\t': case '\r': case '\n':
        break;
    default:
        if (c >= '0' && c <= '9' && ref_watched(u) && u->field != FLD_NONE && u->field != FLD_USAGE) {
            u->in_number = 1;
            u->num_bad = 0;
            u->num = (uint64_t)(c - '0');
        } else if (c == '-' && ref_watched(u) && u->field != FLD_NONE) {
            u->in_number = 1;
            u->num_bad = 1;             /* negative: read and ignore */
        } else {
            u->field = FLD_NONE;        /* true / false / null / SSE text */
        }
        break;
    }
}

static void ref_feed(mx_usage *u, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (u->in_string)
            ref_string_byte(u, c);
        else if (!u->in_number || !ref_number_byte(u, c))
            ref_struct_byte(u, c);
    }
}

static void ref_finish(mx_usage *u)
{
    if (u->in_number && !u->in_string)
        ref_commit_number(u);
    ref_reset_parse(u);
}

#define DIFF_DOCS 3000              /* random bodies compared */
#define DIFF_BODY_MAX 600           /* bytes per random body (at most) */
#define DIFF_CUTS 4                 /* random cut points per split of a body */

static uint32_t diff_rng = 2024;
static uint32_t diff_rand(uint32_t n)
{
    diff_rng = diff_rng * 1103515245u + 12345u;
    return (diff_rng >> 8) % n;
}

/* Append s to body (len, capped at DIFF_BODY_MAX). */
static void put(char *body, size_t *len, const char *s)
{
    size_t k = strlen(s);
    if (*len + k > DIFF_BODY_MAX)
        return;
    memcpy(body + *len, s, k);
    *len += k;
}

/* Keys and scalar values a random body is built from: the wanted keys, look-alikes, plain
 * strings with escapes and brackets, runs long enough for whole SIMD blocks, and bytes that
 * share the brackets' bit pattern (Y _ y DEL). */
static const char *const diff_keys[] = {
    "\"eval_count\"", "\"prompt_eval_count\"", "\"eval_duration\"", "\"usage\"",
    "\"prompt_tokens\"", "\"completion_tokens\"", "\"eval_count\\\\\"", "\"eval\\u005fcount\"",
    "\"response\"", "\"context\"", "\"a_key_that_is_longer_than_the_key_buffer_by_far\"",
    "\"completion_tokens_and_more\"", "\"\"",
};
#define DIFF_INTEGERS 4             /* the first diff_scalars are plain integers */
static const char *const diff_scalars[] = {
    "0", "7", "42", "1234567890123", "99999999999999999999999", "-3", "1.5", "2e3", "null",
    "true", "\"12\"", "\"text with \\\"eval_count\\\":9 and [ { ] } inside, long enough\"",
    "\"\\\\\"", "\"yY_\x7f[]{}\"", "\"line\\nbreak\"", "\"0123456789abcdefghijklmnopqrstuvwxyz\"",
};

/* Append a random JSON-ish value nested at most depth levels (top: a document). */
static void put_value(char *body, size_t *len, int depth, int top)
{
    uint32_t r = top ? 4 + diff_rand(5) : diff_rand(10);   /* documents are mostly objects */
    if (depth <= 0 || r < 4) {
        put(body, len, diff_scalars[diff_rand(sizeof diff_scalars / sizeof diff_scalars[0])]);
    } else if (r < 8) {
        int n = (int)diff_rand(5);
        put(body, len, "{");
        for (int i = 0; i < n; i++) {
            put(body, len, i ? (diff_rand(4) ? "," : " ,\n ") : "");
            put(body, len, diff_keys[diff_rand(sizeof diff_keys / sizeof diff_keys[0])]);
            put(body, len, diff_rand(3) ? ":" : " : ");
            if (diff_rand(2))                       /* often a count-like integer */
                put(body, len, diff_scalars[diff_rand(DIFF_INTEGERS)]);
            else
                put_value(body, len, depth - 1, 0);
        }
        put(body, len, "}");
    } else {
        int n = (int)diff_rand(12);
        put(body, len, "[");
        for (int i = 0; i < n; i++) {
            put(body, len, i ? "," : "");
            put_value(body, len, depth - 2, 0);
        }
        put(body, len, "]");
    }
}

/* A random body: well-formed documents (NDJSON or SSE framed) or, one in four, documents
 * with random structure bytes thrown in (broken JSON, stray quotes, backslashes, newlines). */
static size_t random_body(char *body, int *was_broken)
{
    static const char *const junk[] = { "{", "}", "[", "]", "\"", "\\", "\n", ",", ":", "y",
                                        "\"eval_count\":", "{\"usage\":{", "12", "data: " };
    size_t len = 0;
    int docs = 1 + (int)diff_rand(3), broken = diff_rand(4) == 0;
    *was_broken = broken;
    for (int d = 0; d < docs; d++) {
        put(body, &len, diff_rand(4) == 0 ? "data: " : "");
        put_value(body, &len, 4, 1);
        put(body, &len, diff_rand(2) ? "\n" : "\n\n");
        for (int j = 0; broken && j < 6; j++) {
            size_t at = diff_rand((uint32_t)len + 1), k;
            const char *s = junk[diff_rand(sizeof junk / sizeof junk[0])];
            k = strlen(s);
            if (len + k > DIFF_BODY_MAX)
                break;
            memmove(body + at + k, body + at, len - at);
            memcpy(body + at, s, k);
            len += k;
        }
    }
    return len;
}

/* Feed the body in the pieces cut at cuts[0..n) (ascending) to both scanners, comparing the
 * results after every piece and after finish.  The fast one gets each piece in its own
 * allocation of exactly that size. */
static void compare_split(const char *body, size_t len, const size_t *cuts, int n)
{
    mx_usage fast, ref;
    size_t at = 0;
    mx_usage_init(&fast);
    ref_init(&ref);
    for (int i = 0; i <= n; i++) {
        size_t to = i < n ? cuts[i] : len;
        char *piece = malloc(to - at + 1);  /* why: exact size, so ASan sees any over-read */
        memcpy(piece, body + at, to - at);
        mx_usage_feed(&fast, piece, to - at);
        ref_feed(&ref, body + at, to - at);
        free(piece);
        at = to;
        if (fast.prompt_tokens != ref.prompt_tokens || fast.output_tokens != ref.output_tokens ||
            fast.eval_duration_ns != ref.eval_duration_ns)
            fail_msg("differs after piece %d of body \"%.*s\"", i, (int)len, body);
    }
    mx_usage_finish(&fast);
    ref_finish(&ref);
    assert_int_equal(fast.prompt_tokens, ref.prompt_tokens);
    assert_int_equal(fast.output_tokens, ref.output_tokens);
    assert_int_equal(fast.eval_duration_ns, ref.eval_duration_ns);
}

/* Random bodies in one piece, at random cuts and byte by byte: same answers as the reference.
 * Also counts how many bodies carried a count, so the generator cannot silently go blind. */
static void test_same_as_reference(void **state)
{
    static char body[DIFF_BODY_MAX + 1];
    size_t cuts[DIFF_BODY_MAX];
    int with_counts = 0;
    (void)state;
    for (int d = 0; d < DIFF_DOCS; d++) {
        int broken;
        size_t len = random_body(body, &broken);
        mx_usage u;
        compare_split(body, len, cuts, 0);
        found w = scan_whole_n(body, len);          /* also run on broken ones: no over-read */
        if (!broken) {
            mx_usage ref;
            ref_init(&ref);
            ref_feed(&ref, body, len);
            ref_finish(&ref);
            if (w.prompt != ref.prompt_tokens || w.output != ref.output_tokens ||
                w.eval_ns != ref.eval_duration_ns)
                fail_msg("whole differs on body \"%.*s\"", (int)len, body);
        }
        for (int i = 0; i < DIFF_CUTS; i++)
            cuts[i] = diff_rand((uint32_t)len + 1);
        for (int i = 1; i < DIFF_CUTS; i++)         /* sort the few cuts */
            for (int j = i; j > 0 && cuts[j - 1] > cuts[j]; j--) {
                size_t t = cuts[j];
                cuts[j] = cuts[j - 1];
                cuts[j - 1] = t;
            }
        compare_split(body, len, cuts, DIFF_CUTS);
        for (size_t i = 0; i < len; i++)
            cuts[i] = i + 1 < len ? i + 1 : len;
        compare_split(body, len, cuts, len > 0 ? (int)len - 1 : 0);
        mx_usage_init(&u);
        mx_usage_feed(&u, body, len);
        mx_usage_finish(&u);
        with_counts += u.prompt_tokens >= 0 || u.output_tokens >= 0;
    }

    assert_true(with_counts > DIFF_DOCS / 20);
    assert_true(with_counts < DIFF_DOCS);
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
        cmocka_unit_test(test_whole_odd_values),
        cmocka_unit_test(test_whole_stops_at_the_counts),
        cmocka_unit_test(test_same_as_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
