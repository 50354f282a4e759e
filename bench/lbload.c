/* lbload.c — the benchmark client for what wrk cannot measure: per-line arrival of streamed
 * NDJSON answers, large request bodies, and many connections held open.  One thread, epoll,
 * HTTP/1.1 keep-alive, loopback.
 *
 *   lbload run  --port P --body FILE [--conns C] [--requests R] [--interval-ms I]
 *       C connections each send R requests one after another (POST /api/generate with FILE as
 *       the body).  Prints one line of numbers: latency p50/p99 (send → last byte), TTFB p50/p99
 *       (send → first response byte), and for streamed answers the mean lag of each NDJSON line
 *       behind the producer's schedule (line k due k·I ms after line 0) and the mean gap.
 *   lbload hold --port P --body FILE --conns N [--idle]
 *       Opens N connections and sends FILE on each.  Without --idle, waits until every answer
 *       has started streaming; with --idle, until every answer is complete (the connection then
 *       sits idle, kept alive).  Prints "ready N", keeps reading until stdin closes, exits.
 *   lbload pair --ports P1,P2,... --body FILE [--requests R]
 *       R times: one request to each port in turn (one keep-alive connection per port), so slow
 *       drift of the machine's load hits every port alike; the first port always goes first,
 *       the others in reverse order every other time.  Prints per port the median latency
 *       and TTFB, and the medians of their paired differences against the first port.
 *   lbload soak --port P --body SMALL --stream FILE --cancel FILE [--conns C] [--requests N]
 *       N requests over C connections, mixed 6:3:1 — SMALL answered whole, FILE streamed to the
 *       end, the --cancel body's stream abandoned (connection closed) after its first byte.
 *       Prints the counts by kind, answers that were not 200, and the rate.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LB_READ_BUF 65536       /* bytes read per recv */
#define LB_HEAD_MAX 8192        /* response head bytes kept for parsing */
#define LB_EVENTS 256           /* epoll events per wait */
#define LB_CONNS_MAX 20000      /* connections per run */
#define LB_TAIL 8               /* bytes kept to see "\r\n0\r\n\r\n" across reads */
#define LB_TIMEOUT_S 120.0      /* give up on a run after this long */
#define LB_HOLD_BATCH 512       /* hold: requests in flight while connections are opened (--batch) */

/* One client connection. */
typedef struct lb_conn {
    int fd;                     /* socket */
    size_t sent;                /* bytes of the request written */
    int in_head;                /* reading the response head */
    char head[LB_HEAD_MAX];     /* the head so far */
    size_t hlen;                /* bytes in head */
    long clen;                  /* Content-Length, -1 chunked */
    long got;                   /* body bytes read */
    char tail[LB_TAIL];         /* last body bytes */
    char prev;                  /* last body byte (line counting) */
    int lines;                  /* NDJSON lines seen in this answer */
    double t_send;              /* request written start */
    double t_first;             /* first response byte */
    double t_line0;             /* first NDJSON line */
    double t_prevline;          /* previous NDJSON line */
    int done_reqs;              /* answers completed */
    int started;                /* answer head seen (hold mode) */
    int kind;                   /* soak: LB_SMALL, LB_STREAM, LB_CANCEL */
} lb_conn;

enum { LB_SMALL = 0, LB_STREAM, LB_CANCEL, LB_KINDS };
#define LB_MIX 10               /* soak: of every 10 requests, 6 small, 3 streamed, 1 cancelled */

static const char *lb_req;      /* the whole request being sent (head + body) */
static size_t lb_reqlen;        /* its length */
static const char *lb_reqs[LB_KINDS];   /* soak: the request of each kind */
static size_t lb_reqlens[LB_KINDS];     /* their lengths */
static double *lat, *ttfb;      /* per-answer samples */
static int nsamp;               /* samples taken */
static double lag_sum, gap_sum; /* sums over lines */
static long lag_n, gap_n;       /* lines counted */
static double *lags;            /* every line's lag (ms), for percentiles */
static long lags_cap;           /* its capacity */
static double interval_ms;      /* producer's line interval */
static int hold_batch = LB_HOLD_BATCH; /* hold: requests in flight while opening */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double q)
{
    int k;
    if (n <= 0)
        return 0;
    qsort(v, (size_t)n, sizeof *v, cmpd);
    k = (int)ceil(q * n) - 1;
    return v[k < 0 ? 0 : k >= n ? n - 1 : k];
}

