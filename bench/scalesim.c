/* scalesim.c — replays an LLM arrival trace through a simulated fleet of Ollama pods and
 * compares three ways of sizing it: a fixed fleet, a plain Kubernetes HPA on CPU, and LiteBrain
 * (the shipped HPA plus the floor our policy engine writes).  Simulated time advances in small
 * steps (--dt); an hour of trace runs in about a second.
 *
 * Per pod: --parallel slots; a request holds a slot for prefill (ContextTokens / prefill rate)
 * then decode (GeneratedTokens / decode rate), both rates divided by the model's policy weight;
 * requests wait in the pod's FIFO queue when its slots are full (as Ollama queues them).  New
 * pods serve after --cold-start seconds; removed pods stop taking requests and finish what they
 * hold.  Requests go to the ready pod with the fewest outstanding requests.
 *
 * Each pod runs the real scorer (sc_score on a synthetic body of the request's size, with the
 * pod's own history fed by sc_history_observe) and the complexity gauge; the leader (pod 0)
 * gauge is the real metrics/ code (mx_score_observe / mx_complexity on a simulated clock), the
 * others a copy of its formula checked against it.  The controller's k8s_engine_eval runs
 * every evaluationIntervalSeconds on pod 0's numbers, exactly as k8s/k8s_ctl.c builds them. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench/scalesim.h"
#include "metrics/metrics.h"

#define SS_BODY_SLACK 256           /* JSON around the prompt words */
#define SS_HPA_PERIOD 15.0          /* HPA sync period (controller-manager default) */
#define SS_HPA_PHASE 7.5            /* HPA syncs half a period after the engine evaluates */
#define SS_DRAIN_LIMIT 3600.0       /* simulate at most this long after the last arrival */
#define SS_FIXED_SEARCH_MAX 64      /* largest fixed fleet tried when --fixed is 0 */
#define SS_GAUGE_CHECK_EPS 1e-6     /* pod-0 gauge copy vs metrics/ must agree this closely */
#define SS_CX_TARGET 50.0           /* the shipped HPA's litebrain_complexity_score averageValue */

static const char *const ss_names[SS_STRATEGIES] = { "fixed", "hpa-cpu", "engine-floor", "litebrain" };

/* Words for the synthetic prompts: code-ish, none of them a scoring keyword. */
static const char *const ss_vocab[] = {
    "int", "return", "value", "index", "buffer", "self", "list", "count", "for", "if",
    "else", "while", "node", "item", "result", "string", "len", "data", "key", "map",
    "args", "config", "error", "print", "import", "from", "class", "def", "const", "let",
};

/* The decayed complexity gauge of one pod: the formula of metrics/mx_registry.c. */
typedef struct ss_gauge {
    double sum;                 /* decayed sum of scores */
    double weight;              /* decayed count of scores */
    double t;                   /* time of the last score */
    double idle_since;          /* when active last fell to 0 */
    int active;                 /* requests in flight at the pod */
} ss_gauge;

/* A pod of the fleet. */
typedef struct ss_pod {
    int state;                  /* SS_POD_* */
    double born;                /* when it was created */
    double ready_at;            /* when it serves */
    int slot[SS_SLOTS_MAX];     /* request in each slot, -1 free */
    double slot_free[SS_SLOTS_MAX]; /* when each slot became free */
    int qhead, qtail, qlen;     /* FIFO of queued requests (linked through ss_req.next) */
    int busy;                   /* slots in use */
    int active;                 /* queued + in slots */
    int waiting;                /* not yet at their first token */
    double busy_done;           /* slot-seconds of finished service */
    double busy_mark;           /* slot-seconds at the previous HPA sync */
    ss_gauge g;                 /* complexity gauge */
    sc_scorer *sc;              /* this pod's scorer (own history) */
} ss_pod;

enum { SS_POD_GONE = 0, SS_POD_STARTING, SS_POD_READY, SS_POD_DRAINING };

/* The loop thread's accumulator in k8s/k8s_ctl.c, for the leader pod. */
typedef struct ss_acc {
    k8s_load load;              /* the controller's own weight bookkeeping */
} ss_acc;

