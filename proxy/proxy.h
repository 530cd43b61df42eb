/*
 * proxy: the pipeline one request goes through.
 *
 * For every complete request the client module hands over, the pipeline
 *   1. reads the XML-RPC call if the body is one (parsed once, libxml2),
 *   2. picks the route (router.c) on the snapshot the request holds,
 *   3. forwards it: to an xmlrpc upstream byte for byte (only hop-by-hop
 *      headers change, X-Forwarded-For and X-Request-Id are added), or
 *      through the route's adapter to a new service,
 *   4. for an intercepting route, records the call and its answer (the
 *      interceptor spools an event) before the client gets the answer,
 *   5. answers the client: the upstream's status, headers and body as they
 *      came, streamed with backpressure when nothing needs to read them;
 *      or a methodResponse made by the adapter; or, when the upstream
 *      fails, 502/504 for plain HTTP and an XML-RPC fault (-32300) for a
 *      call.
 *
 * Worker thread only.
 */
#ifndef STRANGLER_PROXY_PROXY_H
#define STRANGLER_PROXY_PROXY_H

#include "proxy/http.h"

#include <stddef.h>

struct client;
struct txn;
struct worker;

/*
 * Starts serving a complete request. req and body belong to the client and
 * stay valid until proxy_txn_free(). Returns the transaction, which the
 * client frees once the response is written or the connection is gone.
 */
struct txn *proxy_handle(struct client *c, const struct http_request *req, const char *body,
                         size_t body_len);

/* The client's queued output fell below the high-water mark. */
void proxy_client_drained(struct txn *t);

/* Counts and logs a request the client module refused before it became a
 * transaction (bad HTTP, too large, too slow): status is what it answered. */
void proxy_report_refused(struct worker *w, const char *client, int status);

/* Ends the transaction, cancelling the upstream exchange if it still runs. */
void proxy_txn_free(struct txn *t);

#endif
