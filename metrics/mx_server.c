/* mx_server.c — the metrics port: /metrics, /healthz, /readyz, /debug/scaling on the shared
 * event_base.  Its own small HTTP/1.1 server (a libevent listener, one bufferevent and one
 * llhttp parser per connection) rather than evhttp, because evhttp 2.1 cannot bound a whole
 * request in time nor count connections before their first request: a client trickling one
 * header byte every few seconds kept its connection for hours, and any number of them.  Here
 * every open connection counts against MX_SERVER_MAX_CONNS from accept() on, each request
 * (head and body) must arrive within the timeout of its first byte, and an idle keep-alive
 * connection is closed after the same time.  Writes are non-blocking: a slow scraper holds
 * only its own rendered response; one that stops reading is closed by the write timeout. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <llhttp.h>
#include "metrics/mx_internal.h"

#define CT_METRICS "text/plain; version=0.0.4; charset=utf-8"
#define CT_TEXT "text/plain; charset=utf-8"
#define CT_JSON "application/json"

#define LISTEN_BACKLOG 128              /* pending connections the kernel queues for us */
#define PATH_MAX_BYTES 64               /* path bytes kept; longer paths are none of ours (404) */
#define HEAD_MAX_BYTES 512              /* a response head we build */
#define DRAIN_BYTES 4096                /* scratch for reading what an over-limit client sent */
#define DRAIN_READS 16                  /* ... read at most this many times (not a loop to spin in) */
#define INPUT_MAX_BYTES (MX_SERVER_MAX_HEADER_BYTES + MX_SERVER_MAX_BODY_BYTES) /* read no further
                                           ahead while an answer is being written */
#define OVER_LIMIT_ANSWER "HTTP/1.1 503 Service Unavailable\r\n" \
    "Content-Type: " CT_TEXT "\r\nCache-Control: no-store\r\n" \
    "Content-Length: 21\r\nConnection: close\r\n\r\ntoo many connections\n"

typedef struct mx_conn mx_conn;

struct mx_server {
    struct event_base *base;            /* the shared loop */
    struct evconnlistener *lis;         /* the listening socket */
    struct event *resume;               /* re-enables lis after an accept pause */
    int port;                           /* bound port */
    mx_ready_fn ready;                  /* /readyz answer, NULL = always ready */
    mx_debug_fn debug;                  /* /debug/scaling JSON, NULL = controller off */
    void *ud;                           /* user data of both callbacks */
    struct timeval timeout;             /* request, idle and write timeout */
    mx_conn *conns;                     /* open connections (doubly linked) */
    int n_conn;                         /* entries in conns */
    int paused;                         /* accept pauses so far */
};

struct mx_conn {
    mx_server *s;                       /* owner */
    struct bufferevent *bev;            /* the socket */
    struct event *timer;                /* request deadline, or the idle timeout between them */
    llhttp_t parser;                    /* request parser (settings: g_settings) */
    char path[PATH_MAX_BYTES + 1];      /* request path, NUL-terminated (query cut off) */
    size_t path_len;                    /* bytes in path */
    size_t head_bytes;                  /* bytes fed to the parser since the last request ended,
                                           while no head is complete */
    size_t body_bytes;                  /* body, chunk-extension and trailer bytes so far */
    int status;                         /* error status a callback chose (413, 431), else 0 */
    uint8_t path_long;                  /* the path did not fit: not one of ours */
    uint8_t in_query;                   /* the target's query or fragment began: not kept */
    uint8_t have_method;                /* the parser has this request's method */
    uint8_t in_head;                    /* no head complete since the last request ended */
    uint8_t in_request;                 /* between a request's first byte and its answer */
    uint8_t closing;                    /* close once the output is written */
    uint8_t eof;                        /* the client half-closed: answer what is whole, then go */
    uint8_t linger;                     /* after an error answer: read and drop until the
                                           client's FIN or the timer, then close */
    mx_conn *prev, *next;               /* s->conns */
};

static llhttp_settings_t g_settings;    /* the parser callbacks (filled once) */

