/* k8s_ctl.c — the controller thread: drains scale hints, evaluates the policy every
 * evaluationIntervalSeconds, runs Lease leader election (mode on), moves the HPA floor or the
 * Deployment's scale (leader only), resizes its own pod in place, and logs every decision.
 * Everything here runs on the controller thread except k8s_start/k8s_stop (main thread). */
#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "k8s/k8s_internal.h"
#include "proxy/proxy.h"

/* What the hints told us since the last evaluation. */
typedef struct hint_acc {
    double complexity;          /* last TICK's decayed gauge */
    int active;                 /* last TICK's active requests */
    int waiting;                /* last TICK's waiting requests */
    k8s_load load;              /* model weights of started / in-flight requests */
} hint_acc;

/* What the cluster said at the last read. */
typedef struct cluster {
    int current;                /* HPA status.currentReplicas / scale status.replicas, -1 */
    int floor;                  /* HPA spec.minReplicas / scale spec.replicas, -1 */
    int ceiling;                /* HPA spec.maxReplicas, -1 */
    int64_t pod_cpu_m;          /* our container's CPU in its spec (limit, else request), -1 */
    int64_t pod_mem;            /* same for memory, -1 */
    int64_t req_cpu_m, lim_cpu_m, req_mem, lim_mem; /* the raw spec values, -1 absent */
    char resize[64];            /* "", "InProgress", "Deferred", "Infeasible" */
} cluster;

typedef struct ctl {
    k8s_mode mode;              /* effective: DRY_RUN or ON */
    sc_policy policy;           /* copy */
    k8s_config cfg;             /* settings */
    k8s_client *client;         /* NULL without credentials */
    double call_timeout;        /* bound of one API call, seconds */
    k8s_lease lease;            /* elector (mode on) */
    k8s_engine engine;          /* policy state */
    hint_acc acc;               /* hints */
    cluster cl;                 /* cluster view */
    k8s_decision last;          /* last decision */
    int have_decision;          /* last is set */
    k8s_backoff write_bo;       /* replica writes (reset when leadership is gained) */
    unsigned write_term;        /* the lease term write_bo belongs to (lease.terms) */
    k8s_backoff resize_bo;      /* resize patches */
    int64_t resize_sent_cpu, resize_sent_mem; /* last resize target sent, -1 none */
    int resize_judged;          /* the kubelet's verdict on that resize was taken into account */
    int mem_down_refused;       /* the API server refuses memory-limit decreases (< 1.35) */
    pthread_t thread;           /* the controller thread */
    pthread_mutex_t mu;         /* guards stop (with cv) */
    pthread_cond_t cv;          /* signalled by k8s_stop */
    int stop;                   /* set by k8s_stop */
    int draining;               /* set by k8s_drain: release the Lease, act no more */
    int shutting_down;          /* the thread saw draining (thread-local copy) */
} ctl;

static ctl *g_ctl;

/* Sleep until now + s or until k8s_stop. */
static void ctl_wait(ctl *c, double s)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)s;
    ts.tv_nsec += (long)((s - floor(s)) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&c->mu);
    if (!c->stop)
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    pthread_mutex_unlock(&c->mu);
}

static int ctl_stopping(ctl *c)
{
    int s;

    pthread_mutex_lock(&c->mu);
    s = c->stop;
    pthread_mutex_unlock(&c->mu);
    return s;
}

static int ctl_draining(ctl *c)
{
    int s;

    pthread_mutex_lock(&c->mu);
    s = c->draining;
    pthread_mutex_unlock(&c->mu);
    return s;
}

/* Fold queued hints into the accumulator. */
static void drain_hints(ctl *c)
{
    k8s_hint h;
    hint_acc *a = &c->acc;

    while (k8s_hint_take(&h)) {
        double w = h.weight > 0 ? h.weight : 1.0;
        switch (h.kind) {
        case K8S_HINT_START:
            k8s_load_start(&a->load, w);
            break;
        case K8S_HINT_FINISH:
            k8s_load_finish(&a->load, w);
            break;
        case K8S_HINT_TICK:
            a->complexity = h.complexity;
            a->active = h.active;
            a->waiting = h.waiting;
            if (h.active == 0) {        /* why: resync, in case a hint was dropped */
                a->load.inflight = 0;
                a->load.inflight_w = 0;
            }
            break;
        }
    }
}

