/* sim_http.c — client connections: strict llhttp parsing, one request at a time (pipelined
 * requests wait unparsed, as in Go's net/http), response framing the way Go writes it,
 * keep-alive / Connection: close / HTTP/1.0, the transport-level faults (reset, stall,
 * close) and the connect / request / response_end / close events. */
#include "test/sim/sim.h"

#include <errno.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define SIM_HALF_CLOSE_GRACE_MS 5000    /* peer half-closed but not reading: give up after this */
#define SIM_HDR_INIT 16                 /* headers allocated up front per request */

static llhttp_settings_t sim_settings;  /* static: outlives every parser */
static int sim_settings_ready;          /* sim_settings initialised */

static void sim_conn_free(sim_conn *c);
static void sim_conn_process(sim_conn *c);
static void sim_conn_graceful_close(sim_conn *c);
static void sim_conn_wind_down(sim_conn *c, sim_conn_state st);
static void sim_conn_flush(sim_conn *c);

/* ------------------------------------------------------------------ requests */

/* Free a request and everything it owns; detaches it from the scheduler first. */
static void sim_req_free(sim_req *r)
{
    if (!r) return;
    sim_gen_cancel(r);
    if (r->timer_init) evtimer_del(&r->timer);
    for (int i = 0; i < r->nhdr; i++) { free(r->hdr[i].name); free(r->hdr[i].value); }
    free(r->hdr);
    free(r->url);
    free(r->model_name);
    if (r->body) evbuffer_free(r->body);
    if (r->text) evbuffer_free(r->text);
    free(r);
}

/* Append len bytes to a NUL-terminated heap string *s of length *n.  0 or -1 (no memory). */
static int sim_append(char **s, size_t *n, const char *p, size_t len)
{
    char *t = realloc(*s, *n + len + 1);
    if (!t) return -1;
    memcpy(t + *n, p, len);
    *n += len;
    t[*n] = '\0';
    *s = t;
    return 0;
}

/* See sim.h. */
const char *sim_req_header(const sim_req *r, const char *name)
{
    for (int i = 0; i < r->nhdr; i++)
        if (strcasecmp(r->hdr[i].name, name) == 0) return r->hdr[i].value;
    return NULL;
}

/* See sim.h. */
size_t sim_req_path_len(const sim_req *r)
{
    const char *q = memchr(r->url, '?', r->url_len);
    return q ? (size_t)(q - r->url) : r->url_len;
}

/* ------------------------------------------------------------------ llhttp callbacks */

static int sim_on_message_begin(llhttp_t *p)
{
    sim_conn *c = p->data;
    sim_req *r = calloc(1, sizeof *r);
    if (!r) return -1;
    if (c->req) sim_req_free(c->req);   /* cannot happen (one request at a time); never leak */
    r->conn = c;
    r->seq = ++c->nreq;
    r->body = evbuffer_new();
    r->hdr = calloc(SIM_HDR_INIT, sizeof *r->hdr);
    r->hdr_cap = SIM_HDR_INIT;
    if (!r->body || !r->hdr) { sim_req_free(r); return -1; }
    c->req = r;
    c->head_bytes = 0;
    return 0;
}

/* Count head bytes; 431 past Go's limit. */
static int sim_head_grow(sim_conn *c, size_t len)
{
    c->head_bytes += len;
    return c->head_bytes > SIM_MAX_HEAD_BYTES ? -1 : 0;
}

static int sim_on_url(llhttp_t *p, const char *at, size_t len)
{
    sim_conn *c = p->data;
    if (sim_head_grow(c, len)) return -1;
    return sim_append(&c->req->url, &c->req->url_len, at, len);
}

