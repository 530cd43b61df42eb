#include "proxy/proxy.h"

#include "common/buf.h"
#include "common/clock.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/mem.h"
#include "interceptors/event.h"
#include "interceptors/intercept.h"
#include "legacy-adapters/adapter.h"
#include "legacy-adapters/xmlrpc.h"
#include "proxy/client.h"
#include "proxy/router.h"
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
 * One request and its answer. Owned by the client connection, which frees
 * it with proxy_txn_free(); everything it allocates hangs off it (the
 * arena, the buffers) and goes in that one place.
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
    int call_read; /* the body was looked at (parsing is skipped when no route needs it) */
    int is_call;   /* at least the method name was read */
    int params_ok; /* ...and the whole call parsed */
    struct xr_call call;
    struct xr_error call_error;

    const struct route *route;
    const struct upstream_def *upstream;
    struct upconn *uc; /* the upstream exchange in progress, or NULL */
    struct buf upstream_head;
    struct adapter_request areq;
    int retried;

    enum answer_mode mode;
    int status;             /* the upstream's status */
    struct buf answer_head; /* status line and headers, without framing */
    struct buf answer_body; /* ANSWER_BUFFER: the whole body */
    char *answer_type;      /* ANSWER_BUFFER: the upstream's Content-Type */
    int answer_has_body;    /* not a 204, 304 or answer to HEAD */
    int chunked_to_client;  /* ANSWER_STREAM: re-chunking for the client */
    int head_sent;
    int upstream_paused;
};

static const struct upstream_handler forward_handler;
static const struct upstream_handler adapter_handler;

static const struct config *cfg_of(const struct txn *t)
{
    return t->wc->cfg;
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
    client_end_response(t->client);
}

