/* px_upstream.c — the upstream side: a keep-alive pool of connections to Ollama, strict
 * response parsing with llhttp, and the relay of response bytes to the client as they arrive.
 *
 * Data path: upstream socket → px_sock input → llhttp (paused at the end of the head and
 * of the message) → head rebuilt for the client (hop-by-hop dropped, X-LiteBrain-* added) →
 * body bytes moved, not copied, to the client's output (evbuffer_remove_buffer), chunk framing
 * and all.  When the client's output passes the high watermark, upstream reads pause until it
 * drains below the low one (px_up_resume), so a slow client slows Ollama instead of growing
 * memory. */
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include "proxy/px_int.h"

static llhttp_settings_t resp_settings;         /* static: outlives every parser */

static void up_free(px_up *u);

/* Point u's timeout seconds from now; seconds < 0: no timeout.
 * Why lazy: the deadline moves on every read and at every hand-over to and from the pool, and
 * moving a libevent timer is a heap update each time.  Only the deadline moves here; the event
 * is re-added when the new deadline comes before the one it waits for, and when it fires early
 * up_timeoutcb sends it on to the deadline.  A disarmed timer may still fire once, for nothing. */
static void up_arm(px_up *u, double seconds)
{
    if (seconds < 0) {
        u->deadline = 0;
        return;
    }
    u->deadline = px_now() + seconds;
    if (u->fires_at == 0 || u->fires_at > u->deadline) {
        struct timeval tv = px_tv(seconds);
        evtimer_add(u->timer, &tv);
        u->fires_at = u->deadline;
    }
}

/* ---------- response parsing callbacks ---------- */

#define UP(p) ((px_up *)(p)->data)

static int on_message_begin(llhttp_t *p)
{
    px_up *u = UP(p);
    px_hdrs_reset(&u->hdrs);
    u->reason_len = 0;
    u->reason[0] = '\0';
    return 0;
}

static int on_status(llhttp_t *p, const char *at, size_t n)
{
    px_up *u = UP(p);
    if (u->reason_len + n < sizeof u->reason) {
        memcpy(u->reason + u->reason_len, at, n);
        u->reason_len += n;
        u->reason[u->reason_len] = '\0';
    }
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
    return px_hdrs_piece(&UP(p)->hdrs, 0, at, n);
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
    return px_hdrs_piece(&UP(p)->hdrs, 1, at, n);
}

static int on_header_field_complete(llhttp_t *p)
{
    px_hdrs *h = &UP(p)->hdrs;

    if (px_hdrs_end_piece(h, 0) < 0)
        return -1;
    return px_hdrs_name_ok(h) ? 0 : -1;         /* nginx answers 502 to such a response too */
}

static int on_header_value_complete(llhttp_t *p)
{
    return px_hdrs_end_piece(&UP(p)->hdrs, 1);
}

static int on_headers_complete(llhttp_t *p)
{
    px_up *u = UP(p);
    int status = llhttp_get_status_code(p);

    /* 1 means "no body follows".  why: llhttp 8 reads a body announced by Content-Length or
     * Transfer-Encoding even on a 1xx, 204 or 304, which end at the blank line whatever they
     * carry (RFC 9112 §6.3), and it cannot know the request was HEAD */
    if (status >= 100 && status < 200 && status != 101)
        return 1;                               /* informational: swallowed, see below */
    u->head_done = 1;
    u->chunked = (p->flags & F_CHUNKED) != 0;
    u->req->v.resp_length = (p->flags & F_CONTENT_LENGTH) && !u->chunked
                            ? (int64_t)p->content_length : -1;
    return u->req->is_head || status == 204 || status == 304 ? 1 : HPE_PAUSED;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    px_up *u = UP(p);
    px_req *r = u->req;
    px_server *s = u->srv;

    if (n == 0 || !u->head_done)
        return 0;
    if (r->v.t_first_byte == 0)
        r->v.t_first_byte = px_now();
    r->v.bytes_out += n;
    if (!r->relay_raw)
        evbuffer_add(r->conn->sk->out, at, n);
    if (s->hooks.on_body)
        s->hooks.on_body(s->hooks.ud, &r->hook_data, &r->v, at, n);
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    px_up *u = UP(p);
    if (!u->head_done)
        return 0;                               /* end of a 1xx: the real response follows */
    u->msg_done = 1;
    return HPE_PAUSED;
}

/* ---------- relay ---------- */

/* Write the client's response head: upstream status and headers minus hop-by-hop ones, plus
 * the hooks' headers, plus Connection: close when this exchange ends the connection. */
