/* scoring.h — complexity scoring of LLM request bodies, the scaling policy, and per-model
 * history.  The whole public API of scoring/.  Loop-thread only except where noted: the policy
 * is immutable after load and may be read from any thread. */
#ifndef SC_SCORING_H
#define SC_SCORING_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SC_MODEL_MAX 128        /* longest model name kept (longer names are truncated) */
#define SC_KEYWORDS_MAX 64      /* policy keywords accepted */
#define SC_WEIGHTS_MAX 64       /* policy modelResourceWeights entries accepted */
#define SC_QTY_MAX 32           /* longest Kubernetes quantity string ("12Gi", "1500m") */
#define SC_QTY_LIMIT 0x1p62     /* quantities must stay below this many millicores or bytes */
#define SC_QTY_EXP_MAX 300      /* largest decimal exponent read in a quantity ("1e300") */
#define SC_WINDOW_EVALS_MAX 1000 /* evaluations a stabilization window may span (the controller
                                    keeps that many recommendations, and a few more) */

typedef enum {
    SC_LEVEL_NONE = -1,         /* request not scored */
    SC_LEVEL_LOW = 0,
    SC_LEVEL_MEDIUM = 1,
    SC_LEVEL_HIGH = 2,
} sc_level;
#define SC_LEVELS 3

/* Which scored API a request targets; SC_EP_NONE for everything that is not scored. */
typedef enum {
    SC_EP_NONE = 0,
    SC_EP_GENERATE,             /* POST /api/generate */
    SC_EP_CHAT,                 /* POST /api/chat */
    SC_EP_EMBED,                /* POST /api/embed */
    SC_EP_EMBEDDINGS,           /* POST /api/embeddings */
    SC_EP_OAI_CHAT,             /* POST /v1/chat/completions */
    SC_EP_OAI_COMPLETIONS,      /* POST /v1/completions */
    SC_EP_OAI_EMBEDDINGS,       /* POST /v1/embeddings */
} sc_endpoint;

typedef struct sc_weight {
    char prefix[SC_MODEL_MAX];  /* model-name prefix from modelResourceWeights */
    double weight;              /* its weight (> 0) */
} sc_weight;

typedef struct sc_resource {
    char cpu[SC_QTY_MAX];       /* Kubernetes quantity, e.g. "4" or "1500m" */
    char memory[SC_QTY_MAX];    /* Kubernetes quantity, e.g. "12Gi" */
} sc_resource;

/* The scaling policy: the seed's keys plus our optional extensions (DESIGN §6).  Plain data,
 * no pointers, so it can be copied to the controller thread. */
typedef struct sc_policy {
    double thresholds[SC_LEVELS];       /* complexityThresholds low/medium/high, 0..100, ascending */
    sc_weight weights[SC_WEIGHTS_MAX];  /* modelResourceWeights */
    int nweights;                       /* entries used in weights */
    double scale_up[SC_LEVELS];         /* scaleUpFactors low/medium/high, each >= 1 */
    int min_replicas;                   /* minReplicas (default 1) */
    int max_replicas;                   /* maxReplicas (default 10) */
    double up_window_s;                 /* scaleUpStabilizationSeconds (default 60) */
    double down_window_s;               /* scaleDownStabilizationSeconds (default 300) */
    double eval_interval_s;             /* evaluationIntervalSeconds (default 15) */
    double scale_up_score;              /* scaleUpScore (default 70) */
    int has_resources;                  /* 1 when "resources" was given (in-place resize on) */
    sc_resource resources[SC_LEVELS];   /* resources low/medium/high */
    char keywords[SC_KEYWORDS_MAX][32]; /* extra keywords ("keywords"), lower case */
    int nkeywords;                      /* entries used in keywords */
    double half_life_s;                 /* complexityHalfLifeSeconds: decay of the score gauge */
} sc_policy;

/* Fill p with the seed policy and every extension's default. */
void sc_policy_default(sc_policy *p);

/* Parse and validate a policy document.  Returns 0 and fills p, or -1 and writes one line
 * "policy: <json.path>: <problem>" into err.  p is left with defaults on error. */
int sc_policy_parse(sc_policy *p, const char *json, size_t len, char *err, size_t errlen);

/* Read a file and sc_policy_parse it; a missing/unreadable file is an error with its path. */
int sc_policy_load(sc_policy *p, const char *path, char *err, size_t errlen);

/* Write the effective policy as pretty JSON (what --check-policy prints). */
void sc_policy_print(const sc_policy *p, FILE *out);

/* Weight of a model: longest prefix match in modelResourceWeights, default 1.0. */
double sc_policy_weight(const sc_policy *p, const char *model);

/* The value of a Kubernetes quantity in its base unit (cores, bytes): an optional '+', digits
 * with an optional fraction, then nothing, a decimal suffix (n u m k M G T P E), a binary one
 * (Ki Mi Gi Ti Pi Ei) or a decimal exponent ("1e3"); -1 when q is not one.  The policy and the
 * controller read quantities with this one function, so what one accepts the other can use. */
double sc_quantity(const char *q);

/* Level of a score: the threshold nearest to it, ties going up. */
sc_level sc_level_of(const sc_policy *p, int score);

/* "low", "medium", "high" or "none". */
const char *sc_level_name(sc_level l);

/* Endpoint for a request (path is the upstream path, aliases already applied, no query). */
sc_endpoint sc_endpoint_of(const char *method, const char *path, size_t pathlen);

/* Features extracted from one body; every count saturates instead of overflowing. */
typedef struct sc_features {
    uint32_t words;             /* words in prompt/system/suffix/input and the last message */
    uint32_t history_msgs;      /* earlier messages (all but the last) */
    uint32_t history_words;     /* words in earlier messages */
    uint32_t keyword_hits;      /* keyword occurrences (whole words + inflections) */
    uint32_t context_tokens;    /* length of the "context" token array */
    uint32_t num_ctx;           /* options.num_ctx */
    uint32_t num_predict;       /* num_predict / max_tokens / max_completion_tokens */
    uint32_t images;            /* image count */
    uint64_t image_bytes;       /* base64 bytes of images */
    uint32_t tools;             /* tools offered */
    int format_schema;          /* 1 when "format"/"response_format" is a JSON schema */
    int think;                  /* 1 when thinking was requested */
    int json_ok;                /* 1 when the body parsed as a JSON object */
} sc_features;

typedef struct sc_result {
    int score;                  /* 0..100 */
    sc_level level;             /* level of score */
    int static_score;           /* score before the history blend */
    double weight;              /* model weight from the policy */
    char model[SC_MODEL_MAX];   /* "model" field, "" when absent */
    sc_features f;              /* what the score was computed from */
} sc_result;

typedef struct sc_scorer sc_scorer;

/* A scorer with its own copy of the policy and an empty history.  NULL on OOM. */
sc_scorer *sc_scorer_new(const sc_policy *p);
void sc_scorer_free(sc_scorer *s);

/* Score a body for endpoint ep (ep != SC_EP_NONE).  Never fails: a body that is not a JSON
 * object scores 0 (level low, json_ok 0).  now is monotonic seconds (for history ageing).
 * Deterministic: same body + same history = same result.  Linear in len. */
void sc_score(sc_scorer *s, sc_endpoint ep, const char *body, size_t len, double now,
              sc_result *out);

/* Teach the history what a finished request of model really cost: wall seconds from start to
 * last byte, prompt and output tokens (-1 when unknown).  Ignored for an empty model. */
void sc_history_observe(sc_scorer *s, const char *model, sc_endpoint ep, double seconds,
                        long prompt_tokens, long output_tokens, double now);

#endif