/* Close and free c. */
static void conn_free(mx_conn *c)
{
    mx_server *s = c->s;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->n_conn--;
    event_free(c->timer);
    bufferevent_free(c->bev);
    free(c);
}

/* (Re)arm c's timer for the server's timeout from now. */
static void conn_arm(mx_conn *c)
{
    evtimer_add(c->timer, &c->s->timeout);
}

/* Queue one response: status with body (drained from `body`; HEAD keeps only its length).
 * With close set, or when the request does not keep the connection alive, the connection
 * closes once the response is written (after the linger, when one is set). */
static void respond(mx_conn *c, int status, const char *reason, const char *ct,
                    struct evbuffer *body, int close)
{
    char head[HEAD_MAX_BYTES], date[64];
    struct evbuffer *out = bufferevent_get_output(c->bev);
    size_t len = evbuffer_get_length(body);
    time_t now = time(NULL);
    struct tm tm;
    int n;

    if (!close && !llhttp_should_keep_alive(&c->parser))
        close = 1;
    if (!gmtime_r(&now, &tm) || !strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm))
        date[0] = '\0';
    n = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
                 "Cache-Control: no-store\r\nDate: %s\r\nContent-Length: %zu\r\n%s\r\n",
                 status, reason, ct, date, len, close ? "Connection: close\r\n" :
                 llhttp_get_http_minor(&c->parser) == 0 ? "Connection: keep-alive\r\n" : "");
    evbuffer_add(out, head, (size_t)n);
    if (c->have_method && llhttp_get_method(&c->parser) == HTTP_HEAD)
        evbuffer_drain(body, len);
    else
        evbuffer_add_buffer(out, body);
    if (close && !c->linger) {
        c->closing = 1;
        bufferevent_disable(c->bev, EV_READ);
    }
}

/* Answer the request that just ended (c->path, the parser's method). */
static void answer(mx_conn *c)
{
    mx_server *s = c->s;
    struct evbuffer *body = evbuffer_new();
    llhttp_method_t m = (llhttp_method_t)llhttp_get_method(&c->parser);
    const char *path = c->path;

    if (!body) {
        c->closing = 1;                 /* out of memory: drop the connection */
        return;
    }
    if ((m != HTTP_GET && m != HTTP_HEAD) || c->path_long)
        path = "";                      /* DESIGN: anything but GET (or HEAD) → 404 */
    if (strcmp(path, "/metrics") == 0) {
        mx_render(body, mx_now());
        respond(c, 200, "OK", CT_METRICS, body, 0);
    } else if (strcmp(path, "/healthz") == 0) {
        evbuffer_add(body, "ok\n", 3);
        respond(c, 200, "OK", CT_TEXT, body, 0);
    } else if (strcmp(path, "/readyz") == 0) {
        int ok = s->ready ? s->ready(s->ud) : 1;
        evbuffer_add_printf(body, ok ? "ready\n" : "not ready\n");
        respond(c, ok ? 200 : 503, ok ? "OK" : "Service Unavailable", CT_TEXT, body, 0);
    } else if (strcmp(path, "/debug/scaling") == 0) {
        if (s->debug)
            s->debug(body, s->ud);
        else
            evbuffer_add_printf(body, "{\"mode\":\"off\",\"controller\":\"off\"}\n");
        respond(c, 200, "OK", CT_JSON, body, 0);
    } else {
        evbuffer_add(body, "not found\n", 10);
        respond(c, 404, "Not Found", CT_TEXT, body, 0);
    }
    evbuffer_free(body);
}

/* Answer a request that cannot be read on (status 400, 413 or 431) and close after it,
 * lingering: what the client still sends is read and dropped (see conn_settle). */
static void answer_error(mx_conn *c, int status)
{
    struct evbuffer *body = evbuffer_new();
    const char *reason = status == 413 ? "Content Too Large" :
                         status == 431 ? "Request Header Fields Too Large" : "Bad Request";
    if (!body) {
        c->closing = 1;
        return;
    }
    evbuffer_add_printf(body, "%s\n", status == 413 ? "body too large" :
                        status == 431 ? "request head too large" : "bad request");
    c->linger = 1;                      /* conn_settle starts it once the answer is out */
    respond(c, status, reason, CT_TEXT, body, 1);
    evbuffer_free(body);
}

