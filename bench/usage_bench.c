/* usage_bench.c — throughput of the token usage scanner (mx_usage_feed) on three response
 * shapes: a ~500-byte non-streamed /api/generate answer with a short `context` array, an
 * NDJSON stream of 100 small chunks fed one chunk at a time, and a ~300 KB `context` array.
 * Prints MB/s and time per body, measured in thread CPU time so that other load on the
 * machine disturbs it less.  With an argument N it instead runs exactly N rounds per shape
 * and prints no timing (for `valgrind --tool=callgrind`); a second argument picks one shape
 * (0, 1, 2).  Not a test: numbers depend on the machine; it only checks that each shape
 * yields the counts it carries. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metrics/metrics.h"

#define BENCH_MIN_SECONDS 0.5           /* run each shape at least this long */
#define BENCH_MIN_ROUNDS 5              /* ... and at least this many times */
#define BENCH_BATCH_BYTES (1024 * 1024) /* body bytes scanned between two clock reads */
#define SMALL_CONTEXT 40                /* context tokens of the ~500-byte answer */
#define STREAM_CHUNKS 100               /* chunks of the NDJSON stream (the last one final) */
#define HUGE_BYTES (300 * 1024)         /* size of the big-context answer */
#define BODY_SLACK 1024                 /* room for the head and tail of a body */
#define PROMPT_COUNT 26                 /* prompt_eval_count every shape reports */
#define EVAL_COUNT 99                   /* eval_count every shape reports */

/* One body, cut into the pieces it is fed in. */
typedef struct shape {
    const char *name;                   /* printed */
    char *body;                         /* the bytes */
    size_t len;                         /* bytes in body */
    size_t cuts[STREAM_CHUNKS + 1];     /* piece i is body[cuts[i] .. cuts[i + 1]) */
    int pieces;                         /* number of pieces */
} shape;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Append `"context":[...]` with tokens numbers until about `bytes` long; returns bytes written. */
static size_t put_context(char *out, size_t cap, int tokens, size_t bytes)
{
    size_t n = (size_t)snprintf(out, cap, "\"context\":[");
    for (int i = 0; (tokens > 0 && i < tokens) || (tokens <= 0 && n + 16 < bytes); i++)
        n += (size_t)snprintf(out + n, cap - n, "%s%d", i ? "," : "", (i * 7919 + 151) % 152064);
    n += (size_t)snprintf(out + n, cap - n, "],");
    return n;
}

/* A final /api/generate answer: text, a context array, the counts. */
static size_t put_final(char *out, size_t cap, const char *text, int tokens, size_t ctx_bytes)
{
    size_t n = (size_t)snprintf(out, cap, "{\"model\":\"qwen2.5:3b\",\"created_at\":"
                                "\"2024-05-01T10:00:00.123456789Z\",\"response\":\"%s\","
                                "\"done\":true,\"done_reason\":\"stop\",", text);
    n += put_context(out + n, cap - n, tokens, ctx_bytes);
    n += (size_t)snprintf(out + n, cap - n, "\"total_duration\":10706818083,\"load_duration\":"
                          "6338219291,\"prompt_eval_count\":%d,\"prompt_eval_duration\":"
                          "130079000,\"eval_count\":%d,\"eval_duration\":4232710000}\n",
                          PROMPT_COUNT, EVAL_COUNT);
    return n;
}

static void make_small(shape *s)
{
    size_t cap = BODY_SLACK;
    s->body = malloc(cap);
    s->len = put_final(s->body, cap, "The sky is blue because of Rayleigh scattering: air "
                       "molecules scatter short (blue) wavelengths far more than red ones.",
                       SMALL_CONTEXT, 0);
    s->cuts[0] = 0;
    s->cuts[1] = s->len;
    s->pieces = 1;
}

static void make_stream(shape *s)
{
    static const char *const words[] = { " The", " sky", " is", " blue", " because", "\\n",
                                         " of", " \\\"Rayleigh\\\"", " scattering", "." };
    size_t cap = STREAM_CHUNKS * 160 + BODY_SLACK, n = 0;
    s->body = malloc(cap);
    for (int i = 0; i < STREAM_CHUNKS - 1; i++) {
        s->cuts[i] = n;
        n += (size_t)snprintf(s->body + n, cap - n, "{\"model\":\"qwen2.5:3b\",\"created_at\":"
                              "\"2024-05-01T10:00:%02d.%06dZ\",\"response\":\"%s\","
                              "\"done\":false}\n", i % 60, i * 4099 % 1000000,
                              words[i % (sizeof words / sizeof words[0])]);
    }
    s->cuts[STREAM_CHUNKS - 1] = n;
    n += put_final(s->body + n, cap - n, "", SMALL_CONTEXT, 0);
    s->cuts[STREAM_CHUNKS] = n;
    s->len = n;
    s->pieces = STREAM_CHUNKS;
}

static void make_huge(shape *s)
{
    size_t cap = HUGE_BYTES + BODY_SLACK;
    s->body = malloc(cap);
    s->len = put_final(s->body, cap, "", 0, HUGE_BYTES - 400);
    s->cuts[0] = 0;
    s->cuts[1] = s->len;
    s->pieces = 1;
}

/* Scan the shape once, piece by piece; returns 1 when the counts come out right. */
static int scan_once(const shape *s)
{
    mx_usage u;
    mx_usage_init(&u);
    for (int i = 0; i < s->pieces; i++)
        mx_usage_feed(&u, s->body + s->cuts[i], s->cuts[i + 1] - s->cuts[i]);
    mx_usage_finish(&u);
    return u.prompt_tokens == PROMPT_COUNT && u.output_tokens == EVAL_COUNT &&
           u.eval_duration_ns == 4232710000ull;
}

/* Seconds per scan of the shape (total / scans over >= BENCH_MIN_SECONDS). */
static double time_shape(const shape *s)
{
    int rounds = 0, batch = s->len >= BENCH_BATCH_BYTES ? 1 : (int)(BENCH_BATCH_BYTES / s->len);
    double t0 = now_s(), t;
    do {
        for (int i = 0; i < batch; i++)
            scan_once(s);
        rounds += batch;
        t = now_s() - t0;
    } while (t < BENCH_MIN_SECONDS || rounds < BENCH_MIN_ROUNDS);
    return t / rounds;
}

int main(int argc, char **argv)
{
    shape shapes[3] = { { .name = "generate ~500 B + context" },
                        { .name = "NDJSON stream, 100 chunks" },
                        { .name = "generate, 300 KB context" } };
    long fixed = argc > 1 ? strtol(argv[1], NULL, 10) : 0;
    long only = argc > 2 ? strtol(argv[2], NULL, 10) : -1;  /* one shape (0..2) or all */
    int rc = 0;
    make_small(&shapes[0]);
    make_stream(&shapes[1]);
    make_huge(&shapes[2]);
    if (fixed <= 0)
        printf("%-28s %10s %10s %12s\n", "shape", "bytes", "MB/s", "per body");
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const shape *s = &shapes[i];
        if (only >= 0 && (size_t)only != i) {
            free(s->body);
            continue;
        }
        if (!scan_once(s)) {
            fprintf(stderr, "%s: wrong counts\n", s->name);
            rc = 1;
        } else if (fixed > 0) {
            for (long r = 0; r < fixed; r++)
                scan_once(s);
            printf("%-28s %10zu bytes x %ld rounds\n", s->name, s->len, fixed);
        } else {
            double t = time_shape(s);
            printf("%-28s %10zu %10.0f %9.3f us\n", s->name, s->len, s->len / t / 1e6, t * 1e6);
        }
        free(s->body);
    }
    return rc;
}
