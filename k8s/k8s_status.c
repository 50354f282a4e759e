/* k8s_status.c — what the controller thread reports: one mutex-protected struct it updates
 * (briefly, never across an API call) and the loop thread copies at scrape time to write
 * /metrics families and the /debug/scaling JSON. */
#include <event2/buffer.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "k8s/k8s_internal.h"
#include "proxy/proxy.h"

static const char *const verbs[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};
#define NVERBS 5

/* One shown recommendation. */
typedef struct win_entry {
    double t;                   /* monotonic time it was made */
    int replicas;               /* raw recommendation */
} win_entry;

/* Everything /debug/scaling and the controller series show. */
typedef struct k8s_status {
    int running;                /* a controller was started */
    k8s_mode mode;              /* effective mode */
    k8s_mode configured;        /* mode asked for (auto resolves to on or dry-run) */
    char identity[K8S_NAME_MAX]; /* our Lease identity */
    char holder[K8S_NAME_MAX];  /* current leader as last observed, "" unknown */
    int is_leader;              /* we hold the Lease */
    int current;                /* replicas the cluster reports, -1 unknown */
    int desired;                /* last stabilized recommendation, -1 none yet */
    int cluster_floor;          /* HPA minReplicas / scale spec.replicas read back, -1 unknown */
    int ceiling;                /* HPA maxReplicas, -1 none/unknown */
    int64_t cpu_m;              /* resource target (millicores), -1 none */
    int64_t mem;                /* resource target (bytes), -1 none */
    char resize_state[64];      /* last resize state ("applied", "Infeasible", ...) */
    k8s_decision recent[K8S_DECISIONS_KEPT]; /* ring of last decisions */
    char action[K8S_DECISIONS_KEPT][K8S_ACTION_MAX]; /* what was done with each */
    int rhead, rlen;            /* ring bookkeeping */
    win_entry win[K8S_WINDOW_SHOWN]; /* last recommendations inside the windows */
    int nwin;                   /* entries in win */
    double up_window, down_window; /* the policy's windows, for the JSON */
    uint64_t decisions[3];      /* by k8s_direction */
    struct { int verb; long code; uint64_t n; } api[K8S_API_CODES_MAX]; /* calls by verb/code */
    int napi;                   /* pairs in use */
    uint64_t api_other;         /* calls beyond the table */
    char last_error[K8S_ERR_MAX]; /* last API error text */
    char last_error_ts[40];     /* when (MicroTime) */
} k8s_status;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static k8s_status g_st;

/* Start afresh for a controller in mode (configured = what was asked). */
void k8s_status_reset(k8s_mode mode, k8s_mode configured, const char *identity)
{
    pthread_mutex_lock(&g_mu);
    memset(&g_st, 0, sizeof g_st);
    g_st.running = 1;
    g_st.mode = mode;
    g_st.configured = configured;
    snprintf(g_st.identity, sizeof g_st.identity, "%s", identity);
    g_st.current = g_st.desired = g_st.cluster_floor = g_st.ceiling = -1;
    g_st.cpu_m = g_st.mem = -1;
    pthread_mutex_unlock(&g_mu);
}

void k8s_status_leader(int is_leader, const char *holder)
{
    pthread_mutex_lock(&g_mu);
    g_st.is_leader = is_leader;
    snprintf(g_st.holder, sizeof g_st.holder, "%s", holder ? holder : "");
    pthread_mutex_unlock(&g_mu);
}

void k8s_status_replicas(int current, int desired, int floor_in_cluster, int ceiling)
{
    pthread_mutex_lock(&g_mu);
    g_st.current = current;
    g_st.desired = desired;
    g_st.cluster_floor = floor_in_cluster;
    g_st.ceiling = ceiling;
    pthread_mutex_unlock(&g_mu);
}

/* Record one decision, what was done with it, and the engine's current window. */
void k8s_status_decision(const k8s_decision *d, const char *action, const k8s_engine *e,
                         const sc_policy *p)
{
    int i, idx, start;

    pthread_mutex_lock(&g_mu);
    idx = (g_st.rhead + g_st.rlen) % K8S_DECISIONS_KEPT;
    if (g_st.rlen == K8S_DECISIONS_KEPT)
        g_st.rhead = (g_st.rhead + 1) % K8S_DECISIONS_KEPT;
    else
        g_st.rlen++;
    g_st.recent[idx] = *d;
    snprintf(g_st.action[idx], sizeof g_st.action[idx], "%s", action);
    g_st.decisions[d->direction]++;
    g_st.desired = d->desired;
    start = e->wlen > K8S_WINDOW_SHOWN ? e->wlen - K8S_WINDOW_SHOWN : 0;
    g_st.nwin = 0;
    for (i = start; i < e->wlen; i++) {
        const k8s_sample *s = &e->win[(e->whead + i) % K8S_WINDOW_MAX];
        g_st.win[g_st.nwin].t = s->t;
        g_st.win[g_st.nwin++].replicas = s->replicas;
    }
    g_st.up_window = p->up_window_s;
    g_st.down_window = p->down_window_s;
    pthread_mutex_unlock(&g_mu);
}

