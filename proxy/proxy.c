#include "proxy/proxy.h"

#include "common/buf.h"
#include "common/clock.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/mem.h"
#include "interceptors/event.h"
#include "interceptors/intercept.h"
#include "legacy-adapters/adapter.h"
#include "legacy-adapters/multicall.h"
#include "legacy-adapters/xmlrpc.h"
#include "proxy/accesslog.h"
#include "proxy/client.h"
#include "proxy/darklaunch.h"
#include "proxy/guard.h"
#include "proxy/inventory.h"
#include "proxy/metrics.h"
#include "proxy/router.h"
#include "proxy/shadow.h"
#include "proxy/upstream.h"
#include "proxy/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How the answer reaches the client. */
enum answer_mode {
    ANSWER_STREAM = 0, /* relayed as it arrives: plain forwarding */
    ANSWER_BUFFER,     /* read whole first: an interceptor or adapter needs it */
};

/*
 * One exchange with an upstream on behalf of a transaction. A request that
 * is forwarded has one; a call for a new service has one, through the
 * adapter; a multicall split across targets has one per part: one
 * system.multicall per xmlrpc upstream carrying the calls routed there, one
 * adapted call per call routed to a new service.
 */
struct leg {
    struct txn *t;
    const struct route *route; /* for a multicall part: its first call's route */
    const struct upstream_def *upstream;
    struct upconn *uc; /* in progress, or NULL */
    int sent;          /* a request went out (an adapted call may fail before) */
    struct buf head;   /* the request head sent */
    struct buf body;   /* the answer's body, when it is read whole */
    char *content_type;
    int status;
    int retried;
    /* No answer came (set by leg_fail for an upstream error): the calls'
     * outcome; METRICS_OUTCOME_OK when the leg has an answer to judge. */
    enum metrics_outcome failure;

    /* Legs that carry calls (adapted, or parts of a multicall). */
    struct xr_call call; /* what the leg asks */
    struct buf request;  /* the part's XML body, for an xmlrpc part */
    struct adapter_request areq;
    size_t *members; /* multicall: which of the client's calls (arena) */
    size_t nmembers;
    struct xr_response answer; /* once it ended */
};

/*
 * One request and its answer. Owned by the client connection, which frees
 * it with proxy_txn_free(); everything it allocates hangs off it (the
 * arena, the legs and their buffers) and goes in that one place.
 */
struct txn {
    struct client *client;
    struct worker *w;
    struct worker_config *wc; /* the snapshot this request runs on, held */
    const struct http_request *req;
    const char *body;
    size_t body_len;
    struct arena *arena;
    uint64_t start_ns;
    const char *request_id; /* NUL-terminated, in the arena */
    size_t request_id_len;

    /* The XML-RPC call, when the body is one. */
    int call_read;       /* the body was looked at (parsing is skipped when no route needs it) */
    int full_read;       /* a full parse was tried: never again, whatever it gave */
    int is_call;         /* at least the method name was read */
    int unreadable_call; /* a <methodCall> whose method name could not be read */
    int params_ok;       /* ...and the whole call parsed */
    struct xr_call call;
    struct xr_error call_error;

    /* A system.multicall, routed by the calls inside it. */
    int multicall;         /* the request is one: the fields below are set */
    struct mc_call *calls; /* NULL when it has no calls */
    size_t ncalls;
    const struct route **call_routes; /* NULL for a call no route takes */
    struct xr_response *call_answers;

    const struct route *route; /* NULL for a multicall split across targets */
    /* Where the call or request goes: the route's upstream, except for a
     * dark-launched call (below): a canary's chosen side, a fallback's
     * backup once the primary gave no answer. */
    const struct upstream_def *upstream;
    struct leg *legs;
    size_t nlegs;
    size_t legs_sent; /* started; one at a time, in the client's order */
    size_t legs_ended;
    int starting_legs; /* inside send_legs(): it answers, not leg_ended() */

    enum answer_mode mode;
    struct buf answer_head; /* status line and headers, without framing */
    int answer_has_body;    /* not a 204, 304 or answer to HEAD */
    int chunked_to_client;  /* ANSWER_STREAM: re-chunking for the client */
    int head_sent;
    int upstream_paused;

    /* Dark launching (config.h, enum route_mode): a single call, fully
     * read, on a shadow, canary or fallback route. A multicall's calls are
     * sent to their routes' upstreams, as on a direct route. */
    int dark;
    /* Read the answer whole, even when nothing intercepts: a shadow
     * compares it, a fallback may still retry after a cut, a guard judges
     * it. */
    int keep_answer;
    int fell_back; /* the call went to the fallback's backup */
    /* The copy this call started, until told the primary's outcome
     * (borrowed: the worker owns it). */
    struct shadow *shadow;

    /* What the client got, reported when the transaction ends (report()):
     * to the metrics, the method inventory and the access log. */
    int64_t start_us; /* wall clock */
    int status;       /* the HTTP status sent; 0: none */
    int finished;     /* the whole answer was handed to the client */
    uint64_t bytes_out;
    enum metrics_outcome outcome;
    int has_fault;
    int64_t fault_code;
    int fault_code_known;
    enum metrics_outcome *call_outcomes; /* a split multicall's, per call */
    struct buf sniffed;                  /* the start of a streamed answer, until sniffed */
    int sniffing;
};

static const struct upstream_handler forward_handler;
static const struct upstream_handler leg_handler;

static const struct config *cfg_of(const struct txn *t)
{
    return t->wc->cfg;
}

/* "Content-Length: N\r\n", without printf: it is on every request's path. */
static void append_content_length(struct buf *b, uint64_t n)
{
    buf_append_str(b, "Content-Length: ");
    buf_append_u64(b, n);
    buf_append(b, "\r\n", 2);
}

static void append_header(struct buf *b, const char *name, size_t name_len, const char *value,
                          size_t value_len)
{
    buf_reserve(b, name_len + value_len + 4);
    buf_append(b, name, name_len);
    buf_append(b, ": ", 2);
    buf_append(b, value, value_len);
    buf_append(b, "\r\n", 2);
}

/* The Connection header, if the default for the client's version is not
 * what will happen. */
static void append_connection(struct txn *t, struct buf *b)
{
    if (!client_keeps_alive(t->client))
        buf_append_str(b, "Connection: close\r\n");
    else if (t->req->msg.version < 11)
        buf_append_str(b, "Connection: keep-alive\r\n");
}

static void end_response(struct txn *t)
{
    t->finished = 1;
    client_end_response(t->client);
}

/* Sends a complete answer made by the proxy (head fields + body) and ends
 * the response. The transaction may be gone when this returns. */
static void send_answer(struct txn *t, int status, const char *content_type, const char *body,
                        size_t body_len)
{
    struct buf head = BUF_INIT;
    size_t date_len;
    const char *date = worker_date_header(t->w, &date_len);
    buf_appendf(&head, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n", status,
                http_status_reason(status), content_type, body_len);
    buf_append(&head, date, date_len);
    append_header(&head, "X-Request-Id", 12, t->request_id, t->request_id_len);
    append_connection(t, &head);
    buf_append(&head, "\r\n", 2);
    /* An answer to HEAD has the headers of the answer to GET, no body. */
    int with_body = !http_token_eq(t->req->method, t->req->method_len, "HEAD");
    struct iovec iov[2] = {{head.data, head.len}, {(void *)body, body_len}};
    client_sendv(t->client, iov, with_body ? 2 : 1);
    buf_dispose(&head);
    t->status = status;
    t->bytes_out = with_body ? body_len : 0;
    end_response(t);
}

static void note_fault(struct txn *t, int64_t code)
{
    t->has_fault = 1;
    t->fault_code = code;
    t->fault_code_known = 1;
}

static void reply_fault(struct txn *t, int64_t code, const char *message)
{
    note_fault(t, code);
    struct buf xml = BUF_INIT;
    xr_write_fault(&xml, code, message, strlen(message));
    send_answer(t, 200, "text/xml", xml.data, xml.len);
    buf_dispose(&xml);
}

static void reply_text(struct txn *t, int status, const char *message)
{
    struct buf text = BUF_INIT;
    buf_appendf(&text, "strangler: %s\n", message);
    send_answer(t, status, "text/plain; charset=utf-8", text.data, text.len);
    buf_dispose(&text);
}

static void read_call(struct txn *t, int flags);
static int client_sent_call(const struct txn *t);

/* A failure the proxy answers itself: an XML-RPC fault for a call (with
 * HTTP 200, as XML-RPC requires), an HTTP status for anything else. When no
 * route needed the body read, it is read now, on this rare path, to tell. */
static void reply_error(struct txn *t, int status, int64_t fault_code, const char *message)
{
    log_info("request %s: %s", t->request_id, message);
    if (!t->call_read)
        read_call(t, XR_PARSE_METHOD_ONLY);
    if (client_sent_call(t))
        reply_fault(t, fault_code, message);
    else
        reply_text(t, status, message);
}

static double elapsed_ms(const struct txn *t)
{
    return (double)(clock_monotonic_ns() - t->start_ns) / 1e6;
}