/* One run's world. */
typedef struct ss_world {
    const ss_config *c;         /* settings */
    const sc_policy *p;         /* policy */
    ss_trace *tr;               /* requests (run fields reset per run) */
    ss_pod pod[SS_PODS_MAX];    /* pods; index 0 is the leader and never removed */
    int npod;                   /* records used */
    int live;                   /* starting + ready pods: the Deployment's replicas */
    int rr;                     /* round-robin tie breaker */
    double weight;              /* model weight */
    char *body;                 /* synthetic body buffer */
    size_t body_cap;            /* its size */
    size_t words_len;           /* bytes of the words text */
    char *words;                /* the prompt words text */
    int last_dir;               /* direction of the previous scale event */
    double last_event;          /* its time */
    ss_stats *st;               /* results */
    ss_acc acc;                 /* leader accumulator */
} ss_world;

static double ss_clock;         /* simulated now, read by metrics/ through mx_set_clock */

static double sim_now(void)
{
    return ss_clock;
}

/* ---- gauge copy ---- */

static void gauge_init(ss_gauge *g, double now)
{
    memset(g, 0, sizeof *g);
    g->t = now;
    g->idle_since = now;
}

static void gauge_score(ss_gauge *g, const sc_policy *p, int score, double now)
{
    double dt = now - g->t, f = dt > 0 ? exp2(-dt / p->half_life_s) : 1.0;
    g->sum = g->sum * f + score;
    g->weight = g->weight * f + 1.0;
    if (dt > 0)
        g->t = now;
}

static void gauge_active(ss_gauge *g, int delta, double now)
{
    int before = g->active;
    g->active += delta;
    if (before > 0 && g->active == 0)
        g->idle_since = now;
}

static double gauge_value(const ss_gauge *g, const sc_policy *p, double now)
{
    double avg, from, idle = 0, v;
    if (g->weight <= 0)
        return 0;
    avg = g->sum / g->weight;
    if (g->active == 0) {
        from = g->idle_since > g->t ? g->idle_since : g->t;
        idle = now > from ? now - from : 0;
    }
    v = avg * exp2(-idle / p->half_life_s);
    return v < MX_CX_ZERO_BELOW ? 0 : v;
}

/* ---- fleet ---- */

/* A new pod at now, serving from ready_at.  Returns its index or -1 when full. */
static int pod_add(ss_world *w, double now, double ready_at)
{
    int i;
    ss_pod *pd;

    for (i = 0; i < w->npod && w->pod[i].state != SS_POD_GONE; i++)
        ;
    if (i == SS_PODS_MAX)
        return -1;
    if (i == w->npod)
        w->npod++;
    pd = &w->pod[i];
    sc_scorer_free(pd->sc);         /* a reused record: the new pod starts with no history */
    memset(pd, 0, sizeof *pd);
    if (!(pd->sc = sc_scorer_new(w->p)))
        return -1;
    pd->state = ready_at <= now ? SS_POD_READY : SS_POD_STARTING;
    pd->born = now;
    pd->ready_at = ready_at;
    pd->qhead = pd->qtail = -1;
    for (int s = 0; s < w->c->parallel; s++) {
        pd->slot[s] = -1;
        pd->slot_free[s] = ready_at;
    }
    gauge_init(&pd->g, now);
    w->live++;
    return i;
}

/* Record a change of the Deployment's replicas from before to after at now. */
static void scale_event(ss_world *w, int before, int after, double now)
{
    int dir = after > before ? 1 : -1;
    if (after == before)
        return;
    w->st->scale_events++;
    if (w->last_dir && dir != w->last_dir && now - w->last_event <= w->c->thrash_window)
        w->st->thrash++;
    w->last_dir = dir;
    w->last_event = now;
}

/* Set the Deployment to n replicas: add starting pods, or remove starting pods first, then
 * the newest ready ones (the ReplicaSet's order); pod 0 is never removed. */