/* Read a whole file into a request with a POST head.  Exits on error. */
static void build_request(const char *path, int port)
{
    struct stat sb;
    FILE *f = fopen(path, "rb");
    char head[512];
    int hl;
    char *buf;

    if (!f || fstat(fileno(f), &sb) < 0) {
        fprintf(stderr, "lbload: %s: %s\n", path, strerror(errno));
        exit(2);
    }
    hl = snprintf(head, sizeof head, "POST /api/generate HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                  "Content-Type: application/json\r\nContent-Length: %lld\r\n\r\n", port,
                  (long long)sb.st_size);
    buf = malloc((size_t)hl + (size_t)sb.st_size);
    if (!buf || fread(buf + hl, 1, (size_t)sb.st_size, f) != (size_t)sb.st_size) {
        fprintf(stderr, "lbload: cannot read %s\n", path);
        exit(2);
    }
    memcpy(buf, head, (size_t)hl);
    fclose(f);
    lb_req = buf;
    lb_reqlen = (size_t)hl + (size_t)sb.st_size;
}

/* Soak: the request for kind k becomes the one pump_out sends on c. */
static void use_kind(lb_conn *c, int k)
{
    c->kind = k;
    lb_req = lb_reqs[k];
    lb_reqlen = lb_reqlens[k];
}

/* A non-blocking connection to 127.0.0.1:port, registered for in/out.  -1 on error. */
static int dial(int ep, int port, lb_conn *c)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
    int one = 1;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0)
        return -1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS)
        return -1;
    return epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

/* Reset c for its next request (keep-alive). */
static void next_request(lb_conn *c)
{
    c->sent = 0;
    c->in_head = 1;
    c->hlen = 0;
    c->clen = -1;
    c->got = 0;
    c->lines = 0;
    c->prev = 0;
    memset(c->tail, 0, sizeof c->tail);
    c->t_send = now_s();
    c->t_first = 0;
}

/* Write what the socket takes.  0, or -1 on error. */
static int pump_out(lb_conn *c)
{
    while (c->sent < lb_reqlen) {
        ssize_t n = send(c->fd, lb_req + c->sent, lb_reqlen - c->sent, MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        c->sent += (size_t)n;
    }
    return 0;
}

/* Body bytes of an answer: count NDJSON lines ("}\n") with their arrival lag, the tail. */
static void body_bytes(lb_conn *c, const char *p, size_t n, double t)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n' && c->prev == '}') {
            if (c->lines == 0) {
                c->t_line0 = t;
            } else {
                double lag = (t - c->t_line0) * 1e3 - c->lines * interval_ms;
                if (lag_n == lags_cap) {
                    long cap = lags_cap ? lags_cap * 2 : 4096;
                    double *nl = realloc(lags, sizeof *nl * (size_t)cap);
                    if (nl) {
                        lags = nl;
                        lags_cap = cap;
                    }
                }
                if (lag_n < lags_cap)
                    lags[lag_n] = lag;
                lag_sum += lag;
                lag_n++;
                gap_sum += (t - c->t_prevline) * 1e3;
                gap_n++;
            }
            c->t_prevline = t;
            c->lines++;
        }
        c->prev = p[i];
    }
    if (n >= LB_TAIL) {
        memcpy(c->tail, p + n - LB_TAIL, LB_TAIL);
    } else {
        memmove(c->tail, c->tail + n, LB_TAIL - n);
        memcpy(c->tail + LB_TAIL - n, p, n);
    }
    c->got += (long)n;
}

