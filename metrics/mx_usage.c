/* mx_usage.c — token usage scanner.  Fed the decoded response body in arbitrary pieces while
 * the proxy relays it; picks the token counts out of
 *   - Ollama's final NDJSON chunk or non-stream JSON: top-level prompt_eval_count, eval_count,
 *     eval_duration (after a possibly huge "context" array on /api/generate);
 *   - OpenAI JSON or the SSE usage chunk (`data: {...}`): top-level usage.prompt_tokens,
 *     usage.completion_tokens.
 * One byte-at-a-time state machine over JSON structure: strings (with escapes), nesting depth
 * and, on the watched levels only, object keys.  Generated text always sits inside JSON
 * strings and tool-call arguments sit deeper than the watched levels, so neither can be taken
 * for a count.  No allocation; the state lives in mx_usage, so any split point gives the same
 * result as one piece. */
#include <limits.h>
#include <string.h>
#include "metrics/metrics.h"

/* The field a pending value belongs to (mx_usage.field). */
enum { FLD_NONE = 0, FLD_PROMPT_EVAL, FLD_EVAL, FLD_EVAL_DURATION, FLD_USAGE, FLD_U_PROMPT,
       FLD_U_COMPLETION };

#define KEY_TOO_LONG (MX_USAGE_TAIL + 1)        /* mx_usage.len: key not one we want */
#define DEPTH_MAX 1000000u                      /* depth saturates here (garbage input) */

void mx_usage_init(mx_usage *u)
{
    memset(u, 0, sizeof *u);
    u->prompt_tokens = -1;
    u->output_tokens = -1;
}

/* Forget the parse state (not the results): next byte starts a fresh document. */
static void reset_parse(mx_usage *u)
{
    u->depth = 0;
    u->len = 0;
    u->num = 0;
    u->in_string = u->escaped = u->key_string = u->expect_key = 0;
    u->field = FLD_NONE;
    u->in_number = u->num_bad = u->top_object = u->in_usage = 0;
}

/* 1 when keys at the current depth are ones we look at. */
static int watched(const mx_usage *u)
{
    return (u->depth == 1 && u->top_object) || (u->depth == 2 && u->in_usage);
}

/* Which field the key just read names, given the level it was read on. */
static int key_field(const mx_usage *u)
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
static void commit_number(mx_usage *u)
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
static void string_byte(mx_usage *u, char c)
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
            u->field = (uint8_t)key_field(u);
        }
        return;
    }
    if (c == '\n') {                    /* a raw newline cannot be inside a JSON string */
        reset_parse(u);
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
static int number_byte(mx_usage *u, char c)
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
    commit_number(u);
    u->in_number = 0;
    u->field = FLD_NONE;
    return 0;
}

/* One structural byte (outside strings and wanted numbers). */
static void struct_byte(mx_usage *u, char c)
{
    switch (c) {
    case '"':
        u->in_string = 1;
        u->escaped = 0;
        u->key_string = watched(u) && u->expect_key;
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
        u->expect_key = watched(u);
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
        u->expect_key = watched(u);
        u->field = FLD_NONE;
        break;
    case ':':
        break;                          /* the pending field waits for its value */
    case ' ': case '\t': case '\r': case '\n':
        break;
    default:
        if (c >= '0' && c <= '9' && watched(u) && u->field != FLD_NONE && u->field != FLD_USAGE) {
            u->in_number = 1;
            u->num_bad = 0;
            u->num = (uint64_t)(c - '0');
        } else if (c == '-' && watched(u) && u->field != FLD_NONE) {
            u->in_number = 1;
            u->num_bad = 1;             /* negative: read and ignore */
        } else {
            u->field = FLD_NONE;        /* true / false / null / SSE text */
        }
        break;
    }
}

void mx_usage_feed(mx_usage *u, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (u->in_string)
            string_byte(u, c);
        else if (!u->in_number || !number_byte(u, c))
            struct_byte(u, c);
    }
}

void mx_usage_finish(mx_usage *u)
{
    if (u->in_number && !u->in_string)
        commit_number(u);
    reset_parse(u);
}
