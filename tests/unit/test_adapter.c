#include "unit.h"
#include "common/buf.h"
#include "common/mem.h"
#include "legacy-adapters/adapter.h"
#include "legacy-adapters/restmap.h"
#include "legacy-adapters/xmlrpc.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static struct arena *arena;
static struct xr_call xcall;
static struct adapter_call acall;
static struct adapter_request req;
static struct xr_response out;
static struct xr_error err;
static struct restmap *map; /* a route's map=, when a test gives one */

static void setup(void)
{
    xr_init();
    arena = arena_new(0);
    memset(&xcall, 0, sizeof(xcall));
    memset(&out, 0, sizeof(out));
    memset(&err, 0, sizeof(err));
    acall.call = &xcall;
    acall.route = "stock-read";
    acall.upstream = "stock-svc";
    acall.base_path = "/rpc";
    acall.request_id = "0b6f1c1e-9d53-4d1e-8f5e-6a3f2c1d0e9f";
    acall.limits = NULL;
    acall.map = NULL;
    map = NULL;
    adapter_request_init(&req);
}

static void teardown(void)
{
    restmap_free(map);
    adapter_request_dispose(&req);
    arena_free(arena);
    xr_cleanup();
}

/* Parses an XML-RPC call into xcall, as the proxy does before adapting. */
static void given_call(const char *xml)
{
    int rc = xr_parse_call(arena, xml, strlen(xml), NULL, XR_PARSE_FULL, &xcall, &err);
    ck_assert_msg(rc == 0, "%s", err.message);
}

static void given_method(const char *method)
{
    xcall.method = method;
    xcall.method_len = strlen(method);
    xcall.params = xr_value_new(arena, XR_ARRAY);
}

static const char *str(struct buf *b)
{
    return buf_cstr(b);
}

static int encode(void)
{
    return adapter_json_ops.encode(&acall, &req, &err);
}

static void decode(int status, const char *content_type, const char *body)
{
    struct adapter_answer ans = {status, content_type, content_type ? strlen(content_type) : 0,
                                 body, body ? strlen(body) : 0};
    memset(&out, 0xab, sizeof(out)); /* decode must set every field */
    adapter_json_ops.decode(arena, &acall, &ans, &out);
}

static void expect_fault(int64_t code, const char *message)
{
    ck_assert_int_eq(out.is_fault, 1);
    ck_assert_ptr_null(out.result);
    ck_assert_msg(out.fault_code == code, "code %lld, want %lld (%s)", (long long)out.fault_code,
                  (long long)code, out.fault_string);
    ck_assert_str_eq(out.fault_string, message);
    ck_assert_uint_eq(out.fault_string_len, strlen(message));
}

/* ------------------------------------------------------------------------ */

START_TEST(finds_adapters_by_kind)
{
    ck_assert_ptr_eq(adapter_find("json", 4), &adapter_json_ops);
    ck_assert_ptr_eq(adapter_find("json timeout=2000", 4), &adapter_json_ops);
    ck_assert_str_eq(adapter_json_ops.kind, "json");
    ck_assert_ptr_null(adapter_find("xmlrpc", 6));
    ck_assert_ptr_null(adapter_find("jso", 3));
    ck_assert_ptr_null(adapter_find("jsonx", 5));
    ck_assert_ptr_null(adapter_find("", 0));
}
END_TEST

START_TEST(encodes_the_json_contract)
{
    given_call("<?xml version=\"1.0\"?><methodCall><methodName>stock.get</methodName><params>"
               "<param><value><string>SKU-1</string></value></param><param><value><struct>"
               "<member><name>warehouse</name><value><int>3</int></value></member><member>"
               "<name>at</name><value><dateTime.iso8601>20260101T00:00:00</dateTime.iso8601>"
               "</value></member></struct></value></param><param><value><nil/></value></param>"
               "</params></methodCall>");
    ck_assert_int_eq(encode(), 0);
    ck_assert_str_eq(req.method, "POST");
    ck_assert_str_eq(str(&req.target), "/rpc/stock.get");
    ck_assert_str_eq(str(&req.headers), "Content-Type: application/json\r\n"
                                        "X-Request-Id: 0b6f1c1e-9d53-4d1e-8f5e-6a3f2c1d0e9f\r\n"
                                        "X-Strangler-Method: stock.get\r\n");
    ck_assert_str_eq(str(&req.body), "[\"SKU-1\",{\"warehouse\":3,\"at\":{\"$datetime\":"
                                     "\"20260101T00:00:00\"}},null]");
}
END_TEST

