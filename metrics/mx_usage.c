/* mx_usage.c — token usage scanner.  Fed the decoded response body in arbitrary pieces while
 * the proxy relays it; picks the token counts out of
 *   - Ollama's final NDJSON chunk or non-stream JSON: top-level prompt_eval_count, eval_count,
 *     eval_duration (after a possibly huge "context" array on /api/generate);
 *   - OpenAI JSON or the SSE usage chunk (`data: {...}`): top-level usage.prompt_tokens,
 *     usage.completion_tokens.
 * One state machine over JSON structure: strings (with escapes), nesting depth and, on the
 * watched levels only, object keys; runs of bytes that cannot change its state (string
 * contents, and numbers, commas and whitespace where no wanted field is pending — e.g. a
 * `context` array) are skipped 16 bytes at a time (SSE2; 8 with a portable word trick).
 * Generated text always sits inside JSON strings and tool-call arguments sit deeper than the
 * watched levels, so neither can be taken for a count.  No allocation; the state lives in
 * mx_usage, so any split point gives the same result as one piece. */
#include <ctype.h>
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

/* Recompute u->watch: 1 when keys at the current depth are ones we look at.  Called wherever
 * depth, top_object or in_usage change (why cached: the scan asks at nearly every stop). */
static void set_watch(mx_usage *u)
{
    u->watch = (u->depth == 1 && u->top_object) || (u->depth == 2 && u->in_usage);
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
    set_watch(u);
}

/* Which field the key names, given the depth it was read on (len > MX_USAGE_TAIL: none). */
static int key_field(const char *key, size_t len, uint32_t depth)
{
#define IS(s) (len == sizeof s - 1 && memcmp(key, s, sizeof s - 1) == 0)
    if (depth == 1)
        return IS("prompt_eval_count") ? FLD_PROMPT_EVAL : IS("eval_count") ? FLD_EVAL :
               IS("eval_duration") ? FLD_EVAL_DURATION : IS("usage") ? FLD_USAGE : FLD_NONE;
    if (depth == 2)
        return IS("prompt_tokens") ? FLD_U_PROMPT :
               IS("completion_tokens") ? FLD_U_COMPLETION : FLD_NONE;
#undef IS
    return FLD_NONE;
}

/* A count as stored: clamped to LONG_MAX. */
static long as_count(uint64_t v)
{
    return v > (uint64_t)LONG_MAX ? LONG_MAX : (long)v;
}

/* Store the integer just read into its field. */
static void commit_number(mx_usage *u)
{
    long v = as_count(u->num);
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
            u->field = (uint8_t)key_field(u->line, u->len, u->depth);
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
        u->key_string = u->watch && u->expect_key;
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
        set_watch(u);
        u->expect_key = u->watch;
        u->field = FLD_NONE;
        break;
    case '[':
        if (u->depth == 0)
            u->top_object = u->in_usage = 0;
        if (u->depth < DEPTH_MAX)
            u->depth++;
        set_watch(u);
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
        set_watch(u);
        u->expect_key = 0;
        u->field = FLD_NONE;
        break;
    case ',':
        u->expect_key = u->watch;
        u->field = FLD_NONE;
        break;
    case ':':
        break;                          /* the pending field waits for its value */
    case ' ': case '\t': case '\r': case '\n':
        break;
    default:
        if (c >= '0' && c <= '9' && u->watch && u->field != FLD_NONE && u->field != FLD_USAGE) {
            u->in_number = 1;
            u->num_bad = 0;
            u->num = (uint64_t)(c - '0');
        } else if (c == '-' && u->watch && u->field != FLD_NONE) {
            u->in_number = 1;
            u->num_bad = 1;             /* negative: read and ignore */
        } else {
            u->field = FLD_NONE;        /* true / false / null / SSE text */
        }
        break;
    }
}

/* Bytes that can change the state, by the state we are in (bits of stop_table[c]). */
enum { STOP_STRING = 1,                 /* in a string: '"', '\\', raw '\n' */
       STOP_DEEP = 2,                   /* quiet, level not watched: '"' '{' '}' '[' ']' */
       STOP_WATCHED = 4 };              /* quiet, watched level: those and ',' */