/* Body-phase bytes (body, chunk extensions, trailers) so far; -1 (error 413) past the limit. */
static int count_body(mx_conn *c, size_t n)
{
    c->body_bytes += n;
    if (c->body_bytes <= MX_SERVER_MAX_BODY_BYTES)
        return 0;
    c->status = 413;
    return -1;
}

static int on_message_begin(llhttp_t *p)
{
    mx_conn *c = p->data;
    c->path_len = c->body_bytes = 0;
    c->path[0] = '\0';
    c->path_long = c->in_query = c->have_method = 0;
    c->status = 0;
    c->in_request = 1;
    conn_arm(c);                        /* why here: the whole request within the timeout */
    return 0;
}

/* Keep the request-target up to its query or fragment (on_url_complete takes the path out
 * of an absolute-form target). */
static int on_url(llhttp_t *p, const char *at, size_t n)
{
    mx_conn *c = p->data;
    size_t room = PATH_MAX_BYTES - c->path_len;
    const char *q;
    c->have_method = 1;                 /* why: the method comes before the target */
    if (c->in_query)
        return 0;
    for (q = at; q < at + n && *q != '?' && *q != '#'; q++)
        ;
    if (q < at + n) {
        c->in_query = 1;
        n = (size_t)(q - at);
    }
    if (n > room) {
        c->path_long = 1;
        n = room;
    }
    memcpy(c->path + c->path_len, at, n);
    c->path_len += n;
    c->path[c->path_len] = '\0';
    return 0;
}

static int on_url_complete(llhttp_t *p)
{
    mx_conn *c = p->data;
    char *q = c->path;
    if (strncasecmp(q, "http://", 7) == 0 || strncasecmp(q, "https://", 8) == 0) {
        q = strchr(strchr(q, ':') + 3, '/');    /* skip the authority */
        if (!q)
            q = c->path + c->path_len;          /* no path at all: "" → 404 */
        memmove(c->path, q, strlen(q) + 1);
        c->path_len = strlen(c->path);
    }
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    ((mx_conn *)p->data)->in_head = 0;
    return 0;
}

/* Body, chunk-extension and trailer bytes: counted against the body limit, dropped.  (Head
 * bytes are counted as they are fed, in conn_parse.) */
static int on_body_span(llhttp_t *p, const char *at, size_t n)
{
    mx_conn *c = p->data;
    (void)at;
    return c->in_head ? 0 : count_body(c, n);
}

/* The request is whole: stop the parser here, so that it is answered before the next
 * pipelined one is read. */
static int on_message_complete(llhttp_t *p)
{
    ((mx_conn *)p->data)->in_head = 1;  /* the next bytes are the next request's head */
    return HPE_PAUSED;
}

/* Parse what has arrived, answering each whole request in turn.  Stops while an answer is
 * still being written (writecb goes on), and after an error.  While no head is complete, no
 * more than the head limit's remaining bytes are fed at a time, so every head byte (request
 * line, fields, line ends) counts against MX_SERVER_MAX_HEADER_BYTES: a head that has used
 * the whole limit and is still not complete gets 431. */