void k8s_status_resources(int64_t cpu_m, int64_t mem, const char *state)
{
    pthread_mutex_lock(&g_mu);
    g_st.cpu_m = cpu_m;
    g_st.mem = mem;
    snprintf(g_st.resize_state, sizeof g_st.resize_state, "%s", state);
    pthread_mutex_unlock(&g_mu);
}

/* Count one API call by verb and status code (0 = no response). */
void k8s_status_api(const char *verb, long code)
{
    int v, i;

    for (v = 0; v < NVERBS && strcmp(verbs[v], verb) != 0; v++)
        ;
    pthread_mutex_lock(&g_mu);
    for (i = 0; i < g_st.napi; i++)
        if (g_st.api[i].verb == v && g_st.api[i].code == code)
            break;
    if (i == g_st.napi && g_st.napi < K8S_API_CODES_MAX) {
        g_st.api[i].verb = v;
        g_st.api[i].code = code;
        g_st.api[i].n = 0;
        g_st.napi++;
    }
    if (i < g_st.napi)
        g_st.api[i].n++;
    else
        g_st.api_other++;
    pthread_mutex_unlock(&g_mu);
}

void k8s_utf8_trim(char *s)
{
    size_t n = strlen(s), i = n, need;
    unsigned char lead;

    while (i > 0 && n - i < 3 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
        i--;                            /* back over continuation bytes to the lead byte */
    if (i == 0)
        return;                         /* nothing but continuation bytes */
    lead = (unsigned char)s[i - 1];     /* the last character's first byte */
    if (lead < 0xC0)
        return;                         /* ASCII, or a stray continuation byte */
    need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (n - (i - 1) < need)
        s[i - 1] = '\0';
}

void k8s_status_error(const char *text)
{
    char ts[40];

    k8s_microtime(ts, sizeof ts);
    pthread_mutex_lock(&g_mu);
    snprintf(g_st.last_error, sizeof g_st.last_error, "%s", text);
    k8s_utf8_trim(g_st.last_error);
    snprintf(g_st.last_error_ts, sizeof g_st.last_error_ts, "%s", ts);
    pthread_mutex_unlock(&g_mu);
}

/* Copy the status (loop thread; the lock is held only for the copy). */
static void snapshot(k8s_status *out)
{
    pthread_mutex_lock(&g_mu);
    memcpy(out, &g_st, sizeof *out);
    pthread_mutex_unlock(&g_mu);
}

/* Controller series for /metrics: complete families, written at scrape time. */
void k8s_collect_metrics(struct evbuffer *out, void *ud)
{
    static k8s_status s;        /* why: large; only the loop thread scrapes */
    static const char *const dirs[] = {"hold", "up", "down"};
    int i;

    (void)ud;
    snapshot(&s);
    evbuffer_add_printf(out,
        "# HELP litebrain_controller_leader 1 when this instance holds the scaling Lease.\n"
        "# TYPE litebrain_controller_leader gauge\nlitebrain_controller_leader %d\n",
        s.is_leader);
    evbuffer_add_printf(out,
        "# HELP litebrain_controller_info Controller mode (effective) as a label.\n"
        "# TYPE litebrain_controller_info gauge\nlitebrain_controller_info{mode=\"%s\"} 1\n",
        s.running ? k8s_mode_name(s.mode) : "off");
    evbuffer_add_printf(out,
        "# HELP litebrain_controller_desired_replicas Stabilized replica recommendation (-1 before the first).\n"
        "# TYPE litebrain_controller_desired_replicas gauge\n"
        "litebrain_controller_desired_replicas %d\n", s.desired);
    evbuffer_add_printf(out,
        "# HELP litebrain_controller_current_replicas Replicas the cluster reports (-1 unknown).\n"
        "# TYPE litebrain_controller_current_replicas gauge\n"
        "litebrain_controller_current_replicas %d\n", s.current);
    evbuffer_add_printf(out,
        "# HELP litebrain_controller_decisions_total Policy evaluations by direction.\n"
        "# TYPE litebrain_controller_decisions_total counter\n");
    for (i = 0; i < 3; i++)
        evbuffer_add_printf(out, "litebrain_controller_decisions_total{direction=\"%s\"} %llu\n",
                            dirs[i], (unsigned long long)s.decisions[i]);
    evbuffer_add_printf(out,
        "# HELP litebrain_controller_api_requests_total Kubernetes API calls by verb and status code (0 = no response).\n"
        "# TYPE litebrain_controller_api_requests_total counter\n");
    for (i = 0; i < s.napi; i++)
        evbuffer_add_printf(out,
            "litebrain_controller_api_requests_total{verb=\"%s\",code=\"%ld\"} %llu\n",
            s.api[i].verb < NVERBS ? verbs[s.api[i].verb] : "other", s.api[i].code,
            (unsigned long long)s.api[i].n);
    if (s.api_other)
        evbuffer_add_printf(out,
            "litebrain_controller_api_requests_total{verb=\"other\",code=\"other\"} %llu\n",
            (unsigned long long)s.api_other);
}

/* /debug/scaling JSON body: mode, leader, replicas, window, decisions, last API error. */
void k8s_debug_json(struct evbuffer *out, void *ud)
{
    static k8s_status s;
    static const char *const names[] = {"low", "medium", "high"};
    json_t *o, *arr, *w;
    double now = px_now();
    char cpu[32], mem[32], *txt;
    int i;

    (void)ud;
    snapshot(&s);
    o = json_object();
    json_object_set_new(o, "mode", json_string(s.running ? k8s_mode_name(s.mode) : "off"));
    json_object_set_new(o, "configured_mode", json_string(k8s_mode_name(s.configured)));
    json_object_set_new(o, "identity", json_string(s.identity));
    json_object_set_new(o, "leader", s.holder[0] ? json_string(s.holder) : json_null());
    json_object_set_new(o, "is_leader", json_boolean(s.is_leader));
    json_object_set_new(o, "current_replicas", s.current >= 0 ? json_integer(s.current) : json_null());
    json_object_set_new(o, "desired_replicas", s.desired >= 0 ? json_integer(s.desired) : json_null());
    json_object_set_new(o, "cluster_floor", s.cluster_floor >= 0 ? json_integer(s.cluster_floor) : json_null());
    json_object_set_new(o, "hpa_max_replicas", s.ceiling >= 0 ? json_integer(s.ceiling) : json_null());
    w = json_object();
    json_object_set_new(w, "up_seconds", json_real(s.up_window));
    json_object_set_new(w, "down_seconds", json_real(s.down_window));
    arr = json_array();
    for (i = 0; i < s.nwin; i++)
        json_array_append_new(arr, json_pack("{s:f, s:i}", "age_seconds", now - s.win[i].t,
                                             "replicas", s.win[i].replicas));
    json_object_set_new(w, "recommendations", arr);
    json_object_set_new(o, "window", w);
    arr = json_array();
    for (i = s.rlen - 1; i >= 0; i--) {     /* newest first */
        int k = (s.rhead + i) % K8S_DECISIONS_KEPT;
        const k8s_decision *d = &s.recent[k];
        json_t *dj = json_pack("{s:f, s:s, s:s, s:i, s:i, s:i, s:s, s:s}",
                               "age_seconds", now - d->t, "direction",
                               k8s_direction_name(d->direction),
                               "level", d->level >= 0 && d->level < 3 ? names[d->level] : "none",
                               "current", d->current, "raw", d->raw, "desired", d->desired,
                               "reason", d->reason, "action", s.action[k]);
        json_array_append_new(arr, dj);
    }
    json_object_set_new(o, "decisions", arr);
    if (s.cpu_m >= 0 || s.mem >= 0) {
        k8s_cpu_format(s.cpu_m, cpu, sizeof cpu);
        k8s_mem_format(s.mem, mem, sizeof mem);
        json_object_set_new(o, "resources", json_pack("{s:s, s:s, s:s}", "cpu", cpu,
                                                      "memory", mem, "state", s.resize_state));
    }
    json_object_set_new(o, "last_api_error", s.last_error[0]
                        ? json_pack("{s:s, s:s}", "ts", s.last_error_ts, "error", s.last_error)
                        : json_null());
    txt = json_dumps(o, JSON_COMPACT);
    if (txt) {
        evbuffer_add(out, txt, strlen(txt));
        evbuffer_add(out, "\n", 1);
    }
    free(txt);
    json_decref(o);
}
