#include "unit.h"
#include "common/buf.h"
#include "common/mem.h"
#include "legacy-adapters/multicall.h"
#include "legacy-adapters/xmlrpc.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Each test runs in its own process (Check's fork mode); the fixture gives
 * it a fresh arena and the parser's one-time initialisation. */
static struct arena *arena;
static struct xr_error err;
/* Where mc_read_calls() must leave *calls alone. */
static struct mc_call sentinel;

static void setup(void)
{
    xr_init();
    arena = arena_new(0);
    memset(&err, 0, sizeof(err));
}

static void teardown(void)
{
    arena_free(arena);
    xr_cleanup();
}

#define PROLOGUE "<?xml version=\"1.0\"?>\n"
/* A system.multicall whose one parameter is `value`. */
#define MC_RAW(params)                                                                             \
    PROLOGUE "<methodCall><methodName>system.multicall</methodName><params>" params                \
             "</params></methodCall>"
#define MC(calls)           MC_RAW("<param><value><array><data>" calls "</data></array></value></param>")
#define MEMBER(name, value) "<member><name>" name "</name><value>" value "</value></member>"
#define STRUCT(members)     "<value><struct>" members "</struct></value>"
#define ARRAY(values)       "<array><data>" values "</data></array>"
#define CALL1(method, values)                                                                      \
    STRUCT(MEMBER("methodName", "<string>" method "</string>") MEMBER("params", ARRAY(values)))
#define STR(s) "<value><string>" s "</string></value>"
#define INT(s) "<value><int>" s "</int></value>"

/* Verbatim from Python 3: xmlrpc.client.MultiCall with m.stock.get('SKU-1'),
 * m.stock.adjust('SKU-2', -3) and m.system.listMethods() (what
 * xmlrpc.client.dumps((calls,), 'system.multicall') writes). */
static const char python_multicall[] =
    "<?xml version='1.0'?>\n<methodCall>\n<methodName>system.multicall</methodName>\n<params>\n"
    "<param>\n<value><array><data>\n"
    "<value><struct>\n<member>\n<name>methodName</name>\n<value><string>stock.get</string>"
    "</value>\n</member>\n<member>\n<name>params</name>\n<value><array><data>\n"
    "<value><string>SKU-1</string></value>\n</data></array></value>\n</member>\n</struct>"
    "</value>\n"
    "<value><struct>\n<member>\n<name>methodName</name>\n<value><string>stock.adjust</string>"
    "</value>\n</member>\n<member>\n<name>params</name>\n<value><array><data>\n"
    "<value><string>SKU-2</string></value>\n<value><int>-3</int></value>\n</data></array>"
    "</value>\n</member>\n</struct></value>\n"
    "<value><struct>\n<member>\n<name>methodName</name>\n<value><string>system.listMethods"
    "</string></value>\n</member>\n<member>\n<name>params</name>\n<value><array><data>\n"
    "</data></array></value>\n</member>\n</struct></value>\n"
    "</data></array></value>\n</param>\n</params>\n</methodCall>\n";

static struct xr_call parse_call(const char *xml, size_t len)
{
    struct xr_call c;
    memset(&c, 0, sizeof(c));
    int rc = xr_parse_call(arena, xml, len, NULL, XR_PARSE_FULL, &c, &err);
    ck_assert_msg(rc == 0, "parse failed: %d %s", err.code, err.message);
    return c;
}

static struct xr_response parse_response(const char *xml, size_t len)
{
    struct xr_response r;
    memset(&r, 0, sizeof(r));
    int rc = xr_parse_response(arena, xml, len, NULL, &r, &err);
    ck_assert_msg(rc == 0, "parse failed: %d %s\n%.*s", err.code, err.message, (int)len, xml);
    return r;
}

/* Reads the calls of a multicall body that must be valid. */
static size_t read_ok(const char *xml, struct mc_call **calls)
{
    struct xr_call c = parse_call(xml, strlen(xml));
    size_t n = 0;
    ck_assert(mc_is_multicall(&c));
    int rc = mc_read_calls(arena, &c, calls, &n, &err);
    ck_assert_msg(rc == 0, "mc_read_calls failed: %d %s", err.code, err.message);
    return n;
}

static void expect_str(const struct xr_value *v, const char *s)
{
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(v->type, XR_STRING);
    ck_assert_uint_eq(v->u.str.len, strlen(s));
    ck_assert_str_eq(v->u.str.ptr, s);
}

static void expect_method(const struct mc_call *c, const char *method)
{
    ck_assert_uint_eq(c->method_len, strlen(method));
    ck_assert_str_eq(c->method, method);
}

