/*
 * model: the stock service's own model of the stock, built from events.
 *
 * This is the point of event interception: before any route is flipped to
 * this service, it learns the stock from what the legacy shop answers
 * (intercepted by the proxy and published as CloudEvents), so that on the
 * day stock.get is routed here it already knows every sku the shop was
 * asked about. The model maps sku -> {sku, name, qty, price}.
 *
 * The consumer thread writes (model_apply), the HTTP thread reads
 * (model_write_record, model_write_json). One mutex guards everything; each
 * call holds it briefly and never across I/O. The model also remembers the
 * ids of recently applied events (see dedup.h) so that an event delivered
 * twice is applied once, and it counts what it did for GET /model.
 */
#ifndef STRANGLER_EXAMPLES_STOCK_MODEL_H
#define STRANGLER_EXAMPLES_STOCK_MODEL_H

#include "common/buf.h"

#include <stddef.h>
#include <stdint.h>

/* Limits on what an event may put into the model (events come off the wire). */
#define MODEL_MAX_SKU_LEN  128
#define MODEL_MAX_NAME_LEN 512
#define MODEL_MAX_SKUS     100000

struct model;

enum model_op_kind {
    MODEL_OP_NONE = 0,
    MODEL_OP_UPSERT,  /* create or replace the record of sku */
    MODEL_OP_SET_QTY, /* set qty of sku, only if the sku is already known */
};

/* One change to the model, decoded from an event. Strings are borrowed. */
struct model_op {
    enum model_op_kind kind;
    const char *sku;  /* NUL-terminated, at most MODEL_MAX_SKU_LEN bytes */
    const char *name; /* UPSERT: NULL keeps the known name ("" for a new sku) */
    int64_t qty;
    int has_price; /* UPSERT: 0 keeps the known price (0.0 for a new sku) */
    double price;  /* finite */
};

enum model_apply_result {
    MODEL_APPLY_APPLIED = 0, /* new event with at least one op */
    MODEL_APPLY_IGNORED,     /* new event with no op (a fault, an unrelated result) */
    MODEL_APPLY_DUPLICATE,   /* id seen recently: nothing changed */
};

/* Creates an empty model. Free with model_free(). */
struct model *model_new(void);

/* Releases the model. NULL is a no-op. */
void model_free(struct model *m);

/*
 * Applies the ops of the event `event_id` (NUL-terminated) atomically with
 * respect to readers, unless that id was seen recently. The id is
 * remembered either way. Returns what happened; counters follow.
 */
enum model_apply_result model_apply(struct model *m, const char *event_id,
                                    const struct model_op *ops, size_t n_ops);

/* Counts a message that was not a usable event (not JSON, no id). */
void model_note_invalid(struct model *m);

/* Records whether the event feed is live (consumer subscribed). */
void model_set_feed_connected(struct model *m, int connected);

/*
 * Appends the record of `sku` (len bytes) to out as a JSON object with
 * members in the order sku, name, qty, price. Returns 0, or -1 (appending
 * nothing) when the sku is unknown.
 */
int model_write_record(struct model *m, const char *sku, size_t len, struct buf *out);

/*
 * Appends the whole model as one consistent JSON snapshot:
 *   {"skus": {"SKU": {record}, ...}, "events_applied": N,
 *    "duplicates_ignored": M, "events_ignored": K, "feed_connected": bool}
 * skus are in byte order.
 */
void model_write_json(struct model *m, struct buf *out);

#endif