static int sim_on_header_field(llhttp_t *p, const char *at, size_t len)
{
    sim_conn *c = p->data;
    sim_req *r = c->req;
    if (sim_head_grow(c, len)) return -1;
    if (r->nhdr == 0 || r->hdr_in_value) {
        if (r->nhdr == r->hdr_cap) {
            sim_header *h = realloc(r->hdr, (size_t)r->hdr_cap * 2 * sizeof *h);
            if (!h) return -1;
            r->hdr = h;
            r->hdr_cap *= 2;
        }
        r->hdr[r->nhdr].name = NULL;
        r->hdr[r->nhdr].value = calloc(1, 1);
        if (!r->hdr[r->nhdr].value) return -1;
        r->nhdr++;
        r->hdr_in_value = 0;
    }
    sim_header *h = &r->hdr[r->nhdr - 1];
    size_t n = h->name ? strlen(h->name) : 0;
    return sim_append(&h->name, &n, at, len);
}

static int sim_on_header_value(llhttp_t *p, const char *at, size_t len)
{
    sim_conn *c = p->data;
    sim_req *r = c->req;
    if (sim_head_grow(c, len)) return -1;
    if (r->nhdr == 0) return -1;
    r->hdr_in_value = 1;
    sim_header *h = &r->hdr[r->nhdr - 1];
    size_t n = strlen(h->value);
    return sim_append(&h->value, &n, at, len);
}

static int sim_on_headers_complete(llhttp_t *p)
{
    sim_conn *c = p->data;
    sim_req *r = c->req;
    r->method = llhttp_get_method(p);
    r->http_major = llhttp_get_http_major(p);
    r->http_minor = llhttp_get_http_minor(p);
    r->keep_alive = llhttp_should_keep_alive(p);
    r->is_head = r->method == HTTP_HEAD;
    if (!r->url) r->url = calloc(1, 1);
    for (int i = 0; i < r->nhdr; i++) {   /* a header with an empty name cannot come from llhttp */
        if (!r->hdr[i].name) { r->hdr[i].name = calloc(1, 1); if (!r->hdr[i].name) return -1; }
    }
    r->host = sim_req_header(r, "Host");
    const char *expect = sim_req_header(r, "Expect");
    int has_body = (p->flags & F_CHUNKED) || ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0);
    if (expect && strcasecmp(expect, "100-continue") == 0 && (r->http_major > 1 || r->http_minor >= 1) && has_body) {
        /* Go answers 100 when the handler reads the body; every handler here reads it */
        SIM_ADD_LIT(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n");
        sim_conn_flush(c);
    }
    return 0;
}

static int sim_on_body(llhttp_t *p, const char *at, size_t len)
{
    sim_conn *c = p->data;
    if (evbuffer_get_length(c->req->body) + len > SIM_MAX_BODY_BYTES) return -1;
    return evbuffer_add(c->req->body, at, len);
}

static int sim_on_message_complete(llhttp_t *p)
{
    sim_conn *c = p->data;
    c->busy = 1;
    c->req->t_recv_ns = sim_mono_ns();
    return HPE_PAUSED;   /* one request at a time: the rest waits in the input buffer */
}

static void sim_settings_init(void)
{
    if (sim_settings_ready) return;
    llhttp_settings_init(&sim_settings);
    sim_settings.on_message_begin = sim_on_message_begin;
    sim_settings.on_url = sim_on_url;
    sim_settings.on_header_field = sim_on_header_field;
    sim_settings.on_header_value = sim_on_header_value;
    sim_settings.on_headers_complete = sim_on_headers_complete;
    sim_settings.on_body = sim_on_body;
    sim_settings.on_message_complete = sim_on_message_complete;
    sim_settings_ready = 1;
}

/* ------------------------------------------------------------------ events */

