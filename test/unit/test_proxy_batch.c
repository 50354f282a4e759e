/* test_proxy_batch.c — px_sock's system calls batched over one loop turn with io_uring
 * (proxy/px_sock.c, "system calls batched over one loop turn"): small reads of many sockets
 * done together at the turn's end and delivered each to its own socket; the overflow past
 * PX_BATCH_MAX, a read that fills its slot (big reads), EOF, and sockets freed while queued
 * (by another socket's callback, outside callbacks, by px_sock_batch_free); px_sock_send_ref
 * and px_sock_flush_later queued for the turn's end (pending until then, writecb once, a trim
 * asked meanwhile done after the send, cancelled by px_sock_ensure), several sockets' sends in
 * one submit, a batch's only read sending at once; and, with batching off,
 * the plain path.  Over socketpairs and a real event loop; every loop is bounded in turns.
 * "One batch" is seen through px_now: batch_run opens one px_now scope for all its
 * deliveries, while each plain read runs in a scope of its own and the read callback here
 * waits for the clock to move, so plain reads never share an instant. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include "proxy/px_int.h"

#define SLOT_LEN 960                    /* px_sock.c's PX_READ_SMALL: one batched read's space */
#define MSG_MAX 64                      /* a small message (well under one slot) */
#define SOCKS_FEW 10                    /* sockets readable in one turn, fewer than a batch */
#define SOCKS_MANY (PX_BATCH_MAX + 16)  /* more sockets readable at once than a batch takes */
#define LARGE_LEN (100 * 1024)          /* a message far larger than one slot */
#define SMALL_LEN 700                   /* a send that goes out in one piece */
#define BIG_LEN (3 * 1024 * 1024)       /* far more than the socket buffer below */
#define SNDBUF_BYTES 4096               /* asked-for send buffer: forces partial sends */
#define PIECE_LEN 1500                  /* bytes per piece of a pattern buffer (several chains) */
#define READ_CHUNK 65536                /* peer's read size */
#define LOOP_TURNS_MAX 100000           /* bound on loop turns while waiting for something */
#define SETTLE_TURNS 4                  /* turns that consume a fresh socket's first events */
#define ONE_TURN (EVLOOP_ONCE | EVLOOP_NONBLOCK) /* one pass: poll, then the active callbacks */

/* Turn base's loop until cond holds, at most LOOP_TURNS_MAX turns (no sleeps). */
#define TURN_UNTIL(base, cond)                                              \
    do {                                                                    \
        int turns_ = 0;                                                     \
        while (!(cond) && turns_++ < LOOP_TURNS_MAX)                        \
            event_base_loop((base), ONE_TURN);                              \
        assert_true(cond);                                                  \
    } while (0)

typedef struct end {
    px_sock *sk;                /* our side */
    int peer;                   /* the socketpair's other end (non-blocking) */
    struct evbuffer *got;       /* bytes our readcb was handed, in order */
    int reads, eofs, errors, writes; /* callbacks seen */
    size_t first_len, max_len;  /* bytes new at the first readcb, and at the largest */
    double when;                /* px_now inside the last readcb */
    struct end *victim;         /* freed by this one's readcb when set (and not yet freed) */
    struct end *hush;           /* this one's readcb turns that one's reading off when set */
    struct end *poke;           /* this one's writecb writes poke_bytes to that one, flushed */
    const char *poke_bytes;     /* (plain px_sock_flush, at once) */
    struct evbuffer *to_send;   /* what queue_send_cb queues */
    struct evbuffer *more;      /* on_write queues these bytes once (flush_later) when set */
    struct end *relay;          /* this one's readcb moves what it got to that one's output
                                   (flush_later), as the proxy relays, when set */
    size_t relay_pending;       /* that one's px_sock_pending right after the flush_later */
    int freed;                  /* sk already freed by the test */
} end;

/* Spin until CLOCK_MONOTONIC has moved past t (px_now's scale); no sleep. */
static void clock_moves_past(double t)
{
    struct timespec ts;
    do
        clock_gettime(CLOCK_MONOTONIC, &ts);
    while ((double)ts.tv_sec + (double)ts.tv_nsec / 1e9 <= t);
}