/*
 * Counts an answered call against its route and records it if the route
 * intercepts; u is the upstream that answered (a canary's side, a
 * fallback's backup). Called before the client gets the answer: once this
 * returns the event is in the spool, so a crash after the answer cannot
 * lose it.
 */
static void account_call(struct txn *t, const struct route *r, const struct upstream_def *u,
                         const char *method, const struct xr_value *params,
                         const struct xr_response *answer)
{
    if (answer->is_fault)
        metrics_bump(&r->counters->faults);
    if (answer->is_fault && u->adapter != NULL)
        metrics_count_adapter_fault(u->counters, answer->fault_code);
    if (!r->intercept || params == NULL || t->w->interceptor == NULL)
        return;
    struct event_exchange x = {
        .method = method,
        .params = params,
        .response = answer,
        .route = r->name,
        .upstream = u->name,
        .status = 200,
        .duration_ms = elapsed_ms(t),
        .request_id = t->request_id,
    };
    if (answer->is_fault && !r->rule.on_faults)
        return;
    if (interceptor_record(t->w->interceptor, &r->rule, &x) == 0) {
        metrics_bump(&r->counters->events);
        atomic_fetch_add_explicit(&t->w->stats.events_recorded, 1, memory_order_relaxed);
    } else {
        atomic_fetch_add_explicit(&t->w->stats.events_skipped, 1, memory_order_relaxed);
    }
}

static enum metrics_outcome outcome_of_error(enum upstream_error err)
{
    return err == UPSTREAM_ERR_TIMEOUT || err == UPSTREAM_ERR_CONNECT_TIMEOUT
               ? METRICS_OUTCOME_TIMEOUT
               : METRICS_OUTCOME_UPSTREAM_ERROR;
}

/* The kind strangler_upstream_errors_total counts err under. */
static enum metrics_upstream_error error_kind(enum upstream_error err)
{
    switch (err) {
    case UPSTREAM_ERR_CONNECT_TIMEOUT:
        return METRICS_UPSTREAM_CONNECT_TIMEOUT;
    case UPSTREAM_ERR_TIMEOUT:
        return METRICS_UPSTREAM_TIMEOUT;
    case UPSTREAM_ERR_CLOSED:
        return METRICS_UPSTREAM_CLOSED;
    case UPSTREAM_ERR_PROTOCOL:
        return METRICS_UPSTREAM_PROTOCOL;
    case UPSTREAM_ERR_CONNECT:
    case UPSTREAM_ERR_NONE:
        break;
    }
    return METRICS_UPSTREAM_CONNECT;
}

/* An upstream gave no answer, for the reason `kind`. */
static void count_upstream_error(struct txn *t, const struct route *r, const struct upstream_def *u,
                                 enum metrics_upstream_error kind)
{
    metrics_count_upstream_error(u->counters, kind);
    metrics_bump(&r->counters->errors);
    atomic_fetch_add_explicit(&t->w->stats.upstream_errors, 1, memory_order_relaxed);
}

static void upstream_failed(struct txn *t, enum upstream_error err, const char *detail)
{
    char message[512];
    struct leg *leg = &t->legs[0];
    int timeout = err == UPSTREAM_ERR_TIMEOUT || err == UPSTREAM_ERR_CONNECT_TIMEOUT;
    count_upstream_error(t, leg->route, leg->upstream, error_kind(err));
    t->outcome = outcome_of_error(err);
    snprintf(message, sizeof(message), "route %s: upstream %s: %s (%s)", leg->route->name,
             leg->upstream->name, upstream_error_text(err), detail);
    if (t->head_sent) {
        /* Part of the answer is already out: the only honest signal left
         * is to cut the connection. */
        log_warn("request %s: %s; answer cut short", t->request_id, message);
        client_abort(t->client);
        return;
    }
    reply_error(t, timeout ? 504 : 502, XR_FAULT_TRANSPORT, message);
}

/* The one leg of a call or request that goes to one upstream: t->upstream. */
static struct leg *add_leg(struct txn *t)
{
    t->legs = arena_calloc(t->arena, sizeof(*t->legs));
    t->nlegs = 1;
    t->legs[0].t = t;
    t->legs[0].route = t->route;
    t->legs[0].upstream = t->upstream;
    return t->legs;
}

static void leg_dispose(struct leg *leg)
{
    if (leg->uc != NULL)
        upstream_cancel(leg->uc);
    buf_dispose(&leg->head);
    buf_dispose(&leg->body);
    buf_dispose(&leg->request);
    free(leg->content_type);
    adapter_request_dispose(&leg->areq);
}

/* --- Forwarding to an xmlrpc (plain HTTP) upstream ------------------------ */

/*
 * The request head for an xmlrpc upstream: the client's request line and
 * end-to-end headers as they came, minus hop-by-hop headers and the
 * framing (the body is re-framed with Content-Length, body_len bytes), plus
 * X-Forwarded-For. Host comes first, as the client sent it (or the
 * upstream's when an HTTP/1.0 client sent none); X-Request-Id is the
 * transaction's, which is the client's unless it had to be made. When the
 * answer is to be read (`buffered`), it is asked for uncompressed. A
 * shadow copy (`shadow`) says so with X-Strangler-Shadow: 1, and only the
 * proxy may say it: a client's own X-Strangler-Shadow is left out of it.
 */
static void build_upstream_head(struct txn *t, const struct upstream_def *u, size_t body_len,
                                int buffered, int shadow, struct buf *b)
{
    const struct http_request *req = t->req;
    struct buf xff = BUF_INIT;

    buf_reserve(b, req->msg.head_len + 128);
    buf_append(b, req->method, req->method_len);
    buf_append_char(b, ' ');
    buf_append(b, req->target, req->target_len);
    buf_append(b, " HTTP/1.1\r\n", 11);
    if (req->host != NULL)
        append_header(b, "Host", 4, req->host, req->host_len);
    else
        append_header(b, "Host", 4, u->host_header, strlen(u->host_header));
    for (size_t i = 0; i < req->msg.nheaders; i++) {
        const struct http_header *h = &req->msg.headers[i];
        if (h->hop_by_hop || h->id == HTTP_H_CONTENT_LENGTH || h->id == HTTP_H_EXPECT ||
            h->id == HTTP_H_HOST || h->id == HTTP_H_X_REQUEST_ID)
            continue;
        if (h->id == HTTP_H_X_FORWARDED_FOR) {
            buf_append(&xff, h->value, h->value_len);
            buf_append(&xff, ", ", 2);
            continue;
        }
        if (buffered && h->id == HTTP_H_ACCEPT_ENCODING)
            continue;
        /* Only the proxy says a call is a shadow: a client's own header
         * would have a candidate skip real writes. */
        if (h->id == HTTP_H_X_STRANGLER_SHADOW)
            continue;
        append_header(b, h->name, h->name_len, h->value, h->value_len);
    }
    buf_append_str(&xff, client_address(t->client));
    append_header(b, "X-Forwarded-For", 15, xff.data, xff.len);
    buf_dispose(&xff);
    append_header(b, "X-Request-Id", 12, t->request_id, t->request_id_len);
    if (shadow)
        buf_append_str(b, SHADOW_HEADER);
    if (body_len > 0 || http_token_eq(req->method, req->method_len, "POST") ||
        http_token_eq(req->method, req->method_len, "PUT") ||
        http_token_eq(req->method, req->method_len, "PATCH"))
        append_content_length(b, body_len);
    buf_append(b, "\r\n", 2);
}

static void send_leg(struct leg *leg, const struct upstream_handler *h, const char *method,
                     size_t method_len, const char *body, size_t body_len, int fresh)
{
    struct txn *t = leg->t;
    struct iovec iov[2] = {{leg->head.data, leg->head.len}, {(void *)body, body_len}};
    struct upstream_pool *pool = t->wc->pools[leg->upstream->index];
    leg->sent = 1;
    leg->uc = upstream_send(pool, iov, body_len ? 2 : 1, method, method_len, fresh, h, leg);
}

/* Whether some call of the request goes through an intercepting route with
 * readable parameters, so the answer must be read to record it. */
static int intercepts(const struct txn *t)
{
    if (!t->multicall)
        return t->route->intercept && t->params_ok;
    for (size_t i = 0; i < t->ncalls; i++)
        if (t->call_routes[i]->intercept)
            return 1;
    return 0;
}

/* Whether the answer must be read whole before the client gets it: to
 * record it, or for dark launching (struct txn, keep_answer). */
static int must_read_answer(const struct txn *t)
{
    /* The inventory counts each call of a multicall with its own outcome,
     * which only its answer, split, tells. */
    return intercepts(t) || t->keep_answer || (t->multicall && t->w->inventory != NULL);
}

static uint64_t now_ms(void)
{
    return clock_monotonic_ns() / 1000000;
}

/*
 * The outcome of a dark-launched call on leg's upstream: `answer` is what
 * it answered, or NULL when it gave nothing usable (no answer, an HTTP
 * error, not XML-RPC, a fault the proxy made in its place). Reported to
 * the rollback guard when leg went to the route's new side (a shadow's
 * candidate reports its own), and to the shadow copy as the primary's
 * answer. Called at most once per leg, before the client is answered.
 */
