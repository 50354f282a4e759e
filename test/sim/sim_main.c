/* sim_main.c — ollama-sim entry point: flags, the model table, the listener, the events
 * stream on stdout, and orderly shutdown on SIGTERM/SIGINT. */
#include "test/sim/sim.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define SIM_LISTEN_BACKLOG 4096           /* accept queue (Linux caps it at somaxconn) */

sim_server sim_g;

static const char sim_usage[] =
    "usage: ollama-sim [--listen HOST:PORT] [--events] [--fixed-clock]\n"
    "                  [--model NAME:TTFT_MS:TOKENS_PER_SEC:TOKENS]... [--ttft-ms N] [--tps N]\n"
    "                  [--tokens N] [--parallel N] [--max-queue N]\n"
    "A deterministic Ollama stand-in; see test/sim/README.md.  Default listen address comes\n"
    "from OLLAMA_HOST like Ollama (127.0.0.1:11434).\n";

/* See sim.h. */
void sim_event_emit(const char *json, size_t len)
{
    if (!sim_g.cfg.events) return;
    fwrite(json, 1, len, stdout);
    fputc('\n', stdout);
    fflush(stdout);
}

/* Strip Ollama's default registry/namespace prefixes: "registry.ollama.ai/library/x" → "x". */
static const char *sim_model_short(const char *name)
{
    static const char *const prefixes[] = { "registry.ollama.ai/library/", "library/" };
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        size_t n = strlen(prefixes[i]);
        if (strncasecmp(name, prefixes[i], n) == 0) return name + n;
    }
    return name;
}

/* 1 when the last path element of name carries a ":tag". */
static int sim_has_tag(const char *name)
{
    const char *slash = strrchr(name, '/');
    return strchr(slash ? slash + 1 : name, ':') != NULL;
}

/* See sim.h. */
sim_model *sim_model_find(const char *name)
{
    char full[SIM_NAME_MAX + 8];
    const char *s = sim_model_short(name);
    if (strlen(s) >= SIM_NAME_MAX) return NULL;
    snprintf(full, sizeof full, "%s%s", s, sim_has_tag(s) ? "" : ":latest");
    for (int i = 0; i < sim_g.cfg.nmodels; i++)
        if (strcasecmp(sim_g.cfg.models[i].name, full) == 0) return &sim_g.cfg.models[i];
    return NULL;
}

/* Add or replace a model entry.  Returns 0, or -1 when the table is full. */
static int sim_model_set(const char *name, int ttft_ms, double tps, int tokens)
{
    char full[SIM_NAME_MAX];
    const char *s = sim_model_short(name);
    snprintf(full, sizeof full, "%s%s", s, sim_has_tag(s) ? "" : ":latest");
    sim_model *m = NULL;
    for (int i = 0; i < sim_g.cfg.nmodels; i++)
        if (strcasecmp(sim_g.cfg.models[i].name, full) == 0) m = &sim_g.cfg.models[i];
    if (!m) {
        if (sim_g.cfg.nmodels >= SIM_MODELS_MAX) return -1;
        m = &sim_g.cfg.models[sim_g.cfg.nmodels++];
        memset(m, 0, sizeof *m);
        snprintf(m->name, sizeof m->name, "%s", full);
    }
    m->ttft_ms = ttft_ms;
    m->tps = tps;
    m->tokens = tokens;
    m->embedding = strstr(full, "embed") != NULL;       /* documented naming rule */
    m->thinking = strncasecmp(full, "deepseek-r1", 11) == 0 || strncasecmp(full, "qwen3", 5) == 0;
    return 0;
}

/* See sim.h. */
sim_model *sim_model_add(const char *name)
{
    if (sim_model_set(name, sim_g.cfg.def_ttft_ms, sim_g.cfg.def_tps, sim_g.cfg.def_tokens) != 0) return NULL;
    return sim_model_find(name);
}

/* Parse a non-negative integer flag value; -1 on error. */
static long sim_parse_uint(const char *s, long max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > max) return -1;
    return v;
}

