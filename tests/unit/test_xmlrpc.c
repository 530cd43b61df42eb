#include "unit.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/mem.h"
#include "legacy-adapters/xmlrpc.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Each test runs in its own process (Check's fork mode); the fixture gives
 * it a fresh arena and the parser's one-time initialisation. */
static struct arena *arena;
static struct xr_call call;
static struct xr_response resp;
static struct xr_error err;

static void setup(void)
{
    xr_init();
    arena = arena_new(0);
    memset(&call, 0, sizeof(call));
    memset(&resp, 0, sizeof(resp));
    memset(&err, 0, sizeof(err));
}

static void teardown(void)
{
    arena_free(arena);
    xr_cleanup();
}

#define PROLOGUE "<?xml version=\"1.0\"?>\n"
#define CALL(params)                                                                               \
    PROLOGUE "<methodCall><methodName>m</methodName><params>" params "</params></methodCall>"
#define PARAM(value) "<param><value>" value "</value></param>"

static int parse_len(const char *xml, size_t len, const struct xr_limits *lim, int flags)
{
    return xr_parse_call(arena, xml, len, lim, flags, &call, &err);
}

static int parse(const char *xml)
{
    return parse_len(xml, strlen(xml), NULL, XR_PARSE_FULL);
}

static const struct xr_value *param(size_t i)
{
    ck_assert_ptr_nonnull(call.params);
    ck_assert_int_eq(call.params->type, XR_ARRAY);
    const struct xr_value *v = call.params->u.list.first;
    while (i-- > 0 && v != NULL)
        v = v->next;
    ck_assert_ptr_nonnull(v);
    return v;
}

/* The single parameter of a call made of one <param>. */
static const struct xr_value *one(const char *value_xml)
{
    struct buf b = BUF_INIT;
    buf_appendf(&b,
                PROLOGUE "<methodCall><methodName>m</methodName><params><param><value>%s"
                         "</value></param></params></methodCall>",
                value_xml);
    int rc = parse_len(b.data, b.len, NULL, XR_PARSE_FULL);
    buf_dispose(&b);
    ck_assert_msg(rc == 0, "parse failed: %d %s", err.code, err.message);
    ck_assert_uint_eq(call.params->u.list.count, 1);
    return param(0);
}

static void expect_fail_len(const char *xml, size_t len, int code, const char *needle)
{
    int rc = parse_len(xml, len, NULL, XR_PARSE_FULL);
    ck_assert_msg(rc == -1, "parse of %.80s should fail", xml);
    ck_assert_msg(err.code == code, "code %d, want %d (%s)", err.code, code, err.message);
    ck_assert_msg(strstr(err.message, needle) != NULL, "message '%s' lacks '%s'", err.message,
                  needle);
}

static void expect_fail(const char *xml, int code, const char *needle)
{
    expect_fail_len(xml, strlen(xml), code, needle);
}

static void expect_value_fail(const char *value_xml, int code, const char *needle)
{
    struct buf b = BUF_INIT;
    buf_appendf(&b, CALL(PARAM("%s")), value_xml);
    expect_fail_len(b.data, b.len, code, needle);
    buf_dispose(&b);
}

static void expect_str(const struct xr_value *v, enum xr_type type, const char *s, size_t len)
{
    ck_assert_int_eq(v->type, type);
    ck_assert_uint_eq(v->u.str.len, len);
    ck_assert_int_eq(memcmp(v->u.str.ptr, s, len), 0);
    ck_assert_int_eq(v->u.str.ptr[len], '\0');
}

static void expect_int(const char *value_xml, int64_t want)
{
    const struct xr_value *v = one(value_xml);
    ck_assert_int_eq(v->type, XR_INT);
    ck_assert_msg(v->u.i == want, "%s: got %lld", value_xml, (long long)v->u.i);
}

/* ------------------------------------------------------------------------ */

START_TEST(parses_every_type)
{
    const char *xml =
        CALL(PARAM("<int>1</int>") PARAM("<i4>-2</i4>") PARAM("<i8>3</i8>") PARAM("<i1>4</i1>")
                 PARAM("<i2>5</i2>") PARAM("<biginteger>6</biginteger>")
                     PARAM("<boolean>1</boolean>") PARAM("<string>s</string>") PARAM("untyped")
                         PARAM("<double>1.5</double>") PARAM("<float>-2.25</float>")
                             PARAM("<dateTime.iso8601>19991231T23:59:59</dateTime.iso8601>")
                                 PARAM("<base64>aGk=</base64>") PARAM("<nil/>")
                                     PARAM("<array><data><value>x</value></data></array>")
                                         PARAM("<struct><member><name>k</name><value><int>7"
                                               "</int></value></member></struct>"));
    ck_assert_int_eq(parse(xml), 0);
    ck_assert_str_eq(call.method, "m");
    ck_assert_uint_eq(call.method_len, 1);
    ck_assert_uint_eq(call.params->u.list.count, 16);
    for (int i = 0; i < 6; i++) {
        ck_assert_int_eq(param(i)->type, XR_INT);
        ck_assert_int_eq(param(i)->u.i, i == 1 ? -2 : i + 1);
    }
    ck_assert_int_eq(param(6)->type, XR_BOOL);
    ck_assert_int_eq(param(6)->u.b, 1);
    expect_str(param(7), XR_STRING, "s", 1);
    expect_str(param(8), XR_STRING, "untyped", 7);
    ck_assert_int_eq(param(9)->type, XR_DOUBLE);
    ck_assert(param(9)->u.d == 1.5);
    ck_assert(param(10)->u.d == -2.25);
    expect_str(param(11), XR_DATETIME, "19991231T23:59:59", 17);
    expect_str(param(12), XR_BASE64, "hi", 2);
    ck_assert_int_eq(param(13)->type, XR_NIL);
    ck_assert_int_eq(param(14)->type, XR_ARRAY);
    ck_assert_uint_eq(param(14)->u.list.count, 1);
    expect_str(param(14)->u.list.first, XR_STRING, "x", 1);
    ck_assert_ptr_null(param(14)->u.list.first->name);
    ck_assert_int_eq(param(15)->type, XR_STRUCT);
    ck_assert_str_eq(param(15)->u.list.first->name, "k");
    ck_assert_int_eq(param(15)->u.list.first->u.i, 7);
}
END_TEST

START_TEST(integers_take_signs_whitespace_and_the_int64_range)
{
    expect_int("<i8>9223372036854775807</i8>", INT64_MAX);
    expect_int("<i8>-9223372036854775808</i8>", INT64_MIN);
    expect_int("<int>+42</int>", 42);
    expect_int("<int> \n\t-7\r\n </int>", -7);
    expect_int("<int>0</int>", 0);
    expect_int("<int>-0</int>", 0);
    expect_int("<int>007</int>", 7);
    expect_int("<biginteger>123456789012</biginteger>", 123456789012LL);
}
END_TEST