static void on_read(px_sock *sk, void *arg)
{
    end *e = arg;
    size_t n = evbuffer_get_length(sk->in);

    assert_false(e->freed);                     /* a freed socket is never called back */
    e->when = px_now();
    clock_moves_past(e->when);                  /* the next scope reads a later instant */
    if (e->reads++ == 0)
        e->first_len = n;
    if (n > e->max_len)
        e->max_len = n;
    if (e->relay) {
        assert_int_equal(evbuffer_add(e->relay->sk->out, evbuffer_pullup(sk->in, -1), n), 0);
        px_sock_flush_later(e->relay->sk);
        e->relay_pending = px_sock_pending(e->relay->sk);
    }
    assert_int_equal(evbuffer_add_buffer(e->got, sk->in), 0);
    if (e->hush && e->hush->reads == 0)
        px_sock_read(e->hush->sk, 0);
    if (e->victim && !e->victim->freed) {
        assert_true(e->victim->sk->in_cb > 0);  /* still held by the batch: free deferred */
        px_sock_free(e->victim->sk);
        e->victim->freed = 1;
    }
}

static void on_write(px_sock *sk, void *arg)
{
    end *e = arg;
    e->writes++;
    if (e->poke) {                              /* write to another socket of the same submit */
        end *t = e->poke;
        e->poke = t->poke = NULL;               /* once, by whichever writecb runs first */
        assert_int_equal(evbuffer_add(t->sk->out, e->poke_bytes, strlen(e->poke_bytes)), 0);
        px_sock_flush(t->sk);
    }
    if (e->more) {                              /* as conn_writecb may: answer the next one */
        assert_int_equal(evbuffer_add_buffer(sk->out, e->more), 0);
        px_sock_flush_later(sk);
        e->more = NULL;
    }
}

static void on_event(px_sock *sk, short what, void *arg)
{
    end *e = arg;
    (void)sk;
    e->eofs += (what & PX_SOCK_EOF) != 0;
    e->errors += (what & PX_SOCK_ERROR) != 0;
}

/* A loop with batching set up: use_ring 1 asks for io_uring and skips the test without it. */
static struct event_base *loop_open(int use_ring)
{
    struct event_base *base = event_base_new();
    int rc;

    assert_non_null(base);
    rc = px_sock_batch_init(base, use_ring);
    if (use_ring && rc == 0) {
        px_sock_batch_free();
        event_base_free(base);
        print_message("io_uring unavailable (px_sock_batch_init(base, 1) returned 0): "
                      "skipping an io_uring test\n");
        skip();
    }
    assert_int_equal(rc, use_ring);
    return base;
}

static void loop_close(struct event_base *base)
{
    px_sock_batch_free();
    event_base_free(base);
    px_buf_pool_free();
}

static void end_open(end *e, struct event_base *base, int sndbuf)
{
    int fds[2];

    memset(e, 0, sizeof *e);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    if (sndbuf > 0)
        assert_int_equal(setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf), 0);
    e->sk = px_sock_new(base, fds[0]);
    assert_non_null(e->sk);
    px_sock_setcb(e->sk, on_read, on_write, on_event, e);
    e->peer = fds[1];
    evutil_make_socket_nonblocking(e->peer);
    e->got = evbuffer_new();
    assert_non_null(e->got);
}

static void end_close(end *e)
{
    if (!e->freed)
        px_sock_free(e->sk);
    close(e->peer);
    evbuffer_free(e->got);
}

static void settle(struct event_base *base)
{
    for (int i = 0; i < SETTLE_TURNS; i++)
        event_base_loop(base, ONE_TURN);
}

/* e got exactly want[0..len). */
static void check_got(end *e, const void *want, size_t len)
{
    assert_int_equal(evbuffer_get_length(e->got), len);
    assert_memory_equal(evbuffer_pullup(e->got, -1), want, len);
}

