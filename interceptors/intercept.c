/*
 * intercept: the interceptor wrapper and the events interceptor.
 *
 * The wrapper applies what every interceptor shares (the on_faults rule and
 * the counters), so implementations only record. The events interceptor
 * turns an exchange into a CloudEvent and appends it to the spool; it keeps
 * no per-call state outside the call, which is what lets worker threads call
 * it concurrently (the spool serialises the appends itself).
 */
#include "interceptors/intercept.h"

#include "common/buf.h"
#include "common/clock.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/mem.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/*
 * The AMQP "type" property and the routing key are short strings (at most
 * 255 bytes, AMQP 0-9-1 §4.2.5.3). A default type is built from the method
 * name a client sent, so it can be longer; such an event could never be
 * published and would stall the publisher, so it is refused here instead.
 */
#define AMQP_SHORTSTR_MAX 255

struct interceptor {
    const struct interceptor_ops *ops;
    void *state; /* owned; released by ops->destroy */
    /* Updated by worker threads, read by the admin API: relaxed atomics, the
     * counters are independent of each other and of everything else. */
    atomic_uint_fast64_t recorded;
    atomic_uint_fast64_t skipped;
};

struct interceptor *interceptor_new(const struct interceptor_ops *ops, void *state)
{
    struct interceptor *ic = mem_calloc(1, sizeof(*ic));
    ic->ops = ops;
    ic->state = state;
    atomic_init(&ic->recorded, 0);
    atomic_init(&ic->skipped, 0);
    return ic;
}

int interceptor_record(struct interceptor *ic, const struct intercept_rule *rule,
                       const struct event_exchange *x)
{
    static const struct intercept_rule defaults = {NULL, NULL, 0, NULL};
    if (rule == NULL)
        rule = &defaults;
    if (x->response != NULL && x->response->is_fault && !rule->on_faults)
        return 0;
    if (ic->ops->record(ic->state, rule, x) < 0) {
        atomic_fetch_add_explicit(&ic->skipped, 1, memory_order_relaxed);
        return -1;
    }
    atomic_fetch_add_explicit(&ic->recorded, 1, memory_order_relaxed);
    return 0;
}

int interceptor_record_data(struct interceptor *ic, const char *type, const char *subject,
                            const char *data, size_t len)
{
    if (ic->ops->record_data == NULL ||
        ic->ops->record_data(ic->state, type, subject, data, len) < 0) {
        atomic_fetch_add_explicit(&ic->skipped, 1, memory_order_relaxed);
        return -1;
    }
    atomic_fetch_add_explicit(&ic->recorded, 1, memory_order_relaxed);
    return 0;
}

void interceptor_get_stats(struct interceptor *ic, struct interceptor_stats *out)
{
    out->recorded = atomic_load_explicit(&ic->recorded, memory_order_relaxed);
    out->skipped = atomic_load_explicit(&ic->skipped, memory_order_relaxed);
}

int interceptor_admits(struct interceptor *ic)
{
    return ic->ops->admits == NULL || ic->ops->admits(ic->state);
}

void interceptor_free(struct interceptor *ic)
{
    if (ic == NULL)
        return;
    if (ic->ops->destroy != NULL)
        ic->ops->destroy(ic->state);
    free(ic);
}

/* ---- the events interceptor ---- */

struct events_state {
    struct spool *spool; /* borrowed */
    char *source;        /* owned */
};

static int shortstr_ok(const char *what, const char *s, const char *method)
{
    if (strlen(s) <= AMQP_SHORTSTR_MAX)
        return 1;
    log_warn("interceptor events: %s for method %.64s... is longer than %d bytes; not recorded",
             what, method != NULL ? method : "", AMQP_SHORTSTR_MAX);
    return 0;
}

/*
 * The exchange as its event may show it: *copy, with params and the result
 * run through r and the response copied into *resp when it has a result.
 * The copies come from arena and share x's values. A fault is left alone:
 * its string is the server's (redact.h).
 */
