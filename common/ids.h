/*
 * ids: unique identifiers for requests and events.
 *
 * Request ids and CloudEvent ids are random UUIDs (version 4, RFC 4122).
 * Consumers de-duplicate events by id across proxy restarts and across
 * several proxy instances, so ids come from a per-thread generator seeded
 * from the kernel's entropy pool, never from a counter or the clock.
 */
#ifndef STRANGLER_COMMON_IDS_H
#define STRANGLER_COMMON_IDS_H

#define IDS_UUID_LEN 36

/* Writes a fresh random UUID plus a NUL into out[IDS_UUID_LEN + 1]. */
void ids_new_uuid(char *out);

#endif