/* Read what is there.  Returns 1 when the answer completed, 0 for more, -1 on error/EOF. */
static int pump_in(lb_conn *c, int *started)
{
    char buf[LB_READ_BUF];
    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        double t = now_s();
        size_t off = 0;
        if (n == 0)
            return -1;
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        if (c->t_first == 0)
            c->t_first = t;
        if (c->in_head) {
            size_t take = (size_t)n < LB_HEAD_MAX - 1 - c->hlen ? (size_t)n : LB_HEAD_MAX - 1 - c->hlen;
            char *e, *cl;
            memcpy(c->head + c->hlen, buf, take);
            c->hlen += take;
            c->head[c->hlen] = '\0';
            if (!(e = strstr(c->head, "\r\n\r\n"))) {
                if (c->hlen >= LB_HEAD_MAX - 1)
                    return -1;
                continue;
            }
            off = (size_t)(e + 4 - c->head) - (c->hlen - take);
            c->in_head = 0;
            *started = 1;
            cl = strcasestr(c->head, "\r\ncontent-length:");
            c->clen = cl && cl < e ? strtol(cl + 17, NULL, 10) : -1;
        }
        body_bytes(c, buf + off, (size_t)n - off, t);
        if ((c->clen >= 0 && c->got >= c->clen) ||
            (c->clen < 0 && c->got >= 5 && memcmp(c->tail + LB_TAIL - 5, "0\r\n\r\n", 5) == 0))
            return 1;
    }
}

/* Handle one epoll event of a request/answer connection: write what the socket takes (once the
 * whole request is out, wait for reading only), then read if the event allows it.  -1 when a
 * write failed, or when the read failed (then "lbload: <closed>" is printed); otherwise 0 when
 * the event was write-only, else pump_in's result (*started as there). */
static int pump_event(int ep, lb_conn *c, uint32_t events, int *started, const char *closed)
{
    int r;
    if ((events & EPOLLOUT) && c->sent < lb_reqlen) {
        if (pump_out(c) < 0)
            return -1;
        if (c->sent == lb_reqlen) {
            struct epoll_event e2 = { .events = EPOLLIN, .data.ptr = c };
            epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e2);
        }
    }
    if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return 0;
    r = pump_in(c, started);
    if (r < 0)
        fprintf(stderr, "lbload: %s\n", closed);
    return r;
}