static void dark_outcome(struct txn *t, const struct leg *leg, const struct xr_response *answer)
{
    if (!t->dark)
        return;
    const struct route *r = t->route;
    /* A call that never went out (the adapter could not express it) says
     * nothing about the service. */
    if (r->mode != ROUTE_SHADOW && leg->sent && leg->upstream == route_new_side(r))
        guard_record(r, answer == NULL, now_ms());
    if (t->shadow != NULL) {
        struct shadow *s = t->shadow;
        t->shadow = NULL;
        if (answer != NULL)
            shadow_primary_answered(s, answer);
        else
            shadow_primary_failed(s);
    }
}

/* Sends the request as it is to t->upstream, an xmlrpc upstream. */
static void forward(struct txn *t)
{
    struct leg *leg = add_leg(t);
    t->mode = must_read_answer(t) ? ANSWER_BUFFER : ANSWER_STREAM;
    if (t->route->intercept && t->is_call && !t->params_ok) {
        /* Forwarded as it is, but without readable parameters there is no
         * event to make: counted, so the gap is visible. */
        log_info("request %s: route %s: call %s not intercepted: %s", t->request_id, t->route->name,
                 t->call.method, t->call_error.message);
        atomic_fetch_add_explicit(&t->w->stats.events_skipped, 1, memory_order_relaxed);
    }
    build_upstream_head(t, leg->upstream, t->body_len, t->mode == ANSWER_BUFFER, 0, &leg->head);
    send_leg(leg, &forward_handler, t->req->method, t->req->method_len, t->body, t->body_len, 0);
}

/* The upstream's status line and end-to-end headers, for the client. The
 * framing headers are the proxy's to write (it may re-frame the body), except
 * for answers without a body, whose Content-Length describes a body the
 * client did not ask for (HEAD) and must pass as it is. */
static void build_answer_head(struct txn *t, const struct http_response *resp)
{
    struct buf *b = &t->answer_head;
    buf_reserve(b, resp->msg.head_len + 64);
    /* The status is 100..999: http.c reads exactly three digits. */
    char status[13] = "HTTP/1.1 000 ";
    status[9] = (char)('0' + resp->status / 100);
    status[10] = (char)('0' + resp->status / 10 % 10);
    status[11] = (char)('0' + resp->status % 10);
    buf_append(b, status, 13);
    if (resp->reason_len > 0)
        buf_append(b, resp->reason, resp->reason_len);
    else
        buf_append_str(b, http_status_reason(resp->status));
    buf_append(b, "\r\n", 2);
    for (size_t i = 0; i < resp->msg.nheaders; i++) {
        const struct http_header *h = &resp->msg.headers[i];
        if (h->hop_by_hop)
            continue;
        if (h->id == HTTP_H_CONTENT_LENGTH && resp->msg.framing != HTTP_FRAMING_NONE)
            continue;
        append_header(b, h->name, h->name_len, h->value, h->value_len);
    }
}

/* Chooses how the streamed body is framed for the client and completes the
 * head, which goes out with the first bytes of the body (send_streamed): one
 * write instead of two for the common answer that comes in one piece, and
 * nothing sent yet if the upstream fails before its body starts. */
static void stream_head(struct txn *t, const struct http_response *resp)
{
    struct buf *b = &t->answer_head;
    switch (resp->msg.framing) {
    case HTTP_FRAMING_LENGTH:
        append_content_length(b, resp->msg.content_length);
        break;
    case HTTP_FRAMING_CHUNKED:
    case HTTP_FRAMING_EOF:
        if (t->req->msg.version >= 11) {
            t->chunked_to_client = 1;
            buf_append_str(b, "Transfer-Encoding: chunked\r\n");
        } else {
            /* An HTTP/1.0 client knows no chunks: the end of the body is
             * the end of the connection. */
            client_close_after_response(t->client);
        }
        break;
    case HTTP_FRAMING_NONE:
        break;
    }
    append_connection(t, b);
    buf_append(b, "\r\n", 2);
}

/* Sends a span of a streamed body (len 0: its end), framed for the client,
 * after the head if it has not gone yet. */
static void send_streamed(struct txn *t, const char *data, size_t len, int last)
{
    struct iovec iov[5];
    int n = 0;
    char size_line[24];
    if (!t->head_sent) {
        iov[n++] = (struct iovec){t->answer_head.data, t->answer_head.len};
        t->head_sent = 1;
    }
    if (len > 0 && t->chunked_to_client) {
        int k = snprintf(size_line, sizeof(size_line), "%zx\r\n", len);
        iov[n++] = (struct iovec){size_line, (size_t)k};
        iov[n++] = (struct iovec){(void *)data, len};
        iov[n++] = (struct iovec){"\r\n", 2};
    } else if (len > 0) {
        iov[n++] = (struct iovec){(void *)data, len};
    }
    if (last && t->chunked_to_client)
        iov[n++] = (struct iovec){"0\r\n\r\n", 5};
    if (n > 0)
        client_sendv(t->client, iov, n);
}

static void on_forward_head(void *ctx, const struct http_response *resp)
{
    struct leg *leg = ctx;
    struct txn *t = leg->t;
    leg->status = resp->status;
    t->status = resp->status;
    t->outcome = resp->status >= 500   ? METRICS_OUTCOME_SERVER_ERROR
                 : resp->status >= 400 ? METRICS_OUTCOME_CLIENT_ERROR
                                       : METRICS_OUTCOME_OK;
    /* A streamed answer is not read; a glance at its start tells a fault
     * for the figures and the log. */
    t->sniffing = t->mode == ANSWER_STREAM && t->is_call && resp->status == 200;
    t->answer_has_body = resp->msg.framing != HTTP_FRAMING_NONE;
    build_answer_head(t, resp);
    if (t->mode == ANSWER_STREAM)
        stream_head(t, resp);
}

/* Buffers a span of a leg's answer. Returns 0, or -1 when it outgrew
 * max_body_size (the leg's exchange is then cancelled). */
static int buffer_body(struct leg *leg, const char *data, size_t len)
{
    size_t max = cfg_of(leg->t)->limits.max_body_size;
    if (leg->body.len + len > max) {
        upstream_cancel(leg->uc);
        leg->uc = NULL;
        return -1;
    }
    buf_append(&leg->body, data, len);
    return 0;
}

static void too_large(struct txn *t, const struct leg *leg, char *message, size_t size)
{
    snprintf(message, size, "route %s: upstream %s: answer exceeds max_body_size (%zu bytes)",
             leg->route->name, leg->upstream->name, cfg_of(t)->limits.max_body_size);
}

/* Bytes of a streamed answer's start kept until a glance can tell a fault. */
#define SNIFF_MAX 1024

static void sniff_answer(struct txn *t, const char *data, size_t len)
{
    if (t->sniffed.len > 0 || len < SNIFF_MAX) {
        size_t room = SNIFF_MAX - t->sniffed.len;
        buf_append(&t->sniffed, data, len < room ? len : room);
        data = t->sniffed.data;
        len = t->sniffed.len;
    }
    int64_t code;
    int known;
    enum xr_sniff r = xr_sniff_response(data, len, &code, &known);
    if (r == XR_SNIFF_MORE && len < SNIFF_MAX)
        return;
    t->sniffing = 0;
    buf_dispose(&t->sniffed);
    if (r == XR_SNIFF_FAULT) {
        t->outcome = METRICS_OUTCOME_FAULT;
        t->has_fault = 1;
        t->fault_code = code;
        t->fault_code_known = known;
    }
}

static int on_forward_body(void *ctx, const char *data, size_t len)
{
    struct leg *leg = ctx;
    struct txn *t = leg->t;
    if (t->mode == ANSWER_BUFFER) {
        if (buffer_body(leg, data, len) != 0) {
            char message[300];
            too_large(t, leg, message, sizeof(message));
            dark_outcome(t, leg, NULL);
            count_upstream_error(t, leg->route, leg->upstream, METRICS_UPSTREAM_TOO_LARGE);
            t->outcome = METRICS_OUTCOME_UPSTREAM_ERROR;
            reply_error(t, 502, XR_FAULT_TRANSPORT, message);
        }
        return 0;
    }
    t->bytes_out += len;
    if (t->sniffing)
        sniff_answer(t, data, len);
    send_streamed(t, data, len, 0);
    t->upstream_paused = client_pending(t->client) > CLIENT_HIGH_WATER;
    return t->upstream_paused;
}

/* A call's answer, for the figures and the log. */
static void judge_answer(struct txn *t, const struct xr_response *answer)
{
    if (!answer->is_fault)
        return;
    t->outcome = METRICS_OUTCOME_FAULT;
    note_fault(t, answer->fault_code);
}

/* Reads the answer to what was forwarded, read whole, and accounts for
 * each call in it: the call, or every call of a multicall. A dark-launched
 * call's outcome is told (dark_outcome) whatever the answer was. */
