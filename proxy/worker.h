/*
 * worker: one thread, one event loop, its own listening socket.
 *
 * `workers N` starts N of these. Each binds the listen address with
 * SO_REUSEPORT so the kernel spreads connections across them, and each owns
 * everything its connections touch (client connections, upstream pools, a
 * view of the configuration), so the request path takes no locks. Other
 * threads talk to a worker only through worker_set_config() and
 * worker_drain(), which queue a message and wake its loop.
 *
 * Configuration: a worker serves requests from a struct worker_config, the
 * current snapshot plus the worker's upstream pools for it. A request holds
 * the worker_config it started with until it ends, so a reload never
 * changes the rules under a request in flight; a retired worker_config is
 * freed when its last request ends.
 */
#ifndef STRANGLER_PROXY_WORKER_H
#define STRANGLER_PROXY_WORKER_H

#include "interceptors/intercept.h"
#include "proxy/accesslog.h"
#include "proxy/config.h"
#include "proxy/inventory.h"
#include "proxy/upstream.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

struct arena;
struct client;
struct shadow;

/* Reset arenas (and request heads) a worker keeps for its next requests:
 * enough for the requests one worker has in flight under load, few enough
 * to give memory back when it is idle. */
#define WORKER_SPARE_ARENAS 64

/* Under AddressSanitizer nothing is kept: a request's memory must be freed
 * when the request ends, so that a use after its end is reported and not
 * read from the next request's reused arena. */
#if defined(__SANITIZE_ADDRESS__)
#define WORKER_KEEPS_SPARES 0
#else
#define WORKER_KEEPS_SPARES 1
#endif

/* A snapshot as one worker uses it. Worker thread only. */
struct worker_config {
    struct config *cfg;           /* holds one reference */
    struct upstream_pool **pools; /* by upstream index; the pools belong to the worker */
    unsigned inflight;            /* requests started on this snapshot and not ended */
    int retired;                  /* a newer snapshot replaced it */
};

/* Counters a worker keeps; read by other threads (metrics), hence atomic. */
struct worker_stats {
    atomic_ulong connections;
    atomic_ulong requests;
    atomic_ulong upstream_errors;
    atomic_ulong events_recorded;
    atomic_ulong events_skipped;
};

struct worker {
    unsigned id;
    pthread_t thread;
    int started;
    struct event_base *base;
    int listen_fd;
    struct event *accept_ev;
    struct event *notify_ev;
    struct event *drain_timer;
    struct event *accept_retry;   /* accepting again after running out of descriptors */
    struct worker_config *wc;     /* current snapshot */
    struct upstream_pool **pools; /* every pool this worker opened, by address */
    size_t npools;
    struct client *clients; /* open client connections (intrusive list) */
    unsigned nclients;
    int accepting;
    int draining;
    struct interceptor *interceptor;   /* shared and thread-safe; may be NULL */
    struct inventory_shard *inventory; /* this worker's; may be NULL */
    struct accesslog *access_log;      /* shared; NULL: off */
    struct accesslog_writer *access;   /* this worker's buffer into it */
    struct event *access_flush;        /* writes the buffer out every flush_ms */
    unsigned access_flush_ms;
    time_t date_time;
    char date[40]; /* "Date: ..." header line, refreshed each second */
    size_t date_len;
    struct worker_stats stats;
    uint64_t rng; /* worker_random()'s state: splitmix64, seeded per worker */
    /* Shadow copies in flight (shadow.h): the worker owns them, a request
     * only points at the one it started until the primary has answered. */
    struct shadow *shadows;
    unsigned nshadows;
    /* Arenas of finished requests, reset, for the next ones (a stack). */
    struct arena *spare_arenas[WORKER_SPARE_ARENAS];
    unsigned nspare_arenas;
    /* Parsed request heads (3 KB each, for their header arrays), likewise. */
    struct http_request *spare_requests[WORKER_SPARE_ARENAS];
    unsigned nspare_requests;

    /* Inbox, written by other threads under the lock. */
    pthread_mutex_t lock;
    struct config *pending_config;
    int drain_requested;
    /* The snapshot new requests take, as far as other threads know: set by
     * the worker under the lock once it switched, signalled on `adopted`.
     * Compared, never dereferenced. */
    const struct config *serving;
    pthread_cond_t adopted;
};

/*
 * Opens a listening socket on addr with SO_REUSEPORT, one per worker. When
 * addr asks for port 0, the port the kernel picked is written back into
 * addr, so the next worker binds the same one (tests use this). Returns the
 * socket, or -1 with a message in err.
 */
int worker_bind(struct config_addr *addr, char *err, size_t errlen);

/* What the process shares with every worker (borrowed: it outlives them). */
struct worker_shared {
    struct interceptor *interceptor; /* NULL: nothing intercepts */
    struct inventory *inventory;     /* NULL: no method inventory */
    struct accesslog *access_log;    /* NULL: no access log */
    size_t access_buffer;            /* access_log buffer=, per worker */
    unsigned access_flush_ms;        /* access_log flush= */
};

/*
 * Creates the worker's event loop on listen_fd (which it then owns) and
 * starts its thread. Returns 0, or -1 with a message in err.
 */
int worker_start(struct worker *w, unsigned id, struct config *cfg, int listen_fd,
                 const struct worker_shared *shared, char *err, size_t errlen);

/* Hands the worker a new snapshot (it takes its own reference).
 * Thread-safe. */
void worker_set_config(struct worker *w, struct config *cfg);

/* Waits until new requests on the worker take cfg (given to
 * worker_set_config), at most until `deadline` (CLOCK_MONOTONIC): a flip
 * answered after this has reached every request that follows. Returns 0,
 * or -1 at the deadline. Thread-safe; the caller keeps a reference to cfg
 * while it waits. */
int worker_wait_config(struct worker *w, const struct config *cfg, const struct timespec *deadline);

/* Asks the worker to stop accepting, finish the requests in flight (for at
 * most drain_timeout) and end its thread. Thread-safe. */
void worker_drain(struct worker *w);

/* Waits for the thread to end and frees what the worker owns. */
void worker_join(struct worker *w);

/* The snapshot a new request runs on, held until worker_config_release(). */
struct worker_config *worker_config_hold(struct worker *w);
void worker_config_release(struct worker *w, struct worker_config *wc);

/* Takes one more hold on a snapshot someone already holds (a shadow
 * copy that outlives the request it came from keeps the request's
 * snapshot, not the current one). Release with worker_config_release(). */
struct worker_config *worker_config_retain(struct worker_config *wc);

/* A 64-bit pseudo-random number from the worker's own generator
 * (splitmix64): for choosing a share of calls, cheap and lock-free, never
 * for anything secret. Worker thread only. */
uint64_t worker_random(struct worker *w);

/* An arena for a request: a spare one, or a new one. Give it back with
 * worker_return_arena(), which resets it (or frees it when enough are
 * spare). Worker thread only. */
struct arena *worker_take_arena(struct worker *w);
void worker_return_arena(struct worker *w, struct arena *a);

/* The same for a request head's storage (client.c). NULL is a no-op. */
struct http_request *worker_take_request(struct worker *w);
void worker_return_request(struct worker *w, struct http_request *r);

/* The "Date: ...\r\n" header line for responses the proxy writes itself. */
const char *worker_date_header(struct worker *w, size_t *len);

/* Called by the client module as connections come and go. */
void worker_client_opened(struct worker *w, struct client *c);
void worker_client_closed(struct worker *w, struct client *c);

#endif