/* Emit the request event for r. */
static void sim_event_request(sim_req *r)
{
    if (!sim_g.cfg.events) return;
    struct evbuffer *b = evbuffer_new();
    if (!b) return;
    size_t plen = sim_req_path_len(r);
    const char *q = plen < r->url_len ? r->url + plen : NULL;
    size_t blen = evbuffer_get_length(r->body);
    evbuffer_add_printf(b, "{\"event\":\"request\",\"conn\":%llu,\"seq\":%llu,\"method\":\"%s\",\"path\":",
                        (unsigned long long)r->conn->id, (unsigned long long)r->seq,
                        llhttp_method_name((llhttp_method_t)r->method));
    sim_json_str(b, r->url, plen);
    SIM_ADD_LIT(b, ",\"query\":");
    sim_json_str(b, q ? q + 1 : "", q ? r->url_len - plen - 1 : 0);
    SIM_ADD_LIT(b, ",\"headers\":[");
    for (int i = 0; i < r->nhdr; i++) {
        evbuffer_add(b, i ? ",[" : "[", i ? 2 : 1);
        sim_json_str(b, r->hdr[i].name, strlen(r->hdr[i].name));
        SIM_ADD_LIT(b, ",");
        sim_json_str(b, r->hdr[i].value, strlen(r->hdr[i].value));
        SIM_ADD_LIT(b, "]");
    }
    evbuffer_add_printf(b, "],\"body_len\":%zu", blen);
    if (blen <= SIM_EVENT_BODY_MAX) {
        SIM_ADD_LIT(b, ",\"body\":");
        sim_json_str(b, (const char *)evbuffer_pullup(r->body, -1), blen);
    }
    SIM_ADD_LIT(b, "}");
    size_t n = evbuffer_get_length(b);
    sim_event_emit((const char *)evbuffer_pullup(b, -1), n);
    evbuffer_free(b);
}

/* See sim.h. */
void sim_event_fault(sim_req *r, const char *what)
{
    char line[256];
    if (!sim_g.cfg.events || !r->conn) return;
    int n = snprintf(line, sizeof line, "{\"event\":\"fault\",\"conn\":%llu,\"seq\":%llu,\"fault\":\"%s\",\"chunks\":%llu}",
                     (unsigned long long)r->conn->id, (unsigned long long)r->seq, what, (unsigned long long)r->chunks);
    sim_event_emit(line, (size_t)n);
}

/* ------------------------------------------------------------------ responses */

/* Write pending output straight to the socket; only what the kernel does not take waits for
 * EV_WRITE (enabled just for that).  Saves two epoll_ctl calls per streamed chunk. */
static void sim_conn_flush(sim_conn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (evbuffer_get_length(out) == 0) return;
    if (!(bufferevent_get_enabled(c->bev) & EV_WRITE)) {
        evbuffer_unfreeze(out, 1);   /* bufferevent_socket keeps the output's front frozen */
        evbuffer_write(out, bufferevent_getfd(c->bev));
        evbuffer_freeze(out, 1);
    }
    if (evbuffer_get_length(out) > 0) bufferevent_enable(c->bev, EV_WRITE);   /* rest (or error) via the loop */
}

static const char *sim_status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Request Entity Too Large";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return NULL;
    }
}

/* The Date header value, cached per second (fixed under --fixed-clock). */
static const char *sim_date(void)
{
    static char cached[64];
    static uint64_t cached_sec = UINT64_MAX;
    uint64_t now = sim_g.cfg.fixed_clock ? (uint64_t)SIM_FIXED_EPOCH * 1000000000ull : sim_wall_ns();
    if (now / 1000000000ull != cached_sec) {
        cached_sec = now / 1000000000ull;
        sim_time_http(cached, sizeof cached, now);
    }
    return cached;
}

