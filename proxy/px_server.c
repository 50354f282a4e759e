/* px_server.c — the proxy server's life: bind, readiness probe, controller tick, and the
 * SIGTERM drain (readyz 503 at once, accept for a grace, finish in-flight work up to the drain
 * window, then exit the loop). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "proxy/px_int.h"

#define PX_LISTEN_BACKLOG 1024  /* accept queue */

void px_upstream_init(void);

/* Seconds → timeval (for timers). */
struct timeval px_tv(double seconds)
{
    struct timeval tv;
    tv.tv_sec = (time_t)seconds;
    tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
    return tv;
}

static void probe_timercb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    px_probe_start(arg);
}

static void sweep_timercb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    px_sweep(arg);
}

static void tick_timercb(evutil_socket_t fd, short what, void *arg)
{
    px_server *s = arg;
    (void)fd;
    (void)what;
    if (s->hooks.on_tick)
        s->hooks.on_tick(s->hooks.ud, px_now());
}

/* Exit the loop once the drain has nothing left to wait for. */
void px_server_maybe_exit(px_server *s)
{
    if (s->draining && s->grace_over && s->inflight == 0) {
        px_log(PX_LOG_INFO, "drained", NULL);
        event_base_loopexit(s->base, NULL);
    }
}

/* The accept pause is over (see px_on_accept_error). */
static void accept_timercb(evutil_socket_t fd, short what, void *arg)
{
    px_server *s = arg;
    (void)fd;
    (void)what;
    if (s->listener)
        evconnlistener_enable(s->listener);
}

static void grace_timercb(evutil_socket_t fd, short what, void *arg)
{
    px_server *s = arg;
    (void)fd;
    (void)what;
    s->grace_over = 1;
    if (s->listener) {
        evconnlistener_free(s->listener);       /* new connections are refused from now on */
        s->listener = NULL;
    }
    px_log(PX_LOG_INFO, "listener closed", "\"inflight\":%d", s->inflight);
    px_close_idle(s);
    px_server_maybe_exit(s);
}

static void deadline_timercb(evutil_socket_t fd, short what, void *arg)
{
    px_server *s = arg;
    (void)fd;
    (void)what;
    px_log(PX_LOG_WARN, "drain deadline: cutting what is left", "\"inflight\":%d", s->inflight);
    px_close_all(s);
    event_base_loopexit(s->base, NULL);
}

/* Start draining (SIGTERM/SIGINT); a second call does nothing. */
void px_server_drain(px_server *s)
{
    double grace = s->cfg->drain_seconds < PX_DRAIN_GRACE_MAX ? s->cfg->drain_seconds
                                                              : PX_DRAIN_GRACE_MAX;
    struct timeval g = px_tv(grace), d = px_tv(s->cfg->drain_seconds);

    if (s->draining)
        return;
    s->draining = 1;
    px_log(PX_LOG_INFO, "draining", "\"grace_seconds\":%.3f,\"drain_seconds\":%.3f,\"inflight\":%d",
           grace, s->cfg->drain_seconds, s->inflight);
    evtimer_add(s->grace_timer, &g);
    evtimer_add(s->deadline_timer, &d);
}

/* 1 when not draining and the upstream accepted a connection recently. */
int px_server_ready(const px_server *s)
{
    return !s->draining && s->up_ok_at > 0 && px_now() - s->up_ok_at < PX_READY_FRESH_SECONDS;
}

int px_server_port(const px_server *s) { return s->port; }
int px_server_io_uring(const px_server *s) { return s->batched > 0; }

/* IP literal host and port → *ss; -1 when host is not an IP literal (a name). */
static int sockaddr_of(const char *host, int port, struct sockaddr_storage *ss, int *len)
{
    char lit[PX_ADDR_MAX + 16];

    *len = sizeof *ss;
    /* why: evutil_parse_sockaddr_port rejects port 0, so parse with 1 and set the port after */
    snprintf(lit, sizeof lit, strchr(host, ':') ? "[%s]:1" : "%s:1", host);
    if (evutil_parse_sockaddr_port(lit, (struct sockaddr *)ss, len) < 0)
        return -1;
    if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    return 0;
}