/* A distinct small message (number i) into m, written by e's peer; returns its length. */
static size_t send_msg(end *e, char *m, int i)
{
    int n = snprintf(m, MSG_MAX, "socket %d:", i);
    for (int k = 0; k <= i % 17; k++)
        m[n++] = (char)('a' + (i + k) % 26);
    assert_int_equal(write(e->peer, m, (size_t)n), n);
    return (size_t)n;
}

/* A buffer of len pattern bytes in several chains; want gets a flat copy. */
static struct evbuffer *pattern(size_t len, size_t offset, unsigned char **want)
{
    struct evbuffer *b = evbuffer_new();
    unsigned char *w = malloc(len);

    assert_non_null(b);
    assert_non_null(w);
    for (size_t i = 0; i < len; i++)
        w[i] = (unsigned char)((i + offset) * 131u >> 3);
    for (size_t at = 0; at < len; at += PIECE_LEN)
        assert_int_equal(evbuffer_add(b, w + at, len - at < PIECE_LEN ? len - at : PIECE_LEN), 0);
    *want = w;
    return b;
}

/* Read from e's peer, turning the loop meanwhile, until len bytes came; they must be want. */
static void receive_all(struct event_base *base, end *e, const unsigned char *want, size_t len)
{
    unsigned char *got = malloc(len + READ_CHUNK);
    size_t have = 0;
    int turns = 0;

    assert_non_null(got);
    while (have < len && turns++ < LOOP_TURNS_MAX) {
        ssize_t n = read(e->peer, got + have, READ_CHUNK);
        if (n > 0) {
            have += (size_t)n;
            continue;
        }
        assert_true(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
        event_base_loop(base, ONE_TURN);
    }
    assert_int_equal(have, len);
    assert_memory_equal(got, want, len);
    assert_int_equal(px_sock_pending(e->sk), 0);
    free(got);
}

/* ---- reads ---- */

static void init_answers(void **st)
{
    struct event_base *base = event_base_new();

    (void)st;
    assert_non_null(base);
    assert_int_equal(px_sock_batch_init(base, 0), 0);
    px_sock_batch_free();
    event_base_free(base);
    base = loop_open(1);                        /* asserts 1, or skips without io_uring */
    loop_close(base);
}

/* How many of e[0..n) had their read callback. */
static int delivered(const end *e, int n)
{
    int done = 0;
    for (int i = 0; i < n; i++)
        done += e[i].reads > 0;
    return done;
}

/* n sockets whose peers each wrote a distinct message (kick: also px_sock_read each, so all
 * n are processed in the first turn however many epoll reports); each gets its own bytes
 * once; returns the most read callbacks that shared one px_now instant (one scope). */
static int read_many(int use_ring, int n, int kick)
{
    struct event_base *base = loop_open(use_ring);
    end e[SOCKS_MANY];
    char want[SOCKS_MANY][MSG_MAX];
    size_t len[SOCKS_MANY];
    int i, j, done, most = 0;

    assert_true(n <= SOCKS_MANY);
    for (i = 0; i < n; i++) {
        end_open(&e[i], base, 0);
        len[i] = send_msg(&e[i], want[i], i);
    }
    for (i = 0; kick && i < n; i++)
        px_sock_read(e[i].sk, 1);
    TURN_UNTIL(base, (done = delivered(e, n)) == n);
    settle(base);
    for (i = 0; i < n; i++) {
        int same = 0;
        assert_int_equal(e[i].reads, 1);
        check_got(&e[i], want[i], len[i]);
        assert_int_equal(e[i].eofs + e[i].errors, 0);
        for (j = 0; j < n; j++)
            same += e[j].when == e[i].when;
        if (same > most)
            most = same;
    }
    for (i = 0; i < n; i++)
        end_close(&e[i]);
    loop_close(base);
    return most;
}

static void reads_of_one_turn_go_in_one_batch(void **st)
{
    (void)st;
    assert_int_equal(read_many(1, SOCKS_FEW, 0), SOCKS_FEW);
}

static void reads_past_a_full_batch_take_the_plain_path(void **st)
{
    (void)st;
    assert_int_equal(read_many(1, SOCKS_MANY, 1), PX_BATCH_MAX);
}

static void large_message_arrives_whole(void **st)
{
    struct event_base *base = loop_open(1);
    unsigned char *want;
    struct evbuffer *b = pattern(LARGE_LEN, 11, &want);
    int turns = 0;
    end e;

    (void)st;
    end_open(&e, base, 0);
    while (evbuffer_get_length(e.got) < LARGE_LEN && turns++ < LOOP_TURNS_MAX) {
        if (evbuffer_get_length(b) > 0)         /* what the peer's socket takes now */
            assert_true(evbuffer_write(b, e.peer) >= 0 || errno == EAGAIN);
        event_base_loop(base, ONE_TURN);
    }
    check_got(&e, want, LARGE_LEN);
    assert_int_equal(e.first_len, SLOT_LEN);    /* the batched read filled its slot ... */
    assert_true(e.max_len > SLOT_LEN);          /* ... and big reads took the rest */
    assert_int_equal(e.eofs + e.errors, 0);
    end_close(&e);
    loop_close(base);
    evbuffer_free(b);
    free(want);
}

static void exactly_one_slot_then_more(void **st)
{
    struct event_base *base = loop_open(1);
    unsigned char *want;
    struct evbuffer *b = pattern(SLOT_LEN, 5, &want);
    char m[MSG_MAX];
    size_t n;
    end e;

    (void)st;
    end_open(&e, base, 0);
    assert_int_equal(evbuffer_write(b, e.peer), SLOT_LEN);
    TURN_UNTIL(base, e.reads == 1);
    settle(base);                               /* the big read that follows finds nothing */
    assert_int_equal(e.reads, 1);
    check_got(&e, want, SLOT_LEN);
    for (int i = 2; i <= 3; i++) {              /* later messages: their edges are not lost */
        evbuffer_drain(e.got, evbuffer_get_length(e.got));
        n = send_msg(&e, m, i);
        TURN_UNTIL(base, e.reads == i);
        check_got(&e, m, n);
    }
    assert_int_equal(e.eofs + e.errors, 0);
    end_close(&e);
    loop_close(base);
    evbuffer_free(b);
    free(want);
}

/* An ordinary event's callback: shut the peer's writing side (arg: the peer's fd). */
static void shut_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    assert_int_equal(shutdown(*(int *)arg, SHUT_WR), 0);
}

