#include "legacy-adapters/adapter.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Every adapter there is. A new kind is one more ops table and one line
 * here; the proxy looks kinds up when it loads routes.conf. */
static const struct adapter_ops *const adapters[] = {
    &adapter_json_ops,
};

const struct adapter_ops *adapter_find(const char *kind, size_t len)
{
    for (size_t i = 0; i < sizeof(adapters) / sizeof(adapters[0]); i++) {
        const char *k = adapters[i]->kind;
        if (strlen(k) == len && memcmp(k, kind, len) == 0)
            return adapters[i];
    }
    return NULL;
}

void adapter_request_init(struct adapter_request *req)
{
    req->method = NULL;
    req->target = (struct buf)BUF_INIT;
    req->headers = (struct buf)BUF_INIT;
    req->body = (struct buf)BUF_INIT;
}

void adapter_request_dispose(struct adapter_request *req)
{
    req->method = NULL;
    buf_dispose(&req->target);
    buf_dispose(&req->headers);
    buf_dispose(&req->body);
}

void adapter_fault(struct arena *a, const struct adapter_call *c, int64_t code,
                   struct xr_response *out, const char *fmt, ...)
{
    struct buf b = BUF_INIT;
    va_list ap;

    buf_appendf(&b, "route %s: upstream %s: ", c->route ? c->route : "(none)",
                c->upstream ? c->upstream : "(none)");
    va_start(ap, fmt);
    buf_vappendf(&b, fmt, ap);
    va_end(ap);
    out->is_fault = 1;
    out->result = NULL;
    out->fault_code = code;
    out->fault_string = arena_strndup(a, b.data ? b.data : "", b.len);
    out->fault_string_len = b.len;
    buf_dispose(&b);
}