/* Bind the listener on cfg->listen; NULL with err on failure. */
px_server *px_server_new(struct event_base *base, const px_config *cfg, const px_hooks *hooks,
                         char *err, size_t errlen)
{
    px_server *s = calloc(1, sizeof *s);
    struct sockaddr_storage ss;
    int sslen = sizeof ss;
    struct timeval probe = px_tv(PX_READY_PROBE_SECONDS), tick = px_tv(PX_TICK_SECONDS);
    char host[PX_ADDR_MAX];
    int port;

    if (!s) {
        snprintf(err, errlen, "litebrain-proxy: out of memory");
        return NULL;
    }
    px_client_init();
    px_upstream_init();
    s->base = base;
    s->cfg = cfg;
    if (hooks)
        s->hooks = *hooks;
    /* the upstream: an IP literal is used as is; a name is resolved asynchronously */
    if (sockaddr_of(cfg->upstream_host, cfg->upstream_port, &s->up_addr, &sslen) == 0)
        s->up_addrlen = sslen;
    s->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
    if (!s->up_addrlen && !s->dns) {
        snprintf(err, errlen, "litebrain-proxy: cannot set up DNS to resolve %s",
                 cfg->upstream_host);
        goto fail;
    }
    if (px_parse_hostport(cfg->listen, host, sizeof host, &port) < 0) {
        snprintf(err, errlen, "litebrain-proxy: bad listen address %s", cfg->listen);
        goto fail;
    }
    if (sockaddr_of(host, port, &ss, &sslen) < 0) {
        snprintf(err, errlen, "litebrain-proxy: --listen needs an IP address, got %s",
                 cfg->listen);
        goto fail;
    }
    s->listener = evconnlistener_new_bind(base, px_on_accept, s,
                                          LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                          PX_LISTEN_BACKLOG, (struct sockaddr *)&ss, sslen);
    if (!s->listener) {
        snprintf(err, errlen, "litebrain-proxy: cannot listen on %s: %s", cfg->listen,
                 strerror(errno));
        goto fail;
    }
    evconnlistener_set_error_cb(s->listener, px_on_accept_error);
    sslen = sizeof ss;
    getsockname(evconnlistener_get_fd(s->listener), (struct sockaddr *)&ss, (socklen_t *)&sslen);
    s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    s->probe_timer = event_new(base, -1, EV_PERSIST, probe_timercb, s);
    s->tick_timer = event_new(base, -1, EV_PERSIST, tick_timercb, s);
    s->sweep_timer = event_new(base, -1, EV_PERSIST, sweep_timercb, s);
    s->grace_timer = evtimer_new(base, grace_timercb, s);
    s->deadline_timer = evtimer_new(base, deadline_timercb, s);
    s->later_ev = event_new(base, -1, 0, px_conn_later_cb, s);
    s->accept_timer = evtimer_new(base, accept_timercb, s);
    s->batched = px_sock_batch_init(base, cfg->io_uring);
    if (s->batched < 0 || !s->probe_timer || !s->tick_timer || !s->sweep_timer || !s->grace_timer ||
        !s->deadline_timer || !s->later_ev || !s->accept_timer) {
        snprintf(err, errlen, "litebrain-proxy: out of memory");
        goto fail;
    }
    evtimer_add(s->probe_timer, &probe);
    evtimer_add(s->tick_timer, &tick);
    {
        double shortest = cfg->header_timeout < cfg->idle_timeout ? cfg->header_timeout
                                                                  : cfg->idle_timeout;
        double period = shortest / 10;
        struct timeval sweep = px_tv(period < PX_SWEEP_MIN ? PX_SWEEP_MIN
                                     : period > PX_SWEEP_MAX ? PX_SWEEP_MAX : period);
        evtimer_add(s->sweep_timer, &sweep);
    }
    px_probe_start(s);
    return s;
fail:
    px_server_free(s);
    return NULL;
}

/* Close everything and free s (after the loop has stopped). */
void px_server_free(px_server *s)
{
    if (!s)
        return;
    px_close_all(s);
    px_up_pool_free(s);
    px_sock_free(s->probe);
    px_sock_batch_free();
    if (s->listener)
        evconnlistener_free(s->listener);
    if (s->probe_timer)
        event_free(s->probe_timer);
    if (s->tick_timer)
        event_free(s->tick_timer);
    if (s->sweep_timer)
        event_free(s->sweep_timer);
    if (s->later_ev)
        event_free(s->later_ev);
    if (s->accept_timer)
        event_free(s->accept_timer);
    if (s->grace_timer)
        event_free(s->grace_timer);
    if (s->deadline_timer)
        event_free(s->deadline_timer);
    if (s->dns)
        evdns_base_free(s->dns, 0);
    free(s);
    px_req_pool_free();
    px_buf_pool_free();
    px_conn_slab_free();
    px_sock_slab_free();
}