/* Mode run (see the top of the file). */
static int run(int port, int nconn, int nreq)
{
    int ep = epoll_create1(0), left = nconn;
    lb_conn *cs = calloc((size_t)nconn, sizeof *cs);
    struct epoll_event ev[LB_EVENTS];
    double t0 = now_s();

    lat = malloc(sizeof *lat * (size_t)nconn * (size_t)nreq);
    ttfb = malloc(sizeof *ttfb * (size_t)nconn * (size_t)nreq);
    if (ep < 0 || !cs || !lat || !ttfb)
        return 2;
    for (int i = 0; i < nconn; i++) {
        if (dial(ep, port, &cs[i]) < 0) {
            perror("lbload: connect");
            return 2;
        }
        next_request(&cs[i]);
    }
    while (left > 0) {
        int n = epoll_wait(ep, ev, LB_EVENTS, 1000);
        if (now_s() - t0 > LB_TIMEOUT_S) {
            fprintf(stderr, "lbload: timeout with %d connections busy\n", left);
            return 1;
        }
        for (int i = 0; i < n; i++) {
            lb_conn *c = ev[i].data.ptr;
            int st = 0, r;
            if (c->fd < 0)
                continue;
            if ((ev[i].events & EPOLLOUT) && pump_out(c) < 0) {
                fprintf(stderr, "lbload: send: %s\n", strerror(errno));
                return 1;
            }
            if (!(ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                continue;
            r = pump_in(c, &st);
            if (r < 0) {
                fprintf(stderr, "lbload: connection closed early (%d answers done)\n", c->done_reqs);
                return 1;
            }
            if (r == 1) {
                double t = now_s();
                lat[nsamp] = (t - c->t_send) * 1e3;
                ttfb[nsamp] = (c->t_first - c->t_send) * 1e3;
                nsamp++;
                if (++c->done_reqs == nreq) {
                    close(c->fd);
                    c->fd = -1;
                    left--;
                } else {
                    next_request(c);
                    if (pump_out(c) < 0)
                        return 1;
                }
            }
        }
    }
    {
        double l50, l99, t50, t99, lmin;
        l50 = pct(lat, nsamp, 0.5);
        lmin = lat[0];          /* sorted by pct */
        l99 = pct(lat, nsamp, 0.99);
        t50 = pct(ttfb, nsamp, 0.5);
        t99 = pct(ttfb, nsamp, 0.99);
        printf("answers %d lat_min_ms %.3f lat_p50_ms %.3f lat_p99_ms %.3f ttfb_p50_ms %.3f ttfb_p99_ms %.3f "
               "line_lag_ms %.3f line_lag_p50_ms %.3f line_lag_p99_ms %.3f line_gap_ms %.3f "
               "lines %ld\n", nsamp, lmin, l50, l99, t50, t99, lag_n ? lag_sum / lag_n : 0,
               pct(lags, (int)(lag_n < lags_cap ? lag_n : lags_cap), 0.5),
               pct(lags, (int)(lag_n < lags_cap ? lag_n : lags_cap), 0.99),
               gap_n ? gap_sum / gap_n : 0, lag_n);
    }
    free(cs);
    free(lat);
    free(ttfb);
    free(lags);
    close(ep);
    return 0;
}

/* Kind of the i-th soak request: 6 small, 3 streamed, 1 cancelled in every LB_MIX. */
static int soak_kind(long i)
{
    int r = (int)(i % LB_MIX);
    return r < 6 ? LB_SMALL : r < 9 ? LB_STREAM : LB_CANCEL;
}

/* Mode soak (see the top of the file).  Every kind's request is the same length class on a
 * connection at a time, so lb_req is switched per connection before each write. */
static int soak(int port, int nconn, long total)
{
    int ep = epoll_create1(0), busy = 0;
    lb_conn *cs = calloc((size_t)nconn, sizeof *cs);
    struct epoll_event ev[LB_EVENTS];
    long issued = 0, done[LB_KINDS] = { 0 }, bad = 0;
    double t0 = now_s();

    if (ep < 0 || !cs)
        return 2;
    for (int i = 0; i < nconn && issued < total; i++, issued++, busy++) {
        if (dial(ep, port, &cs[i]) < 0)
            return 2;
        next_request(&cs[i]);
        use_kind(&cs[i], soak_kind(issued));
    }
    while (busy > 0) {
        int n = epoll_wait(ep, ev, LB_EVENTS, 1000);
        for (int i = 0; i < n; i++) {
            lb_conn *c = ev[i].data.ptr;
            int st = 0, r, fin = 0;
            if (c->fd < 0)
                continue;
            use_kind(c, c->kind);
            if ((r = pump_event(ep, c, ev[i].events, &st, "soak connection closed by the server")) < 0)
                return 1;
            if (st && strncmp(c->head, "HTTP/1.1 200", 12) != 0)
                bad++;
            if (c->kind == LB_CANCEL && !c->in_head) {
                close(c->fd);   /* why: the client walks away mid-stream (status 499) */
                done[LB_CANCEL]++;
                fin = 2;
            } else if (r == 1) {
                done[c->kind]++;
                fin = 1;
            }
            if (!fin)
                continue;
            if (issued == total) {
                if (fin == 1)
                    close(c->fd);
                c->fd = -1;
                busy--;
                continue;
            }
            if (fin == 2 && dial(ep, port, c) < 0)
                return 2;
            next_request(c);
            use_kind(c, soak_kind(issued++));
            if (fin == 1) {
                struct epoll_event e2 = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e2);
            }
        }
    }
    {
        double dt = now_s() - t0;
        printf("soak requests %ld small %ld stream %ld cancel %ld not_200 %ld seconds %.1f rate %.0f\n",
               issued, done[LB_SMALL], done[LB_STREAM], done[LB_CANCEL], bad, dt, issued / dt);
    }
    free(cs);
    close(ep);
    return bad ? 1 : 0;
}

#define LB_PORTS_MAX 8          /* pair: ports compared */

/* Mode pair (see the top of the file).  Blocking sockets: one request at a time. */
static int pair(const int *ports, int np, int nreq, const char *body)
{
    lb_conn cs[LB_PORTS_MAX];
    const char *reqs[LB_PORTS_MAX];
    size_t lens[LB_PORTS_MAX];
    double *l[LB_PORTS_MAX], *f[LB_PORTS_MAX];    /* latency, TTFB: [port][request] ms */
    double *d = malloc(sizeof *d * (size_t)nreq), *e = malloc(sizeof *e * (size_t)nreq);

    if (!d || !e)
        return 2;
    for (int k = 0; k < np; k++) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)ports[k]) };
        int one = 1;
        build_request(body, ports[k]);          /* why: Host names each port */
        reqs[k] = lb_req;
        lens[k] = lb_reqlen;
        memset(&cs[k], 0, sizeof cs[k]);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        cs[k].fd = socket(AF_INET, SOCK_STREAM, 0);
        setsockopt(cs[k].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (cs[k].fd < 0 || connect(cs[k].fd, (struct sockaddr *)&a, sizeof a) < 0) {
            perror("lbload: connect");
            return 2;
        }
        l[k] = malloc(sizeof *l[k] * (size_t)nreq);
        f[k] = malloc(sizeof *f[k] * (size_t)nreq);
        if (!l[k] || !f[k])
            return 2;
    }
    for (int r = 0; r < nreq; r++) {
        for (int i = 0; i < np; i++) {
            /* why every other round backwards: on 2 cores, where the previous request left
             * the unpinned upstream decides a cold request's latency by ~0.1 ms, so each
             * port must follow each other one equally often */
            int k = r % 2 && i > 0 ? np - i : i, st = 0, rc;
            lb_req = reqs[k];
            lb_reqlen = lens[k];
            next_request(&cs[k]);
            if (pump_out(&cs[k]) < 0 || cs[k].sent != lb_reqlen) {
                fprintf(stderr, "lbload: send to port %d failed\n", ports[k]);
                return 1;
            }
            while ((rc = pump_in(&cs[k], &st)) == 0)
                ;
            if (rc < 0) {
                fprintf(stderr, "lbload: port %d closed the connection\n", ports[k]);
                return 1;
            }
            l[k][r] = (now_s() - cs[k].t_send) * 1e3;
            f[k][r] = (cs[k].t_first - cs[k].t_send) * 1e3;
        }
    }
    for (int k = 0; k < np; k++) {
        for (int r = 0; r < nreq; r++) {
            d[r] = l[k][r] - l[0][r];
            e[r] = f[k][r] - f[0][r];
        }
        printf("port %d added_p50_ms %.3f ttfb_added_p50_ms %.3f\n", ports[k],
               pct(d, nreq, 0.5), pct(e, nreq, 0.5));
    }
    /* why a second pass: pct sorts its samples, and port 0's must stay in request order until
     * every port's paired differences are taken */
    for (int k = 0; k < np; k++)
        printf("port %d lat_p50_ms %.3f ttfb_p50_ms %.3f\n", ports[k], pct(l[k], nreq, 0.5),
               pct(f[k], nreq, 0.5));
    for (int k = 0; k < np; k++) {
        free(l[k]);
        free(f[k]);
        free((char *)reqs[k]);
        close(cs[k].fd);
    }
    free(d);
    free(e);
    lb_req = NULL;
    return 0;
}

