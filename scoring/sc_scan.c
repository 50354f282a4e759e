/* sc_scan.c — a single-pass, allocation-free JSON scanner over request bodies.
 *
 * It walks the body once, validating strict RFC 8259 syntax (not UTF-8: Ollama's Go decoder
 * accepts invalid UTF-8 too), and counts words and keyword hits in place inside the strings
 * that carry text.  Image strings are only skipped (8 bytes per step), never copied.  Nesting
 * deeper than SC_JSON_DEPTH_MAX makes the body invalid; subtrees we do not care about are
 * skipped by an iterative walker with a bit stack, so no input can exhaust the C stack.
 * Why not jansson here: see scoring/README.md ("Why a scanner of our own"). */
#include "scoring/sc_internal.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Byte classes inside strings. */
enum { C_OTHER = 0, C_SPACE, C_ALNUM, C_QUOTE, C_BSLASH, C_CTRL, C_HIGH, C_CJK };
/* copy_string tells the bytes that end a plain run by one range test */
_Static_assert(C_BSLASH == C_QUOTE + 1 && C_CTRL == C_QUOTE + 2, "string stops are contiguous");

/* GNU range designators keep this table readable; gcc and clang both accept them in C11. */
static const uint8_t sc_cls[256] = {
    [0 ... 0x1f] = C_CTRL,
    [' '] = C_SPACE,
    ['"'] = C_QUOTE,
    ['\\'] = C_BSLASH,
    ['0' ... '9'] = C_ALNUM,
    ['A' ... 'Z'] = C_ALNUM,
    ['a' ... 'z'] = C_ALNUM,
    [0x80 ... 0xe2] = C_HIGH,
    [0xe3 ... 0xed] = C_CJK,    /* lead bytes of U+3000..U+DFFF: CJK, kana, Hangul */
    [0xee ... 0xff] = C_HIGH,
};

typedef struct sc_sink {
    uint64_t words;             /* words seen */
    uint64_t hits;              /* keyword hits seen */
} sc_sink;

/* Everything the walk counts, as one value so a key's contribution can be taken back. */
typedef struct sc_counts {
    sc_sink cur;                /* current turn: prompt, system, suffix, input, last message */
    uint64_t hmsgs;             /* earlier messages */
    uint64_t hwords;            /* their words */
    uint64_t ctx;               /* "context" tokens and token-id prompt/input items */
    uint64_t images;            /* images */
    uint64_t image_bytes;       /* their base64 bytes */
    uint64_t tools;             /* tool / function definitions */
    uint64_t schema;            /* JSON schemas given (a flag: > 0) */
    uint64_t think;             /* requests to think (a flag: > 0) */
} sc_counts;

/* Top-level keys whose contribution a repeat of the key replaces (the last one wins, as in
 * Ollama's Go decoder and every JSON library). */
enum { TK_PROMPT, TK_SYSTEM, TK_SUFFIX, TK_INPUT, TK_INSTRUCTIONS, TK_MESSAGES, TK_IMAGES,
       TK_CONTEXT, TK_TOOLS, TK_FUNCTIONS, TK_FORMAT, TK_RESPONSE_FORMAT, TK_THINK,
       TK_REASONING, TK_N };

typedef struct sc_scan {
    const uint8_t *p;           /* cursor */
    const uint8_t *end;         /* one past the body */
    const sc_kwset *kw;         /* keywords to count */
    int depth;                  /* nesting of the value being walked */
    sc_counts n;                /* the counts so far */
    sc_sink pending;            /* the latest non-system message, not yet known to be last */
    int has_pending;            /* 1 when pending holds a message */
    double num_ctx;             /* options.num_ctx */
    double num_predict;         /* num_predict / max_tokens / max_completion_tokens */
    unsigned seen;              /* bit TK_x: that key was walked (last[TK_x] is set) */
    sc_counts last[TK_N];       /* what each key's latest value added (not zeroed: see seen) */
} sc_scan;

/* Token state of the text scanner (a token is a run of ASCII letters/digits). */
typedef struct sc_tok {
    int in_word;                /* inside a whitespace-delimited word */
    int state;                  /* 0 none, 1 keyword candidate, 2 cannot match */
    size_t len;                 /* bytes in buf */
    char buf[SC_TOKEN_MAX];     /* lower-case token so far (candidates only) */
} sc_tok;

static void ws(sc_scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
        s->p++;
}

