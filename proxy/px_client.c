/* px_client.c — the client side: accept, strict request parsing with llhttp, limits and
 * timeouts, dispatch to the upstream side, keep-alive and pipelining, and the SIGTERM drain.
 *
 * Data path: socket → px_sock input → llhttp (paused at the end of the head and of the
 * message, so we know exactly which bytes were head, body, or the next pipelined request) →
 * px_req (headers + buffered body) → upstream request → px_upstream.c, then hooks.on_request. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include "proxy/px_int.h"

static llhttp_settings_t req_settings;          /* static: outlives every parser */

static void conn_free(px_conn *c);
static void conn_close(px_conn *c);
static int conn_parse(px_conn *c);
static void next_request(px_conn *c);
static void conn_arm(px_conn *c, int kind);

/* Client connections, from chunks (why: see px_slab.c). */
static px_slab conn_slab = PX_SLAB_INIT(px_conn);

/* Free the connection slab's chunks (at exit, after px_close_all). */
void px_conn_slab_free(void)
{
    px_slab_free(&conn_slab);
}

/* ---------- requests ---------- */

/* Finished exchanges kept for reuse (why: a px_req is ~1.7 KiB that calloc would zero, and
 * its header buffer another malloc, on every request).  Static: one loop, one thread. */
static px_req *req_pool[PX_REQ_POOL_MAX];
static int req_pool_n;

/* A fresh exchange on c, started now. */
static px_req *req_new(px_conn *c)
{
    px_req *r;

    if (req_pool_n > 0) {
        r = req_pool[--req_pool_n];
        memset(r, 0, offsetof(px_req, hdrs));   /* everything but the headers, kept last */
        px_hdrs_reset(&r->hdrs);
    } else {
        r = calloc(1, sizeof *r);
        if (!r)
            return NULL;
        px_hdrs_init(&r->hdrs, 0);
    }
    r->hdrs.limit = c->srv->cfg->max_header_bytes;
    r->conn = c;
    r->v.t_start = px_now();
    llhttp_init(&r->parser, HTTP_REQUEST, &req_settings);
    r->parser.data = c;
    r->v.method = r->method;
    r->v.path = "";
    r->v.content_type = "";
    r->v.resp_length = -1;
    return r;
}

/* Free r's target, path and body buffers that are larger than keep bytes (0: all of them). */
static void req_buffers_trim(px_req *r, size_t keep)
{
    if (r->target_cap > keep) {
        free(r->target);
        r->target = NULL;
        r->target_cap = 0;
    }
    if (r->path_cap > keep) {
        free(r->path);
        r->path = NULL;
        r->path_cap = 0;
    }
    if (r->body_cap > keep) {
        free(r->body);
        r->body = NULL;
        r->body_cap = 0;
    }
}

/* Free r, or pool it with its small buffers (why: five allocations fewer per request). */
static void req_free(px_req *r)
{
    if (r->upreq)
        px_buf_put(r->upreq);
    if (PX_POOLING && req_pool_n < PX_REQ_POOL_MAX) {
        req_buffers_trim(r, PX_REQ_KEEP);
        req_pool[req_pool_n++] = r;
        return;
    }
    req_buffers_trim(r, 0);
    px_hdrs_free(&r->hdrs);
    free(r);
}

/* Free the pooled exchanges (at exit, so leak checkers see a clean heap). */
void px_req_pool_free(void)
{
    while (req_pool_n > 0) {
        px_req *r = req_pool[--req_pool_n];
        req_buffers_trim(r, 0);
        px_hdrs_free(&r->hdrs);
        free(r);
    }
}

/* Finish r exactly once: hooks, access log.  Does not free r or touch the sockets. */
void px_req_finish(px_req *r, px_end end, int status)
{
    px_server *s = r->conn->srv;
    char path[256];

    if (r->v.t_end > 0)
        return;
    r->v.t_end = px_now();
    r->v.end = end;
    r->v.status = status;
    if (r->state >= RQ_UPSTREAM)
        s->inflight--;
    if (s->hooks.on_finish)
        s->hooks.on_finish(s->hooks.ud, &r->hook_data, &r->v);
    if (!px_log_on(PX_LOG_INFO))
        return;                                 /* why: the escape below costs ~2 % a request */
    px_json_escape(r->v.path, path, sizeof path);
    px_log(PX_LOG_INFO, "request",
           "\"method\":\"%s\",\"path\":\"%s\",\"status\":%d,\"seconds\":%.3f,\"bytes_in\":%llu,"
           "\"bytes_out\":%llu,\"end\":%d",
           r->method, path, status, r->v.t_end - r->v.t_start, (unsigned long long)r->v.bytes_in,
           (unsigned long long)r->v.bytes_out, (int)end);
}

/* ---------- proxy-made answers ---------- */

/* Answer status with a JSON error, finish the exchange as `end`, and close after the write when
 * close_conn (always for framing errors, where the rest of the stream cannot be trusted), the
 * client did not ask for keep-alive, or the server drains.  May free c. */
