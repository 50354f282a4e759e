/* scalesim_hpa.c — a model of the Kubernetes HorizontalPodAutoscaler (autoscaling/v2) as its
 * controller computes one sync: per-metric replica counts with the tolerance and the handling of
 * pods that are not ready yet, the max over metrics, the stabilization windows and the scaling
 * policies (rate limits over periods), then the clamp to [minReplicas, maxReplicas].  Written
 * from the documented algorithm (kubernetes.io "Horizontal Pod Autoscaling" and the HPA
 * behavior API reference). */
#include <limits.h>
#include <math.h>
#include <string.h>
#include "bench/scalesim.h"

#define SS_DEFAULT_SYNC_PERIOD 15.0     /* --horizontal-pod-autoscaler-sync-period */
#define SS_DEFAULT_TOLERANCE 0.1        /* --horizontal-pod-autoscaler-tolerance */
#define SS_DEFAULT_DOWN_WINDOW 300.0    /* default scaleDown.stabilizationWindowSeconds */
#define SS_DEFAULT_UP_PODS 4            /* default scaleUp Pods policy (per 15 s) */
#define SS_PCT 100                      /* default Percent policies (up and down) */

/* Pod HPA with the Kubernetes defaults (see scalesim.h). */
void ss_hpa_default(ss_hpa *h, int min, int max, double cpu_target)
{
    memset(h, 0, sizeof *h);
    h->min = min;
    h->max = max;
    h->cpu_target = cpu_target;
    h->cx_target = 0;
    h->tolerance = SS_DEFAULT_TOLERANCE;
    h->up = (ss_rules){ .window = 0, .pct = SS_PCT, .pct_period = SS_DEFAULT_SYNC_PERIOD,
                        .pods = SS_DEFAULT_UP_PODS, .pods_period = SS_DEFAULT_SYNC_PERIOD,
                        .select_max = 1 };
    h->down = (ss_rules){ .window = SS_DEFAULT_DOWN_WINDOW, .pct = SS_PCT,
                          .pct_period = SS_DEFAULT_SYNC_PERIOD, .pods = -1, .pods_period = 0,
                          .select_max = 1 };
}

/* Replicas one utilization-style metric asks for: ratio = mean / target over the ready pods;
 * within the tolerance keep current.  When scaling up with pods still starting, those count as
 * 0 % (the HPA's conservative rule) and a ratio that then flips or lands in the tolerance keeps
 * current. */
static int metric_replicas(double sum, int ready, int unready, double target, double tol,
                           int current)
{
    double ratio, r2;

    if (ready <= 0 || target <= 0)
        return current;
    ratio = sum / ready / target;
    if (unready > 0 && ratio > 1.0) {
        r2 = sum / (double)(ready + unready) / target;
        if (r2 <= 1.0 || fabs(r2 - 1.0) <= tol)
            return current;
        return (int)ceil(r2 * (ready + unready));
    }
    if (fabs(ratio - 1.0) <= tol)
        return current;
    return (int)ceil(ratio * ready);
}

/* Replicas added (sign +1) or removed (sign -1) by events within period seconds before now. */
static int changed_in(const ss_hpa *h, double now, double period, int sign)
{
    int i, n = h->nev < SS_HPA_EVENTS ? h->nev : SS_HPA_EVENTS, sum = 0;

    for (i = 0; i < n; i++)
        if (h->ev_t[i] > now - period && h->ev_d[i] * sign > 0)
            sum += h->ev_d[i] * sign;
    return sum;
}

