/* mx_render.c — scrape-time formatting (Prometheus text format 0.0.4) of the registry into one
 * evbuffer, promex style: a static table of family descriptors, one switch that writes each
 * family's samples, and the process_* values read from /proc only here. */
#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <event2/buffer.h>
#include "metrics/mx_internal.h"

#define NUM_MAX 40                      /* bytes of one formatted sample value */
#define PROC_STAT_MAX 1024              /* bytes of /proc/self/stat read */
#define STAT_UTIME 14                   /* /proc/self/stat field numbers (proc(5)) */
#define STAT_STIME 15
#define STAT_VSIZE 23
#define STAT_RSS 24

typedef enum {
    F_COMPLEXITY, F_ACTIVE, F_WAITING, F_REQUESTS, F_DURATION, F_SCORE, F_TTFT, F_TPOT,
    F_PROMPT_TOKENS, F_OUTPUT_TOKENS, F_UPSTREAM_ERRORS, F_HINTS_DROPPED, F_BUILD_INFO,
    F_CPU, F_RSS, F_VSIZE, F_OPEN_FDS, F_MAX_FDS, F_START_TIME, F_COUNT
} family_id;

/* One metric family: what HELP/TYPE say. */
typedef struct family {
    family_id id;                       /* which samples the switch writes */
    const char *name;                   /* family name (counters keep their _total) */
    const char *type;                   /* gauge, counter, histogram */
    const char *help;                   /* HELP text (no backslash or newline) */
} family;