static void send_head(px_up *u)
{
    px_req *r = u->req;
    px_conn *c = r->conn;
    px_server *s = u->srv;
    struct evbuffer *out = c->sk->out;
    const char *conn_hdr = px_hdrs_find(&u->hdrs, PX_H_CONNECTION);
    int status = llhttp_get_status_code(&u->parser), i;
    int needs_eof = !r->is_head && llhttp_message_needs_eof(&u->parser);
    px_head h;

    r->relay_raw = !(r->http10 && u->chunked);
    if (needs_eof || !r->keepalive || s->draining)
        r->close_after = 1;                     /* acted on at response_done */
    r->v.status = status;
    r->v.t_head = px_now();
    r->v.content_type = px_hdrs_find(&u->hdrs, PX_H_CONTENT_TYPE);
    if (!r->v.content_type)
        r->v.content_type = "";
    px_head_begin(&h, out);
    {
        char line[13];                          /* "HTTP/1.1 NNN " */
        int st = status % 1000;                 /* llhttp allows 0..999 */
        memcpy(line, "HTTP/1.1 ", 9);
        line[9] = (char)('0' + st / 100);
        line[10] = (char)('0' + st / 10 % 10);
        line[11] = (char)('0' + st % 10);
        line[12] = ' ';
        px_head_add(&h, line, sizeof line);
        px_head_add(&h, u->reason, u->reason_len);
        px_head_add(&h, "\r\n", 2);
    }
    for (i = 0; i < u->hdrs.n; i++) {
        int id = u->hdrs.id[i];
        if (status == 204 && (id == PX_H_CONTENT_LENGTH || id == PX_H_TRANSFER_ENCODING))
            continue;                           /* a 204 carries neither (RFC 9110 §8.6) */
        if (r->relay_raw && id == PX_H_TRANSFER_ENCODING) {
            px_head_line(&h, &u->hdrs, i);      /* framing passes through as is */
            continue;
        }
        if (!px_hdrs_hop(&u->hdrs, i, conn_hdr))
            px_head_line(&h, &u->hdrs, i);
    }
    px_head_add(&h, r->extra, strlen(r->extra));
    if (r->close_after)
        px_head_add(&h, "Connection: close\r\n", 19);
    px_head_add(&h, "\r\n", 2);
    px_head_end(&h);
    r->head_sent = 1;
    if (s->hooks.on_head)
        s->hooks.on_head(s->hooks.ud, &r->hook_data, &r->v);
}

/* Pool an idle connection or free it. */
static void pool_put(px_up *u)
{
    px_server *s = u->srv;

    if (s->npool >= PX_POOL_MAX_IDLE || s->draining) {
        up_free(u);
        return;
    }
    u->next = s->pool;
    s->pool = u;
    s->npool++;
    u->paused = 0;
    px_sock_read(u->sk, 1);                     /* notice an upstream close while idle */
    up_arm(u, PX_POOL_IDLE_SECONDS);
}

/* Remove u from the idle pool if it is there. */
static void pool_remove(px_up *u)
{
    px_up **pp;
    for (pp = &u->srv->pool; *pp; pp = &(*pp)->next)
        if (*pp == u) {
            *pp = u->next;
            u->srv->npool--;
            return;
        }
}

/* The response is complete: finish the exchange, recycle the connection, tell the client. */
static void up_done(px_up *u)
{
    px_req *r = u->req;
    px_conn *c = r->conn;
    int reusable = llhttp_should_keep_alive(&u->parser) &&
                   evbuffer_get_length(u->sk->in) == 0 && evbuffer_get_length(u->sk->out) == 0;

    r->state = RQ_DONE;
    if (!r->head_sent)
        send_head(u);
    px_req_finish(r, PX_END_OK, r->v.status);
    r->up = NULL;
    u->req = NULL;
    if (reusable)
        pool_put(u);
    else
        up_free(u);
    px_conn_response_done(c);
}

/* The exchange failed on the upstream side: close u, then let the client side answer. */
static void up_fail(px_up *u, px_end end, int status, const char *msg)
{
    px_req *r = u->req;
    px_conn *c = r->conn;

    px_log(PX_LOG_WARN, "upstream failed", "\"end\":%d,\"status\":%d,\"reason\":\"%s\"", (int)end,
           status, msg);
    r->up = NULL;
    u->req = NULL;
    up_free(u);
    px_conn_upstream_failed(c, end, r->head_sent ? 0 : status, msg);
}