static void eof_is_reported_once(void **st)
{
    struct event_base *base = loop_open(1);
    char m[MSG_MAX];
    size_t n;
    struct event *x;
    end e, z;

    (void)st;
    end_open(&e, base, 0);                      /* a message, then the FIN */
    n = send_msg(&e, m, 7);
    assert_int_equal(shutdown(e.peer, SHUT_WR), 0);
    TURN_UNTIL(base, e.eofs > 0);
    settle(base);
    check_got(&e, m, n);
    assert_int_equal(e.eofs, 1);
    assert_int_equal(e.errors, 0);
    /* the FIN comes after the socket was queued, before the turn's batch: the batched recv
     * says 0, within that one turn */
    end_open(&z, base, 0);
    x = event_new(base, -1, 0, shut_cb, &z.peer);
    assert_non_null(x);
    px_sock_read(z.sk, 1);                      /* z's callback first: it queues z ... */
    event_active(x, EV_READ, 1);                /* ... then the FIN, then batch_run */
    event_base_loop(base, ONE_TURN);
    assert_int_equal(z.eofs, 1);
    settle(base);                               /* the FIN's own edge reports nothing more */
    assert_int_equal(z.eofs, 1);
    assert_int_equal(z.reads + z.errors, 0);
    event_free(x);
    end_close(&z);
    end_close(&e);
    loop_close(base);
}

/* ---- sockets freed while queued ---- */

