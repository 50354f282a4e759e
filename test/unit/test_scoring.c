/* test_scoring.c — feature extraction, the golden behaviour of DESIGN §4, monotonicity,
 * invalid bodies, keywords, levels, endpoints and model weights. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "scoring/scoring.h"
#include "scoring/sc_internal.h"  /* sc_static_raw, to test the formula itself */

#define BODY_MAX (1 << 20)      /* largest body a test builds */

/* Neutral filler words: none is a keyword or an inflection of one. */
static const char *const filler[] = { "the", "quick", "brown", "fox", "jumps", "over", "a",
                                      "lazy", "dog", "while", "users", "ask", "about", "weather" };

/* n filler words separated by spaces, appended at out (no quotes). */
static size_t put_words(char *out, size_t cap, int n)
{
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        int w = snprintf(out + len, cap - len, "%s%s", i ? " " : "", filler[i % 14]);
        assert_true(w > 0 && (size_t)w < cap - len);
        len += (size_t)w;
    }
    out[len] = '\0';
    return len;
}

static char *words(int n)
{
    char *b = malloc(BODY_MAX);
    assert_non_null(b);
    put_words(b, BODY_MAX, n);
    return b;
}

static sc_result score_of(sc_scorer *s, sc_endpoint ep, const char *body)
{
    sc_result r;
    sc_score(s, ep, body, strlen(body), 1000.0, &r);
    return r;
}

static sc_result generate(sc_scorer *s, const char *model, const char *prompt)
{
    char *b = malloc(BODY_MAX);
    assert_non_null(b);
    snprintf(b, BODY_MAX, "{\"model\":\"%s\",\"prompt\":\"%s\",\"stream\":false}", model, prompt);
    sc_result r = score_of(s, SC_EP_GENERATE, b);
    free(b);
    return r;
}

/* Assert that every feature in got equals the one in want, field by field (a failure names the
 * field).  Fields a test leaves out of want are expected to be 0. */
static void assert_features(const sc_features *got, const sc_features *want)
{
#define FEATURE_EQ(x)                                                                         \
    do {                                                                                      \
        if (got->x != want->x)                                                                \
            fail_msg("feature %s: %llu, want %llu", #x, (unsigned long long)got->x,            \
                     (unsigned long long)want->x);                                            \
    } while (0)
    FEATURE_EQ(json_ok);
    FEATURE_EQ(words);
    FEATURE_EQ(history_msgs);
    FEATURE_EQ(history_words);
    FEATURE_EQ(keyword_hits);
    FEATURE_EQ(context_tokens);
    FEATURE_EQ(num_ctx);
    FEATURE_EQ(num_predict);
    FEATURE_EQ(images);
    FEATURE_EQ(image_bytes);
    FEATURE_EQ(tools);
    FEATURE_EQ(format_schema);
    FEATURE_EQ(think);
#undef FEATURE_EQ
}

static int setup(void **state)
{
    sc_policy p;
    sc_policy_default(&p);
    *state = sc_scorer_new(&p);
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    sc_scorer_free(*state);
    return 0;
}

/* ---- golden behaviour (DESIGN §4, default policy) ---- */

static void golden_hi_is_low(void **state)
{
    sc_result r = generate(*state, "qwen2.5:3b", "hi");
    assert_int_equal(r.f.json_ok, 1);
    assert_int_equal(r.f.words, 1);
    assert_int_equal(r.level, SC_LEVEL_LOW);
    assert_true(r.score < 40);
}

static void golden_150_words_is_medium(void **state)
{
    char *w = words(150);
    sc_result r = generate(*state, "qwen2.5:3b", w);
    assert_int_equal(r.f.words, 150);
    assert_int_equal(r.level, SC_LEVEL_MEDIUM);
    free(w);
}

static void golden_over_300_words_is_high(void **state)
{
    static const int ns[] = { 301, 350, 800, 3000, 20000 };
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        char *w = words(ns[i]);
        sc_result r = generate(*state, "some-unknown-model", w);
        assert_int_equal(r.f.words, ns[i]);
        assert_true(r.score >= 80);
        assert_int_equal(r.level, SC_LEVEL_HIGH);
        free(w);
    }
}

