#include "proxy/inventory.h"

#include "common/mem.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Durations at and above 2^32 us (71 minutes) share the last bucket. */
#define TOP_EXPONENT 31
#define SUB_BITS     4
#define SUBS         (1u << SUB_BITS)

struct method_entry {
    uint64_t hash;
    uint64_t calls, faults, errors, new_calls, legacy_calls;
    uint64_t bytes_in, bytes_out, max_us;
    int64_t first_us, last_us;
    const char *route;
    /* Counts per bucket; when one would overflow, all are halved, which
     * keeps every quantile where it was. */
    uint32_t hist[INVENTORY_BUCKETS];
    size_t name_len;
    char name[]; /* NUL-terminated */
};

struct inventory_shard {
    pthread_mutex_t lock;
    struct method_entry **slots; /* open addressing, linear probing */
    size_t cap, count;           /* cap is a power of two, count <= cap * 3/4 */
    uint64_t untracked;
    uint64_t calls, new_calls, legacy_calls; /* every call, tracked or not */
    const struct inventory *inv;
};

struct inventory {
    atomic_size_t max_methods;
    int64_t since_us;
    unsigned nshards;
    struct inventory_shard shards[];
};

unsigned inventory_bucket_of(uint64_t us)
{
    if (us < SUBS)
        return (unsigned)us;
    if (us >> (TOP_EXPONENT + 1))
        us = ((uint64_t)1 << (TOP_EXPONENT + 1)) - 1;
    unsigned e = 63u - (unsigned)__builtin_clzll(us);
    unsigned sub = (unsigned)(us >> (e - SUB_BITS)) & (SUBS - 1);
    return SUBS + (e - SUB_BITS) * SUBS + sub;
}

double inventory_bucket_value(unsigned bucket)
{
    if (bucket < SUBS)
        return bucket;
    unsigned e = (bucket - SUBS) / SUBS + SUB_BITS;
    unsigned sub = (bucket - SUBS) % SUBS;
    double width = (double)((uint64_t)1 << (e - SUB_BITS));
    return (double)(SUBS + sub) * width + width / 2;
}

/* FNV-1a: names are short, and a shard's table holds few of them. */
static uint64_t hash_name(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

struct inventory *inventory_new(unsigned nshards, size_t max_methods, int64_t now_us)
{
    struct inventory *inv = mem_calloc(1, sizeof(*inv) + nshards * sizeof(inv->shards[0]));
    atomic_init(&inv->max_methods, max_methods);
    inv->since_us = now_us;
    inv->nshards = nshards;
    for (unsigned i = 0; i < nshards; i++) {
        pthread_mutex_init(&inv->shards[i].lock, NULL);
        inv->shards[i].inv = inv;
    }
    return inv;
}

void inventory_free(struct inventory *inv)
{
    if (inv == NULL)
        return;
    for (unsigned i = 0; i < inv->nshards; i++) {
        struct inventory_shard *s = &inv->shards[i];
        for (size_t k = 0; k < s->cap; k++)
            free(s->slots[k]);
        free(s->slots);
        pthread_mutex_destroy(&s->lock);
    }
    free(inv);
}

struct inventory_shard *inventory_shard(struct inventory *inv, unsigned i)
{
    return i < inv->nshards ? &inv->shards[i] : NULL;
}

void inventory_set_max_methods(struct inventory *inv, size_t max_methods)
{
    atomic_store_explicit(&inv->max_methods, max_methods, memory_order_relaxed);
}

/* The slot of the name, or of the empty slot where it would go. Lock held,
 * cap > count. */
static struct method_entry **find_slot(struct inventory_shard *s, uint64_t hash, const char *name,
                                       size_t len)
{
    size_t mask = s->cap - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        struct method_entry *e = s->slots[i];
        if (e == NULL || (e->hash == hash && e->name_len == len && memcmp(e->name, name, len) == 0))
            return &s->slots[i];
    }
}

static void grow(struct inventory_shard *s)
{
    size_t old_cap = s->cap;
    struct method_entry **old = s->slots;
    s->cap = old_cap ? old_cap * 2 : 64;
    s->slots = mem_calloc(s->cap, sizeof(*s->slots));
    for (size_t i = 0; i < old_cap; i++)
        if (old[i] != NULL)
            *find_slot(s, old[i]->hash, old[i]->name, old[i]->name_len) = old[i];
    free(old);
}

