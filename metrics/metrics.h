/* metrics.h — the metrics registry, the token-usage scanner and the :9090 HTTP endpoints.
 * The whole public API of metrics/.  Everything runs on the loop thread; the only cross-thread
 * data enters through collector callbacks that do their own locking. */
#ifndef MX_METRICS_H
#define MX_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct event_base;

#define MX_MODELS_MAX 32        /* distinct model label values; the rest become "other" */

/* complexity label of a finished request */
typedef enum { MX_CX_NONE = 0, MX_CX_LOW, MX_CX_MEDIUM, MX_CX_HIGH, MX_CX_COUNT } mx_cx;

/* why an upstream exchange failed */
typedef enum {
    MX_UPERR_CONNECT = 0,       /* connect refused / unreachable */
    MX_UPERR_RESET,             /* reset or EOF before the response head */
    MX_UPERR_BROKEN,            /* reset or EOF mid-body (stream truncated) */
    MX_UPERR_TIMEOUT,           /* idle-stream timeout */
    MX_UPERR_PROTOCOL,          /* unparsable response */
    MX_UPERR_COUNT
} mx_uperr;

/* Reset the registry; now is monotonic seconds, wall the Unix time (process start). */
void mx_init(double now, double wall_start, const char *version);

/* Half-life of the litebrain_complexity_score gauge in seconds (policy complexityHalfLifeSeconds). */
void mx_set_half_life(double seconds);

void mx_active_add(int delta);          /* litebrain_active_requests */
void mx_waiting_add(int delta);         /* requests sent upstream, no response byte yet */
int mx_active(void);                    /* current value of the active gauge */
int mx_waiting(void);                   /* current value of the waiting gauge */

/* A request finished (exactly once per request): counter + duration histogram. */
void mx_request_done(mx_cx cx, int status, double seconds);

/* A scored request's score at time now: per-request histogram and the decayed gauge. */
void mx_score_observe(int score, double now);

/* Current value of the decayed complexity gauge at time now. */
double mx_complexity(double now);

void mx_ttft_observe(double seconds);           /* request start → first response body byte */
void mx_tpot_observe(double seconds_per_token); /* mean time per output token of one request */
void mx_tokens_add(const char *model, uint64_t prompt_tokens, uint64_t output_tokens);
void mx_upstream_error(mx_uperr why);
void mx_hint_dropped(void);

/* Extra exposition appended at scrape time (the controller's series).  Must write complete,
 * valid families; called on the loop thread. */
typedef void (*mx_collect_fn)(struct evbuffer *out, void *ud);
void mx_set_collector(mx_collect_fn fn, void *ud);

/* The whole exposition text (format 0.0.4) into out. */
void mx_render(struct evbuffer *out, double now);

/* --- token usage scanner: fed the decoded response body as it streams by --- */

#define MX_USAGE_TAIL 4096      /* bytes of the current line kept while scanning */

typedef struct mx_usage {
    long prompt_tokens;         /* prompt_eval_count / usage.prompt_tokens, -1 until seen */
    long output_tokens;         /* eval_count / usage.completion_tokens, -1 until seen */
    uint64_t eval_duration_ns;  /* eval_duration when reported, else 0 */
    size_t len;                 /* bytes in line */
    char line[MX_USAGE_TAIL];   /* tail of the current line (why: the numbers sit at its end) */
} mx_usage;

void mx_usage_init(mx_usage *u);
/* Feed body bytes (any split); cheap: one pass, no allocation. */
void mx_usage_feed(mx_usage *u, const char *p, size_t n);
/* Call at end of body: scans what is left of the last line. */
void mx_usage_finish(mx_usage *u);

/* --- :9090 endpoints --- */

typedef int (*mx_ready_fn)(void *ud);                               /* 1 ready, 0 not */
typedef void (*mx_debug_fn)(struct evbuffer *out, void *ud);        /* /debug/scaling JSON */

typedef struct mx_server mx_server;

/* Serve /metrics, /healthz, /readyz, /debug/scaling on host:port (port 0 = ephemeral).
 * Returns NULL and fills err when the port cannot be bound. */
mx_server *mx_server_start(struct event_base *base, const char *host, int port,
                           mx_ready_fn ready, mx_debug_fn debug, void *ud,
                           char *err, size_t errlen);
int mx_server_port(const mx_server *s);         /* bound port */
void mx_server_free(mx_server *s);

#endif