START_TEST(joins_the_base_path_with_one_slash)
{
    static const struct {
        const char *base, *target;
    } cases[] = {
        {"/rpc", "/rpc/m"}, {"/rpc/", "/rpc/m"}, {"", "/m"},        {NULL, "/m"},
        {"/", "/m"},        {"//", "/m"},        {"rpc", "/rpc/m"}, {"/a/b", "/a/b/m"},
    };
    given_method("m");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        adapter_request_dispose(&req);
        adapter_request_init(&req);
        acall.base_path = cases[i].base;
        ck_assert_int_eq(encode(), 0);
        ck_assert_str_eq(str(&req.target), cases[i].target);
    }
}
END_TEST

START_TEST(percent_encodes_the_method_in_the_path_only)
{
    given_method("a b/c?d%e#f\xc3\xa9~_-.Z9");
    ck_assert_int_eq(encode(), 0);
    ck_assert_str_eq(str(&req.target), "/rpc/a%20b%2Fc%3Fd%25e%23f%C3%A9~_-.Z9");
    ck_assert_ptr_nonnull(strstr(str(&req.headers), "X-Strangler-Method: a b/c?d%e#f\xc3\xa9~_-.Z9"
                                                    "\r\n"));
    ck_assert_str_eq(str(&req.body), "[]");
}
END_TEST

static void expect_refused(int code, const char *needle)
{
    ck_assert_int_eq(encode(), -1);
    ck_assert_int_eq(err.code, code);
    ck_assert_msg(strstr(err.message, needle) != NULL, "'%s' lacks '%s'", err.message, needle);
    ck_assert_ptr_null(req.method);
    ck_assert_uint_eq(req.target.len, 0);
    ck_assert_uint_eq(req.headers.len, 0);
    ck_assert_uint_eq(req.body.len, 0);
}

START_TEST(refuses_what_cannot_be_sent)
{
    given_method("a\r\nX-Injected: 1");
    expect_refused(XR_FAULT_INVALID_REQUEST, "control character");
    given_method("a\nb");
    expect_refused(XR_FAULT_INVALID_REQUEST, "control character");
    given_method("a\tb");
    expect_refused(XR_FAULT_INVALID_REQUEST, "control character");
    given_method("a\x7f");
    expect_refused(XR_FAULT_INVALID_REQUEST, "control character");
    given_method("..");
    expect_refused(XR_FAULT_INVALID_REQUEST, "'..'");
    given_method(".");
    expect_refused(XR_FAULT_INVALID_REQUEST, "'.'");
    given_method("");
    expect_refused(XR_FAULT_INVALID_REQUEST, "empty");

    given_method("m");
    acall.request_id = "id\r\nX-Evil: 1";
    expect_refused(XR_FAULT_INVALID_REQUEST, "X-Request-Id");
    acall.request_id = "id";

    xcall.params = NULL; /* parsed with XR_PARSE_METHOD_ONLY */
    expect_refused(XR_FAULT_INTERNAL, "parameters");

    given_call("<?xml version=\"1.0\"?><methodCall><methodName>price.set</methodName><params>"
               "<param><value>x</value></param><param><value><struct><member><name>price"
               "</name><value><double>nan</double></value></member></struct></value></param>"
               "</params></methodCall>");
    expect_refused(XR_FAULT_INVALID_PARAMS, "params[1].price: NaN has no JSON form");
}
END_TEST

START_TEST(leaves_out_a_missing_request_id)
{
    given_method("m");
    acall.request_id = NULL;
    ck_assert_int_eq(encode(), 0);
    ck_assert_str_eq(str(&req.headers), "Content-Type: application/json\r\n"
                                        "X-Strangler-Method: m\r\n");
}
END_TEST

/* ------------------------------------------------------------------------ */

