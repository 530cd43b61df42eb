/*
 * shadow: copies of shadowed calls, sent to the candidate and compared with
 * the primary's answer (see shadow.h).
 *
 * A copy's life: shadow_start() sends it; the candidate's exchange ends
 * (answer or error) and, independently, the request tells the primary's
 * outcome. Once both are known, finish() runs from the worker's loop, as
 * an event of its own rather than inside whichever callback came last: the
 * client's answer is already on its way by then, and nothing up the stack
 * (an upstream callback, the request's own code) can still be using the
 * copy when it is freed.
 */
#include "proxy/shadow.h"

#include "common/clock.h"
#include "common/jsonw.h"
#include "common/log.h"
#include "common/mem.h"
#include "interceptors/intercept.h"
#include "interceptors/redact.h"
#include "legacy-adapters/adapter.h"
#include "legacy-adapters/xrdiff.h"
#include "legacy-adapters/xrjson.h"
#include "proxy/darklaunch.h"
#include "proxy/guard.h"
#include "proxy/metrics.h"
#include "proxy/upstream.h"
#include "proxy/worker.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#define MISMATCH_TYPE "strangler.shadow.mismatch"

enum side_state {
    SIDE_PENDING = 0,
    SIDE_ANSWERED, /* an answer arrived (for the candidate: usable or not, read in finish) */
    SIDE_FAILED,   /* nothing to compare */
};

/*
 * One copy. The worker owns it (w->shadows, a doubly linked list); the
 * request that started it holds a borrowed pointer until it has called
 * shadow_primary_answered() or shadow_primary_failed(). Everything below
 * is the copy's own, except route and candidate, which live in the
 * snapshot wc that it holds.
 */
struct shadow {
    struct shadow *prev, *next;
    struct worker *w;
    struct worker_config *wc;
    const struct route *route;
    const struct upstream_def *candidate;
    struct arena *arena; /* the call, both answers */
    struct xr_call call;
    char *request_id;  /* arena */
    char *http_method; /* arena */
    size_t http_method_len;
    struct buf head, body; /* kept for one resend on a stale connection */
    struct upconn *uc;     /* the candidate's exchange, while it runs */
    int retried;
    int status;
    char *content_type; /* arena */
    struct buf answer;  /* the candidate's body */
    uint64_t sent_ns, latency_us;
    char why[256]; /* why the candidate gave no answer */
    enum side_state candidate_state, primary_state;
    struct xr_response primary;
    struct event *finish;
};

static const struct upstream_handler candidate_handler;

static uint64_t now_ms(void)
{
    return clock_monotonic_ns() / 1000000;
}

/* A deep copy of v into a: the request's values live in its arena, which
 * goes when the request ends, long before the candidate may answer.
 * Recursion follows the value's nesting, which the parsers bound
 * (xr_limits). */
static struct xr_value *copy_value(struct arena *a, const struct xr_value *v)
{
    if (v == NULL)
        return NULL;
    struct xr_value *c = arena_alloc(a, sizeof(*c));
    *c = *v;
    c->next = NULL;
    if (v->name != NULL)
        c->name = arena_strndup(a, v->name, v->name_len);
    switch (v->type) {
    case XR_STRING:
    case XR_DATETIME:
    case XR_BASE64:
        if (v->u.str.ptr != NULL)
            c->u.str.ptr = arena_strndup(a, v->u.str.ptr, v->u.str.len);
        break;
    case XR_ARRAY:
    case XR_STRUCT:
        c->u.list.first = c->u.list.last = NULL;
        c->u.list.count = 0;
        for (const struct xr_value *e = v->u.list.first; e != NULL; e = e->next)
            xr_value_append(c, copy_value(a, e));
        break;
    default:
        break;
    }
    return c;
}

static void copy_response(struct arena *a, const struct xr_response *from, struct xr_response *to)
{
    *to = *from;
    to->result = copy_value(a, from->result);
    if (from->fault_string != NULL)
        to->fault_string = arena_strndup(a, from->fault_string, from->fault_string_len);
}

int shadow_admits(struct worker *w, const struct worker_config *wc, const struct route *r)
{
    if (!w->draining && w->nshadows < wc->cfg->limits.max_shadows)
        return 1;
    metrics_bump(&r->counters->shadow_dropped);
    return 0;
}

