/* proxy.h — the reverse proxy: configuration, the relay, and the request-lifecycle hooks that
 * scoring, metrics and the controller plug into.  The whole public API of proxy/. */
#ifndef PX_PROXY_H
#define PX_PROXY_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

struct event_base;

/* ---- sizes and timeouts (defaults of the flags live in px_config.c) ---- */
#define PX_ADDR_MAX 256                 /* longest host:port we keep */
#define PX_READ_CHUNK 16384             /* bytes read per read callback */
#define PX_HIGH_WATERMARK (256 * 1024)  /* peer output past this pauses the source's reads */
#define PX_LOW_WATERMARK (64 * 1024)    /* ... and falling below this resumes them */
#define PX_POOL_MAX_IDLE 64             /* idle upstream connections kept */
#define PX_POOL_IDLE_SECONDS 60.0       /* idle upstream connection closed after this */
#define PX_READY_PROBE_SECONDS 2.0      /* background upstream reachability probe period */
#define PX_READY_FRESH_SECONDS 5.0      /* a probe success counts as "ready" this long */
#define PX_DRAIN_GRACE_MAX 5.0          /* listener keeps accepting this long after SIGTERM */
#define PX_TICK_SECONDS 1.0             /* period of the controller snapshot hint */
#define PX_CONNECT_TIMEOUT 10.0         /* TCP connect to the upstream */

typedef enum { PX_LOG_DEBUG = 0, PX_LOG_INFO, PX_LOG_WARN, PX_LOG_ERROR } px_log_level;

typedef struct px_config {
    char listen[PX_ADDR_MAX];           /* --listen host:port */
    char upstream_host[PX_ADDR_MAX];    /* --upstream host (no brackets) */
    int upstream_port;                  /* --upstream port */
    char upstream_authority[PX_ADDR_MAX]; /* Host header sent upstream: host[:port] */
    char metrics_listen[PX_ADDR_MAX];   /* host:port of the metrics server */
    int metrics_port;                   /* --metrics-port (used when metrics_listen unset) */
    char policy_path[1024];             /* --policy, "" = built-in */
    char controller[16];                /* --controller off|dry-run|on|auto */
    uint64_t max_body;                  /* --max-body bytes */
    double drain_seconds;               /* --drain-seconds */
    double header_timeout;              /* --header-timeout */
    double idle_timeout;                /* --idle-timeout */
    double upstream_idle_timeout;       /* --upstream-idle-timeout */
    int max_connections;                /* --max-connections */
    uint64_t max_header_bytes;          /* --max-header-bytes */
    px_log_level log_level;             /* --log-level */
    int io_uring;                       /* --io-uring: 1 auto (batch reads if possible), 0 off */
} px_config;

/* Defaults, then environment, then argv (flag wins).  Returns 0 ok, 1 when the caller should
 * exit 0 (--help/--version printed), 2 on a bad flag/value with one line in err.
 * check_policy receives --check-policy's argument ("" when absent). */
int px_config_load(px_config *c, int argc, char **argv, char *check_policy, size_t cplen,
                   char *err, size_t errlen);

/* "0.1.0" */
const char *px_version(void);

/* Parse helpers shared with tests: "64MiB" → bytes; "1.5" → seconds; "host[:port]" /
 * "http://host[:port]" with Ollama's defaults.  0 on success, -1 on bad input. */
int px_parse_size(const char *s, uint64_t *out);
int px_parse_seconds(const char *s, double *out);
int px_parse_upstream(const char *s, char *host, size_t hostlen, int *port,
                      char *authority, size_t authlen);
int px_parse_hostport(const char *s, char *host, size_t hostlen, int *port);

