/* k8s_internal.h — what the files of k8s/ share: settings, the API client, the Lease elector,
 * the shared status behind /debug/scaling and /metrics, and the consumer side of the hint
 * queue.  Not public API (k8s.h is); unit tests may include it. */
#ifndef K8S_INTERNAL_H
#define K8S_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include "k8s/k8s.h"

/* ---- sizes and timeouts, all in one place ---- */
#define K8S_HINT_RING 8192              /* hint queue slots (one is never used) */
#define K8S_NAME_MAX 256                /* namespace, object and identity names */
#define K8S_PATH_MAX 1024               /* file paths and API paths */
#define K8S_TOKEN_MAX 16384             /* longest bearer token read */
#define K8S_BODY_MAX (4u << 20)         /* API response bodies larger than this are cut */
#define K8S_ERR_MAX 320                 /* last API error text kept */
#define K8S_TOKEN_REREAD_S 60.0         /* bearer token re-read at least this often */
#define K8S_CA_CACHE_SECONDS 60         /* libcurl re-reads ca.crt after this long (its default: 24 h) */
#define K8S_HTTP_TIMEOUT_MIN 0.5        /* per-call timeout floor, seconds */
#define K8S_HTTP_TIMEOUT_MAX 5.0        /* per-call timeout ceiling (renew deadline / 2 between) */
#define K8S_CONNECT_TIMEOUT 3.0         /* TCP + TLS connect ceiling, seconds */
#define K8S_BACKOFF_BASE 0.25           /* first retry delay after a failed write, seconds */
#define K8S_BACKOFF_CAP 30.0            /* retry delay ceiling, seconds */
#define K8S_RETRY_AFTER_CAP 120.0       /* a Retry-After longer than this is cut to it */
#define K8S_RESIZE_BACKOFF_BASE 5.0     /* first wait after a resize came back Infeasible */
#define K8S_RESIZE_BACKOFF_CAP 600.0    /* longest wait between resize attempts */
#define K8S_DRAIN_PERIOD 0.05           /* the controller drains hints at least this often */
#define K8S_DECISIONS_KEPT 16           /* decisions shown in /debug/scaling */
#define K8S_ACTION_MAX 96               /* text of what a decision did (log and /debug/scaling) */
#define K8S_WINDOW_SHOWN 64             /* recommendations shown in /debug/scaling */
#define K8S_API_CODES_MAX 24            /* distinct (verb, code) pairs counted; rest "other" */
#define K8S_LEASE_JITTER 1.2            /* candidates retry every retry period x [1, 1.2) */
#define K8S_DEFAULT_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/* Settings from the environment (DESIGN §2). */
typedef struct k8s_config {
    char base_url[K8S_NAME_MAX];        /* https://host:port of the API server, "" when none */
    char sa_dir[K8S_PATH_MAX];          /* LITEBRAIN_K8S_SA_DIR */
    char ns[K8S_NAME_MAX];              /* namespace (file in sa_dir), "" when unreadable */
    char deployment[K8S_NAME_MAX];      /* LITEBRAIN_K8S_DEPLOYMENT */
    char hpa[K8S_NAME_MAX];             /* LITEBRAIN_K8S_HPA, "" = patch the scale instead */
    char lease[K8S_NAME_MAX];           /* LITEBRAIN_K8S_LEASE */
    char pod[K8S_NAME_MAX];             /* POD_NAME, "" when not set */
    char identity[K8S_NAME_MAX];        /* Lease identity: POD_NAME, else hostname-pid */
    char container[K8S_NAME_MAX];       /* LITEBRAIN_K8S_CONTAINER */
    double lease_s;                     /* LITEBRAIN_K8S_LEASE_SECONDS */
    double renew_s;                     /* LITEBRAIN_K8S_RENEW_SECONDS */
    double retry_s;                     /* LITEBRAIN_K8S_RETRY_SECONDS */
    int have_creds;                     /* API host set and token readable */
} k8s_config;

/* Read the settings.  Returns 0, or -1 with a line in err on a bad value. */
int k8s_config_from_env(k8s_config *c, char *err, size_t errlen);

/* ---- the API client (controller thread only) ---- */

typedef struct k8s_resp {
    long code;                          /* HTTP status, 0 when no response (timeout, TLS...) */
    json_t *json;                       /* parsed body, NULL when none or not JSON */
    char reason[64];                    /* Status reason ("Conflict"), "" when none */
    char message[256];                  /* Status message, or the transport error */
    double retry_after;                 /* Retry-After seconds, -1 when absent */
} k8s_resp;

typedef struct k8s_client k8s_client;