static void golden_keyword_short_medium_long_high(void **state)
{
    static const char *const kws[] = { "refactor", "architecture", "design", "Refactoring",
                                       "DESIGNED", "architectural" };
    char buf[BODY_MAX / 2];
    for (size_t i = 0; i < sizeof kws / sizeof kws[0]; i++) {
        snprintf(buf, sizeof buf, "please %s this module", kws[i]);
        sc_result r = generate(*state, "qwen2.5:3b", buf);
        assert_int_equal(r.f.keyword_hits, 1);
        assert_true(r.level >= SC_LEVEL_MEDIUM);
        /* over 100 words with the keyword: high */
        size_t n = (size_t)snprintf(buf, sizeof buf, "%s ", kws[i]);
        put_words(buf + n, sizeof buf - n, 100);
        r = generate(*state, "qwen2.5:3b", buf);
        assert_int_equal(r.f.words, 101);
        assert_int_equal(r.level, SC_LEVEL_HIGH);
    }
}

static void golden_chat_history_2000_words_is_high(void **state)
{
    char *b = malloc(BODY_MAX), *w = words(200);
    size_t n = (size_t)snprintf(b, BODY_MAX, "{\"model\":\"qwen2.5:3b\",\"messages\":[");
    for (int i = 0; i < 10; i++)
        n += (size_t)snprintf(b + n, BODY_MAX - n, "{\"role\":\"%s\",\"content\":\"%s\"},",
                              i % 2 ? "assistant" : "user", w);
    snprintf(b + n, BODY_MAX - n, "{\"role\":\"user\",\"content\":\"and now?\"}]}");
    sc_result r = score_of(*state, SC_EP_CHAT, b);
    assert_int_equal(r.f.history_msgs, 10);
    assert_int_equal(r.f.history_words, 2000);
    assert_int_equal(r.f.words, 2);
    assert_int_equal(r.level, SC_LEVEL_HIGH);
    free(b);
    free(w);
}

static void golden_short_embed_is_low(void **state)
{
    sc_result r = score_of(*state, SC_EP_EMBED, "{\"model\":\"nomic-embed-text\",\"input\":\"hello world\"}");
    assert_int_equal(r.f.words, 2);
    assert_int_equal(r.level, SC_LEVEL_LOW);
    r = score_of(*state, SC_EP_OAI_EMBEDDINGS, "{\"model\":\"m\",\"input\":[\"a b\",\"c\"]}");
    assert_int_equal(r.f.words, 3);
    assert_int_equal(r.level, SC_LEVEL_LOW);
    r = score_of(*state, SC_EP_EMBEDDINGS, "{\"model\":\"m\",\"prompt\":\"design the system\"}");
    assert_int_equal(r.level, SC_LEVEL_LOW);   /* keywords do not apply to embeddings */
}

static void same_body_same_score(void **state)
{
    char *w = words(120);
    sc_result a = generate(*state, "qwen2.5:3b", w), b = generate(*state, "qwen2.5:3b", w);
    assert_memory_equal(&a, &b, sizeof a);
    free(w);
}

/* ---- extraction ---- */

static void features_of_a_rich_chat(void **state)
{
    const char *body =
        "{\"model\":\"llava:13b\",\"messages\":["
        "{\"role\":\"system\",\"content\":\"You are terse.\"},"
        "{\"role\":\"user\",\"content\":\"one two three\",\"images\":[\"aGVsbG8=\"]},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"function\":{\"name\":\"f\"}}]},"
        "{\"content\":[{\"type\":\"text\",\"text\":\"please redesign? no: design it\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,AAAA\"}}],\"role\":\"user\"}],"
        "\"tools\":[{\"type\":\"function\"},{\"type\":\"function\"},{}],"
        "\"format\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}}},"
        "\"think\":true,\"options\":{\"num_ctx\":16384,\"temperature\":0.2,\"num_predict\":1024},"
        "\"context\":[1,2,3,4,5]}";
    sc_result r = score_of(*state, SC_EP_CHAT, body);
    assert_string_equal(r.model, "llava:13b");
    assert_features(&r.f, &(sc_features){
        .json_ok = 1,
        .words = 3 + 5,                         /* system + last message */
        .keyword_hits = 1,                      /* "design", not "redesign" */
        .history_msgs = 2,
        .history_words = 3,
        .images = 2,
        .image_bytes = 8 + 26,
        .tools = 3,
        .format_schema = 1,
        .think = 1,
        .num_ctx = 16384,
        .num_predict = 1024,
        .context_tokens = 5,
    });
}

