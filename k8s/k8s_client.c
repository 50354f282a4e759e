/* k8s_client.c — the in-cluster Kubernetes API client (controller thread only): settings from
 * the environment, libcurl over HTTPS verified against the service account's ca.crt, the
 * bearer token re-read when stale and after a 401, Status error bodies parsed, every call
 * bounded in time and counted.  The token never reaches a log line. */
#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include "k8s/k8s_internal.h"
#include "proxy/proxy.h"

struct k8s_client {
    CURL *curl;                         /* reused handle: keeps the TLS connection alive */
    k8s_config cfg;                     /* settings (copy) */
    char ca_path[K8S_PATH_MAX + 16];    /* sa_dir/ca.crt */
    char token_path[K8S_PATH_MAX + 16]; /* sa_dir/token */
    char token[K8S_TOKEN_MAX];          /* current bearer token ("" when unreadable) */
    double token_at;                    /* monotonic time the token was read, 0 never */
    double timeout_s;                   /* per-call timeout */
    char errbuf[CURL_ERROR_SIZE];       /* libcurl's error text */
    char *body;                         /* response body being received */
    size_t body_len;                    /* bytes in body */
    size_t body_cap;                    /* bytes allocated */
    int body_cut;                       /* body exceeded K8S_BODY_MAX */
    double retry_after;                 /* Retry-After of the response being received */
};

/* Copy an environment variable (or dflt when unset) into out; 1 when it was set. */
static int env_str(const char *name, const char *dflt, char *out, size_t cap)
{
    const char *v = getenv(name);

    snprintf(out, cap, "%s", v ? v : dflt);
    return v != NULL;
}

/* Positive seconds from the environment, or dflt when unset.  -1 on a bad value. */
static int env_seconds(const char *name, double dflt, double *out)
{
    const char *v = getenv(name);
    char *end;

    *out = dflt;
    if (!v || !*v)
        return 0;
    *out = strtod(v, &end);
    if (*end != '\0' || !isfinite(*out) || *out <= 0)
        return -1;
    return 0;
}

/* Read a small file into out, trailing whitespace removed.  0 ok, -1 unreadable/empty. */
static int read_small(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "re");
    size_t n;

    if (!f)
        return -1;
    n = fread(out, 1, cap - 1, f);
    fclose(f);
    out[n] = '\0';
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' '))
        out[--n] = '\0';
    return n > 0 ? 0 : -1;
}