START_TEST(bad_integers_are_invalid_params_naming_the_text)
{
    expect_value_fail("<i8>9223372036854775808</i8>", XR_FAULT_INVALID_PARAMS,
                      "'9223372036854775808'");
    expect_value_fail("<i8>-9223372036854775809</i8>", XR_FAULT_INVALID_PARAMS,
                      "-9223372036854775809");
    expect_value_fail("<int>12x</int>", XR_FAULT_INVALID_PARAMS, "invalid <int> value '12x'");
    expect_value_fail("<int></int>", XR_FAULT_INVALID_PARAMS, "<int>");
    expect_value_fail("<int>-</int>", XR_FAULT_INVALID_PARAMS, "'-'");
    expect_value_fail("<i4>1 2</i4>", XR_FAULT_INVALID_PARAMS, "<i4> value '1 2'");
    expect_value_fail("<int>1.0</int>", XR_FAULT_INVALID_PARAMS, "'1.0'");
    expect_value_fail("<int>0x10</int>", XR_FAULT_INVALID_PARAMS, "'0x10'");
    expect_value_fail("<int>++1</int>", XR_FAULT_INVALID_PARAMS, "'++1'");
}
END_TEST

START_TEST(booleans_are_zero_or_one_only)
{
    ck_assert_int_eq(one("<boolean>0</boolean>")->u.b, 0);
    ck_assert_int_eq(one("<boolean> 1 </boolean>")->u.b, 1);
    expect_value_fail("<boolean>2</boolean>", XR_FAULT_INVALID_PARAMS, "'2'");
    expect_value_fail("<boolean>true</boolean>", XR_FAULT_INVALID_PARAMS, "'true'");
    expect_value_fail("<boolean></boolean>", XR_FAULT_INVALID_PARAMS, "<boolean>");
    expect_value_fail("<boolean>01</boolean>", XR_FAULT_INVALID_PARAMS, "'01'");
}
END_TEST

START_TEST(doubles_accept_exponents_and_non_finite_values)
{
    ck_assert(one("<double>1e-300</double>")->u.d == 1e-300);
    ck_assert(one("<double> 2.5E+3 </double>")->u.d == 2500.0);
    ck_assert(one("<double>-0.0</double>")->u.d == 0.0);
    ck_assert(signbit(one("<double>-0.0</double>")->u.d));
    ck_assert(one("<double>17</double>")->u.d == 17.0);
    ck_assert(isnan(one("<double>nan</double>")->u.d));
    ck_assert(isinf(one("<double>inf</double>")->u.d) && one("<double>inf</double>")->u.d > 0);
    ck_assert(one("<double>-inf</double>")->u.d < 0);
    ck_assert(one("<double>1.7976931348623157e308</double>")->u.d == DBL_MAX);
    expect_value_fail("<double>1.5x</double>", XR_FAULT_INVALID_PARAMS, "'1.5x'");
    expect_value_fail("<double>0x1p3</double>", XR_FAULT_INVALID_PARAMS, "'0x1p3'");
    expect_value_fail("<double></double>", XR_FAULT_INVALID_PARAMS, "<double>");
    expect_value_fail("<double>1 2</double>", XR_FAULT_INVALID_PARAMS, "'1 2'");
    expect_value_fail("<double>nan(1)</double>", XR_FAULT_INVALID_PARAMS, "nan(1)");
}
END_TEST

START_TEST(base64_ignores_line_breaks_and_checks_padding)
{
    expect_str(one("<base64>\n  SGVs\r\nbG8g\td29y\n bGQ=\n</base64>"), XR_BASE64, "Hello world",
               11);
    expect_str(one("<base64>YQ==</base64>"), XR_BASE64, "a", 1);
    expect_str(one("<base64>YWI=</base64>"), XR_BASE64, "ab", 2);
    expect_str(one("<base64>YWJj</base64>"), XR_BASE64, "abc", 3);
    expect_str(one("<base64>YWI</base64>"), XR_BASE64, "ab", 2); /* unpadded tail */
    expect_str(one("<base64></base64>"), XR_BASE64, "", 0);
    expect_str(one("<base64/>"), XR_BASE64, "", 0);
    expect_str(one("<base64>AP8A</base64>"), XR_BASE64, "\0\xff\0", 3);
    expect_str(one("<base64>+/+/</base64>"), XR_BASE64, "\xfb\xff\xbf", 3);
    expect_value_fail("<base64>Y</base64>", XR_FAULT_INVALID_PARAMS, "<base64>");
    expect_value_fail("<base64>YQ=</base64>", XR_FAULT_INVALID_PARAMS, "'YQ='");
    expect_value_fail("<base64>YQ==YQ==</base64>", XR_FAULT_INVALID_PARAMS, "<base64>");
    expect_value_fail("<base64>YW!j</base64>", XR_FAULT_INVALID_PARAMS, "'YW!j'");
    expect_value_fail("<base64>YWJj=</base64>", XR_FAULT_INVALID_PARAMS, "<base64>");
    expect_value_fail("<base64>YQ-_</base64>", XR_FAULT_INVALID_PARAMS, "<base64>");
}
END_TEST

START_TEST(structs_keep_order_and_duplicate_names)
{
    const struct xr_value *s =
        one("<struct><member><name>b</name><value><int>1</int></value></member>"
            "<member><value><int>2</int></value><name>a</name></member>"
            "<member><name>b</name><value>dup</value></member>"
            "<member><name> spaced </name><value/></member></struct>");
    ck_assert_int_eq(s->type, XR_STRUCT);
    ck_assert_uint_eq(s->u.list.count, 4);
    const struct xr_value *m = s->u.list.first;
    ck_assert_str_eq(m->name, "b");
    ck_assert_int_eq(m->u.i, 1);
    m = m->next;
    ck_assert_str_eq(m->name, "a");
    ck_assert_uint_eq(m->name_len, 1);
    m = m->next;
    ck_assert_str_eq(m->name, "b");
    expect_str(m, XR_STRING, "dup", 3);
    m = m->next;
    ck_assert_str_eq(m->name, " spaced ");
    expect_str(m, XR_STRING, "", 0);
    ck_assert_ptr_null(m->next);
    ck_assert_ptr_eq(s->u.list.last, m);
    ck_assert_int_eq(xr_struct_get(s, "b")->u.i, 1);
    ck_assert_ptr_eq(xr_struct_get(s, "a"), s->u.list.first->next);
    ck_assert_ptr_null(xr_struct_get(s, "c"));
    ck_assert_ptr_null(xr_struct_get(param(0)->u.list.first, "b")); /* not a struct */
}
END_TEST

