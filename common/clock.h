/*
 * clock: time as Strangler measures and prints it.
 *
 * Durations come from the monotonic clock (immune to NTP steps); timestamps
 * that leave the process (events, logs) come from the real-time clock and are
 * printed as RFC 3339 in UTC with milliseconds, the form CloudEvents expects.
 */
#ifndef STRANGLER_COMMON_CLOCK_H
#define STRANGLER_COMMON_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Monotonic time in nanoseconds, for measuring durations. */
uint64_t clock_monotonic_ns(void);

/* Wall-clock time in microseconds since the Unix epoch. */
int64_t clock_realtime_us(void);

#define CLOCK_RFC3339_LEN 24 /* "2026-11-21T10:00:00.123Z" */

/*
 * Writes `unix_us` as "YYYY-MM-DDTHH:MM:SS.mmmZ" plus a NUL into `out`, which
 * must hold CLOCK_RFC3339_LEN + 1 bytes. Returns CLOCK_RFC3339_LEN.
 */
size_t clock_format_rfc3339(char *out, int64_t unix_us);

#endif