/* Read the settings (DESIGN §2).  Returns 0, or -1 with a line in err on a bad value. */
int k8s_config_from_env(k8s_config *c, char *err, size_t errlen)
{
    char host[K8S_NAME_MAX], port[32], path[K8S_PATH_MAX + 16];
    int has_host;

    memset(c, 0, sizeof *c);
    has_host = env_str("KUBERNETES_SERVICE_HOST", "", host, sizeof host) && host[0];
    env_str("KUBERNETES_SERVICE_PORT", "443", port, sizeof port);
    if (has_host)
        snprintf(c->base_url, sizeof c->base_url, strchr(host, ':') ? "https://[%s]:%s"
                 : "https://%s:%s", host, port[0] ? port : "443");
    env_str("LITEBRAIN_K8S_SA_DIR", K8S_DEFAULT_SA_DIR, c->sa_dir, sizeof c->sa_dir);
    env_str("LITEBRAIN_K8S_DEPLOYMENT", "ollama-inference", c->deployment, sizeof c->deployment);
    env_str("LITEBRAIN_K8S_HPA", "ollama-hpa", c->hpa, sizeof c->hpa);   /* set but "" = none */
    env_str("LITEBRAIN_K8S_LEASE", "litebrain-scaler", c->lease, sizeof c->lease);
    env_str("LITEBRAIN_K8S_CONTAINER", "ollama", c->container, sizeof c->container);
    env_str("POD_NAME", "", c->pod, sizeof c->pod);
    if (c->pod[0]) {
        snprintf(c->identity, sizeof c->identity, "%s", c->pod);
    } else {
        char hn[128] = "";
        gethostname(hn, sizeof hn - 1);
        snprintf(c->identity, sizeof c->identity, "%s-%ld", hn[0] ? hn : "litebrain",
                 (long)getpid());
    }
    if (env_seconds("LITEBRAIN_K8S_LEASE_SECONDS", 15, &c->lease_s) < 0
        || env_seconds("LITEBRAIN_K8S_RENEW_SECONDS", 10, &c->renew_s) < 0
        || env_seconds("LITEBRAIN_K8S_RETRY_SECONDS", 2, &c->retry_s) < 0) {
        snprintf(err, errlen, "controller: LITEBRAIN_K8S_*_SECONDS must be positive seconds");
        return -1;
    }
    if (!(c->lease_s > c->renew_s && c->renew_s > c->retry_s)) {
        /* why: client-go's own validation; otherwise two leaders can overlap */
        snprintf(err, errlen, "controller: need lease (%g) > renew deadline (%g) > retry (%g)",
                 c->lease_s, c->renew_s, c->retry_s);
        return -1;
    }
    snprintf(path, sizeof path, "%s/namespace", c->sa_dir);
    if (read_small(path, c->ns, sizeof c->ns) < 0)
        c->ns[0] = '\0';
    snprintf(path, sizeof path, "%s/token", c->sa_dir);
    c->have_creds = has_host && c->ns[0] && access(path, R_OK) == 0;
    return 0;
}

/* Re-read the token file; keeps the old token when the file is unreadable. */
static void token_reload(k8s_client *c, double now)
{
    char tok[K8S_TOKEN_MAX];

    c->token_at = now;
    if (read_small(c->token_path, tok, sizeof tok) == 0)
        memcpy(c->token, tok, sizeof tok);
    else
        px_log(PX_LOG_WARN, "k8s token unreadable", "\"path\":\"%s\",\"errno\":%d",
               c->token_path, errno);
    explicit_bzero(tok, sizeof tok);
}

/* A client for cfg (copied); timeout_s bounds every call.  NULL with err on failure. */
k8s_client *k8s_client_new(const k8s_config *cfg, double timeout_s, char *err, size_t errlen)
{
    k8s_client *c = calloc(1, sizeof *c);

    if (!c) {
        snprintf(err, errlen, "controller: out of memory");
        return NULL;
    }
    c->cfg = *cfg;
    c->timeout_s = timeout_s;
    snprintf(c->ca_path, sizeof c->ca_path, "%s/ca.crt", cfg->sa_dir);
    snprintf(c->token_path, sizeof c->token_path, "%s/token", cfg->sa_dir);
    c->curl = curl_easy_init();
    if (!c->curl) {
        snprintf(err, errlen, "controller: curl_easy_init failed");
        free(c);
        return NULL;
    }
    token_reload(c, px_now());
    return c;
}

/* Free the client; wipes the token from memory.  NULL is fine. */
void k8s_client_free(k8s_client *c)
{
    if (!c)
        return;
    curl_easy_cleanup(c->curl);
    free(c->body);
    explicit_bzero(c->token, sizeof c->token);
    free(c);
}

/* libcurl write callback: append to the body, cut at K8S_BODY_MAX. */
static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    k8s_client *c = ud;
    size_t n = size * nmemb;

    if (c->body_len + n + 1 > K8S_BODY_MAX) {
        c->body_cut = 1;
        return 0;               /* why: aborts the transfer; a huge answer is not a real one */
    }
    if (c->body_len + n + 1 > c->body_cap) {
        size_t cap = c->body_cap ? c->body_cap : 4096;
        char *nb;
        while (cap < c->body_len + n + 1)
            cap *= 2;
        nb = realloc(c->body, cap);
        if (!nb)
            return 0;
        c->body = nb;
        c->body_cap = cap;
    }
    memcpy(c->body + c->body_len, p, n);
    c->body_len += n;
    c->body[c->body_len] = '\0';
    return n;
}