START_TEST(a_2xx_json_body_is_the_result)
{
    decode(200, "application/json", "{\"sku\": \"SKU-1\", \"qty\": 12, \"price\": 9.5}");
    ck_assert_int_eq(out.is_fault, 0);
    ck_assert_ptr_nonnull(out.result);
    ck_assert_int_eq(out.result->type, XR_STRUCT);
    ck_assert_int_eq(xr_struct_get(out.result, "qty")->u.i, 12);
    ck_assert_int_eq(out.fault_code, 0);
    ck_assert_ptr_null(out.fault_string);

    /* Whatever the content type says. */
    decode(201, "text/plain", "null");
    ck_assert_int_eq(out.is_fault, 0);
    ck_assert_int_eq(out.result->type, XR_NIL);
    decode(299, NULL, " [1] ");
    ck_assert_int_eq(out.is_fault, 0);
    ck_assert_int_eq(out.result->type, XR_ARRAY);
    /* A 2xx fault-shaped object is a result: only 4xx/5xx carry faults. */
    decode(200, "application/json", "{\"faultCode\": 1, \"faultString\": \"x\"}");
    ck_assert_int_eq(out.is_fault, 0);
    ck_assert_int_eq(out.result->type, XR_STRUCT);
}
END_TEST

START_TEST(a_2xx_body_that_is_not_json_is_a_parse_fault)
{
    decode(200, "text/html", "<html>oops</html>");
    expect_fault(XR_FAULT_PARSE, "route stock-read: upstream stock-svc: answered HTTP 200 with "
                                 "invalid JSON (content-type text/html): invalid JSON at offset "
                                 "0: unexpected character");
    decode(204, NULL, "");
    expect_fault(XR_FAULT_PARSE, "route stock-read: upstream stock-svc: answered HTTP 204 with "
                                 "invalid JSON (content-type none): invalid JSON at offset 0: "
                                 "unexpected end of data");
    decode(200, "application/json", NULL);
    ck_assert_int_eq(out.fault_code, XR_FAULT_PARSE);
    decode(200, "application/json", "[NaN]");
    expect_fault(XR_FAULT_PARSE, "route stock-read: upstream stock-svc: answered HTTP 200 with "
                                 "invalid JSON (content-type application/json): $[0]: NaN is not "
                                 "JSON");
    decode(200, "application/json", "{\"n\": 18446744073709551616}");
    expect_fault(XR_FAULT_INTERNAL, "route stock-read: upstream stock-svc: answered HTTP 200 with "
                                    "JSON that has no XML-RPC form: $.n: integer beyond the "
                                    "64-bit range");
}
END_TEST

START_TEST(a_4xx_or_5xx_fault_object_is_passed_on_untouched)
{
    decode(409, "application/json",
           "{\"faultCode\": 42, \"faultString\": \"out of stock: SKU-1\", \"detail\": [1]}");
    expect_fault(42, "out of stock: SKU-1");
    decode(500, NULL, "{\"faultString\": \"boom\", \"faultCode\": -32500}");
    expect_fault(-32500, "boom");
    decode(404, "application/json", "{\"faultCode\": 8000000000, \"faultString\": \"\"}");
    expect_fault(8000000000LL, "");
}
END_TEST

