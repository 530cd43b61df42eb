/*
 * event: reading an intercepted CloudEvent into changes to the stock model.
 *
 * The proxy publishes one CloudEvent (structured JSON mode, DESIGN.md
 * "Events") per intercepted call. This module holds the service's rules for
 * what such an event means for the stock, and nothing else:
 *
 *   - an event whose data.upstream is not the system of record the service
 *     learns from (normally "legacy") changes nothing: once a route is
 *     flipped to this service, the events of its own answers must not feed
 *     back into the model they were read from;
 *   - data.result is null or missing (the call was a fault): no change;
 *   - data.result is a stock record, an object with a string "sku" and an
 *     integer "qty" >= 0 (stock.get, stock.adjust): upsert the sku with qty,
 *     and name and price when present;
 *   - data.method is "stock.list" and data.result an array: upsert each
 *     element that is a stock record;
 *   - data.method is "orders.create": for each object in result.items with a
 *     string "sku" and an integer "remaining" >= 0, set that sku's qty to
 *     remaining if the model knows the sku;
 *   - anything else: no change.
 *
 * Values that break the model's limits (over-long strings, NUL bytes,
 * non-finite prices) are skipped, item by item.
 */
#ifndef STRANGLER_EXAMPLES_STOCK_EVENT_H
#define STRANGLER_EXAMPLES_STOCK_EVENT_H

#include "examples/stock-service/model.h"

#include <stddef.h>

/* Bounds on what is read off the wire. */
#define EVENT_MAX_BODY   (1024 * 1024)
#define EVENT_MAX_DEPTH  64
#define EVENT_MAX_ID_LEN 256

struct json_object;

/* A decoded event. Strings in ops and id point into `root`. */
struct event {
    const char *id;
    struct model_op *ops;
    size_t n_ops;
    struct json_object *root;
};

/*
 * Parses body (len bytes) and derives the model ops by the rules above,
 * learning only from events whose data.upstream is `learn_from`.
 * Returns 0 and fills ev (release it with event_dispose()), or -1 with a
 * static message in *err when the body is not a JSON object with a string
 * "id"; ev is then left empty.
 */
int event_decode(struct event *ev, const char *body, size_t len, const char *learn_from,
                 const char **err);

/* Releases what event_decode() filled in; ev is empty afterwards. */
void event_dispose(struct event *ev);

#endif
