#include "common/mem.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die_out_of_memory(size_t size)
{
    /* stdio may itself need memory; write(2) would be safer but fprintf to an
     * unbuffered stderr does not allocate on glibc. */
    fprintf(stderr, "strangler: out of memory allocating %zu bytes\n", size);
    abort();
}

void *mem_alloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (p == NULL)
        die_out_of_memory(size);
    return p;
}

void *mem_calloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (p == NULL)
        die_out_of_memory(count * size);
    return p;
}

void *mem_realloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (p == NULL)
        die_out_of_memory(size);
    return p;
}

char *mem_strdup(const char *s)
{
    return mem_strndup(s, strlen(s));
}

char *mem_strndup(const char *s, size_t len)
{
    char *p = mem_alloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

/*
 * Blocks form a singly linked list, newest first. A request that outgrows
 * the first block gets blocks of at least twice the previous size, so a
 * large XML-RPC call costs O(log n) mallocs, not O(n).
 */
struct arena_block {
    struct arena_block *next;
    size_t size; /* usable bytes after the header */
    size_t used;
    max_align_t data[];
};

struct arena {
    struct arena_block *head;  /* block being filled */
    struct arena_block *first; /* kept across arena_reset() */
    size_t total_used;
};

#define ARENA_DEFAULT_BLOCK 4096
#define ARENA_ALIGN         (sizeof(max_align_t))

static struct arena_block *block_new(size_t size)
{
    struct arena_block *b = mem_alloc(sizeof(*b) + size);
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

struct arena *arena_new(size_t first_block)
{
    struct arena *a = mem_alloc(sizeof(*a));
    a->first = block_new(first_block ? first_block : ARENA_DEFAULT_BLOCK);
    a->head = a->first;
    a->total_used = 0;
    return a;
}

static void free_blocks_until(struct arena_block *b, const struct arena_block *stop)
{
    while (b != NULL && b != stop) {
        struct arena_block *next = b->next;
        free(b);
        b = next;
    }
}

void arena_free(struct arena *a)
{
    if (a == NULL)
        return;
    free_blocks_until(a->head, NULL);
    free(a);
}

void arena_reset(struct arena *a)
{
    free_blocks_until(a->head, a->first);
    a->first->used = 0;
    a->first->next = NULL;
    a->head = a->first;
    a->total_used = 0;
}

void *arena_alloc(struct arena *a, size_t size)
{
    size_t rounded = (size + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
    struct arena_block *b = a->head;

    if (rounded < size)
        die_out_of_memory(size);
    if (b->size - b->used < rounded) {
        size_t want = b->size * 2;
        if (want < rounded)
            want = rounded;
        b = block_new(want);
        b->next = a->head;
        a->head = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += rounded;
    a->total_used += rounded;
    return p;
}

void *arena_calloc(struct arena *a, size_t size)
{
    void *p = arena_alloc(a, size);
    memset(p, 0, size);
    return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t len)
{
    char *p = arena_alloc(a, len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

size_t arena_used(const struct arena *a)
{
    return a->total_used;
}
