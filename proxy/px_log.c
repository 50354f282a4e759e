/* px_log.c — JSON-lines logging on stderr.  One write(2) per line so lines from the loop and
 * the controller thread never interleave.  Callers never pass prompt or response text. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "proxy/proxy.h"

#define PX_LOG_LINE_MAX 4096    /* longest log line; longer field lists are truncated */

static px_log_level g_level = PX_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

/* Set the minimum level that is written. */
void px_log_set_level(px_log_level l) { g_level = l; }

/* 1 when lines of level l are written (lets a caller skip preparing fields nobody reads). */
int px_log_on(px_log_level l) { return l >= g_level; }

/* Write one JSON object: ts, level, msg, then the caller's preformatted fields.  msg must be a
 * constant without characters that need escaping. */
void px_log(px_log_level l, const char *msg, const char *fmt_fields, ...)
{
    char line[PX_LOG_LINE_MAX];
    struct timespec ts;
    struct tm tm;
    size_t n;
    int k;

    if (l < g_level)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof line, "{\"ts\":\"%Y-%m-%dT%H:%M:%S", &tm);
    k = snprintf(line + n, sizeof line - n, ".%03ldZ\",\"level\":\"%s\",\"msg\":\"%s\"",
                 ts.tv_nsec / 1000000L, level_names[l], msg);
    n += (size_t)k;
    if (fmt_fields && *fmt_fields && n < sizeof line - 3) {
        va_list ap;
        line[n++] = ',';
        va_start(ap, fmt_fields);
        k = vsnprintf(line + n, sizeof line - n - 2, fmt_fields, ap);
        va_end(ap);
        n += (k < 0) ? 0 : ((size_t)k < sizeof line - n - 2 ? (size_t)k : sizeof line - n - 3);
    }
    line[n++] = '}';
    line[n++] = '\n';
    /* why: a short write to a pipe of < PIPE_BUF bytes cannot interleave with another thread's */
    if (write(STDERR_FILENO, line, n) < 0) { /* nowhere left to report it */ }
}

/* Thread-local: the controller thread asks px_now too, and must get the clock itself. */
static _Thread_local int now_depth;     /* socket callbacks on the stack (px_now_scope) */
static _Thread_local double now_cached; /* the clock as first read inside them, 0 until read */

/* Monotonic seconds.  Inside a socket callback, the time the callback first asked: one event,
 * one instant (why: a small request asked the clock a dozen times in two callbacks, and nginx
 * too stamps everything an event does with one reading).  Elsewhere the clock itself. */
double px_now(void)
{
    struct timespec ts;
    double t;

    if (now_cached > 0)
        return now_cached;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    t = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    if (now_depth > 0)
        now_cached = t;
    return t;
}

/* Enter (1) or leave (0) a socket callback; the outermost leave forgets the cached time. */
void px_now_scope(int enter)
{
    if (enter) {
        now_depth++;
    } else if (--now_depth == 0) {
        now_cached = 0;
    }
}

/* Escape for a JSON string: quotes, backslashes and control characters. */
void px_json_escape(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    if (cap == 0)
        return;
    for (; *s && o + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20) {
            memcpy(out + o, "\\u00", 4);
            out[o + 4] = hex[c >> 4];
            out[o + 5] = hex[c & 15];
            o += 6;
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
}
