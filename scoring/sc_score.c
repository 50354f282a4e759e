/* sc_score.c — keywords, the static formula, the scorer object and the history blend.
 * Every constant is in sc_internal.h; the reasoning behind them is in scoring/README.md. */
#include "scoring/sc_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct sc_scorer {
    sc_policy policy;           /* private copy of the policy */
    sc_kwset kw;                /* built-in + policy keywords */
    sc_history hist;            /* per-model history */
};

static const char *const sc_builtin_keywords[] = { "architecture", "design", "refactor" };

/* ---- keywords ---- */

void sc_kwset_build(sc_kwset *k, const sc_policy *p)
{
    memset(k, 0, sizeof *k);
    const int nb = (int)(sizeof sc_builtin_keywords / sizeof sc_builtin_keywords[0]);
    for (int i = 0; i < nb + (p ? p->nkeywords : 0); i++) {
        const char *w = i < nb ? sc_builtin_keywords[i] : p->keywords[i - nb];
        size_t n = strnlen(w, SC_KW_LEN_MAX - 1);
        int dup = n == 0;
        for (int j = 0; j < k->n && !dup; j++) dup = strcmp(k->kw[j], w) == 0;
        if (dup || k->n == SC_KW_TOTAL) continue;
        /* insertion sort by first byte keeps each first byte's keywords contiguous */
        int at = k->n;
        while (at > 0 && (uint8_t)k->kw[at - 1][0] > (uint8_t)w[0]) {
            memcpy(k->kw[at], k->kw[at - 1], SC_KW_LEN_MAX);
            k->len[at] = k->len[at - 1];
            at--;
        }
        memcpy(k->kw[at], w, n);
        k->kw[at][n] = '\0';
        k->len[at] = (uint8_t)n;
        k->n++;
    }
    for (int i = k->n - 1; i >= 0; i--) {
        uint8_t c = (uint8_t)k->kw[i][0];
        if (k->first_hi[c] == 0) {
            k->first_hi[c] = (uint8_t)(i + 1);
            if (k->nfirsts >= 0 && k->nfirsts < SC_SWAR_FIRSTS_MAX) k->firsts[k->nfirsts++] = c;
            else k->nfirsts = -1;
        }
        k->first_lo[c] = (uint8_t)i;
    }
}

/* 1 when s[0..n) is one of the NULL-terminated list. */
static int in_list(const char *s, size_t n, const char *const *list)
{
    for (; *list; list++)
        if (strlen(*list) == n && memcmp(*list, s, n) == 0) return 1;
    return 0;
}

static int is_vowel(char c)
{
    return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u';
}

int sc_kwset_match(const sc_kwset *k, const char *t, size_t n)
{
    /* inflections: design → designs, designed, designing, designer(s); architecture →
     * architectures, architectural(ly), architected; plan → planned; query → queries */
    static const char *const full[] = { "", "s", "es", "ed", "ing", "ings", "er", "ers", "al", NULL };
    static const char *const drop_e[] = { "ed", "es", "ing", "ings", "er", "ers", "al", "ally", NULL };
    static const char *const doubled[] = { "ed", "ing", "ings", "er", "ers", NULL };
    static const char *const drop_y[] = { "ies", "ied", NULL };
    if (n == 0) return 0;
    uint8_t c = (uint8_t)t[0];
    for (int i = k->first_lo[c]; i < k->first_hi[c]; i++) {
        const char *w = k->kw[i];
        size_t m = k->len[i];
        if (n > m + 5 || n + 1 < m || (m > 2 && n > 1 && t[1] != w[1])) continue; /* cheap rejects */
        if (n >= m && memcmp(t, w, m) == 0) {
            if (in_list(t + m, n - m, full)) return 1;
            if (n > m && t[m] == w[m - 1] && !is_vowel(w[m - 1]) && in_list(t + m + 1, n - m - 1, doubled))
                return 1;
        }
        if (m >= 2 && n >= m - 1 && memcmp(t, w, m - 1) == 0) {
            if (w[m - 1] == 'e' && in_list(t + m - 1, n - m + 1, drop_e)) return 1;
            if (w[m - 1] == 'y' && !is_vowel(w[m - 2]) && in_list(t + m - 1, n - m + 1, drop_y)) return 1;
        }
    }
    return 0;
}