/* Next non-blank byte without consuming it, or -1 at the end. */
static int peek(sc_scan *s)
{
    ws(s);
    return s->p < s->end ? *s->p : -1;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decode the escape after a backslash (cursor on the byte after '\').  Returns the code
 * unit (0..0xFFFF) and advances, or -1 when invalid. */
static long escape(sc_scan *s)
{
    if (s->p >= s->end) return -1;
    switch (*s->p++) {
    case '"': return '"';
    case '\\': return '\\';
    case '/': return '/';
    case 'b': return '\b';
    case 'f': return '\f';
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    case 'u': break;
    default: return -1;
    }
    if (s->end - s->p < 4) return -1;
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(s->p[i]);
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    s->p += 4;
    return v;
}

/* Skip a string (cursor after the opening quote) and return its raw length in *len, or -1.
 * Eight bytes per step until a quote, backslash or control byte may be near. */
static int skip_string(sc_scan *s, uint64_t *len)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    const uint8_t *start = s->p;
    for (;;) {
        while (s->end - s->p >= 8) {
            uint64_t x;
            memcpy(&x, s->p, 8);
            uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
            /* (v - ones) & ~v & highs is non-zero iff some byte of v is zero (resp. < 0x20) */
            uint64_t hit = ((q - ones) & ~q) | ((b - ones) & ~b) | ((x - ones * 0x20) & ~x);
            if (hit & highs) break;
            s->p += 8;
        }
        if (s->p >= s->end) return -1;
        uint8_t c = *s->p++;
        if (c == '"') break;
        if (c < 0x20) return -1;
        if (c == '\\' && escape(s) < 0) return -1;
    }
    if (len) *len = (uint64_t)(s->p - start - 1);
    return 0;
}

/* Copy a string's decoded bytes (cursor after the quote) into buf (NUL-terminated,
 * truncated to cap-1); the whole string is still validated.  0 or -1. */
static int copy_string(sc_scan *s, char *buf, size_t cap)
{
    size_t n = 0;
    int rc = -1;
    for (;;) {
        /* a run of plain bytes (not '"', '\\' or a control byte) is copied in one go */
        const uint8_t *q = s->p;
        while (q < s->end && (unsigned)(sc_cls[*q] - C_QUOTE) > (unsigned)(C_CTRL - C_QUOTE))
            q++;
        size_t run = (size_t)(q - s->p), room = cap > n + 1 ? cap - n - 1 : 0;
        if (run > room) run = room;
        memcpy(buf + n, s->p, run);
        n += run;
        s->p = q;
        if (s->p >= s->end) goto out;
        uint8_t c = *s->p++;
        long v;
        if (c == '"') break;
        if (c < 0x20) goto out;
        if ((v = escape(s)) < 0) goto out;      /* c is the backslash */
        /* non-ASCII escapes never matter for our keys; a NUL would end the copy early and make
         * "model\u0000x" read as "model" */
        if (n + 1 < cap) buf[n++] = v > 0 && v < 0x80 ? (char)v : '?';
    }
    rc = 0;
out:
    if (cap) buf[n] = '\0';      /* terminated on every path */
    return rc;
}

static void tok_end(const sc_kwset *kw, sc_tok *t, sc_sink *k)
{
    if (t->state == 1 && sc_kwset_match(kw, t->buf, t->len)) k->hits++;
    t->state = 0;
}

/* Feed one decoded character of class cl (c its lower-case ASCII value for C_ALNUM). */
static void tok_feed(const sc_kwset *kw, sc_tok *t, sc_sink *k, int cl, uint8_t c)
{
    switch (cl) {
    case C_SPACE:
        if (t->state) tok_end(kw, t, k);
        t->in_word = 0;
        break;
    case C_ALNUM:
        if (!t->in_word) { t->in_word = 1; k->words++; }
        if (t->state == 0) {
            t->state = kw->first_lo[c] != kw->first_hi[c] ? 1 : 2;
            t->len = 0;
        }
        if (t->state == 1) {
            if (t->len < SC_TOKEN_MAX) t->buf[t->len++] = (char)c;
            else t->state = 2;
        }
        break;
    case C_CJK:         /* an ideograph is a word of its own (CJK text has no spaces) */
        if (t->state) tok_end(kw, t, k);
        k->words++;
        t->in_word = 1;
        t->state = 2;   /* letters glued to it are not a whole word */
        break;
    case C_HIGH:        /* non-ASCII letters: part of the word, never part of a keyword */
        if (!t->in_word) { t->in_word = 1; k->words++; }
        t->state = 2;
        break;
    default:            /* punctuation: part of the word, ends a token */
        if (!t->in_word) { t->in_word = 1; k->words++; }
        if (t->state) tok_end(kw, t, k);
        break;
    }
}

/* 1 for the non-ASCII code points that separate words: U+00A0, U+1680, U+2000..U+200A,
 * U+2028, U+2029, U+202F, U+205F, U+3000. */
static int unicode_space(long v)
{
    return v == 0xa0 || v == 0x1680 || (v >= 0x2000 && v <= 0x200a) || v == 0x2028 ||
           v == 0x2029 || v == 0x202f || v == 0x205f || v == 0x3000;
}

/* Bytes (2 or 3) of the Unicode space whose UTF-8 starts at q (a lead byte), or 0, so a space
 * counts the same written raw or as a \u escape. */
static size_t utf8_space(const uint8_t *q, const uint8_t *end)
{
    if (q[0] < 0xe0)                    /* two bytes: 110xxxxx 10xxxxxx */
        return end - q >= 2 && (q[1] & 0xc0) == 0x80 &&
               unicode_space((long)(q[0] & 0x1f) << 6 | (q[1] & 0x3f)) ? 2 : 0;
    return end - q >= 3 && (q[1] & 0xc0) == 0x80 && (q[2] & 0xc0) == 0x80 &&
           unicode_space((long)(q[0] & 0x0f) << 12 | (long)(q[1] & 0x3f) << 6 | (q[2] & 0x3f))
           ? 3 : 0;
}

/* Class of a code unit from a \u escape. */
static int escaped_class(long v, uint8_t *lc)
{
    if (v < 0x80) {
        *lc = (uint8_t)(v >= 'A' && v <= 'Z' ? v + 32 : v);
        if (v <= 0x20) return C_SPACE;      /* \n, \t, ... and the space itself */
        return sc_cls[v] == C_ALNUM ? C_ALNUM : C_OTHER;
    }
    if (unicode_space(v))
        return C_SPACE;
    if (v >= 0x3000 && v <= 0xd7ff) return C_CJK;
    return C_HIGH;
}

#define SC_ONES 0x0101010101010101ull
#define SC_HIGHS 0x8080808080808080ull

/* Per byte of a word of bytes < 0x80: 0x80 where the byte equals c. */
static inline uint64_t swar_eq(uint64_t x, uint8_t c)
{
    uint64_t y = x ^ (SC_ONES * c);
    return ~((y + SC_ONES * 0x7f) | y) & SC_HIGHS;
}

/* Per byte of a word of bytes < 0x80: 0x80 where the byte is >= n (n <= 0x80). */
static inline uint64_t swar_ge(uint64_t x, uint8_t n)
{
    return ((x | SC_HIGHS) - SC_ONES * n) & SC_HIGHS;
}

/* The 8-byte text path: consume plain ASCII bytes eight at a time, counting word starts with
 * a popcount, and stop before anything the byte path must see: a quote, backslash, control or
 * non-ASCII byte, or the start of a token that could be a keyword.  Keeps t consistent. */
static void swar_text(const sc_kwset *kw, const uint8_t **pp, const uint8_t *end, sc_tok *t,
                      sc_sink *k)
{
    const uint8_t *p = *pp;
    uint64_t carry_sp = t->in_word ? 0 : 0x80;     /* previous byte was a space */
    uint64_t carry_an = t->state == 2 ? 0x80 : 0;  /* previous byte continues a token */
    uint64_t words = 0;
    while (end - p >= 8) {
        uint64_t x, x7;
        memcpy(&x, p, 8);
        x7 = x & ~SC_HIGHS;
        uint64_t special = (x & SC_HIGHS) | (~swar_ge(x7, 0x20) & SC_HIGHS) | swar_eq(x7, '"') |
                           swar_eq(x7, '\\');
        uint64_t sp = swar_eq(x7, ' ');
        uint64_t fold = x7 | (SC_ONES * 0x20);
        uint64_t an = (swar_ge(fold, 'a') & ~swar_ge(fold, 'z' + 1)) |
                      (swar_ge(x7, '0') & ~swar_ge(x7, '9' + 1));
        uint64_t start = an & ~((an << 8) | carry_an);
        uint64_t cand = 0;
        for (int i = 0; i < kw->nfirsts; i++) cand |= swar_eq(fold, kw->firsts[i]);
        uint64_t stop = special | (cand & start);
        int n = stop ? __builtin_ctzll(stop) / 8 : 8;
        if (n == 0) break;
        uint64_t mask = n == 8 ? ~0ull : (1ull << (8 * n)) - 1;
        uint64_t ws = ~sp & ((sp << 8) | carry_sp) & SC_HIGHS & mask;
        words += ((ws >> 7) * SC_ONES) >> 56;      /* popcount of one bit per byte */
        carry_sp = (sp >> (8 * (n - 1))) & 0x80;
        carry_an = (an >> (8 * (n - 1))) & 0x80;
        p += n;
        if (n < 8) break;
    }
    k->words += words;
    t->in_word = !carry_sp;
    t->state = carry_an ? 2 : 0;
    *pp = p;
}

/* Count words and keyword hits of a string into k (cursor after the opening quote). */
static int scan_text(sc_scan *s, sc_sink *k)
{
    const sc_kwset *kw = s->kw;
    sc_tok t = { 0, 0, 0, { 0 } };
    const uint8_t *p = s->p, *end = s->end;
    for (;;) {
        if (t.state != 1 && kw->nfirsts >= 0) swar_text(kw, &p, end, &t, k);
        if (p >= end) return -1;
        uint8_t c = *p++;
        int cl = sc_cls[c];
        if (cl == C_ALNUM) {            /* the hot path: a whole run of letters/digits */
            const uint8_t *st = p - 1;
            while (p < end && sc_cls[*p] == C_ALNUM) p++;
            if (!t.in_word) { t.in_word = 1; k->words++; }
            if (t.state == 0) {
                uint8_t c0 = (uint8_t)(c | (c >= 'A' && c <= 'Z' ? 0x20 : 0));
                t.state = kw->first_lo[c0] != kw->first_hi[c0] ? 1 : 2;
                t.len = 0;
            }
            if (t.state == 1) {
                size_t n = (size_t)(p - st);
                if (t.len + n > SC_TOKEN_MAX) {
                    t.state = 2;
                } else {
                    for (size_t i = 0; i < n; i++)
                        t.buf[t.len++] = (char)(st[i] | (st[i] >= 'A' && st[i] <= 'Z' ? 0x20 : 0));
                }
            }
            continue;
        }
        if (c == 0xc2 || (c >= 0xe1 && c <= 0xe3)) {   /* lead bytes of the Unicode spaces */
            size_t n = utf8_space(p - 1, end);
            if (n) {
                p += n - 1;
                cl = C_SPACE;
            }
        }
        if (cl == C_SPACE) {
            if (t.state) tok_end(kw, &t, k);
            t.in_word = 0;
            continue;
        }
        if (cl == C_QUOTE) break;
        if (cl == C_CTRL) return -1;
        if (cl == C_HIGH && t.in_word && t.state == 2) continue;  /* UTF-8 tails */
        if (cl == C_BSLASH) {
            s->p = p;
            long v = escape(s);
            if (v < 0) return -1;
            p = s->p;
            cl = escaped_class(v, &c);
        }
        tok_feed(kw, &t, k, cl, c);
    }
    if (t.state) tok_end(kw, &t, k);
    s->p = p;
    return 0;
}

/* The value of a valid JSON number literal [p, end) too long to copy: rebuilt as
 * "0.<first significant digits>e<exponent>" (what the digits past SC_NUM_DIGITS change is
 * below a double's precision), so 0.000...01 is tiny and 300.000...0 is 300. */
static double long_number(const uint8_t *p, const uint8_t *end)
{
    char buf[SC_NUM_COPY_MAX];
    size_t n = 0;
    int nd = 0, seen = 0;               /* significant digits kept; a non-zero digit was seen */
    long exp10 = 0, e = 0;

    if (*p == '-')
        buf[n++] = *p++;
    buf[n++] = '0';
    buf[n++] = '.';
    for (; p < end && *p >= '0' && *p <= '9'; p++) {       /* integer part */
        if (!seen && *p == '0')
            continue;
        seen = 1;
        exp10++;
        if (nd < SC_NUM_DIGITS)
            buf[n++] = (char)*p, nd++;
    }
    if (p < end && *p == '.')
        for (p++; p < end && *p >= '0' && *p <= '9'; p++) { /* fraction */
            if (!seen && *p == '0') {
                exp10--;
                continue;
            }
            seen = 1;
            if (nd < SC_NUM_DIGITS)
                buf[n++] = (char)*p, nd++;
        }
    if (p < end && (*p == 'e' || *p == 'E')) {
        int neg = *++p == '-';
        if (*p == '+' || *p == '-')
            p++;
        for (; p < end && *p >= '0' && *p <= '9'; p++)
            if (e < SC_EXP_SATURATE)
                e = e * 10 + (*p - '0');
        exp10 += neg ? -e : e;
    }
    if (!nd)
        return 0;
    snprintf(buf + n, sizeof buf - n, "e%ld", exp10);
    return strtod(buf, NULL);
}

/* Scan a number; its value (fraction and exponent honoured, however long) in *v. */
static int scan_number(sc_scan *s, double *v)
{
    const uint8_t *st = s->p, *p = s->p, *end = s->end;
    if (p < end && *p == '-') p++;
    if (p >= end) return -1;
    if (*p == '0') p++;
    else if (*p >= '1' && *p <= '9') while (p < end && *p >= '0' && *p <= '9') p++;
    else return -1;
    if (p < end && *p == '.') {
        if (++p >= end || *p < '0' || *p > '9') return -1;
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || *p < '0' || *p > '9') return -1;
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    s->p = p;
    if (v) {
        size_t n = (size_t)(p - st);
        if (n < SC_NUM_COPY_MAX) {
            char buf[SC_NUM_COPY_MAX];
            memcpy(buf, st, n);
            buf[n] = '\0';
            *v = strtod(buf, NULL);
        } else {
            *v = long_number(st, p);
        }
    }
    return 0;
}

static int scan_literal(sc_scan *s, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0) return -1;
    s->p += n;
    return 0;
}

