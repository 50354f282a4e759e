/* px_http.c — HTTP helpers shared by the client and upstream sides: gathering header pieces,
 * hop-by-hop rules, the line-end check of request heads, heads built flat (px_head), reason
 * phrases, and the proxy's own error responses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "proxy/px_int.h"

#define PX_HDRS_INITIAL 1024    /* first allocation of a header buffer */
#define PX_HDRS_KEEP 8192       /* a reset keeps a header buffer up to this size */

/* Make *buf hold at least need bytes (need <= max): capacity doubles from first, capped at
 * max, so appending n bytes at a time stays linear.  -1 when memory ran out (*buf intact). */
int px_grow(char **buf, size_t *cap, size_t need, size_t first, size_t max)
{
    size_t c = *cap ? *cap : first;
    char *nb;

    if (need <= *cap)
        return 0;
    while (c < need)
        c *= 2;
    if (c > max)
        c = max;
    nb = realloc(*buf, c);
    if (!nb)
        return -1;
    *buf = nb;
    *cap = c;
    return 0;
}

/* Empty header set that may hold up to limit bytes. */
void px_hdrs_init(px_hdrs *h, size_t limit)
{
    h->buf = NULL;
    h->len = h->cap = 0;
    h->limit = limit;
    h->n = 0;
    h->in_value = 0;
}

/* Empty h for the next message, keeping its buffer unless it grew past PX_HDRS_KEEP (why: one
 * malloc per message less; the offset arrays need no clearing, n says how many are valid). */
void px_hdrs_reset(px_hdrs *h)
{
    if (h->cap > PX_HDRS_KEEP)
        px_hdrs_free(h);
    h->len = 0;
    h->n = 0;
    h->in_value = 0;
}

void px_hdrs_free(px_hdrs *h)
{
    free(h->buf);
    h->buf = NULL;
    h->len = h->cap = 0;
    h->n = 0;
}

/* Append raw bytes; -1 when the limit would be passed or memory ran out. */
static int hdrs_append(px_hdrs *h, const char *p, size_t n)
{
    size_t need = h->len + n + 1;               /* + 1: room for the NUL that ends the piece */
    if (need > h->limit ||
        (need > h->cap && px_grow(&h->buf, &h->cap, need, PX_HDRS_INITIAL, h->limit + 1) < 0))
        return -1;
    memcpy(h->buf + h->len, p, n);
    h->len += n;
    return 0;
}

/* A piece of a header name (is_value 0) or value (1) from llhttp.  The first name piece starts
 * a new line.  -1 on overflow (too many lines or bytes). */
int px_hdrs_piece(px_hdrs *h, int is_value, const char *p, size_t n)
{
    if (!is_value && h->in_value == 0) {         /* a new line begins */
        if (h->n >= PX_MAX_HEADERS)
            return -1;
        h->name[h->n] = (uint32_t)h->len;
        h->in_value = 1;
    }
    return hdrs_append(h, p, n);
}

/* Terminate the name (is_value 0) or the value (1); a value completes the line.  A name's
 * PX_H_* id is worked out here, once. */
int px_hdrs_end_piece(px_hdrs *h, int is_value)
{
    if (!is_value && h->in_value == 0) {         /* empty name (llhttp rejects it anyway) */
        if (h->n >= PX_MAX_HEADERS)
            return -1;
        h->name[h->n] = (uint32_t)h->len;
    }
    /* why the test: every append leaves room for this NUL within the limit, so only an empty
     * name or value (no piece at all) can need the checked path */
    if ((h->len >= h->cap || h->len + 1 > h->limit) && hdrs_append(h, "", 0) < 0)
        return -1;
    h->buf[h->len++] = '\0';
    if (!is_value) {
        h->value[h->n] = (uint32_t)h->len;
        h->id[h->n] = (uint8_t)px_hdr_id(h->buf + h->name[h->n], px_hdrs_name_len(h, h->n));
        h->in_value = 2;
    } else {
        h->end = (uint32_t)h->len;
        h->in_value = 0;
        h->n++;
    }
    return 0;
}

/* Length of header line i's name.  Holds because llhttp runs strict (no lenient flags): a
 * name is a token and cannot contain the NUL that ends it here. */
size_t px_hdrs_name_len(const px_hdrs *h, int i)
{
    return h->value[i] - h->name[i] - 1;        /* the name's NUL sits just before the value */
}