/* Mode hold (see the top of the file). */
static int hold(int port, int nconn, int idle)
{
    int ep = epoll_create1(0), pending = nconn, dialed = 0, announced = 0;
    lb_conn *cs = calloc((size_t)nconn, sizeof *cs);
    struct epoll_event ev[LB_EVENTS];
    double t0 = now_s();

    if (ep < 0 || !cs)
        return 2;
    for (;;) {
        /* why: dial in batches so the listener's backlog is not overrun */
        while (dialed < nconn && dialed - (nconn - pending) < hold_batch) {
            if (dial(ep, port, &cs[dialed]) < 0) {
                perror("lbload: connect");
                return 2;
            }
            next_request(&cs[dialed]);
            dialed++;
        }
        if (pending == 0 && !announced) {
            printf("ready %d\n", nconn);
            fflush(stdout);
            announced = 1;
        }
        if (announced) {
            struct pollfd pf = { .fd = 0, .events = POLLIN };
            char b[64];
            if (poll(&pf, 1, 0) > 0 && read(0, b, sizeof b) <= 0) {
                free(cs);       /* the process exits: the sockets close with it */
                close(ep);
                return 0;
            }
        } else if (now_s() - t0 > LB_TIMEOUT_S) {
            fprintf(stderr, "lbload: timeout, %d of %d not ready\n", pending, nconn);
            return 1;
        }
        int n = epoll_wait(ep, ev, LB_EVENTS, 100);
        for (int i = 0; i < n; i++) {
            lb_conn *c = ev[i].data.ptr;
            int st = 0, r, was = c->started;
            if ((r = pump_event(ep, c, ev[i].events, &st, "a held connection closed")) < 0)
                return 1;
            if (st)
                c->started = 1;
            if (!idle && c->started && !was)
                pending--;
            if (idle && r == 1) {
                pending--;
                c->in_head = 1;     /* why: nothing more is expected; stay parked */
            }
        }
    }
}

