/* test_scoring_history.c — learning from finished requests with synthetic histories: no
 * history = static score, slow models score higher than fast ones, the blend stays within its
 * bound, old history is forgotten, the table is bounded, embeddings learn separately. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "scoring/scoring.h"
#include "scoring/sc_internal.h"   /* SC_HISTORY_* bounds */

/* A 150-word generate body (medium by the static formula) or a short embed body. */
static sc_result score(sc_scorer *s, const char *model, sc_endpoint ep, double now)
{
    char b[2048];
    sc_result r;
    if (ep == SC_EP_EMBED) {
        snprintf(b, sizeof b, "{\"model\":\"%s\",\"input\":\"hello there\"}", model);
    } else {
        size_t n = (size_t)snprintf(b, sizeof b, "{\"model\":\"%s\",\"prompt\":\"", model);
        for (int i = 0; i < 150; i++) n += (size_t)snprintf(b + n, sizeof b - n, "%s ", i % 2 ? "sky" : "blue");
        snprintf(b + n, sizeof b - n, "\"}");
    }
    sc_score(s, ep, b, strlen(b), now, &r);
    return r;
}

/* n requests of model, each taking secs, ending at 100 + i seconds. */
static void teach(sc_scorer *s, const char *model, sc_endpoint ep, int n, double secs,
                  long in, long out)
{
    for (int i = 0; i < n; i++) sc_history_observe(s, model, ep, secs, in, out, 100.0 + i);
}

static int setup(void **state)
{
    *state = sc_scorer_new(NULL);
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    sc_scorer_free(*state);
    return 0;
}

static void no_history_is_static(void **state)
{
    sc_result r = score(*state, "m", SC_EP_GENERATE, 200);
    assert_int_equal(r.score, r.static_score);
    assert_int_equal(r.level, SC_LEVEL_MEDIUM);
    teach(*state, "other", SC_EP_GENERATE, 20, 120, 100, 2000);   /* another model's history */
    sc_result r2 = score(*state, "m", SC_EP_GENERATE, 200);
    assert_memory_equal(&r, &r2, sizeof r);
    teach(*state, "", SC_EP_GENERATE, 20, 120, 100, 2000);        /* no model: ignored */
    r2 = score(*state, "", SC_EP_GENERATE, 200);
    assert_int_equal(r2.score, r2.static_score);
}

static void slow_model_scores_higher_than_fast(void **state)
{
    sc_scorer *s = *state;
    teach(s, "slow", SC_EP_GENERATE, 30, 45.0, 200, 800);
    teach(s, "fast", SC_EP_GENERATE, 30, 0.4, 200, 800);
    teach(s, "slow-notok", SC_EP_GENERATE, 30, 45.0, -1, -1);    /* durations only */
    teach(s, "fast-notok", SC_EP_GENERATE, 30, 0.4, -1, -1);
    sc_result slow = score(s, "slow", SC_EP_GENERATE, 130), fast = score(s, "fast", SC_EP_GENERATE, 130);
    assert_int_equal(slow.static_score, fast.static_score);
    assert_true(slow.score > slow.static_score);
    assert_true(fast.score < fast.static_score);
    slow = score(s, "slow-notok", SC_EP_GENERATE, 130);
    fast = score(s, "fast-notok", SC_EP_GENERATE, 130);
    assert_true(slow.score > fast.score);
}

static void blend_stays_within_bound(void **state)
{
    sc_scorer *s = *state;
    teach(s, "glacial", SC_EP_GENERATE, 1000, 1e9, 1, 100000);
    teach(s, "instant", SC_EP_GENERATE, 1000, 0, 100000, 0);
    teach(s, "weird", SC_EP_GENERATE, 1000, -5, -7, 3);           /* negative: ignored */
    for (double now = 1100; now < 1e6; now *= 3) {
        sc_result a = score(s, "glacial", SC_EP_GENERATE, now), b = score(s, "instant", SC_EP_GENERATE, now);
        assert_true(a.score - a.static_score <= (int)SC_HISTORY_BOUND);
        assert_true(a.score >= a.static_score);
        assert_true(b.static_score - b.score <= (int)SC_HISTORY_BOUND);
        assert_true(b.score <= b.static_score);
        sc_result w = score(s, "weird", SC_EP_GENERATE, now);
        assert_int_equal(w.score, w.static_score);
    }
}

static void history_is_deterministic(void **state)
{
    sc_scorer *a = *state, *b = sc_scorer_new(NULL);
    teach(a, "m", SC_EP_CHAT, 10, 12.5, 300, 700);
    teach(b, "m", SC_EP_CHAT, 10, 12.5, 300, 700);
    sc_result ra = score(a, "m", SC_EP_CHAT, 150), rb = score(b, "m", SC_EP_CHAT, 150);
    sc_result ra2 = score(a, "m", SC_EP_CHAT, 150);
    assert_memory_equal(&ra, &rb, sizeof ra);
    assert_memory_equal(&ra, &ra2, sizeof ra);                   /* scoring does not learn */
    sc_scorer_free(b);
}