static void features_of_openai_shapes(void **state)
{
    sc_result r = score_of(*state, SC_EP_OAI_CHAT,
        "{\"model\":\"gpt\",\"max_completion_tokens\":4096,\"reasoning_effort\":\"high\","
        "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\"}},"
        "\"messages\":[{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"be brief\"}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":\"https://x/y.png\"}]}]}");
    assert_features(&r.f, &(sc_features){
        .json_ok = 1, .words = 2, .history_msgs = 0, .images = 1, .num_predict = 4096, .think = 1,
        .format_schema = 1,
        .image_bytes = r.f.image_bytes,         /* not pinned: what a remote image URL weighs */
    });
    r = score_of(*state, SC_EP_OAI_COMPLETIONS,
                 "{\"model\":\"m\",\"prompt\":[\"one two\",\"three\",[1,2,3]],\"max_tokens\":-1,"
                 "\"suffix\":\"four\",\"response_format\":{\"type\":\"json_object\"},\"think\":false}");
    assert_features(&r.f, &(sc_features){
        .json_ok = 1, .words = 4, .context_tokens = 3, .num_predict = 0, .format_schema = 0, .think = 0,
    });
}

static void word_counting_rules(void **state)
{
    static const struct { const char *prompt; uint32_t words; } cases[] = {
        { "", 0 },
        { "   ", 0 },
        { "hello   world", 2 },
        { "a\\nb\\tc\\r\\nd", 4 },                 /* escaped whitespace separates words */
        { "x\\u0020y\\u00a0z", 3 },                /* escaped spaces too */
        { "don't stop-me now!", 3 },
        { "\xe4\xbd\xa0\xe5\xa5\xbd\xe4\xb8\x96\xe7\x95\x8c", 4 }, /* one word per ideograph */
        { "\\u4f60\\u597d ok", 3 },
        { "caf\xc3\xa9 cr\xc3\xa8me", 2 },
        /* raw Unicode spaces separate words as their escapes do: NBSP, U+1680, U+2000,
         * U+200A, U+2028, U+2029, U+202F, U+205F, U+3000 */
        { "please\xc2\xa0refactor\xc2\xa0this", 3 },
        { "a\xe1\x9a\x80" "b\xe2\x80\x80" "c\xe2\x80\x8a" "d\xe2\x80\xa8" "e\xe2\x80\xa9" "f", 6 },
        { "a\xe2\x80\xaf" "b\xe2\x81\x9f" "c", 3 },
        { "x\xe3\x80\x80\xe3\x80\x80\xe3\x80\x80y", 2 },      /* U+3000 is no ideograph */
        { "design\xe3\x80\x80", 1 },
        { "a\xe2\x80\x8b" "b", 1 },                 /* U+200B (zero width) is no space */
        { "\xc2\xa9 \xc2", 2 },                      /* a lone lead byte at the end */
    };
    char b[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(b, sizeof b, "{\"prompt\":\"%s\"}", cases[i].prompt);
        sc_result r = score_of(*state, SC_EP_GENERATE, b);
        assert_int_equal(r.f.json_ok, 1);
        if (r.f.words != cases[i].words) fail_msg("case %zu: %u words", i, r.f.words);
    }
}

static void keyword_inflections(void **state)
{
    static const char *const hit[] = {
        "design", "Designs", "designed", "designing", "designer", "designers", "refactor",
        "refactored", "REFACTORING", "refactorings", "architecture", "architectures",
        "architectural", "architecturally", "(design)", "design-heavy", "\\u0064esign",
        "re: design", "migrating", "migrated", "migrate", "plan", "planned", "planning",
        "query", "queries",
    };
    static const char *const miss[] = {
        "redesign", "designate", "desig", "architect", "refactory", "designs2",
        "d\xc3\xa9sign", "designo", "refactorization", "plans2", "queryies",
    };
    sc_policy p;
    char err[256], b[256];
    const char *pol = "{\"keywords\":[\"Migrate\",\"plan\",\"query\"]}";
    assert_int_equal(sc_policy_parse(&p, pol, strlen(pol), err, sizeof err), 0);
    sc_scorer *s = sc_scorer_new(&p);
    (void)state;
    for (size_t i = 0; i < sizeof hit / sizeof hit[0]; i++) {
        snprintf(b, sizeof b, "{\"prompt\":\"%s\"}", hit[i]);
        if (score_of(s, SC_EP_GENERATE, b).f.keyword_hits != 1) fail_msg("no hit: %s", hit[i]);
    }
    for (size_t i = 0; i < sizeof miss / sizeof miss[0]; i++) {
        snprintf(b, sizeof b, "{\"prompt\":\"%s\"}", miss[i]);
        if (score_of(s, SC_EP_GENERATE, b).f.keyword_hits != 0) fail_msg("false hit: %s", miss[i]);
    }
    sc_scorer_free(s);
}