/* Skip any value at the cursor.  Iterative: one bit per level records object vs array. */
static int skip_value(sc_scan *s)
{
    uint8_t stack[SC_JSON_DEPTH_MAX / 8 + 1];
    int d = 0;                          /* levels opened by this call */
    int c;
value:
    c = peek(s);
    if (c == '{' || c == '[') {
        if (s->depth + d + 1 > SC_JSON_DEPTH_MAX) return -1;
        int obj = c == '{';
        uint8_t bit = (uint8_t)(1u << (d % 8));
        if (d % 8 == 0) stack[d / 8] = 0;   /* first use of this byte */
        stack[d / 8] = (uint8_t)(obj ? stack[d / 8] | bit : stack[d / 8] & ~bit);
        d++;
        s->p++;
        c = peek(s);
        if (c == (obj ? '}' : ']')) { s->p++; d--; goto after; }
        if (obj) goto key;
        goto value;
    }
    if (c == '"') { s->p++; if (skip_string(s, NULL) < 0) return -1; goto after; }
    if (c == 't') { if (scan_literal(s, "true") < 0) return -1; goto after; }
    if (c == 'f') { if (scan_literal(s, "false") < 0) return -1; goto after; }
    if (c == 'n') { if (scan_literal(s, "null") < 0) return -1; goto after; }
    if (c == '-' || (c >= '0' && c <= '9')) { if (scan_number(s, NULL) < 0) return -1; goto after; }
    return -1;
key:
    if (peek(s) != '"') return -1;
    s->p++;
    if (skip_string(s, NULL) < 0 || peek(s) != ':') return -1;
    s->p++;
    goto value;
after:
    if (d == 0) return 0;
    {
        int obj = (stack[(d - 1) / 8] >> ((d - 1) % 8)) & 1;
        c = peek(s);
        if (c == ',') { s->p++; if (obj) goto key; goto value; }
        if (c == (obj ? '}' : ']')) { s->p++; d--; goto after; }
        return -1;
    }
}