static const uint8_t stop_table[256] = {
    ['"'] = STOP_STRING | STOP_DEEP | STOP_WATCHED, ['\\'] = STOP_STRING, ['\n'] = STOP_STRING,
    ['{'] = STOP_DEEP | STOP_WATCHED, ['}'] = STOP_DEEP | STOP_WATCHED,
    ['['] = STOP_DEEP | STOP_WATCHED, [']'] = STOP_DEEP | STOP_WATCHED, [','] = STOP_WATCHED,
};

/* The brackets { } [ ] share a bit pattern: c & BRACKET_MASK == BRACKET_BITS (so do the
 * look-alikes Y _ y DEL, which the exact stop_table check passes over). */
#define BRACKET_MASK 0xD9
#define BRACKET_BITS 0x59

#if defined(__SSE2__) && !defined(MX_USAGE_NO_SIMD)
#include <emmintrin.h>
#define BLOCK_BYTES 16                  /* bytes tested at once */
typedef unsigned marks;                 /* bit i: byte i of the block may be a stop */

/* Bit i set when byte i of the block at p may be in the stop set `set`. */
static inline marks block_marks(const char *p, int set)
{
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i hit = _mm_cmpeq_epi8(v, _mm_set1_epi8('"'));
    if (set == STOP_STRING) {
        hit = _mm_or_si128(hit, _mm_cmpeq_epi8(v, _mm_set1_epi8('\\')));
        hit = _mm_or_si128(hit, _mm_cmpeq_epi8(v, _mm_set1_epi8('\n')));
    } else {
        __m128i b = _mm_and_si128(v, _mm_set1_epi8((char)BRACKET_MASK));
        hit = _mm_or_si128(hit, _mm_cmpeq_epi8(b, _mm_set1_epi8(BRACKET_BITS)));
        if (set == STOP_WATCHED)
            hit = _mm_or_si128(hit, _mm_cmpeq_epi8(v, _mm_set1_epi8(',')));
    }
    return (marks)_mm_movemask_epi8(hit);
}
#define LOWEST_MARK(m) ((size_t)__builtin_ctz(m))
#else
#define BLOCK_BYTES 8                   /* bytes tested at once (one 64-bit word) */
#define WORD_OF(c) (0x0101010101010101ull * (uint8_t)(c))
typedef uint64_t marks;                 /* top bit of byte i: byte i may be a stop */

/* Top bit set in each byte of v that is 0: every 0 byte is marked; a byte just above a 0
 * byte (in significance) may be marked too; non-zero exactly when v has a 0 byte. */
static inline uint64_t zero_bytes(uint64_t v)
{
    return (v - WORD_OF(0x01)) & ~v & WORD_OF(0x80);
}

/* Marks (top bits) for the bytes of the word at p that may be in the stop set `set`; every
 * byte of the set is marked. */
static inline marks block_marks(const char *p, int set)
{
    uint64_t w;
    memcpy(&w, p, sizeof w);            /* why: unaligned, alias-safe load */
    if (set == STOP_STRING)
        return zero_bytes(w ^ WORD_OF('"')) | zero_bytes(w ^ WORD_OF('\\')) |
               zero_bytes(w ^ WORD_OF('\n'));
    return zero_bytes(w ^ WORD_OF('"')) |
           zero_bytes((w & WORD_OF(BRACKET_MASK)) ^ WORD_OF(BRACKET_BITS)) |
           (set == STOP_WATCHED ? zero_bytes(w ^ WORD_OF(',')) : 0);
}
#if defined(__GNUC__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define LOWEST_MARK(m) ((size_t)__builtin_ctzll(m) / 8)
#endif
#endif

/* The first stop (of set `set`) in the block at p, given its marks m; NULL when none.  Marks
 * are candidates only: each is checked against stop_table. */
static inline const char *block_stop(const char *p, marks m, int set)
{
#ifdef LOWEST_MARK
    for (; m; m &= m - 1) {             /* lowest-addressed mark first */
        const char *c = p + LOWEST_MARK(m);
        if (stop_table[(uint8_t)*c] & set)
            return c;
    }
#else
    (void)m;                            /* any byte order: look at every byte */
    for (const char *c = p; c < p + BLOCK_BYTES; c++)
        if (stop_table[(uint8_t)*c] & set)
            return c;
#endif
    return NULL;
}

/* The first byte in [p, end) of the stop set `set`, or end.  Everything before it leaves the
 * scanner's state as it is, so the caller may pass over it.  Never reads outside [p, end). */
