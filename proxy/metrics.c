#include "proxy/metrics.h"

#include "common/mem.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct route_entry {
    struct route_entry *next;
    char *name;
    struct route_counters counters;
};

/* The process's registry (see the header for why it is global). */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct route_entry *registry;

struct route_counters *metrics_route_counters(const char *name)
{
    struct route_entry *e;
    pthread_mutex_lock(&registry_lock);
    for (e = registry; e != NULL; e = e->next)
        if (strcmp(e->name, name) == 0)
            goto out;
    e = mem_calloc(1, sizeof(*e));
    e->name = mem_strdup(name);
    atomic_init(&e->counters.requests, 0);
    atomic_init(&e->counters.faults, 0);
    atomic_init(&e->counters.errors, 0);
    atomic_init(&e->counters.events, 0);
    e->next = registry;
    registry = e;
out:
    pthread_mutex_unlock(&registry_lock);
    return &e->counters;
}

void metrics_shutdown(void)
{
    pthread_mutex_lock(&registry_lock);
    while (registry != NULL) {
        struct route_entry *e = registry;
        registry = e->next;
        free(e->name);
        free(e);
    }
    pthread_mutex_unlock(&registry_lock);
}