static void conn_answer(px_conn *c, px_end end, int status, const char *msg, int close_conn)
{
    px_req *r = c->req;
    int v1 = r && r->v.is_v1;

    if (px_sock_ensure(c->sk) < 0) {
        conn_free(c);
        return;
    }
    if (!r) {                                   /* error before any request byte was parsed */
        r = req_new(c);
        if (!r) {
            conn_free(c);
            return;
        }
        c->req = r;
    }
    if (r->head_sent) {                         /* mid-response: nothing to say, just cut */
        close_conn = 1;
    } else {
        px_error_response(c->sk->out, status, v1, msg, r->extra,
                          close_conn || !r->keepalive || c->srv->draining, r->is_head);
        r->head_sent = 1;
    }
    px_req_finish(r, end, status);
    if (close_conn || !r->keepalive || c->srv->draining) {
        c->closing = 1;
        /* linger when a request was under way and not read whole (not for a connection refused
         * at accept, over --max-connections: that would hold descriptors during overload) */
        c->linger = !r->complete && (r->state > RQ_HEAD || r->method[0] || r->target_len);
        px_sock_read(c->sk, 0);
    }
    px_conn_response_done(c);
}

/* A proxy-made error (the request itself was at fault, or the proxy cannot serve it). */
static void conn_error(px_conn *c, int status, const char *msg, int close_conn)
{
    conn_answer(c, PX_END_PROXY_ERROR, status, msg, close_conn);
}

/* Upstream side reports that r's exchange failed before a response head reached the client
 * (status > 0: answer it), or after (status 0: cut the connection). */
void px_conn_upstream_failed(px_conn *c, px_end end, int status, const char *msg)
{
    px_req *r = c->req;

    r->up = NULL;
    if (status > 0 && !r->head_sent) {
        conn_answer(c, end, status, msg, 0);
        return;
    }
    /* why: a broken stream must end without its terminating chunk so the client sees the
     * truncation; closing the connection is the only way to say so in HTTP/1.1 */
    px_req_finish(r, end, r->v.status ? r->v.status : 502);
    c->closing = 1;
    px_conn_response_done(c);
}

/* ---------- request parsing callbacks ---------- */

#define CONN(p) ((px_conn *)(p)->data)

static int on_message_begin(llhttp_t *p)
{
    px_conn *c = CONN(p);

    c->req->v.t_start = px_now();
    c->last_byte = 0;
    conn_arm(c, PX_T_HEADER);                   /* slowloris: whole head within the limit */
    return 0;
}

/* Paths that lead to /v1/... for clients whose base URL lacks /v1. */
static const char *const aliases[] = {"/chat/completions", "/completions", "/embeddings",
                                      "/models", NULL};
#define PX_V1_PREFIX_MAX 32     /* bytes of a target enough to tell /v1/... (and the aliases) */

/* Length of the alias the path p (plen bytes, no query) starts with, whole segments only, or 0. */
static size_t alias_len(const char *p, size_t plen)
{
    /* why the first letter first: /api/... and /v1/... are nearly all requests */
    if (plen < 2 || (p[1] != 'c' && p[1] != 'e' && p[1] != 'm'))
        return 0;
    for (int i = 0; aliases[i]; i++) {
        size_t al = strlen(aliases[i]);
        if (plen >= al && memcmp(p, aliases[i], al) == 0 && (plen == al || p[al] == '/'))
            return al;
    }
    return 0;
}

/* Length of the "http://" or "https://" (any case) that t (len bytes) starts with, or 0. */
static size_t scheme_len(const char *t, size_t len)
{
    return len >= 7 && strncasecmp(t, "http://", 7) == 0 ? 7 :
           len >= 8 && strncasecmp(t, "https://", 8) == 0 ? 8 : 0;
}

/* 1 when the path t (len bytes, possibly only its start; a query may follow) is an
 * OpenAI-compatible one: /v1/... or one of the aliases. */
static int path_v1(const char *t, size_t len)
{
    const char *q = memchr(t, '?', len);

    len = q ? (size_t)(q - t) : len;
    return (len >= 4 && memcmp(t, "/v1/", 4) == 0) || alias_len(t, len) > 0;
}

/* Copy up to cap bytes of the string a·b (alen + blen bytes) from offset off into dst; returns
 * the bytes copied. */
static size_t copy_joined(char *dst, size_t cap, const char *a, size_t alen, const char *b,
                          size_t blen, size_t off)
{
    size_t k = 0;

    for (; off < alen && k < cap; off++)
        dst[k++] = a[off];
    if (off < alen)
        return k;
    for (off -= alen; off < blen && k < cap; off++)
        dst[k++] = b[off];
    return k;
}

/* Count request-line bytes against the head limit (the headers count in px_hdrs). */
static int head_bytes(px_conn *c, size_t n)
{
    c->req->hdrs.limit = c->req->hdrs.limit > n ? c->req->hdrs.limit - n : 0;
    if (c->req->hdrs.limit <= c->req->hdrs.len) {
        c->err_status = 431;
        return -1;
    }
    return 0;
}

