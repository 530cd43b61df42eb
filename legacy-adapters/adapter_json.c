#include "legacy-adapters/adapter.h"

#include "legacy-adapters/restmap.h"
#include "legacy-adapters/xrjson.h"

#include <stdio.h>
#include <string.h>

/* How much of an unexpected answer a fault message quotes. */
#define SNIPPET_MAX 200

/* Longest content type a message quotes. */
#define CONTENT_TYPE_MAX 100

#define APPEND_LIT(b, s) buf_append((b), (s), sizeof(s) - 1)

static int is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

static void set_error(struct xr_error *err, int code, const char *message)
{
    err->code = code;
    snprintf(err->message, sizeof(err->message), "%s", message);
}

/*
 * The method name becomes both a path segment and a header value. A CR or
 * LF would split the header (request smuggling), other control characters
 * are not allowed in a field value (RFC 9110, 5.5), and "." or ".." would
 * be removed as dot-segments (RFC 3986, 5.2.4) and reach another path.
 */
static int check_method(const char *m, size_t len, struct xr_error *err)
{
    if (len == 0) {
        set_error(err, XR_FAULT_INVALID_REQUEST, "empty method name");
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if (is_ctl((unsigned char)m[i])) {
            set_error(err, XR_FAULT_INVALID_REQUEST, "method name contains a control character");
            return -1;
        }
    }
    if ((len == 1 && m[0] == '.') || (len == 2 && m[0] == '.' && m[1] == '.')) {
        set_error(err, XR_FAULT_INVALID_REQUEST, "method name cannot be '.' or '..'");
        return -1;
    }
    return 0;
}

static int has_ctl(const char *s)
{
    for (; *s != '\0'; s++)
        if (is_ctl((unsigned char)*s))
            return 1;
    return 0;
}

/* POST base/m: one slash between the upstream's path and the method,
 * whatever the path ends with. */
static void write_target(struct buf *out, const char *base_path, const char *m, size_t len)
{
    restmap_append_base_path(out, base_path);
    buf_append_char(out, '/');
    restmap_append_encoded(out, m, len);
}

/* The RPC contract always has a body; a mapped request has one when some
 * parameter is left for it, and says it accepts JSON because REST services
 * tend to negotiate the answer's type. */
static void write_headers(struct buf *out, const struct adapter_call *c, int has_body)
{
    if (c->map != NULL)
        APPEND_LIT(out, "Accept: application/json\r\n");
    if (has_body)
        APPEND_LIT(out, "Content-Type: application/json\r\n");
    if (c->request_id != NULL && c->request_id[0] != '\0') {
        APPEND_LIT(out, "X-Request-Id: ");
        buf_append_str(out, c->request_id);
        APPEND_LIT(out, "\r\n");
    }
    APPEND_LIT(out, "X-Strangler-Method: ");
    buf_append(out, c->call->method, c->call->method_len);
    APPEND_LIT(out, "\r\n");
}

/* m(p1, p2) -> POST base/m with body [p1, p2] (DESIGN.md, the JSON contract). */
static int encode_rpc(const struct adapter_call *c, struct adapter_request *req,
                      struct xr_error *err)
{
    const struct xr_call *call = c->call;

    if (xrjson_write_value(&req->body, call->params, "params", err) < 0)
        return -1;
    write_target(&req->target, c->base_path, call->method, call->method_len);
    req->method = "POST";
    return 0;
}

/* The route's map=METHOD:TEMPLATE (restmap.h). */
static int encode_mapped(const struct adapter_call *c, struct adapter_request *req,
                         struct xr_error *err)
{
    const struct xr_value *params = c->call->params;

    if (restmap_write_target(c->map, c->base_path, params, &req->target, err) < 0 ||
        restmap_write_body(c->map, params, &req->body, err) < 0)
        return -1;
    req->method = restmap_method(c->map);
    return 0;
}

static int encode(const struct adapter_call *c, struct adapter_request *req, struct xr_error *err)
{
    const struct xr_call *call = c->call;

    /* The method name is a header value either way, and the RPC contract's
     * path segment. */
    if (check_method(call->method, call->method_len, err) < 0)
        goto fail;
    if (c->request_id != NULL && has_ctl(c->request_id)) {
        set_error(err, XR_FAULT_INVALID_REQUEST, "X-Request-Id contains a control character");
        goto fail;
    }
    if (call->params == NULL || call->params->type != XR_ARRAY) {
        /* XR_PARSE_METHOD_ONLY leaves no parameters to send. */
        set_error(err, XR_FAULT_INTERNAL, "the call's parameters were not parsed");
        goto fail;
    }
    if ((c->map != NULL ? encode_mapped(c, req, err) : encode_rpc(c, req, err)) < 0)
        goto fail;
    write_headers(&req->headers, c, req->body.len > 0);
    return 0;
fail:
    req->method = NULL;
    req->target.len = 0;
    req->headers.len = 0;
    req->body.len = 0;
    return -1;
}