START_TEST(empty_strings_arrays_and_structs)
{
    expect_str(one(""), XR_STRING, "", 0);
    expect_str(one("<string></string>"), XR_STRING, "", 0);
    expect_str(one("<string/>"), XR_STRING, "", 0);
    ck_assert_int_eq(parse(CALL("<param><value/></param>")), 0);
    expect_str(param(0), XR_STRING, "", 0);
    const struct xr_value *a = one("<array><data></data></array>");
    ck_assert_int_eq(a->type, XR_ARRAY);
    ck_assert_uint_eq(a->u.list.count, 0);
    ck_assert_ptr_null(a->u.list.first);
    ck_assert_uint_eq(one("<array><data/></array>")->u.list.count, 0);
    /* Python's unmarshaller reads an array without <data> as empty too. */
    ck_assert_uint_eq(one("<array></array>")->u.list.count, 0);
    const struct xr_value *s = one("<struct/>");
    ck_assert_int_eq(s->type, XR_STRUCT);
    ck_assert_uint_eq(s->u.list.count, 0);
    ck_assert_int_eq(parse(PROLOGUE "<methodCall><methodName>m</methodName><params/>"
                                    "</methodCall>"),
                     0);
    ck_assert_uint_eq(call.params->u.list.count, 0);
    ck_assert_int_eq(parse(PROLOGUE "<methodCall><methodName>m</methodName></methodCall>"), 0);
    ck_assert_int_eq(call.params->type, XR_ARRAY);
    ck_assert_uint_eq(call.params->u.list.count, 0);
}
END_TEST

START_TEST(whitespace_between_elements_is_ignored_but_strings_keep_theirs)
{
    const char *xml = "<?xml version=\"1.0\"?>\n<methodCall>\n  <methodName> \n a.b \t</methodName>"
                      "\n  <params>\n    <param>\n      <value>\n <string>  two  \n spaces "
                      "</string>\n </value>\n    </param>\n <param> <value> <array> <data> "
                      "<value> <int> 1 </int> </value> </data> </array> </value> </param>"
                      "<param><value>  untyped\n  kept </value></param>\n  </params>\n"
                      "</methodCall>\n";
    ck_assert_int_eq(parse(xml), 0);
    ck_assert_str_eq(call.method, "a.b");
    ck_assert_uint_eq(call.method_len, 3);
    expect_str(param(0), XR_STRING, "  two  \n spaces ", 16);
    ck_assert_int_eq(param(1)->u.list.first->u.i, 1);
    expect_str(param(2), XR_STRING, "  untyped\n  kept ", 17);
}
END_TEST

START_TEST(cdata_character_references_and_predefined_entities_are_text)
{
    expect_str(one("<string><![CDATA[<a & b>]]></string>"), XR_STRING, "<a & b>", 7);
    expect_str(one("<string>x<![CDATA[]]>y<![CDATA[z]]></string>"), XR_STRING, "xyz", 3);
    expect_str(one("<string>&#65;&#x42;&#xe9;&#x20AC;&#13;&#10;&#9;</string>"), XR_STRING,
               "AB\xc3\xa9\xe2\x82\xac\r\n\t", 10);
    expect_str(one("<string>&lt;&gt;&amp;&quot;&apos;</string>"), XR_STRING, "<>&\"'", 5);
    expect_str(one("&lt;untyped&gt;"), XR_STRING, "<untyped>", 9);
    expect_str(one("<string>a<!-- comment -->b<?pi x?>c</string>"), XR_STRING, "abc", 3);
    expect_str(one("<string>caf\xc3\xa9 \xf0\x9f\x98\x80</string>"), XR_STRING,
               "caf\xc3\xa9 \xf0\x9f\x98\x80", 10);
}
END_TEST

START_TEST(declared_encodings_are_converted_to_utf8)
{
    const char *latin1 = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>"
                         "<methodCall><methodName>caf\xe9</methodName><params><param><value>"
                         "<string>na\xefve \xa3</string></value></param></params></methodCall>";
    ck_assert_int_eq(parse(latin1), 0);
    ck_assert_str_eq(call.method, "caf\xc3\xa9");
    expect_str(param(0), XR_STRING, "na\xc3\xafve \xc2\xa3", 9);

    /* UTF-16 with a byte order mark, as some Windows clients send. */
    const char *ascii = "<?xml version=\"1.0\" encoding=\"UTF-16\"?><methodCall><methodName>w"
                        "</methodName></methodCall>";
    size_t n = strlen(ascii);
    char *utf16 = malloc(2 * n + 2);
    utf16[0] = (char)0xff;
    utf16[1] = (char)0xfe;
    for (size_t i = 0; i < n; i++) {
        utf16[2 + 2 * i] = ascii[i];
        utf16[3 + 2 * i] = 0;
    }
    ck_assert_int_eq(parse_len(utf16, 2 * n + 2, NULL, 0), 0);
    free(utf16);
    ck_assert_str_eq(call.method, "w");
}
END_TEST

START_TEST(namespace_prefixes_on_type_elements_are_ignored)
{
    ck_assert_int_eq(parse(PROLOGUE "<methodCall xmlns:ex=\"http://ws.apache.org/xmlrpc/"
                                    "namespaces/extensions\"><methodName>m</methodName><params>"
                                    "<param><value><ex:i8>5000000000</ex:i8></value></param>"
                                    "<param><value><ex:nil/></value></param></params>"
                                    "</methodCall>"),
                     0);
    ck_assert_int_eq(param(0)->u.i, 5000000000LL);
    ck_assert_int_eq(param(1)->type, XR_NIL);
    /* An undeclared prefix is a namespace error, not a well-formedness one. */
    ck_assert_int_eq(parse(CALL(PARAM("<ex:nil/>"))), 0);
    ck_assert_int_eq(param(0)->type, XR_NIL);
}
END_TEST

START_TEST(method_only_stops_after_the_method_name)
{
    const char *xml = PROLOGUE "<methodCall><methodName>\n stock.get \n</methodName><params>"
                               "<param><value><int>not a number</int></value></param>"
                               "<broken></params>";
    ck_assert_int_eq(parse_len(xml, strlen(xml), NULL, XR_PARSE_METHOD_ONLY), 0);
    ck_assert_str_eq(call.method, "stock.get");
    ck_assert_uint_eq(call.method_len, 9);
    ck_assert_ptr_null(call.params);
    /* The full parse of the same body fails. */
    expect_fail(xml, XR_FAULT_INVALID_PARAMS, "not a number");
    /* Errors before the method name still count. */
    const char *bad = PROLOGUE "<methodResponse><methodName>x</methodName></methodResponse>";
    ck_assert_int_eq(parse_len(bad, strlen(bad), NULL, XR_PARSE_METHOD_ONLY), -1);
    ck_assert_int_eq(err.code, XR_FAULT_INVALID_REQUEST);
}
END_TEST

