#include "examples/stock-service/dedup.h"

#include "common/mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NO_SLOT SIZE_MAX

/*
 * The ids live in a ring of `capacity` slots, written in arrival order, so
 * the slot about to be overwritten always holds the oldest id. A hash table
 * of chains (bucket heads and per-slot next links, both slot indexes) finds
 * an id without scanning the ring.
 */
struct slot {
    char *id; /* NULL while the slot has never been used */
    uint32_t hash;
    size_t next; /* next slot in the same bucket, or NO_SLOT */
};

struct dedup {
    struct slot *slots;
    size_t capacity;
    size_t write; /* the next slot to fill: the oldest once the ring is full */
    size_t count;
    size_t *buckets; /* head slot of each chain, or NO_SLOT */
    size_t n_buckets;
};

/* FNV-1a: ids are random UUIDs, so a simple hash spreads them well. */
static uint32_t hash_id(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

struct dedup *dedup_new(size_t capacity)
{
    struct dedup *d = mem_calloc(1, sizeof(*d));
    d->capacity = capacity ? capacity : 1;
    d->slots = mem_calloc(d->capacity, sizeof(*d->slots));
    /* Twice as many buckets as ids keeps the chains short. */
    d->n_buckets = d->capacity * 2;
    d->buckets = mem_alloc(d->n_buckets * sizeof(*d->buckets));
    for (size_t i = 0; i < d->n_buckets; i++)
        d->buckets[i] = NO_SLOT;
    return d;
}

void dedup_free(struct dedup *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->capacity; i++)
        free(d->slots[i].id);
    free(d->slots);
    free(d->buckets);
    free(d);
}

static void unlink_slot(struct dedup *d, size_t victim)
{
    size_t *link = &d->buckets[d->slots[victim].hash % d->n_buckets];
    while (*link != NO_SLOT) {
        if (*link == victim) {
            *link = d->slots[victim].next;
            return;
        }
        link = &d->slots[*link].next;
    }
}

int dedup_check_and_add(struct dedup *d, const char *id)
{
    uint32_t h = hash_id(id);
    size_t b = h % d->n_buckets;
    for (size_t i = d->buckets[b]; i != NO_SLOT; i = d->slots[i].next) {
        if (d->slots[i].hash == h && strcmp(d->slots[i].id, id) == 0)
            return 1;
    }

    struct slot *s = &d->slots[d->write];
    if (s->id != NULL) {
        unlink_slot(d, d->write);
        free(s->id);
        d->count--;
    }
    s->id = mem_strdup(id);
    s->hash = h;
    s->next = d->buckets[b];
    d->buckets[b] = d->write;
    d->write = (d->write + 1) % d->capacity;
    d->count++;
    return 0;
}

size_t dedup_count(const struct dedup *d)
{
    return d->count;
}
