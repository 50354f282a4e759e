/* sim_check.c — the checks Ollama makes before a handler runs, and the fault header:
 * X-Sim-Fault parsing, the Host allow-list of allowedHostsMiddleware, the CORS origin list. */
#include "test/sim/sim.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* See sim.h. */
void sim_fault_parse(const char *v, sim_fault *f)
{
    f->reset_after = f->stall_after = -1;
    f->close_before_head = 0;
    f->delay_head_ms = 0;
    f->bytes = -1;
    f->chunks = f->interval_ms = f->ttft_ms = -1;
    while (v && *v) {
        char item[64], *eq;
        size_t n = strcspn(v, ",; ");
        if (n > 0 && n < sizeof item) {
            memcpy(item, v, n);
            item[n] = '\0';
            eq = strchr(item, '=');
            long long num = eq ? strtoll(eq + 1, NULL, 10) : 0;
            if (eq) *eq = '\0';
            if (num < 0) num = 0;
            if (num > 0x7fffffff && strcmp(item, "bytes") != 0) num = 0x7fffffff;
            if (!strcmp(item, "reset-after")) f->reset_after = (int)num;
            else if (!strcmp(item, "stall-after")) f->stall_after = (int)num;
            else if (!strcmp(item, "close-before-head")) f->close_before_head = 1;
            else if (!strcmp(item, "delay-head-ms")) f->delay_head_ms = (int)num;
            else if (!strcmp(item, "bytes")) f->bytes = num;
            else if (!strcmp(item, "chunks")) f->chunks = (int)num;
            else if (!strcmp(item, "interval-ms")) f->interval_ms = (int)num;
            else if (!strcmp(item, "ttft-ms")) f->ttft_ms = (int)num;
        }
        v += n;
        while (*v == ',' || *v == ';' || *v == ' ') v++;
    }
}

/* 1 when the address text is an IP that Ollama lets through: loopback, private,
 * unspecified, or one of this machine's interface addresses. */
static int sim_ip_allowed(const char *host)
{
    struct in6_addr a6;
    struct in_addr a4;
    char buf[64];
    size_t hl = strlen(host);
    if (hl >= sizeof buf) return -1;   /* too long to be an address */
    memcpy(buf, host, hl + 1);
    char *zone = strchr(buf, '%');
    if (zone) *zone = '\0';   /* netip accepts zones */
    if (inet_pton(AF_INET, buf, &a4) == 1) {
        memset(&a6, 0, sizeof a6);
        a6.s6_addr[10] = a6.s6_addr[11] = 0xff;
        memcpy(&a6.s6_addr[12], &a4, 4);
    } else if (inet_pton(AF_INET6, buf, &a6) != 1) {
        return -1;   /* not an IP */
    }
    const uint8_t *b = a6.s6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&a6)) {
        const uint8_t *v = b + 12;
        if (v[0] == 127 || v[0] == 10 || (v[0] == 172 && (v[1] & 0xf0) == 16) || (v[0] == 192 && v[1] == 168)) return 1;
        if (!v[0] && !v[1] && !v[2] && !v[3]) return 1;
    } else {
        if (IN6_IS_ADDR_LOOPBACK(&a6) || IN6_IS_ADDR_UNSPECIFIED(&a6) || (b[0] & 0xfe) == 0xfc) return 1;
    }
    for (int i = 0; i < sim_g.nlocal_ips; i++)
        if (memcmp(&sim_g.local_ips[i], &a6, sizeof a6) == 0) return 1;
    return 0;
}

/* See sim.h. */
int sim_host_allowed(const char *hostport)
{
    char host[SIM_ADDR_MAX];
    size_t len = strlen(hostport);
    if (len >= sizeof host) return 0;
    /* net.SplitHostPort: "[v6]:port" or "host:port" (exactly one colon); else the whole */
    const char *colon = strrchr(hostport, ':');
    if (hostport[0] == '[' && colon && colon > hostport && colon[-1] == ']') {
        snprintf(host, sizeof host, "%.*s", (int)(colon - hostport - 2), hostport + 1);
    } else if (hostport[0] != '[' && colon && strchr(hostport, ':') == colon) {
        snprintf(host, sizeof host, "%.*s", (int)(colon - hostport), hostport);
    } else {
        snprintf(host, sizeof host, "%s", hostport);
    }
    int ip = sim_ip_allowed(host);
    if (ip >= 0 && ip == 1) return 1;
    for (char *p = host; *p; p++) *p = (char)tolower((unsigned char)*p);
    if (!host[0] || !strcmp(host, "localhost")) return 1;
    if (sim_g.hostname[0] && !strcmp(host, sim_g.hostname)) return 1;
    static const char *const tlds[] = { ".localhost", ".local", ".internal" };
    size_t hl = strlen(host);
    for (size_t i = 0; i < sizeof tlds / sizeof tlds[0]; i++) {
        size_t tl = strlen(tlds[i]);
        if (hl > tl && !strcmp(host + hl - tl, tlds[i])) return 1;
    }
    return 0;
}

/* 1 when origin matches pattern (one optional '*' wildcard). */
static int sim_origin_match(const char *pattern, size_t plen, const char *origin)
{
    const char *star = memchr(pattern, '*', plen);
    size_t olen = strlen(origin);
    if (!star) return plen == olen && !strncmp(pattern, origin, plen);
    size_t pre = (size_t)(star - pattern), suf = plen - pre - 1;
    return olen >= pre + suf && !strncmp(origin, pattern, pre) && !strncmp(origin + olen - suf, star + 1, suf);
}

/* See sim.h. */
int sim_origin_allowed(const char *origin)
{
    static const char *const builtin[] = {
        "http://localhost", "https://localhost", "http://localhost:*", "https://localhost:*",
        "http://127.0.0.1", "https://127.0.0.1", "http://127.0.0.1:*", "https://127.0.0.1:*",
        "http://0.0.0.0", "https://0.0.0.0", "http://0.0.0.0:*", "https://0.0.0.0:*",
        "app://*", "file://*", "tauri://*", "vscode-webview://*", "vscode-file://*",
        "chrome-extension://*", "safari-extension://*", "moz-extension://*", "ms-browser-extension://*",
    };
    for (size_t i = 0; i < sizeof builtin / sizeof builtin[0]; i++)
        if (sim_origin_match(builtin[i], strlen(builtin[i]), origin)) return 1;
    const char *env = getenv("OLLAMA_ORIGINS");
    while (env && *env) {
        size_t n = strcspn(env, ",");
        while (n && env[0] == ' ') { env++; n--; }
        if (n && sim_origin_match(env, n, origin)) return 1;
        env += n;
        if (*env == ',') env++;
    }
    return 0;
}