static void set_replicas(ss_world *w, int n, double now)
{
    int before = w->live;

    while (w->live < n && pod_add(w, now, now + w->c->cold_start) >= 0)
        ;
    while (w->live > n) {
        int pick = -1;
        for (int i = 1; i < w->npod; i++) {
            const ss_pod *pd = &w->pod[i];
            if (pd->state != SS_POD_STARTING && pd->state != SS_POD_READY)
                continue;
            if (pick < 0 || (pd->state == SS_POD_STARTING && w->pod[pick].state == SS_POD_READY)
                || (pd->state == w->pod[pick].state && pd->born >= w->pod[pick].born))
                pick = i;
        }
        if (pick < 0)
            break;
        w->pod[pick].state = w->pod[pick].state == SS_POD_STARTING ? SS_POD_GONE : SS_POD_DRAINING;
        w->live--;
    }
    scale_event(w, before, w->live, now);
}

/* Synthetic /api/generate body with words = tokens x words_per_token.  Returns its length. */
static size_t make_body(ss_world *w, int ctx)
{
    size_t want = (size_t)llround(ctx * w->c->words_per_token), nw = 0, o = 0, need;
    const char *pre1 = "{\"model\":\"", *pre2 = "\",\"prompt\":\"", *post = "\",\"stream\":true}";
    const char *end = w->words;

    /* find the byte length of the first `want` words of the words text */
    while (nw < want && (size_t)(end - w->words) < w->words_len) {
        const char *sp = strchr(end, ' ');
        end = sp ? sp + 1 : w->words + w->words_len;
        nw++;
    }
    need = strlen(w->c->model) + (size_t)(end - w->words) + SS_BODY_SLACK;
    if (need > w->body_cap) {
        char *b = realloc(w->body, need);
        if (!b)
            return 0;
        w->body = b;
        w->body_cap = need;
    }
    o += (size_t)sprintf(w->body + o, "%s%s%s", pre1, w->c->model, pre2);
    memcpy(w->body + o, w->words, (size_t)(end - w->words));
    o += (size_t)(end - w->words);
    o += (size_t)sprintf(w->body + o, "%s", post);
    return o;
}

/* Slot-seconds pod pd has served up to now. */
static double pod_busy(const ss_world *w, const ss_pod *pd, double now)
{
    double b = pd->busy_done;
    for (int s = 0; s < w->c->parallel; s++)
        if (pd->slot[s] >= 0 && w->tr->r[pd->slot[s]].start < now)
            b += now - w->tr->r[pd->slot[s]].start;
    return b;
}

/* Request ri finished at pod pi at its end time. */
static void req_finish(ss_world *w, int pi, int ri)
{
    ss_pod *pd = &w->pod[pi];
    ss_req *r = &w->tr->r[ri];

    ss_clock = r->end;
    pd->busy_done += r->end - r->start;
    pd->active--;
    gauge_active(&pd->g, -1, r->end);
    sc_history_observe(pd->sc, w->c->model, SC_EP_GENERATE, r->end - r->t, r->ctx, r->gen,
                       r->end);
    if (pi == 0) {
        mx_active_add(-1);
        mx_cx_hold(-1);                         /* every trace request is scored */
        k8s_load_finish(&w->acc.load, r->weight);
    }
    w->st->served++;
}

/* Start queued requests on pod pi's free slots and finish those whose end <= now, until
 * nothing changes (a short request may start and end within one step). */