static void conn_parse(mx_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    struct evbuffer *out = bufferevent_get_output(c->bev);

    if (c->linger) {
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    while (!c->closing && evbuffer_get_length(out) == 0 && evbuffer_get_length(in) > 0) {
        size_t n = evbuffer_get_contiguous_space(in);
        const char *p;
        llhttp_errno_t e;
        int head = c->in_head;

        if (head && n > MX_SERVER_MAX_HEADER_BYTES - c->head_bytes)
            n = MX_SERVER_MAX_HEADER_BYTES - c->head_bytes;
        p = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
        if (n == 0) {                   /* the limit is used up and the head goes on */
            c->status = 431;
            e = HPE_USER;
        } else {
            e = llhttp_execute(&c->parser, p, n);
            if (e == HPE_OK && head && c->in_head)
                c->head_bytes += n;
        }
        if (e == HPE_OK) {
            evbuffer_drain(in, n);
        } else if (e == HPE_PAUSED) {
            evbuffer_drain(in, (size_t)(llhttp_get_error_pos(&c->parser) - p));
            c->head_bytes = 0;
            c->in_request = 0;
            event_del(c->timer);        /* the idle timer starts once the answer is out */
            answer(c);
            if (c->parser.upgrade)      /* Upgrade or CONNECT: answered, and we stay HTTP/1.1 */
                llhttp_reset(&c->parser);
            else
                llhttp_resume(&c->parser);
        } else {
            evbuffer_drain(in, evbuffer_get_length(in));
            c->in_request = 0;
            answer_error(c, c->status ? c->status : 400);
        }
    }
}

/* Once the output is written: free c when it is closing or the client half-closed; start
 * the linger after an error answer (our FIN, then the timer bounds the wait for the client's);
 * or arm the idle timer. */
static void conn_settle(mx_conn *c)
{
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
        return;
    if (c->closing || c->eof) {
        conn_free(c);
        return;
    }
    if (c->linger) {
        if (c->linger == 1) {
            c->linger = 2;
            shutdown(bufferevent_getfd(c->bev), SHUT_WR);
            conn_arm(c);
        }
        return;
    }
    if (!c->in_request && evbuffer_get_length(bufferevent_get_input(c->bev)) == 0 &&
        !evtimer_pending(c->timer, NULL))
        conn_arm(c);                    /* idle keep-alive */
}

static void conn_readcb(struct bufferevent *bev, void *arg)
{
    mx_conn *c = arg;
    (void)bev;
    conn_parse(c);
    conn_settle(c);
}

static void conn_writecb(struct bufferevent *bev, void *arg)
{
    mx_conn *c = arg;
    (void)bev;
    conn_parse(c);                      /* pipelined requests waited for this answer */
    conn_settle(c);
}

static void conn_eventcb(struct bufferevent *bev, short what, void *arg)
{
    mx_conn *c = arg;
    (void)bev;
    if ((what & BEV_EVENT_EOF) && !(what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) &&
        evbuffer_get_length(bufferevent_get_output(c->bev)) > 0) {
        c->eof = 1;                     /* the client half-closed: finish writing, then go */
        return;
    }
    conn_free(c);                       /* error, write timeout, or EOF with nothing to send */
}

/* The request deadline, the idle timeout or the linger passed: close (without an answer). */
static void conn_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_free(arg);
}

/* Best effort for a connection over the limit: the fixed 503, what it already sent read and
 * dropped (closing with unread bytes would send a reset that can destroy the answer), close. */
static void refuse(evutil_socket_t fd)
{
    char scratch[DRAIN_BYTES];
    ssize_t n = send(fd, OVER_LIMIT_ANSWER, sizeof OVER_LIMIT_ANSWER - 1,
                     MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)n;
    shutdown(fd, SHUT_WR);
    for (int i = 0; i < DRAIN_READS && recv(fd, scratch, sizeof scratch, MSG_DONTWAIT) > 0; i++)
        ;
    close(fd);
}

static void on_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    mx_server *s = arg;
    mx_conn *c;
    (void)lis;
    (void)sa;
    (void)salen;
    if (s->n_conn >= MX_SERVER_MAX_CONNS) {
        refuse(fd);
        return;
    }
    c = calloc(1, sizeof *c);
    if (!c)
        goto fail;
    c->s = s;
    c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->timer = evtimer_new(s->base, conn_timeout, c);
    if (!c->bev || !c->timer) {
        if (c->bev)
            bufferevent_free(c->bev);   /* closes fd */
        else
            close(fd);
        if (c->timer)
            event_free(c->timer);
        free(c);
        return;
    }
    llhttp_init(&c->parser, HTTP_REQUEST, &g_settings);
    c->parser.data = c;
    c->in_head = 1;
    bufferevent_setcb(c->bev, conn_readcb, conn_writecb, conn_eventcb, c);
    bufferevent_set_timeouts(c->bev, NULL, &s->timeout);   /* write timeout only */
    bufferevent_setwatermark(c->bev, EV_READ, 0, INPUT_MAX_BYTES); /* why: pipelined requests
                                           wait in the input while an answer is written */
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->n_conn++;
    conn_arm(c);                        /* the first request's first byte */
    return;
