/* mx_server.c — the metrics port: /metrics, /healthz, /readyz, /debug/scaling on the shared
 * event_base through libevent's evhttp.  evhttp writes are non-blocking, so a slow scraper only
 * holds its own buffered response; connections are capped and time out. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include "metrics/mx_internal.h"

#define CT_METRICS "text/plain; version=0.0.4; charset=utf-8"
#define CT_TEXT "text/plain; charset=utf-8"
#define CT_JSON "application/json"

struct mx_server {
    struct evhttp *http;                /* the evhttp server on the shared base */
    int port;                           /* bound port */
    mx_ready_fn ready;                  /* /readyz answer, NULL = always ready */
    mx_debug_fn debug;                  /* /debug/scaling JSON, NULL = controller off */
    void *ud;                           /* user data of both callbacks */
    struct evhttp_connection *conn[MX_SERVER_MAX_CONNS]; /* connections that sent a request */
    int n_conn;                         /* entries in conn */
    struct evconnlistener *lis;         /* evhttp's listener (owned by evhttp) */
    struct event *resume;               /* re-enables lis after an accept pause */
    int paused;                         /* accept pauses so far */
    mx_server *next;                    /* the list of live servers */
};

/* Every live server: libevent hands the accept error callback evhttp's context, not ours. */
static mx_server *g_servers;

/* The accept pause is over: listen again. */
static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    mx_server *s = arg;
    (void)fd;
    (void)what;
    evconnlistener_enable(s->lis);
}

/* accept() failed.  Out of descriptors or memory, the listening socket stays readable, and
 * evhttp would retry at once forever (a busy loop that starves the proxy): pause instead, as
 * the proxy's own listener does. */
static void on_accept_error(struct evconnlistener *lis, void *ctx)
{
    int e = EVUTIL_SOCKET_ERROR();
    struct timeval tv = { 0, (suseconds_t)(MX_SERVER_ACCEPT_PAUSE * 1e6) };
    mx_server *s = g_servers;

    while (s && s->http != ctx)
        s = s->next;
    if (!s || (e != EMFILE && e != ENFILE && e != ENOBUFS && e != ENOMEM))
        return;                         /* a transient error (the peer reset): go on */
    evconnlistener_disable(lis);
    evtimer_add(s->resume, &tv);
    s->paused++;
}

/* evhttp is about to free a connection we track: forget it. */
static void conn_closed(struct evhttp_connection *evcon, void *arg)
{
    mx_server *s = arg;
    for (int i = 0; i < s->n_conn; i++)
        if (s->conn[i] == evcon) {
            s->conn[i] = s->conn[--s->n_conn];
            return;
        }
}

/* Track the request's connection.  Returns 0, or -1 when it is new and the table is full. */
static int conn_track(mx_server *s, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (!evcon)
        return 0;
    for (int i = 0; i < s->n_conn; i++)
        if (s->conn[i] == evcon)
            return 0;
    if (s->n_conn == MX_SERVER_MAX_CONNS)
        return -1;
    s->conn[s->n_conn++] = evcon;
    evhttp_connection_set_closecb(evcon, conn_closed, s);
    return 0;
}

/* Send status with body (moved out of `body`), Content-Type ct; HEAD gets the headers only,
 * with the Content-Length the body would have had. */
static void reply(struct evhttp_request *req, int code, const char *reason, const char *ct,
                  struct evbuffer *body)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", ct);
    evhttp_add_header(h, "Cache-Control", "no-store");
    if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
        char len[32];
        snprintf(len, sizeof len, "%zu", evbuffer_get_length(body));
        evhttp_add_header(h, "Content-Length", len);
        evbuffer_drain(body, evbuffer_get_length(body));
    }
    evhttp_send_reply(req, code, reason, body);
}

/* /debug/scaling: the controller's JSON, or a fixed answer when there is no controller. */
static void debug_body(mx_server *s, struct evbuffer *body)
{
    if (s->debug)
        s->debug(body, s->ud);
    else
        evbuffer_add_printf(body, "{\"mode\":\"off\",\"controller\":\"off\"}\n");
}