/* Largest replica count the scale-up policies allow now. */
static int up_limit(const ss_hpa *h, double now, int current)
{
    const ss_rules *r = &h->up;
    int res = r->select_max ? INT_MIN : INT_MAX, prop, start;

    if (r->pct >= 0) {
        start = current - changed_in(h, now, r->pct_period, 1) + changed_in(h, now, r->pct_period, -1);
        prop = (int)ceil(start * (1.0 + r->pct / 100.0));
        res = r->select_max ? (prop > res ? prop : res) : (prop < res ? prop : res);
    }
    if (r->pods >= 0) {
        start = current - changed_in(h, now, r->pods_period, 1) + changed_in(h, now, r->pods_period, -1);
        prop = start + r->pods;
        res = r->select_max ? (prop > res ? prop : res) : (prop < res ? prop : res);
    }
    if (res == INT_MIN || res == INT_MAX || res < current)
        res = current;          /* why: the HPA never scales down through the scale-up limit */
    return res;
}

/* Smallest replica count the scale-down policies allow now (selectPolicy Max = biggest step). */
static int down_limit(const ss_hpa *h, double now, int current)
{
    const ss_rules *r = &h->down;
    int res = r->select_max ? INT_MAX : INT_MIN, prop, start;

    if (r->pct >= 0) {
        start = current + changed_in(h, now, r->pct_period, -1) - changed_in(h, now, r->pct_period, 1);
        prop = (int)(start * (1.0 - r->pct / 100.0));
        res = r->select_max ? (prop < res ? prop : res) : (prop > res ? prop : res);
    }
    if (r->pods >= 0) {
        start = current + changed_in(h, now, r->pods_period, -1) - changed_in(h, now, r->pods_period, 1);
        prop = start - r->pods;
        res = r->select_max ? (prop < res ? prop : res) : (prop > res ? prop : res);
    }
    if (res == INT_MIN || res == INT_MAX || res > current)
        res = current;
    return res;
}

/* Stabilize desired over the windows: raise current only to the minimum of the up window's
 * recommendations, lower it only to the maximum of the down window's.  Stores desired. */
static int stabilize(ss_hpa *h, double now, int current, int desired)
{
    int up = desired, down = desired, rec = current, i;
    int n = h->nrec < SS_HPA_RECS ? h->nrec : SS_HPA_RECS;

    for (i = 0; i < n; i++) {
        if (h->rec_t[i] > now - h->up.window && h->rec_n[i] < up)
            up = h->rec_n[i];
        if (h->rec_t[i] > now - h->down.window && h->rec_n[i] > down)
            down = h->rec_n[i];
    }
    if (rec < up)
        rec = up;
    if (rec > down)
        rec = down;
    h->rec_t[h->nrec % SS_HPA_RECS] = now;
    h->rec_n[h->nrec % SS_HPA_RECS] = desired;
    h->nrec++;
    return rec;
}

/* One HPA sync (see scalesim.h). */
int ss_hpa_sync(ss_hpa *h, double now, const ss_hpa_input *in)
{
    int cur = in->current, want, cx, out;

    if (cur > h->max) {
        out = h->max;
    } else if (cur < h->min) {
        out = h->min;           /* why: below the floor the HPA jumps straight to it */
    } else {
        want = metric_replicas(in->cpu_sum, in->ready, in->unready, h->cpu_target,
                               h->tolerance, cur);
        if (h->cx_target > 0) {
            /* why: the sidecar of a starting pod already serves its gauge (0), so every
             * pod counts for the Pods metric */
            cx = metric_replicas(in->cx_sum, in->ready + in->unready, 0, h->cx_target,
                                 h->tolerance, cur);
            if (cx > want)
                want = cx;
        }
        out = stabilize(h, now, cur, want);
        if (out > cur) {
            int lim = up_limit(h, now, cur);
            if (out > lim)
                out = lim;
        } else if (out < cur) {
            int lim = down_limit(h, now, cur);
            if (out < lim)
                out = lim;
        }
        if (out > h->max)
            out = h->max;
        if (out < h->min)
            out = h->min;
    }
    if (out != cur) {
        h->ev_t[h->nev % SS_HPA_EVENTS] = now;
        h->ev_d[h->nev % SS_HPA_EVENTS] = out - cur;
        h->nev++;
    }
    return out;
}