static void account_forwarded(struct txn *t, struct leg *leg)
{
    struct xr_response answer;
    struct xr_error err;
    if (leg->status != 200) {
        dark_outcome(t, leg, NULL);
        return; /* an HTTP error is not an answered call */
    }
    if (xr_parse_response(t->arena, leg->body.data ? leg->body.data : "", leg->body.len,
                          &cfg_of(t)->xr_limits, &answer, &err) != 0) {
        dark_outcome(t, leg, NULL);
        if (!intercepts(t))
            return;
        log_warn("request %s: route %s: cannot read the answer of %s to intercept it: %s",
                 t->request_id, t->route->name, t->call.method, err.message);
        atomic_fetch_add_explicit(&t->w->stats.events_skipped, 1, memory_order_relaxed);
        return;
    }
    dark_outcome(t, leg, &answer);
    if (!t->multicall) {
        judge_answer(t, &answer);
        account_call(t, t->route, leg->upstream, t->call.method, t->call.params, &answer);
        return;
    }
    struct xr_response *each = arena_alloc(t->arena, t->ncalls * sizeof(*each));
    mc_split_answers(t->arena, &answer, t->ncalls, t->route->name, each);
    t->call_outcomes = arena_calloc(t->arena, t->ncalls * sizeof(*t->call_outcomes));
    for (size_t i = 0; i < t->ncalls; i++) {
        t->call_outcomes[i] = each[i].is_fault ? METRICS_OUTCOME_FAULT : METRICS_OUTCOME_OK;
        account_call(t, t->call_routes[i], t->upstream, t->calls[i].method, t->calls[i].params,
                     &each[i]);
    }
}

static void send_buffered(struct txn *t, struct leg *leg)
{
    struct buf *b = &t->answer_head;
    /* Without a body the upstream's own Content-Length (if any) went
     * through in the head, as it must (a 304's describes the resource). */
    if (t->answer_has_body)
        append_content_length(b, leg->body.len);
    append_connection(t, b);
    buf_append(b, "\r\n", 2);
    struct iovec iov[2] = {{b->data, b->len}, {leg->body.data, leg->body.len}};
    client_sendv(t->client, iov, 2);
    t->bytes_out = leg->body.len;
    end_response(t);
}

static void on_forward_done(void *ctx)
{
    struct leg *leg = ctx;
    struct txn *t = leg->t;
    leg->uc = NULL;
    if (t->mode == ANSWER_BUFFER) {
        account_forwarded(t, leg);
        send_buffered(t, leg);
        return;
    }
    send_streamed(t, NULL, 0, 1);
    end_response(t);
}

static void fall_back(struct txn *t, enum upstream_error err, const char *detail);
static int may_fall_back(const struct txn *t);

static void on_forward_error(void *ctx, enum upstream_error err, int stale, const char *detail)
{
    struct leg *leg = ctx;
    struct txn *t = leg->t;
    leg->uc = NULL;
    /* A keep-alive connection the upstream closed just as we reused it:
     * the request never reached the application, but nothing proves it, so
     * only a request that is safe to repeat is sent again (RFC 9110 9.2.2).
     * XML-RPC calls are POSTs and get the error instead. */
    if (stale && !leg->retried && http_method_idempotent(t->req->method, t->req->method_len)) {
        leg->retried = 1;
        send_leg(leg, &forward_handler, t->req->method, t->req->method_len, t->body, t->body_len,
                 1);
        return;
    }
    dark_outcome(t, leg, NULL);
    if (may_fall_back(t)) {
        fall_back(t, err, detail); /* leg is gone */
        return;
    }
    upstream_failed(t, err, detail);
}

static const struct upstream_handler forward_handler = {
    on_forward_head,
    on_forward_body,
    on_forward_done,
    on_forward_error,
};

/* --- Legs that carry calls: adapted calls and parts of a multicall -------- */

static struct adapter_call adapter_call_of(const struct leg *leg)
{
    struct adapter_call ac = {
        .call = &leg->call,
        .route = leg->route->name,
        .upstream = leg->upstream->name,
        .base_path = leg->upstream->base_path,
        .request_id = leg->t->request_id,
        .limits = &cfg_of(leg->t)->xr_limits,
        .map = leg->route->map,
    };
    return ac;
}

static void reply_response(struct txn *t, const struct xr_response *r)
{
    struct buf xml = BUF_INIT;
    xr_write_response(&xml, r);
    send_answer(t, 200, "text/xml", xml.data, xml.len);
    buf_dispose(&xml);
}

/* "route R: upstream U", the start of every fault made for a leg's
 * calls; a multicall part that carries the calls of several routes names
 * only the upstream. */
static void leg_prefix(const struct leg *leg, struct buf *out)
{
    int one_route = 1;
    for (size_t i = 0; i < leg->nmembers && one_route; i++)
        one_route = leg->t->call_routes[leg->members[i]] == leg->route;
    if (one_route)
        buf_appendf(out, "route %s: ", leg->route->name);
    buf_appendf(out, "upstream %s", leg->upstream->name);
}

/*
 * What became of an ended leg's call, labelled as it would be on the
 * legacy: a fault the adapter made in the service's place is the service's
 * HTTP error (a 503 page is a server_error either way), a bad answer
 * (upstream_error), or a call it could not send (refused). A part of a
 * multicall is judged call by call once split (answer_calls).
 */
static enum metrics_outcome leg_outcome(const struct leg *leg)
{
    if (leg->failure != METRICS_OUTCOME_OK)
        return leg->failure;
    if (leg->upstream->adapter == NULL || !leg->answer.is_fault)
        return leg->answer.is_fault ? METRICS_OUTCOME_FAULT : METRICS_OUTCOME_OK;
    if (!darklaunch_made_by_proxy(&leg->answer, leg->route->name, leg->upstream->name))
        return METRICS_OUTCOME_FAULT;
    if (!leg->sent)
        return METRICS_OUTCOME_REFUSED;
    return leg->status >= 500   ? METRICS_OUTCOME_SERVER_ERROR
           : leg->status >= 400 ? METRICS_OUTCOME_CLIENT_ERROR
                                : METRICS_OUTCOME_UPSTREAM_ERROR;
}

/* Every call of the request has its answer: account for each, then answer
 * the client, with one methodResponse or the multicall's array. */
static void answer_calls(struct txn *t)
{
    if (!t->multicall) {
        struct leg *leg = &t->legs[0];
        /* A fault the proxy made for the service (no answer, an answer it
         * could not read) is no answer of the service's. */
        dark_outcome(t, leg,
                     darklaunch_made_by_proxy(&leg->answer, leg->route->name, leg->upstream->name)
                         ? NULL
                         : &leg->answer);
        account_call(t, leg->route, leg->upstream, t->call.method, t->call.params, &leg->answer);
        judge_answer(t, &leg->answer);
        t->outcome = leg_outcome(leg);
        reply_response(t, &leg->answer);
        return;
    }
    t->call_outcomes = arena_calloc(t->arena, t->ncalls * sizeof(*t->call_outcomes));
    for (size_t i = 0; i < t->nlegs; i++) {
        struct leg *leg = &t->legs[i];
        for (size_t k = 0; k < leg->nmembers; k++)
            t->call_outcomes[leg->members[k]] =
                leg->upstream->adapter != NULL ? leg_outcome(leg) : leg->failure;
        if (leg->upstream->adapter != NULL) {
            t->call_answers[leg->members[0]] = leg->answer;
            continue;
        }
        struct xr_response *part = arena_alloc(t->arena, leg->nmembers * sizeof(*part));
        struct buf who = BUF_INIT;
        leg_prefix(leg, &who);
        mc_split_answers(t->arena, &leg->answer, leg->nmembers, buf_cstr(&who), part);
        buf_dispose(&who);
        for (size_t k = 0; k < leg->nmembers; k++)
            t->call_answers[leg->members[k]] = part[k];
    }
    for (size_t i = 0; i < t->ncalls; i++) {
        if (t->call_routes[i] == NULL)
            continue;
        if (t->call_outcomes[i] == METRICS_OUTCOME_OK && t->call_answers[i].is_fault)
            t->call_outcomes[i] = METRICS_OUTCOME_FAULT;
        account_call(t, t->call_routes[i], t->call_routes[i]->upstream, t->calls[i].method,
                     t->calls[i].params, &t->call_answers[i]);
    }
    struct buf xml = BUF_INIT;
    mc_write_response(t->arena, &xml, t->call_answers, t->ncalls);
    send_answer(t, 200, "text/xml", xml.data, xml.len);
    buf_dispose(&xml);
}

static void send_legs(struct txn *t);

static void leg_ended(struct leg *leg)
{
    struct txn *t = leg->t;
    t->legs_ended++;
    if (!t->starting_legs)
        send_legs(t);
}