/* Integer field at a JSON path of two keys, or -1. */
static int jint2(json_t *o, const char *a, const char *b)
{
    json_t *v = json_object_get(json_object_get(o, a), b);
    return json_is_integer(v) ? (int)json_integer_value(v) : -1;
}

/* Path of the replica object we read and write. */
static void target_path(const ctl *c, char *out, size_t cap)
{
    if (c->cfg.hpa[0])
        snprintf(out, cap, "/apis/autoscaling/v2/namespaces/%s/horizontalpodautoscalers/%s",
                 c->cfg.ns, c->cfg.hpa);
    else
        snprintf(out, cap, "/apis/apps/v1/namespaces/%s/deployments/%s/scale",
                 c->cfg.ns, c->cfg.deployment);
}

/* Take current/floor/ceiling from an HPA or Scale object. */
static void read_replicas(ctl *c, json_t *o)
{
    if (c->cfg.hpa[0]) {
        c->cl.current = jint2(o, "status", "currentReplicas");
        c->cl.floor = jint2(o, "spec", "minReplicas");
        if (c->cl.floor < 0 && json_is_object(json_object_get(o, "spec")))
            c->cl.floor = 1;            /* why: the API's default when the field is absent */
        c->cl.ceiling = jint2(o, "spec", "maxReplicas");
    } else {
        c->cl.current = jint2(o, "status", "replicas");
        c->cl.floor = jint2(o, "spec", "replicas");
        c->cl.ceiling = -1;
    }
}

/* A container's resource quantity, -1 when absent. */
static int64_t res_qty(json_t *res, const char *kind, const char *name, int cpu)
{
    json_t *v = json_object_get(json_object_get(res, kind), name);
    if (!json_is_string(v))
        return -1;
    return cpu ? k8s_cpu_parse(json_string_value(v)) : k8s_mem_parse(json_string_value(v));
}

/* Read our container's resources and the pod's resize conditions. */
static void read_pod(ctl *c, json_t *pod)
{
    json_t *ctrs = json_object_get(json_object_get(pod, "spec"), "containers");
    json_t *conds = json_object_get(json_object_get(pod, "status"), "conditions");
    json_t *gen = json_object_get(json_object_get(pod, "metadata"), "generation");
    json_t *ct, *cd;
    size_t i;

    c->cl.resize[0] = '\0';
    json_array_foreach(ctrs, i, ct) {
        json_t *n = json_object_get(ct, "name"), *res;
        if (!json_is_string(n) || strcmp(json_string_value(n), c->cfg.container) != 0)
            continue;
        res = json_object_get(ct, "resources");
        c->cl.req_cpu_m = res_qty(res, "requests", "cpu", 1);
        c->cl.lim_cpu_m = res_qty(res, "limits", "cpu", 1);
        c->cl.req_mem = res_qty(res, "requests", "memory", 0);
        c->cl.lim_mem = res_qty(res, "limits", "memory", 0);
        c->cl.pod_cpu_m = c->cl.lim_cpu_m >= 0 ? c->cl.lim_cpu_m : c->cl.req_cpu_m;
        c->cl.pod_mem = c->cl.lim_mem >= 0 ? c->cl.lim_mem : c->cl.req_mem;
    }
    json_array_foreach(conds, i, cd) {
        const char *t = json_string_value(json_object_get(cd, "type"));
        const char *st = json_string_value(json_object_get(cd, "status"));
        const char *why = json_string_value(json_object_get(cd, "reason"));
        json_t *og = json_object_get(cd, "observedGeneration");
        if (!t || (st && strcmp(st, "True") != 0))
            continue;
        /* why: a condition about an older spec is not about the resize now in the spec (where
         * the API server tracks generations; older ones report no observedGeneration) */
        if (json_is_integer(og) && json_is_integer(gen) &&
            json_integer_value(og) != json_integer_value(gen))
            continue;
        if (strcmp(t, "PodResizeInProgress") == 0 && !c->cl.resize[0])
            snprintf(c->cl.resize, sizeof c->cl.resize, "InProgress");
        else if (strcmp(t, "PodResizePending") == 0)
            snprintf(c->cl.resize, sizeof c->cl.resize, "%s", why ? why : "Pending");
    }
}

