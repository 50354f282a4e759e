/* sim.h — ollama-sim: a deterministic, fast stand-in for the Ollama HTTP server, used by the
 * proxy's tests, `make run` and the benchmarks.  The whole internal API of test/sim/.
 *
 * Files: sim_main.c (flags, models, listener, events), sim_http.c (connections, HTTP/1.1
 * framing the way Go's net/http does it, faults), sim_api.c (routing, CORS, the
 * non-generating endpoints, request JSON), sim_check.c (fault header, Host and Origin
 * allow-lists), sim_gen.c (scheduler, token timers, NDJSON/SSE
 * chunks), sim_json.c (Go-compatible JSON strings, clocks, hashes). */
#ifndef SIM_H
#define SIM_H

#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <jansson.h>
#include <llhttp.h>

/* ---- sizes, limits and defaults (one place) ---- */
#define SIM_DEFAULT_LISTEN "127.0.0.1:11434" /* like Ollama's OLLAMA_HOST default */
#define SIM_DEFAULT_PORT 11434            /* port when OLLAMA_HOST gives none (no scheme) */
#define SIM_DEFAULT_TTFT_MS 20            /* time to first token */
#define SIM_DEFAULT_TPS 500.0             /* tokens per second after the first */
#define SIM_DEFAULT_TOKENS 16             /* tokens generated per request */
#define SIM_DEFAULT_PARALLEL 4            /* OLLAMA_NUM_PARALLEL */
#define SIM_DEFAULT_MAX_QUEUE 512         /* OLLAMA_MAX_QUEUE */
#define SIM_MODELS_MAX 64                 /* models in the table */
#define SIM_NAME_MAX 128                  /* longest model name */
#define SIM_ADDR_MAX 256                  /* longest host:port */
#define SIM_EMBED_DIMS 768                /* embedding length of the embedding models */
#define SIM_MAX_HEAD_BYTES ((1 << 20) + 4096) /* Go's DefaultMaxHeaderBytes + its slack */
#define SIM_MAX_BODY_BYTES (1024ull << 20)    /* request bodies larger → 413 (Go has none) */
#define SIM_INPUT_PAUSE_BYTES (1 << 20)   /* unparsed pipelined input past this pauses reads */
#define SIM_EVENT_BODY_MAX 65536          /* request body echoed in events up to this size */
#define SIM_GO_CHUNKING_SIZE 2048         /* Go's bufferBeforeChunkingSize: larger → chunked */
#define SIM_BYTES_LINE 16384              /* filler line size of the bytes=N fault */
#define SIM_BYTES_HIGH_WATER (256 * 1024) /* bytes=N refills output below this */
#define SIM_RST_POLL_MS 1                 /* reset-after: poll the kernel send queue this often */
#define SIM_RST_POLL_MAX 2000             /* ... at most this many times before resetting anyway */
#define SIM_LINGER_MS 500                 /* Go's rstAvoidanceDelay after closing the write side */
#define SIM_LOAD_NS 1000000ull            /* reported load_duration (the sim loads nothing) */
#define SIM_FIXED_EPOCH 1704067200        /* --fixed-clock wall time: 2024-01-01T00:00:00Z */
#define SIM_OLLAMA_VERSION "0.12.6"       /* what /api/version reports */
#define SIM_PULL_STEPS 24                 /* progress lines of /api/pull (before success) */

/* Content types as Ollama's handlers send them. */
#define SIM_CT_JSON_GIN "application/json; charset=utf-8"   /* gin's c.JSON */
#define SIM_CT_JSON "application/json"    /* the OpenAI middleware's writers */
#define SIM_CT_NDJSON "application/x-ndjson" /* streamed /api answers */
#define SIM_CT_SSE "text/event-stream"    /* streamed /v1 answers */

/* Append a string literal to an evbuffer (length computed by the compiler). */
#define SIM_ADD_LIT(b, lit) evbuffer_add((b), (lit), sizeof(lit) - 1)

/* ---- configuration ---- */
typedef struct sim_model {
    char name[SIM_NAME_MAX];           /* full name with tag, e.g. "qwen2.5:3b" */
    int ttft_ms;                       /* time to first token */
    double tps;                        /* tokens per second after the first */
    int tokens;                        /* tokens generated (before num_predict caps) */
    int embedding;                     /* 1 = embedding-only model (no generate/chat) */
    int thinking;                      /* 1 = supports "think" */
    uint64_t last_used_ns;             /* wall time of its last request (0 = never; /api/ps) */
} sim_model;