static void freed_by_a_callback_of_the_same_batch(void **st)
{
    struct event_base *base = loop_open(1);
    char m[MSG_MAX];
    end a, b;

    (void)st;
    end_open(&a, base, 0);
    end_open(&b, base, 0);
    a.victim = &b;                              /* whichever is delivered first frees the other */
    b.victim = &a;
    send_msg(&a, m, 1);
    send_msg(&b, m, 2);
    TURN_UNTIL(base, a.reads + b.reads > 0);
    settle(base);
    assert_int_equal(a.reads + b.reads, 1);
    assert_true(a.freed != b.freed);
    assert_int_equal((a.freed ? a : b).reads, 0);
    assert_int_equal(a.eofs + a.errors + b.eofs + b.errors, 0);
    end_close(&a);
    end_close(&b);
    loop_close(base);
}

/* Two fresh ends whose first events are consumed, each tied to the other — by hush, or by
 * poke when poke (whichever of the two acts first acts on the other). */
static void two_linked_ends(struct event_base *base, end *a, end *b, int poke)
{
    end_open(a, base, 0);
    end_open(b, base, 0);
    settle(base);
    if (poke) {
        a->poke = b;
        b->poke = a;
    } else {
        a->hush = b;
        b->hush = a;
    }
}

/* A batch read whose socket had its reading turned off by an earlier callback of the same
 * batch: no read callback then (as the plain path, which would not have read); the bytes are
 * handed over once reading is on again. */
static void reading_off_in_the_batch_holds_the_callback(void **st)
{
    struct event_base *base = loop_open(1);
    char m[2][MSG_MAX];
    size_t len[2];
    end a, b;

    (void)st;
    two_linked_ends(base, &a, &b, 0);
    len[0] = send_msg(&a, m[0], 3);
    len[1] = send_msg(&b, m[1], 4);
    TURN_UNTIL(base, a.reads + b.reads > 0);
    settle(base);
    assert_int_equal(a.reads + b.reads, 1);     /* the hushed one was not called back */
    end *quiet = a.reads ? &b : &a;
    px_sock_read(quiet->sk, 1);
    TURN_UNTIL(base, quiet->reads == 1);
    check_got(&a, m[0], len[0]);
    check_got(&b, m[1], len[1]);
    end_close(&a);
    end_close(&b);
    loop_close(base);
}

/* Two sockets' sends in one submit, and the first one's writecb writes to the second and
 * flushes it the plain way: the second's batched bytes were already drained from its output,
 * so nothing goes out twice. */
static void writecb_writing_to_another_socket_of_the_submit(void **st)
{
    struct event_base *base = loop_open(1);
    static const char first[] = "first", second[] = "second", third[] = "third";
    end a, b;

    (void)st;
    two_linked_ends(base, &a, &b, 1);
    a.poke_bytes = b.poke_bytes = third;
    assert_int_equal(evbuffer_add(a.sk->out, first, strlen(first)), 0);
    assert_int_equal(evbuffer_add(b.sk->out, second, strlen(second)), 0);
    px_sock_flush_later(a.sk);
    px_sock_flush_later(b.sk);
    TURN_UNTIL(base, px_sock_pending(a.sk) == 0 && px_sock_pending(b.sk) == 0);
    settle(base);
    char got[64];
    ssize_t na = read(a.peer, got, sizeof got), nb;
    assert_true(na > 0);
    int a_poked = na == (ssize_t)(strlen(first) + strlen(third));
    assert_true(na == (ssize_t)strlen(first) || a_poked);
    assert_memory_equal(got, first, strlen(first));
    if (a_poked)
        assert_memory_equal(got + strlen(first), third, strlen(third));
    nb = read(b.peer, got, sizeof got);
    assert_int_equal(nb, (ssize_t)(strlen(second) + (a_poked ? 0 : strlen(third))));
    assert_memory_equal(got, second, strlen(second));
    if (!a_poked)
        assert_memory_equal(got + strlen(second), third, strlen(third));
    end_close(&a);
    end_close(&b);
    loop_close(base);
}

static void break_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    event_base_loopbreak(arg);
}

/* e queued for the turn's read, and the loop stopped before batch_run (a callback after e's
 * breaks the loop).  how: 0 free e, turn on; 1 free e, then px_sock_batch_free; 2 only
 * px_sock_batch_free, then free e (its reference was given back). */
