/*
 * fuzz_json_to_xmlrpc: the bytes as a JSON service's answer, turned into
 * the XML-RPC answer a client gets (adapter_json.c's decode, through
 * xrjson_parse()), then written with xr_write_response().
 *
 * The first byte picks the HTTP status (low nibble, from a table of the
 * statuses that take different paths) and whether the route has a map=
 * (bit 7: a 2xx with an empty body is then nil); the rest is the body.
 *
 * Checks, on every input:
 *   - decode always yields a result or a fault with a message string
 *     (adapter.h: "Never fails"; the string may be empty when the service's
 *     own fault said "", which is passed on untouched);
 *   - the XML it is written as always parses back as an XML-RPC answer
 *     (the proxy never sends a client an unreadable answer);
 *   - and, when every string in it is printable ASCII (so the writer had
 *     nothing to replace), the answer read back is the same.
 */
#include "fuzz_common.h"

#include "common/buf.h"
#include "common/mem.h"
#include "legacy-adapters/adapter.h"
#include "legacy-adapters/restmap.h"
#include "legacy-adapters/xmlrpc.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct restmap *map;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[256];

    (void)argc;
    (void)argv;
    xr_init();
    if (restmap_parse("PUT:/stock/{1}", &map, err, sizeof(err)) != 0) {
        fprintf(stderr, "restmap_parse: %s\n", err);
        abort();
    }
    return 0;
}

/* Whether the writer writes s as it is: tab, LF and printable ASCII only
 * (CR is read back as LF by XML's end-of-line handling unless escaped). */
static int clean_text(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t' && c != '\n') || c >= 0x7f)
            return 0;
    }
    return 1;
}

static int clean_value(const struct xr_value *v)
{
    if (v == NULL)
        return 1;
    if (v->name != NULL && !clean_text(v->name, v->name_len))
        return 0;
    switch (v->type) {
    case XR_STRING:
    case XR_DATETIME:
        return clean_text(v->u.str.ptr, v->u.str.len);
    case XR_ARRAY:
    case XR_STRUCT:
        for (const struct xr_value *c = v->u.list.first; c != NULL; c = c->next)
            if (!clean_value(c))
                return 0;
        return 1;
    default:
        return 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int statuses[16] = {200, 201, 204, 299, 400, 404, 422, 409,
                                     500, 502, 503, 599, 100, 302, 0,   600};
    struct arena *a;
    struct xr_limits lim = {0};
    struct xr_call call = {"stock.get", 9, NULL};
    struct adapter_call c = {0};
    struct adapter_answer ans = {0};
    struct xr_response out, again = {0};
    struct xr_error err = {0};
    struct buf xml = BUF_INIT;

    if (size < 1)
        return 0;
    a = arena_new(0);
    c.call = &call;
    c.route = "fuzz-route";
    c.upstream = "fuzz-svc";
    c.base_path = "/rpc";
    c.request_id = "fuzz";
    c.limits = &lim;
    c.map = (data[0] & 0x80) ? map : NULL;
    ans.status = statuses[data[0] & 0x0f];
    ans.content_type = "application/json";
    ans.content_type_len = 16;
    ans.body = size > 1 ? (const char *)data + 1 : NULL;
    ans.body_len = size - 1;

    memset(&out, 0xa5, sizeof(out)); /* decode must set every field it means */
    adapter_json_ops.decode(a, &c, &ans, &out);
    FUZZ_CHECK(out.is_fault == 0 || out.is_fault == 1, "is_fault %d", out.is_fault);
    if (out.is_fault)
        FUZZ_CHECK(out.fault_string != NULL, "fault without message");
    else
        FUZZ_CHECK(out.result != NULL, "result without a value");

    xr_write_response(&xml, &out);
    struct xr_limits deep = {1024, 0};
    int r = xr_parse_response(a, xml.data, xml.len, &deep, &again, &err);
    FUZZ_CHECK(r == 0, "the answer written does not parse: %d %s\n%.*s", err.code, err.message,
               (int)xml.len, xml.data);
    if (out.is_fault ? clean_text(out.fault_string, out.fault_string_len) : clean_value(out.result))
        FUZZ_CHECK(fuzz_same_response(&out, &again), "the answer changes when written\n%.*s",
                   (int)xml.len, xml.data);

    buf_dispose(&xml);
    arena_free(a);
    return 0;
}