static int on_method(llhttp_t *p, const char *at, size_t n)
{
    px_req *r = CONN(p)->req;
    size_t have = strlen(r->method);
    if (have + n >= sizeof r->method) {
        CONN(p)->err_status = 501;
        CONN(p)->err_msg = "unsupported method";
        return -1;
    }
    memcpy(r->method + have, at, n);
    r->method[have + n] = '\0';
    return head_bytes(CONN(p), n);
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
    px_req *r = CONN(p)->req;
    char *t;

    if (head_bytes(CONN(p), n) < 0) {
        /* why look at its path: the 431 takes the OpenAI shape on /v1/... too.  The target so
         * far and this piece are one string; its path starts past any scheme://authority */
        char start[PX_V1_PREFIX_MAX];
        size_t total = r->target_len + n, from = 0, k;

        k = copy_joined(start, sizeof start, r->target, r->target_len, at, n, 0);
        from = scheme_len(start, k);
        if (from) {
            while (from < total && (from < r->target_len ? r->target[from]
                                                          : at[from - r->target_len]) != '/')
                from++;
        }
        k = copy_joined(start, sizeof start, r->target, r->target_len, at, n, from);
        r->v.is_v1 = path_v1(start, k);
        return -1;
    }
    if (px_grow(&r->target, &r->target_cap, r->target_len + n + 1, PX_TARGET_INITIAL,
                SIZE_MAX) < 0)
        return -1;
    t = r->target;
    memcpy(t + r->target_len, at, n);
    r->target_len += n;
    t[r->target_len] = '\0';
    return 0;
}

/* 1 while llhttp reports the trailer fields of a chunked request body (after the head).  They
 * are parsed and discarded, their bytes counted against --max-header-bytes: forwarding them
 * as headers of the de-chunked request would merge them into its header section, which RFC
 * 9112 §7.1.2 forbids. */
#define IN_TRAILER(p) (CONN(p)->req->state != RQ_HEAD)

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
    if (IN_TRAILER(p))
        return head_bytes(CONN(p), n);
    if (px_hdrs_piece(&CONN(p)->req->hdrs, 0, at, n) < 0) {
        CONN(p)->err_status = 431;
        return -1;
    }
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
    /* why: llhttp 8 folds obs-fold continuation lines into the value; we refuse them */
    if (memchr(at, '\r', n) || memchr(at, '\n', n))
        return -1;
    if (IN_TRAILER(p))
        return head_bytes(CONN(p), n);
    if (px_hdrs_piece(&CONN(p)->req->hdrs, 1, at, n) < 0) {
        CONN(p)->err_status = 431;
        return -1;
    }
    return 0;
}

static int on_header_field_complete(llhttp_t *p)
{
    px_hdrs *h = &CONN(p)->req->hdrs;

    if (IN_TRAILER(p))
        return 0;
    if (px_hdrs_end_piece(h, 0) < 0) {
        CONN(p)->err_status = 431;
        return -1;
    }
    if (!px_hdrs_name_ok(h)) {                  /* "Host : x" and the like: 400 */
        CONN(p)->err_status = 400;
        return -1;
    }
    return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    if (IN_TRAILER(p))
        return 0;
    if (px_hdrs_end_piece(&CONN(p)->req->hdrs, 1) < 0) {
        CONN(p)->err_status = 431;
        return -1;
    }
    return 0;
}

/* 1 when the request's Host is as RFC 9112 §3.2 wants it: exactly one line in HTTP/1.1 (at
 * most one in 1.0), with a valid value.  Ollama refuses the others with 400 too. */
static int host_ok(const px_req *r)
{
    const char *v = NULL;
    int n = 0;

    for (int k = 0; k < r->hdrs.n; k++)
        if (r->hdrs.id[k] == PX_H_HOST) {
            v = r->hdrs.buf + r->hdrs.value[k];
            n++;
        }
    return (n == 1 || (n == 0 && r->http10)) && (!v || px_host_valid(v));
}

/* Turn an absolute-form target ("http://host/path?q", RFC 9112 §3.2.2: a server must accept
 * it) into origin-form ("/path?q"; "/" when it has no path).  0, or -1 when out of memory. */
static int origin_form(px_req *r)
{
    const char *t = r->target, *rest;
    size_t skip, n;

    skip = scheme_len(t, r->target_len);
    if (!skip)
        return 0;
    rest = t + skip + strcspn(t + skip, "/?");  /* past the authority */
    n = r->target_len - (size_t)(rest - t);
    if (*rest == '/') {
        memmove(r->target, rest, n + 1);
        r->target_len = n;
        return 0;
    }
    if (px_grow(&r->target, &r->target_cap, n + 2, PX_TARGET_INITIAL, SIZE_MAX) < 0)
        return -1;
    rest = r->target + (r->target_len - n);
    memmove(r->target + 1, rest, n + 1);        /* "?q" or "" */
    r->target[0] = '/';
    r->target_len = n + 1;
    return 0;
}

