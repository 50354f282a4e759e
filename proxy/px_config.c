/* px_config.c — flags and environment (DESIGN §2): defaults, then env, then argv; flag wins.
 * Every problem becomes one line in err and exit code 2 at the caller. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "proxy/proxy.h"

#define PX_VERSION "0.1.0"
#define PX_OLLAMA_PORT 11434            /* Ollama's port for a bare host */
#define PX_HTTP_PORT 80                 /* port for http://host without one */

typedef enum { OPT_ADDR, OPT_UPSTREAM, OPT_PORT, OPT_STR, OPT_MODE, OPT_SIZE, OPT_SECS,
               OPT_SECS0, OPT_COUNT, OPT_LEVEL, OPT_AUTO_OFF } opt_kind;

typedef struct px_opt {
    const char *flag;           /* "--listen" */
    const char *env;            /* "LITEBRAIN_LISTEN" */
    const char *def;            /* default, as text */
    opt_kind kind;              /* how the value is parsed */
    const char *help;           /* one-line meaning for --help */
} px_opt;

/* why a table: --help, env and argv parsing all read the same rows, so they cannot drift */
static const px_opt opts[] = {
    {"--listen", "LITEBRAIN_LISTEN", "0.0.0.0:11435", OPT_ADDR, "proxy address host:port"},
    {"--upstream", "OLLAMA_HOST", "http://127.0.0.1:11434", OPT_UPSTREAM,
     "Ollama: host, host:port or http://host[:port]"},
    {"--metrics-port", "LITEBRAIN_METRICS_PORT", "9090", OPT_PORT,
     "metrics/health/debug port (binds 0.0.0.0)"},
    {"--metrics-listen", "LITEBRAIN_METRICS_LISTEN", "", OPT_ADDR,
     "full metrics address instead, e.g. 127.0.0.1:9090"},
    {"--policy", "LITEBRAIN_POLICY", "", OPT_STR, "scaling policy JSON file; none: the built-in seed"},
    {"--controller", "LITEBRAIN_CONTROLLER", "auto", OPT_MODE, "off | dry-run | on | auto"},
    {"--max-body", "LITEBRAIN_MAX_BODY", "64MiB", OPT_SIZE, "request body limit (413 beyond)"},
    {"--drain-seconds", "LITEBRAIN_DRAIN_SECONDS", "25", OPT_SECS0, "SIGTERM drain window"},
    {"--header-timeout", "LITEBRAIN_HEADER_TIMEOUT", "30", OPT_SECS,
     "request head complete within this after its first byte (408)"},
    {"--idle-timeout", "LITEBRAIN_IDLE_TIMEOUT", "75", OPT_SECS, "idle keep-alive client connection closed"},
    {"--upstream-idle-timeout", "LITEBRAIN_UPSTREAM_IDLE_TIMEOUT", "600", OPT_SECS,
     "no upstream byte this long mid-response: 504 / cut"},
    {"--max-connections", "LITEBRAIN_MAX_CONNECTIONS", "4096", OPT_COUNT,
     "client connections beyond get 503 and close"},
    {"--max-header-bytes", "LITEBRAIN_MAX_HEADER_BYTES", "65536", OPT_SIZE, "request head larger: 431"},
    {"--log-level", "LITEBRAIN_LOG_LEVEL", "info", OPT_LEVEL, "debug | info | warn | error"},
    {"--io-uring", "LITEBRAIN_IO_URING", "auto", OPT_AUTO_OFF,
     "auto | off: batch small reads and sends through io_uring when the kernel allows"},
};
#define NOPTS (sizeof opts / sizeof opts[0])

