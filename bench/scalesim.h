/* scalesim.h — the scaling simulator's shared types: a replayed LLM trace, a fleet of Ollama
 * pods with parallel slots and cold starts, the HPA model, and per-run statistics.
 * scalesim.c runs the fleet, scalesim_hpa.c models the Kubernetes HPA, scalesim_io.c reads the
 * trace, prints the table and draws the SVG.  Prefix ss_.  Simulated time only: no clock, no sockets. */
#ifndef BENCH_SCALESIM_H
#define BENCH_SCALESIM_H

#include <stdint.h>
#include <stdio.h>
#include "scoring/scoring.h"
#include "k8s/k8s.h"

#define SS_PODS_MAX 256         /* pod records per run (gone pods are reused) */
#define SS_SLOTS_MAX 64         /* most parallel slots per pod (--parallel) */
#define SS_HPA_RECS 1024        /* HPA recommendations kept for stabilization */
#define SS_HPA_EVENTS 1024      /* HPA scale events kept for rate limits */
#define SS_STRATEGIES 4         /* fixed, hpa-cpu, engine-floor, litebrain */
#define SS_SERIES_STEP 10.0     /* seconds between samples of the replica series */
#define SS_MINUTE 60.0          /* seconds in a minute */

/* fixed fleet; default HPA on CPU; default HPA on CPU with our engine's floor; the shipped
 * LiteBrain HPA (CPU + complexity Pods metric, its behavior) with our engine's floor */
typedef enum { SS_FIXED = 0, SS_HPA_CPU, SS_ENGINE_FLOOR, SS_LITEBRAIN } ss_kind;

/* One trace row plus what a run did with it. */
typedef struct ss_req {
    double t;                   /* arrival, seconds since the trace's first row */
    int ctx;                    /* ContextTokens (prompt) */
    int gen;                    /* GeneratedTokens (output) */
    double start;               /* run: a slot began prefill (queue wait = start - t) */
    double first;               /* run: first output token (start + prefill) */
    double end;                 /* run: last token */
    int pod;                    /* run: pod it was routed to */
    int next;                   /* run: next request in that pod's queue, -1 none */
    int score;                  /* run: the pod's scorer's score */
    double weight;              /* run: model weight from the policy */
    uint8_t waiting;            /* run: 1 until the first token */
} ss_req;

/* A trace in memory. */
typedef struct ss_trace {
    ss_req *r;                  /* rows sorted by arrival */
    int n;                      /* rows used */
    int cap;                    /* rows allocated */
    double span;                /* seconds from first to last arrival */
} ss_trace;

/* HPA scaling rules for one direction (autoscaling/v2 HPAScalingRules). */
typedef struct ss_rules {
    double window;              /* stabilizationWindowSeconds */
    int pct;                    /* Percent policy value, -1 when absent */
    double pct_period;          /* its periodSeconds */
    int pods;                   /* Pods policy value, -1 when absent */
    double pods_period;         /* its periodSeconds */
    int select_max;             /* 1 selectPolicy Max, 0 Min */
} ss_rules;

/* The HPA model: spec, behavior and the controller's memory. */
typedef struct ss_hpa {
    int min;                    /* spec.minReplicas (LiteBrain moves this floor) */
    int max;                    /* spec.maxReplicas */
    double cpu_target;          /* CPU averageUtilization as a fraction (0.7) */
    double cx_target;           /* litebrain_complexity_score averageValue, 0 = metric absent */
    double tolerance;           /* --horizontal-pod-autoscaler-tolerance (0.1) */
    ss_rules up;                /* behavior.scaleUp */
    ss_rules down;              /* behavior.scaleDown */
    double rec_t[SS_HPA_RECS];  /* recommendation times (ring) */
    int rec_n[SS_HPA_RECS];     /* recommendations */
    int nrec;                   /* recommendations stored (ring wraps at SS_HPA_RECS) */
    double ev_t[SS_HPA_EVENTS]; /* scale event times (ring) */
    int ev_d[SS_HPA_EVENTS];    /* replica change of each event (+ up, - down) */
    int nev;                    /* events stored (ring wraps) */
} ss_hpa;