/* Element i of an XR_ARRAY or XR_STRUCT. */
static const struct xr_value *nth(const struct xr_value *list, size_t i)
{
    ck_assert_ptr_nonnull(list);
    ck_assert(list->type == XR_ARRAY || list->type == XR_STRUCT);
    ck_assert_uint_gt(list->u.list.count, i);
    const struct xr_value *v = list->u.list.first;
    while (i-- > 0)
        v = v->next;
    ck_assert_ptr_nonnull(v);
    return v;
}

static void expect_fault(const struct xr_response *r, int64_t code, const char *message)
{
    ck_assert_msg(r->is_fault, "expected fault %lld '%s'", (long long)code, message);
    ck_assert_ptr_null(r->result);
    ck_assert_int_eq(r->fault_code, code);
    ck_assert_uint_eq(r->fault_string_len, strlen(message));
    ck_assert_str_eq(r->fault_string, message);
}

/* ------------------------------------------------------------------------ */

START_TEST(only_system_multicall_is_a_multicall)
{
    static const char *const others[] = {
        "system.multicallx", "system.Multicall", "system.multical", "stock.get", "",
        "system.multicall "};
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        struct xr_call c = {others[i], strlen(others[i]), NULL};
        ck_assert_msg(!mc_is_multicall(&c), "'%s' taken for a multicall", others[i]);
    }
    struct xr_call c = {"system.multicall", 16, NULL};
    ck_assert(mc_is_multicall(&c));
    /* The length decides, not the NUL: a longer name with the same prefix. */
    c.method_len = 17;
    c.method = "system.multicall\0";
    ck_assert(!mc_is_multicall(&c));
    c = parse_call(python_multicall, sizeof(python_multicall) - 1);
    ck_assert(mc_is_multicall(&c));
}
END_TEST

START_TEST(reads_what_python_multicall_sends)
{
    struct mc_call *calls = NULL;
    size_t n = read_ok(python_multicall, &calls);

    ck_assert_uint_eq(n, 3);
    expect_method(&calls[0], "stock.get");
    ck_assert_int_eq(calls[0].params->type, XR_ARRAY);
    ck_assert_uint_eq(calls[0].params->u.list.count, 1);
    expect_str(nth(calls[0].params, 0), "SKU-1");

    expect_method(&calls[1], "stock.adjust");
    ck_assert_uint_eq(calls[1].params->u.list.count, 2);
    expect_str(nth(calls[1].params, 0), "SKU-2");
    ck_assert_int_eq(nth(calls[1].params, 1)->type, XR_INT);
    ck_assert_int_eq(nth(calls[1].params, 1)->u.i, -3);

    expect_method(&calls[2], "system.listMethods");
    ck_assert_int_eq(calls[2].params->type, XR_ARRAY);
    ck_assert_uint_eq(calls[2].params->u.list.count, 0);
}
END_TEST

START_TEST(reads_the_single_call_example_and_other_valid_shapes)
{
    /* The one-call body of the design notes, as Python writes it. */
    static const char one[] =
        "<?xml version='1.0'?>\n<methodCall>\n<methodName>system.multicall</methodName>\n"
        "<params>\n<param>\n<value><array><data>\n<value><struct>\n<member>\n"
        "<name>methodName</name>\n<value><string>stock.get</string></value>\n</member>\n"
        "<member>\n<name>params</name>\n<value><array><data>\n"
        "<value><string>SKU-1</string></value>\n</data></array></value>\n</member>\n"
        "</struct></value>\n</data></array></value>\n</param>\n</params>\n</methodCall>\n";
    struct mc_call *calls = NULL;
    size_t n = read_ok(one, &calls);
    ck_assert_uint_eq(n, 1);
    expect_method(&calls[0], "stock.get");
    expect_str(nth(calls[0].params, 0), "SKU-1");

    /* Members in any order, extra members ignored, the first of duplicates
     * counts, and an untyped <value> is a string. */
    n = read_ok(MC(STRUCT(MEMBER("params", ARRAY(INT("1"))) MEMBER("x", "<int>9</int>")
                              MEMBER("methodName", "a.b") MEMBER("methodName", "<string>c</string>")
                                  MEMBER("params", ARRAY(""))) CALL1("d", "")),
                &calls);
    ck_assert_uint_eq(n, 2);
    expect_method(&calls[0], "a.b");
    ck_assert_uint_eq(calls[0].params->u.list.count, 1);
    ck_assert_int_eq(nth(calls[0].params, 0)->u.i, 1);
    expect_method(&calls[1], "d");
}
END_TEST