/* GET what the evaluation needs.  Failures leave the fields unknown (-1). */
static void observe_cluster(ctl *c)
{
    char path[K8S_PATH_MAX];
    k8s_resp r;

    c->cl.current = c->cl.floor = c->cl.ceiling = -1;
    if (!c->client)
        return;
    target_path(c, path, sizeof path);
    if (k8s_call(c->client, "GET", path, NULL, NULL, &r) == 200)
        read_replicas(c, r.json);
    k8s_resp_free(&r);
    if (c->policy.has_resources && c->cfg.pod[0]) {
        snprintf(path, sizeof path, "/api/v1/namespaces/%s/pods/%s", c->cfg.ns, c->cfg.pod);
        c->cl.pod_cpu_m = c->cl.pod_mem = -1;
        c->cl.req_cpu_m = c->cl.lim_cpu_m = c->cl.req_mem = c->cl.lim_mem = -1;
        if (k8s_call(c->client, "GET", path, NULL, NULL, &r) == 200)
            read_pod(c, r.json);
        k8s_resp_free(&r);
    }
}

/* Write the floor (leader, mode on): merge-patch HPA minReplicas or the scale's replicas.
 * Only when it differs from what the cluster has; failures back off. */
static void write_replicas(ctl *c, double now, char *action, size_t cap)
{
    char path[K8S_PATH_MAX], body[128];
    int want = c->last.desired;
    k8s_resp r;
    long code;

    if (c->cl.floor < 0) {
        snprintf(action, cap, "no write: cluster state unknown");
        return;
    }
    /* why again: the caller decided before its GETs, which may have used up the renew
     * deadline; past it another pod may take the Lease, and two writers must never overlap */
    if (!k8s_lease_valid(&c->lease, px_now())) {
        snprintf(action, cap, "no write: lease renewal older than the renew deadline");
        return;
    }
    /* why: a successor may take the Lease once its duration has passed since our last renewal
     * was sent (renewed_at), and the write may take up to a call timeout to land: it must be
     * sent early enough to land before that (and so must its retry after a 401: k8s_call_by) */
    if (px_now() + c->call_timeout >= c->lease.renewed_at + c->lease.duration) {
        snprintf(action, cap, "no write: the lease could pass to another pod before it lands");
        return;
    }
    if (want == c->cl.floor) {
        snprintf(action, cap, "unchanged");
        return;
    }
    if (now < c->write_bo.next) {
        snprintf(action, cap, "backing off");
        return;
    }
    target_path(c, path, sizeof path);
    snprintf(body, sizeof body, c->cfg.hpa[0] ? "{\"spec\":{\"minReplicas\":%d}}"
             : "{\"spec\":{\"replicas\":%d}}", want);
    code = k8s_call_by(c->client, "PATCH", path, "application/merge-patch+json", body,
                       c->lease.renewed_at + c->lease.duration, &r);
    if (code == 200) {
        int before = c->cl.floor;           /* why kept: read_replicas sets the new value */
        k8s_backoff_ok(&c->write_bo);
        read_replicas(c, r.json);
        snprintf(action, cap, "%s %d -> %d", c->cfg.hpa[0] ? "set hpa minReplicas"
                 : "set scale replicas", before, want);
        c->cl.floor = want;
    } else {
        k8s_backoff_fail(&c->write_bo, px_now(), r.retry_after, K8S_BACKOFF_BASE, K8S_BACKOFF_CAP);
        snprintf(action, cap, "write failed (%ld), retry in %.2fs", code, c->write_bo.next - now);
    }
    px_log(code == 200 ? PX_LOG_INFO : PX_LOG_WARN, "scale write",
           "\"target\":\"%s\",\"value\":%d,\"code\":%ld", c->cfg.hpa[0] ? "hpa" : "scale",
           want, code);
    k8s_resp_free(&r);
}