/* The entry of the call's method, made if the bound allows; NULL when not
 * tracked. Lock held. */
static struct method_entry *entry_of(struct inventory_shard *s, const struct inventory_call *c)
{
    if (c->method_len == 0 || c->method_len > INVENTORY_NAME_MAX)
        return NULL;
    uint64_t hash = hash_name(c->method, c->method_len);
    if (s->cap > 0) {
        struct method_entry *e = *find_slot(s, hash, c->method, c->method_len);
        if (e != NULL)
            return e;
    }
    if (s->count >= atomic_load_explicit(&s->inv->max_methods, memory_order_relaxed))
        return NULL;
    if ((s->count + 1) * 4 > s->cap * 3)
        grow(s);
    struct method_entry *e = mem_calloc(1, sizeof(*e) + c->method_len + 1);
    e->hash = hash;
    e->name_len = c->method_len;
    memcpy(e->name, c->method, c->method_len);
    e->first_us = c->at_us;
    *find_slot(s, hash, c->method, c->method_len) = e;
    s->count++;
    return e;
}

static void count_duration(struct method_entry *e, uint64_t us)
{
    unsigned b = inventory_bucket_of(us);
    if (e->hist[b] == UINT32_MAX)
        for (unsigned i = 0; i < INVENTORY_BUCKETS; i++)
            e->hist[i] /= 2;
    e->hist[b]++;
    if (us > e->max_us)
        e->max_us = us;
}

void inventory_record(struct inventory_shard *s, const struct inventory_call *c)
{
    pthread_mutex_lock(&s->lock);
    s->calls++;
    if (c->answered) {
        s->new_calls += c->new_side != 0;
        s->legacy_calls += c->new_side == 0;
    }
    struct method_entry *e = entry_of(s, c);
    if (e == NULL) {
        s->untracked++;
        goto out;
    }
    /* Calls are recorded as they end but stamped when they arrived: a slow
     * one may come in after a quicker one that arrived later. */
    if (c->at_us < e->first_us)
        e->first_us = c->at_us;
    e->calls++;
    e->faults += c->fault != 0;
    e->errors += c->error != 0;
    if (c->answered) {
        e->new_calls += c->new_side != 0;
        e->legacy_calls += c->new_side == 0;
    }
    e->bytes_in += c->bytes_in;
    e->bytes_out += c->bytes_out;
    if (c->at_us >= e->last_us) {
        e->last_us = c->at_us;
        e->route = c->route;
    }
    count_duration(e, c->duration_us);
out:
    pthread_mutex_unlock(&s->lock);
}

/* ---- reports ---- */

/* The methods of a report while the shards are folded: an open-addressing
 * index of names into r->methods. */
struct folding {
    struct inventory_report *r;
    size_t cap;       /* methods[] allocated */
    size_t *slots;    /* index + 1 into methods, 0: empty; a power of two */
    uint64_t *hashes; /* by method */
    size_t nslots;
};

static size_t *fold_slot(struct folding *f, uint64_t hash, const char *name, size_t len)
{
    size_t mask = f->nslots - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        size_t k = f->slots[i];
        if (k == 0 ||
            (f->hashes[k - 1] == hash && strncmp(f->r->methods[k - 1].method, name, len) == 0 &&
             f->r->methods[k - 1].method[len] == '\0'))
            return &f->slots[i];
    }
}

static void fold_grow(struct folding *f)
{
    struct inventory_report *r = f->r;
    f->cap = f->cap ? f->cap * 2 : 64;
    r->methods = mem_realloc(r->methods, f->cap * sizeof(*r->methods));
    f->hashes = mem_realloc(f->hashes, f->cap * sizeof(*f->hashes));
    free(f->slots);
    f->nslots = f->cap * 2;
    f->slots = mem_calloc(f->nslots, sizeof(*f->slots));
    for (size_t k = 0; k < r->nmethods; k++)
        *fold_slot(f, f->hashes[k], r->methods[k].method, strlen(r->methods[k].method)) = k + 1;
}