static void pod_work(ss_world *w, int pi, double now)
{
    ss_pod *pd = &w->pod[pi];
    int changed = 1;

    if (pd->state == SS_POD_GONE || pd->state == SS_POD_STARTING)
        return;
    while (changed) {
        changed = 0;
        for (int s = 0; s < w->c->parallel; s++) {
            int ri = pd->slot[s];
            if (ri >= 0 && w->tr->r[ri].end <= now) {
                pd->slot_free[s] = w->tr->r[ri].end;
                if (w->tr->r[ri].waiting) {
                    w->tr->r[ri].waiting = 0;
                    pd->waiting--;
                }
                req_finish(w, pi, ri);
                pd->slot[s] = -1;
                pd->busy--;
                changed = 1;
            }
            if (pd->slot[s] < 0 && pd->qlen > 0) {
                ss_req *r;
                ri = pd->qhead;
                r = &w->tr->r[ri];
                pd->qhead = r->next;
                if (--pd->qlen == 0)
                    pd->qtail = -1;
                r->start = fmax(r->t, pd->slot_free[s]);
                r->first = r->start + r->ctx * w->weight / w->c->prefill_tps;
                r->end = r->first + r->gen * w->weight / w->c->decode_tps;
                pd->slot[s] = ri;
                pd->busy++;
                changed = 1;
            }
        }
    }
    for (int s = 0; s < w->c->parallel; s++) {
        int ri = pd->slot[s];
        if (ri >= 0 && w->tr->r[ri].waiting && w->tr->r[ri].first <= now) {
            w->tr->r[ri].waiting = 0;
            pd->waiting--;
        }
    }
    if (pd->state == SS_POD_DRAINING && pd->active == 0)
        pd->state = SS_POD_GONE;
}

/* Route arriving request ri: the ready pod with the fewest outstanding requests (round-robin
 * among ties), score it with that pod's scorer, queue it. */
static void req_arrive(ss_world *w, int ri)
{
    ss_req *r = &w->tr->r[ri];
    int best = -1, bestn = 0, i, k;
    sc_result res;
    size_t len;

    for (k = 0; k < w->npod; k++) {
        i = (w->rr + k) % w->npod;
        const ss_pod *pd = &w->pod[i];
        if (pd->state != SS_POD_READY)
            continue;
        if (best < 0 || pd->active < bestn) {
            best = i;
            bestn = pd->active;
        }
    }
    for (i = 0; best < 0 && i < w->npod; i++)   /* nothing ready: queue at a starting pod */
        if (w->pod[i].state == SS_POD_STARTING)
            best = i;
    if (best < 0)
        best = 0;
    w->rr = (best + 1) % (w->npod ? w->npod : 1);

    ss_pod *pd = &w->pod[best];
    ss_clock = r->t;
    len = make_body(w, r->ctx);
    sc_score(pd->sc, SC_EP_GENERATE, w->body, len, r->t, &res);
    r->score = res.score;
    if (res.level >= SC_LEVEL_LOW && res.level < SC_LEVELS)
        w->st->level_n[res.level]++;
    r->weight = res.weight;
    r->pod = best;
    r->next = -1;
    r->start = r->first = r->end = -1;
    r->waiting = 1;
    pd->active++;
    pd->waiting++;
    gauge_score(&pd->g, w->p, res.score, r->t);
    gauge_active(&pd->g, 1, r->t);
    if (best == 0) {
        mx_score_observe(res.score, r->t);
        mx_active_add(1);
        mx_cx_hold(1);
        k8s_load_start(&w->acc.load, r->weight);
    }
    if (pd->qtail >= 0)
        w->tr->r[pd->qtail].next = ri;
    else
        pd->qhead = ri;
    pd->qtail = ri;
    pd->qlen++;
}

/* One evaluation of the real policy engine on the leader's numbers (as k8s_ctl.c builds the
 * snapshot); returns the floor to write into the HPA's minReplicas. */
static int engine_eval(ss_world *w, k8s_engine *e, double now)
{
    k8s_snapshot s;
    k8s_decision d;
    ss_acc *a = &w->acc;
    const ss_pod *leader = &w->pod[0];
    double mean_w, cx;

    ss_clock = now;
    cx = mx_complexity(now);
    if (fabs(cx - gauge_value(&leader->g, w->p, now)) > SS_GAUGE_CHECK_EPS) {
        fprintf(stderr, "scalesim: gauge copy disagrees with metrics/: %.6f vs %.6f at %.1f s\n",
                gauge_value(&leader->g, w->p, now), cx, now);
        exit(2);
    }
    mean_w = k8s_load_roll(&a->load, leader->active);
    memset(&s, 0, sizeof s);
    s.now = now;
    s.complexity = cx;
    s.active = leader->active;
    s.waiting = leader->waiting;
    s.load = leader->active * mean_w;
    s.weight = a->load.weight;
    s.current = w->live;
    s.floor = e->started ? e->floor : -1;
    s.ceiling = w->p->max_replicas;
    s.pod_cpu_m = -1;
    s.pod_mem = -1;
    k8s_engine_eval(e, w->p, &s, &d);
    return d.desired;
}

