/* px_glue.c — wires the request-lifecycle hooks to scoring/, metrics/ and k8s/.  The relay
 * code knows none of them; this file is the only place that does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "proxy/proxy.h"
#include "proxy/px_int.h"
#include "scoring/scoring.h"
#include "metrics/metrics.h"
#include "k8s/k8s.h"

/* Per-request state of the glue (the hooks' hook_data). */
typedef struct glue_req {
    sc_endpoint ep;             /* scored endpoint, SC_EP_NONE when not scored */
    sc_result res;              /* score, level, model, weight */
    mx_usage usage;             /* token counts read from the streamed answer */
    int waiting;                /* counted in the waiting-for-first-byte gauge */
    int streamed;               /* NDJSON or SSE response */
    int first_seen;             /* first body byte observed */
} glue_req;

static sc_scorer *g_scorer;     /* loop-thread scorer with its history */
static int g_hints;             /* controller running: post hints */
static glue_req *g_pool[PX_REQ_POOL_MAX]; /* finished glue_req kept for reuse (loop thread) */
static int g_pool_n;            /* how many */

/* A zeroed glue_req, from the pool when it has one (why: calloc and free were ~1.5 % of a
 * small request); NULL when memory ran out. */
static glue_req *glue_get(void)
{
    if (g_pool_n > 0) {
        glue_req *g = g_pool[--g_pool_n];
        memset(g, 0, sizeof *g);
        return g;
    }
    return calloc(1, sizeof(glue_req));
}

/* Pool g or free it (no pooling under ASan: PX_POOLING). */
static void glue_put(glue_req *g)
{
    if (PX_POOLING && g_pool_n < PX_REQ_POOL_MAX) {
        g_pool[g_pool_n++] = g;
        return;
    }
    free(g);
}

static mx_cx cx_of(const glue_req *g)
{
    if (!g || g->ep == SC_EP_NONE)
        return MX_CX_NONE;
    return (mx_cx)(MX_CX_LOW + (int)g->res.level);
}

/* Post a hint; a full queue is counted, never waited on. */
static void hint(k8s_hint_kind kind, const glue_req *g, const px_req_view *v, double now)
{
    k8s_hint h;

    if (!g_hints)
        return;
    memset(&h, 0, sizeof h);
    h.kind = kind;
    h.now = now;
    h.score = g && g->ep != SC_EP_NONE ? g->res.score : -1;
    h.level = g && g->ep != SC_EP_NONE ? g->res.level : SC_LEVEL_NONE;
    h.weight = g && g->ep != SC_EP_NONE ? g->res.weight : 1.0;
    h.prompt_tokens = h.output_tokens = -1;
    if (v && kind == K8S_HINT_FINISH) {
        h.seconds = v->t_end - v->t_start;
        h.status = v->status;
        if (g) {
            h.prompt_tokens = g->usage.prompt_tokens;
            h.output_tokens = g->usage.output_tokens;
        }
    }
    h.active = mx_active();
    h.waiting = mx_waiting();
    h.complexity = mx_complexity(now);
    if (k8s_hint_post(&h) < 0)
        mx_hint_dropped();
}

/* "X-LiteBrain-Complexity: S\r\nX-LiteBrain-Level: L\r\n" into extra (cap bytes, NUL
 * included; left empty when it does not fit).  By hand: snprintf was ~2 % of a request. */
static void glue_extra(char *extra, size_t cap, int score, const char *level)
{
    static const char a[] = "X-LiteBrain-Complexity: ", b[] = "\r\nX-LiteBrain-Level: ";
    char num[PX_UINT_DIGITS], *p;
    size_t nl = px_utoa(num, score < 0 ? 0u : (unsigned)score), ll = strlen(level);

    if ((sizeof a - 1) + nl + (sizeof b - 1) + ll + 3 > cap) {     /* 3: CRLF and the NUL */
        if (cap)
            extra[0] = '\0';
        return;
    }
    p = mempcpy(extra, a, sizeof a - 1);
    p = mempcpy(p, num, nl);
    p = mempcpy(p, b, sizeof b - 1);
    p = mempcpy(p, level, ll);
    memcpy(p, "\r\n", 3);
}

static void on_request(void *ud, void **hd, const px_req_view *v, const char *body, size_t len,
                       char *extra, size_t cap)
{
    glue_req *g = glue_get();
    double now = px_now();
    (void)ud;

    *hd = g;
    mx_active_add(1);
    mx_waiting_add(1);
    if (!g)
        return;                                 /* counted, just not scored */
    g->waiting = 1;
    mx_usage_init(&g->usage);
    g->ep = sc_endpoint_of(v->method, v->path, strlen(v->path));
    if (g->ep != SC_EP_NONE) {
        sc_score(g_scorer, g->ep, body, len, now, &g->res);
        glue_extra(extra, cap, g->res.score, sc_level_name(g->res.level));
        mx_score_observe(g->res.score, now);
        mx_cx_hold(1);
    }
    hint(K8S_HINT_START, g, v, now);
}