static void queued_case(int how)
{
    struct event_base *base = loop_open(1);
    struct event *x = event_new(base, -1, 0, break_cb, base);
    char m[MSG_MAX], c;
    ssize_t r;
    end e;

    assert_non_null(x);
    end_open(&e, base, 0);
    send_msg(&e, m, 3);
    px_sock_read(e.sk, 1);
    event_active(x, EV_READ, 1);
    event_base_loop(base, ONE_TURN);
    assert_int_equal(e.sk->queued, 1);
    assert_int_equal(e.sk->in_cb, 1);
    if (how == 2) {
        px_sock_batch_free();
        assert_int_equal(e.sk->queued, 0);
        assert_int_equal(e.sk->in_cb, 0);
    } else {
        px_sock_free(e.sk);                     /* outside any callback */
        e.freed = 1;
        r = read(e.peer, &c, 1);                /* closed at once */
        assert_true(r == 0 || (r < 0 && errno == ECONNRESET));
        if (how == 1)
            px_sock_batch_free();               /* releases, and so frees, e */
        else
            settle(base);                       /* batch_run skips e, then frees it */
    }
    assert_int_equal(e.reads + e.eofs + e.errors, 0);
    event_free(x);
    end_close(&e);
    loop_close(base);
}

static void freed_while_queued(void **st)
{
    (void)st;
    queued_case(0);
    queued_case(1);
    queued_case(2);
}

/* ---- sends ---- */

/* send_ref of a len-byte buffer: batched up to PX_BATCH_SEND_MAX bytes (waits for the turn's
 * end), sent at once beyond (its scoring then overlaps the upstream's reading); put: the
 * buffer is given back right after the call. */
static void send_ref_case(int use_ring, size_t len, int sndbuf, int put)
{
    struct event_base *base = loop_open(use_ring);
    unsigned char *want;
    struct evbuffer *b = pattern(len, len % 97, &want);
    end e;

    end_open(&e, base, sndbuf);
    settle(base);
    px_sock_send_ref(e.sk, b);
    if (use_ring && len <= PX_BATCH_SEND_MAX)
        assert_int_equal(px_sock_pending(e.sk), len);    /* all of it waits for the turn's end */
    else if (len > PX_BATCH_SEND_MAX)
        assert_true(px_sock_pending(e.sk) < len);        /* a big one starts at once */
    else if (len <= SMALL_LEN)
        assert_int_equal(px_sock_pending(e.sk), 0);      /* sent at once */
    assert_int_equal(evbuffer_get_length(b), len);
    if (put) {
        px_buf_put(b);                          /* the output still holds its chains */
        b = NULL;
    }
    receive_all(base, &e, want, len);
    if (b) {
        assert_memory_equal(evbuffer_pullup(b, -1), want, len);   /* untouched by the sending */
        px_sock_send_ref(e.sk, b);              /* and can be sent again */
        receive_all(base, &e, want, len);
        evbuffer_free(b);
    }
    assert_int_equal(e.errors, 0);
    end_close(&e);
    loop_close(base);
    free(want);
}

/* Sends of several sockets in one turn go through the ring together (one operation alone
 * takes a plain sendmsg): each peer gets its own bytes. */
static void sends_of_one_turn_go_together(void **st)
{
    struct event_base *base = loop_open(1);
    unsigned char *want[SOCKS_FEW];
    struct evbuffer *b[SOCKS_FEW];
    end e[SOCKS_FEW];
    int i;

    (void)st;
    for (i = 0; i < SOCKS_FEW; i++) {
        end_open(&e[i], base, 0);
        b[i] = pattern(SMALL_LEN + (size_t)i, (size_t)i * 13, &want[i]);
    }
    settle(base);
    for (i = 0; i < SOCKS_FEW; i++) {
        px_sock_send_ref(e[i].sk, b[i]);
        assert_int_equal(px_sock_pending(e[i].sk), SMALL_LEN + (size_t)i);
    }
    event_base_loop(base, ONE_TURN);            /* the batch: all of them in one submit */
    for (i = 0; i < SOCKS_FEW; i++) {
        assert_int_equal(px_sock_pending(e[i].sk), 0);
        receive_all(base, &e[i], want[i], SMALL_LEN + (size_t)i);
        end_close(&e[i]);
        evbuffer_free(b[i]);
        free(want[i]);
    }
    loop_close(base);
}