/* libcurl header callback: pick up Retry-After (delta-seconds form). */
static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
    k8s_client *c = ud;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:";

    if (n > sizeof name - 1 && strncasecmp(p, name, sizeof name - 1) == 0) {
        char v[32];
        size_t len = n - (sizeof name - 1);
        char *end;
        double s;
        if (len >= sizeof v)
            len = sizeof v - 1;
        memcpy(v, p + sizeof name - 1, len);
        v[len] = '\0';
        s = strtod(v, &end);
        if (end != v && isfinite(s) && s >= 0)
            c->retry_after = s > K8S_RETRY_AFTER_CAP ? K8S_RETRY_AFTER_CAP : s;
    }
    return n;
}

/* One HTTP exchange, no retry.  Returns the status code, 0 when there was no response. */
static long exchange(k8s_client *c, const char *verb, const char *path, const char *ctype,
                     const char *body, k8s_resp *r)
{
    char url[K8S_NAME_MAX + K8S_PATH_MAX], auth[K8S_TOKEN_MAX + 32], ct[96];
    struct curl_slist *hdrs = NULL;
    CURLcode rc;
    long code = 0;
    CURL *h = c->curl;

    c->body_len = 0;
    c->body_cut = 0;
    c->retry_after = -1;
    c->errbuf[0] = '\0';
    snprintf(url, sizeof url, "%s%s", c->cfg.base_url, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->token);
    hdrs = curl_slist_append(hdrs, auth);
    explicit_bzero(auth, sizeof auth);
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    if (ctype) {
        snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
        hdrs = curl_slist_append(hdrs, ct);
    }
    curl_easy_reset(h);         /* why: keeps the connection cache, clears last call's options */
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "litebrain-proxy");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);          /* threads: no SIGALRM timeouts */
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");          /* the API server is never proxied */
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_path);
    curl_easy_setopt(h, CURLOPT_CAPATH, NULL);          /* why: else libcurl's built-in CA
                                           directory (/etc/ssl/certs) is trusted too */
#if LIBCURL_VERSION_NUM >= 0x075700                     /* 7.87: the option exists */
    /* why: libcurl keeps a parsed CA store for 24 h by default; a rotated ca.crt is read
     * again within this time, like the token */
    curl_easy_setopt(h, CURLOPT_CA_CACHE_TIMEOUT, (long)K8S_CA_CACHE_SECONDS);
#endif
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(c->timeout_s * 1000));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(fmin(c->timeout_s, K8S_CONNECT_TIMEOUT) * 1000));
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
    if (strcmp(verb, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, verb);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)(body ? strlen(body) : 0));
    }
    rc = curl_easy_perform(h);
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    else
        snprintf(r->message, sizeof r->message, "%s", c->errbuf[0] ? c->errbuf
                 : curl_easy_strerror(rc));
    curl_slist_free_all(hdrs);
    /* why: the header list held the token; libcurl keeps no copy after the call */
    r->retry_after = c->retry_after;
    return code;
}

/* Fill r->json and the Status fields from the body just received. */
static void parse_body(k8s_client *c, k8s_resp *r)
{
    json_t *kind, *v;

    if (c->body_len == 0)
        return;
    r->json = json_loadb(c->body, c->body_len, 0, NULL);
    if (!r->json || !json_is_object(r->json))
        return;
    kind = json_object_get(r->json, "kind");
    if (!json_is_string(kind) || strcmp(json_string_value(kind), "Status") != 0)
        return;
    v = json_object_get(r->json, "reason");
    if (json_is_string(v))
        snprintf(r->reason, sizeof r->reason, "%s", json_string_value(v));
    v = json_object_get(r->json, "message");
    if (json_is_string(v))
        snprintf(r->message, sizeof r->message, "%s", json_string_value(v));
    k8s_utf8_trim(r->reason);           /* why: a webhook's message may be cut mid-character */
    k8s_utf8_trim(r->message);
}

