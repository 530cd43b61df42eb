/*
 * intercept: what happens to a call a route marks `intercept`.
 *
 * An interceptor is told about each answered call on an intercepting route,
 * before the client gets the answer, and records it somewhere durable. Each
 * interceptor implements the small ops table below (in the manner of
 * HAProxy's filters); the one Strangler ships turns the exchange into a
 * CloudEvent and appends it to the spool, from where the publisher takes it
 * to RabbitMQ.
 *
 * Threads: interceptor_record() is called from worker threads concurrently;
 * implementations must be thread-safe.
 */
#ifndef STRANGLER_INTERCEPTORS_INTERCEPT_H
#define STRANGLER_INTERCEPTORS_INTERCEPT_H

#include "interceptors/event.h"
#include "interceptors/redact.h"
#include "interceptors/spool.h"

#include <stdint.h>

/* A route's interception settings, from routes.conf. */
struct intercept_rule {
    const char *type;            /* event type; NULL: "legacy.<method>" */
    const char *key;             /* routing key; NULL: the type */
    int on_faults;               /* also record calls answered with a fault */
    const struct redact *redact; /* NULL: nothing redacted; owned by the route */
};

struct interceptor;

/* `state` is the implementation's own, given to interceptor_new(). */
struct interceptor_ops {
    const char *name;
    /* Records one exchange. Returns 0, or -1 when it could not (the caller
     * counts it as skipped; the client is answered regardless). */
    int (*record)(void *state, const struct intercept_rule *rule, const struct event_exchange *x);
    /* Whether calls to record may go ahead now (NULL: always). 0 asks the
     * proxy to refuse intercepted calls before they reach an upstream, for
     * a sink that would rather stop traffic than miss an event (the spool's
     * full=refuse). */
    int (*admits)(void *state);
    /* Records an event the proxy raises about a call rather than the call
     * itself (a shadow's mismatch): type (also the routing key), subject,
     * and `data`, a JSON object of len bytes taken as it is. NULL: such
     * events are not this interceptor's business (interceptor_record_data
     * then returns -1). Returns 0, or -1 when it could not. */
    int (*record_data)(void *state, const char *type, const char *subject, const char *data,
                       size_t len);
    void (*destroy)(void *state);
};

/* Wraps an implementation; the interceptor owns state and destroys it. */
struct interceptor *interceptor_new(const struct interceptor_ops *ops, void *state);

/*
 * The events interceptor: CloudEvents into `spool` (borrowed; must outlive
 * the interceptor), with `source` as the CloudEvents source attribute. A
 * rule's redact applies to the event's params and result (redact.h); the
 * exchange itself is left as it is. Free with interceptor_free().
 */
struct interceptor *interceptor_events_new(struct spool *spool, const char *source);

/* Calls the interceptor's record op, unless rule excludes the exchange
 * (a fault without on_faults). Returns 0 when recorded or excluded. */
int interceptor_record(struct interceptor *ic, const struct intercept_rule *rule,
                       const struct event_exchange *x);

/*
 * Records an event that is not an exchange: a CloudEvent of `type`
 * (routing key the same) whose data is the JSON object `data` (len bytes,
 * written as it is; the caller has already redacted what must not leave),
 * with `subject` (may be NULL). Counted like record. Returns 0, or -1 when
 * the interceptor has no record_data op or it failed. Thread-safe.
 */
int interceptor_record_data(struct interceptor *ic, const char *type, const char *subject,
                            const char *data, size_t len);

struct interceptor_stats {
    uint64_t recorded;
    uint64_t skipped; /* could not be recorded */
};
void interceptor_get_stats(struct interceptor *ic, struct interceptor_stats *out);

/* Nonzero unless the interceptor asks that intercepted calls be refused
 * for now (see the admits op). Thread-safe. */
int interceptor_admits(struct interceptor *ic);

/* NULL is a no-op. */
void interceptor_free(struct interceptor *ic);

#endif