/* The HPA's view of the fleet at now; resets the CPU windows. */
static void hpa_input(ss_world *w, double now, double since, ss_hpa_input *in)
{
    memset(in, 0, sizeof *in);
    in->current = w->live;
    for (int i = 0; i < w->npod; i++) {
        ss_pod *pd = &w->pod[i];
        if (pd->state == SS_POD_STARTING) {
            in->unready++;
        } else if (pd->state == SS_POD_READY) {
            double from = fmax(since, pd->ready_at), b = pod_busy(w, pd, now);
            if (now > from) {
                in->ready++;
                in->cpu_sum += (b - pd->busy_mark) / ((now - from) * w->c->parallel);
            } else {
                in->unready++;
            }
            pd->busy_mark = b;
        }
        if (pd->state == SS_POD_STARTING || pd->state == SS_POD_READY)
            in->cx_sum += gauge_value(&pd->g, w->p, now);
    }
}

/* The HPA as k8s/manifests/ollama-scaling-k8s.yaml ships it: CPU 70 % (memory 80 % is not
 * modelled: a loaded model's memory does not follow load), the complexity Pods metric
 * averageValue 50, scale-up window 60 s with max(100 %, 2 pods) per 60 s, scale-down window
 * 300 s with 1 pod per 60 s. */
/* The fewest pods a scaling strategy keeps: the policy's minReplicas, at least 1 (as the
 * controller's engine and a Kubernetes HPA without scale-to-zero both do). */
static int min_pods(const sc_policy *p)
{
    return p->min_replicas < 1 ? 1 : p->min_replicas;
}

static void hpa_shipped(ss_hpa *h, const ss_config *c, const sc_policy *p)
{
    ss_hpa_default(h, min_pods(p), p->max_replicas, c->cpu_target);
    h->cx_target = SS_CX_TARGET;
    h->up = (ss_rules){ .window = 60, .pct = 100, .pct_period = 60, .pods = 2,
                        .pods_period = 60, .select_max = 1 };
    h->down = (ss_rules){ .window = 300, .pct = -1, .pct_period = 0, .pods = 1,
                          .pods_period = 60, .select_max = 0 };
}

/* Per-minute p95 and the overall percentiles from the requests' waits. */
static int finish_stats(ss_world *w, double end)
{
    ss_trace *tr = w->tr;
    ss_stats *st = w->st;
    double *all = malloc(sizeof *all * (size_t)tr->n), *tmp = malloc(sizeof *tmp * (size_t)tr->n);
    int i, j, m;

    if (!all || !tmp) {
        free(all);
        free(tmp);
        return -1;
    }
    for (i = 0; i < tr->n; i++)
        all[i] = tr->r[i].start >= 0 ? tr->r[i].start - tr->r[i].t : end - tr->r[i].t;
    st->nmin = (int)(tr->span / SS_MINUTE) + 1;
    st->min_p95 = calloc((size_t)st->nmin, sizeof *st->min_p95);
    if (!st->min_p95) {
        free(all);
        free(tmp);
        return -1;
    }
    for (i = 0, m = 0; m < st->nmin; m++) {
        for (j = 0; i < tr->n && tr->r[i].t < (m + 1) * SS_MINUTE; i++)
            tmp[j++] = all[i];
        st->min_p95[m] = ss_percentile(tmp, j, 0.95);
        if (st->min_p95[m] > w->c->slo)
            st->slo_minutes++;
    }
    st->p50 = ss_percentile(all, tr->n, 0.50);
    st->p95 = ss_percentile(all, tr->n, 0.95);
    st->p99 = ss_percentile(all, tr->n, 0.99);
    free(all);
    free(tmp);
    return 0;
}

