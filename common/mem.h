/*
 * mem: the one way Strangler allocates memory.
 *
 * Every allocation goes through these wrappers, which abort the process when
 * the system is out of memory: a proxy that limps on after a failed malloc
 * corrupts requests in ways no client can diagnose, and every size that could
 * make an allocation large (bodies, headers, XML) is bounded by configuration
 * before it gets here.
 *
 * The arena serves objects that live exactly as long as one request (parsed
 * XML-RPC values, header copies, event text). Allocation is a pointer bump;
 * everything is released at once by arena_free(), so request code has one
 * cleanup point and no per-object frees.
 */
#ifndef STRANGLER_COMMON_MEM_H
#define STRANGLER_COMMON_MEM_H

#include <stddef.h>

/* malloc/calloc/realloc/strdup that never return NULL. Free with free(). */
void *mem_alloc(size_t size);
void *mem_calloc(size_t count, size_t size);
void *mem_realloc(void *ptr, size_t size);
char *mem_strdup(const char *s);
char *mem_strndup(const char *s, size_t len);

struct arena;

/*
 * Creates an arena whose first block holds `first_block` bytes (0 picks a
 * default). The caller owns the arena and releases it with arena_free().
 */
struct arena *arena_new(size_t first_block);

/* Releases the arena and everything allocated from it. NULL is a no-op. */
void arena_free(struct arena *a);

/*
 * Forgets everything allocated from the arena but keeps its first block, so
 * a connection can reuse one arena for request after request without going
 * back to malloc.
 */
void arena_reset(struct arena *a);

/* Returns `size` bytes aligned for any type, owned by the arena. */
void *arena_alloc(struct arena *a, size_t size);

/* Zeroed variant of arena_alloc(). */
void *arena_calloc(struct arena *a, size_t size);

/* Copies `len` bytes of `s` and appends a NUL; the copy belongs to the arena. */
char *arena_strndup(struct arena *a, const char *s, size_t len);

/* Bytes handed out by the arena so far (for limits and metrics). */
size_t arena_used(const struct arena *a);

#endif
