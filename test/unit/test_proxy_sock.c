/* test_proxy_sock.c — px_sock_send_ref (proxy/px_sock.c): the bytes of a kept buffer reach the
 * peer whole and in order, whether the kernel takes them at once, takes part of them (a small
 * send buffer) or finds output already waiting, and however many pieces the buffer has; the
 * buffer itself is left as it was, so it can be sent again (the stale-connection retry).  Over
 * a socketpair and a real event loop.  Also px_now's one instant per socket callback. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include "proxy/px_int.h"

#define SMALL_LEN 700                   /* a request that goes out in one send */
#define BIG_LEN (3 * 1024 * 1024)       /* far more than the socket buffer below */
#define SNDBUF_BYTES 4096               /* asked-for send buffer: forces partial sends */
#define PIECE_LEN 1500                  /* bytes per piece of the kept buffer (several chains) */
#define READ_CHUNK 65536                /* receiver's read size */
#define LOOP_TURNS_MAX 100000           /* bound on loop turns while draining */
#define MANY_PIECES (PX_SEND_IOV * 3)   /* more separate chains than one direct send takes */

typedef struct pair {
    struct event_base *base;    /* the loop */
    px_sock *sk;                /* sending side (ours) */
    int peer;                   /* receiving end of the socketpair */
} pair;

static void pair_open(pair *p, int sndbuf)
{
    int fds[2];

    p->base = event_base_new();
    assert_non_null(p->base);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    if (sndbuf > 0)
        assert_int_equal(setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf), 0);
    p->sk = px_sock_new(p->base, fds[0]);
    assert_non_null(p->sk);
    p->peer = fds[1];
    evutil_make_socket_nonblocking(p->peer);
}

static void pair_close(pair *p)
{
    px_sock_free(p->sk);
    close(p->peer);
    event_base_free(p->base);
}

/* A buffer of len pattern bytes, built from several added pieces (so it has several chains);
 * want gets a flat copy. */
static struct evbuffer *pattern(size_t len, size_t offset, unsigned char **want)
{
    struct evbuffer *b = evbuffer_new();
    unsigned char *w = malloc(len);
    size_t i, at;

    assert_non_null(b);
    assert_non_null(w);
    for (i = 0; i < len; i++)
        w[i] = (unsigned char)((i + offset) * 131u >> 3);
    for (at = 0; at < len; at += PIECE_LEN)
        assert_int_equal(evbuffer_add(b, w + at, len - at < PIECE_LEN ? len - at : PIECE_LEN), 0);
    *want = w;
    return b;
}

/* Read from the peer, turning the loop while our side still holds output, until len bytes
 * came; they must equal want. */
static void receive_all(pair *p, const unsigned char *want, size_t len)
{
    unsigned char *got = malloc(len + READ_CHUNK);
    size_t have = 0;
    int turns = 0;

    assert_non_null(got);
    while (have < len && turns++ < LOOP_TURNS_MAX) {
        ssize_t n = read(p->peer, got + have, READ_CHUNK);
        if (n > 0) {
            have += (size_t)n;
            continue;
        }
        assert_true(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
        event_base_loop(p->base, EVLOOP_NONBLOCK);      /* our side sends what is waiting */
    }
    assert_int_equal(have, len);
    assert_memory_equal(got, want, len);
    assert_int_equal(px_sock_pending(p->sk), 0);
    free(got);
}

static void small_buffer_goes_out_at_once_and_is_kept(void **st)
{
    pair p;
    unsigned char *want;
    struct evbuffer *b = pattern(SMALL_LEN, 0, &want);

    (void)st;
    pair_open(&p, 0);
    px_sock_send_ref(p.sk, b);
    assert_int_equal(px_sock_pending(p.sk), 0);         /* nothing left waiting */
    receive_all(&p, want, SMALL_LEN);
    assert_int_equal(evbuffer_get_length(b), SMALL_LEN);
    px_sock_send_ref(p.sk, b);                          /* the retry sends the same bytes */
    receive_all(&p, want, SMALL_LEN);
    pair_close(&p);
    evbuffer_free(b);
    free(want);
}

static void big_buffer_goes_out_in_parts_and_is_kept(void **st)
{
    pair p;
    unsigned char *want, *copy = malloc(BIG_LEN);
    struct evbuffer *b = pattern(BIG_LEN, 7, &want);

    (void)st;
    assert_non_null(copy);
    pair_open(&p, SNDBUF_BYTES);
    px_sock_send_ref(p.sk, b);
    assert_true(px_sock_pending(p.sk) > 0);             /* the kernel took only a part */
    assert_true(px_sock_pending(p.sk) < BIG_LEN);
    receive_all(&p, want, BIG_LEN);
    assert_int_equal(evbuffer_get_length(b), BIG_LEN);
    assert_int_equal(evbuffer_copyout(b, copy, BIG_LEN), BIG_LEN);
    assert_memory_equal(copy, want, BIG_LEN);           /* untouched by the sending */
    pair_close(&p);
    evbuffer_free(b);
    free(want);
    free(copy);
}

static void many_pieces_arrive_whole(void **st)
{
    pair p;
    unsigned char *want;
    struct evbuffer *flat = pattern(MANY_PIECES * SMALL_LEN, 5, &want), *b = evbuffer_new();
    int i;

    (void)st;
    assert_non_null(b);
    for (i = 0; i < MANY_PIECES; i++)           /* a reference is a chain of its own */
        assert_int_equal(evbuffer_add_reference(b, want + (size_t)i * SMALL_LEN, SMALL_LEN, NULL, NULL), 0);
    assert_true(evbuffer_peek(b, -1, NULL, NULL, 0) > PX_SEND_IOV);
    pair_open(&p, 0);
    px_sock_send_ref(p.sk, b);
    receive_all(&p, want, MANY_PIECES * SMALL_LEN);
    assert_int_equal(evbuffer_get_length(b), MANY_PIECES * SMALL_LEN);
    pair_close(&p);
    evbuffer_free(b);
    evbuffer_free(flat);
    free(want);
}

/* Output already waiting — queued and not yet flushed (queued != 0), or left over from a
 * partial send — goes out before b. */
static void waiting_output_goes_first_case(int queued)
{
    pair p;
    unsigned char *first, *second, *both = malloc(BIG_LEN + SMALL_LEN);
    struct evbuffer *a = pattern(BIG_LEN, 1, &first), *b = pattern(SMALL_LEN, 2, &second);

    assert_non_null(both);
    pair_open(&p, SNDBUF_BYTES);
    if (queued)
        assert_int_equal(evbuffer_add_buffer(p.sk->out, a), 0);   /* the socket is still writable */
    else
        px_sock_send_ref(p.sk, a);                      /* leaves most of a waiting */
    assert_true(px_sock_pending(p.sk) > 0);
    px_sock_send_ref(p.sk, b);                          /* must queue behind it, not jump it */
    memcpy(both, first, BIG_LEN);
    memcpy(both + BIG_LEN, second, SMALL_LEN);
    receive_all(&p, both, BIG_LEN + SMALL_LEN);
    pair_close(&p);
    evbuffer_free(a);
    evbuffer_free(b);
    free(first);
    free(second);
    free(both);
}

static void waiting_output_goes_first(void **st)
{
    (void)st;
    waiting_output_goes_first_case(1);
    waiting_output_goes_first_case(0);
}

static void kept_buffer_may_be_freed_while_referenced(void **st)
{
    pair p;
    unsigned char *want;
    struct evbuffer *b = pattern(BIG_LEN, 3, &want);

    (void)st;
    pair_open(&p, SNDBUF_BYTES);
    px_sock_send_ref(p.sk, b);
    assert_true(px_sock_pending(p.sk) > 0);
    px_buf_put(b);                                      /* the exchange ends; output still holds it */
    receive_all(&p, want, BIG_LEN);
    pair_close(&p);
    px_buf_pool_free();
    free(want);
}

/* Spin until CLOCK_MONOTONIC has moved past t (seconds, as px_now counts); bounded by the
 * clock's own progress, not by a sleep. */
static void clock_moves_past(double t)
{
    struct timespec ts;
    do
        clock_gettime(CLOCK_MONOTONIC, &ts);
    while ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9 <= t);
}