/* Run one strategy (see scalesim.h). */
int ss_run(const ss_config *c, const sc_policy *p, const ss_trace *trc, ss_kind kind,
           int fixed_n, ss_stats *st)
{
    ss_world *w = calloc(1, sizeof *w);
    ss_trace *tr = (ss_trace *)trc;     /* why: the run fields of each row are scratch */
    k8s_engine *eng = NULL;
    ss_hpa *hpa = NULL;
    double now = 0, end = tr->span + SS_DRAIN_LIMIT, next_eval = 0, next_hpa = SS_HPA_PHASE;
    double last_hpa = 0;
    long step = 0;
    int next = 0, rc = -1, init;

    memset(st, 0, sizeof *st);
    if (!w)
        return -1;
    w->c = c;
    w->p = p;
    w->tr = tr;
    w->st = st;
    w->acc.load.weight = 1.0;
    w->weight = sc_policy_weight(p, c->model);
    st->name = ss_names[kind];
    st->fixed_n = fixed_n;
    ss_clock = 0;
    mx_set_clock(sim_now);
    mx_init(0, 0, "scalesim");
    mx_set_half_life(p->half_life_s);

    /* the words text: enough for the longest prompt */
    {
        int maxctx = 0;
        for (int i = 0; i < tr->n; i++)
            if (tr->r[i].ctx > maxctx)
                maxctx = tr->r[i].ctx;
        size_t nwords = (size_t)llround(maxctx * c->words_per_token) + 1, o = 0;
        w->words = malloc(nwords * 8 + 1);
        if (!w->words)
            goto out;
        for (size_t k = 0; k < nwords; k++)
            o += (size_t)sprintf(w->words + o, "%s ", ss_vocab[k % (sizeof ss_vocab / sizeof ss_vocab[0])]);
        w->words_len = o;
    }
    if (!(eng = malloc(sizeof *eng)) || !(hpa = malloc(sizeof *hpa)))
        goto out;
    k8s_engine_init(eng);
    if (kind == SS_LITEBRAIN)
        hpa_shipped(hpa, c, p);
    else
        ss_hpa_default(hpa, min_pods(p), p->max_replicas, c->cpu_target);
    init = kind == SS_FIXED ? fixed_n : min_pods(p);
    for (int i = 0; i < init; i++)
        if (pod_add(w, 0, 0) < 0)
            goto out;
    st->nseries = (int)(tr->span / SS_SERIES_STEP) + 1;
    if (!(st->series = calloc((size_t)st->nseries, sizeof *st->series)))
        goto out;

    for (step = 0;; step++) {
        now = step * c->dt;
        for (int i = 0; i < w->npod; i++)
            if (w->pod[i].state == SS_POD_STARTING && w->pod[i].ready_at <= now)
                w->pod[i].state = SS_POD_READY;
        for (int i = 0; i < w->npod; i++)
            pod_work(w, i, now);
        while (next < tr->n && tr->r[next].t <= now) {
            req_arrive(w, next);
            pod_work(w, tr->r[next].pod, now);
            next++;
        }
        if ((kind == SS_LITEBRAIN || kind == SS_ENGINE_FLOOR) && now >= next_eval) {
            hpa->min = engine_eval(w, eng, now);
            next_eval += p->eval_interval_s;
        }
        if (kind != SS_FIXED && now >= next_hpa) {
            ss_hpa_input in;
            hpa_input(w, now, last_hpa, &in);
            set_replicas(w, ss_hpa_sync(hpa, now, &in), now);
            last_hpa = now;
            next_hpa += SS_HPA_PERIOD;
        }
        {
            int pods = 0;
            for (int i = 0; i < w->npod; i++)
                if (w->pod[i].state != SS_POD_GONE)
                    pods++;
            if (now <= tr->span)    /* why: over the trace only, so drain tails compare fairly */
                st->replica_minutes += pods * c->dt / SS_MINUTE;
            if (pods > st->max_replicas)
                st->max_replicas = pods;
            long si = (long)(now / SS_SERIES_STEP);
            if (si < st->nseries && fmod(now, SS_SERIES_STEP) < c->dt)
                st->series[si] = pods;
        }
        if (next == tr->n && st->served == tr->n)
            break;
        if (now >= end)
            break;
    }
    rc = finish_stats(w, now);
out:
    for (int i = 0; i < w->npod; i++)
        sc_scorer_free(w->pod[i].sc);
    free(w->body);
    free(w->words);
    free(w);
    free(eng);
    free(hpa);
    return rc;
}

