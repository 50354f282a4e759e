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
#define MX_MODEL_NAME_MAX 128   /* bytes of a model label value kept (longer names truncated) */
#define MX_STATUS_MAX 24        /* distinct status label values; the rest count by class ("5xx") */
#define MX_STATUS_CLASSES 6     /* those overflow values: "other" (not 100-599), "1xx" ... "5xx" */
#define MX_HALF_LIFE_DEFAULT 30.0 /* litebrain_complexity_score half-life, seconds */
#define MX_CX_ZERO_BELOW 0.5    /* the complexity gauge reads 0 once it decays below this */

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

/* Half-life of the litebrain_complexity_score gauge in seconds (policy complexityHalfLifeSeconds).
 * A value that is not finite and positive restores MX_HALF_LIFE_DEFAULT. */
void mx_set_half_life(double seconds);

/* The monotonic clock the registry reads where no `now` is passed (active→idle transitions,
 * the scrape time in mx_server).  NULL restores the default, CLOCK_MONOTONIC in seconds —
 * the proxy should pass px_now so both sides read the same clock; tests inject a fake one. */
typedef double (*mx_clock_fn)(void);
void mx_set_clock(mx_clock_fn fn);
double mx_now(void);                    /* reads that clock */

void mx_active_add(int delta);          /* litebrain_active_requests */
void mx_waiting_add(int delta);         /* requests sent upstream, no response byte yet */
int mx_active(void);                    /* current value of the active gauge */
int mx_waiting(void);                   /* current value of the waiting gauge */

/* A request finished (exactly once per request): counter + duration histogram. */
void mx_request_done(mx_cx cx, int status, double seconds);

/* A scored request's score at time now: per-request histogram and the decayed gauge. */
void mx_score_observe(int score, double now);

/* A scored request started (+1) or finished (-1): the complexity gauge does not decay while
 * one is in flight.  Unscored requests (/api/tags pollers, model pulls) do not hold it, so a
 * health check cannot bring an old score back. */
void mx_cx_hold(int delta);

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

#define MX_USAGE_TAIL 32        /* bytes of an object key kept while scanning (longest wanted: 17) */

/* A streaming JSON tokenizer that only follows nesting depth, strings and the keys of the
 * top-level object (and of its "usage" object), so the words inside generated text — always in
 * JSON strings — and keys of nested objects (tool-call arguments) are never taken for counts. */
typedef struct mx_usage {
    long prompt_tokens;         /* prompt_eval_count / usage.prompt_tokens, -1 until seen */
    long output_tokens;         /* eval_count / usage.completion_tokens, -1 until seen */
    uint64_t eval_duration_ns;  /* eval_duration when reported, else 0 */
    size_t len;                 /* bytes in line (MX_USAGE_TAIL + 1 = key too long) */
    char line[MX_USAGE_TAIL];   /* the object key being read */
    uint32_t depth;             /* nesting depth of objects/arrays (0 = between documents) */
    uint64_t num;               /* integer value being read */
    uint8_t in_string;          /* inside a JSON string */
    uint8_t escaped;            /* previous string byte was a backslash */
    uint8_t key_string;         /* the string being read is a key we look at */
    uint8_t expect_key;         /* at a watched level, the next string is a key */
    uint8_t field;              /* field the pending value belongs to (internal enum) */
    uint8_t in_number;          /* reading a number value of a wanted field */
    uint8_t num_bad;            /* that number is not a plain non-negative integer */
    uint8_t top_object;         /* the depth-1 container is an object */
    uint8_t in_usage;           /* the depth-2 container is the top-level "usage" object */
    uint8_t watch;              /* keys at this depth are ones we look at (from the three above) */
} mx_usage;

void mx_usage_init(mx_usage *u);
/* Feed body bytes (any split); cheap: one pass, no allocation. */
void mx_usage_feed(mx_usage *u, const char *p, size_t n);
/* Feed a whole body in one piece, the first bytes fed: reads it from its end and stops once
 * the counts are known (a non-streamed answer carries them last); the same results as
 * mx_usage_feed for valid JSON, which it falls back to for anything else. */
void mx_usage_whole(mx_usage *u, const char *p, size_t n);
/* Call at end of body: scans what is left of the last line. */
void mx_usage_finish(mx_usage *u);

/* --- :9090 endpoints --- */

typedef int (*mx_ready_fn)(void *ud);                               /* 1 ready, 0 not */
typedef void (*mx_debug_fn)(struct evbuffer *out, void *ud);        /* /debug/scaling JSON */

#define MX_SERVER_MAX_CONNS 64          /* connections open at once (from accept); more get 503 */
#define MX_SERVER_TIMEOUT_SECONDS 10    /* whole-request, keep-alive idle and write timeout, s */
#define MX_SERVER_MAX_HEADER_BYTES 8192 /* request head limit on the metrics port */
#define MX_SERVER_MAX_BODY_BYTES 4096   /* request body limit on the metrics port */
#define MX_SERVER_ACCEPT_PAUSE 0.25     /* listener paused this long when accept() runs out of fds, s */

typedef struct mx_server mx_server;

/* Serve /metrics, /healthz, /readyz, /debug/scaling on host:port (port 0 = ephemeral).
 * Returns NULL and fills err when the port cannot be bound. */
mx_server *mx_server_start(struct event_base *base, const char *host, int port,
                           mx_ready_fn ready, mx_debug_fn debug, void *ud,
                           char *err, size_t errlen);
/* Change the timeout (default MX_SERVER_TIMEOUT_SECONDS): request and idle timers armed from
 * now on, write timeouts of connections accepted from now on; seconds <= 0 is ignored.  For
 * tests. */
void mx_server_set_timeout(mx_server *s, double seconds);
int mx_server_port(const mx_server *s);         /* bound port */
int mx_server_connections(const mx_server *s);  /* connections open now */
int mx_server_accept_pauses(const mx_server *s); /* times accept() ran out of descriptors */
void mx_server_free(mx_server *s);

#endif