static void send_ref_waits_for_the_turns_end(void **st)
{
    (void)st;
    send_ref_case(1, SMALL_LEN, 0, 0);
    send_ref_case(1, BIG_LEN, SNDBUF_BYTES, 0);
    send_ref_case(1, SMALL_LEN, 0, 1);
    send_ref_case(1, BIG_LEN, SNDBUF_BYTES, 1);
}

/* What flush_later_case does around the send. */
enum { KEEP, TRIM, TRIM_ENSURE, WRITE_EVENT_FIRST, PLAIN_FLUSH_FIRST, MORE_IN_WRITECB };

/* Queue e->to_send's bytes with px_sock_flush_later (also an ordinary event's callback). */
static void queue_send_cb(evutil_socket_t fd, short what, void *arg)
{
    end *e = arg;
    (void)fd, (void)what;
    assert_int_equal(evbuffer_add_buffer(e->sk->out, e->to_send), 0);
    px_sock_flush_later(e->sk);
}

/* flush_later of SMALL_LEN bytes: pending until the turn's end (batched), writecb once when
 * out; how: KEEP; TRIM (px_sock_trim while queued: done once sent); TRIM_ENSURE (then
 * px_sock_ensure: cancelled); WRITE_EVENT_FIRST (queued by an earlier callback of the turn,
 * and the socket's own event, with EV_WRITE, comes before batch_run: epoll reports EPOLLOUT
 * with the EPOLLIN of new input); PLAIN_FLUSH_FIRST (a px_sock_flush sends the bytes before
 * batch_run: writecb is still owed, once, as the plain path would owe it on a partial write);
 * MORE_IN_WRITECB (as WRITE_EVENT_FIRST, and that writecb queues SMALL_LEN more bytes while
 * the socket is still in the send queue: they go out, and writecb runs again for them). */
static void flush_later_case(int use_ring, int how)
{
    struct event_base *base = loop_open(use_ring);
    unsigned char *want, *want2, *both = malloc(2 * SMALL_LEN);
    struct evbuffer *b = pattern(SMALL_LEN, 9, &want), *b2 = pattern(SMALL_LEN, 4, &want2);
    struct event *x = NULL;
    int writes;
    end e;

    end_open(&e, base, 0);
    settle(base);
    e.to_send = b;
    assert_non_null(both);
    memcpy(both, want, SMALL_LEN);
    memcpy(both + SMALL_LEN, want2, SMALL_LEN);
    if (how == MORE_IN_WRITECB)
        e.more = b2;
    if (how == WRITE_EVENT_FIRST || how == MORE_IN_WRITECB) {
        x = event_new(base, -1, 0, queue_send_cb, &e);
        assert_non_null(x);
        assert_int_equal(write(e.peer, "r", 1), 1);  /* e's event comes in this turn's epoll */
        event_active(x, EV_READ, 1);                /* before it: the send is queued */
        event_base_loop(base, ONE_TURN);
    } else {
        queue_send_cb(-1, 0, &e);
        assert_int_equal(px_sock_pending(e.sk), use_ring ? SMALL_LEN : 0);
        if (how == PLAIN_FLUSH_FIRST) {
            px_sock_flush(e.sk);
            assert_int_equal(px_sock_pending(e.sk), 0);
        }
        if (how == TRIM || how == TRIM_ENSURE)
            px_sock_trim(e.sk);
        if (how == TRIM_ENSURE)
            assert_int_equal(px_sock_ensure(e.sk), 0);
        assert_int_equal(e.writes, 0);
    }
    receive_all(base, &e, how == MORE_IN_WRITECB ? both : want,
                how == MORE_IN_WRITECB ? 2 * SMALL_LEN : SMALL_LEN);
    settle(base);
    writes = e.writes;                          /* checked last: a failure leaks nothing */
    if (how == TRIM) {
        assert_null(e.sk->in);
        assert_null(e.sk->out);
    } else {
        assert_non_null(e.sk->in);
        assert_non_null(e.sk->out);
    }
    if (x) {
        check_got(&e, "r", 1);
        event_free(x);
    }
    end_close(&e);
    loop_close(base);
    evbuffer_free(b);
    evbuffer_free(b2);
    free(want);
    free(want2);
    free(both);
    /* once the batched send is out (twice with more bytes queued in it); plain: none */
    assert_int_equal(writes, how == MORE_IN_WRITECB ? 2 : use_ring);
}

