/*
 * restmap: a route's map=METHOD:TEMPLATE, which turns a call into a REST
 * request for a new service that is not RPC-shaped.
 *
 *   route stock-read xmlrpc stock.get -> stock-svc map=GET:/stock/{1}
 *
 * makes stock.get("SKU 1") `GET {upstream path}/stock/SKU%201`. METHOD is
 * GET, POST, PUT, PATCH or DELETE. TEMPLATE starts with '/' and is appended
 * to the upstream URL's path with one slash between; `{N}` (N from 1 to 64)
 * stands for parameter N anywhere in the path or the query
 * (`/stock/{1}?warehouse={2}`). Literal text is what RFC 3986 allows in a
 * path and a query: no '{' or '}' outside a placeholder, no blanks, control
 * characters, '#' or non-ASCII bytes, and '%' only as a percent-encoding.
 *
 * At call time {N} becomes parameter N percent-encoded (RFC 3986 unreserved
 * characters as they are, every other byte %XX): a string as it is, an int
 * in decimal, a boolean as true or false, a double in its shortest
 * round-trip form, a dateTime as its text. The parameters the template does
 * not use are the body: GET and DELETE take none; POST, PUT and PATCH send
 * no body for none, the value itself for one (a struct is an object), and a
 * JSON array for several, mapped as the JSON contract maps them (xrjson.h).
 *
 * A parsed map is immutable and owned by the route that names it, so every
 * worker may read it at once without locks. The adapter (adapter_json.c)
 * uses it whenever the route sends a call to a kind=json upstream; a
 * kind=xmlrpc upstream ignores it, so a route can flip freely between the
 * legacy and the new service.
 */
#ifndef STRANGLER_ADAPTERS_RESTMAP_H
#define STRANGLER_ADAPTERS_RESTMAP_H

#include "common/buf.h"
#include "legacy-adapters/xmlrpc.h"

#include <stddef.h>

/* Highest parameter number a placeholder may name. */
#define RESTMAP_MAX_PARAM 64

struct restmap;

/*
 * Parses spec, "METHOD:TEMPLATE" (the text after "map="). Returns 0 and sets
 * *out to a map the caller frees with restmap_free(), or -1 with a message
 * in err naming the problem, e.g. "'{x}' is not a parameter number
 * (expected {1} to {64})"; the caller prefixes the route and the option.
 */
int restmap_parse(const char *spec, struct restmap **out, char *err, size_t errlen);

/* Frees a map; NULL is a no-op. */
void restmap_free(struct restmap *m);

/* The HTTP method, a static string such as "GET". */
const char *restmap_method(const struct restmap *m);

/*
 * Appends the request-target: base_path (see restmap_append_base_path),
 * then the template with each {N} replaced by parameter N of params (an
 * XR_ARRAY). Returns 0, or -1 with err (XR_FAULT_INVALID_PARAMS, message
 * starting "map: ") when the call lacks a parameter the template uses, a
 * placeholder's parameter is an array, a struct, nil, base64 or a double
 * that is not finite, or a parameter makes a path segment empty, "." or
 * ".." (which would address another resource). On error out holds a partial
 * text the caller must discard.
 */
int restmap_write_target(const struct restmap *m, const char *base_path,
                         const struct xr_value *params, struct buf *out, struct xr_error *err);

/*
 * Appends the JSON body: the parameters of params the template does not
 * use, nothing for none (the request has no body), the value for one, an
 * array for several. Returns 0, or -1 with err (XR_FAULT_INVALID_PARAMS)
 * when GET or DELETE would have a body, or a value has no JSON form; out
 * then holds a partial text the caller must discard.
 */
int restmap_write_body(const struct restmap *m, const struct xr_value *params, struct buf *out,
                       struct xr_error *err);

/*
 * URL pieces the RPC contract shares. restmap_append_base_path() appends the
 * path of an upstream URL without its trailing slashes and with a leading
 * one ("" and NULL append nothing), so that what follows, which starts with
 * '/', is joined with exactly one slash. restmap_append_encoded() appends len
 * bytes of s percent-encoded: RFC 3986 unreserved characters as they are,
 * every other byte as %XX.
 */
void restmap_append_base_path(struct buf *out, const char *base_path);
void restmap_append_encoded(struct buf *out, const char *s, size_t len);

#endif