START_TEST(an_empty_multicall_has_no_calls)
{
    struct mc_call *calls = &sentinel;
    size_t n = read_ok(MC(""), &calls);
    ck_assert_uint_eq(n, 0);
    ck_assert_ptr_null(calls);
}
END_TEST

START_TEST(every_wrong_shape_is_invalid_params_naming_the_call)
{
    static const struct {
        const char *xml;
        const char *message;
    } cases[] = {
        {MC_RAW(""), "system.multicall: takes exactly one parameter, got 0"},
        {PROLOGUE "<methodCall><methodName>system.multicall</methodName></methodCall>",
         "system.multicall: takes exactly one parameter, got 0"},
        {MC_RAW("<param><value>" ARRAY("") "</value></param><param><value>" ARRAY(
             "") "</value></param>"),
         "system.multicall: takes exactly one parameter, got 2"},
        {MC_RAW("<param>" CALL1("a", "") "</param>"),
         "system.multicall: the parameter must be an array, not struct"},
        {MC_RAW("<param>" STR("a") "</param>"),
         "system.multicall: the parameter must be an array, not string"},
        {MC(CALL1("a", "") STR("b")), "system.multicall: call 1 must be a struct, not string"},
        {MC(CALL1("a", "") "<value>" ARRAY("") "</value>"),
         "system.multicall: call 1 must be a struct, not array"},
        {MC(CALL1("a", "") CALL1("b", "") STRUCT(MEMBER("params", ARRAY("")))),
         "system.multicall: call 2: methodName is missing"},
        {MC(STRUCT(MEMBER("methodname", "<string>a</string>") MEMBER("params", ARRAY("")))),
         "system.multicall: call 0: methodName is missing"},
        {MC(STRUCT(MEMBER("methodName", "<int>7</int>") MEMBER("params", ARRAY("")))),
         "system.multicall: call 0: methodName must be a string, not int"},
        {MC(STRUCT(MEMBER("methodName", "<base64>YQ==</base64>") MEMBER("params", ARRAY("")))),
         "system.multicall: call 0: methodName must be a string, not base64"},
        {MC(CALL1("a", "") CALL1("", "")), "system.multicall: call 1: methodName is empty"},
        {MC(STRUCT(MEMBER("methodName", "<string>a</string>"))),
         "system.multicall: call 0: params is missing"},
        {MC(STRUCT(MEMBER("methodName", "<string>a</string>")
                       MEMBER("params", "<struct></struct>"))),
         "system.multicall: call 0: params must be an array, not struct"},
        {MC(CALL1("a", "") STRUCT(MEMBER("methodName", "<string>a</string>")
                                      MEMBER("params", "<string>x</string>"))),
         "system.multicall: call 1: params must be an array, not string"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct xr_call c = parse_call(cases[i].xml, strlen(cases[i].xml));
        struct mc_call *calls = &sentinel; /* untouched on error */
        size_t n = 12345;
        memset(&err, 0, sizeof(err));
        ck_assert_msg(mc_read_calls(arena, &c, &calls, &n, &err) == -1, "case %zu accepted", i);
        ck_assert_msg(err.code == XR_FAULT_INVALID_PARAMS, "case %zu: code %d", i, err.code);
        ck_assert_msg(strcmp(err.message, cases[i].message) == 0, "case %zu: '%s', want '%s'", i,
                      err.message, cases[i].message);
        ck_assert_ptr_eq(calls, &sentinel);
        ck_assert_uint_eq(n, 12345);
    }
}
END_TEST

START_TEST(a_nul_in_a_method_name_built_from_json_is_refused)
{
    struct xr_value *params = xr_value_new(arena, XR_ARRAY);
    struct xr_value *list = xr_value_new(arena, XR_ARRAY);
    struct xr_value *s = xr_value_new(arena, XR_STRUCT);
    xr_struct_add(arena, s, "methodName", xr_value_new_string(arena, XR_STRING, "a\0b", 3));
    xr_struct_add(arena, s, "params", xr_value_new(arena, XR_ARRAY));
    xr_value_append(list, s);
    xr_value_append(params, list);
    struct xr_call c = {"system.multicall", 16, params};
    struct mc_call *calls = NULL;
    size_t n = 0;

    ck_assert_int_eq(mc_read_calls(arena, &c, &calls, &n, &err), -1);
    ck_assert_int_eq(err.code, XR_FAULT_INVALID_PARAMS);
    ck_assert_str_eq(err.message, "system.multicall: call 0: methodName contains a NUL byte");
}
END_TEST

START_TEST(a_call_parsed_without_params_is_an_internal_error)
{
    struct xr_call c;
    struct mc_call *calls = NULL;
    size_t n = 7;
    ck_assert_int_eq(xr_parse_call(arena, python_multicall, sizeof(python_multicall) - 1, NULL,
                                   XR_PARSE_METHOD_ONLY, &c, &err),
                     0);
    ck_assert_ptr_null(c.params);
    ck_assert(mc_is_multicall(&c));
    ck_assert_int_eq(mc_read_calls(arena, &c, &calls, &n, &err), -1);
    ck_assert_int_eq(err.code, XR_FAULT_INTERNAL);
    ck_assert_ptr_nonnull(strstr(err.message, "without its parameters"));
    ck_assert_uint_eq(n, 7);
}
END_TEST

/* Writes method(params) as a call body into *b (emptied first). */
static void write_call(struct buf *b, const char *method, const struct xr_value *params)
{
    b->len = 0;
    xr_write_call(b, method, strlen(method), params);
}

START_TEST(built_params_carry_the_chosen_calls_in_order)
{
    /* Call 1 has a member after params: reusing the params node itself in a
     * new struct would cut "trace" off the original struct. */
    const char *xml = MC(CALL1("a.one", STR("A")) STRUCT(
        MEMBER("methodName", "<string>b.two</string>")
            MEMBER("params", ARRAY(STR("B") INT("2") "<value>" ARRAY(INT("20")) "</value>"))
                MEMBER("trace", "<int>42</int>")) CALL1("c.three", "")
                             CALL1("d.four", STR("D") STRUCT(MEMBER("k", "<int>4</int>"))));
    struct xr_call orig = parse_call(xml, strlen(xml));
    struct mc_call *calls = NULL;
    size_t n = 0;
    struct buf before = BUF_INIT, after = BUF_INIT, part = BUF_INIT;

    ck_assert_int_eq(mc_read_calls(arena, &orig, &calls, &n, &err), 0);
    ck_assert_uint_eq(n, 4);
    write_call(&before, "system.multicall", orig.params);

    /* Out of order, and one call twice. */
    static const size_t idx[] = {3, 1, 1, 0};
    struct xr_value *params = mc_build_params(arena, calls, idx, 4);
    ck_assert_int_eq(params->type, XR_ARRAY);
    ck_assert_uint_eq(params->u.list.count, 1);
    ck_assert_int_eq(nth(params, 0)->type, XR_ARRAY);
    write_call(&part, "system.multicall", params);

    struct xr_call back = parse_call(part.data, part.len);
    struct mc_call *got = NULL;
    size_t k = 0;
    ck_assert_int_eq(mc_read_calls(arena, &back, &got, &k, &err), 0);
    ck_assert_uint_eq(k, 4);
    expect_method(&got[0], "d.four");
    ck_assert_uint_eq(got[0].params->u.list.count, 2);
    expect_str(nth(got[0].params, 0), "D");
    ck_assert_int_eq(nth(nth(got[0].params, 1), 0)->u.i, 4);
    ck_assert_str_eq(nth(nth(got[0].params, 1), 0)->name, "k");
    for (size_t i = 1; i <= 2; i++) {
        expect_method(&got[i], "b.two");
        ck_assert_uint_eq(got[i].params->u.list.count, 3);
        expect_str(nth(got[i].params, 0), "B");
        ck_assert_int_eq(nth(got[i].params, 1)->u.i, 2);
        ck_assert_int_eq(nth(nth(got[i].params, 2), 0)->u.i, 20);
    }
    expect_method(&got[3], "a.one");
    expect_str(nth(got[3].params, 0), "A");
    /* Only methodName and params go on ("trace" stays behind), in that
     * order. */
    for (size_t i = 0; i < 4; i++) {
        const struct xr_value *st = nth(nth(back.params, 0), i);
        ck_assert_uint_eq(st->u.list.count, 2);
        ck_assert_str_eq(nth(st, 0)->name, "methodName");
        ck_assert_str_eq(nth(st, 1)->name, "params");
    }

    /* The original tree reads exactly as before. */
    write_call(&after, "system.multicall", orig.params);
    ck_assert_uint_eq(after.len, before.len);
    ck_assert_int_eq(memcmp(after.data, before.data, before.len), 0);
    ck_assert_uint_eq(nth(nth(orig.params, 0), 1)->u.list.count, 3);
    ck_assert_str_eq(nth(nth(nth(orig.params, 0), 1), 2)->name, "trace");
    ck_assert_int_eq(nth(nth(nth(orig.params, 0), 1), 2)->u.i, 42);

    /* No calls: one empty array, which reads back as an empty multicall. */
    params = mc_build_params(arena, calls, NULL, 0);
    write_call(&part, "system.multicall", params);
    back = parse_call(part.data, part.len);
    k = 99;
    ck_assert_int_eq(mc_read_calls(arena, &back, &got, &k, &err), 0);
    ck_assert_uint_eq(k, 0);

    buf_dispose(&before);
    buf_dispose(&after);
    buf_dispose(&part);
}
END_TEST

/* A response whose result is the whole <value> `v`, or has the typed
 * content `typed`. */
#define RESP_V(v)   PROLOGUE "<methodResponse><params><param>" v "</param></params></methodResponse>"
#define RESP(typed) RESP_V("<value>" typed "</value>")
/* A fault struct as a whole <value>. */
#define FAULT(code, string)                                                                        \
    STRUCT(MEMBER("faultCode", "<int>" code "</int>")                                              \
               MEMBER("faultString", "<string>" string "</string>"))

static struct xr_response split(const char *xml, size_t k, const char *who, struct xr_response *out)
{
    struct xr_response r = parse_response(xml, strlen(xml));
    /* Garbage first, so a field the split forgets to set shows up. */
    memset(out, 0x5a, k * sizeof(*out));
    mc_split_answers(arena, &r, k, who, out);
    return r;
}

START_TEST(good_answers_become_results)
{
    /* Verbatim from Python 3's SimpleXMLRPCServer answering a multicall of
     * three calls, the second of which failed. */
    static const char python_answer[] =
        "<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><array><data>\n"
        "<value><array><data>\n<value><struct>\n<member>\n<name>sku</name>\n"
        "<value><string>SKU-1</string></value>\n</member>\n<member>\n<name>qty</name>\n"
        "<value><int>7</int></value>\n</member>\n</struct></value>\n</data></array></value>\n"
        "<value><struct>\n<member>\n<name>faultCode</name>\n<value><int>404</int></value>\n"
        "</member>\n<member>\n<name>faultString</name>\n<value><string>no such SKU</string>"
        "</value>\n</member>\n</struct></value>\n"
        "<value><array><data>\n<value><array><data>\n<value><string>a</string></value>\n"
        "<value><string>b</string></value>\n</data></array></value>\n</data></array></value>\n"
        "</data></array></value>\n</param>\n</params>\n</methodResponse>\n";
    struct xr_response out[3];

    split(python_answer, 3, "route r: upstream u", out);
    ck_assert(!out[0].is_fault);
    ck_assert_int_eq(out[0].result->type, XR_STRUCT);
    expect_str(xr_struct_get(out[0].result, "sku"), "SKU-1");
    ck_assert_int_eq(xr_struct_get(out[0].result, "qty")->u.i, 7);
    ck_assert_uint_eq(out[0].fault_string_len, 0);
    expect_fault(&out[1], 404, "no such SKU");
    ck_assert(!out[2].is_fault);
    ck_assert_int_eq(out[2].result->type, XR_ARRAY);
    ck_assert_uint_eq(out[2].result->u.list.count, 2);
    expect_str(nth(out[2].result, 1), "b");

    /* All results; a result may itself be nil or an empty array. */
    split(
        RESP(ARRAY("<value>" ARRAY(INT("1")) "</value><value>" ARRAY(
            "<value><nil/></value>") "</value><value>" ARRAY("<value>" ARRAY("") "</value>") "</"
                                                                                             "value"
                                                                                             ">")),
        3, NULL, out);
    for (size_t i = 0; i < 3; i++)
        ck_assert_msg(!out[i].is_fault, "answer %zu is a fault", i);
    ck_assert_int_eq(out[0].result->u.i, 1);
    ck_assert_int_eq(out[1].result->type, XR_NIL);
    ck_assert_int_eq(out[2].result->type, XR_ARRAY);
    ck_assert_uint_eq(out[2].result->u.list.count, 0);
}
END_TEST

START_TEST(fault_answers_and_mixed_answers_keep_their_places)
{
    struct xr_response out[4];

    split(RESP(ARRAY(FAULT("1", "one") FAULT("-32601", "no method"))), 2, "w", out);
    expect_fault(&out[0], 1, "one");
    expect_fault(&out[1], -32601, "no method");

    /* A fault struct may carry more members, in any order. */
    split(
        RESP(ARRAY("<value>" ARRAY(STR("r0")) "</value>" STRUCT(
            MEMBER("faultString", "<string>bad</string>") MEMBER("extra", "<int>1</int>") MEMBER(
                "faultCode",
                "<i8>5000000000</i8>")) "<value>" ARRAY(STR("r2")) "</value>" FAULT("3", "three"))),
        4, "w", out);
    expect_str(out[0].result, "r0");
    ck_assert(!out[0].is_fault);
    expect_fault(&out[1], INT64_C(5000000000), "bad");
    expect_str(out[2].result, "r2");
    ck_assert(!out[2].is_fault);
    expect_fault(&out[3], 3, "three");
}
END_TEST

START_TEST(a_fault_for_the_whole_multicall_answers_every_call)
{
    struct xr_response out[3];
    split(PROLOGUE "<methodResponse><fault>" FAULT(
              "-32601", "method \"system.multicall\" is not supported") "</fault>"
                                                                        "</methodResponse>",
          3, "who", out);
    for (size_t i = 0; i < 3; i++)
        expect_fault(&out[i], -32601, "method \"system.multicall\" is not supported");
}
END_TEST

START_TEST(a_wrongly_shaped_answer_fails_every_call)
{
    struct xr_response out[3];

    split(RESP(ARRAY("<value>" ARRAY(INT("1")) "</value><value>" ARRAY(INT("2")) "</value>")), 3,
          "route stock-read: upstream legacy", out);
    for (size_t i = 0; i < 3; i++)
        expect_fault(&out[i], XR_FAULT_INTERNAL,
                     "route stock-read: upstream legacy: system.multicall: 2 answers for 3 calls");

    split(
        RESP(ARRAY("<value>" ARRAY(INT("1")) "</value><value>" ARRAY(INT(
            "2")) "</value><value>" ARRAY(INT("3")) "</value><value>" ARRAY(INT("4")) "</value>")),
        3, "u", out);
    for (size_t i = 0; i < 3; i++)
        expect_fault(&out[i], XR_FAULT_INTERNAL, "u: system.multicall: 4 answers for 3 calls");

    split(RESP("<string>ok</string>"), 3, "", out);
    for (size_t i = 0; i < 3; i++)
        expect_fault(&out[i], XR_FAULT_INTERNAL,
                     "system.multicall: the answer is string, not an array");

    split(RESP_V(FAULT("1", "a fault as a result")), 2, NULL, out);
    for (size_t i = 0; i < 2; i++)
        expect_fault(&out[i], XR_FAULT_INTERNAL,
                     "system.multicall: the answer is struct, not an array");

    /* A result that is no value at all (an answer built by hand). */
    struct xr_response none = {0, NULL, 0, NULL, 0};
    mc_split_answers(arena, &none, 2, "x", out);
    expect_fault(&out[0], XR_FAULT_INTERNAL, "x: system.multicall: the answer has no value");
    expect_fault(&out[1], XR_FAULT_INTERNAL, "x: system.multicall: the answer has no value");

    /* Zero calls: nothing to write, and nothing written, whatever came. */
    static const char *const empty[] = {RESP(ARRAY("")), RESP("<int>1</int>")};
    for (size_t i = 0; i < 2; i++) {
        struct xr_response r = parse_response(empty[i], strlen(empty[i]));
        out[0].is_fault = 0;
        out[0].fault_code = 77;
        mc_split_answers(arena, &r, 0, "x", out);
        ck_assert_int_eq(out[0].is_fault, 0);
        ck_assert_int_eq(out[0].fault_code, 77);
    }
}
END_TEST

START_TEST(a_bad_element_fails_only_its_own_call)
{
    struct xr_response out[6];

    split(
        RESP(ARRAY("<value>" ARRAY(STR("good")) "</value>" INT("7") "<value>" ARRAY(
            "") "</value><value>" ARRAY(INT("1")
                                            INT("2")) "</value>" STRUCT(MEMBER("faultCode",
                                                                               "<string>1</string>")
                                                                            MEMBER("faultString",
                                                                                   "<string>s</"
                                                                                   "string>"))
                       STRUCT(MEMBER("faultCode", "<int>1</int>")))),
        6, "route r", out);
    ck_assert(!out[0].is_fault);
    expect_str(out[0].result, "good");
    expect_fault(&out[1], XR_FAULT_INTERNAL,
                 "route r: system.multicall: answer 1 is neither [value] nor a fault (int)");
    expect_fault(&out[2], XR_FAULT_INTERNAL,
                 "route r: system.multicall: answer 2 is neither [value] nor a fault "
                 "(an array of 0)");
    expect_fault(&out[3], XR_FAULT_INTERNAL,
                 "route r: system.multicall: answer 3 is neither [value] nor a fault "
                 "(an array of 2)");
    expect_fault(&out[4], XR_FAULT_INTERNAL,
                 "route r: system.multicall: answer 4 is neither [value] nor a fault "
                 "(the fault struct has no integer faultCode)");
    expect_fault(&out[5], XR_FAULT_INTERNAL,
                 "route r: system.multicall: answer 5 is neither [value] nor a fault "
                 "(the fault struct has no string faultString)");
}
END_TEST

/* Writes answers[0..n-1], parses the body back and returns the array. */
static const struct xr_value *write_and_parse(const struct xr_response *answers, size_t n,
                                              struct buf *b)
{
    b->len = 0;
    mc_write_response(arena, b, answers, n);
    struct xr_response r = parse_response(b->data, b->len);
    ck_assert(!r.is_fault);
    ck_assert_ptr_nonnull(r.result);
    ck_assert_int_eq(r.result->type, XR_ARRAY);
    ck_assert_uint_eq(r.result->u.list.count, n);
    return r.result;
}

START_TEST(written_responses_read_back_element_by_element)
{
    /* The struct result is a member of a parsed struct with a sibling after
     * it: writing must leave that link alone. */
    const char *src =
        RESP_V(STRUCT(MEMBER("first", "<struct>" MEMBER("qty", "<int>3</int>") "</struct>")
                          MEMBER("second", "<int>2</int>")));
    struct xr_response parsed = parse_response(src, strlen(src));
    struct xr_value *first = parsed.result->u.list.first;
    struct xr_response answers[5] = {
        {0, xr_value_new_int(arena, 10), 0, NULL, 0},
        {1, NULL, 404, "no such SKU", 11},
        {0, first, 0, NULL, 0},
        {0, NULL, 0, NULL, 0},
        {1, NULL, INT64_C(-5000000000), NULL, 0},
    };
    struct buf b = BUF_INIT;

    const struct xr_value *list = write_and_parse(answers, 5, &b);
    ck_assert_int_eq(nth(list, 0)->type, XR_ARRAY);
    ck_assert_uint_eq(nth(list, 0)->u.list.count, 1);
    ck_assert_int_eq(nth(nth(list, 0), 0)->u.i, 10);

    const struct xr_value *f = nth(list, 1);
    ck_assert_int_eq(f->type, XR_STRUCT);
    ck_assert_uint_eq(f->u.list.count, 2);
    ck_assert_int_eq(xr_struct_get(f, "faultCode")->u.i, 404);
    expect_str(xr_struct_get(f, "faultString"), "no such SKU");

    ck_assert_uint_eq(nth(list, 2)->u.list.count, 1);
    const struct xr_value *s = nth(nth(list, 2), 0);
    ck_assert_int_eq(s->type, XR_STRUCT);
    ck_assert_ptr_null(s->name);
    ck_assert_int_eq(xr_struct_get(s, "qty")->u.i, 3);

    ck_assert_int_eq(nth(nth(list, 3), 0)->type, XR_NIL);

    f = nth(list, 4);
    ck_assert_int_eq(xr_struct_get(f, "faultCode")->u.i, INT64_C(-5000000000));
    expect_str(xr_struct_get(f, "faultString"), "");

    /* The answer's own tree is untouched. */
    ck_assert_ptr_nonnull(first->next);
    ck_assert_str_eq(first->next->name, "second");
    ck_assert_str_eq(first->name, "first");
    ck_assert_uint_eq(parsed.result->u.list.count, 2);

    /* And what was written splits back into the same answers. */
    struct xr_response again[5];
    struct xr_response r = parse_response(b.data, b.len);
    mc_split_answers(arena, &r, 5, "w", again);
    ck_assert_int_eq(again[0].result->u.i, 10);
    expect_fault(&again[1], 404, "no such SKU");
    ck_assert_int_eq(xr_struct_get(again[2].result, "qty")->u.i, 3);
    ck_assert_int_eq(again[3].result->type, XR_NIL);
    expect_fault(&again[4], INT64_C(-5000000000), "");

    /* No answers: an empty array. */
    write_and_parse(answers, 0, &b);
    buf_dispose(&b);
}
END_TEST

/* Plays an upstream: answers each call of a multicall body with
 * "method(first param)", or a fault when the method starts with "fail". */
static void upstream(const struct buf *request, struct buf *answer)
{
    struct xr_call c = parse_call(request->data, request->len);
    struct mc_call *calls = NULL;
    size_t n = 0;
    ck_assert(mc_is_multicall(&c));
    ck_assert_int_eq(mc_read_calls(arena, &c, &calls, &n, &err), 0);
    struct xr_response *answers = arena_calloc(arena, (n ? n : 1) * sizeof(*answers));
    for (size_t i = 0; i < n; i++) {
        const struct xr_value *p = nth(calls[i].params, 0);
        char text[128];
        int len = snprintf(text, sizeof(text), "%s(%s)", calls[i].method, p->u.str.ptr);
        ck_assert(len > 0 && (size_t)len < sizeof(text));
        if (strncmp(calls[i].method, "fail", 4) == 0) {
            answers[i].is_fault = 1;
            answers[i].fault_code = 500 + (int64_t)i;
            answers[i].fault_string = arena_strndup(arena, text, (size_t)len);
            answers[i].fault_string_len = (size_t)len;
        } else {
            answers[i].result = xr_value_new_string(arena, XR_STRING, text, (size_t)len);
        }
    }
    answer->len = 0;
    mc_write_response(arena, answer, answers, n);
}

START_TEST(a_split_multicall_recombines_in_the_clients_order)
{
    const char *xml = MC(CALL1("stock.get", STR("S0")) CALL1("orders.create", STR("S1")) CALL1(
        "fail.now", STR("S2")) CALL1("orders.cancel", STR("S3")) CALL1("stock.list", STR("S4")));
    static const char *const want[] = {"stock.get(S0)", "orders.create(S1)", "fail.now(S2)",
                                       "orders.cancel(S3)", "stock.list(S4)"};
    static const size_t part_a[] = {0, 2, 4};
    static const size_t part_b[] = {1, 3};
    static const struct {
        const size_t *idx;
        size_t k;
    } parts[] = {{part_a, 3}, {part_b, 2}};
    struct mc_call *calls = NULL;
    size_t n = read_ok(xml, &calls);
    struct xr_response combined[5];
    struct buf request = BUF_INIT, answer = BUF_INIT, out = BUF_INIT;

    ck_assert_uint_eq(n, 5);
    memset(combined, 0, sizeof(combined));
    for (size_t p = 0; p < 2; p++) {
        struct xr_response got[3];
        write_call(&request, "system.multicall",
                   mc_build_params(arena, calls, parts[p].idx, parts[p].k));
        upstream(&request, &answer);
        struct xr_response r = parse_response(answer.data, answer.len);
        mc_split_answers(arena, &r, parts[p].k, "part", got);
        for (size_t j = 0; j < parts[p].k; j++)
            combined[parts[p].idx[j]] = got[j];
    }
    const struct xr_value *list = write_and_parse(combined, 5, &out);
    for (size_t i = 0; i < 5; i++) {
        const struct xr_value *v = nth(list, i);
        if (i == 2) {
            /* The failing call was element 1 of part A. */
            ck_assert_int_eq(v->type, XR_STRUCT);
            ck_assert_int_eq(xr_struct_get(v, "faultCode")->u.i, 501);
            expect_str(xr_struct_get(v, "faultString"), want[i]);
        } else {
            ck_assert_int_eq(v->type, XR_ARRAY);
            ck_assert_uint_eq(v->u.list.count, 1);
            expect_str(nth(v, 0), want[i]);
        }
    }
    buf_dispose(&request);
    buf_dispose(&answer);
    buf_dispose(&out);
}
END_TEST

Suite *multicall_suite(void)
{
    Suite *s = suite_create("multicall");
    TCase *tc = tcase_create("read_and_build");
    tcase_set_timeout(tc, UNIT_TIMEOUT);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, only_system_multicall_is_a_multicall);
    tcase_add_test(tc, reads_what_python_multicall_sends);
    tcase_add_test(tc, reads_the_single_call_example_and_other_valid_shapes);
    tcase_add_test(tc, an_empty_multicall_has_no_calls);
    tcase_add_test(tc, every_wrong_shape_is_invalid_params_naming_the_call);
    tcase_add_test(tc, a_nul_in_a_method_name_built_from_json_is_refused);
    tcase_add_test(tc, a_call_parsed_without_params_is_an_internal_error);
    tcase_add_test(tc, built_params_carry_the_chosen_calls_in_order);
    suite_add_tcase(s, tc);

    tc = tcase_create("answers");
    tcase_set_timeout(tc, UNIT_TIMEOUT);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, good_answers_become_results);
    tcase_add_test(tc, fault_answers_and_mixed_answers_keep_their_places);
    tcase_add_test(tc, a_fault_for_the_whole_multicall_answers_every_call);
    tcase_add_test(tc, a_wrongly_shaped_answer_fails_every_call);
    tcase_add_test(tc, a_bad_element_fails_only_its_own_call);
    tcase_add_test(tc, written_responses_read_back_element_by_element);
    tcase_add_test(tc, a_split_multicall_recombines_in_the_clients_order);
    suite_add_tcase(s, tc);
    return s;
}
