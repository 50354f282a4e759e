/* k8s_hint.c — the hint queue from the loop thread to the controller thread (a lock-free
 * single-producer/single-consumer ring: the loop never blocks and never waits; a full ring
 * drops the hint and says so), and the mode names. */
#include <stdatomic.h>
#include <string.h>
#include "k8s/k8s_internal.h"

/* The ring: head is written only by the consumer, tail only by the producer.  One slot is
 * never used so that head == tail means empty. */
static k8s_hint g_ring[K8S_HINT_RING];
static _Atomic size_t g_head;           /* next slot to read (consumer) */
static _Atomic size_t g_tail;           /* next slot to write (producer) */
static atomic_int g_enabled;            /* 1 while a controller consumes hints */

/* Parse "off", "dry-run", "on", "auto"; -1 when unknown. */
int k8s_mode_parse(const char *s, k8s_mode *out)
{
    static const char *const names[] = {"off", "dry-run", "on", "auto"};
    int i;

    for (i = 0; s && i < 4; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (k8s_mode)i;
            return 0;
        }
    }
    return -1;
}

/* Name of a mode (the inverse of k8s_mode_parse). */
const char *k8s_mode_name(k8s_mode m)
{
    switch (m) {
    case K8S_MODE_OFF: return "off";
    case K8S_MODE_DRY_RUN: return "dry-run";
    case K8S_MODE_ON: return "on";
    case K8S_MODE_AUTO: return "auto";
    }
    return "off";
}

/* Turn the queue on (empty) or off; off makes k8s_hint_post a silent no-op. */
void k8s_hints_enable(int on)
{
    atomic_store(&g_enabled, 0);
    atomic_store(&g_head, 0);
    atomic_store(&g_tail, 0);
    atomic_store(&g_enabled, on ? 1 : 0);
}

/* Producer side (loop thread only).  0 queued or controller off; -1 ring full (dropped). */
int k8s_hint_post(const k8s_hint *h)
{
    size_t tail, next;

    if (!atomic_load_explicit(&g_enabled, memory_order_relaxed))
        return 0;
    tail = atomic_load_explicit(&g_tail, memory_order_relaxed);
    next = (tail + 1) % K8S_HINT_RING;
    if (next == atomic_load_explicit(&g_head, memory_order_acquire))
        return -1;
    g_ring[tail] = *h;
    /* why: release publishes the slot's contents before the consumer can see the new tail */
    atomic_store_explicit(&g_tail, next, memory_order_release);
    return 0;
}

/* Consumer side (controller thread only).  1 and *out filled, or 0 when empty. */
int k8s_hint_take(k8s_hint *out)
{
    size_t head = atomic_load_explicit(&g_head, memory_order_relaxed);

    if (head == atomic_load_explicit(&g_tail, memory_order_acquire))
        return 0;
    *out = g_ring[head];
    atomic_store_explicit(&g_head, (head + 1) % K8S_HINT_RING, memory_order_release);
    return 1;
}
