/* px_sock.c — a socket with input/output evbuffers on ONE edge-triggered event, registered once
 * for the life of the connection.
 *
 * Why not bufferevents: a bufferevent arms its write event when output appears and writes on
 * the next loop turn, then disarms it — two epoll_ctl calls and a loop turn of latency per
 * response, and it asks FIONREAD before every read.  Here writes go out at once (px_sock_flush)
 * and only the remainder waits for writability; reads go straight into reserved evbuffer space.
 * The callback shape stays bufferevent-like: read, write (output drained to the low mark) and
 * event (connected / EOF / error). */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <event2/dns.h>
#include <liburing.h>
#include "proxy/px_int.h"

#define PX_READ_BUDGET 4                /* reads per wake-up before yielding */
#define PX_READ_SMALL 960               /* small read: with libevent's chain header, a 1 KiB
                                           malloc (glibc's tcache serves up to 1032 bytes) */

static void sock_cb(evutil_socket_t fd, short what, void *arg);
static int batch_take(px_sock *s);
static int batch_take_send(px_sock *s);

/* px_sock_send_ref hands libevent's iovecs to sendmsg as they are */
_Static_assert(sizeof(struct evbuffer_iovec) == sizeof(struct iovec) &&
               offsetof(struct evbuffer_iovec, iov_base) == offsetof(struct iovec, iov_base) &&
               offsetof(struct evbuffer_iovec, iov_len) == offsetof(struct iovec, iov_len),
               "struct evbuffer_iovec is not struct iovec");

/* Empty evbuffers kept for reuse.  Why: an idle keep-alive connection gives its two buffers
 * back (px_sock_trim) and takes two again for its next request, and every exchange builds its
 * upstream request in one; without a pool that is three calloc + free pairs per exchange.
 * Static: the proxy has one loop, on one thread. */
static struct evbuffer *buf_pool[PX_BUF_POOL_MAX];
static int buf_pool_n;

/* An empty evbuffer, from the pool when it has one; NULL when out of memory. */
struct evbuffer *px_buf_get(void)
{
    return buf_pool_n > 0 ? buf_pool[--buf_pool_n] : evbuffer_new();
}

/* Give b back (emptied here); freed when the pool is full.  b may be NULL. */
void px_buf_put(struct evbuffer *b)
{
    if (!b)
        return;
    if (!PX_POOLING || buf_pool_n == PX_BUF_POOL_MAX) {
        evbuffer_free(b);
        return;
    }
    evbuffer_drain(b, evbuffer_get_length(b));
    buf_pool[buf_pool_n++] = b;
}

/* Free every pooled buffer (at exit, so leak checkers see a clean heap). */
void px_buf_pool_free(void)
{
    while (buf_pool_n > 0)
        evbuffer_free(buf_pool[--buf_pool_n]);
}

/* Socket objects, from chunks (why: see px_slab.c). */
static px_slab sock_slab = PX_SLAB_INIT(px_sock);

/* Free the socket slab's chunks (at exit, after every socket was freed). */
void px_sock_slab_free(void)
{
    px_slab_free(&sock_slab);
}

/* A socket object for fd (an accepted connection), or for a later px_sock_connect (fd -1);
 * NULL when out of memory (fd is then still the caller's). */
px_sock *px_sock_new(struct event_base *base, evutil_socket_t fd)
{
    px_sock *s = px_slab_get(&sock_slab);

    if (!s)
        return NULL;
    s->base = base;
    s->fd = fd;
    if (event_assign(&s->ev, base, fd,
                     fd >= 0 ? EV_READ | EV_WRITE | EV_CLOSED | EV_ET | EV_PERSIST : 0, sock_cb,
                     s) < 0) {
        px_slab_put(&sock_slab, s);             /* nothing else taken yet */
        return NULL;
    }
    s->in = px_buf_get();
    s->out = px_buf_get();
    if (!s->in || !s->out) {
        s->fd = -1;                             /* the caller still owns fd on failure */
        px_sock_free(s);
        return NULL;
    }
    s->reading = 1;
    s->readable = 1;                            /* the request may already be waiting */
    s->writable = fd >= 0;                      /* a fresh connection takes bytes */
    if (fd >= 0) {
        evutil_make_socket_nonblocking(fd);
        event_add(&s->ev, NULL);
    }
    return s;
}

void px_sock_setcb(px_sock *s, px_sock_cb readcb, px_sock_cb writecb, px_sock_event_cb eventcb,
                   void *arg)
{
    s->readcb = readcb;
    s->writecb = writecb;
    s->eventcb = eventcb;
    s->arg = arg;
}

/* Report a failure from the loop, never from inside the caller's stack. */
static void fail_later(px_sock *s, int err)
{
    s->failed = 1;
    s->err = err;
    event_active(&s->ev, EV_WRITE, 1);
}

/* Create the buffers an idle connection gave back (px_sock_trim); -1 when out of memory. */
int px_sock_ensure(px_sock *s)
{
    s->trim_after_send = 0;                     /* in use again */
    if (!s->in)
        s->in = px_buf_get();
    if (!s->out)
        s->out = px_buf_get();
    return s->in && s->out ? 0 : -1;
}

/* Give back both buffers while the connection idles (they are ~300 bytes a connection, most
 * of an idle keep-alive connection's cost); only when both are empty. */
void px_sock_trim(px_sock *s)
{
    if (s->send_queued)
        s->trim_after_send = 1;                 /* once the batched send is out */
    if (!s->in || !s->out || evbuffer_get_length(s->in) || evbuffer_get_length(s->out))
        return;
    px_buf_put(s->in);
    px_buf_put(s->out);
    s->in = s->out = NULL;
}

/* Bytes waiting to be sent. */
size_t px_sock_pending(const px_sock *s)
{
    return s->out ? evbuffer_get_length(s->out) : 0;
}

/* A write just failed with errno: wait for writability, or report the error later. */
static void write_failed(px_sock *s)
{
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        s->writable = 0;                        /* the edge-triggered event says when */
    else if (errno != EINTR)
        fail_later(s, errno);
}

/* Write what the kernel takes now.  Errors are reported later through the event callback. */
void px_sock_flush(px_sock *s)
{
    while (s->out && s->fd >= 0 && s->writable && !s->connecting && !s->failed &&
           evbuffer_get_length(s->out) > 0) {
        if (evbuffer_write(s->out, s->fd) < 0) {
            write_failed(s);
            return;
        }
    }
}

/* Send the output at the end of this loop turn, with the turn's other sends and reads in one
 * system call; now when batching is off.  Until then px_sock_pending counts the bytes; once
 * they are out and the output is at or below wlow, writecb runs, as after a wait for
 * writability. */
void px_sock_flush_later(px_sock *s)
{
    if (!s->out || evbuffer_get_length(s->out) == 0 || !batch_take_send(s))
        px_sock_flush(s);
}

/* Send b's bytes, leaving b as it is (it is kept for a retry): what the kernel takes now goes
 * straight from b's chains; the rest waits in the output by reference, so b must outlive it
 * (libevent holds b's chains until then).  Errors are reported later, as with px_sock_flush.
 * Why not just a reference and a flush: on an idle connection that is a reference chain, an
 * output walk and a drain per request for bytes that nearly always go out whole. */
void px_sock_send_ref(px_sock *s, struct evbuffer *b)
{
    struct evbuffer_iovec v[PX_SEND_IOV];
    ssize_t sent = 0;
    size_t len = evbuffer_get_length(b);
    int n;

    if (len == 0)
        return;
    if (px_sock_ensure(s) < 0) {
        fail_later(s, ENOMEM);
        return;
    }
    if (len <= PX_BATCH_SEND_MAX && evbuffer_get_length(s->out) == 0 && batch_take_send(s)) {
        /* sent from the output at the turn's end, with the turn's other sends and reads */
        if (evbuffer_add_buffer_reference(s->out, b) < 0)
            fail_later(s, ENOMEM);
        return;
    }
    if (s->fd >= 0 && s->writable && !s->connecting && !s->failed &&
        evbuffer_get_length(s->out) == 0 &&
        (n = evbuffer_peek(b, (ev_ssize_t)len, NULL, v, PX_SEND_IOV)) <= PX_SEND_IOV) {
        /* why len, not -1: with -1 evbuffer_peek stops counting at PX_SEND_IOV pieces; with
         * len it says how many b really has, and a longer b takes the path below */
        struct msghdr m;
        memset(&m, 0, sizeof m);
        m.msg_iov = (struct iovec *)v;          /* evbuffer_iovec is laid out as struct iovec */
        m.msg_iovlen = (size_t)n;
        sent = sendmsg(s->fd, &m, MSG_NOSIGNAL);
        if (sent == (ssize_t)len)
            return;
        if (sent < 0) {
            write_failed(s);
            sent = 0;
        }
    }
    if (evbuffer_add_buffer_reference(s->out, b) < 0) {    /* no memory, or chains it cannot share */
        fail_later(s, ENOMEM);
        return;
    }
    if (sent > 0)
        evbuffer_drain(s->out, (size_t)sent);
    px_sock_flush(s);
}

/* Reading on (1) or off (0).  Turning it on processes what is already waiting, from the loop. */
void px_sock_read(px_sock *s, int on)
{
    s->reading = on != 0;
    if (on && (s->readable || s->undelivered) && s->fd >= 0)
        event_active(&s->ev, EV_READ, 1);
}

/* Read into s->in until the socket is drained or the budget is spent.  Returns bytes read;
 * sets s->eof at end of stream and fail_later on errors. */
static size_t sock_read(px_sock *s)
{
    size_t total = 0;
    int i;

    if (px_sock_ensure(s) < 0) {
        fail_later(s, ENOMEM);
        return 0;
    }
    for (i = 0; i < PX_READ_BUDGET; i++) {
        struct evbuffer_iovec v;
        ssize_t n;

        size_t want = s->big_reads ? PX_READ_CHUNK : PX_READ_SMALL;
        if (evbuffer_reserve_space(s->in, (ev_ssize_t)want, &v, 1) < 1)
            break;
        n = recv(s->fd, v.iov_base, v.iov_len, 0);
        if (n > 0) {
            size_t space = v.iov_len;
            v.iov_len = (size_t)n;
            evbuffer_commit_space(s->in, &v, 1);
            total += (size_t)n;
            /* why two sizes: libevent rounds a 16 KiB reservation up to a 32 KiB chain, a
             * malloc that misses glibc's per-thread cache on every read; most reads (requests,
             * answers, stream chunks) fit a small chain that hits it.  A read that fills its
             * space switches to big reads until a small read comes again. */
            s->big_reads = (size_t)n >= want;
            if ((size_t)n < space && !s->rdhup) {
                /* why: a short read drained the socket; with edge triggering any later byte
                 * raises a new edge, so no recv() just to hear EAGAIN.  A FIN queued behind
                 * the data raises no new edge, but EPOLLRDHUP (EV_CLOSED) told us about it, and
                 * then we read on until recv() says 0. */
                s->readable = 0;
                return total;
            }
            continue;
        }
        evbuffer_commit_space(s->in, &v, 0);
        if (n == 0) {
            s->eof = 1;
            s->readable = 0;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            s->readable = 0;
        } else if (errno != EINTR) {
            s->readable = 0;
            fail_later(s, errno);
        }
        return total;
    }
    event_active(&s->ev, EV_READ, 1);           /* more may be waiting: yield, then go on */
    return total;
}

static void sock_cb(evutil_socket_t fd, short what, void *arg)
{
    px_sock *s = arg;
    int err = 0;
    socklen_t len = sizeof err;
    (void)fd;

    s->in_cb++;
    px_now_scope(1);
    if (s->failed && s->eventcb && !s->reported) {
        /* why read first: a peer may answer before it read all we send (an early 400 or 413),
         * then reset; its answer waits in the kernel and must reach readcb before the error */
        if (s->reading && !s->connecting && !s->eof && sock_read(s) > 0 && s->readcb) {
            s->readcb(s, s->arg);
            if (s->dead)
                goto out;
        }
        if (!s->reported) {
            s->reported = 1;
            errno = s->err;
            s->eventcb(s, PX_SOCK_ERROR, s->arg);
        }
        goto out;
    }
    if (what & EV_WRITE) {
        s->writable = 1;
        if (s->connecting) {
            if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                err = errno;
            if (err == EINPROGRESS)
                goto out;
            s->connecting = 0;
            if (err) {
                s->failed = s->reported = 1;
                s->err = err;
                if (s->eventcb)
                    s->eventcb(s, PX_SOCK_ERROR, s->arg);
                goto out;
            }
            if (s->eventcb)
                s->eventcb(s, PX_SOCK_CONNECTED, s->arg);
            if (s->dead)
                goto out;
        }
        if (px_sock_pending(s) > 0) {
            px_sock_flush(s);
            if (!s->failed && px_sock_pending(s) <= s->wlow && s->writecb) {
                s->wcb_owed = 0;
                s->writecb(s, s->arg);
            }
            if (s->dead)
                goto out;
        }
    }
    if (s->undelivered && s->reading && s->readcb) {   /* held back by a batch (see there) */
        s->undelivered = 0;
        s->readcb(s, s->arg);
        if (s->dead)
            goto out;
    }
    if (what & EV_CLOSED)
        s->rdhup = 1;
    if (what & (EV_READ | EV_CLOSED))
        s->readable = 1;
    if (s->readable && s->reading && !s->connecting && !s->eof && !s->failed) {
        if (batch_take(s))
            goto out;                           /* read with the others at the turn's end */
        size_t n = sock_read(s);
        if (n > 0 && s->readcb) {
            s->readcb(s, s->arg);
            if (s->dead)
                goto out;
        }
        if (s->eof && s->eventcb && !s->reported) {
            s->reported = 1;
            s->eventcb(s, PX_SOCK_EOF, s->arg);
        }
    }
out:
    px_now_scope(0);
    if (--s->in_cb == 0 && s->dead) {
        s->dead = 0;
        px_sock_free(s);
    }
}

/* ---- system calls batched over one loop turn ----
 *
 * Why: on a virtual machine where a system call costs a microsecond (this project's 2-core
 * bench VM: 1.0 us for getppid), the recv() and send() of each small message are a sizeable
 * part of a request's CPU.  So small reads, the upstream request's send and the relayed
 * answer's are not done where they are asked for: the socket joins a batch, and after the loop turn's other callbacks one
 * io_uring_enter does all of them.  Each operation is marked MSG_DONTWAIT, which io_uring
 * completes within that same call (bytes or -EAGAIN, never a wait), so the kernel touches the
 * batch's buffers only inside it.  Reads land in the batch's own space, not in reserved
 * evbuffer space, because the callbacks that follow may drain another socket's input; a send
 * goes out of the socket's own output, where the bytes wait meanwhile.  Big reads (a buffer
 * was filled last time) and sockets whose peer sent FIN keep the plain path; without io_uring
 * (old kernel, seccomp, --io-uring off) every read and send does. */

static struct {
    struct event *ev;                   /* runs batch_run once the turn's callbacks are done */
    struct io_uring ring;               /* the submissions */
    int have_ring;                      /* ring set up and working */
    int ring_open;                      /* ring set up (to be closed at exit, working or not) */
    int armed;                          /* ev is active */
    int running;                        /* inside batch_run (its last step takes new sends) */
    int lone;                           /* delivering a batch's only read: its callback's
                                           sends go out at once (see batch_run) */
    int n;                              /* sockets queued to read */
    px_sock *q[PX_BATCH_MAX];           /* them, each holding an in_cb reference */
    int ns;                             /* sockets queued to send */
    px_sock *sq[PX_BATCH_MAX];          /* them, each holding an in_cb reference */
    char space[PX_BATCH_MAX][PX_READ_SMALL]; /* where the reads land */
    struct msghdr msg[PX_BATCH_MAX];    /* the sends */
    struct evbuffer_iovec iov[PX_BATCH_MAX][PX_SEND_IOV]; /* their pieces */
} batch;

#define BATCH_SKIPPED INT_MIN           /* result of an operation not submitted */
#define BATCH_SEND_TAG (1ull << 32)     /* user_data bit of a send (the low bits: its slot) */

/* Make sure batch_run comes at the end of this turn. */
static void batch_arm(void)
{
    if (!batch.armed) {
        batch.armed = 1;
        event_active(batch.ev, EV_READ, 1);
    }
}

/* Queue s for the end-of-turn read; 1 when queued (now or before), 0: read it now. */
static int batch_take(px_sock *s)
{
    if (s->queued)
        return 1;
    if (!batch.have_ring || s->big_reads || s->rdhup || batch.n == PX_BATCH_MAX)
        return 0;
    batch_arm();
    batch.q[batch.n++] = s;
    s->queued = 1;
    s->in_cb++;                                 /* why: a px_sock_free meanwhile defers */
    return 1;
}

/* Queue s's output for the end-of-turn send; 0 when it cannot be (send it now). */
static int batch_take_send(px_sock *s)
{
    if (s->send_queued) {
        s->wcb_owed = 1;                        /* more bytes: "drained" is owed again */
        return 1;
    }
    if (!batch.have_ring || batch.lone || batch.ns == PX_BATCH_MAX || s->fd < 0 ||
        !s->writable || s->connecting || s->failed)
        return 0;
    if (!batch.running)
        batch_arm();
    batch.sq[batch.ns++] = s;
    s->send_queued = 1;
    s->wcb_owed = 1;
    s->in_cb++;
    return 1;
}

/* Drop the in_cb reference a queue held on s, freeing s if it died meanwhile. */
static void batch_release(px_sock *s)
{
    if (--s->in_cb == 0 && s->dead) {
        s->dead = 0;
        px_sock_free(s);
    }
}

/* Whether queued s is still worth reading. */
static int read_wanted(const px_sock *s)
{
    return !s->dead && s->fd >= 0 && s->reading && !s->failed && !s->eof;
}

/* Whether queued s still has something to send now. */
static int send_wanted(const px_sock *s)
{
    return !s->dead && s->fd >= 0 && !s->failed && s->writable && s->out &&
           evbuffer_get_length(s->out) > 0;
}

/* Submit the sends sq[0..ns) and reads q[0..n), and wait until every one submitted has
 * completed (at once: MSG_DONTWAIT); results in sres[] and res[] (BATCH_SKIPPED: not done).
 * When the ring fails, it is given up and the caller's plain path does what is left. */
static void batch_submit(px_sock **sq, int ns, int *sres, px_sock **q, int n, int *res)
{
    int want = 0, seen = 0, sent, i, one_send = -1, one_recv = -1;

    for (i = 0; i < ns; i++) {
        px_sock *s = sq[i];
        int pieces;
        sres[i] = BATCH_SKIPPED;
        if (!send_wanted(s))
            continue;
        pieces = evbuffer_peek(s->out, -1, NULL, batch.iov[i], PX_SEND_IOV);
        if (pieces > PX_SEND_IOV)
            pieces = PX_SEND_IOV;               /* the rest goes out by px_sock_flush */
        memset(&batch.msg[i], 0, sizeof batch.msg[i]);
        batch.msg[i].msg_iov = (struct iovec *)batch.iov[i];   /* laid out alike (see top) */
        batch.msg[i].msg_iovlen = (size_t)pieces;
        one_send = i;
        want++;
    }
    for (i = 0; i < n; i++) {
        res[i] = BATCH_SKIPPED;
        if (read_wanted(q[i])) {
            one_recv = i;
            want++;
        }
    }
    if (want == 0)
        return;
    if (want == 1) {
        /* why: one operation gains nothing from the ring and costs a little more through it
         * (a lone stream's every hop comes this way) */
        ssize_t r = one_send >= 0
            ? sendmsg(sq[one_send]->fd, &batch.msg[one_send], MSG_DONTWAIT | MSG_NOSIGNAL)
            : recv(q[one_recv]->fd, batch.space[one_recv], PX_READ_SMALL, MSG_DONTWAIT);
        *(one_send >= 0 ? &sres[one_send] : &res[one_recv]) = r >= 0 ? (int)r : -errno;
        return;
    }
    for (i = 0; i < ns; i++) {
        struct io_uring_sqe *sqe;
        if (!send_wanted(sq[i]) || !(sqe = io_uring_get_sqe(&batch.ring)))
            continue;                           /* no sqe cannot happen: the ring holds two batches */
        io_uring_prep_sendmsg(sqe, sq[i]->fd, &batch.msg[i], MSG_DONTWAIT | MSG_NOSIGNAL);
        io_uring_sqe_set_data64(sqe, BATCH_SEND_TAG | (uint64_t)i);
    }
    for (i = 0; i < n; i++) {
        struct io_uring_sqe *sqe;
        if (!read_wanted(q[i]) || !(sqe = io_uring_get_sqe(&batch.ring)))
            continue;
        io_uring_prep_recv(sqe, q[i]->fd, batch.space[i], PX_READ_SMALL, MSG_DONTWAIT);
        io_uring_sqe_set_data64(sqe, (uint64_t)i);
    }
    sent = io_uring_submit(&batch.ring);
    if (sent < 0)
        sent = 0;
    while (seen < sent) {                       /* what was sent has completed (MSG_DONTWAIT) */
        struct io_uring_cqe *cqe;
        unsigned head, got = 0;
        io_uring_for_each_cqe(&batch.ring, head, cqe) {
            uint64_t d = cqe->user_data;
            if (d & BATCH_SEND_TAG)
                sres[d & ~BATCH_SEND_TAG] = cqe->res;
            else
                res[d] = cqe->res;
            got++;
        }
        io_uring_cq_advance(&batch.ring, got);
        seen += (int)got;
        if (seen < sent) {                      /* only a safety net: nothing should wait */
            int w = io_uring_wait_cqe(&batch.ring, &cqe);
            if (w < 0 && w != -EINTR)
                break;
        }
    }
    for (i = 0; i < ns; i++)                    /* an operation this kernel lacks: the plain */
        if (sres[i] == -EINVAL || sres[i] == -EOPNOTSUPP) {   /* path does it (see init) */
            sres[i] = BATCH_SKIPPED;
            seen = -1;
        }
    for (i = 0; i < n; i++)
        if (res[i] == -EINVAL || res[i] == -EOPNOTSUPP) {
            res[i] = BATCH_SKIPPED;
            seen = -1;
        }
    if (seen < want) {
        px_log(PX_LOG_WARN, "io_uring failed; plain system calls from now on", NULL);
        batch.have_ring = 0;                    /* anything unsent stays unsent */
    }
}

/* After s's batched send returned r (bytes or -errno): take the bytes out of the output,
 * and send any rest the plain way (which waits for writability when the kernel is full). */
static void batch_sent(px_sock *s, int r)
{
    if (s->dead)
        return;
    if (r > 0) {
        evbuffer_drain(s->out, (size_t)r);
    } else if (r != BATCH_SKIPPED) {
        errno = -r;
        write_failed(s);
    }
    px_sock_flush(s);                           /* the rest, if any: the plain path */
}

/* Then, once every socket of the submit has had its output drained (why: a callback may
 * write to another of them, whose sent bytes must be gone from its output first), call
 * back: writecb when the output is at or below wlow, and a trim asked meanwhile. */
static void batch_sent_cb(px_sock *s)
{
    if (s->dead || s->failed || px_sock_pending(s) > s->wlow)
        return;                                 /* the error, or writability, calls back */
    /* why owed: a write event may have sent the bytes first, and sock_cb called back then */
    if (s->writecb && s->wcb_owed) {
        s->wcb_owed = 0;
        s->writecb(s, s->arg);
    }
    if (!s->dead && s->trim_after_send) {
        s->trim_after_send = 0;
        px_sock_trim(s);
    }
}

/* The sends of one submit: drain them all, then call back, then let go of them. */
static void batch_sends_done(px_sock **sq, int ns, const int *sres)
{
    int i;
    for (i = 0; i < ns; i++)
        batch_sent(sq[i], sres[i]);
    for (i = 0; i < ns; i++)
        batch_sent_cb(sq[i]);
    for (i = 0; i < ns; i++)
        batch_release(sq[i]);
}

/* Hand s the r bytes (or -errno) its batched read got, then call back as sock_cb would. */
static void batch_deliver(px_sock *s, const char *p, int r)
{
    if (r == BATCH_SKIPPED) {
        if (read_wanted(s) && s->readable)      /* the ring gave out: read the plain way */
            event_active(&s->ev, EV_READ, 1);
        return;
    }
    if (s->dead)
        return;
    if (r > 0) {
        if (px_sock_ensure(s) < 0 || evbuffer_add(s->in, p, (size_t)r) < 0) {
            fail_later(s, ENOMEM);
            return;
        }
        if (r == PX_READ_SMALL) {               /* filled: more may wait, read it big */
            s->big_reads = 1;
            event_active(&s->ev, EV_READ, 1);
        } else {
            s->readable = 0;                    /* drained (see sock_read) */
        }
        if (!s->reading) {
            /* an earlier callback of this batch turned reading off after the recv: no read
             * callback until it is turned on again (px_sock_read, then sock_cb) */
            s->undelivered = 1;
            return;
        }
        s->undelivered = 0;
        if (s->readcb)
            s->readcb(s, s->arg);
        return;
    }
    if (r == 0) {
        s->eof = 1;
        s->readable = 0;
        if (s->eventcb && !s->reported) {
            s->reported = 1;
            s->eventcb(s, PX_SOCK_EOF, s->arg);
        }
    } else if (r == -EAGAIN || r == -EWOULDBLOCK) {
        s->readable = 0;
    } else if (r != -EINTR) {
        s->readable = 0;
        fail_later(s, -r);
    }
}

/* Take the send queue into sq (returns its length). */
static int take_sends(px_sock **sq)
{
    int ns = batch.ns, i;
    memcpy(sq, batch.sq, (size_t)ns * sizeof *sq);
    batch.ns = 0;
    for (i = 0; i < ns; i++)
        sq[i]->send_queued = 0;
    return ns;
}

/* The end of a loop turn: the queued sends and reads in one system call, then the reads'
 * callbacks, then, in a second call, the sends those callbacks asked for. */
static void batch_run(evutil_socket_t fd, short what, void *arg)
{
    px_sock *q[PX_BATCH_MAX], *sq[PX_BATCH_MAX];
    int res[PX_BATCH_MAX], sres[PX_BATCH_MAX], n = batch.n, ns, i;
    (void)fd;
    (void)what;
    (void)arg;

    batch.armed = 0;
    batch.running = 1;
    memcpy(q, batch.q, (size_t)n * sizeof *q); /* why copies: callbacks queue the next batch */
    batch.n = 0;
    for (i = 0; i < n; i++)
        q[i]->queued = 0;
    ns = take_sends(sq);
    px_now_scope(1);
    batch_submit(sq, ns, sres, q, n, res);
    batch_sends_done(sq, ns, sres);
    /* why a lone read's sends go out at once: there is no other callback to batch them with,
     * and the callback's work after its send (scoring a request, counting an answer's tokens)
     * stays off that request's latency, as on the plain path */
    batch.lone = n == 1;
    for (i = 0; i < n; i++) {
        batch_deliver(q[i], batch.space[i], res[i]);
        batch_release(q[i]);
    }
    batch.lone = 0;
    batch.running = 0;
    ns = take_sends(sq);
    if (ns > 0) {
        batch_submit(sq, ns, sres, NULL, 0, NULL);
        batch_sends_done(sq, ns, sres);
    }
    px_now_scope(0);
}

/* Set up batching on base: with io_uring when use_ring and the kernel allows it.  Returns 1
 * when batched, 0 when every read and send is a plain system call, -1 out of memory. */
int px_sock_batch_init(struct event_base *base, int use_ring)
{
    const char *why;
    int rc, ops;

    batch.n = batch.ns = batch.armed = batch.running = batch.lone = 0;
    batch.have_ring = batch.ring_open = 0;
    batch.ev = event_new(base, -1, 0, batch_run, NULL);
    if (!batch.ev)
        return -1;
    if (!use_ring)
        return 0;
    /* why these flags: one thread submits, and nothing needs the kernel to interrupt it */
    rc = io_uring_queue_init(2 * PX_BATCH_MAX, &batch.ring,
                             IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN);
    if (rc == -EINVAL)                          /* a kernel before 6.0 */
        rc = io_uring_queue_init(2 * PX_BATCH_MAX, &batch.ring, 0);
    if (rc < 0) {
        /* e.g. EPERM: Docker 25+ and containerd 2.0+ refuse io_uring in their default seccomp
         * profiles */
        why = strerror(-rc);
        goto unavailable;
    }
    /* why probe: kernels 5.1-5.5 have io_uring but not IORING_OP_RECV, and answer -EINVAL */
    struct io_uring_probe *probe = io_uring_get_probe_ring(&batch.ring);
    ops = probe && io_uring_opcode_supported(probe, IORING_OP_RECV) &&
          io_uring_opcode_supported(probe, IORING_OP_SENDMSG);
    if (probe)
        io_uring_free_probe(probe);
    if (!ops) {
        io_uring_queue_exit(&batch.ring);
        why = "no recv/sendmsg operations in this kernel's io_uring";
        goto unavailable;
    }
    batch.have_ring = batch.ring_open = 1;
    return 1;
unavailable:
    px_log(PX_LOG_INFO, "io_uring unavailable: plain system calls", "\"error\":\"%s\"", why);
    return 0;
}

/* Undo px_sock_batch_init, releasing sockets still queued (at exit, after px_close_all). */
void px_sock_batch_free(void)
{
    int i, n = batch.n, ns = batch.ns;

    batch.n = batch.ns = 0;
    for (i = 0; i < n; i++) {
        batch.q[i]->queued = 0;
        batch_release(batch.q[i]);
    }
    for (i = 0; i < ns; i++) {
        batch.sq[i]->send_queued = 0;
        batch_release(batch.sq[i]);
    }
    if (batch.ev) {
        event_free(batch.ev);
        batch.ev = NULL;
    }
    if (batch.ring_open)
        io_uring_queue_exit(&batch.ring);
    batch.have_ring = batch.ring_open = batch.armed = 0;
}

/* Connect to sa (non-blocking); the outcome arrives as PX_SOCK_CONNECTED or PX_SOCK_ERROR.
 * Output added meanwhile is sent once connected. */
int px_sock_connect(px_sock *s, const struct sockaddr *sa, int salen)
{
    int one = 1;

    s->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0)
        return -1;
    setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    event_del(&s->ev);
    event_assign(&s->ev, s->base, s->fd, EV_READ | EV_WRITE | EV_CLOSED | EV_ET | EV_PERSIST, sock_cb, s);
    s->connecting = 1;
    s->readable = 0;
    if (connect(s->fd, sa, (socklen_t)salen) < 0 && errno != EINPROGRESS) {
        fail_later(s, errno);
        return 0;
    }
    event_add(&s->ev, NULL);                    /* writable = connected (or failed) */
    return 0;
}

