/* k8s.h — the scaling controller: hint queue (loop → controller), the pure policy engine,
 * the Kubernetes client, Lease leader election and the acting loop.  The whole public API of
 * k8s/.  k8s_hint_post is the only function the loop thread calls per request. */
#ifndef K8S_K8S_H
#define K8S_K8S_H

#include <stddef.h>
#include <stdint.h>
#include "scoring/scoring.h"

struct evbuffer;

typedef enum {
    K8S_MODE_OFF = 0,           /* no controller thread */
    K8S_MODE_DRY_RUN,           /* decide and log, write nothing, no Lease */
    K8S_MODE_ON,                /* leader acts on replicas; every pod resizes itself */
    K8S_MODE_AUTO,              /* ON when in-cluster credentials exist, else DRY_RUN */
} k8s_mode;

/* Parse "off", "dry-run", "on", "auto"; -1 when unknown. */
int k8s_mode_parse(const char *s, k8s_mode *out);
const char *k8s_mode_name(k8s_mode m);

typedef enum {
    K8S_HINT_START = 0,         /* a scored or unscored request started */
    K8S_HINT_FINISH,            /* a request finished */
    K8S_HINT_TICK,              /* periodic snapshot from the loop (about once a second) */
} k8s_hint_kind;

/* A scale hint: plain data copied into the queue. */
typedef struct k8s_hint {
    k8s_hint_kind kind;         /* what happened */
    double now;                 /* monotonic seconds on the loop thread */
    int score;                  /* request score 0..100, -1 when not scored */
    sc_level level;             /* its level */
    double weight;              /* model weight from the policy */
    double seconds;             /* FINISH: duration */
    long prompt_tokens;         /* FINISH: -1 unknown */
    long output_tokens;         /* FINISH: -1 unknown */
    int status;                 /* FINISH: HTTP status sent */
    int active;                 /* active requests at the time */
    int waiting;                /* requests waiting for the first upstream byte */
    double complexity;          /* the decayed complexity gauge at the time */
} k8s_hint;

/* Post a hint; never blocks.  Returns 0, or -1 when the queue was full (caller counts it). */
int k8s_hint_post(const k8s_hint *h);

/* Start the controller thread in mode m with a copy of policy p; reads the Kubernetes
 * settings from the environment (DESIGN §2).  Returns 0, or -1 with a line in err. */
int k8s_start(k8s_mode m, const sc_policy *p, char *err, size_t errlen);

/* Stop the thread: release the Lease if held, join.  Safe when never started. */
void k8s_stop(void);

/* Controller series for /metrics (an mx_collect_fn). */
void k8s_collect_metrics(struct evbuffer *out, void *ud);

/* /debug/scaling JSON body (an mx_debug_fn): mode, leader, replicas, window, decisions. */
void k8s_debug_json(struct evbuffer *out, void *ud);

#endif
