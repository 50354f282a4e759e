/* test_metrics_server.c — the :9090 endpoints on a real loopback socket, with the clients on the
 * same event_base as the server (so the test waits on events, never on sleeps). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include "metrics/metrics.h"

#define WAIT_SECONDS 10                 /* a wait that takes longer than this fails the test */
#define BIG_BYTES (4 * 1024 * 1024)     /* collector output that outgrows socket buffers */
#define SMALL_RCVBUF 4096               /* the slow scraper's receive buffer */
#define SHORT_TIMEOUT 0.3               /* server timeout set by the timeout tests, s */
#define TRICKLE_MS 50                   /* one header byte this often: faster than any timeout */

static struct event_base *base;
static mx_server *srv;

/* One raw HTTP client connection. */
typedef struct client {
    struct bufferevent *bev;            /* the connection */
    struct evbuffer *got;               /* every byte received */
    int eof;                            /* peer closed or error */
    int err;                            /* the connection failed (a reset, not a FIN) */
    char *text;                         /* NUL-terminated copy of got (see got_text) */
} client;

static void client_read(struct bufferevent *bev, void *arg)
{
    client *c = arg;
    evbuffer_add_buffer(c->got, bufferevent_get_input(bev));
}

static void client_event(struct bufferevent *bev, short what, void *arg)
{
    client *c = arg;
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        c->eof = 1;
    if (what & BEV_EVENT_ERROR)
        c->err = 1;
}

/* Connect to the server; rcvbuf > 0 shrinks the socket's receive buffer first. */
static client *client_new(int rcvbuf)
{
    client *c = calloc(1, sizeof *c);
    struct sockaddr_in sin;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    evutil_make_socket_nonblocking(fd);
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((uint16_t)mx_server_port(srv));
    c->got = evbuffer_new();
    c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(c->bev, client_read, NULL, client_event, c);
    bufferevent_enable(c->bev, EV_READ);
    assert_int_equal(bufferevent_socket_connect(c->bev, (struct sockaddr *)&sin, sizeof sin), 0);
    return c;
}

static void client_free(client *c)
{
    bufferevent_free(c->bev);
    evbuffer_free(c->got);
    free(c->text);
    free(c);
}

/* The bytes received so far as a NUL-terminated string (valid until the next call). */
static const char *got_text(client *c, size_t *n)
{
    *n = evbuffer_get_length(c->got);
    c->text = realloc(c->text, *n + 1);
    evbuffer_copyout(c->got, c->text, *n);
    c->text[*n] = '\0';
    return c->text;
}

static void client_send(client *c, const char *req)
{
    bufferevent_write(c->bev, req, strlen(req));
}

static int timed_out;
static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd; (void)what; (void)arg;
    timed_out = 1;
}

/* Run the loop until pred(arg) holds; fails the test after WAIT_SECONDS. */
static void run_until(int (*pred)(void *), void *arg)
{
    struct timeval tv = { WAIT_SECONDS, 0 };
    struct event *t = evtimer_new(base, on_timeout, NULL);
    timed_out = 0;
    evtimer_add(t, &tv);
    while (!pred(arg) && !timed_out)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(t);
    assert_false(timed_out);
}

/* A parsed response: status, a header lookup, body bounds.  -1 status when incomplete. */
typedef struct response {
    int status;                         /* HTTP status, -1 if the head is incomplete */
    const char *head;                   /* start of the head */
    size_t head_len;                    /* bytes up to and including the blank line */
    long content_length;                /* Content-Length, -1 if absent */
    const char *body;                   /* body start */
    size_t have;                        /* body bytes received after the head */
} response;