static void dns_cb(int result, struct evutil_addrinfo *ai, void *arg)
{
    px_sock *s = arg;

    if (result == EVUTIL_EAI_CANCEL)
        return;                                 /* s is being freed */
    s->dnsreq = NULL;
    if (result != 0 || !ai || px_sock_connect(s, ai->ai_addr, (int)ai->ai_addrlen) < 0)
        fail_later(s, EHOSTUNREACH);
    if (ai)
        evutil_freeaddrinfo(ai);
}

/* Resolve host without blocking the loop, then px_sock_connect to its first address. */
int px_sock_connect_name(px_sock *s, struct evdns_base *dns, const char *host, int port)
{
    struct evutil_addrinfo hints;
    char portstr[16];

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    snprintf(portstr, sizeof portstr, "%d", port);
    s->connecting = 1;
    s->dnsreq = evdns_getaddrinfo(dns, host, portstr, &hints, dns_cb, s);
    return 0;
}

/* Close the socket at once (the peer sees it now); the object itself is freed when no
 * callback of its own is running. */
void px_sock_free(px_sock *s)
{
    if (!s)
        return;
    if (s->dnsreq) {
        struct evdns_getaddrinfo_request *r = s->dnsreq;
        s->dnsreq = NULL;
        evdns_getaddrinfo_cancel(r);
    }
    event_del(&s->ev);                          /* also when a deferred free comes back here */
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
    if (s->in_cb > 0) {                         /* inside sock_cb: finish there */
        s->dead = 1;
        s->readcb = s->writecb = NULL;
        s->eventcb = NULL;
        return;
    }
    event_debug_unassign(&s->ev);               /* libevent's debug mode forgets it (else a no-op) */
    px_buf_put(s->in);
    px_buf_put(s->out);
    px_slab_put(&sock_slab, s);
}