/* Keys and the model name are decoded (escapes, in runs or alone) and cut to their buffers. */
static void keys_and_model_are_decoded(void **state)
{
    char body[3 * SC_MODEL_MAX], want[SC_MODEL_MAX];
    sc_result r;

    r = score_of(*state, SC_EP_GENERATE,
                 "{\"pr\\u006fmpt\":\"design it\",\"m\\u006fdel\":\"q\\\"w\\\\en\\u00e9:7b\"}");
    assert_int_equal(r.f.keyword_hits, 1);      /* the escaped key is still "prompt" */
    assert_int_equal(r.f.words, 2);
    assert_string_equal(r.model, "q\"w\\en?:7b"); /* non-ASCII escapes become '?' */

    memset(want, 'm', sizeof want - 1);         /* a name longer than the buffer is cut */
    want[sizeof want - 1] = '\0';
    snprintf(body, sizeof body, "{\"model\":\"%s%s\",\"prompt\":\"x\"}", want, want);
    r = score_of(*state, SC_EP_GENERATE, body);
    assert_true(r.f.json_ok);
    assert_string_equal(r.model, want);
    snprintf(body, sizeof body, "{\"model\":\"%s\\u0041\",\"prompt\":\"x\"}", want);
    r = score_of(*state, SC_EP_GENERATE, body);  /* an escape past the end is dropped too */
    assert_string_equal(r.model, want);
    assert_int_equal(r.f.words, 1);

    /* a NUL in a key does not end it: "model\u0000x" is not "model" */
    r = score_of(*state, SC_EP_GENERATE, "{\"model\\u0000x\":\"deepseek-r1\",\"prompt\":\"hi\"}");
    assert_true(r.f.json_ok);
    assert_string_equal(r.model, "");
}

/* A key repeated in one object counts once, with its last value (as Ollama's decoder and every
 * JSON library read it). */