/* Length of complete header line i's value (a value holds no NUL: llhttp refuses one). */
size_t px_hdrs_value_len(const px_hdrs *h, int i)
{
    return (i + 1 < h->n ? h->name[i + 1] : h->end) - h->value[i] - 1;
}

/* Value of the first header line with id (PX_H_*, not PX_H_OTHER), or NULL. */
const char *px_hdrs_find(const px_hdrs *h, int id)
{
    int i;
    for (i = 0; i < h->n; i++)
        if (h->id[i] == id)
            return h->buf + h->value[i];
    return NULL;
}

/* 1 when the token name[0..len) equals lower, a lower-case name of len bytes, in any case.
 * Why c | 0x20 is exact here: lower holds only letters and '-', and the only other byte that
 * ORs to one of those is CR, which llhttp never lets into a name. */
static int name_is(const char *name, const char *lower, size_t len)
{
    const uint64_t case_bits = 0x2020202020202020ull;   /* 0x20 in every byte */
    uint64_t a, b;
    size_t i;

    if (len < sizeof a) {
        for (i = 0; i < len; i++)
            if (((unsigned char)name[i] | 0x20) != (unsigned char)lower[i])
                return 0;
        return 1;
    }
    for (i = 0;; i += sizeof a) {               /* 8 bytes a step; the last step overlaps */
        if (i + sizeof a > len)
            i = len - sizeof a;
        memcpy(&a, name + i, sizeof a);
        memcpy(&b, lower + i, sizeof b);
        if ((a | case_bits) != b)
            return 0;
        if (i + sizeof a == len)
            return 1;
    }
}

/* PX_H_* of the header name[0..len) (any case); PX_H_OTHER for names the proxy passes over. */
int px_hdr_id(const char *name, size_t len)
{
#define IS(s) name_is(name, s, len)
    switch (len) {                              /* why: the length rules out all but one or two */
    case 2: return IS("te") ? PX_H_TE : PX_H_OTHER;
    case 4: return IS("host") ? PX_H_HOST : PX_H_OTHER;
    case 6: return IS("expect") ? PX_H_EXPECT : PX_H_OTHER;
    case 7: return IS("upgrade") ? PX_H_UPGRADE : PX_H_OTHER;
    case 10: return IS("connection") ? PX_H_CONNECTION : IS("keep-alive") ? PX_H_KEEP_ALIVE
                                                                          : PX_H_OTHER;
    case 12: return IS("content-type") ? PX_H_CONTENT_TYPE : PX_H_OTHER;
    case 14: return IS("content-length") ? PX_H_CONTENT_LENGTH : PX_H_OTHER;
    case 15: return IS("x-forwarded-for") ? PX_H_XFF : PX_H_OTHER;
    case 16: return IS("proxy-connection") ? PX_H_PROXY_CONNECTION : PX_H_OTHER;
    case 17: return IS("transfer-encoding") ? PX_H_TRANSFER_ENCODING : PX_H_OTHER;
    default: return PX_H_OTHER;
    }
#undef IS
}

