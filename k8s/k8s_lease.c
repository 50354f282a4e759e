/* k8s_lease.c — leader election on a coordination.k8s.io/v1 Lease with client-go's semantics:
 * create on 404; another holder's record is respected until it has stopped changing for its
 * leaseDurationSeconds as seen by OUR clock (no cross-node clock comparison); every write is a
 * PUT carrying the resourceVersion read, so of two racing candidates one gets 409; the holder
 * renews every retry period and stops acting once renewals fail past the renew deadline;
 * release writes an empty holder with leaseDurationSeconds 1. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "k8s/k8s_internal.h"
#include "proxy/proxy.h"

#define LEASE_API "/apis/coordination.k8s.io/v1/namespaces/%s/leases"

/* Wall-clock now as a MicroTime: exactly 6 fractional digits and Z. */
void k8s_microtime(char *out, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    char base[32];

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, cap, "%s.%06ldZ", base, ts.tv_nsec / 1000L);
}

/* Prepare an elector for cfg's Lease and identity. */
void k8s_lease_init(k8s_lease *l, const k8s_config *cfg)
{
    memset(l, 0, sizeof *l);
    snprintf(l->name, sizeof l->name, "%s", cfg->lease);
    snprintf(l->ns, sizeof l->ns, "%s", cfg->ns);
    snprintf(l->identity, sizeof l->identity, "%s", cfg->identity);
    l->duration = cfg->lease_s;
    l->renew_deadline = cfg->renew_s;
}

void k8s_lease_free(k8s_lease *l)
{
    free(l->raw);
    l->raw = NULL;
}

/* leaseDurationSeconds is an integer in the API: round up, at least 1. */
static int duration_int(const k8s_lease *l)
{
    int d = (int)ceil(l->duration);
    return d < 1 ? 1 : d;
}

/* Take note of a record read (or written): when its spec differs from the last one seen, it
 * "changed" now — the moment our clock starts counting its leaseDurationSeconds. */
static void observe(k8s_lease *l, json_t *obj, double now)
{
    json_t *spec = json_object_get(obj, "spec");
    json_t *md = json_object_get(obj, "metadata");
    json_t *v;
    char *raw;

    v = json_object_get(md, "resourceVersion");
    snprintf(l->rv, sizeof l->rv, "%s", json_is_string(v) ? json_string_value(v) : "");
    raw = json_dumps(spec ? spec : json_null(), JSON_COMPACT | JSON_SORT_KEYS);
    if (raw && l->raw && strcmp(raw, l->raw) == 0) {
        free(raw);
        return;
    }
    free(l->raw);
    l->raw = raw;
    l->observed_at = now;
    v = json_object_get(spec, "holderIdentity");
    snprintf(l->holder, sizeof l->holder, "%s", json_is_string(v) ? json_string_value(v) : "");
    v = json_object_get(spec, "leaseDurationSeconds");
    l->rec_duration = json_is_integer(v) ? (int)json_integer_value(v) : 0;
    v = json_object_get(spec, "leaseTransitions");
    l->transitions = json_is_integer(v) ? (long)json_integer_value(v) : 0;
    v = json_object_get(spec, "acquireTime");
    snprintf(l->acquire_time, sizeof l->acquire_time, "%s",
             json_is_string(v) ? json_string_value(v) : "");
}