/* Rewrite the target: aliases for clients whose base URL lacks /v1, and remember the path. */
static int set_target(px_req *r)
{
    char *q;
    size_t plen;

    if (r->target_len == 1 && r->target[0] == '*' && strcmp(r->method, "OPTIONS") == 0) {
        r->v.path = "*";                        /* asterisk-form: forwarded as it is */
        return 0;
    }
    if (r->target_len > 0 && r->target[0] != '/' && origin_form(r) < 0)
        return -1;
    if (r->target_len == 0 || r->target[0] != '/')
        return -1;                              /* authority-form (CONNECT) and the like */
    q = strchr(r->target, '?');
    plen = q ? (size_t)(q - r->target) : r->target_len;
    if (alias_len(r->target, plen)) {
        if (px_grow(&r->target, &r->target_cap, r->target_len + 4, PX_TARGET_INITIAL,
                    SIZE_MAX) < 0)
            return -1;
        memmove(r->target + 3, r->target, r->target_len + 1);
        memcpy(r->target, "/v1", 3);
        r->target_len += 3;
        plen += 3;
    }
    if (px_grow(&r->path, &r->path_cap, plen + 1, PX_TARGET_INITIAL, SIZE_MAX) < 0)
        return -1;
    memcpy(r->path, r->target, plen);
    r->path[plen] = '\0';
    r->v.path = r->path;
    r->v.is_v1 = plen >= 4 && strncmp(r->path, "/v1/", 4) == 0;
    return 0;
}

/* The request-target is complete: rewrite it now (origin-form, aliases), so that an error in
 * the header section already answers in the OpenAI shape on /v1/... */
