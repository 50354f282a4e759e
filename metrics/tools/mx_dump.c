/* mx_dump.c — prints the exposition after a workload that touches every family, every label
 * and the awkward values (hostile model names, the model cap, overflowing status codes, values
 * beyond the last bucket).  Used by test/checks/promtool-metrics.sh; not part of the proxy. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <event2/buffer.h>
#include "metrics/metrics.h"

#define DUMP_MODELS 40                  /* more than MX_MODELS_MAX, so "other" appears */
#define DUMP_REQUESTS 500               /* requests in the workload */

int main(void)
{
    static const int codes[] = { 200, 200, 200, 400, 404, 413, 499, 502, 503, 504 };
    struct evbuffer *out = evbuffer_new();
    double now = mx_now();
    char name[64];
    int rc = 1;

    if (!out)
        goto done;
    mx_init(now, (double)time(NULL), "dump \"v1\"\\\n");
    for (int i = 0; i < DUMP_REQUESTS; i++) {
        mx_cx cx = (mx_cx)(i % MX_CX_COUNT);
        mx_active_add(1);
        mx_waiting_add(1);
        if (cx != MX_CX_NONE)
            mx_score_observe((i * 37) % 101, now + i * 0.1);
        mx_waiting_add(-1);
        mx_ttft_observe((i % 50) * 0.7);
        mx_tpot_observe((i % 30) * 0.004);
        snprintf(name, sizeof name, i % 7 ? "model-%d" : "a\"b\\c\nd-%d", i % DUMP_MODELS);
        mx_tokens_add(name, (uint64_t)(i % 90), (uint64_t)(i % 300));
        mx_request_done(cx, codes[i % 10], (i % 40) * 9.0);
        if (i % 3)
            mx_active_add(-1);
    }
    for (int s = 100; s < 100 + MX_STATUS_MAX + 5; s++)
        mx_request_done(MX_CX_MEDIUM, s, 0.01);
    for (int r = 0; r < MX_UPERR_COUNT; r++)
        mx_upstream_error((mx_uperr)r);
    mx_hint_dropped();
    mx_render(out, now + DUMP_REQUESTS * 0.1);
    rc = evbuffer_write(out, 1) < 0;
    while (rc == 0 && evbuffer_get_length(out) > 0)
        rc = evbuffer_write(out, 1) < 0;
done:
    if (out)
        evbuffer_free(out);
    return rc;
}