/* New requests/limits for one resource keeping the QoS class (rules in README). */
static void qos_pair(int64_t req, int64_t lim, int64_t target, int64_t unit,
                     int64_t *nreq, int64_t *nlim)
{
    *nreq = *nlim = -1;
    if (lim >= 0) {
        *nlim = target;
        if (req < 0 || req == lim)
            *nreq = req < 0 ? -1 : target;      /* Guaranteed stays Guaranteed */
        else {
            *nreq = (int64_t)((double)req / (double)lim * (double)target / (double)unit) * unit;
            if (*nreq >= target)
                *nreq = target - unit;           /* Burstable stays Burstable */
            if (*nreq < unit)
                *nreq = unit;
        }
    } else if (req >= 0) {
        *nreq = target;
    }
}

/* Add "name": quantity to obj when v >= 0. */
static void put_qty(json_t *obj, const char *name, int64_t v, int cpu)
{
    char q[32];

    if (v < 0)
        return;
    if (cpu)
        k8s_cpu_format(v, q, sizeof q);
    else
        k8s_mem_format(v, q, sizeof q);
    json_object_set_new(obj, name, json_string(q));
}

/* PATCH our container's resources to cpu tc and, when with_mem, memory tm (keeping the QoS
 * class: see qos_pair).  Returns the HTTP status (0: no answer), r filled. */
static long send_resize(ctl *c, int64_t tc, int64_t tm, int with_mem, k8s_resp *r)
{
    json_t *req = json_object(), *lim = json_object(), *ct, *body;
    char path[K8S_PATH_MAX], *txt;
    int64_t rq, lm;
    long code;

    qos_pair(c->cl.req_cpu_m, c->cl.lim_cpu_m, tc, 1, &rq, &lm);
    put_qty(req, "cpu", rq, 1);
    put_qty(lim, "cpu", lm, 1);
    if (with_mem) {
        qos_pair(c->cl.req_mem, c->cl.lim_mem, tm, 1048576, &rq, &lm);
        put_qty(req, "memory", rq, 0);
        put_qty(lim, "memory", lm, 0);
    }
    ct = json_pack("{s:s, s:{}}", "name", c->cfg.container, "resources");
    if (json_object_size(req))
        json_object_set(json_object_get(ct, "resources"), "requests", req);
    if (json_object_size(lim))
        json_object_set(json_object_get(ct, "resources"), "limits", lim);
    body = json_pack("{s:{s:[o]}}", "spec", "containers", ct);
    txt = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    json_decref(req);
    json_decref(lim);
    snprintf(path, sizeof path, "/api/v1/namespaces/%s/pods/%s/resize", c->cfg.ns, c->cfg.pod);
    code = txt ? k8s_call(c->client, "PATCH", path, "application/strategic-merge-patch+json",
                          txt, r) : 0;
    free(txt);
    return code;
}

/* Resize our own container to the stabilized target (mode on, every pod).  The kubelet's
 * verdict (PodResizePending Infeasible / Deferred, PodResizeInProgress) comes later than the
 * PATCH's answer, which still carries the old conditions: it is read from the pod at the next
 * evaluation, and an Infeasible verdict on the spec we sent arms the backoff once. */
