/* k8s_policy.c — the pure policy engine: one evaluation turns (policy, engine state, snapshot)
 * into a stabilized replica floor and a resource target, with a reason.  No clock, no I/O, no
 * globals, so unit tests and bench/'s scaling simulator drive it with a fake clock.
 * The rules are written down in k8s/README.md ("Policy semantics"). */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "k8s/k8s.h"

#define K8S_CEIL_EPS 1e-9       /* why: 5 * 1.2 is 6.000000000000001 in binary; ceil must say 6 */
#define K8S_CEIL_REL 1e-12      /* the same, relative, for large quantities (1.1G * 1e9) */
#define K8S_RISE_EPS 0.5        /* complexity must rise by more than this to count as "rising" */

/* Reset e to "no evaluation yet". */
void k8s_engine_init(k8s_engine *e)
{
    memset(e, 0, sizeof *e);
    e->floor = -1;
    e->cpu_m = -1;
    e->mem = -1;
}

/* "hold", "up", "down". */
const char *k8s_direction_name(k8s_direction d)
{
    switch (d) {
    case K8S_DIR_UP: return "up";
    case K8S_DIR_DOWN: return "down";
    default: return "hold";
    }
}

/* why +2: a window includes its start, and the seed sample of the first evaluation */
_Static_assert(K8S_WINDOW_MAX >= SC_WINDOW_EVALS_MAX + 2, "the ring must hold a whole window");

/* Append a sample to the window ring, dropping the oldest when it is full. */
static void win_push(k8s_engine *e, const k8s_sample *s)
{
    int idx;

    if (e->wlen == K8S_WINDOW_MAX) {
        e->whead = (e->whead + 1) % K8S_WINDOW_MAX;
        e->wlen--;
    }
    idx = (e->whead + e->wlen) % K8S_WINDOW_MAX;
    e->win[idx] = *s;
    e->wlen++;
}

/* Drop samples older than keep seconds before now (they can no longer be in any window). */
static void win_prune(k8s_engine *e, double now, double keep)
{
    while (e->wlen > 0 && e->win[e->whead].t < now - keep) {
        e->whead = (e->whead + 1) % K8S_WINDOW_MAX;
        e->wlen--;
    }
}

/* HPA-style stabilization of one quantity.  which: 0 replicas, 1 cpu, 2 memory.  cur is the
 * value in force; the result is raised to the minimum of the up window's recommendations when
 * that is above cur, and lowered to the maximum of the down window's when that is below.
 * Windows include their start ([now - window, now]) so a change needs a full window of
 * evaluations agreeing with it, counted from the first one that recommended it. */
static int64_t stabilize(const k8s_engine *e, int which, int64_t cur, double now,
                         double up_window, double down_window)
{
    int64_t up = INT64_MAX, down = INT64_MIN, v;
    int i;

    for (i = 0; i < e->wlen; i++) {
        const k8s_sample *s = &e->win[(e->whead + i) % K8S_WINDOW_MAX];
        v = which == 0 ? s->replicas : which == 1 ? s->cpu_m : s->mem;
        if (s->t >= now - up_window && v < up)
            up = v;
        if (s->t >= now - down_window && v > down)
            down = v;
    }
    if (up != INT64_MAX && cur < up)
        cur = up;
    if (down != INT64_MIN && cur > down)
        cur = down;
    return cur;
}

/* Queue (waiting + weighted load) rose strictly at each of the last K8S_GROW_SAMPLES
 * evaluations and something is waiting now. */
static int queue_growing(const k8s_engine *e, int waiting)
{
    int i;

    if (waiting <= 0 || e->nqueue < K8S_GROW_SAMPLES + 1)
        return 0;
    for (i = 1; i < e->nqueue; i++)
        if (!(e->queue[i] > e->queue[i - 1]))
            return 0;
    return 1;
}

/* Remember this evaluation's queue length (ring of the last K8S_GROW_SAMPLES + 1). */
static void queue_push(k8s_engine *e, double q)
{
    if (e->nqueue == K8S_GROW_SAMPLES + 1) {
        memmove(e->queue, e->queue + 1, sizeof e->queue[0] * K8S_GROW_SAMPLES);
        e->nqueue--;
    }
    e->queue[e->nqueue++] = q;
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi)
{
    if (v < lo)
        v = lo;
    if (v > hi)
        v = hi;
    return v;
}

/* This pod's resource target: the profile of level, each quantity multiplied by the model
 * weight and kept inside [low profile, high profile] so it never leaves the operator's range. */