static int on_url_complete(llhttp_t *p)
{
    if (set_target(CONN(p)->req) < 0) {
        CONN(p)->err_status = 400;
        return -1;
    }
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    px_conn *c = CONN(p);
    px_req *r = c->req;
    const px_config *cfg = c->srv->cfg;
    const char *expect;

    if (llhttp_get_http_major(p) != 1) {
        /* why: llhttp takes a request line without a version as HTTP/0.9 and lets "HTTP/2.0"
         * through; Ollama's Go server answers 400 and 505 to them, and so do we */
        c->err_status = llhttp_get_http_major(p) == 0 ? 400 : 505;
        c->err_msg = c->err_status == 505 ? "unsupported HTTP version" : NULL;
        return -1;
    }
    r->http10 = llhttp_get_http_minor(p) == 0;
    r->is_head = llhttp_get_method(p) == HTTP_HEAD;
    r->has_body = px_hdrs_find(&r->hdrs, PX_H_CONTENT_LENGTH) ||
                  px_hdrs_find(&r->hdrs, PX_H_TRANSFER_ENCODING);
    if (!host_ok(r) ||
        (r->http10 && (p->flags & F_TRANSFER_ENCODING))) {  /* RFC 9112 §6.1: faulty framing */
        c->err_status = 400;
        return -1;
    }
    if ((p->flags & F_TRANSFER_ENCODING) && !px_te_chunked_only(&r->hdrs)) {
        c->err_status = 501;                    /* a coding we would pass on undecoded */
        c->err_msg = "unsupported transfer coding";
        return -1;
    }
    if (r->has_body && (p->flags & F_CONTENT_LENGTH) && p->content_length > cfg->max_body) {
        c->err_status = 413;
        return -1;
    }
    expect = px_hdrs_find(&r->hdrs, PX_H_EXPECT);
    if (expect) {
        if (strcasecmp(expect, "100-continue") != 0) {
            c->err_status = 417;
            return -1;
        }
        /* why: we buffer the body for scoring, so we answer 100 ourselves instead of
         * forwarding the expectation; an HTTP/1.0 client must not get a 1xx */
        if (!r->http10 && r->has_body &&
            (p->content_length > 0 || (p->flags & F_CHUNKED))) {   /* a body is expected */
            evbuffer_add(c->sk->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
            px_sock_flush(c->sk);
        }
    }
    if (r->has_body && (p->flags & F_CONTENT_LENGTH) && p->content_length > r->body_cap) {
        free(r->body);                          /* a kept buffer too small: nothing in it yet */
        r->body_cap = 0;
        r->body = malloc(p->content_length);
        if (!r->body)
            return -1;
        r->body_cap = p->content_length;
    }
    r->state = RQ_BODY;
    conn_arm(c, PX_T_IDLE);                     /* a body that stops flowing is timed out */
    return HPE_PAUSED;                          /* lets the reader mark where the head ended */
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    px_conn *c = CONN(p);
    px_req *r = c->req;

    if (r->body_len + n > c->srv->cfg->max_body) {
        c->err_status = 413;
        return -1;
    }
    /* a chunked upload has no announced length: the buffer grows as it arrives */
    if (px_grow(&r->body, &r->body_cap, r->body_len + n, PX_BODY_INITIAL,
                c->srv->cfg->max_body) < 0)
        return -1;
    memcpy(r->body + r->body_len, at, n);
    r->body_len += n;
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    px_conn *c = CONN(p);
    c->req->keepalive = llhttp_should_keep_alive(p) && !c->req->http10;
    c->req->v.bytes_in = c->req->body_len;
    c->req->complete = 1;
    return HPE_PAUSED;                          /* one exchange at a time: pipelined input waits */
}

/* ---------- dispatch ---------- */

/* 1 when request header line i is not forwarded: replaced (Host, Content-Length), answered
 * here (Expect), hop-by-hop, or named in the Connection header. */
static int drop_request_header(const px_hdrs *h, int i, const char *conn_hdr)
{
    int id = h->id[i];
    return id == PX_H_HOST || id == PX_H_CONTENT_LENGTH || id == PX_H_EXPECT ||
           px_hdrs_hop(h, i, conn_hdr);
}

/* Build the upstream request (Host rewritten, hop-by-hop dropped, X-Forwarded-For appended,
 * body framed with Content-Length), hand it to the upstream side, then run hooks.on_request
 * (scoring). */
static void req_dispatch(px_conn *c)
{
    px_server *s = c->srv;
    px_req *r = c->req;
    const char *conn_hdr = px_hdrs_find(&r->hdrs, PX_H_CONNECTION);
    struct evbuffer *out = r->upreq = px_buf_get();
    px_head h;
    int i, xff = 0, sent;

    if (!out) {
        conn_error(c, 502, "proxy out of memory", 1);
        return;
    }
    conn_arm(c, PX_T_NONE);
    r->state = RQ_UPSTREAM;
    s->inflight++;
    px_head_begin(&h, out);
    px_head_add(&h, r->method, strlen(r->method));
    px_head_add(&h, " ", 1);
    px_head_add(&h, r->target, r->target_len);
    px_head_add(&h, " HTTP/1.1\r\n", 11);
    px_head_header(&h, "Host", s->cfg->upstream_authority);
    for (i = 0; i < r->hdrs.n; i++) {
        if (r->hdrs.id[i] == PX_H_XFF)
            xff = 1;
        else if (!drop_request_header(&r->hdrs, i, conn_hdr))
            px_head_line(&h, &r->hdrs, i);
    }
    /* one X-Forwarded-For line: every incoming value in order, then this client */
    px_head_add(&h, "X-Forwarded-For: ", 17);
    for (i = 0; xff && i < r->hdrs.n; i++) {
        if (r->hdrs.id[i] == PX_H_XFF) {
            px_head_add(&h, r->hdrs.buf + r->hdrs.value[i], px_hdrs_value_len(&r->hdrs, i));
            px_head_add(&h, ", ", 2);
        }
    }
    px_head_add(&h, c->peer_text, strlen(c->peer_text));
    px_head_add(&h, "\r\n", 2);
    if (r->has_body) {
        char num[PX_UINT_DIGITS];
        px_head_add(&h, "Content-Length: ", 16);
        px_head_add(&h, num, px_utoa(num, r->body_len));
        px_head_add(&h, "\r\n", 2);
    }
    px_head_add(&h, "\r\n", 2);
    if (r->body_len > 0 && r->body_len <= PX_BODY_COPY_MAX)
        px_head_add(&h, r->body, r->body_len);  /* small: one piece with the head */
    px_head_end(&h);
    if (r->body_len > PX_BODY_COPY_MAX) {
        /* why: no copy of a body that may be 64 MiB; r outlives every upstream buffer that
         * references it (the upstream connection is freed or drained before r is) */
        evbuffer_add_reference(out, r->body, r->body_len, NULL, NULL);
    }
    r->v.t_sent = px_now();
    sent = px_up_dispatch(s, r);
    /* why after: the score goes only into the answer's head, so the request leaves first and
     * Ollama starts on it while the body is scored (a 10 MiB body takes ~2 ms to score) */
    if (s->hooks.on_request) {
        s->hooks.on_request(s->hooks.ud, &r->hook_data, &r->v, r->body, r->body_len, r->extra,
                            sizeof r->extra);
    }
    if (sent < 0)
        px_conn_upstream_failed(c, PX_END_UPSTREAM_CONNECT, 502, "upstream unreachable");
}

/* ---------- reading ---------- */

/* Feed len bytes at p to the parser; *used gets the bytes consumed.  Returns 0 to go on, 1 when
 * a request is complete (parser paused), -1 after answering a parse error. */
static int feed(px_conn *c, const char *p, size_t len, size_t *used)
{
    int in_head = !c->req || c->req->state == RQ_HEAD;
    llhttp_errno_t e = llhttp_execute(&c->req->parser, p, len);

    *used = len;
    if (e == HPE_PAUSED) {
        *used = (size_t)(llhttp_get_error_pos(&c->req->parser) - p);
        llhttp_resume(&c->req->parser);
    } else if (e != HPE_OK) {
        int st = c->err_status ? c->err_status : 400;
        px_log(PX_LOG_DEBUG, "bad request", "\"status\":%d,\"llhttp\":\"%s\"", st,
               llhttp_errno_name(e));
        conn_error(c, st, c->err_msg ? c->err_msg :
                          st == 413 ? "request body too large" :
                          st == 431 ? "request header fields too large" :
                          st == 417 ? "unsupported expectation" : "malformed HTTP request", 1);
        return -1;
    }
    if (in_head && px_bad_line_ends(p, *used, &c->last_byte)) {
        conn_error(c, 400, "malformed HTTP request", 1);
        return -1;
    }
    return c->req && c->req->complete;
}

/* Parse what the client sent until one request is complete, then dispatch it.  Input beyond
 * it (pipelining) stays buffered until the response is done.  Returns 1 when c is idle with
 * nothing buffered; 0 otherwise — including when c may have been freed (an error answered, or
 * a dispatch that failed at once), so the caller must not touch c then. */
static int conn_parse(px_conn *c)
{
    struct evbuffer *in = c->sk->in;

    if (!in)
        return !c->req;

    while (!c->closing && (!c->req || c->req->state < RQ_UPSTREAM)) {
        struct evbuffer_iovec vec;
        size_t used;
        int rc;

        if (!c->req && evbuffer_get_length(in) > 0) {
            /* why: the exchange (and its parser) exists only once bytes arrive, so an idle
             * keep-alive connection carries neither */
            c->req = req_new(c);
            if (!c->req || px_sock_ensure(c->sk) < 0) {
                conn_free(c);
                return 0;
            }
        }
        if (evbuffer_peek(in, -1, NULL, &vec, 1) < 1 || vec.iov_len == 0) {
            /* why: a body-less request paused at the end of its head completes only when the
             * parser runs again; it needs no further byte to do so */
            if (!(c->req && c->req->state == RQ_BODY && !c->req->complete))
                break;
            vec.iov_base = (void *)"";
            vec.iov_len = 0;
        }
        rc = feed(c, vec.iov_base, vec.iov_len, &used);
        if (rc < 0)
            return 0;
        evbuffer_drain(in, used);
        if (rc == 1) {
            if (c->srv->grace_over) {           /* listener already closed: send them away */
                conn_error(c, 503, "server shutting down", 1);
                return 0;
            }
            req_dispatch(c);
            return 0;
        }
        if (vec.iov_len == 0)
            break;
    }
    if (evbuffer_get_length(in) > PX_PIPELINE_MAX)
        px_sock_read(c->sk, 0);                 /* a client pipelining megabytes waits */
    return !c->closing && !c->req && evbuffer_get_length(in) == 0;
}

static void conn_readcb(px_sock *sk, void *arg)
{
    px_conn *c = arg;
    if (c->lingering) {                         /* read and dropped until the client's FIN */
        evbuffer_drain(sk->in, evbuffer_get_length(sk->in));
        return;
    }
    if (c->closing)
        return;
    if (!c->req || c->req->state < RQ_UPSTREAM) {
        conn_parse(c);
    } else if (evbuffer_get_length(c->sk->in) > PX_PIPELINE_MAX) {
        px_sock_read(c->sk, 0);
    }
}

/* Output drained below the low watermark: resume a paused upstream, or finish a close. */
static void conn_writecb(px_sock *sk, void *arg)
{
    px_conn *c = arg;

    if (c->held) {                              /* the client took its output: go on */
        c->held = 0;
        px_sock_read(sk, 1);
        next_request(c);
        return;
    }
    if (c->req && c->req->up)
        px_up_resume(c->req->up);
    if (c->closing && !c->lingering && px_sock_pending(sk) == 0)
        conn_close(c);
}

/* Client closed or failed.  Mid-exchange this is a cancellation: the upstream connection is
 * closed at once, which is how Ollama learns to stop generating. */
static void conn_eventcb(px_sock *sk, short what, void *arg)
{
    px_conn *c = arg;
    px_req *r = c->req;
    (void)sk;

    if (!(what & (PX_SOCK_EOF | PX_SOCK_ERROR)))
        return;
    if (r && r->v.t_end == 0 && (r->state > RQ_HEAD || r->target_len || r->method[0])) {
        if (r->up) {
            px_up_abort(r->up);
            r->up = NULL;
        }
        px_req_finish(r, PX_END_CLIENT_GONE, 499);
    }
    conn_free(c);
}

/* ---------- timers ---------- */

/* (Re)arm c's timeout: PX_T_HEADER (header timeout), PX_T_IDLE (idle timeout) or PX_T_NONE.
 *
 * Why lists instead of one libevent timer per connection: each list holds one kind of timeout,
 * all of the same length, so appending at the tail keeps it sorted by deadline; re-arming is
 * an O(1) unlink + append, a periodic sweep only looks at the heads, and an idle connection
 * carries two pointers instead of a 128-byte event. */
static void conn_arm(px_conn *c, int kind)
{
    px_server *s = c->srv;

    if (c->tlist >= 0) {                        /* unlink */
        if (c->tprev)
            c->tprev->tnext = c->tnext;
        else
            s->thead[c->tlist] = c->tnext;
        if (c->tnext)
            c->tnext->tprev = c->tprev;
        else
            s->ttail[c->tlist] = c->tprev;
        c->tprev = c->tnext = NULL;
        c->tlist = -1;
    }
    if (kind == PX_T_NONE)
        return;
    c->deadline = px_now() + (kind == PX_T_HEADER ? s->cfg->header_timeout : s->cfg->idle_timeout);
    c->tlist = (signed char)kind;
    c->tprev = s->ttail[kind];
    if (c->tprev)
        c->tprev->tnext = c;
    else
        s->thead[kind] = c;
    s->ttail[kind] = c;
}

static void conn_timeout(px_conn *c);

/* Expire every connection whose deadline has passed (called by the server's sweep timer). */
void px_sweep(px_server *s)
{
    double now = px_now();
    int k;

    for (k = 0; k < PX_T_KINDS; k++) {
        while (s->thead[k] && s->thead[k]->deadline <= now) {
            px_conn *c = s->thead[k];
            conn_arm(c, PX_T_NONE);             /* off the list before it may be freed */
            conn_timeout(c);
        }
    }
}

/* Header/body timeout → 408; idle keep-alive → silent close. */
static void conn_timeout(px_conn *c)
{
    if (c->closing) {
        conn_free(c);                           /* a client that never reads its error */
        return;
    }
    if (c->req && c->req->state < RQ_UPSTREAM && (c->req->method[0] || c->req->target_len)) {
        conn_error(c, 408, "request timeout", 1);   /* may free c */
        return;
    }
    if (c->req && c->req->state == RQ_UPSTREAM && c->req->v.t_end == 0) {
        /* the client stopped reading a response for the whole idle timeout */
        px_log(PX_LOG_WARN, "client stopped reading", "\"seconds\":%.3f",
               c->srv->cfg->idle_timeout);
        if (c->req->up)
            px_up_abort(c->req->up);
        px_req_finish(c->req, PX_END_CLIENT_GONE, 499);
    } else if (c->held) {                       /* pipelined requests wait on unread answers */
        px_log(PX_LOG_WARN, "client stopped reading", "\"seconds\":%.3f,\"pipelined\":true",
               c->srv->cfg->idle_timeout);
    }
    conn_free(c);
}

/* The upstream is paused on c's full output (stalled 1) or flowing again (0): a client that
 * reads nothing for the idle timeout is cut, so it cannot pin an Ollama slot forever. */
void px_conn_stalled(px_conn *c, int stalled)
{
    conn_arm(c, stalled ? PX_T_IDLE : PX_T_NONE);
}

/* ---------- end of an exchange ---------- */

/* The response is complete (or an error was written): free the exchange; keep the connection
 * for the next request, or close it once the output has drained. */
void px_conn_response_done(px_conn *c)
{
    px_req *r = c->req;
    px_server *s = c->srv;

    px_sock_flush_later(c->sk);                 /* the response's last bytes, at the turn's end */
    if (r) {
        if (r->up)
            px_up_abort(r->up);
        if (r->close_after)
            c->closing = 1;
        c->req = NULL;
        req_free(r);
    }
    if (c->srv->draining)
        c->closing = 1;
    if (c->closing) {
        px_sock_read(c->sk, 0);
        conn_arm(c, PX_T_IDLE);                 /* bound the flush to a client that stalls */
        if (px_sock_pending(c->sk) == 0)
            conn_close(c);                      /* c may be gone from here on */
        px_server_maybe_exit(s);
        return;
    }
    conn_arm(c, PX_T_IDLE);
    px_sock_read(c->sk, 1);
    if (c->sk->in && evbuffer_get_length(c->sk->in) > 0)
        next_request(c);                        /* pipelined requests already buffered */
    else
        px_sock_trim(c->sk);                    /* idle now: give the buffers back */
    px_server_maybe_exit(s);
}

/* Parse c's next pipelined request: now; or once the client took its output, when more than
 * PX_HIGH_WATERMARK of it waits (why: a client that pipelines and never reads must not make
 * us answer, and buffer, request after request); or on the next loop turn when called inside
 * another request's completion (why: requests that fail at once, e.g. every connect refused
 * with EMFILE, would otherwise recurse one stack frame set per buffered request).  c may be
 * freed on return. */
static void next_request(px_conn *c)
{
    px_server *s = c->srv;

    if (px_sock_pending(c->sk) > PX_HIGH_WATERMARK) {
        c->held = 1;                            /* conn_writecb goes on */
        px_sock_read(c->sk, 0);
        return;
    }
    if (s->parse_depth > 0) {
        if (!c->on_later) {
            c->on_later = 1;
            c->lnext = s->later;
            s->later = c;
            event_active(s->later_ev, EV_TIMEOUT, 1);
        }
        return;
    }
    s->parse_depth++;
    if (conn_parse(c))
        px_sock_trim(c->sk);                    /* idle now: give the buffers back */
    s->parse_depth--;
}

/* The loop's turn for the connections next_request put off. */
void px_conn_later_cb(evutil_socket_t fd, short what, void *arg)
{
    px_server *s = arg;
    int turn = 0;                               /* connections waiting when this turn began */
    (void)fd;
    (void)what;

    for (px_conn *c = s->later; c; c = c->lnext)
        turn++;
    /* why pop one at a time: the list stays the one conn_free unlinks from, whatever a
     * request frees; ones added meanwhile count against this turn's budget */
    while (turn-- > 0 && s->later) {
        px_conn *c = s->later;
        s->later = c->lnext;
        c->on_later = 0;
        c->lnext = NULL;
        next_request(c);
    }
    if (s->later)
        event_active(s->later_ev, EV_TIMEOUT, 1);
    px_server_maybe_exit(s);
}

/* The last byte of a closing connection went out: close it, or first linger when the client
 * may still be sending (an error answered before its request was read whole).  Why linger:
 * closing a socket with unread bytes, or with more on the way, makes the kernel send a reset,
 * which can destroy the answer before the client reads it (a 413 to an upload in progress
 * would show as "connection reset").  Lingering sends our FIN, reads and drops what comes
 * until the client's FIN or --header-timeout (30 s), then closes; nginx's lingering_close.
 * Not while draining: the exit must not wait for it. */
static void conn_close(px_conn *c)
{
    if (!c->linger || c->srv->draining || c->sk->fd < 0 || shutdown(c->sk->fd, SHUT_WR) < 0) {
        conn_free(c);
        return;
    }
    c->linger = 0;
    c->lingering = 1;
    if (c->sk->in)
        evbuffer_drain(c->sk->in, evbuffer_get_length(c->sk->in));
    px_sock_read(c->sk, 1);
    conn_arm(c, PX_T_HEADER);
}

static void conn_free(px_conn *c)
{
    px_server *s = c->srv;

    if (c->req) {
        if (c->req->up)
            px_up_abort(c->req->up);
        if (c->req->v.t_end == 0 && c->req->state >= RQ_UPSTREAM)
            px_req_finish(c->req, PX_END_DRAIN_DEADLINE, c->req->v.status ? c->req->v.status : 503);
        req_free(c->req);
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    if (c->on_later) {                          /* rare: walk the (short) list */
        px_conn **pp = &s->later;
        while (*pp && *pp != c)
            pp = &(*pp)->lnext;
        if (*pp)
            *pp = c->lnext;
    }
    conn_arm(c, PX_T_NONE);
    px_sock_free(c->sk);
    px_slab_put(&conn_slab, c);
    px_server_maybe_exit(s);
}

/* ---------- accepting ---------- */

void px_on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    px_server *s = arg;
    px_conn *c = px_slab_get(&conn_slab);
    int one = 1;
    (void)l;
    (void)salen;

    if (!c) {
        evutil_closesocket(fd);
        return;
    }
    c->srv = s;
    c->sk = px_sock_new(s->base, fd);
    c->tlist = -1;
    if (!c->sk) {
        evutil_closesocket(fd);
        px_slab_put(&conn_slab, c);
        return;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* formatted once per connection, not per request */
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, c->peer_text,
                  sizeof c->peer_text);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr, c->peer_text,
                  sizeof c->peer_text);
    else
        snprintf(c->peer_text, sizeof c->peer_text, "unknown");
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    px_sock_setcb(c->sk, conn_readcb, conn_writecb, conn_eventcb, c);
    c->sk->wlow = PX_LOW_WATERMARK;
    if (s->nconns > s->cfg->max_connections) {
        px_log(PX_LOG_WARN, "connection limit reached", "\"max_connections\":%d",
               s->cfg->max_connections);
        conn_error(c, 503, "too many connections", 1);
        return;
    }
    conn_arm(c, PX_T_IDLE);                     /* nothing sent: closed silently at idle */
}