static void flush_later_waits_for_the_turns_end(void **st)
{
    (void)st;
    flush_later_case(1, KEEP);
    flush_later_case(1, TRIM);
    flush_later_case(1, TRIM_ENSURE);
}

static void writecb_once_when_others_send_first(void **st)
{
    (void)st;
    flush_later_case(1, WRITE_EVENT_FIRST);
    flush_later_case(1, PLAIN_FLUSH_FIRST);
    flush_later_case(1, MORE_IN_WRITECB);
}

/* n sockets (1 or 2) readable in one turn, each readcb relaying its bytes to a socket of its
 * own with flush_later: a batch's only read sends at once (nothing to batch it with, and the
 * callback's later work stays off the latency); with two reads the sends wait for the turn's
 * end and go together.  Every relayed message arrives. */
static void relay_case(int n)
{
    struct event_base *base = loop_open(1);
    end from[2], to[2];
    char want[2][MSG_MAX];
    size_t len[2];
    int i;

    for (i = 0; i < n; i++) {
        end_open(&from[i], base, 0);
        end_open(&to[i], base, 0);
        from[i].relay = &to[i];
    }
    settle(base);
    for (i = 0; i < n; i++)
        len[i] = send_msg(&from[i], want[i], i);
    TURN_UNTIL(base, delivered(from, n) == n);
    for (i = 0; i < n; i++) {
        assert_int_equal(from[i].relay_pending, n == 1 ? 0 : len[i]);
        receive_all(base, &to[i], (const unsigned char *)want[i], len[i]);
        check_got(&from[i], want[i], len[i]);
    }
    for (i = 0; i < n; i++) {
        end_close(&from[i]);
        end_close(&to[i]);
    }
    loop_close(base);
}

static void a_lone_reads_sends_go_at_once(void **st)
{
    (void)st;
    relay_case(1);
    relay_case(2);
}

/* ---- batching off ---- */

static void batching_off_is_the_plain_path(void **st)
{
    (void)st;
    send_ref_case(0, SMALL_LEN, 0, 0);
    send_ref_case(0, BIG_LEN, SNDBUF_BYTES, 1);
    flush_later_case(0, KEEP);
    assert_int_equal(read_many(0, SOCKS_FEW, 0), 1);    /* each read in its own scope */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(init_answers),
        cmocka_unit_test(reads_of_one_turn_go_in_one_batch),
        cmocka_unit_test(reads_past_a_full_batch_take_the_plain_path),
        cmocka_unit_test(large_message_arrives_whole),
        cmocka_unit_test(exactly_one_slot_then_more),
        cmocka_unit_test(eof_is_reported_once),
        cmocka_unit_test(freed_by_a_callback_of_the_same_batch),
        cmocka_unit_test(freed_while_queued),
        cmocka_unit_test(reading_off_in_the_batch_holds_the_callback),
        cmocka_unit_test(writecb_writing_to_another_socket_of_the_submit),
        cmocka_unit_test(send_ref_waits_for_the_turns_end),
        cmocka_unit_test(sends_of_one_turn_go_together),
        cmocka_unit_test(flush_later_waits_for_the_turns_end),
        cmocka_unit_test(writecb_once_when_others_send_first),
        cmocka_unit_test(a_lone_reads_sends_go_at_once),
        cmocka_unit_test(batching_off_is_the_plain_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