static void resize_pod(ctl *c, double now)
{
    int64_t tc = c->last.cpu_m, tm = c->last.mem;
    char state[64];
    k8s_resp r = {0};
    long code;

    snprintf(state, sizeof state, "%s", c->cl.resize[0] ? c->cl.resize : "applied");
    if (c->mem_down_refused && c->cl.pod_mem >= 0 && tm < c->cl.pod_mem)
        tm = c->cl.pod_mem;                     /* why: this API server keeps memory limits up */
    if (strcmp(c->cl.resize, "Infeasible") == 0 && !c->resize_judged &&
        c->cl.pod_cpu_m == c->resize_sent_cpu && c->cl.pod_mem == c->resize_sent_mem) {
        /* why: the same target again would only be refused again; wait, growing each time */
        c->resize_judged = 1;
        k8s_backoff_fail(&c->resize_bo, now, -1, K8S_RESIZE_BACKOFF_BASE, K8S_RESIZE_BACKOFF_CAP);
    }
    if ((c->cl.pod_cpu_m < 0 || tc == c->cl.pod_cpu_m) && (c->cl.pod_mem < 0 || tm == c->cl.pod_mem))
        goto out;                               /* spec already says so (or nothing to size) */
    if (c->cl.pod_cpu_m < 0 && c->cl.pod_mem < 0) {
        snprintf(state, sizeof state, "skipped: no requests or limits to keep the QoS class");
        goto out;
    }
    if (strcmp(c->cl.resize, "InProgress") == 0 || strcmp(c->cl.resize, "Deferred") == 0)
        goto out;                               /* why: the kubelet is on it; wait */
    if (now < c->resize_bo.next) {
        snprintf(state, sizeof state, "backing off");
        goto out;
    }
    code = send_resize(c, tc, tm, 1, &r);
    if (code == 422 && c->cl.pod_mem >= 0 && tm < c->cl.pod_mem &&
        strstr(r.message, "memory limits cannot be decreased")) {
        /* why: Kubernetes 1.33 and 1.34 refuse a memory-limit decrease without a container
         * restart, and the CPU in the same patch with it: resize CPU alone from now on */
        c->mem_down_refused = 1;
        px_log(PX_LOG_WARN, "pod resize: memory limit decrease refused, resizing CPU only",
               "\"pod\":\"%s\",\"container\":\"%s\"", c->cfg.pod, c->cfg.container);
        k8s_resp_free(&r);
        memset(&r, 0, sizeof r);
        tm = c->cl.pod_mem;
        snprintf(state, sizeof state, "memory decrease refused");
        if (c->cl.pod_cpu_m < 0 || tc == c->cl.pod_cpu_m)
            goto out;                           /* nothing left to change */
        code = send_resize(c, tc, tm, 0, &r);
    }
    if (code == 200) {
        c->resize_sent_cpu = tc;
        c->resize_sent_mem = tm;
        c->resize_judged = 0;
        k8s_backoff_ok(&c->resize_bo);
        snprintf(state, sizeof state, "patched");
    } else {
        k8s_backoff_fail(&c->resize_bo, px_now(), r.retry_after, K8S_RESIZE_BACKOFF_BASE,
                         K8S_RESIZE_BACKOFF_CAP);
        snprintf(state, sizeof state, "patch failed (%ld)", code);
    }
    px_log(code == 200 ? PX_LOG_INFO : PX_LOG_WARN, "pod resize",
           "\"pod\":\"%s\",\"container\":\"%s\",\"cpu_m\":%lld,\"memory\":%lld,\"code\":%ld,"
           "\"state\":\"%s\"", c->cfg.pod, c->cfg.container, (long long)tc, (long long)tm,
           code, state);
    k8s_resp_free(&r);
out:
    k8s_status_resources(tc, tm, state);
}

