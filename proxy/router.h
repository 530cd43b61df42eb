/*
 * router: which route a request takes.
 *
 * Routes are tried in the order routes.conf lists them and the first that
 * matches wins. An `xmlrpc GLOB` route matches only requests whose body is
 * an XML-RPC call, on the method name; `http METHOD PATH` matches any
 * request on method and path (exact, or prefix when the path ends in '*');
 * `*` matches everything. A body that is not XML-RPC therefore falls through
 * to the first non-xmlrpc route, untouched. Any route may add
 * `header NAME=VALUE` conditions, which must all hold as well (a tenant or a
 * client version sent to a new service first, for instance).
 *
 * Matching reads the immutable snapshot only, so any worker may call it
 * without locks.
 */
#ifndef STRANGLER_PROXY_ROUTER_H
#define STRANGLER_PROXY_ROUTER_H

#include "proxy/config.h"
#include "proxy/http.h"

#include <stddef.h>

/* What the router looks at. */
struct router_request {
    const char *http_method;
    size_t http_method_len;
    const char *path;
    size_t path_len;
    const char *xmlrpc_method; /* NULL when the body is not an XML-RPC call */
    size_t xmlrpc_method_len;
    /* A <methodCall> whose method name could not be read (a DOCTYPE, broken
     * markup before <methodName>): it takes the first xmlrpc route that
     * would take any method, or a non-xmlrpc route, as a call of unknown
     * name would. */
    int unreadable_call;
    const struct http_message *headers; /* for header conditions; NULL: none hold */
};

/* The first route of c that matches r, or NULL when none does. */
const struct route *router_match(const struct config *c, const struct router_request *r);

/* Nonzero when `text` matches `glob`: '*' stands for any run of characters
 * (dots included), '?' for one character, everything else for itself. */
int router_glob_match(const char *glob, size_t glob_len, const char *text, size_t text_len);

/* Nonzero when every text that `inner` matches, `outer` matches too. Sound
 * but not complete: a yes is certain, a no may be a missed inclusion, which
 * only costs a warning that --check does not give. */
int router_glob_covers(const char *outer, const char *inner);

/* Nonzero when route a matches every request route b matches, so that b,
 * listed after a, can never match (config.c warns about it). */
int router_route_covers(const struct route *a, const struct route *b);

#endif
