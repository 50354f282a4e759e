/* px_int.h — structures shared by the proxy's own files (client side, upstream side, HTTP
 * helpers).  Not part of proxy/'s public API: other folders use proxy.h only. */
#ifndef PX_INT_H
#define PX_INT_H

#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/buffer.h>
#include <event2/listener.h>
#include <event2/dns.h>
#include <netinet/in.h>
#include <string.h>
#include <llhttp.h>
#include "proxy/proxy.h"

#define PX_MAX_HEADERS 128              /* header lines per message; beyond → 431 / 502 */
#define PX_METHOD_MAX 24                /* longest method we keep */
#define PX_EXTRA_HEADERS_MAX 256        /* response headers the hooks may add */
#define PX_PIPELINE_MAX (1024 * 1024)   /* buffered pipelined input before reads pause */
#define PX_RESP_HEAD_MAX (256 * 1024)   /* largest upstream response head accepted */
#define PX_HEAD_INLINE 4096             /* message head bytes built on the stack (px_head) */
#define PX_BODY_COPY_MAX 2048           /* request bodies up to this go upstream copied with
                                           the head; larger ones by reference */
#define PX_BODY_INITIAL 16384           /* first buffer for a chunked request body */
#define PX_SEND_IOV 8                   /* pieces px_sock_send_ref sends at once (a request:
                                           head and, past 2 KiB, its body) */
#define PX_BATCH_MAX 64                 /* sockets read by one io_uring_enter (px_sock.c) */
#define PX_BATCH_SEND_MAX 16384         /* larger upstream requests are sent at once, not at
                                           the turn's end: their scoring (~2 ms per 10 MiB)
                                           then overlaps Ollama's reading them */
#define PX_BUF_POOL_MAX 256             /* empty evbuffers kept for reuse (px_sock.c) */
#define PX_REQ_POOL_MAX 64              /* finished exchanges kept for reuse (px_client.c) */
#define PX_REQ_KEEP 4096                /* a pooled exchange keeps its target, path and body
                                           buffers up to this size each */
#define PX_TARGET_INITIAL 64            /* first allocation of a request-target or path */
#define PX_SLAB_CHUNK 64                /* objects per slab chunk, one malloc (px_slab.c) */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PX_ASAN 1                       /* clang says so this way */
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(PX_ASAN)
#define PX_POOLING 0                    /* ASan: no reuse, so a use after free is still caught */
#else
#define PX_POOLING 1                    /* reuse pooled evbuffers, exchanges and slab objects */
#endif
#define PX_UINT_DIGITS 20               /* decimal digits of the largest unsigned long long */

typedef struct px_server px_server;
typedef struct px_sock px_sock;

