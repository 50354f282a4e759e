/* test_k8s_hint.c — the hint queue: order kept, overflow reported (never waited on), a queue
 * with no controller is a no-op; a producer and a consumer thread lose nothing they did not
 * report as dropped. */
#include <pthread.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "k8s/k8s_internal.h"

static void overflow_is_reported(void **st)
{
    k8s_hint h, out;
    int i;

    (void)st;
    memset(&h, 0, sizeof h);
    k8s_hints_enable(1);
    for (i = 0; i < K8S_HINT_RING - 1; i++) {
        h.score = i;
        assert_int_equal(k8s_hint_post(&h), 0);
    }
    assert_int_equal(k8s_hint_post(&h), -1);    /* full: the caller counts the drop */
    assert_int_equal(k8s_hint_post(&h), -1);
    assert_int_equal(k8s_hint_take(&out), 1);
    assert_int_equal(out.score, 0);             /* FIFO */
    assert_int_equal(k8s_hint_post(&h), 0);     /* room again */
    for (i = 1; i < K8S_HINT_RING - 1; i++) {
        assert_int_equal(k8s_hint_take(&out), 1);
        assert_int_equal(out.score, i);
    }
    assert_int_equal(k8s_hint_take(&out), 1);
    assert_int_equal(k8s_hint_take(&out), 0);
    k8s_hints_enable(0);
}

static void disabled_queue_is_a_noop(void **st)
{
    k8s_hint h, out;

    (void)st;
    memset(&h, 0, sizeof h);
    k8s_hints_enable(0);
    assert_int_equal(k8s_hint_post(&h), 0);
    assert_int_equal(k8s_hint_take(&out), 0);
}

#define SPSC_N 200000           /* hints the producer thread posts */

static atomic_int g_done;       /* producer finished */

static void *producer(void *arg)
{
    int *dropped = arg, i;
    k8s_hint h;

    memset(&h, 0, sizeof h);
    for (i = 0; i < SPSC_N; i++) {
        h.score = i;
        if (k8s_hint_post(&h) < 0)
            (*dropped)++;
    }
    atomic_store(&g_done, 1);
    return NULL;
}

static void two_threads_account_for_every_hint(void **st)
{
    pthread_t t;
    int dropped = 0, got = 0, last = -1, done;
    k8s_hint out;

    (void)st;
    k8s_hints_enable(1);
    atomic_store(&g_done, 0);
    assert_int_equal(pthread_create(&t, NULL, producer, &dropped), 0);
    for (;;) {
        done = atomic_load(&g_done);
        while (k8s_hint_take(&out)) {
            assert_true(out.score > last);      /* order kept, no duplicates */
            last = out.score;
            got++;
        }
        if (done)
            break;
    }
    pthread_join(t, NULL);
    while (k8s_hint_take(&out))
        got++;
    assert_int_equal(got + dropped, SPSC_N);
    k8s_hints_enable(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(overflow_is_reported),
        cmocka_unit_test(disabled_queue_is_a_noop),
        cmocka_unit_test(two_threads_account_for_every_hint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