/* ---- logging: one JSON object per line on stderr; never prompt or response text ---- */
void px_log_set_level(px_log_level l);
int px_log_on(px_log_level l);
/* fields is a preformatted JSON fragment ("\"k\":1,\"s\":\"x\"") or NULL */
void px_log(px_log_level l, const char *msg, const char *fmt_fields, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- the request lifecycle, as the hooks see it ---- */

typedef enum {
    PX_END_OK = 0,              /* response relayed completely */
    PX_END_CLIENT_GONE,         /* client left before the end (status 499) */
    PX_END_UPSTREAM_CONNECT,    /* upstream unreachable (502) */
    PX_END_UPSTREAM_RESET,      /* upstream reset/EOF before the head (502) */
    PX_END_UPSTREAM_BROKEN,     /* upstream broke mid-body (stream cut) */
    PX_END_UPSTREAM_TIMEOUT,    /* idle-stream timeout (504 or cut) */
    PX_END_UPSTREAM_PROTOCOL,   /* unparsable upstream response (502) */
    PX_END_PROXY_ERROR,         /* the proxy answered itself (4xx/503) */
    PX_END_DRAIN_DEADLINE,      /* cut at the drain deadline */
} px_end;

/* What the hooks may read about a request.  Times are monotonic seconds. */
typedef struct px_req_view {
    const char *method;         /* request method */
    const char *path;           /* upstream path (aliases applied), no query string */
    int is_v1;                  /* 1 for /v1/... (OpenAI shapes) */
    double t_start;             /* first byte of the request head */
    double t_sent;              /* request handed to the upstream socket (0 if never); a small
                                   one leaves at the end of that loop turn */
    double t_head;              /* upstream response head parsed (0 if never) */
    double t_first_byte;        /* first upstream response body byte (0 if none) */
    double t_end;               /* finished */
    int status;                 /* status sent to the client (499 when it left) */
    const char *content_type;   /* upstream response Content-Type ("" until the head) */
    int64_t resp_length;        /* upstream response Content-Length; -1 none (or until the head) */
    uint64_t bytes_in;          /* request body bytes */
    uint64_t bytes_out;         /* response body bytes relayed */
    px_end end;                 /* how it ended */
} px_req_view;

/* Hooks; every one optional.  ud is the hooks' own state; hook_data is a per-request slot
 * (initially NULL) the hooks own and must free in on_finish. */
typedef struct px_hooks {
    /* Body complete, right after the request was handed upstream (before any of its answer is
     * read).  May add response headers through *extra_headers ("Name: value\r\n..." written
     * into a buffer of extra_cap bytes). */
    void (*on_request)(void *ud, void **hook_data, const px_req_view *v,
                       const char *body, size_t len, char *extra_headers, size_t extra_cap);
    /* Upstream response head parsed (v->status is the upstream status, v->t_head set). */
    void (*on_head)(void *ud, void **hook_data, const px_req_view *v);
    /* Decoded response body bytes as they are relayed. */
    void (*on_body)(void *ud, void **hook_data, const px_req_view *v, const char *p, size_t n);
    /* Exactly once per request that reached the proxy (including proxy-made errors). */
    void (*on_finish)(void *ud, void **hook_data, const px_req_view *v);
    /* About once a second (controller snapshot). */
    void (*on_tick)(void *ud, double now);
    void *ud;
} px_hooks;

/* Copy s into out (cap bytes) as the inside of a JSON string; truncates, always terminates. */
void px_json_escape(const char *s, char *out, size_t cap);

/* Monotonic seconds (inside a socket callback: when it first asked; see px_log.c). */
double px_now(void);

/* ---- the server ---- */

typedef struct px_server px_server;

/* Bind cfg->listen on base and start the readiness probe and the tick; NULL with one line in
 * err when the address cannot be bound.  cfg and hooks must outlive the server. */
px_server *px_server_new(struct event_base *base, const px_config *cfg, const px_hooks *hooks,
                         char *err, size_t errlen);
int px_server_port(const px_server *s);         /* bound port (for --listen ...:0) */
int px_server_io_uring(const px_server *s);     /* 1 when small reads go through io_uring */
int px_server_ready(const px_server *s);        /* /readyz: upstream seen lately, not draining */
void px_server_drain(px_server *s);             /* SIGTERM/SIGINT: start the drain */
void px_server_free(px_server *s);              /* after the loop ended */

/* The glue between the lifecycle hooks and scoring/, metrics/, k8s/ (px_glue.c). */
struct sc_policy;
int px_glue_init(px_hooks *hooks, const struct sc_policy *policy);
void px_glue_hints(int on);                      /* post hints to the controller */
void px_glue_free(void);

#endif