/* client connection timeouts, one sorted list each (px_client.c conn_arm) */
#define PX_T_NONE -1            /* no timeout armed */
#define PX_T_HEADER 0           /* --header-timeout: request head within it */
#define PX_T_IDLE 1             /* --idle-timeout: keep-alive idle, body stall, stalled reader */
#define PX_T_KINDS 2
#define PX_ACCEPT_PAUSE 0.25     /* listener paused this long after EMFILE/ENFILE/ENOBUFS/ENOMEM, s */
#define PX_SWEEP_MIN 0.02       /* sweep period bounds, seconds (a tenth of the shortest */
#define PX_SWEEP_MAX 1.0        /* timeout, clamped to these) */
#define PX_TIMER_SLACK 0.001    /* an upstream timer this close to its deadline is on time
                                   (libevent's coarse clock may wake it a little early) */
typedef struct px_conn px_conn;
typedef struct px_up px_up;
typedef struct px_req px_req;

/* ---- px_slab.c: fixed-size objects from chunks kept for the process's life ---- */

/* One slab per object type; static, set up with PX_SLAB_INIT.  Not thread-safe (one loop). */
typedef struct px_slab {
    size_t size;                /* bytes per object (room for the free-list link) */
    int pooling;                /* 0: plain calloc/free (PX_POOLING; tests may set it) */
    void *free_list;            /* objects given back, linked through their first bytes */
    struct px_slab_chunk *chunks; /* every chunk allocated, newest first */
    size_t nchunks;             /* their count */
    size_t live;                /* objects handed out and not given back */
} px_slab;

#define PX_SLAB_ALIGN (sizeof(void *))  /* object sizes are rounded to this (the link) */
#define PX_SLAB_SIZE(type) \
    ((sizeof(type) + PX_SLAB_ALIGN - 1) / PX_SLAB_ALIGN * PX_SLAB_ALIGN)
#define PX_SLAB_INIT(type) { PX_SLAB_SIZE(type), PX_POOLING, NULL, NULL, 0, 0 }

void *px_slab_get(px_slab *sl);
void px_slab_put(px_slab *sl, void *p);
void px_slab_free(px_slab *sl);

/* ---- px_sock.c: a socket + evbuffers on one edge-triggered event ---- */

#define PX_SOCK_CONNECTED 1     /* event: non-blocking connect finished */
#define PX_SOCK_EOF 2           /* event: the peer closed its side */
#define PX_SOCK_ERROR 4         /* event: connect or I/O failed (errno set) */

typedef void (*px_sock_cb)(px_sock *s, void *arg);
typedef void (*px_sock_event_cb)(px_sock *s, short what, void *arg);

struct px_sock {
    struct event_base *base;    /* loop */
    evutil_socket_t fd;         /* socket, -1 before connect / after close */
    struct event ev;            /* EV_READ|EV_WRITE|EV_CLOSED|EV_ET|EV_PERSIST, added once;
                                   embedded (why: one object less per connection) */
    struct evbuffer *in;        /* bytes read, not yet consumed (NULL while trimmed) */
    struct evbuffer *out;       /* bytes to send (NULL while trimmed) */
    px_sock_cb readcb;          /* new input */
    px_sock_cb writecb;         /* output drained to wlow after waiting for writability */
    px_sock_event_cb eventcb;   /* PX_SOCK_* */
    void *arg;                  /* callbacks' argument */
    size_t wlow;                /* write low watermark */
    struct evdns_getaddrinfo_request *dnsreq; /* name resolution in progress */
    int err;                    /* errno of a failure */
    int in_cb;                  /* sock_cb frames on the stack (defers the free) */
    unsigned reading : 1;       /* read when readable */
    unsigned readable : 1;      /* the kernel may hold unread bytes */
    unsigned writable : 1;      /* the kernel took all we offered last time */
    unsigned connecting : 1;    /* connect (or DNS) in progress */
    unsigned eof : 1;           /* peer closed (recv returned 0) */
    unsigned rdhup : 1;         /* the kernel reported the peer's FIN (EPOLLRDHUP) */
    unsigned failed : 1;        /* an error is pending or was reported */
    unsigned reported : 1;      /* EOF/ERROR already reported */
    unsigned dead : 1;          /* freed inside its own callback */
    unsigned big_reads : 1;     /* last read filled its space: reserve PX_READ_CHUNK */
    unsigned queued : 1;        /* waits in the end-of-turn read batch (holds an in_cb) */
    unsigned send_queued : 1;   /* its output waits for the end-of-turn send batch (same) */
    unsigned trim_after_send : 1; /* px_sock_trim asked while a batched send was queued */
    unsigned wcb_owed : 1;      /* a batched send was queued and writecb has not run since */
    unsigned undelivered : 1;   /* a batch read bytes after reading was turned off: readcb owed */
};

px_sock *px_sock_new(struct event_base *base, evutil_socket_t fd);
void px_sock_setcb(px_sock *s, px_sock_cb readcb, px_sock_cb writecb, px_sock_event_cb eventcb,
                   void *arg);
void px_sock_flush(px_sock *s);
void px_sock_flush_later(px_sock *s);
void px_sock_send_ref(px_sock *s, struct evbuffer *b);
int px_sock_ensure(px_sock *s);
void px_sock_trim(px_sock *s);
size_t px_sock_pending(const px_sock *s);
void px_sock_read(px_sock *s, int on);
int px_sock_connect(px_sock *s, const struct sockaddr *sa, int salen);
int px_sock_connect_name(px_sock *s, struct evdns_base *dns, const char *host, int port);
void px_sock_free(px_sock *s);
int px_sock_batch_init(struct event_base *base, int use_ring);
void px_sock_batch_free(void);
struct evbuffer *px_buf_get(void);
void px_buf_put(struct evbuffer *b);
void px_buf_pool_free(void);
void px_sock_slab_free(void);

/* Header names the proxy acts on (px_hdrs.id), told apart once when a name ends so that
 * lookups and the forwarding filters compare a byte, not strings.  The hop-by-hop ones are
 * PX_H_CONNECTION .. PX_H_TRANSFER_ENCODING (px_hop_by_hop). */
enum { PX_H_OTHER = 0, PX_H_HOST, PX_H_CONTENT_LENGTH, PX_H_CONTENT_TYPE, PX_H_EXPECT,
       PX_H_XFF, PX_H_CONNECTION, PX_H_KEEP_ALIVE, PX_H_PROXY_CONNECTION, PX_H_TE,
       PX_H_UPGRADE, PX_H_TRANSFER_ENCODING };

/* Header lines gathered from llhttp's pieces: "name\0value\0" pairs in one buffer. */
typedef struct px_hdrs {
    char *buf;                  /* name/value bytes, each NUL-terminated */
    size_t len;                 /* bytes used */
    size_t cap;                 /* bytes allocated */
    size_t limit;               /* len may not grow past this */
    uint32_t name[PX_MAX_HEADERS];  /* offset of each name */
    uint32_t value[PX_MAX_HEADERS]; /* offset of each value */
    uint8_t id[PX_MAX_HEADERS]; /* PX_H_* of each name */
    uint32_t end;               /* offset just past the last complete line's value NUL */
    int n;                      /* complete lines */
    int in_value;               /* 0 between lines, 1 inside a name, 2 inside a value */
} px_hdrs;

/* A message head built flat on the stack, then added to an evbuffer in one piece. */
typedef struct px_head {
    struct evbuffer *out;       /* destination (px_head_end, or when buf spills) */
    size_t len;                 /* bytes in buf */
    char buf[PX_HEAD_INLINE];   /* the head so far */
} px_head;

typedef enum {
    RQ_HEAD = 0,                /* reading the request head */
    RQ_BODY,                    /* reading the request body */
    RQ_UPSTREAM,                /* forwarded; waiting for / relaying the response */
    RQ_DONE,                    /* response complete; flushing to the client */
} px_rq_state;

/* One request/response exchange; lives from the head's first byte to the end of the response. */
struct px_req {
    px_conn *conn;              /* client connection it arrived on */
    llhttp_t parser;            /* request parser (strict; data = conn) */
    px_up *up;                  /* upstream connection serving it, or NULL */
    px_rq_state state;          /* phase */
    px_req_view v;              /* what the hooks see */
    char method[PX_METHOD_MAX]; /* method text */
    size_t target_len;          /* bytes in target (0: no request-target seen yet) */
    struct evbuffer *upreq;     /* the upstream request, kept for one stale-connection retry */
    size_t body_len;            /* bytes in body */
    int has_body;               /* the request had Content-Length or Transfer-Encoding */
    int http10;                 /* client spoke HTTP/1.0 */
    int is_head;                /* HEAD request (response has no body) */
    int keepalive;              /* client connection may be reused after this exchange */
    int retried;                /* already retried once on a fresh upstream connection */
    int complete;               /* the whole request has been read */
    int close_after;            /* close the client connection once this response is done */
    int head_sent;              /* response head written to the client */
    int relay_raw;              /* relay upstream body bytes as they are (else decoded) */
    char extra[PX_EXTRA_HEADERS_MAX]; /* X-LiteBrain-* headers from the hooks */
    void *hook_data;            /* the hooks' per-request slot */
    /* From here on a reused px_req keeps what it has (req_new clears only what comes first):
     * the buffers, so a request on a pooled exchange allocates nothing (req_free). */
    px_hdrs hdrs;               /* request headers */
    char *target;               /* upstream request-target (aliases applied), NUL-terminated */
    size_t target_cap;          /* bytes allocated */
    char *path;                 /* NUL-terminated copy of the path for the hooks */
    size_t path_cap;            /* bytes allocated */
    char *body;                 /* request body (upreq references it past 2 KiB) */
    size_t body_cap;            /* bytes allocated */
};

/* A client connection. */
struct px_conn {
    px_server *srv;             /* owner */
    px_sock *sk;                /* client socket */
    px_req *req;                /* exchange in progress, or NULL between requests */
    px_conn *prev, *next;       /* server's connection list */
    px_conn *tprev, *tnext;     /* timeout list (see conn_arm) */
    double deadline;            /* when the armed timeout expires */
    signed char tlist;          /* timeout list c is on (PX_T_*), -1 none */
    int err_status;             /* status a parser callback asked for (413/431/417/501) */
    const char *err_msg;        /* its text; NULL: the status's usual one */
    int closing;                /* close once the output has drained */
    int last_byte;              /* last head byte seen (line-end checks across reads) */
    px_conn *lnext;             /* server's list of connections to parse later */
    unsigned char on_later;     /* 1 while on that list */
    unsigned char held;         /* pipelined input waits until the client took its output */
    unsigned char linger;       /* when closing: the client may still be sending (see conn_close) */
    unsigned char lingering;    /* our FIN is sent; input is read and dropped until the peer's */
    char peer_text[INET6_ADDRSTRLEN]; /* client IP for X-Forwarded-For */
};

/* An upstream (Ollama) connection: in the idle pool or serving one request. */
struct px_up {
    px_server *srv;             /* owner */
    px_sock *sk;                /* upstream socket */
    llhttp_t parser;            /* response parser (strict) */
    px_req *req;                /* request being served, or NULL when idle */
    struct event *timer;        /* connect / idle-stream / pool-idle timeout, by phase */
    double deadline;            /* when the phase's timeout expires (px_now), 0 none */
    double fires_at;            /* when timer is armed to fire, 0 not armed (see up_arm) */
    px_up *next;                /* idle pool list */
    px_hdrs hdrs;               /* response headers */
    char reason[64];            /* status reason phrase */
    size_t reason_len;          /* its length */
    int connected;              /* TCP connect finished */
    int reused;                 /* served a request before (stale-connection retry applies) */
    int got_byte;               /* a response byte arrived for the current request */
    int head_done;              /* response head parsed */
    int msg_done;               /* response complete */
    int chunked;                /* response uses chunked framing */
    int paused;                 /* reads paused by client backpressure */
};

struct px_server {
    struct event_base *base;    /* the one loop */
    struct evdns_base *dns;     /* async resolver for a named upstream */
    const px_config *cfg;       /* flags */
    px_hooks hooks;             /* scoring / metrics / controller glue */
    struct evconnlistener *listener; /* client listener, NULL once closed */
    struct sockaddr_storage up_addr; /* upstream address when it is an IP literal */
    int up_addrlen;             /* 0 when the upstream is a name (resolve per connect) */
    px_conn *conns;             /* all client connections */
    int batched;                /* px_sock_batch_init's answer: 1 reads batched via io_uring */
    int nconns;                 /* their count */
    int inflight;               /* requests between dispatch and finish */
    px_up *pool;                /* idle upstream connections */
    int npool;                  /* their count */
    struct event *probe_timer;  /* readiness probe */
    px_sock *probe;             /* probe connection in progress */
    double probe_at;            /* when it started */
    double up_ok_at;            /* last time the upstream accepted a connection */
    int draining;               /* SIGTERM/SIGINT seen */
    int grace_over;             /* listener closed */
    struct event *grace_timer;  /* end of the accept grace */
    struct event *deadline_timer; /* end of the drain window */
    struct event *tick_timer;   /* controller snapshot tick */
    struct event *sweep_timer;  /* expires client connection timeouts */
    struct event *accept_timer; /* ends a pause of the listener after EMFILE and the like */
    px_conn *later;             /* connections whose next pipelined request waits a turn */
    struct event *later_ev;     /* parses them (active while the list is not empty) */
    int parse_depth;            /* next_request frames on the stack */
    px_conn *thead[PX_T_KINDS]; /* timeout lists, oldest deadline first */
    px_conn *ttail[PX_T_KINDS]; /* ... and their tails */
    int port;                   /* bound proxy port */
};

/* px_http.c */
int px_grow(char **buf, size_t *cap, size_t need, size_t first, size_t max);
void px_hdrs_init(px_hdrs *h, size_t limit);
void px_hdrs_reset(px_hdrs *h);
void px_hdrs_free(px_hdrs *h);
size_t px_hdrs_name_len(const px_hdrs *h, int i);
size_t px_hdrs_value_len(const px_hdrs *h, int i);
int px_hdrs_piece(px_hdrs *h, int is_value, const char *p, size_t n);
int px_hdrs_end_piece(px_hdrs *h, int is_value);
const char *px_hdrs_find(const px_hdrs *h, int id);
int px_hdr_id(const char *name, size_t len);
int px_header_listed(const char *list, const char *name);
int px_method_idempotent(const char *m);
int px_hdrs_name_ok(const px_hdrs *h);
int px_host_valid(const char *v);
int px_te_chunked_only(const px_hdrs *h);
int px_hop_by_hop(int id);
int px_hdrs_hop(const px_hdrs *h, int i, const char *conn_hdr);
size_t px_utoa(char *out, unsigned long long v);
int px_bad_line_ends(const char *p, size_t n, int *last_byte);
void px_head_begin(px_head *h, struct evbuffer *out);
void px_head_spill(px_head *h, const void *p, size_t n);
void px_head_header(px_head *h, const char *name, const char *value);
void px_head_line(px_head *h, const px_hdrs *hd, int i);
void px_head_end(px_head *h);
const char *px_reason(int status);
void px_error_response(struct evbuffer *out, int status, int v1, const char *msg,
                       const char *extra, int close, int head_only);

/* Append n bytes to the head.  Why a flat buffer: one evbuffer_add per head instead of one per
 * piece (each add costs a call, a chain check and often a chain).  Inline: a head is a dozen
 * small pieces, most of constant size. */
static inline void px_head_add(px_head *h, const void *p, size_t n)
{
    if (h->len + n > sizeof h->buf) {
        px_head_spill(h, p, n);
        return;
    }
    memcpy(h->buf + h->len, p, n);
    h->len += n;
}

/* px_log.c */
void px_now_scope(int enter);

/* px_server.c */
struct timeval px_tv(double seconds);

/* px_client.c */
void px_client_init(void);
void px_on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                  void *arg);
void px_on_accept_error(struct evconnlistener *l, void *arg);
void px_conn_later_cb(evutil_socket_t fd, short what, void *arg);
void px_close_idle(px_server *s);
void px_close_all(px_server *s);
void px_conn_stalled(px_conn *c, int stalled);
void px_sweep(px_server *s);
void px_req_finish(px_req *r, px_end end, int status);
void px_req_pool_free(void);
void px_conn_slab_free(void);
void px_conn_response_done(px_conn *c);
void px_conn_upstream_failed(px_conn *c, px_end end, int status, const char *msg);
void px_server_maybe_exit(px_server *s);

/* px_upstream.c */
int px_up_dispatch(px_server *s, px_req *r);
void px_up_abort(px_up *u);
void px_up_resume(px_up *u);
void px_up_pool_free(px_server *s);
void px_probe_start(px_server *s);

#endif