static void up_readcb(px_sock *sk, void *arg)
{
    px_up *u = arg;
    px_req *r = u->req;
    struct evbuffer *in = sk->in, *cout;
    int ran_empty = 0;

    if (!r) {                                   /* an idle connection must stay silent */
        pool_remove(u);
        up_free(u);
        return;
    }
    cout = r->conn->sk->out;
    u->got_byte = 1;
    up_arm(u, u->srv->cfg->upstream_idle_timeout);
    while (!u->msg_done) {
        struct evbuffer_iovec vec;
        int head_phase = !u->head_done;
        size_t used;
        llhttp_errno_t e;

        if (evbuffer_peek(in, -1, NULL, &vec, 1) < 1 || vec.iov_len == 0) {
            /* why: a zero-length body completes only when the parser runs once more */
            if (!u->head_done || ran_empty)
                break;
            vec.iov_base = (void *)"";
            vec.iov_len = 0;
            ran_empty = 1;
        }
        e = llhttp_execute(&u->parser, vec.iov_base, vec.iov_len);
        used = vec.iov_len;
        if (e == HPE_PAUSED) {
            used = (size_t)(llhttp_get_error_pos(&u->parser) - (const char *)vec.iov_base);
            llhttp_resume(&u->parser);
        } else if (e != HPE_OK) {
            up_fail(u, PX_END_UPSTREAM_PROTOCOL, 502, "invalid response from upstream");
            return;
        }
        if (head_phase) {
            evbuffer_drain(in, used);           /* the head is rebuilt, never relayed raw */
            if (u->head_done && !r->head_sent)
                send_head(u);
        } else if (r->relay_raw) {
            evbuffer_remove_buffer(in, cout, used);
        } else {
            evbuffer_drain(in, used);           /* decoded bytes already went out in on_body */
        }
        if (vec.iov_len == 0)
            break;
    }
    if (u->msg_done) {
        up_done(u);                             /* flushes the client's output */
        return;
    }
    px_sock_flush_later(r->conn->sk);           /* relay this read at this turn's end */
    if (evbuffer_get_length(cout) > PX_HIGH_WATERMARK) {
        px_sock_read(sk, 0);                    /* backpressure: the client is slower */
        u->paused = 1;
        up_arm(u, -1);                          /* a slow client is not an idle upstream */
        px_conn_stalled(r->conn, 1);
    }
}

/* Client output drained below the low watermark: read from the upstream again. */
void px_up_resume(px_up *u)
{
    if (!u->paused)
        return;
    u->paused = 0;
    px_sock_read(u->sk, 1);
    up_arm(u, u->srv->cfg->upstream_idle_timeout);
    if (u->req)
        px_conn_stalled(u->req->conn, 0);
}

static void up_eventcb(px_sock *sk, short what, void *arg)
{
    px_up *u = arg;
    px_req *r = u->req;
    px_server *s = u->srv;

    (void)sk;
    if (what & PX_SOCK_CONNECTED) {
        u->connected = 1;
        s->up_ok_at = px_now();
        up_arm(u, -1);                          /* no first-byte timeout: models load slowly */
        return;
    }
    if (!(what & (PX_SOCK_EOF | PX_SOCK_ERROR)))
        return;
    if (!r) {                                   /* idle connection closed by Ollama */
        pool_remove(u);
        up_free(u);
        return;
    }
    if (!u->connected) {
        up_fail(u, PX_END_UPSTREAM_CONNECT, 502, "upstream unreachable");
        return;
    }
    if ((what & PX_SOCK_EOF) && u->head_done) {
        llhttp_errno_t e = llhttp_finish(&u->parser);
        if ((e == HPE_OK || e == HPE_PAUSED) && u->msg_done) {
            up_done(u);                         /* body delimited by the close */
            return;
        }
    }
    if (!u->got_byte && u->reused && !r->retried && px_method_idempotent(r->method)) {
        /* why: Ollama may close a kept-alive connection just as we reuse it, and then one
         * retry on a fresh connection saves the request.  But the request may also have
         * reached it before it died, and a proxy must not repeat a non-idempotent one (RFC
         * 9110 §9.2.2): a POST gets the 502 */
        r->retried = 1;
        r->up = NULL;
        u->req = NULL;
        up_free(u);
        if (px_up_dispatch(s, r) < 0)
            px_conn_upstream_failed(r->conn, PX_END_UPSTREAM_CONNECT, 502, "upstream unreachable");
        return;
    }
    if (!u->head_done)
        up_fail(u, PX_END_UPSTREAM_RESET, 502, "upstream closed the connection");
    else
        up_fail(u, PX_END_UPSTREAM_BROKEN, 0, "upstream broke the stream");
}

static void up_timeoutcb(evutil_socket_t fd, short what, void *arg)
{
    px_up *u = arg;
    double left = u->deadline - px_now();
    (void)fd;
    (void)what;

    u->fires_at = 0;
    if (u->deadline == 0)
        return;                                 /* disarmed after it was added */
    if (left > PX_TIMER_SLACK) {                /* the deadline moved on: wait for it */
        up_arm(u, left);
        return;
    }
    u->deadline = 0;
    if (!u->req) {                              /* idle too long in the pool */
        pool_remove(u);
        up_free(u);
    } else if (!u->connected) {
        up_fail(u, PX_END_UPSTREAM_CONNECT, 502, "upstream connect timeout");
    } else {
        up_fail(u, PX_END_UPSTREAM_TIMEOUT, 504, "upstream idle timeout");
    }
}

