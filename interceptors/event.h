/*
 * event: an intercepted exchange as a CloudEvent (structured JSON mode).
 *
 * New services build their models from these events, so the envelope is a
 * contract (DESIGN.md, "Events"):
 *   {"specversion": "1.0", "id": "<uuid>", "source": "<source>",
 *    "type": "legacy.stock.adjust", "time": "2026-11-21T10:00:00.123Z",
 *    "datacontenttype": "application/json", "subject": "stock.adjust",
 *    "data": {"method", "params", "result", "route", "upstream", "status",
 *             "duration_ms", "request_id"}}
 * params and result use the JSON contract's mapping (xrjson.h). When the
 * answer was a fault, "result" is null and data carries
 * "fault": {"faultCode": N, "faultString": "..."}.
 */
#ifndef STRANGLER_INTERCEPTORS_EVENT_H
#define STRANGLER_INTERCEPTORS_EVENT_H

#include "common/buf.h"
#include "common/ids.h"
#include "legacy-adapters/xmlrpc.h"

#include <stdint.h>

/* One call and its answer, as the proxy saw them. Borrowed pointers. */
struct event_exchange {
    const char *method;                 /* NUL-terminated */
    const struct xr_value *params;      /* XR_ARRAY */
    const struct xr_response *response; /* result or fault */
    const char *route;
    const char *upstream;
    int status;         /* HTTP status the client got */
    double duration_ms; /* from the request's arrival to the answer */
    const char *request_id;
};

/* The envelope attributes that are not taken from the exchange. */
struct event_envelope {
    char id[IDS_UUID_LEN + 1];
    const char *type;   /* NUL-terminated */
    const char *source; /* URI-reference naming this proxy */
    int64_t time_us;    /* wall clock, microseconds since the epoch */
};

/*
 * Appends the CloudEvent JSON for x to out. Returns 0, or -1 with err when a
 * value has no JSON form (out then holds partial text to discard).
 */
int event_write(struct buf *out, const struct event_envelope *env, const struct event_exchange *x,
                struct xr_error *err);

/*
 * Appends a CloudEvent with the same envelope whose data is the JSON object
 * `data` (len bytes, written as it is): for what the proxy reports about
 * itself rather than about a call, such as strangler.route.changed.
 */
void event_write_with_data(struct buf *out, const struct event_envelope *env, const char *subject,
                           const char *data, size_t len);

/* Appends the default type of a call, "legacy.<method>". */
void event_default_type(struct buf *out, const char *method);

#endif