static void on_finish(evutil_socket_t fd, short what, void *arg);

static void shadow_free(struct shadow *s)
{
    struct worker *w = s->w;
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        w->shadows = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    w->nshadows--;
    if (s->uc != NULL)
        upstream_cancel(s->uc);
    if (s->finish != NULL)
        event_free(s->finish);
    buf_dispose(&s->head);
    buf_dispose(&s->body);
    buf_dispose(&s->answer);
    arena_free(s->arena);
    worker_config_release(w, s->wc);
    free(s);
}

/* Both outcomes known: compare from the loop, outside every callback. */
static void maybe_finish(struct shadow *s)
{
    if (s->candidate_state != SIDE_PENDING && s->primary_state != SIDE_PENDING)
        event_active(s->finish, EV_TIMEOUT, 1);
}

static void send_copy(struct shadow *s, int fresh)
{
    struct iovec iov[2] = {{s->head.data, s->head.len}, {s->body.data, s->body.len}};
    struct upstream_pool *pool = s->wc->pools[s->candidate->index];
    s->sent_ns = clock_monotonic_ns();
    s->uc = upstream_send(pool, iov, s->body.len ? 2 : 1, s->http_method, s->http_method_len, fresh,
                          &candidate_handler, s);
}

struct shadow *shadow_start(struct worker *w, struct shadow_request *req)
{
    struct shadow *s = mem_calloc(1, sizeof(*s));
    s->w = w;
    s->wc = worker_config_retain(req->wc);
    s->route = req->route;
    s->candidate = req->route->second;
    s->arena = arena_new(4096);
    s->call.method = arena_strndup(s->arena, req->call->method, req->call->method_len);
    s->call.method_len = req->call->method_len;
    s->call.params = copy_value(s->arena, req->call->params);
    s->request_id = arena_strndup(s->arena, req->request_id, strlen(req->request_id));
    s->http_method = arena_strndup(s->arena, req->http_method, req->http_method_len);
    s->http_method_len = req->http_method_len;
    s->head = *req->head;
    *req->head = (struct buf)BUF_INIT;
    s->body = *req->body;
    *req->body = (struct buf)BUF_INIT;
    s->finish = event_new(w->base, -1, 0, on_finish, s);
    s->next = w->shadows;
    if (w->shadows != NULL)
        w->shadows->prev = s;
    w->shadows = s;
    w->nshadows++;
    metrics_bump(&s->route->counters->shadow_sent);
    send_copy(s, 0);
    return s;
}

void shadow_primary_answered(struct shadow *s, const struct xr_response *answer)
{
    copy_response(s->arena, answer, &s->primary);
    s->primary_state = SIDE_ANSWERED;
    maybe_finish(s);
}

void shadow_primary_failed(struct shadow *s)
{
    s->primary_state = SIDE_FAILED;
    maybe_finish(s);
}

void shadow_drop_all(struct worker *w)
{
    if (w->shadows != NULL)
        log_info("worker %u: dropping %u shadow cop%s still in flight", w->id, w->nshadows,
                 w->nshadows == 1 ? "y" : "ies");
    while (w->shadows != NULL)
        shadow_free(w->shadows);
}

/* --- The candidate's exchange ---------------------------------------------- */

static void candidate_failed(struct shadow *s, const char *why)
{
    s->candidate_state = SIDE_FAILED;
    snprintf(s->why, sizeof(s->why), "%s", why);
    maybe_finish(s);
}

static void on_candidate_head(void *ctx, const struct http_response *resp)
{
    struct shadow *s = ctx;
    s->status = resp->status;
    const struct http_header *ct = http_find_header(&resp->msg, "content-type");
    if (ct != NULL)
        s->content_type = arena_strndup(s->arena, ct->value, ct->value_len);
}

static int on_candidate_body(void *ctx, const char *data, size_t len)
{
    struct shadow *s = ctx;
    size_t max = s->wc->cfg->limits.max_body_size;
    if (s->answer.len + len > max) {
        upstream_cancel(s->uc);
        s->uc = NULL;
        candidate_failed(s, "its answer exceeds max_body_size");
        return 0;
    }
    buf_append(&s->answer, data, len);
    return 0;
}