/* See sim.h. */
void sim_resp_head(sim_req *r, int status, const char *extra, const char *ctype, int64_t content_length)
{
    sim_conn *c = r->conn;
    if (!c || r->head_sent) return;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    int http11 = r->http_major > 1 || (r->http_major == 1 && r->http_minor >= 1);
    int bodyless = status < 200 || status == 204 || status == 304;
    const char *text = sim_status_text(status);
    if (text) evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n", status, text);
    else evbuffer_add_printf(out, "HTTP/1.1 %d status code %d\r\n", status, status);
    /* handler headers in Go's sorted order: Access-Control-*, Allow, Content-Type, Vary */
    if (r->cors_origin) evbuffer_add_printf(out, "Access-Control-Allow-Origin: %s\r\n", r->cors_origin);
    if (extra) evbuffer_add(out, extra, strlen(extra));
    if (ctype) evbuffer_add_printf(out, "Content-Type: %s\r\n", ctype);
    if (r->cors_origin) SIM_ADD_LIT(out, "Vary: Origin\r\n");
    evbuffer_add_printf(out, "Date: %s\r\n", sim_date());
    r->close_after = !r->keep_alive;
    if (content_length >= 0 && !bodyless && !(r->is_head && content_length == 0))
        evbuffer_add_printf(out, "Content-Length: %lld\r\n", (long long)content_length);
    if (content_length < 0 && !http11) r->close_after = 1;   /* HTTP/1.0 stream: close-delimited */
    if (r->close_after && http11) SIM_ADD_LIT(out, "Connection: close\r\n");
    else if (!r->close_after && !http11) SIM_ADD_LIT(out, "Connection: keep-alive\r\n");
    if (content_length < 0 && http11 && !r->is_head && !bodyless) {
        SIM_ADD_LIT(out, "Transfer-Encoding: chunked\r\n");
        r->chunked = 1;
    }
    SIM_ADD_LIT(out, "\r\n");
    r->status = status;
    r->head_sent = 1;
}

/* Stop producing r's response without ending it; the connection stays open until the
 * peer closes it (stall-after). */
static void sim_stall(sim_req *r)
{
    sim_conn_flush(r->conn);
    sim_event_fault(r, "stall");
    r->finished = 1;
    sim_gen_release(r);
}

/* Reset the connection once what was written reached the peer (reset-after). */
static void sim_reset(sim_req *r)
{
    sim_conn *c = r->conn;
    sim_event_fault(r, "reset");
    r->finished = 1;
    sim_gen_release(r);
    bufferevent_disable(c->bev, EV_READ);
    sim_conn_wind_down(c, SIM_CONN_RESETTING);
}

/* Fault check before writing chunk number r->chunks (or ending): 1 when a fault fired. */
static int sim_fault_fires(sim_req *r)
{
    if (r->fault.reset_after >= 0 && r->chunks >= (uint64_t)r->fault.reset_after) { sim_reset(r); return 1; }
    if (r->fault.stall_after >= 0 && r->chunks >= (uint64_t)r->fault.stall_after) { sim_stall(r); return 1; }
    return 0;
}

/* See sim.h. */
int sim_resp_chunk(sim_req *r, const void *data, size_t len)
{
    sim_conn *c = r->conn;
    if (!c || r->finished || c->state != SIM_CONN_OPEN) return -1;
    if (sim_fault_fires(r)) return -1;
    if (!r->is_head && len) {
        struct evbuffer *out = bufferevent_get_output(c->bev);
        if (r->chunked) evbuffer_add_printf(out, "%zx\r\n", len);
        evbuffer_add(out, data, len);
        if (r->chunked) SIM_ADD_LIT(out, "\r\n");
    }
    r->chunks++;
    sim_conn_flush(c);
    return 0;
}

/* See sim.h. */
void sim_resp_end(sim_req *r)
{
    sim_conn *c = r->conn;
    char line[160];
    if (!c || r->finished || c->state != SIM_CONN_OPEN) return;
    if (sim_fault_fires(r)) return;
    if (r->chunked) SIM_ADD_LIT(bufferevent_get_output(c->bev), "0\r\n\r\n");
    sim_conn_flush(c);
    r->finished = 1;
    sim_gen_release(r);
    if (sim_g.cfg.events) {
        int n = snprintf(line, sizeof line, "{\"event\":\"response_end\",\"conn\":%llu,\"seq\":%llu,\"status\":%d,\"chunks\":%llu}",
                         (unsigned long long)c->id, (unsigned long long)r->seq, r->status, (unsigned long long)r->chunks);
        sim_event_emit(line, (size_t)n);
    }
    int close_after = r->close_after;
    c->req = NULL;
    c->busy = 0;
    sim_req_free(r);
    if (close_after) { sim_conn_graceful_close(c); return; }
    bufferevent_enable(c->bev, EV_READ);
    sim_conn_process(c);   /* pipelined requests already buffered */
}