/* Every request on the metrics port. */
static void on_request(struct evhttp_request *req, void *arg)
{
    mx_server *s = arg;
    struct evbuffer *body = evbuffer_new();
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;

    if (!body) {
        evhttp_send_error(req, HTTP_SERVUNAVAIL, NULL);
        return;
    }
    if (conn_track(s, req) < 0) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        evbuffer_add_printf(body, "too many connections\n");
        reply(req, HTTP_SERVUNAVAIL, "Service Unavailable", CT_TEXT, body);
        goto out;
    }
    if (!path || !*path)
        path = "/";
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD)
        path = "";                              /* DESIGN: anything but GET (or HEAD) → 404 */
    if (strcmp(path, "/metrics") == 0) {
        mx_render(body, mx_now());
        reply(req, HTTP_OK, "OK", CT_METRICS, body);
    } else if (strcmp(path, "/healthz") == 0) {
        evbuffer_add_printf(body, "ok\n");
        reply(req, HTTP_OK, "OK", CT_TEXT, body);
    } else if (strcmp(path, "/readyz") == 0) {
        int ok = s->ready ? s->ready(s->ud) : 1;
        evbuffer_add_printf(body, ok ? "ready\n" : "not ready\n");
        reply(req, ok ? HTTP_OK : HTTP_SERVUNAVAIL, ok ? "OK" : "Service Unavailable",
              CT_TEXT, body);
    } else if (strcmp(path, "/debug/scaling") == 0) {
        debug_body(s, body);
        reply(req, HTTP_OK, "OK", CT_JSON, body);
    } else {
        evbuffer_add_printf(body, "not found\n");
        reply(req, HTTP_NOTFOUND, "Not Found", CT_TEXT, body);
    }
out:
    evbuffer_free(body);
}

/* Port a bound evhttp socket listens on, or -1. */
static int bound_port(struct evhttp_bound_socket *b)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    evutil_socket_t fd = evhttp_bound_socket_get_fd(b);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

mx_server *mx_server_start(struct event_base *base, const char *host, int port,
                           mx_ready_fn ready, mx_debug_fn debug, void *ud,
                           char *err, size_t errlen)
{
    struct evhttp_bound_socket *b;
    mx_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    s->ready = ready;
    s->debug = debug;
    s->ud = ud;
    if (port < 0 || port > 65535) {
        snprintf(err, errlen, "metrics port %d out of range", port);
        goto fail;
    }
    s->http = evhttp_new(base);
    if (!s->http) {
        snprintf(err, errlen, "evhttp_new failed");
        goto fail;
    }
    evhttp_set_timeout(s->http, MX_SERVER_TIMEOUT_SECONDS);
    evhttp_set_max_headers_size(s->http, MX_SERVER_MAX_HEADER_BYTES);
    evhttp_set_max_body_size(s->http, MX_SERVER_MAX_BODY_BYTES);
    evhttp_set_default_content_type(s->http, CT_TEXT);
    /* why: let every method reach on_request, which answers 404 (evhttp alone would say 405) */
    evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                               EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                               EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_gencb(s->http, on_request, s);
    b = evhttp_bind_socket_with_handle(s->http, host && *host ? host : "0.0.0.0",
                                       (uint16_t)port);
    if (!b) {
        snprintf(err, errlen, "cannot bind metrics address %s:%d", host ? host : "0.0.0.0", port);
        goto fail;
    }
    s->port = bound_port(b);
    s->lis = evhttp_bound_socket_get_listener(b);
    s->resume = evtimer_new(base, on_resume, s);
    if (!s->resume) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    evconnlistener_set_error_cb(s->lis, on_accept_error);
    s->next = g_servers;
    g_servers = s;
    return s;
fail:
    mx_server_free(s);
    return NULL;
}

int mx_server_port(const mx_server *s)
{
    return s ? s->port : -1;
}

int mx_server_connections(const mx_server *s)
{
    return s ? s->n_conn : 0;
}

int mx_server_accept_pauses(const mx_server *s)
{
    return s ? s->paused : 0;
}

void mx_server_free(mx_server *s)
{
    mx_server **p = &g_servers;

    if (!s)
        return;
    while (*p && *p != s)
        p = &(*p)->next;
    if (*p)
        *p = s->next;
    if (s->resume)
        event_free(s->resume);
    if (s->http) {
        /* why: evhttp_free frees the connections and would call conn_closed on s */
        for (int i = 0; i < s->n_conn; i++)
            evhttp_connection_set_closecb(s->conn[i], NULL, NULL);
        evhttp_free(s->http);
    }
    free(s);
}
