#include "proxy/metrics.h"

#include "common/mem.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const uint64_t metrics_latency_bounds_us[METRICS_LATENCY_BUCKETS] = {
    500,    1000,   2500,   5000,    10000,   25000,   50000,
    100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
};

static const char *const outcome_names[METRICS_OUTCOMES] = {
    "ok",      "fault",   "client_error", "server_error",  "upstream_error",
    "timeout", "refused", "no_route",     "client_closed",
};

const char *metrics_outcome_name(enum metrics_outcome o)
{
    return (unsigned)o < METRICS_OUTCOMES ? outcome_names[o] : "unknown";
}

static const char *const upstream_error_names[METRICS_UPSTREAM_ERRORS] = {
    "connect", "connect_timeout", "timeout", "closed", "protocol", "too_large",
};

const char *metrics_upstream_error_name(enum metrics_upstream_error e)
{
    return (unsigned)e < METRICS_UPSTREAM_ERRORS ? upstream_error_names[e] : "unknown";
}

enum entry_kind { ENTRY_ROUTE, ENTRY_TARGET, ENTRY_UPSTREAM };

/* One named figure. `a` and `b` are its key: the route (and upstream) of
 * route and target counters, the upstream's name. */
struct entry {
    struct entry *next;
    enum entry_kind kind;
    char *a, *b;
    union {
        struct route_counters route;
        struct target_counters target;
        struct upstream_counters upstream;
    } u;
};

/* The process's registry (see the header for why it is global), in the
 * order entries were made. */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct entry *registry, **registry_tail = &registry;
static struct process_counters process;

/* The entry (kind, a, b), made zeroed when there is none. Zeroed memory is
 * a valid state for these lock-free atomics (C11 allows atomic_init to be
 * that), as it is on every platform we build. Lock held. */
static struct entry *find_or_add(enum entry_kind kind, const char *a, const char *b)
{
    for (struct entry *e = registry; e != NULL; e = e->next)
        if (e->kind == kind && strcmp(e->a, a) == 0 && strcmp(e->b, b) == 0)
            return e;
    struct entry *e = mem_calloc(1, sizeof(*e));
    e->kind = kind;
    e->a = mem_strdup(a);
    e->b = mem_strdup(b);
    *registry_tail = e;
    registry_tail = &e->next;
    return e;
}

struct route_counters *metrics_route_counters(const char *name)
{
    pthread_mutex_lock(&registry_lock);
    struct entry *e = find_or_add(ENTRY_ROUTE, name, "");
    e->u.route.name = e->a;
    pthread_mutex_unlock(&registry_lock);
    return &e->u.route;
}

struct target_counters *metrics_target_counters(const char *route, const char *upstream,
                                                int new_side)
{
    pthread_mutex_lock(&registry_lock);
    struct entry *e = find_or_add(ENTRY_TARGET, route, upstream);
    e->u.target.route = e->a;
    e->u.target.upstream = e->b;
    e->u.target.new_side = new_side;
    pthread_mutex_unlock(&registry_lock);
    return &e->u.target;
}

void metrics_observe(struct target_counters *t, enum metrics_outcome outcome, uint64_t duration_us)
{
    size_t bucket = 0;
    while (bucket < METRICS_LATENCY_BUCKETS && duration_us > metrics_latency_bounds_us[bucket])
        bucket++;
    metrics_bump(&t->outcomes[outcome]);
    metrics_bump(&t->latency[bucket]);
    atomic_fetch_add_explicit(&t->latency_sum_us, duration_us, memory_order_relaxed);
}

struct upstream_counters *metrics_upstream_counters(const char *name)
{
    pthread_mutex_lock(&registry_lock);
    struct entry *e = find_or_add(ENTRY_UPSTREAM, name, "");
    if (e->u.upstream.name == NULL) {
        e->u.upstream.name = e->a;
        pthread_mutex_init(&e->u.upstream.fault_lock, NULL);
    }
    pthread_mutex_unlock(&registry_lock);
    return &e->u.upstream;
}

void metrics_count_adapter_fault(struct upstream_counters *u, int64_t code)
{
    pthread_mutex_lock(&u->fault_lock);
    size_t i = 0;
    while (i < u->ncodes && u->codes[i].code != code)
        i++;
    if (i == u->ncodes && i < METRICS_MAX_FAULT_CODES)
        u->codes[u->ncodes++].code = code;
    if (i < u->ncodes)
        u->codes[i].count++;
    else
        u->other_faults++;
    pthread_mutex_unlock(&u->fault_lock);
}

void metrics_read_faults(struct upstream_counters *u, struct metrics_fault_code *codes,
                         size_t *ncodes, uint64_t *other)
{
    pthread_mutex_lock(&u->fault_lock);
    memcpy(codes, u->codes, u->ncodes * sizeof(*codes));
    *ncodes = u->ncodes;
    *other = u->other_faults;
    pthread_mutex_unlock(&u->fault_lock);
}

void metrics_answered_calls(uint64_t *new_side, uint64_t *all)
{
    static const enum metrics_outcome answered[] = {METRICS_OUTCOME_OK, METRICS_OUTCOME_FAULT,
                                                    METRICS_OUTCOME_CLIENT_ERROR,
                                                    METRICS_OUTCOME_SERVER_ERROR};
    *new_side = *all = 0;
    pthread_mutex_lock(&registry_lock);
    for (struct entry *e = registry; e != NULL; e = e->next) {
        if (e->kind != ENTRY_TARGET)
            continue;
        for (size_t i = 0; i < sizeof(answered) / sizeof(answered[0]); i++) {
            uint64_t n = metrics_read(&e->u.target.outcomes[answered[i]]);
            *all += n;
            if (e->u.target.new_side)
                *new_side += n;
        }
    }
    pthread_mutex_unlock(&registry_lock);
}

struct process_counters *metrics_process(void)
{
    return &process;
}

void metrics_mark_start(int64_t now_us)
{
    atomic_store_explicit(&process.started_us, now_us, memory_order_relaxed);
}

void metrics_foreach_target(void (*fn)(void *arg, struct target_counters *t), void *arg)
{
    pthread_mutex_lock(&registry_lock);
    for (struct entry *e = registry; e != NULL; e = e->next)
        if (e->kind == ENTRY_TARGET)
            fn(arg, &e->u.target);
    pthread_mutex_unlock(&registry_lock);
}

void metrics_foreach_upstream(void (*fn)(void *arg, struct upstream_counters *u), void *arg)
{
    pthread_mutex_lock(&registry_lock);
    for (struct entry *e = registry; e != NULL; e = e->next)
        if (e->kind == ENTRY_UPSTREAM)
            fn(arg, &e->u.upstream);
    pthread_mutex_unlock(&registry_lock);
}

void metrics_shutdown(void)
{
    pthread_mutex_lock(&registry_lock);
    while (registry != NULL) {
        struct entry *e = registry;
        registry = e->next;
        if (e->kind == ENTRY_UPSTREAM)
            pthread_mutex_destroy(&e->u.upstream.fault_lock);
        free(e->a);
        free(e->b);
        free(e);
    }
    registry_tail = &registry;
    pthread_mutex_unlock(&registry_lock);
}