/* See sim.h. */
void sim_resp_full(sim_req *r, int status, const char *extra, const char *ctype, const char *body, size_t len)
{
    /* Go sets Content-Length only when the whole body fit its 2 KiB buffer; else chunked */
    sim_resp_head(r, status, extra, ctype, len <= SIM_GO_CHUNKING_SIZE ? (int64_t)len : -1);
    if (sim_resp_chunk(r, body, len) == 0) sim_resp_end(r);
}

/* See sim.h. */
void sim_resp_buffer(sim_req *r, int status, const char *ctype, struct evbuffer *b)
{
    size_t n = evbuffer_get_length(b);
    sim_resp_full(r, status, NULL, ctype, (const char *)evbuffer_pullup(b, -1), n);
    evbuffer_free(b);
}

/* See sim.h. */
void sim_resp_abort(sim_req *r)
{
    sim_conn *c = r->conn;
    sim_event_fault(r, "close-before-head");
    r->finished = 1;
    sim_gen_release(r);
    if (c) sim_conn_graceful_close(c);
}

/* ------------------------------------------------------------------ connection */

/* A protocol-level error answered the way Go's server does (text, then close). */
static void sim_conn_http_error(sim_conn *c, int status, const char *why)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    char line[256];
    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n%d %s%s%s",
                        status, sim_status_text(status), status, sim_status_text(status), why ? ": " : "", why ? why : "");
    if (sim_g.cfg.events) {
        int n = snprintf(line, sizeof line, "{\"event\":\"bad_request\",\"conn\":%llu,\"status\":%d}", (unsigned long long)c->id, status);
        sim_event_emit(line, (size_t)n);
    }
    if (c->req) { sim_req_free(c->req); c->req = NULL; }
    c->busy = 0;
    sim_conn_flush(c);
    sim_conn_graceful_close(c);
}

/* Checks Go's server makes before calling a handler.  Returns 0 to dispatch, or -1 when it
 * answered (connection closing). */
static int sim_conn_precheck(sim_conn *c, sim_req *r)
{
    int http11 = r->http_major > 1 || r->http_minor >= 1;
    int hosts = 0;
    for (int i = 0; i < r->nhdr; i++) hosts += strcasecmp(r->hdr[i].name, "Host") == 0;
    if (http11 && hosts == 0) { sim_conn_http_error(c, 400, "missing required Host header"); return -1; }
    if (hosts > 1) { sim_conn_http_error(c, 400, "too many Host headers"); return -1; }
    const char *expect = sim_req_header(r, "Expect");
    if (expect && strcasecmp(expect, "100-continue") != 0) { sim_conn_http_error(c, 417, NULL); return -1; }
    return 0;
}

/* Parse buffered input and dispatch complete requests, one at a time. */
static void sim_conn_process(sim_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    if (c->processing) return;   /* the outer loop picks up where this would start */
    c->processing = 1;
    while (!c->busy && c->state == SIM_CONN_OPEN && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1) break;
        llhttp_errno_t err = llhttp_execute(&c->parser, v.iov_base, v.iov_len);
        size_t used = v.iov_len;
        if (err == HPE_PAUSED) {
            used = (size_t)(llhttp_get_error_pos(&c->parser) - (const char *)v.iov_base);
            llhttp_resume(&c->parser);
        } else if (err != HPE_OK) {
            int status = c->head_bytes > SIM_MAX_HEAD_BYTES ? 431 : (c->req && evbuffer_get_length(c->req->body) >= SIM_MAX_BODY_BYTES) ? 413 : 400;
            sim_conn_http_error(c, status, NULL);
            break;
        }
        evbuffer_drain(in, used);
        if (c->busy && c->req) {
            sim_req *r = c->req;
            sim_event_request(r);
            if (sim_conn_precheck(c, r) == 0) sim_api_dispatch(r);
        }
    }
    c->processing = 0;
}