/* ---- container helpers for the semantic walk ---- */

/* Open '{' or '[' (open is that byte).  1 when it is empty (already closed), 0 when members
 * follow, -1 on error. */
static int open_container(sc_scan *s, int open)
{
    if (peek(s) != open || s->depth + 1 > SC_JSON_DEPTH_MAX) return -1;
    s->p++;
    s->depth++;
    if (peek(s) == (open == '{' ? '}' : ']')) { s->p++; s->depth--; return 1; }
    return 0;
}

/* After a member: 0 when another follows (',' consumed), 1 when closed, -1 on error. */
static int next_member(sc_scan *s, int close)
{
    int c = peek(s);
    if (c == ',') { s->p++; return 0; }
    if (c == close) { s->p++; s->depth--; return 1; }
    return -1;
}

/* Read "key": into key (truncated keys never equal ours since they exceed SC_KEY_MAX-1). */
static int read_key(sc_scan *s, char *key)
{
    if (peek(s) != '"') return -1;
    s->p++;
    if (copy_string(s, key, SC_KEY_MAX) < 0 || peek(s) != ':') return -1;
    s->p++;
    return 0;
}

/* Iterate an object: for each member, fn(s, key, arg).  Empty objects are fine. */
typedef int (*sc_member_fn)(sc_scan *s, const char *key, void *arg);
static int each_member(sc_scan *s, sc_member_fn fn, void *arg)
{
    char key[SC_KEY_MAX];
    int r = open_container(s, '{');
    while (r == 0) {
        if (read_key(s, key) < 0 || fn(s, key, arg) < 0) return -1;
        r = next_member(s, '}');
    }
    return r < 0 ? -1 : 0;
}