static void old_history_is_forgotten(void **state)
{
    sc_scorer *s = *state;
    teach(s, "m", SC_EP_GENERATE, 30, 60.0, 100, 1000);
    sc_result fresh = score(s, "m", SC_EP_GENERATE, 130);
    sc_result hour = score(s, "m", SC_EP_GENERATE, 130 + 6 * SC_HISTORY_HALF_LIFE_S);
    sc_result day = score(s, "m", SC_EP_GENERATE, 130 + 100 * SC_HISTORY_HALF_LIFE_S);
    assert_true(fresh.score > hour.score);
    assert_true(hour.score >= day.score);
    assert_int_equal(day.score, day.static_score);
    /* new fast observations outweigh old slow ones after a while */
    for (int i = 0; i < 30; i++)
        sc_history_observe(s, "m", SC_EP_GENERATE, 0.3, 100, 1000, 130 + 5 * SC_HISTORY_HALF_LIFE_S + i);
    sc_result now = score(s, "m", SC_EP_GENERATE, 160 + 5 * SC_HISTORY_HALF_LIFE_S);
    assert_true(now.score < now.static_score);
}

static void table_is_bounded_lru(void **state)
{
    sc_scorer *s = *state;
    char name[32];
    for (int i = 0; i < 4 * SC_HISTORY_MAX; i++) {
        snprintf(name, sizeof name, "model-%d", i);
        sc_history_observe(s, name, SC_EP_GENERATE, 100, 10, 2000, 1000 + i);
        sc_history_observe(s, name, SC_EP_GENERATE, 100, 10, 2000, 1000 + i);
    }
    int remembered = 0;
    for (int i = 0; i < 4 * SC_HISTORY_MAX; i++) {
        snprintf(name, sizeof name, "model-%d", i);
        sc_result r = score(s, name, SC_EP_GENERATE, 1000 + 4 * SC_HISTORY_MAX);
        int has = r.score != r.static_score;
        remembered += has;
        if (i >= 3 * SC_HISTORY_MAX) assert_true(has);           /* the latest are kept */
    }
    assert_int_equal(remembered, SC_HISTORY_MAX);
}

static void embeddings_learn_separately(void **state)
{
    sc_scorer *s = *state;
    teach(s, "m", SC_EP_CHAT, 30, 90.0, 100, 3000);             /* slow chats */
    sc_result e = score(s, "m", SC_EP_EMBED, 130);
    assert_int_equal(e.score, e.static_score);
    teach(s, "m", SC_EP_OAI_EMBEDDINGS, 30, 60.0, 3, 0);         /* slow embeddings, same class */
    e = score(s, "m", SC_EP_EMBED, 130);
    assert_true(e.score > e.static_score);
}

static void longer_prompt_costs_more_with_token_history(void **state)
{
    sc_scorer *s = *state;
    char b[8192];
    teach(s, "m", SC_EP_GENERATE, 30, 20.0, 5000, 50);           /* prompt-dominated model */
    sc_result r1, r2;
    for (int k = 0; k < 2; k++) {       /* 100 words, then 300: static 30 and 80, no clamping */
        size_t n = (size_t)snprintf(b, sizeof b, "{\"model\":\"m\",\"prompt\":\"");
        for (int i = 0; i < (k ? 300 : 100); i++) n += (size_t)snprintf(b + n, sizeof b - n, "word ");
        snprintf(b + n, sizeof b - n, "\"}");
        sc_score(s, SC_EP_GENERATE, b, strlen(b), 130, k ? &r2 : &r1);
    }
    assert_true(r2.score - r2.static_score > r1.score - r1.static_score);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(no_history_is_static, setup, teardown),
        cmocka_unit_test_setup_teardown(slow_model_scores_higher_than_fast, setup, teardown),
        cmocka_unit_test_setup_teardown(blend_stays_within_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(history_is_deterministic, setup, teardown),
        cmocka_unit_test_setup_teardown(old_history_is_forgotten, setup, teardown),
        cmocka_unit_test_setup_teardown(table_is_bounded_lru, setup, teardown),
        cmocka_unit_test_setup_teardown(embeddings_learn_separately, setup, teardown),
        cmocka_unit_test_setup_teardown(longer_prompt_costs_more_with_token_history, setup, teardown),
    };
    return cmocka_run_group_tests_name("scoring_history", tests, NULL, NULL);
}