/* One evaluation: read the cluster, run the engine, act, log, record. */
static void evaluate(ctl *c, double now)
{
    k8s_snapshot s;
    hint_acc *a = &c->acc;
    char action[K8S_ACTION_MAX], esc[2 * K8S_REASON_MAX];
    int leader = c->mode == K8S_MODE_ON && k8s_lease_valid(&c->lease, now);
    double mean_w;

    observe_cluster(c);
    mean_w = k8s_load_roll(&a->load, a->active);
    memset(&s, 0, sizeof s);
    s.now = now;
    s.complexity = a->complexity;
    s.active = a->active;
    s.waiting = a->waiting;
    s.load = a->active * mean_w;
    s.weight = a->load.weight;
    s.current = c->cl.current;
    s.floor = c->cl.floor;
    s.ceiling = c->cl.ceiling;
    s.pod_cpu_m = c->cl.pod_cpu_m;
    s.pod_mem = c->cl.pod_mem;
    k8s_engine_eval(&c->engine, &c->policy, &s, &c->last);
    c->have_decision = 1;

    if (c->mode == K8S_MODE_DRY_RUN)
        snprintf(action, sizeof action, "dry-run: would set %s to %d",
                 c->cfg.hpa[0] ? "hpa minReplicas" : "scale replicas", c->last.desired);
    else if (c->shutting_down)
        snprintf(action, sizeof action, "shutting down: not acting");
    else if (!leader)
        snprintf(action, sizeof action, "not leader");
    else
        write_replicas(c, now, action, sizeof action);
    if (c->policy.has_resources) {
        if (c->mode == K8S_MODE_ON && c->client && c->cfg.pod[0] && !c->shutting_down)
            resize_pod(c, now);
        else
            k8s_status_resources(c->last.cpu_m, c->last.mem, "dry-run");
    }
    k8s_status_replicas(c->cl.current, c->last.desired, c->cl.floor, c->cl.ceiling);
    k8s_status_decision(&c->last, action, &c->engine, &c->policy);
    px_json_escape(c->last.reason, esc, sizeof esc);
    px_log(PX_LOG_INFO, "scaling decision",
           "\"mode\":\"%s\",\"leader\":%s,\"direction\":\"%s\",\"cx_level\":\"%s\","
           "\"complexity\":%.1f,\"active\":%d,\"waiting\":%d,\"current\":%d,\"raw\":%d,"
           "\"desired\":%d,\"cpu_m\":%lld,\"memory\":%lld,\"reason\":\"%s\",\"action\":\"%s\"",
           k8s_mode_name(c->mode), leader ? "true" : "false",
           k8s_direction_name(c->last.direction), sc_level_name(c->last.level), s.complexity,
           s.active, s.waiting, c->last.current, c->last.raw, c->last.desired,
           (long long)c->last.cpu_m, (long long)c->last.mem, esc, action);
}

/* The controller thread. */
static void *ctl_main(void *arg)
{
    ctl *c = arg;
    double now = px_now();
    double next_eval = now + c->policy.eval_interval_s, next_lease = now, wake;
    int use_lease = c->mode == K8S_MODE_ON && c->client;

    while (!ctl_stopping(c)) {
        drain_hints(c);
        now = px_now();
        if (use_lease && ctl_draining(c)) {
            k8s_lease_release(&c->lease, c->client, now);
            use_lease = 0;
            c->shutting_down = 1;               /* keep deciding and logging, write nothing */
        }
        if (use_lease && now >= next_lease) {
            k8s_lease_try(&c->lease, c->client, now);
            now = px_now();
            if (c->lease.terms != c->write_term) {  /* why: a past term's backoff is not this one's */
                k8s_backoff_ok(&c->write_bo);
                c->write_term = c->lease.terms;
            }
            /* why: the holder renews on the retry period; candidates add jitter */
            next_lease = now + c->cfg.retry_s * (c->lease.leader ? 1.0
                         : 1.0 + (K8S_LEASE_JITTER - 1.0) * ((double)random() / RAND_MAX));
        }
        if (now >= next_eval) {
            evaluate(c, now);
            next_eval += c->policy.eval_interval_s;
            if (next_eval <= px_now())
                next_eval = px_now() + c->policy.eval_interval_s;
        } else if (c->have_decision && use_lease && k8s_lease_valid(&c->lease, now)
                   && c->last.desired != c->cl.floor && c->cl.floor >= 0
                   && now >= c->write_bo.next) {
            char action[K8S_ACTION_MAX];
            write_replicas(c, now, action, sizeof action);     /* a retry after backoff */
        }
        wake = fmin(next_eval, use_lease ? next_lease : next_eval) - px_now();
        ctl_wait(c, fmax(0.001, fmin(wake, K8S_DRAIN_PERIOD)));
    }
    if (use_lease)
        k8s_lease_release(&c->lease, c->client, px_now());
    return NULL;
}

