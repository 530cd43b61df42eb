/*
 * guard: rollback guards (see guard.h).
 *
 * A window is GUARD_BUCKETS slices of window_ms / GUARD_BUCKETS each; a
 * slice is reused when time comes round to it again, which forgets its old
 * figures. So the rate covers between 9/10 of the window and the whole of
 * it, which is all a guard needs, without keeping one entry per call.
 */
#include "proxy/guard.h"

#include "common/mem.h"
#include "proxy/metrics.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct tripped {
    struct tripped *next;
    char *route;
    uint64_t calls, bad;
};

/* The process's guards: one lock for every window (they are touched only
 * on routes that have a guard, once per call on the new side), and the
 * trips waiting for the main thread. */
static pthread_mutex_t guard_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tripped *pending;
static struct event *wake; /* on the main loop; NULL: nobody listens */
static guard_trip_fn trip_fn;
static void *trip_arg;

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    pthread_mutex_lock(&guard_lock);
    struct tripped *list = pending;
    pending = NULL;
    pthread_mutex_unlock(&guard_lock);
    while (list != NULL) {
        struct tripped *t = list;
        list = t->next;
        trip_fn(trip_arg, t->route, t->calls, t->bad);
        free(t->route);
        free(t);
    }
}

int guard_start(struct event_base *base, guard_trip_fn trip, void *arg)
{
    struct event *ev = event_new(base, -1, 0, on_wake, NULL);
    if (ev == NULL)
        return -1;
    pthread_mutex_lock(&guard_lock);
    trip_fn = trip;
    trip_arg = arg;
    wake = ev;
    pthread_mutex_unlock(&guard_lock);
    return 0;
}

void guard_stop(void)
{
    pthread_mutex_lock(&guard_lock);
    struct event *ev = wake;
    wake = NULL;
    struct tripped *list = pending;
    pending = NULL;
    pthread_mutex_unlock(&guard_lock);
    if (ev != NULL)
        event_free(ev);
    while (list != NULL) {
        struct tripped *t = list;
        list = t->next;
        free(t->route);
        free(t);
    }
}

/* Sums the slices still inside the window. Under guard_lock. */
static void window_sum(const struct guard_window *w, uint64_t epoch, uint64_t *calls, uint64_t *bad)
{
    *calls = *bad = 0;
    for (int i = 0; i < GUARD_BUCKETS; i++) {
        if (epoch - w->epoch[i] >= GUARD_BUCKETS)
            continue;
        *calls += w->calls[i];
        *bad += w->bad[i];
    }
}

void guard_record(const struct route *r, int bad, uint64_t now_ms)
{
    const struct route_guard *g = &r->guard;
    if (!g->enabled)
        return;
    uint64_t slice = g->window_ms / GUARD_BUCKETS > 0 ? g->window_ms / GUARD_BUCKETS : 1;
    uint64_t epoch = now_ms / slice, calls, bads;
    struct guard_window *w = &r->counters->guard;
    int i = (int)(epoch % GUARD_BUCKETS);

    pthread_mutex_lock(&guard_lock);
    if (w->epoch[i] != epoch) {
        w->epoch[i] = epoch;
        w->calls[i] = w->bad[i] = 0;
    }
    w->calls[i]++;
    w->bad[i] += bad != 0;
    window_sum(w, epoch, &calls, &bads);
    if (!w->tripped && calls >= g->min_calls && bads * 10000 > (uint64_t)g->threshold_bp * calls) {
        w->tripped = 1;
        if (wake != NULL) {
            struct tripped *t = mem_calloc(1, sizeof(*t));
            t->route = mem_strdup(r->name);
            t->calls = calls;
            t->bad = bads;
            t->next = pending;
            pending = t;
            event_active(wake, EV_TIMEOUT, 0);
        }
    }
    pthread_mutex_unlock(&guard_lock);
}

void guard_reset(struct route_counters *c)
{
    pthread_mutex_lock(&guard_lock);
    memset(&c->guard, 0, sizeof(c->guard));
    pthread_mutex_unlock(&guard_lock);
}
