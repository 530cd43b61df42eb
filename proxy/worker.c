#include "proxy/worker.h"

#include "common/clock.h"
#include "common/log.h"
#include "common/mem.h"
#include "proxy/client.h"
#include "proxy/shadow.h"

#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define ACCEPTS_PER_WAKEUP 64
#define LISTEN_BACKLOG     4096

/* Writes the port the kernel chose back into addr (sa and text). */
static int adopt_bound_port(int fd, struct config_addr *addr)
{
    struct sockaddr_storage bound;
    socklen_t len = sizeof(bound);
    if (getsockname(fd, (struct sockaddr *)&bound, &len) != 0)
        return -1;
    memcpy(&addr->sa, &bound, len);
    addr->len = len;
    free(addr->text);
    addr->text = config_addr_text((const struct sockaddr *)&bound);
    return 0;
}

int worker_bind(struct config_addr *addr, char *err, size_t errlen)
{
    int one = 1;
    int fd = socket(addr->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    /* SO_REUSEPORT must be set before bind (FIELD-NOTES.md): it is what lets
     * every worker bind the same address and the kernel balance between
     * them. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)
        goto fail;
    if (bind(fd, (const struct sockaddr *)&addr->sa, addr->len) != 0)
        goto fail;
    if (listen(fd, LISTEN_BACKLOG) != 0)
        goto fail;
    if (config_addr_port(addr) == 0 && adopt_bound_port(fd, addr) != 0)
        goto fail;
    return fd;
fail:
    snprintf(err, errlen, "listen %s: %s", addr->text, strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

static struct upstream_pool *pool_for(struct worker *w, const struct upstream_def *def)
{
    for (size_t i = 0; i < w->npools; i++) {
        if (upstream_pool_serves(w->pools[i], def))
            return w->pools[i];
    }
    w->pools = mem_realloc(w->pools, (w->npools + 1) * sizeof(*w->pools));
    w->pools[w->npools] = upstream_pool_new(w->base, def);
    return w->pools[w->npools++];
}

static struct worker_config *config_view_new(struct worker *w, struct config *cfg)
{
    struct worker_config *wc = mem_calloc(1, sizeof(*wc));
    wc->cfg = config_ref(cfg);
    wc->pools = mem_calloc(cfg->nupstreams ? cfg->nupstreams : 1, sizeof(*wc->pools));
    for (size_t i = 0; i < cfg->nupstreams; i++)
        wc->pools[i] = pool_for(w, &cfg->upstreams[i]);
    return wc;
}

static void config_view_free(struct worker_config *wc)
{
    config_unref(wc->cfg);
    free(wc->pools);
    free(wc);
}

static void adopt_config(struct worker *w, struct config *cfg)
{
    struct worker_config *old = w->wc;
    w->wc = config_view_new(w, cfg);
    if (old == NULL)
        return;
    old->retired = 1;
    if (old->inflight == 0)
        config_view_free(old);
}

struct worker_config *worker_config_hold(struct worker *w)
{
    w->wc->inflight++;
    return w->wc;
}

struct worker_config *worker_config_retain(struct worker_config *wc)
{
    wc->inflight++;
    return wc;
}

/* splitmix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number
 * generators", 2014): one add and a mixer per number, good enough
 * statistics to split traffic by share, and no state beyond 64 bits. */
uint64_t worker_random(struct worker *w)
{
    uint64_t z = (w->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void worker_config_release(struct worker *w, struct worker_config *wc)
{
    (void)w;
    wc->inflight--;
    if (wc->retired && wc->inflight == 0)
        config_view_free(wc);
}

const char *worker_date_header(struct worker *w, size_t *len)
{
    time_t now = time(NULL);
    if (now != w->date_time) {
        struct tm tm;
        gmtime_r(&now, &tm);
        /* IMF-fixdate (RFC 9110 5.6.7); strftime in the C locale, which the
         * proxy never leaves. */
        w->date_len =
            strftime(w->date, sizeof(w->date), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
        w->date_time = now;
    }
    *len = w->date_len;
    return w->date;
}

static void stop_accepting(struct worker *w)
{
    if (w->accepting) {
        event_del(w->accept_ev);
        w->accepting = 0;
    }
}

static void resume_accepting(struct worker *w)
{
    if (!w->accepting && !w->draining) {
        event_add(w->accept_ev, NULL);
        w->accepting = 1;
    }
}

static void on_accept_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    resume_accepting(arg);
}

/*
 * Out of file descriptors: the pending connection stays in the backlog and
 * the listening socket stays readable, so accepting again at once would spin
 * the loop. Wait a moment (or for a connection to close) instead, and say so
 * once per episode.
 */
static void pause_accepting(struct worker *w)
{
    static const struct timeval retry = {0, 100 * 1000};
    log_warn("worker %u: out of file descriptors (%s); accepting again in 100 ms", w->id,
             strerror(errno));
    stop_accepting(w);
    evtimer_add(w->accept_retry, &retry);
}

static void on_accept(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    (void)what;
    for (int i = 0; i < ACCEPTS_PER_WAKEUP; i++) {
        if (w->nclients >= w->wc->cfg->limits.max_connections) {
            /* Leave the rest in the backlog; accepting resumes when a
             * connection closes. */
            stop_accepting(w);
            return;
        }
        struct sockaddr_storage peer;
        socklen_t len = sizeof(peer);
        int cfd = accept4(fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                pause_accepting(w);
            else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                log_warn("worker %u: accept: %s", w->id, strerror(errno));
            return;
        }
        atomic_fetch_add_explicit(&w->stats.connections, 1, memory_order_relaxed);
        client_accept(w, cfd, (struct sockaddr *)&peer, len);
    }
}

static void on_drain_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    (void)fd;
    (void)what;
    log_warn("worker %u: drain timeout, closing %u connection%s still busy", w->id, w->nclients,
             w->nclients == 1 ? "" : "s");
    while (w->clients != NULL)
        client_close_now(w->clients);
    event_base_loopexit(w->base, NULL);
}

static void begin_drain(struct worker *w)
{
    if (w->draining)
        return;
    w->draining = 1;
    stop_accepting(w);
    evtimer_del(w->accept_retry);
    if (w->listen_fd >= 0) {
        close(w->listen_fd);
        w->listen_fd = -1;
    }
    for (struct client *c = w->clients; c != NULL; c = client_next(c))
        client_drain(c); /* closes idle ones, later: the list stays intact */
    /* Shadow copies answer no client: the drain does not wait for them.
     * Those still running when the last client goes are dropped
     * (worker_join), and no new ones start (shadow_admits). */
    if (w->nclients == 0) {
        event_base_loopexit(w->base, NULL);
        return;
    }
    unsigned ms = w->wc->cfg->limits.drain_timeout_ms;
    struct timeval tv = {ms / 1000, (long)(ms % 1000) * 1000};
    evtimer_add(w->drain_timer, &tv);
}

static void on_notify(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    (void)fd;
    (void)what;
    pthread_mutex_lock(&w->lock);
    struct config *cfg = w->pending_config;
    int drain = w->drain_requested;
    w->pending_config = NULL;
    pthread_mutex_unlock(&w->lock);
    if (cfg != NULL) {
        adopt_config(w, cfg);
        pthread_mutex_lock(&w->lock);
        w->serving = cfg;
        pthread_cond_broadcast(&w->adopted);
        pthread_mutex_unlock(&w->lock);
        config_unref(cfg);
    }
    if (drain)
        begin_drain(w);
}

/* The first block fits a usual call and its answer's bookkeeping. */
#define REQUEST_ARENA_BLOCK 8192

struct arena *worker_take_arena(struct worker *w)
{
    if (w->nspare_arenas > 0)
        return w->spare_arenas[--w->nspare_arenas];
    return arena_new(REQUEST_ARENA_BLOCK);
}

void worker_return_arena(struct worker *w, struct arena *a)
{
    if (!WORKER_KEEPS_SPARES || w->nspare_arenas == WORKER_SPARE_ARENAS) {
        arena_free(a);
        return;
    }
    arena_reset(a);
    w->spare_arenas[w->nspare_arenas++] = a;
}

struct http_request *worker_take_request(struct worker *w)
{
    if (w->nspare_requests > 0)
        return w->spare_requests[--w->nspare_requests];
    return mem_alloc(sizeof(struct http_request));
}

void worker_return_request(struct worker *w, struct http_request *r)
{
    if (r == NULL)
        return;
    if (!WORKER_KEEPS_SPARES || w->nspare_requests == WORKER_SPARE_ARENAS)
        free(r);
    else
        w->spare_requests[w->nspare_requests++] = r;
}

void worker_client_opened(struct worker *w, struct client *c)
{
    client_link(&w->clients, c);
    w->nclients++;
}

void worker_client_closed(struct worker *w, struct client *c)
{
    client_unlink(&w->clients, c);
    w->nclients--;
    if (w->draining) {
        if (w->nclients == 0)
            event_base_loopexit(w->base, NULL);
        return;
    }
    if (w->nclients < w->wc->cfg->limits.max_connections)
        resume_accepting(w);
}

static void arm_access_flush(struct worker *w)
{
    struct timeval tv = {w->access_flush_ms / 1000, (w->access_flush_ms % 1000) * 1000};
    event_add(w->access_flush, &tv);
}

static void on_access_flush(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    (void)fd;
    (void)what;
    accesslog_flush(w->access);
    arm_access_flush(w);
}

static void *thread_main(void *arg)
{
    struct worker *w = arg;
    event_add(w->accept_ev, NULL);
    w->accepting = 1;
    if (w->access_flush != NULL)
        arm_access_flush(w);
    event_base_dispatch(w->base);
    /* The drain ended the loop: what the last requests logged goes out. */
    if (w->access != NULL)
        accesslog_flush(w->access);
    return NULL;
}

int worker_start(struct worker *w, unsigned id, struct config *cfg, int listen_fd,
                 const struct worker_shared *shared, char *err, size_t errlen)
{
    memset(w, 0, sizeof(*w));
    w->id = id;
    w->interceptor = shared->interceptor;
    w->inventory = shared->inventory ? inventory_shard(shared->inventory, id) : NULL;
    w->access_log = shared->access_log;
    w->access_flush_ms = shared->access_flush_ms;
    w->listen_fd = listen_fd;
    pthread_mutex_init(&w->lock, NULL);
    /* Waits for a flip are bounded by a monotonic deadline: a wall-clock
     * step must not stretch them. */
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->adopted, &attr);
    pthread_condattr_destroy(&attr);
    w->serving = cfg;
    /* Workers must not draw the same numbers: the time, the id and the
     * address of the struct differ between them and between runs. */
    w->rng = clock_monotonic_ns() ^ ((uint64_t)id << 48) ^ (uint64_t)(uintptr_t)w;
    w->base = event_base_new();
    if (w->base == NULL) {
        snprintf(err, errlen, "worker %u: cannot create an event loop", id);
        close(w->listen_fd);
        w->listen_fd = -1;
        return -1;
    }
    w->accept_ev = event_new(w->base, w->listen_fd, EV_READ | EV_PERSIST, on_accept, w);
    w->notify_ev = event_new(w->base, -1, 0, on_notify, w);
    w->drain_timer = evtimer_new(w->base, on_drain_deadline, w);
    w->accept_retry = evtimer_new(w->base, on_accept_retry, w);
    if (w->access_log != NULL) {
        w->access = accesslog_writer_new(w->access_log, shared->access_buffer);
        if (shared->access_buffer > 0)
            w->access_flush = evtimer_new(w->base, on_access_flush, w);
    }
    adopt_config(w, cfg);
    if (pthread_create(&w->thread, NULL, thread_main, w) != 0) {
        snprintf(err, errlen, "worker %u: cannot start its thread", id);
        return -1;
    }
    w->started = 1;
    return 0;
}

void worker_set_config(struct worker *w, struct config *cfg)
{
    pthread_mutex_lock(&w->lock);
    if (w->pending_config != NULL)
        config_unref(w->pending_config); /* superseded before it was seen */
    w->pending_config = config_ref(cfg);
    pthread_mutex_unlock(&w->lock);
    event_active(w->notify_ev, EV_READ, 0);
}

int worker_wait_config(struct worker *w, const struct config *cfg, const struct timespec *deadline)
{
    int rc = 0;
    pthread_mutex_lock(&w->lock);
    while (w->started && w->serving != cfg && rc == 0)
        rc = pthread_cond_timedwait(&w->adopted, &w->lock, deadline);
    pthread_mutex_unlock(&w->lock);
    return rc == 0 ? 0 : -1;
}

void worker_drain(struct worker *w)
{
    if (!w->started)
        return;
    pthread_mutex_lock(&w->lock);
    w->drain_requested = 1;
    pthread_mutex_unlock(&w->lock);
    event_active(w->notify_ev, EV_READ, 0);
}

void worker_join(struct worker *w)
{
    if (w->started)
        pthread_join(w->thread, NULL);
    while (w->clients != NULL)
        client_close_now(w->clients);
    /* After the clients (whose requests may still point at shadows) and
     * before the snapshot and the pools the shadows use. */
    shadow_drop_all(w);
    if (w->wc != NULL)
        config_view_free(w->wc);
    config_unref(w->pending_config);
    for (size_t i = 0; i < w->npools; i++)
        upstream_pool_free(w->pools[i]);
    free(w->pools);
    if (w->accept_ev)
        event_free(w->accept_ev);
    if (w->notify_ev)
        event_free(w->notify_ev);
    if (w->drain_timer)
        event_free(w->drain_timer);
    if (w->accept_retry)
        event_free(w->accept_retry);
    if (w->access_flush)
        event_free(w->access_flush);
    while (w->nspare_arenas > 0)
        arena_free(w->spare_arenas[--w->nspare_arenas]);
    while (w->nspare_requests > 0)
        free(w->spare_requests[--w->nspare_requests]);
    /* After the clients, whose last requests are logged as they close. */
    accesslog_writer_free(w->access);
    if (w->listen_fd >= 0)
        close(w->listen_fd);
    if (w->base)
        event_base_free(w->base);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->adopted);
}
