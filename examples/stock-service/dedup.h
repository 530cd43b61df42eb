/*
 * dedup: a bounded set of recently seen event ids.
 *
 * Strangler delivers events at least once: after a broker reconnect the
 * proxy republishes whatever was not confirmed, and RabbitMQ redelivers
 * whatever this service did not ack. The stock model is built from absolute
 * values (qty after the call), so re-applying an old event could roll a
 * quantity back; consumers therefore de-duplicate by the CloudEvent id.
 *
 * Remembering every id forever would grow without bound, so the set keeps
 * the most recent `capacity` ids and forgets the oldest first. Duplicates
 * arrive close to the original (a republish window, a redelivery after a
 * reconnect), so a few thousand ids cover them.
 *
 * Not thread-safe: the owner (the model) serialises access.
 */
#ifndef STRANGLER_EXAMPLES_STOCK_DEDUP_H
#define STRANGLER_EXAMPLES_STOCK_DEDUP_H

#include <stddef.h>

struct dedup;

/* Creates an empty set remembering up to `capacity` ids (> 0). Free with
 * dedup_free(). */
struct dedup *dedup_new(size_t capacity);

/* Releases the set and the ids it holds. NULL is a no-op. */
void dedup_free(struct dedup *d);

/*
 * Records `id` (NUL-terminated, copied). Returns 1 when the id was already
 * in the set (nothing changes), 0 when it was added, evicting the oldest id
 * if the set was full.
 */
int dedup_check_and_add(struct dedup *d, const char *id);

/* Number of ids currently remembered. */
size_t dedup_count(const struct dedup *d);

#endif