/* 1 for the methods RFC 9110 §9.2.2 calls idempotent: a request that may be sent again. */
int px_method_idempotent(const char *m)
{
    static const char *const idem[] = {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"};
    for (size_t i = 0; i < sizeof idem / sizeof idem[0]; i++)
        if (strcmp(m, idem[i]) == 0)
            return 1;
    return 0;
}

/* The next element of a comma-separated field value at *v (empty ones skipped): its start in
 * *tok and its length without surrounding whitespace; -1 at the end.  Advances *v. */
static long list_next(const char **v, const char **tok)
{
    const char *p = *v, *e;
    size_t tl;

    while (*p == ' ' || *p == '\t' || *p == ',')
        p++;
    if (!*p)
        return -1;
    for (e = p; *e && *e != ','; e++)
        ;
    for (tl = (size_t)(e - p); tl > 0 && (p[tl - 1] == ' ' || p[tl - 1] == '\t'); tl--)
        ;
    *tok = p;
    *v = e;
    return (long)tl;
}

/* 1 when name is one of the comma-separated tokens of list (a Connection header value). */
int px_header_listed(const char *list, const char *name)
{
    size_t nl = strlen(name);
    const char *tok;
    long tl;

    while (list && (tl = list_next(&list, &tok)) >= 0)
        if ((size_t)tl == nl && strncasecmp(tok, name, nl) == 0)
            return 1;
    return 0;
}

/* 1 for the ids (PX_H_*) of headers that describe one hop and are never forwarded as they
 * are. */
int px_hop_by_hop(int id)
{
    return id >= PX_H_CONNECTION && id <= PX_H_TRANSFER_ENCODING;
}

/* 1 when header line i of h describes only this hop: a hop-by-hop name, or one the message's
 * Connection header (its value conn_hdr, NULL when absent) lists.  Neither side forwards it. */
int px_hdrs_hop(const px_hdrs *h, int i, const char *conn_hdr)
{
    if (px_hop_by_hop(h->id[i]))
        return 1;
    if (!conn_hdr)
        return 0;
    /* why every line: Connection is a list, and its field lines combine (RFC 9110 §5.3) */
    for (int k = 0; k < h->n; k++)
        if (h->id[k] == PX_H_CONNECTION && px_header_listed(h->buf + h->value[k], h->buf + h->name[i]))
            return 1;
    return 0;
}

/* Byte classes of field names and Host values (GNU range designators, as in scoring/). */
enum { CH_TCHAR = 1,                    /* token character (RFC 9110 §5.6.2) */
       CH_HOST = 2 };                   /* in uri-host [":" port] (RFC 3986 reg-name, IP-literal) */
static const uint8_t ch_class[256] = {
    ['0' ... '9'] = CH_TCHAR | CH_HOST, ['A' ... 'Z'] = CH_TCHAR | CH_HOST,
    ['a' ... 'z'] = CH_TCHAR | CH_HOST,
    ['!'] = CH_TCHAR | CH_HOST, ['$'] = CH_TCHAR | CH_HOST, ['&'] = CH_TCHAR | CH_HOST,
    ['\''] = CH_TCHAR | CH_HOST, ['*'] = CH_TCHAR | CH_HOST, ['+'] = CH_TCHAR | CH_HOST,
    ['-'] = CH_TCHAR | CH_HOST, ['.'] = CH_TCHAR | CH_HOST, ['_'] = CH_TCHAR | CH_HOST,
    ['~'] = CH_TCHAR | CH_HOST, ['%'] = CH_TCHAR | CH_HOST,
    ['#'] = CH_TCHAR, ['^'] = CH_TCHAR, ['`'] = CH_TCHAR, ['|'] = CH_TCHAR,
    ['('] = CH_HOST, [')'] = CH_HOST, [','] = CH_HOST, [';'] = CH_HOST, ['='] = CH_HOST,
    [':'] = CH_HOST, ['['] = CH_HOST, [']'] = CH_HOST,
};

/* 1 when [s, s+n) is a token (RFC 9110 §5.6.2), as a field name must be: no whitespace, no
 * separators, not empty. */
static int is_token(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!(ch_class[(uint8_t)s[i]] & CH_TCHAR))
            return 0;
    return n > 0;
}

/* 1 when the name that just ended (line h->n) may be forwarded: one of the known names (their
 * ids are given only to exact matches, which are tokens), or else a token.  Why: llhttp 8 lets
 * whitespace into names it does not track ("Host : x"), which would slip past the Host
 * rewrite and the hop-by-hop filter (RFC 9112 §5.1). */
int px_hdrs_name_ok(const px_hdrs *h)
{
    return h->id[h->n] != PX_H_OTHER || is_token(h->buf + h->name[h->n], px_hdrs_name_len(h, h->n));
}

/* 1 when v is a valid Host field value: uri-host [":" port], reg-name, IPv4 or IP-literal
 * characters only (RFC 9112 §3.2); empty is valid. */
int px_host_valid(const char *v)
{
    for (; *v; v++)
        if (!(ch_class[(uint8_t)*v] & CH_HOST))
            return 0;
    return 1;
}

/* 1 when every Transfer-Encoding line of h lists only "chunked": the one transfer coding the
 * proxy decodes (llhttp has already checked that chunked comes last, once). */
int px_te_chunked_only(const px_hdrs *h)
{
    for (int k = 0; k < h->n; k++) {
        const char *v = h->buf + h->value[k], *tok;
        long tl;
        if (h->id[k] != PX_H_TRANSFER_ENCODING)
            continue;
        while ((tl = list_next(&v, &tok)) >= 0)
            if (tl != 7 || strncasecmp(tok, "chunked", 7) != 0)
                return 0;
    }
    return 1;
}