/* Adds one shard's entry to the report's method of the same name. */
static void fold_entry(struct folding *f, const struct method_entry *e)
{
    struct inventory_report *r = f->r;
    if (r->nmethods == f->cap)
        fold_grow(f);
    size_t *slot = fold_slot(f, e->hash, e->name, e->name_len);
    if (*slot == 0) {
        struct inventory_method *m = &r->methods[r->nmethods];
        memset(m, 0, sizeof(*m));
        m->method = mem_strndup(e->name, e->name_len);
        m->first_seen_us = e->first_us;
        f->hashes[r->nmethods] = e->hash;
        *slot = ++r->nmethods;
    }
    struct inventory_method *m = &r->methods[*slot - 1];
    if (e->first_us < m->first_seen_us)
        m->first_seen_us = e->first_us;
    if (e->last_us >= m->last_seen_us) {
        m->last_seen_us = e->last_us;
        m->route = e->route;
    }
    m->calls += e->calls;
    m->faults += e->faults;
    m->errors += e->errors;
    m->new_calls += e->new_calls;
    m->legacy_calls += e->legacy_calls;
    m->bytes_in += e->bytes_in;
    m->bytes_out += e->bytes_out;
    if ((double)e->max_us / 1000.0 > m->max_ms)
        m->max_ms = (double)e->max_us / 1000.0;
}

static int by_calls(const void *a, const void *b)
{
    const struct inventory_method *x = a, *y = b;
    if (x->calls != y->calls)
        return x->calls > y->calls ? -1 : 1;
    return strcmp(x->method, y->method);
}

/* The q-quantile of a histogram, in milliseconds. */
static double quantile_ms(const uint64_t *hist, double q)
{
    uint64_t total = 0, seen = 0;
    for (unsigned i = 0; i < INVENTORY_BUCKETS; i++)
        total += hist[i];
    if (total == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)total);
    if ((double)rank < q * (double)total || rank == 0)
        rank++;
    for (unsigned i = 0; i < INVENTORY_BUCKETS; i++) {
        seen += hist[i];
        if (seen >= rank)
            return inventory_bucket_value(i) / 1000.0;
    }
    return 0;
}

/* p50 and p99 of method m over every shard: its histograms summed, one
 * shard's lock at a time. */
static void fill_quantiles(struct inventory *inv, struct inventory_method *m, uint64_t *hist)
{
    size_t len = strlen(m->method);
    uint64_t hash = hash_name(m->method, len);
    memset(hist, 0, INVENTORY_BUCKETS * sizeof(*hist));
    for (unsigned i = 0; i < inv->nshards; i++) {
        struct inventory_shard *s = &inv->shards[i];
        pthread_mutex_lock(&s->lock);
        const struct method_entry *e = s->cap ? *find_slot(s, hash, m->method, len) : NULL;
        for (unsigned b = 0; e != NULL && b < INVENTORY_BUCKETS; b++)
            hist[b] += e->hist[b];
        pthread_mutex_unlock(&s->lock);
    }
    m->p50_ms = quantile_ms(hist, 0.50);
    m->p99_ms = quantile_ms(hist, 0.99);
}

void inventory_report_top(struct inventory *inv, size_t limit, struct inventory_report *r)
{
    struct folding f = {.r = r};
    memset(r, 0, sizeof(*r));
    r->since_us = inv->since_us;
    r->max_methods = atomic_load_explicit(&inv->max_methods, memory_order_relaxed);
    for (unsigned i = 0; i < inv->nshards; i++) {
        struct inventory_shard *s = &inv->shards[i];
        pthread_mutex_lock(&s->lock);
        r->untracked_calls += s->untracked;
        r->calls += s->calls;
        r->new_calls += s->new_calls;
        r->legacy_calls += s->legacy_calls;
        for (size_t k = 0; k < s->cap; k++)
            if (s->slots[k] != NULL)
                fold_entry(&f, s->slots[k]);
        pthread_mutex_unlock(&s->lock);
    }
    free(f.slots);
    free(f.hashes);
    r->tracked = r->nmethods;
    if (r->nmethods > 1)
        qsort(r->methods, r->nmethods, sizeof(*r->methods), by_calls);
    while (r->nmethods > limit)
        free(r->methods[--r->nmethods].method);
    uint64_t *hist = mem_alloc(INVENTORY_BUCKETS * sizeof(*hist));
    for (size_t k = 0; k < r->nmethods; k++)
        fill_quantiles(inv, &r->methods[k], hist);
    free(hist);
}

void inventory_report(struct inventory *inv, struct inventory_report *r)
{
    inventory_report_top(inv, SIZE_MAX, r);
}

void inventory_report_dispose(struct inventory_report *r)
{
    for (size_t i = 0; i < r->nmethods; i++)
        free(r->methods[i].method);
    free(r->methods);
    memset(r, 0, sizeof(*r));
}
