/* mx_internal.h — the registry's state, shared by mx_registry.c (updates) and mx_render.c
 * (scrape-time formatting).  Not part of the public API; nothing outside metrics/ includes it. */
#ifndef MX_INTERNAL_H
#define MX_INTERNAL_H

#include <stdint.h>
#include "metrics/metrics.h"

#define MX_BUCKETS_MAX 16               /* finite buckets of the widest histogram */
#define MX_VERSION_MAX 64               /* bytes of the build_info version label kept */

/* One histogram: per-bucket (non-cumulative) counts; rendering makes them cumulative. */
typedef struct mx_hist {
    const double *le;                   /* finite upper bounds, ascending */
    int n;                              /* number of finite bounds */
    uint64_t bucket[MX_BUCKETS_MAX + 1]; /* [i] = observations in (le[i-1], le[i]]; [n] = above */
    double sum;                         /* sum of observations */
    uint64_t count;                     /* number of observations */
} mx_hist;

/* The whole registry: fixed-size arrays only, so updates never allocate. */
typedef struct mx_state {
    double wall_start;                  /* Unix time the process started */
    char version[MX_VERSION_MAX];       /* build_info version label */

    int active;                         /* litebrain_active_requests */
    int waiting;                        /* litebrain_waiting_requests */

    /* litebrain_complexity_score (see mx_complexity in mx_registry.c for the formula) */
    double half_life;                   /* seconds */
    double cx_sum;                      /* decayed sum of scores as of cx_t */
    double cx_weight;                   /* decayed number of scores as of cx_t */
    double cx_t;                        /* time of the last score (monotonic s) */
    double idle_since;                  /* when cx_active last fell to 0 (monotonic s) */
    int cx_active;                      /* scored requests in flight (mx_cx_hold) */

    /* litebrain_requests_total{complexity,status}: a small table of observed codes */
    int status_code[MX_STATUS_MAX];     /* codes in order of first sight */
    int n_status;                       /* codes in use */
    uint64_t requests[MX_CX_COUNT][MX_STATUS_MAX + MX_STATUS_CLASSES]; /* [cx][slot]; slots from
                                        MX_STATUS_MAX on: "other", "1xx" ... "5xx" */

    mx_hist duration[MX_CX_COUNT];      /* litebrain_request_duration_seconds{complexity} */
    mx_hist ttft;                       /* litebrain_time_to_first_token_seconds */
    mx_hist tpot;                       /* litebrain_time_per_output_token_seconds */
    mx_hist score;                      /* litebrain_request_complexity */

    /* token counters by model: MX_MODELS_MAX names, slot MX_MODELS_MAX is "other" */
    char model[MX_MODELS_MAX][MX_MODEL_NAME_MAX]; /* model label values, first-seen order */
    int n_models;                       /* names in use */
    uint64_t prompt_tokens[MX_MODELS_MAX + 1];    /* litebrain_prompt_tokens_total */
    uint64_t output_tokens[MX_MODELS_MAX + 1];    /* litebrain_output_tokens_total */

    uint64_t upstream_errors[MX_UPERR_COUNT]; /* litebrain_upstream_errors_total{reason} */
    uint64_t hints_dropped;             /* litebrain_scale_hints_dropped_total */

    mx_collect_fn collect;              /* extra families appended at scrape time */
    void *collect_ud;                   /* its user data */
} mx_state;

extern mx_state mx_g;                   /* the one registry (loop thread only) */

extern const char *const mx_cx_name[MX_CX_COUNT];       /* "none", "low", ... */
extern const char *const mx_uperr_name[MX_UPERR_COUNT]; /* "connect", "reset", ... */

#endif