/* Parse "123", "64KiB", "64MiB", "1GiB" (also KB/MB/GB-free plain "K","M","G" rejected). */
int px_parse_size(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;
    uint64_t mult = 1;

    if (!s || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    if (*end == '\0')
        mult = 1;
    else if (strcmp(end, "KiB") == 0)
        mult = 1024ULL;
    else if (strcmp(end, "MiB") == 0)
        mult = 1024ULL * 1024;
    else if (strcmp(end, "GiB") == 0)
        mult = 1024ULL * 1024 * 1024;
    else
        return -1;
    if (v > UINT64_MAX / mult)
        return -1;
    *out = (uint64_t)v * mult;
    return 0;
}

/* Parse non-negative decimal seconds ("30", "0.5"). */
int px_parse_seconds(const char *s, double *out)
{
    char *end;
    double v;

    if (!s || !(isdigit((unsigned char)*s) || *s == '.'))
        return -1;
    errno = 0;
    v = strtod(s, &end);
    if (errno || *end != '\0' || !isfinite(v) || v < 0 || v > 1e9)
        return -1;
    *out = v;
    return 0;
}

/* Parse a port 0..65535 from the whole string s. */
static int parse_port(const char *s, int *port)
{
    char *end;
    long v;

    if (!isdigit((unsigned char)*s))
        return -1;
    v = strtol(s, &end, 10);
    if (*end != '\0' || v < 0 || v > 65535)
        return -1;
    *port = (int)v;
    return 0;
}

/* "host:port", "[v6]:port" or ":port" (any address) → host and port. */
int px_parse_hostport(const char *s, char *host, size_t hostlen, int *port)
{
    const char *colon, *h = s;
    size_t hl;

    if (*s == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            return -1;
        h = s + 1;
        hl = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || memchr(s, ':', (size_t)(colon - s)))
            return -1;
        hl = (size_t)(colon - s);
    }
    if (hl + 1 > hostlen || parse_port(colon + 1, port) < 0)
        return -1;
    if (hl == 0) {
        snprintf(host, hostlen, "0.0.0.0");
        return 0;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    return 0;
}

/* Ollama's OLLAMA_HOST rules: optional http:// (then the default port is 80), bare host means
 * 11434, host:port as given; "https" and paths are refused since we speak plain HTTP. */
int px_parse_upstream(const char *s, char *host, size_t hostlen, int *port,
                      char *authority, size_t authlen)
{
    char buf[PX_ADDR_MAX];
    const char *hp = s, *sep = strstr(s, "://");
    int defport = PX_OLLAMA_PORT;
    size_t n;

    if (sep) {
        if ((size_t)(sep - s) != 4 || strncasecmp(s, "http", 4) != 0)
            return -1;
        hp = sep + 3;
        defport = PX_HTTP_PORT;
    }
    n = strlen(hp);
    if (n > 0 && hp[n - 1] == '/')
        n--;                            /* "http://host:port/" is common in env files */
    if (n == 0 || n >= sizeof buf || memchr(hp, '/', n))
        return -1;
    memcpy(buf, hp, n);
    buf[n] = '\0';
    if (px_parse_hostport(buf, host, hostlen, port) < 0) {
        /* no port: bare name, IPv4, or IPv6 with or without brackets; one colon means a
         * port was meant, and it was not a valid one */
        const char *colon = strchr(buf, ':');
        if (colon && buf[0] != '[' && !strchr(colon + 1, ':'))
            return -1;
        const char *h = buf;
        size_t hl = n;
        if (buf[0] == '[' && buf[n - 1] == ']') {
            h = buf + 1;
            hl = n - 2;
        } else if (strchr(buf, ']') || strchr(buf, '[')) {
            return -1;
        }
        if (hl == 0 || hl + 1 > hostlen)
            return -1;
        memcpy(host, h, hl);
        host[hl] = '\0';
        *port = defport;
    } else if (strcmp(host, "0.0.0.0") == 0 && buf[0] == ':') {
        snprintf(host, hostlen, "127.0.0.1");   /* ":11434" means this machine */
    }
    if (*port == 0)
        return -1;
    snprintf(authority, authlen, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, *port);
    return 0;
}

/* Print --help: every flag with its env variable and default. */
static void print_help(FILE *out)
{
    size_t i;

    fprintf(out, "usage: litebrain-proxy [flags]\n"
                 "LLM-aware reverse proxy sidecar for Ollama: scores request complexity, relays\n"
                 "streams untouched, serves Prometheus metrics, posts scale hints to a controller.\n\n"
                 "flags (environment variable in the second column; the flag wins):\n");
    for (i = 0; i < NOPTS; i++)
        fprintf(out, "  %-26s %-34s %s (default: %s)\n", opts[i].flag, opts[i].env, opts[i].help,
                *opts[i].def ? opts[i].def : "none");
    fprintf(out, "  %-26s %-34s %s\n", "--check-policy FILE", "", "validate a policy, print it, exit");
    fprintf(out, "  %-26s %-34s %s\n", "--help", "", "this text");
    fprintf(out, "  %-26s %-34s %s\n", "--version", "", "print the version");
    fprintf(out, "\nKubernetes settings (environment): KUBERNETES_SERVICE_HOST KUBERNETES_SERVICE_PORT\n"
                 "  LITEBRAIN_K8S_SA_DIR LITEBRAIN_K8S_DEPLOYMENT LITEBRAIN_K8S_HPA LITEBRAIN_K8S_LEASE\n"
                 "  POD_NAME LITEBRAIN_K8S_CONTAINER LITEBRAIN_K8S_LEASE_SECONDS\n"
                 "  LITEBRAIN_K8S_RENEW_SECONDS LITEBRAIN_K8S_RETRY_SECONDS\n"
                 "Sizes: bytes or KiB/MiB/GiB suffix.  Durations: seconds, decimals allowed.\n");
}

/* Apply one option's value; -1 with err on a bad value. */
static int apply(px_config *c, const px_opt *o, const char *v, const char *from, char *err,
                 size_t errlen)
{
    uint64_t size;
    double secs;
    int port;

    switch (o->kind) {
    case OPT_ADDR: {
        char host[PX_ADDR_MAX];
        if (*v == '\0' && strcmp(o->flag, "--metrics-listen") == 0)
            break;
        if (px_parse_hostport(v, host, sizeof host, &port) < 0)
            goto bad;
        snprintf(strcmp(o->flag, "--listen") == 0 ? c->listen : c->metrics_listen, PX_ADDR_MAX,
                 "%s", v);
        break;
    }
    case OPT_UPSTREAM:
        if (px_parse_upstream(v, c->upstream_host, sizeof c->upstream_host, &c->upstream_port,
                              c->upstream_authority, sizeof c->upstream_authority) < 0)
            goto bad;
        break;
    case OPT_PORT:
        if (parse_port(v, &port) < 0)
            goto bad;
        c->metrics_port = port;
        break;
    case OPT_STR:
        if (strlen(v) >= sizeof c->policy_path)
            goto bad;
        snprintf(c->policy_path, sizeof c->policy_path, "%s", v);
        break;
    case OPT_MODE:
        if (strcmp(v, "off") && strcmp(v, "dry-run") && strcmp(v, "on") && strcmp(v, "auto"))
            goto bad;
        snprintf(c->controller, sizeof c->controller, "%s", v);
        break;
    case OPT_SIZE:
        if (px_parse_size(v, &size) < 0 || size == 0)
            goto bad;
        if (strcmp(o->flag, "--max-body") == 0)
            c->max_body = size;
        else
            c->max_header_bytes = size;
        break;
    case OPT_SECS:
    case OPT_SECS0:
        if (px_parse_seconds(v, &secs) < 0 || (o->kind == OPT_SECS && secs <= 0))
            goto bad;
        if (strcmp(o->flag, "--drain-seconds") == 0)
            c->drain_seconds = secs;
        else if (strcmp(o->flag, "--header-timeout") == 0)
            c->header_timeout = secs;
        else if (strcmp(o->flag, "--idle-timeout") == 0)
            c->idle_timeout = secs;
        else
            c->upstream_idle_timeout = secs;
        break;
    case OPT_COUNT: {
        char *end;
        long n = strtol(v, &end, 10);
        if (!isdigit((unsigned char)*v) || *end || n < 1 || n > 1000000)
            goto bad;
        c->max_connections = (int)n;
        break;
    }
    case OPT_LEVEL:
        if (strcmp(v, "debug") == 0) c->log_level = PX_LOG_DEBUG;
        else if (strcmp(v, "info") == 0) c->log_level = PX_LOG_INFO;
        else if (strcmp(v, "warn") == 0) c->log_level = PX_LOG_WARN;
        else if (strcmp(v, "error") == 0) c->log_level = PX_LOG_ERROR;
        else goto bad;
        break;
    case OPT_AUTO_OFF:
        if (strcmp(v, "auto") && strcmp(v, "off"))
            goto bad;
        c->io_uring = strcmp(v, "auto") == 0;
        break;
    }
    return 0;
bad:
    snprintf(err, errlen, "litebrain-proxy: %s: invalid value \"%.80s\" for %s (%s)", from, v,
             o->flag, o->help);
    return -1;
}

/* Look a flag up by name. */
static const px_opt *find_flag(const char *name, size_t len)
{
    size_t i;
    for (i = 0; i < NOPTS; i++)
        if (strlen(opts[i].flag) == len && strncmp(opts[i].flag, name, len) == 0)
            return &opts[i];
    return NULL;
}

int px_config_load(px_config *c, int argc, char **argv, char *check_policy, size_t cplen,
                   char *err, size_t errlen)
{
    size_t i;
    int a, port_flag = 0, listen_flag = 0;

    memset(c, 0, sizeof *c);
    check_policy[0] = '\0';
    for (i = 0; i < NOPTS; i++)                 /* defaults */
        if (apply(c, &opts[i], opts[i].def, "default", err, errlen) < 0)
            return 2;
    for (i = 0; i < NOPTS; i++) {               /* environment */
        const char *v = getenv(opts[i].env);
        if (v && *v && apply(c, &opts[i], v, opts[i].env, err, errlen) < 0)
            return 2;
    }
    for (a = 1; a < argc; a++) {                /* flags: --name value or --name=value */
        const char *arg = argv[a], *eq = strchr(arg, '='), *val;
        size_t nlen = eq ? (size_t)(eq - arg) : strlen(arg);
        const px_opt *o;

        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            print_help(stdout);
            return 1;
        }
        if (strcmp(arg, "--version") == 0) {
            printf("litebrain-proxy %s\n", PX_VERSION);
            return 1;
        }
        if (strncmp(arg, "--check-policy", nlen) == 0 && nlen == strlen("--check-policy")) {
            val = eq ? eq + 1 : (a + 1 < argc ? argv[++a] : NULL);
            if (!val || !*val) {
                snprintf(err, errlen, "litebrain-proxy: --check-policy needs a FILE");
                return 2;
            }
            snprintf(check_policy, cplen, "%s", val);
            continue;
        }
        o = find_flag(arg, nlen);
        if (!o) {
            snprintf(err, errlen, "litebrain-proxy: unknown flag \"%.80s\" (see --help)", arg);
            return 2;
        }
        val = eq ? eq + 1 : (a + 1 < argc ? argv[++a] : NULL);
        if (!val) {
            snprintf(err, errlen, "litebrain-proxy: %s needs a value (%s)", o->flag, o->help);
            return 2;
        }
        if (apply(c, o, val, o->flag, err, errlen) < 0)
            return 2;
        port_flag |= strcmp(o->flag, "--metrics-port") == 0;
        listen_flag |= strcmp(o->flag, "--metrics-listen") == 0;
    }
    if (port_flag && !listen_flag)
        c->metrics_listen[0] = '\0';           /* the flag wins over LITEBRAIN_METRICS_LISTEN */
    if (!c->metrics_listen[0])
        snprintf(c->metrics_listen, sizeof c->metrics_listen, "0.0.0.0:%d", c->metrics_port);
    return 0;
}

/* Version string for build info. */
const char *px_version(void) { return PX_VERSION; }