/* Iterate an array: fn(s, NULL, arg) for each element. */
static int each_element(sc_scan *s, sc_member_fn fn, void *arg)
{
    int r = open_container(s, '[');
    while (r == 0) {
        if (fn(s, NULL, arg) < 0) return -1;
        r = next_member(s, ']');
    }
    return r < 0 ? -1 : 0;
}

static int read_number(sc_scan *s, double *v)
{
    int c = peek(s);
    if (c == '-' || (c >= '0' && c <= '9')) return scan_number(s, v);
    return skip_value(s);
}

/* ---- the semantic walk ---- */

/* prompt / system / suffix / input: a string, or (nested up to twice) arrays of strings or
 * token ids. */
typedef struct sc_textarg {
    sc_sink *k;                 /* where words go */
    int nest;                   /* array levels already entered */
} sc_textarg;

static int walk_text(sc_scan *s, const char *key, void *arg)
{
    sc_textarg *a = arg;
    (void)key;
    int c = peek(s);
    if (c == '"') { s->p++; return scan_text(s, a->k); }
    if (c == '-' || (c >= '0' && c <= '9')) { s->n.ctx++; return scan_number(s, NULL); }
    if (c == '[' && a->nest < 2) {
        sc_textarg in = { a->k, a->nest + 1 };
        return each_element(s, walk_text, &in);
    }
    return skip_value(s);
}