typedef struct sim_config {
    char listen_host[SIM_ADDR_MAX];    /* bind address (IP or name) */
    int listen_port;                   /* bind port, 0 = ephemeral */
    int events;                        /* --events: JSON lines on stdout */
    int fixed_clock;                   /* --fixed-clock: byte-identical responses */
    int parallel;                      /* --parallel concurrent generations */
    int max_queue;                     /* --max-queue waiting generations before 503 */
    int def_ttft_ms;                   /* --ttft-ms (models added by /api/pull get these) */
    double def_tps;                    /* --tps */
    int def_tokens;                    /* --tokens */
    sim_model models[SIM_MODELS_MAX];  /* model table (defaults + --model) */
    int nmodels;                       /* entries used in models[] */
} sim_config;

/* ---- faults requested with the X-Sim-Fault header ---- */
typedef struct sim_fault {
    int reset_after;                   /* RST after head + N chunks; -1 = off */
    int stall_after;                   /* stop after head + N chunks; -1 = off */
    int close_before_head;             /* close without answering */
    int delay_head_ms;                 /* wait this long before handling the request */
    int64_t bytes;                     /* stream N filler bytes instead; -1 = off */
    int chunks;                        /* tokens override; -1 = off */
    int interval_ms;                   /* token spacing override; -1 = off */
    int ttft_ms;                       /* time-to-first-token override; -1 = off */
} sim_fault;

/* What a generation produces. */
typedef enum {
    SIM_KIND_NONE = 0,                 /* not a generation */
    SIM_KIND_GENERATE,                 /* /api/generate */
    SIM_KIND_CHAT,                     /* /api/chat */
    SIM_KIND_V1_CHAT,                  /* /v1/chat/completions */
    SIM_KIND_V1_COMPLETIONS,           /* /v1/completions */
    SIM_KIND_EMBED,                    /* /api/embed */
    SIM_KIND_EMBEDDINGS,               /* /api/embeddings */
    SIM_KIND_V1_EMBEDDINGS,            /* /v1/embeddings */
    SIM_KIND_PULL,                     /* /api/pull progress stream */
    SIM_KIND_BYTES                     /* bytes=N filler stream */
} sim_kind;

struct sim_conn;

typedef struct sim_header {
    char *name;                        /* header name as received (NUL-terminated) */
    char *value;                       /* header value as received (NUL-terminated) */
} sim_header;

/* One request on a connection and its response; a connection serves one at a time
 * (pipelined requests wait unparsed in the input buffer, like Go's server). */
typedef struct sim_req {
    struct sim_conn *conn;             /* owner; NULL once detached */
    uint64_t seq;                      /* request number on the connection, from 1 */
    int method;                        /* llhttp_method_t */
    char *url;                         /* request target (NUL-terminated) */
    size_t url_len;                    /* bytes in url */
    sim_header *hdr;                   /* headers in arrival order */
    int nhdr;                          /* headers used */
    int hdr_cap;                       /* headers allocated */
    int hdr_in_value;                  /* parser state: last piece was a value */
    struct evbuffer *body;             /* request body (de-chunked) */
    int http_major, http_minor;        /* request version */
    int keep_alive;                    /* connection may stay open after the response */
    int is_head;                       /* HEAD: no body in the response */
    const char *host;                  /* Host header value or NULL */
    const char *cors_origin;           /* allowed cross-origin Origin: echoed in CORS headers */
    sim_fault fault;                   /* X-Sim-Fault settings */
    uint64_t t_recv_ns;                /* monotonic time the request was complete */
    /* response */
    int status;                        /* status sent */
    int head_sent;                     /* head written */
    int chunked;                       /* body uses chunked framing */
    int close_after;                   /* close the connection after this response */
    uint64_t chunks;                   /* body chunks written */
    int finished;                      /* response complete (or abandoned by a fault) */
    struct event timer;                /* the request's one timer (delay, ticks, queue) */
    int timer_init;                    /* timer assigned */
    /* generation (sim_gen.c) */
    sim_kind kind;                     /* what to produce */
    int stream;                        /* streamed answer */
    int include_usage;                 /* /v1 stream_options.include_usage */
    int think;                         /* thinking requested and supported */
    const sim_model *model;            /* resolved model */
    char *model_name;                  /* model name as requested (echoed back) */
    int n_tokens;                      /* tokens to generate */
    int length_capped;                 /* num_predict/max_tokens cut it: done_reason "length" */
    int load_only;                     /* empty prompt/messages: done_reason "load" (2: "unload") */
    int v1;                            /* /v1 route: OpenAI error shape */
    int ttft_ms;                       /* effective time to first token */
    double interval_ms;                /* effective token spacing */
    int emitted;                       /* tokens emitted so far */
    uint64_t prompt_tokens;            /* deterministic input token count */
    uint32_t hash;                     /* hash of the input (drives the text) */
    int n_inputs;                      /* embedding inputs */
    int dims;                          /* embedding length (request "dimensions" or the default) */
    char id[32];                       /* chatcmpl-/cmpl- id */
    int64_t created_s;                 /* created (unix seconds) pinned for /v1 chat streams */
    struct evbuffer *text;             /* accumulated text for non-streamed answers */
    int64_t bytes_left;                /* bytes=N filler still to send */
    int in_slot;                       /* holds a --parallel slot */
    int queued;                        /* waiting in the FIFO */
    struct sim_req *qnext;             /* FIFO link */
    uint64_t t_start_ns;               /* monotonic time the slot was granted */
    uint64_t t_first_ns;               /* monotonic time of the first token */
} sim_req;