static void repeated_keys_last_wins(void **state)
{
    static const struct { const char *body; uint32_t words, hits, hmsgs, images, think; } cases[] = {
        { "{\"prompt\":\"a b c d\",\"prompt\":\"x\"}", 1, 0, 0, 0, 0 },
        { "{\"prompt\":\"x\",\"prompt\":\"design a b\"}", 3, 1, 0, 0, 0 },
        { "{\"prompt\":\"a b\",\"system\":\"c\",\"prompt\":\"d\"}", 2, 0, 0, 0, 0 },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"one two\"},{\"role\":\"user\",\"content\":\"three\"}],"
          "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 1, 0, 0, 0, 0 },
        { "{\"messages\":[{\"role\":\"user\",\"content\":\"one two three\",\"content\":\"refactor\"}]}", 1, 1, 0, 0, 0 },
        { "{\"prompt\":\"p\",\"images\":[\"aGk=\",\"aGk=\"],\"images\":[\"aGk=\"]}", 1, 0, 0, 1, 0 },
        { "{\"prompt\":\"p\",\"think\":true,\"think\":false}", 1, 0, 0, 0, 0 },
        { "{\"prompt\":\"p\",\"think\":false,\"think\":true}", 1, 0, 0, 0, 1 },
        { "{\"prompt\":\"p\",\"think\":true,\"reasoning_effort\":\"none\"}", 1, 0, 0, 0, 1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sc_result r = score_of(*state, SC_EP_GENERATE, cases[i].body);
        assert_true(r.f.json_ok);
        if (r.f.words != cases[i].words || r.f.keyword_hits != cases[i].hits ||
            r.f.history_msgs != cases[i].hmsgs || r.f.images != cases[i].images ||
            r.f.think != (int)cases[i].think)
            fail_msg("case %zu: words %u hits %u history %u images %u think %d", i, r.f.words,
                     r.f.keyword_hits, r.f.history_msgs, r.f.images, r.f.think);
    }
}

/* A raw space character and its escape give the same words, hits and score. */
static void raw_and_escaped_spaces_agree(void **state)
{
    sc_result a = score_of(*state, SC_EP_GENERATE, "{\"prompt\":\"please\\u00a0refactor\\u3000this\"}");
    sc_result b = score_of(*state, SC_EP_GENERATE, "{\"prompt\":\"please\xc2\xa0refactor\xe3\x80\x80this\"}");
    assert_int_equal(a.f.words, 3);
    assert_int_equal(b.f.words, a.f.words);
    assert_int_equal(b.f.keyword_hits, 1);
    assert_int_equal(b.f.keyword_hits, a.f.keyword_hits);
    assert_int_equal(b.score, a.score);
}

/* Number literals too long to copy keep their value: tiny stays tiny, 300.000... stays 300. */
static void long_number_literals(void **state)
{
    static const struct { const char *lit; uint32_t want; } cases[] = {
        { "0.00000000000000000000000000000000000000000000000000000000000000000001", 0 },
        { "300.000000000000000000000000000000000000000000000000000000000000000000", 300 },
        { "1.00000000000000000000000000000000000000000000000000000000000000000e3", 1000 },
        { "100000000000000000000000000000000000000000000000000000000000000000000", UINT32_MAX },
        { "-5000000000000000000000000000000000000000000000000000000000000000000000", 0 },
        { "0.000000000000000000000000000000000000000000000000000000000000000000002e70", 20 },
        { "4096", 4096 },
    };
    char b[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(b, sizeof b, "{\"prompt\":\"hi\",\"num_predict\":%s}", cases[i].lit);
        sc_result r = score_of(*state, SC_EP_GENERATE, b);
        assert_true(r.f.json_ok);
        if (r.f.num_predict != cases[i].want) fail_msg("case %zu: %u", i, r.f.num_predict);
    }
}

static void invalid_bodies_score_zero(void **state)
{
    static const char *const bad[] = {
        "", " ", "{", "}", "[]", "null", "\"prompt\"", "42", "{\"prompt\":\"x\"} extra",
        "{\"prompt\":\"unterminated}", "{\"prompt\":\"bad \\x escape\"}", "{\"prompt\":\"\\u12\"}",
        "{\"prompt\":\"raw\ttab\"}", "{\"prompt\":01}", "{\"prompt\":1.}", "{\"prompt\":-}",
        "{\"prompt\":1e}", "{\"a\":tru}", "{\"a\":[1,]}", "{\"a\":1,}", "{,}", "{\"a\" 1}",
        "{'a':1}", "{\"a\":[}", "{\"a\":{\"b\":]}}", "{\"messages\":[{\"content\":\"x\"}",
        "{\"images\":[\"abc", "{\"a\":nul}", "{\"a\":NaN}", "{\"model\":\"m\x01\"}",
        "{\"model\":\"qwen\",\"prompt\":1,}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sc_result r = score_of(*state, SC_EP_CHAT, bad[i]);
        if (r.f.json_ok || r.score != 0 || r.level != SC_LEVEL_LOW) fail_msg("case %zu accepted", i);
        assert_string_equal(r.model, "");
    }
    sc_result r;
    sc_score(*state, SC_EP_CHAT, NULL, 0, 0, &r);
    assert_int_equal(r.score, 0);
    sc_score(*state, SC_EP_CHAT, "{\"prompt\":\"a\0b\"}", 16, 0, &r);  /* NUL inside */
    assert_int_equal(r.f.json_ok, 0);
}

static void deep_nesting_is_bounded(void **state)
{
    const int depth = 5000;
    char *b = malloc((size_t)depth * 2 + 32);
    size_t n = (size_t)sprintf(b, "{\"x\":");
    for (int i = 0; i < depth; i++) b[n++] = '[';
    for (int i = 0; i < depth; i++) b[n++] = ']';
    b[n++] = '}';
    sc_result r;
    sc_score(*state, SC_EP_CHAT, b, n, 0, &r);
    assert_int_equal(r.f.json_ok, 0);           /* deeper than the limit: invalid */
    n = (size_t)sprintf(b, "{\"x\":");
    for (int i = 0; i < 500; i++) b[n++] = '[';
    for (int i = 0; i < 500; i++) b[n++] = ']';
    n += (size_t)sprintf(b + n, ",\"prompt\":\"hi\"}");
    sc_score(*state, SC_EP_CHAT, b, n, 0, &r);
    assert_int_equal(r.f.json_ok, 1);           /* within the limit: fine */
    assert_int_equal(r.f.words, 1);
    free(b);
}

static void unexpected_shapes_are_valid_but_cheap(void **state)
{
    static const char *const odd[] = {
        "{}", "{\"prompt\":42}", "{\"prompt\":{\"a\":\"b\"}}", "{\"messages\":\"hi\"}",
        "{\"messages\":[1,\"x\",null,[]]}", "{\"images\":\"abc\"}", "{\"options\":[1]}",
        "{\"context\":{}}", "{\"tools\":{}}", "{\"model\":7}", "{\"think\":\"none\"}",
        "{\"options\":{\"num_ctx\":1e999,\"num_predict\":-5}}",
        "{\"num_predict\":123456789012345678901234567890}",
    };
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        sc_result r = score_of(*state, SC_EP_CHAT, odd[i]);
        if (!r.f.json_ok) fail_msg("case %zu rejected", i);
        if (r.level != SC_LEVEL_LOW) fail_msg("case %zu not low: %d", i, r.score);
    }
    sc_result r = score_of(*state, SC_EP_CHAT, "{\"options\":{\"num_ctx\":1e999}}");
    assert_int_equal(r.f.num_ctx, UINT32_MAX);  /* saturates */
}