/* Poll the kernel send queue; once empty (peer has every byte) reset the connection. */
static void sim_conn_rst_poll(evutil_socket_t fd, short what, void *arg)
{
    sim_conn *c = arg;
    int pending = 0;
    (void)what;
    fd = bufferevent_getfd(c->bev);
    if (ioctl(fd, SIOCOUTQ, &pending) == 0 && pending > 0 && c->rst_polls++ < SIM_RST_POLL_MAX) {
        struct timeval tv = { 0, SIM_RST_POLL_MS * 1000 };
        evtimer_add(&c->ctimer, &tv);
        return;
    }
    struct linger lg = { 1, 0 };
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);   /* close() now sends RST */
    sim_conn_free(c);
}

/* Timer end of LINGER / PEER_GONE: free. */
static void sim_conn_timer_free(evutil_socket_t fd, short what, void *arg)
{
    (void)fd; (void)what;
    sim_conn_free(arg);
}

/* (Re)arm the connection timer with cb after ms. */
static void sim_conn_timer(sim_conn *c, event_callback_fn cb, int ms)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    if (c->ctimer_init) evtimer_del(&c->ctimer);
    evtimer_assign(&c->ctimer, sim_g.base, cb, c);
    c->ctimer_init = 1;
    evtimer_add(&c->ctimer, &tv);
}

/* Output fully written while winding down: next step of the state.  Called from the write
 * callback (may free c). */
static void sim_conn_flushed(sim_conn *c)
{
    switch (c->state) {
    case SIM_CONN_RESETTING:
        if (!c->ctimer_init) sim_conn_timer(c, sim_conn_rst_poll, 0);
        break;
    case SIM_CONN_CLOSING:
        /* like Go's closeWriteAndWait: FIN, then give the peer a moment before close() */
        shutdown(bufferevent_getfd(c->bev), SHUT_WR);
        c->state = SIM_CONN_LINGER;
        bufferevent_enable(c->bev, EV_READ);   /* to see the peer's EOF */
        sim_conn_timer(c, sim_conn_timer_free, SIM_LINGER_MS);
        break;
    case SIM_CONN_PEER_GONE:
        sim_conn_free(c);
        break;
    default:
        break;
    }
}

/* Enter a winding-down state and make sure the flushed step runs (deferred, so callers
 * can keep using c until they return to the loop). */