START_TEST(other_statuses_map_to_interop_codes)
{
    static const struct {
        int status;
        int64_t code;
    } cases[] = {
        {404, XR_FAULT_METHOD_NOT_FOUND}, {400, XR_FAULT_INVALID_PARAMS},
        {422, XR_FAULT_INVALID_PARAMS},   {401, XR_FAULT_INVALID_REQUEST},
        {403, XR_FAULT_INVALID_REQUEST},  {409, XR_FAULT_INVALID_REQUEST},
        {499, XR_FAULT_INVALID_REQUEST},  {500, XR_FAULT_APPLICATION},
        {502, XR_FAULT_APPLICATION},      {503, XR_FAULT_APPLICATION},
        {599, XR_FAULT_APPLICATION},      {100, XR_FAULT_INTERNAL},
        {101, XR_FAULT_INTERNAL},         {301, XR_FAULT_INTERNAL},
        {304, XR_FAULT_INTERNAL},         {0, XR_FAULT_INTERNAL},
        {600, XR_FAULT_INTERNAL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char want[128];
        decode(cases[i].status, "text/plain", "nope");
        snprintf(want, sizeof(want), "route stock-read: upstream stock-svc: answered HTTP %d: nope",
                 cases[i].status);
        expect_fault(cases[i].code, want);
    }
}
END_TEST

START_TEST(bodies_that_are_not_faults_are_quoted_sanitised)
{
    decode(503, "text/html", "<h1>Service\r\nUnavailable</h1>\n\t\x01 ");
    expect_fault(XR_FAULT_APPLICATION, "route stock-read: upstream stock-svc: answered HTTP 503: "
                                       "<h1>Service Unavailable</h1>");
    decode(503, NULL, "");
    expect_fault(XR_FAULT_APPLICATION, "route stock-read: upstream stock-svc: answered HTTP 503: "
                                       "(empty body)");
    decode(500, "application/json", "{\"faultCode\": \"42\", \"faultString\": \"x\"}");
    expect_fault(XR_FAULT_APPLICATION, "route stock-read: upstream stock-svc: answered HTTP 500: "
                                       "{\"faultCode\": \"42\", \"faultString\": \"x\"}");
    decode(400, "application/json", "{\"faultCode\": 1}");
    ck_assert_int_eq(out.fault_code, XR_FAULT_INVALID_PARAMS);

    /* Long bodies are cut at 200 bytes, never inside a UTF-8 sequence. */
    char body[600];
    memset(body, 'x', 199);
    memcpy(body + 199, "\xc3\xa9", 2); /* é straddles byte 200 */
    memset(body + 201, 'y', 300);
    body[501] = '\0';
    decode(502, NULL, body);
    ck_assert_int_eq(out.fault_code, XR_FAULT_APPLICATION);
    const char *quoted = strstr(out.fault_string, "HTTP 502: ") + strlen("HTTP 502: ");
    ck_assert_uint_eq(strlen(quoted), 199 + 3);
    ck_assert_str_eq(quoted + 199, "...");
    memcpy(body + 198, "\xc3\xa9y", 3); /* now é ends at byte 200 */
    decode(502, NULL, body);
    quoted = strstr(out.fault_string, "HTTP 502: ") + strlen("HTTP 502: ");
    ck_assert_uint_eq(strlen(quoted), 200 + 3);
    ck_assert_int_eq(memcmp(quoted + 198, "\xc3\xa9...", 5), 0);
}
END_TEST

START_TEST(adapter_fault_words_messages_alike)
{
    adapter_fault(arena, &acall, XR_FAULT_TRANSPORT, &out, "connection refused after %d ms", 12);
    expect_fault(XR_FAULT_TRANSPORT,
                 "route stock-read: upstream stock-svc: connection refused after 12 ms");
    acall.route = NULL;
    acall.upstream = NULL;
    adapter_fault(arena, &acall, XR_FAULT_TRANSPORT, &out, "%s", "timed out");
    expect_fault(XR_FAULT_TRANSPORT, "route (none): upstream (none): timed out");
}
END_TEST

START_TEST(request_init_and_dispose_pair_up)
{
    struct adapter_request r;
    memset(&r, 0x5a, sizeof(r));
    adapter_request_init(&r);
    ck_assert_ptr_null(r.method);
    ck_assert_ptr_null(r.target.data);
    ck_assert_uint_eq(r.body.len, 0);
    buf_append_str(&r.body, "x");
    buf_append_str(&r.headers, "y");
    adapter_request_dispose(&r);
    ck_assert_ptr_null(r.body.data);
    ck_assert_ptr_null(r.headers.data);
    adapter_request_dispose(&r); /* twice is harmless */
}
END_TEST

/* The whole trip: client XML in, service JSON out and back, client XML. */
START_TEST(a_call_goes_through_the_adapter_and_back)
{
    given_call("<?xml version=\"1.0\"?><methodCall><methodName>stock.get</methodName><params>"
               "<param><value><base64>AP8=</base64></value></param></params></methodCall>");
    ck_assert_int_eq(encode(), 0);
    ck_assert_str_eq(str(&req.body), "[{\"$base64\":\"AP8=\"}]");

    decode(200, "application/json", "{\"qty\": 2147483648, \"when\": {\"$datetime\": \"x\"}}");
    struct buf xml = BUF_INIT;
    xr_write_response(&xml, &out);
    ck_assert_str_eq(buf_cstr(&xml),
                     "<?xml version=\"1.0\"?>\n<methodResponse><params><param><value><struct>"
                     "<member><name>qty</name><value><i8>2147483648</i8></value></member>"
                     "<member><name>when</name><value><dateTime.iso8601>x</dateTime.iso8601>"
                     "</value></member></struct></value></param></params></methodResponse>\n");
    struct xr_response back;
    ck_assert_int_eq(xr_parse_response(arena, xml.data, xml.len, NULL, &back, &err), 0);
    ck_assert_int_eq(xr_struct_get(back.result, "qty")->u.i, 2147483648LL);

    xml.len = 0;
    decode(409, "application/json", "{\"faultCode\": 7, \"faultString\": \"a < b\"}");
    xr_write_response(&xml, &out);
    ck_assert_int_eq(xr_parse_response(arena, xml.data, xml.len, NULL, &back, &err), 0);
    ck_assert_int_eq(back.is_fault, 1);
    ck_assert_int_eq(back.fault_code, 7);
    ck_assert_str_eq(back.fault_string, "a < b");
    buf_dispose(&xml);
}
END_TEST

/* --- map=METHOD:TEMPLATE (restmap.h) -------------------------------------- */

static void given_map(const char *spec)
{
    char why[256] = "";
    restmap_free(map);
    map = NULL;
    ck_assert_msg(restmap_parse(spec, &map, why, sizeof(why)) == 0, "%s", why);
    acall.map = map;
    adapter_request_dispose(&req);
    adapter_request_init(&req);
}

/* The request encode() made: method, target, header lines, body. */
static void expect_request(const char *method, const char *target, const char *headers,
                           const char *body)
{
    ck_assert_str_eq(req.method, method);
    ck_assert_str_eq(str(&req.target), target);
    ck_assert_str_eq(str(&req.headers), headers);
    ck_assert_str_eq(str(&req.body), body);
}

START_TEST(a_mapped_get_puts_the_parameters_in_the_target)
{
    given_map("GET:/stock/{1}?warehouse={2}");
    given_call("<?xml version=\"1.0\"?><methodCall><methodName>stock.get</methodName><params>"
               "<param><value><string>SKU 1/\xc3\xa9?#</string></value></param>"
               "<param><value><int>3</int></value></param></params></methodCall>");
    ck_assert_int_eq(encode(), 0);
    expect_request("GET", "/rpc/stock/SKU%201%2F%C3%A9%3F%23?warehouse=3",
                   "Accept: application/json\r\n"
                   "X-Request-Id: 0b6f1c1e-9d53-4d1e-8f5e-6a3f2c1d0e9f\r\n"
                   "X-Strangler-Method: stock.get\r\n",
                   "");
}
END_TEST

START_TEST(a_mapped_put_sends_what_the_template_leaves_as_json)
{
    given_map("PUT:/stock/{1}");
    given_call("<?xml version=\"1.0\"?><methodCall><methodName>stock.adjust</methodName><params>"
               "<param><value>SKU-1</value></param><param><value><struct><member><name>delta"
               "</name><value><int>-2</int></value></member></struct></value></param>"
               "</params></methodCall>");
    ck_assert_int_eq(encode(), 0);
    expect_request("PUT", "/rpc/stock/SKU-1",
                   "Accept: application/json\r\n"
                   "Content-Type: application/json\r\n"
                   "X-Request-Id: 0b6f1c1e-9d53-4d1e-8f5e-6a3f2c1d0e9f\r\n"
                   "X-Strangler-Method: stock.adjust\r\n",
                   "{\"delta\":-2}");

    given_map("POST:/orders");
    acall.base_path = "/";
    acall.request_id = NULL;
    given_method("orders.list");
    ck_assert_int_eq(encode(), 0);
    expect_request("POST", "/orders",
                   "Accept: application/json\r\n"
                   "X-Strangler-Method: orders.list\r\n",
                   "");

    given_map("PATCH:/orders/{2}");
    given_call("<?xml version=\"1.0\"?><methodCall><methodName>orders.patch</methodName><params>"
               "<param><value><boolean>1</boolean></value></param><param><value><i4>9</i4>"
               "</value></param><param><value><nil/></value></param></params></methodCall>");
    ck_assert_int_eq(encode(), 0);
    expect_request("PATCH", "/orders/9",
                   "Accept: application/json\r\n"
                   "Content-Type: application/json\r\n"
                   "X-Strangler-Method: orders.patch\r\n",
                   "[true,null]");
}
END_TEST

START_TEST(a_mapped_call_that_does_not_fit_is_refused)
{
    given_map("DELETE:/stock/{1}");
    given_call("<?xml version=\"1.0\"?><methodCall><methodName>stock.drop</methodName><params>"
               "<param><value><struct></struct></value></param></params></methodCall>");
    expect_refused(XR_FAULT_INVALID_PARAMS, "map: parameter 1 is a struct");
    ck_assert_str_eq(err.message, "map: parameter 1 is a struct; only strings, numbers, booleans "
                                  "and dates go into a path");
    given_method("stock.drop");
    expect_refused(XR_FAULT_INVALID_PARAMS, "map: ");
    ck_assert_str_eq(err.message, "map: the call has 0 parameters, the template uses {1}");
    given_call("<?xml version=\"1.0\"?><methodCall><methodName>stock.drop</methodName><params>"
               "<param><value>A</value></param><param><value>B</value></param></params>"
               "</methodCall>");
    expect_refused(XR_FAULT_INVALID_PARAMS, "map: ");
    ck_assert_str_eq(err.message, "map: DELETE takes 1 parameter (all in its template), the call "
                                  "has 2");
    /* What the RPC contract refuses, a map refuses too. */
    given_method("a\r\nX-Injected: 1");
    expect_refused(XR_FAULT_INVALID_REQUEST, "control character");
    given_method("stock.drop");
    xcall.params = NULL;
    expect_refused(XR_FAULT_INTERNAL, "parameters");
}
END_TEST

START_TEST(a_mapped_answer_without_a_body_is_nil)
{
    given_map("DELETE:/stock/{1}");
    decode(204, NULL, "");
    ck_assert_int_eq(out.is_fault, 0);
    ck_assert_ptr_nonnull(out.result);
    ck_assert_int_eq(out.result->type, XR_NIL);
    ck_assert_int_eq(out.fault_code, 0);
    ck_assert_ptr_null(out.fault_string);
    decode(200, "application/json", NULL);
    ck_assert_int_eq(out.is_fault, 0);
    ck_assert_int_eq(out.result->type, XR_NIL);

    /* Everything else reads as the RPC contract reads it. */
    decode(200, "application/json", "{\"sku\": \"A\", \"qty\": 12}");
    ck_assert_int_eq(out.is_fault, 0);
    ck_assert_int_eq(out.result->type, XR_STRUCT);
    ck_assert_int_eq(xr_struct_get(out.result, "qty")->u.i, 12);
    decode(404, "application/json", "{\"faultCode\": 404, \"faultString\": \"unknown sku: A\"}");
    expect_fault(404, "unknown sku: A");
    decode(404, "text/html", "<html><body>Not Found</body></html>");
    expect_fault(XR_FAULT_METHOD_NOT_FOUND, "route stock-read: upstream stock-svc: answered HTTP "
                                            "404: <html><body>Not Found</body></html>");
    decode(200, "text/html", " ");
    ck_assert_int_eq(out.fault_code, XR_FAULT_PARSE);
    decode(500, NULL, "");
    expect_fault(XR_FAULT_APPLICATION, "route stock-read: upstream stock-svc: answered HTTP 500: "
                                       "(empty body)");
}
END_TEST

Suite *adapter_suite(void)
{
    Suite *s = suite_create("adapter");
    TCase *tc = tcase_create("encode");
    tcase_set_timeout(tc, UNIT_TIMEOUT);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, finds_adapters_by_kind);
    tcase_add_test(tc, encodes_the_json_contract);
    tcase_add_test(tc, joins_the_base_path_with_one_slash);
    tcase_add_test(tc, percent_encodes_the_method_in_the_path_only);
    tcase_add_test(tc, refuses_what_cannot_be_sent);
    tcase_add_test(tc, leaves_out_a_missing_request_id);
    suite_add_tcase(s, tc);

    tc = tcase_create("decode");
    tcase_set_timeout(tc, UNIT_TIMEOUT);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, a_2xx_json_body_is_the_result);
    tcase_add_test(tc, a_2xx_body_that_is_not_json_is_a_parse_fault);
    tcase_add_test(tc, a_4xx_or_5xx_fault_object_is_passed_on_untouched);
    tcase_add_test(tc, other_statuses_map_to_interop_codes);
    tcase_add_test(tc, bodies_that_are_not_faults_are_quoted_sanitised);
    tcase_add_test(tc, adapter_fault_words_messages_alike);
    tcase_add_test(tc, request_init_and_dispose_pair_up);
    tcase_add_test(tc, a_call_goes_through_the_adapter_and_back);
    suite_add_tcase(s, tc);

    tc = tcase_create("map");
    tcase_set_timeout(tc, UNIT_TIMEOUT);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, a_mapped_get_puts_the_parameters_in_the_target);
    tcase_add_test(tc, a_mapped_put_sends_what_the_template_leaves_as_json);
    tcase_add_test(tc, a_mapped_call_that_does_not_fit_is_refused);
    tcase_add_test(tc, a_mapped_answer_without_a_body_is_nil);
    suite_add_tcase(s, tc);
    return s;
}
