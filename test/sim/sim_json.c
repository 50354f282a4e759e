/* sim_json.c — small helpers with exact output formats: Go-compatible JSON strings, Go's time
 * formats, clocks, hashing and the deterministic token vocabulary. */
#include "test/sim/sim.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static const char sim_hex[] = "0123456789abcdef";

/* Decode one UTF-8 sequence at s (n bytes available) like Go's utf8.DecodeRune: returns its
 * length, or 0 when the bytes are not valid UTF-8 (the caller emits U+FFFD for one byte).
 * *cp receives the code point. */
static size_t sim_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    uint32_t c = s[0];
    size_t len;
    uint32_t min;
    if (c < 0x80) { *cp = c; return 1; }
    if (c >= 0xc2 && c <= 0xdf) { len = 2; c &= 0x1f; min = 0x80; }
    else if (c >= 0xe0 && c <= 0xef) { len = 3; c &= 0x0f; min = 0x800; }
    else if (c >= 0xf0 && c <= 0xf4) { len = 4; c &= 0x07; min = 0x10000; }
    else return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return 0; /* overlong, range, surrogate */
    *cp = c;
    return len;
}

/* Escape of one ASCII byte as Go writes it, into out (≥ 7 bytes); returns its length, or 0
 * when the byte is written as is. */
static size_t sim_ascii_escape(unsigned char c, char *out)
{
    switch (c) {
    case '"': memcpy(out, "\\\"", 2); return 2;
    case '\\': memcpy(out, "\\\\", 2); return 2;
    case '\n': memcpy(out, "\\n", 2); return 2;
    case '\r': memcpy(out, "\\r", 2); return 2;
    case '\t': memcpy(out, "\\t", 2); return 2;
    case '\b': memcpy(out, "\\b", 2); return 2;
    case '\f': memcpy(out, "\\f", 2); return 2;
    default: break;
    }
    if (c < 0x20 || c == '<' || c == '>' || c == '&') { /* control chars and Go's HTML escaping */
        memcpy(out, "\\u00", 4);
        out[4] = sim_hex[c >> 4];
        out[5] = sim_hex[c & 0xf];
        return 6;
    }
    return 0;
}

/* Core escaper: calls put(ctx, bytes, n) for each piece.  Runs of plain bytes are passed
 * in one call so the common case costs one copy. */
typedef void (*sim_put_fn)(void *ctx, const char *p, size_t n);

static void sim_json_escape(const char *s, size_t len, sim_put_fn put, void *ctx)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t start = 0, i = 0;
    char esc[8];
    put(ctx, "\"", 1);
    while (i < len) {
        unsigned char c = u[i];
        if (c < 0x80) {
            size_t n = sim_ascii_escape(c, esc);
            if (n == 0) { i++; continue; }
            if (i > start) put(ctx, s + start, i - start);
            put(ctx, esc, n);
            start = ++i;
            continue;
        }
        uint32_t cp = 0;
        size_t n = sim_utf8_decode(u + i, len - i, &cp);
        if (n == 0 || cp == 0x2028 || cp == 0x2029) {
            if (i > start) put(ctx, s + start, i - start);
            if (n == 0) { put(ctx, "\\ufffd", 6); n = 1; }
            else put(ctx, cp == 0x2028 ? "\\u2028" : "\\u2029", 6);
            start = i + n;
        }
        i += n;
    }
    if (i > start) put(ctx, s + start, i - start);
    put(ctx, "\"", 1);
}

static void sim_put_evbuffer(void *ctx, const char *p, size_t n)
{
    evbuffer_add((struct evbuffer *)ctx, p, n);
}

typedef struct sim_strbuf {
    char *out;                          /* destination */
    size_t cap;                         /* its size including the NUL */
    size_t len;                         /* bytes written so far */
} sim_strbuf;

static void sim_put_buf(void *ctx, const char *p, size_t n)
{
    sim_strbuf *b = ctx;
    if (b->len + n + 1 > b->cap) n = b->cap > b->len + 1 ? b->cap - b->len - 1 : 0;
    memcpy(b->out + b->len, p, n);
    b->len += n;
}

/* See sim.h. */
void sim_json_str(struct evbuffer *b, const char *s, size_t len)
{
    sim_json_escape(s, len, sim_put_evbuffer, b);
}

/* See sim.h. */
size_t sim_json_str_buf(char *out, size_t cap, const char *s, size_t len)
{
    sim_strbuf b = { out, cap, 0 };
    if (cap == 0) return 0;
    sim_json_escape(s, len, sim_put_buf, &b);
    out[b.len] = '\0';
    return b.len;
}

/* See sim.h. */
uint64_t sim_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* See sim.h. */
uint64_t sim_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* See sim.h. */
size_t sim_time_rfc3339(char *out, size_t cap, uint64_t wall_ns)
{
    time_t sec = (time_t)(wall_ns / 1000000000ull);
    unsigned ns = (unsigned)(wall_ns % 1000000000ull);
    struct tm tm;
    gmtime_r(&sec, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    if (ns && n + 11 < cap) {
        char frac[16];
        int digits = 9;
        snprintf(frac, sizeof frac, "%09u", ns);
        while (digits > 0 && frac[digits - 1] == '0') digits--; /* Go trims trailing zeros */
        out[n++] = '.';
        memcpy(out + n, frac, (size_t)digits);
        n += (size_t)digits;
    }
    if (n + 2 <= cap) { out[n++] = 'Z'; out[n] = '\0'; }
    return n;
}

/* See sim.h. */
size_t sim_time_http(char *out, size_t cap, uint64_t wall_ns)
{
    time_t sec = (time_t)(wall_ns / 1000000000ull);
    struct tm tm;
    gmtime_r(&sec, &tm);
    return strftime(out, cap, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* See sim.h. */
uint32_t sim_hash(uint32_t h, const void *p, size_t len)
{
    const unsigned char *u = p;
    for (size_t i = 0; i < len; i++) {
        h ^= u[i];
        h *= 16777619u;
    }
    return h;
}

/* The fixed vocabulary; each entry exists with and without a leading space. */
static const char *const sim_words[] = {
    "The", "model", "answer", "is", "a", "simple", "response", "to", "your", "question",
    "and", "it", "uses", "tokens", "from", "fixed", "list", "of", "words", "that",
    "look", "like", "text", "while", "being", "fully", "deterministic", "for", "tests",
    "which", "compare", "bytes", "across", "runs", "so", "every", "request", "with",
    "the", "same", "prompt", "gets", "output", "in", "order", "here", "we", "go",
    "again", "then", "stop", "when", "done", "or", "limit", "reached", "by", "count",
    "time", "each", "chunk", "arrives", "on", "tick",
};
#define SIM_NWORDS (sizeof sim_words / sizeof sim_words[0])
static char sim_spaced[SIM_NWORDS][24];  /* " word" variants, built on first use */
static int sim_spaced_ready;             /* sim_spaced filled */

/* See sim.h. */
const char *sim_token(uint32_t h, int i, int first)
{
    if (!sim_spaced_ready) {
        for (size_t k = 0; k < SIM_NWORDS; k++) snprintf(sim_spaced[k], sizeof sim_spaced[k], " %s", sim_words[k]);
        sim_spaced_ready = 1;
    }
    uint32_t x = h ^ ((uint32_t)i * 2654435761u);
    x ^= x >> 15;
    x *= 2246822519u;
    x ^= x >> 13;
    size_t k = x % SIM_NWORDS;
    return first ? sim_words[k] : sim_spaced[k];
}

/* See sim.h. */
uint64_t sim_count_tokens(size_t bytes)
{
    return (bytes + 3) / 4;
}
