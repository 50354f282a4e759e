/* scalesim_io.c — the scaling simulator's input and output: the trace CSV reader, the text
 * table and an SVG chart (request rate, p95 queue wait and replicas per strategy over time),
 * plain SVG 1.1 any browser opens. */
#include <errno.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "bench/scalesim.h"

#define SS_LINE_MAX 256         /* longest trace CSV line */
#define SVG_W 960               /* chart width, px */
#define SVG_PANEL_H 180         /* height of each of the three panels, px */
#define SVG_GAP 46              /* space above each panel for its title, px */
#define SVG_LEFT 64             /* left margin (axis labels), px */
#define SVG_RIGHT 150           /* right margin (legend), px */
#define SVG_FOOT 40             /* footer (attribution), px */
#define SVG_PANELS 3            /* rate, wait, replicas */

/* Days since 1970-01-01 of a civil date (proleptic Gregorian). */
static long days_of(int y, int m, int d)
{
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400;
    long yoe = y - era * 400;
    long doy = (153L * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Load a trace (see scalesim.h). */
int ss_trace_load(ss_trace *tr, const char *path, double minutes)
{
    char line[SS_LINE_MAX];
    FILE *f = fopen(path, "r");
    double t0 = 0;
    int lineno = 0, y, mo, d, h, mi, ctx, gen;
    double s;

    memset(tr, 0, sizeof *tr);
    if (!f) {
        fprintf(stderr, "scalesim: %s: %s\n", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (sscanf(line, "%d-%d-%d %d:%d:%lf,%d,%d", &y, &mo, &d, &h, &mi, &s, &ctx, &gen) != 8) {
            if (lineno == 1 || line[0] == '\n')
                continue;       /* header or blank line */
            fprintf(stderr, "scalesim: %s:%d: not TIMESTAMP,ContextTokens,GeneratedTokens\n",
                    path, lineno);
            goto err;
        }
        double t = (double)days_of(y, mo, d) * 86400.0 + h * 3600.0 + mi * 60.0 + s;
        if (tr->n == 0)
            t0 = t;
        t -= t0;
        /* why the previous row: every later stage (arrivals, minutes, the span) walks the rows
         * in order, so one row earlier than the one before it would be admitted late */
        if (t < (tr->n ? tr->r[tr->n - 1].t : 0) || ctx < 0 || gen < 0) {
            fprintf(stderr, "scalesim: %s:%d: rows must be in time order with counts >= 0\n",
                    path, lineno);
            goto err;
        }
        if (minutes > 0 && t >= minutes * SS_MINUTE)
            break;
        if (tr->n == tr->cap) {
            int cap = tr->cap ? tr->cap * 2 : 4096;
            ss_req *r = realloc(tr->r, sizeof *r * (size_t)cap);
            if (!r)
                goto err;
            tr->r = r;
            tr->cap = cap;
        }
        memset(&tr->r[tr->n], 0, sizeof tr->r[0]);
        tr->r[tr->n].t = t;
        tr->r[tr->n].ctx = ctx;
        tr->r[tr->n].gen = gen;
        tr->n++;
        tr->span = t;
    }
    fclose(f);
    if (tr->n == 0) {
        fprintf(stderr, "scalesim: %s: no rows\n", path);
        return -1;
    }
    return 0;
err:
    fclose(f);
    free(tr->r);
    tr->r = NULL;
    return -1;
}


static const char *const svg_color[SS_STRATEGIES] = { "#7f7f7f", "#d62728", "#ff7f0e", "#1f77b4" };

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Percentile q of v[0..n) by nearest rank (sorts v). */
double ss_percentile(double *v, int n, double q)
{
    int k;
    if (n <= 0)
        return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    k = (int)ceil(q * n) - 1;
    if (k < 0)
        k = 0;
    if (k >= n)
        k = n - 1;
    return v[k];
}

/* The results table (see scalesim.h). */
void ss_print_table(FILE *out, const ss_config *c, const sc_policy *p, const ss_trace *tr,
                    const ss_stats *st, int n, int fixed_ok)
{
    fprintf(out, "scalesim: %d requests over %.1f min from %s\n", tr->n, tr->span / SS_MINUTE,
            c->trace_path);
    fprintf(out, "  %s\n", SS_ATTRIBUTION);
    fprintf(out, "  fleet: %d slots/pod, prefill %.0f tok/s, decode %.1f tok/s per slot "
            "(model %s, weight %.2f), cold start %.0f s; SLO p95 queue wait %.1f s per minute\n",
            c->parallel, c->prefill_tps, c->decode_tps, c->model, sc_policy_weight(p, c->model),
            c->cold_start, c->slo);
    fprintf(out, "  policy: %s (min %d, max %d, scaleUpScore %.0f, eval %.0f s, up/down windows "
            "%.0f/%.0f s)\n", c->policy_path ? c->policy_path : "seed", p->min_replicas,
            p->max_replicas, p->scale_up_score, p->eval_interval_s, p->up_window_s,
            p->down_window_s);
    fprintf(out, "\n| strategy | replica-min | p50 wait s | p95 wait s | p99 wait s | "
            "min p95>SLO | scale events | thrash | max pods |\n");
    fprintf(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < n; i++) {
        char name[48];
        if (st[i].fixed_n > 0)
            snprintf(name, sizeof name, "%s (%d)", st[i].name, st[i].fixed_n);
        else
            snprintf(name, sizeof name, "%s", st[i].name);
        fprintf(out, "| %s | %.1f | %.2f | %.2f | %.2f | %d / %d | %d | %d | %d |\n", name,
                st[i].replica_minutes, st[i].p50, st[i].p95, st[i].p99, st[i].slo_minutes,
                st[i].nmin, st[i].scale_events, st[i].thrash, st[i].max_replicas);
    }
    fprintf(out, "\nscores (per pod's scorer, litebrain run): low %d, medium %d, high %d\n",
            st[n - 1].level_n[SC_LEVEL_LOW], st[n - 1].level_n[SC_LEVEL_MEDIUM],
            st[n - 1].level_n[SC_LEVEL_HIGH]);
    if (fixed_ok > 0)
        fprintf(out, "smallest fixed fleet with no minute over the SLO: %d pods (%.0f replica-min)\n",
                fixed_ok, fixed_ok * tr->span / SS_MINUTE);
    else
        fprintf(out, "no fixed fleet up to the search bound meets the SLO in every minute\n");
    fprintf(out, "\n");
}

/* mkdir -p of the directory part of path. */
static void mkdir_parent(const char *path)
{
    char buf[1024];
    size_t len = strlen(path);
    if (len >= sizeof buf)
        return;
    memcpy(buf, path, len + 1);
    for (char *q = buf + 1; *q; q++) {
        if (*q == '/') {
            *q = '\0';
            mkdir(buf, 0755);
            *q = '/';
        }
    }
}

/* A panel frame: title, y axis from 0 to ymax with a few grid lines, x axis in minutes. */
static void panel(FILE *f, int top, const char *title, double ymax, const char *unit, double minutes)
{
    int w = SVG_W - SVG_LEFT - SVG_RIGHT;
    fprintf(f, "<text x='%d' y='%d' font-weight='bold'>%s</text>\n", SVG_LEFT, top - 12, title);
    fprintf(f, "<rect x='%d' y='%d' width='%d' height='%d' fill='none' stroke='#999'/>\n",
            SVG_LEFT, top, w, SVG_PANEL_H);
    for (int g = 0; g <= 4; g++) {
        double v = ymax * g / 4;
        int y = top + SVG_PANEL_H - (int)(SVG_PANEL_H * g / 4);
        fprintf(f, "<line x1='%d' y1='%d' x2='%d' y2='%d' stroke='#eee'/>", SVG_LEFT, y,
                SVG_LEFT + w, y);
        fprintf(f, "<text x='%d' y='%d' text-anchor='end' font-size='11'>%.3g%s</text>\n",
                SVG_LEFT - 4, y + 4, v, g == 4 ? unit : "");
    }
    for (int m = 0; m <= (int)minutes; m += minutes > 20 ? 10 : 1) {
        int x = SVG_LEFT + (int)(w * m / (minutes > 0 ? minutes : 1));
        fprintf(f, "<text x='%d' y='%d' text-anchor='middle' font-size='11'>%d min</text>\n",
                x, top + SVG_PANEL_H + 14, m);
    }
}

/* A polyline of n points (x in minutes, y in units) inside a panel. */
static void line(FILE *f, int top, const double *xs, const double *ys, int n, double minutes,
                 double ymax, const char *color, int step)
{
    int w = SVG_W - SVG_LEFT - SVG_RIGHT;
    double px = 0, py = 0;
    fprintf(f, "<polyline fill='none' stroke='%s' stroke-width='1.5' points='", color);
    for (int i = 0; i < n; i++) {
        double x = SVG_LEFT + w * xs[i] / (minutes > 0 ? minutes : 1);
        double v = ys[i] > ymax ? ymax : ys[i];
        double y = top + SVG_PANEL_H - SVG_PANEL_H * v / (ymax > 0 ? ymax : 1);
        if (step && i > 0)
            fprintf(f, "%.1f,%.1f ", x, py);
        fprintf(f, "%.1f,%.1f ", x, y);
        px = x;
        py = y;
    }
    (void)px;
    fprintf(f, "'/>\n");
}

/* The chart (see scalesim.h). */
int ss_write_svg(const char *path, const ss_config *c, const ss_trace *tr,
                 const ss_stats *st, int n)
{
    int nmin = st[0].nmin, ns = st[0].nseries, rc = -1;
    int h = SVG_PANELS * (SVG_PANEL_H + SVG_GAP) + SVG_FOOT;
    double minutes = st[0].nmin, rmax = 0, wmax = c->slo * 2, pmax = 0;  /* whole minutes */
    double *xs = malloc(sizeof *xs * (size_t)(ns > nmin ? ns : nmin) + sizeof *xs);
    double *ys = malloc(sizeof *ys * (size_t)(ns > nmin ? ns : nmin) + sizeof *ys);
    FILE *f = NULL;

    if (!xs || !ys)
        goto out;
    mkdir_parent(path);
    if (!(f = fopen(path, "w")))
        goto out;
    fprintf(f, "<?xml version='1.0' encoding='UTF-8'?>\n<svg xmlns='http://www.w3.org/2000/svg' "
            "width='%d' height='%d' font-family='sans-serif' font-size='13'>\n"
            "<rect width='100%%' height='100%%' fill='white'/>\n", SVG_W, h);

    /* panel 1: requests per minute */
    for (int m = 0; m < nmin; m++) {
        ys[m] = 0;
        xs[m] = m + 0.5;
    }
    for (int i = 0; i < tr->n; i++) {
        int m = (int)(tr->r[i].t / SS_MINUTE);
        if (m < nmin)
            ys[m]++;
    }
    for (int m = 0; m < nmin; m++)
        rmax = ys[m] > rmax ? ys[m] : rmax;
    int top = SVG_GAP;
    panel(f, top, "Requests per minute (trace)", rmax, "/min", minutes);
    line(f, top, xs, ys, nmin, minutes, rmax, "#2ca02c", 0);

    /* panel 2: p95 queue wait per minute */
    for (int k = 0; k < n; k++)
        for (int m = 0; m < nmin; m++)
            wmax = st[k].min_p95[m] > wmax ? st[k].min_p95[m] : wmax;
    if (wmax > c->slo * 10)
        wmax = c->slo * 10;     /* why: one pathological minute must not flatten the rest */
    top += SVG_PANEL_H + SVG_GAP;
    panel(f, top, "p95 queue wait per minute (clipped; dashed = SLO)", wmax, " s", minutes);
    {
        double y = top + SVG_PANEL_H - SVG_PANEL_H * c->slo / wmax;
        fprintf(f, "<line x1='%d' y1='%.1f' x2='%d' y2='%.1f' stroke='#000' stroke-dasharray='4 3'/>\n",
                SVG_LEFT, y, SVG_W - SVG_RIGHT, y);
    }
    for (int k = 0; k < n; k++) {
        for (int m = 0; m < nmin; m++) {
            xs[m] = m + 0.5;
            ys[m] = st[k].min_p95[m];
        }
        line(f, top, xs, ys, nmin, minutes, wmax, svg_color[k], 0);
    }

    /* panel 3: pods */
    for (int k = 0; k < n; k++)
        for (int i = 0; i < st[k].nseries; i++)
            pmax = st[k].series[i] > pmax ? st[k].series[i] : pmax;
    pmax = ceil(pmax + 1);
    top += SVG_PANEL_H + SVG_GAP;
    panel(f, top, "Pods (starting + ready + draining)", pmax, "", minutes);
    for (int k = 0; k < n; k++) {
        for (int i = 0; i < st[k].nseries; i++) {
            xs[i] = i * SS_SERIES_STEP / SS_MINUTE;
            ys[i] = st[k].series[i] + 0.06 * (k - 1.5);   /* why: keep equal lines visible */
        }
        line(f, top, xs, ys, st[k].nseries, minutes, pmax, svg_color[k], 1);
    }

    for (int k = 0; k < n; k++) {
        int y = SVG_GAP + 20 * k + 10;
        fprintf(f, "<rect x='%d' y='%d' width='14' height='4' fill='%s'/>"
                "<text x='%d' y='%d'>%s</text>\n", SVG_W - SVG_RIGHT + 10, y - 4, svg_color[k],
                SVG_W - SVG_RIGHT + 30, y, st[k].name);
    }
    fprintf(f, "<text x='%d' y='%d' font-size='11'>", SVG_LEFT, h - 14);
    for (const char *q = SS_ATTRIBUTION; *q; q++) {     /* escape for XML */
        if (*q == '"')
            fputs("&quot;", f);
        else if (*q == '&')
            fputs("&amp;", f);
        else
            fputc(*q, f);
    }
    fprintf(f, "</text>\n</svg>\n");
    rc = 0;
out:
    if (f && fclose(f) != 0)
        rc = -1;
    free(xs);
    free(ys);
    return rc;
}