/* A client for cfg (copied); timeout_s bounds every call.  NULL with err on failure. */
k8s_client *k8s_client_new(const k8s_config *cfg, double timeout_s, char *err, size_t errlen);
void k8s_client_free(k8s_client *c);

/* One API call: verb, path (from "/api..."), optional body and content type.  Re-reads the
 * token when stale and once after a 401 (then retries once).  Fills r (free with
 * k8s_resp_free); returns r->code.  Counts the call; failures become the last API error. */
long k8s_call(k8s_client *c, const char *verb, const char *path, const char *ctype,
              const char *body, k8s_resp *r);
/* The same, but status `normal` (e.g. 404 for a Lease not created yet, 409 for a lost race)
 * is an expected answer: counted, logged at debug, not made the last API error. */
long k8s_call_expect(k8s_client *c, const char *verb, const char *path, const char *ctype,
                     const char *body, long normal, k8s_resp *r);
/* k8s_call for a write that must land by `deadline` (monotonic s): the retry after a 401 is
 * sent only if it, too, can end by then (one call timeout). */
long k8s_call_by(k8s_client *c, const char *verb, const char *path, const char *ctype,
                 const char *body, double deadline, k8s_resp *r);
void k8s_resp_free(k8s_resp *r);

/* ---- capped exponential backoff with jitter, honouring Retry-After ---- */

typedef struct k8s_backoff {
    int failures;                       /* consecutive failures */
    double next;                        /* earliest next attempt (monotonic s) */
} k8s_backoff;

/* Record a failure at now: next = now + max(retry_after, jittered min(cap, base * 2^n)). */
void k8s_backoff_fail(k8s_backoff *b, double now, double retry_after, double base, double cap);
void k8s_backoff_ok(k8s_backoff *b);

/* ---- Lease leader election, client-go semantics (k8s_lease.c) ---- */

typedef struct k8s_lease {
    char name[K8S_NAME_MAX];            /* Lease object name */
    char ns[K8S_NAME_MAX];              /* its namespace */
    char identity[K8S_NAME_MAX];        /* our holderIdentity */
    double duration;                    /* lease duration we write and wait, seconds */
    double renew_deadline;              /* leadership ends this long after the last renewal */
    char holder[K8S_NAME_MAX];          /* holderIdentity last observed ("" = free) */
    int rec_duration;                   /* leaseDurationSeconds last observed */
    long transitions;                   /* leaseTransitions last observed */
    char acquire_time[40];              /* acquireTime last observed (kept while we hold it) */
    char rv[64];                        /* resourceVersion of the last record seen */
    char *raw;                          /* last observed spec, compact JSON, for change checks */
    double observed_at;                 /* local monotonic time the record last changed */
    double renewed_at;                  /* our last successful create/update (monotonic) */
    int leader;                         /* we hold it (as of the last attempt) */
    unsigned terms;                     /* times we became leader */
} k8s_lease;

void k8s_lease_init(k8s_lease *l, const k8s_config *cfg);
void k8s_lease_free(k8s_lease *l);
/* One tryAcquireOrRenew at now.  Returns 1 when we hold the Lease afterwards, else 0. */
int k8s_lease_try(k8s_lease *l, k8s_client *c, double now);
/* Leader and renewed within the renew deadline: allowed to act. */
int k8s_lease_valid(const k8s_lease *l, double now);
/* Give it up (holderIdentity "", leaseDurationSeconds 1).  0 ok / not held, -1 failed. */
int k8s_lease_release(k8s_lease *l, k8s_client *c, double now);
/* Wall-clock now as a MicroTime: "2006-01-02T15:04:05.000000Z". */
void k8s_microtime(char *out, size_t cap);

/* ---- shared status: written by the controller, read at scrape time (k8s_status.c) ---- */

void k8s_status_reset(k8s_mode mode, k8s_mode configured, const char *identity);
void k8s_status_leader(int is_leader, const char *holder);
void k8s_status_replicas(int current, int desired, int floor_in_cluster, int ceiling);
void k8s_status_decision(const k8s_decision *d, const char *action, const k8s_engine *e,
                         const sc_policy *p);
void k8s_status_resources(int64_t cpu_m, int64_t mem, const char *state);
void k8s_status_api(const char *verb, long code);
void k8s_status_error(const char *text);

/* Cut s back to whole UTF-8 characters: a multi-byte sequence that a byte-counted copy left
 * incomplete at the end is removed (jansson refuses such strings). */
void k8s_utf8_trim(char *s);

/* ---- hint queue, consumer side (k8s_hint.c) ---- */

void k8s_hints_enable(int on);
int k8s_hint_take(k8s_hint *out);

#endif
