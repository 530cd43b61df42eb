#include "proxy/metrics.h"

#include "common/mem.h"

#include <inttypes.h>
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

enum entry_kind { ENTRY_ROUTE, ENTRY_TARGET, ENTRY_UPSTREAM_ERROR, ENTRY_ADAPTER_FAULT };

/* One named figure. `a` and `b` are its key: the route (and upstream) of
 * route and target counters, the upstream and the error's text or fault
 * code of the plain counts. */
struct entry {
    struct entry *next;
    enum entry_kind kind;
    char *a, *b;
    union {
        struct route_counters route;
        struct target_counters target;
        atomic_uint_fast64_t count;
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

static void count(enum entry_kind kind, const char *a, const char *b)
{
    pthread_mutex_lock(&registry_lock);
    metrics_bump(&find_or_add(kind, a, b)->u.count);
    pthread_mutex_unlock(&registry_lock);
}

void metrics_count_upstream_error(const char *name, const char *kind)
{
    count(ENTRY_UPSTREAM_ERROR, name, kind);
}

void metrics_count_adapter_fault(const char *name, int64_t code)
{
    char label[24];
    snprintf(label, sizeof(label), "%" PRId64, code);
    pthread_mutex_lock(&registry_lock);
    size_t codes = 0;
    struct entry *found = NULL;
    for (struct entry *e = registry; e != NULL && found == NULL; e = e->next) {
        if (e->kind != ENTRY_ADAPTER_FAULT || strcmp(e->a, name) != 0)
            continue;
        if (strcmp(e->b, label) == 0)
            found = e;
        codes++;
    }
    if (found == NULL)
        found = find_or_add(ENTRY_ADAPTER_FAULT, name,
                            codes < METRICS_MAX_FAULT_CODES ? label : "other");
    metrics_bump(&found->u.count);
    pthread_mutex_unlock(&registry_lock);
}

void metrics_answered_calls(uint64_t *new_side, uint64_t *all)
{
    static const enum metrics_outcome answered[] = {OUTCOME_OK, OUTCOME_FAULT, OUTCOME_CLIENT_ERROR,
                                                    OUTCOME_SERVER_ERROR};
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

static void foreach_count(enum entry_kind kind,
                          void (*fn)(void *arg, const char *a, const char *b, uint64_t value),
                          void *arg)
{
    pthread_mutex_lock(&registry_lock);
    for (struct entry *e = registry; e != NULL; e = e->next)
        if (e->kind == kind)
            fn(arg, e->a, e->b, metrics_read(&e->u.count));
    pthread_mutex_unlock(&registry_lock);
}

void metrics_foreach_upstream_error(void (*fn)(void *arg, const char *upstream, const char *label,
                                               uint64_t value),
                                    void *arg)
{
    foreach_count(ENTRY_UPSTREAM_ERROR, fn, arg);
}

void metrics_foreach_adapter_fault(void (*fn)(void *arg, const char *upstream, const char *label,
                                              uint64_t value),
                                   void *arg)
{
    foreach_count(ENTRY_ADAPTER_FAULT, fn, arg);
}

void metrics_shutdown(void)
{
    pthread_mutex_lock(&registry_lock);
    while (registry != NULL) {
        struct entry *e = registry;
        registry = e->next;
        free(e->a);
        free(e->b);
        free(e);
    }
    registry_tail = &registry;
    pthread_mutex_unlock(&registry_lock);
}
