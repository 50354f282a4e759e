/* sc_policy.c — the scaling policy (defaults, jansson parse with one-line errors naming the
 * JSON path, printing), levels, endpoints and model weights. */
#include "scoring/sc_internal.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define SC_POLICY_FILE_MAX (1024 * 1024)   /* a policy file larger than this is refused */
#define SC_REPLICAS_LIMIT 100000            /* replica counts above this are refused */

static const char *const sc_level_keys[SC_LEVELS] = { "low", "medium", "high" };

void sc_policy_default(sc_policy *p)
{
    static const sc_resource res[SC_LEVELS] = {
        { "2", "8Gi" }, { "4", "12Gi" }, { "6", "16Gi" },
    };
    memset(p, 0, sizeof *p);
    p->thresholds[SC_LEVEL_LOW] = 30;
    p->thresholds[SC_LEVEL_MEDIUM] = 50;
    p->thresholds[SC_LEVEL_HIGH] = 80;
    snprintf(p->weights[0].prefix, SC_MODEL_MAX, "%s", "qwen2.5:3b");
    p->weights[0].weight = 1.0;
    snprintf(p->weights[1].prefix, SC_MODEL_MAX, "%s", "deepseek-r1");
    p->weights[1].weight = 2.5;
    snprintf(p->weights[2].prefix, SC_MODEL_MAX, "%s", "codellama");
    p->weights[2].weight = 2.0;
    p->nweights = 3;
    p->scale_up[SC_LEVEL_LOW] = 1.2;
    p->scale_up[SC_LEVEL_MEDIUM] = 1.5;
    p->scale_up[SC_LEVEL_HIGH] = 2.0;
    p->min_replicas = 1;
    p->max_replicas = 10;
    p->up_window_s = 60;
    p->down_window_s = 300;
    p->eval_interval_s = 15;
    p->scale_up_score = 70;
    p->has_resources = 0;
    memcpy(p->resources, res, sizeof res);
    p->nkeywords = 0;
    p->half_life_s = 30;
}

/* Write "policy: <path>: <problem>" into err; returns -1 for convenience. */
__attribute__((format(printf, 4, 5)))
static int fail(char *err, size_t errlen, const char *path, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (err && errlen) {
        snprintf(err, errlen, "policy: %s: %s", path, msg);
        for (char *c = err; *c; c++)    /* why: a key may hold a newline; the error is one line */
            if ((unsigned char)*c < 0x20 || *c == 0x7f)
                *c = '?';
    }
    return -1;
}

/* A number value in [lo, hi] (lo_open: strictly greater than lo). */
static int get_number(json_t *v, double lo, int lo_open, double hi, double *out)
{
    if (!json_is_number(v)) return -1;
    double d = json_number_value(v);
    if (!isfinite(d) || d < lo || (lo_open && d == lo) || d > hi) return -1;
    *out = d;
    return 0;
}

/* See scoring.h. */
double sc_quantity(const char *q)
{
    static const struct { const char *suf; double mul; } tab[] = {
        {"", 1}, {"n", 1e-9}, {"u", 1e-6}, {"m", 1e-3}, {"k", 1e3}, {"M", 1e6}, {"G", 1e9},
        {"T", 1e12}, {"P", 1e15}, {"E", 1e18}, {"Ki", 0x1p10}, {"Mi", 0x1p20}, {"Gi", 0x1p30},
        {"Ti", 0x1p40}, {"Pi", 0x1p50}, {"Ei", 0x1p60},
    };
    const char *p = q, *num;
    char *end, buf[SC_QTY_MAX];
    int digits = 0;
    double v;

    if (!q)
        return -1;
    if (*p == '+')
        p++;
    num = p;
    for (; isdigit((unsigned char)*p); p++) digits++;
    if (*p == '.')
        for (p++; isdigit((unsigned char)*p); p++) digits++;
    if (!digits)
        return -1;
    if ((size_t)(p - num) >= sizeof buf)
        return -1;
    memcpy(buf, num, (size_t)(p - num));   /* why a copy: strtod alone would read "1e3" whole */
    buf[p - num] = '\0';
    v = strtod(buf, &end);
    if (*end || !isfinite(v))
        return -1;
    if ((*p == 'e' || *p == 'E') && p[1] != '\0' && p[1] != 'i') {
        const char *x = p + 1 + (p[1] == '+' || p[1] == '-');
        long e;
        if (!isdigit((unsigned char)*x))
            return -1;
        e = strtol(p + 1, &end, 10);        /* a decimal exponent, "1e3" */
        if (*end || e > SC_QTY_EXP_MAX || e < -SC_QTY_EXP_MAX)
            return -1;
        return v * pow(10, (double)e);
    }
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (strcmp(p, tab[i].suf) == 0)
            return v * tab[i].mul;
    return -1;
}