/* ---- the static formula ---- */

/* Text points from effective words: piecewise linear through (0,0) (100,30) (300,80)
 * (1000,95) (4000,100), flat after. */
static double text_points(double w)
{
    static const double x[] = { 0, 100, 300, 1000, 4000 };
    static const double y[] = { 0, 30, 80, 95, 100 };
    if (w <= 0) return 0;
    for (int i = 1; i < 5; i++)
        if (w <= x[i]) return y[i - 1] + (w - x[i - 1]) * (y[i] - y[i - 1]) / (x[i] - x[i - 1]);
    return 100;
}

/* pts per doubling of v above base, capped. */
static double doublings(double v, double base, double pts, double cap)
{
    if (v <= base) return 0;
    double d = pts * log2(v / base);
    return d > cap ? cap : d;
}

static double capped(double v, double cap)
{
    return v > cap ? cap : v;
}

static int is_embedding(sc_endpoint ep)
{
    return ep == SC_EP_EMBED || ep == SC_EP_EMBEDDINGS || ep == SC_EP_OAI_EMBEDDINGS;
}

double sc_static_raw(const sc_features *f, sc_endpoint ep, double weight)
{
    if (!f->json_ok) return 0;
    double eff = f->words + SC_HIST_WORD_W * f->history_words + SC_HIST_MSG_W * f->history_msgs
               + SC_CTX_TOKEN_W * f->context_tokens;
    double pts;
    if (is_embedding(ep)) {
        pts = text_points(SC_EMBED_FACTOR * eff);  /* no generation: the rest does not apply */
    } else {
        uint32_t hits = f->keyword_hits < SC_KW_MAX_HITS ? f->keyword_hits : SC_KW_MAX_HITS;
        pts = text_points(eff);
        if (hits) pts += SC_KW_FIRST + SC_KW_EACH * (hits - 1);
        pts += doublings(f->num_ctx, SC_NUM_CTX_BASE, SC_NUM_CTX_PTS, SC_NUM_CTX_CAP);
        pts += doublings(f->num_predict, SC_PREDICT_BASE, SC_PREDICT_PTS, SC_PREDICT_CAP);
        pts += capped(SC_IMAGE_PTS * f->images, SC_IMAGE_CAP);
        pts += capped(SC_IMAGE_MIB_PTS * ((double)f->image_bytes / (1024.0 * 1024.0)), SC_IMAGE_MIB_CAP);
        pts += capped(SC_TOOL_PTS * f->tools, SC_TOOL_CAP);
        pts += f->format_schema ? SC_SCHEMA_PTS : 0;
        pts += f->think ? SC_THINK_PTS : 0;
    }
    pts *= weight > 0 ? weight : 1.0;
    return pts > 100 ? 100 : pts;
}

/* ---- history ---- */

int sc_hist_class(sc_endpoint ep)
{
    return is_embedding(ep) ? 1 : 0;
}

static double decay(double t_then, double now)
{
    double age = now - t_then;
    return age > 0 ? exp2(-age / SC_HISTORY_HALF_LIFE_S) : 1.0;  /* clocks never run back */
}

static sc_hist *hist_find(const sc_history *h, const char *model, int cls)
{
    for (int i = 0; i < SC_HISTORY_MAX; i++)
        if (h->e[i].model[0] && h->e[i].cls == cls && strcmp(h->e[i].model, model) == 0)
            return (sc_hist *)&h->e[i];
    return NULL;
}