/* Parse NAME:TTFT_MS:TPS:TOKENS (the name may contain ':') into a model entry. */
static int sim_parse_model_flag(const char *arg)
{
    char buf[SIM_NAME_MAX + 64];
    char *f[3];
    if (strlen(arg) >= sizeof buf) return -1;
    strcpy(buf, arg);
    for (int i = 2; i >= 0; i--) {
        char *c = strrchr(buf, ':');
        if (!c) return -1;
        *c = '\0';
        f[i] = c + 1;
    }
    long ttft = sim_parse_uint(f[0], 3600000), tokens = sim_parse_uint(f[2], 100000000);
    char *end;
    double tps = strtod(f[1], &end);
    if (!buf[0] || ttft < 0 || tokens < 0 || end == f[1] || *end || !(tps > 0)) return -1;
    return sim_model_set(buf, (int)ttft, tps, (int)tokens);
}

/* Split "host:port" / "[v6]:port" / "host" (port = defport).  Returns 0 or -1. */
static int sim_split_hostport(const char *s, char *host, size_t hostlen, int *port, int defport)
{
    const char *colon = NULL;
    size_t hlen;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb) return -1;
        hlen = (size_t)(rb - s - 1);
        if (hlen >= hostlen) return -1;
        memcpy(host, s + 1, hlen);
        host[hlen] = '\0';
        if (rb[1] == ':') colon = rb + 1;
        else if (rb[1]) return -1;
    } else {
        colon = strrchr(s, ':');
        if (colon && strchr(s, ':') != colon) colon = NULL;  /* bare IPv6 without brackets */
        hlen = colon ? (size_t)(colon - s) : strlen(s);
        if (hlen >= hostlen) return -1;
        memcpy(host, s, hlen);
        host[hlen] = '\0';
    }
    if (!colon) { *port = defport; return 0; }
    long p = sim_parse_uint(colon + 1, 65535);
    if (p < 0) return -1;
    *port = (int)p;
    return 0;
}

/* OLLAMA_HOST the way Ollama reads it: "[scheme://]host[:port][/path]"; no scheme means
 * port 11434, http:// means 80, https:// 443; empty host means all interfaces. */
static void sim_ollama_host(const char *env, char *host, size_t hostlen, int *port)
{
    int defport = SIM_DEFAULT_PORT;
    char hp[SIM_ADDR_MAX];
    const char *s = env, *sep = strstr(env, "://");
    while (isspace((unsigned char)*s)) s++;
    if (sep) {
        if (strncmp(s, "https://", 8) == 0) defport = 443;
        else if (strncmp(s, "http://", 7) == 0) defport = 80;
        s = sep + 3;
    }
    snprintf(hp, sizeof hp, "%s", s);
    char *slash = strchr(hp, '/');
    if (slash) *slash = '\0';
    for (char *e = hp + strlen(hp); e > hp && isspace((unsigned char)e[-1]);) *--e = '\0';
    if (sim_split_hostport(hp, host, hostlen, port, -1) != 0 || *port < 0) {
        /* no port: Ollama keeps the host and uses the default port */
        if (sim_split_hostport(hp, host, hostlen, port, defport) != 0 || !hp[0]) {
            snprintf(host, hostlen, "127.0.0.1");
        }
        *port = defport;
    }
}