/* What the HPA reads at one sync. */
typedef struct ss_hpa_input {
    int current;                /* scale.spec.replicas */
    int ready;                  /* ready pods (with CPU metrics) */
    int unready;                /* pods still starting */
    double cpu_sum;             /* sum of ready pods' CPU utilization (fractions) */
    double cx_sum;              /* sum of every pod's complexity gauge */
} ss_hpa_input;

/* Pod HPA with the Kubernetes defaults: no scale-up window, max(100 %, 4 pods) per 15 s;
 * scale-down window 300 s, 100 % per 15 s. */
void ss_hpa_default(ss_hpa *h, int min, int max, double cpu_target);

/* One HPA sync at now: metric replicas (max over CPU and, when cx_target > 0, the complexity
 * Pods metric), stabilization, rate limits, clamp; records the recommendation and, when the
 * result differs from in->current, the scale event.  Returns the replicas to set. */
int ss_hpa_sync(ss_hpa *h, double now, const ss_hpa_input *in);

/* Per-minute and whole-run results of one strategy. */
typedef struct ss_stats {
    const char *name;           /* strategy name */
    double replica_minutes;     /* integral of existing pods (starting, ready, draining) */
    double p50, p95, p99;       /* queue wait percentiles over all requests, seconds */
    int slo_minutes;            /* minutes whose p95 queue wait exceeded the SLO */
    int scale_events;           /* changes of the Deployment's replica count */
    int thrash;                 /* scale events reversing the previous one within the window */
    int max_replicas;           /* most pods at once */
    int served;                 /* requests finished */
    int nmin;                   /* minutes in the run */
    double *min_p95;            /* per minute: p95 queue wait (seconds) */
    int nseries;                /* samples in the replica series */
    int *series;                /* pods every SS_SERIES_STEP seconds */
    int fixed_n;                /* SS_FIXED: fleet size used */
    int level_n[SC_LEVELS];     /* requests scored low / medium / high */
} ss_stats;

/* Simulation settings (flags). */
typedef struct ss_config {
    const char *trace_path;     /* --trace */
    const char *policy_path;    /* --policy, NULL = seed policy */
    const char *svg_path;       /* --svg */
    const char *model;          /* --model: name scored and weighted */
    double slo;                 /* --slo seconds of p95 queue wait per minute */
    double minutes;             /* --minutes: replay only this much of the trace (0 = all) */
    int parallel;               /* --parallel slots per pod */
    double prefill_tps;         /* --prefill-tps per slot at weight 1.0 */
    double decode_tps;          /* --decode-tps per slot at weight 1.0 */
    double cold_start;          /* --cold-start seconds from scale-up to ready */
    int fixed;                  /* --fixed fleet size, 0 = the policy's maxReplicas */
    double cpu_target;          /* --cpu-target fraction */
    double thrash_window;       /* --thrash-window seconds */
    double words_per_token;     /* --words-per-token for the synthetic bodies */
    double dt;                  /* --dt simulation step */
} ss_config;

/* Load "TIMESTAMP,ContextTokens,GeneratedTokens" rows (header optional, CRLF fine), keeping the
 * first minutes (0 = all); times become seconds since the first row.  0, or -1 with a message
 * on stderr. */
int ss_trace_load(ss_trace *tr, const char *path, double minutes);

/* Run one strategy over the trace; fills st (allocates its arrays). 0, or -1 on OOM. */
int ss_run(const ss_config *c, const sc_policy *p, const ss_trace *tr, ss_kind kind,
           int fixed_n, ss_stats *st);
void ss_stats_free(ss_stats *st);

/* The results table on out; fixed_ok is the smallest fixed fleet meeting the SLO (or -1). */
void ss_print_table(FILE *out, const ss_config *c, const sc_policy *p, const ss_trace *tr,
                    const ss_stats *st, int n, int fixed_ok);

/* Draw request rate, p95 queue wait and replicas per strategy over time.  0, or -1 with errno. */
int ss_write_svg(const char *path, const ss_config *c, const ss_trace *tr,
                 const ss_stats *st, int n);

/* Percentile q (0..1) of v[0..n) (sorts v); 0 when n == 0. */
double ss_percentile(double *v, int n, double q);

#define SS_ATTRIBUTION "Trace: Azure LLM inference trace 2023 (code), CC-BY 4.0; Patel et al., " \
    "\"Splitwise: Efficient generative LLM inference using phase splitting\", ISCA 2024."

#endif