void sc_hist_observe(sc_history *h, const char *model, int cls, double seconds,
                     long prompt_tokens, long output_tokens, double now)
{
    if (!model || !model[0] || !(seconds >= 0) || !isfinite(now)) return;
    if (seconds > SC_HISTORY_MAX_SECONDS) seconds = SC_HISTORY_MAX_SECONDS;
    sc_hist *e = hist_find(h, model, cls);
    if (!e) {           /* a free slot, else the entry observed least recently */
        e = &h->e[0];
        for (int i = 0; i < SC_HISTORY_MAX; i++) {
            if (!h->e[i].model[0]) { e = &h->e[i]; break; }
            if (h->e[i].t < e->t) e = &h->e[i];
        }
        memset(e, 0, sizeof *e);
        snprintf(e->model, sizeof e->model, "%s", model);
        e->cls = cls;
        e->t = now;
    }
    double f = decay(e->t, now);
    e->n *= f;
    e->sec *= f;
    e->n_tok *= f;
    e->sec_tok *= f;
    e->work *= f;
    e->out *= f;
    if (now > e->t) e->t = now;
    e->n += 1;
    e->sec += seconds;
    double work = SC_HISTORY_PROMPT_FRAC * (double)prompt_tokens + (double)output_tokens;
    if (prompt_tokens >= 0 && output_tokens >= 0 && work > 0) {
        e->n_tok += 1;
        e->sec_tok += seconds;
        e->work += work;
        e->out += (double)output_tokens;
    }
}

double sc_hist_adjust(const sc_history *h, const char *model, int cls, const sc_features *f,
                      double now)
{
    if (!model || !model[0] || !f->json_ok) return 0;
    const sc_hist *e = hist_find(h, model, cls);
    if (!e || e->n <= 0) return 0;
    double n = e->n * decay(e->t, now);
    double est;         /* estimated seconds for this request */
    if (e->n_tok > 0 && e->work > 0) {
        double rate = e->sec_tok / e->work;             /* seconds per work unit */
        double out = e->out / e->n_tok;                 /* typical output tokens */
        double in = SC_TOKENS_PER_WORD * ((double)f->words + f->history_words)
                  + f->context_tokens + SC_TOKENS_PER_IMAGE * f->images;
        est = rate * (SC_HISTORY_PROMPT_FRAC * in + out);
    } else {
        est = e->sec / e->n;
    }
    double x = est > 0 ? log2(est / SC_HISTORY_REF_S) / SC_HISTORY_SPAN : -1;
    if (x > 1) x = 1;
    if (x < -1) x = -1;
    return SC_HISTORY_BOUND * (n / (n + SC_HISTORY_CONF_K)) * x;
}

/* ---- the scorer ---- */

sc_scorer *sc_scorer_new(const sc_policy *p)
{
    sc_scorer *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    if (p) s->policy = *p;
    else sc_policy_default(&s->policy);
    sc_kwset_build(&s->kw, &s->policy);
    return s;
}

void sc_scorer_free(sc_scorer *s)
{
    free(s);
}

void sc_score(sc_scorer *s, sc_endpoint ep, const char *body, size_t len, double now,
              sc_result *out)
{
    memset(out, 0, sizeof *out);
    sc_extract(&s->kw, body, len, &out->f, out->model, sizeof out->model);
    out->weight = sc_policy_weight(&s->policy, out->model);
    double raw = sc_static_raw(&out->f, ep, out->weight);
    out->static_score = (int)floor(raw + 0.5);
    double adj = sc_hist_adjust(&s->hist, out->model, sc_hist_class(ep), &out->f, now);
    double x = floor(raw + adj + 0.5);
    out->score = x < 0 ? 0 : x > 100 ? 100 : (int)x;
    if (!out->f.json_ok) out->score = out->static_score = 0;
    out->level = sc_level_of(&s->policy, out->score);
}

void sc_history_observe(sc_scorer *s, const char *model, sc_endpoint ep, double seconds,
                        long prompt_tokens, long output_tokens, double now)
{
    sc_hist_observe(&s->hist, model, sc_hist_class(ep), seconds, prompt_tokens, output_tokens, now);
}
