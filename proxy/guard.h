/*
 * guard: a route's rollback guard (`rollback=errors>5%/1m`).
 *
 * A migration team that ramps a method onto a new service wants a way back
 * that does not wait for a human: when the new side fails (no answer, a
 * fault the proxy made) or, for a shadow, disagrees with the legacy more
 * often than the route allows over its window, the route goes back to its
 * legacy side by itself, as a flip credited to "rollback guard" (audit log,
 * strangler.route.changed event, routes.conf rewritten).
 *
 * Workers report each outcome of a route's new side with guard_record().
 * Windows are kept per route name next to the route's counters (metrics.h),
 * so they survive reloads like the counters do. A window that crosses its
 * threshold is reported once, on the main thread, through the function
 * given to guard_start(); flips happen there, where control.h wants them.
 */
#ifndef STRANGLER_PROXY_GUARD_H
#define STRANGLER_PROXY_GUARD_H

#include "proxy/config.h"

#include <event2/event.h>

/* Called on the main thread with the name of a route whose guard tripped
 * (and the figures that tripped it, for the log). */
typedef void (*guard_trip_fn)(void *arg, const char *route, uint64_t calls, uint64_t bad);

/*
 * Starts reporting trips on base (the main loop). Until then, and after
 * guard_stop(), trips are counted in the windows but reported to no one.
 * Returns 0, or -1 when the event could not be made.
 */
int guard_start(struct event_base *base, guard_trip_fn trip, void *arg);
void guard_stop(void);

/*
 * One outcome of r's new side: bad is nonzero for an error or (shadows) a
 * mismatch. Does nothing for a route without a guard. Thread-safe; cheap
 * (a short lock).
 */
void guard_record(const struct route *r, int bad, uint64_t now_ms);

/* Forgets a route's window and arms its guard again (after a trip was
 * handled, whatever came of it). */
void guard_reset(struct route_counters *c);

#endif
