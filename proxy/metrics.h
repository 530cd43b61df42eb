/*
 * metrics: the figures the process keeps about its own traffic.
 *
 * A route's counters must outlive the configuration snapshot that names the
 * route: a flip or a reload builds a new snapshot every time, and a
 * migration team watching `GET /routes` expects stock-read's request count
 * to carry on across a flip, not to start again at zero. So counters live
 * in one process-wide registry keyed by name, and each snapshot's routes
 * point into it (config.c looks them up when it builds a snapshot):
 *   route_counters   per route: requests, faults, dark-launch figures
 *   target_counters  per route and the upstream that answered (a canary
 *                    route has two): outcomes and a latency histogram,
 *                    what `strangler_requests_total` and
 *                    `strangler_request_duration_seconds` report
 *   upstream_counters per upstream: failures by kind, and the faults
 *                    answered through its adapter by code
 *   process figures  reloads and flips
 *
 * The registry is the process's, created on first use and released by
 * metrics_shutdown(). Entries are never removed while the process runs (a
 * route that comes back keeps its figures; Prometheus counters must not go
 * back). Names come from routes.conf, so the set stays small; fault codes
 * come from services and are capped (METRICS_MAX_FAULT_CODES).
 *
 * Threads: lookups take a lock (when a snapshot is built, and on the rare
 * fault path); counters are relaxed atomics that any thread may bump or
 * read.
 */
#ifndef STRANGLER_PROXY_METRICS_H
#define STRANGLER_PROXY_METRICS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* A rollback guard's window is this many slices of its length / 10. */
#define GUARD_BUCKETS 10

struct route_counters {
    const char *name;              /* the route's, owned by the registry */
    atomic_uint_fast64_t requests; /* calls and requests the route took */
    atomic_uint_fast64_t faults;   /* answered with a fault, where the proxy read the answer */
    atomic_uint_fast64_t errors;   /* no answer from the upstream: refused, timed out, cut */
    atomic_uint_fast64_t events;   /* events recorded for the route's calls */

    /* Dark launching (config.h, enum route_mode). */
    atomic_uint_fast64_t shadow_sent;       /* copies sent to the candidate */
    atomic_uint_fast64_t shadow_matches;    /* its answer equal to the primary's */
    atomic_uint_fast64_t shadow_mismatches; /* different (a strangler.shadow.mismatch event) */
    atomic_uint_fast64_t shadow_errors;     /* no usable answer from it, or none to compare */
    atomic_uint_fast64_t shadow_dropped;    /* not sent: too many shadows in flight */
    atomic_uint_fast64_t shadow_latency_us; /* sum over the answered copies */
    atomic_uint_fast64_t canary_new;        /* calls a canary sent to its new side */
    atomic_uint_fast64_t canary_rest;       /* calls it sent to the other */
    atomic_uint_fast64_t fallbacks;         /* calls sent again to a fallback's backup */
    atomic_uint_fast64_t rollbacks;         /* times the guard sent the route back */

    /* The rollback guard's window (guard.c; guarded by its lock). */
    struct guard_window {
        uint64_t epoch[GUARD_BUCKETS]; /* which bucket-long slice of time each holds */
        uint32_t calls[GUARD_BUCKETS], bad[GUARD_BUCKETS];
        int tripped; /* reported, not yet rolled back */
    } guard;
};

/*
 * What became of one call or request, as strangler_requests_total labels
 * it. A multicall's calls each have their own.
 */
enum metrics_outcome {
    METRICS_OUTCOME_OK = 0,         /* answered, no fault (any 1xx-3xx for plain HTTP) */
    METRICS_OUTCOME_FAULT,          /* answered with an XML-RPC fault */
    METRICS_OUTCOME_CLIENT_ERROR,   /* the upstream answered 4xx */
    METRICS_OUTCOME_SERVER_ERROR,   /* the upstream answered 5xx */
    METRICS_OUTCOME_UPSTREAM_ERROR, /* no usable answer: refused, cut, not HTTP, too large */
    METRICS_OUTCOME_TIMEOUT,        /* no answer (or connection) in time */
    METRICS_OUTCOME_REFUSED,        /* the proxy refused it: unreadable call, spool full, limits */
    METRICS_OUTCOME_NO_ROUTE,       /* no route takes it */
    METRICS_OUTCOME_CLIENT_CLOSED,  /* the client left before its answer was written */
    METRICS_OUTCOMES
};

/* The outcome's label value, e.g. "upstream_error". */
const char *metrics_outcome_name(enum metrics_outcome o);

/* The finite buckets of the latency histograms, in microseconds; the last,
 * +Inf, is implicit. From half a millisecond (a proxy hop on loopback) to
 * ten seconds (past any sane upstream timeout). */
#define METRICS_LATENCY_BUCKETS 14
extern const uint64_t metrics_latency_bounds_us[METRICS_LATENCY_BUCKETS];