START_TEST(shape_errors_are_invalid_requests)
{
    expect_fail(PROLOGUE "<methodResponse><params/></methodResponse>", XR_FAULT_INVALID_REQUEST,
                "root element is <methodResponse>, expected <methodCall>");
    expect_fail(PROLOGUE "<html><body/></html>", XR_FAULT_INVALID_REQUEST, "<html>");
    expect_fail(CALL("<param></param>"), XR_FAULT_INVALID_REQUEST, "<param> without <value>");
    expect_fail(CALL(PARAM("<struct><member><value>1</value></member></struct>")),
                XR_FAULT_INVALID_REQUEST, "struct member without <name>");
    expect_fail(CALL(PARAM("<struct><member><name>price</name></member></struct>")),
                XR_FAULT_INVALID_REQUEST, "struct member 'price' without <value>");
    expect_fail(CALL(PARAM("<int>1</int><int>2</int>")), XR_FAULT_INVALID_REQUEST,
                "second element <int> in <value>");
    expect_fail(CALL("<param><value>1</value><value>2</value></param>"), XR_FAULT_INVALID_REQUEST,
                "<value> in <param>");
    expect_fail(CALL(PARAM("<foo>1</foo>")), XR_FAULT_INVALID_REQUEST, "unknown element <foo>");
    expect_fail(CALL(PARAM("<int><b>1</b></int>")), XR_FAULT_INVALID_REQUEST, "unknown element");
    expect_fail(CALL(PARAM("<int><int>1</int></int>")), XR_FAULT_INVALID_REQUEST,
                "unexpected <int> in <int>");
    expect_fail(CALL(PARAM("text<int>1</int>")), XR_FAULT_INVALID_REQUEST, "text mixed with <int>");
    expect_fail(CALL(PARAM("<int>1</int>text")), XR_FAULT_INVALID_REQUEST,
                "unexpected text in <value>");
    expect_fail(CALL("junk" PARAM("1")), XR_FAULT_INVALID_REQUEST, "unexpected text in <params>");
    expect_fail(CALL(PARAM("<nil>x</nil>")), XR_FAULT_INVALID_REQUEST, "unexpected text in <nil>");
    expect_fail(CALL(PARAM("<array><value>1</value></array>")), XR_FAULT_INVALID_REQUEST,
                "unexpected <value> in <array>");
    expect_fail(CALL(PARAM("<array><data/><data/></array>")), XR_FAULT_INVALID_REQUEST,
                "<data> in <array>");
    expect_fail(CALL(PARAM("<struct><value>1</value></struct>")), XR_FAULT_INVALID_REQUEST,
                "unexpected <value> in <struct>");
    expect_fail(CALL(PARAM("<struct><member><name>a</name><name>b</name><value/></member>"
                           "</struct>")),
                XR_FAULT_INVALID_REQUEST, "more than one <name> in <member>");
    expect_fail(PROLOGUE "<methodCall><params/></methodCall>", XR_FAULT_INVALID_REQUEST,
                "<methodCall> without <methodName>");
    expect_fail(PROLOGUE "<methodCall><methodName> \n</methodName></methodCall>",
                XR_FAULT_INVALID_REQUEST, "empty <methodName>");
    expect_fail(PROLOGUE "<methodCall><methodName>a</methodName><methodName>b</methodName>"
                         "</methodCall>",
                XR_FAULT_INVALID_REQUEST, "more than one <methodName>");
    expect_fail(PROLOGUE "<methodCall><methodName>a<i4/></methodName></methodCall>",
                XR_FAULT_INVALID_REQUEST, "in <methodName>");
    expect_fail(PROLOGUE "<methodCall><methodName>a</methodName><params/><params/></methodCall>",
                XR_FAULT_INVALID_REQUEST, "more than one <params>");
    expect_fail(PROLOGUE "<methodCall><methodName>a</methodName><fault/></methodCall>",
                XR_FAULT_INVALID_REQUEST, "unexpected <fault> in <methodCall>");
}
END_TEST

START_TEST(errors_carry_the_line_number)
{
    expect_fail(PROLOGUE "<methodCall>\n<methodName>m</methodName>\n<params>\n" PARAM(
                    "<int>x</int>") "</params></methodCall>",
                XR_FAULT_INVALID_PARAMS, "line 5: invalid <int> value 'x'");
}
END_TEST

START_TEST(malformed_xml_is_a_parse_error_with_libxml2s_message)
{
    expect_fail(PROLOGUE "<methodCall>\n<methodName>m</methodName>\n<params></param>",
                XR_FAULT_PARSE, "line 4: Opening and ending tag mismatch: params");
    ck_assert_int_ne(err.message[strlen(err.message) - 1], '\n');
    expect_fail(PROLOGUE "<methodCall><methodName>m</methodName>", XR_FAULT_PARSE, "line ");
    expect_fail("", XR_FAULT_PARSE, "empty");
    expect_fail("   ", XR_FAULT_PARSE, "line 1: ");
    expect_fail("not xml at all", XR_FAULT_PARSE, "line 1: ");
    expect_fail(CALL(PARAM("<string>&undefined;</string>")), XR_FAULT_PARSE, "undefined");
    expect_fail(CALL(PARAM("<string>a & b</string>")), XR_FAULT_PARSE, "line 2: ");
    expect_fail(PROLOGUE "<methodCall><methodName>m</methodName></methodCall><extra/>",
                XR_FAULT_PARSE, "Extra content");
}
END_TEST

