/* mx_registry.c — the hot-path side of the registry: every update is a few arithmetic
 * operations on fixed arrays in mx_g, never an allocation.  Formatting is in mx_render.c. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "metrics/mx_internal.h"

mx_state mx_g;

const char *const mx_cx_name[MX_CX_COUNT] = { "none", "low", "medium", "high" };
const char *const mx_uperr_name[MX_UPERR_COUNT] = {
    "connect", "reset", "broken", "timeout", "protocol" };

/* Bucket bounds.  Durations span a cached short answer to a long cold-model generation. */
static const double le_duration[] = { 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300 };
/* TTFT includes model loads (tens of seconds to minutes on a cold pod). */
static const double le_ttft[] = { 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300 };
/* Per-token latency: fast GPU tokens (~5 ms) to a CPU-bound large model (~1 s). */
static const double le_tpot[] = { 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5 };
/* Complexity scores 0–100 in tens. */
static const double le_score[] = { 10, 20, 30, 40, 50, 60, 70, 80, 90, 100 };

#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))

static mx_clock_fn clock_fn;            /* injected clock, NULL = CLOCK_MONOTONIC */

/* Default clock: CLOCK_MONOTONIC in seconds. */
static double monotonic_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void mx_set_clock(mx_clock_fn fn)
{
    clock_fn = fn;
}

double mx_now(void)
{
    return clock_fn ? clock_fn() : monotonic_now();
}

/* Prepare an empty histogram over the given bounds. */
static void hist_init(mx_hist *h, const double *le, int n)
{
    memset(h, 0, sizeof *h);
    h->le = le;
    h->n = n;
}

/* Count v into h: linear scan over at most MX_BUCKETS_MAX bounds.  NaN is ignored; negative
 * values (clock steps) count as 0. */
static void hist_observe(mx_hist *h, double v)
{
    int i = 0;
    if (isnan(v))
        return;
    if (v < 0)
        v = 0;
    while (i < h->n && v > h->le[i])
        i++;
    h->bucket[i]++;
    h->sum += v;
    h->count++;
}

void mx_init(double now, double wall_start, const char *version)
{
    mx_collect_fn keep_fn = mx_g.collect;       /* why: the collector outlives a reset */
    void *keep_ud = mx_g.collect_ud;
    memset(&mx_g, 0, sizeof mx_g);
    mx_g.collect = keep_fn;
    mx_g.collect_ud = keep_ud;
    mx_g.wall_start = wall_start;
    snprintf(mx_g.version, sizeof mx_g.version, "%s", version ? version : "unknown");
    mx_g.half_life = MX_HALF_LIFE_DEFAULT;
    mx_g.cx_t = now;
    mx_g.idle_since = now;
    for (int c = 0; c < MX_CX_COUNT; c++)
        hist_init(&mx_g.duration[c], le_duration, NELEM(le_duration));
    hist_init(&mx_g.ttft, le_ttft, NELEM(le_ttft));
    hist_init(&mx_g.tpot, le_tpot, NELEM(le_tpot));
    hist_init(&mx_g.score, le_score, NELEM(le_score));
}

void mx_set_half_life(double seconds)
{
    mx_g.half_life = (isfinite(seconds) && seconds > 0) ? seconds : MX_HALF_LIFE_DEFAULT;
}

void mx_active_add(int delta)
{
    mx_g.active += delta;
    if (mx_g.active < 0)                /* why: a glue bug must not show negative load */
        mx_g.active = 0;
}

void mx_cx_hold(int delta)
{
    int before = mx_g.cx_active;
    mx_g.cx_active += delta;
    if (mx_g.cx_active < 0)
        mx_g.cx_active = 0;
    if (before > 0 && mx_g.cx_active == 0)
        mx_g.idle_since = mx_now();     /* the complexity gauge starts decaying from here */
}

void mx_waiting_add(int delta)
{
    mx_g.waiting += delta;
    if (mx_g.waiting < 0)
        mx_g.waiting = 0;
}

int mx_active(void)
{
    return mx_g.active;
}

int mx_waiting(void)
{
    return mx_g.waiting;
}

/* Slot of status code in the observed-codes table.  Once it is full, a new code counts under
 * its class, "5xx" and the like (so status=~"5.." still finds it), or "other" outside 100-599. */
static int status_slot(int status)
{
    for (int i = 0; i < mx_g.n_status; i++)
        if (mx_g.status_code[i] == status)
            return i;
    if (mx_g.n_status == MX_STATUS_MAX)
        return MX_STATUS_MAX + (status >= 100 && status <= 599 ? status / 100 : 0);
    mx_g.status_code[mx_g.n_status] = status;
    return mx_g.n_status++;
}

void mx_request_done(mx_cx cx, int status, double seconds)
{
    if ((int)cx < 0 || cx >= MX_CX_COUNT)
        cx = MX_CX_NONE;
    mx_g.requests[cx][status_slot(status)]++;
    hist_observe(&mx_g.duration[cx], seconds);
}