static void on_head(void *ud, void **hd, const px_req_view *v)
{
    glue_req *g = *hd;
    (void)ud;

    if (g && g->waiting) {
        mx_waiting_add(-1);
        g->waiting = 0;
    }
    if (g)
        g->streamed = strncmp(v->content_type, "application/x-ndjson", 20) == 0 ||
                      strncmp(v->content_type, "text/event-stream", 17) == 0;
}

static void on_body(void *ud, void **hd, const px_req_view *v, const char *p, size_t n)
{
    glue_req *g = *hd;
    (void)ud;

    if (!g)
        return;
    if (!g->first_seen) {
        g->first_seen = 1;
        if (g->streamed && g->ep != SC_EP_NONE)     /* a model pull's progress is no token */
            mx_ttft_observe(v->t_first_byte - v->t_start);
    }
    if (g->ep == SC_EP_NONE || v->status != 200)
        return;
    if (v->bytes_out == n && v->resp_length == (int64_t)n)
        mx_usage_whole(&g->usage, p, n);        /* the whole answer at once: read from its end */
    else
        mx_usage_feed(&g->usage, p, n);
}

static mx_uperr uperr_of(px_end e)
{
    switch (e) {
    case PX_END_UPSTREAM_CONNECT: return MX_UPERR_CONNECT;
    case PX_END_UPSTREAM_RESET: return MX_UPERR_RESET;
    case PX_END_UPSTREAM_BROKEN: return MX_UPERR_BROKEN;
    case PX_END_UPSTREAM_TIMEOUT: return MX_UPERR_TIMEOUT;
    default: return MX_UPERR_PROTOCOL;
    }
}

static void on_finish(void *ud, void **hd, const px_req_view *v)
{
    glue_req *g = *hd;
    double secs = v->t_end - v->t_start;
    (void)ud;

    if (v->end >= PX_END_UPSTREAM_CONNECT && v->end <= PX_END_UPSTREAM_PROTOCOL)
        mx_upstream_error(uperr_of(v->end));
    mx_request_done(cx_of(g), v->status, secs);
    if (v->t_sent == 0) {                       /* answered by the proxy before forwarding */
        hint(K8S_HINT_FINISH, NULL, v, v->t_end);
        return;
    }
    mx_active_add(-1);
    if (!g) {
        mx_waiting_add(-1);
        return;
    }
    if (g->ep != SC_EP_NONE)
        mx_cx_hold(-1);
    if (g->waiting)
        mx_waiting_add(-1);
    if (g->ep != SC_EP_NONE && v->status == 200 && v->end == PX_END_OK) {
        mx_usage_finish(&g->usage);
        if (g->usage.prompt_tokens >= 0 || g->usage.output_tokens >= 0)
            mx_tokens_add(g->res.model,
                          g->usage.prompt_tokens > 0 ? (uint64_t)g->usage.prompt_tokens : 0,
                          g->usage.output_tokens > 0 ? (uint64_t)g->usage.output_tokens : 0);
        /* why streamed only, without eval_duration (OpenAI bodies): a whole answer arrives at
         * once, so its first-to-last-byte time says nothing about the tokens' pace */
        if (g->usage.output_tokens > 0 && g->usage.eval_duration_ns > 0)
            mx_tpot_observe((double)g->usage.eval_duration_ns / 1e9 / (double)g->usage.output_tokens);
        else if (g->usage.output_tokens > 0 && g->streamed)
            mx_tpot_observe((v->t_end - v->t_first_byte) / (double)g->usage.output_tokens);
        sc_history_observe(g_scorer, g->res.model, g->ep, secs, g->usage.prompt_tokens,
                           g->usage.output_tokens, v->t_end);
    }
    hint(K8S_HINT_FINISH, g, v, v->t_end);
    glue_put(g);
    *hd = NULL;
}

static void on_tick(void *ud, double now)
{
    (void)ud;
    hint(K8S_HINT_TICK, NULL, NULL, now);
}

/* Fill hooks and build the scorer from policy; hints flow only once k8s_start succeeded
 * (px_glue_hints).  -1 on OOM. */
int px_glue_init(px_hooks *hooks, const struct sc_policy *policy)
{
    memset(hooks, 0, sizeof *hooks);
    g_scorer = sc_scorer_new(policy);
    if (!g_scorer)
        return -1;
    mx_set_half_life(policy->half_life_s);
    hooks->on_request = on_request;
    hooks->on_head = on_head;
    hooks->on_body = on_body;
    hooks->on_finish = on_finish;
    hooks->on_tick = on_tick;
    return 0;
}

/* Start posting hints to the controller thread. */
void px_glue_hints(int on) { g_hints = on; }

void px_glue_free(void)
{
    sc_scorer_free(g_scorer);
    g_scorer = NULL;
    while (g_pool_n > 0)
        free(g_pool[--g_pool_n]);
}