void px_on_accept_error(struct evconnlistener *l, void *arg)
{
    px_server *s = arg;
    int e = EVUTIL_SOCKET_ERROR();

    /* why the pause: out of descriptors or memory, the connection stays in the backlog and the
     * listener is readable again at once, so without it the loop would spin on accept and log
     * as fast as it can; nginx pauses too.  Other errors concern one connection only. */
    if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
        struct timeval tv = px_tv(PX_ACCEPT_PAUSE);
        evconnlistener_disable(l);
        evtimer_add(s->accept_timer, &tv);
        px_log(PX_LOG_WARN, "accept paused", "\"errno\":%d,\"seconds\":%.2f", e, PX_ACCEPT_PAUSE);
        return;
    }
    px_log(PX_LOG_WARN, "accept failed", "\"errno\":%d", e);
}

/* Settings shared by every request parser (static, so they outlive all parsers). */
void px_client_init(void)
{
    llhttp_settings_init(&req_settings);
    req_settings.on_message_begin = on_message_begin;
    req_settings.on_method = on_method;
    req_settings.on_url = on_url;
    req_settings.on_url_complete = on_url_complete;
    req_settings.on_header_field = on_header_field;
    req_settings.on_header_value = on_header_value;
    req_settings.on_header_field_complete = on_header_field_complete;
    req_settings.on_header_value_complete = on_header_value_complete;
    req_settings.on_headers_complete = on_headers_complete;
    req_settings.on_body = on_body;
    req_settings.on_message_complete = on_message_complete;
}

/* Close every connection that has no exchange in progress (drain: after the grace). */
void px_close_idle(px_server *s)
{
    px_conn *c = s->conns, *next;
    for (; c; c = next) {
        next = c->next;
        if (!c->req && px_sock_pending(c->sk) == 0)
            conn_free(c);
    }
}

/* Drain deadline or shutdown: cut every connection that is left (counted in conn_free). */
void px_close_all(px_server *s)
{
    while (s->conns)
        conn_free(s->conns);
}