static void *other_thread_now(void *arg)
{
    *(double *)arg = px_now();
    return NULL;
}

/* Inside a socket callback every px_now is the first reading (nested callbacks too); leaving
 * the outermost one forgets it; another thread always reads the clock itself. */
static void one_event_one_instant(void **st)
{
    double a, b, c, other = 0;
    pthread_t th;

    (void)st;
    px_now_scope(1);
    a = px_now();
    clock_moves_past(a);
    assert_true(px_now() == a);
    px_now_scope(1);                            /* a callback run from inside another */
    assert_true(px_now() == a);
    px_now_scope(0);
    assert_true(px_now() == a);
    assert_int_equal(pthread_create(&th, NULL, other_thread_now, &other), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_true(other > a);                     /* the controller thread's clock moved on */
    px_now_scope(0);
    b = px_now();
    assert_true(b > a);
    clock_moves_past(b);
    c = px_now();
    assert_true(c > b);                         /* outside callbacks: the clock itself */
}

typedef struct seen {
    double first, again;        /* px_now at the callback's start, and after the clock moved */
    int calls;                  /* read callbacks run */
} seen;

static void stamp_readcb(px_sock *sk, void *arg)
{
    seen *t = arg;
    t->first = px_now();
    clock_moves_past(t->first);
    t->again = px_now();
    t->calls++;
    evbuffer_drain(sk->in, evbuffer_get_length(sk->in));
}

/* Run the loop until the read callback has run `calls` times (bounded in turns). */
static void loop_until_calls(pair *p, seen *t, int calls)
{
    int turns = 0;
    while (t->calls < calls && turns++ < LOOP_TURNS_MAX)
        event_base_loop(p->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    assert_int_equal(t->calls, calls);
}

/* The same through a real socket callback: sock_cb opens and closes the scope, so the time is
 * one inside a callback, the clock's own after it, and a fresh reading in the next one. */
static void socket_callback_is_one_instant(void **st)
{
    seen t = {0, 0, 0};
    double after, first_before;
    pair p;

    (void)st;
    pair_open(&p, 0);
    px_sock_setcb(p.sk, stamp_readcb, NULL, NULL, &t);
    px_sock_read(p.sk, 1);
    assert_int_equal(write(p.peer, "a", 1), 1);
    loop_until_calls(&p, &t, 1);
    assert_true(t.again == t.first);
    after = px_now();
    assert_true(after > t.first);               /* the scope was left: the clock itself */
    first_before = t.again;
    clock_moves_past(after);
    assert_int_equal(write(p.peer, "b", 1), 1);
    loop_until_calls(&p, &t, 2);
    assert_true(t.first > first_before);        /* nothing kept from the last callback */
    assert_true(t.again == t.first);
    pair_close(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(small_buffer_goes_out_at_once_and_is_kept),
        cmocka_unit_test(big_buffer_goes_out_in_parts_and_is_kept),
        cmocka_unit_test(many_pieces_arrive_whole),
        cmocka_unit_test(waiting_output_goes_first),
        cmocka_unit_test(kept_buffer_may_be_freed_while_referenced),
        cmocka_unit_test(one_event_one_instant),
        cmocka_unit_test(socket_callback_is_one_instant),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