static void resource_target(const sc_policy *p, sc_level level, double weight,
                            int64_t *cpu_m, int64_t *mem)
{
    int64_t c = k8s_cpu_parse(p->resources[level].cpu);
    int64_t m = k8s_mem_parse(p->resources[level].memory);
    int64_t clo = k8s_cpu_parse(p->resources[SC_LEVEL_LOW].cpu);
    int64_t chi = k8s_cpu_parse(p->resources[SC_LEVEL_HIGH].cpu);
    int64_t mlo = k8s_mem_parse(p->resources[SC_LEVEL_LOW].memory);
    int64_t mhi = k8s_mem_parse(p->resources[SC_LEVEL_HIGH].memory);

    if (weight <= 0)
        weight = 1.0;
    if (c >= 0) {
        c = (int64_t)llround((double)c * weight);
        if (clo >= 0 && chi >= clo)
            c = clamp64(c, clo, chi);
    }
    if (m >= 0) {
        /* why: round to whole MiB so the patch text stays readable and stable */
        m = (int64_t)llround((double)m * weight / 1048576.0) * 1048576;
        if (mlo >= 0 && mhi >= mlo)
            m = clamp64(m, mlo, mhi);
    }
    *cpu_m = c;
    *mem = m;
}

/* Evaluate once at s->now (see k8s.h).  The raw recommendation is: scale up to
 * ceil(current x scaleUpFactors[level]) when complexity > scaleUpScore or the queue keeps
 * growing; one replica below the floor when complexity < thresholds.low, not rising and nothing
 * waits; else the floor.  Then stabilization (HPA's algorithm) and the clamp. */
void k8s_engine_eval(k8s_engine *e, const sc_policy *p, const k8s_snapshot *s, k8s_decision *d)
{
    double now = s->now, cx = s->complexity, queue = s->waiting + s->load;
    int lo, hi, cur, raw, growing, rising, old_floor;
    int64_t tc = -1, tm = -1, old_c, old_m;
    k8s_sample smp;
    int n;

    memset(d, 0, sizeof *d);
    hi = p->max_replicas;
    if (s->ceiling > 0 && s->ceiling < hi)
        hi = s->ceiling;                        /* why: never ask for more than the HPA allows */
    lo = p->min_replicas < hi ? p->min_replicas : hi;
    if (lo < 1)
        lo = 1;
    if (!e->started) {
        e->started = 1;
        e->t0 = now;
        e->floor = s->floor > 0 ? s->floor : s->current > 0 ? s->current : lo;
        e->prev_complexity = cx;
    } else if (s->floor > 0 && s->floor != e->floor) {
        /* why: the cluster's value is the one in force (another pod led until now, a person
         * edited it, or our write failed); every step is taken from it, so a new leader moves
         * the floor one replica from what the cluster has, never from a private value */
        e->floor = s->floor;
    }
    old_floor = e->floor;
    cur = s->current > 0 ? s->current : e->floor;
    d->t = now;
    d->current = cur;
    d->level = sc_level_of(p, (int)lround(cx < 0 ? 0 : cx > 100 ? 100 : cx));
    if (d->level < SC_LEVEL_LOW)
        d->level = SC_LEVEL_LOW;

    queue_push(e, queue);
    growing = queue_growing(e, s->waiting);
    rising = cx > e->prev_complexity + K8S_RISE_EPS;
    if (cx > p->scale_up_score || growing) {
        double f = p->scale_up[d->level];
        raw = (int)ceil((double)cur * f - K8S_CEIL_EPS);
        if (raw < e->floor)
            raw = e->floor;
        n = snprintf(d->reason, sizeof d->reason,
                     "%s: complexity %.1f (level %s), queue %.1f, current %d x %.2f = %d",
                     cx > p->scale_up_score ? "complexity above scaleUpScore" : "queue growing",
                     cx, sc_level_name(d->level), queue, cur, f, raw);
    } else if (cx < p->thresholds[SC_LEVEL_LOW] && !rising && s->waiting == 0) {
        raw = e->floor - 1 < lo ? e->floor : e->floor - 1;
        n = snprintf(d->reason, sizeof d->reason, raw < e->floor
                     ? "idle: complexity %.1f below low %.0f, not rising, nothing waiting: step %d -> %d"
                     : "idle: complexity %.1f below low %.0f, not rising, nothing waiting: at minReplicas %d",
                     cx, p->thresholds[SC_LEVEL_LOW], raw < e->floor ? e->floor : lo, raw);
    } else {
        raw = e->floor;
        n = snprintf(d->reason, sizeof d->reason,
                     "steady: complexity %.1f (level %s), waiting %d, active %d",
                     cx, sc_level_name(d->level), s->waiting, s->active);
    }
    raw = (int)clamp64(raw, lo, hi);
    d->raw = raw;

    if (p->has_resources) {
        resource_target(p, d->level, s->weight, &tc, &tm);
        if (e->cpu_m < 0)
            e->cpu_m = s->pod_cpu_m >= 0 ? s->pod_cpu_m : tc;
        if (e->mem < 0)
            e->mem = s->pod_mem >= 0 ? s->pod_mem : tm;
    }

    if (e->wlen == 0 && now == e->t0) {
        /* why: before a full window was observed, the value in force counts as a past
         * recommendation, so nothing moves until its window has really elapsed */
        smp.t = now;
        smp.replicas = e->floor;
        smp.cpu_m = e->cpu_m;
        smp.mem = e->mem;
        win_push(e, &smp);
    }
    win_prune(e, now, fmax(p->up_window_s, p->down_window_s));
    smp.t = now;
    smp.replicas = raw;
    smp.cpu_m = tc;
    smp.mem = tm;
    win_push(e, &smp);

    d->desired = (int)clamp64(stabilize(e, 0, e->floor, now, p->up_window_s, p->down_window_s),
                              lo, hi);
    d->direction = d->desired > old_floor ? K8S_DIR_UP
                 : d->desired < old_floor ? K8S_DIR_DOWN : K8S_DIR_HOLD;
    if (d->desired != raw && n > 0 && (size_t)n < sizeof d->reason)
        snprintf(d->reason + n, sizeof d->reason - (size_t)n, "; stabilized to %d", d->desired);
    e->floor = d->desired;

    old_c = e->cpu_m;
    old_m = e->mem;
    if (p->has_resources) {
        e->cpu_m = stabilize(e, 1, e->cpu_m, now, p->up_window_s, p->down_window_s);
        e->mem = stabilize(e, 2, e->mem, now, p->up_window_s, p->down_window_s);
    }
    d->cpu_m = e->cpu_m;
    d->mem = e->mem;
    d->resources_changed = old_c != e->cpu_m || old_m != e->mem;
    e->prev_complexity = cx;
}