/* The Lease object to write: our identity (or "" to release), with rv when updating. */
static char *lease_body(const k8s_lease *l, const char *holder, int duration,
                        const char *acquire, const char *renew, long transitions, int with_rv)
{
    json_t *md = json_pack("{s:s, s:s}", "name", l->name, "namespace", l->ns);
    json_t *o;
    char *s;

    if (with_rv)
        json_object_set_new(md, "resourceVersion", json_string(l->rv));
    o = json_pack("{s:s, s:s, s:o, s:{s:s, s:i, s:s, s:s, s:I}}",
                  "apiVersion", "coordination.k8s.io/v1", "kind", "Lease", "metadata", md,
                  "spec", "holderIdentity", holder, "leaseDurationSeconds", duration,
                  "acquireTime", acquire, "renewTime", renew,
                  "leaseTransitions", (json_int_t)transitions);
    s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

/* Became or stopped being the holder: one log line and the status. */
static void set_leader(k8s_lease *l, int leader, const char *why)
{
    if (leader != l->leader)
        px_log(PX_LOG_INFO, leader ? "leader elected" : "leader lost",
               "\"lease\":\"%s\",\"identity\":\"%s\",\"reason\":\"%s\"", l->name, l->identity, why);
    if (leader && !l->leader)
        l->terms++;
    l->leader = leader;
    k8s_status_leader(leader, leader ? l->identity : l->holder);
}

/* One tryAcquireOrRenew at now (see k8s_internal.h). */
int k8s_lease_try(k8s_lease *l, k8s_client *c, double now)
{
    char path[K8S_PATH_MAX], t[40], *body = NULL;
    k8s_resp r;
    int mine, ok = 0;
    long code;

    k8s_microtime(t, sizeof t);
    snprintf(path, sizeof path, LEASE_API "/%s", l->ns, l->name);
    code = k8s_call_expect(c, "GET", path, NULL, NULL, 404, &r);
    if (code == 404) {
        k8s_resp_free(&r);
        body = lease_body(l, l->identity, duration_int(l), t, t, 0, 0);
        snprintf(path, sizeof path, LEASE_API, l->ns);
        code = body ? k8s_call_expect(c, "POST", path, "application/json", body, 409, &r) : 0;
        if (code == 200 || code == 201) {
            observe(l, r.json, now);
            l->renewed_at = now;
            set_leader(l, 1, "created the lease");
            ok = 1;
        } else if (code == 409) {
            set_leader(l, 0, "another candidate created the lease first");
        }
        goto out;
    }
    if (code != 200 || !json_is_object(r.json))
        goto out;               /* why: not a verdict; validity runs out at the renew deadline */
    observe(l, r.json, now);
    mine = strcmp(l->holder, l->identity) == 0;
    if (l->holder[0] && !mine && l->observed_at + l->rec_duration > now) {
        set_leader(l, 0, "held by another candidate");
        goto out;
    }
    k8s_resp_free(&r);
    body = lease_body(l, l->identity, duration_int(l), mine && l->acquire_time[0]
                      ? l->acquire_time : t, t, mine ? l->transitions : l->transitions + 1, 1);
    code = body ? k8s_call_expect(c, "PUT", path, "application/json", body, 409, &r) : 0;
    if (code == 200) {
        observe(l, r.json, now);
        l->renewed_at = now;
        set_leader(l, 1, mine ? "renewed" : "took over an expired or released lease");
        ok = 1;
    } else if (code == 409) {
        set_leader(l, 0, "lost the update race (409)");
    }
out:
    free(body);
    k8s_resp_free(&r);
    if (!ok && l->leader && !k8s_lease_valid(l, now))
        set_leader(l, 0, "renewal failed past the renew deadline");
    return ok;
}

/* Leader and renewed within the renew deadline. */
int k8s_lease_valid(const k8s_lease *l, double now)
{
    return l->leader && now - l->renewed_at < l->renew_deadline;
}

/* Give the Lease up so a successor need not wait out the duration. */
int k8s_lease_release(k8s_lease *l, k8s_client *c, double now)
{
    char path[K8S_PATH_MAX], t[40], *body;
    k8s_resp r;
    long code;

    (void)now;
    if (!l->leader)
        return 0;
    k8s_microtime(t, sizeof t);
    snprintf(path, sizeof path, LEASE_API "/%s", l->ns, l->name);
    body = lease_body(l, "", 1, t, t, l->transitions, 1);
    code = body ? k8s_call(c, "PUT", path, "application/json", body, &r) : 0;
    free(body);
    k8s_resp_free(&r);
    set_leader(l, 0, code == 200 ? "released on shutdown" : "release failed on shutdown");
    return code == 200 ? 0 : -1;
}