static void on_candidate_done(void *ctx)
{
    struct shadow *s = ctx;
    s->uc = NULL;
    s->latency_us = (clock_monotonic_ns() - s->sent_ns) / 1000;
    s->candidate_state = SIDE_ANSWERED;
    maybe_finish(s);
}

static void on_candidate_error(void *ctx, enum upstream_error err, int stale, const char *detail)
{
    struct shadow *s = ctx;
    char why[256];
    s->uc = NULL;
    /* A reused connection the candidate had closed: the copy never reached
     * it, probably. Sent once more only when repeating it is harmless, as
     * for any other request (RFC 9110 9.2.2); a readonly route says so. */
    if (stale && !s->retried &&
        (s->route->readonly || http_method_idempotent(s->http_method, s->http_method_len))) {
        s->retried = 1;
        buf_reset(&s->answer);
        send_copy(s, 1);
        return;
    }
    snprintf(why, sizeof(why), "%s (%s)", upstream_error_text(err), detail);
    candidate_failed(s, why);
}

static const struct upstream_handler candidate_handler = {
    on_candidate_head,
    on_candidate_body,
    on_candidate_done,
    on_candidate_error,
};

/* --- Comparing -------------------------------------------------------------- */

/*
 * The candidate's answer as an XML-RPC response, read as a direct route
 * to it would read it: through its adapter, or as a methodResponse.
 * Returns 0, or -1 with why when it is unusable: an HTTP error or not
 * XML-RPC from an xmlrpc candidate, a fault the adapter had to make
 * (darklaunch_made_by_proxy) from a new service.
 */
static int read_candidate(struct shadow *s, struct xr_response *out)
{
    const struct config *cfg = s->wc->cfg;
    const struct upstream_def *u = s->candidate;
    if (u->adapter != NULL) {
        struct adapter_call ac = {
            .call = &s->call,
            .route = s->route->name,
            .upstream = u->name,
            .base_path = u->base_path,
            .request_id = s->request_id,
            .limits = &cfg->xr_limits,
            .map = s->route->map,
        };
        struct adapter_answer ans = {
            .status = s->status,
            .content_type = s->content_type,
            .content_type_len = s->content_type ? strlen(s->content_type) : 0,
            .body = s->answer.data ? s->answer.data : "",
            .body_len = s->answer.len,
        };
        u->adapter->decode(s->arena, &ac, &ans, out);
        if (!darklaunch_made_by_proxy(out, s->route->name, u->name))
            return 0;
        snprintf(s->why, sizeof(s->why), "%.*s", (int)out->fault_string_len, out->fault_string);
        return -1;
    }
    struct xr_error err;
    if (s->status != 200) {
        snprintf(s->why, sizeof(s->why), "answered HTTP %d", s->status);
        return -1;
    }
    if (xr_parse_response(s->arena, s->answer.data ? s->answer.data : "", s->answer.len,
                          &cfg->xr_limits, out, &err) != 0) {
        snprintf(s->why, sizeof(s->why), "the answer is not an XML-RPC response: %.200s",
                 err.message);
        return -1;
    }
    return 0;
}

/* A value as the event shows it (redacted by the caller), or null when it
 * has no JSON form (a NaN): one odd value must not cost the whole event. */
static void put_value(struct buf *out, const struct xr_value *v, const char *path)
{
    struct buf one = BUF_INIT;
    struct xr_error err;
    if (v == NULL || xrjson_write_value(&one, v, path, &err) != 0)
        buf_append_str(out, "null");
    else
        buf_append(out, one.data, one.len);
    buf_dispose(&one);
}

/* {"upstream": U, "result": V} or {"upstream": U, "fault": {...}}. */
static void put_side(struct buf *out, const char *upstream, const struct xr_response *r,
                     const struct redact *rd, struct arena *a)
{
    buf_append_str(out, "{\"upstream\":");
    jsonw_cstring(out, upstream);
    if (r->is_fault) {
        buf_append_str(out, ",\"fault\":{\"faultCode\":");
        jsonw_i64(out, r->fault_code);
        buf_append_str(out, ",\"faultString\":");
        jsonw_string(out, r->fault_string ? r->fault_string : "", r->fault_string_len);
        buf_append_str(out, "}}");
        return;
    }
    buf_append_str(out, ",\"result\":");
    put_value(out, redact_value(rd, r->result, a), "result");
    buf_append_char(out, '}');
}

