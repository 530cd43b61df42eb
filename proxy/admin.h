/*
 * admin: the admin API, on its own address.
 *
 * What migration teams and their tools use to steer the proxy while it
 * serves (DESIGN.md, "Admin API"):
 *
 *   GET  /healthz          200 "ok", without a token (for load balancers)
 *   GET  /routes           the routes in force, with their counters
 *   GET  /routes/NAME      one of them
 *   PUT  /routes/NAME      {"action": "stock-svc"}: a flip (control.h)
 *   POST /reload           re-reads routes.conf
 *   GET  /metrics          traffic, routes, the event pipeline and config
 *                          changes, Prometheus text format (promtext.h)
 *   GET  /methods          the method inventory (inventory.h): every method
 *                          seen, its figures and who serves it now
 *   GET  /                 the migration dashboard (dashboard.h), whose
 *                          files need no token (they hold no data)
 *   POST /events/replay    {"since": "2026-11-21T10:00:00Z", "type": "GLOB"}
 *                          (both optional): publishes the retained events
 *                          again (eventlog.h); runs on a thread of its own
 *                          and answers when done, 409 while one runs
 *
 * Every request but /healthz and the dashboard's files carries `Authorization: Bearer SECRET` when
 * routes.conf names tokens; the secret is compared in constant time against
 * each token, and the matching token's name is who the audit log credits.
 * Tokens are read from the snapshot in force, so a reload rotates them, as
 * long as its admin line names the address the API listens on (which only
 * a restart changes); otherwise the tokens the API started with stay. Without
 * tokens the API is open, which config.c allows on loopback only.
 *
 * The API is served by libevent's evhttp on the main thread's loop, apart
 * from the data path: it terminates a few requests from operators and never
 * forwards anything, so the request-smuggling leniencies FIELD-NOTES.md
 * lists for evhttp do not reach an upstream here, and the strict parser of
 * http.c stays dedicated to client traffic. Its limits (head and body size,
 * idle timeout) are set explicitly, never left at evhttp's unlimited
 * defaults. Answers are JSON, except /healthz.
 *
 * Main thread only.
 */
#ifndef STRANGLER_PROXY_ADMIN_H
#define STRANGLER_PROXY_ADMIN_H

#include "common/buf.h"
#include "interceptors/intercept.h"
#include "interceptors/publisher.h"
#include "interceptors/spool.h"
#include "proxy/control.h"
#include "proxy/inventory.h"

#include <event2/event.h>
#include <stddef.h>

struct admin;

/*
 * Serves the admin API of control's configuration (its `admin` line, which
 * must be enabled) on base. With port 0 the kernel picks one, which
 * admin_address() tells. Returns the server, or NULL with a message in err.
 * Free with admin_free().
 */
struct admin *admin_start(struct event_base *base, struct control *ctl, char *err, size_t errlen);

/*
 * What the admin API reports on (/metrics) and replays into
 * (POST /events/replay), borrowed from the caller, who keeps them alive
 * while the API runs. The publisher is restarted when a reload changes the
 * events line, so the API reads *publisher each time (on the main thread,
 * where the restart happens too); it may be NULL (no broker).
 */
struct admin_events {
    struct spool *spool;
    struct interceptor *interceptor;
    struct publisher *const *publisher;
};

/* Until this is called, /metrics has no event figures and a replay gets 503. */
void admin_attach_events(struct admin *a, const struct admin_events *events);

/* The method inventory GET /methods reports (borrowed; NULL: none, and
 * /methods answers 404 saying max_methods is 0). */
void admin_attach_inventory(struct admin *a, struct inventory *inv);

/* Stops listening and closes connections. NULL is a no-op. */
void admin_free(struct admin *a);

/* The address the API listens on, e.g. "127.0.0.1:8081". */
const char *admin_address(const struct admin *a);

/*
 * Appends the JSON object of route r as GET /routes shows it: name, line,
 * match, conditions, action, upstream, kind, intercept, event_type,
 * counters, and changed (the last flip or reload that moved it, or null).
 */
void admin_write_route(struct buf *out, const struct route *r, const struct control_audit *changed);

/* Who serves route r's calls now: "new" or "legacy" (its upstream's role;
 * a shadow's or fallback's primary), or "canary" for a canary's split. */
const char *admin_route_side(const struct route *r);

/*
 * Appends GET /methods' JSON: the inventory report r, each method with who
 * serves it now under cfg's routes, and the totals.
 */
void admin_write_methods(struct buf *out, const struct config *cfg,
                         const struct inventory_report *r, int64_t now_us);

/*
 * Which token `authorization` (the header's value, NULL when absent)
 * presents. Returns the token's name, "anonymous" when no token is
 * configured, or NULL when the request must be refused. The comparison
 * takes the same time whatever the secret's content.
 */
const char *admin_authorize(const struct config_admin *cfg, const char *authorization);

#endif
