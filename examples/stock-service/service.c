#include "examples/stock-service/service.h"

#include "common/buf.h"
#include "common/jsonw.h"
#include "common/log.h"
#include "common/mem.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <json-c/json.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* A JSON-contract call carries a few parameters; nothing legitimate comes
 * near these. evhttp has no limits of its own (FIELD-NOTES). */
#define MAX_BODY_SIZE    (64 * 1024)
#define MAX_HEADERS_SIZE (16 * 1024)
#define MAX_JSON_DEPTH   32
#define IDLE_TIMEOUT_S   30

/* XML-RPC interop fault codes (FIELD-NOTES, libxml2 section). */
#define FAULT_PARSE_ERROR      (-32700)
#define FAULT_INVALID_REQUEST  (-32600)
#define FAULT_METHOD_NOT_FOUND (-32601)
#define FAULT_INTERNAL_ERROR   (-32603)

struct service {
    struct evhttp *http;
    struct evhttp_bound_socket *listener; /* owned by http */
    struct model *model;
    char *base; /* without a trailing slash; "" serves calls at /m */
    char address[128];
};

/*
 * A JSON-contract method: validates params (a JSON array), appends the
 * answer (result or fault object) to out and returns the HTTP status.
 */
typedef int (*rpc_handler_fn)(struct service *s, struct json_object *params, struct buf *out);

struct rpc_method {
    const char *name;
    rpc_handler_fn handler;
};

static const char *status_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    default:
        return "Internal Server Error";
    }
}

static void reply(struct evhttp_request *req, int status, const char *content_type,
                  const char *body, size_t len)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    evhttp_add_header(out, "Content-Type", content_type);
    /* Handing the request id back makes a call easy to find in both logs. */
    const char *request_id = evhttp_find_header(in, "X-Request-Id");
    if (request_id != NULL)
        evhttp_add_header(out, "X-Request-Id", request_id);

    struct evbuffer *b = evbuffer_new();
    if (b == NULL) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    evbuffer_add(b, body, len);
    evhttp_send_reply(req, status, status_reason(status), b);
    evbuffer_free(b);
}

static void reply_buf(struct evhttp_request *req, int status, struct buf *body)
{
    reply(req, status, "application/json", body->data ? body->data : "", body->len);
}

static void reply_text(struct evhttp_request *req, int status, const char *text)
{
    reply(req, status, "text/plain; charset=utf-8", text, strlen(text));
}

/* Appends {"faultCode": code, "faultString": text} (text is len bytes). */
static void write_fault(struct buf *out, int code, const char *text, size_t len)
{
    buf_append_str(out, "{\"faultCode\": ");
    jsonw_i64(out, code);
    buf_append_str(out, ", \"faultString\": ");
    jsonw_string(out, text, len);
    buf_append_char(out, '}');
}

static void write_fault_str(struct buf *out, int code, const char *text)
{
    write_fault(out, code, text, strlen(text));
}

/* stock.get(sku): the record from the model, or the legacy's 404 fault. */
static int rpc_stock_get(struct service *s, struct json_object *params, struct buf *out)
{
    struct json_object *arg = NULL;
    if (json_object_array_length(params) == 1)
        arg = json_object_array_get_idx(params, 0);
    if (arg == NULL || !json_object_is_type(arg, json_type_string)) {
        /* The legacy shop's wording, word for word. */
        write_fault_str(out, 400, "invalid params: expected (sku: string)");
        return 400;
    }
    const char *sku = json_object_get_string(arg);
    size_t len = (size_t)json_object_get_string_len(arg);
    if (model_write_record(s->model, sku, len, out) == 0)
        return 200;

    struct buf msg = BUF_INIT;
    buf_append_str(&msg, "unknown sku: ");
    buf_append(&msg, sku, len);
    write_fault(out, 404, msg.data, msg.len);
    buf_dispose(&msg);
    return 404;
}

static const struct rpc_method rpc_methods[] = {
    {"stock.get", rpc_stock_get},
};

static const struct rpc_method *find_method(const char *name)
{
    for (size_t i = 0; i < sizeof(rpc_methods) / sizeof(rpc_methods[0]); i++) {
        if (strcmp(rpc_methods[i].name, name) == 0)
            return &rpc_methods[i];
    }
    return NULL;
}

/*
 * Parses the request body as the params array. Returns the array (the
 * caller puts it), or NULL after writing a fault to out and its HTTP status
 * to *status.
 */
static struct json_object *parse_params(struct evhttp_request *req, struct buf *out, int *status)
{
    struct json_object *params = NULL;
    struct json_tokener *tok = NULL;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);

    *status = 400;
    if (len == 0) {
        write_fault_str(out, FAULT_PARSE_ERROR, "parse error: empty body");
        goto out;
    }
    /* evhttp already refused bodies over MAX_BODY_SIZE, so len fits an int. */
    const char *data = (const char *)evbuffer_pullup(in, -1);
    tok = json_tokener_new_ex(MAX_JSON_DEPTH);
    if (data == NULL || tok == NULL) {
        *status = 500;
        write_fault_str(out, FAULT_INTERNAL_ERROR, "internal error: out of memory");
        goto out;
    }
    params = json_tokener_parse_ex(tok, data, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    if (jerr == json_tokener_continue) {
        /* A bare scalar ("null", "12") has no closing character, so the
         * tokener waits for more; a NUL tells it the text has ended. */
        params = json_tokener_parse_ex(tok, "", 1);
        jerr = json_tokener_get_error(tok);
    } else if (jerr == json_tokener_success) {
        for (size_t i = json_tokener_get_parse_end(tok); i < len; i++) {
            char c = data[i];
            if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
                jerr = json_tokener_error_parse_unexpected;
                break;
            }
        }
    }
    if (jerr != json_tokener_success) {
        struct buf msg = BUF_INIT;
        buf_appendf(&msg, "parse error: %s", json_tokener_error_desc(jerr));
        write_fault(out, FAULT_PARSE_ERROR, msg.data, msg.len);
        buf_dispose(&msg);
        json_object_put(params);
        params = NULL;
        goto out;
    }
    if (!json_object_is_type(params, json_type_array)) {
        write_fault_str(out, FAULT_INVALID_REQUEST,
                        "invalid request: the body must be a JSON array of params");
        json_object_put(params);
        params = NULL;
        goto out;
    }
    *status = 200;
