/* sc_internal.h — what the files of scoring/ share and nobody else needs: the body scanner,
 * the keyword set, the history table and every tuning constant of the formula (one place).
 * The formula itself and the reason for each weight are in scoring/README.md. */
#ifndef SC_INTERNAL_H
#define SC_INTERNAL_H

#include "scoring/scoring.h"

/* ---- scanner limits ---- */
#define SC_JSON_DEPTH_MAX 1000      /* nesting deeper than this = invalid body (Go allows 10000) */
#define SC_KEY_MAX 32               /* object keys longer than this are never ones we look at */
#define SC_KW_LEN_MAX 32            /* bytes of one keyword, NUL included (as in sc_policy) */
#define SC_KW_TOTAL (3 + SC_KEYWORDS_MAX) /* built-in keywords + the policy's */
#define SC_TOKEN_MAX 40             /* letters of a token kept for keyword matching */
#define SC_NUM_COPY_MAX 64          /* number literals up to this length are converted exactly */
#define SC_NUM_DIGITS 20            /* significant digits kept of a longer literal */
#define SC_EXP_SATURATE 100000L     /* exponent digits stop counting here (the value is 0 or inf) */
#define SC_ROLE_MAX 16              /* bytes of a message "role" kept */
#define SC_SWAR_FIRSTS_MAX 8        /* distinct keyword first letters the 8-byte path tests */

/* ---- static formula (see README "Score formula") ---- */
#define SC_HIST_WORD_W 0.5          /* an earlier message's word counts half a current word */
#define SC_HIST_MSG_W 2.0           /* each earlier message adds its chat-template overhead */
#define SC_CTX_TOKEN_W 0.4          /* a "context" token ~ 0.75 word, counted at history weight */
#define SC_EMBED_FACTOR 0.25        /* embeddings: prompt processing only, no generation */
#define SC_KW_FIRST 40.0            /* first keyword hit */
#define SC_KW_EACH 5.0              /* each further hit ... */
#define SC_KW_MAX_HITS 3            /* ... up to this many hits */
#define SC_NUM_CTX_BASE 4096.0      /* Ollama's default context; larger windows cost memory */
#define SC_NUM_CTX_PTS 5.0          /* per doubling of num_ctx above the base */
#define SC_NUM_CTX_CAP 15.0
#define SC_PREDICT_BASE 256.0       /* output budget that costs nothing extra */
#define SC_PREDICT_PTS 5.0          /* per doubling above it */
#define SC_PREDICT_CAP 20.0
#define SC_IMAGE_PTS 15.0           /* per image (vision encoder pass) */
#define SC_IMAGE_CAP 45.0
#define SC_IMAGE_MIB_PTS 2.0        /* per MiB of base64 image data */
#define SC_IMAGE_MIB_CAP 10.0
#define SC_TOOL_PTS 3.0             /* per tool definition */
#define SC_TOOL_CAP 15.0
#define SC_SCHEMA_PTS 5.0           /* format / response_format JSON schema */
#define SC_THINK_PTS 15.0           /* think / reasoning_effort */

/* ---- history blend (see README "Learning from history") ---- */
#define SC_HISTORY_MAX 64           /* (model, class) entries kept; least recently observed evicted */
#define SC_HISTORY_HALF_LIFE_S 600.0 /* an observation's weight halves every 10 minutes */
#define SC_HISTORY_BOUND 15.0       /* the blend moves a score by less than this many points */
#define SC_HISTORY_CONF_K 4.0       /* confidence n/(n+K): 4 fresh observations = half weight */
#define SC_HISTORY_REF_S 4.0        /* estimated duration that neither raises nor lowers */
#define SC_HISTORY_SPAN 4.0         /* doublings from REF to the full bound (0.25 s .. 64 s) */
#define SC_HISTORY_PROMPT_FRAC 0.1  /* a prompt token costs ~1/10 of an output token */
#define SC_TOKENS_PER_WORD 1.3      /* rough tokenizer ratio for English text */
#define SC_TOKENS_PER_IMAGE 576.0   /* typical vision-encoder tokens per image */
#define SC_HISTORY_MAX_SECONDS 86400.0 /* observations longer than a day are clamped */

/* Keywords, lower case, sorted by first byte with an index range per first byte. */
typedef struct sc_kwset {
    char kw[SC_KW_TOTAL][SC_KW_LEN_MAX]; /* keywords, lower case ASCII letters/digits */
    uint8_t len[SC_KW_TOTAL];        /* their lengths */
    int n;                           /* entries used */
    uint8_t first_lo[256];           /* first index of keywords starting with a byte */
    uint8_t first_hi[256];           /* one past the last (lo == hi: none) */
    uint8_t firsts[SC_SWAR_FIRSTS_MAX]; /* distinct first bytes, for the 8-byte text path */
    int nfirsts;                     /* entries in firsts; -1 = too many, byte path only */
} sc_kwset;

/* Build the set from the built-in keywords plus the policy's (duplicates dropped). */
void sc_kwset_build(sc_kwset *k, const sc_policy *p);

/* 1 when the lower-case token t[0..n) is a keyword or an inflection of one. */
int sc_kwset_match(const sc_kwset *k, const char *t, size_t n);

/* Extract the features and the model name of a body.  Never fails: an invalid body leaves
 * f zeroed with json_ok 0 and model "".  No allocation; linear in len. */
void sc_extract(const sc_kwset *k, const char *body, size_t len, sc_features *f,
                char *model, size_t modellen);

/* The static score before rounding (0..100) of features f for endpoint ep and model weight. */
double sc_static_raw(const sc_features *f, sc_endpoint ep, double weight);

/* One history entry: decayed sums for a (model, class) pair. */
typedef struct sc_hist {
    char model[SC_MODEL_MAX];   /* model name ("" = free slot) */
    int cls;                    /* 0 generation (generate/chat/completions), 1 embeddings */
    double t;                   /* time the sums were last decayed to */
    double n;                   /* decayed observation count */
    double sec;                 /* decayed seconds of all observations */
    double n_tok;               /* decayed count of observations with token counts */
    double sec_tok;             /* decayed seconds of those */
    double work;                /* decayed PROMPT_FRAC*prompt + output tokens of those */
    double out;                 /* decayed output tokens of those */
} sc_hist;

typedef struct sc_history {
    sc_hist e[SC_HISTORY_MAX];  /* the table; linear scan (64 strcmp < 1 us) */
} sc_history;

/* Record one finished request (see sc_history_observe). */
void sc_hist_observe(sc_history *h, const char *model, int cls, double seconds,
                     long prompt_tokens, long output_tokens, double now);

/* The bounded adjustment (-BOUND..BOUND) for a request of model/cls with features f at now;
 * 0 with no history.  Pure: does not modify h. */
double sc_hist_adjust(const sc_history *h, const char *model, int cls, const sc_features *f,
                      double now);

/* History class of an endpoint: 1 for the embedding APIs, else 0. */
int sc_hist_class(sc_endpoint ep);

#endif