/* Decimal digits of v into out (no NUL); returns their count (at most PX_UINT_DIGITS). */
size_t px_utoa(char *out, unsigned long long v)
{
    char tmp[PX_UINT_DIGITS];
    size_t k = sizeof tmp;
    do {
        tmp[--k] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    memcpy(out, tmp + k, sizeof tmp - k);
    return sizeof tmp - k;
}

/* 1 when the head bytes p[0..n) hold a LF not preceded by CR, or a line that starts with a
 * space or tab (obs-fold).  *last_byte carries the byte before p across reads (0 at the start
 * of a head) and is updated.  llhttp 8 tolerates both in places; we do not, since a proxy and a
 * server that disagree on where a header ends is how requests get smuggled. */
int px_bad_line_ends(const char *p, size_t n, int *last_byte)
{
    const char *q = p, *end = p + n;

    if (n == 0)
        return 0;
    if (*last_byte == '\n' && (p[0] == ' ' || p[0] == '\t'))
        return 1;                               /* a fold right after the previous read */
    while ((q = memchr(q, '\n', (size_t)(end - q))) != NULL) {
        int prev = q > p ? (unsigned char)q[-1] : *last_byte;
        if (prev != '\r')
            return 1;
        if (q + 1 < end && (q[1] == ' ' || q[1] == '\t'))
            return 1;
        q++;
    }
    *last_byte = (unsigned char)p[n - 1];
    return 0;
}

/* Start a head that will be added to out. */
void px_head_begin(px_head *h, struct evbuffer *out)
{
    h->out = out;
    h->len = 0;
}

/* The slow half of px_head_add (px_int.h): n bytes that do not fit in what is left of buf.
 * Order is kept: what buf holds goes out first. */
void px_head_spill(px_head *h, const void *p, size_t n)
{
    evbuffer_add(h->out, h->buf, h->len);
    h->len = 0;
    if (n > sizeof h->buf) {
        evbuffer_add(h->out, p, n);
        return;
    }
    memcpy(h->buf, p, n);
    h->len = n;
}

/* Append "name: value\r\n". */
void px_head_header(px_head *h, const char *name, const char *value)
{
    px_head_add(h, name, strlen(name));
    px_head_add(h, ": ", 2);
    px_head_add(h, value, strlen(value));
    px_head_add(h, "\r\n", 2);
}

/* Append complete header line i of hd as "name: value\r\n" (lengths known: no strlen). */
void px_head_line(px_head *h, const px_hdrs *hd, int i)
{
    const char *n = hd->buf + hd->name[i], *v = hd->buf + hd->value[i];
    size_t nl = px_hdrs_name_len(hd, i), vl = px_hdrs_value_len(hd, i);
    char *o;

    if (h->len + nl + vl + 4 > sizeof h->buf) { /* spills: the general path keeps the order */
        px_head_add(h, n, nl);
        px_head_add(h, ": ", 2);
        px_head_add(h, v, vl);
        px_head_add(h, "\r\n", 2);
        return;
    }
    o = h->buf + h->len;
    memcpy(o, n, nl);
    o += nl;
    *o++ = ':';
    *o++ = ' ';
    memcpy(o, v, vl);
    o += vl;
    *o++ = '\r';
    *o++ = '\n';
    h->len = (size_t)(o - h->buf);
}

/* Add what is still in the buffer to out. */
void px_head_end(px_head *h)
{
    if (h->len > 0)
        evbuffer_add(h->out, h->buf, h->len);
    h->len = 0;
}

/* Reason phrase for the statuses the proxy produces itself. */
const char *px_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
    }
}

/* An error the proxy answers itself, in Ollama's JSON shape ({"error":"..."}) or, for /v1 paths,
 * OpenAI's ({"error":{"message":...,"type":...}}).  msg must be JSON-safe; extra is header
 * lines ("Name: value\r\n"...) to add, or "" (a scored request's X-LiteBrain-* headers). */
void px_error_response(struct evbuffer *out, int status, int v1, const char *msg,
                       const char *extra, int close, int head_only)
{
    char body[512];
    int n;

    if (v1)
        n = snprintf(body, sizeof body,
                     "{\"error\":{\"message\":\"%s\",\"type\":\"%s\",\"param\":null,\"code\":null}}",
                     msg, status >= 500 ? "server_error" : "invalid_request_error");
    else
        n = snprintf(body, sizeof body, "{\"error\":\"%s\"}", msg);
    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\nContent-Type: application/json; charset=utf-8\r\n"
                        "Content-Length: %d\r\n%s%s\r\n",
                        status, px_reason(status), n, extra, close ? "Connection: close\r\n" : "");
    if (!head_only)                             /* a HEAD request's answer has no content */
        evbuffer_add(out, body, (size_t)n);
}