static const struct event_exchange *redact_exchange(const struct redact *r,
                                                    const struct event_exchange *x,
                                                    struct event_exchange *copy,
                                                    struct xr_response *resp, struct arena *arena)
{
    *copy = *x;
    copy->params = redact_value(r, x->params, arena);
    if (x->response != NULL && !x->response->is_fault) {
        *resp = *x->response;
        /* xr_response's result is not const (the proxy builds answers in
         * place), but this copy is only read, by event_write. */
        resp->result = (struct xr_value *)redact_value(r, x->response->result, arena);
        copy->response = resp;
    }
    return copy;
}

/* Appends the event text in body to the spool. Returns 0, or -1 (the
 * spool logged why). */
static int append_event(struct events_state *st, const struct event_envelope *env, const char *key,
                        const struct buf *body)
{
    struct spool_event ev = {
        .seq = 0,
        .time_us = env->time_us,
        .id = env->id,
        .type = env->type,
        .key = key,
        .body = body->data,
        .body_len = body->len,
    };
    return spool_append(st->spool, &ev) < 0 ? -1 : 0;
}

/*
 * Builds the envelope and the event text, then appends to the spool. The
 * bufs are per call: the op runs on many worker threads at once, and a
 * thread-local buffer would outlive the worker threads that own it. So is
 * the arena for redacted copies, and it exists only for a route that
 * redacts: every other route pays nothing for the feature.
 */
static int events_record(void *state, const struct intercept_rule *rule,
                         const struct event_exchange *x)
{
    struct events_state *st = state;
    struct buf type = BUF_INIT;
    struct buf body = BUF_INIT;
    struct xr_error err = {0};
    struct event_envelope env;
    struct arena *redacted = NULL; /* copies made by redaction */
    struct event_exchange redacted_x;
    struct xr_response redacted_resp;
    int rc = -1;

    ids_new_uuid(env.id);
    env.time_us = clock_realtime_us();
    env.source = st->source;
    if (rule->type != NULL) {
        env.type = rule->type;
    } else {
        event_default_type(&type, x->method);
        env.type = buf_cstr(&type);
    }
    const char *key = rule->key != NULL ? rule->key : env.type;
    if (!shortstr_ok("event type", env.type, x->method) ||
        !shortstr_ok("routing key", key, x->method))
        goto out;

    if (rule->redact != NULL) {
        redacted = arena_new(0);
        x = redact_exchange(rule->redact, x, &redacted_x, &redacted_resp, redacted);
    }
    buf_reserve(&body, 1024);
    if (event_write(&body, &env, x, &err) < 0) {
        log_warn("interceptor events: %s: %s", x->method != NULL ? x->method : "?", err.message);
        goto out;
    }
    if (append_event(st, &env, key, &body) < 0)
        goto out;
    rc = 0;
out:
    arena_free(redacted);
    buf_dispose(&body);
    buf_dispose(&type);
    return rc;
}

/* An event the proxy raises about itself: same envelope and spool as an
 * intercepted call's, so it reaches the broker with the same guarantees
 * and in order with the calls around it. */
static int events_record_data(void *state, const char *type, const char *subject, const char *data,
                              size_t len)
{
    struct events_state *st = state;
    struct buf body = BUF_INIT;
    struct event_envelope env;
    int rc = -1;

    if (!shortstr_ok("event type", type, subject))
        goto out;
    ids_new_uuid(env.id);
    env.time_us = clock_realtime_us();
    env.source = st->source;
    env.type = type;
    buf_reserve(&body, len + 512);
    event_write_with_data(&body, &env, subject, data, len);
    if (append_event(st, &env, type, &body) < 0)
        goto out;
    rc = 0;
out:
    buf_dispose(&body);
    return rc;
}

static void events_destroy(void *state)
{
    struct events_state *st = state;
    if (st == NULL)
        return;
    free(st->source);
    free(st);
}

static int events_admits(void *state)
{
    const struct events_state *st = state;
    return !spool_refuses_calls(st->spool);
}

static const struct interceptor_ops events_ops = {
    .name = "events",
    .record = events_record,
    .admits = events_admits,
    .record_data = events_record_data,
    .destroy = events_destroy,
};

struct interceptor *interceptor_events_new(struct spool *spool, const char *source)
{
    struct events_state *st = mem_calloc(1, sizeof(*st));
    st->spool = spool;
    st->source = mem_strdup(source != NULL ? source : "strangler");
    return interceptor_new(&events_ops, st);
}
