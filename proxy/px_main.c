/* px_main.c — litebrain-proxy's entry point: configuration, policy, the event loop with the
 * proxy and metrics servers, the controller thread, signals, and an orderly exit. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <event2/event.h>
#include "proxy/proxy.h"
#include "scoring/scoring.h"
#include "metrics/metrics.h"
#include "k8s/k8s.h"

#define PX_ERR_MAX 512          /* longest start-up error line */

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    px_log(PX_LOG_INFO, "signal", "\"signal\":%d", (int)sig);
    px_server_drain(arg);
    k8s_drain();                                /* release the scaling Lease now, not after drain */
}

static int ready_cb(void *ud) { return px_server_ready(ud); }

/* Raise the open-files soft limit to the hard one: each client and upstream socket is a file. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* Print one line and return the exit code for bad input. */
static int fail(const char *line)
{
    fprintf(stderr, "%s\n", line);
    return 2;
}

int main(int argc, char **argv)
{
    static px_config cfg;
    static sc_policy policy;
    char err[PX_ERR_MAX], check[1024], mhost[PX_ADDR_MAX];
    struct event_base *base = NULL;
    struct event *sigterm = NULL, *sigint = NULL;
    px_server *srv = NULL;
    mx_server *msrv = NULL;
    px_hooks hooks;
    k8s_mode mode = K8S_MODE_OFF;
    int rc, mport, ctl = 0;

    rc = px_config_load(&cfg, argc, argv, check, sizeof check, err, sizeof err);
    if (rc == 1)
        return 0;
    if (rc != 0)
        return fail(err);
    sc_policy_default(&policy);
    if (check[0]) {
        if (sc_policy_load(&policy, check, err, sizeof err) < 0)
            return fail(err);
        sc_policy_print(&policy, stdout);
        return 0;
    }
    if (cfg.policy_path[0] && sc_policy_load(&policy, cfg.policy_path, err, sizeof err) < 0)
        return fail(err);
    if (k8s_mode_parse(cfg.controller, &mode) < 0)
        return fail("litebrain-proxy: --controller must be off, dry-run, on or auto");
    if (px_parse_hostport(cfg.metrics_listen, mhost, sizeof mhost, &mport) < 0)
        return fail("litebrain-proxy: bad metrics address");
    px_log_set_level(cfg.log_level);
    signal(SIGPIPE, SIG_IGN);                   /* a peer that left must not kill the proxy */
    raise_nofile();

    rc = 2;
    base = event_base_new();
    if (!base) {
        fprintf(stderr, "litebrain-proxy: cannot create the event loop\n");
        goto out;
    }
    mx_init(px_now(), (double)time(NULL), px_version());
    mx_set_clock(px_now);
    if (px_glue_init(&hooks, &policy) < 0) {
        fprintf(stderr, "litebrain-proxy: out of memory\n");
        goto out;
    }
    srv = px_server_new(base, &cfg, &hooks, err, sizeof err);
    if (!srv) {
        fprintf(stderr, "%s\n", err);
        goto out;
    }
    if (mode != K8S_MODE_OFF) {
        if (k8s_start(mode, &policy, err, sizeof err) < 0) {
            fprintf(stderr, "%s\n", err);
            goto out;
        }
        ctl = 1;
        px_glue_hints(1);
        mx_set_collector(k8s_collect_metrics, NULL);
    }
    msrv = mx_server_start(base, mhost, mport, ready_cb, ctl ? k8s_debug_json : NULL, srv, err,
                           sizeof err);
    if (!msrv) {
        fprintf(stderr, "litebrain-proxy: %s\n", err);
        goto out;
    }
    sigterm = evsignal_new(base, SIGTERM, on_signal, srv);
    sigint = evsignal_new(base, SIGINT, on_signal, srv);
    if (!sigterm || !sigint || evsignal_add(sigterm, NULL) < 0 || evsignal_add(sigint, NULL) < 0) {
        fprintf(stderr, "litebrain-proxy: cannot install signal handlers\n");
        goto out;
    }
    px_log(PX_LOG_INFO, "listening",
           "\"port\":%d,\"metrics_port\":%d,\"listen\":\"%s\",\"metrics_listen\":\"%s\","
           "\"upstream\":\"%s\",\"controller\":\"%s\",\"io_uring\":%s,\"version\":\"%s\"",
           px_server_port(srv), mx_server_port(msrv), cfg.listen, cfg.metrics_listen,
           cfg.upstream_authority, cfg.controller, px_server_io_uring(srv) ? "true" : "false",
           px_version());
    event_base_dispatch(base);
    rc = 0;
    px_log(PX_LOG_INFO, "exiting", NULL);
out:
    if (ctl) {
        px_glue_hints(0);
        k8s_stop();
    }
    if (sigterm)
        event_free(sigterm);
    if (sigint)
        event_free(sigint);
    mx_server_free(msrv);
    px_server_free(srv);
    px_glue_free();
    if (base)
        event_base_free(base);
    return rc;
}