static inline const char *skip_to_stop(const char *p, const char *end, int set)
{
    for (; end - p >= BLOCK_BYTES; p += BLOCK_BYTES) {
        marks m = block_marks(p, set);
        if (m) {
            const char *c = block_stop(p, m, set);
            if (c)
                return c;
        }
    }
    while (p < end && !(stop_table[(uint8_t)*p] & set))  /* the last partial block */
        p++;
    return p;
}

/* Append the plain bytes [p, q) (no quote, backslash or newline) to the key being read. */
static inline void key_append(mx_usage *u, const char *p, const char *q)
{
    size_t k = (size_t)(q - p);
    if (u->len + k > MX_USAGE_TAIL) {
        if (k > 0)
            u->len = KEY_TOO_LONG;
        return;
    }
    memcpy(u->line + u->len, p, k);
    u->len += k;
}

/* The state machine of string_byte / number_byte / struct_byte, byte by byte where it matters
 * and skipping runs that cannot change the state: string contents up to the next quote,
 * backslash or raw newline, and, while no field is pending ("quiet"), everything up to the
 * next byte that opens or closes a string or container (or a ',' on a watched level, which
 * makes the next string a key).  Outside strings and pending fields, digits, ':', whitespace
 * and literals only ever set field to FLD_NONE, which it already is.  A key that ends in the
 * same piece it starts in is matched in place, without copying it into line. */
void mx_usage_feed(mx_usage *u, const char *p, size_t n)
{
    const char *end = p + n;
    while (p < end) {
        if (u->in_string) {
            if (u->escaped) {
                string_byte(u, *p++);
                continue;
            }
            const char *q = skip_to_stop(p, end, STOP_STRING);
            if (u->key_string) {
                if (u->len == 0 && q < end && *q == '"') {      /* the whole key is here */
                    u->in_string = u->key_string = 0;
                    u->field = (uint8_t)key_field(p, (size_t)(q - p), u->depth);
                    p = q + 1;
                    continue;
                }
                key_append(u, p, q);
            }
            p = q;
            if (p < end)
                string_byte(u, *p++);
        } else if (u->in_number) {
            if (number_byte(u, *p))
                p++;
            else
                struct_byte(u, *p++);
        } else if (u->field == FLD_NONE) {
            int w = u->watch;
            p = skip_to_stop(p, end, w ? STOP_WATCHED : STOP_DEEP);
            if (p == end)
                break;
            if (*p == '"') {            /* the common stop, as struct_byte would take it */
                u->in_string = 1;
                u->escaped = 0;
                u->key_string = (uint8_t)(w && u->expect_key);
                u->len = 0;
                u->expect_key = 0;
                p++;
            } else if (*p == ',') {     /* the next commonest, as struct_byte would take it */
                u->expect_key = (uint8_t)w;
                p++;
            } else {
                struct_byte(u, *p++);
            }
        } else {
            struct_byte(u, *p++);
        }
    }
}

void mx_usage_finish(mx_usage *u)
{
    if (u->in_number && !u->in_string)
        commit_number(u);
    reset_parse(u);
}

/* ---- a whole body, read from its end ----
 *
 * Why: a non-streamed answer carries its counts at the end (Ollama: after the text and the
 * context array; OpenAI: the usage object, last), and when the proxy holds the whole body in
 * one piece it can read the last members first and stop once the counts are known, instead of
 * walking the text and the context array.  Reading JSON backwards is exact for valid JSON: a
 * quote is escaped exactly when an odd run of backslashes precedes it, so strings can be
 * skipped from their end.  Anything this reader does not expect sends the body to
 * mx_usage_feed instead, so it only ever decides for bodies it has understood. */

/* Members of interest, as a backward walk finds them (first found = last in the body). */
typedef struct whole {
    long prompt, output;        /* counts, -1 until found */
    uint64_t eval_ns;           /* eval_duration */
    uint8_t has_eval_ns;        /* eval_duration found */
} whole;

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The last non-whitespace byte at or before q (lo <= q), or NULL. */
static const char *back_ws(const char *lo, const char *q)
{
    while (q >= lo && is_ws(*q))
        q--;
    return q >= lo ? q : NULL;
}

/* Given q at a string's closing quote, its opening quote, or NULL. */
static const char *back_string(const char *lo, const char *q)
{
    const char *r = q;
    while ((r = memrchr(lo, '"', (size_t)(r - lo))) != NULL) {
        const char *b = r;
        while (b > lo && b[-1] == '\\')
            b--;
        if (((r - b) & 1) == 0)
            return r;                           /* not escaped */
    }
    return NULL;
}

