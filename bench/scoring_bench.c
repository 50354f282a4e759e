/* scoring_bench.c — throughput of sc_score on three body shapes (a 1 KiB generate body, a
 * 100 KiB chat with 50 messages, a 10 MiB generate body with one base64 image), next to
 * jansson's json_loadb on the same bytes for comparison.  Prints MB/s and time per body,
 * measured in thread CPU time so that other load on the machine disturbs it less.
 * Not a test: numbers depend on the machine. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scoring/scoring.h"

#define BENCH_MIN_SECONDS 0.5       /* run each shape at least this long */
#define BENCH_MIN_ROUNDS 5          /* ... and at least this many times */
#define BENCH_BATCH_BYTES (1024 * 1024) /* body bytes scored between two clock reads */
#define SMALL_BYTES 1024            /* shape 1 */
#define CHAT_BYTES (100 * 1024)     /* shape 2 */
#define CHAT_MESSAGES 50
#define IMAGE_BYTES (10 * 1024 * 1024) /* shape 3 */

static const char *const vocab[] = {
    "the", "service", "returns", "an", "error", "when", "users", "upload", "large", "files",
    "please", "explain", "why", "and", "how", "to", "fix", "it", "in", "our", "code", "we",
    "use", "a", "queue", "between", "workers", "design", "database", "latency", "is", "high",
    "refactoring", "module", "tests", "fail", "sometimes", "under", "load", "with", "timeouts",
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint32_t rng = 12345;
static uint32_t next_rand(void)
{
    rng = rng * 1103515245u + 12345u;
    return rng >> 8;
}

/* Append pseudo-English text of about n bytes (JSON-escaped newlines now and then). */
static size_t put_text(char *out, size_t n)
{
    size_t len = 0;
    while (len + 16 < n) {
        const char *w = vocab[next_rand() % (sizeof vocab / sizeof vocab[0])];
        size_t wl = strlen(w);
        memcpy(out + len, w, wl);
        len += wl;
        uint32_t r = next_rand() % 20;
        const char *sep = r == 0 ? ".\\n" : r == 1 ? ", " : " ";
        memcpy(out + len, sep, strlen(sep));
        len += strlen(sep);
    }
    return len;
}

static char *small_body(size_t *len)
{
    char *b = malloc(SMALL_BYTES + 256);
    size_t n = (size_t)sprintf(b, "{\"model\":\"qwen2.5:3b\",\"stream\":false,\"prompt\":\"");
    n += put_text(b + n, SMALL_BYTES - n - 60);
    n += (size_t)sprintf(b + n, "\",\"options\":{\"num_ctx\":8192,\"temperature\":0.2}}");
    *len = n;
    return b;
}

static char *chat_body(size_t *len)
{
    char *b = malloc(CHAT_BYTES + 4096);
    size_t per = CHAT_BYTES / CHAT_MESSAGES - 64;
    size_t n = (size_t)sprintf(b, "{\"model\":\"llama3.1:8b\",\"stream\":true,\"messages\":[");
    for (int i = 0; i < CHAT_MESSAGES; i++) {
        n += (size_t)sprintf(b + n, "%s{\"role\":\"%s\",\"content\":\"", i ? "," : "",
                             i == 0 ? "system" : i % 2 ? "user" : "assistant");
        n += put_text(b + n, per);
        n += (size_t)sprintf(b + n, "\"}");
    }
    n += (size_t)sprintf(b + n, "]}");
    *len = n;
    return b;
}

static char *image_body(size_t *len)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *b = malloc(IMAGE_BYTES + 256);
    size_t n = (size_t)sprintf(b, "{\"model\":\"llava:7b\",\"prompt\":\"What is in this picture?\",\"images\":[\"");
    size_t img = IMAGE_BYTES - n - 64;
    for (size_t i = 0; i < img; i++) b[n + i] = b64[next_rand() & 63];
    n += img;
    n += (size_t)sprintf(b + n, "==\"],\"stream\":false}");
    *len = n;
    return b;
}

/* Calls per clock read: about 1 MiB of body, so reading the clock costs nothing. */
static int batch_of(size_t len)
{
    return len >= BENCH_BATCH_BYTES ? 1 : (int)(BENCH_BATCH_BYTES / len);
}

/* Seconds per sc_score call on the body (total / calls over >= MIN seconds). */
static double time_scorer(sc_scorer *s, sc_endpoint ep, const char *b, size_t len, sc_result *r)
{
    int rounds = 0, batch = batch_of(len);
    double t0 = now_s(), t;
    do {
        for (int i = 0; i < batch; i++) sc_score(s, ep, b, len, 1.0, r);
        rounds += batch;
        t = now_s() - t0;
    } while (t < BENCH_MIN_SECONDS || rounds < BENCH_MIN_ROUNDS);
    return t / rounds;
}

/* Seconds per json_loadb + json_decref of the body. */
static double time_jansson(const char *b, size_t len)
{
    int rounds = 0, batch = batch_of(len);
    double t0 = now_s(), t;
    do {
        for (int i = 0; i < batch; i++) {
            json_error_t e;
            json_t *j = json_loadb(b, len, 0, &e);
            if (!j) { fprintf(stderr, "jansson rejected the body: %s\n", e.text); exit(1); }
            json_decref(j);
        }
        rounds += batch;
        t = now_s() - t0;
    } while (t < BENCH_MIN_SECONDS || rounds < BENCH_MIN_ROUNDS);
    return t / rounds;
}

int main(void)
{
    struct { const char *name; sc_endpoint ep; char *(*make)(size_t *); } shapes[] = {
        { "generate 1 KiB", SC_EP_GENERATE, small_body },
        { "chat 100 KiB / 50 messages", SC_EP_CHAT, chat_body },
        { "generate 10 MiB / 1 image", SC_EP_GENERATE, image_body },
    };
    sc_scorer *s = sc_scorer_new(NULL);
    printf("%-28s %10s %10s %10s | %14s %10s\n", "shape", "bytes", "MB/s", "per body", "jansson MB/s", "per body");
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        size_t len;
        char *b = shapes[i].make(&len);
        sc_result r;
        double t = time_scorer(s, shapes[i].ep, b, len, &r);
        if (!r.f.json_ok) { fprintf(stderr, "%s: body invalid\n", shapes[i].name); return 1; }
        double tj = time_jansson(b, len);
        printf("%-28s %10zu %10.0f %8.3f ms | %14.0f %7.3f ms   (score %d, %u words)\n",
               shapes[i].name, len, len / t / 1e6, t * 1e3, len / tj / 1e6, tj * 1e3,
               r.score, r.f.words + r.f.history_words);
        free(b);
    }
    sc_scorer_free(s);
    return 0;
}