fail:
    close(fd);
}

/* The accept pause is over: listen again. */
static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    mx_server *s = arg;
    (void)fd;
    (void)what;
    evconnlistener_enable(s->lis);
}

/* accept() failed.  Out of descriptors or memory the listening socket stays readable, and
 * retrying at once would spin (starving the proxy): pause instead, as the proxy's own
 * listener does. */
static void on_accept_error(struct evconnlistener *lis, void *arg)
{
    mx_server *s = arg;
    int e = EVUTIL_SOCKET_ERROR();
    struct timeval tv = { 0, (suseconds_t)(MX_SERVER_ACCEPT_PAUSE * 1e6) };

    if (e != EMFILE && e != ENFILE && e != ENOBUFS && e != ENOMEM)
        return;                         /* a transient error (the peer reset): go on */
    evconnlistener_disable(lis);
    evtimer_add(s->resume, &tv);
    s->paused++;
}

/* Port a bound socket listens on, or -1. */
static int bound_port(evutil_socket_t fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
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
    struct addrinfo hints, *ai = NULL;
    char service[16];
    const char *h = host && *host ? host : "0.0.0.0";
    mx_server *s = calloc(1, sizeof *s);

    if (!s) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (!g_settings.on_message_complete) {
        llhttp_settings_init(&g_settings);
        g_settings.on_message_begin = on_message_begin;
        g_settings.on_url = on_url;
        g_settings.on_url_complete = on_url_complete;
        g_settings.on_headers_complete = on_headers_complete;
        g_settings.on_header_field = on_body_span;     /* trailers; head fields count in conn_parse */
        g_settings.on_header_value = on_body_span;
        g_settings.on_chunk_extension_name = on_body_span;
        g_settings.on_chunk_extension_value = on_body_span;
        g_settings.on_body = on_body_span;
        g_settings.on_message_complete = on_message_complete;
    }
    s->base = base;
    s->ready = ready;
    s->debug = debug;
    s->ud = ud;
    s->timeout.tv_sec = MX_SERVER_TIMEOUT_SECONDS;
    if (port < 0 || port > 65535) {
        snprintf(err, errlen, "metrics port %d out of range", port);
        goto fail;
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    snprintf(service, sizeof service, "%d", port);
    if (getaddrinfo(h, service, &hints, &ai) != 0 || !ai) {
        snprintf(err, errlen, "cannot bind metrics address %s:%d: unknown host", h, port);
        goto fail;
    }
    s->lis = evconnlistener_new_bind(base, on_accept, s,
                                     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
                                     LISTEN_BACKLOG, ai->ai_addr, (int)ai->ai_addrlen);
    freeaddrinfo(ai);
    if (!s->lis) {
        snprintf(err, errlen, "cannot bind metrics address %s:%d: %s", h, port,
                 strerror(errno));
        goto fail;
    }
    s->port = bound_port(evconnlistener_get_fd(s->lis));
    s->resume = evtimer_new(base, on_resume, s);
    if (!s->resume) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    evconnlistener_set_error_cb(s->lis, on_accept_error);
    return s;
fail:
    mx_server_free(s);
    return NULL;
}

void mx_server_set_timeout(mx_server *s, double seconds)
{
    if (!s || !(seconds > 0))
        return;
    s->timeout.tv_sec = (time_t)seconds;
    s->timeout.tv_usec = (suseconds_t)((seconds - (double)s->timeout.tv_sec) * 1e6);
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
    if (!s)
        return;
    while (s->conns)
        conn_free(s->conns);
    if (s->resume)
        event_free(s->resume);
    if (s->lis)
        evconnlistener_free(s->lis);
    free(s);
}