/* Start the controller thread (see k8s.h). */
int k8s_start(k8s_mode m, const sc_policy *p, char *err, size_t errlen)
{
    ctl *c;
    k8s_mode configured = m;

    if (m == K8S_MODE_OFF || g_ctl)
        return 0;
    c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "controller: out of memory");
        return -1;
    }
    if (k8s_config_from_env(&c->cfg, err, errlen) < 0)
        goto fail;
    if (m == K8S_MODE_AUTO)
        m = c->cfg.have_creds ? K8S_MODE_ON : K8S_MODE_DRY_RUN;
    if (m == K8S_MODE_ON && !c->cfg.have_creds) {
        snprintf(err, errlen, "controller on: no in-cluster credentials (KUBERNETES_SERVICE_HOST"
                 " and %s/{token,namespace})", c->cfg.sa_dir);
        goto fail;
    }
    c->mode = m;
    c->policy = *p;
    curl_global_init(CURL_GLOBAL_DEFAULT);      /* why: main thread, before any other thread */
    c->call_timeout = fmax(K8S_HTTP_TIMEOUT_MIN, fmin(K8S_HTTP_TIMEOUT_MAX, c->cfg.renew_s / 2));
    if (c->cfg.have_creds && !(c->client = k8s_client_new(&c->cfg, c->call_timeout, err, errlen)))
        goto fail;
    k8s_lease_init(&c->lease, &c->cfg);
    k8s_engine_init(&c->engine);
    c->acc.load.weight = 1.0;
    c->cl.current = c->cl.floor = c->cl.ceiling = -1;
    c->cl.pod_cpu_m = c->cl.pod_mem = -1;
    c->resize_sent_cpu = c->resize_sent_mem = -1;
    srandom((unsigned)time(NULL) ^ (unsigned)getpid());
    pthread_mutex_init(&c->mu, NULL);
    {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&c->cv, &ca);
        pthread_condattr_destroy(&ca);
    }
    k8s_status_reset(m, configured, c->cfg.identity);
    k8s_hints_enable(1);
    if (pthread_create(&c->thread, NULL, ctl_main, c) != 0) {
        snprintf(err, errlen, "controller: cannot start thread");
        k8s_hints_enable(0);
        pthread_cond_destroy(&c->cv);
        pthread_mutex_destroy(&c->mu);
        goto fail;
    }
    g_ctl = c;
    px_log(PX_LOG_INFO, "controller started",
           "\"mode\":\"%s\",\"configured\":\"%s\",\"identity\":\"%s\",\"target\":\"%s\","
           "\"credentials\":%s", k8s_mode_name(m), k8s_mode_name(configured), c->cfg.identity,
           c->cfg.hpa[0] ? c->cfg.hpa : c->cfg.deployment, c->cfg.have_creds ? "true" : "false");
    return 0;
fail:
    k8s_client_free(c->client);
    free(c);
    return -1;
}

/* Shutdown began: wake the thread, which releases the Lease and stops acting. */
void k8s_drain(void)
{
    ctl *c = g_ctl;

    if (!c)
        return;
    pthread_mutex_lock(&c->mu);     /* why: only ever held for a flag or a cond wait: short */
    c->draining = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* Stop the thread: release the Lease if held, join.  Safe when never started. */
void k8s_stop(void)
{
    ctl *c = g_ctl;
    k8s_mode c_mode;

    if (!c)
        return;
    c_mode = c->mode;
    pthread_mutex_lock(&c->mu);
    c->stop = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    k8s_hints_enable(0);
    k8s_lease_free(&c->lease);
    k8s_client_free(c->client);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
    g_ctl = NULL;
    px_log(PX_LOG_INFO, "controller stopped", "\"mode\":\"%s\"", k8s_mode_name(c_mode));
}