/* Connection life: OPEN serves requests; the others only wind down. */
typedef enum {
    SIM_CONN_OPEN = 0,                 /* reading and answering requests */
    SIM_CONN_CLOSING,                  /* server closes: flush output, then FIN */
    SIM_CONN_LINGER,                   /* FIN sent: wait for the peer's EOF (bounded), then close */
    SIM_CONN_PEER_GONE,                /* peer closed: flush what is pending, then free */
    SIM_CONN_RESETTING                 /* reset-after: flush, wait for the send queue, RST */
} sim_conn_state;

typedef struct sim_conn {
    struct bufferevent *bev;           /* the socket */
    llhttp_t parser;                   /* request parser (strict) */
    uint64_t id;                       /* connection number, from 1 */
    uint64_t nreq;                     /* requests started on it */
    sim_req *req;                      /* request being parsed or served, or NULL */
    uint64_t head_bytes;               /* bytes of the current request head so far */
    int in_head;                       /* parsing a request head */
    int busy;                          /* a request is complete and being answered */
    int processing;                    /* inside sim_conn_process (no re-entry) */
    int state;                         /* sim_conn_state */
    int rst_polls;                     /* polls of the send queue so far */
    struct event ctimer;               /* linger / reset timer */
    int ctimer_init;                   /* ctimer assigned */
    struct sim_conn *prev, *next;      /* list of live connections (freed at exit) */
} sim_conn;

/* Process-wide state (one event loop, one thread). */
typedef struct sim_server {
    struct event_base *base;           /* the loop */
    struct evconnlistener *listener;   /* accepting socket */
    sim_config cfg;                    /* effective configuration */
    int loopback;                      /* bound to a loopback address: Host check on */
    uint64_t next_conn;                /* last connection number given */
    int active;                        /* generations holding a slot */
    int queued;                        /* generations waiting */
    sim_req *qhead, *qtail;            /* FIFO of waiting generations */
    char hostname[256];                /* lower-case os hostname */
    struct in6_addr *local_ips;        /* addresses of local interfaces (v4 mapped) */
    int nlocal_ips;                    /* entries in local_ips */
    uint64_t t0_ns;                    /* monotonic start time */
    sim_conn *conns;                   /* live connections */
} sim_server;

extern sim_server sim_g;

/* ---- sim_main.c ---- */
/* Write one event line (a complete JSON object without newline) to stdout and flush, when
 * --events is on.  Safe to call with events off (does nothing). */
void sim_event_emit(const char *json, size_t len);
/* Model lookup like Ollama: exact name, or name without tag matches "<name>:latest";
 * case-insensitive.  NULL when unknown. */
sim_model *sim_model_find(const char *name);
/* Add a model with the default timing (used by /api/pull).  NULL when the table is full. */
sim_model *sim_model_add(const char *name);

/* ---- sim_http.c ---- */
/* Accept callback target: wrap fd in a connection.  Emits the connect event. */
void sim_conn_accept(evutil_socket_t fd);
/* Free every live connection (shutdown). */
void sim_conn_free_all(void);
/* Response primitives.  sim_resp_head writes the status line and headers in Go's order:
 * ctype may be NULL (no Content-Type), extra is preformatted "Name: v\r\n" lines sorted
 * before Content-Type as Go would (or NULL); content_length < 0 means a streamed body
 * (chunked on HTTP/1.1, close-delimited on 1.0). */
void sim_resp_head(sim_req *r, int status, const char *extra, const char *ctype,
                   int64_t content_length);
/* Write one body chunk (framed as needed; nothing on HEAD).  Applies reset-after /
 * stall-after: returns 0 to continue, -1 when the response must stop producing (the
 * connection is resetting, stalled or gone). */