/* ---------- connections ---------- */

static void up_free(px_up *u)
{
    event_free(u->timer);
    px_sock_free(u->sk);                        /* closes the socket at once */
    px_hdrs_free(&u->hdrs);
    free(u);
}

/* Start connecting sk to the upstream: the address itself, or the name resolved without
 * blocking the loop.  -1 when the attempt could not even start. */
static int connect_sock(px_server *s, px_sock *sk)
{
    if (s->up_addrlen)
        return px_sock_connect(sk, (struct sockaddr *)&s->up_addr, s->up_addrlen);
    return px_sock_connect_name(sk, s->dns, s->cfg->upstream_host, s->cfg->upstream_port);
}

/* Start connecting u; -1 when the attempt could not even start. */
static int up_connect(px_up *u)
{
    up_arm(u, PX_CONNECT_TIMEOUT);
    return connect_sock(u->srv, u->sk);
}

/* A new, connecting upstream connection, or NULL. */
static px_up *up_new(px_server *s)
{
    px_up *u = calloc(1, sizeof *u);

    if (!u)
        return NULL;
    u->srv = s;
    u->sk = px_sock_new(s->base, -1);
    u->timer = evtimer_new(s->base, up_timeoutcb, u);
    if (!u->sk || !u->timer) {
        if (u->sk)
            px_sock_free(u->sk);
        if (u->timer)
            event_free(u->timer);
        free(u);
        return NULL;
    }
    px_hdrs_init(&u->hdrs, PX_RESP_HEAD_MAX);
    px_sock_setcb(u->sk, up_readcb, NULL, up_eventcb, u);
    if (up_connect(u) < 0) {
        up_free(u);
        return NULL;
    }
    return u;
}

/* Send r's request upstream on a pooled connection, or a new one.  Returns 0 when a connection
 * took it (its failures are reported to the client side later, from the loop), -1 when no
 * connection could be made: nothing is answered then, the caller answers. */
int px_up_dispatch(px_server *s, px_req *r)
{
    px_up *u = NULL;

    if (!r->retried && s->pool) {
        u = s->pool;
        s->pool = u->next;
        s->npool--;
        u->reused = 1;
        up_arm(u, -1);
    } else {
        u = up_new(s);
        if (!u)
            return -1;
    }
    u->next = NULL;
    u->req = r;
    r->up = u;
    u->got_byte = u->head_done = u->msg_done = u->chunked = u->paused = 0;
    llhttp_init(&u->parser, HTTP_RESPONSE, &resp_settings);
    u->parser.data = u;
    px_sock_read(u->sk, 1);
    px_sock_send_ref(u->sk, r->upreq);          /* sent now if connected, else on connect */
    return 0;
}

/* The client went away (or the exchange is being torn down): close u at once, which is what
 * makes Ollama stop generating. */
void px_up_abort(px_up *u)
{
    if (u->req)
        u->req->up = NULL;
    u->req = NULL;
    up_free(u);
}

/* Free every idle pooled connection. */
void px_up_pool_free(px_server *s)
{
    while (s->pool) {
        px_up *u = s->pool;
        s->pool = u->next;
        up_free(u);
    }
    s->npool = 0;
}

/* ---------- readiness probe ---------- */

static void probe_eventcb(px_sock *sk, short what, void *arg)
{
    px_server *s = arg;
    if (what & PX_SOCK_CONNECTED)
        s->up_ok_at = px_now();
    s->probe = NULL;
    px_sock_free(sk);
}

/* Try one TCP connect to the upstream in the background (never per readiness request); a probe
 * still pending after the connect timeout is abandoned. */
void px_probe_start(px_server *s)
{
    double now = px_now();

    if (s->probe && now - s->probe_at < PX_CONNECT_TIMEOUT)
        return;
    px_sock_free(s->probe);
    s->probe = px_sock_new(s->base, -1);
    if (!s->probe)
        return;
    s->probe_at = now;
    px_sock_setcb(s->probe, NULL, NULL, probe_eventcb, s);
    if (connect_sock(s, s->probe) < 0) {
        px_sock_free(s->probe);
        s->probe = NULL;
    }
}

/* Settings shared by every response parser. */
void px_upstream_init(void)
{
    llhttp_settings_init(&resp_settings);
    resp_settings.on_message_begin = on_message_begin;
    resp_settings.on_status = on_status;
    resp_settings.on_header_field = on_header_field;
    resp_settings.on_header_value = on_header_value;
    resp_settings.on_header_field_complete = on_header_field_complete;
    resp_settings.on_header_value_complete = on_header_value_complete;
    resp_settings.on_headers_complete = on_headers_complete;
    resp_settings.on_body = on_body;
    resp_settings.on_message_complete = on_message_complete;
}