out:
    if (tok != NULL)
        json_tokener_free(tok);
    return params;
}

static void handle_rpc(struct service *s, struct evhttp_request *req, const char *name)
{
    struct buf out = BUF_INIT;
    struct json_object *params = NULL;
    int status;

    const struct rpc_method *m = find_method(name);
    if (m == NULL) {
        struct buf msg = BUF_INIT;
        buf_appendf(&msg, "method not found: %s", name);
        write_fault(&out, FAULT_METHOD_NOT_FOUND, msg.data, msg.len);
        buf_dispose(&msg);
        status = 404;
        goto out;
    }
    params = parse_params(req, &out, &status);
    if (params == NULL)
        goto out;
    status = m->handler(s, params, &out);
out:
    log_debug("POST %s/%s -> %d", s->base, name, status);
    reply_buf(req, status, &out);
    json_object_put(params);
    buf_dispose(&out);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct service *s = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (path == NULL || path[0] == '\0')
        path = "/";

    if (strcmp(path, "/healthz") == 0 || strcmp(path, "/model") == 0) {
        if (cmd != EVHTTP_REQ_GET) {
            evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET");
            reply_text(req, 405, "method not allowed\n");
            return;
        }
        if (path[1] == 'h') {
            reply_text(req, 200, "ok");
            return;
        }
        struct buf out = BUF_INIT;
        model_write_json(s->model, &out);
        reply_buf(req, 200, &out);
        buf_dispose(&out);
        return;
    }

    size_t base_len = strlen(s->base);
    if (strncmp(path, s->base, base_len) == 0 && path[base_len] == '/' &&
        path[base_len + 1] != '\0') {
        if (cmd != EVHTTP_REQ_POST) {
            struct buf out = BUF_INIT;
            write_fault_str(&out, FAULT_INVALID_REQUEST,
                            "invalid request: JSON-contract calls are POSTs");
            evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST");
            reply_buf(req, 405, &out);
            buf_dispose(&out);
            return;
        }
        handle_rpc(s, req, path + base_len + 1);
        return;
    }
    reply_text(req, 404, "not found\n");
}

/* Formats the listener's real address, now that the kernel picked it. */
static int format_bound_address(evutil_socket_t fd, char *out, size_t outlen)
{
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);
    char host[NI_MAXHOST];
    char port[NI_MAXSERV];
    if (getsockname(fd, (struct sockaddr *)&ss, &sslen) != 0)
        return -1;
    if (getnameinfo((struct sockaddr *)&ss, sslen, host, sizeof(host), port, sizeof(port),
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0)
        return -1;
    int n = snprintf(out, outlen, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

struct service *service_new(struct event_base *base, const struct service_config *cfg,
                            struct model *m, char *err, size_t errlen)
{
    struct service *s = mem_calloc(1, sizeof(*s));
    struct service *ready = NULL;

    s->model = m;
    s->base = mem_strdup(cfg->base);
    /* "/rpc/" and "/rpc" mean the same base. */
    size_t n = strlen(s->base);
    while (n > 0 && s->base[n - 1] == '/')
        s->base[--n] = '\0';

    s->http = evhttp_new(base);
    if (s->http == NULL) {
        snprintf(err, errlen, "cannot create the HTTP server");
        goto out;
    }
    evhttp_set_max_body_size(s->http, MAX_BODY_SIZE);
    evhttp_set_max_headers_size(s->http, MAX_HEADERS_SIZE);
    evhttp_set_timeout(s->http, IDLE_TIMEOUT_S);
    /* HEAD is left out: evhttp would send the body along with the headers. */
    evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                            EVHTTP_REQ_DELETE);
    evhttp_set_gencb(s->http, on_request, s);

    s->listener = evhttp_bind_socket_with_handle(s->http, cfg->host, cfg->port);
    if (s->listener == NULL) {
        snprintf(err, errlen, "cannot listen on %s:%u", cfg->host, (unsigned)cfg->port);
        goto out;
    }
    if (format_bound_address(evhttp_bound_socket_get_fd(s->listener), s->address,
                             sizeof(s->address)) != 0) {
        snprintf(err, errlen, "cannot read back the listening address");
        goto out;
    }

    ready = s;
    s = NULL;
out:
    service_free(s);
    return ready;
}

void service_format_address(const struct service *s, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s", s->address);
}

void service_free(struct service *s)
{
    if (s == NULL)
        return;
    if (s->http != NULL)
        evhttp_free(s->http);
    free(s->base);
    free(s);
}