/* A quantity the controller can apply: at least 1 millicore or 1 byte, and small enough for
 * int64 millicores or bytes. */
static int valid_quantity(const char *q, int cpu)
{
    double v = sc_quantity(q) * (cpu ? 1000 : 1);
    return v >= 1 && v < SC_QTY_LIMIT ? 0 : -1;
}

/* {"low":..,"medium":..,"high":..} of numbers in [lo, hi]; all three required. */
static int parse_levels(json_t *o, const char *name, double lo, double hi, const char *what,
                        double out[SC_LEVELS], char *err, size_t errlen)
{
    char path[128];
    const char *k;
    json_t *v;
    if (!json_is_object(o)) return fail(err, errlen, name, "must be an object with low, medium, high");
    json_object_foreach(o, k, v) {
        int i;
        for (i = 0; i < SC_LEVELS && strcmp(k, sc_level_keys[i]) != 0; i++)
            ;
        snprintf(path, sizeof path, "%s.%s", name, k);
        if (i == SC_LEVELS) return fail(err, errlen, path, "unknown key (expected low, medium, high)");
        if (get_number(v, lo, 0, hi, &out[i]) < 0) return fail(err, errlen, path, "%s", what);
    }
    for (int i = 0; i < SC_LEVELS; i++) {
        snprintf(path, sizeof path, "%s.%s", name, sc_level_keys[i]);
        if (!json_object_get(o, sc_level_keys[i])) return fail(err, errlen, path, "missing");
    }
    return 0;
}

static int parse_weights(sc_policy *p, json_t *o, char *err, size_t errlen)
{
    char path[SC_MODEL_MAX + 32];
    const char *k;
    json_t *v;
    if (!json_is_object(o)) return fail(err, errlen, "modelResourceWeights", "must be an object of model prefix → number");
    p->nweights = 0;
    json_object_foreach(o, k, v) {
        snprintf(path, sizeof path, "modelResourceWeights.%s", k);
        if (p->nweights == SC_WEIGHTS_MAX)
            return fail(err, errlen, "modelResourceWeights", "at most %d entries", SC_WEIGHTS_MAX);
        if (strlen(k) >= SC_MODEL_MAX)
            return fail(err, errlen, path, "model prefix longer than %d bytes", SC_MODEL_MAX - 1);
        sc_weight *w = &p->weights[p->nweights];
        if (get_number(v, 0, 1, 1e6, &w->weight) < 0)
            return fail(err, errlen, path, "must be a number > 0");
        snprintf(w->prefix, SC_MODEL_MAX, "%s", k);
        p->nweights++;
    }
    return 0;
}

/* A quantity given as a string or a positive number (cpu: 1 when it is a CPU amount). */
static int parse_quantity(json_t *v, char out[SC_QTY_MAX], int cpu)
{
    if (json_is_number(v)) {
        double d = json_number_value(v);
        if (!(d > 0) || d > 1e15) return -1;
        snprintf(out, SC_QTY_MAX, "%.15g", d);
        return valid_quantity(out, cpu);
    }
    if (!json_is_string(v) || strlen(json_string_value(v)) >= SC_QTY_MAX) return -1;
    snprintf(out, SC_QTY_MAX, "%s", json_string_value(v));
    return valid_quantity(out, cpu);
}

