/*
 * metrics: the figures the process keeps about its own traffic.
 *
 * A route's counters must outlive the configuration snapshot that names the
 * route: a flip or a reload builds a new snapshot every time, and a
 * migration team watching `GET /routes` expects stock-read's request count
 * to carry on across a flip, not to start again at zero. So counters live
 * in one process-wide registry keyed by route name, and each snapshot's
 * routes point into it (config.c looks them up when it builds a snapshot).
 *
 * The registry is the process's, created on first use and released by
 * metrics_shutdown(). Entries are never removed while the process runs (a
 * route that comes back keeps its figures; the set of names ever used is
 * what an operator wrote, so it stays small).
 *
 * Threads: lookups take a lock (they happen when a snapshot is built, never
 * on the request path); counters are relaxed atomics that any thread may
 * bump or read.
 */
#ifndef STRANGLER_PROXY_METRICS_H
#define STRANGLER_PROXY_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

/* A rollback guard's window is this many slices of its length / 10. */
#define GUARD_BUCKETS 10

struct route_counters {
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

/* The counters of route `name`, created zeroed on first use. The pointer is
 * valid until metrics_shutdown(). Thread-safe. */
struct route_counters *metrics_route_counters(const char *name);

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