/*
 * Copies at most SNIPPET_MAX bytes of body into out (SNIPPET_MAX + 4 bytes)
 * for a message: control characters become spaces, runs of spaces shrink to
 * one, and the cut never splits a UTF-8 sequence. Invalid UTF-8 is left for
 * the XML and JSON writers, which replace it with U+FFFD.
 */
static void snippet(const char *body, size_t len, char *out)
{
    size_t cut = len > SNIPPET_MAX ? SNIPPET_MAX : len, n = 0;

    if (cut < len)
        while (cut > 0 && ((unsigned char)body[cut] & 0xc0) == 0x80)
            cut--;
    for (size_t i = 0; i < cut; i++) {
        char ch = is_ctl((unsigned char)body[i]) ? ' ' : body[i];
        if (ch == ' ' && (n == 0 || out[n - 1] == ' '))
            continue;
        out[n++] = ch;
    }
    while (n > 0 && out[n - 1] == ' ')
        n--;
    if (cut < len) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

static void decode_result(struct arena *a, const struct adapter_call *c,
                          const struct adapter_answer *ans, struct xr_response *out)
{
    struct xr_value *v = NULL;
    struct xr_error e;
    const char *ct = ans->content_type ? ans->content_type : "none";
    size_t ct_len = ans->content_type ? ans->content_type_len : 4;

    if (ct_len > CONTENT_TYPE_MAX)
        ct_len = CONTENT_TYPE_MAX;
    if (xrjson_parse(a, ans->body ? ans->body : "", ans->body_len, c->limits, &v, &e) == 0) {
        memset(out, 0, sizeof(*out));
        out->result = v;
        return;
    }
    if (e.code == XR_FAULT_PARSE)
        adapter_fault(a, c, XR_FAULT_PARSE, out,
                      "answered HTTP %d with invalid JSON (content-type %.*s): %s", ans->status,
                      (int)ct_len, ct, e.message);
    else
        adapter_fault(a, c, e.code, out, "answered HTTP %d with JSON that has no XML-RPC form: %s",
                      ans->status, e.message);
}

/* A 4xx/5xx body {"faultCode": N, "faultString": "..."} is the service
 * speaking XML-RPC's language: pass it on untouched. Returns 0 if it was. */
static int decode_fault(struct arena *a, const struct adapter_call *c,
                        const struct adapter_answer *ans, struct xr_response *out)
{
    struct xr_value *v = NULL;
    struct xr_error e;

    if (xrjson_parse(a, ans->body ? ans->body : "", ans->body_len, c->limits, &v, &e) < 0)
        return -1;
    const char *why;
    return xr_fault_read(v, out, &why);
}

/* The interop code a bare HTTP status stands for. */
static int status_code(int status)
{
    if (status == 404)
        return XR_FAULT_METHOD_NOT_FOUND;
    if (status == 400 || status == 422)
        return XR_FAULT_INVALID_PARAMS;
    if (status >= 400 && status <= 499)
        return XR_FAULT_INVALID_REQUEST;
    if (status >= 500 && status <= 599)
        return XR_FAULT_APPLICATION;
    return XR_FAULT_INTERNAL; /* 1xx, 3xx: nothing a JSON service should answer */
}

static void decode(struct arena *a, const struct adapter_call *c, const struct adapter_answer *ans,
                   struct xr_response *out)
{
    char quote[SNIPPET_MAX + 4];

    if (ans->status >= 200 && ans->status <= 299) {
        if (c->map != NULL && ans->body_len == 0) {
            /* REST services answer a DELETE or a PUT with 204 No Content;
             * XML-RPC's "nothing" is nil. */
            memset(out, 0, sizeof(*out));
            out->result = xr_value_new(a, XR_NIL);
            return;
        }
        decode_result(a, c, ans, out);
        return;
    }
    if (ans->status >= 400 && ans->status <= 599 && decode_fault(a, c, ans, out) == 0)
        return;
    snippet(ans->body ? ans->body : "", ans->body ? ans->body_len : 0, quote);
    adapter_fault(a, c, status_code(ans->status), out, "answered HTTP %d: %s", ans->status,
                  quote[0] ? quote : "(empty body)");
}

const struct adapter_ops adapter_json_ops = {
    .kind = "json",
    .encode = encode,
    .decode = decode,
};
