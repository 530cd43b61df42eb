/*
 * redact: a route's redact=..., which keeps chosen fields out of its events.
 *
 *   route login xmlrpc user.login -> legacy intercept redact=password,card.number
 *
 * Events leave the proxy for RabbitMQ and every service that consumes them,
 * so a secret that passes through an intercepting route would otherwise be
 * copied into places that were never meant to hold it. The events
 * interceptor (intercept.c) runs the call's params and the answer's result
 * through redact_value() before it writes the event; the client and the
 * upstream still see the values as they were.
 *
 * The option is a comma-separated list of paths; a path is one or more
 * struct member names joined by '.'. A path matches a chain of struct
 * members anywhere in a value:
 *   - it may start at any struct, at any depth;
 *   - arrays are transparent: the elements of an array are walked without
 *     consuming a path segment, so `card.number` reaches into
 *     card[2].number when card is an array of structs;
 *   - the chain is unbroken: `card.number` matches member `number` of a
 *     member named `card`, as in params[0].card.number or
 *     result.customers[3].card.number, but neither a `number` outside a
 *     `card` nor card.details.number;
 *   - member names compare exactly, byte for byte (case-sensitive, as
 *     XML-RPC member names are).
 * So `password` redacts every member named `password` at any depth. The
 * whole value of a matched member becomes the string "[redacted]", even
 * when it was a struct or an array; the member keeps its name and its place
 * among its siblings. A value's own member name (when it is itself a struct
 * member) is not part of any chain: matching starts inside it.
 *
 * Redaction covers the params and the result. A fault is never redacted:
 * its string is what the server said, and a route whose faults might reveal
 * a secret should not record faults (on_faults).
 *
 * A parsed redact is immutable and owned by the route that names it, so
 * every worker thread may use it at once without locks.
 */
#ifndef STRANGLER_INTERCEPTORS_REDACT_H
#define STRANGLER_INTERCEPTORS_REDACT_H

#include "common/mem.h"
#include "legacy-adapters/xmlrpc.h"

#include <stddef.h>

/* What a redacted value becomes: an XR_STRING with this text. */
#define REDACT_PLACEHOLDER "[redacted]"

struct redact;

/*
 * Parses list, the option value after "redact=", e.g. "password,card.number"
 * (NUL-terminated; copied, so the caller may free it afterwards). Returns 0
 * and sets *out to a redact the caller frees with redact_free(), or -1 with
 * a one-line reason in why (whylen bytes, truncated to fit) and *out
 * untouched. The reasons are
 *     empty path in 'a,,b'              (the whole list quoted)
 *     empty member name in 'card..number'  (the offending path quoted)
 * the caller prefixes the route and the option.
 */
int redact_parse(const char *list, struct redact **out, char *why, size_t whylen);

/* Frees a redact. NULL is a no-op. */
void redact_free(struct redact *r);

/*
 * The value v with every matching member's value replaced by the string
 * "[redacted]" (see the top of this file for what matches).
 *
 * Returns v itself when nothing in it matches: no copy is made and nothing
 * is allocated. Otherwise returns a copy of only what must change: the
 * containers on the way down to each redacted member, and shallow copies of
 * their other elements (a list's links live in its elements), each sharing
 * its unchanged subtree with v. Every new node is allocated from arena, so
 * the result lives until the arena is freed or reset; as it shares nodes,
 * member names and strings with v, v must live as long. v itself is never
 * modified, so it can be read concurrently and sent on unchanged.
 *
 * v may be NULL (returns NULL). Recursion follows the value's nesting,
 * which the XML-RPC parser bounds (struct xr_limits).
 */
const struct xr_value *redact_value(const struct redact *r, const struct xr_value *v,
                                    struct arena *arena);

#endif