void ss_stats_free(ss_stats *st)
{
    free(st->min_p95);
    free(st->series);
    st->min_p95 = NULL;
    st->series = NULL;
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: scalesim [options]\n"
        "  --trace FILE         CSV TIMESTAMP,ContextTokens,GeneratedTokens (default bench/data/azure-llm-trace-code-2023.csv)\n"
        "  --policy FILE        scaling policy JSON (default: the seed policy)\n"
        "  --slo SECONDS        p95 queue wait per minute that counts as a miss (default 2)\n"
        "  --minutes M          replay only the first M minutes (default all)\n"
        "  --model NAME         model the requests name (default qwen2.5:3b)\n"
        "  --parallel N         slots per pod (default 4)\n"
        "  --prefill-tps R      prompt tokens/s per slot at weight 1 (default 4000)\n"
        "  --decode-tps R       output tokens/s per slot at weight 1 (default 50)\n"
        "  --cold-start S       seconds from scale-up to serving (default 60)\n"
        "  --fixed N            fixed fleet size (default: the policy's maxReplicas)\n"
        "  --cpu-target PCT     HPA CPU averageUtilization (default 70)\n"
        "  --thrash-window S    a reversal within S seconds counts as thrash (default 300)\n"
        "  --words-per-token W  synthetic prompt words per context token (default 0.75)\n"
        "  --dt S               simulation step (default 0.01)\n"
        "  --svg FILE           chart (default bench/out/scalesim.svg)\n");
}

/* Parse a number flag in [lo, hi]; prints one line and exits 2 on a bad value. */
static double num_arg(const char *name, const char *v, double lo, double hi)
{
    char *e;
    double x = strtod(v, &e);
    if (e == v || *e || !isfinite(x) || x < lo || x > hi) {
        fprintf(stderr, "scalesim: --%s: bad value '%s' (want %g to %g)\n", name, v, lo, hi);
        exit(2);
    }
    return x;
}