int sim_resp_chunk(sim_req *r, const void *data, size_t len);
/* Finish the response (terminating chunk, response_end event, keep-alive or close).
 * r may be freed afterwards: do not touch it. */
void sim_resp_end(sim_req *r);
/* A whole non-streamed response: head + body (Content-Length up to Go's chunking size,
 * chunked beyond) + end.  r may be freed afterwards. */
void sim_resp_full(sim_req *r, int status, const char *extra, const char *ctype,
                   const char *body, size_t len);
/* sim_resp_full with the whole of b as the body (no extra headers); frees b.  r may be freed
 * afterwards. */
void sim_resp_buffer(sim_req *r, int status, const char *ctype, struct evbuffer *b);
/* Close the connection without answering (close-before-head).  r is freed. */
void sim_resp_abort(sim_req *r);
/* Emit a fault event for r. */
void sim_event_fault(sim_req *r, const char *what);
/* Value of header name (case-insensitive) or NULL. */
const char *sim_req_header(const sim_req *r, const char *name);
/* Length of r's path: the request target up to its '?' (or all of it). */
size_t sim_req_path_len(const sim_req *r);

/* ---- sim_api.c / sim_check.c ---- */
/* Route a complete request (called once per request).  Answers it now or later. */
void sim_api_dispatch(sim_req *r);
/* Parse the X-Sim-Fault header into f (defaults first).  Unknown items are ignored. */
void sim_fault_parse(const char *v, sim_fault *f);
/* Origin check like Ollama's CORS setup (OLLAMA_ORIGINS + local origins + app schemes):
 * 1 allowed, 0 forbidden. */
int sim_origin_allowed(const char *origin);
/* Host check like Ollama's allowedHostsMiddleware: 1 allowed, 0 forbidden. */
int sim_host_allowed(const char *host);
/* Error answers: Ollama shape {"error":msg} (as gin's c.JSON) or, for /v1, OpenAI's shape
 * with a trailing newline (as the middleware's json.Encoder).  r may be freed afterwards. */
void sim_api_error(sim_req *r, int status, const char *msg);
void sim_api_v1_error(sim_req *r, int status, const char *msg, int via_writer);
/* A model's size in bytes and its 64-hex digest (derived from the name). */
uint64_t sim_model_size(const sim_model *m, char digest[65]);

/* ---- sim_gen.c ---- */
/* Queue or start a generation prepared in r (kind, model, tokens...).  Answers 503 when the
 * queue is full.  r may be freed afterwards. */
void sim_gen_submit(sim_req *r);
/* Detach r from the scheduler and its timer (connection going away).  Starts the next
 * queued generation if r held a slot. */
void sim_gen_cancel(sim_req *r);
/* Release r's slot once its answer is complete (no-op without one). */
void sim_gen_release(sim_req *r);
/* Start streaming the bytes=N filler for r (no slot needed). */
void sim_gen_bytes_start(sim_req *r);
/* Output of r's connection drained below the low watermark: continue a bytes=N stream. */
void sim_gen_on_drain(sim_req *r);

/* ---- sim_json.c ---- */
/* Append s (len bytes) as a JSON string literal the way Go's encoding/json does it:
 * HTML-escaped <>&, \u2028/\u2029 escaped, invalid UTF-8 → \ufffd. */
void sim_json_str(struct evbuffer *b, const char *s, size_t len);
/* Same into a C string buffer; returns bytes written (excluding NUL), truncates safely. */
size_t sim_json_str_buf(char *out, size_t cap, const char *s, size_t len);
/* Monotonic / wall clocks in ns. */
uint64_t sim_mono_ns(void);
uint64_t sim_wall_ns(void);
/* RFC 3339 with nanoseconds, trailing zeros trimmed, "Z" (Go's time.Time JSON, no quotes). */
size_t sim_time_rfc3339(char *out, size_t cap, uint64_t wall_ns);
/* IMF-fixdate for the Date header. */
size_t sim_time_http(char *out, size_t cap, uint64_t wall_ns);
/* FNV-1a 32-bit, continuing from h (start with SIM_FNV_INIT). */
#define SIM_FNV_INIT 2166136261u
uint32_t sim_hash(uint32_t h, const void *p, size_t len);
/* Deterministic token text for token index i of a stream with hash h (static string); a
 * leading space unless first (the first token of the answer or of its thinking part). */
const char *sim_token(uint32_t h, int i, int first);
/* Token count of text: ceil(bytes / 4) (documented in README). */
uint64_t sim_count_tokens(size_t bytes);

#endif
