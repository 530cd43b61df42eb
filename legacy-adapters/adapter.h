/*
 * adapter: how a call routed to a new service is asked and answered.
 *
 * An adapter turns a parsed XML-RPC call into the HTTP request a new service
 * understands, and that service's HTTP answer back into an XML-RPC result or
 * fault, so the client cannot tell who answered. The proxy owns the
 * transport (pooled upstream connections, timeouts); adapters only encode and
 * decode, which keeps them synchronous, pure and easy to test.
 *
 * Each adapter is an ops table selected by the upstream's kind= option. The
 * JSON contract of DESIGN.md is kind=json:
 *     m(p1, p2) -> POST {upstream path}/m, body [p1, p2],
 *                  Content-Type: application/json,
 *                  X-Request-Id and X-Strangler-Method: m
 *     2xx JSON body            -> the result
 *     4xx/5xx {"faultCode": N, "faultString": "..."} -> that fault
 *     anything else            -> a fault with an interop code whose message
 *                                 names the route, the upstream and the cause
 *
 * A route with map=METHOD:TEMPLATE (restmap.h) calls a REST service instead:
 *     map=GET:/stock/{1}       m("A 1") -> GET {upstream path}/stock/A%201
 *     map=PUT:/stock/{1}       m("A", {"delta": 2}) -> PUT .../stock/A,
 *                              body {"delta": 2}
 * {N} is parameter N, percent-encoded: strings, ints, booleans, doubles and
 * dateTimes only (else -32602). The parameters the template leaves are the
 * body: none for GET and DELETE (else -32602); for POST, PUT and PATCH no
 * body, the one value, or an array of several. Headers: Accept:
 * application/json, Content-Type: application/json when there is a body,
 * X-Request-Id and X-Strangler-Method: m. Answers are read as above, except
 * that a 2xx with an empty body (204 No Content) is the result nil.
 */
#ifndef STRANGLER_ADAPTERS_ADAPTER_H
#define STRANGLER_ADAPTERS_ADAPTER_H

#include "common/buf.h"
#include "common/mem.h"
#include "legacy-adapters/xmlrpc.h"

#include <stddef.h>

struct restmap;

/* What the proxy knows about the call it hands to an adapter. */
struct adapter_call {
    const struct xr_call *call;
    const char *route;      /* route name, for messages */
    const char *upstream;   /* upstream name, for messages */
    const char *base_path;  /* path of the upstream URL, e.g. "/rpc" ("" for none) */
    const char *request_id; /* X-Request-Id of the client's request */
    const struct xr_limits *limits;
    const struct restmap *map; /* the route's map=, or NULL: the RPC contract */
};

/* The HTTP request an adapter wants sent. The proxy adds Host,
 * Content-Length and connection management. Owned by the caller, released
 * with adapter_request_dispose(). */
struct adapter_request {
    const char *method; /* static string, e.g. "POST" */
    struct buf target;  /* request-target: path and query */
    struct buf headers; /* extra header lines, each "Name: value\r\n" */
    struct buf body;
};

/* The service's answer as the proxy received it. */
struct adapter_answer {
    int status;               /* HTTP status code */
    const char *content_type; /* may be NULL */
    size_t content_type_len;
    const char *body;
    size_t body_len;
};

struct adapter_ops {
    const char *kind; /* the kind= value that selects this adapter */

    /* Fills *req for calling the service. Returns 0, or -1 with err when the
     * call cannot be expressed (e.g. a NaN parameter for JSON). */
    int (*encode)(const struct adapter_call *c, struct adapter_request *req, struct xr_error *err);

    /* Turns the answer into *out. Never fails: whatever the service sent,
     * the client gets a well-formed result or fault. */
    void (*decode)(struct arena *a, const struct adapter_call *c, const struct adapter_answer *ans,
                   struct xr_response *out);
};

/* The kind=json adapter (adapter_json.c). Added for adapter.c's registry
 * and for tests; everyone else should go through adapter_find(). */
extern const struct adapter_ops adapter_json_ops;

/* The adapter for kind (len bytes), or NULL when there is none. kind=xmlrpc
 * has no adapter: such upstreams get the client's bytes as they are. */
const struct adapter_ops *adapter_find(const char *kind, size_t len);

void adapter_request_init(struct adapter_request *req);
void adapter_request_dispose(struct adapter_request *req);

/*
 * Fills *out with a fault whose message is printf-formatted and prefixed by
 * "route R: upstream U: ". The proxy uses it for transport failures
 * (refused, reset, timed out) so every fault a client sees is worded alike.
 */
void adapter_fault(struct arena *a, const struct adapter_call *c, int64_t code,
                   struct xr_response *out, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#endif