/* Parse a whole-number flag in [lo, hi]; prints one line and exits 2 on a bad value. */
static int int_arg(const char *name, const char *v, int lo, int hi)
{
    double x = num_arg(name, v, lo, hi);
    if (x != (double)(int)x) {
        fprintf(stderr, "scalesim: --%s: bad value '%s' (want a whole number)\n", name, v);
        exit(2);
    }
    return (int)x;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"trace", 1, 0, 't'}, {"policy", 1, 0, 'p'}, {"slo", 1, 0, 's'}, {"minutes", 1, 0, 'm'},
        {"model", 1, 0, 'M'}, {"parallel", 1, 0, 'P'}, {"prefill-tps", 1, 0, 'f'},
        {"decode-tps", 1, 0, 'd'}, {"cold-start", 1, 0, 'c'}, {"fixed", 1, 0, 'F'},
        {"cpu-target", 1, 0, 'C'}, {"thrash-window", 1, 0, 'T'}, {"words-per-token", 1, 0, 'w'},
        {"dt", 1, 0, 'D'}, {"svg", 1, 0, 'S'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0},
    };
    ss_config c = {
        .trace_path = "bench/data/azure-llm-trace-code-2023.csv", .policy_path = NULL,
        .svg_path = "bench/out/scalesim.svg", .model = "qwen2.5:3b", .slo = 2.0, .minutes = 0,
        .parallel = 4, .prefill_tps = 4000, .decode_tps = 50, .cold_start = 60, .fixed = 0,
        .cpu_target = 0.70, .thrash_window = 300, .words_per_token = 0.75, .dt = 0.01,
    };
    ss_stats st[SS_STRATEGIES];
    sc_policy pol;
    ss_trace tr;
    char err[256];
    int o, k, fixed_ok = -1;

    opterr = 0;                         /* why: one line of our own per bad flag */
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 't': c.trace_path = optarg; break;
        case 'p': c.policy_path = optarg; break;
        case 's': c.slo = num_arg("slo", optarg, 0, HUGE_VAL); break;
        case 'm': c.minutes = num_arg("minutes", optarg, 0, HUGE_VAL); break;
        case 'M': c.model = optarg; break;
        case 'P': c.parallel = int_arg("parallel", optarg, 1, SS_SLOTS_MAX); break;
        case 'f': c.prefill_tps = num_arg("prefill-tps", optarg, 1e-3, HUGE_VAL); break;
        case 'd': c.decode_tps = num_arg("decode-tps", optarg, 1e-3, HUGE_VAL); break;
        case 'c': c.cold_start = num_arg("cold-start", optarg, 0, HUGE_VAL); break;
        case 'F': c.fixed = int_arg("fixed", optarg, 0, SS_PODS_MAX); break;
        case 'C': c.cpu_target = num_arg("cpu-target", optarg, 1, HUGE_VAL) / 100.0; break;
        case 'T': c.thrash_window = num_arg("thrash-window", optarg, 0, HUGE_VAL); break;
        case 'w': c.words_per_token = num_arg("words-per-token", optarg, 0, HUGE_VAL); break;
        case 'D': c.dt = num_arg("dt", optarg, 1e-4, 1); break;
        case 'S': c.svg_path = optarg; break;
        case 'h': usage(stdout); return 0;
        default:
            fprintf(stderr, "scalesim: bad flag '%s' (see --help)\n", argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "scalesim: unexpected argument '%s' (see --help)\n", argv[optind]);
        return 2;
    }
    sc_policy_default(&pol);
    if (c.policy_path && sc_policy_load(&pol, c.policy_path, err, sizeof err) < 0) {
        fprintf(stderr, "scalesim: %s\n", err);
        return 2;
    }
    if (ss_trace_load(&tr, c.trace_path, c.minutes) < 0)
        return 2;

    /* the smallest fixed fleet with no minute over the SLO, by bisection (more pods never
     * make a minute worse: the same requests meet more free slots) */
    {
        int lo = 0, hi = SS_FIXED_SEARCH_MAX;
        ss_stats probe;
        while (hi - lo > 1) {
            int mid = (lo + hi) / 2;
            if (ss_run(&c, &pol, &tr, SS_FIXED, mid, &probe) < 0)
                goto oom;
            if (probe.slo_minutes == 0)
                hi = mid;
            else
                lo = mid;
            ss_stats_free(&probe);
        }
        fixed_ok = hi;
        if (hi == SS_FIXED_SEARCH_MAX) {    /* the bound itself was never tried */
            if (ss_run(&c, &pol, &tr, SS_FIXED, hi, &probe) < 0)
                goto oom;
            if (probe.slo_minutes > 0)
                fixed_ok = -1;
            ss_stats_free(&probe);
        }
    }
    if (ss_run(&c, &pol, &tr, SS_FIXED, c.fixed > 0 ? c.fixed : pol.max_replicas, &st[0]) < 0 ||
        ss_run(&c, &pol, &tr, SS_HPA_CPU, 0, &st[1]) < 0 ||
        ss_run(&c, &pol, &tr, SS_ENGINE_FLOOR, 0, &st[2]) < 0 ||
        ss_run(&c, &pol, &tr, SS_LITEBRAIN, 0, &st[3]) < 0)
        goto oom;
    ss_print_table(stdout, &c, &pol, &tr, st, SS_STRATEGIES, fixed_ok);
    if (ss_write_svg(c.svg_path, &c, &tr, st, SS_STRATEGIES) < 0) {
        fprintf(stderr, "scalesim: %s: %s\n", c.svg_path, strerror(errno));
        return 1;
    }
    printf("chart: %s\n", c.svg_path);
    for (k = 0; k < SS_STRATEGIES; k++)
        ss_stats_free(&st[k]);
    free(tr.r);
    return 0;
oom:
    fprintf(stderr, "scalesim: out of memory\n");
    return 1;
}