/* Calls a route sent to one upstream, and what became of them. */
struct target_counters {
    const char *route;    /* "" for calls no route took; owned by the registry */
    const char *upstream; /* "" when none was asked */
    int new_side;         /* the upstream is a new service (config.h, upstream_def.role) */
    atomic_uint_fast64_t outcomes[METRICS_OUTCOMES];
    atomic_uint_fast64_t latency[METRICS_LATENCY_BUCKETS + 1]; /* per bucket, not cumulative */
    atomic_uint_fast64_t latency_sum_us;
};

/* How many distinct fault codes each new service is counted by; later
 * codes are counted as "other", so a service cannot grow the registry. */
#define METRICS_MAX_FAULT_CODES 64

/* Why an upstream gave no answer, as strangler_upstream_errors_total
 * labels it. */
enum metrics_upstream_error {
    METRICS_UPSTREAM_CONNECT = 0,     /* refused, unreachable */
    METRICS_UPSTREAM_CONNECT_TIMEOUT, /* no connection in time */
    METRICS_UPSTREAM_TIMEOUT,         /* no answer in time */
    METRICS_UPSTREAM_CLOSED,          /* closed before the answer was complete */
    METRICS_UPSTREAM_PROTOCOL,        /* not HTTP/1.1 */
    METRICS_UPSTREAM_TOO_LARGE,       /* beyond max_body_size */
    METRICS_UPSTREAM_ERRORS
};

/* The label value of a kind, e.g. "connect_timeout". */
const char *metrics_upstream_error_name(enum metrics_upstream_error e);

/* One upstream's failures, and the faults answered through its adapter.
 * Errors are lock-free; fault codes are found under the upstream's own
 * lock (a short scan of at most METRICS_MAX_FAULT_CODES), so no two
 * upstreams, and no scrape, wait on each other there. */
struct upstream_counters {
    const char *name; /* owned by the registry */
    atomic_uint_fast64_t errors[METRICS_UPSTREAM_ERRORS];
    pthread_mutex_t fault_lock;
    size_t ncodes;
    struct metrics_fault_code {
        int64_t code;
        uint64_t count;
    } codes[METRICS_MAX_FAULT_CODES];
    uint64_t other_faults; /* codes beyond the first METRICS_MAX_FAULT_CODES */
};

/* Process-wide figures of configuration changes. */
struct process_counters {
    atomic_uint_fast64_t reloads;
    atomic_uint_fast64_t reloads_failed;
    atomic_uint_fast64_t flips;
    atomic_uint_fast64_t flips_refused;
    atomic_int_fast64_t last_change_us; /* wall clock of the last table installed */
    atomic_int_fast64_t started_us;     /* when metrics_mark_start() was called */
};

/* The counters of route `name`, created zeroed on first use. The pointer is
 * valid until metrics_shutdown(). Thread-safe. */
struct route_counters *metrics_route_counters(const char *name);

/* The counters of route `route`'s calls to upstream `upstream` (either may
 * be "" for none), created on first use; new_side is refreshed each time.
 * Valid until metrics_shutdown(). Thread-safe. */
struct target_counters *metrics_target_counters(const char *route, const char *upstream,
                                                int new_side);

/* Counts one call on t. */
void metrics_observe(struct target_counters *t, enum metrics_outcome outcome, uint64_t duration_us);

/* The counters of upstream `name`, created zeroed on first use. Valid
 * until metrics_shutdown(). Thread-safe. */
struct upstream_counters *metrics_upstream_counters(const char *name);

/* Counts a failure to get an answer from the upstream. */
static inline void metrics_count_upstream_error(struct upstream_counters *u,
                                                enum metrics_upstream_error e)
{
    atomic_fetch_add_explicit(&u->errors[e], 1, memory_order_relaxed);
}

/* Counts a fault answered for a call through the upstream's adapter. */
void metrics_count_adapter_fault(struct upstream_counters *u, int64_t code);

/* Calls an upstream answered (with or without a fault, any HTTP status)
 * since the start, and how many of them new services answered: the share
 * of the traffic a migration has strangled. */
void metrics_answered_calls(uint64_t *new_side, uint64_t *all);

/* The process-wide figures. */
struct process_counters *metrics_process(void);

/* Records the process's start time (for strangler_start_time_seconds). */
void metrics_mark_start(int64_t now_us);

/*
 * Calls fn for every entry of a kind, in the order they were created (so a
 * scrape lists them the same way each time). The registry's lock is held:
 * fn must not look anything up.
 */
void metrics_foreach_target(void (*fn)(void *arg, struct target_counters *t), void *arg);
void metrics_foreach_upstream(void (*fn)(void *arg, struct upstream_counters *u), void *arg);

/* Copies u's fault counts (codes[], ncodes, other) under its lock. */
void metrics_read_faults(struct upstream_counters *u, struct metrics_fault_code *codes,
                         size_t *ncodes, uint64_t *other);

/* Adds one to a counter. */
static inline void metrics_bump(atomic_uint_fast64_t *counter)
{
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

/* Reads a counter. */
static inline uint64_t metrics_read(atomic_uint_fast64_t *counter)
{
    return atomic_load_explicit(counter, memory_order_relaxed);
}

/* Frees the registry. Call once, when no thread uses counters any more. */
void metrics_shutdown(void);

#endif
