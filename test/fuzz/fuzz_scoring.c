/* fuzz_scoring.c — libFuzzer target over the scorer (and the policy parser).
 * For any bytes: sc_score never crashes, leaks or hangs; the score is 0..100 with a valid
 * level; scoring is deterministic; the 8-byte text path and the byte path agree on every
 * feature; history stays bounded; a policy that parses prints and re-parses to the same. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scoring/scoring.h"
#include "scoring/sc_internal.h"

#define FUZZ_POLICY_MAX 4096    /* policy parsing is tried on inputs up to this size */

static sc_scorer *scorer;       /* one scorer for the whole run: history accumulates */
static sc_kwset fast, slow;     /* same keywords; slow has the 8-byte path disabled */
static double clock_s;          /* synthetic monotonic clock */

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_scoring: invariant broken: %s\n", what);
        abort();
    }
}

static void fuzz_policy(const uint8_t *data, size_t size)
{
    sc_policy a, b;
    char err[256], *text = NULL;
    size_t n = 0;
    if (size > FUZZ_POLICY_MAX || sc_policy_parse(&a, (const char *)data, size, err, sizeof err) != 0) {
        return;
    }
    FILE *f = open_memstream(&text, &n);
    check(f != NULL, "open_memstream");
    sc_policy_print(&a, f);
    fclose(f);
    check(sc_policy_parse(&b, text, n, err, sizeof err) == 0, "printed policy re-parses");
    check(a.nweights == b.nweights && a.nkeywords == b.nkeywords && a.min_replicas == b.min_replicas &&
          a.max_replicas == b.max_replicas && a.has_resources == b.has_resources &&
          memcmp(a.thresholds, b.thresholds, sizeof a.thresholds) == 0, "printed policy is the same");
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!scorer) {
        scorer = sc_scorer_new(NULL);
        sc_kwset_build(&fast, NULL);
        slow = fast;
        slow.nfirsts = -1;
    }
    const char *body = (const char *)data;
    sc_endpoint ep = (sc_endpoint)(SC_EP_GENERATE + size % 7);
    sc_result r1, r2;
    clock_s += 1.0;
    sc_score(scorer, ep, body, size, clock_s, &r1);
    sc_score(scorer, ep, body, size, clock_s, &r2);
    check(memcmp(&r1, &r2, sizeof r1) == 0, "deterministic");
    check(r1.score >= 0 && r1.score <= 100, "score in 0..100");
    check(r1.static_score >= 0 && r1.static_score <= 100, "static score in 0..100");
    check(r1.level >= SC_LEVEL_LOW && r1.level <= SC_LEVEL_HIGH, "level valid");
    check(abs(r1.score - r1.static_score) <= (int)SC_HISTORY_BOUND + 1, "history within bound");
    check(r1.f.json_ok || r1.score == 0, "invalid body scores 0");
    check(memchr(r1.model, 0, sizeof r1.model) != NULL, "model terminated");

    sc_features ff, fs;
    char mf[SC_MODEL_MAX], ms[SC_MODEL_MAX];
    sc_extract(&fast, body, size, &ff, mf, sizeof mf);
    sc_extract(&slow, body, size, &fs, ms, sizeof ms);
    check(memcmp(&ff, &fs, sizeof ff) == 0, "fast and byte paths agree");
    check(strcmp(mf, ms) == 0, "model agrees");

    /* teach the history something derived from the input, so blending is exercised */
    sc_history_observe(scorer, r1.model, ep, (double)(size % 97), (long)(size % 5) - 1,
                       (long)(size % 13) * 50, clock_s);
    fuzz_policy(data, size);
    return 0;
}