static int parse_resources(sc_policy *p, json_t *o, char *err, size_t errlen)
{
    static const char *const fields[2] = { "cpu", "memory" };
    char path[128];
    const char *k, *k2;
    json_t *v, *v2;
    if (!json_is_object(o)) return fail(err, errlen, "resources", "must be an object with low, medium, high");
    json_object_foreach(o, k, v) {
        int i;
        for (i = 0; i < SC_LEVELS && strcmp(k, sc_level_keys[i]) != 0; i++)
            ;
        snprintf(path, sizeof path, "resources.%s", k);
        if (i == SC_LEVELS) return fail(err, errlen, path, "unknown key (expected low, medium, high)");
        if (!json_is_object(v)) return fail(err, errlen, path, "must be an object with cpu and memory");
        json_object_foreach(v, k2, v2) {
            snprintf(path, sizeof path, "resources.%s.%s", k, k2);
            char *dst = strcmp(k2, "cpu") == 0 ? p->resources[i].cpu
                      : strcmp(k2, "memory") == 0 ? p->resources[i].memory : NULL;
            if (!dst) return fail(err, errlen, path, "unknown key (expected cpu, memory)");
            if (parse_quantity(v2, dst, dst == p->resources[i].cpu) < 0)
                return fail(err, errlen, path, "must be a Kubernetes quantity > 0 such as \"4\", \"1500m\" or \"12Gi\"");
        }
        for (int f = 0; f < 2; f++) {
            snprintf(path, sizeof path, "resources.%s.%s", k, fields[f]);
            if (!json_object_get(v, fields[f])) return fail(err, errlen, path, "missing");
        }
    }
    for (int i = 0; i < SC_LEVELS; i++) {
        snprintf(path, sizeof path, "resources.%s", sc_level_keys[i]);
        if (!json_object_get(o, sc_level_keys[i])) return fail(err, errlen, path, "missing");
    }
    p->has_resources = 1;
    return 0;
}

static int parse_keywords(sc_policy *p, json_t *a, char *err, size_t errlen)
{
    char path[64];
    size_t i;
    json_t *v;
    if (!json_is_array(a)) return fail(err, errlen, "keywords", "must be an array of strings");
    if (json_array_size(a) > SC_KEYWORDS_MAX)
        return fail(err, errlen, "keywords", "at most %d entries", SC_KEYWORDS_MAX);
    p->nkeywords = 0;
    json_array_foreach(a, i, v) {
        snprintf(path, sizeof path, "keywords[%zu]", i);
        const char *s = json_is_string(v) ? json_string_value(v) : NULL;
        size_t n = s ? strlen(s) : 0;
        int ok = n > 0 && n < sizeof p->keywords[0];
        for (size_t j = 0; ok && j < n; j++) ok = isalnum((unsigned char)s[j]) != 0;
        if (!ok) return fail(err, errlen, path, "must be one word of ASCII letters/digits, 1-%zu characters", sizeof p->keywords[0] - 1);
        for (size_t j = 0; j <= n; j++) p->keywords[p->nkeywords][j] = (char)tolower((unsigned char)s[j]);
        p->nkeywords++;
    }
    return 0;
}

static int parse_int(json_t *v, long lo, long *out)
{
    if (!json_is_integer(v)) return -1;
    json_int_t i = json_integer_value(v);
    if (i < lo || i > SC_REPLICAS_LIMIT) return -1;
    *out = (long)i;
    return 0;
}