static void sim_conn_wind_down(sim_conn *c, sim_conn_state st)
{
    c->state = st;
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
    bufferevent_enable(c->bev, EV_WRITE);
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        bufferevent_trigger(c->bev, EV_WRITE, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

/* Begin a server-side close: flush, FIN, linger, free. */
static void sim_conn_graceful_close(sim_conn *c)
{
    if (c->state != SIM_CONN_OPEN) return;
    sim_conn_wind_down(c, SIM_CONN_CLOSING);
}

static void sim_conn_read_cb(struct bufferevent *bev, void *arg)
{
    sim_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (c->state != SIM_CONN_OPEN) { evbuffer_drain(in, evbuffer_get_length(in)); return; }
    if (c->busy) {
        if (evbuffer_get_length(in) > SIM_INPUT_PAUSE_BYTES) bufferevent_disable(bev, EV_READ);
        return;
    }
    sim_conn_process(c);
}

static void sim_conn_write_cb(struct bufferevent *bev, void *arg)
{
    sim_conn *c = arg;
    if (c->state != SIM_CONN_OPEN) {
        if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) sim_conn_flushed(c);
        return;
    }
    if (c->req && c->req->kind == SIM_KIND_BYTES && !c->req->finished) sim_gen_on_drain(c->req);
    if (c->state == SIM_CONN_OPEN && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        bufferevent_disable(bev, EV_WRITE);   /* back to direct writes (sim_conn_flush) */
}

static void sim_conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    sim_conn *c = arg;
    char line[192];
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))) return;
    switch (c->state) {
    case SIM_CONN_OPEN:
        break;
    case SIM_CONN_CLOSING:
        if (what & BEV_EVENT_ERROR) { sim_conn_free(c); return; }
        c->state = SIM_CONN_PEER_GONE;   /* finish flushing, then free */
        bufferevent_disable(bev, EV_READ);
        return;
    case SIM_CONN_RESETTING:
        if (what & BEV_EVENT_ERROR) { sim_conn_free(c); return; }
        bufferevent_disable(bev, EV_READ);
        return;
    default:   /* LINGER: the peer saw our FIN and closed; PEER_GONE: error while flushing */
        if (c->state == SIM_CONN_LINGER || (what & BEV_EVENT_ERROR)) sim_conn_free(c);
        else bufferevent_disable(bev, EV_READ);
        return;
    }
    /* OPEN: the client closed (or half-closed) its side */
    if (sim_g.cfg.events) {
        int n = snprintf(line, sizeof line, "{\"event\":\"close\",\"conn\":%llu,\"mid_response\":%s,\"chunks_sent\":%llu}",
                         (unsigned long long)c->id, c->busy ? "true" : "false",
                         (unsigned long long)(c->busy && c->req ? c->req->chunks : 0));
        sim_event_emit(line, (size_t)n);
    }
    if (c->req) { sim_req_free(c->req); c->req = NULL; }   /* stops generating at once */
    c->busy = 0;
    if ((what & BEV_EVENT_ERROR) || evbuffer_get_length(bufferevent_get_output(bev)) == 0) { sim_conn_free(c); return; }
    /* half-closed with output pending: flush it, then free (bounded by a timer) */
    bufferevent_disable(bev, EV_READ);
    sim_conn_wind_down(c, SIM_CONN_PEER_GONE);
    sim_conn_timer(c, sim_conn_timer_free, SIM_HALF_CLOSE_GRACE_MS);
}

/* Free a connection (closing its socket).  Safe to call from its own callbacks as long as
 * the caller returns right away. */
static void sim_conn_free(sim_conn *c)
{
    if (c->req) { sim_req_free(c->req); c->req = NULL; }
    if (c->ctimer_init) evtimer_del(&c->ctimer);
    if (c->prev) c->prev->next = c->next;
    else sim_g.conns = c->next;
    if (c->next) c->next->prev = c->prev;
    bufferevent_free(c->bev);
    free(c);
}

/* See sim.h. */
void sim_conn_free_all(void)
{
    while (sim_g.conns) sim_conn_free(sim_g.conns);
}

/* See sim.h. */
void sim_conn_accept(evutil_socket_t fd)
{
    char line[96];
    int one = 1;
    sim_settings_init();
    sim_conn *c = calloc(1, sizeof *c);
    if (!c) { close(fd); return; }
    evutil_make_socket_nonblocking(fd);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);   /* Go's default */
    c->bev = bufferevent_socket_new(sim_g.base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) { close(fd); free(c); return; }
    llhttp_init(&c->parser, HTTP_REQUEST, &sim_settings);
    c->parser.data = c;
    c->id = ++sim_g.next_conn;
    c->next = sim_g.conns;
    if (c->next) c->next->prev = c;
    sim_g.conns = c;
    bufferevent_setcb(c->bev, sim_conn_read_cb, sim_conn_write_cb, sim_conn_event_cb, c);
    bufferevent_disable(c->bev, EV_WRITE);   /* on by default; only while output is pending */
    bufferevent_enable(c->bev, EV_READ);
    if (sim_g.cfg.events) {
        int n = snprintf(line, sizeof line, "{\"event\":\"connect\",\"conn\":%llu}", (unsigned long long)c->id);
        sim_event_emit(line, (size_t)n);
    }
}
