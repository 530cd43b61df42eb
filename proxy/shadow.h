/*
 * shadow: the copies of calls that a shadow route sends to its candidate.
 *
 *   route stock-read xmlrpc stock.get -> shadow legacy stock-svc readonly sample=25%
 *
 * The client is served by the primary exactly as a direct route would
 * serve it. For a sampled share of the calls, a copy goes to the candidate
 * (forwarded to an xmlrpc candidate, through the adapter to a kind=json
 * one) with `X-Strangler-Shadow: 1` and the client's X-Request-Id. Once
 * both answers are known they are compared (xrdiff.h) and counted on the
 * route (shadow_matches, shadow_mismatches, shadow_errors,
 * shadow_latency_us); a difference also becomes a
 * `strangler.shadow.mismatch` event, redacted like the route's intercepted
 * events, and each outcome goes to the route's rollback guard.
 *
 * A shadow must never delay a client or hold its connection, so a copy
 * lives on its own: the worker owns it, and it owns copies of all it needs
 * (the call, the request bytes, the primary's answer once told), plus a
 * hold on the configuration snapshot of the request that started it (the
 * route and the candidate's pool live there; a flip or a reload may
 * replace the snapshot meanwhile). The request only keeps a pointer to its
 * copy until it tells it the primary's outcome, exactly once, through
 * shadow_primary_answered() or shadow_primary_failed(); after that the
 * request forgets it. The candidate's wait is bounded by its upstream's
 * timeout= (the upstream layer applies it), the primary's by its own, so
 * every copy ends.
 *
 * At most limits.max_shadows copies are in flight per worker; beyond that,
 * and while the worker drains, copies are not sent (shadow_dropped). A
 * draining worker does not wait for copies: those still running when its
 * last client is gone are dropped by shadow_drop_all().
 *
 * Worker thread only (shadow_drop_all: the thread that joins the worker,
 * once its loop has ended).
 */
#ifndef STRANGLER_PROXY_SHADOW_H
#define STRANGLER_PROXY_SHADOW_H

#include "common/buf.h"
#include "legacy-adapters/xmlrpc.h"
#include "proxy/config.h"

#include <stddef.h>

struct shadow;
struct worker;
struct worker_config;

/* The header that tells a candidate the call is a copy. */
#define SHADOW_HEADER "X-Strangler-Shadow: 1\r\n"

/* A copy to send. Pointers are borrowed for the duration of
 * shadow_start(), which copies what it keeps, except head and body, whose
 * contents it takes over (leaving them empty). */
struct shadow_request {
    struct worker_config *wc;   /* the request's snapshot; the copy takes a hold of its own */
    const struct route *route;  /* a ROUTE_SHADOW route of wc->cfg */
    const struct xr_call *call; /* fully parsed */
    const char *request_id;     /* NUL-terminated */
    const char *http_method;    /* of the request to the candidate */
    size_t http_method_len;
    struct buf *head; /* the candidate's request head, ending in the blank line */
    struct buf *body;
};

/* Nonzero when w may start another copy on snapshot wc now: below
 * max_shadows and not draining. Callers ask before they build a copy;
 * when this says no, the copy is dropped (shadow_dropped is counted
 * here). */
int shadow_admits(struct worker *w, const struct worker_config *wc, const struct route *r);

/*
 * Sends the copy to r->second. Returns the copy, owned by the worker, for
 * the caller to tell the primary's outcome to; counts shadow_sent. Call
 * shadow_admits() first.
 */
struct shadow *shadow_start(struct worker *w, struct shadow_request *req);

/* The primary answered (answer is copied): the copy compares once the
 * candidate has answered too. The caller forgets s. */
void shadow_primary_answered(struct shadow *s, const struct xr_response *answer);

/* The primary gave nothing to compare (no answer, an HTTP error, not
 * XML-RPC, a fault the proxy made, or the client went away first): counted
 * as a shadow error once the copy ends. The caller forgets s. */
void shadow_primary_failed(struct shadow *s);

/* Drops every copy still in flight on w, uncounted (the worker is
 * ending). */
void shadow_drop_all(struct worker *w);

#endif