/* Every key of the root object, validated one by one; cross-field checks after. */
static int parse_root(sc_policy *p, json_t *root, char *err, size_t errlen)
{
    const char *k;
    json_t *v;
    long n;
    if (!json_is_object(root)) return fail(err, errlen, "(root)", "must be a JSON object");
    json_object_foreach(root, k, v) {
        if (strcmp(k, "complexityThresholds") == 0) {
            if (parse_levels(v, k, 0, 100, "must be a number between 0 and 100", p->thresholds, err, errlen) < 0) return -1;
        } else if (strcmp(k, "modelResourceWeights") == 0) {
            if (parse_weights(p, v, err, errlen) < 0) return -1;
        } else if (strcmp(k, "scaleUpFactors") == 0) {
            if (parse_levels(v, k, 1, 1000, "must be a number ≥ 1", p->scale_up, err, errlen) < 0) return -1;
        } else if (strcmp(k, "minReplicas") == 0) {
            if (parse_int(v, 0, &n) < 0) return fail(err, errlen, k, "must be an integer ≥ 0");
            p->min_replicas = (int)n;
        } else if (strcmp(k, "maxReplicas") == 0) {
            if (parse_int(v, 1, &n) < 0) return fail(err, errlen, k, "must be an integer ≥ 1");
            p->max_replicas = (int)n;
        } else if (strcmp(k, "scaleUpStabilizationSeconds") == 0) {
            if (get_number(v, 0, 0, 1e9, &p->up_window_s) < 0) return fail(err, errlen, k, "must be a number ≥ 0");
        } else if (strcmp(k, "scaleDownStabilizationSeconds") == 0) {
            if (get_number(v, 0, 0, 1e9, &p->down_window_s) < 0) return fail(err, errlen, k, "must be a number ≥ 0");
        } else if (strcmp(k, "evaluationIntervalSeconds") == 0) {
            if (get_number(v, 0, 1, 1e9, &p->eval_interval_s) < 0) return fail(err, errlen, k, "must be a number > 0");
        } else if (strcmp(k, "scaleUpScore") == 0) {
            if (get_number(v, 0, 0, 100, &p->scale_up_score) < 0) return fail(err, errlen, k, "must be a number between 0 and 100");
        } else if (strcmp(k, "resources") == 0) {
            if (parse_resources(p, v, err, errlen) < 0) return -1;
        } else if (strcmp(k, "keywords") == 0) {
            if (parse_keywords(p, v, err, errlen) < 0) return -1;
        } else if (strcmp(k, "complexityHalfLifeSeconds") == 0) {
            if (get_number(v, 0, 1, 1e9, &p->half_life_s) < 0) return fail(err, errlen, k, "must be a number > 0");
        } else {
            return fail(err, errlen, k, "unknown key");
        }
    }
    if (!(p->thresholds[0] < p->thresholds[1]))
        return fail(err, errlen, "complexityThresholds.medium", "must be greater than low (%g)", p->thresholds[0]);
    if (!(p->thresholds[1] < p->thresholds[2]))
        return fail(err, errlen, "complexityThresholds.high", "must be greater than medium (%g)", p->thresholds[1]);
    if (p->min_replicas > p->max_replicas)
        return fail(err, errlen, "minReplicas", "must be ≤ maxReplicas (%d)", p->max_replicas);
    /* why: the controller keeps SC_WINDOW_EVALS_MAX recommendations; a longer window would
     * silently forget its oldest ones and act early */
    for (int up = 1; up >= 0; up--) {
        double w = up ? p->up_window_s : p->down_window_s;
        if (w / p->eval_interval_s > SC_WINDOW_EVALS_MAX)
            return fail(err, errlen, up ? "scaleUpStabilizationSeconds" : "scaleDownStabilizationSeconds",
                        "must span at most %d evaluations (%g s at evaluationIntervalSeconds %g)",
                        SC_WINDOW_EVALS_MAX, SC_WINDOW_EVALS_MAX * p->eval_interval_s,
                        p->eval_interval_s);
    }
    return 0;
}

int sc_policy_parse(sc_policy *p, const char *json, size_t len, char *err, size_t errlen)
{
    json_error_t je;
    int rc = -1;
    sc_policy tmp;
    sc_policy_default(&tmp);
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        fail(err, errlen, "(document)", "invalid JSON at line %d, column %d: %s", je.line, je.column, je.text);
        goto out;
    }
    if (parse_root(&tmp, root, err, errlen) < 0) goto out;
    rc = 0;
out:
    json_decref(root);
    if (rc == 0) *p = tmp;
    else sc_policy_default(p);
    return rc;
}

int sc_policy_load(sc_policy *p, const char *path, char *err, size_t errlen)
{
    int rc = -1;
    char *buf = NULL;
    size_t n = 0;
    FILE *f = fopen(path, "rb");
    sc_policy_default(p);
    if (!f) {
        fail(err, errlen, path, "cannot open: %s", strerror(errno));
        goto out;
    }
    buf = malloc(SC_POLICY_FILE_MAX + 1);
    if (!buf) {
        fail(err, errlen, path, "out of memory");
        goto out;
    }
    n = fread(buf, 1, SC_POLICY_FILE_MAX + 1, f);
    if (ferror(f)) {
        fail(err, errlen, path, "cannot read: %s", strerror(errno));
        goto out;
    }
    if (n > SC_POLICY_FILE_MAX) {
        fail(err, errlen, path, "larger than %d bytes", SC_POLICY_FILE_MAX);
        goto out;
    }
    rc = sc_policy_parse(p, buf, n, err, errlen);
out:
    free(buf);
    if (f) fclose(f);
    return rc;
}

/* Shortest "%.*g" that reads back as exactly d. */
static void print_num(FILE *out, double d)
{
    char buf[64];
    if (d == (double)(long long)d && d > -1e15 && d < 1e15) {
        fprintf(out, "%lld", (long long)d);     /* whole numbers as people write them */
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, d);
        if (strtod(buf, NULL) == d) break;
    }
    fputs(buf, out);
}

static void print_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(out, "\\%c", c);
        else if (c < 0x20) fprintf(out, "\\u%04x", c);
        else fputc(c, out);
    }
    fputc('"', out);
}