static const family families[F_COUNT] = {
    { F_COMPLEXITY, "litebrain_complexity_score", "gauge",
      "Time-decayed average of recent request complexity scores (0-100); falls to 0 when idle." },
    { F_ACTIVE, "litebrain_active_requests", "gauge", "Requests in flight." },
    { F_WAITING, "litebrain_waiting_requests", "gauge",
      "Requests sent upstream that have not received a response byte yet." },
    { F_REQUESTS, "litebrain_requests_total", "counter",
      "Finished requests by complexity level and HTTP status sent (499 = client left)." },
    { F_DURATION, "litebrain_request_duration_seconds", "histogram",
      "Request start to last byte, by complexity level." },
    { F_SCORE, "litebrain_request_complexity", "histogram",
      "Complexity score (0-100) of each scored request." },
    { F_TTFT, "litebrain_time_to_first_token_seconds", "histogram",
      "Request start to first response body byte of streamed responses." },
    { F_TPOT, "litebrain_time_per_output_token_seconds", "histogram",
      "Mean generation time per output token of each request that reported one." },
    { F_PROMPT_TOKENS, "litebrain_prompt_tokens_total", "counter",
      "Prompt (input) tokens reported by the upstream, by model." },
    { F_OUTPUT_TOKENS, "litebrain_output_tokens_total", "counter",
      "Output (generated) tokens reported by the upstream, by model." },
    { F_UPSTREAM_ERRORS, "litebrain_upstream_errors_total", "counter",
      "Failed upstream exchanges by reason." },
    { F_HINTS_DROPPED, "litebrain_scale_hints_dropped_total", "counter",
      "Scale hints dropped because the controller queue was full." },
    { F_BUILD_INFO, "litebrain_build_info", "gauge", "Build information; always 1." },
    { F_CPU, "process_cpu_seconds_total", "counter", "Total user and system CPU time in seconds." },
    { F_RSS, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes." },
    { F_VSIZE, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes." },
    { F_OPEN_FDS, "process_open_fds", "gauge", "Number of open file descriptors." },
    { F_MAX_FDS, "process_max_fds", "gauge", "Maximum number of open file descriptors." },
    { F_START_TIME, "process_start_time_seconds", "gauge",
      "Start time of the process since unix epoch in seconds." },
};

/* Process figures read at scrape time; a field < 0 was not available. */
typedef struct proc_info {
    double cpu_seconds;                 /* utime + stime */
    double rss_bytes;                   /* resident set size */
    double vsize_bytes;                 /* virtual memory size */
    double open_fds;                    /* entries in /proc/self/fd */
    double max_fds;                     /* RLIMIT_NOFILE soft limit */
} proc_info;

/* Format v as Prometheus expects: shortest decimal that reads back exactly, or NaN/+Inf/-Inf. */
static const char *fmt_num(char buf[NUM_MAX], double v)
{
    if (isnan(v))
        return "NaN";
    if (isinf(v))
        return v > 0 ? "+Inf" : "-Inf";
    snprintf(buf, NUM_MAX, "%.15g", v);
    if (strtod(buf, NULL) != v)
        snprintf(buf, NUM_MAX, "%.17g", v);
    return buf;
}

/* Append a label value with \, " and newline escaped as the text format requires. */
static void add_label_value(struct evbuffer *out, const char *s)
{
    const char *run = s;
    for (; *s; s++) {
        const char *rep = *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : *s == '\n' ? "\\n" : NULL;
        if (!rep)
            continue;
        evbuffer_add(out, run, (size_t)(s - run));
        evbuffer_add(out, rep, 2);
        run = s + 1;
    }
    evbuffer_add(out, run, (size_t)(s - run));
}

/* `name{label="value"} v\n`, or `name v\n` when label is NULL. */
static void add_sample(struct evbuffer *out, const char *name, const char *label,
                       const char *value, double v)
{
    char buf[NUM_MAX];
    evbuffer_add_printf(out, "%s", name);
    if (label) {
        evbuffer_add_printf(out, "{%s=\"", label);
        add_label_value(out, value);
        evbuffer_add(out, "\"}", 2);
    }
    evbuffer_add_printf(out, " %s\n", fmt_num(buf, v));
}

static void add_count(struct evbuffer *out, const char *name, const char *label,
                      const char *value, uint64_t v)
{
    evbuffer_add_printf(out, "%s", name);
    if (label) {
        evbuffer_add_printf(out, "{%s=\"", label);
        add_label_value(out, value);
        evbuffer_add(out, "\"}", 2);
    }
    evbuffer_add_printf(out, " %" PRIu64 "\n", v);
}

/* The _bucket/_sum/_count samples of one histogram, optionally with one label (whose value
 * needs no escaping: it comes from a fixed table). */
static void add_hist(struct evbuffer *out, const char *name, const char *label,
                     const char *value, const mx_hist *h)
{
    char buf[NUM_MAX], lab[64] = "";
    uint64_t cum = 0;
    if (label)
        snprintf(lab, sizeof lab, "%s=\"%s\",", label, value);
    for (int i = 0; i < h->n; i++) {
        cum += h->bucket[i];
        evbuffer_add_printf(out, "%s_bucket{%sle=\"%s\"} %" PRIu64 "\n", name, lab,
                            fmt_num(buf, h->le[i]), cum);
    }
    cum += h->bucket[h->n];             /* == h->count by construction */
    evbuffer_add_printf(out, "%s_bucket{%sle=\"+Inf\"} %" PRIu64 "\n", name, lab, cum);
    if (label)
        lab[strlen(lab) - 1] = '\0';    /* drop the trailing comma */
    evbuffer_add_printf(out, "%s_sum%s%s%s %s\n", name, label ? "{" : "", lab,
                        label ? "}" : "", fmt_num(buf, h->sum));
    evbuffer_add_printf(out, "%s_count%s%s%s %" PRIu64 "\n", name, label ? "{" : "", lab,
                        label ? "}" : "", h->count);
}

/* Fill p from /proc/self/stat, /proc/self/fd and getrlimit; unavailable fields stay -1. */
static void proc_read(proc_info *p)
{
    char buf[PROC_STAT_MAX];
    FILE *f;
    DIR *d;
    struct rlimit rl;
    long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    p->cpu_seconds = p->rss_bytes = p->vsize_bytes = p->open_fds = p->max_fds = -1;

    f = fopen("/proc/self/stat", "r");
    if (f) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        char *s;
        double ut = -1, st = -1;
        buf[n] = '\0';
        fclose(f);
        /* why: comm (field 2) may hold spaces and ')', so count fields after the last ')' */
        s = strrchr(buf, ')');
        if (s)
            s++;
        for (int field = 3; s && *s && field <= STAT_RSS; field++) {
            double v;
            s += strspn(s, " ");
            v = strtod(s, NULL);
            if (field == STAT_UTIME)
                ut = v;
            else if (field == STAT_STIME)
                st = v;
            else if (field == STAT_VSIZE)
                p->vsize_bytes = v;
            else if (field == STAT_RSS && page > 0)
                p->rss_bytes = v * (double)page;
            s += strcspn(s, " ");
        }
        if (ut >= 0 && st >= 0 && tick > 0)
            p->cpu_seconds = (ut + st) / (double)tick;
    }
    d = opendir("/proc/self/fd");
    if (d) {
        struct dirent *e;
        double n = 0;
        while ((e = readdir(d)) != NULL)
            if (e->d_name[0] != '.')
                n++;
        closedir(d);
        p->open_fds = n - 1;            /* why: not counting the directory's own fd */
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        p->max_fds = (double)rl.rlim_cur;
}

/* The samples of one family. */
static void add_family(struct evbuffer *out, const family *fam, double now, const proc_info *p)
{
    const char *n = fam->name;
    switch (fam->id) {
    case F_COMPLEXITY:
        add_sample(out, n, NULL, NULL, mx_complexity(now));
        break;
    case F_ACTIVE:
        add_count(out, n, NULL, NULL, (uint64_t)mx_g.active);
        break;
    case F_WAITING:
        add_count(out, n, NULL, NULL, (uint64_t)mx_g.waiting);
        break;
    case F_REQUESTS:
        for (int c = 0; c < MX_CX_COUNT; c++)
            for (int s = 0; s < MX_STATUS_MAX + MX_STATUS_CLASSES; s++) {
                char code[16];
                if (!mx_g.requests[c][s])
                    continue;
                if (s == MX_STATUS_MAX)
                    snprintf(code, sizeof code, "other");
                else if (s > MX_STATUS_MAX)
                    snprintf(code, sizeof code, "%dxx", s - MX_STATUS_MAX);
                else
                    snprintf(code, sizeof code, "%d", mx_g.status_code[s]);
                evbuffer_add_printf(out, "%s{complexity=\"%s\",status=\"%s\"} %" PRIu64 "\n",
                                    n, mx_cx_name[c], code, mx_g.requests[c][s]);
            }
        break;
    case F_DURATION:
        for (int c = 0; c < MX_CX_COUNT; c++)
            add_hist(out, n, "complexity", mx_cx_name[c], &mx_g.duration[c]);
        break;
    case F_SCORE:
        add_hist(out, n, NULL, NULL, &mx_g.score);
        break;
    case F_TTFT:
        add_hist(out, n, NULL, NULL, &mx_g.ttft);
        break;
    case F_TPOT:
        add_hist(out, n, NULL, NULL, &mx_g.tpot);
        break;
    case F_PROMPT_TOKENS:
    case F_OUTPUT_TOKENS: {
        const uint64_t *v = fam->id == F_PROMPT_TOKENS ? mx_g.prompt_tokens : mx_g.output_tokens;
        for (int m = 0; m < mx_g.n_models; m++)
            add_count(out, n, "model", mx_g.model[m], v[m]);
        if (mx_g.n_models == MX_MODELS_MAX || v[MX_MODELS_MAX])
            add_count(out, n, "model", "other", v[MX_MODELS_MAX]);
        break;
    }
    case F_UPSTREAM_ERRORS:
        for (int r = 0; r < MX_UPERR_COUNT; r++)
            add_count(out, n, "reason", mx_uperr_name[r], mx_g.upstream_errors[r]);
        break;
    case F_HINTS_DROPPED:
        add_count(out, n, NULL, NULL, mx_g.hints_dropped);
        break;
    case F_BUILD_INFO:
        add_count(out, n, "version", mx_g.version, 1);
        break;
    case F_CPU:
        add_sample(out, n, NULL, NULL, p->cpu_seconds);
        break;
    case F_RSS:
        add_sample(out, n, NULL, NULL, p->rss_bytes);
        break;
    case F_VSIZE:
        add_sample(out, n, NULL, NULL, p->vsize_bytes);
        break;
    case F_OPEN_FDS:
        add_sample(out, n, NULL, NULL, p->open_fds);
        break;
    case F_MAX_FDS:
        add_sample(out, n, NULL, NULL, p->max_fds);
        break;
    case F_START_TIME:
        add_sample(out, n, NULL, NULL, mx_g.wall_start);
        break;
    case F_COUNT:
        break;
    }
}

/* Whether a process family has a value to show (a missing /proc hides it entirely). */
static int family_available(const family *fam, const proc_info *p)
{
    switch (fam->id) {
    case F_CPU: return p->cpu_seconds >= 0;
    case F_RSS: return p->rss_bytes >= 0;
    case F_VSIZE: return p->vsize_bytes >= 0;
    case F_OPEN_FDS: return p->open_fds >= 0;
    case F_MAX_FDS: return p->max_fds >= 0;
    default: return 1;
    }
}

void mx_render(struct evbuffer *out, double now)
{
    proc_info p;
    proc_read(&p);
    for (int i = 0; i < F_COUNT; i++) {
        const family *fam = &families[i];
        if (!family_available(fam, &p))
            continue;
        evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", fam->name, fam->help,
                            fam->name, fam->type);
        add_family(out, fam, now, &p);
    }
    if (mx_g.collect)
        mx_g.collect(out, mx_g.collect_ud);
}