/* ---- the formula ---- */

static void set_field(sc_features *f, int field, double v)
{
    switch (field) {
    case 0: f->words = (uint32_t)v; break;
    case 1: f->history_msgs = (uint32_t)v; break;
    case 2: f->history_words = (uint32_t)v; break;
    case 3: f->keyword_hits = (uint32_t)v; break;
    case 4: f->context_tokens = (uint32_t)v; break;
    case 5: f->num_ctx = (uint32_t)v; break;
    case 6: f->num_predict = (uint32_t)v; break;
    case 7: f->images = (uint32_t)v; break;
    case 8: f->image_bytes = (uint64_t)v; break;
    case 9: f->tools = (uint32_t)v; break;
    case 10: f->format_schema = v > 0; break;
    default: f->think = v > 0; break;
    }
}

#define NFIELDS 12

/* Raising any one feature (from several starting points, for every endpoint and a few
 * weights) never lowers the static score, and the score stays within 0..100. */
static void monotonic_in_every_feature(void **state)
{
    static const double bases[] = { 0, 1, 10, 150, 5000 };
    static const double weights[] = { 0.3, 1.0, 2.5 };
    (void)state;
    for (int ep = SC_EP_GENERATE; ep <= SC_EP_OAI_EMBEDDINGS; ep++)
        for (size_t w = 0; w < 3; w++)
            for (size_t b = 0; b < 5; b++)
                for (int field = 0; field < NFIELDS; field++) {
                    sc_features f;
                    memset(&f, 0, sizeof f);
                    f.json_ok = 1;
                    for (int g = 0; g < NFIELDS; g++) set_field(&f, g, bases[b]);
                    double prev = -1;
                    for (double v = 0; v < 1e7; v = v * 1.5 + 1) {
                        set_field(&f, field, v);
                        double r = sc_static_raw(&f, (sc_endpoint)ep, weights[w]);
                        assert_true(r >= 0 && r <= 100);
                        if (r < prev) fail_msg("ep %d field %d: %g < %g at %g", ep, field, r, prev, v);
                        prev = r;
                    }
                }
}

/* The same through real bodies: more words never score lower. */
static void monotonic_in_words_through_bodies(void **state)
{
    int prev = -1;
    for (int n = 0; n <= 700; n += 7) {
        char *w = words(n);
        sc_result r = generate(*state, "qwen2.5:3b", w);
        assert_true(r.score >= prev);
        prev = r.score;
        free(w);
    }
}

/* The 8-byte text path and the byte-at-a-time path count the same words and keyword hits on
 * random texts mixing keywords, spaces, punctuation, escapes and UTF-8. */