/* One API call: status `normal` is not an error; a 401 is retried once (after re-reading the
 * token) when the retry can end by `deadline`. */
static long call(k8s_client *c, const char *verb, const char *path, const char *ctype,
                 const char *body, long normal, double deadline, k8s_resp *r)
{
    double now = px_now();
    char text[K8S_PATH_MAX + 512], esc[2 * K8S_ERR_MAX];

    memset(r, 0, sizeof *r);
    r->retry_after = -1;
    if (c->token_at == 0 || now - c->token_at >= K8S_TOKEN_REREAD_S)
        token_reload(c, now);
    r->code = exchange(c, verb, path, ctype, body, r);
    if (r->code == 401) {
        /* why: projected tokens rotate; the kubelet may have written a new one already */
        token_reload(c, now);
        px_log(PX_LOG_INFO, "k8s token re-read after 401", "\"path\":\"%s\"", path);
        if (px_now() + c->timeout_s < deadline) {
            k8s_status_api(verb, r->code);
            r->message[0] = '\0';
            r->code = exchange(c, verb, path, ctype, body, r);
        } else {
            px_log(PX_LOG_WARN, "k8s write not retried after 401: it could land too late",
                   "\"path\":\"%s\"", path);
        }
    }
    parse_body(c, r);
    k8s_status_api(verb, r->code);
    if (r->code == 0 || r->code >= 400) {
        snprintf(text, sizeof text, "%s %s: %ld %s%s%s", verb, path, r->code,
                 r->reason, r->reason[0] ? ": " : "", r->message);
        k8s_utf8_trim(text);
        if (r->code != normal)
            k8s_status_error(text);
        px_json_escape(text, esc, sizeof esc);
        px_log(r->code == normal ? PX_LOG_DEBUG : PX_LOG_WARN,
               r->code == normal ? "k8s api answer" : "k8s api error",
               "\"verb\":\"%s\",\"code\":%ld,\"error\":\"%s\"", verb, r->code, esc);
    }
    return r->code;
}

/* One API call (see k8s_internal.h). */
long k8s_call(k8s_client *c, const char *verb, const char *path, const char *ctype,
              const char *body, k8s_resp *r)
{
    return call(c, verb, path, ctype, body, -1, INFINITY, r);
}

/* One API call where status `normal` is not an error (see k8s_internal.h). */
long k8s_call_expect(k8s_client *c, const char *verb, const char *path, const char *ctype,
                     const char *body, long normal, k8s_resp *r)
{
    return call(c, verb, path, ctype, body, normal, INFINITY, r);
}

/* A write that must land by deadline (see k8s_internal.h). */
long k8s_call_by(k8s_client *c, const char *verb, const char *path, const char *ctype,
                 const char *body, double deadline, k8s_resp *r)
{
    return call(c, verb, path, ctype, body, -1, deadline, r);
}

/* Free what a call left in r. */
void k8s_resp_free(k8s_resp *r)
{
    if (r->json)
        json_decref(r->json);
    r->json = NULL;
}

/* Record a failure: the next attempt waits a jittered, capped exponential delay, and at least
 * what the server asked for in Retry-After. */
void k8s_backoff_fail(k8s_backoff *b, double now, double retry_after, double base, double cap)
{
    double d = base * ldexp(1.0, b->failures < 30 ? b->failures : 30);

    if (d > cap)
        d = cap;
    /* why: "equal jitter" — half fixed, half random — so contenders spread out */
    d = d / 2 + d / 2 * ((double)random() / (double)RAND_MAX);
    if (retry_after > d)
        d = retry_after;
    b->failures++;
    b->next = now + d;
}

/* A success: the next failure starts from the base delay again. */
void k8s_backoff_ok(k8s_backoff *b)
{
    b->failures = 0;
    b->next = 0;
}