static int image_string(sc_scan *s)
{
    uint64_t n;
    if (skip_string(s, &n) < 0) return -1;
    s->n.images++;
    s->n.image_bytes += n;
    return 0;
}

static int walk_image(sc_scan *s, const char *key, void *arg)
{
    (void)key; (void)arg;
    if (peek(s) == '"') { s->p++; return image_string(s); }
    return skip_value(s);
}

static int walk_images(sc_scan *s)
{
    return peek(s) == '[' ? each_element(s, walk_image, NULL) : skip_value(s);
}

/* {"url": "data:image/png;base64,..."} inside an image_url part */
static int walk_image_url(sc_scan *s, const char *key, void *arg)
{
    if (strcmp(key, "url") == 0) return walk_image(s, NULL, arg);
    return skip_value(s);
}

/* One content part: {"type":"text","text":...} or {"type":"image_url","image_url":...}. */
static int walk_part_member(sc_scan *s, const char *key, void *arg)
{
    if (strcmp(key, "text") == 0) {
        sc_textarg a = { arg, 2 };
        return walk_text(s, NULL, &a);
    }
    if (strcmp(key, "image_url") == 0) {
        int c = peek(s);
        if (c == '"') return walk_image(s, NULL, NULL);
        if (c == '{') return each_member(s, walk_image_url, NULL);
    }
    return skip_value(s);
}

static int walk_part(sc_scan *s, const char *key, void *arg)
{
    (void)key;
    int c = peek(s);
    if (c == '{') return each_member(s, walk_part_member, arg);
    if (c == '"') { s->p++; return scan_text(s, arg); }
    return skip_value(s);
}

typedef struct sc_msg {
    sc_sink k;                  /* this message's words and hits */
    char role[SC_ROLE_MAX];     /* its role */
} sc_msg;

static int walk_msg_member(sc_scan *s, const char *key, void *arg)
{
    sc_msg *m = arg;
    int c = peek(s);
    if (strcmp(key, "role") == 0 && c == '"') { s->p++; return copy_string(s, m->role, sizeof m->role); }
    if (strcmp(key, "content") == 0) {
        memset(&m->k, 0, sizeof m->k);          /* a repeated "content": the last one counts */
        if (c == '"') { s->p++; return scan_text(s, &m->k); }
        if (c == '[') return each_element(s, walk_part, &m->k);
    }
    if (strcmp(key, "images") == 0) return walk_images(s);
    return skip_value(s);
}

static void sink_add(sc_sink *to, const sc_sink *from)
{
    to->words += from->words;
    to->hits += from->hits;
}

