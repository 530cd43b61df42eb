/*
 * xrjson: the XML-RPC <-> JSON mapping of the JSON contract (DESIGN.md).
 *
 *   int, i4, i8       <-> number without fraction or exponent
 *   boolean           <-> true / false
 *   string            <-> string
 *   double            <-> number, always written with a fraction or exponent
 *                         (1.0, not 1) so it reads back as a double
 *   nil               <-> null
 *   array             <-> array
 *   struct            <-> object (member order kept both ways)
 *   base64            <-> {"$base64": "..."}   (standard alphabet, padded)
 *   dateTime.iso8601  <-> {"$datetime": "19991231T23:59:59"}
 *
 * JSON -> XML-RPC: an integer that fits in 32 bits becomes <int>, a larger
 * one <i8>; an integer outside 64 bits is an error. An object whose only
 * member is "$base64" or "$datetime" is that type; any other object is a
 * struct.
 *
 * Error messages name the path of the offending value, e.g.
 * "params[1].price: NaN has no JSON form".
 */
#ifndef STRANGLER_ADAPTERS_XRJSON_H
#define STRANGLER_ADAPTERS_XRJSON_H

#include "common/buf.h"
#include "common/mem.h"
#include "legacy-adapters/xmlrpc.h"

#include <stddef.h>

/*
 * Appends `v` as JSON text. `path` names v in messages ("params", "result").
 * Returns 0, or -1 with err (XR_FAULT_INVALID_PARAMS) when a value has no
 * JSON form (NaN, infinities); `out` then holds a partial text the caller
 * must discard.
 */
int xrjson_write_value(struct buf *out, const struct xr_value *v, const char *path,
                       struct xr_error *err);

/*
 * Parses JSON text, strictly as RFC 8259 defines it, into an XML-RPC value
 * tree allocated in the arena. The tree holds copies: the text may be freed
 * as soon as this returns. An object keeps one member per name, in the first
 * one's place with the last one's value. Nesting deeper than lim->max_depth
 * is refused. Returns 0 and sets *out, or -1 with err: XR_FAULT_PARSE for
 * text that is not JSON ("invalid JSON at offset N: ...", with the line and
 * column when the text has several lines), XR_FAULT_INTERNAL for JSON that
 * has no XML-RPC form (integers beyond 64 bits, numbers beyond the double
 * range, a "$base64" that is not base64).
 */
int xrjson_parse(struct arena *a, const char *json, size_t len, const struct xr_limits *lim,
                 struct xr_value **out, struct xr_error *err);

/* Draws the secret that keeps member-name lookups unfloodable; xr_init()
 * calls it once at start-up. Main thread, before any parse. */
void xrjson_seed_hash(void);

#endif
