/*
 * inventory: every XML-RPC method the proxy has seen, and how it went.
 *
 * The migration backlog. A team strangling a monolith needs to know which
 * methods clients really call (the monolith's own list is full of dead
 * ones), how often, how slowly, how often they fail, and who serves them
 * today; the methods called most that the legacy still serves are what to
 * strangle next. `GET /methods` and `strangler methods` show it.
 *
 * Each worker records into a shard of its own (inventory_shard), so the
 * request path takes only its own worker's lock, never contended but by a
 * reader; a reader merges the shards by method name. A method's latency
 * goes into a log-linear histogram (16 sub-buckets per power of two, so a
 * quantile is within about 3 % of the true value) small enough to keep per
 * method.
 *
 * Method names come from clients, so the table is bounded: beyond
 * max_methods distinct names per shard, calls of new names are only
 * counted as untracked. Memory is about 2 KB per method per worker.
 */
#ifndef STRANGLER_PROXY_INVENTORY_H
#define STRANGLER_PROXY_INVENTORY_H

#include <stddef.h>
#include <stdint.h>

/* Longer method names are not tracked (counted as untracked). */
#define INVENTORY_NAME_MAX 255

struct inventory;
struct inventory_shard;

/* What became of one call, as the inventory keeps it. */
struct inventory_call {
    const char *method; /* not NUL-terminated */
    size_t method_len;
    const char *route; /* the route that took it, NULL for none; must outlive the process's
                        * inventory (route names from metrics.h's registry do) */
    int answered;      /* an upstream answered (with or without a fault) */
    int fault;
    int error;    /* no answer: upstream error or timeout, or refused by the proxy */
    int new_side; /* answered by a new service */
    uint64_t duration_us;
    uint64_t bytes_in, bytes_out;
    int64_t at_us; /* wall clock */
};

/* An inventory for `nshards` workers, each tracking up to max_methods
 * names. Free with inventory_free(), after every worker stopped. */
struct inventory *inventory_new(unsigned nshards, size_t max_methods, int64_t now_us);
void inventory_free(struct inventory *inv);

/* Worker i's shard (i < nshards). */
struct inventory_shard *inventory_shard(struct inventory *inv, unsigned i);

/* Changes the bound (a reload); names already tracked stay. */
void inventory_set_max_methods(struct inventory *inv, size_t max_methods);

/* Records a call. Called by the shard's worker only. */
void inventory_record(struct inventory_shard *s, const struct inventory_call *c);

/* One method, merged over the shards. */
struct inventory_method {
    char *method; /* NUL-terminated */
    const char *route;
    uint64_t calls, faults, errors, new_calls, legacy_calls;
    uint64_t bytes_in, bytes_out;
    int64_t first_seen_us, last_seen_us;
    double p50_ms, p99_ms, max_ms;
};

struct inventory_report {
    struct inventory_method *methods; /* by calls, most first; ties by name */
    size_t nmethods;
    size_t tracked;           /* methods tracked, listed or not (a limit) */
    uint64_t untracked_calls; /* calls of names beyond max_methods */
    /* Every call, tracked or not: the share a migration has strangled
     * must not depend on which names made it into the table. */
    uint64_t calls, new_calls, legacy_calls;
    int64_t since_us; /* when counting began */
    size_t max_methods;
};

/*
 * Merges the shards into r: every method, or the `limit` most called.
 * Figures are gathered under each shard's lock without copying a
 * histogram; quantiles are then computed for the listed methods only, one
 * short lock at a time, so a report costs a worker little however large
 * the table. Any thread. Dispose with inventory_report_dispose().
 */
void inventory_report_top(struct inventory *inv, size_t limit, struct inventory_report *r);
void inventory_report(struct inventory *inv, struct inventory_report *r);
void inventory_report_dispose(struct inventory_report *r);

/*
 * The histogram, exposed for its tests: the bucket of a duration, and the
 * value a bucket stands for (its midpoint), in microseconds.
 */
#define INVENTORY_BUCKETS 464
unsigned inventory_bucket_of(uint64_t us);
double inventory_bucket_value(unsigned bucket);

#endif