static void reply_fault(struct txn *t, int64_t code, const char *message)
{
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

/* A failure the proxy answers itself: an XML-RPC fault for a call (with
 * HTTP 200, as XML-RPC requires), an HTTP status for anything else. When no
 * route needed the body read, it is read now, on this rare path, to tell. */
static void reply_error(struct txn *t, int status, int64_t fault_code, const char *message)
{
    log_info("request %s: %s", t->request_id, message);
    if (!t->call_read)
        read_call(t, XR_PARSE_METHOD_ONLY);
    if (t->is_call)
        reply_fault(t, fault_code, message);
    else
        reply_text(t, status, message);
}

static double elapsed_ms(const struct txn *t)
{
    return (double)(clock_monotonic_ns() - t->start_ns) / 1e6;
}

/*
 * Records the exchange if the route intercepts. Called before the client
 * gets the answer: once this returns the event is in the spool, so a crash
 * after the answer cannot lose it.
 */
static void intercept(struct txn *t, const struct xr_response *answer)
{
    if (!t->route->intercept || !t->params_ok || t->w->interceptor == NULL)
        return;
    struct event_exchange x = {
        .method = t->call.method,
        .params = t->call.params,
        .response = answer,
        .route = t->route->name,
        .upstream = t->upstream->name,
        .status = 200,
        .duration_ms = elapsed_ms(t),
        .request_id = t->request_id,
    };
    if (interceptor_record(t->w->interceptor, &t->route->rule, &x) == 0)
        atomic_fetch_add_explicit(&t->w->stats.events_recorded, 1, memory_order_relaxed);
    else
        atomic_fetch_add_explicit(&t->w->stats.events_skipped, 1, memory_order_relaxed);
}

static void upstream_failed(struct txn *t, enum upstream_error err, const char *detail)
{
    char message[512];
    int timeout = err == UPSTREAM_ERR_TIMEOUT || err == UPSTREAM_ERR_CONNECT_TIMEOUT;
    atomic_fetch_add_explicit(&t->w->stats.upstream_errors, 1, memory_order_relaxed);
    snprintf(message, sizeof(message), "route %s: upstream %s: %s (%s)", t->route->name,
             t->upstream->name, upstream_error_text(err), detail);
    if (t->head_sent) {
        /* Part of the answer is already out: the only honest signal left
         * is to cut the connection. */
        log_warn("request %s: %s; answer cut short", t->request_id, message);
        client_abort(t->client);
        return;
    }
    reply_error(t, timeout ? 504 : 502, XR_FAULT_TRANSPORT, message);
}

/* --- Forwarding to an xmlrpc (plain HTTP) upstream ------------------------ */

static int is_header(const struct http_header *h, const char *name)
{
    return http_token_eq(h->name, h->name_len, name);
}

/*
 * The request head for the upstream: the client's request line and
 * end-to-end headers as they came, minus hop-by-hop headers and the
 * framing (the body is re-framed with Content-Length), plus
 * X-Forwarded-For. Host comes first, as the client sent it (or the
 * upstream's when an HTTP/1.0 client sent none); X-Request-Id is the
 * transaction's, which is the client's unless it had to be made.
 */
static void build_upstream_head(struct txn *t, struct buf *b)
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
        append_header(b, "Host", 4, t->upstream->host_header, strlen(t->upstream->host_header));
    for (size_t i = 0; i < req->msg.nheaders; i++) {
        const struct http_header *h = &req->msg.headers[i];
        if (h->hop_by_hop || is_header(h, "content-length") || is_header(h, "expect") ||
            is_header(h, "host") || is_header(h, "x-request-id"))
            continue;
        if (is_header(h, "x-forwarded-for")) {
            buf_append(&xff, h->value, h->value_len);
            buf_append(&xff, ", ", 2);
            continue;
        }
        /* The answer has to be read to be intercepted: ask for it
         * uncompressed. The client still gets a valid answer. */
        if (t->mode == ANSWER_BUFFER && is_header(h, "accept-encoding"))
            continue;
        append_header(b, h->name, h->name_len, h->value, h->value_len);
    }
    buf_append_str(&xff, client_address(t->client));
    append_header(b, "X-Forwarded-For", 15, xff.data, xff.len);
    buf_dispose(&xff);
    append_header(b, "X-Request-Id", 12, t->request_id, t->request_id_len);
    if (t->body_len > 0 || http_token_eq(req->method, req->method_len, "POST") ||
        http_token_eq(req->method, req->method_len, "PUT") ||
        http_token_eq(req->method, req->method_len, "PATCH"))
        buf_appendf(b, "Content-Length: %zu\r\n", t->body_len);
    buf_append(b, "\r\n", 2);
}

static void send_upstream(struct txn *t, const struct upstream_handler *h, const char *method,
                          size_t method_len, const char *body, size_t body_len, int fresh)
{
    struct iovec iov[2] = {{t->upstream_head.data, t->upstream_head.len}, {(void *)body, body_len}};
    struct upstream_pool *pool = t->wc->pools[t->upstream->index];
    t->uc = upstream_send(pool, iov, body_len ? 2 : 1, method, method_len, fresh, h, t);
}

static void forward(struct txn *t)
{
    t->mode = t->route->intercept && t->params_ok ? ANSWER_BUFFER : ANSWER_STREAM;
    if (t->route->intercept && t->is_call && !t->params_ok) {
        /* Forwarded as it is, but without readable parameters there is no
         * event to make: counted, so the gap is visible. */
        log_info("request %s: route %s: call %s not intercepted: %s", t->request_id, t->route->name,
                 t->call.method, t->call_error.message);
        atomic_fetch_add_explicit(&t->w->stats.events_skipped, 1, memory_order_relaxed);
    }
    build_upstream_head(t, &t->upstream_head);
    send_upstream(t, &forward_handler, t->req->method, t->req->method_len, t->body, t->body_len, 0);
}

/* The upstream's status line and end-to-end headers, for the client. The
 * framing headers are the proxy's to write (it may re-frame the body), except
 * for answers without a body, whose Content-Length describes a body the
 * client did not ask for (HEAD) and must pass as it is. */