/* Parse argv into sim_g.cfg.  Returns 0 ok, 1 exit 0 (help), 2 bad usage (message printed). */
static int sim_parse_args(int argc, char **argv)
{
    sim_config *c = &sim_g.cfg;
    int ttft = SIM_DEFAULT_TTFT_MS, tokens = SIM_DEFAULT_TOKENS;
    double tps = SIM_DEFAULT_TPS;
    const char *listen = NULL;
    static const char *const defaults[] = {
        "qwen2.5:3b", "llama3.2:latest", "deepseek-r1:7b", "codellama:7b", "nomic-embed-text:latest",
    };
    const char *env;
    c->parallel = SIM_DEFAULT_PARALLEL;
    c->max_queue = SIM_DEFAULT_MAX_QUEUE;
    if ((env = getenv("OLLAMA_NUM_PARALLEL")) && sim_parse_uint(env, 1000000) > 0) c->parallel = (int)strtol(env, NULL, 10);
    if ((env = getenv("OLLAMA_MAX_QUEUE")) && sim_parse_uint(env, 100000000) >= 0) c->max_queue = (int)strtol(env, NULL, 10);
    /* pass 1: global flags */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(sim_usage, stdout); return 1; }
        if (!strcmp(a, "--events")) { c->events = 1; continue; }
        if (!strcmp(a, "--fixed-clock")) { c->fixed_clock = 1; continue; }
        if (!v) {
            fprintf(stderr, "ollama-sim: unknown flag or missing value: %s\n%s", a, sim_usage);
            return 2;
        }
        i++;
        if (!strcmp(a, "--listen")) listen = v;
        else if (!strcmp(a, "--model")) continue;   /* pass 2 */
        else if (!strcmp(a, "--ttft-ms") && (n = sim_parse_uint(v, 3600000)) >= 0) ttft = (int)n;
        else if (!strcmp(a, "--tokens") && (n = sim_parse_uint(v, 100000000)) >= 0) tokens = (int)n;
        else if (!strcmp(a, "--tps") && (tps = strtod(v, NULL)) > 0) continue;
        else if (!strcmp(a, "--parallel") && (n = sim_parse_uint(v, 1000000)) > 0) c->parallel = (int)n;
        else if (!strcmp(a, "--max-queue") && (n = sim_parse_uint(v, 100000000)) >= 0) c->max_queue = (int)n;
        else if (strstr(" --listen --model --ttft-ms --tokens --tps --parallel --max-queue ", a) && a[0] == '-') {
            fprintf(stderr, "ollama-sim: bad value for %s: %s\n", a, v);
            return 2;
        } else {
            fprintf(stderr, "ollama-sim: unknown flag %s\n%s", a, sim_usage);
            return 2;
        }
    }
    c->def_ttft_ms = ttft;
    c->def_tps = tps;
    c->def_tokens = tokens;
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) sim_model_set(defaults[i], ttft, tps, tokens);
    /* pass 2: --model adds or overrides */
    for (int i = 1; i + 1 < argc; i++) {
        if (!strcmp(argv[i], "--events") || !strcmp(argv[i], "--fixed-clock")) continue;
        if (!strcmp(argv[i], "--model") && sim_parse_model_flag(argv[i + 1]) != 0) {
            fprintf(stderr, "ollama-sim: bad --model %s (want NAME:TTFT_MS:TOKENS_PER_SEC:TOKENS)\n", argv[i + 1]);
            return 2;
        }
        i++;
    }
    if (listen) {
        if (sim_split_hostport(listen, c->listen_host, sizeof c->listen_host, &c->listen_port, SIM_DEFAULT_PORT) != 0) {
            fprintf(stderr, "ollama-sim: bad --listen %s (want HOST:PORT)\n", listen);
            return 2;
        }
    } else {
        env = getenv("OLLAMA_HOST");
        sim_ollama_host(env ? env : "", c->listen_host, sizeof c->listen_host, &c->listen_port);
    }
    return 0;
}

/* Raise the open-file soft limit to the hard limit (thousands of connections). */
static void sim_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* Record the hostname and the local interface addresses for the Host check. */
static void sim_local_identity(void)
{
    struct ifaddrs *ifa = NULL;
    if (gethostname(sim_g.hostname, sizeof sim_g.hostname - 1) != 0) sim_g.hostname[0] = '\0';
    for (char *p = sim_g.hostname; *p; p++) *p = (char)tolower((unsigned char)*p);
    if (getifaddrs(&ifa) != 0) return;
    int n = 0;
    for (struct ifaddrs *i = ifa; i; i = i->ifa_next) n++;
    sim_g.local_ips = calloc((size_t)n + 1, sizeof *sim_g.local_ips);
    for (struct ifaddrs *i = ifa; i && sim_g.local_ips; i = i->ifa_next) {
        if (!i->ifa_addr) continue;
        struct in6_addr *a = &sim_g.local_ips[sim_g.nlocal_ips];
        if (i->ifa_addr->sa_family == AF_INET) {
            memset(a, 0, sizeof *a);
            a->s6_addr[10] = a->s6_addr[11] = 0xff;
            memcpy(&a->s6_addr[12], &((struct sockaddr_in *)i->ifa_addr)->sin_addr, 4);
            sim_g.nlocal_ips++;
        } else if (i->ifa_addr->sa_family == AF_INET6) {
            *a = ((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;
            sim_g.nlocal_ips++;
        }
    }
    freeifaddrs(ifa);
}

static void sim_on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
    (void)l; (void)sa; (void)salen; (void)arg;
    sim_conn_accept(fd);
}

static void sim_on_accept_error(struct evconnlistener *l, void *arg)
{
    (void)l; (void)arg;
    /* EMFILE and friends: keep going, the listener retries on the next readiness */
}

static void sim_on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig; (void)what; (void)arg;
    event_base_loopbreak(sim_g.base);
}

