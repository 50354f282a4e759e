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

/* The process began shutting down (SIGTERM): the controller releases the Lease at once and
 * stops acting, so a successor takes over without waiting out the lease.  Never blocks (safe
 * on the loop thread, e.g. in the signal callback); safe when never started. */
void k8s_drain(void);

/* Controller series for /metrics (an mx_collect_fn). */
void k8s_collect_metrics(struct evbuffer *out, void *ud);

/* /debug/scaling JSON body (an mx_debug_fn): mode, leader, replicas, window, decisions. */
void k8s_debug_json(struct evbuffer *out, void *ud);

/* ---- model-weight bookkeeping of the hints (k8s_policy.c), shared with bench/'s simulator ---- */

typedef struct k8s_load {
    int inflight;               /* requests started minus finished */
    double inflight_w;          /* sum of their model weights */
    double wsum;                /* weights of requests started since the last evaluation */
    int wn;                     /* how many */
    double weight;              /* mean weight carried between evaluations (start it at 1.0) */
} k8s_load;

void k8s_load_start(k8s_load *l, double weight);      /* a request of that weight started */
void k8s_load_finish(k8s_load *l, double weight);     /* ... and finished */
/* Close an evaluation period with `active` requests in flight: update the recent mean weight
 * (kept while nothing started; 1.0 once idle) and return the mean weight of what is in flight,
 * so the snapshot's load is active × it. */
double k8s_load_roll(k8s_load *l, int active);

/* ---- the pure policy engine: (policy, state, snapshot, now) -> decision (k8s_policy.c) ----
 * No clock, no I/O, no globals: tests and bench/'s scaling simulator drive it with a fake
 * clock.  The controller thread calls k8s_engine_eval every evaluationIntervalSeconds. */

#define K8S_WINDOW_MAX 1024     /* recommendations kept for stabilization (oldest dropped;
                                   the policy caps windows at SC_WINDOW_EVALS_MAX evaluations) */
#define K8S_GROW_SAMPLES 3      /* evaluations the queue must rise in a row to count as growing */
#define K8S_REASON_MAX 192      /* longest decision reason */

/* What the engine sees at one evaluation. */
typedef struct k8s_snapshot {
    double now;                 /* seconds on any monotonic clock (fake in tests) */
    double complexity;          /* decayed complexity gauge 0..100 */
    int active;                 /* requests in flight */
    int waiting;                /* requests waiting for the first upstream byte */
    double load;                /* weighted active load: sum of in-flight requests' model weights */
    double weight;              /* mean model weight of recent requests (1.0 when none) */
    int current;                /* replicas the cluster reports; -1 unknown (engine uses its floor) */
    int floor;                  /* replica floor now in the cluster (HPA minReplicas / scale spec);
                                   -1 unknown (the engine keeps its own) */
    int ceiling;                /* HPA spec.maxReplicas; -1 when there is none */
    int64_t pod_cpu_m;          /* this pod's container CPU now (millicores); -1 unknown */
    int64_t pod_mem;            /* this pod's container memory now (bytes); -1 unknown */
} k8s_snapshot;

/* One evaluation's raw recommendation, kept for the stabilization windows. */
typedef struct k8s_sample {
    double t;                   /* when it was made */
    int replicas;               /* raw replica recommendation */
    int64_t cpu_m;              /* raw CPU target (millicores), -1 when no resources */
    int64_t mem;                /* raw memory target (bytes), -1 when no resources */
} k8s_sample;

/* Engine state between evaluations (plain data; zero it with k8s_engine_init). */
typedef struct k8s_engine {
    int started;                /* 0 before the first evaluation */
    double t0;                  /* time of the first evaluation */
    int floor;                  /* stabilized replica recommendation (what gets written) */
    int64_t cpu_m;              /* stabilized CPU target (millicores), -1 none yet */
    int64_t mem;                /* stabilized memory target (bytes), -1 none yet */
    double prev_complexity;     /* complexity at the previous evaluation */
    double queue[K8S_GROW_SAMPLES + 1]; /* waiting+load at the last evaluations, newest last */
    int nqueue;                 /* entries used in queue */
    k8s_sample win[K8S_WINDOW_MAX]; /* ring of raw recommendations */
    int whead;                  /* index of the oldest sample */
    int wlen;                   /* samples in the ring */
} k8s_engine;

typedef enum { K8S_DIR_HOLD = 0, K8S_DIR_UP, K8S_DIR_DOWN } k8s_direction;

/* The result of one evaluation. */
typedef struct k8s_decision {
    double t;                   /* snapshot time */
    sc_level level;             /* level of the complexity gauge */
    int current;                /* replicas used as "current" */
    int raw;                    /* this evaluation's recommendation before stabilization */
    int desired;                /* stabilized and clamped: the floor to write */
    k8s_direction direction;    /* desired vs the previous floor */
    int64_t cpu_m;              /* stabilized CPU target, -1 when the policy has no resources */
    int64_t mem;                /* stabilized memory target, -1 when none */
    int resources_changed;      /* 1 when cpu_m/mem differ from the previous evaluation's */
    char reason[K8S_REASON_MAX]; /* why, for logs and /debug/scaling */
} k8s_decision;

/* Reset e to "no evaluation yet". */
void k8s_engine_init(k8s_engine *e);

/* Evaluate once at s->now: raw recommendation (scale up, step down, hold), HPA-style
 * stabilization over the policy's windows, clamp to [minReplicas, min(maxReplicas, ceiling)],
 * and the resource target of this pod.  Updates e; fills d.  Pure: same inputs, same output. */
void k8s_engine_eval(k8s_engine *e, const sc_policy *p, const k8s_snapshot *s, k8s_decision *d);

const char *k8s_direction_name(k8s_direction d);

/* Kubernetes quantities: "4", "1500m", "0.5" -> millicores; "12Gi", "8G", "512Mi", "1e3" ->
 * bytes.  Return -1 on a value they cannot read. */
int64_t k8s_cpu_parse(const char *s);
int64_t k8s_mem_parse(const char *s);
/* Canonical text: "4" or "1500m"; "12Gi", "512Mi", "1000Ki" or plain bytes. */
void k8s_cpu_format(int64_t millicores, char *out, size_t cap);
void k8s_mem_format(int64_t bytes, char *out, size_t cap);

#endif