/*
 * The strangler.shadow.mismatch event: what was asked, both answers and
 * where they differ, with the route's redact= applied to the params and
 * both results as for its intercepted events (faults are the servers'
 * words and stay; redact.h).
 */
static void raise_mismatch(struct shadow *s, const struct xr_response *cand,
                           const struct xrdiff_result *d)
{
    struct interceptor *ic = s->w->interceptor;
    const struct redact *rd = s->route->rule.redact;
    struct buf data = BUF_INIT;
    if (ic == NULL)
        return;
    buf_append_str(&data, "{\"route\":");
    jsonw_cstring(&data, s->route->name);
    buf_append_str(&data, ",\"method\":");
    jsonw_string(&data, s->call.method, s->call.method_len);
    buf_append_str(&data, ",\"params\":");
    put_value(&data, redact_value(rd, s->call.params, s->arena), "params");
    buf_append_str(&data, ",\"request_id\":");
    jsonw_cstring(&data, s->request_id);
    buf_append_str(&data, ",\"primary\":");
    put_side(&data, s->route->upstream->name, &s->primary, rd, s->arena);
    buf_append_str(&data, ",\"candidate\":");
    put_side(&data, s->candidate->name, cand, rd, s->arena);
    buf_append_str(&data, ",\"paths\":[");
    for (size_t i = 0; i < d->npaths; i++) {
        if (i > 0)
            buf_append_char(&data, ',');
        jsonw_cstring(&data, d->paths[i]);
    }
    buf_append_str(&data, "],\"differences\":");
    buf_append_u64(&data, d->count);
    buf_append_char(&data, '}');
    if (interceptor_record_data(ic, MISMATCH_TYPE, s->call.method, data.data, data.len) != 0)
        log_warn("request %s: route %s: the %s event could not be recorded", s->request_id,
                 s->route->name, MISMATCH_TYPE);
    buf_dispose(&data);
}

/*
 * Both outcomes are known: count, compare, raise, report to the guard.
 * The guard hears of the candidate only: on an errors guard, a candidate
 * without a usable answer is bad and one with an answer good (compared or
 * not); on a mismatches guard, only compared answers count, bad when they
 * differ.
 */
static void on_finish(evutil_socket_t fd, short what, void *arg)
{
    struct shadow *s = arg;
    const struct route *r = s->route;
    struct route_counters *c = r->counters;
    struct xr_response cand;
    (void)fd;
    (void)what;

    int usable = s->candidate_state == SIDE_ANSWERED && read_candidate(s, &cand) == 0;
    if (!usable) {
        metrics_bump(&c->shadow_errors);
        if (!r->guard.on_mismatches)
            guard_record(r, 1, now_ms());
        log_info("request %s: route %s: shadow %s gave no usable answer: %s", s->request_id,
                 r->name, s->candidate->name, s->why);
    } else if (s->primary_state != SIDE_ANSWERED) {
        metrics_bump(&c->shadow_errors);
        if (!r->guard.on_mismatches)
            guard_record(r, 0, now_ms());
    } else {
        struct xrdiff_options opt = {
            .tolerance = r->tolerance,
            .ignore = (const char *const *)r->ignore,
        };
        struct xrdiff_result d;
        int differ = xrdiff_compare(&s->primary, &cand, &opt, &d);
        atomic_fetch_add_explicit(&c->shadow_latency_us, s->latency_us, memory_order_relaxed);
        if (differ) {
            metrics_bump(&c->shadow_mismatches);
            log_debug("request %s: route %s: shadow %s differs in %zu place%s, first %s",
                      s->request_id, r->name, s->candidate->name, d.count, d.count == 1 ? "" : "s",
                      d.npaths > 0 ? d.paths[0] : "?");
            raise_mismatch(s, &cand, &d);
        } else {
            metrics_bump(&c->shadow_matches);
        }
        guard_record(r, r->guard.on_mismatches ? differ : 0, now_ms());
        xrdiff_result_dispose(&d);
    }
    shadow_free(s);
}