static void fast_path_matches_byte_path(void **state)
{
    static const char *const atoms[] = {
        "design", "Design", "DESIGNED", "refactoring", "architectural", "a", "dog", "redesign",
        " ", "  ", "\\n", "\\t", ",", ".", "-", "(", ")", "\\\"", "\\u0064", "\\u00e9",
        "\\u4f60", "\xc3\xa9", "\xe4\xbd\xa0", "123", "x", "rr", "ddd", "\\/", "\x7f",
        "xxxxxxx", "zzzz", "qqqqqqqqqqq",
    };
    sc_kwset fast, slow;
    sc_features ff, fs;
    char mf[SC_MODEL_MAX], ms[SC_MODEL_MAX], *b = malloc(BODY_MAX);
    uint32_t seed = 7;
    (void)state;
    sc_kwset_build(&fast, NULL);
    slow = fast;
    slow.nfirsts = -1;                  /* byte path only */
    assert_true(fast.nfirsts > 0);
    for (int round = 0; round < 2000; round++) {
        size_t n = (size_t)sprintf(b, "{\"prompt\":\"");
        if (round < 256) {              /* tokens straddling 8-byte chunks at every offset */
            n += (size_t)sprintf(b + n, "%*s%.*sdesign \"}", round % 16, "", round / 16,
                                 "xxxxxxxxxxxxxxxx");
            sc_extract(&fast, b, n, &ff, mf, sizeof mf);
            sc_extract(&slow, b, n, &fs, ms, sizeof ms);
            assert_int_equal(ff.keyword_hits, round < 16 ? 1 : 0);
            assert_int_equal(fs.keyword_hits, ff.keyword_hits);
            continue;
        }
        int atoms_n = (int)(seed % 60);
        for (int i = 0; i < atoms_n; i++) {
            seed = seed * 1103515245u + 12345u;
            const char *a = atoms[(seed >> 8) % (sizeof atoms / sizeof atoms[0])];
            n += (size_t)sprintf(b + n, "%s", a);
        }
        n += (size_t)sprintf(b + n, "\"}");
        sc_extract(&fast, b, n, &ff, mf, sizeof mf);
        sc_extract(&slow, b, n, &fs, ms, sizeof ms);
        assert_int_equal(ff.json_ok, 1);
        if (ff.words != fs.words || ff.keyword_hits != fs.keyword_hits)
            fail_msg("%s: fast %u/%u slow %u/%u", b, ff.words, ff.keyword_hits, fs.words, fs.keyword_hits);
    }
    free(b);
}