/* ---- Kubernetes quantities ---- */

/* v rounded up, where v within binary rounding of a whole number counts as it. */
static int64_t ceil_whole(double v)
{
    double r = round(v);
    return (int64_t)(fabs(v - r) <= fmax(K8S_CEIL_EPS, v * K8S_CEIL_REL) ? r : ceil(v));
}

/* Quantity s in units of 1/per of its base unit, rounded up; -1 unreadable or out of range. */
static int64_t qty_in(const char *s, double per)
{
    double v = sc_quantity(s) * per;

    if (v < 0 || v >= SC_QTY_LIMIT)
        return -1;
    return ceil_whole(v);
}

/* CPU quantity -> millicores (rounded up); -1 when unreadable or out of range. */
int64_t k8s_cpu_parse(const char *s)
{
    return qty_in(s, 1000.0);
}

/* Memory quantity -> bytes (rounded up); -1 when unreadable or out of range. */
int64_t k8s_mem_parse(const char *s)
{
    return qty_in(s, 1.0);
}

/* Millicores -> "4" when whole cores, else "1500m". */
void k8s_cpu_format(int64_t millicores, char *out, size_t cap)
{
    if (millicores % 1000 == 0)
        snprintf(out, cap, "%lld", (long long)(millicores / 1000));
    else
        snprintf(out, cap, "%lldm", (long long)millicores);
}

/* Bytes -> the largest binary suffix that divides it exactly. */
void k8s_mem_format(int64_t bytes, char *out, size_t cap)
{
    static const char *const suf[] = {"Ti", "Gi", "Mi", "Ki"};
    int64_t mul = (int64_t)1 << 40;
    int i;

    for (i = 0; i < 4; i++, mul >>= 10) {
        if (bytes > 0 && bytes % mul == 0) {
            snprintf(out, cap, "%lld%s", (long long)(bytes / mul), suf[i]);
            return;
        }
    }
    snprintf(out, cap, "%lld", (long long)bytes);
}

/* ---- model-weight bookkeeping ---- */

void k8s_load_start(k8s_load *l, double weight)
{
    l->inflight++;
    l->inflight_w += weight;
    l->wsum += weight;
    l->wn++;
}

void k8s_load_finish(k8s_load *l, double weight)
{
    if (l->inflight > 0) {
        l->inflight--;
        l->inflight_w = l->inflight ? fmax(0, l->inflight_w - weight) : 0;
    }
}

double k8s_load_roll(k8s_load *l, int active)
{
    if (l->wn > 0)
        l->weight = l->wsum / l->wn;
    else if (active == 0)
        l->weight = 1.0;
    l->wsum = 0;
    l->wn = 0;
    return l->inflight > 0 ? l->inflight_w / l->inflight : l->weight;
}