/* Given q at a container's closing bracket, its opening one, or NULL. */
static const char *back_container(const char *lo, const char *q)
{
    uint32_t depth = 0;
    for (; q >= lo; q--) {
        char c = *q;
        if (c == '"') {
            if (!(q = back_string(lo, q)))
                return NULL;
        } else if (c == '}' || c == ']') {
            depth++;
        } else if (c == '{' || c == '[') {
            if (--depth == 0)
                return q;
        }
    }
    return NULL;
}

/* The digits [a, b] as a count, exactly as number_byte/commit_number would take them; -1
 * when they are not a plain non-negative integer (those never count). */
static int plain_integer(const char *a, const char *b, uint64_t *v)
{
    uint64_t n = 0;
    for (const char *c = a; c <= b; c++) {
        uint64_t d = (uint64_t)(*c - '0');
        if (*c < '0' || *c > '9' || n > (UINT64_MAX - d) / 10)
            return -1;
        n = n * 10 + d;
    }
    *v = n;
    return 0;
}

/* Walk the members of the object whose closing brace is at q, last first, at depth (1: the
 * top level, 2: its "usage").  Returns the opening brace, or NULL when the bytes are not what
 * valid JSON would have; at depth 1 it may also stop early (*done) once every count is in. */
static const char *back_members(const char *lo, const char *q, int depth, whole *w, int *done)
{
    q = back_ws(lo, q - 1);
    if (q && *q == '{')
        return q;                               /* {} */
    while (q) {
        const char *vend = q, *vstart, *kend, *kstart;
        if (*q == '"')
            vstart = back_string(lo, q);
        else if (*q == '}' || *q == ']')
            vstart = back_container(lo, q);
        else {
            for (vstart = q; vstart > lo && (isalnum((unsigned char)vstart[-1]) ||
                                             vstart[-1] == '.' || vstart[-1] == '+' ||
                                             vstart[-1] == '-'); vstart--)
                ;
            if (!isalnum((unsigned char)*q))
                return NULL;
        }
        if (!vstart || !(q = back_ws(lo, vstart - 1)) || *q != ':' ||
            !(kend = back_ws(lo, q - 1)) || *kend != '"' || !(kstart = back_string(lo, kend)))
            return NULL;
        size_t klen = (size_t)(kend - kstart - 1);
        int f = klen <= MX_USAGE_TAIL ? key_field(kstart + 1, klen, (uint32_t)depth) : FLD_NONE;
        uint64_t v;
        if (f == FLD_USAGE) {
            if (*vend == '}' && !back_members(lo, vend, 2, w, done))
                return NULL;
        } else if (f != FLD_NONE && plain_integer(vstart, vend, &v) == 0) {
            if ((f == FLD_PROMPT_EVAL || f == FLD_U_PROMPT) && w->prompt < 0)
                w->prompt = as_count(v);
            else if ((f == FLD_EVAL || f == FLD_U_COMPLETION) && w->output < 0)
                w->output = as_count(v);
            else if (f == FLD_EVAL_DURATION && !w->has_eval_ns) {
                w->eval_ns = v;
                w->has_eval_ns = 1;
            }
        }
        if (depth == 1 && w->prompt >= 0 && w->output >= 0 && w->has_eval_ns) {
            *done = 1;                          /* earlier members cannot change a thing */
            return kstart;
        }
        q = back_ws(lo, kstart - 1);
        if (q && *q == '{')
            return q;
        if (!q || *q != ',' || !(q = back_ws(lo, q - 1)))
            return NULL;
    }
    return NULL;
}

void mx_usage_whole(mx_usage *u, const char *p, size_t n)
{
    whole w = { -1, -1, 0, 0 };
    const char *q = n ? back_ws(p, p + n - 1) : NULL, *open;
    int done = 0;

    if (u->depth == 0 && !u->in_string && q && *q == '}' &&
        (open = back_members(p, q, 1, &w, &done)) != NULL &&
        (done || !back_ws(p, open - 1))) {      /* stopped early, or the body's one object */
        if (w.prompt >= 0)
            u->prompt_tokens = w.prompt;
        if (w.output >= 0)
            u->output_tokens = w.output;
        if (w.has_eval_ns)
            u->eval_duration_ns = w.eval_ns;
        return;
    }
    mx_usage_feed(u, p, n);
}