START_TEST(invalid_characters_and_encodings_have_their_own_codes)
{
    /* Invalid UTF-8 in a document that declares (or defaults to) UTF-8. */
    expect_fail(CALL(PARAM("<string>\xc3\x28</string>")), XR_FAULT_CHAR, "line 2: ");
    expect_fail(CALL(PARAM("<string>\xff</string>")), XR_FAULT_CHAR, "UTF-8");
    /* A control character XML 1.0 does not allow, literally or by reference. */
    expect_fail(CALL(PARAM("<string>\x01</string>")), XR_FAULT_CHAR, "line 2: ");
    expect_fail(CALL(PARAM("<string>&#1;</string>")), XR_FAULT_CHAR, "line 2: ");
    expect_fail("<?xml version=\"1.0\" encoding=\"X-NO-SUCH-CHARSET\"?><methodCall/>",
                XR_FAULT_ENCODING, "line 1: ");
    /* A NUL byte inside the body. */
    static const char nul[] = CALL(PARAM("<string>a\0b</string>"));
    expect_fail_len(nul, sizeof(nul) - 1, XR_FAULT_CHAR, "line 2: ");
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Attacks: each must be refused quickly, before anything expands.          */

static void expect_refused_quickly(const char *xml, size_t len)
{
    uint64_t start = clock_monotonic_ns();
    expect_fail_len(xml, len, XR_FAULT_PARSE, "DOCTYPE is not allowed");
    uint64_t ms = (clock_monotonic_ns() - start) / 1000000;
    ck_assert_msg(ms < 200, "took %llu ms", (unsigned long long)ms);
    ck_assert_str_eq(err.message, "DOCTYPE is not allowed");
}

START_TEST(billion_laughs_is_refused)
{
    struct buf b = BUF_INIT;
    buf_append_str(&b, "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol \"lol\">\n");
    buf_append_str(&b, "<!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n");
    for (int i = 2; i <= 9; i++) {
        buf_appendf(&b, "<!ENTITY lol%d \"", i);
        for (int j = 0; j < 10; j++)
            buf_appendf(&b, "&lol%d;", i - 1);
        buf_append_str(&b, "\">\n");
    }
    buf_append_str(&b, "]>\n<methodCall><methodName>&lol9;</methodName></methodCall>");
    expect_refused_quickly(b.data, b.len);
    buf_dispose(&b);
}
END_TEST

START_TEST(quadratic_blowup_is_refused)
{
    struct buf b = BUF_INIT;
    buf_append_str(&b, "<?xml version=\"1.0\"?>\n<!DOCTYPE m [<!ENTITY a \"");
    for (int i = 0; i < 50000; i++)
        buf_append_char(&b, 'a');
    buf_append_str(&b, "\">]>\n<methodCall><methodName>m</methodName><params><param><value>");
    for (int i = 0; i < 20000; i++)
        buf_append_str(&b, "&a;");
    buf_append_str(&b, "</value></param></params></methodCall>");
    ck_assert_uint_gt(b.len, 100000);
    expect_refused_quickly(b.data, b.len);
    buf_dispose(&b);
}
END_TEST

START_TEST(external_entities_are_refused)
{
    const char *file = "<?xml version=\"1.0\"?>\n<!DOCTYPE m [<!ENTITY xxe SYSTEM "
                       "\"file:///etc/passwd\">]>\n<methodCall><methodName>&xxe;</methodName>"
                       "</methodCall>";
    expect_refused_quickly(file, strlen(file));
    const char *http = "<?xml version=\"1.0\"?>\n<!DOCTYPE m [<!ENTITY xxe SYSTEM "
                       "\"http://127.0.0.1:1/x\">]>\n<methodCall><methodName>&xxe;</methodName>"
                       "</methodCall>";
    expect_refused_quickly(http, strlen(http));
    const char *dtd = "<?xml version=\"1.0\"?>\n<!DOCTYPE methodCall SYSTEM "
                      "\"http://127.0.0.1:1/evil.dtd\">\n<methodCall><methodName>m</methodName>"
                      "</methodCall>";
    expect_refused_quickly(dtd, strlen(dtd));
    const char *param = "<?xml version=\"1.0\"?>\n<!DOCTYPE m [<!ENTITY % p SYSTEM "
                        "\"file:///etc/passwd\"> %p;]>\n<methodCall/>";
    expect_refused_quickly(param, strlen(param));
    const char *plain = "<!DOCTYPE methodCall><methodCall><methodName>m</methodName>"
                        "</methodCall>";
    expect_refused_quickly(plain, strlen(plain));
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Limits                                                                   */

/* A call whose only parameter is `arrays` arrays nested in each other. The
 * XML depth is 4 (methodCall/params/param/value) + 3 per array. */
static void nested_arrays(struct buf *b, int arrays)
{
    buf_append_str(b, "<methodCall><methodName>m</methodName><params><param><value>");
    for (int i = 0; i < arrays; i++)
        buf_append_str(b, "<array><data><value>");
    buf_append_str(b, "<int>1</int>");
    for (int i = 0; i < arrays; i++)
        buf_append_str(b, "</value></data></array>");
    buf_append_str(b, "</value></param></params></methodCall>");
}

START_TEST(depth_is_limited)
{
    struct buf b = BUF_INIT;
    struct xr_limits lim = {.max_depth = 13, .max_elements = 0};

    /* 3 arrays: depth 4 + 9 = 13 for the innermost <value>, 14 for <int>. */
    nested_arrays(&b, 3);
    ck_assert_int_eq(parse_len(b.data, b.len, &lim, 0), -1);
    ck_assert_int_eq(err.code, XR_FAULT_PARSE);
    ck_assert_ptr_nonnull(strstr(err.message, "max_depth"));
    ck_assert_ptr_nonnull(strstr(err.message, "13"));
    lim.max_depth = 14;
    ck_assert_int_eq(parse_len(b.data, b.len, &lim, 0), 0);
    const struct xr_value *v = param(0);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(v->type, XR_ARRAY);
        v = v->u.list.first;
    }
    ck_assert_int_eq(v->u.i, 1);

    /* The default is 64: 20 arrays need 65 levels, 19 need 62. */
    b.len = 0;
    nested_arrays(&b, 19);
    ck_assert_int_eq(parse_len(b.data, b.len, NULL, 0), 0);
    b.len = 0;
    nested_arrays(&b, 20);
    ck_assert_int_eq(parse_len(b.data, b.len, NULL, 0), -1);
    ck_assert_int_eq(err.code, XR_FAULT_PARSE);
    ck_assert_ptr_nonnull(strstr(err.message, "64"));

    /* Far beyond any limit: refused without exhausting anything. */
    b.len = 0;
    nested_arrays(&b, 100000);
    ck_assert_int_eq(parse_len(b.data, b.len, NULL, 0), -1);
    ck_assert_int_eq(err.code, XR_FAULT_PARSE);
    buf_dispose(&b);
}
END_TEST

START_TEST(element_count_is_limited)
{
    struct buf b = BUF_INIT;
    struct xr_limits lim = {.max_depth = 0, .max_elements = 0};

    /* methodCall, methodName, params + 3 per param (param, value, int). */
    buf_append_str(&b, "<methodCall><methodName>m</methodName><params>");
    for (int i = 0; i < 10; i++)
        buf_append_str(&b, "<param><value><int>1</int></value></param>");
    buf_append_str(&b, "</params></methodCall>");
    lim.max_elements = 33;
    ck_assert_int_eq(parse_len(b.data, b.len, &lim, 0), 0);
    ck_assert_uint_eq(call.params->u.list.count, 10);
    lim.max_elements = 32;
    ck_assert_int_eq(parse_len(b.data, b.len, &lim, 0), -1);
    ck_assert_int_eq(err.code, XR_FAULT_PARSE);
    ck_assert_ptr_nonnull(strstr(err.message, "max_elements"));
    ck_assert_ptr_nonnull(strstr(err.message, "32"));
    buf_dispose(&b);
}
END_TEST

START_TEST(large_flat_documents_parse)
{
    /* Many siblings stress the stack-free paths: 100,000 array items. */
    struct buf b = BUF_INIT;
    buf_append_str(&b, "<methodCall><methodName>m</methodName><params><param><value><array>"
                       "<data>");
    for (int i = 0; i < 100000; i++)
        buf_appendf(&b, "<value><i4>%d</i4></value>", i);
    buf_append_str(&b, "</data></array></value></param></params></methodCall>");
    ck_assert_int_eq(parse_len(b.data, b.len, NULL, 0), 0);
    const struct xr_value *a = param(0);
    ck_assert_uint_eq(a->u.list.count, 100000);
    ck_assert_int_eq(a->u.list.last->u.i, 99999);
    buf_dispose(&b);
}
END_TEST

START_TEST(text_spanning_many_chunks_is_whole)
{
    /* The body reaches libxml2 in chunks; text, entities and multi-byte
     * characters cut at chunk boundaries must come out whole. */
    struct buf b = BUF_INIT, want = BUF_INIT;
    buf_append_str(&b, "<methodCall><methodName>m</methodName><params><param><value><string>");
    for (int i = 0; i < 40000; i++) {
        buf_append_str(&b, "\xc3\xa9&amp;\xf0\x9f\x98\x80<![CDATA[<]]>&#x20AC;");
        buf_append_str(&want, "\xc3\xa9&\xf0\x9f\x98\x80<\xe2\x82\xac");
    }
    buf_append_str(&b, "</string></value></param></params></methodCall>");
    ck_assert_int_eq(parse_len(b.data, b.len, NULL, 0), 0);
    expect_str(param(0), XR_STRING, want.data, want.len);
    buf_dispose(&b);
    buf_dispose(&want);
}
END_TEST

START_TEST(method_only_reads_on_until_the_method_name)
{
    struct buf b = BUF_INIT;
    buf_append_str(&b, "<?xml version=\"1.0\"?>\n<methodCall><!-- ");
    for (int i = 0; i < 20000; i++)
        buf_append_char(&b, 'c');
    buf_append_str(&b, " --><methodName>late</methodName><params>");
    for (int i = 0; i < 20000; i++)
        buf_append_str(&b, "<oops>");
    ck_assert_int_eq(parse_len(b.data, b.len, NULL, XR_PARSE_METHOD_ONLY), 0);
    ck_assert_str_eq(call.method, "late");
    ck_assert_int_eq(parse_len(b.data, b.len, NULL, XR_PARSE_FULL), -1);
    ck_assert_int_eq(err.code, XR_FAULT_INVALID_REQUEST);
    buf_dispose(&b);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Responses                                                                */

static int parse_response(const char *xml)
{
    return xr_parse_response(arena, xml, strlen(xml), NULL, &resp, &err);
}

START_TEST(responses_hold_one_result_or_a_fault)
{
    ck_assert_int_eq(parse_response(PROLOGUE "<methodResponse><params><param><value><int>5</int>"
                                             "</value></param></params></methodResponse>"),
                     0);
    ck_assert_int_eq(resp.is_fault, 0);
    ck_assert_int_eq(resp.result->u.i, 5);

    ck_assert_int_eq(parse_response(PROLOGUE "<methodResponse><fault><value><struct><member>"
                                             "<name>faultString</name><value>boom &amp; "
                                             "bust</value></member><member><name>faultCode"
                                             "</name><value><int>-32601</int></value></member>"
                                             "</struct></value></fault></methodResponse>"),
                     0);
    ck_assert_int_eq(resp.is_fault, 1);
    ck_assert_ptr_null(resp.result);
    ck_assert_int_eq(resp.fault_code, -32601);
    ck_assert_str_eq(resp.fault_string, "boom & bust");
    ck_assert_uint_eq(resp.fault_string_len, 11);
}
END_TEST

static void expect_response_fail(const char *xml, int code, const char *needle)
{
    ck_assert_int_eq(parse_response(xml), -1);
    ck_assert_msg(err.code == code, "code %d (%s)", err.code, err.message);
    ck_assert_msg(strstr(err.message, needle) != NULL, "'%s' lacks '%s'", err.message, needle);
}

START_TEST(malformed_responses_are_refused)
{
    expect_response_fail(PROLOGUE "<methodResponse><fault><value><struct><member><name>"
                                  "faultCode</name><value><int>1</int></value></member>"
                                  "</struct></value></fault></methodResponse>",
                         XR_FAULT_INVALID_REQUEST, "faultString");
    expect_response_fail(PROLOGUE "<methodResponse><fault><value><struct><member><name>"
                                  "faultCode</name><value>1</value></member><member><name>"
                                  "faultString</name><value>x</value></member></struct></value>"
                                  "</fault></methodResponse>",
                         XR_FAULT_INVALID_REQUEST, "faultCode");
    expect_response_fail(PROLOGUE "<methodResponse><fault><value><int>1</int></value></fault>"
                                  "</methodResponse>",
                         XR_FAULT_INVALID_REQUEST, "not a struct");
    expect_response_fail(PROLOGUE "<methodResponse><fault></fault></methodResponse>",
                         XR_FAULT_INVALID_REQUEST, "<fault> without <value>");
    expect_response_fail(PROLOGUE "<methodResponse><params><param><value>1</value></param>"
                                  "<param><value>2</value></param></params></methodResponse>",
                         XR_FAULT_INVALID_REQUEST, "exactly one <param>, not 2");
    expect_response_fail(PROLOGUE "<methodResponse><params></params></methodResponse>",
                         XR_FAULT_INVALID_REQUEST, "exactly one <param>, not 0");
    expect_response_fail(PROLOGUE "<methodResponse></methodResponse>", XR_FAULT_INVALID_REQUEST,
                         "without <params> or <fault>");
    expect_response_fail(PROLOGUE "<methodResponse><params><param><value>1</value></param>"
                                  "</params><fault/></methodResponse>",
                         XR_FAULT_INVALID_REQUEST, "second element <fault>");
    expect_response_fail(PROLOGUE "<methodCall><methodName>m</methodName></methodCall>",
                         XR_FAULT_INVALID_REQUEST, "expected <methodResponse>");
    expect_response_fail("<methodResponse>", XR_FAULT_PARSE, "line 1: ");
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Writing                                                                  */

/* xr_write_value's output as a string that lives as long as the arena. */
static const char *written(const struct xr_value *v)
{
    struct buf b = BUF_INIT;
    xr_write_value(&b, v);
    char *s = arena_strndup(arena, b.data, b.len);
    buf_dispose(&b);
    return s;
}

START_TEST(writes_scalars)
{
    ck_assert_str_eq(written(xr_value_new_int(arena, 2147483647)),
                     "<value><int>2147483647</int></value>");
    ck_assert_str_eq(written(xr_value_new_int(arena, -2147483648LL)),
                     "<value><int>-2147483648</int></value>");
    ck_assert_str_eq(written(xr_value_new_int(arena, 2147483648LL)),
                     "<value><i8>2147483648</i8></value>");
    ck_assert_str_eq(written(xr_value_new_int(arena, -2147483649LL)),
                     "<value><i8>-2147483649</i8></value>");
    ck_assert_str_eq(written(xr_value_new_int(arena, INT64_MIN)),
                     "<value><i8>-9223372036854775808</i8></value>");
    struct xr_value *b = xr_value_new(arena, XR_BOOL);
    ck_assert_str_eq(written(b), "<value><boolean>0</boolean></value>");
    b->u.b = 1;
    ck_assert_str_eq(written(b), "<value><boolean>1</boolean></value>");
    ck_assert_str_eq(written(xr_value_new(arena, XR_NIL)), "<value><nil/></value>");
    ck_assert_str_eq(written(NULL), "<value><nil/></value>");
    ck_assert_str_eq(written(xr_value_new_string(arena, XR_DATETIME, "20260101T00:00:00", 17)),
                     "<value><dateTime.iso8601>20260101T00:00:00</dateTime.iso8601></value>");
    ck_assert_str_eq(written(xr_value_new_string(arena, XR_BASE64, "\0\xff\0", 3)),
                     "<value><base64>AP8A</base64></value>");
    ck_assert_str_eq(written(xr_value_new_string(arena, XR_BASE64, "ab", 2)),
                     "<value><base64>YWI=</base64></value>");
    ck_assert_str_eq(written(xr_value_new_string(arena, XR_BASE64, "a", 1)),
                     "<value><base64>YQ==</base64></value>");
    ck_assert_str_eq(written(xr_value_new_string(arena, XR_BASE64, "", 0)),
                     "<value><base64></base64></value>");
}
END_TEST

START_TEST(writes_doubles_in_shortest_round_trip_form)
{
    ck_assert_str_eq(written(xr_value_new_double(arena, 0.1)),
                     "<value><double>0.1</double></value>");
    ck_assert_str_eq(written(xr_value_new_double(arena, 1.0)),
                     "<value><double>1.0</double></value>");
    ck_assert_str_eq(written(xr_value_new_double(arena, -0.0)),
                     "<value><double>-0.0</double></value>");
    ck_assert_str_eq(written(xr_value_new_double(arena, 1e-300)),
                     "<value><double>1e-300</double></value>");
    ck_assert_str_eq(written(xr_value_new_double(arena, DBL_MAX)),
                     "<value><double>1.7976931348623157e+308</double></value>");
    ck_assert_str_eq(written(xr_value_new_double(arena, NAN)),
                     "<value><double>nan</double></value>");
    ck_assert_str_eq(written(xr_value_new_double(arena, INFINITY)),
                     "<value><double>inf</double></value>");
    ck_assert_str_eq(written(xr_value_new_double(arena, -INFINITY)),
                     "<value><double>-inf</double></value>");
}
END_TEST

START_TEST(writes_escaped_text)
{
    ck_assert_str_eq(written(xr_value_new_string(arena, XR_STRING, "a&b<c>d\re\tf\ng", 13)),
                     "<value><string>a&amp;b&lt;c&gt;d&#13;e\tf\ng</string></value>");
    ck_assert_str_eq(written(xr_value_new_string(arena, XR_STRING, "", 0)),
                     "<value><string></string></value>");
    /* Characters XML cannot carry become U+FFFD; valid UTF-8 passes. */
    ck_assert_str_eq(written(xr_value_new_string(arena, XR_STRING, "\x01x\x7f\xc3\xa9\xff\0", 7)),
                     "<value><string>\xef\xbf\xbdx\x7f\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd"
                     "</string></value>");
    ck_assert_str_eq(written(xr_value_new_string(arena, XR_STRING, "\xed\xa0\x80\xef\xbf\xbe", 6)),
                     "<value><string>\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                     "\xef\xbf\xbd\xef\xbf\xbd</string></value>");
}
END_TEST

START_TEST(writes_arrays_and_structs)
{
    struct xr_value *s = xr_value_new(arena, XR_STRUCT);
    struct xr_value *a = xr_value_new(arena, XR_ARRAY);
    struct xr_value *m1 = xr_value_new_int(arena, 1);
    struct xr_value *m2 = xr_value_new_string(arena, XR_STRING, "x", 1);
    m1->name = "a<&>";
    m1->name_len = 4;
    m2->name = "a<&>";
    m2->name_len = 4;
    xr_value_append(s, m1);
    xr_value_append(s, m2);
    xr_value_append(a, s);
    xr_value_append(a, xr_value_new(arena, XR_ARRAY));
    xr_value_append(a, xr_value_new(arena, XR_STRUCT));
    ck_assert_uint_eq(a->u.list.count, 3);
    ck_assert_str_eq(written(a), "<value><array><data><value><struct>"
                                 "<member><name>a&lt;&amp;&gt;</name><value><int>1</int></value>"
                                 "</member><member><name>a&lt;&amp;&gt;</name><value><string>x"
                                 "</string></value></member></struct></value>"
                                 "<value><array><data></data></array></value>"
                                 "<value><struct></struct></value></data></array></value>");
}
END_TEST

START_TEST(writes_calls_responses_and_faults)
{
    struct buf b = BUF_INIT;
    struct xr_value *params = xr_value_new(arena, XR_ARRAY);
    xr_value_append(params, xr_value_new_int(arena, 7));
    xr_write_call(&b, "a&b", 3, params);
    ck_assert_str_eq(buf_cstr(&b), "<?xml version=\"1.0\"?>\n<methodCall><methodName>a&amp;b"
                                   "</methodName><params><param><value><int>7</int></value>"
                                   "</param></params></methodCall>\n");
    b.len = 0;
    struct xr_response r = {0, xr_value_new_int(arena, 1), 0, NULL, 0};
    xr_write_response(&b, &r);
    ck_assert_str_eq(buf_cstr(&b), "<?xml version=\"1.0\"?>\n<methodResponse><params><param>"
                                   "<value><int>1</int></value></param></params>"
                                   "</methodResponse>\n");
    b.len = 0;
    struct xr_response f = {1, NULL, -32601, "no <such> method", 16};
    xr_write_response(&b, &f);
    const char *fault = "<?xml version=\"1.0\"?>\n<methodResponse><fault><value><struct>"
                        "<member><name>faultCode</name><value><int>-32601</int></value>"
                        "</member><member><name>faultString</name><value><string>no &lt;such"
                        "&gt; method</string></value></member></struct></value></fault>"
                        "</methodResponse>\n";
    ck_assert_str_eq(buf_cstr(&b), fault);
    b.len = 0;
    xr_write_fault(&b, -32601, "no <such> method", 16);
    ck_assert_str_eq(buf_cstr(&b), fault);
    buf_dispose(&b);
}
END_TEST

START_TEST(written_responses_and_calls_parse_back)
{
    struct buf b = BUF_INIT;
    xr_write_fault(&b, 4000000000LL, "line1\r\nline2 & <x>", 18);
    ck_assert_int_eq(xr_parse_response(arena, b.data, b.len, NULL, &resp, &err), 0);
    ck_assert_int_eq(resp.is_fault, 1);
    ck_assert_int_eq(resp.fault_code, 4000000000LL);
    ck_assert_str_eq(resp.fault_string, "line1\r\nline2 & <x>");

    b.len = 0;
    struct xr_value *params = xr_value_new(arena, XR_ARRAY);
    xr_value_append(params, xr_value_new_double(arena, -0.0));
    xr_value_append(params, xr_value_new_double(arena, 1e-300));
    xr_value_append(params, xr_value_new_double(arena, DBL_MAX));
    xr_value_append(params, xr_value_new_double(arena, 0.1));
    xr_value_append(params, xr_value_new_double(arena, 5e-324));
    xr_value_append(params, xr_value_new_double(arena, NAN));
    xr_value_append(params, xr_value_new_double(arena, -INFINITY));
    xr_value_append(params, xr_value_new_string(arena, XR_STRING, " \r\n\t ", 5));
    xr_write_call(&b, " m ", 3, params);
    ck_assert_int_eq(parse_len(b.data, b.len, NULL, 0), 0);
    ck_assert_str_eq(call.method, "m");
    ck_assert(param(0)->u.d == 0.0 && signbit(param(0)->u.d));
    ck_assert(param(1)->u.d == 1e-300);
    ck_assert(param(2)->u.d == DBL_MAX);
    ck_assert(param(3)->u.d == 0.1);
    ck_assert(param(4)->u.d == 5e-324);
    ck_assert(isnan(param(5)->u.d));
    ck_assert(isinf(param(6)->u.d) && param(6)->u.d < 0);
    expect_str(param(7), XR_STRING, " \r\n\t ", 5);
    buf_dispose(&b);
}
END_TEST

START_TEST(builders_and_type_names)
{
    struct xr_value *v = xr_value_new_string(arena, XR_STRING, "abc", 2);
    expect_str(v, XR_STRING, "ab", 2);
    ck_assert_ptr_null(v->next);
    ck_assert_ptr_null(v->name);
    v = xr_value_new_string(arena, XR_BASE64, NULL, 0);
    expect_str(v, XR_BASE64, "", 0);
    ck_assert_str_eq(xr_type_name(XR_INT), "int");
    ck_assert_str_eq(xr_type_name(XR_BOOL), "boolean");
    ck_assert_str_eq(xr_type_name(XR_STRING), "string");
    ck_assert_str_eq(xr_type_name(XR_DOUBLE), "double");
    ck_assert_str_eq(xr_type_name(XR_DATETIME), "dateTime.iso8601");
    ck_assert_str_eq(xr_type_name(XR_BASE64), "base64");
    ck_assert_str_eq(xr_type_name(XR_NIL), "nil");
    ck_assert_str_eq(xr_type_name(XR_ARRAY), "array");
    ck_assert_str_eq(xr_type_name(XR_STRUCT), "struct");
    ck_assert_str_eq(xr_type_name(XR_NONE), "none");
}
END_TEST

START_TEST(python_xmlrpc_client_output_parses)
{
    /* Verbatim from Python 3.11: xmlrpc.client.dumps((1, 2**30, True, 'a<b', 1.5, None,
     * b'\x00hi', [1, 'x'], {'k': 'v'}), 'py.test', allow_none=True). */
    const char *xml =
        "<?xml version='1.0'?>\n<methodCall>\n<methodName>py.test</methodName>\n<params>\n"
        "<param>\n<value><int>1</int></value>\n</param>\n"
        "<param>\n<value><int>1073741824</int></value>\n</param>\n"
        "<param>\n<value><boolean>1</boolean></value>\n</param>\n"
        "<param>\n<value><string>a&lt;b</string></value>\n</param>\n"
        "<param>\n<value><double>1.5</double></value>\n</param>\n"
        "<param>\n<value><nil/></value></param>\n"
        "<param>\n<value><base64>\nAGhp\n</base64></value>\n</param>\n"
        "<param>\n<value><array><data>\n<value><int>1</int></value>\n"
        "<value><string>x</string></value>\n</data></array></value>\n</param>\n"
        "<param>\n<value><struct>\n<member>\n<name>k</name>\n<value><string>v</string></value>\n"
        "</member>\n</struct></value>\n</param>\n</params>\n</methodCall>\n";
    ck_assert_int_eq(parse(xml), 0);
    ck_assert_str_eq(call.method, "py.test");
    ck_assert_uint_eq(call.params->u.list.count, 9);
    ck_assert_int_eq(param(1)->u.i, 1073741824);
    expect_str(param(3), XR_STRING, "a<b", 3);
    ck_assert_int_eq(param(5)->type, XR_NIL);
    expect_str(param(6), XR_BASE64, "\0hi", 3);
    ck_assert_str_eq(param(8)->u.list.first->name, "k");
}
END_TEST

Suite *xmlrpc_suite(void)
{
    Suite *s = suite_create("xmlrpc");
    TCase *tc = tcase_create("parse");
    tcase_set_timeout(tc, UNIT_TIMEOUT);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, parses_every_type);
    tcase_add_test(tc, integers_take_signs_whitespace_and_the_int64_range);
    tcase_add_test(tc, bad_integers_are_invalid_params_naming_the_text);
    tcase_add_test(tc, booleans_are_zero_or_one_only);
    tcase_add_test(tc, doubles_accept_exponents_and_non_finite_values);
    tcase_add_test(tc, base64_ignores_line_breaks_and_checks_padding);
    tcase_add_test(tc, structs_keep_order_and_duplicate_names);
    tcase_add_test(tc, empty_strings_arrays_and_structs);
    tcase_add_test(tc, whitespace_between_elements_is_ignored_but_strings_keep_theirs);
    tcase_add_test(tc, cdata_character_references_and_predefined_entities_are_text);
    tcase_add_test(tc, declared_encodings_are_converted_to_utf8);
    tcase_add_test(tc, namespace_prefixes_on_type_elements_are_ignored);
    tcase_add_test(tc, method_only_stops_after_the_method_name);
    tcase_add_test(tc, shape_errors_are_invalid_requests);
    tcase_add_test(tc, errors_carry_the_line_number);
    tcase_add_test(tc, malformed_xml_is_a_parse_error_with_libxml2s_message);
    tcase_add_test(tc, invalid_characters_and_encodings_have_their_own_codes);
    tcase_add_test(tc, python_xmlrpc_client_output_parses);
    suite_add_tcase(s, tc);

    tc = tcase_create("attacks_and_limits");
    tcase_set_timeout(tc, UNIT_TIMEOUT);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, billion_laughs_is_refused);
    tcase_add_test(tc, quadratic_blowup_is_refused);
    tcase_add_test(tc, external_entities_are_refused);
    tcase_add_test(tc, depth_is_limited);
    tcase_add_test(tc, element_count_is_limited);
    tcase_add_test(tc, large_flat_documents_parse);
    tcase_add_test(tc, text_spanning_many_chunks_is_whole);
    tcase_add_test(tc, method_only_reads_on_until_the_method_name);
    suite_add_tcase(s, tc);

    tc = tcase_create("responses_and_writing");
    tcase_set_timeout(tc, UNIT_TIMEOUT);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, responses_hold_one_result_or_a_fault);
    tcase_add_test(tc, malformed_responses_are_refused);
    tcase_add_test(tc, writes_scalars);
    tcase_add_test(tc, writes_doubles_in_shortest_round_trip_form);
    tcase_add_test(tc, writes_escaped_text);
    tcase_add_test(tc, writes_arrays_and_structs);
    tcase_add_test(tc, writes_calls_responses_and_faults);
    tcase_add_test(tc, written_responses_and_calls_parse_back);
    tcase_add_test(tc, builders_and_type_names);
    suite_add_tcase(s, tc);
    return s;
}