/* Parse the first response at text[0..n). */
static response parse(const char *text, size_t n)
{
    response r = { -1, text, 0, -1, NULL, 0 };
    const char *end = n ? memmem(text, n, "\r\n\r\n", 4) : NULL;
    if (!end || sscanf(text, "HTTP/1.%*d %d", &r.status) != 1) {
        r.status = -1;
        return r;
    }
    r.head_len = (size_t)(end + 4 - text);
    r.body = end + 4;
    r.have = n - r.head_len;
    for (const char *l = strstr(text, "\r\n") + 2; l < end; l = strstr(l, "\r\n") + 2)
        if (strncasecmp(l, "Content-Length:", 15) == 0)
            r.content_length = strtol(l + 15, NULL, 10);
    return r;
}

/* Value of header name in r (static buffer), or NULL. */
static const char *header(const response *r, const char *name)
{
    static char val[256];
    size_t nl = strlen(name);
    for (const char *l = strstr(r->head, "\r\n") + 2; l < r->head + r->head_len - 2;
         l = strstr(l, "\r\n") + 2)
        if (strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
            const char *v = l + nl + 1, *e = strstr(l, "\r\n");
            while (*v == ' ')
                v++;
            snprintf(val, sizeof val, "%.*s", (int)(e - v), v);
            return val;
        }
    return NULL;
}

static int is_eof(void *arg) { return ((client *)arg)->eof; }

/* Send req with Connection: close, read to EOF, return the bytes (malloc'd, NUL-ended). */
static char *exchange(const char *method, const char *path, size_t *len)
{
    char req[512], *out;
    client *c = client_new(0);
    snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
             method, path);
    client_send(c, req);
    run_until(is_eof, c);
    *len = evbuffer_get_length(c->got);
    out = malloc(*len + 1);
    evbuffer_remove(c->got, out, *len);
    out[*len] = '\0';
    client_free(c);
    return out;
}

static int ready_value;                 /* what the ready callback answers */
static int ready_cb(void *ud) { (void)ud; return ready_value; }
static void debug_cb(struct evbuffer *out, void *ud)
{
    evbuffer_add_printf(out, "{\"mode\":\"%s\"}", (const char *)ud);
}