/* Bind the listener.  Returns 0, or -1 with a message printed. */
static int sim_listen(void)
{
    struct addrinfo hints, *res = NULL;
    char portstr[16];
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    snprintf(portstr, sizeof portstr, "%d", sim_g.cfg.listen_port);
    const char *host = sim_g.cfg.listen_host[0] ? sim_g.cfg.listen_host : NULL;
    int rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "ollama-sim: cannot resolve %s: %s\n", sim_g.cfg.listen_host, gai_strerror(rc));
        return -1;
    }
    sim_g.listener = evconnlistener_new_bind(sim_g.base, sim_on_accept, NULL,
                                             LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
                                             SIM_LISTEN_BACKLOG, res->ai_addr, (int)res->ai_addrlen);
    freeaddrinfo(res);
    if (!sim_g.listener) {
        fprintf(stderr, "ollama-sim: cannot listen on %s:%d: %s\n", sim_g.cfg.listen_host, sim_g.cfg.listen_port, strerror(errno));
        return -1;
    }
    evconnlistener_set_error_cb(sim_g.listener, sim_on_accept_error);
    if (getsockname(evconnlistener_get_fd(sim_g.listener), (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
            sim_g.cfg.listen_port = ntohs(s4->sin_port);
            sim_g.loopback = (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
            sim_g.cfg.listen_port = ntohs(s6->sin6_port);
            sim_g.loopback = IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr) ||
                             (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) && s6->sin6_addr.s6_addr[12] == 127);
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    int rc = sim_parse_args(argc, argv), status = 2;
    struct event *sigterm = NULL, *sigint = NULL;
    if (rc == 1) return 0;
    if (rc != 0) return 2;
    signal(SIGPIPE, SIG_IGN);
    sim_raise_nofile();
    sim_local_identity();
    sim_g.t0_ns = sim_mono_ns();
    /* Precise timers (timerfd under epoll): a token due in 8 µs must not wait for epoll's
     * millisecond-rounded timeout, or every short answer costs >= 1 ms of idle wait. */
    struct event_config *ec = event_config_new();
    if (ec) event_config_set_flag(ec, EVENT_BASE_FLAG_PRECISE_TIMER);
    sim_g.base = ec ? event_base_new_with_config(ec) : NULL;
    if (ec) event_config_free(ec);
    if (!sim_g.base) { fprintf(stderr, "ollama-sim: event_base_new failed\n"); goto out; }
    if (sim_listen() != 0) goto out;
    sigterm = evsignal_new(sim_g.base, SIGTERM, sim_on_signal, NULL);
    sigint = evsignal_new(sim_g.base, SIGINT, sim_on_signal, NULL);
    if (!sigterm || !sigint || evsignal_add(sigterm, NULL) || evsignal_add(sigint, NULL)) goto out;
    if (sim_g.cfg.events) {
        char line[96];
        int n = snprintf(line, sizeof line, "{\"event\":\"listening\",\"port\":%d}", sim_g.cfg.listen_port);
        sim_event_emit(line, (size_t)n);
    } else {
        int v6 = strchr(sim_g.cfg.listen_host, ':') != NULL;
        fprintf(stderr, "ollama-sim: listening on %s%s%s:%d (%d models, parallel %d, max queue %d%s)\n", v6 ? "[" : "",
                sim_g.cfg.listen_host[0] ? sim_g.cfg.listen_host : "*", v6 ? "]" : "", sim_g.cfg.listen_port,
                sim_g.cfg.nmodels, sim_g.cfg.parallel, sim_g.cfg.max_queue,
                sim_g.cfg.fixed_clock ? ", fixed clock" : "");
    }
    event_base_dispatch(sim_g.base);
    status = 0;
out:
    sim_conn_free_all();
    if (sigterm) event_free(sigterm);
    if (sigint) event_free(sigint);
    if (sim_g.listener) evconnlistener_free(sim_g.listener);
    if (sim_g.base) event_base_free(sim_g.base);
    free(sim_g.local_ips);
    libevent_global_shutdown();
    return status;
}