/* The leg could not be completed: its calls get a fault that says why. */
static void leg_fail(struct leg *leg, int64_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void leg_fail(struct leg *leg, int64_t code, const char *fmt, ...)
{
    struct buf b = BUF_INIT;
    va_list ap;
    leg_prefix(leg, &b);
    buf_append_str(&b, ": ");
    va_start(ap, fmt);
    buf_vappendf(&b, fmt, ap);
    va_end(ap);
    leg->answer.is_fault = 1;
    leg->answer.result = NULL;
    leg->answer.fault_code = code;
    leg->answer.fault_string = arena_strndup(leg->t->arena, b.data, b.len);
    leg->answer.fault_string_len = b.len;
    buf_dispose(&b);
    leg_ended(leg);
}

/* The upstream gave no answer: counted against every route whose calls the
 * leg carried, and the calls' outcome says so. */
static void count_leg_error(struct leg *leg, enum metrics_upstream_error kind,
                            enum metrics_outcome failure)
{
    struct txn *t = leg->t;
    leg->failure = failure;
    if (leg->nmembers == 0) {
        count_upstream_error(t, leg->route, leg->upstream, kind);
        return;
    }
    metrics_count_upstream_error(leg->upstream->counters, kind);
    for (size_t i = 0; i < leg->nmembers; i++)
        metrics_bump(&t->call_routes[leg->members[i]]->counters->errors);
    atomic_fetch_add_explicit(&t->w->stats.upstream_errors, 1, memory_order_relaxed);
}

/* An xmlrpc part's answer: a methodResponse, or a fault that says why not. */
static void read_part_answer(struct leg *leg)
{
    struct txn *t = leg->t;
    struct xr_error err;
    if (leg->status != 200) {
        leg_fail(leg, XR_FAULT_TRANSPORT, "HTTP %d", leg->status);
        return;
    }
    if (xr_parse_response(t->arena, leg->body.data ? leg->body.data : "", leg->body.len,
                          &cfg_of(t)->xr_limits, &leg->answer, &err) != 0) {
        leg_fail(leg, err.code, "the answer is not an XML-RPC response: %s", err.message);
        return;
    }
    leg_ended(leg);
}

static void on_leg_head(void *ctx, const struct http_response *resp)
{
    struct leg *leg = ctx;
    leg->status = resp->status;
    const struct http_header *ct = http_find_header(&resp->msg, "content-type");
    if (ct != NULL)
        leg->content_type = mem_strndup(ct->value, ct->value_len);
}

static int on_leg_body(void *ctx, const char *data, size_t len)
{
    struct leg *leg = ctx;
    if (buffer_body(leg, data, len) != 0) {
        count_leg_error(leg, METRICS_UPSTREAM_TOO_LARGE, METRICS_OUTCOME_UPSTREAM_ERROR);
        leg_fail(leg, XR_FAULT_TRANSPORT, "answer exceeds max_body_size (%zu bytes)",
                 cfg_of(leg->t)->limits.max_body_size);
    }
    return 0;
}

static void on_leg_done(void *ctx)
{
    struct leg *leg = ctx;
    leg->uc = NULL;
    if (leg->upstream->adapter == NULL) {
        read_part_answer(leg);
        return;
    }
    struct adapter_call ac = adapter_call_of(leg);
    struct adapter_answer ans = {
        .status = leg->status,
        .content_type = leg->content_type,
        .content_type_len = leg->content_type ? strlen(leg->content_type) : 0,
        .body = leg->body.data ? leg->body.data : "",
        .body_len = leg->body.len,
    };
    leg->upstream->adapter->decode(leg->t->arena, &ac, &ans, &leg->answer);
    leg_ended(leg);
}

/* Sends an adapted leg's request (again, on a fresh connection). */
static void send_adapted_request(struct leg *leg, int fresh)
{
    send_leg(leg, &leg_handler, leg->areq.method, strlen(leg->areq.method), leg->areq.body.data,
             leg->areq.body.len, fresh);
}

static void on_leg_error(void *ctx, enum upstream_error err, int stale, const char *detail)
{
    struct leg *leg = ctx;
    leg->uc = NULL;
    /* As when forwarding: a reused connection that died before any answer
     * byte is tried once more only for a request that is safe to repeat
     * (RFC 9110 9.2.2), which here means a REST-mapped GET, PUT or DELETE;
     * RPC-contract calls and multicall parts are POSTs. */
    if (stale && !leg->retried && leg->upstream->adapter != NULL &&
        http_method_idempotent(leg->areq.method, strlen(leg->areq.method))) {
        leg->retried = 1;
        send_adapted_request(leg, 1);
        return;
    }
    if (may_fall_back(leg->t)) {
        struct txn *t = leg->t;
        dark_outcome(t, leg, NULL);
        fall_back(t, err, detail); /* leg is gone */
        return;
    }
    count_leg_error(leg, error_kind(err), outcome_of_error(err));
    log_info("request %s: route %s: upstream %s: %s (%s)", leg->t->request_id, leg->route->name,
             leg->upstream->name, upstream_error_text(err), detail);
    leg_fail(leg, XR_FAULT_TRANSPORT, "%s (%s)", upstream_error_text(err), detail);
}

static const struct upstream_handler leg_handler = {
    on_leg_head,
    on_leg_body,
    on_leg_done,
    on_leg_error,
};

/* The head of an adapter's request to new service u; a shadow copy
 * (`shadow`) says so with X-Strangler-Shadow: 1. */
static void build_adapted_head(const struct upstream_def *u, const struct adapter_request *areq,
                               int shadow, struct buf *h)
{
    buf_appendf(h, "%s ", areq->method);
    buf_append(h, areq->target.data, areq->target.len);
    buf_appendf(h, " HTTP/1.1\r\nHost: %s\r\n", u->host_header);
    buf_append(h, areq->headers.data, areq->headers.len);
    if (shadow)
        buf_append_str(h, SHADOW_HEADER);
    /* No Content-Length on a request without a body whose method defines
     * no meaning for one (a mapped GET or DELETE; RFC 9110 8.6). */
    if (areq->body.len > 0 ||
        (strcmp(areq->method, "GET") != 0 && strcmp(areq->method, "DELETE") != 0))
        append_content_length(h, areq->body.len);
    buf_append(h, "\r\n", 2);
}

/* Sends a leg's call through its upstream's adapter. */
static void send_adapted(struct leg *leg)
{
    struct adapter_call ac = adapter_call_of(leg);
    struct xr_error err;
    adapter_request_init(&leg->areq);
    if (leg->upstream->adapter->encode(&ac, &leg->areq, &err) != 0) {
        leg_fail(leg, err.code, "%s", err.message);
        return;
    }
    build_adapted_head(leg->upstream, &leg->areq, 0, &leg->head);
    send_adapted_request(leg, 0);
}

/* Sends a leg's system.multicall part to its xmlrpc upstream, on the path
 * and with the headers the client used. */
static void send_part(struct leg *leg)
{
    struct txn *t = leg->t;
    xr_write_call(&leg->request, leg->call.method, leg->call.method_len, leg->call.params);
    build_upstream_head(t, leg->upstream, leg->request.len, 1, 0, &leg->head);
    send_leg(leg, &leg_handler, t->req->method, t->req->method_len, leg->request.data,
             leg->request.len, 0);
}

/*
 * Sends the next leg once the one before it ended: legs run one after the
 * other, in the client's order (see assign_legs), which also bounds what
 * one multicall holds open to a single upstream exchange. Answers the
 * client once every leg ended. A leg that fails while it is being sent ends
 * inside this loop, and the next one goes at once.
 */
static void send_legs(struct txn *t)
{
    t->starting_legs = 1;
    while (t->legs_sent < t->nlegs && t->legs_sent == t->legs_ended) {
        struct leg *leg = &t->legs[t->legs_sent++];
        if (leg->upstream->adapter != NULL)
            send_adapted(leg);
        else
            send_part(leg);
    }
    t->starting_legs = 0;
    if (t->legs_ended == t->nlegs)
        answer_calls(t);
}

/* Sends the call through t->upstream's adapter. */
static void adapt(struct txn *t)
{
    if (!t->params_ok) {
        /* Only a call the adapter can read may go to a new service; the
         * legacy would have been sent the bytes as they were. */
        char message[400];
        snprintf(message, sizeof(message), "route %s: %s", t->route->name,
                 client_sent_call(t) ? t->call_error.message
                                     : "the route needs an XML-RPC call and the body is not one");
        t->outcome = METRICS_OUTCOME_REFUSED;
        if (client_sent_call(t))
            reply_fault(t, t->call_error.code, message);
        else
            reply_text(t, 400, message);
        return;
    }
    t->mode = ANSWER_BUFFER;
    struct leg *leg = add_leg(t);
    leg->call = t->call;
    send_legs(t);
}

/* --- system.multicall ----------------------------------------------------- */

#define NO_LEG ((size_t)-1)

/*
 * Which leg each call goes on. A multicall's calls run in order, each
 * seeing the effects of the ones before (stock taken by one is gone for the
 * next), so the legs follow the client's order: a run of consecutive calls
 * for one xmlrpc upstream is one leg (a smaller system.multicall, which the
 * legacy runs in order), and each call for a new service is a leg of its
 * own. Returns the number of legs; calls no route takes get NO_LEG (they
 * run nowhere, so they do not break a run).
 */
static size_t assign_legs(struct txn *t, size_t *leg_of_call)
{
    size_t n = 0;
    const struct upstream_def *run = NULL; /* the xmlrpc upstream of the open run */
    for (size_t i = 0; i < t->ncalls; i++) {
        const struct route *r = t->call_routes[i];
        if (r == NULL) {
            leg_of_call[i] = NO_LEG;
            continue;
        }
        if (r->upstream->adapter != NULL || r->upstream != run)
            n++;
        run = r->upstream->adapter == NULL ? r->upstream : NULL;
        leg_of_call[i] = n - 1;
    }
    return n;
}

/* What a leg asks: the call itself for a new service, a smaller
 * system.multicall of its calls for an xmlrpc upstream. */
static void make_leg_call(struct txn *t, struct leg *leg)
{
    if (leg->upstream->adapter != NULL) {
        const struct mc_call *c = &t->calls[leg->members[0]];
        leg->call.method = c->method;
        leg->call.method_len = c->method_len;
        leg->call.params = c->params;
        return;
    }
    leg->call.method = "system.multicall";
    leg->call.method_len = strlen(leg->call.method);
    leg->call.params = mc_build_params(t->arena, t->calls, leg->members, leg->nmembers);
}

/*
 * Splits a multicall whose calls go to different targets into legs run in
 * the client's order (assign_legs). A call no route takes was answered
 * -32601 in its place already.
 */
static void split_multicall(struct txn *t)
{
    size_t *leg_of_call = arena_alloc(t->arena, (t->ncalls ? t->ncalls : 1) * sizeof(size_t));
    t->nlegs = assign_legs(t, leg_of_call);
    t->legs = arena_calloc(t->arena, (t->nlegs ? t->nlegs : 1) * sizeof(*t->legs));
    for (size_t i = 0; i < t->ncalls; i++) {
        if (leg_of_call[i] == NO_LEG)
            continue;
        struct leg *leg = &t->legs[leg_of_call[i]];
        if (leg->nmembers++ == 0) {
            leg->t = t;
            leg->route = t->call_routes[i];
            leg->upstream = leg->route->upstream;
        }
    }
    for (size_t k = 0; k < t->nlegs; k++) {
        t->legs[k].members = arena_alloc(t->arena, t->legs[k].nmembers * sizeof(size_t));
        t->legs[k].nmembers = 0;
    }
    for (size_t i = 0; i < t->ncalls; i++) {
        if (leg_of_call[i] != NO_LEG) {
            struct leg *leg = &t->legs[leg_of_call[i]];
            leg->members[leg->nmembers++] = i;
        }
    }
    for (size_t k = 0; k < t->nlegs; k++)
        make_leg_call(t, &t->legs[k]);
    send_legs(t);
}

/* --- The pipeline ---------------------------------------------------------- */

/* An XML-RPC call is a POST whose body starts with markup; a request with
 * a Content-Encoding is not read (its body is not XML as it stands). */
static int may_be_call(const struct txn *t)
{
    const struct http_request *req = t->req;
    if (!http_token_eq(req->method, req->method_len, "POST") || t->body_len == 0)
        return 0;
    const struct http_header *ce = http_find_header(&req->msg, "content-encoding");
    if (ce != NULL && !http_token_eq(ce->value, ce->value_len, "identity"))
        return 0;
    size_t i = 0;
    if (t->body_len >= 3 && memcmp(t->body, "\xef\xbb\xbf", 3) == 0)
        i = 3; /* UTF-8 byte order mark */
    while (i < t->body_len &&
           (t->body[i] == ' ' || t->body[i] == '\t' || t->body[i] == '\r' || t->body[i] == '\n'))
        i++;
    return i < t->body_len && t->body[i] == '<';
}

/*
 * Reads the call once, as deeply as `flags` asks: the whole call when some
 * route adapts or intercepts, else only the method name. A call whose
 * parameters cannot be read still has its method name read, so that it is
 * routed like any call: a legacy route gets its bytes untouched, an adapter
 * route answers a fault.
 */
/* Opening <methodName> tags (prefixed or not) in the body. A call that
 * names its method twice is read by the legacy by its last name (Python's
 * reader does so) but routed by its first: it could slip past its route. */
static unsigned count_method_names(const char *body, size_t len)
{
    static const char tag[] = "methodName";
    const size_t n = sizeof(tag) - 1;
    unsigned count = 0;
    const char *p = body, *end = body + len;
    while ((p = memmem(p, (size_t)(end - p), tag, n)) != NULL) {
        const char *q = p;
        if (q > body && q[-1] == ':') /* skip a namespace prefix back to '<' */
            for (q--; q > body && q[-1] != '<' && q[-1] != '/' && q[-1] != ':'; q--)
                ;
        if (q > body && q[-1] == '<')
            count++;
        p += n;
    }
    return count;
}

static void read_call(struct txn *t, int flags)
{
    const struct config *cfg = cfg_of(t);
    if (flags == XR_PARSE_FULL && t->full_read)
        return;
    t->call_read = 1;
    t->full_read = t->full_read || flags == XR_PARSE_FULL;
    if (!may_be_call(t))
        return;
    if (xr_parse_call(t->arena, t->body, t->body_len, &cfg->xr_limits, flags, &t->call,
                      &t->call_error) == 0) {
        t->is_call = 1;
        t->params_ok = flags == XR_PARSE_FULL;
    } else {
        struct xr_error ignored;
        if (flags == XR_PARSE_FULL && xr_parse_call(t->arena, t->body, t->body_len, &cfg->xr_limits,
                                                    XR_PARSE_METHOD_ONLY, &t->call, &ignored) == 0)
            t->is_call = 1;
        else
            t->unreadable_call = t->call_error.call_root;
    }
    /* A name given twice only matters where the name decides the route. */
    if (t->is_call && !t->params_ok && cfg->has_xmlrpc_routes &&
        count_method_names(t->body, t->body_len) > 1) {
        t->is_call = 0;
        t->unreadable_call = 1;
        t->call_error.code = XR_FAULT_INVALID_REQUEST;
        snprintf(t->call_error.message, sizeof(t->call_error.message),
                 "the call names its method more than once");
    }
}

/* The client sent an XML-RPC call, readable or not: failures are answered
 * with faults. */
static int client_sent_call(const struct txn *t)
{
    return t->is_call || t->unreadable_call;
}

/* The inventory counts every method, even where no route needs the name:
 * it is read then, and only for the count, so a call whose name cannot be
 * read is forwarded as it would be without the inventory. */
static void read_method_for_inventory(struct txn *t)
{
    const char *name;
    size_t len;
    if (may_be_call(t) && xr_peek_method_name(t->body, t->body_len, &name, &len)) {
        t->call_read = 1;
        t->is_call = 1;
        t->call.method = arena_strndup(t->arena, name, len);
        t->call.method_len = len;
        return;
    }
    read_call(t, XR_PARSE_METHOD_ONLY);
    t->unreadable_call = 0;
}

/* The client's X-Request-Id, or a new one: every log line, event and
 * upstream request of this transaction carries it. */
static void take_request_id(struct txn *t)
{
    const struct http_header *h = http_find_header(&t->req->msg, "x-request-id");
    if (h != NULL && h->value_len > 0 && h->value_len <= 200) {
        t->request_id = arena_strndup(t->arena, h->value, h->value_len);
        t->request_id_len = h->value_len;
        return;
    }
    char *id = arena_alloc(t->arena, IDS_UUID_LEN + 1);
    ids_new_uuid(id);
    t->request_id = id;
    t->request_id_len = IDS_UUID_LEN;
}

/* The request as the router sees it, for the call named `method` (NULL
 * when the body is not a call). */
static struct router_request router_request_of(const struct txn *t, const char *method,
                                               size_t method_len)
{
    struct router_request rr = {
        .http_method = t->req->method,
        .http_method_len = t->req->method_len,
        .path = t->req->path,
        .path_len = t->req->path_len,
        .xmlrpc_method = method,
        .xmlrpc_method_len = method_len,
        .unreadable_call = method == NULL && t->unreadable_call,
        .headers = &t->req->msg,
    };
    return rr;
}

static void no_route_fault(struct txn *t, const char *method, struct xr_response *out)
{
    struct buf b = BUF_INIT;
    buf_appendf(&b, "no route for method %s", method);
    out->is_fault = 1;
    out->result = NULL;
    out->fault_code = XR_FAULT_METHOD_NOT_FOUND;
    out->fault_string = arena_strndup(t->arena, b.data, b.len);
    out->fault_string_len = b.len;
    buf_dispose(&b);
}

/*
 * Reads the calls of a system.multicall and routes each. Returns 0 when the
 * request is a well-formed multicall (t->multicall set), -1 when it is to be
 * routed as the single call it says it is, 1 when it was answered (it has
 * more calls than max_multicall_calls).
 */
static int read_multicall(struct txn *t)
{
    struct xr_error err;
    unsigned max = cfg_of(t)->limits.max_multicall_calls;
    read_call(t, XR_PARSE_FULL); /* routing alone may have read the method name only */
    if (!t->params_ok || mc_read_calls(t->arena, &t->call, &t->calls, &t->ncalls, &err) != 0)
        return -1;
    if (t->ncalls > max) {
        char message[200];
        snprintf(message, sizeof(message),
                 "system.multicall: %zu calls, more than max_multicall_calls (%u)", t->ncalls, max);
        t->outcome = METRICS_OUTCOME_REFUSED;
        reply_error(t, 400, XR_FAULT_INVALID_REQUEST, message);
        return 1;
    }
    t->multicall = 1;
    t->call_routes = arena_calloc(t->arena, t->ncalls * sizeof(*t->call_routes));
    t->call_answers = arena_calloc(t->arena, t->ncalls * sizeof(*t->call_answers));
    for (size_t i = 0; i < t->ncalls; i++) {
        struct router_request rr = router_request_of(t, t->calls[i].method, t->calls[i].method_len);
        const struct route *r = router_match(cfg_of(t), &rr);
        t->call_routes[i] = r;
        if (r == NULL)
            no_route_fault(t, t->calls[i].method, &t->call_answers[i]);
        else
            metrics_bump(&r->counters->requests);
    }
    return 0;
}

/*
 * full=refuse: while the spool is full, a call on an intercepting route is
 * refused before it reaches the upstream, so that nothing is done and
 * answered without its event. Returns 1 when t was answered so.
 */
static int refused_for_full_spool(struct txn *t, const struct route *r)
{
    if (!r->intercept || t->w->interceptor == NULL || interceptor_admits(t->w->interceptor))
        return 0;
    char message[300];
    snprintf(message, sizeof(message),
             "route %s: not forwarded: the event spool is full and full=refuse holds intercepted "
             "calls back until the broker has confirmed its backlog; retry later",
             r->name);
    t->outcome = METRICS_OUTCOME_REFUSED;
    reply_error(t, 503, XR_FAULT_SYSTEM, message);
    return 1;
}

/* A multicall goes on as it is when all its calls take routes to the same
 * xmlrpc upstream; otherwise it is split. */
static void route_multicall(struct txn *t)
{
    for (size_t i = 0; i < t->ncalls; i++)
        if (t->call_routes[i] != NULL && refused_for_full_spool(t, t->call_routes[i]))
            return;
    const struct route *first = t->ncalls > 0 ? t->call_routes[0] : NULL;
    int one_target = first != NULL && first->upstream->adapter == NULL;
    for (size_t i = 1; i < t->ncalls && one_target; i++)
        one_target = t->call_routes[i] != NULL && t->call_routes[i]->upstream == first->upstream;
    if (one_target) {
        t->route = first;
        t->upstream = first->upstream;
        forward(t);
        return;
    }
    t->mode = ANSWER_BUFFER;
    split_multicall(t);
}

/* Whether every route that could take an XML-RPC call treats it as `to`
 * does (same upstream, intercepted or not): then a call whose method cannot
 * be read ends up where its own route would have sent it anyway. */
static int one_target_for_calls(const struct config *c, const struct route *to)
{
    for (size_t i = 0; i < c->nroutes; i++) {
        const struct route *r = &c->routes[i];
        int takes_calls = r->match == ROUTE_MATCH_XMLRPC || r->match == ROUTE_MATCH_ANY ||
                          (r->match == ROUTE_MATCH_HTTP && (strcmp(r->http_method, "*") == 0 ||
                                                            strcmp(r->http_method, "POST") == 0));
        if (takes_calls && (r->upstream != to->upstream || r->intercept != to->intercept))
            return 0;
    }
    return 1;
}

/*
 * A call whose method cannot be read (broken markup before the name, a
 * DOCTYPE, the name given twice) has no route of its own; forwarding it
 * where unreadable calls happen to fall could run, on the legacy, a call
 * that belongs to a new service, or skip the interception its own route
 * does (and a model built from the events would miss it). So it is
 * refused, unless every call goes the same way anyway.
 */
static void refuse_unreadable_call(struct txn *t)
{
    char message[400];
    snprintf(message, sizeof(message),
             "route %s: the call's method cannot be read, so where it belongs is unknown: %s",
             t->route->name, t->call_error.message);
    t->outcome = METRICS_OUTCOME_REFUSED;
    reply_fault(t, t->call_error.code ? t->call_error.code : XR_FAULT_INVALID_REQUEST, message);
}

/* Sends the request to u as a direct route to u would: forwarded to an
 * xmlrpc upstream, through the adapter to a new service. */
static void dispatch(struct txn *t, const struct upstream_def *u)
{
    t->upstream = u;
    if (u->adapter != NULL)
        adapt(t);
    else if (t->unreadable_call && !one_target_for_calls(cfg_of(t), t->route))
        refuse_unreadable_call(t);
    else
        forward(t);
}

/* --- Dark launching: shadow, canary, fallback ------------------------------ */

/*
 * A sampled share of a shadow route's calls also goes, as a copy, to the
 * candidate (shadow.h). The copy is built here, where the request is at
 * hand: the client's request as it came for an xmlrpc candidate, the
 * adapter's for a new service, each marked X-Strangler-Shadow: 1. Sets
 * t->shadow when a copy went.
 */
static void start_shadow(struct txn *t)
{
    const struct route *r = t->route;
    const struct upstream_def *u = r->second;
    struct buf head = BUF_INIT, body = BUF_INIT;
    struct adapter_request areq;
    const char *method = t->req->method;
    size_t method_len = t->req->method_len;

    adapter_request_init(&areq);
    if (r->share_bp < DARKLAUNCH_BUCKETS && !darklaunch_in_share(worker_random(t->w), r->share_bp))
        goto out;
    if (!shadow_admits(t->w, t->wc, r))
        goto out;
    if (u->adapter != NULL) {
        struct adapter_call ac = {
            .call = &t->call,
            .route = r->name,
            .upstream = u->name,
            .base_path = u->base_path,
            .request_id = t->request_id,
            .limits = &cfg_of(t)->xr_limits,
            .map = r->map,
        };
        struct xr_error err;
        if (u->adapter->encode(&ac, &areq, &err) != 0) {
            /* The primary gets the call all the same; there is just nothing
             * the candidate could be asked. */
            metrics_bump(&r->counters->shadow_errors);
            log_info("request %s: route %s: no shadow copy for %s: %s", t->request_id, r->name,
                     u->name, err.message);
            goto out;
        }
        build_adapted_head(u, &areq, 1, &head);
        buf_append(&body, areq.body.data, areq.body.len);
        method = areq.method;
        method_len = strlen(areq.method);
    } else {
        build_upstream_head(t, u, t->body_len, 1, 1, &head);
        buf_append(&body, t->body, t->body_len);
    }
    struct shadow_request sr = {
        .wc = t->wc,
        .route = r,
        .call = &t->call,
        .request_id = t->request_id,
        .http_method = method,
        .http_method_len = method_len,
        .head = &head,
        .body = &body,
    };
    t->shadow = shadow_start(t->w, &sr);
out:
    adapter_request_dispose(&areq);
    buf_dispose(&head);
    buf_dispose(&body);
}

/*
 * Where a call on a shadow, canary or fallback route goes first, and what
 * the mode needs on the way (config.h, enum route_mode):
 *   SHADOW    the primary serves the client; a sampled copy goes to the
 *             candidate, and then the primary's answer is read whole to be
 *             compared (it still reaches the client the moment it is in).
 *   CANARY    the new side for share_bp of the calls (random, or by the
 *             sticky key), else the other; each side served as a direct
 *             route to it would be. A new side with a rollback guard has
 *             its answers read, so that an unusable one is seen.
 *   FALLBACK  the primary; read whole when the call may go to the backup
 *             (readonly: a cut answer is no answer, and nothing may reach
 *             the client before it is known whole) or a guard judges it.
 */
static const struct upstream_def *dark_launch(struct txn *t)
{
    const struct route *r = t->route;
    t->dark = 1;
    switch (r->mode) {
    case ROUTE_SHADOW:
        start_shadow(t);
        t->keep_answer = t->shadow != NULL;
        return r->upstream;
    case ROUTE_CANARY: {
        int to_new = darklaunch_canary_new(r, t->call.params, &t->req->msg, worker_random(t->w));
        metrics_bump(to_new ? &r->counters->canary_new : &r->counters->canary_rest);
        t->keep_answer = to_new && r->guard.enabled;
        return to_new ? r->second : r->upstream;
    }
    case ROUTE_FALLBACK:
        t->keep_answer = r->readonly || r->guard.enabled;
        return r->upstream;
    case ROUTE_DIRECT:
        break;
    }
    t->dark = 0;
    return r->upstream;
}

/* Whether the call may go to the fallback's backup now that its primary
 * gave no answer: once, on a readonly route (the primary may have run it:
 * only a call that changes nothing is safe to repeat), before any byte
 * reached the client. */
static int may_fall_back(const struct txn *t)
{
    return t->dark && t->route->mode == ROUTE_FALLBACK && t->route->readonly && !t->fell_back &&
           !t->head_sent;
}

/* The primary gave no answer: the call goes to the backup, whose answer
 * the client gets. Called from the primary leg's error callback; the leg
 * is freed here (its connection is already gone). */
static void fall_back(struct txn *t, enum upstream_error err, const char *detail)
{
    const struct route *r = t->route;
    count_upstream_error(t, r, t->upstream, error_kind(err));
    metrics_bump(&r->counters->fallbacks);
    log_info("request %s: route %s: upstream %s: %s (%s); asking %s instead", t->request_id,
             r->name, t->upstream->name, upstream_error_text(err), detail, r->second->name);
    for (size_t i = 0; i < t->nlegs; i++)
        leg_dispose(&t->legs[i]);
    t->legs = NULL; /* in the arena, with the transaction */
    t->nlegs = t->legs_sent = t->legs_ended = 0;
    buf_reset(&t->answer_head);
    t->answer_has_body = 0;
    t->fell_back = 1;
    dispatch(t, r->second);
}

static void route_request(struct txn *t)
{
    const struct http_request *req = t->req;
    struct router_request rr = router_request_of(t, t->is_call ? t->call.method : NULL,
                                                 t->is_call ? t->call.method_len : 0);
    t->route = router_match(cfg_of(t), &rr);
    if (t->route == NULL) {
        char message[400];
        if (t->is_call)
            snprintf(message, sizeof(message), "no route for method %s", t->call.method);
        else if (t->unreadable_call)
            snprintf(message, sizeof(message),
                     "no route for a call whose method cannot be read: %s", t->call_error.message);
        else
            snprintf(message, sizeof(message), "no route for %.*s %.*s", (int)req->method_len,
                     req->method, (int)req->path_len, req->path);
        t->outcome = METRICS_OUTCOME_NO_ROUTE;
        reply_error(t, 404, XR_FAULT_METHOD_NOT_FOUND, message);
        return;
    }
    metrics_bump(&t->route->counters->requests);
    if (refused_for_full_spool(t, t->route))
        return;
    /* Only a call the proxy could read whole is dark-launched; anything
     * else a shadow, canary or fallback route takes (a body that is no
     * call, on a `*` route) goes to its upstream as on a direct route. */
    if (t->route->mode != ROUTE_DIRECT && t->is_call && t->params_ok)
        dispatch(t, dark_launch(t));
    else
        dispatch(t, t->route->upstream);
}

struct txn *proxy_handle(struct client *c, const struct http_request *req, const char *body,
                         size_t body_len)
{
    /* The transaction lives in its own arena, which the worker keeps for
     * the next one: a request allocates nothing from malloc on the common
     * path. */
    struct worker *w = client_worker(c);
    struct arena *arena = worker_take_arena(w);
    struct txn *t = arena_calloc(arena, sizeof(*t));
    t->arena = arena;
    t->client = c;
    t->w = w;
    t->wc = worker_config_hold(t->w);
    t->req = req;
    t->body = body;
    t->body_len = body_len;
    t->start_ns = clock_monotonic_ns();
    t->start_us = clock_realtime_us();
    atomic_fetch_add_explicit(&t->w->stats.requests, 1, memory_order_relaxed);
    take_request_id(t);
    const struct config *cfg = cfg_of(t);
    if (cfg->needs_params)
        read_call(t, XR_PARSE_FULL);
    else if (cfg->has_xmlrpc_routes)
        read_call(t, XR_PARSE_METHOD_ONLY);
    else if (t->w->inventory != NULL)
        read_method_for_inventory(t);
    /* A multicall is routed by the calls inside it, when there are routes
     * that tell calls apart. */
    int multicall = -1;
    if (t->is_call && cfg->has_xmlrpc_routes && mc_is_multicall(&t->call))
        multicall = read_multicall(t);
    if (multicall == 0)
        route_multicall(t);
    else if (multicall < 0)
        route_request(t);
    return t;
}

/* --- What became of it: the figures, the inventory, the access log --------- */

/* The counters of r's calls to u: r's own per upstream, or the process's
 * for what no route took. */
static struct target_counters *target_of(const struct txn *t, const struct route *r,
                                         const struct upstream_def *u)
{
    if (r != NULL && u == r->upstream)
        return r->targets[0];
    if (r != NULL && u != NULL && u == r->second)
        return r->targets[1];
    return cfg_of(t)->unrouted;
}

/* An answer the client never got all of is the client's leaving, unless
 * the upstream failed it first. */
static enum metrics_outcome settled(const struct txn *t, enum metrics_outcome o)
{
    if (t->finished || o == METRICS_OUTCOME_UPSTREAM_ERROR || o == METRICS_OUTCOME_TIMEOUT)
        return o;
    return METRICS_OUTCOME_CLIENT_CLOSED;
}

static void report_call(struct txn *t, const char *method, size_t method_len, const struct route *r,
                        const struct upstream_def *u, enum metrics_outcome o, uint64_t duration_us,
                        uint64_t bytes_in, uint64_t bytes_out)
{
    metrics_observe(target_of(t, r, u), o, duration_us);
    if (t->w->inventory == NULL || method == NULL)
        return;
    int answered = o == METRICS_OUTCOME_OK || o == METRICS_OUTCOME_FAULT ||
                   o == METRICS_OUTCOME_CLIENT_ERROR || o == METRICS_OUTCOME_SERVER_ERROR;
    struct inventory_call c = {
        .method = method,
        .method_len = method_len,
        .route = r != NULL ? r->counters->name : NULL,
        .answered = answered,
        .fault = o == METRICS_OUTCOME_FAULT,
        .error = !answered && o != METRICS_OUTCOME_CLIENT_CLOSED,
        .new_side = answered && u != NULL && u->new_side,
        .duration_us = duration_us,
        .bytes_in = bytes_in,
        .bytes_out = bytes_out,
        .at_us = t->start_us,
    };
    inventory_record(t->w->inventory, &c);
}

static void log_access(struct txn *t, const struct upstream_def *u, enum metrics_outcome o,
                       uint64_t duration_us)
{
    const struct http_request *req = t->req;
    struct accesslog_entry e = {
        .time_us = t->start_us,
        .request_id = t->request_id,
        .request_id_len = t->request_id_len,
        .client = client_address(t->client),
        .http_method = req->method,
        .http_method_len = req->method_len,
        .path = req->path,
        .path_len = req->path_len,
        .method = t->is_call ? t->call.method : NULL,
        .method_len = t->is_call ? t->call.method_len : 0,
        .calls = t->multicall ? t->ncalls : (size_t)t->is_call,
        .route = t->route != NULL ? t->route->name : NULL,
        .target = u != NULL ? u->name : NULL,
        .side = u == NULL     ? NULL
                : u->new_side ? "new"
                              : "legacy",
        .status = t->status,
        .has_fault = t->has_fault && t->fault_code_known,
        .fault_code = t->fault_code,
        .outcome = metrics_outcome_name(o),
        .duration_us = duration_us,
        .bytes_in = t->body_len,
        .bytes_out = t->bytes_out,
    };
    accesslog_write(t->w->access, &e);
}

/* Reports the transaction once it ends: each call (a multicall's one by
 * one, sharing its time and bytes) to the metrics and the inventory, the
 * request to the access log. */
static void report(struct txn *t)
{
    uint64_t duration_us = (clock_monotonic_ns() - t->start_ns) / 1000;
    const struct upstream_def *u = t->upstream;
    if (u == NULL && t->route != NULL)
        u = t->route->upstream; /* refused before it was sent: where it would have gone */
    enum metrics_outcome o = settled(t, t->outcome);
    if (!t->multicall || t->ncalls == 0) {
        report_call(t, t->is_call ? t->call.method : NULL, t->call.method_len, t->route, u, o,
                    duration_us, t->body_len, t->bytes_out);
    } else {
        for (size_t i = 0; i < t->ncalls; i++) {
            const struct route *r = t->call_routes[i];
            enum metrics_outcome each = t->call_outcomes ? t->call_outcomes[i] : t->outcome;
            each = settled(t, r == NULL ? METRICS_OUTCOME_NO_ROUTE : each);
            report_call(t, t->calls[i].method, t->calls[i].method_len, r,
                        r != NULL ? r->upstream : NULL, each, duration_us, t->body_len / t->ncalls,
                        t->bytes_out / t->ncalls);
        }
    }
    if (t->w->access != NULL)
        log_access(t, u, o, duration_us);
}

void proxy_report_refused(struct worker *w, const char *client, int status)
{
    /* No request was read, so no time is worth a latency bucket. */
    metrics_bump(&w->wc->cfg->unrouted->outcomes[METRICS_OUTCOME_REFUSED]);
    if (w->access == NULL)
        return;
    struct accesslog_entry e = {
        .time_us = clock_realtime_us(),
        .client = client,
        .status = status,
        .outcome = metrics_outcome_name(METRICS_OUTCOME_REFUSED),
    };
    accesslog_write(w->access, &e);
}

void proxy_client_drained(struct txn *t)
{
    struct leg *leg = t->nlegs > 0 ? &t->legs[0] : NULL;
    if (t->upstream_paused && leg != NULL && leg->uc != NULL) {
        t->upstream_paused = 0;
        upstream_resume(leg->uc);
    }
}

void proxy_txn_free(struct txn *t)
{
    report(t);
    /* The client went away (or the worker ends) before the primary's
     * outcome was known: the copy has nothing to compare. */
    if (t->shadow != NULL)
        shadow_primary_failed(t->shadow);
    for (size_t i = 0; i < t->nlegs; i++)
        leg_dispose(&t->legs[i]);
    buf_dispose(&t->answer_head);
    buf_dispose(&t->sniffed);
    worker_config_release(t->w, t->wc);
    worker_return_arena(t->w, t->arena); /* t is in it: last */
}