/* A message: system prompts belong to the current turn; every other message becomes
 * history once a later one arrives. */
static int walk_message(sc_scan *s, const char *key, void *arg)
{
    (void)key; (void)arg;
    if (peek(s) != '{') return skip_value(s);
    sc_msg m;
    memset(&m, 0, sizeof m);
    if (each_member(s, walk_msg_member, &m) < 0) return -1;
    if (strcmp(m.role, "system") == 0 || strcmp(m.role, "developer") == 0) {
        sink_add(&s->n.cur, &m.k);
        return 0;
    }
    if (s->has_pending) {       /* keyword hits in history are dropped on purpose */
        s->n.hmsgs++;
        s->n.hwords += s->pending.words;
    }
    s->pending = m.k;
    s->has_pending = 1;
    return 0;
}

static int walk_messages(sc_scan *s)
{
    if (peek(s) != '[') return skip_value(s);
    if (each_element(s, walk_message, NULL) < 0) return -1;
    if (s->has_pending) sink_add(&s->n.cur, &s->pending);
    s->has_pending = 0;
    memset(&s->pending, 0, sizeof s->pending);
    return 0;
}

static int count_element(sc_scan *s, const char *key, void *arg)
{
    (void)key;
    (*(uint64_t *)arg)++;
    return skip_value(s);
}

static int walk_options(sc_scan *s, const char *key, void *arg)
{
    (void)arg;
    if (strcmp(key, "num_ctx") == 0) return read_number(s, &s->num_ctx);
    if (strcmp(key, "num_predict") == 0) return read_number(s, &s->num_predict);
    return skip_value(s);
}

static int walk_response_format(sc_scan *s, const char *key, void *arg)
{
    char v[SC_KEY_MAX];
    (void)arg;
    if (strcmp(key, "json_schema") == 0) { s->n.schema++; return skip_value(s); }
    if (strcmp(key, "type") == 0 && peek(s) == '"') {
        s->p++;
        if (copy_string(s, v, sizeof v) < 0) return -1;
        if (strcmp(v, "json_schema") == 0) s->n.schema++;
        return 0;
    }
    return skip_value(s);
}

/* think: true, or an effort level ("low", "medium", "high"); false / "none" / "" are off. */
static int walk_think(sc_scan *s)
{
    char v[SC_KEY_MAX];
    int c = peek(s);
    if (c == 't') { s->n.think++; return scan_literal(s, "true"); }
    if (c != '"') return skip_value(s);
    s->p++;
    if (copy_string(s, v, sizeof v) < 0) return -1;
    if (v[0] && strcmp(v, "none") != 0 && strcmp(v, "false") != 0) s->n.think++;
    return 0;
}

typedef struct sc_top {
    char *model;                /* where "model" goes */
    size_t modellen;            /* its capacity */
} sc_top;

/* A top-level member whose key top_key does not track: the model, and values that simply
 * overwrite (options, num_predict ...); the rest is skipped. */
static int walk_untracked(sc_scan *s, const char *key, void *arg)
{
    sc_top *t = arg;
    int c = peek(s);
    /* why the first byte first: every untracked key of every body goes down this chain, and a
     * call to strcmp per candidate was ~2 % of a small request */
#define IS(name) (key[0] == (name)[0] && strcmp(key, name) == 0)
    if (IS("model") && c == '"') { s->p++; return copy_string(s, t->model, t->modellen); }
    if (IS("options") && c == '{') return each_member(s, walk_options, NULL);
    if (IS("num_predict") || IS("max_tokens") || IS("max_completion_tokens"))
        return read_number(s, &s->num_predict);
#undef IS
    return skip_value(s);
}

/* The value of the tracked top-level key id (TK_*). */
static int walk_tracked(sc_scan *s, int id)
{
    int c = peek(s);
    sc_textarg a = { &s->n.cur, 0 };

    switch (id) {
    case TK_PROMPT: case TK_SYSTEM: case TK_SUFFIX: case TK_INPUT: case TK_INSTRUCTIONS:
        return walk_text(s, NULL, &a);
    case TK_MESSAGES: return walk_messages(s);
    case TK_IMAGES: return walk_images(s);
    case TK_CONTEXT: return c == '[' ? each_element(s, count_element, &s->n.ctx) : skip_value(s);
    case TK_TOOLS: case TK_FUNCTIONS:
        return c == '[' ? each_element(s, count_element, &s->n.tools) : skip_value(s);
    case TK_FORMAT:
        if (c == '{')
            s->n.schema++;
        return skip_value(s);
    case TK_RESPONSE_FORMAT:
        return c == '{' ? each_member(s, walk_response_format, NULL) : skip_value(s);
    default: return walk_think(s);       /* TK_THINK, TK_REASONING */
    }
}