static void build_answer_head(struct txn *t, const struct http_response *resp)
{
    struct buf *b = &t->answer_head;
    buf_reserve(b, resp->msg.head_len + 64);
    buf_appendf(b, "HTTP/1.1 %03d ", resp->status);
    if (resp->reason_len > 0)
        buf_append(b, resp->reason, resp->reason_len);
    else
        buf_append_str(b, http_status_reason(resp->status));
    buf_append(b, "\r\n", 2);
    for (size_t i = 0; i < resp->msg.nheaders; i++) {
        const struct http_header *h = &resp->msg.headers[i];
        if (h->hop_by_hop)
            continue;
        if (is_header(h, "content-length") && resp->msg.framing != HTTP_FRAMING_NONE)
            continue;
        if (t->mode == ANSWER_BUFFER && is_header(h, "content-type")) {
            free(t->answer_type);
            t->answer_type = mem_strndup(h->value, h->value_len);
        }
        append_header(b, h->name, h->name_len, h->value, h->value_len);
    }
}

/* Chooses how the streamed body is framed for the client and sends the
 * head. */
static void stream_head(struct txn *t, const struct http_response *resp)
{
    struct buf *b = &t->answer_head;
    switch (resp->msg.framing) {
    case HTTP_FRAMING_LENGTH:
        buf_appendf(b, "Content-Length: %llu\r\n", (unsigned long long)resp->msg.content_length);
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
    client_send(t->client, b->data, b->len);
    t->head_sent = 1;
}

static void on_forward_head(void *ctx, const struct http_response *resp)
{
    struct txn *t = ctx;
    t->status = resp->status;
    t->answer_has_body = resp->msg.framing != HTTP_FRAMING_NONE;
    build_answer_head(t, resp);
    if (t->mode == ANSWER_STREAM)
        stream_head(t, resp);
}

/* Buffers a body span; fails the exchange when it outgrows max_body_size.
 * Returns 0, or -1 when the transaction was answered with an error. */
static int buffer_body(struct txn *t, const char *data, size_t len)
{
    if (t->answer_body.len + len > cfg_of(t)->limits.max_body_size) {
        upstream_cancel(t->uc);
        t->uc = NULL;
        char message[256];
        snprintf(message, sizeof(message),
                 "route %s: upstream %s: answer exceeds max_body_size (%zu bytes)", t->route->name,
                 t->upstream->name, cfg_of(t)->limits.max_body_size);
        reply_error(t, 502, XR_FAULT_TRANSPORT, message);
        return -1;
    }
    buf_append(&t->answer_body, data, len);
    return 0;
}

static int on_forward_body(void *ctx, const char *data, size_t len)
{
    struct txn *t = ctx;
    if (t->mode == ANSWER_BUFFER) {
        buffer_body(t, data, len);
        return 0;
    }
    if (t->chunked_to_client) {
        char size_line[24];
        int n = snprintf(size_line, sizeof(size_line), "%zx\r\n", len);
        struct iovec iov[3] = {{size_line, (size_t)n}, {(void *)data, len}, {"\r\n", 2}};
        client_sendv(t->client, iov, 3);
    } else {
        client_send(t->client, data, len);
    }
    t->upstream_paused = client_pending(t->client) > CLIENT_HIGH_WATER;
    return t->upstream_paused;
}

/* Reads the legacy's answer to an intercepted call and records it. */
static void intercept_forwarded(struct txn *t)
{
    struct xr_response answer;
    struct xr_error err;
    if (t->status != 200)
        return; /* an HTTP error is not an answered call */
    if (xr_parse_response(t->arena, t->answer_body.data ? t->answer_body.data : "",
                          t->answer_body.len, &cfg_of(t)->xr_limits, &answer, &err) != 0) {
        log_warn("request %s: route %s: cannot read the answer of %s to intercept it: %s",
                 t->request_id, t->route->name, t->call.method, err.message);
        atomic_fetch_add_explicit(&t->w->stats.events_skipped, 1, memory_order_relaxed);
        return;
    }
    intercept(t, &answer);
}

static void send_buffered(struct txn *t)
{
    struct buf *b = &t->answer_head;
    /* Without a body the upstream's own Content-Length (if any) went
     * through in the head, as it must (a 304's describes the resource). */
    if (t->answer_has_body)
        buf_appendf(b, "Content-Length: %zu\r\n", t->answer_body.len);
    append_connection(t, b);
    buf_append(b, "\r\n", 2);
    struct iovec iov[2] = {{b->data, b->len}, {t->answer_body.data, t->answer_body.len}};
    client_sendv(t->client, iov, 2);
    client_end_response(t->client);
}

static void on_forward_done(void *ctx)
{
    struct txn *t = ctx;
    t->uc = NULL;
    if (t->mode == ANSWER_BUFFER) {
        intercept_forwarded(t);
        send_buffered(t);
        return;
    }
    if (t->chunked_to_client)
        client_send(t->client, "0\r\n\r\n", 5);
    client_end_response(t->client);
}

static void on_forward_error(void *ctx, enum upstream_error err, int stale, const char *detail)
{
    struct txn *t = ctx;
    t->uc = NULL;
    /* A keep-alive connection the upstream closed just as we reused it:
     * the request never reached the application, but nothing proves it, so
     * only a request that is safe to repeat is sent again (RFC 9110 9.2.2).
     * XML-RPC calls are POSTs and get the error instead. */
    if (stale && !t->retried && http_method_idempotent(t->req->method, t->req->method_len)) {
        t->retried = 1;
        send_upstream(t, &forward_handler, t->req->method, t->req->method_len, t->body, t->body_len,
                      1);
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

/* --- Adapting a call for a new service ----------------------------------- */

static struct adapter_call adapter_call_of(const struct txn *t)
{
    struct adapter_call ac = {
        .call = &t->call,
        .route = t->route->name,
        .upstream = t->upstream->name,
        .base_path = t->upstream->base_path,
        .request_id = t->request_id,
        .limits = &cfg_of(t)->xr_limits,
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

static void adapt(struct txn *t)
{
    struct adapter_call ac = adapter_call_of(t);
    struct xr_error err;
    if (!t->params_ok) {
        /* Only a call the adapter can read may go to a new service; the
         * legacy would have been sent the bytes as they were. */
        if (t->is_call)
            reply_fault(t, t->call_error.code, t->call_error.message);
        else
            reply_text(t, 400, "the route needs an XML-RPC call and the body is not one");
        return;
    }
    t->mode = ANSWER_BUFFER;
    adapter_request_init(&t->areq);
    if (t->upstream->adapter->encode(&ac, &t->areq, &err) != 0) {
        char message[400];
        snprintf(message, sizeof(message), "route %s: %s", t->route->name, err.message);
        reply_fault(t, err.code, message);
        return;
    }
    struct buf *h = &t->upstream_head;
    buf_appendf(h, "%s ", t->areq.method);
    buf_append(h, t->areq.target.data, t->areq.target.len);
    buf_appendf(h, " HTTP/1.1\r\nHost: %s\r\n", t->upstream->host_header);
    buf_append(h, t->areq.headers.data, t->areq.headers.len);
    buf_appendf(h, "Content-Length: %zu\r\n\r\n", t->areq.body.len);
    send_upstream(t, &adapter_handler, t->areq.method, strlen(t->areq.method), t->areq.body.data,
                  t->areq.body.len, 0);
}

static void on_adapter_head(void *ctx, const struct http_response *resp)
{
    struct txn *t = ctx;
    t->status = resp->status;
    const struct http_header *ct = http_find_header(&resp->msg, "content-type");
    if (ct != NULL)
        t->answer_type = mem_strndup(ct->value, ct->value_len);
}

static int on_adapter_body(void *ctx, const char *data, size_t len)
{
    buffer_body(ctx, data, len);
    return 0;
}

static void on_adapter_done(void *ctx)
{
    struct txn *t = ctx;
    struct adapter_call ac = adapter_call_of(t);
    struct adapter_answer ans = {
        .status = t->status,
        .content_type = t->answer_type,
        .content_type_len = t->answer_type ? strlen(t->answer_type) : 0,
        .body = t->answer_body.data ? t->answer_body.data : "",
        .body_len = t->answer_body.len,
    };
    struct xr_response r;
    t->uc = NULL;
    t->upstream->adapter->decode(t->arena, &ac, &ans, &r);
    intercept(t, &r);
    reply_response(t, &r);
}

static void on_adapter_error(void *ctx, enum upstream_error err, int stale, const char *detail)
{
    struct txn *t = ctx;
    (void)stale;
    t->uc = NULL;
    upstream_failed(t, err, detail);
}

static const struct upstream_handler adapter_handler = {
    on_adapter_head,
    on_adapter_body,
    on_adapter_done,
    on_adapter_error,
};

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
static void read_call(struct txn *t, int flags)
{
    const struct config *cfg = cfg_of(t);
    t->call_read = 1;
    if (!may_be_call(t))
        return;
    if (xr_parse_call(t->arena, t->body, t->body_len, &cfg->xr_limits, flags, &t->call,
                      &t->call_error) == 0) {
        t->is_call = 1;
        t->params_ok = flags == XR_PARSE_FULL;
        return;
    }
    struct xr_error ignored;
    if (flags == XR_PARSE_FULL && xr_parse_call(t->arena, t->body, t->body_len, &cfg->xr_limits,
                                                XR_PARSE_METHOD_ONLY, &t->call, &ignored) == 0)
        t->is_call = 1;
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

struct txn *proxy_handle(struct client *c, const struct http_request *req, const char *body,
                         size_t body_len)
{
    struct txn *t = mem_calloc(1, sizeof(*t));
    t->client = c;
    t->w = client_worker(c);
    t->wc = worker_config_hold(t->w);
    t->req = req;
    t->body = body;
    t->body_len = body_len;
    t->arena = arena_new(8192);
    t->start_ns = clock_monotonic_ns();
    atomic_fetch_add_explicit(&t->w->stats.requests, 1, memory_order_relaxed);
    take_request_id(t);
    const struct config *cfg = cfg_of(t);
    if (cfg->needs_params)
        read_call(t, XR_PARSE_FULL);
    else if (cfg->has_xmlrpc_routes)
        read_call(t, XR_PARSE_METHOD_ONLY);

    struct router_request rr = {
        .http_method = req->method,
        .http_method_len = req->method_len,
        .path = req->path,
        .path_len = req->path_len,
        .xmlrpc_method = t->is_call ? t->call.method : NULL,
        .xmlrpc_method_len = t->is_call ? t->call.method_len : 0,
        .headers = &req->msg,
    };
    t->route = router_match(cfg_of(t), &rr);
    if (t->route == NULL) {
        char message[300];
        if (t->is_call)
            snprintf(message, sizeof(message), "no route for method %s", t->call.method);
        else
            snprintf(message, sizeof(message), "no route for %.*s %.*s", (int)req->method_len,
                     req->method, (int)req->path_len, req->path);
        reply_error(t, 404, XR_FAULT_METHOD_NOT_FOUND, message);
        return t;
    }
    t->upstream = t->route->upstream;
    if (t->upstream->adapter != NULL)
        adapt(t);
    else
        forward(t);
    return t;
}

void proxy_client_drained(struct txn *t)
{
    if (t->upstream_paused && t->uc != NULL) {
        t->upstream_paused = 0;
        upstream_resume(t->uc);
    }
}

void proxy_txn_free(struct txn *t)
{
    if (t->uc != NULL)
        upstream_cancel(t->uc);
    buf_dispose(&t->upstream_head);
    buf_dispose(&t->answer_head);
    buf_dispose(&t->answer_body);
    free(t->answer_type);
    adapter_request_dispose(&t->areq);
    arena_free(t->arena);
    worker_config_release(t->w, t->wc);
    free(t);
}