static void print_levels(FILE *out, const char *name, const double v[SC_LEVELS])
{
    fprintf(out, "  \"%s\": { ", name);
    for (int i = 0; i < SC_LEVELS; i++) {
        fprintf(out, "%s\"%s\": ", i ? ", " : "", sc_level_keys[i]);
        print_num(out, v[i]);
    }
    fputs(" },\n", out);
}

void sc_policy_print(const sc_policy *p, FILE *out)
{
    fputs("{\n", out);
    print_levels(out, "complexityThresholds", p->thresholds);
    fputs("  \"modelResourceWeights\": {", out);
    for (int i = 0; i < p->nweights; i++) {
        fputs(i ? ", " : " ", out);
        print_str(out, p->weights[i].prefix);
        fputs(": ", out);
        print_num(out, p->weights[i].weight);
    }
    fputs(p->nweights ? " },\n" : "},\n", out);
    print_levels(out, "scaleUpFactors", p->scale_up);
    fprintf(out, "  \"minReplicas\": %d,\n  \"maxReplicas\": %d,\n", p->min_replicas, p->max_replicas);
    fputs("  \"scaleUpStabilizationSeconds\": ", out);
    print_num(out, p->up_window_s);
    fputs(",\n  \"scaleDownStabilizationSeconds\": ", out);
    print_num(out, p->down_window_s);
    fputs(",\n  \"evaluationIntervalSeconds\": ", out);
    print_num(out, p->eval_interval_s);
    fputs(",\n  \"scaleUpScore\": ", out);
    print_num(out, p->scale_up_score);
    fputs(",\n", out);
    if (p->has_resources) {
        fputs("  \"resources\": {\n", out);
        for (int i = 0; i < SC_LEVELS; i++) {
            fprintf(out, "    \"%s\": { \"cpu\": ", sc_level_keys[i]);
            print_str(out, p->resources[i].cpu);
            fputs(", \"memory\": ", out);
            print_str(out, p->resources[i].memory);
            fputs(i + 1 < SC_LEVELS ? " },\n" : " }\n", out);
        }
        fputs("  },\n", out);
    }
    fputs("  \"keywords\": [", out);
    for (int i = 0; i < p->nkeywords; i++) {
        fputs(i ? ", " : "", out);
        print_str(out, p->keywords[i]);
    }
    fputs("],\n  \"complexityHalfLifeSeconds\": ", out);
    print_num(out, p->half_life_s);
    fputs("\n}\n", out);
}

double sc_policy_weight(const sc_policy *p, const char *model)
{
    double w = 1.0;
    size_t best = 0;
    int found = 0;
    if (!p || !model) return w;
    for (int i = 0; i < p->nweights; i++) {
        size_t n = strlen(p->weights[i].prefix);
        if (strncmp(model, p->weights[i].prefix, n) == 0 && (!found || n > best)) {
            best = n;
            found = 1;
            w = p->weights[i].weight;
        }
    }
    return w;
}

sc_level sc_level_of(const sc_policy *p, int score)
{
    int best = SC_LEVEL_LOW;
    double bd = fabs(score - p->thresholds[0]);
    for (int i = 1; i < SC_LEVELS; i++) {
        double d = fabs(score - p->thresholds[i]);
        if (d <= bd) {          /* <= : a tie goes to the higher level */
            best = i;
            bd = d;
        }
    }
    return (sc_level)best;
}

const char *sc_level_name(sc_level l)
{
    switch (l) {
    case SC_LEVEL_LOW: return "low";
    case SC_LEVEL_MEDIUM: return "medium";
    case SC_LEVEL_HIGH: return "high";
    default: return "none";
    }
}

sc_endpoint sc_endpoint_of(const char *method, const char *path, size_t pathlen)
{
    static const struct { const char *path; sc_endpoint ep; } eps[] = {
        { "/api/generate", SC_EP_GENERATE },
        { "/api/chat", SC_EP_CHAT },
        { "/api/embed", SC_EP_EMBED },
        { "/api/embeddings", SC_EP_EMBEDDINGS },
        { "/v1/chat/completions", SC_EP_OAI_CHAT },
        { "/v1/completions", SC_EP_OAI_COMPLETIONS },
        { "/v1/embeddings", SC_EP_OAI_EMBEDDINGS },
    };
    if (!method || !path || strcmp(method, "POST") != 0) return SC_EP_NONE;
    for (size_t i = 0; i < sizeof eps / sizeof eps[0]; i++)
        if (strlen(eps[i].path) == pathlen && memcmp(eps[i].path, path, pathlen) == 0)
            return eps[i].ep;
    return SC_EP_NONE;
}