/* The TK_ id of a top-level key, or -1 for keys whose value simply overwrites (model,
 * options, num_predict, ...) or is not looked at. */
static int top_key(const char *key)
{
#define K(name, id) (strcmp(key, name) == 0 ? (id) : -1)
    switch (key[0]) {                   /* why: every key of every body comes here */
    case 'p': return K("prompt", TK_PROMPT);
    case 's': return key[1] == 'y' ? K("system", TK_SYSTEM) : K("suffix", TK_SUFFIX);
    case 'i': return key[1] == 'm' ? K("images", TK_IMAGES)
                   : key[2] == 'p' ? K("input", TK_INPUT) : K("instructions", TK_INSTRUCTIONS);
    case 'm': return K("messages", TK_MESSAGES);
    case 'c': return K("context", TK_CONTEXT);
    case 't': return key[1] == 'o' ? K("tools", TK_TOOLS) : K("think", TK_THINK);
    case 'f': return key[1] == 'o' ? K("format", TK_FORMAT) : K("functions", TK_FUNCTIONS);
    case 'r': return K("response_format", TK_RESPONSE_FORMAT) >= 0 ? TK_RESPONSE_FORMAT
                   : K("reasoning_effort", TK_REASONING);
    default: return -1;
    }
#undef K
}

/* to += sign * d, field by field (unsigned wrap-around makes the subtraction exact). */
static void counts_add(sc_counts *to, const sc_counts *d, int sign)
{
    uint64_t k = sign < 0 ? (uint64_t)-1 : 1;
    to->cur.words += k * d->cur.words;
    to->cur.hits += k * d->cur.hits;
    to->hmsgs += k * d->hmsgs;
    to->hwords += k * d->hwords;
    to->ctx += k * d->ctx;
    to->images += k * d->images;
    to->image_bytes += k * d->image_bytes;
    to->tools += k * d->tools;
    to->schema += k * d->schema;
    to->think += k * d->think;
}

/* One top-level member.  A key seen before has its earlier contribution taken back, so
 * {"prompt":"a b","prompt":"c"} counts "c" alone. */
static int walk_top(sc_scan *s, const char *key, void *arg)
{
    int id = top_key(key);
    sc_counts before, d;

    if (id < 0)
        return walk_untracked(s, key, arg);
    before = s->n;
    if (walk_tracked(s, id) < 0)
        return -1;
    d = s->n;
    counts_add(&d, &before, -1);
    if (s->seen & (1u << id))
        counts_add(&s->n, &s->last[id], -1);
    s->last[id] = d;
    s->seen |= 1u << id;
    return 0;
}

static uint32_t sat32(uint64_t v)
{
    return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

static uint32_t num32(double v)
{
    if (!(v > 0)) return 0;                 /* also NaN; -1 = "unlimited" means no hint */
    return v >= (double)UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

void sc_extract(const sc_kwset *k, const char *body, size_t len, sc_features *f,
                char *model, size_t modellen)
{
    sc_scan s;
    sc_top top = { model, modellen };
    memset(&s, 0, offsetof(sc_scan, last));     /* why not all: last[] is read only where seen says
                                                 * it was written */
    memset(f, 0, sizeof *f);
    if (modellen) model[0] = '\0';
    s.p = (const uint8_t *)body;
    s.end = s.p + (body ? len : 0);
    s.kw = k;
    if (peek(&s) != '{' || each_member(&s, walk_top, &top) < 0 || peek(&s) != -1) {
        if (modellen) model[0] = '\0';      /* invalid: no model, all features 0 */
        return;
    }
    f->json_ok = 1;
    f->words = sat32(s.n.cur.words);
    f->keyword_hits = sat32(s.n.cur.hits);
    f->history_msgs = sat32(s.n.hmsgs);
    f->history_words = sat32(s.n.hwords);
    f->context_tokens = sat32(s.n.ctx);
    f->num_ctx = num32(s.num_ctx);
    f->num_predict = num32(s.num_predict);
    f->images = sat32(s.n.images);
    f->image_bytes = s.n.image_bytes;
    f->tools = sat32(s.n.tools);
    f->format_schema = s.n.schema > 0;
    f->think = s.n.think > 0;
}