static void levels_nearest_threshold_ties_up(void **state)
{
    sc_policy p;
    (void)state;
    sc_policy_default(&p);
    static const struct { int score; sc_level l; } cases[] = {
        { 0, SC_LEVEL_LOW }, { 30, SC_LEVEL_LOW }, { 39, SC_LEVEL_LOW }, { 40, SC_LEVEL_MEDIUM },
        { 50, SC_LEVEL_MEDIUM }, { 64, SC_LEVEL_MEDIUM }, { 65, SC_LEVEL_HIGH },
        { 80, SC_LEVEL_HIGH }, { 100, SC_LEVEL_HIGH },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(sc_level_of(&p, cases[i].score), cases[i].l);
    p.thresholds[0] = 10; p.thresholds[1] = 20; p.thresholds[2] = 90;
    assert_int_equal(sc_level_of(&p, 14), SC_LEVEL_LOW);
    assert_int_equal(sc_level_of(&p, 15), SC_LEVEL_MEDIUM);
    assert_int_equal(sc_level_of(&p, 54), SC_LEVEL_MEDIUM);
    assert_int_equal(sc_level_of(&p, 55), SC_LEVEL_HIGH);
    assert_string_equal(sc_level_name(SC_LEVEL_LOW), "low");
    assert_string_equal(sc_level_name(SC_LEVEL_MEDIUM), "medium");
    assert_string_equal(sc_level_name(SC_LEVEL_HIGH), "high");
    assert_string_equal(sc_level_name(SC_LEVEL_NONE), "none");
}

static void endpoints(void **state)
{
    static const struct { const char *m, *p; sc_endpoint ep; } cases[] = {
        { "POST", "/api/generate", SC_EP_GENERATE }, { "POST", "/api/chat", SC_EP_CHAT },
        { "POST", "/api/embed", SC_EP_EMBED }, { "POST", "/api/embeddings", SC_EP_EMBEDDINGS },
        { "POST", "/v1/chat/completions", SC_EP_OAI_CHAT },
        { "POST", "/v1/completions", SC_EP_OAI_COMPLETIONS },
        { "POST", "/v1/embeddings", SC_EP_OAI_EMBEDDINGS },
        { "GET", "/api/generate", SC_EP_NONE }, { "post", "/api/chat", SC_EP_NONE },
        { "POST", "/api/chat/", SC_EP_NONE }, { "POST", "/api/cha", SC_EP_NONE },
        { "POST", "/api/tags", SC_EP_NONE }, { "POST", "/chat/completions", SC_EP_NONE },
        { "POST", "/", SC_EP_NONE }, { "HEAD", "/", SC_EP_NONE },
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(sc_endpoint_of(cases[i].m, cases[i].p, strlen(cases[i].p)), cases[i].ep);
    assert_int_equal(sc_endpoint_of("POST", "/api/chatty", 9), SC_EP_CHAT);  /* pathlen rules */
}

static void model_weights_longest_prefix(void **state)
{
    sc_policy p;
    char err[256];
    const char *pol = "{\"modelResourceWeights\":{\"llama\":1.5,\"llama3\":3,\"\":0.5,\"llama3.1:70b\":4}}";
    (void)state;
    sc_policy_default(&p);
    assert_true(sc_policy_weight(&p, "deepseek-r1:14b") == 2.5);
    assert_true(sc_policy_weight(&p, "codellama:7b") == 2.0);
    assert_true(sc_policy_weight(&p, "mistral") == 1.0);
    assert_true(sc_policy_weight(&p, "") == 1.0);
    assert_int_equal(sc_policy_parse(&p, pol, strlen(pol), err, sizeof err), 0);
    assert_true(sc_policy_weight(&p, "llama2") == 1.5);
    assert_true(sc_policy_weight(&p, "llama3.1:8b") == 3);
    assert_true(sc_policy_weight(&p, "llama3.1:70b-q4") == 4);
    assert_true(sc_policy_weight(&p, "phi") == 0.5);
}

static void heavier_model_scores_higher(void **state)
{
    char *w = words(120);
    sc_result light = generate(*state, "qwen2.5:3b", w), heavy = generate(*state, "deepseek-r1:7b", w);
    assert_true(heavy.weight == 2.5);
    assert_true(heavy.score > light.score);
    free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(golden_hi_is_low, setup, teardown),
        cmocka_unit_test_setup_teardown(golden_150_words_is_medium, setup, teardown),
        cmocka_unit_test_setup_teardown(golden_over_300_words_is_high, setup, teardown),
        cmocka_unit_test_setup_teardown(golden_keyword_short_medium_long_high, setup, teardown),
        cmocka_unit_test_setup_teardown(golden_chat_history_2000_words_is_high, setup, teardown),
        cmocka_unit_test_setup_teardown(golden_short_embed_is_low, setup, teardown),
        cmocka_unit_test_setup_teardown(same_body_same_score, setup, teardown),
        cmocka_unit_test_setup_teardown(features_of_a_rich_chat, setup, teardown),
        cmocka_unit_test_setup_teardown(features_of_openai_shapes, setup, teardown),
        cmocka_unit_test_setup_teardown(word_counting_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(keyword_inflections, setup, teardown),
        cmocka_unit_test_setup_teardown(raw_and_escaped_spaces_agree, setup, teardown),
        cmocka_unit_test_setup_teardown(repeated_keys_last_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(long_number_literals, setup, teardown),
        cmocka_unit_test_setup_teardown(keys_and_model_are_decoded, setup, teardown),
        cmocka_unit_test_setup_teardown(invalid_bodies_score_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(deep_nesting_is_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(unexpected_shapes_are_valid_but_cheap, setup, teardown),
        cmocka_unit_test(monotonic_in_every_feature),
        cmocka_unit_test_setup_teardown(monotonic_in_words_through_bodies, setup, teardown),
        cmocka_unit_test(fast_path_matches_byte_path),
        cmocka_unit_test(levels_nearest_threshold_ties_up),
        cmocka_unit_test(endpoints),
        cmocka_unit_test(model_weights_longest_prefix),
        cmocka_unit_test_setup_teardown(heavier_model_scores_higher, setup, teardown),
    };
    return cmocka_run_group_tests_name("scoring", tests, NULL, NULL);
}