static int setup(void **state)
{
    char err[256] = "";
    (void)state;
    base = event_base_new();
    mx_set_clock(NULL);
    mx_init(mx_now(), 1700000000, "test");
    srv = mx_server_start(base, "127.0.0.1", 0, ready_cb, debug_cb, "dry-run", err, sizeof err);
    assert_non_null(srv);
    assert_true(mx_server_port(srv) > 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mx_set_collector(NULL, NULL);
    mx_server_free(srv);
    event_base_free(base);
    return 0;
}

/* GET /metrics: 200, the exact Content-Type, the whole exposition with a trailing newline. */
static void test_get_metrics(void **state)
{
    size_t n;
    char *t;
    response r;
    (void)state;
    mx_request_done(MX_CX_LOW, 200, 0.2);
    t = exchange("GET", "/metrics?x=1", &n);
    r = parse(t, n);
    assert_int_equal(r.status, 200);
    assert_string_equal(header(&r, "Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
    assert_int_equal(r.content_length, (long)r.have);
    assert_true(r.have > 1000);
    assert_memory_equal(r.body, "# HELP litebrain_complexity_score ", 34);
    assert_int_equal(r.body[r.have - 1], '\n');
    assert_non_null(strstr(r.body, "\nlitebrain_requests_total{complexity=\"low\",status=\"200\"} 1\n"));
    free(t);
}

/* HEAD /metrics: headers (with the GET's Content-Length) and not one body byte. */
static void test_head_metrics(void **state)
{
    size_t n;
    char *t;
    response r;
    (void)state;
    t = exchange("HEAD", "/metrics", &n);
    r = parse(t, n);
    assert_int_equal(r.status, 200);
    assert_string_equal(header(&r, "Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
    assert_true(r.content_length > 1000);
    assert_int_equal(r.have, 0);
    free(t);
}

static int two_responses(void *arg)
{
    client *c = arg;
    size_t n;
    const char *t = got_text(c, &n);
    response a = parse(t, n), b;
    if (a.status < 0)
        return c->eof;
    b = parse(a.body, a.have);
    return c->eof || (b.status > 0 && b.content_length >= 0 && (long)b.have >= b.content_length);
}

/* HEAD then GET on one keep-alive connection: the second response follows the first head at
 * once, which is only true when the HEAD response carried no body. */
static void test_head_keepalive(void **state)
{
    client *c = client_new(0);
    size_t n;
    const char *t;
    response a, b;
    (void)state;
    client_send(c, "HEAD /metrics HTTP/1.1\r\nHost: t\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    run_until(two_responses, c);
    t = got_text(c, &n);
    a = parse(t, n);
    assert_int_equal(a.status, 200);
    b = parse(a.body, a.have);
    assert_int_equal(b.status, 200);
    assert_int_equal(b.have, 3);
    assert_memory_equal(b.body, "ok\n", 3);
    client_free(c);
}

/* /healthz, /readyz (both answers), /debug/scaling, 404 for other paths and other methods. */
static void test_endpoints(void **state)
{
    struct { const char *method, *path; int ready; int status; const char *body; } cases[] = {
        { "GET", "/healthz", 1, 200, "ok\n" },
        { "GET", "/readyz", 1, 200, "ready\n" },
        { "GET", "/readyz", 0, 503, "not ready\n" },
        { "HEAD", "/readyz", 0, 503, "" },
        { "GET", "/debug/scaling", 1, 200, "{\"mode\":\"dry-run\"}" },
        { "GET", "/", 1, 404, "not found\n" },
        { "GET", "/metricsx", 1, 404, "not found\n" },
        { "POST", "/metrics", 1, 404, "not found\n" },
        { "DELETE", "/healthz", 1, 404, "not found\n" },
        { "PUT", "/nope", 1, 404, "not found\n" },
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n;
        char *t;
        response r;
        ready_value = cases[i].ready;
        t = exchange(cases[i].method, cases[i].path, &n);
        r = parse(t, n);
        assert_int_equal(r.status, cases[i].status);
        assert_int_equal(r.have, strlen(cases[i].body));
        assert_memory_equal(r.body, cases[i].body, r.have);
        assert_null(header(&r, "Allow"));
        if (strcmp(cases[i].path, "/debug/scaling") == 0)
            assert_string_equal(header(&r, "Content-Type"), "application/json");
        free(t);
    }
}

/* Without callbacks: always ready, and /debug/scaling says the controller is off. */
static void test_no_callbacks(void **state)
{
    char err[256];
    mx_server *keep = srv;
    size_t n;
    char *t;
    response r;
    (void)state;
    srv = mx_server_start(base, "127.0.0.1", 0, NULL, NULL, NULL, err, sizeof err);
    assert_non_null(srv);
    t = exchange("GET", "/readyz", &n);
    assert_int_equal(parse(t, n).status, 200);
    free(t);
    t = exchange("GET", "/debug/scaling", &n);
    r = parse(t, n);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"controller\":\"off\""));
    free(t);
    mx_server_free(srv);
    srv = keep;
}

/* A port in use: NULL and a message. */
static void test_bind_failure(void **state)
{
    char err[256] = "";
    (void)state;
    assert_null(mx_server_start(base, "127.0.0.1", mx_server_port(srv), NULL, NULL, NULL,
                                err, sizeof err));
    assert_non_null(strstr(err, "cannot bind"));
}

static int response_done(void *arg)
{
    client *c = arg;
    size_t n;
    const char *t = got_text(c, &n);
    response r = parse(t, n);
    return c->eof || (r.status > 0 && r.content_length >= 0 && (long)r.have >= r.content_length);
}

static int no_connections(void *arg) { (void)arg; return mx_server_connections(srv) == 0; }

/* Keep-alive connections are tracked until they close; one past the cap gets 503. */
static void test_connection_cap(void **state)
{
    client *c[MX_SERVER_MAX_CONNS + 1];
    (void)state;
    for (int i = 0; i <= MX_SERVER_MAX_CONNS; i++) {
        c[i] = client_new(0);
        client_send(c[i], "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
        run_until(response_done, c[i]);
        size_t n;
        const char *t = got_text(c[i], &n);
        assert_int_equal(parse(t, n).status, i < MX_SERVER_MAX_CONNS ? 200 : 503);
    }
    assert_int_equal(mx_server_connections(srv), MX_SERVER_MAX_CONNS);
    for (int i = 0; i <= MX_SERVER_MAX_CONNS; i++)
        client_free(c[i]);
    run_until(no_connections, NULL);
}

static void big_collector(struct evbuffer *out, void *ud)
{
    static char line[1024];
    (void)ud;
    memset(line, 'x', sizeof line);
    line[0] = '#';
    line[1] = ' ';
    line[sizeof line - 1] = '\n';
    for (int i = 0; i < BIG_BYTES / (int)sizeof line; i++)
        evbuffer_add(out, line, sizeof line);
}

/* A scraper that does not read its (large) response does not stop anyone else being served;
 * when it finally reads, it gets every byte. */
static void test_slow_scraper(void **state)
{
    client *slow = client_new(SMALL_RCVBUF), *fast;
    size_t n;
    const char *t;
    response r;
    (void)state;
    mx_set_collector(big_collector, NULL);
    bufferevent_disable(slow->bev, EV_READ);
    client_send(slow, "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    fast = client_new(0);
    client_send(fast, "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    run_until(is_eof, fast);
    t = got_text(fast, &n);
    assert_int_equal(parse(t, n).status, 200);
    assert_int_equal(evbuffer_get_length(slow->got), 0);
    assert_int_equal(mx_server_connections(srv), 1);      /* the slow one, still writing */
    bufferevent_enable(slow->bev, EV_READ);
    run_until(is_eof, slow);
    t = got_text(slow, &n);
    r = parse(t, n);
    assert_int_equal(r.status, 200);
    assert_true(r.have > BIG_BYTES);
    assert_int_equal((long)r.have, r.content_length);
    client_free(slow);
    client_free(fast);
    mx_set_collector(NULL, NULL);
}

static int paused(void *arg) { (void)arg; return mx_server_accept_pauses(srv) > 0; }

/* Out of descriptors: the listener pauses (evhttp alone would retry accept() in a busy loop)
 * and serves the waiting connection once descriptors are free again. */
static void test_accept_pause(void **state)
{
    struct rlimit old, low;
    client *c;
    size_t n;
    const char *t;
    int probe = dup(0);
    (void)state;
    assert_true(probe >= 0);
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = (rlim_t)probe + 1;   /* room for exactly one more: the client's socket */
    close(probe);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    c = client_new(0);
    client_send(c, "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    run_until(paused, NULL);
    assert_int_equal(evbuffer_get_length(c->got), 0);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    run_until(is_eof, c);               /* after the pause: accepted and answered */
    t = got_text(c, &n);
    assert_int_equal(parse(t, n).status, 200);
    client_free(c);
}

/* The trickling client: a persistent timer sends one more header byte each tick. */
typedef struct trickle {
    client *c;                          /* the connection */
    struct event *tick;                 /* the timer */
    int sent;                           /* header bytes sent so far */
} trickle;

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    trickle *t = arg;
    (void)fd;
    (void)what;
    if (!t->c->eof) {
        client_send(t->c, "x");
        t->sent++;
    }
}

/* A client that sends its head one byte at a time, each well within the timeout, is closed
 * when the whole request's time is up (a per-read timeout would keep it forever), without an
 * answer; a client served meanwhile is not disturbed. */
static void test_trickle_closed(void **state)
{
    struct timeval every = { 0, TRICKLE_MS * 1000 };
    trickle t = { 0 };
    client *other;
    size_t n;
    const char *text;
    int limit = (int)(SHORT_TIMEOUT * 1000 / TRICKLE_MS);
    (void)state;
    mx_server_set_timeout(srv, SHORT_TIMEOUT);
    t.c = client_new(0);
    client_send(t.c, "GET /metrics HTTP/1.1\r\nHost: t\r\nX-Slow: ");
    t.tick = event_new(base, -1, EV_PERSIST, on_tick, &t);
    evtimer_add(t.tick, &every);
    other = client_new(0);
    client_send(other, "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    run_until(is_eof, other);
    text = got_text(other, &n);
    assert_int_equal(parse(text, n).status, 200);
    run_until(is_eof, t.c);
    event_free(t.tick);
    assert_int_equal(evbuffer_get_length(t.c->got), 0);   /* closed, not answered */
    assert_true(t.sent >= limit - 1);   /* it was trickling all along ... */
    assert_true(t.sent <= 3 * limit);   /* ... and was cut near the timeout, not after */
    client_free(t.c);
    client_free(other);
}

/* Send raw bytes, read to EOF: the status of the first response. */
static int raw_status(const char *bytes, size_t len)
{
    client *c = client_new(0);
    size_t n;
    const char *text;
    int status;
    bufferevent_write(c->bev, bytes, len);
    run_until(is_eof, c);
    text = got_text(c, &n);
    status = parse(text, n).status;
    client_free(c);
    return status;
}

static int conns_at_least(void *arg) { return mx_server_connections(srv) >= *(int *)arg; }

/* Connections count from accept: MX_SERVER_MAX_CONNS that never send a byte fill the port,
 * the next one gets 503 at once; the idle timeout closes them, and then a request is served. */
static void test_idle_connections_count(void **state)
{
    client *c[MX_SERVER_MAX_CONNS];
    int want = MX_SERVER_MAX_CONNS;
    (void)state;
    mx_server_set_timeout(srv, SHORT_TIMEOUT);
    for (int i = 0; i < MX_SERVER_MAX_CONNS; i++)
        c[i] = client_new(0);
    run_until(conns_at_least, &want);
    assert_int_equal(raw_status("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", 34), 503);
    for (int i = 0; i < MX_SERVER_MAX_CONNS; i++) {
        run_until(is_eof, c[i]);        /* closed by the idle timeout */
        assert_int_equal(evbuffer_get_length(c[i]->got), 0);
        client_free(c[i]);
    }
    run_until(no_connections, NULL);
    assert_int_equal(raw_status("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", 34), 200);
}

/* A malformed request gets 400, a head over MX_SERVER_MAX_HEADER_BYTES 431, a body over
 * MX_SERVER_MAX_BODY_BYTES 413; each closes its connection (read to EOF above) and the port
 * goes on serving. */
static void test_bad_requests(void **state)
{
    static char big[MX_SERVER_MAX_HEADER_BYTES + 1024];
    size_t n;
    char *t;
    (void)state;
    assert_int_equal(raw_status("GET /metrics HTTP/1.1\r\nHost t\r\n\r\n", 33), 400);
    assert_int_equal(raw_status("\x01\x02\r\n\r\n", 6), 400);
    n = (size_t)snprintf(big, sizeof big, "GET /metrics HTTP/1.1\r\nHost: t\r\nX-Big: ");
    memset(big + n, 'a', MX_SERVER_MAX_HEADER_BYTES);
    memcpy(big + n + MX_SERVER_MAX_HEADER_BYTES, "\r\n\r\n", 4);
    assert_int_equal(raw_status(big, n + MX_SERVER_MAX_HEADER_BYTES + 4), 431);
    n = (size_t)snprintf(big, sizeof big, "POST /metrics HTTP/1.1\r\nHost: t\r\n"
                         "Content-Length: %d\r\n\r\n", MX_SERVER_MAX_BODY_BYTES + 1);
    memset(big + n, 'b', MX_SERVER_MAX_BODY_BYTES + 1);
    assert_int_equal(raw_status(big, n + MX_SERVER_MAX_BODY_BYTES + 1), 413);
    t = exchange("GET", "/healthz", &n);
    assert_int_equal(parse(t, n).status, 200);
    free(t);
}

static int three_responses(void *arg)
{
    client *c = arg;
    size_t n;
    const char *t = got_text(c, &n);
    int k = 0;
    for (const char *p = t; (p = strstr(p, "HTTP/1.1 ")) != NULL; p++)
        k++;
    return c->eof || (k == 3 && n > 0 && t[n - 1] == '\n' && strstr(t, "ready\n"));
}

/* Pipelined requests (one write, a body on the middle one) are answered in order; an
 * absolute-form target is served by its path and the query is ignored. */
static void test_pipelined(void **state)
{
    client *c = client_new(0);
    size_t n;
    const char *t, *a, *b, *d;
    (void)state;
    ready_value = 1;
    client_send(c, "GET http://x:9090/healthz?a=1 HTTP/1.1\r\nHost: x\r\n\r\n"
                   "POST /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"
                   "GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n");
    run_until(three_responses, c);
    t = got_text(c, &n);
    a = strstr(t, "HTTP/1.1 ");
    b = strstr(a + 1, "HTTP/1.1 ");
    d = b ? strstr(b + 1, "HTTP/1.1 ") : NULL;
    assert_non_null(d);
    assert_int_equal(strncmp(a, "HTTP/1.1 200", 12), 0);
    assert_int_equal(strncmp(b, "HTTP/1.1 404", 12), 0);
    assert_int_equal(strncmp(d, "HTTP/1.1 200", 12), 0);
    assert_non_null(strstr(d, "\r\n\r\nready\n"));
    client_free(c);
}

/* A client whose bytes were sent (blocking) and whose write side is shut before the loop runs;
 * then read through a bufferevent like the others. */
static client *client_sent_shut(const char *bytes, size_t len)
{
    client *c = calloc(1, sizeof *c);
    struct sockaddr_in sin;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((uint16_t)mx_server_port(srv));
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);   /* the backlog takes it */
    assert_int_equal(send(fd, bytes, len, 0), (ssize_t)len);
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    evutil_make_socket_nonblocking(fd);
    c->got = evbuffer_new();
    c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(c->bev, client_read, NULL, client_event, c);
    bufferevent_enable(c->bev, EV_READ);
    return c;
}

/* How many responses (status lines) text holds. */
static int count_responses(const char *text)
{
    int k = 0;
    for (const char *p = text; (p = strstr(p, "HTTP/1.1 ")) != NULL; p++)
        k++;
    return k;
}

/* Pipelined requests followed by the client's FIN (`printf ... | nc -N`): every one answered
 * before the server closes. */
static void test_pipelined_then_fin(void **state)
{
    static const char reqs[] = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
                               "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n"
                               "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
    client *c = client_sent_shut(reqs, sizeof reqs - 1);
    size_t n;
    const char *t;
    (void)state;
    run_until(is_eof, c);
    t = got_text(c, &n);
    assert_int_equal(count_responses(t), 3);
    assert_false(c->err);
    assert_int_equal(memcmp(t + n - 3, "ok\n", 3), 0);
    client_free(c);
}

static int n_responses_or_eof(void *arg)
{
    client *c = arg;
    size_t n;
    const char *t = got_text(c, &n);
    return c->eof || (count_responses(t) == 2 && n > 3 && memcmp(t + n - 3, "ok\n", 3) == 0);
}

/* An Upgrade request (curl --http2 on http://) and a CONNECT are answered as plain HTTP/1.1,
 * and the connection goes on serving the request after them; a long query does not hide the
 * path; an HTTP/1.0 client asking for keep-alive is told it is kept. */
static void test_upgrade_query_http10(void **state)
{
    static const char *const firsts[] = {
        "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n",
        "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
        "GET /healthz?qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"
        "qqqqqqqqqqqqqqqqqqqqqqqqqqqq HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    };
    static const int first_status[] = { 200, 404, 200, 200 };
    (void)state;
    for (size_t i = 0; i < sizeof firsts / sizeof firsts[0]; i++) {
        client *c = client_new(0);
        size_t n;
        const char *t;
        response a, b;
        client_send(c, firsts[i]);
        client_send(c, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
        run_until(n_responses_or_eof, c);
        t = got_text(c, &n);
        a = parse(t, n);
        assert_int_equal(a.status, first_status[i]);
        if (i == 3)
            assert_string_equal(header(&a, "Connection"), "keep-alive");
        b = parse(a.body + a.content_length, a.have - (size_t)a.content_length);
        assert_int_equal(b.status, 200);
        client_free(c);
    }
}

/* Every head byte counts against the head limit: many short field lines, or one value after a
 * long run of spaces, get 431 just as one long value does. */
static void test_head_limit_counts_every_byte(void **state)
{
    static char big[4 * MX_SERVER_MAX_HEADER_BYTES];
    size_t n;
    (void)state;
    n = (size_t)snprintf(big, sizeof big, "GET /healthz HTTP/1.1\r\nHost: t\r\n");
    while (n + 8 < sizeof big / 2) {
        memcpy(big + n, "a:\r\n", 4);
        n += 4;
    }
    memcpy(big + n, "\r\n", 2);
    assert_int_equal(raw_status(big, n + 2), 431);
    for (size_t len = MX_SERVER_MAX_HEADER_BYTES; len <= MX_SERVER_MAX_HEADER_BYTES + 1; len++) {
        /* a head of exactly the limit (blank line included) is served, one byte more is not */
        n = (size_t)snprintf(big, sizeof big, "GET /healthz HTTP/1.1\r\nConnection: close\r\nX: ");
        memset(big + n, 'v', len - n - 4);
        memcpy(big + len - 4, "\r\n\r\n", 4);
        assert_int_equal(raw_status(big, len), len == MX_SERVER_MAX_HEADER_BYTES ? 200 : 431);
    }
    n = (size_t)snprintf(big, sizeof big, "GET /healthz HTTP/1.1\r\nHost: t\r\nX:");
    memset(big + n, ' ', MX_SERVER_MAX_HEADER_BYTES);
    n += MX_SERVER_MAX_HEADER_BYTES;
    memcpy(big + n, "v\r\n\r\n", 5);
    assert_int_equal(raw_status(big, n + 5), 431);
}

/* A client still sending a body far over the limit reads its 413 (the server reads and drops
 * the rest before it closes, where closing at once would reset the connection and could
 * destroy the answer), then a FIN when the linger times out. */
static void test_413_not_reset(void **state)
{
    static char req[256 * 1024];
    client *c = client_new(0);
    size_t n, hl;
    const char *t;
    (void)state;
    mx_server_set_timeout(srv, SHORT_TIMEOUT);
    hl = (size_t)snprintf(req, sizeof req, "POST /metrics HTTP/1.1\r\nHost: t\r\n"
                          "Content-Length: %zu\r\n\r\n", sizeof req);
    memset(req + hl, 'b', sizeof req - hl);
    bufferevent_write(c->bev, req, sizeof req);
    run_until(is_eof, c);
    t = got_text(c, &n);
    assert_int_equal(parse(t, n).status, 413);
    assert_false(c->err);
    client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head_keepalive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_endpoints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_callbacks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bind_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_scraper, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accept_pause, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trickle_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_connections_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipelined, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipelined_then_fin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upgrade_query_http10, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head_limit_counts_every_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_413_not_reset, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