int main(int argc, char **argv)
{
    int port = 0, conns = 1, idle = 0, ports[LB_PORTS_MAX], np = 0, rc;
    long reqs = 1;
    const char *body = NULL, *stream = NULL, *cancel = NULL, *mode = argc > 1 ? argv[1] : "";

    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--port") && i + 1 < argc)
            port = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--conns") && i + 1 < argc)
            conns = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--requests") && i + 1 < argc)
            reqs = atol(argv[++i]);
        else if (!strcmp(argv[i], "--body") && i + 1 < argc)
            body = argv[++i];
        else if (!strcmp(argv[i], "--interval-ms") && i + 1 < argc)
            interval_ms = atof(argv[++i]);
        else if (!strcmp(argv[i], "--stream") && i + 1 < argc)
            stream = argv[++i];
        else if (!strcmp(argv[i], "--cancel") && i + 1 < argc)
            cancel = argv[++i];
        else if (!strcmp(argv[i], "--ports") && i + 1 < argc) {
            for (char *q = argv[++i]; q && *q && np < LB_PORTS_MAX; q = strchr(q, ',') ? strchr(q, ',') + 1 : NULL)
                ports[np++] = atoi(q);
            port = np ? ports[0] : 0;
        } else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            hold_batch = atoi(argv[++i]) > 0 ? atoi(argv[i]) : 1;
        else if (!strcmp(argv[i], "--idle"))
            idle = 1;
        else
            goto usage;
    }
    if (port <= 0 || !body || conns < 1 || conns > LB_CONNS_MAX || reqs < 1)
        goto usage;
    if (!strcmp(mode, "pair") && np > 0)
        return pair(ports, np, (int)reqs, body);
    if (!strcmp(mode, "soak") && stream && cancel) {
        const char *files[LB_KINDS] = { body, stream, cancel };
        for (int k = 0; k < LB_KINDS; k++) {
            build_request(files[k], port);
            lb_reqs[k] = lb_req;
            lb_reqlens[k] = lb_reqlen;
        }
        rc = soak(port, conns, reqs);
        for (int k = 0; k < LB_KINDS; k++)
            free((char *)lb_reqs[k]);
        return rc;
    }
    build_request(body, port);
    rc = !strcmp(mode, "run") ? run(port, conns, (int)reqs)
       : !strcmp(mode, "hold") ? hold(port, conns, idle) : -1;
    free((char *)lb_req);
    if (rc >= 0)
        return rc;
usage:
    fprintf(stderr, "usage: lbload run|hold|soak|pair --port P | --ports P1,P2,... --body FILE [--conns C] [--requests R] "
            "[--interval-ms I] [--idle] [--batch N] [--stream FILE --cancel FILE]\n");
    return 2;
}
