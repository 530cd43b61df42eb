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
    /* Zeroed memory is a valid state for these lock-free atomics (C11
     * allows atomic_init to be that), as it is on every platform we build. */
    e = mem_calloc(1, sizeof(*e));
    e->name = mem_strdup(name);
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