/* The decayed complexity gauge.
 *
 * Two sums decay with the half-life h: S = Σ score_i·2^(-(t-t_i)/h) and W = Σ 2^(-(t-t_i)/h).
 * A = S/W is the time-decayed mean of recent scores (recent requests weigh more; the ratio does
 * not change between arrivals, so it is kept as of the last arrival).  On its own A never
 * falls when traffic stops, so it is multiplied by 2^(-idle/h), where idle is how long the
 * proxy has had no request in flight and no new score:
 *
 *     gauge(t) = A · 2^(-idle/h),   idle = 0 while active > 0,
 *                                   else t - max(last score, moment active fell to 0)
 *
 * Under steady load (requests overlap, or arrive much more often than h) gauge = A, the
 * average; a long generation keeps it up; once traffic stops it halves every h seconds and
 * reads 0 below MX_CX_ZERO_BELOW. */
void mx_score_observe(int score, double now)
{
    double dt = now - mx_g.cx_t;
    double f = dt > 0 ? exp2(-dt / mx_g.half_life) : 1.0;
    if (score < 0)
        score = 0;
    if (score > 100)
        score = 100;
    mx_g.cx_sum = mx_g.cx_sum * f + score;
    mx_g.cx_weight = mx_g.cx_weight * f + 1.0;
    if (dt > 0)
        mx_g.cx_t = now;
    hist_observe(&mx_g.score, score);
}

double mx_complexity(double now)
{
    double avg, idle = 0, from, g;
    if (mx_g.cx_weight <= 0)
        return 0;
    avg = mx_g.cx_sum / mx_g.cx_weight;
    if (mx_g.cx_active == 0) {
        from = mx_g.idle_since > mx_g.cx_t ? mx_g.idle_since : mx_g.cx_t;
        idle = now > from ? now - from : 0;
    }
    g = avg * exp2(-idle / mx_g.half_life);
    return g < MX_CX_ZERO_BELOW ? 0 : g;
}

void mx_ttft_observe(double seconds)
{
    hist_observe(&mx_g.ttft, seconds);
}

void mx_tpot_observe(double seconds_per_token)
{
    hist_observe(&mx_g.tpot, seconds_per_token);
}

/* Bytes of the well-formed UTF-8 character at s (1-4; s is NUL-terminated), or 0: RFC 3629's
 * table, so no overlong forms, no surrogates, nothing above U+10FFFF (Prometheus refuses a
 * scrape with such a label value). */
static int utf8_len(const unsigned char *s)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c == 0xE0 || c == 0xF0)
        lo = c == 0xE0 ? 0xA0 : 0x90;           /* no overlong forms */
    if (c == 0xED || c == 0xF4)
        hi = c == 0xED ? 0x9F : 0x8F;           /* no surrogates, nothing past U+10FFFF */
    if (c >= 0xE0 && c <= 0xEF)
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80 ? 3 : 0;
    if (c >= 0xF0 && c <= 0xF4)
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80 && (s[3] & 0xC0) == 0x80 ? 4 : 0;
    return 0;
}

/* Copy a model name into dst (MX_MODEL_NAME_MAX bytes), cut at a UTF-8 character boundary and
 * with invalid UTF-8 bytes replaced by '?', so a label value is always valid UTF-8. */
static void model_copy(char *dst, const char *src)
{
    size_t o = 0;
    const unsigned char *s = (const unsigned char *)src;
    while (*s) {
        int n = utf8_len(s), ok = n > 0;
        if (!ok)
            n = 1;
        if (o + (size_t)n >= MX_MODEL_NAME_MAX)
            break;
        if (ok)
            memcpy(dst + o, s, (size_t)n);
        else
            dst[o] = '?';
        o += (size_t)n;
        s += n;
    }
    dst[o] = '\0';
}

/* Slot of a model name: an existing one, a new one while fewer than MX_MODELS_MAX, else
 * MX_MODELS_MAX ("other").  NULL or "" is "unknown". */
static int model_slot(const char *model)
{
    char name[MX_MODEL_NAME_MAX];
    const char *raw = (model && *model) ? model : "unknown";
    /* why first, unsanitised: a stored name is valid UTF-8 and short, and model_copy leaves
     * such a name as it is, so a raw name equal to it has this slot (the common case) */
    for (int i = 0; i < mx_g.n_models; i++)
        if (strcmp(mx_g.model[i], raw) == 0)
            return i;
    model_copy(name, raw);
    for (int i = 0; i < mx_g.n_models; i++)
        if (strcmp(mx_g.model[i], name) == 0)
            return i;
    if (mx_g.n_models == MX_MODELS_MAX || strcmp(name, "other") == 0)
        return MX_MODELS_MAX;
    memcpy(mx_g.model[mx_g.n_models], name, sizeof name);
    return mx_g.n_models++;
}

void mx_tokens_add(const char *model, uint64_t prompt_tokens, uint64_t output_tokens)
{
    int slot = model_slot(model);
    mx_g.prompt_tokens[slot] += prompt_tokens;
    mx_g.output_tokens[slot] += output_tokens;
}

void mx_upstream_error(mx_uperr why)
{
    if ((int)why >= 0 && why < MX_UPERR_COUNT)
        mx_g.upstream_errors[why]++;
}

void mx_hint_dropped(void)
{
    mx_g.hints_dropped++;
}

void mx_set_collector(mx_collect_fn fn, void *ud)
{
    mx_g.collect = fn;
    mx_g.collect_ud = ud;
}
