/* px_int.h — structures shared by the proxy's own files (client side, upstream side, HTTP
 * helpers).  Not part of proxy/'s public API: other folders use proxy.h only. */
#ifndef PX_INT_H
#define PX_INT_H

#include <event2/event.h>
#include <event2/bufferevent.h>
#include <event2/buffer.h>
#include <event2/listener.h>
#include <event2/dns.h>
#include <netinet/in.h>
#include <llhttp.h>
#include "proxy/proxy.h"

#define PX_MAX_HEADERS 128              /* header lines per message; beyond → 431 / 502 */
#define PX_METHOD_MAX 24                /* longest method we keep */
#define PX_EXTRA_HEADERS_MAX 256        /* response headers the hooks may add */
#define PX_PIPELINE_MAX (1024 * 1024)   /* buffered pipelined input before reads pause */
#define PX_RESP_HEAD_MAX (256 * 1024)   /* largest upstream response head accepted */
#define PX_PEER_MAX 64                  /* textual client address */

typedef struct px_server px_server;
typedef struct px_conn px_conn;
typedef struct px_up px_up;
typedef struct px_req px_req;

/* Header lines gathered from llhttp's pieces: "name\0value\0" pairs in one buffer. */
typedef struct px_hdrs {
    char *buf;                  /* name/value bytes, each NUL-terminated */
    size_t len;                 /* bytes used */
    size_t cap;                 /* bytes allocated */
    size_t limit;               /* len may not grow past this */
    uint32_t name[PX_MAX_HEADERS];  /* offset of each name */
    uint32_t value[PX_MAX_HEADERS]; /* offset of each value */
    int n;                      /* complete lines */
    int in_value;               /* 0 between lines, 1 inside a name, 2 inside a value */
} px_hdrs;

typedef enum {
    RQ_HEAD = 0,                /* reading the request head */
    RQ_BODY,                    /* reading the request body */
    RQ_UPSTREAM,                /* forwarded; waiting for / relaying the response */
    RQ_DONE,                    /* response complete; flushing to the client */
} px_rq_state;

/* One request/response exchange; lives from the head's first byte to the end of the response. */
struct px_req {
    px_conn *conn;              /* client connection it arrived on */
    px_up *up;                  /* upstream connection serving it, or NULL */
    px_rq_state state;          /* phase */
    px_req_view v;              /* what the hooks see */
    char method[PX_METHOD_MAX]; /* method text */
    char *target;               /* upstream request-target (aliases applied), malloc'd */
    size_t target_len;          /* its length */
    size_t path_len;            /* length of the path part of target (before '?') */
    char *path;                 /* NUL-terminated copy of the path for the hooks */
    px_hdrs hdrs;               /* request headers */
    char *body;                 /* request body (malloc'd; upreq references it) */
    struct evbuffer *upreq;     /* the upstream request, kept for one stale-connection retry */
    size_t body_len;            /* bytes in body */
    size_t body_cap;            /* bytes allocated */
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
    int hooked;                 /* on_request was called */
};

/* A client connection. */
struct px_conn {
    px_server *srv;             /* owner */
    struct bufferevent *bev;    /* client socket */
    llhttp_t parser;            /* request parser (strict) */
    px_req *req;                /* exchange in progress, or NULL between requests */
    struct event *timer;        /* header / body / idle timeout, by phase */
    px_conn *prev, *next;       /* server's connection list */
    int err_status;             /* status a parser callback asked for (413/431/417) */
    int closing;                /* close once the output has drained */
    int last_byte;              /* last head byte seen (line-end checks across reads) */
    char peer[PX_PEER_MAX];     /* client IP for X-Forwarded-For */
};

/* An upstream (Ollama) connection: in the idle pool or serving one request. */
struct px_up {
    px_server *srv;             /* owner */
    struct bufferevent *bev;    /* upstream socket */
    llhttp_t parser;            /* response parser (strict) */
    px_req *req;                /* request being served, or NULL when idle */
    struct event *timer;        /* connect / idle-stream / pool-idle timeout, by phase */
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
    int nconns;                 /* their count */
    int inflight;               /* requests between dispatch and finish */
    px_up *pool;                /* idle upstream connections */
    int npool;                  /* their count */
    struct event *probe_timer;  /* readiness probe */
    struct bufferevent *probe;  /* probe connection in progress */
    double up_ok_at;            /* last time the upstream accepted a connection */
    int draining;               /* SIGTERM/SIGINT seen */
    int grace_over;             /* listener closed */
    struct event *grace_timer;  /* end of the accept grace */
    struct event *deadline_timer; /* end of the drain window */
    struct event *tick_timer;   /* controller snapshot tick */
    int port;                   /* bound proxy port */
};

/* px_http.c */
void px_hdrs_init(px_hdrs *h, size_t limit);
void px_hdrs_free(px_hdrs *h);
int px_hdrs_piece(px_hdrs *h, int is_value, const char *p, size_t n);
int px_hdrs_end_piece(px_hdrs *h, int is_value);
const char *px_hdrs_get(const px_hdrs *h, const char *name);
int px_header_listed(const char *list, const char *name);
int px_hop_by_hop(const char *name);
const char *px_reason(int status);
void px_error_response(struct evbuffer *out, int status, int v1, const char *msg, int close);

/* px_server.c */
struct timeval px_tv(double seconds);

/* px_client.c */
void px_client_init(void);
void px_on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                  void *arg);
void px_on_accept_error(struct evconnlistener *l, void *arg);
void px_close_idle(px_server *s);
void px_close_all(px_server *s);
void px_conn_stalled(px_conn *c, int stalled);
void px_req_finish(px_req *r, px_end end, int status);
void px_conn_response_done(px_conn *c);
void px_conn_upstream_failed(px_conn *c, px_end end, int status, const char *msg);
void px_server_maybe_exit(px_server *s);

/* px_upstream.c */
void px_up_dispatch(px_server *s, px_req *r);
void px_up_abort(px_up *u);
void px_up_resume(px_up *u);
void px_up_pool_free(px_server *s);
void px_probe_start(px_server *s);

#endif
